//! A function's configuration space with the access rules of every bit.
//!
//! Each byte has a value and two masks: bits software may write (read-write)
//! and bits a write of 1 clears (write-1-to-clear). Everything else is
//! read-only, hardware-initialised or reserved, and keeps its value (reserved
//! bits are zero in the dumps the spaces start from). Writes are
//! byte-enable-precise: a configuration write with partial byte enables
//! changes only the enabled bytes (PCIe Base Specification 4.0 §7.4 gives
//! the attributes; §7.5.1 the type 0 header; §7.5.3 the PCI Express
//! capability; §7.7 MSI and MSI-X; §7.8.4 AER; §9.3.3 SR-IOV).
//!
//! The masks are derived from the layout: the type 0 header, then each
//! capability the chains lead to. Capabilities this model does not know are
//! read-only. BAR sizes cannot be read from a dump, so they are given: a BAR
//! then answers the size probe (write all ones, read back the size mask).

use core::fmt;

/// The sizes of a function's BARs and expansion ROM (`None`: not implemented).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BarSizes {
    /// BAR 0..5; a 64-bit BAR's size sits at its lower index.
    pub bars: [Option<u64>; 6],
    /// The expansion ROM.
    pub rom: Option<u64>,
}

/// One capability in a chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capability {
    /// Capability ID (8 bits for the list at 0x34, 16 for extended ones).
    pub id: u16,
    /// Offset in configuration space.
    pub offset: u16,
    /// Version (extended capabilities only; 0 otherwise).
    pub version: u8,
}

/// Where a function's MSI-X table and pending-bit array live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MsixInfo {
    /// Offset of the capability.
    pub offset: u16,
    /// Vectors (Table Size + 1).
    pub table_size: u16,
    /// BAR of the table.
    pub table_bir: u8,
    /// Offset of the table in its BAR.
    pub table_offset: u32,
    /// BAR of the pending-bit array.
    pub pba_bir: u8,
    /// Offset of the pending-bit array in its BAR.
    pub pba_offset: u32,
}

/// A broken capability chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChainError {
    /// A pointer leads outside the space, into the header, or is misaligned.
    OutOfRange {
        /// Where the pointer is.
        at: u16,
        /// What it points to.
        to: u16,
    },
    /// A pointer leads back to a capability already visited.
    Loop {
        /// Where the pointer is.
        at: u16,
        /// What it points to.
        to: u16,
    },
}

impl fmt::Display for ChainError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChainError::OutOfRange { at, to } => {
                write!(f, "capability pointer at {at:#x} points to {to:#x}, outside the capability area or misaligned")
            }
            ChainError::Loop { at, to } => {
                write!(
                    f,
                    "capability pointer at {at:#x} points back to {to:#x}: the chain loops"
                )
            }
        }
    }
}

impl std::error::Error for ChainError {}

/// Why a configuration space could not be built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigError {
    /// Not 256 or 4096 bytes.
    Size(usize),
    /// Header type other than 0 (endpoints only).
    HeaderType(u8),
    /// A capability chain is broken.
    Chain(ChainError),
    /// A BAR size that is not a power of two of at least 16 (memory) or 4 (I/O).
    BarSize {
        /// Which BAR (6 for the ROM).
        index: usize,
        /// The size given.
        size: u64,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Size(n) => write!(
                f,
                "expected 256 or 4096 bytes of configuration space, found {n}"
            ),
            ConfigError::HeaderType(t) => {
                write!(f, "expected header type 0 (an endpoint), found {t}")
            }
            ConfigError::Chain(e) => write!(f, "{e}"),
            ConfigError::BarSize { index, size } => {
                write!(
                    f,
                    "BAR {index}: expected a power-of-two size, found {size:#x}"
                )
            }
        }
    }
}

impl std::error::Error for ConfigError {}

/// Standard capability IDs this model gives write rules to.
pub mod cap {
    /// Power Management.
    pub const PM: u16 = 0x01;
    /// MSI.
    pub const MSI: u16 = 0x05;
    /// PCI Express.
    pub const EXP: u16 = 0x10;
    /// MSI-X.
    pub const MSIX: u16 = 0x11;
    /// Advanced Error Reporting (extended).
    pub const AER: u16 = 0x0001;
    /// Single Root I/O Virtualization (extended).
    pub const SRIOV: u16 = 0x0010;
}

/// Offsets in the type 0 header.
pub mod reg {
    /// Command.
    pub const COMMAND: u16 = 0x04;
    /// Status.
    pub const STATUS: u16 = 0x06;
    /// BAR 0.
    pub const BAR0: u16 = 0x10;
    /// Expansion ROM BAR.
    pub const ROM: u16 = 0x30;
    /// Capabilities pointer.
    pub const CAP_PTR: u16 = 0x34;
    /// Interrupt Line.
    pub const INTERRUPT_LINE: u16 = 0x3c;
}

/// Command bits: Memory Space Enable.
pub const COMMAND_MEMORY: u16 = 0x0002;

fn word(b: &[u8], offset: u16) -> u16 {
    let at = offset as usize;
    b.get(at..at + 2)
        .map_or(0, |b| u16::from_le_bytes([b[0], b[1]]))
}

fn dword(b: &[u8], offset: u16) -> u32 {
    let at = offset as usize;
    b.get(at..at + 4)
        .map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// The capability list of raw configuration bytes, from the pointer at
/// 0x34, in chain order; empty when Status says there is none. A pointer
/// into the header, past 0xfc, or back to a capability already seen is an
/// error naming where it is.
pub fn capabilities(bytes: &[u8]) -> Result<Vec<Capability>, ChainError> {
    let mut out = Vec::new();
    if bytes.len() < 0x40 || word(bytes, reg::STATUS) & 0x0010 == 0 {
        return Ok(out);
    }
    let mut at = reg::CAP_PTR;
    let mut next = (bytes[at as usize] & 0xfc) as u16;
    let mut seen = [false; 64];
    while next != 0 {
        if !(0x40..=0xfc).contains(&next) || next as usize + 2 > bytes.len() {
            return Err(ChainError::OutOfRange { at, to: next });
        }
        if std::mem::replace(&mut seen[next as usize / 4], true) {
            return Err(ChainError::Loop { at, to: next });
        }
        out.push(Capability {
            id: bytes[next as usize] as u16,
            offset: next,
            version: 0,
        });
        at = next + 1;
        next = (bytes[at as usize] & 0xfc) as u16;
    }
    Ok(out)
}

/// The extended capability list of raw configuration bytes, from 0x100, in
/// chain order (empty for a 256-byte space or when 0x100 holds nothing).
pub fn extended_capabilities(bytes: &[u8]) -> Result<Vec<Capability>, ChainError> {
    let mut out = Vec::new();
    if bytes.len() < 4096 {
        return Ok(out);
    }
    let mut at = 0u16;
    let mut next = 0x100u16;
    let mut seen = vec![false; 1024];
    loop {
        if !(0x100..=0xffc).contains(&next) || !next.is_multiple_of(4) {
            return Err(ChainError::OutOfRange { at, to: next });
        }
        let header = dword(bytes, next);
        if header == 0 || header == 0xffff_ffff {
            break;
        }
        if std::mem::replace(&mut seen[next as usize / 4], true) {
            return Err(ChainError::Loop { at, to: next });
        }
        out.push(Capability {
            id: header as u16,
            offset: next,
            version: ((header >> 16) & 0xf) as u8,
        });
        at = next + 2;
        next = (header >> 20) as u16;
        if next == 0 {
            break;
        }
    }
    Ok(out)
}

/// The MSI-X capability of raw configuration bytes, if the chain has one.
pub fn msix(bytes: &[u8]) -> Option<MsixInfo> {
    let c = capabilities(bytes)
        .ok()?
        .into_iter()
        .find(|c| c.id == cap::MSIX)?;
    let control = word(bytes, c.offset + 2);
    let table = dword(bytes, c.offset + 4);
    let pba = dword(bytes, c.offset + 8);
    Some(MsixInfo {
        offset: c.offset,
        table_size: (control & 0x7ff) + 1,
        table_bir: (table & 0x7) as u8,
        table_offset: table & !0x7,
        pba_bir: (pba & 0x7) as u8,
        pba_offset: pba & !0x7,
    })
}

/// A configuration space with its access rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigSpace {
    data: Vec<u8>,
    writable: Vec<u8>,
    clear_on_one: Vec<u8>,
    sizes: BarSizes,
}

impl ConfigSpace {
    /// Whether `other` has this space's size and access rules.
    pub(crate) fn same_layout(&self, other: &ConfigSpace) -> bool {
        self.writable == other.writable
            && self.clear_on_one == other.clear_on_one
            && self.data.len() == other.data.len()
    }

    /// Takes `other`'s contents (same layout: [`ConfigSpace::same_layout`]).
    pub(crate) fn copy_from(&mut self, other: &ConfigSpace) {
        self.data.copy_from_slice(&other.data);
        self.sizes = other.sizes;
    }

    /// A space holding `bytes` (256 or 4096, type 0 header), with the access
    /// rules of its layout and BARs of the given sizes.
    pub fn new(bytes: &[u8], sizes: BarSizes) -> Result<ConfigSpace, ConfigError> {
        if bytes.len() != 256 && bytes.len() != 4096 {
            return Err(ConfigError::Size(bytes.len()));
        }
        let header_type = bytes[0x0e] & 0x7f;
        if header_type != 0 {
            return Err(ConfigError::HeaderType(header_type));
        }
        let mut c = ConfigSpace {
            data: bytes.to_vec(),
            writable: vec![0; bytes.len()],
            clear_on_one: vec![0; bytes.len()],
            sizes,
        };
        c.header_rules()?;
        for cap in c.capabilities().map_err(ConfigError::Chain)? {
            c.capability_rules(cap);
        }
        for cap in c.extended_capabilities().map_err(ConfigError::Chain)? {
            c.extended_rules(cap);
        }
        Ok(c)
    }

    /// Bytes in the space (256 or 4096).
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Always false: a space has at least its header.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The raw bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.data
    }

    /// The BAR sizes it was built with.
    pub fn sizes(&self) -> BarSizes {
        self.sizes
    }

    fn rule(&mut self, offset: u16, width: usize, writable: u32, w1c: u32) {
        let at = offset as usize;
        if at + width > self.data.len() {
            return;
        }
        for i in 0..width {
            self.writable[at + i] |= (writable >> (8 * i)) as u8;
            self.clear_on_one[at + i] |= (w1c >> (8 * i)) as u8;
        }
    }

    fn header_rules(&mut self) -> Result<(), ConfigError> {
        // Command: I/O, Memory, Bus Master, Parity Error Response, SERR# Enable,
        // Interrupt Disable (§7.5.1.1.3).
        self.rule(reg::COMMAND, 2, 0x0547, 0);
        // Status: the error bits are RW1C (§7.5.1.1.4).
        self.rule(reg::STATUS, 2, 0, 0xf900);
        // Cache Line Size is read-write.
        self.rule(0x0c, 1, 0xff, 0);
        let sizes = self.sizes;
        let mut i = 0;
        while i < 6 {
            let at = reg::BAR0 + 4 * i as u16;
            let Some(size) = sizes.bars[i] else {
                i += 1;
                continue;
            };
            let low = self.dword(at);
            let io = low & 1 == 1;
            let min = if io { 4 } else { 16 };
            if !size.is_power_of_two() || size < min {
                return Err(ConfigError::BarSize { index: i, size });
            }
            let flags = if io { 0x3 } else { 0xf };
            self.rule(at, 4, !(size.saturating_sub(1) as u32) & !flags, 0);
            let is64 = !io && (low >> 1) & 0x3 == 0x2;
            if is64 && i < 5 {
                self.rule(at + 4, 4, !((size.saturating_sub(1) >> 32) as u32), 0);
                i += 1;
            }
            i += 1;
        }
        if let Some(size) = sizes.rom {
            if !size.is_power_of_two() || size < 2048 {
                return Err(ConfigError::BarSize { index: 6, size });
            }
            self.rule(reg::ROM, 4, (!(size as u32 - 1) & 0xffff_f800) | 1, 0);
        }
        self.rule(reg::INTERRUPT_LINE, 1, 0xff, 0);
        Ok(())
    }

    fn capability_rules(&mut self, c: Capability) {
        let o = c.offset;
        match c.id {
            // PMCSR: PowerState and PME_En read-write, PME_Status RW1C.
            cap::PM => self.rule(o + 4, 2, 0x0103, 0x8000),
            cap::MSI => {
                let control = self.word(o + 2);
                let is64 = control & 0x0080 != 0;
                let masking = control & 0x0100 != 0;
                // Enable and Multiple Message Enable.
                self.rule(o + 2, 2, 0x0071, 0);
                self.rule(o + 4, 4, 0xffff_fffc, 0);
                let data = if is64 {
                    self.rule(o + 8, 4, 0xffff_ffff, 0);
                    o + 12
                } else {
                    o + 8
                };
                self.rule(data, 2, 0xffff, 0);
                if masking {
                    self.rule(data + 4, 4, 0xffff_ffff, 0);
                }
            }
            // MSI-X Enable and Function Mask (§7.7.2.2).
            cap::MSIX => self.rule(o + 2, 2, 0xc000, 0),
            cap::EXP => {
                // Device Control; Device Status error bits RW1C (§7.5.3.4-5).
                self.rule(o + 8, 2, 0x7fff, 0);
                self.rule(o + 10, 2, 0, 0x000f);
                // Link Control: ASPM, RCB, Common Clock, Extended Synch,
                // Clock PM, Autonomous Width Disable, the two interrupt enables.
                self.rule(o + 16, 2, 0x0fcb, 0);
                // Device Control 2 and Link Control 2.
                self.rule(o + 0x28, 2, 0x77ff, 0);
                self.rule(o + 0x30, 2, 0x0fff, 0);
            }
            _ => {}
        }
    }

    fn extended_rules(&mut self, c: Capability) {
        let o = c.offset;
        match c.id {
            cap::AER => {
                // The uncorrectable and correctable error bits (§7.8.4).
                const UNCORRECTABLE: u32 = 0x07ff_f030;
                const CORRECTABLE: u32 = 0x0000_f1c1;
                self.rule(o + 4, 4, 0, UNCORRECTABLE);
                self.rule(o + 8, 4, UNCORRECTABLE, 0);
                self.rule(o + 12, 4, UNCORRECTABLE, 0);
                self.rule(o + 16, 4, 0, CORRECTABLE);
                self.rule(o + 20, 4, CORRECTABLE, 0);
                // ECRC Generation and Check Enable.
                self.rule(o + 24, 4, 0x0000_0140, 0);
            }
            cap::SRIOV => {
                // VF Enable, Migration Enable, Migration Interrupt Enable,
                // VF MSE, ARI Capable Hierarchy; NumVFs; System Page Size;
                // the VF BARs (§9.3.3).
                self.rule(o + 8, 2, 0x001f, 0);
                self.rule(o + 0x10, 2, 0xffff, 0);
                self.rule(o + 0x20, 4, 0xffff_ffff, 0);
                for i in 0..6 {
                    self.rule(o + 0x24 + 4 * i, 4, 0xffff_fff0, 0);
                }
            }
            _ => {}
        }
    }

    /// The capability list from 0x34, in chain order.
    pub fn capabilities(&self) -> Result<Vec<Capability>, ChainError> {
        capabilities(&self.data)
    }

    /// The extended capability list from 0x100, in chain order (empty for a
    /// 256-byte space or when 0x100 holds nothing).
    pub fn extended_capabilities(&self) -> Result<Vec<Capability>, ChainError> {
        extended_capabilities(&self.data)
    }

    /// The MSI-X capability's table and pending-bit array locations.
    pub fn msix(&self) -> Option<MsixInfo> {
        msix(&self.data)
    }

    /// A little-endian 16-bit register (0 outside the space).
    pub fn word(&self, offset: u16) -> u16 {
        word(&self.data, offset)
    }

    /// A little-endian 32-bit register (0 outside the space).
    pub fn dword(&self, offset: u16) -> u32 {
        dword(&self.data, offset)
    }

    /// Reads the DW at `offset` (rounded down to a DW) as a configuration
    /// read returns it; beyond the space (an extended register of a 256-byte
    /// function) reads as 0.
    #[inline]
    pub fn read(&self, offset: u16) -> [u8; 4] {
        let at = (offset & !3) as usize;
        match self.data.get(at..at + 4) {
            Some(b) => [b[0], b[1], b[2], b[3]],
            None => [0; 4],
        }
    }

    /// Writes the enabled bytes (`first_be`, bit 0 for byte 0) of the DW at
    /// `offset` by the access rules; writes beyond the space are ignored.
    #[inline]
    pub fn write(&mut self, offset: u16, first_be: u8, value: [u8; 4]) {
        let at = (offset & !3) as usize;
        if at + 4 > self.data.len() {
            return;
        }
        for (i, v) in value.iter().enumerate() {
            if first_be & (1 << i) == 0 {
                continue;
            }
            let (w, c) = (self.writable[at + i], self.clear_on_one[at + i]);
            let old = self.data[at + i];
            self.data[at + i] = ((old & !w) | (v & w)) & !(v & c);
        }
    }

    /// The bits of a byte software may write.
    pub fn writable_mask(&self, offset: u16) -> u8 {
        self.writable.get(offset as usize).copied().unwrap_or(0)
    }

    /// The bits of a byte a write of 1 clears.
    pub fn clear_on_one_mask(&self, offset: u16) -> u8 {
        self.clear_on_one.get(offset as usize).copied().unwrap_or(0)
    }

    /// Sets bytes as the device would (status bits, a restored snapshot),
    /// bypassing the access rules.
    pub fn set_raw(&mut self, offset: u16, bytes: &[u8]) {
        let at = offset as usize;
        if let Some(d) = self.data.get_mut(at..at + bytes.len()) {
            d.copy_from_slice(bytes);
        }
    }

    /// Whether Memory Space Enable is set.
    pub fn memory_enabled(&self) -> bool {
        self.word(reg::COMMAND) & COMMAND_MEMORY != 0
    }

    /// The address a memory BAR decodes, if it is implemented and memory
    /// (an I/O BAR or an unsized one gives `None`). 64-bit BARs combine the
    /// next register.
    pub fn bar_address(&self, index: usize) -> Option<u64> {
        self.sizes.bars.get(index).copied().flatten()?;
        let at = reg::BAR0 + 4 * index as u16;
        let low = self.dword(at);
        if low & 1 == 1 {
            return None;
        }
        let high = if (low >> 1) & 0x3 == 0x2 {
            self.dword(at + 4) as u64
        } else {
            0
        };
        Some(high << 32 | (low & !0xf) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn igb() -> ConfigSpace {
        let d =
            crate::lspci::parse(include_str!("../../../configs/devices/82576-pf.lspci")).unwrap();
        let mut sizes = BarSizes::default();
        sizes.bars[0] = Some(0x20000);
        sizes.bars[2] = Some(0x20);
        sizes.bars[3] = Some(0x4000);
        sizes.rom = Some(0x20000);
        ConfigSpace::new(&d.bytes, sizes).unwrap()
    }

    fn virtio() -> ConfigSpace {
        let d =
            crate::lspci::parse(include_str!("../../../configs/devices/virtio-net.lspci")).unwrap();
        ConfigSpace::new(&d.bytes, BarSizes::default()).unwrap()
    }

    fn ids(caps: &[Capability]) -> Vec<(u16, u16)> {
        caps.iter().map(|c| (c.id, c.offset)).collect()
    }

    #[test]
    fn capability_chains_of_real_devices() {
        let c = igb();
        assert_eq!(c.len(), 4096);
        assert_eq!(
            ids(&c.capabilities().unwrap()),
            [(0x01, 0x40), (0x05, 0x50), (0x11, 0x70), (0x10, 0xa0)]
        );
        assert_eq!(
            ids(&c.extended_capabilities().unwrap()),
            [
                (0x0001, 0x100),
                (0x0003, 0x140),
                (0x000e, 0x150),
                (0x0010, 0x160)
            ]
        );
        let m = c.msix().unwrap();
        assert_eq!(
            (
                m.table_size,
                m.table_bir,
                m.table_offset,
                m.pba_bir,
                m.pba_offset
            ),
            (10, 3, 0, 3, 0x2000)
        );

        let v = virtio();
        assert_eq!(v.len(), 256);
        assert_eq!(
            ids(&v.capabilities().unwrap()),
            [
                (0x11, 0x84),
                (0x09, 0x70),
                (0x09, 0x60),
                (0x09, 0x50),
                (0x09, 0x40)
            ]
        );
        assert!(v.extended_capabilities().unwrap().is_empty());
        let m = v.msix().unwrap();
        assert_eq!(
            (
                m.table_size,
                m.table_bir,
                m.table_offset,
                m.pba_bir,
                m.pba_offset
            ),
            (3, 1, 0, 1, 0x800)
        );
    }

    #[test]
    fn broken_chains_are_reported_with_their_offset() {
        let mut bytes = igb().bytes().to_vec();
        bytes[0x71] = 0x50; // MSI-X points back to MSI
        assert_eq!(
            ConfigSpace::new(&bytes, BarSizes::default()),
            Err(ConfigError::Chain(ChainError::Loop { at: 0x71, to: 0x50 }))
        );
        bytes[0x71] = 0x20; // into the header
        assert_eq!(
            ConfigSpace::new(&bytes, BarSizes::default())
                .unwrap_err()
                .to_string(),
            "capability pointer at 0x71 points to 0x20, outside the capability area or misaligned"
        );
        let mut bytes = igb().bytes().to_vec();
        bytes[0x162..0x164].copy_from_slice(&[0x01, 0x10]); // SR-IOV's next → 0x100
        assert!(matches!(
            ConfigSpace::new(&bytes, BarSizes::default()),
            Err(ConfigError::Chain(ChainError::Loop { to: 0x100, .. }))
        ));
        bytes[0x0e] = 1;
        assert_eq!(
            ConfigSpace::new(&bytes, BarSizes::default()),
            Err(ConfigError::HeaderType(1))
        );
        assert_eq!(
            ConfigSpace::new(&bytes[..100], BarSizes::default()),
            Err(ConfigError::Size(100))
        );
    }

    #[test]
    fn header_registers_keep_their_access_rules() {
        let mut c = igb();
        // IDs are read-only.
        c.write(0, 0xf, [0; 4]);
        assert_eq!(c.read(0), [0x86, 0x80, 0xc9, 0x10]);
        // Command: only the enabled byte changes, only writable bits.
        c.write(0x04, 0b0001, [0xff, 0xff, 0xff, 0xff]);
        assert_eq!(c.word(0x04), 0x0447, "low byte 0x47, high byte kept (0x04)");
        // Status: the error bits clear when written with 1, others stay.
        c.set_raw(0x06, &[0x10, 0x81]);
        c.write(0x04, 0b1100, [0, 0, 0x00, 0x01]);
        assert_eq!(c.word(0x06), 0x8010);
        c.write(0x04, 0b1100, [0, 0, 0x10, 0x80]);
        assert_eq!(c.word(0x06), 0x0010, "Capabilities List is read-only");
        // Interrupt Line writable, Pin read-only.
        c.write(0x3c, 0xf, [0x42, 0x07, 0xff, 0xff]);
        assert_eq!(c.read(0x3c), [0x42, 0x01, 0, 0]);
    }

    #[test]
    fn bars_answer_the_size_probe() {
        let mut c = igb();
        for (bar, expect) in [
            (0x10, 0xfffe_0000u32),
            (0x18, 0xffff_ffe1),
            (0x1c, 0xffff_c000),
            (0x20, 0),
        ] {
            c.write(bar, 0xf, [0xff; 4]);
            assert_eq!(u32::from_le_bytes(c.read(bar)), expect, "BAR at {bar:#x}");
        }
        c.write(0x30, 0xf, [0xff; 4]);
        assert_eq!(c.dword(0x30), 0xfffe_0001);
        // Programming an address: the BAR decodes it.
        c.write(0x10, 0xf, 0xc000_0000u32.to_le_bytes());
        assert_eq!(c.bar_address(0), Some(0xc000_0000));
        assert_eq!(c.bar_address(2), None, "an I/O BAR");
        assert_eq!(c.bar_address(4), None, "not implemented");
        // A 64-bit BAR: the upper DW is all address.
        let mut bytes = igb().bytes().to_vec();
        bytes[0x10] = 0x04;
        let mut sizes = BarSizes::default();
        sizes.bars[0] = Some(0x20000);
        let mut c = ConfigSpace::new(&bytes, sizes).unwrap();
        c.write(0x14, 0xf, [0xff; 4]);
        c.write(0x10, 0xf, [0xff; 4]);
        assert_eq!((c.dword(0x10), c.dword(0x14)), (0xfffe_0004, 0xffff_ffff));
        c.write(0x14, 0xf, 2u32.to_le_bytes());
        c.write(0x10, 0xf, 0x8000_0000u32.to_le_bytes());
        assert_eq!(c.bar_address(0), Some(0x2_8000_0000));
        assert_eq!(
            ConfigSpace::new(
                &bytes,
                BarSizes {
                    bars: [Some(0x3000), None, None, None, None, None],
                    rom: None
                }
            ),
            Err(ConfigError::BarSize {
                index: 0,
                size: 0x3000
            })
        );
    }

    #[test]
    fn capability_registers_keep_their_access_rules() {
        let mut c = igb();
        // PM: PowerState and PME_En writable; PME_Status write-1-to-clear.
        c.set_raw(0x44, &[0x00, 0x81]);
        c.write(0x44, 0b0011, [0x03, 0x80, 0, 0]);
        assert_eq!(
            c.word(0x44),
            0x0003,
            "D3hot, PME_En written 0, PME_Status cleared"
        );
        // MSI-X: Enable and Function Mask writable, Table Size read-only.
        c.write(0x70, 0b1100, [0, 0, 0xff, 0xff]);
        assert_eq!(c.word(0x72), 0xc009);
        // PCIe Device Status: error bits RW1C (0x1a → 0x10: AuxPwr stays).
        c.write(0xa8, 0b1100, [0, 0, 0xff, 0xff]);
        assert_eq!(c.word(0xaa), 0x0010);
        // AER: uncorrectable status W1C, mask RW.
        c.set_raw(0x104, &0x0010_0000u32.to_le_bytes());
        c.write(0x104, 0xf, 0x0010_0000u32.to_le_bytes());
        assert_eq!(c.dword(0x104), 0);
        c.write(0x108, 0xf, [0xff; 4]);
        assert_eq!(c.dword(0x108), 0x07ff_f030);
        // SR-IOV NumVFs is writable, TotalVFs is not.
        c.write(0x170, 0b0011, [2, 0, 0, 0]);
        c.write(0x16c, 0xf, [0, 0, 0, 0]);
        assert_eq!((c.word(0x170), c.word(0x16e)), (2, 8));
    }

    proptest! {
        /// No write changes a bit that is neither writable nor
        /// write-1-to-clear, and a write-1-to-clear bit never becomes 1.
        #[test]
        fn writes_obey_the_masks(writes in proptest::collection::vec((0u16..0x1000, 0u8..16, any::<[u8; 4]>()), 1..50)) {
            let mut c = igb();
            for (offset, be, value) in writes {
                let at = offset & !3;
                let before = c.read(at);
                c.write(offset, be, value);
                let after = c.read(at);
                for i in 0..4 {
                    let fixed = !(c.writable_mask(at + i as u16) | c.clear_on_one_mask(at + i as u16));
                    let fixed = if be & (1 << i) == 0 { 0xff } else { fixed };
                    prop_assert_eq!(before[i] & fixed, after[i] & fixed);
                    let w1c = c.clear_on_one_mask(at + i as u16);
                    prop_assert_eq!(after[i] & w1c & !before[i], 0);
                }
            }
        }
    }
}
