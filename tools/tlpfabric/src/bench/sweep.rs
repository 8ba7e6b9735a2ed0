//! A sweep file: which command each point runs, the options every point
//! shares, and the axes whose every combination is a point.
//!
//! ```toml
//! command = "run"            # or "forward"
//! config = "../default.toml" # the topology, relative to this file (run)
//! warmup = "200ms"           # traffic before the window, no migration (run)
//! window = "1s"              # the measured duration of each point
//! repetitions = 2
//!
//! [fixed]                    # options of the command, the same for every point
//! completion-timeout = "50ms"
//!
//! [axes]                     # options of the command, one value per point
//! rate = [50000, 200000]
//! payload = [64, 256, 1024]
//! migrations-per-s = [100]   # run: split between VM and endpoint migrations
//! ```

use crate::forward_cmd::{parse_duration, parse_duration_or_zero};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What a sweep file asks for.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Sweep {
    /// Where it came from (for errors and the report).
    pub file: PathBuf,
    /// Its text, shown in the report.
    pub text: String,
    /// A line saying what it is for.
    pub description: String,
    /// `run` or `forward`.
    pub command: Command,
    /// The topology (`run`), resolved against the sweep's directory.
    pub config: Option<PathBuf>,
    pub warmup: Duration,
    pub window: Duration,
    pub repetitions: u32,
    /// Options every point gets, in the file's order.
    pub fixed: Vec<(String, String)>,
    /// The axes, in the file's order, each with its values.
    pub axes: Vec<(String, Vec<String>)>,
}

/// The command each point runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Command {
    Run,
    Forward,
}

impl Command {
    pub fn name(self) -> &'static str {
        match self {
            Command::Run => "run",
            Command::Forward => "forward",
        }
    }

    /// The options a sweep may set, and the form each takes.
    fn options(self) -> &'static [(&'static str, Form)] {
        match self {
            Command::Run => &[
                ("rate", Form::Number),
                ("payload", Form::Number),
                ("read-every", Form::Number),
                ("config-every", Form::Number),
                ("register-every", Form::Number),
                ("completion-timeout", Form::Duration),
                ("budget", Form::Duration),
                ("phase-deadline", Form::Duration),
                ("id-mode", Form::OneOf(&["different", "common"])),
                ("pmd", Form::OneOf(&["ring", "dpdk"])),
                ("migrations-per-s", Form::Number),
            ],
            Command::Forward => &[
                ("tlps-per-frame", Form::Number),
                ("payload", Form::Number),
                ("lcores", Form::Number),
                ("mode", Form::OneOf(&["pipeline", "io"])),
                ("pmd", Form::OneOf(&["ring", "dpdk"])),
            ],
        }
    }
}

/// The form an option's value takes.
#[derive(Debug, Clone, Copy)]
enum Form {
    Number,
    Duration,
    OneOf(&'static [&'static str]),
}

impl Form {
    fn describe(self) -> String {
        match self {
            Form::Number => "a non-negative number".into(),
            Form::Duration => "a duration like \"50ms\"".into(),
            Form::OneOf(values) => format!("one of {}", values.join(", ")),
        }
    }

    /// The value as the command line takes it.
    fn text(self, value: &toml::Value) -> Option<String> {
        match (self, value) {
            (Form::Number, toml::Value::Integer(n)) if *n >= 0 => Some(n.to_string()),
            (Form::Number, toml::Value::Float(f)) if f.is_finite() && *f >= 0.0 => {
                Some(f.to_string())
            }
            (Form::Duration, toml::Value::String(s)) if parse_duration(s).is_ok() => {
                Some(s.clone())
            }
            (Form::OneOf(values), toml::Value::String(s)) if values.contains(&s.as_str()) => {
                Some(s.clone())
            }
            _ => None,
        }
    }
}

/// The longest sweep file read: a sweep is a page, not a data set.
const MAX_SWEEP_BYTES: u64 = 64 * 1024;

/// The most points a sweep may have (combinations times repetitions).
pub(crate) const MAX_RUNS: usize = 10_000;

impl Sweep {
    /// Reads and checks `file`; every error names the file, the key and
    /// the form it expects.
    pub fn load(file: &Path) -> Result<Sweep, String> {
        let at = |key: &str, e: String| format!("{}: {key}: {e}", file.display());
        let size = std::fs::metadata(file)
            .map_err(|e| format!("{}: cannot read: {e}", file.display()))?
            .len();
        if size > MAX_SWEEP_BYTES {
            return Err(format!(
                "{}: expected a sweep file of at most {} KiB, found {size} bytes",
                file.display(),
                MAX_SWEEP_BYTES / 1024
            ));
        }
        let text = std::fs::read_to_string(file)
            .map_err(|e| format!("{}: cannot read: {e}", file.display()))?;
        let mut sweep = Sweep::parse(&text).map_err(|(key, e)| at(&key, e))?;
        sweep.file = file.to_path_buf();
        if let Some(config) = &sweep.config {
            let dir = file.parent().unwrap_or(Path::new("."));
            sweep.config = Some(dir.join(config));
        }
        Ok(sweep)
    }

    /// Parses a sweep's text; an error is the key at fault and what was
    /// wrong with it.
    pub fn parse(text: &str) -> Result<Sweep, (String, String)> {
        let table: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| ("(syntax)".to_string(), e.message().to_string()))?;
        let known = [
            "description",
            "command",
            "config",
            "warmup",
            "window",
            "repetitions",
            "fixed",
            "axes",
        ];
        if let Some(key) = table.keys().find(|k| !known.contains(&k.as_str())) {
            return Err((
                key.clone(),
                format!("unknown key: expected one of {}", known.join(", ")),
            ));
        }
        let string = |key: &str| -> Result<Option<String>, (String, String)> {
            match table.get(key) {
                None => Ok(None),
                Some(toml::Value::String(s)) => Ok(Some(s.clone())),
                Some(v) => Err((key.into(), format!("expected a string, found {v}"))),
            }
        };
        let command = match string("command")?.as_deref() {
            Some("run") | None => Command::Run,
            Some("forward") => Command::Forward,
            Some(other) => {
                return Err((
                    "command".into(),
                    format!("expected \"run\" or \"forward\", found {other:?}"),
                ))
            }
        };
        let duration = |key: &str, default: &str, zero: bool| {
            let s = string(key)?.unwrap_or_else(|| default.to_string());
            let parsed = if zero {
                parse_duration_or_zero(&s)
            } else {
                parse_duration(&s)
            };
            parsed.map_err(|e| (key.to_string(), e))
        };
        let warmup = duration("warmup", "0s", true)?;
        if command == Command::Forward && !warmup.is_zero() {
            return Err((
                "warmup".into(),
                "forward has no warm-up (its rate is measured over the window); remove the key"
                    .into(),
            ));
        }
        let window = duration("window", "1s", false)?;
        let repetitions = match table.get("repetitions") {
            None => 1,
            Some(toml::Value::Integer(n)) if (1..=100).contains(n) => *n as u32,
            Some(v) => {
                return Err((
                    "repetitions".into(),
                    format!("expected a whole number from 1 to 100, found {v}"),
                ))
            }
        };
        let config = string("config")?.map(PathBuf::from);
        if command == Command::Forward && config.is_some() {
            return Err((
                "config".into(),
                "forward takes no topology; remove the key".into(),
            ));
        }
        let section = |name: &str| -> Result<Vec<(String, toml::Value)>, (String, String)> {
            match table.get(name) {
                None => Ok(Vec::new()),
                Some(toml::Value::Table(t)) => {
                    Ok(t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                }
                Some(v) => Err((name.into(), format!("expected a table, found {v}"))),
            }
        };
        let form = |section: &str, key: &str| {
            command
                .options()
                .iter()
                .find(|(name, _)| *name == key)
                .map(|(_, form)| *form)
                .ok_or_else(|| {
                    let names: Vec<&str> = command.options().iter().map(|(n, _)| *n).collect();
                    (
                        format!("{section}.{key}"),
                        format!(
                            "not an option a sweep of {} sets: expected one of {}",
                            command.name(),
                            names.join(", ")
                        ),
                    )
                })
        };
        let mut fixed = Vec::new();
        for (key, value) in section("fixed")? {
            let form = form("fixed", &key)?;
            let text = form.text(&value).ok_or_else(|| {
                (
                    format!("fixed.{key}"),
                    format!("expected {}, found {value}", form.describe()),
                )
            })?;
            fixed.push((key, text));
        }
        let mut axes = Vec::new();
        for (key, value) in section("axes")? {
            let form = form("axes", &key)?;
            if fixed.iter().any(|(k, _)| *k == key) {
                return Err((
                    format!("axes.{key}"),
                    "also in [fixed]: an option is fixed or an axis, not both".into(),
                ));
            }
            let values = match &value {
                toml::Value::Array(values) if !values.is_empty() => values,
                other => {
                    return Err((
                        format!("axes.{key}"),
                        format!(
                            "expected a non-empty array of {}, found {other}",
                            form.describe()
                        ),
                    ))
                }
            };
            let mut texts = Vec::new();
            for (i, v) in values.iter().enumerate() {
                texts.push(form.text(v).ok_or_else(|| {
                    (
                        format!("axes.{key}[{i}]"),
                        format!("expected {}, found {v}", form.describe()),
                    )
                })?);
            }
            axes.push((key, texts));
        }
        let runs = axes
            .iter()
            .try_fold(repetitions as usize, |n, (_, v)| n.checked_mul(v.len()))
            .filter(|&n| n <= MAX_RUNS);
        if runs.is_none() {
            return Err((
                "axes".into(),
                format!("expected at most {MAX_RUNS} runs (points times repetitions) in a sweep"),
            ));
        }
        Ok(Sweep {
            file: PathBuf::new(),
            text: text.to_string(),
            description: string("description")?.unwrap_or_default(),
            command,
            config,
            warmup,
            window,
            repetitions,
            fixed,
            axes,
        })
    }

    /// Every combination of the axes' values, the first axis slowest.
    pub fn points(&self) -> Vec<Point> {
        let mut points = vec![Vec::new()];
        for (key, values) in &self.axes {
            points = points
                .into_iter()
                .flat_map(|p: Vec<(String, String)>| {
                    values.iter().map(move |v| {
                        let mut p = p.clone();
                        p.push((key.clone(), v.clone()));
                        p
                    })
                })
                .collect();
        }
        points
            .into_iter()
            .enumerate()
            .map(|(i, values)| Point { index: i, values })
            .collect()
    }

    /// The command-line options of `point`, without the output files.
    pub fn options(&self, point: &Point) -> Vec<String> {
        let mut out = vec![self.command.name().to_string()];
        if let Some(config) = &self.config {
            out.extend(["--config".into(), config.display().to_string()]);
        }
        out.extend(["--duration".into(), duration_text(self.window)]);
        if self.command == Command::Run {
            out.extend(["--warmup".into(), duration_text(self.warmup)]);
        }
        for (key, value) in self.fixed.iter().chain(&point.values) {
            if key == "migrations-per-s" {
                // Half of them VM migrations, half endpoint migrations.
                let per_s: f64 = value.parse().unwrap_or(0.0);
                let n = (per_s * self.window.as_secs_f64()).round() as u64;
                out.extend(["--vm-migrations".into(), n.div_ceil(2).to_string()]);
                out.extend(["--endpoint-migrations".into(), (n / 2).to_string()]);
            } else {
                out.extend([format!("--{key}"), value.clone()]);
            }
        }
        out
    }
}

/// A duration as the command line reads it, in nanoseconds.
fn duration_text(d: Duration) -> String {
    format!("{}ns", d.as_nanos())
}

/// One combination of the axes' values.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Point {
    pub index: usize,
    /// `(axis, value)` in the axes' order.
    pub values: Vec<(String, String)>,
}

impl Point {
    /// `p003`: the name of its files.
    pub fn name(&self) -> String {
        format!("p{:03}", self.index)
    }

    /// `rate=50000 payload=64`.
    pub fn label(&self) -> String {
        if self.values.is_empty() {
            return "(no axes)".into();
        }
        let parts: Vec<String> = self
            .values
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        parts.join(" ")
    }

    pub fn value(&self, axis: &str) -> Option<&str> {
        self.values
            .iter()
            .find(|(k, _)| k == axis)
            .map(|(_, v)| v.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const QUICK: &str = r#"
        description = "test"
        warmup = "100ms"
        window = "500ms"
        repetitions = 2
        [fixed]
        completion-timeout = "50ms"
        [axes]
        rate = [1000, 2000]
        id-mode = ["different", "common"]
        migrations-per-s = [10]
    "#;

    #[test]
    fn points_are_every_combination_the_first_axis_slowest() {
        let s = Sweep::parse(QUICK).unwrap();
        assert_eq!((s.repetitions, s.command), (2, Command::Run));
        let labels: Vec<String> = s.points().iter().map(Point::label).collect();
        assert_eq!(
            labels,
            [
                "rate=1000 id-mode=different migrations-per-s=10",
                "rate=1000 id-mode=common migrations-per-s=10",
                "rate=2000 id-mode=different migrations-per-s=10",
                "rate=2000 id-mode=common migrations-per-s=10",
            ]
        );
        let options = s.options(&s.points()[1]);
        assert_eq!(
            options.join(" "),
            "run --duration 500000000ns --warmup 100000000ns --completion-timeout 50ms \
             --rate 1000 --id-mode common --vm-migrations 3 --endpoint-migrations 2"
        );
    }

    #[test]
    fn every_error_names_its_key_and_the_form_it_expects() {
        for (text, key, expected) in [
            ("colour = 1", "colour", "unknown key"),
            ("command = \"walk\"", "command", "\"run\" or \"forward\""),
            ("window = \"5 parsecs\"", "window", "expected a duration"),
            ("window = \"0s\"", "window", "positive"),
            ("repetitions = 0", "repetitions", "1 to 100"),
            ("[axes]\nrate = []", "axes.rate", "non-empty array"),
            ("[axes]\nrate = [1, \"x\"]", "axes.rate[1]", "a non-negative number"),
            ("[axes]\nspeed = [1]", "axes.speed", "expected one of rate, payload"),
            ("[axes]\nid-mode = [\"both\"]", "axes.id-mode[0]", "one of different, common"),
            ("[fixed]\nbudget = 5", "fixed.budget", "a duration"),
            ("[fixed]\nrate = 1\n[axes]\nrate = [2]", "axes.rate", "not both"),
            ("command = \"forward\"\nwarmup = \"1s\"", "warmup", "no warm-up"),
            ("command = \"forward\"\n[axes]\nrate = [1]", "axes.rate", "tlps-per-frame"),
            ("[axes]\na = [", "(syntax)", ""),
            (
                "[axes]\nrate = [1,2,3,4,5,6,7,8,9,10]\npayload = [1,2,3,4,5,6,7,8,9,10]\nread-every = [1,2,3,4,5,6,7,8,9,10]\nconfig-every = [1,2,3,4,5,6,7,8,9,10,11]",
                "axes",
                "at most 10000 runs",
            ),
        ] {
            let (k, e) = Sweep::parse(text).unwrap_err();
            assert_eq!(k, key, "{text}: {e}");
            assert!(e.contains(expected), "{text}: {e}");
        }
    }

    #[test]
    fn a_file_resolves_its_topology_beside_itself_and_says_its_name_in_errors() {
        let dir = std::env::temp_dir().join(format!("tlpf-sweep-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("s.toml");
        std::fs::write(&file, "config = \"../line.toml\"\n").unwrap();
        let s = Sweep::load(&file).unwrap();
        assert_eq!(s.config, Some(dir.join("../line.toml")));
        std::fs::write(&file, "repetitions = \"two\"\n").unwrap();
        let e = Sweep::load(&file).unwrap_err();
        assert!(
            e.starts_with(&format!("{}: repetitions: expected", file.display())),
            "{e}"
        );
        std::fs::write(&file, vec![b'#'; 70_000]).unwrap();
        assert!(Sweep::load(&file).unwrap_err().contains("at most 64 KiB"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_shipped_sweeps_load() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs/sweeps");
        for name in ["quick.toml", "rig.toml"] {
            let s = Sweep::load(&dir.join(name)).unwrap_or_else(|e| panic!("{e}"));
            assert!(!s.points().is_empty(), "{name}");
            assert!(!s.description.is_empty(), "{name}");
        }
    }
}
