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

/// A pool of frame buffers.
#[derive(Clone)]
pub struct FramePool {
    shared: Arc<Shared>,
}

impl fmt::Debug for FramePool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FramePool")
            .field("count", &self.shared.count)
            .field("buffer_size", &self.shared.buffer_size)
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
            shared: Arc::new(Shared {
                free,
                buffer_size: buffer_size.max(1),
                count,
            }),
        }
    }

    /// An empty frame, or `None` when every buffer is in use.
    #[inline]
    pub fn alloc(&self) -> Option<Frame> {
        let buffer = self.shared.free.pop()?;
        Some(Frame {
            buffer: Some(buffer),
            len: 0,
            pool: self.shared.clone(),
        })
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
        self.shared.free.len()
    }

    /// Buffers in the pool.
    pub fn count(&self) -> usize {
        self.shared.count
    }

    /// Bytes per buffer.
    pub fn buffer_size(&self) -> usize {
        self.shared.buffer_size
    }
}

/// One frame in a pool buffer.
pub struct Frame {
    buffer: Option<Box<[u8]>>,
    len: usize,
    pool: Arc<Shared>,
}

impl fmt::Debug for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Frame").field("len", &self.len).finish()
    }
}

impl Frame {
    /// The whole buffer, for writing a frame into it (then [`Frame::set_len`]).
    #[inline]
    pub fn buffer_mut(&mut self) -> &mut [u8] {
        self.buffer.as_deref_mut().unwrap_or(&mut [])
    }

    /// Bytes the buffer holds at most.
    #[inline]
    pub fn capacity(&self) -> usize {
        self.buffer.as_deref().map_or(0, <[u8]>::len)
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
        match &self.buffer {
            Some(b) => &b[..self.len],
            None => &[],
        }
    }
}

impl DerefMut for Frame {
    #[inline]
    fn deref_mut(&mut self) -> &mut [u8] {
        let len = self.len;
        match &mut self.buffer {
            Some(b) => &mut b[..len],
            None => &mut [],
        }
    }
}

impl Drop for Frame {
    #[inline]
    fn drop(&mut self) {
        if let Some(b) = self.buffer.take() {
            // The queue holds every buffer of the pool: there is room.
            let _ = self.pool.free.push(b);
        }
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
