//! Step 2: the agent, attempt after attempt until one succeeds or the retries run out.
//!
//! An attempt is one run of the agent in its lane ([`run_once`]); after it, what it left
//! running dies ([`clean_up`]): from then on nothing writes the workspace while streams reads
//! it. Then its exit is judged ([`failure`]). A failure worth retrying (`retries`, `retry_on`) keeps the
//! attempt's work on a ref and starts over from the task's start after a backoff.

use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Duration;

use tokio::sync::watch;

use super::{Steps, TaskOutcome, blocking, keep};
use crate::exec::events::ExecEvent;
use crate::exec::process::{self, AgentCommand, AgentExit, Cancel};
use crate::exec::sandbox::Lane;
use crate::failpoint;
use crate::state::{Entry, FailReason};
use crate::workspace::{FsTime, Workspace, read};

/// The agent's run that succeeded, and what the steps after it need to know of it.
pub(super) struct Ran {
    /// How long the agent ran, over every attempt.
    pub agent: Duration,
    /// Attempts used, those of earlier executors of the task included.
    pub attempts: u32,
    /// When the first attempt started, on the workspace's file system: files git ignores
    /// written since were written by the agent.
    pub began: FsTime,
}

/// One run of the agent.
struct Attempt {
    /// Counted over the task's life (a resumed task goes on counting).
    number: u32,
    exit: AgentExit,
    took: Duration,
}

/// Runs the agent until an attempt succeeds. `Err`: it failed for good, or the run was
/// interrupted.
pub(super) async fn agent(
    task: &Steps<'_>,
    lane: &Arc<Lane>,
    ws: &Workspace,
    cancel: &mut watch::Receiver<Cancel>,
) -> Result<Ran, TaskOutcome> {
    let job = task.job;
    failpoint::hit("before-agent");
    // A moment after everything streams (and `setup`) wrote, before anything the agent writes.
    let began = {
        let ws = ws.clone();
        blocking(move || read::after_now(&ws)).await
    };
    let began = match began {
        Ok(began) => began,
        Err(e) => {
            return Err(TaskOutcome::internal(
                format!("could not prepare the workspace: {e}"),
                job.previous_attempts,
            ));
        }
    };
    let mut number = job.previous_attempts;
    let mut agent = Duration::ZERO;
    let max_attempts = job.previous_attempts.max(1) + job.retries;
    loop {
        number += 1;
        let attempt = run_once(task, lane, number, cancel).await;
        agent += attempt.took;
        task.lap("agent");
        clean_up(task).await;
        let Some(reason) = failure(task, lane, &attempt, agent)? else {
            return Ok(Ran {
                agent,
                attempts: number,
                began,
            });
        };
        let why = (number < max_attempts)
            .then(|| retry_reason(&reason, &job.retry_on, &job.retry_on_output, &job.log_path))
            .flatten();
        let Some(why) = why else {
            // Out of attempts: keep what it did for a person to look at; leave the workspace as
            // it is.
            let failed = job.refs.failed(&job.stream, job.task.index);
            let _ = keep::work(task, ws, failed, keep::Then::Leave).await;
            return Err(TaskOutcome::failed(reason, agent, number));
        };
        retry(task, ws, &attempt, reason, why, agent, cancel).await?;
    }
}

/// Runs the agent once, journaling its process group for `resume` to stop should streams die
/// meanwhile.
async fn run_once(
    task: &Steps<'_>,
    lane: &Arc<Lane>,
    number: u32,
    cancel: &watch::Receiver<Cancel>,
) -> Attempt {
    let (shared, job) = (task.shared, task.job);
    let title = format!("{} task {} attempt {number}", job.stream, job.task.number());
    let cmd = AgentCommand::new(
        job.argv.clone(),
        job.worktree.clone(),
        [job.env.clone(), lane.env()].concat(),
        job.log_path.clone(),
        crate::agent::log::header(&title, &job.argv),
    )
    .confined(lane.clone());
    let (task_id, task_index) = (job.task, job.task.index);
    let journal = shared.journal.clone();
    let stream_name = job.stream.clone();
    let spawned_events = task.events.clone();
    let group = Arc::new(AtomicI32::new(0));
    let spawned_group = group.clone();
    let (exit, took) = process::run_agent(cmd, job.limits, cancel.clone(), move |pgid| {
        // Journal first: if we die right after, `resume` still finds the group to stop.
        let _ = journal.append(Entry::AgentSpawned {
            stream: stream_name,
            task: task_index,
            pgid,
        });
        spawned_group.store(pgid, Ordering::SeqCst);
        let _ = spawned_events.send(ExecEvent::Spawned {
            task: task_id,
            attempt: number,
            pgid,
        });
        failpoint::hit("after-agent-spawn");
    })
    .await;
    let pgid = group.load(Ordering::SeqCst);
    if pgid > 0 {
        // run_agent stopped the whole group: nothing of it is left for `resume` to stop.
        let _ = shared.journal.append(Entry::AgentExited {
            stream: job.stream.clone(),
            task: task_index,
            pgid,
        });
    }
    failpoint::hit("after-agent-exit");
    Attempt { number, exit, took }
}

/// What the agent left behind (a daemon, a `setsid` writer) dies with its attempt, before
/// anything of it is read.
async fn clean_up(task: &Steps<'_>) {
    let env = task.job.env.clone();
    blocking(move || process::reap_strays(&env)).await;
    task.lap("reap strays");
}

/// Why the attempt failed; `None`: it succeeded. `Err`: it ended the task whatever the retries
/// (interrupted, or a program that could not start: retrying cannot make it appear).
fn failure(
    task: &Steps<'_>,
    lane: &Lane,
    attempt: &Attempt,
    agent: Duration,
) -> Result<Option<FailReason>, TaskOutcome> {
    let job = task.job;
    let attempts = attempt.number;
    if attempt.exit == AgentExit::Exited(0)
        && let Some(message) = lane.refused_writes_note(job.task.number(), &job.log_path)
    {
        task.note(message);
    }
    Ok(match &attempt.exit {
        AgentExit::Exited(0) => None,
        AgentExit::Cancelled => return Err(TaskOutcome::Interrupted { agent, attempts }),
        AgentExit::Exited(code) => Some(lane.exit_reason(*code, &job.log_path)),
        AgentExit::Signaled(signal) => Some(FailReason::Signal { signal: *signal }),
        AgentExit::TimedOut(after) => Some(FailReason::TimedOut {
            after_ms: after.as_millis() as u64,
        }),
        AgentExit::Idle(after) => Some(FailReason::Idle {
            after_ms: after.as_millis() as u64,
        }),
        AgentExit::SpawnFailed(message) => {
            let reason = FailReason::Spawn {
                message: message.clone(),
            };
            return Err(TaskOutcome::failed(reason, agent, attempts));
        }
    })
}

/// Keeps the failed attempt's work, puts the workspace back at the task's start, tells the
/// dispatcher, and waits the backoff. `Err`: the reset failed, or the run was interrupted.
async fn retry(
    task: &Steps<'_>,
    ws: &Workspace,
    attempt: &Attempt,
    reason: FailReason,
    why: String,
    agent: Duration,
    cancel: &mut watch::Receiver<Cancel>,
) -> Result<(), TaskOutcome> {
    let job = task.job;
    let number = attempt.number;
    let kept_on = job.refs.attempt(&job.stream, job.task.index, number);
    if let Err(e) = keep::work(task, ws, kept_on, keep::Then::Reset).await {
        return Err(TaskOutcome::internal(
            format!("could not reset the worktree for a retry: {e}"),
            number,
        ));
    }
    let delay = backoff(job.retry_backoff, number - job.previous_attempts);
    let _ = task.events.send(ExecEvent::Retrying {
        task: job.task,
        attempt: number + 1,
        reason,
        why,
        delay,
    });
    tokio::select! {
        _ = tokio::time::sleep(delay) => {}
        _ = cancel.changed() => {
            if *cancel.borrow() != Cancel::None {
                return Err(TaskOutcome::Interrupted { agent, attempts: number });
            }
        }
    }
    Ok(())
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
