//! What a model received, with the time it came: what an end-to-end test
//! asserts on, the other side's view rather than a component's own
//! counters. Room is taken once; a model logs nothing unless asked to.

use crate::stream;
use tlp::{Bdf, Kind, Tlp};

/// One TLP as its receiver saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Received {
    /// When it came (the model's clock, ns).
    pub at: u64,
    /// Its kind (`None`: one the parser names no kind for).
    pub kind: Option<Kind>,
    /// Its requester ID.
    pub requester: Bdf,
    /// Memory requests: the address. Configuration requests: the target
    /// ID (high 16 bits) and register. Completions: the tag.
    pub address: u64,
    /// Its tag (requests and completions; a posted write's is 0).
    pub tag: u16,
    /// A tracked payload's stream and sequence number.
    pub stamp: Option<(u32, u64)>,
    /// A one-DW memory write's data (an MSI-X message's, say).
    pub data: Option<u32>,
}

/// A log of what arrived, of a capacity fixed when it is made: past it,
/// arrivals are counted, not kept, and nothing is allocated.
#[derive(Debug, Clone, Default)]
pub struct ArrivalLog {
    entries: Vec<Received>,
    missed: u64,
}

impl ArrivalLog {
    /// A log with room for `capacity` arrivals (0: it keeps nothing).
    pub fn with_capacity(capacity: usize) -> ArrivalLog {
        ArrivalLog {
            entries: Vec::with_capacity(capacity),
            missed: 0,
        }
    }

    /// Notes `t`, arrived at `at`, if there is room.
    pub fn record(&mut self, at: u64, t: &Tlp<&[u8]>) {
        if self.entries.capacity() == 0 {
            return;
        }
        if self.entries.len() == self.entries.capacity() {
            self.missed += 1;
            return;
        }
        let kind = t.kind();
        let address = match kind {
            Some(Kind::CfgRd0 | Kind::CfgWr0 | Kind::CfgRd1 | Kind::CfgWr1) => {
                u64::from(t.target_id().0) << 16 | u64::from(t.register())
            }
            Some(Kind::Cpl | Kind::CplD | Kind::CplLk | Kind::CplDLk) => u64::from(t.tag()),
            Some(Kind::MRd | Kind::MWr | Kind::MRdLk) => t.address(),
            _ => 0,
        };
        let stamp = match kind {
            Some(Kind::MWr | Kind::CplD) => stream::read(t.payload()).map(|(s, q, _)| (s, q)),
            _ => None,
        };
        let data = match kind {
            Some(Kind::MWr) => <[u8; 4]>::try_from(t.payload())
                .ok()
                .map(u32::from_le_bytes),
            _ => None,
        };
        self.entries.push(Received {
            at,
            kind,
            requester: t.requester_id(),
            address,
            tag: t.tag(),
            stamp,
            data,
        });
    }

    /// Notes an entry made by the caller (what a model sent, say), if there
    /// is room.
    pub fn note(&mut self, entry: Received) {
        if self.entries.len() < self.entries.capacity() {
            self.entries.push(entry);
        } else if self.entries.capacity() > 0 {
            self.missed += 1;
        }
    }

    /// Entries it has room for.
    pub fn capacity(&self) -> usize {
        self.entries.capacity()
    }

    /// What arrived, in order.
    pub fn entries(&self) -> &[Received] {
        &self.entries
    }

    /// Arrivals past its capacity.
    pub fn missed(&self) -> u64 {
        self.missed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tlp::build::{memory_write, MemAccess};

    #[test]
    fn a_log_keeps_what_fits_and_counts_the_rest() {
        let mut buf = [0u8; 64];
        let mut data = [0u8; 16];
        stream::fill(&mut data, 7, 3);
        let n = memory_write(
            &mut buf,
            Bdf(0x0100),
            1,
            MemAccess::dwords(0x1000, 4),
            &data,
        )
        .unwrap();
        let t = Tlp::new_checked(&buf[..n]).unwrap();
        let mut log = ArrivalLog::with_capacity(2);
        for at in [10, 20, 30] {
            log.record(at, &t);
        }
        assert_eq!(log.entries().len(), 2);
        assert_eq!(log.missed(), 1);
        let first = log.entries()[0];
        assert_eq!(
            (
                first.at,
                first.kind,
                first.address,
                first.tag,
                first.stamp,
                first.data
            ),
            (10, Some(Kind::MWr), 0x1000, 1, Some((7, 3)), None)
        );
        let mut buf = [0u8; 64];
        let n = memory_write(
            &mut buf,
            Bdf(0x0100),
            0,
            MemAccess::dwords(0xfee0_0000, 1),
            &0x41u32.to_le_bytes(),
        )
        .unwrap();
        let mut log = ArrivalLog::with_capacity(1);
        log.record(5, &Tlp::new_checked(&buf[..n]).unwrap());
        assert_eq!(log.entries()[0].data, Some(0x41), "an interrupt's data");
        let mut none = ArrivalLog::default();
        none.record(1, &t);
        assert!(none.entries().is_empty());
        assert_eq!(none.missed(), 0, "a log made without room is off");
    }
}
