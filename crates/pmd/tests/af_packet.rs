//! The native AF_PACKET port on a veth pair in a network namespace of the
//! test's own: frames cross with real Ethernet addresses, only the fabric's
//! EtherType enters the ring, frames for another station are counted and
//! ignored, jumbo frames pass. Needs root (network namespaces); under
//! `CI=true` a test that cannot make its namespace fails.
#![cfg(target_os = "linux")]
// One call enters a namespace (setns), for the ports opened in it.
#![allow(unsafe_code)]

use pmd::af_packet::{AfPacketConfig, AfPacketPort, Mac, BROADCAST};
use pmd::{Frame, FramePool, Port};
use std::process::Command;
use std::time::{Duration, Instant};

const ETHERTYPE: u16 = 0x88b5;

/// A network namespace with a veth pair `a`–`b` in it, deleted on drop
/// (a failed test included).
struct Netns {
    name: String,
}

impl Netns {
    /// A namespace for test `tag`, or `None` (with a message) where none
    /// can be made here, which under `CI=true` is a failure.
    fn new(tag: &str, mtu: u32) -> Option<Netns> {
        let name = format!("tlpf-{tag}-{}", std::process::id());
        let made = Command::new("ip")
            .args(["netns", "add", &name])
            .status()
            .is_ok_and(|s| s.success());
        if !made {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "cannot create network namespace {name} (needs root and iproute2)"
            );
            eprintln!("SKIPPED: cannot create network namespace {name} (needs root and iproute2)");
            return None;
        }
        let ns = Netns { name };
        let mtu = mtu.to_string();
        for args in [
            &[
                "link", "add", "name", "a", "type", "veth", "peer", "name", "b",
            ][..],
            &["link", "set", "dev", "a", "mtu", &mtu, "up"],
            &["link", "set", "dev", "b", "mtu", &mtu, "up"],
        ] {
            ns.ip(args);
        }
        Some(ns)
    }

    fn ip(&self, args: &[&str]) {
        let status = Command::new("ip")
            .arg("-n")
            .arg(&self.name)
            .args(args)
            .status()
            .expect("ip runs");
        assert!(status.success(), "ip -n {} {args:?}", self.name);
    }

    /// Opens a port in the namespace (from a thread that enters it: the
    /// socket stays in the namespace it was made in).
    fn open(&self, config: AfPacketConfig, pool: FramePool) -> AfPacketPort {
        let path = format!("/run/netns/{}", self.name);
        std::thread::spawn(move || {
            let file = std::fs::File::open(&path).expect("the namespace's file");
            use std::os::fd::AsRawFd;
            // SAFETY: setns on a namespace file descriptor this thread
            // opened; it changes only this thread's namespace.
            let entered = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(entered, 0, "setns {path}");
            AfPacketPort::open(&config, pool).unwrap_or_else(|e| panic!("{e}"))
        })
        .join()
        .expect("the opening thread")
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// A frame of `len` bytes: addresses left for the port, the EtherType,
/// then `seq` and a pattern.
fn frame(pool: &FramePool, ethertype: u16, seq: u32, len: usize) -> Frame {
    let mut bytes = vec![0u8; len];
    bytes[12..14].copy_from_slice(&ethertype.to_be_bytes());
    bytes[14..18].copy_from_slice(&seq.to_be_bytes());
    for (i, b) in bytes.iter_mut().enumerate().skip(18) {
        *b = (seq as usize + i) as u8;
    }
    let mut f = pool.alloc().expect("a buffer");
    f.fill(&bytes);
    f
}

fn send(port: &mut AfPacketPort, mut frames: Vec<Frame>) {
    let deadline = Instant::now() + Duration::from_secs(2);
    while !frames.is_empty() {
        port.tx_burst(0, &mut frames);
        assert!(
            Instant::now() < deadline,
            "{} frames not taken",
            frames.len()
        );
    }
}

/// Polls `port` until `n` frames came or half a second passed with none.
fn receive(port: &mut AfPacketPort, n: usize) -> Vec<Frame> {
    let mut got = Vec::new();
    let mut last = Instant::now();
    while got.len() < n && last.elapsed() < Duration::from_millis(500) {
        if port.rx_burst(0, &mut got, 32) > 0 {
            last = Instant::now();
        }
    }
    got
}

fn config(iface: &str, max_frame: usize) -> AfPacketConfig {
    AfPacketConfig {
        max_frame,
        slots: 512,
        ..AfPacketConfig::new(iface, ETHERTYPE)
    }
}

/// Ports on both ends of the pair: `b` learns its peer, `a` is told it.
fn joined(ns: &Netns, max_frame: usize, pool: &FramePool) -> (AfPacketPort, AfPacketPort) {
    let b = ns.open(config("b", max_frame), pool.clone());
    let a = ns.open(
        AfPacketConfig {
            peer: Some(b.mac()),
            ..config("a", max_frame)
        },
        pool.clone(),
    );
    (a, b)
}

#[test]
fn frames_cross_a_veth_pair_to_the_peer_address_and_back_to_a_learned_one() {
    let Some(ns) = Netns::new("cross", 1500) else {
        return;
    };
    let pool = FramePool::new(1024, 2048);
    let (mut a, mut b) = joined(&ns, 1514, &pool);
    assert_ne!(a.mac(), b.mac());
    assert_eq!(b.peer(), BROADCAST, "not learned yet");
    let lens: Vec<usize> = (0..200).map(|i| 60 + (i * 37) % 1455).collect();
    let frames = lens
        .iter()
        .enumerate()
        .map(|(i, &len)| frame(&pool, ETHERTYPE, i as u32, len))
        .collect();
    send(&mut a, frames);
    let got = receive(&mut b, 200);
    assert_eq!(got.len(), 200, "every frame arrived");
    for (i, (f, &len)) in got.iter().zip(&lens).enumerate() {
        let want = frame(&pool, ETHERTYPE, i as u32, len);
        assert_eq!(&f[..6], &b.mac(), "to the peer's address");
        assert_eq!(&f[6..12], &a.mac(), "from the sender's");
        assert_eq!(&f[12..], &want[12..], "frame {i} whole and in order");
    }
    // B learned A's address from what it received, and answers there.
    assert_eq!(b.peer(), a.mac());
    send(&mut b, vec![frame(&pool, ETHERTYPE, 7, 100)]);
    let back = receive(&mut a, 1);
    assert_eq!(back.len(), 1);
    assert_eq!(
        (&back[0][..6], &back[0][6..12]),
        (&a.mac()[..], &b.mac()[..])
    );
    assert_eq!(b.stats().rx_frames, 200);
    assert_eq!(a.stats().tx_frames, 200);
}

#[test]
fn other_ethertypes_never_enter_the_ring_and_other_stations_frames_are_counted() {
    let Some(ns) = Netns::new("filter", 1500) else {
        return;
    };
    let pool = FramePool::new(1024, 2048);
    let (mut a, mut b) = joined(&ns, 1514, &pool);
    let stranger: Mac = [0x02, 0, 0, 0, 0, 0x99];
    let mut to_stranger = ns.open(
        AfPacketConfig {
            peer: Some(stranger),
            ..config("a", 1514)
        },
        pool.clone(),
    );
    // IPv4 frames, then fabric frames for another station, then one for B.
    send(
        &mut a,
        (0..10).map(|i| frame(&pool, 0x0800, i, 64)).collect(),
    );
    send(
        &mut to_stranger,
        (0..5).map(|i| frame(&pool, ETHERTYPE, i, 64)).collect(),
    );
    send(&mut a, vec![frame(&pool, ETHERTYPE, 42, 64)]);
    let got = receive(&mut b, 2);
    assert_eq!(got.len(), 1, "only the fabric frame for B");
    assert_eq!(&got[0][14..18], &42u32.to_be_bytes());
    assert_eq!(
        b.foreign(),
        5,
        "the stranger's frames were seen and ignored"
    );
    // The kernel put 6 frames in the ring: the filter kept the IPv4 ones out.
    let kernel = b.device_stats().unwrap();
    assert_eq!((kernel.received, kernel.missed), (6, 0));
}

#[test]
fn jumbo_frames_pass_whole() {
    let Some(ns) = Netns::new("jumbo", 9000) else {
        return;
    };
    let pool = FramePool::new(256, 9216);
    let (mut a, mut b) = joined(&ns, 9014, &pool);
    send(
        &mut a,
        vec![
            frame(&pool, ETHERTYPE, 1, 9014),
            frame(&pool, ETHERTYPE, 2, 60),
        ],
    );
    let got = receive(&mut b, 2);
    assert_eq!(got.iter().map(|f| f.len()).collect::<Vec<_>>(), [9014, 60]);
    assert_eq!(&got[0][12..], &frame(&pool, ETHERTYPE, 1, 9014)[12..]);
}
