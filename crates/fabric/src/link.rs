//! The reliable link: TLPs cross a lossy wire exactly once and in order, the
//! way the PCIe data link layer carries them (PCIe Base Specification 4.0
//! §3.6: sequence numbers, ACK/NAK, the replay buffer and the replay timer;
//! §2.6.1: credit-based flow control).
//!
//! One [`Link`] is one end of a link, both directions:
//!
//! - **Sending.** [`Link::try_send`] gates a TLP on the peer's credits, then
//!   packs it into the open frame. A frame is sealed when the next TLP does
//!   not fit or when the flush deadline passes ([`LinkConfig::flush_deadline`]),
//!   and then takes the next sequence number. Sealed frames stay in a bounded
//!   replay buffer until the peer acknowledges them; a NAK, or no
//!   acknowledgement progress for [`LinkConfig::replay_timeout`], replays every
//!   unacknowledged frame from the oldest (go-back-N, as §3.6.2.1 does).
//! - **Receiving.** [`Link::receive`] checks the frame (CRC-32C and all), then
//!   delivers its TLPs only if its sequence number is the next expected one.
//!   An earlier number is a duplicate and is discarded (and acknowledged again);
//!   a later one means a frame was lost, so it is discarded and one NAK is
//!   scheduled, not repeated until in-order frames resume (§3.6.3.1's
//!   NAK_SCHEDULED). A frame that fails its checks is counted, dropped and
//!   NAKed.
//! - **Acknowledgements and credits** ride on every frame sent (the cumulative
//!   ACK and the credits allocated so far). When there is no data to carry
//!   them, a frame with no TLPs carries them, at once when there is something
//!   new to say and otherwise every [`LinkConfig::update_interval`], as
//!   UpdateFC DLLPs are repeated (§2.6.1.2), so that a lost update heals.
//!
//! Credits follow §2.6.1.2 with 16-bit counters: the sender tracks
//! CREDITS_CONSUMED and the peer's CREDIT_LIMIT and may send a TLP when
//! `(limit - (consumed + cost)) mod 2^16 <= 2^15`; the receiver adds to its
//! CREDITS_ALLOCATED as the application releases what was delivered
//! ([`Link::release`]). An advertisement of 0 means infinite.
//!
//! Time is whatever monotonic tick the caller passes as `now` (nanoseconds in
//! the dataplane, a counter in tests). Nothing here allocates after
//! [`Link::new`]: the replay buffer is one block sized at construction.

use crate::frame::{
    Flags, Frame, FrameError, FrameHeader, FrameWriter, Integrity, CRC_LEN, HEADER_LEN,
};
use crate::frame::{DEFAULT_MTU, ETHERNET_LEN, ETHERTYPE, MAX_MTU};
use core::fmt;
use rings::credits::Cost;
use tlp::{CreditType, FlowClass};

/// How one end of a link behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkConfig {
    /// Link MTU (Ethernet payload bytes), 64..=9000.
    pub mtu: usize,
    /// Frames the replay buffer holds (at least 2).
    pub replay_slots: usize,
    /// Ticks a partly filled frame may wait for more TLPs before it is sent.
    pub flush_deadline: u64,
    /// Ticks without acknowledgement progress before unacknowledged frames
    /// are replayed.
    pub replay_timeout: u64,
    /// Ticks between unprompted acknowledgement and credit updates.
    pub update_interval: u64,
    /// Credits this end's receive buffers hold, per [`CreditType::index`]
    /// (PH, PD, NPH, NPD, CplH, CplD; 0 = infinite). The peer is assumed to
    /// advertise the same, as both ends of a link are configured alike.
    pub credits: [u16; 6],
    /// EtherType of the link's frames.
    pub ethertype: u16,
    /// This end's node number.
    pub local_node: u16,
    /// The peer's node number.
    pub remote_node: u16,
    /// This end's MAC address.
    pub local_mac: [u8; 6],
    /// The peer's MAC address.
    pub remote_mac: [u8; 6],
    /// Ticks without a frame from the peer after which the link is down
    /// for good (0: never). A peer that is alive sends updates every
    /// `update_interval`, traffic or not, so silence this long means it
    /// is gone; what the link held is then discarded, and what comes for
    /// it after is refused ([`SendError::LinkDown`]), so that no sender
    /// waits forever on credits a dead peer will never return.
    pub down_after: u64,
    /// How a frame's integrity is known: its CRC-32C, or the port's FCS.
    /// Both ends must agree.
    pub integrity: Integrity,
}

impl Default for LinkConfig {
    /// 1500-byte MTU, 64 replay slots, 1 µs flush deadline, 200 µs replay
    /// timeout, 20 µs update interval (ticks in nanoseconds), 64 header and
    /// 1024 data credits (16 KiB) per class.
    fn default() -> Self {
        LinkConfig {
            mtu: DEFAULT_MTU,
            replay_slots: 64,
            flush_deadline: 1_000,
            replay_timeout: 200_000,
            update_interval: 20_000,
            credits: [64, 1024, 64, 1024, 64, 1024],
            ethertype: ETHERTYPE,
            local_node: 0,
            remote_node: 1,
            local_mac: [0x02, 0, 0, 0, 0, 0],
            remote_mac: [0x02, 0, 0, 0, 0, 1],
            down_after: 0,
            integrity: Integrity::Crc32c,
        }
    }
}

impl LinkConfig {
    /// The configuration of the other end of the same link: nodes and MAC
    /// addresses swapped, everything else alike.
    pub fn peer(&self) -> LinkConfig {
        LinkConfig {
            local_node: self.remote_node,
            remote_node: self.local_node,
            local_mac: self.remote_mac,
            remote_mac: self.local_mac,
            ..*self
        }
    }
}

/// Why a link could not be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkConfigError {
    /// MTU outside 64..=9000.
    Mtu(usize),
    /// Fewer than 2 replay slots.
    ReplaySlots(usize),
}

impl fmt::Display for LinkConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LinkConfigError::Mtu(m) => write!(f, "mtu: expected 64..={MAX_MTU}, found {m}"),
            LinkConfigError::ReplaySlots(n) => {
                write!(f, "replay_slots: expected at least 2, found {n}")
            }
        }
    }
}

impl std::error::Error for LinkConfigError {}

/// Why [`Link::try_send`] did not take a TLP. Nothing was consumed; the
/// caller keeps the TLP and tries again later (except for `TooLarge` and
/// `Malformed`, which never succeed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendError {
    /// The peer has not allocated enough credits of this type.
    NoCredits(CreditType),
    /// Every replay slot holds an unacknowledged frame.
    ReplayFull,
    /// The TLP cannot fit in one frame at this MTU.
    TooLarge {
        /// The TLP's length.
        length: usize,
        /// The most a frame carries.
        max: usize,
    },
    /// The TLP's header could not be classified.
    Malformed(tlp::Error),
    /// The link is down: its peer fell silent (see
    /// [`LinkConfig::down_after`]).
    LinkDown,
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::NoCredits(t) => write!(f, "no {t:?} credits"),
            SendError::ReplayFull => write!(f, "replay buffer full"),
            SendError::LinkDown => write!(f, "link down: its peer fell silent"),
            SendError::TooLarge { length, max } => {
                write!(f, "TLP of {length} bytes exceeds the {max} a frame carries")
            }
            SendError::Malformed(e) => write!(f, "malformed TLP: {e}"),
        }
    }
}

impl std::error::Error for SendError {}

/// What happened to a received frame that passed its checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Received {
    /// The next frame in order: this many TLPs were delivered.
    Delivered(u16),
    /// A frame without TLPs (acknowledgement and credits only).
    Update,
    /// Already delivered; discarded.
    Duplicate,
    /// A frame after a gap; discarded, a NAK scheduled.
    OutOfOrder,
    /// A well-formed frame of another link (its source or destination node
    /// is not this link's peer or this node): ignored, its ACK, NAK and
    /// credits too.
    Foreign,
}

/// Counters of one link end.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinkStats {
    /// Frames handed to the wire (replays and updates included).
    pub frames_sent: u64,
    /// Of those, frames sent again.
    pub frames_replayed: u64,
    /// Of those, frames without TLPs.
    pub updates_sent: u64,
    /// TLPs accepted by `try_send`.
    pub tlps_sent: u64,
    /// TLPs delivered in order.
    pub tlps_delivered: u64,
    /// Frames received that passed their checks.
    pub frames_received: u64,
    /// Frames that failed their checks (any [`FrameError`]).
    pub frames_malformed: u64,
    /// Of those, CRC mismatches.
    pub frames_bad_crc: u64,
    /// Well-formed frames of another link (another node, another fabric
    /// on the same segment), ignored.
    pub frames_foreign: u64,
    /// Frames discarded as duplicates.
    pub duplicates: u64,
    /// Frames discarded after a gap.
    pub out_of_order: u64,
    /// NAKs sent.
    pub naks_sent: u64,
    /// NAKs received.
    pub naks_received: u64,
    /// Replay timer expiries.
    pub replay_timeouts: u64,
    /// TLPs the link held (sent but unacknowledged, or not yet sent) when
    /// it went down: discarded.
    pub tlps_discarded_down: u64,
    /// Frames from the peer after the link went down: ignored.
    pub frames_while_down: u64,
}

/// Sequence-number order with wrap-around: is `a` before `b`?
fn before(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}

/// One end of a reliable link.
#[derive(Debug)]
pub struct Link {
    config: LinkConfig,
    /// Bytes of TLP (with length prefixes) one frame carries.
    body_capacity: usize,
    /// `replay_slots` bodies of `body_capacity` bytes each.
    bodies: Vec<u8>,
    body_len: Vec<usize>,
    body_count: Vec<u16>,
    /// Slot of the oldest unacknowledged sealed frame.
    head: usize,
    /// Sequence number of the frame in slot `head`.
    oldest_seq: u32,
    /// Sealed frames in the buffer (from `head`).
    sealed: usize,
    /// Whether the slot after the sealed ones is an open frame.
    open: bool,
    open_since: u64,
    /// The next sealed frame never sent yet.
    next_new: u32,
    /// During a replay, the next frame to send again.
    replay_next: Option<u32>,
    /// When acknowledgement progress was last made (or sending started).
    progress_at: u64,

    // Credits this end may consume (the peer's receive buffers).
    credit_limit: [u16; 6],
    credits_consumed: [u16; 6],
    // Credits this end allocates (its own receive buffers).
    credits_allocated: [u16; 6],

    /// Sequence number the receiver expects next.
    expected: u32,
    ack_pending: bool,
    nak_pending: bool,
    nak_scheduled: bool,
    credits_dirty: bool,
    last_sent_at: u64,

    /// When a frame last came from the peer (`None`: not yet checked).
    heard_at: Option<u64>,
    /// When [`Link::check_down`] last ran.
    checked_at: u64,
    down: bool,

    stats: LinkStats,
}

impl Link {
    /// Builds one end of a link; all memory it will use is allocated here.
    pub fn new(config: LinkConfig) -> Result<Link, LinkConfigError> {
        if !(64..=MAX_MTU).contains(&config.mtu) {
            return Err(LinkConfigError::Mtu(config.mtu));
        }
        if config.replay_slots < 2 {
            return Err(LinkConfigError::ReplaySlots(config.replay_slots));
        }
        let body_capacity = ETHERNET_LEN + config.mtu - HEADER_LEN - CRC_LEN;
        Ok(Link {
            config,
            body_capacity,
            bodies: vec![0; body_capacity * config.replay_slots],
            body_len: vec![0; config.replay_slots],
            body_count: vec![0; config.replay_slots],
            head: 0,
            oldest_seq: 0,
            sealed: 0,
            open: false,
            open_since: 0,
            next_new: 0,
            replay_next: None,
            progress_at: 0,
            credit_limit: config.credits,
            credits_consumed: [0; 6],
            credits_allocated: config.credits,
            expected: 0,
            ack_pending: false,
            nak_pending: false,
            nak_scheduled: false,
            credits_dirty: false,
            last_sent_at: 0,
            heard_at: None,
            checked_at: 0,
            down: false,
            stats: LinkStats::default(),
        })
    }

    /// Bytes one end of a link with `config` allocates (its replay buffer
    /// and the per-slot bookkeeping), as [`Link::new`] would.
    pub fn memory(config: &LinkConfig) -> usize {
        let body = ETHERNET_LEN + config.mtu - HEADER_LEN - CRC_LEN;
        config.replay_slots * (body + 2 * std::mem::size_of::<usize>())
    }

    /// The configuration.
    pub fn config(&self) -> &LinkConfig {
        &self.config
    }

    /// The counters.
    pub fn stats(&self) -> &LinkStats {
        &self.stats
    }

    /// The largest TLP a frame carries.
    pub fn max_tlp(&self) -> usize {
        self.body_capacity - 2
    }

    fn slot(&self, i: usize) -> usize {
        (self.head + i) % self.config.replay_slots
    }

    fn credit_ok(&self, t: CreditType, n: u16) -> bool {
        let i = t.index();
        if self.config.credits[i] == 0 || n == 0 {
            return true;
        }
        // §2.6.1.2: (CREDIT_LIMIT - (CREDITS_CONSUMED + cost)) mod 2^16 <= 2^15.
        let left = self.credit_limit[i].wrapping_sub(self.credits_consumed[i].wrapping_add(n));
        left <= 0x8000
    }

    /// Credits this end may still consume of a type (`None`: infinite).
    pub fn credits_available(&self, t: CreditType) -> Option<u16> {
        let i = t.index();
        (self.config.credits[i] != 0)
            .then(|| self.credit_limit[i].wrapping_sub(self.credits_consumed[i]))
    }

    /// Queues one TLP to send. It goes out in a frame when the frame fills,
    /// the flush deadline passes, or [`Link::flush`] is called.
    pub fn try_send(&mut self, tlp: &[u8], now: u64) -> Result<(), SendError> {
        if self.down {
            return Err(SendError::LinkDown);
        }
        if tlp.len() > self.max_tlp() {
            return Err(SendError::TooLarge {
                length: tlp.len(),
                max: self.max_tlp(),
            });
        }
        let class = tlp::classify(tlp).map_err(SendError::Malformed)?;
        let (h, d) = (class.flow.header_credit(), class.flow.data_credit());
        if !self.credit_ok(h, 1) {
            return Err(SendError::NoCredits(h));
        }
        if !self.credit_ok(d, class.data_credits) {
            return Err(SendError::NoCredits(d));
        }
        if self.open {
            let slot = self.slot(self.sealed);
            if self.body_len[slot] + 2 + tlp.len() > self.body_capacity {
                self.seal();
            }
        }
        if !self.open {
            if self.sealed + 1 > self.config.replay_slots {
                return Err(SendError::ReplayFull);
            }
            let slot = self.slot(self.sealed);
            self.body_len[slot] = 0;
            self.body_count[slot] = 0;
            self.open = true;
            self.open_since = now;
        }
        let slot = self.slot(self.sealed);
        let at = slot * self.body_capacity + self.body_len[slot];
        self.bodies[at..at + 2].copy_from_slice(&(tlp.len() as u16).to_be_bytes());
        self.bodies[at + 2..at + 2 + tlp.len()].copy_from_slice(tlp);
        self.body_len[slot] += 2 + tlp.len();
        self.body_count[slot] += 1;
        let (hi, di) = (h.index(), d.index());
        self.credits_consumed[hi] = self.credits_consumed[hi].wrapping_add(1);
        self.credits_consumed[di] = self.credits_consumed[di].wrapping_add(class.data_credits);
        self.stats.tlps_sent += 1;
        Ok(())
    }

    /// Seals the open frame now (it is sent on the next transmit).
    pub fn flush(&mut self) {
        if self.open {
            self.seal();
        }
    }

    fn seal(&mut self) {
        if self.sealed == 0 {
            self.oldest_seq = self.next_new;
        }
        self.sealed += 1;
        self.open = false;
    }

    /// Takes the link down if its peer has been silent longer than
    /// [`LinkConfig::down_after`] (the silence counts from the first call
    /// when nothing has come yet): every TLP it holds is discarded and
    /// counted. True when it went down on this call.
    pub fn check_down(&mut self, now: u64) -> bool {
        if self.down || self.config.down_after == 0 {
            return false;
        }
        // A gap in the checks is this end's own core kept from running: it
        // heard nothing because it did not listen, so the silence counts
        // afresh.
        if now.wrapping_sub(self.checked_at) > self.config.down_after / 4 {
            self.heard_at = Some(now);
        }
        self.checked_at = now;
        let heard = *self.heard_at.get_or_insert(now);
        if now.wrapping_sub(heard) <= self.config.down_after {
            return false;
        }
        let held = self.sealed + usize::from(self.open);
        let discarded: u64 = (0..held)
            .map(|i| u64::from(self.body_count[self.slot(i)]))
            .sum();
        self.stats.tlps_discarded_down += discarded;
        self.sealed = 0;
        self.open = false;
        self.replay_next = None;
        self.down = true;
        true
    }

    /// Whether the link went down ([`Link::check_down`]).
    pub fn is_down(&self) -> bool {
        self.down
    }

    /// Sealed frames not yet acknowledged (sent or not).
    pub fn unacknowledged(&self) -> usize {
        self.sealed
    }

    /// Whether nothing is waiting: no open frame, nothing unacknowledged.
    pub fn is_idle(&self) -> bool {
        !self.open && self.sealed == 0
    }

    fn end_seq(&self) -> u32 {
        self.oldest_seq.wrapping_add(self.sealed as u32)
    }

    /// Whether [`Link::poll_transmit`] may write a frame now. Never false
    /// when it would: a caller whose frame buffers cost something to take
    /// (a pool, an mbuf) asks first, and an idle link costs it nothing.
    #[inline]
    pub fn has_transmit(&self, now: u64) -> bool {
        !self.down
            && ((self.open && now.wrapping_sub(self.open_since) >= self.config.flush_deadline)
                || self.replay_next.is_some()
                || before(self.next_new, self.end_seq())
                || (self.sealed > 0
                    && before(self.oldest_seq, self.next_new)
                    && now.wrapping_sub(self.progress_at) >= self.config.replay_timeout)
                || self.ack_pending
                || self.nak_pending
                || self.credits_dirty
                || now.wrapping_sub(self.last_sent_at) >= self.config.update_interval)
    }

    /// Writes the next frame to put on the wire into `out` (at least
    /// `ETHERNET_LEN + mtu` bytes, or the frame is cut to fit) and returns
    /// its length, or `None` when there is nothing to send now.
    pub fn poll_transmit(&mut self, now: u64, out: &mut [u8]) -> Option<usize> {
        if self.down {
            return None;
        }
        if self.open && now.wrapping_sub(self.open_since) >= self.config.flush_deadline {
            self.seal();
        }
        if self.sealed > 0
            && before(self.oldest_seq, self.next_new)
            && now.wrapping_sub(self.progress_at) >= self.config.replay_timeout
        {
            self.stats.replay_timeouts += 1;
            self.replay_next = Some(self.oldest_seq);
            self.progress_at = now;
        }
        if let Some(seq) = self.replay_next {
            if before(seq, self.next_new) && !before(seq, self.oldest_seq) {
                self.replay_next = Some(seq.wrapping_add(1));
                self.stats.frames_replayed += 1;
                return self.transmit_data(seq, now, out);
            }
            self.replay_next = None;
        }
        if before(self.next_new, self.end_seq()) {
            let seq = self.next_new;
            if self.oldest_seq == seq {
                // Nothing older is waiting: the replay timer starts now.
                self.progress_at = now;
            }
            self.next_new = seq.wrapping_add(1);
            return self.transmit_data(seq, now, out);
        }
        if self.ack_pending
            || self.nak_pending
            || self.credits_dirty
            || now.wrapping_sub(self.last_sent_at) >= self.config.update_interval
        {
            let header = self.header(self.next_new);
            let w = FrameWriter::new(out, &header, self.config.mtu).ok()?;
            self.stats.updates_sent += 1;
            return Some(self.sent(w.finish(), now));
        }
        None
    }

    fn header(&mut self, sequence: u32) -> FrameHeader {
        let mut flags = Flags::ACK | Flags::CREDITS;
        if self.config.integrity == Integrity::Fcs {
            flags |= Flags::FCS;
        }
        if self.nak_pending {
            flags |= Flags::NAK;
            self.stats.naks_sent += 1;
        }
        FrameHeader {
            dst: self.config.remote_mac,
            src: self.config.local_mac,
            ethertype: self.config.ethertype,
            flags: Flags(flags),
            source_node: self.config.local_node,
            destination_node: self.config.remote_node,
            sequence,
            ack: self.expected.wrapping_sub(1),
            credits: self.credits_allocated,
        }
    }

    fn transmit_data(&mut self, seq: u32, now: u64, out: &mut [u8]) -> Option<usize> {
        let slot = self.slot(seq.wrapping_sub(self.oldest_seq) as usize);
        let header = self.header(seq);
        let mut w = FrameWriter::new(out, &header, self.config.mtu).ok()?;
        let at = slot * self.body_capacity;
        let body = &self.bodies[at..at + self.body_len[slot]];
        w.push_encoded(body, self.body_count[slot]).ok()?;
        Some(self.sent(w.finish(), now))
    }

    fn sent(&mut self, len: usize, now: u64) -> usize {
        self.ack_pending = false;
        self.nak_pending = false;
        self.credits_dirty = false;
        self.last_sent_at = now;
        self.stats.frames_sent += 1;
        len
    }

    /// Takes one frame from the wire. TLPs of the next in-order frame go to
    /// `deliver`, in order; the application returns their credits with
    /// [`Link::release`] once it has taken them from its buffers.
    pub fn receive(
        &mut self,
        frame: &[u8],
        now: u64,
        mut deliver: impl FnMut(&[u8]),
    ) -> Result<Received, FrameError> {
        let frame = match Frame::new_checked_as(frame, self.config.ethertype, self.config.integrity)
        {
            Ok(f) => f,
            Err(e) => {
                self.stats.frames_malformed += 1;
                if matches!(e, FrameError::Crc { .. }) {
                    self.stats.frames_bad_crc += 1;
                }
                // A damaged frame may have been a data frame: ask for a replay.
                self.schedule_nak();
                return Err(e);
            }
        };
        if frame.source_node() != self.config.remote_node
            || frame.destination_node() != self.config.local_node
        {
            // Its acknowledgements and credits are another link's: taken
            // here they would free frames the peer never received.
            self.stats.frames_foreign += 1;
            return Ok(Received::Foreign);
        }
        if self.down {
            // A peer back from the dead starts its sequence afresh: its
            // frames cannot be fitted to this link's any more.
            self.stats.frames_while_down += 1;
            return Ok(Received::Update);
        }
        self.stats.frames_received += 1;
        self.heard_at = Some(now);
        let flags = frame.flags();
        if flags.has(Flags::CREDITS) {
            for (i, c) in frame.credits().into_iter().enumerate() {
                // Updates can arrive out of order: only move forward.
                if (c.wrapping_sub(self.credit_limit[i]) as i16) > 0 {
                    self.credit_limit[i] = c;
                }
            }
        }
        if flags.has(Flags::ACK) {
            self.acknowledge(frame.ack(), now);
        }
        if flags.has(Flags::NAK) {
            self.stats.naks_received += 1;
            if self.sealed > 0 && before(self.oldest_seq, self.next_new) {
                self.replay_next = Some(self.oldest_seq);
                self.progress_at = now;
            }
        }
        if frame.tlp_count() == 0 {
            return Ok(Received::Update);
        }
        let seq = frame.sequence();
        if seq == self.expected {
            let mut n = 0;
            for t in frame.tlps() {
                deliver(t);
                n += 1;
            }
            self.stats.tlps_delivered += n as u64;
            self.expected = self.expected.wrapping_add(1);
            self.ack_pending = true;
            self.nak_scheduled = false;
            Ok(Received::Delivered(n))
        } else if before(seq, self.expected) {
            self.stats.duplicates += 1;
            self.ack_pending = true;
            Ok(Received::Duplicate)
        } else {
            self.stats.out_of_order += 1;
            self.schedule_nak();
            Ok(Received::OutOfOrder)
        }
    }

    fn schedule_nak(&mut self) {
        if !self.nak_scheduled {
            self.nak_scheduled = true;
            self.nak_pending = true;
        }
    }

    /// Frees every frame up to and including `ack`.
    fn acknowledge(&mut self, ack: u32, now: u64) {
        // Only frames already sent can be acknowledged.
        let freed = ack.wrapping_sub(self.oldest_seq).wrapping_add(1);
        let sent = self.next_new.wrapping_sub(self.oldest_seq);
        if self.sealed == 0 || freed == 0 || freed > sent {
            return;
        }
        let freed = freed as usize;
        self.head = (self.head + freed) % self.config.replay_slots;
        self.sealed -= freed;
        self.oldest_seq = self.oldest_seq.wrapping_add(freed as u32);
        self.progress_at = now;
        if let Some(r) = self.replay_next {
            if before(r, self.oldest_seq) {
                self.replay_next = Some(self.oldest_seq);
            }
        }
    }

    /// Returns the credits of a delivered TLP that left the receive buffer.
    pub fn release(&mut self, cost: Cost) {
        let (h, d) = (
            cost.flow.header_credit().index(),
            cost.flow.data_credit().index(),
        );
        self.credits_allocated[h] = self.credits_allocated[h].wrapping_add(1);
        self.credits_allocated[d] = self.credits_allocated[d].wrapping_add(cost.data);
        self.credits_dirty = true;
    }

    /// This end's cumulative CREDITS_ALLOCATED (mod 2^16) for a flow class,
    /// headers and data: what it has told (or will tell) the peer.
    pub fn credits_allocated(&self, flow: FlowClass) -> (u16, u16) {
        (
            self.credits_allocated[flow.header_credit().index()],
            self.credits_allocated[flow.data_credit().index()],
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::faults::{FaultConfig, Wire};
    use tlp::build::{memory_write, MemAccess};
    use tlp::Bdf;

    /// A posted write whose payload carries `n`.
    fn write_tlp(n: u32, buf: &mut [u8]) -> usize {
        let payload = n.to_be_bytes().repeat(4);
        let access = MemAccess::dwords(0x1000 + n as u64 * 16, 4);
        memory_write(buf, Bdf(0x0100), 0, access, &payload).unwrap()
    }

    fn number(tlp: &[u8]) -> u32 {
        u32::from_be_bytes(tlp[12..16].try_into().unwrap())
    }

    fn pair(config: LinkConfig) -> (Link, Link) {
        (
            Link::new(config).unwrap(),
            Link::new(config.peer()).unwrap(),
        )
    }

    /// Moves frames both ways until `a` has sent `total` TLPs and `b`
    /// delivered them; returns what `b` delivered.
    fn run(
        config: LinkConfig,
        faults: FaultConfig,
        total: u32,
        max_ticks: u64,
    ) -> (Link, Link, Vec<u32>) {
        let (mut a, mut b) = pair(config);
        let mut ab = Wire::new(faults);
        let mut ba = Wire::new(FaultConfig {
            seed: faults.seed ^ 1,
            ..faults
        });
        let mut got = Vec::new();
        let mut buf = [0u8; 128];
        let mut frame = vec![0u8; ETHERNET_LEN + config.mtu];
        let mut next = 0;
        for now in 0..max_ticks {
            while next < total {
                let n = write_tlp(next, &mut buf);
                if a.try_send(&buf[..n], now).is_err() {
                    break;
                }
                next += 1;
            }
            // `has_transmit` never says no when there is a frame to send.
            let predicted = a.has_transmit(now);
            let mut sent = 0;
            while let Some(n) = a.poll_transmit(now, &mut frame) {
                sent += 1;
                ab.send(&frame[..n], now);
            }
            ab.flush_held();
            while let Some(n) = ab.recv(now, &mut frame) {
                let mut costs = Vec::new();
                let _ = b.receive(&frame[..n], now, |t| {
                    got.push(number(t));
                    costs.push(Cost::of(&tlp::classify(t).unwrap()));
                });
                // The application takes every delivered TLP at once.
                for c in costs {
                    b.release(c);
                }
            }
            assert!(predicted || sent == 0, "a frame at {now} unannounced");
            let predicted = b.has_transmit(now);
            let mut sent = 0;
            while let Some(n) = b.poll_transmit(now, &mut frame) {
                sent += 1;
                ba.send(&frame[..n], now);
            }
            assert!(predicted || sent == 0, "a frame at {now} unannounced");
            ba.flush_held();
            while let Some(n) = ba.recv(now, &mut frame) {
                let _ = a.receive(&frame[..n], now, |_| {});
            }
            if got.len() == total as usize && a.is_idle() {
                break;
            }
        }
        (a, b, got)
    }

    #[test]
    fn clean_link_packs_frames_and_delivers_in_order() {
        let config = LinkConfig {
            credits: [0; 6],
            ..LinkConfig::default()
        };
        let (a, b, got) = run(config, FaultConfig::NONE, 1000, 100_000);
        assert_eq!(got, (0..1000).collect::<Vec<_>>());
        // 28-byte TLPs, each with its 2-byte length, fill 1500-byte frames.
        let per_frame = (a.max_tlp() + 2) / 30;
        assert_eq!(per_frame, 48);
        assert_eq!(
            a.stats().frames_sent - a.stats().updates_sent,
            1000u64.div_ceil(48)
        );
        assert_eq!(a.stats().frames_replayed, 0);
        assert_eq!(b.stats().duplicates + b.stats().out_of_order, 0);
    }

    #[test]
    fn a_lone_tlp_waits_for_the_flush_deadline_only() {
        let (mut a, _) = pair(LinkConfig::default());
        let mut buf = [0u8; 64];
        let mut frame = [0u8; 1514];
        let n = write_tlp(7, &mut buf);
        a.try_send(&buf[..n], 100).unwrap();
        // Before the deadline only updates go out, never the data frame.
        while let Some(len) = a.poll_transmit(100 + 999, &mut frame) {
            assert_eq!(
                Frame::new_checked(&frame[..len], ETHERTYPE)
                    .unwrap()
                    .tlp_count(),
                0
            );
        }
        let len = a.poll_transmit(100 + 1000, &mut frame).unwrap();
        let f = Frame::new_checked(&frame[..len], ETHERTYPE).unwrap();
        assert_eq!((f.tlp_count(), f.sequence()), (1, 0));
        assert_eq!(number(f.tlps().next().unwrap()), 7);
    }

    #[test]
    fn a_link_whose_peer_falls_silent_goes_down_and_drops_what_it_held() {
        let config = LinkConfig {
            down_after: 1_000,
            ..LinkConfig::default()
        };
        let (mut a, mut b) = pair(config);
        let mut buf = [0u8; 128];
        let mut frame = vec![0u8; ETHERNET_LEN + config.mtu];
        // The peer answers every 100 ticks until tick 500, then dies.
        let mut went_down = None;
        for now in (0..3_000).step_by(100) {
            let n = write_tlp(now as u32, &mut buf);
            let sent = a.try_send(&buf[..n], now);
            a.flush();
            if went_down.is_some() {
                assert_eq!(sent, Err(SendError::LinkDown));
                assert!(a.poll_transmit(now, &mut frame).is_none());
            }
            if now <= 500 {
                while let Some(n) = a.poll_transmit(now, &mut frame) {
                    let _ = b.receive(&frame[..n], now, |_| {});
                }
                while let Some(n) = b.poll_transmit(now, &mut frame) {
                    let _ = a.receive(&frame[..n], now, |_| {});
                }
            }
            if a.check_down(now) {
                went_down = Some(now);
            }
        }
        // Silent from tick 500: down once more than 1,000 ticks passed.
        assert_eq!(went_down, Some(1_600));
        assert!(a.is_down());
        // Everything sent after the peer died was held, then dropped.
        assert_eq!(a.stats().tlps_discarded_down, 11);
        // A peer back from the dead is not taken for the old one.
        let n = b.poll_transmit(10_000, &mut frame).unwrap_or(0);
        if n > 0 {
            let _ = a.receive(&frame[..n], 10_000, |_| panic!("delivered"));
            assert_eq!(a.stats().frames_while_down, 1);
        }
    }

    #[test]
    fn damage_is_caught_by_the_crc_and_left_to_the_port_with_fcs() {
        for integrity in [Integrity::Crc32c, Integrity::Fcs] {
            let config = LinkConfig {
                integrity,
                ..LinkConfig::default()
            };
            let (mut a, mut b) = pair(config);
            let mut buf = [0u8; 128];
            let n = write_tlp(7, &mut buf);
            a.try_send(&buf[..n], 0).unwrap();
            a.flush();
            let mut frame = vec![0u8; ETHERNET_LEN + config.mtu];
            let len = a.poll_transmit(0, &mut frame).unwrap();
            let f = Frame::new_checked_as(&frame[..len], ETHERTYPE, integrity).unwrap();
            assert_eq!(f.flags().has(Flags::FCS), integrity == Integrity::Fcs);
            // One payload byte flipped on the wire, which a NIC's FCS check
            // would have caught and a veth pair does not.
            frame[HEADER_LEN + 2 + 16] ^= 0x40;
            let mut got = Vec::new();
            let r = b.receive(&frame[..len], 0, |t| got.push(t.to_vec()));
            match integrity {
                Integrity::Crc32c => {
                    assert!(matches!(r, Err(FrameError::Crc { .. })), "{r:?}");
                    assert!(got.is_empty());
                    assert_eq!(b.stats().frames_bad_crc, 1);
                }
                Integrity::Fcs => {
                    assert_eq!(r, Ok(Received::Delivered(1)));
                    assert_ne!(
                        got[0],
                        &buf[..n],
                        "delivered damaged: the port's promise broken"
                    );
                }
            }
        }
        // Ends that disagree: every frame refused, and said why.
        let (mut a, mut b) = (
            Link::new(LinkConfig {
                integrity: Integrity::Fcs,
                ..LinkConfig::default()
            })
            .unwrap(),
            Link::new(LinkConfig::default().peer()).unwrap(),
        );
        let mut frame = vec![0u8; 1514];
        let mut buf = [0u8; 128];
        let n = write_tlp(1, &mut buf);
        a.try_send(&buf[..n], 0).unwrap();
        a.flush();
        let len = a.poll_transmit(0, &mut frame).unwrap();
        let r = b.receive(&frame[..len], 0, |_| panic!("delivered"));
        assert_eq!(
            r,
            Err(FrameError::Integrity {
                expected: Integrity::Crc32c,
                found: Integrity::Fcs
            })
        );
    }

    #[test]
    fn a_link_whose_own_core_stalled_does_not_take_that_for_silence() {
        let mut a = Link::new(LinkConfig {
            down_after: 1_000,
            ..LinkConfig::default()
        })
        .unwrap();
        assert!(!a.check_down(0));
        // Nothing ran here for 5,000 ticks: nothing could be heard. The
        // silence counts from then, checked every 200 ticks.
        for now in (5_000..=6_000).step_by(200) {
            assert!(!a.check_down(now), "{now}");
        }
        assert!(a.check_down(6_200));
        // Never, with no `down_after`.
        let mut b = Link::new(LinkConfig::default()).unwrap();
        assert!(!b.check_down(0) && !b.check_down(u64::MAX / 2));
    }

    #[test]
    fn credits_gate_the_sender_until_released() {
        // Two posted headers; other types infinite.
        let config = LinkConfig {
            credits: [2, 0, 0, 0, 0, 0],
            ..LinkConfig::default()
        };
        let (mut a, mut b) = pair(config);
        let mut buf = [0u8; 64];
        let mut frame = [0u8; 1514];
        for i in 0..2 {
            let n = write_tlp(i, &mut buf);
            a.try_send(&buf[..n], 0).unwrap();
        }
        let n = write_tlp(2, &mut buf);
        assert_eq!(
            a.try_send(&buf[..n], 0),
            Err(SendError::NoCredits(CreditType::PH))
        );
        assert_eq!(a.credits_available(CreditType::PH), Some(0));
        assert_eq!(a.credits_available(CreditType::PD), None);
        a.flush();
        let len = a.poll_transmit(0, &mut frame).unwrap();
        let mut delivered = Vec::new();
        let r = b.receive(&frame[..len], 0, |t| {
            delivered.push(Cost::of(&tlp::classify(t).unwrap()))
        });
        assert_eq!(r, Ok(Received::Delivered(2)));
        // Delivered but still in the receiver's buffer: no credit yet.
        let len = b.poll_transmit(0, &mut frame).unwrap();
        a.receive(&frame[..len], 0, |_| {}).unwrap();
        assert_eq!(a.credits_available(CreditType::PH), Some(0));
        b.release(delivered[0]);
        let len = b.poll_transmit(1, &mut frame).unwrap();
        a.receive(&frame[..len], 1, |_| {}).unwrap();
        assert_eq!(a.credits_available(CreditType::PH), Some(1));
        a.try_send(&buf[..n], 1).unwrap();
        assert_eq!(a.unacknowledged(), 0, "the first frame was acknowledged");
    }

    #[test]
    fn a_gap_is_naked_once_and_replayed() {
        let (mut a, mut b) = pair(LinkConfig::default());
        let mut buf = [0u8; 64];
        let mut frames = Vec::new();
        for i in 0..3 {
            let n = write_tlp(i, &mut buf);
            a.try_send(&buf[..n], 0).unwrap();
            a.flush();
            let mut f = vec![0u8; 1514];
            let len = a.poll_transmit(0, &mut f).unwrap();
            f.truncate(len);
            frames.push(f);
        }
        let mut got = Vec::new();
        // Frame 0 is lost; 1 and 2 arrive.
        assert_eq!(
            b.receive(&frames[1], 0, |t| got.push(number(t))),
            Ok(Received::OutOfOrder)
        );
        assert_eq!(
            b.receive(&frames[2], 0, |t| got.push(number(t))),
            Ok(Received::OutOfOrder)
        );
        let mut f = [0u8; 1514];
        let len = b.poll_transmit(0, &mut f).unwrap();
        let nak = Frame::new_checked(&f[..len], ETHERTYPE).unwrap();
        assert!(nak.flags().has(Flags::NAK));
        assert_eq!(nak.ack(), u32::MAX, "nothing received in order yet");
        assert_eq!(b.stats().naks_sent, 1);
        assert_eq!(b.poll_transmit(1, &mut f), None, "one NAK per gap");
        a.receive(&f[..len], 0, |_| {}).unwrap();
        // The sender goes back to frame 0 and replays all three.
        for seq in 0..3 {
            let len = a.poll_transmit(1, &mut f).unwrap();
            let fr = Frame::new_checked(&f[..len], ETHERTYPE).unwrap();
            assert_eq!(fr.sequence(), seq);
            b.receive(&f[..len], 1, |t| got.push(number(t))).unwrap();
        }
        assert_eq!(got, [0, 1, 2]);
        assert_eq!(a.stats().frames_replayed, 3);
        // A duplicate of frame 1 is discarded.
        assert_eq!(
            b.receive(&frames[1], 2, |t| got.push(number(t))),
            Ok(Received::Duplicate)
        );
        assert_eq!(got, [0, 1, 2]);
    }

    #[test]
    fn the_replay_timer_recovers_a_lost_tail() {
        let config = LinkConfig::default();
        let (mut a, _) = pair(config);
        let mut buf = [0u8; 64];
        let mut f = [0u8; 1514];
        let n = write_tlp(1, &mut buf);
        a.try_send(&buf[..n], 0).unwrap();
        a.flush();
        assert!(a.poll_transmit(0, &mut f).is_some());
        // The frame and every NAK are lost; nothing comes back.
        let t = config.replay_timeout;
        while let Some(len) = a.poll_transmit(t - 1, &mut f) {
            assert_eq!(
                Frame::new_checked(&f[..len], ETHERTYPE)
                    .unwrap()
                    .tlp_count(),
                0
            );
        }
        let len = a.poll_transmit(t, &mut f).unwrap();
        let fr = Frame::new_checked(&f[..len], ETHERTYPE).unwrap();
        assert_eq!((fr.sequence(), fr.tlp_count()), (0, 1));
        assert_eq!(a.stats().replay_timeouts, 1);
    }

    #[test]
    fn a_frame_of_another_link_is_ignored_with_its_acknowledgement() {
        let config = LinkConfig {
            local_node: 1,
            remote_node: 2,
            ..LinkConfig::default()
        };
        let (mut a, mut b) = pair(config);
        let mut buf = [0u8; 64];
        let mut f = [0u8; 1514];
        let n = write_tlp(1, &mut buf);
        a.try_send(&buf[..n], 0).unwrap();
        a.flush();
        let len = a.poll_transmit(0, &mut f).unwrap();
        // A third node on the segment acknowledges everything to node 1.
        let mut stranger = Link::new(LinkConfig {
            local_node: 3,
            remote_node: 1,
            ..config
        })
        .unwrap();
        let mut g = [0u8; 1514];
        let mut fake = [0u8; 64];
        let m = write_tlp(9, &mut fake);
        stranger.try_send(&fake[..m], 0).unwrap();
        stranger.flush();
        let k = stranger.poll_transmit(0, &mut g).unwrap();
        assert_eq!(
            a.receive(&g[..k], 1, |_| panic!("delivered")),
            Ok(Received::Foreign)
        );
        assert_eq!((a.unacknowledged(), a.stats().frames_foreign), (1, 1));
        // The peer's own acknowledgement frees the frame.
        assert!(matches!(
            b.receive(&f[..len], 2, |_| {}),
            Ok(Received::Delivered(1))
        ));
        let back = b.poll_transmit(3, &mut g).unwrap();
        assert_eq!(a.receive(&g[..back], 4, |_| {}), Ok(Received::Update));
        assert_eq!(a.unacknowledged(), 0);
    }

    #[test]
    fn the_replay_buffer_is_bounded() {
        let config = LinkConfig {
            replay_slots: 2,
            credits: [0; 6],
            ..LinkConfig::default()
        };
        let (mut a, _) = pair(config);
        let mut buf = [0u8; 64];
        let n = write_tlp(0, &mut buf);
        for _ in 0..2 {
            a.try_send(&buf[..n], 0).unwrap();
            a.flush();
        }
        assert_eq!(a.try_send(&buf[..n], 0), Err(SendError::ReplayFull));
        assert_eq!(a.unacknowledged(), 2);
    }

    #[test]
    fn malformed_frames_are_counted_and_naked() {
        let (mut a, mut b) = pair(LinkConfig::default());
        let mut buf = [0u8; 64];
        let mut f = [0u8; 1514];
        let n = write_tlp(0, &mut buf);
        a.try_send(&buf[..n], 0).unwrap();
        a.flush();
        let len = a.poll_transmit(0, &mut f).unwrap();
        let mut bad = f[..len].to_vec();
        bad[50] ^= 0x10;
        assert!(matches!(
            b.receive(&bad, 0, |_| panic!()),
            Err(FrameError::Crc { .. })
        ));
        assert!(b.receive(&f[..20], 0, |_| panic!()).is_err());
        let mut version = f[..len].to_vec();
        version[14] = 9;
        assert_eq!(
            b.receive(&version, 0, |_| panic!()),
            Err(FrameError::Version(9))
        );
        assert_eq!(
            (b.stats().frames_malformed, b.stats().frames_bad_crc),
            (3, 1)
        );
        let len = b.poll_transmit(0, &mut f).unwrap();
        assert!(Frame::new_checked(&f[..len], ETHERTYPE)
            .unwrap()
            .flags()
            .has(Flags::NAK));
    }

    #[test]
    fn lossy_link_delivers_exactly_once_in_order() {
        let faults = FaultConfig {
            drop: 0.01,
            duplicate: 0.01,
            reorder: 0.01,
            corrupt: 0.01,
            delay: 0.01,
            delay_ticks: 3,
            seed: 42,
        };
        let config = LinkConfig {
            replay_slots: 8,
            flush_deadline: 1,
            replay_timeout: 40,
            update_interval: 4,
            ..LinkConfig::default()
        };
        let (a, b, got) = run(config, faults, 20_000, 2_000_000);
        assert_eq!(got, (0..20_000).collect::<Vec<_>>());
        assert!(a.stats().frames_replayed > 0);
        assert!(b.stats().frames_bad_crc > 0 && b.stats().duplicates > 0);
    }
}
