//! `tlpfabric tlp decode` and `tlpfabric tlp encode`.

use crate::hex;
use crate::{EXIT_REJECTED, EXIT_USAGE};
use clap::{Args, Subcommand, ValueEnum};
use serde_json::{json, Map, Value};
use std::io::{BufRead, Write};
use tlp::{
    classify, Attr, Bdf, Body, CplStatus, Digest, Kind, MessageCode, MsgRouting, Profile, Repr,
    Tlp, Validator,
};

#[derive(Debug, Subcommand)]
pub(crate) enum TlpCommand {
    /// Decode TLPs given as hex: one per argument, or one per line of standard input with `-`.
    Decode(DecodeArgs),
    /// Build one TLP from its fields and print it as hex.
    Encode(EncodeArgs),
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ProfileArg {
    /// Every malformed-TLP check: the receiver that terminates the TLP.
    Completer,
    /// Only what a switch must check before forwarding.
    Switch,
}

#[derive(Debug, Args)]
pub(crate) struct DecodeArgs {
    /// TLPs as hex (spaces, `:` and `0x` allowed); `-` reads one TLP per line from standard input.
    #[arg(required = true, value_name = "HEX")]
    tlps: Vec<String>,
    /// One JSON object per line instead of text.
    #[arg(long)]
    json: bool,
    /// Max_Payload_Size in bytes to check against (128..=4096, a power of two).
    #[arg(long, default_value_t = 4096, value_parser = parse_mps)]
    mps: usize,
    /// Validation profile.
    #[arg(long, value_enum, default_value_t = ProfileArg::Completer)]
    profile: ProfileArg,
}

fn parse_mps(s: &str) -> Result<usize, String> {
    let v: usize = s
        .parse()
        .map_err(|_| format!("expected a number of bytes, got {s:?}"))?;
    if !(128..=4096).contains(&v) || !v.is_power_of_two() {
        return Err(format!(
            "Max_Payload_Size must be a power of two from 128 to 4096, got {v}"
        ));
    }
    Ok(v)
}

fn parse_u64(s: &str) -> Result<u64, String> {
    let t = s.replace('_', "");
    let r = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(h) => u64::from_str_radix(h, 16),
        None => t.parse(),
    };
    r.map_err(|_| format!("expected a number (decimal or 0x hex), got {s:?}"))
}

fn bounded(max: u64) -> impl Fn(&str) -> Result<u64, String> + Clone {
    move |s| {
        let v = parse_u64(s)?;
        if v > max {
            return Err(format!("must be at most {max:#x}, got {v:#x}"));
        }
        Ok(v)
    }
}

fn parse_kind(s: &str) -> Result<Kind, String> {
    Kind::from_name(s).ok_or_else(|| {
        let names: Vec<&str> = tlp::ALL_KINDS.iter().map(|k| k.name()).collect();
        format!("unknown kind {s:?}; one of {}", names.join(", "))
    })
}

fn parse_bdf(s: &str) -> Result<Bdf, String> {
    s.parse::<Bdf>().map_err(|e| e.to_string())
}

fn parse_status(s: &str) -> Result<CplStatus, String> {
    CplStatus::from_name(s).ok_or_else(|| format!("unknown status {s:?}; one of SC, UR, CRS, CA"))
}

fn parse_routing(s: &str) -> Result<MsgRouting, String> {
    let r = match s {
        "to_root" => MsgRouting::ToRoot,
        "address" => MsgRouting::ByAddress,
        "id" => MsgRouting::ById,
        "broadcast" => MsgRouting::Broadcast,
        "local" => MsgRouting::Local,
        "gather" => MsgRouting::Gather,
        _ => {
            return Err(format!(
                "unknown routing {s:?}; one of to_root, address, id, broadcast, local, gather"
            ))
        }
    };
    Ok(r)
}

#[derive(Debug, Args)]
pub(crate) struct EncodeArgs {
    /// MRd, MRdLk, MWr, IORd, IOWr, CfgRd0, CfgWr0, CfgRd1, CfgWr1, Msg, MsgD, Cpl, CplD, CplLk, CplDLk, FetchAdd, Swap or CAS.
    #[arg(long, value_parser = parse_kind)]
    kind: Kind,
    /// Address of a memory, I/O or atomic request, or of a message routed by address.
    #[arg(long, value_parser = parse_u64)]
    address: Option<u64>,
    /// Use the 4 DW (64-bit address) header even below 4 GiB.
    #[arg(long)]
    long: bool,
    /// Requester ID, BB:DD.F.
    #[arg(long, value_parser = parse_bdf, default_value = "00:00.0")]
    requester: Bdf,
    /// Completer ID of a completion, BB:DD.F.
    #[arg(long, value_parser = parse_bdf, default_value = "00:00.0")]
    completer: Bdf,
    /// Target of a configuration request or of a message routed by ID, BB:DD.F.
    #[arg(long, value_parser = parse_bdf)]
    target: Option<Bdf>,
    /// Configuration register byte offset (DW aligned, up to 0xffc).
    #[arg(long, value_parser = bounded(0xffc), default_value = "0")]
    register: u64,
    /// Tag (10 bits).
    #[arg(long, value_parser = bounded(0x3ff), default_value = "0")]
    tag: u64,
    /// Data payload as hex (a whole number of DWs).
    #[arg(long, value_name = "HEX")]
    data: Option<String>,
    /// Length in DW (defaults to the data's length, or 1).
    #[arg(long, value_parser = bounded(1024))]
    length: Option<u64>,
    /// Traffic Class.
    #[arg(long, value_parser = bounded(7), default_value = "0")]
    tc: u64,
    /// Attributes: bit 2 IDO, bit 1 RO, bit 0 NS.
    #[arg(long, value_parser = bounded(7), default_value = "0")]
    attr: u64,
    /// Address Type.
    #[arg(long, value_parser = bounded(3), default_value = "0")]
    at: u64,
    /// Poisoned.
    #[arg(long)]
    ep: bool,
    /// Append a TLP Digest with the computed ECRC.
    #[arg(long)]
    td: bool,
    /// TLP Processing Hints present.
    #[arg(long)]
    th: bool,
    /// Processing Hint (with --th).
    #[arg(long, value_parser = bounded(3), default_value = "0")]
    ph: u64,
    /// Lightweight Notification bit.
    #[arg(long)]
    ln: bool,
    /// First DW Byte Enables (default 0xf).
    #[arg(long, value_parser = bounded(0xf))]
    first_be: Option<u64>,
    /// Last DW Byte Enables (default 0 for 1 DW, else 0xf).
    #[arg(long, value_parser = bounded(0xf))]
    last_be: Option<u64>,
    /// Message routing: to_root, address, id, broadcast, local, gather.
    #[arg(long, value_parser = parse_routing)]
    routing: Option<MsgRouting>,
    /// Message code.
    #[arg(long, value_parser = bounded(0xff), default_value = "0")]
    code: u64,
    /// Completion status: SC, UR, CRS, CA.
    #[arg(long, value_parser = parse_status, default_value = "SC")]
    status: CplStatus,
    /// Completion Byte Count (1..=4096; defaults to the data's length, or 4).
    #[arg(long, value_parser = bounded(4096))]
    byte_count: Option<u64>,
    /// Completion Lower Address.
    #[arg(long, value_parser = bounded(0x7f), default_value = "0")]
    lower_address: u64,
    /// Byte Count Modified.
    #[arg(long)]
    bcm: bool,
    /// A TLP prefix DW as hex (repeatable, in wire order).
    #[arg(long = "prefix", value_name = "HEX")]
    prefixes: Vec<String>,
}

pub(crate) fn run(
    cmd: TlpCommand,
    stdin: &mut dyn BufRead,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> i32 {
    match cmd {
        TlpCommand::Decode(args) => decode(&args, stdin, out, err),
        TlpCommand::Encode(args) => encode(&args, out, err),
    }
}

fn decode(
    args: &DecodeArgs,
    stdin: &mut dyn BufRead,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> i32 {
    let profile = match args.profile {
        ProfileArg::Completer => Profile::Completer,
        ProfileArg::Switch => Profile::Switch,
    };
    let validator = Validator {
        profile,
        max_payload: args.mps,
    };
    let mut failed = false;
    let mut index = 0usize;
    // Decodes one TLP given as hex; false if it was rejected.
    let mut one = |text: &str, line: Option<usize>, out: &mut dyn Write, err: &mut dyn Write| {
        index += 1;
        let decoded = match hex::parse(text) {
            Ok(bytes) => decode_one(&bytes, &validator, args.json),
            Err(e) => Err(format!("bad hex: {e}")),
        };
        match decoded {
            Ok(text) => {
                let _ = writeln!(out, "{text}");
                true
            }
            Err(why) => {
                let at = line.map_or(String::new(), |n| format!(" (line {n})"));
                let _ = writeln!(err, "error: TLP {index}{at}: {why}");
                false
            }
        }
    };
    for arg in &args.tlps {
        if arg != "-" {
            failed |= !one(arg, None, out, err);
            continue;
        }
        let mut buf = Vec::with_capacity(MAX_LINE + 1);
        let mut number = 0usize;
        loop {
            number += 1;
            let read = match read_line_bounded(stdin, &mut buf, MAX_LINE) {
                Ok(r) => r,
                Err(e) => {
                    let _ = writeln!(err, "error: line {number}: reading standard input: {e}");
                    return EXIT_REJECTED;
                }
            };
            match read {
                Line::End => break,
                Line::TooLong { ended } => {
                    failed = true;
                    let _ = writeln!(
                        err,
                        "error: line {number}: longer than {MAX_LINE} bytes (the largest TLP \
                         is {MAX_TLP} bytes, {} hex digits): skipped",
                        2 * MAX_TLP
                    );
                    let skipped = if ended { Ok(()) } else { skip_line(stdin) };
                    if let Err(e) = skipped {
                        let _ = writeln!(err, "error: line {number}: reading standard input: {e}");
                        return EXIT_REJECTED;
                    }
                }
                Line::Text => match std::str::from_utf8(&buf) {
                    Ok(text) => {
                        let t = text.trim();
                        if !t.is_empty() && !t.starts_with('#') {
                            failed |= !one(t, Some(number), out, err);
                        }
                    }
                    Err(e) => {
                        failed = true;
                        let _ = writeln!(
                            err,
                            "error: line {number}: not UTF-8 text (byte {} is not): skipped",
                            e.valid_up_to()
                        );
                    }
                },
            }
        }
    }
    if failed {
        EXIT_REJECTED
    } else {
        0
    }
}

/// The largest TLP: four prefixes, a 4 DW header, 4 KiB of data, a digest.
const MAX_TLP: usize = 16 + 16 + 4096 + 4;
/// The longest line `decode -` reads: a largest TLP in hex with a space
/// between every two digits and room to spare.
const MAX_LINE: usize = 4 * MAX_TLP;

/// What [`read_line_bounded`] read.
#[derive(Debug, PartialEq, Eq)]
enum Line {
    /// A line (without its end) is in the buffer.
    Text,
    /// The line is longer than the bound: what was read of it is dropped;
    /// unless `ended`, the rest is still to come.
    TooLong {
        /// Its end was read too.
        ended: bool,
    },
    /// The input ended.
    End,
}

/// Reads one line into `buf` (emptied first), holding at most `max` bytes
/// of it: however long a line is, memory stays bounded.
fn read_line_bounded(
    input: &mut dyn BufRead,
    buf: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<Line> {
    buf.clear();
    let mut any = false;
    loop {
        let chunk = input.fill_buf()?;
        if chunk.is_empty() {
            return Ok(if any { Line::Text } else { Line::End });
        }
        any = true;
        let (line, end) = match chunk.iter().position(|&b| b == b'\n') {
            Some(i) => (&chunk[..i], Some(i + 1)),
            None => (chunk, None),
        };
        if buf.len() + line.len() > max {
            let n = end.unwrap_or(chunk.len());
            input.consume(n);
            buf.clear();
            return Ok(Line::TooLong {
                ended: end.is_some(),
            });
        }
        buf.extend_from_slice(line);
        let n = end.unwrap_or(chunk.len());
        input.consume(n);
        if end.is_some() {
            return Ok(Line::Text);
        }
    }
}

/// Reads and drops the rest of a line.
fn skip_line(input: &mut dyn BufRead) -> std::io::Result<()> {
    loop {
        let chunk = input.fill_buf()?;
        if chunk.is_empty() {
            return Ok(());
        }
        match chunk.iter().position(|&b| b == b'\n') {
            Some(i) => {
                input.consume(i + 1);
                return Ok(());
            }
            None => {
                let n = chunk.len();
                input.consume(n);
            }
        }
    }
}

fn decode_one(bytes: &[u8], validator: &Validator, json: bool) -> Result<String, String> {
    let repr = tlp::parse(bytes, validator).map_err(|e| format!("{} [{}]", e, e.rule()))?;
    if !json {
        return Ok(repr.to_string());
    }
    let view = Tlp::new_unchecked(bytes);
    Ok(to_json(&repr, &view).to_string())
}

/// The JSON object of one TLP (keys documented in the README).
fn to_json(repr: &Repr<'_>, view: &Tlp<&[u8]>) -> Value {
    let kind = repr.kind();
    let class = classify(view.as_bytes()).expect("parsed TLPs classify");
    let mut m = Map::new();
    m.insert("kind".into(), json!(kind.name()));
    m.insert("fmt".into(), json!(view.fmt()));
    m.insert("type".into(), json!(view.type_bits()));
    m.insert("header_dw".into(), json!(view.header_len() / 4));
    m.insert("tc".into(), json!(repr.tc));
    m.insert("length_dw".into(), json!(repr.length_dw));
    m.insert("td".into(), json!(view.td()));
    m.insert("ep".into(), json!(repr.ep));
    m.insert("attr".into(), json!(repr.attr.0));
    m.insert("th".into(), json!(repr.th));
    m.insert("ln".into(), json!(repr.ln));
    m.insert("at".into(), json!(repr.at));
    m.insert("routing".into(), json!(class.routing.name()));
    m.insert("class".into(), json!(class.flow.name()));
    m.insert("data_credits".into(), json!(class.data_credits));
    match repr.body {
        Body::Completion {
            completer,
            status,
            bcm,
            byte_count,
            lower_address,
            ..
        } => {
            m.insert("completer_id".into(), json!(completer.to_string()));
            m.insert("requester_id".into(), json!(repr.requester.to_string()));
            m.insert("tag".into(), json!(repr.tag));
            m.insert("status".into(), json!(status.name()));
            m.insert("byte_count".into(), json!(byte_count));
            m.insert("lower_address".into(), json!(lower_address));
            m.insert("bcm".into(), json!(bcm));
        }
        Body::Message {
            code,
            routing,
            fields,
        } => {
            m.insert("requester_id".into(), json!(repr.requester.to_string()));
            m.insert("tag".into(), json!(repr.tag));
            m.insert("message_code".into(), json!(code.byte()));
            if routing == MsgRouting::ById {
                m.insert(
                    "target_id".into(),
                    json!(Bdf(u16::from_be_bytes([fields[0], fields[1]])).to_string()),
                );
            }
            if let Some(a) = repr.address() {
                m.insert("address".into(), json!(format!("{a:#018x}")));
            }
        }
        Body::Config {
            target,
            register,
            first_be,
            last_be,
            ..
        } => {
            m.insert("requester_id".into(), json!(repr.requester.to_string()));
            m.insert("tag".into(), json!(repr.tag));
            m.insert("first_be".into(), json!(first_be));
            m.insert("last_be".into(), json!(last_be));
            m.insert("bus".into(), json!(target.bus()));
            m.insert("device".into(), json!(target.device()));
            m.insert("function".into(), json!(target.function()));
            m.insert("register".into(), json!(register));
        }
        Body::Memory {
            first_be,
            last_be,
            address,
            ph,
            ..
        } => {
            m.insert("requester_id".into(), json!(repr.requester.to_string()));
            m.insert("tag".into(), json!(repr.tag));
            m.insert("first_be".into(), json!(first_be));
            m.insert("last_be".into(), json!(last_be));
            m.insert("address".into(), json!(format!("{address:#018x}")));
            if repr.th {
                m.insert("ph".into(), json!(ph));
                m.insert("steering_tag".into(), json!(view.steering_tag()));
            }
        }
        Body::Io {
            first_be,
            last_be,
            address,
            ..
        } => {
            m.insert("requester_id".into(), json!(repr.requester.to_string()));
            m.insert("tag".into(), json!(repr.tag));
            m.insert("first_be".into(), json!(first_be));
            m.insert("last_be".into(), json!(last_be));
            m.insert("address".into(), json!(format!("{:#018x}", address as u64)));
        }
    }
    if !repr.payload.is_empty() {
        m.insert("payload".into(), json!(hex::encode(repr.payload)));
    }
    if let Digest::Value(d) = repr.digest {
        m.insert("ecrc".into(), json!(hex::encode(&d)));
        m.insert("ecrc_ok".into(), json!(view.ecrc_ok()));
    }
    if !repr.prefixes.is_empty() {
        let p: Vec<String> = repr.prefixes.iter().map(|d| format!("{d:08x}")).collect();
        m.insert("prefixes".into(), json!(p));
    }
    Value::Object(m)
}

fn encode(a: &EncodeArgs, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    match build(a) {
        Ok((bytes, warning)) => {
            if let Some(w) = warning {
                let _ = writeln!(err, "warning: a completer would reject this TLP: {w}");
            }
            let _ = writeln!(out, "{}", hex::encode_dws(&bytes));
            0
        }
        Err(why) => {
            let _ = writeln!(err, "error: {why}");
            EXIT_USAGE
        }
    }
}

/// Builds the TLP; returns its bytes and, if the completer profile would reject
/// it, why (encode still prints it: crafting malformed TLPs is a use).
fn build(a: &EncodeArgs) -> Result<(Vec<u8>, Option<String>), String> {
    let kind = a.kind;
    let data = match &a.data {
        Some(text) => hex::parse(text).map_err(|e| format!("--data: {e}"))?,
        None => Vec::new(),
    };
    if kind.has_data() {
        if data.is_empty() && a.length.is_none() {
            return Err(format!("{kind} carries data: give --data HEX"));
        }
        if data.len() % 4 != 0 {
            return Err(format!(
                "--data must be a whole number of DWs (4 bytes each), got {} bytes",
                data.len()
            ));
        }
    } else if !data.is_empty() {
        return Err(format!("{kind} carries no data; drop --data"));
    }
    let length = match (a.length, kind.has_data()) {
        (Some(0), _) => return Err("--length must be 1..=1024 DW".into()),
        (Some(l), true) if l as usize * 4 != data.len() => {
            return Err(format!(
                "--length {l} DW does not match --data ({} bytes)",
                data.len()
            ))
        }
        (Some(l), _) => l as u16,
        (None, true) => (data.len() / 4) as u16,
        (None, false) if kind.length_is_reserved() => 1024, // the reserved field stays 0
        (None, false) => 1,
    };
    if data.len() > 4096 {
        return Err(format!(
            "--data is {} bytes; a TLP carries at most 4096",
            data.len()
        ));
    }
    let needs_routing = kind.is_message();
    let routing = match (a.routing, needs_routing) {
        (Some(r), _) => r,
        (None, true) => MessageCode::from_byte(a.code as u8)
            .required_routing()
            .unwrap_or(MsgRouting::Local),
        (None, false) => MsgRouting::ToRoot,
    };
    let mut prefix_bytes = Vec::new();
    for p in &a.prefixes {
        let bytes = hex::parse(p).map_err(|e| format!("--prefix: {e}"))?;
        if bytes.len() != 4 {
            return Err("--prefix must be exactly one DW (8 hex digits)".into());
        }
        prefix_bytes.extend_from_slice(&bytes);
    }
    let prefixes = tlp::Prefixes::new(&prefix_bytes).map_err(|e| {
        format!("--prefix: each must have Fmt 100b (first hex digit 8 or 9), at most {} in all and {} End-End: {e}", tlp::MAX_PREFIXES, tlp::MAX_END_END_PREFIXES)
    })?;
    let mut r = Repr::new(kind, routing, &data);
    r.prefixes = prefixes;
    r.length_dw = length;
    r.tc = a.tc as u8;
    r.attr = Attr(a.attr as u8);
    r.at = a.at as u8;
    r.ep = a.ep;
    r.th = a.th;
    r.ln = a.ln;
    r.tag = a.tag as u16;
    r.requester = a.requester;
    r.digest = if a.td {
        Digest::Compute
    } else {
        Digest::Absent
    };
    let first_be = a.first_be.unwrap_or(0xf) as u8;
    let last_be = a
        .last_be
        .map(|v| v as u8)
        .unwrap_or(if length > 1 { 0xf } else { 0 });
    let needs_address = match r.body {
        Body::Memory { .. } | Body::Io { .. } => true,
        Body::Message { routing, .. } => routing == MsgRouting::ByAddress,
        _ => false,
    };
    let address = match a.address {
        Some(address) => address,
        None if needs_address => {
            return Err(
                "--address is required for a memory, I/O or atomic request, or a \
                        message routed by address"
                    .into(),
            )
        }
        None => 0,
    };
    if a.register & 0x3 != 0 || a.register > 0xffc {
        return Err(format!(
            "--register {:#x} must be DW aligned and at most 0xffc (a configuration request \
             names a DW of the 4 KiB space)",
            a.register
        ));
    }
    if address & 0x3 != 0 {
        return Err(format!(
            "--address {address:#x} must be DW aligned (the low two bits carry PH)"
        ));
    }
    r.body = match r.body {
        Body::Memory { op, .. } => Body::Memory {
            op,
            first_be,
            last_be,
            address,
            long: a.long || address > u32::MAX as u64,
            ph: a.ph as u8,
        },
        Body::Io { write, .. } => Body::Io {
            write,
            first_be,
            last_be,
            address: u32::try_from(address)
                .map_err(|_| format!("I/O addresses are 32-bit; {address:#x} is not"))?,
        },
        Body::Config { write, type1, .. } => Body::Config {
            write,
            type1,
            first_be,
            last_be,
            target: a.target.unwrap_or_default(),
            register: a.register as u16,
        },
        Body::Message { routing, .. } => {
            let mut fields = [0u8; 8];
            match routing {
                MsgRouting::ByAddress => fields = address.to_be_bytes(),
                MsgRouting::ById => {
                    fields[..2].copy_from_slice(&a.target.unwrap_or_default().0.to_be_bytes())
                }
                _ => {}
            }
            Body::Message {
                routing,
                code: MessageCode::from_byte(a.code as u8),
                fields,
            }
        }
        Body::Completion { locked, .. } => {
            let byte_count = match a.byte_count {
                Some(0) => return Err("--byte-count must be 1..=4096".into()),
                Some(n) => n as u16,
                None if !data.is_empty() => data.len() as u16,
                None => 4,
            };
            Body::Completion {
                locked,
                completer: a.completer,
                status: a.status,
                bcm: a.bcm,
                byte_count,
                lower_address: a.lower_address as u8,
            }
        }
    };
    let mut buf = vec![0u8; r.buffer_len()];
    r.emit(&mut buf).map_err(|e| e.to_string())?;
    let warning = tlp::parse(&buf, &Validator::default())
        .err()
        .map(|e| e.to_string());
    Ok((buf, warning))
}

#[cfg(test)]
mod tests {

    fn cli(args: &[&str], stdin: &str) -> (i32, String, String) {
        crate::run_captured(args, stdin)
    }

    #[test]
    fn decode_stdin_goes_on_past_overlong_and_non_utf8_lines() {
        const GOOD: &[u8] = b"0a000000 01002004 00001100\n";
        let mut input = GOOD.to_vec();
        // A line of zeros far past any TLP (as `< /dev/zero` gives), one
        // just over the bound ending exactly where a read may stop, bytes
        // that are not UTF-8, bad hex, then a good TLP again.
        input.extend(std::iter::repeat_n(b'0', 10 * super::MAX_LINE));
        input.push(b'\n');
        input.extend(std::iter::repeat_n(b'1', super::MAX_LINE + 1));
        input.push(b'\n');
        input.extend(b"\xff\xfe 0a\n0a0x\n");
        input.extend(GOOD);
        let (code, out, err) = crate::run_captured_bytes(&["tlp", "decode", "-"], &input);
        assert_eq!(code, 1, "{err}");
        assert_eq!(out.lines().count(), 2, "both good TLPs decoded: {out}");
        for expected in [
            "error: line 2: longer than",
            "error: line 3: longer than",
            "error: line 4: not UTF-8 text (byte 0 is not): skipped",
            "error: TLP 2 (line 5): bad hex",
        ] {
            assert!(err.contains(expected), "{expected:?} in {err}");
        }
        assert_eq!(err.lines().count(), 4, "{err}");
        // A line of exactly the bound is read whole (and is bad hex here).
        let mut input = vec![b'z'; super::MAX_LINE];
        input.push(b'\n');
        let (_, _, err) = crate::run_captured_bytes(&["tlp", "decode", "-"], &input);
        assert!(err.contains("error: TLP 1 (line 1): bad hex"), "{err}");
    }

    #[test]
    fn decode_text() {
        let (code, out, _) = cli(
            &[
                "tlp",
                "decode",
                "60000002 0100 05ff 00000010 00000040 01020304 05060708",
            ],
            "",
        );
        assert_eq!(code, 0);
        assert_eq!(
            out.trim(),
            "MWr64 len=2 req=01:00.0 tag=0x05 addr=0x0000001000000040 fbe=0xf lbe=0xf data=0102030405060708"
        );
    }

    #[test]
    fn decode_json_keys() {
        let (code, out, _) = cli(
            &["tlp", "decode", "--json", "04000001 0000090f 03250104"],
            "",
        );
        assert_eq!(code, 0);
        let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
        assert_eq!(v["kind"], "CfgRd0");
        assert_eq!(v["fmt"], 0);
        assert_eq!(v["type"], 4);
        assert_eq!(v["header_dw"], 3);
        assert_eq!(v["routing"], "id");
        assert_eq!(v["class"], "non_posted");
        assert_eq!(v["requester_id"], "00:00.0");
        assert_eq!(v["tag"], 9);
        assert_eq!(
            (
                v["bus"].as_u64(),
                v["device"].as_u64(),
                v["function"].as_u64()
            ),
            (Some(3), Some(4), Some(5))
        );
        assert_eq!(v["register"], 0x104);
        assert_eq!(v["first_be"], 15);
        assert_eq!(v["last_be"], 0);
        assert!(v.get("payload").is_none());
    }

    #[test]
    fn errors_name_the_rule_and_others_still_decode() {
        let (code, out, err) = cli(
            &[
                "tlp",
                "decode",
                "00000002 000000ff 00001ffc",
                "0a000000 01002004 00001100",
            ],
            "",
        );
        assert_eq!(code, 1);
        assert!(
            err.contains("TLP 1") && err.contains("4 KiB") && err.contains("byte 8"),
            "{err}"
        );
        assert!(out.starts_with("Cpl "), "{out}");
        // The switch profile forwards what a completer would reject.
        let (code, _, _) = cli(
            &[
                "tlp",
                "decode",
                "--profile",
                "switch",
                "00000002 000000ff 00001ffc",
            ],
            "",
        );
        assert_eq!(code, 0);
    }

    #[test]
    fn encode_refuses_what_it_would_silently_change() {
        for (args, expected) in [
            (
                &[
                    "--kind",
                    "CfgRd0",
                    "--target",
                    "01:00.0",
                    "--register",
                    "0x3",
                ][..],
                "--register 0x3 must be DW aligned",
            ),
            (
                &[
                    "--kind",
                    "CfgWr0",
                    "--register",
                    "0x1000",
                    "--data",
                    "00000000",
                ],
                "at most 0xffc",
            ),
            (&["--kind", "MRd"], "--address is required"),
            (
                &["--kind", "IOWr", "--data", "00000000"],
                "--address is required",
            ),
        ] {
            let mut argv = vec!["tlp", "encode"];
            argv.extend_from_slice(args);
            let (code, out, err) = cli(&argv, "");
            assert_eq!(code, 2, "{args:?}: {out}{err}");
            assert!(err.contains(expected), "{args:?}: {err}");
            assert!(out.is_empty(), "{args:?}: {out}");
        }
        // An aligned register is encoded as given.
        let (code, out, err) = cli(
            &[
                "tlp",
                "encode",
                "--kind",
                "CfgRd0",
                "--target",
                "01:00.0",
                "--register",
                "0xffc",
            ],
            "",
        );
        assert_eq!(code, 0, "{err}");
        let (_, decoded, _) = cli(&["tlp", "decode", "--json", out.trim()], "");
        let v: serde_json::Value = serde_json::from_str(&decoded).unwrap();
        assert_eq!(v["register"], 0xffc);
    }

    #[test]
    fn usage_errors_exit_2() {
        assert_eq!(cli(&["tlp", "decode"], "").0, 2);
        assert_eq!(cli(&["tlp", "decode", "--mps", "100", "00"], "").0, 2);
        assert_eq!(cli(&["tlp", "encode", "--kind", "Bogus"], "").0, 2);
        assert_eq!(cli(&["tlp", "encode", "--kind", "MWr"], "").0, 2);
        assert_eq!(
            cli(
                &["tlp", "encode", "--kind", "MRd", "--address", "0x1001"],
                ""
            )
            .0,
            2
        );
    }

    #[test]
    fn mps_is_enforced() {
        let mut tlp = String::from("40000040 000000ff 00000000");
        tlp.push_str(&"00".repeat(256));
        let (code, _, err) = cli(&["tlp", "decode", "--mps", "128", &tlp], "");
        assert_eq!(code, 1);
        assert!(err.contains("Max_Payload_Size"), "{err}");
    }

    #[test]
    fn encode_picks_format_and_byte_enables() {
        let (code, out, _) = cli(
            &[
                "tlp",
                "encode",
                "--kind",
                "MRd",
                "--address",
                "0x100000000",
                "--length",
                "2",
                "--tag",
                "5",
            ],
            "",
        );
        assert_eq!(code, 0);
        assert_eq!(out.trim(), "20000002 000005ff 00000001 00000000");
        let (_, out, _) = cli(&["tlp", "encode", "--kind", "Msg", "--code", "0x20"], "");
        assert_eq!(
            out.trim(),
            "34000000 00000020 00000000 00000000",
            "Assert_INTA defaults to local routing"
        );
    }
}
