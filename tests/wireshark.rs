//! The Wireshark dissector (`tools/wireshark/tlpfabric.lua`) on captures
//! this project writes: a frame with a TLP of every kind, an ACK, a NAK, a
//! frame damaged on the wire and a frame with a TLP that breaks its own
//! Length field. `tshark -T json` must show the fabric header's fields, each
//! TLP's fields by kind, a good CRC as good, and the damage as expert info.
//! Needs `tshark` (`.ci/run` installs it): without it the test fails under
//! `CI=true`, and elsewhere says it was not run.

use fabric::frame::{Flags, FrameHeader, FrameWriter, ETHERTYPE};
use serde_json::Value;
use std::path::Path;
use std::process::Command;

/// A TLP of every kind (as `tlpfabric tlp encode` writes them), with its
/// kind; the MWr has an ECRC, the CAS a Steering Tag in its byte-enables
/// byte, the last MWr a TLP prefix and a Steering Tag in its Tag byte.
const TLPS: &[(&str, &str)] = &[
    ("MRd", "0000000201132afffe001000"),
    ("MRdLk", "0100000101132a0ffe001000"),
    (
        "MWr",
        "6000800201132aff00000010000000400102030405060708d8f7fe29",
    ),
    ("IORd", "0200000101132a0f000003f8"),
    ("IOWr", "4200000101132a0f000003f8000000ff"),
    ("CfgRd0", "0400000101132a0f03250104"),
    ("CfgWr0", "4400000101132a0f0325003c0b000000"),
    ("CfgRd1", "0500000101132a0f05000000"),
    ("CfgWr1", "4500000101132a0f05000010ffffffff"),
    ("Msg", "3200000001132a7e0401000000000000"),
    ("MsgD", "7400000101132a50000000000000000019010000"),
    ("Cpl", "0a0000000401200401132a00"),
    ("CplD", "4a0000010401000401132a04aabbccdd"),
    ("CplLk", "0b0000000401800401132a00"),
    ("CplDLk", "4b0000010401000401132a00aabbccdd"),
    ("FetchAdd", "4c00000101132a0f0000200000000001"),
    ("Swap", "6d00000201132aff00000001000020000000000100000002"),
    ("CAS", "4e01000201132afa000020110000000000000001"),
    ("MWr", "910001234001000101132a0f0000200201020304"),
];

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn frame(flags: u8, sequence: u32, ack: u32, tlps: &[Vec<u8>]) -> Vec<u8> {
    let header = FrameHeader {
        dst: [0x02, 0, 0, 0, 1, 0],
        src: [0x02, 0, 0, 0, 0, 0],
        ethertype: ETHERTYPE,
        flags: Flags(flags),
        source_node: 0,
        destination_node: 1,
        sequence,
        ack,
        credits: [64, 1024, 64, 1024, 64, 1024],
    };
    let mut buf = vec![0u8; 1514];
    let mut w = FrameWriter::new(&mut buf, &header, 1500).unwrap();
    for t in tlps {
        w.push(t).unwrap();
    }
    let n = w.finish();
    buf.truncate(n.max(60));
    buf
}

/// Every value of `key` anywhere in `v`, as text.
fn values(v: &Value, key: &str, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                if k == key {
                    match x {
                        Value::String(s) => out.push(s.clone()),
                        Value::Array(a) => {
                            out.extend(a.iter().filter_map(|e| e.as_str()).map(String::from))
                        }
                        _ => {}
                    }
                }
                values(x, key, out);
            }
        }
        Value::Array(a) => a.iter().for_each(|x| values(x, key, out)),
        _ => {}
    }
}

fn all(v: &Value, key: &str) -> Vec<String> {
    let mut out = Vec::new();
    values(v, key, &mut out);
    out
}

#[test]
fn the_dissector_shows_every_field_and_the_damage() {
    if Command::new("tshark").arg("--version").output().is_err() {
        assert!(
            std::env::var_os("CI").is_none(),
            "tshark is not installed (apt-get install tshark)"
        );
        eprintln!("note: tshark is not installed: the dissector is not tested here");
        return;
    }
    let tlps: Vec<Vec<u8>> = TLPS.iter().map(|(_, h)| hex(h)).collect();
    let data = frame(Flags::ACK | Flags::CREDITS, 7, 3, &tlps);
    let mut damaged = data.clone();
    damaged[60] ^= 0x40;
    // A CplD whose Length says 2 DW but carries 1.
    let mut bad = hex("4a0000010401000401132a04aabbccdd");
    bad[3] = 2;
    let frames = [
        data,
        frame(Flags::ACK | Flags::CREDITS, 0, 7, &[]),
        frame(Flags::NAK | Flags::ACK, 0, 6, &[]),
        damaged,
        frame(Flags::ACK, 8, 3, &[bad]),
        // On a link the Ethernet FCS protects: a zero trailer, not checked.
        frame(Flags::ACK | Flags::FCS, 9, 3, &tlps[..1]),
    ];
    let dir = std::env::temp_dir().join(format!("tlpf-wireshark-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pcap = dir.join("frames.pcap");
    let file = std::fs::File::create(&pcap).unwrap();
    let mut w = pmd::pcap::PcapWriter::new(file, 65535).unwrap();
    for (i, f) in frames.iter().enumerate() {
        w.write(i as u64 * 10, f).unwrap();
    }
    w.finish().unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tools/wireshark/tlpfabric.lua");
    let out = Command::new("tshark")
        .arg("-X")
        .arg(format!("lua_script:{}", script.display()))
        .arg("-r")
        .arg(&pcap)
        // Several TLPs make several subtrees of one name: merged into arrays.
        .args(["-T", "json", "--no-duplicate-keys"])
        .output()
        .unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("Lua: Error"), "{stderr}");
    let doc: Value = serde_json::from_slice(&out.stdout).expect("tshark's JSON");
    let packets = doc.as_array().expect("a list of packets");
    assert_eq!(packets.len(), 6);
    let p = |i: usize, key: &str| all(&packets[i], key);

    // The first frame: header fields, then every TLP by kind.
    assert_eq!(p(0, "tlpfabric.version"), ["2"]);
    assert_eq!(p(0, "tlpfabric.tlp_count"), [TLPS.len().to_string()]);
    assert_eq!(p(0, "tlpfabric.seq"), ["7"]);
    assert_eq!(p(0, "tlpfabric.ack"), ["3"]);
    assert_eq!(p(0, "tlpfabric.dst_node"), ["1"]);
    assert_eq!(p(0, "tlpfabric.credits.npd"), ["1024"]);
    assert_eq!(p(0, "tlpfabric.flags.ack"), ["1"]);
    assert_eq!(p(0, "tlpfabric.flags.nak"), ["0"]);
    assert_eq!(p(0, "tlpfabric.crc_ok"), ["1"]);
    let kinds: Vec<&str> = TLPS.iter().map(|(k, _)| *k).collect();
    assert_eq!(p(0, "tlpfabric.tlp.kind"), kinds);
    assert!(p(0, "tlpfabric.tlp.malformed").is_empty());
    // Memory, I/O and AtomicOp requests, in order (PH bits cleared).
    assert_eq!(
        p(0, "tlpfabric.tlp.address"),
        [
            "0x00000000fe001000",
            "0x00000000fe001000",
            "0x0000001000000040",
            "0x00000000000003f8",
            "0x00000000000003f8",
            "0x0000000000002000",
            "0x0000000100002000",
            "0x0000000000002010",
            "0x0000000000002000",
        ]
    );
    assert!(p(0, "tlpfabric.tlp.requester").contains(&"01:02.3".to_string()));
    assert!(p(0, "tlpfabric.tlp.completer").contains(&"04:00.1".to_string()));
    assert!(p(0, "tlpfabric.tlp.target").contains(&"03:04.5".to_string()));
    assert!(
        p(0, "tlpfabric.tlp.target").contains(&"04:00.1".to_string()),
        "Msg routed by ID"
    );
    assert!(p(0, "tlpfabric.tlp.register").contains(&"0x0104".to_string()));
    assert_eq!(p(0, "tlpfabric.tlp.status"), ["UR", "SC", "CA", "SC"]);
    assert_eq!(p(0, "tlpfabric.tlp.routing"), ["id", "local"]);
    assert_eq!(p(0, "tlpfabric.tlp.msg_code"), ["0x7e", "0x50"]);
    assert_eq!(p(0, "tlpfabric.tlp.ecrc"), ["0xd8f7fe29"]);
    assert_eq!(p(0, "tlpfabric.tlp.prefix"), ["0x91000123"]);
    // CAS with TH: the Steering Tag in the byte-enables byte; MWr with TH:
    // in the Tag byte.
    assert_eq!(p(0, "tlpfabric.tlp.steering_tag"), ["0xfa", "0x2a"]);
    assert!(p(0, "tlpfabric.tlp.lower_address").contains(&"0x04".to_string()));

    // An ACK with credits, and a NAK: no TLPs.
    assert_eq!(p(1, "tlpfabric.tlp_count"), ["0"]);
    assert_eq!(p(1, "tlpfabric.ack"), ["7"]);
    assert_eq!(p(1, "tlpfabric.flags.credits"), ["1"]);
    assert_eq!(p(2, "tlpfabric.flags.nak"), ["1"]);
    assert_eq!(p(2, "tlpfabric.crc_ok"), ["1"]);
    // Damaged on the wire: the CRC is flagged.
    assert_eq!(p(3, "tlpfabric.crc_ok"), ["0"]);
    assert!(!p(3, "tlpfabric.crc_bad").is_empty(), "{}", packets[3]);
    // A TLP that breaks its Length field, in a frame whose CRC is good.
    assert_eq!(p(4, "tlpfabric.crc_ok"), ["1"]);
    assert!(
        !p(4, "tlpfabric.tlp.malformed").is_empty(),
        "{}",
        packets[4]
    );
    // The FCS flag shown, the zero trailer neither checked nor flagged.
    assert_eq!(p(5, "tlpfabric.flags.fcs"), ["1"]);
    assert_eq!(p(5, "tlpfabric.crc"), ["0x00000000"]);
    assert!(p(5, "tlpfabric.crc_ok").is_empty(), "{}", packets[5]);
    assert!(p(5, "tlpfabric.crc_bad").is_empty());
    assert_eq!(p(5, "tlpfabric.tlp_count"), ["1"]);
}
