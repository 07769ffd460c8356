//! Errors that end a command, and the one place that maps outcomes to exit codes.
//!
//! Expected outcomes of a run (a failed agent, a merge conflict) are not errors: they are
//! values the engine returns and [`ExitCode`] classifies. What lands here is what stops a command
//! from doing its job at all: an invalid plan, a held lock, git missing, a full disk. Each variant
//! carries enough context to say what was being done and, where there is one, what to do next.

use std::fmt;
use std::path::PathBuf;

/// Every exit code `streams` can return, documented in one place (README "Exit codes").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum ExitCode {
    /// Every stream done and integrated (or, for other commands, the command did its job).
    Success = 0,
    /// A bug, or an environment failure such as a full disk or an unreadable repository.
    Internal = 1,
    /// Usage error or invalid plan; nothing was changed.
    Usage = 2,
    /// Halted: one or more streams are parked on a conflict and nothing else can move
    /// (`continue` / `skip` / `abort`).
    Halted = 3,
    /// The run finished, but one or more streams failed.
    StreamsFailed = 4,
    /// Another run holds the lock, or there is no run to continue / resume.
    State = 5,
    /// The run finished, but one or more streams were stopped (`streams stop`, or an agent's
    /// usage limit that did not reset within `limit_wait`): their work is kept and
    /// `streams retry` continues them.
    Stopped = 6,
    /// Interrupted by SIGHUP (the terminal closed); state saved, `streams resume` goes on.
    HungUp = 129,
    /// Interrupted by SIGINT; state saved, `streams resume` goes on.
    Interrupted = 130,
    /// Interrupted by SIGTERM; state saved, `streams resume` goes on.
    Terminated = 143,
}

impl ExitCode {
    pub fn code(self) -> u8 {
        self as u8
    }
}

/// What a stream came to, as far as a run's exit code goes. A run's streams may come to several
/// at once (one parked, one failed); [`ExitCode::of_run`] then takes the lowest non-zero code
/// among them, so what needs a person's action comes first. A new kind of end (a budget
/// exhausted) is a new variant here with its code in [`Outcome::exit_code`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Outcome {
    /// Done and integrated.
    Integrated,
    /// Left out by the person (`streams skip`, and what waits on it): not a failure.
    LeftOut,
    /// Not started, or not done, when the run came to rest: it waits on a parked stream.
    Waiting,
    /// Parked on a conflict, waiting for a person.
    Parked,
    /// Failed, or skipped because a stream it depends on failed.
    Failed,
    /// Stopped while the rest of the run went on, by `streams stop` or by a limit (an agent's
    /// usage limit that did not reset within `limit_wait`): work kept; `retry` goes on.
    Stopped,
}

impl Outcome {
    pub fn exit_code(self) -> ExitCode {
        match self {
            Outcome::Integrated | Outcome::LeftOut | Outcome::Waiting => ExitCode::Success,
            Outcome::Parked => ExitCode::Halted,
            Outcome::Failed => ExitCode::StreamsFailed,
            Outcome::Stopped => ExitCode::Stopped,
        }
    }
}

/// How a session of the engine ended. An expected outcome, not an error: [`ExitCode::of_run`]
/// classifies it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Finish {
    /// The run came to rest: finished (every stream reached an end) or, with `halted`, nothing
    /// else can move until a person acts on the parked streams. `outcomes`: what its streams
    /// came to, each kind once.
    Settled {
        halted: bool,
        outcomes: Vec<Outcome>,
    },
    Interrupted(nix::sys::signal::Signal),
}

impl Finish {
    /// A run at rest whose streams came to `outcomes` (each kind once, in any order).
    pub fn settled(halted: bool, outcomes: &[Outcome]) -> Finish {
        let mut outcomes = outcomes.to_vec();
        outcomes.sort();
        outcomes.dedup();
        Finish::Settled { halted, outcomes }
    }

    /// Waiting for a person: streams are parked on conflicts.
    pub fn halted(&self) -> bool {
        matches!(self, Finish::Settled { halted: true, .. })
    }

    /// Some stream came to `outcome`.
    pub fn has(&self, outcome: Outcome) -> bool {
        matches!(self, Finish::Settled { outcomes, .. } if outcomes.contains(&outcome))
    }

    /// Finished with every stream integrated, or left out by the person's choice.
    pub fn succeeded(&self) -> bool {
        ExitCode::of_run(self) == ExitCode::Success
    }
}

impl ExitCode {
    /// The exit code of a command that ran the engine (`run`, `resume`, `continue`, `skip`):
    /// for a run at rest, the lowest non-zero code among what its streams came to (DESIGN.md's
    /// table: halted 3 before failed 4 before stopped 6), else success.
    pub fn of_run(finish: &Finish) -> ExitCode {
        match finish {
            Finish::Settled { halted, outcomes } => outcomes
                .iter()
                .map(|o| o.exit_code())
                .chain(halted.then_some(ExitCode::Halted))
                .filter(|code| *code != ExitCode::Success)
                .min_by_key(|code| code.code())
                .unwrap_or(ExitCode::Success),
            Finish::Interrupted(nix::sys::signal::Signal::SIGINT) => ExitCode::Interrupted,
            Finish::Interrupted(nix::sys::signal::Signal::SIGHUP) => ExitCode::HungUp,
            Finish::Interrupted(_) => ExitCode::Terminated,
        }
    }
}

impl From<ExitCode> for std::process::ExitCode {
    fn from(code: ExitCode) -> Self {
        std::process::ExitCode::from(code.code())
    }
}

/// An error that ends a command. `Display` is the one-line message; [`Error::hint`] says what to
/// do about it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The plan could not be read or is invalid. The diagnostics were already rendered into
    /// `rendered` (with file:line:column and carets), so the message is printed as is.
    #[error("{rendered}")]
    InvalidPlan { rendered: String, errors: usize },

    #[error("could not read plan {}: {source}", path.display())]
    PlanUnreadable {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("{message}")]
    Usage {
        message: String,
        hint: Option<String>,
    },

    /// Lock held, nothing to resume, a run already interrupted, and the like.
    #[error("{message}")]
    State {
        message: String,
        hint: Option<String>,
    },

    #[error(transparent)]
    Git(#[from] crate::git::GitError),

    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },

    #[error("{0}")]
    Internal(String),
}

impl Error {
    pub fn usage(message: impl Into<String>) -> Self {
        Error::Usage {
            message: message.into(),
            hint: None,
        }
    }

    pub fn usage_with_hint(message: impl Into<String>, hint: impl Into<String>) -> Self {
        Error::Usage {
            message: message.into(),
            hint: Some(hint.into()),
        }
    }

    pub fn state(message: impl Into<String>, hint: impl Into<String>) -> Self {
        Error::State {
            message: message.into(),
            hint: Some(hint.into()),
        }
    }

    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    /// What to do about it, when there is something to say.
    pub fn hint(&self) -> Option<String> {
        match self {
            Error::Usage { hint, .. } | Error::State { hint, .. } => hint.clone(),
            Error::Io { source, .. } => io_hint(source),
            Error::Git(err) => err.hint(),
            _ => None,
        }
    }

    pub fn exit_code(&self) -> ExitCode {
        match self {
            Error::InvalidPlan { .. } | Error::PlanUnreadable { .. } | Error::Usage { .. } => {
                ExitCode::Usage
            }
            Error::State { .. } => ExitCode::State,
            Error::Git(err) if err.is_usage() => ExitCode::Usage,
            Error::Git(_) | Error::Io { .. } | Error::Internal(_) => ExitCode::Internal,
        }
    }
}

/// Hints for the environment failures users actually meet.
pub fn io_hint(err: &std::io::Error) -> Option<String> {
    use std::io::ErrorKind;
    match err.kind() {
        ErrorKind::StorageFull => Some(
            "the disk is full: free some space, then `streams resume` picks up where this stopped"
                .into(),
        ),
        ErrorKind::PermissionDenied | ErrorKind::ReadOnlyFilesystem => {
            Some("check that you can write to the repository's .git directory".into())
        }
        _ => None,
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Adds a "while doing X" context to I/O results.
pub trait IoContext<T> {
    fn context(self, context: impl FnOnce() -> String) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn context(self, context: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| Error::Io {
            context: context(),
            source,
        })
    }
}

/// Renders an error the way every command prints it: `error: message` then `hint: ...`.
pub struct Rendered<'a>(pub &'a Error);

impl fmt::Display for Rendered<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            // Already rendered with `error:` prefixes and carets.
            Error::InvalidPlan { rendered, .. } => write!(f, "{}", rendered.trim_end())?,
            err => write!(f, "error: {err}")?,
        }
        if let Some(hint) = self.0.hint() {
            write!(f, "\nhint: {hint}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::signal::Signal;

    #[test]
    fn each_run_outcome_has_its_documented_exit_code() {
        use Outcome::*;
        let codes: Vec<u8> = [
            Finish::settled(false, &[Integrated]),
            Finish::settled(false, &[Integrated, LeftOut]),
            Finish::settled(false, &[Integrated, Failed]),
            Finish::settled(false, &[Integrated, Stopped]),
            Finish::settled(true, &[Integrated, Parked, Waiting]),
            Finish::Interrupted(Signal::SIGINT),
            Finish::Interrupted(Signal::SIGTERM),
            Finish::Interrupted(Signal::SIGHUP),
        ]
        .iter()
        .map(|f| ExitCode::of_run(f).code())
        .collect();
        assert_eq!(codes, [0, 0, 4, 6, 3, 130, 143, 129]);
    }

    #[test]
    fn when_outcomes_mix_the_lowest_non_zero_code_wins() {
        use Outcome::*;
        let code = |halted, outcomes: &[Outcome]| {
            ExitCode::of_run(&Finish::settled(halted, outcomes)).code()
        };
        assert_eq!(code(true, &[Failed, Parked, Integrated]), 3);
        assert_eq!(code(true, &[Parked, Failed]), 3, "in any order");
        assert_eq!(code(false, &[LeftOut, Failed]), 4);
        assert_eq!(code(false, &[Integrated, LeftOut, Waiting]), 0);
        assert_eq!(code(false, &[Stopped, Failed]), 4, "failed before stopped");
        assert_eq!(code(true, &[Stopped, Parked]), 3);
    }
}
