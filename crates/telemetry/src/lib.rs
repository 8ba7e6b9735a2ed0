//! Reports of latency histograms: a percentile [`Summary`], the
//! HdrHistogram interval-log format that HdrHistogram's own tools read
//! ([`interval_log`]), and an SVG percentile-distribution plot
//! ([`percentile_svg`]). Histograms record nanoseconds; reports speak
//! microseconds.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use hdrhistogram::serialization::interval_log::{IntervalLogWriterBuilder, Tag};
use hdrhistogram::serialization::V2DeflateSerializer;
use hdrhistogram::Histogram;
use std::time::Duration;

/// The percentiles of a histogram of nanoseconds, in microseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Summary {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Largest.
    pub max: f64,
    /// Mean.
    pub mean: f64,
    /// Values recorded.
    pub count: u64,
}

impl Summary {
    /// The summary of `h` (nanoseconds), in microseconds; all zero when
    /// empty.
    pub fn of(h: &Histogram<u64>) -> Summary {
        if h.is_empty() {
            return Summary::default();
        }
        let us = |ns: u64| ns as f64 / 1000.0;
        Summary {
            p50: us(h.value_at_quantile(0.50)),
            p90: us(h.value_at_quantile(0.90)),
            p99: us(h.value_at_quantile(0.99)),
            p999: us(h.value_at_quantile(0.999)),
            max: us(h.max()),
            mean: h.mean() / 1000.0,
            count: h.len(),
        }
    }

    /// One line: `p50 1.2 µs, p90 …, max …, count N`.
    pub fn line(&self) -> String {
        format!(
            "p50 {:.1} µs, p90 {:.1}, p99 {:.1}, p99.9 {:.1}, max {:.1} µs ({} samples)",
            self.p50, self.p90, self.p99, self.p999, self.max, self.count
        )
    }
}

/// The histograms as one interval each (from `start`, lasting `length`), in
/// the HdrHistogram interval-log format (V2, deflate-compressed, base64),
/// tagged with their names; values are nanoseconds, and the max column is
/// in microseconds.
pub fn interval_log(
    histograms: &[(&str, &Histogram<u64>)],
    start: Duration,
    length: Duration,
) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let mut serializer = V2DeflateSerializer::new();
    let mut builder = IntervalLogWriterBuilder::new();
    builder
        .add_comment("tlpfabric blackout histograms; values in nanoseconds")
        .with_max_value_divisor(1000.0);
    let mut writer = builder
        .begin_log_with(&mut out, &mut serializer)
        .map_err(|e| e.to_string())?;
    for (name, h) in histograms {
        let tag = Tag::new(name).ok_or_else(|| format!("{name:?} cannot be a tag"))?;
        writer
            .write_histogram(h, start, length, Some(tag))
            .map_err(|e| format!("{e:?}"))?;
    }
    drop(writer);
    Ok(out)
}

/// The percentile distribution of each histogram (nanoseconds), plotted in
/// microseconds against percentile on the customary 1/(1−p) axis, as an SVG
/// document. An empty histogram keeps its legend entry but draws no line.
pub fn percentile_svg(title: &str, series: &[(&str, &Histogram<u64>)]) -> Result<String, String> {
    use plotters::prelude::*;
    const COLOURS: [RGBColor; 4] = [
        RGBColor(0x1f, 0x77, 0xb4),
        RGBColor(0xd6, 0x27, 0x28),
        RGBColor(0x2c, 0xa0, 0x2c),
        RGBColor(0x94, 0x67, 0xbd),
    ];
    // Percentiles from 0 to 99.999: x = log10(1 / (1 - p)), 0..=5.
    let quantile = |x: f64| 1.0 - 10f64.powf(-x);
    let top_us = series
        .iter()
        .filter(|(_, h)| !h.is_empty())
        .map(|(_, h)| h.max() as f64 / 1000.0)
        .fold(1.0, f64::max)
        * 1.1;
    let percentile_label = |x: &f64| match x.round() as u32 {
        0 => "0%".to_string(),
        1 => "90%".to_string(),
        2 => "99%".to_string(),
        n => format!("99.{}%", "9".repeat(n as usize - 2)),
    };
    let failed = |e: DrawingAreaErrorKind<std::io::Error>| format!("plot: {e}");
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (720, 420)).into_drawing_area();
        root.fill(&WHITE).map_err(failed)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 22))
            .margin(14)
            .margin_right(34)
            .x_label_area_size(44)
            .y_label_area_size(64)
            .build_cartesian_2d(0f64..5f64, 0f64..top_us)
            .map_err(failed)?;
        chart
            .configure_mesh()
            .x_labels(6)
            .label_style(("sans-serif", 15))
            .x_label_formatter(&percentile_label)
            .y_label_formatter(&|us| format!("{us:.1}"))
            .x_desc("percentile")
            .y_desc("blackout (µs)")
            .draw()
            .map_err(failed)?;
        for (k, (name, h)) in series.iter().enumerate() {
            let colour = COLOURS[k % COLOURS.len()];
            let points = (0..=100)
                .map(|i| i as f64 * 0.05)
                .filter(|_| !h.is_empty())
                .map(|x| (x, h.value_at_quantile(quantile(x)) as f64 / 1000.0));
            chart
                .draw_series(LineSeries::new(points, colour.stroke_width(2)))
                .map_err(failed)?
                .label(format!("{name} ({} samples)", h.len()))
                .legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + 24, y)], colour.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font(("sans-serif", 15))
            .draw()
            .map_err(failed)?;
        root.present().map_err(failed)?;
    }
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
    use hdrhistogram::serialization::Deserializer;

    fn histogram(values: impl IntoIterator<Item = u64>) -> Histogram<u64> {
        let mut h = Histogram::new_with_bounds(1, 60_000_000_000, 3).unwrap();
        for v in values {
            h.record(v).unwrap();
        }
        h
    }

    #[test]
    fn summaries_are_in_microseconds() {
        let h = histogram((1..=1000).map(|i| i * 1000));
        let s = Summary::of(&h);
        assert_eq!(s.count, 1000);
        assert!((s.p50 - 500.0).abs() < 1.0, "{s:?}");
        assert!((s.p99 - 990.0).abs() < 1.0, "{s:?}");
        assert!((s.max - 1000.0).abs() < 1.0, "{s:?}");
        assert_eq!(Summary::of(&histogram([])), Summary::default());
    }

    #[test]
    fn the_interval_log_reads_back_with_its_tags_and_counts() {
        let a = histogram([1_000, 2_000, 3_000]);
        let b = histogram([40_000]);
        let log = interval_log(
            &[("per_migration", &a), ("per_tlp", &b)],
            Duration::from_secs(0),
            Duration::from_secs(2),
        )
        .unwrap();
        let text = String::from_utf8(log.clone()).unwrap();
        assert!(text.starts_with("#tlpfabric"), "{text}");
        let mut read = Vec::new();
        let mut de = Deserializer::new();
        for entry in IntervalLogIterator::new(&log) {
            if let Ok(LogEntry::Interval(h)) = entry {
                let bytes = base64_decode(h.encoded_histogram());
                let hist: Histogram<u64> = de.deserialize(&mut &bytes[..]).unwrap();
                read.push((
                    h.tag().unwrap().as_str().to_string(),
                    hist.len(),
                    hist.max(),
                ));
            }
        }
        assert_eq!(read.len(), 2, "{text}");
        assert_eq!(read[0].0, "per_migration");
        assert_eq!(read[0].1, 3);
        assert_eq!(read[1].0, "per_tlp");
        assert!(b.equivalent(read[1].2, 40_000));
    }

    /// Standard base64, as the log writes it.
    fn base64_decode(s: &str) -> Vec<u8> {
        let value = |c: u8| match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            _ => 63,
        };
        let bytes: Vec<u8> = s.bytes().filter(|&c| c != b'=').map(value).collect();
        let mut out = Vec::new();
        for chunk in bytes.chunks(4) {
            let mut n = 0u32;
            for (i, &v) in chunk.iter().enumerate() {
                n |= (v as u32) << (18 - 6 * i);
            }
            for i in 0..chunk.len().saturating_sub(1) {
                out.push((n >> (16 - 8 * i)) as u8);
            }
        }
        out
    }

    #[test]
    fn the_plot_has_a_line_per_series_scaled_to_the_largest() {
        let a = histogram((1..=100).map(|i| i * 100));
        let b = histogram([]);
        let svg =
            percentile_svg("blackout <test>", &[("per migration", &a), ("per TLP", &b)]).unwrap();
        assert!(svg.starts_with("<svg"));
        assert!(svg.trim_end().ends_with("</svg>"));
        // Each series has a legend entry; only the non-empty one a line too.
        let drawn = |colour: &str| svg.matches(&format!("stroke=\"{colour}\"")).count();
        assert_eq!(drawn("#1F77B4"), 2, "{svg}");
        assert_eq!(drawn("#D62728"), 1, "empty series draw no line: {svg}");
        assert!(svg.contains("blackout &lt;test&gt;"), "{svg}");
        assert!(svg.contains("per TLP (0 samples)"));
        assert!(svg.contains("per migration (100 samples)"));
        assert!(svg.contains("\n99.99%\n"), "{svg}");
    }
}
