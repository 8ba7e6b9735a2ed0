//! `tlpfabric run`: the whole fabric of a topology in one process on the
//! embedded default (in-memory ring ports, a reliable link on every fabric
//! link), with a host model on every host and a device model on every
//! endpoint, traffic flowing for a while, and a report whose integrity line
//! decides the exit status.
//!
//! Migrations (and the blackout histograms they produce) come with the
//! orchestrator; this runs the traffic they will be measured against.

use crate::forward_cmd::parse_duration;
use crate::{EXIT_REJECTED, EXIT_USAGE};
use clap::Args;
use fabric::routing::epoch;
use fabric::{NodeTables, Topology};
use lcore::{CoreSpec, Cores, Deterministic, FrameSettings, NodeTask, Task};
use pmd::{ring_link, ClosedPort, FramePool, Port};
use serde_json::json;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tlp::Bdf;
use traffic::{
    EndpointConfig, EndpointModel, FunctionConfig, HostConfig, HostModel, HostTarget, Integrity,
};

#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// The topology (default: the embedded configs/default.toml).
    #[arg(long)]
    config: Option<PathBuf>,
    /// How long traffic flows: `2s`, `500ms`.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    duration: Duration,
    /// Writes per second each host offers (its reads and the devices' DMA
    /// come on top).
    #[arg(long, default_value_t = 200_000.0)]
    rate: f64,
    /// Nanoseconds, or `50us`/`50ms`, a read may wait for its completion.
    #[arg(long, default_value = "50ms", value_parser = parse_duration)]
    completion_timeout: Duration,
    /// Run on one thread with a virtual clock (repeatable) instead of on
    /// pinned cores.
    #[arg(long)]
    deterministic: bool,
    /// Also write the report as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
}

type DynPort = Box<dyn Port + Send>;

/// Every task of the in-process fabric: node pipelines, host models,
/// device models.
struct Assembly {
    nodes: Vec<Box<dyn Task>>,
    models: Vec<Box<dyn Task>>,
}

/// The fabric of `t`; hosts offer `rate` writes per second and devices half
/// that in DMA, for `duration` nanoseconds, then stop offering.
fn assemble(t: &Topology, rate: f64, timeout: u64, duration: u64) -> Result<Assembly, String> {
    let total = |rate: f64| (rate * duration as f64 / 1e9) as u64;
    let pool = FramePool::new(32_768, 1600);
    let mut ports: Vec<Vec<Option<DynPort>>> = t
        .nodes
        .iter()
        .map(|n| (0..n.ports).map(|_| None).collect())
        .collect();
    let mut reliable = Vec::new();
    for (i, (a, b)) in t.links.iter().enumerate() {
        let (pa, pb) = ring_link(&format!("link{i}"), 1024, 14 + t.link.mtu);
        ports[a.node][a.port as usize] = Some(Box::new(pa));
        ports[b.node][b.port as usize] = Some(Box::new(pb));
        reliable.push((a.node, a.port, t.link_config(i, true)));
        reliable.push((b.node, b.port, t.link_config(i, false)));
    }
    // Hosts and devices run the reliable link with their switch too, so the
    // fabric's credits pace them as a PCIe link paces a root port or device.
    let edge_link = |node: usize| fabric::LinkConfig {
        mtu: t.link.mtu,
        ethertype: t.link.ethertype,
        flush_deadline: t.link.flush_deadline_ns,
        replay_timeout: t.link.replay_timeout_ns,
        replay_slots: t.link.replay_slots,
        local_node: node as u16,
        remote_node: u16::MAX,
        ..fabric::LinkConfig::default()
    };
    let mut models: Vec<Box<dyn Task>> = Vec::new();
    let binding_of = |e: usize, f: u8| {
        t.bindings
            .iter()
            .position(|b| b.endpoint == e && b.function == f)
    };
    for (h, host) in t.hosts.iter().enumerate() {
        let (edge, model) = ring_link(&host.name, 1024, 14 + t.link.mtu);
        ports[host.attach.node][host.attach.port as usize] = Some(Box::new(edge));
        let targets = t
            .bindings
            .iter()
            .enumerate()
            .filter(|(_, b)| b.host == h)
            .map(|(i, b)| HostTarget {
                bar: b.bar.base,
                region: b.bar.size.min(0x1_0000),
                stream: 2 * i as u32 + 1,
                dma_stream: 2 * i as u32 + 2,
            })
            .collect();
        let config = HostConfig {
            requester: host.requesters[0],
            targets,
            rate: Some(rate),
            total_writes: total(rate),
            until: duration,
            completion_timeout: timeout,
            ..HostConfig::default()
        };
        let mut host_model = HostModel::new(config, model, pool.clone());
        let link = edge_link(host.attach.node);
        host_model
            .with_link(link.peer())
            .map_err(|e| e.to_string())?;
        reliable.push((host.attach.node, host.attach.port, Some(link)));
        models.push(Box::new(host_model));
    }
    for (e, end) in t.endpoints.iter().enumerate() {
        let (edge, model) = ring_link(&end.name, 1024, 14 + t.link.mtu);
        ports[end.attach.node][end.attach.port as usize] = Some(Box::new(edge));
        let functions = (0..=end.vfs)
            .map(|f| {
                let binding = binding_of(e, f);
                let dma =
                    binding.and_then(|i| t.hosts[t.bindings[i].host].dma.first().map(|w| w.base));
                let i = binding.unwrap_or(usize::MAX / 4) as u32;
                FunctionConfig {
                    function: Bdf(end.id.0.wrapping_add(f as u16)),
                    bar: end.fabric_bar + f as u64 * end.bar_size,
                    size: end.bar_size.min(0x1_0000) as usize,
                    dma,
                    stream: 2u32.wrapping_mul(i).wrapping_add(2),
                    host_stream: 2u32.wrapping_mul(i).wrapping_add(1),
                }
            })
            .collect();
        let config = EndpointConfig {
            functions,
            dma_per_poll: 2,
            rate: Some(rate / 2.0),
            total_dma: total(rate / 2.0),
            until: duration,
            ..EndpointConfig::default()
        };
        let mut device = EndpointModel::new(config, model, pool.clone());
        let link = edge_link(end.attach.node);
        device.with_link(link.peer()).map_err(|e| e.to_string())?;
        reliable.push((end.attach.node, end.attach.port, Some(link)));
        models.push(Box::new(device));
    }
    let mut nodes: Vec<Box<dyn Task>> = Vec::new();
    for (n, node_ports) in ports.into_iter().enumerate() {
        let node_ports: Vec<DynPort> = node_ports
            .into_iter()
            .map(|p| p.unwrap_or_else(|| Box::new(ClosedPort::default())))
            .collect();
        let (_publisher, reader) = epoch::channel(NodeTables::build(t, n));
        let settings = FrameSettings {
            ethertype: t.link.ethertype,
            mtu: t.link.mtu,
        };
        let mut task = NodeTask::new(&t.nodes[n].name, reader, node_ports, pool.clone(), settings);
        for (node, port, config) in &reliable {
            if *node == n {
                let config = config.ok_or("a link without a configuration")?;
                task.with_reliable_link(*port, config)
                    .map_err(|e| format!("link on {}:{port}: {e}", t.nodes[n].name))?;
            }
        }
        nodes.push(Box::new(task));
    }
    Ok(Assembly { nodes, models })
}

/// What the tasks did, read back from them.
#[derive(Default)]
struct Totals {
    integrity: Integrity,
    by_class: [u64; 3],
    writes: u64,
    dma: u64,
    /// TLPs a node dropped because no frame buffer was free.
    no_buffer: u64,
}

fn collect(tasks: &[Box<dyn Task>], totals: &mut Totals) {
    for task in tasks {
        let Some(any) = task.as_any() else {
            continue;
        };
        if let Some(h) = any.downcast_ref::<HostModel<pmd::RingPort>>() {
            totals.integrity.add(h.integrity());
            totals.writes += h.writes();
        } else if let Some(d) = any.downcast_ref::<EndpointModel<pmd::RingPort>>() {
            totals.integrity.add(d.integrity());
            totals.dma += d.dma_writes();
        } else if let Some(n) = any.downcast_ref::<NodeTask<DynPort>>() {
            for (sum, c) in totals.by_class.iter_mut().zip(n.stats().tlps_in_by_class) {
                *sum += c;
            }
            totals.no_buffer += n.stats().no_buffer;
        }
    }
}

const DEFAULT: &str = include_str!("../../../configs/default.toml");

pub(crate) fn run(args: RunArgs, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    let loaded = match &args.config {
        Some(path) => Topology::load(path),
        None => Topology::parse(Path::new("configs/default.toml"), DEFAULT),
    };
    let t = match loaded {
        Ok(t) => t,
        Err(errors) => {
            for e in &errors {
                let _ = writeln!(err, "error: {e}");
            }
            return EXIT_REJECTED;
        }
    };
    if !(args.rate.is_finite() && args.rate > 0.0) {
        let _ = writeln!(
            err,
            "error: --rate: expected a positive number of writes per second, found {}",
            args.rate
        );
        return EXIT_USAGE;
    }
    let timeout = args.completion_timeout.as_nanos() as u64;
    let duration = args.duration.as_nanos() as u64;
    let assembly = match assemble(&t, args.rate, timeout, duration) {
        Ok(a) => a,
        Err(e) => {
            let _ = writeln!(err, "error: {e}");
            return EXIT_REJECTED;
        }
    };
    // After the offered traffic, a quiet spell lets what is in flight drain.
    let drain = timeout.max(10_000_000);
    let mut totals = Totals::default();
    let (elapsed, busy) = if args.deterministic {
        let mut d = Deterministic::new(1_000);
        for task in assembly.models.into_iter().chain(assembly.nodes) {
            d.add(task);
        }
        d.run_until(u64::MAX, |d| d.now() >= duration + drain);
        collect(d.tasks(), &mut totals);
        (duration as f64 / 1e9, vec![d.stats().busy_fraction()])
    } else {
        // Core 0: the hosts and devices; the last core: the node pipelines.
        let cpus = core_affinity::get_core_ids().map_or(1, |c| c.len());
        let cores = Cores::start(vec![
            CoreSpec {
                cpu: Some(0),
                tasks: assembly.models,
            },
            CoreSpec {
                cpu: Some(cpus.saturating_sub(1)),
                tasks: assembly.nodes,
            },
        ]);
        std::thread::sleep(args.duration + Duration::from_nanos(drain));
        let busy = cores.stats().iter().map(|s| s.busy_fraction()).collect();
        match cores.stop(Duration::from_secs(5)) {
            Ok(all) => {
                for tasks in &all {
                    collect(tasks, &mut totals);
                }
            }
            Err(stuck) => {
                let _ = writeln!(err, "error: core {} did not stop", stuck.core);
                return EXIT_REJECTED;
            }
        }
        (args.duration.as_secs_f64(), busy)
    };
    report(&args, &t, &totals, elapsed, &busy, out, err)
}

fn report(
    args: &RunArgs,
    t: &Topology,
    totals: &Totals,
    secs: f64,
    busy: &[f64],
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> i32 {
    let i = &totals.integrity;
    let tracked = i.delivered as f64 / secs;
    let _ = writeln!(
        out,
        "run: {} nodes, {} hosts, {} bindings, {:.2} s{}",
        t.nodes.len(),
        t.hosts.len(),
        t.bindings.len(),
        secs,
        if args.deterministic {
            " (deterministic, virtual time)"
        } else {
            ""
        }
    );
    let _ = writeln!(
        out,
        "  traffic: {} host writes, {} device DMA writes; {:.0} tracked TLPs/s delivered",
        totals.writes, totals.dma, tracked
    );
    let _ = writeln!(
        out,
        "  TLPs in at nodes by class: posted {}, non-posted {}, completion {}",
        totals.by_class[0], totals.by_class[1], totals.by_class[2]
    );
    let busy_text: Vec<String> = busy.iter().map(|b| format!("{:.0}%", b * 100.0)).collect();
    let _ = writeln!(out, "  busy polls per core: {}", busy_text.join(", "));
    if totals.no_buffer > 0 {
        let _ = writeln!(
            out,
            "  overload: {} TLPs found no frame buffer at a node (offer less with --rate)",
            totals.no_buffer
        );
    }
    let _ = writeln!(
        out,
        "  migrations: none (the orchestrator is not part of this build yet)"
    );
    let _ = writeln!(
        out,
        "  integrity: lost {}, duplicated {}, reordered {}, completion timeouts {}, data mismatches {}",
        i.lost(),
        i.duplicated,
        i.reordered,
        i.completion_timeouts,
        i.data_mismatches
    );
    if i.unexpected_completions > 0 {
        let _ = writeln!(
            out,
            "  completions that came after their read timed out: {}",
            i.unexpected_completions
        );
    }
    if let Some(path) = &args.json {
        let doc = json!({
            "config": args.config.as_ref().map_or("configs/default.toml".to_string(), |p| p.display().to_string()),
            "duration_s": secs,
            "deterministic": args.deterministic,
            "integrity": {
                "lost": i.lost(),
                "duplicated": i.duplicated,
                "reordered": i.reordered,
                "completion_timeouts": i.completion_timeouts,
                "data_mismatches": i.data_mismatches,
                "unexpected_completions": i.unexpected_completions,
                "sent": i.sent,
                "delivered": i.delivered,
                "dropped_no_buffer": totals.no_buffer,
            },
            "throughput": {
                "tlps_per_s": tracked,
                "by_class": {"posted": totals.by_class[0], "non_posted": totals.by_class[1], "completion": totals.by_class[2]},
            },
            "cores": {"busy_fraction": busy},
            "migrations": {"vm": 0, "endpoint": 0, "aborted": 0},
        });
        if let Err(e) = std::fs::write(path, format!("{doc:#}\n")) {
            let _ = writeln!(err, "error: {}: cannot write: {e}", path.display());
            return EXIT_REJECTED;
        }
    }
    if i.clean() {
        0
    } else {
        let _ = writeln!(err, "error: integrity failed");
        EXIT_REJECTED
    }
}

#[cfg(test)]
mod tests {
    use crate::run_captured;

    #[test]
    fn a_deterministic_run_of_the_default_is_clean_and_repeatable() {
        let path = std::env::temp_dir().join(format!("tlpfabric-run-{}.json", std::process::id()));
        let args = [
            "run",
            "--deterministic",
            "--duration",
            "20ms",
            "--json",
            path.to_str().unwrap(),
        ];
        let (code, out, err) = run_captured(&args, "");
        assert_eq!(code, 0, "{out}{err}");
        assert!(out.contains("integrity: lost 0, duplicated 0, reordered 0, completion timeouts 0, data mismatches 0"), "{out}");
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        for key in [
            "lost",
            "duplicated",
            "reordered",
            "completion_timeouts",
            "data_mismatches",
        ] {
            assert_eq!(v["integrity"][key], 0, "{key}");
        }
        // 200,000 writes/s per host for 20 ms: 4,000 from each of two hosts,
        // a read-back per 8, and 100,000 DMA writes/s from the device; the
        // last of each falls on the deadline itself and is not offered.
        let sent = v["integrity"]["sent"].as_u64().unwrap();
        let offered = 2 * 4000 + 2 * 500 + 2000;
        assert!((offered - 5..=offered).contains(&sent), "{sent}");
        assert_eq!(v["integrity"]["sent"], v["integrity"]["delivered"]);
        assert!(v["throughput"]["tlps_per_s"].as_f64().unwrap() > 0.0);
        assert_eq!(v["migrations"]["vm"], 0);
        let (_, again, _) = run_captured(&args, "");
        assert_eq!(out, again, "the same run twice");
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn bad_options_are_refused() {
        let (code, _, err) = run_captured(&["run", "--rate", "-5"], "");
        assert_eq!(code, 2, "{err}");
        let (code, _, err) = run_captured(&["run", "--config", "/nonexistent.toml"], "");
        assert_eq!(code, 1);
        assert!(err.contains("cannot read"), "{err}");
    }
}
