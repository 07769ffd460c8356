//! A task's record: where it stands (its state carries its data: a running task has its start
//! commit, a committed one its end), its attempts and usage, and why it stopped or failed.

use serde::{Deserialize, Serialize};

use crate::agent::usage::AttemptUsage;
use crate::ids::Oid;
use crate::work::WorkStats;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TaskRecord {
    /// One line, for progress and commit subjects.
    pub summary: String,
    pub state: TaskState,
    /// Attempts started so far (1 + retries used).
    #[serde(default)]
    pub attempts: u32,
    /// Agent time summed over attempts, in milliseconds.
    #[serde(default)]
    pub agent_ms: u64,
    /// Why each retry was made, in order (`exit 75`, `output "rate limit"`, `timed out`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retried_for: Vec<String>,
    /// Set while the agent runs again to fix a failed check: where the task's work began and
    /// what it amounted to before the fix (the fix starts from the task's end).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fixing: Option<CheckFix>,
    /// What each attempt of a preset's agent used, as its events said (tokens by kind, cost,
    /// turns, models, session), in order. Absent from older state files and for agents that
    /// are an argv.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub usage: Vec<AttemptUsage>,
    /// Set while the task waits for its agent's usage limit to reset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting: Option<LimitWait>,
    /// How many times it waited for its agent's usage limit to reset (each wait is an attempt
    /// more that is not a retry; absent in older state files and when it never waited).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub limit_waits: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// A task waiting for its agent's usage limit to reset before its next attempt.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LimitWait {
    /// When the wait began and when it ends (milliseconds since the epoch).
    pub since: u64,
    pub until: u64,
    /// Whether `until` is the reset time the provider gave (else a backoff).
    pub reset_known: bool,
    /// The provider's message.
    pub message: String,
}

impl TaskRecord {
    /// A task not started yet.
    pub fn pending(summary: String) -> TaskRecord {
        TaskRecord {
            summary,
            state: TaskState::Pending,
            attempts: 0,
            agent_ms: 0,
            retried_for: Vec::new(),
            fixing: None,
            usage: Vec::new(),
            waiting: None,
            limit_waits: 0,
        }
    }
}

/// A task whose check failed, sent back to its agent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckFix {
    pub start: Oid,
    pub stats: WorkStats,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum TaskState {
    Pending,
    /// The agent runs (or ran, if the coordinator crashed) from `start`.
    Running {
        start: Oid,
        started_at: u64,
        /// The agent's process group, once spawned.
        #[serde(default)]
        pgid: Option<i32>,
    },
    /// Its work is committed on the stream branch, waiting for its sync point.
    Committed {
        start: Oid,
        end: Oid,
        stats: WorkStats,
        finished_at: u64,
    },
    /// Its work is on the integration branch.
    Integrated {
        start: Oid,
        end: Oid,
        stats: WorkStats,
        finished_at: u64,
    },
    Failed {
        reason: FailReason,
        at: u64,
    },
    /// Stopped by a limit (not a failure): its work is kept, `retry` goes on from it.
    Stopped {
        stop: Stop,
        at: u64,
    },
    /// Will not run (its stream failed or was skipped).
    Skipped,
}

/// Why a task or stream was stopped (exit code 6): the work stands, `retry` goes on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Stop {
    /// The agent's usage limit did not reset within `limit_wait`.
    UsageLimit {
        /// The provider's message.
        message: String,
        /// When the provider said it resets (seconds since the epoch), if it said.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        resets_at: Option<u64>,
        /// Where the task's work is kept, if it did any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        kept: Option<String>,
    },
    /// A budget ran out: the task's own (its agent crossed it), or one it shares with its
    /// stream or the plan.
    Budget {
        /// Whose budget: `task`, `stream`, `plan` (or `shared` while not known which).
        budget: String,
        /// What was spent against which limit, in words (`2100 tokens of 2000`).
        spent: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        kept: Option<String>,
    },
}

impl std::fmt::Display for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Stop::UsageLimit {
                message,
                resets_at,
                kept,
            } => {
                write!(f, "usage limit: {message}")?;
                if let Some(at) = resets_at {
                    let when = humantime::format_rfc3339_seconds(
                        std::time::UNIX_EPOCH + std::time::Duration::from_secs(*at),
                    );
                    write!(f, " (resets at {when})")?;
                }
                if let Some(kept) = kept {
                    write!(f, "; its work is kept on {kept}")?;
                }
                write!(f, "; `streams retry` goes on")
            }
            Stop::Budget {
                budget,
                spent,
                kept,
            } => {
                write!(f, "budget: the {budget} budget ran out ({spent})")?;
                if let Some(kept) = kept {
                    write!(f, "; its work is kept on {kept}")?;
                }
                if budget == "--max-cost" {
                    write!(f, "; `streams retry --max-cost` with more goes on")
                } else {
                    write!(f, "; `streams retry --budget` raises it and goes on")
                }
            }
        }
    }
}

impl TaskState {
    pub fn name(&self) -> &'static str {
        match self {
            TaskState::Pending => "pending",
            TaskState::Running { .. } => "running",
            TaskState::Committed { .. } => "committed",
            TaskState::Integrated { .. } => "integrated",
            TaskState::Failed { .. } => "failed",
            TaskState::Stopped { .. } => "stopped",
            TaskState::Skipped => "skipped",
        }
    }

    pub fn stats(&self) -> Option<&WorkStats> {
        match self {
            TaskState::Committed { stats, .. } | TaskState::Integrated { stats, .. } => Some(stats),
            _ => None,
        }
    }

    /// The commits a task's work spans, once it is committed.
    pub fn range(&self) -> Option<(Oid, Oid)> {
        match self {
            TaskState::Committed { start, end, .. } | TaskState::Integrated { start, end, .. } => {
                Some((start.clone(), end.clone()))
            }
            _ => None,
        }
    }

    pub fn end(&self) -> Option<&Oid> {
        match self {
            TaskState::Committed { end, .. } | TaskState::Integrated { end, .. } => Some(end),
            _ => None,
        }
    }
}

/// Why a task failed. Carried in state, events and the report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FailReason {
    /// The agent exited with a non-zero code.
    Exit {
        code: i32,
    },
    /// The agent exited with a non-zero code while the sandbox confined its writes; `denied`:
    /// its output shows a write refused by the kernel.
    SandboxedExit {
        code: i32,
        denied: bool,
    },
    /// The agent was killed by a signal it did not get from us.
    Signal {
        signal: i32,
    },
    TimedOut {
        after_ms: u64,
    },
    Idle {
        after_ms: u64,
    },
    /// A preset's CLI (`cli`, its name) kept failing to reach its model, with no progress, and
    /// was stopped after `attempts` failures over `after_ms`; `message`: its words about them.
    Unreachable {
        cli: String,
        attempts: u32,
        after_ms: u64,
        message: String,
    },
    /// The agent could not be started (not found, not executable, no agent configured).
    Spawn {
        message: String,
    },
    /// It changed paths its stream does not own; its work is kept on `kept`.
    Ownership {
        violations: Vec<OwnershipViolation>,
        kept: String,
    },
    /// It rewrote history below the task's start; its work is kept on `kept`.
    HistoryRewritten {
        kept: String,
    },
    /// It left the stream's branch (checked out another one, or detached HEAD).
    LeftBranch {
        on: String,
        kept: String,
    },
    /// It left a git operation half done (a merge with conflicts, a rebase).
    Unfinished {
        what: String,
        kept: String,
    },
    /// It made nested repositories (committing them would keep only a gitlink to commits
    /// nobody else has); its work, their files included, is kept on `kept`.
    NestedRepository {
        paths: Vec<String>,
        kept: String,
    },
    /// It moved branches other than its own; they were put back.
    MovedBranches {
        branches: Vec<String>,
        kept: String,
    },
    /// The workspace's `setup` failed (exit, timeout, or it changed files git would commit).
    Setup {
        message: String,
    },
    /// streams itself could not finish the task (git failed, disk full).
    Internal {
        message: String,
    },
    /// The agent's own events report a failure, a refusal or a run that never finished, which
    /// its exit code (`code`) may not show.
    Reported {
        code: i32,
        message: String,
    },
    /// The agent changed nothing (and the task does not allow that): what its events say.
    NoChanges {
        said: Vec<String>,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwnershipViolation {
    pub path: String,
    /// The owning stream, `None` when nobody owns it (read-only).
    pub owner: Option<String>,
}

impl std::fmt::Display for FailReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FailReason::Exit { code } => write!(f, "agent exited with code {code}"),
            FailReason::SandboxedExit { code, denied: true } => write!(
                f,
                "agent exited with code {code}; the sandbox denied it writes outside its workspace (its output says \"Permission denied\"): list what it must write in `sandbox_writable`"
            ),
            FailReason::SandboxedExit {
                code,
                denied: false,
            } => write!(
                f,
                "agent exited with code {code} while the sandbox kept its writes inside its workspace (its output shows no refused write); if it must write elsewhere, list that in `sandbox_writable`"
            ),
            FailReason::Signal { signal } => write!(f, "agent was killed by signal {signal}"),
            FailReason::TimedOut { after_ms } => {
                write!(
                    f,
                    "timed out after {}",
                    crate::duration::fmt_duration_ms(*after_ms)
                )
            }
            FailReason::Idle { after_ms } => write!(
                f,
                "no output for {} (idle timeout)",
                crate::duration::fmt_duration_ms(*after_ms)
            ),
            FailReason::Unreachable {
                cli,
                attempts,
                after_ms,
                message,
            } => {
                let known = crate::agent::Cli::from_name(cli);
                let check = known.map_or(
                    "the address of its model, its API key and the network",
                    |cli| cli.where_its_model_is(),
                );
                let who = known.map_or(cli.as_str(), |cli| cli.product());
                write!(
                    f,
                    "{who} could not reach its model: \"{message}\"; stopped after {attempts} failed attempt{} over {}; check {check}",
                    if *attempts == 1 { "" } else { "s" },
                    crate::duration::fmt_duration_ms(*after_ms)
                )
            }
            FailReason::Spawn { message } => write!(f, "could not start the agent: {message}"),
            FailReason::Ownership { violations, kept } => {
                use crate::text::quote_path;
                write!(f, "changed paths it does not own: ")?;
                for (i, v) in violations.iter().enumerate() {
                    if i > 0 {
                        write!(f, ", ")?;
                    }
                    if i == 5 {
                        write!(f, "and {} more", violations.len() - 5)?;
                        break;
                    }
                    match &v.owner {
                        Some(owner) => write!(f, "{} (owned by {owner})", quote_path(&v.path))?,
                        None => write!(f, "{} (owned by no stream)", quote_path(&v.path))?,
                    }
                }
                write!(f, "; its work is kept on {kept}")
            }
            FailReason::HistoryRewritten { kept } => write!(
                f,
                "rewrote history below the task's start; its work is kept on {kept}"
            ),
            FailReason::LeftBranch { on, kept } => {
                write!(f, "left its branch for {on}; its work is kept on {kept}")
            }
            FailReason::Unfinished { what, kept } => {
                write!(f, "left {what} unfinished; its work is kept on {kept}")
            }
            FailReason::NestedRepository { paths, kept } => write!(
                f,
                "made a nested repository at {} (only a link to commits nobody else has would be committed); its work, with the nested repository's files, is kept on {kept}",
                paths.join(", ")
            ),
            FailReason::MovedBranches { branches, kept } => write!(
                f,
                "moved branches that are not its own: {} (put back; what it left there is kept on {kept})",
                branches.join(", ")
            ),
            FailReason::Internal { message } => write!(f, "{message}"),
            FailReason::Reported { code: 0, message } => write!(f, "agent reported: {message}"),
            FailReason::Reported { code, message } => {
                write!(f, "agent exited with code {code}: {message}")
            }
            FailReason::NoChanges { said } if said.is_empty() => write!(
                f,
                "no changes: its agent changed no file and made no commit (`allow_empty = true` lets a task meant to change nothing pass)"
            ),
            FailReason::NoChanges { said } => write!(f, "no changes: {}", said.join("; ")),
            FailReason::Setup { message } => write!(f, "{message}"),
        }
    }
}
