//! Byte vectors for every kind, laid out by hand from the header figures of
//! §2.2 (Figures 2-13 to 2-29), checked field by field; and one test per
//! malformed-TLP rule.

use crate::*;

fn parse_ok(bytes: &[u8]) -> Repr<'_> {
    match parse(bytes, &Validator::default()) {
        Ok(r) => r,
        Err(e) => panic!("{e}"),
    }
}

fn reject(bytes: &[u8]) -> Error {
    parse(bytes, &Validator::default()).expect_err("must be rejected")
}

/// Re-emits a parsed repr and checks the bytes come back identical.
fn round_trip(bytes: &[u8]) {
    let repr = parse_ok(bytes);
    let mut out = [0u8; 4200];
    let n = repr.emit(&mut out).unwrap();
    assert_eq!(&out[..n], bytes, "{repr}");
}

#[test]
fn mrd_3dw() {
    // MRd 3DW: Fmt 000 Type 00000, TC 0, Length 4, req 01:02.3, tag 0x2a,
    // last BE 1111, first BE 1110, address 0xfe00_1004.
    let b = [
        0x00, 0x00, 0x00, 0x04, 0x01, 0x13, 0x2a, 0xfe, 0xfe, 0x00, 0x10, 0x04,
    ];
    let r = parse_ok(&b);
    assert_eq!(r.kind(), Kind::MRd);
    assert_eq!(r.length_dw, 4);
    assert_eq!(r.requester, Bdf::new(1, 2, 3));
    assert_eq!(r.tag, 0x2a);
    assert_eq!(
        r.body,
        Body::Memory {
            op: MemOp::Read,
            first_be: 0xe,
            last_be: 0xf,
            address: 0xfe00_1004,
            long: false,
            ph: 0
        }
    );
    assert!(r.payload.is_empty());
    assert_eq!(classify(&b).unwrap().flow, FlowClass::NonPosted);
    round_trip(&b);
}

#[test]
fn mrd_4dw_with_th_and_10bit_tag() {
    // MRd 4DW: T9=1 T8=0, TH=1, Length 1, tag 0x2ff, BE byte = Steering Tag 0x5a,
    // address 0x0000_0001_0000_0000 with PH 0b10.
    let b = [
        0x20, 0x81, 0x00, 0x01, 0x00, 0x08, 0xff, 0x5a, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00,
        0x02,
    ];
    let t = Tlp::new_checked(&b[..]).unwrap();
    assert!(t.th());
    assert_eq!(t.tag(), 0x2ff);
    assert_eq!(t.steering_tag(), Some(0x5a));
    assert_eq!(t.ph(), 2);
    let r = parse_ok(&b);
    assert_eq!(r.kind(), Kind::MRd);
    assert_eq!(r.requester, Bdf::new(0, 1, 0));
    assert_eq!(r.address(), Some(0x1_0000_0000));
    round_trip(&b);
}

/// Every AtomicOp header format (FetchAdd, Swap and CAS, each with a 32-bit
/// and a 64-bit address) with TH set: the Steering Tag is the byte-enables
/// byte, not the Tag byte, which the completion needs (§2.2.7.1).
#[test]
fn atomics_with_th_carry_the_steering_tag_in_the_byte_enables_byte() {
    // (Fmt/Type byte, Length in DW, operand bytes).
    let formats = [
        (0x4c, 1, 4),  // FetchAdd, 3 DW header, 32-bit operand
        (0x6c, 2, 8),  // FetchAdd, 4 DW header, 64-bit operand
        (0x4d, 1, 4),  // Swap, 3 DW
        (0x6d, 1, 4),  // Swap, 4 DW
        (0x4e, 2, 8),  // CAS, 3 DW, two 32-bit operands
        (0x6e, 4, 16), // CAS, 4 DW, two 64-bit operands
    ];
    for (fmt_type, length, operand) in formats {
        // TH set, requester 01:00.0, Tag 0x33, Steering Tag 0xa7; PH 0b01 in
        // the address's low bits, the address aligned to the operand.
        let mut b = vec![fmt_type, 0x01, 0x00, length, 0x01, 0x00, 0x33, 0xa7];
        if fmt_type & 0x20 != 0 {
            b.extend([0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x10, 0x01]);
        } else {
            b.extend([0xfe, 0x00, 0x10, 0x01]);
        }
        b.extend((0..operand).map(|i| i as u8));
        let t = Tlp::new_checked(&b[..]).unwrap();
        assert!(t.th(), "{fmt_type:#x}");
        assert_eq!(t.steering_tag(), Some(0xa7), "{fmt_type:#x}");
        assert_eq!(t.tag(), 0x33, "{fmt_type:#x}");
        assert_eq!(t.ph(), 1, "{fmt_type:#x}");
        let r = parse_ok(&b);
        assert!(r.kind().is_atomic(), "{fmt_type:#x}");
        round_trip(&b);
    }
}

#[test]
fn mrdlk() {
    let b = [
        0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x07, 0x0f, 0x00, 0x00, 0x20, 0x00,
    ];
    let r = parse_ok(&b);
    assert_eq!(r.kind(), Kind::MRdLk);
    assert_eq!(r.address(), Some(0x2000));
    round_trip(&b);
}

#[test]
fn mwr_3dw_attributes() {
    // MWr 3DW: TC 7, IDO (byte 1 bit 2), RO+NS (byte 2 bits 5:4), EP, AT=01, LN.
    let b = [
        0x40, 0x76, 0x74, 0x01, 0xab, 0xcd, 0x00, 0x0f, 0x10, 0x00, 0x00, 0x08, 0xde, 0xad, 0xbe,
        0xef,
    ];
    let r = parse_ok(&b);
    assert_eq!(r.kind(), Kind::MWr);
    assert_eq!(r.tc, 7);
    assert_eq!(r.attr, Attr(0b111));
    assert!(r.attr.id_based_ordering() && r.attr.relaxed_ordering() && r.attr.no_snoop());
    assert!(r.ln && r.ep && !r.th);
    assert_eq!(r.at, 1);
    assert_eq!(r.requester, Bdf(0xabcd));
    assert_eq!(r.address(), Some(0x1000_0008));
    assert_eq!(r.payload, &[0xde, 0xad, 0xbe, 0xef]);
    round_trip(&b);
}

#[test]
fn mwr_4dw() {
    let mut b = vec![
        0x60, 0x00, 0x00, 0x02, 0x01, 0x00, 0x05, 0xff, 0, 0, 0, 0x10, 0, 0, 0, 0x40,
    ];
    b.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]);
    let r = parse_ok(&b);
    assert_eq!(r.to_string(), "MWr64 len=2 req=01:00.0 tag=0x05 addr=0x0000001000000040 fbe=0xf lbe=0xf data=0102030405060708");
    round_trip(&b);
}

#[test]
fn io_read_and_write() {
    let rd = [
        0x02, 0x00, 0x00, 0x01, 0x00, 0x10, 0x01, 0x03, 0x00, 0x00, 0x0c, 0xf8,
    ];
    let r = parse_ok(&rd);
    assert_eq!(r.kind(), Kind::IORd);
    assert_eq!(
        r.body,
        Body::Io {
            write: false,
            first_be: 0x3,
            last_be: 0,
            address: 0xcf8
        }
    );
    round_trip(&rd);
    let wr = [
        0x42, 0x00, 0x00, 0x01, 0x00, 0x10, 0x02, 0x0f, 0x00, 0x00, 0x0c, 0xfc, 1, 2, 3, 4,
    ];
    assert_eq!(parse_ok(&wr).kind(), Kind::IOWr);
    round_trip(&wr);
}

#[test]
fn config_requests() {
    // CfgRd0 to 03:04.5, register 0x104 (Ext Reg 1, Reg 0x01 → byte 0x04).
    let rd0 = [
        0x04, 0x00, 0x00, 0x01, 0x00, 0x00, 0x09, 0x0f, 0x03, 0x25, 0x01, 0x04,
    ];
    let r = parse_ok(&rd0);
    assert_eq!(r.kind(), Kind::CfgRd0);
    assert_eq!(
        r.body,
        Body::Config {
            write: false,
            type1: false,
            first_be: 0xf,
            last_be: 0,
            target: Bdf::new(3, 4, 5),
            register: 0x104
        }
    );
    let t = Tlp::new_checked(&rd0[..]).unwrap();
    assert_eq!(
        (
            t.target_id().bus(),
            t.target_id().device(),
            t.target_id().function()
        ),
        (3, 4, 5)
    );
    round_trip(&rd0);
    for (b0, kind) in [(0x44u8, Kind::CfgWr0), (0x45, Kind::CfgWr1)] {
        let wr = [
            b0, 0, 0, 1, 0, 0, 1, 0x0c, 0x05, 0x00, 0x00, 0x10, 0xaa, 0xbb, 0xcc, 0xdd,
        ];
        let r = parse_ok(&wr);
        assert_eq!(r.kind(), kind);
        assert_eq!(r.payload, &[0xaa, 0xbb, 0xcc, 0xdd]);
        round_trip(&wr);
    }
    let rd1 = [0x05, 0, 0, 1, 0, 0, 1, 0x0f, 0x05, 0x00, 0x00, 0xfc];
    assert_eq!(parse_ok(&rd1).kind(), Kind::CfgRd1);
    round_trip(&rd1);
}

#[test]
fn messages_of_every_routing() {
    // (byte 0, code, routing)
    let cases = [
        (0x30u8, 0x18u8, Routing::ToRoot), // PM_PME
        (0x31, 0x7f, Routing::Address),    // VDM type 1 by address
        (0x32, 0x7e, Routing::Id),         // VDM type 0 by ID
        (0x33, 0x00, Routing::Broadcast),  // Unlock
        (0x34, 0x20, Routing::Local),      // Assert_INTA
        (0x35, 0x1b, Routing::Gather),     // PME_TO_Ack
    ];
    for (b0, code, routing) in cases {
        let b = [
            b0, 0, 0, 0, 0x02, 0x00, 0x00, code, 0x04, 0x00, 0x1a, 0xf4, 0, 0, 0x10, 0,
        ];
        let t = Tlp::new_checked(&b[..]).unwrap();
        assert_eq!(t.message_code().byte(), code);
        let r = parse_ok(&b);
        assert_eq!(r.kind(), Kind::Msg);
        assert_eq!(classify(&b).unwrap().routing, routing);
        assert_eq!(classify(&b).unwrap().flow, FlowClass::Posted);
        round_trip(&b);
    }
    let by_id = [
        0x32, 0, 0, 0, 0x02, 0x00, 0x00, 0x7e, 0x04, 0x08, 0x1a, 0xf4, 0, 0, 0, 0,
    ];
    assert_eq!(
        Tlp::new_checked(&by_id[..]).unwrap().target_id(),
        Bdf::new(4, 1, 0)
    );
    let by_addr = [
        0x31, 0, 0, 0, 0x02, 0x00, 0x00, 0x7f, 0, 0, 0, 0x01, 0x80, 0, 0, 0,
    ];
    assert_eq!(parse_ok(&by_addr).address(), Some(0x1_8000_0000));
}

#[test]
fn message_codes() {
    for (code, expect) in [
        (0x20, MessageCode::AssertInt(0)),
        (0x27, MessageCode::DeassertInt(3)),
        (0x30, MessageCode::ErrCor),
        (0x31, MessageCode::ErrNonFatal),
        (0x33, MessageCode::ErrFatal),
        (0x14, MessageCode::PmActiveStateNak),
        (0x19, MessageCode::PmeTurnOff),
    ] {
        let routing = expect.required_routing().unwrap().bits();
        let b = [
            0x30 | routing,
            0,
            0,
            0,
            0,
            0,
            0,
            code,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
        ];
        assert_eq!(Tlp::new_checked(&b[..]).unwrap().message_code(), expect);
        parse_ok(&b);
    }
}

#[test]
fn msgd_set_slot_power_limit() {
    let b = [
        0x74, 0, 0, 1, 0, 0, 0, 0x50, 0, 0, 0, 0, 0, 0, 0, 0, 0x19, 0x01, 0, 0,
    ];
    let r = parse_ok(&b);
    assert_eq!(r.kind(), Kind::MsgD);
    assert_eq!(
        r.body,
        Body::Message {
            routing: MsgRouting::Local,
            code: MessageCode::SetSlotPowerLimit,
            fields: [0; 8]
        }
    );
    assert_eq!(r.payload, &[0x19, 0x01, 0, 0]);
    round_trip(&b);
}

#[test]
fn completions() {
    // Cpl UR from 01:00.0 to 00:00.0 tag 0x11, Byte Count 4.
    let cpl = [
        0x0a, 0, 0, 0, 0x01, 0x00, 0x20, 0x04, 0x00, 0x00, 0x11, 0x00,
    ];
    let r = parse_ok(&cpl);
    assert_eq!(r.kind(), Kind::Cpl);
    assert_eq!(
        r.body,
        Body::Completion {
            locked: false,
            completer: Bdf(0x0100),
            status: CplStatus::Ur,
            bcm: false,
            byte_count: 4,
            lower_address: 0
        }
    );
    assert_eq!(r.requester, Bdf(0));
    assert_eq!(r.tag, 0x11);
    round_trip(&cpl);

    // CplD with T9/T8, CRS-free SC, BCM, Byte Count 0 (= 4096), Lower Address 0x40, 2 DW.
    let mut cpld = vec![
        0x4a, 0x88, 0, 2, 0x01, 0x00, 0x10, 0x00, 0x00, 0x08, 0x33, 0x40,
    ];
    cpld.extend_from_slice(&[9; 8]);
    let t = Tlp::new_checked(&cpld[..]).unwrap();
    assert_eq!(t.tag(), 0x333);
    assert_eq!(t.byte_count(), 4096);
    assert!(t.bcm());
    assert_eq!(t.lower_address(), 0x40);
    assert_eq!(t.requester_id(), Bdf::new(0, 1, 0));
    assert_eq!(t.completer_id(), Bdf::new(1, 0, 0));
    round_trip(&cpld);

    let crs = [0x0a, 0, 0, 0, 0x01, 0x00, 0x40, 0x04, 0, 0, 0, 0];
    assert_eq!(Tlp::new_checked(&crs[..]).unwrap().status(), CplStatus::Crs);
    let ca = [0x0b, 0, 0, 0, 0x01, 0x00, 0x80, 0x04, 0, 0, 0, 0];
    let r = parse_ok(&ca);
    assert_eq!(r.kind(), Kind::CplLk);
    assert!(matches!(
        r.body,
        Body::Completion {
            status: CplStatus::Ca,
            locked: true,
            ..
        }
    ));
    let dlk = [
        0x4b, 0, 0, 1, 0x01, 0x00, 0x00, 0x04, 0, 0, 0, 0, 1, 2, 3, 4,
    ];
    assert_eq!(parse_ok(&dlk).kind(), Kind::CplDLk);
    round_trip(&dlk);
}

#[test]
fn atomics_3dw_and_4dw() {
    let fetch_add = [
        0x4c, 0, 0, 1, 0x01, 0, 0x03, 0x0f, 0x00, 0x00, 0x20, 0x00, 0, 0, 0, 1,
    ];
    assert_eq!(parse_ok(&fetch_add).kind(), Kind::FetchAdd);
    round_trip(&fetch_add);
    let mut swap = vec![
        0x6d, 0, 0, 2, 0x01, 0, 0x04, 0xff, 0, 0, 0, 1, 0, 0, 0x20, 0x08,
    ];
    swap.extend_from_slice(&[0xa5; 8]);
    let r = parse_ok(&swap);
    assert_eq!(r.kind(), Kind::Swap);
    assert_eq!(r.address(), Some(0x1_0000_2008));
    round_trip(&swap);
    let mut cas = vec![0x4e, 0, 0, 8, 0x01, 0, 0x05, 0xff, 0, 0, 0x20, 0x10];
    cas.extend_from_slice(&[0x5a; 32]);
    assert_eq!(parse_ok(&cas).kind(), Kind::Cas);
    round_trip(&cas);
}

#[test]
fn prefixes_are_kept_and_emitted() {
    let mut b = vec![0x80, 0x00, 0x00, 0x07, 0x91, 0x00, 0x12, 0x34];
    b.extend_from_slice(&[
        0x00, 0x00, 0x00, 0x01, 0x01, 0x00, 0x01, 0x0f, 0x00, 0x00, 0x10, 0x00,
    ]);
    let r = parse_ok(&b);
    assert_eq!(
        r.prefixes.iter().collect::<Vec<_>>(),
        [0x8000_0007, 0x9100_1234]
    );
    assert_eq!(r.prefixes.as_bytes(), &b[..8]);
    assert!(matches!(
        Prefixes::new(&[0x40, 0, 0, 0]),
        Err(Error::ReservedType { .. })
    ));
    assert!(matches!(
        Prefixes::new(&[0x80, 0, 0]),
        Err(Error::Truncated { .. })
    ));
    assert!(matches!(
        Prefixes::new(&[0x90; 20]),
        Err(Error::TooManyPrefixes { count: 5, .. })
    ));
    assert_eq!(PrefixKind::from_byte0(0x80), Some(PrefixKind::Local(0)));
    round_trip(&b);
}

#[test]
fn ecrc_emit_and_check() {
    let mut repr = Repr::new(Kind::MWr, MsgRouting::ToRoot, &[1, 2, 3, 4]);
    repr.body = Body::Memory {
        op: MemOp::Write,
        first_be: 0xf,
        last_be: 0,
        address: 0x1000,
        long: false,
        ph: 0,
    };
    repr.digest = Digest::Compute;
    let mut buf = [0u8; 64];
    let n = repr.emit(&mut buf).unwrap();
    assert_eq!(n, 20);
    assert_eq!(buf[2] & 0x80, 0x80, "TD set");
    let parsed = parse_ok(&buf[..n]);
    assert!(matches!(parsed.digest, Digest::Value(_)));
    round_trip(&buf[..n]);
}

// --- one test per malformed-TLP rule -------------------------------------

#[test]
fn rule_truncated() {
    let e = reject(&[0x00, 0x00, 0x00, 0x01, 0x01]);
    assert_eq!(
        e,
        Error::Truncated {
            needed: 12,
            available: 5
        }
    );
    assert_eq!(e.offset(), 5);
}

#[test]
fn rule_reserved_type() {
    for b0 in [0x1bu8, 0x22, 0x10, 0xa0, 0xe0, 0x0f] {
        let e = reject(&[b0, 0, 0, 1, 0, 0, 0, 0x0f, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert!(
            matches!(e, Error::ReservedType { at: 0, .. }),
            "{b0:#x}: {e}"
        );
    }
}

#[test]
fn rule_too_many_end_end_prefixes() {
    let mut b = Vec::new();
    for _ in 0..5 {
        b.extend_from_slice(&[0x90, 0, 0, 0]);
    }
    b.extend_from_slice(&[0x00, 0, 0, 1, 0, 0, 0, 0x0f, 0, 0, 0, 0]);
    assert_eq!(reject(&b), Error::TooManyPrefixes { count: 5, at: 16 });
}

#[test]
fn rule_payload_length() {
    // MWr Length 2 with one DW of data, and with three.
    let short = [0x40, 0, 0, 2, 0, 0, 0, 0xff, 0, 0, 0, 0, 1, 2, 3, 4];
    assert!(matches!(
        reject(&short),
        Error::PayloadLength {
            expected: 8,
            actual: 4,
            at: 12,
            ..
        }
    ));
    let long = [
        0x40, 0, 0, 1, 0, 0, 0, 0x0f, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8,
    ];
    assert!(matches!(
        reject(&long),
        Error::PayloadLength {
            expected: 4,
            actual: 8,
            ..
        }
    ));
    // A read carries no data.
    let rd = [0x00, 0, 0, 1, 0, 0, 0, 0x0f, 0, 0, 0, 0, 1, 2, 3, 4];
    assert!(matches!(
        reject(&rd),
        Error::PayloadLength {
            expected: 0,
            actual: 4,
            ..
        }
    ));
}

#[test]
fn rule_missing_digest() {
    let b = [0x40, 0, 0x80, 1, 0, 0, 0, 0x0f, 0, 0, 0, 0, 1, 2, 3, 4];
    assert_eq!(reject(&b), Error::MissingDigest { at: 16 });
}

#[test]
fn rule_max_payload_size() {
    let mut b = vec![0x40, 0, 0, 64, 0, 0, 0, 0xff, 0, 0, 0, 0];
    b.resize(12 + 256, 0);
    let v = Validator {
        profile: Profile::Switch,
        max_payload: 128,
    };
    assert_eq!(
        parse(&b, &v).unwrap_err(),
        Error::PayloadExceedsMps {
            bytes: 256,
            max_payload: 128,
            at: 2
        }
    );
    assert!(parse(
        &b,
        &Validator {
            max_payload: 256,
            ..v
        }
    )
    .is_ok());
}

#[test]
fn rule_message_traffic_class() {
    let b = [0x34, 0x10, 0, 0, 0, 0, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0]; // Assert_INTA on TC1
    assert_eq!(
        reject(&b),
        Error::MessageTrafficClass {
            code: 0x20,
            tc: 1,
            at: 1
        }
    );
    // A vendor-defined message may use any TC.
    parse_ok(&[0x34, 0x10, 0, 0, 0, 0, 0, 0x7e, 0, 0, 0, 0, 0, 0, 0, 0]);
}

#[test]
fn rule_message_routing() {
    let b = [0x32, 0, 0, 0, 0, 0, 0, 0x30, 0, 0, 0, 0, 0, 0, 0, 0]; // ERR_COR routed by ID
    assert_eq!(
        reject(&b),
        Error::MessageRouting {
            code: 0x30,
            routing: 2,
            required: 0,
            at: 0
        }
    );
}

#[test]
fn rule_message_payload() {
    let b = [0x34, 0, 0, 0, 0, 0, 0, 0x50, 0, 0, 0, 0, 0, 0, 0, 0]; // SSPL without data
    assert_eq!(reject(&b), Error::MessagePayload { code: 0x50, at: 0 });
}

#[test]
fn rule_crosses_4kib() {
    // MRd of 2 DW at 0x1ffc: its second DW lies past the boundary.
    let b = [0x00, 0, 0, 2, 0, 0, 0, 0xff, 0, 0, 0x1f, 0xfc];
    assert_eq!(
        reject(&b),
        Error::Crosses4KiB {
            address: 0x1ffc,
            bytes: 8,
            at: 8
        }
    );
    // A switch does not make this check.
    assert!(parse(&b, &Validator::new(Profile::Switch)).is_ok());
    // Ending exactly on the boundary is fine.
    parse_ok(&[0x00, 0, 0, 1, 0, 0, 0, 0x0f, 0, 0, 0x1f, 0xfc]);
}

#[test]
fn rule_byte_enables() {
    let one_dw_last = [0x00, 0, 0, 1, 0, 0, 0, 0xff, 0, 0, 0, 0];
    assert!(matches!(
        reject(&one_dw_last),
        Error::ByteEnables {
            rule: ByteEnableRule::LastBeWithOneDw,
            at: 7,
            ..
        }
    ));
    let first_zero = [0x00, 0, 0, 2, 0, 0, 0, 0xf0, 0, 0, 0, 0];
    assert!(matches!(
        reject(&first_zero),
        Error::ByteEnables {
            rule: ByteEnableRule::FirstBeZero,
            ..
        }
    ));
    let last_zero = [0x00, 0, 0, 2, 0, 0, 0, 0x0f, 0, 0, 0, 0];
    assert!(matches!(
        reject(&last_zero),
        Error::ByteEnables {
            rule: ByteEnableRule::LastBeZero,
            ..
        }
    ));
    let gap = [0x00, 0, 0, 3, 0, 0, 0, 0xf5, 0, 0, 0, 0];
    assert!(matches!(
        reject(&gap),
        Error::ByteEnables {
            rule: ByteEnableRule::NotContiguous,
            ..
        }
    ));
    // Non-contiguous is fine for 1 DW and for 2 DW QW aligned, not for 2 DW unaligned.
    parse_ok(&[0x00, 0, 0, 1, 0, 0, 0, 0x05, 0, 0, 0, 0]);
    parse_ok(&[0x00, 0, 0, 2, 0, 0, 0, 0xa5, 0, 0, 0, 0x08]);
    assert!(matches!(
        reject(&[0x00, 0, 0, 2, 0, 0, 0, 0xa5, 0, 0, 0, 0x04]),
        Error::ByteEnables {
            rule: ByteEnableRule::NotContiguous,
            ..
        }
    ));
    // Zero-length read: Length 1, First BE 0000b.
    parse_ok(&[0x00, 0, 0, 1, 0, 0, 0, 0x00, 0, 0, 0, 0]);
}

#[test]
fn rule_length_not_one() {
    let b = [0x04, 0, 0, 2, 0, 0, 0, 0xff, 0, 0, 0, 0];
    assert_eq!(
        reject(&b),
        Error::LengthNotOne {
            kind: Kind::CfgRd0,
            length_dw: 2,
            at: 2
        }
    );
    let io = [0x02, 0, 0, 2, 0, 0, 0, 0xff, 0, 0, 0, 0];
    assert_eq!(
        reject(&io),
        Error::LengthNotOne {
            kind: Kind::IORd,
            length_dw: 2,
            at: 2
        }
    );
}

#[test]
fn rule_tc_attr_not_zero() {
    let tc = [0x04, 0x10, 0, 1, 0, 0, 0, 0x0f, 0, 0, 0, 0];
    assert_eq!(
        reject(&tc),
        Error::TcAttrNotZero {
            kind: Kind::CfgRd0,
            tc: 1,
            attr: 0,
            at: 1
        }
    );
    let ro = [0x42, 0, 0x20, 1, 0, 0, 0, 0x0f, 0, 0, 0, 0, 0, 0, 0, 0];
    assert_eq!(
        reject(&ro),
        Error::TcAttrNotZero {
            kind: Kind::IOWr,
            tc: 0,
            attr: 0b010,
            at: 1
        }
    );
}

#[test]
fn rule_atomic_operand_size() {
    let mut fa = vec![0x4c, 0, 0, 4, 0, 0, 0, 0xff, 0, 0, 0, 0];
    fa.resize(12 + 16, 0);
    assert_eq!(
        reject(&fa),
        Error::AtomicOperandSize {
            kind: Kind::FetchAdd,
            length_dw: 4,
            at: 2
        }
    );
    let cas = [0x4e, 0, 0, 1, 0, 0, 0, 0x0f, 0, 0, 0, 0, 0, 0, 0, 0];
    assert_eq!(
        reject(&cas),
        Error::AtomicOperandSize {
            kind: Kind::Cas,
            length_dw: 1,
            at: 2
        }
    );
}

#[test]
fn rule_atomic_alignment() {
    // 64-bit Swap at an address aligned to 4 only.
    let mut swap = vec![0x4d, 0, 0, 2, 0, 0, 0, 0xff, 0, 0, 0x10, 0x04];
    swap.resize(12 + 8, 0);
    assert_eq!(
        reject(&swap),
        Error::AtomicAlignment {
            kind: Kind::Swap,
            address: 0x1004,
            operand_bytes: 8,
            at: 8
        }
    );
    // 128-bit CAS (8 DW: two 16-byte operands) must be 16-byte aligned.
    let mut cas = vec![0x4e, 0, 0, 8, 0, 0, 0, 0xff, 0, 0, 0x10, 0x08];
    cas.resize(12 + 32, 0);
    assert_eq!(
        reject(&cas),
        Error::AtomicAlignment {
            kind: Kind::Cas,
            address: 0x1008,
            operand_bytes: 16,
            at: 8
        }
    );
}

#[test]
fn rule_completion_byte_count() {
    // CplD of 2 DW but only 4 bytes left to return.
    let b = [
        0x4a, 0, 0, 2, 0x01, 0, 0x00, 0x04, 0, 0, 0, 0x00, 1, 2, 3, 4, 5, 6, 7, 8,
    ];
    assert_eq!(
        reject(&b),
        Error::CompletionByteCount {
            byte_count: 4,
            lower_address: 0,
            length_dw: 2,
            at: 6
        }
    );
    // 5 bytes from lower address 0x3 span 2 DW: fine.
    parse_ok(&[
        0x4a, 0, 0, 2, 0x01, 0, 0x00, 0x05, 0, 0, 0, 0x03, 1, 2, 3, 4, 5, 6, 7, 8,
    ]);
}

#[test]
fn rule_ecrc_mismatch() {
    let mut b = vec![0x40, 0, 0x80, 1, 0, 0, 0, 0x0f, 0, 0, 0, 0, 1, 2, 3, 4];
    let digest = Tlp::new_unchecked(&b[..]).compute_ecrc();
    b.extend_from_slice(&digest);
    parse_ok(&b);
    let last = b.len() - 1;
    b[last] ^= 1;
    assert!(matches!(reject(&b), Error::EcrcMismatch { at: 16, .. }));
    // A switch forwards the digest without checking it.
    assert!(parse(&b, &Validator::new(Profile::Switch)).is_ok());
}

#[test]
fn every_error_names_its_rule_and_byte() {
    let e = reject(&[0x00, 0, 0, 2, 0, 0, 0, 0xff, 0, 0, 0x1f, 0xfc]);
    let text = e.to_string();
    assert!(text.contains("4 KiB") && text.contains("byte 8"), "{text}");
    assert_eq!(e.rule(), "crosses_4kib");
}

#[test]
fn reprs_stay_small() {
    // Returned by value on the parse path: a budget, so growth is a decision.
    assert!(
        core::mem::size_of::<Repr>() <= 72,
        "{}",
        core::mem::size_of::<Repr>()
    );
    assert!(core::mem::size_of::<Error>() <= 32);
    assert!(core::mem::size_of::<Class>() <= 16);
}
