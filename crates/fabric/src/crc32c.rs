//! CRC-32C (Castagnoli), the frame check of fabric frames: reflected
//! polynomial 0x82F6_3B78, seed and final XOR all ones (as iSCSI and ext4 use it).

static TABLE: [u32; 256] = build();

const fn build() -> [u32; 256] {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u32;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x82f6_3b78
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

/// CRC-32C of `bytes`.
pub fn crc32c(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc = TABLE[((crc ^ b as u32) & 0xff) as usize] ^ (crc >> 8);
    }
    !crc
}

#[cfg(test)]
mod tests {
    #[test]
    fn check_value() {
        // The catalogued check value of CRC-32C over "123456789".
        assert_eq!(super::crc32c(b"123456789"), 0xe306_9283);
    }
}
