//! The dispatcher: the one owner of run state.
//!
//! Executors run tasks and send events; the dispatcher alone decides what starts next, changes the
//! state, saves it, and drives integration at sync points. Every change is saved before anything
//! that depends on it happens (a task is recorded as running before its agent is spawned), so a
//! crash at any instant leaves a state that `resume` can reconcile with the refs.

use std::path::PathBuf;
use std::sync::Arc;

use nix::sys::signal::Signal;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{mpsc, watch};

use super::decide::{self, SessionEnd};
use super::executor::{ExecEvent, Shared, TaskOutcome};
use super::process::Cancel;
use crate::coordinator::ConflictFound;
use crate::error::{Error, Result};
use crate::git::{self, Repo};
use crate::layout::{self, RefNames};
use crate::ownership::Ownership;
use crate::plan::{Plan, SyncPoint};
use crate::report::{Event, Reporter};
use crate::state::{
    Entry, FailReason, Journal, RunDir, RunPhase, RunState, Span, SpanOutcome, StateStore, Step,
    StreamState, SyncUnit, TaskState, now_ms,
};

pub use crate::error::Finish;

pub struct Engine {
    pub(super) repo: Repo,
    pub(super) plan: Arc<Plan>,
    pub(super) plan_dir: PathBuf,
    pub(super) run_dir: RunDir,
    pub(super) store: StateStore,
    pub(super) state: RunState,
    pub(super) journal: Arc<Journal>,
    pub(super) reporter: Box<dyn Reporter>,
    pub(super) shared: Arc<Shared>,
    pub(super) refs: RefNames,
    pub(super) identity_env: Vec<(String, String)>,
    /// Per stream: its tasks' estimates plus the longest chain after it (critical path first).
    pub(super) remaining: Vec<f64>,
    /// Executors running right now.
    pub(super) running: usize,
    /// Per stream: the slot (`STREAMS_SLOT`) it holds while active.
    pub(super) slots: Vec<Option<usize>>,
    /// A conflict was found: no new work starts; the halt is written once running tasks end.
    pub(super) halting: Option<(SyncUnit, ConflictFound)>,
    /// A signal arrived: running agents are being stopped.
    pub(super) stopping: Option<Signal>,
    /// `--fail-fast` after a failure: nothing new starts.
    pub(super) no_new_work: bool,
    /// The gate failed on the integration tip alone: nothing more is integrated (the message).
    pub(super) gate_stopped: Option<String>,
    /// Workspaces prepared ahead of their streams (see `super::ahead`), by stream.
    pub(super) ahead: std::collections::BTreeMap<usize, super::ahead::Ahead>,
    /// The gate (or its setup) runs right now, awaited by the dispatcher itself.
    pub(super) gate_running: bool,
    /// The tree the gate worktree was last set up at (`setup`, `include`), in this session.
    pub(super) gate_setup_at: Option<git::Oid>,
    /// Streams whose check runs right now (one at a time per stream).
    pub(super) checking: std::collections::BTreeSet<usize>,
    /// An error that ends the session once running agents have been stopped.
    pub(super) fatal: Option<Error>,
    pub(super) cancel: watch::Sender<Cancel>,
    /// The signals that stop a session, listened to from [`Engine::run`] on (also while the
    /// gate, which runs inside the dispatcher, is awaited: see [`Engine::listening`]).
    pub(super) signals: Option<Signals>,
    pub(super) events_tx: mpsc::UnboundedSender<ExecEvent>,
    pub(super) events_rx: mpsc::UnboundedReceiver<ExecEvent>,
}

/// What a session of the engine leaves: how it ended, the final state, and the reporter (to
/// clear the live view and print the summary).
pub struct Session {
    pub finish: Finish,
    pub state: RunState,
    pub reporter: Box<dyn Reporter>,
}

pub struct EngineInput {
    pub repo: Repo,
    pub plan: Plan,
    pub plan_dir: PathBuf,
    pub run_dir: RunDir,
    pub state: RunState,
    pub journal: Arc<Journal>,
    pub reporter: Box<dyn Reporter>,
    pub identity_env: Vec<(String, String)>,
}

impl Engine {
    pub fn new(input: EngineInput) -> Engine {
        git::mark_run(&input.state.run_id);
        let ownership = Ownership::new(&input.plan);
        let stream_names = input.plan.streams.iter().map(|s| s.name.clone()).collect();
        let shared = Arc::new(Shared {
            repo: input.repo.clone(),
            ownership,
            stream_names,
            journal: input.journal.clone(),
        });
        let remaining = crate::plan::schedule::longest_remaining_path(&input.plan);
        let refs = RefNames::new(&input.plan.name);
        let (cancel, _) = watch::channel(Cancel::None);
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        let slots = vec![None; input.state.streams.len()];
        Engine {
            repo: input.repo,
            plan: Arc::new(input.plan),
            plan_dir: input.plan_dir,
            store: StateStore::new(input.run_dir.clone()),
            run_dir: input.run_dir,
            state: input.state,
            journal: input.journal,
            reporter: input.reporter,
            shared,
            refs,
            identity_env: input.identity_env,
            slots,
            remaining,
            running: 0,
            halting: None,
            stopping: None,
            no_new_work: false,
            gate_stopped: None,
            gate_running: false,
            gate_setup_at: None,
            checking: Default::default(),
            ahead: Default::default(),
            fatal: None,
            cancel,
            signals: None,
            events_tx,
            events_rx,
        }
    }

    pub fn state(&self) -> &RunState {
        &self.state
    }

    /// Saves the state: the engine's only way to write it (see [`StateStore`]).
    pub(super) fn save(&mut self) -> Result<()> {
        let began = std::time::Instant::now();
        let saved = self.store.save(&mut self.state);
        tracing::debug!(
            "state saved: {:.1} ms",
            began.elapsed().as_secs_f64() * 1000.0
        );
        saved
    }

    /// Tells the reporters a session of `command` begins (the first event they see).
    pub fn announce(&mut self, command: &str) {
        self.emit(Event::RunStarted {
            run_id: self.state.run_id.clone(),
            plan: self.state.plan_name.clone(),
            base: self.state.base.to_string(),
            streams: self.state.streams.len(),
            jobs: self.state.jobs,
            command: command.to_string(),
        });
    }

    /// Agents running at once from now on (`resume --jobs`); saved with the next change.
    pub fn set_jobs(&mut self, jobs: usize) {
        self.state.jobs = jobs.max(1);
    }

    pub(super) fn emit(&mut self, event: Event) {
        self.reporter.event(&event, &self.state);
    }

    /// Runs until every stream has reached an end, a conflict halts the run, or a signal stops it.
    pub async fn run(mut self) -> Result<Session> {
        self.signals = Some(Signals::new()?);
        self.state.session_started_at = now_ms();
        self.state.phase = RunPhase::Running;
        self.save()?;

        self.drain_queue().await;
        loop {
            if let Err(e) = self.start_ready() {
                self.fail_session(e);
            }
            self.prepare_ahead();
            // A preparation under way is waited for: its workspace is written by then.
            if self.running == 0 && self.preparations() == 0 {
                break;
            }
            let Some(signals) = self.signals.as_mut() else {
                return Err(Error::Internal("the session listens to no signal".into()));
            };
            tokio::select! {
                Some(event) = self.events_rx.recv() => {
                    if let Err(e) = self.handle(event).await {
                        self.fail_session(e);
                    }
                    // Every event already waiting too: units that reach their sync point
                    // together are integrated (and gated) together.
                    while let Ok(event) = self.events_rx.try_recv() {
                        if let Err(e) = self.handle(event).await {
                            self.fail_session(e);
                        }
                    }
                    self.drain_queue().await;
                }
                sig = signals.recv() => self.on_signal(sig),
            }
        }
        self.end_session().await
    }

    /// Awaits `work` (which must not need the engine) while handling the signals that stop a
    /// session, as the main loop does: for what the dispatcher itself awaits, like the gate,
    /// so Ctrl-C reaches its processes through `cancel` as it reaches agents.
    pub(super) async fn listening<T>(&mut self, work: impl std::future::Future<Output = T>) -> T {
        tokio::pin!(work);
        loop {
            let Some(signals) = self.signals.as_mut() else {
                return work.await;
            };
            tokio::select! {
                done = &mut work => return done,
                sig = signals.recv() => self.on_signal(sig),
            }
        }
    }

    pub(super) fn fail_session(&mut self, error: Error) {
        if self.fatal.is_none() {
            self.fatal = Some(error);
        }
        if self.running > 0 && self.stopping.is_none() {
            self.stopping = Some(Signal::SIGTERM);
            let _ = self.cancel.send(Cancel::Graceful(Signal::SIGTERM));
        }
    }

    pub(super) fn on_signal(&mut self, sig: Signal) {
        if self.stopping.is_some() {
            // Second signal: no more grace.
            let _ = self.cancel.send(Cancel::Kill);
            self.reporter
                .message("stopping now (second signal): killing every agent");
        } else {
            self.stopping = Some(sig);
            // Agents get SIGINT or SIGTERM, the signals they know how to stop on; a hangup of
            // streams' terminal is not theirs (they run in their own process groups).
            let to_agents = if sig == Signal::SIGHUP {
                Signal::SIGTERM
            } else {
                sig
            };
            let _ = self.cancel.send(Cancel::Graceful(to_agents));
            let gate = if self.gate_running {
                " and the gate"
            } else {
                ""
            };
            self.reporter.message(&format!(
                "{} received: stopping {} running agent(s){gate} (again to kill them at once)",
                signal_name(sig),
                self.running
            ));
        }
    }

    pub(super) async fn end_session(mut self) -> Result<Session> {
        let session = now_ms().saturating_sub(self.state.session_started_at);
        self.state.previous_wall_ms += session;
        self.state.session_started_at = now_ms();
        let end = decide::session_end(self.fatal.is_some(), self.stopping, self.halting.is_some());
        match end {
            SessionEnd::Fatal => {
                // Leave the phase as Running: `resume` picks it up once the cause is fixed.
                let _ = self.save();
                return Err(self
                    .fatal
                    .take()
                    .unwrap_or_else(|| Error::Internal("no error to end on".into())));
            }
            SessionEnd::Interrupted(sig) => {
                self.state.phase = RunPhase::Interrupted {
                    signal: signal_name(sig).into(),
                };
                self.save()?;
                self.emit(Event::Interrupted {
                    signal: signal_name(sig).into(),
                });
                return Ok(Session {
                    finish: Finish::Interrupted(sig),
                    state: self.state,
                    reporter: self.reporter,
                });
            }
            SessionEnd::Halt => {
                if let Some((unit, conflict)) = self.halting.take() {
                    self.write_halt(unit, conflict).await?;
                }
                return Ok(Session {
                    finish: Finish::Halted,
                    state: self.state,
                    reporter: self.reporter,
                });
            }
            SessionEnd::Finished => {}
        }
        // Streams that never started: why.
        for i in 0..self.state.streams.len() {
            if self.state.streams[i].state == StreamState::Pending {
                self.skip_stream(
                    i,
                    decide::never_started(self.no_new_work).to_string(),
                    false,
                );
            }
        }
        self.guard_integration_ref()?;
        self.state.phase = RunPhase::Finished;
        let _ = self.journal.append(Entry::Finished);
        self.save()?;
        self.record_history();
        Ok(Session {
            finish: decide::finished(&self.state),
            state: self.state,
            reporter: self.reporter,
        })
    }

    /// What each task took, for `streams plan` to predict from next time. The history helps
    /// plan, it holds no work: failing to write it is logged, not fatal.
    fn record_history(&self) {
        let path = crate::state::history::path(self.repo.common_dir());
        let now = crate::state::now_ms();
        if let Err(err) = crate::state::history::record_run(&path, &self.state, &self.plan, now) {
            tracing::warn!("could not record the run in {}: {err}", path.display());
        }
    }

    // -----------------------------------------------------------------------------------------
    // Scheduling

    pub(super) fn sync(&self) -> SyncPoint {
        self.plan.sync
    }

    pub(super) fn brakes(&self) -> decide::Brakes {
        decide::Brakes {
            halting: self.halting.is_some(),
            stopping: self.stopping.is_some(),
            no_new_work: self.no_new_work,
            fatal: self.fatal.is_some(),
        }
    }

    /// Starts every task that may start now.
    pub(super) fn start_ready(&mut self) -> Result<()> {
        if !self.brakes().may_start_work() {
            return Ok(());
        }
        // Streams already holding a slot go on with their next task first.
        for s in 0..self.state.streams.len() {
            if !matches!(self.state.streams[s].state, StreamState::Active { .. }) {
                continue;
            }
            if let Some((task, start)) = decide::next_task(&self.state, self.sync(), s)
                && !decide::group_full(&self.plan, &self.state, s, task)
            {
                self.start_task(s, task, start)?;
            }
        }
        // Then new streams, while slots are free: highest priority, then longest remaining path,
        // passing over those whose first agent's group is full (others use the free slots).
        while decide::slot_free(&self.state) {
            let Some(s) = decide::ready_streams(&self.plan, &self.state, &self.remaining)
                .into_iter()
                .find(|&s| !decide::group_full(&self.plan, &self.state, s, 0))
            else {
                break;
            };
            if self.preparing(s) {
                // It takes the slot once its workspace is ready (this loop runs again then).
                break;
            }
            self.state.streams[s].state = StreamState::Active {
                started_at: now_ms(),
            };
            if self.state.streams[s].tasks.is_empty() {
                self.finish_stream(s);
                continue;
            }
            let record = &self.state.streams[s];
            let event = Event::StreamStarted {
                stream: record.name.clone(),
                tasks: record.tasks.len(),
                branch: crate::layout::short_branch(&record.branch).to_string(),
                worktree: record.worktree.display().to_string(),
            };
            self.emit(event);
            if let Some((task, start)) = decide::next_task(&self.state, self.sync(), s) {
                let prepared = if task == 0 {
                    self.take_prepared(s)
                } else {
                    None
                };
                self.start_task_in(s, task, start, prepared)?;
            }
        }
        Ok(())
    }

    // -----------------------------------------------------------------------------------------
    // Events from executors

    pub(super) async fn handle(&mut self, event: ExecEvent) -> Result<()> {
        match event {
            ExecEvent::Note { stream, message } => {
                self.state.streams[stream].notes.push(message.clone());
                let name = self.state.streams[stream].name.clone();
                self.emit(Event::Note {
                    stream: name,
                    message,
                });
            }
            ExecEvent::Spawned {
                stream,
                task,
                attempt,
                pgid,
            } => {
                let record = &mut self.state.streams[stream].tasks[task];
                record.attempts = attempt;
                if let TaskState::Running { pgid: slot, .. } = &mut record.state {
                    *slot = Some(pgid);
                }
                self.save()?;
            }
            ExecEvent::Retrying {
                stream,
                task,
                attempt,
                reason,
                why,
                delay,
            } => {
                self.state.streams[stream].tasks[task]
                    .retried_for
                    .push(why.clone());
                self.save()?;
                let name = self.state.streams[stream].name.clone();
                self.emit(Event::TaskRetrying {
                    stream: name,
                    task: task + 1,
                    attempt,
                    reason: reason.to_string(),
                    delay_ms: delay.as_millis() as u64,
                });
            }
            ExecEvent::SetupStarted { stream } => {
                self.state.streams[stream].setting_up = true;
                self.save()?;
            }
            ExecEvent::SetupFinished {
                stream,
                started_at,
                failure,
                at,
            } => {
                let record = &mut self.state.streams[stream];
                record.setting_up = false;
                if at.is_some() {
                    record.setup_at = at;
                }
                let outcome = match failure {
                    None => SpanOutcome::Ok,
                    Some(_) if self.stopping.is_some() => SpanOutcome::Interrupted,
                    Some(reason) => SpanOutcome::Failed { reason },
                };
                let name = self.state.streams[stream].name.clone();
                let log = self.run_dir.setup_log_path(&name);
                self.record_span(stream, Step::Setup, started_at, outcome, Some(log));
                self.save()?;
            }
            ExecEvent::Finished {
                stream,
                task,
                outcome,
            } => {
                self.running -= 1;
                self.guard_integration_ref()?;
                self.task_finished(stream, task, outcome).await?;
            }
            ExecEvent::CheckFinished(end) => self.check_finished(end)?,
            ExecEvent::Prepared { stream, at, result } => self.prepared(stream, at, result),
        }
        Ok(())
    }

    pub(super) async fn task_finished(
        &mut self,
        s: usize,
        t: usize,
        outcome: TaskOutcome,
    ) -> Result<()> {
        let (start, started_at) = match &self.state.streams[s].tasks[t].state {
            TaskState::Running {
                start, started_at, ..
            } => (start.clone(), *started_at),
            other => {
                return Err(Error::Internal(format!(
                    "task finished in state {}",
                    other.name()
                )));
            }
        };
        match outcome {
            TaskOutcome::Committed {
                end,
                stats,
                agent,
                attempts,
            } => {
                let record = &mut self.state.streams[s].tasks[t];
                record.attempts = attempts;
                record.agent_ms += agent.as_millis() as u64;
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
                self.record_task_span(s, t, started_at, SpanOutcome::Ok);
                self.after_commit(s, t);
                self.save()?;
                let record = &self.state.streams[s];
                let event = Event::TaskCommitted {
                    stream: record.name.clone(),
                    task: t + 1,
                    tasks: record.tasks.len(),
                    commits: stats.commits,
                    files: stats.files,
                    insertions: stats.insertions,
                    deletions: stats.deletions,
                    duration_ms: agent.as_millis() as u64,
                };
                self.emit(event);
            }
            // A failure of streams' own steps while stopping is the stop, not the task: it stays
            // `Running`, and `resume` runs it again.
            TaskOutcome::Failed {
                reason: FailReason::Internal { .. },
                agent,
                attempts,
            } if self.stopping.is_some() => {
                let record = &mut self.state.streams[s].tasks[t];
                record.attempts = attempts;
                record.agent_ms += agent.as_millis() as u64;
                self.record_task_span(s, t, started_at, SpanOutcome::Interrupted);
                self.save()?;
            }
            TaskOutcome::Failed {
                reason,
                agent,
                attempts,
            } => {
                let record = &mut self.state.streams[s].tasks[t];
                record.attempts = attempts;
                record.agent_ms += agent.as_millis() as u64;
                self.task_failed(s, t, reason);
                self.save()?;
            }
            TaskOutcome::Interrupted { agent, attempts } => {
                // Stays `Running`: `resume` keeps its work and runs it again from its start.
                let record = &mut self.state.streams[s].tasks[t];
                record.attempts = attempts;
                record.agent_ms += agent.as_millis() as u64;
                self.record_task_span(s, t, started_at, SpanOutcome::Interrupted);
                self.save()?;
            }
        }
        Ok(())
    }

    /// A task's work is committed: queue it for integration if this is a sync point.
    pub(crate) fn after_commit(&mut self, s: usize, t: usize) {
        if let Some(unit) = decide::sync_unit(&self.state, self.sync(), s, t)
            && !self.state.queue.contains(&unit)
        {
            self.unit_ready(unit);
        }
    }

    /// Puts a step on the run's timeline, ending now.
    pub(super) fn record_span(
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

    fn record_task_span(&mut self, s: usize, t: usize, started_at: u64, outcome: SpanOutcome) {
        let log = self.run_dir.log_path(&self.state.streams[s].name, t);
        self.record_span(s, Step::Task { task: t }, started_at, outcome, Some(log));
    }

    pub(super) fn task_failed(&mut self, s: usize, t: usize, reason: FailReason) {
        let name = self.state.streams[s].name.clone();
        // A failed setup is told with its own log: the agent never ran.
        let log = match reason {
            FailReason::Setup { .. } => self.run_dir.setup_log_path(&name),
            _ => self.run_dir.log_path(&name, t),
        };
        // A task that never started (no agent, no prompt) takes no time on the chart.
        let started_at = match self.state.streams[s].tasks[t].state {
            TaskState::Running { started_at, .. } => started_at,
            _ => now_ms(),
        };
        self.record_task_span(
            s,
            t,
            started_at,
            SpanOutcome::Failed {
                reason: reason.to_string(),
            },
        );
        self.state.streams[s].tasks[t].state = TaskState::Failed {
            reason: reason.clone(),
            at: now_ms(),
        };
        let event = Event::TaskFailed {
            stream: name,
            task: t + 1,
            reason: reason.to_string(),
            log: log.display().to_string(),
            log_tail: crate::agent::log::tail(&log, 5),
        };
        self.emit(event);
        self.fail_stream(s, reason.to_string());
    }

    pub(super) fn fail_stream(&mut self, s: usize, reason: String) {
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

    /// `chosen`: left out by the person (`streams skip`, or waiting on a stream so left out).
    pub(super) fn skip_stream(&mut self, s: usize, reason: String, chosen: bool) {
        let stream = self.state.streams[s].name.clone();
        let state = StreamState::Skipped {
            reason: reason.clone(),
            chosen,
        };
        self.end_stream(s, state, Event::StreamSkipped { stream, reason });
    }

    /// Ends a stream that will not finish: its pending tasks will not run, and every stream
    /// waiting on it is skipped.
    pub(super) fn end_stream(&mut self, s: usize, state: StreamState, event: Event) {
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
    pub(super) fn skip_dependents(&mut self, name: &str, chosen: bool) {
        for i in decide::stranded_by(&self.plan, &self.state, name) {
            let reason = if chosen {
                format!("its dependency `{name}` was left out")
            } else {
                format!("its dependency `{name}` did not finish")
            };
            self.skip_stream(i, reason, chosen);
        }
    }

    pub(super) fn finish_stream(&mut self, s: usize) {
        let started_at = match self.state.streams[s].state {
            StreamState::Active { started_at } => started_at,
            _ => now_ms(),
        };
        let finished_at = now_ms();
        self.state.streams[s].state = StreamState::Done {
            started_at,
            finished_at,
        };
        let mut total = crate::state::WorkStats::default();
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
        if let Ok(files) = git::changes::distinct_files_changed(&self.repo, &ranges) {
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
}

/// Where the resolution worktree of a halted run goes (see `layout::resolution_worktree`).
/// SIGINT, SIGTERM and SIGHUP, as one stream of signals.
pub(super) struct Signals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
    hangup: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> Result<Signals> {
        Ok(Signals {
            interrupt: signal(SignalKind::interrupt())
                .map_err(|e| Error::io("could not handle SIGINT", e))?,
            terminate: signal(SignalKind::terminate())
                .map_err(|e| Error::io("could not handle SIGTERM", e))?,
            // A closed terminal (or ssh session) must not leave agents running with nobody to
            // stop them: SIGHUP stops the session like SIGTERM does, and `resume` goes on.
            hangup: signal(SignalKind::hangup())
                .map_err(|e| Error::io("could not handle SIGHUP", e))?,
        })
    }

    /// The next signal.
    async fn recv(&mut self) -> Signal {
        tokio::select! {
            _ = self.interrupt.recv() => Signal::SIGINT,
            _ = self.terminate.recv() => Signal::SIGTERM,
            _ = self.hangup.recv() => Signal::SIGHUP,
        }
    }
}

pub fn resolution_worktree_path(repo: &Repo, plan: &Plan) -> PathBuf {
    layout::resolution_worktree(&worktrees_dir(repo, plan))
}

/// The directory holding a plan's worktrees (see `layout::worktrees_dir`).
pub fn worktrees_dir(repo: &Repo, plan: &Plan) -> PathBuf {
    layout::worktrees_dir(
        repo.root(),
        repo.common_dir(),
        &plan.name,
        plan.worktree_root.as_deref(),
    )
}

pub fn signal_name(sig: Signal) -> &'static str {
    match sig {
        Signal::SIGINT => "SIGINT",
        Signal::SIGTERM => "SIGTERM",
        Signal::SIGHUP => "SIGHUP",
        _ => "signal",
    }
}
