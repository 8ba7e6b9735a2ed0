//! Ethdev pairs over DPDK's `net_ring` driver (feature `dpdk`). One EAL per
//! test process: this file is its own process, with its own file prefix.
#![cfg(feature = "dpdk")]

use pmd::dpdk::{self, DpdkPort, Mempool};
use pmd::{FramePool, Port};

#[test]
fn a_pair_delivers_each_way_in_order_without_copies() {
    dpdk::init(&[
        "--no-huge",
        "--no-pci",
        "-m",
        "256",
        "--file-prefix=tlpf-ring-test",
        "--log-level=lib.eal:error",
    ])
    .expect("EAL initialises");
    let pool = FramePool::dpdk(Mempool::new("ring-test", 1023, 0, 2048).unwrap());
    let before = pool.available();
    let (mut a, mut b) = DpdkPort::pair("link", 64, &pool).unwrap();
    assert_ne!(a.id(), b.id());
    for turn in 0..2 {
        let (from, to) = if turn == 0 {
            (&mut a, &mut b)
        } else {
            (&mut b, &mut a)
        };
        let mut frames: Vec<_> = (0..40u8)
            .map(|i| {
                let mut f = pool.alloc().unwrap();
                f.buffer_mut()[..61].fill(i);
                f.set_len(60 + i as usize % 2);
                f
            })
            .collect();
        assert_eq!(from.tx_burst(0, &mut frames), 40);
        let mut got = Vec::new();
        assert_eq!(to.rx_burst(0, &mut got, 64), 40);
        for (i, f) in got.iter().enumerate() {
            assert_eq!(f.len(), 60 + i % 2, "lengths travel with the mbufs");
            assert!(f.iter().all(|&x| x == i as u8), "frame {i} in order");
        }
        assert_eq!(to.rx_burst(0, &mut got, 64), 0, "nothing twice");
        assert_eq!(from.tx_copies, 0);
    }
    // A full ring refuses what does not fit; the caller keeps it.
    let mut frames: Vec<_> = (0..70).map(|_| pool.alloc().unwrap()).collect();
    let sent = a.tx_burst(0, &mut frames);
    assert_eq!(sent, 63, "a ring of 64 holds 63");
    assert_eq!(frames.len(), 7);
    drop(frames);
    let mut got = Vec::new();
    assert_eq!(b.rx_burst(0, &mut got, 64), 63);
    drop(got);
    assert_eq!(pool.available(), before, "every mbuf is back in its pool");
    let second = DpdkPort::pair("link", 64, &pool).unwrap();
    assert_ne!(second.0.id(), a.id(), "each pair is new ethdevs");
    assert!(DpdkPort::pair("x", 8, &FramePool::new(4, 64)).is_err());
}
