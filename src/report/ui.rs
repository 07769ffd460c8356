//! How a command talks to the user on stderr: verbosity, colour, whether progress is drawn.
//!
//! Stdout is for data (`--json`, `--dot`, listings); everything for a human goes through here to
//! stderr.

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
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "{line}");
    }
}

/// Writes data for a program (JSON, dot, a listing) to stdout. A reader that went away
/// (`streams status --json | head -1`) is not an error: it asked for no more. Any other failure
/// (a full disk behind a redirection) is, so that nothing is lost silently.
pub fn print_data(text: &str) -> crate::error::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(crate::error::Error::io("could not write to stdout", e))
        }
        _ => Ok(()),
    }
}
