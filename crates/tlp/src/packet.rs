//! `Tlp<T>`: a zero-copy view over the bytes of one TLP (prefixes, header,
//! payload, digest), laid out as in PCIe Base Specification 4.0 §2.2.
//!
//! Contract, as in smoltcp's wire views: [`Tlp::new_checked`] runs the
//! structural checks every receiver makes (prefixes, a known Fmt/Type, a
//! complete header, a payload and digest that match Length and TD). Once it has
//! passed, no accessor panics. [`Tlp::new_unchecked`] skips them; its accessors
//! may then panic on short buffers.

use crate::bdf::Bdf;
use crate::ecrc::Crc32;
use crate::error::Error;
use crate::kind::{Attr, CplStatus, Kind, MessageCode, MsgRouting, PrefixKind, FMT_PREFIX};

/// The most prefixes a TLP may carry here (local and End-End together).
pub const MAX_PREFIXES: usize = 8;
/// The most End-End prefixes the specification allows (§2.2.10.2).
pub const MAX_END_END_PREFIXES: usize = 4;

/// Byte offsets within the header (after any prefixes).
mod field {
    pub const FMT_TYPE: usize = 0;
    pub const TC: usize = 1;
    pub const TD_EP_ATTR: usize = 2;
    pub const LENGTH_LO: usize = 3;
    /// Requester ID in requests and messages; Completer ID in completions.
    pub const ID_DW1: usize = 4;
    /// Tag in requests and messages; status/BCM/Byte Count in completions.
    pub const TAG_REQ: usize = 6;
    /// Byte enables in requests; message code in messages.
    pub const BE_CODE: usize = 7;
    /// Address, configuration target, message fields; Requester ID in completions.
    pub const DW2: usize = 8;
    pub const TAG_CPL: usize = 10;
    pub const LOWER_ADDR: usize = 11;
    pub const HEADER_3DW: usize = 12;
    pub const HEADER_4DW: usize = 16;
}

/// Reads the prefixes at the start of `bytes`: returns (count, End-End count,
/// header offset) or the structural error.
#[cold]
fn scan_prefixes(bytes: &[u8]) -> Result<(usize, usize, usize), Error> {
    let mut off = 0;
    let mut count = 0;
    let mut end_end = 0;
    loop {
        let Some(&b0) = bytes.get(off) else {
            return Err(Error::Truncated {
                needed: off + field::HEADER_3DW,
                available: bytes.len(),
            });
        };
        let Some(kind) = PrefixKind::from_byte0(b0) else {
            return Ok((count, end_end, off));
        };
        count += 1;
        if let PrefixKind::EndEnd(_) = kind {
            end_end += 1;
        }
        if count > MAX_PREFIXES || end_end > MAX_END_END_PREFIXES {
            return Err(Error::TooManyPrefixes { count, at: off });
        }
        if bytes.len() < off + 4 {
            return Err(Error::Truncated {
                needed: off + 4,
                available: bytes.len(),
            });
        }
        off += 4;
    }
}

/// A view over the bytes of one TLP.
#[derive(Debug, Clone)]
pub struct Tlp<T: AsRef<[u8]>> {
    buffer: T,
    hdr: usize,
}

impl<T: AsRef<[u8]>> Tlp<T> {
    /// Wraps bytes without checking them (prefixes are still skipped safely).
    pub fn new_unchecked(buffer: T) -> Tlp<T> {
        let bytes = buffer.as_ref();
        let mut hdr = 0;
        while hdr + 4 <= bytes.len() && bytes[hdr] >> 5 == FMT_PREFIX {
            hdr += 4;
        }
        Tlp { buffer, hdr }
    }

    /// Wraps bytes whose header starts at `header_offset` (after that many
    /// bytes of prefixes), as [`crate::classify`] found: no second walk over
    /// the prefixes. Accessors past the end of the bytes panic, as with
    /// [`Tlp::new_unchecked`].
    #[inline(always)]
    pub fn with_header_at(buffer: T, header_offset: usize) -> Tlp<T> {
        Tlp {
            buffer,
            hdr: header_offset,
        }
    }

    /// Wraps bytes after the structural checks every receiver makes.
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Tlp<T>, Error> {
        let hdr = match buffer.as_ref().first() {
            Some(b) if b >> 5 == FMT_PREFIX => scan_prefixes(buffer.as_ref())?.2,
            _ => 0,
        };
        let tlp = Tlp { buffer, hdr };
        tlp.check_len()?;
        Ok(tlp)
    }

    /// The structural checks: a known Fmt/Type, a whole header, and exactly the
    /// payload and digest that Length and TD call for.
    #[inline]
    pub fn check_len(&self) -> Result<(), Error> {
        let bytes = self.buffer.as_ref();
        let hdr = self.hdr;
        let Some(&b0) = bytes.get(hdr) else {
            return Err(Error::Truncated {
                needed: hdr + field::HEADER_3DW,
                available: bytes.len(),
            });
        };
        let Some(kind) = Kind::from_byte0(b0) else {
            return Err(Error::ReservedType {
                fmt: b0 >> 5,
                type_bits: b0 & 0x1f,
                at: hdr,
            });
        };
        let hlen = if b0 & 0x20 != 0 {
            field::HEADER_4DW
        } else {
            field::HEADER_3DW
        };
        let Some(h) = bytes.get(hdr..hdr + hlen) else {
            return Err(Error::Truncated {
                needed: hdr + hlen,
                available: bytes.len(),
            });
        };
        let data = kind.payload_bytes(h[2], h[3]);
        let digest = if h[2] & 0x80 != 0 { 4 } else { 0 };
        if bytes.len() - hdr - hlen != data + digest {
            return Err(self.length_error(kind, hlen, data, digest));
        }
        Ok(())
    }

    #[cold]
    fn length_error(&self, kind: Kind, hlen: usize, data: usize, digest: usize) -> Error {
        let len = self.buffer.as_ref().len();
        let actual = len - self.hdr - hlen;
        if digest == 4 && actual == data {
            return Error::MissingDigest { at: len };
        }
        Error::PayloadLength {
            kind,
            length_dw: self.length_dw(),
            expected: data + digest,
            actual,
            at: self.hdr + hlen,
        }
    }

    /// The classification of a checked view (see [`crate::classify`]).
    #[inline]
    pub fn class(&self) -> Result<crate::Class, Error> {
        let mut class = crate::classify(&self.buffer.as_ref()[self.hdr..])?;
        class.header_offset = self.hdr;
        Ok(class)
    }

    /// The underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// All bytes of the TLP.
    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    #[inline]
    fn h(&self, i: usize) -> u8 {
        self.buffer.as_ref()[self.hdr + i]
    }

    #[inline]
    fn h16(&self, i: usize) -> u16 {
        u16::from_be_bytes([self.h(i), self.h(i + 1)])
    }

    /// Byte offset of the header (4 × the number of prefixes).
    #[inline]
    pub fn header_offset(&self) -> usize {
        self.hdr
    }

    /// Number of prefixes.
    pub fn prefix_count(&self) -> usize {
        self.hdr / 4
    }

    /// Prefix `i` as its raw DW (big-endian), or `None`.
    pub fn prefix(&self, i: usize) -> Option<u32> {
        if i >= self.prefix_count() {
            return None;
        }
        let b = &self.buffer.as_ref()[i * 4..i * 4 + 4];
        Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// Fmt\[2:0\].
    #[inline]
    pub fn fmt(&self) -> u8 {
        self.h(field::FMT_TYPE) >> 5
    }

    /// Type\[4:0\].
    #[inline]
    pub fn type_bits(&self) -> u8 {
        self.h(field::FMT_TYPE) & 0x1f
    }

    /// The kind; `None` only for a reserved encoding (never after `new_checked`).
    #[inline]
    pub fn kind(&self) -> Option<Kind> {
        Kind::from_byte0(self.h(field::FMT_TYPE))
    }

    /// Whether the header is 4 DW.
    #[inline]
    pub fn is_4dw(&self) -> bool {
        self.h(field::FMT_TYPE) & 0x20 != 0
    }

    /// Header length in bytes (12 or 16).
    #[inline]
    pub fn header_len(&self) -> usize {
        if self.is_4dw() {
            field::HEADER_4DW
        } else {
            field::HEADER_3DW
        }
    }

    /// The header bytes.
    pub fn header(&self) -> &[u8] {
        &self.buffer.as_ref()[self.hdr..self.hdr + self.header_len()]
    }

    /// Traffic Class.
    #[inline]
    pub fn tc(&self) -> u8 {
        (self.h(field::TC) >> 4) & 0x7
    }

    /// Attr: bit 2 IDO (byte 1 bit 2), bit 1 RO and bit 0 NS (byte 2 bits 5:4).
    #[inline]
    pub fn attr(&self) -> Attr {
        Attr((self.h(field::TC) & 0x04) | ((self.h(field::TD_EP_ATTR) >> 4) & 0x3))
    }

    /// LN (Lightweight Notification), byte 1 bit 1.
    pub fn ln(&self) -> bool {
        self.h(field::TC) & 0x02 != 0
    }

    /// TH (TLP Processing Hints present), byte 1 bit 0.
    pub fn th(&self) -> bool {
        self.h(field::TC) & 0x01 != 0
    }

    /// TD (TLP Digest present).
    #[inline]
    pub fn td(&self) -> bool {
        self.h(field::TD_EP_ATTR) & 0x80 != 0
    }

    /// EP (poisoned).
    pub fn ep(&self) -> bool {
        self.h(field::TD_EP_ATTR) & 0x40 != 0
    }

    /// AT (Address Type).
    pub fn at(&self) -> u8 {
        (self.h(field::TD_EP_ATTR) >> 2) & 0x3
    }

    /// Length in DW, with 0 decoded as 1024.
    #[inline]
    pub fn length_dw(&self) -> u16 {
        let raw =
            (((self.h(field::TD_EP_ATTR) & 0x3) as u16) << 8) | self.h(field::LENGTH_LO) as u16;
        if raw == 0 {
            1024
        } else {
            raw
        }
    }

    /// Requester ID (bytes 4–5 of requests and messages, 8–9 of completions).
    #[inline]
    pub fn requester_id(&self) -> Bdf {
        if self.is_completion() {
            Bdf(self.h16(field::DW2))
        } else {
            Bdf(self.h16(field::ID_DW1))
        }
    }

    /// Completer ID of a completion (bytes 4–5).
    pub fn completer_id(&self) -> Bdf {
        Bdf(self.h16(field::ID_DW1))
    }

    #[inline]
    fn is_completion(&self) -> bool {
        self.h(field::FMT_TYPE) & 0x1e == 0x0a
    }

    /// The 10-bit tag: T9 (byte 1 bit 7), T8 (byte 1 bit 3), Tag\[7:0\].
    #[inline]
    pub fn tag(&self) -> u16 {
        let b1 = self.h(field::TC);
        let hi = (((b1 >> 7) & 1) as u16) << 9 | (((b1 >> 3) & 1) as u16) << 8;
        let lo = if self.is_completion() {
            self.h(field::TAG_CPL)
        } else {
            self.h(field::TAG_REQ)
        };
        hi | lo as u16
    }

    /// First DW Byte Enables.
    pub fn first_be(&self) -> u8 {
        self.h(field::BE_CODE) & 0x0f
    }

    /// Last DW Byte Enables.
    pub fn last_be(&self) -> u8 {
        self.h(field::BE_CODE) >> 4
    }

    /// The address of an address-routed request or message (DW aligned).
    #[inline(always)]
    pub fn address(&self) -> u64 {
        let b = self.buffer.as_ref();
        let at = self.hdr + field::DW2;
        if self.is_4dw() {
            let mut a = [0u8; 8];
            a.copy_from_slice(&b[at..at + 8]);
            u64::from_be_bytes(a) & !0x3
        } else {
            let mut a = [0u8; 4];
            a.copy_from_slice(&b[at..at + 4]);
            (u32::from_be_bytes(a) & !0x3) as u64
        }
    }

    /// Processing Hint: the low two bits of the address field when TH is set.
    pub fn ph(&self) -> u8 {
        self.h(self.header_len() - 1) & 0x3
    }

    /// Steering Tag\[7:0\] when TH is set: the Tag byte of a Memory Write,
    /// the byte-enables byte of a Memory Read or an AtomicOp (TPH, §2.2.7.1
    /// of the Base Specification 4.0: requests that need their Tag for the
    /// completion carry the Steering Tag where the byte enables would be).
    pub fn steering_tag(&self) -> Option<u8> {
        if !self.th() {
            return None;
        }
        match self.kind()? {
            Kind::MWr => Some(self.h(field::TAG_REQ)),
            Kind::MRd | Kind::MRdLk | Kind::FetchAdd | Kind::Swap | Kind::Cas => {
                Some(self.h(field::BE_CODE))
            }
            _ => None,
        }
    }

    /// Completion Status.
    pub fn status(&self) -> CplStatus {
        CplStatus::from_bits(self.h(field::TAG_REQ) >> 5)
    }

    /// Byte Count Modified.
    pub fn bcm(&self) -> bool {
        self.h(field::TAG_REQ) & 0x10 != 0
    }

    /// Byte Count, with 0 decoded as 4096.
    pub fn byte_count(&self) -> u16 {
        let raw = (((self.h(field::TAG_REQ) & 0xf) as u16) << 8) | self.h(field::BE_CODE) as u16;
        if raw == 0 {
            4096
        } else {
            raw
        }
    }

    /// Lower Address\[6:0\].
    pub fn lower_address(&self) -> u8 {
        self.h(field::LOWER_ADDR) & 0x7f
    }

    /// Configuration target (bus, device, function), or the target ID of a
    /// message routed by ID.
    pub fn target_id(&self) -> Bdf {
        Bdf(self.h16(field::DW2))
    }

    /// Configuration register byte offset: Extended Register Number\[3:0\] and
    /// Register Number\[5:0\], as a byte offset into the 4 KiB space.
    pub fn register(&self) -> u16 {
        (((self.h(field::TAG_CPL) & 0xf) as u16) << 8) | (self.h(field::LOWER_ADDR) & 0xfc) as u16
    }

    /// Message code.
    pub fn message_code(&self) -> MessageCode {
        MessageCode::from_byte(self.h(field::BE_CODE))
    }

    /// Message routing sub-code.
    pub fn message_routing(&self) -> MsgRouting {
        MsgRouting::from_bits(self.type_bits())
    }

    /// Bytes 8–15 of a message header (address, target ID, vendor fields);
    /// of a 3 DW header, bytes 8–11 followed by zeros.
    pub fn message_fields(&self) -> [u8; 8] {
        let mut f = [0u8; 8];
        let at = self.hdr + field::DW2;
        let n = self.header_len() - field::DW2;
        f[..n].copy_from_slice(&self.buffer.as_ref()[at..at + n]);
        f
    }

    /// Payload bytes that Length calls for (none for kinds without data).
    #[inline]
    pub fn payload_len(&self) -> usize {
        match self.kind() {
            Some(kind) => kind.payload_bytes(self.h(field::TD_EP_ATTR), self.h(field::LENGTH_LO)),
            None => 0,
        }
    }

    #[inline]
    fn payload_range(&self) -> core::ops::Range<usize> {
        let start = self.hdr + self.header_len();
        start..start + self.payload_len()
    }

    /// The data payload (empty for kinds without data).
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.payload_range()]
    }

    /// The TLP Digest bytes, if TD is set.
    pub fn digest(&self) -> Option<[u8; 4]> {
        if !self.td() {
            return None;
        }
        let at = self.payload_range().end;
        let b = &self.buffer.as_ref()[at..at + 4];
        Some([b[0], b[1], b[2], b[3]])
    }

    /// The ECRC the specification defines for this TLP (§2.7.1): over the
    /// End-End prefixes, the header with its variant bits taken as 1b, and the
    /// payload. Computed whether or not TD is set.
    pub fn compute_ecrc(&self) -> [u8; 4] {
        let bytes = self.buffer.as_ref();
        let mut crc = Crc32::default();
        for p in bytes[..self.hdr].chunks_exact(4) {
            if let Some(PrefixKind::EndEnd(_)) = PrefixKind::from_byte0(p[0]) {
                crc.update(p);
            }
        }
        let h = self.header();
        crc.update(&[h[0] | 0x01, h[1], h[2] | 0x40]);
        crc.update(&h[3..]);
        crc.update(self.payload());
        crc.finish().to_le_bytes()
    }

    /// Whether the digest is present and matches [`Tlp::compute_ecrc`].
    pub fn ecrc_ok(&self) -> bool {
        self.digest() == Some(self.compute_ecrc())
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Tlp<T> {
    #[inline]
    fn h_mut(&mut self, i: usize) -> &mut u8 {
        let at = self.hdr + i;
        &mut self.buffer.as_mut()[at]
    }

    fn set_h16(&mut self, i: usize, v: u16) {
        let [a, b] = v.to_be_bytes();
        *self.h_mut(i) = a;
        *self.h_mut(i + 1) = b;
    }

    /// Sets the Requester ID (wherever the kind keeps it).
    pub fn set_requester_id(&mut self, id: Bdf) {
        let at = if self.is_completion() {
            field::DW2
        } else {
            field::ID_DW1
        };
        self.set_h16(at, id.0);
    }

    /// Sets the Completer ID of a completion.
    pub fn set_completer_id(&mut self, id: Bdf) {
        self.set_h16(field::ID_DW1, id.0);
    }

    /// Sets the 10-bit tag (T9, T8 and Tag\[7:0\]).
    pub fn set_tag(&mut self, tag: u16) {
        let b1 = self.h(field::TC) & !0x88;
        *self.h_mut(field::TC) = b1 | (((tag >> 9) & 1) as u8) << 7 | (((tag >> 8) & 1) as u8) << 3;
        let at = if self.is_completion() {
            field::TAG_CPL
        } else {
            field::TAG_REQ
        };
        *self.h_mut(at) = tag as u8;
    }

    /// Sets the address, keeping the PH bits. The caller keeps a 3 DW header's
    /// address below 4 GiB; higher bits are dropped there.
    pub fn set_address(&mut self, address: u64) {
        let ph = self.ph() as u64;
        let at = self.hdr + field::DW2;
        if self.is_4dw() {
            let v = (address & !0x3) | ph;
            self.buffer.as_mut()[at..at + 8].copy_from_slice(&v.to_be_bytes());
        } else {
            let v = ((address as u32) & !0x3) | ph as u32;
            self.buffer.as_mut()[at..at + 4].copy_from_slice(&v.to_be_bytes());
        }
    }

    /// Sets the configuration target or the target ID of a message routed by ID.
    pub fn set_target_id(&mut self, id: Bdf) {
        self.set_h16(field::DW2, id.0);
    }

    /// Sets or clears EP.
    pub fn set_ep(&mut self, ep: bool) {
        let b = self.h(field::TD_EP_ATTR) & !0x40;
        *self.h_mut(field::TD_EP_ATTR) = b | (ep as u8) << 6;
    }

    /// Sets the Traffic Class.
    pub fn set_tc(&mut self, tc: u8) {
        let b = self.h(field::TC) & !0x70;
        *self.h_mut(field::TC) = b | (tc & 0x7) << 4;
    }

    /// Turns a Type 1 configuration request into Type 0 (what the bridge above
    /// the target bus does). Type\[0\] is an ECRC variant bit, so the digest stays valid.
    pub fn set_config_type0(&mut self) {
        if matches!(self.kind(), Some(Kind::CfgRd1 | Kind::CfgWr1)) {
            *self.h_mut(field::FMT_TYPE) &= !0x01;
        }
    }

    /// The payload, writable.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let r = self.payload_range();
        &mut self.buffer.as_mut()[r]
    }

    /// Recomputes and writes the digest, if TD is set.
    pub fn fill_ecrc(&mut self) {
        if self.td() {
            let ecrc = self.compute_ecrc();
            let at = self.payload_range().end;
            self.buffer.as_mut()[at..at + 4].copy_from_slice(&ecrc);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // MWr, 4DW, TC=2, RO, TD=0, Length=2, req 01:00.0, tag 0x305 (T9, T8 set),
    // BEs 0xf/0xf, address 0x0000_0010_0000_0040, data 8 bytes.
    const MWR64: [u8; 24] = [
        0x60, 0xa8, 0x20, 0x02, 0x01, 0x00, 0x05, 0xff, 0x00, 0x00, 0x00, 0x10, 0x00, 0x00, 0x00,
        0x40, 1, 2, 3, 4, 5, 6, 7, 8,
    ];

    #[test]
    fn deconstruct_mwr64() {
        let t = Tlp::new_checked(&MWR64[..]).unwrap();
        assert_eq!(t.kind(), Some(Kind::MWr));
        assert_eq!(t.fmt(), 0b011);
        assert_eq!(t.type_bits(), 0);
        assert!(t.is_4dw());
        assert_eq!(t.tc(), 2);
        assert_eq!(t.tag(), 0x305);
        assert_eq!(t.attr(), Attr(Attr::RELAXED_ORDERING));
        assert_eq!(t.length_dw(), 2);
        assert_eq!(t.requester_id(), Bdf::new(1, 0, 0));
        assert_eq!((t.first_be(), t.last_be()), (0xf, 0xf));
        assert_eq!(t.address(), 0x10_0000_0040);
        assert_eq!(t.payload(), &[1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(t.digest(), None);
    }

    #[test]
    fn setters_change_only_their_field() {
        let mut buf = MWR64;
        let mut t = Tlp::new_checked(&mut buf[..]).unwrap();
        t.set_requester_id(Bdf::new(2, 3, 1));
        t.set_tag(0x0ab);
        t.set_address(0x20_0000_0080);
        t.set_tc(5);
        t.set_ep(true);
        assert_eq!(t.requester_id(), Bdf::new(2, 3, 1));
        assert_eq!(t.tag(), 0x0ab);
        assert_eq!(t.address(), 0x20_0000_0080);
        assert_eq!(t.tc(), 5);
        assert!(t.ep());
        assert_eq!(t.attr(), Attr(Attr::RELAXED_ORDERING));
        assert_eq!(t.length_dw(), 2);
        assert_eq!(t.payload(), &[1, 2, 3, 4, 5, 6, 7, 8]);
    }

    #[test]
    fn length_zero_means_1024() {
        let mut buf = vec![0u8; 16 + 4096];
        buf[..4].copy_from_slice(&[0x60, 0, 0, 0]);
        let t = Tlp::new_checked(&buf[..]).unwrap();
        assert_eq!(t.length_dw(), 1024);
        assert_eq!(t.payload().len(), 4096);
    }

    #[test]
    fn structural_errors() {
        assert_eq!(
            Tlp::new_checked(&MWR64[..10]).unwrap_err(),
            Error::Truncated {
                needed: 16,
                available: 10
            }
        );
        assert!(matches!(
            Tlp::new_checked(&MWR64[..20]).unwrap_err(),
            Error::PayloadLength {
                expected: 8,
                actual: 4,
                at: 16,
                ..
            }
        ));
        let mut td = MWR64;
        td[2] |= 0x80;
        assert_eq!(
            Tlp::new_checked(&td[..]).unwrap_err(),
            Error::MissingDigest { at: 24 }
        );
        let mut reserved = MWR64;
        reserved[0] = 0x7b;
        assert!(matches!(
            Tlp::new_checked(&reserved[..]).unwrap_err(),
            Error::ReservedType { at: 0, .. }
        ));
        assert!(matches!(
            Tlp::new_checked(&[][..]).unwrap_err(),
            Error::Truncated { .. }
        ));
    }

    #[test]
    fn prefixes_are_skipped_and_counted() {
        let mut buf = vec![0x91, 0x00, 0x12, 0x34, 0x80, 0x00, 0x00, 0x01];
        buf.extend_from_slice(&MWR64);
        let t = Tlp::new_checked(&buf[..]).unwrap();
        assert_eq!(t.prefix_count(), 2);
        assert_eq!(t.prefix(0), Some(0x9100_1234));
        assert_eq!(t.header_offset(), 8);
        assert_eq!(t.address(), 0x10_0000_0040);

        // The classification's offset gives the same view without a walk.
        let at = crate::classify(&buf).unwrap().header_offset;
        let v = Tlp::with_header_at(&buf[..], at);
        assert_eq!((v.header_offset(), v.address()), (8, 0x10_0000_0040));

        let mut five = Vec::new();
        for _ in 0..5 {
            five.extend_from_slice(&[0x91, 0, 0, 0]);
        }
        five.extend_from_slice(&MWR64);
        assert_eq!(
            Tlp::new_checked(&five[..]).unwrap_err(),
            Error::TooManyPrefixes { count: 5, at: 16 }
        );
    }

    #[test]
    fn ecrc_fill_and_verify() {
        let mut buf = MWR64.to_vec();
        buf[2] |= 0x80;
        buf.extend_from_slice(&[0; 4]);
        let mut t = Tlp::new_checked(&mut buf[..]).unwrap();
        assert!(!t.ecrc_ok());
        t.fill_ecrc();
        assert!(t.ecrc_ok());
        t.set_ep(true); // EP is variant: poisoning keeps the digest valid
        assert!(t.ecrc_ok());
        t.set_tag(1); // the tag is not
        assert!(!t.ecrc_ok());
    }
}
