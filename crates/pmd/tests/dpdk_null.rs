//! DPDK ports on `net_null` vdevs (feature `dpdk`). One EAL per test
//! process: this file is its own process, with its own file prefix.
#![cfg(feature = "dpdk")]

use pmd::dpdk::{self, DpdkPort, Mempool};
use pmd::{FramePool, Port};

fn eal() {
    dpdk::init(&[
        "--no-huge",
        "--no-pci",
        "-m",
        "256",
        "--file-prefix=tlpf-null-test",
        "--log-level=lib.eal:error",
        "--vdev=net_null0",
        "--vdev=net_null1",
        "--vdev=net_null2",
    ])
    .expect("EAL initialises with net_null vdevs");
}

#[test]
fn null_ports_receive_and_send_mbufs_without_losing_any() {
    eal();
    let pool = FramePool::dpdk(Mempool::new("null-test", 1023, 32, 2048).unwrap());
    let before = pool.available();
    let mut port = DpdkPort::open("net_null0", &pool, 256, 256).unwrap();
    let mut frames = Vec::new();
    let n = port.rx_burst(0, &mut frames, 32);
    assert_eq!(n, 32, "net_null fills every burst");
    assert!(frames.iter().all(|f| !f.is_empty()));
    // Frames are writable in place, as the pipeline translates them.
    frames[0][0] = 0xaa;
    assert_eq!(frames[0][0], 0xaa);
    // Frames built in pool buffers go out without copies.
    let mut out = pool.alloc().unwrap();
    out.buffer_mut()[..60].fill(7);
    out.set_len(60);
    frames.push(out);
    assert_eq!(port.tx_burst(0, &mut frames), 33);
    assert!(frames.is_empty());
    assert_eq!(port.tx_copies, 0);
    // A heap frame is copied into an mbuf.
    let heap = FramePool::new(1, 128);
    let mut frames = vec![heap.alloc_from(&[1; 60]).unwrap()];
    assert_eq!(port.tx_burst(0, &mut frames), 1);
    assert_eq!(port.tx_copies, 1);
    assert_eq!(port.stats().tx_frames, 34);
    // With no mbuf free to copy a heap frame into, it and the frames behind
    // it stay with the caller, in order; those before it go.
    let mut held: Vec<pmd::Frame> = std::iter::from_fn(|| pool.alloc()).collect();
    let (first, last) = (held.pop().unwrap(), held.pop().unwrap());
    let mut frames = vec![first, heap.alloc_from(&[2; 60]).unwrap(), last];
    assert_eq!(port.tx_burst(0, &mut frames), 1);
    assert_eq!(frames.len(), 2, "nothing dropped");
    assert_eq!(&frames[0][..], &[2; 60][..]);
    assert!(
        frames[1].capacity() > 128,
        "the mbuf frame is still behind it"
    );
    drop(held);
    assert_eq!(port.tx_burst(0, &mut frames), 2);
    assert_eq!(port.tx_copies, 2);
    assert_eq!(port.stats().tx_frames, 37);
    // The device's own counters agree with the port's.
    let device = port.device_stats().expect("net_null keeps counters");
    assert_eq!((device.received, device.sent), (32, 37), "{device:?}");
    assert_eq!(device.missed + device.rx_errors + device.tx_errors, 0);
    // net_null frees what it sends: every mbuf is back (the per-lcore cache
    // is not used from this thread).
    assert_eq!(pool.available(), before);
    let err = DpdkPort::open("net_null9", &pool, 64, 64).unwrap_err();
    assert!(err.to_string().contains("no such ethdev"), "{err}");
    // More queues than the device has: said before configuring it.
    let err = DpdkPort::open_queues("net_null1", &pool, u16::MAX, 64, 64).unwrap_err();
    assert!(
        err.to_string()
            .contains("queue pairs asked for, the device has at most"),
        "{err}"
    );
    assert!(
        DpdkPort::open("net_null1", &FramePool::new(4, 64), 64, 64).is_err(),
        "a heap pool cannot receive"
    );
}

#[test]
fn each_queue_of_a_port_is_a_port_of_its_own() {
    eal();
    let pool = FramePool::dpdk(Mempool::new("queues-test", 2047, 32, 2048).unwrap());
    let before = pool.available();
    let mut queues = DpdkPort::open_queues("net_null2", &pool, 2, 128, 128).unwrap();
    assert_eq!(queues.len(), 2);
    assert_eq!(queues[0].id(), queues[1].id());
    // Both queues deliver and send, each on its own thread.
    let b = queues.pop().unwrap();
    let a = queues.pop().unwrap();
    let moved: Vec<u64> = std::thread::scope(|s| {
        [a, b]
            .map(|mut q| {
                s.spawn(move || {
                    let mut frames = Vec::new();
                    let n = q.rx_burst(0, &mut frames, 32);
                    assert_eq!(q.tx_burst(0, &mut frames), n);
                    q.stats().tx_frames
                })
            })
            .map(|h| h.join().unwrap())
            .to_vec()
    });
    assert_eq!(moved, [32, 32]);
    assert_eq!(pool.available(), before, "every mbuf is back");
}

#[test]
fn mbufs_are_taken_and_freed_in_bursts() {
    eal();
    let pool = FramePool::dpdk(Mempool::new("burst-test", 255, 0, 2048).unwrap());
    let mut frames = Vec::new();
    assert_eq!(
        pool.alloc_burst(300, &mut frames),
        255,
        "only what the pool has"
    );
    assert_eq!(pool.available(), 0);
    assert!(frames.iter().all(|f| f.is_empty() && f.capacity() >= 2048));
    pmd::FramePool::free_burst(&mut frames);
    assert!(frames.is_empty());
    assert_eq!(pool.available(), 255, "every mbuf back in its pool");
}
