//! The `bugbane` binary: command line, configuration, logging and process lifecycle.
//! Everything it does is delegated to the library crates.

mod cli;
mod config;
mod test_event;

use std::process::ExitCode;

fn main() -> ExitCode {
    match cli::run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
