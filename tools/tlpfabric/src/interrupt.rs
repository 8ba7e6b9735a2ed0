//! Ctrl-C (SIGINT) and SIGTERM during a long run: the first asks the run to
//! stop and report what it measured until then, as a benchmark stopped by
//! hand should; a second ends the process at once (status 128 + the
//! signal's number), for a run that does not stop.

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::flag;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

/// Set by the signal handlers; cleared when a run starts.
static REQUESTED: AtomicBool = AtomicBool::new(false);

/// Installs the handlers (once per process) and clears any earlier request.
pub(crate) fn arm() -> Result<(), String> {
    static INSTALLED: OnceLock<Result<(), String>> = OnceLock::new();
    let installed = INSTALLED.get_or_init(|| {
        for signal in [SIGINT, SIGTERM] {
            // The shutdown first: it sees the flag as it was before this
            // signal, so only a second signal ends the process.
            flag::register_conditional_shutdown(signal, 128 + signal, &REQUESTED)
                .and_then(|_| flag::register(signal, &REQUESTED))
                .map_err(|e| format!("cannot handle signal {signal}: {e}"))?;
        }
        Ok(())
    });
    REQUESTED.store(false, Ordering::Relaxed);
    installed.clone()
}

/// Whether a signal asked the run to stop since [`arm`].
pub(crate) fn requested() -> bool {
    REQUESTED.load(Ordering::Relaxed)
}
