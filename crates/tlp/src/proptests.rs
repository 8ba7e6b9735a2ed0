//! Property tests: emit then parse returns the same repr for every kind, and
//! no input makes the parser, classifier or validator panic.

use crate::*;
use proptest::prelude::*;

/// A repr description that owns its payload.
#[derive(Debug, Clone)]
struct Owned {
    kind: Kind,
    repr_fields: (u8, u8, bool, bool, bool, u8, u16, u16, u16),
    body_seed: (u64, u8, u8, bool, u8, u16, [u8; 8], u8),
    prefixes: Vec<u8>,
    compute_digest: bool,
    payload: Vec<u8>,
}

fn owned() -> impl Strategy<Value = Owned> {
    let kind = proptest::sample::select(ALL_KINDS.to_vec());
    let length = prop_oneof![8 => 1u16..=16, 1 => 1u16..=1024];
    let fields = (
        0u8..8,
        0u8..8,
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        0u8..4,
        0u16..1024,
        any::<u16>(),
    );
    let body = (
        any::<u64>(),
        0u8..16,
        0u8..16,
        any::<bool>(),
        0u8..4,
        any::<u16>(),
        any::<[u8; 8]>(),
        any::<u8>(),
    );
    let local = proptest::collection::vec(0u32..(1 << 28), 0..=3);
    let end_end = proptest::collection::vec(0u32..(1 << 28), 0..=4);
    (
        kind,
        length,
        fields,
        body,
        local,
        end_end,
        any::<bool>(),
        any::<u8>(),
    )
        .prop_map(
            |(
                kind,
                length,
                (tc, attr, ln, th, ep, at, tag, requester),
                body,
                local,
                end_end,
                digest,
                fill,
            )| {
                let mut prefixes: Vec<u32> = local
                    .into_iter()
                    .map(|p| 0x8000_0000 | (p & 0x0fff_ffff))
                    .collect();
                prefixes.extend(end_end.into_iter().map(|p| 0x9000_0000 | (p & 0x0fff_ffff)));
                let prefixes: Vec<u8> = prefixes.into_iter().flat_map(u32::to_be_bytes).collect();
                let length = match kind {
                    Kind::IORd
                    | Kind::IOWr
                    | Kind::CfgRd0
                    | Kind::CfgWr0
                    | Kind::CfgRd1
                    | Kind::CfgWr1 => 1,
                    _ => length,
                };
                let payload = if kind.has_data() {
                    (0..length as usize * 4)
                        .map(|i| (i as u8).wrapping_mul(31) ^ fill)
                        .collect()
                } else {
                    Vec::new()
                };
                Owned {
                    kind,
                    repr_fields: (tc, attr, ln, th, ep, at, length, tag, requester),
                    body_seed: body,
                    prefixes,
                    compute_digest: digest,
                    payload,
                }
            },
        )
}

fn build(o: &Owned) -> Repr<'_> {
    let (tc, attr, ln, th, ep, at, length_dw, tag, requester) = o.repr_fields;
    let (addr, first_be, last_be, long, ph, word, fields, byte) = o.body_seed;
    let routing = MsgRouting::from_bits(byte);
    let mut r = Repr::new(o.kind, routing, &o.payload);
    r.tc = tc;
    r.attr = Attr(attr);
    r.ln = ln;
    r.th = th;
    r.ep = ep;
    r.at = at;
    r.length_dw = length_dw;
    r.tag = tag;
    r.requester = Bdf(requester);
    r.prefixes = Prefixes::new(&o.prefixes).unwrap();
    r.digest = if o.compute_digest {
        Digest::Compute
    } else {
        Digest::Absent
    };
    r.body = match r.body {
        Body::Memory { op, .. } => {
            let address = if long {
                addr & !0x3
            } else {
                addr & 0xffff_fffc
            };
            Body::Memory {
                op,
                first_be,
                last_be,
                address,
                long,
                ph,
            }
        }
        Body::Io { write, .. } => Body::Io {
            write,
            first_be,
            last_be: 0,
            address: (addr as u32) & !0x3,
        },
        Body::Config { write, type1, .. } => Body::Config {
            write,
            type1,
            first_be,
            last_be: 0,
            target: Bdf(word),
            register: word & 0xffc,
        },
        Body::Message { routing, .. } => Body::Message {
            routing,
            code: MessageCode::from_byte(byte),
            fields,
        },
        Body::Completion { locked, .. } => Body::Completion {
            locked,
            completer: Bdf(word),
            status: CplStatus::from_bits(byte),
            bcm: long,
            byte_count: (word % 4096) + 1,
            lower_address: byte & 0x7f,
        },
    };
    r
}

proptest! {
    #![proptest_config(ProptestConfig { cases: if cfg!(miri) { 8 } else { 2048 }, ..ProptestConfig::default() })]

    #[test]
    fn emit_then_parse_is_identity(o in owned()) {
        let repr = build(&o);
        let mut buf = vec![0u8; repr.buffer_len()];
        let n = repr.emit(&mut buf).unwrap();
        prop_assert_eq!(n, buf.len());
        let view = Tlp::new_checked(&buf[..]).unwrap();
        let parsed = Repr::parse(&view).unwrap();
        let mut expected = repr;
        if o.compute_digest {
            prop_assert!(view.ecrc_ok());
            expected.digest = parsed.digest;
        }
        prop_assert_eq!(parsed, expected);
        prop_assert_eq!(parsed.kind(), o.kind);
        let class = classify(&buf).unwrap();
        prop_assert_eq!(class.kind, o.kind);
        prop_assert_eq!(class.header_offset, o.prefixes.len());
        // A TLP that parses re-emits to the same bytes.
        let mut again = vec![0u8; parsed.buffer_len()];
        parsed.emit(&mut again).unwrap();
        prop_assert_eq!(again, buf);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..96)) {
        exercise(&bytes);
    }

    #[test]
    fn mutated_tlps_never_panic(o in owned(), flips in proptest::collection::vec((any::<u16>(), any::<u8>()), 1..6), cut in any::<u16>()) {
        let repr = build(&o);
        let mut buf = vec![0u8; repr.buffer_len()];
        repr.emit(&mut buf).unwrap();
        for (at, x) in flips {
            let i = at as usize % buf.len();
            buf[i] ^= x;
        }
        let keep = buf.len() - (cut as usize % 8).min(buf.len());
        exercise(&buf[..keep]);
        exercise(&buf);
    }
}

/// The one-pass `parse` and the view path (`new_checked`, `check`,
/// `Repr::parse`) accept, reject and decode alike.
fn same_as_view_path(bytes: &[u8], v: &Validator) {
    let fast = parse(bytes, v);
    let slow = Tlp::new_checked(bytes).and_then(|t| {
        v.check(&t)?;
        let r = Repr::parse(&t)?;
        let mut out = vec![0u8; r.buffer_len()];
        r.emit(&mut out).unwrap();
        Ok(out)
    });
    let inspected = inspect(bytes, v);
    let viewed = Tlp::new_checked(bytes).and_then(|t| {
        v.check(&t)?;
        classify(bytes)
    });
    assert_eq!(inspected, viewed);
    match (fast, slow) {
        (Ok(f), Ok(s)) => {
            let mut out = vec![0u8; f.buffer_len()];
            f.emit(&mut out).unwrap();
            assert_eq!(out, s);
        }
        (Err(f), Err(s)) => assert_eq!(f, s),
        (f, s) => panic!("one-pass parse {f:?} but view path {s:?}"),
    }
}

/// Everything a receiver might do with untrusted bytes.
fn exercise(bytes: &[u8]) {
    let _ = classify(bytes);
    same_as_view_path(bytes, &Validator::new(Profile::Switch));
    same_as_view_path(
        bytes,
        &Validator {
            profile: Profile::Completer,
            max_payload: 128,
        },
    );
    for profile in [Profile::Switch, Profile::Completer] {
        let v = Validator {
            profile,
            max_payload: 256,
        };
        match parse(bytes, &v) {
            Ok(repr) => {
                let _ = repr.to_string();
                let mut out = vec![0u8; repr.buffer_len()];
                assert!(repr.emit(&mut out).is_ok());
            }
            Err(e) => {
                let _ = e.to_string();
                assert!(e.offset() <= bytes.len() + 16);
            }
        }
    }
    if let Ok(t) = Tlp::new_checked(bytes) {
        let _ = (
            t.tag(),
            t.address(),
            t.requester_id(),
            t.payload(),
            t.digest(),
            t.compute_ecrc(),
        );
        let _ = (
            t.register(),
            t.byte_count(),
            t.lower_address(),
            t.message_fields(),
            t.steering_tag(),
        );
        let info = OrderInfo::of_tlp(&t);
        let _ = may_pass(&info, &info);
    }
}
