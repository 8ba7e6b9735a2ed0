//! A native AF_PACKET port (Linux): fabric frames on any Ethernet interface
//! without DPDK.
//!
//! - **Receive** from a memory-mapped ring the kernel fills (`PACKET_RX_RING`,
//!   `TPACKET_V2`): the port reads each slot's status and copies the frame
//!   into a pool buffer, with no system call per frame. A classic BPF
//!   filter in the kernel lets only the fabric's EtherType into the ring.
//! - **Transmit** in batches, one `sendmmsg` a burst, past the queueing
//!   discipline (`PACKET_QDISC_BYPASS`).
//! - **Real Ethernet addresses**: the port writes its own MAC as source and
//!   its peer's as destination into each frame it sends, so frames cross
//!   an ordinary switch and reach a NIC that is not promiscuous. It ignores
//!   and counts frames addressed to another station. A peer not configured
//!   is learned from the first fabric frame that reaches the port; until
//!   then, frames go to the broadcast address.
//!
//! The ring is `TPACKET_V2`, slot by slot, not `TPACKET_V3`. A `TPACKET_V3`
//! block reaches user space only when it is full or its retire timeout
//! expires, and that timeout is counted in milliseconds. A lone frame would
//! then wait up to a millisecond, a hundred times a migration's blackout.

#![allow(unsafe_code)]

use crate::pool::{Frame, FramePool};
use crate::port::{DeviceStats, Port, PortInfo, PortStats};
use std::cell::Cell;
use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};

/// An Ethernet address.
pub type Mac = [u8; 6];

/// The broadcast address: where frames go before the peer is known.
pub const BROADCAST: Mac = [0xff; 6];

// From <linux/if_packet.h> (the libc crate does not export them all).
const SOL_PACKET: libc::c_int = 263;
const PACKET_RX_RING: libc::c_int = 5;
const PACKET_STATISTICS: libc::c_int = 6;
const PACKET_VERSION: libc::c_int = 10;
const PACKET_QDISC_BYPASS: libc::c_int = 20;
const PACKET_IGNORE_OUTGOING: libc::c_int = 23;
const TPACKET_V2: libc::c_int = 1;
const TP_STATUS_KERNEL: u32 = 0;
const TP_STATUS_USER: u32 = 1;
const PACKET_OUTGOING: u8 = 4;
/// `TPACKET_ALIGN(sizeof(struct tpacket2_hdr))`: where the `sockaddr_ll`
/// the kernel writes after each slot's header starts.
const TPACKET2_HDRLEN: usize = 32;

/// `struct tpacket_req`.
#[repr(C)]
struct TpacketReq {
    block_size: u32,
    block_nr: u32,
    frame_size: u32,
    frame_nr: u32,
}

/// `struct tpacket_stats`.
#[repr(C)]
#[derive(Default)]
struct TpacketStats {
    packets: u32,
    drops: u32,
}

/// How to open a port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AfPacketConfig {
    /// The interface (`eth0`, a veth end).
    pub iface: String,
    /// The fabric's EtherType: only frames of it enter the ring.
    pub ethertype: u16,
    /// This port's address (`None`: the interface's own).
    pub mac: Option<Mac>,
    /// The peer port's address (`None`: learned from the first frame).
    pub peer: Option<Mac>,
    /// The largest frame, Ethernet header included (the link's MTU + 14).
    pub max_frame: usize,
    /// Receive ring slots (rounded up to fill whole blocks).
    pub slots: usize,
}

impl AfPacketConfig {
    /// A port on `iface` for `ethertype`, frames up to a 1500-byte MTU, a
    /// ring of 4096 slots, the interface's own address, a learned peer.
    pub fn new(iface: &str, ethertype: u16) -> AfPacketConfig {
        AfPacketConfig {
            iface: iface.to_string(),
            ethertype,
            mac: None,
            peer: None,
            max_frame: 1514,
            slots: 4096,
        }
    }
}

/// Why a port could not open.
#[derive(Debug, thiserror::Error)]
pub enum AfPacketError {
    /// The interface name is not one the kernel takes.
    #[error("{iface}: not an interface name (1 to 15 bytes, no NUL)")]
    Name {
        /// The name given.
        iface: String,
    },
    /// A system call failed.
    #[error("{iface}: {call}: {source}")]
    Os {
        /// The interface.
        iface: String,
        /// What was asked of the kernel.
        call: &'static str,
        /// What it answered.
        source: io::Error,
    },
    /// The frame size asked for is out of range.
    #[error("{iface}: max_frame: expected 60 to 65535 bytes, found {found}")]
    FrameSize {
        /// The interface.
        iface: String,
        /// The size asked for.
        found: usize,
    },
}

/// The receive ring: `blocks` blocks of `block_size` bytes, each holding
/// `per_block` slots of `slot_size` bytes, mapped shared with the kernel.
struct Ring {
    base: NonNull<u8>,
    len: usize,
    block_size: usize,
    slot_size: usize,
    per_block: usize,
    slots: usize,
}

impl Ring {
    /// The byte offset of slot `i`: slots never cross a block.
    fn offset(&self, i: usize) -> usize {
        (i / self.per_block) * self.block_size + (i % self.per_block) * self.slot_size
    }

    /// The status word of slot `i`, shared with the kernel.
    fn status(&self, i: usize) -> &AtomicU32 {
        // SAFETY: `offset(i)` for `i < slots` lies inside the mapping, and a
        // slot starts on a 16-byte boundary (slot sizes are multiples of
        // TPACKET_ALIGNMENT, blocks of the page size), so the u32 at its
        // start is aligned. The mapping lives as long as `self`. The kernel
        // writes the word concurrently: it is only ever accessed atomically
        // here, and the kernel's side orders its writes with barriers
        // (packet_mmap.rst, "the frame status").
        unsafe { AtomicU32::from_ptr(self.base.as_ptr().add(self.offset(i)).cast::<u32>()) }
    }

    /// The bytes of slot `i`. Only while its status is `TP_STATUS_USER`
    /// does the slot belong to user space.
    fn slot(&self, i: usize) -> &[u8] {
        // SAFETY: the slot lies inside the mapping (see `status`), and the
        // caller reads it only after an acquire load of its status saw
        // TP_STATUS_USER: the kernel does not write it until the status is
        // set back to TP_STATUS_KERNEL (with release ordering, below).
        unsafe {
            std::slice::from_raw_parts(self.base.as_ptr().add(self.offset(i)), self.slot_size)
        }
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        // SAFETY: `base` and `len` are those mmap returned, unmapped once.
        unsafe {
            libc::munmap(self.base.as_ptr().cast(), self.len);
        }
    }
}

/// Frames `tx_burst` sends with one system call at most.
const TX_BATCH: usize = 64;

/// An AF_PACKET port on one interface: one queue.
pub struct AfPacketPort {
    name: String,
    fd: OwnedFd,
    ring: Ring,
    next: usize,
    pool: FramePool,
    mac: Mac,
    peer: Mac,
    peer_known: bool,
    max_frame: usize,
    stats: PortStats,
    foreign: u64,
    /// The kernel's counters are cleared when read: they add up here.
    kernel: Cell<(u64, u64)>,
    /// Where frames go: the interface and the EtherType, for `sendmmsg`.
    to: libc::sockaddr_ll,
    iovecs: Box<[libc::iovec; TX_BATCH]>,
    headers: Box<[libc::mmsghdr; TX_BATCH]>,
}

// SAFETY: the port owns its socket and its ring mapping outright; the raw
// pointers in it (the mapping, and the iovec and message scratch that point
// only into frames during a `tx_burst` call) are not shared with another
// thread, so moving the port to another thread is sound.
unsafe impl Send for AfPacketPort {}

impl std::fmt::Debug for AfPacketPort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AfPacketPort")
            .field("name", &self.name)
            .field("mac", &self.mac)
            .field("peer", &self.peer)
            .finish()
    }
}

fn os(iface: &str, call: &'static str) -> AfPacketError {
    AfPacketError::Os {
        iface: iface.to_string(),
        call,
        source: io::Error::last_os_error(),
    }
}

/// Sets a socket option from a value of type `T`.
fn set_option<T>(fd: &OwnedFd, level: libc::c_int, name: libc::c_int, value: &T) -> bool {
    // SAFETY: `value` points to a live `T` of the size passed.
    unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (value as *const T).cast(),
            std::mem::size_of::<T>() as libc::socklen_t,
        ) == 0
    }
}

/// The classic BPF program that accepts a frame whole if its EtherType (the
/// half-word at byte 12) is `ethertype`, and drops it otherwise.
fn ethertype_filter(ethertype: u16) -> [libc::sock_filter; 4] {
    let op = |code: u16, jt: u8, jf: u8, k: u32| libc::sock_filter { code, jt, jf, k };
    const LD_H_ABS: u16 = 0x28; // BPF_LD | BPF_H | BPF_ABS
    const JEQ_K: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
    const RET_K: u16 = 0x06; // BPF_RET | BPF_K
    [
        op(LD_H_ABS, 0, 0, 12),
        op(JEQ_K, 0, 1, u32::from(ethertype)),
        op(RET_K, 0, 0, u32::MAX),
        op(RET_K, 0, 0, 0),
    ]
}

/// The hardware address of interface `iface` on socket `fd`.
fn interface_mac(fd: &OwnedFd, iface: &CString) -> Option<Mac> {
    // SAFETY: ifreq is plain data; zeroed is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    let name = iface.as_bytes_with_nul();
    for (d, s) in req.ifr_name.iter_mut().zip(name) {
        *d = *s as libc::c_char;
    }
    // SAFETY: SIOCGIFHWADDR reads the NUL-terminated name in `req` and
    // writes the address into its union, both inside `req`.
    if unsafe { libc::ioctl(fd.as_raw_fd(), libc::SIOCGIFHWADDR, &mut req) } != 0 {
        return None;
    }
    // SAFETY: the call succeeded, so the union holds a sockaddr.
    let data = unsafe { req.ifr_ifru.ifru_hwaddr.sa_data };
    let mut mac = [0u8; 6];
    for (d, s) in mac.iter_mut().zip(data) {
        *d = s as u8;
    }
    Some(mac)
}

impl AfPacketPort {
    /// Opens a port on `config.iface`, its frames in buffers of `pool`
    /// (needs CAP_NET_RAW).
    pub fn open(config: &AfPacketConfig, pool: FramePool) -> Result<AfPacketPort, AfPacketError> {
        let iface = config.iface.as_str();
        let cname = CString::new(iface)
            .ok()
            .filter(|n| (1..16).contains(&n.as_bytes().len()))
            .ok_or_else(|| AfPacketError::Name {
                iface: iface.to_string(),
            })?;
        if !(60..=65535).contains(&config.max_frame) {
            return Err(AfPacketError::FrameSize {
                iface: iface.to_string(),
                found: config.max_frame,
            });
        }
        // SAFETY: a plain system call; the descriptor it returns is owned
        // from here on.
        let raw = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, 0) };
        if raw < 0 {
            return Err(os(iface, "socket(AF_PACKET)"));
        }
        // SAFETY: `raw` is a descriptor this call just opened, owned once.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: `cname` is a NUL-terminated string.
        let ifindex = unsafe { libc::if_nametoindex(cname.as_ptr()) };
        if ifindex == 0 {
            return Err(os(iface, "if_nametoindex"));
        }
        if !set_option(&fd, SOL_PACKET, PACKET_VERSION, &TPACKET_V2) {
            return Err(os(iface, "setsockopt(PACKET_VERSION, TPACKET_V2)"));
        }
        // The filter goes on before the socket is bound: nothing else may
        // enter the ring.
        let program = ethertype_filter(config.ethertype);
        let fprog = libc::sock_fprog {
            len: program.len() as u16,
            filter: program.as_ptr().cast_mut(),
        };
        if !set_option(&fd, libc::SOL_SOCKET, libc::SO_ATTACH_FILTER, &fprog) {
            return Err(os(iface, "setsockopt(SO_ATTACH_FILTER)"));
        }
        // Frames this socket sends are not received by it (kernel 4.20 and
        // later; older kernels mark them, and the receive path skips them).
        let _ = set_option(&fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &1i32);
        let _ = set_option(&fd, SOL_PACKET, PACKET_QDISC_BYPASS, &1i32);
        let ring = Self::map_ring(&fd, iface, config)?;
        // SAFETY: sockaddr_ll is plain data; zeroed is a valid value.
        let mut to: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        to.sll_family = libc::AF_PACKET as u16;
        to.sll_protocol = (libc::ETH_P_ALL as u16).to_be();
        to.sll_ifindex = ifindex as i32;
        // SAFETY: `to` is a valid sockaddr_ll of the length passed.
        let bound = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&to as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if bound != 0 {
            return Err(os(iface, "bind"));
        }
        let mac = match config.mac {
            Some(mac) => mac,
            None => interface_mac(&fd, &cname).ok_or_else(|| os(iface, "ioctl(SIOCGIFHWADDR)"))?,
        };
        to.sll_protocol = config.ethertype.to_be();
        to.sll_halen = 6;
        // SAFETY: iovec and mmsghdr are plain data; zeroed are valid values
        // (null pointers, no lengths) that `tx_burst` fills before use.
        let (iovecs, headers) =
            unsafe { (Box::new(std::mem::zeroed()), Box::new(std::mem::zeroed())) };
        Ok(AfPacketPort {
            name: format!("af_packet:{iface}"),
            fd,
            ring,
            next: 0,
            pool,
            mac,
            peer: config.peer.unwrap_or(BROADCAST),
            peer_known: config.peer.is_some(),
            max_frame: config.max_frame,
            stats: PortStats::default(),
            foreign: 0,
            kernel: Cell::new((0, 0)),
            to,
            iovecs,
            headers,
        })
    }

    /// Asks the kernel for the receive ring and maps it.
    fn map_ring(fd: &OwnedFd, iface: &str, config: &AfPacketConfig) -> Result<Ring, AfPacketError> {
        // A slot: the header and address (TPACKET2_HDRLEN + sockaddr_ll,
        // aligned), room for the MAC header's alignment, then the frame;
        // a multiple of TPACKET_ALIGNMENT (16).
        let slot_size = (TPACKET2_HDRLEN + 32 + 16 + config.max_frame).next_multiple_of(16);
        let page = 4096;
        let block_size = (slot_size * 16).next_multiple_of(page).max(1 << 16);
        let per_block = block_size / slot_size;
        let blocks = config.slots.max(1).div_ceil(per_block);
        let req = TpacketReq {
            block_size: block_size as u32,
            block_nr: blocks as u32,
            frame_size: slot_size as u32,
            frame_nr: (blocks * per_block) as u32,
        };
        if !set_option(fd, SOL_PACKET, PACKET_RX_RING, &req) {
            return Err(os(iface, "setsockopt(PACKET_RX_RING)"));
        }
        let len = block_size * blocks;
        // SAFETY: maps the ring the kernel just made for this socket, of
        // the size it was asked for; the result is checked below.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_LOCKED,
                fd.as_raw_fd(),
                0,
            )
        };
        // Locked pages need RLIMIT_MEMLOCK room: without it, unlocked ones.
        let base = if base == libc::MAP_FAILED {
            // SAFETY: as above, without MAP_LOCKED.
            unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    len,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_SHARED,
                    fd.as_raw_fd(),
                    0,
                )
            }
        } else {
            base
        };
        if base == libc::MAP_FAILED {
            return Err(os(iface, "mmap(PACKET_RX_RING)"));
        }
        let base = NonNull::new(base.cast::<u8>()).ok_or_else(|| os(iface, "mmap"))?;
        Ok(Ring {
            base,
            len,
            block_size,
            slot_size,
            per_block,
            slots: blocks * per_block,
        })
    }

    /// This port's Ethernet address.
    pub fn mac(&self) -> Mac {
        self.mac
    }

    /// Where its frames go: the peer's address, or broadcast until learned.
    pub fn peer(&self) -> Mac {
        self.peer
    }

    /// Frames of the fabric's EtherType addressed to another station,
    /// ignored.
    pub fn foreign(&self) -> u64 {
        self.foreign
    }

    /// Takes the frame in slot `self.next`, whose status is TP_STATUS_USER;
    /// returns it if it is for this port.
    fn take_slot(&mut self) -> Option<Frame> {
        let slot = self.ring.slot(self.next);
        let word =
            |at: usize| u32::from_ne_bytes([slot[at], slot[at + 1], slot[at + 2], slot[at + 3]]);
        let snaplen = word(8) as usize;
        let mac_at = u16::from_ne_bytes([slot[12], slot[13]]) as usize;
        // sll_pkttype, in the sockaddr_ll after the header.
        let pkttype = slot[TPACKET2_HDRLEN + 10];
        let Some(bytes) = slot.get(mac_at..mac_at + snaplen) else {
            // Past the slot: not a layout this code knows; dropped.
            self.stats.rx_no_buffer += 1;
            return None;
        };
        if pkttype == PACKET_OUTGOING || bytes.len() < 14 {
            return None;
        }
        let to: Mac = bytes[..6].try_into().unwrap_or(BROADCAST);
        if to != self.mac && to != BROADCAST {
            self.foreign += 1;
            return None;
        }
        if !self.peer_known {
            self.peer = bytes[6..12].try_into().unwrap_or(BROADCAST);
            self.peer_known = true;
        }
        let Some(mut frame) = self.pool.alloc() else {
            self.stats.rx_no_buffer += 1;
            return None;
        };
        frame.fill(bytes);
        Some(frame)
    }
}

impl Port for AfPacketPort {
    fn rx_burst(&mut self, _queue: u16, frames: &mut Vec<Frame>, max: usize) -> usize {
        let mut n = 0;
        while n < max {
            let status = self.ring.status(self.next);
            // Acquire: the frame the kernel wrote before setting the status
            // is visible from here on.
            if status.load(Ordering::Acquire) & TP_STATUS_USER == 0 {
                break;
            }
            if let Some(frame) = self.take_slot() {
                self.stats.rx_frames += 1;
                self.stats.rx_bytes += frame.len() as u64;
                frames.push(frame);
                n += 1;
            }
            // Release: the copy above is done before the kernel may write
            // the slot again.
            self.ring
                .status(self.next)
                .store(TP_STATUS_KERNEL, Ordering::Release);
            self.next = (self.next + 1) % self.ring.slots;
        }
        n
    }

    fn tx_burst(&mut self, _queue: u16, frames: &mut Vec<Frame>) -> usize {
        let count = frames.len().min(TX_BATCH);
        if count == 0 {
            return 0;
        }
        self.to.sll_addr[..6].copy_from_slice(&self.peer);
        for (i, frame) in frames[..count].iter_mut().enumerate() {
            if frame.len() >= 12 {
                frame[..6].copy_from_slice(&self.peer);
                frame[6..12].copy_from_slice(&self.mac);
            }
            self.iovecs[i] = libc::iovec {
                iov_base: frame.as_mut_ptr().cast(),
                iov_len: frame.len(),
            };
            let header = &mut self.headers[i].msg_hdr;
            header.msg_name = (&mut self.to as *mut libc::sockaddr_ll).cast();
            header.msg_namelen = std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
            header.msg_iov = &mut self.iovecs[i];
            header.msg_iovlen = 1;
            header.msg_control = std::ptr::null_mut();
            header.msg_controllen = 0;
            header.msg_flags = 0;
        }
        // SAFETY: the first `count` headers each point to one iovec of a
        // frame in `frames[..count]` and to `self.to`, all alive and not
        // moved until the call returns; the kernel only reads them.
        let sent = unsafe {
            libc::sendmmsg(
                self.fd.as_raw_fd(),
                self.headers.as_mut_ptr(),
                count as u32,
                libc::MSG_DONTWAIT,
            )
        };
        let sent = usize::try_from(sent).unwrap_or(0);
        let bytes: usize = frames[..sent].iter().map(|f| f.len()).sum();
        frames.drain(..sent);
        self.stats.tx_frames += sent as u64;
        self.stats.tx_bytes += bytes as u64;
        self.stats.tx_full += frames.len() as u64;
        sent
    }

    fn stats(&self) -> PortStats {
        self.stats
    }

    fn info(&self) -> PortInfo {
        PortInfo {
            name: self.name.clone(),
            max_frame: self.max_frame,
            queues: 1,
        }
    }

    fn device_stats(&self) -> Option<DeviceStats> {
        let mut s = TpacketStats::default();
        let mut len = std::mem::size_of::<TpacketStats>() as libc::socklen_t;
        // SAFETY: `s` has room for the `len` bytes the kernel writes.
        let ok = unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                SOL_PACKET,
                PACKET_STATISTICS,
                (&mut s as *mut TpacketStats).cast(),
                &mut len,
            )
        } == 0;
        let (mut packets, mut drops) = self.kernel.get();
        if ok {
            packets += u64::from(s.packets);
            drops += u64::from(s.drops);
            self.kernel.set((packets, drops));
        }
        Some(DeviceStats {
            received: packets,
            sent: self.stats.tx_frames,
            missed: drops,
            rx_no_buffer: self.stats.rx_no_buffer,
            ..DeviceStats::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_filter_accepts_only_the_ethertype() {
        let f = ethertype_filter(0x88b5);
        assert_eq!((f[0].code, f[0].k), (0x28, 12), "load the EtherType");
        assert_eq!((f[1].code, f[1].k, f[1].jt, f[1].jf), (0x15, 0x88b5, 0, 1));
        assert_eq!((f[2].k, f[3].k), (u32::MAX, 0), "whole frame, or nothing");
    }

    #[test]
    fn bad_names_and_sizes_are_refused_before_any_system_call() {
        let pool = FramePool::new(4, 2048);
        for name in ["", "a-name-longer-than-15", "nul\0"] {
            let e =
                AfPacketPort::open(&AfPacketConfig::new(name, 0x88b5), pool.clone()).unwrap_err();
            assert!(matches!(e, AfPacketError::Name { .. }), "{e}");
        }
        let mut c = AfPacketConfig::new("lo", 0x88b5);
        c.max_frame = 70_000;
        let e = AfPacketPort::open(&c, pool).unwrap_err();
        assert_eq!(
            e.to_string(),
            "lo: max_frame: expected 60 to 65535 bytes, found 70000"
        );
    }
}
