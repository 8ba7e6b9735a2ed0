//! Assembles a fabric ready to run: node pipelines with their gates, host
//! and device models, and the orchestrator over [`FabricPlane`], with a
//! reliable link on every link (and, if asked, faults on the links between
//! nodes). One code path builds the whole fabric in one process (`tlpfabric
//! run`, the end-to-end tests) or the share of it one node owns (`tlpfabric
//! node`, [`ScenarioConfig::only`]).
//!
//! What it builds comes back as [`Part`]s: tasks for the cores that keep
//! their types, so a caller reads a host's integrity or a node's counters
//! once the cores hand them back, without downcasts.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod plane;

pub use plane::{vm_stream, DeviceHandle, FabricPlane, GateHandle, HostHandle};

use fabric::routing::epoch;
use fabric::{FaultConfig, NodeTables, Topology};
use lcore::{FrameSettings, Gate, GatedFunction, NodeTask, Task};
use migrate::{Orchestrator, Schedule};
use pmd::{ring_link, ClosedPort, FaultPort, FramePool, Port};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tlp::Bdf;
use traffic::{EndpointConfig, EndpointModel, FunctionConfig, HostConfig, HostModel, HostTarget};
use traffic::{MSIX_TABLE_BYTES, REGISTER_BLOCK};

/// The port type of node pipelines and models.
pub type DynPort = Box<dyn Port + Send>;

/// Makes both ends of a link: its name, the frames it holds each way, the
/// largest frame.
pub type LinkMaker = dyn Fn(&str, usize, usize) -> Result<(DynPort, DynPort), String> + Send + Sync;

/// The ports a scenario runs on: where frames come from and how links are
/// made.
#[derive(Clone)]
pub struct Ports {
    /// Every frame's buffer.
    pub pool: FramePool,
    /// Makes each link (between nodes, and from a node to a host or device).
    pub link: Arc<LinkMaker>,
}

impl Ports {
    /// The embedded default: in-memory rings, frames moving without copies.
    pub fn ring() -> Ports {
        Ports {
            pool: FramePool::new(RING_POOL.0, RING_POOL.1),
            link: Arc::new(|name, capacity, max_frame| {
                let (a, b) = ring_link(name, capacity, max_frame);
                Ok((Box::new(a) as DynPort, Box::new(b) as DynPort))
            }),
        }
    }
}

impl std::fmt::Debug for Ports {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ports").field("pool", &self.pool).finish()
    }
}

/// Why a scenario could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The ports could not make a link.
    #[error("cannot make {name}: {reason}")]
    Link {
        /// The link (`link0`, a host's or an endpoint's name).
        name: String,
        /// What the ports said.
        reason: String,
    },
    /// A reliable link's configuration was refused.
    #[error("link on {at}: {source}")]
    LinkConfig {
        /// Where: a host's or endpoint's name, or `node:port`.
        at: String,
        /// What was wrong with it.
        source: fabric::link::LinkConfigError,
    },
    /// The topology's parts did not agree (a node without tables, a link
    /// without a configuration): a defect, not an input error.
    #[error("inconsistent fabric: {0}")]
    Inconsistent(&'static str),
    /// More bindings than the host models have tags to give their VMs.
    #[error(
        "binding: expected at most 1023 [[binding]] entries (each VM keeps tags of its own on \
         every host), found {0}"
    )]
    Bindings(usize),
}

/// How to build a scenario.
#[derive(Debug, Clone)]
pub struct ScenarioConfig {
    /// Writes per second each host offers (devices offer half that in DMA).
    pub rate: f64,
    /// Nanoseconds a read may wait for its completion.
    pub completion_timeout: u64,
    /// Nanoseconds traffic is offered for.
    pub duration: u64,
    /// The migrations. Its `stop` stops the hosts and devices too.
    pub schedule: Schedule,
    /// Where endpoint templates are (`templates/NAME.toml` under it; the
    /// dumps they name must be under it too).
    pub config_dir: PathBuf,
    /// Take endpoint templates from those built into the program instead
    /// of `config_dir` (the embedded default topology).
    pub builtin_templates: bool,
    /// Faults on every link between nodes (each direction).
    pub link_faults: Option<FaultConfig>,
    /// How long a drain may last before its pause point closes anyway.
    pub drain_budget: Duration,
    /// A read-back after every this many writes of a host (0: none).
    pub read_every: u64,
    /// A configuration request after every this many writes of a host
    /// (0: none).
    pub config_every: u64,
    /// A register access after every this many writes of a host (0: none).
    pub register_every: u64,
    /// An MSI-X interrupt from each device function after every this many
    /// of its DMA writes (0: none).
    pub interrupt_every: u64,
    /// Bytes of data in each host write and read.
    pub payload: usize,
    /// The ports to run on.
    pub ports: Ports,
    /// Arrivals each host and device model logs with their times (0: none).
    pub arrival_log: usize,
    /// TLPs each pause point holds each way (`None`: the gate's default,
    /// beyond what credits let in; smaller shows what a full hold does).
    pub hold_capacity: Option<usize>,
    /// Build only this node's share of the fabric (`tlpfabric node`): its
    /// pipeline, its gate, and the hosts and devices attached to it. Its
    /// links to other nodes get the first port the link maker returns; no
    /// orchestrator runs.
    pub only: Option<usize>,
}

impl Default for ScenarioConfig {
    fn default() -> Self {
        ScenarioConfig {
            rate: 200_000.0,
            completion_timeout: 50_000_000,
            duration: 20_000_000,
            schedule: Schedule::default(),
            config_dir: PathBuf::from("configs"),
            builtin_templates: false,
            link_faults: None,
            drain_budget: DRAIN_BUDGET,
            read_every: HostConfig::default().read_every,
            config_every: HostConfig::default().config_every,
            register_every: HostConfig::default().register_every,
            interrupt_every: EndpointConfig::default().interrupt_every,
            payload: HostConfig::default().payload,
            ports: Ports::ring(),
            hold_capacity: None,
            arrival_log: 0,
            only: None,
        }
    }
}

/// One task of an assembled fabric, of its own type.
pub enum Part {
    /// A node's pipeline (with its gate, if an endpoint attaches there).
    Node(NodeTask<DynPort>),
    /// A host model.
    Host(HostModel<DynPort>),
    /// A device model.
    Device(EndpointModel<DynPort>),
    /// The orchestrator over the in-process plane.
    Orchestrator(Box<Orchestrator<FabricPlane>>),
    /// Anything else a core runs (a watch of its stalls, a port's setup).
    Other(Box<dyn Task>),
}

impl Part {
    /// The node pipeline, if this is one.
    pub fn node(&self) -> Option<&NodeTask<DynPort>> {
        match self {
            Part::Node(n) => Some(n),
            _ => None,
        }
    }

    /// The host model, if this is one.
    pub fn host(&self) -> Option<&HostModel<DynPort>> {
        match self {
            Part::Host(h) => Some(h),
            _ => None,
        }
    }

    /// The device model, if this is one.
    pub fn device(&self) -> Option<&EndpointModel<DynPort>> {
        match self {
            Part::Device(d) => Some(d),
            _ => None,
        }
    }

    /// The orchestrator, if this is it.
    pub fn orchestrator(&self) -> Option<&Orchestrator<FabricPlane>> {
        match self {
            Part::Orchestrator(o) => Some(o),
            _ => None,
        }
    }
}

impl Task for Part {
    fn name(&self) -> &str {
        match self {
            Part::Node(t) => t.name(),
            Part::Host(t) => t.name(),
            Part::Device(t) => t.name(),
            Part::Orchestrator(t) => t.name(),
            Part::Other(t) => t.name(),
        }
    }

    #[inline]
    fn poll(&mut self, now: u64) -> usize {
        match self {
            Part::Node(t) => t.poll(now),
            Part::Host(t) => t.poll(now),
            Part::Device(t) => t.poll(now),
            Part::Orchestrator(t) => t.poll(now),
            Part::Other(t) => t.poll(now),
        }
    }
}

impl std::fmt::Debug for Part {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Part({})", self.name())
    }
}

/// Every task of an assembled fabric, for two cores.
pub struct Scenario {
    /// Node pipelines, one per node, after a watch of their core's stalls.
    pub nodes: Vec<Part>,
    /// A watch of their core's stalls, host models, device models, and the
    /// orchestrator last.
    pub models: Vec<Part>,
    /// Problems worth a line in a report (a template not found).
    pub notes: Vec<String>,
    /// How long the nodes' core was kept from running (hosts judge their
    /// completion timeouts by it).
    pub fabric_stalls: Arc<lcore::StallClock>,
    /// Per binding, what its VM has received, published as it goes: a run
    /// on cores tells by it whether TLPs are still arriving.
    pub received: Vec<Arc<traffic::VmCounters>>,
}

impl std::fmt::Debug for Scenario {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scenario")
            .field("nodes", &self.nodes.len())
            .field("models", &self.models.len())
            .field("notes", &self.notes)
            .finish()
    }
}

/// What a scenario of a topology allocates when it is built, about, by
/// part (bytes). Held TLPs' own buffers come on top while a pause holds
/// them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Memory {
    /// The frame pool of the in-memory ports.
    pub frame_pool: usize,
    /// Replay buffers of every link end (each link between nodes has two;
    /// so does each host's and device's link with its node).
    pub replay_buffers: usize,
    /// Waiting rooms of the nodes' reliable ports.
    pub waiting_rooms: usize,
    /// Gates: pause points and VDIs.
    pub gates: usize,
    /// Host and device models (their functions' memory).
    pub models: usize,
}

impl Memory {
    /// All of it.
    pub fn total(&self) -> usize {
        self.frame_pool + self.replay_buffers + self.waiting_rooms + self.gates + self.models
    }
}

/// Frames in the in-memory ports' pool, and the bytes of each.
const RING_POOL: (usize, usize) = (32_768, 1600);

/// What building `t` as a scenario allocates, about (see [`Memory`]).
pub fn memory(t: &Topology) -> Memory {
    let link = fabric::Link::memory(&fabric::LinkConfig {
        mtu: t.link.mtu,
        replay_slots: t.link.replay_slots,
        ..fabric::LinkConfig::default()
    });
    let edges = t.hosts.len() + t.endpoints.len();
    let reliable_ports = 2 * t.links.len() + edges;
    let functions: usize = t.endpoints.iter().map(|e| 1 + e.vfs as usize).sum();
    let function_bytes: usize = t
        .endpoints
        .iter()
        .map(|e| (1 + e.vfs as usize) * Layout::of(e.bar_size).size as usize)
        .sum();
    Memory {
        frame_pool: RING_POOL.0 * RING_POOL.1,
        replay_buffers: (reliable_ports + edges) * link,
        waiting_rooms: reliable_ports * lcore::reliable_port_memory(),
        gates: t.endpoints.len() * lcore::gate::gate_memory()
            + functions * lcore::gate::function_memory(),
        models: function_bytes,
    }
}

/// How long a drain may go on before a pause point closes anyway.
pub const DRAIN_BUDGET: Duration = Duration::from_millis(1);

/// The vendor ID in the completion indication when no template gives one
/// (a Vendor-Defined Type 1 message: receivers that do not know it discard
/// it, §2.2.8.6).
pub(crate) const SIGNAL_VENDOR: u16 = 0x1af4;

/// How a function's BAR is used: the register block first (when the BAR
/// has room for it and data), then the data the host writes and reads back,
/// then the MSI-X table in the last 4 KiB.
struct Layout {
    /// Bytes of the BAR the models use.
    size: u64,
    registers: bool,
    data: u64,
    region: u64,
}

/// Whether a BAR of `bar_size` bytes has the register block (room for it
/// and as much data).
pub(crate) fn has_registers(bar_size: u64) -> bool {
    bar_size >= 2 * REGISTER_BLOCK
}

impl Layout {
    fn of(bar_size: u64) -> Layout {
        let size = bar_size.min(2 * REGISTER_BLOCK);
        let registers = has_registers(size);
        let data = if registers { REGISTER_BLOCK } else { 0 };
        Layout {
            size,
            registers,
            data,
            region: size.saturating_sub(data + MSIX_TABLE_BYTES as u64),
        }
    }
}

/// The fabric of `t` as `c` asks.
pub fn build(t: &Topology, c: &ScenarioConfig) -> Result<Scenario, BuildError> {
    let (rate, timeout, duration) = (c.rate, c.completion_timeout, c.duration);
    let total = |rate: f64| (rate * duration as f64 / 1e9) as u64;
    let pool = c.ports.pool.clone();
    let link = |name: &str| {
        (c.ports.link)(name, 1024, 14 + t.link.mtu).map_err(|reason| BuildError::Link {
            name: name.to_string(),
            reason,
        })
    };
    if traffic::vm_tags(0, t.bindings.len()).is_none() {
        return Err(BuildError::Bindings(t.bindings.len()));
    }
    let mut notes = Vec::new();
    let mut ports: Vec<Vec<Option<DynPort>>> = t
        .nodes
        .iter()
        .map(|n| (0..n.ports).map(|_| None).collect())
        .collect();
    let mut reliable = Vec::new();
    let mine = |node: usize| c.only.is_none_or(|n| n == node);
    for (i, (a, b)) in t.links.iter().enumerate() {
        if let Some(n) = c.only {
            // A link to another process: its end here is the first port
            // the maker gives.
            let here = if a.node == n {
                a
            } else if b.node == n {
                b
            } else {
                continue;
            };
            let (port, _) = link(&format!("link{i}"))?;
            ports[here.node][here.port as usize] = Some(port);
            reliable.push((here.node, here.port, t.link_config(i, here == a)));
            continue;
        }
        let (pa, pb) = link(&format!("link{i}"))?;
        match c.link_faults {
            Some(f) => {
                let other = FaultConfig {
                    seed: f.seed.wrapping_add(1 + 2 * i as u64),
                    ..f
                };
                let f = FaultConfig {
                    seed: f.seed.wrapping_add(2 * i as u64),
                    ..f
                };
                ports[a.node][a.port as usize] =
                    Some(Box::new(FaultPort::new(pa, f, pool.clone())));
                ports[b.node][b.port as usize] =
                    Some(Box::new(FaultPort::new(pb, other, pool.clone())));
            }
            None => {
                ports[a.node][a.port as usize] = Some(pa);
                ports[b.node][b.port as usize] = Some(pb);
            }
        }
        reliable.push((a.node, a.port, t.link_config(i, true)));
        reliable.push((b.node, b.port, t.link_config(i, false)));
    }
    // Hosts and devices run the reliable link with their switch too, so the
    // fabric's credits pace them as a PCIe link paces a root port or device.
    let edge_link = |node: usize| fabric::LinkConfig {
        mtu: t.link.mtu,
        ethertype: t.link.ethertype,
        flush_deadline: t.link.flush_deadline_ns,
        replay_timeout: t.link.replay_timeout_ns,
        replay_slots: t.link.replay_slots,
        local_node: node as u16,
        remote_node: u16::MAX,
        ..fabric::LinkConfig::default()
    };
    let fabric_stalls = Arc::new(lcore::StallClock::default());
    let model_stalls = Arc::new(lcore::StallClock::default());
    let mut models = vec![Part::Other(Box::new(lcore::StallWatch::new(
        model_stalls.clone(),
    )))];
    let mut host_handles = Vec::new();
    let mut vm_counters: Vec<_> = t
        .bindings
        .iter()
        .map(|_| std::sync::Arc::new(traffic::VmCounters::default()))
        .collect();
    let binding_of = |e: usize, f: u8| {
        t.bindings
            .iter()
            .position(|b| b.endpoint == e && b.function == f)
    };
    for (h, host) in t.hosts.iter().enumerate() {
        if !mine(host.attach.node) {
            continue;
        }
        let (edge, model) = link(&host.name)?;
        ports[host.attach.node][host.attach.port as usize] = Some(edge);
        let targets = t
            .bindings
            .iter()
            .enumerate()
            .filter(|(_, b)| b.host == h)
            .map(|(i, b)| {
                let layout = Layout::of(b.bar.size);
                HostTarget {
                    tags: traffic::vm_tags(i, t.bindings.len()).unwrap_or((0, 1)),
                    bar: b.bar.base,
                    data: layout.data,
                    registers: layout.registers,
                    // The function's MSI-X table follows what the VM writes.
                    region: layout.region,
                    stream: crate::vm_stream(i),
                    dma_stream: crate::vm_stream(i).wrapping_add(1),
                    id: b.host_id,
                    msi: host.dma.get(1).map(|w| w.base),
                    completion_vector: match b.completion {
                        fabric::Completion::Msix(n) => Some(n),
                        fabric::Completion::Message => None,
                    },
                }
            })
            .collect();
        let config = HostConfig {
            requester: host.requesters[0],
            targets,
            rate: Some(rate),
            total_writes: total(rate),
            until: duration,
            stop: c.schedule.stop.clone(),
            completion_timeout: timeout,
            read_every: c.read_every,
            config_every: c.config_every,
            register_every: c.register_every,
            payload: c.payload,
            arrival_log: c.arrival_log,
            ..HostConfig::default()
        };
        let mut host_model = HostModel::new(config, model, pool.clone());
        for vm in host_model.vms() {
            let binding = (vm.target.stream / 2) as usize;
            vm_counters[binding] = vm.counters();
        }
        let link = edge_link(host.attach.node);
        host_model
            .with_link(link.peer())
            .map_err(|source| BuildError::LinkConfig {
                at: host.name.clone(),
                source,
            })?;
        let (commands, commands_rx) = rings::spsc::ring(64);
        let (handed_tx, handed) = rings::spsc::ring(64);
        host_model.with_control(commands_rx, handed_tx);
        host_model.with_stall_clock(fabric_stalls.clone());
        host_handles.push(HostHandle {
            commands,
            handed,
            enumerated: host_model.enumerations(),
        });
        reliable.push((host.attach.node, host.attach.port, Some(link)));
        models.push(Part::Host(host_model));
    }
    let mut gates: Vec<Option<Gate>> = t.nodes.iter().map(|_| None).collect();
    let mut gate_handles = Vec::new();
    let mut device_handles = Vec::new();
    let mut vendor = None;
    for (e, end) in t.endpoints.iter().enumerate() {
        if !mine(end.attach.node) {
            continue;
        }
        let (edge, model) = link(&end.name)?;
        ports[end.attach.node][end.attach.port as usize] = Some(edge);
        let functions = (0..=end.vfs)
            .map(|f| {
                let binding = binding_of(e, f);
                let dma =
                    binding.and_then(|i| t.hosts[t.bindings[i].host].dma.first().map(|w| w.base));
                let i = binding.unwrap_or(usize::MAX / 4);
                let layout = Layout::of(end.bar_size);
                FunctionConfig {
                    function: Bdf(end.id.0.wrapping_add(f as u16)),
                    bar: end.fabric_bar + f as u64 * end.bar_size,
                    size: layout.size as usize,
                    registers: layout.registers,
                    dma,
                    stream: crate::vm_stream(i).wrapping_add(1),
                    host_stream: crate::vm_stream(i),
                    // Until its VM programs its MSI-X table.
                    msi: None,
                }
            })
            .collect();
        let config = EndpointConfig {
            functions,
            dma_per_poll: 2,
            rate: Some(rate / 2.0),
            total_dma: total(rate / 2.0),
            until: duration,
            stop: c.schedule.stop.clone(),
            arrival_log: c.arrival_log,
            interrupt_every: c.interrupt_every,
            ..EndpointConfig::default()
        };
        let mut device = EndpointModel::new(config, model, pool.clone());
        let link = edge_link(end.attach.node);
        device
            .with_link(link.peer())
            .map_err(|source| BuildError::LinkConfig {
                at: end.name.clone(),
                source,
            })?;
        let (commands, commands_rx) = rings::spsc::ring(64);
        let (moved_tx, moved) = rings::spsc::ring(64);
        device.with_control(commands_rx, moved_tx);
        device_handles.push(Some(DeviceHandle { commands, moved }));
        reliable.push((end.attach.node, end.attach.port, Some(link)));
        models.push(Part::Device(device));
        // The gate where it attaches: a pause point and a VDI per function.
        if gates[end.attach.node].is_some() {
            notes.push(format!(
                "{}: a second endpoint on node {} has no pause point; its bindings do not migrate",
                end.name, t.nodes[end.attach.node].name
            ));
            gate_handles.push(None);
            continue;
        }
        let template = end.template.as_ref().and_then(|name| {
            let loaded = if c.builtin_templates {
                vdi::Template::builtin(name).unwrap_or_else(|| {
                    Err(vec![vdi::TemplateError {
                        file: PathBuf::from(format!("(built in)/templates/{name}.toml")),
                        key: "(file)".into(),
                        message: "no such built-in template".into(),
                    }])
                })
            } else {
                let path = c.config_dir.join("templates").join(format!("{name}.toml"));
                vdi::Template::load_within(&path, &c.config_dir)
            };
            match loaded {
                Ok(t) => Some(t),
                Err(errors) => {
                    let first = errors.first().map(|e| e.to_string()).unwrap_or_default();
                    notes.push(format!("{}: no VDI ({first})", end.name));
                    None
                }
            }
        });
        let functions = (0..=end.vfs)
            .map(|f| {
                let id = Bdf(end.id.0.wrapping_add(f as u16));
                let bar = (end.fabric_bar + f as u64 * end.bar_size, end.bar_size);
                let vdi = template.as_ref().map(|tpl| {
                    let mut vdi = vdi::Vdi::new(tpl, id);
                    // Where the fabric put the function, as enumeration
                    // would have programmed it.
                    vdi.place_bar(0, bar.0);
                    // Its MSI-X table where the window shows it, the last
                    // MSIX_TABLE_BYTES of what the models use, the pending
                    // bits in that space's second half.
                    let layout = Layout::of(end.bar_size);
                    let table = (layout.data + layout.region) as u32;
                    vdi.relocate_msix(0, table, table + MSIX_TABLE_BYTES as u32 / 2);
                    vdi
                });
                if let Some(v) = &vdi {
                    vendor.get_or_insert(v.ids().0);
                }
                (GatedFunction { function: id, bar }, vdi)
            })
            .collect();
        let (commands, commands_rx) = rings::spsc::ring(64);
        let mut gate = Gate::new(end.attach.port, functions, commands_rx, c.drain_budget);
        if let Some(capacity) = c.hold_capacity {
            gate = gate.with_hold_capacity(capacity);
        }
        // The devices answer on the models' core, the gate runs on the
        // nodes': a drain does not count the time either was kept from
        // running.
        gate.with_stall_clocks(vec![model_stalls.clone(), fabric_stalls.clone()]);
        gate_handles.push(Some(GateHandle {
            commands,
            status: gate.status(),
        }));
        gates[end.attach.node] = Some(gate);
    }
    let mut nodes = vec![Part::Other(Box::new(lcore::StallWatch::new(
        fabric_stalls.clone(),
    )))];
    let mut publishers = Vec::new();
    let mut tables = NodeTables::build_all(t).into_iter();
    for (n, node_ports) in ports.into_iter().enumerate() {
        if !mine(n) {
            let _ = tables.next();
            continue;
        }
        let node_ports: Vec<DynPort> = node_ports
            .into_iter()
            .map(|p| p.unwrap_or_else(|| Box::new(ClosedPort::default())))
            .collect();
        let first = tables
            .next()
            .ok_or(BuildError::Inconsistent("a node without tables"))?;
        let (publisher, reader) = epoch::channel(first);
        publishers.push(publisher);
        let settings = FrameSettings {
            ethertype: t.link.ethertype,
            mtu: t.link.mtu,
            ..FrameSettings::default()
        };
        let mut task = NodeTask::new(&t.nodes[n].name, reader, node_ports, pool.clone(), settings);
        for (node, port, config) in &reliable {
            if *node == n {
                let mut config =
                    config.ok_or(BuildError::Inconsistent("a link without a configuration"))?;
                if c.only.is_none() {
                    // In one process no peer dies alone; a stalled core
                    // must not pass for one.
                    config.down_after = 0;
                }
                task.with_reliable_link(*port, config).map_err(|source| {
                    BuildError::LinkConfig {
                        at: format!("{}:{port}", t.nodes[n].name),
                        source,
                    }
                })?;
            }
        }
        if let Some(gate) = gates[n].take() {
            task.with_gate(gate);
        }
        nodes.push(Part::Node(task));
    }
    // Each binding's completion indication, as its topology entry asks.
    let signals = t
        .bindings
        .iter()
        .map(|b| match b.completion {
            fabric::Completion::Message => vdi::CompletionSignal::VendorMessage {
                vendor_id: vendor.unwrap_or(SIGNAL_VENDOR),
                word: 1,
            },
            fabric::Completion::Msix(n) => vdi::CompletionSignal::Msix(n),
        })
        .collect();
    let received = vm_counters.clone();
    if c.only.is_some() {
        // Migrations need every node's tables and gates: the fabric
        // manager's, not one node's.
        return Ok(Scenario {
            nodes,
            models,
            notes,
            fabric_stalls,
            received,
        });
    }
    let plane = FabricPlane::new(
        t.clone(),
        publishers,
        gate_handles,
        host_handles,
        device_handles,
        vm_counters,
        signals,
    );
    models.push(Part::Orchestrator(Box::new(Orchestrator::new(
        plane,
        c.schedule.clone(),
    ))));
    Ok(Scenario {
        nodes,
        models,
        notes,
        fabric_stalls,
        received,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_that_cannot_make_a_link_are_named_in_a_typed_error() {
        let t = fabric::Topology::parse(
            std::path::Path::new("default.toml"),
            include_str!("../../../configs/default.toml"),
        )
        .expect("the default topology");
        let mut c = ScenarioConfig {
            builtin_templates: true,
            ..ScenarioConfig::default()
        };
        let inner = c.ports.link.clone();
        c.ports.link = Arc::new(move |name, capacity, max_frame| {
            if name == "link0" {
                Err("no such device".to_string())
            } else {
                inner(name, capacity, max_frame)
            }
        });
        let Err(e) = build(&t, &c) else {
            panic!("built without link0");
        };
        assert!(
            matches!(&e, BuildError::Link { name, reason } if name == "link0" && reason == "no such device"),
            "{e:?}"
        );
        assert_eq!(e.to_string(), "cannot make link0: no such device");
    }
}
