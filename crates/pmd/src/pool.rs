//! The frame buffer pool: a fixed number of fixed-size buffers, allocated
//! once. A [`Frame`] is an mbuf-like handle: it owns one buffer, derefs to
//! the bytes of the frame it holds, and gives the buffer back to its pool
//! when dropped, on whatever core that happens. Nothing is allocated per
//! frame.
//!
//! Like a DPDK mempool, the pool keeps a small cache per thread: a frame
//! dropped on a core goes to that core's cache, and the core's next frame
//! comes from it, touching nothing another core touches. Only when a cache
//! runs full or empty do buffers move, half a cache at a time, through the
//! pool's shared lock-free queue (frames made on one core and dropped on
//! another flow that way).

use crossbeam_queue::ArrayQueue;
use std::cell::RefCell;
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

struct Shared {
    free: ArrayQueue<Box<[u8]>>,
    buffer_size: usize,
    count: usize,
    /// Buffers a thread may cache (0: none; small pools do not cache).
    cache_limit: usize,
    /// How many buffers each thread's cache holds now, for `available`.
    cached: Mutex<Vec<Arc<AtomicUsize>>>,
}

/// The largest per-thread cache: room for a few bursts in and out of every
/// port a core polls, so that in steady state receiving takes from it and
/// sending refills it without buffers passing through the shared queue
/// (like DPDK's mempool cache of 256).
const CACHE: usize = 256;

/// A thread's cache of one pool's buffers. Each buffer keeps the reference
/// to its pool that its frame held, so taking one from the cache, or putting
/// one back, changes no count another core reads.
struct ThreadCache {
    pool: Option<Arc<Shared>>,
    buffers: Vec<Box<[u8]>>,
    /// The pool reference of each buffer (apart: a vector of pairs was
    /// filled through two narrow stores and a wide load, which stalled
    /// store forwarding on every frame).
    pools: Vec<Arc<Shared>>,
    /// Published length of `buffers` (read by `available` on any thread).
    len: Arc<AtomicUsize>,
}

impl ThreadCache {
    /// Makes this the cache of `pool`, giving back what it held of another.
    #[inline(always)]
    fn switch_to(&mut self, pool: &Arc<Shared>) {
        if self.pool.as_ref().is_some_and(|p| Arc::ptr_eq(p, pool)) {
            return;
        }
        self.switch_slow(pool);
    }

    #[cold]
    #[inline(never)]
    fn switch_slow(&mut self, pool: &Arc<Shared>) {
        self.flush(self.buffers.len());
        self.len = Arc::new(AtomicUsize::new(0));
        if let Ok(mut cached) = pool.cached.lock() {
            cached.retain(|c| Arc::strong_count(c) > 1);
            cached.push(self.len.clone());
        }
        self.pool = Some(pool.clone());
    }

    /// Room for a whole cache, made once.
    #[inline(always)]
    fn reserve(&mut self) {
        if self.buffers.capacity() == 0 {
            self.reserve_slow();
        }
    }

    #[cold]
    #[inline(never)]
    fn reserve_slow(&mut self) {
        self.buffers.reserve_exact(CACHE);
        self.pools.reserve_exact(CACHE);
    }

    /// A buffer of `pool`, refilled from its shared queue (half a cache)
    /// when the cache is empty; `None` when the pool has none free.
    #[inline(always)]
    fn take(&mut self, pool: &Arc<Shared>) -> Option<(Box<[u8]>, Arc<Shared>)> {
        if self.buffers.is_empty() {
            self.reserve();
            for _ in 0..pool.cache_limit / 2 {
                let Some(b) = pool.free.pop() else { break };
                self.buffers.push(b);
                self.pools.push(pool.clone());
            }
        }
        self.buffers.pop().zip(self.pools.pop())
    }

    /// Keeps a buffer given back, half the cache going to the shared queue
    /// first when it is full.
    #[inline(always)]
    fn put(&mut self, buffer: Box<[u8]>, pool: Arc<Shared>) {
        if self.buffers.len() >= pool.cache_limit {
            self.flush(pool.cache_limit / 2);
        }
        self.reserve();
        self.buffers.push(buffer);
        self.pools.push(pool);
    }

    /// Returns `n` buffers to their pool's shared queue.
    fn flush(&mut self, n: usize) {
        let keep = self.buffers.len().saturating_sub(n);
        let pools = self.pools.drain(keep..);
        for (buffer, pool) in self.buffers.drain(keep..).zip(pools) {
            // The queue holds every buffer of the pool: there is room.
            let _ = pool.free.push(buffer);
        }
        self.len.store(self.buffers.len(), Ordering::Relaxed);
    }
}

impl Drop for ThreadCache {
    fn drop(&mut self) {
        self.flush(self.buffers.len());
    }
}

thread_local! {
    static CACHE_OF_THREAD: RefCell<ThreadCache> = RefCell::new(ThreadCache {
        pool: None,
        buffers: Vec::new(),
        pools: Vec::new(),
        len: Arc::new(AtomicUsize::new(0)),
    });
}

impl Shared {
    /// A buffer from this thread's cache, refilled from the shared queue
    /// when empty.
    #[inline]
    fn take(self: &Arc<Shared>) -> Option<(Box<[u8]>, Arc<Shared>)> {
        if self.cache_limit == 0 {
            return self.free.pop().map(|b| (b, self.clone()));
        }
        CACHE_OF_THREAD
            .try_with(|c| {
                let mut c = c.try_borrow_mut().ok()?;
                c.switch_to(self);
                let taken = c.take(self);
                c.len.store(c.buffers.len(), Ordering::Relaxed);
                taken
            })
            .ok()
            .flatten()
            .or_else(|| self.free.pop().map(|b| (b, self.clone())))
    }

    /// Up to `n` buffers, each handed to `put`, with one look at this
    /// thread's cache for them all; returns how many.
    #[inline]
    fn take_burst(
        self: &Arc<Shared>,
        n: usize,
        mut put: impl FnMut(Box<[u8]>, Arc<Shared>),
    ) -> usize {
        let mut taken = 0;
        if self.cache_limit > 0 {
            let _ = CACHE_OF_THREAD.try_with(|c| {
                let Ok(mut c) = c.try_borrow_mut() else {
                    return;
                };
                c.switch_to(self);
                while taken < n {
                    let Some((b, pool)) = c.take(self) else {
                        break;
                    };
                    put(b, pool);
                    taken += 1;
                }
                c.len.store(c.buffers.len(), Ordering::Relaxed);
            });
        }
        // No cache (a small pool, or a thread that is exiting): the queue.
        while taken < n {
            let Some(b) = self.free.pop() else { break };
            put(b, self.clone());
            taken += 1;
        }
        taken
    }

    /// Puts back the heap buffers of `frames` (emptying it), with one look at
    /// this thread's cache for them all; mbufs go back to their mempool.
    #[inline]
    fn give_burst(frames: &mut Vec<Frame>) {
        let mut frames = frames.drain(..);
        let _ = CACHE_OF_THREAD.try_with(|c| {
            let Ok(mut c) = c.try_borrow_mut() else {
                return;
            };
            for frame in frames.by_ref() {
                // Taken apart, not dropped: the drop would look at the
                // emptied storage again (29 instructions a frame).
                let mut frame = std::mem::ManuallyDrop::new(frame);
                match frame.storage.take() {
                    Some(Storage::Heap(buffer, pool)) if pool.cache_limit > 0 => {
                        c.switch_to(&pool);
                        c.put(buffer, pool);
                    }
                    Some(Storage::Heap(buffer, pool)) => {
                        // The queue holds every buffer of the pool: there is room.
                        let _ = pool.free.push(buffer);
                    }
                    // An mbuf goes back to its mempool.
                    other => drop(other),
                }
            }
            c.len.store(c.buffers.len(), Ordering::Relaxed);
        });
        // A thread that is exiting has no cache: what is left drops one by
        // one, each buffer straight to its queue.
    }

    /// Puts a buffer back in this thread's cache, half of which goes to the
    /// shared queue when it is full.
    #[inline]
    fn give(buffer: Box<[u8]>, pool: Arc<Shared>) {
        if pool.cache_limit == 0 {
            let _ = pool.free.push(buffer);
            return;
        }
        let mut item = Some((buffer, pool));
        let _ = CACHE_OF_THREAD.try_with(|c| {
            let Ok(mut c) = c.try_borrow_mut() else {
                return;
            };
            let Some((buffer, pool)) = item.take() else {
                return;
            };
            c.switch_to(&pool);
            c.put(buffer, pool);
            c.len.store(c.buffers.len(), Ordering::Relaxed);
        });
        // A thread that is exiting has no cache: straight to the queue.
        if let Some((buffer, pool)) = item {
            let _ = pool.free.push(buffer);
        }
    }
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
                // A pool too small to spare buffers for every core's cache
                // does not cache.
                cache_limit: if count >= 16 * CACHE { CACHE } else { 0 },
                cached: Mutex::new(Vec::new()),
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
                let (buffer, pool) = shared.take()?;
                Some(Frame {
                    storage: Some(Storage::Heap(buffer, pool)),
                    len: 0,
                })
            }
            #[cfg(feature = "dpdk")]
            Kind::Dpdk(pool) => Some(Frame::from_mbuf(pool.alloc()?, 0)),
        }
    }

    /// Up to `n` empty frames appended to `frames`, like DPDK's
    /// `rte_pktmbuf_alloc_bulk` (a driver filling its receive ring): one
    /// look at the thread's cache for them all. Returns how many (fewer when
    /// the pool runs out).
    #[inline]
    pub fn alloc_burst(&self, n: usize, frames: &mut Vec<Frame>) -> usize {
        match &self.kind {
            Kind::Heap(shared) => shared.take_burst(n, |buffer, pool| {
                frames.push(Frame {
                    storage: Some(Storage::Heap(buffer, pool)),
                    len: 0,
                })
            }),
            #[cfg(feature = "dpdk")]
            Kind::Dpdk(_) => {
                let before = frames.len();
                frames.extend(std::iter::from_fn(|| self.alloc()).take(n));
                frames.len() - before
            }
        }
    }

    /// Drops every frame of `frames`, like DPDK's `rte_pktmbuf_free_bulk`
    /// (a driver freeing what it sent): heap buffers go back to the
    /// thread's cache with one look at it for them all.
    #[inline]
    pub fn free_burst(frames: &mut Vec<Frame>) {
        Shared::give_burst(frames);
    }

    /// A frame holding a copy of `bytes` (cut to the buffer size).
    #[inline]
    pub fn alloc_from(&self, bytes: &[u8]) -> Option<Frame> {
        let mut f = self.alloc()?;
        f.fill(bytes);
        Some(f)
    }

    /// Buffers free now.
    pub fn available(&self) -> usize {
        match &self.kind {
            Kind::Heap(s) => {
                let cached: usize = s
                    .cached
                    .lock()
                    .map_or(0, |c| c.iter().map(|n| n.load(Ordering::Relaxed)).sum());
                s.free.len() + cached
            }
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
            len: len.min(m.room().len()),
            storage: Some(Storage::Mbuf(m)),
        }
    }

    /// Whether the frame is in an mbuf.
    #[cfg(feature = "dpdk")]
    pub(crate) fn is_mbuf(&self) -> bool {
        matches!(self.storage, Some(Storage::Mbuf(_)))
    }

    /// The mbuf holding this frame, its lengths set; or the frame back if
    /// it is in a heap buffer.
    #[cfg(feature = "dpdk")]
    pub(crate) fn into_mbuf(self) -> Result<crate::dpdk::Mbuf, Frame> {
        // Not dropped once emptied: the drop would reload the frame whole
        // right after `take` stored its tag, which stalls store forwarding
        // on every frame sent.
        let mut frame = std::mem::ManuallyDrop::new(self);
        match frame.storage.take() {
            Some(Storage::Mbuf(mut m)) => {
                m.set_len(frame.len);
                Ok(m)
            }
            other => {
                frame.storage = other;
                Err(std::mem::ManuallyDrop::into_inner(frame))
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

    /// The frame's length in bytes. (The same as the slice's, without
    /// looking up where the bytes are: the length never exceeds the
    /// capacity.)
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the frame holds no bytes.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Makes the frame a copy of `bytes`, cut to the capacity; returns the
    /// length. One lookup of the buffer for the copy and the length.
    #[inline]
    pub fn fill(&mut self, bytes: &[u8]) -> usize {
        let buffer = self.whole_mut();
        let n = bytes.len().min(buffer.len());
        buffer[..n].copy_from_slice(&bytes[..n]);
        self.len = n;
        n
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
            Shared::give(b, pool);
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

    #[test]
    fn fill_copies_cut_to_the_capacity_and_len_agrees_with_the_bytes() {
        let pool = FramePool::new(1, 8);
        let mut f = pool.alloc().unwrap();
        assert!(f.is_empty());
        assert_eq!(f.fill(&[7; 5]), 5);
        assert_eq!((&f[..], f.len()), (&[7u8; 5][..], 5));
        assert_eq!(
            f.fill(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]),
            8,
            "cut to the capacity"
        );
        assert_eq!((&f[..], f.len()), (&[1u8, 2, 3, 4, 5, 6, 7, 8][..], 8));
        assert_eq!(f.fill(&[]), 0);
        assert!(f.is_empty() && f[..].is_empty());
    }

    #[test]
    fn bursts_take_what_is_free_and_give_every_buffer_back() {
        // A small pool (no cache) and a caching one, bursts larger than a
        // cache refill, and frames of both pools freed in one burst.
        let small = FramePool::new(5, 64);
        let big = FramePool::new(16 * CACHE, 32);
        let mut frames = Vec::new();
        assert_eq!(small.alloc_burst(8, &mut frames), 5, "only what is free");
        assert_eq!(small.available(), 0);
        assert_eq!(big.alloc_burst(300, &mut frames), 300);
        assert_eq!(frames.len(), 305);
        assert!(frames.iter().all(|f| f.is_empty()));
        assert_eq!(frames[0].capacity(), 64);
        assert_eq!(frames[304].capacity(), 32);
        assert_eq!(big.available(), big.count() - 300);
        // Appended after what the vector held.
        let mut more = vec![big.alloc_from(&[1]).unwrap()];
        assert_eq!(big.alloc_burst(2, &mut more), 2);
        assert_eq!((more.len(), &more[0][..]), (3, &[1u8][..]));
        FramePool::free_burst(&mut frames);
        FramePool::free_burst(&mut more);
        assert!(frames.is_empty() && more.is_empty());
        assert_eq!(small.available(), small.count());
        assert_eq!(big.available(), big.count());
        // Freed on another thread, into that thread's cache, and back when
        // it ends.
        big.alloc_burst(100, &mut frames);
        std::thread::spawn(move || FramePool::free_burst(&mut frames))
            .join()
            .unwrap();
        assert_eq!(big.available(), big.count());
    }

    #[test]
    fn cached_buffers_count_as_available_and_come_back_when_threads_end() {
        let count = 64 * CACHE;
        let pool = FramePool::new(count, 16);
        // Frames made here and dropped on other threads, which cache them.
        let frames: Vec<Frame> = (0..count).map(|_| pool.alloc().unwrap()).collect();
        assert!(pool.alloc().is_none(), "every buffer is out");
        assert_eq!(pool.available(), 0);
        let mut frames = frames.into_iter();
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let mine: Vec<Frame> = frames.by_ref().take(count / 4).collect();
                let pool = pool.clone();
                std::thread::spawn(move || {
                    // Dropped here, they fill this thread's cache (and the
                    // queue past it); one more is taken from the cache.
                    drop(mine);
                    drop(pool.alloc().unwrap());
                })
            })
            .collect();
        // Joined (which waits for each thread's exit, its cache's too).
        for t in threads {
            t.join().unwrap();
        }
        // The threads ended: their caches went back to the queue, and this
        // thread can have every buffer again.
        assert_eq!(pool.available(), count);
        // Buffers in this thread's cache count as available too.
        drop((0..100).map(|_| pool.alloc().unwrap()).collect::<Vec<_>>());
        assert_eq!(pool.available(), count);
        let again: Vec<Frame> = (0..count).map_while(|_| pool.alloc()).collect();
        assert_eq!(again.len(), count);
        drop(again);
        assert_eq!(pool.available(), count);
    }

    #[test]
    fn a_thread_using_two_pools_gives_each_its_buffers_back() {
        let a = FramePool::new(64 * CACHE, 16);
        let b = FramePool::new(64 * CACHE, 16);
        for _ in 0..3 {
            let fa: Vec<Frame> = (0..100).map(|_| a.alloc().unwrap()).collect();
            let fb: Vec<Frame> = (0..100).map(|_| b.alloc().unwrap()).collect();
            drop(fa);
            drop(fb);
        }
        assert_eq!(a.available(), a.count());
        assert_eq!(b.available(), b.count());
    }
}
