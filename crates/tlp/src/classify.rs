//! What the dataplane needs to know about a TLP before (or instead of) a full
//! parse: how it is routed, which flow-control class it belongs to and what
//! credits it consumes. Reads bytes 0, 2 and 3 of the header only.

use crate::error::Error;
use crate::kind::{Kind, MsgRouting, FMT_PREFIX};

/// How a TLP is routed (§2.2.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Routing {
    /// By address: memory, I/O and atomic requests, messages routed by address.
    Address,
    /// By ID: configuration requests, completions, messages routed by ID.
    Id,
    /// Implicit: to the Root Complex.
    ToRoot,
    /// Implicit: broadcast from the Root Complex.
    Broadcast,
    /// Implicit: local, terminate at receiver (and the reserved sub-codes).
    Local,
    /// Implicit: gathered and routed to the Root Complex.
    Gather,
}

impl Routing {
    /// `address`, `id`, `to_root`, `broadcast`, `local` or `gather`.
    pub const fn name(self) -> &'static str {
        match self {
            Routing::Address => "address",
            Routing::Id => "id",
            Routing::ToRoot => "to_root",
            Routing::Broadcast => "broadcast",
            Routing::Local => "local",
            Routing::Gather => "gather",
        }
    }

    /// Whether the route is implicit (neither address nor ID).
    pub const fn is_implicit(self) -> bool {
        !matches!(self, Routing::Address | Routing::Id)
    }

    /// The routing of a kind (messages by their sub-code).
    pub const fn of(kind: Kind, msg: MsgRouting) -> Routing {
        match kind {
            Kind::Msg | Kind::MsgD => match msg {
                MsgRouting::ToRoot => Routing::ToRoot,
                MsgRouting::ByAddress => Routing::Address,
                MsgRouting::ById => Routing::Id,
                MsgRouting::Broadcast => Routing::Broadcast,
                MsgRouting::Local | MsgRouting::Reserved(_) => Routing::Local,
                MsgRouting::Gather => Routing::Gather,
            },
            Kind::CfgRd0
            | Kind::CfgWr0
            | Kind::CfgRd1
            | Kind::CfgWr1
            | Kind::Cpl
            | Kind::CplD
            | Kind::CplLk
            | Kind::CplDLk => Routing::Id,
            _ => Routing::Address,
        }
    }
}

/// The flow-control and ordering class (§2.4, §2.6.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FlowClass {
    /// Memory writes and messages.
    Posted,
    /// Reads, I/O and configuration requests, AtomicOps.
    NonPosted,
    /// Completions.
    Completion,
}

impl FlowClass {
    /// The class of a kind.
    pub const fn of(kind: Kind) -> FlowClass {
        match kind {
            Kind::MWr | Kind::Msg | Kind::MsgD => FlowClass::Posted,
            Kind::Cpl | Kind::CplD | Kind::CplLk | Kind::CplDLk => FlowClass::Completion,
            _ => FlowClass::NonPosted,
        }
    }

    /// `posted`, `non_posted` or `completion`.
    pub const fn name(self) -> &'static str {
        match self {
            FlowClass::Posted => "posted",
            FlowClass::NonPosted => "non_posted",
            FlowClass::Completion => "completion",
        }
    }

    /// The header credit type of the class.
    pub const fn header_credit(self) -> CreditType {
        match self {
            FlowClass::Posted => CreditType::PH,
            FlowClass::NonPosted => CreditType::NPH,
            FlowClass::Completion => CreditType::CplH,
        }
    }

    /// The data credit type of the class.
    pub const fn data_credit(self) -> CreditType {
        match self {
            FlowClass::Posted => CreditType::PD,
            FlowClass::NonPosted => CreditType::NPD,
            FlowClass::Completion => CreditType::CplD,
        }
    }
}

/// The six flow-control credit types (§2.6.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(clippy::upper_case_acronyms)]
pub enum CreditType {
    /// Posted request headers.
    PH,
    /// Posted request data.
    PD,
    /// Non-posted request headers.
    NPH,
    /// Non-posted request data.
    NPD,
    /// Completion headers.
    CplH,
    /// Completion data.
    CplD,
}

impl CreditType {
    /// All six, in the order PH, PD, NPH, NPD, CplH, CplD.
    pub const ALL: [CreditType; 6] = [
        CreditType::PH,
        CreditType::PD,
        CreditType::NPH,
        CreditType::NPD,
        CreditType::CplH,
        CreditType::CplD,
    ];

    /// Index into [`CreditType::ALL`].
    pub const fn index(self) -> usize {
        match self {
            CreditType::PH => 0,
            CreditType::PD => 1,
            CreditType::NPH => 2,
            CreditType::NPD => 3,
            CreditType::CplH => 4,
            CreditType::CplD => 5,
        }
    }
}

/// Data credits for a payload of `length_dw` DW: one credit per 16 bytes
/// (4 DW), rounded up (§2.6.1).
pub const fn data_credits(length_dw: u16) -> u16 {
    length_dw.div_ceil(4)
}

/// The result of [`classify`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Class {
    /// The kind.
    pub kind: Kind,
    /// How it is routed.
    pub routing: Routing,
    /// Its flow-control class.
    pub flow: FlowClass,
    /// Header credits consumed (always 1, in the class's header credit type).
    pub header_credits: u16,
    /// Data credits consumed (16-byte units, in the class's data credit type).
    pub data_credits: u16,
    /// Byte offset of the header (after prefixes).
    pub header_offset: usize,
}

/// Kind, routing and flow class of every byte-0 value (`None`: reserved or a
/// prefix). A `static` so that classification is one load.
static CLASS_TABLE: [Option<(Kind, Routing, FlowClass)>; 256] = build_class_table();

const fn build_class_table() -> [Option<(Kind, Routing, FlowClass)>; 256] {
    let mut table = [None; 256];
    let mut byte = 0;
    while byte < 256 {
        if let Some(kind) = crate::kind::kind_of_byte0(byte as u8) {
            let routing = Routing::of(kind, MsgRouting::from_bits(byte as u8));
            table[byte] = Some((kind, routing, FlowClass::of(kind)));
        }
        byte += 1;
    }
    table
}

/// Classifies a TLP from its first header bytes, skipping prefixes. Does not
/// check the payload length; [`crate::Tlp::new_checked`] does.
#[inline]
pub fn classify(bytes: &[u8]) -> Result<Class, Error> {
    let hdr = match bytes.first() {
        Some(b) if b >> 5 == FMT_PREFIX => prefix_len(bytes)?,
        _ => 0,
    };
    let Some(h) = bytes.get(hdr..hdr + 4) else {
        return Err(Error::Truncated {
            needed: hdr + 4,
            available: bytes.len(),
        });
    };
    let Some((kind, routing, flow)) = CLASS_TABLE[h[0] as usize] else {
        return Err(Error::ReservedType {
            fmt: h[0] >> 5,
            type_bits: h[0] & 0x1f,
            at: hdr,
        });
    };
    let data_credits = if kind.has_data() {
        data_credits(length_dw([h[0], h[1], h[2], h[3]]))
    } else {
        0
    };
    Ok(Class {
        kind,
        routing,
        flow,
        header_credits: 1,
        data_credits,
        header_offset: hdr,
    })
}

/// [`classify`] of a TLP without prefixes, from its first header DW (`None`:
/// a prefix or a reserved type, for the general path to name).
#[inline(always)]
pub(crate) fn classify_plain(dw0: [u8; 4]) -> Option<Class> {
    let (kind, routing, flow) = CLASS_TABLE[dw0[0] as usize]?;
    // Fmt bit 1 is "with data" for every type (checked in `kind`'s tests).
    let data_credits = if dw0[0] & 0x40 != 0 {
        data_credits(length_dw(dw0))
    } else {
        0
    };
    Some(Class {
        kind,
        routing,
        flow,
        header_credits: 1,
        data_credits,
        header_offset: 0,
    })
}

/// The Length field of a header's first DW: 0 stands for 1024 DW (§2.2.2).
#[inline(always)]
pub(crate) fn length_dw(dw0: [u8; 4]) -> u16 {
    let raw = (((dw0[2] & 0x3) as u16) << 8) | dw0[3] as u16;
    if raw == 0 {
        1024
    } else {
        raw
    }
}

/// Bytes taken by the prefixes at the start of `bytes`.
#[cold]
fn prefix_len(bytes: &[u8]) -> Result<usize, Error> {
    let mut hdr = 0;
    while let Some(&b0) = bytes.get(hdr) {
        if b0 >> 5 != FMT_PREFIX {
            return Ok(hdr);
        }
        hdr += 4;
        if hdr > crate::packet::MAX_PREFIXES * 4 {
            return Err(Error::TooManyPrefixes {
                count: hdr / 4,
                at: hdr - 4,
            });
        }
    }
    Err(Error::Truncated {
        needed: hdr + 4,
        available: bytes.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routing_and_class_of_every_kind() {
        let cases: &[(u8, Routing, FlowClass)] = &[
            (0x00, Routing::Address, FlowClass::NonPosted), // MRd
            (0x01, Routing::Address, FlowClass::NonPosted), // MRdLk
            (0x60, Routing::Address, FlowClass::Posted),    // MWr
            (0x02, Routing::Address, FlowClass::NonPosted), // IORd
            (0x42, Routing::Address, FlowClass::NonPosted), // IOWr
            (0x04, Routing::Id, FlowClass::NonPosted),      // CfgRd0
            (0x45, Routing::Id, FlowClass::NonPosted),      // CfgWr1
            (0x30, Routing::ToRoot, FlowClass::Posted),
            (0x31, Routing::Address, FlowClass::Posted),
            (0x32, Routing::Id, FlowClass::Posted),
            (0x33, Routing::Broadcast, FlowClass::Posted),
            (0x74, Routing::Local, FlowClass::Posted),
            (0x35, Routing::Gather, FlowClass::Posted),
            (0x36, Routing::Local, FlowClass::Posted), // reserved: terminate at receiver
            (0x0a, Routing::Id, FlowClass::Completion),
            (0x4b, Routing::Id, FlowClass::Completion),
            (0x6e, Routing::Address, FlowClass::NonPosted), // CAS
        ];
        for &(b0, routing, flow) in cases {
            let c = classify(&[b0, 0, 0, 1]).unwrap();
            assert_eq!((c.routing, c.flow), (routing, flow), "byte0 {b0:#04x}");
            assert_eq!(c.header_credits, 1);
        }
    }

    #[test]
    fn data_credits_are_16_byte_units() {
        assert_eq!(classify(&[0x40, 0, 0, 1]).unwrap().data_credits, 1);
        assert_eq!(classify(&[0x40, 0, 0, 4]).unwrap().data_credits, 1);
        assert_eq!(classify(&[0x40, 0, 0, 5]).unwrap().data_credits, 2);
        assert_eq!(classify(&[0x40, 0, 0, 0]).unwrap().data_credits, 256); // 1024 DW
        assert_eq!(classify(&[0x00, 0, 0, 8]).unwrap().data_credits, 0); // MRd: no data
        assert_eq!(FlowClass::NonPosted.data_credit(), CreditType::NPD);
        assert_eq!(FlowClass::Completion.header_credit(), CreditType::CplH);
    }

    #[test]
    fn prefixes_are_skipped() {
        let c = classify(&[0x91, 0, 0, 0, 0x4a, 0, 0, 1]).unwrap();
        assert_eq!(c.kind, Kind::CplD);
        assert_eq!(c.header_offset, 4);
    }

    #[test]
    fn rejects() {
        assert!(matches!(classify(&[]), Err(Error::Truncated { .. })));
        assert!(matches!(
            classify(&[0x91, 0, 0, 0]),
            Err(Error::Truncated { .. })
        ));
        assert!(matches!(
            classify(&[0x1b, 0, 0, 1]),
            Err(Error::ReservedType { at: 0, .. })
        ));
        assert!(matches!(
            classify(&[0x80; 64]),
            Err(Error::TooManyPrefixes { .. })
        ));
    }
}
