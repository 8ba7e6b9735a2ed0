//! Sequence-numbered payloads and the accounting of a stream of them.
//!
//! A tracked write's payload starts with a 16-byte stamp: the magic
//! `TFSQ`, the stream number and the sequence number (big-endian); the rest
//! is a pattern derived from the sequence number, so a damaged payload is a
//! data mismatch.

/// What a model found, over everything it received and sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Integrity {
    /// Tracked TLPs sent (writes, and reads awaiting completion).
    pub sent: u64,
    /// Tracked TLPs that arrived (writes) or completed (reads).
    pub delivered: u64,
    /// Arrived again after having arrived once.
    pub duplicated: u64,
    /// Arrived out of order.
    pub reordered: u64,
    /// Reads whose completion did not come within the timeout.
    pub completion_timeouts: u64,
    /// Of those, the ones that would have completed in time but for the
    /// fabric's core being kept from running meanwhile (the OS or the
    /// hypervisor took it; counted only where a stall clock is read).
    pub completion_timeouts_in_stalls: u64,
    /// Payloads or read data that were not what was written.
    pub data_mismatches: u64,
    /// Completions for no outstanding read.
    pub unexpected_completions: u64,
}

impl Integrity {
    /// Adds another account to this one.
    pub fn add(&mut self, o: &Integrity) {
        self.sent += o.sent;
        self.delivered += o.delivered;
        self.duplicated += o.duplicated;
        self.reordered += o.reordered;
        self.completion_timeouts += o.completion_timeouts;
        self.completion_timeouts_in_stalls += o.completion_timeouts_in_stalls;
        self.data_mismatches += o.data_mismatches;
        self.unexpected_completions += o.unexpected_completions;
    }

    /// Sent and never delivered (meaningful once traffic has drained).
    pub fn lost(&self) -> u64 {
        self.sent
            .saturating_sub(self.delivered + self.completion_timeouts)
    }

    /// Whether nothing went wrong.
    pub fn clean(&self) -> bool {
        self.lost() == 0
            && self.duplicated == 0
            && self.reordered == 0
            && self.completion_timeouts == 0
            && self.data_mismatches == 0
            && self.unexpected_completions == 0
    }
}

pub(crate) const MAGIC: [u8; 4] = *b"TFSQ";
pub(crate) const STAMP: usize = 16;

/// Writes the stamp and pattern of `seq` of `stream` into `payload`.
pub(crate) fn fill(payload: &mut [u8], stream: u32, seq: u64) {
    let n = payload.len().min(STAMP);
    let mut stamp = [0u8; STAMP];
    stamp[..4].copy_from_slice(&MAGIC);
    stamp[4..8].copy_from_slice(&stream.to_be_bytes());
    stamp[8..16].copy_from_slice(&seq.to_be_bytes());
    payload[..n].copy_from_slice(&stamp[..n]);
    for (i, b) in payload.iter_mut().enumerate().skip(STAMP) {
        *b = pattern(seq, i);
    }
}

fn pattern(seq: u64, i: usize) -> u8 {
    (seq as u8).wrapping_mul(31).wrapping_add(i as u8)
}

/// Reads a stamp: `(stream, seq)` if the payload carries one intact.
pub(crate) fn read(payload: &[u8]) -> Option<(u32, u64, bool)> {
    if payload.len() < STAMP || payload[..4] != MAGIC {
        return None;
    }
    let stream = u32::from_be_bytes(payload[4..8].try_into().ok()?);
    let seq = u64::from_be_bytes(payload[8..16].try_into().ok()?);
    let intact = payload
        .iter()
        .enumerate()
        .skip(STAMP)
        .all(|(i, &b)| b == pattern(seq, i));
    Some((stream, seq, intact))
}

/// The receiving end of one stream: in order, once.
#[derive(Debug, Clone)]
pub struct StreamCheck {
    /// The next sequence number expected.
    next: u64,
    /// Which of the 4096 numbers below `next` arrived (for telling a
    /// duplicate from a late arrival).
    seen: Vec<u64>,
}

const WINDOW: u64 = 4096;

impl Default for StreamCheck {
    fn default() -> Self {
        StreamCheck {
            next: 0,
            seen: vec![0; (WINDOW / 64) as usize],
        }
    }
}

impl StreamCheck {
    fn bit(&mut self, seq: u64) -> (usize, u64) {
        let i = seq % WINDOW;
        ((i / 64) as usize, 1u64 << (i % 64))
    }

    /// Accounts for the arrival of `seq`.
    pub fn arrive(&mut self, seq: u64, account: &mut Integrity) {
        if seq >= self.next {
            if seq != self.next {
                account.reordered += 1;
            }
            // Numbers skipped over leave the window clear for late arrivals.
            for s in self.next..=seq.min(self.next + WINDOW) {
                let (w, b) = self.bit(s);
                self.seen[w] &= !b;
            }
            let (w, b) = self.bit(seq);
            self.seen[w] |= b;
            self.next = seq + 1;
            account.delivered += 1;
            return;
        }
        if self.next - seq > WINDOW {
            account.reordered += 1;
            return;
        }
        let (w, b) = self.bit(seq);
        if self.seen[w] & b != 0 {
            account.duplicated += 1;
        } else {
            self.seen[w] |= b;
            account.reordered += 1;
            account.delivered += 1;
        }
    }

    /// The next sequence number expected.
    pub fn next(&self) -> u64 {
        self.next
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_tell_order_duplicates_and_damage_apart() {
        let mut a = Integrity::default();
        let mut s = StreamCheck::default();
        for seq in [0, 1, 2] {
            s.arrive(seq, &mut a);
        }
        assert_eq!((a.delivered, a.reordered, a.duplicated), (3, 0, 0));
        s.arrive(1, &mut a);
        assert_eq!(a.duplicated, 1);
        s.arrive(4, &mut a);
        s.arrive(3, &mut a);
        assert_eq!((a.delivered, a.reordered), (5, 2), "4 early, 3 late");
        s.arrive(3, &mut a);
        assert_eq!(a.duplicated, 2);

        let mut p = [0u8; 64];
        fill(&mut p, 7, 99);
        assert_eq!(read(&p), Some((7, 99, true)));
        p[40] ^= 1;
        assert_eq!(read(&p), Some((7, 99, false)));
        assert_eq!(read(&[0; 8]), None);
    }

    #[test]
    fn lost_is_what_never_arrived() {
        let a = Integrity {
            sent: 10,
            delivered: 7,
            completion_timeouts: 1,
            ..Integrity::default()
        };
        assert_eq!(a.lost(), 2);
        assert!(!a.clean());
    }
}
