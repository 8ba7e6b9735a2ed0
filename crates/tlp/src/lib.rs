//! PCIe Transaction Layer Packets (PCI Express Base Specification 4.0/5.0,
//! chapter 2): the wire format the fabric carries.
//!
//! - [`Tlp`]: a zero-copy view over the bytes of one TLP, with setters over
//!   mutable buffers. After [`Tlp::new_checked`] no accessor panics.
//! - [`Repr`]: the same TLP as plain data, parsed from a view and emitted back.
//! - [`classify`]: routing, flow-control class and credits from the first
//!   header bytes, for the dataplane's fast path.
//! - [`may_pass`]: the transaction ordering table.
//! - [`Validator`]: the malformed-TLP rules in a *switch* and a *completer*
//!   profile; every rejection is an [`Error`] naming its rule and byte offset.
//! - [`ecrc`]: the end-to-end CRC.
//! - [`build`]: fast header builders for the common requests and completions.
//!
//! Nothing here allocates, nothing is `unsafe`, and no input makes it panic.
//!
//! ```
//! use tlp::{build, Bdf, FlowClass, Kind, Profile, Routing, Validator};
//!
//! // Build a 64-bit memory read, as a traffic generator would.
//! let mut buf = [0u8; 64];
//! let access = build::MemAccess::dwords(0x10_0000_0040, 2);
//! let n = build::memory_read(&mut buf, Bdf::new(1, 0, 0), 5, access).unwrap();
//!
//! // The dataplane's check and classification, without copying.
//! let class = tlp::inspect(&buf[..n], &Validator::new(Profile::Switch)).unwrap();
//! assert_eq!((class.kind, class.routing, class.flow), (Kind::MRd, Routing::Address, FlowClass::NonPosted));
//!
//! // A full parse with every malformed-TLP check.
//! let repr = tlp::parse(&buf[..n], &Validator::default()).unwrap();
//! assert_eq!(repr.address(), Some(0x10_0000_0040));
//! assert_eq!(repr.to_string(), "MRd64 len=2 req=01:00.0 tag=0x05 addr=0x0000001000000040 fbe=0xf lbe=0xf");
//!
//! // A request that crosses 4 KiB: a completer rejects it, naming the rule and the byte.
//! let n = build::memory_read(&mut buf, Bdf(0), 0, build::MemAccess::dwords(0x1ffc, 2)).unwrap();
//! let err = tlp::parse(&buf[..n], &Validator::default()).unwrap_err();
//! assert_eq!(err.rule(), "crosses_4kib");
//! assert_eq!(err.offset(), 8);
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod bdf;
pub mod build;
mod classify;
pub mod ecrc;
mod error;
mod kind;
mod ordering;
mod packet;
mod repr;
mod validate;

pub use bdf::{Bdf, BdfParseError};
pub use classify::{classify, data_credits, Class, CreditType, FlowClass, Routing};
pub use error::{ByteEnableRule, EmitError, Error};
pub use kind::{
    AtomicOp, Attr, CplStatus, Kind, MessageCode, MsgRouting, PrefixKind, ALL_KINDS, FMT_PREFIX,
};
pub use ordering::{may_pass, OrderInfo, Passing};
pub use packet::{Tlp, MAX_END_END_PREFIXES, MAX_PREFIXES};
pub use repr::{routing_name, Body, Digest, MemOp, Prefixes, Repr};
pub use validate::{Profile, Validator, MAX_PAYLOAD_SIZE_LIMIT};

/// Checks `bytes` structurally and against `validator`, then parses them.
///
/// This is the dataplane's parse: one pass, the header copied out once, no
/// allocation. It accepts and rejects exactly what [`Tlp::new_checked`]
/// followed by [`Validator::check`] and [`Repr::parse`] do.
#[inline(always)]
pub fn parse<'a>(bytes: &'a [u8], validator: &Validator) -> Result<Repr<'a>, Error> {
    let (hdr, prefixes) = match bytes.first() {
        Some(b) if b >> 5 == FMT_PREFIX => return parse_with_prefixes(bytes, validator),
        _ => (0, Prefixes::NONE),
    };
    let Some(&b0) = bytes.first() else {
        return Err(Error::Truncated {
            needed: 12,
            available: 0,
        });
    };
    let Some(kind) = Kind::from_byte0(b0) else {
        return Err(Error::ReservedType {
            fmt: b0 >> 5,
            type_bits: b0 & 0x1f,
            at: hdr,
        });
    };
    let mut h = [0u8; 16];
    let hlen = if b0 & 0x20 != 0 {
        let Some(src) = bytes.get(..16) else {
            return Err(Error::Truncated {
                needed: 16,
                available: bytes.len(),
            });
        };
        h.copy_from_slice(src);
        16
    } else {
        let Some(src) = bytes.get(..12) else {
            return Err(Error::Truncated {
                needed: 12,
                available: bytes.len(),
            });
        };
        h[..12].copy_from_slice(src);
        12
    };
    let data = kind.payload_bytes(h[2], h[3]);
    let td = h[2] & 0x80 != 0;
    let actual = bytes.len() - hlen;
    if actual != data + 4 * td as usize {
        return Err(structural_error(bytes));
    }
    validator.check_mps(data, 2)?;
    if validator.profile == Profile::Completer {
        validator.check_terminal(&Tlp::new_unchecked(bytes))?;
    }
    let payload = &bytes[hlen..hlen + data];
    let digest = if td {
        let d = &bytes[hlen + data..];
        Digest::Value([d[0], d[1], d[2], d[3]])
    } else {
        Digest::Absent
    };
    Ok(Repr::from_header(kind, &h, prefixes, payload, digest))
}

/// The dataplane's per-TLP check: the structural checks of
/// [`Tlp::new_checked`], the `validator`'s rules and [`classify`], fused into
/// one pass over the header that copies nothing. Accepts and rejects exactly
/// what `new_checked` followed by [`Validator::check`] does.
#[inline(always)]
pub fn inspect(bytes: &[u8], validator: &Validator) -> Result<Class, Error> {
    // The common case, no prefixes, from the first DW read once; the rest
    // (prefixes, reserved types, short buffers) takes the view's path,
    // which also names what is wrong.
    let plain = bytes.first_chunk::<4>().and_then(|dw0| {
        let class = classify::classify_plain(*dw0)?;
        Some((*dw0, class))
    });
    let Some((dw0, class)) = plain else {
        return inspect_slow(bytes, validator);
    };
    let hlen = 12 + ((dw0[0] & 0x20) >> 3) as usize;
    let data = if dw0[0] & 0x40 != 0 {
        4 * classify::length_dw(dw0) as usize
    } else {
        0
    };
    let digest = ((dw0[2] >> 7) as usize) * 4;
    if bytes.len() != hlen + data + digest {
        return Err(structural_error(bytes));
    }
    validator.check_mps(data, 2)?;
    if validator.profile == Profile::Completer {
        validator.check_terminal(&Tlp::new_unchecked(bytes))?;
    }
    Ok(class)
}

/// `inspect` for TLPs with prefixes, and for those `classify` rejects (so that
/// the view's checks name the rule).
#[cold]
fn inspect_slow(bytes: &[u8], validator: &Validator) -> Result<Class, Error> {
    let tlp = Tlp::new_checked(bytes)?;
    validator.check(&tlp)?;
    tlp.class()
}

/// The structural rule `bytes` break, named by the view's own checks.
#[cold]
fn structural_error(bytes: &[u8]) -> Error {
    match Tlp::new_checked(bytes) {
        Err(e) => e,
        // Unreachable: callers come here only when the lengths disagree.
        Ok(_) => Error::Truncated {
            needed: bytes.len() + 1,
            available: bytes.len(),
        },
    }
}

#[cold]
fn parse_with_prefixes<'a>(bytes: &'a [u8], validator: &Validator) -> Result<Repr<'a>, Error> {
    let tlp = Tlp::new_checked(bytes)?;
    validator.check(&tlp)?;
    let start = tlp.header_offset() + tlp.header_len();
    let payload = &bytes[start..start + tlp.payload().len()];
    Ok(Repr::parse_checked(
        &tlp,
        &bytes[..tlp.header_offset()],
        payload,
    ))
}

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod vectors;
