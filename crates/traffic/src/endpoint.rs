//! The endpoint model.

use crate::edge::{Edge, Pacer};
use crate::registers::{Registers, REGISTER_BLOCK};
use crate::stream::{self, Integrity, StreamCheck};
use lcore::Task;
use pmd::{FramePool, Port};
use rings::spsc::{Consumer, Producer};
use tlp::build::{
    completion, memory_write, read_byte_count, read_lower_address, CplFields, MemAccess,
};
use tlp::{Bdf, CplStatus, Kind, Tlp};

/// The Interrupt Line register's configuration offset.
const INTERRUPT_LINE: u16 = 0x3c;

/// Where the functions' MSI-X capability is in configuration space (the
/// nic template's), and its first DW: ID 0x11, next capability 0xa0,
/// Message Control with a table of ten entries and MSI-X Enable as given
/// (PCIe Base Specification §7.7.2).
pub const MSIX_CAPABILITY: u16 = 0x70;

fn msix_capability(enabled: bool) -> [u8; 4] {
    [0x11, 0xa0, 0x09, if enabled { 0x80 } else { 0x00 }]
}

/// Bytes at the end of each function's BAR that hold its MSI-X table
/// (entries of 16 bytes: message address low and high, message data, vector
/// control with the mask in bit 0 — PCIe Base Specification §7.7.2). The
/// models use entry 0.
pub const MSIX_TABLE_BYTES: usize = 0x1000;

/// One function of the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FunctionConfig {
    /// Its ID (as the device knows it: the fabric's).
    pub function: Bdf,
    /// Its BAR, as the device knows it (the fabric's address).
    pub bar: u64,
    /// Bytes of memory behind the BAR.
    pub size: usize,
    /// Where its DMA writes go (an address of its host's memory, as the
    /// host programmed it); `None` for a function that does no DMA.
    pub dma: Option<u64>,
    /// The stream number of its DMA.
    pub stream: u32,
    /// The stream number of the host's writes it expects.
    pub host_stream: u32,
    /// Where its MSI-X interrupts go before its host programs its MSI-X
    /// table (an address of its host's MSI window); `None`: it raises none
    /// until programmed.
    pub msi: Option<u64>,
    /// Whether the first [`crate::REGISTER_BLOCK`] bytes of its BAR are
    /// registers (`crate::registers`) rather than memory.
    pub registers: bool,
}

/// How an endpoint model behaves.
#[derive(Debug, Clone, PartialEq)]
pub struct EndpointConfig {
    /// Its functions.
    pub functions: Vec<FunctionConfig>,
    /// Bytes of host memory each function's DMA cycles through, a multiple
    /// of `payload`.
    pub dma_region: u64,
    /// Bytes per DMA write (a multiple of 4, at least 16).
    pub payload: usize,
    /// DMA writes per poll (over all functions, in turn).
    pub dma_per_poll: usize,
    /// DMA writes in all (`u64::MAX`: no end).
    pub total_dma: u64,
    /// DMA writes per second at most, by the `now` polls are given (`None`:
    /// as fast as polls go).
    pub rate: Option<f64>,
    /// No new DMA from this time on (nanoseconds, as `now`).
    pub until: u64,
    /// No new DMA once this is requested (a run stopped early).
    pub stop: crate::Stop,
    /// An MSI-X interrupt after every this many DMA writes of a function
    /// (0: none); its data is the function's DMA stream number.
    pub interrupt_every: u64,
    /// Its configuration space's first DW (device ID << 16 | vendor ID).
    pub ids: u32,
    /// Arrivals it logs with their times (0: none; see [`crate::log`]).
    pub arrival_log: usize,
}

impl Default for EndpointConfig {
    fn default() -> Self {
        EndpointConfig {
            functions: vec![FunctionConfig {
                function: Bdf::new(0x40, 0, 1),
                bar: 0x8001_0000,
                size: 0x1_0000,
                dma: Some(0x1_0000_0000),
                stream: 2,
                host_stream: 1,
                msi: Some(0xfee0_0000),
                registers: false,
            }],
            dma_region: 0x1_0000,
            payload: 64,
            dma_per_poll: 2,
            total_dma: u64::MAX,
            rate: None,
            until: u64::MAX,
            stop: crate::Stop::default(),
            interrupt_every: 32,
            ids: 0x10c9_8086,
            arrival_log: 0,
        }
    }
}

struct Function {
    config: FunctionConfig,
    memory: Vec<u8>,
    host: StreamCheck,
    dma_seq: u64,
    /// Stopped for a migration of its state: no DMA.
    paused: bool,
    /// TLPs addressed to it that it received, over its state's life.
    received: u64,
    /// TLPs it sent (DMA writes, completions), over its state's life.
    sent: u64,
    /// Its Interrupt Line register (configuration space 0x3c, byte 0).
    line: u8,
    /// The data of its MSI-X message (entry 0).
    msi_data: u32,
    /// Its BAR registers, if it has them.
    registers: Registers,
    /// MSI-X Enable in the capability's Message Control: a function
    /// configured with an MSI address starts enabled, one from reset does
    /// not until its host sets the bit.
    msix_enabled: bool,
}

impl Function {
    /// A function fresh from reset.
    fn new(config: FunctionConfig) -> Function {
        Function {
            config,
            memory: vec![0; config.size],
            host: StreamCheck::default(),
            dma_seq: 0,
            paused: false,
            received: 0,
            sent: 0,
            line: 0,
            msi_data: config.stream,
            registers: Registers::default(),
            msix_enabled: config.msi.is_some(),
        }
    }

    /// Reads MSI-X table entry 0 after a write to it: unmasked with an
    /// address, it is where interrupts go.
    fn reprogram(&mut self) {
        let Some(at) = self.memory.len().checked_sub(MSIX_TABLE_BYTES) else {
            return;
        };
        let Some(entry) = self.memory.get(at..at + 16) else {
            return;
        };
        let dw =
            |i: usize| u32::from_le_bytes([entry[i], entry[i + 1], entry[i + 2], entry[i + 3]]);
        let address = u64::from(dw(0)) | u64::from(dw(4)) << 32;
        let masked = dw(12) & 1 != 0;
        self.config.msi = (!masked && address != 0).then_some(address);
        self.msi_data = dw(8);
    }
}

/// Control of a device's functions, from a migration orchestrator
/// (endpoint migration: a function's state moves to another function).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndpointCommand {
    /// Stop function `function` (index) issuing DMA.
    Detach {
        /// Function index (0: PF, N: VF N).
        function: u8,
    },
    /// Move function `from`'s state (memory, streams, counts) to function
    /// `to` once `from` has received this many TLPs over its state's life;
    /// `to` stays stopped until resumed. Reports on the moved ring.
    Move {
        /// Source function index.
        from: u8,
        /// Destination function index.
        to: u8,
        /// TLPs `from` must have received first.
        after_received: u64,
    },
    /// Undo a `Move` from `from` to `to`: called off if it is still
    /// waiting, else the state moves back to `from` at once. Reported on the
    /// moved ring as a move to `from` either way (after the report of the
    /// move undone, if it was made).
    Return {
        /// The function the state left (and goes back to).
        from: u8,
        /// The function it was to move to.
        to: u8,
    },
    /// Let a function issue DMA again.
    Resume {
        /// Function index.
        function: u8,
    },
}

/// A function's state moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Moved {
    /// Where it went.
    pub to: u8,
    /// TLPs the state had sent over its life, when it moved.
    pub sent: u64,
}

/// A device: per function, memory behind its BAR that answers reads with
/// what was written, and a stream of sequence-numbered DMA writes to its host.
pub struct EndpointModel<P> {
    config: EndpointConfig,
    functions: Vec<Function>,
    port: P,
    edge: Edge,
    /// The time of the current poll.
    now: u64,
    dma_writes: u64,
    next_dma: usize,
    /// Paces what it sends to its configured rate.
    pacer: Pacer,
    integrity: Integrity,
    tlp: Vec<u8>,
    /// A DMA write's payload, filled in place.
    payload: Vec<u8>,
    control: Option<(Consumer<EndpointCommand>, Producer<Moved>)>,
    moves: Vec<(u8, u8, u64)>,
    /// Control commands received.
    commands: u64,
    interrupts: u64,
    log: crate::ArrivalLog,
    raised: crate::ArrivalLog,
}

impl<P> std::fmt::Debug for EndpointModel<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EndpointModel")
            .field("dma", &self.dma_writes)
            .field("integrity", &self.integrity)
            .finish()
    }
}

impl<P: Port> EndpointModel<P> {
    /// A device on `port`, building frames in `pool`.
    pub fn new(config: EndpointConfig, port: P, pool: FramePool) -> EndpointModel<P> {
        EndpointModel {
            log: crate::ArrivalLog::with_capacity(config.arrival_log),
            raised: crate::ArrivalLog::with_capacity(config.arrival_log),
            pacer: Pacer::new(config.rate),
            functions: config.functions.iter().map(|&c| Function::new(c)).collect(),
            tlp: vec![0; 16 + 4096],
            payload: vec![0; config.payload],
            config,
            port,
            edge: Edge::new(pool),
            now: 0,
            dma_writes: 0,
            next_dma: 0,
            integrity: Integrity::default(),
            control: None,
            moves: Vec::new(),
            commands: 0,
            interrupts: 0,
        }
    }

    /// What it received, with the times (if its config asked for a log).
    pub fn arrivals(&self) -> &crate::ArrivalLog {
        &self.log
    }

    /// The MSI-X messages its functions sent, with the times (if its config
    /// asked for a log); each one's stamp is the DMA write it follows.
    pub fn raised(&self) -> &crate::ArrivalLog {
        &self.raised
    }

    /// Takes function control from `commands` and reports moves on `moved`.
    pub fn with_control(&mut self, commands: Consumer<EndpointCommand>, moved: Producer<Moved>) {
        self.control = Some((commands, moved));
    }

    /// Applies function control and completes moves that became possible.
    fn control(&mut self) {
        let Some((commands, moved)) = &mut self.control else {
            return;
        };
        while let Some(command) = commands.pop() {
            self.commands += 1;
            match command {
                EndpointCommand::Detach { function } | EndpointCommand::Resume { function } => {
                    if let Some(f) = self.functions.get_mut(function as usize) {
                        f.paused = matches!(command, EndpointCommand::Detach { .. });
                    }
                }
                EndpointCommand::Move {
                    from,
                    to,
                    after_received,
                } => self.moves.push((from, to, after_received)),
                EndpointCommand::Return { from, to } => {
                    let pending = self.moves.iter().position(|&m| (m.0, m.1) == (from, to));
                    match pending {
                        // Never made: the state is where it was.
                        Some(i) => {
                            self.moves.remove(i);
                            let sent = self.functions.get(from as usize).map_or(0, |f| f.sent);
                            // The ring is sized for every function at once.
                            let _ = moved.push(Moved { to: from, sent });
                        }
                        None => self.moves.push((to, from, 0)),
                    }
                }
            }
        }
        let functions = &mut self.functions;
        self.moves.retain(|&(from, to, after)| {
            let (from, to) = (from as usize, to as usize);
            if from == to || from.max(to) >= functions.len() {
                return false;
            }
            if functions[from].received < after {
                return true;
            }
            // The device-specific part of an endpoint migration: the state
            // behind one function is carried over to another.
            let emptied = Function::new(FunctionConfig {
                dma: None,
                msi: None,
                stream: u32::MAX,
                host_stream: u32::MAX,
                ..functions[from].config
            });
            let state = std::mem::replace(&mut functions[from], emptied);
            let target = &mut functions[to];
            let size = target.memory.len().min(state.memory.len());
            target.memory[..size].copy_from_slice(&state.memory[..size]);
            target.config.dma = state.config.dma;
            target.config.msi = state.config.msi;
            target.config.stream = state.config.stream;
            target.config.host_stream = state.config.host_stream;
            target.host = state.host;
            target.dma_seq = state.dma_seq;
            target.received = state.received;
            target.sent = state.sent;
            target.line = state.line;
            target.msi_data = state.msi_data;
            target.registers = state.registers;
            target.msix_enabled = state.msix_enabled;
            target.paused = true;
            // The ring is sized for every function at once.
            moved
                .push(Moved {
                    to: to as u8,
                    sent: state.sent,
                })
                .is_err()
        });
    }

    /// Runs a reliable link over its port, as a PCIe link runs between a
    /// device and its switch: the fabric's credits then pace it, and what it
    /// cannot send yet waits with it.
    pub fn with_link(
        &mut self,
        config: fabric::link::LinkConfig,
    ) -> Result<(), fabric::link::LinkConfigError> {
        self.edge.with_link(config)
    }

    /// What it has seen.
    pub fn integrity(&self) -> &Integrity {
        &self.integrity
    }

    /// MSI-X interrupts raised.
    pub fn interrupts(&self) -> u64 {
        self.interrupts
    }

    /// DMA writes sent.
    pub fn dma_writes(&self) -> u64 {
        self.dma_writes
    }

    /// Doorbell writes its functions acted on (register writes that must
    /// reach the device).
    pub fn doorbells(&self) -> u64 {
        self.functions.iter().map(|f| f.registers.doorbells).sum()
    }

    /// The credits of type `t` its link lets it use now (`None`: no link,
    /// or infinite), and its TLPs waiting for credits: all a device learns
    /// of a fabric that holds its traffic.
    pub fn credits(&self, t: tlp::CreditType) -> (Option<u16>, usize) {
        self.edge.credits(t)
    }

    /// Control commands it has received from an orchestrator.
    pub fn commands(&self) -> u64 {
        self.commands
    }

    /// Whether it has sent all its DMA.
    pub fn done(&self) -> bool {
        let dma = self.functions.iter().any(|f| f.config.dma.is_some());
        (self.dma_writes >= self.config.total_dma || !dma) && self.edge.backlog() == 0
    }

    /// The function whose BAR holds `len` bytes at `address`, and the offset.
    fn find(&self, address: u64, len: usize) -> Option<(usize, usize)> {
        self.functions.iter().enumerate().find_map(|(i, f)| {
            let off = address.checked_sub(f.config.bar)? as usize;
            (off + len <= f.memory.len()).then_some((i, off))
        })
    }

    fn on_tlp(&mut self, bytes: &[u8]) {
        let Ok(t) = Tlp::new_checked(bytes) else {
            self.integrity.data_mismatches += 1;
            return;
        };
        self.log.record(self.now, &t);
        match t.kind() {
            Some(Kind::MWr) => {
                let payload = t.payload();
                let Some((i, off)) = self.find(t.address(), payload.len()) else {
                    return;
                };
                let f = &mut self.functions[i];
                f.received += 1;
                if f.config.registers && (off as u64) < REGISTER_BLOCK {
                    for (k, dw) in payload.chunks_exact(4).enumerate() {
                        let value = u32::from_le_bytes([dw[0], dw[1], dw[2], dw[3]]);
                        f.registers.write((off + 4 * k) as u32, value);
                    }
                    return;
                }
                f.memory[off..off + payload.len()].copy_from_slice(payload);
                let table = f.memory.len().saturating_sub(MSIX_TABLE_BYTES);
                if off < table + 16 && off + payload.len() > table {
                    f.reprogram();
                    return;
                }
                if let Some((s, seq, intact)) = stream::read(payload) {
                    if s == f.config.host_stream {
                        f.host.arrive(seq, &mut self.integrity);
                        if !intact {
                            self.integrity.data_mismatches += 1;
                        }
                    }
                }
            }
            Some(kind @ (Kind::CfgRd0 | Kind::CfgWr0)) => {
                let target = t.target_id();
                let Some(f) = self
                    .functions
                    .iter_mut()
                    .find(|f| f.config.function == target)
                else {
                    return;
                };
                f.received += 1;
                f.sent += 1;
                let ids = self.config.ids.to_le_bytes();
                let line = [f.line, 0, 0, 0];
                let msix = msix_capability(f.msix_enabled);
                let data: &[u8] = match (kind, t.register()) {
                    (Kind::CfgRd0, 0) => &ids,
                    (Kind::CfgRd0, INTERRUPT_LINE) => &line,
                    (Kind::CfgRd0, MSIX_CAPABILITY) => &msix,
                    (_, MSIX_CAPABILITY) => {
                        // Byte 3 holds MSI-X Enable (bit 15 of Message Control).
                        if let (true, Some(&v)) = (t.first_be() & 0b1000 != 0, t.payload().get(3)) {
                            f.msix_enabled = v & 0x80 != 0;
                        }
                        &[]
                    }
                    (Kind::CfgRd0, _) => &[0; 4],
                    (_, INTERRUPT_LINE) => {
                        if let (true, Some(&v)) = (t.first_be() & 1 != 0, t.payload().first()) {
                            f.line = v;
                        }
                        &[]
                    }
                    _ => &[],
                };
                let fields = CplFields {
                    completer: target,
                    requester: t.requester_id(),
                    tag: t.tag(),
                    status: CplStatus::Sc,
                    byte_count: 4,
                    lower_address: 0,
                };
                if let Ok(n) = completion(&mut self.tlp, fields, data) {
                    let _ = self.edge.push(&self.tlp[..n], self.now);
                }
            }
            Some(Kind::MRd) => {
                let len = t.length_dw() as usize * 4;
                let found = self.find(t.address(), len);
                let mut read = [0u8; 64];
                let (status, completer, data) = match found {
                    Some((i, off)) => {
                        let f = &mut self.functions[i];
                        f.received += 1;
                        f.sent += 1;
                        let data = if f.config.registers && (off as u64) < REGISTER_BLOCK {
                            // Reads of registers act on them (ICR clears).
                            let dws = (len / 4).min(read.len() / 4);
                            for k in 0..dws {
                                let v = f.registers.read((off + 4 * k) as u32);
                                read[4 * k..4 * k + 4].copy_from_slice(&v.to_le_bytes());
                            }
                            &read[..4 * dws]
                        } else {
                            &f.memory[off..off + len]
                        };
                        (CplStatus::Sc, f.config.function, data)
                    }
                    None => (CplStatus::Ur, Bdf(0), &[][..]),
                };
                let fields = CplFields {
                    completer,
                    requester: t.requester_id(),
                    tag: t.tag(),
                    status,
                    byte_count: if status == CplStatus::Sc {
                        read_byte_count(t.length_dw(), t.first_be(), t.last_be())
                    } else {
                        4
                    },
                    lower_address: read_lower_address(t.address(), t.first_be()),
                };
                if let Ok(n) = completion(&mut self.tlp, fields, data) {
                    let _ = self.edge.push(&self.tlp[..n], self.now);
                }
            }
            _ => {}
        }
    }

    fn send_dma(&mut self) -> bool {
        let n = self.functions.len();
        // The next function that does DMA, in turn.
        let Some(i) = (0..n)
            .map(|k| (self.next_dma + k) % n)
            .find(|&i| self.functions[i].config.dma.is_some() && !self.functions[i].paused)
        else {
            return false;
        };
        let payload = self.config.payload;
        let slots = (self.config.dma_region / payload as u64).max(1);
        let f = &self.functions[i];
        let seq = f.dma_seq;
        let address = f.config.dma.unwrap_or(0) + (seq % slots) * payload as u64;
        let data = &mut self.payload[..payload];
        stream::fill(data, f.config.stream, seq);
        let access = MemAccess::dwords(address, (payload / 4) as u16);
        let Ok(len) = memory_write(
            &mut self.tlp,
            f.config.function,
            0,
            access,
            &data[..payload],
        ) else {
            return false;
        };
        if !self.edge.push(&self.tlp[..len], self.now) {
            return false;
        }
        self.functions[i].dma_seq += 1;
        self.functions[i].sent += 1;
        let every = self.config.interrupt_every;
        let f = &self.functions[i];
        if let Some(msi) = f
            .config
            .msi
            .filter(|_| f.msix_enabled && every > 0 && f.dma_seq.is_multiple_of(every))
        {
            let data = f.msi_data.to_le_bytes();
            let (function, stream) = (f.config.function, f.config.stream);
            if let Ok(len) =
                memory_write(&mut self.tlp, function, 0, MemAccess::dwords(msi, 1), &data)
            {
                if self.edge.push(&self.tlp[..len], self.now) {
                    // Not a tracked TLP: raises of a vector the function
                    // has pending merge into one message (MSI-X, PCIe Base
                    // Specification §6.1.4.5), so an interrupt is counted,
                    // not owed.
                    self.functions[i].sent += 1;
                    self.interrupts += 1;
                    self.raised.note(crate::Received {
                        at: self.now,
                        kind: Some(Kind::MWr),
                        requester: function,
                        address: msi,
                        tag: 0,
                        // The DMA write it signals.
                        stamp: Some((stream, seq)),
                        data: Some(u32::from_le_bytes(data)),
                    });
                }
            }
        }
        self.next_dma = (i + 1) % n;
        self.dma_writes += 1;
        self.integrity.sent += 1;
        true
    }
}

impl<P: Port + Send + 'static> Task for EndpointModel<P> {
    fn name(&self) -> &str {
        "endpoint"
    }

    fn poll(&mut self, now: u64) -> usize {
        self.now = now;
        self.control();
        let (tlps, bad, _) = self.edge.receive(&mut self.port, now);
        self.integrity.data_mismatches += bad;
        let mut done = tlps.len();
        for t in &tlps {
            self.on_tlp(t);
        }
        self.edge.recycle(tlps);
        self.control();
        if self.edge.ready() {
            let allowed = self.pacer.allowed(now, self.dma_writes);
            for _ in 0..self.config.dma_per_poll {
                if self.dma_writes >= self.config.total_dma.min(allowed)
                    || now >= self.config.until
                    || self.config.stop.requested()
                    || !self.send_dma()
                {
                    break;
                }
                done += 1;
            }
        }
        self.edge.flush(&mut self.port, now);
        done
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lcore::Task;
    use pmd::ring_link;

    #[test]
    fn a_stop_request_ends_new_dma() {
        let (port, mut far) = ring_link("device", 1024, 1600);
        let config = EndpointConfig::default();
        let stop = config.stop.clone();
        let mut device = EndpointModel::new(config, port, FramePool::new(1024, 1600));
        let mut sink = Vec::new();
        let mut run = |device: &mut EndpointModel<pmd::RingPort>, from: u64| {
            for now in (from..from + 20).map(|k| k * 1_000) {
                device.poll(now);
                far.rx_burst(0, &mut sink, 64);
                sink.clear();
            }
        };
        run(&mut device, 0);
        let before = device.dma_writes();
        assert!(before > 0, "it writes DMA until stopped");
        stop.request();
        run(&mut device, 20);
        assert_eq!(device.dma_writes(), before, "no DMA after the request");
    }
}
