//! The default fabric as two processes: `tlpfabric node` for switch sw0
//! (both hosts) in one network namespace, for sw1 (the device) in another,
//! their link on a veth pair between the namespaces, native AF_PACKET ports
//! at both ends. Tracked traffic crosses the processes; `tlpfabric report`
//! merges the nodes' reports, and the merge must be clean: every write
//! delivered once and in order, every read answered. A link taken down for
//! 200 ms in the middle of it costs replays, not TLPs; garbage, damaged
//! frames and another fabric's frames sent into a node's port are counted
//! and ignored.
//!
//! Needs root (network namespaces); under `CI=true` a test that cannot make
//! its namespaces fails. Namespaces and processes are removed even when a
//! test fails.
#![cfg(target_os = "linux")]
// One call enters a namespace (setns), for a port opened in it.
#![allow(unsafe_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_tlpfabric")
}

/// Two namespaces joined by a veth pair (`v0` in the first, `v1` in the
/// second), and the node processes started in them; the processes are
/// killed and the namespaces deleted on drop.
struct TwoNamespaces {
    names: [String; 2],
    children: Vec<Child>,
    /// The fabric manager, if one runs.
    manager: Option<Child>,
    dir: PathBuf,
    _turn: std::sync::MutexGuard<'static, ()>,
}

/// One fabric at a time: each runs four polling threads, and a test
/// machine has two CPUs.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

impl TwoNamespaces {
    fn new(tag: &str) -> Option<TwoNamespaces> {
        let turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        let pid = std::process::id();
        let names = [0, 1].map(|i| format!("tlpf-{tag}{i}-{pid}"));
        let made = names.iter().all(|n| {
            Command::new("ip")
                .args(["netns", "add", n])
                .status()
                .is_ok_and(|s| s.success())
        });
        let dir = std::env::temp_dir().join(format!("tlpf-{tag}-{pid}"));
        let fabric = TwoNamespaces {
            names,
            children: Vec::new(),
            manager: None,
            dir,
            _turn: turn,
        };
        if !made {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "cannot create network namespaces (needs root and iproute2)"
            );
            eprintln!("SKIPPED: cannot create network namespaces (needs root and iproute2)");
            return None;
        }
        let [a, b] = &fabric.names;
        fabric.ip(&[
            "link", "add", "name", "v0", "netns", a, "type", "veth", "peer", "name", "v1", "netns",
            b,
        ]);
        fabric.ip(&["-n", a, "link", "set", "dev", "v0", "up"]);
        fabric.ip(&["-n", b, "link", "set", "dev", "v1", "up"]);
        std::fs::create_dir_all(&fabric.dir).unwrap();
        Some(fabric)
    }

    fn ip(&self, args: &[&str]) {
        let status = Command::new("ip").args(args).status().expect("ip runs");
        assert!(status.success(), "ip {args:?}");
    }

    fn report(&self, node: &str) -> PathBuf {
        self.dir.join(format!("{node}.json"))
    }

    /// Starts `tlpfabric node` for `node` in namespace `ns` on `iface`.
    fn start(&mut self, ns: usize, node: &str, iface: &str) {
        self.start_with(ns, node, iface, &["--duration", "2s"]);
    }

    /// Starts `tlpfabric node` with `extra` arguments.
    fn start_with(&mut self, ns: usize, node: &str, iface: &str, extra: &[&str]) {
        let json = self.report(node);
        let child = Command::new("ip")
            .args(["netns", "exec", &self.names[ns], bin(), "node"])
            .args(["--node", node, "--port", &format!("link0={iface}")])
            .args(extra)
            .args(["--rate", "20000", "--linger", "2s"])
            // Four polling threads share the two CPUs of a test machine:
            // a read may wait for its turn of the CPU.
            .args(["--completion-timeout", "5s", "--json"])
            .arg(&json)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the node starts");
        self.children.push(child);
    }

    /// Waits for every node to exit, each within `limit`; returns their
    /// outputs.
    fn wait(&mut self, limit: Duration) -> Vec<String> {
        let deadline = Instant::now() + limit;
        let mut outputs = Vec::new();
        for child in &mut self.children {
            loop {
                if let Some(status) = child.try_wait().unwrap() {
                    let text = read_all(child.stdout.take()) + &read_all(child.stderr.take());
                    assert!(status.success(), "a node failed: {text}");
                    outputs.push(text);
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "a node did not finish in {limit:?}"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        outputs
    }

    /// `tlpfabric report` of both nodes: its exit status and output.
    fn merged(&self) -> (Option<i32>, String, serde_json::Value) {
        let json = self.dir.join("fabric.json");
        let out = Command::new(bin())
            .arg("report")
            .arg(self.report("sw0"))
            .arg(self.report("sw1"))
            .arg("--json")
            .arg(&json)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        let v = std::fs::read_to_string(&json)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or(serde_json::Value::Null);
        (out.status.code(), text, v)
    }

    fn node_report(&self, node: &str) -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(self.report(node)).unwrap()).unwrap()
    }
}

/// What a finished child wrote to a pipe (nothing if none was taken).
fn read_all(pipe: Option<impl std::io::Read>) -> String {
    let mut text = String::new();
    if let Some(mut p) = pipe {
        let _ = p.read_to_string(&mut text);
    }
    text
}

impl TwoNamespaces {
    /// A control network beside the fabric's link: `m0` (10.99.0.1) in the
    /// first namespace, `m1` (10.99.0.2) in the second; the manager listens
    /// on the first, at [`MANAGER`].
    fn start_manager(&mut self) {
        let [a, b] = self.names.clone();
        self.ip(&[
            "link", "add", "name", "m0", "netns", &a, "type", "veth", "peer", "name", "m1",
            "netns", &b,
        ]);
        self.ip(&["-n", &a, "addr", "add", "10.99.0.1/24", "dev", "m0"]);
        self.ip(&["-n", &b, "addr", "add", "10.99.0.2/24", "dev", "m1"]);
        self.ip(&["-n", &a, "link", "set", "dev", "m0", "up"]);
        self.ip(&["-n", &b, "link", "set", "dev", "m1", "up"]);
        // sw0 reaches the manager at its own address: over loopback.
        self.ip(&["-n", &a, "link", "set", "dev", "lo", "up"]);
        let child = Command::new("ip")
            .args(["netns", "exec", &a, bin(), "manager"])
            .args(["--listen", MANAGER, "--heartbeat", "100ms", "--for", "120s"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the manager starts");
        self.manager = Some(child);
    }

    /// `tlpfabric status --json`, asked from the second namespace (across
    /// the control network), once it answers.
    fn status(&self) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let out = Command::new("ip")
                .args(["netns", "exec", &self.names[1], bin(), "status"])
                .args(["--manager", MANAGER, "--json"])
                .output()
                .unwrap();
            if out.status.success() {
                return serde_json::from_slice(&out.stdout).unwrap();
            }
            assert!(
                Instant::now() < deadline,
                "status: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Polls the status until `done` holds, at most `limit`; returns the
    /// last.
    fn status_until(
        &self,
        limit: Duration,
        done: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = Instant::now() + limit;
        loop {
            let s = self.status();
            if done(&s) || Instant::now() > deadline {
                return s;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Where the tests' manager listens.
const MANAGER: &str = "10.99.0.1:7800";

impl Drop for TwoNamespaces {
    fn drop(&mut self) {
        for child in self.children.iter_mut().chain(&mut self.manager) {
            let _ = child.kill();
            let _ = child.wait();
        }
        for n in &self.names {
            let _ = Command::new("ip").args(["netns", "del", n]).status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Both nodes started, the device's first.
fn start_both(f: &mut TwoNamespaces) {
    f.start(1, "sw1", "v1");
    f.start(0, "sw0", "v0");
}

fn assert_clean(code: Option<i32>, text: &str, v: &serde_json::Value) {
    assert_eq!(code, Some(0), "{text}");
    let i = &v["integrity"];
    for key in [
        "lost",
        "duplicated",
        "reordered",
        "completion_timeouts",
        "data_mismatches",
    ] {
        assert_eq!(i[key], 0, "{key}: {text}");
    }
    // Writes one way, DMA and completions the other: thousands of TLPs.
    assert!(i["sent"].as_u64().unwrap() > 1_000, "{text}");
    assert_eq!(i["sent"], i["delivered"], "{text}");
}

#[test]
fn tracked_traffic_crosses_two_node_processes_whole() {
    let Some(mut f) = TwoNamespaces::new("d") else {
        return;
    };
    start_both(&mut f);
    let outputs = f.wait(Duration::from_secs(60));
    let (code, text, v) = f.merged();
    assert_clean(code, &text, &v);
    // Each node's own report counts only its side: the hosts' writes at
    // sw0, the device's DMA at sw1.
    let (a, b) = (f.node_report("sw0"), f.node_report("sw1"));
    assert!(
        a["traffic"]["host_writes"].as_u64().unwrap() > 0,
        "{outputs:?}"
    );
    assert_eq!(a["traffic"]["device_dma_writes"], 0);
    assert_eq!(b["traffic"]["host_writes"], 0);
    assert!(b["traffic"]["device_dma_writes"].as_u64().unwrap() > 0);
}

#[test]
fn a_link_taken_down_for_200_ms_costs_replays_not_tlps() {
    let Some(mut f) = TwoNamespaces::new("cut") else {
        return;
    };
    start_both(&mut f);
    std::thread::sleep(Duration::from_millis(400));
    let ns = f.names[0].clone();
    f.ip(&["-n", &ns, "link", "set", "dev", "v0", "down"]);
    std::thread::sleep(Duration::from_millis(200));
    f.ip(&["-n", &ns, "link", "set", "dev", "v0", "up"]);
    f.wait(Duration::from_secs(60));
    let (code, text, v) = f.merged();
    assert_clean(code, &text, &v);
    // What the cut cost is in the links' replays (with polling threads
    // sharing CPUs, replays come without a cut too).
    let replayed: u64 = ["sw0", "sw1"]
        .iter()
        .map(|n| f.node_report(n)["frames"]["replayed"].as_u64().unwrap())
        .sum();
    assert!(replayed > 0);
}

/// Opens an AF_PACKET port on `iface` in namespace `ns` (the socket stays
/// in the namespace it was made in).
fn port_in(ns: &str, iface: &str) -> pmd::af_packet::AfPacketPort {
    let path = format!("/run/netns/{ns}");
    let iface = iface.to_string();
    std::thread::spawn(move || {
        use std::os::fd::AsRawFd;
        let file = std::fs::File::open(&path).expect("the namespace's file");
        // SAFETY: setns on a namespace file descriptor this thread opened;
        // it changes only this thread's namespace.
        let entered = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(entered, 0, "setns {path}");
        let config = pmd::af_packet::AfPacketConfig::new(&iface, fabric::frame::ETHERTYPE);
        pmd::af_packet::AfPacketPort::open(&config, pmd::FramePool::new(1024, 2048))
            .unwrap_or_else(|e| panic!("{e}"))
    })
    .join()
    .expect("the opening thread")
}

#[test]
fn garbage_damaged_frames_and_another_fabrics_frames_are_counted_and_ignored() {
    use pmd::Port;
    let Some(mut f) = TwoNamespaces::new("bad") else {
        return;
    };
    start_both(&mut f);
    // Sent beside sw1's own port on the same interface: they reach sw0.
    let mut hostile = port_in(&f.names[1].clone(), "v1");
    let pool = pmd::FramePool::new(1024, 2048);
    let mut frames = Vec::new();
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut random = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    // 100 of random bytes behind the fabric's EtherType.
    for _ in 0..100 {
        let len = 60 + (random() % 200) as usize;
        let mut bytes: Vec<u8> = (0..len).map(|_| random() as u8).collect();
        bytes[12..14].copy_from_slice(&fabric::frame::ETHERTYPE.to_be_bytes());
        let mut frame = pool.alloc().unwrap();
        frame.fill(&bytes);
        frames.push(frame);
    }
    // 100 of another fabric on the same segment: well formed, from node 7
    // to node 0, acknowledging everything and carrying a TLP.
    let config = fabric::LinkConfig {
        local_node: 7,
        remote_node: 0,
        ..fabric::LinkConfig::default()
    };
    let mut other = fabric::Link::new(config).unwrap();
    let mut tlp = [0u8; 64];
    let access = tlp::build::MemAccess::dwords(0x1000, 4);
    let n = tlp::build::memory_write(&mut tlp, tlp::Bdf(0x0100), 0, access, &[7; 16]).unwrap();
    let mut out = [0u8; 1514];
    while frames.len() < 200 {
        let _ = other.try_send(&tlp[..n], 0);
        other.flush();
        while let Some(len) = other.poll_transmit(0, &mut out) {
            let mut frame = pool.alloc().unwrap();
            frame.fill(&out[..len]);
            frames.push(frame);
        }
        other = fabric::Link::new(config).unwrap();
    }
    // One of those damaged: a bad CRC.
    let mut damaged = pool.alloc().unwrap();
    damaged.fill(&frames[150][..]);
    let last = damaged.len() - 1;
    damaged[last] ^= 0xff;
    frames.push(damaged);
    // Sent again every 100 ms until the nodes are done: some batches
    // reach sw0 whenever its port opened.
    let batch: Vec<Vec<u8>> = frames.iter().map(|f| f.to_vec()).collect();
    drop(frames);
    let mut batches = 0;
    while f
        .children
        .iter_mut()
        .any(|c| c.try_wait().unwrap().is_none())
    {
        let mut frames: Vec<pmd::Frame> = batch
            .iter()
            .map(|b| {
                let mut frame = pool.alloc().unwrap();
                frame.fill(b);
                frame
            })
            .collect();
        while !frames.is_empty() {
            hostile.tx_burst(0, &mut frames);
        }
        batches += 1;
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(batches > 3);
    drop(hostile);
    f.wait(Duration::from_secs(60));
    let (code, text, v) = f.merged();
    assert_clean(code, &text, &v);
    let sw0 = f.node_report("sw0");
    let frames = &sw0["frames"];
    assert!(
        frames["malformed"].as_u64().unwrap() >= 101,
        "random bytes and the bad CRC: {frames} (sw1: {})",
        f.node_report("sw1")["frames"]
    );
    assert!(frames["foreign"].as_u64().unwrap() >= 100, "{frames}");
}

#[test]
fn a_killed_node_is_marked_down_and_requests_to_its_device_end_as_counted_timeouts() {
    let Some(mut f) = TwoNamespaces::new("kill") else {
        return;
    };
    f.start_manager();
    // The device's node first; it is killed long before its run would end.
    f.start_with(1, "sw1", "v1", &["--duration", "20s", "--manager", MANAGER]);
    f.start_with(0, "sw0", "v0", &["--duration", "3s", "--manager", MANAGER]);
    let up = |s: &serde_json::Value| {
        s["nodes"][0]["state"] == "up"
            && s["nodes"][1]["state"] == "up"
            && s["links"][0]["state"] == "up"
    };
    let s = f.status_until(Duration::from_secs(20), up);
    assert!(up(&s), "both nodes and their link up: {s:#}");
    let mut sw1 = f.children.remove(0);
    sw1.kill().unwrap();
    sw1.wait().unwrap();
    // Three heartbeats of 100 ms missed: down, and the link with it.
    let down = |s: &serde_json::Value| s["nodes"][1]["state"] == "down";
    let s = f.status_until(Duration::from_secs(10), down);
    assert!(down(&s), "{s:#}");
    assert_eq!(s["nodes"][0]["state"], "up", "sw0 forwards on: {s:#}");
    assert_eq!(s["links"][0]["state"], "down", "{s:#}");
    for b in s["bindings"].as_array().unwrap() {
        assert_eq!(b["unreachable"], "node sw1 is not up", "{s:#}");
    }
    // The hosts' reads to the device end as completion timeouts (5 s),
    // counted per binding while sw0 still runs.
    let timed_out = |s: &serde_json::Value| {
        s["bindings"]
            .as_array()
            .unwrap()
            .iter()
            .all(|b| b["completion_timeouts"].as_u64().unwrap() > 0)
    };
    let s = f.status_until(Duration::from_secs(30), timed_out);
    assert!(timed_out(&s), "{s:#}");
    let reported: u64 = s["bindings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["completion_timeouts"].as_u64().unwrap())
        .sum();
    let outputs = f.wait(Duration::from_secs(60));
    assert!(
        outputs[0].contains("manager: registered 1 time(s)"),
        "{outputs:?}"
    );
    // sw0's own report counts them too: timeouts, not silence.
    let sw0 = f.node_report("sw0");
    let timeouts = sw0["integrity"]["completion_timeouts"].as_u64().unwrap();
    assert!(timeouts >= reported, "{timeouts} < {reported}: {sw0:#}");
}
