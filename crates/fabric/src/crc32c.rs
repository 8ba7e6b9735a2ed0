//! CRC-32C (Castagnoli), the frame check of fabric frames: reflected
//! polynomial 0x82F6_3B78, seed and final XOR all ones (as iSCSI and ext4 use it).

use tlp::ecrc::{reflected_table, reflected_update};

static TABLE: [u32; 256] = reflected_table(0x82f6_3b78);

/// CRC-32C of `bytes`.
pub fn crc32c(bytes: &[u8]) -> u32 {
    !reflected_update(&TABLE, !0, bytes)
}

#[cfg(test)]
mod tests {
    #[test]
    fn check_value() {
        // The catalogued check value of CRC-32C over "123456789".
        assert_eq!(super::crc32c(b"123456789"), 0xe306_9283);
    }
}
