//! The pause stage of a node's pipeline: where an endpoint attaches, each
//! function bound to a host gets a pause point (both directions) and a VDI.
//!
//! Traffic toward the function is offered after routing (it is already in
//! fabric space and needs no re-routing later); traffic from the function is
//! offered before routing, so what is held is routed by address with the
//! tables in force when it is released: after a move, to the new domain.
//! While a binding is paused its VDI completes the configuration requests
//! it can, so they never black out (claim 18); everything else waits, and
//! the senders only see the fabric's ordinary flow control, because a held
//! TLP keeps the credits it consumed until it leaves (claims 11, 20).
//!
//! Control arrives on an SPSC ring and applies between bursts; what the
//! orchestrator needs to see (state, counts) is published in atomics. The
//! blackout histograms live here, on the node's core, and are read after
//! the run.

use crate::stall::StallClock;
use hdrhistogram::Histogram;
use rings::credits::Cost;
use rings::pause::{Direction, IdMode, Offer, Pausable, PauseConfig, PausePoint, State, TlpInfo};
use rings::spsc::Consumer;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tlp::{Bdf, FlowClass, Kind, Tlp};
use vdi::{CompletionSignal, Mode, Vdi, Verdict};

/// A function whose traffic passes the gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GatedFunction {
    /// Its fabric ID.
    pub function: Bdf,
    /// Its BAR in fabric space: base and size.
    pub bar: (u64, u64),
}

/// A control request for the gate, applied between bursts.
#[derive(Debug)]
pub enum GateCommand {
    /// Start pausing binding `binding`: drain first with different IDs,
    /// close at once with a common ID (claims 13, 14).
    Pause {
        /// Index of the binding at this gate.
        binding: usize,
        /// How origin and destination identify requests.
        mode: IdMode,
        /// The direction whose source the migration has stopped (the VM,
        /// toward the function; the function, from it): what is still in
        /// flight from it is bounded, so the fabric holds it without
        /// withholding credits, and links it shares keep flowing. The other
        /// direction's source keeps sending and is flow-controlled.
        stopped: Option<Direction>,
    },
    /// The binding has moved and routes are re-pointed: release what is
    /// held, in order. Held requests from `requester.0` leave as
    /// `requester.1` (the destination host's fabric requester ID, when IDs
    /// differ), so their completions reach the destination.
    Release {
        /// Index of the binding.
        binding: usize,
        /// Requester ID rewrite for held requests toward the function.
        requester: Option<(Bdf, Bdf)>,
        /// An endpoint migration: the function's state moved to this one;
        /// what is held is re-pointed at it (addresses into its BAR, its
        /// ID) and released at once, ahead of anything held for it, and
        /// the binding's counts move to it.
        retarget: Option<usize>,
    },
    /// Abandon the pause: release everything to where it was going.
    Abort {
        /// Index of the binding.
        binding: usize,
    },
    /// Close binding `binding`'s point at once, as a stand-by: an endpoint
    /// migration's destination function, whose new traffic must wait
    /// behind what the source held. Its reopening is not a migration.
    Standby {
        /// Index of the function.
        binding: usize,
    },
    /// An endpoint migration prepares: function `to`'s VDI is restored
    /// from a snapshot of function `binding`'s.
    PrepareFunction {
        /// Index of the source binding.
        binding: usize,
        /// Index of the destination function.
        to: usize,
    },
    /// A second VDI of the function for the destination domain, restored
    /// from a snapshot of the source's (claims 1–3); both operate until the
    /// migration completes.
    Prepare {
        /// Index of the binding.
        binding: usize,
        /// The destination host's fabric requester bus: its configuration
        /// requests are served by the destination VDI.
        destination_bus: u8,
    },
    /// The migration is complete: the VDI signals the destination host and
    /// elects pass-through again (claims 8, 9).
    Complete {
        /// Index of the binding.
        binding: usize,
        /// How completion is indicated.
        signal: CompletionSignal,
    },
}

/// The state of a binding's pause point, as published.
pub const STATE_OPEN: u8 = 0;
/// Draining completions (different IDs).
pub const STATE_DRAINING: u8 = 1;
/// Closed: everything for the binding is held.
pub const STATE_CLOSED: u8 = 2;
/// Releasing what was held.
pub const STATE_RELEASING: u8 = 3;

fn state_code(s: State) -> u8 {
    match s {
        State::Open => STATE_OPEN,
        State::Draining => STATE_DRAINING,
        State::Closed => STATE_CLOSED,
        State::Releasing => STATE_RELEASING,
    }
}

/// What one binding's gate publishes for the orchestrator.
#[derive(Debug, Default)]
pub struct BindingStatus {
    /// `STATE_*`.
    pub state: AtomicU8,
    /// Requests toward the function seen at the gate (passed, held or served).
    pub down_requests: AtomicU64,
    /// TLPs from the function that passed the gate toward a host (unheld,
    /// or released).
    pub up_passed: AtomicU64,
    /// TLPs that passed the gate toward the function (unheld, or released).
    pub down_passed: AtomicU64,
    /// TLPs from the function that reached the gate.
    pub up_offered: AtomicU64,
    /// TLPs held now.
    pub held: AtomicU64,
    /// Pauses that ended (released or aborted).
    pub reopened: AtomicU64,
    /// Commands applied.
    pub commands: AtomicU64,
    /// The last drain ended by its budget, with requests still in flight
    /// whose completions would return to the source's ID.
    pub drain_expired: AtomicBool,
    /// Its state moved to another function, and TLPs routed here before
    /// the switch-over may still be on their way: they are sent on there,
    /// so this function cannot take another binding's state yet.
    pub redirect_pending: AtomicBool,
}

/// The published status of every binding at a gate.
#[derive(Debug)]
pub struct GateStatus {
    bindings: Box<[BindingStatus]>,
}

impl GateStatus {
    /// The status of binding `i`.
    pub fn binding(&self, i: usize) -> Option<&BindingStatus> {
        self.bindings.get(i)
    }
}

/// Counters of a gate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GateStats {
    /// TLPs held.
    pub held: u64,
    /// Held TLPs released.
    pub released: u64,
    /// Times a TLP was refused because its binding's hold was full: it
    /// waited at its ingress, with its credits, and was offered again.
    /// Nothing is dropped.
    pub refused_full: u64,
    /// Configuration writes a VDI completed, made to its function when the
    /// function was in reach again.
    pub replays: u64,
    /// Completions of those writes, which end at the gate.
    pub replays_completed: u64,
    /// Configuration reads completed by a VDI.
    pub vdi_config_reads: u64,
    /// Configuration writes completed by a VDI.
    pub vdi_config_writes: u64,
    /// Register reads completed by a VDI.
    pub vdi_register_reads: u64,
    /// Register (and MSI-X table) writes completed by a destination's VDI.
    pub vdi_register_writes: u64,
    /// Requests of a destination host its instantiation could not serve
    /// before the switch-over (a doorbell, a register read that changes
    /// the device): non-posted ones completed as Unsupported Requests,
    /// posted ones discarded, as a function does with what it does not
    /// support (PCIe Base Specification §2.3.1).
    pub destination_refused: u64,
    /// TLPs a VDI generated (interrupts, messages).
    pub vdi_upstream: u64,
    /// TLPs of open bindings that passed to or from their functions while
    /// another binding at the gate was paused, by flow class (posted,
    /// non-posted, completion): the device serving other domains directly
    /// beside a VDI standing in for one (claim 19).
    pub beside_pauses: [u64; 3],
    /// Interrupts a function raised while its binding was paused, taken by
    /// its VDI into their vectors' pending bits.
    pub interrupts_held: u64,
    /// Of those, what reached the host when the binding resumed: one
    /// message a vector, so raises of a vector already pending merged.
    pub interrupts_released: u64,
    /// Pauses that ended by release, and by abort.
    pub migrations: u64,
    /// Pauses abandoned.
    pub aborted: u64,
}

impl GateStats {
    /// Adds another gate's counters.
    pub fn add(&mut self, o: &GateStats) {
        self.held += o.held;
        self.released += o.released;
        self.refused_full += o.refused_full;
        self.replays += o.replays;
        self.replays_completed += o.replays_completed;
        self.vdi_config_reads += o.vdi_config_reads;
        self.vdi_config_writes += o.vdi_config_writes;
        self.vdi_register_reads += o.vdi_register_reads;
        self.vdi_register_writes += o.vdi_register_writes;
        self.destination_refused += o.destination_refused;
        self.vdi_upstream += o.vdi_upstream;
        for (sum, n) in self.beside_pauses.iter_mut().zip(o.beside_pauses) {
            *sum += n;
        }
        self.interrupts_held += o.interrupts_held;
        self.interrupts_released += o.interrupts_released;
        self.migrations += o.migrations;
        self.aborted += o.aborted;
    }
}

/// A held TLP: its bytes, what the pause point needs, and the credits it
/// still holds.
#[derive(Debug)]
pub struct HeldTlp {
    bytes: Vec<u8>,
    info: TlpInfo,
    /// The reliable ingress port whose credits it holds, and their amount.
    pub(crate) owner: Option<(u16, Cost)>,
    /// Where it came in.
    pub(crate) ingress: u16,
}

impl Pausable for HeldTlp {
    fn info(&self) -> TlpInfo {
        self.info
    }
}

impl HeldTlp {
    /// Its bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Its buffer.
    pub(crate) fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }
}

/// The gate's TLP buffers, in two sizes, taken and given back so that
/// holding and releasing allocate nothing while they last.
#[derive(Debug)]
struct Buffers {
    /// Buffers for the largest TLP.
    large: Vec<Vec<u8>>,
    /// Buffers of [`SMALL_TLP`] bytes.
    small: Vec<Vec<u8>>,
}

impl Buffers {
    fn new() -> Buffers {
        Buffers {
            large: (0..SPARE).map(|_| Vec::with_capacity(MAX_TLP)).collect(),
            small: (0..SMALL_SPARE)
                .map(|_| Vec::with_capacity(SMALL_TLP))
                .collect(),
        }
    }

    /// An empty buffer for a TLP of `len` bytes: a small one for a small
    /// TLP while any is left, else a large one; allocated only when
    /// neither is left.
    fn take(&mut self, len: usize) -> Vec<u8> {
        let small = if len <= SMALL_TLP {
            self.small.pop()
        } else {
            None
        };
        let mut b = small
            .or_else(|| self.large.pop())
            .unwrap_or_else(|| Vec::with_capacity(MAX_TLP.max(len)));
        b.clear();
        b
    }

    /// Keeps `bytes` for a later [`Buffers::take`], by its size, up to the
    /// counts it started with.
    fn give(&mut self, mut bytes: Vec<u8>) {
        bytes.clear();
        if bytes.capacity() >= MAX_TLP {
            if self.large.len() < SPARE {
                self.large.push(bytes);
            }
        } else if bytes.capacity() >= SMALL_TLP && self.small.len() < SMALL_SPARE {
            self.small.push(bytes);
        }
    }
}

struct Gated {
    function: GatedFunction,
    point: PausePoint<HeldTlp>,
    vdi: Option<Vdi>,
    /// The destination domain's VDI while a migration prepares and moves,
    /// and the fabric bus of the destination host's requests.
    destination: Option<(Vdi, u8)>,
    /// A VDI of the same layout kept aside for the next destination, so
    /// that a prepare copies state in place instead of allocating on the
    /// gate's core.
    spare_vdi: Option<Vdi>,
    /// When its point closed (or began draining), while paused.
    paused_since: Option<Instant>,
    /// The stall clocks' sum when its drain began (see
    /// [`Gate::with_stall_clocks`]).
    drain_stalls_at: u64,
    aborting: bool,
    /// Paused only to keep a function's new traffic behind what another
    /// function held for it: its reopening is not a migration of its own.
    standby: bool,
    /// Its state moved to this function: what still arrives for it (routed
    /// before the switch-over) goes there.
    redirect: Option<usize>,
    /// The function whose state moved here and which redirects to it, until
    /// a request reaches this function by the new routes.
    redirected_from: Option<usize>,
    /// While paused: the direction whose source is stopped.
    stopped: Option<Direction>,
    /// Configuration writes its VDI completed while the function was out of
    /// reach, to be made to the function before held traffic is released.
    replay: Vec<Vec<u8>>,
    /// The bytes at the start of its BAR where its VDI has registers (0:
    /// none): posted writes there are shown to the VDI.
    register_span: u64,
    /// The bytes of its BAR its VDI's MSI-X table takes (empty: none):
    /// writes there are shown to the VDI too, which raises those vectors.
    msix_span: (u64, u64),
    /// Since the last release, the requester ID rewrite it made to held
    /// requests: what waited for room behind them gets it too.
    moved_requester: Option<(Bdf, Bdf)>,
}

impl Gated {
    /// Whether a memory write toward the function may change a register
    /// or an MSI-X vector its VDI keeps.
    #[inline]
    fn writes_register(&self, tlp: &[u8], class: &tlp::Class) -> bool {
        (self.register_span > 0 || self.msix_span.1 > self.msix_span.0)
            && class.kind == Kind::MWr
            && write_address(tlp, class.header_offset).is_some_and(|a| {
                let at = a.wrapping_sub(self.function.bar.0);
                at < self.register_span || (self.msix_span.0..self.msix_span.1).contains(&at)
            })
    }
}

/// The address of a memory request whose header starts at `at` (Fmt bit 5:
/// a 4-DW header with a 64-bit address).
#[inline]
fn write_address(tlp: &[u8], at: usize) -> Option<u64> {
    if tlp.get(at)? & 0x20 != 0 {
        let a: [u8; 8] = tlp.get(at + 8..at + 16)?.try_into().ok()?;
        Some(u64::from_be_bytes(a) & !0x3)
    } else {
        let a: [u8; 4] = tlp.get(at + 8..at + 12)?.try_into().ok()?;
        Some(u64::from(u32::from_be_bytes(a) & !0x3))
    }
}

/// Where an offered TLP came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arrival {
    /// Toward the function, or from it.
    pub dir: Direction,
    /// The node port it came in on.
    pub ingress: u16,
    /// The reliable port whose credits it consumed, and their amount.
    pub credits: Option<(u16, Cost)>,
    /// It was routed to another function whose state moved here
    /// ([`Gate::redirect_down`]).
    pub redirected: bool,
    /// Offered before and refused because its hold was full
    /// ([`GateOffer::Full`]): counted as arrived then, not again now.
    pub again: bool,
}

/// What the gate did with an offered TLP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GateOffer {
    /// Not the gate's business, or free to go on.
    Pass,
    /// Held; its credits stay with it.
    Held,
    /// A VDI completed it; its completion (this many bytes) is in the
    /// reply buffer.
    Served(usize),
    /// Taken with nothing to send on: a posted write a VDI absorbed, an
    /// interrupt of a paused function its VDI took into a pending bit, or a
    /// completion that ends at the gate (of a write it made).
    Absorbed,
    /// The binding's hold is full: not taken. The caller keeps the TLP, with
    /// the credits it consumed, and offers it again (`again`) before anything
    /// that came in after it from the same port; the sender sees only
    /// withheld credits, as from a full PCIe receive buffer. It counts as
    /// having reached the pause point now (hand-overs wait on that).
    Full,
}

/// Blackout histograms, in nanoseconds.
#[derive(Debug, Clone)]
pub struct Blackouts {
    /// Per migration: pause closed (or drain began) to the last held TLP
    /// released.
    pub per_migration: Histogram<u64>,
    /// Per held TLP: how long it was held.
    pub per_tlp: Histogram<u64>,
    /// Per migration, only those during which no core the gate watches
    /// (see [`Gate::with_stall_clocks`]) was kept from its rounds: the
    /// fabric's own blackout, apart from the machine's.
    pub per_migration_unstalled: Histogram<u64>,
}

impl Blackouts {
    /// Empty histograms from 1 ns to 60 s at three significant digits.
    pub fn new() -> Blackouts {
        let h = || Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("valid bounds");
        Blackouts {
            per_migration: h(),
            per_tlp: h(),
            per_migration_unstalled: h(),
        }
    }

    /// Adds another's records.
    pub fn add(&mut self, other: &Blackouts) {
        // Both have the same bounds: adding cannot fail.
        let _ = self.per_migration.add(&other.per_migration);
        let _ = self.per_tlp.add(&other.per_tlp);
        let _ = self
            .per_migration_unstalled
            .add(&other.per_migration_unstalled);
    }
}

impl Default for Blackouts {
    fn default() -> Self {
        Blackouts::new()
    }
}

/// The pause stage at one endpoint port of a node.
pub struct Gate {
    port: u16,
    /// How long the cores a drain depends on were kept from running.
    stall_clocks: Vec<Arc<StallClock>>,
    bindings: Vec<Gated>,
    commands: Consumer<GateCommand>,
    status: Arc<GateStatus>,
    base: Instant,
    buffers: Buffers,
    /// Released TLPs for the node to send on, in order.
    pub(crate) released: Vec<(Direction, HeldTlp)>,
    /// TLPs a VDI generated, to be routed from the function's port.
    pub(crate) upstream: Vec<Vec<u8>>,
    blackouts: Blackouts,
    stats: GateStats,
    any_paused: bool,
}

impl std::fmt::Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gate")
            .field("port", &self.port)
            .field("stats", &self.stats)
            .finish()
    }
}

/// TLPs a gate's VDIs may have waiting to go upstream at once (interrupts
/// released after a pause, completion indications).
const UPSTREAM_CAPACITY: usize = 64;

/// TLPs each direction of a binding can hold: more than the header credits
/// of every path into it, so flow control stops senders first.
const HOLD_CAPACITY: usize = 8192;

/// Bytes a gate allocates before it holds anything: spare TLP buffers and
/// room for what a release lets go, whatever the number of functions.
pub fn gate_memory() -> usize {
    SPARE * MAX_TLP
        + SMALL_SPARE * (SMALL_TLP + std::mem::size_of::<Vec<u8>>())
        + 2 * HOLD_CAPACITY * std::mem::size_of::<(Direction, HeldTlp)>()
}

/// Bytes a gate allocates per function, about: a pause point's two hold
/// lanes and a VDI's configuration space and registers.
pub fn function_memory() -> usize {
    2 * HOLD_CAPACITY * (std::mem::size_of::<HeldTlp>() + 16) + 3 * 4096
}
/// TLPs a binding holds from a stopped source before held TLPs keep their
/// credits anyway. Up to it the fabric's own buffers absorb what the
/// stopped source still had in flight, so it all reaches the pause point
/// (which the hand-over waits for) and links shared with other bindings
/// keep flowing (claim 19). Everything else held keeps the credits it
/// consumed: senders see the fabric's ordinary flow control (claims 11, 20).
pub const HOLD_BEFORE_BACK_PRESSURE: usize = 512;
/// Spare TLP buffers kept for holding, so holding allocates nothing once
/// warm.
const SPARE: usize = 256;
/// TLPs up to this many bytes are held in small buffers: a 4-DW header
/// and a 64-byte payload with a prefix and a digest fit, with room.
const SMALL_TLP: usize = 128;
/// Small buffers a gate keeps: what one direction of a binding can hold.
/// Holding small TLPs then allocates nothing, and takes 128 bytes a TLP
/// rather than a buffer sized for the largest.
const SMALL_SPARE: usize = HOLD_CAPACITY;
/// The requester ID of the configuration writes a gate makes to a function
/// on its VDI's behalf; their completions end at the gate. Bus 0xff,
/// device 31, function 7 — the last ID, which no domain hands out.
pub const REPLAY_REQUESTER: Bdf = Bdf(0xffff);
/// The largest TLP.
const MAX_TLP: usize = 4096 + 16 + 16 + 4;

impl Gate {
    /// Gives every pause point room for `capacity` TLPs each way instead of
    /// the default (before any pause; to show what a full hold does).
    pub fn with_hold_capacity(mut self, capacity: usize) -> Gate {
        for g in &mut self.bindings {
            let config = PauseConfig {
                hold_capacity: capacity,
                ..g.point.config()
            };
            g.point = PausePoint::new(config);
        }
        self
    }

    /// A request toward a function that waited for room at its full pause
    /// point while the binding moved: re-pointed to the destination's
    /// requester ID as the held ones were at the release, so that its
    /// completion reaches the VM where it runs now.
    pub(crate) fn readdress_waiting(&self, tlp: &mut [u8]) {
        let moved = self
            .match_down(tlp)
            .and_then(|b| self.bindings.get(b))
            .and_then(|g| g.moved_requester);
        if let Some((from, to)) = moved {
            rewrite_requester(tlp, from, to);
        }
    }

    /// Counts a TLP that waits at its ingress behind one a full pause point
    /// refused as having reached its pause point (as `offer` counts those
    /// it holds), since hand-overs wait for every TLP to get this far.
    pub(crate) fn count_waiting(&self, dir: Direction, tlp: &[u8]) {
        let b = match dir {
            Direction::Up => self.match_up(tlp),
            Direction::Down => self.match_down(tlp),
        };
        let Some(status) = b.and_then(|b| self.status.bindings.get(b)) else {
            return;
        };
        let completion = tlp::classify(tlp).is_ok_and(|c| c.flow == FlowClass::Completion);
        match dir {
            Direction::Up => {
                status.up_offered.fetch_add(1, Ordering::Relaxed);
            }
            Direction::Down if !completion => {
                status.down_requests.fetch_add(1, Ordering::Relaxed);
            }
            Direction::Down => {}
        }
    }

    /// An empty buffer for a TLP of `len` bytes ([`Buffers::take`]).
    pub(crate) fn buffer_for(&mut self, len: usize) -> Vec<u8> {
        self.buffers.take(len)
    }

    /// A gate at node port `port` over `functions` (index = binding index at
    /// this gate), each with its VDI if it has one; control arrives on
    /// `commands`.
    pub fn new(
        port: u16,
        functions: Vec<(GatedFunction, Option<Vdi>)>,
        commands: Consumer<GateCommand>,
        drain_budget: Duration,
    ) -> Gate {
        let status = Arc::new(GateStatus {
            bindings: functions.iter().map(|_| BindingStatus::default()).collect(),
        });
        let config = PauseConfig {
            hold_capacity: HOLD_CAPACITY,
            track_capacity: 4096,
            drain_budget,
        };
        Gate {
            port,
            stall_clocks: Vec::new(),
            bindings: functions
                .into_iter()
                .map(|(function, vdi)| Gated {
                    function,
                    point: PausePoint::new(config),
                    register_span: vdi.as_ref().map_or(0, |v| v.register_span(0)),
                    msix_span: vdi
                        .as_ref()
                        .and_then(|v| v.msix_table_span(0))
                        .unwrap_or((0, 0)),
                    spare_vdi: vdi.as_ref().map(Vdi::spare),
                    vdi,
                    destination: None,
                    paused_since: None,
                    aborting: false,
                    standby: false,
                    drain_stalls_at: 0,
                    redirect: None,
                    redirected_from: None,
                    stopped: None,
                    replay: Vec::new(),
                    moved_requester: None,
                })
                .collect(),
            commands,
            status,
            base: Instant::now(),
            buffers: Buffers::new(),
            released: Vec::with_capacity(2 * HOLD_CAPACITY),
            upstream: Vec::with_capacity(UPSTREAM_CAPACITY),
            blackouts: Blackouts::new(),
            stats: GateStats::default(),
            any_paused: false,
        }
    }

    /// The node port it guards.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Reads from `clocks` how long the cores a drain depends on were kept
    /// from running (the gate's own, and the one a device emulated in the
    /// same process answers on): a drain does not count that time against
    /// its budget. A completion that could not be sent, or that arrived
    /// while the gate's core could not look, is not late.
    pub fn with_stall_clocks(&mut self, clocks: Vec<Arc<StallClock>>) {
        self.stall_clocks = clocks;
    }

    /// What it publishes.
    pub fn status(&self) -> Arc<GateStatus> {
        self.status.clone()
    }

    /// Counters.
    pub fn stats(&self) -> &GateStats {
        &self.stats
    }

    /// The blackout histograms so far.
    pub fn blackouts(&self) -> &Blackouts {
        &self.blackouts
    }

    /// The VDI of binding `i`.
    pub fn vdi(&self, i: usize) -> Option<&Vdi> {
        self.bindings.get(i)?.vdi.as_ref()
    }

    /// The VDI of binding `i`, to change (programming it as its host would).
    pub fn vdi_mut(&mut self, i: usize) -> Option<&mut Vdi> {
        self.bindings.get_mut(i)?.vdi.as_mut()
    }

    /// Hands each released TLP (and each one a VDI generated, as
    /// `Direction::Up`) to `f`, in order; for a gate used on its own, as a
    /// node does between bursts.
    pub fn drain_released(&mut self, mut f: impl FnMut(Direction, &[u8])) {
        let mut released = std::mem::take(&mut self.released);
        for (dir, held) in released.drain(..) {
            f(dir, held.bytes());
            self.recycle(held.into_bytes());
        }
        self.released = released;
        let mut upstream = std::mem::take(&mut self.upstream);
        for tlp in upstream.drain(..) {
            f(Direction::Up, &tlp);
            self.recycle(tlp);
        }
        self.upstream = upstream;
    }

    /// The destination VDI of binding `i`, while a migration prepares.
    pub fn destination_vdi(&self, i: usize) -> Option<&Vdi> {
        Some(&self.bindings.get(i)?.destination.as_ref()?.0)
    }

    /// The state of binding `i`'s pause point.
    pub fn state(&self, i: usize) -> Option<State> {
        Some(self.bindings.get(i)?.point.state())
    }

    /// TLPs binding `i` holds: toward the function, and from it.
    pub fn held(&self, i: usize) -> (usize, usize) {
        self.bindings.get(i).map_or((0, 0), |g| {
            (g.point.held(Direction::Down), g.point.held(Direction::Up))
        })
    }

    /// Whether a TLP binding `i` holds now in `dir` should keep its
    /// credits: it holds many that way already. (Per direction: a device
    /// whose completions could not reach the pause point because held host
    /// writes had used up its credits would never let a move finish.)
    #[inline]
    pub fn back_pressure(&self, i: usize, dir: Direction) -> bool {
        self.bindings.get(i).is_none_or(|g| {
            g.stopped != Some(dir) || g.point.held(dir) >= HOLD_BEFORE_BACK_PRESSURE
        })
    }

    /// The recent state changes of binding `i`'s pause point.
    pub fn events(&self, i: usize) -> Vec<rings::pause::Event> {
        self.bindings
            .get(i)
            .map(|g| g.point.events().copied().collect())
            .unwrap_or_default()
    }

    fn instant(&self, now: u64) -> Instant {
        self.base + Duration::from_nanos(now)
    }

    /// The binding a TLP from the function belongs to.
    #[inline]
    pub fn match_up(&self, tlp: &[u8]) -> Option<usize> {
        let t = Tlp::new_checked(tlp).ok()?;
        let source = if t.kind()?.is_completion() {
            t.completer_id()
        } else {
            t.requester_id()
        };
        self.bindings
            .iter()
            .position(|b| b.function.function == source)
    }

    /// For a TLP toward binding `b`'s function: if that function's state
    /// has moved to another, the TLP is re-pointed there (it was routed
    /// before the switch-over) and that binding is returned.
    pub fn redirect_down(&self, b: usize, tlp: &mut [u8]) -> usize {
        let Some(g) = self.bindings.get(b) else {
            return b;
        };
        let Some(to) = g
            .redirect
            .and_then(|t| self.bindings.get(t).map(|d| (t, d.function)))
        else {
            return b;
        };
        retarget_tlp(tlp, Direction::Down, g.function, to.1);
        to.0
    }

    /// The binding a TLP toward the function belongs to.
    #[inline]
    pub fn match_down(&self, tlp: &[u8]) -> Option<usize> {
        let t = Tlp::new_checked(tlp).ok()?;
        let kind = t.kind()?;
        if kind.is_memory() || kind.is_io() || kind.is_atomic() {
            let a = t.address();
            return self
                .bindings
                .iter()
                .position(|b| a.wrapping_sub(b.function.bar.0) < b.function.bar.1);
        }
        let id = if kind.is_completion() {
            t.requester_id()
        } else if kind.is_config() {
            t.target_id()
        } else {
            return None;
        };
        self.bindings.iter().position(|b| b.function.function == id)
    }

    /// Offers one TLP of binding `b` that came in on `arrival`. A held TLP
    /// keeps the arrival's credits. A configuration request a VDI completes
    /// while the binding is paused leaves its completion in `reply`.
    pub fn offer(
        &mut self,
        b: usize,
        arrival: Arrival,
        tlp: &[u8],
        reply: &mut [u8],
        now: u64,
    ) -> GateOffer {
        let Arrival {
            dir,
            ingress,
            credits: owner,
            redirected,
            again,
        } = arrival;
        // Counted as arrived the first time it was offered.
        let count = !again;
        let open = self
            .bindings
            .get(b)
            .is_some_and(|g| g.point.state() == State::Open);
        if open && dir == Direction::Down {
            // Routing checked it already, and an open point tracks only
            // non-posted requests and completions: a posted request toward
            // the function (most of the traffic) is only counted.
            if let Some(class) = tlp::classify(tlp)
                .ok()
                .filter(|c| c.flow == FlowClass::Posted)
            {
                let g = &mut self.bindings[b];
                if g.writes_register(tlp, &class) {
                    // The VDI keeps what the device will hold, so that it
                    // can answer for it during a pause.
                    if let Some(vdi) = &mut g.vdi {
                        vdi.observe(tlp);
                    }
                }
                let status = &self.status.bindings[b];
                if count {
                    status.down_requests.fetch_add(1, Ordering::Relaxed);
                }
                status.down_passed.fetch_add(1, Ordering::Relaxed);
                self.count_beside_pause(b, FlowClass::Posted);
                return GateOffer::Pass;
            }
        }
        let Ok(info) = TlpInfo::of(tlp) else {
            // Malformed: routing refuses it.
            return GateOffer::Pass;
        };
        if dir == Direction::Down && !redirected && info.flow == FlowClass::NonPosted {
            self.fence(b);
        }
        let at = self.instant(now);
        let Some(g) = self.bindings.get_mut(b) else {
            return GateOffer::Pass;
        };
        let status = &self.status.bindings[b];
        let request = dir == Direction::Down && info.flow != FlowClass::Completion;
        if dir == Direction::Up {
            if count {
                status.up_offered.fetch_add(1, Ordering::Relaxed);
            }
            if info.flow == FlowClass::Completion && info.requester == REPLAY_REQUESTER {
                // The function completed a write the gate made for its VDI.
                self.stats.replays_completed += 1;
                return GateOffer::Absorbed;
            }
        }
        if g.point.state() == State::Open {
            if request {
                if count {
                    status.down_requests.fetch_add(1, Ordering::Relaxed);
                }
                if let Some(vdi) = &mut g.vdi {
                    vdi.observe(tlp);
                }
            }
            // Open: nothing is held, but requests are tracked for a drain.
            let probe = HeldTlp {
                bytes: Vec::new(),
                info,
                owner: None,
                ingress,
            };
            let _ = g.point.offer(dir, probe, at);
            passed(status, dir);
            self.count_beside_pause(b, info.flow);
            return GateOffer::Pass;
        }
        if dir == Direction::Up && info.flow == FlowClass::Posted {
            if let Some(vdi) = g.vdi.as_mut().filter(|v| v.interrupts_held()) {
                // The function's interrupt, raised while its vectors are
                // held: it waits in its pending bit and is delivered when
                // the binding resumes, after what was held before it
                // (claim 6; MSI-X masking, PCIe Base Specification
                // §6.1.4.5).
                let vector = interrupt_of(tlp, g.function.function)
                    .and_then(|(address, data)| vdi.interrupt_vector(address, data));
                if vector.is_some_and(|v| vdi.take_held_interrupt(v)) {
                    self.stats.interrupts_held += 1;
                    return GateOffer::Absorbed;
                }
            }
        }
        // A function standing by for another's state has a VDI that is not
        // yet that state: what reaches it waits for the state to arrive.
        if dir == Direction::Down && !g.standby {
            if let Some(served) = serve_request(g, tlp, reply, &mut self.stats, false) {
                if let Some(write) = replayed_write(tlp) {
                    g.replay.push(write);
                }
                if let GateOffer::Served(_) = served {
                    // Its answer goes toward the host as if it had passed,
                    // counted before the request: whoever sees the request
                    // arrived sees its answer on its way.
                    status.up_passed.fetch_add(1, Ordering::Release);
                }
                if count {
                    status.down_requests.fetch_add(1, Ordering::Release);
                }
                return served;
            }
        }
        if request && count {
            status.down_requests.fetch_add(1, Ordering::Relaxed);
        }
        // A full hold takes nothing: the caller keeps it and offers it again
        // (counted as arrived already, above).
        if g.point.refuses(dir, info.flow) {
            self.stats.refused_full += 1;
            return GateOffer::Full;
        }
        if request && info.flow == FlowClass::Posted {
            // Held, and already in the VDI's registers: what it answers
            // meanwhile reflects every write before the read, which is what
            // reads not passing posted writes protects (§2.4.1).
            if tlp::classify(tlp).is_ok_and(|c| g.writes_register(tlp, &c)) {
                if let Some(vdi) = &mut g.vdi {
                    vdi.observe(tlp);
                }
            }
        }
        let mut bytes = self.buffers.take(tlp.len());
        bytes.extend_from_slice(tlp);
        let item = HeldTlp {
            bytes,
            info,
            owner,
            ingress,
        };
        match g.point.offer(dir, item, at) {
            Offer::Forward(item) => {
                self.buffers.give(item.bytes);
                passed(status, dir);
                GateOffer::Pass
            }
            Offer::Held => {
                self.stats.held += 1;
                status.held.fetch_add(1, Ordering::Relaxed);
                GateOffer::Held
            }
            Offer::Full(item) => {
                // Checked above; were the point still to refuse it, it is
                // offered again all the same, never dropped.
                self.buffers.give(item.bytes);
                self.stats.refused_full += 1;
                GateOffer::Full
            }
        }
    }

    /// Counts a TLP of open binding `b` that passed, if another binding
    /// (not one standing by for it) is paused.
    #[inline]
    fn count_beside_pause(&mut self, b: usize, flow: FlowClass) {
        if !self.any_paused {
            return;
        }
        let beside = self
            .bindings
            .iter()
            .enumerate()
            .any(|(i, g)| i != b && !g.standby && g.point.state() != State::Open);
        if beside {
            let class = match flow {
                FlowClass::Posted => 0,
                FlowClass::NonPosted => 1,
                FlowClass::Completion => 2,
            };
            self.stats.beside_pauses[class] += 1;
        }
    }

    /// Whether a control request is waiting: the node polls the gate
    /// between port bursts too, so a pause or release does not wait for a
    /// whole round of the core.
    #[inline]
    pub fn commands_waiting(&mut self) -> bool {
        !self.commands.is_empty()
    }

    /// Applies control requests, advances drains and releases; released
    /// TLPs wait in `released` (and VDI-generated ones in `upstream`) for
    /// the node. Cheap when nothing is paused.
    pub fn poll(&mut self, now: u64) {
        while let Some(command) = self.commands.pop() {
            self.apply(command, now);
        }
        if !self.any_paused {
            return;
        }
        let at = self.instant(now);
        let mut any = false;
        for (i, g) in self.bindings.iter_mut().enumerate() {
            let status = &self.status.bindings[i];
            if g.point.state() == State::Open && g.paused_since.is_none() {
                continue;
            }
            let excused = if g.point.state() == State::Draining {
                stalled_by(&self.stall_clocks, now).saturating_sub(g.drain_stalls_at)
            } else {
                0
            };
            if g.point.state() == State::Draining
                && g.point.poll_excusing(at, Duration::from_nanos(excused)) == State::Closed
            {
                // The drain budget ran out with requests still in flight.
                status.drain_expired.store(true, Ordering::Release);
            }
            if let Some(closed) = g.point.closed_at() {
                g.paused_since = Some(closed);
            }
            release_held(
                g,
                status,
                at,
                &mut self.blackouts,
                &mut self.released,
                &mut self.stats,
            );
            if g.point.state() == State::Open {
                if let Some(since) = g.paused_since.take() {
                    if let Some(vdi) = &mut g.vdi {
                        // Behind everything released: each vector raised
                        // meanwhile, once. They pass toward the VM as if
                        // the function had sent them now.
                        let n = vdi.release_interrupts() as u64;
                        self.stats.interrupts_released += n;
                        status.up_passed.fetch_add(n, Ordering::Release);
                    }
                    if g.standby {
                        // Reopened behind another function's release.
                    } else if g.aborting {
                        self.stats.aborted += 1;
                    } else {
                        let ns = at.saturating_duration_since(since).as_nanos().max(1) as u64;
                        let _ = self.blackouts.per_migration.record(ns);
                        let stalled =
                            stalled_by(&self.stall_clocks, now).saturating_sub(g.drain_stalls_at);
                        if !self.stall_clocks.is_empty() && stalled == 0 {
                            let _ = self.blackouts.per_migration_unstalled.record(ns);
                        }
                        self.stats.migrations += 1;
                    }
                    g.aborting = false;
                    g.standby = false;
                    g.stopped = None;
                    status.reopened.fetch_add(1, Ordering::Relaxed);
                }
            } else {
                any = true;
            }
            status
                .state
                .store(state_code(g.point.state()), Ordering::Release);
        }
        for g in &mut self.bindings {
            if let Some(vdi) = &mut g.vdi {
                let mut out = [0u8; 64];
                // Bounded, so that what waits never grows a buffer: the rest
                // stays owed in the VDI until the next poll.
                while self.upstream.len() < UPSTREAM_CAPACITY {
                    let Some(n) = vdi.poll_upstream(&mut out) else {
                        break;
                    };
                    let mut tlp = self.buffers.take(n);
                    tlp.extend_from_slice(&out[..n]);
                    self.upstream.push(tlp);
                    self.stats.vdi_upstream += 1;
                }
            }
        }
        self.any_paused = any || !self.upstream.is_empty();
    }

    fn apply(&mut self, command: GateCommand, now: u64) {
        let at = self.instant(now);
        let b = match &command {
            GateCommand::Pause { binding, .. }
            | GateCommand::Release { binding, .. }
            | GateCommand::Abort { binding }
            | GateCommand::Prepare { binding, .. }
            | GateCommand::PrepareFunction { binding, .. }
            | GateCommand::Standby { binding }
            | GateCommand::Complete { binding, .. } => *binding,
        };
        let dest = match &command {
            GateCommand::Release {
                retarget: Some(t), ..
            } => self.bindings.get(*t).map(|d| (*t, d.function)),
            _ => None,
        };
        if let GateCommand::PrepareFunction { to, .. } = command {
            if let Some(d) = self.bindings.get_mut(to) {
                d.redirect = None;
            }
            if let Some((source, dest)) = pair_mut(&mut self.bindings, b, to) {
                if let (Some(state), Some(dest)) = (&source.vdi, &mut dest.vdi) {
                    if dest.take_state_of(state).is_ok() {
                        dest.set_mode(Mode::Shadow);
                    }
                }
            }
        }
        let Some(g) = self.bindings.get_mut(b) else {
            return;
        };
        let status = &self.status.bindings[b];
        match command {
            GateCommand::Pause { mode, stopped, .. } => {
                g.stopped = stopped;
                g.moved_requester = None;
                status.drain_expired.store(false, Ordering::Release);
                if g.point.pause(mode, at).is_ok() {
                    g.paused_since = Some(at);
                    g.drain_stalls_at = stalled_by(&self.stall_clocks, now);
                    if let Some(vdi) = &mut g.vdi {
                        vdi.set_mode(Mode::Migrating);
                        // A function that keeps running (its VM moves) has
                        // its interrupts held with the rest; a stopped one
                        // raises none, and what it sent is held in order.
                        if stopped != Some(Direction::Up) {
                            vdi.hold_interrupts();
                        }
                    }
                }
            }
            GateCommand::Release { requester, .. } => {
                let to = dest.map(|(_, f)| f);
                queue_replays(
                    g,
                    to,
                    self.port,
                    &mut self.released,
                    status,
                    &mut self.stats,
                );
                g.moved_requester = requester;
                if let Some((from, to)) = requester {
                    g.point.rewrite_held(Direction::Down, |held| {
                        if rewrite_requester(&mut held.bytes, from, to) {
                            held.info.requester = to;
                        }
                    });
                }
                let _ = g.point.release(at);
                // From the switch-over on the destination host owns the
                // function and its requests pass to it (serving them from the
                // destination's VDI still would answer the VM out of the
                // binding's sight). The function's VDI, which saw every write
                // the source made, carries on.
                if let Some((spare, _)) = g.destination.take() {
                    g.spare_vdi = Some(spare);
                }
                if let Some(to) = dest {
                    return self.retarget(b, to, at);
                }
            }
            GateCommand::PrepareFunction { .. } => {}
            GateCommand::Standby { .. } => {
                if g.point.pause(IdMode::Common, at).is_ok() {
                    g.paused_since = Some(at);
                    g.standby = true;
                }
            }
            GateCommand::Abort { .. } => {
                queue_replays(
                    g,
                    None,
                    self.port,
                    &mut self.released,
                    status,
                    &mut self.stats,
                );
                if g.point.state() != State::Open {
                    g.aborting = true;
                }
                g.point.abort(at);
                if let Some((spare, _)) = g.destination.take() {
                    g.spare_vdi = Some(spare);
                }
                if let Some(vdi) = &mut g.vdi {
                    vdi.set_mode(Mode::PassThrough);
                }
            }
            GateCommand::Prepare {
                destination_bus, ..
            } => {
                if let Some(vdi) = &g.vdi {
                    // The destination's instantiation starts as the source's
                    // state (within one process a copy; a snapshot carries
                    // it between machines).
                    let mut copy = match g.spare_vdi.take() {
                        Some(mut spare) => {
                            spare.copy_from(vdi);
                            spare
                        }
                        None => vdi.spare(),
                    };
                    copy.set_mode(Mode::Shadow);
                    g.destination = Some((copy, destination_bus));
                }
            }
            GateCommand::Complete { signal, .. } => {
                if let Some(vdi) = &mut g.vdi {
                    vdi.complete_migration(signal);
                }
            }
        }
        status.commands.fetch_add(1, Ordering::Release);
        status
            .state
            .store(state_code(g.point.state()), Ordering::Release);
        self.any_paused = true;
    }

    /// A non-posted request reached binding `b`'s function by the routes in
    /// force now. It left the host after everything that was routed to the
    /// function `b`'s state came from, and on one path through the fabric a
    /// request does not pass posted writes or earlier requests (PCIe Base
    /// Specification §2.4.1): nothing routed the old way is still coming,
    /// so that function's redirect to `b` ends.
    fn fence(&mut self, b: usize) {
        let Some(from) = self
            .bindings
            .get_mut(b)
            .and_then(|g| g.redirected_from.take())
        else {
            return;
        };
        if let Some(f) = self.bindings.get_mut(from) {
            if f.redirect == Some(b) {
                f.redirect = None;
            }
        }
        if let Some(s) = self.status.bindings.get(from) {
            s.redirect_pending.store(false, Ordering::Release);
        }
    }

    /// Releases binding `b`'s held TLPs re-pointed at function `to`, ahead of
    /// everything else, and moves the binding's counts there.
    fn retarget(&mut self, b: usize, (t, to): (usize, GatedFunction), at: Instant) {
        let Some(g) = self.bindings.get_mut(b) else {
            return;
        };
        let from = g.function;
        for dir in [Direction::Down, Direction::Up] {
            g.point.rewrite_held(dir, |held| {
                retarget_tlp(&mut held.bytes, dir, from, to);
            });
        }
        let status = &self.status.bindings[b];
        let first = self.released.len();
        release_held(
            g,
            status,
            at,
            &mut self.blackouts,
            &mut self.released,
            &mut self.stats,
        );
        // Requests in flight are the destination function's to track now,
        // those just released among them.
        g.point.forget_outstanding();
        if let Some(vdi) = &mut g.vdi {
            vdi.set_mode(Mode::PassThrough);
        }
        let state = state_code(g.point.state());
        g.redirect = Some(t);
        self.status.bindings[b]
            .redirect_pending
            .store(true, Ordering::Release);
        // The state moves: the destination's VDI takes the source's as it is
        // now, with every write made while it was prepared.
        if let Some((g, d)) = pair_mut(&mut self.bindings, b, t) {
            d.redirected_from = Some(b);
            if let (Some(source), Some(vdi)) = (&g.vdi, d.vdi.as_mut()) {
                let mode = vdi.mode();
                if vdi.take_state_of(source).is_ok() {
                    vdi.set_mode(mode);
                }
                // Writes it served since the routes switched came later, and
                // so did the register writes it holds.
                for write in &d.replay {
                    vdi.observe(write);
                }
                d.point
                    .rewrite_held(Direction::Down, |held| vdi.observe(&held.bytes));
            }
            for (dir, held) in &self.released[first..] {
                if *dir == Direction::Down {
                    d.point.track(&held.info);
                }
            }
        }
        let status = &self.status.bindings[b];
        let dest = &self.status.bindings[t];
        for (src, dst) in [
            (&status.down_requests, &dest.down_requests),
            (&status.up_passed, &dest.up_passed),
            (&status.down_passed, &dest.down_passed),
            (&status.up_offered, &dest.up_offered),
        ] {
            // What the destination counted since the switch-over adds on.
            dst.fetch_add(src.swap(0, Ordering::Relaxed), Ordering::Relaxed);
        }
        status.commands.fetch_add(1, Ordering::Release);
        status.state.store(state, Ordering::Release);
        self.any_paused = true;
    }

    /// Takes a buffer back after its TLP was sent on.
    pub(crate) fn recycle(&mut self, bytes: Vec<u8>) {
        self.buffers.give(bytes);
    }
}

/// Counts a TLP that passed the gate.
fn passed(status: &BindingStatus, dir: Direction) {
    let counter = match dir {
        Direction::Up => &status.up_passed,
        Direction::Down => &status.down_passed,
    };
    counter.fetch_add(1, Ordering::Relaxed);
}

/// Moves what a releasing point lets go into `released`, in order,
/// recording each TLP's blackout.
fn release_held(
    g: &mut Gated,
    status: &BindingStatus,
    at: Instant,
    blackouts: &mut Blackouts,
    released: &mut Vec<(Direction, HeldTlp)>,
    stats: &mut GateStats,
) {
    for dir in [Direction::Down, Direction::Up] {
        let n = g.point.drain(
            dir,
            at,
            usize::MAX,
            |_| true,
            |r| {
                let _ = blackouts
                    .per_tlp
                    .record(r.held_for.as_nanos().max(1) as u64);
                passed(status, r.dir);
                released.push((r.dir, r.item));
            },
        );
        stats.released += n as u64;
        status.held.fetch_sub(n as u64, Ordering::Relaxed);
    }
}

/// A configuration request toward a paused function: its VDI completes it
/// (claim 18). With `destination`, the destination host's requests are
/// completed by the destination's VDI (while a migration prepares); once
/// the function is paused, whoever asks is the VM, before or after its
/// hand-over, and the function's VDI answers.
fn serve_request(
    g: &mut Gated,
    tlp: &[u8],
    reply: &mut [u8],
    stats: &mut GateStats,
    destination: bool,
) -> Option<GateOffer> {
    let t = Tlp::new_checked(tlp).ok()?;
    let kind = t.kind()?;
    // Register reads too; and register writes at the destination, whose
    // instantiation is its own until the switch-over (the source's VDI
    // answers for a function whose registers it must not change unseen).
    let served = match kind {
        Kind::CfgRd0 | Kind::CfgWr0 | Kind::MRd => true,
        Kind::MWr => destination,
        _ => false,
    };
    if !served {
        return None;
    }
    let from_destination = destination
        && g.destination
            .as_ref()
            .is_some_and(|(_, bus)| t.requester_id().bus() == *bus);
    let vdi = if from_destination {
        &mut g.destination.as_mut()?.0
    } else {
        g.vdi.as_mut()?
    };
    if kind == Kind::MRd && !vdi.decodes(t.address()) {
        // Routed here by the fabric, but not where the VDI's BARs are: the
        // function answers, not an Unsupported Request from its stand-in.
        return None;
    }
    match vdi.serve(tlp, reply) {
        Verdict::Completed(n) => {
            match kind {
                Kind::CfgRd0 => stats.vdi_config_reads += 1,
                Kind::CfgWr0 => stats.vdi_config_writes += 1,
                Kind::MWr => stats.vdi_register_writes += 1,
                _ => stats.vdi_register_reads += 1,
            }
            Some(if n == 0 {
                GateOffer::Absorbed
            } else {
                GateOffer::Served(n)
            })
        }
        Verdict::Hold | Verdict::PassThrough => None,
    }
}

/// The address and data of `tlp` if it is a one-DW memory write from
/// `function`: the form of an MSI-X message.
fn interrupt_of(tlp: &[u8], function: Bdf) -> Option<(u64, u32)> {
    let t = Tlp::new_checked(tlp).ok()?;
    let data: [u8; 4] = t.payload().try_into().ok()?;
    (t.kind() == Some(Kind::MWr) && t.requester_id() == function)
        .then(|| (t.address(), u32::from_le_bytes(data)))
}

/// Bindings `a` and `b` (different ones) at once.
fn pair_mut(bindings: &mut [Gated], a: usize, b: usize) -> Option<(&mut Gated, &mut Gated)> {
    if a == b || a.max(b) >= bindings.len() {
        return None;
    }
    if a < b {
        let (low, high) = bindings.split_at_mut(b);
        Some((&mut low[a], &mut high[0]))
    } else {
        let (low, high) = bindings.split_at_mut(a);
        Some((&mut high[0], &mut low[b]))
    }
}

/// A held TLP of function `from` re-pointed at function `to`: toward the
/// function, its address into `to`'s BAR (or its target or requester ID);
/// from it, its requester or completer ID.
fn retarget_tlp(bytes: &mut [u8], dir: Direction, from: GatedFunction, to: GatedFunction) {
    let Ok(mut t) = Tlp::new_checked(&mut bytes[..]) else {
        return;
    };
    let Some(kind) = t.kind() else {
        return;
    };
    match dir {
        Direction::Down if kind.is_memory() || kind.is_io() || kind.is_atomic() => {
            let offset = t.address().wrapping_sub(from.bar.0);
            t.set_address(to.bar.0.wrapping_add(offset));
        }
        Direction::Down if kind.is_completion() => t.set_requester_id(to.function),
        Direction::Down if kind.is_config() => t.set_target_id(to.function),
        Direction::Down => {}
        Direction::Up if kind.is_completion() => t.set_completer_id(to.function),
        Direction::Up => {
            if t.requester_id() == from.function {
                t.set_requester_id(to.function);
            }
        }
    }
    if t.td() {
        t.fill_ecrc();
    }
}

/// The configuration write the function's VDI just completed, as the gate
/// makes it to the function when the function is in reach again.
fn replayed_write(tlp: &[u8]) -> Option<Vec<u8>> {
    let t = Tlp::new_checked(tlp).ok()?;
    if t.kind()? != Kind::CfgWr0 {
        return None;
    }
    let mut bytes = tlp.to_vec();
    let mut w = Tlp::new_unchecked(&mut bytes[..]);
    w.set_requester_id(REPLAY_REQUESTER);
    if w.td() {
        w.fill_ecrc();
    }
    Some(bytes)
}

/// Stall time by `now` over `clocks`, summed (stalls of two cores at once
/// count twice: the sum errs toward waiting).
fn stalled_by(clocks: &[Arc<StallClock>], now: u64) -> u64 {
    clocks.iter().map(|c| c.stalled_ns_by(now)).sum()
}

/// Queues `g`'s replayed writes toward its function (re-pointed at `to`
/// when its state moved there), ahead of what it held. They count as passed
/// toward the function: its state's count of what it received includes them.
fn queue_replays(
    g: &mut Gated,
    to: Option<GatedFunction>,
    port: u16,
    released: &mut Vec<(Direction, HeldTlp)>,
    status: &BindingStatus,
    stats: &mut GateStats,
) {
    for mut bytes in g.replay.drain(..) {
        if let Some(to) = to {
            retarget_tlp(&mut bytes, Direction::Down, g.function, to);
        }
        let Ok(info) = TlpInfo::of(&bytes) else {
            continue;
        };
        released.push((
            Direction::Down,
            HeldTlp {
                bytes,
                info,
                owner: None,
                ingress: port,
            },
        ));
        passed(status, Direction::Down);
        stats.replays += 1;
    }
}

/// A held request re-pointed to the destination's requester ID; true if
/// it was one of the source's.
fn rewrite_requester(bytes: &mut [u8], from: Bdf, to: Bdf) -> bool {
    let Ok(mut t) = Tlp::new_checked(&mut bytes[..]) else {
        return false;
    };
    let request = t.kind().is_some_and(|k| !k.is_completion());
    if !(request && t.requester_id() == from) {
        return false;
    }
    t.set_requester_id(to);
    if t.td() {
        t.fill_ecrc();
    }
    true
}

/// Destination VDIs are served from the prepare to the switch-over, paused
/// or not: a pause does not need to be closed to use them.
impl Gate {
    /// Serves a request of the destination host to its instantiation of
    /// the function, from the prepare until the switch-over (claims 1–5,
    /// 18: the destination enumerates and uses its instantiation while the
    /// source operates its own). The VM is nowhere on the destination until
    /// the release, so what comes from the destination's requester bus
    /// meanwhile is its host's. `None`: not the destination's.
    ///
    /// What the instantiation cannot serve (a register whose access needs
    /// the device) is refused as a function refuses what it does not
    /// support (§2.3.1): a non-posted request gets an Unsupported Request
    /// completion, a posted one is discarded and counted.
    pub fn serve_destination(
        &mut self,
        b: usize,
        tlp: &[u8],
        reply: &mut [u8],
    ) -> Option<GateOffer> {
        let g = self.bindings.get_mut(b)?;
        let (_, bus) = g.destination.as_ref()?;
        let t = Tlp::new_checked(tlp).ok()?;
        if t.requester_id().bus() != *bus || t.kind().is_none_or(|k| k.is_completion()) {
            return None;
        }
        if let Some(served) = serve_request(g, tlp, reply, &mut self.stats, true) {
            return Some(served);
        }
        self.stats.destination_refused += 1;
        let kind = t.kind()?;
        let posted = tlp::classify(tlp).is_ok_and(|c| c.flow == FlowClass::Posted);
        if posted {
            return Some(GateOffer::Absorbed);
        }
        let Some(n) = fabric::node::unsupported_request(tlp, kind, reply) else {
            return Some(GateOffer::Absorbed);
        };
        // The instantiation completes it, as the function it stands for.
        Tlp::new_unchecked(&mut reply[..n]).set_completer_id(g.function.function);
        Some(GateOffer::Served(n))
    }
}
