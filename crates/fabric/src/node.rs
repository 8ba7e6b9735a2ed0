//! A switch node's forwarding: its tables, built from the topology, and
//! [`NodeTables::forward`], the per-TLP decision.
//!
//! Inside the fabric every TLP carries fabric addresses and fabric IDs (laid
//! out by the topology: a requester bus per host and per common-mode
//! binding, the functions' BARs, the hosts' DMA windows), all distinct, so a
//! node routes with one address table and one ID table whatever port a TLP
//! came in on. Domains differ only where hosts attach:
//!
//! - **Ingress from a host** (its domain → the fabric): source validation
//!   (the requester must be in the host's buses, and one of its declared
//!   requesters), then access control and translation: a memory request must
//!   hit the BAR of a function bound to this host (address moved to the
//!   function's fabric BAR, requester ID to the host's — or in common mode the
//!   binding's — fabric requester ID, as a non-transparent bridge's lookup
//!   table does); a configuration request or ID-routed message must target a
//!   bound function's host-visible ID; a completion must return to one.
//! - **Ingress from an endpoint**: the requester must be one of the device's
//!   functions; a memory request (DMA, MSI) must come from a bound function
//!   and hit a DMA window of the host it is bound to (address moved to the
//!   window's fabric address); messages to the root go to that host.
//! - **Egress to a host** (the fabric → its domain): addresses and IDs are
//!   translated back.
//!
//! What access control refuses gets what PCIe gives (§2.3.1, §2.3.2): a
//! non-posted request gets an Unsupported Request completion, written by the
//! node and sent back out the port it came in on; a posted request or a
//! completion is dropped. A TLP that fails source validation is dropped
//! whatever its class. Every refusal is counted per ingress port, and
//! logged, rate-limited, in [`NodeState::log`].

use crate::routing::{AddressTable, IdTable};
use crate::topology::{IdMode, Topology, Window};
use tlp::build::{completion, read_byte_count, read_lower_address, CplFields};
use tlp::{Bdf, Class, CplStatus, FlowClass, Kind, Profile, Routing, Tlp, Validator};

/// What a port of a node leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortKind {
    /// Nothing attached.
    Unused,
    /// A link to another node.
    Link {
        /// The node at the other end.
        peer: usize,
    },
    /// A host (index into [`Topology::hosts`]).
    Host(usize),
    /// An endpoint device (index into [`Topology::endpoints`]).
    Endpoint(usize),
}

/// An ingress port as a node's tables see it, looked up once for all the
/// TLPs of a frame ([`NodeTables::ingress`]) rather than again for each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ingress {
    port: u16,
    kind: PortKind,
    /// Index into the hosts or endpoints attached here, by `kind`.
    edge: u16,
}

impl Ingress {
    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }
}

/// A fabric-space route: the egress port and, for a DMA window of a host
/// attached here, how to move the address back into the host's domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    /// Egress port.
    pub egress: u16,
    /// Added (wrapping) to the address when leaving toward a host.
    pub to_domain: u64,
}

/// A binding as the host edge sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct EdgeBinding {
    function: Bdf,
    /// Added (wrapping) to a host BAR address to reach the fabric BAR.
    bar_offset: u64,
    requester_bus: u8,
}

/// The tables of a port where a host attaches.
#[derive(Debug, Clone)]
struct HostEdge {
    buses: (u8, u8),
    fabric_bus: u8,
    /// Declared requester ID → its index.
    requester_index: IdTable,
    /// Host BAR windows → binding slot.
    bars: AddressTable<u16>,
    /// Host-visible function ID → binding slot.
    targets: IdTable,
    bindings: Box<[EdgeBinding]>,
    /// Fabric ID → domain ID, for TLPs leaving toward the host.
    to_domain: IdTable,
}

/// The tables of a port where an endpoint device attaches.
#[derive(Debug, Clone)]
struct EndpointEdge {
    first: Bdf,
    functions: u16,
    /// Per function: the DMA windows of the host it is bound to, each with
    /// the offset to the window's fabric address (unbound: empty).
    dma: Box<[AddressTable<u64>]>,
}

/// Why a TLP was not forwarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Refusal {
    /// It failed the structural or switch checks (§2.3.1 malformed TLP).
    Malformed,
    /// From a host, with a requester outside the host's buses; from an
    /// endpoint, with a requester that is not one of its functions.
    Spoofed,
    /// From a host, with a requester in its buses but not declared.
    UnknownRequester,
    /// To something the sender may not reach: a function not bound to it,
    /// memory outside its windows, an unbound function's DMA.
    AccessDenied,
    /// No route for its address or ID.
    NoRoute,
    /// Leaving toward a host, an ID with no translation into its domain.
    NoTranslation,
    /// A routing that makes no sense from where it came (a broadcast from an
    /// endpoint, a message to the root from a host).
    Direction,
}

impl Refusal {
    /// Every refusal, in counter order.
    pub const ALL: [Refusal; 7] = [
        Refusal::Malformed,
        Refusal::Spoofed,
        Refusal::UnknownRequester,
        Refusal::AccessDenied,
        Refusal::NoRoute,
        Refusal::NoTranslation,
        Refusal::Direction,
    ];

    /// `malformed`, `spoofed`, `unknown_requester`, `access_denied`,
    /// `no_route`, `no_translation` or `direction`.
    pub const fn name(self) -> &'static str {
        match self {
            Refusal::Malformed => "malformed",
            Refusal::Spoofed => "spoofed",
            Refusal::UnknownRequester => "unknown_requester",
            Refusal::AccessDenied => "access_denied",
            Refusal::NoRoute => "no_route",
            Refusal::NoTranslation => "no_translation",
            Refusal::Direction => "direction",
        }
    }

    const fn index(self) -> usize {
        self as usize
    }
}

/// What to do with a TLP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action<'t> {
    /// Send it out this port (translated in place where needed).
    Forward(u16),
    /// Send a copy out each of these ports.
    Broadcast(&'t [u16]),
    /// It terminates here (a local message).
    Local,
    /// Refused; a completion of `len` bytes, written to the reply buffer,
    /// goes back out the ingress port.
    Reply {
        /// Why.
        refusal: Refusal,
        /// Length of the completion.
        len: usize,
    },
    /// Refused and dropped.
    Drop(Refusal),
}

/// Counters of one ingress port.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PortCounters {
    /// TLPs forwarded (broadcasts count once).
    pub forwarded: u64,
    /// TLPs that terminated here.
    pub local: u64,
    /// Unsupported Request completions sent back.
    pub unsupported_replies: u64,
    /// Refusals, by [`Refusal::ALL`] order (replied or dropped).
    pub refused: [u64; 7],
    /// TLPs that passed the checks, by flow class: posted, non-posted,
    /// completion.
    pub by_class: [u64; 3],
}

impl PortCounters {
    /// Refusals of one kind.
    pub fn refused(&self, r: Refusal) -> u64 {
        self.refused[r.index()]
    }
}

/// One logged refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused {
    /// When (caller's ticks).
    pub at: u64,
    /// Ingress port.
    pub port: u16,
    /// Why.
    pub refusal: Refusal,
    /// The TLP's kind.
    pub kind: Option<Kind>,
    /// Its requester (or completer, for a completion).
    pub source: Bdf,
    /// Its address, for address-routed TLPs.
    pub address: Option<u64>,
    /// Refusals not logged since the previous entry (rate limit).
    pub suppressed: u64,
}

/// A bounded, rate-limited log of refusals: at most `burst` entries per
/// `interval` ticks, the rest counted in the next entry's `suppressed`.
#[derive(Debug, Clone)]
pub struct RefusalLog {
    entries: Vec<Refused>,
    capacity: usize,
    window_start: u64,
    in_window: u32,
    /// Entries allowed per interval.
    pub burst: u32,
    /// Ticks per interval.
    pub interval: u64,
    suppressed: u64,
}

impl RefusalLog {
    /// A log of up to `capacity` unread entries, 8 per second of nanosecond ticks.
    pub fn new(capacity: usize) -> RefusalLog {
        RefusalLog {
            entries: Vec::with_capacity(capacity),
            capacity,
            window_start: 0,
            in_window: 0,
            burst: 8,
            interval: 1_000_000_000,
            suppressed: 0,
        }
    }

    fn record(&mut self, mut entry: Refused) {
        if entry.at.wrapping_sub(self.window_start) >= self.interval {
            self.window_start = entry.at;
            self.in_window = 0;
        }
        if self.in_window >= self.burst || self.entries.len() >= self.capacity {
            self.suppressed += 1;
            return;
        }
        self.in_window += 1;
        entry.suppressed = std::mem::take(&mut self.suppressed);
        // Within capacity: never reallocates.
        self.entries.push(entry);
    }

    /// The entries logged so far, oldest first.
    pub fn entries(&self) -> &[Refused] {
        &self.entries
    }

    /// Takes the entries logged so far.
    pub fn drain(&mut self) -> std::vec::Drain<'_, Refused> {
        self.entries.drain(..)
    }

    /// Refusals not logged and not yet reported in an entry.
    pub fn suppressed(&self) -> u64 {
        self.suppressed
    }
}

/// What one polling core keeps for one node: the checks it applies, its
/// counters and its refusal log.
#[derive(Debug, Clone)]
pub struct NodeState {
    /// Structural and switch checks (Max_Payload_Size included).
    pub validator: Validator,
    /// Per ingress port.
    pub counters: Vec<PortCounters>,
    /// Refusals, rate-limited.
    pub log: RefusalLog,
}

impl NodeState {
    /// State for a node of `ports` ports, with the switch profile at a
    /// Max_Payload_Size of 4096 bytes.
    pub fn new(ports: u16) -> NodeState {
        NodeState {
            validator: Validator {
                profile: Profile::Switch,
                max_payload: tlp::MAX_PAYLOAD_SIZE_LIMIT,
            },
            counters: vec![PortCounters::default(); ports as usize],
            log: RefusalLog::new(256),
        }
    }
}

/// A node's forwarding tables: one immutable set, swapped whole when routes
/// change ([`crate::routing::epoch`]).
#[derive(Debug, Clone)]
pub struct NodeTables {
    node: usize,
    ports: Box<[PortKind]>,
    /// Fabric address windows.
    addresses: AddressTable<Route>,
    /// Fabric ID (completion requester, configuration or message target) → egress.
    ids: IdTable,
    /// Function fabric ID → egress toward the host it is bound to, for
    /// messages routed to the root complex or gathered.
    upstream: IdTable,
    /// Host fabric bus → the egress ports its broadcasts take.
    broadcast: Box<[(u8, Box<[u16]>)]>,
    /// Per port: index into `hosts` or `endpoints` by its kind.
    edge: Box<[u16]>,
    hosts: Box<[HostEdge]>,
    endpoints: Box<[EndpointEdge]>,
}

/// The fabric ID of a host's (or common binding's) requester `index`.
fn fabric_requester(bus: u8, index: u16) -> Bdf {
    Bdf((bus as u16) << 8 | (index & 0xff))
}

impl NodeTables {
    /// Builds node `node`'s tables from a checked topology (a search of the
    /// fabric from the node: to build every node's, use
    /// [`build_all`](Self::build_all)).
    pub fn build(t: &Topology, node: usize) -> NodeTables {
        let hops = t.hops(node);
        let links: Vec<(u16, usize)> = t
            .links
            .iter()
            .flat_map(|(a, b)| [(*a, *b), (*b, *a)])
            .filter(|(local, _)| local.node == node)
            .map(|(local, peer)| (local.port, peer.node))
            .collect();
        NodeTables::build_toward(t, node, &links, None, |to| hops.get(to).copied().flatten())
    }

    /// Builds every node's tables, searching the fabric once per node a
    /// host or endpoint attaches to rather than once per node.
    pub fn build_all(t: &Topology) -> Vec<NodeTables> {
        NodeTables::build_all_with(t, None)
    }

    /// Builds node `node`'s tables with paths found already.
    pub fn build_with(t: &Topology, node: usize, paths: &crate::Paths) -> NodeTables {
        NodeTables::build_toward(t, node, paths.links(node), None, |to| paths.next(node, to))
    }

    /// Builds every node's tables for the time a binding's migration
    /// prepares: `t`'s routes, and besides them the destination host
    /// reaching the binding's function through `guest` (the binding as the
    /// destination will have it: its host, ID and window there), so it can
    /// enumerate and use the destination's instantiation while the source
    /// keeps its own (claims 1–4). Only the destination host's edge
    /// changes: its requests to the function carry its own fabric bus, so
    /// the pause point tells them from the source's, and every other route
    /// (the function's DMA, its messages, other hosts) stays the source's.
    pub fn build_all_preparing(t: &Topology, guest: &crate::topology::Binding) -> Vec<NodeTables> {
        NodeTables::build_all_with(t, Some(guest))
    }

    /// Every node's tables, with `guest` reached by its host too.
    fn build_all_with(t: &Topology, guest: Option<&crate::topology::Binding>) -> Vec<NodeTables> {
        let paths = t.paths();
        (0..t.nodes.len())
            .map(|n| NodeTables::build_toward(t, n, paths.links(n), guest, |to| paths.next(n, to)))
            .collect()
    }

    /// Builds node `node`'s tables; `links` are its links (its port, the
    /// peer node) and `next(n)` is the port on `node` that starts a
    /// shortest path to node `n`; `guest` is a binding its destination host
    /// reaches too while its migration prepares.
    fn build_toward(
        t: &Topology,
        node: usize,
        links: &[(u16, usize)],
        guest: Option<&crate::topology::Binding>,
        next: impl Fn(usize) -> Option<u16>,
    ) -> NodeTables {
        let port_count = t.nodes[node].ports as usize;
        let mut ports = vec![PortKind::Unused; port_count];
        let mut edge = vec![0u16; port_count];
        for &(port, peer) in links {
            if let Some(p) = ports.get_mut(port as usize) {
                *p = PortKind::Link { peer };
            }
        }
        // The egress toward a port somewhere in the fabric.
        let toward = |p: crate::topology::PortRef| -> Option<u16> {
            if p.node == node {
                Some(p.port)
            } else {
                next(p.node)
            }
        };

        let mut addresses = Vec::new();
        let mut ids = IdTable::default();
        let mut upstream = IdTable::default();
        for e in &t.endpoints {
            let Some(egress) = toward(e.attach) else {
                continue;
            };
            for f in 0..=e.vfs as u16 {
                ids.set(Bdf(e.id.0.wrapping_add(f)), egress);
            }
            let span = e.bar_size * (1 + e.vfs as u64);
            addresses.push((
                Window {
                    base: e.fabric_bar,
                    size: span,
                },
                Route {
                    egress,
                    to_domain: 0,
                },
            ));
        }
        let mut broadcast: Vec<(u8, Vec<u16>)> = Vec::new();
        for (h, host) in t.hosts.iter().enumerate() {
            let Some(egress) = toward(host.attach) else {
                continue;
            };
            for i in 0..host.requesters.len() as u16 {
                ids.set(fabric_requester(host.fabric_bus, i), egress);
            }
            for (w, fabric) in host.dma.iter().zip(&host.fabric_dma) {
                addresses.push((
                    Window {
                        base: *fabric,
                        size: w.size,
                    },
                    Route {
                        egress,
                        to_domain: w.base.wrapping_sub(*fabric),
                    },
                ));
            }
            let mut fan: Vec<u16> = Vec::new();
            for b in t.bindings.iter().filter(|b| b.host == h) {
                let e = &t.endpoints[b.endpoint];
                if let Some(bus) = b.common_bus {
                    for i in 0..host.requesters.len() as u16 {
                        ids.set(fabric_requester(bus, i), egress);
                    }
                }
                upstream.set(Bdf(e.id.0.wrapping_add(b.function as u16)), egress);
                if let Some(p) = toward(e.attach) {
                    if !fan.contains(&p) {
                        fan.push(p);
                    }
                }
            }
            broadcast.push((host.fabric_bus, fan));
        }

        let mut hosts = Vec::new();
        let mut endpoints = Vec::new();
        for (h, host) in t.hosts.iter().enumerate() {
            if host.attach.node != node {
                continue;
            }
            ports[host.attach.port as usize] = PortKind::Host(h);
            edge[host.attach.port as usize] = hosts.len() as u16;
            let mut requester_index = IdTable::default();
            let mut to_domain = IdTable::default();
            for (i, r) in host.requesters.iter().enumerate() {
                requester_index.set(*r, i as u16);
                to_domain.set(fabric_requester(host.fabric_bus, i as u16), r.0);
            }
            let mut targets = IdTable::default();
            let mut bindings = Vec::new();
            let mut bars = Vec::new();
            let guests = guest.filter(|g| g.host == h);
            for b in t.bindings.iter().filter(|b| b.host == h).chain(guests) {
                let e = &t.endpoints[b.endpoint];
                let function = Bdf(e.id.0.wrapping_add(b.function as u16));
                let fabric_bar = e.fabric_bar + b.function as u64 * e.bar_size;
                let slot = bindings.len() as u16;
                targets.set(b.host_id, slot);
                to_domain.set(function, b.host_id.0);
                bars.push((b.bar, slot));
                let guest = guest.is_some_and(|g| std::ptr::eq(g, b));
                let requester_bus = match (b.id_mode, b.common_bus) {
                    // The destination's requests are its own until the
                    // switch-over, whatever the binding's ID mode.
                    _ if guest => host.fabric_bus,
                    (IdMode::Common, Some(bus)) => {
                        for (i, r) in host.requesters.iter().enumerate() {
                            to_domain.set(fabric_requester(bus, i as u16), r.0);
                        }
                        bus
                    }
                    _ => host.fabric_bus,
                };
                bindings.push(EdgeBinding {
                    function,
                    bar_offset: fabric_bar.wrapping_sub(b.bar.base),
                    requester_bus,
                });
            }
            hosts.push(HostEdge {
                buses: host.buses,
                fabric_bus: host.fabric_bus,
                requester_index,
                // The topology check refuses overlapping BARs in a domain.
                bars: AddressTable::new(bars).unwrap_or_else(|_| {
                    AddressTable::new([]).expect("an empty table never overlaps")
                }),
                targets,
                bindings: bindings.into(),
                to_domain,
            });
        }
        for (i, e) in t.endpoints.iter().enumerate() {
            if e.attach.node != node {
                continue;
            }
            ports[e.attach.port as usize] = PortKind::Endpoint(i);
            edge[e.attach.port as usize] = endpoints.len() as u16;
            let dma = (0..=e.vfs)
                .map(|f| {
                    let Some(b) = t
                        .bindings
                        .iter()
                        .find(|b| b.endpoint == i && b.function == f)
                    else {
                        return AddressTable::new([]).expect("empty");
                    };
                    let host = &t.hosts[b.host];
                    let windows = host
                        .dma
                        .iter()
                        .zip(&host.fabric_dma)
                        .map(|(w, fabric)| (*w, fabric.wrapping_sub(w.base)));
                    // The topology check refuses overlapping DMA windows.
                    AddressTable::new(windows)
                        .unwrap_or_else(|_| AddressTable::new([]).expect("empty"))
                })
                .collect();
            endpoints.push(EndpointEdge {
                first: e.id,
                functions: 1 + e.vfs as u16,
                dma,
            });
        }

        NodeTables {
            node,
            ports: ports.into(),
            // Fabric windows are laid out apart by the topology's plan.
            addresses: AddressTable::new(addresses)
                .unwrap_or_else(|_| AddressTable::new([]).expect("empty")),
            ids,
            upstream,
            broadcast: broadcast
                .into_iter()
                .map(|(bus, fan)| (bus, fan.into()))
                .collect(),
            edge: edge.into(),
            hosts: hosts.into(),
            endpoints: endpoints.into(),
        }
    }

    /// The node these tables belong to.
    pub fn node(&self) -> usize {
        self.node
    }

    /// What each port leads to.
    pub fn ports(&self) -> &[PortKind] {
        &self.ports
    }

    /// Routes installed: fabric address windows, fabric IDs, upstream
    /// (to-root) IDs, and at each host edge its BAR windows and targets.
    pub fn route_count(&self) -> usize {
        self.addresses.len()
            + self.ids.len()
            + self.upstream.len()
            + self
                .hosts
                .iter()
                .map(|h| h.bars.len() + h.targets.len())
                .sum::<usize>()
            + self
                .endpoints
                .iter()
                .map(|e| e.dma.iter().map(AddressTable::len).sum::<usize>())
                .sum::<usize>()
    }

    /// The fabric route of an address (for tests, tools and benches).
    #[inline]
    pub fn route_address(&self, address: u64) -> Option<Route> {
        self.addresses.lookup(address)
    }

    /// The egress of a fabric ID (for tests, tools and benches).
    #[inline]
    pub fn route_id(&self, id: Bdf) -> Option<u16> {
        self.ids.get(id)
    }

    /// Decides what to do with one TLP that came in on `ingress`, translating
    /// it in place where it crosses a domain boundary. A refused non-posted
    /// request gets its Unsupported Request completion written to `reply`
    /// (which must hold 12 bytes; a smaller one gets a drop instead).
    // Always inlined into the frame loop: a call saved and restored six
    // registers and returned the action through memory for every TLP
    // (367 -> 318 instructions per TLP at 8 TLPs per frame).
    #[inline(always)]
    pub fn forward<'t>(
        &'t self,
        ingress: u16,
        tlp: &mut [u8],
        reply: &mut [u8],
        state: &mut NodeState,
        now: u64,
    ) -> Action<'t> {
        self.forward_from(self.ingress(ingress), tlp, reply, state, now)
    }

    /// What the tables know of port `port` as an ingress, for
    /// [`forward_from`](Self::forward_from).
    #[inline(always)]
    pub fn ingress(&self, port: u16) -> Ingress {
        Ingress {
            port,
            kind: self
                .ports
                .get(port as usize)
                .copied()
                .unwrap_or(PortKind::Unused),
            edge: self.edge.get(port as usize).copied().unwrap_or(0),
        }
    }

    /// [`forward`](Self::forward) with the ingress port looked up already:
    /// the TLPs of one frame share it.
    #[inline(always)]
    pub fn forward_from<'t>(
        &'t self,
        ingress: Ingress,
        tlp: &mut [u8],
        reply: &mut [u8],
        state: &mut NodeState,
        now: u64,
    ) -> Action<'t> {
        let NodeState {
            validator,
            counters,
            log,
        } = state;
        let Some(counters) = counters.get_mut(ingress.port as usize) else {
            return Action::Drop(Refusal::NoRoute);
        };
        let action = self.decide(ingress, tlp, reply, validator, counters);
        match action {
            Action::Forward(_) | Action::Broadcast(_) => counters.forwarded += 1,
            Action::Local => counters.local += 1,
            Action::Reply { refusal, .. } | Action::Drop(refusal) => {
                counters.refused[refusal.index()] += 1;
                if matches!(action, Action::Reply { .. }) {
                    counters.unsupported_replies += 1;
                }
                log.record(refused(now, ingress.port, refusal, tlp));
            }
        }
        action
    }

    // Always inlined into `forward`: called, it saved and restored
    // registers and returned its action through memory for every TLP.
    #[inline(always)]
    fn decide<'t>(
        &'t self,
        ingress: Ingress,
        bytes: &mut [u8],
        reply: &mut [u8],
        validator: &Validator,
        counters: &mut PortCounters,
    ) -> Action<'t> {
        let class = match tlp::inspect(bytes, validator) {
            Ok(c) => c,
            Err(_) => return Action::Drop(Refusal::Malformed),
        };
        counters.by_class[class.flow as usize] += 1;
        let Ingress { kind, edge, .. } = ingress;
        let edge = edge as usize;
        let step = match kind {
            PortKind::Host(_) => enter_from_host(&self.hosts[edge], &class, bytes),
            PortKind::Endpoint(_) => enter_from_endpoint(&self.endpoints[edge], &class, bytes),
            PortKind::Link { .. } => Ok(()),
            PortKind::Unused => Err(Refusal::NoRoute),
        };
        let action = match step {
            Ok(()) => match self.route(&class, bytes) {
                // A host's request is in fabric IDs by now: an Unsupported
                // Request built from it would not reach the host. (Routes to
                // every bound function are installed, so this is rare.)
                Err(r) if matches!(kind, PortKind::Host(_)) => return Action::Drop(r),
                other => other,
            },
            Err(r) => Err(r),
        };
        match action {
            Ok(a) => a,
            Err(refusal) => refuse(refusal, &class, bytes, reply),
        }
    }

    /// Routes a TLP in fabric space and translates it if it leaves toward a host.
    // Inlined: returned through memory, the action's narrow stores and
    // the caller's wide load stalled store forwarding on every TLP.
    #[inline(always)]
    fn route(&self, class: &Class, bytes: &mut [u8]) -> Result<Action<'_>, Refusal> {
        let t = Tlp::with_header_at(&bytes[..], class.header_offset);
        let (egress, to_domain) = match class.routing {
            Routing::Address => {
                let r = self.addresses.lookup(t.address()).ok_or(Refusal::NoRoute)?;
                (r.egress, r.to_domain)
            }
            Routing::Id => {
                let id = if class.flow == FlowClass::Completion {
                    t.requester_id()
                } else {
                    t.target_id()
                };
                (self.ids.get(id).ok_or(Refusal::NoRoute)?, 0)
            }
            Routing::ToRoot | Routing::Gather => {
                let e = self
                    .upstream
                    .get(t.requester_id())
                    .ok_or(Refusal::NoRoute)?;
                (e, 0)
            }
            Routing::Broadcast => {
                let bus = t.requester_id().bus();
                let fan = self
                    .broadcast
                    .iter()
                    .find(|(b, _)| *b == bus)
                    .ok_or(Refusal::NoRoute)?;
                return Ok(Action::Broadcast(&fan.1));
            }
            Routing::Local => return Ok(Action::Local),
        };
        if let Some(PortKind::Host(_)) = self.ports.get(egress as usize) {
            let edge = &self.hosts[self.edge[egress as usize] as usize];
            to_host(edge, class, bytes, to_domain)?;
        }
        Ok(Action::Forward(egress))
    }
}

/// Source validation, access control and translation into the fabric
/// for a TLP from a host.
fn enter_from_host(edge: &HostEdge, class: &Class, bytes: &mut [u8]) -> Result<(), Refusal> {
    let mut t = Tlp::new_unchecked(&mut bytes[..]);
    let completion = class.flow == FlowClass::Completion;
    let source = source_id(&t, class);
    if !(edge.buses.0..=edge.buses.1).contains(&source.bus()) {
        return Err(Refusal::Spoofed);
    }
    let index = edge
        .requester_index
        .get(source)
        .ok_or(Refusal::UnknownRequester)?;
    match class.routing {
        Routing::Address => {
            let slot = edge.bars.lookup(t.address()).ok_or(Refusal::AccessDenied)?;
            let b = edge.bindings[slot as usize];
            t.set_address(t.address().wrapping_add(b.bar_offset));
            t.set_requester_id(fabric_requester(b.requester_bus, index));
        }
        Routing::Id if completion => {
            // The host completes a function's read: back to the function.
            let slot = edge
                .targets
                .get(t.requester_id())
                .ok_or(Refusal::AccessDenied)?;
            let b = edge.bindings[slot as usize];
            t.set_requester_id(b.function);
            t.set_completer_id(fabric_requester(edge.fabric_bus, index));
        }
        Routing::Id => {
            let slot = edge
                .targets
                .get(t.target_id())
                .ok_or(Refusal::AccessDenied)?;
            let b = edge.bindings[slot as usize];
            t.set_target_id(b.function);
            // The fabric is the bridge above the function's bus.
            t.set_config_type0();
            t.set_requester_id(fabric_requester(b.requester_bus, index));
        }
        Routing::Broadcast => {
            t.set_requester_id(fabric_requester(edge.fabric_bus, index));
        }
        Routing::Local => {}
        Routing::ToRoot | Routing::Gather => return Err(Refusal::Direction),
    }
    refresh_ecrc(&mut t);
    Ok(())
}

/// Source validation, access control and translation into the fabric
/// for a TLP from an endpoint device.
fn enter_from_endpoint(
    edge: &EndpointEdge,
    class: &Class,
    bytes: &mut [u8],
) -> Result<(), Refusal> {
    let mut t = Tlp::new_unchecked(&mut bytes[..]);
    let completion = class.flow == FlowClass::Completion;
    let source = source_id(&t, class);
    let function = source.0.wrapping_sub(edge.first.0);
    if function >= edge.functions {
        return Err(Refusal::Spoofed);
    }
    match class.routing {
        Routing::Address => {
            let offset = edge.dma[function as usize]
                .lookup(t.address())
                .ok_or(Refusal::AccessDenied)?;
            t.set_address(t.address().wrapping_add(offset));
            refresh_ecrc(&mut t);
            Ok(())
        }
        Routing::Id if completion => Ok(()),
        Routing::Id => Err(Refusal::AccessDenied),
        Routing::ToRoot | Routing::Gather | Routing::Local => Ok(()),
        Routing::Broadcast => Err(Refusal::Direction),
    }
}

/// Who sent a TLP: the completer of a completion, the requester otherwise.
#[inline]
fn source_id<T: AsRef<[u8]>>(t: &Tlp<T>, class: &Class) -> Bdf {
    if class.flow == FlowClass::Completion {
        t.completer_id()
    } else {
        t.requester_id()
    }
}

/// Translation out of the fabric into a host's domain.
fn to_host(edge: &HostEdge, class: &Class, bytes: &mut [u8], offset: u64) -> Result<(), Refusal> {
    let mut t = Tlp::new_unchecked(&mut bytes[..]);
    let domain = |id: Bdf| {
        edge.to_domain
            .get(id)
            .map(Bdf)
            .ok_or(Refusal::NoTranslation)
    };
    let requester = domain(t.requester_id())?;
    if class.routing == Routing::Address {
        t.set_address(t.address().wrapping_add(offset));
    }
    t.set_requester_id(requester);
    if class.flow == FlowClass::Completion {
        // A completion the fabric made itself keeps its completer.
        if let Ok(c) = domain(t.completer_id()) {
            t.set_completer_id(c);
        }
    }
    refresh_ecrc(&mut t);
    Ok(())
}

/// Rewritten headers invalidate an end-to-end CRC; a translating bridge
/// computes a new one (it is the only party that can).
#[inline]
fn refresh_ecrc(t: &mut Tlp<&mut [u8]>) {
    if t.td() {
        t.fill_ecrc();
    }
}

/// The refusal as PCIe delivers it: an Unsupported Request completion for a
/// non-posted request (§2.3.1), a drop otherwise.
fn refuse<'t>(refusal: Refusal, class: &Class, bytes: &[u8], reply: &mut [u8]) -> Action<'t> {
    // A failed source check is dropped whatever its class: a completion to
    // a forged requester ID would only reach someone else.
    let source_check = matches!(
        refusal,
        Refusal::Malformed | Refusal::Spoofed | Refusal::UnknownRequester
    );
    if class.flow != FlowClass::NonPosted || source_check {
        return Action::Drop(refusal);
    }
    match unsupported_request(bytes, class.kind, reply) {
        Some(len) => Action::Reply { refusal, len },
        None => Action::Drop(refusal),
    }
}

/// Writes the Unsupported Request completion of a non-posted request.
/// Byte Count and Lower Address follow §2.2.9: a memory read reports every
/// byte it asked for and the address of its first enabled byte; I/O and
/// configuration requests report 4 and 0; AtomicOps their operand size and 0.
/// The completer is the configuration target for configuration requests,
/// and 00:00.0 (the fabric itself) otherwise.
pub fn unsupported_request(request: &[u8], kind: Kind, reply: &mut [u8]) -> Option<usize> {
    let t = Tlp::new_checked(request).ok()?;
    let (byte_count, lower_address, completer) = match kind {
        Kind::MRd | Kind::MRdLk => (
            read_byte_count(t.length_dw(), t.first_be(), t.last_be()),
            read_lower_address(t.address(), t.first_be()),
            Bdf(0),
        ),
        Kind::CfgRd0 | Kind::CfgWr0 | Kind::CfgRd1 | Kind::CfgWr1 => (4, 0, t.target_id()),
        Kind::FetchAdd | Kind::Swap => (t.payload_len() as u16, 0, Bdf(0)),
        Kind::Cas => ((t.payload_len() / 2) as u16, 0, Bdf(0)),
        _ => (4, 0, Bdf(0)),
    };
    let fields = CplFields {
        completer,
        requester: t.requester_id(),
        tag: t.tag(),
        status: CplStatus::Ur,
        byte_count,
        lower_address,
    };
    let len = completion(reply, fields, &[]).ok()?;
    if kind == Kind::MRdLk {
        // CplLk: Type 01011b.
        reply[0] |= 0x01;
    }
    let mut c = Tlp::new_unchecked(&mut reply[..len]);
    c.set_tc(t.tc());
    Some(len)
}

fn refused(at: u64, port: u16, refusal: Refusal, bytes: &[u8]) -> Refused {
    let class = tlp::classify(bytes).ok();
    let view = Tlp::new_checked(bytes).ok();
    let source = match (&view, &class) {
        (Some(t), Some(c)) => source_id(t, c),
        (Some(t), None) => t.requester_id(),
        _ => Bdf(0),
    };
    let address = match (&view, class) {
        (Some(t), Some(c)) if c.routing == Routing::Address => Some(t.address()),
        _ => None,
    };
    Refused {
        at,
        port,
        refusal,
        kind: class.map(|c| c.kind),
        source,
        address,
        suppressed: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::path::Path;

    #[test]
    fn a_locked_read_gets_a_locked_completion() {
        let mut repr = tlp::Repr::new(Kind::MRdLk, tlp::MsgRouting::Local, &[]);
        repr.requester = Bdf(0x0100);
        repr.tag = 3;
        repr.tc = 2;
        let mut b = vec![0u8; repr.buffer_len()];
        repr.emit(&mut b).unwrap();
        let mut reply = [0u8; 16];
        let n = unsupported_request(&b, Kind::MRdLk, &mut reply).unwrap();
        let c = Tlp::new_checked(&reply[..n]).unwrap();
        assert_eq!(c.kind(), Some(Kind::CplLk));
        assert_eq!((c.status(), c.tag(), c.tc()), (CplStatus::Ur, 3, 2));
        // Too small a reply buffer: no completion, never a panic.
        assert_eq!(unsupported_request(&b, Kind::MRdLk, &mut reply[..8]), None);
    }

    #[test]
    fn tlps_that_pass_the_checks_are_counted_by_class_on_their_ingress() {
        use tlp::build::{memory_read, memory_write, MemAccess};
        let tables = &tables()[0];
        let mut state = NodeState::new(tables.ports().len() as u16);
        let mut reply = [0u8; 16];
        let mut buf = [0u8; 64];
        let access = MemAccess::dwords(0x1_0000_0000, 4);
        let n = memory_write(&mut buf, Bdf(0x0100), 0, access, &[0; 16]).unwrap();
        let write = buf[..n].to_vec();
        let n = memory_read(&mut buf, Bdf(0x0100), 1, access).unwrap();
        let read = buf[..n].to_vec();
        for (port, tlp) in [(0u16, &write), (0, &write), (0, &read), (1, &read)] {
            let mut tlp = tlp.clone();
            // Whether routed or refused: they passed the checks.
            tables.forward(port, &mut tlp, &mut reply, &mut state, 0);
        }
        // Cut short: malformed, not counted.
        let mut short = write[..10].to_vec();
        let action = tables.forward(0, &mut short, &mut reply, &mut state, 0);
        assert_eq!(action, Action::Drop(Refusal::Malformed));
        assert_eq!(state.counters[0].by_class, [2, 1, 0]);
        assert_eq!(state.counters[1].by_class, [0, 1, 0]);
    }

    #[test]
    fn an_ingress_looked_up_once_routes_as_its_port_does() {
        use tlp::build::{memory_read, memory_write, MemAccess};
        let mut buf = [0u8; 64];
        let mut tlps = Vec::new();
        for (requester, address) in [(0x0000, 0xfe00_0000), (0x4001, 0x1_0000_0000)] {
            let access = MemAccess::dwords(address, 4);
            let n = memory_write(&mut buf, Bdf(requester), 0, access, &[7; 16]).unwrap();
            tlps.push(buf[..n].to_vec());
            let n = memory_read(&mut buf, Bdf(requester), 1, access).unwrap();
            tlps.push(buf[..n].to_vec());
        }
        let (mut forwarded, mut refused) = (0, 0);
        for tables in tables() {
            let ports = tables.ports().len() as u16;
            for port in 0..=ports {
                let from = tables.ingress(port);
                let kind = tables.ports().get(port as usize).copied();
                assert_eq!(from.port(), port);
                assert_eq!(from.kind, kind.unwrap_or(PortKind::Unused));
                let (mut one, mut each) = (NodeState::new(ports), NodeState::new(ports));
                for tlp in &tlps {
                    let (mut a, mut b) = (tlp.clone(), tlp.clone());
                    let (mut reply_a, mut reply_b) = ([0u8; 16], [0u8; 16]);
                    let shared = tables.forward_from(from, &mut a, &mut reply_a, &mut one, 0);
                    let alone = tables.forward(port, &mut b, &mut reply_b, &mut each, 0);
                    assert_eq!(shared, alone, "port {port}");
                    assert_eq!((a, reply_a), (b, reply_b), "port {port}");
                }
                assert_eq!(one.counters, each.counters, "port {port}");
                forwarded += one.counters.iter().map(|c| c.forwarded).sum::<u64>();
                refused += one.counters.iter().flat_map(|c| c.refused).sum::<u64>();
                if port == ports {
                    // Past the node's ports: nothing routed, nothing counted.
                    assert!(one.counters.iter().all(|c| *c == PortCounters::default()));
                }
            }
        }
        // Both ways through the tables were taken.
        assert!(
            forwarded > 0 && refused > 0,
            "{forwarded} forwarded, {refused} refused"
        );
    }

    /// While a migration of binding 0 (nic0.vf1, host-a's) to host-b
    /// prepares, host-b reaches the function at the ID and window it will
    /// have there, with its own requester bus; host-a keeps its routes.
    #[test]
    fn a_destination_reaches_the_function_it_prepares_to_take() {
        use tlp::build::{completion, config_request, memory_read, CplFields, MemAccess};
        let path = Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../configs/default.toml"
        ));
        let t = Topology::load(path).unwrap();
        let mut guest = t.bindings[0].clone();
        guest.host = 1;
        guest.host_id = Bdf(0x0200);
        guest.bar = Window {
            base: 0xfe10_0000,
            size: guest.bar.size,
        };
        let (host_b, host_a) = (t.hosts[1].attach, t.hosts[0].attach);
        let b_bus = t.hosts[1].fabric_bus;
        let vf1 = Bdf(t.endpoints[0].id.0 + 1);
        let sw0 = host_b.node;
        let preparing = NodeTables::build_all_preparing(&t, &guest);
        let plain = NodeTables::build_all(&t);
        let toward_vf1 = plain[sw0].route_id(vf1).unwrap();
        let mut buf = [0u8; 64];
        let mut reply = [0u8; 16];
        let n = config_request(&mut buf, Kind::CfgRd0, Bdf(0), 5, Bdf(0x0200), 0, &[]).unwrap();
        let read_ids = buf[..n].to_vec();
        // Without the preparing routes the ID is nobody's in host-b's domain.
        let mut tlp = read_ids.clone();
        let mut state = NodeState::new(4);
        let refused = plain[sw0].forward(host_b.port, &mut tlp, &mut reply, &mut state, 0);
        assert!(matches!(refused, Action::Reply { .. }), "{refused:?}");
        let mut tlp = read_ids.clone();
        let routed = preparing[sw0].forward(host_b.port, &mut tlp, &mut reply, &mut state, 0);
        assert_eq!(routed, Action::Forward(toward_vf1));
        let t_out = Tlp::new_checked(&tlp[..]).unwrap();
        assert_eq!(t_out.target_id(), vf1);
        assert_eq!(t_out.requester_id(), Bdf((b_bus as u16) << 8));
        // A read of its window reaches the function's fabric BAR.
        let n = memory_read(&mut buf, Bdf(0), 6, MemAccess::dwords(0xfe10_0008, 1)).unwrap();
        let mut tlp = buf[..n].to_vec();
        let routed = preparing[sw0].forward(host_b.port, &mut tlp, &mut reply, &mut state, 0);
        assert_eq!(routed, Action::Forward(toward_vf1));
        let e = &t.endpoints[0];
        let fabric_bar = e.fabric_bar + e.bar_size;
        assert_eq!(
            Tlp::new_checked(&tlp[..]).unwrap().address(),
            fabric_bar + 8
        );
        // The answer comes back as from the ID host-b gave it.
        let fields = CplFields {
            completer: vf1,
            requester: Bdf((b_bus as u16) << 8),
            tag: 5,
            status: CplStatus::Sc,
            byte_count: 4,
            lower_address: 0,
        };
        let n = completion(&mut buf, fields, &[1, 2, 3, 4]).unwrap();
        let mut tlp = buf[..n].to_vec();
        let routed = preparing[sw0].forward(toward_vf1, &mut tlp, &mut reply, &mut state, 0);
        assert_eq!(routed, Action::Forward(host_b.port));
        let c = Tlp::new_checked(&tlp[..]).unwrap();
        assert_eq!((c.completer_id(), c.requester_id()), (Bdf(0x0200), Bdf(0)));
        // Host-a still reaches its function at its own ID.
        let n = config_request(
            &mut buf,
            Kind::CfgRd0,
            Bdf(0),
            7,
            t.bindings[0].host_id,
            0,
            &[],
        )
        .unwrap();
        let mut tlp = buf[..n].to_vec();
        let routed = preparing[sw0].forward(host_a.port, &mut tlp, &mut reply, &mut state, 0);
        assert_eq!(routed, Action::Forward(toward_vf1));
        assert_eq!(Tlp::new_checked(&tlp[..]).unwrap().target_id(), vf1);
    }

    fn tables() -> &'static [NodeTables] {
        static TABLES: std::sync::OnceLock<Vec<NodeTables>> = std::sync::OnceLock::new();
        TABLES.get_or_init(|| {
            let path = Path::new(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../configs/default.toml"
            ));
            let t = Topology::load(path).unwrap();
            (0..t.nodes.len())
                .map(|i| NodeTables::build(&t, i))
                .collect()
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

        /// Whatever arrives on whatever port, forwarding decides without
        /// panicking, and a reply it writes is a well-formed completion.
        #[test]
        fn forwarding_never_panics(
            bytes in proptest::collection::vec(any::<u8>(), 0..64),
            node in 0usize..2,
            port in 0u16..6,
            reply_len in 0usize..20,
        ) {
            let nodes = tables();
            let mut state = NodeState::new(4);
            let mut tlp = bytes.clone();
            let mut reply = vec![0u8; reply_len];
            if let Action::Reply { len, .. } = nodes[node].forward(port, &mut tlp, &mut reply, &mut state, 0) {
                let c = Tlp::new_checked(&reply[..len]).unwrap();
                prop_assert_eq!(c.status(), CplStatus::Ur);
            }
        }

        /// Valid requests from a host with one field scrambled: still no panic,
        /// and whatever is forwarded stays a valid TLP.
        #[test]
        fn mutated_host_requests_stay_well_formed(
            address in any::<u32>(),
            requester in any::<u16>(),
            flip in any::<(usize, u8)>(),
        ) {
            let nodes = tables();
            let mut state = NodeState::new(4);
            let mut tlp = vec![0u8; 16];
            let access = tlp::build::MemAccess::dwords((address & !3) as u64, 1);
            let n = tlp::build::memory_write(&mut tlp, Bdf(requester), 0, access, &[0; 4]).unwrap();
            tlp.truncate(n);
            let i = flip.0 % n;
            tlp[i] ^= flip.1;
            let mut reply = [0u8; 16];
            if let Action::Forward(_) = nodes[0].forward(1, &mut tlp, &mut reply, &mut state, 0) {
                prop_assert!(Tlp::new_checked(&tlp[..]).is_ok());
            }
        }
    }
}
