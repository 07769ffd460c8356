//! The `streams` binary: parse arguments, set up logging, call the library, map to an exit code.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = streams::cli::Cli::parse();
    streams::cli::init_logging(&cli.global);
    let code = match streams::cli::run(cli) {
        Ok(code) => code,
        Err(err) => {
            // Not eprintln!: it panics when stderr is a closed pipe (`... 2>&1 | head -1`).
            use std::io::Write;
            let _ = writeln!(std::io::stderr(), "{}", streams::error::Rendered(&err));
            err.exit_code()
        }
    };
    code.into()
}
