//! The control plane of a fabric of processes.
//!
//! The fabric manager (`tlpfabric manager`) holds the topology; each node
//! process (`tlpfabric node --manager ADDR`) runs an [`Agent`] on a thread
//! of its own, never on a poll-mode core, that registers with the manager
//! and reports the node's counters every heartbeat. The manager marks a
//! node down when its reports stop, a link silent when an end stops
//! receiving, and names, for each binding, what on its path is not up.
//! [`status`] reads that back (`tlpfabric status`).
//!
//! The protocol is gRPC, defined in `proto/fabric.proto`. The data path
//! never waits on it: a node keeps forwarding on its tables while the
//! manager is away, and registers again when it returns.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod agent;
mod manager;
mod status;

pub use agent::{Agent, AgentConfig, AgentLog, Sample};
pub use manager::{Manager, ManagerConfig};
pub use status::{render, status};

/// The messages and services of `proto/fabric.proto`, as generated.
#[allow(missing_docs, missing_debug_implementations, clippy::all)]
pub mod pb {
    tonic::include_proto!("tlpfabric.v1");
}

use std::time::Duration;

/// How often a node reports unless the manager says otherwise.
pub const DEFAULT_HEARTBEAT: Duration = Duration::from_millis(200);

/// Reports a node may miss before the manager marks it down.
pub const MISSED_BEFORE_DOWN: u32 = 3;

/// What went wrong between a process and the manager.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// The address is not `HOST:PORT`.
    #[error("{addr:?}: expected HOST:PORT, such as 127.0.0.1:7800")]
    Address {
        /// What was given.
        addr: String,
    },
    /// Nothing answered at the address.
    #[error("cannot reach the manager at {addr}: {reason}")]
    Connect {
        /// The manager's address.
        addr: String,
        /// Why.
        reason: String,
    },
    /// The manager answered with an error.
    #[error("the manager at {addr} refused: {message}")]
    Refused {
        /// The manager's address.
        addr: String,
        /// What it said.
        message: String,
    },
    /// The address to listen on cannot be taken.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
    /// The control plane's runtime could not start.
    #[error("cannot start the control plane's thread: {0}")]
    Runtime(std::io::Error),
}

/// A digest of a topology: nodes and manager must have loaded the same one
/// (FNV-1a over its checked form, so that comments and key order in the
/// file do not matter).
pub fn topology_digest(t: &fabric::Topology) -> u64 {
    format!("{t:?}")
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        })
}

/// `http://ADDR` for a `HOST:PORT` address, checked.
fn uri(addr: &str) -> Result<String, ControlError> {
    let ok = addr
        .rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
    if !ok {
        return Err(ControlError::Address {
            addr: addr.to_string(),
        });
    }
    Ok(format!("http://{addr}"))
}

/// A runtime for one control-plane thread.
fn runtime() -> Result<tokio::runtime::Runtime, ControlError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(ControlError::Runtime)
}

/// A client of the manager at `addr`, connected within `timeout`.
async fn connect(
    addr: &str,
    timeout: Duration,
) -> Result<pb::fabric_manager_client::FabricManagerClient<tonic::transport::Channel>, ControlError>
{
    let endpoint = tonic::transport::Endpoint::from_shared(uri(addr)?)
        .map_err(|e| ControlError::Connect {
            addr: addr.to_string(),
            reason: e.to_string(),
        })?
        .connect_timeout(timeout)
        .timeout(timeout);
    let channel = endpoint
        .connect()
        .await
        .map_err(|e| ControlError::Connect {
            addr: addr.to_string(),
            reason: source_chain(&e),
        })?;
    Ok(pb::fabric_manager_client::FabricManagerClient::new(channel))
}

/// An error with its causes, "a: b: c" (transport errors say little on
/// their own).
fn source_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_host_and_port() {
        assert_eq!(uri("127.0.0.1:7800").unwrap(), "http://127.0.0.1:7800");
        assert_eq!(uri("[::1]:7800").unwrap(), "http://[::1]:7800");
        for bad in ["", "7800", "host", ":7800", "host:", "host:99999"] {
            let e = uri(bad).unwrap_err();
            assert!(e.to_string().contains("expected HOST:PORT"), "{bad}: {e}");
        }
    }
}
