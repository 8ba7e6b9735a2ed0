//! Stopping offered traffic early, from another thread: a run interrupted
//! by hand stops offering, lets what is in flight complete, and reports.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// A flag models share with whoever may stop them: once requested, they
/// start nothing new (writes, DMA, migrations); what is in flight completes.
/// Clones share the flag; a default one is never requested unless asked.
#[derive(Debug, Clone, Default)]
pub struct Stop(Arc<AtomicBool>);

impl Stop {
    /// A flag not requested yet.
    pub fn new() -> Stop {
        Stop::default()
    }

    /// Asks every holder of this flag to start nothing new.
    pub fn request(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    /// Whether [`request`](Self::request) was called.
    #[inline]
    pub fn requested(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// Two configurations are alike when they share the same flag.
impl PartialEq for Stop {
    fn eq(&self, other: &Stop) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_reaches_every_clone_and_no_other_flag() {
        let stop = Stop::new();
        let shared = stop.clone();
        let other = Stop::new();
        assert!(!shared.requested());
        stop.request();
        assert!(shared.requested());
        assert!(!other.requested());
        assert_eq!(stop, shared);
        assert_ne!(stop, other);
    }
}
