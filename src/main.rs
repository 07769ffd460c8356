//! The `streams` binary: parse arguments, set up logging, call the library, map to an exit code.

// Output goes through `report::printer` alone, as in the library.
#![warn(clippy::print_stdout, clippy::print_stderr)]

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = streams::cli::Cli::parse();
    streams::cli::init_logging(&cli.global);
    let code = match streams::cli::run(cli) {
        Ok(code) => code,
        Err(err) => {
            streams::report::printer::line_to_stderr(&streams::error::Rendered(&err).to_string());
            err.exit_code()
        }
    };
    code.into()
}
