//! Arbitrary bytes forwarded by a node of the default topology, in from any
//! port: forwarding must never panic, a TLP it forwards must still be a valid
//! TLP, and a completion it writes must be a valid Unsupported Request.
#![no_main]

use fabric::{Action, NodeState, NodeTables, Topology};
use libfuzzer_sys::fuzz_target;
use std::path::Path;
use std::sync::OnceLock;
use tlp::{CplStatus, Tlp};

fn tables() -> &'static [NodeTables] {
    static TABLES: OnceLock<Vec<NodeTables>> = OnceLock::new();
    TABLES.get_or_init(|| {
        let text = include_str!("../../configs/default.toml");
        let t = Topology::parse(Path::new("default.toml"), text).expect("the default topology");
        (0..t.nodes.len()).map(|n| NodeTables::build(&t, n)).collect()
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&select, bytes)) = data.split_first() else {
        return;
    };
    let tables = tables();
    let node = &tables[select as usize % tables.len()];
    let port = (select >> 4) as u16 % (node.ports().len() as u16 + 1);
    let mut state = NodeState::new(node.ports().len() as u16);
    let mut tlp = bytes.to_vec();
    let mut reply = [0u8; 16];
    match node.forward(port, &mut tlp, &mut reply, &mut state, 0) {
        Action::Forward(_) | Action::Broadcast(_) => {
            assert!(Tlp::new_checked(&tlp[..]).is_ok());
        }
        Action::Reply { len, .. } => {
            let c = Tlp::new_checked(&reply[..len]).expect("a valid completion");
            assert_eq!(c.status(), CplStatus::Ur);
        }
        Action::Local | Action::Drop(_) => {}
    }
});
