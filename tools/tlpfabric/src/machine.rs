//! What a figure was measured on: every result carries it, because a
//! figure without its machine, build and clock cannot be compared.

use serde_json::{json, Value};

/// The machine, the build and the clock, as a JSON object.
pub(crate) fn describe() -> Value {
    let read = |path: &str| {
        std::fs::read_to_string(path)
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    };
    let cpu_model = read("/proc/cpuinfo").and_then(|text| {
        text.lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_string())
    });
    let cpus = core_affinity::get_core_ids().map_or(0, |c| c.len());
    json!({
        "cpu_model": cpu_model.unwrap_or_else(|| "unknown".into()),
        "cpus": cpus,
        "kernel": read("/proc/sys/kernel/osrelease").unwrap_or_else(|| "unknown".into()),
        "clock_source": read("/sys/devices/system/clocksource/clocksource0/current_clocksource")
            .unwrap_or_else(|| "unknown".into()),
        "build_profile": if cfg!(debug_assertions) { "debug" } else { "release" },
        "git_commit": env!("TLPFABRIC_COMMIT"),
        "version": env!("CARGO_PKG_VERSION"),
        "dpdk": cfg!(feature = "dpdk"),
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_field_is_filled() {
        let m = super::describe();
        for key in [
            "cpu_model",
            "kernel",
            "clock_source",
            "build_profile",
            "git_commit",
        ] {
            let v = m[key].as_str().unwrap_or_default();
            assert!(!v.is_empty(), "{key}: {m}");
        }
        assert_eq!(
            m["build_profile"], "debug",
            "tests build without optimisation"
        );
        assert!(m["cpus"].as_u64().unwrap() >= 1);
    }
}
