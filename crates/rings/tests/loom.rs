//! The ring's protocol under loom: every interleaving of a producer and a
//! consumer on a tiny ring, through wrap-around, full and empty.
//!
//! `RUSTFLAGS="--cfg loom" cargo test -p rings --test loom --release`
#![cfg(loom)]

use loom::thread;
use rings::ring;

#[test]
fn single_items_arrive_in_order_through_wrap_around() {
    loom::model(|| {
        let (mut p, mut c) = ring::<u32>(2);
        let producer = thread::spawn(move || {
            let mut next = 0;
            while next < 3 {
                if p.push(next).is_ok() {
                    next += 1;
                } else {
                    thread::yield_now();
                }
            }
        });
        let mut expect = 0;
        while expect < 3 {
            match c.pop() {
                Some(v) => {
                    assert_eq!(v, expect);
                    expect += 1;
                }
                None => thread::yield_now(),
            }
        }
        producer.join().unwrap();
        assert_eq!(c.pop(), None);
    });
}

#[test]
fn bursts_arrive_whole_and_in_order() {
    loom::model(|| {
        let (mut p, mut c) = ring::<u32>(2);
        let producer = thread::spawn(move || {
            let mut items = 0..3u32;
            let mut sent = 0;
            while sent < 3 {
                let n = p.push_burst(&mut items);
                if n == 0 {
                    thread::yield_now();
                }
                sent += n;
            }
        });
        let mut got = Vec::new();
        while got.len() < 3 {
            if c.pop_burst(2, |v| got.push(v)) == 0 {
                thread::yield_now();
            }
        }
        producer.join().unwrap();
        assert_eq!(got, [0, 1, 2]);
    });
}

#[test]
fn full_ring_refuses_and_items_left_behind_are_dropped() {
    loom::model(|| {
        let (mut p, mut c) = ring::<loom::sync::Arc<u32>>(2);
        let witness = loom::sync::Arc::new(7);
        let w = witness.clone();
        let producer = thread::spawn(move || {
            assert!(p.push(w.clone()).is_ok());
            assert!(p.push(w.clone()).is_ok());
            // Full unless the consumer already took one.
            let third = p.push(w.clone());
            drop(third);
        });
        let first = c.pop();
        producer.join().unwrap();
        drop(first);
        drop(c);
        // Every clone was dropped exactly once: only ours is left.
        assert_eq!(loom::sync::Arc::strong_count(&witness), 1);
    });
}

#[test]
fn lazily_published_slots_are_reused_and_dropped_once() {
    loom::model(|| {
        // Capacity 8 publishes the consumer's index every 2 single pops.
        let (mut p, mut c) = ring::<loom::sync::Arc<u32>>(8);
        let witness = loom::sync::Arc::new(1);
        let w = witness.clone();
        let producer = thread::spawn(move || {
            for _ in 0..3 {
                assert!(p.push(w.clone()).is_ok());
            }
        });
        let first = c.pop();
        let second = c.pop();
        producer.join().unwrap();
        drop((first, second));
        drop(c);
        assert_eq!(loom::sync::Arc::strong_count(&witness), 1);
    });
}
