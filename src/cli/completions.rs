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

/// One page for every command. clap_mangen's synopsis drops the value of an option that has
/// no long name (`[-C ]`) and its command list refers to `streams-plan(1)` pages that do not
/// exist: both sections are written here (a value name for every option that takes one; the
/// commands as `streams plan`, with where to read their options).
pub fn man() -> Result<ExitCode> {
    let mut command = Cli::command();
    // Settles what clap derives (how many values each option takes, `help`).
    command.build();
    let page = clap_mangen::Man::new(command.clone());
    let mut out = Vec::new();
    let render = |out: &mut Vec<u8>| -> std::io::Result<()> {
        page.render_title(out)?;
        page.render_name_section(out)?;
        out.extend_from_slice(synopsis(&command).as_bytes());
        page.render_description_section(out)?;
        page.render_options_section(out)?;
        out.extend_from_slice(commands(&command).as_bytes());
        page.render_extra_section(out)?;
        page.render_version_section(out)
    };
    render(&mut out).map_err(|e| Error::io("could not render the man page", e))?;
    print(&out)
}

/// Escapes text for roff: backslashes and hyphens (a plain `-` may be set as a hyphen).
fn roff(text: &str) -> String {
    text.replace('\\', "\\e").replace('-', "\\-")
}

/// `.SH SYNOPSIS`: `streams [-C DIR] [-q|--quiet] ... COMMAND`.
fn synopsis(command: &clap::Command) -> String {
    let mut line = String::from("\\fBstreams\\fR");
    for arg in command.get_arguments().filter(|a| !a.is_positional()) {
        let mut names = Vec::new();
        if let Some(short) = arg.get_short() {
            names.push(format!("\\fB\\-{}\\fR", roff(&short.to_string())));
        }
        if let Some(long) = arg.get_long() {
            names.push(format!("\\fB\\-\\-{}\\fR", roff(long)));
        }
        let takes_value = arg.get_num_args().is_some_and(|n| n.takes_values());
        let value = match arg.get_value_names() {
            Some(names) if takes_value => format!(" \\fI{}\\fR", roff(&names.join(" "))),
            None if takes_value => format!(
                " \\fI{}\\fR",
                roff(&arg.get_id().to_string().to_uppercase())
            ),
            _ => String::new(),
        };
        let repeats = if matches!(arg.get_action(), clap::ArgAction::Count) {
            "..."
        } else {
            ""
        };
        line.push_str(&format!(" [{}{value}]{repeats}", names.join("|")));
    }
    line.push_str(" \\fICOMMAND\\fR");
    format!(".SH SYNOPSIS\n{line}\n")
}

/// `.SH COMMANDS`: each as `streams NAME` with what it does (its options: `streams NAME --help`).
fn commands(command: &clap::Command) -> String {
    let mut out = String::from(
        ".SH COMMANDS\nThe options of each command: \\fBstreams \\fICOMMAND\\fB \\-\\-help\\fR.\n",
    );
    for sub in command.get_subcommands().filter(|s| !s.is_hide_set()) {
        let about = sub.get_about().map(|a| a.to_string()).unwrap_or_default();
        out.push_str(&format!(
            ".TP\n\\fBstreams {}\\fR\n{}\n",
            roff(sub.get_name()),
            roff(&about)
        ));
    }
    out
}

/// Writes to stdout; a reader that stopped early (`streams man | head`) is not an error.
fn print(bytes: &[u8]) -> Result<ExitCode> {
    print_bytes(bytes).map(|()| ExitCode::Success)
}
