//! Captures in the classic pcap format (Ethernet link type), for a
//! [`crate::TracePort`] to write and any packet tool to read.

use std::io::{self, Write};

/// Writes a pcap file: the global header, then one record per frame.
#[derive(Debug)]
pub struct PcapWriter<W: Write> {
    out: W,
    snaplen: u32,
}

impl<W: Write> PcapWriter<W> {
    /// Starts a capture of frames cut to `snaplen` bytes.
    pub fn new(mut out: W, snaplen: u32) -> io::Result<PcapWriter<W>> {
        out.write_all(&0xa1b2_c3d4u32.to_le_bytes())?; // microsecond timestamps
        out.write_all(&2u16.to_le_bytes())?;
        out.write_all(&4u16.to_le_bytes())?;
        out.write_all(&0i32.to_le_bytes())?;
        out.write_all(&0u32.to_le_bytes())?;
        out.write_all(&snaplen.to_le_bytes())?;
        out.write_all(&1u32.to_le_bytes())?; // LINKTYPE_ETHERNET
        Ok(PcapWriter { out, snaplen })
    }

    /// Starts a capture with nanosecond timestamps (the pcap magic
    /// 0xa1b23c4d), of frames cut to `snaplen` bytes.
    pub fn new_nanos(mut out: W, snaplen: u32) -> io::Result<PcapWriter<W>> {
        out.write_all(&0xa1b2_3c4du32.to_le_bytes())?;
        out.write_all(&2u16.to_le_bytes())?;
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
        let kept = frame.len().min(self.snaplen as usize);
        self.out
            .write_all(&((nanos / 1_000_000_000) as u32).to_le_bytes())?;
        self.out
            .write_all(&((nanos % 1_000_000_000) as u32).to_le_bytes())?;
        self.out.write_all(&(kept as u32).to_le_bytes())?;
        self.out.write_all(&(wire_len as u32).to_le_bytes())?;
        self.out.write_all(&frame[..kept])
    }

    /// Appends one frame seen at `micros` microseconds.
    pub fn write(&mut self, micros: u64, frame: &[u8]) -> io::Result<()> {
        let kept = frame.len().min(self.snaplen as usize);
        self.out
            .write_all(&((micros / 1_000_000) as u32).to_le_bytes())?;
        self.out
            .write_all(&((micros % 1_000_000) as u32).to_le_bytes())?;
        self.out.write_all(&(kept as u32).to_le_bytes())?;
        self.out.write_all(&(frame.len() as u32).to_le_bytes())?;
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
}
