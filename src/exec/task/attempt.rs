//! Step 2: the agent, attempt after attempt until one succeeds or the retries run out.
//!
//! An attempt is one run of the agent in its lane ([`run_once`]); after it, what it left
//! running dies ([`clean_up`]): from then on nothing writes the workspace while streams reads
//! it. Then its end is judged ([`failure`]): from its exit, and for a preset's CLI from its
//! events too (`agent::events`: an exit code of 0 does not mean it finished). A failure worth
//! retrying (`retries`, `retry_on`) keeps the attempt's work on a ref and starts over from the
//! task's start after a backoff.
//!
//! A usage limit is not a failure: the task waits until the limit resets (the time the CLI
//! gave, or a backoff), at most `limit_wait` in all, and runs the agent again from where it
//! left its workspace, without counting a retry; past `limit_wait` the task stops, its work
//! kept ([`TaskOutcome::Stopped`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, SystemTime};

use tokio::sync::watch;

use super::verify::Verified;
use super::{Steps, TaskOutcome, blocking, keep};
use crate::agent::events::{self, LimitHit, Observed};
use crate::agent::usage::AttemptUsage;
use crate::exec::events::ExecEvent;
use crate::exec::process::{self, AgentCommand, AgentExit, Cancel};
use crate::exec::sandbox::Lane;
use crate::failpoint;
use crate::state::{Entry, FailReason, LimitWait, Stop};
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
    /// What the last attempt's events said, for a preset's CLI.
    pub observed: Option<Observed>,
}

/// One run of the agent.
struct Attempt {
    /// Counted over the task's life (a resumed task goes on counting).
    number: u32,
    exit: AgentExit,
    took: Duration,
    /// What its events said, for a preset's CLI.
    observed: Option<Observed>,
}

/// The first wait for a usage limit whose reset time the CLI did not give; each further one
/// is twice as long, up to [`LIMIT_BACKOFF_MAX`] (and never past `limit_wait`).
const LIMIT_BACKOFF: Duration = Duration::from_secs(60);
const LIMIT_BACKOFF_MAX: Duration = Duration::from_secs(15 * 60);
/// Waited past a reset time the CLI gave (clocks differ; the time may be rounded to a minute).
const RESET_MARGIN: Duration = Duration::from_secs(2);

/// Runs the agent until an attempt succeeds. `Err`: it failed for good, a usage limit stopped
/// it, or the run was interrupted.
pub(super) async fn agent(
    task: &Steps<'_>,
    lane: &Arc<Lane>,
    ws: &Workspace,
    cancel: &mut watch::Receiver<Cancel>,
) -> Result<Ran, TaskOutcome> {
    let job = task.job;
    failpoint::hit("before-agent");
    seed_home(task).await;
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
    let mut max_attempts = job.previous_attempts.max(1) + job.retries;
    let mut waited = Duration::ZERO;
    let mut waits = 0;
    let mut session_before = job.preset.as_ref().and_then(|p| p.session_before.clone());
    loop {
        number += 1;
        if let Some(path) = &job.usage_file {
            // A file left by an earlier attempt is not this one's report.
            let _ = std::fs::remove_file(path);
        }
        let litter_before = litter_present(task);
        let mut attempt = run_once(task, lane, number, cancel, &session_before).await;
        agent += attempt.took;
        task.lap("agent");
        clean_up(task).await;
        remove_litter(task, &litter_before);
        attempt.observed = observe(task, &attempt);
        record_usage(task, &attempt, &mut session_before);
        if let AgentExit::OverBudget(what) = &attempt.exit {
            return Err(over_budget(task, ws, what.clone(), agent, number).await);
        }
        if attempt.exit != AgentExit::Cancelled
            && let Some(limit) = attempt.observed.as_ref().and_then(|o| o.limit.clone())
        {
            let left = job.limit_wait.saturating_sub(waited);
            let Some((delay, reset_known)) = limit_delay(&limit, now_secs(), left, waits) else {
                return Err(stop(task, ws, limit, agent, number).await);
            };
            wait_for_limit(task, &limit, delay, reset_known, agent, number, cancel).await?;
            waited += delay;
            waits += 1;
            // Not a failure: it does not use up a retry.
            max_attempts += 1;
            continue;
        }
        let Some(reason) = failure(task, lane, &attempt, agent)? else {
            return Ok(Ran {
                agent,
                attempts: number,
                began,
                observed: attempt.observed,
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

/// A preset's CLI gets its own configuration folder in the task's home, seeded from the user's
/// at the first attempt (later attempts find it as the CLI left it, but for what the user changed
/// in their own since). A failure is told, not fatal: the CLI may
/// well run without the user's setup.
async fn seed_home(task: &Steps<'_>) {
    let Some(preset) = &task.job.preset else {
        return;
    };
    let (cli, home) = (preset.cli, preset.home.clone());
    let (user, user_home) = (preset.user_config.clone(), preset.user_home.clone());
    let env = preset.auth_env.clone();
    let seeded = blocking(move || {
        let var = |name: &str| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        crate::agent::home::prepare(cli, &home, user.as_deref(), user_home.as_deref(), &var)
    })
    .await;
    match seeded {
        Ok(copied) if !copied.is_empty() => tracing::debug!(
            "{}: the {} home was seeded from {}",
            task.who,
            cli.name(),
            copied.join(", ")
        ),
        Ok(_) => {}
        Err(e) => task.note(format!(
            "task {}: could not prepare the {} configuration folder in {}: {e}; it runs without the user's settings",
            task.job.task.number(),
            cli.product(),
            preset.home.display()
        )),
    }
}

/// Which of its CLI's litter (`Cli::litter`) the workspace holds before an attempt: what was
/// there before is not the attempt's to remove.
fn litter_present(task: &Steps<'_>) -> Vec<bool> {
    let Some(preset) = &task.job.preset else {
        return Vec::new();
    };
    preset
        .cli
        .litter()
        .iter()
        .map(|name| task.job.worktree.join(name).symlink_metadata().is_ok())
        .collect()
}

/// Removes what the attempt's CLI left in the workspace that is not work (aider's repository
/// map cache), before the work is read.
fn remove_litter(task: &Steps<'_>, before: &[bool]) {
    let Some(preset) = &task.job.preset else {
        return;
    };
    for (name, was_there) in preset.cli.litter().iter().zip(before) {
        let path = task.job.worktree.join(name);
        if *was_there || path.symlink_metadata().is_err() {
            continue;
        }
        let _ = if path.is_dir() {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
    }
}

/// What the attempt's events said (a preset's CLI; `None` for an argv).
fn observe(task: &Steps<'_>, attempt: &Attempt) -> Option<Observed> {
    let preset = task.job.preset.as_ref()?;
    if matches!(attempt.exit, AgentExit::SpawnFailed(_)) {
        return None;
    }
    let output = crate::agent::log::last_attempt(&task.job.log_path, OUTPUT_READ);
    Some(events::observe(
        preset.cli,
        &output,
        Some(&task.job.worktree),
        now_secs(),
    ))
}

/// How much of the end of an attempt's output its events are read from.
const OUTPUT_READ: u64 = 64 * 1024 * 1024;

/// Tells the dispatcher what the attempt used (kept in the task's record): a preset's CLI by
/// its events, any other program by the generic form (its `{usage_file}`, else its last
/// `streams_usage` line); a cost the agent did not state is priced from `[prices]`.
fn record_usage(
    task: &Steps<'_>,
    attempt: &Attempt,
    session_before: &mut Option<(String, crate::agent::Usage)>,
) {
    let prices = &task.shared.plan.prices;
    let mut record = match (&task.job.preset, &attempt.observed) {
        (Some(preset), Some(observed)) => {
            preset_usage(task, preset, observed, attempt, session_before)
        }
        (Some(_), None) => return,
        (None, _) => match generic_usage(task) {
            Some(record) => record,
            None => return,
        },
    };
    record.attempt = attempt.number;
    record.kind = task.job.kind;
    record.wall_ms = attempt.took.as_millis() as u64;
    record.over_budget = matches!(attempt.exit, AgentExit::OverBudget(_));
    for usage in [&mut record.usage, &mut record.seen].into_iter().flatten() {
        crate::ledger::price(usage, prices);
    }
    let _ = task.events.send(ExecEvent::Usage {
        task: task.job.task,
        usage: record,
    });
}

/// What a program that is not a preset reported in the generic form: its `{usage_file}` when it
/// wrote one, else its last `streams_usage` line; `None`: it reported nothing.
fn generic_usage(task: &Steps<'_>) -> Option<AttemptUsage> {
    let from_file = task
        .job
        .usage_file
        .as_ref()
        .and_then(|path| std::fs::read_to_string(path).ok())
        .and_then(|text| crate::ledger::meter::generic_file(&text));
    let usage = from_file.or_else(|| {
        let output = crate::agent::log::last_attempt(&task.job.log_path, OUTPUT_READ);
        output
            .lines()
            .rev()
            .find_map(crate::ledger::meter::generic_line)
    })?;
    Some(AttemptUsage {
        attempt: 0,
        cli: None,
        kind: Default::default(),
        wall_ms: 0,
        session: None,
        usage: Some(usage),
        reported: None,
        seen: None,
        over_budget: false,
    })
}

/// What a preset's CLI reported; for a run that ended without its final report, what its
/// output showed until then (`seen`).
fn preset_usage(
    task: &Steps<'_>,
    preset: &super::PresetJob,
    observed: &Observed,
    attempt: &Attempt,
    session_before: &mut Option<(String, crate::agent::Usage)>,
) -> AttemptUsage {
    let _ = attempt;
    let session = observed.session.clone();
    let cumulative = preset.cli.usage_is_cumulative();
    let (usage, reported) = match (&observed.usage, cumulative) {
        (Some(reported), true) => {
            let before = session_before
                .as_ref()
                .filter(|(s, _)| Some(s) == session.as_ref())
                .map(|(_, u)| u.clone())
                .unwrap_or_default();
            // A run that continues the same session again reports on top of this one.
            if let (Some(s), Some(_)) = (&session, &session_before) {
                *session_before = Some((s.clone(), reported.clone()));
            }
            (Some(reported.since(&before)), Some(reported.clone()))
        }
        (usage, _) => (usage.clone(), None),
    };
    let before = session_before.as_ref().map(|(_, u)| u.clone());
    let (usage, seen) = crate::ledger::meter::settle(
        preset.cli,
        usage,
        before,
        || crate::agent::log::last_attempt(&task.job.log_path, OUTPUT_READ),
        || claude_transcript(&preset.home, session.as_deref()?),
    );
    AttemptUsage {
        attempt: 0,
        cli: Some(preset.cli),
        kind: Default::default(),
        wall_ms: 0,
        session,
        usage,
        reported,
        seen,
        over_budget: false,
    }
}

/// Claude Code's transcript of `session` in the task's home (`.claude/projects/<dir>/`).
fn claude_transcript(home: &std::path::Path, session: &str) -> Option<String> {
    let file = format!("{session}.jsonl");
    std::fs::read_dir(home.join(".claude").join("projects"))
        .ok()?
        .flatten()
        .find_map(|dir| std::fs::read_to_string(dir.path().join(&file)).ok())
}

/// How long to wait for a usage limit (and whether that is the reset time the CLI gave),
/// given what is left of `limit_wait`; `None`: stop now (nothing left, or the reset comes
/// later than that).
fn limit_delay(limit: &LimitHit, now: u64, left: Duration, waits: u32) -> Option<(Duration, bool)> {
    if left.is_zero() {
        return None;
    }
    match limit.resets_at {
        Some(at) => {
            let wait = Duration::from_secs(at.saturating_sub(now)) + RESET_MARGIN;
            (wait <= left).then_some((wait, true))
        }
        None => {
            let backoff = (LIMIT_BACKOFF * (1u32 << waits.min(8))).min(LIMIT_BACKOFF_MAX);
            Some((backoff.min(left), false))
        }
    }
}

/// Waits out a usage limit, told to the dispatcher (for `status`). `Err`: the run was
/// interrupted meanwhile.
async fn wait_for_limit(
    task: &Steps<'_>,
    limit: &LimitHit,
    delay: Duration,
    reset_known: bool,
    agent: Duration,
    attempts: u32,
    cancel: &mut watch::Receiver<Cancel>,
) -> Result<(), TaskOutcome> {
    let since = crate::state::now_ms();
    let _ = task.events.send(ExecEvent::Waiting {
        task: task.job.task,
        wait: LimitWait {
            since,
            until: since + delay.as_millis() as u64,
            reset_known,
            message: limit.message.clone(),
        },
    });
    tokio::select! {
        _ = tokio::time::sleep(delay) => Ok(()),
        _ = cancel.changed() => {
            if *cancel.borrow() != Cancel::None {
                Err(TaskOutcome::Interrupted { agent, attempts })
            } else {
                // Nothing to stop: wait the rest.
                tokio::time::sleep(delay).await;
                Ok(())
            }
        }
    }
}

/// The usage limit outlasts `limit_wait`: the task stops, its work kept on a ref (the
/// workspace as the agent left it, for `retry` to go on from).
async fn stop(
    task: &Steps<'_>,
    ws: &Workspace,
    limit: LimitHit,
    agent: Duration,
    attempts: u32,
) -> TaskOutcome {
    let job = task.job;
    let failed = job.refs.failed(&job.stream, job.task.index);
    let kept = match keep::work(task, ws, failed, keep::Then::Leave).await {
        Ok(Some((name, _))) => Some(name),
        _ => None,
    };
    TaskOutcome::Stopped {
        stop: Stop::UsageLimit {
            message: limit.message,
            resets_at: limit.resets_at,
            kept,
        },
        agent,
        attempts,
    }
}

/// A budget stopped the agent: the task stops, its work kept on a ref (the workspace as the
/// agent left it, for `retry` to go on from, with a raised budget).
async fn over_budget(
    task: &Steps<'_>,
    ws: &Workspace,
    what: String,
    agent: Duration,
    attempts: u32,
) -> TaskOutcome {
    let job = task.job;
    let failed = job.refs.failed(&job.stream, job.task.index);
    let kept = match keep::work(task, ws, failed, keep::Then::Leave).await {
        Ok(Some((name, _))) => Some(name),
        _ => None,
    };
    let budget = if what.starts_with("the shared") {
        "shared".to_string()
    } else {
        "task".to_string()
    };
    TaskOutcome::Stopped {
        stop: Stop::Budget {
            budget,
            spent: what,
            kept,
        },
        agent,
        attempts,
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Whether the agent changed anything (its commits or files): a task that changed nothing fails
/// ("no changes", with what its events say), unless it is allowed to (`allow_empty`) and its
/// events show no refusal or error. A task that changed something but was refused on the way
/// gets a note.
pub(super) fn changed_something(
    task: &Steps<'_>,
    lane: &Lane,
    ran: &Ran,
    verified: &Verified,
) -> Result<(), TaskOutcome> {
    let job = task.job;
    let observed = ran.observed.as_ref();
    // No file differs from the task's start and the agent made no commit of its own.
    let nothing = verified.read.is_clean() && verified.history.tip().is_none();
    if !nothing {
        if let Some(refused) = observed.and_then(|o| o.refusals.first()) {
            task.note(format!(
                "task {}: its agent was refused on the way ({})",
                job.task.number(),
                events::one_line(refused, 160)
            ));
        }
        return Ok(());
    }
    let troubled = observed.is_some_and(Observed::troubled);
    if job.allow_empty && !troubled {
        return Ok(());
    }
    let mut said = match observed {
        Some(observed) => observed.said(),
        None => {
            let last = crate::agent::log::last_attempt_output(&job.log_path, 2);
            let last = crate::text::sanitize(last.trim());
            if last.is_empty() {
                Vec::new()
            } else {
                vec![format!(
                    "its output ends with: {}",
                    events::one_line(&last.replace('\n', " / "), 200)
                )]
            }
        }
    };
    if lane
        .refused_writes_note(job.task.number(), &job.log_path)
        .is_some()
    {
        said.push("the sandbox refused some of its writes outside its workspace".into());
    }
    Err(TaskOutcome::failed(
        FailReason::NoChanges { said },
        ran.agent,
        ran.attempts,
    ))
}

/// How the attempt's usage is read as it streams: by its preset's rules or the generic form,
/// against the task's own budget; each change told to the dispatcher (shared budgets, status).
fn metered(
    task: &Steps<'_>,
    session_before: &Option<(String, crate::agent::Usage)>,
) -> process::Metered {
    let job = task.job;
    let cli = job.preset.as_ref().map(|p| p.cli);
    let before = session_before.as_ref().map(|(_, u)| u.clone());
    let events = task.events.clone();
    let id = job.task;
    process::Metered {
        meter: crate::ledger::meter::Meter::new(cli, before),
        budget: job.budget.clone(),
        prices: task.shared.plan.prices.clone(),
        on_usage: Box::new(move |usage| {
            let _ = events.send(ExecEvent::Spending {
                task: id,
                usage: usage.clone(),
            });
        }),
    }
}

/// Runs the agent once, journaling its process group for `resume` to stop should streams die
/// meanwhile.
async fn run_once(
    task: &Steps<'_>,
    lane: &Arc<Lane>,
    number: u32,
    cancel: &watch::Receiver<Cancel>,
    session_before: &Option<(String, crate::agent::Usage)>,
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
    .confined(lane.clone())
    .interrupted_first(job.preset.is_some())
    .watched(job.preset.as_ref().map(|p| p.cli))
    .metered(Some(metered(task, session_before)));
    let (task_id, task_index) = (job.task, job.task.index);
    let journal = shared.journal.clone();
    let stream_name = job.stream.clone();
    let spawned_events = task.events.clone();
    let group = Arc::new(AtomicI32::new(0));
    let spawned_group = group.clone();
    let (exit, took) = process::run_agent(cmd, job.limits, cancel.clone(), move |pgid| {
        // Dying here, the agent runs and nothing records its reaper: `resume` finds the agent
        // by its environment, and the reaper as its parent.
        failpoint::hit("before-agent-recorded");
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
    Attempt {
        number,
        exit,
        took,
        observed: None,
    }
}

/// What the agent left behind (a daemon, a `setsid` writer) dies with its attempt, before
/// anything of it is read.
async fn clean_up(task: &Steps<'_>) {
    blocking(|| process::reap_strays(process::Strays::OfNoRunningTask)).await;
    task.lap("reap strays");
}

/// Why the attempt failed; `None`: it succeeded. `Err`: it ended the task whatever the retries
/// (interrupted, or a program that could not start: retrying cannot make it appear). For a
/// preset's CLI its events have the last word: a run that exited 0 without its final event, or
/// whose final event reports an error, failed; a non-zero exit is told with what its events say.
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
    let reported = attempt.observed.as_ref().and_then(reported_failure);
    Ok(match &attempt.exit {
        AgentExit::Exited(0) => reported.map(|message| FailReason::Reported { code: 0, message }),
        // Ended with an error code: a refusal on the way is the likely why.
        AgentExit::Exited(code) if reported.is_none() && attempt.observed.is_some() => {
            let refusal = attempt.observed.as_ref().and_then(|o| o.refusals.first());
            Some(match refusal {
                Some(refusal) => FailReason::Reported {
                    code: *code,
                    message: format!("refused: {}", events::one_line(refusal, 300)),
                },
                None => lane.exit_reason(*code, &job.log_path),
            })
        }
        AgentExit::Cancelled => return Err(TaskOutcome::Interrupted { agent, attempts }),
        // Handled before: a budget stop is not a failure.
        AgentExit::OverBudget(_) => None,
        AgentExit::Exited(code) => Some(match reported {
            Some(message) => FailReason::Reported {
                code: *code,
                message,
            },
            None => lane.exit_reason(*code, &job.log_path),
        }),
        AgentExit::Signaled(signal) => Some(FailReason::Signal { signal: *signal }),
        AgentExit::TimedOut(after) => Some(FailReason::TimedOut {
            after_ms: after.as_millis() as u64,
        }),
        AgentExit::Idle(after) => Some(FailReason::Idle {
            after_ms: after.as_millis() as u64,
        }),
        AgentExit::Unreachable {
            attempts,
            over,
            message,
        } => Some(FailReason::Unreachable {
            cli: job
                .preset
                .as_ref()
                .map_or("the agent", |p| p.cli.name())
                .to_string(),
            attempts: *attempts,
            after_ms: over.as_millis() as u64,
            message: events::one_line(message, 200),
        }),
        AgentExit::SpawnFailed(message) => {
            let reason = FailReason::Spawn {
                message: message.clone(),
            };
            return Err(TaskOutcome::failed(reason, agent, attempts));
        }
    })
}

/// What a preset's events say went wrong with the run, if anything did: the error its final
/// event reports, a refusal that ended it, or its final event missing.
fn reported_failure(observed: &Observed) -> Option<String> {
    if let Some(failure) = &observed.failure {
        return Some(events::one_line(failure, 300));
    }
    if !observed.finished {
        return Some(
            "it ended without its final report (interrupted, or it failed before answering)".into(),
        );
    }
    None
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
        FailReason::Reported { code, .. } if *code != 0 => Some(*code),
        FailReason::TimedOut { .. }
        | FailReason::Idle { .. }
        | FailReason::Signal { .. }
        | FailReason::Reported { .. } => None,
        // Among the rest, a model the CLI could not reach: it was retried for as long as a
        // run of failures may last (`idle_timeout`, else five minutes), and a second attempt
        // at once would fail the same way until a person fixes the address or the network.
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
            FailReason::Reported { .. } => "its events report a failure".to_string(),
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
