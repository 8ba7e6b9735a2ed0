//! Routing, translation and access control across the shipped topologies:
//! TLPs sent in by hosts and endpoints arrive where they should, translated
//! into the receiver's domain, and what does not belong is refused the way
//! PCIe refuses it, with the counters to show for it.

use fabric::node::Refusal;
use fabric::topology::IdMode;
use fabric::{Attachment, Fabric, Outcome, Topology};
use std::path::PathBuf;
use tlp::build::{completion, memory_read, memory_write, CplFields, MemAccess};
use tlp::{Bdf, Body, CplStatus, Kind, MsgRouting, Repr, Tlp};

fn config(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../configs")
        .join(name)
}

fn fabric(name: &str) -> Fabric {
    Fabric::new(Topology::load(&config(name)).unwrap())
}

const HOST_A: Attachment = Attachment::Host(0);
const HOST_B: Attachment = Attachment::Host(1);
const NIC: Attachment = Attachment::Endpoint(0);
const RC: Bdf = Bdf::new(0, 0, 0);
const VF_SEEN: Bdf = Bdf::new(1, 0, 0);
const BAR: u64 = 0xfe00_0000;

fn mwr(requester: Bdf, address: u64) -> Vec<u8> {
    let mut b = vec![0u8; 64];
    let n = memory_write(
        &mut b,
        requester,
        0,
        MemAccess::dwords(address, 1),
        &[1, 2, 3, 4],
    )
    .unwrap();
    b.truncate(n);
    b
}

fn mrd(requester: Bdf, tag: u16, address: u64, dws: u16) -> Vec<u8> {
    let mut b = vec![0u8; 64];
    let n = memory_read(&mut b, requester, tag, MemAccess::dwords(address, dws)).unwrap();
    b.truncate(n);
    b
}

fn cpld(completer: Bdf, requester: Bdf, tag: u16) -> Vec<u8> {
    let mut b = vec![0u8; 64];
    let fields = CplFields {
        completer,
        requester,
        tag,
        status: CplStatus::Sc,
        byte_count: 4,
        lower_address: 0,
    };
    let n = completion(&mut b, fields, &[9, 9, 9, 9]).unwrap();
    b.truncate(n);
    b
}

fn cfg_read(requester: Bdf, target: Bdf, type1: bool) -> Vec<u8> {
    let kind = if type1 { Kind::CfgRd1 } else { Kind::CfgRd0 };
    let mut repr = Repr::new(kind, MsgRouting::Local, &[]);
    repr.requester = requester;
    repr.tag = 5;
    if let Body::Config { target: t, .. } = &mut repr.body {
        *t = target;
    }
    let mut b = vec![0u8; repr.buffer_len()];
    repr.emit(&mut b).unwrap();
    b
}

fn delivered(o: Outcome) -> (Attachment, Vec<u8>, usize) {
    match o {
        Outcome::Delivered { to, bytes, hops } => (to, bytes, hops),
        other => panic!("expected a delivery, got {other:?}"),
    }
}

#[test]
fn host_writes_reach_their_own_function_translated() {
    let mut f = fabric("default.toml");
    let t = f.topology.clone();
    let (vf1_id, vf2_id) = (Bdf(t.endpoints[0].id.0 + 1), Bdf(t.endpoints[0].id.0 + 2));
    let bar = |vf: u64| t.endpoints[0].fabric_bar + vf * t.endpoints[0].bar_size;

    // Both hosts write the same address with the same requester ID: each
    // reaches the function bound to it, from a requester the fabric tells apart.
    let (to, bytes, hops) = delivered(f.send(HOST_A, &mwr(RC, BAR + 0x10)));
    let w = Tlp::new_checked(&bytes[..]).unwrap();
    assert_eq!((to, hops), (NIC, 2));
    assert_eq!(w.address(), bar(1) + 0x10);
    assert_eq!(w.requester_id(), Bdf::new(t.hosts[0].fabric_bus, 0, 0));
    assert_eq!(w.payload(), [1, 2, 3, 4]);

    let (to, bytes, _) = delivered(f.send(HOST_B, &mwr(RC, BAR + 0x10)));
    let w = Tlp::new_checked(&bytes[..]).unwrap();
    assert_eq!(to, NIC);
    assert_eq!(w.address(), bar(2) + 0x10);
    assert_ne!(w.requester_id(), Bdf::new(t.hosts[0].fabric_bus, 0, 0));

    // Reads complete back to the host that asked, in its own IDs.
    for (host, vf, tag) in [(HOST_A, vf1_id, 0x2a), (HOST_B, vf2_id, 0x155)] {
        let (_, req, _) = delivered(f.send(host, &mrd(RC, tag, BAR, 1)));
        let r = Tlp::new_checked(&req[..]).unwrap();
        assert_eq!(r.tag(), tag, "tags pass unchanged");
        let (to, bytes, _) = delivered(f.send(NIC, &cpld(vf, r.requester_id(), tag)));
        let c = Tlp::new_checked(&bytes[..]).unwrap();
        assert_eq!(to, host);
        assert_eq!(
            (c.requester_id(), c.completer_id(), c.tag()),
            (RC, VF_SEEN, tag)
        );
    }
    assert_eq!(f.states[0].counters[1].forwarded, 2);
}

#[test]
fn configuration_requests_reach_bound_functions_only() {
    let mut f = fabric("default.toml");
    let vf1 = Bdf(f.topology.endpoints[0].id.0 + 1);
    // Type 1 to the function's bus becomes Type 0 at the function.
    let (to, bytes, _) = delivered(f.send(HOST_A, &cfg_read(RC, VF_SEEN, true)));
    let c = Tlp::new_checked(&bytes[..]).unwrap();
    assert_eq!(to, NIC);
    assert_eq!((c.kind(), c.target_id()), (Some(Kind::CfgRd0), vf1));

    // Anything else in the host's domain (another host's function included)
    // answers Unsupported Request, as an empty slot does.
    for target in [Bdf::new(2, 0, 0), Bdf::new(1, 0, 1)] {
        match f.send(HOST_A, &cfg_read(RC, target, false)) {
            Outcome::Replied { to, bytes, refusal } => {
                assert_eq!((to, refusal), (HOST_A, Refusal::AccessDenied));
                let c = Tlp::new_checked(&bytes[..]).unwrap();
                assert_eq!(c.kind(), Some(Kind::Cpl));
                assert_eq!(c.status(), CplStatus::Ur);
                assert_eq!(
                    (c.requester_id(), c.completer_id(), c.tag()),
                    (RC, target, 5)
                );
                assert_eq!((c.byte_count(), c.lower_address()), (4, 0));
            }
            other => panic!("{other:?}"),
        }
    }
    let counters = f.states[0].counters[1];
    assert_eq!(counters.refused(Refusal::AccessDenied), 2);
    assert_eq!(counters.unsupported_replies, 2);
}

#[test]
fn spoofed_and_undeclared_requesters_are_dropped_counted_and_logged() {
    let mut f = fabric("default.toml");
    // Bus 0x20 is outside host-a's buses 00-0f.
    let spoofed = Bdf::new(0x20, 0, 0);
    assert_eq!(
        f.send(HOST_A, &mrd(spoofed, 1, BAR, 1)),
        Outcome::Dropped {
            node: 0,
            refusal: Refusal::Spoofed
        }
    );
    // In the buses, but not a declared requester.
    assert_eq!(
        f.send(HOST_A, &mwr(Bdf::new(0, 3, 0), BAR)),
        Outcome::Dropped {
            node: 0,
            refusal: Refusal::UnknownRequester
        }
    );
    // A function claiming another device's ID.
    assert_eq!(
        f.send(NIC, &mwr(Bdf::new(0x41, 0, 0), 0x1_0000_0000)),
        Outcome::Dropped {
            node: 1,
            refusal: Refusal::Spoofed
        }
    );
    let c = f.states[0].counters[1];
    assert_eq!(
        (
            c.refused(Refusal::Spoofed),
            c.refused(Refusal::UnknownRequester),
            c.forwarded
        ),
        (1, 1, 0)
    );
    let log: Vec<_> = f.states[0].log.drain().collect();
    assert_eq!(log.len(), 2);
    assert_eq!(
        (log[0].refusal, log[0].source, log[0].address, log[0].port),
        (Refusal::Spoofed, spoofed, Some(BAR), 1)
    );
}

#[test]
fn the_refusal_log_is_rate_limited() {
    let mut f = fabric("default.toml");
    let spoofed = mwr(Bdf::new(0x20, 0, 0), BAR);
    for _ in 0..100 {
        f.send(HOST_A, &spoofed);
    }
    assert_eq!(f.states[0].counters[1].refused(Refusal::Spoofed), 100);
    let log: Vec<_> = f.states[0].log.drain().collect();
    assert_eq!(log.len(), 8, "8 entries per interval");
    assert_eq!(f.states[0].log.suppressed(), 92);
}

#[test]
fn requests_outside_the_bar_windows_get_what_pcie_gives() {
    let mut f = fabric("default.toml");
    // A read of 3 DW at 0x...04 with all bytes enabled asks for 12 bytes.
    match f.send(HOST_A, &mrd(RC, 0x77, 0xfd00_0004, 3)) {
        Outcome::Replied { to, bytes, refusal } => {
            assert_eq!((to, refusal), (HOST_A, Refusal::AccessDenied));
            let c = Tlp::new_checked(&bytes[..]).unwrap();
            assert_eq!((c.kind(), c.status()), (Some(Kind::Cpl), CplStatus::Ur));
            assert_eq!((c.requester_id(), c.tag()), (RC, 0x77));
            assert_eq!((c.byte_count(), c.lower_address()), (12, 0x04));
        }
        other => panic!("{other:?}"),
    }
    // A posted write is dropped and counted.
    assert_eq!(
        f.send(HOST_A, &mwr(RC, 0xfd00_0000)),
        Outcome::Dropped {
            node: 0,
            refusal: Refusal::AccessDenied
        }
    );
    // Host B's BAR window is the same address in its own domain, so host A
    // cannot name it at all: only its own binding answers there.
    let c = f.states[0].counters[1];
    assert_eq!(
        (c.refused(Refusal::AccessDenied), c.unsupported_replies),
        (2, 1)
    );
}

#[test]
fn endpoint_dma_reaches_only_its_hosts_windows() {
    let mut f = fabric("default.toml");
    let first = f.topology.endpoints[0].id.0;
    let (vf1, vf2, vf3) = (Bdf(first + 1), Bdf(first + 2), Bdf(first + 3));

    // vf1 writes into host-a memory and raises an MSI; both arrive in host-a's
    // addresses, from the ID host-a knows the function by.
    for address in [0x1_0000_0040u64, 0xfee0_0000] {
        let (to, bytes, _) = delivered(f.send(NIC, &mwr(vf1, address)));
        let w = Tlp::new_checked(&bytes[..]).unwrap();
        assert_eq!(to, HOST_A);
        assert_eq!((w.address(), w.requester_id()), (address, VF_SEEN));
    }
    // The same address from vf2 lands in host-b.
    let (to, _, _) = delivered(f.send(NIC, &mwr(vf2, 0x1_0000_0040)));
    assert_eq!(to, HOST_B);

    // Outside the windows: a read gets UR back at the function, a write is dropped.
    match f.send(NIC, &mrd(vf1, 3, 0x2_0000_0000, 1)) {
        Outcome::Replied { to, bytes, refusal } => {
            assert_eq!((to, refusal), (NIC, Refusal::AccessDenied));
            let c = Tlp::new_checked(&bytes[..]).unwrap();
            assert_eq!(
                (c.status(), c.requester_id(), c.tag(), c.byte_count()),
                (CplStatus::Ur, vf1, 3, 4)
            );
        }
        other => panic!("{other:?}"),
    }
    // vf3 is bound to no host: it reaches no memory at all.
    assert_eq!(
        f.send(NIC, &mwr(vf3, 0x1_0000_0040)),
        Outcome::Dropped {
            node: 1,
            refusal: Refusal::AccessDenied
        }
    );
    // A host completing a function's read: back to the function, in fabric IDs.
    let (_, req, _) = delivered(f.send(NIC, &mrd(vf1, 9, 0x1_0000_0000, 1)));
    assert_eq!(Tlp::new_checked(&req[..]).unwrap().address(), 0x1_0000_0000);
    let (to, bytes, _) = delivered(f.send(HOST_A, &cpld(RC, VF_SEEN, 9)));
    let c = Tlp::new_checked(&bytes[..]).unwrap();
    assert_eq!(to, NIC);
    assert_eq!((c.requester_id(), c.tag()), (vf1, 9));
    assert_eq!(c.completer_id().bus(), f.topology.hosts[0].fabric_bus);
    // The same completion from host-b names host-b's own function by that
    // ID: it reaches vf2, never vf1.
    let (_, bytes, _) = delivered(f.send(HOST_B, &cpld(RC, VF_SEEN, 9)));
    assert_eq!(Tlp::new_checked(&bytes[..]).unwrap().requester_id(), vf2);
    let c = f.states[1].counters[1];
    assert_eq!(
        (c.refused(Refusal::AccessDenied), c.unsupported_replies),
        (2, 1)
    );
}

#[test]
fn common_id_mode_gives_a_binding_its_own_requester_id() {
    let text = std::fs::read_to_string(config("default.toml"))
        .unwrap()
        .replace(
            "id = \"01:00.0\"\nbar = \"0xfe000000\"",
            "id = \"01:00.0\"\nbar = \"0xfe000000\"\nid_mode = \"common\"",
        );
    let t = Topology::parse(&config("default.toml"), &text).unwrap();
    assert!(t.bindings.iter().all(|b| b.id_mode == IdMode::Common));
    let (a, b) = (
        t.bindings[0].common_bus.unwrap(),
        t.bindings[1].common_bus.unwrap(),
    );
    assert_ne!(a, b);
    assert!(t
        .hosts
        .iter()
        .all(|h| h.fabric_bus != a && h.fabric_bus != b));
    let mut f = Fabric::new(t);
    let (_, bytes, _) = delivered(f.send(HOST_A, &mrd(RC, 1, BAR, 1)));
    let r = Tlp::new_checked(&bytes[..]).unwrap();
    assert_eq!(r.requester_id(), Bdf::new(a, 0, 0));
    let vf1 = Bdf(f.topology.endpoints[0].id.0 + 1);
    let (to, bytes, _) = delivered(f.send(NIC, &cpld(vf1, r.requester_id(), 1)));
    assert_eq!(to, HOST_A);
    assert_eq!(Tlp::new_checked(&bytes[..]).unwrap().requester_id(), RC);
}

#[test]
fn rack_routes_cross_several_nodes() {
    let mut f = fabric("rack.toml");
    let t = f.topology.clone();
    let mut max_hops = 0;
    for b in &t.bindings {
        let host = Attachment::Host(b.host);
        let e = &t.endpoints[b.endpoint];
        let function = Bdf(e.id.0 + b.function as u16);
        let (to, bytes, hops) = delivered(f.send(
            host,
            &mrd(t.hosts[b.host].requesters[0], 7, b.bar.base + 8, 1),
        ));
        assert_eq!(to, Attachment::Endpoint(b.endpoint));
        let r = Tlp::new_checked(&bytes[..]).unwrap();
        assert_eq!(
            r.address(),
            e.fabric_bar + b.function as u64 * e.bar_size + 8
        );
        let (to, bytes, back) = delivered(f.send(
            Attachment::Endpoint(b.endpoint),
            &cpld(function, r.requester_id(), 7),
        ));
        assert_eq!((to, back), (host, hops));
        let c = Tlp::new_checked(&bytes[..]).unwrap();
        assert_eq!(
            (c.requester_id(), c.completer_id()),
            (t.hosts[b.host].requesters[0], b.host_id)
        );
        max_hops = max_hops.max(hops);
    }
    assert_eq!(
        max_hops, 3,
        "a ring of four: the far side is two links away"
    );
}

fn message(routing: MsgRouting, code: u8, requester: Bdf) -> Vec<u8> {
    let mut repr = Repr::new(Kind::Msg, routing, &[]);
    repr.requester = requester;
    if let Body::Message { code: c, .. } = &mut repr.body {
        *c = tlp::MessageCode::from_byte(code);
    }
    let mut b = vec![0u8; repr.buffer_len()];
    repr.emit(&mut b).unwrap();
    b
}

#[test]
fn implicit_routes_follow_the_binding() {
    let mut f = fabric("default.toml");
    let first = f.topology.endpoints[0].id.0;
    // PM_PME from vf2 goes to the root complex of the host vf2 is bound to.
    let (to, bytes, _) = delivered(f.send(NIC, &message(MsgRouting::ToRoot, 0x18, Bdf(first + 2))));
    assert_eq!(to, HOST_B);
    assert_eq!(
        Tlp::new_checked(&bytes[..]).unwrap().requester_id(),
        VF_SEEN
    );
    // From an unbound function it has nowhere to go.
    assert_eq!(
        f.send(NIC, &message(MsgRouting::ToRoot, 0x18, Bdf(first + 3))),
        Outcome::Dropped {
            node: 1,
            refusal: Refusal::NoRoute
        }
    );
    // PME_Turn_Off broadcast by host-a reaches the device of its functions.
    match f.send(HOST_A, &message(MsgRouting::Broadcast, 0x19, RC)) {
        Outcome::Broadcast(copies) => {
            assert_eq!(copies.len(), 1);
            let (to, _, hops) = delivered(copies[0].clone());
            assert_eq!((to, hops), (NIC, 2));
        }
        other => panic!("{other:?}"),
    }
    // Nonsense directions are refused.
    assert_eq!(
        f.send(HOST_A, &message(MsgRouting::ToRoot, 0x18, RC)),
        Outcome::Dropped {
            node: 0,
            refusal: Refusal::Direction
        }
    );
    assert_eq!(
        f.send(NIC, &message(MsgRouting::Broadcast, 0x19, Bdf(first + 1))),
        Outcome::Dropped {
            node: 1,
            refusal: Refusal::Direction
        }
    );
    assert_eq!(
        f.send(HOST_A, &message(MsgRouting::Local, 0x7f, RC)),
        Outcome::Local { node: 0 }
    );
}

#[test]
fn translation_keeps_the_end_to_end_crc_valid_and_malformed_tlps_drop() {
    let mut f = fabric("default.toml");
    let mut repr = Repr::new(Kind::MWr, MsgRouting::Local, &[1, 2, 3, 4]);
    if let Body::Memory { address, .. } = &mut repr.body {
        *address = BAR + 0x20;
    }
    repr.digest = tlp::Digest::Compute;
    let mut b = vec![0u8; repr.buffer_len()];
    repr.emit(&mut b).unwrap();
    let (_, bytes, _) = delivered(f.send(HOST_A, &b));
    let w = Tlp::new_checked(&bytes[..]).unwrap();
    assert_ne!(w.address(), BAR + 0x20, "translated");
    assert!(w.ecrc_ok(), "and the digest recomputed");

    let mut short = mwr(RC, BAR);
    short.truncate(14);
    assert_eq!(
        f.send(HOST_A, &short),
        Outcome::Dropped {
            node: 0,
            refusal: Refusal::Malformed
        }
    );
    assert_eq!(f.states[0].counters[1].refused(Refusal::Malformed), 1);
}

#[test]
fn new_routes_take_effect_between_bursts() {
    use fabric::routing::epoch;
    use fabric::{Action, NodeState, NodeTables};
    let t = Topology::load(&config("default.toml")).unwrap();
    // The polling core of sw1 (where the device attaches) reads its tables
    // through an epoch reader.
    let (mut publisher, mut reader) = epoch::channel(NodeTables::build(&t, 1));
    let mut state = NodeState::new(4);
    let vf1 = Bdf(t.endpoints[0].id.0 + 1);
    let nic_port = t.endpoints[0].attach.port;
    let link_port = t.links[0].1.port;
    // vf1's DMA: where it goes, and the fabric address it carries.
    let dma = |reader: &epoch::Reader<NodeTables>, state: &mut NodeState| {
        let mut tlp = mwr(vf1, 0x1_0000_0000);
        let mut reply = [0u8; 16];
        let action = reader
            .get()
            .forward(nic_port, &mut tlp, &mut reply, state, 0);
        let egress = match action {
            Action::Forward(p) => Some(p),
            _ => None,
        };
        (egress, Tlp::new_checked(&tlp[..]).unwrap().address())
    };
    assert_eq!(
        dma(&reader, &mut state),
        (Some(link_port), t.hosts[0].fabric_dma[0])
    );
    // Move vf1 to host-b: build aside and publish; until the core refreshes
    // (between bursts) it keeps the tables it has.
    let mut moved = t.clone();
    moved.bindings[0].host = 1;
    moved.bindings[0].host_id = Bdf::new(2, 0, 0);
    publisher.publish(NodeTables::build(&moved, 1)).unwrap();
    assert_eq!(
        dma(&reader, &mut state),
        (Some(link_port), t.hosts[0].fabric_dma[0])
    );
    assert!(reader.refresh());
    // Now vf1's DMA lands in host-b's window.
    assert_eq!(
        dma(&reader, &mut state),
        (Some(link_port), t.hosts[1].fabric_dma[0])
    );
    assert_eq!(
        publisher.collect(),
        1,
        "the old tables are freed by the publisher"
    );
}
