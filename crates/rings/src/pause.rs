//! The pause point: where the fabric holds a moving binding's traffic.
//!
//! One pause point serves one binding (an endpoint function bound to a host
//! domain) on one path, both directions: `Down` (host to endpoint) and `Up`
//! (endpoint to host). Its states:
//!
//! - **Open**: everything passes. Non-posted requests that pass are tracked
//!   (Requester ID + Tag) until their final completion passes back.
//! - **Draining** (origin and destination hosts have *different* IDs): new
//!   non-posted requests are held in arrival order, so no new completion under
//!   the old IDs can arise; posted requests and completions keep flowing, so
//!   requests already in flight complete. When the last tracked request has
//!   completed, or the drain budget runs out, the point closes.
//! - **Closed**: everything is held. Entered at once, without draining, when
//!   the hosts share a *common* ID.
//! - **Releasing**: held TLPs leave in order; TLPs that arrive meanwhile queue
//!   behind them. Then Open again.
//!
//! An abort from any state releases everything held, in order, and reopens;
//! routing back to the original destination is the caller's (it never changed
//! it, or restores it). Nothing is ever dropped: when a hold queue is full the
//! TLP is handed back ([`Offer::Full`]) and its credits stay consumed, so the
//! sender stops on ordinary flow control. `docs/pause-point.md` gives the
//! ordering argument cell by cell.
//!
//! Time: every state change and every held TLP is stamped with
//! [`std::time::Instant`] (monotonic, and portable across the VMs and bare
//! metal the fabric runs on, where a TSC may not be invariant). The caller
//! passes `now`, so a whole burst shares one clock read and tests can drive
//! time.

use crate::credits::Cost;
use std::collections::VecDeque;
use std::time::{Duration, Instant};
use tlp::{Bdf, FlowClass, Kind};

/// What the pause point needs to know about a TLP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TlpInfo {
    /// Flow-control class.
    pub flow: FlowClass,
    /// Requester ID (of a completion: the requester it returns to).
    pub requester: Bdf,
    /// Tag.
    pub tag: u16,
    /// A completion that finishes its request: any completion without data,
    /// or the completion with data whose Byte Count is all that remained.
    pub final_completion: bool,
    /// Credits it consumed.
    pub cost: Cost,
}

impl TlpInfo {
    /// Reads the info from TLP bytes, after the switch profile's checks.
    pub fn of(bytes: &[u8]) -> Result<TlpInfo, tlp::Error> {
        let class = tlp::inspect(bytes, &tlp::Validator::new(tlp::Profile::Switch))?;
        let view = tlp::Tlp::new_unchecked(bytes);
        let final_completion = match class.kind {
            Kind::Cpl | Kind::CplLk => true,
            Kind::CplD | Kind::CplDLk => {
                let returned = view.length_dw() as usize * 4;
                view.byte_count() as usize + (view.lower_address() & 0x3) as usize <= returned
            }
            _ => false,
        };
        Ok(TlpInfo {
            flow: class.flow,
            requester: view.requester_id(),
            tag: view.tag(),
            final_completion,
            cost: Cost::of(&class),
        })
    }
}

/// Anything a pause point can hold: it knows its own [`TlpInfo`].
pub trait Pausable {
    /// The TLP's info.
    fn info(&self) -> TlpInfo;
}

/// The two directions of a binding's path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Host to endpoint.
    Down,
    /// Endpoint to host.
    Up,
}

impl Direction {
    fn index(self) -> usize {
        match self {
            Direction::Down => 0,
            Direction::Up => 1,
        }
    }
}

/// Whether origin and destination hosts share an ID (claim 14) or not (claim 13).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IdMode {
    /// Different IDs: drain completions first, then close.
    Different,
    /// A common ID: close at once.
    Common,
}

/// The pause point's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// Traffic passes.
    Open,
    /// Non-posted requests held; completions draining.
    Draining,
    /// Everything held.
    Closed,
    /// Held traffic leaving in order.
    Releasing,
}

/// What happened to an offered TLP.
#[derive(Debug, PartialEq, Eq)]
pub enum Offer<T> {
    /// Pass it on now (its credits can be returned).
    Forward(T),
    /// Held (its credits stay consumed until it is released).
    Held,
    /// The hold queue is full: the caller keeps the TLP, returns no credit,
    /// and offers it again later.
    Full(T),
}

/// A TLP leaving the hold.
#[derive(Debug, PartialEq, Eq)]
pub struct Released<T> {
    /// Its direction.
    pub dir: Direction,
    /// The TLP.
    pub item: T,
    /// How long it was held: its blackout.
    pub held_for: Duration,
}

/// A state change, with its time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event {
    /// When.
    pub at: Instant,
    /// What.
    pub kind: EventKind,
}

/// The state changes a pause point records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// Draining began (different IDs).
    Draining {
        /// Non-posted requests in flight.
        outstanding: usize,
    },
    /// Closed.
    Closed {
        /// Requests still in flight: zero when the drain completed, else the
        /// drain budget expired (or the mode was common-ID).
        outstanding: usize,
        /// Whether the drain budget expired.
        budget_expired: bool,
    },
    /// Release began.
    Releasing,
    /// An abort began releasing everything held.
    Aborted {
        /// The state it aborted.
        from: State,
    },
    /// Open again; `blackout` from closing (or draining, if it never closed)
    /// to the last held TLP's release.
    Opened {
        /// The migration blackout.
        blackout: Duration,
    },
}

/// Why a control request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateError {
    /// The request.
    pub request: &'static str,
    /// The state it found.
    pub state: State,
}

impl std::fmt::Display for StateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} is not possible while the pause point is {:?}",
            self.request, self.state
        )
    }
}

impl std::error::Error for StateError {}

/// Sizes and limits of a pause point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PauseConfig {
    /// TLPs each direction can hold. Size it to at least the header credits
    /// advertised on the path, so flow control stops senders before it fills.
    pub hold_capacity: usize,
    /// Non-posted requests tracked in flight; beyond this, requests are counted
    /// as untracked and the drain relies on its budget.
    pub track_capacity: usize,
    /// How long Draining may last before the point closes anyway.
    pub drain_budget: Duration,
}

impl Default for PauseConfig {
    fn default() -> Self {
        PauseConfig {
            hold_capacity: 1024,
            track_capacity: 4096,
            drain_budget: Duration::from_millis(1),
        }
    }
}

/// Counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PauseStats {
    /// TLPs passed without being held.
    pub forwarded: u64,
    /// TLPs held.
    pub held: u64,
    /// Held TLPs released.
    pub released: u64,
    /// Offers refused because a hold queue was full.
    pub full: u64,
    /// Non-posted requests that passed untracked (tracking table full).
    pub untracked: u64,
    /// The most TLPs held at once (both directions).
    pub max_held: usize,
}

#[derive(Debug)]
struct Held<T> {
    seq: u64,
    at: Instant,
    info: TlpInfo,
    item: T,
}

/// One direction's hold: a FIFO per flow class, tagged with arrival order.
#[derive(Debug)]
struct Lane<T> {
    queues: [VecDeque<Held<T>>; 3],
    len: usize,
}

fn class_index(flow: FlowClass) -> usize {
    match flow {
        FlowClass::Posted => 0,
        FlowClass::NonPosted => 1,
        FlowClass::Completion => 2,
    }
}

impl<T> Lane<T> {
    fn new(capacity: usize) -> Lane<T> {
        Lane {
            queues: [
                VecDeque::with_capacity(capacity),
                VecDeque::with_capacity(capacity),
                VecDeque::with_capacity(capacity),
            ],
            len: 0,
        }
    }

    /// The class queue whose head may leave next: the earliest arrival among
    /// the heads that may pass every earlier held TLP, and that `can_send`
    /// accepts. Class rules only (relaxed and ID-based ordering are not used
    /// to reorder), which is always allowed:
    /// - a posted request may pass held non-posted requests and completions
    ///   (it must be able to, or the fabric can deadlock; §2.4.1 A3, A4, A5);
    /// - a non-posted request or completion must not pass an earlier posted
    ///   request (B2a, C2a, D2a);
    /// - non-posted requests and completions may pass each other (B5, C5, D3, D4).
    fn next(&self, can_send: &mut impl FnMut(&TlpInfo) -> bool) -> Option<usize> {
        let seq = |q: usize| self.queues[q].front().map(|h| h.seq);
        let posted = seq(0);
        let mut order: [(u64, usize); 3] = [(u64::MAX, 0), (u64::MAX, 1), (u64::MAX, 2)];
        for (q, slot) in order.iter_mut().enumerate() {
            if let Some(s) = seq(q) {
                let blocked_by_posted = q != 0 && posted.is_some_and(|p| p < s);
                if !blocked_by_posted {
                    *slot = (s, q);
                }
            }
        }
        order.sort_unstable();
        order
            .iter()
            .filter(|(s, _)| *s != u64::MAX)
            .map(|&(_, q)| q)
            .find(|&q| self.queues[q].front().is_some_and(|h| can_send(&h.info)))
    }
}

/// Non-posted requests in flight, keyed by Requester ID and Tag: an
/// open-addressing table with linear probing and backward-shift deletion,
/// sized once at construction. Keys are `requester << 16 | tag`; a tag is at
/// most 10 bits, so `EMPTY` is never a key.
#[derive(Debug)]
struct Outstanding {
    slots: Box<[u32]>,
    mask: usize,
    len: usize,
    capacity: usize,
}

const EMPTY: u32 = u32::MAX;

impl Outstanding {
    fn new(capacity: usize) -> Outstanding {
        // At most half full, so probes stay short.
        let size = (capacity.max(1) * 2).next_power_of_two();
        Outstanding {
            slots: vec![EMPTY; size].into_boxed_slice(),
            mask: size - 1,
            len: 0,
            capacity,
        }
    }

    #[inline(always)]
    fn key(info: &TlpInfo) -> u32 {
        (info.requester.0 as u32) << 16 | (info.tag as u32 & 0x3ff)
    }

    /// Home slot: a multiplicative hash (the keys are not attacker-chosen
    /// inside the fabric, and this is on every non-posted request's path).
    #[inline(always)]
    fn home(&self, key: u32) -> usize {
        (key.wrapping_mul(0x9e37_79b1) >> 7) as usize & self.mask
    }

    /// Tracks a request; `false` if the table is full (it never grows, so the
    /// hot path never allocates).
    #[inline]
    fn insert(&mut self, info: &TlpInfo) -> bool {
        let key = Self::key(info);
        let mut i = self.home(key);
        loop {
            match self.slots[i] {
                EMPTY => break,
                k if k == key => return true,
                _ => i = (i + 1) & self.mask,
            }
        }
        if self.len >= self.capacity {
            return false;
        }
        self.slots[i] = key;
        self.len += 1;
        true
    }

    #[inline]
    fn complete(&mut self, info: &TlpInfo) {
        let key = Self::key(info);
        let mut i = self.home(key);
        loop {
            match self.slots[i] {
                EMPTY => return,
                k if k == key => break,
                _ => i = (i + 1) & self.mask,
            }
        }
        // Backward-shift deletion: move later entries of the probe run into
        // the hole unless their home lies cyclically in (hole, j].
        let mut hole = i;
        let mut j = i;
        loop {
            j = (j + 1) & self.mask;
            let k = self.slots[j];
            if k == EMPTY {
                break;
            }
            let home = self.home(k);
            let stays = if hole <= j {
                hole < home && home <= j
            } else {
                hole < home || home <= j
            };
            if !stays {
                self.slots[hole] = k;
                hole = j;
            }
        }
        self.slots[hole] = EMPTY;
        self.len -= 1;
    }

    fn len(&self) -> usize {
        self.len
    }
}

const EVENT_LOG: usize = 64;

/// A pause point for one binding. Owned by the one core that forwards the
/// binding's traffic: no locks, no allocation after construction.
#[derive(Debug)]
pub struct PausePoint<T> {
    config: PauseConfig,
    state: State,
    lanes: [Lane<T>; 2],
    outstanding: Outstanding,
    seq: u64,
    /// When draining began, if it did.
    paused_at: Option<Instant>,
    /// When the point closed.
    closed_at: Option<Instant>,
    events: VecDeque<Event>,
    stats: PauseStats,
}

impl<T: Pausable> PausePoint<T> {
    /// An open pause point; all its memory is allocated here.
    pub fn new(config: PauseConfig) -> PausePoint<T> {
        PausePoint {
            config,
            state: State::Open,
            lanes: [
                Lane::new(config.hold_capacity),
                Lane::new(config.hold_capacity),
            ],
            outstanding: Outstanding::new(config.track_capacity),
            seq: 0,
            paused_at: None,
            closed_at: None,
            events: VecDeque::with_capacity(EVENT_LOG),
            stats: PauseStats::default(),
        }
    }

    /// How it was configured.
    pub fn config(&self) -> PauseConfig {
        self.config
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// Counters.
    pub fn stats(&self) -> PauseStats {
        self.stats
    }

    /// Non-posted requests in flight (tracked).
    pub fn outstanding(&self) -> usize {
        self.outstanding.len()
    }

    /// TLPs held in `dir`.
    pub fn held(&self, dir: Direction) -> usize {
        self.lanes[dir.index()].len
    }

    /// The most recent state changes, oldest first (up to 64).
    pub fn events(&self) -> impl Iterator<Item = &Event> {
        self.events.iter()
    }

    /// When the point last closed, while it is closed or releasing.
    pub fn closed_at(&self) -> Option<Instant> {
        self.closed_at
    }

    fn record(&mut self, at: Instant, kind: EventKind) {
        if self.events.len() == EVENT_LOG {
            self.events.pop_front();
        }
        self.events.push_back(Event { at, kind });
    }

    /// Bookkeeping for a TLP that leaves (forwarded or released).
    #[inline(always)]
    fn leaves(&mut self, info: &TlpInfo, now: Instant) {
        match info.flow {
            FlowClass::NonPosted if !self.outstanding.insert(info) => self.stats.untracked += 1,
            FlowClass::Completion if info.final_completion => {
                self.outstanding.complete(info);
                if self.state == State::Draining && self.outstanding.len() == 0 {
                    self.close(now, false);
                }
            }
            _ => {}
        }
    }

    #[cold]
    #[inline(never)]
    fn close(&mut self, now: Instant, budget_expired: bool) {
        self.state = State::Closed;
        self.closed_at = Some(now);
        let outstanding = self.outstanding.len();
        self.record(
            now,
            EventKind::Closed {
                outstanding,
                budget_expired,
            },
        );
    }

    #[inline(never)]
    fn hold(&mut self, dir: Direction, info: TlpInfo, item: T, now: Instant) -> Offer<T> {
        let lane = &mut self.lanes[dir.index()];
        if lane.len >= self.config.hold_capacity {
            self.stats.full += 1;
            return Offer::Full(item);
        }
        self.seq += 1;
        lane.queues[class_index(info.flow)].push_back(Held {
            seq: self.seq,
            at: now,
            info,
            item,
        });
        lane.len += 1;
        self.stats.held += 1;
        let total = self.lanes[0].len + self.lanes[1].len;
        self.stats.max_held = self.stats.max_held.max(total);
        Offer::Held
    }

    /// Offers one TLP arriving in `dir` at `now`.
    #[inline(always)]
    pub fn offer(&mut self, dir: Direction, item: T, now: Instant) -> Offer<T> {
        let info = item.info();
        if self.passes(dir, info.flow) {
            self.stats.forwarded += 1;
            self.leaves(&info, now);
            Offer::Forward(item)
        } else {
            self.hold(dir, info, item, now)
        }
    }

    /// Whether a TLP of class `flow` arriving in `dir` now goes on
    /// rather than being held.
    #[inline(always)]
    fn passes(&self, dir: Direction, flow: FlowClass) -> bool {
        match self.state {
            State::Open => true,
            State::Draining => flow != FlowClass::NonPosted,
            State::Closed => false,
            State::Releasing => self.lanes[dir.index()].len == 0,
        }
    }

    /// Whether an offer of a TLP of class `flow` in `dir` now would be
    /// refused ([`Offer::Full`]): it would be held, and the hold is full.
    /// Asked first, a caller can leave the TLP untouched until there is room.
    pub fn refuses(&self, dir: Direction, flow: FlowClass) -> bool {
        !self.passes(dir, flow) && self.lanes[dir.index()].len >= self.config.hold_capacity
    }

    /// Starts a pause: draining first when the IDs differ, closing at once
    /// when they are common.
    pub fn pause(&mut self, mode: IdMode, now: Instant) -> Result<(), StateError> {
        if self.state != State::Open {
            return Err(StateError {
                request: "pause",
                state: self.state,
            });
        }
        self.paused_at = Some(now);
        match mode {
            IdMode::Common => self.close(now, false),
            IdMode::Different => {
                self.state = State::Draining;
                let outstanding = self.outstanding.len();
                self.record(now, EventKind::Draining { outstanding });
                if outstanding == 0 {
                    self.close(now, false);
                }
            }
        }
        Ok(())
    }

    /// Forgets every request in flight: they are another point's to track
    /// now (an endpoint migration moved the function's state).
    pub fn forget_outstanding(&mut self) {
        self.outstanding.slots.fill(EMPTY);
        self.outstanding.len = 0;
    }

    /// Tracks a non-posted request that left through another point (it
    /// was held there for this point's function), so a drain here waits
    /// for its completion.
    pub fn track(&mut self, info: &TlpInfo) {
        if info.flow == FlowClass::NonPosted && !self.outstanding.insert(info) {
            self.stats.untracked += 1;
        }
    }

    /// Lets `f` change what is held in `dir` (a request re-pointed to the
    /// destination's requester ID before release); each item's info is
    /// read again afterwards, so its completion is tracked under its new
    /// identity.
    pub fn rewrite_held(&mut self, dir: Direction, mut f: impl FnMut(&mut T)) {
        for queue in &mut self.lanes[dir.index()].queues {
            for held in queue.iter_mut() {
                f(&mut held.item);
                held.info = held.item.info();
            }
        }
    }

    /// Time-driven work: closes a drain whose budget ran out. Returns the
    /// state afterwards.
    pub fn poll(&mut self, now: Instant) -> State {
        self.poll_excusing(now, Duration::ZERO)
    }

    /// As [`PausePoint::poll`], with `excused` of the drain so far not
    /// counted against its budget (time the completers were kept from
    /// answering, say).
    pub fn poll_excusing(&mut self, now: Instant, excused: Duration) -> State {
        if self.state == State::Draining {
            let since = self.paused_at.unwrap_or(now);
            let counted = now.saturating_duration_since(since).saturating_sub(excused);
            if counted >= self.config.drain_budget {
                self.close(now, true);
            }
        }
        self.state
    }

    /// Begins releasing what a closed point holds (the binding has moved;
    /// the caller has re-pointed its routes).
    pub fn release(&mut self, now: Instant) -> Result<(), StateError> {
        if self.state != State::Closed {
            return Err(StateError {
                request: "release",
                state: self.state,
            });
        }
        self.state = State::Releasing;
        self.record(now, EventKind::Releasing);
        self.reopen_if_empty(now);
        Ok(())
    }

    /// Abandons the pause from any state: everything held is released in
    /// order, then the point reopens.
    pub fn abort(&mut self, now: Instant) {
        let from = self.state;
        if from == State::Open {
            return;
        }
        if from != State::Releasing && self.closed_at.is_none() {
            self.closed_at = self.paused_at;
        }
        self.state = State::Releasing;
        self.record(now, EventKind::Aborted { from });
        self.reopen_if_empty(now);
    }

    fn reopen_if_empty(&mut self, now: Instant) {
        if self.state == State::Releasing && self.lanes[0].len == 0 && self.lanes[1].len == 0 {
            let since = self.closed_at.or(self.paused_at).unwrap_or(now);
            self.state = State::Open;
            self.closed_at = None;
            self.paused_at = None;
            self.record(
                now,
                EventKind::Opened {
                    blackout: now.saturating_duration_since(since),
                },
            );
        }
    }

    /// While releasing: passes up to `max` held TLPs of `dir` to `sink`, in an
    /// order the PCIe rules allow (arrival order unless a posted request must
    /// pass a blocked one), asking `can_send` first (the next hop's credits).
    /// Returns how many left; reopens the point when both directions are empty.
    pub fn drain(
        &mut self,
        dir: Direction,
        now: Instant,
        max: usize,
        mut can_send: impl FnMut(&TlpInfo) -> bool,
        mut sink: impl FnMut(Released<T>),
    ) -> usize {
        if self.state != State::Releasing {
            return 0;
        }
        let mut n = 0;
        while n < max {
            let lane = &mut self.lanes[dir.index()];
            let Some(q) = lane.next(&mut can_send) else {
                break;
            };
            let Some(held) = lane.queues[q].pop_front() else {
                break;
            };
            lane.len -= 1;
            self.stats.released += 1;
            self.leaves(&held.info, now);
            sink(Released {
                dir,
                item: held.item,
                held_for: now.saturating_duration_since(held.at),
            });
            n += 1;
        }
        self.reopen_if_empty(now);
        n
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    struct T(u32, TlpInfo);
    impl Pausable for T {
        fn info(&self) -> TlpInfo {
            self.1
        }
    }

    fn info(flow: FlowClass, requester: u16, tag: u16, final_completion: bool) -> TlpInfo {
        TlpInfo {
            flow,
            requester: Bdf(requester),
            tag,
            final_completion,
            cost: Cost { flow, data: 1 },
        }
    }
    const HOST: u16 = 0x0100;
    fn p(id: u32) -> T {
        T(id, info(FlowClass::Posted, HOST, 0, false))
    }
    fn np(id: u32, tag: u16) -> T {
        T(id, info(FlowClass::NonPosted, HOST, tag, false))
    }
    fn cpl(id: u32, tag: u16) -> T {
        T(id, info(FlowClass::Completion, HOST, tag, true))
    }

    fn drain_all(pp: &mut PausePoint<T>, dir: Direction, now: Instant) -> Vec<u32> {
        let mut out = Vec::new();
        pp.drain(dir, now, usize::MAX, |_| true, |r| out.push(r.item.0));
        out
    }

    #[test]
    fn open_forwards_and_tracks() {
        let now = Instant::now();
        let mut pp = PausePoint::new(PauseConfig::default());
        assert_eq!(
            pp.offer(Direction::Down, np(1, 7), now),
            Offer::Forward(np(1, 7))
        );
        assert_eq!(pp.outstanding(), 1);
        assert!(matches!(
            pp.offer(Direction::Up, cpl(2, 7), now),
            Offer::Forward(_)
        ));
        assert_eq!(pp.outstanding(), 0);
    }

    #[test]
    fn draining_holds_new_requests_and_closes_when_completions_drain() {
        let t0 = Instant::now();
        let mut pp = PausePoint::new(PauseConfig::default());
        pp.offer(Direction::Down, np(1, 1), t0);
        pp.pause(IdMode::Different, t0).unwrap();
        assert_eq!(pp.state(), State::Draining);
        assert_eq!(pp.offer(Direction::Down, np(2, 2), t0), Offer::Held);
        assert!(
            matches!(pp.offer(Direction::Down, p(3), t0), Offer::Forward(_)),
            "posted keep flowing"
        );
        let t1 = t0 + Duration::from_micros(5);
        assert!(
            matches!(pp.offer(Direction::Up, cpl(4, 1), t1), Offer::Forward(_)),
            "completions drain"
        );
        assert_eq!(pp.state(), State::Closed);
        assert_eq!(
            pp.offer(Direction::Down, p(5), t1),
            Offer::Held,
            "closed holds everything"
        );
        assert!(pp.events().any(|e| e.kind
            == EventKind::Closed {
                outstanding: 0,
                budget_expired: false
            }));
        let t2 = t1 + Duration::from_micros(20);
        pp.release(t2).unwrap();
        assert_eq!(drain_all(&mut pp, Direction::Down, t2), [2, 5]);
        assert_eq!(pp.state(), State::Open);
        let opened = pp.events().last().unwrap().kind;
        assert_eq!(
            opened,
            EventKind::Opened {
                blackout: Duration::from_micros(20)
            }
        );
    }

    #[test]
    fn common_id_closes_at_once() {
        let t0 = Instant::now();
        let mut pp = PausePoint::new(PauseConfig::default());
        pp.offer(Direction::Down, np(1, 1), t0);
        pp.pause(IdMode::Common, t0).unwrap();
        assert_eq!(pp.state(), State::Closed);
        assert_eq!(
            pp.offer(Direction::Up, cpl(2, 1), t0),
            Offer::Held,
            "nothing drains"
        );
        assert!(pp.events().any(|e| e.kind
            == EventKind::Closed {
                outstanding: 1,
                budget_expired: false
            }));
    }

    /// A point draining one request since `t0`, with a 10 µs budget.
    fn draining_one(t0: Instant) -> PausePoint<T> {
        let cfg = PauseConfig {
            drain_budget: Duration::from_micros(10),
            ..PauseConfig::default()
        };
        let mut pp = PausePoint::<T>::new(cfg);
        pp.offer(Direction::Down, np(1, 1), t0);
        pp.pause(IdMode::Different, t0).unwrap();
        pp
    }

    #[test]
    fn drain_budget_expiry_closes() {
        let t0 = Instant::now();
        let mut pp = draining_one(t0);
        assert_eq!(pp.poll(t0 + Duration::from_micros(9)), State::Draining);
        assert_eq!(pp.poll(t0 + Duration::from_micros(10)), State::Closed);
        assert!(pp.events().any(|e| e.kind
            == EventKind::Closed {
                outstanding: 1,
                budget_expired: true
            }));
    }

    #[test]
    fn excused_time_does_not_count_against_the_drain_budget() {
        let t0 = Instant::now();
        let mut pp = draining_one(t0);
        let at = t0 + Duration::from_micros(25);
        assert_eq!(
            pp.poll_excusing(at, Duration::from_micros(16)),
            State::Draining
        );
        assert_eq!(
            pp.poll_excusing(at, Duration::from_micros(15)),
            State::Closed
        );
        // Closed when it was polled, excused time or not.
        assert_eq!(pp.closed_at(), Some(at));
    }

    #[test]
    fn release_lets_posted_pass_a_blocked_request_but_never_the_reverse() {
        let t0 = Instant::now();
        let mut pp = PausePoint::new(PauseConfig::default());
        pp.pause(IdMode::Common, t0).unwrap();
        for item in [np(1, 1), p(2), cpl(3, 9), p(4), np(5, 2)] {
            assert_eq!(pp.offer(Direction::Down, item, t0), Offer::Held);
        }
        pp.release(t0).unwrap();
        // No non-posted credits: the posted requests go, the completion after
        // the first posted one goes, nothing passes a posted request.
        let mut out = Vec::new();
        pp.drain(
            Direction::Down,
            t0,
            usize::MAX,
            |i| i.flow != FlowClass::NonPosted,
            |r| out.push(r.item.0),
        );
        assert_eq!(out, [2, 3, 4]);
        assert_eq!(pp.state(), State::Releasing);
        // Arrivals while releasing queue behind what is held.
        assert_eq!(pp.offer(Direction::Down, p(6), t0), Offer::Held);
        assert_eq!(drain_all(&mut pp, Direction::Down, t0), [1, 5, 6]);
        assert_eq!(pp.state(), State::Open);
    }

    #[test]
    fn abort_releases_everything_in_order() {
        let t0 = Instant::now();
        let mut pp = PausePoint::new(PauseConfig::default());
        pp.offer(Direction::Down, np(1, 1), t0);
        pp.pause(IdMode::Different, t0).unwrap();
        pp.offer(Direction::Down, np(2, 2), t0);
        pp.offer(Direction::Down, np(3, 3), t0);
        pp.abort(t0);
        assert_eq!(drain_all(&mut pp, Direction::Down, t0), [2, 3]);
        assert_eq!(pp.state(), State::Open);
        assert!(pp.events().any(|e| e.kind
            == EventKind::Aborted {
                from: State::Draining
            }));
        assert_eq!(pp.outstanding(), 3);
    }

    #[test]
    fn a_full_hold_hands_the_tlp_back() {
        let t0 = Instant::now();
        let cfg = PauseConfig {
            hold_capacity: 2,
            ..PauseConfig::default()
        };
        let mut pp = PausePoint::new(cfg);
        assert!(!pp.refuses(Direction::Up, FlowClass::Posted), "open");
        pp.pause(IdMode::Common, t0).unwrap();
        assert_eq!(pp.offer(Direction::Up, p(1), t0), Offer::Held);
        assert!(!pp.refuses(Direction::Up, FlowClass::Posted));
        assert_eq!(pp.offer(Direction::Up, p(2), t0), Offer::Held);
        // Asked first, the point says what the offer would do.
        assert!(pp.refuses(Direction::Up, FlowClass::Posted));
        assert!(!pp.refuses(Direction::Down, FlowClass::Posted));
        assert_eq!(pp.offer(Direction::Up, p(3), t0), Offer::Full(p(3)));
        assert_eq!(
            pp.offer(Direction::Down, p(4), t0),
            Offer::Held,
            "each direction has its own hold"
        );
        assert_eq!(pp.stats().full, 1);
    }

    #[test]
    fn invalid_transitions_are_refused() {
        let t0 = Instant::now();
        let mut pp = PausePoint::<T>::new(PauseConfig::default());
        assert_eq!(
            pp.release(t0),
            Err(StateError {
                request: "release",
                state: State::Open
            })
        );
        pp.pause(IdMode::Common, t0).unwrap();
        assert_eq!(
            pp.pause(IdMode::Common, t0),
            Err(StateError {
                request: "pause",
                state: State::Closed
            })
        );
    }

    #[test]
    fn hold_times_are_measured() {
        let t0 = Instant::now();
        let mut pp = PausePoint::new(PauseConfig::default());
        pp.pause(IdMode::Common, t0).unwrap();
        pp.offer(Direction::Down, p(1), t0);
        pp.offer(Direction::Down, p(2), t0 + Duration::from_micros(3));
        pp.release(t0 + Duration::from_micros(10)).unwrap();
        let mut held = Vec::new();
        pp.drain(
            Direction::Down,
            t0 + Duration::from_micros(10),
            8,
            |_| true,
            |r| held.push(r.held_for),
        );
        assert_eq!(held, [Duration::from_micros(10), Duration::from_micros(7)]);
    }

    #[test]
    fn info_from_real_tlps() {
        // CplD of 1 DW with Byte Count 4: final. Byte Count 8: more to come.
        let last = [
            0x4a, 0, 0, 1, 0x04, 0x00, 0x00, 0x04, 0x01, 0x00, 0x05, 0x00, 1, 2, 3, 4,
        ];
        let first = [
            0x4a, 0, 0, 1, 0x04, 0x00, 0x00, 0x08, 0x01, 0x00, 0x05, 0x00, 1, 2, 3, 4,
        ];
        let i = TlpInfo::of(&last).unwrap();
        assert_eq!(
            (i.flow, i.requester, i.tag, i.final_completion),
            (FlowClass::Completion, Bdf(0x0100), 5, true)
        );
        assert!(!TlpInfo::of(&first).unwrap().final_completion);
        assert!(TlpInfo::of(&last[..10]).is_err());
    }
}

#[cfg(all(test, not(loom)))]
mod outstanding_tests {
    use super::*;

    fn req(requester: u16, tag: u16) -> TlpInfo {
        TlpInfo {
            flow: FlowClass::NonPosted,
            requester: Bdf(requester),
            tag,
            final_completion: false,
            cost: Cost {
                flow: FlowClass::NonPosted,
                data: 0,
            },
        }
    }

    #[test]
    fn matches_a_set_under_random_inserts_and_removals() {
        let mut table = Outstanding::new(64);
        let mut model = std::collections::HashSet::new();
        let mut x: u64 = 0x1234_5678;
        let rounds = if cfg!(miri) { 500 } else { 50_000 };
        for _ in 0..rounds {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Few requesters and tags, so probe runs collide and wrap.
            let info = req((x % 5) as u16 * 0x100, ((x >> 8) % 40) as u16);
            let key = (info.requester.0, info.tag);
            if x >> 40 & 1 == 0 {
                let tracked = table.insert(&info);
                assert_eq!(tracked, model.len() < 64 || model.contains(&key));
                if tracked {
                    model.insert(key);
                }
            } else {
                table.complete(&info);
                model.remove(&key);
            }
            assert_eq!(table.len(), model.len());
        }
        for (r, t) in model.clone() {
            table.complete(&req(r, t));
        }
        assert_eq!(table.len(), 0);
        assert!(table.slots.iter().all(|s| *s == EMPTY));
    }
}
