//! A host and a device exchanging tracked traffic across the default fabric
//! (two node pipelines, deterministic single-thread mode): every write
//! arrives once and in order, every read completes with the data written,
//! every DMA write reaches the host — over a clean link and over a faulty
//! one carried by the reliable link.

use fabric::routing::epoch;
use fabric::{FaultConfig, NodeTables, Topology};
use lcore::{Deterministic, FrameSettings, NodeTask, Task};
use pmd::{ring_link, ClosedPort, FaultPort, FramePool, Port};
use std::sync::{Arc, Mutex};
use tlp::Bdf;
use traffic::{EndpointConfig, EndpointModel, FunctionConfig, HostConfig, HostModel, Integrity};

type DynPort = Box<dyn Port + Send>;

/// A task shared with the test, which reads its state afterwards.
struct Shared<T>(Arc<Mutex<T>>);

impl<T: Task> Task for Shared<T> {
    fn name(&self) -> &str {
        "shared"
    }
    fn poll(&mut self, now: u64) -> usize {
        self.0.lock().unwrap().poll(now)
    }
}

fn shared<T: Task + 'static>(runner: &mut Deterministic, task: T) -> Arc<Mutex<T>> {
    let t = Arc::new(Mutex::new(task));
    runner.add(Box::new(Shared(t.clone())));
    t
}

fn run(faults: Option<FaultConfig>, writes: u64, dma: u64) -> Run {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../configs/default.toml");
    let t = Topology::load(path.as_ref()).unwrap();
    let pool = FramePool::new(8192, 1600);
    let (l0, l1) = ring_link("sw0-sw1", 1024, 1514);
    let (host_edge, host_port) = ring_link("host-a", 1024, 1514);
    let (device_edge, device_port) = ring_link("nic0", 1024, 1514);
    let (l0, l1): (DynPort, DynPort) = match faults {
        Some(f) => (
            Box::new(FaultPort::new(l0, f, pool.clone())),
            Box::new(FaultPort::new(
                l1,
                FaultConfig {
                    seed: f.seed + 1,
                    ..f
                },
                pool.clone(),
            )),
        ),
        None => (Box::new(l0), Box::new(l1)),
    };
    let mut runner: Deterministic = Deterministic::new(1_000);
    let host = shared(
        &mut runner,
        HostModel::new(
            HostConfig {
                total_writes: writes,
                ..HostConfig::default()
            },
            host_port,
            pool.clone(),
        ),
    );
    let e = &t.endpoints[0];
    let device = shared(
        &mut runner,
        EndpointModel::new(
            EndpointConfig {
                functions: vec![FunctionConfig {
                    function: Bdf(e.id.0 + 1),
                    bar: e.fabric_bar + e.bar_size,
                    size: e.bar_size as usize,
                    dma: Some(0x1_0000_0000),
                    stream: 2,
                    host_stream: 1,
                    msi: Some(0xfee0_0000),
                    registers: false,
                }],
                total_dma: dma,
                ..EndpointConfig::default()
            },
            device_port,
            pool.clone(),
        ),
    );
    let mut ports = [
        vec![l0, Box::new(host_edge) as DynPort],
        vec![l1, Box::new(device_edge) as DynPort],
    ];
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
            let config = fabric::LinkConfig {
                replay_timeout: 50_000,
                ..t.link_config(0, n == 0).unwrap()
            };
            task.with_reliable_link(0, config).unwrap();
        }
        shared(&mut runner, task);
    }
    let finished = runner.run_until(2_000_000, |_| {
        let (h, d) = (host.lock().unwrap(), device.lock().unwrap());
        h.done()
            && d.done()
            && h.integrity().delivered + d.integrity().delivered
                >= h.integrity().sent + d.integrity().sent
            && h.interrupts() >= d.interrupts()
    });
    assert!(
        finished,
        "traffic did not drain: {:?} {:?}",
        host.lock().unwrap(),
        device.lock().unwrap()
    );
    let (h, d) = (host.lock().unwrap(), device.lock().unwrap());
    Run {
        host: *h.integrity(),
        device: *d.integrity(),
        writes: h.writes(),
        interrupts: (d.interrupts(), h.interrupts()),
    }
}

/// What a run's host and device observed.
struct Run {
    host: Integrity,
    device: Integrity,
    /// Writes the host sent.
    writes: u64,
    /// MSI-X interrupts the device raised, and the host received.
    interrupts: (u64, u64),
}

fn check(run: Run, dma: u64) {
    let Run {
        host,
        device,
        writes,
        interrupts: (raised, received),
    } = run;
    let mut all = host;
    all.add(&device);
    assert!(all.clean(), "host {host:?} device {device:?}");
    // Writes, their read-backs (one per 8 writes) and configuration
    // requests (one per 32 at most: one is done before the next) from the
    // host; DMA from the device, and an MSI-X interrupt after every 32 DMA
    // writes (counted apart from the tracked TLPs).
    let interrupts = dma / 32;
    assert_eq!((raised, received), (interrupts, interrupts));
    let reads = writes.div_ceil(8);
    let config = host.sent - writes - reads;
    assert!((1..=writes.div_ceil(32)).contains(&config), "{config}");
    assert_eq!(device.sent, dma);
    assert_eq!(
        device.delivered, writes,
        "every host write reached the device"
    );
    assert_eq!(
        host.delivered,
        dma + reads + config,
        "every DMA write and completion reached the host"
    );
}

#[test]
fn tracked_traffic_crosses_a_clean_fabric_intact() {
    check(run(None, 5_000, 3_000), 3_000);
}

#[test]
fn tracked_traffic_crosses_a_faulty_link_intact() {
    let faults = FaultConfig {
        drop: 0.01,
        duplicate: 0.01,
        reorder: 0.01,
        corrupt: 0.01,
        delay: 0.0,
        delay_ticks: 0,
        seed: 7,
    };
    check(run(Some(faults), 5_000, 3_000), 3_000);
}

/// The registers the models use are the nic template's: the same offsets,
/// reset values and access classes, so the VDI standing in for a paused
/// function answers as the device model would.
#[test]
fn the_models_registers_are_the_nic_templates() {
    use traffic::registers::*;
    use vdi::registers::Access;
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/templates/nic.toml");
    let template = vdi::Template::load(&path).unwrap();
    let file = &template.registers;
    for (name, offset, access, reset) in [
        ("CTRL_EXT", CTRL_EXT, Access::Shadowable, 0),
        ("STATUS", STATUS, Access::ReadOnly, STATUS_VALUE),
        ("ICR", ICR, Access::ReadSideEffect, 0),
        ("ICS", ICS, Access::WriteSideEffect, 0),
        ("WUS", WUS, Access::WriteOneToClear, WUS_RESET),
        ("TDT0", TDT0, Access::WriteSideEffect, 0),
    ] {
        let hit = file.find(0, offset).unwrap_or_else(|| panic!("{name}"));
        let r = &file.registers()[hit.index];
        assert_eq!(
            (r.name.as_str(), r.offset, r.access),
            (name, offset, access)
        );
        assert_eq!(r.reset, reset as u64, "{name}");
    }
    assert!(file.span(0) as u64 <= REGISTER_BLOCK);
}
