//! Header builders for the TLPs that traffic generators emit most: memory
//! reads and writes and completions, with TC 0, no attributes, no prefixes and
//! no digest. They take a handful of arguments instead of a whole [`Repr`],
//! so emitting one costs a few stores; anything else goes through
//! [`Repr::emit`], which they match byte for byte.
//!
//! [`Repr`]: crate::Repr
//! [`Repr::emit`]: crate::Repr::emit

use crate::bdf::Bdf;
use crate::error::EmitError;
use crate::kind::{CplStatus, Kind, MsgRouting};
use crate::repr::{Body, Repr};

/// A memory request's addressing: where, how many DW, which bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemAccess {
    /// DW-aligned address; a 4 DW header is used above 4 GiB.
    pub address: u64,
    /// Length in DW, 1..=1024.
    pub length_dw: u16,
    /// First DW byte enables.
    pub first_be: u8,
    /// Last DW byte enables (0 for 1 DW).
    pub last_be: u8,
}

impl MemAccess {
    /// Whole DWs: all bytes enabled.
    pub fn dwords(address: u64, length_dw: u16) -> MemAccess {
        MemAccess {
            address,
            length_dw,
            first_be: 0xf,
            last_be: if length_dw > 1 { 0xf } else { 0 },
        }
    }
}

#[inline(always)]
fn put(buf: &mut [u8], dws: [u32; 4], n: usize) -> Result<(), EmitError> {
    let Some(out) = buf.get_mut(..n * 4) else {
        return Err(EmitError::BufferTooSmall {
            needed: n * 4,
            available: buf.len(),
        });
    };
    out[0..4].copy_from_slice(&dws[0].to_be_bytes());
    out[4..8].copy_from_slice(&dws[1].to_be_bytes());
    out[8..12].copy_from_slice(&dws[2].to_be_bytes());
    if let Some(last) = out.get_mut(12..16) {
        last.copy_from_slice(&dws[3].to_be_bytes());
    }
    Ok(())
}

#[inline(always)]
fn memory(
    buf: &mut [u8],
    with_data: bool,
    requester: Bdf,
    tag: u16,
    access: MemAccess,
    payload: &[u8],
) -> Result<usize, EmitError> {
    let MemAccess {
        address,
        length_dw,
        first_be,
        last_be,
    } = access;
    if length_dw == 0 || length_dw > 1024 {
        return Err(EmitError::Length(length_dw));
    }
    if address & 0x3 != 0 {
        return Err(EmitError::AddressAlignment(address));
    }
    let long = address > u32::MAX as u64;
    let tag = tag as u32;
    let dw0 = (with_data as u32) << 30
        | (long as u32) << 29
        | ((tag >> 9) & 1) << 23
        | ((tag >> 8) & 1) << 19
        | (length_dw as u32 & 0x3ff);
    let dw1 = (requester.0 as u32) << 16
        | (tag & 0xff) << 8
        | (last_be as u32 & 0xf) << 4
        | (first_be as u32 & 0xf);
    let (dw2, dw3, hdr) = if long {
        ((address >> 32) as u32, address as u32, 16)
    } else {
        (address as u32, 0, 12)
    };
    let data = if with_data { length_dw as usize * 4 } else { 0 };
    if payload.len() != data {
        return Err(EmitError::PayloadLength {
            expected: data,
            actual: payload.len(),
        });
    }
    if buf.len() < hdr + data {
        return Err(EmitError::BufferTooSmall {
            needed: hdr + data,
            available: buf.len(),
        });
    }
    put(buf, [dw0, dw1, dw2, dw3], hdr / 4)?;
    if with_data {
        buf[hdr..hdr + data].copy_from_slice(payload);
    }
    Ok(hdr + data)
}

/// Writes an MRd header (3 or 4 DW by address) into `buf`; returns its length.
#[inline]
pub fn memory_read(
    buf: &mut [u8],
    requester: Bdf,
    tag: u16,
    access: MemAccess,
) -> Result<usize, EmitError> {
    memory(buf, false, requester, tag, access, &[])
}

/// Writes an MWr with `payload` (Length × 4 bytes) into `buf`; returns its length.
#[inline]
pub fn memory_write(
    buf: &mut [u8],
    requester: Bdf,
    tag: u16,
    access: MemAccess,
    payload: &[u8],
) -> Result<usize, EmitError> {
    memory(buf, true, requester, tag, access, payload)
}

/// Writes a configuration request of one DW into `buf`: `kind` one of
/// CfgRd0/CfgWr0/CfgRd1/CfgWr1, DW-aligned `register` (a byte offset) of
/// `target`, every byte enabled, `data` the DW written (empty for a read).
/// Returns its length.
pub fn config_request(
    buf: &mut [u8],
    kind: Kind,
    requester: Bdf,
    tag: u16,
    target: Bdf,
    register: u16,
    data: &[u8],
) -> Result<usize, EmitError> {
    let mut repr = Repr::new(kind, MsgRouting::Local, data);
    repr.requester = requester;
    repr.tag = tag;
    if let Body::Config {
        target: t,
        register: r,
        first_be,
        ..
    } = &mut repr.body
    {
        *t = target;
        *r = register;
        *first_be = 0xf;
    }
    repr.emit(buf)
}

/// What a completion says about the request it completes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CplFields {
    /// The completer.
    pub completer: Bdf,
    /// The requester it returns to.
    pub requester: Bdf,
    /// The request's tag.
    pub tag: u16,
    /// Completion Status.
    pub status: CplStatus,
    /// Bytes left to return, this completion's included (1..=4096).
    pub byte_count: u16,
    /// Lower Address\[6:0\].
    pub lower_address: u8,
}

/// The Byte Count of a memory read's first (or only) completion: the bytes
/// the read asks for (§2.2.9): a 1 DW read by its First DW BE (1 when no
/// byte is enabled), a longer one its whole DWs less the bytes disabled at
/// either end.
pub const fn read_byte_count(length_dw: u16, first_be: u8, last_be: u8) -> u16 {
    let first_be = first_be & 0xf;
    if length_dw == 1 {
        return if first_be == 0 {
            1
        } else {
            (8 - first_be.leading_zeros() - first_be.trailing_zeros()) as u16
        };
    }
    let lead = if first_be == 0 {
        4
    } else {
        first_be.trailing_zeros() as u16
    };
    let last_be = last_be & 0xf;
    let trail = if last_be == 0 {
        4
    } else {
        last_be.leading_zeros() as u16 - 4
    };
    (length_dw * 4).saturating_sub(lead + trail)
}

/// The Lower Address of a memory read's first completion (§2.2.9): the
/// address of its first enabled byte, bits 6:0.
pub const fn read_lower_address(address: u64, first_be: u8) -> u8 {
    let skip = if first_be & 0xf == 0 {
        0
    } else {
        (first_be & 0xf).trailing_zeros() as u8
    };
    (address as u8 & 0x7c) + skip
}

/// Writes a Cpl (empty `payload`) or CplD into `buf`; returns its length.
#[inline]
pub fn completion(buf: &mut [u8], fields: CplFields, payload: &[u8]) -> Result<usize, EmitError> {
    let CplFields {
        completer,
        requester,
        tag,
        status,
        byte_count,
        lower_address,
    } = fields;
    let data = payload.len();
    if !data.is_multiple_of(4) || data > 4096 {
        return Err(EmitError::PayloadLength {
            expected: data.next_multiple_of(4).min(4096),
            actual: data,
        });
    }
    let tag = tag as u32;
    let dw0 = ((data != 0) as u32) << 30
        | 0x0a << 24
        | ((tag >> 9) & 1) << 23
        | ((tag >> 8) & 1) << 19
        | ((data / 4) as u32 & 0x3ff);
    let dw1 =
        (completer.0 as u32) << 16 | (status.bits() as u32) << 13 | (byte_count as u32 & 0xfff);
    let dw2 = (requester.0 as u32) << 16 | (tag & 0xff) << 8 | (lower_address as u32 & 0x7f);
    if buf.len() < 12 + data {
        return Err(EmitError::BufferTooSmall {
            needed: 12 + data,
            available: buf.len(),
        });
    }
    put(buf, [dw0, dw1, dw2, 0], 3)?;
    if data != 0 {
        buf[12..12 + data].copy_from_slice(payload);
    }
    Ok(12 + data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configuration_requests_carry_target_register_and_data() {
        let mut b = [0u8; 32];
        let n = config_request(
            &mut b,
            Kind::CfgWr0,
            Bdf(0x0100),
            7,
            Bdf(0x4001),
            0x3c,
            &[1, 2, 3, 4],
        )
        .unwrap();
        let t = crate::Tlp::new_checked(&b[..n]).unwrap();
        assert_eq!(t.kind(), Some(Kind::CfgWr0));
        assert_eq!(
            (t.requester_id(), t.tag(), t.target_id()),
            (Bdf(0x0100), 7, Bdf(0x4001))
        );
        assert_eq!((t.register(), t.first_be()), (0x3c, 0xf));
        assert_eq!(t.payload(), [1, 2, 3, 4]);
        let n = config_request(&mut b, Kind::CfgRd1, Bdf(0x0100), 8, Bdf(0x0500), 0, &[]).unwrap();
        assert_eq!(n, 12);
    }

    #[test]
    fn read_byte_counts_follow_the_byte_enables() {
        for (be, n) in [
            (0b1111, 4),
            (0b0110, 2),
            (0b1001, 4),
            (0b0001, 1),
            (0b1000, 1),
            (0, 1),
        ] {
            assert_eq!(read_byte_count(1, be, 0), n, "{be:04b}");
        }
        assert_eq!(read_byte_count(2, 0b1111, 0b1111), 8);
        assert_eq!(read_byte_count(2, 0b1110, 0b0111), 6);
        assert_eq!(read_byte_count(3, 0b1000, 0b0001), 6);
        assert_eq!(read_byte_count(1024, 0b1111, 0b1111), 4096);
        assert_eq!(read_lower_address(0x1004, 0b1100), 0x06);
        assert_eq!(read_lower_address(0x10fc, 0), 0x7c);
    }
    use crate::{Body, Digest, Kind, MemOp, MsgRouting, Repr};

    fn via_repr(
        kind: Kind,
        requester: Bdf,
        tag: u16,
        access: MemAccess,
        payload: &[u8],
    ) -> Vec<u8> {
        let mut r = Repr::new(kind, MsgRouting::ToRoot, payload);
        r.requester = requester;
        r.tag = tag;
        r.length_dw = access.length_dw;
        let op = if kind == Kind::MWr {
            MemOp::Write
        } else {
            MemOp::Read
        };
        r.body = Body::Memory {
            op,
            first_be: access.first_be,
            last_be: access.last_be,
            address: access.address,
            long: access.address > u32::MAX as u64,
            ph: 0,
        };
        r.digest = Digest::Absent;
        let mut out = vec![0u8; r.buffer_len()];
        r.emit(&mut out).unwrap();
        out
    }

    #[test]
    fn memory_builders_match_repr_emit() {
        let mut buf = [0u8; 64];
        for (address, length) in [(0x1000u64, 1u16), (0xfffffff0, 4), (0x1_2345_6780, 2)] {
            let access = MemAccess::dwords(address, length);
            let n = memory_read(&mut buf, Bdf(0x0102), 0x2a5, access).unwrap();
            assert_eq!(
                &buf[..n],
                via_repr(Kind::MRd, Bdf(0x0102), 0x2a5, access, &[]).as_slice()
            );
            let data: Vec<u8> = (0..length as u8 * 4).collect();
            let n = memory_write(&mut buf, Bdf(0x0300), 7, access, &data).unwrap();
            assert_eq!(
                &buf[..n],
                via_repr(Kind::MWr, Bdf(0x0300), 7, access, &data).as_slice()
            );
        }
    }

    #[test]
    fn completion_matches_repr_emit() {
        let mut buf = [0u8; 64];
        let f = CplFields {
            completer: Bdf(0x0400),
            requester: Bdf(0x0100),
            tag: 0x305,
            status: CplStatus::Sc,
            byte_count: 8,
            lower_address: 0x40,
        };
        for payload in [&[][..], &[1, 2, 3, 4, 5, 6, 7, 8][..]] {
            let n = completion(&mut buf, f, payload).unwrap();
            let kind = if payload.is_empty() {
                Kind::Cpl
            } else {
                Kind::CplD
            };
            let mut r = Repr::new(kind, MsgRouting::ToRoot, payload);
            r.requester = f.requester;
            r.tag = f.tag;
            r.length_dw = if payload.is_empty() {
                1024
            } else {
                (payload.len() / 4) as u16
            };
            r.body = Body::Completion {
                locked: false,
                completer: f.completer,
                status: f.status,
                bcm: false,
                byte_count: f.byte_count,
                lower_address: f.lower_address,
            };
            let mut expect = vec![0u8; r.buffer_len()];
            r.emit(&mut expect).unwrap();
            assert_eq!(&buf[..n], expect.as_slice());
        }
    }

    #[test]
    fn builders_refuse_what_they_cannot_build() {
        let mut small = [0u8; 8];
        let access = MemAccess::dwords(0x1000, 1);
        assert!(matches!(
            memory_read(&mut small, Bdf(0), 0, access),
            Err(EmitError::BufferTooSmall { .. })
        ));
        let mut buf = [0u8; 64];
        assert_eq!(
            memory_read(&mut buf, Bdf(0), 0, MemAccess::dwords(0x1002, 1)),
            Err(EmitError::AddressAlignment(0x1002))
        );
        assert_eq!(
            memory_read(&mut buf, Bdf(0), 0, MemAccess::dwords(0, 0)),
            Err(EmitError::Length(0))
        );
        assert!(matches!(
            memory_write(&mut buf, Bdf(0), 0, MemAccess::dwords(0, 2), &[0; 4]),
            Err(EmitError::PayloadLength {
                expected: 8,
                actual: 4
            })
        ));
        assert!(matches!(
            completion(
                &mut buf,
                CplFields {
                    completer: Bdf(0),
                    requester: Bdf(0),
                    tag: 0,
                    status: CplStatus::Sc,
                    byte_count: 3,
                    lower_address: 0,
                },
                &[1, 2, 3]
            ),
            Err(EmitError::PayloadLength { .. })
        ));
    }
}
