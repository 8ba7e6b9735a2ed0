//! A manager and agents on loopback: nodes come up as they report, go
//! down when their process stops, and a node with another topology is
//! refused with the reason.

use control::pb::{BindingReport, LinkReport, NodeReport};
use control::{Agent, AgentConfig, Manager, ManagerConfig};
use std::time::{Duration, Instant};

fn topology() -> fabric::Topology {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs/default.toml");
    fabric::Topology::load(&path).expect("the default topology")
}

const HEARTBEAT: Duration = Duration::from_millis(50);

fn agent(addr: &str, node: &str, digest: u64) -> Agent {
    let mut received = 0;
    let sample = Box::new(move || {
        // A link that receives, and a binding that timed out twice.
        received += 100;
        NodeReport {
            tlps_in: received,
            links: vec![LinkReport {
                link: "link0".into(),
                frames_received: received,
                ..LinkReport::default()
            }],
            bindings: vec![BindingReport {
                binding: 0,
                requests_sent: 5,
                received: 3,
                completion_timeouts: 2,
            }],
            ..NodeReport::default()
        }
    });
    let config = AgentConfig {
        manager: addr.into(),
        node: node.into(),
        digest,
        heartbeat: HEARTBEAT,
    };
    Agent::spawn(config, sample).expect("the agent starts")
}

/// Polls the manager's status until `done` holds (or 10 s pass).
fn until(addr: &str, done: impl Fn(&control::pb::StatusReply) -> bool) -> control::pb::StatusReply {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let s = control::status(addr, Duration::from_secs(2)).expect("the manager answers");
        if done(&s) || Instant::now() > deadline {
            return s;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn nodes_register_report_and_go_down_when_their_process_stops() {
    let t = topology();
    let digest = control::topology_digest(&t);
    let manager = Manager::start(ManagerConfig {
        topology: t,
        listen: "127.0.0.1:0".into(),
        heartbeat: HEARTBEAT,
    })
    .expect("the manager listens");
    let addr = manager.addr().to_string();
    let s = control::status(&addr, Duration::from_secs(2)).unwrap();
    assert!(s.nodes.iter().all(|n| n.state == "unregistered"), "{s:?}");
    let a = agent(&addr, "sw0", digest);
    let b = agent(&addr, "sw1", digest);
    let s = until(&addr, |s| s.links[0].state == "up");
    assert_eq!(s.links[0].state, "up", "{}", control::render(&s));
    assert!(s
        .nodes
        .iter()
        .all(|n| n.state == "up" && n.pid == std::process::id()));
    assert_eq!(s.bindings[0].completion_timeouts, 2);
    assert_eq!(s.bindings[0].unreachable, "");
    assert!(a.log().reports > 0 && a.log().registered == 1);
    // sw1's process ends: three heartbeats later it is down, and so is the
    // link, and binding 0 (host on sw0, device on sw1) says why.
    drop(b);
    let s = until(&addr, |s| s.nodes[1].state == "down");
    let text = control::render(&s);
    assert_eq!(s.nodes[1].state, "down", "{text}");
    assert_eq!(s.nodes[0].state, "up", "{text}");
    assert_eq!(s.links[0].state, "down", "{text}");
    assert_eq!(s.bindings[0].unreachable, "node sw1 is not up", "{text}");
    assert!(text.contains("unreachable: node sw1 is not up"), "{text}");
    drop(a);
}

#[test]
fn a_node_with_another_topology_is_refused_and_says_why() {
    let manager = Manager::start(ManagerConfig {
        topology: topology(),
        listen: "127.0.0.1:0".into(),
        heartbeat: HEARTBEAT,
    })
    .unwrap();
    let a = agent(&manager.addr().to_string(), "sw0", 12345);
    let deadline = Instant::now() + Duration::from_secs(10);
    while a.log().refused.is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let refused = a.log().refused.expect("refused");
    assert!(
        refused.contains("topology differs from the manager's"),
        "{refused}"
    );
    let s = control::status(&manager.addr().to_string(), Duration::from_secs(2)).unwrap();
    assert_eq!(s.nodes[0].state, "unregistered");
}

#[test]
fn an_agent_waits_for_a_manager_that_starts_late_and_one_that_restarts() {
    let t = topology();
    let digest = control::topology_digest(&t);
    // A port that is free now, for a manager that is not there yet.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    let a = agent(&addr, "sw0", digest);
    let deadline = Instant::now() + Duration::from_secs(10);
    while a.log().unreachable == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(a.log().unreachable > 0);
    assert_eq!(a.log().registered, 0);
    let start = || {
        Manager::start(ManagerConfig {
            topology: t.clone(),
            listen: addr.clone(),
            heartbeat: HEARTBEAT,
        })
        .expect("the port is free again")
    };
    let manager = start();
    let s = until(&addr, |s| s.nodes[0].state == "up");
    assert_eq!(s.nodes[0].state, "up");
    // The manager stops and a new one starts on the same address: it knows
    // nothing of the node until the agent registers again.
    drop(manager);
    let _manager = start();
    let s = until(&addr, |s| s.nodes[0].state == "up");
    assert_eq!(s.nodes[0].state, "up", "{}", control::render(&s));
    assert!(a.log().registered >= 2, "{:?}", a.log());
}
