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
//!
//! Nothing here allocates, nothing is `unsafe`, and no input makes it panic.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod bdf;
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
pub fn parse<'a>(bytes: &'a [u8], validator: &Validator) -> Result<Repr<'a>, Error> {
    let tlp = Tlp::new_checked(bytes)?;
    validator.check(&tlp)?;
    let start = tlp.header_offset() + tlp.header_len();
    let payload = &bytes[start..start + tlp.payload().len()];
    Ok(Repr::parse_checked(&tlp, payload))
}

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod vectors;
