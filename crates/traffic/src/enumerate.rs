//! A host's pass over the instantiation of a function it prepares to take
//! over (claims 1–5 and 7): while a VM migration to it prepares, the
//! destination host enumerates the function at the ID and window it will
//! have there, as a hypervisor probes a device before a VM lands on it,
//! then uses it for what the instantiation serves until the switch-over.
//!
//! The pass, one request at a time, each sent once the one before it
//! completed:
//! - configuration reads of the IDs (0x00), class and revision (0x08),
//!   subsystem IDs (0x2c), the six BARs (0x10–0x24) and the capability
//!   pointer (0x34), then each capability of the chain;
//! - with registers: CTRL_EXT read, written and read back (plain storage);
//!   WUS read, a set bit written (write 1 to clear) and read back, the side
//!   effect seen; ICR read (reading clears it: only the device may answer);
//! - then, until told to stop, reads of STATUS (of the IDs without
//!   registers), so the instantiation stays in use through the move.
//!
//! Every request and what came of it is logged with its times.

use crate::registers::{CTRL_EXT, ICR, STATUS, WUS};
use tlp::{Bdf, CplStatus};

/// The function as the destination host will see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Instantiation {
    /// Its ID in the host's domain.
    pub id: Bdf,
    /// Its BAR in the host's domain.
    pub bar: u64,
    /// Whether it has the registers of [`crate::registers`].
    pub registers: bool,
}

/// One request of the pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    /// A configuration read of the DW at this offset.
    Config(u16),
    /// A configuration read of a capability's first DW, at this offset.
    Capability(u16),
    /// A memory read of the register at this BAR offset.
    Read(u32),
    /// A memory write of this value to the register at this BAR offset.
    Write(u32, u32),
}

impl Probe {
    /// Whether a completion answers it.
    pub fn non_posted(self) -> bool {
        !matches!(self, Probe::Write(..))
    }
}

/// One request of the pass and what came of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Probed {
    /// What it asked.
    pub probe: Probe,
    /// When it was sent (the host's clock, ns).
    pub sent_at: u64,
    /// When its completion arrived (a write: when it was sent; `None`: none
    /// arrived in time).
    pub done_at: Option<u64>,
    /// Its completion's status (`None` for a write, or none arrived).
    pub status: Option<CplStatus>,
    /// The DW read (`None` for a write, or no data).
    pub value: Option<u32>,
    /// Whether it was part of a finished first pass (false: the reads
    /// after it).
    pub enumerating: bool,
}

/// Capabilities followed at most: a chain that loops stops here.
const MAX_CAPABILITIES: u16 = 48;

/// Where the pass is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Header(u8),
    /// The capability at `at`, the `seen`th of the chain.
    Capabilities {
        at: u16,
        seen: u16,
    },
    Registers(u8),
    Using,
}

/// Configuration DWs of the header the pass reads, in order.
const HEADER: [u16; 10] = [0x00, 0x08, 0x2c, 0x10, 0x14, 0x18, 0x1c, 0x20, 0x24, 0x34];

/// A host's enumeration of one instantiation.
#[derive(Debug, Clone)]
pub struct Enumeration {
    target: Instantiation,
    stage: Stage,
    /// The request in flight: it, and when it was sent.
    in_flight: Option<(Probe, u64)>,
    /// What CTRL_EXT and WUS read at first.
    ctrl_ext: u32,
    wus: u32,
    stopping: bool,
}

impl Enumeration {
    /// A pass over `target`, not started.
    pub fn new(target: Instantiation) -> Enumeration {
        Enumeration {
            target,
            stage: Stage::Header(0),
            in_flight: None,
            ctrl_ext: 0,
            wus: 0,
            stopping: false,
        }
    }

    /// The instantiation enumerated.
    pub fn target(&self) -> Instantiation {
        self.target
    }

    /// Whether the first pass is over (the reads after it go on).
    pub fn enumerated(&self) -> bool {
        self.stage == Stage::Using
    }

    /// Sends nothing more (the switch-over came, or the migration was
    /// abandoned); what is in flight is still taken.
    pub fn stop(&mut self) {
        self.stopping = true;
    }

    /// Whether it is stopped with nothing in flight.
    pub fn idle(&self) -> bool {
        self.stopping && self.in_flight.is_none()
    }

    /// The request in flight, if any, and when it was sent.
    pub fn in_flight(&self) -> Option<(Probe, u64)> {
        self.in_flight
    }

    /// The next request to send, if one may go now.
    pub fn next(&self) -> Option<Probe> {
        if self.stopping || self.in_flight.is_some() {
            return None;
        }
        Some(match self.stage {
            Stage::Header(i) => Probe::Config(HEADER[i as usize % HEADER.len()]),
            Stage::Capabilities { at, .. } => Probe::Capability(at),
            Stage::Registers(i) => match i {
                0 => Probe::Read(CTRL_EXT),
                1 => Probe::Write(CTRL_EXT, self.ctrl_ext.wrapping_add(0x10)),
                2 => Probe::Read(CTRL_EXT),
                3 => Probe::Read(WUS),
                4 => Probe::Write(WUS, lowest_set_bit(self.wus)),
                5 => Probe::Read(WUS),
                _ => Probe::Read(ICR),
            },
            Stage::Using if self.target.registers => Probe::Read(STATUS),
            Stage::Using => Probe::Config(0x00),
        })
    }

    /// Notes that `probe` (from [`next`](Self::next)) was sent at `now`; a
    /// write is done at once and its record is returned.
    pub fn sent(&mut self, probe: Probe, now: u64) -> Option<Probed> {
        if probe.non_posted() {
            self.in_flight = Some((probe, now));
            return None;
        }
        let record = Probed {
            probe,
            sent_at: now,
            done_at: Some(now),
            status: None,
            value: None,
            enumerating: self.stage != Stage::Using,
        };
        self.advance(None);
        Some(record)
    }

    /// Takes the completion of the request in flight (`None` for each:
    /// it did not come in time); returns its record.
    pub fn completed(
        &mut self,
        status: Option<CplStatus>,
        value: Option<u32>,
        now: u64,
    ) -> Option<Probed> {
        let (probe, sent_at) = self.in_flight.take()?;
        let enumerating = self.stage != Stage::Using;
        let ok = status == Some(CplStatus::Sc);
        self.advance(value.filter(|_| ok));
        Some(Probed {
            probe,
            sent_at,
            done_at: status.map(|_| now),
            status,
            value,
            enumerating,
        })
    }

    /// Moves past the request just done, which read `value` if it was a
    /// read that completed successfully.
    fn advance(&mut self, value: Option<u32>) {
        let registers_or_done = if self.target.registers {
            Stage::Registers(0)
        } else {
            Stage::Using
        };
        self.stage = match self.stage {
            Stage::Header(i) if (i as usize) + 1 < HEADER.len() => Stage::Header(i + 1),
            // The capability pointer (§7.5.1.1.11): its low two bits are
            // reserved; a capability lives past the 64-byte header.
            Stage::Header(_) => match value.map(|v| (v & 0xfc) as u16) {
                Some(at) if at >= 0x40 => Stage::Capabilities { at, seen: 0 },
                _ => registers_or_done,
            },
            Stage::Capabilities { seen, .. } => {
                let next = value.map_or(0, |v| ((v >> 8) & 0xfc) as u16);
                if next >= 0x40 && seen + 1 < MAX_CAPABILITIES {
                    Stage::Capabilities {
                        at: next,
                        seen: seen + 1,
                    }
                } else {
                    registers_or_done
                }
            }
            Stage::Registers(i) => {
                match i {
                    0 => self.ctrl_ext = value.unwrap_or(0),
                    3 => self.wus = value.unwrap_or(0),
                    _ => {}
                }
                if i < 6 {
                    Stage::Registers(i + 1)
                } else {
                    Stage::Using
                }
            }
            Stage::Using => Stage::Using,
        };
    }
}

/// The lowest bit set in `v` (bit 0 if none is).
fn lowest_set_bit(v: u32) -> u32 {
    if v == 0 {
        1
    } else {
        v & v.wrapping_neg()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs a pass over a function whose configuration reads return
    /// `config(offset)` and whose register reads `register(offset)`,
    /// until it reaches its reads after the pass; returns what it sent.
    fn pass(
        registers: bool,
        config: impl Fn(u16) -> u32,
        register: impl Fn(u32) -> (CplStatus, u32),
    ) -> Vec<Probe> {
        let target = Instantiation {
            id: Bdf(0x0200),
            bar: 0xfe10_0000,
            registers,
        };
        let mut e = Enumeration::new(target);
        let mut sent = Vec::new();
        for now in 0..200 {
            if e.enumerated() {
                break;
            }
            let probe = e.next().expect("one at a time, and none in flight");
            sent.push(probe);
            if e.sent(probe, now).is_some() {
                continue;
            }
            assert_eq!(e.next(), None, "one request at a time");
            let (status, value) = match probe {
                Probe::Config(at) | Probe::Capability(at) => (CplStatus::Sc, config(at)),
                Probe::Read(at) => register(at),
                Probe::Write(..) => unreachable!("posted"),
            };
            let r = e.completed(Some(status), Some(value), now + 1).unwrap();
            assert_eq!((r.probe, r.sent_at, r.done_at), (probe, now, Some(now + 1)));
            assert!(r.enumerating);
        }
        assert!(e.enumerated());
        sent
    }

    #[test]
    fn the_pass_reads_the_header_then_follows_the_capability_chain() {
        // Capabilities at 0x40 (→ 0x50) and 0x50 (end).
        let config = |at| match at {
            0x34 => 0x40,
            0x40 => 0x5005,
            0x50 => 0x0011,
            _ => 0,
        };
        let sent = pass(false, config, |_| (CplStatus::Sc, 0));
        let header: Vec<Probe> = HEADER.iter().map(|&at| Probe::Config(at)).collect();
        assert_eq!(&sent[..HEADER.len()], &header[..]);
        assert_eq!(
            &sent[HEADER.len()..],
            &[Probe::Capability(0x40), Probe::Capability(0x50)]
        );
    }

    #[test]
    fn a_chain_that_loops_is_followed_only_so_far() {
        let config = |at| if at == 0x34 { 0x40 } else { 0x4000 };
        let sent = pass(false, config, |_| (CplStatus::Sc, 0));
        let caps = sent
            .iter()
            .filter(|p| matches!(p, Probe::Capability(_)))
            .count();
        assert_eq!(caps, MAX_CAPABILITIES as usize);
    }

    #[test]
    fn the_registers_are_written_from_what_was_read() {
        let register = |at| match at {
            CTRL_EXT => (CplStatus::Sc, 0x100),
            WUS => (CplStatus::Sc, 0b1100),
            _ => (CplStatus::Ur, 0),
        };
        let sent = pass(true, |_| 0, register);
        assert_eq!(
            &sent[HEADER.len()..],
            &[
                Probe::Read(CTRL_EXT),
                Probe::Write(CTRL_EXT, 0x110),
                Probe::Read(CTRL_EXT),
                Probe::Read(WUS),
                Probe::Write(WUS, 0b0100),
                Probe::Read(WUS),
                Probe::Read(ICR),
            ]
        );
    }

    #[test]
    fn a_stopped_pass_sends_nothing_and_takes_what_is_in_flight() {
        let mut e = Enumeration::new(Instantiation {
            id: Bdf(0x0200),
            bar: 0,
            registers: false,
        });
        let p = e.next().unwrap();
        assert!(e.sent(p, 5).is_none());
        e.stop();
        assert!(!e.idle());
        // It never came.
        let r = e.completed(None, None, 9).unwrap();
        assert_eq!((r.done_at, r.status, r.value), (None, None, None));
        assert!(e.idle());
        assert_eq!(e.next(), None);
    }
}
