//! The fabric's per-TLP work.
//!
//! `cargo bench -p tlpfabric-benches --bench fabric`. Groups:
//! - `lookup`: an address lookup among 256 windows plus an ID lookup, over a
//!   batch of 1024 independent probes (as a burst gives them); beside it the
//!   same address lookups by binary search (`partition_point`), and each
//!   table alone. Throughput is in lookup pairs per second.
//! - `forward`: `NodeTables::forward` on the default topology: a host's write
//!   entering the fabric (checks, source validation, BAR translation), the same
//!   write crossing a link port, and a completion leaving toward a host.
//! - `link`: TLPs through a clean reliable link (pack, frame, CRC, check,
//!   deliver, acknowledge, credits), and CRC-32C of a full frame.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use fabric::faults::{FaultConfig, Rng, Wire};
use fabric::link::{Link, LinkConfig};
use fabric::routing::{AddressTable, IdTable};
use fabric::topology::Window;
use fabric::{NodeState, NodeTables, Topology};
use rings::credits::Cost;
use std::hint::black_box;
use tlp::build::{completion, memory_write, CplFields, MemAccess};
use tlp::{Bdf, CplStatus};

const PROBES: usize = 1024;

fn lookup(c: &mut Criterion) {
    let mut rng = Rng::new(1);
    // 256 windows of 4 KiB..1 MiB with gaps, like BARs and DMA windows.
    let mut at = 0x8000_0000u64;
    let mut windows = Vec::new();
    for i in 0..256u16 {
        at += (rng.below(16) + 1) << 12;
        let size = 1 << (12 + rng.below(9));
        windows.push((Window { base: at, size }, i));
        at += size;
    }
    let table = AddressTable::new(windows.clone()).unwrap();
    let bases: Vec<u64> = windows.iter().map(|(w, _)| w.base).collect();
    let lasts: Vec<u64> = windows.iter().map(|(w, _)| w.base + w.size - 1).collect();
    let mut ids = IdTable::default();
    for i in 0..4096u16 {
        ids.set(Bdf(rng.next_u64() as u16), i);
    }
    let probes: Vec<(u64, Bdf)> = (0..PROBES)
        .map(|_| {
            let (w, _) = windows[rng.below(256) as usize];
            (w.base + rng.below(w.size), Bdf(rng.next_u64() as u16))
        })
        .collect();

    let mut g = c.benchmark_group("lookup");
    g.throughput(Throughput::Elements(PROBES as u64));
    g.bench_function("address_256+id", |b| {
        b.iter(|| {
            let mut sum = 0u32;
            for &(a, id) in black_box(probes.as_slice()) {
                sum = sum.wrapping_add(table.lookup(a).unwrap_or(0) as u32);
                sum = sum.wrapping_add(ids.get(id).unwrap_or(0) as u32);
            }
            black_box(sum);
        })
    });
    g.bench_function("address_256", |b| {
        b.iter(|| {
            let mut sum = 0u32;
            for &(a, _) in black_box(probes.as_slice()) {
                sum = sum.wrapping_add(table.lookup(a).unwrap_or(0) as u32);
            }
            black_box(sum);
        })
    });
    g.bench_function("binary_search_256", |b| {
        b.iter(|| {
            let mut sum = 0u32;
            for &(a, _) in black_box(probes.as_slice()) {
                let i = bases.partition_point(|&x| x <= a);
                if i > 0 && a <= lasts[i - 1] {
                    sum = sum.wrapping_add(i as u32);
                }
            }
            black_box(sum);
        })
    });
    g.bench_function("id", |b| {
        b.iter(|| {
            let mut sum = 0u32;
            for &(_, id) in black_box(probes.as_slice()) {
                sum = sum.wrapping_add(ids.get(id).unwrap_or(0) as u32);
            }
            black_box(sum);
        })
    });
    g.finish();
}

fn forward(c: &mut Criterion) {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../configs/default.toml");
    let t = Topology::load(path.as_ref()).unwrap();
    let sw0 = NodeTables::build(&t, 0);
    let sw1 = NodeTables::build(&t, 1);
    let mut state = NodeState::new(4);
    let mut reply = [0u8; 16];
    let mut buf = [0u8; 64];
    let n = memory_write(
        &mut buf,
        Bdf(0),
        0,
        MemAccess::dwords(0xfe00_0010, 4),
        &[7; 16],
    )
    .unwrap();
    let host_write = buf[..n].to_vec();
    let mut fabric_write = host_write.clone();
    sw0.forward(1, &mut fabric_write, &mut reply, &mut state, 0);
    let fields = CplFields {
        completer: Bdf(t.endpoints[0].id.0 + 1),
        requester: Bdf::new(t.hosts[0].fabric_bus, 0, 0),
        tag: 1,
        status: CplStatus::Sc,
        byte_count: 16,
        lower_address: 0,
    };
    let n = completion(&mut buf, fields, &[1; 16]).unwrap();
    let to_host = buf[..n].to_vec();

    let mut g = c.benchmark_group("forward");
    g.throughput(Throughput::Elements(1));
    let mut tlp = host_write.clone();
    for (name, tables, port, template) in [
        ("host_ingress_mwr", &sw0, 1u16, &host_write),
        ("link_mwr", &sw1, 0, &fabric_write),
        ("cpld_to_host", &sw0, 0, &to_host),
    ] {
        g.bench_function(name, |b| {
            b.iter(|| {
                tlp.copy_from_slice(template);
                let a = tables.forward(black_box(port), &mut tlp, &mut reply, &mut state, 0);
                black_box(&a);
            })
        });
    }
    g.finish();
}

fn link(c: &mut Criterion) {
    const BATCH: u32 = 4096;
    let config = LinkConfig {
        flush_deadline: 0,
        ..LinkConfig::default()
    };
    let peer = config.peer();
    let (mut a, mut b) = (Link::new(config).unwrap(), Link::new(peer).unwrap());
    let mut wire = Wire::new(FaultConfig::NONE);
    let mut back = Wire::new(FaultConfig::NONE);
    let mut buf = [0u8; 64];
    let n = memory_write(
        &mut buf,
        Bdf(0x100),
        0,
        MemAccess::dwords(0x1_0000_0000, 8),
        &[3; 32],
    )
    .unwrap();
    let tlp = buf[..n].to_vec();
    let cost = Cost::of(&tlp::classify(&tlp).unwrap());
    let mut frame = vec![0u8; 1514];
    let mut now = 0u64;

    let mut g = c.benchmark_group("link");
    g.throughput(Throughput::Elements(BATCH as u64));
    g.bench_function("mwr32_clean", |bench| {
        bench.iter(|| {
            let mut delivered = 0;
            let mut sent = 0;
            while delivered < BATCH {
                now += 1;
                while sent < BATCH && a.try_send(&tlp, now).is_ok() {
                    sent += 1;
                }
                a.flush();
                while let Some(n) = a.poll_transmit(now, &mut frame) {
                    wire.send(&frame[..n], now);
                }
                let mut got = 0;
                while let Some(n) = wire.recv(now, &mut frame) {
                    let _ = b.receive(&frame[..n], now, |_| got += 1);
                }
                for _ in 0..got {
                    b.release(cost);
                }
                delivered += got;
                while let Some(n) = b.poll_transmit(now, &mut frame) {
                    back.send(&frame[..n], now);
                }
                while let Some(n) = back.recv(now, &mut frame) {
                    let _ = a.receive(&frame[..n], now, |_| {});
                }
            }
        })
    });
    g.finish();

    // The frame check at frame sizes (one 64-byte write; eight; a full
    // 1,500-byte frame), this project's version (one chain at 128 bytes,
    // 512-bit folding or three chains above) beside the `crc32c` crate's,
    // in one run.
    let mut g = c.benchmark_group("crc32c");
    for len in [128usize, 698, 1500] {
        let bytes: Vec<u8> = (0..len).map(|i| (i * 131) as u8).collect();
        // Frames checked per second (bytes per second is that times `len`).
        g.throughput(Throughput::Elements(1));
        g.bench_function(format!("castagnoli/{len}"), |b| {
            b.iter(|| black_box(fabric::crc32c(black_box(&bytes))))
        });
        g.bench_function(format!("crc32c-crate/{len}"), |b| {
            b.iter(|| black_box(crc32c::crc32c(black_box(&bytes))))
        });
    }
    g.finish();
}

criterion_group!(benches, lookup, forward, link);
criterion_main!(benches);
