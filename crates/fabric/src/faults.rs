//! Fault injection for links: a seeded decision per frame (drop, duplicate,
//! reorder, corrupt, delay) and [`Wire`], an in-memory cable that applies
//! them. The same seed gives the same faults, so a failing run replays.
//!
//! The decisions ([`Faults::decide`]) are separate from the cable so that
//! any port can be wrapped by them; [`Wire`] is the cable the tests and the
//! bench command use. It recycles its frame buffers, so it stops allocating
//! once it has as many as are ever in flight.

use std::collections::VecDeque;

/// Probabilities (0.0..=1.0) of each fault, per frame, and the seed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FaultConfig {
    /// The frame is lost.
    pub drop: f64,
    /// The frame arrives twice.
    pub duplicate: f64,
    /// The frame arrives after the one sent next.
    pub reorder: f64,
    /// One byte of the frame is flipped.
    pub corrupt: f64,
    /// The frame is held for `delay_ticks`.
    pub delay: f64,
    /// How long a delayed frame is held.
    pub delay_ticks: u64,
    /// PRNG seed.
    pub seed: u64,
}

impl FaultConfig {
    /// No faults.
    pub const NONE: FaultConfig = FaultConfig {
        drop: 0.0,
        duplicate: 0.0,
        reorder: 0.0,
        corrupt: 0.0,
        delay: 0.0,
        delay_ticks: 0,
        seed: 0,
    };

    /// Checks every probability is within 0..=1; the error names the field.
    pub fn check(&self) -> Result<(), FaultConfigError> {
        for (name, p) in [
            ("drop", self.drop),
            ("duplicate", self.duplicate),
            ("reorder", self.reorder),
            ("corrupt", self.corrupt),
            ("delay", self.delay),
        ] {
            if !(0.0..=1.0).contains(&p) {
                return Err(FaultConfigError {
                    field: name,
                    found: p,
                });
            }
        }
        Ok(())
    }
}

/// A fault probability outside 0..=1.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
#[error("{field}: expected a probability in 0..=1, found {found}")]
pub struct FaultConfigError {
    /// The field: `drop`, `duplicate`, `reorder`, `corrupt` or `delay`.
    pub field: &'static str,
    /// Its value.
    pub found: f64,
}

/// SplitMix64: small, fast, and good enough to scatter faults.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64) < p
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

/// What happens to one frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// Lost.
    Drop,
    /// Delivered.
    Deliver {
        /// 1, or 2 when duplicated.
        copies: u8,
        /// Byte index (modulo the frame length) and XOR mask of a corruption.
        corrupt: Option<(usize, u8)>,
        /// Held for this many ticks.
        delay: u64,
        /// Delivered after the next frame.
        reorder: bool,
    },
}

/// Faults applied so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FaultStats {
    /// Frames offered.
    pub frames: u64,
    /// Dropped.
    pub dropped: u64,
    /// Duplicated.
    pub duplicated: u64,
    /// Reordered.
    pub reordered: u64,
    /// Corrupted.
    pub corrupted: u64,
    /// Delayed.
    pub delayed: u64,
}

/// The seeded decision maker.
#[derive(Debug, Clone)]
pub struct Faults {
    config: FaultConfig,
    rng: Rng,
    stats: FaultStats,
}

impl Faults {
    /// Faults from a configuration.
    pub fn new(config: FaultConfig) -> Faults {
        Faults {
            config,
            rng: Rng::new(config.seed),
            stats: FaultStats::default(),
        }
    }

    /// The faults applied so far.
    pub fn stats(&self) -> &FaultStats {
        &self.stats
    }

    /// Decides the fate of one frame of `len` bytes.
    pub fn decide(&mut self, len: usize) -> Fate {
        let c = self.config;
        self.stats.frames += 1;
        if self.rng.chance(c.drop) {
            self.stats.dropped += 1;
            return Fate::Drop;
        }
        let copies = if self.rng.chance(c.duplicate) {
            self.stats.duplicated += 1;
            2
        } else {
            1
        };
        let corrupt = if len > 0 && self.rng.chance(c.corrupt) {
            self.stats.corrupted += 1;
            let at = self.rng.below(len as u64) as usize;
            let mask = (self.rng.below(255) + 1) as u8;
            Some((at, mask))
        } else {
            None
        };
        let delay = if self.rng.chance(c.delay) {
            self.stats.delayed += 1;
            c.delay_ticks
        } else {
            0
        };
        let reorder = self.rng.chance(c.reorder);
        if reorder {
            self.stats.reordered += 1;
        }
        Fate::Deliver {
            copies,
            corrupt,
            delay,
            reorder,
        }
    }
}

/// An in-memory cable, one direction, with faults.
#[derive(Debug)]
pub struct Wire {
    faults: Faults,
    /// Frames in flight with the tick they may arrive.
    queue: VecDeque<(u64, Vec<u8>)>,
    free: Vec<Vec<u8>>,
    /// A frame held back to arrive after the next one.
    held: Option<(u64, Vec<u8>)>,
}

impl Wire {
    /// A cable with these faults.
    pub fn new(config: FaultConfig) -> Wire {
        Wire {
            faults: Faults::new(config),
            queue: VecDeque::new(),
            free: Vec::new(),
            held: None,
        }
    }

    /// The faults applied so far.
    pub fn stats(&self) -> &FaultStats {
        self.faults.stats()
    }

    /// Frames in flight.
    pub fn in_flight(&self) -> usize {
        self.queue.len() + self.held.is_some() as usize
    }

    fn buffer(&mut self, bytes: &[u8]) -> Vec<u8> {
        let mut b = self.free.pop().unwrap_or_default();
        b.clear();
        b.extend_from_slice(bytes);
        b
    }

    /// Puts a frame on the cable at tick `now`.
    pub fn send(&mut self, frame: &[u8], now: u64) {
        let Fate::Deliver {
            copies,
            corrupt,
            delay,
            reorder,
        } = self.faults.decide(frame.len())
        else {
            return;
        };
        let mut b = self.buffer(frame);
        if let Some((at, mask)) = corrupt {
            b[at] ^= mask;
        }
        let due = now + delay;
        if copies == 2 {
            let copy = self.buffer(&b);
            self.queue.push_back((due, copy));
        }
        if reorder && self.held.is_none() {
            self.held = Some((due, b));
            return;
        }
        self.queue.push_back((due, b));
        if let Some(h) = self.held.take() {
            self.queue.push_back(h);
        }
    }

    /// Takes the first frame that has arrived by `now` into `out`; returns
    /// its length (cut to `out`'s length).
    pub fn recv(&mut self, now: u64, out: &mut [u8]) -> Option<usize> {
        let i = self.queue.iter().position(|(due, _)| *due <= now)?;
        let (_, b) = self.queue.remove(i)?;
        let n = b.len().min(out.len());
        out[..n].copy_from_slice(&b[..n]);
        self.free.push(b);
        Some(n)
    }

    /// Releases a frame held back for reordering (when no frame follows it).
    pub fn flush_held(&mut self) {
        if let Some(h) = self.held.take() {
            self.queue.push_back(h);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_faults() {
        let config = FaultConfig {
            drop: 0.1,
            duplicate: 0.1,
            reorder: 0.1,
            corrupt: 0.1,
            delay: 0.1,
            delay_ticks: 5,
            seed: 7,
        };
        let (mut a, mut b) = (Faults::new(config), Faults::new(config));
        let fa: Vec<Fate> = (0..1000).map(|_| a.decide(100)).collect();
        let fb: Vec<Fate> = (0..1000).map(|_| b.decide(100)).collect();
        assert_eq!(fa, fb);
        // Each fault happens at roughly its rate (binomial, n = 1000, p = 0.1: 100 ± 40).
        let s = a.stats();
        for n in [s.dropped, s.corrupted, s.delayed] {
            assert!((60..=140).contains(&n), "{s:?}");
        }
        assert!((50..=140).contains(&s.duplicated), "{s:?}");
    }

    #[test]
    fn clean_wire_delivers_in_order() {
        let mut w = Wire::new(FaultConfig::NONE);
        for i in 0..10u8 {
            w.send(&[i; 20], 0);
        }
        let mut out = [0u8; 64];
        for i in 0..10u8 {
            assert_eq!(w.recv(0, &mut out), Some(20));
            assert_eq!(out[0], i);
        }
        assert_eq!(w.recv(0, &mut out), None);
    }

    #[test]
    fn reorder_swaps_with_the_next_frame_and_delay_holds() {
        let reorder = FaultConfig {
            reorder: 1.0,
            ..FaultConfig::NONE
        };
        let mut w = Wire::new(reorder);
        w.send(&[1; 20], 0);
        w.send(&[2; 20], 0);
        let mut out = [0u8; 64];
        w.recv(0, &mut out).unwrap();
        assert_eq!(out[0], 2);
        w.recv(0, &mut out).unwrap();
        assert_eq!(out[0], 1);

        let delay = FaultConfig {
            delay: 1.0,
            delay_ticks: 10,
            ..FaultConfig::NONE
        };
        let mut w = Wire::new(delay);
        w.send(&[3; 20], 0);
        assert_eq!(w.recv(9, &mut out), None);
        assert_eq!(w.recv(10, &mut out), Some(20));
    }

    #[test]
    fn probabilities_are_checked() {
        let bad = FaultConfig {
            corrupt: 1.5,
            ..FaultConfig::NONE
        };
        let e = bad.check().unwrap_err();
        assert_eq!(e.field, "corrupt");
        assert!(
            e.to_string().starts_with("corrupt: expected a probability"),
            "{e}"
        );
        assert!(FaultConfig::NONE.check().is_ok());
    }
}
