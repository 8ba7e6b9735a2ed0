//! The host model.

use crate::edge::{allowed, Edge};
use crate::stream::{self, Integrity, StreamCheck};
use lcore::Task;
use pmd::{FramePool, Port};
use tlp::build::{memory_read, memory_write, MemAccess};
use tlp::{Bdf, CplStatus, Kind, Tlp};

/// One function the host writes to and reads from (one binding).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostTarget {
    /// The function's BAR, as the host sees it.
    pub bar: u64,
    /// Bytes of the BAR it writes and reads back, a multiple of the payload.
    pub region: u64,
    /// The stream number of its writes to this function.
    pub stream: u32,
    /// The stream number of the function's DMA it expects.
    pub dma_stream: u32,
}

/// How a host model behaves.
#[derive(Debug, Clone, PartialEq)]
pub struct HostConfig {
    /// The requester ID it uses (in its own domain).
    pub requester: Bdf,
    /// The functions bound to it; writes go to each in turn.
    pub targets: Vec<HostTarget>,
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
    /// Writes per second at most, by the `now` polls are given (`None`: as
    /// fast as polls go).
    pub rate: Option<f64>,
    /// No new writes from this time on (nanoseconds, as `now`); what is in
    /// flight completes.
    pub until: u64,
}

impl Default for HostConfig {
    fn default() -> Self {
        HostConfig {
            requester: Bdf(0),
            targets: vec![HostTarget {
                bar: 0xfe00_0000,
                region: 0x1_0000,
                stream: 1,
                dma_stream: 2,
            }],
            payload: 64,
            writes_per_poll: 4,
            read_every: 8,
            completion_timeout: 50_000_000,
            total_writes: u64::MAX,
            rate: None,
            until: u64::MAX,
        }
    }
}

/// A host: sequence-numbered writes into its functions' BARs, reads of
/// what it wrote, checks of the functions' DMA and of every completion.
pub struct HostModel<P> {
    config: HostConfig,
    port: P,
    edge: Edge,
    /// The time of the current poll.
    now: u64,
    /// Writes sent in all, and per target.
    writes: u64,
    target_seq: Vec<u64>,
    /// Per tag: the target, the write sequence number whose data the read
    /// expects, and when it was sent.
    outstanding: Vec<Option<(usize, u64, u64)>>,
    in_flight: usize,
    next_tag: u16,
    /// Per target: the check of its DMA stream.
    dma: Vec<StreamCheck>,
    integrity: Integrity,
    interrupts: u64,
    tlp: Vec<u8>,
}

impl<P> std::fmt::Debug for HostModel<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostModel")
            .field("writes", &self.writes)
            .field("integrity", &self.integrity)
            .finish()
    }
}

const TAGS: usize = 1024;

impl<P: Port> HostModel<P> {
    /// A host on `port`, building frames in `pool`.
    pub fn new(config: HostConfig, port: P, pool: FramePool) -> HostModel<P> {
        let n = config.targets.len();
        HostModel {
            tlp: vec![0u8; 16 + config.payload],
            config,
            port,
            edge: Edge::new(pool),
            now: 0,
            writes: 0,
            target_seq: vec![0; n],
            outstanding: vec![None; TAGS],
            in_flight: 0,
            next_tag: 0,
            dma: vec![StreamCheck::default(); n],
            integrity: Integrity::default(),
            interrupts: 0,
        }
    }

    /// Runs a reliable link over its port, as a PCIe link runs between a
    /// host and its switch: the fabric's credits then pace it, and what it
    /// cannot send yet waits with it.
    pub fn with_link(
        &mut self,
        config: fabric::link::LinkConfig,
    ) -> Result<(), fabric::link::LinkConfigError> {
        self.edge.with_link(config)
    }

    /// What it has seen.
    pub fn integrity(&self) -> &Integrity {
        &self.integrity
    }

    /// Writes sent.
    pub fn writes(&self) -> u64 {
        self.writes
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
        (self.writes >= self.config.total_writes || self.config.targets.is_empty())
            && self.in_flight == 0
            && self.edge.backlog() == 0
    }

    fn slot_address(&self, target: usize, seq: u64) -> u64 {
        let t = &self.config.targets[target];
        let slots = (t.region / self.config.payload as u64).max(1);
        t.bar + (seq % slots) * self.config.payload as u64
    }

    fn on_tlp(&mut self, bytes: &[u8]) {
        let Ok(t) = Tlp::new_checked(bytes) else {
            self.integrity.data_mismatches += 1;
            return;
        };
        match t.kind() {
            Some(Kind::MWr) => {
                let stamp = stream::read(t.payload());
                let target = stamp.and_then(|(s, _, _)| {
                    self.config.targets.iter().position(|x| x.dma_stream == s)
                });
                match (stamp, target) {
                    (Some((_, seq, intact)), Some(i)) => {
                        self.dma[i].arrive(seq, &mut self.integrity);
                        if !intact {
                            self.integrity.data_mismatches += 1;
                        }
                    }
                    _ => self.interrupts += 1,
                }
            }
            Some(Kind::CplD | Kind::Cpl) => {
                let tag = t.tag() as usize;
                let mine = t.requester_id() == self.config.requester;
                let entry = self
                    .outstanding
                    .get_mut(tag)
                    .filter(|_| mine)
                    .and_then(Option::take);
                let Some((target, seq, _)) = entry else {
                    self.integrity.unexpected_completions += 1;
                    return;
                };
                self.in_flight -= 1;
                self.integrity.delivered += 1;
                let stream = self.config.targets[target].stream;
                let ok = t.status() == CplStatus::Sc
                    && matches!(stream::read(t.payload()), Some((s, q, true)) if s == stream && q == seq);
                if !ok {
                    self.integrity.data_mismatches += 1;
                }
            }
            _ => {}
        }
    }

    /// Sends the next write, to the next target in turn; returns the target
    /// and the write's sequence number in its stream.
    fn send_write(&mut self) -> Option<(usize, u64)> {
        let n_targets = self.config.targets.len();
        if n_targets == 0 {
            return None;
        }
        let target = (self.writes % n_targets as u64) as usize;
        let seq = self.target_seq[target];
        let payload = self.config.payload;
        let access = MemAccess::dwords(self.slot_address(target, seq), (payload / 4) as u16);
        let mut data = [0u8; 4096];
        stream::fill(
            &mut data[..payload],
            self.config.targets[target].stream,
            seq,
        );
        let n = memory_write(
            &mut self.tlp,
            self.config.requester,
            0,
            access,
            &data[..payload],
        )
        .ok()?;
        if !self.edge.push(&self.tlp[..n], self.now) {
            return None;
        }
        self.writes += 1;
        self.target_seq[target] += 1;
        self.integrity.sent += 1;
        Some((target, seq))
    }

    fn send_read(&mut self, target: usize, seq: u64, now: u64) -> bool {
        if self.in_flight >= TAGS {
            return false;
        }
        while self.outstanding[self.next_tag as usize].is_some() {
            self.next_tag = (self.next_tag + 1) % TAGS as u16;
        }
        let tag = self.next_tag;
        let dws = (self.config.payload / 4) as u16;
        let access = MemAccess::dwords(self.slot_address(target, seq), dws);
        let Ok(n) = memory_read(&mut self.tlp, self.config.requester, tag, access) else {
            return false;
        };
        if !self.edge.push(&self.tlp[..n], self.now) {
            return false;
        }
        self.outstanding[tag as usize] = Some((target, seq, now));
        self.in_flight += 1;
        self.next_tag = (tag + 1) % TAGS as u16;
        self.integrity.sent += 1;
        true
    }
}

impl<P: Port + Send + 'static> Task for HostModel<P> {
    fn name(&self) -> &str {
        "host"
    }

    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }

    fn poll(&mut self, now: u64) -> usize {
        self.now = now;
        let (tlps, bad) = self.edge.receive(&mut self.port, now);
        self.integrity.data_mismatches += bad;
        let mut done = tlps.len();
        for t in &tlps {
            self.on_tlp(t);
        }
        self.edge.recycle(tlps);
        // Reads that waited too long.
        if self.in_flight > 0 {
            for slot in self.outstanding.iter_mut() {
                if let Some((_, _, at)) = *slot {
                    if now.saturating_sub(at) > self.config.completion_timeout {
                        *slot = None;
                        self.in_flight -= 1;
                        self.integrity.completion_timeouts += 1;
                    }
                }
            }
        }
        if self.edge.ready() {
            let allowed = allowed(self.config.rate, now);
            for _ in 0..self.config.writes_per_poll {
                if self.writes >= self.config.total_writes.min(allowed) || now >= self.config.until
                {
                    break;
                }
                let Some((target, seq)) = self.send_write() else {
                    break;
                };
                done += 1;
                let count = self.writes - 1;
                if self.config.read_every > 0
                    && count.is_multiple_of(self.config.read_every)
                    && self.send_read(target, seq, now)
                {
                    done += 1;
                }
            }
        }
        self.edge.flush(&mut self.port, now);
        done
    }
}
