//! The run's time axis: every step of a stream that took time, and how it ended.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// One step of a stream on the run's time axis.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Span {
    /// The stream's name (names are stable across sessions; indices are too, but a name reads
    /// better in `state.json`).
    pub stream: String,
    pub step: Step,
    /// Milliseconds since the Unix epoch.
    pub started_at: u64,
    pub finished_at: u64,
    pub outcome: SpanOutcome,
    /// The step's log, when it has one of its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log: Option<PathBuf>,
}

/// What kind of step a span is. `Setup`, `Check` and `Gate` are the steps of the workspace
/// `setup`, `check` and `gate` plan keys: the report draws and lists them as soon as the
/// dispatcher records them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Step {
    Setup,
    /// A task's agent, all attempts included; `task` is zero-based.
    Task {
        task: usize,
    },
    Check,
    Gate,
    /// Moving the stream's work onto the integration branch.
    Integration,
}

/// How a span ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SpanOutcome {
    Ok,
    Failed {
        reason: String,
    },
    /// The integration conflicted and halted the run.
    Conflict {
        files: Vec<String>,
    },
    /// Stopped by a signal; `resume` runs it again.
    Interrupted,
}
