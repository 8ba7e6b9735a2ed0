//! Configuration spaces from `lspci -xxx` (256 bytes) and `lspci -xxxx`
//! (4096 bytes) text: a header line `BB:DD.F description`, then lines of
//! `offset: 16 hex bytes`. Indented lines (the decoded fields `-v` adds) are
//! skipped, so `lspci -vvxxxx` output loads too; only the first device of
//! the text is read. Offsets not listed read as zero.

use core::fmt;

/// One device's configuration space from a dump.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dump {
    /// The header line: location and description.
    pub header: String,
    /// 256 or 4096 bytes (what the dump did not list reads as zero).
    pub bytes: Vec<u8>,
    /// How many bytes the dump had: up to the last byte it listed.
    pub len: usize,
}

/// Why a dump did not load: the line (1-based) and what was wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DumpError {
    /// Line number, from 1.
    pub line: usize,
    /// What was wrong and what was expected.
    pub message: String,
}

impl fmt::Display for DumpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for DumpError {}

/// The first word of `text`, at most 16 characters of it, quoted: an error
/// says what it found without echoing a line of whatever file it was given.
fn token(text: &str) -> String {
    let word = text.split_whitespace().next().unwrap_or("");
    let short: String = word.chars().take(16).collect();
    if short.len() < word.len() {
        format!("{short:?}...")
    } else {
        format!("{short:?}")
    }
}

/// Reads the first device of an `lspci -xxx`/`-xxxx` dump.
pub fn parse(text: &str) -> Result<Dump, DumpError> {
    let mut header: Option<String> = None;
    let mut bytes = vec![0u8; 4096];
    let mut seen = vec![false; 256];
    let mut end = 0usize;
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let err = |message: String| DumpError { line, message };
        if raw.trim().is_empty() {
            if header.is_some() && end > 0 {
                break;
            }
            continue;
        }
        if raw.starts_with([' ', '\t']) {
            continue;
        }
        let Some((offset, rest)) = raw.split_once(':') else {
            return Err(err(format!(
                "expected \"offset: hex bytes\" or a device header, found {}",
                token(raw)
            )));
        };
        let offset = match usize::from_str_radix(offset.trim(), 16) {
            Ok(o) if header.is_some() => o,
            _ => {
                if header.is_some() {
                    if end > 0 {
                        // The next device's header: this dump is complete.
                        break;
                    }
                    return Err(err(format!(
                        "expected a hex offset, found {}",
                        token(offset)
                    )));
                }
                header = Some(raw.trim().to_string());
                continue;
            }
        };
        if offset % 16 != 0 || offset >= 4096 {
            return Err(err(format!(
                "expected an offset that is a multiple of 16 below 0x1000, found {offset:#x}"
            )));
        }
        if std::mem::replace(&mut seen[offset / 16], true) {
            return Err(err(format!("offset {offset:#x} appears twice")));
        }
        let values: Vec<&str> = rest.split_whitespace().collect();
        if values.is_empty() || values.len() > 16 {
            return Err(err(format!(
                "expected 1 to 16 hex bytes, found {}",
                values.len()
            )));
        }
        for (j, v) in values.iter().enumerate() {
            let b = u8::from_str_radix(v, 16)
                .ok()
                .filter(|_| v.len() == 2)
                .ok_or_else(|| err(format!("expected a 2-digit hex byte, found {}", token(v))))?;
            bytes[offset + j] = b;
        }
        end = end.max(offset + values.len());
    }
    let Some(header) = header else {
        return Err(DumpError {
            line: 1,
            message: "expected a device header line \"BB:DD.F description\"".into(),
        });
    };
    if end == 0 {
        return Err(DumpError {
            line: text.lines().count().max(1),
            message: "no configuration bytes after the header".into(),
        });
    }
    bytes.truncate(if end <= 256 { 256 } else { 4096 });
    Ok(Dump {
        header,
        bytes,
        len: end,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn reads_a_short_dump_and_skips_decoded_lines() {
        let text = "00:09.0 Ethernet controller: something\n\tControl: I/O+ Mem+\n00: f4 1a 00 10\n10: 01 02\n\n01:00.0 another\n00: ff ff\n";
        let d = parse(text).unwrap();
        assert_eq!(d.header, "00:09.0 Ethernet controller: something");
        assert_eq!(d.bytes.len(), 256);
        assert_eq!(&d.bytes[..4], &[0xf4, 0x1a, 0x00, 0x10]);
        assert_eq!(&d.bytes[0x10..0x12], &[1, 2]);
    }

    #[test]
    fn extended_offsets_make_a_4096_byte_space() {
        let d = parse("00:00.0 x\n00: 01\n100: 01 00 01 00\n").unwrap();
        assert_eq!(d.bytes.len(), 4096);
        assert_eq!(d.bytes[0x102], 1);
    }

    #[test]
    fn errors_name_the_line() {
        let e = parse("00:00.0 x\n00: 0g\n").unwrap_err();
        assert_eq!(
            (e.line, e.message.as_str()),
            (2, "expected a 2-digit hex byte, found \"0g\"")
        );
        let e = parse("00:00.0 x\n08: 00\n").unwrap_err();
        assert!(e.message.contains("multiple of 16"), "{e}");
        let e = parse("00:00.0 x\n00: 00\n00: 01\n").unwrap_err();
        assert_eq!(
            (e.line, e.message.as_str()),
            (3, "offset 0x0 appears twice")
        );
        assert!(parse("").is_err());
        assert!(parse("00:00.0 x\n")
            .unwrap_err()
            .message
            .contains("no configuration bytes"));
        let e = parse("00:00.0 x\n00: 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00\n")
            .unwrap_err();
        assert!(e.message.contains("1 to 16"), "{e}");
    }

    proptest! {
        #[test]
        fn arbitrary_text_never_panics(text in "[0-9a-fA-F: \\n\\t.x]{0,300}") {
            if let Ok(d) = parse(&text) {
                prop_assert!(d.bytes.len() == 256 || d.bytes.len() == 4096);
            }
        }
    }
}
