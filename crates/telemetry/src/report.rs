//! The report of a `run`: one type that is its JSON schema (written by
//! `run --json`, read back by `bench`) and that renders its text. What a
//! field means is said once, here; docs/migration.md shows the schema.

use crate::Summary;
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;

/// Everything a run measured.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RunReport {
    /// The topology file.
    pub config: String,
    /// What it ran on: CPU model, CPUs, kernel, clock source, build
    /// profile, git commit.
    pub machine: serde_json::Value,
    /// Seconds traffic was offered (warm-up included).
    pub duration_s: f64,
    /// Seconds of it before the first migration.
    pub warmup_s: f64,
    /// Bytes of each host write and read.
    pub payload: u64,
    /// Writes per second each host offered.
    pub rate: f64,
    /// Whether Ctrl-C ended it before its duration.
    pub interrupted: bool,
    /// Whether it ran on one thread with a virtual clock.
    pub deterministic: bool,
    /// `ring`, `dpdk`, or (a node process on native ports) `af-packet`.
    pub pmd: String,
    pub topology: TopologyFigures,
    pub traffic: TrafficFigures,
    pub integrity: IntegrityFigures,
    pub frames: FrameFigures,
    pub throughput: ThroughputFigures,
    pub cores: CoreFigures,
    pub migrations: MigrationFigures,
    pub vdi: VdiFigures,
    pub configuration: ConfigurationFigures,
    pub registers: RegisterFigures,
    /// TLPs nodes refused, by reason.
    pub refused: Vec<Count>,
    /// The first refusals the nodes logged.
    pub refusal_log: Vec<String>,
    pub blackout: BlackoutFigures,
    /// Host reads from request to completion, µs.
    pub round_trip_us: Summary,
    /// The histograms behind `blackout` and `round_trip_us`, whole: an
    /// HdrHistogram interval log (V2, deflate-compressed, base64; values in
    /// nanoseconds) tagged `per_migration`, `per_tlp` and `round_trip`, so
    /// that `tlpfabric report` adds the nodes' histograms exactly.
    pub histograms: String,
}

/// How many of something.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Count {
    pub what: String,
    pub count: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TopologyFigures {
    pub nodes: u64,
    pub hosts: u64,
    pub bindings: u64,
    /// What building the fabric allocated, in words.
    pub memory: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TrafficFigures {
    pub host_writes: u64,
    pub device_dma_writes: u64,
}

/// What the hosts and devices saw of every tracked TLP.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct IntegrityFigures {
    pub lost: u64,
    pub duplicated: u64,
    pub reordered: u64,
    pub completion_timeouts: u64,
    /// Of those, how many a stall of the nodes' core explains.
    pub completion_timeouts_in_stalls: u64,
    pub data_mismatches: u64,
    /// Completions that came after their read timed out.
    pub unexpected_completions: u64,
    pub sent: u64,
    pub delivered: u64,
    /// TLPs a node dropped for want of a frame buffer.
    pub dropped_no_buffer: u64,
    /// TLPs a node dropped as too large for the frames of their egress.
    pub dropped_too_large: u64,
}

impl IntegrityFigures {
    /// Nothing lost, doubled, reordered, timed out or damaged.
    pub fn clean(&self) -> bool {
        self.lost == 0
            && self.duplicated == 0
            && self.reordered == 0
            && self.completion_timeouts == 0
            && self.data_mismatches == 0
            && self.unexpected_completions == 0
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FrameFigures {
    #[serde(rename = "in")]
    pub received: u64,
    #[serde(rename = "out")]
    pub sent: u64,
    pub cut_through: u64,
    pub repacked: u64,
    pub malformed: u64,
    /// Frames the nodes' reliable links sent again (lost, damaged or not
    /// acknowledged in time): a link cut shows here.
    pub replayed: u64,
    /// Well-formed frames of another link that reached a node's link
    /// (another node or fabric on the segment), ignored.
    pub foreign: u64,
    /// TLPs dropped toward links that went down (a node process whose
    /// peer fell silent): counted, never silently lost.
    pub link_down_dropped: u64,
    /// Frames a link had received already (replayed by its peer, or sent
    /// again by someone else on the segment): discarded.
    pub duplicates: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ThroughputFigures {
    /// Tracked TLPs delivered per second.
    pub tlps_per_s: f64,
    /// TLPs in at nodes, by class.
    pub by_class: ByClass,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ByClass {
    pub posted: u64,
    pub non_posted: u64,
    pub completion: u64,
}

/// Per core (the models' first, the nodes' last).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CoreFigures {
    /// The CPUs the cores were pinned to (none: one thread, virtual time).
    pub used: Vec<usize>,
    /// Share of rounds that did work.
    pub busy_fraction: Vec<f64>,
    /// The cache-line round trip between the two cores, measured before.
    pub round_trip_ns: Option<u64>,
    /// The mean round, µs (real cores only).
    pub round_us: Vec<Option<f64>>,
    /// Rounds longer than each threshold (µs, as the key).
    pub rounds_over_us: Vec<Option<serde_json::Map<String, serde_json::Value>>>,
    pub longest_round_us: Vec<Option<f64>>,
    /// TSC cycles per TLP in node polls that did work.
    pub node_tsc_cycles_per_tlp: Option<f64>,
    pub tsc_ghz: Option<f64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MigrationFigures {
    pub vm: u64,
    pub endpoint: u64,
    pub aborted: u64,
    /// Aborts by phase and reason, most frequent first.
    pub aborted_by: Vec<Count>,
    /// Scheduled migrations with nothing to move.
    pub skipped: u64,
    pub scheduled: u64,
    /// A migration still in progress when the run ended.
    pub unfinished: Option<String>,
    /// TLPs pause points held and released.
    pub held_tlps: u64,
    pub completion_indications: u64,
    /// Times a full pause point made a TLP wait at its ingress.
    pub pause_points_full: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct VdiFigures {
    pub config_reads: u64,
    pub config_writes: u64,
    /// Configuration writes made to the function after the move.
    pub replayed_writes: u64,
    pub register_reads: u64,
    /// Register writes a destination's instantiation completed.
    pub register_writes: u64,
    /// Requests of destination hosts their instantiations refused before
    /// the switch-over (needing the device).
    pub destination_refused: u64,
    pub upstream: u64,
    /// The kinds of operation VDIs completed on their own, for a domain
    /// whose function was out of reach (claim 19): of configuration reads,
    /// configuration writes, register reads, register writes and
    /// interrupts held in pending bits, those that happened.
    pub alone: Vec<String>,
    /// TLPs of other bindings that passed to or from their functions
    /// while a binding at the same device was paused (claim 19).
    pub beside_pauses: BesidePauses,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BesidePauses {
    pub posted: u64,
    pub non_posted: u64,
    pub completions: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ConfigurationFigures {
    pub reads: u64,
    pub writes: u64,
    /// MSI-X interrupts the hosts received.
    pub interrupts: u64,
    /// MSI-X interrupts the devices' functions raised.
    pub interrupts_raised: u64,
    /// Of those, the ones raised while their binding was paused, which its
    /// VDI took into their vectors' pending bits.
    pub interrupts_held: u64,
    /// Of those, the ones that merged with a raise of the same vector
    /// already pending (one message a vector when the binding resumed).
    pub interrupts_merged: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RegisterFigures {
    pub reads: u64,
    pub doorbells: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BlackoutFigures {
    pub per_migration_us: Summary,
    /// Migrations no core round over 10 µs touched.
    pub per_migration_unstalled_us: Summary,
    pub per_tlp_us: Summary,
    /// Each phase's durations over completed migrations, in phase order.
    #[serde(with = "ordered_map")]
    pub phases_us: Vec<(String, Summary)>,
}

/// A list of named values written as a JSON object, its order kept.
mod ordered_map {
    use crate::Summary;
    use serde::de::{MapAccess, Visitor};
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[(String, Summary)], s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(v.iter().map(|(k, v)| (k, v)))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Vec<(String, Summary)>, D::Error> {
        struct Entries;
        impl<'de> Visitor<'de> for Entries {
            type Value = Vec<(String, Summary)>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object of summaries")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(entry) = map.next_entry()? {
                    out.push(entry);
                }
                Ok(out)
            }
        }
        d.deserialize_map(Entries)
    }
}

impl RunReport {
    /// The report as JSON, as `run --json` writes it.
    pub fn json(&self) -> String {
        serde_json::to_string_pretty(self)
            .map_or_else(|e| format!("{{\"error\": \"{e}\"}}"), |s| s + "\n")
    }

    /// The report as `run` prints it.
    pub fn text(&self) -> String {
        let mut out = String::new();
        let t = &self.topology;
        let _ = writeln!(
            out,
            "run: {} nodes, {} hosts, {} bindings, {:.2} s{}, {}",
            t.nodes,
            t.hosts,
            t.bindings,
            self.duration_s,
            if self.deterministic {
                " (deterministic, virtual time)"
            } else {
                ""
            },
            match self.pmd.as_str() {
                "dpdk" => "DPDK ethdevs",
                "af-packet" =>
                    "AF_PACKET ports to other nodes, in-memory ones to hosts and devices",
                _ => "in-memory ring ports",
            }
        );
        let _ = writeln!(out, "  memory: {}", t.memory);
        let _ = writeln!(
            out,
            "  traffic: {} host writes, {} device DMA writes; {:.0} tracked TLPs/s delivered",
            self.traffic.host_writes, self.traffic.device_dma_writes, self.throughput.tlps_per_s
        );
        let c = &self.throughput.by_class;
        let _ = writeln!(
            out,
            "  TLPs in at nodes by class: posted {}, non-posted {}, completion {}",
            c.posted, c.non_posted, c.completion
        );
        let f = &self.frames;
        let _ = writeln!(
            out,
            "  frames at nodes: {} in, {} out; {} passed on whole, {} repacked to fit a smaller MTU, {} malformed, {} of other links ignored, {} replayed by the links",
            f.received, f.sent, f.cut_through, f.repacked, f.malformed, f.foreign, f.replayed
        );
        if f.link_down_dropped > 0 {
            let _ = writeln!(
                out,
                "  links that went down (their peer fell silent): {} TLPs toward them dropped",
                f.link_down_dropped
            );
        }
        let cores = &self.cores;
        let busy: Vec<String> = cores
            .busy_fraction
            .iter()
            .enumerate()
            .map(|(k, b)| match cores.round_us.get(k).copied().flatten() {
                Some(us) => format!("{:.0}% (a round every {us:.2} µs)", b * 100.0),
                None => format!("{:.0}%", b * 100.0),
            })
            .collect();
        let _ = writeln!(out, "  busy polls per core: {}", busy.join(", "));
        if let (Some(c), Some(rate), false) = (
            cores.node_tsc_cycles_per_tlp,
            cores.tsc_ghz,
            self.deterministic,
        ) {
            // Time per TLP while the pipelines had work: at light load the
            // wall clock over TLPs says nothing of what forwarding one costs.
            let _ = writeln!(
                out,
                "  node pipelines: {c:.0} TSC cycles ({:.1} ns at {rate:.2} GHz) per TLP in polls that did work",
                c / rate
            );
        }
        if let Some(ns) = cores.round_trip_ns {
            let _ = writeln!(
                out,
                "  core-to-core cache-line round trip: {ns} ns (measured before the run)"
            );
        }
        let timed: Vec<String> = cores
            .rounds_over_us
            .iter()
            .zip(&cores.longest_round_us)
            .filter_map(|(over, longest)| {
                // A core kept from its round (by the OS, the hypervisor or
                // a long task) holds up everything it carries.
                let over = over.as_ref()?;
                let n = |us: &str| {
                    over.get(us)
                        .and_then(serde_json::Value::as_u64)
                        .unwrap_or(0)
                };
                Some(format!(
                    "{} over 20 µs, {} over 50 µs, longest {:.1} µs",
                    n("20"),
                    n("50"),
                    longest.unwrap_or(0.0)
                ))
            })
            .collect();
        if !timed.is_empty() {
            let _ = writeln!(out, "  long rounds per core: {}", timed.join("; "));
        }
        let i = &self.integrity;
        if i.dropped_too_large > 0 {
            let _ = writeln!(
                out,
                "  dropped: {} TLPs too large for the frames of their egress (a link MTU smaller than the frames it is given)",
                i.dropped_too_large
            );
        }
        if i.dropped_no_buffer > 0 {
            let _ = writeln!(
                out,
                "  overload: {} TLPs found no frame buffer at a node (offer less with --rate)",
                i.dropped_no_buffer
            );
        }
        let m = &self.migrations;
        let _ = writeln!(
            out,
            "  migrations: {} VM and {} endpoint completed, {} aborted, of {} scheduled{}",
            m.vm,
            m.endpoint,
            m.aborted,
            m.scheduled,
            if m.skipped > 0 {
                format!(" ({} with nothing to move)", m.skipped)
            } else {
                String::new()
            }
        );
        if !m.aborted_by.is_empty() {
            let text: Vec<String> = m
                .aborted_by
                .iter()
                .map(|c| format!("{} in {}", c.count, c.what))
                .collect();
            let _ = writeln!(out, "  aborted: {}", text.join("; "));
        }
        let v = &self.vdi;
        let _ = writeln!(
            out,
            "  pause points: {} TLPs held and released; VDIs served {} config reads, {} config writes ({} made to the function after), {} register reads, {} register writes (destinations' own); {} completion indications received",
            m.held_tlps, v.config_reads, v.config_writes, v.replayed_writes, v.register_reads, v.register_writes, m.completion_indications
        );
        let b = &v.beside_pauses;
        if b.posted + b.non_posted + b.completions > 0 || !v.alone.is_empty() {
            let _ = writeln!(
                out,
                "  while a binding was paused: its VDI alone completed {} kinds of operation ({}); the device served other bindings directly: {} posted, {} non-posted, {} completions",
                v.alone.len(),
                if v.alone.is_empty() { "none".to_string() } else { v.alone.join(", ") },
                b.posted,
                b.non_posted,
                b.completions
            );
        }
        if v.destination_refused > 0 {
            let _ = writeln!(
                out,
                "  destinations' instantiations refused {} requests that need the device before the switch-over",
                v.destination_refused
            );
        }
        let cfg = &self.configuration;
        let _ = writeln!(
            out,
            "  configuration: hosts completed {} reads and {} writes; {} MSI-X interrupts received of {} raised",
            cfg.reads, cfg.writes, cfg.interrupts, cfg.interrupts_raised
        );
        if cfg.interrupts_held > 0 {
            let _ = writeln!(
                out,
                "  interrupts raised during pauses: {} held in pending bits by VDIs, {} of them merged with one already pending",
                cfg.interrupts_held, cfg.interrupts_merged
            );
        }
        let _ = writeln!(
            out,
            "  registers: hosts completed {} register reads (each checked); devices acted on {} doorbell writes",
            self.registers.reads, self.registers.doorbells
        );
        if !self.refused.is_empty() {
            let text: Vec<String> = self
                .refused
                .iter()
                .map(|c| format!("{} {}", c.what, c.count))
                .collect();
            let _ = writeln!(out, "  refused at nodes: {}", text.join(", "));
            for line in &self.refusal_log {
                let _ = writeln!(out, "    {line}");
            }
        }
        if let Some(u) = &m.unfinished {
            let _ = writeln!(
                out,
                "  a migration had not finished when the run ended: {u}"
            );
        }
        let b = &self.blackout;
        let _ = writeln!(
            out,
            "  blackout per migration: {}",
            b.per_migration_us.line()
        );
        if b.per_migration_unstalled_us.count > 0 {
            let _ = writeln!(
                out,
                "    of those, with no core round over 10 µs: {}",
                b.per_migration_unstalled_us.line()
            );
        }
        let _ = writeln!(out, "  blackout per held TLP:  {}", b.per_tlp_us.line());
        let _ = writeln!(
            out,
            "  request round trips:    {}",
            self.round_trip_us.line()
        );
        if m.vm + m.endpoint > 0 {
            let text: Vec<String> = b
                .phases_us
                .iter()
                .map(|(p, s)| format!("{p} {:.1}/{:.1}", s.p50, s.p99))
                .collect();
            let _ = writeln!(out, "  phases (p50/p99 µs): {}", text.join(", "));
        }
        if m.pause_points_full > 0 {
            let _ = writeln!(
                out,
                "  pause points full: {} times a TLP waited at its ingress, with its credits, for room",
                m.pause_points_full
            );
        }
        let _ = writeln!(
            out,
            "  integrity: lost {}, duplicated {}, reordered {}, completion timeouts {}, data mismatches {}",
            i.lost, i.duplicated, i.reordered, i.completion_timeouts, i.data_mismatches
        );
        if i.completion_timeouts > 0 {
            let _ = writeln!(
                out,
                "  completion timeouts the nodes' core being kept from running explains: {} of {} \
                 (see the long rounds above)",
                i.completion_timeouts_in_stalls, i.completion_timeouts
            );
        }
        if i.unexpected_completions > 0 {
            let _ = writeln!(
                out,
                "  completions that came after their read timed out: {}",
                i.unexpected_completions
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> RunReport {
        let mut r = RunReport {
            config: "configs/default.toml".into(),
            duration_s: 2.0,
            pmd: "ring".into(),
            ..RunReport::default()
        };
        r.topology = TopologyFigures {
            nodes: 2,
            hosts: 2,
            bindings: 2,
            memory: "about 68 MiB".into(),
        };
        r.integrity.sent = 10;
        r.integrity.delivered = 9;
        r.integrity.lost = 1;
        r.migrations.vm = 3;
        r.migrations.aborted = 1;
        r.migrations.aborted_by = vec![Count {
            what: "move: over the blackout budget".into(),
            count: 1,
        }];
        r.blackout.phases_us = vec![
            (
                "prepare".into(),
                Summary {
                    p50: 1.5,
                    p99: 2.0,
                    ..Summary::default()
                },
            ),
            (
                "quiesce".into(),
                Summary {
                    p50: 3.0,
                    p99: 4.25,
                    ..Summary::default()
                },
            ),
        ];
        r.cores.busy_fraction = vec![0.5, 0.25];
        r.cores.round_us = vec![Some(1.25), None];
        r
    }

    #[test]
    fn the_json_reads_back_as_it_was_with_its_keys_where_readers_look() {
        let r = report();
        let text = r.json();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["integrity"]["lost"], 1);
        assert_eq!(v["frames"]["in"], 0, "frames.in, as the schema names it");
        // Phases keep their order: prepare before quiesce.
        let phases: Vec<&String> = v["blackout"]["phases_us"]
            .as_object()
            .unwrap()
            .keys()
            .collect();
        assert_eq!(phases, ["prepare", "quiesce"]);
        let back: RunReport = serde_json::from_str(&text).unwrap();
        assert_eq!(back, r);
        // A report with keys missing (an older one) still reads.
        let old: RunReport = serde_json::from_str(r#"{"integrity": {"lost": 4}}"#).unwrap();
        assert_eq!(old.integrity.lost, 4);
    }

    #[test]
    fn the_text_says_what_went_wrong_and_where() {
        let text = report().text();
        assert!(
            text.starts_with("run: 2 nodes, 2 hosts, 2 bindings, 2.00 s, in-memory ring ports\n"),
            "{text}"
        );
        assert!(
            text.contains("  busy polls per core: 50% (a round every 1.25 µs), 25%\n"),
            "{text}"
        );
        assert!(
            text.contains("  aborted: 1 in move: over the blackout budget\n"),
            "{text}"
        );
        assert!(
            text.contains("  phases (p50/p99 µs): prepare 1.5/2.0, quiesce 3.0/4.2\n"),
            "{text}"
        );
        assert!(text.contains("  integrity: lost 1, duplicated 0"), "{text}");
        assert!(!report().integrity.clean());
    }
}
