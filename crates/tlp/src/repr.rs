//! `Repr`: a TLP as plain data, parsed from a [`Tlp`] view and emitted back to
//! bytes. The payload stays borrowed from the buffer it was parsed from.
//!
//! Reserved header bits are not kept: a switch forwards the bytes it received
//! (through the view), not a re-emitted repr.

use crate::bdf::Bdf;
use crate::error::{EmitError, Error};
use crate::kind::{Attr, CplStatus, Kind, MessageCode, MsgRouting, PrefixKind};
use crate::packet::{Tlp, MAX_PREFIXES};
use core::fmt;

/// The TLP prefixes of a repr: whole prefix DWs in wire order, borrowed from
/// the buffer they were parsed from (or built in), never copied.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct Prefixes<'a> {
    bytes: &'a [u8],
}

impl<'a> Prefixes<'a> {
    /// No prefixes.
    pub const NONE: Prefixes<'static> = Prefixes { bytes: &[] };

    /// Prefix DWs as bytes; each must have Fmt 100b, with at most
    /// [`MAX_PREFIXES`] in all and [`crate::MAX_END_END_PREFIXES`] End-End ones.
    pub fn new(bytes: &'a [u8]) -> Result<Prefixes<'a>, Error> {
        if !bytes.len().is_multiple_of(4) {
            return Err(Error::Truncated {
                needed: bytes.len().next_multiple_of(4),
                available: bytes.len(),
            });
        }
        let mut end_end = 0;
        for (i, dw) in bytes.chunks_exact(4).enumerate() {
            match PrefixKind::from_byte0(dw[0]) {
                None => {
                    return Err(Error::ReservedType {
                        fmt: dw[0] >> 5,
                        type_bits: dw[0] & 0x1f,
                        at: i * 4,
                    })
                }
                Some(PrefixKind::EndEnd(_)) => end_end += 1,
                Some(PrefixKind::Local(_)) => {}
            }
            if i >= MAX_PREFIXES || end_end > crate::MAX_END_END_PREFIXES {
                return Err(Error::TooManyPrefixes {
                    count: i + 1,
                    at: i * 4,
                });
            }
        }
        Ok(Prefixes { bytes })
    }

    /// The prefix bytes.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// Each prefix as its raw DW.
    pub fn iter(&self) -> impl Iterator<Item = u32> + 'a {
        self.bytes
            .chunks_exact(4)
            .map(|d| u32::from_be_bytes([d[0], d[1], d[2], d[3]]))
    }

    /// How many prefixes.
    pub fn len(&self) -> usize {
        self.bytes.len() / 4
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

impl fmt::Debug for Prefixes<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// The TLP Digest of a repr.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Digest {
    /// TD clear, no digest.
    Absent,
    /// TD set, with these digest bytes (as parsed, or to be written as given).
    Value([u8; 4]),
    /// TD set; emit computes the ECRC.
    Compute,
}

/// Memory-space request operations: reads, writes and AtomicOps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MemOp {
    /// MRd.
    Read,
    /// MRdLk.
    ReadLocked,
    /// MWr.
    Write,
    /// FetchAdd.
    FetchAdd,
    /// Swap.
    Swap,
    /// CAS.
    Cas,
}

impl MemOp {
    /// The operation of a memory-space request kind (`Cas` for any other).
    pub fn of(kind: Kind) -> MemOp {
        match kind {
            Kind::MRd => MemOp::Read,
            Kind::MRdLk => MemOp::ReadLocked,
            Kind::MWr => MemOp::Write,
            Kind::FetchAdd => MemOp::FetchAdd,
            Kind::Swap => MemOp::Swap,
            _ => MemOp::Cas,
        }
    }
}

/// The kind-specific part of a TLP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body {
    /// MRd, MRdLk, MWr, FetchAdd, Swap, CAS.
    Memory {
        /// Which operation.
        op: MemOp,
        /// First DW BE.
        first_be: u8,
        /// Last DW BE.
        last_be: u8,
        /// DW-aligned address.
        address: u64,
        /// 4 DW header (64-bit address format).
        long: bool,
        /// Processing Hint (meaningful when TH is set).
        ph: u8,
    },
    /// IORd, IOWr.
    Io {
        /// IOWr.
        write: bool,
        /// First DW BE.
        first_be: u8,
        /// Last DW BE.
        last_be: u8,
        /// DW-aligned address.
        address: u32,
    },
    /// CfgRd0/1, CfgWr0/1.
    Config {
        /// A write.
        write: bool,
        /// Type 1.
        type1: bool,
        /// First DW BE.
        first_be: u8,
        /// Last DW BE.
        last_be: u8,
        /// Target bus/device/function.
        target: Bdf,
        /// Register byte offset (DW aligned, up to 0xffc).
        register: u16,
    },
    /// Msg, MsgD (MsgD when the payload is not empty).
    Message {
        /// r\[2:0\].
        routing: MsgRouting,
        /// Message code.
        code: MessageCode,
        /// Header bytes 8–15: the address (routed by address), target ID
        /// (routed by ID, bytes 8–9), vendor ID and fields (vendor-defined).
        fields: [u8; 8],
    },
    /// Cpl, CplD, CplLk, CplDLk (with data when the payload is not empty).
    Completion {
        /// A completion of a locked read.
        locked: bool,
        /// Completer ID.
        completer: Bdf,
        /// Completion Status.
        status: CplStatus,
        /// Byte Count Modified.
        bcm: bool,
        /// Byte Count, 1..=4096.
        byte_count: u16,
        /// Lower Address\[6:0\].
        lower_address: u8,
    },
}

/// A TLP as plain data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr<'a> {
    /// Prefixes, in wire order.
    pub prefixes: Prefixes<'a>,
    /// Traffic Class.
    pub tc: u8,
    /// Attributes.
    pub attr: Attr,
    /// LN.
    pub ln: bool,
    /// TH.
    pub th: bool,
    /// EP.
    pub ep: bool,
    /// AT.
    pub at: u8,
    /// Length in DW, 1..=1024.
    pub length_dw: u16,
    /// Requester ID.
    pub requester: Bdf,
    /// 10-bit tag.
    pub tag: u16,
    /// What the kind adds.
    pub body: Body,
    /// Data payload (Length DW for kinds with data, else empty).
    pub payload: &'a [u8],
    /// TLP Digest.
    pub digest: Digest,
}

impl<'a> Repr<'a> {
    /// A repr of `kind` with every field at its plainest: TC0, no attributes,
    /// Length 1, requester 00:00.0, tag 0, full first byte enables, zero
    /// address, messages routed `routing` with code 0, completions SC with Byte
    /// Count 4. Kinds with data take `payload` and their Length from it.
    pub fn new(kind: Kind, routing: MsgRouting, payload: &'a [u8]) -> Repr<'a> {
        let body = match kind {
            Kind::MRd | Kind::MRdLk | Kind::MWr | Kind::FetchAdd | Kind::Swap | Kind::Cas => {
                let op = MemOp::of(kind);
                Body::Memory {
                    op,
                    first_be: 0xf,
                    last_be: 0,
                    address: 0,
                    long: false,
                    ph: 0,
                }
            }
            Kind::IORd | Kind::IOWr => Body::Io {
                write: kind == Kind::IOWr,
                first_be: 0xf,
                last_be: 0,
                address: 0,
            },
            Kind::CfgRd0 | Kind::CfgWr0 | Kind::CfgRd1 | Kind::CfgWr1 => Body::Config {
                write: matches!(kind, Kind::CfgWr0 | Kind::CfgWr1),
                type1: matches!(kind, Kind::CfgRd1 | Kind::CfgWr1),
                first_be: 0xf,
                last_be: 0,
                target: Bdf(0),
                register: 0,
            },
            Kind::Msg | Kind::MsgD => Body::Message {
                routing,
                code: MessageCode::from_byte(0),
                fields: [0; 8],
            },
            Kind::Cpl | Kind::CplD | Kind::CplLk | Kind::CplDLk => Body::Completion {
                locked: matches!(kind, Kind::CplLk | Kind::CplDLk),
                completer: Bdf(0),
                status: CplStatus::Sc,
                bcm: false,
                byte_count: 4,
                lower_address: 0,
            },
        };
        let payload = if kind.has_data() { payload } else { &[] };
        let length_dw = if kind.has_data() {
            (payload.len() / 4).clamp(1, 1024) as u16
        } else {
            1
        };
        Repr {
            prefixes: Prefixes::NONE,
            tc: 0,
            attr: Attr(0),
            ln: false,
            th: false,
            ep: false,
            at: 0,
            length_dw,
            requester: Bdf(0),
            tag: 0,
            body,
            payload,
            digest: Digest::Absent,
        }
    }

    /// Parses a view, running its structural checks first.
    pub fn parse<T: AsRef<[u8]>>(tlp: &'a Tlp<T>) -> Result<Repr<'a>, Error> {
        tlp.check_len()?;
        Ok(Self::parse_checked(
            tlp,
            &tlp.as_bytes()[..tlp.header_offset()],
            tlp.payload(),
        ))
    }

    /// Parses a view that has passed [`Tlp::check_len`], taking its payload
    /// from `payload` (the same bytes, borrowed for longer).
    pub(crate) fn parse_checked<T: AsRef<[u8]>>(
        tlp: &Tlp<T>,
        prefix_bytes: &'a [u8],
        payload: &'a [u8],
    ) -> Repr<'a> {
        let prefixes = Prefixes {
            bytes: prefix_bytes,
        };
        let mut h = [0u8; 16];
        let header = tlp.header();
        h[..header.len()].copy_from_slice(header);
        let digest = match tlp.digest() {
            Some(d) => Digest::Value(d),
            None => Digest::Absent,
        };
        let kind = tlp.kind().unwrap_or(Kind::MRd);
        Self::from_header(kind, &h, prefixes, payload, digest)
    }

    /// Builds a repr from a copy of the header (12 bytes used for 3 DW
    /// headers): the header is copied out once and every field read from the
    /// copy at a fixed offset.
    #[inline(always)]
    pub(crate) fn from_header(
        kind: Kind,
        h: &[u8; 16],
        prefixes: Prefixes<'a>,
        payload: &'a [u8],
        digest: Digest,
    ) -> Repr<'a> {
        let long = h[0] & 0x20 != 0;
        let raw_len = (((h[2] & 0x3) as u16) << 8) | h[3] as u16;
        let t9t8 = ((((h[1] >> 7) & 1) as u16) << 9) | ((((h[1] >> 3) & 1) as u16) << 8);
        let id4 = Bdf(u16::from_be_bytes([h[4], h[5]]));
        let id8 = Bdf(u16::from_be_bytes([h[8], h[9]]));
        let (first_be, last_be) = (h[7] & 0xf, h[7] >> 4);
        let address = if long {
            u64::from_be_bytes([h[8], h[9], h[10], h[11], h[12], h[13], h[14], h[15]])
        } else {
            u32::from_be_bytes([h[8], h[9], h[10], h[11]]) as u64
        };
        let ph = (address & 0x3) as u8;
        let address = address & !0x3;
        let (requester, tag, body) = match kind {
            Kind::MRd | Kind::MRdLk | Kind::MWr | Kind::FetchAdd | Kind::Swap | Kind::Cas => {
                let op = MemOp::of(kind);
                (
                    id4,
                    t9t8 | h[6] as u16,
                    Body::Memory {
                        op,
                        first_be,
                        last_be,
                        address,
                        long,
                        ph,
                    },
                )
            }
            Kind::IORd | Kind::IOWr => (
                id4,
                t9t8 | h[6] as u16,
                Body::Io {
                    write: kind == Kind::IOWr,
                    first_be,
                    last_be,
                    address: address as u32,
                },
            ),
            Kind::CfgRd0 | Kind::CfgWr0 | Kind::CfgRd1 | Kind::CfgWr1 => (
                id4,
                t9t8 | h[6] as u16,
                Body::Config {
                    write: kind.has_data(),
                    type1: matches!(kind, Kind::CfgRd1 | Kind::CfgWr1),
                    first_be,
                    last_be,
                    target: id8,
                    register: (((h[10] & 0xf) as u16) << 8) | (h[11] & 0xfc) as u16,
                },
            ),
            Kind::Msg | Kind::MsgD => (
                id4,
                t9t8 | h[6] as u16,
                Body::Message {
                    routing: MsgRouting::from_bits(h[0]),
                    code: MessageCode::from_byte(h[7]),
                    fields: [h[8], h[9], h[10], h[11], h[12], h[13], h[14], h[15]],
                },
            ),
            Kind::Cpl | Kind::CplD | Kind::CplLk | Kind::CplDLk => {
                let bc = (((h[6] & 0xf) as u16) << 8) | h[7] as u16;
                (
                    id8,
                    t9t8 | h[10] as u16,
                    Body::Completion {
                        locked: matches!(kind, Kind::CplLk | Kind::CplDLk),
                        completer: id4,
                        status: CplStatus::from_bits(h[6] >> 5),
                        bcm: h[6] & 0x10 != 0,
                        byte_count: if bc == 0 { 4096 } else { bc },
                        lower_address: h[11] & 0x7f,
                    },
                )
            }
        };
        Repr {
            prefixes,
            tc: (h[1] >> 4) & 0x7,
            attr: Attr((h[1] & 0x04) | ((h[2] >> 4) & 0x3)),
            ln: h[1] & 0x02 != 0,
            th: h[1] & 0x01 != 0,
            ep: h[2] & 0x40 != 0,
            at: (h[2] >> 2) & 0x3,
            length_dw: if raw_len == 0 { 1024 } else { raw_len },
            requester,
            tag,
            body,
            payload,
            digest,
        }
    }

    /// The kind this repr emits as.
    pub fn kind(&self) -> Kind {
        match self.body {
            Body::Memory { op, .. } => match op {
                MemOp::Read => Kind::MRd,
                MemOp::ReadLocked => Kind::MRdLk,
                MemOp::Write => Kind::MWr,
                MemOp::FetchAdd => Kind::FetchAdd,
                MemOp::Swap => Kind::Swap,
                MemOp::Cas => Kind::Cas,
            },
            Body::Io { write, .. } => {
                if write {
                    Kind::IOWr
                } else {
                    Kind::IORd
                }
            }
            Body::Config { write, type1, .. } => match (write, type1) {
                (false, false) => Kind::CfgRd0,
                (true, false) => Kind::CfgWr0,
                (false, true) => Kind::CfgRd1,
                (true, true) => Kind::CfgWr1,
            },
            Body::Message { .. } => {
                if self.payload.is_empty() {
                    Kind::Msg
                } else {
                    Kind::MsgD
                }
            }
            Body::Completion { locked, .. } => match (locked, self.payload.is_empty()) {
                (false, true) => Kind::Cpl,
                (false, false) => Kind::CplD,
                (true, true) => Kind::CplLk,
                (true, false) => Kind::CplDLk,
            },
        }
    }

    fn is_4dw(&self) -> bool {
        match self.body {
            Body::Memory { long, .. } => long,
            Body::Message { .. } => true,
            _ => false,
        }
    }

    /// Header length in bytes.
    pub fn header_len(&self) -> usize {
        if self.is_4dw() {
            16
        } else {
            12
        }
    }

    /// Bytes `emit` writes.
    pub fn buffer_len(&self) -> usize {
        let digest = if self.digest == Digest::Absent { 0 } else { 4 };
        self.prefixes.len() * 4 + self.header_len() + self.payload.len() + digest
    }

    /// Writes the TLP into the start of `buf`; returns the bytes written.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, EmitError> {
        let (h, has_data) = self.header_dws()?;
        let hlen = if h[0] & 0x2000_0000 != 0 { 16 } else { 12 };
        let hdr = self.prefixes.bytes.len();
        let data_at = hdr + hlen;
        let digest_at = data_at + self.payload.len();
        let len = digest_at + if self.digest == Digest::Absent { 0 } else { 4 };
        if buf.len() < len {
            return Err(EmitError::BufferTooSmall {
                needed: len,
                available: buf.len(),
            });
        }
        if self.length_dw == 0 || self.length_dw > 1024 {
            return Err(EmitError::Length(self.length_dw));
        }
        let expected = if has_data {
            self.length_dw as usize * 4
        } else {
            0
        };
        if self.payload.len() != expected {
            return Err(EmitError::PayloadLength {
                expected,
                actual: self.payload.len(),
            });
        }
        // Empty copies are skipped and the common sizes fixed: a copy of
        // unknown length is a library call.
        if hdr != 0 {
            buf[..hdr].copy_from_slice(self.prefixes.bytes);
        }
        // Whole-DW stores of a fixed count: the header is built as integers.
        let out = &mut buf[hdr..hdr + hlen];
        out[0..4].copy_from_slice(&h[0].to_be_bytes());
        out[4..8].copy_from_slice(&h[1].to_be_bytes());
        out[8..12].copy_from_slice(&h[2].to_be_bytes());
        if let Some(last) = out.get_mut(12..16) {
            last.copy_from_slice(&h[3].to_be_bytes());
        }
        match self.payload.len() {
            0 => {}
            4 => buf[data_at..data_at + 4].copy_from_slice(&self.payload[..4]),
            8 => buf[data_at..data_at + 8].copy_from_slice(&self.payload[..8]),
            n => buf[data_at..data_at + n].copy_from_slice(self.payload),
        }
        match self.digest {
            Digest::Absent => {}
            Digest::Value(d) => buf[digest_at..digest_at + 4].copy_from_slice(&d),
            Digest::Compute => {
                let ecrc = Tlp::new_unchecked(&buf[..digest_at + 4]).compute_ecrc();
                buf[digest_at..digest_at + 4].copy_from_slice(&ecrc);
            }
        }
        Ok(len)
    }

    /// The header as four DWs (the last unused for 3 DW headers), each to be
    /// written big-endian, and whether the kind carries data. One `match` on
    /// the body decides Type, Fmt and DWs 1–3 together.
    #[inline(always)]
    fn header_dws(&self) -> Result<([u32; 4], bool), EmitError> {
        let tag = self.tag as u32;
        let requester = self.requester.0 as u32;
        let be = |first: u8, last: u8| ((last as u32 & 0xf) << 4) | (first as u32 & 0xf);
        let request_dw1 =
            |first: u8, last: u8| requester << 16 | (tag & 0xff) << 8 | be(first, last);
        let with_payload = !self.payload.is_empty();
        // (Type, has data, 4 DW, DW1, DW2, DW3)
        let (ty, data, long, dw1, dw2, dw3) = match self.body {
            Body::Memory {
                op,
                first_be,
                last_be,
                address,
                long,
                ph,
            } => {
                if address & 0x3 != 0 {
                    return Err(EmitError::AddressAlignment(address));
                }
                if !long && address > u32::MAX as u64 {
                    return Err(EmitError::AddressWidth(address));
                }
                let (ty, data) = match op {
                    MemOp::Read => (0x00, false),
                    MemOp::ReadLocked => (0x01, false),
                    MemOp::Write => (0x00, true),
                    MemOp::FetchAdd => (0x0c, true),
                    MemOp::Swap => (0x0d, true),
                    MemOp::Cas => (0x0e, true),
                };
                let a = address | (ph as u64 & 0x3);
                let (dw2, dw3) = if long {
                    ((a >> 32) as u32, a as u32)
                } else {
                    (a as u32, 0)
                };
                (ty, data, long, request_dw1(first_be, last_be), dw2, dw3)
            }
            Body::Io {
                write,
                first_be,
                last_be,
                address,
            } => {
                if address & 0x3 != 0 {
                    return Err(EmitError::AddressAlignment(address as u64));
                }
                (
                    0x02,
                    write,
                    false,
                    request_dw1(first_be, last_be),
                    address,
                    0,
                )
            }
            Body::Config {
                write,
                type1,
                first_be,
                last_be,
                target,
                register,
            } => (
                0x04 | type1 as u32,
                write,
                false,
                request_dw1(first_be, last_be),
                (target.0 as u32) << 16 | (register as u32 & 0xffc),
                0,
            ),
            Body::Message {
                routing,
                code,
                fields,
            } => (
                0x10 | routing.bits() as u32,
                with_payload,
                true,
                requester << 16 | (tag & 0xff) << 8 | code.byte() as u32,
                u32::from_be_bytes([fields[0], fields[1], fields[2], fields[3]]),
                u32::from_be_bytes([fields[4], fields[5], fields[6], fields[7]]),
            ),
            Body::Completion {
                locked,
                completer,
                status,
                bcm,
                byte_count,
                lower_address,
            } => (
                0x0a | locked as u32,
                with_payload,
                false,
                (completer.0 as u32) << 16
                    | (status.bits() as u32) << 13
                    | (bcm as u32) << 12
                    | (byte_count as u32 & 0xfff),
                requester << 16 | (tag & 0xff) << 8 | (lower_address as u32 & 0x7f),
                0,
            ),
        };
        let attr = self.attr.0 as u32;
        let td = (self.digest != Digest::Absent) as u32;
        // DW0: Fmt Type | T9 TC T8 A2 LN TH | TD EP Attr AT Length.
        let dw0 = (data as u32) << 30
            | (long as u32) << 29
            | ty << 24
            | ((tag >> 9) & 1) << 23
            | (self.tc as u32 & 0x7) << 20
            | ((tag >> 8) & 1) << 19
            | (attr & 0x4) << 16
            | (self.ln as u32) << 17
            | (self.th as u32) << 16
            | td << 15
            | (self.ep as u32) << 14
            | (attr & 0x3) << 12
            | (self.at as u32 & 0x3) << 10
            | (self.length_dw as u32 & 0x3ff);
        Ok(([dw0, dw1, dw2, dw3], data))
    }

    /// The address of an address-routed request or message.
    pub fn address(&self) -> Option<u64> {
        match self.body {
            Body::Memory { address, .. } => Some(address),
            Body::Io { address, .. } => Some(address as u64),
            Body::Message {
                routing: MsgRouting::ByAddress,
                fields,
                ..
            } => Some(u64::from_be_bytes(fields) & !0x3),
            _ => None,
        }
    }

    /// First and Last DW byte enables of a request.
    pub fn byte_enables(&self) -> Option<(u8, u8)> {
        match self.body {
            Body::Memory {
                first_be, last_be, ..
            }
            | Body::Io {
                first_be, last_be, ..
            }
            | Body::Config {
                first_be, last_be, ..
            } => Some((first_be, last_be)),
            _ => None,
        }
    }
}

impl fmt::Display for Repr<'_> {
    /// One line, like `MWr64 len=2 req=01:00.0 tag=0x05 addr=0x0000001000000040 fbe=0xf lbe=0xf data=0102…`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = self.kind();
        match self.body {
            Body::Memory { long, .. } => {
                write!(f, "{}{}", kind.name(), if long { "64" } else { "32" })?
            }
            _ => f.write_str(kind.name())?,
        }
        if !kind.length_is_reserved() {
            write!(f, " len={}", self.length_dw)?;
        }
        if let Body::Completion { completer, .. } = self.body {
            write!(f, " cpl={completer}")?;
        }
        write!(f, " req={} tag={:#04x}", self.requester, self.tag)?;
        if self.tc != 0 {
            write!(f, " tc={}", self.tc)?;
        }
        if self.attr.0 != 0 {
            write!(f, " attr={:03b}", self.attr.0)?;
        }
        if self.ep {
            f.write_str(" ep")?;
        }
        if self.th {
            f.write_str(" th")?;
        }
        match self.body {
            Body::Memory {
                first_be,
                last_be,
                address,
                long,
                ..
            } => {
                if long {
                    write!(f, " addr={address:#018x}")?;
                } else {
                    write!(f, " addr={address:#010x}")?;
                }
                write!(f, " fbe={first_be:#x} lbe={last_be:#x}")?;
            }
            Body::Io {
                first_be,
                last_be,
                address,
                ..
            } => {
                write!(
                    f,
                    " addr={address:#010x} fbe={first_be:#x} lbe={last_be:#x}"
                )?;
            }
            Body::Config {
                first_be,
                last_be,
                target,
                register,
                ..
            } => {
                write!(
                    f,
                    " target={target} reg={register:#05x} fbe={first_be:#x} lbe={last_be:#x}"
                )?;
            }
            Body::Message {
                routing,
                code,
                fields,
            } => {
                write!(
                    f,
                    " route={} code={:#04x}",
                    routing_name(routing),
                    code.byte()
                )?;
                match routing {
                    MsgRouting::ByAddress => {
                        write!(f, " addr={:#018x}", u64::from_be_bytes(fields) & !0x3)?
                    }
                    MsgRouting::ById => write!(
                        f,
                        " target={}",
                        Bdf(u16::from_be_bytes([fields[0], fields[1]]))
                    )?,
                    _ => {}
                }
            }
            Body::Completion {
                status,
                bcm,
                byte_count,
                lower_address,
                ..
            } => {
                write!(
                    f,
                    " status={} bc={byte_count} la={lower_address:#04x}",
                    status.name()
                )?;
                if bcm {
                    f.write_str(" bcm")?;
                }
            }
        }
        if !self.payload.is_empty() {
            f.write_str(" data=")?;
            for b in self.payload {
                write!(f, "{b:02x}")?;
            }
        }
        match self.digest {
            Digest::Absent => {}
            Digest::Value(d) => {
                write!(f, " ecrc={:02x}{:02x}{:02x}{:02x}", d[0], d[1], d[2], d[3])?
            }
            Digest::Compute => f.write_str(" ecrc=auto")?,
        }
        for p in self.prefixes.iter() {
            write!(f, " prefix={p:#010x}")?;
        }
        Ok(())
    }
}

/// The routing names used in text and JSON output.
pub fn routing_name(routing: MsgRouting) -> &'static str {
    match routing {
        MsgRouting::ToRoot => "to_root",
        MsgRouting::ByAddress => "address",
        MsgRouting::ById => "id",
        MsgRouting::Broadcast => "broadcast",
        MsgRouting::Local | MsgRouting::Reserved(_) => "local",
        MsgRouting::Gather => "gather",
    }
}
