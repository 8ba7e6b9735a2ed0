//! The `tlpfabric` command-line program, as a library so that end-to-end tests
//! can run it in-process: [`run`] takes the arguments and the three standard
//! streams and returns the exit status.
//!
//! Exit status: 0 on success, 1 when some input was rejected (the rest is still
//! processed), 2 for usage errors.
#![forbid(unsafe_code)]

mod bench;
mod config_cmd;
mod forward_cmd;
pub mod hex;
mod interrupt;
mod machine;
mod manager_cmd;
mod progress;
mod run_cmd;
mod tlp_cmd;
mod vdi_cmd;

use clap::{Parser, Subcommand};
use std::ffi::OsString;
use std::io::{BufRead, Write};

/// The ports a run or a forwarder uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Pmd {
    /// In-memory ports: the embedded default, no DPDK.
    Ring,
    /// DPDK ethdevs (a build with `--features dpdk`).
    Dpdk,
    /// Native AF_PACKET ports on Linux interfaces (`forward` only).
    AfPacket,
}

impl Pmd {
    /// The name reports use.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Pmd::Ring => "ring",
            Pmd::Dpdk => "dpdk",
            Pmd::AfPacket => "af-packet",
        }
    }
}

/// Exit status when some input was rejected.
pub const EXIT_REJECTED: i32 = 1;
/// Exit status for usage errors.
pub const EXIT_USAGE: i32 = 2;

/// Checks before a run that an output file named by `flag` can be written,
/// so that a mistyped directory fails at once rather than after the run.
/// A file that was not there before is not left behind; one that was is
/// not truncated.
pub(crate) fn check_writable(flag: &str, path: &std::path::Path) -> Result<(), String> {
    let existed = path.exists();
    let opened = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path);
    match opened {
        Ok(_) => {
            if !existed {
                let _ = std::fs::remove_file(path);
            }
            Ok(())
        }
        Err(e) => Err(format!("{flag} {}: cannot write: {e}", path.display())),
    }
}

/// Initialises DPDK's EAL with `--eal` as given, or by default without
/// hugepages or PCI, 1 GiB, `vdevs`, and a file prefix of this process's own
/// (named after the command, so two runs never collide).
#[cfg(feature = "dpdk")]
pub(crate) fn init_eal(given: Option<&str>, command: &str, vdevs: &str) -> Result<(), String> {
    let default = format!(
        "--no-huge --no-pci -m 1024 {vdevs} --file-prefix=tlpfabric-{command}-{} --log-level=lib.eal:error --no-telemetry",
        std::process::id()
    );
    let eal = given.map_or(default, str::to_string);
    let args: Vec<&str> = eal.split_whitespace().collect();
    pmd::dpdk::init(&args).map_err(|e| format!("--eal: {e}"))
}

#[derive(Debug, Parser)]
#[command(
    name = "tlpfabric",
    version,
    about = "A dataplane that forwards encapsulated PCIe TLPs across a distributed fabric"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Decode and encode PCIe TLPs.
    #[command(subcommand)]
    Tlp(tlp_cmd::TlpCommand),
    /// Check fabric topologies.
    #[command(subcommand)]
    Config(config_cmd::ConfigCommand),
    /// Run the whole fabric of a topology with traffic models and report
    /// throughput and integrity (exit 1 if anything was lost, doubled,
    /// reordered, timed out or damaged).
    Run(run_cmd::RunArgs),
    /// Run one node of a topology in this process, with the hosts and
    /// devices attached to it, its links to the other nodes' processes on
    /// AF_PACKET ports, reporting to the fabric manager if given one.
    Node(run_cmd::NodeArgs),
    /// Run the fabric manager: node processes register and report to it;
    /// `status` reads what it knows.
    Manager(manager_cmd::ManagerArgs),
    /// The fabric as the manager sees it: nodes up or down, links and
    /// their replays, bindings and what on their path is not up.
    Status(manager_cmd::StatusArgs),
    /// Merge the JSON reports of a fabric's node processes into the
    /// fabric's integrity (exit 1 if anything was lost, doubled, reordered,
    /// timed out or damaged).
    Report(run_cmd::ReportArgs),
    /// Run one node's forwarding pipeline between two ports, for benchmarking.
    Forward(forward_cmd::ForwardArgs),
    /// Run a sweep of `run` or `forward` points and write a table, plots
    /// and a page of them (`configs/sweeps/`).
    Bench(bench::BenchArgs),
    /// Virtual device instantiations: inspect a configuration-space dump.
    #[command(subcommand)]
    Vdi(vdi_cmd::VdiCommand),
}

/// Whether usage errors may be coloured: standard error is a terminal and
/// `NO_COLOR` (no-color.org) is not set to anything.
pub fn colour_errors() -> bool {
    use std::io::IsTerminal;
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stderr().is_terminal()
}

/// Runs the program with `args` (the first is the program name), usage
/// errors in plain text.
pub fn run<I, T>(
    args: I,
    stdin: &mut dyn BufRead,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    run_coloured(args, stdin, stdout, stderr, false)
}

/// [`run`], with usage errors in ANSI colour if `colour` (see
/// [`colour_errors`]).
pub fn run_coloured<I, T>(
    args: I,
    stdin: &mut dyn BufRead,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
    colour: bool,
) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            let text = if colour {
                e.render().ansi().to_string()
            } else {
                e.render().to_string()
            };
            return match e.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
                    let _ = write!(stdout, "{}", e.render());
                    0
                }
                _ => {
                    let _ = write!(stderr, "{text}");
                    EXIT_USAGE
                }
            };
        }
    };
    match cli.command {
        Command::Tlp(cmd) => tlp_cmd::run(cmd, stdin, stdout, stderr),
        Command::Config(cmd) => config_cmd::run(cmd, stdout, stderr),
        Command::Vdi(cmd) => vdi_cmd::run(cmd, stdin, stdout, stderr),
        Command::Forward(args) => forward_cmd::run(args, stdout, stderr),
        Command::Run(args) => run_cmd::run(args, stdout, stderr),
        Command::Node(args) => run_cmd::node(args, stdout, stderr),
        Command::Report(args) => run_cmd::merge(args, stdout, stderr),
        Command::Manager(args) => manager_cmd::manager(args, stdout, stderr),
        Command::Status(args) => manager_cmd::status(args, stdout, stderr),
        Command::Bench(args) => bench::run(args, stdout, stderr),
    }
}

/// What building a topology's fabric allocates, in words.
pub(crate) fn memory_line(t: &fabric::Topology) -> String {
    let m = assembly::memory(t);
    let mib = |b: usize| b as f64 / (1 << 20) as f64;
    format!(
        "about {:.0} MiB of buffers when built (frame pool {:.0}, replay buffers {:.1}, waiting rooms {:.1}, \
         pause points and VDIs {:.1}, functions' memory {:.1})",
        mib(m.total()),
        mib(m.frame_pool),
        mib(m.replay_buffers),
        mib(m.waiting_rooms),
        mib(m.gates),
        mib(m.models)
    )
}

/// Runs the program with `args` (without the program name) and `stdin`,
/// capturing its output: `(exit status, standard output, standard error)`.
pub fn run_captured(args: &[&str], stdin: &str) -> (i32, String, String) {
    run_captured_bytes(args, stdin.as_bytes())
}

/// [`run_captured`] with standard input as bytes (not necessarily text).
pub fn run_captured_bytes(args: &[&str], stdin: &[u8]) -> (i32, String, String) {
    let mut input = stdin;
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let argv = std::iter::once("tlpfabric").chain(args.iter().copied());
    let code = run(argv, &mut input, &mut out, &mut err);
    (
        code,
        String::from_utf8_lossy(&out).into_owned(),
        String::from_utf8_lossy(&err).into_owned(),
    )
}
