//! The frame buffer pool: a fixed number of fixed-size buffers, allocated
//! once. A [`Frame`] is an mbuf-like handle: it owns one buffer, derefs to
//! the bytes of the frame it holds, and gives the buffer back to its pool
//! when dropped, on whatever core that happens. Taking and returning a buffer
//! is a pop and a push on a lock-free queue; nothing is allocated per frame.

use crossbeam_queue::ArrayQueue;
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;

struct Shared {
    free: ArrayQueue<Box<[u8]>>,
    buffer_size: usize,
    count: usize,
}

#[derive(Clone)]
enum Kind {
    Heap(Arc<Shared>),
    #[cfg(feature = "dpdk")]
    Dpdk(crate::dpdk::Mempool),
}

/// A pool of frame buffers: heap buffers allocated once, or (with the
/// `dpdk` feature) a DPDK mbuf pool, whose frames DPDK ports send and
/// receive without copying.
#[derive(Clone)]
pub struct FramePool {
    kind: Kind,
}

impl fmt::Debug for FramePool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FramePool")
            .field("count", &self.count())
            .field("buffer_size", &self.buffer_size())
            .field("available", &self.available())
            .finish()
    }
}

impl FramePool {
    /// `count` buffers of `buffer_size` bytes each (both at least 1).
    pub fn new(count: usize, buffer_size: usize) -> FramePool {
        let count = count.max(1);
        let free = ArrayQueue::new(count);
        for _ in 0..count {
            // Capacity is `count`: every push fits.
            let _ = free.push(vec![0u8; buffer_size.max(1)].into_boxed_slice());
        }
        FramePool {
            kind: Kind::Heap(Arc::new(Shared {
                free,
                buffer_size: buffer_size.max(1),
                count,
            })),
        }
    }

    /// A pool of DPDK mbufs.
    #[cfg(feature = "dpdk")]
    pub fn dpdk(mempool: crate::dpdk::Mempool) -> FramePool {
        FramePool {
            kind: Kind::Dpdk(mempool),
        }
    }

    /// The DPDK mbuf pool behind this pool, if it is one.
    #[cfg(feature = "dpdk")]
    pub fn mempool(&self) -> Option<&crate::dpdk::Mempool> {
        match &self.kind {
            Kind::Dpdk(m) => Some(m),
            Kind::Heap(_) => None,
        }
    }

    /// An empty frame, or `None` when every buffer is in use.
    #[inline]
    pub fn alloc(&self) -> Option<Frame> {
        match &self.kind {
            Kind::Heap(shared) => {
                let buffer = shared.free.pop()?;
                Some(Frame {
                    storage: Some(Storage::Heap(buffer, shared.clone())),
                    len: 0,
                })
            }
            #[cfg(feature = "dpdk")]
            Kind::Dpdk(pool) => Some(Frame::from_mbuf(pool.alloc()?, 0)),
        }
    }

    /// A frame holding a copy of `bytes` (cut to the buffer size).
    #[inline]
    pub fn alloc_from(&self, bytes: &[u8]) -> Option<Frame> {
        let mut f = self.alloc()?;
        let n = bytes.len().min(f.capacity());
        f.buffer_mut()[..n].copy_from_slice(&bytes[..n]);
        f.set_len(n);
        Some(f)
    }

    /// Buffers free now.
    pub fn available(&self) -> usize {
        match &self.kind {
            Kind::Heap(s) => s.free.len(),
            #[cfg(feature = "dpdk")]
            Kind::Dpdk(m) => m.available(),
        }
    }

    /// Buffers in the pool.
    pub fn count(&self) -> usize {
        match &self.kind {
            Kind::Heap(s) => s.count,
            #[cfg(feature = "dpdk")]
            Kind::Dpdk(m) => m.count(),
        }
    }

    /// Bytes per buffer.
    pub fn buffer_size(&self) -> usize {
        match &self.kind {
            Kind::Heap(s) => s.buffer_size,
            #[cfg(feature = "dpdk")]
            Kind::Dpdk(m) => m.data_room(),
        }
    }
}

enum Storage {
    Heap(Box<[u8]>, Arc<Shared>),
    #[cfg(feature = "dpdk")]
    Mbuf(crate::dpdk::Mbuf),
}

/// One frame in a pool buffer.
pub struct Frame {
    storage: Option<Storage>,
    len: usize,
}

impl fmt::Debug for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Frame").field("len", &self.len).finish()
    }
}

impl Frame {
    /// A frame in a received or allocated mbuf, `len` bytes long.
    #[cfg(feature = "dpdk")]
    pub(crate) fn from_mbuf(m: crate::dpdk::Mbuf, len: usize) -> Frame {
        Frame {
            storage: Some(Storage::Mbuf(m)),
            len,
        }
    }

    /// The mbuf holding this frame, its lengths set; or the frame back if
    /// it is in a heap buffer.
    #[cfg(feature = "dpdk")]
    pub(crate) fn into_mbuf(mut self) -> Result<crate::dpdk::Mbuf, Frame> {
        match self.storage.take() {
            Some(Storage::Mbuf(mut m)) => {
                m.set_len(self.len);
                Ok(m)
            }
            other => {
                self.storage = other;
                Err(self)
            }
        }
    }

    fn whole(&self) -> &[u8] {
        match &self.storage {
            Some(Storage::Heap(b, _)) => b,
            #[cfg(feature = "dpdk")]
            Some(Storage::Mbuf(m)) => m.room(),
            None => &[],
        }
    }

    fn whole_mut(&mut self) -> &mut [u8] {
        match &mut self.storage {
            Some(Storage::Heap(b, _)) => b,
            #[cfg(feature = "dpdk")]
            Some(Storage::Mbuf(m)) => m.room_mut(),
            None => &mut [],
        }
    }

    /// The whole buffer, for writing a frame into it (then [`Frame::set_len`]).
    #[inline]
    pub fn buffer_mut(&mut self) -> &mut [u8] {
        self.whole_mut()
    }

    /// Bytes the buffer holds at most.
    #[inline]
    pub fn capacity(&self) -> usize {
        self.whole().len()
    }

    /// Sets the frame's length (cut to the capacity).
    #[inline]
    pub fn set_len(&mut self, len: usize) {
        self.len = len.min(self.capacity());
    }
}

impl Deref for Frame {
    type Target = [u8];

    #[inline]
    fn deref(&self) -> &[u8] {
        let len = self.len;
        &self.whole()[..len]
    }
}

impl DerefMut for Frame {
    #[inline]
    fn deref_mut(&mut self) -> &mut [u8] {
        let len = self.len;
        &mut self.whole_mut()[..len]
    }
}

impl Drop for Frame {
    #[inline]
    fn drop(&mut self) {
        if let Some(Storage::Heap(b, pool)) = self.storage.take() {
            // The queue holds every buffer of the pool: there is room.
            let _ = pool.free.push(b);
        }
        // An mbuf goes back to its mempool when it drops.
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_come_back_when_frames_drop() {
        let pool = FramePool::new(2, 64);
        let a = pool.alloc_from(&[1, 2, 3]).unwrap();
        let mut b = pool.alloc().unwrap();
        assert!(pool.alloc().is_none(), "exhausted");
        assert_eq!(&a[..], &[1, 2, 3]);
        b.buffer_mut()[..2].copy_from_slice(&[9, 9]);
        b.set_len(1000);
        assert_eq!(b.len(), 64, "cut to the capacity");
        drop(a);
        assert_eq!(pool.available(), 1);
        // Frames may drop on another thread.
        std::thread::spawn(move || drop(b)).join().unwrap();
        assert_eq!(pool.available(), 2);
        assert_eq!(pool.alloc_from(&[0; 100]).unwrap().len(), 64);
    }
}
