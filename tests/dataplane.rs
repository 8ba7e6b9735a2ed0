//! The default fabric running as a dataplane: two node pipelines joined by
//! an in-memory ring link, with a host and the device on ring ports held by
//! the test, polled in the deterministic single-thread mode. TLPs sent in
//! frames by the host come out at the device translated, completions go
//! back, and what access control refuses never leaves the first node.

use fabric::frame::{Frame as FrameView, FrameHeader, FrameWriter, ETHERTYPE};
use fabric::routing::epoch;
use fabric::{NodeTables, Topology};
use lcore::{Deterministic, FrameSettings, NodeTask, Task};
use pmd::{ring_link, ClosedPort, FaultPort, FramePool, Port, RingPort};
use std::sync::{Arc, Mutex};
use tlp::build::{completion, memory_read, memory_write, CplFields, MemAccess};
use tlp::{Bdf, CplStatus, Tlp};

type DynPort = Box<dyn Port + Send>;

/// A task that is a node pipeline, shared so the test can read its counters.
struct Shared(Arc<Mutex<NodeTask<DynPort>>>);

impl Task for Shared {
    fn name(&self) -> &str {
        "node"
    }
    fn poll(&mut self, now: u64) -> usize {
        self.0.lock().unwrap().poll(now)
    }
}

struct Fabric {
    runner: Deterministic,
    host: RingPort,
    device: RingPort,
    nodes: Vec<Arc<Mutex<NodeTask<DynPort>>>>,
    pool: FramePool,
    topology: Topology,
}

fn build() -> Fabric {
    build_with(None, None)
}

/// The default fabric; with `faults`, its link meets them each way and runs
/// the reliable link over it, with `flush_deadline` if given.
fn build_with(faults: Option<fabric::FaultConfig>, flush_deadline: Option<u64>) -> Fabric {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../configs/default.toml");
    let t = Topology::load(path.as_ref()).unwrap();
    let pool = FramePool::new(4096, 1600);
    let (l0, l1) = ring_link("sw0-sw1", 1024, 1514);
    let (host_edge, host) = ring_link("host-a", 1024, 1514);
    let (device_edge, device) = ring_link("nic0", 1024, 1514);
    let (l0, l1): (DynPort, DynPort) = match faults {
        Some(f) => (
            Box::new(FaultPort::new(l0, f, pool.clone())),
            Box::new(FaultPort::new(
                l1,
                fabric::FaultConfig {
                    seed: f.seed + 1,
                    ..f
                },
                pool.clone(),
            )),
        ),
        None => (Box::new(l0), Box::new(l1)),
    };
    // sw0: port 0 link, 1 host-a, 2 host-b (nothing attached), 3 unused;
    // sw1: port 0 link, 1 the device.
    let mut ports = [
        vec![l0, Box::new(host_edge) as DynPort],
        vec![l1, Box::new(device_edge) as DynPort],
    ];
    let mut runner: Deterministic = Deterministic::new(1_000);
    let mut nodes = Vec::new();
    for (n, ports) in ports.iter_mut().enumerate() {
        let mut ports = std::mem::take(ports);
        ports.push(Box::new(ClosedPort::default()));
        ports.push(Box::new(ClosedPort::default()));
        let (_publisher, reader) = epoch::channel(NodeTables::build(&t, n));
        let mut task = NodeTask::new(
            &t.nodes[n].name,
            reader,
            ports,
            pool.clone(),
            FrameSettings::default(),
        );
        if faults.is_some() {
            let mut config = fabric::LinkConfig {
                replay_timeout: 50_000,
                ..t.link_config(0, n == 0).unwrap()
            };
            config.flush_deadline = flush_deadline.unwrap_or(config.flush_deadline);
            task.with_reliable_link(0, config).unwrap();
        }
        let task = Arc::new(Mutex::new(task));
        runner.add(Box::new(Shared(task.clone())));
        nodes.push(task);
    }
    Fabric {
        runner,
        host,
        device,
        nodes,
        pool,
        topology: t,
    }
}

fn send(port: &mut RingPort, pool: &FramePool, tlps: &[Vec<u8>]) {
    let mut f = pool.alloc().unwrap();
    let mut w = FrameWriter::new(f.buffer_mut(), &FrameHeader::default(), 1500).unwrap();
    for t in tlps {
        w.push(t).unwrap();
    }
    let n = w.finish();
    f.set_len(n);
    assert_eq!(port.tx_burst(0, &mut vec![f]), 1);
}

fn receive(port: &mut RingPort) -> Vec<Vec<u8>> {
    let mut frames = Vec::new();
    port.rx_burst(0, &mut frames, 64);
    frames
        .iter()
        .flat_map(|f| {
            let view = FrameView::new_checked(&f[..], ETHERTYPE).unwrap();
            view.tlps().map(|t| t.to_vec()).collect::<Vec<_>>()
        })
        .collect()
}

fn mwr(requester: Bdf, address: u64, n: u8) -> Vec<u8> {
    let mut b = vec![0u8; 64];
    let len = memory_write(&mut b, requester, 0, MemAccess::dwords(address, 1), &[n; 4]).unwrap();
    b.truncate(len);
    b
}

#[test]
fn tlps_cross_two_node_pipelines_translated_and_in_order() {
    let mut f = build();
    let rc = Bdf(0);
    let writes: Vec<Vec<u8>> = (0..40u8)
        .map(|i| mwr(rc, 0xfe00_0000 + 4 * i as u64, i))
        .collect();
    send(&mut f.host, &f.pool, &writes[..20]);
    send(&mut f.host, &f.pool, &writes[20..]);
    let mut got = Vec::new();
    f.runner.run_until(50, |_| false);
    got.extend(receive(&mut f.device));
    assert_eq!(got.len(), 40);
    let vf1_bar = f.topology.endpoints[0].fabric_bar + f.topology.endpoints[0].bar_size;
    for (i, t) in got.iter().enumerate() {
        let t = Tlp::new_checked(&t[..]).unwrap();
        assert_eq!(t.address(), vf1_bar + 4 * i as u64, "in order, translated");
        assert_eq!(t.payload(), [i as u8; 4]);
    }
    // A read and its completion make the round trip.
    let mut b = vec![0u8; 32];
    let n = memory_read(&mut b, rc, 0x33, MemAccess::dwords(0xfe00_0000, 1)).unwrap();
    send(&mut f.host, &f.pool, &[b[..n].to_vec()]);
    f.runner.run_until(10, |_| false);
    let req = receive(&mut f.device).pop().unwrap();
    let r = Tlp::new_checked(&req[..]).unwrap();
    let fields = CplFields {
        completer: Bdf(f.topology.endpoints[0].id.0 + 1),
        requester: r.requester_id(),
        tag: r.tag(),
        status: CplStatus::Sc,
        byte_count: 4,
        lower_address: 0,
    };
    let n = completion(&mut b, fields, &[5, 6, 7, 8]).unwrap();
    send(&mut f.device, &f.pool, &[b[..n].to_vec()]);
    f.runner.run_until(10, |_| false);
    let cpl = receive(&mut f.host).pop().unwrap();
    let c = Tlp::new_checked(&cpl[..]).unwrap();
    assert_eq!(
        (c.requester_id(), c.tag(), c.payload()),
        (rc, 0x33, &[5, 6, 7, 8][..])
    );
    let s0 = *f.nodes[0].lock().unwrap().stats();
    assert_eq!((s0.tlps_in, s0.tlps_out, s0.tlps_refused), (42, 42, 0));
    assert_eq!(
        s0.tlps_in_by_class,
        [40, 1, 1],
        "posted, non-posted, completion"
    );
    assert_eq!(
        s0.cut_through, 4,
        "the frames went on whole: two of writes, the read, the completion"
    );
}

/// The default fabric's first switch alone, sending frames of at most 200
/// bytes, with its host's port and the far end of its link to the next
/// switch.
struct SmallMtuNode {
    node: NodeTask<DynPort>,
    /// Kept so the node's tables stay published, as in a running fabric.
    _tables: epoch::Publisher<NodeTables>,
    host: RingPort,
    l1: RingPort,
    pool: FramePool,
}

fn small_mtu_node() -> SmallMtuNode {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../configs/default.toml");
    let t = Topology::load(path.as_ref()).unwrap();
    let pool = FramePool::new(256, 1600);
    let (l0, l1) = ring_link("sw0-sw1", 64, 1514);
    let (host_edge, host) = ring_link("host-a", 64, 1514);
    let ports: Vec<DynPort> = vec![
        Box::new(l0),
        Box::new(host_edge),
        Box::new(ClosedPort::default()),
        Box::new(ClosedPort::default()),
    ];
    let (tables, reader) = epoch::channel(NodeTables::build(&t, 0));
    let settings = FrameSettings {
        mtu: 200,
        ..FrameSettings::default()
    };
    let node = NodeTask::new("sw0", reader, ports, pool.clone(), settings);
    SmallMtuNode {
        node,
        _tables: tables,
        host,
        l1,
        pool,
    }
}

#[test]
fn a_tlp_too_large_for_the_frames_of_its_egress_is_counted() {
    let mut f = small_mtu_node();
    // One frame: a read nothing routes (answered, so the frame's TLPs part
    // ways and are sent one by one), then a write of 256 bytes.
    let mut b = vec![0u8; 32];
    let n = memory_read(&mut b, Bdf(0), 9, MemAccess::dwords(0xfd00_0000, 1)).unwrap();
    let outside = b[..n].to_vec();
    let mut b = vec![0u8; 300];
    let access = MemAccess::dwords(0xfe00_0000, 64);
    let n = memory_write(&mut b, Bdf(0), 0, access, &[7; 256]).unwrap();
    send(&mut f.host, &f.pool, &[outside, b[..n].to_vec()]);
    f.node.poll(0);
    let s = *f.node.stats();
    assert_eq!((s.tlps_in, s.tlps_refused, s.tlps_out), (2, 1, 0));
    assert_eq!(s.too_large, 1, "the write fits no 200-byte frame");
    assert_eq!(
        receive(&mut f.host).len(),
        1,
        "the read's completion went back"
    );
    assert!(receive(&mut f.l1).is_empty());
}

#[test]
fn a_frame_larger_than_the_node_sends_is_repacked_not_cut_through() {
    let mut f = small_mtu_node();
    // Twelve writes to the switch's far side in one frame of about 500
    // bytes: every TLP goes one way, but the frame is over the node's MTU.
    let writes: Vec<Vec<u8>> = (0..12u8)
        .map(|i| mwr(Bdf(0), 0xfe00_0000 + 4 * i as u64, i))
        .collect();
    send(&mut f.host, &f.pool, &writes);
    f.node.poll(0);
    let s = *f.node.stats();
    assert_eq!((s.tlps_in, s.tlps_out, s.too_large), (12, 12, 0));
    assert_eq!((s.cut_through, s.repacked), (0, 1));
    let mut frames = Vec::new();
    f.l1.rx_burst(0, &mut frames, 64);
    assert!(frames.len() > 1, "split over several frames");
    let mut tags = Vec::new();
    for frame in &frames {
        assert!(frame.len() <= 14 + 200, "a {}-byte frame", frame.len());
        let view = FrameView::new_checked(&frame[..], ETHERTYPE).unwrap();
        tags.extend(
            view.tlps()
                .map(|t| Tlp::new_checked(t).unwrap().payload()[0]),
        );
    }
    assert_eq!(tags, (0..12u8).collect::<Vec<_>>(), "all, in order");
}

#[test]
fn refused_tlps_never_leave_the_first_node() {
    let mut f = build();
    let spoofed = mwr(Bdf::new(0x20, 0, 0), 0xfe00_0000, 1);
    let outside = {
        let mut b = vec![0u8; 32];
        let n = memory_read(&mut b, Bdf(0), 9, MemAccess::dwords(0xfd00_0000, 1)).unwrap();
        b.truncate(n);
        b
    };
    send(&mut f.host, &f.pool, &[spoofed, outside]);
    f.runner.run_until(10, |_| false);
    assert!(receive(&mut f.device).is_empty());
    // The read gets its Unsupported Request back on the host's port.
    let back = receive(&mut f.host);
    assert_eq!(back.len(), 1);
    let c = Tlp::new_checked(&back[0][..]).unwrap();
    assert_eq!((c.status(), c.tag()), (CplStatus::Ur, 9));
    let mut node = f.nodes[0].lock().unwrap();
    assert_eq!(node.stats().tlps_refused, 2);
    assert_eq!(
        node.state().counters[1].refused(fabric::Refusal::Spoofed),
        1
    );
}

#[test]
fn a_frame_whose_tlps_part_ways_is_split_in_order() {
    let mut f = build();
    let rc = Bdf(0);
    let mut read = vec![0u8; 32];
    let n = memory_read(&mut read, rc, 4, MemAccess::dwords(0xfd00_0000, 1)).unwrap();
    read.truncate(n);
    let frame = [
        mwr(rc, 0xfe00_0000, 1),
        mwr(rc, 0xfe00_0004, 2),
        read,
        mwr(rc, 0xfe00_0008, 3),
    ];
    send(&mut f.host, &f.pool, &frame);
    f.runner.run_until(10, |_| false);
    let got = receive(&mut f.device);
    let payloads: Vec<u8> = got
        .iter()
        .map(|t| Tlp::new_checked(&t[..]).unwrap().payload()[0])
        .collect();
    assert_eq!(payloads, [1, 2, 3]);
    let back = receive(&mut f.host);
    assert_eq!(
        Tlp::new_checked(&back[0][..]).unwrap().status(),
        CplStatus::Ur
    );
    assert_eq!(f.nodes[0].lock().unwrap().stats().cut_through, 0);
}

#[test]
fn malformed_frames_are_counted_and_dropped() {
    let mut f = build();
    let mut frame = f.pool.alloc_from(&[0u8; 60]).unwrap();
    frame[12] = 0x88;
    frame[13] = 0xb5;
    f.host.tx_burst(0, &mut vec![frame]);
    f.runner.run_until(5, |_| false);
    assert_eq!(f.nodes[0].lock().unwrap().stats().frames_malformed, 1);
    assert!(receive(&mut f.device).is_empty());
    // Every buffer is back in the pool once the frames are gone.
    drop(f.runner);
    drop(f.nodes);
    assert_eq!(f.pool.available(), f.pool.count());
}

#[test]
fn a_reliable_link_between_the_nodes_survives_a_faulty_cable() {
    let faults = fabric::FaultConfig {
        drop: 0.02,
        duplicate: 0.02,
        reorder: 0.02,
        corrupt: 0.02,
        delay: 0.0,
        delay_ticks: 0,
        seed: 1,
    };
    let Fabric {
        mut runner,
        mut host,
        mut device,
        nodes,
        pool,
        ..
    } = build_with(Some(faults), None);
    const TOTAL: u32 = 3000;
    let mut got: Vec<Vec<u8>> = Vec::new();
    let mut next = 0u32;
    for _ in 0..200_000 {
        if next < TOTAL {
            let batch: Vec<Vec<u8>> = (next..(next + 20).min(TOTAL))
                .map(|i| {
                    mwr(
                        Bdf(0),
                        0xfe00_0000 + 4 * (i as u64 % 0x4000),
                        (i % 251) as u8,
                    )
                })
                .collect();
            next += batch.len() as u32;
            send(&mut host, &pool, &batch);
        }
        runner.round();
        got.extend(receive(&mut device));
        if got.len() >= TOTAL as usize {
            break;
        }
    }
    assert_eq!(got.len(), TOTAL as usize, "every TLP arrived once");
    for (i, t) in got.iter().enumerate() {
        let t = Tlp::new_checked(&t[..]).unwrap();
        assert_eq!(t.payload(), [(i % 251) as u8; 4], "in order");
    }
    let s0 = nodes[0].lock().unwrap();
    let link = s0.link_stats(0).unwrap();
    assert!(link.frames_replayed > 0, "{link:?}");
    let s1 = nodes[1].lock().unwrap();
    let far = s1.link_stats(0).unwrap();
    assert!(
        far.frames_bad_crc > 0 && far.duplicates + far.out_of_order > 0,
        "{far:?}"
    );
}

#[test]
fn a_lone_tlp_does_not_wait_for_company_when_none_is_coming() {
    let clean = fabric::FaultConfig::NONE;
    // A flush deadline of a whole second: were the open frame kept until
    // then, the TLP could not arrive within the rounds below.
    let Fabric {
        mut runner,
        mut host,
        mut device,
        nodes,
        pool,
        ..
    } = build_with(Some(clean), Some(1_000_000_000));
    send(&mut host, &pool, &[mwr(Bdf(0), 0xfe00_0000, 7)]);
    let mut got = Vec::new();
    for _ in 0..10 {
        runner.round();
        got.extend(receive(&mut device));
    }
    assert_eq!(got.len(), 1, "the TLP crossed the reliable link at once");
    let s0 = nodes[0].lock().unwrap();
    assert_eq!(s0.link_stats(0).unwrap().tlps_sent, 1);
}
