//! Arbitrary text through the lspci dump parser and the capability walks
//! over what it accepts: none may panic, a dump it accepts is 256 or 4096
//! bytes with its length inside them, and a configuration space built from
//! it answers reads anywhere without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vdi::config::{self, BarSizes, ConfigSpace};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(dump) = vdi::lspci::parse(text) else {
        return;
    };
    assert!(dump.bytes.len() == 256 || dump.bytes.len() == 4096);
    assert!(dump.len <= dump.bytes.len() && dump.len > 0);
    let _ = config::capabilities(&dump.bytes);
    let _ = config::extended_capabilities(&dump.bytes);
    let _ = config::msix(&dump.bytes);
    if let Ok(space) = ConfigSpace::new(&dump.bytes, BarSizes::default()) {
        for offset in [0, 0x34, 0xfc, (dump.bytes.len() - 4) as u16, 0xfff, 0xffff] {
            let _ = space.read(offset);
        }
    }
});
