//! The endpoint model.

use crate::outbox::{receive, Outbox};
use crate::stream::{self, Integrity, StreamCheck};
use lcore::Task;
use pmd::{Frame, FramePool, Port};
use tlp::build::{
    completion, memory_write, read_byte_count, read_lower_address, CplFields, MemAccess,
};
use tlp::{Bdf, CplStatus, Kind, Tlp};

/// How an endpoint model behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EndpointConfig {
    /// Its function's ID (as the device knows it: the fabric's).
    pub function: Bdf,
    /// Its BAR, as the device knows it (the fabric's address).
    pub bar: u64,
    /// Bytes of memory behind the BAR.
    pub size: usize,
    /// Where its DMA writes go (an address of the host's memory, as the
    /// host programmed it).
    pub dma: u64,
    /// Bytes of host memory the DMA cycles through, a multiple of `payload`.
    pub dma_region: u64,
    /// Bytes per DMA write (a multiple of 4, at least 16).
    pub payload: usize,
    /// DMA writes per poll.
    pub dma_per_poll: usize,
    /// DMA writes in all (`u64::MAX`: no end).
    pub total_dma: u64,
    /// The stream number of its DMA.
    pub stream: u32,
    /// The stream number of the host's writes it expects.
    pub host_stream: u32,
}

impl Default for EndpointConfig {
    fn default() -> Self {
        EndpointConfig {
            function: Bdf::new(0x40, 0, 1),
            bar: 0x8001_0000,
            size: 0x1_0000,
            dma: 0x1_0000_0000,
            dma_region: 0x1_0000,
            payload: 64,
            dma_per_poll: 2,
            total_dma: u64::MAX,
            stream: 2,
            host_stream: 1,
        }
    }
}

/// A device: memory behind its BAR that answers reads with what was
/// written, and a stream of sequence-numbered DMA writes to its host.
pub struct EndpointModel<P> {
    config: EndpointConfig,
    port: P,
    outbox: Outbox,
    rx: Vec<Frame>,
    memory: Vec<u8>,
    host: StreamCheck,
    dma_seq: u64,
    integrity: Integrity,
    tlp: Vec<u8>,
}

impl<P> std::fmt::Debug for EndpointModel<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EndpointModel")
            .field("dma", &self.dma_seq)
            .field("integrity", &self.integrity)
            .finish()
    }
}

impl<P: Port> EndpointModel<P> {
    /// A device on `port`, building frames in `pool`.
    pub fn new(config: EndpointConfig, port: P, pool: FramePool) -> EndpointModel<P> {
        EndpointModel {
            memory: vec![0; config.size],
            tlp: vec![0; 16 + 4096],
            config,
            port,
            outbox: Outbox::new(pool),
            rx: Vec::with_capacity(32),
            host: StreamCheck::default(),
            dma_seq: 0,
            integrity: Integrity::default(),
        }
    }

    /// What it has seen.
    pub fn integrity(&self) -> &Integrity {
        &self.integrity
    }

    /// DMA writes sent.
    pub fn dma_writes(&self) -> u64 {
        self.dma_seq
    }

    /// Whether it has sent all its DMA.
    pub fn done(&self) -> bool {
        self.dma_seq >= self.config.total_dma && self.outbox.backlog() == 0
    }

    fn offset(&self, address: u64, len: usize) -> Option<usize> {
        let off = address.checked_sub(self.config.bar)? as usize;
        (off + len <= self.memory.len()).then_some(off)
    }

    fn on_tlp(&mut self, bytes: &[u8]) {
        let Ok(t) = Tlp::new_checked(bytes) else {
            self.integrity.data_mismatches += 1;
            return;
        };
        match t.kind() {
            Some(Kind::MWr) => {
                let payload = t.payload();
                if let Some(off) = self.offset(t.address(), payload.len()) {
                    self.memory[off..off + payload.len()].copy_from_slice(payload);
                }
                if let Some((s, seq, intact)) = stream::read(payload) {
                    if s == self.config.host_stream {
                        self.host.arrive(seq, &mut self.integrity);
                        if !intact {
                            self.integrity.data_mismatches += 1;
                        }
                    }
                }
            }
            Some(Kind::MRd) => {
                let len = t.length_dw() as usize * 4;
                let (status, data) = match self.offset(t.address(), len) {
                    Some(off) => (CplStatus::Sc, &self.memory[off..off + len]),
                    None => (CplStatus::Ur, &[][..]),
                };
                let fields = CplFields {
                    completer: self.config.function,
                    requester: t.requester_id(),
                    tag: t.tag(),
                    status,
                    byte_count: if status == CplStatus::Sc {
                        read_byte_count(t.length_dw(), t.first_be(), t.last_be())
                    } else {
                        4
                    },
                    lower_address: read_lower_address(t.address(), t.first_be()),
                };
                if let Ok(n) = completion(&mut self.tlp, fields, data) {
                    let _ = self.outbox.push(&self.tlp[..n]);
                }
            }
            _ => {}
        }
    }

    fn send_dma(&mut self) -> bool {
        let seq = self.dma_seq;
        let payload = self.config.payload;
        let slots = (self.config.dma_region / payload as u64).max(1);
        let address = self.config.dma + (seq % slots) * payload as u64;
        let mut data = [0u8; 4096];
        stream::fill(&mut data[..payload], self.config.stream, seq);
        let access = MemAccess::dwords(address, (payload / 4) as u16);
        let Ok(n) = memory_write(
            &mut self.tlp,
            self.config.function,
            0,
            access,
            &data[..payload],
        ) else {
            return false;
        };
        if !self.outbox.push(&self.tlp[..n]) {
            return false;
        }
        self.dma_seq += 1;
        self.integrity.sent += 1;
        true
    }
}

impl<P: Port + Send> Task for EndpointModel<P> {
    fn name(&self) -> &str {
        "endpoint"
    }

    fn poll(&mut self, _now: u64) -> usize {
        let mut rx = std::mem::take(&mut self.rx);
        let mut got = Vec::new();
        let (_, bad) = receive(&mut self.port, &mut rx, |t| got.push(t.to_vec()));
        self.rx = rx;
        self.integrity.data_mismatches += bad as u64;
        let mut done = got.len();
        for t in &got {
            self.on_tlp(t);
        }
        if self.outbox.backlog() < 8 {
            for _ in 0..self.config.dma_per_poll {
                if self.dma_seq >= self.config.total_dma || !self.send_dma() {
                    break;
                }
                done += 1;
            }
        }
        self.outbox.flush(&mut self.port);
        done
    }
}
