//! Arbitrary bytes through classification, both validation profiles, the view
//! accessors and re-emission. Panics are the bugs this looks for; a TLP that
//! parses must re-emit to bytes that parse to the same repr.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tlp::{classify, may_pass, OrderInfo, Profile, Repr, Tlp, Validator};

fuzz_target!(|data: &[u8]| {
    let _ = classify(data);
    for profile in [Profile::Switch, Profile::Completer] {
        let v = Validator { profile, max_payload: 512 };
        if let Ok(repr) = tlp::parse(data, &v) {
            let _ = repr.to_string();
            let mut out = vec![0u8; repr.buffer_len()];
            let n = repr.emit(&mut out).expect("a parsed TLP emits");
            let view = Tlp::new_checked(&out[..n]).expect("an emitted TLP checks");
            let again = Repr::parse(&view).expect("an emitted TLP parses");
            assert_eq!(again, repr);
        }
    }
    if let Ok(t) = Tlp::new_checked(data) {
        let info = OrderInfo::of_tlp(&t);
        let _ = may_pass(&info, &info);
        let _ = (t.address(), t.tag(), t.payload(), t.digest(), t.compute_ecrc(), t.message_fields());
    }
});
