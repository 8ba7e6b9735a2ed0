//! The built `tlpfabric` binary: exit statuses and a real pipe from `encode`
//! into `decode -`.

use std::io::Write;
use std::process::{Command, Stdio};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tlpfabric"))
}

/// A command's standard output, then its standard error.
#[cfg(feature = "dpdk")]
fn output_text(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

#[test]
fn encode_piped_into_decode() {
    let enc = bin()
        .args([
            "tlp",
            "encode",
            "--kind",
            "MWr",
            "--address",
            "0x1000000040",
            "--requester",
            "01:00.0",
        ])
        .args(["--tag", "5", "--data", "0102030405060708"])
        .finish()
        .unwrap();
    assert!(enc.status.success());
    let mut dec = bin()
        .args(["tlp", "decode", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    dec.stdin.take().unwrap().write_all(&enc.stdout).unwrap();
    let out = dec.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().trim(),
        "MWr64 len=2 req=01:00.0 tag=0x05 addr=0x0000001000000040 fbe=0xf lbe=0xf data=0102030405060708"
    );
}

/// How long any process a test starts may take before the test kills it
/// and fails: a hang is a failure with a message, never a stuck run.
const PATIENCE: std::time::Duration = std::time::Duration::from_secs(120);

/// `Command::output` with a time limit (and no standard input).
trait Finish {
    /// Runs to the end and collects both streams; past [`PATIENCE`], kills
    /// the process and fails the test saying what it printed so far.
    fn finish(&mut self) -> std::io::Result<std::process::Output>;
}

impl Finish for Command {
    fn finish(&mut self) -> std::io::Result<std::process::Output> {
        use std::io::Read;
        let mut child = self
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        // Both streams are read as the process writes them, so that a full
        // pipe never holds it up.
        let drain = |r: Option<Box<dyn Read + Send>>| {
            std::thread::spawn(move || {
                let mut bytes = Vec::new();
                if let Some(mut r) = r {
                    let _ = r.read_to_end(&mut bytes);
                }
                bytes
            })
        };
        let out = drain(child.stdout.take().map(|r| Box::new(r) as _));
        let err = drain(child.stderr.take().map(|r| Box::new(r) as _));
        let status = wait_within(&mut child, PATIENCE, "to end");
        Ok(std::process::Output {
            status,
            stdout: out.join().unwrap_or_default(),
            stderr: err.join().unwrap_or_default(),
        })
    }
}

/// Waits for `child` to end; past `limit`, kills it and fails the test.
fn wait_within(
    child: &mut std::process::Child,
    limit: std::time::Duration,
    what: &str,
) -> std::process::ExitStatus {
    let started = std::time::Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the process did not {what} within {limit:?}: killed");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Runs `command` and, for each `(ready, after)` in turn, waits until its
/// standard error shows `ready` (for [`PATIENCE`] at most), then `after`,
/// then sends it SIGINT (Ctrl-C); then waits for it to end (20 s at most).
/// Returns its exit code, standard output and standard error.
fn interrupted(
    mut command: Command,
    steps: &[(&str, std::time::Duration)],
) -> (Option<i32>, String, String) {
    use std::io::{BufRead, BufReader, Read};
    use std::time::{Duration, Instant};
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Standard error is read on a thread of its own, line by line, so that
    // waiting for a line has a limit and the pipe never fills.
    let (lines, from_stderr) = std::sync::mpsc::channel::<String>();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let reader = std::thread::spawn(move || {
        for line in stderr.lines() {
            let Ok(line) = line else { break };
            if lines.send(line + "\n").is_err() {
                break;
            }
        }
    });
    let mut stdout = child.stdout.take().unwrap();
    let stdout = std::thread::spawn(move || {
        let mut out = String::new();
        let _ = stdout.read_to_string(&mut out);
        out
    });
    let mut seen = String::new();
    for (ready, after) in steps {
        let started = Instant::now();
        while !seen.contains(ready) {
            let left = PATIENCE.saturating_sub(started.elapsed());
            match from_stderr.recv_timeout(left) {
                Ok(line) => seen.push_str(&line),
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                    let _ = child.wait();
                    panic!("ended before {ready:?}: {seen}");
                }
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("no {ready:?} within {PATIENCE:?}: killed; it said: {seen}");
                }
            }
        }
        std::thread::sleep(*after);
        let kill = Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(kill.success());
    }
    let status = wait_within(&mut child, Duration::from_secs(20), "stop after Ctrl-C");
    let _ = reader.join();
    seen.extend(from_stderr.try_iter());
    (status.code(), stdout.join().unwrap_or_default(), seen)
}

/// Ctrl-C in the middle of a long `forward` stops the cores and reports
/// the time they ran, as a benchmark stopped by hand should.
#[test]
fn forward_interrupted_reports_the_time_it_ran() {
    let json = std::env::temp_dir().join(format!("tlpf-interrupt-{}.json", std::process::id()));
    let mut command = bin();
    command.args([
        "forward",
        "--duration",
        "60s",
        "--json",
        json.to_str().unwrap(),
    ]);
    // The first progress line: the cores are forwarding, the handler set.
    let (code, out, err) = interrupted(command, &[(" s: ", std::time::Duration::ZERO)]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(err.contains("note: interrupted after"), "{err}");
    assert!(out.contains("total:"), "the report is printed: {out}");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    std::fs::remove_file(&json).unwrap();
    assert_eq!(v["interrupted"], true);
    let secs = v["duration_s"].as_f64().unwrap();
    assert!((1.0..30.0).contains(&secs), "ran {secs} s of 60");
    assert!(v["tlps_per_s"].as_f64().unwrap() > 0.0);
}

/// Ctrl-C in the middle of a long `run` stops the offered traffic, lets
/// what is in flight drain and reports the time it ran, integrity whole.
#[test]
fn run_interrupted_drains_and_reports_the_time_it_ran() {
    let json = std::env::temp_dir().join(format!("tlpf-run-interrupt-{}.json", std::process::id()));
    let mut command = bin();
    command
        .args(["run", "--duration", "60s", "--json", json.to_str().unwrap()])
        .args(["--vm-migrations", "6000", "--endpoint-migrations", "6000"])
        // Other tests' processes share the two cores: a read may wait tens
        // of milliseconds while its core is kept from running, which is
        // not what this test is about.
        .args(["--rate", "50000", "--completion-timeout", "500ms"]);
    // The line saying traffic flows: the handler is set by then.
    let (code, out, err) = interrupted(
        command,
        &[("Ctrl-C stops it early", std::time::Duration::from_secs(1))],
    );
    assert_eq!(code, Some(0), "integrity whole: {out}{err}");
    assert!(err.contains("note: interrupted after"), "{err}");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    std::fs::remove_file(&json).unwrap();
    assert_eq!(v["interrupted"], true);
    let secs = v["duration_s"].as_f64().unwrap();
    assert!((0.5..30.0).contains(&secs), "ran {secs} s of 60");
    assert_eq!(v["integrity"]["lost"], 0, "{out}");
    assert!(v["integrity"]["delivered"].as_u64().unwrap() > 0);
    // The node pipelines' busy time fits in the time the run lasted.
    let cycles = v["cores"]["node_tsc_cycles_per_tlp"].as_f64().unwrap();
    let ghz = v["cores"]["tsc_ghz"].as_f64().unwrap();
    let tlps: u64 = ["posted", "non_posted", "completion"]
        .iter()
        .map(|k| v["throughput"]["by_class"][k].as_u64().unwrap())
        .sum();
    let busy_s = cycles / ghz * tlps as f64 / 1e9;
    assert!(
        cycles > 0.0 && busy_s <= secs + 2.0,
        "{busy_s} s busy in a {secs} s run"
    );
    let completed =
        v["migrations"]["vm"].as_u64().unwrap() + v["migrations"]["endpoint"].as_u64().unwrap();
    assert!(
        (1..12_000).contains(&completed),
        "{completed} of 12000 migrations"
    );
}

/// A second Ctrl-C ends a run at once, for one that does not stop: here
/// one draining for ten seconds (its completion timeout).
#[test]
fn a_second_interrupt_ends_the_process_at_once() {
    let mut command = bin();
    command
        .args(["run", "--duration", "60s", "--completion-timeout", "10s"])
        .args(["--rate", "50000"]);
    let started = std::time::Instant::now();
    let no_wait = std::time::Duration::ZERO;
    let (code, out, err) = interrupted(
        command,
        &[
            (
                "Ctrl-C stops it early",
                std::time::Duration::from_millis(200),
            ),
            ("note: interrupted after", no_wait),
        ],
    );
    assert_eq!(code, Some(128 + 2), "exit status of SIGINT: {out}{err}");
    assert!(out.is_empty(), "no report: {out}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(9),
        "did not wait out the drain"
    );
}

#[test]
fn exit_statuses() {
    let ok = bin()
        .args(["tlp", "decode", "0a000000 01002004 00001100"])
        .finish()
        .unwrap();
    assert_eq!(ok.status.code(), Some(0));
    let bad = bin()
        .args(["tlp", "decode", "00000001 01"])
        .finish()
        .unwrap();
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("truncated"));
    let usage = bin()
        .args(["tlp", "decode", "--profile", "router", "00"])
        .finish()
        .unwrap();
    assert_eq!(usage.status.code(), Some(2));
    let help = bin().arg("--help").finish().unwrap();
    assert_eq!(help.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&help.stdout).contains("tlp"));
}

/// The same deterministic run over in-memory rings and over DPDK ethdevs:
/// the ports differ, nothing else may.
#[cfg(feature = "dpdk")]
#[test]
fn a_deterministic_run_over_dpdk_ethdevs_matches_the_ring_run() {
    let dir = std::env::temp_dir().join(format!("tlpf-run-dpdk-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut docs = Vec::new();
    for pmd in ["ring", "dpdk"] {
        let json = dir.join(format!("{pmd}.json"));
        let out = bin()
            .args(["run", "--deterministic", "--duration", "100ms"])
            .args(["--vm-migrations", "10", "--endpoint-migrations", "10"])
            .args(["--pmd", pmd, "--json", json.to_str().unwrap()])
            .args([
                "--eal",
                &format!(
                    "--no-huge --no-pci -m 512 --file-prefix=tlpf-run-test-{} --log-level=lib.eal:error",
                    std::process::id()
                ),
            ])
            .finish()
            .unwrap();
        let text = output_text(&out);
        assert!(out.status.success(), "{pmd}: {text}");
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
        assert_eq!(v["pmd"], pmd);
        assert_eq!(v["migrations"]["vm"], 10, "{pmd}: {text}");
        assert_eq!(v["migrations"]["endpoint"], 10, "{pmd}: {text}");
        assert_eq!(v["integrity"]["lost"], 0, "{pmd}");
        docs.push(v);
    }
    assert!(docs[0]["integrity"]["delivered"].as_u64().unwrap() > 10_000);
    assert_eq!(docs[0]["integrity"], docs[1]["integrity"]);
    assert_eq!(docs[0]["throughput"], docs[1]["throughput"]);
    assert_eq!(docs[0]["blackout"], docs[1]["blackout"]);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A network namespace of the test's own, deleted when dropped.
#[cfg(feature = "dpdk")]
struct Netns(String);

#[cfg(feature = "dpdk")]
impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

/// `tlpfabric forward` over net_af_packet on the two ends of a veth pair
/// (in a network namespace of its own): `--tx-first` starts frames that the
/// forwarder keeps going round, both ways, each with its TLPs intact.
/// Skipped, saying so, without root or the `ip` command.
#[cfg(feature = "dpdk")]
#[test]
fn forward_keeps_tx_first_frames_going_round_a_veth_pair() {
    let root = std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
    });
    let ns = Netns(format!("tlpf-fwd-{}", std::process::id()));
    let ip = |args: &[&str]| {
        Command::new("ip")
            .args(["-n", &ns.0])
            .args(args)
            .status()
            .is_ok_and(|s| s.success())
    };
    let made = root
        && Command::new("ip")
            .args(["netns", "add", &ns.0])
            .status()
            .is_ok_and(|s| s.success());
    if !made {
        eprintln!("skipped: a veth pair in a network namespace needs root and iproute2");
        return;
    }
    // No addresses: the kernel sends nothing of its own on the pair.
    assert!(ip(&[
        "link", "add", "fwa", "type", "veth", "peer", "name", "fwb"
    ]));
    for end in ["fwa", "fwb"] {
        assert!(ip(&["link", "set", end, "addrgenmode", "none"]));
        assert!(ip(&["link", "set", end, "up"]));
    }
    let eal = format!(
        "--no-huge --no-pci -m 512 --file-prefix={} --log-level=lib.eal:error --no-telemetry \
         --vdev=net_af_packet0,iface=fwa --vdev=net_af_packet1,iface=fwb",
        ns.0
    );
    let mut forward = Command::new("ip");
    forward.args(["netns", "exec", &ns.0, env!("CARGO_BIN_EXE_tlpfabric")]);
    forward_round(forward, &eal, "net_af_packet0,net_af_packet1", "veth");
}

/// The same on a memif pair in one process (a server and its client on a
/// socket of the test's own); no root needed.
#[cfg(feature = "dpdk")]
#[test]
fn forward_keeps_tx_first_frames_going_round_a_memif_pair() {
    let socket = std::env::temp_dir().join(format!("tlpf-memif-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&socket);
    let socket = socket.to_str().unwrap();
    // memif shares its buffers through a file: one memory segment file.
    let eal = format!(
        "--no-huge --no-pci -m 512 --single-file-segments --file-prefix=tlpf-memif-{} \
         --log-level=lib.eal:error --no-telemetry \
         --vdev=net_memif0,role=server,socket={socket} --vdev=net_memif1,role=client,socket={socket}",
        std::process::id()
    );
    forward_round(bin(), &eal, "net_memif0,net_memif1", "memif");
    let _ = std::fs::remove_file(socket);
}

/// The frames `forward --write-frames` writes, replayed into a forwarder on
/// two net_pcap ports: each comes out of the other port byte for byte (a
/// node between two links passes a frame on whole, its CRC intact).
#[cfg(feature = "dpdk")]
#[test]
fn written_frames_replayed_through_net_pcap_come_out_unchanged() {
    let dir = std::env::temp_dir().join(format!("tlpf-replay-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = |name: &str| dir.join(name).to_str().unwrap().to_string();
    let written = bin()
        .args([
            "forward",
            "--tlps-per-frame",
            "2",
            "--write-frames",
            &path(""),
        ])
        .finish()
        .unwrap();
    assert!(written.status.success(), "{written:?}");
    let eal = format!(
        "--no-huge --no-pci -m 512 --file-prefix=tlpf-replay-{} --log-level=lib.eal:error \
         --no-telemetry --vdev=net_pcap0,rx_pcap={},tx_pcap={} \
         --vdev=net_pcap1,rx_pcap={},tx_pcap={}",
        std::process::id(),
        path("west-port-rx.pcap"),
        path("west-port-tx.pcap"),
        path("east-port-rx.pcap"),
        path("east-port-tx.pcap"),
    );
    let out = bin()
        .args([
            "forward",
            "--pmd",
            "dpdk",
            "--eal",
            &eal,
            "--ports",
            "net_pcap0,net_pcap1",
        ])
        .args(["--tlps-per-frame", "2", "--duration", "300ms"])
        .finish()
        .unwrap();
    let text = output_text(&out);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("refused 0, malformed frames 0"), "{text}");
    // A pcap of one frame: its bytes after the global and record headers.
    let frame = |name: &str| std::fs::read(dir.join(name)).unwrap()[40..].to_vec();
    assert_eq!(
        frame("west-port-rx.pcap"),
        frame("east-port-tx.pcap"),
        "{text}"
    );
    assert_eq!(
        frame("east-port-rx.pcap"),
        frame("west-port-tx.pcap"),
        "{text}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Runs `forward --tx-first` with `command` on two ports joined to each
/// other and checks that frames went round both ways, every one a TLP frame
/// that passed its checks, every TLP forwarded.
#[cfg(feature = "dpdk")]
fn forward_round(mut command: Command, eal: &str, ports: &str, what: &str) {
    let json = std::env::temp_dir().join(format!("tlpf-fwd-{what}-{}.json", std::process::id()));
    let out = command
        .args(["forward", "--pmd", "dpdk", "--eal", eal])
        .args(["--ports", ports, "--tx-first", "2"])
        .args(["--tlps-per-frame", "4", "--duration", "500ms"])
        .args(["--json", json.to_str().unwrap()])
        .finish()
        .unwrap();
    let text = output_text(&out);
    assert!(out.status.success(), "{what}: {text}");
    assert!(text.contains("sent out of each port first"), "{text}");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    std::fs::remove_file(&json).unwrap();
    for d in v["directions"].as_array().unwrap() {
        assert!(d["frames_per_s"].as_f64().unwrap() > 0.0, "{what}: {text}");
    }
    assert_eq!(v["frames_malformed"], 0, "{what}: {text}");
    // The devices saw what the ports counted, and dropped nothing.
    let ports = v["ports"].as_array().unwrap();
    assert_eq!(ports.len(), 2, "{text}");
    for p in ports {
        let device = &p["device"];
        assert_eq!(device["received"], p["rx_frames"], "{what}: {text}");
        assert_eq!(device["sent"], p["tx_frames"], "{what}: {text}");
        assert_eq!(device["missed"], 0, "{what}: {text}");
    }
    assert_eq!(v["tlps_refused"], 0, "{what}: {text}");
    let ratio = v["tlps_per_s"].as_f64().unwrap() / v["frames_per_s"].as_f64().unwrap();
    assert!((ratio - 4.0).abs() < 0.01, "{what}: {ratio}: {text}");
}

#[cfg(not(feature = "dpdk"))]
#[test]
fn run_over_dpdk_needs_the_feature() {
    let out = bin().args(["run", "--pmd", "dpdk"]).finish().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--features dpdk"), "{err}");
}

/// One switch node, and three in a line, on pinned cores: every migration
/// finishes and what the hosts and devices observed is whole. (On one
/// node, VDI answers once reached a host in fabric IDs and hand-overs
/// waited forever; configuration requests come often here so that some
/// meet a pause.)
#[test]
fn one_node_and_a_line_of_three_run_clean_on_pinned_cores() {
    let configs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs");
    for name in ["one-node", "line"] {
        let json = std::env::temp_dir().join(format!("tlpf-{name}-{}.json", std::process::id()));
        let out = bin()
            .args(["run", "--duration", "1s", "--config-every", "2"])
            .arg("--config")
            .arg(configs.join(format!("{name}.toml")))
            // Other tests' processes share the two cores.
            .args(["--rate", "50000", "--completion-timeout", "500ms"])
            .args(["--vm-migrations", "50", "--endpoint-migrations", "50"])
            .arg("--json")
            .arg(&json)
            .finish()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{name}: {text}");
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
        std::fs::remove_file(&json).unwrap();
        for key in ["lost", "duplicated", "reordered", "data_mismatches"] {
            assert_eq!(v["integrity"][key], 0, "{name}: {key}: {text}");
        }
        let m = &v["migrations"];
        let ended: u64 = ["vm", "endpoint", "aborted", "skipped"]
            .iter()
            .map(|k| m[k].as_u64().unwrap())
            .sum();
        assert_eq!(ended, 100, "{name}: every migration ended: {text}");
        assert!(m["vm"].as_u64().unwrap() > 0, "{name}: {text}");
    }
}

/// Every file in `tests/bad-configs` is refused by `config check` and by
/// `run`, with exit status 1 and the key its first line names, without a
/// panic and without echoing a file it should not have read.
#[test]
fn every_bad_config_is_refused_naming_its_key() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/bad-configs");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    assert!(files.len() >= 15, "{files:?}");
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let expect = |tag: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(tag))
                .map(str::trim)
                .map(str::to_string)
        };
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let check = bin().args(["config", "check"]).arg(&file).finish().unwrap();
        let run = bin()
            .args(["run", "--deterministic", "--duration", "5ms", "--config"])
            .arg(&file)
            .finish()
            .unwrap();
        let mut cases = vec![("run", run, expect("# expect-run:").or(expect("# expect:")))];
        if let Some(e) = expect("# expect:") {
            cases.push(("config check", check, Some(e)));
        }
        for (what, out, expected) in cases {
            let expected = expected.unwrap_or_else(|| panic!("{name}: no '# expect:' line"));
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(1), "{name}: {what}: {err}");
            assert!(
                err.contains(&format!("{name}: {expected}")),
                "{name}: {what}: expected {expected:?} in {err}"
            );
            assert!(!err.contains("panicked"), "{name}: {what}: {err}");
            assert!(
                !err.contains("root:"),
                "{name}: {what} echoed a file: {err}"
            );
        }
    }
}

/// Usage errors carry no colour codes when standard error is not a
/// terminal (here a pipe), with or without NO_COLOR.
#[test]
fn usage_errors_are_plain_text_off_a_terminal() {
    for no_colour in [None, Some("1")] {
        let mut command = bin();
        command.args(["tlp", "encode", "--kind", "Bogus"]);
        if let Some(v) = no_colour {
            command.env("NO_COLOR", v);
        }
        let out = command.finish().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains("Bogus"), "{err}");
        assert!(!err.contains('\u{1b}'), "colour codes in {err:?}");
    }
}

/// The frames of a pcap file the program wrote.
fn pcap_frames(bytes: &[u8]) -> Vec<Vec<u8>> {
    pmd::pcap::frames(bytes).unwrap_or_else(|e| panic!("{e}"))
}

/// `run --pcap` captures one link both ways, off the cores: every frame in
/// the file is a whole fabric frame with a good CRC, and both ends' TLPs
/// are there (host writes going toward the device, completions and DMA
/// coming back).
#[test]
fn run_captures_a_link_both_ways_with_good_frames() {
    let pcap = std::env::temp_dir().join(format!("tlpf-run-capture-{}.pcap", std::process::id()));
    let out = bin()
        .args(["run", "--deterministic", "--duration", "10ms", "--pcap"])
        .arg(&pcap)
        .args(["--pcap-port", "link0"])
        .finish()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("capture: "), "{err}");
    let bytes = std::fs::read(&pcap).unwrap();
    std::fs::remove_file(&pcap).unwrap();
    assert_eq!(
        &bytes[..4],
        &0xa1b2_3c4du32.to_le_bytes(),
        "nanosecond pcap"
    );
    let frames = pcap_frames(&bytes);
    assert!(frames.len() > 100, "{} frames", frames.len());
    let (mut to_device, mut from_device) = (0, 0);
    for f in &frames {
        let frame = fabric::Frame::new_checked(&f[..], fabric::frame::ETHERTYPE)
            .unwrap_or_else(|e| panic!("{e:?}"));
        // Node 0 (sw0) sends toward the device's node, node 1 back.
        match frame.source_node() {
            0 => to_device += frame.tlp_count() as usize,
            1 => from_device += frame.tlp_count() as usize,
            other => panic!("a frame from node {other}"),
        }
    }
    assert!(
        to_device > 0 && from_device > 0,
        "{to_device} TLPs one way, {from_device} the other"
    );
    let written: usize = err
        .split("capture: ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert_eq!(written, frames.len(), "{err}");
    // A link that is not in the topology is refused, naming those that are.
    let out = bin()
        .args(["run", "--deterministic", "--duration", "1ms", "--pcap"])
        .arg(&pcap)
        .args(["--pcap-port", "link7"])
        .finish()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("expected one of link0, host-a, host-b, nic0"),
        "{err}"
    );
    assert!(!pcap.exists());
}

/// `forward --pcap` captures the chosen port while it forwards: frames
/// whole and checked, and as many in the file as the report says.
#[test]
fn forward_captures_a_port_while_it_forwards() {
    let pcap = std::env::temp_dir().join(format!("tlpf-fwd-capture-{}.pcap", std::process::id()));
    let out = bin()
        .args([
            "forward",
            "--duration",
            "100ms",
            "--tlps-per-frame",
            "4",
            "--pcap",
        ])
        .arg(&pcap)
        .args(["--pcap-port", "east"])
        .finish()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    let bytes = std::fs::read(&pcap).unwrap();
    std::fs::remove_file(&pcap).unwrap();
    let frames = pcap_frames(&bytes);
    assert!(!frames.is_empty());
    for f in &frames {
        let frame = fabric::Frame::new_checked(&f[..], fabric::frame::ETHERTYPE)
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(frame.tlp_count(), 4);
    }
    let line = text
        .lines()
        .find(|l| l.starts_with("capture: "))
        .expect(&text);
    assert!(
        line.contains(&format!(
            "capture: {} frames of the east port",
            frames.len()
        )),
        "{line}"
    );
}

/// A small sweep, as a user would write one: two loads, migrations going on.
fn small_sweep(dir: &std::path::Path, window: &str) -> std::path::PathBuf {
    let file = dir.join("sweep.toml");
    std::fs::write(
        &file,
        format!(
            "description = \"two loads\"\nwarmup = \"100ms\"\nwindow = \"{window}\"\n\
             [fixed]\nmigrations-per-s = 20\ncompletion-timeout = \"500ms\"\n\
             [axes]\nrate = [5000, 10000]\n"
        ),
    )
    .unwrap();
    file
}

/// Everything a sweep writes reads back with the tools a user would open
/// it with: the reports as JSON, the table as CSV, the logs with the
/// hdrhistogram crate, the plots and the page as XML, the PNGs as images.
#[test]
fn a_sweep_writes_reports_a_table_logs_plots_and_a_page_that_all_read_back() {
    let dir = std::env::temp_dir().join(format!("tlpf-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let sweep = small_sweep(&dir, "400ms");
    let out = dir.join("out");
    let run = bin()
        .args([
            "bench",
            "--sweep",
            sweep.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ])
        .finish()
        .unwrap();
    let text =
        String::from_utf8_lossy(&run.stdout).into_owned() + &String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(0), "{text}");
    assert!(
        text.contains("bench: run 2/2: p001 #1 rate=10000"),
        "progress per run: {text}"
    );
    // One report and one log per run, each from its own process.
    for point in ["p000", "p001"] {
        let json = std::fs::read_to_string(out.join(format!("points/{point}-r1.json"))).unwrap();
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["integrity"]["lost"], 0, "{point}");
        assert!(v["integrity"]["delivered"].as_u64().unwrap() > 0, "{point}");
        assert!(v["machine"]["kernel"]
            .as_str()
            .is_some_and(|k| !k.is_empty()));
        assert_eq!(v["warmup_s"], 0.1);
        let log = std::fs::read(out.join(format!("points/{point}-r1.hlog"))).unwrap();
        let histograms = telemetry::read_interval_log(&log).unwrap();
        let tags: Vec<&str> = histograms.iter().map(|(t, _)| t.as_str()).collect();
        assert_eq!(tags, ["per_migration", "per_tlp", "round_trip"]);
        // The round trips in the log are the ones the report summarises.
        let round_trips = &histograms[2].1;
        assert_eq!(
            round_trips.len(),
            v["round_trip_us"]["count"].as_u64().unwrap()
        );
        assert!(!round_trips.is_empty());
    }
    let csv = std::fs::read_to_string(out.join("summary.csv")).unwrap();
    let rows: Vec<Vec<&str>> = csv.lines().map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 3, "a header and a row per run: {csv}");
    let column = |name: &str| {
        rows[0]
            .iter()
            .position(|h| *h == name)
            .unwrap_or_else(|| panic!("{name}: {csv}"))
    };
    assert_eq!(rows[1][column("rate")], "5000");
    assert_eq!(rows[2][column("rate")], "10000");
    assert_eq!(rows[1][column("lost")], "0");
    assert!(rows.iter().all(|r| r.len() == rows[0].len()), "{csv}");
    // More offered, more delivered.
    let rate = |row: &Vec<&str>| row[column("tlps_per_s")].parse::<f64>().unwrap();
    assert!(rate(&rows[2]) > rate(&rows[1]), "{csv}");
    for stem in ["throughput", "blackout", "percentiles", "round-trips"] {
        let svg = std::fs::read_to_string(out.join(format!("{stem}.svg"))).unwrap();
        roxmltree::Document::parse(&svg).unwrap_or_else(|e| panic!("{stem}.svg: {e}"));
        let png = std::fs::read(out.join(format!("{stem}.png"))).unwrap();
        let info = png::Decoder::new(&png[..])
            .read_info()
            .unwrap_or_else(|e| panic!("{stem}.png: {e}"));
        assert!(info.info().width > 0);
    }
    let page = std::fs::read_to_string(out.join("index.html")).unwrap();
    let options = roxmltree::ParsingOptions {
        allow_dtd: true,
        ..Default::default()
    };
    let doc = roxmltree::Document::parse_with_options(&page, options).unwrap();
    assert_eq!(
        doc.descendants()
            .filter(|n| n.has_tag_name("figure"))
            .count(),
        4
    );
    assert!(page.contains("rate=10000"));
    assert!(
        !page.contains("src=\"http"),
        "nothing fetched from a network"
    );
    let machine: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("machine.json")).unwrap()).unwrap();
    assert_eq!(machine["sweep"]["runs"], 2);
    assert_eq!(machine["sweep"]["interrupted"], false);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Ctrl-C in the middle of a sweep stops the run under way (which reports
/// what it measured) and writes out the sweep so far.
#[test]
fn an_interrupted_sweep_writes_what_it_measured() {
    let dir = std::env::temp_dir().join(format!("tlpf-bench-int-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let sweep = small_sweep(&dir, "30s");
    let out = dir.join("out");
    let mut command = bin();
    command.args([
        "bench",
        "--sweep",
        sweep.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    let (code, _, err) = interrupted(
        command,
        &[("bench: run 1/2", std::time::Duration::from_millis(1500))],
    );
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("interrupted after 1 of 2 runs"), "{err}");
    let csv = std::fs::read_to_string(out.join("summary.csv")).unwrap();
    assert_eq!(csv.lines().count(), 2, "the one run measured: {csv}");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("points/p000-r1.json")).unwrap())
            .unwrap();
    assert_eq!(v["interrupted"], true);
    assert!(v["duration_s"].as_f64().unwrap() < 20.0);
    let page = std::fs::read_to_string(out.join("index.html")).unwrap();
    assert!(page.contains("Interrupted"));
    std::fs::remove_dir_all(&dir).unwrap();
}
