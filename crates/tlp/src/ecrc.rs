//! End-to-end CRC (ECRC, the TLP Digest), PCIe Base Specification 4.0 §2.7.1.
//!
//! The rules, and how they reduce to the common CRC-32:
//! - polynomial 04C1_1DB7h, seed FFFF_FFFFh, result complemented;
//! - the calculation starts with bit 0 of byte 0 and proceeds from bit 0 to
//!   bit 7 of each byte, which is the bit-reflected form of the polynomial
//!   (EDB8_8320h) shifting right — the same CRC that Ethernet and zlib compute;
//! - result bit *n* of the (unreflected) register maps to Digest bit 7−*n* of
//!   each byte in turn (the "Mapping of Bits into ECRC Field" table). Worked
//!   through, that places the CRC-32 value in the Digest least significant
//!   byte first, as Ethernet places its FCS;
//! - covered: every End-End TLP Prefix, the whole header and the payload.
//!   Local TLP Prefixes are not covered (a link may add or strip them);
//! - variant bits are taken as 1b: bit 0 of the Type field (a switch may turn a
//!   Type 1 configuration request into Type 0) and EP (any hop may poison).

// A `static`: a `const` table indexed at run time may be copied to the stack.
static TABLE: [u32; 256] = reflected_table(0xedb8_8320);

/// The byte-at-a-time lookup table of a reflected CRC-32 with polynomial
/// `poly` (given reflected, e.g. 0xEDB8_8320 for CRC-32, 0x82F6_3B78 for
/// CRC-32C). Built at compile time into a `static`.
pub const fn reflected_table(poly: u32) -> [u32; 256] {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u32;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ poly
            } else {
                crc >> 1
            };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
}

/// Feeds `bytes` into a reflected CRC register `crc` using `table`.
#[inline]
pub fn reflected_update(table: &[u32; 256], mut crc: u32, bytes: &[u8]) -> u32 {
    for &b in bytes {
        crc = table[((crc ^ b as u32) & 0xff) as usize] ^ (crc >> 8);
    }
    crc
}

/// A running CRC-32 (reflected, seed all ones) over byte slices.
#[derive(Debug, Clone, Copy)]
pub struct Crc32(u32);

impl Default for Crc32 {
    fn default() -> Self {
        Crc32(0xffff_ffff)
    }
}

impl Crc32 {
    /// Feeds bytes.
    #[inline]
    pub fn update(&mut self, bytes: &[u8]) {
        self.0 = reflected_update(&TABLE, self.0, bytes);
    }

    /// The complemented result.
    pub fn finish(self) -> u32 {
        !self.0
    }
}

/// Computes the ECRC of a TLP.
///
/// `end_end_prefixes` are the End-End prefix bytes (may be empty), `header` the
/// 3 or 4 DW header, `payload` the data (may be empty). Returns the four Digest
/// bytes in wire order.
pub fn compute(end_end_prefixes: &[u8], header: &[u8], payload: &[u8]) -> [u8; 4] {
    let mut crc = Crc32::default();
    crc.update(end_end_prefixes);
    if header.len() >= 3 {
        // Variant bits read as 1b: Type[0] in byte 0, EP (bit 6) in byte 2.
        crc.update(&[header[0] | 0x01, header[1], header[2] | 0x40]);
        crc.update(&header[3..]);
    } else {
        crc.update(header);
    }
    crc.update(payload);
    crc.finish().to_le_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_check_value() {
        // The catalogued check value of CRC-32 over "123456789".
        let mut crc = Crc32::default();
        crc.update(b"123456789");
        assert_eq!(crc.finish(), 0xcbf4_3926);
    }

    #[test]
    fn variant_bits_do_not_change_the_digest() {
        let header = [
            0x05u8, 0x00, 0x80, 0x01, 0x01, 0x00, 0x07, 0x0f, 0x02, 0x00, 0x00, 0x10,
        ];
        let a = compute(&[], &header, &[]);
        let mut type0 = header;
        type0[0] = 0x04; // CfgRd1 turned into CfgRd0 by a bridge
        type0[2] |= 0x40; // and poisoned on the way
        assert_eq!(compute(&[], &type0, &[]), a);
        let mut other = header;
        other[1] = 0x10; // TC is invariant
        assert_ne!(compute(&[], &other, &[]), a);
    }

    #[test]
    fn prefixes_and_payload_are_covered() {
        let header = [0x40u8, 0, 0x80, 1, 1, 0, 0, 0x0f, 0, 0, 0x10, 0];
        let plain = compute(&[], &header, &[1, 2, 3, 4]);
        assert_ne!(compute(&[0x91, 0, 0, 1], &header, &[1, 2, 3, 4]), plain);
        assert_ne!(compute(&[], &header, &[1, 2, 3, 5]), plain);
    }
}
