//! A DPDK port on a `net_tap` vdev (feature `dpdk`, as root): frames sent
//! to the port arrive at the kernel's interface. Skipped, saying so, where
//! there is no /dev/net/tun or no root.
#![cfg(feature = "dpdk")]

use pmd::dpdk::{self, DpdkPort, Mempool};
use pmd::{FramePool, Port};
use std::time::{Duration, Instant};

const IFACE: &str = "tlpftap0";

fn counter(name: &str) -> u64 {
    std::fs::read_to_string(format!("/sys/class/net/{IFACE}/statistics/{name}"))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

#[test]
fn frames_sent_on_a_tap_port_reach_the_kernel() {
    let root = std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false);
    if !root || !std::path::Path::new("/dev/net/tun").exists() {
        eprintln!("skipped: net_tap needs root and /dev/net/tun");
        return;
    }
    dpdk::init(&[
        "--no-huge",
        "--no-pci",
        "-m",
        "256",
        "--file-prefix=tlpf-tap-test",
        "--log-level=lib.eal:error",
        &format!("--vdev=net_tap0,iface={IFACE}"),
    ])
    .expect("EAL initialises with a net_tap vdev");
    // TAP takes one mbuf per receive descriptor up front.
    let pool = FramePool::dpdk(Mempool::new("tap-test", 2047, 32, 2048).unwrap());
    let mut port = DpdkPort::open("net_tap0", &pool, 512, 512).unwrap();
    let _ = std::process::Command::new("ip")
        .args(["link", "set", IFACE, "up"])
        .status();
    let before = counter("rx_packets");
    let mut frames = Vec::new();
    for i in 0..10u8 {
        let mut f = pool.alloc().unwrap();
        let b = f.buffer_mut();
        b[..6].fill(0xff); // broadcast
        b[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, i]);
        b[12..14].copy_from_slice(&0x88b5u16.to_be_bytes());
        b[14..64].fill(i);
        f.set_len(64);
        frames.push(f);
    }
    let mut sent = 0;
    let t0 = Instant::now();
    while sent < 10 && t0.elapsed() < Duration::from_secs(5) {
        sent += port.tx_burst(0, &mut frames);
    }
    assert_eq!(sent, 10);
    let t0 = Instant::now();
    while counter("rx_packets") < before + 10 && t0.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(
        counter("rx_packets") >= before + 10,
        "the kernel saw {} frames",
        counter("rx_packets") - before
    );
    assert!(port.link_up());
}
