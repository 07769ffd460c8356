//! One task, as the steps it takes, each its own module:
//!
//! 1. [`prepare`]: the workspace on the stream's branch at the task's start, the lane its agent
//!    may write in, and (in a new or reset workspace) its environment: ignored files, `setup`.
//! 2. [`attempt`]: the agent, run again as `retries` and `retry_on` say.
//! 3. [`verify`]: what the agent changed, read once from its files (and its own commits, each
//!    object checked), judged against the stream's ownership.
//! 4. [`commit`]: the task's end, made in the user's repository: the agent's commits, or one
//!    commit of streams' own of its files.
//! 5. [`bring`]: the task's end on the stream's branch in the user's repository.
//!
//! A step that ends the task early (a failure, an interruption) returns the task's
//! [`TaskOutcome`] in place of its result; [`run_task`] sends the outcome to the dispatcher.
//!
//! An executor owns nothing but its task: it reports to the dispatcher through events and never
//! touches the run state. Before anything it does could lose work (a retry resets the workspace,
//! a rejected task is rolled back), it keeps that work on a ref ([`keep`], `layout::RefNames`).

mod attempt;
mod bring;
mod commit;
mod keep;
mod prepare;
mod verify;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};

use super::events::ExecEvent;
use super::process::{Cancel, Limits};
use super::sandbox;
use crate::git::Repo;
use crate::ids::{Oid, TaskId};
use crate::layout::RefNames;
use crate::ownership::Ownership;
use crate::state::{FailReason, Journal, Stop, WorkStats};

pub(in crate::exec) use prepare::report_prepared;

/// Everything one task needs. Built by the dispatcher, which owns the plan and the state.
pub struct TaskJob {
    pub task: TaskId,
    /// The stream's name.
    pub stream: String,
    pub branch: String,
    pub worktree: PathBuf,
    pub start: Oid,
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    pub log_path: PathBuf,
    pub limits: Limits,
    pub retries: u32,
    pub retry_on: Vec<i32>,
    /// Text in the agent's last lines that makes a failure worth retrying.
    pub retry_on_output: Vec<String>,
    pub retry_backoff: Duration,
    pub commit_message: String,
    pub identity_env: Vec<(String, String)>,
    pub refs: RefNames,
    /// Attempts already used before this executor (a resumed task keeps counting).
    pub previous_attempts: u32,
    /// The kernel confinement the plan asks for (`sandbox`).
    pub sandbox: sandbox::Spec,
    /// The workspace's `setup`, when this task starts in a new or reset workspace.
    pub setup: Option<super::setup::SetupJob>,
    /// Ignored files to copy in first (`.worktreeinclude`, `include`), in the same case.
    pub include: Option<super::include::IncludeJob>,
    /// The paths its workspace holds when the stream declares `reads`; `None`: every file.
    pub sparse: Option<crate::git::Sparse>,
    /// The commit the dispatcher prepared the workspace at, ahead, with nothing run in it since
    /// (see `super::ahead`): it is moved on to `start` rather than checked again.
    pub prepared: Option<Oid>,
    /// What streams knows of the agent when it is a preset's CLI; `None`: an argv.
    pub preset: Option<PresetJob>,
    /// The task may end without changes (`allow_empty`), unless its agent's events show a
    /// refusal or an error.
    pub allow_empty: bool,
    /// How long, in all, the task waits for its agent's usage limit to reset (`limit_wait`).
    pub limit_wait: Duration,
    /// What the agent's runs are for: the task's work, or fixing its failed check.
    pub kind: crate::agent::usage::AttemptKind,
    /// The task's own budget: its agent is stopped the moment its streamed usage crosses it.
    pub budget: Option<crate::plan::model::Budget>,
    /// The file `{usage_file}` names, where a program that is not a preset may write its usage.
    pub usage_file: Option<PathBuf>,
}

/// A task whose agent is a preset's CLI.
pub struct PresetJob {
    pub cli: crate::agent::Cli,
    /// The task's home: the CLI's configuration folder goes there (`agent::home`).
    pub home: PathBuf,
    /// The user's own configuration folder of the CLI, which the home is seeded from.
    pub user_config: Option<PathBuf>,
    pub user_home: Option<PathBuf>,
    /// The agent's variables that say how it authenticates (for the settings it is given).
    pub auth_env: Vec<(String, String)>,
    /// The session this run continues, and what that session had reported using (Codex
    /// reports a session's running total).
    pub session_before: Option<(String, crate::agent::Usage)>,
}

/// Shared, read-only context for all executors of a run.
pub struct Shared {
    pub repo: Repo,
    pub ownership: Ownership,
    /// The run's plan (an owner's name is its stream's there).
    pub plan: Arc<crate::plan::Plan>,
    pub journal: Arc<Journal>,
}

#[derive(Debug)]
pub enum TaskOutcome {
    Committed {
        end: Oid,
        stats: WorkStats,
        agent: Duration,
        attempts: u32,
    },
    Failed {
        reason: FailReason,
        agent: Duration,
        attempts: u32,
    },
    /// The run was interrupted while the agent ran; the worktree is left as it was.
    Interrupted { agent: Duration, attempts: u32 },
    /// Its agent's usage limit did not reset within `limit_wait`: stopped, its work kept.
    Stopped {
        stop: Stop,
        agent: Duration,
        attempts: u32,
    },
}

impl TaskOutcome {
    fn failed(reason: FailReason, agent: Duration, attempts: u32) -> TaskOutcome {
        TaskOutcome::Failed {
            reason,
            agent,
            attempts,
        }
    }

    /// streams' own step failed (not the agent): told as an internal failure.
    fn internal(message: String, attempts: u32) -> TaskOutcome {
        TaskOutcome::failed(FailReason::Internal { message }, Duration::ZERO, attempts)
    }
}

/// Runs the task to its end and tells the dispatcher how it ended.
pub async fn run_task(
    shared: Arc<Shared>,
    job: TaskJob,
    events: mpsc::UnboundedSender<ExecEvent>,
    cancel: watch::Receiver<Cancel>,
) {
    let task = job.task;
    let steps = Steps {
        who: format!("{} task {}", job.stream, task.number()),
        shared: &shared,
        job: &job,
        events: &events,
        since: Mutex::new(Instant::now()),
    };
    let outcome = steps.run(cancel).await.unwrap_or_else(|ended| ended);
    let _ = events.send(ExecEvent::Finished { task, outcome });
}

/// What every step of one task sees.
struct Steps<'a> {
    shared: &'a Arc<Shared>,
    job: &'a TaskJob,
    events: &'a mpsc::UnboundedSender<ExecEvent>,
    /// For the debug log of where a task's time goes: `<stream> task <n>`, and when the last
    /// step logged ended.
    who: String,
    since: Mutex<Instant>,
}

impl Steps<'_> {
    /// The steps in order; `Err`: a step ended the task early.
    async fn run(&self, mut cancel: watch::Receiver<Cancel>) -> Result<TaskOutcome, TaskOutcome> {
        let (lane, ws) = prepare::prepare(self, &cancel).await?;
        let ran = attempt::agent(self, &lane, &ws, &mut cancel).await?;
        let verified = verify::work(self, &ran, &ws).await?;
        attempt::changed_something(self, &lane, &ran, &verified)?;
        let end = commit::end(self, &ran, &ws, &verified).await?;
        let stats = bring::into_repository(self, &ran, &ws, verified, &end).await?;
        Ok(TaskOutcome::Committed {
            end,
            stats,
            agent: ran.agent,
            attempts: ran.attempts,
        })
    }

    /// Logs how long the step just ended took (`STREAMS_LOG=streams::exec=debug`): where a
    /// stream's time goes besides its agent.
    fn lap(&self, what: &str) {
        let mut since = self.since.lock().unwrap_or_else(|e| e.into_inner());
        lap(&self.who, what, *since);
        *since = Instant::now();
    }

    /// A note on the stream, for the person watching.
    fn note(&self, message: String) {
        let _ = self.events.send(ExecEvent::Note {
            stream: self.job.task.stream,
            message,
        });
    }
}

/// Logs how long `what` took since `since` (see [`Steps::lap`]), for steps timed inside a
/// blocking closure.
fn lap(who: &str, what: &str, since: Instant) -> Instant {
    tracing::debug!(
        "{who}: {what} {:.1} ms",
        since.elapsed().as_secs_f64() * 1000.0
    );
    Instant::now()
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f)
        .await
        .expect("blocking git work panicked")
}
