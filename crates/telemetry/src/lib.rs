//! Reports of latency histograms: a percentile [`Summary`], the
//! HdrHistogram interval-log format that HdrHistogram's own tools read
//! ([`interval_log`]), and an SVG percentile-distribution plot
//! ([`percentile_svg`]), line charts as SVG and PNG ([`plot`]). Histograms
//! record nanoseconds; reports speak microseconds.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use hdrhistogram::serialization::interval_log::{IntervalLogWriterBuilder, Tag};
use hdrhistogram::serialization::V2DeflateSerializer;
use hdrhistogram::Histogram;
use std::time::Duration;

pub mod plot;
// The fields are the JSON schema's keys; where a name does not say what
// it counts, the field says it.
#[allow(missing_docs)]
pub mod report;

/// Why a report, log or plot could not be made or read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// Writing an interval log failed.
    #[error("interval log: {0}")]
    WriteLog(String),
    /// An interval log did not read: not the format, or a damaged entry.
    #[error("interval log: {0}")]
    ReadLog(String),
    /// A plot could not be drawn.
    #[error("plot: {0}")]
    Plot(String),
    /// An SVG could not be rendered to PNG.
    #[error("png: {0}")]
    Png(String),
}

/// The percentiles of a histogram of nanoseconds, in microseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
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
) -> Result<Vec<u8>, Error> {
    let mut out = Vec::new();
    let mut serializer = V2DeflateSerializer::new();
    let mut builder = IntervalLogWriterBuilder::new();
    builder
        .add_comment("tlpfabric blackout histograms; values in nanoseconds")
        .with_max_value_divisor(1000.0);
    let mut writer = builder
        .begin_log_with(&mut out, &mut serializer)
        .map_err(|e| Error::WriteLog(e.to_string()))?;
    for (name, h) in histograms {
        let tag =
            Tag::new(name).ok_or_else(|| Error::WriteLog(format!("{name:?} cannot be a tag")))?;
        writer
            .write_histogram(h, start, length, Some(tag))
            .map_err(|e| Error::WriteLog(format!("{e:?}")))?;
    }
    drop(writer);
    Ok(out)
}

/// The histograms of an interval log (as [`interval_log`] writes it), with
/// their tags, in order.
pub fn read_interval_log(log: &[u8]) -> Result<Vec<(String, Histogram<u64>)>, Error> {
    use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
    use hdrhistogram::serialization::Deserializer;
    let mut out = Vec::new();
    let mut de = Deserializer::new();
    for entry in IntervalLogIterator::new(log) {
        match entry {
            Ok(LogEntry::Interval(h)) => {
                let bytes = base64_decode(h.encoded_histogram())
                    .ok_or_else(|| Error::ReadLog("a histogram is not base64".into()))?;
                let histogram: Histogram<u64> = de
                    .deserialize(&mut &bytes[..])
                    .map_err(|e| Error::ReadLog(format!("a histogram does not decode: {e:?}")))?;
                let tag = h.tag().map_or(String::new(), |t| t.as_str().to_string());
                out.push((tag, histogram));
            }
            Ok(_) => {}
            Err(e) => return Err(Error::ReadLog(format!("{e:?}"))),
        }
    }
    Ok(out)
}

/// Standard base64 (with or without padding), as interval logs write it.
fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let bytes: Vec<u8> = s
        .trim_end_matches('=')
        .bytes()
        .map(value)
        .collect::<Option<_>>()?;
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let mut n = 0u32;
        for (i, &v) in chunk.iter().enumerate() {
            n |= (v as u32) << (18 - 6 * i);
        }
        for i in 0..chunk.len().saturating_sub(1) {
            out.push((n >> (16 - 8 * i)) as u8);
        }
    }
    Some(out)
}

/// The percentile distribution of each histogram (nanoseconds), plotted in
/// microseconds on a logarithmic axis against percentile on the customary
/// 1/(1−p) axis, with the reference lines of [`plot::LATENCY_REFERENCES`],
/// as an SVG document. An empty histogram keeps its legend entry but draws
/// no line.
pub fn percentile_svg(title: &str, series: &[(&str, &Histogram<u64>)]) -> Result<String, Error> {
    let lines: Vec<plot::Series> = series
        .iter()
        .map(|(name, h)| plot::Series {
            name: format!("{name} ({} samples)", h.len()),
            points: percentile_points(h),
        })
        .collect();
    plot::lines_svg(
        &plot::Chart {
            title,
            x_label: "percentile",
            x_axis: plot::XAxis::Percentile,
            y_label: "latency (µs)",
            log_y: true,
            references: &plot::LATENCY_REFERENCES,
        },
        &lines,
    )
}

/// A histogram of nanoseconds as (percentile-axis x, microseconds) points
/// from 0 to 99.999 %: none when it is empty.
pub fn percentile_points(h: &Histogram<u64>) -> Vec<(f64, f64)> {
    if h.is_empty() {
        return Vec::new();
    }
    (0..=100)
        .map(|i| i as f64 * 0.05)
        .map(|x| (x, h.value_at_quantile(plot::quantile_at(x)) as f64 / 1000.0))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let read: Vec<(String, u64, u64)> = read_interval_log(&log)
            .unwrap()
            .into_iter()
            .map(|(tag, h)| (tag, h.len(), h.max()))
            .collect();
        assert_eq!(read.len(), 2, "{text}");
        assert_eq!(read[0].0, "per_migration");
        assert_eq!(read[0].1, 3);
        assert_eq!(read[1].0, "per_tlp");
        assert!(b.equivalent(read[1].2, 40_000));
        let broken = text.replace("Tag=per_tlp,", "Tag=per_tlp,!");
        assert!(matches!(
            read_interval_log(broken.as_bytes()),
            Err(Error::ReadLog(_))
        ));
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
        // Latency on a log axis: a p50 of 5 µs is not flattened onto zero
        // by a 10 ms tail, and the 50 µs reference line is there.
        assert!(svg.contains("PCIe minimum completion timeout"), "{svg}");
    }
}
