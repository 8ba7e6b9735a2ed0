//! A bounded single-producer single-consumer ring with burst operations.
//!
//! The algorithm is Lamport's ring buffer with FastForward-style index
//! caching, the same as DPDK's `rte_ring` in single-producer/single-consumer
//! mode: each side owns one index, publishes it with a release store and reads
//! the other's with an acquire load only when its cached copy says the ring is
//! full (producer) or empty (consumer).
//!
//! Why SPSC everywhere: on the dataplane every ring has exactly one writer core
//! and one reader core (an rx queue is polled by one lcore, a port's tx ring is
//! fed by one lcore). Where several producers must reach one consumer, each
//! producer gets its own ring and the consumer polls them in turn, as DPDK
//! does; no ring is ever shared by two producers, so no producer needs a
//! compare-and-swap and no side ever waits on a lock.

use crate::primitive::{Arc, AtomicUsize, Ordering, UnsafeCell};
use crossbeam_utils::CachePadded;
use std::fmt;
use std::mem::MaybeUninit;

/// The state both ends share.
struct Shared<T> {
    /// Index of the next slot the consumer reads (monotonic, wrapping).
    /// Written only by the consumer. Padded so that the producer's writes to
    /// `tail` do not invalidate the consumer's line, and back.
    head: CachePadded<AtomicUsize>,
    /// Index of the next slot the producer writes. Written only by the producer.
    tail: CachePadded<AtomicUsize>,
    /// `capacity` slots; slot `i & mask` holds an initialised value exactly
    /// when `head <= i < tail`.
    slots: Box<[UnsafeCell<MaybeUninit<T>>]>,
    mask: usize,
}

// SAFETY: the ring moves `T`s from one thread to another, so it needs
// `T: Send`; the two ends never touch the same slot at the same time (see
// the invariants on `Shared`), so sharing `Shared` between them is sound.
unsafe impl<T: Send> Sync for Shared<T> {}
// SAFETY: as above; `Shared` owns the `T`s in its slots.
unsafe impl<T: Send> Send for Shared<T> {}

impl<T> Drop for Shared<T> {
    fn drop(&mut self) {
        // Both ends are gone (this is the last `Arc`), and the `Arc`'s
        // reference-count handshake ordered their last index stores before us.
        let head = self.head.load(Ordering::Relaxed);
        let tail = self.tail.load(Ordering::Relaxed);
        let mut i = head;
        while i != tail {
            self.slots[i & self.mask].with_mut(|p| {
                // SAFETY: `head <= i < tail`, so the slot holds an initialised
                // value that nobody consumed; we drop it exactly once.
                unsafe { (*p).assume_init_drop() }
            });
            i = i.wrapping_add(1);
        }
    }
}

/// A slot array pointer and its index mask, copied into each end so that the
/// hot path reads them from its own cache line instead of through the `Arc`.
struct Slots<T> {
    base: *const UnsafeCell<MaybeUninit<T>>,
    mask: usize,
}

impl<T> Slots<T> {
    fn of(shared: &Shared<T>) -> Slots<T> {
        Slots {
            base: shared.slots.as_ptr(),
            mask: shared.mask,
        }
    }

    /// The (array index, length) of the at most two contiguous runs that `n`
    /// slots from monotonic index `from` occupy.
    #[cfg(not(loom))]
    #[inline(always)]
    fn runs(&self, from: usize, n: usize) -> [(usize, usize); 2] {
        let start = from & self.mask;
        let first = n.min(self.mask + 1 - start);
        [(start, first), (0, n - first)]
    }

    /// The slot for monotonic index `at`.
    #[inline(always)]
    fn get(&self, at: usize) -> &UnsafeCell<MaybeUninit<T>> {
        // SAFETY: `base` points to `mask + 1` slots owned by the `Shared` that
        // the same end keeps alive through its `Arc`, and `at & mask <= mask`.
        unsafe { &*self.base.add(at & self.mask) }
    }
}

/// The writing end of a ring.
pub struct Producer<T> {
    shared: Arc<Shared<T>>,
    slots: Slots<T>,
    /// Our own copy of `shared.tail` (we are its only writer).
    tail: usize,
    /// The consumer's `head` as last read; it only grows, so a stale copy can
    /// only under-state the free space.
    cached_head: usize,
}

/// The reading end of a ring.
pub struct Consumer<T> {
    shared: Arc<Shared<T>>,
    slots: Slots<T>,
    /// The next slot we read. `shared.head` may lag behind it (see `pop`).
    head: usize,
    /// What we last stored in `shared.head`.
    published_head: usize,
    /// Publish after this many unpublished single pops.
    release_batch: usize,
    /// The producer's `tail` as last read; a stale copy can only under-state
    /// what is available.
    cached_tail: usize,
}

/// Single pops publish the consumer's index at least every this many items,
/// or every quarter of the ring if that is fewer (see `Consumer::pop`).
const RELEASE_BATCH: usize = 16;

/// Creates a ring holding up to `capacity` items, rounded up to a power of
/// two (at least 2). All memory is allocated here; pushing and popping never
/// allocate.
pub fn ring<T>(capacity: usize) -> (Producer<T>, Consumer<T>) {
    let capacity = capacity.max(2).next_power_of_two();
    let slots = (0..capacity)
        .map(|_| UnsafeCell::new(MaybeUninit::uninit()))
        .collect();
    let shared = Arc::new(Shared {
        head: CachePadded::new(AtomicUsize::new(0)),
        tail: CachePadded::new(AtomicUsize::new(0)),
        slots,
        mask: capacity - 1,
    });
    (
        Producer {
            slots: Slots::of(&shared),
            shared: shared.clone(),
            tail: 0,
            cached_head: 0,
        },
        Consumer {
            slots: Slots::of(&shared),
            shared,
            head: 0,
            published_head: 0,
            release_batch: RELEASE_BATCH.min(capacity / 4).max(1),
            cached_tail: 0,
        },
    )
}

// SAFETY: each end is used by one thread at a time (`&mut self` on every
// operation) and only moves `T`s across; its raw slot pointer points into the
// `Shared` it keeps alive, which is itself `Send + Sync` for `T: Send`.
unsafe impl<T: Send> Send for Producer<T> {}
// SAFETY: as for `Producer`.
unsafe impl<T: Send> Send for Consumer<T> {}

impl<T> Producer<T> {
    /// How many items the ring holds at most.
    pub fn capacity(&self) -> usize {
        self.slots.mask + 1
    }

    /// Free slots, refreshing the consumer's index only when the cached one
    /// shows fewer than `wanted`.
    #[inline(always)]
    fn free(&mut self, wanted: usize) -> usize {
        let cap = self.capacity();
        let mut free = cap - self.tail.wrapping_sub(self.cached_head);
        if free < wanted {
            // Acquire: pairs with the consumer's release store of `head`, so
            // its reads of the slots it freed happen before we overwrite them.
            self.cached_head = self.shared.head.load(Ordering::Acquire);
            free = cap - self.tail.wrapping_sub(self.cached_head);
        }
        free
    }

    /// Writes `value` into the slot at index `at` (not yet published).
    #[inline(always)]
    fn write(&mut self, at: usize, value: T) {
        debug_assert!(at.wrapping_sub(self.cached_head) < self.capacity());
        self.slots.get(at).with_mut(|p| {
            // SAFETY:
            // 1. `cached_head <= at < cached_head + capacity`: the consumer has
            //    released every earlier use of this slot (acquired via `head`),
            //    so the slot holds no live value and is not being read.
            // 2. `at >= tail` published so far: the consumer reads only below
            //    the `tail` it has acquired, so it cannot see this slot until
            //    our release store of a larger `tail`.
            unsafe { (*p).write(value) };
        });
    }

    /// Publishes every slot below our `tail`.
    #[inline(always)]
    fn publish(&self) {
        // Release: the slot writes above happen before the consumer can
        // observe the new tail (it loads it with acquire).
        self.shared.tail.store(self.tail, Ordering::Release);
    }

    /// Pushes one item, or hands it back if the ring is full.
    #[inline(always)]
    pub fn push(&mut self, value: T) -> Result<(), T> {
        if self.free(1) == 0 {
            return Err(value);
        }
        self.write(self.tail, value);
        self.tail = self.tail.wrapping_add(1);
        self.publish();
        Ok(())
    }

    /// Pushes as many items from `items` as there is room for, publishing
    /// them with one store. Takes an item from the iterator only when there is
    /// a slot for it, so nothing is lost: what is not pushed stays in `items`.
    #[inline(always)]
    pub fn push_burst<I: Iterator<Item = T>>(&mut self, items: &mut I) -> usize {
        let free = self.free(usize::MAX);
        let mut n = 0;
        #[cfg(not(loom))]
        for (at, len) in self.slots.runs(self.tail, free) {
            let mut k = 0;
            while k < len {
                let Some(value) = items.next() else { break };
                // SAFETY: `at + k` lies in a run of free slots (`runs` keeps
                // within the array), so the invariants of `write` hold: no
                // live value there, and unseen by the consumer until `publish`.
                unsafe {
                    UnsafeCell::raw_get(self.slots.base.add(at + k)).write(MaybeUninit::new(value))
                };
                k += 1;
            }
            n += k;
            if k < len {
                break;
            }
        }
        #[cfg(loom)]
        while n < free {
            let Some(value) = items.next() else { break };
            self.write(self.tail.wrapping_add(n), value);
            n += 1;
        }
        if n > 0 {
            self.tail = self.tail.wrapping_add(n);
            self.publish();
        }
        n
    }

    /// Copies as many items from the front of `items` as there is room for.
    #[inline(always)]
    pub fn push_slice(&mut self, items: &[T]) -> usize
    where
        T: Copy,
    {
        let n = self.free(items.len()).min(items.len());
        #[cfg(not(loom))]
        {
            // At most two contiguous runs: up to the end of the slots, then
            // from the start.
            let [(start, first), _] = self.slots.runs(self.tail, n);
            let base = self.slots.base;
            for (src, at) in [(&items[..first], start), (&items[first..n], 0)] {
                if src.is_empty() {
                    continue;
                }
                // SAFETY: `base` points to the slot array with provenance over
                // all of it, and `at + src.len() <= capacity`. The slots in
                // `[tail, tail + n)` hold no live value and are invisible to the
                // consumer until `publish` (the invariants of `write`), and
                // `T: Copy` needs no drop.
                unsafe {
                    let dst = UnsafeCell::raw_get(base.add(at)) as *mut T;
                    std::ptr::copy_nonoverlapping(src.as_ptr(), dst, src.len());
                }
            }
        }
        #[cfg(loom)]
        for (i, value) in items[..n].iter().enumerate() {
            self.write(self.tail.wrapping_add(i), *value);
        }
        if n > 0 {
            self.tail = self.tail.wrapping_add(n);
            self.publish();
        }
        n
    }

    /// Free slots (a lower bound: the consumer may be freeing more).
    pub fn free_len(&mut self) -> usize {
        self.free(usize::MAX)
    }
}

impl<T> Consumer<T> {
    /// How many items the ring holds at most.
    pub fn capacity(&self) -> usize {
        self.slots.mask + 1
    }

    /// Items available, refreshing the producer's index only when the cached
    /// one shows fewer than `wanted`.
    #[inline(always)]
    fn available(&mut self, wanted: usize) -> usize {
        let mut n = self.cached_tail.wrapping_sub(self.head);
        if n < wanted {
            // Acquire: pairs with the producer's release store of `tail`, so
            // its slot writes happen before our reads.
            self.cached_tail = self.shared.tail.load(Ordering::Acquire);
            n = self.cached_tail.wrapping_sub(self.head);
        }
        n
    }

    /// Moves the value out of the slot at index `at` (not yet released).
    #[inline(always)]
    fn read(&mut self, at: usize) -> T {
        debug_assert!(at.wrapping_sub(self.head) < self.cached_tail.wrapping_sub(self.head));
        self.slots.get(at).with(|p| {
            // SAFETY:
            // 1. `head <= at < cached_tail`: the producer initialised this slot
            //    before its release store of a tail above `at`, which we
            //    acquired, so the value is fully written.
            // 2. The producer will not write the slot again until it acquires a
            //    `head` above `at`, which we store only after this read; the
            //    value is moved out once and never read again.
            unsafe { (*p).assume_init_read() }
        })
    }

    /// Releases every slot below our `head` to the producer.
    #[inline(always)]
    fn release(&mut self) {
        // Release: our reads of the slots happen before the producer can
        // observe the new head and overwrite them.
        self.shared.head.store(self.head, Ordering::Release);
        self.published_head = self.head;
    }

    /// Pops one item.
    #[inline(always)]
    pub fn pop(&mut self) -> Option<T> {
        if self.available(1) == 0 {
            return None;
        }
        let value = self.read(self.head);
        self.head = self.head.wrapping_add(1);
        // Publishing our index on every pop makes a producer that waits on a
        // full ring pull the index's cache line across for each item. So a
        // single pop publishes only once it has read everything it knew of
        // (the ring may be empty: the producer then has room and does not
        // look), or every `release_batch` items. The producer sees free slots a
        // little later, never falsely: slots not yet published stay ours.
        if self.head == self.cached_tail
            || self.head.wrapping_sub(self.published_head) >= self.release_batch
        {
            self.release();
        }
        Some(value)
    }

    /// Pops up to `max` items, handing each to `sink` in order, and releases
    /// their slots with one store. Returns how many.
    #[inline(always)]
    pub fn pop_burst(&mut self, max: usize, mut sink: impl FnMut(T)) -> usize {
        let n = self.available(max).min(max);
        #[cfg(not(loom))]
        for (at, len) in self.slots.runs(self.head, n) {
            for k in 0..len {
                // SAFETY: `at + k` lies in a run of available slots, so the
                // invariants of `read` hold: initialised, and left alone by the
                // producer until `release`; each value is moved out once.
                let value = unsafe {
                    (*UnsafeCell::raw_get(self.slots.base.add(at + k))).assume_init_read()
                };
                sink(value);
            }
        }
        #[cfg(loom)]
        for i in 0..n {
            let value = self.read(self.head.wrapping_add(i));
            sink(value);
        }
        if n > 0 {
            self.head = self.head.wrapping_add(n);
            self.release();
        }
        n
    }

    /// Copies up to `out.len()` items into `out`; returns how many.
    #[inline(always)]
    pub fn pop_slice(&mut self, out: &mut [T]) -> usize
    where
        T: Copy,
    {
        let n = self.available(out.len()).min(out.len());
        #[cfg(not(loom))]
        {
            let [(start, first), _] = self.slots.runs(self.head, n);
            let base = self.slots.base;
            let (a, b) = out[..n].split_at_mut(first);
            for (dst, at) in [(a, start), (b, 0)] {
                if dst.is_empty() {
                    continue;
                }
                // SAFETY: `base` points to the slot array with provenance over
                // all of it, and `at + dst.len() <= capacity`. The slots in
                // `[head, head + n)` are initialised and the producer leaves
                // them alone until `release` (the invariants of `read`); `T:
                // Copy`, so copying out leaves nothing to drop.
                unsafe {
                    let src = UnsafeCell::raw_get(base.add(at)) as *const T;
                    std::ptr::copy_nonoverlapping(src, dst.as_mut_ptr(), dst.len());
                }
            }
        }
        #[cfg(loom)]
        for (i, slot) in out[..n].iter_mut().enumerate() {
            *slot = self.read(self.head.wrapping_add(i));
        }
        if n > 0 {
            self.head = self.head.wrapping_add(n);
            self.release();
        }
        n
    }

    /// Items waiting (a lower bound: the producer may be adding more).
    pub fn len(&mut self) -> usize {
        self.available(usize::MAX)
    }

    /// Whether no item is waiting.
    pub fn is_empty(&mut self) -> bool {
        self.len() == 0
    }
}

impl<T> Drop for Consumer<T> {
    fn drop(&mut self) {
        // Slots read but not yet published must not be dropped again by
        // `Shared::drop`.
        if self.head != self.published_head {
            self.release();
        }
    }
}

impl<T> fmt::Debug for Producer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Producer")
            .field("capacity", &self.capacity())
            .field("tail", &self.tail)
            .finish()
    }
}

impl<T> fmt::Debug for Consumer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Consumer")
            .field("capacity", &self.capacity())
            .field("head", &self.head)
            .finish()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize as Counter;

    #[test]
    fn capacity_rounds_up_to_a_power_of_two() {
        assert_eq!(ring::<u8>(0).0.capacity(), 2);
        assert_eq!(ring::<u8>(5).0.capacity(), 8);
        assert_eq!(ring::<u8>(64).1.capacity(), 64);
    }

    #[test]
    fn fifo_full_and_empty() {
        let (mut p, mut c) = ring(4);
        assert_eq!(c.pop(), None);
        for i in 0..4 {
            p.push(i).unwrap();
        }
        assert_eq!(p.push(99), Err(99));
        assert_eq!(c.len(), 4);
        for i in 0..4 {
            assert_eq!(c.pop(), Some(i));
        }
        assert_eq!(c.pop(), None);
        assert!(c.is_empty());
    }

    #[test]
    fn wrap_around_many_times() {
        let (mut p, mut c) = ring(4);
        let rounds = if cfg!(miri) { 50 } else { 10_000 };
        for i in 0..rounds {
            p.push(i).unwrap();
            p.push(i + 1).unwrap();
            p.push(i + 2).unwrap();
            assert_eq!(c.pop(), Some(i));
            assert_eq!(c.pop(), Some(i + 1));
            assert_eq!(c.pop(), Some(i + 2));
        }
    }

    #[test]
    fn bursts_take_only_what_fits() {
        let (mut p, mut c) = ring(8);
        let mut items = 0..20u32;
        assert_eq!(p.push_burst(&mut items), 8);
        assert_eq!(items.next(), Some(8), "the iterator keeps what did not fit");
        let mut out = Vec::new();
        assert_eq!(c.pop_burst(5, |v| out.push(v)), 5);
        assert_eq!(out, [0, 1, 2, 3, 4]);
        assert_eq!(p.push_slice(&[100, 101, 102, 103, 104, 105]), 5);
        let mut buf = [0u32; 16];
        assert_eq!(c.pop_slice(&mut buf), 8);
        assert_eq!(&buf[..8], &[5, 6, 7, 100, 101, 102, 103, 104]);
        assert_eq!(c.pop_slice(&mut buf), 0);
        assert_eq!(p.free_len(), 8);
    }

    /// Counts drops, to catch leaks and double drops.
    #[derive(Debug)]
    struct Noisy<'a>(&'a Counter);
    impl Drop for Noisy<'_> {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    #[test]
    fn single_pops_release_slots_in_batches() {
        let (mut p, mut c) = ring(64);
        while p.push(0u8).is_ok() {}
        // The consumer knows of all 64; it publishes after 16 pops, not before.
        for _ in 0..15 {
            c.pop().unwrap();
            assert_eq!(p.free_len(), 0);
        }
        c.pop().unwrap();
        assert_eq!(p.free_len(), 16);
        // Once it has read everything it knew of, it publishes at once.
        for _ in 0..16 {
            p.push(1).unwrap();
        }
        while c.pop().is_some() {}
        assert_eq!(p.free_len(), 64);
    }

    #[test]
    fn unconsumed_items_drop_once() {
        let drops = Counter::new(0);
        {
            let (mut p, mut c) = ring(4);
            for _ in 0..4 {
                p.push(Noisy(&drops)).unwrap();
            }
            let rejected = p.push(Noisy(&drops));
            assert!(rejected.is_err());
            drop(rejected);
            assert_eq!(drops.load(Ordering::Relaxed), 1);
            drop(c.pop());
            assert_eq!(drops.load(Ordering::Relaxed), 2);
            p.push(Noisy(&drops)).unwrap();
            drop(p);
            assert_eq!(
                drops.load(Ordering::Relaxed),
                2,
                "items outlive the producer"
            );
        }
        assert_eq!(drops.load(Ordering::Relaxed), 6);
    }

    #[test]
    fn two_threads_move_every_item_in_order() {
        let n: u64 = if cfg!(miri) { 200 } else { 200_000 };
        let (mut p, mut c) = ring::<Box<u64>>(16);
        let producer = std::thread::spawn(move || {
            let mut i = 0;
            while i < n {
                let mut burst = (i..(i + 7).min(n)).map(Box::new).peekable();
                let pushed = p.push_burst(&mut burst) as u64;
                i += pushed;
                if pushed == 0 {
                    std::thread::yield_now();
                }
            }
        });
        let mut expect = 0;
        while expect < n {
            let got = c.pop_burst(5, |v| {
                assert_eq!(*v, expect);
                expect += 1;
            });
            if got == 0 {
                std::thread::yield_now();
            }
        }
        producer.join().unwrap();
        assert_eq!(c.pop(), None);
    }
}
