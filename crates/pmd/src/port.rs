//! The port trait, in the spirit of DPDK's ethdev, and the simplest ports.

use crate::pool::{Frame, FramePool};
use rings::spsc::{self, Consumer, Producer};

/// Counters of one port.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PortStats {
    /// Frames received.
    pub rx_frames: u64,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Frames sent.
    pub tx_frames: u64,
    /// Bytes sent.
    pub tx_bytes: u64,
    /// Frames `tx_burst` could not take (left with the caller).
    pub tx_full: u64,
    /// Receive attempts that found no buffer in the pool.
    pub rx_no_buffer: u64,
    /// Frames dropped because nothing is attached.
    pub tx_dropped: u64,
}

/// Counters the device behind a port keeps for all its queues (a DPDK
/// ethdev's `rte_eth_stats`): what it saw, including what it dropped
/// before any poll could take it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeviceStats {
    /// Frames the device received and handed to a receive queue.
    pub received: u64,
    /// Frames the device sent.
    pub sent: u64,
    /// Frames the device dropped for want of room in a receive queue (the
    /// pollers fell behind).
    pub missed: u64,
    /// Frames received with errors.
    pub rx_errors: u64,
    /// Frames that failed to be sent.
    pub tx_errors: u64,
    /// Receive attempts that found no buffer in the pool.
    pub rx_no_buffer: u64,
}

/// What a port is and can do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortInfo {
    /// Its name.
    pub name: String,
    /// Largest frame it carries (bytes, Ethernet header included).
    pub max_frame: usize,
    /// Receive and transmit queues.
    pub queues: u16,
}

/// A poll-mode port. `rx_burst` appends up to `max` received frames to
/// `frames`; `tx_burst` sends frames from the front of `frames` and removes
/// the ones it took, so frames it could not send stay with the caller.
pub trait Port {
    /// Receives up to `max` frames; returns how many were appended.
    fn rx_burst(&mut self, queue: u16, frames: &mut Vec<Frame>, max: usize) -> usize;
    /// Sends frames from the front of `frames`; returns how many were taken.
    fn tx_burst(&mut self, queue: u16, frames: &mut Vec<Frame>) -> usize;
    /// The counters.
    fn stats(&self) -> PortStats;
    /// Whether the link is up.
    fn link_up(&self) -> bool {
        true
    }
    /// What the port is.
    fn info(&self) -> PortInfo;
    /// The device's own counters, where there is a device that keeps them.
    fn device_stats(&self) -> Option<DeviceStats> {
        None
    }
}

impl<P: Port + ?Sized> Port for Box<P> {
    fn rx_burst(&mut self, queue: u16, frames: &mut Vec<Frame>, max: usize) -> usize {
        (**self).rx_burst(queue, frames, max)
    }
    fn tx_burst(&mut self, queue: u16, frames: &mut Vec<Frame>) -> usize {
        (**self).tx_burst(queue, frames)
    }
    fn stats(&self) -> PortStats {
        (**self).stats()
    }
    fn link_up(&self) -> bool {
        (**self).link_up()
    }
    fn info(&self) -> PortInfo {
        (**self).info()
    }
    fn device_stats(&self) -> Option<DeviceStats> {
        (**self).device_stats()
    }
}

/// One end of an in-memory link: frames move through SPSC rings, their
/// bytes are never copied.
#[derive(Debug)]
pub struct RingPort {
    name: String,
    tx: Producer<Frame>,
    rx: Consumer<Frame>,
    max_frame: usize,
    stats: PortStats,
}

/// The two ends of an in-memory link, each direction a ring of `capacity` frames.
pub fn ring_link(name: &str, capacity: usize, max_frame: usize) -> (RingPort, RingPort) {
    let (a_tx, b_rx) = spsc::ring(capacity);
    let (b_tx, a_rx) = spsc::ring(capacity);
    let end = |suffix: &str, tx, rx| RingPort {
        name: format!("{name}.{suffix}"),
        tx,
        rx,
        max_frame,
        stats: PortStats::default(),
    };
    (end("a", a_tx, a_rx), end("b", b_tx, b_rx))
}

impl Port for RingPort {
    #[inline]
    fn rx_burst(&mut self, _queue: u16, frames: &mut Vec<Frame>, max: usize) -> usize {
        let stats = &mut self.stats;
        self.rx.pop_burst(max, |f| {
            stats.rx_frames += 1;
            stats.rx_bytes += f.len() as u64;
            frames.push(f);
        })
    }

    #[inline]
    fn tx_burst(&mut self, _queue: u16, frames: &mut Vec<Frame>) -> usize {
        let free = self.tx.free_len().min(frames.len());
        let bytes: usize = frames[..free].iter().map(|f| f.len()).sum();
        let sent = self.tx.push_burst(&mut frames.drain(..free));
        self.stats.tx_frames += sent as u64;
        self.stats.tx_bytes += bytes as u64;
        self.stats.tx_full += (frames.len()) as u64;
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
}

/// A port like DPDK's `net_null` with its received frames filled from
/// templates (standing in for a NIC's DMA): `rx_burst` always delivers a full
/// burst, cycling through the templates; `tx_burst` takes and frees all.
#[derive(Debug)]
pub struct NullPort {
    name: String,
    pool: FramePool,
    templates: Vec<Vec<u8>>,
    next: usize,
    stats: PortStats,
}

impl NullPort {
    /// A null port whose frames come from `pool`, filled with `templates`
    /// in turn (none: empty frames).
    pub fn new(name: &str, pool: FramePool, templates: Vec<Vec<u8>>) -> NullPort {
        NullPort {
            name: name.into(),
            pool,
            templates,
            next: 0,
            stats: PortStats::default(),
        }
    }
}

impl Port for NullPort {
    #[inline]
    fn rx_burst(&mut self, _queue: u16, frames: &mut Vec<Frame>, max: usize) -> usize {
        let start = frames.len();
        // Buffers in bulk, as a driver refills its receive ring.
        let n = self.pool.alloc_burst(max, frames);
        if n < max {
            self.stats.rx_no_buffer += 1;
        }
        for f in &mut frames[start..] {
            if let Some(t) = self.templates.get(self.next) {
                self.stats.rx_bytes += f.fill(t) as u64;
            }
            // A compare, not a division, per frame.
            self.next += 1;
            if self.next >= self.templates.len() {
                self.next = 0;
            }
        }
        self.stats.rx_frames += n as u64;
        n
    }

    #[inline]
    fn tx_burst(&mut self, _queue: u16, frames: &mut Vec<Frame>) -> usize {
        let n = frames.len();
        self.stats.tx_frames += n as u64;
        self.stats.tx_bytes += frames.iter().map(|f| f.len() as u64).sum::<u64>();
        // Freed in bulk, as a driver frees what it sent.
        FramePool::free_burst(frames);
        n
    }

    fn stats(&self) -> PortStats {
        self.stats
    }

    fn info(&self) -> PortInfo {
        PortInfo {
            name: self.name.clone(),
            max_frame: self.pool.buffer_size(),
            queues: 1,
        }
    }
}

/// A port with nothing attached: its link is down, it receives nothing, and
/// what is sent to it is dropped and counted.
#[derive(Debug, Default)]
pub struct ClosedPort {
    stats: PortStats,
}

impl Port for ClosedPort {
    fn rx_burst(&mut self, _queue: u16, _frames: &mut Vec<Frame>, _max: usize) -> usize {
        0
    }

    fn tx_burst(&mut self, _queue: u16, frames: &mut Vec<Frame>) -> usize {
        let n = frames.len();
        self.stats.tx_dropped += n as u64;
        frames.clear();
        n
    }

    fn stats(&self) -> PortStats {
        self.stats
    }

    fn link_up(&self) -> bool {
        false
    }

    fn info(&self) -> PortInfo {
        PortInfo {
            name: "closed".into(),
            max_frame: 0,
            queues: 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_links_move_frames_both_ways_and_leave_unsent_frames_with_the_caller() {
        let pool = FramePool::new(16, 128);
        let (mut a, mut b) = ring_link("l", 4, 128);
        let mut out: Vec<Frame> = (0..6u8)
            .map(|i| pool.alloc_from(&[i; 10]).unwrap())
            .collect();
        assert_eq!(a.tx_burst(0, &mut out), 4);
        assert_eq!(out.len(), 2, "two did not fit");
        assert_eq!(out[0][0], 4);
        let mut got = Vec::with_capacity(32);
        assert_eq!(b.rx_burst(0, &mut got, 32), 4);
        assert_eq!(got.iter().map(|f| f[0]).collect::<Vec<_>>(), [0, 1, 2, 3]);
        assert_eq!(b.tx_burst(0, &mut got), 4);
        assert_eq!(a.rx_burst(0, &mut out, 2), 2);
        assert_eq!(
            (a.stats().tx_frames, a.stats().tx_full, b.stats().rx_bytes),
            (4, 2, 40)
        );
        drop(out);
        drop(got);
        drop((a, b));
        assert_eq!(pool.available(), 16, "every buffer came back");
    }

    #[test]
    fn null_ports_fill_from_templates_and_free_what_they_send() {
        let pool = FramePool::new(8, 64);
        let mut p = NullPort::new("null0", pool.clone(), vec![vec![1; 20], vec![2; 30]]);
        let mut frames = Vec::new();
        assert_eq!(p.rx_burst(0, &mut frames, 3), 3);
        assert_eq!(
            frames.iter().map(|f| f.len()).collect::<Vec<_>>(),
            [20, 30, 20]
        );
        assert_eq!(p.rx_burst(0, &mut frames, 10), 5, "the pool runs out");
        assert_eq!(p.stats().rx_no_buffer, 1);
        assert_eq!(p.tx_burst(0, &mut frames), 8);
        assert_eq!(pool.available(), 8);
    }
}
