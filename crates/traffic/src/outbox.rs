//! Frames out of a model: TLPs packed into frames from a pool, sent in
//! order, what the port cannot take kept for the next poll.

use fabric::frame::{Frame as FrameView, FrameHeader, OpenFrame, DEFAULT_MTU, ETHERTYPE};
use pmd::{Frame, FramePool, Port};

pub(crate) struct Outbox {
    pool: FramePool,
    open: Option<(Frame, OpenFrame)>,
    pending: Vec<Frame>,
}

impl Outbox {
    pub(crate) fn new(pool: FramePool) -> Outbox {
        Outbox {
            pool,
            open: None,
            pending: Vec::with_capacity(64),
        }
    }

    /// Queues one TLP; false if no buffer was free.
    pub(crate) fn push(&mut self, tlp: &[u8]) -> bool {
        loop {
            if let Some((frame, open)) = &mut self.open {
                if open.push(frame.buffer_mut(), tlp) {
                    return true;
                }
                if open.count() == 0 {
                    return false;
                }
                self.seal();
            }
            let Some(mut frame) = self.pool.alloc() else {
                return false;
            };
            match OpenFrame::start(frame.buffer_mut(), &FrameHeader::default(), DEFAULT_MTU) {
                Ok(open) => self.open = Some((frame, open)),
                Err(_) => return false,
            }
        }
    }

    fn seal(&mut self) {
        if let Some((mut frame, open)) = self.open.take() {
            let len = open.finish(frame.buffer_mut());
            frame.set_len(len);
            self.pending.push(frame);
        }
    }

    /// Frames waiting for the port (an open frame counts).
    pub(crate) fn backlog(&self) -> usize {
        self.pending.len() + self.open.is_some() as usize
    }

    /// Seals the open frame and offers everything to `port`.
    pub(crate) fn flush<P: Port>(&mut self, port: &mut P) {
        self.seal();
        if !self.pending.is_empty() {
            port.tx_burst(0, &mut self.pending);
        }
    }
}

/// TLPs in from a port: each received frame checked and its TLPs copied
/// out, so the model can handle them while it sends.
pub(crate) struct Inbox {
    rx: Vec<Frame>,
    tlps: Vec<Vec<u8>>,
}

impl Inbox {
    pub(crate) fn new() -> Inbox {
        Inbox {
            rx: Vec::with_capacity(32),
            tlps: Vec::new(),
        }
    }

    /// Receives a burst from `port`; returns its TLPs (give the vector back
    /// with [`Inbox::recycle`]) and the number of frames that failed their
    /// checks.
    pub(crate) fn receive<P: Port>(&mut self, port: &mut P) -> (Vec<Vec<u8>>, u64) {
        let mut tlps = std::mem::take(&mut self.tlps);
        port.rx_burst(0, &mut self.rx, 32);
        let mut bad = 0;
        for frame in self.rx.drain(..) {
            match FrameView::new_checked(&frame[..], ETHERTYPE) {
                Ok(view) => tlps.extend(view.tlps().map(<[u8]>::to_vec)),
                Err(_) => bad += 1,
            }
        }
        (tlps, bad)
    }

    /// Takes back the vector [`Inbox::receive`] lent, emptied.
    pub(crate) fn recycle(&mut self, mut tlps: Vec<Vec<u8>>) {
        tlps.clear();
        self.tlps = tlps;
    }
}

/// How many items a rate allows by time `now` (`None`: no limit).
pub(crate) fn allowed(rate: Option<f64>, now: u64) -> u64 {
    match rate {
        Some(rate) => (rate * now as f64 / 1e9) as u64,
        None => u64::MAX,
    }
}
