//! The fabric: how TLPs travel between switch nodes.
//!
//! - [`topology`]: the fabric read and checked from TOML, with the layout of
//!   its own address and ID space;
//! - [`node`]: a node's routing tables and [`NodeTables::forward`], which
//!   validates sources, enforces access control, translates between a host's
//!   domain and the fabric, and routes; [`routing`] holds the lookup
//!   structures and the epoch swap that publishes new routes between bursts;
//! - [`frame`]: the encapsulation frame; [`link`]: the reliable link over it
//!   (sequence numbers, ACK/NAK, replay, credits); [`faults`]: seeded fault
//!   injection for links;
//! - [`walk`]: the whole fabric's tables and a walk that follows one TLP
//!   through them, for tests and tools.
//!
//! `docs/fabric.md` explains the design and records what it costs.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod crc32c;
pub mod faults;
pub mod frame;
pub mod link;
pub mod node;
pub mod routing;
pub mod topology;
pub mod walk;

pub use crc32c::crc32c;
pub use faults::{FaultConfig, FaultConfigError, Faults, Wire};
pub use frame::{crc_of, Flags, Frame, FrameError, FrameHeader, FrameWriter, OpenFrame};
pub use link::{Link, LinkConfig, LinkStats, Received, SendError};
pub use node::{Action, Ingress, NodeState, NodeTables, PortKind, Refusal};
pub use topology::{Completion, ConfigError, IdMode, Paths, Topology};
pub use walk::{Attachment, Fabric, Outcome};

#[cfg(test)]
mod proptests {
    use crate::frame::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 4096, ..ProptestConfig::default() })]

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            if let Ok(f) = Frame::new_checked(&bytes[..], ETHERTYPE) {
                let n: usize = f.tlps().map(|t| t.len() + 2).sum();
                prop_assert_eq!(HEADER_LEN + n + CRC_LEN, f.len());
            }
        }

        #[test]
        fn written_frames_read_back(tlps in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 12..80), 0..20),
                                    seq in any::<u32>(), ack in any::<u32>(), flip in any::<(u16, u8)>()) {
            let mut buf = vec![0u8; 1514];
            let header = FrameHeader { sequence: seq, ack, ..FrameHeader::default() };
            let mut w = FrameWriter::new(&mut buf, &header, DEFAULT_MTU).unwrap();
            let mut written = Vec::new();
            for t in &tlps {
                if w.push(t).is_ok() {
                    written.push(t.clone());
                }
            }
            let n = w.finish();
            let f = Frame::new_checked(&buf[..n], ETHERTYPE).unwrap();
            prop_assert_eq!((f.sequence(), f.ack()), (seq, ack));
            prop_assert_eq!(f.tlps().map(|t| t.to_vec()).collect::<Vec<_>>(), written);
            // Any single corrupted byte past the addresses is caught; the
            // addresses are the link's to set.
            let (at, x) = flip;
            let x = x | 1;
            let i = at as usize % n;
            buf[i] ^= x;
            prop_assert_eq!(Frame::new_checked(&buf[..n], ETHERTYPE).is_err(), i >= CRC_FROM);
        }
    }
}
