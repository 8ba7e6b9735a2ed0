//! `tlpfabric vdi inspect`: a configuration space from an `lspci -xxx` or
//! `lspci -xxxx` dump, its header fields and capability chains.

use crate::EXIT_REJECTED;
use clap::{Args, Subcommand};
use serde_json::{json, Value};
use std::io::Write;
use std::path::PathBuf;
use vdi::config::{self, Capability};

#[derive(Debug, Subcommand)]
pub(crate) enum VdiCommand {
    /// Print a dump's header fields and capability lists (exit 1 if the dump
    /// does not load or a chain is broken).
    Inspect(InspectArgs),
}

#[derive(Debug, Args)]
pub(crate) struct InspectArgs {
    /// An `lspci -xxx` (256 bytes) or `lspci -xxxx` (4096 bytes) dump; `-` reads stdin.
    file: PathBuf,
    /// One JSON object instead of text.
    #[arg(long)]
    json: bool,
}

fn capability_name(id: u16) -> &'static str {
    match id {
        0x01 => "Power Management",
        0x03 => "VPD",
        0x05 => "MSI",
        0x09 => "Vendor Specific",
        0x10 => "PCI Express",
        0x11 => "MSI-X",
        0x12 => "SATA",
        0x13 => "Advanced Features",
        _ => "",
    }
}

fn extended_name(id: u16) -> &'static str {
    match id {
        0x0001 => "Advanced Error Reporting",
        0x0002 => "Virtual Channel",
        0x0003 => "Device Serial Number",
        0x000b => "Vendor Specific",
        0x000d => "Access Control Services",
        0x000e => "Alternative Routing-ID Interpretation",
        0x000f => "Address Translation Services",
        0x0010 => "Single Root I/O Virtualization",
        0x0013 => "Page Request",
        0x0015 => "Resizable BAR",
        0x0017 => "TPH Requester",
        0x0018 => "Latency Tolerance Reporting",
        0x0019 => "Secondary PCI Express",
        0x001b => "Process Address Space ID",
        0x0023 => "Designated Vendor-Specific",
        0x0025 => "Data Link Feature",
        0x0026 => "Physical Layer 16.0 GT/s",
        _ => "",
    }
}

/// A type 0 or type 1 header.
const HEADER_BYTES: usize = 64;

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

pub(crate) fn run(
    cmd: VdiCommand,
    stdin: &mut dyn std::io::BufRead,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> i32 {
    let VdiCommand::Inspect(args) = cmd;
    let name = args.file.display().to_string();
    let text = if name == "-" {
        let mut s = String::new();
        match stdin.read_to_string(&mut s) {
            Ok(_) => s,
            Err(e) => {
                let _ = writeln!(err, "error: -: cannot read: {e}");
                return EXIT_REJECTED;
            }
        }
    } else {
        match std::fs::read_to_string(&args.file) {
            Ok(s) => s,
            Err(e) => {
                let _ = writeln!(err, "error: {name}: cannot read: {e}");
                return EXIT_REJECTED;
            }
        }
    };
    let dump = match vdi::lspci::parse(&text) {
        Ok(d) => d,
        Err(e) => {
            let _ = writeln!(err, "error: {name}: {e}");
            return EXIT_REJECTED;
        }
    };
    let b = &dump.bytes;
    let have = dump.len;
    if have < HEADER_BYTES {
        let _ = writeln!(
            err,
            "error: {name}: the dump has {have} bytes; a configuration header has {HEADER_BYTES}"
        );
        return EXIT_REJECTED;
    }
    let chains = config::capabilities(b).and_then(|c| Ok((c, config::extended_capabilities(b)?)));
    let (caps, ext) = match chains {
        Ok(c) => c,
        Err(e) => {
            let _ = writeln!(err, "error: {name}: {e}");
            return EXIT_REJECTED;
        }
    };
    // What the dump did not list reads as zero in `b`: a capability found
    // there was read from padding, not from the device.
    let msix = config::msix(b);
    let beyond = caps
        .iter()
        .chain(&ext)
        .map(|c| (c.offset, c.offset as usize + 4))
        .chain(msix.map(|m| (m.offset, m.offset as usize + 12)))
        .find(|&(_, end)| end > have);
    if let Some((offset, end)) = beyond {
        let _ = writeln!(
            err,
            "error: {name}: the capability at {offset:#x} needs bytes up to {end:#x}; the dump has {have}"
        );
        return EXIT_REJECTED;
    }
    let vendor = u16_at(b, 0);
    let device = u16_at(b, 2);
    let class = u32::from_le_bytes([b[9], b[10], b[11], 0]);
    let header_type = b[0x0e] & 0x7f;
    if args.json {
        let cap_json = |c: &Capability, width: usize| json!({"id": format!("0x{:0w$x}", c.id, w = width), "offset": format!("{:#x}", c.offset)});
        let doc = json!({
            "device": dump.header,
            "size": have,
            "space": b.len(),
            "vendor_id": format!("0x{vendor:04x}"),
            "device_id": format!("0x{device:04x}"),
            "revision": b[8],
            "class_code": format!("0x{class:06x}"),
            "header_type": header_type,
            "multi_function": b[0x0e] & 0x80 != 0,
            "command": format!("0x{:04x}", u16_at(b, 4)),
            "status": format!("0x{:04x}", u16_at(b, 6)),
            "capabilities": caps.iter().map(|c| cap_json(c, 2)).collect::<Vec<_>>(),
            "extended_capabilities": ext.iter().map(|c| cap_json(c, 4)).collect::<Vec<_>>(),
            "msix": msix.map_or(Value::Null, |m| json!({
                "table_size": m.table_size,
                "table_bir": m.table_bir,
                "table_offset": format!("{:#x}", m.table_offset),
                "pba_bir": m.pba_bir,
                "pba_offset": format!("{:#x}", m.pba_offset),
            })),
        });
        let _ = writeln!(out, "{doc}");
        return 0;
    }
    let _ = writeln!(out, "{}", dump.header);
    let _ = writeln!(
        out,
        "  vendor 0x{vendor:04x} device 0x{device:04x} revision 0x{:02x} class 0x{class:06x} header type {header_type}{}",
        b[8],
        if b[0x0e] & 0x80 != 0 { " (multi-function)" } else { "" }
    );
    let _ = writeln!(
        out,
        "  command 0x{:04x} status 0x{:04x}, {have} bytes of a {}-byte space",
        u16_at(b, 4),
        u16_at(b, 6),
        b.len()
    );
    for c in &caps {
        let _ = writeln!(
            out,
            "  capability [{:02x}] 0x{:02x} {}",
            c.offset,
            c.id,
            capability_name(c.id)
        );
    }
    for c in &ext {
        let _ = writeln!(
            out,
            "  extended capability [{:03x}] 0x{:04x} v{} {}",
            c.offset,
            c.id,
            c.version,
            extended_name(c.id)
        );
    }
    if let Some(m) = msix {
        let _ = writeln!(
            out,
            "  MSI-X: {} vectors, table in BAR {} at {:#x}, pending bits in BAR {} at {:#x}",
            m.table_size, m.table_bir, m.table_offset, m.pba_bir, m.pba_offset
        );
    }
    0
}

#[cfg(test)]
mod tests {
    use crate::run_captured;

    fn shipped(name: &str) -> String {
        format!(
            "{}/../../configs/devices/{name}",
            env!("CARGO_MANIFEST_DIR")
        )
    }

    /// A 64-byte dump (the header only) whose capability pointer points
    /// past it: the capability would be read from zero padding.
    #[test]
    fn a_short_dump_says_its_size_and_reads_nothing_beyond_it() {
        let header = "00:01.0 Ethernet controller: a 64-byte dump\n\
            00: 86 80 c9 10 07 04 10 00 01 00 00 02 10 00 80 00\n\
            10: 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00\n\
            20: 00 00 00 00 00 00 00 00 00 00 00 00 86 80 00 a0\n\
            30: 00 00 00 00 40 00 00 00 00 00 00 00 00 01 00 00\n";
        let (code, _, err) = run_captured(&["vdi", "inspect", "-"], header);
        assert_eq!(code, 1);
        assert!(
            err.contains(
                "error: -: the capability at 0x40 needs bytes up to 0x44; the dump has 64"
            ),
            "{err}"
        );
        // Without a capability list the same dump inspects, said as 64 bytes.
        let no_caps = header.replace("07 04 10 00", "07 04 00 00");
        let (code, out, err) = run_captured(&["vdi", "inspect", "-"], &no_caps);
        assert_eq!(code, 0, "{err}");
        assert!(out.contains("64 bytes of a 256-byte space"), "{out}");
        let (_, out, _) = run_captured(&["vdi", "inspect", "--json", "-"], &no_caps);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(
            (v["size"].as_u64(), v["space"].as_u64()),
            (Some(64), Some(256))
        );
        // Less than a header is refused.
        let short: String = no_caps.lines().take(3).map(|l| format!("{l}\n")).collect();
        let (code, _, err) = run_captured(&["vdi", "inspect", "-"], &short);
        assert_eq!(code, 1);
        assert!(
            err.contains("the dump has 32 bytes; a configuration header has 64"),
            "{err}"
        );
    }

    #[test]
    fn inspects_the_shipped_dumps() {
        let (code, out, err) = run_captured(&["vdi", "inspect", &shipped("82576-pf.lspci")], "");
        assert_eq!(code, 0, "{err}");
        assert!(out.contains("vendor 0x8086 device 0x10c9 revision 0x01 class 0x020000 header type 0 (multi-function)"), "{out}");
        assert!(out.contains("capability [70] 0x11 MSI-X"), "{out}");
        assert!(
            out.contains("extended capability [160] 0x0010 v1 Single Root I/O Virtualization"),
            "{out}"
        );
        assert!(
            out.contains(
                "MSI-X: 10 vectors, table in BAR 3 at 0x0, pending bits in BAR 3 at 0x2000"
            ),
            "{out}"
        );
    }

    #[test]
    fn broken_dumps_exit_1_naming_the_problem() {
        let text = std::fs::read_to_string(shipped("virtio-net.lspci"))
            .unwrap()
            .replace("80: 00 10 00 00 11 70", "80: 00 10 00 00 11 84");
        let (code, _, err) = run_captured(&["vdi", "inspect", "-"], &text);
        assert_eq!(code, 1);
        assert!(
            err.contains("capability pointer at 0x85 points back to 0x84"),
            "{err}"
        );
        let (code, _, err) = run_captured(&["vdi", "inspect", "-"], "00:00.0 x\n00: zz\n");
        assert_eq!(code, 1);
        assert!(err.contains("line 2: expected a 2-digit hex byte"), "{err}");
    }
}
