//! What the work the dispatcher starts (task executors, checks, workspaces prepared ahead) tells
//! it: the only way such work reaches the run state, which the dispatcher alone writes.

use std::time::Duration;

use super::task::TaskOutcome;
use crate::git::{self, Oid};
use crate::state::FailReason;

#[derive(Debug)]
pub enum ExecEvent {
    Note {
        stream: usize,
        message: String,
    },
    Spawned {
        stream: usize,
        task: usize,
        attempt: u32,
        pgid: i32,
    },
    Retrying {
        stream: usize,
        task: usize,
        attempt: u32,
        reason: FailReason,
        /// What in `retry_on` made it worth retrying (`exit 75`, `output "rate limit"`).
        why: String,
        delay: Duration,
    },
    Finished {
        stream: usize,
        task: usize,
        outcome: TaskOutcome,
    },
    /// The workspace's `setup` started.
    SetupStarted {
        stream: usize,
    },
    /// It ended (`at`: the start it set up, when it succeeded).
    SetupFinished {
        stream: usize,
        started_at: u64,
        failure: Option<String>,
        at: Option<Oid>,
    },
    /// A stream's check ended (see `super::check`).
    CheckFinished(super::check::CheckEnd),
    /// A workspace prepared ahead is ready at `at`, or could not be prepared (see
    /// `super::ahead`).
    Prepared {
        stream: usize,
        at: Oid,
        result: Result<git::worktree::PrepareReport, String>,
    },
}
