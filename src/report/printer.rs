//! The printer: the one module that writes to stdout and stderr, and how a command talks to the
//! user there (verbosity, colour, whether progress is drawn).
//!
//! Stdout is for data (`--json`, `--dot`, listings, logs); everything for a human goes through
//! [`Ui`] to stderr. Nothing else in the crate writes to either: clippy's `print_stdout` and
//! `print_stderr` lints are on for the whole crate, and `std::io::stdout` / `std::io::stderr` are
//! disallowed methods (clippy.toml) outside this module (and the crash-test failpoint, which
//! dies right after its line). Progress bars draw through indicatif's own stderr target.
#![allow(clippy::disallowed_methods)]

use std::io::{IsTerminal, Write};

use console::Style;

/// When to use colours: `--color`. (clap's derive is the one thing the command line needs from
/// it; the choice itself belongs to the output.)
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Clone, Debug)]
pub struct Ui {
    pub quiet: bool,
    pub verbose: u8,
    pub color: bool,
    /// Progress bars are drawn: stderr is a terminal and nothing asked for plain output.
    pub progress: bool,
}

impl Ui {
    pub fn new(quiet: bool, verbose: u8, color: ColorChoice, no_progress: bool) -> Self {
        let tty = std::io::stderr().is_terminal();
        let color = match color {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => {
                tty && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                    && std::env::var("TERM").map_or(true, |t| t != "dumb")
            }
        };
        console::set_colors_enabled(color);
        console::set_colors_enabled_stderr(color);
        Ui {
            quiet,
            verbose,
            color,
            progress: tty && !quiet && verbose == 0 && !no_progress,
        }
    }

    /// A plain Ui for tests and library callers: no colour, no progress.
    pub fn plain() -> Self {
        Ui {
            quiet: false,
            verbose: 0,
            color: false,
            progress: false,
        }
    }

    /// A line of normal output (suppressed by `-q`).
    pub fn info(&self, line: impl AsRef<str>) {
        if !self.quiet {
            self.write(line.as_ref());
        }
    }

    /// A line shown only with `-v`.
    pub fn detail(&self, line: impl AsRef<str>) {
        if self.verbose > 0 {
            self.write(line.as_ref());
        }
    }

    /// Always shown, even under `-q`.
    pub fn always(&self, line: impl AsRef<str>) {
        self.write(line.as_ref());
    }

    pub fn warn(&self, line: impl AsRef<str>) {
        let label = self.style(Style::new().yellow().bold(), "warning");
        self.write(&format!("{label}: {}", line.as_ref()));
    }

    pub fn error(&self, line: impl AsRef<str>) {
        let label = self.style(Style::new().red().bold(), "error");
        self.write(&format!("{label}: {}", line.as_ref()));
    }

    pub fn hint(&self, line: impl AsRef<str>) {
        let label = self.style(Style::new().cyan().bold(), "hint");
        self.write(&format!("{label}: {}", line.as_ref()));
    }

    pub fn style(&self, style: Style, text: impl std::fmt::Display) -> String {
        if self.color {
            style.apply_to(text).to_string()
        } else {
            text.to_string()
        }
    }

    pub fn bold(&self, text: impl std::fmt::Display) -> String {
        self.style(Style::new().bold(), text)
    }

    pub fn green(&self, text: impl std::fmt::Display) -> String {
        self.style(Style::new().green(), text)
    }

    pub fn red(&self, text: impl std::fmt::Display) -> String {
        self.style(Style::new().red(), text)
    }

    pub fn yellow(&self, text: impl std::fmt::Display) -> String {
        self.style(Style::new().yellow(), text)
    }

    pub fn dim(&self, text: impl std::fmt::Display) -> String {
        self.style(Style::new().dim(), text)
    }

    fn write(&self, line: &str) {
        line_to_stderr(line);
    }
}

/// Writes one line to stderr, whatever happens to it: a closed stderr has no one to tell.
/// (Not `eprintln!`: it panics when stderr is a closed pipe, `... 2>&1 | head -1`.)
pub fn line_to_stderr(line: &str) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{line}");
}

/// Writes text to stderr as it is (no newline added), whatever happens to it: lines a program
/// reads there (a CI runner's workflow commands).
pub fn text_to_stderr(text: &str) {
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(text.as_bytes()).and_then(|()| err.flush());
}

/// Where the debug logs (`-vv`, `STREAMS_LOG`) go: stderr, written by tracing's subscriber.
pub fn log_writer() -> std::io::Stderr {
    std::io::stderr()
}

/// Whether stdout is a terminal (a view is coloured, redrawn or sanitised only there).
pub fn stdout_is_terminal() -> bool {
    std::io::stdout().is_terminal()
}

/// Writes bytes to stdout and flushes, with the caller deciding what a failure means (a reader
/// that went away ends `logs -f` and `status --watch`, quietly).
pub fn write_stdout(bytes: &[u8]) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes).and_then(|()| out.flush())
}

/// Writes data for a program (JSON, dot, a listing) to stdout. A reader that went away
/// (`streams status --json | head -1`) is not an error: it asked for no more. Any other failure
/// (a full disk behind a redirection) is, so that nothing is lost silently.
pub fn print_data(text: &str) -> crate::error::Result<()> {
    print_bytes(text.as_bytes())
}

/// Writes a JSON document for a program (`--json`) to stdout: pretty, ending in a newline.
pub fn print_json<T: serde::Serialize>(value: &T) -> crate::error::Result<()> {
    let json = serde_json::to_string_pretty(value)
        .map_err(|e| crate::error::Error::Internal(format!("could not write JSON: {e}")))?;
    print_data(&format!("{json}\n"))
}

/// [`print_data`] for bytes that need not be text (a man page, an agent's raw log).
pub fn print_bytes(bytes: &[u8]) -> crate::error::Result<()> {
    match write_stdout(bytes) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(crate::error::Error::io("could not write to stdout", e))
        }
        _ => Ok(()),
    }
}
