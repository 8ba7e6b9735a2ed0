//! Sample TLPs shared by the benchmarks.
#![forbid(unsafe_code)]

use tlp::{Bdf, Body, CplStatus, Kind, MemOp, MessageCode, MsgRouting, Repr, ALL_KINDS};

/// One valid TLP of `kind` (with a 64-bit address where `long`), as bytes.
pub fn sample(kind: Kind, long: bool) -> Vec<u8> {
    let data = [0xa5u8; 8];
    let payload: &[u8] = match kind {
        Kind::Cas => &data[..8],
        _ if kind.has_data() => &data[..4],
        _ => &[],
    };
    let routing = match kind {
        Kind::MsgD => MsgRouting::Local,
        _ => MsgRouting::ById,
    };
    let mut r = Repr::new(kind, routing, payload);
    r.requester = Bdf::new(1, 0, 0);
    r.tag = 0x42;
    r.body = match r.body {
        Body::Memory { op, .. } => {
            let address = if long { 0x12_3456_7000 } else { 0x8000_1000 };
            let first_be = 0xf;
            let last_be = if op == MemOp::Read && r.length_dw > 1 {
                0xf
            } else {
                0
            };
            Body::Memory {
                op,
                first_be,
                last_be,
                address,
                long,
                ph: 0,
            }
        }
        Body::Message { routing, .. } => {
            let code = if kind == Kind::MsgD {
                MessageCode::SetSlotPowerLimit
            } else {
                MessageCode::VendorDefined0
            };
            Body::Message {
                routing,
                code,
                fields: [0x02, 0, 0, 0, 0, 0, 0, 0],
            }
        }
        Body::Completion { locked, .. } => Body::Completion {
            locked,
            completer: Bdf::new(2, 0, 0),
            status: CplStatus::Sc,
            bcm: false,
            byte_count: 4,
            lower_address: 0,
        },
        other => other,
    };
    let mut buf = vec![0u8; r.buffer_len()];
    r.emit(&mut buf).expect("sample TLPs emit");
    buf
}

/// Every kind with a label, 3 DW and (where the kind has one) 4 DW forms.
pub fn all_samples() -> Vec<(String, Vec<u8>)> {
    let mut v = Vec::new();
    for kind in ALL_KINDS {
        v.push((
            format!(
                "{}{}",
                kind.name(),
                if kind.always_4dw() { "" } else { "_3dw" }
            ),
            sample(kind, false),
        ));
        if kind.has_long_form() {
            v.push((format!("{}_4dw", kind.name()), sample(kind, true)));
        }
    }
    v
}

#[cfg(test)]
mod tests {
    #[test]
    fn samples_are_valid_tlps() {
        for (name, bytes) in super::all_samples() {
            let r = tlp::parse(&bytes, &tlp::Validator::default());
            assert!(r.is_ok(), "{name}: {:?}", r.err());
        }
    }
}
