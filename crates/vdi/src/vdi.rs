//! The virtual device instantiation: one function's software-visible
//! interface, serving the TLPs it can while a binding moves.

use crate::config::ConfigSpace;
use crate::msix::{Msix, Raised};
use crate::registers::RegisterFile;
use crate::state::{Layout, VdiState};
use crate::template::Template;
use std::collections::VecDeque;
use tlp::build::{
    completion, memory_write, read_byte_count, read_lower_address, CplFields, MemAccess,
};
use tlp::{Bdf, Body, CplStatus, Kind, MessageCode, MsgRouting, Repr, Tlp};

/// What the VDI does with requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Not in the path: every TLP goes to the physical function.
    PassThrough,
    /// Operating beside the physical function (a migration is being
    /// prepared): it serves configuration and shadowable accesses, and what
    /// needs the device passes through.
    Shadow,
    /// The binding is moving: it serves what it can and what needs the
    /// device is held at the pause point.
    Migrating,
}

/// The VDI's answer to one TLP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Served. A completion of this many bytes was written to the output
    /// buffer (0: a posted request, nothing to return).
    Completed(usize),
    /// Needs the device, which cannot be reached now: hold it.
    Hold,
    /// Send it on to the physical function.
    PassThrough,
}

/// How the end of a migration is told to the destination host (claims 8, 9).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompletionSignal {
    /// Raise this MSI-X vector.
    Msix(u16),
    /// Send a Vendor-Defined Type 1 message to the root complex carrying
    /// this vendor ID and 32-bit word.
    VendorMessage {
        /// Vendor ID in the message header.
        vendor_id: u16,
        /// The vendor-defined word (bytes 12..16 of the header).
        word: u32,
    },
}

/// What the VDI has done.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VdiStats {
    /// Configuration reads served.
    pub config_reads: u64,
    /// Configuration writes served.
    pub config_writes: u64,
    /// Memory reads served.
    pub memory_reads: u64,
    /// Memory writes served.
    pub memory_writes: u64,
    /// Requests completed Unsupported Request (or dropped, if posted).
    pub unsupported: u64,
    /// Requests held.
    pub held: u64,
    /// Requests passed through.
    pub passed_through: u64,
    /// Interrupts delivered (memory writes generated).
    pub interrupts: u64,
    /// The function's interrupts taken while they were held (each one sets
    /// its vector's pending bit; raises of a vector already pending merge).
    pub interrupts_held: u64,
    /// Messages generated.
    pub messages: u64,
    /// Configuration writes seen passing to the function.
    pub observed_writes: u64,
    /// Register writes seen passing to the function (or held for it).
    pub observed_register_writes: u64,
}

/// The longest memory read the VDI serves itself; longer ones go to the device.
pub const MAX_SERVED_READ: usize = 64;

/// Where the bytes of one DW of a BAR live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Home {
    Msix,
    Register(usize, crate::registers::Access),
    Split,
}

/// A TLP the VDI owes upstream, built when the caller polls for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Upstream {
    Interrupt { address: u64, data: u32 },
    Message { code: u8 },
    Vendor { vendor_id: u16, word: u32 },
}

/// TLPs owed upstream a spare VDI has room for before it would allocate.
const SPARE_UPSTREAM: usize = 64;

/// A virtual device instantiation of one function.
#[derive(Debug, Clone)]
pub struct Vdi {
    function: Bdf,
    config: ConfigSpace,
    registers: RegisterFile,
    msix: Option<Msix>,
    mode: Mode,
    /// The fabric holds the function's interrupts (its binding is paused):
    /// they wait in their pending bits as under the Function Mask, which
    /// the host does not see set.
    interrupts_held: bool,
    upstream: VecDeque<Upstream>,
    stats: VdiStats,
}

/// Why a snapshot was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SnapshotError {
    /// Not a snapshot (wrong magic or too short).
    NotASnapshot,
    /// A format version this code does not read.
    Version {
        /// In the snapshot.
        found: u16,
        /// What this code reads.
        expected: u16,
    },
    /// Taken from another kind of device (vendor and device IDs differ).
    Device {
        /// In the snapshot.
        found: (u16, u16),
        /// This VDI's.
        expected: (u16, u16),
    },
    /// Its layout (config size, registers, vectors) differs from this VDI's.
    Layout(&'static str),
    /// The checksum does not match: damaged.
    Checksum,
}

impl std::fmt::Display for SnapshotError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SnapshotError::NotASnapshot => write!(f, "not a VDI snapshot"),
            SnapshotError::Version { found, expected } => {
                write!(f, "snapshot version {found}, expected {expected}")
            }
            SnapshotError::Device { found, expected } => write!(
                f,
                "snapshot of device {:04x}:{:04x}, this VDI is {:04x}:{:04x}",
                found.0, found.1, expected.0, expected.1
            ),
            SnapshotError::Layout(what) => write!(f, "snapshot layout differs: {what}"),
            SnapshotError::Checksum => write!(f, "snapshot checksum mismatch"),
        }
    }
}

impl std::error::Error for SnapshotError {}

/// The six BAR registers of a type 0 configuration header.
const BARS: std::ops::Range<usize> = 0x10..0x28;

static CRC_TABLE: [u32; 256] = tlp::ecrc::reflected_table(0xedb8_8320);

pub(crate) fn crc32(bytes: &[u8]) -> u32 {
    !tlp::ecrc::reflected_update(&CRC_TABLE, !0, bytes)
}

impl Vdi {
    /// Makes this instantiation a copy of `other`. When both have the
    /// same layout (made from one template, as a function's VDI and its
    /// spare are) it copies in place without allocating, as a gate needs on
    /// its core; otherwise it clones.
    pub fn copy_from(&mut self, other: &Vdi) {
        let same = self.config.same_layout(&other.config)
            && self.registers.same_layout(&other.registers)
            && match (&self.msix, &other.msix) {
                (Some(a), Some(b)) => a.same_layout(b),
                (None, None) => true,
                _ => false,
            }
            && self.upstream.capacity() >= other.upstream.len();
        if !same {
            *self = other.clone();
            return;
        }
        self.function = other.function;
        self.config.copy_from(&other.config);
        self.registers.copy_values_from(&other.registers);
        if let (Some(a), Some(b)) = (&mut self.msix, &other.msix) {
            a.copy_from(b);
        }
        self.mode = other.mode;
        self.interrupts_held = other.interrupts_held;
        self.upstream.clear();
        self.upstream.extend(other.upstream.iter().copied());
        self.stats = other.stats;
    }

    /// A copy to keep aside for [`Vdi::copy_from`], with room for what its
    /// original may owe upstream.
    pub fn spare(&self) -> Vdi {
        let mut v = self.clone();
        v.upstream.reserve(SPARE_UPSTREAM);
        v
    }

    /// A VDI of `function` (its completer ID) from a template, in pass-through.
    pub fn new(template: &Template, function: Bdf) -> Vdi {
        let msix = template.config.msix().map(Msix::new);
        let capacity = msix.as_ref().map_or(0, |m| m.info().table_size as usize) + 8;
        Vdi {
            function,
            config: template.config.clone(),
            registers: template.registers.clone(),
            msix,
            mode: Mode::PassThrough,
            interrupts_held: false,
            upstream: VecDeque::with_capacity(capacity),
            stats: VdiStats::default(),
        }
    }

    /// The function's ID (the completer ID of what it completes).
    pub fn function(&self) -> Bdf {
        self.function
    }

    /// The configuration space.
    pub fn config(&self) -> &ConfigSpace {
        &self.config
    }

    /// The BAR registers.
    pub fn registers(&self) -> &RegisterFile {
        &self.registers
    }

    /// The configuration space, for the device-side updates of a sync.
    pub fn config_mut(&mut self) -> &mut ConfigSpace {
        &mut self.config
    }

    /// The BAR registers, for the device-side updates of a sync.
    pub fn registers_mut(&mut self) -> &mut RegisterFile {
        &mut self.registers
    }

    /// MSI-X state, if the function has the capability.
    pub fn msix(&self) -> Option<&Msix> {
        self.msix.as_ref()
    }

    /// MSI-X state, for the device-side updates of a sync.
    pub fn msix_mut(&mut self) -> Option<&mut Msix> {
        self.msix.as_mut()
    }

    /// The counters.
    pub fn stats(&self) -> &VdiStats {
        &self.stats
    }

    /// The current mode.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Changes mode (the orchestrator's call).
    pub fn set_mode(&mut self, mode: Mode) {
        self.mode = mode;
    }

    fn needs_device(&mut self) -> Verdict {
        match self.mode {
            Mode::Migrating => {
                self.stats.held += 1;
                Verdict::Hold
            }
            _ => {
                self.stats.passed_through += 1;
                Verdict::PassThrough
            }
        }
    }

    /// Notes a configuration write that passes to the function while the
    /// VDI is out of the path, so that its configuration space stays the
    /// function's: a VDI that takes over later answers with what the
    /// function holds.
    ///
    /// Memory writes to its BAR registers are noted the same way, as the
    /// device will hold them once they arrive (a doorbell keeps what was
    /// written): reads the VDI serves later agree with the device.
    pub fn observe(&mut self, bytes: &[u8]) {
        let Ok(t) = Tlp::new_checked(bytes) else {
            return;
        };
        match t.kind() {
            Some(Kind::CfgWr0) if t.target_id() == self.function => {
                if let [a, b, c, d, ..] = *t.payload() {
                    self.config.write(t.register(), t.first_be(), [a, b, c, d]);
                    self.stats.observed_writes += 1;
                }
            }
            Some(Kind::MWr) => self.observe_memory_write(&t),
            _ => {}
        }
    }

    fn observe_memory_write(&mut self, t: &Tlp<&[u8]>) {
        if !self.config.memory_enabled() {
            return;
        }
        let Some((bar, start)) = self.decode(t.address()) else {
            return;
        };
        let payload = t.payload();
        let dws = payload.len() / 4;
        let mut touched = false;
        for k in 0..dws {
            let be = if k == 0 {
                t.first_be()
            } else if k + 1 == dws {
                t.last_be()
            } else {
                0xf
            };
            let at = start + 4 * k as u32;
            if self.msix.as_ref().is_some_and(|m| m.claims(bar, at)) {
                let p = &payload[4 * k..4 * k + 4];
                let value = u32::from_le_bytes([p[0], p[1], p[2], p[3]]);
                if let Some(m) = self.msix.as_mut() {
                    m.write_dword(bar, at, be, value);
                }
                continue;
            }
            for b in (0..4).filter(|b| be & (1 << b) != 0) {
                if let Some(hit) = self.registers.find(bar, at + b) {
                    self.registers
                        .observe_byte(hit, payload[4 * k + b as usize]);
                    touched = true;
                }
            }
        }
        if touched {
            self.stats.observed_register_writes += 1;
        }
    }

    /// Whether `address` is in one of its memory BARs with memory decoding
    /// on: a memory request elsewhere is not one it can answer.
    pub fn decodes(&self, address: u64) -> bool {
        self.config.memory_enabled() && self.decode(address).is_some()
    }

    /// The bytes at the start of BAR `bar` where its registers lie (0:
    /// none): writes beyond them cannot change a register.
    pub fn register_span(&self, bar: u8) -> u64 {
        self.registers.span(bar) as u64
    }

    /// The bytes of BAR `bar` its MSI-X table takes (`start..end`), if the
    /// table is in that BAR: writes there program vectors it may raise.
    pub fn msix_table_span(&self, bar: u8) -> Option<(u64, u64)> {
        let info = self.msix.as_ref()?.info();
        (info.table_bir == bar).then(|| {
            let start = u64::from(info.table_offset);
            (start, start + 16 * u64::from(info.table_size))
        })
    }

    /// Places BAR `index` at `address` as a host's enumeration would (the
    /// size's alignment applies; a 64-bit BAR takes the next register too)
    /// and enables memory decoding.
    pub fn place_bar(&mut self, index: usize, address: u64) {
        let at = 0x10 + 4 * index as u16;
        let low = self.config.dword(at);
        self.config
            .write(at, 0xf, (address as u32 | (low & 0xf)).to_le_bytes());
        if (low >> 1) & 0x3 == 0x2 {
            self.config
                .write(at + 4, 0xf, ((address >> 32) as u32).to_le_bytes());
        }
        let command = self.config.word(0x04) | 0x2;
        self.config.write(0x04, 0x3, (command as u32).to_le_bytes());
    }

    /// Moves the MSI-X table and pending-bit array into BAR `bar`, at
    /// `table_offset` and `pba_offset` (8-byte aligned), as a fabric that
    /// exposes the function through one window places them; the
    /// capability's Table and PBA registers say so from then on (PCIe Base
    /// Specification §7.7.2.3–4). Every vector starts masked again. False
    /// (and nothing changes) without MSI-X or with a bad place.
    pub fn relocate_msix(&mut self, bar: u8, table_offset: u32, pba_offset: u32) -> bool {
        let Some(info) = self.config.msix() else {
            return false;
        };
        let table_bytes = u32::from(info.table_size) * 16;
        let apart = table_offset
            .checked_add(table_bytes)
            .is_some_and(|end| end <= pba_offset)
            || pba_offset
                .checked_add(info.table_size.div_ceil(64) as u32 * 8)
                .is_some_and(|end| end <= table_offset);
        if bar > 5 || !table_offset.is_multiple_of(8) || !pba_offset.is_multiple_of(8) || !apart {
            return false;
        }
        self.config.set_raw(
            info.offset + 4,
            &(table_offset | u32::from(bar)).to_le_bytes(),
        );
        self.config.set_raw(
            info.offset + 8,
            &(pba_offset | u32::from(bar)).to_le_bytes(),
        );
        self.msix = self.config.msix().map(Msix::new);
        true
    }

    /// Serves one TLP addressed to this function; a completion goes to
    /// `out` (which should hold 12 bytes plus the largest read served; a
    /// read that does not fit is treated as needing the device).
    pub fn serve(&mut self, bytes: &[u8], out: &mut [u8]) -> Verdict {
        if self.mode == Mode::PassThrough {
            self.stats.passed_through += 1;
            return Verdict::PassThrough;
        }
        let Ok(t) = Tlp::new_checked(bytes) else {
            // Not well formed: the fabric's checks decide its fate, not the VDI.
            return self.needs_device();
        };
        match t.kind() {
            Some(Kind::CfgRd0 | Kind::CfgWr0) => self.serve_config(&t, out),
            Some(Kind::MRd | Kind::MWr) => self.serve_memory(&t, out),
            _ => self.needs_device(),
        }
    }

    fn complete(
        &self,
        t: &Tlp<&[u8]>,
        fields: CplFields,
        payload: &[u8],
        out: &mut [u8],
    ) -> Option<usize> {
        let n = completion(out, fields, payload).ok()?;
        // A completion carries its request's Traffic Class (§2.2.9).
        Tlp::new_unchecked(&mut out[..n]).set_tc(t.tc());
        Some(n)
    }

    fn unsupported(&mut self, t: &Tlp<&[u8]>, kind: Kind, out: &mut [u8]) -> Verdict {
        self.stats.unsupported += 1;
        if kind == Kind::MWr {
            return Verdict::Completed(0);
        }
        let (byte_count, lower_address) = match kind {
            Kind::MRd => (
                read_byte_count(t.length_dw(), t.first_be(), t.last_be()),
                read_lower_address(t.address(), t.first_be()),
            ),
            _ => (4, 0),
        };
        let fields = CplFields {
            completer: self.function,
            requester: t.requester_id(),
            tag: t.tag(),
            status: CplStatus::Ur,
            byte_count,
            lower_address,
        };
        match self.complete(t, fields, &[], out) {
            Some(n) => Verdict::Completed(n),
            None => self.needs_device(),
        }
    }

    fn serve_config(&mut self, t: &Tlp<&[u8]>, out: &mut [u8]) -> Verdict {
        let kind = t.kind().unwrap_or(Kind::CfgRd0);
        if t.target_id() != self.function {
            return self.unsupported(t, kind, out);
        }
        let register = t.register();
        let mut fields = CplFields {
            completer: self.function,
            requester: t.requester_id(),
            tag: t.tag(),
            status: CplStatus::Sc,
            byte_count: 4,
            lower_address: 0,
        };
        let result = if kind == Kind::CfgRd0 {
            let data = self.config.read(register);
            self.stats.config_reads += 1;
            self.complete(t, fields, &data, out)
        } else {
            let p = t.payload();
            let value = [p[0], p[1], p[2], p[3]];
            self.config.write(register, t.first_be(), value);
            self.stats.config_writes += 1;
            fields.byte_count = 4;
            self.complete(t, fields, &[], out)
        };
        match result {
            Some(n) => Verdict::Completed(n),
            None => self.needs_device(),
        }
    }

    /// The BAR and offset an address falls in.
    fn decode(&self, address: u64) -> Option<(u8, u32)> {
        let sizes = self.config.sizes();
        (0..6).find_map(|i| {
            let base = self.config.bar_address(i)?;
            let size = sizes.bars[i]?;
            (address >= base && address - base < size).then(|| (i as u8, (address - base) as u32))
        })
    }

    /// How the enabled bytes `be` of the DW at `at` in `bar` are held:
    /// by the MSI-X table or array, by one register (its index), or by
    /// several registers or none (`Split`).
    #[inline]
    fn dword_home(&self, bar: u8, at: u32, be: u8) -> Home {
        if self.msix.as_ref().is_some_and(|m| m.claims(bar, at)) {
            return Home::Msix;
        }
        let first = at + be.trailing_zeros();
        let last = at + 7 - be.leading_zeros();
        match self.registers.find_span(bar, first, last) {
            Some(hit) => Home::Register(hit.index, hit.access),
            None => Home::Split,
        }
    }

    /// Whether every enabled byte of a DW held by several registers (or
    /// none) may be served.
    fn split_served(&self, bar: u8, at: u32, be: u8, write: bool) -> bool {
        (0..4)
            .filter(|b| be & (1 << b) != 0)
            .all(|b| match self.registers.find(bar, at + b) {
                Some(hit) if write => hit.access.write_served(),
                Some(hit) => hit.access.read_served(),
                None => false,
            })
    }

    fn serve_memory(&mut self, t: &Tlp<&[u8]>, out: &mut [u8]) -> Verdict {
        let kind = t.kind().unwrap_or(Kind::MRd);
        let write = kind == Kind::MWr;
        let address = t.address();
        if !self.config.memory_enabled() {
            return self.unsupported(t, kind, out);
        }
        let Some((bar, start)) = self.decode(address) else {
            return self.unsupported(t, kind, out);
        };
        let dws = t.length_dw() as u32;
        let (first_be, last_be) = (t.first_be(), t.last_be());
        let enables = |k: u32| -> u8 {
            if k == 0 {
                first_be
            } else if k + 1 == dws {
                last_be
            } else {
                0xf
            }
        };
        let len = 4 * dws as usize;
        if len > MAX_SERVED_READ {
            return self.needs_device();
        }
        // Every enabled byte must be one the VDI may serve.
        let mut homes = [Home::Split; MAX_SERVED_READ / 4];
        for k in 0..dws {
            let (at, be) = (start + 4 * k, enables(k));
            if be == 0 {
                continue;
            }
            let home = self.dword_home(bar, at, be);
            homes[k as usize] = home;
            let served = match home {
                Home::Msix => true,
                Home::Register(_, access) if write => access.write_served(),
                Home::Register(_, access) => access.read_served(),
                Home::Split => self.split_served(bar, at, be, write),
            };
            if !served {
                return self.needs_device();
            }
        }
        if write {
            let payload = t.payload();
            let mut unmasked = false;
            for k in 0..dws {
                let (at, be) = (start + 4 * k, enables(k));
                let p = &payload[4 * k as usize..4 * k as usize + 4];
                match homes[k as usize] {
                    Home::Msix => {
                        let value = u32::from_le_bytes([p[0], p[1], p[2], p[3]]);
                        if let Some(m) = self.msix.as_mut() {
                            unmasked |= m.write_dword(bar, at, be, value);
                        }
                    }
                    Home::Register(index, access) => {
                        let base = self.registers.offset_of(index);
                        for b in (0..4).filter(|b| be & (1 << b) != 0) {
                            let hit = crate::registers::Hit {
                                index,
                                byte: at + b - base,
                                access,
                            };
                            self.registers.write_byte(hit, p[b as usize]);
                        }
                    }
                    Home::Split => {
                        for b in (0..4).filter(|b| be & (1 << b) != 0) {
                            if let Some(hit) = self.registers.find(bar, at + b) {
                                self.registers.write_byte(hit, p[b as usize]);
                            }
                        }
                    }
                }
            }
            self.stats.memory_writes += 1;
            if unmasked {
                self.deliver_pending();
            }
            return Verdict::Completed(0);
        }
        let mut data = [0u8; MAX_SERVED_READ];
        if out.len() < 12 + len {
            return self.needs_device();
        }
        let data = &mut data[..len];
        for k in 0..dws {
            let at = start + 4 * k;
            let dw = &mut data[4 * k as usize..4 * k as usize + 4];
            match homes[k as usize] {
                Home::Msix => {
                    if let Some(v) = self.msix.as_ref().and_then(|m| m.read_dword(bar, at)) {
                        dw.copy_from_slice(&v.to_le_bytes());
                    }
                }
                Home::Register(index, access) => {
                    let base = self.registers.offset_of(index);
                    let end = base + self.registers.registers()[index].width as u32;
                    for (b, byte) in dw.iter_mut().enumerate() {
                        let off = at + b as u32;
                        let hit = if (base..end).contains(&off) {
                            Some(crate::registers::Hit {
                                index,
                                byte: off - base,
                                access,
                            })
                        } else {
                            // A byte not asked for, held by a neighbour or none.
                            self.registers.find(bar, off)
                        };
                        if let Some(hit) = hit {
                            *byte = self.registers.read_byte(hit);
                        }
                    }
                }
                Home::Split => {
                    for (b, byte) in dw.iter_mut().enumerate() {
                        if let Some(hit) = self.registers.find(bar, at + b as u32) {
                            *byte = self.registers.read_byte(hit);
                        }
                    }
                }
            }
        }
        let fields = CplFields {
            completer: self.function,
            requester: t.requester_id(),
            tag: t.tag(),
            status: CplStatus::Sc,
            byte_count: read_byte_count(t.length_dw(), first_be, last_be),
            lower_address: read_lower_address(address, first_be),
        };
        self.stats.memory_reads += 1;
        match self.complete(t, fields, data, out) {
            Some(n) => Verdict::Completed(n),
            None => self.needs_device(),
        }
    }

    /// MSI-X Enable, and whether the function's vectors are masked as a
    /// whole: by the Function Mask bit, or by the fabric holding them.
    fn msix_control(&self) -> (bool, bool) {
        match &self.msix {
            Some(m) => {
                let control = self.config.word(m.info().offset + 2);
                (
                    control & 0x8000 != 0,
                    control & 0x4000 != 0 || self.interrupts_held,
                )
            }
            None => (false, false),
        }
    }

    /// The vector whose message is `data` written to `address`, if MSI-X
    /// is enabled and one is programmed so: how a memory write from the
    /// function is known to be one of its interrupts.
    pub fn interrupt_vector(&self, address: u64, data: u32) -> Option<u16> {
        let m = self.msix.as_ref()?;
        let (enabled, _) = self.msix_control();
        if !enabled {
            return None;
        }
        m.table()
            .iter()
            .position(|e| (e[1] as u64) << 32 | (e[0] & !3) as u64 == address && e[2] == data)
            .map(|v| v as u16)
    }

    /// Holds the function's interrupts from now on: each one it raises
    /// sets its pending bit instead of reaching the host.
    pub fn hold_interrupts(&mut self) {
        self.interrupts_held = true;
    }

    /// Whether the function's interrupts are held.
    pub fn interrupts_held(&self) -> bool {
        self.interrupts_held
    }

    /// Takes an interrupt the function raised while they are held (see
    /// [`Vdi::hold_interrupts`]); false if MSI-X is off or no such vector.
    pub fn take_held_interrupt(&mut self, vector: u16) -> bool {
        let taken = self.raise_interrupt(vector) != Raised::Dropped;
        self.stats.interrupts_held += u64::from(taken);
        taken
    }

    /// Stops holding interrupts: each vector pending and not masked by the
    /// host is delivered, once, behind whatever the VDI already owes
    /// upstream. Returns how many were queued.
    pub fn release_interrupts(&mut self) -> usize {
        if !self.interrupts_held {
            return 0;
        }
        let before = self.upstream.len();
        self.interrupts_held = false;
        self.deliver_pending();
        self.upstream.len() - before
    }

    fn deliver_pending(&mut self) {
        let (enabled, masked) = self.msix_control();
        while let Some((_, address, data)) = self
            .msix
            .as_mut()
            .and_then(|m| m.next_deliverable(enabled, masked))
        {
            self.upstream
                .push_back(Upstream::Interrupt { address, data });
        }
    }

    /// Raises an MSI-X vector as the device would: it is delivered (a memory
    /// write queued upstream, see [`Vdi::poll_upstream`]) or left pending.
    pub fn raise_interrupt(&mut self, vector: u16) -> Raised {
        let (enabled, masked) = self.msix_control();
        let Some(m) = self.msix.as_mut() else {
            return Raised::Dropped;
        };
        let r = m.raise(vector, enabled, masked);
        if let Raised::Deliver { address, data } = r {
            self.upstream
                .push_back(Upstream::Interrupt { address, data });
        }
        r
    }

    /// Re-checks pending vectors (after the host changed the MSI-X Enable or
    /// Function Mask bits through configuration writes).
    pub fn refresh_interrupts(&mut self) {
        self.deliver_pending();
    }

    /// Queues a message to the root complex (claim 7: upstream messages
    /// whose side effects the host can see, e.g. PM_PME 0x18).
    pub fn send_message(&mut self, code: u8) {
        self.upstream.push_back(Upstream::Message { code });
    }

    /// Marks the migration complete: queues the signal to the destination
    /// host and elects pass-through from now on (claims 8, 9).
    pub fn complete_migration(&mut self, signal: CompletionSignal) {
        match signal {
            CompletionSignal::Msix(v) => {
                self.raise_interrupt(v);
            }
            CompletionSignal::VendorMessage { vendor_id, word } => {
                self.upstream
                    .push_back(Upstream::Vendor { vendor_id, word });
            }
        }
        self.mode = Mode::PassThrough;
    }

    /// Writes the next TLP the VDI generated (an interrupt's memory write,
    /// a message) to `out` and returns its length.
    pub fn poll_upstream(&mut self, out: &mut [u8]) -> Option<usize> {
        let next = *self.upstream.front()?;
        let n = match next {
            Upstream::Interrupt { address, data } => {
                let access = MemAccess::dwords(address, 1);
                memory_write(out, self.function, 0, access, &data.to_le_bytes()).ok()?
            }
            Upstream::Message { code } => {
                let mut repr = Repr::new(Kind::Msg, MsgRouting::ToRoot, &[]);
                repr.requester = self.function;
                if let Body::Message { code: c, .. } = &mut repr.body {
                    *c = MessageCode::from_byte(code);
                }
                repr.emit(out).ok()?
            }
            Upstream::Vendor { vendor_id, word } => {
                let mut repr = Repr::new(Kind::Msg, MsgRouting::ToRoot, &[]);
                repr.requester = self.function;
                if let Body::Message { code, fields, .. } = &mut repr.body {
                    *code = MessageCode::from_byte(0x7f);
                    fields[2..4].copy_from_slice(&vendor_id.to_be_bytes());
                    fields[4..8].copy_from_slice(&word.to_be_bytes());
                }
                repr.emit(out).ok()?
            }
        };
        self.upstream.pop_front();
        match next {
            Upstream::Interrupt { .. } => self.stats.interrupts += 1,
            _ => self.stats.messages += 1,
        }
        Some(n)
    }

    /// The device's vendor and device IDs.
    pub fn ids(&self) -> (u16, u16) {
        (self.config.word(0), self.config.word(2))
    }

    /// The state that moves with the function: configuration space, BAR
    /// registers, MSI-X table and pending bits.
    pub fn state(&self) -> VdiState {
        let (table, pending): (&[[u32; 4]], &[u64]) = match &self.msix {
            Some(m) => (m.table(), m.pending_words()),
            None => (&[], &[]),
        };
        VdiState {
            ids: self.ids(),
            config: self.config.bytes().to_vec(),
            registers: self.registers.values().to_vec(),
            msix_table: table.to_vec(),
            msix_pending: pending.to_vec(),
        }
    }

    /// What a state must share with this VDI for it to take the state.
    pub fn layout(&self) -> Layout {
        Layout {
            ids: self.ids(),
            config_len: self.config.len(),
            registers: self.registers.values().len(),
            vectors: self.msix.as_ref().map_or(0, |m| m.table().len()),
        }
    }

    /// [`Vdi::state`] as a snapshot: versioned and checksummed.
    pub fn snapshot(&self) -> Vec<u8> {
        self.state().encode()
    }

    /// Restores the state of another function of the same kind moved to
    /// this one (an endpoint migration): everything but where this
    /// function's BARs are placed, which is its own in the fabric.
    pub fn restore_moved(&mut self, snapshot: &[u8]) -> Result<(), SnapshotError> {
        let placed = self.placed_bars();
        self.restore(snapshot)?;
        self.config.set_raw(BARS.start as u16, &placed);
        Ok(())
    }

    /// Takes the state of `other`, another function of the same kind in
    /// this process, as [`Vdi::restore_moved`] takes a snapshot of it:
    /// without the snapshot's copy and checksums, and without allocating,
    /// which matters while the function is paused.
    pub fn take_state_of(&mut self, other: &Vdi) -> Result<(), SnapshotError> {
        self.layout().fits(&other.layout())?;
        let placed = self.placed_bars();
        self.config.set_raw(0, other.config.bytes());
        self.config.set_raw(BARS.start as u16, &placed);
        self.registers.set_values(other.registers.values());
        if let (Some(m), Some(o)) = (&mut self.msix, &other.msix) {
            m.restore(o.table(), o.pending_words());
        }
        Ok(())
    }

    fn placed_bars(&self) -> [u8; BARS.end - BARS.start] {
        let mut placed = [0u8; BARS.end - BARS.start];
        placed.copy_from_slice(&self.config.bytes()[BARS]);
        placed
    }

    /// Restores a snapshot taken from a VDI of the same kind of device.
    /// Nothing changes unless every check passes.
    pub fn restore(&mut self, snapshot: &[u8]) -> Result<(), SnapshotError> {
        let state = VdiState::try_from(snapshot)?;
        self.take(&state)
    }

    /// Takes `state`, if it fits this VDI; nothing changes otherwise.
    pub fn take(&mut self, state: &VdiState) -> Result<(), SnapshotError> {
        self.layout().fits(&state.layout())?;
        self.config.set_raw(0, &state.config);
        self.registers.set_values(&state.registers);
        if let Some(m) = self.msix.as_mut() {
            m.restore(&state.msix_table, &state.msix_pending);
        }
        Ok(())
    }
}
