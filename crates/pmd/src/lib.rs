//! Poll-mode drivers: the [`Port`] trait (`rx_burst`/`tx_burst` in the
//! spirit of DPDK's ethdev), the [`FramePool`] whose [`Frame`] handles carry
//! frames without allocating, and the ports of the embedded default: the
//! in-memory [`RingPort`] link, the [`NullPort`] (DPDK's `net_null` with
//! frames filled from templates), and wrappers that are ports themselves:
//! [`FaultPort`] (seeded faults) and [`TracePort`] (every frame to a
//! callback; [`pcap::PcapWriter`] writes captures, [`capture::Capture`]
//! off the polling core). On Linux, [`af_packet::AfPacketPort`] puts
//! frames on any Ethernet interface without DPDK. With the `dpdk` feature,
//! [`dpdk::DpdkPort`] drives any DPDK ethdev with mbufs as frames;
//! [`addressed::Addressed`] gives it real Ethernet addresses.
// Unsafe code lives only in the AF_PACKET and DPDK ports, each block with
// the invariant it relies on.
#![deny(unsafe_code)]
#![warn(missing_docs)]

// First: its delegation macro serves the wrappers in the other modules.
#[macro_use]
mod wrap;
pub mod addressed;
#[cfg(target_os = "linux")]
pub mod af_packet;
pub mod capture;
#[cfg(feature = "dpdk")]
pub mod dpdk;
pub mod pcap;
mod pool;
mod port;

pub use pool::{Frame, FramePool};
pub use port::{ring_link, ClosedPort, DeviceStats, NullPort, Port, PortInfo, PortStats, RingPort};
pub use wrap::{Direction, FaultPort, FillPort, TracePort};
