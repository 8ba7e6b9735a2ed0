//! A million TLPs across a link that drops, corrupts, duplicates, reorders
//! and delays 1% of frames each way: every TLP arrives exactly once, in
//! order, and every credit comes back.

use fabric::faults::{FaultConfig, Wire};
use fabric::frame::ETHERNET_LEN;
use fabric::link::{Link, LinkConfig};
use rings::credits::Cost;
use tlp::build::{completion, memory_read, memory_write, CplFields, MemAccess};
use tlp::{Bdf, CplStatus, CreditType, Tlp};

/// TLP `n` of a stream: a write, a read or a completion in turn, of sizes
/// that vary, each carrying `n` where it can be read back.
fn make(n: u32, buf: &mut [u8]) -> usize {
    let requester = Bdf(0x0100);
    let payload_dw = 1 + (n % 16) as u16;
    let payload: Vec<u8> = (0..payload_dw as u32 * 4)
        .map(|i| (n.wrapping_mul(31).wrapping_add(i)) as u8)
        .collect();
    let address = 0x1_0000_0000 + n as u64 * 64;
    match n % 3 {
        0 => memory_write(
            buf,
            requester,
            0,
            MemAccess::dwords(address, payload_dw),
            &payload,
        )
        .unwrap(),
        1 => memory_read(buf, requester, 0, MemAccess::dwords(address, payload_dw)).unwrap(),
        _ => {
            let mut p = payload;
            p[..4].copy_from_slice(&n.to_be_bytes());
            let fields = CplFields {
                completer: Bdf(0x4000),
                requester,
                tag: (n % 256) as u16,
                status: CplStatus::Sc,
                byte_count: p.len() as u16,
                lower_address: 0,
            };
            completion(buf, fields, &p).unwrap()
        }
    }
}

/// The stream number a TLP carries.
fn number(bytes: &[u8]) -> u32 {
    let t = Tlp::new_checked(bytes).unwrap();
    match t.kind().unwrap() {
        tlp::Kind::CplD => u32::from_be_bytes(t.payload()[..4].try_into().unwrap()),
        _ => ((t.address() - 0x1_0000_0000) / 64) as u32,
    }
}

struct End {
    link: Link,
    next: u32,
    total: u32,
    got: Vec<u32>,
    /// Delivered TLPs still in the receive buffer, released a few ticks later.
    buffered: std::collections::VecDeque<(u64, Cost)>,
}

impl End {
    fn step_send(&mut self, now: u64, buf: &mut [u8]) {
        while self.next < self.total {
            let n = make(self.next, buf);
            if self.link.try_send(&buf[..n], now).is_err() {
                break;
            }
            self.next += 1;
        }
    }

    fn step_release(&mut self, now: u64) {
        while let Some(&(at, cost)) = self.buffered.front() {
            if at > now {
                break;
            }
            self.link.release(cost);
            self.buffered.pop_front();
        }
    }

    fn receive(&mut self, frame: &[u8], now: u64) {
        let (got, buffered) = (&mut self.got, &mut self.buffered);
        let _ = self.link.receive(frame, now, |t| {
            got.push(number(t));
            buffered.push_back((now + 2, Cost::of(&tlp::classify(t).unwrap())));
        });
    }
}

/// One tick on the cable: each end transmits what it has, each receives
/// what has arrived. With `drain`, frames held back for reordering go too.
fn exchange(
    a: &mut End,
    b: &mut End,
    ab: &mut Wire,
    ba: &mut Wire,
    now: u64,
    frame: &mut [u8],
    drain: bool,
) {
    while let Some(n) = a.link.poll_transmit(now, frame) {
        ab.send(&frame[..n], now);
    }
    while let Some(n) = b.link.poll_transmit(now, frame) {
        ba.send(&frame[..n], now);
    }
    if drain {
        ab.flush_held();
        ba.flush_held();
    }
    while let Some(n) = ab.recv(now, frame) {
        b.receive(&frame[..n], now);
    }
    while let Some(n) = ba.recv(now, frame) {
        a.receive(&frame[..n], now);
    }
}

#[test]
fn a_million_tlps_cross_a_lossy_link_exactly_once_in_order() {
    const TOTAL: u32 = 1_000_000;
    const BACK: u32 = 100_000;
    let faults = FaultConfig {
        drop: 0.01,
        duplicate: 0.01,
        reorder: 0.01,
        corrupt: 0.01,
        delay: 0.01,
        delay_ticks: 5,
        seed: 0x5eed,
    };
    let config = LinkConfig {
        replay_slots: 32,
        flush_deadline: 1,
        replay_timeout: 60,
        update_interval: 8,
        credits: [32, 256, 32, 0, 32, 256],
        ..LinkConfig::default()
    };
    let peer = config.peer();
    let end = |config, total| End {
        link: Link::new(config).unwrap(),
        next: 0,
        total,
        got: Vec::with_capacity(TOTAL as usize),
        buffered: Default::default(),
    };
    let (mut a, mut b) = (end(config, TOTAL), end(peer, BACK));
    let mut ab = Wire::new(faults);
    let mut ba = Wire::new(FaultConfig {
        seed: faults.seed + 1,
        ..faults
    });
    let mut buf = [0u8; 256];
    let mut frame = vec![0u8; ETHERNET_LEN + config.mtu];
    let mut now = 0u64;
    while b.got.len() < TOTAL as usize
        || a.got.len() < BACK as usize
        || !a.link.is_idle()
        || !b.link.is_idle()
        || !a.buffered.is_empty()
        || !b.buffered.is_empty()
    {
        assert!(
            now < 20_000_000,
            "stalled at {now}: a {:?} b {:?}",
            a.link.stats(),
            b.link.stats()
        );
        a.step_send(now, &mut buf);
        b.step_send(now, &mut buf);
        exchange(&mut a, &mut b, &mut ab, &mut ba, now, &mut frame, false);
        a.step_release(now);
        b.step_release(now);
        now += 1;
    }
    // Let the last credit updates cross (they may be lost: updates repeat).
    for _ in 0..200 {
        exchange(&mut a, &mut b, &mut ab, &mut ba, now, &mut frame, true);
        now += 1;
    }

    assert_eq!(b.got.len(), TOTAL as usize);
    assert!(
        b.got.iter().enumerate().all(|(i, &n)| i as u32 == n),
        "in order, exactly once"
    );
    assert!(a.got.iter().enumerate().all(|(i, &n)| i as u32 == n));
    assert_eq!(a.got.len(), BACK as usize);
    // Credits conserved: each sender again has everything the peer advertised.
    for end in [&a, &b] {
        for t in CreditType::ALL {
            let advertised = config.credits[t.index()];
            let expected = (advertised != 0).then_some(advertised);
            assert_eq!(end.link.credits_available(t), expected, "{t:?}");
        }
    }
    // The faults really happened, about 1% each (10,000 frames at least).
    let s = ab.stats();
    assert!(s.frames > 20_000, "{s:?}");
    for n in [s.dropped, s.duplicated, s.reordered, s.corrupted, s.delayed] {
        assert!(n * 200 > s.frames && n * 50 < s.frames, "{s:?}");
    }
    let (sa, sb) = (a.link.stats(), b.link.stats());
    assert!(sa.frames_replayed > 0 && sb.frames_bad_crc > 0 && sb.duplicates > 0);
    assert_eq!(sb.tlps_delivered, TOTAL as u64);
    eprintln!("a→b faults {s:?}\na {sa:?}\nb {sb:?}\nticks {now}");
}
