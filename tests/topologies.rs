//! Whole fabrics of other shapes than the default: one switch node (hosts
//! and device on the node where the pause point is) and three nodes in a
//! line (transit through a node that has a host of its own), migrating
//! while traffic flows, on the deterministic runner. The same topologies
//! run on pinned cores in the program's tests (`tools/tlpfabric/tests`).
//! And migrations whose hand-over the fabric keeps waiting are rolled back
//! at their deadline with nothing lost.

use assembly::{Part, ScenarioConfig};
use migrate::IdMode;
use migrate::{AbortReason, Outcome, Phase, Schedule};

mod common;
use common::*;

fn config(rate: f64, ms: u64, schedule: Schedule) -> ScenarioConfig {
    ScenarioConfig {
        rate,
        duration: ms * 1_000_000,
        schedule,
        config_dir: configs(),
        ..ScenarioConfig::default()
    }
}

fn migrations(vm: u64, endpoint: u64) -> Schedule {
    Schedule {
        vm_migrations: vm,
        endpoint_migrations: endpoint,
        start: 1_000_000,
        interval: 400_000,
        ..Schedule::default()
    }
}

/// Runs `c` over `name` until the traffic is over and has drained.
fn run(name: &str, c: &ScenarioConfig) -> lcore::Deterministic<Part> {
    let mut d = fabric(&topology(name), c);
    let end = c.duration + 10_000_000;
    d.run_until(u64::MAX, |d| d.now() >= end);
    d
}

#[test]
fn one_node_and_a_line_of_three_migrate_both_ways_clean() {
    for name in ["one-node", "line"] {
        let c = config(500_000.0, 12, migrations(10, 10));
        let d = run(name, &c);
        let o = orchestrator(&d);
        assert_eq!(o.counts(), (20, 0), "{name}: {:?}", o.records());
        assert_clean(&integrity(&d));
        // Every VM is running somewhere, each on one host.
        let vms: usize = hosts(&d).iter().map(|h| h.vms().len()).sum();
        assert_eq!(vms, 2, "{name}");
    }
}

/// On one node, a VDI's answer to a paused function's configuration
/// request leaves toward a host that attaches to the same node: it must
/// be translated into that host's IDs like any completion (it reached the
/// host in fabric IDs once, the VM never counted it, and its hand-over
/// waited forever).
#[test]
fn vdi_answers_reach_a_host_on_the_endpoints_node_in_its_own_ids() {
    let mut c = config(500_000.0, 12, migrations(10, 10));
    // A configuration request after every write: some reach a paused
    // function and its VDI answers.
    c.config_every = 1;
    let d = run("one-node", &c);
    let served = fabric_gate(&d).stats().vdi_config_reads;
    assert!(served > 0, "no configuration read met a pause");
    let i = integrity(&d);
    assert_clean(&i);
    let reads: u64 = hosts(&d).iter().map(|h| h.config_reads()).sum();
    assert!(
        reads >= served,
        "{reads} reads completed, {served} by a VDI"
    );
    assert_eq!(orchestrator(&d).counts(), (20, 0));
}

/// Links that hold frames back for 2 ms keep hand-overs waiting: past the
/// phase deadline (200 µs) each such migration is rolled back from where
/// it was, the VM or function state given back to the source, and the
/// held traffic released there.
#[test]
fn a_hand_over_kept_waiting_is_rolled_back_at_the_deadline_with_nothing_lost() {
    let mut schedule = migrations(20, 20);
    schedule.deadline = 200_000;
    let mut c = config(300_000.0, 20, schedule);
    c.link_faults = Some(slow_links(7));
    let d = run("line", &c);
    let o = orchestrator(&d);
    let at_deadline: Vec<_> = o
        .records()
        .iter()
        .filter(|r| {
            matches!(
                r.outcome,
                Some(Outcome::Aborted {
                    phase: Phase::Move,
                    reason: AbortReason::Deadline { .. }
                })
            )
        })
        .collect();
    assert!(!at_deadline.is_empty(), "{:?}", o.records());
    for r in &at_deadline {
        // Rolled back: held traffic released within the deadline of the
        // wait plus the roll-back, never switched over.
        assert!(r.phases[Phase::Release as usize].is_none());
        assert!(r.reopened.is_some() && r.finished.is_some(), "{r:?}");
    }
    let (completed, aborted) = o.counts();
    assert_eq!(completed + aborted, 40);
    assert_clean(&integrity(&d));
    let vms: usize = hosts(&d).iter().map(|h| h.vms().len()).sum();
    assert_eq!(vms, 2);
}

/// The embedded default's templates are built into the program: a scenario
/// built with them needs no directory at all, and every function of the
/// device gets its VDI.
#[test]
fn built_in_templates_need_no_directory() {
    let mut c = config(200_000.0, 2, Schedule::default());
    c.config_dir = std::path::PathBuf::from("/nonexistent/configs");
    c.builtin_templates = true;
    let s = assembly::build(&topology("default"), &c).expect("the scenario builds");
    assert!(s.notes.is_empty(), "{:?}", s.notes);
    // From a directory without templates, the same build says so.
    c.builtin_templates = false;
    let s = assembly::build(&topology("default"), &c).expect("the scenario builds");
    assert!(
        s.notes.iter().any(|n| n.contains("no VDI")),
        "{:?}",
        s.notes
    );
}

/// A pause point whose hold is full takes nothing more and drops nothing:
/// the TLP waits at its ingress with the credits it consumed, so that its
/// sender is slowed by flow control, and it is offered again, in order,
/// once the release makes room. Here each hold has room for 1 TLP while
/// the hosts and the device keep sending toward the paused bindings, in
/// VM and endpoint migrations and both ID modes.
#[test]
fn a_full_pause_point_makes_senders_wait_and_loses_nothing() {
    for mode in [IdMode::Different, IdMode::Common] {
        let t = topology_in(mode);
        let mut c = config(1_000_000.0, 12, migrations(10, 10));
        c.hold_capacity = Some(1);
        let mut d = fabric(&t, &c);
        let end = c.duration + 10_000_000;
        d.run_until(u64::MAX, |d| d.now() >= end);
        let g = fabric_gate(&d);
        assert!(
            g.stats().refused_full > 0,
            "{mode:?}: no hold was ever full"
        );
        let node = nodes(&d).into_iter().find(|n| n.gate().is_some()).unwrap();
        assert_eq!(node.parked(), 0, "{mode:?}: everything that waited went on");
        assert_eq!(orchestrator(&d).counts(), (20, 0), "{mode:?}");
        assert_clean(&integrity(&d));
    }
}

/// Two hosts, two devices on two nodes, 33 bindings, alternating between the hosts:
/// more VMs than a host's 1,024 tags hold at 32 each. Each VM's tags stay
/// its own on every host it meets (bindings 0 and 32 start on one host;
/// binding 31's range must not reach the tag a host enumerates with).
fn many_bindings() -> fabric::Topology {
    let mut text = String::from(
        r#"
[[node]]
name = "sw0"
ports = 4

[[node]]
name = "sw1"
ports = 2

[[link]]
a = "sw0:3"
b = "sw1:0"

[[host]]
name = "host-a"
attach = "sw0:0"
buses = "00-3f"
requesters = ["00:00.0"]
dma = [{ base = "0x100000000", size = "0x40000000" }, { base = "0xfee00000", size = "0x100000" }]

[[host]]
name = "host-b"
attach = "sw0:1"
buses = "00-3f"
requesters = ["00:00.0"]
dma = [{ base = "0x100000000", size = "0x40000000" }, { base = "0xfee00000", size = "0x100000" }]

[[endpoint]]
name = "nic0"
attach = "sw0:2"
id = "40:00.0"
vfs = 16
bar_size = "0x20000"
template = "nic"

[[endpoint]]
name = "nic1"
attach = "sw1:1"
id = "50:00.0"
vfs = 17
bar_size = "0x20000"
template = "nic"
"#,
    );
    for k in 0..33u64 {
        let (nic, vf) = if k < 16 { (0, k + 1) } else { (1, k - 15) };
        text += &format!(
            "\n[[binding]]\nfunction = \"nic{nic}.vf{vf}\"\nhost = \"host-{}\"\nid = \"{:02x}:00.0\"\nbar = \"{:#x}\"\n",
            if k % 2 == 0 { "a" } else { "b" },
            k + 1,
            0xc000_0000 + k * 0x2_0000,
        );
    }
    fabric::Topology::parse(&configs().join("many-bindings.toml"), &text).unwrap()
}

#[test]
fn thirty_three_vms_keep_their_tags_apart_wherever_they_run() {
    let t = many_bindings();
    let mut c = config(2_000_000.0, 8, migrations(12, 0));
    c.read_every = 1;
    let mut d = fabric(&t, &c);
    let end = c.duration + 10_000_000;
    d.run_until(u64::MAX, |d| d.now() >= end);
    assert_eq!(orchestrator(&d).counts(), (12, 0));
    // Every read completed once, at the VM that sent it.
    let i = integrity(&d);
    assert_clean(&i);
    assert!(i.delivered > 10_000, "{i:?}");
}
