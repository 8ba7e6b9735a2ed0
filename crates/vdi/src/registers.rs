//! A function's BAR registers as its template describes them: where each
//! register is, its width and reset value, and its access class, which
//! decides whether the VDI may serve an access or the device must see it.

use core::fmt;

/// What an access to a register involves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Access {
    /// Plain read/write storage: the VDI serves both from its shadow.
    Shadowable,
    /// Read-only: reads are served, writes ignored.
    ReadOnly,
    /// Write-1-to-clear: reads are served, a write clears the bits it sets.
    WriteOneToClear,
    /// Reading changes device state (read-to-clear counters, cause
    /// registers): reads and writes must reach the device.
    ReadSideEffect,
    /// Writing makes the device act (doorbells, tail pointers, mask
    /// set/clear): writes must reach the device; reads are served.
    WriteSideEffect,
}

impl Access {
    /// `shadowable`, `read_only`, `w1c`, `read_side_effect` or `doorbell`.
    pub const fn name(self) -> &'static str {
        match self {
            Access::Shadowable => "shadowable",
            Access::ReadOnly => "read_only",
            Access::WriteOneToClear => "w1c",
            Access::ReadSideEffect => "read_side_effect",
            Access::WriteSideEffect => "doorbell",
        }
    }

    /// The class named `name` (as [`Access::name`] spells it).
    pub fn from_name(name: &str) -> Option<Access> {
        [
            Access::Shadowable,
            Access::ReadOnly,
            Access::WriteOneToClear,
            Access::ReadSideEffect,
            Access::WriteSideEffect,
        ]
        .into_iter()
        .find(|a| a.name() == name)
    }

    /// Whether a read can be served without the device.
    pub const fn read_served(self) -> bool {
        !matches!(self, Access::ReadSideEffect)
    }

    /// Whether a write can be served without the device.
    pub const fn write_served(self) -> bool {
        matches!(
            self,
            Access::Shadowable | Access::ReadOnly | Access::WriteOneToClear
        )
    }
}

/// One register.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Register {
    /// Its name.
    pub name: String,
    /// The BAR it is in.
    pub bar: u8,
    /// Byte offset in the BAR.
    pub offset: u32,
    /// Bytes: 1, 2, 4 or 8.
    pub width: u8,
    /// Value after reset.
    pub reset: u64,
    /// Access class.
    pub access: Access,
}

/// Two registers overlap, or one has a width other than 1, 2, 4 or 8, or is
/// not aligned to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayoutError {
    /// The register's name.
    pub name: String,
    /// What was wrong.
    pub message: String,
}

impl fmt::Display for LayoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "register {}: {}", self.name, self.message)
    }
}

impl std::error::Error for LayoutError {}

/// Registers sorted by (BAR, offset), with their current values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisterFile {
    registers: Vec<Register>,
    /// BAR << 32 | first byte, of each register, for the search.
    starts: Vec<u64>,
    values: Vec<u64>,
}

/// Where a byte of a BAR falls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hit {
    /// Index of the register.
    pub index: usize,
    /// Byte within it.
    pub byte: u32,
    /// Its access class.
    pub access: Access,
}

impl RegisterFile {
    /// Whether `other` has the same registers (values aside).
    pub(crate) fn same_layout(&self, other: &RegisterFile) -> bool {
        self.registers == other.registers && self.values.len() == other.values.len()
    }

    /// Takes `other`'s values (same layout: [`RegisterFile::same_layout`]).
    pub(crate) fn copy_values_from(&mut self, other: &RegisterFile) {
        self.values.copy_from_slice(&other.values);
    }

    /// A file of `registers`, each at its reset value.
    pub fn new(mut registers: Vec<Register>) -> Result<RegisterFile, LayoutError> {
        registers.sort_by_key(|r| (r.bar, r.offset));
        for r in &registers {
            if ![1, 2, 4, 8].contains(&r.width) || r.offset % r.width as u32 != 0 || r.bar > 5 {
                return Err(LayoutError {
                    name: r.name.clone(),
                    message: format!(
                        "expected width 1, 2, 4 or 8 at an offset aligned to it in BAR 0..5, found width {} at {:#x} in BAR {}",
                        r.width, r.offset, r.bar
                    ),
                });
            }
        }
        for pair in registers.windows(2) {
            let (a, b) = (&pair[0], &pair[1]);
            if a.bar == b.bar && a.offset + a.width as u32 > b.offset {
                return Err(LayoutError {
                    name: b.name.clone(),
                    message: format!("overlaps register {} in BAR {}", a.name, a.bar),
                });
            }
        }
        Ok(RegisterFile {
            starts: registers
                .iter()
                .map(|r| (r.bar as u64) << 32 | r.offset as u64)
                .collect(),
            values: registers.iter().map(|r| r.reset).collect(),
            registers,
        })
    }

    /// The registers.
    pub fn registers(&self) -> &[Register] {
        &self.registers
    }

    /// Current values, in register order.
    pub fn values(&self) -> &[u64] {
        &self.values
    }

    /// Replaces every value (a restored snapshot); false if the count differs.
    pub fn set_values(&mut self, values: &[u64]) -> bool {
        if values.len() != self.values.len() {
            return false;
        }
        self.values.copy_from_slice(values);
        true
    }

    /// The value of a register by index.
    pub fn value(&self, index: usize) -> Option<u64> {
        self.values.get(index).copied()
    }

    /// Sets a register's value as the device would (sync from the device).
    pub fn set_value(&mut self, index: usize, value: u64) {
        if let Some(v) = self.values.get_mut(index) {
            *v = value;
        }
    }

    /// The register holding byte `offset` of `bar`.
    #[inline]
    pub fn find(&self, bar: u8, offset: u32) -> Option<Hit> {
        let key = (bar as u64) << 32 | offset as u64;
        let i = self.starts.partition_point(|&s| s <= key);
        let index = i.checked_sub(1)?;
        let r = &self.registers[index];
        (r.bar == bar && offset < r.offset + r.width as u32).then(|| Hit {
            index,
            byte: offset - r.offset,
            access: r.access,
        })
    }

    /// The register holding every byte from `first` to `last` (inclusive)
    /// of `bar`, if one register holds them all.
    #[inline]
    pub fn find_span(&self, bar: u8, first: u32, last: u32) -> Option<Hit> {
        let hit = self.find(bar, first)?;
        let r = &self.registers[hit.index];
        (last < r.offset + r.width as u32).then_some(hit)
    }

    /// The first byte of a register in its BAR.
    #[inline]
    pub fn offset_of(&self, index: usize) -> u32 {
        self.registers[index].offset
    }

    /// One byte of a register.
    #[inline]
    pub fn read_byte(&self, hit: Hit) -> u8 {
        (self.values[hit.index] >> (8 * hit.byte)) as u8
    }

    /// Writes one byte of a register by its access class (side-effect
    /// registers are the caller's to route to the device, not written here).
    #[inline]
    pub fn write_byte(&mut self, hit: Hit, value: u8) {
        self.apply_byte(hit, value, false);
    }

    /// Notes one byte of a write on its way to the device, as the device
    /// will hold it: as [`RegisterFile::write_byte`], and a doorbell keeps
    /// what was written (it reads back as a tail pointer does).
    #[inline]
    pub fn observe_byte(&mut self, hit: Hit, value: u8) {
        self.apply_byte(hit, value, true);
    }

    fn apply_byte(&mut self, hit: Hit, value: u8, reaches_device: bool) {
        let shift = 8 * hit.byte;
        let old = self.values[hit.index];
        let byte = (old >> shift) as u8;
        let new = match hit.access {
            Access::Shadowable => value,
            Access::WriteOneToClear => byte & !value,
            Access::WriteSideEffect if reaches_device => value,
            _ => return,
        };
        self.values[hit.index] = (old & !(0xff << shift)) | (new as u64) << shift;
    }

    /// The end of the last register of `bar` (0: it has none): the bytes
    /// before it are where writes may change a register.
    pub fn span(&self, bar: u8) -> u32 {
        self.registers
            .iter()
            .filter(|r| r.bar == bar)
            .map(|r| r.offset + r.width as u32)
            .max()
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reg(name: &str, offset: u32, width: u8, access: Access) -> Register {
        Register {
            name: name.into(),
            bar: 0,
            offset,
            width,
            reset: 0x1122_3344,
            access,
        }
    }

    #[test]
    fn finds_bytes_and_applies_access_classes() {
        let mut f = RegisterFile::new(vec![
            reg("B", 8, 4, Access::WriteOneToClear),
            reg("A", 0, 4, Access::Shadowable),
            reg("C", 16, 4, Access::ReadOnly),
        ])
        .unwrap();
        let a1 = f.find(0, 1).unwrap();
        assert_eq!((a1.index, a1.byte), (0, 1));
        assert_eq!(f.read_byte(a1), 0x33);
        assert!(f.find(0, 4).is_none(), "a gap");
        assert!(f.find(1, 0).is_none(), "another BAR");
        f.write_byte(a1, 0xaa);
        assert_eq!(f.value(0), Some(0x1122_aa44));
        let b0 = f.find(0, 8).unwrap();
        f.write_byte(b0, 0x04);
        assert_eq!(f.value(1), Some(0x1122_3340), "bit 2 cleared");
        let c = f.find(0, 16).unwrap();
        f.write_byte(c, 0);
        assert_eq!(f.value(2), Some(0x1122_3344), "read-only");
    }

    #[test]
    fn layouts_are_checked() {
        let e = RegisterFile::new(vec![
            reg("A", 0, 4, Access::Shadowable),
            reg("B", 2, 2, Access::Shadowable),
        ])
        .unwrap_err();
        assert_eq!(e.to_string(), "register B: overlaps register A in BAR 0");
        let e = RegisterFile::new(vec![reg("A", 2, 4, Access::Shadowable)]).unwrap_err();
        assert!(e.message.starts_with("expected width 1, 2, 4 or 8"));
        assert_eq!(Access::from_name("doorbell"), Some(Access::WriteSideEffect));
        assert_eq!(Access::from_name("bogus"), None);
    }
}
