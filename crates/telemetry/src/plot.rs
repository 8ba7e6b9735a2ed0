//! Line charts as SVG documents, and their PNG renderings.
//!
//! Latency spans decades (a held TLP waits microseconds, a stalled
//! migration milliseconds), so latency axes are logarithmic, with
//! reference lines for the budgets readers compare against.

use crate::Error;
use plotters::coord::combinators::IntoLogRange;
use plotters::prelude::*;

/// The PCIe minimum Completion Timeout: range A of the Completion Timeout
/// Ranges starts at 50 µs (PCIe Base Specification, Device Capabilities 2
/// and Device Control 2, §7.5.3.15–16 in 4.0/5.0). A blackout past it can
/// time out a read the host has in flight.
pub const PCIE_MIN_COMPLETION_TIMEOUT_US: f64 = 50.0;

/// QEMU's default live-migration downtime limit (`downtime-limit`, 300 ms).
pub const QEMU_DOWNTIME_LIMIT_US: f64 = 300_000.0;

/// The reference lines every latency chart carries.
pub const LATENCY_REFERENCES: [(&str, f64); 2] = [
    (
        "PCIe minimum completion timeout (50 µs)",
        PCIE_MIN_COMPLETION_TIMEOUT_US,
    ),
    (
        "QEMU default downtime limit (300 ms)",
        QEMU_DOWNTIME_LIMIT_US,
    ),
];

const COLOURS: [RGBColor; 8] = [
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0xd6, 0x27, 0x28),
    RGBColor(0x2c, 0xa0, 0x2c),
    RGBColor(0x94, 0x67, 0xbd),
    RGBColor(0xff, 0x7f, 0x0e),
    RGBColor(0x8c, 0x56, 0x4b),
    RGBColor(0xe3, 0x77, 0xc2),
    RGBColor(0x17, 0xbe, 0xcf),
];

/// A named line: its points in chart units.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// The legend entry.
    pub name: String,
    /// `(x, y)` in order of x; points that cannot be drawn (not finite, or
    /// not positive on a logarithmic axis) are left out.
    pub points: Vec<(f64, f64)>,
}

/// How the x axis is labelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XAxis {
    /// Plain numbers.
    Linear,
    /// Plain numbers on a logarithmic axis.
    Log,
    /// Percentiles on the customary log10(1 / (1 − p)) axis, 0 to 99.999 %.
    Percentile,
}

/// What a chart shows.
#[derive(Debug, Clone)]
pub struct Chart<'a> {
    /// The caption.
    pub title: &'a str,
    /// The x axis's description and kind.
    pub x_label: &'a str,
    /// How the x axis is laid out.
    pub x_axis: XAxis,
    /// The y axis's description.
    pub y_label: &'a str,
    /// A logarithmic y axis.
    pub log_y: bool,
    /// Horizontal dashed lines: a label and a y value.
    pub references: &'a [(&'a str, f64)],
}

/// The chart as an SVG document. Series with no drawable point keep their
/// legend entry and draw no line.
pub fn lines_svg(chart: &Chart<'_>, series: &[Series]) -> Result<String, Error> {
    let log_y = chart.log_y;
    let drawable = |&(x, y): &(f64, f64)| {
        x.is_finite()
            && y.is_finite()
            && (!log_y || y > 0.0)
            && (chart.x_axis != XAxis::Log || x > 0.0)
    };
    let all: Vec<(f64, f64)> = series
        .iter()
        .flat_map(|s| s.points.iter().copied())
        .filter(drawable)
        .collect();
    let ys = all
        .iter()
        .map(|p| p.1)
        .chain(chart.references.iter().map(|r| r.1));
    let (mut y_lo, mut y_hi) = ys.fold((f64::MAX, f64::MIN), |(lo, hi), y| (lo.min(y), hi.max(y)));
    if y_lo > y_hi {
        (y_lo, y_hi) = (1.0, 10.0);
    }
    let (x_lo, x_hi) = match chart.x_axis {
        XAxis::Percentile => (0.0, 5.0),
        _ => {
            let (lo, hi) = all.iter().fold((f64::MAX, f64::MIN), |(lo, hi), p| {
                (lo.min(p.0), hi.max(p.0))
            });
            if lo > hi {
                (1.0, 10.0)
            } else if lo == hi {
                (lo * 0.5, hi * 1.5 + 1.0)
            } else {
                (lo, hi)
            }
        }
    };
    let failed = |e: DrawingAreaErrorKind<std::io::Error>| Error::Plot(e.to_string());
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(failed)?;
        // The legend beside the plot, never over its lines.
        let (area, legend_area) = root.split_horizontally(WIDTH - LEGEND_WIDTH);
        let mut builder = ChartBuilder::on(&area);
        builder
            .caption(chart.title, ("sans-serif", 22))
            .margin(14)
            .margin_right(34)
            .x_label_area_size(44)
            .y_label_area_size(72);
        // One body for the four axis combinations: plotters types each.
        macro_rules! draw {
            ($ctx:expr, $x_fmt:expr, $y_fmt:expr) => {{
                let mut ctx = $ctx.map_err(failed)?;
                ctx.configure_mesh()
                    .x_labels(8)
                    .y_labels(10)
                    .label_style(("sans-serif", 14))
                    .x_label_formatter($x_fmt)
                    .y_label_formatter($y_fmt)
                    .x_desc(chart.x_label)
                    .y_desc(chart.y_label)
                    .draw()
                    .map_err(failed)?;
                for (k, s) in series.iter().enumerate() {
                    let colour = COLOURS[k % COLOURS.len()];
                    let points: Vec<(f64, f64)> =
                        s.points.iter().copied().filter(drawable).collect();
                    ctx.draw_series(LineSeries::new(points.clone(), colour.stroke_width(2)))
                        .map_err(failed)?;
                    if points.len() == 1 {
                        // A lone point draws no line: a mark shows it.
                        ctx.draw_series(points.iter().map(|&p| Circle::new(p, 4, colour.filled())))
                            .map_err(failed)?;
                    }
                }
                for (k, (_, y)) in chart.references.iter().enumerate() {
                    ctx.draw_series(DashedLineSeries::new(
                        [(x_lo, *y), (x_hi, *y)],
                        8,
                        5,
                        REFERENCE_COLOURS[k % REFERENCE_COLOURS.len()].stroke_width(1),
                    ))
                    .map_err(failed)?;
                }
            }};
        }
        let number = |v: &f64| short_number(*v);
        let percentile = |x: &f64| percentile_label(*x);
        let x_fmt: &dyn Fn(&f64) -> String = match chart.x_axis {
            XAxis::Percentile => &percentile,
            _ => &number,
        };
        let (y_lo, y_hi) = if log_y {
            (y_lo / 1.5, y_hi * 1.5)
        } else {
            (y_lo.min(0.0), y_hi * 1.1 + f64::EPSILON)
        };
        match (chart.x_axis == XAxis::Log, log_y) {
            (false, false) => draw!(
                builder.build_cartesian_2d(x_lo..x_hi, y_lo..y_hi),
                x_fmt,
                &number
            ),
            (false, true) => draw!(
                builder.build_cartesian_2d(x_lo..x_hi, (y_lo..y_hi).log_scale()),
                x_fmt,
                &number
            ),
            (true, false) => draw!(
                builder.build_cartesian_2d((x_lo..x_hi).log_scale(), y_lo..y_hi),
                x_fmt,
                &number
            ),
            (true, true) => draw!(
                builder.build_cartesian_2d((x_lo..x_hi).log_scale(), (y_lo..y_hi).log_scale()),
                x_fmt,
                &number
            ),
        }
        // The legend: each series, then each reference line.
        let entries = series
            .iter()
            .enumerate()
            .map(|(k, s)| (s.name.as_str(), COLOURS[k % COLOURS.len()], 2))
            .chain(chart.references.iter().enumerate().map(|(k, (label, _))| {
                (*label, REFERENCE_COLOURS[k % REFERENCE_COLOURS.len()], 1)
            }));
        let rows = ((HEIGHT - 60) / 20) as usize;
        let total = series.len() + chart.references.len();
        for (i, (name, colour, width)) in entries.enumerate() {
            let y = 50 + 20 * i as i32;
            if i + 1 == rows && total > rows {
                legend_area
                    .draw(&Text::new(
                        format!("… and {} more", total - i),
                        (8, y - 7),
                        ("sans-serif", 13),
                    ))
                    .map_err(failed)?;
                break;
            }
            legend_area
                .draw(&PathElement::new(
                    [(4, y), (28, y)],
                    colour.stroke_width(width),
                ))
                .map_err(failed)?;
            legend_area
                .draw(&Text::new(
                    shorten(name, 44),
                    (34, y - 7),
                    ("sans-serif", 13),
                ))
                .map_err(failed)?;
        }
        root.present().map_err(failed)?;
    }
    Ok(svg)
}

/// The chart's size in pixels, and the legend's share of its width.
const WIDTH: u32 = 1100;
const HEIGHT: u32 = 480;
const LEGEND_WIDTH: u32 = 330;

/// The colours of reference lines: apart from the series' own.
const REFERENCE_COLOURS: [RGBColor; 2] = [RGBColor(0x80, 0x00, 0x00), RGBColor(0x00, 0x00, 0x80)];

/// `name`, cut to `chars` characters with an ellipsis.
fn shorten(name: &str, chars: usize) -> String {
    if name.chars().count() <= chars {
        name.to_string()
    } else {
        name.chars().take(chars - 1).chain(['…']).collect()
    }
}

/// The percentile of x on the log10(1 / (1 − p)) axis.
pub fn quantile_at(x: f64) -> f64 {
    1.0 - 10f64.powf(-x)
}

fn percentile_label(x: f64) -> String {
    match x.round() as u32 {
        0 => "0%".to_string(),
        1 => "90%".to_string(),
        2 => "99%".to_string(),
        n => format!("99.{}%", "9".repeat(n as usize - 2)),
    }
}

/// 1200 → `1.2k`, 3e6 → `3M`, 0.25 → `0.25`: axis labels that fit.
fn short_number(v: f64) -> String {
    let a = v.abs();
    let (scaled, unit) = if a >= 1e9 {
        (v / 1e9, "G")
    } else if a >= 1e6 {
        (v / 1e6, "M")
    } else if a >= 1e3 {
        (v / 1e3, "k")
    } else {
        (v, "")
    };
    let text = if scaled.fract().abs() < 1e-9 {
        format!("{scaled:.0}")
    } else if scaled.abs() >= 10.0 {
        format!("{scaled:.1}")
    } else {
        format!("{scaled:.2}")
    };
    let text = if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    };
    text + unit
}

/// The SVG rendered to a PNG image, text in the system's sans-serif font
/// (text is left out where the system has no font).
pub fn png_of_svg(svg: &str) -> Result<Vec<u8>, Error> {
    use resvg::{tiny_skia, usvg};
    let mut options = usvg::Options::default();
    let fonts = options.fontdb_mut();
    fonts.load_system_fonts();
    // The generic family names a font the system has: fontdb's own default
    // (Arial) is rarely installed on Linux.
    let families: Vec<String> = fonts
        .faces()
        .flat_map(|f| f.families.iter().map(|(name, _)| name.clone()))
        .collect();
    let preferred = ["DejaVu Sans", "Liberation Sans", "Noto Sans", "FreeSans"];
    if let Some(family) = preferred
        .iter()
        .find(|p| families.iter().any(|f| f == *p))
        .map(|p| p.to_string())
        .or_else(|| families.first().cloned())
    {
        fonts.set_sans_serif_family(family);
    }
    let tree = usvg::Tree::from_str(svg, &options).map_err(|e| Error::Png(e.to_string()))?;
    let size = tree.size().to_int_size();
    let mut pixmap = tiny_skia::Pixmap::new(size.width(), size.height())
        .ok_or_else(|| Error::Png(format!("cannot make a {size:?} image")))?;
    pixmap.fill(tiny_skia::Color::WHITE);
    resvg::render(&tree, tiny_skia::Transform::default(), &mut pixmap.as_mut());
    pixmap.encode_png().map_err(|e| Error::Png(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chart<'a>(log_y: bool, references: &'a [(&'a str, f64)]) -> Chart<'a> {
        Chart {
            title: "load <test>",
            x_label: "offered (writes/s)",
            x_axis: XAxis::Linear,
            y_label: "TLPs/s",
            log_y,
            references,
        }
    }

    #[test]
    fn every_series_has_a_legend_entry_and_only_drawable_points_a_line() {
        let series = [
            Series {
                name: "a".into(),
                points: vec![(1.0, 10.0), (2.0, 20.0), (3.0, 40.0)],
            },
            Series {
                name: "b".into(),
                // Nothing to draw on a log axis.
                points: vec![(1.0, 0.0), (2.0, f64::NAN)],
            },
        ];
        let svg = lines_svg(&chart(true, &LATENCY_REFERENCES), &series).unwrap();
        let doc = roxmltree::Document::parse(&svg).expect("well-formed SVG");
        assert_eq!(doc.root_element().tag_name().name(), "svg");
        let drawn = |colour: &str| svg.matches(&format!("stroke=\"{colour}\"")).count();
        assert_eq!(drawn("#1F77B4"), 2, "a line and its legend: {svg}");
        assert_eq!(drawn("#D62728"), 1, "a legend entry only: {svg}");
        assert!(svg.contains("load &lt;test&gt;"));
        assert!(svg.contains("PCIe minimum completion timeout (50 µs)"));
        assert!(svg.contains("QEMU default downtime limit (300 ms)"));
    }

    #[test]
    fn a_log_axis_labels_decades_a_linear_one_its_range() {
        let series = [Series {
            name: "p99".into(),
            points: vec![(1.0, 2.0), (2.0, 2_000_000.0)],
        }];
        let log = lines_svg(&chart(true, &[]), &series).unwrap();
        // Decades up to 1M appear as labels on a log axis.
        let label = |svg: &str, text: &str| svg.contains(&format!("\n{text}\n</text>"));
        for decade in ["10", "100", "1k", "10k", "100k", "1M"] {
            assert!(label(&log, decade), "{decade}: {log}");
        }
        let linear = lines_svg(&chart(false, &[]), &series).unwrap();
        assert!(!label(&linear, "100") && !label(&linear, "10k"), "{linear}");
    }

    #[test]
    fn the_png_decodes_to_the_svg_size() {
        let series = [Series {
            name: "a".into(),
            points: vec![(1.0, 1.0), (2.0, 3.0)],
        }];
        let svg = lines_svg(&chart(false, &[]), &series).unwrap();
        let png = png_of_svg(&svg).unwrap();
        let decoder = png::Decoder::new(&png[..]);
        let reader = decoder.read_info().expect("a PNG");
        assert_eq!((reader.info().width, reader.info().height), (WIDTH, HEIGHT));
        assert!(matches!(png_of_svg("<svg"), Err(Error::Png(_))));
    }

    #[test]
    fn numbers_are_short() {
        assert_eq!(short_number(1200.0), "1.2k");
        assert_eq!(short_number(3e6), "3M");
        assert_eq!(short_number(0.25), "0.25");
        assert_eq!(short_number(50.0), "50");
        assert_eq!(short_number(12_500.0), "12.5k");
    }
}
