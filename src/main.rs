//! The `streams` binary: parse arguments, set up logging, call the library, map to an exit code.

// Output goes through the library's printer alone (`report::printer`).
#![warn(clippy::print_stdout, clippy::print_stderr)]

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = streams::cli::Cli::parse();
    streams::cli::init_logging(&cli.global);
    let code = match streams::cli::run(cli) {
        Ok(code) => code,
        Err(err) => {
            streams::cli::show_error(&err);
            err.exit_code()
        }
    };
    code.into()
}
