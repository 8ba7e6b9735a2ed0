//! CRC-32C (Castagnoli: reflected polynomial 0x82F6_3B78, seed and final
//! XOR all ones), the check of every fabric frame.
//!
//! The `crc32c` crate runs the CPU's CRC32 instruction over buffers shorter
//! than 768 bytes as one chain: each instruction waits ~3 cycles for the one
//! before, so a 700-byte frame costs ~260 cycles though the CPU could start
//! one every cycle. Here, on x86-64 with SSE4.2 and PCLMULQDQ, a buffer of
//! 192 bytes or more runs as three chains over its three thirds at once; the
//! thirds' registers are then joined by shifting each over the bytes after
//! it, a multiplication by x^(8n) mod P done with one carry-less multiply and
//! one CRC32 instruction (the method of Intel's "Fast CRC Computation for
//! iSCSI Polynomial Using CRC32 Instruction"). Where the CPU also has
//! AVX-512 and VPCLMULQDQ, buffers of 256 bytes or more fold instead: four
//! 128-bit lanes per carry-less multiply, two 512-bit registers in flight,
//! about 32 bytes a cycle against the CRC32 instruction's 8 (a frame of
//! eight 64-byte writes: 19 ns against 29). Shorter buffers (a frame of
//! one small TLP) run as one chain with 4-, 2- and 1-byte steps at the end:
//! in the dataplane the chain's latency hides behind the work on the frame,
//! and one chain takes fewer instructions than three and their join (one
//! 64-byte write per frame: +7% frames/s). Elsewhere, under Miri, and below
//! 64 bytes, the `crc32c` crate computes it.
#![warn(missing_docs)]
// The x86-64 path uses CPU intrinsics; each unsafe call names what it
// relies on.
#![allow(unsafe_code)]

/// CRC-32C of `bytes`.
#[inline]
pub fn crc32c(bytes: &[u8]) -> u32 {
    #[cfg(all(target_arch = "x86_64", not(miri)))]
    if bytes.len() >= x86::MIN_LEN {
        let level = x86::level();
        if level < x86::CRC32 {
            return ::crc32c::crc32c(bytes);
        }
        if bytes.len() >= x86::MIN_FOLD_LEN && level >= x86::FOLD {
            // SAFETY: the level says the CPU has SSE4.2, PCLMULQDQ,
            // AVX-512F and VPCLMULQDQ: the features `fold` is compiled for.
            return unsafe { x86::fold(bytes) };
        }
        if bytes.len() < x86::MIN_THREE_WAY_LEN {
            // SAFETY: the level says the CPU has SSE4.2, the feature
            // `one_chain` is compiled for.
            return unsafe { x86::one_chain(bytes) };
        }
        // SAFETY: the level says the CPU has SSE4.2 and PCLMULQDQ, the
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
        _mm_clmulepi64_si128, _mm_crc32_u16, _mm_crc32_u32, _mm_crc32_u64, _mm_crc32_u8,
        _mm_cvtsi128_si64, _mm_set_epi64x,
    };
    use std::sync::atomic::{AtomicU8, Ordering};
    use std::sync::OnceLock;

    /// Shorter buffers gain too little to pay for the joins.
    pub(crate) const MIN_LEN: usize = 64;
    /// Longest third with a precomputed shift: jumbo frames (9,000-byte
    /// MTU) and then some; longer buffers go to the `crc32c` crate, whose
    /// own three-way path covers them.
    const MAX_THIRD_WORDS: usize = 1024;

    /// [`level`]: the CPU has neither path's instructions.
    pub(crate) const NONE: u8 = 1;
    /// [`level`]: SSE4.2 (CRC32) and PCLMULQDQ.
    pub(crate) const CRC32: u8 = 2;
    /// [`level`]: those and AVX-512F with VPCLMULQDQ, for folding.
    pub(crate) const FOLD: u8 = 3;

    /// The CPU's level, found once (0 until then). One load per frame
    /// instead of the standard library's check per feature, which cost
    /// nine instructions for the two the short path needs.
    static LEVEL: AtomicU8 = AtomicU8::new(0);

    /// What this CPU can run: [`NONE`], [`CRC32`] or [`FOLD`].
    #[inline(always)]
    pub(crate) fn level() -> u8 {
        match LEVEL.load(Ordering::Relaxed) {
            0 => detect(),
            level => level,
        }
    }

    #[cold]
    #[inline(never)]
    fn detect() -> u8 {
        let crc32 =
            std::is_x86_feature_detected!("sse4.2") && std::is_x86_feature_detected!("pclmulqdq");
        let fold =
            std::is_x86_feature_detected!("avx512f") && std::is_x86_feature_detected!("vpclmulqdq");
        let level = match (crc32, fold) {
            (false, _) => NONE,
            (true, false) => CRC32,
            (true, true) => FOLD,
        };
        // Every thread finds the same: a race stores the same value twice.
        LEVEL.store(level, Ordering::Relaxed);
        level
    }

    #[cfg(test)]
    pub(crate) fn supported() -> bool {
        level() >= CRC32
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

    /// Below this, one chain: fewer instructions than three chains and
    /// their join, and the latency of the chain is hidden behind the work
    /// on the frame that follows it.
    pub(crate) const MIN_THREE_WAY_LEN: usize = 192;

    /// The CRC-32C of `bytes` in one chain of CRC32 instructions.
    ///
    /// # Safety
    ///
    /// The CPU has SSE4.2.
    #[target_feature(enable = "sse4.2")]
    pub(crate) unsafe fn one_chain(bytes: &[u8]) -> u32 {
        let word = |w: &[u8]| u64::from_le_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]);
        let mut reg = u64::from(!0u32);
        let (blocks, mut rest) = bytes.as_chunks::<32>();
        for b in blocks {
            reg = _mm_crc32_u64(reg, word(&b[..8]));
            reg = _mm_crc32_u64(reg, word(&b[8..16]));
            reg = _mm_crc32_u64(reg, word(&b[16..24]));
            reg = _mm_crc32_u64(reg, word(&b[24..]));
        }
        // What is left (under 32 bytes) in 16-, 8-, 4-, 2- and 1-byte
        // steps: straight-line, where a loop of 8-byte steps took four
        // instructions a word.
        if let Some((w, tail)) = rest.split_first_chunk::<16>() {
            reg = _mm_crc32_u64(reg, word(&w[..8]));
            reg = _mm_crc32_u64(reg, word(&w[8..]));
            rest = tail;
        }
        if let Some((w, tail)) = rest.split_first_chunk::<8>() {
            reg = _mm_crc32_u64(reg, u64::from_le_bytes(*w));
            rest = tail;
        }
        let mut reg = reg as u32;
        if let Some((w, tail)) = rest.split_first_chunk::<4>() {
            reg = _mm_crc32_u32(reg, u32::from_le_bytes(*w));
            rest = tail;
        }
        if let Some((w, tail)) = rest.split_first_chunk::<2>() {
            reg = _mm_crc32_u16(reg, u16::from_le_bytes(*w));
            rest = tail;
        }
        if let Some(&b) = rest.first() {
            reg = _mm_crc32_u8(reg, b);
        }
        !reg
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

    /// Buffers this long or longer fold 512 bits at a time where the CPU
    /// can: below it the three chains are as fast.
    pub(crate) const MIN_FOLD_LEN: usize = 256;

    /// Whether the CPU folds with 512-bit carry-less multiplies.
    #[cfg(test)]
    pub(crate) fn folds() -> bool {
        level() >= FOLD
    }

    /// The constants that carry a 128-bit lane `d` bits further on: x^(d+31)
    /// for its low quadword (the earlier 64 bits, the higher powers) and
    /// x^(d-33) for its high one, mod P. A carry-less product of reflected
    /// operands is the true product times x, and a 32-bit remainder in the
    /// low half of a reflected quadword stands for itself times x^32; the
    /// two offsets undo both.
    fn fold_constants(d: u64) -> (u64, u64) {
        (
            u64::from(super::x_pow_mod(d + 31)),
            u64::from(super::x_pow_mod(d - 33)),
        )
    }

    /// The constants, computed once: 512 and 1,024 bits for the 512-bit
    /// registers; 384, 256 and 128 bits to fold their lanes into one.
    fn fold_table() -> &'static [(u64, u64); 5] {
        static TABLE: OnceLock<[(u64, u64); 5]> = OnceLock::new();
        TABLE.get_or_init(|| [512, 1024, 384, 256, 128].map(fold_constants))
    }

    /// The CRC-32C of `bytes` (at least `MIN_FOLD_LEN` long), folding
    /// 64-byte blocks with 512-bit carry-less multiplies (the method of
    /// Intel's "Fast CRC Computation for Generic Polynomials Using
    /// PCLMULQDQ Instruction", four lanes at a time).
    ///
    /// The bytes before the last whole blocks run through CRC32
    /// instructions from the seed while the blocks fold from a zero
    /// register; the first register is then shifted over the blocks and
    /// the two added (the CRC register is linear in what follows it).
    ///
    /// # Safety
    ///
    /// The CPU has SSE4.2, PCLMULQDQ, AVX-512F and VPCLMULQDQ.
    #[target_feature(enable = "sse4.2,pclmulqdq,avx512f,vpclmulqdq")]
    pub(crate) unsafe fn fold(bytes: &[u8]) -> u32 {
        use std::arch::x86_64::{
            __m512i, _mm512_castsi512_si128, _mm512_clmulepi64_epi128, _mm512_extracti32x4_epi32,
            _mm512_loadu_si512, _mm512_set_epi64, _mm512_ternarylogic_epi64, _mm_clmulepi64_si128,
            _mm_extract_epi64, _mm_set_epi64x, _mm_xor_si128,
        };
        let (head, body) = bytes.split_at(bytes.len() % 64);
        let (body, _) = body.as_chunks::<64>();
        let blocks = body.len();
        if !(2..=8 * MAX_THIRD_WORDS).contains(&blocks) {
            // SAFETY: the caller found the features `three_way` needs too.
            return unsafe { three_way(bytes) };
        }
        let table = fold_table();
        let pair = |(lo, hi): (u64, u64)| {
            _mm512_set_epi64(
                hi as i64, lo as i64, hi as i64, lo as i64, hi as i64, lo as i64, hi as i64,
                lo as i64,
            )
        };
        let (k512, k1024) = (pair(table[0]), pair(table[1]));
        let load = |i: usize| -> __m512i {
            let block: &[u8; 64] = &body[i];
            // SAFETY: the load reads the 64 bytes of `block`, at any
            // alignment.
            unsafe { _mm512_loadu_si512(block.as_ptr().cast()) }
        };
        // acc·x^d + next, per 128-bit lane: XOR of three.
        let carry = |acc: __m512i, k: __m512i, next: __m512i| {
            let lo = _mm512_clmulepi64_epi128(acc, k, 0x00);
            let hi = _mm512_clmulepi64_epi128(acc, k, 0x11);
            _mm512_ternarylogic_epi64(lo, hi, next, 0x96)
        };
        // Two registers, even and odd blocks, each carried two blocks on.
        // (Four, each carried four blocks on and joined in one step, ran
        // 8-13% slower at 698-1,500 bytes on a Zen 4 core: the multiplies'
        // throughput bounds the fold there, not their latency.)
        let (mut even, mut odd) = (load(0), load(1));
        let mut i = 2;
        while i + 1 < blocks {
            even = carry(even, k1024, load(i));
            odd = carry(odd, k1024, load(i + 1));
            i += 2;
        }
        let mut acc = carry(even, k512, odd);
        if i < blocks {
            acc = carry(acc, k512, load(i));
        }
        // Four lanes into one: each carried over the lanes after it.
        let lane_carry = |lane: std::arch::x86_64::__m128i, (lo, hi): (u64, u64)| {
            let k = _mm_set_epi64x(hi as i64, lo as i64);
            _mm_xor_si128(
                _mm_clmulepi64_si128(lane, k, 0x00),
                _mm_clmulepi64_si128(lane, k, 0x11),
            )
        };
        let folded = _mm_xor_si128(
            _mm_xor_si128(
                lane_carry(_mm512_castsi512_si128(acc), table[2]),
                lane_carry(_mm512_extracti32x4_epi32(acc, 1), table[3]),
            ),
            _mm_xor_si128(
                lane_carry(_mm512_extracti32x4_epi32(acc, 2), table[4]),
                _mm512_extracti32x4_epi32(acc, 3),
            ),
        );
        let body_reg = _mm_crc32_u64(
            _mm_crc32_u64(0, _mm_extract_epi64(folded, 0) as u64),
            _mm_extract_epi64(folded, 1) as u64,
        ) as u32;
        // The bytes before the blocks, from the seed.
        let mut words = head.chunks_exact(8);
        let mut reg = u64::from(!0u32);
        for w in words.by_ref() {
            reg = _mm_crc32_u64(
                reg,
                u64::from_le_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]),
            );
        }
        let mut head_reg = reg as u32;
        for &byte in words.remainder() {
            head_reg = _mm_crc32_u8(head_reg, byte);
        }
        // Shifted over the blocks: 8 words each.
        let mut words = 8 * blocks;
        let shifts = shifts();
        while words > 0 {
            let k = words.min(MAX_THIRD_WORDS);
            head_reg = shift(head_reg, shifts[k].0);
            words -= k;
        }
        !(head_reg ^ body_reg)
    }

    #[cfg(test)]
    pub(crate) fn fold_checked(bytes: &[u8]) -> Option<u32> {
        // SAFETY: the features `fold` needs were all found.
        (supported() && folds() && bytes.len() >= MIN_FOLD_LEN).then(|| unsafe { fold(bytes) })
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
    #[cfg(all(target_arch = "x86_64", not(miri)))]
    fn the_level_found_once_is_what_the_cpu_reports() {
        let crc32 =
            std::is_x86_feature_detected!("sse4.2") && std::is_x86_feature_detected!("pclmulqdq");
        let fold =
            std::is_x86_feature_detected!("avx512f") && std::is_x86_feature_detected!("vpclmulqdq");
        let level = x86::level();
        assert_eq!(x86::supported(), crc32);
        assert_eq!(x86::folds(), crc32 && fold);
        assert_eq!(x86::level(), level, "the second look agrees with the first");
        assert_ne!(level, 0, "0 only means not yet looked");
    }

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

    #[cfg(all(target_arch = "x86_64", not(miri)))]
    #[test]
    fn folding_agrees_with_the_crate_at_every_length_it_takes() {
        let bytes: Vec<u8> = (0..20_000u32).map(|i| (i * 151 + i / 5) as u8).collect();
        let mut checked = 0;
        for len in (x86::MIN_FOLD_LEN..1200).chain((1200..20_000).step_by(61)) {
            let s = &bytes[3..3 + len.min(bytes.len() - 3)];
            if let Some(folded) = x86::fold_checked(s) {
                assert_eq!(folded, ::crc32c::crc32c(s), "{len}");
                checked += 1;
            }
        }
        assert!(checked > 0 || !(x86::supported() && x86::folds()));
    }

    proptest! {
        #[test]
        fn agrees_with_the_crate_on_any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..2000)) {
            prop_assert_eq!(crc32c(&bytes), ::crc32c::crc32c(&bytes));
        }
    }
}
