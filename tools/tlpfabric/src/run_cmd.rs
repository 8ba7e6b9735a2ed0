//! `tlpfabric run`: the whole fabric of a topology in one process on the
//! embedded default (in-memory ring ports, a reliable link on every fabric
//! link), with a host model on every host and a device model on every
//! endpoint, traffic flowing for a while, and a report whose integrity line
//! decides the exit status.
//!
//! While traffic flows, the orchestrator migrates the VMs back and forth
//! between the hosts; the gates where endpoints attach hold and release
//! their traffic and record the blackout histograms the report shows.

use crate::forward_cmd::parse_duration;
use crate::{Pmd, EXIT_REJECTED, EXIT_USAGE};
use clap::Args;
use fabric::Topology;
use lcore::{
    Blackouts, CoreSpec, CoreStats, Cores, Deterministic, GateStats, Task, ROUND_THRESHOLDS_NS,
};
use migrate::{AbortReason, Fabric, MigrationKind, Outcome, Phase, Record, Schedule};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use telemetry::report::RunReport;
use telemetry::Summary;
use traffic::Integrity;

#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// The topology (default: the embedded configs/default.toml).
    #[arg(long)]
    config: Option<PathBuf>,
    /// How long traffic flows: `2s`, `500ms`.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    duration: Duration,
    /// Traffic before the measured duration, with no migration: buffers,
    /// caches and page tables warm up before the first blackout counts.
    #[arg(long, default_value = "0s", value_parser = crate::forward_cmd::parse_duration_or_zero)]
    warmup: Duration,
    /// Bytes of data in each host write and read (a multiple of 4, from
    /// 16 to 4096, that fits the links' MTU).
    #[arg(long, default_value_t = 64)]
    payload: usize,
    /// Writes per second each host offers (its reads and the devices' DMA
    /// come on top).
    #[arg(long, default_value_t = 200_000.0)]
    rate: f64,
    /// A read-back after every this many writes of a host (0: none).
    #[arg(long, default_value_t = 8)]
    read_every: u64,
    /// A configuration request after every this many writes of a host
    /// (0: none).
    #[arg(long, default_value_t = 32)]
    config_every: u64,
    /// A register access after every this many writes of a host (0:
    /// none): plain, read-only, write-1-to-clear, doorbell and
    /// clear-on-read registers in turn, each read checked.
    #[arg(long, default_value_t = 16)]
    register_every: u64,
    /// Nanoseconds, or `50us`/`50ms`, a read may wait for its completion.
    #[arg(long, default_value = "50ms", value_parser = parse_duration)]
    completion_timeout: Duration,
    /// Run on one thread with a virtual clock (repeatable) instead of on
    /// pinned cores.
    #[arg(long)]
    deterministic: bool,
    /// VM migrations to perform while traffic flows, spread over the
    /// duration, each binding in turn to the next host.
    #[arg(long, default_value_t = 100)]
    vm_migrations: u64,
    /// Endpoint migrations to perform, alternating with the VM migrations:
    /// each binding's function state moves to a free function of its
    /// device.
    #[arg(long, default_value_t = 100)]
    endpoint_migrations: u64,
    /// Identify migrating requests with `different` IDs (drain completions,
    /// then close) or a `common` ID (close at once); default: each
    /// binding's `id_mode`.
    #[arg(long, value_parser = ["different", "common"])]
    id_mode: Option<String>,
    /// The blackout a migration may have (`50us`, `1ms`); beyond it, before
    /// the switch-over, the migration is abandoned and rolled back.
    #[arg(long, default_value = "10ms", value_parser = parse_duration)]
    budget: Duration,
    /// The longest any phase before the switch-over waits on the fabric
    /// (a pause point closing, a VM or function state handed over); beyond
    /// it the migration is abandoned and rolled back.
    #[arg(long, default_value = "100ms", value_parser = parse_duration)]
    phase_deadline: Duration,
    /// Also write the report as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write the blackout histograms (`per_migration`, `per_tlp`) and the
    /// request round trips (`round_trip`) in the HdrHistogram interval-log
    /// format to this file.
    #[arg(long)]
    hdr_log: Option<PathBuf>,
    /// Write an SVG percentile plot of both blackout histograms.
    #[arg(long)]
    plot: Option<PathBuf>,
    /// Ports: `ring` (in-memory rings, the embedded default) or `dpdk`
    /// (every link a pair of DPDK ethdevs joined by the net_ring driver,
    /// frames in DPDK mbufs; needs a build with `--features dpdk`).
    #[arg(long, value_enum, default_value_t = Pmd::Ring)]
    pmd: Pmd,
    /// EAL arguments for `--pmd dpdk` (default: no hugepages, no PCI,
    /// 1 GiB, a file prefix of this process's own).
    #[arg(long, allow_hyphen_values = true)]
    eal: Option<String>,
    /// Capture what one link carries, at its node's end, to this pcap file
    /// (nanosecond timestamps), off the cores: a capture that falls behind
    /// misses frames (counted), never the fabric.
    #[arg(long)]
    pcap: Option<PathBuf>,
    /// The link `--pcap` captures: `link0`, `link1`, ... (between nodes, in
    /// the topology's order) or a host's or endpoint's name (its link with
    /// its node).
    #[arg(long, default_value = "link0")]
    pcap_port: String,
}

/// `tlpfabric node`: one node of a topology in this process, its links to
/// the other nodes' processes on native AF_PACKET ports.
#[derive(Debug, Args)]
pub(crate) struct NodeArgs {
    #[command(flatten)]
    share: NodeOptions,
    #[command(flatten)]
    run: RunArgs,
}

/// Which node, and where its links run.
#[derive(Debug, Args)]
struct NodeOptions {
    /// The node this process runs: its name in the topology.
    #[arg(long)]
    node: String,
    /// The interface each of the node's links to another node runs on,
    /// `LINK=IFACE` (`link0=eth1`; links are numbered in the topology's
    /// order), one for each such link. With `--pmd dpdk`, `LINK=DEVICE`:
    /// an ethdev, a vdev that `--eal` makes (`net_af_packet0`) or a PCI
    /// address.
    #[arg(long = "port", value_name = "LINK=IFACE")]
    ports: Vec<String>,
    /// After its own traffic and drain, the node keeps forwarding this
    /// long, so that what the other nodes' processes still send it (those
    /// started up to this much later) is answered.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    linger: Duration,
    /// The fabric manager's `HOST:PORT` (`tlpfabric manager`): the node
    /// registers and reports its counters there every heartbeat, from a
    /// thread of its own; without one it runs alone.
    #[arg(long, value_name = "HOST:PORT")]
    manager: Option<String>,
}

/// What a `node` process runs of the topology.
struct NodeShare {
    index: usize,
    /// Link name (`link0`) to interface.
    ifaces: std::collections::HashMap<String, String>,
    linger: Duration,
    manager: Option<String>,
}

/// Checks `--node` and `--port` against the topology: the node exists, and
/// each of its links to other nodes, and only those, has an interface.
fn node_share(args: &NodeOptions, t: &Topology) -> Result<NodeShare, String> {
    let index = t
        .nodes
        .iter()
        .position(|n| n.name == args.node)
        .ok_or_else(|| {
            let names: Vec<&str> = t.nodes.iter().map(|n| n.name.as_str()).collect();
            format!(
                "--node: expected one of the topology's nodes ({}), found {:?}",
                names.join(", "),
                args.node
            )
        })?;
    let mut ifaces = std::collections::HashMap::new();
    for p in &args.ports {
        let Some((link, iface)) = p
            .split_once('=')
            .filter(|(l, i)| !l.is_empty() && !i.is_empty())
        else {
            return Err(format!(
                "--port: expected LINK=IFACE (link0=eth1), found {p:?}"
            ));
        };
        let touches = link
            .strip_prefix("link")
            .and_then(|i| i.parse::<usize>().ok())
            .and_then(|i| t.links.get(i))
            .is_some_and(|(a, b)| a.node == index || b.node == index);
        if !touches {
            return Err(format!(
                "--port {p}: {link} is not a link of node {} (its links: {})",
                args.node,
                links_of(t, index).join(", ")
            ));
        }
        if ifaces.insert(link.to_string(), iface.to_string()).is_some() {
            return Err(format!("--port: {link} given twice"));
        }
    }
    if let Some(missing) = links_of(t, index)
        .into_iter()
        .find(|l| !ifaces.contains_key(l))
    {
        return Err(format!(
            "--port: expected {missing}=IFACE: node {} reaches another node over {missing}",
            args.node
        ));
    }
    Ok(NodeShare {
        index,
        ifaces,
        linger: args.linger,
        manager: args.manager.clone(),
    })
}

/// The links of node `n`, by name.
fn links_of(t: &Topology, n: usize) -> Vec<String> {
    t.links
        .iter()
        .enumerate()
        .filter(|(_, (a, b))| a.node == n || b.node == n)
        .map(|(i, _)| format!("link{i}"))
        .collect()
}

/// Starts reporting node `share`'s counters to the manager at `manager`:
/// its pipeline's, its links' to other nodes, and its hosts' bindings'.
fn start_agent(
    share: &NodeShare,
    manager: &str,
    t: &Topology,
    built: &assembly::Scenario,
) -> Result<control::Agent, control::ControlError> {
    let live = built
        .nodes
        .iter()
        .find_map(|p| p.node().map(lcore::NodeTask::live));
    let n = share.index;
    let links: Vec<(String, u16)> = t
        .links
        .iter()
        .enumerate()
        .filter_map(|(i, (a, b))| {
            let here = [a, b].into_iter().find(|e| e.node == n)?;
            Some((format!("link{i}"), here.port))
        })
        .collect();
    let bindings: Vec<(u32, Arc<traffic::VmCounters>)> = t
        .bindings
        .iter()
        .enumerate()
        .filter(|(_, b)| t.hosts[b.host].attach.node == n)
        .filter_map(|(i, _)| Some((i as u32, built.received.get(i)?.clone())))
        .collect();
    let started = std::time::Instant::now();
    let sample = Box::new(move || {
        use control::pb;
        use std::sync::atomic::Ordering;
        let s = live.as_ref().map(|l| l.snapshot()).unwrap_or_default();
        pb::NodeReport {
            uptime_ns: started.elapsed().as_nanos() as u64,
            frames_in: s.frames_in,
            frames_out: s.frames_out,
            tlps_in: s.tlps_in,
            tlps_out: s.tlps_out,
            tlps_refused: s.tlps_refused,
            links: links
                .iter()
                .map(|(name, port)| {
                    let l = live
                        .as_ref()
                        .and_then(|l| l.link(*port))
                        .unwrap_or_default();
                    pb::LinkReport {
                        link: name.clone(),
                        frames_received: l.frames_received,
                        frames_sent: l.frames_sent,
                        frames_replayed: l.frames_replayed,
                        replay_timeouts: l.replay_timeouts,
                        frames_malformed: l.frames_malformed,
                        down: l.down,
                    }
                })
                .collect(),
            bindings: bindings
                .iter()
                .map(|(i, c)| pb::BindingReport {
                    binding: *i,
                    requests_sent: c.sent.load(Ordering::Acquire),
                    received: c.received.load(Ordering::Acquire),
                    completion_timeouts: c.timeouts.load(Ordering::Acquire),
                })
                .collect(),
            ..pb::NodeReport::default()
        }
    });
    let config = control::AgentConfig {
        manager: manager.to_string(),
        node: t.nodes[n].name.clone(),
        digest: control::topology_digest(t),
        heartbeat: control::DEFAULT_HEARTBEAT,
    };
    control::Agent::spawn(config, sample)
}

/// In-memory links to the node's hosts and devices, AF_PACKET ports on
/// its links to other nodes.
#[cfg(target_os = "linux")]
fn node_ports(share: &NodeShare, t: &Topology) -> assembly::Ports {
    let mut ports = assembly::Ports::ring();
    let inner = ports.link.clone();
    let pool = ports.pool.clone();
    let ifaces = share.ifaces.clone();
    let (ethertype, max_frame) = (t.link.ethertype, 14 + t.link.mtu);
    ports.link = Arc::new(move |name, capacity, frame| match ifaces.get(name) {
        Some(iface) => {
            let config = pmd::af_packet::AfPacketConfig {
                max_frame,
                ..pmd::af_packet::AfPacketConfig::new(iface, ethertype)
            };
            let port = pmd::af_packet::AfPacketPort::open(&config, pool.clone())
                .map_err(|e| e.to_string())?;
            Ok((
                Box::new(port) as DynPort,
                Box::new(pmd::ClosedPort::default()) as DynPort,
            ))
        }
        None => inner(name, capacity, frame),
    });
    ports
}

#[cfg(not(target_os = "linux"))]
fn node_ports(_: &NodeShare, _: &Topology) -> assembly::Ports {
    assembly::Ports::ring()
}

pub(crate) fn node(args: NodeArgs, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    run_share(args.run, Some(args.share), out, err)
}

/// Wraps the node end of link `name` made by `ports` in a capture tap.
fn with_capture(ports: &mut assembly::Ports, name: &str, tap: pmd::capture::Tap) {
    let inner = ports.link.clone();
    let wanted = name.to_string();
    let slot = std::sync::Mutex::new(Some(tap));
    ports.link = std::sync::Arc::new(move |name, capacity, max_frame| {
        let (node_end, far_end) = inner(name, capacity, max_frame)?;
        let tap = (name == wanted).then(|| slot.lock().ok()?.take()).flatten();
        Ok(match tap {
            Some(mut tap) => {
                let traced = pmd::TracePort::new(node_end, move |d, f: &[u8]| tap.record(d, f));
                (Box::new(traced) as DynPort, far_end)
            }
            None => (node_end, far_end),
        })
    });
}

/// Every link a pair of DPDK ethdevs over net_ring, every frame an mbuf.
#[cfg(feature = "dpdk")]
fn dpdk_ports(args: &RunArgs, t: &Topology) -> Result<assembly::Ports, String> {
    use pmd::dpdk::{DpdkPort, Mempool};
    crate::init_eal(args.eal.as_deref(), "run", "")?;
    // As many buffers as the in-memory default has, each room for a frame,
    // and a cache for each core (both register as DPDK lcores).
    let room = (14 + t.link.mtu).max(2048) as u16;
    let mempool = Mempool::new("run", 32_767, 256, room).map_err(|e| e.to_string())?;
    let pool = pmd::FramePool::dpdk(mempool);
    let link_pool = pool.clone();
    Ok(assembly::Ports {
        pool,
        link: std::sync::Arc::new(move |name, capacity, _| {
            let (a, b) = DpdkPort::pair(name, capacity as u32, &link_pool)
                .map_err(|e| format!("--pmd dpdk: {e}"))?;
            Ok((Box::new(a) as DynPort, Box::new(b) as DynPort))
        }),
    })
}

/// Makes the core it is polled on one of DPDK's lcores, on its first poll,
/// so the mbuf pool keeps a cache for that core.
#[cfg(feature = "dpdk")]
#[derive(Debug, Default)]
struct DpdkLcore(bool);

#[cfg(feature = "dpdk")]
impl Task for DpdkLcore {
    fn name(&self) -> &str {
        "dpdk-lcore"
    }

    fn poll(&mut self, _now: u64) -> usize {
        if !self.0 {
            self.0 = true;
            if let Err(e) = pmd::dpdk::register_thread() {
                eprintln!("note: a core is not a DPDK lcore ({e}): no mbuf cache");
            }
        }
        0
    }
}

/// The tasks a core starts with before its own: on DPDK, becoming an lcore.
fn core_setup(pmd: Pmd) -> Vec<Part> {
    #[cfg(feature = "dpdk")]
    if pmd == Pmd::Dpdk {
        return vec![Part::Other(Box::new(DpdkLcore::default()))];
    }
    let _ = pmd;
    Vec::new()
}

/// A node's links to other nodes on DPDK ethdevs (`--port LINK=DEVICE`:
/// a vdev that `--eal` creates, such as `net_af_packet0`, or a PCI
/// address), its hosts and devices on in-memory links; every frame in one
/// DPDK mbuf pool.
#[cfg(feature = "dpdk")]
fn dpdk_node_ports(
    args: &RunArgs,
    share: &NodeShare,
    t: &Topology,
) -> Result<assembly::Ports, String> {
    use pmd::dpdk::{DpdkPort, Mempool};
    crate::init_eal(args.eal.as_deref(), "node", "")?;
    let room = (14 + t.link.mtu).max(2048) as u16;
    let mempool = Mempool::new("node", 32_767, 256, room).map_err(|e| e.to_string())?;
    let pool = pmd::FramePool::dpdk(mempool);
    let link_pool = pool.clone();
    let devices = share.ifaces.clone();
    let ethertype = t.link.ethertype;
    Ok(assembly::Ports {
        pool,
        link: std::sync::Arc::new(move |name, capacity, _| match devices.get(name) {
            Some(device) => {
                let port = DpdkPort::open(device, &link_pool, 1024, 1024).map_err(|e| {
                    format!(
                        "--port {name}={device}: {e} (an ethdev that --eal makes, such as --vdev=net_af_packet0,iface=eth1, or a PCI address)"
                    )
                })?;
                // The NIC's own address on the wire, the peer's learned, as
                // the native port does: so the two kinds face each other.
                let mac = port.mac().ok_or_else(|| {
                    format!("--port {name}={device}: the device has no MAC address")
                })?;
                let port = pmd::addressed::Addressed::new(port, mac, ethertype);
                Ok((
                    Box::new(port) as DynPort,
                    Box::new(pmd::ClosedPort::default()) as DynPort,
                ))
            }
            // The node's hosts and devices: ethdev pairs joined by net_ring,
            // as `run --pmd dpdk` makes them.
            None => {
                let (a, b) = DpdkPort::pair(name, capacity as u32, &link_pool)
                    .map_err(|e| format!("--pmd dpdk: {e}"))?;
                Ok((Box::new(a) as DynPort, Box::new(b) as DynPort))
            }
        }),
    })
}

#[cfg(not(feature = "dpdk"))]
fn dpdk_node_ports(_: &RunArgs, _: &NodeShare, _: &Topology) -> Result<assembly::Ports, String> {
    Err("--pmd dpdk: this build has no DPDK support (build with --features dpdk)".into())
}

#[cfg(not(feature = "dpdk"))]
fn dpdk_ports(_: &RunArgs, _: &Topology) -> Result<assembly::Ports, String> {
    Err("--pmd dpdk: this build has no DPDK support (build with --features dpdk)".into())
}

use assembly::{DynPort, Part, ScenarioConfig};

/// What the tasks did, read back from them.
#[derive(Default)]
struct Totals {
    integrity: Integrity,
    by_class: [u64; 3],
    writes: u64,
    dma: u64,
    /// TLPs a node dropped because no frame buffer was free.
    no_buffer: u64,
    /// TLPs a node dropped as too large for the frames of their egress.
    too_large: u64,
    /// Frames the nodes received, sent, passed on whole (cut-through),
    /// repacked to fit a smaller MTU, and dropped as malformed.
    frames: FrameTotals,
    gates: GateStats,
    blackouts: Blackouts,
    records: Vec<Record>,
    /// Completion indications the hosts received.
    messages: u64,
    /// Configuration reads and writes the hosts completed.
    config: [u64; 2],
    /// MSI-X interrupts the hosts received, and the devices raised.
    interrupts: u64,
    interrupts_raised: u64,
    /// Register reads the hosts completed, and doorbell writes the devices
    /// acted on.
    registers: [u64; 2],
    /// A migration still in progress when the run ended.
    unfinished: Option<String>,
    /// TLPs nodes refused, by reason (`Refusal::ALL` order).
    refused: [u64; 7],
    /// Scheduled migrations with nothing to do.
    skipped: u64,
    /// The first refusals the nodes logged.
    refusal_log: Vec<String>,
    /// The hosts' request round trips (nanoseconds).
    round_trips: Option<hdrhistogram::Histogram<u64>>,
}

/// Frame counts summed over the nodes, and what their pipelines cost.
#[derive(Default)]
struct FrameTotals {
    received: u64,
    sent: u64,
    cut_through: u64,
    repacked: u64,
    malformed: u64,
    /// TLPs the nodes received, and the time-stamp counter cycles their
    /// polls that did work took.
    tlps_in: u64,
    busy_cycles: u64,
    /// Frames the reliable links replayed, and well-formed frames of other
    /// links they ignored.
    replayed: u64,
    foreign: u64,
    /// TLPs dropped toward links that went down.
    link_down_dropped: u64,
    /// Frames the links had received already: discarded.
    duplicates: u64,
}

impl FrameTotals {
    fn add(&mut self, s: &lcore::NodeStats) {
        self.received += s.frames_in;
        self.sent += s.frames_out;
        self.cut_through += s.cut_through;
        self.repacked += s.repacked;
        self.malformed += s.frames_malformed;
        self.link_down_dropped += s.link_down_dropped;
        self.tlps_in += s.tlps_in;
        self.busy_cycles += s.busy_cycles;
    }

    /// Cycles per TLP received, while busy (`None` before any TLP).
    fn cycles_per_tlp(&self) -> Option<f64> {
        (self.tlps_in > 0).then(|| self.busy_cycles as f64 / self.tlps_in as f64)
    }
}

fn collect(tasks: &[Part], totals: &mut Totals) {
    for task in tasks {
        if let Some(h) = task.host() {
            totals.integrity.add(h.integrity());
            totals.writes += h.writes();
            totals.messages += h.indications_received();
            totals.config[0] += h.config_reads();
            totals.config[1] += h.config_writes();
            totals.interrupts += h.interrupts();
            totals.registers[0] += h.register_reads();
            match &mut totals.round_trips {
                // Same bounds on every host: adding cannot fail.
                Some(sum) => {
                    let _ = sum.add(h.round_trips());
                }
                None => totals.round_trips = Some(h.round_trips().clone()),
            }
        } else if let Some(d) = task.device() {
            totals.integrity.add(d.integrity());
            totals.dma += d.dma_writes();
            totals.interrupts_raised += d.interrupts();
            totals.registers[1] += d.doorbells();
        } else if let Some(n) = task.node() {
            for (sum, c) in totals.by_class.iter_mut().zip(n.stats().tlps_in_by_class) {
                *sum += c;
            }
            totals.no_buffer += n.stats().no_buffer;
            totals.too_large += n.stats().too_large;
            totals.frames.add(n.stats());
            for l in (0..n.ports().len() as u16).filter_map(|p| n.link_stats(p)) {
                totals.frames.replayed += l.frames_replayed;
                totals.frames.malformed += l.frames_malformed;
                totals.frames.foreign += l.frames_foreign;
                totals.frames.duplicates += l.duplicates;
            }
            for r in n.node_state().log.entries().iter().take(4) {
                if totals.refusal_log.len() < 8 {
                    totals.refusal_log.push(format!(
                        "{} port {}: {:?} {} from {}{}",
                        n.name(),
                        r.port,
                        r.refusal,
                        r.kind.map_or("?", |k| k.name()),
                        r.source,
                        r.address.map(|a| format!(" to {a:#x}")).unwrap_or_default()
                    ));
                }
            }
            for c in &n.node_state().counters {
                for (sum, r) in totals.refused.iter_mut().zip(fabric::node::Refusal::ALL) {
                    *sum += c.refused(r);
                }
            }
            if let Some(g) = n.gate() {
                totals.gates.add(g.stats());
                totals.blackouts.add(g.blackouts());
            }
        } else if let Some(o) = task.orchestrator() {
            totals.records.extend_from_slice(o.records());
            totals.skipped += o.skipped();
            if let Some((r, phase)) = o.in_progress() {
                let what = match r.plan.kind {
                    MigrationKind::Vm => "host",
                    MigrationKind::Endpoint => "function",
                };
                totals.unfinished = Some(format!(
                    "binding {} from {what} {} to {what} {}, {} ({})",
                    r.plan.binding,
                    r.plan.from,
                    r.plan.to,
                    phase.map_or("rolling back", |p| p.name()),
                    o.plane().waiting_for(&r.plan)
                ));
            }
        }
    }
}

const DEFAULT: &str = include_str!("../../../configs/default.toml");

/// The topology text with every binding's `id_mode` set to `mode`.
fn with_id_mode(file: &Path, text: &str, mode: &str) -> Result<String, String> {
    let mut doc: toml::Value = text
        .parse()
        .map_err(|e: toml::de::Error| format!("{}: {}", file.display(), e.message()))?;
    if let Some(bindings) = doc.get_mut("binding").and_then(|b| b.as_array_mut()) {
        for b in bindings {
            if let Some(table) = b.as_table_mut() {
                table.insert("id_mode".into(), toml::Value::String(mode.into()));
            }
        }
    }
    toml::to_string(&doc).map_err(|e| e.to_string())
}

/// The topology a run, a node or the manager works on: `config`'s file,
/// or the embedded default, with every binding in `id_mode` if given.
/// Errors are written to `err`; the exit status comes back.
pub(crate) fn load_topology(
    config: Option<&Path>,
    id_mode: Option<&str>,
    err: &mut dyn Write,
) -> Result<(PathBuf, Topology), i32> {
    let (file, text) = match config {
        Some(path) => match std::fs::read_to_string(path) {
            Ok(text) => (path.to_path_buf(), text),
            Err(e) => {
                let _ = writeln!(err, "error: {}: cannot read: {e}", path.display());
                return Err(EXIT_REJECTED);
            }
        },
        None => (PathBuf::from("configs/default.toml"), DEFAULT.to_string()),
    };
    let text = match id_mode {
        Some(mode) => match with_id_mode(&file, &text, mode) {
            Ok(t) => t,
            Err(e) => {
                let _ = writeln!(err, "error: {e}");
                return Err(EXIT_REJECTED);
            }
        },
        None => text,
    };
    let t = match Topology::parse(&file, &text) {
        Ok(t) => t,
        Err(errors) => {
            for e in &errors {
                let _ = writeln!(err, "error: {e}");
            }
            return Err(EXIT_REJECTED);
        }
    };
    Ok((file, t))
}

pub(crate) fn run(args: RunArgs, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    run_share(args, None, out, err)
}

/// The whole fabric, or with `node` one node's share of it.
fn run_share(
    args: RunArgs,
    node: Option<NodeOptions>,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> i32 {
    let (file, t) = match load_topology(args.config.as_deref(), args.id_mode.as_deref(), err) {
        Ok(loaded) => loaded,
        Err(code) => return code,
    };
    if args.config.is_some() {
        // A template that does not load is the topology's problem, said as
        // `config check` says it, not a fabric quietly without VDIs.
        let problems = crate::config_cmd::template_problems(&file, &t);
        if !problems.is_empty() {
            for e in &problems {
                let _ = writeln!(err, "error: {e}");
            }
            return EXIT_REJECTED;
        }
    }
    if t.bindings.is_empty() {
        let _ = writeln!(
            err,
            "error: {}: binding: expected at least one [[binding]] of a function to a host: \
             run drives traffic between hosts and their functions, and would test nothing",
            file.display()
        );
        return EXIT_REJECTED;
    }
    if !(args.rate.is_finite() && args.rate > 0.0) {
        let _ = writeln!(
            err,
            "error: --rate: expected a positive number of writes per second, found {}",
            args.rate
        );
        return EXIT_USAGE;
    }
    if args.pmd == Pmd::AfPacket && node.is_none() {
        let _ = writeln!(
            err,
            "error: --pmd: expected ring or dpdk; af-packet ports are for forward (run's links are all in one process)"
        );
        return EXIT_USAGE;
    }
    if args.pmd == Pmd::Ring && args.eal.is_some() {
        // Said, not refused: a script may pass the same options to both.
        let _ = writeln!(err, "note: --eal is for --pmd dpdk; ignored on ring ports");
    }
    let outputs = [
        ("--json", &args.json),
        ("--hdr-log", &args.hdr_log),
        ("--plot", &args.plot),
    ];
    for (flag, path) in outputs {
        if let Some(Err(e)) = path.as_deref().map(|p| crate::check_writable(flag, p)) {
            let _ = writeln!(err, "error: {e}");
            return EXIT_USAGE;
        }
    }
    let share = match node.as_ref().map(|n| node_share(n, &t)).transpose() {
        Ok(share) => share,
        Err(e) => {
            let _ = writeln!(err, "error: {e}");
            return EXIT_USAGE;
        }
    };
    if let Some(name) = node.as_ref().map(|n| n.node.as_str()) {
        if args.deterministic {
            let _ = writeln!(
                err,
                "error: --deterministic: a node runs on its ports in real time, beside the other nodes' processes"
            );
            return EXIT_USAGE;
        }
        if args.pmd == Pmd::AfPacket {
            let _ = writeln!(
                err,
                "error: --pmd: expected ring (links to other nodes on native AF_PACKET ports, the default) or dpdk (on DPDK ethdevs)"
            );
            return EXIT_USAGE;
        }
        let _ = writeln!(
            err,
            "note: node {name}: migrations across node processes are not run yet; this process runs none"
        );
    }
    // A TLP of the payload in a frame of its own: the fabric header, the
    // TLP's length, its 4-DW header and the CRC.
    let largest = (t.link.mtu + fabric::frame::ETHERNET_LEN)
        .saturating_sub(fabric::frame::HEADER_LEN + 2 + 16 + fabric::frame::CRC_LEN)
        / 4
        * 4;
    if !args.payload.is_multiple_of(4) || !(16..=4096.min(largest)).contains(&args.payload) {
        let _ = writeln!(
            err,
            "error: --payload: expected a multiple of 4 from 16 (the stream stamp a write carries) \
             to {} (4096, or less to fit the MTU of {}), found {}",
            4096.min(largest),
            t.link.mtu,
            args.payload
        );
        return EXIT_USAGE;
    }
    let timeout = args.completion_timeout.as_nanos() as u64;
    let warmup = args.warmup.as_nanos() as u64;
    let measured = args.duration.as_nanos() as u64;
    // Traffic flows through the warm-up and the measured duration.
    let duration = warmup.saturating_add(measured);
    let offered_for = args.warmup + args.duration;
    let (vm_migrations, endpoint_migrations) = match share {
        Some(_) => (0, 0),
        None => (args.vm_migrations, args.endpoint_migrations),
    };
    let n = vm_migrations + endpoint_migrations;
    let interval = measured.checked_div(n).unwrap_or(measured);
    // Ctrl-C stops what the hosts, devices and orchestrator offer.
    let stop = traffic::Stop::new();
    let schedule = Schedule {
        vm_migrations,
        endpoint_migrations,
        start: warmup + interval / 2,
        interval: interval.max(1),
        budget: args.budget.as_nanos() as u64,
        deadline: args.phase_deadline.as_nanos() as u64,
        abort: None,
        stop: stop.clone(),
    };
    let dir = file
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    let ports = if let (Pmd::Dpdk, Some(share)) = (args.pmd, &share) {
        match dpdk_node_ports(&args, share, &t) {
            Ok(p) => p,
            Err(e) => {
                let _ = writeln!(err, "error: {e}");
                return EXIT_REJECTED;
            }
        }
    } else if args.pmd == Pmd::Dpdk {
        match dpdk_ports(&args, &t) {
            Ok(p) => p,
            Err(e) => {
                let _ = writeln!(err, "error: {e}");
                return EXIT_REJECTED;
            }
        }
    } else if let Some(share) = &share {
        node_ports(share, &t)
    } else {
        assembly::Ports::ring()
    };
    let mut ports = ports;
    let capture = match &args.pcap {
        Some(path) => {
            let mut names: Vec<String> = (0..t.links.len()).map(|i| format!("link{i}")).collect();
            names.extend(t.hosts.iter().map(|h| h.name.clone()));
            names.extend(t.endpoints.iter().map(|e| e.name.clone()));
            if !names.contains(&args.pcap_port) {
                let _ = writeln!(
                    err,
                    "error: --pcap-port: expected one of {}, found {:?}",
                    names.join(", "),
                    args.pcap_port
                );
                return EXIT_USAGE;
            }
            let room = (14 + t.link.mtu).max(64);
            match pmd::capture::Capture::start(path, 1, 8192, room) {
                Ok((capture, mut taps)) => {
                    if let Some(tap) = taps.pop() {
                        with_capture(&mut ports, &args.pcap_port, tap);
                    }
                    Some(capture)
                }
                Err(e) => {
                    let _ = writeln!(err, "error: --pcap {}: cannot write: {e}", path.display());
                    return EXIT_USAGE;
                }
            }
        }
        None => None,
    };
    let config = ScenarioConfig {
        ports,
        rate: args.rate,
        completion_timeout: timeout,
        duration,
        schedule,
        config_dir: dir,
        // The embedded default is whole in the program: it runs the same
        // from any directory, with or without a source tree.
        builtin_templates: args.config.is_none(),
        read_every: args.read_every,
        config_every: args.config_every,
        register_every: args.register_every,
        payload: args.payload,
        only: share.as_ref().map(|s| s.index),
        ..ScenarioConfig::default()
    };
    let built = match assembly::build(&t, &config) {
        Ok(a) => a,
        // The topology's own limit: said of its file, as config errors are.
        Err(e @ assembly::BuildError::Bindings(_)) => {
            let _ = writeln!(err, "error: {}: {e}", file.display());
            return EXIT_REJECTED;
        }
        Err(e) => {
            let _ = writeln!(err, "error: {e}");
            return EXIT_REJECTED;
        }
    };
    for note in &built.notes {
        let _ = writeln!(err, "note: {note}");
    }
    // After the offered traffic, a quiet spell lets what is in flight drain.
    let drain = timeout.max(10_000_000);
    let mut totals = Totals::default();
    // The time traffic was offered: the whole duration unless interrupted.
    let mut offered = offered_for;
    // The CPUs the two cores were pinned to (none: one thread, virtual time).
    let (elapsed, busy, round_trip, used) = if args.deterministic {
        let mut d = Deterministic::new(1_000);
        for task in built.models.into_iter().chain(built.nodes) {
            d.add(task);
        }
        d.run_until(u64::MAX, |d| d.now() >= duration + drain);
        collect(d.tasks(), &mut totals);
        (
            duration as f64 / 1e9,
            vec![CoreFigures {
                busy: d.stats().busy_fraction(),
                timed: None,
            }],
            None,
            Vec::new(),
        )
    } else {
        let received = built.received.clone();
        let agent = match share.as_ref().and_then(|s| Some((s, s.manager.as_ref()?))) {
            Some((share, manager)) => match start_agent(share, manager, &t, &built) {
                Ok(agent) => Some(agent),
                Err(e) => {
                    let _ = writeln!(err, "error: --manager: {e}");
                    return EXIT_USAGE;
                }
            },
            None => None,
        };
        // A manager that refuses this node (another topology, a node it
        // does not have) is said at once, before the run; one that does not
        // answer yet is not waited for: the node forwards meanwhile.
        if let Some(agent) = &agent {
            let asked = std::time::Instant::now();
            loop {
                let log = agent.log();
                if let Some(why) = log.refused {
                    let _ = writeln!(err, "error: {why}");
                    return EXIT_REJECTED;
                }
                if log.registered > 0
                    || log.unreachable > 0
                    || asked.elapsed() > Duration::from_secs(2)
                {
                    break;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        let progress = built
            .models
            .iter()
            .find_map(|task| task.orchestrator().map(|o| o.progress()));
        // Core 0: the hosts, devices and orchestrator; the last core: the
        // node pipelines.
        let cpus = core_affinity::get_core_ids().map_or(1, |c| c.len());
        // Where the two cores are decides what a handshake between them
        // costs: measured first, while nothing else spins.
        let round_trip = (cpus > 1)
            .then(|| {
                lcore::pingpong::cache_line_round_trip(
                    0,
                    cpus - 1,
                    9,
                    20_000,
                    Duration::from_millis(200),
                )
            })
            .flatten();
        let with_setup = |tasks: Vec<Part>| {
            let mut all = core_setup(args.pmd);
            all.extend(tasks);
            all
        };
        let used = vec![0, cpus.saturating_sub(1)];
        let cores = Cores::start(vec![
            CoreSpec {
                cpu: Some(used[0]),
                tasks: with_setup(built.models),
            },
            CoreSpec {
                cpu: Some(used[1]),
                tasks: with_setup(built.nodes),
            },
        ]);
        let total = offered_for + Duration::from_nanos(drain);
        match crate::interrupt::arm() {
            Err(e) => {
                let _ = writeln!(err, "note: {e}: Ctrl-C ends the run without a report");
            }
            Ok(()) if total > Duration::from_secs(2) => {
                let _ = writeln!(
                    err,
                    "run: traffic for {:.2} s, then {:.0} ms to drain (Ctrl-C stops it early and reports)",
                    offered_for.as_secs_f64(),
                    drain as f64 / 1e6
                );
            }
            Ok(()) => {}
        }
        if let Some(at) = crate::progress::wait(total, n, progress.as_deref()) {
            // Nothing new is offered; what is in flight drains as after a
            // whole run, so the report of the time it ran is whole too.
            stop.request();
            offered = at.min(offered_for);
            let _ = writeln!(
                err,
                "note: interrupted after {:.2} s of {:.2}: draining, then reporting that time",
                offered.as_secs_f64(),
                offered_for.as_secs_f64()
            );
            std::thread::sleep(Duration::from_nanos(drain));
        }
        let settled = settle(&received, Duration::from_nanos(drain) * 20);
        if settled > Duration::from_millis(100) {
            let _ = writeln!(
                err,
                "note: TLPs were still moving after the drain: waited {:.0} ms more for them",
                settled.as_secs_f64() * 1e3
            );
        }
        if let Some(share) = &share {
            // The links exchange updates every few microseconds even when
            // no TLP moves: nothing this process sees tells that the other
            // nodes are done, so it waits as long as it was told.
            std::thread::sleep(share.linger);
        }
        // Busy share, and the mean time a round of the core's tasks takes
        // (how long a command from the other core waits, on average).
        let wall = cores.elapsed().as_secs_f64();
        let busy = cores
            .stats()
            .iter()
            .map(|s| {
                let rounds = s.busy_polls + s.idle_polls;
                CoreFigures {
                    busy: s.busy_fraction(),
                    timed: (rounds > 0).then(|| (wall * 1e6 / rounds as f64, *s)),
                }
            })
            .collect();
        match cores.stop(Duration::from_secs(5)) {
            Ok(all) => {
                for tasks in &all {
                    collect(tasks, &mut totals);
                }
            }
            Err(stuck) => {
                let _ = writeln!(err, "error: core {} did not stop", stuck.core);
                return EXIT_REJECTED;
            }
        }
        if let Some(agent) = agent {
            let log = agent.log();
            drop(agent);
            if let Some(why) = log.refused {
                let _ = writeln!(err, "error: {why}");
                return EXIT_REJECTED;
            }
            let _ = writeln!(
                err,
                "manager: registered {} time(s), {} reports taken, unreachable {} time(s)",
                log.registered, log.reports, log.unreachable
            );
        }
        (offered.as_secs_f64(), busy, round_trip, used)
    };
    let cores = CoresRun {
        busy,
        used,
        round_trip,
        interrupted: stop.requested(),
        node: node.as_ref().map(|n| n.node.clone()),
    };
    if let (Some(capture), Some(path)) = (capture, &args.pcap) {
        match capture.finish() {
            Ok((written, missed)) => {
                let _ = writeln!(
                    err,
                    "capture: {written} frames of {} written to {}, {missed} missed (the writer fell behind)",
                    args.pcap_port,
                    path.display()
                );
            }
            Err(e) => {
                let _ = writeln!(err, "error: --pcap {}: {e}", path.display());
                return EXIT_REJECTED;
            }
        }
    }
    report(&args, &t, &totals, elapsed, &cores, out, err)
}

/// Waits, past the drain, while the VMs still receive TLPs, for at most
/// `cap`: on cores shared with other work what is in flight can outlast
/// the drain, and counting it lost would be wrong. Settled is a spell of
/// 20 ms in which no VM received anything.
/// `tlpfabric report`: the node processes' reports of one fabric, merged.
#[derive(Debug, Args)]
pub(crate) struct ReportArgs {
    /// The nodes' JSON reports (`tlpfabric node --json FILE`).
    #[arg(required = true)]
    reports: Vec<PathBuf>,
    /// Also write the merged figures as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
}

/// What the nodes' reports add up to: a TLP a host sent is delivered at a
/// device another process runs, so only the sum says whether any was lost.
pub(crate) fn merge(args: ReportArgs, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    let mut sum = telemetry::report::IntegrityFigures::default();
    let (mut writes, mut dma, mut raised, mut received, mut merged) = (0, 0, 0, 0, 0);
    // Per tag, the nodes' histograms added (same bounds everywhere).
    let mut histograms: Vec<(String, hdrhistogram::Histogram<u64>)> = Vec::new();
    let mut without_histograms = 0;
    for path in &args.reports {
        let read = std::fs::read_to_string(path)
            .map_err(|e| format!("{}: cannot read: {e}", path.display()))
            .and_then(|text| {
                serde_json::from_str::<RunReport>(&text).map_err(|e| {
                    format!(
                        "{}: expected a report of `node --json` or `run --json`: {e}",
                        path.display()
                    )
                })
            });
        let r = match read {
            Ok(r) => r,
            Err(e) => {
                let _ = writeln!(err, "error: {e}");
                return EXIT_REJECTED;
            }
        };
        if r.histograms.is_empty() {
            without_histograms += 1;
        }
        match telemetry::read_interval_log(r.histograms.as_bytes()) {
            Ok(read) => {
                for (tag, h) in read {
                    match histograms.iter_mut().find(|(t, _)| *t == tag) {
                        Some((_, sum)) => {
                            if let Err(e) = sum.add(&h) {
                                let _ = writeln!(
                                    err,
                                    "error: {}: histogram {tag} cannot be added: {e:?}",
                                    path.display()
                                );
                                return EXIT_REJECTED;
                            }
                        }
                        None => histograms.push((tag, h)),
                    }
                }
            }
            Err(e) => {
                let _ = writeln!(err, "error: {}: histograms: {e}", path.display());
                return EXIT_REJECTED;
            }
        }
        let i = &r.integrity;
        sum.sent += i.sent;
        sum.delivered += i.delivered;
        sum.duplicated += i.duplicated;
        sum.reordered += i.reordered;
        sum.completion_timeouts += i.completion_timeouts;
        sum.completion_timeouts_in_stalls += i.completion_timeouts_in_stalls;
        sum.data_mismatches += i.data_mismatches;
        sum.unexpected_completions += i.unexpected_completions;
        sum.dropped_no_buffer += i.dropped_no_buffer;
        sum.dropped_too_large += i.dropped_too_large;
        writes += r.traffic.host_writes;
        dma += r.traffic.device_dma_writes;
        raised += r.configuration.interrupts_raised;
        received += r.configuration.interrupts;
        merged += r.configuration.interrupts_merged;
    }
    sum.lost = sum
        .sent
        .saturating_sub(sum.delivered + sum.completion_timeouts);
    let _ = writeln!(
        out,
        "fabric of {} node reports: {writes} host writes, {dma} device DMA writes; {} tracked TLPs sent, {} delivered",
        args.reports.len(),
        sum.sent,
        sum.delivered
    );
    let _ = writeln!(
        out,
        "  MSI-X interrupts: {received} received of {raised} raised, {merged} merged while held"
    );
    let summary = |tag: &str| {
        histograms
            .iter()
            .find(|(t, _)| t == tag)
            .map(|(_, h)| telemetry::Summary::of(h))
            .unwrap_or_default()
    };
    let (per_migration, per_tlp, round_trip) = (
        summary("per_migration"),
        summary("per_tlp"),
        summary("round_trip"),
    );
    if without_histograms > 0 {
        let _ = writeln!(
            err,
            "note: {without_histograms} report(s) carry no histograms (written before they did): the percentiles leave them out"
        );
    }
    let _ = writeln!(out, "  blackout per migration: {}", per_migration.line());
    let _ = writeln!(out, "  blackout per held TLP:  {}", per_tlp.line());
    let _ = writeln!(out, "  request round trips:    {}", round_trip.line());
    let _ = writeln!(
        out,
        "  integrity: lost {}, duplicated {}, reordered {}, completion timeouts {}, data mismatches {}",
        sum.lost, sum.duplicated, sum.reordered, sum.completion_timeouts, sum.data_mismatches
    );
    if let Some(path) = &args.json {
        let v = serde_json::json!({
            "reports": args.reports.len(),
            "traffic": { "host_writes": writes, "device_dma_writes": dma },
            "blackout": { "per_migration_us": per_migration, "per_tlp_us": per_tlp },
            "round_trip_us": round_trip,
            "integrity": sum,
            "configuration": {
                "interrupts": received,
                "interrupts_raised": raised,
                "interrupts_merged": merged,
            },
        });
        if !write_out(path, Ok(v.to_string().into_bytes()), err) {
            return EXIT_REJECTED;
        }
    }
    if sum.clean() && raised == received + merged {
        0
    } else {
        let _ = writeln!(err, "error: integrity failed");
        EXIT_REJECTED
    }
}

fn settle(received: &[Arc<traffic::VmCounters>], cap: Duration) -> Duration {
    use std::sync::atomic::Ordering;
    let started = std::time::Instant::now();
    let total = || -> u64 {
        received
            .iter()
            .map(|c| c.received.load(Ordering::Acquire))
            .sum()
    };
    let mut last = total();
    while started.elapsed() < cap {
        std::thread::sleep(Duration::from_millis(20));
        let now = total();
        if now == last {
            break;
        }
        last = now;
    }
    started.elapsed()
}

/// Per phase, the summary of its durations over completed migrations.
fn phase_summaries(records: &[Record]) -> Vec<(Phase, Summary)> {
    Phase::ALL
        .iter()
        .map(|&p| {
            let mut h = lcore::Blackouts::new().per_tlp;
            for r in records
                .iter()
                .filter(|r| r.outcome == Some(Outcome::Completed))
            {
                if let Some(ns) = r.phase_durations()[p as usize] {
                    let _ = h.record(ns.max(1));
                }
            }
            (p, Summary::of(&h))
        })
        .collect()
}

/// Writes what was made for `path`, or says on `err` why not.
fn write_out(path: &Path, bytes: Result<Vec<u8>, String>, err: &mut dyn Write) -> bool {
    match bytes.and_then(|b| std::fs::write(path, b).map_err(|e| e.to_string())) {
        Ok(()) => true,
        Err(e) => {
            let _ = writeln!(err, "error: {}: cannot write: {e}", path.display());
            false
        }
    }
}

/// What the cores did over a run.
struct CoresRun {
    busy: Vec<CoreFigures>,
    /// The CPUs each core was pinned to.
    used: Vec<usize>,
    /// The cache-line round trip between the two cores, measured before.
    round_trip: Option<Duration>,
    /// Whether Ctrl-C ended the run before its duration.
    interrupted: bool,
    /// The node a `node` process ran (none: the whole fabric).
    node: Option<String>,
}

/// What a core did over a run.
struct CoreFigures {
    /// Share of rounds that did work.
    busy: f64,
    /// On real cores: the mean round in µs, and the core's counters.
    timed: Option<(f64, CoreStats)>,
}

/// Everything the run measured, as the report type both the text and the
/// JSON come from.
fn measured(
    args: &RunArgs,
    t: &Topology,
    totals: &Totals,
    secs: f64,
    cores: &CoresRun,
) -> RunReport {
    use telemetry::report::*;
    let busy = &cores.busy;
    let i = &totals.integrity;
    let completed = |kind| {
        totals
            .records
            .iter()
            .filter(|r| r.plan.kind == kind && r.outcome == Some(Outcome::Completed))
            .count() as u64
    };
    let (vm, endpoint) = (
        completed(MigrationKind::Vm),
        completed(MigrationKind::Endpoint),
    );
    // Why migrations were aborted, by phase and reason, most frequent first.
    let mut aborted_by: Vec<Count> = Vec::new();
    for r in &totals.records {
        if let Some(Outcome::Aborted { phase, reason }) = &r.outcome {
            let text = match reason {
                AbortReason::Budget { .. } => "over the blackout budget".to_string(),
                AbortReason::Requested => "asked for".to_string(),
                AbortReason::DrainTimeout => {
                    "completions not drained within the drain budget".to_string()
                }
                AbortReason::Deadline { waiting_for, .. } => {
                    format!("{waiting_for} did not come within the phase deadline")
                }
                AbortReason::Plane(e) => e.to_string(),
            };
            let what = format!("{}: {text}", phase.name());
            match aborted_by.iter_mut().find(|c| c.what == what) {
                Some(c) => c.count += 1,
                None => aborted_by.push(Count { what, count: 1 }),
            }
        }
    }
    aborted_by.sort_by_key(|c| std::cmp::Reverse(c.count));
    let g = &totals.gates;
    let deterministic = args.deterministic;
    RunReport {
        config: args
            .config
            .as_ref()
            .map_or("configs/default.toml".to_string(), |p| {
                p.display().to_string()
            }),
        machine: crate::machine::describe(),
        duration_s: secs,
        warmup_s: args.warmup.as_secs_f64(),
        payload: args.payload as u64,
        rate: args.rate,
        interrupted: cores.interrupted,
        deterministic,
        // A node's links to other nodes are AF_PACKET ports unless DPDK.
        pmd: match (args.pmd, &cores.node) {
            (Pmd::Ring, Some(_)) => Pmd::AfPacket.name().into(),
            (pmd, _) => pmd.name().into(),
        },
        topology: TopologyFigures {
            nodes: t.nodes.len() as u64,
            hosts: t.hosts.len() as u64,
            bindings: t.bindings.len() as u64,
            memory: crate::memory_line(t),
        },
        traffic: TrafficFigures {
            host_writes: totals.writes,
            device_dma_writes: totals.dma,
        },
        integrity: IntegrityFigures {
            lost: i.lost(),
            duplicated: i.duplicated,
            reordered: i.reordered,
            completion_timeouts: i.completion_timeouts,
            completion_timeouts_in_stalls: i.completion_timeouts_in_stalls,
            data_mismatches: i.data_mismatches,
            unexpected_completions: i.unexpected_completions,
            sent: i.sent,
            delivered: i.delivered,
            dropped_no_buffer: totals.no_buffer,
            dropped_too_large: totals.too_large,
        },
        frames: FrameFigures {
            received: totals.frames.received,
            sent: totals.frames.sent,
            cut_through: totals.frames.cut_through,
            repacked: totals.frames.repacked,
            malformed: totals.frames.malformed,
            replayed: totals.frames.replayed,
            foreign: totals.frames.foreign,
            link_down_dropped: totals.frames.link_down_dropped,
            duplicates: totals.frames.duplicates,
        },
        throughput: ThroughputFigures {
            tlps_per_s: i.delivered as f64 / secs,
            by_class: ByClass {
                posted: totals.by_class[0],
                non_posted: totals.by_class[1],
                completion: totals.by_class[2],
            },
        },
        cores: CoreFigures {
            used: cores.used.clone(),
            busy_fraction: busy.iter().map(|c| c.busy).collect(),
            round_trip_ns: cores.round_trip.map(|t| t.as_nanos() as u64),
            round_us: busy.iter().map(|c| c.timed.map(|t| t.0)).collect(),
            rounds_over_us: busy
                .iter()
                .map(|c| {
                    c.timed.map(|(_, s)| {
                        ROUND_THRESHOLDS_NS
                            .iter()
                            .zip(s.rounds_over)
                            .map(|(t, n)| ((t / 1000).to_string(), serde_json::Value::from(n)))
                            .collect()
                    })
                })
                .collect(),
            longest_round_us: busy
                .iter()
                .map(|c| c.timed.map(|(_, s)| s.longest_round_ns as f64 / 1e3))
                .collect(),
            node_tsc_cycles_per_tlp: totals.frames.cycles_per_tlp().filter(|_| !deterministic),
            tsc_ghz: (!deterministic).then(lcore::tsc::per_ns),
        },
        migrations: MigrationFigures {
            vm,
            endpoint,
            aborted: totals.records.len() as u64 - vm - endpoint,
            aborted_by,
            skipped: totals.skipped,
            scheduled: args.vm_migrations + args.endpoint_migrations,
            unfinished: totals.unfinished.clone(),
            held_tlps: g.released,
            completion_indications: totals.messages,
            pause_points_full: g.refused_full,
        },
        vdi: VdiFigures {
            config_reads: g.vdi_config_reads,
            config_writes: g.vdi_config_writes,
            replayed_writes: g.replays,
            register_reads: g.vdi_register_reads,
            register_writes: g.vdi_register_writes,
            destination_refused: g.destination_refused,
            upstream: g.vdi_upstream,
            alone: [
                ("configuration reads", g.vdi_config_reads),
                ("configuration writes", g.vdi_config_writes),
                ("register reads", g.vdi_register_reads),
                ("register writes", g.vdi_register_writes),
                ("interrupts", g.interrupts_held),
            ]
            .iter()
            .filter(|(_, n)| *n > 0)
            .map(|(what, _)| what.to_string())
            .collect(),
            beside_pauses: BesidePauses {
                posted: g.beside_pauses[0],
                non_posted: g.beside_pauses[1],
                completions: g.beside_pauses[2],
            },
        },
        configuration: ConfigurationFigures {
            reads: totals.config[0],
            writes: totals.config[1],
            interrupts: totals.interrupts,
            interrupts_raised: totals.interrupts_raised,
            interrupts_held: g.interrupts_held,
            interrupts_merged: g.interrupts_held - g.interrupts_released,
        },
        registers: RegisterFigures {
            reads: totals.registers[0],
            doorbells: totals.registers[1],
        },
        refused: fabric::node::Refusal::ALL
            .iter()
            .zip(totals.refused)
            .filter(|(_, n)| *n > 0)
            .map(|(r, n)| Count {
                what: format!("{r:?}"),
                count: n,
            })
            .collect(),
        refusal_log: totals.refusal_log.clone(),
        blackout: BlackoutFigures {
            per_migration_us: Summary::of(&totals.blackouts.per_migration),
            per_migration_unstalled_us: Summary::of(&totals.blackouts.per_migration_unstalled),
            per_tlp_us: Summary::of(&totals.blackouts.per_tlp),
            phases_us: phase_summaries(&totals.records)
                .into_iter()
                .map(|(p, s)| (p.name().to_string(), s))
                .collect(),
        },
        round_trip_us: totals
            .round_trips
            .as_ref()
            .map(Summary::of)
            .unwrap_or_default(),
        histograms: histogram_log(totals, secs)
            .ok()
            .and_then(|log| String::from_utf8(log).ok())
            .unwrap_or_default(),
    }
}

/// The run's histograms as an interval log: blackouts per migration and
/// per held TLP, and request round trips (nanoseconds).
fn histogram_log(totals: &Totals, secs: f64) -> Result<Vec<u8>, telemetry::Error> {
    let round_trip_histogram = totals
        .round_trips
        .clone()
        .unwrap_or_else(|| Blackouts::new().per_tlp);
    telemetry::interval_log(
        &[
            ("per_migration", &totals.blackouts.per_migration),
            ("per_tlp", &totals.blackouts.per_tlp),
            ("round_trip", &round_trip_histogram),
        ],
        Duration::ZERO,
        Duration::from_secs_f64(secs),
    )
}

fn report(
    args: &RunArgs,
    t: &Topology,
    totals: &Totals,
    secs: f64,
    cores: &CoresRun,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> i32 {
    let report = measured(args, t, totals, secs, cores);
    let _ = write!(out, "{}", report.text());
    let node = cores.node.as_deref();
    if let Some(name) = node {
        let _ = writeln!(
            out,
            "  (node {name}: the integrity line counts this node's hosts and devices only; \
             `tlpfabric report` merges the nodes' JSON reports into the fabric's)"
        );
    }
    if let Some(path) = &args.hdr_log {
        let log = histogram_log(totals, secs);
        if !write_out(path, log.map_err(|e| e.to_string()), err) {
            return EXIT_REJECTED;
        }
    }
    if let Some(path) = &args.plot {
        let svg = telemetry::percentile_svg(
            "tlpfabric migration blackout",
            &[
                ("per migration", &totals.blackouts.per_migration),
                ("per held TLP", &totals.blackouts.per_tlp),
            ],
        );
        if !write_out(
            path,
            svg.map(String::into_bytes).map_err(|e| e.to_string()),
            err,
        ) {
            return EXIT_REJECTED;
        }
    }
    if let Some(path) = &args.json {
        if !write_out(path, Ok(report.json().into_bytes()), err) {
            return EXIT_REJECTED;
        }
    }
    if totals.integrity.clean() || node.is_some() {
        0
    } else {
        let _ = writeln!(err, "error: integrity failed");
        EXIT_REJECTED
    }
}

#[cfg(test)]
mod tests {
    use crate::run_captured;

    #[test]
    fn a_deterministic_run_of_the_default_is_clean_and_repeatable() {
        let path = std::env::temp_dir().join(format!("tlpfabric-run-{}.json", std::process::id()));
        let args = [
            "run",
            "--deterministic",
            "--duration",
            "20ms",
            "--vm-migrations",
            "0",
            "--endpoint-migrations",
            "0",
            "--json",
            path.to_str().unwrap(),
        ];
        let (code, out, err) = run_captured(&args, "");
        assert_eq!(code, 0, "{out}{err}");
        assert!(out.contains("integrity: lost 0, duplicated 0, reordered 0, completion timeouts 0, data mismatches 0"), "{out}");
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        for key in [
            "lost",
            "duplicated",
            "reordered",
            "completion_timeouts",
            "data_mismatches",
        ] {
            assert_eq!(v["integrity"][key], 0, "{key}");
        }
        // 200,000 writes/s per host for 20 ms: 4,000 from each of two hosts,
        // a read-back per 8, a configuration request per 32 and a register
        // read per 16, each VM's write of MSI-X Enable, and 100,000 DMA
        // writes/s from the device (1,000 per function; its MSI-X
        // interrupts are counted apart); the last of each falls on the
        // deadline itself and is not offered.
        let sent = v["integrity"]["sent"].as_u64().unwrap();
        let offered = 2 * 4000 + 2 * 500 + 2 * 125 + 2 * 250 + 2 + 2000;
        assert!((offered - 5..=offered).contains(&sent), "{sent}");
        assert_eq!(v["integrity"]["sent"], v["integrity"]["delivered"]);
        // Every configuration request completed: a write, its read-back
        // and an ID read in turn (and each VM's MSI-X Enable, a write).
        let (reads, writes) = (
            v["configuration"]["reads"].as_u64().unwrap(),
            v["configuration"]["writes"].as_u64().unwrap() - 2,
        );
        assert!(
            // Each of the two VMs may end its cycle just after a write.
            writes > 0 && (2 * writes - 4..=2 * writes).contains(&reads),
            "{reads} {writes}"
        );
        // Every register read checked; two steps of five ring a doorbell
        // (TDT0, ICS), and each reached the device.
        let reads = v["registers"]["reads"].as_u64().unwrap();
        assert!((2 * 250 - 4..=2 * 250).contains(&reads), "{reads}");
        let doorbells = v["registers"]["doorbells"].as_u64().unwrap();
        assert!(
            (2 * reads / 5).abs_diff(doorbells) <= 2,
            "{reads} {doorbells}"
        );
        // Devices raise interrupts only once their VM programmed the MSI-X
        // table and set MSI-X Enable: one per 32 DMA writes of each
        // function, less the few before.
        let interrupts = v["configuration"]["interrupts"].as_u64().unwrap();
        assert!((2 * 31 - 4..=2 * 31).contains(&interrupts), "{interrupts}");
        // Each one raised was received or merged while its binding paused.
        let c = &v["configuration"];
        assert_eq!(
            c["interrupts_raised"].as_u64().unwrap(),
            interrupts + c["interrupts_merged"].as_u64().unwrap()
        );
        assert!(v["throughput"]["tlps_per_s"].as_f64().unwrap() > 0.0);
        // Nodes saw and sent frames, none of them malformed.
        let frames = &v["frames"];
        assert!(frames["in"].as_u64().unwrap() > 0 && frames["out"].as_u64().unwrap() > 0);
        assert_eq!(frames["malformed"], 0);
        assert!(frames["cut_through"].as_u64() <= frames["in"].as_u64());
        assert!(
            out.contains(&format!("frames at nodes: {} in,", frames["in"])),
            "{out}"
        );
        assert_eq!(v["migrations"]["vm"], 0);
        let (_, again, _) = run_captured(&args, "");
        assert_eq!(out, again, "the same run twice");
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn migrations_in_both_id_modes_report_blackouts_and_stay_clean() {
        let dir = std::env::temp_dir().join(format!("tlpfabric-mig-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for mode in ["different", "common"] {
            let json = dir.join(format!("{mode}.json"));
            let hdr = dir.join(format!("{mode}.hlog"));
            let svg = dir.join(format!("{mode}.svg"));
            let args = [
                "run",
                "--deterministic",
                "--duration",
                "40ms",
                "--rate",
                "1000000",
                "--vm-migrations",
                "40",
                "--endpoint-migrations",
                "20",
                "--id-mode",
                mode,
                "--json",
                json.to_str().unwrap(),
                "--hdr-log",
                hdr.to_str().unwrap(),
                "--plot",
                svg.to_str().unwrap(),
            ];
            let (code, out, err) = run_captured(&args, "");
            assert_eq!(code, 0, "{mode}: {out}{err}");
            let v: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
            assert_eq!(v["migrations"]["vm"], 40, "{mode}: {out}");
            // Real time has no place in a run on a virtual clock.
            assert!(v["cores"]["node_tsc_cycles_per_tlp"].is_null());
            assert!(!out.contains("TSC cycles"), "{out}");
            assert_eq!(v["migrations"]["aborted"], 0);
            assert_eq!(v["migrations"]["endpoint"], 20);
            // Each migration ended with the completion indication at its
            // destination host.
            assert_eq!(v["migrations"]["completion_indications"], 60);
            let per_migration = &v["blackout"]["per_migration_us"];
            assert_eq!(per_migration["count"], 60);
            for key in ["p50", "p90", "p99", "p999", "max"] {
                let x = per_migration[key].as_f64().unwrap();
                assert!(x > 0.0, "{key}");
                assert!(v["blackout"]["per_tlp_us"][key].is_number(), "{key}");
            }
            assert!(per_migration["p50"].as_f64() <= per_migration["max"].as_f64());
            assert!(v["blackout"]["per_tlp_us"]["count"].as_u64().unwrap() > 0);
            // While a binding was paused its VDI completed configuration
            // reads on its own, and the device served the other binding
            // directly.
            let alone = v["vdi"]["alone"].as_array().unwrap();
            assert!(
                alone.iter().any(|k| k == "configuration reads"),
                "{alone:?}"
            );
            assert!(v["vdi"]["beside_pauses"]["posted"].as_u64().unwrap() > 0);
            assert!(
                out.contains("while a binding was paused: its VDI alone completed"),
                "{out}"
            );
            for key in [
                "lost",
                "duplicated",
                "reordered",
                "completion_timeouts",
                "data_mismatches",
            ] {
                assert_eq!(v["integrity"][key], 0, "{mode} {key}");
            }
            let log = std::fs::read_to_string(&hdr).unwrap();
            assert!(log.contains("Tag=per_migration,"), "{log}");
            assert!(log.contains("Tag=per_tlp,"), "{log}");
            let plot = std::fs::read_to_string(&svg).unwrap();
            // A line per histogram and one per legend entry.
            assert_eq!(plot.matches("stroke-width=\"2\"").count(), 4, "{plot}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_node_names_what_is_wrong_with_its_share() {
        for (args, expected) in [
            (
                &["node", "--node", "sw9"][..],
                "--node: expected one of the topology's nodes (sw0, sw1), found \"sw9\"",
            ),
            (
                &["node", "--node", "sw0"],
                "--port: expected link0=IFACE: node sw0 reaches another node over link0",
            ),
            (
                &["node", "--node", "sw0", "--port", "link0"],
                "--port: expected LINK=IFACE (link0=eth1), found \"link0\"",
            ),
            (
                &["node", "--node", "sw0", "--port", "link3=eth1"],
                "--port link3=eth1: link3 is not a link of node sw0 (its links: link0)",
            ),
            (
                &[
                    "node", "--node", "sw0", "--port", "link0=a", "--port", "link0=b",
                ],
                "--port: link0 given twice",
            ),
            (
                &[
                    "node",
                    "--node",
                    "sw0",
                    "--port",
                    "link0=a",
                    "--deterministic",
                ],
                "--deterministic: a node runs on its ports in real time",
            ),
        ] {
            let (code, _, err) = run_captured(args, "");
            assert_eq!(code, 2, "{args:?}: {err}");
            assert!(err.contains(expected), "{args:?}: {err}");
        }
        // An interface that is not there is named (or, without the
        // privilege for raw sockets, the socket call is).
        let (code, _, err) = run_captured(
            &[
                "node",
                "--node",
                "sw0",
                "--port",
                "link0=no-such-if0",
                "--duration",
                "10ms",
            ],
            "",
        );
        assert_eq!(code, 1, "{err}");
        assert!(err.contains("cannot make link0: no-such-if0: "), "{err}");
    }

    #[test]
    fn more_bindings_than_tags_for_their_vms_are_refused_naming_the_file() {
        let mut text = String::from(
            "[[node]]\nname = \"sw0\"\nports = 8\n\n[[host]]\nname = \"h\"\nattach = \"sw0:0\"\n\
             buses = \"00-ff\"\nrequesters = [\"00:00.0\"]\n\
             dma = [{ base = \"0x100000000\", size = \"0x40000000\" }]\n",
        );
        for e in 0..5 {
            text += &format!(
                "\n[[endpoint]]\nname = \"nic{e}\"\nattach = \"sw0:{}\"\nid = \"{:02x}:00.0\"\n\
                 vfs = 255\nbar_size = \"0x1000\"\n",
                e + 1,
                0x40 + e
            );
        }
        for k in 0..1024 {
            text += &format!(
                "\n[[binding]]\nfunction = \"nic{}.vf{}\"\nhost = \"h\"\nid = \"{:02x}:{:02x}.0\"\nbar = \"{:#x}\"\n",
                k / 255,
                k % 255 + 1,
                k / 32 + 1,
                k % 32,
                0x8000_0000u64 + k as u64 * 0x1000
            );
        }
        let path = std::env::temp_dir().join(format!("tlpf-1024-{}.toml", std::process::id()));
        std::fs::write(&path, text).unwrap();
        let (code, _, err) = run_captured(
            &[
                "run",
                "--config",
                path.to_str().unwrap(),
                "--deterministic",
                "--duration",
                "1ms",
            ],
            "",
        );
        std::fs::remove_file(&path).unwrap();
        assert_eq!(code, 1, "{err}");
        assert!(
            err.contains(&format!(
                "{}: binding: expected at most 1023 [[binding]] entries",
                path.display()
            )),
            "{err}"
        );
    }

    #[test]
    fn report_merges_what_the_nodes_saw_and_names_a_bad_file() {
        let dir = std::env::temp_dir().join(format!("tlpf-merge-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let write = |name: &str, v: serde_json::Value| {
            let p = dir.join(name);
            std::fs::write(&p, v.to_string()).unwrap();
            p
        };
        // Hosts on one node sent 10 and got 4 answers; the device on the
        // other received the 6 writes and sent 5 DMA writes the hosts got.
        let hosts = write(
            "a.json",
            serde_json::json!({"integrity": {"sent": 10, "delivered": 9, "lost": 1}}),
        );
        let device = write(
            "b.json",
            serde_json::json!({"integrity": {"sent": 5, "delivered": 6, "lost": 0}}),
        );
        let (code, out, err) = run_captured(
            &["report", hosts.to_str().unwrap(), device.to_str().unwrap()],
            "",
        );
        assert_eq!(code, 0, "{out}{err}");
        assert!(out.contains("15 tracked TLPs sent, 15 delivered"), "{out}");
        assert!(out.contains("integrity: lost 0,"), "{out}");
        let (code, out, _) = run_captured(&["report", hosts.to_str().unwrap()], "");
        assert_eq!(code, 1);
        assert!(out.contains("integrity: lost 1,"), "{out}");
        let bad = write("bad.json", serde_json::json!([1, 2]));
        let (code, _, err) = run_captured(&["report", bad.to_str().unwrap()], "");
        assert_eq!(code, 1);
        assert!(
            err.contains("bad.json: expected a report of `node --json` or `run --json`"),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn report_adds_the_nodes_histograms_exactly() {
        let dir = std::env::temp_dir().join(format!("tlpf-hist-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // One node saw round trips of 1..=100 µs, the other 901..=1000 µs:
        // the fabric's median lies between, which no percentile of either
        // report gives.
        let node = |name: &str, from: u64| {
            let mut h = lcore::Blackouts::new().per_tlp;
            for us in from..from + 100 {
                h.record(us * 1_000).unwrap();
            }
            let log = telemetry::interval_log(
                &[("round_trip", &h)],
                std::time::Duration::ZERO,
                std::time::Duration::from_secs(1),
            )
            .unwrap();
            let v = serde_json::json!({
                "integrity": {"sent": 1, "delivered": 1},
                "histograms": String::from_utf8(log).unwrap(),
            });
            let p = dir.join(name);
            std::fs::write(&p, v.to_string()).unwrap();
            p
        };
        let (a, b) = (node("a.json", 1), node("b.json", 901));
        let json = dir.join("fabric.json");
        let (code, out, err) = run_captured(
            &[
                "report",
                a.to_str().unwrap(),
                b.to_str().unwrap(),
                "--json",
                json.to_str().unwrap(),
            ],
            "",
        );
        assert_eq!(code, 0, "{out}{err}");
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
        let rt = &v["round_trip_us"];
        assert_eq!(rt["count"], 200, "{v}");
        // The 100th of 200 values is 100 µs; the max is 1000 µs (within
        // the histogram's precision).
        let (p50, max) = (rt["p50"].as_f64().unwrap(), rt["max"].as_f64().unwrap());
        assert!((99.0..=101.0).contains(&p50), "{rt}");
        assert!((999.0..=1001.0).contains(&max), "{rt}");
        assert!(out.contains("request round trips:    p50 100"), "{out}");
        // A report without histograms is said, not taken for an empty one.
        let old = dir.join("old.json");
        std::fs::write(&old, r#"{"integrity": {"sent": 1, "delivered": 1}}"#).unwrap();
        let (code, _, err) =
            run_captured(&["report", a.to_str().unwrap(), old.to_str().unwrap()], "");
        assert_eq!(code, 0);
        assert!(err.contains("1 report(s) carry no histograms"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn bad_options_are_refused() {
        let (code, _, err) = run_captured(&["run", "--rate", "-5"], "");
        assert_eq!(code, 2, "{err}");
        // A payload the stamp does not fit in, one not in whole DWs, and
        // one past the MTU: each names the range it takes.
        for payload in ["8", "66", "2048"] {
            let (code, _, err) = run_captured(&["run", "--payload", payload], "");
            assert_eq!(code, 2, "{payload}: {err}");
            assert!(
                err.contains("--payload: expected a multiple of 4 from 16"),
                "{err}"
            );
            assert!(err.contains(&format!("found {payload}")), "{err}");
        }
        let (code, _, err) = run_captured(&["run", "--config", "/nonexistent.toml"], "");
        assert_eq!(code, 1);
        assert!(err.contains("cannot read"), "{err}");
        let args = [
            "run",
            "--eal",
            "--no-huge",
            "--deterministic",
            "--duration",
            "10ms",
        ];
        let (code, _, err) = run_captured(&args, "");
        assert_eq!(code, 0, "{err}");
        assert!(
            err.contains("note: --eal is for --pmd dpdk; ignored"),
            "{err}"
        );
        // Each output file is checked before the run, not after it.
        let missing = std::env::temp_dir().join(format!("tlpfabric-none-{}", std::process::id()));
        for flag in ["--json", "--hdr-log", "--plot"] {
            let path = missing.join("out");
            let args = ["run", "--duration", "30s", flag, path.to_str().unwrap()];
            let (code, out, err) = run_captured(&args, "");
            assert_eq!(code, 2, "{flag}");
            assert!(
                err.contains(&format!("{flag} ")) && err.contains("cannot write"),
                "{err}"
            );
            assert!(out.is_empty(), "refused before the run: {out}");
        }
    }
}
