//! The run as the engine holds it while a session runs: what it works with ([`Context`], fixed
//! for the session) and its state, with the one way to write it.
//!
//! Every change to the state is saved through [`Run::save`] (the [`StateStore`]) and told to the
//! reporter through [`Run::emit`]. The dispatcher owns the one `Run` and lends it to the parts it
//! drives (checks, the gate, the pool of workspaces prepared ahead, recovery, the halt) while it
//! awaits them, one at a time: what runs on its own (task executors, checks' processes,
//! preparations) never sees it and reports through events instead.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::coordinator::{self, TaskRange};
use crate::error::Result;
use crate::git::{self, Repo};
use crate::ids::{Oid, TaskId};
use crate::layout::RefNames;
use crate::plan::{Plan, SyncPoint};
use crate::report::{Event, Reporter};
use crate::state::{
    FailReason, Journal, Landing, RunDir, RunState, Span, SpanOutcome, StateStore, Step, Stop,
    StreamState, SyncUnit, TaskRecord, TaskState, WorkStats, now_ms,
};

/// What a run works with, the same for the whole session.
pub(super) struct Context {
    pub repo: Repo,
    pub plan: Arc<Plan>,
    /// Where the plan file is: prompt files are read relative to it.
    pub plan_dir: PathBuf,
    pub run_dir: RunDir,
    pub refs: RefNames,
    /// The identity streams commits with when git has none configured.
    pub identity_env: Vec<(String, String)>,
    pub journal: Arc<Journal>,
    /// Per stream: its tasks' estimates plus the longest chain after it (critical path first).
    pub remaining: Vec<f64>,
    /// The streams kept apart because they conflicted in earlier runs.
    pub apart: Apart,
}

/// Pairs of streams that conflicted in earlier runs of the plan (from the history): one of a
/// pair starts only once the other is no longer active (`decide::kept_apart`).
#[derive(Default)]
pub(super) struct Apart {
    /// Plan indices.
    pub pairs: Vec<(usize, usize)>,
    /// Why, pair by pair.
    pub why: Vec<crate::plan::learn::PairHistory>,
}

/// The pairs of `plan`'s streams to keep apart, from the history in `repo`.
pub(super) fn kept_apart(repo: &Repo, plan: &Plan) -> Apart {
    let why = crate::state::history::conflicts(repo.common_dir(), plan);
    let index = |name: &str| plan.streams.iter().position(|s| s.name == name);
    let pairs = why
        .iter()
        .filter_map(|p| Some((index(&p.left)?, index(&p.right)?)))
        .collect();
    Apart { pairs, why }
}

/// Says which streams this session keeps apart (those of a pair that both have yet to run).
pub(super) fn tell_kept_apart(run: &mut Run) {
    let mut lines = Vec::new();
    for (&(a, b), why) in run.ctx.apart.pairs.iter().zip(&run.ctx.apart.why) {
        let pending = |s: usize| run.state.streams[s].state == StreamState::Pending;
        if !(pending(a) && pending(b)) {
            continue;
        }
        lines.push(format!(
            "{} and {} conflicted in {} of {} earlier run{}: one starts once the other is integrated",
            why.left,
            why.right,
            why.conflicted,
            why.runs,
            if why.runs == 1 { "" } else { "s" }
        ));
    }
    for line in lines {
        run.message(&line);
    }
}

/// The run's state and its one writer.
pub(super) struct Run {
    pub ctx: Context,
    /// Read freely; changed by the dispatcher and the parts it drives, saved by [`Run::save`].
    pub state: RunState,
    store: StateStore,
    reporter: Box<dyn Reporter>,
    /// Nothing new starts: `--fail-fast` after a failure, or a gate red on the tip alone.
    pub no_new_work: bool,
}

impl Run {
    pub fn new(ctx: Context, state: RunState, reporter: Box<dyn Reporter>) -> Run {
        Run {
            store: StateStore::new(ctx.run_dir.clone()),
            ctx,
            state,
            reporter,
            no_new_work: false,
        }
    }

    /// The state and the reporter, for the end of the session.
    pub fn into_parts(self) -> (RunState, Box<dyn Reporter>) {
        (self.state, self.reporter)
    }

    /// Saves the state: the engine's only way to write it (see [`StateStore`]).
    pub fn save(&mut self) -> Result<()> {
        let began = std::time::Instant::now();
        let saved = self.store.save(&mut self.state);
        tracing::debug!(
            "state saved: {:.1} ms",
            began.elapsed().as_secs_f64() * 1000.0
        );
        saved
    }

    pub fn emit(&mut self, event: Event) {
        self.reporter.event(&event, &self.state);
    }

    /// A line for the person that is not an event (a signal received, a conflict found).
    pub fn message(&mut self, text: &str) {
        self.reporter.message(text);
    }

    pub fn sync(&self) -> SyncPoint {
        self.ctx.plan.sync
    }

    /// Puts a step on the run's timeline, ending now.
    pub fn record_span(
        &mut self,
        s: usize,
        step: Step,
        started_at: u64,
        outcome: SpanOutcome,
        log: Option<PathBuf>,
    ) {
        let stream = self.state.streams[s].name.clone();
        self.state.timeline.push(Span {
            stream,
            step,
            started_at,
            finished_at: now_ms(),
            outcome,
            log,
        });
    }

    /// Puts a task's step on its stream's timeline, ending now.
    pub fn record_task_span(&mut self, task: TaskId, started_at: u64, outcome: SpanOutcome) {
        let (s, t) = (task.stream.index(), task.index);
        let log = self.ctx.run_dir.log_path(&self.state.streams[s].name, t);
        self.record_span(s, Step::Task { task: t }, started_at, outcome, Some(log));
    }

    /// The task's record in the state.
    pub fn task_mut(&mut self, task: TaskId) -> &mut TaskRecord {
        &mut self.state.streams[task.stream.index()].tasks[task.index]
    }

    /// Records the attempts a task used and how long its agent ran, however it ended.
    pub fn count_attempts(&mut self, task: TaskId, attempts: u32, agent: Duration) {
        let record = self.task_mut(task);
        record.attempts = attempts;
        record.agent_ms += agent.as_millis() as u64;
    }

    /// `task`, running since `started_at` from `start`, committed its work (`end`, `stats`):
    /// recorded as committed, the work of a check's fix counted from where the task's work
    /// first began. Returns the stats of the task's whole work.
    pub fn task_committed(
        &mut self,
        task: TaskId,
        start: Oid,
        started_at: u64,
        end: Oid,
        stats: WorkStats,
    ) -> WorkStats {
        let record = self.task_mut(task);
        // A fix of a failed check: the task's work runs from where it first began.
        let (start, stats) = match record.fixing.take() {
            Some(fix) => {
                let mut total = fix.stats;
                total.add(&stats);
                (fix.start, total)
            }
            None => (start, stats),
        };
        record.state = TaskState::Committed {
            start,
            end,
            stats: stats.clone(),
            finished_at: now_ms(),
        };
        self.record_task_span(task, started_at, SpanOutcome::Ok);
        stats
    }

    /// `task` failed: recorded, told, and its stream fails with it.
    pub fn task_failed(&mut self, task: TaskId, reason: FailReason) {
        let (s, t) = (task.stream.index(), task.index);
        let name = self.state.streams[s].name.clone();
        // A failed setup is told with its own log: the agent never ran.
        let log = match reason {
            FailReason::Setup { .. } => self.ctx.run_dir.setup_log_path(&name),
            _ => self.ctx.run_dir.log_path(&name, t),
        };
        // A task that never started (no agent, no prompt) takes no time on the chart.
        let started_at = match self.state.streams[s].tasks[t].state {
            TaskState::Running { started_at, .. } => started_at,
            _ => now_ms(),
        };
        let outcome = SpanOutcome::Failed {
            reason: reason.to_string(),
        };
        self.record_task_span(task, started_at, outcome);
        self.task_mut(task).state = TaskState::Failed {
            reason: reason.clone(),
            at: now_ms(),
        };
        let event = Event::TaskFailed {
            stream: name,
            task: task.number(),
            reason: reason.to_string(),
            log: log.display().to_string(),
            log_tail: crate::agent::log::tail(&log, 5),
        };
        self.emit(event);
        self.fail_stream(s, reason.to_string());
    }

    pub fn fail_stream(&mut self, s: usize, reason: String) {
        let stream = self.state.streams[s].name.clone();
        let state = StreamState::Failed {
            reason: reason.clone(),
            at: now_ms(),
        };
        self.end_stream(s, state, Event::StreamFailed { stream, reason });
        if self.state.fail_fast {
            self.no_new_work = true;
        }
    }

    /// `task` was stopped by a limit: recorded, told, and its stream stops with it (its work
    /// kept, not a failure: `retry` goes on).
    pub fn task_stopped(&mut self, task: TaskId, stop: Stop) {
        let s = task.stream.index();
        let name = self.state.streams[s].name.clone();
        let started_at = match self.state.streams[s].tasks[task.index].state {
            TaskState::Running { started_at, .. } => started_at,
            _ => now_ms(),
        };
        let reason = stop.to_string();
        self.record_task_span(
            task,
            started_at,
            SpanOutcome::Failed {
                reason: reason.clone(),
            },
        );
        let record = self.task_mut(task);
        record.waiting = None;
        record.state = TaskState::Stopped {
            stop: stop.clone(),
            at: now_ms(),
        };
        let state = StreamState::Stopped {
            reason: reason.clone(),
            at: now_ms(),
        };
        // What waits on it is left out as by a choice: nothing failed.
        let record = &mut self.state.streams[s];
        for t in record
            .tasks
            .iter_mut()
            .filter(|t| t.state == TaskState::Pending)
        {
            t.state = TaskState::Skipped;
        }
        record.state = state;
        self.emit(Event::StreamLimited {
            stream: name.clone(),
            task: task.number(),
            reason,
        });
        for i in super::decide::stranded_by(&self.ctx.plan, &self.state, &name) {
            let why = match stop {
                Stop::UsageLimit { .. } => "a usage limit",
                Stop::Budget { .. } => "its budget",
            };
            let reason = format!("its dependency `{name}` was stopped by {why}");
            self.skip_stream(i, reason, true);
        }
    }

    /// `chosen`: left out by the person (`streams skip`, or waiting on a stream so left out).
    pub fn skip_stream(&mut self, s: usize, reason: String, chosen: bool) {
        let stream = self.state.streams[s].name.clone();
        let state = StreamState::Skipped {
            reason: reason.clone(),
            chosen,
        };
        self.end_stream(s, state, Event::StreamSkipped { stream, reason });
    }

    /// Ends a stream that will not finish: its pending tasks will not run, and every stream
    /// waiting on it is skipped.
    fn end_stream(&mut self, s: usize, state: StreamState, event: Event) {
        let record = &mut self.state.streams[s];
        for task in record
            .tasks
            .iter_mut()
            .filter(|t| t.state == TaskState::Pending)
        {
            task.state = TaskState::Skipped;
        }
        let chosen = matches!(state, StreamState::Skipped { chosen: true, .. });
        record.state = state;
        let name = record.name.clone();
        self.emit(event);
        self.skip_dependents(&name, chosen);
    }

    /// Every stream that depends on `name`, directly or not, and has not started, is skipped.
    /// `chosen`: `name` was left out by the person's choice, and so are these.
    fn skip_dependents(&mut self, name: &str, chosen: bool) {
        for i in super::decide::stranded_by(&self.ctx.plan, &self.state, name) {
            let reason = if chosen {
                format!("its dependency `{name}` was left out")
            } else {
                format!("its dependency `{name}` did not finish")
            };
            self.skip_stream(i, reason, chosen);
        }
    }

    /// `streams stop` stopped stream `s` (its running task, if any, already ended and its work
    /// kept on `kept`): its tasks not done stay pending for `streams retry` to continue, and
    /// the streams waiting on it are left out (the person's choice, not a failure).
    pub fn stop_stream(&mut self, s: usize, kept: Option<String>) {
        let name = self.state.streams[s].name.clone();
        self.state.streams[s].state = StreamState::Stopped {
            reason: "stopped by `streams stop`".to_string(),
            at: now_ms(),
        };
        self.emit(Event::StreamStopped {
            stream: name.clone(),
            kept,
        });
        for i in super::decide::stranded_by(&self.ctx.plan, &self.state, &name) {
            self.skip_stream(i, format!("its dependency `{name}` was stopped"), true);
        }
    }

    pub fn finish_stream(&mut self, s: usize) {
        let started_at = match self.state.streams[s].state {
            StreamState::Active { started_at } => started_at,
            _ => now_ms(),
        };
        let finished_at = now_ms();
        self.state.streams[s].state = StreamState::Done {
            started_at,
            finished_at,
        };
        let mut total = WorkStats::default();
        for task in &self.state.streams[s].tasks {
            if let Some(stats) = task.state.stats() {
                total.add(stats);
            }
        }
        // Files once each, however many tasks changed them (the sum is the fallback).
        let ranges: Vec<_> = self.state.streams[s]
            .tasks
            .iter()
            .filter_map(|t| t.state.range())
            .collect();
        if let Ok(files) = git::changes::distinct_files_changed(&self.ctx.repo, &ranges) {
            total.files = files;
        }
        let name = self.state.streams[s].name.clone();
        self.emit(Event::StreamDone {
            stream: name,
            duration_ms: finished_at.saturating_sub(started_at),
            commits: total.commits,
            files: total.files,
        });
    }

    /// The tasks of `unit`, with the commits each made.
    pub fn unit_tasks(&self, unit: &SyncUnit) -> Vec<TaskRange> {
        let record = &self.state.streams[unit.stream];
        (unit.first..=unit.last)
            .filter_map(|i| match &record.tasks[i].state {
                TaskState::Committed { start, end, .. }
                | TaskState::Integrated { start, end, .. } => Some(TaskRange {
                    index: i,
                    summary: record.tasks[i].summary.clone(),
                    start: start.clone(),
                    end: end.clone(),
                    cost: crate::ledger::task_tally(&record.tasks[i]).trailers(),
                }),
                _ => None,
            })
            .collect()
    }

    /// The integration branch is moved by this dispatcher alone. Found anywhere else (an agent
    /// checked it out and committed, or someone reset it), it is put back where the run left it;
    /// what was there is kept on a ref.
    pub fn guard_integration_ref(&mut self) -> Result<()> {
        let name = self.state.integration_ref.clone();
        let repo = &self.ctx.repo;
        let actual = repo.ref_target(&name)?;
        if actual.as_deref() == Some(self.state.integration_tip.as_str()) {
            return Ok(());
        }
        let kept = match &actual {
            Some(found) => Some(git::refs::keep_ref(
                repo,
                &self.ctx.refs.moved_integration(),
                found,
                "streams: the integration branch was moved outside streams",
            )?),
            None => None,
        };
        let tip = self.state.integration_tip.clone();
        coordinator::move_integration_ref(
            repo,
            None,
            &name,
            actual.as_deref(),
            Some(&tip),
            coordinator::IntegrationMove::Other("streams: put back"),
        )?;
        let short = crate::layout::short_branch(&name);
        self.message(&format!(
            "warning: {short} was moved outside streams; it is put back at {}{}",
            crate::text::short(&tip),
            kept.map(|k| format!(", and what was there is kept on {k}"))
                .unwrap_or_default()
        ));
        Ok(())
    }

    /// Records a unit as integrated at `tip`: tasks, queue, the order of integration, and the
    /// kept task ends. A parked stream whose unit lands goes on (its conflict is behind it).
    /// Returns whether that completes its stream (the caller finishes it, after reporting the
    /// unit).
    pub fn unit_integrated(&mut self, unit: &SyncUnit, tip: Oid) -> bool {
        self.state.integration_tip = tip.clone();
        self.state.queue.retain(|u| u != unit);
        let record = &mut self.state.streams[unit.stream];
        let parked = match &record.state {
            StreamState::Parked(park) => Some(park.started_at),
            _ => None,
        };
        if let Some(started_at) = parked {
            record.state = StreamState::Active { started_at };
        }
        self.state.integrations.push(Landing {
            stream: record.name.clone(),
            first: unit.first,
            last: unit.last,
            tip,
            at: now_ms(),
            parked: parked.is_some(),
            resolver: None,
        });
        let record = &mut self.state.streams[unit.stream];
        for i in unit.first..=unit.last {
            if let TaskState::Committed {
                start,
                end,
                stats,
                finished_at,
            } = &record.tasks[i].state
            {
                record.tasks[i].state = TaskState::Integrated {
                    start: start.clone(),
                    end: end.clone(),
                    stats: stats.clone(),
                    finished_at: *finished_at,
                };
            }
        }
        let all_done = record
            .tasks
            .iter()
            .all(|t| matches!(t.state, TaskState::Integrated { .. }));
        let last_end = record.tasks[unit.last].state.end().cloned();
        let stream_name = record.name.clone();
        if self.sync() == SyncPoint::Task && !all_done {
            // The branch will move to the new tip for the next task; keep this task's own end.
            if let Some(end) = last_end {
                let name = self.ctx.refs.task_end(&stream_name, unit.last);
                let _ = git::refs::keep_ref(&self.ctx.repo, &name, &end, "streams: task end");
            }
        }
        // A failed stream whose earlier work just landed stays failed.
        all_done
            && matches!(
                self.state.streams[unit.stream].state,
                StreamState::Active { .. }
            )
    }
}
