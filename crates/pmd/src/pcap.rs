//! Captures in the classic pcap format (Ethernet link type), for a
//! [`crate::TracePort`] to write and any packet tool to read.

use std::io::{self, Write};

/// The magic of a capture with microsecond timestamps.
const MAGIC_MICROS: u32 = 0xa1b2_c3d4;
/// The magic of a capture with nanosecond timestamps.
const MAGIC_NANOS: u32 = 0xa1b2_3c4d;

/// Why a capture could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PcapError {
    /// Shorter than the 24-byte global header.
    NoHeader,
    /// Not a little-endian classic pcap (this magic instead).
    Magic(u32),
    /// The record at this byte offset runs past the end of the file.
    Truncated {
        /// Where the record starts.
        at: usize,
    },
}

impl std::fmt::Display for PcapError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PcapError::NoHeader => f.write_str("shorter than a pcap header (24 bytes)"),
            PcapError::Magic(m) => write!(
                f,
                "magic {m:#010x}: expected a little-endian classic pcap (0xa1b2c3d4 or 0xa1b23c4d)"
            ),
            PcapError::Truncated { at } => write!(f, "the record at byte {at} runs past the end"),
        }
    }
}

impl std::error::Error for PcapError {}

/// The frames of a classic little-endian pcap file (what [`PcapWriter`]
/// writes), as kept in it.
pub fn frames(bytes: &[u8]) -> Result<Vec<Vec<u8>>, PcapError> {
    let magic = bytes.get(..4).ok_or(PcapError::NoHeader)?;
    let magic = u32::from_le_bytes([magic[0], magic[1], magic[2], magic[3]]);
    if bytes.len() < 24 {
        return Err(PcapError::NoHeader);
    }
    if magic != MAGIC_MICROS && magic != MAGIC_NANOS {
        return Err(PcapError::Magic(magic));
    }
    let mut out = Vec::new();
    let mut at = 24;
    while at < bytes.len() {
        let kept = bytes
            .get(at + 8..at + 12)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
            .ok_or(PcapError::Truncated { at })?;
        let frame = at
            .checked_add(16 + kept)
            .and_then(|end| bytes.get(at + 16..end))
            .ok_or(PcapError::Truncated { at })?;
        out.push(frame.to_vec());
        at += 16 + kept;
    }
    Ok(out)
}

/// Writes a pcap file: the global header, then one record per frame.
#[derive(Debug)]
pub struct PcapWriter<W: Write> {
    out: W,
    snaplen: u32,
}

impl<W: Write> PcapWriter<W> {
    /// Starts a capture of frames cut to `snaplen` bytes.
    pub fn new(out: W, snaplen: u32) -> io::Result<PcapWriter<W>> {
        PcapWriter::start(out, MAGIC_MICROS, snaplen)
    }

    /// Starts a capture with nanosecond timestamps, of frames cut to
    /// `snaplen` bytes.
    pub fn new_nanos(out: W, snaplen: u32) -> io::Result<PcapWriter<W>> {
        PcapWriter::start(out, MAGIC_NANOS, snaplen)
    }

    fn start(mut out: W, magic: u32, snaplen: u32) -> io::Result<PcapWriter<W>> {
        out.write_all(&magic.to_le_bytes())?;
        out.write_all(&2u16.to_le_bytes())?; // version 2.4
        out.write_all(&4u16.to_le_bytes())?;
        out.write_all(&0i32.to_le_bytes())?;
        out.write_all(&0u32.to_le_bytes())?;
        out.write_all(&snaplen.to_le_bytes())?;
        out.write_all(&1u32.to_le_bytes())?; // LINKTYPE_ETHERNET
        Ok(PcapWriter { out, snaplen })
    }

    /// Appends one frame of a nanosecond capture, seen at `nanos`
    /// nanoseconds since the epoch: its first bytes (at most the snap
    /// length), and its length on the wire.
    pub fn write_nanos(&mut self, nanos: u64, frame: &[u8], wire_len: usize) -> io::Result<()> {
        let (secs, fraction) = (nanos / 1_000_000_000, nanos % 1_000_000_000);
        self.record(secs, fraction, frame, wire_len)
    }

    /// Appends one frame seen at `micros` microseconds.
    pub fn write(&mut self, micros: u64, frame: &[u8]) -> io::Result<()> {
        self.record(micros / 1_000_000, micros % 1_000_000, frame, frame.len())
    }

    fn record(
        &mut self,
        secs: u64,
        fraction: u64,
        frame: &[u8],
        wire_len: usize,
    ) -> io::Result<()> {
        let kept = frame.len().min(self.snaplen as usize);
        self.out.write_all(&(secs as u32).to_le_bytes())?;
        self.out.write_all(&(fraction as u32).to_le_bytes())?;
        self.out.write_all(&(kept as u32).to_le_bytes())?;
        self.out.write_all(&(wire_len as u32).to_le_bytes())?;
        self.out.write_all(&frame[..kept])
    }

    /// The writer, flushed.
    pub fn finish(mut self) -> io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_follow_the_global_header() {
        let mut w = PcapWriter::new(Vec::new(), 4).unwrap();
        w.write(1_500_000, &[1, 2, 3, 4, 5, 6]).unwrap();
        let b = w.finish().unwrap();
        assert_eq!(b.len(), 24 + 16 + 4);
        assert_eq!(&b[..4], &[0xd4, 0xc3, 0xb2, 0xa1]);
        assert_eq!(u32::from_le_bytes(b[24..28].try_into().unwrap()), 1);
        assert_eq!(u32::from_le_bytes(b[28..32].try_into().unwrap()), 500_000);
        assert_eq!(&b[32..40], &[4, 0, 0, 0, 6, 0, 0, 0]);
        assert_eq!(&b[40..], &[1, 2, 3, 4]);
    }

    #[test]
    fn what_is_written_reads_back_and_broken_files_are_typed_errors() {
        let mut w = PcapWriter::new_nanos(Vec::new(), 8).unwrap();
        w.write_nanos(1_000_000_007, &[1; 4], 4).unwrap();
        w.write_nanos(2_000_000_000, &[2; 12], 12).unwrap();
        let b = w.finish().unwrap();
        assert_eq!(frames(&b).unwrap(), [vec![1; 4], vec![2; 8]]);
        assert_eq!(
            u32::from_le_bytes(b[28..32].try_into().unwrap()),
            7,
            "nanoseconds"
        );
        assert_eq!(frames(&b[..10]), Err(PcapError::NoHeader));
        assert_eq!(
            frames(&b[..b.len() - 1]),
            Err(PcapError::Truncated { at: 44 })
        );
        let mut swapped = b.clone();
        swapped[..4].copy_from_slice(&0xa1b2_3c4du32.to_be_bytes());
        assert_eq!(frames(&swapped), Err(PcapError::Magic(0x4d3c_b2a1)));
        // Any bytes at all: an answer, never a panic.
        for n in 0..b.len() {
            let _ = frames(&b[..n]);
        }
    }
}
