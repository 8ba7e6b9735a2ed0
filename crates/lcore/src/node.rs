//! One switch node's forwarding pipeline as a polled task, run to
//! completion per burst: `rx_burst` → check the frame → for each TLP:
//! checks, source validation, routing and translation
//! ([`NodeTables::forward`], in place in the received buffer) → into the
//! open frame of its egress port → at the end of the burst, seal the open
//! frames and `tx_burst` them. Frames a port cannot take now wait in that
//! port's queue and go first next time: nothing is dropped silently. New
//! route tables are taken between bursts ([`epoch::Reader::refresh`]).

use crate::gate::{Arrival, Gate, GateOffer};
use crate::task::Task;
use fabric::frame::{
    Flags, Frame as FrameView, FrameHeader, Integrity, OpenFrame, CRC_LEN, ETHERNET_LEN, ETHERTYPE,
    HEADER_LEN,
};
use fabric::link::{Link, LinkConfig, LinkConfigError, LinkStats, SendError};
use fabric::routing::epoch;
use fabric::{Action, Ingress, NodeState, NodeTables, PortKind};
use pmd::{Frame, FramePool, Port};
use rings::credits::Cost;
use rings::pause::{Direction, State};
use std::collections::VecDeque;
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
    /// TLPs received that passed the checks, by flow class: posted,
    /// non-posted, completion (summed from the node state's per-port
    /// counters at the end of each poll).
    pub tlps_in_by_class: [u64; 3],
    /// Time-stamp counter cycles spent in polls that did work (the counter
    /// read at the start and end of each poll; [`crate::tsc`]).
    pub busy_cycles: u64,
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
    /// TLPs dropped toward a link that went down (its peer fell silent):
    /// those it held, those waiting for it, and those routed to it after.
    pub link_down_dropped: u64,
    /// TLPs dropped because the pool had no buffer for a new frame, or a
    /// reliable link's waiting room was full (`tlpfabric run` reports them
    /// as overload).
    pub no_buffer: u64,
    /// TLPs too large for any frame the node sends on their egress (its
    /// MTU is smaller than the frame they came in): dropped, counted.
    pub too_large: u64,
    /// Received frames sent on whole (every TLP to one egress).
    pub cut_through: u64,
    /// Received frames whose TLPs all went to one egress but that were
    /// larger than this node's frames (its MTU): repacked to fit.
    pub repacked: u64,
    /// TLPs a gate held while their binding moved.
    pub tlps_held: u64,
    /// TLPs a gate's VDI completed instead of the function.
    pub vdi_served: u64,
}

/// The counters of a running pipeline, readable from any thread: the
/// pipeline stores them once per poll (single writer, relaxed).
#[derive(Debug, Default)]
pub struct LiveStats {
    pub(crate) frames_in: AtomicU64,
    pub(crate) tlps_in: AtomicU64,
    pub(crate) tlps_out: AtomicU64,
    pub(crate) frames_out: AtomicU64,
    pub(crate) tlps_refused: AtomicU64,
    pub(crate) busy_polls: AtomicU64,
    pub(crate) idle_polls: AtomicU64,
    pub(crate) busy_cycles: AtomicU64,
    /// Per port: its reliable link's counters (zero on a port without one).
    links: Box<[LiveLink]>,
}

/// A reliable link's counters as its pipeline last published them (every
/// [`LINK_PUBLISH_POLLS`] polls): a control thread tells by them whether
/// frames still arrive and what the link has replayed.
#[derive(Debug, Default)]
struct LiveLink {
    frames_received: AtomicU64,
    frames_sent: AtomicU64,
    frames_replayed: AtomicU64,
    replay_timeouts: AtomicU64,
    frames_malformed: AtomicU64,
    /// 1 once the link went down.
    down: AtomicU64,
}

/// Polls between publications of the links' counters: often enough for a
/// heartbeat of milliseconds, rarely enough to cost nothing per poll.
pub const LINK_PUBLISH_POLLS: u64 = 256;

/// A snapshot of one link's published counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinkSnapshot {
    /// Frames received that passed their checks (updates included: a link
    /// that is up receives some every few microseconds).
    pub frames_received: u64,
    /// Frames sent (replays and updates included).
    pub frames_sent: u64,
    /// Frames sent again.
    pub frames_replayed: u64,
    /// Replay timer expiries.
    pub replay_timeouts: u64,
    /// Frames that failed their checks.
    pub frames_malformed: u64,
    /// Whether the link went down (its peer fell silent).
    pub down: bool,
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
    /// Time-stamp counter cycles spent in polls that did work.
    pub busy_cycles: u64,
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
            busy_cycles: l(&self.busy_cycles),
        }
    }

    /// The counters of the reliable link on `port`, as last published
    /// (`None`: no such port).
    pub fn link(&self, port: u16) -> Option<LinkSnapshot> {
        let l = self.links.get(port as usize)?;
        let r = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Some(LinkSnapshot {
            frames_received: r(&l.frames_received),
            frames_sent: r(&l.frames_sent),
            frames_replayed: r(&l.frames_replayed),
            replay_timeouts: r(&l.replay_timeouts),
            frames_malformed: r(&l.frames_malformed),
            down: r(&l.down) != 0,
        })
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
    /// How frames on ports without a reliable link are protected (each
    /// reliable link has its own, from its configuration).
    pub integrity: Integrity,
}

impl Default for FrameSettings {
    fn default() -> Self {
        FrameSettings {
            ethertype: ETHERTYPE,
            mtu: fabric::frame::DEFAULT_MTU,
            integrity: Integrity::Crc32c,
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
    /// Per port: the reliable link over it, if it has one.
    links: Vec<Option<Reliable>>,
    /// The credits of the TLP being handled, while it may still be parked
    /// (taken by the waiting queue that parks it).
    holding: Option<(u16, Cost)>,
    /// Credits to return to ingress links, gathered while sending.
    returns: Vec<(u16, Cost)>,
    /// TLPs a link delivered, copied out of its frame to be forwarded.
    staging: Vec<u8>,
    staged: Vec<(usize, usize)>,
    /// The pause stage at an endpoint's port, if the node has one.
    gate: Option<Gate>,
    /// Per port: TLPs waiting for room at a full pause point, in order.
    parked: Vec<VecDeque<Parked>>,
    /// Offering waiting TLPs again (they were counted as arrived).
    retrying: bool,
}

/// Whether a pause point took a TLP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Taken {
    /// Taken: forwarded, held, served or refused.
    Yes,
    /// Its pause point was full; if routed already, toward this egress.
    Full(Option<u16>),
}

/// A TLP waiting at its ingress for room at a full pause point.
struct Parked {
    bytes: Vec<u8>,
    /// The credits it consumed on a reliable ingress link.
    credits: Option<(u16, Cost)>,
    /// Routed (and translated) already, toward this egress.
    routed: Option<u16>,
}

/// Where one TLP goes, without the borrow of the tables.
#[derive(Debug, Clone, Copy)]
enum Routed {
    Forward(u16),
    Broadcast([u16; 16], usize),
    Reply(usize),
    Refused,
    Local,
}

/// Bytes of TLPs that may wait for one link. The node stops reading its
/// ports while any link has more than half of this waiting, and one poll
/// brings at most a burst of jumbo frames, so the rest always fits.
const WAITING_BYTES: usize = 1 << 20;
/// TLPs that can wait at one port for a full pause point: a reliable link
/// delivers no more than its header credits of the three classes.
const PARKED_ROOM: usize = 3 * 64;
/// The largest TLP (4 KiB of data, a 4 DW header, four prefixes, a digest).
const MAX_TLP: usize = 4096 + 16 + 16 + 4;

/// Bytes a node allocates for each port with a reliable link: its waiting
/// room (TLP bytes, lengths and owners) and its share of the credits to
/// return.
pub fn reliable_port_memory() -> usize {
    let per_tlp = std::mem::size_of::<usize>() + std::mem::size_of::<Option<(u16, Cost)>>();
    WAITING_BYTES + WAITING_BYTES / 16 * (per_tlp + std::mem::size_of::<(u16, Cost)>()) + MAX_TLP
}

/// TLPs waiting for a link to take them, in order, in a byte ring.
struct Waiting {
    bytes: VecDeque<u8>,
    lengths: VecDeque<usize>,
    /// Per waiting TLP: the reliable ingress port whose credits it still
    /// holds, and their amount.
    owners: VecDeque<Option<(u16, Cost)>>,
    /// The front TLP, copied out contiguously.
    front: Vec<u8>,
}

impl Waiting {
    fn new() -> Waiting {
        Waiting {
            bytes: VecDeque::with_capacity(WAITING_BYTES),
            lengths: VecDeque::with_capacity(WAITING_BYTES / 16),
            owners: VecDeque::with_capacity(WAITING_BYTES / 16),
            front: Vec::with_capacity(MAX_TLP),
        }
    }

    fn is_empty(&self) -> bool {
        self.lengths.is_empty()
    }

    /// More than half full: time to stop taking in more.
    fn pressed(&self) -> bool {
        self.bytes.len() > WAITING_BYTES / 2
    }

    fn push(&mut self, tlp: &[u8], owner: Option<(u16, Cost)>) -> bool {
        if self.bytes.len() + tlp.len() > WAITING_BYTES
            || self.lengths.len() == self.lengths.capacity()
        {
            return false;
        }
        self.bytes.extend(tlp);
        self.lengths.push_back(tlp.len());
        self.owners.push_back(owner);
        true
    }

    fn front(&mut self) -> Option<&[u8]> {
        let &len = self.lengths.front()?;
        self.front.clear();
        self.front.extend(self.bytes.range(..len));
        Some(&self.front)
    }

    /// Drops the front TLP; returns the credits it held.
    fn pop(&mut self) -> Option<(u16, Cost)> {
        if let Some(len) = self.lengths.pop_front() {
            self.bytes.drain(..len);
        }
        self.owners.pop_front().flatten()
    }
}

/// A reliable link over one port, and what waits for it.
struct Reliable {
    link: Link,
    waiting: Waiting,
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
            live: Arc::new(LiveStats {
                links: (0..n).map(|_| LiveLink::default()).collect(),
                ..LiveStats::default()
            }),
            polls: (0, 0),
            links: (0..n).map(|_| None).collect(),
            holding: None,
            returns: Vec::with_capacity(WAITING_BYTES / 16),
            staging: Vec::with_capacity(2 * fabric::frame::MAX_MTU + 64),
            staged: Vec::with_capacity(1024),
            gate: None,
            parked: (0..n).map(|_| VecDeque::new()).collect(),
            retrying: false,
        }
    }

    /// Puts a pause stage (pause points and VDIs of the functions bound
    /// through it) at the gate's port.
    pub fn with_gate(&mut self, gate: Gate) {
        self.gate = Some(gate);
        // Room for what a reliable link's credits let wait at each port, so
        // that waiting allocates no bookkeeping.
        for q in &mut self.parked {
            q.reserve(PARKED_ROOM);
        }
    }

    /// Whether TLPs from `port` wait for a full pause point.
    fn parked_at(&self, port: u16) -> bool {
        self.parked
            .get(port as usize)
            .is_some_and(|q| !q.is_empty())
    }

    /// TLPs waiting for a reliable link to take them, over all its ports.
    pub fn waiting(&self) -> usize {
        self.links
            .iter()
            .flatten()
            .map(|r| r.waiting.lengths.len())
            .sum()
    }

    /// TLPs waiting at their ingress for room at a full pause point.
    pub fn parked(&self) -> usize {
        self.parked.iter().map(VecDeque::len).sum()
    }

    /// Its counters and refusal log, to read.
    pub fn node_state(&self) -> &NodeState {
        &self.state
    }

    /// The pause stage, if it has one.
    pub fn gate(&self) -> Option<&Gate> {
        self.gate.as_ref()
    }

    /// Runs a reliable link (sequence numbers, ACK/NAK, replay, credits)
    /// over `port`, configured by `config`; its peer must run one too.
    pub fn with_reliable_link(
        &mut self,
        port: u16,
        config: LinkConfig,
    ) -> Result<(), LinkConfigError> {
        let link = Link::new(config)?;
        if let Some(slot) = self.links.get_mut(port as usize) {
            *slot = Some(Reliable {
                link,
                waiting: Waiting::new(),
            });
        }
        Ok(())
    }

    /// The counters of the reliable link over `port`, if it has one.
    pub fn link_stats(&self, port: u16) -> Option<&LinkStats> {
        self.links
            .get(port as usize)?
            .as_ref()
            .map(|r| r.link.stats())
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
    fn emit(&mut self, port: u16, tlp: &[u8], now: u64) -> bool {
        if let Some(Some(r)) = self.links.get_mut(port as usize) {
            // Order is kept: once one TLP waits, the rest queue behind it.
            if r.waiting.is_empty() {
                match r.link.try_send(tlp, now) {
                    Ok(()) => return true,
                    Err(SendError::NoCredits(_) | SendError::ReplayFull) => {}
                    // Taken and dropped, counted: its credits go back as
                    // for a TLP sent, so its sender is not held up.
                    Err(SendError::LinkDown) => {
                        self.stats.link_down_dropped += 1;
                        return true;
                    }
                    Err(_) => return false,
                }
            }
            if r.waiting.push(tlp, self.holding.take()) {
                return true;
            }
            self.stats.no_buffer += 1;
            return false;
        }
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
                    self.stats.too_large += 1;
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
                flags: Flags(match self.settings.integrity {
                    Integrity::Fcs => Flags::FCS,
                    Integrity::Crc32c => 0,
                }),
                ..FrameHeader::default()
            };
            match OpenFrame::start(frame.buffer_mut(), &header, self.settings.mtu) {
                Ok(open) => e.open = Some((frame, open)),
                Err(_) => return false,
            }
        }
    }

    /// Seals every open frame and offers every queue to its port; reliable
    /// links take what waited for them and send what they have to send,
    /// their open frames sealed too when `light` (see `poll`).
    fn flush(&mut self, now: u64, light: bool) {
        for (r, e) in self.links.iter_mut().zip(&mut self.egress) {
            let Some(r) = r else {
                continue;
            };
            if r.link.check_down(now) {
                self.stats.link_down_dropped += r.link.stats().tlps_discarded_down;
            }
            while let Some(tlp) = r.waiting.front() {
                match r.link.try_send(tlp, now) {
                    Err(SendError::NoCredits(_) | SendError::ReplayFull) => break,
                    Err(SendError::LinkDown) => {
                        self.stats.link_down_dropped += 1;
                        if let Some(owed) = r.waiting.pop() {
                            self.returns.push(owed);
                        }
                    }
                    // Sent, or never sendable (counted by the link): next,
                    // and the credits it held go back to where it came from.
                    _ => {
                        if let Some(owed) = r.waiting.pop() {
                            self.returns.push(owed);
                        }
                    }
                }
            }
            if light {
                r.link.flush();
            }
            // Asked first: an idle link takes and frees no pool frame.
            while e.queue.len() < BURST * 4 && r.link.has_transmit(now) {
                let Some(mut frame) = self.pool.alloc() else {
                    self.stats.no_buffer += 1;
                    break;
                };
                match r.link.poll_transmit(now, frame.buffer_mut()) {
                    Some(len) => {
                        frame.set_len(len);
                        e.queue.push(frame);
                    }
                    None => break,
                }
            }
        }
        for (ingress, cost) in self.returns.drain(..) {
            if let Some(Some(r)) = self.links.get_mut(ingress as usize) {
                r.link.release(cost);
            }
        }
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
        if self
            .links
            .get(ingress as usize)
            .is_some_and(Option::is_some)
        {
            return self.process_reliable(ingress, frame, now);
        }
        // One look at where the frame's bytes are: each `Frame` deref
        // matches on its storage again.
        let bytes: &mut [u8] = &mut frame;
        let count = match FrameView::new_checked_as(
            &bytes[..],
            self.settings.ethertype,
            self.settings.integrity,
        ) {
            Ok(view) => view.tlp_count(),
            Err(_) => {
                self.stats.frames_malformed += 1;
                return;
            }
        };
        // While every TLP of the frame goes to one plain egress, the frame
        // itself can go on (cut-through) instead of its TLPs being copied
        // into a new one. The TLPs are forwarded in place either way; those
        // held back here are emitted after all if the frame turns mixed.
        let mut n_held = 0;
        let mut through: Option<u16> = None;
        // A gate needs to see each TLP on its own.
        let mut mixed = self.gate.is_some();
        // The port's kind and edge, once for the frame.
        let from = self.tables.get().ingress(ingress);
        let mut at = HEADER_LEN;
        for _ in 0..count {
            // The frame checks held every length to the frame.
            let len = be16(&bytes[at..at + 2]);
            let range = at + 2..at + 2 + len;
            at = range.end;
            if mixed {
                let tlp = &mut bytes[range];
                if self.parked_at(ingress) {
                    self.holding = None;
                    self.park_behind(ingress, tlp, now);
                } else if let Taken::Full(routed) = self.handle(ingress, tlp, now) {
                    self.park(ingress, tlp, routed);
                }
                continue;
            }
            // No credits to note: a reliable link's frames go the other way.
            self.stats.tlps_in += 1;
            let action = self.route(from, &mut bytes[range.clone()], now);
            if let Routed::Forward(e) = action {
                let joins = match through {
                    Some(t) => t == e,
                    None => self.links.get(e as usize).is_some_and(Option::is_none),
                };
                if joins {
                    through = Some(e);
                    n_held += 1;
                    continue;
                }
            }
            // Mixed: what was held goes out one by one, then this one.
            mixed = true;
            if let Some(e) = through {
                self.emit_held(bytes, n_held, e, now);
            }
            self.finish_one(ingress, action, &bytes[range], now);
        }
        let Some(egress) = through.filter(|_| !mixed && n_held > 0) else {
            return;
        };
        // A frame larger than this node's frames may be (from a neighbour
        // with a larger MTU) is repacked to fit, not passed on whole.
        if at + CRC_LEN > ETHERNET_LEN + self.settings.mtu {
            self.stats.repacked += 1;
            return self.emit_held(bytes, n_held, egress, now);
        }
        // Translation rewrites TLPs only where hosts and endpoints attach:
        // between two links the frame is unchanged and its CRC still holds.
        let kinds = self.tables.get().ports();
        let transit = matches!(kinds.get(ingress as usize), Some(PortKind::Link { .. }))
            && matches!(kinds.get(egress as usize), Some(PortKind::Link { .. }));
        if !transit && self.settings.integrity == Integrity::Crc32c {
            let crc = fabric::crc_of(&bytes[..at]);
            bytes[at..at + 4].copy_from_slice(&crc.to_be_bytes());
        }
        if let Some(e) = self.egress.get_mut(egress as usize) {
            // Keep order: what is already packed for this port goes first.
            if let Some((mut open_frame, open)) = e.open.take() {
                let len = open.finish(open_frame.buffer_mut());
                open_frame.set_len(len);
                e.queue.push(open_frame);
            }
            e.queue.push(frame);
            self.stats.tlps_out += n_held as u64;
            self.stats.cut_through += 1;
        }
    }

    /// Sends on the first `count` TLPs of a checked frame, one by one, to
    /// `egress` (walking the frame again from its first TLP).
    fn emit_held(&mut self, frame: &[u8], count: usize, egress: u16, now: u64) {
        let mut h = HEADER_LEN;
        for _ in 0..count {
            let len = be16(&frame[h..h + 2]);
            if self.emit(egress, &frame[h + 2..h + 2 + len], now) {
                self.stats.tlps_out += 1;
            }
            h += 2 + len;
        }
    }

    /// A frame from a reliable link: the link checks it, orders it and
    /// delivers its TLPs, which are forwarded and their credits returned.
    fn process_reliable(&mut self, ingress: u16, frame: Frame, now: u64) {
        let (mut staging, mut staged) = (
            std::mem::take(&mut self.staging),
            std::mem::take(&mut self.staged),
        );
        if let Some(Some(r)) = self.links.get_mut(ingress as usize) {
            let received = r.link.receive(&frame, now, |tlp| {
                staged.push((staging.len(), tlp.len()));
                staging.extend_from_slice(tlp);
            });
            if received.is_err() {
                self.stats.frames_malformed += 1;
            }
        }
        drop(frame);
        for &(at, len) in &staged {
            let tlp = &mut staging[at..at + len];
            // Its credits go back when it leaves this node: now, unless a
            // congested link parks it, and then when that link takes it, so
            // congestion reaches back to the sender as withheld credits.
            // (`route_one` sets what it holds, from the one classification.)
            if self.parked_at(ingress) {
                self.holding = tlp::classify(tlp).ok().map(|c| (ingress, Cost::of(&c)));
                if self.park_behind(ingress, tlp, now) {
                    continue;
                }
            } else if let Taken::Full(routed) = self.handle(ingress, tlp, now) {
                self.park(ingress, tlp, routed);
                continue;
            }
            if let Some((_, cost)) = self.holding.take() {
                if let Some(Some(r)) = self.links.get_mut(ingress as usize) {
                    r.link.release(cost);
                }
            }
        }
        staging.clear();
        staged.clear();
        self.staging = staging;
        self.staged = staged;
    }

    /// Forwards one TLP (translated in place) to where it goes.
    fn handle(&mut self, ingress: u16, tlp: &mut [u8], now: u64) -> Taken {
        if self.gate.is_some() {
            return self.handle_gated(ingress, tlp, now);
        }
        let action = self.route_one(ingress, tlp, now);
        self.finish_one(ingress, action, tlp, now);
        Taken::Yes
    }

    /// `handle` at a node with a gate: traffic from a gated function is
    /// offered before routing, traffic to one after.
    fn handle_gated(&mut self, ingress: u16, tlp: &mut [u8], now: u64) -> Taken {
        let Some(mut gate) = self.gate.take() else {
            return Taken::Yes;
        };
        let reliable = self
            .links
            .get(ingress as usize)
            .is_some_and(Option::is_some);
        if ingress == gate.port() {
            if let Some(b) = gate.match_up(tlp) {
                // Credits matter only if it may be held: not at an open point.
                let open = gate.state(b) == Some(State::Open);
                let owner = (reliable && !open)
                    .then(|| tlp::classify(tlp).ok())
                    .flatten()
                    .map(|c| (ingress, Cost::of(&c)));
                let keeps = gate.back_pressure(b, Direction::Up);
                let arrival = Arrival {
                    dir: Direction::Up,
                    ingress,
                    credits: owner.filter(|_| keeps),
                    redirected: false,
                    again: self.retrying,
                };
                let offer = gate.offer(b, arrival, tlp, &mut self.reply, now);
                if offer == GateOffer::Full {
                    // Not taken: it waits at its ingress with its credits.
                    self.holding = owner;
                    self.gate = Some(gate);
                    return Taken::Full(None);
                }
                if offer != GateOffer::Pass {
                    self.stats.tlps_held += u64::from(offer == GateOffer::Held);
                    // Held with its credits, or they go back now.
                    let held = offer == GateOffer::Held;
                    // One the gate consumed at an open point (a completion
                    // that ends there) gives its credits back too.
                    let owner = owner.or_else(|| {
                        reliable
                            .then(|| tlp::classify(tlp).ok())
                            .flatten()
                            .map(|c| (ingress, Cost::of(&c)))
                    });
                    self.holding = if keeps && held { None } else { owner };
                    self.gate = Some(gate);
                    return Taken::Yes;
                }
            }
        }
        let action = self.route_one(ingress, tlp, now);
        self.gate = Some(gate);
        self.gate_down(ingress, action, tlp, now)
    }

    /// The part of `handle_gated` after routing: a TLP toward a gated
    /// function is offered to its pause point, anything else goes on.
    fn gate_down(&mut self, ingress: u16, action: Routed, tlp: &mut [u8], now: u64) -> Taken {
        let Some(mut gate) = self.gate.take() else {
            self.finish_one(ingress, action, tlp, now);
            return Taken::Yes;
        };
        if let Routed::Forward(egress) = action {
            if egress == gate.port() {
                if let Some(b) = gate.match_down(tlp) {
                    let to = gate.redirect_down(b, tlp);
                    let (b, redirected) = (to, to != b);
                    let keeps = gate.back_pressure(b, Direction::Down);
                    let owner = self.holding.filter(|_| keeps);
                    let offer = match gate.serve_destination(b, tlp, &mut self.reply) {
                        Some(served) => served,
                        None => {
                            let arrival = Arrival {
                                dir: Direction::Down,
                                ingress,
                                credits: owner,
                                redirected,
                                again: self.retrying,
                            };
                            gate.offer(b, arrival, tlp, &mut self.reply, now)
                        }
                    };
                    match offer {
                        GateOffer::Pass => {}
                        GateOffer::Held => {
                            self.stats.tlps_held += 1;
                            if keeps {
                                // The held TLP returns them when it leaves.
                                self.holding = None;
                            }
                            self.gate = Some(gate);
                            return Taken::Yes;
                        }
                        GateOffer::Served(len) => {
                            self.stats.vdi_served += 1;
                            let port = gate.port();
                            self.gate = Some(gate);
                            self.route_served(port, len, now);
                            return Taken::Yes;
                        }
                        GateOffer::Absorbed => {
                            self.stats.vdi_served += 1;
                            self.gate = Some(gate);
                            return Taken::Yes;
                        }
                        GateOffer::Full => {
                            // Routed (translated) already: offered again as
                            // it is, not routed twice.
                            self.gate = Some(gate);
                            return Taken::Full(Some(egress));
                        }
                    }
                }
            }
        }
        self.gate = Some(gate);
        self.finish_one(ingress, action, tlp, now);
        Taken::Yes
    }

    /// Keeps a TLP a full pause point did not take at its ingress, with
    /// the credits it consumed; everything after it from that port waits
    /// behind it.
    fn park(&mut self, ingress: u16, tlp: &[u8], routed: Option<u16>) {
        let credits = self.holding.take();
        let mut bytes = self
            .gate
            .as_mut()
            .map(|g| g.buffer_for(tlp.len()))
            .unwrap_or_default();
        bytes.extend_from_slice(tlp);
        if let Some(q) = self.parked.get_mut(ingress as usize) {
            q.push_back(Parked {
                bytes,
                credits,
                routed,
            });
        }
    }

    /// A TLP from a port where others wait for a full pause point: if it
    /// goes the same way (from the gated device, or toward it) it waits
    /// behind them, counted as having reached the pause point, and `true`;
    /// anything else goes on now (a switch keeps order only toward one
    /// egress, §2.4), and `false` with its credits in `holding`.
    fn park_behind(&mut self, ingress: u16, tlp: &mut [u8], now: u64) -> bool {
        let Some(port) = self.gate.as_ref().map(Gate::port) else {
            return false;
        };
        if ingress == port {
            if let Some(g) = self.gate.as_ref() {
                g.count_waiting(Direction::Up, tlp);
            }
            self.park(ingress, tlp, None);
            return true;
        }
        // Routing notes its credits in `holding` again, as the caller did.
        match self.route_one(ingress, tlp, now) {
            Routed::Forward(egress) if egress == port => {
                if let Some(g) = self.gate.as_ref() {
                    g.count_waiting(Direction::Down, tlp);
                }
                self.park(ingress, tlp, Some(egress));
                true
            }
            other => {
                self.finish_one(ingress, other, tlp, now);
                false
            }
        }
    }

    /// Offers what waits at each port again, in order, until a pause point
    /// is still full; what is taken gives its credits back as usual.
    fn retry_parked(&mut self, now: u64) {
        self.retrying = true;
        for p in 0..self.parked.len() {
            while let Some(mut parked) = self.parked[p].pop_front() {
                let ingress = p as u16;
                self.holding = parked.credits.take();
                let taken = match parked.routed {
                    None => self.handle(ingress, &mut parked.bytes, now),
                    Some(egress) => {
                        if let Some(g) = self.gate.as_ref() {
                            g.readdress_waiting(&mut parked.bytes);
                        }
                        let action = Routed::Forward(egress);
                        self.gate_down(ingress, action, &mut parked.bytes, now)
                    }
                };
                if let Taken::Full(_) = taken {
                    parked.credits = self.holding.take();
                    self.parked[p].push_front(parked);
                    break;
                }
                self.return_holding();
                if let Some(g) = self.gate.as_mut() {
                    g.recycle(parked.bytes);
                }
            }
        }
        self.retrying = false;
    }

    /// Control for the gate, and what it released: toward the function
    /// straight out of its port, from the function through routing (with
    /// the tables in force now).
    fn poll_gate(&mut self, now: u64) {
        let Some(gate) = self.gate.as_mut() else {
            return;
        };
        gate.poll(now);
        if gate.released.is_empty() && gate.upstream.is_empty() {
            return;
        }
        let mut released = std::mem::take(&mut gate.released);
        let mut upstream = std::mem::take(&mut gate.upstream);
        let port = gate.port();
        for (dir, mut held) in released.drain(..) {
            self.holding = held.owner.take();
            match dir {
                Direction::Down => {
                    if self.emit(port, held.bytes(), now) {
                        self.stats.tlps_out += 1;
                    }
                }
                Direction::Up => {
                    let ingress = held.ingress;
                    let owner = self.holding.take();
                    let mut bytes = held.into_bytes();
                    let action = self.route_one(ingress, &mut bytes, now);
                    // Routing notes the credits a TLP from this port
                    // consumed; a held one may have given them back already.
                    self.holding = owner;
                    self.finish_one(ingress, action, &bytes, now);
                    if let Some(g) = self.gate.as_mut() {
                        g.recycle(bytes);
                    }
                    self.return_holding();
                    continue;
                }
            }
            self.return_holding();
            if let Some(g) = self.gate.as_mut() {
                g.recycle(held.into_bytes());
            }
        }
        for mut tlp in upstream.drain(..) {
            let action = self.route_one(port, &mut tlp, now);
            self.holding = None;
            self.finish_one(port, action, &tlp, now);
            if let Some(g) = self.gate.as_mut() {
                g.recycle(tlp);
            }
        }
        // Both go back with their capacity: the next release needs no new
        // buffers.
        if let Some(g) = self.gate.as_mut() {
            g.released = released;
            g.upstream = upstream;
        }
    }

    /// Sends the completion a VDI wrote into `reply` on its way as if the
    /// function at `port` had sent it: routed by its requester ID and
    /// translated where it leaves toward the host. Sent straight back out
    /// of the request's ingress it would reach a host that attaches to this
    /// node in fabric IDs, which no host recognises. The request's credits
    /// (`holding`) stay with the request; the reply consumed none.
    fn route_served(&mut self, port: u16, len: usize, now: u64) {
        let mut reply = self.reply;
        let reply = &mut reply[..len.min(self.reply.len())];
        let request = self.holding.take();
        let action = self.route_one(port, reply, now);
        self.holding = None;
        self.finish_one(port, action, reply, now);
        self.holding = request;
    }

    /// Returns the credits of the TLP just handled, unless a waiting queue
    /// took them.
    fn return_holding(&mut self) {
        if let Some((ingress, cost)) = self.holding.take() {
            if let Some(Some(r)) = self.links.get_mut(ingress as usize) {
                r.link.release(cost);
            }
        }
    }

    /// Counts, checks, routes and translates one TLP in place.
    // Always inlined: called once per TLP, it saved and restored registers
    // around the routing it wraps and returned its decision through memory.
    #[inline(always)]
    fn route_one(&mut self, ingress: u16, tlp: &mut [u8], now: u64) -> Routed {
        self.stats.tlps_in += 1;
        // Its credits, if a reliable link brought it (routing counts the
        // TLP by class, from the classification it makes anyway).
        if self
            .links
            .get(ingress as usize)
            .is_some_and(Option::is_some)
        {
            if let Ok(class) = tlp::classify(tlp) {
                self.holding = Some((ingress, Cost::of(&class)));
            }
        }
        let from = self.tables.get().ingress(ingress);
        self.route(from, tlp, now)
    }

    /// Checks, routes and translates one TLP in place.
    // Always inlined, as `route_one`.
    #[inline(always)]
    fn route(&mut self, from: Ingress, tlp: &mut [u8], now: u64) -> Routed {
        let action =
            self.tables
                .get()
                .forward_from(from, tlp, &mut self.reply, &mut self.state, now);
        match action {
            Action::Forward(egress) => Routed::Forward(egress),
            Action::Broadcast(ports) => {
                let mut copies = [0u16; 16];
                let n = ports.len().min(copies.len());
                copies[..n].copy_from_slice(&ports[..n]);
                Routed::Broadcast(copies, n)
            }
            Action::Reply { len, .. } => Routed::Reply(len),
            Action::Drop(_) => Routed::Refused,
            Action::Local => Routed::Local,
        }
    }

    /// Sends one routed TLP on.
    fn finish_one(&mut self, ingress: u16, action: Routed, tlp: &[u8], now: u64) {
        match action {
            Routed::Forward(egress) => {
                if self.emit(egress, tlp, now) {
                    self.stats.tlps_out += 1;
                }
            }
            Routed::Broadcast(ports, n) => {
                for &p in &ports[..n] {
                    if self.emit(p, tlp, now) {
                        self.stats.tlps_out += 1;
                    }
                }
            }
            Routed::Reply(len) => {
                self.stats.tlps_refused += 1;
                let reply = self.reply;
                self.emit(ingress, &reply[..len.min(reply.len())], now);
            }
            Routed::Refused => self.stats.tlps_refused += 1,
            Routed::Local => self.stats.tlps_local += 1,
        }
    }
}

impl<P: Port + Send + 'static> Task for NodeTask<P> {
    fn name(&self) -> &str {
        &self.name
    }

    fn poll(&mut self, now: u64) -> usize {
        self.tables.refresh();
        self.poll_gate(now);
        // What waited for room goes before anything new from its port.
        if self.parked.iter().any(|q| !q.is_empty()) {
            self.retry_parked(now);
        }
        let started = crate::tsc::cycles();
        let mut done = 0;
        let mut light = true;
        for p in 0..self.ports.len() {
            // While frames cannot leave, ports are not read from: back-pressure
            // instead of a queue that grows. Ports with a reliable link are
            // read regardless: the credits this node grants bound what they
            // bring, and two nodes that each waited for the other to read
            // would wait forever.
            let waiting = |r: &Option<Reliable>| r.as_ref().is_some_and(|r| r.waiting.pressed());
            let congested = self.egress.iter().any(|e| e.queue.len() >= BURST * 2)
                || self.links.iter().any(waiting);
            if congested && self.links[p].is_none() {
                continue;
            }
            let mut rx = std::mem::take(&mut self.rx);
            let n = self.ports[p].rx_burst(0, &mut rx, BURST);
            light &= n < BURST;
            self.stats.frames_in += n as u64;
            for frame in rx.drain(..) {
                done += 1;
                self.process(p as u16, frame, now);
            }
            self.rx = rx;
            if self.gate.as_mut().is_some_and(Gate::commands_waiting) {
                self.poll_gate(now);
            }
        }
        // Under light load no more company is coming for a TLP in an open
        // frame: it leaves now rather than at the link's flush deadline.
        // Under load (a full burst) frames fill up before the deadline.
        self.flush(now, light);
        if done > 0 {
            self.stats.busy_cycles += crate::tsc::cycles().wrapping_sub(started);
            self.polls.0 += 1;
        } else {
            self.polls.1 += 1;
        }
        let mut by_class = [0; 3];
        for c in &self.state.counters {
            for (sum, n) in by_class.iter_mut().zip(c.by_class) {
                *sum += n;
            }
        }
        self.stats.tlps_in_by_class = by_class;
        let (s, l) = (&self.stats, &self.live);
        l.frames_in.store(s.frames_in, Ordering::Relaxed);
        l.tlps_in.store(s.tlps_in, Ordering::Relaxed);
        l.tlps_out.store(s.tlps_out, Ordering::Relaxed);
        l.frames_out.store(s.frames_out, Ordering::Relaxed);
        l.tlps_refused.store(s.tlps_refused, Ordering::Relaxed);
        l.busy_polls.store(self.polls.0, Ordering::Relaxed);
        l.idle_polls.store(self.polls.1, Ordering::Relaxed);
        l.busy_cycles.store(s.busy_cycles, Ordering::Relaxed);
        if (self.polls.0 + self.polls.1).is_multiple_of(LINK_PUBLISH_POLLS) {
            for (live, reliable) in l.links.iter().zip(&self.links) {
                if let Some(r) = reliable {
                    let s = r.link.stats();
                    live.frames_received
                        .store(s.frames_received, Ordering::Relaxed);
                    live.frames_sent.store(s.frames_sent, Ordering::Relaxed);
                    live.frames_replayed
                        .store(s.frames_replayed, Ordering::Relaxed);
                    live.replay_timeouts
                        .store(s.replay_timeouts, Ordering::Relaxed);
                    live.frames_malformed
                        .store(s.frames_malformed, Ordering::Relaxed);
                    live.down
                        .store(u64::from(r.link.is_down()), Ordering::Relaxed);
                }
            }
        }
        done
    }
}
