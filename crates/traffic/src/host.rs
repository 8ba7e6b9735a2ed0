//! The host model.

use crate::edge::{Edge, Pacer};
use crate::enumerate::{Enumeration, Instantiation, Probe, Probed};
use crate::registers;
use crate::stream::{self, Integrity, StreamCheck};
use hdrhistogram::Histogram;
use lcore::Task;
use pmd::{FramePool, Port};
use rings::spsc::{Consumer, Producer};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use tlp::build::{memory_read, memory_write, MemAccess};
use tlp::{Bdf, CplStatus, Kind, Tlp};

/// How long a timed-out request's tag stays taken waiting for its late
/// completion: 50 ms, the top of the default Completion Timeout range (PCIe
/// Base Specification §2.8); a completion later than that is taken as lost.
/// A tag reused at once could match the late completion to a newer request.
const LATE_TAG_HELD_NS: u64 = 50_000_000;

/// Full bursts a poll takes before it judges reads late (see `poll`).
const RX_BURSTS_BEFORE_TIMEOUTS: usize = 8;

/// A gap between polls longer than this means the model's core was kept
/// from running (the OS or hypervisor took it); see `HostModel::thaw`. The
/// same bound a core's stall watch uses.
const FROZEN_AFTER_NS: u64 = lcore::STALL_AFTER_NS;

/// One function the host writes to and reads from (one binding).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostTarget {
    /// The function's BAR, as the host sees it.
    pub bar: u64,
    /// Where in the BAR the data it writes and reads back starts (past the
    /// registers, if the function has them).
    pub data: u64,
    /// Bytes of the BAR it writes and reads back, a multiple of the payload.
    pub region: u64,
    /// The stream number of its writes to this function.
    pub stream: u32,
    /// The stream number of the function's DMA it expects.
    pub dma_stream: u32,
    /// The function's ID, as the host sees it (for configuration requests).
    pub id: Bdf,
    /// The address of the host's MSI window its interrupts should go to:
    /// the VM programs entry 0 of the function's MSI-X table (just past
    /// `region`) with it and its DMA stream as data (`None`: it does not).
    pub msi: Option<u64>,
    /// Whether the function has the registers of [`crate::registers`] at
    /// the start of its BAR.
    pub registers: bool,
    /// The MSI-X vector its migrations' completion is indicated with
    /// (`None`: a message): the VM programs it with `msi` and
    /// [`COMPLETION_DATA`] with its DMA stream as data.
    pub completion_vector: Option<u16>,
    /// The tags its VM's requests use, on whichever host it runs: the
    /// first, and how many (see [`vm_tags`]).
    pub tags: (u16, u16),
}

/// The tags of the VM of binding `binding` of `bindings`: a range of its
/// own (at most 32), so that no two VMs share a tag on any host they meet
/// on, and none is the last tag, the host's own for its enumerations.
/// `None` past 1,023 bindings.
pub fn vm_tags(binding: usize, bindings: usize) -> Option<(u16, u16)> {
    let count = MAX_TAGS_PER_VM.min((TAGS - 1) / bindings.max(1));
    (count > 0 && binding < bindings).then(|| ((binding * count) as u16, count as u16))
}

/// Marks the data the VM programs in its completion vector, apart from the
/// data of the function's own interrupts (its DMA stream).
pub const COMPLETION_DATA: u32 = 0x8000_0000;

/// A migration's completion, as it reached the host (claim 8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Indication {
    /// When it arrived (the host's clock, ns).
    pub at: u64,
    /// What it was.
    pub form: IndicationForm,
}

/// The two forms a completion indication takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndicationForm {
    /// An MSI-X interrupt: the address and data written.
    Msix {
        /// Message address.
        address: u64,
        /// Message data.
        data: u32,
    },
    /// A Vendor-Defined Type 1 message from the function.
    Message {
        /// The function, as the host sees it.
        requester: Bdf,
        /// Vendor ID in the header.
        vendor_id: u16,
        /// The 32-bit word it carries.
        word: u32,
    },
}

/// The indications a host keeps (one per migration to it).
const MAX_INDICATIONS: usize = 4096;

/// How a host model behaves.
#[derive(Debug, Clone, PartialEq)]
pub struct HostConfig {
    /// The requester ID it uses (in its own domain).
    pub requester: Bdf,
    /// The functions bound to it; writes go to each in turn.
    pub targets: Vec<HostTarget>,
    /// Bytes per write (a multiple of 4, at least 16).
    pub payload: usize,
    /// Writes per poll (the offered load).
    pub writes_per_poll: usize,
    /// A read-back after every this many writes (0: no reads).
    pub read_every: u64,
    /// A configuration request after every this many writes (0: none), one
    /// at a time per VM, in turn: a write of the Interrupt Line register, a
    /// read of it back, a read of the vendor and device ID. While its
    /// function migrates, a VDI answers them.
    pub config_every: u64,
    /// A register access after every this many writes (0: none), one read
    /// at a time per VM, in turn: write and read back CTRL_EXT (plain
    /// storage) and TDT0 (a doorbell), set a cause in ICS and read it from
    /// ICR (which clears on read, so only the device may answer), read
    /// STATUS (read-only), clear a bit of WUS (write 1 to clear) and read it.
    pub register_every: u64,
    /// The first configuration DW it expects (device ID << 16 | vendor ID).
    pub expect_ids: u32,
    /// Nanoseconds a read may wait for its completion (the PCIe
    /// specification allows 50 µs to 50 ms; 50 ms is the usual default).
    pub completion_timeout: u64,
    /// Writes to send in all (`u64::MAX`: no end).
    pub total_writes: u64,
    /// Writes per second at most, by the `now` polls are given (`None`: as
    /// fast as polls go), shared equally among its VMs at the start; each
    /// VM keeps its share when it migrates, and time it could not send
    /// (detached, migrating) builds up a burst of at most 64 writes.
    pub rate: Option<f64>,
    /// No new writes from this time on (nanoseconds, as `now`); what is in
    /// flight completes.
    pub until: u64,
    /// No new writes once this is requested (a run stopped early); what is
    /// in flight completes.
    pub stop: crate::Stop,
    /// Arrivals it logs with their times (0: none; see [`crate::log`]).
    pub arrival_log: usize,
}

impl Default for HostConfig {
    fn default() -> Self {
        HostConfig {
            requester: Bdf(0),
            targets: vec![HostTarget {
                bar: 0xfe00_0000,
                data: 0,
                region: 0x1_0000 - crate::MSIX_TABLE_BYTES as u64,
                stream: 1,
                dma_stream: 2,
                id: Bdf(0x0100),
                msi: None,
                registers: false,
                completion_vector: None,
                tags: (0, MAX_TAGS_PER_VM as u16),
            }],
            payload: 64,
            writes_per_poll: 4,
            read_every: 8,
            config_every: 32,
            register_every: 16,
            expect_ids: 0x10c9_8086,
            completion_timeout: 50_000_000,
            total_writes: u64::MAX,
            rate: None,
            until: u64::MAX,
            stop: crate::Stop::default(),
            arrival_log: 0,
        }
    }
}

/// A read in flight.
#[derive(Debug, Clone, Copy)]
struct Outstanding {
    /// The write sequence number it expects (or a configuration marker).
    seq: u64,
    /// When it was sent.
    sent_at: u64,
    /// Time its timeout clock stood still (its host's core was stalled).
    frozen: u64,
    /// Timed out: its tag stays taken until the late completion comes (or
    /// [`LATE_TAG_HELD_NS`] pass), so that completion cannot be taken for
    /// a newer request's.
    late: bool,
    /// The fabric's stalls that had ended then (see
    /// [`HostModel::with_stall_clock`]; a read sent during a stall is
    /// excused all of it).
    stalled_at: u64,
}

/// One VM's traffic with its function: what moves with the VM when it
/// migrates to another host (its stream positions, its reads in flight).
#[derive(Debug, Clone)]
pub struct Vm {
    /// Its function, as the current host sees it.
    pub target: HostTarget,
    /// Paces its writes: its share of its first host's rate.
    pacer: Pacer,
    next_seq: u64,
    dma: StreamCheck,
    /// Per tag of its range, the read in flight with it.
    outstanding: Vec<Option<Outstanding>>,
    in_flight: usize,
    next_tag: u16,
    /// Requests sent to its function (writes and reads), over its life.
    pub requests_sent: u64,
    /// TLPs from its function received (DMA writes and completions), over
    /// its life.
    pub received: u64,
    /// Its counts, published for an orchestrator on another core.
    published: Arc<VmCounters>,
    detached: bool,
    /// The Interrupt Line value it wrote last.
    line: u8,
    /// Whether it programmed its function's MSI-X table on this host.
    msix_programmed: bool,
    /// Whether it set MSI-X Enable in its function's capability (once: the
    /// bit is the function's state and moves with it).
    msix_enabled: bool,
    /// Its next configuration request (an index into the cycle), and
    /// whether one is in flight.
    config_step: u8,
    config_in_flight: bool,
    /// Its register accesses: the next step of the cycle, the last value
    /// written, what it expects WUS to hold, the read to send next (offset,
    /// expected value), and the expected value of the one in flight.
    register_step: u8,
    register_value: u32,
    wus: u32,
    register_read: Option<(u32, u32)>,
    register_expect: Option<u32>,
    /// A read of its function's IDs is asked for.
    probe: bool,
}

/// Tags a VM owns at most, so its reads in flight can move with it.
const MAX_TAGS_PER_VM: usize = 32;
/// The sequence numbers outstanding configuration requests are kept under:
/// a read of the IDs, a read of the Interrupt Line, a write of it.
const CONFIG_IDS: u64 = u64::MAX;
const CONFIG_LINE: u64 = u64::MAX - 1;
const CONFIG_WRITE: u64 = u64::MAX - 2;
/// The sequence number a register read is kept under.
const REGISTER: u64 = u64::MAX - 3;
/// The sequence number the write setting MSI-X Enable is kept under.
const MSIX_ENABLE: u64 = u64::MAX - 4;
/// The Interrupt Line register (byte 0 of the DW at 0x3c, PCIe Base
/// Specification §7.5.1.1.13): read-write, no effect on the function.
const INTERRUPT_LINE: u16 = 0x3c;
const TAGS: usize = 1024;

impl Vm {
    fn new(target: HostTarget, rate: Option<f64>) -> Vm {
        Vm {
            target,
            pacer: Pacer::new(rate),
            next_seq: 0,
            dma: StreamCheck::default(),
            outstanding: vec![None; usize::from(target.tags.1.max(1))],
            in_flight: 0,
            next_tag: 0,
            requests_sent: 0,
            received: 0,
            published: Arc::new(VmCounters::default()),
            detached: false,
            line: 0,
            msix_programmed: false,
            msix_enabled: false,
            config_step: 0,
            config_in_flight: false,
            register_step: 0,
            register_value: 0,
            wus: registers::WUS_RESET,
            register_read: None,
            register_expect: None,
            probe: false,
        }
    }

    /// Its first tag.
    fn tag_base(&self) -> usize {
        usize::from(self.target.tags.0)
    }

    /// How many tags it has.
    fn tag_count(&self) -> usize {
        self.outstanding.len()
    }

    fn owns(&self, tag: usize) -> bool {
        tag.wrapping_sub(self.tag_base()) < self.tag_count()
    }

    /// Reads not yet completed.
    pub fn reads_in_flight(&self) -> usize {
        self.in_flight
    }

    /// Its counts as they are published (they follow the VM from host to
    /// host).
    pub fn counters(&self) -> Arc<VmCounters> {
        self.published.clone()
    }

    fn count_received(&mut self) {
        self.received += 1;
        self.published
            .received
            .store(self.received, Ordering::Release);
    }

    fn count_sent(&mut self) {
        self.requests_sent += 1;
        self.published
            .sent
            .store(self.requests_sent, Ordering::Release);
    }

    fn set_detached(&mut self, detached: bool) {
        self.detached = detached;
        self.published.detached.store(detached, Ordering::Release);
    }
}

/// A host's enumerations, readable from any thread.
#[derive(Debug, Default)]
pub struct EnumerationStatus {
    /// Enumerations whose first pass finished.
    pub passes: AtomicU64,
    /// An enumeration may still send, or has a request unanswered: the
    /// instantiation it uses must stay until this clears.
    pub busy: AtomicBool,
}

/// A VM's counts, readable from any thread.
#[derive(Debug, Default)]
pub struct VmCounters {
    /// TLPs received from its function.
    pub received: AtomicU64,
    /// Requests sent to its function.
    pub sent: AtomicU64,
    /// Whether it is stopped (sends nothing more until resumed).
    pub detached: AtomicBool,
    /// Its requests that were given up on: no completion within the
    /// completion timeout.
    pub timeouts: AtomicU64,
}

/// Control of a host's VMs, from a migration orchestrator.
#[derive(Debug)]
pub enum HostCommand {
    /// Stop the VM with this write stream issuing requests (the hypervisor
    /// stops it); it keeps receiving.
    Detach {
        /// Its write stream.
        stream: u32,
    },
    /// Hand the VM over once it has received this many TLPs from its
    /// function over its life (all that passed the fabric's pause point).
    Handover {
        /// Its write stream.
        stream: u32,
        /// TLPs it must have received first.
        after_received: u64,
    },
    /// Run this VM here, its function's BAR at `bar` and its ID `id` in
    /// this host's domain.
    Attach {
        /// The VM.
        vm: Box<Vm>,
        /// Its function's BAR here.
        bar: u64,
        /// Its function's ID here.
        id: Bdf,
    },
    /// Let a detached VM issue requests again (a migration was abandoned);
    /// a hand-over of it not yet made is called off.
    Resume {
        /// Its write stream.
        stream: u32,
    },
    /// Have the VM read its function's IDs soon: a request by the routes
    /// in force now, behind everything it sent before (the fabric learns
    /// from it that nothing routed the old way is still on its way).
    Probe {
        /// Its write stream.
        stream: u32,
    },
    /// Enumerate and use this instantiation of a function a VM migration
    /// to this host prepares (see [`crate::enumerate`]), until
    /// [`HostCommand::EndEnumeration`].
    Enumerate(Instantiation),
    /// Stop using the instantiation enumerated: the switch-over came, or
    /// the migration was abandoned.
    EndEnumeration,
}

/// The tag of the enumeration's request in flight: the last of the tag
/// space, past every VM's range (see [`vm_tags`]).
const ENUMERATION_TAG: u16 = (TAGS - 1) as u16;

/// Enumeration requests a host keeps the record of.
const ENUMERATION_LOG: usize = 8192;

/// A host: sequence-numbered writes into its functions' BARs, reads of
/// what it wrote, checks of the functions' DMA and of every completion.
/// Each bound function is driven by a [`Vm`] that can migrate to another
/// host model.
pub struct HostModel<P> {
    config: HostConfig,
    port: P,
    edge: Edge,
    /// The time of the current poll.
    now: u64,
    /// The time of the previous poll.
    last_poll: Option<u64>,
    /// Time its reads' clocks were stopped (see `thaw`).
    frozen_ns: u64,
    fabric_stalls: Option<Arc<lcore::StallClock>>,
    round_trips: Histogram<u64>,
    /// Writes sent in all.
    writes: u64,
    vms: Vec<Vm>,
    integrity: Integrity,
    interrupts: u64,
    messages: u64,
    indications: Vec<Indication>,
    indications_received: u64,
    log: crate::ArrivalLog,
    config_reads: u64,
    config_writes: u64,
    register_reads: u64,
    tlp: Vec<u8>,
    /// A write's payload, filled in place: a fresh zeroed 4 KiB array a
    /// write cost a fifth of a run's instructions.
    payload: Vec<u8>,
    control: Option<(Consumer<HostCommand>, Producer<Box<Vm>>)>,
    handovers: Vec<(u32, u64)>,
    enumeration: Option<Enumeration>,
    /// Its enumerations' progress, for an orchestrator.
    enumerated: Arc<EnumerationStatus>,
    probed: Vec<Probed>,
}

impl<P> std::fmt::Debug for HostModel<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostModel")
            .field("writes", &self.writes)
            .field("integrity", &self.integrity)
            .finish()
    }
}

impl<P: Port> HostModel<P> {
    /// A host on `port`, building frames in `pool`.
    pub fn new(config: HostConfig, port: P, pool: FramePool) -> HostModel<P> {
        // Room for a write of the payload, or of the MSI-X entries up to a
        // completion vector.
        let entries = config
            .targets
            .iter()
            .filter_map(|t| t.completion_vector)
            .map(|n| 16 * (n as usize + 1))
            .max()
            .unwrap_or(16);
        let edge = Edge::new(pool).logging_sent(config.arrival_log);
        HostModel {
            log: crate::ArrivalLog::with_capacity(config.arrival_log),
            tlp: vec![0u8; 16 + config.payload.max(entries)],
            payload: vec![0u8; config.payload],
            // The host's rate is its VMs' together; each VM keeps its share
            // wherever it migrates, as its workload would.
            vms: {
                let share = config.rate.map(|r| r / config.targets.len().max(1) as f64);
                config.targets.iter().map(|&t| Vm::new(t, share)).collect()
            },
            config,
            port,
            edge,
            now: 0,
            last_poll: None,
            frozen_ns: 0,
            fabric_stalls: None,
            // 1 ns to 60 s, three significant digits: sized once, so
            // recording never allocates.
            round_trips: Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("valid bounds"),
            writes: 0,
            integrity: Integrity::default(),
            interrupts: 0,
            messages: 0,
            indications: Vec::with_capacity(64),
            indications_received: 0,
            config_reads: 0,
            config_writes: 0,
            register_reads: 0,
            control: None,
            handovers: Vec::new(),
            enumeration: None,
            enumerated: Arc::new(EnumerationStatus::default()),
            probed: Vec::new(),
        }
    }

    /// Runs a reliable link over its port, as a PCIe link runs between a
    /// host and its switch: the fabric's credits then pace it, and what it
    /// cannot send yet waits with it.
    pub fn with_link(
        &mut self,
        config: fabric::link::LinkConfig,
    ) -> Result<(), fabric::link::LinkConfigError> {
        self.edge.with_link(config)
    }

    /// Reads the stalls of the fabric's core from `clock`, so that a
    /// completion timeout the fabric's core being kept from running
    /// explains is counted as such too
    /// ([`Integrity::completion_timeouts_in_stalls`]).
    pub fn with_stall_clock(&mut self, clock: Arc<lcore::StallClock>) {
        self.fabric_stalls = Some(clock);
    }

    /// Takes VM control from `commands` and hands VMs over on `handed`.
    pub fn with_control(&mut self, commands: Consumer<HostCommand>, handed: Producer<Box<Vm>>) {
        self.control = Some((commands, handed));
    }

    /// What it has seen.
    pub fn integrity(&self) -> &Integrity {
        &self.integrity
    }

    /// Nanoseconds from sending each completed request (reads and
    /// configuration requests) to its completion's arrival, by the clock
    /// polls are given.
    pub fn round_trips(&self) -> &Histogram<u64> {
        &self.round_trips
    }

    /// Writes sent.
    pub fn writes(&self) -> u64 {
        self.writes
    }

    /// Reads not yet completed.
    pub fn reads_in_flight(&self) -> usize {
        self.vms.iter().map(|v| v.in_flight).sum()
    }

    /// Memory writes that were not tracked DMA (interrupts).
    pub fn interrupts(&self) -> u64 {
        self.interrupts
    }

    /// Configuration reads completed (by the function, or by a VDI while
    /// the function moved).
    pub fn config_reads(&self) -> u64 {
        self.config_reads
    }

    /// Configuration writes completed.
    pub fn config_writes(&self) -> u64 {
        self.config_writes
    }

    /// Register reads completed (each checked).
    pub fn register_reads(&self) -> u64 {
        self.register_reads
    }

    /// Messages received (a VDI's completion indication among them).
    pub fn messages(&self) -> u64 {
        self.messages
    }

    /// Completion indications received, in order (the first
    /// MAX_INDICATIONS of them).
    pub fn indications(&self) -> &[Indication] {
        &self.indications
    }

    /// What it received, with the times (if its config asked for a log).
    pub fn arrivals(&self) -> &crate::ArrivalLog {
        &self.log
    }

    /// What it sent, with the times it was queued (if its config asked for
    /// a log of arrivals).
    pub fn sent(&self) -> &crate::ArrivalLog {
        &self.edge.sent
    }

    /// Completion indications received in all.
    pub fn indications_received(&self) -> u64 {
        self.indications_received
    }

    /// Every enumeration request it made and what came of it, in order
    /// (the first [`ENUMERATION_LOG`]).
    pub fn enumeration_log(&self) -> &[Probed] {
        &self.probed
    }

    /// Its enumerations' progress, as an orchestrator on another core
    /// reads it.
    pub fn enumerations(&self) -> Arc<EnumerationStatus> {
        self.enumerated.clone()
    }

    /// Publishes whether an enumeration may still send or be answered.
    fn publish_enumeration(&self) {
        let busy = self.enumeration.as_ref().is_some_and(|e| !e.idle());
        // Stored on a change only: an orchestrator's core reads the line.
        if self.enumerated.busy.load(Ordering::Relaxed) != busy {
            self.enumerated.busy.store(busy, Ordering::Release);
        }
    }

    fn log_probe(&mut self, record: Probed) {
        if self.probed.len() < ENUMERATION_LOG {
            self.probed.push(record);
        }
        let first_pass = self.enumeration.as_ref().is_some_and(|e| e.enumerated());
        if record.enumerating && first_pass {
            self.enumerated.passes.fetch_add(1, Ordering::Release);
        }
    }

    /// Takes the completion of the enumeration's request in flight.
    fn enumeration_completed(&mut self, t: &Tlp<&[u8]>) {
        let value = t
            .payload()
            .get(..4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
        let now = self.now;
        let record = self
            .enumeration
            .as_mut()
            .and_then(|e| e.completed(Some(t.status()), value, now));
        if let Some(record) = record {
            self.log_probe(record);
        }
    }

    /// Sends the enumeration's next request, if one may go.
    fn send_enumeration(&mut self, now: u64) {
        let Some(e) = &self.enumeration else {
            return;
        };
        let Some(probe) = e.next() else {
            return;
        };
        let target = e.target();
        let requester = self.config.requester;
        let built = match probe {
            Probe::Config(at) | Probe::Capability(at) => tlp::build::config_request(
                &mut self.tlp,
                Kind::CfgRd0,
                requester,
                ENUMERATION_TAG,
                target.id,
                at,
                &[],
            ),
            Probe::Read(at) => {
                let access = MemAccess::dwords(target.bar + at as u64, 1);
                memory_read(&mut self.tlp, requester, ENUMERATION_TAG, access)
            }
            Probe::Write(at, value) => {
                let access = MemAccess::dwords(target.bar + at as u64, 1);
                memory_write(&mut self.tlp, requester, 0, access, &value.to_le_bytes())
            }
        };
        let Ok(n) = built else {
            return;
        };
        if !self.edge.push(&self.tlp[..n], now) {
            return;
        }
        let record = self.enumeration.as_mut().and_then(|e| e.sent(probe, now));
        if let Some(record) = record {
            self.log_probe(record);
        }
    }

    /// Gives up on an enumeration request whose completion is overdue.
    fn enumeration_timeouts(&mut self, now: u64) {
        let overdue = self
            .enumeration
            .as_ref()
            .and_then(Enumeration::in_flight)
            .is_some_and(|(_, sent)| now.saturating_sub(sent) > self.config.completion_timeout);
        if overdue {
            let record = self
                .enumeration
                .as_mut()
                .and_then(|e| e.completed(None, None, now));
            if let Some(record) = record {
                self.integrity.completion_timeouts += 1;
                self.log_probe(record);
            }
        }
    }

    fn indicated(&mut self, form: IndicationForm) {
        self.indications_received += 1;
        if self.indications.len() < MAX_INDICATIONS {
            self.indications.push(Indication { at: self.now, form });
        }
    }

    /// The VMs it runs now.
    pub fn vms(&self) -> &[Vm] {
        &self.vms
    }

    /// Whether it has sent everything and nothing is outstanding.
    pub fn done(&self) -> bool {
        (self.writes >= self.config.total_writes || self.vms.is_empty())
            && self.reads_in_flight() == 0
            && self.edge.backlog() == 0
    }

    fn slot_address(&self, vm: &Vm, seq: u64) -> u64 {
        let t = &vm.target;
        let slots = (t.region / self.config.payload as u64).max(1);
        t.bar + t.data + (seq % slots) * self.config.payload as u64
    }

    fn on_tlp(&mut self, bytes: &[u8]) {
        let Ok(t) = Tlp::new_checked(bytes) else {
            self.integrity.data_mismatches += 1;
            return;
        };
        self.log.record(self.now, &t);
        match t.kind() {
            Some(Kind::MWr) if t.payload().len() == 4 => {
                // An MSI-X interrupt; its data names the function's DMA
                // stream, so it counts toward the VM it is for.
                let data = u32::from_le_bytes(t.payload().try_into().unwrap_or_default());
                if data & COMPLETION_DATA != 0 {
                    // A VDI's completion vector: not the function's own.
                    self.indicated(IndicationForm::Msix {
                        address: t.address(),
                        data,
                    });
                    return;
                }
                // Counted, not tracked: see the device's side.
                if let Some(vm) = self.vms.iter_mut().find(|v| v.target.dma_stream == data) {
                    vm.count_received();
                }
                self.interrupts += 1;
            }
            Some(Kind::MWr) => {
                let stamp = stream::read(t.payload());
                let vm = stamp
                    .and_then(|(s, _, _)| self.vms.iter_mut().find(|v| v.target.dma_stream == s));
                match (stamp, vm) {
                    (Some((_, seq, intact)), Some(vm)) => {
                        vm.count_received();
                        vm.dma.arrive(seq, &mut self.integrity);
                        if !intact {
                            self.integrity.data_mismatches += 1;
                        }
                    }
                    _ => self.interrupts += 1,
                }
            }
            Some(Kind::CplD | Kind::Cpl) => {
                let tag = t.tag() as usize;
                let mine = t.requester_id() == self.config.requester;
                let enumerating = self
                    .enumeration
                    .as_ref()
                    .is_some_and(|e| e.in_flight().is_some());
                if mine && t.tag() == ENUMERATION_TAG && enumerating {
                    self.enumeration_completed(&t);
                    return;
                }
                let Some(vm) = self.vms.iter_mut().find(|v| mine && v.owns(tag)) else {
                    self.integrity.unexpected_completions += 1;
                    return;
                };
                vm.count_received();
                let slot = tag - vm.tag_base();
                let Some(Outstanding {
                    seq, sent_at, late, ..
                }) = vm.outstanding[slot].take()
                else {
                    self.integrity.unexpected_completions += 1;
                    return;
                };
                if late {
                    // Counted as timed out already; its tag is free again.
                    vm.in_flight -= 1;
                    self.integrity.unexpected_completions += 1;
                    return;
                }
                self.round_trips
                    .saturating_record(self.now.saturating_sub(sent_at).max(1));
                vm.in_flight -= 1;
                self.integrity.delivered += 1;
                if seq == REGISTER {
                    let dw = t
                        .payload()
                        .get(..4)
                        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
                    let expected = vm.register_expect.take();
                    if t.status() != CplStatus::Sc || dw.is_none() || dw != expected {
                        self.integrity.data_mismatches += 1;
                    }
                    self.register_reads += 1;
                    return;
                }
                if seq == MSIX_ENABLE {
                    vm.config_in_flight = false;
                    self.config_writes += 1;
                    if t.status() != CplStatus::Sc || !t.payload().is_empty() {
                        self.integrity.data_mismatches += 1;
                    }
                    return;
                }
                if seq >= CONFIG_WRITE {
                    vm.config_in_flight = false;
                    let dw = t
                        .payload()
                        .get(..4)
                        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
                    let ok = t.status() == CplStatus::Sc
                        && match seq {
                            CONFIG_IDS => dw == Some(self.config.expect_ids),
                            CONFIG_LINE => dw.map(|d| d as u8) == Some(vm.line),
                            _ => t.payload().is_empty(),
                        };
                    if seq == CONFIG_WRITE {
                        self.config_writes += 1;
                    } else {
                        self.config_reads += 1;
                    }
                    if !ok {
                        self.integrity.data_mismatches += 1;
                    }
                    return;
                }
                let stream = vm.target.stream;
                let ok = t.status() == CplStatus::Sc
                    && matches!(stream::read(t.payload()), Some((s, q, true)) if s == stream && q == seq);
                if !ok {
                    self.integrity.data_mismatches += 1;
                }
            }
            Some(Kind::Msg | Kind::MsgD) => {
                self.messages += 1;
                let fields = t.message_fields();
                // Vendor-Defined Type 1 (PCIe Base Specification §2.2.8.6):
                // the vendor ID in bytes 10-11 of the header, the word after.
                if t.message_code().byte() == 0x7f {
                    self.indicated(IndicationForm::Message {
                        requester: t.requester_id(),
                        vendor_id: u16::from_be_bytes([fields[2], fields[3]]),
                        word: u32::from_be_bytes([fields[4], fields[5], fields[6], fields[7]]),
                    });
                }
            }
            _ => {}
        }
    }

    /// Programs MSI-X table entry 0 of each running VM's function that is
    /// not programmed from this host yet: message address, data (the VM's
    /// DMA stream), vector control unmasked, in one write.
    fn program_msix(&mut self) {
        for i in 0..self.vms.len() {
            let vm = &self.vms[i];
            let Some(address) = vm
                .target
                .msi
                .filter(|_| !vm.msix_programmed && !vm.detached)
            else {
                continue;
            };
            // Entry 0 for the function's interrupts; and, with a completion
            // vector, the entries up to it in the same write: those between
            // masked, the vector itself with the completion's data.
            let last = vm.target.completion_vector.unwrap_or(0) as usize;
            let mut entries = [0u8; 16 * 256];
            let entries = &mut entries[..16 * (last + 1)];
            for (k, entry) in entries.chunks_exact_mut(16).enumerate() {
                let data = match k {
                    0 => vm.target.dma_stream,
                    k if k == last => COMPLETION_DATA | vm.target.dma_stream,
                    _ => {
                        entry[12] = 1; // Vector Control: masked
                        continue;
                    }
                };
                entry[..8].copy_from_slice(&address.to_le_bytes());
                entry[8..12].copy_from_slice(&data.to_le_bytes());
            }
            let table = vm.target.bar + vm.target.data + vm.target.region;
            let Ok(n) = memory_write(
                &mut self.tlp,
                self.config.requester,
                0,
                MemAccess::dwords(table, (4 * (last + 1)) as u16),
                entries,
            ) else {
                continue;
            };
            if !self.edge.push(&self.tlp[..n], self.now) {
                return;
            }
            let vm = &mut self.vms[i];
            vm.msix_programmed = true;
            // A request to its function like any other (hand-overs count
            // them), though not a tracked one.
            vm.count_sent();
        }
        // With its table programmed, each VM enables MSI-X, once.
        for i in 0..self.vms.len() {
            let vm = &self.vms[i];
            if vm.msix_programmed && !vm.msix_enabled && !vm.config_in_flight && !vm.detached {
                self.send_request(i, MSIX_ENABLE, self.now);
            }
        }
    }

    /// Sends the next write, for the next running VM in turn; returns the
    /// VM and the write's sequence number in its stream.
    /// Sends a write of the next VM in turn that is attached and whose
    /// pace allows one by `now`.
    fn send_write(&mut self, now: u64) -> Option<(usize, u64)> {
        let n = self.vms.len();
        let start = self.writes as usize;
        let i = (0..n).map(|k| (start + k) % n).find(|&i| {
            let vm = &mut self.vms[i];
            !vm.detached && vm.next_seq < vm.pacer.allowed(now, vm.next_seq)
        })?;
        let vm = &self.vms[i];
        let seq = vm.next_seq;
        let payload = self.config.payload;
        let access = MemAccess::dwords(self.slot_address(vm, seq), (payload / 4) as u16);
        let data = &mut self.payload[..payload];
        stream::fill(data, vm.target.stream, seq);
        let n = memory_write(&mut self.tlp, self.config.requester, 0, access, data).ok()?;
        if !self.edge.push(&self.tlp[..n], self.now) {
            return None;
        }
        self.writes += 1;
        let vm = &mut self.vms[i];
        vm.next_seq += 1;
        vm.count_sent();
        self.integrity.sent += 1;
        Some((i, seq))
    }

    fn send_request(&mut self, i: usize, seq: u64, now: u64) -> bool {
        let vm = &self.vms[i];
        if vm.in_flight >= vm.tag_count() {
            return false;
        }
        let mut slot = vm.next_tag as usize;
        while vm.outstanding[slot].is_some() {
            slot = (slot + 1) % vm.tag_count();
        }
        let tag = (vm.tag_base() + slot) as u16;
        let built = if seq == REGISTER {
            vm.register_read.and_then(|(offset, _)| {
                let access = MemAccess::dwords(vm.target.bar + offset as u64, 1);
                memory_read(&mut self.tlp, self.config.requester, tag, access).ok()
            })
        } else if seq == MSIX_ENABLE {
            // Message Control (bytes 2–3) with MSI-X Enable; the capability
            // ID and next pointer in bytes 0–1 are read-only.
            let data = [0x11, 0xa0, 0x09, 0x80];
            tlp::build::config_request(
                &mut self.tlp,
                Kind::CfgWr0,
                self.config.requester,
                tag,
                vm.target.id,
                crate::MSIX_CAPABILITY,
                &data,
            )
            .ok()
        } else if seq >= CONFIG_WRITE {
            let (kind, register, data) = match seq {
                CONFIG_IDS => (Kind::CfgRd0, 0, &[][..]),
                CONFIG_LINE => (Kind::CfgRd0, INTERRUPT_LINE, &[][..]),
                _ => (
                    Kind::CfgWr0,
                    INTERRUPT_LINE,
                    &[vm.line.wrapping_add(1), 0, 0, 0][..],
                ),
            };
            tlp::build::config_request(
                &mut self.tlp,
                kind,
                self.config.requester,
                tag,
                vm.target.id,
                register,
                data,
            )
            .ok()
        } else {
            let dws = (self.config.payload / 4) as u16;
            let access = MemAccess::dwords(self.slot_address(vm, seq), dws);
            memory_read(&mut self.tlp, self.config.requester, tag, access).ok()
        };
        let Some(n) = built else {
            return false;
        };
        if !self.edge.push(&self.tlp[..n], self.now) {
            return false;
        }
        let vm = &mut self.vms[i];
        if seq == REGISTER {
            vm.register_expect = vm.register_read.take().map(|(_, expect)| expect);
        } else if seq == MSIX_ENABLE {
            vm.config_in_flight = true;
            vm.msix_enabled = true;
        } else if seq >= CONFIG_WRITE {
            vm.config_in_flight = true;
            vm.config_step = (vm.config_step + 1) % 3;
            if seq == CONFIG_WRITE {
                vm.line = vm.line.wrapping_add(1);
            }
        }
        vm.outstanding[slot] = Some(Outstanding {
            seq,
            sent_at: now,
            frozen: 0,
            late: false,
            stalled_at: self.fabric_stalls.as_ref().map_or(0, |c| c.stalled_ns()),
        });
        vm.in_flight += 1;
        vm.count_sent();
        vm.next_tag = ((slot + 1) % vm.tag_count()) as u16;
        self.integrity.sent += 1;
        true
    }

    /// Sends the ID reads asked for, one per VM whose configuration
    /// request slot is free (its cycle is left where it was).
    fn send_probes(&mut self, now: u64) {
        for i in 0..self.vms.len() {
            let vm = &self.vms[i];
            if !vm.probe || vm.detached || vm.config_in_flight {
                continue;
            }
            let step = vm.config_step;
            if self.send_request(i, CONFIG_IDS, now) {
                let vm = &mut self.vms[i];
                vm.config_step = step;
                vm.probe = false;
            }
        }
    }

    /// Starts VM `i`'s next register access: its write, if the step has
    /// one, goes now; its read waits in `register_read` for a tag.
    fn start_register_step(&mut self, i: usize) {
        use registers::{CTRL_EXT, ICR, ICS, STATUS, STATUS_VALUE, TDT0, WUS};
        let vm = &self.vms[i];
        let v = vm.register_value.wrapping_add(1);
        let (write, read) = match vm.register_step % 5 {
            0 => (Some((CTRL_EXT, v)), (CTRL_EXT, v)),
            1 => (Some((TDT0, v)), (TDT0, v)),
            2 => (Some((ICS, 1 << (v % 16))), (ICR, 1 << (v % 16))),
            3 => (None, (STATUS, STATUS_VALUE)),
            _ => (Some((WUS, 1 << (v % 4))), (WUS, vm.wus & !(1 << (v % 4)))),
        };
        if let Some((offset, value)) = write {
            let access = MemAccess::dwords(vm.target.bar + offset as u64, 1);
            let Ok(n) = memory_write(
                &mut self.tlp,
                self.config.requester,
                0,
                access,
                &value.to_le_bytes(),
            ) else {
                return;
            };
            if !self.edge.push(&self.tlp[..n], self.now) {
                return;
            }
        }
        let vm = &mut self.vms[i];
        if write.is_some() {
            // A request to its function (hand-overs count it), checked
            // through the read that follows.
            vm.count_sent();
            vm.register_value = v;
        }
        if read.0 == WUS {
            vm.wus = read.1;
        }
        vm.register_step = (vm.register_step + 1) % 5;
        vm.register_read = Some(read);
    }

    /// Applies VM control and completes handovers that became possible.
    fn control(&mut self) {
        let Some((commands, handed)) = &mut self.control else {
            return;
        };
        while let Some(command) = commands.pop() {
            match command {
                HostCommand::Detach { stream } => {
                    if let Some(vm) = self.vms.iter_mut().find(|v| v.target.stream == stream) {
                        vm.set_detached(true);
                    }
                }
                HostCommand::Probe { stream } => {
                    if let Some(vm) = self.vms.iter_mut().find(|v| v.target.stream == stream) {
                        vm.probe = true;
                    }
                }
                HostCommand::Resume { stream } => {
                    // A hand-over asked for and not yet made is called off:
                    // the VM runs on here.
                    self.handovers.retain(|&(s, _)| s != stream);
                    if let Some(vm) = self.vms.iter_mut().find(|v| v.target.stream == stream) {
                        vm.set_detached(false);
                    }
                }
                HostCommand::Handover {
                    stream,
                    after_received,
                } => self.handovers.push((stream, after_received)),
                HostCommand::Enumerate(target) => {
                    // Room for the record once, off the path of its polls.
                    if self.probed.capacity() == 0 {
                        self.probed.reserve_exact(ENUMERATION_LOG);
                    }
                    self.enumeration = Some(Enumeration::new(target));
                    self.enumerated.busy.store(true, Ordering::Release);
                }
                HostCommand::EndEnumeration => {
                    if let Some(e) = &mut self.enumeration {
                        e.stop();
                    }
                }
                HostCommand::Attach { mut vm, bar, id } => {
                    vm.target.bar = bar;
                    vm.target.id = id;
                    // Its interrupts are to reach it here.
                    vm.msix_programmed = false;
                    vm.set_detached(false);
                    self.vms.push(*vm);
                }
            }
        }
        let vms = &mut self.vms;
        self.handovers.retain(|&(stream, after)| {
            let Some(i) = vms.iter().position(|v| v.target.stream == stream) else {
                return false;
            };
            // What passed the pause point toward it (the VDI's answers to
            // its configuration reads included) has all arrived; reads still
            // in flight move with it.
            if vms[i].received < after {
                return true;
            }
            let vm = vms.remove(i);
            // The ring is sized for every VM at once: a push cannot fail.
            handed.push(Box::new(vm)).is_err()
        });
    }
}

impl<P> HostModel<P> {
    /// Stops its reads' completion-timeout clocks for the time its core was
    /// kept from running. The device model shares that core, so a read sent
    /// just before such a stall has had no chance to be answered; the
    /// hardware both stand in for does not stall with them. A stall of the
    /// fabric's own core still counts (see the run's long-round figures).
    fn thaw(&mut self, now: u64) {
        let gap = self.last_poll.map_or(0, |last| now.saturating_sub(last));
        self.last_poll = Some(now);
        if gap <= FROZEN_AFTER_NS {
            return;
        }
        let lost = gap - FROZEN_AFTER_NS;
        self.frozen_ns += lost;
        for vm in &mut self.vms {
            for read in vm.outstanding.iter_mut().flatten() {
                read.frozen += lost;
            }
        }
    }

    /// Time its reads' clocks were stopped because its core was kept from
    /// running, in nanoseconds.
    pub fn frozen_ns(&self) -> u64 {
        self.frozen_ns
    }
}

impl<P: Port + Send + 'static> Task for HostModel<P> {
    fn name(&self) -> &str {
        "host"
    }

    fn poll(&mut self, now: u64) -> usize {
        self.now = now;
        self.thaw(now);
        // Control first: a VM attached here is in place before anything the
        // fabric released toward it after the attach was sent can arrive.
        self.control();
        let mut done = 0;
        // A completion still queued behind a full burst has arrived: reads
        // are judged late only once what came is taken (up to a bound, so a
        // flood cannot starve the rest of the poll).
        let mut caught_up = false;
        for _ in 0..RX_BURSTS_BEFORE_TIMEOUTS {
            let (tlps, bad, full) = self.edge.receive(&mut self.port, now);
            self.integrity.data_mismatches += bad;
            done += tlps.len();
            for t in &tlps {
                self.on_tlp(t);
            }
            self.edge.recycle(tlps);
            if !full {
                caught_up = true;
                break;
            }
        }
        self.control();
        // Reads that waited too long.
        for vm in self.vms.iter_mut().filter(|_| caught_up) {
            if vm.in_flight == 0 {
                continue;
            }
            for slot in vm.outstanding.iter_mut() {
                if let Some(Outstanding {
                    seq,
                    sent_at,
                    frozen,
                    stalled_at,
                    late,
                }) = *slot
                {
                    let waited = now.saturating_sub(sent_at).saturating_sub(frozen);
                    if late {
                        if waited > LATE_TAG_HELD_NS {
                            // Lost for good: the tag is given up on.
                            *slot = None;
                            vm.in_flight -= 1;
                        }
                        continue;
                    }
                    if waited > self.config.completion_timeout {
                        if let Some(read) = slot.as_mut() {
                            read.late = true;
                        }
                        // Would it have come in time had the fabric's core
                        // not been stalled meanwhile?
                        let stalls = self
                            .fabric_stalls
                            .as_ref()
                            .map_or(0, |c| c.stalled_ns_by(now));
                        let stalled = stalls.saturating_sub(stalled_at);
                        if waited.saturating_sub(stalled) <= self.config.completion_timeout {
                            self.integrity.completion_timeouts_in_stalls += 1;
                        }
                        vm.config_in_flight &= seq < CONFIG_WRITE && seq != MSIX_ENABLE;
                        // Not known to have arrived: set again.
                        vm.msix_enabled &= seq != MSIX_ENABLE;
                        if seq == REGISTER {
                            vm.register_expect = None;
                        }
                        vm.published.timeouts.fetch_add(1, Ordering::Release);
                        self.integrity.completion_timeouts += 1;
                    }
                }
            }
        }
        if caught_up {
            self.enumeration_timeouts(now);
        }
        if self.edge.ready() {
            self.program_msix();
            self.send_probes(now);
            self.send_enumeration(now);
            for _ in 0..self.config.writes_per_poll {
                if self.writes >= self.config.total_writes
                    || now >= self.config.until
                    || self.config.stop.requested()
                {
                    break;
                }
                let Some((vm, seq)) = self.send_write(now) else {
                    break;
                };
                done += 1;
                // The VM's own count, not the host's: with two VMs taking
                // writes in turn, an even period on the host's count would
                // give every read and configuration request to one of them.
                let count = seq;
                if self.config.read_every > 0
                    && count.is_multiple_of(self.config.read_every)
                    && self.send_request(vm, seq, now)
                {
                    done += 1;
                }
                if self.config.config_every > 0
                    && count.is_multiple_of(self.config.config_every)
                    && !self.vms[vm].config_in_flight
                {
                    let request = [CONFIG_WRITE, CONFIG_LINE, CONFIG_IDS]
                        [self.vms[vm].config_step as usize % 3];
                    if self.send_request(vm, request, now) {
                        done += 1;
                    }
                }
                let v = &self.vms[vm];
                if self.config.register_every > 0
                    && count.is_multiple_of(self.config.register_every)
                    && v.target.registers
                    && v.register_read.is_none()
                    && v.register_expect.is_none()
                {
                    self.start_register_step(vm);
                }
                let v = &self.vms[vm];
                if v.register_read.is_some()
                    && v.register_expect.is_none()
                    && self.send_request(vm, REGISTER, now)
                {
                    done += 1;
                }
            }
        }
        self.edge.flush(&mut self.port, now);
        self.publish_enumeration();
        done
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lcore::{StallClock, StallWatch};
    use pmd::{ring_link, RingPort};

    #[test]
    fn each_vm_has_tags_of_its_own_apart_from_the_hosts() {
        for bindings in [1, 2, 31, 32, 33, 100, 1023] {
            let ranges: Vec<(u16, u16)> = (0..bindings)
                .map(|b| vm_tags(b, bindings).unwrap())
                .collect();
            for (b, &(base, count)) in ranges.iter().enumerate() {
                assert!((1..=32).contains(&count), "{bindings}: {b}");
                assert!(base + count <= ENUMERATION_TAG, "{bindings}: {b}");
                if let Some(&(next, _)) = ranges.get(b + 1) {
                    assert!(base + count <= next, "{bindings}: {b} overlaps");
                }
            }
        }
        assert_eq!(vm_tags(0, 2), Some((0, 32)));
        assert_eq!(vm_tags(0, 1024), None);
        assert_eq!(vm_tags(2, 2), None);
    }

    /// A host that sends one write and one read into a link nobody answers
    /// (its far end is kept so the link stays up).
    fn unanswered() -> (HostModel<RingPort>, RingPort) {
        let (port, far) = ring_link("host", 64, 1600);
        let config = HostConfig {
            total_writes: 1,
            writes_per_poll: 1,
            read_every: 1,
            config_every: 0,
            register_every: 0,
            completion_timeout: 50_000,
            ..HostConfig::default()
        };
        let host = HostModel::new(config, port, FramePool::new(64, 1600));
        (host, far)
    }

    #[test]
    fn a_stop_request_ends_new_writes() {
        let (port, mut far) = ring_link("host", 1024, 1600);
        let config = HostConfig {
            read_every: 0,
            config_every: 0,
            register_every: 0,
            ..HostConfig::default()
        };
        let stop = config.stop.clone();
        let mut host = HostModel::new(config, port, FramePool::new(1024, 1600));
        let mut sink = Vec::new();
        let mut run = |host: &mut HostModel<RingPort>, from: u64| {
            for now in (from..from + 20).map(|k| k * 1_000) {
                host.poll(now);
                far.rx_burst(0, &mut sink, 64);
                sink.clear();
            }
        };
        run(&mut host, 0);
        let before = host.writes();
        assert!(before > 0, "it writes until stopped");
        stop.request();
        run(&mut host, 20);
        assert_eq!(host.writes(), before, "no write after the request");
    }

    #[test]
    fn a_read_does_not_age_while_its_hosts_core_is_stalled() {
        let (mut host, _far) = unanswered();
        host.poll(0);
        host.poll(1_000);
        // 1 ms without a poll: the model's core was taken from it.
        host.poll(1_001_000);
        assert_eq!(host.integrity().completion_timeouts, 0);
        assert_eq!(host.frozen_ns(), 1_000_000 - FROZEN_AFTER_NS);
        // It ages again while polled: it is 11 µs old (1 µs before the gap,
        // the 10 µs of it that count); 39 µs more make 50, which is not yet
        // late.
        let mut now = 1_001_000;
        while now < 1_001_000 + 39_000 {
            now += 1_000;
            host.poll(now);
        }
        assert_eq!(host.integrity().completion_timeouts, 0);
        host.poll(now + 1_000);
        assert_eq!(host.integrity().completion_timeouts, 1);
        assert_eq!(host.integrity().completion_timeouts_in_stalls, 0);
    }

    #[test]
    fn a_timed_out_requests_tag_waits_for_its_late_completion() {
        let (mut host, mut far) = unanswered();
        let mut now = 0;
        while host.integrity().completion_timeouts == 0 {
            host.poll(now);
            now += 1_000;
            assert!(now < 1_000_000, "the read timed out");
        }
        // Timed out, but its tag (0, the VM's first) is still taken.
        assert_eq!(host.reads_in_flight(), 1);
        // The late completion comes: counted as such, not as a newer
        // request's answer, and the tag is free again.
        let mut tlp = [0u8; 64];
        let fields = tlp::build::CplFields {
            completer: Bdf(0x0100),
            requester: Bdf(0),
            tag: 0,
            status: CplStatus::Sc,
            byte_count: 4,
            lower_address: 0,
        };
        let n = tlp::build::completion(&mut tlp, fields, &[0xee; 4]).unwrap();
        let mut frame = FramePool::new(4, 1600).alloc().unwrap();
        let mut w =
            fabric::FrameWriter::new(frame.buffer_mut(), &fabric::FrameHeader::default(), 1500)
                .unwrap();
        w.push(&tlp[..n]).unwrap();
        let len = w.finish();
        frame.set_len(len);
        assert_eq!(pmd::Port::tx_burst(&mut far, 0, &mut vec![frame]), 1);
        host.poll(now);
        assert_eq!(host.integrity().unexpected_completions, 1);
        assert_eq!(host.integrity().data_mismatches, 0);
        assert_eq!(host.reads_in_flight(), 0);
    }

    /// Polls the host every microsecond up to `until`, and the watch of the
    /// fabric's core only up to `watch_until`; gives the host's account.
    fn timeouts_with_fabric_polled_until(watch_until: u64, until: u64) -> Integrity {
        let (mut host, _far) = unanswered();
        let clock = Arc::new(StallClock::default());
        host.with_stall_clock(clock.clone());
        let mut watch = StallWatch::new(clock);
        let mut now = 0;
        while now <= until {
            if now <= watch_until {
                watch.poll(now);
            }
            host.poll(now);
            now += 1_000;
        }
        *host.integrity()
    }

    #[test]
    fn a_timeout_a_stall_of_the_fabrics_core_explains_is_told_apart() {
        let fabric_ran = timeouts_with_fabric_polled_until(u64::MAX, 60_000);
        assert_eq!(fabric_ran.completion_timeouts, 1);
        assert_eq!(fabric_ran.completion_timeouts_in_stalls, 0);
        // The fabric's core stops at 2 µs and has not come back when the
        // read times out: the stall going on explains it.
        let fabric_stalled = timeouts_with_fabric_polled_until(2_000, 60_000);
        assert_eq!(fabric_stalled.completion_timeouts, 1);
        assert_eq!(fabric_stalled.completion_timeouts_in_stalls, 1);
    }
}
