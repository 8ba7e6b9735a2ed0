//! `Repr`: a TLP as plain data, parsed from a [`Tlp`] view and emitted back to
//! bytes. The payload stays borrowed from the buffer it was parsed from.
//!
//! Reserved header bits are not kept: a switch forwards the bytes it received
//! (through the view), not a re-emitted repr.

use crate::bdf::Bdf;
use crate::error::{EmitError, Error};
use crate::kind::{Attr, CplStatus, Kind, MessageCode, MsgRouting};
use crate::packet::{Tlp, MAX_PREFIXES};
use core::fmt;

/// Up to [`MAX_PREFIXES`] TLP prefixes, each kept as its raw DW, in wire order.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct Prefixes {
    dws: [u32; MAX_PREFIXES],
    len: u8,
}

impl Prefixes {
    /// No prefixes.
    pub const fn new() -> Prefixes {
        Prefixes {
            dws: [0; MAX_PREFIXES],
            len: 0,
        }
    }

    /// Appends one prefix DW; hands it back if full or if its Fmt is not 100b.
    pub fn push(&mut self, dw: u32) -> Result<(), u32> {
        if self.len as usize >= MAX_PREFIXES || dw >> 29 != 0b100 {
            return Err(dw);
        }
        self.dws[self.len as usize] = dw;
        self.len += 1;
        Ok(())
    }

    /// The prefixes.
    pub fn as_slice(&self) -> &[u32] {
        &self.dws[..self.len as usize]
    }

    /// How many.
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl fmt::Debug for Prefixes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.as_slice()).finish()
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
    pub prefixes: Prefixes,
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
                let op = match kind {
                    Kind::MRd => MemOp::Read,
                    Kind::MRdLk => MemOp::ReadLocked,
                    Kind::MWr => MemOp::Write,
                    Kind::FetchAdd => MemOp::FetchAdd,
                    Kind::Swap => MemOp::Swap,
                    _ => MemOp::Cas,
                };
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
            prefixes: Prefixes::new(),
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
        Ok(Self::parse_checked(tlp, tlp.payload()))
    }

    /// Parses a view that has passed [`Tlp::check_len`], taking its payload
    /// from `payload` (the same bytes, borrowed for longer).
    pub(crate) fn parse_checked<T: AsRef<[u8]>>(tlp: &Tlp<T>, payload: &'a [u8]) -> Repr<'a> {
        let kind = tlp.kind().unwrap_or(Kind::MRd);
        let mut prefixes = Prefixes::new();
        for i in 0..tlp.prefix_count() {
            if let Some(dw) = tlp.prefix(i) {
                let _ = prefixes.push(dw);
            }
        }
        let body = match kind {
            Kind::MRd | Kind::MRdLk | Kind::MWr | Kind::FetchAdd | Kind::Swap | Kind::Cas => {
                let op = match kind {
                    Kind::MRd => MemOp::Read,
                    Kind::MRdLk => MemOp::ReadLocked,
                    Kind::MWr => MemOp::Write,
                    Kind::FetchAdd => MemOp::FetchAdd,
                    Kind::Swap => MemOp::Swap,
                    _ => MemOp::Cas,
                };
                Body::Memory {
                    op,
                    first_be: tlp.first_be(),
                    last_be: tlp.last_be(),
                    address: tlp.address(),
                    long: tlp.is_4dw(),
                    ph: tlp.ph(),
                }
            }
            Kind::IORd | Kind::IOWr => Body::Io {
                write: kind == Kind::IOWr,
                first_be: tlp.first_be(),
                last_be: tlp.last_be(),
                address: tlp.address() as u32,
            },
            Kind::CfgRd0 | Kind::CfgWr0 | Kind::CfgRd1 | Kind::CfgWr1 => Body::Config {
                write: kind.has_data(),
                type1: matches!(kind, Kind::CfgRd1 | Kind::CfgWr1),
                first_be: tlp.first_be(),
                last_be: tlp.last_be(),
                target: tlp.target_id(),
                register: tlp.register(),
            },
            Kind::Msg | Kind::MsgD => Body::Message {
                routing: tlp.message_routing(),
                code: tlp.message_code(),
                fields: tlp.message_fields(),
            },
            Kind::Cpl | Kind::CplD | Kind::CplLk | Kind::CplDLk => Body::Completion {
                locked: matches!(kind, Kind::CplLk | Kind::CplDLk),
                completer: tlp.completer_id(),
                status: tlp.status(),
                bcm: tlp.bcm(),
                byte_count: tlp.byte_count(),
                lower_address: tlp.lower_address(),
            },
        };
        Repr {
            prefixes,
            tc: tlp.tc(),
            attr: tlp.attr(),
            ln: tlp.ln(),
            th: tlp.th(),
            ep: tlp.ep(),
            at: tlp.at(),
            length_dw: tlp.length_dw(),
            requester: tlp.requester_id(),
            tag: tlp.tag(),
            body,
            payload,
            digest: match tlp.digest() {
                Some(d) => Digest::Value(d),
                None => Digest::Absent,
            },
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
        let kind = self.kind();
        let len = self.buffer_len();
        if buf.len() < len {
            return Err(EmitError::BufferTooSmall {
                needed: len,
                available: buf.len(),
            });
        }
        if self.length_dw == 0 || self.length_dw > 1024 {
            return Err(EmitError::Length(self.length_dw));
        }
        let expected = if kind.has_data() {
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
        let buf = &mut buf[..len];
        let mut off = 0;
        for dw in self.prefixes.as_slice() {
            buf[off..off + 4].copy_from_slice(&dw.to_be_bytes());
            off += 4;
        }
        let hdr = off;
        let h = &mut buf[hdr..hdr + self.header_len()];
        h.fill(0);
        let routing = match self.body {
            Body::Message { routing, .. } => routing,
            _ => MsgRouting::ToRoot,
        };
        let fmt = ((kind.has_data() as u8) << 1) | self.is_4dw() as u8;
        h[0] = fmt << 5 | kind.type_bits(routing);
        h[1] = (((self.tag >> 9) & 1) as u8) << 7
            | (self.tc & 0x7) << 4
            | (((self.tag >> 8) & 1) as u8) << 3
            | (self.attr.0 & 0x4)
            | (self.ln as u8) << 1
            | self.th as u8;
        let raw_len = self.length_dw & 0x3ff;
        h[2] = ((self.digest != Digest::Absent) as u8) << 7
            | (self.ep as u8) << 6
            | (self.attr.0 & 0x3) << 4
            | (self.at & 0x3) << 2
            | (raw_len >> 8) as u8;
        h[3] = raw_len as u8;
        let tag_lo = self.tag as u8;
        match self.body {
            Body::Memory {
                first_be,
                last_be,
                address,
                long,
                ph,
                ..
            } => {
                if address & 0x3 != 0 {
                    return Err(EmitError::AddressAlignment(address));
                }
                h[4..6].copy_from_slice(&self.requester.0.to_be_bytes());
                h[6] = tag_lo;
                h[7] = (last_be & 0xf) << 4 | (first_be & 0xf);
                if long {
                    h[8..16].copy_from_slice(&(address | (ph & 0x3) as u64).to_be_bytes());
                } else {
                    let a = u32::try_from(address).map_err(|_| EmitError::AddressWidth(address))?;
                    h[8..12].copy_from_slice(&(a | (ph & 0x3) as u32).to_be_bytes());
                }
            }
            Body::Io {
                first_be,
                last_be,
                address,
                ..
            } => {
                if address & 0x3 != 0 {
                    return Err(EmitError::AddressAlignment(address as u64));
                }
                h[4..6].copy_from_slice(&self.requester.0.to_be_bytes());
                h[6] = tag_lo;
                h[7] = (last_be & 0xf) << 4 | (first_be & 0xf);
                h[8..12].copy_from_slice(&address.to_be_bytes());
            }
            Body::Config {
                first_be,
                last_be,
                target,
                register,
                ..
            } => {
                h[4..6].copy_from_slice(&self.requester.0.to_be_bytes());
                h[6] = tag_lo;
                h[7] = (last_be & 0xf) << 4 | (first_be & 0xf);
                h[8..10].copy_from_slice(&target.0.to_be_bytes());
                h[10] = ((register >> 8) & 0xf) as u8;
                h[11] = (register & 0xfc) as u8;
            }
            Body::Message { code, fields, .. } => {
                h[4..6].copy_from_slice(&self.requester.0.to_be_bytes());
                h[6] = tag_lo;
                h[7] = code.byte();
                h[8..16].copy_from_slice(&fields);
            }
            Body::Completion {
                completer,
                status,
                bcm,
                byte_count,
                lower_address,
                ..
            } => {
                let bc = byte_count & 0xfff;
                h[4..6].copy_from_slice(&completer.0.to_be_bytes());
                h[6] = status.bits() << 5 | (bcm as u8) << 4 | (bc >> 8) as u8;
                h[7] = bc as u8;
                h[8..10].copy_from_slice(&self.requester.0.to_be_bytes());
                h[10] = tag_lo;
                h[11] = lower_address & 0x7f;
            }
        }
        let data_at = hdr + self.header_len();
        buf[data_at..data_at + self.payload.len()].copy_from_slice(self.payload);
        let digest_at = data_at + self.payload.len();
        match self.digest {
            Digest::Absent => {}
            Digest::Value(d) => buf[digest_at..digest_at + 4].copy_from_slice(&d),
            Digest::Compute => {
                let ecrc = Tlp::new_unchecked(&buf[..]).compute_ecrc();
                buf[digest_at..digest_at + 4].copy_from_slice(&ecrc);
            }
        }
        Ok(len)
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
        write!(f, " len={}", self.length_dw)?;
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
        for p in self.prefixes.as_slice() {
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
