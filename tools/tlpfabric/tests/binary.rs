//! The built `tlpfabric` binary: exit statuses and a real pipe from `encode`
//! into `decode -`.

use std::io::Write;
use std::process::{Command, Stdio};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tlpfabric"))
}

#[test]
fn encode_piped_into_decode() {
    let enc = bin()
        .args([
            "tlp",
            "encode",
            "--kind",
            "MWr",
            "--address",
            "0x1000000040",
            "--requester",
            "01:00.0",
        ])
        .args(["--tag", "5", "--data", "0102030405060708"])
        .output()
        .unwrap();
    assert!(enc.status.success());
    let mut dec = bin()
        .args(["tlp", "decode", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    dec.stdin.take().unwrap().write_all(&enc.stdout).unwrap();
    let out = dec.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().trim(),
        "MWr64 len=2 req=01:00.0 tag=0x05 addr=0x0000001000000040 fbe=0xf lbe=0xf data=0102030405060708"
    );
}

#[test]
fn exit_statuses() {
    let ok = bin()
        .args(["tlp", "decode", "0a000000 01002004 00001100"])
        .output()
        .unwrap();
    assert_eq!(ok.status.code(), Some(0));
    let bad = bin()
        .args(["tlp", "decode", "00000001 01"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("truncated"));
    let usage = bin()
        .args(["tlp", "decode", "--profile", "router", "00"])
        .output()
        .unwrap();
    assert_eq!(usage.status.code(), Some(2));
    let help = bin().arg("--help").output().unwrap();
    assert_eq!(help.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&help.stdout).contains("tlp"));
}
