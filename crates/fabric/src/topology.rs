//! The fabric's topology, read from TOML: switch nodes and their ports, links
//! between ports, hosts (each its own PCIe domain), endpoint devices (a
//! physical function and its virtual functions) and bindings of functions to
//! hosts. [`Topology::load`] checks everything it can and reports every
//! problem found, each naming the file, the key and what was expected.
//!
//! ```toml
//! [fabric]                         # optional; these are the defaults
//! ethertype = "0x88b5"
//! mtu = 1500                       # up to 9000
//! flush_deadline_ns = 1000
//! replay_timeout_ns = 200000
//! replay_slots = 64
//! down_after_ns = 1000000000       # a link between node processes whose
//!                                  # peer is silent this long is down
//!
//! [[node]]
//! name = "sw0"
//! ports = 4
//!
//! [[link]]
//! a = "sw0:0"
//! b = "sw1:0"
//! integrity = "crc32c"             # or "fcs": the ports' Ethernet FCS
//!
//! [[host]]
//! name = "host-a"
//! attach = "sw0:1"
//! buses = "00-0f"                  # the domain's bus range, hex, inclusive
//! requesters = ["00:00.0"]         # the root complex's requester IDs
//! dma = [{ base = "0x100000000", size = "0x40000000" }]
//!
//! [[endpoint]]
//! name = "nic0"
//! attach = "sw1:1"
//! id = "40:00.0"                   # the physical function's fabric ID
//! vfs = 3
//! bar_size = "0x10000"
//!
//! [[binding]]
//! function = "nic0.vf1"            # nic0.pf, or nic0.vfN with N from 1
//! host = "host-a"
//! id = "01:00.0"                   # the ID the host sees
//! bar = "0xfe000000"               # the BAR address the host sees (32-bit)
//! id_mode = "different"            # or "common": see IdMode
//! completion = "message"           # or "msix:N": see Completion
//! ```
//!
//! Every size has an upper bound, checked with the rest (so that what a
//! fabric will take can be said before it is built): at most
//! [`MAX_NODES`] nodes of at most [`MAX_PORTS`] ports, [`MAX_REQUESTERS`]
//! requester IDs and [`MAX_DMA_WINDOWS`] DMA windows per host, BARs of
//! 4 KiB to [`MAX_BAR_SIZE`], [`MAX_REPLAY_SLOTS`] replay slots, a flush
//! deadline up to [`MAX_FLUSH_DEADLINE_NS`] and a replay timeout up to
//! [`MAX_REPLAY_TIMEOUT_NS`]. Names are 1 to 64 letters, digits, `-` and
//! `_` (so `node:port` and `endpoint.function` references can always name
//! them). A key that is wrong is reported once: what refers to the thing
//! it names is not reported again as naming nothing.
//!
//! Checking also lays out the fabric's own space (see [`crate::node`]): a
//! fabric requester bus per host and per common-mode binding, taken from
//! bus ff downward past the endpoints' buses; the functions' BARs from
//! 0x8000_0000 (32-bit); the hosts' DMA windows from 0x1000_0000 (those
//! below 4 GiB) and from 1 TiB (those above).

use crate::frame::Integrity;
use serde::Deserialize;
use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;
use std::path::{Path, PathBuf};
use tlp::Bdf;

/// One problem in a topology file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file.
    pub file: PathBuf,
    /// The key path, like `binding[2].function`.
    pub key: String,
    /// What was wrong and what was expected.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.file.display(), self.key, self.message)
    }
}

impl std::error::Error for ConfigError {}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSpec {
    #[serde(default)]
    fabric: Option<FabricSpec>,
    #[serde(default)]
    node: Vec<NodeSpec>,
    #[serde(default)]
    link: Vec<LinkSpec>,
    #[serde(default)]
    host: Vec<HostSpec>,
    #[serde(default)]
    endpoint: Vec<EndpointSpec>,
    #[serde(default)]
    binding: Vec<BindingSpec>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FabricSpec {
    ethertype: Option<String>,
    mtu: Option<usize>,
    flush_deadline_ns: Option<u64>,
    replay_timeout_ns: Option<u64>,
    replay_slots: Option<usize>,
    down_after_ns: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NodeSpec {
    name: String,
    ports: u16,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LinkSpec {
    a: String,
    b: String,
    integrity: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WindowSpec {
    base: String,
    size: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HostSpec {
    name: String,
    attach: String,
    buses: String,
    requesters: Vec<String>,
    #[serde(default)]
    dma: Vec<WindowSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EndpointSpec {
    name: String,
    attach: String,
    id: String,
    #[serde(default)]
    vfs: u8,
    bar_size: String,
    #[serde(default)]
    template: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BindingSpec {
    function: String,
    host: String,
    id: String,
    bar: String,
    #[serde(default)]
    id_mode: Option<String>,
    #[serde(default)]
    completion: Option<String>,
}

/// A port of a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PortRef {
    /// Node index.
    pub node: usize,
    /// Port number.
    pub port: u16,
}

/// An address window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// First byte.
    pub base: u64,
    /// Bytes.
    pub size: u64,
}

impl Window {
    fn end(&self) -> u64 {
        self.base.saturating_add(self.size)
    }

    fn overlaps(&self, other: &Window) -> bool {
        self.base < other.end() && other.base < self.end()
    }
}

/// A switch node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// Its name.
    pub name: String,
    /// How many ports.
    pub ports: u16,
}

/// A host: one PCIe domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    /// Its name.
    pub name: String,
    /// Where it attaches.
    pub attach: PortRef,
    /// Its bus range, inclusive.
    pub buses: (u8, u8),
    /// The root complex's requester IDs.
    pub requesters: Vec<Bdf>,
    /// Memory windows endpoints bound to it may DMA into (its MSI address
    /// range included, if its functions raise MSI or MSI-X).
    pub dma: Vec<Window>,
    /// The fabric bus its requester IDs take: requester `i` of `requesters`
    /// is `fabric_bus:00.0 + i` in the fabric.
    pub fabric_bus: u8,
    /// Where each DMA window sits in the fabric's address space.
    pub fabric_dma: Vec<u64>,
}

/// An endpoint device: a physical function and its virtual functions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Its name.
    pub name: String,
    /// Where it attaches.
    pub attach: PortRef,
    /// The physical function's fabric ID; virtual function N is at ID + N.
    pub id: Bdf,
    /// Number of virtual functions.
    pub vfs: u8,
    /// Size of each function's BAR.
    pub bar_size: u64,
    /// Configuration-space template name.
    pub template: Option<String>,
    /// The physical function's BAR in the fabric's address space; virtual
    /// function N's follows at `fabric_bar + N * bar_size`.
    pub fabric_bar: u64,
}

/// How a binding's requests are identified in the fabric, which decides
/// what a migration of the binding must do with completions in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IdMode {
    /// Requests carry their host's fabric requester ID: origin and
    /// destination hosts have different IDs, so completions in flight must
    /// drain to the origin before the binding moves.
    #[default]
    Different,
    /// Requests carry the binding's own fabric requester ID, whichever host
    /// holds it: completions in flight simply follow the binding.
    Common,
}

impl IdMode {
    /// `different` or `common`.
    pub fn name(self) -> &'static str {
        match self {
            IdMode::Different => "different",
            IdMode::Common => "common",
        }
    }
}

/// A function bound to a host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    /// Endpoint index.
    pub endpoint: usize,
    /// 0 for the physical function, N for virtual function N.
    pub function: u8,
    /// Host index.
    pub host: usize,
    /// The ID the host sees.
    pub host_id: Bdf,
    /// The BAR window the host sees.
    pub bar: Window,
    /// How its requests are identified in the fabric.
    pub id_mode: IdMode,
    /// In common mode, the fabric bus of the binding's requester IDs.
    pub common_bus: Option<u8>,
    /// How the destination host is told a migration of it completed.
    pub completion: Completion,
}

/// How a binding's destination host learns that its migration completed
/// (claim 8): the VDI raises an MSI-X vector the VM programmed, or sends
/// a Vendor-Defined Type 1 message to the root complex.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Completion {
    /// A Vendor-Defined message (`completion = "message"`, the default).
    #[default]
    Message,
    /// MSI-X vector N of the function (`completion = "msix:N"`).
    Msix(u16),
}

/// The highest vector `completion = "msix:N"` may name: the traffic
/// models' VMs program vectors 0 to N in one write, and vector 0 carries
/// the function's own interrupts.
pub const MAX_COMPLETION_VECTOR: u16 = 255;

/// How every link of the fabric runs (the `[fabric]` table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkSettings {
    /// EtherType of fabric frames (0x88B5 by default).
    pub ethertype: u16,
    /// Link MTU, 64..=9000 (1500 by default).
    pub mtu: usize,
    /// Nanoseconds a partly filled frame waits for more TLPs (1000).
    pub flush_deadline_ns: u64,
    /// Nanoseconds without acknowledgement before a replay (200000).
    pub replay_timeout_ns: u64,
    /// Frames each link end keeps for replay (64).
    pub replay_slots: usize,
    /// Nanoseconds of silence from the peer after which a link between
    /// node processes is down for good (1 s; 0: never). See
    /// `LinkConfig::down_after`.
    pub down_after_ns: u64,
}

impl Default for LinkSettings {
    fn default() -> Self {
        let d = crate::link::LinkConfig::default();
        LinkSettings {
            ethertype: d.ethertype,
            mtu: d.mtu,
            flush_deadline_ns: d.flush_deadline,
            replay_timeout_ns: d.replay_timeout,
            replay_slots: d.replay_slots,
            down_after_ns: DEFAULT_DOWN_AFTER_NS,
        }
    }
}

/// How long a link between node processes may hear nothing from its peer
/// before it is down: 50,000 update intervals.
pub const DEFAULT_DOWN_AFTER_NS: u64 = 1_000_000_000;
/// The longest silence a link may be told to wait out.
pub const MAX_DOWN_AFTER_NS: u64 = 3_600_000_000_000;

/// Next hops toward the nodes where hosts and endpoints attach
/// ([`Topology::paths`]).
#[derive(Debug, Clone, Default)]
pub struct Paths {
    /// Per attachment node, per node: the port that starts a shortest path
    /// toward it (`Some(u16::MAX)` at the node itself).
    toward: HashMap<usize, Vec<Option<u16>>>,
    /// Per node, its links: its port, the peer node.
    links: Vec<Vec<(u16, usize)>>,
}

impl Paths {
    /// Node `node`'s links: its port, the peer node.
    pub fn links(&self, node: usize) -> &[(u16, usize)] {
        self.links.get(node).map_or(&[], Vec::as_slice)
    }

    /// The port on `from` that starts a shortest path to `to` (a node a
    /// host or endpoint attaches to); `None` where unreachable or unknown.
    pub fn next(&self, from: usize, to: usize) -> Option<u16> {
        *self.toward.get(&to)?.get(from)?
    }
}

/// A checked topology.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topology {
    /// How links run.
    pub link: LinkSettings,
    /// Switch nodes.
    pub nodes: Vec<Node>,
    /// Links between node ports.
    pub links: Vec<(PortRef, PortRef)>,
    /// How each link (same index) knows a frame arrived whole: its
    /// CRC-32C (the default) or the ports' Ethernet FCS.
    pub link_integrity: Vec<Integrity>,
    /// Hosts.
    pub hosts: Vec<Host>,
    /// Endpoint devices.
    pub endpoints: Vec<Endpoint>,
    /// Bindings.
    pub bindings: Vec<Binding>,
}

/// Nodes in one fabric: frames carry 16-bit node numbers, and the last is
/// kept for "no node" (a host's or device's end of its link).
pub const MAX_NODES: usize = u16::MAX as usize;
/// Ports of one node.
pub const MAX_PORTS: u16 = 256;
/// Requester IDs of one host: they take one fabric bus.
pub const MAX_REQUESTERS: usize = 256;
/// DMA windows of one host.
pub const MAX_DMA_WINDOWS: usize = 64;
/// The largest BAR of a function (the fabric's BAR space is 2 GiB).
pub const MAX_BAR_SIZE: u64 = 1 << 30;
/// Frames a link end keeps for replay.
pub const MAX_REPLAY_SLOTS: usize = 4096;
/// The longest a partly filled frame may wait for company.
pub const MAX_FLUSH_DEADLINE_NS: u64 = 1_000_000_000;
/// The longest replay timeout.
pub const MAX_REPLAY_TIMEOUT_NS: u64 = 10_000_000_000;

/// Whether `name` can be a name: 1 to 64 ASCII letters, digits, `-`, `_`.
fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

const FOUR_GIB: u64 = 1 << 32;
/// Fabric space for 32-bit DMA windows.
const FABRIC_DMA32: (u64, u64) = (0x1000_0000, 0x8000_0000);
/// Fabric space for the functions' BARs (32-bit).
const FABRIC_BARS: (u64, u64) = (0x8000_0000, FOUR_GIB);
/// Fabric space for 64-bit DMA windows.
const FABRIC_DMA64: (u64, u64) = (1 << 40, 1 << 48);

fn align_up(x: u64, a: u64) -> Option<u64> {
    x.checked_add(a - 1).map(|v| v & !(a - 1))
}

/// Lays out the fabric's own ID and address space: a requester bus per host
/// and per common-mode binding (from ff down), each endpoint's BARs, each
/// host's DMA windows. Everything the fabric routes between nodes is in this
/// space, so every node's tables are plain non-overlapping windows and IDs;
/// translation happens only where hosts attach.
fn plan_fabric_space(t: &mut Topology, c: &mut Check) {
    let endpoint_buses: HashSet<u8> = t
        .endpoints
        .iter()
        .flat_map(|e| (0..=e.vfs as u16).map(move |f| Bdf(e.id.0.wrapping_add(f)).bus()))
        .collect();
    let mut next_bus = 0xffu16;
    let mut take_bus = |c: &mut Check, key: String| -> Option<u8> {
        while next_bus > 0 && endpoint_buses.contains(&(next_bus as u8)) {
            next_bus -= 1;
        }
        if next_bus == 0 {
            c.err(
                key,
                "no fabric bus left for its requester IDs (endpoint IDs use the rest)",
            );
            return None;
        }
        next_bus -= 1;
        Some((next_bus + 1) as u8)
    };
    for (i, h) in t.hosts.iter_mut().enumerate() {
        h.fabric_bus = take_bus(c, format!("host[{i}]")).unwrap_or(0);
    }
    for (i, b) in t.bindings.iter_mut().enumerate() {
        if b.id_mode == IdMode::Common {
            b.common_bus = take_bus(c, format!("binding[{i}].id_mode"));
        }
    }
    let mut bars = FABRIC_BARS.0;
    for (i, e) in t.endpoints.iter_mut().enumerate() {
        let span = e.bar_size.saturating_mul(1 + e.vfs as u64);
        match align_up(bars, e.bar_size) {
            Some(base) if base.saturating_add(span) <= FABRIC_BARS.1 => {
                e.fabric_bar = base;
                bars = base + span;
            }
            _ => c.err(
                format!("endpoint[{i}].bar_size"),
                format!(
                    "the functions' BARs do not fit in the fabric's 32-bit BAR space \
                     {:#x}..{:#x}",
                    FABRIC_BARS.0, FABRIC_BARS.1
                ),
            ),
        }
    }
    const MIB: u64 = 1 << 20;
    let (mut low, mut high) = (FABRIC_DMA32.0, FABRIC_DMA64.0);
    for (i, h) in t.hosts.iter_mut().enumerate() {
        for (j, w) in h.dma.iter().enumerate() {
            let (cursor, limit) = if w.end() <= FOUR_GIB {
                (&mut low, FABRIC_DMA32.1)
            } else {
                (&mut high, FABRIC_DMA64.1)
            };
            // Keep the offset within a MiB, so translation moves whole MiBs.
            let base = align_up(*cursor, MIB).map(|b| b + w.base % MIB);
            match base {
                Some(base) if base.saturating_add(w.size) <= limit => {
                    h.fabric_dma.push(base);
                    *cursor = base + w.size;
                }
                _ => {
                    c.err(
                        format!("host[{i}].dma[{j}]"),
                        format!("does not fit in the fabric's DMA space (up to {limit:#x})"),
                    );
                    h.fabric_dma.push(0);
                }
            }
        }
    }
}

fn link_settings(c: &mut Check, spec: Option<&FabricSpec>) -> LinkSettings {
    let mut link = LinkSettings::default();
    let Some(spec) = spec else {
        return link;
    };
    if let Some(e) = &spec.ethertype {
        match c.number("fabric.ethertype".into(), e) {
            Some(v) if (0x0600..=0xffff).contains(&v) => link.ethertype = v as u16,
            Some(v) => c.err(
                "fabric.ethertype",
                format!("expected an EtherType 0x0600..=0xffff (below is a length), found {v:#x}"),
            ),
            None => {}
        }
    }
    if let Some(mtu) = spec.mtu {
        if (64..=crate::frame::MAX_MTU).contains(&mtu) {
            link.mtu = mtu;
        } else {
            c.err(
                "fabric.mtu",
                format!("expected 64..=9000 (1500 by default, 9000 for jumbo frames), found {mtu}"),
            );
        }
    }
    if let Some(n) = spec.replay_slots {
        if (2..=MAX_REPLAY_SLOTS).contains(&n) {
            link.replay_slots = n;
        } else {
            c.err(
                "fabric.replay_slots",
                format!("expected 2..={MAX_REPLAY_SLOTS} (64 by default), found {n}"),
            );
        }
    }
    match spec.flush_deadline_ns {
        Some(ns) if ns > MAX_FLUSH_DEADLINE_NS => c.err(
            "fabric.flush_deadline_ns",
            format!("expected 0..={MAX_FLUSH_DEADLINE_NS} ns (1000 by default), found {ns}"),
        ),
        Some(ns) => link.flush_deadline_ns = ns,
        None => {}
    }
    match spec.replay_timeout_ns {
        Some(ns) if ns == 0 || ns > MAX_REPLAY_TIMEOUT_NS => c.err(
            "fabric.replay_timeout_ns",
            format!("expected 1..={MAX_REPLAY_TIMEOUT_NS} ns (200000 by default), found {ns}"),
        ),
        Some(ns) => link.replay_timeout_ns = ns,
        None => {}
    }
    match spec.down_after_ns {
        // Shorter than a few replays would take a busy link for a dead one.
        Some(ns) if ns != 0 && (ns < 4 * link.replay_timeout_ns || ns > MAX_DOWN_AFTER_NS) => c
            .err(
                "fabric.down_after_ns",
                format!(
                    "expected 0 (never) or {}..={MAX_DOWN_AFTER_NS} ns, four replay timeouts at least (1000000000 by default), found {ns}",
                    4 * link.replay_timeout_ns
                ),
            ),
        Some(ns) => link.down_after_ns = ns,
        None => {}
    }
    link
}

fn name_expected(name: &str) -> String {
    let shown: String = name.chars().take(64).collect();
    format!("expected 1 to 64 letters, digits, '-' or '_', found {shown:?}")
}

fn parse_u64(s: &str) -> Option<u64> {
    let t = s.replace('_', "");
    match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => t.parse().ok(),
    }
}

/// Collects errors while checking one file.
struct Check<'a> {
    file: &'a Path,
    errors: Vec<ConfigError>,
}

impl Check<'_> {
    fn err(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.errors.push(ConfigError {
            file: self.file.to_path_buf(),
            key: key.into(),
            message: message.into(),
        });
    }

    fn number(&mut self, key: String, s: &str) -> Option<u64> {
        let v = parse_u64(s);
        if v.is_none() {
            self.err(
                key,
                format!("expected a number (decimal or 0x hex), found {s:?}"),
            );
        }
        v
    }

    fn bdf(&mut self, key: String, s: &str) -> Option<Bdf> {
        match s.parse::<Bdf>() {
            Ok(b) => Some(b),
            Err(e) => {
                self.err(key, format!("{e}, found {s:?}"));
                None
            }
        }
    }

    fn port(
        &mut self,
        key: String,
        s: &str,
        nodes: &HashMap<&str, usize>,
        specs: &[NodeSpec],
    ) -> Option<PortRef> {
        let Some((name, port)) = s.rsplit_once(':') else {
            self.err(key, format!("expected \"node:port\", found {s:?}"));
            return None;
        };
        let Some(&node) = nodes.get(name) else {
            self.err(key, format!("no node named {name:?}"));
            return None;
        };
        let Ok(port) = port.parse::<u16>() else {
            self.err(
                key,
                format!("expected a port number after ':', found {port:?}"),
            );
            return None;
        };
        if port >= specs[node].ports {
            self.err(
                key,
                format!(
                    "node {name:?} has ports 0..{}, not {port}",
                    specs[node].ports
                ),
            );
            return None;
        }
        Some(PortRef { node, port })
    }
}

impl Topology {
    /// Reads and checks a topology file; every problem found is returned.
    pub fn load(path: &Path) -> Result<Topology, Vec<ConfigError>> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            vec![ConfigError {
                file: path.to_path_buf(),
                key: "(file)".into(),
                message: format!("cannot read: {e}"),
            }]
        })?;
        Topology::parse(path, &text)
    }

    /// Checks topology text; `file` names it in errors.
    pub fn parse(file: &Path, text: &str) -> Result<Topology, Vec<ConfigError>> {
        let spec: FileSpec = toml::from_str(text).map_err(|e| {
            let key = e
                .span()
                .map(|s| format!("(byte {})", s.start))
                .unwrap_or_else(|| "(toml)".into());
            vec![ConfigError {
                file: file.to_path_buf(),
                key,
                message: e.message().to_string(),
            }]
        })?;
        let mut c = Check {
            file,
            errors: Vec::new(),
        };

        let link = link_settings(&mut c, spec.fabric.as_ref());
        if spec.node.is_empty() {
            c.err(
                "node",
                "expected at least one [[node]] (a fabric with no switch node carries nothing)",
            );
        }
        if spec.node.len() > MAX_NODES {
            c.err(
                "node",
                format!(
                    "expected at most {MAX_NODES} nodes, found {}",
                    spec.node.len()
                ),
            );
            return Err(c.errors);
        }
        let mut node_index = HashMap::new();
        for (i, n) in spec.node.iter().enumerate() {
            if !valid_name(&n.name) {
                c.err(format!("node[{i}].name"), name_expected(&n.name));
            }
            if node_index.insert(n.name.as_str(), i).is_some() {
                c.err(
                    format!("node[{i}].name"),
                    format!("duplicate node name {:?}", n.name),
                );
            }
            if n.ports == 0 || n.ports > MAX_PORTS {
                c.err(
                    format!("node[{i}].ports"),
                    format!("expected 1..={MAX_PORTS} ports, found {}", n.ports),
                );
            }
        }
        let mut used: HashMap<PortRef, String> = HashMap::new();
        let mut claim = |c: &mut Check, key: String, p: PortRef| {
            if let Some(prev) = used.insert(p, key.clone()) {
                c.err(
                    key,
                    format!(
                        "port {}:{} is already used by {prev}",
                        spec.node[p.node].name, p.port
                    ),
                );
            }
        };
        let mut links = Vec::new();
        let mut link_integrity = Vec::new();
        for (i, l) in spec.link.iter().enumerate() {
            let a = c.port(format!("link[{i}].a"), &l.a, &node_index, &spec.node);
            let b = c.port(format!("link[{i}].b"), &l.b, &node_index, &spec.node);
            let integrity = match l.integrity.as_deref() {
                None => Integrity::Crc32c,
                Some(name) => Integrity::from_name(name).unwrap_or_else(|| {
                    c.err(
                        format!("link[{i}].integrity"),
                        format!(
                            "expected \"crc32c\" (the frame's CRC, the default) or \"fcs\" (the ports' Ethernet FCS), found {name:?}"
                        ),
                    );
                    Integrity::Crc32c
                }),
            };
            if let (Some(a), Some(b)) = (a, b) {
                if a.node == b.node {
                    c.err(format!("link[{i}]"), "a link must join two different nodes");
                }
                claim(&mut c, format!("link[{i}].a"), a);
                claim(&mut c, format!("link[{i}].b"), b);
                links.push((a, b));
                link_integrity.push(integrity);
            }
        }

        let mut names: HashMap<&str, String> = HashMap::new();
        // Hosts and endpoints with a bad key: reported once, and what names
        // them is not reported again as naming nothing.
        let mut broken: HashSet<&str> = HashSet::new();
        let mut hosts = Vec::new();
        for (i, h) in spec.host.iter().enumerate() {
            if !valid_name(&h.name) {
                c.err(format!("host[{i}].name"), name_expected(&h.name));
            }
            if let Some(prev) = names.insert(h.name.as_str(), format!("host[{i}]")) {
                c.err(
                    format!("host[{i}].name"),
                    format!("name {:?} is already used by {prev}", h.name),
                );
            }
            let attach = c.port(
                format!("host[{i}].attach"),
                &h.attach,
                &node_index,
                &spec.node,
            );
            if let Some(p) = attach {
                claim(&mut c, format!("host[{i}].attach"), p);
            }
            let buses = h.buses.split_once('-').and_then(|(a, b)| {
                Some((
                    u8::from_str_radix(a.trim(), 16).ok()?,
                    u8::from_str_radix(b.trim(), 16).ok()?,
                ))
            });
            let buses = match buses {
                Some((a, b)) if a <= b => Some((a, b)),
                _ => {
                    c.err(
                        format!("host[{i}].buses"),
                        format!(
                            "expected \"first-last\" in hex, first <= last, found {:?}",
                            h.buses
                        ),
                    );
                    None
                }
            };
            let mut requesters: Vec<Bdf> = Vec::new();
            if h.requesters.len() > MAX_REQUESTERS {
                c.err(
                    format!("host[{i}].requesters"),
                    format!(
                        "expected at most {MAX_REQUESTERS} requester IDs (they share one fabric \
                         bus), found {}",
                        h.requesters.len()
                    ),
                );
            }
            for (j, r) in h.requesters.iter().enumerate().take(MAX_REQUESTERS) {
                if let Some(id) = c.bdf(format!("host[{i}].requesters[{j}]"), r) {
                    if let Some(k) = requesters.iter().position(|o| *o == id) {
                        c.err(
                            format!("host[{i}].requesters[{j}]"),
                            format!("{id} is already host[{i}].requesters[{k}]"),
                        );
                    }
                    if let Some((a, b)) = buses {
                        if !(a..=b).contains(&id.bus()) {
                            c.err(
                                format!("host[{i}].requesters[{j}]"),
                                format!("{id} is outside the host's buses {a:02x}-{b:02x}"),
                            );
                        }
                    }
                    requesters.push(id);
                }
            }
            if h.requesters.is_empty() {
                c.err(
                    format!("host[{i}].requesters"),
                    "expected at least one requester ID",
                );
            }
            let mut dma: Vec<Window> = Vec::new();
            if h.dma.len() > MAX_DMA_WINDOWS {
                c.err(
                    format!("host[{i}].dma"),
                    format!(
                        "expected at most {MAX_DMA_WINDOWS} windows, found {}",
                        h.dma.len()
                    ),
                );
            }
            for (j, w) in h.dma.iter().enumerate().take(MAX_DMA_WINDOWS) {
                let base = c.number(format!("host[{i}].dma[{j}].base"), &w.base);
                let size = c.number(format!("host[{i}].dma[{j}].size"), &w.size);
                if let (Some(base), Some(size)) = (base, size) {
                    let win = Window { base, size };
                    if base.checked_add(size).is_none() {
                        c.err(
                            format!("host[{i}].dma[{j}]"),
                            format!(
                                "{base:#x}+{size:#x} runs past the end of the 64-bit address \
                                 space: expected base + size <= 2^64"
                            ),
                        );
                        continue;
                    }
                    if size == 0 {
                        c.err(
                            format!("host[{i}].dma[{j}].size"),
                            "expected a size above 0",
                        );
                    } else if let Some(k) = dma.iter().position(|d| d.overlaps(&win)) {
                        c.err(
                            format!("host[{i}].dma[{j}]"),
                            format!("overlaps host[{i}].dma[{k}]"),
                        );
                    }
                    if win.base < FOUR_GIB && win.end() > FOUR_GIB {
                        c.err(
                            format!("host[{i}].dma[{j}]"),
                            "expected a window below 4 GiB or above it, not across: \
                             translation keeps a request's header size",
                        );
                    }
                    dma.push(win);
                }
            }
            if let (Some(attach), Some(buses)) = (attach, buses) {
                hosts.push(Host {
                    name: h.name.clone(),
                    attach,
                    buses,
                    requesters,
                    dma,
                    fabric_bus: 0,
                    fabric_dma: Vec::new(),
                });
            } else {
                broken.insert(h.name.as_str());
            }
        }

        let mut endpoints = Vec::new();
        let mut fabric_ids: HashMap<Bdf, String> = HashMap::new();
        for (i, e) in spec.endpoint.iter().enumerate() {
            if !valid_name(&e.name) {
                c.err(format!("endpoint[{i}].name"), name_expected(&e.name));
            }
            if let Some(prev) = names.insert(e.name.as_str(), format!("endpoint[{i}]")) {
                c.err(
                    format!("endpoint[{i}].name"),
                    format!("name {:?} is already used by {prev}", e.name),
                );
            }
            let attach = c.port(
                format!("endpoint[{i}].attach"),
                &e.attach,
                &node_index,
                &spec.node,
            );
            if let Some(p) = attach {
                claim(&mut c, format!("endpoint[{i}].attach"), p);
            }
            let mut id = c.bdf(format!("endpoint[{i}].id"), &e.id);
            if let Some(pf) = id.filter(|pf| pf.0 as usize + e.vfs as usize > 0xffff) {
                c.err(
                    format!("endpoint[{i}].id"),
                    format!(
                        "{pf} with {} virtual functions runs past ff:1f.7, the last ID",
                        e.vfs
                    ),
                );
                id = None;
            }
            let mut bar_size = c.number(format!("endpoint[{i}].bar_size"), &e.bar_size);
            if let Some(size) = bar_size {
                if !(4096..=MAX_BAR_SIZE).contains(&size) || !size.is_power_of_two() {
                    c.err(
                        format!("endpoint[{i}].bar_size"),
                        format!(
                            "expected a power of two from 0x1000 to {MAX_BAR_SIZE:#x}, found {size:#x}"
                        ),
                    );
                    bar_size = None;
                }
            }
            if let Some(name) = e.template.as_deref().filter(|n| !valid_name(n)) {
                c.err(
                    format!("endpoint[{i}].template"),
                    format!(
                        "expected a template name (templates/NAME.toml beside the topology): {}",
                        name_expected(name).trim_start_matches("expected ")
                    ),
                );
            }
            if let Some(id) = id {
                for f in 0..=e.vfs as u16 {
                    let fid = Bdf(id.0.wrapping_add(f));
                    if let Some(prev) = fabric_ids.insert(fid, format!("endpoint[{i}]")) {
                        c.err(
                            format!("endpoint[{i}].id"),
                            format!("function ID {fid} is already used by {prev}"),
                        );
                    }
                }
            }
            if let (Some(attach), Some(id), Some(bar_size)) = (attach, id, bar_size) {
                endpoints.push(Endpoint {
                    name: e.name.clone(),
                    attach,
                    id,
                    vfs: e.vfs,
                    bar_size,
                    template: e.template.clone(),
                    fabric_bar: 0,
                });
            } else {
                broken.insert(e.name.as_str());
            }
        }

        let host_index: HashMap<&str, usize> = hosts
            .iter()
            .enumerate()
            .map(|(i, h)| (h.name.as_str(), i))
            .collect();
        let endpoint_index: HashMap<&str, usize> = endpoints
            .iter()
            .enumerate()
            .map(|(i, e)| (e.name.as_str(), i))
            .collect();
        let mut bindings: Vec<Binding> = Vec::new();
        let mut bound: HashMap<(usize, u8), usize> = HashMap::new();
        for (i, b) in spec.binding.iter().enumerate() {
            let key = |k: &str| format!("binding[{i}].{k}");
            let named = |dev: &str| broken.contains(dev);
            if b.function
                .rsplit_once('.')
                .is_some_and(|(dev, _)| named(dev))
                || named(&b.host)
            {
                // Its endpoint or host has a problem reported already.
                continue;
            }
            let function = b.function.rsplit_once('.').and_then(|(dev, f)| {
                let e = *endpoint_index.get(dev)?;
                let n = if f == "pf" {
                    0
                } else {
                    f.strip_prefix("vf")?
                        .parse::<u8>()
                        .ok()
                        .filter(|n| *n >= 1)?
                };
                Some((e, n))
            });
            let function = match function {
                Some((e, n)) if n <= endpoints[e].vfs => Some((e, n)),
                Some((e, n)) => {
                    c.err(
                        key("function"),
                        format!(
                            "{} has {} virtual functions, not vf{n}",
                            endpoints[e].name, endpoints[e].vfs
                        ),
                    );
                    None
                }
                None => {
                    c.err(key("function"), format!("expected \"endpoint.pf\" or \"endpoint.vfN\" naming a declared endpoint, found {:?}", b.function));
                    None
                }
            };
            let host = host_index.get(b.host.as_str()).copied();
            if host.is_none() {
                c.err(key("host"), format!("no host named {:?}", b.host));
            }
            let host_id = c.bdf(key("id"), &b.id);
            let bar = c.number(key("bar"), &b.bar);
            let id_mode = match b.id_mode.as_deref() {
                None | Some("different") => IdMode::Different,
                Some("common") => IdMode::Common,
                Some(other) => {
                    c.err(
                        key("id_mode"),
                        format!("expected \"different\" or \"common\", found {other:?}"),
                    );
                    IdMode::Different
                }
            };
            let completion = match b.completion.as_deref() {
                None | Some("message") => Completion::Message,
                Some(other) => match other.strip_prefix("msix:").map(str::parse::<u16>) {
                    Some(Ok(n)) if (1..=MAX_COMPLETION_VECTOR).contains(&n) => Completion::Msix(n),
                    _ => {
                        c.err(
                            key("completion"),
                            format!(
                                "expected \"message\" or \"msix:N\" with N from 1 to {MAX_COMPLETION_VECTOR} \
                                 (vector 0 carries the function's own interrupts), found {other:?}"
                            ),
                        );
                        Completion::Message
                    }
                },
            };
            let (Some((e, n)), Some(h), Some(host_id), Some(bar)) = (function, host, host_id, bar)
            else {
                continue;
            };
            if let Some(prev) = bound.insert((e, n), i) {
                c.err(
                    key("function"),
                    format!("{} is already bound by binding[{prev}]", b.function),
                );
            }
            let (lo, hi) = hosts[h].buses;
            if !(lo..=hi).contains(&host_id.bus()) {
                c.err(
                    key("id"),
                    format!(
                        "{host_id} is outside {}'s buses {lo:02x}-{hi:02x}",
                        hosts[h].name
                    ),
                );
            }
            if hosts[h].requesters.contains(&host_id) {
                c.err(
                    key("id"),
                    format!("{host_id} is one of {}'s requester IDs", hosts[h].name),
                );
            }
            let window = Window {
                base: bar,
                size: endpoints[e].bar_size,
            };
            if bar % endpoints[e].bar_size != 0 {
                c.err(
                    key("bar"),
                    format!(
                        "{bar:#x} is not aligned to the BAR size {:#x}",
                        endpoints[e].bar_size
                    ),
                );
            }
            for (j, other) in bindings.iter().enumerate() {
                if other.host == h && other.host_id == host_id {
                    c.err(
                        key("id"),
                        format!(
                            "{host_id} is already used in {} by binding {j}",
                            hosts[h].name
                        ),
                    );
                }
                if other.host == h && other.bar.overlaps(&window) {
                    c.err(
                        key("bar"),
                        format!("BAR window overlaps another binding's in {}", hosts[h].name),
                    );
                }
            }
            if hosts[h].dma.iter().any(|d| d.overlaps(&window)) {
                c.err(
                    key("bar"),
                    format!("BAR window overlaps a DMA window of {}", hosts[h].name),
                );
            }
            if window.end() > FOUR_GIB {
                c.err(
                    key("bar"),
                    "expected a 32-bit BAR window (ending at or below 4 GiB): the fabric's \
                     BARs are 32-bit, and translation keeps a request's header size",
                );
            }
            bindings.push(Binding {
                endpoint: e,
                function: n,
                host: h,
                host_id,
                bar: window,
                id_mode,
                common_bus: None,
                completion,
            });
        }

        let mut topology = Topology {
            link,
            nodes: spec
                .node
                .iter()
                .map(|n| Node {
                    name: n.name.clone(),
                    ports: n.ports,
                })
                .collect(),
            links,
            link_integrity,
            hosts,
            endpoints,
            bindings,
        };
        plan_fabric_space(&mut topology, &mut c);
        // One labelling of the connected parts, not a search per binding:
        // checking stays linear in the size of the fabric.
        let part = topology.components();
        for (i, b) in topology.bindings.iter().enumerate() {
            let from = topology.hosts[b.host].attach.node;
            let to = topology.endpoints[b.endpoint].attach.node;
            if part[from] != part[to] {
                c.errors.push(ConfigError {
                    file: file.to_path_buf(),
                    key: format!("binding[{i}]"),
                    message: format!(
                        "node {:?} (of {}) is unreachable from node {:?} (of {})",
                        topology.nodes[to].name,
                        topology.endpoints[b.endpoint].name,
                        topology.nodes[from].name,
                        topology.hosts[b.host].name
                    ),
                });
            }
        }
        if c.errors.is_empty() {
            Ok(topology)
        } else {
            Err(c.errors)
        }
    }

    /// Per node, its links in the order declared: (its port, the peer node,
    /// the peer's port).
    fn adjacency(&self) -> Vec<Vec<(u16, usize, u16)>> {
        let mut adjacency = vec![Vec::new(); self.nodes.len()];
        for (a, b) in &self.links {
            if a.node < adjacency.len() && b.node < adjacency.len() {
                adjacency[a.node].push((a.port, b.node, b.port));
                adjacency[b.node].push((b.port, a.node, a.port));
            }
        }
        adjacency
    }

    /// Per node, the number of the connected part it is in (linear time).
    pub fn components(&self) -> Vec<usize> {
        let adjacency = self.adjacency();
        let mut part = vec![usize::MAX; self.nodes.len()];
        let mut queue = VecDeque::new();
        for start in 0..self.nodes.len() {
            if part[start] != usize::MAX {
                continue;
            }
            part[start] = start;
            queue.push_back(start);
            while let Some(n) = queue.pop_front() {
                for &(_, next, _) in &adjacency[n] {
                    if part[next] == usize::MAX {
                        part[next] = start;
                        queue.push_back(next);
                    }
                }
            }
        }
        part
    }

    /// For every node, the port on `from` that starts a shortest path to it
    /// (`None` where unreachable; the node itself maps to `Some(u16::MAX)`).
    pub fn hops(&self, from: usize) -> Vec<Option<u16>> {
        let adjacency = self.adjacency();
        let mut first = vec![None; self.nodes.len()];
        if from >= self.nodes.len() {
            return first;
        }
        first[from] = Some(u16::MAX);
        let mut queue = VecDeque::from([from]);
        while let Some(n) = queue.pop_front() {
            for &(port, next, _) in &adjacency[n] {
                if first[next].is_none() {
                    first[next] = if n == from { Some(port) } else { first[n] };
                    queue.push_back(next);
                }
            }
        }
        first
    }

    /// Shortest paths toward every node a host or endpoint attaches to, from
    /// every node: one breadth-first search per such node, so building every
    /// node's tables is linear in the number of nodes for a given number of
    /// attachment points (a search from every node was quadratic).
    pub fn paths(&self) -> Paths {
        let adjacency = self.adjacency();
        let mut toward = HashMap::new();
        let targets = self.hosts.iter().map(|h| h.attach.node);
        for target in targets.chain(self.endpoints.iter().map(|e| e.attach.node)) {
            if target >= self.nodes.len() || toward.contains_key(&target) {
                continue;
            }
            // Searching outward from the target, each node reached first
            // through a link leaves by that link's port on its side.
            let mut next: Vec<Option<u16>> = vec![None; self.nodes.len()];
            next[target] = Some(u16::MAX);
            let mut queue = VecDeque::from([target]);
            while let Some(n) = queue.pop_front() {
                for &(_, peer, peer_port) in &adjacency[n] {
                    if next[peer].is_none() {
                        next[peer] = Some(peer_port);
                        queue.push_back(peer);
                    }
                }
            }
            toward.insert(target, next);
        }
        let links = adjacency
            .iter()
            .map(|l| l.iter().map(|&(port, peer, _)| (port, peer)).collect())
            .collect();
        Paths { toward, links }
    }

    /// The configuration of one end of link `index`: the `a` end, or the
    /// `b` end. Ticks are nanoseconds; MAC addresses are locally administered
    /// and name the node and port (02:00:00:00:node:port).
    pub fn link_config(&self, index: usize, a_end: bool) -> Option<crate::link::LinkConfig> {
        let (a, b) = *self.links.get(index)?;
        let (local, remote) = if a_end { (a, b) } else { (b, a) };
        let mac = |p: PortRef| [0x02, 0, 0, 0, p.node as u8, p.port as u8];
        Some(crate::link::LinkConfig {
            mtu: self.link.mtu,
            replay_slots: self.link.replay_slots,
            flush_deadline: self.link.flush_deadline_ns,
            replay_timeout: self.link.replay_timeout_ns,
            ethertype: self.link.ethertype,
            local_node: local.node as u16,
            remote_node: remote.node as u16,
            local_mac: mac(local),
            remote_mac: mac(remote),
            down_after: self.link.down_after_ns,
            integrity: self.link_integrity.get(index).copied().unwrap_or_default(),
            ..crate::link::LinkConfig::default()
        })
    }

    /// Functions declared (physical and virtual).
    pub fn function_count(&self) -> usize {
        self.endpoints.iter().map(|e| 1 + e.vfs as usize).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[[node]]
name = "sw0"
ports = 4
[[node]]
name = "sw1"
ports = 4

[[link]]
a = "sw0:0"
b = "sw1:0"

[[host]]
name = "host-a"
attach = "sw0:1"
buses = "00-0f"
requesters = ["00:00.0"]
dma = [{ base = "0x100000000", size = "0x40000000" }]

[[host]]
name = "host-b"
attach = "sw0:2"
buses = "00-0f"
requesters = ["00:00.0"]

[[endpoint]]
name = "nic0"
attach = "sw1:1"
id = "40:00.0"
vfs = 3
bar_size = "0x10000"

[[binding]]
function = "nic0.vf1"
host = "host-a"
id = "01:00.0"
bar = "0xfe000000"

[[binding]]
function = "nic0.vf2"
host = "host-b"
id = "01:00.0"
bar = "0xfe000000"
"#;

    fn errors(text: &str) -> Vec<String> {
        match Topology::parse(Path::new("t.toml"), text) {
            Ok(_) => Vec::new(),
            Err(e) => e.iter().map(|e| e.to_string()).collect(),
        }
    }

    /// `errors` of GOOD with `from` replaced by `to`: exactly one error,
    /// which contains `expected`.
    fn one_error(from: &str, to: &str, expected: &str) {
        assert!(GOOD.contains(from), "{from}");
        let e = errors(&GOOD.replacen(from, to, 1));
        assert_eq!(e.len(), 1, "{from} -> {to}: {e:?}");
        assert!(e[0].contains(expected), "{from} -> {to}: {e:?}");
    }

    #[test]
    fn each_link_says_how_its_frames_are_checked() {
        let t = Topology::parse(Path::new("t.toml"), GOOD).unwrap();
        assert_eq!(t.link_integrity, [Integrity::Crc32c]);
        assert_eq!(t.link_config(0, true).unwrap().integrity, Integrity::Crc32c);
        let text = GOOD.replacen("b = \"sw1:0\"", "b = \"sw1:0\"\nintegrity = \"fcs\"", 1);
        let t = Topology::parse(Path::new("t.toml"), &text).unwrap();
        assert_eq!(t.link_config(0, false).unwrap().integrity, Integrity::Fcs);
        one_error(
            "b = \"sw1:0\"",
            "b = \"sw1:0\"\nintegrity = \"crc\"",
            "t.toml: link[0].integrity: expected \"crc32c\" (the frame's CRC, the default) or \"fcs\"",
        );
    }

    #[test]
    fn sizes_past_their_bounds_are_refused_not_built() {
        // A BAR size of 0 divided the binding's BAR by it.
        one_error(
            "bar_size = \"0x10000\"",
            "bar_size = \"0\"",
            "t.toml: endpoint[0].bar_size: expected a power of two from 0x1000 to 0x40000000, found 0x0",
        );
        one_error(
            "bar_size = \"0x10000\"",
            "bar_size = \"0x100000000\"",
            "endpoint[0].bar_size",
        );
        for (key, value, expected) in [
            (
                "replay_slots",
                "1000000000000",
                "fabric.replay_slots: expected 2..=4096",
            ),
            (
                "flush_deadline_ns",
                "100000000000",
                "fabric.flush_deadline_ns: expected 0..=",
            ),
            (
                "replay_timeout_ns",
                "0",
                "fabric.replay_timeout_ns: expected 1..=",
            ),
            (
                "down_after_ns",
                "1000",
                "fabric.down_after_ns: expected 0 (never) or 800000..=",
            ),
        ] {
            let text = format!("[fabric]\n{key} = {value}\n{GOOD}");
            let e = errors(&text);
            assert!(e.len() == 1 && e[0].contains(expected), "{key}: {e:?}");
        }
        one_error(
            "ports = 4\n[[node]]",
            "ports = 300\n[[node]]",
            "node[0].ports: expected 1..=256 ports, found 300",
        );
    }

    #[test]
    fn requesters_past_one_bus_or_twice_are_refused() {
        let many: Vec<String> = (0..257)
            .map(|i| format!("\"00:{:02x}.{}\"", i / 8 % 32, i % 8))
            .collect();
        // 257 requester IDs: the 257th would have taken over the first's
        // fabric ID (only the low 8 bits were kept).
        let text = GOOD.replacen(
            "requesters = [\"00:00.0\"]",
            &format!("requesters = [{}]", many.join(",")),
            1,
        );
        let e = errors(&text);
        assert!(
            e.iter()
                .any(|e| e.contains("host[0].requesters: expected at most 256 requester IDs")),
            "{e:?}"
        );
        one_error(
            "requesters = [\"00:00.0\"]",
            "requesters = [\"00:00.0\", \"00:01.0\", \"00:00.0\"]",
            "host[0].requesters[2]: 00:00.0 is already host[0].requesters[0]",
        );
    }

    #[test]
    fn ids_and_windows_past_the_end_are_refused() {
        // VFs of ff:1f.7 wrapped to 00:00.0.
        one_error(
            "id = \"40:00.0\"",
            "id = \"ff:1f.7\"",
            "endpoint[0].id: ff:1f.7 with 3 virtual functions runs past ff:1f.7",
        );
        one_error(
            "dma = [{ base = \"0x100000000\", size = \"0x40000000\" }]",
            "dma = [{ base = \"0xffffffffffff0000\", size = \"0x20000\" }]",
            "host[0].dma[0]: 0xffffffffffff0000+0x20000 runs past the end of the 64-bit address space",
        );
    }

    #[test]
    fn an_empty_file_is_refused() {
        let e = errors("");
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].starts_with("t.toml: node: expected at least one [[node]]"),
            "{e:?}"
        );
    }

    #[test]
    fn one_bad_key_is_reported_once_not_again_by_what_refers_to_it() {
        // A bad bus range, then nothing about the binding that names the host.
        one_error("buses = \"00-0f\"", "buses = \"0f-00\"", "host[0].buses");
        one_error(
            "bar_size = \"0x10000\"",
            "bar_size = \"12\"",
            "endpoint[0].bar_size",
        );
        one_error(
            "attach = \"sw1:1\"",
            "attach = \"sw1:9\"",
            "endpoint[0].attach",
        );
        // A node name that no reference could name is refused by itself;
        // the references to it find it.
        let text = GOOD.replace("\"sw0", "\"sw:0");
        let e = errors(&text);
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].contains(
                "node[0].name: expected 1 to 64 letters, digits, '-' or '_', found \"sw:0\""
            ),
            "{e:?}"
        );
        let e = errors(&GOOD.replace("nic0", "nic.0"));
        assert!(e.len() == 1 && e[0].contains("endpoint[0].name"), "{e:?}");
        one_error(
            "vfs = 3",
            "vfs = 3\ntemplate = \"../../etc/passwd\"",
            "endpoint[0].template: expected a template name",
        );
    }

    #[test]
    fn a_good_topology_loads() {
        let t = Topology::parse(Path::new("t.toml"), GOOD).unwrap();
        assert_eq!(
            (
                t.nodes.len(),
                t.links.len(),
                t.hosts.len(),
                t.function_count(),
                t.bindings.len()
            ),
            (2, 1, 2, 4, 2)
        );
        assert_eq!(t.hops(0), vec![Some(u16::MAX), Some(0)]);
        // The fabric's own space: requester buses from ff down, BARs from
        // 2 GiB, 64-bit DMA windows from 1 TiB.
        assert_eq!((t.hosts[0].fabric_bus, t.hosts[1].fabric_bus), (0xff, 0xfe));
        assert_eq!(t.endpoints[0].fabric_bar, 0x8000_0000);
        assert_eq!(t.hosts[0].fabric_dma, vec![1 << 40]);
        assert_eq!(t.bindings[0].id_mode, IdMode::Different);
    }

    #[test]
    fn link_settings_come_from_the_fabric_table() {
        let t = Topology::parse(Path::new("t.toml"), GOOD).unwrap();
        assert_eq!(t.link, LinkSettings::default());
        let custom = format!(
            "[fabric]\nethertype = \"0x88b6\"\nmtu = 9000\nflush_deadline_ns = 500\n{GOOD}"
        );
        let t = Topology::parse(Path::new("t.toml"), &custom).unwrap();
        let (a, b) = (
            t.link_config(0, true).unwrap(),
            t.link_config(0, false).unwrap(),
        );
        assert_eq!((a.ethertype, a.mtu, a.flush_deadline), (0x88b6, 9000, 500));
        assert_eq!((a.local_node, a.remote_node), (b.remote_node, b.local_node));
        assert_eq!(a.remote_mac, b.local_mac);
        assert!(t.link_config(1, true).is_none());
        let bad =
            format!("[fabric]\nethertype = \"0x0800x\"\nmtu = 10000\nreplay_slots = 1\n{GOOD}");
        let e = errors(&bad);
        assert!(
            e.iter()
                .any(|e| e.starts_with("t.toml: fabric.ethertype: expected a number")),
            "{e:?}"
        );
        assert!(e.iter().any(|e| e == "t.toml: fabric.mtu: expected 64..=9000 (1500 by default, 9000 for jumbo frames), found 10000"), "{e:?}");
        assert!(
            e.iter()
                .any(|e| e
                    == "t.toml: fabric.replay_slots: expected 2..=4096 (64 by default), found 1"),
            "{e:?}"
        );
        let length = format!("[fabric]\nethertype = \"0x05dc\"\n{GOOD}");
        assert!(errors(&length)
            .iter()
            .any(|e| e.contains("fabric.ethertype: expected an EtherType")));
    }

    #[test]
    fn translation_limits_are_checked() {
        let high_bar = GOOD.replace("bar = \"0xfe000000\"", "bar = \"0x1fe000000\"");
        assert!(errors(&high_bar)
            .iter()
            .any(|e| e.starts_with("t.toml: binding[0].bar: expected a 32-bit BAR window")));
        let across = GOOD.replace(
            "base = \"0x100000000\", size = \"0x40000000\"",
            "base = \"0xc0000000\", size = \"0x80000000\"",
        );
        assert!(errors(&across)
            .iter()
            .any(|e| e
                .starts_with("t.toml: host[0].dma[0]: expected a window below 4 GiB or above it")));
        let mode = GOOD.replace(
            "bar = \"0xfe000000\"",
            "bar = \"0xfe000000\"\nid_mode = \"same\"",
        );
        assert!(errors(&mode).iter().any(|e| e
            == "t.toml: binding[0].id_mode: expected \"different\" or \"common\", found \"same\""));
        for bad in ["msix", "msix:0", "msix:256", "msi:1", "interrupt"] {
            let text = GOOD.replace(
                "bar = \"0xfe000000\"",
                &format!("bar = \"0xfe000000\"\ncompletion = \"{bad}\""),
            );
            assert!(
                errors(&text).iter().any(|e| e.starts_with(
                    "t.toml: binding[0].completion: expected \"message\" or \"msix:N\" with N from 1 to 255"
                ) && e.ends_with(&format!("found {bad:?}"))),
                "{bad}: {:?}",
                errors(&text)
            );
        }
        let msix = GOOD.replace(
            "bar = \"0xfe000000\"",
            "bar = \"0xfe000000\"\ncompletion = \"msix:3\"",
        );
        let t = Topology::parse(Path::new("t.toml"), &msix).unwrap();
        assert_eq!(t.bindings[0].completion, Completion::Msix(3));
        assert_eq!(
            Topology::parse(Path::new("t.toml"), GOOD).unwrap().bindings[0].completion,
            Completion::Message
        );
        // Endpoint IDs on bus ff push the hosts' requester buses down.
        let high_ids = GOOD.replace("id = \"40:00.0\"", "id = \"ff:00.0\"");
        let t = Topology::parse(Path::new("t.toml"), &high_ids).unwrap();
        assert_eq!((t.hosts[0].fabric_bus, t.hosts[1].fabric_bus), (0xfe, 0xfd));
    }

    #[test]
    fn every_error_names_file_key_and_expectation() {
        let bad = GOOD
            .replace("a = \"sw0:0\"", "a = \"sw9:0\"")
            .replace("function = \"nic0.vf2\"", "function = \"nic0.vf7\"")
            .replace(
                "buses = \"00-0f\"\nrequesters = [\"00:00.0\"]\ndma",
                "buses = \"00-0f\"\nrequesters = [\"20:00.0\"]\ndma",
            );
        let e = errors(&bad);
        assert!(
            e.iter()
                .any(|e| e == "t.toml: link[0].a: no node named \"sw9\""),
            "{e:?}"
        );
        assert!(
            e.iter()
                .any(|e| e.contains("binding[1].function: nic0 has 3 virtual functions, not vf7")),
            "{e:?}"
        );
        assert!(
            e.iter()
                .any(|e| e
                    .contains("host[0].requesters[0]: 20:00.0 is outside the host's buses 00-0f")),
            "{e:?}"
        );
    }

    #[test]
    fn overlaps_duplicates_and_reachability() {
        let dup_port = GOOD.replace("attach = \"sw0:2\"", "attach = \"sw0:1\"");
        assert!(errors(&dup_port)
            .iter()
            .any(|e| e.contains("host[1].attach: port sw0:1 is already used by host[0].attach")));
        let same_fn = GOOD.replace("function = \"nic0.vf2\"", "function = \"nic0.vf1\"");
        assert!(errors(&same_fn)
            .iter()
            .any(|e| e.contains("nic0.vf1 is already bound by binding[0]")));
        let dma_overlap = GOOD.replace(
            "bar = \"0xfe000000\"\n\n[[binding]]",
            "bar = \"0x100000000\"\n\n[[binding]]",
        );
        assert!(
            errors(&dma_overlap)
                .iter()
                .any(|e| e.contains("overlaps a DMA window of host-a")),
            "{:?}",
            errors(&dma_overlap)
        );
        let unlinked = GOOD.replace("[[link]]\na = \"sw0:0\"\nb = \"sw1:0\"\n", "");
        let e = errors(&unlinked);
        assert_eq!(
            e.iter()
                .filter(|e| e.contains("is unreachable from node"))
                .count(),
            2,
            "{e:?}"
        );
        let misaligned = GOOD.replace(
            "bar = \"0xfe000000\"\n\n[[binding]]",
            "bar = \"0xfe001000\"\n\n[[binding]]",
        );
        assert!(errors(&misaligned)
            .iter()
            .any(|e| e.contains("not aligned to the BAR size")));
    }

    #[test]
    fn syntax_and_unknown_keys_are_reported() {
        assert!(!errors("[[node]\nname=").is_empty());
        let e = errors("[[node]]\nname = \"a\"\nports = 1\ncolour = \"red\"\n");
        assert!(
            e[0].starts_with("t.toml: ") && e[0].contains("colour"),
            "{e:?}"
        );
    }
}
