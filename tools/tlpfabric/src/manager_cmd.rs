//! `tlpfabric manager` and `tlpfabric status`: the fabric manager that node
//! processes register and report to, and a look at what it knows.

use crate::forward_cmd::parse_duration;
use crate::{EXIT_REJECTED, EXIT_USAGE};
use clap::Args;
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The address both commands use unless told otherwise (loopback).
const DEFAULT_ADDR: &str = "127.0.0.1:7800";

/// `tlpfabric manager`.
#[derive(Debug, Args)]
pub(crate) struct ManagerArgs {
    /// The topology (TOML): the nodes must load the same one. Default: the
    /// built-in `configs/default.toml`.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Every binding in this ID mode, as `node --id-mode` (the nodes' and
    /// the manager's topologies must match).
    #[arg(long, value_parser = ["different", "common"])]
    id_mode: Option<String>,
    /// Where to listen for nodes and clients, `HOST:PORT`.
    #[arg(long, default_value = DEFAULT_ADDR)]
    listen: String,
    /// How often nodes report; three missed and a node is marked down.
    #[arg(long, default_value = "200ms", value_parser = parse_duration)]
    heartbeat: Duration,
    /// Stop after this long (default: at Ctrl-C or SIGTERM).
    #[arg(long = "for", value_parser = parse_duration)]
    run_for: Option<Duration>,
}

/// `tlpfabric status`.
#[derive(Debug, Args)]
pub(crate) struct StatusArgs {
    /// The manager's `HOST:PORT`.
    #[arg(long, default_value = DEFAULT_ADDR)]
    manager: String,
    /// Print the state as JSON instead of text.
    #[arg(long)]
    json: bool,
    /// How long to wait for the manager.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    timeout: Duration,
}

pub(crate) fn manager(args: ManagerArgs, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    if args.heartbeat.is_zero() {
        let _ = writeln!(
            err,
            "error: --heartbeat: expected a positive duration such as 200ms"
        );
        return EXIT_USAGE;
    }
    let (file, t) =
        match crate::run_cmd::load_topology(args.config.as_deref(), args.id_mode.as_deref(), err) {
            Ok(loaded) => loaded,
            Err(code) => return code,
        };
    let manager = match control::Manager::start(control::ManagerConfig {
        topology: t.clone(),
        listen: args.listen.clone(),
        heartbeat: args.heartbeat,
    }) {
        Ok(m) => m,
        Err(e) => {
            let _ = writeln!(err, "error: --listen: {e}");
            return EXIT_REJECTED;
        }
    };
    let _ = writeln!(
        out,
        "manager: {} ({} nodes, {} links, {} bindings), listening on {}, heartbeat {} ms",
        file.display(),
        t.nodes.len(),
        t.links.len(),
        t.bindings.len(),
        manager.addr(),
        args.heartbeat.as_millis()
    );
    let _ = out.flush();
    if let Err(e) = crate::interrupt::arm() {
        let _ = writeln!(err, "note: {e}: only --for or a kill ends the manager");
    }
    let started = Instant::now();
    while !crate::interrupt::requested() && args.run_for.is_none_or(|d| started.elapsed() < d) {
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(manager);
    let _ = writeln!(out, "manager: stopped");
    0
}

pub(crate) fn status(args: StatusArgs, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    let s = match control::status(&args.manager, args.timeout) {
        Ok(s) => s,
        Err(e @ control::ControlError::Address { .. }) => {
            let _ = writeln!(err, "error: --manager: {e}");
            return EXIT_USAGE;
        }
        Err(e) => {
            let _ = writeln!(err, "error: {e}");
            return EXIT_REJECTED;
        }
    };
    if args.json {
        let _ = writeln!(out, "{}", json(&s));
    } else {
        let _ = write!(out, "{}", control::render(&s));
    }
    0
}

/// The state as JSON, the proto's field names as keys.
fn json(s: &control::pb::StatusReply) -> serde_json::Value {
    use serde_json::json;
    json!({
        "uptime_ms": s.uptime_ms,
        "nodes": s.nodes.iter().map(|n| json!({
            "name": n.name, "state": n.state, "last_report_ms": n.last_report_ms,
            "pid": n.pid, "tlps_in": n.tlps_in, "tlps_out": n.tlps_out,
            "tlps_refused": n.tlps_refused,
        })).collect::<Vec<_>>(),
        "links": s.links.iter().map(|l| json!({
            "name": l.name, "a": l.a, "b": l.b, "state": l.state,
            "frames_replayed": l.frames_replayed, "replay_timeouts": l.replay_timeouts,
            "frames_malformed": l.frames_malformed,
        })).collect::<Vec<_>>(),
        "bindings": s.bindings.iter().map(|b| json!({
            "index": b.index, "host": b.host, "function": b.function,
            "id_mode": b.id_mode, "requests_sent": b.requests_sent,
            "completion_timeouts": b.completion_timeouts, "unreachable": b.unreachable,
        })).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use crate::run;

    /// A loopback address nothing listens on now.
    fn free_addr() -> String {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .to_string()
    }

    /// `tlpfabric manager` on `addr` for `seconds`, on a thread of its own.
    fn manager_for(addr: &str, seconds: &str) -> std::thread::JoinHandle<(i32, String, String)> {
        let (addr, seconds) = (addr.to_string(), seconds.to_string());
        std::thread::spawn(move || run_args(&["manager", "--listen", &addr, "--for", &seconds]))
    }

    fn run_args(args: &[&str]) -> (i32, String, String) {
        let mut argv = vec!["tlpfabric"];
        argv.extend_from_slice(args);
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = run(argv, &mut std::io::empty(), &mut out, &mut err);
        (
            code,
            String::from_utf8(out).unwrap(),
            String::from_utf8(err).unwrap(),
        )
    }

    #[test]
    fn status_names_a_manager_it_cannot_reach_and_a_bad_address() {
        // A port nothing listens on.
        let addr = free_addr();
        let (code, _, err) = run_args(&["status", "--manager", &addr, "--timeout", "500ms"]);
        assert_eq!(code, crate::EXIT_REJECTED);
        assert!(
            err.contains(&format!("cannot reach the manager at {addr}")),
            "{err}"
        );
        let (code, _, err) = run_args(&["status", "--manager", "localhost"]);
        assert_eq!(code, crate::EXIT_USAGE);
        assert!(err.contains("expected HOST:PORT"), "{err}");
    }

    #[test]
    fn the_manager_serves_status_for_its_topology_and_stops_when_told() {
        let addr = free_addr();
        let manager = manager_for(&addr, "3s");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let (code, out, err) = loop {
            let r = run_args(&["status", "--manager", &addr, "--json"]);
            if r.0 == 0 || std::time::Instant::now() > deadline {
                break r;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        };
        assert_eq!(code, 0, "{err}");
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["nodes"][0]["name"], "sw0");
        assert_eq!(v["nodes"][1]["state"], "unregistered");
        assert_eq!(v["links"][0]["a"], "sw0:0");
        assert_eq!(v["bindings"][1]["function"], "nic0.vf2");
        let (code, out, _) = manager.join().unwrap();
        assert_eq!(code, 0);
        assert!(out.contains(&format!("listening on {addr}")), "{out}");
        // The port is free again once it stopped.
        assert!(std::net::TcpListener::bind(&addr).is_ok());
    }

    #[test]
    fn a_node_the_manager_refuses_says_why_before_it_runs() {
        let addr = free_addr();
        let manager = manager_for(&addr, "20s");
        // Up once `status` answers.
        while run_args(&["status", "--manager", &addr]).0 != 0 {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        // The one-node topology has a node sw0, but it is not the manager's
        // topology (the built-in default).
        let config = concat!(env!("CARGO_MANIFEST_DIR"), "/../../configs/one-node.toml");
        let started = std::time::Instant::now();
        let (code, _, err) = run_args(&[
            "node",
            "--config",
            config,
            "--node",
            "sw0",
            "--manager",
            &addr,
            "--duration",
            "60s",
        ]);
        assert_eq!(code, crate::EXIT_REJECTED, "{err}");
        assert!(err.contains("refused node sw0"), "{err}");
        assert!(err.contains("topology differs from the manager's"), "{err}");
        // Said before the run, not after its minute.
        assert!(started.elapsed() < std::time::Duration::from_secs(30));
        assert!(!err.contains("run: traffic for"), "{err}");
        drop(manager);
    }

    #[test]
    fn a_manager_that_cannot_listen_says_where() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = taken.local_addr().unwrap().to_string();
        let (code, _, err) = run_args(&["manager", "--listen", &addr, "--for", "1s"]);
        assert_eq!(code, crate::EXIT_REJECTED);
        assert!(err.contains(&format!("cannot listen on {addr}")), "{err}");
    }
}
