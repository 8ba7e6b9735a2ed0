//! `tlpfabric config check`.

use crate::EXIT_REJECTED;
use clap::{Args, Subcommand};
use fabric::Topology;
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

pub(crate) fn run(cmd: ConfigCommand, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    let ConfigCommand::Check(args) = cmd;
    match Topology::load(&args.file) {
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
            let routes = t.routes_per_node();
            let per_node: Vec<String> = t
                .nodes
                .iter()
                .zip(&routes)
                .map(|(n, r)| format!("{} {}", n.name, r))
                .collect();
            let _ = writeln!(out, "  routes per node: {}", per_node.join(", "));
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
        let (code, _, err) = run_captured(&["config", "check", "/nonexistent/topology.toml"], "");
        assert_eq!(code, 1);
        assert!(err.contains("cannot read"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
