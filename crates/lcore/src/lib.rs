//! Poll-mode cores: [`Task`]s polled run-to-completion on pinned threads
//! ([`Cores`]) or on the calling thread with a virtual clock
//! ([`Deterministic`]), and [`NodeTask`], a switch node's forwarding
//! pipeline over its ports ([`IoTask`]: the same ports and loop, frames
//! passed on unexamined, for reference).
// Denied but for the one read of the time-stamp counter (`tsc`).
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod gate;
mod io;
mod node;
pub mod pingpong;
pub mod stall;
mod stop;
mod task;
pub mod tsc;

pub use gate::{
    Arrival, Blackouts, Gate, GateCommand, GateOffer, GateStats, GateStatus, GatedFunction,
};
pub use io::IoTask;
pub use node::{
    reliable_port_memory, FrameSettings, LinkSnapshot, LiveSnapshot, LiveStats, NodeStats,
    NodeTask, BURST,
};
pub use stall::{StallClock, StallWatch, STALL_AFTER_NS};
pub use stop::Stop;
pub use task::{
    Control, CoreSpec, CoreStats, Cores, Deterministic, Stuck, Task, Tasks, ROUND_THRESHOLDS_NS,
};
