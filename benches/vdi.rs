//! A VDI serving the requests it completes itself.
//!
//! `cargo bench -p tlpfabric-benches --bench vdi`: a configuration read, a
//! configuration write, a read and a write of a shadowable register, and an
//! MSI-X table read, each served by a VDI of the shipped "nic" template in
//! migrating mode (completion written to a buffer).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::hint::black_box;
use std::path::Path;
use tlp::build::{memory_read, memory_write, MemAccess};
use tlp::{Bdf, Body, Kind, MsgRouting, Repr};
use vdi::{Mode, Template, Vdi, Verdict};

const FUNCTION: Bdf = Bdf::new(0x40, 0, 1);
const HOST: Bdf = Bdf::new(0xff, 0, 0);

fn config(kind: Kind, register: u16, data: &[u8]) -> Vec<u8> {
    let mut repr = Repr::new(kind, MsgRouting::Local, data);
    repr.requester = HOST;
    if let Body::Config {
        target,
        register: r,
        ..
    } = &mut repr.body
    {
        *target = FUNCTION;
        *r = register;
    }
    let mut b = vec![0u8; repr.buffer_len()];
    repr.emit(&mut b).unwrap();
    b
}

fn bench(c: &mut Criterion) {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../configs/templates/nic.toml");
    let template = Template::load(Path::new(path)).unwrap();
    let mut v = Vdi::new(&template, FUNCTION);
    v.set_mode(Mode::Migrating);
    let mut out = [0u8; 64];
    for (reg, value) in [(0x10u16, 0x8002_0000u32), (0x1c, 0x8010_0000), (0x04, 6)] {
        v.serve(&config(Kind::CfgWr0, reg, &value.to_le_bytes()), &mut out);
    }
    let mut buf = [0u8; 32];
    let n = memory_read(&mut buf, HOST, 1, MemAccess::dwords(0x8002_5400, 1)).unwrap();
    let mrd = buf[..n].to_vec();
    let n = memory_write(
        &mut buf,
        HOST,
        1,
        MemAccess::dwords(0x8002_5400, 1),
        &[1, 2, 3, 4],
    )
    .unwrap();
    let mwr = buf[..n].to_vec();
    let n = memory_read(&mut buf, HOST, 1, MemAccess::dwords(0x8010_0010, 1)).unwrap();
    let msix = buf[..n].to_vec();
    let cases = [
        ("cfg_read", config(Kind::CfgRd0, 0x00, &[])),
        ("cfg_write", config(Kind::CfgWr0, 0x3c, &[5, 0, 0, 0])),
        ("mrd_shadowable", mrd),
        ("mwr_shadowable", mwr),
        ("mrd_msix_table", msix),
    ];
    let mut g = c.benchmark_group("vdi_serve");
    g.throughput(Throughput::Elements(1));
    for (name, tlp) in &cases {
        assert!(
            matches!(v.serve(tlp, &mut out), Verdict::Completed(_)),
            "{name}"
        );
        g.bench_function(*name, |b| {
            b.iter(|| {
                let verdict = v.serve(black_box(tlp), &mut out);
                black_box(&verdict);
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
