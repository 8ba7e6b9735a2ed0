//! Finds the system's DPDK with pkg-config, generates bindings with bindgen
//! and builds the C shim. pkg-config's `--cflags` for libdpdk include
//! `-include rte_config.h` and `-march=...`, which the pkg-config crate
//! leaves out, so every token is passed to the compiler and to bindgen as is.

use std::env;
use std::path::PathBuf;
use std::process::Command;

fn cflags() -> Vec<String> {
    let out = Command::new("pkg-config")
        .args(["--cflags", "libdpdk"])
        .output()
        .expect("pkg-config runs");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

fn main() {
    println!("cargo:rerun-if-changed=shim.c");
    println!("cargo:rerun-if-changed=shim.h");
    let library = pkg_config::Config::new()
        .atleast_version("22.11")
        .probe("libdpdk")
        .unwrap_or_else(|e| {
            panic!(
                "DPDK 22.11 or later was not found by pkg-config ({e}); on Debian: \
                 apt-get install libdpdk-dev pkg-config libclang-dev"
            )
        });
    let flags = cflags();
    // `rte_eth_from_rings` (ethdev links in one process) lives in the
    // net_ring driver, which pkg-config's shared link line leaves to EAL's
    // plugin loading; linking it is harmless since EAL's dlopen of the same
    // file finds it loaded.
    println!("cargo:rustc-link-lib=dylib=rte_net_ring");

    let mut build = cc::Build::new();
    build.file("shim.c").warnings(false);
    for f in &flags {
        build.flag(f);
    }
    build.compile("tlpf_dpdk_shim");

    let mut bindings = bindgen::Builder::default()
        .header("shim.h")
        .clang_args(&flags)
        .allowlist_function("rte_eal_.*")
        .allowlist_function("rte_eth_.*")
        .allowlist_function("rte_pktmbuf_.*")
        .allowlist_function("rte_mempool_.*")
        .allowlist_function("rte_ring_.*")
        .allowlist_function("rte_lcore_.*")
        .allowlist_function("rte_socket_id")
        .allowlist_function("rte_thread_register")
        .allowlist_function("rte_thread_unregister")
        .allowlist_function("rte_strerror")
        .allowlist_function("tlpf_.*")
        .allowlist_type("rte_mbuf")
        .allowlist_type("rte_eth_conf")
        .allowlist_type("rte_eth_dev_info")
        .allowlist_type("rte_eth_stats")
        .allowlist_type("rte_eth_link")
        .allowlist_var("RTE_.*")
        .allowlist_var("RING_F_.*")
        .derive_default(true)
        .layout_tests(true)
        .generate_comments(false)
        .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()));
    for path in &library.include_paths {
        bindings = bindings.clang_arg(format!("-I{}", path.display()));
    }
    let out = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR is set"));
    bindings
        .generate()
        .expect("bindgen generates DPDK bindings")
        .write_to_file(out.join("bindings.rs"))
        .expect("the bindings are written");
}
