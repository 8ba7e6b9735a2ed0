//! CRC-32C (Castagnoli), the frame check of fabric frames: reflected
//! polynomial 0x82F6_3B78, seed and final XOR all ones (as iSCSI and ext4 use
//! it). The `castagnoli` crate computes it with the CPU's CRC32 instruction,
//! three chains at once on x86-64; every frame sent and received is checked
//! whole, so this is the link's largest per-byte cost.

/// CRC-32C of `bytes`.
#[inline]
pub fn crc32c(bytes: &[u8]) -> u32 {
    castagnoli::crc32c(bytes)
}

#[cfg(test)]
mod tests {
    use tlp::ecrc::{reflected_table, reflected_update};

    #[test]
    fn check_value() {
        // The catalogued check value of CRC-32C over "123456789".
        assert_eq!(super::crc32c(b"123456789"), 0xe306_9283);
    }

    #[test]
    fn agrees_with_the_bitwise_definition() {
        // A plain table-driven CRC of the same parameters, over lengths that
        // exercise the accelerated path's alignment and tail handling.
        let table = reflected_table(0x82f6_3b78);
        let bytes: Vec<u8> = (0..4099u32).map(|i| (i * 7 + i / 13) as u8).collect();
        for len in [0, 1, 7, 8, 9, 63, 64, 65, 1500, 4099] {
            for start in [0, 1, 3] {
                let s = &bytes[start.min(len)..len];
                assert_eq!(
                    super::crc32c(s),
                    !reflected_update(&table, !0, s),
                    "{len} {start}"
                );
            }
        }
    }
}
