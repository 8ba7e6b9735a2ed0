//! DPDK ports (feature `dpdk`): any ethdev DPDK drives (`net_null`,
//! `net_tap`, `net_ring`, `net_pcap`, `net_af_packet`, `net_memif`, real NICs) as a
//! [`Port`], with mbufs used as frames without copying.
//!
//! EAL initialises once per process ([`init`]); a second `rte_eal_init`
//! fails even after cleanup, so every port of a process shares it. Give
//! each process its own `--file-prefix` (or `--no-shconf`).
#![allow(unsafe_code)]

use crate::pool::{Frame, FramePool};
use crate::port::{DeviceStats, Port, PortInfo, PortStats};
use dpdk_sys as sys;
use std::ffi::{c_char, CStr, CString};
use std::fmt;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};

/// A DPDK call that failed: what was attempted and DPDK's error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DpdkError {
    /// What was attempted.
    pub what: String,
    /// DPDK's (or the OS's) error number.
    pub errno: i32,
    /// Its description.
    pub message: String,
}

impl fmt::Display for DpdkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} (error {})", self.what, self.message, self.errno)
    }
}

impl std::error::Error for DpdkError {}

fn error(what: impl Into<String>, errno: i32) -> DpdkError {
    let errno = errno.abs();
    // SAFETY: rte_strerror takes any error number and returns a pointer to a
    // NUL-terminated string in static or thread-local storage.
    let message = unsafe { CStr::from_ptr(sys::rte_strerror(errno)) }
        .to_string_lossy()
        .into_owned();
    DpdkError {
        what: what.into(),
        errno,
        message,
    }
}

fn last_error(what: impl Into<String>) -> DpdkError {
    // SAFETY: reads DPDK's per-thread rte_errno through the shim; no
    // arguments, no state changed.
    error(what, unsafe { sys::tlpf_errno() })
}

static EAL: OnceLock<Result<(), DpdkError>> = OnceLock::new();

/// Initialises DPDK's EAL with `args` (as `dpdk-testpmd` takes them before
/// `--`, program name excluded) the first time it is called in a process;
/// later calls return the first call's outcome and ignore their arguments.
pub fn init(args: &[&str]) -> Result<(), DpdkError> {
    EAL.get_or_init(|| {
        let mut owned: Vec<CString> = Vec::with_capacity(args.len() + 1);
        for a in std::iter::once("tlpfabric").chain(args.iter().copied()) {
            owned.push(CString::new(a).map_err(|_| DpdkError {
                what: "EAL arguments".into(),
                errno: 22,
                message: format!("argument {a:?} contains a NUL byte"),
            })?);
        }
        // EAL may keep and reorder argv: the strings are leaked on purpose,
        // living as long as the process, as EAL expects.
        let mut argv: Vec<*mut c_char> = owned.into_iter().map(|c| c.into_raw()).collect();
        let argc = argv.len() as i32;
        // EAL pins the calling thread to its main lcore's CPU. Our poll-mode
        // cores pin themselves, and threads spawned later inherit the
        // caller's set, so the caller gets its set back afterwards.
        // SAFETY: a zeroed cpu_set_t is a valid empty set, and both calls
        // get its true size; 0 names the calling thread.
        let affinity = unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            let size = std::mem::size_of::<libc::cpu_set_t>();
            (libc::sched_getaffinity(0, size, &mut set) == 0).then_some(set)
        };
        // SAFETY: argv holds `argc` valid NUL-terminated strings that are
        // never freed; the vector itself is leaked below for the same reason.
        let rc = unsafe { sys::rte_eal_init(argc, argv.as_mut_ptr()) };
        std::mem::forget(argv);
        if let Some(set) = affinity {
            // SAFETY: `set` was filled by sched_getaffinity above.
            unsafe {
                libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
            }
        }
        if rc < 0 {
            return Err(last_error(format!("rte_eal_init {args:?}")));
        }
        Ok(())
    })
    .clone()
}

/// Makes the calling thread one of DPDK's lcores (EAL must be
/// initialised), so that mempools keep a per-thread cache for it, as they
/// do for the lcores EAL starts: without one, every mbuf taken or freed is
/// an atomic operation on the pool's shared ring. Returns the lcore ID, or
/// an error when every lcore ID is in use.
pub fn register_thread() -> Result<u32, DpdkError> {
    // SAFETY: both calls act on the calling thread only; EAL is initialised
    // (the caller's precondition, as for every DPDK call here).
    unsafe {
        if sys::rte_thread_register() != 0 {
            return Err(last_error("rte_thread_register"));
        }
        Ok(sys::tlpf_lcore_id())
    }
}

/// A DPDK mbuf pool. Mempools are safe to use from any thread.
#[derive(Debug, Clone)]
pub struct Mempool {
    ptr: NonNull<sys::rte_mempool>,
    count: usize,
    data_room: usize,
}

// SAFETY: an rte_mempool is designed for concurrent get/put from many
// threads (its ring is multi-producer/multi-consumer by default).
unsafe impl Send for Mempool {}
// SAFETY: as above; `Mempool` exposes no unsynchronised mutation.
unsafe impl Sync for Mempool {}

impl Mempool {
    /// A pool of `count` mbufs with `data_room` bytes of data each (after
    /// DPDK's headroom), named `name` (unique per process), with a per-lcore
    /// cache of `cache` mbufs. EAL must be initialised.
    pub fn new(name: &str, count: u32, cache: u32, data_room: u16) -> Result<Mempool, DpdkError> {
        let cname = CString::new(name).map_err(|_| error("mempool name", 22))?;
        let room = data_room as u32 + sys::RTE_PKTMBUF_HEADROOM;
        let room = u16::try_from(room).map_err(|_| error("mempool data room", 22))?;
        // SAFETY: `cname` is a valid C string for the call; DPDK copies it.
        // rte_socket_id has no preconditions.
        let ptr = unsafe {
            sys::rte_pktmbuf_pool_create(
                cname.as_ptr(),
                count,
                cache,
                0,
                room,
                sys::rte_socket_id() as i32,
            )
        };
        let ptr = NonNull::new(ptr)
            .ok_or_else(|| last_error(format!("rte_pktmbuf_pool_create {name}")))?;
        Ok(Mempool {
            ptr,
            count: count as usize,
            data_room: data_room as usize,
        })
    }

    /// An mbuf, or `None` when the pool is empty.
    #[inline]
    pub fn alloc(&self) -> Option<Mbuf> {
        // SAFETY: `ptr` is a live mempool (never freed while a `Mempool`
        // exists: pools live as long as the process).
        let m = unsafe { sys::tlpf_pktmbuf_alloc(self.ptr.as_ptr()) };
        // SAFETY: a freshly allocated mbuf is live and ours alone.
        NonNull::new(m).map(|p| unsafe { Mbuf::from_raw(p) })
    }

    /// Mbufs free now.
    pub fn available(&self) -> usize {
        // SAFETY: `ptr` is a live mempool; counting reads its state only.
        unsafe { sys::rte_mempool_avail_count(self.ptr.as_ptr()) as usize }
    }

    /// Mbufs in the pool.
    pub fn count(&self) -> usize {
        self.count
    }

    /// Data bytes per mbuf.
    pub fn data_room(&self) -> usize {
        self.data_room
    }

    fn as_ptr(&self) -> *mut sys::rte_mempool {
        self.ptr.as_ptr()
    }
}

/// One single-segment mbuf, owned: freed to its pool when dropped. Where
/// its data starts and how much room follows are read once, when it is
/// taken, since they do not change while it is held.
#[derive(Debug)]
pub struct Mbuf {
    ptr: NonNull<sys::rte_mbuf>,
    data: NonNull<u8>,
    room: usize,
}

// SAFETY: an mbuf is owned by one holder at a time; freeing it from any
// thread is allowed (the pool's ring is thread-safe).
unsafe impl Send for Mbuf {}

impl Mbuf {
    /// Takes ownership of a live mbuf.
    ///
    /// # Safety
    /// `ptr` must be a live, single-segment mbuf no one else holds.
    unsafe fn from_raw(ptr: NonNull<sys::rte_mbuf>) -> Mbuf {
        // Read here rather than through the C shim's `rte_pktmbuf_mtod`
        // (the buffer's address plus the data offset) and tailroom (the
        // buffer's length less the offset): three calls per mbuf otherwise.
        // SAFETY: the caller hands over a live mbuf; these read its fields.
        let (buffer, offset, length) = unsafe {
            let m = ptr.as_ptr();
            ((*m).buf_addr as *mut u8, (*m).data_off, (*m).buf_len)
        };
        let data = NonNull::new(buffer.wrapping_add(usize::from(offset)))
            .filter(|_| !buffer.is_null() && offset <= length);
        Mbuf {
            ptr,
            room: data.map_or(0, |_| usize::from(length - offset)),
            data: data.unwrap_or(NonNull::dangling()),
        }
    }

    /// The whole data room, from the start of the data to the end of the buffer.
    pub(crate) fn room(&self) -> &[u8] {
        // SAFETY: the mbuf is live and owned by us; `data` is where its data
        // starts and the buffer extends `room` bytes from there (or `room`
        // is 0).
        unsafe { std::slice::from_raw_parts(self.data.as_ptr(), self.room) }
    }

    pub(crate) fn room_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `room`, and `&mut self` makes the access exclusive.
        unsafe { std::slice::from_raw_parts_mut(self.data.as_ptr(), self.room) }
    }

    /// The frame length DPDK sees (data and packet length).
    pub(crate) fn set_len(&mut self, len: usize) {
        let len = len.min(self.room) as u16;
        // SAFETY: the mbuf is live and ours; the length fits its buffer, and
        // it is one segment, so the packet length is the data length.
        unsafe {
            let m = self.ptr.as_ptr();
            (*m).data_len = len;
            (*m).pkt_len = u32::from(len);
        }
    }

    fn data_len(&self) -> usize {
        // SAFETY: the mbuf is live; reading its length has no effect.
        unsafe { usize::from((*self.ptr.as_ptr()).data_len) }
    }

    /// Gives up ownership (DPDK takes it, e.g. on transmit).
    fn into_raw(self) -> *mut sys::rte_mbuf {
        let p = self.ptr.as_ptr();
        std::mem::forget(self);
        p
    }
}

impl Drop for Mbuf {
    fn drop(&mut self) {
        // SAFETY: the mbuf is live and owned by us; after this it is not used.
        unsafe { sys::tlpf_pktmbuf_free(self.ptr.as_ptr()) }
    }
}

const MAX_BURST: usize = 64;

/// One receive and one transmit queue of an ethdev port.
#[derive(Debug)]
pub struct DpdkPort {
    id: u16,
    queue: u16,
    /// Stops the port when the last of its queues' handles drops.
    _started: Arc<Started>,
    name: String,
    pool: FramePool,
    stats: PortStats,
    /// Frames sent that had to be copied into mbufs (heap frames).
    pub tx_copies: u64,
}

impl DpdkPort {
    /// Opens the ethdev named `device` (a vdev such as `net_null0`, or a PCI
    /// address), receiving into `pool`'s mbufs, and starts it. EAL must be
    /// initialised and `pool` must be a DPDK pool ([`FramePool::dpdk`]).
    pub fn open(
        device: &str,
        pool: &FramePool,
        rx_descriptors: u16,
        tx_descriptors: u16,
    ) -> Result<DpdkPort, DpdkError> {
        Self::open_queues(device, pool, 1, rx_descriptors, tx_descriptors)?
            .pop()
            .ok_or_else(|| error(format!("{device}: no queue"), 22))
    }

    fn start(
        id: u16,
        device: &str,
        pool: &FramePool,
        mempool: &Mempool,
        rx_descriptors: u16,
        tx_descriptors: u16,
    ) -> Result<DpdkPort, DpdkError> {
        let mut ports =
            Self::start_queues(id, device, pool, mempool, 1, rx_descriptors, tx_descriptors)?;
        ports.pop().ok_or_else(|| error(device.to_string(), 22))
    }

    /// Configures and starts the port with `queues` receive and transmit
    /// queues; one handle per queue pair.
    fn start_queues(
        id: u16,
        device: &str,
        pool: &FramePool,
        mempool: &Mempool,
        queues: u16,
        rx_descriptors: u16,
        tx_descriptors: u16,
    ) -> Result<Vec<DpdkPort>, DpdkError> {
        let mut info = sys::rte_eth_dev_info::default();
        // SAFETY: the port exists and `info` is a valid out pointer.
        let rc = unsafe { sys::rte_eth_dev_info_get(id, &mut info) };
        if rc == 0 && (queues > info.max_rx_queues || queues > info.max_tx_queues) {
            return Err(error(
                format!(
                    "{device}: {queues} queue pairs asked for, the device has at most {} receive and {} transmit queues",
                    info.max_rx_queues, info.max_tx_queues
                ),
                22,
            ));
        }
        let conf = sys::rte_eth_conf::default();
        // SAFETY: the port exists; `conf` is a zeroed (default) configuration
        // that lives across the call; the queue setups take the default queue
        // configurations (null) and a live mempool.
        unsafe {
            let socket = sys::rte_socket_id();
            let rc = sys::rte_eth_dev_configure(id, queues, queues, &conf);
            if rc < 0 {
                return Err(error(format!("{device}: rte_eth_dev_configure"), rc));
            }
            for q in 0..queues {
                let rc = sys::rte_eth_rx_queue_setup(
                    id,
                    q,
                    rx_descriptors,
                    socket,
                    std::ptr::null(),
                    mempool.as_ptr(),
                );
                if rc < 0 {
                    return Err(error(format!("{device}: rte_eth_rx_queue_setup {q}"), rc));
                }
                let rc =
                    sys::rte_eth_tx_queue_setup(id, q, tx_descriptors, socket, std::ptr::null());
                if rc < 0 {
                    return Err(error(format!("{device}: rte_eth_tx_queue_setup {q}"), rc));
                }
            }
            let rc = sys::rte_eth_dev_start(id);
            if rc < 0 {
                return Err(error(format!("{device}: rte_eth_dev_start"), rc));
            }
            // Not every driver has a promiscuous mode; frames to our own MAC
            // still arrive without it.
            let _ = sys::rte_eth_promiscuous_enable(id);
        }
        let started = Arc::new(Started(id));
        Ok((0..queues)
            .map(|queue| DpdkPort {
                id,
                queue,
                name: device.into(),
                pool: pool.clone(),
                stats: PortStats::default(),
                tx_copies: 0,
                _started: started.clone(),
            })
            .collect())
    }

    /// The port's own MAC address (`None` if the driver gives none).
    pub fn mac(&self) -> Option<[u8; 6]> {
        let mut addr = sys::rte_ether_addr::default();
        // SAFETY: the port exists while this handle lives (`_started`), and
        // `addr` is a valid out pointer for the call's duration.
        let rc = unsafe { sys::rte_eth_macaddr_get(self.id, &mut addr) };
        (rc == 0).then_some(addr.addr_bytes)
    }

    /// Opens the ethdev named `device` with `queues` receive and transmit
    /// queue pairs, one handle each, so that as many cores can poll it
    /// (as testpmd's forwarding cores poll a queue each). EAL must be
    /// initialised and `pool` must be a DPDK pool.
    pub fn open_queues(
        device: &str,
        pool: &FramePool,
        queues: u16,
        rx_descriptors: u16,
        tx_descriptors: u16,
    ) -> Result<Vec<DpdkPort>, DpdkError> {
        let mempool = pool
            .mempool()
            .ok_or_else(|| error(format!("{device}: the pool is not a DPDK mbuf pool"), 22))?;
        let cname = CString::new(device).map_err(|_| error("device name", 22))?;
        let mut id = 0u16;
        // SAFETY: `cname` is a valid C string and `id` a valid out pointer.
        let rc = unsafe { sys::rte_eth_dev_get_port_by_name(cname.as_ptr(), &mut id) };
        if rc != 0 {
            return Err(error(
                format!("{device}: no such ethdev (is it in the EAL arguments?)"),
                rc,
            ));
        }
        Self::start_queues(
            id,
            device,
            pool,
            mempool,
            queues.max(1),
            rx_descriptors,
            tx_descriptors,
        )
    }

    /// The ethdev port ID.
    pub fn id(&self) -> u16 {
        self.id
    }

    /// Two ethdevs joined back to back in this process (DPDK's `net_ring`
    /// driver over two rte_rings of `capacity` mbufs, one per direction):
    /// what one sends, the other receives, mbufs moving without copies. The
    /// ethdevs are named `NAME-a` and `NAME-b` after `name` and a number
    /// unique in the process. `pool` must be a DPDK pool.
    pub fn pair(
        name: &str,
        capacity: u32,
        pool: &FramePool,
    ) -> Result<(DpdkPort, DpdkPort), DpdkError> {
        static PAIRS: AtomicU32 = AtomicU32::new(0);
        let mempool = pool
            .mempool()
            .ok_or_else(|| error(format!("{name}: the pool is not a DPDK mbuf pool"), 22))?;
        let n = PAIRS.fetch_add(1, Ordering::Relaxed);
        // Ring names share DPDK's 32-byte memzone names with a prefix.
        let rings = [0, 1].map(|d| CString::new(format!("tlpf{n}.{d}")));
        let [Ok(ab), Ok(ba)] = rings else {
            return Err(error("ring name", 22));
        };
        let capacity = capacity.max(2).next_power_of_two();
        let flags = sys::RING_F_SP_ENQ | sys::RING_F_SC_DEQ;
        // SAFETY: the names are valid C strings (DPDK copies them);
        // rte_socket_id has no preconditions. Each ring has one producer
        // and one consumer (the port ends that send and receive on it).
        let (ab, ba) = unsafe {
            let socket = sys::rte_socket_id() as i32;
            (
                sys::rte_ring_create(ab.as_ptr(), capacity, socket, flags),
                sys::rte_ring_create(ba.as_ptr(), capacity, socket, flags),
            )
        };
        if ab.is_null() || ba.is_null() {
            return Err(last_error(format!("{name}: rte_ring_create")));
        }
        let open_end = |end: &str, rx: *mut sys::rte_ring, tx: *mut sys::rte_ring| {
            let device = format!("{name}-{n}{end}");
            let cname = CString::new(device.as_str()).map_err(|_| error("device name", 22))?;
            // SAFETY: `cname` is a valid C string; the ring arrays hold one
            // live ring each, kept for the life of the process (the ethdev
            // uses them until it is closed, and it is never closed).
            let id = unsafe {
                sys::rte_eth_from_rings(cname.as_ptr(), &rx, 1, &tx, 1, sys::rte_socket_id())
            };
            let id = u16::try_from(id)
                .map_err(|_| last_error(format!("{device}: rte_eth_from_rings")))?;
            Self::start(id, &device, pool, mempool, 1024, 1024)
        };
        let a = open_end("a", ba, ab)?;
        let b = open_end("b", ab, ba)?;
        Ok((a, b))
    }

    /// Copies the frames built outside DPDK among the first of `frames` a
    /// burst sends into mbufs, in place; returns how many from the front are
    /// in mbufs now (a frame no mbuf was free for waits, and those behind it).
    fn copy_into_mbufs(&mut self, frames: &mut [Frame]) -> usize {
        let want = frames.len().min(MAX_BURST);
        for (i, frame) in frames[..want].iter_mut().enumerate() {
            if frame.is_mbuf() {
                continue;
            }
            let Some(mut m) = self.pool.mempool().and_then(Mempool::alloc) else {
                return i;
            };
            let n = frame.len().min(m.room().len());
            m.room_mut()[..n].copy_from_slice(&frame[..n]);
            *frame = Frame::from_mbuf(m, n);
            self.tx_copies += 1;
        }
        want
    }
}

impl Port for DpdkPort {
    /// Receives on this handle's queue (`_queue` is its index in the
    /// caller's view, always 0 for a handle).
    fn rx_burst(&mut self, _queue: u16, frames: &mut Vec<Frame>, max: usize) -> usize {
        let queue = self.queue;
        let mut mbufs = [std::ptr::null_mut::<sys::rte_mbuf>(); MAX_BURST];
        let want = max.min(MAX_BURST) as u16;
        // SAFETY: the port is started with this handle's queue, which no
        // other handle polls; `mbufs` has room for `want` pointers, and DPDK
        // hands over ownership of the `n` it fills.
        let n =
            unsafe { sys::tlpf_eth_rx_burst(self.id, queue, mbufs.as_mut_ptr(), want) } as usize;
        for &p in &mbufs[..n] {
            if let Some(p) = NonNull::new(p) {
                // SAFETY: DPDK handed this received mbuf over to us.
                let m = unsafe { Mbuf::from_raw(p) };
                let len = m.data_len();
                self.stats.rx_bytes += len as u64;
                frames.push(Frame::from_mbuf(m, len));
            }
        }
        self.stats.rx_frames += n as u64;
        n
    }

    fn tx_burst(&mut self, _queue: u16, frames: &mut Vec<Frame>) -> usize {
        let queue = self.queue;
        let mut mbufs = [std::ptr::null_mut::<sys::rte_mbuf>(); MAX_BURST];
        let mut lens = [0usize; MAX_BURST];
        let want = self.copy_into_mbufs(frames);
        let mut k = 0;
        for f in frames.drain(..want) {
            let len = f.len();
            // Every frame here is in an mbuf by now.
            let Ok(m) = f.into_mbuf() else { continue };
            mbufs[k] = m.into_raw();
            lens[k] = len;
            k += 1;
        }
        // SAFETY: the port is started with this handle's queue, which no
        // other handle uses; `mbufs[..k]` are owned, single-segment mbufs
        // with their lengths set. DPDK takes ownership of the first `sent`;
        // the rest stay ours.
        let sent = unsafe { sys::tlpf_eth_tx_burst(self.id, queue, mbufs.as_mut_ptr(), k as u16) }
            as usize;
        // Hand unsent frames back to the caller, in order, at the front
        // (into room the drain above left: no allocation).
        for (i, (&p, &len)) in mbufs[sent..k].iter().zip(&lens[sent..k]).enumerate() {
            if let Some(p) = NonNull::new(p) {
                // SAFETY: DPDK did not take this mbuf: it is still ours alone.
                let m = unsafe { Mbuf::from_raw(p) };
                frames.insert(i, Frame::from_mbuf(m, len));
            }
        }
        self.stats.tx_frames += sent as u64;
        self.stats.tx_bytes += lens[..sent].iter().sum::<usize>() as u64;
        self.stats.tx_full += (k - sent) as u64;
        sent
    }

    fn stats(&self) -> PortStats {
        self.stats
    }

    fn link_up(&self) -> bool {
        let mut link = sys::rte_eth_link::default();
        // SAFETY: the port exists and `link` is a valid out pointer.
        let rc = unsafe { sys::rte_eth_link_get_nowait(self.id, &mut link) };
        rc == 0 && link.link_status() != 0
    }

    fn info(&self) -> PortInfo {
        PortInfo {
            name: self.name.clone(),
            max_frame: self.pool.buffer_size(),
            queues: 1,
        }
    }

    /// The ethdev's `rte_eth_stats`, for all its queues.
    fn device_stats(&self) -> Option<DeviceStats> {
        let mut s = sys::rte_eth_stats::default();
        // SAFETY: the port exists (started while a handle lives) and `s` is
        // a valid out pointer for the call.
        let rc = unsafe { sys::rte_eth_stats_get(self.id, &mut s) };
        (rc == 0).then_some(DeviceStats {
            received: s.ipackets,
            sent: s.opackets,
            missed: s.imissed,
            rx_errors: s.ierrors,
            tx_errors: s.oerrors,
            rx_no_buffer: s.rx_nombuf,
        })
    }
}

/// A started ethdev port, stopped when dropped.
#[derive(Debug)]
struct Started(u16);

impl Drop for Started {
    fn drop(&mut self) {
        // SAFETY: the port was started by `start_queues`, and no handle to
        // any of its queues is left to use it.
        unsafe {
            sys::rte_eth_dev_stop(self.0);
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn mbuf_layout_matches_dpdk() {
        use dpdk_sys::rte_mbuf;
        use std::mem::offset_of;
        // rte_mbuf is two cache lines, cache-line aligned.
        assert_eq!(std::mem::size_of::<rte_mbuf>(), 128);
        assert_eq!(std::mem::align_of::<rte_mbuf>(), 64);
        // The fields read and written in place (rte_mbuf_core.h, 22.11).
        assert_eq!(offset_of!(rte_mbuf, buf_addr), 0);
        assert_eq!(offset_of!(rte_mbuf, data_off), 16);
        assert_eq!(offset_of!(rte_mbuf, pkt_len), 36);
        assert_eq!(offset_of!(rte_mbuf, data_len), 40);
        assert_eq!(offset_of!(rte_mbuf, buf_len), 54);
    }
}
