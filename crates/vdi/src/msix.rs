//! MSI-X (PCIe Base Specification 4.0 §6.1.4.5, §7.7.2): a table of vectors
//! (address, data, a mask bit each) and a pending-bit array, both in a BAR.
//! A vector raised while it or the whole function is masked sets its pending
//! bit instead; clearing the mask delivers it. Delivery is a memory write of
//! the vector's data to its address.

use crate::config::MsixInfo;

/// What raising a vector did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Raised {
    /// Deliver: write `data` to `address`.
    Deliver {
        /// Message address.
        address: u64,
        /// Message data.
        data: u32,
    },
    /// Masked: its pending bit is set.
    Pending,
    /// MSI-X is not enabled, or the vector does not exist.
    Dropped,
}

/// The table and pending bits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Msix {
    info: MsixInfo,
    /// Per vector: address low, address high, data, vector control.
    table: Vec<[u32; 4]>,
    pending: Vec<u64>,
}

const ENTRY: u32 = 16;
/// Vector Control bit 0.
const MASKED: u32 = 1;

impl Msix {
    /// Whether `other` has this table's size and place.
    pub(crate) fn same_layout(&self, other: &Msix) -> bool {
        self.info == other.info && self.table.len() == other.table.len()
    }

    /// Takes `other`'s vectors and pending bits (same layout).
    pub(crate) fn copy_from(&mut self, other: &Msix) {
        self.table.copy_from_slice(&other.table);
        self.pending.copy_from_slice(&other.pending);
    }

    /// A table of `info.table_size` vectors, each masked (its reset state).
    pub fn new(info: MsixInfo) -> Msix {
        let n = info.table_size as usize;
        Msix {
            info,
            table: vec![[0, 0, 0, MASKED]; n],
            pending: vec![0; n.div_ceil(64)],
        }
    }

    /// Where the table and array are.
    pub fn info(&self) -> MsixInfo {
        self.info
    }

    /// The table entries (address low, address high, data, vector control).
    pub fn table(&self) -> &[[u32; 4]] {
        &self.table
    }

    /// The pending bits, 64 vectors a word.
    pub fn pending_words(&self) -> &[u64] {
        &self.pending
    }

    /// Replaces table and pending bits (a restored snapshot); false if the
    /// sizes differ.
    pub fn restore(&mut self, table: &[[u32; 4]], pending: &[u64]) -> bool {
        if table.len() != self.table.len() || pending.len() != self.pending.len() {
            return false;
        }
        self.table.copy_from_slice(table);
        self.pending.copy_from_slice(pending);
        true
    }

    /// Sets one table entry as the device holds it (a sync from the device).
    pub fn set_entry(&mut self, vector: usize, entry: [u32; 4]) {
        if let Some(e) = self.table.get_mut(vector) {
            *e = entry;
        }
    }

    /// Whether a vector is pending.
    pub fn is_pending(&self, vector: u16) -> bool {
        let v = vector as usize;
        self.pending
            .get(v / 64)
            .is_some_and(|w| w >> (v % 64) & 1 == 1)
    }

    fn table_span(&self) -> (u32, u32) {
        let start = self.info.table_offset;
        (start, start + self.table.len() as u32 * ENTRY)
    }

    fn pba_span(&self) -> (u32, u32) {
        let start = self.info.pba_offset;
        (start, start + self.pending.len() as u32 * 8)
    }

    /// Whether byte `offset` of `bar` belongs to the table or the array.
    #[inline]
    pub fn claims(&self, bar: u8, offset: u32) -> bool {
        let (t0, t1) = self.table_span();
        let (p0, p1) = self.pba_span();
        (bar == self.info.table_bir && (t0..t1).contains(&offset))
            || (bar == self.info.pba_bir && (p0..p1).contains(&offset))
    }

    /// Reads the DW at `offset` (DW aligned) of `bar`, if it is the table's
    /// or the array's.
    pub fn read_dword(&self, bar: u8, offset: u32) -> Option<u32> {
        let (t0, t1) = self.table_span();
        if bar == self.info.table_bir && (t0..t1).contains(&offset) {
            let i = ((offset - t0) / ENTRY) as usize;
            return Some(self.table[i][((offset - t0) % ENTRY / 4) as usize]);
        }
        let (p0, p1) = self.pba_span();
        if bar == self.info.pba_bir && (p0..p1).contains(&offset) {
            let w = self.pending[((offset - p0) / 8) as usize];
            return Some(if (offset - p0).is_multiple_of(8) {
                w as u32
            } else {
                (w >> 32) as u32
            });
        }
        None
    }

    /// Writes the enabled bytes of a table DW (the array is read-only).
    /// Returns whether the entry's mask bit went from set to clear.
    pub fn write_dword(&mut self, bar: u8, offset: u32, be: u8, value: u32) -> bool {
        let (t0, t1) = self.table_span();
        if bar != self.info.table_bir || !(t0..t1).contains(&offset) {
            return false;
        }
        let i = ((offset - t0) / ENTRY) as usize;
        let field = ((offset - t0) % ENTRY / 4) as usize;
        let mut mask = 0u32;
        for b in 0..4 {
            if be & (1 << b) != 0 {
                mask |= 0xff << (8 * b);
            }
        }
        if field == 3 {
            // Only the Mask bit of Vector Control is writable.
            mask &= MASKED;
        }
        let old = self.table[i][field];
        self.table[i][field] = (old & !mask) | (value & mask);
        field == 3 && old & MASKED != 0 && self.table[i][3] & MASKED == 0
    }

    /// Raises a vector, given the capability's Enable and Function Mask.
    pub fn raise(&mut self, vector: u16, enabled: bool, function_mask: bool) -> Raised {
        let v = vector as usize;
        let Some(entry) = self.table.get(v) else {
            return Raised::Dropped;
        };
        if !enabled {
            return Raised::Dropped;
        }
        if function_mask || entry[3] & MASKED != 0 {
            self.pending[v / 64] |= 1 << (v % 64);
            return Raised::Pending;
        }
        Raised::Deliver {
            address: (entry[1] as u64) << 32 | (entry[0] & !3) as u64,
            data: entry[2],
        }
    }

    /// The next pending vector that may now be delivered, its pending bit
    /// cleared (call until `None` after an unmask).
    pub fn next_deliverable(
        &mut self,
        enabled: bool,
        function_mask: bool,
    ) -> Option<(u16, u64, u32)> {
        if !enabled || function_mask {
            return None;
        }
        for (v, entry) in self.table.iter().enumerate() {
            let bit = 1u64 << (v % 64);
            if self.pending[v / 64] & bit != 0 && entry[3] & MASKED == 0 {
                self.pending[v / 64] &= !bit;
                let address = (entry[1] as u64) << 32 | (entry[0] & !3) as u64;
                return Some((v as u16, address, entry[2]));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msix() -> Msix {
        Msix::new(MsixInfo {
            offset: 0x70,
            table_size: 3,
            table_bir: 3,
            table_offset: 0,
            pba_bir: 3,
            pba_offset: 0x2000,
        })
    }

    #[test]
    fn masked_vectors_pend_and_deliver_on_unmask() {
        let mut m = msix();
        // Program vector 1: address 0xfee0_0000, data 0x4021, still masked.
        m.write_dword(3, 16, 0xf, 0xfee0_0000);
        m.write_dword(3, 16 + 8, 0xf, 0x4021);
        assert_eq!(m.raise(1, true, false), Raised::Pending);
        assert!(m.is_pending(1));
        assert_eq!(m.read_dword(3, 0x2000), Some(0b10), "the PBA shows it");
        assert_eq!(m.next_deliverable(true, false), None, "still masked");
        // Unmask: the pending vector is delivered once.
        assert!(m.write_dword(3, 16 + 12, 0xf, 0));
        assert_eq!(
            m.next_deliverable(true, false),
            Some((1, 0xfee0_0000, 0x4021))
        );
        assert_eq!(m.next_deliverable(true, false), None);
        assert!(!m.is_pending(1));
        assert_eq!(
            m.raise(1, true, false),
            Raised::Deliver {
                address: 0xfee0_0000,
                data: 0x4021
            }
        );
        // The function mask holds everything.
        assert_eq!(m.raise(1, true, true), Raised::Pending);
        assert_eq!(m.next_deliverable(true, true), None);
        assert_eq!(m.next_deliverable(true, false).map(|d| d.0), Some(1));
        // Disabled MSI-X or a vector beyond the table: nothing.
        assert_eq!(m.raise(1, false, false), Raised::Dropped);
        assert_eq!(m.raise(3, true, false), Raised::Dropped);
    }

    #[test]
    fn only_the_mask_bit_of_vector_control_is_writable_and_the_pba_is_read_only() {
        let mut m = msix();
        m.write_dword(3, 12, 0xf, 0xffff_fffe);
        assert_eq!(m.read_dword(3, 12), Some(0));
        m.write_dword(3, 12, 0xf, 1);
        assert_eq!(m.read_dword(3, 12), Some(1));
        m.raise(0, true, false);
        assert!(!m.write_dword(3, 0x2000, 0xf, 0));
        assert_eq!(m.read_dword(3, 0x2000), Some(1));
        // Byte enables: only the low byte of the data changes.
        m.write_dword(3, 8, 0x1, 0xaabb_ccdd);
        assert_eq!(m.read_dword(3, 8), Some(0xdd));
        assert!(m.claims(3, 0x2f) && !m.claims(3, 0x30) && !m.claims(0, 0));
    }
}
