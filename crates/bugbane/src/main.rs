//! The `bugbane` binary: command line, configuration, logging and process lifecycle.
//! Everything it does is delegated to the library crates.

mod cli;
mod config;
mod test_event;

use std::process::ExitCode;

/// Processing allocates many small JSON nodes across threads; mimalloc handles that
/// pattern markedly better than the system allocator.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    match cli::run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
