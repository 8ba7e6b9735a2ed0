//! `tlpfabric vdi inspect --json` on the shipped dumps of two real devices:
//! the keys and spellings the README promises.

use serde_json::{json, Value};

fn inspect(name: &str) -> Value {
    let path = format!("{}/../configs/devices/{name}", env!("CARGO_MANIFEST_DIR"));
    let (code, out, err) = tlpfabric::run_captured(&["vdi", "inspect", "--json", &path], "");
    assert_eq!(code, 0, "{err}");
    serde_json::from_str(&out).unwrap()
}

#[test]
fn a_4096_byte_dump_of_a_physical_function() {
    let v = inspect("82576-pf.lspci");
    assert_eq!(v["vendor_id"], "0x8086");
    assert_eq!(v["device_id"], "0x10c9");
    assert_eq!(v["class_code"], "0x020000");
    assert_eq!(v["header_type"], 0);
    assert_eq!(
        v["capabilities"],
        json!([
            {"id": "0x01", "offset": "0x40"},
            {"id": "0x05", "offset": "0x50"},
            {"id": "0x11", "offset": "0x70"},
            {"id": "0x10", "offset": "0xa0"},
        ])
    );
    assert_eq!(
        v["extended_capabilities"],
        json!([
            {"id": "0x0001", "offset": "0x100"},
            {"id": "0x0003", "offset": "0x140"},
            {"id": "0x000e", "offset": "0x150"},
            {"id": "0x0010", "offset": "0x160"},
        ])
    );
    assert_eq!(
        v["msix"],
        json!({"table_size": 10, "table_bir": 3, "table_offset": "0x0", "pba_bir": 3, "pba_offset": "0x2000"})
    );
}

#[test]
fn a_256_byte_dump_has_no_extended_capabilities() {
    let v = inspect("virtio-net.lspci");
    assert_eq!(
        (v["vendor_id"].as_str(), v["device_id"].as_str()),
        (Some("0x1af4"), Some("0x1000"))
    );
    assert_eq!(v["extended_capabilities"], json!([]));
    assert_eq!(
        v["capabilities"][0],
        json!({"id": "0x11", "offset": "0x84"})
    );
    assert_eq!(v["capabilities"].as_array().unwrap().len(), 5);
    assert_eq!(v["msix"]["pba_offset"], "0x800");
}
