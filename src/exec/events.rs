//! What the work the dispatcher starts (task executors, checks, workspaces prepared ahead) tells
//! it: the only way such work reaches the run state, which the dispatcher alone writes.

use std::time::Duration;

use tokio::sync::{mpsc, watch};

use super::process::Cancel;
use super::task::TaskOutcome;
use crate::ids::{Oid, StreamId, TaskId};
use crate::state::FailReason;

#[derive(Debug)]
pub enum ExecEvent {
    /// Something for the person watching, about a stream.
    Note { stream: StreamId, message: String },
    /// An attempt's agent started, in process group `pgid`.
    Spawned {
        task: TaskId,
        attempt: u32,
        pgid: i32,
    },
    /// An attempt failed in a way worth retrying: attempt `attempt` starts after `delay`.
    Retrying {
        task: TaskId,
        attempt: u32,
        reason: FailReason,
        /// What in `retry_on` made it worth retrying (`exit 75`, `output "rate limit"`).
        why: String,
        delay: Duration,
    },
    /// The task's executor ended.
    Finished { task: TaskId, outcome: TaskOutcome },
    /// What an attempt of a preset's agent used, as its events said.
    Usage {
        task: TaskId,
        usage: crate::state::AttemptUsage,
    },
    /// What the running attempt's agent has used so far, as its output streams (priced where
    /// it could be): counted against shared budgets.
    Spending {
        task: TaskId,
        usage: crate::agent::Usage,
    },
    /// The task waits for its agent's usage limit to reset before its next attempt.
    Waiting {
        task: TaskId,
        wait: crate::state::LimitWait,
    },
    /// The workspace's `setup` started.
    SetupStarted { stream: StreamId },
    /// It ended (`at`: the start it set up, when it succeeded).
    SetupFinished {
        stream: StreamId,
        started_at: u64,
        failure: Option<String>,
        at: Option<Oid>,
    },
    /// A stream's check ended (see `super::check`).
    CheckFinished(super::check::CheckEnd),
    /// The plan's `notify` command for a parked stream ended (see `super::notify`).
    Notified(super::notify::NotifyEnd),
    /// A workspace prepared ahead is ready at `at`, or could not be prepared (see
    /// `super::ahead`).
    Prepared {
        stream: StreamId,
        at: Oid,
        result: Result<crate::workspace::PrepareReport, String>,
    },
}

/// How the work the dispatcher starts reports back to it, and how it is told to stop.
pub(super) struct Channels {
    events: mpsc::UnboundedSender<ExecEvent>,
    cancel: watch::Sender<Cancel>,
    /// Per stream, what its task executors listen to: everything [`Self::stop`] says, and
    /// what [`Self::stop_stream`] says to that stream alone (`streams stop`).
    streams: std::collections::BTreeMap<usize, watch::Sender<Cancel>>,
}

impl Channels {
    /// The channels, and the end the dispatcher receives events on.
    pub fn new() -> (Channels, mpsc::UnboundedReceiver<ExecEvent>) {
        let (events, received) = mpsc::unbounded_channel();
        let (cancel, _) = watch::channel(Cancel::None);
        (
            Channels {
                events,
                cancel,
                streams: Default::default(),
            },
            received,
        )
    }

    /// Where work started now sends its events.
    pub fn events(&self) -> &mpsc::UnboundedSender<ExecEvent> {
        &self.events
    }

    /// What tells work started now to stop (from the next [`Self::stop`] on).
    pub fn cancel(&self) -> watch::Receiver<Cancel> {
        self.cancel.subscribe()
    }

    /// What tells a task of stream `s` started now to stop: the session's stops and the
    /// stream's own.
    pub fn cancel_stream(&mut self, s: usize) -> watch::Receiver<Cancel> {
        let now = *self.cancel.borrow();
        self.streams
            .entry(s)
            .or_insert_with(|| watch::channel(now).0)
            .subscribe()
    }

    /// Asks everything running to stop, as `how` says.
    pub fn stop(&self, how: Cancel) {
        self.cancel.send_replace(how);
        for stream in self.streams.values() {
            stream.send_replace(how);
        }
    }

    /// Asks the task of stream `s` (if one runs) to stop, as `how` says; the rest goes on.
    pub fn stop_stream(&self, s: usize, how: Cancel) {
        if let Some(stream) = self.streams.get(&s) {
            stream.send_replace(how);
        }
    }
}
