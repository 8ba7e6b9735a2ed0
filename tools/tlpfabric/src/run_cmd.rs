//! `tlpfabric run`: the whole fabric of a topology in one process on the
//! embedded default (in-memory ring ports, a reliable link on every fabric
//! link), with a host model on every host and a device model on every
//! endpoint, traffic flowing for a while, and a report whose integrity line
//! decides the exit status.
//!
//! While traffic flows, the orchestrator migrates the VMs back and forth
//! between the hosts; the gates where endpoints attach hold and release
//! their traffic and record the blackout histograms the report shows.

use crate::forward_cmd::parse_duration;
use crate::{EXIT_REJECTED, EXIT_USAGE};
use clap::Args;
use fabric::routing::epoch;
use fabric::{NodeTables, Topology};
use lcore::{
    Blackouts, CoreSpec, Cores, Deterministic, FrameSettings, Gate, GateStats, GatedFunction,
    NodeTask, Task,
};
use migrate::{
    FabricPlane, GateHandle, HostHandle, Orchestrator, Outcome, Phase, Record, Schedule,
};
use pmd::{ring_link, ClosedPort, FramePool, Port};
use serde_json::json;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;
use telemetry::Summary;
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
    /// VM migrations to perform while traffic flows, spread over the
    /// duration, each binding in turn to the next host.
    #[arg(long, default_value_t = 100)]
    vm_migrations: u64,
    /// Identify migrating requests with `different` IDs (drain completions,
    /// then close) or a `common` ID (close at once); default: each
    /// binding's `id_mode`.
    #[arg(long, value_parser = ["different", "common"])]
    id_mode: Option<String>,
    /// The blackout a migration may have (`50us`, `1ms`); beyond it the
    /// migration is abandoned at the switch-over and rolled back.
    #[arg(long, default_value = "10ms", value_parser = parse_duration)]
    budget: Duration,
    /// Also write the report as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write both blackout histograms in the HdrHistogram interval-log
    /// format to this file.
    #[arg(long)]
    hdr_log: Option<PathBuf>,
    /// Write an SVG percentile plot of both blackout histograms.
    #[arg(long)]
    plot: Option<PathBuf>,
}

type DynPort = Box<dyn Port + Send>;

/// Every task of the in-process fabric: node pipelines, host models,
/// device models, the orchestrator.
struct Assembly {
    nodes: Vec<Box<dyn Task>>,
    models: Vec<Box<dyn Task>>,
    /// Problems worth a line in the report (a template not found).
    notes: Vec<String>,
}

/// How the run migrates.
struct Migrations {
    schedule: Schedule,
    /// Where endpoint templates are (`templates/NAME.toml`).
    dir: PathBuf,
}

/// How long a drain may go on before a pause point closes anyway.
const DRAIN_BUDGET: Duration = Duration::from_millis(1);

/// The vendor ID in the completion indication (a Vendor-Defined Type 1
/// message; receivers that do not know it discard it, §2.2.8.6).
const SIGNAL_VENDOR: u16 = 0x1af4;

/// The fabric of `t`; hosts offer `rate` writes per second and devices half
/// that in DMA, for `duration` nanoseconds, then stop offering.
fn assemble(
    t: &Topology,
    rate: f64,
    timeout: u64,
    duration: u64,
    migrations: Migrations,
) -> Result<Assembly, String> {
    let total = |rate: f64| (rate * duration as f64 / 1e9) as u64;
    let pool = FramePool::new(32_768, 1600);
    let mut notes = Vec::new();
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
    let mut host_handles = Vec::new();
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
                stream: migrate::vm_stream(i),
                dma_stream: migrate::vm_stream(i).wrapping_add(1),
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
        let (commands, commands_rx) = rings::spsc::ring(64);
        let (handed_tx, handed) = rings::spsc::ring(64);
        host_model.with_control(commands_rx, handed_tx);
        host_handles.push(HostHandle { commands, handed });
        reliable.push((host.attach.node, host.attach.port, Some(link)));
        models.push(Box::new(host_model));
    }
    let mut gates: Vec<Option<Gate>> = t.nodes.iter().map(|_| None).collect();
    let mut gate_handles = Vec::new();
    let mut vendor = None;
    for (e, end) in t.endpoints.iter().enumerate() {
        let (edge, model) = ring_link(&end.name, 1024, 14 + t.link.mtu);
        ports[end.attach.node][end.attach.port as usize] = Some(Box::new(edge));
        let functions = (0..=end.vfs)
            .map(|f| {
                let binding = binding_of(e, f);
                let dma =
                    binding.and_then(|i| t.hosts[t.bindings[i].host].dma.first().map(|w| w.base));
                let i = binding.unwrap_or(usize::MAX / 4);
                FunctionConfig {
                    function: Bdf(end.id.0.wrapping_add(f as u16)),
                    bar: end.fabric_bar + f as u64 * end.bar_size,
                    size: end.bar_size.min(0x1_0000) as usize,
                    dma,
                    stream: migrate::vm_stream(i).wrapping_add(1),
                    host_stream: migrate::vm_stream(i),
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
        // The gate where it attaches: a pause point and a VDI per function.
        if gates[end.attach.node].is_some() {
            notes.push(format!(
                "{}: a second endpoint on node {} has no pause point; its bindings do not migrate",
                end.name, t.nodes[end.attach.node].name
            ));
            gate_handles.push(None);
            continue;
        }
        let template = end.template.as_ref().and_then(|name| {
            let path = migrations
                .dir
                .join("templates")
                .join(format!("{name}.toml"));
            match vdi::Template::load(&path) {
                Ok(t) => Some(t),
                Err(errors) => {
                    let first = errors.first().map(|e| e.to_string()).unwrap_or_default();
                    notes.push(format!("{}: no VDI ({first})", end.name));
                    None
                }
            }
        });
        let functions = (0..=end.vfs)
            .map(|f| {
                let id = Bdf(end.id.0.wrapping_add(f as u16));
                let vdi = template.as_ref().map(|tpl| vdi::Vdi::new(tpl, id));
                if let Some(v) = &vdi {
                    vendor.get_or_insert(v.ids().0);
                }
                let bar = (end.fabric_bar + f as u64 * end.bar_size, end.bar_size);
                (GatedFunction { function: id, bar }, vdi)
            })
            .collect();
        let (commands, commands_rx) = rings::spsc::ring(64);
        let gate = Gate::new(end.attach.port, functions, commands_rx, DRAIN_BUDGET);
        gate_handles.push(Some(GateHandle {
            commands,
            status: gate.status(),
        }));
        gates[end.attach.node] = Some(gate);
    }
    let mut nodes: Vec<Box<dyn Task>> = Vec::new();
    let mut publishers = Vec::new();
    for (n, node_ports) in ports.into_iter().enumerate() {
        let node_ports: Vec<DynPort> = node_ports
            .into_iter()
            .map(|p| p.unwrap_or_else(|| Box::new(ClosedPort::default())))
            .collect();
        let (publisher, reader) = epoch::channel(NodeTables::build(t, n));
        publishers.push(publisher);
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
        if let Some(gate) = gates[n].take() {
            task.with_gate(gate);
        }
        nodes.push(Box::new(task));
    }
    let signal = vdi::CompletionSignal::VendorMessage {
        vendor_id: vendor.unwrap_or(SIGNAL_VENDOR),
        word: 1,
    };
    let plane = FabricPlane::new(t.clone(), publishers, gate_handles, host_handles, signal);
    models.push(Box::new(Orchestrator::new(plane, migrations.schedule)));
    Ok(Assembly {
        nodes,
        models,
        notes,
    })
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
    gates: GateStats,
    blackouts: Blackouts,
    records: Vec<Record>,
    /// Completion indications the hosts received.
    messages: u64,
    /// A migration still in progress when the run ended.
    unfinished: Option<String>,
    /// TLPs nodes refused, by reason (`Refusal::ALL` order).
    refused: [u64; 7],
}

fn collect(tasks: &[Box<dyn Task>], totals: &mut Totals) {
    for task in tasks {
        let Some(any) = task.as_any() else {
            continue;
        };
        if let Some(h) = any.downcast_ref::<HostModel<pmd::RingPort>>() {
            totals.integrity.add(h.integrity());
            totals.writes += h.writes();
            totals.messages += h.messages();
        } else if let Some(d) = any.downcast_ref::<EndpointModel<pmd::RingPort>>() {
            totals.integrity.add(d.integrity());
            totals.dma += d.dma_writes();
        } else if let Some(n) = any.downcast_ref::<NodeTask<DynPort>>() {
            for (sum, c) in totals.by_class.iter_mut().zip(n.stats().tlps_in_by_class) {
                *sum += c;
            }
            totals.no_buffer += n.stats().no_buffer;
            for c in &n.node_state().counters {
                for (sum, r) in totals.refused.iter_mut().zip(fabric::node::Refusal::ALL) {
                    *sum += c.refused(r);
                }
            }
            if let Some(g) = n.gate() {
                let s = g.stats();
                let t = &mut totals.gates;
                t.held += s.held;
                t.released += s.released;
                t.overflow += s.overflow;
                t.vdi_config_reads += s.vdi_config_reads;
                t.vdi_config_writes += s.vdi_config_writes;
                t.vdi_upstream += s.vdi_upstream;
                t.migrations += s.migrations;
                t.aborted += s.aborted;
                totals.blackouts.add(g.blackouts());
            }
        } else if let Some(o) = any.downcast_ref::<Orchestrator>() {
            totals.records.extend_from_slice(o.records());
            if let Some((r, phase)) = o.in_progress() {
                totals.unfinished = Some(format!(
                    "binding {} from host {} to host {}, {}",
                    r.plan.binding,
                    r.plan.from,
                    r.plan.to,
                    phase.map_or("rolling back", |p| p.name())
                ));
            }
        }
    }
}

const DEFAULT: &str = include_str!("../../../configs/default.toml");

/// The topology text with every binding's `id_mode` set to `mode`.
fn with_id_mode(file: &Path, text: &str, mode: &str) -> Result<String, String> {
    let mut doc: toml::Value = text
        .parse()
        .map_err(|e: toml::de::Error| format!("{}: {}", file.display(), e.message()))?;
    if let Some(bindings) = doc.get_mut("binding").and_then(|b| b.as_array_mut()) {
        for b in bindings {
            if let Some(table) = b.as_table_mut() {
                table.insert("id_mode".into(), toml::Value::String(mode.into()));
            }
        }
    }
    toml::to_string(&doc).map_err(|e| e.to_string())
}

pub(crate) fn run(args: RunArgs, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    let (file, text) = match &args.config {
        Some(path) => match std::fs::read_to_string(path) {
            Ok(text) => (path.clone(), text),
            Err(e) => {
                let _ = writeln!(err, "error: {}: cannot read: {e}", path.display());
                return EXIT_REJECTED;
            }
        },
        None => (PathBuf::from("configs/default.toml"), DEFAULT.to_string()),
    };
    let text = match &args.id_mode {
        Some(mode) => match with_id_mode(&file, &text, mode) {
            Ok(t) => t,
            Err(e) => {
                let _ = writeln!(err, "error: {e}");
                return EXIT_REJECTED;
            }
        },
        None => text,
    };
    let t = match Topology::parse(&file, &text) {
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
    let n = args.vm_migrations;
    let interval = duration.checked_div(n).unwrap_or(duration);
    let schedule = Schedule {
        vm_migrations: n,
        start: interval / 2,
        interval: interval.max(1),
        budget: args.budget.as_nanos() as u64,
        abort: None,
        id_mode: None,
    };
    let mut dir = file
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    if args.config.is_none() && !dir.join("templates").is_dir() {
        // The embedded default run outside the source tree's root: its
        // templates are where this program was built from, if still there.
        dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs");
    }
    let migrations = Migrations { schedule, dir };
    let assembly = match assemble(&t, args.rate, timeout, duration, migrations) {
        Ok(a) => a,
        Err(e) => {
            let _ = writeln!(err, "error: {e}");
            return EXIT_REJECTED;
        }
    };
    for note in &assembly.notes {
        let _ = writeln!(err, "note: {note}");
    }
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
        let progress = assembly.models.iter().find_map(|task| {
            task.as_any()?
                .downcast_ref::<Orchestrator>()
                .map(Orchestrator::progress)
        });
        // Core 0: the hosts, devices and orchestrator; the last core: the
        // node pipelines.
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
        let total = args.duration + Duration::from_nanos(drain);
        crate::progress::wait(total, n, progress.as_deref());
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

/// Per phase, the summary of its durations over completed migrations.
fn phase_summaries(records: &[Record]) -> Vec<(Phase, Summary)> {
    Phase::ALL
        .iter()
        .map(|&p| {
            let mut h = Blackouts::new().per_tlp;
            for r in records
                .iter()
                .filter(|r| r.outcome == Some(Outcome::Completed))
            {
                if let Some(ns) = r.phase_durations()[p as usize] {
                    let _ = h.record(ns.max(1));
                }
            }
            (p, Summary::of(&h))
        })
        .collect()
}

fn summary_json(s: &Summary) -> serde_json::Value {
    json!({"p50": s.p50, "p90": s.p90, "p99": s.p99, "p999": s.p999, "max": s.max, "mean": s.mean, "count": s.count})
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
    let completed = totals
        .records
        .iter()
        .filter(|r| r.outcome == Some(Outcome::Completed))
        .count();
    let aborted = totals.records.len() - completed;
    let g = &totals.gates;
    let _ = writeln!(
        out,
        "  migrations: {completed} VM completed, {aborted} aborted of {} scheduled; {} TLPs held and released; VDI served {} config reads, {} config writes; {} completion indications received",
        args.vm_migrations, g.released, g.vdi_config_reads, g.vdi_config_writes, totals.messages
    );
    if totals.refused.iter().any(|&n| n > 0) {
        let text: Vec<String> = fabric::node::Refusal::ALL
            .iter()
            .zip(totals.refused)
            .filter(|(_, n)| *n > 0)
            .map(|(r, n)| format!("{r:?} {n}"))
            .collect();
        let _ = writeln!(out, "  refused at nodes: {}", text.join(", "));
    }
    if let Some(m) = &totals.unfinished {
        let _ = writeln!(
            out,
            "  a migration had not finished when the run ended: {m}"
        );
    }
    let per_migration = Summary::of(&totals.blackouts.per_migration);
    let per_tlp = Summary::of(&totals.blackouts.per_tlp);
    let _ = writeln!(out, "  blackout per migration: {}", per_migration.line());
    let _ = writeln!(out, "  blackout per held TLP:  {}", per_tlp.line());
    let phases = phase_summaries(&totals.records);
    if completed > 0 {
        let text: Vec<String> = phases
            .iter()
            .map(|(p, s)| format!("{} {:.1}/{:.1}", p.name(), s.p50, s.p99))
            .collect();
        let _ = writeln!(out, "  phases (p50/p99 µs): {}", text.join(", "));
    }
    if g.overflow > 0 {
        let _ = writeln!(
            out,
            "  pause points overflowed: {} TLPs dropped",
            g.overflow
        );
    }
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
    if let Some(path) = &args.hdr_log {
        let log = telemetry::interval_log(
            &[
                ("per_migration", &totals.blackouts.per_migration),
                ("per_tlp", &totals.blackouts.per_tlp),
            ],
            Duration::ZERO,
            Duration::from_secs_f64(secs),
        );
        if let Err(e) = log.and_then(|bytes| std::fs::write(path, bytes).map_err(|e| e.to_string()))
        {
            let _ = writeln!(err, "error: {}: cannot write: {e}", path.display());
            return EXIT_REJECTED;
        }
    }
    if let Some(path) = &args.plot {
        let svg = telemetry::percentile_svg(
            "tlpfabric migration blackout",
            &[
                ("per migration", &totals.blackouts.per_migration),
                ("per held TLP", &totals.blackouts.per_tlp),
            ],
        );
        if let Err(e) = std::fs::write(path, svg) {
            let _ = writeln!(err, "error: {}: cannot write: {e}", path.display());
            return EXIT_REJECTED;
        }
    }
    if let Some(path) = &args.json {
        let phases_json: serde_json::Map<String, serde_json::Value> = phases
            .iter()
            .map(|(p, s)| (p.name().to_string(), summary_json(s)))
            .collect();
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
            "migrations": {
                "vm": completed,
                "endpoint": 0,
                "aborted": aborted,
                "scheduled": args.vm_migrations,
                "held_tlps": g.released,
                "completion_indications": totals.messages,
            },
            "vdi": {"config_reads": g.vdi_config_reads, "config_writes": g.vdi_config_writes, "upstream": g.vdi_upstream},
            "blackout": {
                "per_migration_us": summary_json(&per_migration),
                "per_tlp_us": summary_json(&per_tlp),
                "phases_us": phases_json,
            },
        });
        if let Err(e) = std::fs::write(path, format!("{doc:#}\n")) {
            let _ = writeln!(err, "error: {}: cannot write: {e}", path.display());
            return EXIT_REJECTED;
        }
    }
    if i.clean() && g.overflow == 0 {
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
            "--vm-migrations",
            "0",
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
    fn migrations_in_both_id_modes_report_blackouts_and_stay_clean() {
        let dir = std::env::temp_dir().join(format!("tlpfabric-mig-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for mode in ["different", "common"] {
            let json = dir.join(format!("{mode}.json"));
            let hdr = dir.join(format!("{mode}.hlog"));
            let svg = dir.join(format!("{mode}.svg"));
            let args = [
                "run",
                "--deterministic",
                "--duration",
                "40ms",
                "--rate",
                "1000000",
                "--vm-migrations",
                "40",
                "--id-mode",
                mode,
                "--json",
                json.to_str().unwrap(),
                "--hdr-log",
                hdr.to_str().unwrap(),
                "--plot",
                svg.to_str().unwrap(),
            ];
            let (code, out, err) = run_captured(&args, "");
            assert_eq!(code, 0, "{mode}: {out}{err}");
            let v: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
            assert_eq!(v["migrations"]["vm"], 40, "{mode}: {out}");
            assert_eq!(v["migrations"]["aborted"], 0);
            assert_eq!(v["migrations"]["endpoint"], 0);
            // Each migration ended with the completion indication at its
            // destination host.
            assert_eq!(v["migrations"]["completion_indications"], 40);
            let per_migration = &v["blackout"]["per_migration_us"];
            assert_eq!(per_migration["count"], 40);
            for key in ["p50", "p90", "p99", "p999", "max"] {
                let x = per_migration[key].as_f64().unwrap();
                assert!(x > 0.0, "{key}");
                assert!(v["blackout"]["per_tlp_us"][key].is_number(), "{key}");
            }
            assert!(per_migration["p50"].as_f64() <= per_migration["max"].as_f64());
            assert!(v["blackout"]["per_tlp_us"]["count"].as_u64().unwrap() > 0);
            for key in [
                "lost",
                "duplicated",
                "reordered",
                "completion_timeouts",
                "data_mismatches",
            ] {
                assert_eq!(v["integrity"][key], 0, "{mode} {key}");
            }
            let log = std::fs::read_to_string(&hdr).unwrap();
            assert!(log.contains("Tag=per_migration,"), "{log}");
            assert!(log.contains("Tag=per_tlp,"), "{log}");
            let plot = std::fs::read_to_string(&svg).unwrap();
            assert_eq!(plot.matches("<polyline").count(), 2);
        }
        std::fs::remove_dir_all(&dir).unwrap();
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
