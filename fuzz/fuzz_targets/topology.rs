//! Arbitrary text through the topology checker: it must never panic, and
//! a topology it accepts must hold together (every reference in range, the
//! fabric's own space laid out) so that every node's tables build from it.
//! The input is also tried spliced into a good topology, so the fuzzer
//! explores the checks behind the TOML syntax.
#![no_main]

use fabric::{NodeTables, Topology};
use libfuzzer_sys::fuzz_target;
use std::path::Path;

const GOOD: &str = include_str!("../../configs/default.toml");

fn check(text: &str) {
    let Ok(t) = Topology::parse(Path::new("fuzz.toml"), text) else {
        return;
    };
    for b in &t.bindings {
        assert!(b.host < t.hosts.len() && b.endpoint < t.endpoints.len());
        assert!(b.function <= t.endpoints[b.endpoint].vfs);
    }
    for h in &t.hosts {
        assert!(h.attach.node < t.nodes.len());
        assert!(h.requesters.len() <= fabric::topology::MAX_REQUESTERS);
        assert_eq!(h.fabric_dma.len(), h.dma.len());
    }
    assert!(t.link.replay_slots <= fabric::topology::MAX_REPLAY_SLOTS);
    let tables = NodeTables::build_all(&t);
    assert_eq!(tables.len(), t.nodes.len());
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    check(text);
    // The input in place of one value of the good topology.
    if let Some(at) = GOOD.find("= ").map(|i| i + 2) {
        let end = GOOD[at..].find('\n').map_or(GOOD.len(), |e| at + e);
        let spliced = format!("{}{}{}", &GOOD[..at], text, &GOOD[end..]);
        check(&spliced);
    }
    check(&format!("{GOOD}\n{text}"));
});
