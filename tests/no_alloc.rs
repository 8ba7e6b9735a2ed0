//! The per-TLP paths allocate nothing: forwarding (checks, routing,
//! translation, refusals and their log) and the reliable link (packing,
//! framing, checking, delivering, acknowledging, credits). A counting global
//! allocator watches them after a warm-up.

// A global allocator cannot be written without `unsafe`; this one only counts.
#![allow(unsafe_code)]

use fabric::link::{Link, LinkConfig};
use fabric::{Action, NodeState, NodeTables, Topology};
use rings::credits::Cost;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use tlp::build::{memory_read, memory_write, MemAccess};
use tlp::Bdf;

struct Counting;

thread_local! {
    // Per thread, so tests running side by side do not see each other.
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

fn count() {
    // `try_with`: during thread teardown the slot may be gone already.
    let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
}

// SAFETY: every call is passed straight to the system allocator, which
// upholds GlobalAlloc's contract; the counter has no effect on memory.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: the caller's layout contract is passed on unchanged.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `alloc` above with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: as for `dealloc` and `alloc`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> usize {
    ALLOCATIONS.with(Cell::get)
}

#[test]
fn forwarding_and_the_link_allocate_nothing_per_tlp() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../configs/default.toml");
    let t = Topology::load(path.as_ref()).unwrap();
    let sw0 = NodeTables::build(&t, 0);
    let mut state = NodeState::new(4);
    let mut templates = Vec::new();
    let mut buf = [0u8; 64];
    let n = memory_write(
        &mut buf,
        Bdf(0),
        0,
        MemAccess::dwords(0xfe00_0010, 4),
        &[7; 16],
    )
    .unwrap();
    templates.push(buf[..n].to_vec()); // forwarded, translated
    let n = memory_read(&mut buf, Bdf(0), 3, MemAccess::dwords(0xfd00_0000, 1)).unwrap();
    templates.push(buf[..n].to_vec()); // Unsupported Request
    let n = memory_write(
        &mut buf,
        Bdf(0x2000),
        0,
        MemAccess::dwords(0xfe00_0010, 1),
        &[1; 4],
    )
    .unwrap();
    templates.push(buf[..n].to_vec()); // spoofed: dropped and logged
    let mut tlp = [0u8; 64];
    let mut reply = [0u8; 16];

    let config = LinkConfig::default();
    let peer = config.peer();
    let (mut a, mut b) = (Link::new(config).unwrap(), Link::new(peer).unwrap());
    let mut frame = vec![0u8; 1514];
    let link_tlp = templates[0].clone();
    let cost = Cost::of(&tlp::classify(&link_tlp).unwrap());

    let mut run = |rounds: u64, state: &mut NodeState| {
        let mut outcomes = [0u64; 3];
        for round in 0..rounds {
            for (i, template) in templates.iter().enumerate() {
                let tlp = &mut tlp[..template.len()];
                tlp.copy_from_slice(template);
                match sw0.forward(1, tlp, &mut reply, state, round) {
                    Action::Forward(_) => outcomes[0] += 1,
                    Action::Reply { .. } => outcomes[1] += 1,
                    Action::Drop(_) => outcomes[2] += 1,
                    other => panic!("{i}: {other:?}"),
                }
            }
            let now = round;
            let _ = a.try_send(&link_tlp, now);
            if round % 8 == 0 {
                a.flush();
            }
            while let Some(n) = a.poll_transmit(now, &mut frame) {
                let mut got = 0;
                let _ = b.receive(&frame[..n], now, |_| got += 1);
                for _ in 0..got {
                    b.release(cost);
                }
            }
            while let Some(n) = b.poll_transmit(now, &mut frame) {
                let _ = a.receive(&frame[..n], now, |_| {});
            }
        }
        outcomes
    };
    run(100, &mut state);
    let before = allocations();
    let outcomes = run(10_000, &mut state);
    let during = allocations() - before;
    assert_eq!(outcomes, [10_000; 3]);
    assert!(b.stats().tlps_delivered > 10_000);
    assert_eq!(
        during, 0,
        "allocations while forwarding 30,000 TLPs and linking 10,000"
    );
}

#[test]
fn a_node_pipeline_forwards_a_million_tlps_without_allocating() {
    use fabric::frame::{FrameHeader, FrameWriter};
    use fabric::routing::epoch;
    use lcore::{FrameSettings, NodeTask, Task};
    use pmd::{FramePool, NullPort, Port};

    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../configs/forward.toml");
    let t = Topology::load(path.as_ref()).unwrap();
    // Frames of 8 writes each way, as `tlpfabric forward` sends them.
    let frame = |requester: Bdf, base: u64| {
        let mut f = vec![0u8; 1514];
        let mut w = FrameWriter::new(&mut f, &FrameHeader::default(), 1500).unwrap();
        let mut tlp = [0u8; 96];
        for i in 0..8u64 {
            let n = memory_write(
                &mut tlp,
                requester,
                0,
                MemAccess::dwords(base + 64 * i, 16),
                &[1; 64],
            )
            .unwrap();
            w.push(&tlp[..n]).unwrap();
        }
        let n = w.finish();
        f.truncate(n);
        f
    };
    let east = frame(
        Bdf::new(t.hosts[0].fabric_bus, 0, 0),
        t.endpoints[0].fabric_bar,
    );
    let west = frame(t.endpoints[0].id, t.hosts[0].fabric_dma[0]);
    let pool = FramePool::new(1024, 2048);
    let ports: Vec<Box<dyn Port + Send>> = vec![
        Box::new(NullPort::new("west", pool.clone(), vec![east])),
        Box::new(NullPort::new("east", pool.clone(), vec![west])),
    ];
    let (_publisher, reader) = epoch::channel(NodeTables::build(&t, 0));
    let mut task = NodeTask::new("fwd", reader, ports, pool, FrameSettings::default());
    for _ in 0..100 {
        task.poll(0);
    }
    let before = allocations();
    let start = task.stats().tlps_out;
    while task.stats().tlps_out - start < 1_000_000 {
        task.poll(0);
    }
    let during = allocations() - before;
    assert_eq!(task.stats().tlps_refused, 0);
    assert!(task.stats().frames_out > 0);
    assert_eq!(during, 0, "allocations while forwarding a million TLPs");
}

/// A part of the fabric whose node pipelines count what their polls
/// allocate.
struct Counted(assembly::Part);

thread_local! {
    static NODE_ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

impl lcore::Task for Counted {
    fn name(&self) -> &str {
        self.0.name()
    }

    fn poll(&mut self, now: u64) -> usize {
        if self.0.node().is_none() {
            return self.0.poll(now);
        }
        let before = allocations();
        let done = self.0.poll(now);
        let during = allocations() - before;
        NODE_ALLOCATIONS.with(|c| c.set(c.get() + during));
        done
    }
}

#[test]
fn the_fabric_s_node_pipelines_allocate_nothing_while_bindings_migrate() {
    use assembly::{build, ScenarioConfig};
    use lcore::Deterministic;
    use migrate::{Outcome, Schedule};
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../configs/default.toml");
    let t = Topology::load(path.as_ref()).unwrap();
    // VM and endpoint migrations every 5 ms after a 20 ms warm-up, over
    // links that delay some frames, under
    // 200,000 writes per second per host with reads, configuration
    // requests and register reads among them.
    let c = ScenarioConfig {
        rate: 200_000.0,
        duration: 120_000_000,
        schedule: Schedule {
            vm_migrations: 10,
            endpoint_migrations: 10,
            start: 20_000_000,
            interval: 5_000_000,
            ..Schedule::default()
        },
        config_dir: concat!(env!("CARGO_MANIFEST_DIR"), "/../configs").into(),
        // One frame in twenty between the nodes held back 2 ms: pauses
        // last, and hold what arrives meanwhile.
        link_faults: Some(fabric::FaultConfig {
            delay: 0.05,
            delay_ticks: 2_000_000,
            seed: 7,
            ..fabric::FaultConfig::NONE
        }),
        ..ScenarioConfig::default()
    };
    let s = build(&t, &c).unwrap();
    let mut d: Deterministic<Counted> = Deterministic::new(1_000);
    for part in s.models.into_iter().chain(s.nodes) {
        d.add(Counted(part));
    }
    // Warm-up: queues, tables and buffers reach their working sizes.
    d.run_until(u64::MAX, |d| d.now() >= 19_000_000);
    NODE_ALLOCATIONS.with(|c| c.set(0));
    d.run_until(u64::MAX, |d| d.now() >= c.duration + 10_000_000);
    let during = NODE_ALLOCATIONS.with(Cell::get);
    let parts: Vec<&assembly::Part> = d.tasks().iter().map(|c| &c.0).collect();
    let o = parts.iter().find_map(|p| p.orchestrator()).unwrap();
    let completed = o
        .records()
        .iter()
        .filter(|r| r.outcome == Some(Outcome::Completed))
        .count();
    assert_eq!(completed, 20, "{:?}", o.records());
    let gate = parts
        .iter()
        .filter_map(|p| p.node())
        .find_map(|n| n.gate())
        .unwrap();
    // The pauses held TLPs: the hold and release paths ran.
    assert!(gate.stats().held > 0, "{:?}", gate.stats());
    let tlps: u64 = parts
        .iter()
        .filter_map(|p| p.node())
        .map(|n| n.stats().tlps_in)
        .sum();
    assert!(tlps > 50_000, "{tlps}");
    assert_eq!(
        during, 0,
        "allocations in the node pipelines' polls while {tlps} TLPs crossed them and 20 migrations held and released traffic"
    );
}

#[test]
fn a_pause_holds_and_releases_thousands_of_small_tlps_without_allocating() {
    use lcore::gate::GatedFunction;
    use lcore::{Arrival, Gate, GateCommand, GateOffer};
    use rings::pause::{Direction, IdMode};
    use std::time::Duration;
    // One gated function without a VDI, its BAR at 0x8001_0000.
    let function = GatedFunction {
        function: Bdf(0x4001),
        bar: (0x8001_0000, 0x1_0000),
    };
    let (mut tx, rx) = rings::spsc::ring(64);
    let mut gate = Gate::new(1, vec![(function, None)], rx, Duration::from_millis(1));
    let mut tlps = Vec::new();
    let mut buf = [0u8; 128];
    for i in 0..4_000u64 {
        let access = MemAccess::dwords(0x8001_0000 + (i % 256) * 64, 16);
        let n = memory_write(&mut buf, Bdf(0xff00), 0, access, &[i as u8; 64]).unwrap();
        tlps.push(buf[..n].to_vec());
    }
    let arrival = Arrival {
        dir: Direction::Down,
        ingress: 0,
        credits: None,
        redirected: false,
        again: false,
    };
    let mut reply = [0u8; 64];
    let mut released = 0;
    let mut round = |gate: &mut Gate, tx: &mut rings::spsc::Producer<GateCommand>| {
        let pause = GateCommand::Pause {
            binding: 0,
            mode: IdMode::Common,
            stopped: Some(Direction::Down),
        };
        tx.push(pause).unwrap();
        gate.poll(0);
        let mut held = 0;
        for t in &tlps {
            if gate.offer(0, arrival, t, &mut reply, 1) == GateOffer::Held {
                held += 1;
            }
        }
        let release = GateCommand::Release {
            binding: 0,
            requester: None,
            retarget: None,
        };
        tx.push(release).unwrap();
        for now in 2..10 {
            gate.poll(now);
            gate.drain_released(|_, _| released += 1);
        }
        held
    };
    // Once to warm up the release lists, then counted.
    assert_eq!(round(&mut gate, &mut tx), 4_000);
    let before = allocations();
    assert_eq!(round(&mut gate, &mut tx), 4_000);
    let during = allocations() - before;
    assert_eq!(released, 8_000);
    assert_eq!(during, 0, "allocations holding and releasing 4,000 writes");
}
