//! The host model.

use crate::outbox::{receive, Outbox};
use crate::stream::{self, Integrity, StreamCheck};
use lcore::Task;
use pmd::{Frame, FramePool, Port};
use tlp::build::{memory_read, memory_write, MemAccess};
use tlp::{Bdf, CplStatus, Kind, Tlp};

/// How a host model behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostConfig {
    /// The requester ID it uses (in its own domain).
    pub requester: Bdf,
    /// Its function's BAR, as it sees it.
    pub bar: u64,
    /// Bytes of the BAR it writes and reads back, a multiple of `payload`.
    pub region: u64,
    /// Bytes per write (a multiple of 4, at least 16).
    pub payload: usize,
    /// Writes per poll (the offered load).
    pub writes_per_poll: usize,
    /// A read-back after every this many writes (0: no reads).
    pub read_every: u64,
    /// Nanoseconds a read may wait for its completion (the PCIe
    /// specification allows 50 µs to 50 ms; 50 ms is the usual default).
    pub completion_timeout: u64,
    /// Writes to send in all (`u64::MAX`: no end).
    pub total_writes: u64,
    /// The stream number of its writes.
    pub stream: u32,
    /// The stream number of the device's DMA it expects.
    pub dma_stream: u32,
}

impl Default for HostConfig {
    fn default() -> Self {
        HostConfig {
            requester: Bdf(0),
            bar: 0xfe00_0000,
            region: 0x1_0000,
            payload: 64,
            writes_per_poll: 4,
            read_every: 8,
            completion_timeout: 50_000_000,
            total_writes: u64::MAX,
            stream: 1,
            dma_stream: 2,
        }
    }
}

/// A host: sequence-numbered writes into its function's BAR, reads of
/// what it wrote, checks of the device's DMA and of every completion.
pub struct HostModel<P> {
    config: HostConfig,
    port: P,
    outbox: Outbox,
    rx: Vec<Frame>,
    write_seq: u64,
    /// Per tag: the write sequence number whose data the read expects, and
    /// when it was sent.
    outstanding: Vec<Option<(u64, u64)>>,
    in_flight: usize,
    next_tag: u16,
    dma: StreamCheck,
    integrity: Integrity,
    interrupts: u64,
    tlp: Vec<u8>,
}

impl<P> std::fmt::Debug for HostModel<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostModel")
            .field("writes", &self.write_seq)
            .field("integrity", &self.integrity)
            .finish()
    }
}

const TAGS: usize = 1024;

impl<P: Port> HostModel<P> {
    /// A host on `port`, building frames in `pool`.
    pub fn new(config: HostConfig, port: P, pool: FramePool) -> HostModel<P> {
        HostModel {
            tlp: vec![0u8; 16 + config.payload],
            config,
            port,
            outbox: Outbox::new(pool),
            rx: Vec::with_capacity(32),
            write_seq: 0,
            outstanding: vec![None; TAGS],
            in_flight: 0,
            next_tag: 0,
            dma: StreamCheck::default(),
            integrity: Integrity::default(),
            interrupts: 0,
        }
    }

    /// What it has seen.
    pub fn integrity(&self) -> &Integrity {
        &self.integrity
    }

    /// Writes sent.
    pub fn writes(&self) -> u64 {
        self.write_seq
    }

    /// Reads not yet completed.
    pub fn reads_in_flight(&self) -> usize {
        self.in_flight
    }

    /// Memory writes that were not tracked DMA (interrupts).
    pub fn interrupts(&self) -> u64 {
        self.interrupts
    }

    /// Whether it has sent everything and nothing is outstanding.
    pub fn done(&self) -> bool {
        self.write_seq >= self.config.total_writes
            && self.in_flight == 0
            && self.outbox.backlog() == 0
    }

    fn slot_address(&self, seq: u64) -> u64 {
        let slots = (self.config.region / self.config.payload as u64).max(1);
        self.config.bar + (seq % slots) * self.config.payload as u64
    }

    fn on_tlp(&mut self, bytes: &[u8]) {
        let Ok(t) = Tlp::new_checked(bytes) else {
            self.integrity.data_mismatches += 1;
            return;
        };
        match t.kind() {
            Some(Kind::MWr) => match stream::read(t.payload()) {
                Some((s, seq, intact)) if s == self.config.dma_stream => {
                    self.dma.arrive(seq, &mut self.integrity);
                    if !intact {
                        self.integrity.data_mismatches += 1;
                    }
                }
                _ => self.interrupts += 1,
            },
            Some(Kind::CplD | Kind::Cpl) => {
                let tag = t.tag() as usize;
                let mine = t.requester_id() == self.config.requester;
                let Some((seq, _)) = self
                    .outstanding
                    .get_mut(tag)
                    .and_then(Option::take)
                    .filter(|_| mine)
                else {
                    self.integrity.unexpected_completions += 1;
                    return;
                };
                self.in_flight -= 1;
                self.integrity.delivered += 1;
                let ok = t.status() == CplStatus::Sc
                    && matches!(stream::read(t.payload()), Some((s, q, true)) if s == self.config.stream && q == seq);
                if !ok {
                    self.integrity.data_mismatches += 1;
                }
            }
            _ => {}
        }
    }

    fn send_write(&mut self) -> bool {
        let seq = self.write_seq;
        let payload = self.config.payload;
        let access = MemAccess::dwords(self.slot_address(seq), (payload / 4) as u16);
        let mut data = [0u8; 4096];
        stream::fill(&mut data[..payload], self.config.stream, seq);
        let Ok(n) = memory_write(
            &mut self.tlp,
            self.config.requester,
            0,
            access,
            &data[..payload],
        ) else {
            return false;
        };
        if !self.outbox.push(&self.tlp[..n]) {
            return false;
        }
        self.write_seq += 1;
        self.integrity.sent += 1;
        true
    }

    fn send_read(&mut self, seq: u64, now: u64) -> bool {
        if self.in_flight >= TAGS {
            return false;
        }
        while self.outstanding[self.next_tag as usize].is_some() {
            self.next_tag = (self.next_tag + 1) % TAGS as u16;
        }
        let tag = self.next_tag;
        let access = MemAccess::dwords(self.slot_address(seq), (self.config.payload / 4) as u16);
        let Ok(n) = memory_read(&mut self.tlp, self.config.requester, tag, access) else {
            return false;
        };
        if !self.outbox.push(&self.tlp[..n]) {
            return false;
        }
        self.outstanding[tag as usize] = Some((seq, now));
        self.in_flight += 1;
        self.next_tag = (tag + 1) % TAGS as u16;
        self.integrity.sent += 1;
        true
    }
}

impl<P: Port + Send> Task for HostModel<P> {
    fn name(&self) -> &str {
        "host"
    }

    fn poll(&mut self, now: u64) -> usize {
        let mut rx = std::mem::take(&mut self.rx);
        let mut got = Vec::new();
        let (_, bad) = receive(&mut self.port, &mut rx, |t| got.push(t.to_vec()));
        self.rx = rx;
        self.integrity.data_mismatches += bad as u64;
        let mut done = got.len();
        for t in &got {
            self.on_tlp(t);
        }
        // Reads that waited too long.
        if self.in_flight > 0 {
            for slot in self.outstanding.iter_mut() {
                if let Some((_, at)) = *slot {
                    if now.saturating_sub(at) > self.config.completion_timeout {
                        *slot = None;
                        self.in_flight -= 1;
                        self.integrity.completion_timeouts += 1;
                    }
                }
            }
        }
        if self.outbox.backlog() < 8 {
            for _ in 0..self.config.writes_per_poll {
                if self.write_seq >= self.config.total_writes || !self.send_write() {
                    break;
                }
                done += 1;
                let seq = self.write_seq - 1;
                if self.config.read_every > 0
                    && seq.is_multiple_of(self.config.read_every)
                    && self.send_read(seq, now)
                {
                    done += 1;
                }
            }
        }
        self.outbox.flush(&mut self.port);
        done
    }
}
