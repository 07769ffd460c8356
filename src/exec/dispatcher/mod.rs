//! The dispatcher: the one owner of run state.
//!
//! Executors run tasks and send events; the dispatcher alone decides what starts next, changes the
//! state, saves it, and drives integration at sync points. Every change is saved before anything
//! that depends on it happens (a task is recorded as running before its agent is spawned), so a
//! crash at any instant leaves a state that `resume` can reconcile with the refs.
//!
//! The [`Engine`] holds the `Run` (the state and its one writer) and the parts it drives, each
//! owning what it keeps: the streams' `Checks`, the `Gate`, the `AheadPool` of workspaces
//! prepared ahead, and, when a run is picked up again, a `Recovery`. A part borrows the run
//! from the dispatcher while the dispatcher awaits it; the dispatcher itself keeps the session's
//! brakes (halting, stopping, a fatal error), the slots, and the channels work reports through.

use std::path::PathBuf;
use std::sync::Arc;

use nix::sys::signal::Signal;
use tokio::sync::mpsc;

use super::ahead::AheadPool;
use super::check::Checks;
use super::decide::{self, SessionEnd};
use super::events::{Channels, ExecEvent};
use super::gate::{self, Gate};
use super::launch::{self, Launch};
use super::notify;
use super::park::{self, Resolution};
use super::process::Cancel;
use super::recover::{self, Recovery};
use super::run::{Context, Run};
use super::signals::{Signals, signal_name};
use super::task::{self, Shared, TaskOutcome};
use crate::error::{Error, Result};
use crate::failpoint;
use crate::git::{self, Repo};
use crate::ids::{Oid, StreamId, TaskId};
use crate::layout::{self, RefNames};
use crate::ownership::Ownership;
use crate::plan::{OnConflict, Plan};
use crate::report::{Event, Reporter};
use crate::state::{
    Entry, FailReason, Journal, RunDir, RunPhase, RunState, SpanOutcome, Step, StreamState,
    SyncUnit, TaskState, now_ms,
};

pub use crate::error::Finish;

pub struct Engine {
    run: Run,
    /// What every executor shares (read-only).
    shared: Arc<Shared>,
    checks: Checks,
    gate: Gate,
    pool: AheadPool,
    /// Per stream: the slot (`STREAMS_SLOT`) it holds while active.
    slots: Vec<Option<usize>>,
    /// Task executors running right now.
    tasks_running: usize,
    /// `notify` commands running right now (see [`notify`]).
    notifying: usize,
    /// A conflict stopped the line (`on_conflict = "stop"`): nothing new starts or integrates;
    /// the run halts once running tasks end. A parked stream alone stops nothing.
    line_stopped: bool,
    /// A signal arrived: running agents are being stopped.
    stopping: Option<Signal>,
    /// An error that ends the session once running agents have been stopped.
    fatal: Option<Error>,
    channels: Channels,
    events: mpsc::UnboundedReceiver<ExecEvent>,
    /// The signals that stop a session, listened to from [`Engine::run`] on (also while the
    /// gate, which runs inside the dispatcher, is awaited: see [`Engine::listening`]).
    signals: Option<Signals>,
    /// Streams `streams stop` asked to stop that are not stopped yet (a task of theirs is
    /// being stopped, or their work is being checked or integrated).
    stop_requested: std::collections::BTreeSet<usize>,
    /// Shared budgets (a stream's, the plan's): what each running task reserved and has
    /// used so far.
    budgets: super::budgets::Budgets,
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
        let plan = Arc::new(input.plan);
        let budgets = super::budgets::Budgets::new(input.repo.common_dir(), &plan);
        let shared = Arc::new(Shared {
            repo: input.repo.clone(),
            ownership: Ownership::new(&plan),
            plan: plan.clone(),
            journal: input.journal.clone(),
        });
        let ctx = Context {
            remaining: crate::plan::schedule::longest_remaining_path(&plan),
            refs: RefNames::new(&plan.name),
            repo: input.repo,
            plan,
            plan_dir: input.plan_dir,
            run_dir: input.run_dir,
            identity_env: input.identity_env,
            journal: input.journal,
        };
        let (channels, events) = Channels::new();
        let slots = vec![None; input.state.streams.len()];
        Engine {
            run: Run::new(ctx, input.state, input.reporter),
            shared,
            checks: Checks::default(),
            gate: Gate::default(),
            pool: AheadPool::default(),
            slots,
            tasks_running: 0,
            notifying: 0,
            line_stopped: false,
            stopping: None,
            fatal: None,
            channels,
            events,
            signals: None,
            stop_requested: Default::default(),
            budgets,
        }
    }

    pub fn state(&self) -> &RunState {
        &self.run.state
    }

    /// Tells the reporters a session of `command` begins (the first event they see).
    pub fn announce(&mut self, command: &str) {
        let state = &self.run.state;
        let event = Event::RunStarted {
            run_id: state.run_id.clone(),
            plan: state.plan_name.clone(),
            base: state.base.to_string(),
            streams: state.streams.len(),
            jobs: state.jobs,
            command: command.to_string(),
        };
        self.run.emit(event);
    }

    /// Agents running at once from now on (`resume --jobs`); saved with the next change.
    pub fn set_jobs(&mut self, jobs: usize) {
        self.run.state.jobs = jobs.max(1);
    }

    /// Runs until every stream has reached an end, or nothing else can move while streams are
    /// parked on conflicts (the run halts), or a signal stops it.
    pub async fn run(mut self) -> Result<Session> {
        self.signals = Some(Signals::new()?);
        // A line stopped at a conflict stays stopped while a stream is parked (a `resume`, a
        // `skip` of another stream); `continue` resolved it before this.
        self.line_stopped = self.run.ctx.plan.on_conflict == OnConflict::Stop
            && !self.run.state.parked().is_empty();
        self.run.state.session_started_at = now_ms();
        self.run.state.phase = RunPhase::Running;
        self.run.save()?;

        self.drain_queue().await;
        loop {
            if let Err(e) = self.start_ready() {
                self.fail_session(e);
            }
            self.prepare_ahead();
            // A preparation under way is waited for: its workspace is written by then.
            if self.running() == 0 && self.pool.preparations() == 0 {
                break;
            }
            let Some(signals) = self.signals.as_mut() else {
                return Err(Error::Internal("the session listens to no signal".into()));
            };
            tokio::select! {
                Some(event) = self.events.recv() => {
                    if let Err(e) = self.handle(event).await {
                        self.fail_session(e);
                    }
                    // Every event already waiting too: units that reach their sync point
                    // together are integrated (and gated) together.
                    while let Ok(event) = self.events.try_recv() {
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

    /// Agents, checks and `notify` commands running right now.
    fn running(&self) -> usize {
        self.tasks_running + self.checks.running() + self.notifying
    }

    /// Awaits `work` (which must not need the engine) while handling the signals that stop a
    /// session, as the main loop does: for what the dispatcher itself awaits, like the gate,
    /// so Ctrl-C reaches its processes through `cancel` as it reaches agents.
    async fn listening<T>(&mut self, work: impl std::future::Future<Output = T>) -> T {
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

    fn fail_session(&mut self, error: Error) {
        if self.fatal.is_none() {
            self.fatal = Some(error);
        }
        if self.running() > 0 && self.stopping.is_none() {
            self.stopping = Some(Signal::SIGTERM);
            self.channels.stop(Cancel::Graceful(Signal::SIGTERM));
        }
    }

    fn on_signal(&mut self, sig: Signal) {
        if sig == Signal::SIGUSR1 {
            if let Err(e) = self.take_stop_requests() {
                self.fail_session(e);
            }
            return;
        }
        if self.stopping.is_some() {
            // Second signal: no more grace.
            self.channels.stop(Cancel::Kill);
            self.run
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
            self.channels.stop(Cancel::Graceful(to_agents));
            let gate = if self.gate.running() {
                " and the gate"
            } else {
                ""
            };
            let running = self.running();
            self.run.message(&format!(
                "{} received: stopping {running} running agent(s){gate} (again to kill them at once)",
                signal_name(sig),
            ));
        }
    }

    async fn end_session(mut self) -> Result<Session> {
        // Nothing runs any more: whatever an agent left that streams adopted and could not
        // tell whose it was dies now; no stray outlives the session.
        let _ = tokio::task::spawn_blocking(|| {
            super::process::reap_strays(super::process::Strays::All)
        })
        .await;
        let session = now_ms().saturating_sub(self.run.state.session_started_at);
        self.run.state.previous_wall_ms += session;
        self.run.state.session_started_at = now_ms();
        let parked = !self.run.state.parked().is_empty();
        let end = decide::session_end(self.fatal.is_some(), self.stopping, parked);
        let finish = match end {
            SessionEnd::Fatal => {
                // Leave the phase as Running: `resume` picks it up once the cause is fixed.
                let _ = self.run.save();
                return Err(self
                    .fatal
                    .take()
                    .unwrap_or_else(|| Error::Internal("no error to end on".into())));
            }
            SessionEnd::Interrupted(sig) => {
                let signal = signal_name(sig).to_string();
                self.run.state.phase = RunPhase::Interrupted {
                    signal: signal.clone(),
                };
                self.run.save()?;
                self.run.emit(Event::Interrupted { signal });
                Finish::Interrupted(sig)
            }
            SessionEnd::Halt => {
                self.run.state.phase = RunPhase::Halted;
                self.run.save()?;
                decide::settled(&self.run.state, true)
            }
            SessionEnd::Finished => self.finish_run()?,
        };
        let (state, reporter) = self.run.into_parts();
        Ok(Session {
            finish,
            state,
            reporter,
        })
    }

    /// Every stream reached an end: the run is finished, recorded in the history.
    fn finish_run(&mut self) -> Result<Finish> {
        let run = &mut self.run;
        // Streams that never started: why.
        for i in 0..run.state.streams.len() {
            if run.state.streams[i].state == StreamState::Pending {
                let why = decide::never_started(run.no_new_work).to_string();
                run.skip_stream(i, why, false);
            }
        }
        run.guard_integration_ref()?;
        run.state.phase = RunPhase::Finished;
        let _ = run.ctx.journal.append(Entry::Finished);
        run.save()?;
        // What each task took, for `streams plan` to predict from next time. The history helps
        // plan, it holds no work: failing to write it is logged, not fatal.
        let path = crate::state::history::path(run.ctx.repo.common_dir());
        let now = crate::state::now_ms();
        if let Err(err) = crate::state::history::record_run(&path, &run.state, &run.ctx.plan, now) {
            tracing::warn!("could not record the run in {}: {err}", path.display());
        }
        Ok(decide::settled(&run.state, false))
    }

    // -----------------------------------------------------------------------------------------
    // Scheduling

    fn brakes(&self) -> decide::Brakes {
        decide::Brakes {
            line_stopped: self.line_stopped,
            stopping: self.stopping.is_some(),
            no_new_work: self.run.no_new_work,
            fatal: self.fatal.is_some(),
        }
    }

    // -----------------------------------------------------------------------------------------
    // `streams stop`

    /// `streams stop` asked for streams to stop (see `RunDir::stop_requests`): a pending stream
    /// stops now; one whose task runs has its agent stopped, and stops when the task ends (its
    /// work kept, see [`Engine::stopped_task`]); one whose work is being checked or integrated
    /// stops before its next task.
    fn take_stop_requests(&mut self) -> Result<()> {
        let run_dir = self.run.ctx.run_dir.clone();
        for name in run_dir.stop_requests() {
            let _ = std::fs::remove_file(run_dir.stop_request_path(&name));
            let Some((s, record)) = self.run.state.stream_by_name(&name) else {
                continue;
            };
            // A parked stream runs nothing: `stop` refuses it (skip or continue it instead).
            if record.state.is_terminal() || matches!(record.state, StreamState::Parked(_)) {
                continue;
            }
            self.stop_requested.insert(s);
            let running = record
                .tasks
                .iter()
                .any(|t| matches!(t.state, TaskState::Running { .. }));
            if running {
                self.run.message(&format!(
                    "stopping {name} (`streams stop`): its agent is asked to stop; the rest of the run goes on"
                ));
                self.channels
                    .stop_stream(s, Cancel::Graceful(Signal::SIGTERM));
            }
        }
        self.stop_idle_streams()
    }

    /// Stops the streams asked to stop that nothing of theirs runs for (no task, no check, no
    /// work waiting for integration).
    fn stop_idle_streams(&mut self) -> Result<()> {
        let mut changed = false;
        for s in self.stop_requested.clone() {
            let record = &self.run.state.streams[s];
            if record.state.is_terminal() {
                self.stop_requested.remove(&s);
                continue;
            }
            let busy = record
                .tasks
                .iter()
                .any(|t| matches!(t.state, TaskState::Running { .. }))
                || self.run.state.queue.iter().any(|u| u.stream == s)
                || self.checks.running_for(StreamId::new(s));
            if !busy {
                self.stop_requested.remove(&s);
                self.run.stop_stream(s, None);
                changed = true;
            }
        }
        if changed {
            self.run.save()?;
        }
        Ok(())
    }

    /// A task of a stream asked to stop ended: committed work stays on the stream's branch
    /// (not integrated: `retry` goes on from it), an interrupted task's work is kept on its
    /// `wip` ref and the task goes back to pending; then the stream stops.
    fn stopped_task(
        &mut self,
        task: TaskId,
        outcome: TaskOutcome,
        start: Oid,
        started_at: u64,
    ) -> Result<()> {
        let (s, t) = (task.stream.index(), task.index);
        let run = &mut self.run;
        match outcome {
            TaskOutcome::Committed {
                end,
                stats,
                agent,
                attempts,
            } => {
                run.count_attempts(task, attempts, agent);
                run.task_committed(task, start, started_at, end, stats);
            }
            TaskOutcome::Failed {
                reason: FailReason::Internal { .. },
                agent,
                attempts,
            }
            | TaskOutcome::Interrupted { agent, attempts } => {
                run.count_attempts(task, attempts, agent);
                run.record_task_span(task, started_at, SpanOutcome::Interrupted);
                super::recover::start_over(run, s, t, &start)?;
            }
            TaskOutcome::Failed {
                reason,
                agent,
                attempts,
            } => {
                // It failed on its own before it could be stopped: a failure like any other.
                self.stop_requested.remove(&s);
                run.count_attempts(task, attempts, agent);
                run.task_failed(task, reason);
                return run.save();
            }
            TaskOutcome::Stopped {
                stop,
                agent,
                attempts,
            } => {
                // A limit stopped it first: the stream is stopped either way, its work kept.
                self.stop_requested.remove(&s);
                run.count_attempts(task, attempts, agent);
                run.task_stopped(task, stop);
                return run.save();
            }
        }
        self.stop_requested.remove(&s);
        let kept = run
            .ctx
            .repo
            .ref_target(&run.ctx.refs.wip(&run.state.streams[s].name, t))?
            .map(|_| run.ctx.refs.wip(&run.state.streams[s].name, t));
        run.stop_stream(s, kept);
        self.run.save()
    }

    /// Starts every task that may start now: streams already holding a slot go on with their
    /// next task first; then new streams take the free slots.
    fn start_ready(&mut self) -> Result<()> {
        self.stop_idle_streams()?;
        if !self.brakes().may_start_work() {
            return Ok(());
        }
        let (plan, sync) = (self.run.ctx.plan.clone(), self.run.sync());
        for s in 0..self.run.state.streams.len() {
            let state = &self.run.state;
            if !matches!(state.streams[s].state, StreamState::Active { .. }) {
                continue;
            }
            if let Some((task, start)) = decide::next_task(state, sync, s)
                && !decide::group_full(&plan, state, s, task)
            {
                self.start_task(StreamId::new(s).task(task), start, None)?;
            }
        }
        // Highest priority, then longest remaining path, passing over those whose first agent's
        // group is full (others use the free slots).
        while decide::slot_free(&self.run.state) {
            let (state, remaining) = (&self.run.state, &self.run.ctx.remaining);
            let Some(s) = decide::ready_streams(&plan, state, remaining)
                .into_iter()
                .find(|&s| !decide::group_full(&plan, state, s, 0))
            else {
                break;
            };
            if self.pool.preparing(StreamId::new(s)) {
                // It takes the slot once its workspace is ready (this loop runs again then).
                break;
            }
            self.start_stream(s)?;
        }
        Ok(())
    }

    /// Stream `s` takes a slot and starts its first task (in its workspace prepared ahead, if
    /// it was).
    fn start_stream(&mut self, s: usize) -> Result<()> {
        self.run.state.streams[s].state = StreamState::Active {
            started_at: now_ms(),
        };
        if self.run.state.streams[s].tasks.is_empty() {
            self.run.finish_stream(s);
            return Ok(());
        }
        let record = &self.run.state.streams[s];
        let event = Event::StreamStarted {
            stream: record.name.clone(),
            tasks: record.tasks.len(),
            branch: crate::layout::short_branch(&record.branch).to_string(),
            worktree: record.worktree.display().to_string(),
        };
        self.run.emit(event);
        if let Some((task, start)) = decide::next_task(&self.run.state, self.run.sync(), s) {
            let task = StreamId::new(s).task(task);
            let prepared = if task.index == 0 {
                self.pool.take(task.stream)
            } else {
                None
            };
            self.start_task(task, start, prepared)?;
        }
        Ok(())
    }

    /// Starts `task` from `start` (`prepared`: the commit its workspace was prepared at ahead):
    /// recorded as running, saved, then its executor spawned.
    fn start_task(&mut self, task: TaskId, start: Oid, prepared: Option<Oid>) -> Result<()> {
        let (s, t) = (task.stream.index(), task.index);
        if self.stop_requested.remove(&s) {
            // `streams stop` came while its work was checked or integrated: no next task.
            self.run.stop_stream(s, None);
            return self.run.save();
        }
        // The slot is held for the stream's life, so every task of it gets the same port.
        let slot = decide::slot_for(&self.run.state, &self.slots, s);
        self.slots[s] = Some(slot);
        // A shared budget the rest of which cannot cover the task's reservation: it does not
        // start, and its stream stops (its work so far kept; `retry` goes on).
        if let Some(stop) = self.budgets.reserve(&self.run, task) {
            self.run.task_stopped(task, stop);
            return self.run.save();
        }
        let job = match launch::task_job(&self.run, task, &start, slot, prepared)? {
            Launch::Ready(job) => job,
            Launch::CannotStart(reason) => {
                self.run.task_failed(task, reason);
                return Ok(());
            }
        };
        // Intent first: the task is recorded as running (with its start) before anything runs.
        self.run.task_mut(task).state = TaskState::Running {
            start,
            started_at: now_ms(),
            pgid: None,
        };
        self.run.save()?;
        failpoint::hit("task-recorded");
        let record = &self.run.state.streams[s];
        let event = Event::TaskStarted {
            stream: record.name.clone(),
            task: task.number(),
            tasks: record.tasks.len(),
            attempt: record.tasks[t].attempts + 1,
            summary: record.tasks[t].summary.clone(),
        };
        self.run.emit(event);
        self.tasks_running += 1;
        let cancel = self.channels.cancel_stream(s);
        tokio::spawn(task::run_task(
            self.shared.clone(),
            *job,
            self.channels.events().clone(),
            cancel,
        ));
        Ok(())
    }

    /// Starts preparing the next ready streams' workspaces, within the pool.
    fn prepare_ahead(&mut self) {
        if !self.brakes().may_start_work() {
            return;
        }
        let (run, pool) = (&self.run, &mut self.pool);
        let ready = decide::ready_streams(&run.ctx.plan, &run.state, &run.ctx.remaining);
        pool.refill(run, ready, self.channels.events());
    }

    // -----------------------------------------------------------------------------------------
    // Events from executors

    async fn handle(&mut self, event: ExecEvent) -> Result<()> {
        let run = &mut self.run;
        match event {
            ExecEvent::Note { stream, message } => {
                let record = &mut run.state.streams[stream.index()];
                record.notes.push(message.clone());
                let name = record.name.clone();
                run.emit(Event::Note {
                    stream: name,
                    message,
                });
            }
            ExecEvent::Spawned {
                task,
                attempt,
                pgid,
            } => {
                let record = run.task_mut(task);
                record.attempts = attempt;
                record.waiting = None;
                if let TaskState::Running { pgid: slot, .. } = &mut record.state {
                    *slot = Some(pgid);
                }
                run.save()?;
            }
            ExecEvent::Retrying {
                task,
                attempt,
                reason,
                why,
                delay,
            } => {
                run.task_mut(task).retried_for.push(why);
                run.save()?;
                let name = run.state.streams[task.stream.index()].name.clone();
                run.emit(Event::TaskRetrying {
                    stream: name,
                    task: task.number(),
                    attempt,
                    reason: reason.to_string(),
                    delay_ms: delay.as_millis() as u64,
                });
            }
            ExecEvent::Usage { task, usage } => {
                let name = run.state.streams[task.stream.index()].name.clone();
                if let Some(u) = &usage.usage {
                    run.emit(Event::TaskUsage {
                        stream: name,
                        task: task.number(),
                        attempt: usage.attempt,
                        input_tokens: u.input,
                        output_tokens: u.output,
                        cache_read_tokens: u.cache_read,
                        cache_write_tokens: u.cache_write,
                        cost_usd: u.cost_usd,
                    });
                }
                run.task_mut(task).usage.push(usage);
                self.budgets.attempt_recorded(task);
                run.save()?;
            }
            ExecEvent::Spending { task, usage } => {
                for (s, _) in self.budgets.spending(&self.run, task, usage) {
                    self.channels.stop_stream(s, Cancel::Budget);
                }
            }
            ExecEvent::Waiting { task, wait } => {
                let name = run.state.streams[task.stream.index()].name.clone();
                run.emit(Event::TaskWaiting {
                    stream: name,
                    task: task.number(),
                    until: wait.until,
                    reset_known: wait.reset_known,
                    message: wait.message.clone(),
                });
                run.task_mut(task).waiting = Some(wait);
                run.save()?;
            }
            ExecEvent::SetupStarted { stream } => {
                run.state.streams[stream.index()].setting_up = true;
                run.save()?;
            }
            ExecEvent::SetupFinished {
                stream,
                started_at,
                failure,
                at,
            } => {
                let record = &mut run.state.streams[stream.index()];
                record.setting_up = false;
                if at.is_some() {
                    record.setup_at = at;
                }
                let outcome = match failure {
                    None => SpanOutcome::Ok,
                    Some(_) if self.stopping.is_some() => SpanOutcome::Interrupted,
                    Some(reason) => SpanOutcome::Failed { reason },
                };
                let log = run.ctx.run_dir.setup_log_path(&record.name);
                run.record_span(stream.index(), Step::Setup, started_at, outcome, Some(log));
                run.save()?;
            }
            ExecEvent::Finished { task, outcome } => {
                self.tasks_running -= 1;
                self.run.guard_integration_ref()?;
                self.task_finished(task, outcome)?;
            }
            ExecEvent::CheckFinished(end) => {
                let may_start_work = self.brakes().may_start_work();
                if let Some(fix) = self.checks.finished(&mut self.run, end, may_start_work)? {
                    self.start_task(fix.task, fix.from, None)?;
                }
            }
            ExecEvent::Prepared { stream, at, result } => {
                let events = self.channels.events();
                self.pool.prepared(&self.run, stream, at, result, events);
            }
            ExecEvent::Notified(end) => {
                self.notifying -= 1;
                notify::ended(&mut self.run, end);
                self.run.save()?;
            }
        }
        Ok(())
    }

    /// `task`'s executor ended: what its outcome means for the run, recorded and saved.
    fn task_finished(&mut self, task: TaskId, outcome: TaskOutcome) -> Result<()> {
        let (start, started_at) = match &self.run.task_mut(task).state {
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
        let outcome = self.budgets.finished(task, outcome);
        if self.stop_requested.contains(&task.stream.index()) && self.stopping.is_none() {
            return self.stopped_task(task, outcome, start, started_at);
        }
        let run = &mut self.run;
        match outcome {
            TaskOutcome::Committed {
                end,
                stats,
                agent,
                attempts,
            } => {
                run.count_attempts(task, attempts, agent);
                let stats = run.task_committed(task, start, started_at, end, stats);
                self.after_commit(task);
                self.run.save()?;
                let record = &self.run.state.streams[task.stream.index()];
                let event = Event::TaskCommitted {
                    stream: record.name.clone(),
                    task: task.number(),
                    tasks: record.tasks.len(),
                    commits: stats.commits,
                    files: stats.files,
                    insertions: stats.insertions,
                    deletions: stats.deletions,
                    duration_ms: agent.as_millis() as u64,
                };
                self.run.emit(event);
            }
            // A failure of streams' own steps while stopping is the stop, not the task: it stays
            // `Running`, and `resume` runs it again.
            TaskOutcome::Failed {
                reason: FailReason::Internal { .. },
                agent,
                attempts,
            } if self.stopping.is_some() => {
                run.count_attempts(task, attempts, agent);
                run.record_task_span(task, started_at, SpanOutcome::Interrupted);
                run.save()?;
            }
            TaskOutcome::Failed {
                reason,
                agent,
                attempts,
            } => {
                run.count_attempts(task, attempts, agent);
                run.task_failed(task, reason);
                run.save()?;
            }
            TaskOutcome::Stopped {
                stop,
                agent,
                attempts,
            } => {
                run.count_attempts(task, attempts, agent);
                run.task_stopped(task, stop);
                run.save()?;
            }
            TaskOutcome::Interrupted { agent, attempts } => {
                // Stays `Running`: `resume` keeps its work and runs it again from its start.
                run.count_attempts(task, attempts, agent);
                run.task_mut(task).waiting = None;
                run.record_task_span(task, started_at, SpanOutcome::Interrupted);
                run.save()?;
            }
        }
        Ok(())
    }

    /// A task's work is committed: queue it for integration (checked first, if the stream has
    /// a check) if this is a sync point.
    fn after_commit(&mut self, task: TaskId) {
        let (state, sync) = (&self.run.state, self.run.sync());
        if let Some(unit) = decide::sync_unit(state, sync, task.stream.index(), task.index)
            && !self.run.state.queue.contains(&unit)
        {
            self.checks.unit_ready(&mut self.run, unit, &self.channels);
        }
    }

    // -----------------------------------------------------------------------------------------
    // Sync points

    /// Integrates queued units in order until the queue is empty (a unit that conflicts parks
    /// its stream and leaves the queue), or a conflict stops the line.
    async fn drain_queue(&mut self) {
        while !self.line_stopped && self.fatal.is_none() && !self.run.state.queue.is_empty() {
            let done = match Gate::command(&self.run) {
                // Stopping: what waits is gated by `resume`, not now (a gate can take minutes).
                Some(_) if self.stopping.is_some() => return,
                Some(command) => self.gate_queue(command).await,
                None => {
                    let unit = self.run.state.queue[0].clone();
                    self.integrate(unit).await
                }
            };
            if let Err(e) = done {
                self.fail_session(e);
            }
        }
    }

    /// Integrates `unit` on its own. A conflict parks its stream, and every other stream goes
    /// on; with `on_conflict = "stop"` the line stops there, and the run halts once running
    /// tasks end.
    async fn integrate(&mut self, unit: SyncUnit) -> Result<()> {
        let Some(conflict) = super::integration::integrate_unit(&mut self.run, &unit).await? else {
            return Ok(());
        };
        let stop = self.run.ctx.plan.on_conflict == OnConflict::Stop;
        let s = unit.stream;
        let files = conflict.merge.conflicted_paths();
        let cancel = self.channels.cancel();
        if !park::park(&mut self.run, unit, conflict, stop, cancel).await? {
            // The resolver's resolution was accepted and integrated: nothing is parked.
            return Ok(());
        }
        let running = self.running();
        if stop {
            self.line_stopped = true;
            if running > 0 {
                let name = &self.run.state.streams[s].name;
                let message = format!(
                    "conflict integrating {name} in {}: starting nothing new; halting once {running} running task(s) finish",
                    crate::report::quote_paths(&files),
                );
                self.run.message(&message);
            }
        }
        if notify::start(&self.run, s, &self.channels) {
            self.notifying += 1;
        }
        Ok(())
    }

    /// Gates the first batch of the queue and integrates what passes (see [`gate`]).
    async fn gate_queue(&mut self, command: Vec<String>) -> Result<()> {
        self.gather_arrivals().await?;
        if self.line_stopped || self.fatal.is_some() || self.run.state.queue.is_empty() {
            return Ok(());
        }
        if self.gate.refuse_queue(&mut self.run)? {
            return Ok(());
        }
        self.run.guard_integration_ref()?;
        let Some(mut batch) = gate::Batch::build(&self.run, command).await? else {
            // The first unit conflicts with the tip: integrating it parks it as without a gate.
            let unit = self.run.state.queue[0].clone();
            return self.integrate(unit).await;
        };
        loop {
            match batch.next() {
                next @ (gate::Next::Gate(_) | gate::Next::Again(_)) => {
                    let probe = batch.probe(&self.run, &next)?;
                    let Some(passed) = self.gate_verdict(&probe).await? else {
                        // Stopped: the verdicts so far are saved; `resume` goes on from them.
                        return Ok(());
                    };
                    batch.record(&self.run, &next, passed)?;
                }
                gate::Next::Flaky(k) => {
                    batch.flaky(&mut self.run, k, false)?;
                    let streams = batch.names()[..k].to_vec();
                    self.gate
                        .flaky_stop(&mut self.run, batch.command(), &streams);
                    // The queued streams fail on the next pass (see `Gate::refuse_queue`),
                    // with the reason: the gate, not one of them.
                    return self.run.save();
                }
                gate::Next::Land => return batch.land(&mut self.run).await,
                gate::Next::Blame(culprit) => return batch.blame(&mut self.run, culprit).await,
                gate::Next::TipRed => {
                    self.gate
                        .red_on_tip(&mut self.run, batch.command(), batch.tip());
                    // The queued streams fail on the next pass (see `Gate::refuse_queue`).
                    return self.run.save();
                }
            }
        }
    }

    /// The gate's verdict on `probe`: the one this run already has on the same tree, or a new
    /// gate run's (saved before it is acted on), awaited while listening for signals. `None`:
    /// a signal stopped it (or the session was already stopping); nothing is recorded, so
    /// `resume` runs it again.
    async fn gate_verdict(&mut self, probe: &gate::Probe) -> Result<Option<bool>> {
        if let Some(known) = probe.known(&self.run.state) {
            return Ok(Some(known));
        }
        if self.stopping.is_some() {
            return Ok(None);
        }
        let cancel = self.channels.cancel();
        let running = self.gate.begin(&self.run, probe, cancel).await?;
        let ended = self.listening(running.run()).await;
        self.gate.end(&mut self.run, probe, ended)
    }

    /// Handles every event already sent, then waits a moment for more while agents are still
    /// running, so units that reach their sync point together are gated together.
    async fn gather_arrivals(&mut self) -> Result<()> {
        let started = tokio::time::Instant::now();
        loop {
            while let Ok(event) = self.events.try_recv() {
                Box::pin(self.handle(event)).await?;
            }
            if self.running() == 0 || started.elapsed() >= gate::GATHER_MAX {
                return Ok(());
            }
            let quiet = tokio::time::sleep(gate::GATHER_QUIET);
            tokio::select! {
                Some(event) = self.events.recv() => Box::pin(self.handle(event)).await?,
                _ = quiet => return Ok(()),
            }
        }
    }

    // -----------------------------------------------------------------------------------------
    // Picking a run up again

    /// Reconciles the state with the refs and the journal after the coordinator died, so that
    /// `run` can go on: stops its orphaned agents, finishes or forgets the integration that was
    /// in flight, and sets every interrupted task back to its start (its work kept on a ref).
    /// Recovery trusts refs over the state file (see [`recover`]).
    pub async fn recover(&mut self) -> Result<()> {
        let recovery = Recovery::begin(&self.run);
        recovery.stop_orphans(&mut self.run).await;
        Recovery::clear_stale_locks(&mut self.run)?;
        recovery.reconcile_integration(&mut self.run)?;
        for task in recovery.reconcile_tasks(&mut self.run)? {
            self.after_commit(task);
        }
        // Step 5: work that reached its sync point but is not queued (its check was running).
        for task in recover::committed_tasks(&self.run) {
            self.after_commit(task);
        }
        self.run.state.phase = RunPhase::Running;
        self.run.save()
    }

    /// `continue STREAM`: records the person's resolution of parked stream `s` on the
    /// integration as it is by then (see [`park::resolve`]).
    pub fn resolve(&mut self, s: usize, force: bool) -> Result<Resolution> {
        park::resolve(&mut self.run, s, force)
    }

    /// `skip STREAM` while the run is halted: leaves the stream's unintegrated work out of the
    /// run (a parked one's resolution worktree goes, its work kept).
    pub fn skip(&mut self, stream: &str) -> Result<()> {
        park::skip(&mut self.run, stream)
    }
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
