//! One switch node's forwarding pipeline as a polled task, run to
//! completion per burst: `rx_burst` → check the frame → for each TLP:
//! checks, source validation, routing and translation
//! ([`NodeTables::forward`], in place in the received buffer) → into the
//! open frame of its egress port → at the end of the burst, seal the open
//! frames and `tx_burst` them. Frames a port cannot take now wait in that
//! port's queue and go first next time: nothing is dropped silently. New
//! route tables are taken between bursts ([`epoch::Reader::refresh`]).

use crate::task::Task;
use fabric::frame::{Frame as FrameView, FrameHeader, OpenFrame, ETHERTYPE, HEADER_LEN};
use fabric::routing::epoch;
use fabric::{Action, NodeState, NodeTables};
use pmd::{Frame, FramePool, Port};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// The burst size.
pub const BURST: usize = 32;

/// What the pipeline has done.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NodeStats {
    /// Frames received.
    pub frames_in: u64,
    /// Frames that failed their checks (dropped, counted).
    pub frames_malformed: u64,
    /// TLPs received.
    pub tlps_in: u64,
    /// TLPs received by flow class: posted, non-posted, completion.
    pub tlps_in_by_class: [u64; 3],
    /// Nanoseconds spent in polls that did work (read once per poll).
    pub busy_ns: u64,
    /// TLPs forwarded (a broadcast counts once per copy).
    pub tlps_out: u64,
    /// TLPs refused (replied to or dropped; per reason in the node state).
    pub tlps_refused: u64,
    /// TLPs that terminated here.
    pub tlps_local: u64,
    /// Frames sent.
    pub frames_out: u64,
    /// Frames a port could not take at once (sent later).
    pub tx_deferred: u64,
    /// TLPs that waited because the pool had no buffer for a new frame.
    pub no_buffer: u64,
}

/// The counters of a running pipeline, readable from any thread: the
/// pipeline stores them once per poll (single writer, relaxed).
#[derive(Debug, Default)]
pub struct LiveStats {
    frames_in: AtomicU64,
    tlps_in: AtomicU64,
    tlps_out: AtomicU64,
    frames_out: AtomicU64,
    tlps_refused: AtomicU64,
    busy_polls: AtomicU64,
    idle_polls: AtomicU64,
}

/// A snapshot of [`LiveStats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LiveSnapshot {
    /// Frames received.
    pub frames_in: u64,
    /// TLPs received.
    pub tlps_in: u64,
    /// TLPs forwarded.
    pub tlps_out: u64,
    /// Frames sent.
    pub frames_out: u64,
    /// TLPs refused.
    pub tlps_refused: u64,
    /// Polls that received something.
    pub busy_polls: u64,
    /// Polls that received nothing.
    pub idle_polls: u64,
}

impl LiveStats {
    /// The counters now.
    pub fn snapshot(&self) -> LiveSnapshot {
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        LiveSnapshot {
            frames_in: l(&self.frames_in),
            tlps_in: l(&self.tlps_in),
            tlps_out: l(&self.tlps_out),
            frames_out: l(&self.frames_out),
            tlps_refused: l(&self.tlps_refused),
            busy_polls: l(&self.busy_polls),
            idle_polls: l(&self.idle_polls),
        }
    }
}

struct Egress {
    /// A frame being filled, with its writer state.
    open: Option<(Frame, OpenFrame)>,
    /// Sealed frames not yet taken by the port.
    queue: Vec<Frame>,
}

/// How the node writes the frames it sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameSettings {
    /// EtherType of fabric frames.
    pub ethertype: u16,
    /// Link MTU.
    pub mtu: usize,
}

impl Default for FrameSettings {
    fn default() -> Self {
        FrameSettings {
            ethertype: ETHERTYPE,
            mtu: fabric::frame::DEFAULT_MTU,
        }
    }
}

/// A node's forwarding pipeline over its ports (index = node port number).
pub struct NodeTask<P> {
    name: String,
    tables: epoch::Reader<NodeTables>,
    state: NodeState,
    ports: Vec<P>,
    pool: FramePool,
    settings: FrameSettings,
    rx: Vec<Frame>,
    egress: Vec<Egress>,
    reply: [u8; 64],
    stats: NodeStats,
    live: Arc<LiveStats>,
    polls: (u64, u64),
}

impl<P> std::fmt::Debug for NodeTask<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeTask")
            .field("name", &self.name)
            .field("stats", &self.stats)
            .finish()
    }
}

fn be16(b: &[u8]) -> usize {
    u16::from_be_bytes([b[0], b[1]]) as usize
}

impl<P: Port> NodeTask<P> {
    /// A pipeline reading its tables through `tables`, sending frames built
    /// in buffers from `pool`.
    pub fn new(
        name: &str,
        tables: epoch::Reader<NodeTables>,
        ports: Vec<P>,
        pool: FramePool,
        settings: FrameSettings,
    ) -> NodeTask<P> {
        let n = ports.len();
        NodeTask {
            name: name.into(),
            state: NodeState::new(n as u16),
            tables,
            ports,
            pool,
            settings,
            rx: Vec::with_capacity(BURST),
            egress: (0..n)
                .map(|_| Egress {
                    open: None,
                    queue: Vec::with_capacity(BURST * 2),
                })
                .collect(),
            reply: [0; 64],
            stats: NodeStats::default(),
            live: Arc::new(LiveStats::default()),
            polls: (0, 0),
        }
    }

    /// Counters other threads can read while the pipeline runs.
    pub fn live(&self) -> Arc<LiveStats> {
        self.live.clone()
    }

    /// The counters.
    pub fn stats(&self) -> &NodeStats {
        &self.stats
    }

    /// Per-port refusal counters and the refusal log.
    pub fn state(&mut self) -> &mut NodeState {
        &mut self.state
    }

    /// The ports.
    pub fn ports(&self) -> &[P] {
        &self.ports
    }

    /// The ports, mutable (to inject or collect frames in tests).
    pub fn ports_mut(&mut self) -> &mut [P] {
        &mut self.ports
    }

    /// Appends a TLP to the open frame of `port`, sealing and starting frames
    /// as needed; false if no buffer was free.
    fn emit(&mut self, port: u16, tlp: &[u8]) -> bool {
        let node = self.tables.get().node() as u16;
        let Some(e) = self.egress.get_mut(port as usize) else {
            return false;
        };
        loop {
            if let Some((frame, open)) = &mut e.open {
                if open.push(frame.buffer_mut(), tlp) {
                    return true;
                }
                if open.count() == 0 {
                    // Too large for any frame: nothing more to try.
                    return false;
                }
                if let Some((mut frame, open)) = e.open.take() {
                    let len = open.finish(frame.buffer_mut());
                    frame.set_len(len);
                    e.queue.push(frame);
                }
            }
            let Some(mut frame) = self.pool.alloc() else {
                self.stats.no_buffer += 1;
                return false;
            };
            let header = FrameHeader {
                ethertype: self.settings.ethertype,
                source_node: node,
                destination_node: u16::MAX,
                ..FrameHeader::default()
            };
            match OpenFrame::start(frame.buffer_mut(), &header, self.settings.mtu) {
                Ok(open) => e.open = Some((frame, open)),
                Err(_) => return false,
            }
        }
    }

    /// Seals every open frame and offers every queue to its port.
    fn flush(&mut self) {
        for (p, e) in self.egress.iter_mut().enumerate() {
            if let Some((mut frame, open)) = e.open.take() {
                let len = open.finish(frame.buffer_mut());
                frame.set_len(len);
                e.queue.push(frame);
            }
            if e.queue.is_empty() {
                continue;
            }
            let offered = e.queue.len();
            let sent = self.ports[p].tx_burst(0, &mut e.queue);
            self.stats.frames_out += sent as u64;
            self.stats.tx_deferred += (offered - sent) as u64;
        }
    }

    /// Processes one received frame's TLPs in place.
    fn process(&mut self, ingress: u16, mut frame: Frame, now: u64) {
        let count = match FrameView::new_checked(&frame[..], self.settings.ethertype) {
            Ok(view) => view.tlp_count(),
            Err(_) => {
                self.stats.frames_malformed += 1;
                return;
            }
        };
        let mut at = HEADER_LEN;
        for _ in 0..count {
            // The frame checks held every length to the frame.
            let len = be16(&frame[at..at + 2]);
            let range = at + 2..at + 2 + len;
            at = range.end;
            self.stats.tlps_in += 1;
            let tlp = &mut frame[range.clone()];
            if let Ok(class) = tlp::classify(tlp) {
                self.stats.tlps_in_by_class[class.flow as usize] += 1;
            }
            let action =
                self.tables
                    .get()
                    .forward(ingress, tlp, &mut self.reply, &mut self.state, now);
            match action {
                Action::Forward(egress) => {
                    if self.emit(egress, &frame[range]) {
                        self.stats.tlps_out += 1;
                    }
                }
                Action::Broadcast(ports) => {
                    // Copy the list: emitting needs the task mutably.
                    let mut copies = [0u16; 16];
                    let n = ports.len().min(copies.len());
                    copies[..n].copy_from_slice(&ports[..n]);
                    for &p in &copies[..n] {
                        if self.emit(p, &frame[range.clone()]) {
                            self.stats.tlps_out += 1;
                        }
                    }
                }
                Action::Reply { len, .. } => {
                    self.stats.tlps_refused += 1;
                    let reply = self.reply;
                    self.emit(ingress, &reply[..len.min(reply.len())]);
                }
                Action::Drop(_) => self.stats.tlps_refused += 1,
                Action::Local => self.stats.tlps_local += 1,
            }
        }
    }
}

impl<P: Port + Send> Task for NodeTask<P> {
    fn name(&self) -> &str {
        &self.name
    }

    fn poll(&mut self, now: u64) -> usize {
        self.tables.refresh();
        let started = std::time::Instant::now();
        let mut done = 0;
        for p in 0..self.ports.len() {
            // A port whose frames cannot leave is not read from: back-pressure
            // instead of a queue that grows.
            if self.egress.iter().any(|e| e.queue.len() >= BURST * 2) {
                break;
            }
            let mut rx = std::mem::take(&mut self.rx);
            let n = self.ports[p].rx_burst(0, &mut rx, BURST);
            self.stats.frames_in += n as u64;
            for frame in rx.drain(..) {
                done += 1;
                self.process(p as u16, frame, now);
            }
            self.rx = rx;
        }
        self.flush();
        if done > 0 {
            self.stats.busy_ns += started.elapsed().as_nanos() as u64;
            self.polls.0 += 1;
        } else {
            self.polls.1 += 1;
        }
        let (s, l) = (&self.stats, &self.live);
        l.frames_in.store(s.frames_in, Ordering::Relaxed);
        l.tlps_in.store(s.tlps_in, Ordering::Relaxed);
        l.tlps_out.store(s.tlps_out, Ordering::Relaxed);
        l.frames_out.store(s.frames_out, Ordering::Relaxed);
        l.tlps_refused.store(s.tlps_refused, Ordering::Relaxed);
        l.busy_polls.store(self.polls.0, Ordering::Relaxed);
        l.idle_polls.store(self.polls.1, Ordering::Relaxed);
        done
    }
}
