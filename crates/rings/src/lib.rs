//! Rings, credits and pause points: how the fabric moves TLPs between cores
//! and how it holds a moving binding's traffic without losing, duplicating or
//! reordering any of it.
//!
//! - [`spsc`]: the lock-free single-producer single-consumer burst ring every
//!   port and core-to-core queue is built on.
//! - [`credits`]: PCIe flow-control credits per class.
//! - [`pause`]: the pause point state machine (open, draining, closed,
//!   releasing, abort).
//!
//! `unsafe` is confined to [`spsc`], where each block states the invariant it
//! relies on; the ring's protocol is model-checked with loom
//! (`RUSTFLAGS="--cfg loom" cargo test -p rings --test loom --release`) and its
//! tests run under Miri.
//!
//! ```
//! use rings::{ring, Direction, IdMode, Offer, PauseConfig, PausePoint, Pausable, TlpInfo};
//! use std::time::{Duration, Instant};
//!
//! // A ring between two cores (here, one thread).
//! let (mut tx, mut rx) = ring::<u64>(1024);
//! assert_eq!(tx.push_burst(&mut (0..32)), 32);
//! let mut sum = 0;
//! assert_eq!(rx.pop_burst(32, |v| sum += v), 32);
//! assert_eq!(sum, (0..32).sum());
//!
//! // A pause point holding a write while its binding moves.
//! struct Tlp(Vec<u8>);
//! impl Pausable for Tlp {
//!     fn info(&self) -> TlpInfo {
//!         TlpInfo::of(&self.0).expect("a valid TLP")
//!     }
//! }
//! let mwr = Tlp(vec![0x40, 0, 0, 1, 1, 0, 0, 0x0f, 0, 0, 0x10, 0, 1, 2, 3, 4]);
//! let t0 = Instant::now();
//! let mut pause = PausePoint::new(PauseConfig::default());
//! pause.pause(IdMode::Common, t0).unwrap();
//! assert!(matches!(pause.offer(Direction::Down, mwr, t0), Offer::Held));
//! pause.release(t0 + Duration::from_micros(8)).unwrap();
//! let mut held_for = Vec::new();
//! pause.drain(Direction::Down, t0 + Duration::from_micros(8), 32, |_| true, |r| held_for.push(r.held_for));
//! assert_eq!(held_for, [Duration::from_micros(8)]);
//! ```
#![warn(missing_docs)]

pub mod credits;
pub mod pause;
mod primitive;
pub mod spsc;

pub use credits::{Advertisement, Cost, CreditAccount};
pub use pause::{
    Direction, Event, EventKind, IdMode, Offer, Pausable, PauseConfig, PausePoint, PauseStats,
    Released, State, StateError, TlpInfo,
};
pub use spsc::{ring, Consumer, Producer};
