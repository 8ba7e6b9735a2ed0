//! Virtual device instantiations (VDIs): the fabric's own copy of an
//! endpoint function's software-visible interface. While a binding moves, a
//! VDI completes the traffic it supports (configuration requests, reads and
//! writes of shadowable registers, the MSI-X table) so that traffic sees no
//! blackout; what needs the device is held at the pause point. When the move
//! completes it tells the destination host and elects pass-through again.
//!
//! - [`config`]: the configuration space with the access rules of every bit,
//!   capability walks, BAR sizing;
//! - [`registers`]: BAR registers and their access classes;
//! - [`msix`]: the MSI-X table and pending bits;
//! - [`template`]: endpoint templates from `configs/templates/`;
//! - [`lspci`]: configuration spaces from `lspci -xxx`/`-xxxx` dumps;
//! - [`Vdi`]: serving TLPs, generating interrupts and messages, snapshots;
//! - [`sync`]: reading a physical function's state through TLPs, and writing
//!   the shadowed state back before pass-through.
//!
//! ```
//! use tlp::Bdf;
//! use vdi::config::{BarSizes, ConfigSpace};
//!
//! let dump = vdi::lspci::parse(include_str!("../../../configs/devices/virtio-net.lspci")).unwrap();
//! let mut sizes = BarSizes::default();
//! sizes.bars[1] = Some(0x1000);
//! let mut config = ConfigSpace::new(&dump.bytes, sizes).unwrap();
//! // Size probing: write all ones to BAR 1, read back the size mask.
//! config.write(0x14, 0xf, [0xff; 4]);
//! assert_eq!(u32::from_le_bytes(config.read(0x14)), 0xffff_f000);
//! assert_eq!(config.msix().unwrap().table_size, 3);
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod config;
pub mod lspci;
pub mod msix;
pub mod registers;
mod state;
pub mod sync;
pub mod template;
mod vdi;

pub use state::{Layout, VdiState, SNAPSHOT_VERSION};
pub use template::{Template, TemplateError};
pub use vdi::{CompletionSignal, Mode, SnapshotError, Vdi, VdiStats, Verdict};
