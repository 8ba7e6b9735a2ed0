//! Captures that do not slow the data path: a [`Tap`] on the polling core
//! copies each frame into a buffer taken from a ring of spare ones and
//! hands it on through a second ring; a writer thread turns them into a
//! pcap file (Ethernet link type, nanosecond timestamps) and gives the
//! buffers back. Nothing is allocated per frame, nothing waits on a lock or
//! on the disk: when no spare buffer is left (the writer fell behind) the
//! frame is not captured and the miss is counted, and the data path goes on
//! as if no capture were there.
//!
//! A [`Tap`] is the trace function of a [`crate::TracePort`]:
//!
//! ```no_run
//! # use pmd::{capture::Capture, ring_link, TracePort, Port};
//! let (capture, mut taps) = Capture::start("west.pcap".as_ref(), 1, 4096, 1600).unwrap();
//! let (west, _east) = ring_link("west", 1024, 1600);
//! let mut tap = taps.remove(0);
//! let west = TracePort::new(west, move |d, f: &[u8]| tap.record(d, f));
//! // ... poll `west` ...
//! let stats = capture.finish().unwrap();
//! ```

use crate::pcap::PcapWriter;
use crate::Direction;
use rings::spsc::{self, Consumer, Producer};
use std::io::{self, BufWriter};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// One frame on its way to the writer.
#[derive(Debug)]
struct Record {
    bytes: Vec<u8>,
    /// Its length on the wire (the buffer may hold less).
    wire_len: usize,
    /// Nanoseconds since the capture started.
    at_ns: u64,
}

/// What a capture saw, summed over its taps.
#[derive(Debug, Default)]
pub struct CaptureStats {
    /// Frames written to the file.
    pub written: AtomicU64,
    /// Frames not captured because no spare buffer was left.
    pub missed: AtomicU64,
}

/// The polling core's end of a capture: see the module docs.
#[derive(Debug)]
pub struct Tap {
    spare: Consumer<Vec<u8>>,
    full: Producer<Record>,
    snaplen: usize,
    started: Instant,
    stats: Arc<CaptureStats>,
    /// Directions to capture (both by default).
    only: Option<Direction>,
}

impl Tap {
    /// Captures only frames going `direction` from now on.
    pub fn only(&mut self, direction: Direction) {
        self.only = Some(direction);
    }

    /// Copies `frame` for the writer, or counts it missed.
    #[inline]
    pub fn record(&mut self, direction: Direction, frame: &[u8]) {
        if self.only.is_some_and(|d| d != direction) {
            return;
        }
        let Some(mut bytes) = self.spare.pop() else {
            self.stats.missed.fetch_add(1, Ordering::Relaxed);
            return;
        };
        bytes.clear();
        // Spare buffers hold `snaplen` bytes: this never allocates.
        bytes.extend_from_slice(&frame[..frame.len().min(self.snaplen)]);
        let record = Record {
            bytes,
            wire_len: frame.len(),
            at_ns: self.started.elapsed().as_nanos() as u64,
        };
        if let Err(back) = self.full.push(record) {
            // Cannot happen (as many slots as buffers); the buffer is lost
            // to the capture, not to the data path.
            drop(back);
            self.stats.missed.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The writer's end of a capture.
#[derive(Debug)]
pub struct Capture {
    stop: Arc<AtomicBool>,
    stats: Arc<CaptureStats>,
    writer: JoinHandle<io::Result<()>>,
}

impl Capture {
    /// Starts writing `path` (created or truncated) with `taps` taps, each
    /// with `buffers` spare buffers of `snaplen` bytes.
    pub fn start(
        path: &Path,
        taps: usize,
        buffers: usize,
        snaplen: usize,
    ) -> io::Result<(Capture, Vec<Tap>)> {
        let file = std::fs::File::create(path)?;
        let mut pcap = PcapWriter::new_nanos(BufWriter::new(file), snaplen as u32)?;
        let stop = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(CaptureStats::default());
        let started = Instant::now();
        let epoch_ns = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let mut ends = Vec::new();
        let mut tap_list = Vec::new();
        for _ in 0..taps {
            let (mut give, spare) = spsc::ring(buffers);
            let (full, take) = spsc::ring(buffers);
            for _ in 0..buffers {
                let _ = give.push(Vec::with_capacity(snaplen));
            }
            ends.push((take, give));
            tap_list.push(Tap {
                spare,
                full,
                snaplen,
                started,
                stats: stats.clone(),
                only: None,
            });
        }
        let (flag, counts) = (stop.clone(), stats.clone());
        let writer = std::thread::Builder::new().name("capture".into()).spawn(
            move || -> io::Result<()> {
                loop {
                    // Read before draining: what was pushed before the stop
                    // was asked for is written.
                    let stopping = flag.load(Ordering::Acquire);
                    let mut any = false;
                    for (take, give) in &mut ends {
                        while let Some(r) = take.pop() {
                            any = true;
                            pcap.write_nanos(epoch_ns + r.at_ns, &r.bytes, r.wire_len)?;
                            counts.written.fetch_add(1, Ordering::Relaxed);
                            let _ = give.push(r.bytes);
                        }
                    }
                    if stopping {
                        pcap.finish()?;
                        return Ok(());
                    }
                    if !any {
                        std::thread::sleep(Duration::from_micros(200));
                    }
                }
            },
        )?;
        Ok((
            Capture {
                stop,
                stats,
                writer,
            },
            tap_list,
        ))
    }

    /// Frames written and missed so far.
    pub fn stats(&self) -> (u64, u64) {
        (
            self.stats.written.load(Ordering::Relaxed),
            self.stats.missed.load(Ordering::Relaxed),
        )
    }

    /// Writes what the taps handed over, closes the file, and says how many
    /// frames were written and missed. The taps' cores should have stopped.
    pub fn finish(self) -> io::Result<(u64, u64)> {
        self.stop.store(true, Ordering::Release);
        match self.writer.join() {
            Ok(r) => r?,
            Err(_) => return Err(io::Error::other("the capture's writer thread panicked")),
        }
        Ok((
            self.stats.written.load(Ordering::Relaxed),
            self.stats.missed.load(Ordering::Relaxed),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ring_link, FramePool, Port, TracePort};

    #[test]
    fn frames_both_ways_reach_the_file_in_order_with_their_times() {
        let path = std::env::temp_dir().join(format!("pmd-capture-{}.pcap", std::process::id()));
        let (capture, mut taps) = Capture::start(&path, 1, 64, 128).unwrap();
        let mut tap = taps.remove(0);
        let pool = FramePool::new(16, 256);
        let (a, mut b) = ring_link("l", 16, 256);
        let mut a = TracePort::new(a, move |d, f: &[u8]| tap.record(d, f));
        // Three frames out of `a`, one (longer than the snap length) into it.
        let mut out: Vec<_> = (1..=3u8)
            .map(|i| pool.alloc_from(&[i; 60]).unwrap())
            .collect();
        assert_eq!(a.tx_burst(0, &mut out), 3);
        let mut back = vec![pool.alloc_from(&[9; 200]).unwrap()];
        assert_eq!(b.tx_burst(0, &mut back), 1);
        let mut got = Vec::new();
        assert_eq!(a.rx_burst(0, &mut got, 8), 1);
        drop(a);
        assert_eq!(capture.finish().unwrap(), (4, 0));
        let bytes = std::fs::read(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        // Nanosecond magic, Ethernet, snap length 128.
        assert_eq!(&bytes[..4], &0xa1b2_3c4du32.to_le_bytes());
        assert_eq!(&bytes[16..20], &128u32.to_le_bytes());
        let mut at = 24;
        let mut seen = Vec::new();
        let mut last = 0u64;
        while at < bytes.len() {
            let w = |o: usize| u32::from_le_bytes(bytes[at + o..at + o + 4].try_into().unwrap());
            let (secs, nanos, kept, wire) = (w(0), w(4), w(8) as usize, w(12) as usize);
            assert!(nanos < 1_000_000_000);
            let t = secs as u64 * 1_000_000_000 + nanos as u64;
            assert!(t >= last, "times in order");
            last = t;
            seen.push((bytes[at + 16], kept, wire));
            at += 16 + kept;
        }
        assert_eq!(crate::pcap::frames(&bytes).unwrap().len(), 4);
        assert_eq!(seen, [(1, 60, 60), (2, 60, 60), (3, 60, 60), (9, 128, 200)]);
    }

    #[test]
    fn a_writer_that_falls_behind_costs_captures_not_frames() {
        let path =
            std::env::temp_dir().join(format!("pmd-capture-miss-{}.pcap", std::process::id()));
        // Two spare buffers: the third frame of a burst finds none.
        let (capture, mut taps) = Capture::start(&path, 1, 2, 64).unwrap();
        let mut tap = taps.remove(0);
        let pool = FramePool::new(64, 128);
        let (a, mut b) = ring_link("l", 64, 128);
        let mut a = TracePort::new(a, move |d, f: &[u8]| tap.record(d, f));
        let mut out: Vec<_> = (0..40u8)
            .map(|i| pool.alloc_from(&[i; 60]).unwrap())
            .collect();
        assert_eq!(a.tx_burst(0, &mut out), 40);
        let mut got = Vec::new();
        assert_eq!(b.rx_burst(0, &mut got, 64), 40, "every frame went on");
        drop(a);
        let (written, missed) = capture.finish().unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(written + missed, 40);
        assert!(
            missed > 0 && written >= 2,
            "{written} written, {missed} missed"
        );
    }
}
