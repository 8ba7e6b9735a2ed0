//! How long a cache line takes to go from one core to another and back.
//!
//! Two-core figures on a virtual machine swing with where the hypervisor
//! puts the two vCPUs (sibling hyperthreads, the same socket, another
//! socket); this round trip says which, and belongs next to any figure that
//! two cores made together.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Tells the echoing thread to stop.
const GIVE_UP: u64 = u64::MAX;

/// The flag both threads write, alone on its cache line.
#[repr(align(128))]
#[derive(Default)]
struct Line(AtomicU64);

/// The median time of one round trip of a cache line between CPUs `a` and
/// `b` (indices into `core_affinity::get_core_ids`), over `batches` batches
/// of `per_batch` round trips; `None` if either CPU is missing or a thread
/// could not run or no batch finished within `patience` (the two threads
/// did not get their CPUs together). Each thread spins, so run it before
/// the cores start.
pub fn cache_line_round_trip(
    a: usize,
    b: usize,
    batches: usize,
    per_batch: u64,
    patience: Duration,
) -> Option<Duration> {
    let ids = core_affinity::get_core_ids()?;
    let (ca, cb) = (*ids.get(a)?, *ids.get(b)?);
    let line = Arc::new(Line::default());
    let total = batches as u64 * per_batch;
    let echo = {
        let line = line.clone();
        std::thread::Builder::new()
            .name("pingpong".into())
            .spawn(move || {
                core_affinity::set_for_current(cb);
                // Answers each odd value with the next even one.
                let mut expect = 1;
                while expect < 2 * total {
                    match line.0.load(Ordering::Acquire) {
                        // A compare-exchange, not a store: a store could
                        // overwrite a give-up written since the load, and
                        // this thread would then wait forever for a value
                        // nobody sends (and `join` with it).
                        v if v == expect => match line.0.compare_exchange(
                            expect,
                            expect + 1,
                            Ordering::AcqRel,
                            Ordering::Acquire,
                        ) {
                            Ok(_) => expect += 2,
                            Err(_) => break,
                        },
                        GIVE_UP => break,
                        _ => std::hint::spin_loop(),
                    }
                }
            })
            .ok()?
    };
    let ours = line.clone();
    let back = std::thread::Builder::new()
        .name("pingpong".into())
        .spawn(move || {
            core_affinity::set_for_current(ca);
            let mut times = Vec::with_capacity(batches);
            let mut value = 0;
            let deadline = Instant::now() + patience;
            'batches: for _ in 0..batches {
                let start = Instant::now();
                for _ in 0..per_batch {
                    line.0.store(value + 1, Ordering::Release);
                    let mut spins = 0u32;
                    while line.0.load(Ordering::Acquire) != value + 2 {
                        std::hint::spin_loop();
                        spins = spins.wrapping_add(1);
                        // Both threads must be on a CPU at once; on a busy
                        // machine they may not be for long: give up rather
                        // than hold the caller.
                        if spins.is_multiple_of(1024) && Instant::now() >= deadline {
                            line.0.store(GIVE_UP, Ordering::Release);
                            break 'batches;
                        }
                    }
                    value += 2;
                }
                times.push(start.elapsed() / per_batch as u32);
            }
            if value < 2 * total {
                // Stopped early: the echo is told to stop too.
                line.0.store(GIVE_UP, Ordering::Release);
            }
            times.sort();
            times.get(times.len() / 2).copied()
        });
    let Ok(back) = back else {
        // Nobody will ask: the echo must not spin on.
        ours.0.store(GIVE_UP, Ordering::Release);
        let _ = echo.join();
        return None;
    };
    let median = back.join().ok()?;
    echo.join().ok()?;
    median
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_round_trip_is_measured_between_two_cpus() {
        // On one CPU the two spinning threads would take turns by time
        // slice: two are needed.
        let cpus = core_affinity::get_core_ids().map_or(0, |c| c.len());
        if cpus < 2 {
            return;
        }
        let last = cpus - 1;
        // Patience enough for a busy machine, where the two threads must
        // wait for their CPUs.
        let patience = std::time::Duration::from_secs(30);
        let t = super::cache_line_round_trip(0, last, 3, 200, patience).expect("both CPUs exist");
        assert!(t > std::time::Duration::ZERO);
        assert!(
            super::cache_line_round_trip(0, cpus, 3, 200, patience).is_none(),
            "no such CPU"
        );
    }

    /// Giving up at any moment ends both threads: the echo's answer never
    /// overwrites the give-up and leaves it waiting forever.
    #[test]
    fn giving_up_at_any_moment_returns() {
        let cpus = core_affinity::get_core_ids().map_or(0, |c| c.len());
        if cpus < 2 {
            return;
        }
        let (done, finished) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for i in 0..300u64 {
                // Patience from nothing to a few round trips: the give-up
                // lands at every point of the exchange.
                let patience = std::time::Duration::from_nanos(i * 97 % 20_000);
                let _ = super::cache_line_round_trip(0, cpus - 1, 2, 1_000_000, patience);
            }
            let _ = done.send(());
        });
        assert!(
            finished
                .recv_timeout(std::time::Duration::from_secs(120))
                .is_ok(),
            "a measurement that gave up did not return"
        );
    }
}
