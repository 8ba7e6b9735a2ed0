//! Code points: Fmt/Type (PCIe Base Specification 4.0, §2.2.1, Table 2-3),
//! message routing (Table 2-18), message codes, completion status, attributes.
//!
//! Decoding a code point never fails: unknown values decode to an `Unknown` or
//! `Reserved` variant, and only validation decides what is unsupported.

use core::fmt;

/// The transaction kind named by the Fmt and Type fields of a TLP header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Memory Read Request.
    MRd,
    /// Memory Read Request-Locked.
    MRdLk,
    /// Memory Write Request.
    MWr,
    /// I/O Read Request.
    IORd,
    /// I/O Write Request.
    IOWr,
    /// Type 0 Configuration Read Request.
    CfgRd0,
    /// Type 0 Configuration Write Request.
    CfgWr0,
    /// Type 1 Configuration Read Request.
    CfgRd1,
    /// Type 1 Configuration Write Request.
    CfgWr1,
    /// Message Request without data.
    Msg,
    /// Message Request with data.
    MsgD,
    /// Completion without data.
    Cpl,
    /// Completion with data.
    CplD,
    /// Completion for a locked read, without data.
    CplLk,
    /// Completion for a locked read, with data.
    CplDLk,
    /// Fetch-and-Add AtomicOp Request.
    FetchAdd,
    /// Unconditional Swap AtomicOp Request.
    Swap,
    /// Compare-and-Swap AtomicOp Request.
    Cas,
}

/// Every kind, in a fixed order (for tables, tests and benches).
pub const ALL_KINDS: [Kind; 18] = [
    Kind::MRd,
    Kind::MRdLk,
    Kind::MWr,
    Kind::IORd,
    Kind::IOWr,
    Kind::CfgRd0,
    Kind::CfgWr0,
    Kind::CfgRd1,
    Kind::CfgWr1,
    Kind::Msg,
    Kind::MsgD,
    Kind::Cpl,
    Kind::CplD,
    Kind::CplLk,
    Kind::CplDLk,
    Kind::FetchAdd,
    Kind::Swap,
    Kind::Cas,
];

/// Fmt\[2:0\] value of a TLP prefix.
pub const FMT_PREFIX: u8 = 0b100;

// One entry per (Fmt, Type) code point. Built at compile time so classification
// is one load; a `static`, since indexing a `const` array at run time may copy
// the whole array to the stack first.
static KIND_TABLE: [Option<Kind>; 256] = build_kind_table();

const fn build_kind_table() -> [Option<Kind>; 256] {
    let mut table = [None; 256];
    let mut byte = 0;
    while byte < 256 {
        table[byte] = kind_of_byte0(byte as u8);
        byte += 1;
    }
    table
}

/// Table 2-3 as a function: the kind of a header's byte 0, if any.
pub(crate) const fn kind_of_byte0(byte: u8) -> Option<Kind> {
    let fmt = byte >> 5;
    let ty = byte & 0x1f;
    match (fmt, ty) {
        (0 | 1, 0x00) => Some(Kind::MRd),
        (2 | 3, 0x00) => Some(Kind::MWr),
        (0 | 1, 0x01) => Some(Kind::MRdLk),
        (0, 0x02) => Some(Kind::IORd),
        (2, 0x02) => Some(Kind::IOWr),
        (0, 0x04) => Some(Kind::CfgRd0),
        (2, 0x04) => Some(Kind::CfgWr0),
        (0, 0x05) => Some(Kind::CfgRd1),
        (2, 0x05) => Some(Kind::CfgWr1),
        (1, 0x10..=0x17) => Some(Kind::Msg),
        (3, 0x10..=0x17) => Some(Kind::MsgD),
        (0, 0x0a) => Some(Kind::Cpl),
        (2, 0x0a) => Some(Kind::CplD),
        (0, 0x0b) => Some(Kind::CplLk),
        (2, 0x0b) => Some(Kind::CplDLk),
        (2 | 3, 0x0c) => Some(Kind::FetchAdd),
        (2 | 3, 0x0d) => Some(Kind::Swap),
        (2 | 3, 0x0e) => Some(Kind::Cas),
        _ => None,
    }
}

impl Kind {
    /// Decodes byte 0 of a TLP header (Fmt in bits 7:5, Type in bits 4:0).
    /// `None` for reserved encodings and for TLP prefixes.
    #[inline]
    pub fn from_byte0(byte0: u8) -> Option<Kind> {
        KIND_TABLE[byte0 as usize]
    }

    /// The name used in text and JSON output (`MRd`, `CAS`, ...).
    pub const fn name(self) -> &'static str {
        match self {
            Kind::MRd => "MRd",
            Kind::MRdLk => "MRdLk",
            Kind::MWr => "MWr",
            Kind::IORd => "IORd",
            Kind::IOWr => "IOWr",
            Kind::CfgRd0 => "CfgRd0",
            Kind::CfgWr0 => "CfgWr0",
            Kind::CfgRd1 => "CfgRd1",
            Kind::CfgWr1 => "CfgWr1",
            Kind::Msg => "Msg",
            Kind::MsgD => "MsgD",
            Kind::Cpl => "Cpl",
            Kind::CplD => "CplD",
            Kind::CplLk => "CplLk",
            Kind::CplDLk => "CplDLk",
            Kind::FetchAdd => "FetchAdd",
            Kind::Swap => "Swap",
            Kind::Cas => "CAS",
        }
    }

    /// Parses a name as printed by [`Kind::name`] (case-insensitive).
    pub fn from_name(name: &str) -> Option<Kind> {
        ALL_KINDS
            .iter()
            .copied()
            .find(|k| k.name().eq_ignore_ascii_case(name))
    }

    /// The Type\[4:0\] field for this kind; messages take their routing sub-code.
    pub const fn type_bits(self, routing: MsgRouting) -> u8 {
        match self {
            Kind::MRd | Kind::MWr => 0x00,
            Kind::MRdLk => 0x01,
            Kind::IORd | Kind::IOWr => 0x02,
            Kind::CfgRd0 | Kind::CfgWr0 => 0x04,
            Kind::CfgRd1 | Kind::CfgWr1 => 0x05,
            Kind::Msg | Kind::MsgD => 0x10 | routing.bits(),
            Kind::Cpl | Kind::CplD => 0x0a,
            Kind::CplLk | Kind::CplDLk => 0x0b,
            Kind::FetchAdd => 0x0c,
            Kind::Swap => 0x0d,
            Kind::Cas => 0x0e,
        }
    }

    /// Whether the TLP carries a data payload.
    pub const fn has_data(self) -> bool {
        matches!(
            self,
            Kind::MWr
                | Kind::IOWr
                | Kind::CfgWr0
                | Kind::CfgWr1
                | Kind::MsgD
                | Kind::CplD
                | Kind::CplDLk
                | Kind::FetchAdd
                | Kind::Swap
                | Kind::Cas
        )
    }

    /// Payload bytes a header with this kind and bytes 2–3 carries: Length × 4
    /// (Length 0 meaning 1024 DW) for kinds with data, else none.
    #[inline(always)]
    pub(crate) fn payload_bytes(self, byte2: u8, byte3: u8) -> usize {
        if !self.has_data() {
            return 0;
        }
        match (((byte2 & 0x3) as usize) << 8) | byte3 as usize {
            0 => 4096,
            dw => dw * 4,
        }
    }

    /// Whether Length is a reserved field for this kind (completions and
    /// messages without data, §2.2.1): formed as 0, which decodes as 1024.
    pub const fn length_is_reserved(self) -> bool {
        matches!(self, Kind::Msg | Kind::Cpl | Kind::CplLk)
    }

    /// Whether the header may be 4 DW (64-bit address) as well as 3 DW.
    pub const fn has_long_form(self) -> bool {
        matches!(
            self,
            Kind::MRd | Kind::MRdLk | Kind::MWr | Kind::FetchAdd | Kind::Swap | Kind::Cas
        )
    }

    /// Whether the header is always 4 DW (messages).
    pub const fn always_4dw(self) -> bool {
        matches!(self, Kind::Msg | Kind::MsgD)
    }

    /// Completions of any flavour.
    pub const fn is_completion(self) -> bool {
        matches!(self, Kind::Cpl | Kind::CplD | Kind::CplLk | Kind::CplDLk)
    }

    /// Messages with or without data.
    pub const fn is_message(self) -> bool {
        matches!(self, Kind::Msg | Kind::MsgD)
    }

    /// Configuration requests of either type.
    pub const fn is_config(self) -> bool {
        matches!(
            self,
            Kind::CfgRd0 | Kind::CfgWr0 | Kind::CfgRd1 | Kind::CfgWr1
        )
    }

    /// AtomicOp requests.
    pub const fn is_atomic(self) -> bool {
        matches!(self, Kind::FetchAdd | Kind::Swap | Kind::Cas)
    }

    /// Memory read and write requests (not atomics).
    pub const fn is_memory(self) -> bool {
        matches!(self, Kind::MRd | Kind::MRdLk | Kind::MWr)
    }

    /// I/O requests.
    pub const fn is_io(self) -> bool {
        matches!(self, Kind::IORd | Kind::IOWr)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Message routing sub-code r\[2:0\] (Type\[2:0\] of Msg/MsgD; §2.2.8, Table 2-18).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MsgRouting {
    /// 000b: routed to the Root Complex.
    ToRoot,
    /// 001b: routed by address.
    ByAddress,
    /// 010b: routed by ID.
    ById,
    /// 011b: broadcast from the Root Complex.
    Broadcast,
    /// 100b: local, terminate at receiver.
    Local,
    /// 101b: gathered and routed to the Root Complex.
    Gather,
    /// 110b/111b: reserved, terminate at receiver (handled like `Local`).
    Reserved(u8),
}

impl MsgRouting {
    /// Decodes the low three bits.
    pub const fn from_bits(bits: u8) -> MsgRouting {
        match bits & 0x7 {
            0 => MsgRouting::ToRoot,
            1 => MsgRouting::ByAddress,
            2 => MsgRouting::ById,
            3 => MsgRouting::Broadcast,
            4 => MsgRouting::Local,
            5 => MsgRouting::Gather,
            n => MsgRouting::Reserved(n),
        }
    }

    /// The three-bit encoding.
    pub const fn bits(self) -> u8 {
        match self {
            MsgRouting::ToRoot => 0,
            MsgRouting::ByAddress => 1,
            MsgRouting::ById => 2,
            MsgRouting::Broadcast => 3,
            MsgRouting::Local => 4,
            MsgRouting::Gather => 5,
            MsgRouting::Reserved(n) => n & 0x7,
        }
    }
}

/// Message codes (§2.2.8). Unknown codes keep their value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageCode {
    /// 0x00 Unlock.
    Unlock,
    /// 0x01 ATS Invalidate Request.
    InvalidateRequest,
    /// 0x02 ATS Invalidate Completion.
    InvalidateCompletion,
    /// 0x04 Page Request.
    PageRequest,
    /// 0x05 PRG Response.
    PrgResponse,
    /// 0x10 Latency Tolerance Reporting.
    Ltr,
    /// 0x12 Optimized Buffer Flush/Fill.
    Obff,
    /// 0x14 PM_Active_State_Nak.
    PmActiveStateNak,
    /// 0x18 PM_PME.
    PmPme,
    /// 0x19 PME_Turn_Off.
    PmeTurnOff,
    /// 0x1B PME_TO_Ack.
    PmeToAck,
    /// 0x20..=0x23 Assert_INTA..Assert_INTD (0 = A).
    AssertInt(u8),
    /// 0x24..=0x27 Deassert_INTA..Deassert_INTD (0 = A).
    DeassertInt(u8),
    /// 0x30 ERR_COR.
    ErrCor,
    /// 0x31 ERR_NONFATAL.
    ErrNonFatal,
    /// 0x33 ERR_FATAL.
    ErrFatal,
    /// 0x50 Set_Slot_Power_Limit.
    SetSlotPowerLimit,
    /// 0x52 PTM Request.
    PtmRequest,
    /// 0x53 PTM Response / ResponseD.
    PtmResponse,
    /// 0x7E Vendor_Defined Type 0.
    VendorDefined0,
    /// 0x7F Vendor_Defined Type 1.
    VendorDefined1,
    /// Any other code.
    Unknown(u8),
}

impl MessageCode {
    /// Decodes a message code byte.
    pub const fn from_byte(b: u8) -> MessageCode {
        match b {
            0x00 => MessageCode::Unlock,
            0x01 => MessageCode::InvalidateRequest,
            0x02 => MessageCode::InvalidateCompletion,
            0x04 => MessageCode::PageRequest,
            0x05 => MessageCode::PrgResponse,
            0x10 => MessageCode::Ltr,
            0x12 => MessageCode::Obff,
            0x14 => MessageCode::PmActiveStateNak,
            0x18 => MessageCode::PmPme,
            0x19 => MessageCode::PmeTurnOff,
            0x1b => MessageCode::PmeToAck,
            0x20..=0x23 => MessageCode::AssertInt(b - 0x20),
            0x24..=0x27 => MessageCode::DeassertInt(b - 0x24),
            0x30 => MessageCode::ErrCor,
            0x31 => MessageCode::ErrNonFatal,
            0x33 => MessageCode::ErrFatal,
            0x50 => MessageCode::SetSlotPowerLimit,
            0x52 => MessageCode::PtmRequest,
            0x53 => MessageCode::PtmResponse,
            0x7e => MessageCode::VendorDefined0,
            0x7f => MessageCode::VendorDefined1,
            n => MessageCode::Unknown(n),
        }
    }

    /// The code byte.
    pub const fn byte(self) -> u8 {
        match self {
            MessageCode::Unlock => 0x00,
            MessageCode::InvalidateRequest => 0x01,
            MessageCode::InvalidateCompletion => 0x02,
            MessageCode::PageRequest => 0x04,
            MessageCode::PrgResponse => 0x05,
            MessageCode::Ltr => 0x10,
            MessageCode::Obff => 0x12,
            MessageCode::PmActiveStateNak => 0x14,
            MessageCode::PmPme => 0x18,
            MessageCode::PmeTurnOff => 0x19,
            MessageCode::PmeToAck => 0x1b,
            MessageCode::AssertInt(n) => 0x20 + (n & 3),
            MessageCode::DeassertInt(n) => 0x24 + (n & 3),
            MessageCode::ErrCor => 0x30,
            MessageCode::ErrNonFatal => 0x31,
            MessageCode::ErrFatal => 0x33,
            MessageCode::SetSlotPowerLimit => 0x50,
            MessageCode::PtmRequest => 0x52,
            MessageCode::PtmResponse => 0x53,
            MessageCode::VendorDefined0 => 0x7e,
            MessageCode::VendorDefined1 => 0x7f,
            MessageCode::Unknown(n) => n,
        }
    }

    /// The routing the specification requires for this message, where it
    /// requires exactly one (§2.2.8.1–2.2.8.10). Vendor-defined and unknown
    /// messages may use several and return `None`.
    pub const fn required_routing(self) -> Option<MsgRouting> {
        match self {
            MessageCode::Unlock | MessageCode::PmeTurnOff => Some(MsgRouting::Broadcast),
            MessageCode::AssertInt(_)
            | MessageCode::DeassertInt(_)
            | MessageCode::PmActiveStateNak
            | MessageCode::SetSlotPowerLimit
            | MessageCode::Ltr
            | MessageCode::Obff
            | MessageCode::PtmRequest
            | MessageCode::PtmResponse => Some(MsgRouting::Local),
            MessageCode::PmPme
            | MessageCode::ErrCor
            | MessageCode::ErrNonFatal
            | MessageCode::ErrFatal
            | MessageCode::PageRequest => Some(MsgRouting::ToRoot),
            MessageCode::PmeToAck => Some(MsgRouting::Gather),
            MessageCode::InvalidateRequest
            | MessageCode::InvalidateCompletion
            | MessageCode::PrgResponse => Some(MsgRouting::ById),
            MessageCode::VendorDefined0 | MessageCode::VendorDefined1 | MessageCode::Unknown(_) => {
                None
            }
        }
    }

    /// Whether the specification requires Traffic Class 0 for this message
    /// (INTx, power management, error signalling, Unlock, Set_Slot_Power_Limit:
    /// "Receivers must check for violations of this rule", §2.2.8.1–2.2.8.5).
    pub const fn requires_tc0(self) -> bool {
        matches!(
            self,
            MessageCode::Unlock
                | MessageCode::AssertInt(_)
                | MessageCode::DeassertInt(_)
                | MessageCode::PmActiveStateNak
                | MessageCode::PmPme
                | MessageCode::PmeTurnOff
                | MessageCode::PmeToAck
                | MessageCode::ErrCor
                | MessageCode::ErrNonFatal
                | MessageCode::ErrFatal
                | MessageCode::SetSlotPowerLimit
        )
    }
}

/// Completion Status (§2.2.9, Table 2-34).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CplStatus {
    /// 000b Successful Completion.
    Sc,
    /// 001b Unsupported Request.
    Ur,
    /// 010b Configuration Request Retry Status.
    Crs,
    /// 100b Completer Abort.
    Ca,
    /// Any reserved encoding.
    Reserved(u8),
}

impl CplStatus {
    /// Decodes the three-bit field.
    pub const fn from_bits(bits: u8) -> CplStatus {
        match bits & 0x7 {
            0 => CplStatus::Sc,
            1 => CplStatus::Ur,
            2 => CplStatus::Crs,
            4 => CplStatus::Ca,
            n => CplStatus::Reserved(n),
        }
    }

    /// The three-bit encoding.
    pub const fn bits(self) -> u8 {
        match self {
            CplStatus::Sc => 0,
            CplStatus::Ur => 1,
            CplStatus::Crs => 2,
            CplStatus::Ca => 4,
            CplStatus::Reserved(n) => n & 0x7,
        }
    }

    /// `SC`, `UR`, `CRS`, `CA` or `RSVD`.
    pub const fn name(self) -> &'static str {
        match self {
            CplStatus::Sc => "SC",
            CplStatus::Ur => "UR",
            CplStatus::Crs => "CRS",
            CplStatus::Ca => "CA",
            CplStatus::Reserved(_) => "RSVD",
        }
    }

    /// Parses `SC`, `UR`, `CRS` or `CA` (case-insensitive).
    pub fn from_name(name: &str) -> Option<CplStatus> {
        [CplStatus::Sc, CplStatus::Ur, CplStatus::Crs, CplStatus::Ca]
            .into_iter()
            .find(|s| s.name().eq_ignore_ascii_case(name))
    }
}

/// The three attribute bits: bit 2 = ID-based ordering (Attr\[2\]), bit 1 =
/// relaxed ordering (Attr\[1\]), bit 0 = no snoop (Attr\[0\]) (§2.2.6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Attr(pub u8);

impl Attr {
    /// No Snoop.
    pub const NO_SNOOP: u8 = 0b001;
    /// Relaxed Ordering.
    pub const RELAXED_ORDERING: u8 = 0b010;
    /// ID-Based Ordering.
    pub const ID_BASED_ORDERING: u8 = 0b100;

    /// Whether relaxed ordering is set.
    pub const fn relaxed_ordering(self) -> bool {
        self.0 & Self::RELAXED_ORDERING != 0
    }

    /// Whether no-snoop is set.
    pub const fn no_snoop(self) -> bool {
        self.0 & Self::NO_SNOOP != 0
    }

    /// Whether ID-based ordering is set.
    pub const fn id_based_ordering(self) -> bool {
        self.0 & Self::ID_BASED_ORDERING != 0
    }
}

/// The AtomicOp request kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AtomicOp {
    /// FetchAdd.
    FetchAdd,
    /// Swap.
    Swap,
    /// CAS.
    Cas,
}

/// TLP prefix kinds (§2.2.1, Table 2-36/2-37).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PrefixKind {
    /// A Local TLP Prefix with its L\[3:0\] sub-type (0 = MR-IOV, 0xE/0xF vendor defined).
    Local(u8),
    /// An End-End TLP Prefix with its E\[3:0\] sub-type (0 = extended TPH,
    /// 1 = PASID, 0xE/0xF vendor defined).
    EndEnd(u8),
}

impl PrefixKind {
    /// Decodes byte 0 of a prefix; `None` if Fmt is not 100b.
    pub const fn from_byte0(b: u8) -> Option<PrefixKind> {
        if b >> 5 != FMT_PREFIX {
            return None;
        }
        if b & 0x10 == 0 {
            Some(PrefixKind::Local(b & 0xf))
        } else {
            Some(PrefixKind::EndEnd(b & 0xf))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_matches_spec_encodings() {
        // (byte 0, kind) straight from Table 2-3.
        let cases: &[(u8, Kind)] = &[
            (0x00, Kind::MRd),
            (0x20, Kind::MRd),
            (0x01, Kind::MRdLk),
            (0x21, Kind::MRdLk),
            (0x40, Kind::MWr),
            (0x60, Kind::MWr),
            (0x02, Kind::IORd),
            (0x42, Kind::IOWr),
            (0x04, Kind::CfgRd0),
            (0x44, Kind::CfgWr0),
            (0x05, Kind::CfgRd1),
            (0x45, Kind::CfgWr1),
            (0x30, Kind::Msg),
            (0x35, Kind::Msg),
            (0x70, Kind::MsgD),
            (0x74, Kind::MsgD),
            (0x0a, Kind::Cpl),
            (0x4a, Kind::CplD),
            (0x0b, Kind::CplLk),
            (0x4b, Kind::CplDLk),
            (0x4c, Kind::FetchAdd),
            (0x6c, Kind::FetchAdd),
            (0x4d, Kind::Swap),
            (0x6e, Kind::Cas),
        ];
        for &(byte, kind) in cases {
            assert_eq!(Kind::from_byte0(byte), Some(kind), "byte {byte:#04x}");
            let routing = MsgRouting::from_bits(byte);
            assert_eq!(kind.type_bits(routing), byte & 0x1f);
            assert_eq!(kind.has_data(), byte & 0x40 != 0, "{kind}");
        }
    }

    #[test]
    fn reserved_encodings_decode_to_none() {
        // 4DW I/O and configuration, 3DW messages, TCfgRd (deprecated), prefixes,
        // Fmt 101b..111b, completions with 4DW headers.
        for byte in [
            0x22, 0x62, 0x24, 0x64, 0x10, 0x50, 0x1b, 0x80, 0x90, 0xa0, 0xe0, 0x2a, 0x0c,
        ] {
            assert_eq!(Kind::from_byte0(byte), None, "byte {byte:#04x}");
        }
        let count = (0..=255u8)
            .filter(|b| Kind::from_byte0(*b).is_some())
            .count();
        // 2 MRd + 2 MRdLk + 2 MWr + 2 IO + 4 Cfg + 8 Msg + 8 MsgD + 4 Cpl + 6 atomics.
        assert_eq!(count, 38);
    }

    #[test]
    fn names_round_trip() {
        for kind in ALL_KINDS {
            assert_eq!(Kind::from_name(kind.name()), Some(kind));
        }
        assert_eq!(Kind::from_name("cas"), Some(Kind::Cas));
        assert_eq!(Kind::from_name("TCfgRd"), None);
    }

    #[test]
    fn message_codes_round_trip() {
        for b in 0..=255u8 {
            assert_eq!(MessageCode::from_byte(b).byte(), b);
        }
        assert_eq!(MessageCode::from_byte(0x22), MessageCode::AssertInt(2));
        assert_eq!(MessageCode::from_byte(0x7f), MessageCode::VendorDefined1);
    }

    #[test]
    fn status_and_routing_round_trip() {
        for b in 0..8u8 {
            assert_eq!(CplStatus::from_bits(b).bits(), b);
            assert_eq!(MsgRouting::from_bits(b).bits(), b);
        }
        assert_eq!(CplStatus::from_name("crs"), Some(CplStatus::Crs));
    }

    #[test]
    fn prefixes() {
        assert_eq!(PrefixKind::from_byte0(0x80), Some(PrefixKind::Local(0)));
        assert_eq!(PrefixKind::from_byte0(0x91), Some(PrefixKind::EndEnd(1)));
        assert_eq!(PrefixKind::from_byte0(0x40), None);
    }
}
