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

use super::executor::{self, ExecEvent, Shared, TaskJob, TaskOutcome};
use super::process::{Cancel, Limits};
use super::prompt::{self, DependencyWork, Placeholders};
use crate::coordinator::{self, ConflictFound, TaskRange, UnitInput, UnitOutcome};
use crate::error::{Error, Result};
use crate::failpoint;
use crate::git::{self, Repo};
use crate::layout::{self, RefNames};
use crate::ownership::Ownership;
use crate::plan::{Plan, SyncPoint};
use crate::report::{Event, Reporter};
use crate::state::{
    Entry, FailReason, Halt, Journal, RunDir, RunPhase, RunState, StreamState, SyncUnit, TaskState,
    now_ms,
};

/// How a session of the engine ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Finish {
    /// Every stream done and integrated.
    Integrated,
    /// Finished, but some streams failed or were skipped.
    Failed,
    /// Waiting for a person to resolve a conflict.
    Halted,
    Interrupted(Signal),
}

pub struct Engine {
    pub(super) repo: Repo,
    pub(super) plan: Arc<Plan>,
    pub(super) plan_dir: PathBuf,
    pub(super) run_dir: RunDir,
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
    /// A conflict was found: no new work starts; the halt is written once running tasks end.
    pub(super) halting: Option<(SyncUnit, ConflictFound)>,
    /// A signal arrived: running agents are being stopped.
    pub(super) stopping: Option<Signal>,
    /// `--fail-fast` after a failure: nothing new starts.
    pub(super) no_new_work: bool,
    /// An error that ends the session once running agents have been stopped.
    pub(super) fatal: Option<Error>,
    pub(super) cancel: watch::Sender<Cancel>,
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
        Engine {
            repo: input.repo,
            plan: Arc::new(input.plan),
            plan_dir: input.plan_dir,
            run_dir: input.run_dir,
            state: input.state,
            journal: input.journal,
            reporter: input.reporter,
            shared,
            refs,
            identity_env: input.identity_env,
            remaining,
            running: 0,
            halting: None,
            stopping: None,
            no_new_work: false,
            fatal: None,
            cancel,
            events_tx,
            events_rx,
        }
    }

    pub fn state(&self) -> &RunState {
        &self.state
    }

    pub(super) fn save(&mut self) -> Result<()> {
        self.state.updated_at = now_ms();
        self.run_dir.save(&self.state)
    }

    pub(super) fn emit(&mut self, event: Event) {
        self.reporter.event(&event, &self.state);
    }

    /// Runs until every stream has reached an end, a conflict halts the run, or a signal stops it.
    pub async fn run(mut self) -> Result<Session> {
        let mut sigint =
            signal(SignalKind::interrupt()).map_err(|e| Error::io("could not handle SIGINT", e))?;
        let mut sigterm = signal(SignalKind::terminate())
            .map_err(|e| Error::io("could not handle SIGTERM", e))?;
        self.state.session_started_at = now_ms();
        self.state.phase = RunPhase::Running;
        self.save()?;

        self.drain_queue().await;
        loop {
            if let Err(e) = self.start_ready() {
                self.fail_session(e);
            }
            if self.running == 0 {
                break;
            }
            tokio::select! {
                Some(event) = self.events_rx.recv() => {
                    if let Err(e) = self.handle(event).await {
                        self.fail_session(e);
                    }
                }
                _ = sigint.recv() => self.on_signal(Signal::SIGINT),
                _ = sigterm.recv() => self.on_signal(Signal::SIGTERM),
            }
        }
        self.end_session().await
    }

    fn fail_session(&mut self, error: Error) {
        if self.fatal.is_none() {
            self.fatal = Some(error);
        }
        if self.running > 0 && self.stopping.is_none() {
            self.stopping = Some(Signal::SIGTERM);
            let _ = self.cancel.send(Cancel::Graceful(Signal::SIGTERM));
        }
    }

    fn on_signal(&mut self, sig: Signal) {
        if self.stopping.is_some() {
            // Second signal: no more grace.
            let _ = self.cancel.send(Cancel::Kill);
            self.reporter
                .message("stopping now (second signal): killing every agent");
        } else {
            self.stopping = Some(sig);
            let _ = self.cancel.send(Cancel::Graceful(sig));
            self.reporter.message(&format!(
                "{} received: stopping {} running agent(s) (again to kill them at once)",
                signal_name(sig),
                self.running
            ));
        }
    }

    async fn end_session(mut self) -> Result<Session> {
        let session = now_ms().saturating_sub(self.state.session_started_at);
        self.state.previous_wall_ms += session;
        self.state.session_started_at = now_ms();
        if let Some(error) = self.fatal.take() {
            // Leave the phase as Running: `resume` picks it up once the cause is fixed.
            let _ = self.save();
            return Err(error);
        }
        if let Some(sig) = self.stopping {
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
        if let Some((unit, conflict)) = self.halting.take() {
            self.write_halt(unit, conflict).await?;
            return Ok(Session {
                finish: Finish::Halted,
                state: self.state,
                reporter: self.reporter,
            });
        }
        // Streams that never started: why.
        for i in 0..self.state.streams.len() {
            if self.state.streams[i].state == StreamState::Pending {
                let reason = if self.no_new_work {
                    "not started: --fail-fast stopped the run after a failure".to_string()
                } else {
                    "not started: its dependencies did not finish".to_string()
                };
                self.skip_stream(i, reason);
            }
        }
        self.guard_integration_ref()?;
        self.state.phase = RunPhase::Finished;
        let _ = self.journal.append(Entry::Finished);
        self.save()?;
        let finish = if self.state.any_failed() {
            Finish::Failed
        } else {
            Finish::Integrated
        };
        Ok(Session {
            finish,
            state: self.state,
            reporter: self.reporter,
        })
    }

    // -----------------------------------------------------------------------------------------
    // Scheduling

    fn sync(&self) -> SyncPoint {
        self.plan.sync
    }

    fn active_streams(&self) -> usize {
        self.state
            .streams
            .iter()
            .filter(|s| matches!(s.state, StreamState::Active { .. }))
            .count()
    }

    fn deps_done(&self, stream: usize) -> bool {
        self.plan.streams[stream].depends_on.iter().all(|d| {
            self.state
                .stream_by_name(d)
                .is_some_and(|(_, r)| matches!(r.state, StreamState::Done { .. }))
        })
    }

    /// Starts every task that may start now.
    fn start_ready(&mut self) -> Result<()> {
        if self.halting.is_some()
            || self.stopping.is_some()
            || self.no_new_work
            || self.fatal.is_some()
        {
            return Ok(());
        }
        // Streams already holding a slot go on with their next task first.
        for s in 0..self.state.streams.len() {
            if !matches!(self.state.streams[s].state, StreamState::Active { .. }) {
                continue;
            }
            if let Some((task, start)) = self.next_task(s) {
                self.start_task(s, task, start)?;
            }
        }
        // Then new streams, while slots are free: highest priority, then longest remaining path.
        while self.active_streams() < self.state.jobs.max(1) {
            let mut ready: Vec<usize> = (0..self.state.streams.len())
                .filter(|&s| {
                    self.state.streams[s].state == StreamState::Pending && self.deps_done(s)
                })
                .collect();
            if ready.is_empty() {
                break;
            }
            ready.sort_by(|&a, &b| {
                crate::plan::schedule::start_order(&self.plan, &self.remaining, a, b)
            });
            let s = ready[0];
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
            if let Some((task, start)) = self.next_task(s) {
                self.start_task(s, task, start)?;
            }
        }
        Ok(())
    }

    /// The next task of an active stream and the commit it starts from, if it can start now.
    fn next_task(&self, s: usize) -> Option<(usize, git::Oid)> {
        let tasks = &self.state.streams[s].tasks;
        if tasks
            .iter()
            .any(|t| matches!(t.state, TaskState::Running { .. }))
        {
            return None;
        }
        let next = tasks.iter().position(|t| t.state == TaskState::Pending)?;
        if next == 0 {
            return Some((0, self.state.integration_tip.clone()));
        }
        match (&tasks[next - 1].state, self.sync()) {
            (TaskState::Committed { end, .. }, SyncPoint::Stream) => Some((next, end.clone())),
            (TaskState::Integrated { end, .. }, SyncPoint::Stream) => Some((next, end.clone())),
            // After its sync point the stream goes on from the new integration tip.
            (TaskState::Integrated { .. }, SyncPoint::Task) => {
                Some((next, self.state.integration_tip.clone()))
            }
            _ => None,
        }
    }

    fn start_task(&mut self, s: usize, t: usize, start: git::Oid) -> Result<()> {
        let plan = self.plan.clone();
        let stream = &plan.streams[s];
        let task = &stream.tasks[t];
        let record = &self.state.streams[s];
        let name = record.name.clone();
        let worktree = record.worktree.clone();
        let attempts = record.tasks[t].attempts;

        let Some(agent) = plan.agent_for(stream, task) else {
            self.task_failed(
                s,
                t,
                FailReason::Spawn {
                    message:
                        "no agent command: set `agent` in [plan], on the stream or on the task"
                            .into(),
                },
            );
            return Ok(());
        };
        // A prompt file is read from the copy taken when the run started, so a checkout
        // switching branches (or an edit) mid-run changes nothing.
        let copy = self.run_dir.prompt_source_path(&name, t);
        let text = match std::fs::read_to_string(&copy)
            .map_err(|_| ())
            .or_else(|()| prompt::task_text(&self.plan_dir, &task.prompt))
        {
            Ok(text) => text,
            Err(message) => {
                self.task_failed(s, t, FailReason::Spawn { message });
                return Ok(());
            }
        };
        let deps = self.dependency_work(s);
        let rendered = prompt::render(&plan, s, t, &text, &deps);
        let prompt_path = self.run_dir.prompt_path(&name, t);
        if let Some(dir) = prompt_path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| Error::io(format!("could not create {}", dir.display()), e))?;
        }
        std::fs::write(&prompt_path, &rendered).map_err(|e| {
            Error::io(
                format!("could not write the prompt {}", prompt_path.display()),
                e,
            )
        })?;

        let worktree_str = worktree.display().to_string();
        let prompt_file = prompt_path.display().to_string();
        let argv = prompt::expand(
            agent,
            &Placeholders {
                prompt: &rendered,
                prompt_file: &prompt_file,
                stream: &name,
                task: &text,
                task_index: t + 1,
                worktree: &worktree_str,
            },
        );
        let env = self.agent_env(s, t, &text, &prompt_file, &worktree_str);
        let limits = Limits {
            timeout: plan.timeout_for(stream, task),
            idle: plan.idle_timeout_for(stream),
            grace: plan.grace,
        };
        let commit_message = commit_message(&name, t, &text);
        let job = TaskJob {
            stream_index: s,
            task_index: t,
            stream: name.clone(),
            branch: self.state.streams[s].branch.clone(),
            worktree,
            start: start.clone(),
            argv,
            env,
            log_path: self.run_dir.log_path(&name, t),
            limits,
            retries: plan.retries_for(stream),
            retry_on: plan.retry_on.clone(),
            retry_backoff: plan.retry_backoff,
            commit_message,
            identity_env: self.identity_env.clone(),
            refs: self.refs.clone(),
            lock_reason: format!("streams run {}", self.state.run_id),
            previous_attempts: attempts,
        };

        // Intent first: the task is recorded as running (with its start) before anything runs.
        self.state.streams[s].tasks[t].state = TaskState::Running {
            start,
            started_at: now_ms(),
            pgid: None,
        };
        self.save()?;
        failpoint::hit("task-recorded");
        let event = Event::TaskStarted {
            stream: name,
            task: t + 1,
            tasks: stream.tasks.len(),
            attempt: attempts + 1,
            summary: self.state.streams[s].tasks[t].summary.clone(),
        };
        self.emit(event);
        self.running += 1;
        tokio::spawn(executor::run_task(
            self.shared.clone(),
            job,
            self.events_tx.clone(),
            self.cancel.subscribe(),
        ));
        Ok(())
    }

    fn agent_env(
        &self,
        s: usize,
        t: usize,
        text: &str,
        prompt_file: &str,
        worktree: &str,
    ) -> Vec<(String, String)> {
        let plan = &self.plan;
        let stream = &plan.streams[s];
        let mut env: Vec<(String, String)> = self.identity_env.clone();
        env.extend(plan.env_for(stream));
        let owns: Vec<&str> = stream.owns.iter().map(|p| p.text.as_str()).collect();
        let shared: Vec<&str> = plan.shared.iter().map(|p| p.text.as_str()).collect();
        env.extend(
            [
                ("STREAMS_RUN_ID", self.state.run_id.clone()),
                ("STREAMS_PLAN", plan.name.clone()),
                ("STREAMS_STREAM", stream.name.clone()),
                ("STREAMS_TASK_INDEX", (t + 1).to_string()),
                // The kernel limits one environment string to 128 KiB; a long task is cut here
                // (the whole of it is in the prompt file).
                (
                    "STREAMS_TASK",
                    truncate_utf8(text, STREAMS_TASK_LIMIT).to_string(),
                ),
                ("STREAMS_PROMPT_FILE", prompt_file.to_string()),
                ("STREAMS_OWNS", owns.join("\n")),
                ("STREAMS_SHARED", shared.join("\n")),
                ("STREAMS_WORKTREE", worktree.to_string()),
                ("STREAMS_BASE", self.state.base.to_string()),
                (
                    "STREAMS_INTEGRATION",
                    crate::layout::short_branch(&self.state.integration_ref).to_string(),
                ),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v)),
        );
        env
    }

    /// What the stream's direct dependencies integrated, for its prompt.
    fn dependency_work(&self, s: usize) -> Vec<DependencyWork> {
        self.plan.streams[s]
            .depends_on
            .iter()
            .filter_map(|dep| {
                let (_, record) = self.state.stream_by_name(dep)?;
                let tasks = record.tasks.iter().map(|t| t.summary.clone()).collect();
                let first = record.tasks.first().and_then(|t| match &t.state {
                    TaskState::Integrated { start, .. } | TaskState::Committed { start, .. } => {
                        Some(start.clone())
                    }
                    _ => None,
                });
                let last = record.tasks.last().and_then(|t| t.state.end().cloned());
                let (files, total_files) = match (first, last) {
                    (Some(from), Some(to)) => {
                        git::changes::changed_files(&self.repo, &from, &to, 20).unwrap_or_default()
                    }
                    _ => (Vec::new(), 0),
                };
                Some(DependencyWork {
                    stream: dep.clone(),
                    tasks,
                    files,
                    total_files,
                })
            })
            .collect()
    }

    // -----------------------------------------------------------------------------------------
    // Events from executors

    async fn handle(&mut self, event: ExecEvent) -> Result<()> {
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
                delay,
            } => {
                let name = self.state.streams[stream].name.clone();
                self.emit(Event::TaskRetrying {
                    stream: name,
                    task: task + 1,
                    attempt,
                    reason: reason.to_string(),
                    delay_ms: delay.as_millis() as u64,
                });
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
        }
        Ok(())
    }

    async fn task_finished(&mut self, s: usize, t: usize, outcome: TaskOutcome) -> Result<()> {
        let start = match &self.state.streams[s].tasks[t].state {
            TaskState::Running { start, .. } => start.clone(),
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
                record.state = TaskState::Committed {
                    start,
                    end,
                    stats: stats.clone(),
                    finished_at: now_ms(),
                };
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
                self.drain_queue().await;
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
                self.save()?;
            }
        }
        Ok(())
    }

    /// A task's work is committed: queue it for integration if this is a sync point.
    pub(crate) fn after_commit(&mut self, s: usize, t: usize) {
        let last = self.state.streams[s].tasks.len() - 1;
        let first = match self.sync() {
            SyncPoint::Task => t,
            SyncPoint::Stream if t == last => 0,
            SyncPoint::Stream => return,
        };
        // A unit covers the tasks since the last sync point that are not integrated yet.
        let tasks = &self.state.streams[s].tasks;
        let first = (first..=t)
            .find(|&i| matches!(tasks[i].state, TaskState::Committed { .. }))
            .unwrap_or(t);
        let from = match &tasks[first].state {
            TaskState::Committed { start, .. } => start.clone(),
            _ => return,
        };
        let Some(to) = tasks[t].state.end().cloned() else {
            return;
        };
        let unit = SyncUnit {
            stream: s,
            first,
            last: t,
            from,
            to,
        };
        if !self.state.queue.contains(&unit) {
            self.state.queue.push(unit);
        }
    }

    fn task_failed(&mut self, s: usize, t: usize, reason: FailReason) {
        let name = self.state.streams[s].name.clone();
        let log = self.run_dir.log_path(&name, t);
        self.state.streams[s].tasks[t].state = TaskState::Failed {
            reason: reason.clone(),
            at: now_ms(),
        };
        let event = Event::TaskFailed {
            stream: name,
            task: t + 1,
            reason: reason.to_string(),
            log: log.display().to_string(),
            log_tail: crate::report::log_tail(&log, 5),
        };
        self.emit(event);
        self.fail_stream(s, reason.to_string());
    }

    fn fail_stream(&mut self, s: usize, reason: String) {
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

    pub(super) fn skip_stream(&mut self, s: usize, reason: String) {
        let stream = self.state.streams[s].name.clone();
        let state = StreamState::Skipped {
            reason: reason.clone(),
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
        record.state = state;
        let name = record.name.clone();
        self.emit(event);
        self.skip_dependents(&name);
    }

    /// Every stream that depends on `name`, directly or not, and has not started, is skipped.
    fn skip_dependents(&mut self, name: &str) {
        let dependents: Vec<usize> = (0..self.plan.streams.len())
            .filter(|&i| self.plan.streams[i].depends_on.iter().any(|d| d == name))
            .filter(|&i| self.state.streams[i].state == StreamState::Pending)
            .collect();
        for i in dependents {
            self.skip_stream(i, format!("its dependency `{name}` did not finish"));
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
        let name = self.state.streams[s].name.clone();
        self.emit(Event::StreamDone {
            stream: name,
            duration_ms: finished_at.saturating_sub(started_at),
            commits: total.commits,
            files: total.files,
        });
    }

    // -----------------------------------------------------------------------------------------
    // Integration

    /// Integrates queued units in order until the queue is empty or a conflict halts.
    async fn drain_queue(&mut self) {
        while self.halting.is_none() && self.fatal.is_none() && !self.state.queue.is_empty() {
            let unit = self.state.queue[0].clone();
            if let Err(e) = self.integrate_unit(unit).await {
                self.fail_session(e);
            }
        }
    }

    pub(super) fn unit_tasks(&self, unit: &SyncUnit) -> Vec<TaskRange> {
        let record = &self.state.streams[unit.stream];
        (unit.first..=unit.last)
            .filter_map(|i| match &record.tasks[i].state {
                TaskState::Committed { start, end, .. }
                | TaskState::Integrated { start, end, .. } => Some(TaskRange {
                    index: i,
                    summary: record.tasks[i].summary.clone(),
                    start: start.clone(),
                    end: end.clone(),
                }),
                _ => None,
            })
            .collect()
    }

    /// The integration branch is moved by this dispatcher alone. Found anywhere else (an agent
    /// checked it out and committed, or someone reset it), it is put back where the run left it;
    /// what was there is kept on a ref.
    pub(super) fn guard_integration_ref(&mut self) -> Result<()> {
        let name = self.state.integration_ref.clone();
        let actual = self.repo.ref_target(&name)?;
        if actual.as_deref() == Some(self.state.integration_tip.as_str()) {
            return Ok(());
        }
        let kept = match &actual {
            Some(found) => Some(git::refs::keep_ref(
                &self.repo,
                &self.refs.moved_integration(),
                found,
                "streams: the integration branch was moved outside streams",
            )?),
            None => None,
        };
        let tip = self.state.integration_tip.clone();
        coordinator::move_integration_ref(
            &self.repo,
            None,
            &name,
            actual.as_deref(),
            Some(&tip),
            coordinator::IntegrationMove::Other("streams: put back"),
        )?;
        let short = crate::layout::short_branch(&name);
        self.reporter.message(&format!(
            "warning: {short} was moved outside streams; it is put back at {}{}",
            coordinator::short(&tip),
            kept.map(|k| format!(", and what was there is kept on {k}"))
                .unwrap_or_default()
        ));
        Ok(())
    }

    async fn integrate_unit(&mut self, unit: SyncUnit) -> Result<()> {
        failpoint::hit("before-integrate");
        self.guard_integration_ref()?;
        let tasks = self.unit_tasks(&unit);
        let name = self.state.streams[unit.stream].name.clone();
        let (repo, journal) = (self.repo.clone(), self.journal.clone());
        let (integration_ref, tip) = (
            self.state.integration_ref.clone(),
            self.state.integration_tip.clone(),
        );
        let (from, to, strategy, identity) = (
            unit.from.clone(),
            unit.to.clone(),
            self.plan.merge,
            self.identity_env.clone(),
        );
        let stream_name = name.clone();
        let task_ranges = tasks.clone();
        let outcome = tokio::task::spawn_blocking(move || {
            coordinator::integrate(
                &repo,
                Some(&journal),
                &UnitInput {
                    stream: &stream_name,
                    integration_ref: &integration_ref,
                    tip: &tip,
                    from: &from,
                    to: &to,
                    tasks: &task_ranges,
                    strategy,
                    identity_env: &identity,
                },
            )
        })
        .await
        .map_err(|e| Error::Internal(format!("integration panicked: {e}")))?
        .map_err(Error::Git)?;
        match outcome {
            UnitOutcome::Integrated { tip, commits } => {
                let stream_done = self.unit_integrated(&unit, tip.clone());
                self.emit(Event::Integrated {
                    stream: name,
                    tasks: tasks.iter().map(|t| t.index + 1).collect(),
                    commits,
                    tip: tip.to_string(),
                });
                if stream_done {
                    self.finish_stream(unit.stream);
                }
                self.save()?;
                failpoint::hit("after-integrate-saved");
            }
            UnitOutcome::Conflict(conflict) => {
                if self.running > 0 {
                    self.reporter.message(&format!(
                        "conflict integrating {name} in {}: starting nothing new; halting once {} running task(s) finish",
                        conflict.merge.conflicted_paths().join(", "),
                        self.running
                    ));
                }
                self.halting = Some((unit, conflict));
            }
        }
        Ok(())
    }

    /// Records a unit as integrated at `tip`: tasks, queue, and the kept task ends. Returns
    /// whether that completes its stream (the caller finishes it, after reporting the unit).
    pub(crate) fn unit_integrated(&mut self, unit: &SyncUnit, tip: git::Oid) -> bool {
        self.state.integration_tip = tip;
        self.state.queue.retain(|u| u != unit);
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
                let name = self.refs.task_end(&stream_name, unit.last);
                let _ = git::refs::keep_ref(&self.repo, &name, &end, "streams: task end");
            }
        }
        // A failed stream whose earlier work just landed stays failed.
        all_done
            && matches!(
                self.state.streams[unit.stream].state,
                StreamState::Active { .. }
            )
    }

    async fn write_halt(&mut self, unit: SyncUnit, conflict: ConflictFound) -> Result<()> {
        let name = self.state.streams[unit.stream].name.clone();
        let tasks = self.unit_tasks(&unit);
        let bundle = self.run_dir.conflicts_dir(&name);
        let resolution = resolution_worktree_path(&self.repo, &self.plan);
        let (repo, plan_name, integration_ref, run_id) = (
            self.repo.clone(),
            self.plan.name.clone(),
            self.state.integration_ref.clone(),
            self.state.run_id.clone(),
        );
        let (bundle_c, resolution_c, conflict_c, name_c, tasks_c) = (
            bundle.clone(),
            resolution.clone(),
            conflict.clone(),
            name.clone(),
            tasks.clone(),
        );
        let files = tokio::task::spawn_blocking(move || {
            coordinator::write_halt(
                &repo,
                &coordinator::HaltInput {
                    stream: &name_c,
                    tasks: &tasks_c,
                    plan_name: &plan_name,
                    integration_ref: &integration_ref,
                    conflict: &conflict_c,
                    bundle_dir: &bundle_c,
                    resolution_worktree: &resolution_c,
                    run_id: &run_id,
                },
            )
        })
        .await
        .map_err(|e| Error::Internal(format!("writing the conflict panicked: {e}")))??;
        self.state.phase = RunPhase::Halted(Halt {
            unit,
            files: files.clone(),
            base: conflict.base.clone(),
            ours: conflict.ours.clone(),
            theirs: conflict.theirs.clone(),
            bundle: bundle.clone(),
            resolution_worktree: resolution.clone(),
        });
        let _ = self.journal.append(Entry::Halted {
            stream: name.clone(),
        });
        self.save()?;
        self.emit(Event::Conflict {
            stream: name,
            files,
            bundle: bundle.display().to_string(),
            worktree: resolution.display().to_string(),
        });
        Ok(())
    }
}

/// How much of a task's text goes into `STREAMS_TASK`.
const STREAMS_TASK_LIMIT: usize = 32 * 1024;

/// The longest prefix of `text` of at most `max` bytes that ends on a character boundary.
fn truncate_utf8(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Where the resolution worktree of a halted run goes (see `layout::resolution_worktree`).
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

/// The commit message for what an agent left uncommitted.
fn commit_message(stream: &str, task: usize, text: &str) -> String {
    let first = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("(no task text)");
    let subject: String = if first.chars().count() > 72 {
        format!("{}...", first.chars().take(69).collect::<String>())
    } else {
        first.to_string()
    };
    let rest = text.trim();
    let body = if rest != subject {
        format!("\n{rest}\n")
    } else {
        String::new()
    };
    git::trailers::with_trailers(
        &format!("{subject}\n{body}"),
        &coordinator::trailers(stream, &[task]),
    )
}

pub fn signal_name(sig: Signal) -> &'static str {
    match sig {
        Signal::SIGINT => "SIGINT",
        Signal::SIGTERM => "SIGTERM",
        _ => "signal",
    }
}
