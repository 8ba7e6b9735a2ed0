//! Parse, classify and emit of every TLP kind.
//!
//! `cargo bench -p tlpfabric-benches --bench tlp`. Groups:
//! - `parse_classify`: what the dataplane does per TLP — `tlp::inspect`: the
//!   structural checks of the zero-copy view, the switch profile's checks and
//!   the classification (routing, flow class, credits) in one pass;
//! - `repr_parse`: `tlp::parse` into a plain `Repr` plus `classify` (the
//!   decoder's and the control plane's path);
//! - `parse_completer`: `Repr` parse with every malformed-TLP check;
//! - `classify`, `emit` (any `Repr`), `build` (the fixed-shape builders for
//!   reads, writes and completions);
//! - `rewrite`: Requester ID and address translated in place in the received
//!   bytes, which is what forwarding does instead of re-emitting;
//! - `overhead/loop`: the measuring loop itself, for reading the others.
//!
//! Routines return `()`: criterion's loop copies whatever a routine returns
//! byte by byte (volatile reads, without its nightly-only `real_blackbox`
//! feature), which would dominate a few-nanosecond measurement.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::hint::black_box;
use tlp::{classify, Profile, Repr, Tlp, Validator};
use tlpfabric_benches::all_samples;

fn bench(c: &mut Criterion) {
    let switch = Validator::new(Profile::Switch);
    let completer = Validator::default();
    let samples = all_samples();

    let mut g = c.benchmark_group("overhead");
    g.throughput(Throughput::Elements(1));
    let first = samples[0].1.clone();
    g.bench_function("loop", |b| {
        b.iter(|| {
            black_box(black_box(first.as_slice())[0]);
        })
    });
    g.finish();

    let mut g = c.benchmark_group("parse_classify");
    g.throughput(Throughput::Elements(1));
    for (name, bytes) in &samples {
        g.bench_function(name.as_str(), |b| {
            b.iter(|| {
                black_box(&tlp::inspect(black_box(bytes.as_slice()), &switch));
            })
        });
    }
    g.finish();

    let mut g = c.benchmark_group("repr_parse");
    g.throughput(Throughput::Elements(1));
    for (name, bytes) in &samples {
        g.bench_function(name.as_str(), |b| {
            b.iter(|| {
                let bytes = black_box(bytes.as_slice());
                let class = classify(bytes);
                let repr = tlp::parse(bytes, &switch);
                black_box((class.is_ok(), repr.is_ok()));
                black_box(&repr);
            })
        });
    }
    g.finish();

    let mut g = c.benchmark_group("parse_completer");
    g.throughput(Throughput::Elements(1));
    for (name, bytes) in samples
        .iter()
        .filter(|(n, _)| n.starts_with("MRd_") || n.starts_with("MWr_"))
    {
        g.bench_function(name.as_str(), |b| {
            b.iter(|| {
                black_box(&tlp::parse(black_box(bytes.as_slice()), &completer));
            })
        });
    }
    g.finish();

    let mut g = c.benchmark_group("classify");
    g.throughput(Throughput::Elements(1));
    for (name, bytes) in samples
        .iter()
        .filter(|(n, _)| n.starts_with("MRd_") || n.starts_with("CplD"))
    {
        g.bench_function(name.as_str(), |b| {
            b.iter(|| {
                black_box(&classify(black_box(bytes.as_slice())));
            })
        });
    }
    g.finish();

    // What the fabric does instead of re-emitting: translate IDs and address
    // in place in the received bytes.
    let mut g = c.benchmark_group("rewrite");
    g.throughput(Throughput::Elements(1));
    for (name, bytes) in samples
        .iter()
        .filter(|(n, _)| n.starts_with("MRd_") || n.starts_with("MWr_"))
    {
        let mut buf = bytes.clone();
        g.bench_function(name.as_str(), |b| {
            b.iter(|| {
                let mut view = Tlp::new_unchecked(black_box(buf.as_mut_slice()));
                view.set_requester_id(black_box(tlp::Bdf(0x0300)));
                view.set_address(black_box(0x9000_2000));
                black_box(view.as_bytes().as_ptr());
            })
        });
    }
    g.finish();

    // The builders traffic generators use for the common kinds.
    let mut g = c.benchmark_group("build");
    g.throughput(Throughput::Elements(1));
    let mut out = [0u8; 64];
    let access = tlp::build::MemAccess::dwords(0x8000_1000, 4);
    g.bench_function("MRd_3dw", |b| {
        b.iter(|| {
            let r = tlp::build::memory_read(
                &mut out,
                black_box(tlp::Bdf(0x0100)),
                black_box(0x42),
                black_box(access),
            );
            black_box(r.is_ok());
            black_box(&out);
        })
    });
    let long = tlp::build::MemAccess::dwords(0x12_3456_7000, 1);
    let data = [0xa5u8; 4];
    g.bench_function("MWr_4dw", |b| {
        b.iter(|| {
            let r = tlp::build::memory_write(
                &mut out,
                black_box(tlp::Bdf(0x0100)),
                0x42,
                black_box(long),
                &data,
            );
            black_box(r.is_ok());
            black_box(&out);
        })
    });
    let cpl = tlp::build::CplFields {
        completer: tlp::Bdf(0x0200),
        requester: tlp::Bdf(0x0100),
        tag: 0x42,
        status: tlp::CplStatus::Sc,
        byte_count: 4,
        lower_address: 0,
    };
    g.bench_function("CplD_3dw", |b| {
        b.iter(|| {
            let r = tlp::build::completion(&mut out, black_box(cpl), &data);
            black_box(r.is_ok());
            black_box(&out);
        })
    });
    g.finish();

    let mut g = c.benchmark_group("emit");
    g.throughput(Throughput::Elements(1));
    for (name, bytes) in &samples {
        let view = Tlp::new_checked(bytes.as_slice()).unwrap();
        let repr = Repr::parse(&view).unwrap();
        let mut out = [0u8; 64];
        g.bench_function(name.as_str(), |b| {
            b.iter(|| {
                black_box(black_box(&repr).emit(&mut out).is_ok());
                black_box(&out);
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
