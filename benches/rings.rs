//! The SPSC ring against `rtrb` and `crossbeam_queue::ArrayQueue`, and the
//! pause point's cost when open.
//!
//! `cargo bench -p tlpfabric-benches --bench rings`
//!
//! Throughput: a producer and a consumer thread pinned to two different cores
//! move 8-byte items through a 1024-slot queue, one at a time and in bursts of
//! 32 (`push_burst`/`pop_burst` here, which move items straight between the
//! caller and the slots as rtrb's chunk API does, and 32 single calls for
//! ArrayQueue, which has no burst API). On virtual machines the two vCPUs'
//! placement changes cross-core costs several-fold within seconds, so the
//! contenders run interleaved, round by round, each round in a rotated order,
//! beside a measurement of the core-to-core cache-line round trip; the report
//! gives medians and the ratios of the medians. Set `RING_ROUNDS` and
//! `RING_ITEMS` to change the run's length, `RING_ONLY=name,name` to run only
//! the contenders whose names start so, `RING_THROUGHPUT=0` to skip it.
//!
//! Every contender's loops pause the core (`spin_loop`) when a call moved
//! nothing, as a poll-mode core would between empty polls; without it a
//! faster empty poll steals the shared line from the other side more often.
//!
//! Pause point: criterion measures one `offer` on an open pause point.

use criterion::{criterion_group, Criterion, Throughput};
use crossbeam_queue::ArrayQueue;
use rings::{Cost, Direction, Offer, Pausable, PauseConfig, PausePoint, TlpInfo};
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};
use tlp::{Bdf, FlowClass};

const CAPACITY: usize = 1024;
const BURST: usize = 32;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Contender {
    RingSingle,
    RingBurst,
    RtrbSingle,
    RtrbBurst,
    ArrayQueueSingle,
    ArrayQueueBurst,
}

const CONTENDERS: [Contender; 6] = [
    Contender::RingSingle,
    Contender::RingBurst,
    Contender::RtrbSingle,
    Contender::RtrbBurst,
    Contender::ArrayQueueSingle,
    Contender::ArrayQueueBurst,
];

impl Contender {
    fn name(self) -> &'static str {
        match self {
            Contender::RingSingle => "rings::spsc single",
            Contender::RingBurst => "rings::spsc burst32",
            Contender::RtrbSingle => "rtrb single",
            Contender::RtrbBurst => "rtrb burst32 (chunks)",
            Contender::ArrayQueueSingle => "ArrayQueue single",
            Contender::ArrayQueueBurst => "ArrayQueue burst32 (32 calls)",
        }
    }
}

/// Runs `produce` and `consume` on two pinned cores, started together;
/// returns the consumer's elapsed time.
fn pinned_pair(
    cores: (Option<core_affinity::CoreId>, Option<core_affinity::CoreId>),
    produce: impl FnOnce() + Send + 'static,
    consume: impl FnOnce() + Send + 'static,
) -> Duration {
    let barrier = Arc::new(Barrier::new(2));
    let b = barrier.clone();
    let producer = std::thread::spawn(move || {
        if let Some(core) = cores.0 {
            core_affinity::set_for_current(core);
        }
        b.wait();
        produce();
    });
    let consumer = std::thread::spawn(move || {
        if let Some(core) = cores.1 {
            core_affinity::set_for_current(core);
        }
        barrier.wait();
        let start = Instant::now();
        consume();
        start.elapsed()
    });
    producer.join().unwrap();
    consumer.join().unwrap()
}

/// Millions of items per second for one contender moving `n` items.
fn run(
    contender: Contender,
    n: u64,
    cores: (Option<core_affinity::CoreId>, Option<core_affinity::CoreId>),
) -> f64 {
    let sum = Arc::new(AtomicU64::new(0));
    let total = sum.clone();
    let elapsed = match contender {
        Contender::RingSingle | Contender::RingBurst => {
            let (p, c) = rings::ring::<u64>(CAPACITY);
            let burst = contender == Contender::RingBurst;
            pinned_pair(
                cores,
                move || {
                    // On this thread's stack, away from the other end's fields.
                    let mut p = p;
                    let mut i = 0;
                    while i < n {
                        let moved = if burst {
                            let mut items = i..(i + BURST as u64).min(n);
                            p.push_burst(&mut items) as u64
                        } else {
                            p.push(i).is_ok() as u64
                        };
                        i += moved;
                        if moved == 0 {
                            std::hint::spin_loop();
                        }
                    }
                },
                move || {
                    let mut c = c;
                    let (mut got, mut acc) = (0, 0u64);
                    while got < n {
                        let moved = if burst {
                            c.pop_burst(BURST, |v| acc = acc.wrapping_add(v)) as u64
                        } else if let Some(v) = c.pop() {
                            acc = acc.wrapping_add(v);
                            1
                        } else {
                            0
                        };
                        got += moved;
                        if moved == 0 {
                            std::hint::spin_loop();
                        }
                    }
                    total.store(acc, Ordering::Relaxed);
                },
            )
        }
        Contender::RtrbSingle | Contender::RtrbBurst => {
            let (p, c) = rtrb::RingBuffer::<u64>::new(CAPACITY);
            let burst = contender == Contender::RtrbBurst;
            pinned_pair(
                cores,
                move || {
                    let mut p = p;
                    let mut i = 0;
                    while i < n {
                        let moved = if burst {
                            let k = (n - i).min(BURST as u64).min(p.slots() as u64) as usize;
                            match p.write_chunk_uninit(k) {
                                Ok(chunk) if k > 0 => chunk.fill_from_iter(i..) as u64,
                                _ => 0,
                            }
                        } else {
                            p.push(i).is_ok() as u64
                        };
                        i += moved;
                        if moved == 0 {
                            std::hint::spin_loop();
                        }
                    }
                },
                move || {
                    let mut c = c;
                    let (mut got, mut acc) = (0, 0u64);
                    while got < n {
                        let moved = if burst {
                            let k = c.slots().min(BURST);
                            match c.read_chunk(k) {
                                Ok(chunk) if k > 0 => {
                                    let (a, b) = chunk.as_slices();
                                    acc = a.iter().chain(b).fold(acc, |s, v| s.wrapping_add(*v));
                                    chunk.commit_all();
                                    k as u64
                                }
                                _ => 0,
                            }
                        } else if let Ok(v) = c.pop() {
                            acc = acc.wrapping_add(v);
                            1
                        } else {
                            0
                        };
                        got += moved;
                        if moved == 0 {
                            std::hint::spin_loop();
                        }
                    }
                    total.store(acc, Ordering::Relaxed);
                },
            )
        }
        Contender::ArrayQueueSingle | Contender::ArrayQueueBurst => {
            let q = Arc::new(ArrayQueue::<u64>::new(CAPACITY));
            let (p, c) = (q.clone(), q);
            let burst = if contender == Contender::ArrayQueueBurst {
                BURST as u64
            } else {
                1
            };
            pinned_pair(
                cores,
                move || {
                    let mut i = 0;
                    while i < n {
                        let end = (i + burst).min(n);
                        let start = i;
                        while i < end && p.push(i).is_ok() {
                            i += 1;
                        }
                        if i == start {
                            std::hint::spin_loop();
                        }
                    }
                },
                move || {
                    let (mut got, mut acc) = (0, 0u64);
                    while got < n {
                        let start = got;
                        for _ in 0..burst {
                            match c.pop() {
                                Some(v) => {
                                    acc = acc.wrapping_add(v);
                                    got += 1;
                                }
                                None => break,
                            }
                        }
                        if got == start {
                            std::hint::spin_loop();
                        }
                    }
                    total.store(acc, Ordering::Relaxed);
                },
            )
        }
    };
    assert_eq!(
        sum.load(Ordering::Relaxed),
        n * (n - 1) / 2,
        "{} lost or corrupted items",
        contender.name()
    );
    n as f64 / elapsed.as_secs_f64() / 1e6
}

/// Median nanoseconds for one cache-line round trip between the two cores.
fn round_trip_ns(
    cores: (Option<core_affinity::CoreId>, Option<core_affinity::CoreId>),
    trips: u64,
) -> f64 {
    let ball = Arc::new(crossbeam_utils::CachePadded::new(AtomicU64::new(0)));
    let other = ball.clone();
    let elapsed = pinned_pair(
        cores,
        move || {
            for i in 0..trips {
                while other.load(Ordering::Acquire) != 2 * i + 1 {
                    std::hint::spin_loop();
                }
                other.store(2 * i + 2, Ordering::Release);
            }
        },
        move || {
            for i in 0..trips {
                ball.store(2 * i + 1, Ordering::Release);
                while ball.load(Ordering::Acquire) != 2 * i + 2 {
                    std::hint::spin_loop();
                }
            }
        },
    );
    elapsed.as_nanos() as f64 / trips as f64
}

fn median(v: &mut Vec<f64>) -> f64 {
    v.retain(|x| !x.is_nan());
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let m = v.len() / 2;
    if v.len().is_multiple_of(2) {
        (v[m - 1] + v[m]) / 2.0
    } else {
        v[m]
    }
}

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn throughput_report() {
    let ids = core_affinity::get_core_ids().unwrap_or_default();
    let cores = (ids.first().copied(), ids.get(1).copied());
    let rounds = env("RING_ROUNDS", 11) as usize;
    let n = env("RING_ITEMS", 2_000_000);
    println!("\nSPSC throughput, {} items of 8 bytes per run, {} rounds, capacity {CAPACITY}, cores {:?}", n, rounds, cores);
    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); CONTENDERS.len()];
    let mut rates_by_round: Vec<[f64; 6]> = Vec::new();
    let mut rtts = Vec::new();
    for round in 0..rounds {
        rtts.push(round_trip_ns(cores, 20_000));
        let only = std::env::var("RING_ONLY").ok();
        for k in 0..CONTENDERS.len() {
            let i = (k + round) % CONTENDERS.len();
            let wanted = |o: &str| o.split(',').any(|o| CONTENDERS[i].name().starts_with(o));
            if only.as_deref().is_some_and(|o| !wanted(o)) {
                rates[i].push(f64::NAN);
                continue;
            }
            rates[i].push(run(CONTENDERS[i], n, cores));
        }
        let mut this = [0.0; 6];
        for (i, r) in rates.iter().enumerate() {
            this[i] = r.last().copied().unwrap_or(f64::NAN);
        }
        rates_by_round.push(this);
    }
    let medians: Vec<f64> = rates.iter_mut().map(median).collect();
    println!(
        "{:<32} {:>12} {:>12} {:>12}",
        "contender", "median M/s", "min M/s", "max M/s"
    );
    for (i, c) in CONTENDERS.iter().enumerate() {
        let lo = rates[i].first().copied().unwrap_or(f64::NAN);
        let hi = rates[i].last().copied().unwrap_or(f64::NAN);
        println!(
            "{:<32} {:>12.1} {:>12.1} {:>12.1}",
            c.name(),
            medians[i],
            lo,
            hi
        );
    }
    let rtt = median(&mut rtts.clone());
    rtts.sort_by(|a, b| a.total_cmp(b));
    println!(
        "core-to-core round trip: median {:.0} ns (min {:.0}, max {:.0})",
        rtt,
        rtts[0],
        rtts[rtts.len() - 1]
    );
    // Ratios within each round (the two runs were minutes apart at most, and
    // adjacent in the rotation), then their median: robust to the machine
    // changing speed between rounds.
    let per_round = |a: usize, b: usize| {
        let mut r: Vec<f64> = rates_by_round
            .iter()
            .map(|round| round[a] / round[b])
            .collect();
        median(&mut r)
    };
    println!(
        "median per-round ratio, single, rings/rtrb:        {:.2}",
        per_round(0, 2)
    );
    println!(
        "median per-round ratio, burst32, rings/rtrb:       {:.2}",
        per_round(1, 3)
    );
    println!(
        "median per-round ratio, burst32, rings/ArrayQueue: {:.2}",
        per_round(1, 5)
    );
}

#[derive(Clone, Copy)]
struct Item(TlpInfo);
impl Pausable for Item {
    fn info(&self) -> TlpInfo {
        self.0
    }
}

fn pause_open(c: &mut Criterion) {
    let mut g = c.benchmark_group("pause_open");
    g.throughput(Throughput::Elements(1));
    let posted = Item(TlpInfo {
        flow: FlowClass::Posted,
        requester: Bdf(0x0100),
        tag: 0,
        final_completion: false,
        cost: Cost {
            flow: FlowClass::Posted,
            data: 1,
        },
    });
    let mut pp = PausePoint::new(PauseConfig::default());
    let now = Instant::now();
    g.bench_function("offer_posted", |b| {
        b.iter(|| {
            let r = pp.offer(Direction::Down, black_box(posted), now);
            black_box(matches!(r, Offer::Forward(_)));
        })
    });
    // A read going down and its completion coming back: the request is
    // tracked and untracked, as every non-posted request is while open.
    let read = Item(TlpInfo {
        flow: FlowClass::NonPosted,
        requester: Bdf(0x0100),
        tag: 7,
        final_completion: false,
        cost: Cost {
            flow: FlowClass::NonPosted,
            data: 0,
        },
    });
    let done = Item(TlpInfo {
        flow: FlowClass::Completion,
        requester: Bdf(0x0100),
        tag: 7,
        final_completion: true,
        cost: Cost {
            flow: FlowClass::Completion,
            data: 1,
        },
    });
    g.throughput(Throughput::Elements(2));
    g.bench_function("offer_read_and_completion", |b| {
        b.iter(|| {
            let r = pp.offer(Direction::Down, black_box(read), now);
            black_box(matches!(r, Offer::Forward(_)));
            let r = pp.offer(Direction::Up, black_box(done), now);
            black_box(matches!(r, Offer::Forward(_)));
        })
    });
    g.finish();
}

criterion_group!(benches, pause_open);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    if env("RING_THROUGHPUT", 1) != 0 {
        throughput_report();
    }
}
