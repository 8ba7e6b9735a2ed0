//! What a sweep leaves behind: `summary.csv`, `machine.json`, plots as SVG
//! and PNG, and `index.html`, which shows them all without a network.

use super::sweep::{Command, Sweep};
use super::Measured;
use serde_json::{json, Value};
use std::fmt::Write as _;
use std::path::Path;
use telemetry::plot::{self, Chart, Series, XAxis};
use telemetry::report::RunReport;

/// Where a report keeps its rate of TLPs: `run`'s, then `forward`'s.
pub(crate) const THROUGHPUT: &[&str] = &["/throughput/tlps_per_s", "/tlps_per_s"];

/// The first of `pointers` that holds a number in `report`.
pub(crate) fn number(report: &Value, pointers: &[&str]) -> Option<f64> {
    pointers
        .iter()
        .find_map(|p| report.pointer(p).and_then(Value::as_f64))
}

/// A column of `summary.csv` taken from a point's report.
type Column = (&'static str, Cell);

/// How a column's cell is read: from `run`'s report type, or (`forward`)
/// from where its JSON keeps it.
#[derive(Clone, Copy)]
enum Cell {
    Run(fn(&RunReport) -> Value),
    Pointer(&'static str),
}

/// The columns taken from each run's report. Documented in
/// docs/benchmarks.md.
fn report_columns(command: Command) -> &'static [Column] {
    use Cell::{Pointer, Run};
    match command {
        Command::Run => &[
            ("duration_s", Run(|r| r.duration_s.into())),
            ("interrupted", Run(|r| r.interrupted.into())),
            ("tlps_per_s", Run(|r| r.throughput.tlps_per_s.into())),
            ("sent", Run(|r| r.integrity.sent.into())),
            ("delivered", Run(|r| r.integrity.delivered.into())),
            ("lost", Run(|r| r.integrity.lost.into())),
            (
                "completion_timeouts",
                Run(|r| r.integrity.completion_timeouts.into()),
            ),
            ("vm_migrations", Run(|r| r.migrations.vm.into())),
            ("endpoint_migrations", Run(|r| r.migrations.endpoint.into())),
            ("aborted_migrations", Run(|r| r.migrations.aborted.into())),
            (
                "blackout_p50_us",
                Run(|r| r.blackout.per_migration_us.p50.into()),
            ),
            (
                "blackout_p99_us",
                Run(|r| r.blackout.per_migration_us.p99.into()),
            ),
            (
                "blackout_p999_us",
                Run(|r| r.blackout.per_migration_us.p999.into()),
            ),
            (
                "blackout_max_us",
                Run(|r| r.blackout.per_migration_us.max.into()),
            ),
            ("held_tlp_p50_us", Run(|r| r.blackout.per_tlp_us.p50.into())),
            ("held_tlp_p99_us", Run(|r| r.blackout.per_tlp_us.p99.into())),
            ("round_trip_p50_us", Run(|r| r.round_trip_us.p50.into())),
            ("round_trip_p99_us", Run(|r| r.round_trip_us.p99.into())),
            ("round_trip_p999_us", Run(|r| r.round_trip_us.p999.into())),
            (
                "busy_core0",
                Run(|r| r.cores.busy_fraction.first().copied().into()),
            ),
            (
                "busy_core1",
                Run(|r| r.cores.busy_fraction.get(1).copied().into()),
            ),
        ],
        Command::Forward => &[
            ("duration_s", Pointer("/duration_s")),
            ("interrupted", Pointer("/interrupted")),
            ("tlps_per_s", Pointer("/tlps_per_s")),
            ("frames_per_s", Pointer("/frames_per_s")),
            ("ns_per_tlp", Pointer("/ns_per_tlp")),
            ("tsc_cycles_per_tlp", Pointer("/tsc_cycles_per_tlp")),
            ("tlps_refused", Pointer("/tlps_refused")),
            ("frames_malformed", Pointer("/frames_malformed")),
        ],
    }
}

impl Cell {
    /// The cell of a report, read as JSON and (for `run`'s) as its type.
    fn of(self, report: &Value, run: Option<&RunReport>) -> Value {
        match self {
            Cell::Run(f) => run.map_or(Value::Null, f),
            Cell::Pointer(p) => report.pointer(p).cloned().unwrap_or(Value::Null),
        }
    }
}

/// The columns every row starts with.
const LEAD_COLUMNS: [&str; 7] = [
    "point",
    "repetition",
    "label",
    "exit_status",
    "wall_s",
    "core_round_trip_before_ns",
    "core_round_trip_after_ns",
];

/// `summary.csv`: a header, then one row per run.
pub(crate) fn csv(sweep: &Sweep, measured: &[Measured]) -> String {
    let mut text = String::new();
    let axes: Vec<&str> = sweep.axes.iter().map(|(k, _)| k.as_str()).collect();
    let columns = report_columns(sweep.command);
    let header: Vec<&str> = LEAD_COLUMNS
        .iter()
        .copied()
        .chain(axes.iter().copied())
        .chain(columns.iter().map(|(name, _)| *name))
        .collect();
    let _ = writeln!(text, "{}", header.join(","));
    for m in measured {
        let mut row = vec![
            m.point.name(),
            m.repetition.to_string(),
            csv_field(&m.point.label()),
            m.exit.map_or(String::new(), |c| c.to_string()),
            format!("{:.3}", m.wall.as_secs_f64()),
            m.round_trip_before
                .map_or(String::new(), |d| d.as_nanos().to_string()),
            m.round_trip_after
                .map_or(String::new(), |d| d.as_nanos().to_string()),
        ];
        row.extend(
            axes.iter()
                .map(|a| csv_field(m.point.value(a).unwrap_or_default())),
        );
        // A run's report is read as its type once per row.
        let run = m
            .report
            .as_ref()
            .filter(|_| sweep.command == Command::Run)
            .and_then(|r| serde_json::from_value::<RunReport>(r.clone()).ok());
        for (_, cell) in columns {
            let value = m
                .report
                .as_ref()
                .map_or(Value::Null, |r| cell.of(r, run.as_ref()));
            row.push(match value {
                Value::Null => String::new(),
                Value::String(s) => csv_field(&s),
                other => other.to_string(),
            });
        }
        let _ = writeln!(text, "{}", row.join(","));
    }
    text
}

/// A CSV field, quoted when it must be (RFC 4180).
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// The axis plots put on x: `rate` if swept, else the first axis whose
/// values are all numbers; `None` when no axis is numeric.
fn x_axis(sweep: &Sweep) -> Option<&str> {
    let numeric = |(_, values): &&(String, Vec<String>)| {
        values.len() > 1 && values.iter().all(|v| v.parse::<f64>().is_ok())
    };
    sweep
        .axes
        .iter()
        .find(|a| a.0 == "rate" && numeric(a))
        .or_else(|| sweep.axes.iter().find(|a| numeric(a)))
        .map(|(k, _)| k.as_str())
}

/// Runs grouped into lines: each group shares every axis but x, and its
/// points are (x, the mean of `y` over the group's runs at that x).
fn lines(
    sweep: &Sweep,
    measured: &[Measured],
    y: impl Fn(&Measured) -> Option<f64>,
) -> Vec<Series> {
    let x_name = x_axis(sweep);
    // Per line: its name, and per x the sum of y and how many runs.
    type Sums = Vec<(f64, f64, u32)>;
    let mut groups: Vec<(String, Sums)> = Vec::new();
    for m in measured {
        let Some(value) = y(m) else { continue };
        let x = match x_name {
            Some(name) => m.point.value(name).and_then(|v| v.parse().ok()),
            None => Some(m.point.index as f64),
        };
        let Some(x) = x else { continue };
        let others: Vec<String> = m
            .point
            .values
            .iter()
            .filter(|(k, _)| Some(k.as_str()) != x_name)
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let name = if others.is_empty() {
            "all".to_string()
        } else {
            others.join(" ")
        };
        let group = match groups.iter_mut().position(|(n, _)| *n == name) {
            Some(i) => &mut groups[i].1,
            None => {
                groups.push((name, Vec::new()));
                &mut groups.last_mut().expect("just pushed").1
            }
        };
        match group.iter_mut().find(|(gx, _, _)| *gx == x) {
            Some((_, sum, n)) => {
                *sum += value;
                *n += 1;
            }
            None => group.push((x, value, 1)),
        }
    }
    groups
        .into_iter()
        .map(|(name, mut points)| {
            points.sort_by(|a, b| a.0.total_cmp(&b.0));
            Series {
                name,
                points: points
                    .into_iter()
                    .map(|(x, sum, n)| (x, sum / n as f64))
                    .collect(),
            }
        })
        .collect()
}

/// A plot: its file stem, caption and SVG.
struct Plot {
    stem: &'static str,
    caption: String,
    svg: String,
}

fn plots(sweep: &Sweep, measured: &[Measured]) -> Result<Vec<Plot>, telemetry::Error> {
    let x_name = x_axis(sweep);
    let x_label = match x_name {
        Some("rate") => "offered load (writes/s per host)".to_string(),
        Some(name) => name.to_string(),
        None => "point".to_string(),
    };
    // A logarithmic x axis where the values span a decade or more.
    let values: Vec<f64> = sweep
        .axes
        .iter()
        .filter(|(k, _)| Some(k.as_str()) == x_name)
        .flat_map(|(_, v)| v.iter().filter_map(|v| v.parse().ok()))
        .collect();
    let (lo, hi) = values
        .iter()
        .fold((f64::MAX, 0f64), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    let x_axis_kind = if lo > 0.0 && hi / lo >= 10.0 {
        XAxis::Log
    } else {
        XAxis::Linear
    };
    let report =
        |m: &Measured, pointers: &[&str]| m.report.as_ref().and_then(|r| number(r, pointers));
    let mut out = Vec::new();
    let throughput = lines(sweep, measured, |m| report(m, THROUGHPUT));
    out.push(Plot {
        stem: "throughput",
        caption: format!("Tracked TLPs delivered per second against {x_label}, the mean of each point's repetitions."),
        svg: plot::lines_svg(
            &Chart {
                title: "Throughput",
                x_label: &x_label,
                x_axis: x_axis_kind,
                y_label: "TLPs/s delivered",
                log_y: false,
                references: &[],
            },
            &throughput,
        )?,
    });
    if sweep.command != Command::Run {
        return Ok(out);
    }
    let mut blackout = Vec::new();
    for (name, key) in [("p50", "p50"), ("p99", "p99"), ("p99.9", "p999")] {
        let pointer = format!("/blackout/per_migration_us/{key}");
        for mut s in lines(sweep, measured, |m| {
            report(m, &[pointer.as_str()]).filter(|&v| v > 0.0)
        }) {
            s.name = format!("{name} {}", s.name);
            blackout.push(s);
        }
    }
    out.push(Plot {
        stem: "blackout",
        caption: format!(
            "Blackout per migration (the time a binding's traffic was held) at p50, p99 and p99.9 against {x_label}."
        ),
        svg: plot::lines_svg(
            &Chart {
                title: "Migration blackout",
                x_label: &x_label,
                x_axis: x_axis_kind,
                y_label: "blackout (µs)",
                log_y: true,
                references: &plot::LATENCY_REFERENCES,
            },
            &blackout,
        )?,
    });
    for (stem, tag, title, what) in [
        (
            "percentiles",
            "per_migration",
            "Blackout per migration, by percentile",
            "blackout per migration",
        ),
        (
            "round-trips",
            "round_trip",
            "Request round trips, by percentile",
            "the round trip of each host read",
        ),
    ] {
        let series = distributions(measured, tag);
        out.push(Plot {
            stem,
            caption: format!(
                "The percentile distribution of {what} for up to {MAX_OVERLAID} points (their first repetition), on a logarithmic latency axis."
            ),
            svg: plot::lines_svg(
                &Chart {
                    title,
                    x_label: "percentile",
                    x_axis: XAxis::Percentile,
                    y_label: "latency (µs)",
                    log_y: true,
                    references: &plot::LATENCY_REFERENCES,
                },
                &series,
            )?,
        });
    }
    Ok(out)
}

/// Distributions overlaid in one plot, at most: more is unreadable.
const MAX_OVERLAID: usize = 8;

/// The `tag` histogram of each point's first repetition, for points spread
/// evenly over the sweep.
fn distributions(measured: &[Measured], tag: &str) -> Vec<Series> {
    let firsts: Vec<&Measured> = measured
        .iter()
        .filter(|m| m.repetition == 1 && m.hdr_log.is_some())
        .collect();
    let step = firsts.len().div_ceil(MAX_OVERLAID).max(1);
    firsts
        .iter()
        .step_by(step)
        .filter_map(|m| {
            let log = std::fs::read(m.hdr_log.as_ref()?).ok()?;
            let histograms = telemetry::read_interval_log(&log).ok()?;
            let (_, h) = histograms.into_iter().find(|(t, _)| t == tag)?;
            Some(Series {
                name: format!(
                    "{} {} ({} samples)",
                    m.point.name(),
                    m.point.label(),
                    h.len()
                ),
                points: telemetry::percentile_points(&h),
            })
        })
        .collect()
}

/// Writes everything into `dir`.
pub(crate) fn write_all(
    dir: &Path,
    sweep: &Sweep,
    machine: &Value,
    measured: &[Measured],
    interrupted: bool,
) -> Result<(), String> {
    let write = |name: &str, bytes: &[u8]| {
        let path = dir.join(name);
        std::fs::write(&path, bytes).map_err(|e| format!("{}: cannot write: {e}", path.display()))
    };
    write("summary.csv", csv(sweep, measured).as_bytes())?;
    let about = json!({
        "machine": machine,
        "sweep": {
            "file": sweep.file.display().to_string(),
            "command": sweep.command.name(),
            "points": sweep.points().len(),
            "repetitions": sweep.repetitions,
            "runs": measured.len(),
            "interrupted": interrupted,
        },
    });
    write("machine.json", format!("{about:#}\n").as_bytes())?;
    let plots = plots(sweep, measured).map_err(|e| e.to_string())?;
    for p in &plots {
        write(&format!("{}.svg", p.stem), p.svg.as_bytes())?;
        let png = plot::png_of_svg(&p.svg).map_err(|e| e.to_string())?;
        write(&format!("{}.png", p.stem), &png)?;
    }
    write(
        "index.html",
        html(sweep, machine, measured, &plots, interrupted).as_bytes(),
    )
}

/// Text for HTML (and XML): the five characters that could be markup.
fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// One page with everything, well-formed XML as well as HTML.
fn html(
    sweep: &Sweep,
    machine: &Value,
    measured: &[Measured],
    plots: &[Plot],
    interrupted: bool,
) -> String {
    let mut h = String::new();
    let title = format!("tlpfabric bench: {}", sweep.file.display());
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html xmlns=\"http://www.w3.org/1999/xhtml\" lang=\"en\">\n<head>\n\
         <meta charset=\"utf-8\"/>\n<title>{}</title>\n<style>\n\
         body {{ font-family: sans-serif; margin: 2em; max-width: 70em; }}\n\
         table {{ border-collapse: collapse; font-size: 0.9em; }}\n\
         td, th {{ border: 1px solid #bbb; padding: 0.2em 0.5em; text-align: right; }}\n\
         td.l, th.l {{ text-align: left; }}\n\
         tr.bad {{ background: #fdd; }}\n\
         pre {{ background: #f4f4f4; padding: 0.8em; }}\n\
         </style>\n</head>\n<body>\n<h1>{}</h1>\n",
        escape(&title),
        escape(&title)
    );
    if !sweep.description.is_empty() {
        let _ = writeln!(h, "<p>{}</p>", escape(&sweep.description));
    }
    if interrupted {
        let _ = writeln!(
            h,
            "<p><strong>Interrupted: only the runs below were measured.</strong></p>"
        );
    }
    let _ = writeln!(h, "<h2>Machine</h2>\n<table>");
    if let Some(fields) = machine.as_object() {
        for (k, v) in fields {
            let v = v.as_str().map_or(v.to_string(), str::to_string);
            let _ = writeln!(
                h,
                "<tr><th class=\"l\">{}</th><td class=\"l\">{}</td></tr>",
                escape(k),
                escape(&v)
            );
        }
    }
    let _ = writeln!(h, "</table>");
    let _ = writeln!(
        h,
        "<p>The core-to-core round trip (a cache line between the two cores the run uses) was measured just before and just after each run: a run whose two figures differ much was disturbed.</p>"
    );
    let _ = writeln!(h, "<h2>Results</h2>\n<table>\n<tr>");
    let columns: &[(&str, &str)] = match sweep.command {
        Command::Run => &[
            ("TLPs/s", "/throughput/tlps_per_s"),
            ("lost", "/integrity/lost"),
            ("timeouts", "/integrity/completion_timeouts"),
            ("migrations", "/migrations/vm"),
            ("blackout p50 µs", "/blackout/per_migration_us/p50"),
            ("p99", "/blackout/per_migration_us/p99"),
            ("p99.9", "/blackout/per_migration_us/p999"),
            ("round trip p99 µs", "/round_trip_us/p99"),
        ],
        Command::Forward => &[
            ("TLPs/s", "/tlps_per_s"),
            ("frames/s", "/frames_per_s"),
            ("ns/TLP", "/ns_per_tlp"),
            ("refused", "/tlps_refused"),
        ],
    };
    for head in ["point", "run", "what"] {
        let _ = write!(h, "<th class=\"l\">{head}</th>");
    }
    for (head, _) in columns {
        let _ = write!(h, "<th>{}</th>", escape(head));
    }
    let _ = writeln!(
        h,
        "<th>core RT before ns</th><th>after</th><th>exit</th></tr>"
    );
    for m in measured {
        let bad = m.exit != Some(0);
        let _ = write!(
            h,
            "<tr{}><td class=\"l\">{}</td><td class=\"l\">{}</td><td class=\"l\">{}</td>",
            if bad { " class=\"bad\"" } else { "" },
            m.point.name(),
            m.repetition,
            escape(&m.point.label())
        );
        for (_, pointer) in columns {
            let cell = m
                .report
                .as_ref()
                .and_then(|r| r.pointer(pointer))
                .and_then(Value::as_f64)
                .map_or(String::new(), |v| {
                    if v.fract() == 0.0 {
                        format!("{v:.0}")
                    } else {
                        format!("{v:.1}")
                    }
                });
            let _ = write!(h, "<td>{cell}</td>");
        }
        let rt =
            |d: Option<std::time::Duration>| d.map_or(String::new(), |d| d.as_nanos().to_string());
        let _ = writeln!(
            h,
            "<td>{}</td><td>{}</td><td>{}</td></tr>",
            rt(m.round_trip_before),
            rt(m.round_trip_after),
            m.exit.map_or("killed".to_string(), |c| c.to_string())
        );
    }
    let _ = writeln!(
        h,
        "</table>\n<p>Every column of every run is in <a href=\"summary.csv\">summary.csv</a>; each run's report, HdrHistogram log and output are in <a href=\"points/\">points/</a>.</p>"
    );
    let _ = writeln!(h, "<h2>Plots</h2>");
    for p in plots {
        let _ = writeln!(
            h,
            "<figure>\n{}\n<figcaption>{} (<a href=\"{}.svg\">SVG</a>, <a href=\"{}.png\">PNG</a>)</figcaption>\n</figure>",
            p.svg.trim(),
            escape(&p.caption),
            p.stem,
            p.stem
        );
    }
    let _ = writeln!(h, "<h2>Sweep</h2>\n<pre>{}</pre>", escape(&sweep.text));
    let _ = writeln!(h, "</body>\n</html>");
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::sweep::Point;
    use std::time::Duration;

    fn sweep() -> Sweep {
        Sweep::parse(
            "description = \"a <test> & more\"\n[axes]\nrate = [100, 200]\nid-mode = [\"different\", \"common\"]\n",
        )
        .unwrap()
    }

    fn measured(point: &Point, repetition: u32, tlps: f64, p99: f64) -> Measured {
        Measured {
            point: point.clone(),
            repetition,
            exit: Some(if p99 > 0.0 { 0 } else { 1 }),
            report: Some({
                let mut r = RunReport::default();
                r.throughput.tlps_per_s = tlps;
                r.integrity.sent = 7;
                r.blackout.per_migration_us.p50 = p99 / 2.0;
                r.blackout.per_migration_us.p99 = p99;
                r.blackout.per_migration_us.p999 = p99 * 2.0;
                r.cores.busy_fraction = vec![0.5];
                serde_json::to_value(r).unwrap()
            }),
            hdr_log: None,
            round_trip_before: Some(Duration::from_nanos(120)),
            round_trip_after: None,
            wall: Duration::from_millis(1500),
        }
    }

    #[test]
    fn the_csv_has_a_row_per_run_and_a_column_per_axis() {
        let s = sweep();
        let points = s.points();
        let runs: Vec<Measured> = points
            .iter()
            .flat_map(|p| [measured(p, 1, 1000.0, 10.0), measured(p, 2, 3000.0, 0.0)])
            .collect();
        let text = csv(&s, &runs);
        let rows: Vec<&str> = text.lines().collect();
        assert_eq!(rows.len(), 1 + 8);
        let header: Vec<&str> = rows[0].split(',').collect();
        assert_eq!(
            &header[..9],
            [
                "point",
                "repetition",
                "label",
                "exit_status",
                "wall_s",
                "core_round_trip_before_ns",
                "core_round_trip_after_ns",
                "rate",
                "id-mode",
            ]
        );
        let column = |name: &str| header.iter().position(|h| *h == name).unwrap();
        let first: Vec<&str> = rows[1].split(',').collect();
        assert_eq!(first.len(), header.len(), "{}", rows[1]);
        assert_eq!(first[column("tlps_per_s")], "1000.0");
        assert_eq!(first[column("blackout_p99_us")], "10.0");
        assert_eq!(first[column("core_round_trip_before_ns")], "120");
        assert_eq!(first[column("core_round_trip_after_ns")], "");
        assert_eq!(first[column("id-mode")], "different");
        assert_eq!(first[column("sent")], "7");
        assert_eq!(first[column("busy_core0")], "0.5");
        assert_eq!(first[column("busy_core1")], "", "one core: nothing to say");
        assert_eq!(csv_field("a,\"b\""), "\"a,\"\"b\"\"\"");
    }

    #[test]
    fn lines_average_repetitions_and_group_by_the_other_axes() {
        let s = sweep();
        let runs: Vec<Measured> = s
            .points()
            .iter()
            .flat_map(|p| [measured(p, 1, 1000.0, 10.0), measured(p, 2, 3000.0, 10.0)])
            .collect();
        let series = lines(&s, &runs, |m| number(m.report.as_ref()?, THROUGHPUT));
        let names: Vec<&str> = series.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["id-mode=different", "id-mode=common"]);
        assert_eq!(series[0].points, [(100.0, 2000.0), (200.0, 2000.0)]);
    }

    #[test]
    fn the_page_is_well_formed_and_shows_every_run_and_plot() {
        let s = sweep();
        let runs: Vec<Measured> = s
            .points()
            .iter()
            .map(|p| measured(p, 1, 1000.0, 10.0))
            .collect();
        let plots = plots(&s, &runs).unwrap();
        let stems: Vec<&str> = plots.iter().map(|p| p.stem).collect();
        assert_eq!(
            stems,
            ["throughput", "blackout", "percentiles", "round-trips"]
        );
        let page = html(&s, &json!({"cpu_model": "x<y"}), &runs, &plots, true);
        let doc = roxmltree::Document::parse_with_options(
            &page,
            roxmltree::ParsingOptions {
                allow_dtd: true,
                ..Default::default()
            },
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let count = |tag: &str| {
            doc.descendants()
                .filter(|n| n.tag_name().name() == tag)
                .count()
        };
        assert_eq!(count("svg"), 4);
        assert_eq!(count("tr"), 2 + runs.len(), "machine row, header, runs");
        assert!(page.contains("a &lt;test&gt; &amp; more"));
        assert!(page.contains("x&lt;y"));
        assert!(page.contains("Interrupted"));
        assert!(
            !page.contains("http://") || !page.contains("src=\"http"),
            "no network"
        );
    }
}
