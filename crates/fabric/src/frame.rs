//! The encapsulation frame: how TLPs cross a fabric link.
//!
//! One Ethernet II frame carries a fabric header and any number of TLPs, each
//! with a length prefix, then a CRC-32C. All multi-byte fields are big-endian.
//!
//! | bytes        | field |
//! |--------------|-------|
//! | 0..6         | destination MAC |
//! | 6..12        | source MAC |
//! | 12..14       | EtherType (0x88B5, IEEE local experimental, by default) |
//! | 14           | version (2) |
//! | 15           | flags: bit 0 ACK (`ack` is valid), bit 1 NAK (replay from `ack + 1`), bit 2 CREDITS (`credits` are valid), bit 3 FCS (the trailer is zero: the link relies on the Ethernet FCS) |
//! | 16..18       | TLP count |
//! | 18..20       | source node |
//! | 20..22       | destination node |
//! | 22..26       | sequence number of this frame (unused when the TLP count is 0) |
//! | 26..30       | cumulative ACK: the last sequence number received in order |
//! | 30..42       | credits allocated so far (modulo 2^16), PH, PD, NPH, NPD, CplH, CplD, as an UpdateFC would carry them |
//! | 42..         | TLPs, each a 2-byte length then that many bytes |
//! | next 4       | CRC-32C of every byte before it from the EtherType (byte 12) on; zero with FCS |
//! | rest         | padding (short Ethernet frames are padded to 60 bytes), ignored |
//!
//! The CRC follows the last TLP rather than ending the frame, so padding
//! added on the wire does not disturb it. It leaves out the addresses: a
//! port sets them as a frame leaves (its own, its peer's), and a frame
//! passed on whole keeps its CRC. [`Frame::new_checked`] never
//! panics: every malformed frame is a [`FrameError`].

use crate::crc32c::crc32c;
use core::fmt;

/// The EtherType used unless configured otherwise: IEEE 802 local experimental 1.
pub const ETHERTYPE: u16 = 0x88b5;
/// The frame format version this code reads and writes (2: the CRC covers
/// the frame from the EtherType on; version 1 covered the addresses too).
pub const VERSION: u8 = 2;
/// Ethernet header length.
pub const ETHERNET_LEN: usize = 14;
/// Ethernet and fabric headers together.
pub const HEADER_LEN: usize = 42;
/// The CRC trailer.
pub const CRC_LEN: usize = 4;
/// Where the CRC's coverage starts: at the EtherType. The addresses before
/// it are the link's, which a port may set as the frame leaves.
pub const CRC_FROM: usize = 12;

/// The CRC-32C of a frame whose CRC goes at `frame.len()`: of the bytes from
/// [`CRC_FROM`] on (none if the frame is shorter).
#[inline]
pub fn crc_of(frame: &[u8]) -> u32 {
    crc32c(frame.get(CRC_FROM..).unwrap_or(&[]))
}
/// The default link MTU (Ethernet payload bytes).
pub const DEFAULT_MTU: usize = 1500;
/// The largest MTU accepted (jumbo frames).
pub const MAX_MTU: usize = 9000;

mod field {
    use core::ops::Range;
    pub const DST: Range<usize> = 0..6;
    pub const SRC: Range<usize> = 6..12;
    pub const ETHERTYPE: Range<usize> = 12..14;
    pub const VERSION: usize = 14;
    pub const FLAGS: usize = 15;
    pub const COUNT: Range<usize> = 16..18;
    pub const SOURCE: Range<usize> = 18..20;
    pub const DESTINATION: Range<usize> = 20..22;
    pub const SEQUENCE: Range<usize> = 22..26;
    pub const ACK: Range<usize> = 26..30;
    pub const CREDITS: Range<usize> = 30..42;
}

/// How a link knows a frame arrived undamaged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Integrity {
    /// The frame's own CRC-32C (the default): damage is caught whatever
    /// the port, and the reliable link replays the frame.
    #[default]
    Crc32c,
    /// The Ethernet FCS: a NIC drops a frame whose FCS is bad, and the
    /// reliable link replays it as a lost one. No CRC-32C is computed; the
    /// trailer is zero and the FCS flag set. A port that does not check
    /// the FCS (veth, TAP, in-memory rings) breaks that promise: damage on
    /// such a link passes unseen.
    Fcs,
}

impl Integrity {
    /// Its name in topologies and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Integrity::Crc32c => "crc32c",
            Integrity::Fcs => "fcs",
        }
    }

    /// The integrity named `name` (`crc32c` or `fcs`).
    pub fn from_name(name: &str) -> Option<Integrity> {
        match name {
            "crc32c" => Some(Integrity::Crc32c),
            "fcs" => Some(Integrity::Fcs),
            _ => None,
        }
    }
}

/// Flag bits of byte 15.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Flags(pub u8);

impl Flags {
    /// `ack` is valid.
    pub const ACK: u8 = 0x01;
    /// A gap or bad frame was seen: replay from `ack + 1`.
    pub const NAK: u8 = 0x02;
    /// `credits` are valid.
    pub const CREDITS: u8 = 0x04;
    /// No CRC-32C: the trailer is zero, the Ethernet FCS protects the
    /// frame ([`Integrity::Fcs`]).
    pub const FCS: u8 = 0x08;

    /// Whether all of `bits` are set.
    pub fn has(self, bits: u8) -> bool {
        self.0 & bits == bits
    }
}

/// Why a frame was rejected (or could not be built).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    /// Shorter than its headers and CRC.
    Truncated {
        /// Bytes needed.
        needed: usize,
        /// Bytes present.
        available: usize,
    },
    /// Not the fabric's EtherType.
    EtherType {
        /// What the frame carries.
        found: u16,
        /// What the link expects.
        expected: u16,
    },
    /// A frame format version this code does not read.
    Version(u8),
    /// A TLP's length prefix runs past the frame (or leaves no room for the CRC).
    TlpOverrun {
        /// Index of the TLP in the frame.
        index: u16,
        /// Byte offset of its length prefix.
        at: usize,
        /// The length it claims.
        length: usize,
    },
    /// A TLP shorter than the smallest TLP header (12 bytes).
    TlpTooShort {
        /// Index of the TLP in the frame.
        index: u16,
        /// Byte offset of its length prefix.
        at: usize,
        /// Its length.
        length: usize,
    },
    /// The CRC-32C does not match.
    Crc {
        /// Computed over the frame.
        computed: u32,
        /// Found in the frame.
        found: u32,
        /// Offset of the CRC.
        at: usize,
    },
    /// The buffer given to the writer cannot hold the headers and CRC.
    BufferTooSmall {
        /// Bytes needed.
        needed: usize,
        /// Bytes given.
        available: usize,
    },
    /// An MTU outside 64..=9000.
    Mtu(usize),
    /// A frame that relies on the FCS on a link that checks CRC-32Cs, or
    /// the other way round: the two ends are configured differently (or
    /// the flag was damaged).
    Integrity {
        /// What the link expects.
        expected: Integrity,
        /// What the frame says.
        found: Integrity,
    },
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            FrameError::Truncated { needed, available } => {
                write!(
                    f,
                    "frame truncated: {needed} bytes needed, {available} present"
                )
            }
            FrameError::EtherType { found, expected } => {
                write!(f, "EtherType {found:#06x}, expected {expected:#06x}")
            }
            FrameError::Version(v) => write!(f, "frame version {v}, expected {VERSION}"),
            FrameError::TlpOverrun { index, at, length } => {
                write!(
                    f,
                    "TLP {index} at byte {at} claims {length} bytes, past the end of the frame"
                )
            }
            FrameError::TlpTooShort { index, at, length } => {
                write!(
                    f,
                    "TLP {index} at byte {at} is {length} bytes, shorter than a TLP header"
                )
            }
            FrameError::Crc {
                computed,
                found,
                at,
            } => {
                write!(
                    f,
                    "CRC-32C {found:#010x} at byte {at}, computed {computed:#010x}"
                )
            }
            FrameError::BufferTooSmall { needed, available } => {
                write!(
                    f,
                    "buffer of {available} bytes cannot hold a frame of {needed}"
                )
            }
            FrameError::Mtu(m) => write!(f, "MTU {m} outside 64..={MAX_MTU}"),
            FrameError::Integrity { expected, found } => write!(
                f,
                "frame protected by {}, the link expects {} (both ends of a link must agree)",
                found.name(),
                expected.name()
            ),
        }
    }
}

impl std::error::Error for FrameError {}

fn be16(b: &[u8]) -> u16 {
    u16::from_be_bytes([b[0], b[1]])
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// A checked view over one received frame.
#[derive(Debug, Clone)]
pub struct Frame<T: AsRef<[u8]>> {
    buffer: T,
    /// Offset of the CRC (= end of the last TLP).
    crc_at: usize,
}

impl<T: AsRef<[u8]>> Frame<T> {
    /// Checks headers, every TLP's length and the CRC; `ethertype` is what
    /// the link expects.
    pub fn new_checked(buffer: T, ethertype: u16) -> Result<Frame<T>, FrameError> {
        Self::new_checked_as(buffer, ethertype, Integrity::Crc32c)
    }

    /// As [`Frame::new_checked`] on a link protected by `integrity`: the
    /// frame must say the same, and with [`Integrity::Fcs`] its trailer is
    /// not checked (the port's FCS check stands for it).
    pub fn new_checked_as(
        buffer: T,
        ethertype: u16,
        integrity: Integrity,
    ) -> Result<Frame<T>, FrameError> {
        let b = buffer.as_ref();
        if b.len() < HEADER_LEN + CRC_LEN {
            return Err(FrameError::Truncated {
                needed: HEADER_LEN + CRC_LEN,
                available: b.len(),
            });
        }
        let found = be16(&b[field::ETHERTYPE]);
        if found != ethertype {
            return Err(FrameError::EtherType {
                found,
                expected: ethertype,
            });
        }
        if b[field::VERSION] != VERSION {
            return Err(FrameError::Version(b[field::VERSION]));
        }
        let count = be16(&b[field::COUNT]);
        let mut at = HEADER_LEN;
        for index in 0..count {
            // The prefix, the TLP and the CRC after it must all fit.
            let Some(prefix) = b.get(at..at + 2) else {
                return Err(FrameError::TlpOverrun {
                    index,
                    at,
                    length: 0,
                });
            };
            let length = be16(prefix) as usize;
            if at + 2 + length + CRC_LEN > b.len() {
                return Err(FrameError::TlpOverrun { index, at, length });
            }
            if length < 12 {
                return Err(FrameError::TlpTooShort { index, at, length });
            }
            at += 2 + length;
        }
        if at + CRC_LEN > b.len() {
            return Err(FrameError::Truncated {
                needed: at + CRC_LEN,
                available: b.len(),
            });
        }
        let found = if Flags(b[field::FLAGS]).has(Flags::FCS) {
            Integrity::Fcs
        } else {
            Integrity::Crc32c
        };
        if found != integrity {
            return Err(FrameError::Integrity {
                expected: integrity,
                found,
            });
        }
        if integrity == Integrity::Fcs {
            return Ok(Frame { buffer, crc_at: at });
        }
        let computed = crc_of(&b[..at]);
        let stored = be32(&b[at..at + CRC_LEN]);
        if computed != stored {
            return Err(FrameError::Crc {
                computed,
                found: stored,
                at,
            });
        }
        Ok(Frame { buffer, crc_at: at })
    }

    fn b(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    /// Destination MAC.
    pub fn dst(&self) -> [u8; 6] {
        let mut m = [0; 6];
        m.copy_from_slice(&self.b()[field::DST]);
        m
    }

    /// Source MAC.
    pub fn src(&self) -> [u8; 6] {
        let mut m = [0; 6];
        m.copy_from_slice(&self.b()[field::SRC]);
        m
    }

    /// Flags.
    pub fn flags(&self) -> Flags {
        Flags(self.b()[field::FLAGS])
    }

    /// Number of TLPs.
    pub fn tlp_count(&self) -> u16 {
        be16(&self.b()[field::COUNT])
    }

    /// Sending node.
    pub fn source_node(&self) -> u16 {
        be16(&self.b()[field::SOURCE])
    }

    /// Receiving node.
    pub fn destination_node(&self) -> u16 {
        be16(&self.b()[field::DESTINATION])
    }

    /// This frame's sequence number.
    pub fn sequence(&self) -> u32 {
        be32(&self.b()[field::SEQUENCE])
    }

    /// The cumulative ACK.
    pub fn ack(&self) -> u32 {
        be32(&self.b()[field::ACK])
    }

    /// Credits allocated so far, per type (PH, PD, NPH, NPD, CplH, CplD).
    pub fn credits(&self) -> [u16; 6] {
        let c = &self.b()[field::CREDITS];
        let mut out = [0; 6];
        for (i, v) in out.iter_mut().enumerate() {
            *v = be16(&c[i * 2..]);
        }
        out
    }

    /// The frame's length without padding.
    pub fn len(&self) -> usize {
        self.crc_at + CRC_LEN
    }

    /// Whether the frame carries no TLP (a standalone ACK, NAK or credit update).
    pub fn is_empty(&self) -> bool {
        self.tlp_count() == 0
    }

    /// The TLPs, in order, each as its bytes.
    pub fn tlps(&self) -> Tlps<'_> {
        Tlps {
            bytes: &self.b()[..self.crc_at],
            at: HEADER_LEN,
        }
    }
}

/// Iterator over a checked frame's TLPs.
#[derive(Debug, Clone)]
pub struct Tlps<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Iterator for Tlps<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let prefix = self.bytes.get(self.at..self.at + 2)?;
        let length = be16(prefix) as usize;
        let tlp = self.bytes.get(self.at + 2..self.at + 2 + length)?;
        self.at += 2 + length;
        Some(tlp)
    }
}

/// The header fields of a frame to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// Destination MAC.
    pub dst: [u8; 6],
    /// Source MAC.
    pub src: [u8; 6],
    /// EtherType.
    pub ethertype: u16,
    /// Flags.
    pub flags: Flags,
    /// Sending node.
    pub source_node: u16,
    /// Receiving node.
    pub destination_node: u16,
    /// Sequence number.
    pub sequence: u32,
    /// Cumulative ACK.
    pub ack: u32,
    /// Credits allocated so far (PH, PD, NPH, NPD, CplH, CplD).
    pub credits: [u16; 6],
}

impl Default for FrameHeader {
    fn default() -> Self {
        FrameHeader {
            dst: [0; 6],
            src: [0; 6],
            ethertype: ETHERTYPE,
            flags: Flags(0),
            source_node: 0,
            destination_node: 0,
            sequence: 0,
            ack: 0,
            credits: [0; 6],
        }
    }
}

/// A frame being written into a buffer held elsewhere: the state of a
/// [`FrameWriter`] without the borrow, for a frame that stays open across
/// bursts in a pool buffer. Each call takes the same buffer again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenFrame {
    len: usize,
    count: u16,
    /// Where the last TLP must end (room left for the CRC).
    limit: usize,
}

impl OpenFrame {
    /// Writes the headers into `buf` for a link of `mtu` payload bytes.
    pub fn start(
        buf: &mut [u8],
        header: &FrameHeader,
        mtu: usize,
    ) -> Result<OpenFrame, FrameError> {
        if !(64..=MAX_MTU).contains(&mtu) {
            return Err(FrameError::Mtu(mtu));
        }
        if buf.len() < HEADER_LEN + CRC_LEN {
            return Err(FrameError::BufferTooSmall {
                needed: HEADER_LEN + CRC_LEN,
                available: buf.len(),
            });
        }
        buf[field::DST].copy_from_slice(&header.dst);
        buf[field::SRC].copy_from_slice(&header.src);
        buf[field::ETHERTYPE].copy_from_slice(&header.ethertype.to_be_bytes());
        buf[field::VERSION] = VERSION;
        buf[field::FLAGS] = header.flags.0;
        buf[field::COUNT].copy_from_slice(&[0, 0]);
        buf[field::SOURCE].copy_from_slice(&header.source_node.to_be_bytes());
        buf[field::DESTINATION].copy_from_slice(&header.destination_node.to_be_bytes());
        buf[field::SEQUENCE].copy_from_slice(&header.sequence.to_be_bytes());
        buf[field::ACK].copy_from_slice(&header.ack.to_be_bytes());
        for (i, c) in header.credits.iter().enumerate() {
            let at = field::CREDITS.start + i * 2;
            buf[at..at + 2].copy_from_slice(&c.to_be_bytes());
        }
        Ok(OpenFrame {
            len: HEADER_LEN,
            count: 0,
            limit: buf.len().min(ETHERNET_LEN + mtu) - CRC_LEN,
        })
    }

    /// Appends one TLP; false (nothing written) if it does not fit.
    #[inline]
    pub fn push(&mut self, buf: &mut [u8], tlp: &[u8]) -> bool {
        let end = self.len + 2 + tlp.len();
        if end > self.limit.min(buf.len())
            || tlp.len() > u16::MAX as usize
            || self.count == u16::MAX
        {
            return false;
        }
        buf[self.len..self.len + 2].copy_from_slice(&(tlp.len() as u16).to_be_bytes());
        buf[self.len + 2..end].copy_from_slice(tlp);
        self.len = end;
        self.count += 1;
        true
    }

    /// Appends TLPs already encoded with their length prefixes (the body of
    /// another frame); false if they do not fit.
    #[inline]
    pub fn push_encoded(&mut self, buf: &mut [u8], body: &[u8], count: u16) -> bool {
        let end = self.len + body.len();
        if end > self.limit.min(buf.len()) || self.count.checked_add(count).is_none() {
            return false;
        }
        buf[self.len..end].copy_from_slice(body);
        self.len = end;
        self.count += count;
        true
    }

    /// Bytes of TLP (not counting its prefix) that still fit.
    pub fn room(&self) -> usize {
        self.limit.saturating_sub(self.len + 2)
    }

    /// TLPs written so far.
    pub fn count(&self) -> u16 {
        self.count
    }

    /// Writes the count and CRC into `buf` (a zero trailer if its header
    /// has the FCS flag); returns the frame's length.
    pub fn finish(self, buf: &mut [u8]) -> usize {
        buf[field::COUNT].copy_from_slice(&self.count.to_be_bytes());
        let crc = if Flags(buf[field::FLAGS]).has(Flags::FCS) {
            0
        } else {
            crc_of(&buf[..self.len])
        };
        buf[self.len..self.len + CRC_LEN].copy_from_slice(&crc.to_be_bytes());
        self.len + CRC_LEN
    }
}

/// Writes one frame: headers first, then TLPs until the MTU is reached, then
/// the count and CRC.
#[derive(Debug)]
pub struct FrameWriter<'a> {
    buf: &'a mut [u8],
    state: OpenFrame,
}

impl<'a> FrameWriter<'a> {
    /// Starts a frame in `buf` for a link of `mtu` payload bytes.
    pub fn new(
        buf: &'a mut [u8],
        header: &FrameHeader,
        mtu: usize,
    ) -> Result<FrameWriter<'a>, FrameError> {
        let state = OpenFrame::start(buf, header, mtu)?;
        Ok(FrameWriter { buf, state })
    }

    /// Appends one TLP, or hands it back if it does not fit (the caller sends
    /// this frame and starts another).
    pub fn push<'t>(&mut self, tlp: &'t [u8]) -> Result<(), &'t [u8]> {
        if self.state.push(self.buf, tlp) {
            Ok(())
        } else {
            Err(tlp)
        }
    }

    /// Bytes of TLP (not counting its prefix) that still fit.
    pub fn room(&self) -> usize {
        self.state.room()
    }

    /// TLPs written so far.
    pub fn count(&self) -> u16 {
        self.state.count()
    }

    /// Appends TLPs already encoded with their length prefixes (the body of
    /// another frame), or hands them back if they do not fit.
    pub fn push_encoded<'t>(&mut self, body: &'t [u8], count: u16) -> Result<(), &'t [u8]> {
        if self.state.push_encoded(self.buf, body, count) {
            Ok(())
        } else {
            Err(body)
        }
    }

    /// Writes the count and CRC; returns the frame's length.
    pub fn finish(self) -> usize {
        self.state.finish(self.buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MRD: [u8; 12] = [0x00, 0, 0, 1, 0x01, 0, 0x05, 0x0f, 0, 0, 0x10, 0];
    const MWR: [u8; 16] = [
        0x40, 0, 0, 1, 0x01, 0, 0x06, 0x0f, 0, 0, 0x10, 0, 1, 2, 3, 4,
    ];

    fn header() -> FrameHeader {
        FrameHeader {
            dst: [2, 0, 0, 0, 0, 2],
            src: [2, 0, 0, 0, 0, 1],
            flags: Flags(Flags::ACK | Flags::CREDITS),
            source_node: 1,
            destination_node: 2,
            sequence: 77,
            ack: 76,
            credits: [1, 2, 3, 4, 5, 6],
            ..FrameHeader::default()
        }
    }

    fn build(tlps: &[&[u8]]) -> Vec<u8> {
        let mut buf = vec![0u8; 1514];
        let mut w = FrameWriter::new(&mut buf, &header(), DEFAULT_MTU).unwrap();
        for t in tlps {
            w.push(t).unwrap();
        }
        let n = w.finish();
        buf.truncate(n);
        buf
    }

    #[test]
    fn round_trip_field_by_field() {
        let bytes = build(&[&MRD, &MWR]);
        assert_eq!(bytes.len(), HEADER_LEN + 2 + 12 + 2 + 16 + CRC_LEN);
        assert_eq!(&bytes[12..16], &[0x88, 0xb5, VERSION, 0x05]);
        assert_eq!(&bytes[16..18], &[0, 2]);
        assert_eq!(&bytes[42..44], &[0, 12]);
        let f = Frame::new_checked(&bytes[..], ETHERTYPE).unwrap();
        assert_eq!(f.dst(), [2, 0, 0, 0, 0, 2]);
        assert_eq!(f.src(), [2, 0, 0, 0, 0, 1]);
        assert!(f.flags().has(Flags::ACK | Flags::CREDITS) && !f.flags().has(Flags::NAK));
        assert_eq!((f.source_node(), f.destination_node()), (1, 2));
        assert_eq!((f.sequence(), f.ack()), (77, 76));
        assert_eq!(f.credits(), [1, 2, 3, 4, 5, 6]);
        assert_eq!(f.tlps().collect::<Vec<_>>(), [&MRD[..], &MWR[..]]);
        assert_eq!(f.len(), bytes.len());
    }

    #[test]
    fn padding_after_the_crc_is_ignored() {
        let mut bytes = build(&[]);
        assert!(bytes.len() < 60);
        bytes.resize(60, 0);
        let f = Frame::new_checked(&bytes[..], ETHERTYPE).unwrap();
        assert!(f.is_empty());
        assert_eq!(f.len(), HEADER_LEN + CRC_LEN);
    }

    #[test]
    fn the_writer_stops_at_the_mtu() {
        let mut buf = vec![0u8; 9014];
        let mut w = FrameWriter::new(&mut buf, &header(), DEFAULT_MTU).unwrap();
        let big = [0x40u8; 256 + 16];
        let mut n = 0;
        while w.push(&big).is_ok() {
            n += 1;
        }
        assert_eq!(n, (1514 - CRC_LEN - HEADER_LEN) / (2 + big.len()));
        assert!(w.room() < big.len());
        let len = w.finish();
        assert!(len <= ETHERNET_LEN + DEFAULT_MTU);
        assert_eq!(
            Frame::new_checked(&buf[..len], ETHERTYPE)
                .unwrap()
                .tlp_count() as usize,
            n
        );
        assert_eq!(
            FrameWriter::new(&mut buf, &header(), 20).unwrap_err(),
            FrameError::Mtu(20)
        );
        assert!(matches!(
            FrameWriter::new(&mut [0u8; 10], &header(), 1500),
            Err(FrameError::BufferTooSmall { .. })
        ));
    }

    #[test]
    fn malformed_frames_are_typed_errors() {
        let good = build(&[&MRD]);
        assert!(matches!(
            Frame::new_checked(&good[..20], ETHERTYPE),
            Err(FrameError::Truncated { .. })
        ));
        assert_eq!(
            Frame::new_checked(&good[..], 0x0800).unwrap_err(),
            FrameError::EtherType {
                found: ETHERTYPE,
                expected: 0x0800
            }
        );
        let mut v = good.clone();
        v[14] = 1;
        assert_eq!(
            Frame::new_checked(&v[..], ETHERTYPE).unwrap_err(),
            FrameError::Version(1)
        );
        // The addresses are not covered: a port sets them on the way out.
        let mut readdressed = good.clone();
        readdressed[..12].copy_from_slice(&[0xa; 12]);
        assert!(Frame::new_checked(&readdressed[..], ETHERTYPE).is_ok());
        let mut overrun = good.clone();
        overrun[42..44].copy_from_slice(&200u16.to_be_bytes());
        assert_eq!(
            Frame::new_checked(&overrun[..], ETHERTYPE).unwrap_err(),
            FrameError::TlpOverrun {
                index: 0,
                at: 42,
                length: 200
            }
        );
        let mut count = good.clone();
        count[16..18].copy_from_slice(&2u16.to_be_bytes());
        assert!(matches!(
            Frame::new_checked(&count[..], ETHERTYPE),
            Err(FrameError::TlpOverrun { index: 1, .. })
        ));
        let short = build(&[&MRD[..8]]);
        assert!(matches!(
            Frame::new_checked(&short[..], ETHERTYPE),
            Err(FrameError::TlpTooShort { index: 0, .. })
        ));
        let mut bad = good.clone();
        bad[50] ^= 0x10;
        assert!(matches!(
            Frame::new_checked(&bad[..], ETHERTYPE),
            Err(FrameError::Crc { at: 56, .. })
        ));
        let e = Frame::new_checked(&bad[..], ETHERTYPE).unwrap_err();
        assert!(e.to_string().contains("CRC-32C"));
    }
}
