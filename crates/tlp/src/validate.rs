//! Malformed-TLP rules, grouped into validation profiles.
//!
//! The specification makes some checks mandatory for every receiver, leaves
//! others optional, and asks intermediate receivers not to make some at all
//! (a switch should not reject a request for crossing 4 KiB: only its completer
//! knows what the address means). Two profiles model that:
//!
//! | rule (error variant)                  | §         | switch | completer |
//! |---------------------------------------|-----------|:------:|:---------:|
//! | `Truncated`                           | 2.2.1     | yes    | yes       |
//! | `ReservedType`                        | 2.3       | yes    | yes       |
//! | `TooManyPrefixes` (over 4 End-End)    | 2.2.10.2  | yes    | yes       |
//! | `PayloadLength`                       | 2.2.2     | yes    | yes       |
//! | `MissingDigest`                       | 2.2.3     | yes    | yes       |
//! | `PayloadExceedsMps`                   | 2.2.2     | yes    | yes       |
//! | `MessageTrafficClass` (TC0 messages)  | 2.2.8     |        | yes       |
//! | `MessageRouting`                      | 2.2.8     |        | yes       |
//! | `MessagePayload` (Set_Slot_Power_Limit)| 2.2.8.5  |        | yes       |
//! | `LengthNotOne` (config, I/O)          | 2.2.7     |        | yes       |
//! | `TcAttrNotZero` (config, I/O)         | 2.2.7     |        | yes       |
//! | `ByteEnables`                         | 2.2.5     |        | yes       |
//! | `Crosses4KiB`                         | 2.2.7     | never  | yes       |
//! | `AtomicOperandSize`                   | 2.2.7     |        | yes       |
//! | `AtomicAlignment`                     | 2.2.7     |        | yes       |
//! | `CompletionByteCount`                 | 2.2.9     |        | yes       |
//! | `EcrcMismatch`                        | 2.7.1     |        | yes       |
//!
//! The first six decide how big the TLP is and whether it can be forwarded at
//! all; every receiver makes them. The rest are checks of the receiver that
//! terminates the TLP (the completer of a request, the requester of a
//! completion, the target of a message); a switch forwards what it does not
//! terminate. ECRC is end to end: the ultimate receiver checks it, a switch
//! passes it on untouched.

use crate::error::{ByteEnableRule, Error};
use crate::kind::{Kind, MessageCode};
use crate::packet::Tlp;

/// Which receiver's checks to make.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Profile {
    /// What a switch must check before forwarding.
    Switch,
    /// Every check: the receiver that terminates the TLP.
    #[default]
    Completer,
}

/// The largest Max_Payload_Size the specification defines.
pub const MAX_PAYLOAD_SIZE_LIMIT: usize = 4096;

/// A validation profile and the link's Max_Payload_Size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validator {
    /// Which checks.
    pub profile: Profile,
    /// Max_Payload_Size in bytes (128..=4096).
    pub max_payload: usize,
}

impl Default for Validator {
    fn default() -> Self {
        Validator {
            profile: Profile::Completer,
            max_payload: MAX_PAYLOAD_SIZE_LIMIT,
        }
    }
}

/// First DW BE values contiguous up to byte 3.
fn first_be_contiguous(be: u8) -> bool {
    matches!(be, 0b1111 | 0b1110 | 0b1100 | 0b1000)
}

/// Last DW BE values contiguous from byte 0.
fn last_be_contiguous(be: u8) -> bool {
    matches!(be, 0b0001 | 0b0011 | 0b0111 | 0b1111)
}

impl Validator {
    /// A validator for `profile` with the largest Max_Payload_Size.
    pub fn new(profile: Profile) -> Validator {
        Validator {
            profile,
            ..Validator::default()
        }
    }

    /// Checks a view that passed [`Tlp::check_len`] (as `new_checked` does)
    /// against the profile's rules; the first broken rule is returned.
    #[inline]
    pub fn check<T: AsRef<[u8]>>(&self, tlp: &Tlp<T>) -> Result<(), Error> {
        self.check_mps(tlp.payload_len(), tlp.header_offset() + 2)?;
        match self.profile {
            Profile::Switch => Ok(()),
            Profile::Completer => self.check_terminal(tlp),
        }
    }

    /// The Max_Payload_Size rule for a payload of `bytes`, with `at` the
    /// offset of the Length field.
    #[inline(always)]
    pub(crate) fn check_mps(&self, bytes: usize, at: usize) -> Result<(), Error> {
        if bytes > self.max_payload {
            return Err(Error::PayloadExceedsMps {
                bytes,
                max_payload: self.max_payload,
                at,
            });
        }
        Ok(())
    }

    /// The checks of the receiver that terminates the TLP.
    pub(crate) fn check_terminal<T: AsRef<[u8]>>(&self, tlp: &Tlp<T>) -> Result<(), Error> {
        let Some(kind) = tlp.kind() else {
            let b0 = tlp
                .as_bytes()
                .get(tlp.header_offset())
                .copied()
                .unwrap_or(0);
            return Err(Error::ReservedType {
                fmt: b0 >> 5,
                type_bits: b0 & 0x1f,
                at: tlp.header_offset(),
            });
        };
        let hdr = tlp.header_offset();
        let length_dw = tlp.length_dw();
        match kind {
            Kind::Msg | Kind::MsgD => check_message(tlp, kind, hdr)?,
            Kind::CfgRd0 | Kind::CfgWr0 | Kind::CfgRd1 | Kind::CfgWr1 | Kind::IORd | Kind::IOWr => {
                if length_dw != 1 {
                    return Err(Error::LengthNotOne {
                        kind,
                        length_dw,
                        at: hdr + 2,
                    });
                }
                let attr = tlp.attr().0;
                if tlp.tc() != 0 || attr & 0b011 != 0 {
                    return Err(Error::TcAttrNotZero {
                        kind,
                        tc: tlp.tc(),
                        attr,
                        at: hdr + 1,
                    });
                }
                check_byte_enables(tlp, hdr)?;
            }
            Kind::MRd | Kind::MRdLk | Kind::MWr => {
                // With TH set, a read's byte-enable byte carries the Steering Tag.
                if !(tlp.th() && kind != Kind::MWr) {
                    check_byte_enables(tlp, hdr)?;
                }
                let address = tlp.address();
                let bytes = length_dw as usize * 4;
                if (address & 0xfff) as usize + bytes > 0x1000 {
                    return Err(Error::Crosses4KiB {
                        address,
                        bytes,
                        at: hdr + 8,
                    });
                }
            }
            Kind::FetchAdd | Kind::Swap | Kind::Cas => {
                let operand_bytes = match (kind, length_dw) {
                    (Kind::Cas, 2 | 4 | 8) => length_dw as usize * 2,
                    (Kind::FetchAdd | Kind::Swap, 1 | 2) => length_dw as usize * 4,
                    _ => {
                        return Err(Error::AtomicOperandSize {
                            kind,
                            length_dw,
                            at: hdr + 2,
                        })
                    }
                };
                let address = tlp.address();
                if !address.is_multiple_of(operand_bytes as u64) {
                    return Err(Error::AtomicAlignment {
                        kind,
                        address,
                        operand_bytes,
                        at: hdr + 8,
                    });
                }
            }
            Kind::CplD | Kind::CplDLk => {
                let byte_count = tlp.byte_count();
                let lower_address = tlp.lower_address();
                let remaining_dw = ((lower_address & 0x3) as u32 + byte_count as u32).div_ceil(4);
                if length_dw as u32 > remaining_dw {
                    return Err(Error::CompletionByteCount {
                        byte_count,
                        lower_address,
                        length_dw,
                        at: hdr + 6,
                    });
                }
            }
            Kind::Cpl | Kind::CplLk => {}
        }
        if let Some(found) = tlp.digest() {
            let computed = tlp.compute_ecrc();
            if computed != found {
                return Err(Error::EcrcMismatch {
                    computed: u32::from_le_bytes(computed),
                    found: u32::from_le_bytes(found),
                    at: tlp.as_bytes().len() - 4,
                });
            }
        }
        Ok(())
    }
}

fn check_byte_enables<T: AsRef<[u8]>>(tlp: &Tlp<T>, hdr: usize) -> Result<(), Error> {
    let (first_be, last_be, length_dw) = (tlp.first_be(), tlp.last_be(), tlp.length_dw());
    let rule = if length_dw == 1 {
        (last_be != 0).then_some(ByteEnableRule::LastBeWithOneDw)
    } else if first_be == 0 {
        Some(ByteEnableRule::FirstBeZero)
    } else if last_be == 0 {
        Some(ByteEnableRule::LastBeZero)
    } else {
        // Non-contiguous patterns are allowed only for 1 DW, or 2 DW QW aligned.
        let qw_aligned_pair = length_dw == 2 && tlp.address() & 0x4 == 0;
        let contiguous = first_be_contiguous(first_be) && last_be_contiguous(last_be);
        (!qw_aligned_pair && !contiguous).then_some(ByteEnableRule::NotContiguous)
    };
    match rule {
        Some(rule) => Err(Error::ByteEnables {
            rule,
            first_be,
            last_be,
            length_dw,
            at: hdr + 7,
        }),
        None => Ok(()),
    }
}

fn check_message<T: AsRef<[u8]>>(tlp: &Tlp<T>, kind: Kind, hdr: usize) -> Result<(), Error> {
    let code = tlp.message_code();
    if code.requires_tc0() && tlp.tc() != 0 {
        return Err(Error::MessageTrafficClass {
            code: code.byte(),
            tc: tlp.tc(),
            at: hdr + 1,
        });
    }
    if let Some(required) = code.required_routing() {
        let routing = tlp.message_routing();
        if routing != required {
            return Err(Error::MessageRouting {
                code: code.byte(),
                routing: routing.bits(),
                required: required.bits(),
                at: hdr,
            });
        }
    }
    if code == MessageCode::SetSlotPowerLimit && (kind != Kind::MsgD || tlp.length_dw() != 1) {
        return Err(Error::MessagePayload {
            code: code.byte(),
            at: hdr,
        });
    }
    Ok(())
}
