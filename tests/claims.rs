//! One test (or more) per claim of the office action (`shared/seed`). Each
//! `claim_N_*` test runs the whole default fabric in the deterministic
//! single-thread mode (a virtual clock, fixed task order, so every run is
//! the same): node pipelines, gates, orchestrator, host and device models.
//! It asserts what the hosts and the device recorded, with their times.
//! The `gate_*` tests check one gate on its own (the pause points and VDIs
//! of an endpoint's functions), fed TLPs by hand.

use assembly::{DynPort, Part, ScenarioConfig};
use fabric::{Completion, FaultConfig, Topology};
use lcore::gate::STATE_CLOSED;
use lcore::{Arrival, Deterministic, Gate, GateCommand, GateOffer, GatedFunction, NodeTask, Task};
use migrate::{Fabric, Outcome, Phase, Schedule};
use rings::pause::{Direction, EventKind, IdMode, State};
use rings::spsc::{self, Producer};
use std::time::Duration;
use tlp::build::{completion, memory_read, memory_write, CplFields, MemAccess};
use tlp::{Bdf, Body, CplStatus, Kind, Repr, Tlp};
use traffic::enumerate::{Probe, Probed};
use traffic::registers::{CTRL_EXT, ICR, STATUS, STATUS_VALUE, WUS, WUS_RESET};
use traffic::{IndicationForm, COMPLETION_DATA};
use vdi::{CompletionSignal, Mode, Template, Vdi};

mod common;
use common::*;

// ---------------------------------------------------------------------------
// A gate on its own: the endpoint of the default topology (PF 40:00.0 and
// three VFs), hosts A and B on fabric buses ff and fe.

const VF1: Bdf = Bdf(0x4001);
const VF2: Bdf = Bdf(0x4002);
const VF1_BAR: u64 = 0x8001_0000;
const HOST_A: Bdf = Bdf(0xff00);
const HOST_B: Bdf = Bdf(0xfe00);
const DEST_BUS: u8 = 0xfe;
/// Gate binding indices are function numbers.
const B1: usize = 1;

fn template() -> Template {
    Template::load(&configs().join("templates/nic.toml")).expect("the nic template loads")
}

fn gate() -> (Gate, Producer<GateCommand>) {
    let t = template();
    let functions = (0..4u16)
        .map(|f| {
            let id = Bdf(0x4000 + f);
            let bar = (0x8000_0000 + f as u64 * 0x1_0000, 0x1_0000);
            (GatedFunction { function: id, bar }, Some(Vdi::new(&t, id)))
        })
        .collect();
    let (tx, rx) = spsc::ring(64);
    (Gate::new(1, functions, rx, Duration::from_millis(1)), tx)
}

/// A gate whose drains and blackouts read the stalls of a core the test
/// polls the watch of.
fn gate_with_stall_watch() -> (Gate, Producer<GateCommand>, lcore::StallWatch) {
    let (mut g, tx) = gate();
    let clock = std::sync::Arc::new(lcore::StallClock::default());
    let watch = lcore::StallWatch::new(clock.clone());
    g.with_stall_clocks(vec![clock]);
    (g, tx, watch)
}

fn command(gate: &mut Gate, tx: &mut Producer<GateCommand>, c: GateCommand, now: u64) {
    tx.push(c).expect("room for a command");
    gate.poll(now);
}

/// Prepares a VM migration of binding B1 to the host on `DEST_BUS`.
fn prepare(gate: &mut Gate, tx: &mut Producer<GateCommand>, now: u64) {
    let c = GateCommand::Prepare {
        binding: B1,
        destination_bus: DEST_BUS,
    };
    command(gate, tx, c, now);
}

/// Pauses `binding` in `mode`, `stopped` naming the side that stopped.
fn pause(
    gate: &mut Gate,
    tx: &mut Producer<GateCommand>,
    binding: usize,
    mode: IdMode,
    stopped: Option<Direction>,
    now: u64,
) {
    let c = GateCommand::Pause {
        binding,
        mode,
        stopped,
    };
    command(gate, tx, c, now);
}

/// Releases `binding` at once (no requester remap, no retarget).
fn release(gate: &mut Gate, tx: &mut Producer<GateCommand>, binding: usize, now: u64) {
    let c = GateCommand::Release {
        binding,
        requester: None,
        retarget: None,
    };
    command(gate, tx, c, now);
}

fn down() -> Arrival {
    Arrival {
        dir: Direction::Down,
        ingress: 0,
        credits: None,
        redirected: false,
        again: false,
    }
}

fn up() -> Arrival {
    Arrival {
        dir: Direction::Up,
        ingress: 1,
        credits: None,
        redirected: false,
        again: false,
    }
}

fn write(requester: Bdf, address: u64, fill: u8) -> Vec<u8> {
    let mut b = vec![0u8; 64];
    let n = memory_write(
        &mut b,
        requester,
        0,
        MemAccess::dwords(address, 4),
        &[fill; 16],
    )
    .unwrap();
    b.truncate(n);
    b
}

fn read(requester: Bdf, tag: u16, address: u64) -> Vec<u8> {
    let mut b = vec![0u8; 64];
    let n = memory_read(&mut b, requester, tag, MemAccess::dwords(address, 4)).unwrap();
    b.truncate(n);
    b
}

fn read_completion(requester: Bdf, tag: u16) -> Vec<u8> {
    let mut b = vec![0u8; 64];
    let fields = CplFields {
        completer: VF1,
        requester,
        tag,
        status: CplStatus::Sc,
        byte_count: 16,
        lower_address: 0,
    };
    let n = completion(&mut b, fields, &[0u8; 16]).unwrap();
    b.truncate(n);
    b
}

fn config(kind: Kind, requester: Bdf, target: Bdf, register: u16, data: &[u8]) -> Vec<u8> {
    let mut b = vec![0u8; 16];
    let n = tlp::build::config_request(&mut b, kind, requester, 0, target, register, data).unwrap();
    b.truncate(n);
    b
}

/// A configuration read of DW `register` through the gate; the DW read.
fn cfg_read(gate: &mut Gate, requester: Bdf, register: u16) -> Option<u32> {
    let tlp = config(Kind::CfgRd0, requester, VF1, register, &[]);
    let mut reply = [0u8; 64];
    let offer = match gate.serve_destination(B1, &tlp, &mut reply) {
        Some(o) => o,
        None => gate.offer(B1, down(), &tlp, &mut reply, 0),
    };
    let GateOffer::Served(n) = offer else {
        return None;
    };
    let c = Tlp::new_checked(&reply[..n]).unwrap();
    assert_eq!(
        c.requester_id(),
        requester,
        "the completion returns to its requester"
    );
    Some(u32::from_le_bytes(c.payload()[..4].try_into().unwrap()))
}

fn cfg_write(gate: &mut Gate, requester: Bdf, register: u16, value: u32) -> GateOffer {
    let tlp = config(Kind::CfgWr0, requester, VF1, register, &value.to_le_bytes());
    let mut reply = [0u8; 64];
    match gate.serve_destination(B1, &tlp, &mut reply) {
        Some(o) => o,
        None => gate.offer(B1, down(), &tlp, &mut reply, 0),
    }
}

fn released(gate: &mut Gate) -> Vec<(Direction, Vec<u8>)> {
    let mut out = Vec::new();
    gate.drain_released(|dir, tlp| out.push((dir, tlp.to_vec())));
    out
}

// ---------------------------------------------------------------------------
// The whole default fabric, deterministic.

fn default_topology() -> Topology {
    Topology::load(&configs().join("default.toml")).expect("the default topology")
}

fn scenario_config(rate: f64, duration_ms: u64, schedule: Schedule) -> ScenarioConfig {
    ScenarioConfig {
        rate,
        duration: duration_ms * 1_000_000,
        schedule,
        config_dir: configs(),
        ..ScenarioConfig::default()
    }
}

/// The fabric of `t` run deterministically through `schedule` with hosts
/// offering `rate` writes per second for `ms` milliseconds, and drained.
fn migrate(t: &Topology, rate: f64, ms: u64, schedule: Schedule) -> Deterministic<Part> {
    let c = scenario_config(rate, ms, schedule);
    let mut d = fabric(t, &c);
    run_out(&mut d, &c);
    d
}

/// Runs until the offered traffic is over and has drained.
fn run_out(d: &mut Deterministic<Part>, c: &ScenarioConfig) {
    let end = c.duration + 10_000_000;
    d.run_until(u64::MAX, |d| d.now() >= end);
}

/// Runs until the migration in progress reaches `phase`.
fn run_to_phase(d: &mut Deterministic<Part>, phase: Phase) {
    d.run_until(u64::MAX, |d| {
        orchestrator(d)
            .in_progress()
            .is_some_and(|(_, p)| p == Some(phase))
            || d.now() > 1_000_000_000
    });
    assert!(d.now() < 1_000_000_000, "never reached {phase:?}");
}

fn one_migration() -> Schedule {
    Schedule {
        vm_migrations: 1,
        start: 2_000_000,
        ..Schedule::default()
    }
}

// ---------------------------------------------------------------------------

#[test]
fn both_instantiations_stand_during_the_move() {
    let t = default_topology();
    let c = scenario_config(1_000_000.0, 10, one_migration());
    let mut d = fabric(&t, &c);
    run_to_phase(&mut d, Phase::Move);
    let g = fabric_gate(&d);
    // Binding 0 is nic0.vf1: the source's VDI serves while paused, the
    // destination's is up beside it.
    assert_eq!(g.vdi(1).unwrap().mode(), Mode::Migrating);
    assert_eq!(g.destination_vdi(1).unwrap().mode(), Mode::Shadow);
    run_out(&mut d, &c);
    let g = fabric_gate(&d);
    assert!(
        g.destination_vdi(1).is_none(),
        "one instantiation once complete"
    );
    assert_eq!(orchestrator(&d).counts(), (1, 0));
    assert_clean(&integrity(&d));
}

#[test]
fn gate_destination_vdi_answers_with_the_source_ids() {
    let (mut g, mut tx) = gate();
    let source_ids = g.vdi(B1).unwrap().ids();
    prepare(&mut g, &mut tx, 0);
    // The destination host enumerates: vendor and device ID are the source
    // function's.
    let id = cfg_read(&mut g, HOST_B, 0).expect("the destination's VDI answers");
    assert_eq!((id as u16, (id >> 16) as u16), source_ids);
    assert_eq!(g.stats().vdi_config_reads, 1);
}

#[test]
fn gate_destination_vdi_starts_from_the_source_state() {
    let (mut g, mut tx) = gate();
    // The source host changes its function while it is paused (served by
    // the source's VDI) …
    pause(&mut g, &mut tx, B1, IdMode::Common, None, 0);
    assert!(matches!(
        cfg_write(&mut g, HOST_A, 0x3c, 0x0000_000b),
        GateOffer::Served(_)
    ));
    // … and the destination, made from the source's snapshot, reads it.
    prepare(&mut g, &mut tx, 1);
    let line = cfg_read(&mut g, HOST_B, 0x3c).unwrap();
    assert_eq!(line & 0xff, 0x0b, "the interrupt line the source wrote");
}

/// From the switch-over on, the destination host owns the function: its
/// configuration requests pass to the function and are counted as the
/// binding's (a VDI answering them would answer the migrated VM out of the
/// binding's sight, and the next hand-over would wait for a request that
/// never arrived). The function's VDI carries on with every write the VM
/// made, and a write its VDI completed while paused is made to the function
/// before what was held.
#[test]
fn after_the_switch_over_the_destination_host_reaches_the_function() {
    use std::sync::atomic::Ordering;
    let (mut g, mut tx) = gate();
    let status = g.status();
    let counts = |s: &lcore::GateStatus| {
        let b = s.binding(B1).unwrap();
        (
            b.down_requests.load(Ordering::Acquire),
            b.up_passed.load(Ordering::Acquire),
        )
    };
    prepare(&mut g, &mut tx, 0);
    // The destination host writes its own instantiation …
    assert!(matches!(
        cfg_write(&mut g, HOST_B, 0x3c, 0x0000_000c),
        GateOffer::Served(_)
    ));
    // … while the source's write passes to the function, seen by its VDI.
    let mut reply = [0u8; 64];
    let w = config(Kind::CfgWr0, HOST_A, VF1, 0x3c, &[0x0d, 0, 0, 0]);
    assert_eq!(g.offer(B1, down(), &w, &mut reply, 0), GateOffer::Pass);
    pause(
        &mut g,
        &mut tx,
        B1,
        IdMode::Common,
        Some(Direction::Down),
        1,
    );
    assert_eq!(cfg_read(&mut g, HOST_A, 0x3c).map(|d| d & 0xff), Some(0x0d));
    // While paused the VDI answers the VM, and its answer is counted as
    // passed toward it together with the request.
    let before = counts(&status);
    assert!(matches!(
        cfg_write(&mut g, HOST_A, 0x3c, 0x0000_000e),
        GateOffer::Served(_)
    ));
    assert_eq!(counts(&status), (before.0 + 1, before.1 + 1));
    let held = write(HOST_A, VF1_BAR, 7);
    assert_eq!(g.offer(B1, down(), &held, &mut reply, 1), GateOffer::Held);
    release(&mut g, &mut tx, B1, 2);
    assert_eq!(g.state(B1), Some(State::Open));
    assert!(
        g.destination_vdi(B1).is_none(),
        "no second VDI after the switch-over"
    );
    // The served write goes to the function first, as the gate's own
    // request, then what was held.
    let out = released(&mut g);
    assert_eq!(out.len(), 2, "{out:?}");
    let replay = Tlp::new_checked(&out[0].1[..]).unwrap();
    assert_eq!(replay.kind(), Some(Kind::CfgWr0));
    assert_eq!(replay.requester_id(), lcore::gate::REPLAY_REQUESTER);
    assert_eq!((replay.register(), replay.payload()[0]), (0x3c, 0x0e));
    assert_eq!(out[1].1, held);
    // The function's completion of it ends at the gate.
    let mut done = vec![0u8; 64];
    let fields = CplFields {
        completer: VF1,
        requester: lcore::gate::REPLAY_REQUESTER,
        tag: replay.tag(),
        status: CplStatus::Sc,
        byte_count: 4,
        lower_address: 0,
    };
    let n = completion(&mut done, fields, &[]).unwrap();
    assert_eq!(
        g.offer(B1, up(), &done[..n], &mut reply, 3),
        GateOffer::Absorbed
    );
    // The destination host's requests now reach the function.
    let before = counts(&status);
    let r = config(Kind::CfgRd0, HOST_B, VF1, 0x3c, &[]);
    assert!(g.serve_destination(B1, &r, &mut reply).is_none());
    assert_eq!(g.offer(B1, down(), &r, &mut reply, 3), GateOffer::Pass);
    assert_eq!(counts(&status), (before.0 + 1, before.1));
    // The function's VDI holds what the VM wrote, not the destination's
    // own instantiation's write.
    let mut probe = g.vdi(B1).unwrap().clone();
    probe.set_mode(Mode::Migrating);
    let mut out = [0u8; 64];
    let vdi::Verdict::Completed(n) = probe.serve(&r, &mut out) else {
        panic!("a migrating VDI answers a configuration read");
    };
    let c = Tlp::new_checked(&out[..n]).unwrap();
    assert_eq!(c.payload()[0], 0x0e, "the interrupt line the VM wrote last");
}

/// A function standing by for another's state (an endpoint migration's
/// destination) holds configuration requests rather than answer them from
/// a VDI that does not have that state yet.
#[test]
fn a_standby_function_holds_configuration_requests() {
    let (mut g, mut tx) = gate();
    let vf2 = Bdf(0x4002);
    command(&mut g, &mut tx, GateCommand::Standby { binding: 2 }, 0);
    let mut reply = [0u8; 64];
    for kind in [Kind::CfgWr0, Kind::CfgRd0] {
        let data: &[u8] = if kind == Kind::CfgWr0 {
            &[9, 0, 0, 0]
        } else {
            &[]
        };
        let r = config(kind, HOST_A, vf2, 0x3c, data);
        assert_eq!(g.offer(2, down(), &r, &mut reply, 1), GateOffer::Held);
    }
    assert_eq!(g.stats().vdi_config_reads + g.stats().vdi_config_writes, 0);
}

#[test]
fn gate_destination_is_served_while_the_source_passes() {
    let (mut g, mut tx) = gate();
    prepare(&mut g, &mut tx, 0);
    let mut reply = [0u8; 64];
    // The source host's traffic goes on to the device …
    let w = write(HOST_A, VF1_BAR + 0x100, 1);
    assert_eq!(g.offer(B1, down(), &w, &mut reply, 0), GateOffer::Pass);
    let r = config(Kind::CfgRd0, HOST_A, VF1, 0, &[]);
    assert_eq!(g.offer(B1, down(), &r, &mut reply, 0), GateOffer::Pass);
    // … while the destination host's is answered by its VDI.
    assert!(cfg_read(&mut g, HOST_B, 0).is_some());
    assert_eq!(g.state(B1), Some(State::Open));
}

/// What the destination's instantiation cannot serve before the
/// switch-over is refused as a function refuses what it does not support
/// (PCIe Base Specification §2.3.1): a read with an Unsupported Request
/// completion from the function's ID, a posted write discarded; neither
/// reaches the function.
#[test]
fn gate_destination_refuses_what_needs_the_device() {
    let (mut g, mut tx) = placed_gate();
    prepare(&mut g, &mut tx, 0);
    let mut reply = [0u8; 64];
    let icr = read(HOST_B, 3, VF1_BAR_128K + 0x1500);
    let Some(GateOffer::Served(n)) = g.serve_destination(B1, &icr, &mut reply) else {
        panic!("a read of ICR is answered");
    };
    let c = Tlp::new_checked(&reply[..n]).unwrap();
    assert_eq!(
        (c.status(), c.completer_id(), c.requester_id(), c.tag()),
        (CplStatus::Ur, VF1, HOST_B, 3)
    );
    let doorbell = write(HOST_B, VF1_BAR_128K + 0xe018, 1);
    assert_eq!(
        g.serve_destination(B1, &doorbell, &mut reply),
        Some(GateOffer::Absorbed)
    );
    assert_eq!(g.stats().destination_refused, 2);
    assert!(released(&mut g).is_empty(), "nothing went to the function");
    // The source's requests are not the destination's business.
    let source = read(HOST_A, 4, VF1_BAR_128K + 0x1500);
    assert_eq!(g.serve_destination(B1, &source, &mut reply), None);
}

#[test]
fn gate_destination_configuration_writes_stay_its_own() {
    let (mut g, mut tx) = gate();
    prepare(&mut g, &mut tx, 0);
    let before = cfg_read(&mut g, HOST_B, 0x3c).unwrap();
    cfg_write(&mut g, HOST_B, 0x3c, (before & !0xff) | 0x5a);
    assert_eq!(cfg_read(&mut g, HOST_B, 0x3c).unwrap() & 0xff, 0x5a);
    // The source's instantiation is its own.
    pause(&mut g, &mut tx, B1, IdMode::Common, None, 1);
    assert_eq!(
        cfg_read(&mut g, HOST_A, 0x3c).unwrap() & 0xff,
        before & 0xff
    );
    assert_eq!(g.stats().vdi_config_writes, 1);
}

#[test]
fn gate_vdi_raises_the_completion_vector() {
    let (mut g, mut tx) = gate();
    let vdi = g.vdi_mut(B1).unwrap();
    let info = vdi.config().msix().expect("the function has MSI-X");
    // Its host programs vector 0 and enables MSI-X.
    vdi.msix_mut()
        .unwrap()
        .set_entry(0, [0xfee0_0000, 0, 0x0000_0041, 0]);
    // MSI-X Enable: bit 15 of Message Control, the upper half of the
    // capability's first DW.
    let mut dw = vdi.config().read(info.offset);
    dw[3] |= 0x80;
    vdi.config_mut().write(info.offset, 0b1000, dw);
    command(
        &mut g,
        &mut tx,
        GateCommand::Complete {
            binding: B1,
            signal: CompletionSignal::Msix(0),
        },
        0,
    );
    let out = released(&mut g);
    assert_eq!(out.len(), 1, "one interrupt");
    let (dir, tlp) = &out[0];
    let t = Tlp::new_checked(&tlp[..]).unwrap();
    assert_eq!(
        (*dir, t.kind(), t.address()),
        (Direction::Up, Some(Kind::MWr), 0xfee0_0000)
    );
    assert_eq!(t.payload(), 0x41u32.to_le_bytes());
    assert_eq!(t.requester_id(), VF1, "from the function");
}

/// VM migrations of a device that interrupts after every second DMA write
/// of each function, busy enough that several are raised in each pause;
/// the device logs what it raised, the hosts what they received.
fn interrupting_migrations() -> Deterministic<Part> {
    let t = default_topology();
    let schedule = Schedule {
        vm_migrations: 6,
        start: 1_000_000,
        interval: 1_000_000,
        ..Schedule::default()
    };
    let mut c = scenario_config(4_000_000.0, 8, schedule);
    c.interrupt_every = 1;
    c.arrival_log = 200_000;
    let mut d = fabric(&t, &c);
    run_out(&mut d, &c);
    assert_eq!(orchestrator(&d).counts(), (6, 0));
    assert_clean(&integrity(&d));
    assert!(hosts(&d).iter().all(|h| h.arrivals().missed() == 0));
    d
}

/// Whether a host's arrival is an interrupt with `data` (not a VDI's
/// completion vector).
fn interrupt(e: &traffic::Received, data: u32) -> bool {
    e.kind == Some(Kind::MWr) && e.stamp.is_none() && e.data == Some(data)
}

#[test]
fn claim_6_interrupts_raised_while_paused_reach_the_host_once_after_what_was_held() {
    let d = interrupting_migrations();
    let t = default_topology();
    let device = devices(&d)[0];
    assert_eq!(device.raised().missed(), 0);
    let mut pauses_with_several = 0;
    for r in orchestrator(&d).records() {
        let stream = assembly::vm_stream(r.plan.binding) + 1;
        let (closed, reopened) = (r.closed.unwrap(), r.reopened.unwrap());
        // Raised while the binding was paused (leaving a few microseconds
        // for the last to reach the pause point before it reopened).
        let during: Vec<u64> = device
            .raised()
            .entries()
            .iter()
            .filter(|e| e.at >= closed && e.at + 1_000 < reopened)
            .filter_map(|e| e.stamp.filter(|(s, _)| *s == stream).map(|(_, seq)| seq))
            .collect();
        let Some(&last_signalled) = during.last() else {
            continue;
        };
        pauses_with_several += usize::from(during.len() > 1);
        // What the destination host received of the function from the
        // reopening on: its DMA writes and its interrupts, in order.
        let arrivals: Vec<&traffic::Received> = hosts(&d)[r.plan.to]
            .arrivals()
            .entries()
            .iter()
            .filter(|e| e.at >= reopened)
            .filter(|e| e.stamp.is_some_and(|(s, _)| s == stream) || interrupt(e, stream))
            .collect();
        let first = arrivals
            .iter()
            .position(|e| interrupt(e, stream))
            .unwrap_or_else(|| panic!("{r:?}: no interrupt at the destination"));
        // The message the VM programmed at its new host: the host's MSI
        // window, the function's data.
        let host = &t.hosts[r.plan.to];
        assert_eq!(arrivals[first].address, host.dma[1].base, "{r:?}");
        // Behind every DMA write the interrupts raised meanwhile signal.
        assert!(
            arrivals[..first]
                .iter()
                .any(|e| e.stamp == Some((stream, last_signalled))),
            "{r:?}: the interrupt passed the write it signals"
        );
        // Once: each later interrupt follows a write sent after the pause.
        for (k, e) in arrivals.iter().enumerate().skip(first + 1) {
            if interrupt(e, stream) {
                let before = arrivals[k - 1].stamp.map(|(_, seq)| seq);
                assert!(
                    before.is_some_and(|seq| seq > last_signalled),
                    "{r:?}: a second interrupt for the pause, after {before:?}"
                );
            }
        }
    }
    assert!(
        pauses_with_several > 0,
        "no pause saw two interrupts raised"
    );
    // Raises of a pending vector merged: what the device raised is what
    // the hosts received and what merged while held, nothing else.
    let s = fabric_gate(&d).stats();
    let merged = s.interrupts_held - s.interrupts_released;
    assert!(merged > 0);
    let received: u64 = hosts(&d).iter().map(|h| h.interrupts()).sum();
    assert_eq!(device.interrupts(), received + merged);
}

#[test]
fn gate_vdi_sends_vendor_messages_upstream() {
    let (mut g, mut tx) = gate();
    let signal = CompletionSignal::VendorMessage {
        vendor_id: 0x8086,
        word: 7,
    };
    command(
        &mut g,
        &mut tx,
        GateCommand::Complete {
            binding: B1,
            signal,
        },
        0,
    );
    let out = released(&mut g);
    assert_eq!(out.len(), 1);
    let view = Tlp::new_checked(&out[0].1[..]).unwrap();
    let repr = Repr::parse(&view).unwrap();
    assert_eq!(repr.kind(), Kind::Msg);
    assert_eq!(repr.requester, VF1);
    let Body::Message { code, fields, .. } = repr.body else {
        panic!("{repr:?}");
    };
    assert_eq!(code.byte(), 0x7f, "Vendor-Defined Type 1");
    assert_eq!(&fields[2..4], &0x8086u16.to_be_bytes());
    assert_eq!(&fields[4..8], &7u32.to_be_bytes());
}

/// The default topology: binding 0's completion indicated by MSI-X
/// vector 1, binding 1's by a vendor-defined message.
fn both_completion_forms() -> Topology {
    let t = default_topology();
    assert_eq!(
        (t.bindings[0].completion, t.bindings[1].completion),
        (Completion::Msix(1), Completion::Message)
    );
    t
}

#[test]
fn claim_8_completion_is_indicated_to_the_destination_host_in_either_form() {
    let t = both_completion_forms();
    // Binding 0 moves from host-a to host-b, then binding 1 from host-b
    // to host-a.
    let schedule = Schedule {
        vm_migrations: 2,
        start: 2_000_000,
        interval: 3_000_000,
        ..Schedule::default()
    };
    let c = scenario_config(200_000.0, 10, schedule);
    let mut d = fabric(&t, &c);
    run_out(&mut d, &c);
    let o = orchestrator(&d);
    assert_eq!(o.counts(), (2, 0));
    let records = o.records();
    let moved = o.plane().topology();
    let h = hosts(&d);
    let (to_b, to_a) = (h[1].indications(), h[0].indications());
    assert_eq!(
        (to_a.len(), to_b.len()),
        (1, 1),
        "one each, at its destination"
    );
    // Binding 0's at host-b: the completion vector's write, to the
    // address and with the data its VM programmed, once the last held TLP
    // was released.
    assert_eq!(
        to_b[0].form,
        IndicationForm::Msix {
            address: 0xfee0_0000,
            data: COMPLETION_DATA | (assembly::vm_stream(0) + 1),
        }
    );
    assert!(
        to_b[0].at > records[0].reopened.unwrap(),
        "{:?}",
        records[0]
    );
    // Binding 1's at host-a: the vendor message from the function, as
    // host-a sees it now.
    assert_eq!(
        to_a[0].form,
        IndicationForm::Message {
            requester: moved.bindings[1].host_id,
            vendor_id: 0x8086,
            word: 1,
        }
    );
    assert!(
        to_a[0].at > records[1].reopened.unwrap(),
        "{:?}",
        records[1]
    );
    // Neither was taken for the function's own interrupts or data.
    assert_clean(&integrity(&d));
}

#[test]
fn claim_9_after_completion_the_function_serves_what_the_vdi_could() {
    let t = default_topology();
    let mut c = scenario_config(1_000_000.0, 10, one_migration());
    c.arrival_log = 100_000;
    let mut d = fabric(&t, &c);
    // Up to the end of the migration; then what the VDI had served so far.
    d.run_until(u64::MAX, |d| {
        orchestrator(d)
            .records()
            .first()
            .is_some_and(|r| r.finished.is_some())
            || d.now() > 1_000_000_000
    });
    let finished = orchestrator(&d).records()[0]
        .finished
        .expect("the migration finished");
    // Binding 0 is nic0.vf1: the gate's function 1.
    let function = Bdf(t.endpoints[0].id.0 + 1);
    let served = |d: &Deterministic<Part>| {
        let s = fabric_gate(d).vdi(1).unwrap().stats();
        (s.config_reads, s.config_writes, s.memory_reads)
    };
    let at_completion = served(&d);
    run_out(&mut d, &c);
    // Configuration requests, which a VDI can complete, reached the
    // function itself after the completion, and its VDI served none.
    let device = devices(&d)[0].arrivals().entries();
    let to_function = device
        .iter()
        .filter(|e| {
            e.at > finished
                && matches!(e.kind, Some(Kind::CfgRd0 | Kind::CfgWr0))
                && (e.address >> 16) as u16 == function.0
        })
        .count();
    assert!(
        to_function > 10,
        "{to_function} configuration requests reached the function"
    );
    assert_eq!(
        served(&d),
        at_completion,
        "the VDI served nothing after the completion"
    );
    assert_eq!(fabric_gate(&d).vdi(1).unwrap().mode(), Mode::PassThrough);
    assert_clean(&integrity(&d));
}

/// A whole fabric run through a VM migration of binding 0 (the device
/// keeps sending DMA: upstream is the way with traffic to hold) and then
/// an endpoint migration of it (the VM keeps writing: downstream), every
/// host and the device logging what they received.
fn one_migration_of_each_kind_logged() -> Deterministic<Part> {
    let t = default_topology();
    let schedule = Schedule {
        vm_migrations: 1,
        endpoint_migrations: 1,
        start: 2_000_000,
        interval: 3_000_000,
        ..Schedule::default()
    };
    let mut c = scenario_config(1_000_000.0, 10, schedule);
    c.arrival_log = 100_000;
    let mut d = fabric(&t, &c);
    run_out(&mut d, &c);
    assert_eq!(
        orchestrator(&d).completed_by_kind(),
        (1, 1),
        "one of each kind"
    );
    assert!(hosts(&d).iter().all(|h| h.arrivals().missed() == 0));
    d
}

/// The tracked writes of `stream` that a log shows, in order of arrival.
fn writes_of(log: &[traffic::Received], stream: u32) -> Vec<traffic::Received> {
    log.iter()
        .filter(|e| e.kind == Some(Kind::MWr) && e.stamp.is_some_and(|(s, _)| s == stream))
        .copied()
        .collect()
}

#[test]
fn claim_10_traffic_is_blocked_both_ways_during_migration() {
    let d = one_migration_of_each_kind_logged();
    let o = orchestrator(&d);
    let device = devices(&d)[0].arrivals().entries();
    let h = hosts(&d);
    // What each side received of a stream: the VM's writes at the device,
    // the function's DMA at whichever host.
    let down =
        |stream: u32| -> Vec<u64> { writes_of(device, stream).iter().map(|e| e.at).collect() };
    let up = |stream: u32| -> Vec<u64> {
        h.iter()
            .flat_map(|h| writes_of(h.arrivals().entries(), stream))
            .map(|e| e.at)
            .collect()
    };
    for r in o.records() {
        let (closed, reopened) = (r.closed.unwrap(), r.reopened.unwrap());
        assert!(closed < reopened, "{r:?}");
        let b = r.plan.binding;
        let other = 1 - b;
        let inside = |at: &u64| *at > closed && *at < reopened;
        let (mine_down, mine_up) = (down(assembly::vm_stream(b)), up(assembly::vm_stream(b) + 1));
        // Neither way reached its receiver while the binding was closed.
        assert!(
            !mine_down.iter().any(inside),
            "{r:?}: the device received the VM's writes"
        );
        assert!(
            !mine_up.iter().any(inside),
            "{r:?}: a host received the function's DMA"
        );
        // The other binding's traffic flowed meanwhile: the fabric was live.
        assert!(down(assembly::vm_stream(other)).iter().any(inside), "{r:?}");
        // The way that had traffic to hold received it before the close
        // and again from the reopening on, the held TLPs first.
        let held = match r.plan.kind {
            migrate::MigrationKind::Vm => &mine_up,
            migrate::MigrationKind::Endpoint => &mine_down,
        };
        assert!(held.iter().any(|&at| at <= closed), "{r:?}");
        let resumed = held.iter().copied().filter(|&at| at >= reopened).min();
        assert!(
            resumed.is_some_and(|at| at - reopened <= 10_000),
            "{r:?}: resumed at {resumed:?}"
        );
    }
    assert!(fabric_gate(&d).stats().released > 0);
    assert_clean(&integrity(&d));
}

#[test]
fn claim_11_hosts_and_functions_see_only_flow_control() {
    let t = default_topology();
    let schedule = Schedule {
        vm_migrations: 20,
        start: 1_000_000,
        interval: 1_000_000,
        ..Schedule::default()
    };
    let d = migrate(&t, 1_000_000.0, 25, schedule);
    assert_eq!(orchestrator(&d).counts(), (20, 0));
    let g = fabric_gate(&d);
    assert!(g.stats().held > 0, "traffic was held");
    // Nobody saw an error, a stray TLP or a late completion: only the
    // migration's own indication reached a host.
    let i = integrity(&d);
    assert_clean(&i);
    let h = hosts(&d);
    // The device's MSI-X interrupts all reached the host its VM was on.
    let raised = devices(&d)[0].interrupts();
    assert!(raised > 0);
    assert_eq!(h.iter().map(|h| h.interrupts()).sum::<u64>(), raised);
    assert_eq!(h.iter().map(|h| h.indications_received()).sum::<u64>(), 20);
    // Held TLPs kept their credits: the senders were held back by flow
    // control, and no pause point was ever full.
    assert_eq!(g.stats().refused_full, 0);
}

#[test]
fn claim_12_held_traffic_is_released_in_order_to_the_destination_translated() {
    let d = one_migration_of_each_kind_logged();
    let o = orchestrator(&d);
    let t = default_topology();
    let device = devices(&d)[0].arrivals().entries();
    let h = hosts(&d);
    let nic = &t.endpoints[0];
    for r in o.records() {
        let reopened = r.reopened.unwrap();
        let b = r.plan.binding;
        match r.plan.kind {
            migrate::MigrationKind::Vm => {
                // The function's DMA: up to the close at the origin host,
                // from the reopening on at the destination, in its host's
                // DMA window, every sequence number once and in order.
                let stream = assembly::vm_stream(b) + 1;
                let at_origin = writes_of(h[r.plan.from].arrivals().entries(), stream);
                let at_destination = writes_of(h[r.plan.to].arrivals().entries(), stream);
                let after: Vec<_> = at_destination.iter().filter(|e| e.at >= reopened).collect();
                assert!(!after.is_empty(), "{r:?}");
                assert!(at_origin.iter().all(|e| e.at <= r.closed.unwrap()), "{r:?}");
                let last_before = at_origin.last().unwrap().stamp.unwrap().1;
                let seqs: Vec<u64> = after.iter().map(|e| e.stamp.unwrap().1).collect();
                assert_eq!(
                    seqs[0],
                    last_before + 1,
                    "{r:?}: the first released follows on"
                );
                assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{r:?}: {seqs:?}");
                let dma = t.hosts[r.plan.to].dma[0];
                let window = dma.base..dma.base + dma.size;
                assert!(after.iter().all(|e| window.contains(&e.address)));
            }
            migrate::MigrationKind::Endpoint => {
                // The VM's writes: to the old function's BAR up to the
                // close, to the new function's from the reopening on (the
                // held ones re-pointed), in order.
                let stream = assembly::vm_stream(b);
                let bar = |f: usize| {
                    let base = nic.fabric_bar + f as u64 * nic.bar_size;
                    base..base + nic.bar_size
                };
                let writes = writes_of(device, stream);
                let (before, after): (Vec<&traffic::Received>, Vec<&traffic::Received>) =
                    writes.iter().partition(|e| e.at < reopened);
                assert!(before.iter().all(|e| bar(r.plan.from).contains(&e.address)));
                assert!(!after.is_empty(), "{r:?}");
                assert!(
                    after.iter().all(|e| bar(r.plan.to).contains(&e.address)),
                    "{r:?}: every write after the move went to function {}",
                    r.plan.to
                );
                let seqs: Vec<u64> = writes.iter().map(|e| e.stamp.unwrap().1).collect();
                assert!(
                    seqs.windows(2).all(|w| w[1] == w[0] + 1),
                    "{r:?}: in order, none missing"
                );
            }
        }
    }
    assert_clean(&integrity(&d));
}

#[test]
fn gate_drain_waits_out_a_stall_of_the_core_that_answers() {
    let (mut g, mut tx, mut watch) = gate_with_stall_watch();
    let mut reply = [0u8; 64];
    let r = read(HOST_A, 3, VF1_BAR);
    assert_eq!(g.offer(B1, down(), &r, &mut reply, 0), GateOffer::Pass);
    watch.poll(0);
    pause(&mut g, &mut tx, B1, IdMode::Different, None, 1_000);
    // The completer's core stops at 1 µs: 3 ms later the drain, with a
    // 1 ms budget, is still waiting — the completion could not be sent.
    g.poll(3_001_000);
    assert_eq!(g.state(B1), Some(State::Draining));
    // The core comes back (polled every 10 µs, no stall), and still no
    // completion comes: the budget runs out after 1 ms of the drain that
    // was not stall, at 1 µs + 2.991 ms stalled + 1 ms.
    let mut now = 3_001_000;
    while now <= 3_991_000 {
        watch.poll(now);
        g.poll(now);
        assert_eq!(g.state(B1), Some(State::Draining), "at {now}");
        now += 10_000;
    }
    watch.poll(4_001_000);
    g.poll(4_001_000);
    assert_eq!(g.state(B1), Some(State::Closed));
    assert!(
        g.events(B1).iter().any(|e| matches!(
            e.kind,
            EventKind::Closed {
                budget_expired: true,
                ..
            }
        )),
        "{:?}",
        g.events(B1)
    );
}

#[test]
fn blackouts_during_which_a_core_stalled_are_told_apart() {
    let (mut g, mut tx, mut watch) = gate_with_stall_watch();
    // Two pauses of 20 µs each; the watched core runs through the first and
    // misses 15 µs of rounds in the second.
    for (start, polls) in [(0u64, 1_000u64), (100_000, 15_000)] {
        watch.poll(start);
        pause(&mut g, &mut tx, B1, IdMode::Common, None, start);
        let mut now = start;
        while now < start + 20_000 {
            now += polls.min(start + 20_000 - now);
            watch.poll(now);
            g.poll(now);
        }
        release(&mut g, &mut tx, B1, now);
        assert_eq!(g.state(B1), Some(State::Open));
    }
    let b = g.blackouts();
    assert_eq!(b.per_migration.len(), 2);
    assert_eq!(b.per_migration_unstalled.len(), 1);
}

#[test]
fn gate_completions_drain_before_close() {
    let (mut g, mut tx) = gate();
    let mut reply = [0u8; 64];
    // A read in flight when the pause begins.
    let r = read(HOST_A, 3, VF1_BAR);
    assert_eq!(g.offer(B1, down(), &r, &mut reply, 0), GateOffer::Pass);
    pause(&mut g, &mut tx, B1, IdMode::Different, None, 1);
    assert_eq!(g.state(B1), Some(State::Draining));
    // While draining, posted writes flow, new reads wait …
    let w = write(HOST_A, VF1_BAR, 1);
    assert_eq!(g.offer(B1, down(), &w, &mut reply, 2), GateOffer::Pass);
    let r2 = read(HOST_A, 4, VF1_BAR);
    assert_eq!(g.offer(B1, down(), &r2, &mut reply, 2), GateOffer::Held);
    // … and the completion in flight passes; then the point closes.
    let cpl = read_completion(HOST_A, 3);
    assert_eq!(g.offer(B1, up(), &cpl, &mut reply, 3), GateOffer::Pass);
    assert_eq!(g.state(B1), Some(State::Closed));
    let events = g.events(B1);
    assert!(
        matches!(events[0].kind, EventKind::Draining { outstanding: 1 }),
        "{events:?}"
    );
    assert!(
        matches!(
            events[1].kind,
            EventKind::Closed {
                outstanding: 0,
                budget_expired: false
            }
        ),
        "{events:?}"
    );
    // Released after the move under the destination's requester ID, so its
    // completion finds the VM where it went.
    command(
        &mut g,
        &mut tx,
        GateCommand::Release {
            binding: B1,
            requester: Some((HOST_A, HOST_B)),
            retarget: None,
        },
        4,
    );
    let out = released(&mut g);
    assert_eq!(out.len(), 1);
    assert_eq!(
        Tlp::new_checked(&out[0].1[..]).unwrap().requester_id(),
        HOST_B
    );
}

/// Claims 13 and 14 on the whole fabric, from the hosts' side: VM
/// migrations while every write is read back, so reads are always in
/// flight when a migration quiesces.
fn read_back_migrations(mode: IdMode) -> Deterministic<Part> {
    let t = topology_in(mode);
    let schedule = Schedule {
        vm_migrations: 10,
        start: 1_000_000,
        interval: 800_000,
        ..Schedule::default()
    };
    let mut c = scenario_config(1_000_000.0, 10, schedule);
    c.read_every = 1;
    c.arrival_log = 100_000;
    let mut d = fabric(&t, &c);
    run_out(&mut d, &c);
    assert_eq!(orchestrator(&d).counts(), (10, 0), "{mode:?}");
    assert_clean(&integrity(&d));
    d
}

/// When the completions of binding `b`'s reads reached any host.
fn completions_of(d: &Deterministic<Part>, b: usize) -> Vec<u64> {
    hosts(d)
        .iter()
        .flat_map(|h| h.arrivals().entries())
        .filter(|e| {
            e.kind == Some(Kind::CplD) && e.stamp.is_some_and(|(s, _)| s == assembly::vm_stream(b))
        })
        .map(|e| e.at)
        .collect()
}

/// The pause point events of binding `b`'s function (binding 0 is VF 1,
/// binding 1 VF 2, in the default topology).
fn point_events(d: &Deterministic<Part>, b: usize) -> Vec<EventKind> {
    fabric_gate(d)
        .events(b + 1)
        .into_iter()
        .map(|e| e.kind)
        .collect()
}

#[test]
fn claim_13_in_the_fabric_completions_in_flight_drain_before_the_close() {
    let d = read_back_migrations(IdMode::Different);
    // Every close waited for the reads in flight (none left, no budget
    // expired), and some closes had reads to wait for.
    let mut drains_with_reads = 0;
    for b in 0..2 {
        for kind in point_events(&d, b) {
            match kind {
                EventKind::Draining { outstanding } if outstanding > 0 => drains_with_reads += 1,
                EventKind::Closed {
                    outstanding,
                    budget_expired,
                } => assert_eq!((outstanding, budget_expired), (0, false)),
                _ => {}
            }
        }
    }
    assert!(
        drains_with_reads > 0,
        "no migration had reads in flight to drain"
    );
    // The hosts' side: no completion of the binding's VM was held.
    for r in orchestrator(&d).records() {
        let (closed, reopened) = (r.closed.unwrap(), r.reopened.unwrap());
        let cpls = completions_of(&d, r.plan.binding);
        assert!(
            !cpls.iter().any(|&at| at > closed && at < reopened),
            "{r:?}"
        );
    }
}

#[test]
fn claim_14_in_the_fabric_a_common_id_closes_at_once_and_loses_nothing() {
    let d = read_back_migrations(IdMode::Common);
    let mut closed_over_reads = 0;
    for b in 0..2 {
        for kind in point_events(&d, b) {
            match kind {
                EventKind::Draining { .. } => panic!("a drain with a common ID"),
                EventKind::Closed { outstanding, .. } if outstanding > 0 => closed_over_reads += 1,
                _ => {}
            }
        }
    }
    // It closed with reads in flight; their completions were held and
    // followed the VM: nothing lost, none unexpected (read_back_migrations
    // checks the hosts' integrity).
    assert!(closed_over_reads > 0, "no close had reads in flight");
}

#[test]
fn gate_common_id_closes_at_once() {
    let (mut g, mut tx) = gate();
    let mut reply = [0u8; 64];
    let r = read(HOST_A, 3, VF1_BAR);
    assert_eq!(g.offer(B1, down(), &r, &mut reply, 0), GateOffer::Pass);
    pause(&mut g, &mut tx, B1, IdMode::Common, None, 1);
    assert_eq!(
        g.state(B1),
        Some(State::Closed),
        "no drain with a common ID"
    );
    // The completion in flight is held and follows the binding afterwards.
    let cpl = read_completion(HOST_A, 3);
    assert_eq!(g.offer(B1, up(), &cpl, &mut reply, 2), GateOffer::Held);
}

#[test]
fn gate_pause_points_hold_every_traffic_type_toward_the_function() {
    let (mut g, mut tx) = gate();
    pause(&mut g, &mut tx, B1, IdMode::Common, None, 0);
    let mut reply = [0u8; 64];
    let posted = write(HOST_A, VF1_BAR, 1);
    let non_posted = read(HOST_A, 1, VF1_BAR);
    // A completion toward the function (its own read of host memory).
    let mut to_function = read_completion(HOST_A, 9);
    Tlp::new_checked(&mut to_function[..])
        .unwrap()
        .set_requester_id(VF1);
    for tlp in [&posted, &non_posted, &to_function] {
        assert_eq!(g.offer(B1, down(), tlp, &mut reply, 1), GateOffer::Held);
    }
    assert_eq!(g.held(B1), (3, 0));
}

/// Endpoint migrations while each VM writes, reads back every second
/// write, and makes a configuration request and a register read after
/// every second write: every kind of request is in flight when a binding
/// closes. Hosts log what they sent and received, the device what it
/// received.
fn busy_endpoint_migrations() -> Deterministic<Part> {
    let t = default_topology();
    let schedule = Schedule {
        endpoint_migrations: 10,
        start: 1_000_000,
        interval: 400_000,
        ..Schedule::default()
    };
    let mut c = scenario_config(2_000_000.0, 6, schedule);
    c.read_every = 2;
    c.config_every = 2;
    c.register_every = 2;
    c.arrival_log = 200_000;
    let mut d = fabric(&t, &c);
    run_out(&mut d, &c);
    assert_eq!(orchestrator(&d).counts(), (10, 0));
    assert_clean(&integrity(&d));
    assert!(hosts(&d)
        .iter()
        .all(|h| h.arrivals().missed() + h.sent().missed() == 0));
    d
}

/// What a host request is, by its kind and where in the BAR at `bar` it
/// goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Request {
    Write,
    Read,
    Configuration,
    Register,
}

fn request_of(e: &traffic::Received, bar: u64) -> Option<Request> {
    match e.kind? {
        Kind::MWr => Some(Request::Write),
        Kind::MRd if e.address < bar + traffic::REGISTER_BLOCK => Some(Request::Register),
        Kind::MRd => Some(Request::Read),
        Kind::CfgRd0 | Kind::CfgWr0 => Some(Request::Configuration),
        _ => None,
    }
}

/// A request a host's VM sent, as the host logged it.
#[derive(Debug)]
struct Sent {
    host: usize,
    request: traffic::Received,
    kind: Request,
    /// When its completion came back (non-posted requests).
    completed: Option<u64>,
    /// Whether the device received it (before it completed).
    reached_device: bool,
}

/// What the device received from host `h`'s root complex.
fn device_arrivals_from<'a>(
    d: &'a Deterministic<Part>,
    t: &Topology,
    h: usize,
) -> Vec<&'a traffic::Received> {
    let fabric_requester = Bdf(u16::from(t.hosts[h].fabric_bus) << 8);
    devices(d)[0]
        .arrivals()
        .entries()
        .iter()
        .filter(|e| e.requester == fabric_requester)
        .collect()
}

/// Every request the hosts' VMs sent (one VM a host, no VM migrations),
/// matched with its completion and with its arrival at the device.
fn sent_requests(d: &Deterministic<Part>, t: &Topology) -> Vec<Sent> {
    use std::collections::{HashMap, HashSet};
    let mut all = Vec::new();
    for (h, host) in hosts(d).iter().enumerate() {
        let bar = t.bindings.iter().find(|b| b.host == h).unwrap().bar.base;
        // Times by tag, in order: the host's completions; the device's
        // requests by kind and tag; the device's writes by stamp.
        let mut completions: HashMap<u16, Vec<u64>> = HashMap::new();
        for a in host.arrivals().entries() {
            if matches!(a.kind, Some(Kind::Cpl | Kind::CplD)) {
                completions.entry(a.tag).or_default().push(a.at);
            }
        }
        let mut requests: HashMap<(Option<Kind>, u16), Vec<u64>> = HashMap::new();
        let mut writes = HashSet::new();
        for e in device_arrivals_from(d, t, h) {
            match e.kind {
                Some(Kind::MWr) => {
                    writes.insert(e.stamp);
                }
                kind => requests.entry((kind, e.tag)).or_default().push(e.at),
            }
        }
        let first_from = |times: Option<&Vec<u64>>, at: u64| {
            let times = times?;
            times.get(times.partition_point(|&t| t < at)).copied()
        };
        for request in host.sent().entries() {
            let Some(kind) = request_of(request, bar) else {
                continue;
            };
            let (completed, reached_device) = if kind == Request::Write {
                (None, writes.contains(&request.stamp))
            } else {
                // Its completion: the first with its tag after it was sent
                // (the tag is free again only then). It reached the device
                // if the device saw its kind and tag in between.
                let completed = first_from(completions.get(&request.tag), request.at)
                    .unwrap_or_else(|| panic!("{request:?} never completed"));
                let arrived = first_from(requests.get(&(request.kind, request.tag)), request.at);
                (Some(completed), arrived.is_some_and(|at| at <= completed))
            };
            all.push(Sent {
                host: h,
                request: *request,
                kind,
                completed,
                reached_device,
            });
        }
    }
    all
}

/// From the quiesce (a drain first, with different IDs) to the reopening.
fn paused(r: &migrate::Record) -> (u64, u64) {
    (
        r.phases[Phase::Quiesce as usize].unwrap(),
        r.reopened.unwrap(),
    )
}

fn closed(r: &migrate::Record) -> (u64, u64) {
    (r.closed.unwrap(), r.reopened.unwrap())
}

fn inside(at: u64, (from, to): (u64, u64)) -> bool {
    at > from && at < to
}

#[test]
fn claim_15_while_closed_the_function_gets_nothing_and_its_vdi_completes_configuration_and_registers(
) {
    let d = busy_endpoint_migrations();
    let t = default_topology();
    let records = orchestrator(&d).records();
    // The device received nothing from a host while its binding was
    // closed (each host's VM is the only one on its binding).
    for r in records {
        let h = t.bindings[r.plan.binding].host;
        let at_device = device_arrivals_from(&d, &t, h);
        assert!(!at_device.iter().any(|e| inside(e.at, closed(r))), "{r:?}");
    }
    let sent = sent_requests(&d, &t);
    let sent_while_closed: std::collections::HashSet<Request> = sent
        .iter()
        .filter(|s| records.iter().any(|r| inside(s.request.at, closed(r))))
        .map(|s| s.kind)
        .collect();
    assert_eq!(
        sent_while_closed.len(),
        4,
        "writes, reads, configuration requests and register reads were all sent while closed: {sent_while_closed:?}"
    );
    let mut answered_without_the_device = std::collections::HashMap::new();
    for s in sent.iter().filter(|s| !s.reached_device) {
        let completed = s.completed.unwrap_or_else(|| panic!("{s:?} was lost"));
        assert!(
            records.iter().any(|r| inside(completed, paused(r))),
            "{s:?} answered without the device while its binding was open"
        );
        assert!(
            matches!(s.kind, Request::Configuration | Request::Register),
            "{s:?}: only its VDI's kinds are answered without the function"
        );
        *answered_without_the_device.entry(s.kind).or_insert(0) += 1;
    }
    assert!(
        answered_without_the_device.len() == 2,
        "configuration requests and register reads completed by the VDIs while paused: {answered_without_the_device:?}"
    );
}

/// Claim 16 with claim 15: the pauses and VDIs above are in a fabric of
/// PCIe switch nodes. Each host's requests cross both nodes to the device
/// routed by address, arriving in the fabric's space (its ID for the
/// host's root complex, the function's BAR where the fabric placed it);
/// completions come back routed by ID into each host's own domain.
#[test]
fn claim_16_the_pauses_are_in_a_pcie_switch_fabric() {
    let d = busy_endpoint_migrations();
    let t = default_topology();
    let nic = &t.endpoints[0];
    let fabric_bars = nic.fabric_bar..nic.fabric_bar + (1 + nic.vfs as u64) * nic.bar_size;
    for (h, host) in t.hosts.iter().enumerate() {
        assert_ne!(host.attach.node, nic.attach.node, "two switches apart");
        let requester = host.requesters[0];
        let bar = t.bindings.iter().find(|b| b.host == h).unwrap().bar;
        let sent = hosts(&d)[h].sent().entries();
        assert!(sent.iter().all(|e| e.requester == requester));
        assert!(sent
            .iter()
            .filter(|e| matches!(e.kind, Some(Kind::MWr | Kind::MRd)))
            .all(|e| (bar.base..bar.base + bar.size).contains(&e.address)));
        let at_device = device_arrivals_from(&d, &t, h);
        assert!(!at_device.is_empty());
        assert_ne!(at_device[0].requester, requester, "translated");
        assert!(at_device
            .iter()
            .filter(|e| matches!(e.kind, Some(Kind::MWr | Kind::MRd)))
            .all(|e| fabric_bars.contains(&e.address)));
        let completions: Vec<_> = hosts(&d)[h]
            .arrivals()
            .entries()
            .iter()
            .filter(|e| matches!(e.kind, Some(Kind::Cpl | Kind::CplD)))
            .collect();
        assert!(!completions.is_empty());
        assert!(completions.iter().all(|e| e.requester == requester));
    }
    // Every request the device received came from a host's root complex
    // by its fabric ID, or from a gate (its VDI's writes made to the
    // function).
    let device = devices(&d)[0].arrivals().entries();
    let fabric_ids: Vec<Bdf> = t
        .hosts
        .iter()
        .map(|h| Bdf(u16::from(h.fabric_bus) << 8))
        .chain([lcore::gate::REPLAY_REQUESTER])
        .collect();
    assert!(device.iter().all(|e| fabric_ids.contains(&e.requester)));
}

#[test]
fn switch_refuses_a_malformed_tlp() {
    // Frames carry TLPs the switch checks as a PCIe switch does: a TLP
    // whose length field disagrees with its size is refused as malformed,
    // a well-formed one is routed.
    let t = default_topology();
    let tables = fabric::NodeTables::build(&t, 0);
    let mut state = fabric::NodeState::new(4);
    let mut reply = [0u8; 64];
    let mut good = write(Bdf(0), 0xfe00_0000, 1);
    let action = tables.forward(1, &mut good, &mut reply, &mut state, 0);
    assert!(matches!(action, fabric::Action::Forward(0)), "{action:?}");
    let mut bad = write(Bdf(0), 0xfe00_0000, 1);
    bad.truncate(bad.len() - 4);
    let action = tables.forward(1, &mut bad, &mut reply, &mut state, 0);
    assert!(
        matches!(action, fabric::Action::Drop(fabric::Refusal::Malformed)),
        "{action:?}"
    );
}

#[test]
fn claim_17_hosts_are_servers_with_their_own_domains() {
    // Both hosts use the same requester ID and the same BAR address for
    // their own function; the fabric keeps their traffic apart.
    let t = default_topology();
    assert_eq!(t.hosts[0].requesters, t.hosts[1].requesters);
    assert_eq!(t.bindings[0].bar, t.bindings[1].bar);
    let c = scenario_config(200_000.0, 5, Schedule::default());
    let mut d = fabric(&t, &c);
    run_out(&mut d, &c);
    let i = integrity(&d);
    assert_clean(&i);
    assert!(hosts(&d).iter().all(|h| h.writes() > 0));
}

#[test]
fn gate_vdi_serves_supported_operations_during_the_move() {
    let (mut g, mut tx) = gate();
    pause(&mut g, &mut tx, B1, IdMode::Common, None, 0);
    // Configuration reads complete at once at the source …
    assert!(cfg_read(&mut g, HOST_A, 0).is_some());
    // … memory traffic waits for the device.
    let mut reply = [0u8; 64];
    let w = write(HOST_A, VF1_BAR, 1);
    assert_eq!(g.offer(B1, down(), &w, &mut reply, 1), GateOffer::Held);
    assert_eq!(g.held(B1), (1, 0));
}

/// VF1's BAR when BARs are the template's 128 KiB.
const VF1_BAR_128K: u64 = 0x8002_0000;

/// A 1-DW register access in VF1's 128 KiB BAR.
/// A gate whose VDIs' BARs are placed where the fabric put their
/// functions' (128 KiB each), so they decode register accesses.
fn placed_gate() -> (Gate, Producer<GateCommand>) {
    let t = template();
    let functions = (0..4u16)
        .map(|f| {
            let id = Bdf(0x4000 + f);
            let bar = (0x8000_0000 + f as u64 * 0x2_0000, 0x2_0000);
            let mut vdi = Vdi::new(&t, id);
            vdi.place_bar(0, bar.0);
            (GatedFunction { function: id, bar }, Some(vdi))
        })
        .collect();
    let (tx, rx) = spsc::ring(64);
    (Gate::new(1, functions, rx, Duration::from_millis(1)), tx)
}

fn register(kind: Kind, tag: u16, offset: u64, value: u32) -> Vec<u8> {
    let mut b = vec![0u8; 32];
    let access = MemAccess::dwords(VF1_BAR_128K + offset, 1);
    let n = match kind {
        Kind::MWr => memory_write(&mut b, HOST_A, 0, access, &value.to_le_bytes()),
        _ => memory_read(&mut b, HOST_A, tag, access),
    }
    .unwrap();
    b.truncate(n);
    b
}

#[test]
fn gate_vdi_answers_register_reads_by_access_class() {
    let (mut g, mut tx) = placed_gate();
    let mut reply = [0u8; 64];
    // Open: writes pass to the function, and its VDI notes them.
    for (offset, value) in [(0x18, 0xabcd), (0xe018, 5), (0x5810, 0b0011)] {
        let w = register(Kind::MWr, 0, offset, value);
        assert_eq!(g.offer(B1, down(), &w, &mut reply, 0), GateOffer::Pass);
    }
    pause(&mut g, &mut tx, B1, IdMode::Common, None, 0);
    // A write while paused is held for the function, and the VDI's
    // registers already hold it.
    let w = register(Kind::MWr, 0, 0xe018, 6);
    assert_eq!(g.offer(B1, down(), &w, &mut reply, 1), GateOffer::Held);
    let mut read = |g: &mut Gate, tag: u16, offset: u64| {
        let r = register(Kind::MRd, tag, offset, 0);
        match g.offer(B1, down(), &r, &mut reply, 2) {
            GateOffer::Served(n) => {
                let c = Tlp::new_checked(&reply[..n]).unwrap();
                assert_eq!((c.tag(), c.status()), (tag, CplStatus::Sc));
                Some(u32::from_le_bytes(c.payload()[..4].try_into().unwrap()))
            }
            GateOffer::Held => None,
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(read(&mut g, 1, 0x18), Some(0xabcd), "plain storage");
    assert_eq!(read(&mut g, 2, 0xe018), Some(6), "a doorbell reads back");
    assert_eq!(read(&mut g, 3, 0x5810), Some(0b1100), "write 1 to clear");
    assert_eq!(read(&mut g, 4, 0x8), Some(0x0008_0783), "read-only");
    assert_eq!(
        read(&mut g, 5, 0x1500),
        None,
        "clearing on read: the device's"
    );
    assert_eq!(read(&mut g, 6, 0x2_0000), None, "past the VDI's BARs");
    assert_eq!(g.stats().vdi_register_reads, 4);
    // The held write and reads reach the function at release, in order.
    release(&mut g, &mut tx, B1, 3);
    let mut released = Vec::new();
    g.drain_released(|dir, tlp| {
        let t = Tlp::new_checked(tlp).unwrap();
        released.push((dir, t.kind(), t.tag()));
    });
    assert_eq!(
        released,
        [
            (Direction::Down, Some(Kind::MWr), 0),
            (Direction::Down, Some(Kind::MRd), 5),
            (Direction::Down, Some(Kind::MRd), 6),
        ]
    );
}

#[test]
fn claim_19_one_domain_uses_the_device_while_another_is_served_by_its_vdi() {
    let d = busy_endpoint_migrations();
    let t = default_topology();
    let sent = sent_requests(&d, &t);
    let mut at_once = 0;
    for r in orchestrator(&d).records() {
        let paused_host = t.bindings[r.plan.binding].host;
        let other = 1 - paused_host;
        let window = paused(r);
        let within = |s: &&Sent| {
            inside(s.request.at, window) && s.completed.is_some_and(|c| inside(c, window))
        };
        // The paused domain's requests its VDI completed meanwhile …
        let by_vdi = sent
            .iter()
            .filter(|s| s.host == paused_host && !s.reached_device)
            .filter(within)
            .count();
        // … while the other domain's went to the device and came back.
        let by_device = sent
            .iter()
            .filter(|s| s.host == other && s.reached_device)
            .filter(within)
            .count();
        at_once += usize::from(by_vdi > 0 && by_device > 0);
    }
    assert!(at_once > 0, "no pause had both at once");
    // What the report counts: the kinds of operation the VDIs completed on
    // their own, and the traffic of every class that passed beside them.
    let s = fabric_gate(&d).stats();
    assert!(s.vdi_config_reads > 0 && s.vdi_register_reads > 0, "{s:?}");
    assert!(s.beside_pauses.iter().all(|&n| n > 0), "{s:?}");
}

#[test]
fn gate_other_bindings_pass_while_one_is_paused() {
    let (mut g, mut tx) = gate();
    pause(&mut g, &mut tx, B1, IdMode::Common, None, 0);
    let mut reply = [0u8; 64];
    // Host B's function on the same device flows unheld.
    let w = write(HOST_B, 0x8002_0000, 1);
    let b2 = g.match_down(&w).unwrap();
    assert_eq!(b2, 2);
    assert_eq!(g.offer(b2, down(), &w, &mut reply, 1), GateOffer::Pass);
    let dma = write(VF2, 0x1_0000_0000, 1);
    assert_eq!(g.match_up(&dma), Some(2));
    assert_eq!(g.offer(2, up(), &dma, &mut reply, 1), GateOffer::Pass);
}

#[test]
fn claim_20_the_device_is_unaware_of_the_blocking() {
    let t = default_topology();
    let schedule = Schedule {
        vm_migrations: 10,
        start: 1_000_000,
        interval: 1_000_000,
        ..Schedule::default()
    };
    let d = migrate(&t, 1_000_000.0, 12, schedule);
    assert_eq!(orchestrator(&d).counts(), (10, 0));
    // The device received every host write once, in order, and every read
    // it answered was completed where its VM was.
    let e = devices(&d);
    assert_clean(e[0].integrity());
    assert_clean(&integrity(&d));
}

/// Claims 11 and 20, the device's side: in VM migrations the device is told
/// nothing, and keeps sending DMA toward the paused binding. Its held TLPs
/// keep the credits they consumed, so once its link's posted-header credits
/// are all held it waits, exactly as a PCIe port with a full partner, and
/// that is all it sees. Links between nodes that hold frames back for 2 ms
/// make pauses long enough for that.
#[test]
fn claims_11_20_a_device_that_keeps_sending_sees_only_its_credits_run_out() {
    use std::cell::Cell;
    use tlp::CreditType;
    // One binding: all the device's DMA is the migrating VM's.
    let path = configs().join("default.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let one = &text[..text.rfind("[[binding]]").unwrap()];
    let t = Topology::parse(&path, one).unwrap();
    assert_eq!(t.bindings.len(), 1);
    let schedule = Schedule {
        vm_migrations: 10,
        start: 1_000_000,
        interval: 1_000_000,
        budget: u64::MAX,
        deadline: 1_000_000_000,
        ..Schedule::default()
    };
    let mut c = scenario_config(2_000_000.0, 12, schedule);
    c.link_faults = Some(slow_links(11));
    let mut d = fabric(&t, &c);
    // Seen from the device while its DMA toward the paused binding is
    // held: no posted-header credit left, and its own TLPs waiting for one,
    // while nothing of it waits for a congested link at its node (so the
    // held TLPs are what keep its credits).
    let starved = Cell::new(0u32);
    let end = c.duration + 10_000_000;
    d.run_until(u64::MAX, |d| {
        let g = fabric_gate(d);
        let held_up: usize = (0..4).map(|b| g.held(b).1).sum();
        let device = devices(d)[0];
        let (ph, waiting) = device.credits(CreditType::PH);
        let gate_node = nodes(d).into_iter().find(|n| n.gate().is_some()).unwrap();
        if held_up >= 64 && ph == Some(0) && waiting > 0 && gate_node.waiting() == 0 {
            starved.set(starved.get() + 1);
        }
        d.now() >= end
    });
    assert!(starved.get() > 0, "the device never ran out of credits");
    assert_eq!(orchestrator(&d).counts(), (10, 0));
    let device = devices(&d)[0];
    // Told nothing: no command reached it in a VM migration; nothing it
    // sent was lost, and it is not waiting for anything any more.
    assert_eq!(device.commands(), 0);
    assert_eq!(device.credits(CreditType::PH).1, 0);
    assert_clean(device.integrity());
    assert_clean(&integrity(&d));
}

/// A run stopped by hand part way: hosts and devices offer nothing more, no
/// migration starts, the one under way finishes, and what was in flight is
/// delivered, so the report of the time it ran is whole.
#[test]
fn a_run_stopped_early_starts_nothing_new_and_drains_clean() {
    let t = default_topology();
    let schedule = Schedule {
        vm_migrations: 20,
        start: 1_000_000,
        interval: 1_000_000,
        ..Schedule::default()
    };
    let c = scenario_config(1_000_000.0, 30, schedule);
    let mut d = fabric(&t, &c);
    d.run_until(u64::MAX, |d| d.now() >= 10_000_000);
    c.schedule.stop.request();
    let writes = |d: &Deterministic<Part>| hosts(d).iter().map(|h| h.writes()).sum::<u64>();
    let dma = |d: &Deterministic<Part>| devices(d).iter().map(|e| e.dma_writes()).sum::<u64>();
    let (w, m) = (writes(&d), dma(&d));
    let started =
        orchestrator(&d).records().len() + usize::from(orchestrator(&d).in_progress().is_some());
    run_out(&mut d, &c);
    assert_eq!(writes(&d), w, "no host write after the stop");
    assert_eq!(dma(&d), m, "no DMA after the stop");
    let o = orchestrator(&d);
    assert!(o.in_progress().is_none(), "the one under way finished");
    assert_eq!(o.records().len(), started, "none started after the stop");
    assert!((1..20).contains(&started), "{started} of 20 started");
    assert_eq!(o.counts(), (started as u64, 0));
    assert_clean(&integrity(&d));
}

// ---------------------------------------------------------------------------
// Aborts, ID modes and faulty links.

/// Every phase in turn, then one migration left alone. Past the
/// switch-over (release, complete) an abort migrates the binding back.
fn abort_by_phase(k: u64) -> Option<Phase> {
    [
        Some(Phase::Prepare),
        Some(Phase::Quiesce),
        Some(Phase::Move),
        Some(Phase::Release),
        Some(Phase::Complete),
        None,
    ][(k % 6) as usize]
}

#[test]
fn aborts_in_every_phase_leave_the_source_working_in_both_id_modes() {
    for mode in [IdMode::Different, IdMode::Common] {
        let t = topology_in(mode);
        let schedule = Schedule {
            vm_migrations: 24,
            start: 1_000_000,
            interval: 500_000,
            abort: Some(abort_by_phase),
            ..Schedule::default()
        };
        let d = migrate(&t, 1_000_000.0, 14, schedule);
        let o = orchestrator(&d);
        assert!(o.in_progress().is_none(), "{mode:?}: {:?}", o.in_progress());
        assert_eq!(o.counts(), (4, 20), "{mode:?}");
        for (k, r) in o.records().iter().enumerate() {
            match (abort_by_phase(k as u64), &r.outcome) {
                (Some(p), Some(Outcome::Aborted { phase, .. })) => assert_eq!(*phase, p),
                (None, Some(Outcome::Completed)) => {}
                other => panic!("{mode:?} migration {k}: {other:?}"),
            }
        }
        // An abort past the switch-over leaves the binding where it was.
        let bindings = &o.plane().topology().bindings;
        let mut host = [0usize, 1];
        for r in o.records() {
            if r.outcome == Some(Outcome::Completed) {
                host[r.plan.binding] = r.plan.to;
            }
        }
        assert_eq!([bindings[0].host, bindings[1].host], host, "{mode:?}");
        let g = fabric_gate(&d);
        assert_eq!(g.stats().aborted, 8, "aborts after the pause began");
        // Each abort past the switch-over paused twice: there and back.
        assert_eq!(g.stats().migrations, 4 + 2 * 8, "{mode:?}");
        assert_eq!(g.state(1), Some(State::Open));
        assert_eq!(g.state(2), Some(State::Open));
        assert_clean(&integrity(&d));
    }
}

#[test]
fn the_budget_rolls_back_a_migration_that_would_black_out_too_long() {
    let t = default_topology();
    let schedule = Schedule {
        vm_migrations: 4,
        start: 1_000_000,
        budget: 0,
        ..Schedule::default()
    };
    let d = migrate(&t, 1_000_000.0, 8, schedule);
    let o = orchestrator(&d);
    assert_eq!(o.counts(), (0, 4));
    assert!(o.records().iter().all(|r| matches!(
        r.outcome,
        Some(Outcome::Aborted {
            phase: Phase::Move,
            reason: migrate::AbortReason::Budget { .. }
        })
    )));
    // Every VM is still where it started.
    assert_eq!(o.plane().topology().bindings[0].host, 0);
    assert_eq!(o.plane().topology().bindings[1].host, 1);
    assert_clean(&integrity(&d));
}

#[test]
fn migrations_over_faulty_links_lose_nothing() {
    let t = default_topology();
    let schedule = Schedule {
        vm_migrations: 20,
        start: 1_000_000,
        interval: 500_000,
        ..Schedule::default()
    };
    let mut c = scenario_config(500_000.0, 12, schedule);
    c.link_faults = Some(FaultConfig {
        drop: 0.01,
        duplicate: 0.01,
        reorder: 0.01,
        corrupt: 0.01,
        delay: 0.01,
        delay_ticks: 3,
        seed: 7,
    });
    let mut d = fabric(&t, &c);
    run_out(&mut d, &c);
    let o = orchestrator(&d);
    let (completed, aborted) = o.counts();
    assert_eq!(completed + aborted, 20);
    assert!(completed >= 10, "{completed} completed");
    assert_clean(&integrity(&d));
}

#[test]
fn the_gate_publishes_what_the_orchestrator_waits_for() {
    let (mut g, mut tx) = gate();
    let status = g.status();
    let mut reply = [0u8; 64];
    let w = write(HOST_A, VF1_BAR, 1);
    g.offer(B1, down(), &w, &mut reply, 0);
    let dma = write(VF1, 0x1_0000_0000, 1);
    g.offer(B1, up(), &dma, &mut reply, 0);
    pause(&mut g, &mut tx, B1, IdMode::Common, None, 1);
    let s = status.binding(B1).unwrap();
    use std::sync::atomic::Ordering::Acquire;
    assert_eq!(s.state.load(Acquire), STATE_CLOSED);
    assert_eq!(s.down_requests.load(Acquire), 1);
    assert_eq!(s.up_passed.load(Acquire), 1);
}

// ---------------------------------------------------------------------------
// Endpoint migrations: the function's state moves to another function.

const VF3: Bdf = Bdf(0x4003);
const VF3_BAR: u64 = 0x8003_0000;

#[test]
fn an_endpoint_migration_re_points_what_was_held_at_the_new_function() {
    let (mut g, mut tx) = gate();
    command(
        &mut g,
        &mut tx,
        GateCommand::PrepareFunction { binding: B1, to: 3 },
        0,
    );
    assert_eq!(
        g.vdi(3).unwrap().mode(),
        Mode::Shadow,
        "the destination's VDI is up"
    );
    pause(&mut g, &mut tx, B1, IdMode::Common, None, 1);
    command(&mut g, &mut tx, GateCommand::Standby { binding: 3 }, 1);
    let mut reply = [0u8; 64];
    let host_write = write(HOST_A, VF1_BAR + 0x40, 1);
    let dma = write(VF1, 0x1_0000_0000, 2);
    assert_eq!(
        g.offer(B1, down(), &host_write, &mut reply, 2),
        GateOffer::Held
    );
    assert_eq!(g.offer(B1, up(), &dma, &mut reply, 2), GateOffer::Held);
    // New traffic for the destination waits behind what the source held.
    let new_write = write(HOST_A, VF3_BAR + 0x80, 3);
    assert_eq!(
        g.offer(3, down(), &new_write, &mut reply, 3),
        GateOffer::Held
    );
    command(
        &mut g,
        &mut tx,
        GateCommand::Release {
            binding: B1,
            requester: None,
            retarget: Some(3),
        },
        4,
    );
    release(&mut g, &mut tx, 3, 4);
    let out = released(&mut g);
    let view: Vec<(Direction, u64, Bdf)> = out
        .iter()
        .map(|(d, t)| {
            let t = Tlp::new_checked(&t[..]).unwrap();
            (*d, t.address(), t.requester_id())
        })
        .collect();
    assert_eq!(
        view,
        [
            (Direction::Down, VF3_BAR + 0x40, HOST_A),
            (Direction::Up, 0x1_0000_0000, VF3),
            (Direction::Down, VF3_BAR + 0x80, HOST_A),
        ]
    );
    // Counted once, as one migration; the binding's counts moved along.
    assert_eq!(g.blackouts().per_migration.len(), 1);
    let status = g.status();
    use std::sync::atomic::Ordering::Acquire;
    assert_eq!(status.binding(3).unwrap().down_requests.load(Acquire), 2);
    assert_eq!(status.binding(B1).unwrap().down_requests.load(Acquire), 0);
    // What was routed to the old function before the switch-over follows.
    let mut late = write(HOST_A, VF1_BAR + 0xc0, 4);
    let b = g.match_down(&late).unwrap();
    assert_eq!(g.redirect_down(b, &mut late), 3);
    assert_eq!(
        Tlp::new_checked(&late[..]).unwrap().address(),
        VF3_BAR + 0xc0
    );
    // Until a request by the new routes shows nothing more can come the old
    // way, the old function cannot take another binding's state.
    let pending = |g: &Gate| {
        g.status()
            .binding(B1)
            .unwrap()
            .redirect_pending
            .load(Acquire)
    };
    assert!(pending(&g));
    let redirected = Arrival {
        redirected: true,
        ..down()
    };
    let late_read = read(HOST_A, 7, VF1_BAR);
    let mut moved_read = late_read.clone();
    assert_eq!(g.redirect_down(B1, &mut moved_read), 3);
    assert_eq!(
        g.offer(3, redirected, &moved_read, &mut reply, 5),
        GateOffer::Pass
    );
    assert!(pending(&g), "a redirected request proves nothing");
    let posted = write(HOST_A, VF3_BAR + 0x100, 5);
    assert_eq!(g.offer(3, down(), &posted, &mut reply, 5), GateOffer::Pass);
    assert!(pending(&g), "a write may pass requests routed before it");
    let fence = read(HOST_A, 8, VF3_BAR);
    assert_eq!(g.offer(3, down(), &fence, &mut reply, 5), GateOffer::Pass);
    assert!(!pending(&g));
    let mut stale = write(HOST_A, VF1_BAR, 6);
    assert_eq!(g.redirect_down(B1, &mut stale), B1, "the redirect ended");
}

#[test]
fn endpoint_migrations_move_function_state_in_both_id_modes() {
    for mode in [IdMode::Different, IdMode::Common] {
        let t = topology_in(mode);
        let schedule = Schedule {
            endpoint_migrations: 20,
            start: 1_000_000,
            interval: 500_000,
            ..Schedule::default()
        };
        let d = migrate(&t, 1_000_000.0, 12, schedule);
        let o = orchestrator(&d);
        assert_eq!(o.completed_by_kind(), (0, 20), "{mode:?}");
        // Each binding moved ten times among the three VFs: vf1 → vf3 →
        // vf2 … and the hosts never changed.
        let moved = &o.plane().topology().bindings;
        assert_eq!((moved[0].host, moved[1].host), (0, 1));
        assert_ne!(moved[0].function, moved[1].function);
        // The host read back from each new function what it had written to
        // the old one: no data mismatch, nothing lost or reordered.
        assert_clean(&integrity(&d));
        let g = fabric_gate(&d);
        assert_eq!(g.stats().migrations, 20);
    }
}

/// Kinds alternate, so a period of seven aborts each kind in every phase.
fn abort_in_five_of_seven(k: u64) -> Option<Phase> {
    [
        Some(Phase::Prepare),
        Some(Phase::Quiesce),
        Some(Phase::Move),
        Some(Phase::Release),
        Some(Phase::Complete),
        None,
        None,
    ][(k % 7) as usize]
}

#[test]
fn vm_and_endpoint_migrations_mix_with_aborts_in_every_phase() {
    for mode in [IdMode::Different, IdMode::Common] {
        let t = topology_in(mode);
        let schedule = Schedule {
            vm_migrations: 16,
            endpoint_migrations: 16,
            start: 1_000_000,
            interval: 300_000,
            abort: Some(abort_in_five_of_seven),
            ..Schedule::default()
        };
        let d = migrate(&t, 1_000_000.0, 14, schedule);
        let o = orchestrator(&d);
        assert!(o.in_progress().is_none());
        assert_eq!(o.counts(), (8, 24), "{mode:?}");
        let (vm, endpoint) = o.completed_by_kind();
        assert!(vm > 0 && endpoint > 0, "{vm} {endpoint}");
        assert_clean(&integrity(&d));
    }
}

// ---------------------------------------------------------------------------
// Credits across a pause, at one node.

/// One end of a reliable link held by the test, over a ring port.
struct LinkEnd {
    link: fabric::Link,
    port: pmd::RingPort,
    pool: pmd::FramePool,
    /// TLPs it received.
    got: usize,
}

impl LinkEnd {
    /// Moves frames both ways; what arrives is taken and its credits given back.
    fn pump(&mut self, now: u64) {
        let mut rx = Vec::new();
        pmd::Port::rx_burst(&mut self.port, 0, &mut rx, 64);
        for frame in rx {
            let mut costs = Vec::new();
            let _ = self.link.receive(&frame, now, |tlp| {
                costs.push(rings::Cost::of(&tlp::classify(tlp).unwrap()));
            });
            self.got += costs.len();
            for c in costs {
                self.link.release(c);
            }
        }
        let mut buf = [0u8; 2048];
        while let Some(n) = self.link.poll_transmit(now, &mut buf) {
            let mut tx = vec![self.pool.alloc_from(&buf[..n]).unwrap()];
            pmd::Port::tx_burst(&mut self.port, 0, &mut tx);
            assert!(tx.is_empty(), "the ring took the frame");
        }
    }
}

#[test]
fn held_tlps_give_their_credits_back_once() {
    use fabric::routing::epoch;
    use lcore::{FrameSettings, Task};
    use tlp::CreditType;
    let t = default_topology();
    let pool = pmd::FramePool::new(1024, 1600);
    let (link_node, link_test) = pmd::ring_link("sw0-sw1", 256, 1514);
    let (dev_node, dev_test) = pmd::ring_link("nic0", 256, 1514);
    let ports: Vec<DynPort> = vec![
        Box::new(link_node),
        Box::new(dev_node),
        Box::new(pmd::ClosedPort::default()),
        Box::new(pmd::ClosedPort::default()),
    ];
    let (_publisher, reader) = epoch::channel(fabric::NodeTables::build(&t, 1));
    let mut node = NodeTask::new("sw1", reader, ports, pool.clone(), FrameSettings::default());
    let to_sw0 = t.link_config(0, false).unwrap();
    node.with_reliable_link(0, to_sw0).unwrap();
    let edge = fabric::LinkConfig {
        local_node: 1,
        remote_node: u16::MAX,
        ..fabric::LinkConfig::default()
    };
    node.with_reliable_link(1, edge).unwrap();
    let (mut g, mut tx) = gate();
    tx.push(GateCommand::Pause {
        binding: B1,
        mode: IdMode::Common,
        stopped: Some(Direction::Up),
    })
    .unwrap();
    g.poll(0);
    node.with_gate(g);
    let mut sw0 = LinkEnd {
        link: fabric::Link::new(to_sw0.peer()).unwrap(),
        port: link_test,
        pool: pool.clone(),
        got: 0,
    };
    let mut device = LinkEnd {
        link: fabric::Link::new(edge.peer()).unwrap(),
        port: dev_test,
        pool: pool.clone(),
        got: 0,
    };
    let initial = device.link.credits_available(CreditType::PH);
    // The function's DMA while its binding is paused: held at the node.
    for k in 0..20u8 {
        let dma = write(VF1, 0x1_0000_0000 + 16 * k as u64, k);
        device.link.try_send(&dma, 0).unwrap();
    }
    let mut now = 0;
    let mut round = |node: &mut NodeTask<DynPort>, sw0: &mut LinkEnd, device: &mut LinkEnd| {
        for _ in 0..50 {
            now += 2_000;
            device.pump(now);
            node.poll(now);
            sw0.pump(now);
        }
    };
    round(&mut node, &mut sw0, &mut device);
    assert_eq!(node.gate().unwrap().held(B1), (0, 20), "held while paused");
    assert_eq!(sw0.got, 0);
    // The stopped side's TLPs gave their credits back at once.
    assert_eq!(device.link.credits_available(CreditType::PH), initial);
    tx.push(GateCommand::Release {
        binding: B1,
        requester: None,
        retarget: None,
    })
    .unwrap();
    round(&mut node, &mut sw0, &mut device);
    assert_eq!(sw0.got, 20, "released toward the host");
    // And not a second time when they left.
    assert_eq!(device.link.credits_available(CreditType::PH), initial);
}

// ---------------------------------------------------------------------------
// Claims 1–5, 7 and 18 at the destination: while binding 0 (nic0.vf1) moves
// from host-a to host-b, host-b enumerates and uses the instantiation it is
// about to take over, and records each request with its times.

/// One VM migration of binding 0 in `mode`, the source VM making
/// configuration and register requests often (so some are in flight when
/// its binding closes), every host logging what it received.
fn enumerated_migration(mode: IdMode) -> Deterministic<Part> {
    let t = topology_in(mode);
    let mut c = scenario_config(1_000_000.0, 10, one_migration());
    c.arrival_log = 100_000;
    c.config_every = 2;
    c.register_every = 2;
    let mut d = fabric(&t, &c);
    run_out(&mut d, &c);
    assert_eq!(orchestrator(&d).counts(), (1, 0), "the migration completed");
    assert_clean(&integrity(&d));
    d
}

/// What host-b (the destination) did with its instantiation of binding 0.
fn destination_log(d: &Deterministic<Part>) -> Vec<Probed> {
    let log = hosts(d)[1].enumeration_log().to_vec();
    assert!(!log.is_empty(), "the destination enumerated nothing");
    log
}

/// When the destination's requests that the instantiation completed
/// successfully were answered.
fn served_at(log: &[Probed]) -> Vec<u64> {
    log.iter()
        .filter(|p| p.status == Some(CplStatus::Sc))
        .filter_map(|p| p.done_at)
        .collect()
}

/// The completions host-a (the source) received while its binding was
/// closed: only the function's VDI answers then.
fn source_vdi_served(d: &Deterministic<Part>) -> Vec<u64> {
    let r = &orchestrator(d).records()[0];
    let (closed, reopened) = (r.closed.unwrap(), r.reopened.unwrap());
    hosts(d)[0]
        .arrivals()
        .entries()
        .iter()
        .filter(|e| matches!(e.kind, Some(Kind::Cpl | Kind::CplD)))
        .map(|e| e.at)
        .filter(|at| *at > closed && *at < reopened)
        .collect()
}

/// The value of the `n`th read of `probe` in the log.
fn read_value(log: &[Probed], probe: Probe, n: usize) -> Option<u32> {
    log.iter().filter(|p| p.probe == probe).nth(n)?.value
}

#[test]
fn claim_1_source_and_destination_vdis_operate_together_during_migration() {
    for mode in [IdMode::Common, IdMode::Different] {
        let d = enumerated_migration(mode);
        let r = &orchestrator(&d).records()[0];
        let destination = served_at(&destination_log(&d));
        // The destination's instantiation served from the prepare on …
        let prepare = r.phases[Phase::Prepare as usize].unwrap();
        assert!(destination.iter().all(|at| *at > prepare));
        assert!(destination.len() >= 15, "{mode:?}: {destination:?}");
        // … and into the pause, while the source's served its VM.
        let (closed, reopened) = (r.closed.unwrap(), r.reopened.unwrap());
        let paused = destination
            .iter()
            .filter(|at| **at >= closed && **at < reopened)
            .count();
        assert!(paused > 0, "{mode:?}: none served while paused: {r:?}");
        if mode == IdMode::Common {
            // Closed at once, over requests in flight: the source's VDI
            // answers them, within the destination's window.
            let source = source_vdi_served(&d);
            assert!(!source.is_empty(), "{r:?}");
            let (first, last) = (destination[0], *destination.last().unwrap());
            assert!(
                source.iter().any(|at| (first..=last).contains(at)),
                "windows apart: source {source:?}, destination {first}..{last}"
            );
        }
        // Then one instantiation: the function, which the destination's
        // host reaches itself.
        assert!(fabric_gate(&d).destination_vdi(1).is_none());
    }
}

#[test]
fn claim_2_destination_host_detects_the_source_instantiation() {
    let d = enumerated_migration(IdMode::Different);
    let log = destination_log(&d);
    let r = &orchestrator(&d).records()[0];
    // The IDs the function answers its own host with (every one of the
    // source's reads of them was checked against these: integrity clean).
    let expected_ids = traffic::HostConfig::default().expect_ids;
    assert_eq!(read_value(&log, Probe::Config(0), 0), Some(expected_ids));
    // Class, subsystem, BARs and the capability chain: the function's.
    let function = fabric_gate(&d).vdi(1).unwrap();
    let mut caps = 0;
    for p in log.iter().filter(|p| p.enumerating) {
        let (Probe::Config(at) | Probe::Capability(at)) = p.probe else {
            continue;
        };
        caps += usize::from(matches!(p.probe, Probe::Capability(_)));
        let dw = u32::from_le_bytes(function.config().read(at));
        assert_eq!(p.value, Some(dw), "{p:?}");
        assert!(p.done_at.unwrap() < r.reopened.unwrap(), "{p:?}");
    }
    assert!(caps >= 3, "the chain followed: {caps} capabilities");
}

#[test]
fn claim_3_destination_host_accesses_the_source_instantiation_state() {
    let d = enumerated_migration(IdMode::Different);
    let log = destination_log(&d);
    // What the source's VM had made of its function by the prepare: it
    // wrote CTRL_EXT (reset 0) and cleared WUS bits (reset 0xf), and the
    // destination reads that state, not a reset one.
    let ctrl_ext = read_value(&log, Probe::Read(CTRL_EXT), 0).unwrap();
    let wus = read_value(&log, Probe::Read(WUS), 0).unwrap();
    assert_ne!(ctrl_ext, 0, "the source's writes of CTRL_EXT");
    assert!(wus != WUS_RESET && wus & !WUS_RESET == 0, "WUS {wus:#x}");
}

#[test]
fn claim_4_destination_exchanges_tlps_while_the_source_operates() {
    let d = enumerated_migration(IdMode::Different);
    let destination = served_at(&destination_log(&d));
    let r = &orchestrator(&d).records()[0];
    // While host-b's requests completed at its instantiation, host-a's
    // VM went on with its function: its completions and DMA arrived
    // between host-b's, before the pause.
    let quiesce = r.phases[Phase::Quiesce as usize].unwrap();
    let before: Vec<u64> = destination
        .iter()
        .copied()
        .filter(|at| *at < quiesce)
        .collect();
    assert!(before.len() > 10, "{before:?}");
    let source: Vec<u64> = hosts(&d)[0]
        .arrivals()
        .entries()
        .iter()
        .filter(|e| matches!(e.kind, Some(Kind::Cpl | Kind::CplD | Kind::MWr)))
        .map(|e| e.at)
        .collect();
    let between = before
        .windows(2)
        .filter(|w| source.iter().any(|at| *at > w[0] && *at < w[1]))
        .count();
    let (first, last) = (before[0], *before.last().unwrap());
    let meanwhile = source
        .iter()
        .filter(|at| (first..=last).contains(*at))
        .count();
    assert!(
        between >= 3 && meanwhile >= 10,
        "the source received {meanwhile} TLPs while the destination enumerated, \
         between {between} of its {} completions",
        before.len()
    );
}

#[test]
fn claim_5_register_reads_and_writes_reach_the_vdi() {
    let d = enumerated_migration(IdMode::Different);
    let log = destination_log(&d);
    // Plain storage: written and read back from the destination's
    // instantiation.
    let first = read_value(&log, Probe::Read(CTRL_EXT), 0).unwrap();
    let written = log
        .iter()
        .find_map(|p| match p.probe {
            Probe::Write(CTRL_EXT, v) => Some(v),
            _ => None,
        })
        .unwrap();
    assert_eq!(written, first.wrapping_add(0x10));
    assert_eq!(read_value(&log, Probe::Read(CTRL_EXT), 1), Some(written));
    // Read-only: the function's value, every time.
    let status: Vec<_> = log
        .iter()
        .filter(|p| p.probe == Probe::Read(STATUS))
        .collect();
    assert!(!status.is_empty());
    assert!(status.iter().all(|p| p.value == Some(STATUS_VALUE)));
}

#[test]
fn claim_7_a_write_with_a_side_effect_is_seen_by_the_destination_host() {
    let d = enumerated_migration(IdMode::Different);
    let log = destination_log(&d);
    // WUS is write-1-to-clear: the bit written is cleared, the rest stay.
    let before = read_value(&log, Probe::Read(WUS), 0).unwrap();
    let bit = log
        .iter()
        .find_map(|p| match p.probe {
            Probe::Write(WUS, v) => Some(v),
            _ => None,
        })
        .unwrap();
    assert_eq!(bit.count_ones(), 1);
    assert_ne!(before & bit, 0, "a bit that was set");
    assert_eq!(read_value(&log, Probe::Read(WUS), 1), Some(before & !bit));
    // ICR clears when read: only the device may answer, so before the
    // switch-over the instantiation refuses it as unsupported.
    let icr = log.iter().find(|p| p.probe == Probe::Read(ICR)).unwrap();
    assert_eq!(icr.status, Some(CplStatus::Ur));
}

#[test]
fn claim_18_vdi_served_operations_proceed_at_both_ends_during_the_move() {
    let d = enumerated_migration(IdMode::Common);
    let r = &orchestrator(&d).records()[0];
    let (closed, reopened) = (r.closed.unwrap(), r.reopened.unwrap());
    let inside = |at: &u64| *at >= closed && *at < reopened;
    let destination = served_at(&destination_log(&d));
    assert!(destination.iter().any(inside), "{destination:?} {r:?}");
    assert!(source_vdi_served(&d).iter().any(inside));
}

/// A destination that has not finished enumerating by the phase deadline
/// abandons the migration in its prepare: its host stops using the
/// instantiation, its last request is still answered, and the source's
/// routes come back; the source never paused and loses nothing.
#[test]
fn a_prepare_past_its_deadline_is_abandoned_and_the_routes_restored() {
    for mode in [IdMode::Different, IdMode::Common] {
        let t = topology_in(mode);
        let schedule = Schedule {
            vm_migrations: 3,
            start: 1_000_000,
            interval: 1_000_000,
            // An enumeration takes tens of round trips.
            deadline: 10_000,
            ..Schedule::default()
        };
        let d = migrate(&t, 1_000_000.0, 8, schedule);
        let o = orchestrator(&d);
        assert_eq!(o.counts(), (0, 3), "{mode:?}");
        for r in o.records() {
            let Some(Outcome::Aborted {
                phase: Phase::Prepare,
                reason: migrate::AbortReason::Deadline { waiting_for, .. },
            }) = &r.outcome
            else {
                panic!("{mode:?}: {r:?}");
            };
            assert_eq!(*waiting_for, "the destination to prepare");
            assert!(r.closed.is_none(), "the source never paused");
        }
        // Each destination enumerated until the abort, and nothing after
        // its migration ended; every request it made was answered.
        let h = hosts(&d);
        for r in o.records() {
            let log = h[r.plan.to].enumeration_log();
            let (start, end) = (r.phases[0].unwrap(), r.finished.unwrap());
            let mine: Vec<_> = log
                .iter()
                .filter(|p| p.sent_at >= start && p.sent_at <= end + 1_000_000)
                .collect();
            assert!(!mine.is_empty(), "{mode:?}: {r:?}");
            assert!(mine.iter().all(|p| p.sent_at <= end), "{mode:?}: {r:?}");
            assert!(mine.iter().all(|p| p.done_at.is_some()), "{mode:?}");
        }
        assert_eq!(fabric_gate(&d).stats().aborted, 0, "no pause to abort");
        assert!(fabric_gate(&d).destination_vdi(1).is_none());
        assert_clean(&integrity(&d));
    }
}

/// TLPs the nodes refused, over all reasons.
fn refused_at_nodes(d: &Deterministic<Part>) -> u64 {
    nodes(d)
        .iter()
        .flat_map(|n| n.node_state().counters.iter())
        .map(|c| {
            fabric::node::Refusal::ALL
                .iter()
                .map(|&r| c.refused(r))
                .sum::<u64>()
        })
        .sum()
}

/// Prepares abandoned at every point of the destination's enumeration:
/// no request of it is ever refused by a node (it would wait for a
/// completion that never comes), and each is answered before the routes
/// it was sent by are taken back.
#[test]
fn a_prepare_abandoned_anywhere_in_the_enumeration_leaves_no_request_unanswered() {
    for deadline in (4_000..60_000).step_by(4_000) {
        let t = default_topology();
        let schedule = Schedule {
            vm_migrations: 4,
            start: 1_000_000,
            interval: 700_000,
            deadline,
            ..Schedule::default()
        };
        let d = migrate(&t, 1_000_000.0, 5, schedule);
        assert_eq!(refused_at_nodes(&d), 0, "deadline {deadline}");
        for h in hosts(&d) {
            assert!(
                h.enumeration_log().iter().all(|p| p.done_at.is_some()),
                "deadline {deadline}"
            );
        }
        assert_clean(&integrity(&d));
    }
}
