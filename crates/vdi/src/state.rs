//! The state that moves with a function, as plain data: what a snapshot
//! holds. A snapshot is untrusted input (it may come from another process,
//! another version, a damaged file): [`VdiState::try_from`] checks every
//! invariant the format itself has, and [`Layout::fits`] every one a VDI
//! needs of a state before taking it, for a snapshot and for the state of
//! another VDI in the same process alike.

use crate::vdi::SnapshotError;

const MAGIC: &[u8; 8] = b"TLPF-VDI";
/// The snapshot format version written and read.
pub const SNAPSHOT_VERSION: u16 = 1;

/// The largest configuration space (PCI Express extended, 4 KiB).
const MAX_CONFIG: usize = 4096;
/// The most registers a template may have; more in a snapshot is damage.
const MAX_REGISTERS: usize = 65_536;
/// The most MSI-X vectors a function has (Table Size is 11 bits: PCIe Base
/// Specification §7.7.2.2).
const MAX_VECTORS: usize = 2048;

/// A function's moving state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VdiState {
    /// Vendor and device IDs of the function it was taken from.
    pub ids: (u16, u16),
    /// Its configuration space.
    pub config: Vec<u8>,
    /// Its BAR registers' values, in the template's order.
    pub registers: Vec<u64>,
    /// Its MSI-X table entries (address low, address high, data, vector
    /// control).
    pub msix_table: Vec<[u32; 4]>,
    /// Its MSI-X pending bits, 64 vectors a word.
    pub msix_pending: Vec<u64>,
}

/// The shape of a state: what a VDI must share with it to take it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// Vendor and device IDs.
    pub ids: (u16, u16),
    /// Bytes of configuration space.
    pub config_len: usize,
    /// BAR registers.
    pub registers: usize,
    /// MSI-X vectors.
    pub vectors: usize,
}

impl Layout {
    /// Whether a state of layout `found` can be taken by a VDI of this
    /// layout; if not, the first difference.
    pub fn fits(&self, found: &Layout) -> Result<(), SnapshotError> {
        if found.ids != self.ids {
            return Err(SnapshotError::Device {
                found: found.ids,
                expected: self.ids,
            });
        }
        if found.config_len != self.config_len {
            return Err(SnapshotError::Layout("configuration space size"));
        }
        if found.registers != self.registers {
            return Err(SnapshotError::Layout("register count"));
        }
        if found.vectors != self.vectors {
            return Err(SnapshotError::Layout("MSI-X table size"));
        }
        Ok(())
    }
}

impl VdiState {
    /// Its layout.
    pub fn layout(&self) -> Layout {
        Layout {
            ids: self.ids,
            config_len: self.config.len(),
            registers: self.registers.len(),
            vectors: self.msix_table.len(),
        }
    }

    /// The snapshot: versioned and checksummed.
    pub fn encode(&self) -> Vec<u8> {
        let mut s = Vec::with_capacity(
            24 + self.config.len() + 8 * self.registers.len() + 16 * self.msix_table.len(),
        );
        s.extend_from_slice(MAGIC);
        s.extend_from_slice(&SNAPSHOT_VERSION.to_le_bytes());
        s.extend_from_slice(&self.ids.0.to_le_bytes());
        s.extend_from_slice(&self.ids.1.to_le_bytes());
        s.extend_from_slice(&(self.config.len() as u32).to_le_bytes());
        s.extend_from_slice(&self.config);
        s.extend_from_slice(&(self.registers.len() as u32).to_le_bytes());
        for v in &self.registers {
            s.extend_from_slice(&v.to_le_bytes());
        }
        s.extend_from_slice(&(self.msix_table.len() as u32).to_le_bytes());
        for e in &self.msix_table {
            for w in e {
                s.extend_from_slice(&w.to_le_bytes());
            }
        }
        for w in &self.msix_pending {
            s.extend_from_slice(&w.to_le_bytes());
        }
        let crc = crate::vdi::crc32(&s);
        s.extend_from_slice(&crc.to_le_bytes());
        s
    }
}

/// Reads a snapshot, checking everything the format says: the magic, the
/// version, the checksum, each count within its bound, the pending words
/// matching the vectors, no pending bit past the last vector, and not a
/// byte left over.
impl TryFrom<&[u8]> for VdiState {
    type Error = SnapshotError;

    fn try_from(snapshot: &[u8]) -> Result<VdiState, SnapshotError> {
        use SnapshotError::{Layout, NotASnapshot};
        let mut r = Reader { b: snapshot, at: 0 };
        if r.take(8) != Some(&MAGIC[..]) {
            return Err(NotASnapshot);
        }
        let version = r.u16().ok_or(NotASnapshot)?;
        if version != SNAPSHOT_VERSION {
            return Err(SnapshotError::Version {
                found: version,
                expected: SNAPSHOT_VERSION,
            });
        }
        let body = snapshot.len().checked_sub(4).ok_or(NotASnapshot)?;
        let stored = snapshot
            .get(body..)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_le_bytes)
            .ok_or(NotASnapshot)?;
        if body < r.at || crate::vdi::crc32(&snapshot[..body]) != stored {
            return Err(SnapshotError::Checksum);
        }
        // The checksum covers everything below: what fails now was written
        // wrong, not damaged on the way.
        let ids = (r.u16().ok_or(NotASnapshot)?, r.u16().ok_or(NotASnapshot)?);
        let config_len = r.u32().ok_or(NotASnapshot)? as usize;
        if config_len > MAX_CONFIG || !config_len.is_multiple_of(4) {
            return Err(Layout("configuration space size"));
        }
        let config = r.take(config_len).ok_or(NotASnapshot)?.to_vec();
        let count = r.u32().ok_or(NotASnapshot)? as usize;
        if count > MAX_REGISTERS || count * 8 > body.saturating_sub(r.at) {
            return Err(Layout("register count"));
        }
        let registers = (0..count)
            .map(|_| r.u64().ok_or(NotASnapshot))
            .collect::<Result<Vec<_>, _>>()?;
        let vectors = r.u32().ok_or(NotASnapshot)? as usize;
        if vectors > MAX_VECTORS || vectors * 16 > body.saturating_sub(r.at) {
            return Err(Layout("MSI-X table size"));
        }
        let msix_table = (0..vectors)
            .map(|_| {
                let mut e = [0u32; 4];
                for w in &mut e {
                    *w = r.u32().ok_or(NotASnapshot)?;
                }
                Ok(e)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let msix_pending = (0..vectors.div_ceil(64))
            .map(|_| r.u64().ok_or(NotASnapshot))
            .collect::<Result<Vec<_>, _>>()?;
        if let Some(&last) = msix_pending.last() {
            let used = vectors % 64;
            if used != 0 && last >> used != 0 {
                return Err(Layout("pending bits past the last MSI-X vector"));
            }
        }
        if r.at != body {
            return Err(Layout("length"));
        }
        Ok(VdiState {
            ids,
            config,
            registers,
            msix_table,
            msix_pending,
        })
    }
}

struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.b.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(s)
    }
    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Option<u32> {
        self.take(4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> Option<u64> {
        self.take(8).map(|b| {
            let mut a = [0u8; 8];
            a.copy_from_slice(b);
            u64::from_le_bytes(a)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> VdiState {
        VdiState {
            ids: (0x8086, 0x10c9),
            config: (0..256).map(|i| i as u8).collect(),
            registers: vec![1, 2, u64::MAX],
            msix_table: vec![[1, 2, 3, 1]; 10],
            msix_pending: vec![0b10_0000_0001],
        }
    }

    /// A snapshot of `s` as written, its checksum made right again after
    /// `change`: damage the checksum cannot see.
    fn resealed(s: &VdiState, change: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
        let mut bytes = s.encode();
        bytes.truncate(bytes.len() - 4);
        change(&mut bytes);
        let crc = crate::vdi::crc32(&bytes);
        bytes.extend_from_slice(&crc.to_le_bytes());
        bytes
    }

    #[test]
    fn a_state_reads_back_as_it_was_written() {
        let s = state();
        assert_eq!(VdiState::try_from(&s.encode()[..]), Ok(s));
    }

    #[test]
    fn every_broken_invariant_is_a_typed_error() {
        let s = state();
        let good = s.encode();
        let mut flipped = good.clone();
        flipped[40] ^= 1;
        assert_eq!(
            VdiState::try_from(&flipped[..]),
            Err(SnapshotError::Checksum)
        );
        assert_eq!(
            VdiState::try_from(&good[..3]),
            Err(SnapshotError::NotASnapshot)
        );
        let mut stray = s.clone();
        stray.msix_pending[0] |= 1 << 12;
        assert_eq!(
            VdiState::try_from(&stray.encode()[..]),
            Err(SnapshotError::Layout(
                "pending bits past the last MSI-X vector"
            ))
        );
        let mut odd = s.clone();
        odd.config.truncate(255);
        assert_eq!(
            VdiState::try_from(&odd.encode()[..]),
            Err(SnapshotError::Layout("configuration space size"))
        );
        // A register count far past what the snapshot holds is refused
        // before anything is allocated for it.
        let huge = resealed(&s, |b| {
            b[18 + 256..18 + 260].copy_from_slice(&60_000u32.to_le_bytes())
        });
        assert_eq!(
            VdiState::try_from(&huge[..]),
            Err(SnapshotError::Layout("register count"))
        );
        let trailing = resealed(&s, |b| b.push(0));
        assert_eq!(
            VdiState::try_from(&trailing[..]),
            Err(SnapshotError::Layout("length"))
        );
    }

    #[test]
    fn layouts_that_differ_say_how() {
        let s = state();
        let mut other = s.layout();
        assert_eq!(s.layout().fits(&other), Ok(()));
        other.vectors = 9;
        assert_eq!(
            s.layout().fits(&other),
            Err(SnapshotError::Layout("MSI-X table size"))
        );
        other.ids = (1, 2);
        assert!(matches!(
            s.layout().fits(&other),
            Err(SnapshotError::Device { .. })
        ));
    }

    #[test]
    fn no_input_panics() {
        let good = state().encode();
        // Every truncation and every single-byte change of a good snapshot.
        for n in 0..good.len() {
            assert!(VdiState::try_from(&good[..n]).is_err(), "cut at {n}");
            let mut b = good.clone();
            b[n] = b[n].wrapping_add(0x5a);
            assert!(VdiState::try_from(&b[..]).is_err(), "byte {n} changed");
            let resealed = resealed(&state(), |bytes| {
                if let Some(x) = bytes.get_mut(n) {
                    *x = x.wrapping_add(0x5a);
                }
            });
            let _ = VdiState::try_from(&resealed[..]);
        }
    }
}
