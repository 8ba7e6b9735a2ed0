//! The atomics and cells the ring is built from: `std`'s, or `loom`'s when
//! built with `--cfg loom` so that the model checker can explore every
//! interleaving of the protocol.

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicUsize, Ordering};
#[cfg(loom)]
pub(crate) use loom::sync::Arc;

#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicUsize, Ordering};
#[cfg(not(loom))]
pub(crate) use std::sync::Arc;

/// `UnsafeCell` with loom's closure API, so one body of code serves both.
#[cfg(loom)]
pub(crate) use loom::cell::UnsafeCell;

/// `UnsafeCell` with loom's closure API, so one body of code serves both.
#[cfg(not(loom))]
#[derive(Debug)]
#[repr(transparent)]
pub(crate) struct UnsafeCell<T>(std::cell::UnsafeCell<T>);

#[cfg(not(loom))]
impl<T> UnsafeCell<T> {
    pub(crate) const fn new(value: T) -> UnsafeCell<T> {
        UnsafeCell(std::cell::UnsafeCell::new(value))
    }

    #[inline(always)]
    pub(crate) fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
        f(self.0.get())
    }

    #[inline(always)]
    pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        f(self.0.get())
    }

    /// The contents' pointer from a pointer to the cell, keeping the
    /// provenance of `this` (so a pointer into a slice of cells can reach its
    /// neighbours, which `&self`-based access cannot).
    #[inline(always)]
    pub(crate) fn raw_get(this: *const UnsafeCell<T>) -> *mut T {
        // `repr(transparent)`: a pointer to the wrapper is a pointer to the std cell.
        std::cell::UnsafeCell::raw_get(this as *const std::cell::UnsafeCell<T>)
    }
}
