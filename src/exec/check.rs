//! A stream's check: the plan's (or the stream's) `check` run in the stream's worktree on its
//! work at each sync point, before the work is queued for integration.
//!
//! A failing check sends the stream's last agent back to the same worktree, with the failing
//! command and the tail of its output in its prompt (`check_retries` times); its fix goes
//! through the ownership check and commit like any task, then the check runs again. Out of
//! attempts, the stream fails with the check's log tail; its commits stay on its branch and
//! nothing of it is integrated.
//!
//! Crash safety: a check's verdict is saved (`RunState::checks`, by commit) before it is acted
//! on; a unit whose work has a passing check on record is queued without running it again, and
//! one without is checked again (`resume` goes through the dispatcher's `after_commit` too).

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use super::events::{Channels, ExecEvent};
use super::process::{self, AgentCommand, AgentExit, Limits};
use super::run::Run;
use crate::error::Result;
use crate::failpoint;
use crate::git;
use crate::ids::{Oid, StreamId, TaskId};
use crate::report::Event;
use crate::state::{
    CheckFix, CheckRun, RunState, SpanOutcome, Step, StreamState, SyncUnit, TaskState, now_ms,
};

/// How a check ended, sent to the dispatcher.
#[derive(Debug)]
pub struct CheckEnd {
    pub unit: SyncUnit,
    pub command: Vec<String>,
    pub exit: AgentExit,
    pub took: Duration,
    pub log: PathBuf,
}

/// A failed check the stream's agent gets another attempt at: the dispatcher starts `task`
/// again, from `from` (where its work ended).
pub(super) struct Fix {
    pub task: TaskId,
    pub from: Oid,
}

/// How many lines of a failed check's output go into the agent's prompt and the failure.
const TAIL_LINES: usize = 30;

/// The streams' checks running now (one at a time per stream).
#[derive(Default)]
pub(super) struct Checks {
    running: BTreeSet<StreamId>,
}

impl Checks {
    /// Checks running right now.
    pub fn running(&self) -> usize {
        self.running.len()
    }

    /// Whether stream `s`'s check runs now.
    pub fn running_for(&self, s: StreamId) -> bool {
        self.running.contains(&s)
    }

    /// A unit reached its sync point: check it, or queue it if it needs no check (or passed).
    pub fn unit_ready(&mut self, run: &mut Run, unit: SyncUnit, channels: &Channels) {
        let s = unit.stream;
        if self.running.contains(&StreamId::new(s)) {
            // Its check is already running (recovery reaches a unit from two sides).
            return;
        }
        match command(run, s) {
            Some(command) if !passed(&run.state, s, &unit.to) => {
                self.start(run, unit, command, channels)
            }
            _ => run.state.queue.push(unit),
        }
    }

    fn start(&mut self, run: &Run, unit: SyncUnit, command: Vec<String>, channels: &Channels) {
        let s = unit.stream;
        let plan = &run.ctx.plan;
        let stream = &plan.streams[s];
        let record = &run.state.streams[s];
        let name = record.name.clone();
        let n = run.state.checks.iter().filter(|c| c.stream == name).count() + 1;
        let log = run.ctx.run_dir.check_log_path(&name, n);
        let worktree = record.worktree.clone();
        let summary = &record.tasks[unit.last].summary;
        let shown = worktree.display().to_string();
        let task = StreamId::new(s).task(unit.last);
        let mut env = super::launch::agent_env(run, task, summary, "", &shown);
        env.retain(|(k, _)| k != "STREAMS_PROMPT_FILE");
        let title = format!("check of {name} on {}", crate::text::short(&unit.to));
        let header = crate::agent::log::header(&title, &command);
        let cmd = AgentCommand::new(command.clone(), worktree, env, log.clone(), header);
        let limits = Limits::wall_clock(plan.check_timeout_for(stream), plan.grace);
        let (events, cancel) = (channels.events().clone(), channels.cancel());
        self.running.insert(StreamId::new(s));
        tokio::spawn(async move {
            failpoint::hit("before-check");
            let (exit, took) = process::run_agent(cmd, limits, cancel, |_| {}).await;
            let _ = events.send(ExecEvent::CheckFinished(CheckEnd {
                unit,
                command,
                exit,
                took,
                log,
            }));
        });
    }

    /// A check ended: its verdict is recorded, and with it (saved together) the unit is
    /// queued, or its stream's agent gets another attempt ([`Fix`], for the dispatcher to
    /// start), or the stream fails. `may_start_work`: whether an agent may start now at all.
    pub fn finished(
        &mut self,
        run: &mut Run,
        end: CheckEnd,
        may_start_work: bool,
    ) -> Result<Option<Fix>> {
        let s = end.unit.stream;
        self.running.remove(&StreamId::new(s));
        if end.exit == AgentExit::Cancelled {
            // Stopped with the run: `resume` checks the work again.
            return Ok(None);
        }
        let (passed, result) = record(run, &end);
        if !matches!(run.state.streams[s].state, StreamState::Active { .. }) {
            run.save()?;
            return Ok(None);
        }
        if passed {
            run.state.queue.push(end.unit);
            run.save()?;
            failpoint::hit("after-check-saved");
            return Ok(None);
        }
        let name = run.state.streams[s].name.clone();
        let failures = run
            .state
            .checks
            .iter()
            .filter(|c| c.stream == name && c.task == end.unit.last + 1 && !c.passed)
            .count() as u32;
        let plan = &run.ctx.plan;
        let retries = plan.check_retries_for(&plan.streams[s]);
        if failures <= retries && may_start_work {
            // The agent of the unit's last task runs again from where its work ended.
            let t = end.unit.last;
            let record = &mut run.state.streams[s].tasks[t];
            if let TaskState::Committed {
                start,
                end: work_end,
                stats,
                ..
            } = record.state.clone()
            {
                let start = record.fixing.take().map_or(start, |f| f.start);
                record.fixing = Some(CheckFix { start, stats });
                run.save()?;
                run.message(&format!(
                    "check of {name} {result}: its agent gets another attempt ({failures} of {retries})"
                ));
                return Ok(Some(Fix {
                    task: StreamId::new(s).task(t),
                    from: work_end,
                }));
            }
        }
        fail(run, &end, &result, failures)?;
        Ok(None)
    }
}

/// The check of stream `s` in this run, unless `--no-check` turned checks off.
fn command(run: &Run, s: usize) -> Option<Vec<String>> {
    if run.state.no_check {
        return None;
    }
    let plan = &run.ctx.plan;
    plan.check_for(&plan.streams[s]).map(<[_]>::to_vec)
}

/// Whether the work `to` of stream `s` passed its check earlier in this run.
fn passed(state: &RunState, s: usize, to: &Oid) -> bool {
    let name = &state.streams[s].name;
    state
        .checks
        .iter()
        .any(|c| &c.stream == name && &c.commit == to && c.passed)
}

/// Records the check's verdict: in the state, on the timeline, told to the reporter. Returns
/// whether it passed, and how it ended in words.
fn record(run: &mut Run, end: &CheckEnd) -> (bool, String) {
    let CheckEnd {
        unit,
        command,
        exit,
        took,
        log,
    } = end;
    let s = unit.stream;
    let name = run.state.streams[s].name.clone();
    let (passed, result) = exit.verdict();
    run.state.checks.push(CheckRun {
        stream: name.clone(),
        task: unit.last + 1,
        commit: unit.to.clone(),
        // For the report: the files it checked (the commit is the stream's own).
        tree: git::commit::tree_of(&run.ctx.repo, &unit.to).ok(),
        command: command.clone(),
        passed,
        result: result.clone(),
        ms: took.as_millis() as u64,
        log: log.clone(),
        at: now_ms(),
    });
    let outcome = if passed {
        SpanOutcome::Ok
    } else {
        SpanOutcome::Failed {
            reason: result.clone(),
        }
    };
    let began = now_ms().saturating_sub(took.as_millis() as u64);
    run.record_span(s, Step::Check, began, outcome, Some(log.clone()));
    run.emit(Event::CheckRan {
        stream: name,
        task: unit.last + 1,
        passed,
        result: result.clone(),
        duration_ms: took.as_millis() as u64,
        log: log.display().to_string(),
    });
    (passed, result)
}

/// Out of attempts: the stream fails with the check's log tail; its commits stay on its branch
/// and nothing of it is integrated.
fn fail(run: &mut Run, end: &CheckEnd, result: &str, failures: u32) -> Result<()> {
    let s = end.unit.stream;
    let tail = crate::agent::log::tail(&end.log, 5);
    if !tail.is_empty() {
        run.state.streams[s]
            .notes
            .push(format!("the check's log ends with:\n{}", tail.join("\n")));
    }
    let attempts = if failures > 1 {
        format!(" after {failures} attempts")
    } else {
        String::new()
    };
    run.state.queue.retain(|u| u.stream != s);
    run.fail_stream(
        s,
        format!(
            "check `{}` {result}{attempts}; its work stays on its branch (log {})",
            crate::text::shell_words(&end.command),
            end.log.display()
        ),
    );
    run.save()
}

/// What a fixing agent is told of the check it fixes.
pub(super) struct CheckFailure {
    /// Added to its prompt: the failing command and the tail of its output.
    pub text: String,
    /// `{check_output}`: the tail of its output.
    pub output: String,
    /// `{check_output_file}`: its log.
    pub file: String,
}

/// What the agent of task `t` of stream `s` is told of the check it fixes; `None` unless it is
/// fixing one.
pub(super) fn failure(state: &RunState, s: usize, t: usize) -> Option<CheckFailure> {
    state.streams[s].tasks[t].fixing.as_ref()?;
    let name = &state.streams[s].name;
    let run = state
        .checks
        .iter()
        .rev()
        .find(|c| &c.stream == name && !c.passed)?;
    let output = crate::agent::log::tail(&run.log, TAIL_LINES).join("\n");
    let text = format!(
        "\n\nThe check `{}` {} on your work. Its output ends with:\n\n```\n{output}\n```\n\n\
         Fix it without leaving your lane: change only the paths this stream owns (and the \
         shared ones), then commit.",
        crate::text::shell_words(&run.command),
        run.result
    );
    Some(CheckFailure {
        text,
        output,
        file: run.log.display().to_string(),
    })
}
