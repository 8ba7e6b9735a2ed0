//! Fabrics of node processes: `tlpfabric node` for each switch node in a
//! network namespace of its own, each link a veth pair between two of
//! them, native AF_PACKET ports at both ends. In the default topology
//! (sw0 with both hosts, sw1 with the device), tracked traffic crosses the
//! processes; `tlpfabric report` merges the nodes' reports, and the merge
//! must be clean: every write delivered once and in order, every read
//! answered. A link taken down for 200 ms in the middle of it costs
//! replays, not TLPs; garbage, damaged frames and another fabric's frames
//! sent into a node's port are counted and ignored. With the fabric
//! manager: a node killed (in `configs/star.toml`, three nodes) is marked
//! down, the others forward on, and the requests to its device end as
//! completion timeouts, counted per binding with the reason; the manager
//! killed and restarted loses nothing and learns the nodes again.
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

/// A fabric of node processes: one network namespace per node of a
/// topology, each link a veth pair between two of them (`l{i}a` at the
/// link's first end, `l{i}b` at its second). Processes are killed and the
/// namespaces deleted on drop.
struct Namespaces {
    /// The topology file (`None`: the built-in default).
    config: Option<PathBuf>,
    /// Node names, and each node's namespace.
    nodes: Vec<String>,
    names: Vec<String>,
    /// Per node, its `--port LINK=IFACE` arguments.
    ports: Vec<Vec<String>>,
    /// The node processes, by node name.
    children: Vec<(String, Child)>,
    /// The fabric manager, if one runs.
    manager: Option<Child>,
    dir: PathBuf,
    _turn: std::sync::MutexGuard<'static, ()>,
}

/// One fabric at a time: each runs four polling threads, and a test
/// machine has two CPUs.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// `configs/NAME.toml`.
fn shipped(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("../../configs/{name}.toml"))
}

impl Namespaces {
    /// The nodes of `config` (the default topology if `None`).
    fn new(tag: &str, config: Option<PathBuf>) -> Option<Namespaces> {
        let turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        let t = fabric::Topology::load(&config.clone().unwrap_or_else(|| shipped("default")))
            .expect("a shipped topology");
        let pid = std::process::id();
        let names: Vec<String> = (0..t.nodes.len())
            .map(|i| format!("tlpf-{tag}{i}-{pid}"))
            .collect();
        let mut made = true;
        let mut created = Vec::new();
        for n in &names {
            let ok = Command::new("ip")
                .args(["netns", "add", n])
                .status()
                .is_ok_and(|s| s.success());
            if ok {
                created.push(n.clone());
            }
            made &= ok;
        }
        let dir = std::env::temp_dir().join(format!("tlpf-{tag}-{pid}"));
        let mut fabric = Namespaces {
            config,
            nodes: t.nodes.iter().map(|n| n.name.clone()).collect(),
            names: created,
            ports: vec![Vec::new(); t.nodes.len()],
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
        for (i, (a, b)) in t.links.iter().enumerate() {
            let (na, nb) = (fabric.names[a.node].clone(), fabric.names[b.node].clone());
            let (ia, ib) = (format!("l{i}a"), format!("l{i}b"));
            fabric.ip(&[
                "link", "add", "name", &ia, "netns", &na, "type", "veth", "peer", "name", &ib,
                "netns", &nb,
            ]);
            fabric.ip(&["-n", &na, "link", "set", "dev", &ia, "up"]);
            fabric.ip(&["-n", &nb, "link", "set", "dev", &ib, "up"]);
            fabric.ports[a.node].push(format!("link{i}={ia}"));
            fabric.ports[b.node].push(format!("link{i}={ib}"));
        }
        std::fs::create_dir_all(&fabric.dir).unwrap();
        Some(fabric)
    }

    fn ip(&self, args: &[&str]) {
        let status = Command::new("ip").args(args).status().expect("ip runs");
        assert!(status.success(), "ip {args:?}");
    }

    /// The namespace of node `node`.
    fn ns(&self, node: &str) -> String {
        let i = self.nodes.iter().position(|n| n == node).expect("a node");
        self.names[i].clone()
    }

    fn report(&self, node: &str) -> PathBuf {
        self.dir.join(format!("{node}.json"))
    }

    /// Starts `tlpfabric node` for `node` in its namespace, for 2 s.
    fn start(&mut self, node: &str) {
        self.start_with(node, &["--duration", "2s"]);
    }

    /// Starts `tlpfabric node` with `extra` arguments; with a manager
    /// running, the node reports to it.
    fn start_with(&mut self, node: &str, extra: &[&str]) {
        let i = self.nodes.iter().position(|n| n == node).expect("a node");
        self.start_on(node, &self.ports[i].clone(), extra);
    }

    /// Starts `tlpfabric node` with its links on `ports` (`LINK=PORT`).
    fn start_on(&mut self, node: &str, ports: &[String], extra: &[&str]) {
        let i = self.nodes.iter().position(|n| n == node).expect("a node");
        let json = self.report(node);
        let mut command = Command::new("ip");
        command.args([
            "netns",
            "exec",
            &self.names[i],
            bin(),
            "node",
            "--node",
            node,
        ]);
        if let Some(c) = &self.config {
            command.arg("--config").arg(c);
        }
        for p in ports {
            command.args(["--port", p]);
        }
        if self.manager.is_some() {
            command.args(["--manager", &manager_for(i)]);
        }
        command.args(extra);
        if !extra.contains(&"--completion-timeout") {
            // Four polling threads share the two CPUs of a test machine:
            // a read may wait for its turn of the CPU.
            command.args(["--completion-timeout", "5s"]);
        }
        let child = command
            .args(["--rate", "20000", "--linger", "2s", "--json"])
            .arg(&json)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the node starts");
        self.children.push((node.to_string(), child));
    }

    /// Kills node `node`'s process (SIGKILL) and reaps it.
    fn kill(&mut self, node: &str) {
        let i = self
            .children
            .iter()
            .position(|(n, _)| n == node)
            .expect("a running node");
        let (_, mut child) = self.children.remove(i);
        child.kill().unwrap();
        child.wait().unwrap();
    }

    /// Waits for every node to exit, each within `limit`; returns their
    /// outputs.
    fn wait(&mut self, limit: Duration) -> Vec<String> {
        let deadline = Instant::now() + limit;
        let mut outputs = Vec::new();
        for (_, child) in &mut self.children {
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

    /// Whether any node still runs.
    fn running(&mut self) -> bool {
        self.children
            .iter_mut()
            .any(|(_, c)| c.try_wait().unwrap().is_none())
    }

    /// `tlpfabric report` of every node: its exit status and output.
    fn merged(&self) -> (Option<i32>, String, serde_json::Value) {
        let json = self.dir.join("fabric.json");
        let out = Command::new(bin())
            .arg("report")
            .args(self.nodes.iter().map(|n| self.report(n)))
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

    /// Starts the manager in the first node's namespace, with a control
    /// network beside the fabric's links: a veth pair `m{i}a` (10.99.i.1)
    /// – `m{i}b` (10.99.i.2) from it to each other node's namespace. Nodes
    /// started after this report to it.
    fn start_manager(&mut self) {
        let home = self.names[0].clone();
        // The first node reaches the manager at its own address: over
        // loopback.
        self.ip(&["-n", &home, "link", "set", "dev", "lo", "up"]);
        for i in 1..self.names.len() {
            let other = self.names[i].clone();
            let (a, b) = (format!("m{i}a"), format!("m{i}b"));
            self.ip(&[
                "link", "add", "name", &a, "netns", &home, "type", "veth", "peer", "name", &b,
                "netns", &other,
            ]);
            self.ip(&[
                "-n",
                &home,
                "addr",
                "add",
                &format!("10.99.{i}.1/24"),
                "dev",
                &a,
            ]);
            self.ip(&[
                "-n",
                &other,
                "addr",
                "add",
                &format!("10.99.{i}.2/24"),
                "dev",
                &b,
            ]);
            self.ip(&["-n", &home, "link", "set", "dev", &a, "up"]);
            self.ip(&["-n", &other, "link", "set", "dev", &b, "up"]);
        }
        self.restart_manager();
    }

    /// Starts the manager (again) in the first node's namespace.
    fn restart_manager(&mut self) {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &self.names[0], bin(), "manager"]);
        if let Some(c) = &self.config {
            command.arg("--config").arg(c);
        }
        let child = command
            // Every address of the namespace, which only the control
            // network reaches.
            .args([
                "--listen",
                "0.0.0.0:7800",
                "--heartbeat",
                "100ms",
                "--for",
                "120s",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the manager starts");
        self.manager = Some(child);
    }

    /// Kills the manager (SIGKILL).
    fn kill_manager(&mut self) {
        let mut m = self.manager.take().expect("a manager");
        m.kill().unwrap();
        m.wait().unwrap();
    }

    /// `tlpfabric status --json`, asked from the last node's namespace
    /// (across the control network), once it answers.
    fn status(&self) -> serde_json::Value {
        let last = self.names.len() - 1;
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let out = Command::new("ip")
                .args(["netns", "exec", &self.names[last], bin(), "status"])
                .args(["--manager", &manager_for(last), "--json"])
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

/// The manager's address as node `i`'s namespace reaches it.
fn manager_for(i: usize) -> String {
    if i == 0 {
        "127.0.0.1:7800".into()
    } else {
        format!("10.99.{i}.1:7800")
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

impl Drop for Namespaces {
    fn drop(&mut self) {
        let children = self.children.iter_mut().map(|(_, c)| c);
        for child in children.chain(&mut self.manager) {
            let _ = child.kill();
            let _ = child.wait();
        }
        for n in &self.names {
            let _ = Command::new("ip").args(["netns", "del", n]).status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Every node started, the devices' first (the default topology).
fn start_both(f: &mut Namespaces) {
    f.start("sw1");
    f.start("sw0");
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
    let Some(mut f) = Namespaces::new("d", None) else {
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
    // The round trips of sw0's hosts' reads, every one of them, in the
    // fabric's histogram.
    let count = |v: &serde_json::Value| v["round_trip_us"]["count"].as_u64().unwrap();
    assert!(count(&a) > 0);
    assert_eq!(count(&v), count(&a) + count(&b), "{v}");
}

#[test]
fn a_link_taken_down_for_200_ms_costs_replays_not_tlps() {
    let Some(mut f) = Namespaces::new("cut", None) else {
        return;
    };
    start_both(&mut f);
    std::thread::sleep(Duration::from_millis(400));
    let ns = f.ns("sw0");
    f.ip(&["-n", &ns, "link", "set", "dev", "l0a", "down"]);
    std::thread::sleep(Duration::from_millis(200));
    f.ip(&["-n", &ns, "link", "set", "dev", "l0a", "up"]);
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

/// sw0 on DPDK (its `net_af_packet` driver on the veth end), sw1 on the
/// native AF_PACKET port: the same frames and link protocol either way, so
/// the merged report is clean.
#[cfg(feature = "dpdk")]
#[test]
fn a_node_on_dpdk_and_a_node_on_the_native_port_carry_the_fabric_whole() {
    let Some(mut f) = Namespaces::new("dpdk", None) else {
        return;
    };
    f.start("sw1");
    let eal = format!(
        "--no-huge --no-pci -m 512 --file-prefix=tlpf-dist-{} --vdev=net_af_packet0,iface=l0a \
         --log-level=lib.eal:error --no-telemetry",
        std::process::id()
    );
    f.start_on(
        "sw0",
        &["link0=net_af_packet0".to_string()],
        &["--duration", "2s", "--pmd", "dpdk", "--eal", &eal],
    );
    let outputs = f.wait(Duration::from_secs(60));
    let (code, text, v) = f.merged();
    assert_clean(code, &text, &v);
    assert!(
        outputs[0].contains("AF_PACKET ports to other nodes"),
        "{outputs:?}"
    );
    assert!(outputs[1].contains("DPDK ethdevs"), "{outputs:?}");
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
    let Some(mut f) = Namespaces::new("bad", None) else {
        return;
    };
    start_both(&mut f);
    // Sent beside sw1's own port on the same interface: they reach sw0.
    let mut hostile = port_in(&f.ns("sw1"), "l0b");
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
    while f.running() {
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
fn a_killed_node_is_marked_down_and_the_other_nodes_forward_on() {
    let Some(mut f) = Namespaces::new("kill", Some(shipped("star"))) else {
        return;
    };
    f.start_manager();
    // sw2 (nic1, binding 1's device) is killed long before its run ends.
    // Reads time out after 1 s of the hosts' own time: six polling
    // threads share two CPUs, and a host's clock stops while its core
    // does not run.
    f.start_with("sw2", &["--duration", "30s"]);
    let run = ["--duration", "6s", "--completion-timeout", "1s"];
    f.start_with("sw1", &run);
    f.start_with("sw0", &run);
    let up = |s: &serde_json::Value| {
        (0..3).all(|i| s["nodes"][i]["state"] == "up")
            && (0..2).all(|i| s["links"][i]["state"] == "up")
    };
    let s = f.status_until(Duration::from_secs(20), up);
    assert!(up(&s), "every node and link up: {s:#}");
    f.kill("sw2");
    // Three heartbeats of 100 ms missed: down, and its link with it.
    let down = |s: &serde_json::Value| s["nodes"][2]["state"] == "down";
    let s = f.status_until(Duration::from_secs(10), down);
    assert!(down(&s), "{s:#}");
    assert_eq!(s["nodes"][0]["state"], "up", "{s:#}");
    assert_eq!(s["nodes"][1]["state"], "up", "{s:#}");
    assert_eq!(s["links"][1]["state"], "down", "{s:#}");
    assert_eq!(s["links"][0]["state"], "up", "{s:#}");
    assert_eq!(s["bindings"][1]["unreachable"], "node sw2 is not up");
    assert_eq!(s["bindings"][0]["unreachable"], "");
    // Binding 1's reads end as completion timeouts, counted while sw0
    // still runs; binding 0 goes on through sw0 and sw1 untouched.
    let sent = |s: &serde_json::Value, b: usize| s["bindings"][b]["requests_sent"].as_u64();
    let sent_then = sent(&s, 0).unwrap();
    // By now host-b has filled what its credits allow toward sw2.
    let blocked_at = sent(&s, 1);
    let timed_out =
        |s: &serde_json::Value| s["bindings"][1]["completion_timeouts"].as_u64() > Some(0);
    let s = f.status_until(Duration::from_secs(30), timed_out);
    assert!(timed_out(&s), "{s:#}");
    assert_eq!(s["bindings"][0]["completion_timeouts"], 0, "{s:#}");
    assert!(
        s["bindings"][0]["requests_sent"].as_u64().unwrap() > sent_then,
        "binding 0 still sends: {s:#}"
    );
    // Nor is host-b hung on credits its dead device's node will never
    // return: sw0 declared the link down, dropped what waited for it, and
    // binding 1's VM goes on issuing (into the void, each read counted).
    let issuing = |s: &serde_json::Value| sent(s, 1) > blocked_at;
    let s = f.status_until(Duration::from_secs(10), issuing);
    assert!(issuing(&s), "{s:#}");
    assert_eq!(s["links"][1]["state"], "down", "{s:#}");
    let reported = s["bindings"][1]["completion_timeouts"].as_u64().unwrap();
    let outputs = f.wait(Duration::from_secs(60));
    assert!(
        outputs
            .iter()
            .all(|o| o.contains("manager: registered 1 time(s)")),
        "{outputs:?}"
    );
    // sw0's own report counts them too, and what it dropped toward the
    // link it declared down: nothing silent.
    let sw0 = f.node_report("sw0");
    let timeouts = sw0["integrity"]["completion_timeouts"].as_u64().unwrap();
    assert!(timeouts >= reported, "{timeouts} < {reported}: {sw0:#}");
    assert!(
        sw0["frames"]["link_down_dropped"].as_u64().unwrap() > 0,
        "{sw0:#}"
    );
}

#[test]
fn nodes_forward_on_while_the_manager_is_killed_and_register_again_when_it_returns() {
    let Some(mut f) = Namespaces::new("mgr", None) else {
        return;
    };
    f.start_manager();
    f.start_with("sw1", &["--duration", "4s"]);
    f.start_with("sw0", &["--duration", "4s"]);
    let up =
        |s: &serde_json::Value| s["nodes"][0]["state"] == "up" && s["nodes"][1]["state"] == "up";
    let s = f.status_until(Duration::from_secs(20), up);
    assert!(up(&s), "{s:#}");
    // Gone for a second in the middle of the traffic.
    f.kill_manager();
    std::thread::sleep(Duration::from_secs(1));
    f.restart_manager();
    // The new manager knows no node until each registers again.
    let s = f.status_until(Duration::from_secs(20), up);
    assert!(up(&s), "both nodes registered again: {s:#}");
    let outputs = f.wait(Duration::from_secs(60));
    for o in &outputs {
        assert!(o.contains("manager: registered 2 time(s)"), "{o}");
    }
    // The traffic never depended on the manager: nothing lost.
    let (code, text, v) = f.merged();
    assert_clean(code, &text, &v);
}

/// Frames sw1 sent sw0, captured on the wire beside sw0 and sent to it
/// again from beside sw1 while the traffic runs: each is a frame sw0's link
/// has already received, discarded as a duplicate (its stale ACK and
/// credits move nothing back). The fabric stays whole.
#[test]
fn frames_captured_on_the_wire_and_sent_again_are_discarded_as_duplicates() {
    use pmd::Port;
    let Some(mut f) = Namespaces::new("replay", None) else {
        return;
    };
    start_both(&mut f);
    let mut tap = port_in(&f.ns("sw0"), "l0a");
    let mut hostile = port_in(&f.ns("sw1"), "l0b");
    // Data frames only (a TLP count above 0): updates carry no sequence.
    let mut captured: Vec<Vec<u8>> = Vec::new();
    let mut rx = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while captured.len() < 300 && Instant::now() < deadline {
        tap.rx_burst(0, &mut rx, 32);
        captured.extend(
            rx.drain(..)
                .filter(|fr| fr.len() > 18 && u16::from_be_bytes([fr[16], fr[17]]) > 0)
                .map(|fr| fr.to_vec()),
        );
    }
    assert!(captured.len() >= 100, "{} data frames seen", captured.len());
    drop(tap);
    // The injector learns sw0's address from what sw0 sends.
    while hostile.peer() == [0xff; 6] && Instant::now() < deadline {
        hostile.rx_burst(0, &mut rx, 32);
        rx.clear();
    }
    let pool = pmd::FramePool::new(1024, 2048);
    let mut injected = 0;
    while f.running() && injected < 3 * captured.len() {
        let mut frames: Vec<pmd::Frame> = captured
            .iter()
            .skip(injected % captured.len())
            .take(32)
            .map(|b| {
                let mut frame = pool.alloc().unwrap();
                frame.fill(b);
                frame
            })
            .collect();
        let n = frames.len();
        while !frames.is_empty() {
            hostile.tx_burst(0, &mut frames);
        }
        injected += n;
        // Drained, so the kernel keeps the ring moving.
        hostile.rx_burst(0, &mut rx, 64);
        rx.clear();
        std::thread::sleep(Duration::from_millis(5));
    }
    drop(hostile);
    f.wait(Duration::from_secs(60));
    let (code, text, v) = f.merged();
    assert_clean(code, &text, &v);
    let frames = &f.node_report("sw0")["frames"];
    assert!(
        frames["duplicates"].as_u64().unwrap() >= (injected / 2) as u64,
        "{injected} injected: {frames}"
    );
}
