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
fn template_problems(file: &std::path::Path, t: &Topology) -> Vec<ConfigError> {
    let dir = file.parent().unwrap_or(std::path::Path::new("."));
    let mut problems = Vec::new();
    for (i, e) in t.endpoints.iter().enumerate() {
        let Some(name) = &e.template else {
            continue;
        };
        let path = dir.join("templates").join(format!("{name}.toml"));
        if let Err(errors) = vdi::Template::load(&path) {
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
            let per_node: Vec<String> = t
                .nodes
                .iter()
                .enumerate()
                .map(|(i, n)| format!("{} {}", n.name, NodeTables::build(&t, i).route_count()))
                .collect();
            let _ = writeln!(out, "  routes per node: {}", per_node.join(", "));
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
}
