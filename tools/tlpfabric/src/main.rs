//! The `tlpfabric` binary: see `tlpfabric --help`.

use std::io::{self, Write};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let stdin = io::stdin();
    let mut stdin = stdin.lock();
    let stdout = io::stdout();
    let mut stdout = io::BufWriter::new(stdout.lock());
    let mut stderr = io::stderr();
    let colour = tlpfabric::colour_errors();
    let code = tlpfabric::run_coloured(
        std::env::args_os(),
        &mut stdin,
        &mut stdout,
        &mut stderr,
        colour,
    );
    let flushed = stdout.flush();
    drop(stdout);
    if let Err(e) = flushed {
        if e.kind() != io::ErrorKind::BrokenPipe {
            let _ = writeln!(stderr, "error: writing standard output: {e}");
            std::process::exit(1);
        }
    }
    std::process::exit(code);
}
