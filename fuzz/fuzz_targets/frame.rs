//! Arbitrary bytes through the fabric frame parser: it must never panic, and
//! a frame it accepts must account for every byte up to its CRC. The input is
//! also tried with the EtherType and version made right and a correct CRC
//! appended, so the fuzzer explores the TLP walk behind the checksum.
#![no_main]

use fabric::crc_of;
use fabric::frame::{Flags, Frame, Integrity, CRC_LEN, ETHERTYPE, HEADER_LEN, VERSION};
use libfuzzer_sys::fuzz_target;

fn check(bytes: &[u8]) {
    // On a link of either kind: a frame is taken only with the flag that
    // says how it is protected.
    for integrity in [Integrity::Crc32c, Integrity::Fcs] {
        if let Ok(frame) = Frame::new_checked_as(bytes, ETHERTYPE, integrity) {
            let tlp_bytes: usize = frame.tlps().map(|t| t.len() + 2).sum();
            assert_eq!(HEADER_LEN + tlp_bytes + CRC_LEN, frame.len());
            assert_eq!(frame.tlps().count(), frame.tlp_count() as usize);
            assert_eq!(frame.flags().has(Flags::FCS), integrity == Integrity::Fcs);
            let _ = (frame.credits(), frame.sequence(), frame.ack(), frame.flags());
        }
    }
}

fuzz_target!(|data: &[u8]| {
    check(data);
    if data.len() >= HEADER_LEN {
        let mut framed = data.to_vec();
        framed[12..14].copy_from_slice(&ETHERTYPE.to_be_bytes());
        framed[14] = VERSION;
        // Put the CRC where the TLP walk ends, if it ends inside the input.
        let count = u16::from_be_bytes([framed[16], framed[17]]);
        let mut at = HEADER_LEN;
        for _ in 0..count {
            match framed.get(at..at + 2) {
                Some(p) => at += 2 + u16::from_be_bytes([p[0], p[1]]) as usize,
                None => break,
            }
        }
        if at <= framed.len() {
            framed.truncate(at);
            let crc = crc_of(&framed);
            framed.extend_from_slice(&crc.to_be_bytes());
            check(&framed);
        }
    }
});
