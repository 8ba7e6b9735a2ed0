//! How long a core was kept from polling, for telling a fabric that was slow
//! from a machine that stopped it.
//!
//! On a virtual machine or a core shared with the OS, a polling thread is
//! sometimes descheduled for tens of microseconds or more; whatever it
//! carries waits that long. [`StallWatch`] is a task that times the gaps
//! between its polls and adds to a shared [`StallClock`] every gap's excess
//! over [`STALL_AFTER_NS`]; a requester that snapshots the clock when it
//! sends can later tell how much of a request's wait the stalls explain.

use crate::Task;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// A gap between polls longer than this counts as a stall: a round on a
/// core of the default run takes well under a microsecond.
pub const STALL_AFTER_NS: u64 = 10_000;

/// An atomic on a cache line of its own: the watch writes `last_poll`
/// every round, and a reader of `ended` should not pay for that.
#[derive(Debug, Default)]
#[repr(align(128))]
struct Line(AtomicU64);

/// Stall time summed over a run, shared between cores.
#[derive(Debug, Default)]
pub struct StallClock {
    /// Stalls that have ended, summed.
    ended: Line,
    /// The watch's latest poll + 1 (0: none yet).
    last_poll: Line,
}

impl StallClock {
    /// Nanoseconds of stall that have ended (only ever grows). Cheap: the
    /// line it reads changes only when a stall ends.
    pub fn stalled_ns(&self) -> u64 {
        self.ended.0.load(Ordering::Acquire)
    }

    /// Nanoseconds of stall by time `now` (a clock the watch's polls share),
    /// counting a stall still going on; never more than the truth. Reads the
    /// line the watch writes every round: for the rare question, not for
    /// every TLP.
    pub fn stalled_ns_by(&self, now: u64) -> u64 {
        // Ended stalls first, then the latest poll: the watch publishes in
        // the other order, so a stall cannot be counted both as ended and
        // as going on (at worst, as it ends, as neither).
        let ended = self.stalled_ns();
        let ongoing = match self.last_poll.0.load(Ordering::Acquire) {
            0 => 0,
            last => now.saturating_sub(last - 1).saturating_sub(STALL_AFTER_NS),
        };
        ended + ongoing
    }

    fn polled(&self, now: u64, stall: u64) {
        self.last_poll.0.store(now + 1, Ordering::Release);
        if stall > 0 {
            self.ended.0.fetch_add(stall, Ordering::Release);
        }
    }
}

/// Times its core's rounds into a [`StallClock`]; does no other work.
#[derive(Debug)]
pub struct StallWatch {
    clock: Arc<StallClock>,
    last: Option<u64>,
}

impl StallWatch {
    /// A watch adding to `clock`.
    pub fn new(clock: Arc<StallClock>) -> StallWatch {
        StallWatch { clock, last: None }
    }
}

impl Task for StallWatch {
    fn name(&self) -> &str {
        "stall watch"
    }

    fn poll(&mut self, now: u64) -> usize {
        let gap = self.last.map_or(0, |last| now.saturating_sub(last));
        self.last = Some(now);
        self.clock.polled(now, gap.saturating_sub(STALL_AFTER_NS));
        // Never work: the watch does not make a round count as busy.
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_excess_of_long_gaps_counts() {
        let clock = Arc::new(StallClock::default());
        let mut w = StallWatch::new(clock.clone());
        assert_eq!(clock.stalled_ns_by(1_000_000), 0, "no watch yet");
        for now in [1_000, 2_000, 12_000, 40_000, 41_000] {
            assert_eq!(w.poll(now), 0);
        }
        // 2_000 → 12_000 is exactly the threshold; 12_000 → 40_000 is
        // 28 µs, 18 over it.
        assert_eq!(clock.stalled_ns_by(41_000), 18_000);
        // A stall going on counts as it goes, and the same once it ends.
        assert_eq!(clock.stalled_ns_by(51_000), 18_000);
        assert_eq!(clock.stalled_ns_by(81_000), 18_000 + 30_000);
        assert_eq!(clock.stalled_ns(), 18_000, "not ended yet");
        w.poll(81_000);
        assert_eq!(clock.stalled_ns_by(81_000), 18_000 + 30_000);
        assert_eq!(clock.stalled_ns(), 18_000 + 30_000);
    }
}
