//! Wrappers that are ports themselves: a fault injector and a tracer.

use crate::pool::{Frame, FramePool};
use crate::port::{Port, PortInfo, PortStats};
use fabric::faults::{Fate, FaultConfig, FaultStats, Faults};
use std::collections::VecDeque;

/// The parts of `Port` a wrapper takes from the port it wraps.
macro_rules! delegate_port_info {
    () => {
        fn stats(&self) -> PortStats {
            self.inner.stats()
        }

        fn link_up(&self) -> bool {
            self.inner.link_up()
        }

        fn info(&self) -> PortInfo {
            self.inner.info()
        }

        fn device_stats(&self) -> Option<crate::port::DeviceStats> {
            self.inner.device_stats()
        }
    };
}

/// A port whose transmitted frames meet seeded faults (drop, duplicate,
/// reorder, corrupt, delay), as on a bad cable. Delays count in
/// `tx_burst` calls; duplicates take a buffer from `pool`.
#[derive(Debug)]
pub struct FaultPort<P> {
    inner: P,
    faults: Faults,
    pool: FramePool,
    /// Frames held back, with the call count when they may go.
    held: VecDeque<(u64, Frame)>,
    calls: u64,
    out: Vec<Frame>,
}

impl<P: Port> FaultPort<P> {
    /// Wraps `inner`.
    pub fn new(inner: P, config: FaultConfig, pool: FramePool) -> FaultPort<P> {
        FaultPort {
            inner,
            faults: Faults::new(config),
            pool,
            // Room for what delays hold back on a busy link: a fault
            // injector that grows would show in allocation counts.
            held: VecDeque::with_capacity(4096),
            calls: 0,
            out: Vec::with_capacity(64),
        }
    }

    /// The faults applied so far.
    pub fn fault_stats(&self) -> &FaultStats {
        self.faults.stats()
    }

    /// The wrapped port.
    pub fn inner(&self) -> &P {
        &self.inner
    }
}

impl<P: Port> Port for FaultPort<P> {
    fn rx_burst(&mut self, queue: u16, frames: &mut Vec<Frame>, max: usize) -> usize {
        self.inner.rx_burst(queue, frames, max)
    }

    fn tx_burst(&mut self, queue: u16, frames: &mut Vec<Frame>) -> usize {
        self.calls += 1;
        let taken = frames.len();
        // Frames whose delay is over go first, in the order they were held.
        while self.held.front().is_some_and(|(at, _)| *at <= self.calls) {
            if let Some((_, f)) = self.held.pop_front() {
                self.out.push(f);
            }
        }
        let mut reordered: Option<Frame> = None;
        for mut f in frames.drain(..) {
            match self.faults.decide(f.len()) {
                Fate::Drop => {}
                Fate::Deliver {
                    copies,
                    corrupt,
                    delay,
                    reorder,
                } => {
                    if let Some((at, mask)) = corrupt {
                        let i = at % f.len().max(1);
                        if let Some(b) = f.get_mut(i) {
                            *b ^= mask;
                        }
                    }
                    if copies == 2 {
                        if let Some(copy) = self.pool.alloc_from(&f) {
                            self.out.push(copy);
                        }
                    }
                    if delay > 0 {
                        self.held.push_back((self.calls + delay, f));
                    } else if reorder && reordered.is_none() {
                        reordered = Some(f);
                    } else {
                        self.out.push(f);
                        if let Some(r) = reordered.take() {
                            self.out.push(r);
                        }
                    }
                }
            }
        }
        if let Some(r) = reordered {
            self.out.push(r);
        }
        // What the inner port cannot take now waits for the next call.
        self.inner.tx_burst(queue, &mut self.out);
        taken
    }

    delegate_port_info!();
}

/// A port whose received frames are overwritten with templates, in turn:
/// on DPDK's `net_null`, which delivers zero-filled frames, this stands in
/// for a NIC's DMA so that real TLP frames go through the pipeline.
#[derive(Debug)]
pub struct FillPort<P> {
    inner: P,
    templates: Vec<Vec<u8>>,
    next: usize,
}

impl<P: Port> FillPort<P> {
    /// Wraps `inner`; every received frame becomes the next template.
    pub fn new(inner: P, templates: Vec<Vec<u8>>) -> FillPort<P> {
        FillPort {
            inner,
            templates,
            next: 0,
        }
    }
}

impl<P: Port> Port for FillPort<P> {
    #[inline]
    fn rx_burst(&mut self, queue: u16, frames: &mut Vec<Frame>, max: usize) -> usize {
        let start = frames.len();
        let n = self.inner.rx_burst(queue, frames, max);
        if self.templates.is_empty() {
            return n;
        }
        for f in &mut frames[start..] {
            let t = &self.templates[self.next];
            // A compare, not a division, per frame.
            self.next += 1;
            if self.next == self.templates.len() {
                self.next = 0;
            }
            f.fill(t);
        }
        n
    }

    fn tx_burst(&mut self, queue: u16, frames: &mut Vec<Frame>) -> usize {
        self.inner.tx_burst(queue, frames)
    }

    delegate_port_info!();
}

/// Which way a traced frame went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Received.
    Rx,
    /// Sent.
    Tx,
}

/// A port that shows every frame it passes to a callback (a capture writer,
/// a counter, a test). A frame is shown once, when first offered for
/// sending: frames a full port leaves with the caller are offered again
/// from the front of the next burst, as the poll loops do.
pub struct TracePort<P, F> {
    inner: P,
    trace: F,
    /// Frames at the front of the caller's burst that were traced by the
    /// last `tx_burst` but not taken: the caller keeps them in front and
    /// offers them again, and they are traced once.
    traced_unsent: usize,
}

impl<P: std::fmt::Debug, F> std::fmt::Debug for TracePort<P, F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TracePort")
            .field("inner", &self.inner)
            .finish()
    }
}

impl<P: Port, F: FnMut(Direction, &[u8])> TracePort<P, F> {
    /// Wraps `inner`, calling `trace` for each frame received and sent.
    pub fn new(inner: P, trace: F) -> TracePort<P, F> {
        TracePort {
            inner,
            trace,
            traced_unsent: 0,
        }
    }
}

impl<P: Port, F: FnMut(Direction, &[u8])> Port for TracePort<P, F> {
    fn rx_burst(&mut self, queue: u16, frames: &mut Vec<Frame>, max: usize) -> usize {
        let start = frames.len();
        let n = self.inner.rx_burst(queue, frames, max);
        for f in &frames[start..] {
            (self.trace)(Direction::Rx, f);
        }
        n
    }

    fn tx_burst(&mut self, queue: u16, frames: &mut Vec<Frame>) -> usize {
        // The frames sent are gone after the call, so they are traced
        // before it; those left are traced already when offered again.
        let skip = self.traced_unsent.min(frames.len());
        for f in &frames[skip..] {
            (self.trace)(Direction::Tx, f);
        }
        let n = self.inner.tx_burst(queue, frames);
        self.traced_unsent = frames.len();
        n
    }

    delegate_port_info!();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::port::{ring_link, DeviceStats};

    /// A port whose device keeps counters.
    struct Counted;

    impl Port for Counted {
        fn rx_burst(&mut self, _: u16, _: &mut Vec<Frame>, _: usize) -> usize {
            0
        }
        fn tx_burst(&mut self, _: u16, _: &mut Vec<Frame>) -> usize {
            0
        }
        fn stats(&self) -> PortStats {
            PortStats::default()
        }
        fn info(&self) -> PortInfo {
            PortInfo {
                name: "counted".into(),
                max_frame: 64,
                queues: 1,
            }
        }
        fn device_stats(&self) -> Option<DeviceStats> {
            Some(DeviceStats {
                received: 3,
                missed: 1,
                ..DeviceStats::default()
            })
        }
    }

    #[test]
    fn a_frame_offered_again_after_a_full_port_is_traced_once() {
        let pool = FramePool::new(16, 64);
        let (a, mut b) = ring_link("l", 2, 2);
        let seen = std::cell::RefCell::new(Vec::new());
        let mut a = TracePort::new(a, |d: Direction, f: &[u8]| {
            if d == Direction::Tx {
                seen.borrow_mut().push(f[0]);
            }
        });
        let mut out: Vec<Frame> = (0..5u8)
            .map(|i| pool.alloc_from(&[i; 8]).unwrap())
            .collect();
        let mut got = Vec::new();
        let mut sent = 0;
        while !out.is_empty() {
            sent += a.tx_burst(0, &mut out);
            // The caller adds to the back while earlier frames wait.
            if sent == 2 && out.len() == 3 {
                out.push(pool.alloc_from(&[5; 8]).unwrap());
            }
            b.rx_burst(0, &mut got, 32);
        }
        let received: Vec<u8> = got.iter().map(|f| f[0]).collect();
        assert_eq!(received, [0, 1, 2, 3, 4, 5]);
        assert_eq!(*seen.borrow(), received, "each frame traced once, in order");
    }

    #[test]
    fn wrappers_pass_the_device_counters_on() {
        let want = Counted.device_stats();
        let pool = FramePool::new(4, 64);
        assert_eq!(
            FaultPort::new(Counted, FaultConfig::NONE, pool).device_stats(),
            want
        );
        assert_eq!(FillPort::new(Counted, Vec::new()).device_stats(), want);
        let traced = TracePort::new(Counted, |_: Direction, _: &[u8]| {});
        assert_eq!(traced.device_stats(), want);
        let boxed: Box<dyn Port> = Box::new(FillPort::new(Counted, Vec::new()));
        assert_eq!(boxed.device_stats(), want);
        // A port with no device keeps none.
        let (ring, _) = ring_link("l", 4, 4);
        assert_eq!(ring.device_stats(), None);
    }

    #[test]
    fn faults_apply_to_sent_frames() {
        let pool = FramePool::new(64, 64);
        let (a, mut b) = ring_link("l", 64, 64);
        let drop_all = FaultConfig {
            drop: 1.0,
            ..FaultConfig::NONE
        };
        let mut a = FaultPort::new(a, drop_all, pool.clone());
        let mut out: Vec<Frame> = (0..5u8)
            .map(|i| pool.alloc_from(&[i; 8]).unwrap())
            .collect();
        assert_eq!(a.tx_burst(0, &mut out), 5);
        let mut got = Vec::new();
        assert_eq!(b.rx_burst(0, &mut got, 32), 0);
        assert_eq!(a.fault_stats().dropped, 5);
        assert_eq!(pool.available(), 64);

        let (a, mut b) = ring_link("l", 64, 64);
        let dup = FaultConfig {
            duplicate: 1.0,
            corrupt: 1.0,
            ..FaultConfig::NONE
        };
        let mut a = FaultPort::new(a, dup, pool.clone());
        let mut out = vec![pool.alloc_from(&[7; 8]).unwrap()];
        a.tx_burst(0, &mut out);
        assert_eq!(b.rx_burst(0, &mut got, 32), 2);
        assert!(got.iter().all(|f| f[..] != [7; 8]), "corrupted");

        let (a, mut b) = ring_link("l", 64, 64);
        let delay = FaultConfig {
            delay: 1.0,
            delay_ticks: 2,
            ..FaultConfig::NONE
        };
        let mut a = FaultPort::new(a, delay, pool.clone());
        let mut got = Vec::new();
        a.tx_burst(0, &mut vec![pool.alloc_from(&[1; 8]).unwrap()]);
        a.tx_burst(0, &mut Vec::new());
        assert_eq!(b.rx_burst(0, &mut got, 32), 0, "held for two calls");
        a.tx_burst(0, &mut Vec::new());
        assert_eq!(b.rx_burst(0, &mut got, 32), 1);
    }

    #[test]
    fn fill_ports_rewrite_received_frames() {
        let pool = FramePool::new(8, 64);
        let (mut a, b) = ring_link("l", 8, 64);
        let mut b = FillPort::new(b, vec![vec![1; 10], vec![2; 20]]);
        let mut out: Vec<Frame> = (0..3).map(|_| pool.alloc_from(&[0; 40]).unwrap()).collect();
        a.tx_burst(0, &mut out);
        let mut got = Vec::new();
        assert_eq!(b.rx_burst(0, &mut got, 8), 3);
        assert_eq!(
            got.iter().map(|f| (f[0], f.len())).collect::<Vec<_>>(),
            [(1, 10), (2, 20), (1, 10)]
        );
    }

    #[test]
    fn traces_see_every_frame() {
        let pool = FramePool::new(8, 64);
        let (a, b) = ring_link("l", 8, 64);
        let mut seen = Vec::new();
        {
            let mut a = TracePort::new(a, |d, f: &[u8]| seen.push((d, f.len())));
            a.tx_burst(0, &mut vec![pool.alloc_from(&[1; 10]).unwrap()]);
            let mut b = b;
            b.tx_burst(0, &mut vec![pool.alloc_from(&[1; 12]).unwrap()]);
            a.rx_burst(0, &mut Vec::new(), 8);
        }
        assert_eq!(seen, [(Direction::Tx, 10), (Direction::Rx, 12)]);
    }
}
