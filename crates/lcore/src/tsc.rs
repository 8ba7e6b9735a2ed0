//! The time-stamp counter, for the cost of a burst's work: read at each end
//! of a poll that did work, never per TLP (RDTSC takes about 10 ns here,
//! `Instant::now` about 23). Cycles are the counter's, which runs at a
//! constant rate on CPUs with an invariant TSC (`constant_tsc` and
//! `nonstop_tsc` in /proc/cpuinfo), whatever the core's clock does.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The counter now. Elsewhere than on x86-64 (and under Miri), nanoseconds
/// since the first call instead.
#[inline(always)]
pub fn cycles() -> u64 {
    #[cfg(all(target_arch = "x86_64", not(miri)))]
    {
        #[allow(unsafe_code)]
        // SAFETY: RDTSC is part of every x86-64 CPU and reads a counter: it
        // touches no memory and has no precondition.
        unsafe {
            std::arch::x86_64::_rdtsc()
        }
    }
    #[cfg(not(all(target_arch = "x86_64", not(miri))))]
    {
        static EPOCH: OnceLock<Instant> = OnceLock::new();
        EPOCH.get_or_init(Instant::now).elapsed().as_nanos() as u64
    }
}

/// Counter cycles per nanosecond, measured once against the monotonic
/// clock over 20 ms (the first call takes that long).
pub fn per_ns() -> f64 {
    static RATE: OnceLock<f64> = OnceLock::new();
    *RATE.get_or_init(|| {
        let (c0, t0) = (cycles(), Instant::now());
        std::thread::sleep(Duration::from_millis(20));
        let (c1, t1) = (cycles(), Instant::now());
        let ns = t1.duration_since(t0).as_nanos() as f64;
        if ns > 0.0 && c1 > c0 {
            (c1 - c0) as f64 / ns
        } else {
            1.0
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_counter_advances_at_the_rate_measured() {
        let rate = per_ns();
        assert!(rate > 0.0);
        // Over a sleep of 30 ms the counter agrees with the clock to a
        // quarter (a loaded machine delays the wake, not the counting).
        let (c0, t0) = (cycles(), Instant::now());
        std::thread::sleep(Duration::from_millis(30));
        let (c1, t1) = (cycles(), Instant::now());
        assert!(c1 > c0, "the counter advances");
        let by_counter = (c1 - c0) as f64 / rate;
        let by_clock = t1.duration_since(t0).as_nanos() as f64;
        let ratio = by_counter / by_clock;
        assert!(
            (0.75..1.33).contains(&ratio),
            "counter {by_counter} ns, clock {by_clock} ns"
        );
    }
}
