//! What a plane reports when it cannot do what a migration asks.

/// Why the plane could not do what was asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlaneError {
    /// The topology has no such binding.
    #[error("no binding {0}")]
    NoBinding(usize),
    /// A VM migration from a host the binding is not on (or to itself, or
    /// to no host).
    #[error("binding {binding} is on host {on}, cannot move it from {from} to {to}")]
    NotOnHost {
        /// The binding.
        binding: usize,
        /// The host it is on.
        on: usize,
        /// The host the plan moves it from.
        from: usize,
        /// The host the plan moves it to.
        to: usize,
    },
    /// An endpoint migration from a function the binding is not on.
    #[error("binding {binding} is on {on}, not {from}")]
    NotOnFunction {
        /// The binding.
        binding: usize,
        /// The function it is on.
        on: String,
        /// The function the plan moves it from.
        from: String,
    },
    /// The device has no such function to move to.
    #[error("{endpoint} has no function {function} to move to")]
    NoFunction {
        /// The device.
        endpoint: String,
        /// The function asked for.
        function: usize,
    },
    /// The function to move to serves another binding.
    #[error("{0} is bound already")]
    Bound(String),
    /// The binding's device has no pause point: it cannot migrate.
    #[error("{0} has no pause point")]
    NoPausePoint(String),
    /// The destination host has no window left for the binding's BAR.
    #[error("host {host} has no free window for binding {binding}")]
    NoWindow {
        /// The host.
        host: String,
        /// The binding.
        binding: usize,
    },
    /// The destination host has no ID left for the binding's function.
    #[error("host {host} has no free ID for binding {binding}")]
    NoId {
        /// The host.
        host: String,
        /// The binding.
        binding: usize,
    },
}
