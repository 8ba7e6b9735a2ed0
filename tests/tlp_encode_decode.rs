//! `tlpfabric tlp encode` piped into `tlpfabric tlp decode` round-trips, for
//! every kind, in text and in JSON.

use serde_json::Value;

fn cli(args: &[&str], stdin: &str) -> (i32, String, String) {
    tlpfabric::run_captured(args, stdin)
}

fn value<'a>(it: &mut std::slice::Iter<'_, &'a str>) -> &'a str {
    it.next().copied().expect("flag value")
}

/// One encode invocation per kind, with the fields that kind carries.
fn cases() -> Vec<Vec<&'static str>> {
    let base = |kind: &'static str, rest: &[&'static str]| {
        let mut v = vec![
            "tlp",
            "encode",
            "--kind",
            kind,
            "--requester",
            "01:02.3",
            "--tag",
            "0x1a5",
        ];
        v.extend_from_slice(rest);
        v
    };
    vec![
        base("MRd", &["--address", "0x80001000", "--length", "4"]),
        base(
            "MRd",
            &[
                "--address",
                "0x1234500000",
                "--length",
                "1",
                "--tc",
                "3",
                "--attr",
                "6",
            ],
        ),
        base("MRdLk", &["--address", "0x2000"]),
        base(
            "MWr",
            &["--address", "0x40", "--data", "0102030405060708", "--td"],
        ),
        base(
            "MWr",
            &["--address", "0x100000040", "--data", "deadbeef", "--ep"],
        ),
        base("IORd", &["--address", "0xcf8", "--first-be", "0x3"]),
        base("IOWr", &["--address", "0xcfc", "--data", "aabbccdd"]),
        base("CfgRd0", &["--target", "03:04.5", "--register", "0x104"]),
        base(
            "CfgWr0",
            &[
                "--target",
                "03:04.5",
                "--register",
                "0x10",
                "--data",
                "ffffffff",
            ],
        ),
        base("CfgRd1", &["--target", "05:00.0", "--register", "0xffc"]),
        base(
            "CfgWr1",
            &[
                "--target",
                "05:00.0",
                "--data",
                "00000001",
                "--first-be",
                "0xc",
            ],
        ),
        base("Msg", &["--code", "0x20"]),
        base("Msg", &["--code", "0x30"]),
        base(
            "Msg",
            &["--code", "0x7e", "--routing", "id", "--target", "02:00.0"],
        ),
        base(
            "Msg",
            &[
                "--code",
                "0x7f",
                "--routing",
                "address",
                "--address",
                "0xfee00000",
            ],
        ),
        base("Msg", &["--code", "0x00"]),
        base("Msg", &["--code", "0x1b"]),
        base("MsgD", &["--code", "0x50", "--data", "19010000"]),
        base("Cpl", &["--completer", "04:00.1", "--status", "UR"]),
        base(
            "CplD",
            &[
                "--completer",
                "04:00.1",
                "--data",
                "0011223344556677",
                "--lower-address",
                "0x40",
            ],
        ),
        base("CplLk", &["--completer", "04:00.1", "--status", "CA"]),
        base("CplDLk", &["--completer", "04:00.1", "--data", "01020304"]),
        base("FetchAdd", &["--address", "0x1000", "--data", "00000001"]),
        base(
            "Swap",
            &["--address", "0x100001008", "--data", "0102030405060708"],
        ),
        base(
            "CAS",
            &[
                "--address",
                "0x2010",
                "--data",
                "00000000000000000000000000000001",
                "--prefix",
                "91000001",
            ],
        ),
    ]
}

#[test]
fn every_kind_round_trips_through_encode_and_decode() {
    for args in cases() {
        let (code, hex, err) = cli(&args, "");
        assert_eq!(code, 0, "{args:?}: {err}");
        assert!(err.is_empty(), "{args:?} should be a valid TLP: {err}");
        // decode reads the encoded line from standard input, as a pipe would give it.
        let (code, json, err) = cli(&["tlp", "decode", "--json", "-"], &hex);
        assert_eq!(code, 0, "{args:?}: {err}");
        let v: Value = serde_json::from_str(json.trim()).unwrap();
        let kind = args[3];
        assert_eq!(v["kind"], kind, "{args:?}");
        if !kind.starts_with("Cpl") {
            assert_eq!(v["requester_id"], "01:02.3", "{args:?}");
            assert_eq!(v["tag"], 0x1a5, "{args:?}");
        }
        // Every field given on the command line comes back.
        let mut it = args[4..].iter();
        while let Some(flag) = it.next() {
            match *flag {
                "--address" => {
                    let a =
                        u64::from_str_radix(value(&mut it).trim_start_matches("0x"), 16).unwrap();
                    assert_eq!(v["address"], format!("{a:#018x}"), "{args:?}");
                }
                "--data" => assert_eq!(v["payload"], value(&mut it), "{args:?}"),
                "--length" => assert_eq!(v["length_dw"].to_string(), value(&mut it), "{args:?}"),
                "--completer" => assert_eq!(v["completer_id"], value(&mut it), "{args:?}"),
                "--status" => assert_eq!(v["status"], value(&mut it), "{args:?}"),
                "--tc" => assert_eq!(v["tc"].to_string(), value(&mut it), "{args:?}"),
                "--attr" => assert_eq!(v["attr"].to_string(), value(&mut it), "{args:?}"),
                "--code" => {
                    let c =
                        u64::from_str_radix(value(&mut it).trim_start_matches("0x"), 16).unwrap();
                    assert_eq!(v["message_code"], c, "{args:?}");
                }
                "--register" => {
                    let r =
                        u64::from_str_radix(value(&mut it).trim_start_matches("0x"), 16).unwrap();
                    assert_eq!(v["register"], r, "{args:?}");
                }
                "--ep" => assert_eq!(v["ep"], true),
                "--td" => {
                    assert_eq!(v["td"], true);
                    assert_eq!(v["ecrc_ok"], true);
                }
                "--prefix" => assert_eq!(v["prefixes"][0], value(&mut it)),
                _ => {
                    if !flag.starts_with("--") {
                        continue;
                    }
                    if !matches!(*flag, "--requester" | "--tag" | "--ep" | "--td") {
                        let _ = value(&mut it);
                    }
                }
            }
        }
        // And the text form re-encodes to the same bytes when decoded again.
        let (code, text, _) = cli(&["tlp", "decode", &hex], "");
        assert_eq!(code, 0);
        assert!(text.starts_with(kind), "{text}");
    }
}

#[test]
fn decode_reads_many_lines_and_reports_each_failure() {
    let mut input = String::new();
    for args in cases() {
        input.push_str(&cli(&args, "").1);
    }
    input.push_str("# a comment line is skipped\n");
    input.push_str("4a000002 01000004 00000000 01020304 05060708\n"); // CplD longer than its Byte Count
    input.push_str("zz\n");
    let (code, out, err) = cli(&["tlp", "decode", "-"], &input);
    assert_eq!(code, 1);
    assert_eq!(out.lines().count(), cases().len());
    let errors: Vec<&str> = err.lines().collect();
    assert_eq!(errors.len(), 2, "{err}");
    assert!(
        errors[0].contains(&format!("TLP {}", cases().len() + 1))
            && errors[0].contains("Byte Count"),
        "{err}"
    );
    assert!(errors[1].contains("bad hex"), "{err}");
}

#[test]
fn shipped_sample_tlps_all_decode() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../configs/sample-tlps.txt");
    let text = std::fs::read_to_string(path).unwrap();
    let (code, out, err) = cli(&["tlp", "decode", "--json", "-"], &text);
    assert_eq!(code, 0, "{err}");
    let kinds: Vec<String> = out
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["kind"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(
        kinds,
        ["MRd", "MWr", "CfgRd0", "Msg", "MsgD", "CplD", "Cpl", "CAS"]
    );
}

#[test]
fn readme_quick_start_line() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    let command = readme
        .lines()
        .find(|l| l.starts_with("cargo run") && l.contains("tlp decode"))
        .unwrap();
    let hex = command.split_whitespace().last().unwrap();
    let (code, out, _) = cli(&["tlp", "decode", hex], "");
    assert_eq!(code, 0);
    assert!(
        readme.contains(&format!("`{}`", out.trim())),
        "README shows what decode prints: {}",
        out.trim()
    );
}
