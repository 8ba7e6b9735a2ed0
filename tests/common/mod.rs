//! What the end-to-end tests of whole fabrics share: the shipped configs,
//! a fabric built on the deterministic runner, and reading its tasks back.
#![allow(dead_code)]

use fabric::Topology;
use lcore::{Deterministic, Gate, NodeTask};
use migrate::scenario::{self, DynPort, ScenarioConfig};
use migrate::Orchestrator;
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

/// The scenario of `t` as `c` asks, on the deterministic runner.
pub fn fabric(t: &Topology, c: &ScenarioConfig) -> Deterministic {
    let s = scenario::build(t, c).expect("the scenario builds");
    assert!(s.notes.is_empty(), "{:?}", s.notes);
    let mut d = Deterministic::new(1_000);
    for task in s.models.into_iter().chain(s.nodes) {
        d.add(task);
    }
    d
}

/// Every task of type `T`.
pub fn find<T: 'static>(d: &Deterministic) -> Vec<&T> {
    d.tasks()
        .iter()
        .filter_map(|t| t.as_any()?.downcast_ref::<T>())
        .collect()
}

/// The orchestrator.
pub fn orchestrator(d: &Deterministic) -> &Orchestrator {
    find::<Orchestrator>(d)[0]
}

/// The gate of the node the endpoint attaches to.
pub fn fabric_gate(d: &Deterministic) -> &Gate {
    find::<NodeTask<DynPort>>(d)
        .into_iter()
        .find_map(|n| n.gate())
        .expect("the endpoint's node has a gate")
}

/// The host models.
pub fn hosts(d: &Deterministic) -> Vec<&HostModel<DynPort>> {
    find::<HostModel<DynPort>>(d)
}

/// What every host and device observed, summed.
pub fn integrity(d: &Deterministic) -> Integrity {
    let mut all = Integrity::default();
    for h in hosts(d) {
        all.add(h.integrity());
    }
    for e in find::<EndpointModel<DynPort>>(d) {
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
