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
