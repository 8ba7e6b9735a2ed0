//! Hex text in and out.

use std::fmt::Write;

/// Why a hex string did not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HexError {
    /// A character that is not a hex digit, separator or `0x`, at this character index.
    BadChar(char, usize),
    /// An odd number of hex digits.
    OddDigits(usize),
    /// Nothing but separators.
    Empty,
}

impl std::fmt::Display for HexError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HexError::BadChar(c, i) => write!(f, "not a hex digit: {c:?} at character {i}"),
            HexError::OddDigits(n) => {
                write!(f, "odd number of hex digits ({n}): bytes need two each")
            }
            HexError::Empty => f.write_str("no hex digits"),
        }
    }
}

/// Parses hex bytes. Whitespace, `:`, `_`, `,` and `-` separate groups; each
/// group may start with `0x`.
pub fn parse(text: &str) -> Result<Vec<u8>, HexError> {
    let mut nibbles = Vec::with_capacity(text.len());
    let mut start = 0;
    let is_sep = |c: char| c.is_whitespace() || matches!(c, ':' | '_' | ',' | '-');
    for group in text.split(is_sep) {
        let offset = start;
        start += group.len() + 1;
        let digits = group
            .strip_prefix("0x")
            .or_else(|| group.strip_prefix("0X"))
            .unwrap_or(group);
        let skipped = group.len() - digits.len();
        for (i, c) in digits.char_indices() {
            let v = c
                .to_digit(16)
                .ok_or(HexError::BadChar(c, offset + skipped + i))?;
            nibbles.push(v as u8);
        }
    }
    if nibbles.is_empty() {
        return Err(HexError::Empty);
    }
    if nibbles.len() % 2 != 0 {
        return Err(HexError::OddDigits(nibbles.len()));
    }
    Ok(nibbles.chunks_exact(2).map(|p| p[0] << 4 | p[1]).collect())
}

/// Lowercase hex, no separators.
pub fn encode(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Lowercase hex, one space between DWs.
pub fn encode_dws(bytes: &[u8]) -> String {
    bytes.chunks(4).map(encode).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separators_and_prefixes() {
        assert_eq!(
            parse("0x40000001 0x0100000f"),
            Ok(vec![0x40, 0, 0, 1, 1, 0, 0, 0x0f])
        );
        assert_eq!(parse("40:00:00:01"), Ok(vec![0x40, 0, 0, 1]));
        assert_eq!(parse("  4A 00\t00 01 "), Ok(vec![0x4a, 0, 0, 1]));
    }

    #[test]
    fn errors() {
        assert_eq!(parse("40 0g"), Err(HexError::BadChar('g', 4)));
        assert_eq!(parse("400"), Err(HexError::OddDigits(3)));
        assert_eq!(parse(" : "), Err(HexError::Empty));
    }

    #[test]
    fn round_trip() {
        let b = [0xde, 0xad, 0xbe, 0xef, 0x01];
        assert_eq!(parse(&encode(&b)), Ok(b.to_vec()));
        assert_eq!(encode_dws(&b), "deadbeef 01");
    }
}
