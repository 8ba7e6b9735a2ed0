//! Every way a TLP can be rejected, one variant per rule, each with the byte
//! offset (from the first byte of the TLP, prefixes included) where the rule
//! was broken. Section numbers are those of the PCIe Base Specification 4.0.

use crate::kind::Kind;
use core::fmt;

/// Which byte-enable rule of §2.2.5 a request broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteEnableRule {
    /// Length is 1 DW but Last DW BE is not 0000b.
    LastBeWithOneDw,
    /// Length is more than 1 DW but First DW BE is 0000b.
    FirstBeZero,
    /// Length is more than 1 DW but Last DW BE is 0000b.
    LastBeZero,
    /// Byte enables not contiguous where they must be (3 DW or more, or 2 DW
    /// not QW aligned).
    NotContiguous,
}

impl ByteEnableRule {
    fn text(self) -> &'static str {
        match self {
            ByteEnableRule::LastBeWithOneDw => "Last DW BE must be 0000b when Length is 1 DW",
            ByteEnableRule::FirstBeZero => "First DW BE must not be 0000b when Length is over 1 DW",
            ByteEnableRule::LastBeZero => "Last DW BE must not be 0000b when Length is over 1 DW",
            ByteEnableRule::NotContiguous => {
                "byte enables must be contiguous for 3 DW or more, or for 2 DW not QW aligned"
            }
        }
    }
}

/// Why a TLP was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// The bytes end before the prefix or header they announce (§2.2.1).
    Truncated {
        /// Bytes needed to hold what was announced so far.
        needed: usize,
        /// Bytes present.
        available: usize,
    },
    /// A Fmt/Type encoding that the specification reserves (§2.3: Malformed).
    ReservedType {
        /// Fmt\[2:0\].
        fmt: u8,
        /// Type\[4:0\].
        type_bits: u8,
        /// Offset of the header byte.
        at: usize,
    },
    /// More prefixes than this implementation keeps, or more than 4
    /// End-End prefixes (§2.2.10.2: Malformed).
    TooManyPrefixes {
        /// Prefixes counted so far.
        count: usize,
        /// Offset of the prefix that went over.
        at: usize,
    },
    /// The bytes after the header do not match Length (and TD) (§2.2.2:
    /// the payload size must equal Length, else Malformed).
    PayloadLength {
        /// The kind of TLP.
        kind: Kind,
        /// Length field, decoded (0 means 1024).
        length_dw: u16,
        /// Bytes that Length (plus a digest if TD) calls for after the header.
        expected: usize,
        /// Bytes present after the header.
        actual: usize,
        /// Offset of the first byte after the header.
        at: usize,
    },
    /// TD is set but the TLP Digest is missing (§2.2.3: Malformed).
    MissingDigest {
        /// Where the digest should start.
        at: usize,
    },
    /// Payload larger than Max_Payload_Size (§2.2.2: Malformed, every receiver checks).
    PayloadExceedsMps {
        /// Payload bytes.
        bytes: usize,
        /// The configured Max_Payload_Size.
        max_payload: usize,
        /// Offset of byte 2 (Length).
        at: usize,
    },
    /// A message that must use TC0 does not (§2.2.8.1–2.2.8.5).
    MessageTrafficClass {
        /// Message code.
        code: u8,
        /// The TC found.
        tc: u8,
        /// Offset of byte 1 (TC).
        at: usize,
    },
    /// A message whose code requires one routing used another (§2.2.8).
    MessageRouting {
        /// Message code.
        code: u8,
        /// r\[2:0\] found.
        routing: u8,
        /// r\[2:0\] required.
        required: u8,
        /// Offset of byte 0.
        at: usize,
    },
    /// A message whose code fixes its data payload (Set_Slot_Power_Limit:
    /// MsgD with Length 1) broke that rule (§2.2.8.5).
    MessagePayload {
        /// Message code.
        code: u8,
        /// Offset of byte 0.
        at: usize,
    },
    /// A memory request whose Address and Length cross a 4 KiB boundary
    /// (§2.2.7: optional for completers, never checked by switches).
    Crosses4KiB {
        /// First byte address (DW aligned).
        address: u64,
        /// Bytes covered by Length.
        bytes: usize,
        /// Offset of the address field.
        at: usize,
    },
    /// A byte-enable rule of §2.2.5.
    ByteEnables {
        /// The rule.
        rule: ByteEnableRule,
        /// First DW BE.
        first_be: u8,
        /// Last DW BE.
        last_be: u8,
        /// Length in DW.
        length_dw: u16,
        /// Offset of the byte-enable byte.
        at: usize,
    },
    /// A configuration or I/O request with Length other than 1 (§2.2.7).
    LengthNotOne {
        /// The kind.
        kind: Kind,
        /// Length in DW.
        length_dw: u16,
        /// Offset of byte 2.
        at: usize,
    },
    /// A configuration or I/O request with TC or Attr\[1:0\] not zero (§2.2.7).
    TcAttrNotZero {
        /// The kind.
        kind: Kind,
        /// TC found.
        tc: u8,
        /// Attr found (bit 2 IDO, bit 1 RO, bit 0 NS).
        attr: u8,
        /// Offset of byte 1.
        at: usize,
    },
    /// An AtomicOp operand size the specification does not define (§2.2.7:
    /// FetchAdd/Swap 32 or 64 bit, CAS 32, 64 or 128 bit per operand).
    AtomicOperandSize {
        /// The kind.
        kind: Kind,
        /// Length in DW.
        length_dw: u16,
        /// Offset of byte 2.
        at: usize,
    },
    /// An AtomicOp address not naturally aligned to its operand size (§2.2.7).
    AtomicAlignment {
        /// The kind.
        kind: Kind,
        /// The address.
        address: u64,
        /// Operand size in bytes.
        operand_bytes: usize,
        /// Offset of the address field.
        at: usize,
    },
    /// A completion whose data goes past what its Byte Count and Lower Address
    /// leave to return (§2.2.9, §2.3.1.1).
    CompletionByteCount {
        /// Byte Count (0 decoded as 4096).
        byte_count: u16,
        /// Lower Address.
        lower_address: u8,
        /// Length in DW.
        length_dw: u16,
        /// Offset of byte 6 of the header (Byte Count).
        at: usize,
    },
    /// The TLP Digest does not match the ECRC computed over the TLP (§2.7.1).
    EcrcMismatch {
        /// Digest computed, as a little-endian value of the digest bytes.
        computed: u32,
        /// Digest found.
        found: u32,
        /// Offset of the digest.
        at: usize,
    },
}

impl Error {
    /// The byte offset where the rule was broken.
    pub fn offset(&self) -> usize {
        match *self {
            Error::Truncated { available, .. } => available,
            Error::ReservedType { at, .. }
            | Error::TooManyPrefixes { at, .. }
            | Error::PayloadLength { at, .. }
            | Error::MissingDigest { at }
            | Error::PayloadExceedsMps { at, .. }
            | Error::MessageTrafficClass { at, .. }
            | Error::MessageRouting { at, .. }
            | Error::MessagePayload { at, .. }
            | Error::Crosses4KiB { at, .. }
            | Error::ByteEnables { at, .. }
            | Error::LengthNotOne { at, .. }
            | Error::TcAttrNotZero { at, .. }
            | Error::AtomicOperandSize { at, .. }
            | Error::AtomicAlignment { at, .. }
            | Error::CompletionByteCount { at, .. }
            | Error::EcrcMismatch { at, .. } => at,
        }
    }

    /// A short stable name for the rule (used in counters and JSON).
    pub fn rule(&self) -> &'static str {
        match self {
            Error::Truncated { .. } => "truncated",
            Error::ReservedType { .. } => "reserved_type",
            Error::TooManyPrefixes { .. } => "too_many_prefixes",
            Error::PayloadLength { .. } => "payload_length",
            Error::MissingDigest { .. } => "missing_digest",
            Error::PayloadExceedsMps { .. } => "max_payload_size",
            Error::MessageTrafficClass { .. } => "message_tc",
            Error::MessageRouting { .. } => "message_routing",
            Error::MessagePayload { .. } => "message_payload",
            Error::Crosses4KiB { .. } => "crosses_4kib",
            Error::ByteEnables { .. } => "byte_enables",
            Error::LengthNotOne { .. } => "length_not_one",
            Error::TcAttrNotZero { .. } => "tc_attr_not_zero",
            Error::AtomicOperandSize { .. } => "atomic_operand_size",
            Error::AtomicAlignment { .. } => "atomic_alignment",
            Error::CompletionByteCount { .. } => "completion_byte_count",
            Error::EcrcMismatch { .. } => "ecrc",
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Error::Truncated { needed, available } => write!(
                f,
                "truncated (§2.2.1): {needed} bytes announced, {available} present"
            ),
            Error::ReservedType { fmt, type_bits, at } => write!(
                f,
                "reserved Fmt/Type (§2.3): Fmt={fmt:03b} Type={type_bits:05b} at byte {at}"
            ),
            Error::TooManyPrefixes { count, at } => {
                write!(f, "too many TLP prefixes (§2.2.10): {count} at byte {at}")
            }
            Error::PayloadLength { kind, length_dw, expected, actual, at } => write!(
                f,
                "payload length (§2.2.2): {kind} with Length={length_dw} DW needs {expected} bytes after the header, found {actual}, at byte {at}"
            ),
            Error::MissingDigest { at } => {
                write!(f, "TD set but TLP Digest missing (§2.2.3) at byte {at}")
            }
            Error::PayloadExceedsMps { bytes, max_payload, at } => write!(
                f,
                "payload exceeds Max_Payload_Size (§2.2.2): {bytes} > {max_payload} bytes, at byte {at}"
            ),
            Error::MessageTrafficClass { code, tc, at } => write!(
                f,
                "message code {code:#04x} must use TC0 (§2.2.8), found TC{tc} at byte {at}"
            ),
            Error::MessageRouting { code, routing, required, at } => write!(
                f,
                "message code {code:#04x} must be routed r={required:03b} (§2.2.8), found r={routing:03b} at byte {at}"
            ),
            Error::MessagePayload { code, at } => write!(
                f,
                "message code {code:#04x} must carry exactly one DW of data (§2.2.8.5) at byte {at}"
            ),
            Error::Crosses4KiB { address, bytes, at } => write!(
                f,
                "request crosses a 4 KiB boundary (§2.2.7): {bytes} bytes at {address:#x}, at byte {at}"
            ),
            Error::ByteEnables { rule, first_be, last_be, length_dw, at } => write!(
                f,
                "byte enables (§2.2.5): {}: first={first_be:04b} last={last_be:04b} Length={length_dw} at byte {at}",
                rule.text()
            ),
            Error::LengthNotOne { kind, length_dw, at } => write!(
                f,
                "{kind} must have Length 1 DW (§2.2.7), found {length_dw} at byte {at}"
            ),
            Error::TcAttrNotZero { kind, tc, attr, at } => write!(
                f,
                "{kind} must have TC=0 and Attr[1:0]=00b (§2.2.7), found TC={tc} Attr={attr:03b} at byte {at}"
            ),
            Error::AtomicOperandSize { kind, length_dw, at } => write!(
                f,
                "{kind} operand size not supported (§2.2.7): Length={length_dw} DW at byte {at}"
            ),
            Error::AtomicAlignment { kind, address, operand_bytes, at } => write!(
                f,
                "{kind} address {address:#x} not aligned to its {operand_bytes}-byte operand (§2.2.7) at byte {at}"
            ),
            Error::CompletionByteCount { byte_count, lower_address, length_dw, at } => write!(
                f,
                "completion Byte Count/Lower Address inconsistent with Length (§2.2.9): Byte Count={byte_count} Lower Address={lower_address:#x} Length={length_dw} DW at byte {at}"
            ),
            Error::EcrcMismatch { computed, found, at } => write!(
                f,
                "ECRC mismatch (§2.7.1): computed {computed:#010x}, digest {found:#010x} at byte {at}"
            ),
        }
    }
}

impl std::error::Error for Error {}

/// Why a repr could not be emitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmitError {
    /// The buffer is shorter than [`crate::Repr::buffer_len`].
    BufferTooSmall {
        /// Bytes needed.
        needed: usize,
        /// Bytes given.
        available: usize,
    },
    /// The payload is not Length DW long for a kind that carries data, or not
    /// empty for one that does not.
    PayloadLength {
        /// Bytes Length calls for.
        expected: usize,
        /// Bytes in the payload.
        actual: usize,
    },
    /// Length outside 1..=1024.
    Length(u16),
    /// An address above 4 GiB in a 3 DW header, or a 64-bit I/O address.
    AddressWidth(u64),
    /// An address that is not DW aligned.
    AddressAlignment(u64),
}

impl fmt::Display for EmitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            EmitError::BufferTooSmall { needed, available } => {
                write!(
                    f,
                    "buffer too small: {needed} bytes needed, {available} given"
                )
            }
            EmitError::PayloadLength { expected, actual } => {
                write!(f, "payload must be {expected} bytes, is {actual}")
            }
            EmitError::Length(n) => write!(f, "Length must be 1..=1024 DW, is {n}"),
            EmitError::AddressWidth(a) => {
                write!(f, "address {a:#x} does not fit the header format")
            }
            EmitError::AddressAlignment(a) => write!(f, "address {a:#x} is not DW aligned"),
        }
    }
}

impl std::error::Error for EmitError {}
