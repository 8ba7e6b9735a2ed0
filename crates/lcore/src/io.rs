//! [`IoTask`]: frames passed from each port to its pair unexamined, like
//! DPDK testpmd's io forwarding mode. It runs over the same ports, frame
//! handles and poll loop as a node's pipeline and does nothing else, so
//! beside testpmd io it measures what those cost, and beside the pipeline
//! what the pipeline's own work costs.

use crate::node::{LiveStats, BURST};
use crate::task::Task;
use pmd::{Frame, Port};
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Passes what port 0 receives to port 1 and back, port 2 to port 3, and
/// so on (an odd last port is paired with itself). Frames a port cannot
/// take at once wait, in order, and are offered again; while a port has
/// two bursts waiting, its pair is not read from (back-pressure, not loss).
pub struct IoTask<P: Port> {
    name: String,
    ports: Vec<P>,
    /// Per port, the frames waiting to be sent on it.
    waiting: Vec<Vec<Frame>>,
    polls: (u64, u64),
    frames: (u64, u64),
    live: Arc<LiveStats>,
}

impl<P: Port> std::fmt::Debug for IoTask<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IoTask")
            .field("name", &self.name)
            .field("ports", &self.ports.len())
            .field("frames", &self.frames)
            .finish()
    }
}

impl<P: Port> IoTask<P> {
    /// A task over `ports`, paired in order.
    pub fn new(name: &str, ports: Vec<P>) -> IoTask<P> {
        IoTask {
            name: name.into(),
            waiting: ports
                .iter()
                .map(|_| Vec::with_capacity(BURST * 4))
                .collect(),
            ports,
            polls: (0, 0),
            frames: (0, 0),
            live: Arc::default(),
        }
    }

    /// The ports, for their statistics.
    pub fn ports(&self) -> &[P] {
        &self.ports
    }

    /// Counters readable while the task runs (frames in and out, busy and
    /// idle polls; no TLPs: none are looked at).
    pub fn live(&self) -> Arc<LiveStats> {
        self.live.clone()
    }

    fn pair(&self, port: usize) -> usize {
        let pair = port ^ 1;
        if pair < self.ports.len() {
            pair
        } else {
            port
        }
    }
}

impl<P: Port + Send + 'static> Task for IoTask<P> {
    fn name(&self) -> &str {
        &self.name
    }

    fn poll(&mut self, _now: u64) -> usize {
        let mut received = 0;
        for p in 0..self.ports.len() {
            let out = self.pair(p);
            if self.waiting[out].len() >= BURST * 2 {
                continue;
            }
            received += self.ports[p].rx_burst(0, &mut self.waiting[out], BURST);
        }
        let mut sent = 0;
        for (port, waiting) in self.ports.iter_mut().zip(&mut self.waiting) {
            if !waiting.is_empty() {
                sent += port.tx_burst(0, waiting);
            }
        }
        self.frames.0 += received as u64;
        self.frames.1 += sent as u64;
        if received > 0 {
            self.polls.0 += 1;
        } else {
            self.polls.1 += 1;
        }
        let l = &self.live;
        l.frames_in.store(self.frames.0, Ordering::Relaxed);
        l.frames_out.store(self.frames.1, Ordering::Relaxed);
        l.busy_polls.store(self.polls.0, Ordering::Relaxed);
        l.idle_polls.store(self.polls.1, Ordering::Relaxed);
        received
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pmd::{ring_link, FramePool, Port, RingPort};

    fn frame(pool: &FramePool, byte: u8) -> Frame {
        pool.alloc_from(&[byte; 60]).unwrap()
    }

    /// Two links with the task between them: `outside[0]` sends into port
    /// 0, `outside[1]` sees what leaves port 1, and the other way.
    fn setup(west: usize, east: usize) -> (IoTask<RingPort>, [RingPort; 2], FramePool) {
        let (west_out, west_in) = ring_link("west", west, 2048);
        let (east_in, east_out) = ring_link("east", east, 2048);
        (
            IoTask::new("io", vec![west_in, east_in]),
            [west_out, east_out],
            FramePool::new(1024, 128),
        )
    }

    #[test]
    fn frames_cross_to_the_paired_port_in_order_both_ways() {
        let (mut io, mut outside, pool) = setup(64, 64);
        let mut to_east: Vec<Frame> = (0..10).map(|i| frame(&pool, i)).collect();
        let mut to_west: Vec<Frame> = (100..103).map(|i| frame(&pool, i)).collect();
        assert_eq!(outside[0].tx_burst(0, &mut to_east), 10);
        assert_eq!(outside[1].tx_burst(0, &mut to_west), 3);
        assert_eq!(io.poll(0), 13);
        let mut got = Vec::new();
        outside[1].rx_burst(0, &mut got, 64);
        let firsts: Vec<u8> = got.iter().map(|f| f[0]).collect();
        assert_eq!(firsts, (0..10).collect::<Vec<u8>>());
        got.clear();
        outside[0].rx_burst(0, &mut got, 64);
        assert_eq!(
            got.iter().map(|f| f[0]).collect::<Vec<_>>(),
            [100, 101, 102]
        );
        let s = io.live().snapshot();
        assert_eq!((s.frames_in, s.frames_out, s.busy_polls), (13, 13, 1));
        assert_eq!(io.poll(0), 0, "nothing more to pass");
        assert_eq!(io.live().snapshot().idle_polls, 1);
    }

    #[test]
    fn an_odd_last_port_sends_back_what_it_receives() {
        let (mut a_out, a_in) = ring_link("a", 8, 2048);
        let (b_in, mut b_out) = ring_link("b", 8, 2048);
        let (c_in, mut c_out) = ring_link("c", 8, 2048);
        let mut io = IoTask::new("io", vec![a_in, b_in, c_in]);
        let pool = FramePool::new(16, 128);
        let mut sent = vec![frame(&pool, 7), frame(&pool, 8)];
        assert_eq!(c_out.tx_burst(0, &mut sent), 2);
        assert_eq!(io.poll(0), 2);
        let mut got = Vec::new();
        assert_eq!(c_out.rx_burst(0, &mut got, 8), 2);
        assert_eq!((got[0][0], got[1][0]), (7, 8));
        // The pair in front of it saw nothing.
        got.clear();
        assert_eq!(
            a_out.rx_burst(0, &mut got, 8) + b_out.rx_burst(0, &mut got, 8),
            0
        );
    }

    #[test]
    fn frames_a_full_port_cannot_take_wait_and_none_is_lost() {
        // Eight frames a round come in from the west; four slots toward
        // the east pass four a round: frames wait at the east port until
        // two bursts wait, then the west is not read and its link fills.
        let (mut io, mut outside, pool) = setup(64, 4);
        let mut sent = 0u8;
        let mut seen = Vec::new();
        for _ in 0..200 {
            let mut burst: Vec<Frame> =
                (0..8).map(|i| frame(&pool, sent.wrapping_add(i))).collect();
            sent = sent.wrapping_add(outside[0].tx_burst(0, &mut burst) as u8);
            io.poll(0);
            let mut got = Vec::new();
            outside[1].rx_burst(0, &mut got, 64);
            seen.extend(got.iter().map(|f| f[0]));
        }
        assert!(seen.len() >= 790, "{}", seen.len());
        // In order, none skipped or repeated.
        for (i, b) in seen.iter().enumerate() {
            assert_eq!(*b, i as u8);
        }
        assert!(
            io.ports()[1].stats().tx_full > 0,
            "the east port was full at times"
        );
        assert!(
            outside[0].stats().tx_full > 0,
            "back-pressure reached the west link"
        );
    }
}
