//! `tlpfabric config check`.

use crate::EXIT_REJECTED;
use clap::{Args, Subcommand};
use fabric::{ConfigError, NodeTables, Topology};
use std::io::Write;
use std::path::PathBuf;

#[derive(Debug, Subcommand)]
pub(crate) enum ConfigCommand {
    /// Check a topology file: print a summary, or every problem found (exit 1).
    Check(CheckArgs),
}

#[derive(Debug, Args)]
pub(crate) struct CheckArgs {
    /// The topology (TOML), e.g. configs/default.toml.
    file: PathBuf,
}

/// Each endpoint's template, `templates/NAME.toml` beside the topology,
/// must load; its problems are reported against the endpoint's key.
pub(crate) fn template_problems(file: &std::path::Path, t: &Topology) -> Vec<ConfigError> {
    let dir = file
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let mut problems = Vec::new();
    for (i, e) in t.endpoints.iter().enumerate() {
        let Some(name) = &e.template else {
            continue;
        };
        let path = dir.join("templates").join(format!("{name}.toml"));
        if let Err(errors) = vdi::Template::load_within(&path, dir) {
            for err in errors {
                problems.push(ConfigError {
                    file: file.to_path_buf(),
                    key: format!("endpoint[{i}].template"),
                    message: format!("template {name:?}: {err}"),
                });
            }
        }
    }
    problems
}

/// Nodes whose route counts the summary lists by name.
const ROUTES_LISTED: usize = 16;

pub(crate) fn run(cmd: ConfigCommand, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    let ConfigCommand::Check(args) = cmd;
    let loaded = Topology::load(&args.file).and_then(|t| {
        let problems = template_problems(&args.file, &t);
        if problems.is_empty() {
            Ok(t)
        } else {
            Err(problems)
        }
    });
    match loaded {
        Ok(t) => {
            let _ = writeln!(out, "{}: ok", args.file.display());
            let _ = writeln!(
                out,
                "  nodes {}, links {}, hosts {}, functions {}, bindings {}",
                t.nodes.len(),
                t.links.len(),
                t.hosts.len(),
                t.function_count(),
                t.bindings.len()
            );
            // Built one node at a time (a large fabric's tables together
            // need not fit), with the paths found once.
            let paths = t.paths();
            let counts: Vec<usize> = (0..t.nodes.len())
                .map(|i| NodeTables::build_with(&t, i, &paths).route_count())
                .collect();
            let mut per_node: Vec<String> = t
                .nodes
                .iter()
                .zip(&counts)
                .take(ROUTES_LISTED)
                .map(|(n, c)| format!("{} {c}", n.name))
                .collect();
            if t.nodes.len() > ROUTES_LISTED {
                let (min, max) = counts
                    .iter()
                    .fold((usize::MAX, 0), |(lo, hi), &c| (lo.min(c), hi.max(c)));
                per_node.push(format!(
                    "and {} more ({min} to {max} each)",
                    t.nodes.len() - ROUTES_LISTED
                ));
            }
            let _ = writeln!(out, "  routes per node: {}", per_node.join(", "));
            // Links by the names `node --port` and `run --pcap-port` take
            // (a long list is cut, as the routes are).
            let links: Vec<String> = t
                .links
                .iter()
                .enumerate()
                .take(ROUTES_LISTED)
                .map(|(i, (a, b))| {
                    let end = |p: &fabric::topology::PortRef| {
                        format!("{}:{}", t.nodes[p.node].name, p.port)
                    };
                    // Only the exception is named: frames checked by the FCS.
                    let fcs = t.link_integrity.get(i) == Some(&fabric::frame::Integrity::Fcs);
                    format!(
                        "link{i} {}-{}{}",
                        end(a),
                        end(b),
                        if fcs { " (fcs)" } else { "" }
                    )
                })
                .collect();
            if !links.is_empty() {
                let more = t.links.len().saturating_sub(ROUTES_LISTED);
                let tail = if more > 0 {
                    format!(", and {more} more")
                } else {
                    String::new()
                };
                let _ = writeln!(out, "  links: {}{tail}", links.join(", "));
            }
            let _ = writeln!(out, "  memory: {}", crate::memory_line(&t));
            for h in &t.hosts {
                let dma: Vec<String> = h
                    .dma
                    .iter()
                    .zip(&h.fabric_dma)
                    .map(|(w, f)| format!("{:#x}+{:#x} at {f:#x}", w.base, w.size))
                    .collect();
                let _ = writeln!(
                    out,
                    "  {}: requesters on fabric bus {:02x}; dma {}",
                    h.name,
                    h.fabric_bus,
                    dma.join(", ")
                );
            }
            for b in &t.bindings {
                let e = &t.endpoints[b.endpoint];
                let function = match b.function {
                    0 => "pf".to_string(),
                    n => format!("vf{n}"),
                };
                let _ = writeln!(
                    out,
                    "  {}.{function} -> {} as {}, BAR {:#x} (fabric {}, BAR {:#x}), id_mode {}",
                    e.name,
                    t.hosts[b.host].name,
                    b.host_id,
                    b.bar.base,
                    tlp::Bdf(e.id.0.wrapping_add(b.function as u16)),
                    e.fabric_bar + b.function as u64 * e.bar_size,
                    b.id_mode.name(),
                );
            }
            0
        }
        Err(errors) => {
            for e in &errors {
                let _ = writeln!(err, "error: {e}");
            }
            let _ = writeln!(err, "{}: {} problem(s)", args.file.display(), errors.len());
            EXIT_REJECTED
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::run_captured;

    fn shipped(name: &str) -> String {
        format!("{}/../../configs/{name}", env!("CARGO_MANIFEST_DIR"))
    }

    #[test]
    fn shipped_topologies_check() {
        let (code, out, err) = run_captured(&["config", "check", &shipped("default.toml")], "");
        assert_eq!(code, 0, "{err}");
        assert!(
            out.contains("nodes 2, links 1, hosts 2, functions 4, bindings 2"),
            "{out}"
        );
        let (code, out, err) = run_captured(&["config", "check", &shipped("rack.toml")], "");
        assert_eq!(code, 0, "{err}");
        assert!(
            out.contains("nodes 4, links 4, hosts 8, functions 32, bindings 24"),
            "{out}"
        );
        assert!(out.contains("routes per node: sw0 "), "{out}");
        let (_, out, _) = run_captured(&["config", "check", &shipped("default.toml")], "");
        assert!(
            out.contains("nic0.vf1 -> host-a as 01:00.0, BAR 0xfe000000 (fabric 40:00.1, BAR 0x80020000), id_mode different"),
            "{out}"
        );
        assert!(out.contains("host-b: requesters on fabric bus fe"), "{out}");
        assert!(out.contains("  links: link0 sw0:0-sw1:0\n"), "{out}");
    }

    #[test]
    fn problems_are_listed_and_exit_1() {
        let dir = std::env::temp_dir().join(format!("tlpfabric-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("bad.toml");
        let text = std::fs::read_to_string(shipped("default.toml"))
            .unwrap()
            .replace("nic0.vf2", "nic0.vf9");
        std::fs::write(&path, text).unwrap();
        let (code, _, err) = run_captured(&["config", "check", path.to_str().unwrap()], "");
        assert_eq!(code, 1);
        assert!(
            err.contains("bad.toml: binding[1].function: nic0 has 3 virtual functions, not vf9"),
            "{err}"
        );
        // A template that is not there.
        let text = std::fs::read_to_string(shipped("default.toml"))
            .unwrap()
            .replace("template = \"nic\"", "template = \"nothing\"");
        std::fs::write(&path, text).unwrap();
        let (code, _, err) = run_captured(&["config", "check", path.to_str().unwrap()], "");
        assert_eq!(code, 1);
        assert!(
            err.contains("bad.toml: endpoint[0].template: template \"nothing\": ")
                && err.contains("cannot read"),
            "{err}"
        );
        let (code, _, err) = run_captured(&["config", "check", "/nonexistent/topology.toml"], "");
        assert_eq!(code, 1);
        assert!(err.contains("cannot read"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Nodes in a line, a host at each end and a device in the middle.
    fn chain(nodes: usize) -> String {
        let mut text = String::new();
        for i in 0..nodes {
            text += &format!("[[node]]\nname = \"n{i}\"\nports = 4\n");
        }
        for i in 1..nodes {
            text += &format!("[[link]]\na = \"n{}:0\"\nb = \"n{i}:1\"\n", i - 1);
        }
        for (h, node) in [(0, 0), (1, nodes - 1)] {
            text += &format!(
                "[[host]]\nname = \"h{h}\"\nattach = \"n{node}:2\"\nbuses = \"00-0f\"\n\
                 requesters = [\"00:00.0\"]\n\
                 dma = [{{ base = \"0x100000000\", size = \"0x40000000\" }}]\n\
                 [[binding]]\nfunction = \"e0.vf{}\"\nhost = \"h{h}\"\nid = \"01:00.0\"\n\
                 bar = \"0xfe000000\"\n",
                h + 1
            );
        }
        text + &format!(
            "[[endpoint]]\nname = \"e0\"\nattach = \"n{}:2\"\nid = \"40:00.0\"\nvfs = 2\n\
             bar_size = \"0x10000\"\n",
            nodes / 2
        )
    }

    /// Checking grows with the fabric, not with its square: ten times the
    /// nodes take about ten times as long (a search of the fabric from
    /// every node, or a walk of every link for every node, took a hundred
    /// times as long). Timed here only as a ratio of two sizes, each the
    /// best of three, with a wide margin.
    #[test]
    fn checking_a_line_of_nodes_is_linear_in_its_length() {
        let dir = std::env::temp_dir().join(format!("tlpfabric-chain-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut best = Vec::new();
        for nodes in [2_000, 20_000] {
            let path = dir.join(format!("chain{nodes}.toml"));
            std::fs::write(&path, chain(nodes)).unwrap();
            let args = ["config", "check", path.to_str().unwrap()];
            let mut times = Vec::new();
            for _ in 0..3 {
                let started = std::time::Instant::now();
                let (code, out, err) = run_captured(&args, "");
                times.push(started.elapsed().as_secs_f64());
                assert_eq!(code, 0, "{err}");
                assert!(out.contains(&format!("nodes {nodes}, links {}", nodes - 1)));
                assert!(out.contains(&format!("and {} more", nodes - 16)), "{out}");
            }
            best.push(times.iter().cloned().fold(f64::MAX, f64::min));
        }
        std::fs::remove_dir_all(&dir).unwrap();
        let ratio = best[1] / best[0];
        assert!(
            ratio < 40.0,
            "10x the nodes took {ratio:.1}x as long: {best:?}"
        );
    }

    /// The summary says what the fabric's buffers will take, and more
    /// replay slots take more.
    #[test]
    fn the_summary_says_what_memory_the_buffers_take() {
        let mib = |out: &str| -> f64 {
            let at = out.find("memory: about ").expect("a memory line") + 14;
            out[at..].split(' ').next().unwrap().parse().unwrap()
        };
        let (code, small, err) = run_captured(&["config", "check", &shipped("default.toml")], "");
        assert_eq!(code, 0, "{err}");
        let dir = std::env::temp_dir().join(format!("tlpfabric-memory-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("templates")).unwrap();
        let path = dir.join("big.toml");
        let text = std::fs::read_to_string(shipped("default.toml"))
            .unwrap()
            .replace("replay_slots = 64", "replay_slots = 4096")
            .replace("template = \"nic\"\n", "");
        std::fs::write(&path, text).unwrap();
        let (code, big, err) = run_captured(&["config", "check", path.to_str().unwrap()], "");
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(code, 0, "{err}");
        // Six link ends of 4096 slots of about 1.5 KB more.
        let grew = mib(&big) - mib(&small);
        assert!((25.0..60.0).contains(&grew), "{small}\n{big}");
    }
}
