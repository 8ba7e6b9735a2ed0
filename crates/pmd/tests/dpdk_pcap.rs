//! A DPDK port on a `net_pcap` vdev (feature `dpdk`): it replays a capture
//! written by `pcap::PcapWriter` and records what is sent into another, so
//! captures go in and out of the dataplane through DPDK.
#![cfg(feature = "dpdk")]

use pmd::dpdk::{self, DpdkPort, Mempool};
use pmd::pcap::PcapWriter;
use pmd::{FramePool, Port};
use std::time::{Duration, Instant};

/// The frames of a classic pcap file.
fn frames_of(bytes: &[u8]) -> Vec<Vec<u8>> {
    pmd::pcap::frames(bytes).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn a_capture_is_replayed_and_what_is_sent_is_recorded() {
    let dir = std::env::temp_dir().join(format!("tlpf-pcap-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (input, output) = (dir.join("in.pcap"), dir.join("out.pcap"));
    let frames: Vec<Vec<u8>> = (0..5u8)
        .map(|i| {
            let mut f = vec![i; 60 + i as usize];
            f[12..14].copy_from_slice(&0x88b5u16.to_be_bytes());
            f
        })
        .collect();
    let mut w = PcapWriter::new(std::fs::File::create(&input).unwrap(), 65535).unwrap();
    for (i, f) in frames.iter().enumerate() {
        w.write(i as u64, f).unwrap();
    }
    w.finish().unwrap();

    dpdk::init(&[
        "--no-huge",
        "--no-pci",
        "-m",
        "256",
        "--file-prefix=tlpf-pcap-test",
        "--log-level=lib.eal:error",
        &format!(
            "--vdev=net_pcap0,rx_pcap={},tx_pcap={}",
            input.display(),
            output.display()
        ),
    ])
    .expect("EAL initialises with a net_pcap vdev");
    let pool = FramePool::dpdk(Mempool::new("pcap-test", 511, 0, 2048).unwrap());
    let mut port = DpdkPort::open("net_pcap0", &pool, 64, 64).unwrap();
    let mut got = Vec::new();
    let t0 = Instant::now();
    while got.len() < 5 && t0.elapsed() < Duration::from_secs(5) {
        port.rx_burst(0, &mut got, 32);
    }
    assert_eq!(
        got.iter().map(|f| f.to_vec()).collect::<Vec<_>>(),
        frames,
        "replayed in order"
    );
    let mut sent = 0;
    while !got.is_empty() && t0.elapsed() < Duration::from_secs(5) {
        sent += port.tx_burst(0, &mut got);
    }
    assert_eq!(sent, 5);
    drop(port); // stops the port, which closes the capture
    let recorded = frames_of(&std::fs::read(&output).unwrap());
    assert_eq!(recorded, frames, "recorded as sent");
    std::fs::remove_dir_all(&dir).unwrap();
}
