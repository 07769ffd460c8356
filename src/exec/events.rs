//! What the work the dispatcher starts (task executors, checks, workspaces prepared ahead) tells
//! it: the only way such work reaches the run state, which the dispatcher alone writes.

use std::time::Duration;

use tokio::sync::{mpsc, watch};

use super::process::Cancel;
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

/// How the work the dispatcher starts reports back to it, and how it is told to stop.
pub(super) struct Channels {
    events: mpsc::UnboundedSender<ExecEvent>,
    cancel: watch::Sender<Cancel>,
}

impl Channels {
    /// The channels, and the end the dispatcher receives events on.
    pub fn new() -> (Channels, mpsc::UnboundedReceiver<ExecEvent>) {
        let (events, received) = mpsc::unbounded_channel();
        let (cancel, _) = watch::channel(Cancel::None);
        (Channels { events, cancel }, received)
    }

    /// Where work started now sends its events.
    pub fn events(&self) -> &mpsc::UnboundedSender<ExecEvent> {
        &self.events
    }

    /// What tells work started now to stop (from the next [`Self::stop`] on).
    pub fn cancel(&self) -> watch::Receiver<Cancel> {
        self.cancel.subscribe()
    }

    /// Asks everything running to stop, as `how` says.
    pub fn stop(&self, how: Cancel) {
        let _ = self.cancel.send(how);
    }
}
