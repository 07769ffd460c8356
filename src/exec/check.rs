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
//! one without is checked again (`resume` goes through [`Engine::after_commit`] too).

use std::path::PathBuf;
use std::time::Duration;

use super::dispatcher::Engine;
use super::executor::ExecEvent;
use super::gate::exit_words;
use super::process::{self, AgentCommand, AgentExit, Limits};
use crate::error::Result;
use crate::failpoint;
use crate::git;
use crate::report::Event;
use crate::state::{
    CheckFix, CheckRun, SpanOutcome, Step, StreamState, SyncUnit, TaskState, now_ms,
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

/// How many lines of a failed check's output go into the agent's prompt and the failure.
const TAIL_LINES: usize = 30;

impl Engine {
    /// The check of stream `s` in this run, unless `--no-check` turned checks off.
    pub(super) fn check_command(&self, s: usize) -> Option<Vec<String>> {
        if self.state.no_check {
            return None;
        }
        self.plan
            .check_for(&self.plan.streams[s])
            .map(<[_]>::to_vec)
    }

    /// Whether the work `to` of stream `s` passed its check earlier in this run.
    fn check_passed(&self, s: usize, to: &git::Oid) -> bool {
        let name = &self.state.streams[s].name;
        self.state
            .checks
            .iter()
            .any(|c| &c.stream == name && &c.commit == to && c.passed)
    }

    /// A unit reached its sync point: check it, or queue it if it needs no check (or passed).
    pub(super) fn unit_ready(&mut self, unit: SyncUnit) {
        let s = unit.stream;
        if self.checking.contains(&s) {
            // Its check is already running (recovery reaches a unit from two sides).
            return;
        }
        match self.check_command(s) {
            Some(command) if !self.check_passed(s, &unit.to) => self.start_check(unit, command),
            _ => self.state.queue.push(unit),
        }
    }

    fn start_check(&mut self, unit: SyncUnit, command: Vec<String>) {
        let s = unit.stream;
        let plan = self.plan.clone();
        let stream = &plan.streams[s];
        let record = &self.state.streams[s];
        let name = record.name.clone();
        let n = self
            .state
            .checks
            .iter()
            .filter(|c| c.stream == name)
            .count()
            + 1;
        let log = self.run_dir.check_log_path(&name, n);
        let worktree = record.worktree.clone();
        let mut env = self.agent_env(
            s,
            unit.last,
            &record.tasks[unit.last].summary,
            "",
            &worktree.display().to_string(),
        );
        env.retain(|(k, _)| k != "STREAMS_PROMPT_FILE");
        let cmd = AgentCommand {
            argv: command.clone(),
            cwd: worktree,
            env,
            env_remove: git::redirecting_vars()
                .iter()
                .map(|s| s.to_string())
                .collect(),
            log_path: log.clone(),
            // The plan's own command, not an agent's: it runs unconfined, as in CI.
            sandbox: None,
            log_header: crate::agent::log::header(
                crate::agent::log::Section::Check {
                    stream: &name,
                    on: crate::coordinator::short(&unit.to),
                },
                &command,
            ),
        };
        let limits = Limits {
            timeout: plan.check_timeout_for(stream),
            idle: None,
            grace: plan.grace,
        };
        let (events, cancel) = (self.events_tx.clone(), self.cancel.subscribe());
        self.running += 1;
        self.checking.insert(s);
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

    /// A check ended: queue the unit, send the agent back to fix it, or fail the stream.
    pub(super) fn check_finished(&mut self, end: CheckEnd) -> Result<()> {
        self.running -= 1;
        let CheckEnd {
            unit,
            command,
            exit,
            took,
            log,
        } = end;
        let s = unit.stream;
        self.checking.remove(&s);
        if exit == AgentExit::Cancelled {
            // Stopped with the run: `resume` checks the work again.
            return Ok(());
        }
        let name = self.state.streams[s].name.clone();
        let (passed, result) = exit_words(&exit);
        self.state.checks.push(CheckRun {
            stream: name.clone(),
            task: unit.last + 1,
            commit: unit.to.clone(),
            // For the report: the files it checked (the commit is the stream's own).
            tree: git::commit::tree_of(&self.repo, &unit.to).ok(),
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
        self.record_span(s, Step::Check, began, outcome, Some(log.clone()));
        self.emit(Event::CheckRan {
            stream: name.clone(),
            task: unit.last + 1,
            passed,
            result: result.clone(),
            duration_ms: took.as_millis() as u64,
            log: log.display().to_string(),
        });
        if !matches!(self.state.streams[s].state, StreamState::Active { .. }) {
            return self.save();
        }
        if passed {
            self.state.queue.push(unit);
            self.save()?;
            failpoint::hit("after-check-saved");
            return Ok(());
        }
        let failures = self
            .state
            .checks
            .iter()
            .filter(|c| c.stream == name && c.task == unit.last + 1 && !c.passed)
            .count() as u32;
        let retries = self.plan.check_retries_for(&self.plan.streams[s]);
        if failures <= retries && self.brakes().may_start_work() {
            // The agent of the unit's last task runs again from where its work ended.
            let t = unit.last;
            let record = &mut self.state.streams[s].tasks[t];
            if let TaskState::Committed {
                start, end, stats, ..
            } = record.state.clone()
            {
                let start = record.fixing.take().map_or(start, |f| f.start);
                record.fixing = Some(CheckFix { start, stats });
                self.save()?;
                self.reporter.message(&format!(
                    "check of {name} {result}: its agent gets another attempt ({failures} of {retries})"
                ));
                return self.start_task(s, t, end);
            }
        }
        let tail = crate::agent::log::tail(&log, 5);
        if !tail.is_empty() {
            self.state.streams[s]
                .notes
                .push(format!("the check's log ends with:\n{}", tail.join("\n")));
        }
        let attempts = if failures > 1 {
            format!(" after {failures} attempts")
        } else {
            String::new()
        };
        self.state.queue.retain(|u| u.stream != s);
        self.fail_stream(
            s,
            format!(
                "check `{}` {result}{attempts}; its work stays on its branch (log {})",
                command.join(" "),
                log.display()
            ),
        );
        self.save()
    }

    /// What a fixing agent is told: the failing command and the tail of its output, and the
    /// values of `{check_output}` and `{check_output_file}`. `None` unless task `t` of stream
    /// `s` is being fixed.
    pub(super) fn check_failure(&self, s: usize, t: usize) -> Option<(String, String, String)> {
        self.state.streams[s].tasks[t].fixing.as_ref()?;
        let name = &self.state.streams[s].name;
        let run = self
            .state
            .checks
            .iter()
            .rev()
            .find(|c| &c.stream == name && !c.passed)?;
        let output = crate::agent::log::tail(&run.log, TAIL_LINES).join("\n");
        let text = format!(
            "\n\nThe check `{}` {} on your work. Its output ends with:\n\n```\n{output}\n```\n\n\
             Fix it without leaving your lane: change only the paths this stream owns (and the \
             shared ones), then commit.",
            run.command.join(" "),
            run.result
        );
        Some((text, output, run.log.display().to_string()))
    }
}
