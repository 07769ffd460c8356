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
//!
//! This module holds the engine and its session (starting, the main loop, signals, how a
//! session ends), scheduling (which tasks start now) and the entry points for picking a run up
//! again; the other `impl Engine` blocks are split by what they react to: [`handle`] (events
//! from executors, a task's outcome), [`stop`] (`streams stop`), [`sync`] (integrating the
//! queue at sync points, through the gate).

mod handle;
mod stop;
mod sync;

use std::path::PathBuf;
use std::sync::Arc;

use nix::sys::signal::Signal;
use tokio::sync::mpsc;

use super::ahead::AheadPool;
use super::check::Checks;
use super::decide::{self, SessionEnd};
use super::events::{Channels, ExecEvent};
use super::gate::Gate;
use super::launch::{self, Launch};
use super::park::{self, Resolution};
use super::process::Cancel;
use super::recover::{self, Recovery};
use super::run::{Context, Run};
use super::signals::{Signals, signal_name};
use super::task::{self, Shared};
use crate::error::{Error, Result};
use crate::failpoint;
use crate::git::{self, Repo};
use crate::ids::{Oid, StreamId, TaskId};
use crate::layout::{self, RefNames};
use crate::ownership::Ownership;
use crate::plan::{OnConflict, Plan};
use crate::report::{Event, Reporter};
use crate::state::{Entry, Journal, RunDir, RunPhase, RunState, StreamState, TaskState, now_ms};

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
        git::mark_run(&super::process::run_mark(
            &input.state.run_id,
            input.repo.common_dir(),
        ));
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
            apart: super::run::kept_apart(&input.repo, &plan),
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
        super::run::tell_kept_apart(&mut self.run);
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
            let Some(s) = decide::ready_streams(&plan, state, remaining, &self.run.ctx.apart.pairs)
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
        let ready = decide::ready_streams(
            &run.ctx.plan,
            &run.state,
            &run.ctx.remaining,
            &run.ctx.apart.pairs,
        );
        pool.refill(run, ready, self.channels.events());
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
        self.clear_stale_ref_locks()?;
        park::resolve(&mut self.run, s, force)
    }

    /// Lock files a killed coordinator left on the plan's refs: `continue` and `skip` move
    /// them before any recovery runs (no coordinator is at work: this one holds the plan).
    fn clear_stale_ref_locks(&mut self) -> Result<()> {
        let notes = super::stale_locks::clear_stale_ref_locks(&self.run.ctx.repo, &self.run.state)?;
        for note in notes {
            self.run.message(&note);
        }
        Ok(())
    }

    /// `skip STREAM` while the run is halted: leaves the stream's unintegrated work out of the
    /// run (a parked one's resolution worktree goes, its work kept).
    pub fn skip(&mut self, stream: &str) -> Result<()> {
        self.clear_stale_ref_locks()?;
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
