//! CRC-32C (Castagnoli: reflected polynomial 0x82F6_3B78, seed and final
//! XOR all ones), the check of every fabric frame.
//!
//! The `crc32c` crate runs the CPU's CRC32 instruction over buffers shorter
//! than 768 bytes as one chain: each instruction waits ~3 cycles for the one
//! before, so a 700-byte frame costs ~260 cycles though the CPU could start
//! one every cycle. Here, on x86-64 with SSE4.2 and PCLMULQDQ, a buffer of
//! 64 bytes or more runs as three chains over its three thirds at once; the
//! thirds' registers are then joined by shifting each over the bytes after
//! it, a multiplication by x^(8n) mod P done with one carry-less multiply and
//! one CRC32 instruction (the method of Intel's "Fast CRC Computation for
//! iSCSI Polynomial Using CRC32 Instruction"). Elsewhere, under Miri, and
//! for short buffers, the `crc32c` crate computes it.
#![warn(missing_docs)]
// The x86-64 path uses CPU intrinsics; each unsafe call names what it
// relies on.
#![allow(unsafe_code)]

/// CRC-32C of `bytes`.
#[inline]
pub fn crc32c(bytes: &[u8]) -> u32 {
    #[cfg(all(target_arch = "x86_64", not(miri)))]
    if bytes.len() >= x86::MIN_LEN && x86::supported() {
        // SAFETY: `supported` found SSE4.2 and PCLMULQDQ on this CPU, the
        // features `three_way` is compiled for.
        return unsafe { x86::three_way(bytes) };
    }
    ::crc32c::crc32c(bytes)
}

/// The register (no final XOR) after `n` zero bytes, from `reg`: bit by
/// bit, the definition the fast shift is checked against.
#[cfg(test)]
fn shift_slow(mut reg: u32, n: usize) -> u32 {
    for _ in 0..8 * n {
        reg = (reg >> 1) ^ if reg & 1 != 0 { POLY } else { 0 };
    }
    reg
}

/// The reflected polynomial.
#[cfg_attr(any(not(target_arch = "x86_64"), miri), allow(dead_code))]
const POLY: u32 = 0x82f6_3b78;

/// x^e mod P, reflected (bit 31 is x^0).
#[cfg_attr(any(not(target_arch = "x86_64"), miri), allow(dead_code))]
fn x_pow_mod(e: u64) -> u32 {
    let mut v = 0x8000_0000u32;
    for _ in 0..e {
        v = (v >> 1) ^ if v & 1 != 0 { POLY } else { 0 };
    }
    v
}

#[cfg(all(target_arch = "x86_64", not(miri)))]
mod x86 {
    use std::arch::x86_64::{
        _mm_clmulepi64_si128, _mm_crc32_u64, _mm_crc32_u8, _mm_cvtsi128_si64, _mm_set_epi64x,
    };
    use std::sync::OnceLock;

    /// Shorter buffers gain too little to pay for the joins.
    pub(crate) const MIN_LEN: usize = 64;
    /// Longest third with a precomputed shift: jumbo frames (9,000-byte
    /// MTU) and then some; longer buffers go to the `crc32c` crate, whose
    /// own three-way path covers them.
    const MAX_THIRD_WORDS: usize = 1024;

    pub(crate) fn supported() -> bool {
        std::is_x86_feature_detected!("sse4.2") && std::is_x86_feature_detected!("pclmulqdq")
    }

    /// Per third of k words (index k), the constant that shifts a register
    /// over 8k bytes, and over 16k: x^(64k - 33) and x^(128k - 33) mod P.
    fn shifts() -> &'static [(u64, u64)] {
        static TABLE: OnceLock<Vec<(u64, u64)>> = OnceLock::new();
        TABLE.get_or_init(|| {
            // Built by repeated multiplication by x^64: x^(64k - 33) for each
            // k from the one before.
            let mut out = vec![(0, 0); MAX_THIRD_WORDS + 1];
            let x64 = super::x_pow_mod(64);
            let mut single = super::x_pow_mod(64 - 33);
            let mut double = super::x_pow_mod(128 - 33);
            let x128 = super::x_pow_mod(128);
            for entry in out.iter_mut().skip(1) {
                *entry = (u64::from(single), u64::from(double));
                single = mul_mod(single, x64);
                double = mul_mod(double, x128);
            }
            out
        })
    }

    /// a·b mod P for reflected 32-bit polynomials, bit by bit (table
    /// building only).
    fn mul_mod(a: u32, b: u32) -> u32 {
        // Horner over b's coefficients from x^31 (bit 0) down to x^0 (bit 31).
        let mut acc = 0u32;
        for i in 0..32 {
            // acc *= x
            acc = (acc >> 1) ^ if acc & 1 != 0 { super::POLY } else { 0 };
            if b & (1 << i) != 0 {
                acc ^= a;
            }
        }
        acc
    }

    /// `reg` shifted over the bytes `k` stands for.
    #[inline]
    #[target_feature(enable = "sse4.2,pclmulqdq")]
    fn shift(reg: u32, k: u64) -> u32 {
        let product = _mm_clmulepi64_si128(
            _mm_set_epi64x(0, i64::from(reg)),
            _mm_set_epi64x(0, k as i64),
            0x00,
        );
        _mm_crc32_u64(0, _mm_cvtsi128_si64(product) as u64) as u32
    }

    /// The CRC-32C of `bytes` (at least `MIN_LEN` long) in three chains.
    ///
    /// # Safety
    ///
    /// The CPU has SSE4.2 and PCLMULQDQ.
    #[target_feature(enable = "sse4.2,pclmulqdq")]
    pub(crate) unsafe fn three_way(bytes: &[u8]) -> u32 {
        let k = bytes.len() / 24;
        if k > MAX_THIRD_WORDS {
            return ::crc32c::crc32c(bytes);
        }
        let (a, rest) = bytes.split_at(8 * k);
        let (b, rest) = rest.split_at(8 * k);
        let (c, tail) = rest.split_at(8 * k);
        let word = |w: &[u8]| u64::from_le_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]);
        let (mut ra, mut rb, mut rc) = (u64::from(!0u32), 0u64, 0u64);
        for ((wa, wb), wc) in a
            .chunks_exact(8)
            .zip(b.chunks_exact(8))
            .zip(c.chunks_exact(8))
        {
            ra = _mm_crc32_u64(ra, word(wa));
            rb = _mm_crc32_u64(rb, word(wb));
            rc = _mm_crc32_u64(rc, word(wc));
        }
        let (single, double) = shifts()[k];
        let mut reg = u64::from(shift(ra as u32, double) ^ shift(rb as u32, single) ^ rc as u32);
        let mut words = tail.chunks_exact(8);
        for w in words.by_ref() {
            reg = _mm_crc32_u64(reg, word(w));
        }
        let mut reg = reg as u32;
        for &byte in words.remainder() {
            reg = _mm_crc32_u8(reg, byte);
        }
        !reg
    }

    #[cfg(test)]
    pub(crate) fn shift_checked(reg: u32, words: usize) -> Option<u32> {
        // SAFETY: `supported` found both features the function needs.
        supported().then(|| unsafe { shift_entry(reg, words) })
    }

    /// # Safety
    ///
    /// The CPU has SSE4.2 and PCLMULQDQ.
    #[cfg(test)]
    #[target_feature(enable = "sse4.2,pclmulqdq")]
    unsafe fn shift_entry(reg: u32, words: usize) -> u32 {
        shift(reg, shifts()[words].0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn check_value() {
        assert_eq!(crc32c(b"123456789"), 0xe306_9283);
    }

    #[test]
    fn x_to_the_powers_follow_the_polynomial() {
        assert_eq!(x_pow_mod(0), 0x8000_0000);
        assert_eq!(x_pow_mod(31), 1);
        // x^32 ≡ P's low terms.
        assert_eq!(x_pow_mod(32), POLY);
    }

    #[cfg(all(target_arch = "x86_64", not(miri)))]
    #[test]
    fn the_fast_shift_is_a_shift_over_zero_bytes() {
        for (reg, words) in [
            (1u32, 1usize),
            (0xdead_beef, 7),
            (0xffff_ffff, 29),
            (0x1234_5678, 300),
        ] {
            if let Some(fast) = x86::shift_checked(reg, words) {
                assert_eq!(
                    fast,
                    shift_slow(reg, 8 * words),
                    "{reg:#x} over {words} words"
                );
            }
        }
    }

    #[test]
    fn agrees_with_the_crate_at_every_length_up_to_a_jumbo_frame() {
        let bytes: Vec<u8> = (0..9200u32).map(|i| (i * 131 + i / 7) as u8).collect();
        for len in (0..300).chain((300..9200).step_by(37)) {
            for start in [0, 1, 5] {
                let s = &bytes[start..start + len.min(bytes.len() - start)];
                assert_eq!(crc32c(s), ::crc32c::crc32c(s), "{len} from {start}");
            }
        }
    }

    proptest! {
        #[test]
        fn agrees_with_the_crate_on_any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..2000)) {
            prop_assert_eq!(crc32c(&bytes), ::crc32c::crc32c(&bytes));
        }
    }
}
