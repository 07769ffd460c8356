//! Running one task: prepare the worktree, run the agent (with retries), check what it changed
//! against the stream's ownership, and commit what it left.
//!
//! An executor owns nothing but its task: it reports to the dispatcher through events and never
//! touches the run state. Before anything it does could lose work (a retry resets the worktree,
//! a rejected task is rolled back), it keeps that work on a ref (`layout::RefNames`).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use super::process::{self, AgentCommand, AgentExit, Cancel, Limits};
use super::sandbox::{self, Lane};
use crate::failpoint;
use crate::git::{self, Repo, changes, commit, refs, workspace};
use crate::ids::Oid;
use crate::layout::RefNames;
use crate::ownership::{Owner, Ownership};
use crate::state::{FailReason, Journal, OwnershipViolation, WorkStats};
use crate::work::IgnoredFiles;

/// Everything one task needs. Built by the dispatcher, which owns the plan and the state.
pub struct TaskJob {
    pub stream_index: usize,
    pub task_index: usize,
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
    pub lock_reason: String,
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
}

/// Shared, read-only context for all executors of a run.
pub struct Shared {
    pub repo: Repo,
    pub ownership: Ownership,
    pub stream_names: Vec<String>,
    pub journal: Arc<Journal>,
}

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
}

pub async fn run_task(
    shared: Arc<Shared>,
    job: TaskJob,
    events: mpsc::UnboundedSender<ExecEvent>,
    cancel: watch::Receiver<Cancel>,
) {
    let (stream, task) = (job.stream_index, job.task_index);
    let outcome = run_task_inner(&shared, &job, &events, cancel).await;
    let _ = events.send(ExecEvent::Finished {
        stream,
        task,
        outcome,
    });
}

/// Logs how long one of a task's steps took (`STREAMS_LOG=streams::exec=debug`): where a
/// stream's time goes besides its agent.
fn phase(who: &str, what: &str, since: std::time::Instant) -> std::time::Instant {
    tracing::debug!(
        "{who}: {what} {:.1} ms",
        since.elapsed().as_secs_f64() * 1000.0
    );
    std::time::Instant::now()
}

/// Tells what preparing a stream's workspace found there (work kept, a workspace repaired).
pub(super) fn report_prepared(
    events: &mpsc::UnboundedSender<ExecEvent>,
    stream: usize,
    report: &git::worktree::PrepareReport,
) {
    if let Some((kept, saved)) = &report.saved {
        let _ = events.send(ExecEvent::Note {
            stream,
            message: format!(
                "uncommitted work found in its workspace was kept on {kept} ({})",
                &saved[..10]
            ),
        });
    }
    if report.repaired {
        let _ = events.send(ExecEvent::Note {
            stream,
            message: "a damaged or outdated workspace was removed and created again".into(),
        });
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f)
        .await
        .expect("blocking git work panicked")
}

async fn run_task_inner(
    shared: &Arc<Shared>,
    job: &TaskJob,
    events: &mpsc::UnboundedSender<ExecEvent>,
    mut cancel: watch::Receiver<Cancel>,
) -> TaskOutcome {
    let internal = |message: String, attempts: u32| TaskOutcome::Failed {
        reason: FailReason::Internal { message },
        agent: Duration::ZERO,
        attempts,
    };

    // 1. The workspace, on the stream branch at the task's start.
    let mut clock = std::time::Instant::now();
    let who = format!("{} task {}", job.stream, job.task_index + 1);
    let prepared = {
        let (repo, path, branch, start) = (
            shared.repo.clone(),
            job.worktree.clone(),
            job.branch.clone(),
            job.start.clone(),
        );
        let (wip, sparse, ahead) = (
            job.refs.wip(&job.stream, job.task_index),
            job.sparse.clone(),
            job.prepared.clone(),
        );
        blocking(move || {
            let spec = workspace::WorkspaceSpec {
                path: &path,
                branch: &branch,
                commit: &start,
                wip_ref: &wip,
                sparse: sparse.as_ref(),
            };
            // Prepared ahead: moved on to the start by the files that differ. Should that
            // fail (a file changed there meanwhile), the whole preparation keeps what it finds.
            if let Some(at) = ahead
                && workspace::advance(&repo, &spec, &at).is_ok()
            {
                return Ok(git::worktree::PrepareReport {
                    how: git::worktree::Prepared::Ready,
                    saved: None,
                    repaired: false,
                });
            }
            workspace::prepare(&repo, &spec)
        })
        .await
    };
    clock = phase(&who, "workspace", clock);
    match prepared {
        Ok(report) => report_prepared(events, job.stream_index, &report),
        Err(e) => {
            return internal(
                format!(
                    "could not prepare the workspace {}: {e}",
                    job.worktree.display()
                ),
                job.previous_attempts,
            );
        }
    }
    // Its git dirs and, when sandboxed, what it may write: known once the workspace exists.
    let (worktree, spec) = (job.worktree.clone(), job.sandbox.clone());
    let lane = match blocking(move || Lane::for_task(&worktree, &spec)).await {
        Ok(lane) => Arc::new(lane),
        Err(message) => {
            let reason = FailReason::Spawn { message };
            let (agent, attempts) = (Duration::ZERO, job.previous_attempts);
            return TaskOutcome::Failed {
                reason,
                agent,
                attempts,
            };
        }
    };
    // The workspace's environment: ignored files from the checkout, then `setup`.
    if let Some(include) = job.include.clone() {
        let workspace = job.worktree.clone();
        if let Err(message) = blocking(move || include.run(&workspace)).await {
            return TaskOutcome::Failed {
                reason: FailReason::Setup { message },
                agent: Duration::ZERO,
                attempts: job.previous_attempts,
            };
        }
    }
    if let Some(setup) = &job.setup {
        let stream = job.stream_index;
        let _ = events.send(ExecEvent::SetupStarted { stream });
        let started_at = crate::state::now_ms();
        let (journal, name, task) = (shared.journal.clone(), job.stream.clone(), job.task_index);
        let result = super::setup::run(
            &shared.repo,
            &job.worktree,
            &job.start,
            setup,
            cancel.clone(),
            move |pgid| {
                // As for an agent: `resume` finds a group left running by a dead coordinator.
                let _ = journal.append(crate::state::Entry::AgentSpawned {
                    stream: name,
                    task,
                    pgid,
                });
            },
        )
        .await;
        let (failure, at) = match &result {
            super::setup::SetupResult::Done => (None, Some(job.start.clone())),
            super::setup::SetupResult::Failed(why) => (Some(why.clone()), None),
            super::setup::SetupResult::Interrupted => (Some("interrupted".into()), None),
        };
        let _ = events.send(ExecEvent::SetupFinished {
            stream,
            started_at,
            failure,
            at,
        });
        match result {
            super::setup::SetupResult::Done => {}
            super::setup::SetupResult::Failed(message) => {
                return TaskOutcome::Failed {
                    reason: FailReason::Setup { message },
                    agent: Duration::ZERO,
                    attempts: job.previous_attempts,
                };
            }
            super::setup::SetupResult::Interrupted => {
                return TaskOutcome::Interrupted {
                    agent: Duration::ZERO,
                    attempts: job.previous_attempts,
                };
            }
        }
    }
    clock = phase(&who, "lane, include, setup", clock);
    failpoint::hit("before-agent");
    // Files git ignores that are newer than this were written by the agent (see step 4).
    let agent_began = std::time::SystemTime::now();

    // 2. The agent, with retries.
    let mut attempt = job.previous_attempts;
    let mut agent_time = Duration::ZERO;
    let max_attempts = job.previous_attempts.max(1) + job.retries;
    loop {
        attempt += 1;
        let header = crate::agent::log::header(
            crate::agent::log::Section::Attempt {
                stream: &job.stream,
                task: job.task_index + 1,
                attempt,
            },
            &job.argv,
        );
        let cmd = AgentCommand {
            argv: job.argv.clone(),
            cwd: job.worktree.clone(),
            env: [job.env.clone(), lane.env()].concat(),
            env_remove: git::redirecting_vars()
                .iter()
                .map(|s| s.to_string())
                .collect(),
            log_path: job.log_path.clone(),
            log_header: header,
            sandbox: Some(lane.clone()),
        };
        let (stream, task) = (job.stream_index, job.task_index);
        let journal = shared.journal.clone();
        let stream_name = job.stream.clone();
        let spawned_events = events.clone();
        let group = Arc::new(std::sync::atomic::AtomicI32::new(0));
        let spawned_group = group.clone();
        let (exit, took) = process::run_agent(cmd, job.limits, cancel.clone(), move |pgid| {
            // Journal first: if we die right after, `resume` still finds the group to stop.
            let _ = journal.append(crate::state::Entry::AgentSpawned {
                stream: stream_name,
                task,
                pgid,
            });
            spawned_group.store(pgid, std::sync::atomic::Ordering::SeqCst);
            let _ = spawned_events.send(ExecEvent::Spawned {
                stream,
                task,
                attempt,
                pgid,
            });
            failpoint::hit("after-agent-spawn");
        })
        .await;
        agent_time += took;
        clock = phase(&who, "agent", clock);
        let pgid = group.load(std::sync::atomic::Ordering::SeqCst);
        if pgid > 0 {
            // run_agent stopped the whole group: nothing of it is left for `resume` to stop.
            let _ = shared.journal.append(crate::state::Entry::AgentExited {
                stream: job.stream.clone(),
                task,
                pgid,
            });
        }
        failpoint::hit("after-agent-exit");

        // What the agent left behind (a daemon, a `setsid` writer) dies with its task, before
        // anything of it is checked; then the workspace's git directory is streams' again.
        let env = job.env.clone();
        blocking(move || process::reap_strays(&env)).await;
        let sane = {
            let (repo, path) = (shared.repo.clone(), job.worktree.clone());
            blocking(move || workspace::sanitize(&repo, &path)).await
        };
        clock = phase(&who, "reap strays, sanitize", clock);
        if let Err(e) = sane {
            let kept = {
                let (repo, path, start) =
                    (shared.repo.clone(), job.worktree.clone(), job.start.clone());
                let failed = job.refs.failed(&job.stream, job.task_index);
                blocking(move || workspace::keep_files(&repo, &path, &start, &failed)).await
            };
            let kept = match kept {
                Ok(Some((name, _))) => name,
                Ok(None) => "nothing (its files were as at the task's start)".to_string(),
                Err(e) => format!("nothing (keeping its files failed: {e})"),
            };
            return TaskOutcome::Failed {
                reason: FailReason::Internal {
                    message: format!(
                        "{e}; its files are kept on {kept}; the next task recreates the workspace"
                    ),
                },
                agent: agent_time,
                attempts: attempt,
            };
        }

        if matches!(exit, AgentExit::Exited(0))
            && let Some(message) = lane.refused_writes_note(job.task_index + 1, &job.log_path)
        {
            let _ = events.send(ExecEvent::Note {
                stream: job.stream_index,
                message,
            });
        }
        let failure = match exit {
            AgentExit::Exited(0) => None,
            AgentExit::Cancelled => {
                return TaskOutcome::Interrupted {
                    agent: agent_time,
                    attempts: attempt,
                };
            }
            AgentExit::Exited(code) => Some(lane.exit_reason(code, &job.log_path)),
            AgentExit::Signaled(signal) => Some(FailReason::Signal { signal }),
            AgentExit::TimedOut(after) => Some(FailReason::TimedOut {
                after_ms: after.as_millis() as u64,
            }),
            AgentExit::Idle(after) => Some(FailReason::Idle {
                after_ms: after.as_millis() as u64,
            }),
            AgentExit::SpawnFailed(message) => {
                // Retrying cannot make a missing program appear.
                return TaskOutcome::Failed {
                    reason: FailReason::Spawn { message },
                    agent: agent_time,
                    attempts: attempt,
                };
            }
        };
        let Some(reason) = failure else { break };
        let why = (attempt < max_attempts)
            .then(|| retry_reason(&reason, &job.retry_on, &job.retry_on_output, &job.log_path))
            .flatten();
        if let Some(why) = why {
            // Keep this attempt's work, then start the next one from the task's start.
            let kept = keep_and_reset(
                &shared.repo,
                job,
                job.refs.attempt(&job.stream, job.task_index, attempt),
                true,
            )
            .await;
            if let Err(e) = kept {
                return internal(
                    format!("could not reset the worktree for a retry: {e}"),
                    attempt,
                );
            }
            let delay = backoff(job.retry_backoff, attempt - job.previous_attempts);
            let _ = events.send(ExecEvent::Retrying {
                stream: job.stream_index,
                task: job.task_index,
                attempt: attempt + 1,
                reason,
                why,
                delay,
            });
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = cancel.changed() => {
                    if *cancel.borrow() != Cancel::None {
                        return TaskOutcome::Interrupted { agent: agent_time, attempts: attempt };
                    }
                }
            }
            continue;
        }
        // Out of attempts: keep what it did for a person to look at; leave the worktree as is.
        let _ = keep_and_reset(
            &shared.repo,
            job,
            job.refs.failed(&job.stream, job.task_index),
            false,
        )
        .await;
        return TaskOutcome::Failed {
            reason,
            agent: agent_time,
            attempts: attempt,
        };
    }

    // 3. What did it change, and was it allowed to? Read-only: a git command that failed for a
    // passing reason (a lock held for a moment, a temporary file that could not be made) is
    // tried once more.
    let mut tries = 0;
    let checked = loop {
        tries += 1;
        let checked = {
            let (shared, start, worktree) =
                (shared.clone(), job.start.clone(), job.worktree.clone());
            let (stream_index, branch) = (job.stream_index, job.branch.clone());
            blocking(
                move || -> git::GitResult<Result<(Leftover, IgnoredFiles), FailKind>> {
                    let changes = changes::task_changes(&shared.repo, &worktree, &start)?;
                    // Before the branch check: a rebase stopped half way detaches HEAD, and "left its
                    // branch" would hide what happened.
                    if let Some(what) = changes.unfinished.clone() {
                        return Ok(Err(FailKind::Unfinished(what)));
                    }
                    if changes.branch.as_deref() != Some(branch.as_str()) {
                        let on = match &changes.branch {
                            Some(other) => crate::layout::short_branch(other).to_string(),
                            None => "a detached HEAD".to_string(),
                        };
                        return Ok(Err(FailKind::LeftBranch(on)));
                    }
                    if changes.rewritten {
                        return Ok(Err(FailKind::History));
                    }
                    if !changes.nested.is_empty() {
                        return Ok(Err(FailKind::Nested(changes.nested)));
                    }
                    let violations = shared
                        .ownership
                        .check(stream_index, changes.paths.iter().map(String::as_str));
                    if !violations.is_empty() {
                        let list = violations
                            .into_iter()
                            .map(|v| OwnershipViolation {
                                path: v.path,
                                owner: match v.owner {
                                    Owner::Stream(i) => Some(shared.stream_names[i].clone()),
                                    _ => None,
                                },
                            })
                            .collect();
                        return Ok(Err(FailKind::Ownership(list)));
                    }
                    // Files it wrote that git ignores stay out of its work; the note names a few, so
                    // that a task that finished with "no changes" is not a mystery.
                    let ignored =
                        git::ignored::written_since(&worktree, &changes.ignored, agent_began, 3);
                    // Nothing left uncommitted: HEAD is the task's end, no need to ask git again.
                    let leftover = if changes.dirty {
                        Leftover::Uncommitted {
                            head: changes.head,
                            paths: changes.uncommitted,
                        }
                    } else {
                        Leftover::Clean(changes.head)
                    };
                    Ok(Ok((leftover, ignored)))
                },
            )
            .await
        };
        match &checked {
            Err(e) if tries < 2 && transient(e) => {
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            _ => break checked,
        }
    };
    phase(&who, "status and ownership check", clock);
    let (leftover, ignored) = match checked {
        Err(e) => {
            let kept = keep_failed(shared, job).await;
            return internal(
                format!("could not inspect the agent's changes: {e}; {kept}"),
                attempt,
            );
        }
        Ok(Err(kind)) => {
            let nested = match &kind {
                FailKind::Nested(paths) => paths.clone(),
                _ => Vec::new(),
            };
            let kept = match keep_and_reset_nested(
                &shared.repo,
                job,
                job.refs.rejected(&job.stream, job.task_index),
                &nested,
            )
            .await
            {
                Ok(Some((name, _))) => name,
                Ok(None) => "nothing (it changed nothing)".to_string(),
                Err(e) => {
                    return internal(
                        format!("could not set the rejected work aside: {e}"),
                        attempt,
                    );
                }
            };
            let reason = match kind {
                FailKind::History => FailReason::HistoryRewritten { kept },
                FailKind::Nested(paths) => FailReason::NestedRepository { paths, kept },
                FailKind::LeftBranch(on) => FailReason::LeftBranch { on, kept },
                FailKind::Unfinished(what) => FailReason::Unfinished { what, kept },
                FailKind::Ownership(violations) => FailReason::Ownership { violations, kept },
            };
            return TaskOutcome::Failed {
                reason,
                agent: agent_time,
                attempts: attempt,
            };
        }
        Ok(Ok(checked)) => checked,
    };
    if ignored.count > 0 {
        let _ = events.send(ExecEvent::Note {
            stream: job.stream_index,
            message: crate::report::ignored_note(job.task_index + 1, &ignored),
        });
    }
    // 4. Commit what it left; measure the work.
    failpoint::hit("before-commit");
    let committed = {
        let (repo, worktree, start) =
            (shared.repo.clone(), job.worktree.clone(), job.start.clone());
        let (message, identity) = (job.commit_message.clone(), job.identity_env.clone());
        let journal = shared.journal.clone();
        let (stream_name, task) = (job.stream.clone(), job.task_index);
        let branch = job.branch.clone();
        let who = who.clone();
        blocking(move || -> git::GitResult<(Oid, WorkStats)> {
            let clock = std::time::Instant::now();
            let end = match leftover {
                Leftover::Clean(head) => head,
                Leftover::Uncommitted { head, paths } => {
                    commit::commit_paths(&worktree, &head, &paths, &message, &identity)?
                }
            };
            let clock = phase(&who, "commit", clock);
            // The result enters the user's repository, on the stream's branch there.
            workspace::bring_to(&repo, &worktree, &end, Some(&branch))?;
            let clock = phase(&who, "bring into the repository", clock);
            failpoint::hit("after-commit");
            let _ = journal.append(crate::state::Entry::TaskCommitted {
                stream: stream_name,
                task,
                start: start.to_string(),
                end: end.to_string(),
            });
            let stats = changes::work_stats(&repo, &start, &end)?;
            phase(&who, "journal, work stats", clock);
            Ok((end, stats))
        })
        .await
    };
    match committed {
        Ok((end, stats)) => TaskOutcome::Committed {
            end,
            stats,
            agent: agent_time,
            attempts: attempt,
        },
        Err(e) => {
            let kept = keep_failed(shared, job).await;
            internal(
                format!("could not commit the agent's work: {e}; {kept}"),
                attempt,
            )
        }
    }
}

/// Whether a git failure may pass on its own: a lock another git held for a moment, a
/// temporary file or process that could not be made.
fn transient(error: &git::GitError) -> bool {
    let text = error.to_string();
    [
        "unable to create",
        "Unable to create",
        ".lock': File exists",
        "cannot lock ref",
        "temporarily unavailable",
        "Too many open files",
        "Interrupted system call",
    ]
    .iter()
    .any(|needle| text.contains(needle))
}

/// Keeps the task's work on its `failed/` ref after streams' own steps failed, and says where
/// (or why it could not).
async fn keep_failed(shared: &Arc<Shared>, job: &TaskJob) -> String {
    let failed = job.refs.failed(&job.stream, job.task_index);
    match keep_and_reset(&shared.repo, job, failed, false).await {
        Ok(Some((name, _))) => format!("its work is kept on {name}"),
        Ok(None) => "it changed nothing".to_string(),
        Err(e) => format!("its work is left in its workspace (keeping it failed: {e})"),
    }
}

/// What a task left in its worktree once its check passed.
enum Leftover {
    /// Nothing: HEAD is the task's end.
    Clean(Oid),
    /// Uncommitted work on top of `head`: these paths to stage, then the index to commit.
    Uncommitted { head: Oid, paths: Vec<String> },
}

enum FailKind {
    History,
    Nested(Vec<String>),
    LeftBranch(String),
    Unfinished(String),
    Ownership(Vec<OwnershipViolation>),
}

/// Why a failure is worth retrying, if it is: an exit code `retry_on` lists, or one of its
/// patterns in the last lines the agent printed; with neither set, any non-zero exit, timeout or
/// signal. `None`: not worth retrying.
fn retry_reason(
    reason: &FailReason,
    codes: &[i32],
    patterns: &[String],
    log: &std::path::Path,
) -> Option<String> {
    let any = codes.is_empty() && patterns.is_empty();
    let code = match reason {
        FailReason::Exit { code } | FailReason::SandboxedExit { code, .. } => Some(*code),
        FailReason::TimedOut { .. } | FailReason::Idle { .. } | FailReason::Signal { .. } => None,
        _ => return None,
    };
    if let Some(code) = code
        && (any || codes.contains(&code))
    {
        return Some(format!("exit {code}"));
    }
    if any {
        return Some(match reason {
            FailReason::TimedOut { .. } => "timed out".to_string(),
            FailReason::Idle { .. } => "idle".to_string(),
            _ => "killed by a signal".to_string(),
        });
    }
    let tail = crate::agent::log::last_attempt_output(log, OUTPUT_LINES).to_lowercase();
    patterns
        .iter()
        .find(|p| tail.contains(&p.to_lowercase()))
        .map(|p| format!("output \"{p}\""))
}

/// How many of the agent's last lines `retry_on` patterns are looked for in.
const OUTPUT_LINES: usize = 20;

/// 1x, 2x, 4x ... the base delay, capped at a minute.
fn backoff(base: Duration, retry: u32) -> Duration {
    let factor = 1u32 << retry.saturating_sub(1).min(16);
    (base * factor).min(Duration::from_secs(60))
}

/// Keeps everything the task did (its commits and what it left in the worktree) on `ref_name`,
/// if it did anything; then, when `reset`, puts the worktree and branch back at the task's start.
async fn keep_and_reset(
    repo: &Repo,
    job: &TaskJob,
    ref_name: String,
    reset: bool,
) -> git::GitResult<Option<(String, Oid)>> {
    keep_and_reset_inner(repo, job, ref_name, reset, &[]).await
}

/// [`keep_and_reset`] (with a reset), the files of these nested repositories kept as files.
async fn keep_and_reset_nested(
    repo: &Repo,
    job: &TaskJob,
    ref_name: String,
    nested: &[String],
) -> git::GitResult<Option<(String, Oid)>> {
    keep_and_reset_inner(repo, job, ref_name, true, nested).await
}

async fn keep_and_reset_inner(
    repo: &Repo,
    job: &TaskJob,
    ref_name: String,
    reset: bool,
    nested: &[String],
) -> git::GitResult<Option<(String, Oid)>> {
    let nested = nested.to_vec();
    let (repo, worktree, start, branch) = (
        repo.clone(),
        job.worktree.clone(),
        job.start.clone(),
        job.branch.clone(),
    );
    let message = format!(
        "streams: work of {} task {} set aside",
        job.stream,
        job.task_index + 1
    );
    blocking(move || -> git::GitResult<Option<(String, Oid)>> {
        let mut kept =
            changes::keep_work(&repo, &worktree, &start, Some(&branch), &ref_name, &message)?;
        if let Some((name, commit)) = &kept
            && !nested.is_empty()
        {
            let with_files = workspace::inline_nested(&repo, &worktree, commit, &nested)?;
            refs::update_ref(
                &repo,
                name,
                &with_files,
                Some(commit),
                "streams: nested repositories kept as files",
            )?;
            kept = Some((name.clone(), with_files));
        }
        if reset {
            workspace::reset_to(&repo, &worktree, &branch, &start)?;
        }
        // Otherwise left as it is for a person to look at: it is private, and what matters is
        // kept in the user's repository.
        Ok(kept)
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let base = Duration::from_millis(500);
        assert_eq!(backoff(base, 1), Duration::from_millis(500));
        assert_eq!(backoff(base, 2), Duration::from_millis(1000));
        assert_eq!(backoff(base, 3), Duration::from_millis(2000));
        assert_eq!(backoff(base, 30), Duration::from_secs(60));
    }

    #[test]
    fn retry_on_limits_exit_codes() {
        let none = std::path::Path::new("/nonexistent/log");
        let why = |reason: &FailReason, codes: &[i32]| retry_reason(reason, codes, &[], none);
        assert_eq!(
            why(&FailReason::Exit { code: 3 }, &[]).as_deref(),
            Some("exit 3")
        );
        assert_eq!(
            why(&FailReason::Exit { code: 3 }, &[3, 4]).as_deref(),
            Some("exit 3")
        );
        assert_eq!(why(&FailReason::Exit { code: 1 }, &[3, 4]), None);
        assert_eq!(why(&FailReason::TimedOut { after_ms: 1 }, &[3]), None);
        assert_eq!(
            why(&FailReason::TimedOut { after_ms: 1 }, &[]).as_deref(),
            Some("timed out")
        );
        let spawn = FailReason::Spawn {
            message: String::new(),
        };
        assert_eq!(why(&spawn, &[]), None);
    }

    #[test]
    fn retry_on_patterns_look_at_the_last_attempts_last_lines_only() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("1.log");
        let mut text = String::from(
            "=== streams: api task 1 attempt 1 ===\n=== argv: [\"agent\", \"overloaded\"]\nError: Rate Limit reached\n",
        );
        text.push_str(
            "=== streams: api task 1 attempt 2 ===\n=== argv: [\"agent\", \"overloaded\"]\n",
        );
        text.push_str("the API is overloaded\n");
        text.push_str(&"filler\n".repeat(OUTPUT_LINES - 1));
        std::fs::write(&log, &text).unwrap();
        let patterns = ["rate limit".to_string(), "OVERLOADED".to_string()];
        let exit = FailReason::Exit { code: 1 };
        assert_eq!(
            retry_reason(&exit, &[75], &patterns, &log).as_deref(),
            Some("output \"OVERLOADED\""),
            "case-insensitive, in this attempt's output, not in the header quoting the argv"
        );
        std::fs::write(&log, format!("{text}filler\n")).unwrap();
        assert_eq!(
            retry_reason(&exit, &[75], &patterns, &log),
            None,
            "too far up"
        );
        assert_eq!(
            retry_reason(&FailReason::Exit { code: 75 }, &[75], &patterns, &log).as_deref(),
            Some("exit 75")
        );
    }
}
