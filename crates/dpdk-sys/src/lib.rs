//! Raw bindings to the system's DPDK (22.11 or later), generated at build
//! time from its headers, and `tlpf_*` functions from a small C shim for
//! what DPDK offers only inline (burst I/O, mbuf helpers, `rte_errno`).
//! Everything here is `unsafe` to call; `pmd`'s DPDK port wraps it.
#![allow(
    non_upper_case_globals,
    non_camel_case_types,
    non_snake_case,
    dead_code,
    missing_docs,
    unsafe_code
)]
#![allow(clippy::all, missing_debug_implementations, unsafe_op_in_unsafe_fn)]

include!(concat!(env!("OUT_DIR"), "/bindings.rs"));
