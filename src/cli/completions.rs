//! `streams completions SHELL` and `streams man`: generated from the clap definition, so they
//! never disagree with the commands that exist.

use clap::CommandFactory;

use crate::error::{Error, ExitCode, Result};
use crate::report::print_bytes;

use super::{Cli, CompletionsArgs};

pub fn completions(args: CompletionsArgs) -> Result<ExitCode> {
    let mut out = Vec::new();
    clap_complete::generate(args.shell, &mut Cli::command(), "streams", &mut out);
    print(&out)
}

pub fn man() -> Result<ExitCode> {
    let mut out = Vec::new();
    clap_mangen::Man::new(Cli::command())
        .render(&mut out)
        .map_err(|e| Error::io("could not render the man page", e))?;
    print(&out)
}

/// Writes to stdout; a reader that stopped early (`streams man | head`) is not an error.
fn print(bytes: &[u8]) -> Result<ExitCode> {
    print_bytes(bytes).map(|()| ExitCode::Success)
}
