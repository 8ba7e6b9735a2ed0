//! Waiting for a run on pinned cores, with a progress bar on standard
//! error when it is a terminal and the wait is longer than two seconds.

use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Sleeps for `total`, showing elapsed time and migrations finished (out
/// of `migrations`) as it goes; returns early, with the time waited, when
/// Ctrl-C asks the run to stop.
pub(crate) fn wait(
    total: Duration,
    migrations: u64,
    finished: Option<&AtomicU64>,
) -> Option<Duration> {
    if total <= Duration::from_secs(2) || !std::io::stderr().is_terminal() {
        let start = Instant::now();
        while start.elapsed() < total {
            if crate::interrupt::requested() {
                return Some(start.elapsed());
            }
            std::thread::sleep(
                Duration::from_millis(20).min(total.saturating_sub(start.elapsed())),
            );
        }
        return None;
    }
    let bar = ProgressBar::new(total.as_millis() as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {elapsed}/{duration} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let start = Instant::now();
    while start.elapsed() < total {
        if crate::interrupt::requested() {
            bar.finish_and_clear();
            return Some(start.elapsed());
        }
        std::thread::sleep(Duration::from_millis(100).min(total.saturating_sub(start.elapsed())));
        bar.set_position(start.elapsed().as_millis() as u64);
        if let Some(f) = finished {
            bar.set_message(format!(
                "{} of {migrations} migrations",
                f.load(Ordering::Relaxed)
            ));
        }
    }
    bar.finish_and_clear();
    None
}
