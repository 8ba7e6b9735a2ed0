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

/// Calls `f` with each TLP of each frame received from `port`; returns the
/// number of frames (bad frames are skipped and counted in the second value).
pub(crate) fn receive<P: Port>(
    port: &mut P,
    rx: &mut Vec<Frame>,
    mut f: impl FnMut(&[u8]),
) -> (usize, usize) {
    let n = port.rx_burst(0, rx, 32);
    let mut bad = 0;
    for frame in rx.drain(..) {
        match FrameView::new_checked(&frame[..], ETHERTYPE) {
            Ok(view) => view.tlps().for_each(&mut f),
            Err(_) => bad += 1,
        }
    }
    (n, bad)
}
