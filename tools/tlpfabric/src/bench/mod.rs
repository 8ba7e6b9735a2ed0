//! `tlpfabric bench`: a sweep of `run` (or `forward`) points, each in a
//! process of its own (its own EAL, its own memory), repeated, with the
//! core-to-core round trip measured just before and after each, and the
//! results written as a directory a colleague can open: one JSON and one
//! HdrHistogram log per run, `summary.csv`, SVG and PNG plots and a
//! self-contained `index.html`.

mod outputs;
mod sweep;

use crate::{EXIT_REJECTED, EXIT_USAGE};
use clap::Args;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};
pub(crate) use sweep::Sweep;
use sweep::{Command, Point};

/// The sweep `bench` runs when given none: `configs/sweeps/quick.toml`.
const QUICK: &str = include_str!("../../../../configs/sweeps/quick.toml");

#[derive(Debug, Args)]
pub(crate) struct BenchArgs {
    /// The sweep (default: the built-in configs/sweeps/quick.toml).
    #[arg(long)]
    sweep: Option<PathBuf>,
    /// The directory results are written to (made if missing).
    #[arg(long, default_value = "bench-out")]
    out: PathBuf,
    /// Ports for every point, over the sweep's own choice: `ring` or
    /// `dpdk` (a build with `--features dpdk`).
    #[arg(long, value_enum)]
    pmd: Option<crate::Pmd>,
    /// EAL arguments for every point's `--pmd dpdk` (each point is its own
    /// process, with a file prefix of its own by default).
    #[arg(long, allow_hyphen_values = true)]
    eal: Option<String>,
}

/// One run of one point: what it was and what it measured.
#[derive(Debug, Clone)]
pub(crate) struct Measured {
    pub point: Point,
    pub repetition: u32,
    /// The process's exit status (`None`: killed or never ended).
    pub exit: Option<i32>,
    /// Its JSON report, if it wrote one.
    pub report: Option<serde_json::Value>,
    /// Its HdrHistogram log, if it wrote one.
    pub hdr_log: Option<PathBuf>,
    /// The core-to-core cache-line round trip just before and just after.
    pub round_trip_before: Option<Duration>,
    pub round_trip_after: Option<Duration>,
    /// Wall time of the whole process.
    pub wall: Duration,
}

pub(crate) fn run(args: BenchArgs, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    let sweep = match &args.sweep {
        Some(file) => Sweep::load(file),
        None => Sweep::parse(QUICK)
            .map(|mut s| {
                s.file = PathBuf::from("configs/sweeps/quick.toml (built in)");
                s
            })
            .map_err(|(key, e)| format!("configs/sweeps/quick.toml: {key}: {e}")),
    };
    let mut sweep = match sweep {
        Ok(s) => s,
        Err(e) => {
            let _ = writeln!(err, "error: {e}");
            return EXIT_USAGE;
        }
    };
    if let Some(pmd) = &args.pmd {
        sweep.fixed.retain(|(k, _)| k != "pmd");
        sweep.axes.retain(|(k, _)| k != "pmd");
        sweep.fixed.push(("pmd".into(), pmd.name().into()));
    }
    let points_dir = args.out.join("points");
    if let Err(e) = std::fs::create_dir_all(&points_dir) {
        let _ = writeln!(
            err,
            "error: --out {}: cannot make it: {e}",
            points_dir.display()
        );
        return EXIT_USAGE;
    }
    let program = match std::env::current_exe() {
        Ok(p) => p,
        Err(e) => {
            let _ = writeln!(
                err,
                "error: cannot find this program to run its points: {e}"
            );
            return EXIT_REJECTED;
        }
    };
    let machine = crate::machine::describe();
    let points = sweep.points();
    let runs = points.len() * sweep.repetitions as usize;
    // Each run's traffic, its drain, and what starting and stopping take.
    let per_run = sweep.warmup + sweep.window + Duration::from_millis(600);
    let _ = writeln!(
        err,
        "bench: {} ({}): {} points × {} repetitions, about {:.0} s; results in {}",
        sweep.file.display(),
        sweep.command.name(),
        points.len(),
        sweep.repetitions,
        (per_run * runs as u32).as_secs_f64(),
        args.out.display()
    );
    if let Err(e) = crate::interrupt::arm() {
        let _ = writeln!(err, "note: {e}: Ctrl-C ends the sweep without its results");
    }
    let progress = Progress::new(runs as u64);
    let mut measured = Vec::new();
    let started = Instant::now();
    'sweep: for point in &points {
        for repetition in 1..=sweep.repetitions {
            progress.start(
                point,
                repetition,
                measured.len(),
                runs,
                started.elapsed(),
                err,
            );
            let m = measure(&program, &sweep, &args, point, repetition, &points_dir);
            progress.done(&m, err);
            measured.push(m);
            if crate::interrupt::requested() {
                break 'sweep;
            }
        }
    }
    progress.finish();
    let interrupted = crate::interrupt::requested();
    if interrupted {
        let _ = writeln!(
            err,
            "note: interrupted after {} of {runs} runs: writing what was measured",
            measured.len()
        );
    }
    if let Err(e) = outputs::write_all(&args.out, &sweep, &machine, &measured, interrupted) {
        let _ = writeln!(err, "error: {e}");
        return EXIT_REJECTED;
    }
    let failed: Vec<String> = measured
        .iter()
        .filter(|m| m.exit != Some(0))
        .map(|m| format!("{} #{} ({})", m.point.name(), m.repetition, m.point.label()))
        .collect();
    let _ = writeln!(
        out,
        "bench: {} runs in {:.1} s; {}",
        measured.len(),
        started.elapsed().as_secs_f64(),
        args.out.join("index.html").display()
    );
    if failed.is_empty() {
        0
    } else {
        let _ = writeln!(
            err,
            "error: {} runs failed (their logs are in {}): {}",
            failed.len(),
            points_dir.display(),
            failed.join(", ")
        );
        EXIT_REJECTED
    }
}

/// Runs one repetition of one point in a process of its own.
fn measure(
    program: &Path,
    sweep: &Sweep,
    args: &BenchArgs,
    point: &Point,
    repetition: u32,
    dir: &Path,
) -> Measured {
    let stem = format!("{}-r{repetition}", point.name());
    let json = dir.join(format!("{stem}.json"));
    let hdr_log = dir.join(format!("{stem}.hlog"));
    let log = dir.join(format!("{stem}.log"));
    let mut options = sweep.options(point);
    options.extend(["--json".into(), json.display().to_string()]);
    if sweep.command == Command::Run {
        options.extend(["--hdr-log".into(), hdr_log.display().to_string()]);
    }
    if let Some(eal) = &args.eal {
        options.extend(["--eal".into(), eal.clone()]);
    }
    let round_trip_before = core_round_trip();
    let started = Instant::now();
    let exit = match std::fs::File::create(&log) {
        Ok(file) => {
            let _ = writeln!(&file, "$ tlpfabric {}", options.join(" "));
            let spawned = std::process::Command::new(program)
                .args(&options)
                .stdin(Stdio::null())
                .stdout(file.try_clone().map_or(Stdio::null(), Stdio::from))
                .stderr(Stdio::from(file))
                .spawn();
            match spawned {
                Ok(child) => wait(child, sweep.warmup + sweep.window),
                Err(_) => None,
            }
        }
        Err(_) => None,
    };
    let wall = started.elapsed();
    let round_trip_after = core_round_trip();
    let report = std::fs::read_to_string(&json)
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok());
    Measured {
        point: point.clone(),
        repetition,
        exit,
        report,
        hdr_log: (sweep.command == Command::Run && hdr_log.exists()).then_some(hdr_log),
        round_trip_before,
        round_trip_after,
        wall,
    }
}

/// Waits for a point's process; passes a Ctrl-C on to it (it stops and
/// reports what it measured), and kills it if it runs far past its time.
fn wait(mut child: Child, traffic: Duration) -> Option<i32> {
    let limit = traffic * 3 + Duration::from_secs(60);
    let started = Instant::now();
    let mut passed_on = false;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return status.code(),
            Ok(None) => {}
            Err(_) => return None,
        }
        if crate::interrupt::requested() && !passed_on {
            passed_on = true;
            // The shell's own kill: no program beyond a shell is assumed.
            let _ = std::process::Command::new("sh")
                .args(["-c", &format!("kill -INT {}", child.id())])
                .status();
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The cache-line round trip between the first and last CPU, while
/// nothing of the sweep runs.
fn core_round_trip() -> Option<Duration> {
    let cpus = core_affinity::get_core_ids().map_or(1, |c| c.len());
    (cpus > 1)
        .then(|| {
            lcore::pingpong::cache_line_round_trip(
                0,
                cpus - 1,
                5,
                5_000,
                Duration::from_millis(200),
            )
        })
        .flatten()
}

/// A bar on a terminal; a line per run otherwise.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
}

impl Progress {
    fn new(runs: u64) -> Progress {
        use std::io::IsTerminal;
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new(runs);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{bar:30} {pos}/{len} runs, {eta} left: {msg}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            bar
        });
        Progress { bar }
    }

    fn start(
        &self,
        point: &Point,
        repetition: u32,
        done: usize,
        runs: usize,
        spent: Duration,
        err: &mut dyn Write,
    ) {
        if let Some(bar) = &self.bar {
            bar.set_message(format!("{} #{repetition} {}", point.name(), point.label()));
        } else {
            let left = if done == 0 {
                String::new()
            } else {
                let each = spent.as_secs_f64() / done as f64;
                format!(", about {:.0} s left", each * (runs - done) as f64)
            };
            let _ = writeln!(
                err,
                "bench: run {}/{runs}: {} #{repetition} {}{left}",
                done + 1,
                point.name(),
                point.label()
            );
        }
    }

    fn done(&self, m: &Measured, err: &mut dyn Write) {
        let rate = m
            .report
            .as_ref()
            .and_then(|r| outputs::number(r, outputs::THROUGHPUT))
            .map_or("no report".to_string(), |r| format!("{:.0} TLPs/s", r));
        let status = match m.exit {
            Some(0) => String::new(),
            Some(code) => format!(" (exit status {code})"),
            None => " (killed: it did not end)".to_string(),
        };
        match &self.bar {
            Some(bar) => {
                bar.inc(1);
                if m.exit != Some(0) {
                    bar.println(format!("{}: {rate}{status}", m.point.name()));
                }
            }
            None => {
                let _ = writeln!(err, "  {rate}{status}");
            }
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
