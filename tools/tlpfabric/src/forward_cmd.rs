//! `tlpfabric forward`: one node's forwarding pipeline alone, between two
//! ports, both directions, for benchmarking (like testpmd's io mode).

use crate::Pmd;
use crate::{EXIT_REJECTED, EXIT_USAGE};
use clap::Args;
use fabric::frame::{Flags, FrameHeader, FrameWriter, Integrity, DEFAULT_MTU};
use fabric::routing::epoch;
use fabric::{NodeTables, Topology};
use lcore::{FrameSettings, IoTask, NodeTask, Task};
use pmd::capture::Capture;
use pmd::{DeviceStats, FramePool, NullPort, Port, PortStats, TracePort};
use serde_json::json;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tlp::build::{memory_write, MemAccess};
use tlp::Bdf;

/// What `forward` does with each frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Mode {
    /// The node's whole pipeline.
    Pipeline,
    /// Frames passed from port to port unexamined, like testpmd's io mode.
    Io,
}

#[derive(Debug, Args)]
pub(crate) struct ForwardArgs {
    /// Ports: `ring` (the embedded default: null ports whose received frames
    /// are filled from templates), `dpdk`, or `af-packet` (native AF_PACKET
    /// ports on two Linux interfaces, `--ports WEST,EAST`).
    #[arg(long, value_enum, default_value_t = Pmd::Ring)]
    pmd: Pmd,
    /// How long to run: `5s`, `500ms`, `1m`.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    duration: Duration,
    /// TLPs in each received frame.
    #[arg(long, default_value_t = 1)]
    tlps_per_frame: usize,
    /// Payload bytes of each TLP (a memory write), a multiple of 4.
    #[arg(long, default_value_t = 64)]
    payload: usize,
    /// How frames are checked: `crc32c` (each frame's own CRC-32C, computed
    /// and verified by the pipeline) or `fcs` (no CRC-32C: the ports'
    /// Ethernet FCS stands for it; see docs/frame.md).
    #[arg(long, default_value = "crc32c", value_parser = ["crc32c", "fcs"])]
    integrity: String,
    /// EAL arguments for `--pmd dpdk` (default: two net_null vdevs, no
    /// hugepages, no PCI, a file prefix of this process's own).
    #[arg(long, allow_hyphen_values = true)]
    eal: Option<String>,
    /// `pipeline` (the default): the node's whole pipeline. `io`: frames
    /// passed from each port to the other unexamined and unfilled, over the
    /// same ports and poll loop, like testpmd's io mode: what the ports and
    /// the loop cost without the pipeline.
    #[arg(long, value_enum, default_value_t = Mode::Pipeline)]
    mode: Mode,
    /// The two ethdevs for `--pmd dpdk`, west first (default:
    /// `net_null0,net_null1`); the two interfaces for `--pmd af-packet`.
    #[arg(long)]
    ports: Option<String>,
    /// Cores to forward on: one pipeline per core, each with its own pair
    /// of ports (ring) or its own queue of each port (DPDK), up to the CPUs
    /// this process may run on.
    #[arg(long, default_value_t = 1)]
    lcores: usize,
    /// For `--pmd dpdk` or `af-packet` on ports joined to each other (a
    /// cable between two NIC ports, a veth pair): send this many bursts
    /// of 32 template frames out of each port first, which the forwarder
    /// then keeps going round, like testpmd's `--tx-first`. At most 32.
    #[arg(long, default_value_t = 0)]
    tx_first: u32,
    /// Write the frames this benchmark receives to pcap files in this
    /// directory and exit, for a traffic generator to replay into the ports
    /// of a forwarder under test: `west-port-rx.pcap` (host writes to the
    /// device's BAR, for the west port) and `east-port-rx.pcap` (the
    /// device's DMA writes, for the east port).
    #[arg(long)]
    write_frames: Option<PathBuf>,
    /// Also write the results as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Capture what one port receives and sends to this pcap file
    /// (nanosecond timestamps, frames cut to 2048 bytes), off the forwarding
    /// core: frames are copied to a ring a writer thread drains, and when
    /// it falls behind the capture misses frames (counted), never the
    /// forwarder.
    #[arg(long)]
    pcap: Option<PathBuf>,
    /// The port `--pcap` captures: `west` or `east` (of the first core).
    #[arg(long, default_value = "west", value_parser = ["west", "east"])]
    pcap_port: String,
}

/// Spare capture buffers per tap, and the bytes each keeps of a frame.
const CAPTURE_BUFFERS: usize = 8192;
const CAPTURE_SNAPLEN: usize = 2048;

/// Writes `frame` to `dir/name` as a one-frame pcap capture.
fn write_pcap(dir: &Path, name: &str, frame: &[u8]) -> Result<PathBuf, String> {
    let path = dir.join(name);
    let fail = |e: std::io::Error| format!("--write-frames: {}: cannot write: {e}", path.display());
    let file = std::fs::File::create(&path).map_err(fail)?;
    let mut pcap =
        pmd::pcap::PcapWriter::new(std::io::BufWriter::new(file), 65_535).map_err(fail)?;
    pcap.write(0, frame).map_err(fail)?;
    pcap.finish().map_err(fail)?;
    Ok(path)
}

/// Frames in one burst of `--tx-first`, as testpmd's.
const TX_FIRST_BURST: usize = 32;
/// The most bursts `--tx-first` may send per port and core: what the DPDK
/// pool can spare beside the receive descriptors.
const TX_FIRST_MAX: u32 = 32;

/// `5s`, `250ms`, `50us`, `2m`, `1.5s`, or a plain number of seconds.
pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    let (number, unit) = match s.find(|c: char| c.is_alphabetic()) {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, "s"),
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("expected a duration like 5s, 500ms or 1m, found {s:?}"))?;
    let scale = match unit {
        "ns" => 1e-9,
        "us" | "µs" => 1e-6,
        "ms" => 1e-3,
        "s" => 1.0,
        "m" => 60.0,
        _ => {
            return Err(format!(
                "expected a unit of ns, us, ms, s or m, found {unit:?} in {s:?}"
            ))
        }
    };
    if !(value.is_finite() && value > 0.0) {
        return Err(format!("expected a positive duration, found {s:?}"));
    }
    let secs = value * scale;
    if secs > MAX_DURATION_S {
        return Err(format!(
            "expected a duration of at most {} days, found {s:?}",
            MAX_DURATION_S / 86_400.0
        ));
    }
    match Duration::try_from_secs_f64(secs) {
        Ok(d) if d >= Duration::from_nanos(1) => Ok(d),
        _ => Err(format!(
            "expected a duration of at least 1 ns, found {s:?} (rounds to 0 ns)"
        )),
    }
}

/// A duration as [`parse_duration`] reads it, or nothing at all: `0`,
/// `0s`, `0ms`.
pub(crate) fn parse_duration_or_zero(s: &str) -> Result<Duration, String> {
    let number = s.trim_end_matches(|c: char| c.is_alphabetic());
    match number.parse::<f64>() {
        Ok(0.0) => parse_duration(&format!("1{}", &s[number.len()..])).map(|_| Duration::ZERO),
        _ => parse_duration(s),
    }
}

/// The longest duration any option takes: a year, far past any run.
const MAX_DURATION_S: f64 = 365.0 * 86_400.0;

const TOPOLOGY: &str = include_str!("../../../configs/forward.toml");

/// A frame of `n` memory writes of `payload` bytes each, from `requester`
/// to consecutive addresses from `base`.
fn template(
    requester: Bdf,
    base: u64,
    n: usize,
    payload: usize,
    integrity: Integrity,
) -> Result<Vec<u8>, String> {
    let mut frame = vec![0u8; 14 + DEFAULT_MTU];
    let header = FrameHeader {
        flags: Flags(match integrity {
            Integrity::Fcs => Flags::FCS,
            Integrity::Crc32c => 0,
        }),
        ..FrameHeader::default()
    };
    let mut w = FrameWriter::new(&mut frame, &header, DEFAULT_MTU).map_err(|e| e.to_string())?;
    let data = vec![0x5a; payload];
    let mut tlp = vec![0u8; 16 + payload];
    for i in 0..n {
        let access = MemAccess::dwords(base + (i * payload) as u64, (payload / 4) as u16);
        let len = memory_write(&mut tlp, requester, 0, access, &data).map_err(|e| e.to_string())?;
        if w.push(&tlp[..len]).is_err() {
            return Err(format!(
                "{n} TLPs of {payload} bytes do not fit a {DEFAULT_MTU}-byte frame (at most {i})"
            ));
        }
    }
    let len = w.finish();
    frame.truncate(len);
    Ok(frame)
}

type Ports = Vec<Box<dyn Port + Send>>;

/// What a forwarding core ran, handed back when it is done.
enum Forwarder {
    Pipeline(Box<NodeTask<Box<dyn Port + Send>>>),
    Io(IoTask<Box<dyn Port + Send>>),
}

impl Forwarder {
    fn ports(&self) -> &[Box<dyn Port + Send>] {
        match self {
            Forwarder::Pipeline(t) => t.ports(),
            Forwarder::Io(t) => t.ports(),
        }
    }

    /// TLPs that came in on `port` and were forwarded (io mode looks at
    /// none).
    fn forwarded_from(&self, port: usize) -> u64 {
        match self {
            Forwarder::Pipeline(t) => t.node_state().counters.get(port).map_or(0, |c| c.forwarded),
            Forwarder::Io(_) => 0,
        }
    }

    /// Frames received that were not TLP frames or failed their checks
    /// (io mode looks at none).
    fn malformed(&self) -> u64 {
        match self {
            Forwarder::Pipeline(t) => t.stats().frames_malformed,
            Forwarder::Io(_) => 0,
        }
    }
}

/// What one forwarding core polls: its west and east port (or queue) and
/// the pool its frames come from.
type Lane = (Ports, FramePool);

/// Null ports whose frames are filled from the templates, a pair and a
/// pool per core.
fn ring_ports(east: Vec<u8>, west: Vec<u8>, lcores: usize) -> (Vec<Lane>, String) {
    let lanes = (0..lcores)
        .map(|_| {
            let pool = FramePool::new(4096, 2048);
            // Port 0 leads west: what arrives there goes east, and the other way.
            let ports: Ports = vec![
                Box::new(NullPort::new("west", pool.clone(), vec![east.clone()])),
                Box::new(NullPort::new("east", pool.clone(), vec![west.clone()])),
            ];
            (ports, pool)
        })
        .collect();
    let what = if east.is_empty() {
        "ring ports (null ports, received frames left empty)"
    } else {
        "ring ports (null ports, received frames filled from templates)"
    }
    .to_string();
    (lanes, what)
}

#[cfg(feature = "dpdk")]
fn dpdk_ports(
    args: &ForwardArgs,
    east: Vec<u8>,
    west: Vec<u8>,
) -> Result<(Vec<Lane>, String), String> {
    use pmd::dpdk::{DpdkPort, Mempool};
    use pmd::FillPort;
    let ports = args.ports.as_deref().unwrap_or("net_null0,net_null1");
    let names: Vec<&str> = ports.split(',').map(str::trim).collect();
    let [w, e] = names[..] else {
        return Err(format!(
            "--ports: expected two ethdevs, west,east, found {ports:?}"
        ));
    };
    crate::init_eal(
        args.eal.as_deref(),
        "forward",
        "--vdev=net_null0 --vdev=net_null1",
    )?;
    // Receive descriptors of both ports' queues, transmit queues, caches
    // and bursts in flight.
    let queues = args.lcores as u16;
    let count = 8192 * u32::from(queues) - 1;
    let mempool = Mempool::new("forward", count, 256, 2048).map_err(|e| e.to_string())?;
    let pool = FramePool::dpdk(mempool);
    let mut lanes: Vec<Lane> = (0..args.lcores)
        .map(|_| (Vec::new(), pool.clone()))
        .collect();
    let mut filled = false;
    for (name, template) in [(w, &east), (e, &west)] {
        let handles = DpdkPort::open_queues(name, &pool, queues, 1024, 1024).map_err(|e| {
            if queues > 1 {
                format!("--lcores {queues} (a queue pair of each port per core): {e}")
            } else {
                e.to_string()
            }
        })?;
        for (lane, port) in lanes.iter_mut().zip(handles) {
            if name.starts_with("net_null") && args.mode == Mode::Pipeline {
                filled = true;
                lane.0
                    .push(Box::new(FillPort::new(port, vec![template.clone()])));
            } else {
                lane.0.push(Box::new(port));
            }
        }
    }
    let mut what = format!(
        "DPDK ports {w} and {e}{}",
        if filled {
            " (net_null: received frames filled from templates, standing in for a NIC's DMA)"
        } else {
            ""
        }
    );
    if args.tx_first > 0 {
        send_first(&mut lanes, args.tx_first, &east, &west)?;
        what.push_str(&format!(
            ", {} burst(s) of {TX_FIRST_BURST} template frames sent out of each port first",
            args.tx_first
        ));
    }
    Ok((lanes, what))
}

/// Sends `bursts` bursts of template frames out of each port of each lane:
/// a frame the west port is to receive (going east) goes out of the east
/// port, and the other way round, so that on ports joined to each other the
/// forwarder has traffic to keep going.
fn send_first(lanes: &mut [Lane], bursts: u32, east: &[u8], west: &[u8]) -> Result<(), String> {
    // A port sends once its link is up: a NIC's some seconds after it
    // starts, a memif's once its peer has connected.
    let deadline = Instant::now() + Duration::from_secs(10);
    for port in lanes.iter().flat_map(|(ports, _)| ports) {
        while !port.link_up() {
            if Instant::now() > deadline {
                return Err(format!(
                    "--tx-first: the link of port {} is not up after 10 s",
                    port.info().name
                ));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    // One poll of each port first: a memif client posts the buffers its
    // server sends into when it polls (nothing has been sent to receive).
    for (ports, _) in lanes.iter_mut() {
        for port in ports.iter_mut() {
            let mut nothing = Vec::new();
            port.rx_burst(0, &mut nothing, TX_FIRST_BURST);
        }
    }
    for (ports, pool) in lanes.iter_mut() {
        for (port, template) in ports.iter_mut().zip([west, east]) {
            for _ in 0..bursts {
                let mut frames = Vec::with_capacity(TX_FIRST_BURST);
                for _ in 0..TX_FIRST_BURST {
                    let mut frame = pool
                        .alloc()
                        .ok_or("--tx-first: the frame pool ran out of buffers")?;
                    frame.fill(template);
                    frames.push(frame);
                }
                let deadline = Instant::now() + Duration::from_secs(2);
                while !frames.is_empty() {
                    if port.tx_burst(0, &mut frames) == 0 && Instant::now() > deadline {
                        return Err(format!(
                            "--tx-first: port {} took no frame for 2 s ({} of a burst left)",
                            port.info().name,
                            frames.len()
                        ));
                    }
                }
            }
        }
    }
    Ok(())
}

/// Native AF_PACKET ports on the two interfaces of `--ports`, one lane.
#[cfg(target_os = "linux")]
fn af_packet_ports(
    args: &ForwardArgs,
    east: &[u8],
    west: &[u8],
) -> Result<(Vec<Lane>, String), String> {
    use pmd::af_packet::{AfPacketConfig, AfPacketPort};
    if args.lcores != 1 {
        return Err(format!(
            "--lcores: --pmd af-packet drives one queue of each interface: expected 1, found {}",
            args.lcores
        ));
    }
    let ports = args
        .ports
        .as_deref()
        .ok_or("--ports: --pmd af-packet needs two interfaces, west,east")?;
    let names: Vec<&str> = ports.split(',').map(str::trim).collect();
    let [w, e] = names[..] else {
        return Err(format!(
            "--ports: expected two interfaces, west,east, found {ports:?}"
        ));
    };
    let pool = FramePool::new(8192, 2048);
    let mut opened: Ports = Vec::new();
    for name in [w, e] {
        let config = AfPacketConfig {
            max_frame: 14 + DEFAULT_MTU,
            ..AfPacketConfig::new(name, fabric::frame::ETHERTYPE)
        };
        let port = AfPacketPort::open(&config, pool.clone()).map_err(|e| e.to_string())?;
        opened.push(Box::new(port));
    }
    let mut lanes = vec![(opened, pool)];
    let mut what = format!("AF_PACKET ports {w} and {e}");
    if args.tx_first > 0 {
        send_first(&mut lanes, args.tx_first, east, west)?;
        what.push_str(&format!(
            ", {} burst(s) of {TX_FIRST_BURST} template frames sent out of each port first",
            args.tx_first
        ));
    }
    Ok((lanes, what))
}

#[cfg(not(target_os = "linux"))]
fn af_packet_ports(_: &ForwardArgs, _: &[u8], _: &[u8]) -> Result<(Vec<Lane>, String), String> {
    Err("--pmd af-packet: AF_PACKET ports are Linux's".into())
}

#[cfg(feature = "dpdk")]
fn register_dpdk_thread() {
    if let Err(e) = pmd::dpdk::register_thread() {
        eprintln!("note: the forwarding core is not a DPDK lcore ({e}): no mbuf cache");
    }
}

#[cfg(not(feature = "dpdk"))]
fn register_dpdk_thread() {}

#[cfg(not(feature = "dpdk"))]
fn dpdk_ports(_: &ForwardArgs, _: Vec<u8>, _: Vec<u8>) -> Result<(Vec<Lane>, String), String> {
    Err("--pmd dpdk: this build has no DPDK support (build with --features dpdk)".into())
}

pub(crate) fn run(args: ForwardArgs, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    let cpus = core_affinity::get_core_ids().unwrap_or_default();
    if args.lcores == 0 || args.lcores > cpus.len().max(1) {
        let _ = writeln!(
            err,
            "error: --lcores: expected 1 to {} (the CPUs this process may run on), found {}",
            cpus.len().max(1),
            args.lcores
        );
        return EXIT_USAGE;
    }
    if args.payload == 0 || !args.payload.is_multiple_of(4) || args.payload > 4096 {
        let _ = writeln!(
            err,
            "error: --payload: expected a multiple of 4 from 4 to 4096, found {}",
            args.payload
        );
        return EXIT_USAGE;
    }
    if args.tx_first > 0 && args.pmd == Pmd::Ring {
        let _ = writeln!(
            err,
            "error: --tx-first: only for --pmd dpdk or af-packet (ring ports make their own traffic)"
        );
        return EXIT_USAGE;
    }
    if args.tx_first > TX_FIRST_MAX {
        let _ = writeln!(
            err,
            "error: --tx-first: expected at most {TX_FIRST_MAX} bursts, found {}",
            args.tx_first
        );
        return EXIT_USAGE;
    }
    if args.tlps_per_frame == 0 {
        let _ = writeln!(err, "error: --tlps-per-frame: expected at least 1");
        return EXIT_USAGE;
    }
    if args.pmd == Pmd::Ring {
        // Said, not refused: a script may pass the same options to both.
        for (flag, given) in [
            ("--ports", args.ports.is_some()),
            ("--eal", args.eal.is_some()),
        ] {
            if given {
                let _ = writeln!(
                    err,
                    "note: {flag} is for --pmd dpdk; ignored on ring ports (null ports this command makes)"
                );
            }
        }
    }
    if let Some(Err(e)) = args
        .json
        .as_deref()
        .map(|p| crate::check_writable("--json", p))
    {
        let _ = writeln!(err, "error: {e}");
        return EXIT_USAGE;
    }
    let t = match Topology::parse(Path::new("configs/forward.toml"), TOPOLOGY) {
        Ok(t) => t,
        Err(e) => {
            let _ = writeln!(err, "error: {}", e[0]);
            return EXIT_REJECTED;
        }
    };
    let host_requester = Bdf::new(t.hosts[0].fabric_bus, 0, 0);
    let integrity = Integrity::from_name(&args.integrity).unwrap_or_default();
    let east = template(
        host_requester,
        t.endpoints[0].fabric_bar,
        args.tlps_per_frame,
        args.payload,
        integrity,
    );
    let west = template(
        t.endpoints[0].id,
        t.hosts[0].fabric_dma[0],
        args.tlps_per_frame,
        args.payload,
        integrity,
    );
    let (east, west) = match (east, west) {
        (Ok(e), Ok(w)) => (e, w),
        (Err(e), _) | (_, Err(e)) => {
            let _ = writeln!(err, "error: --tlps-per-frame/--payload: {e}");
            return EXIT_USAGE;
        }
    };
    if let Some(dir) = &args.write_frames {
        // West receives what goes east, and the other way round.
        for (name, frame) in [("west-port-rx.pcap", &east), ("east-port-rx.pcap", &west)] {
            match write_pcap(dir, name, frame) {
                Ok(path) => {
                    let _ = writeln!(
                        out,
                        "{}: one frame of {} TLP(s), {} bytes",
                        path.display(),
                        args.tlps_per_frame,
                        frame.len()
                    );
                }
                Err(e) => {
                    let _ = writeln!(err, "error: {e}");
                    return EXIT_REJECTED;
                }
            }
        }
        return 0;
    }
    let (lanes, what) = if args.pmd == Pmd::AfPacket {
        match af_packet_ports(&args, &east, &west) {
            Ok(p) => p,
            Err(e) => {
                let _ = writeln!(err, "error: {e}");
                return EXIT_USAGE;
            }
        }
    } else if args.pmd == Pmd::Dpdk {
        match dpdk_ports(&args, east, west) {
            Ok(p) => p,
            Err(e) => {
                let _ = writeln!(err, "error: {e}");
                return EXIT_USAGE;
            }
        }
    } else if args.mode == Mode::Io {
        // Nothing reads the frames: empty ones, like net_null's unfilled.
        ring_ports(Vec::new(), Vec::new(), args.lcores)
    } else {
        ring_ports(east, west, args.lcores)
    };
    let mut lanes = lanes;
    let capture = match &args.pcap {
        Some(path) => {
            let port = usize::from(args.pcap_port == "east");
            match Capture::start(path, 1, CAPTURE_BUFFERS, CAPTURE_SNAPLEN) {
                Ok((capture, mut taps)) => {
                    if let (Some((ports, _)), Some(mut tap)) = (lanes.first_mut(), taps.pop()) {
                        let inner = ports.remove(port);
                        let traced = TracePort::new(inner, move |d, f: &[u8]| tap.record(d, f));
                        ports.insert(port, Box::new(traced));
                    }
                    Some(capture)
                }
                Err(e) => {
                    let _ = writeln!(err, "error: --pcap {}: cannot write: {e}", path.display());
                    return EXIT_USAGE;
                }
            }
        }
        None => None,
    };
    let io = args.mode == Mode::Io;
    let duration = args.duration;
    let dpdk = args.pmd == Pmd::Dpdk;
    // Two-core figures depend on where the two cores are: measured first,
    // while nothing else spins.
    let round_trip = (args.lcores > 1)
        .then(|| {
            let n = cpus.len();
            lcore::pingpong::cache_line_round_trip(
                n - 1,
                n - 2,
                9,
                20_000,
                Duration::from_millis(200),
            )
        })
        .flatten();
    // The counter's rate, measured before the cores spin.
    let tsc_per_ns = lcore::tsc::per_ns();
    // Ctrl-C from here on stops the cores and reports the time they ran.
    if let Err(e) = crate::interrupt::arm() {
        let _ = writeln!(err, "note: {e}: Ctrl-C ends the run without a report");
    }
    // One pipeline per core, from the last CPU down (the first keeps the
    // main thread), like testpmd's forwarding cores each on its queues.
    let mut lives = Vec::new();
    let mut workers = Vec::new();
    for (i, (ports, pool)) in lanes.into_iter().enumerate() {
        let cpu = cpus
            .len()
            .checked_sub(1 + i)
            .and_then(|k| cpus.get(k).copied());
        let worker = if io {
            let task = IoTask::new("io", ports);
            lives.push(task.live());
            spawn_worker(task, cpu, dpdk, duration, Forwarder::Io)
        } else {
            let (_publisher, reader) = epoch::channel(NodeTables::build(&t, 0));
            let settings = FrameSettings {
                integrity,
                ..FrameSettings::default()
            };
            let task = NodeTask::new("fwd", reader, ports, pool, settings);
            lives.push(task.live());
            spawn_worker(task, cpu, dpdk, duration, |t| {
                Forwarder::Pipeline(Box::new(t))
            })
        };
        workers.push(worker);
    }
    // Progress once a second on standard error.
    let started = Instant::now();
    while workers.iter().any(|w| !w.is_finished()) {
        std::thread::sleep(Duration::from_millis(100).min(duration));
        let secs = started.elapsed().as_secs();
        if secs > 0 && started.elapsed().subsec_millis() < 100 {
            let snaps = lives.iter().map(|l| l.snapshot());
            if io {
                let passed: u64 = snaps.map(|s| s.frames_out).sum();
                let _ = writeln!(err, "  {secs} s: {passed} frames passed on");
            } else {
                let forwarded: u64 = snaps.map(|s| s.tlps_out).sum();
                let _ = writeln!(err, "  {secs} s: {forwarded} TLPs forwarded");
            }
        }
    }
    let mut tasks = Vec::new();
    let mut elapsed = Duration::ZERO;
    for w in workers {
        let Ok((task, e)) = w.join() else {
            let _ = writeln!(err, "error: a forwarding core failed");
            return EXIT_REJECTED;
        };
        elapsed = elapsed.max(e);
        tasks.push(task);
    }
    let secs = elapsed.as_secs_f64();
    let interrupted = crate::interrupt::requested();
    if interrupted {
        let _ = writeln!(
            err,
            "note: interrupted after {secs:.2} s of {:.2}: the report covers the time the cores ran",
            duration.as_secs_f64()
        );
    }
    let captured = match capture.map(Capture::finish) {
        Some(Ok(counts)) => Some(counts),
        Some(Err(e)) => {
            let _ = writeln!(err, "error: --pcap: {e}");
            return EXIT_REJECTED;
        }
        None => None,
    };
    if let (Some((written, missed)), Some(path)) = (captured, &args.pcap) {
        let _ = writeln!(
            out,
            "capture: {written} frames of the {} port written to {}, {missed} missed (the writer fell behind)",
            args.pcap_port,
            path.display()
        );
    }
    let snaps: Vec<_> = lives.iter().map(|l| l.snapshot()).collect();
    let sum = |f: fn(&lcore::LiveSnapshot) -> u64| snaps.iter().map(f).sum::<u64>();
    let (tlps_out, tlps_refused) = (sum(|s| s.tlps_out), sum(|s| s.tlps_refused));
    let (busy_polls, idle_polls) = (sum(|s| s.busy_polls), sum(|s| s.idle_polls));
    // The pipeline's own cost, from the counter read at each end of a
    // poll that did work: idle polls and the main thread do not count.
    let tlps_in = sum(|s| s.tlps_in);
    let cycles_per_tlp = (tlps_in > 0).then(|| sum(|s| s.busy_cycles) as f64 / tlps_in as f64);
    // Counted per ingress port, so frames that were not TLP frames (a
    // kernel's own packets on a real port) do not count as TLPs.
    let from = |p: usize| tasks.iter().map(|t| t.forwarded_from(p)).sum::<u64>() as f64;
    let (west_tlps, east_tlps) = (from(0), from(1));
    let ports = PortReport::of(&tasks);
    let (west_in, east_in) = (ports.rx_frames(0) as f64, ports.rx_frames(1) as f64);
    let malformed: u64 = tasks.iter().map(Forwarder::malformed).sum();
    let frames_per_s = (west_in + east_in) / secs;
    let tlps_per_s = tlps_out as f64 / secs;
    let ns_per_tlp = (tlps_out > 0).then(|| 1e9 / tlps_per_s);
    let busy = busy_polls as f64 / (busy_polls + idle_polls).max(1) as f64;
    if io {
        return report_io(&args, &snaps, &ports, secs, round_trip, &what, out, err);
    }
    let per_core: Vec<f64> = snaps.iter().map(|s| s.tlps_out as f64 / secs).collect();
    let _ = writeln!(
        out,
        "forward: {} core{}, {what}, {} TLP(s)/frame, {}-byte payloads, frames checked by {}, {:.2} s",
        args.lcores,
        if args.lcores == 1 { "" } else { "s" },
        args.tlps_per_frame,
        args.payload,
        args.integrity,
        secs
    );
    let _ = writeln!(
        out,
        "  west->east: {:.2} M frames/s, {:.2} M TLPs/s",
        west_in / secs / 1e6,
        west_tlps / secs / 1e6
    );
    let _ = writeln!(
        out,
        "  east->west: {:.2} M frames/s, {:.2} M TLPs/s",
        east_in / secs / 1e6,
        east_tlps / secs / 1e6
    );
    let _ = writeln!(
        out,
        "  total: {:.2} M frames/s, {:.2} M TLPs/s, {} ns per TLP, busy polls {:.1}%, refused {}, malformed frames {}",
        frames_per_s / 1e6,
        tlps_per_s / 1e6,
        ns_per_tlp.map_or("-".to_string(), |t| format!("{t:.1}")),
        busy * 100.0,
        tlps_refused,
        malformed
    );
    if let Some(c) = cycles_per_tlp {
        let _ = writeln!(
            out,
            "  per TLP on a forwarding core: {c:.0} TSC cycles ({:.1} ns at {:.2} GHz) in polls that did work",
            c / tsc_per_ns,
            tsc_per_ns
        );
    }
    write_per_core(out, &per_core, "TLPs/s", round_trip);
    ports.write(out);
    if let Some(path) = &args.json {
        let doc = json!({
            "machine": crate::machine::describe(),
            "pmd": args.pmd.name(),
            "mode": "pipeline",
            "lcores": args.lcores,
            "tlps_per_s_per_core": per_core,
            "core_round_trip_ns": round_trip.map(|t| t.as_nanos() as u64),
            "tlps_per_frame": args.tlps_per_frame,
            "payload": args.payload,
            "duration_s": secs,
            "interrupted": interrupted,
            "frames_per_s": frames_per_s,
            "tlps_per_s": tlps_per_s,
            "ns_per_tlp": ns_per_tlp,
            "tsc_cycles_per_tlp": cycles_per_tlp,
            "tsc_ghz": tsc_per_ns,
            "busy_fraction": busy,
            "tlps_refused": tlps_refused,
            "frames_malformed": malformed,
            "capture": captured.map(|(written, missed)| json!({"written": written, "missed": missed})),
            "ports": ports.json(),
            "directions": [
                {"from": "west", "to": "east", "frames_per_s": west_in / secs, "tlps_per_s": west_tlps / secs},
                {"from": "east", "to": "west", "frames_per_s": east_in / secs, "tlps_per_s": east_tlps / secs},
            ],
        });
        return write_json(path, &doc, err);
    }
    0
}

/// Each port's frames over all cores and, where a device keeps them (DPDK),
/// the device's own counters: what it dropped before a poll could take it
/// does not show in the rates.
struct PortReport(Vec<(String, PortStats, Option<DeviceStats>)>);

impl PortReport {
    fn of(tasks: &[Forwarder]) -> PortReport {
        let Some(first) = tasks.first() else {
            return PortReport(Vec::new());
        };
        let ports = first.ports().iter().enumerate().map(|(p, port)| {
            let mut sum = PortStats::default();
            for s in tasks
                .iter()
                .filter_map(|t| t.ports().get(p))
                .map(|q| q.stats())
            {
                sum.rx_frames += s.rx_frames;
                sum.tx_frames += s.tx_frames;
            }
            // One device for all its queues: counted once.
            (port.info().name, sum, port.device_stats())
        });
        PortReport(ports.collect())
    }

    fn rx_frames(&self, port: usize) -> u64 {
        self.0.get(port).map_or(0, |p| p.1.rx_frames)
    }

    fn write(&self, out: &mut dyn Write) {
        for (name, _, device) in &self.0 {
            let Some(d) = device else { continue };
            let _ = writeln!(
                out,
                "  {name}: the device received {}, sent {}, missed {} (receive queue full), errors {} in / {} out, no buffer {}",
                d.received, d.sent, d.missed, d.rx_errors, d.tx_errors, d.rx_no_buffer
            );
        }
    }

    fn json(&self) -> serde_json::Value {
        let ports: Vec<_> = self
            .0
            .iter()
            .map(|(name, s, device)| {
                json!({
                    "name": name,
                    "rx_frames": s.rx_frames,
                    "tx_frames": s.tx_frames,
                    "device": device.map(|d| json!({
                        "received": d.received,
                        "sent": d.sent,
                        "missed": d.missed,
                        "rx_errors": d.rx_errors,
                        "tx_errors": d.tx_errors,
                        "rx_no_buffer": d.rx_no_buffer,
                    })),
                })
            })
            .collect();
        json!(ports)
    }
}

/// Each core's rate and, with two cores or more, the round trip between them.
fn write_per_core(out: &mut dyn Write, per_core: &[f64], unit: &str, round_trip: Option<Duration>) {
    if per_core.len() < 2 {
        return;
    }
    let text: Vec<String> = per_core.iter().map(|r| format!("{:.2}", r / 1e6)).collect();
    let _ = writeln!(out, "  per core: {} M {unit}", text.join(", "));
    if let Some(t) = round_trip {
        let _ = writeln!(
            out,
            "  core-to-core cache-line round trip (first two cores): {} ns",
            t.as_nanos()
        );
    }
}

fn write_json(path: &Path, doc: &serde_json::Value, err: &mut dyn Write) -> i32 {
    if let Err(e) = std::fs::write(path, format!("{doc:#}\n")) {
        let _ = writeln!(err, "error: {}: cannot write: {e}", path.display());
        return EXIT_REJECTED;
    }
    0
}

/// Runs `task` on its own thread, pinned to `cpu`, for `duration`; the
/// loop is compiled for each kind of task, so the pipeline's poll inlines
/// into it as it would on a core of its own.
fn spawn_worker<T: Task + 'static>(
    mut task: T,
    cpu: Option<core_affinity::CoreId>,
    dpdk: bool,
    duration: Duration,
    done: fn(T) -> Forwarder,
) -> std::thread::JoinHandle<(Forwarder, Duration)> {
    std::thread::spawn(move || {
        if let Some(cpu) = cpu {
            core_affinity::set_for_current(cpu);
        }
        if dpdk {
            // An lcore of DPDK's, so the mbuf pool caches for it.
            register_dpdk_thread();
        }
        let start = Instant::now();
        let mut polls = 0u64;
        loop {
            task.poll(0);
            polls += 1;
            if polls.is_multiple_of(256)
                && (start.elapsed() >= duration || crate::interrupt::requested())
            {
                break;
            }
        }
        (done(task), start.elapsed())
    })
}

/// The report of `--mode io`: frames only (no TLP is looked at).
#[allow(clippy::too_many_arguments)]
fn report_io(
    args: &ForwardArgs,
    snaps: &[lcore::LiveSnapshot],
    ports: &PortReport,
    secs: f64,
    round_trip: Option<Duration>,
    what: &str,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> i32 {
    let (west_in, east_in) = (ports.rx_frames(0) as f64, ports.rx_frames(1) as f64);
    let frames_per_s = (west_in + east_in) / secs;
    let ns_per_frame = (west_in + east_in > 0.0).then(|| 1e9 / frames_per_s);
    let (busy, idle) = snaps
        .iter()
        .fold((0, 0), |(b, i), s| (b + s.busy_polls, i + s.idle_polls));
    let busy = busy as f64 / (busy + idle).max(1) as f64;
    let per_core: Vec<f64> = snaps.iter().map(|s| s.frames_out as f64 / secs).collect();
    let _ = writeln!(
        out,
        "forward: {} core{}, {what}, io mode (frames passed on unexamined), {:.2} s",
        args.lcores,
        if args.lcores == 1 { "" } else { "s" },
        secs
    );
    let _ = writeln!(out, "  west->east: {:.2} M frames/s", west_in / secs / 1e6);
    let _ = writeln!(out, "  east->west: {:.2} M frames/s", east_in / secs / 1e6);
    let _ = writeln!(
        out,
        "  total: {:.2} M frames/s, {} ns per frame, busy polls {:.1}%",
        frames_per_s / 1e6,
        ns_per_frame.map_or("-".to_string(), |t| format!("{t:.1}")),
        busy * 100.0
    );
    write_per_core(out, &per_core, "frames/s", round_trip);
    ports.write(out);
    if let Some(path) = &args.json {
        let doc = json!({
            "machine": crate::machine::describe(),
            "pmd": args.pmd.name(),
            "mode": "io",
            "lcores": args.lcores,
            "frames_per_s_per_core": per_core,
            "core_round_trip_ns": round_trip.map(|t| t.as_nanos() as u64),
            "duration_s": secs,
            "interrupted": crate::interrupt::requested(),
            "frames_per_s": frames_per_s,
            "tlps_per_s": null,
            "ns_per_frame": ns_per_frame,
            "ports": ports.json(),
            "busy_fraction": busy,
            "directions": [
                {"from": "west", "to": "east", "frames_per_s": west_in / secs},
                {"from": "east", "to": "west", "frames_per_s": east_in / secs},
            ],
        });
        return write_json(path, &doc, err);
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run_captured;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("50us"), Ok(Duration::from_micros(50)));
        assert_eq!(parse_duration("50µs"), Ok(Duration::from_micros(50)));
        assert_eq!(parse_duration("750ns"), Ok(Duration::from_nanos(750)));
        assert!(parse_duration("5h").unwrap_err().contains("ms, s or m"));
        assert!(parse_duration("-1s").is_err());
        // Zero where nothing at all is meant, still with a known unit.
        assert_eq!(parse_duration_or_zero("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration_or_zero("0ms"), Ok(Duration::ZERO));
        assert_eq!(
            parse_duration_or_zero("20ms"),
            Ok(Duration::from_millis(20))
        );
        assert!(parse_duration_or_zero("0h").is_err());
        assert!(parse_duration_or_zero("-0.5s").is_err());
        // Past what a Duration holds, and what rounds to nothing, are
        // refused with words, not a panic or an instant run.
        for (s, expected) in [
            ("100000000000000000000000000000s", "at most 365 days"),
            ("99999999999999999999999999m", "at most 365 days"),
            ("0.0000000001s", "rounds to 0 ns"),
            ("0.4ns", "rounds to 0 ns"),
            ("inf", "expected a duration like"),
            ("-0.5s", "positive"),
        ] {
            let e = parse_duration(s).unwrap_err();
            assert!(e.contains(expected), "{s}: {e}");
        }
        assert!(parse_duration("365d").unwrap_err().contains("unit"));
        assert!(parse_duration("525600m").is_ok());
        assert!(parse_duration("fast").is_err());
    }

    #[test]
    fn a_short_run_forwards_both_ways_and_writes_json() {
        let path =
            std::env::temp_dir().join(format!("tlpfabric-forward-{}.json", std::process::id()));
        let (code, out, err) = run_captured(
            &[
                "forward",
                "--duration",
                "200ms",
                "--tlps-per-frame",
                "8",
                "--json",
                path.to_str().unwrap(),
            ],
            "",
        );
        assert_eq!(code, 0, "{err}");
        assert!(
            out.contains("west->east") && out.contains("refused 0"),
            "{out}"
        );
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert!(v["tlps_per_s"].as_f64().unwrap() > 0.0);
        assert!(v["frames_per_s"].as_f64().unwrap() > 0.0);
        // Every TLP in came out: 8 per frame, none of them malformed.
        let ratio = v["tlps_per_s"].as_f64().unwrap() / v["frames_per_s"].as_f64().unwrap();
        assert!((ratio - 8.0).abs() < 0.01, "{ratio}");
        assert_eq!(v["frames_malformed"], 0, "{out}");
        assert_eq!(v["interrupted"], false, "ran its whole duration");
        // The core's busy time is part of the run's: per TLP it is at most
        // the wall clock's share (the counter's rate measured to a few %).
        let (cycles, ghz) = (
            v["tsc_cycles_per_tlp"].as_f64().unwrap(),
            v["tsc_ghz"].as_f64().unwrap(),
        );
        let wall = v["ns_per_tlp"].as_f64().unwrap();
        assert!(cycles > 0.0 && ghz > 0.0, "{out}");
        assert!(
            cycles / ghz <= wall * 1.05,
            "busy {} ns per TLP, wall {wall}",
            cycles / ghz
        );
        assert!(out.contains("TSC cycles"), "{out}");
        assert!(v["ns_per_tlp"].as_f64().is_some_and(|t| t > 0.0), "{out}");
        // The directions' TLPs, counted per ingress port, make the total.
        let directions: f64 = v["directions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["tlps_per_s"].as_f64().unwrap())
            .sum();
        let total = v["tlps_per_s"].as_f64().unwrap();
        assert!(
            (directions - total).abs() <= total * 1e-3,
            "{directions} {total}"
        );
        // Each port's frames, both ways; null ports keep no device counters.
        let ports = v["ports"].as_array().unwrap();
        assert_eq!(ports.len(), 2);
        for p in ports {
            assert!(p["rx_frames"].as_u64().unwrap() > 0, "{p}");
            assert!(p["tx_frames"].as_u64().unwrap() > 0, "{p}");
            assert!(p["device"].is_null(), "{p}");
        }
        let rx: u64 = ports.iter().map(|p| p["rx_frames"].as_u64().unwrap()).sum();
        let rate = rx as f64 / v["duration_s"].as_f64().unwrap();
        assert!(
            (rate - v["frames_per_s"].as_f64().unwrap()).abs() < 1.0,
            "{rate}"
        );
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn io_mode_passes_frames_both_ways_and_reports_no_tlps() {
        let path = std::env::temp_dir().join(format!("tlpfabric-io-{}.json", std::process::id()));
        let (code, out, err) = run_captured(
            &[
                "forward",
                "--mode",
                "io",
                "--duration",
                "200ms",
                "--json",
                path.to_str().unwrap(),
            ],
            "",
        );
        assert_eq!(code, 0, "{err}");
        assert!(out.contains("io mode") && !out.contains("TLPs/s"), "{out}");
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(v["mode"], "io");
        assert!(v["tlps_per_s"].is_null());
        let directions = v["directions"].as_array().unwrap();
        let rates: Vec<f64> = directions
            .iter()
            .map(|d| d["frames_per_s"].as_f64().unwrap())
            .collect();
        assert!(rates.iter().all(|&r| r > 0.0), "{out}");
        let total = v["frames_per_s"].as_f64().unwrap();
        assert!((rates[0] + rates[1] - total).abs() <= total * 1e-9);
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn every_core_forwards_its_own_pipeline() {
        let cpus = core_affinity::get_core_ids().map_or(1, |c| c.len());
        let lcores = cpus.min(2);
        let path =
            std::env::temp_dir().join(format!("tlpfabric-fwd-n-{}.json", std::process::id()));
        let (code, out, err) = run_captured(
            &[
                "forward",
                "--duration",
                "200ms",
                "--lcores",
                &lcores.to_string(),
                "--json",
                path.to_str().unwrap(),
            ],
            "",
        );
        assert_eq!(code, 0, "{err}");
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(v["lcores"], lcores);
        let per_core = v["tlps_per_s_per_core"].as_array().unwrap();
        assert_eq!(per_core.len(), lcores, "{out}");
        assert!(per_core.iter().all(|r| r.as_f64().unwrap() > 0.0), "{out}");
        // Two cores' figures come with the round trip between them, when
        // the machine let it be measured; one core's never.
        let round_trip = &v["core_round_trip_ns"];
        if lcores == 1 {
            assert!(round_trip.is_null(), "{out}");
        } else {
            assert!(
                round_trip.is_null() || round_trip.as_u64().is_some_and(|ns| ns > 0),
                "{out}"
            );
        }
        let sum: f64 = per_core.iter().map(|r| r.as_f64().unwrap()).sum();
        let total = v["tlps_per_s"].as_f64().unwrap();
        assert!((sum - total).abs() <= total * 1e-9, "{sum} {total}");
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn the_frames_a_generator_replays_are_written_as_pcaps() {
        let dir = std::env::temp_dir().join(format!("tlpfabric-frames-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (code, out, err) = run_captured(
            &[
                "forward",
                "--write-frames",
                dir.to_str().unwrap(),
                "--tlps-per-frame",
                "3",
            ],
            "",
        );
        assert_eq!(code, 0, "{err}");
        for name in ["west-port-rx.pcap", "east-port-rx.pcap"] {
            let b = std::fs::read(dir.join(name)).unwrap();
            assert!(out.contains(name), "{out}");
            assert_eq!(&b[..4], &0xa1b2_c3d4u32.to_le_bytes());
            // One record: its length, then the frame, a valid one of 3 TLPs.
            let len = u32::from_le_bytes(b[32..36].try_into().unwrap()) as usize;
            assert_eq!(b.len(), 24 + 16 + len);
            let frame = fabric::Frame::new_checked(&b[40..], fabric::frame::ETHERTYPE).unwrap();
            assert_eq!(frame.tlp_count(), 3, "{name}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
        let (code, _, err) = run_captured(&["forward", "--write-frames", "/nonexistent/dir"], "");
        assert_eq!(code, 1);
        assert!(
            err.contains("/nonexistent/dir/west-port-rx.pcap: cannot write"),
            "{err}"
        );
    }

    #[test]
    fn an_unwritable_json_file_fails_before_the_run() {
        let dir = std::env::temp_dir().join(format!("tlpfabric-no-such-{}", std::process::id()));
        let path = dir.join("out.json");
        let path = path.to_str().unwrap();
        let (code, out, err) = run_captured(&["forward", "--duration", "30s", "--json", path], "");
        assert_eq!(code, 2);
        assert!(
            err.contains("--json") && err.contains("cannot write"),
            "{err}"
        );
        assert!(out.is_empty(), "refused before forwarding: {out}");
        // The check leaves neither a new file nor an emptied one behind.
        let kept = std::env::temp_dir().join(format!("tlpfabric-kept-{}.json", std::process::id()));
        std::fs::write(&kept, "before").unwrap();
        assert_eq!(crate::check_writable("--json", &kept), Ok(()));
        assert_eq!(std::fs::read_to_string(&kept).unwrap(), "before");
        std::fs::remove_file(&kept).unwrap();
        assert_eq!(crate::check_writable("--json", &kept), Ok(()));
        assert!(!kept.exists(), "a file made by the check is removed");
    }

    #[test]
    fn bad_options_are_usage_errors() {
        let (code, _, err) = run_captured(&["forward", "--payload", "6"], "");
        assert_eq!(code, 2);
        assert!(err.contains("--payload: expected a multiple of 4"), "{err}");
        let (code, _, err) = run_captured(
            &["forward", "--tlps-per-frame", "40", "--payload", "256"],
            "",
        );
        assert_eq!(code, 2);
        assert!(err.contains("do not fit"), "{err}");
        let (code, _, err) = run_captured(&["forward", "--mode", "testpmd"], "");
        assert_eq!(code, 2);
        assert!(
            err.contains("'--mode <MODE>'") && err.contains("[possible values: pipeline, io]"),
            "{err}"
        );
        let (code, _, err) = run_captured(&["forward", "--pmd", "pcap"], "");
        assert_eq!(code, 2);
        assert!(
            err.contains("[possible values: ring, dpdk, af-packet]"),
            "{err}"
        );
        let (code, _, err) = run_captured(&["forward", "--lcores", "0"], "");
        assert_eq!(code, 2);
        assert!(err.contains("--lcores: expected 1 to"), "{err}");
        let (code, _, err) = run_captured(&["forward", "--lcores", "100000"], "");
        assert_eq!(code, 2, "{err}");
        let (code, _, err) = run_captured(&["forward", "--tx-first", "1"], "");
        assert_eq!(code, 2);
        assert!(err.contains("--tx-first: only for --pmd dpdk"), "{err}");
        let (code, _, err) = run_captured(&["forward", "--pmd", "dpdk", "--tx-first", "33"], "");
        assert_eq!(code, 2);
        assert!(err.contains("--tx-first: expected at most 32"), "{err}");
        // AF_PACKET: two interfaces, one core, an interface that exists.
        for (args, expected) in [
            (
                &["--pmd", "af-packet"][..],
                "--ports: --pmd af-packet needs two interfaces",
            ),
            (
                &["--pmd", "af-packet", "--ports", "lo"],
                "--ports: expected two interfaces",
            ),
            (
                &["--pmd", "af-packet", "--ports", "lo,lo", "--lcores", "2"],
                "--lcores: --pmd af-packet drives one queue",
            ),
            (
                &["--pmd", "af-packet", "--ports", "no-such-if0,lo"],
                "no-such-if0: ",
            ),
        ] {
            let (code, _, err) = run_captured(&[&["forward"], args].concat(), "");
            assert_eq!(code, 2, "{args:?}: {err}");
            assert!(err.contains(expected), "{args:?}: {err}");
        }
        // Options ring ports ignore are said to be ignored.
        for flag in ["--ports", "--eal"] {
            let (code, out, err) =
                run_captured(&["forward", flag, "a,b", "--duration", "10ms"], "");
            assert_eq!(code, 0, "{flag}: {err}");
            assert!(
                err.contains(&format!("note: {flag} is for --pmd dpdk; ignored")),
                "{err}"
            );
            assert!(out.contains("ring ports"), "{out}");
        }
        #[cfg(not(feature = "dpdk"))]
        {
            let (code, _, err) = run_captured(&["forward", "--pmd", "dpdk"], "");
            assert_eq!(code, 2);
            assert!(err.contains("--features dpdk"), "{err}");
        }
    }
}
