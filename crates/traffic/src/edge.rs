//! A model's end of its port: TLPs packed into frames and sent in order,
//! received frames unpacked; optionally with a reliable link, whose credits
//! then pace the model as a PCIe link's credits pace a device.

use fabric::frame::{Frame as FrameView, FrameHeader, OpenFrame, DEFAULT_MTU, ETHERTYPE};
use fabric::link::{Link, LinkConfig, LinkConfigError};
use pmd::{Frame, FramePool, Port};
use rings::credits::Cost;
use std::collections::VecDeque;

pub(crate) struct Edge {
    pool: FramePool,
    open: Option<(Frame, OpenFrame)>,
    pending: Vec<Frame>,
    link: Option<Link>,
    /// TLPs the link could not take yet, in order.
    waiting: VecDeque<Vec<u8>>,
    rx: Vec<Frame>,
    tlps: Vec<Vec<u8>>,
    /// What the model sent, with the times (if asked for).
    pub(crate) sent: crate::ArrivalLog,
}

impl Edge {
    pub(crate) fn new(pool: FramePool) -> Edge {
        Edge {
            pool,
            open: None,
            pending: Vec::with_capacity(64),
            link: None,
            waiting: VecDeque::new(),
            rx: Vec::with_capacity(32),
            tlps: Vec::new(),
            sent: crate::ArrivalLog::default(),
        }
    }

    /// The edge, keeping a log of up to `capacity` TLPs sent, with their
    /// times.
    pub(crate) fn logging_sent(mut self, capacity: usize) -> Edge {
        self.sent = crate::ArrivalLog::with_capacity(capacity);
        self
    }

    /// Notes a TLP taken to send, if a log was asked for.
    fn note_sent(&mut self, tlp: &[u8], now: u64) {
        if self.sent.capacity() > 0 {
            if let Ok(t) = tlp::Tlp::new_checked(tlp) {
                self.sent.record(now, &t);
            }
        }
    }

    /// Runs a reliable link over the port (its peer must run one too).
    pub(crate) fn with_link(&mut self, config: LinkConfig) -> Result<(), LinkConfigError> {
        self.link = Some(Link::new(config)?);
        Ok(())
    }

    /// Whether new traffic may be offered now: nothing waits for credits.
    pub(crate) fn ready(&self) -> bool {
        self.waiting.is_empty() && self.pending.len() < 8
    }

    /// Queues one TLP to send; false if it could not be taken (no frame
    /// buffer). With a link, a TLP without credits waits, in order.
    pub(crate) fn push(&mut self, tlp: &[u8], now: u64) -> bool {
        if self.link.is_some() {
            self.note_sent(tlp, now);
        }
        if let Some(link) = &mut self.link {
            if self.waiting.is_empty() && link.try_send(tlp, now).is_ok() {
                return true;
            }
            self.waiting.push_back(tlp.to_vec());
            return true;
        }
        loop {
            if let Some((frame, open)) = &mut self.open {
                if open.push(frame.buffer_mut(), tlp) {
                    self.note_sent(tlp, now);
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

    /// Frames and TLPs not yet on the wire, or not yet acknowledged.
    /// What its link will let it send now, of credit type `t` (`None`:
    /// no link, or infinite), and the TLPs waiting for credits.
    pub(crate) fn credits(&self, t: tlp::CreditType) -> (Option<u16>, usize) {
        let available = self.link.as_ref().and_then(|l| l.credits_available(t));
        (available, self.waiting.len())
    }

    pub(crate) fn backlog(&self) -> usize {
        let link = self.link.as_ref().is_some_and(|l| !l.is_idle()) as usize;
        self.pending.len() + self.open.is_some() as usize + self.waiting.len() + link
    }

    /// Sends what can go now to `port`.
    pub(crate) fn flush<P: Port>(&mut self, port: &mut P, now: u64) {
        self.seal();
        if let Some(link) = &mut self.link {
            while let Some(t) = self.waiting.front() {
                if link.try_send(t, now).is_err() {
                    break;
                }
                self.waiting.pop_front();
            }
            // A model's poll is its batch: what it queued goes now, as a
            // driver rings the doorbell after queueing a batch.
            link.flush();
            while self.pending.len() < 64 && link.has_transmit(now) {
                let Some(mut frame) = self.pool.alloc() else {
                    break;
                };
                match link.poll_transmit(now, frame.buffer_mut()) {
                    Some(len) => {
                        frame.set_len(len);
                        self.pending.push(frame);
                    }
                    None => break,
                }
            }
        }
        if !self.pending.is_empty() {
            port.tx_burst(0, &mut self.pending);
        }
    }

    /// Receives a burst from `port`; returns its TLPs (give the vector back
    /// with [`Edge::recycle`]), the number of frames that failed their
    /// checks, and whether the burst was full (more may be waiting). With a
    /// link, credits go back as soon as the TLPs are taken.
    pub(crate) fn receive<P: Port>(&mut self, port: &mut P, now: u64) -> (Vec<Vec<u8>>, u64, bool) {
        let mut tlps = std::mem::take(&mut self.tlps);
        let full = port.rx_burst(0, &mut self.rx, RX_BURST) == RX_BURST;
        let mut bad = 0;
        for frame in self.rx.drain(..) {
            match &mut self.link {
                Some(link) => {
                    let start = tlps.len();
                    if link
                        .receive(&frame, now, |t| tlps.push(t.to_vec()))
                        .is_err()
                    {
                        bad += 1;
                    }
                    for t in &tlps[start..] {
                        if let Ok(c) = tlp::classify(t) {
                            link.release(Cost::of(&c));
                        }
                    }
                }
                None => match FrameView::new_checked(&frame[..], ETHERTYPE) {
                    Ok(view) => tlps.extend(view.tlps().map(<[u8]>::to_vec)),
                    Err(_) => bad += 1,
                },
            }
        }
        (tlps, bad, full)
    }

    /// Takes back the vector [`Edge::receive`] lent, emptied.
    pub(crate) fn recycle(&mut self, mut tlps: Vec<Vec<u8>>) {
        tlps.clear();
        self.tlps = tlps;
    }
}

/// Frames a model takes from its port per burst.
pub(crate) const RX_BURST: usize = 32;

/// Items a pacer lets build up while none could be sent.
pub(crate) const MAX_BACKLOG: u64 = 64;

/// Paces items to a rate (`None`: no limit). Time in which nothing could be
/// sent (its VM migrating away, its function stopped, its core
/// descheduled) builds up at most [`MAX_BACKLOG`] items to send at once
/// afterwards: a source that catches up on everything it owes floods the
/// fabric with a burst no workload would send.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pacer {
    rate: Option<f64>,
    /// Items the rate allowed that were given up.
    forgone: u64,
}

impl Pacer {
    pub(crate) fn new(rate: Option<f64>) -> Pacer {
        Pacer { rate, forgone: 0 }
    }

    /// How many items may have been sent by time `now`, `sent` having been.
    pub(crate) fn allowed(&mut self, now: u64, sent: u64) -> u64 {
        let Some(rate) = self.rate else {
            return u64::MAX;
        };
        let due = ((rate * now as f64 / 1e9) as u64).saturating_sub(self.forgone);
        let cap = sent.saturating_add(MAX_BACKLOG);
        if due > cap {
            self.forgone += due - cap;
            return cap;
        }
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pacer_keeps_its_rate_and_bounds_its_backlog() {
        let mut p = Pacer::new(Some(1e6)); // one item per µs
        assert_eq!(p.allowed(10_000, 0), 10);
        assert_eq!(p.allowed(10_000, 10), 10);
        // Nothing sent for a millisecond: a backlog of 64, not 1,000.
        assert_eq!(p.allowed(1_010_000, 10), 10 + MAX_BACKLOG);
        // Then the rate again, from there.
        assert_eq!(
            p.allowed(1_020_000, 10 + MAX_BACKLOG),
            10 + MAX_BACKLOG + 10
        );
        assert_eq!(Pacer::new(None).allowed(5, 0), u64::MAX);
    }
}
