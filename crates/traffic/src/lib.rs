//! Traffic models that measure, rather than assume, what the fabric does to
//! TLPs: a [`HostModel`] writes sequence-numbered data into its function's
//! BAR and reads it back (tags tracked, data checked, completion timeouts
//! detected), and an [`EndpointModel`] answers from a memory model and writes
//! its own sequence-numbered DMA into the host's memory. Each checks what it
//! receives: in order, once, with the right data. Both are
//! [`lcore::Task`]s over a port, so they run beside node pipelines on cores
//! or in the deterministic single-thread mode.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod edge;
mod endpoint;
pub mod enumerate;
mod host;
pub mod log;
pub mod registers;
mod stream;

pub use endpoint::{
    EndpointCommand, EndpointConfig, EndpointModel, FunctionConfig, Moved, MSIX_CAPABILITY,
    MSIX_TABLE_BYTES,
};
pub use host::{
    vm_tags, EnumerationStatus, HostCommand, HostConfig, HostModel, HostTarget, Indication,
    IndicationForm, Vm, VmCounters, COMPLETION_DATA,
};
pub use lcore::Stop;
pub use log::{ArrivalLog, Received};
pub use registers::REGISTER_BLOCK;
pub use stream::{Integrity, StreamCheck};
