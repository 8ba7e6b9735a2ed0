//! What the end-to-end tests of whole fabrics share: the shipped configs,
//! a fabric built on the deterministic runner, and reading its tasks back.
#![allow(dead_code)]

use assembly::{DynPort, FabricPlane, Part, ScenarioConfig};
use fabric::{FaultConfig, Topology};
use lcore::{Deterministic, Gate, NodeTask};
use migrate::Orchestrator;
use rings::pause::IdMode;
use std::path::{Path, PathBuf};
use traffic::{EndpointModel, HostModel, Integrity};

/// The shipped `configs/` directory.
pub fn configs() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs")
}

/// A shipped topology, `configs/NAME.toml`.
pub fn topology(name: &str) -> Topology {
    Topology::load(&configs().join(format!("{name}.toml"))).expect("a shipped topology")
}

/// The default topology with every binding in `mode`.
pub fn topology_in(mode: IdMode) -> Topology {
    let path = configs().join("default.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let name = match mode {
        IdMode::Different => "different",
        IdMode::Common => "common",
    };
    let text = text.replace(
        "[[binding]]\n",
        &format!("[[binding]]\nid_mode = \"{name}\"\n"),
    );
    let t = Topology::parse(&path, &text).expect("the default topology");
    assert!(t.bindings.iter().all(|b| b.id_mode.name() == name));
    t
}

/// Links between nodes that hold one frame in twenty back for 2 ms:
/// hand-overs wait on them, so pauses last (seeded: runs repeat).
pub fn slow_links(seed: u64) -> FaultConfig {
    FaultConfig {
        delay: 0.05,
        delay_ticks: 2_000_000,
        seed,
        ..FaultConfig::NONE
    }
}

/// The scenario of `t` as `c` asks, on the deterministic runner.
pub fn fabric(t: &Topology, c: &ScenarioConfig) -> Deterministic<Part> {
    let s = assembly::build(t, c).expect("the scenario builds");
    assert!(s.notes.is_empty(), "{:?}", s.notes);
    let mut d = Deterministic::new(1_000);
    for task in s.models.into_iter().chain(s.nodes) {
        d.add(task);
    }
    d
}

/// Every part `of` picks out.
fn find<T>(d: &Deterministic<Part>, of: fn(&Part) -> Option<&T>) -> Vec<&T> {
    d.tasks().iter().filter_map(of).collect()
}

/// The orchestrator.
pub fn orchestrator(d: &Deterministic<Part>) -> &Orchestrator<FabricPlane> {
    find(d, Part::orchestrator)[0]
}

/// The node pipelines.
pub fn nodes(d: &Deterministic<Part>) -> Vec<&NodeTask<DynPort>> {
    find(d, Part::node)
}

/// The device models.
pub fn devices(d: &Deterministic<Part>) -> Vec<&EndpointModel<DynPort>> {
    find(d, Part::device)
}

/// The gate of the node the endpoint attaches to.
pub fn fabric_gate(d: &Deterministic<Part>) -> &Gate {
    nodes(d)
        .into_iter()
        .find_map(|n| n.gate())
        .expect("the endpoint's node has a gate")
}

/// The host models.
pub fn hosts(d: &Deterministic<Part>) -> Vec<&HostModel<DynPort>> {
    find(d, Part::host)
}

/// What every host and device observed, summed.
pub fn integrity(d: &Deterministic<Part>) -> Integrity {
    let mut all = Integrity::default();
    for h in hosts(d) {
        all.add(h.integrity());
    }
    for e in devices(d) {
        all.add(e.integrity());
    }
    all
}

/// Nothing lost, doubled, reordered, late or damaged, no completion nobody
/// asked for, and something delivered.
pub fn assert_clean(i: &Integrity) {
    assert!(i.clean(), "{i:?}");
    assert_eq!(i.unexpected_completions, 0, "{i:?}");
    assert!(i.delivered > 0);
}
