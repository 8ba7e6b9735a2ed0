//! Model tests: a host and an endpoint exchange real TLPs through a pause
//! point, over links with PCIe credits, while it is paused, drained, closed,
//! released and aborted at random. Thousands of seeded scenarios check that
//! nothing is lost or duplicated, that no TLP passes one it must not pass,
//! that completions drain before a different-ID close and nothing moves in
//! common-ID mode, and that credits are conserved at every step.
#![cfg(not(loom))]

use rings::{
    Advertisement, CreditAccount, Direction, EventKind, IdMode, Offer, Pausable, PauseConfig,
    PausePoint, State, TlpInfo,
};
use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};
use tlp::{Bdf, Body, CplStatus, CreditType, Kind, MemOp, MsgRouting, OrderInfo, Passing, Repr};

const HOST: Bdf = Bdf(0x0100);
const HOST_FN1: Bdf = Bdf(0x0101);
const DEVICE: Bdf = Bdf(0x0300);
const DEVICE_VF: Bdf = Bdf(0x0301);

/// xorshift64*: small, seeded, reproducible.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

#[derive(Debug, Clone)]
struct Frame {
    id: u64,
    bytes: Vec<u8>,
    info: TlpInfo,
}

impl Pausable for Frame {
    fn info(&self) -> TlpInfo {
        self.info
    }
}

fn emit(repr: &Repr<'_>) -> Vec<u8> {
    let mut buf = vec![0u8; repr.buffer_len()];
    repr.emit(&mut buf).unwrap();
    buf
}

fn frame(id: u64, bytes: Vec<u8>) -> Frame {
    let info = TlpInfo::of(&bytes).expect("model TLPs are valid");
    Frame { id, bytes, info }
}

fn write(id: u64, requester: Bdf, relaxed: bool) -> Frame {
    let data = (id as u32).to_be_bytes();
    let mut r = Repr::new(Kind::MWr, MsgRouting::ToRoot, &data);
    r.requester = requester;
    r.attr = tlp::Attr(if relaxed {
        tlp::Attr::RELAXED_ORDERING
    } else {
        0
    });
    r.body = Body::Memory {
        op: MemOp::Write,
        first_be: 0xf,
        last_be: 0,
        address: 0x1000,
        long: false,
        ph: 0,
    };
    frame(id, emit(&r))
}

fn read(id: u64, requester: Bdf, tag: u16, length_dw: u16) -> Frame {
    let mut r = Repr::new(Kind::MRd, MsgRouting::ToRoot, &[]);
    r.requester = requester;
    r.tag = tag;
    r.length_dw = length_dw;
    let last_be = if length_dw > 1 { 0xf } else { 0 };
    r.body = Body::Memory {
        op: MemOp::Read,
        first_be: 0xf,
        last_be,
        address: 0x2000,
        long: false,
        ph: 0,
    };
    frame(id, emit(&r))
}

fn completion(id: u64, completer: Bdf, requester: Bdf, tag: u16, byte_count: u16) -> Frame {
    let data = [0xa5u8; 4];
    let mut r = Repr::new(Kind::CplD, MsgRouting::ToRoot, &data);
    r.requester = requester;
    r.tag = tag;
    r.body = Body::Completion {
        locked: false,
        completer,
        status: CplStatus::Sc,
        bcm: false,
        byte_count,
        lower_address: 0,
    };
    frame(id, emit(&r))
}

fn order_info(f: &Frame) -> OrderInfo {
    OrderInfo::of_tlp(&tlp::Tlp::new_unchecked(&f.bytes[..]))
}

/// One direction of the binding's path: a sender with credits, the wire, and
/// what came out of the pause point.
struct Link {
    credits: CreditAccount,
    wire: VecDeque<Frame>,
    /// Ids in the order they reached the pause point.
    offered: Vec<u64>,
    /// Ids in the order they left it.
    delivered: Vec<u64>,
    /// Credit waits: a sender found too few credits and waited.
    waits: u64,
}

struct Sim {
    rng: Rng,
    now: Instant,
    pp: PausePoint<Frame>,
    links: [Link; 2],
    frames: HashMap<u64, Frame>,
    held_costs: HashMap<u64, rings::Cost>,
    next_id: u64,
    next_tag: [u16; 2],
    /// Requests delivered whose final completion has not been delivered: (requester, tag).
    awaiting: HashSet<(u16, u16)>,
    /// Requests delivered that their completer has not answered yet: (dir of request, requester, tag, length).
    to_answer: Vec<(Direction, Bdf, u16, u16)>,
    /// Completions the completer still owes after a first split part.
    common_paused: bool,
    mode: Option<IdMode>,
    advertised: Advertisement,
}

fn idx(dir: Direction) -> usize {
    match dir {
        Direction::Down => 0,
        Direction::Up => 1,
    }
}

fn other(dir: Direction) -> Direction {
    match dir {
        Direction::Down => Direction::Up,
        Direction::Up => Direction::Down,
    }
}

impl Sim {
    fn new(seed: u64) -> Sim {
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let headers = 2 + rng.below(6) as u32;
        let advertised = Advertisement::uniform(headers, headers * 2)
            .with(
                CreditType::CplH,
                if rng.chance(50) { None } else { Some(headers) },
            )
            .with(CreditType::CplD, None);
        let config = PauseConfig {
            hold_capacity: 1 + rng.below(3 * headers as u64 + 2) as usize,
            track_capacity: 64,
            drain_budget: Duration::from_micros(20 + rng.below(200)),
        };
        let link = || Link {
            credits: CreditAccount::new(advertised),
            wire: VecDeque::new(),
            offered: Vec::new(),
            delivered: Vec::new(),
            waits: 0,
        };
        Sim {
            rng,
            now: Instant::now(),
            pp: PausePoint::new(config),
            links: [link(), link()],
            frames: HashMap::new(),
            held_costs: HashMap::new(),
            next_id: 0,
            next_tag: [0, 0],
            awaiting: HashSet::new(),
            to_answer: Vec::new(),
            common_paused: false,
            mode: None,
            advertised,
        }
    }

    fn send(&mut self, dir: Direction, f: Frame) -> bool {
        let link = &mut self.links[idx(dir)];
        if !link.credits.try_consume(f.info.cost) {
            link.waits += 1;
            return false;
        }
        self.frames.insert(f.id, f.clone());
        link.wire.push_back(f);
        true
    }

    fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// A requester on `dir`'s sending side issues a write or a read.
    fn request(&mut self, dir: Direction) {
        // Two requesters on each side.
        let requester = match (dir, self.rng.chance(50)) {
            (Direction::Down, true) => HOST,
            (Direction::Down, false) => HOST_FN1,
            (Direction::Up, true) => DEVICE,
            (Direction::Up, false) => DEVICE_VF,
        };
        let id = self.id();
        let f = if self.rng.chance(55) {
            write(id, requester, self.rng.chance(10))
        } else {
            let tag = self.next_tag[idx(dir)];
            let f = read(id, requester, tag, 1 + self.rng.below(2) as u16);
            if !self.links[idx(dir)].credits.can_consume(f.info.cost) {
                self.links[idx(dir)].waits += 1;
                return;
            }
            self.next_tag[idx(dir)] = (tag + 1) % 1024;
            f
        };
        self.send(dir, f);
    }

    /// The completer of a delivered read answers it (in one or two parts).
    fn answer(&mut self) {
        if self.to_answer.is_empty() {
            return;
        }
        let i = self.rng.below(self.to_answer.len() as u64) as usize;
        let (req_dir, requester, tag, length) = self.to_answer[i];
        let completer = if req_dir == Direction::Down {
            DEVICE
        } else {
            HOST
        };
        let dir = other(req_dir);
        let byte_count = length * 4;
        let id = self.id();
        let part = completion(id, completer, requester, tag, byte_count);
        if self.send(dir, part) {
            if length == 2 {
                self.to_answer[i].3 = 1; // the rest follows in a second completion
            } else {
                self.to_answer.swap_remove(i);
            }
        }
    }

    /// `state` is the pause point's state when it let `f` go.
    fn delivered(&mut self, dir: Direction, f: &Frame, state: State) {
        let link = &mut self.links[idx(dir)];
        link.delivered.push(f.id);
        let key = (f.info.requester.0, f.info.tag);
        match f.info.flow {
            tlp::FlowClass::NonPosted => {
                self.awaiting.insert(key);
                let length = tlp::Tlp::new_unchecked(&f.bytes[..]).length_dw();
                self.to_answer
                    .push((dir, f.info.requester, f.info.tag, length));
            }
            tlp::FlowClass::Completion if f.info.final_completion => {
                self.awaiting.remove(&key);
            }
            _ => {}
        }
        assert!(
            !self.common_paused,
            "common-ID mode: nothing may pass while paused ({:?})",
            f.info
        );
        match state {
            State::Closed => panic!("a closed pause point let {:?} through", f.info),
            State::Draining => assert_ne!(
                f.info.flow,
                tlp::FlowClass::NonPosted,
                "a new request passed while draining"
            ),
            _ => {}
        }
    }

    /// The pause point receives the next TLP on `dir`'s wire.
    fn arrive(&mut self, dir: Direction) {
        let Some(f) = self.links[idx(dir)].wire.pop_front() else {
            return;
        };
        let id = f.id;
        let cost = f.info.cost;
        let before = self.pp.state();
        match self.pp.offer(dir, f, self.now) {
            Offer::Forward(f) => {
                self.links[idx(dir)].offered.push(id);
                self.links[idx(dir)].credits.give_back(cost);
                self.delivered(dir, &f, before);
            }
            Offer::Held => {
                self.links[idx(dir)].offered.push(id);
                self.held_costs.insert(id, cost);
            }
            Offer::Full(f) => self.links[idx(dir)].wire.push_front(f),
        }
        self.check_close(before);
    }

    fn check_close(&mut self, before: State) {
        if before == State::Draining && self.pp.state() == State::Closed {
            let last = self.pp.events().last().unwrap().kind;
            if let EventKind::Closed {
                budget_expired: false,
                outstanding,
            } = last
            {
                assert_eq!(outstanding, 0);
                assert!(
                    self.awaiting.is_empty(),
                    "closed with requests in flight: {:?}",
                    self.awaiting
                );
            }
        }
    }

    fn drain(&mut self, dir: Direction, max: usize) {
        let mut out = Vec::new();
        // The next hop's credits, per class: any of them may be short.
        let ok = [
            self.rng.chance(70),
            self.rng.chance(50),
            self.rng.chance(70),
        ];
        let class = |f: tlp::FlowClass| match f {
            tlp::FlowClass::Posted => 0,
            tlp::FlowClass::NonPosted => 1,
            tlp::FlowClass::Completion => 2,
        };
        let state = self.pp.state();
        self.pp
            .drain(dir, self.now, max, |i| ok[class(i.flow)], |r| out.push(r));
        for r in out {
            let cost = self
                .held_costs
                .remove(&r.item.id)
                .expect("released what was held");
            self.links[idx(dir)].credits.give_back(cost);
            self.delivered(dir, &r.item, state);
        }
    }

    fn check_credits(&self) {
        for (d, link) in self.links.iter().enumerate() {
            for t in CreditType::ALL {
                let Some(limit) = self.advertised.limits[t.index()] else {
                    continue;
                };
                let cost_of = |c: &rings::Cost| {
                    if c.flow.header_credit() == t {
                        1
                    } else if c.flow.data_credit() == t {
                        c.data as u32
                    } else {
                        0
                    }
                };
                let in_flight: u32 = link.wire.iter().map(|f| cost_of(&f.info.cost)).sum();
                let held: u32 = self
                    .held_costs
                    .iter()
                    .filter(|(id, _)| link.offered.contains(id) && !link.delivered.contains(id))
                    .map(|(_, c)| cost_of(c))
                    .sum();
                let available = link.credits.available(t).unwrap();
                assert_eq!(
                    available + in_flight + held,
                    limit,
                    "direction {d} {t:?}: credits not conserved"
                );
            }
        }
    }

    fn step(&mut self) {
        self.now += Duration::from_micros(1 + self.rng.below(3));
        let dir = if self.rng.chance(50) {
            Direction::Down
        } else {
            Direction::Up
        };
        match self.rng.below(100) {
            0..=29 => self.request(dir),
            30..=44 => self.answer(),
            45..=79 => self.arrive(dir),
            80..=86 => {
                if self.pp.state() == State::Open && self.rng.chance(40) {
                    let mode = if self.rng.chance(50) {
                        IdMode::Different
                    } else {
                        IdMode::Common
                    };
                    self.pp.pause(mode, self.now).unwrap();
                    self.mode = Some(mode);
                    self.common_paused = mode == IdMode::Common;
                }
            }
            87..=90 => {
                let before = self.pp.state();
                self.pp.poll(self.now);
                self.check_close(before);
            }
            91..=95 => {
                if self.pp.state() == State::Closed {
                    self.pp.release(self.now).unwrap();
                    self.common_paused = false;
                }
            }
            96 => {
                if self.rng.chance(30) {
                    self.pp.abort(self.now);
                    self.common_paused = false;
                }
            }
            _ => {
                let max = 1 + self.rng.below(4) as usize;
                self.drain(dir, max);
            }
        }
        self.check_credits();
    }

    /// Ends the scenario: release everything and let all traffic settle.
    fn finish(&mut self) {
        for _ in 0..10_000 {
            match self.pp.state() {
                State::Draining | State::Closed => {
                    self.pp.abort(self.now);
                    self.common_paused = false;
                }
                _ => {}
            }
            for dir in [Direction::Down, Direction::Up] {
                self.drain(dir, usize::MAX);
                while !self.links[idx(dir)].wire.is_empty() && self.pp.state() == State::Open {
                    self.arrive(dir);
                }
            }
            self.answer();
            self.check_credits();
            let settled = self.links.iter().all(|l| l.wire.is_empty())
                && self.to_answer.is_empty()
                && self.pp.state() == State::Open
                && self.pp.held(Direction::Down) + self.pp.held(Direction::Up) == 0;
            if settled {
                return;
            }
            self.now += Duration::from_micros(1);
        }
        panic!("the scenario did not settle");
    }

    fn check_delivery(&self) {
        for link in &self.links {
            let mut seen = HashSet::new();
            for id in &link.delivered {
                assert!(seen.insert(*id), "TLP {id} delivered twice");
            }
            assert_eq!(
                link.delivered.len(),
                link.offered.len(),
                "every TLP sent is delivered"
            );
            // Order: whenever a later arrival left before an earlier one, the
            // PCIe table must allow that pass.
            let position: HashMap<u64, usize> = link
                .delivered
                .iter()
                .enumerate()
                .map(|(i, id)| (*id, i))
                .collect();
            for (i, a) in link.offered.iter().enumerate() {
                for b in &link.offered[i + 1..] {
                    if position[b] < position[a] {
                        let (fa, fb) = (&self.frames[a], &self.frames[b]);
                        assert_ne!(
                            tlp::may_pass(&order_info(fb), &order_info(fa)),
                            Passing::MustNotPass,
                            "{:?} passed {:?}",
                            fb.info,
                            fa.info
                        );
                    }
                }
            }
        }
        assert!(self.awaiting.is_empty(), "every request completed");
    }
}

#[test]
fn random_interleavings_keep_every_promise() {
    let scenarios = if cfg!(debug_assertions) { 1500 } else { 5000 };
    let mut paused = 0;
    let mut waits = 0;
    for seed in 0..scenarios {
        let mut sim = Sim::new(seed);
        let steps = 100 + sim.rng.below(200);
        for _ in 0..steps {
            sim.step();
        }
        sim.finish();
        sim.check_delivery();
        paused += sim.mode.is_some() as u32;
        waits += sim.links.iter().map(|l| l.waits).sum::<u64>();
    }
    // The scenarios must actually exercise pauses and flow control.
    assert!(
        paused > scenarios as u32 / 2,
        "only {paused} scenarios paused"
    );
    assert!(waits > 0, "no sender ever waited for credits");
}

#[test]
fn a_sender_facing_a_closed_pause_point_stops_on_credits_and_loses_nothing() {
    let mut sim = Sim::new(42);
    sim.pp.pause(IdMode::Common, sim.now).unwrap();
    sim.common_paused = true;
    for _ in 0..200 {
        sim.request(Direction::Down);
        sim.arrive(Direction::Down);
        sim.check_credits();
    }
    assert!(
        sim.links[0].waits > 0,
        "credits ran out and the sender waited"
    );
    assert_eq!(sim.links[0].delivered.len(), 0);
    sim.pp.release(sim.now).unwrap();
    sim.common_paused = false;
    sim.finish();
    sim.check_delivery();
}
