//! Real Ethernet addresses on any port: frames leave from the port's own
//! MAC to its peer's (learned from the first fabric frame addressed to it,
//! broadcast until then), and arrive only if they are of the fabric's
//! EtherType and addressed to it. The native AF_PACKET port does the same
//! by itself; this gives a DPDK ethdev the same manners, so the two can
//! face each other on one segment and cross an ordinary switch.

use crate::{Frame, Port, PortInfo, PortStats};

/// A MAC address.
pub type Mac = [u8; 6];

const BROADCAST: Mac = [0xff; 6];

/// `P` with the port's own address on every frame it sends.
#[derive(Debug)]
pub struct Addressed<P> {
    inner: P,
    own: Mac,
    peer: Mac,
    peer_known: bool,
    ethertype: [u8; 2],
    foreign: u64,
}

impl<P: Port> Addressed<P> {
    /// `inner`, sending as `own`, taking frames of `ethertype`.
    pub fn new(inner: P, own: Mac, ethertype: u16) -> Addressed<P> {
        Addressed {
            inner,
            own,
            peer: BROADCAST,
            peer_known: false,
            ethertype: ethertype.to_be_bytes(),
            foreign: 0,
        }
    }

    /// Where its frames go: the peer's address, or broadcast until learned.
    pub fn peer(&self) -> Mac {
        self.peer
    }

    /// Frames ignored: of another EtherType, or addressed to another
    /// station.
    pub fn foreign(&self) -> u64 {
        self.foreign
    }

    /// Whether `frame` is the fabric's and for this port; learns the peer
    /// from the first that is.
    fn take(&mut self, frame: &Frame) -> bool {
        let ours = frame.len() >= 14
            && frame[12..14] == self.ethertype
            && (frame[..6] == self.own || frame[..6] == BROADCAST);
        if !ours {
            self.foreign += 1;
            return false;
        }
        if !self.peer_known {
            self.peer.copy_from_slice(&frame[6..12]);
            self.peer_known = true;
        }
        true
    }
}

impl<P: Port> Port for Addressed<P> {
    fn rx_burst(&mut self, queue: u16, frames: &mut Vec<Frame>, max: usize) -> usize {
        let start = frames.len();
        self.inner.rx_burst(queue, frames, max);
        // In place, in order: a burst that is all ours moves nothing.
        let mut i = start;
        while i < frames.len() {
            if self.take(&frames[i]) {
                i += 1;
            } else {
                drop(frames.remove(i));
            }
        }
        frames.len() - start
    }

    fn tx_burst(&mut self, queue: u16, frames: &mut Vec<Frame>) -> usize {
        for frame in frames.iter_mut().filter(|f| f.len() >= 12) {
            frame[..6].copy_from_slice(&self.peer);
            frame[6..12].copy_from_slice(&self.own);
        }
        self.inner.tx_burst(queue, frames)
    }

    delegate_port_info!();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ring_link, FramePool};

    fn frame(pool: &FramePool, dst: Mac, src: Mac, ethertype: u16) -> Frame {
        let mut bytes = vec![0u8; 60];
        bytes[..6].copy_from_slice(&dst);
        bytes[6..12].copy_from_slice(&src);
        bytes[12..14].copy_from_slice(&ethertype.to_be_bytes());
        pool.alloc_from(&bytes).unwrap()
    }

    #[test]
    fn frames_leave_from_its_own_address_to_the_peer_it_learned() {
        let pool = FramePool::new(16, 2048);
        let (a, mut b) = ring_link("l", 16, 2048);
        let me = [2, 0, 0, 0, 0, 1];
        let peer = [2, 0, 0, 0, 0, 9];
        let mut a = Addressed::new(a, me, 0x88b5);
        // Before it has heard anything: broadcast.
        let mut out = vec![frame(&pool, [0; 6], [0; 6], 0x88b5)];
        assert_eq!(a.tx_burst(0, &mut out), 1);
        let mut got = Vec::new();
        b.rx_burst(0, &mut got, 8);
        assert_eq!((&got[0][..6], &got[0][6..12]), (&BROADCAST[..], &me[..]));
        // The far side's frames: another EtherType, another station's, then
        // one for it (which teaches it the peer), then a broadcast.
        let mut frames = vec![
            frame(&pool, me, [7; 6], 0x0800),
            frame(&pool, [2, 0, 0, 0, 0, 5], [7; 6], 0x88b5),
            frame(&pool, me, peer, 0x88b5),
            frame(&pool, BROADCAST, [8; 6], 0x88b5),
        ];
        assert_eq!(b.tx_burst(0, &mut frames), 4);
        let mut got = Vec::new();
        assert_eq!(a.rx_burst(0, &mut got, 8), 2);
        assert_eq!(&got[0][6..12], &peer[..]);
        assert_eq!(&got[1][6..12], &[8; 6][..]);
        assert_eq!((a.foreign(), a.peer()), (2, peer));
        let mut out = vec![frame(&pool, [0; 6], [0; 6], 0x88b5)];
        a.tx_burst(0, &mut out);
        let mut got = Vec::new();
        b.rx_burst(0, &mut got, 8);
        assert_eq!((&got[0][..6], &got[0][6..12]), (&peer[..], &me[..]));
    }
}
