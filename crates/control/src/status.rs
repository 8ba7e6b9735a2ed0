//! `tlpfabric status`: the fabric as the manager sees it.

use crate::pb::{StatusReply, StatusRequest};
use crate::ControlError;
use std::fmt::Write;
use std::time::Duration;

/// Asks the manager at `addr` for the fabric's state.
pub fn status(addr: &str, timeout: Duration) -> Result<StatusReply, ControlError> {
    let runtime = crate::runtime()?;
    runtime.block_on(async {
        let mut client = crate::connect(addr, timeout).await?;
        client
            .status(StatusRequest {})
            .await
            .map(tonic::Response::into_inner)
            .map_err(|s| ControlError::Refused {
                addr: addr.to_string(),
                message: s.message().to_string(),
            })
    })
}

/// The state as text: nodes, links, bindings.
pub fn render(s: &StatusReply) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "manager up {:.1} s", s.uptime_ms as f64 / 1e3);
    let _ = writeln!(out, "nodes:");
    for n in &s.nodes {
        let _ = write!(out, "  {:<10} {:<12}", n.name, n.state);
        if n.state != "unregistered" {
            let _ = write!(
                out,
                " pid {}, last report {} ms ago, TLPs {} in, {} out, {} refused",
                n.pid, n.last_report_ms, n.tlps_in, n.tlps_out, n.tlps_refused
            );
        }
        out.push('\n');
    }
    let _ = writeln!(out, "links:");
    for l in &s.links {
        let _ = writeln!(
            out,
            "  {:<10} {} - {}  {:<6} {} frames replayed, {} replay timeouts, {} malformed",
            l.name, l.a, l.b, l.state, l.frames_replayed, l.replay_timeouts, l.frames_malformed
        );
    }
    let _ = writeln!(out, "bindings:");
    for b in &s.bindings {
        let _ = write!(
            out,
            "  {:<3} {} -> {} ({} IDs): {} requests sent, {} completion timeouts",
            b.index, b.host, b.function, b.id_mode, b.requests_sent, b.completion_timeouts
        );
        if !b.unreachable.is_empty() {
            let _ = write!(out, "; unreachable: {}", b.unreachable);
        }
        out.push('\n');
    }
    out
}
