//! The gate at sync points: the plan's `gate` runs on the candidate integration result before the
//! integration ref moves; a red batch is bisected to the stream whose addition turns it red.
//!
//! Units waiting in the queue are gated together (up to `gate_batch`): the candidate is the
//! integration tip with each unit integrated on it in queue order, built as objects only
//! ([`crate::coordinator::build_unit`]). Green: the ref moves to the candidate in one compare-and-swap.
//! Red: the batch is gated once more (`gate_retries` times), since a gate can be flaky; a verdict
//! that flips is flaky and lands on its last (green) verdict, blaming no stream. Red every time:
//! prefixes are gated as [`crate::coordinator::bisect_next`] says; the largest green prefix is checked
//! once more, then lands, the culprit's stream fails, and the rest stays queued to be gated again
//! on the new tip. A green prefix that turns red when checked again is flaky too: no stream is
//! blamed, and nothing more is integrated on a gate that cannot be trusted.
//! A [`Batch`] is that search; the [`Gate`] runs the gate on one candidate ([`Probe`]) and
//! records its verdict; the dispatcher drives both (it awaits each run, listening for signals).
//!
//! Crash safety: every gate run is saved in the state (`gates`) before its verdict is acted on,
//! keyed by the candidate's tree. A resumed run rebuilds the same candidates (same trees), finds
//! the verdicts it already has and gates only what it had not, so it reaches the same
//! integration tree and the same culprit as an uninterrupted run.

mod batch;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use tokio::sync::watch;

pub(super) use batch::{Batch, Next};

use super::include::IncludeJob;
use super::process::{self, AgentCommand, AgentExit, Cancel, Limits};
use super::run::Run;
use super::setup::{self, SetupJob, SetupResult};
use crate::error::{Error, Result};
use crate::failpoint;
use crate::git;
use crate::ids::Oid;
use crate::layout;
use crate::report::Event;
use crate::state::{Entry, GateRun, RunState, SpanOutcome, Step, now_ms};

/// After the first unit reaches its sync point, how long the gate waits for more to arrive
/// (each arrival restarts the wait, up to [`GATHER_MAX`]). Streams that finish together
/// then share one gate run instead of queueing behind one another; against a gate that builds
/// and tests, this is noise.
pub(super) const GATHER_QUIET: Duration = Duration::from_millis(150);
pub(super) const GATHER_MAX: Duration = Duration::from_secs(1);

/// The gate of this session: what its worktree is set up for, and whether it still may run.
#[derive(Default)]
pub(super) struct Gate {
    /// The tree the gate worktree was last set up at (`setup`, `include`), in this session.
    set_up_at: Option<Oid>,
    /// The gate failed on the integration tip alone: nothing more is integrated (the message).
    stopped: Option<String>,
    /// A gate run (or its setup) is under way, awaited by the dispatcher.
    running: bool,
}

/// One candidate to gate: the integration tip plus some streams, as a commit and its tree.
pub(super) struct Probe {
    command: Vec<String>,
    tip: Oid,
    commit: Oid,
    tree: Oid,
    /// The streams added to the tip, in order (none: the tip alone).
    streams: Vec<String>,
    /// A run to check a verdict again (the `nth` such run on this tree): never the verdict of
    /// the first run on the same tree.
    again: Option<usize>,
}

impl Probe {
    pub fn new(
        run: &Run,
        command: &[String],
        tip: &Oid,
        commit: &Oid,
        streams: &[String],
    ) -> Result<Probe> {
        Ok(Probe {
            command: command.to_vec(),
            tip: tip.clone(),
            commit: commit.clone(),
            tree: git::commit::tree_of(&run.ctx.repo, commit)?,
            streams: streams.to_vec(),
            again: None,
        })
    }

    /// This probe as the `nth` run that checks a verdict on its tree again.
    pub fn again(self, nth: usize) -> Probe {
        Probe {
            again: Some(nth),
            ..self
        }
    }

    /// The verdict this run already has for this probe: the last first verdict on the same
    /// tree, or for a run that checks one again, the `nth` such run on it (so a resumed run
    /// reads the same verdicts in the same order, and runs only what it did not have).
    pub fn known(&self, state: &RunState) -> Option<bool> {
        let same = state
            .gates
            .iter()
            .filter(|g| g.tree == self.tree && g.command == self.command);
        match self.again {
            None => same.rev().find(|g| !g.again).map(|g| g.passed),
            Some(nth) => same.filter(|g| g.again).nth(nth).map(|g| g.passed),
        }
    }
}

/// How a gate run ended.
pub(super) struct Ended {
    exit: AgentExit,
    took: Duration,
    log: PathBuf,
    /// Its setup failed: `exit` says why, in the setup's words.
    setup_failed: bool,
    /// The tree the worktree is set up at now, if its setup ran (or was not needed).
    set_up_at: Option<Oid>,
}

impl Gate {
    /// The gate this run uses, unless `--no-gate` turned it off.
    pub fn command(run: &Run) -> Option<Vec<String>> {
        if run.state.no_gate {
            return None;
        }
        run.ctx.plan.gate.clone()
    }

    /// A gate run (or its setup) is under way.
    pub fn running(&self) -> bool {
        self.running
    }

    /// Once the gate failed on the tip alone, nothing can be integrated on that tip: every
    /// waiting stream fails. Returns whether it was so.
    pub fn refuse_queue(&self, run: &mut Run) -> Result<bool> {
        let Some(message) = &self.stopped else {
            return Ok(false);
        };
        for unit in std::mem::take(&mut run.state.queue) {
            if !run.state.streams[unit.stream].state.is_terminal() {
                run.fail_stream(unit.stream, format!("not integrated: {message}"));
            }
        }
        run.save()?;
        Ok(true)
    }

    /// Lays the gate worktree out at the probe's commit and journals the run as started; the
    /// run itself is [`Running::run`], awaited by the dispatcher, then [`Self::end`].
    pub async fn begin(
        &mut self,
        run: &Run,
        probe: &Probe,
        cancel: watch::Receiver<Cancel>,
    ) -> Result<Running> {
        let (ctx, state) = (&run.ctx, &run.state);
        let n = state.gates.len() + 1;
        let log = ctx.run_dir.gate_log_path(n);
        let worktrees = super::dispatcher::worktrees_dir(&ctx.repo, &ctx.plan);
        let worktree = layout::gate_worktree(&worktrees);
        {
            let (repo, path, commit) = (ctx.repo.clone(), worktree.clone(), probe.commit.clone());
            let reason = format!("streams gate of run {}", state.run_id);
            tokio::task::spawn_blocking(move || {
                git::worktree::checkout_detached(&repo, &path, &commit, &reason)
            })
            .await
            .map_err(|e| Error::Internal(format!("preparing the gate worktree panicked: {e}")))?
            .map_err(Error::Git)?;
        }
        let _ = ctx.journal.append(Entry::GateStarted {
            commit: probe.commit.to_string(),
            streams: probe.streams.clone(),
        });
        failpoint::hit("before-gate");
        let mut env = ctx.identity_env.clone();
        env.extend(super::process::run_mark(
            &state.run_id,
            ctx.repo.common_dir(),
        ));
        env.extend(
            [
                ("STREAMS_PLAN", ctx.plan.name.clone()),
                // Marks its processes as the gate's for the stop that reaches stragglers.
                ("STREAMS_STREAM", layout::GATE_WORKTREE.to_string()),
                ("STREAMS_GATE_STREAMS", probe.streams.join("\n")),
                ("STREAMS_WORKTREE", worktree.display().to_string()),
                ("STREAMS_BASE", state.base.to_string()),
                ("STREAMS_INTEGRATION", probe.tip.to_string()),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v)),
        );
        let on = if probe.streams.is_empty() {
            "the integration tip alone".to_string()
        } else {
            format!("+ {}", probe.streams.join(", "))
        };
        let title = format!(
            "gate run {n} on {} ({on})",
            crate::text::short(&probe.commit)
        );
        let header = crate::agent::log::header(&title, &probe.command);
        let cmd = AgentCommand::new(probe.command.clone(), worktree, env, log.clone(), header);
        let plan = &ctx.plan;
        let limits = Limits::wall_clock(plan.check_timeout, plan.grace);
        let setup = (self.set_up_at.as_ref() != Some(&probe.tree)).then(|| {
            let include = IncludeJob::new(&ctx.repo, plan, log.clone());
            let timeout = plan
                .setup_timeout
                .unwrap_or(crate::plan::DEFAULT_SETUP_TIMEOUT);
            let setup = plan
                .setup
                .clone()
                .map(|argv| SetupJob::new(argv, cmd.env.clone(), log.clone(), timeout, plan.grace));
            (include, setup)
        });
        self.running = true;
        Ok(Running {
            log,
            cmd,
            limits,
            setup,
            commit: probe.commit.clone(),
            tree: probe.tree.clone(),
            cancel,
        })
    }

    /// The run ended: its verdict is recorded and saved before anything acts on it. `None`: a
    /// signal stopped it; nothing is recorded, so `resume` runs it again.
    pub fn end(&mut self, run: &mut Run, probe: &Probe, ended: Ended) -> Result<Option<bool>> {
        self.running = false;
        if let Some(tree) = ended.set_up_at {
            self.set_up_at = Some(tree);
        }
        let journal = run.ctx.journal.clone();
        if ended.exit == AgentExit::Cancelled {
            let _ = journal.append(Entry::GateStopped {
                commit: probe.commit.to_string(),
            });
            return Ok(None);
        }
        let (passed, result) = match &ended.exit {
            // Not the gate's own failure: the setup's, in its words.
            AgentExit::SpawnFailed(why) if ended.setup_failed => (false, why.clone()),
            exit => exit.verdict(),
        };
        let (took, log) = (ended.took, ended.log);
        run.state.gates.push(GateRun {
            command: probe.command.clone(),
            tip: probe.tip.clone(),
            commit: probe.commit.clone(),
            tree: probe.tree.clone(),
            streams: probe.streams.clone(),
            passed,
            result: result.clone(),
            ms: took.as_millis() as u64,
            log: log.clone(),
            at: now_ms(),
            again: probe.again.is_some(),
        });
        // On each added stream's timeline (a gate of the tip alone is on none).
        let began = now_ms().saturating_sub(took.as_millis() as u64);
        for name in &probe.streams {
            if let Some((s, _)) = run.state.stream_by_name(name) {
                let outcome = if passed {
                    SpanOutcome::Ok
                } else {
                    SpanOutcome::Failed {
                        reason: result.clone(),
                    }
                };
                run.record_span(s, Step::Gate, began, outcome, Some(log.clone()));
            }
        }
        let _ = journal.append(Entry::GateDone {
            commit: probe.commit.to_string(),
            passed,
        });
        run.save()?;
        failpoint::hit("after-gate-saved");
        run.emit(Event::GateRan {
            streams: probe.streams.clone(),
            commit: probe.commit.to_string(),
            passed,
            result,
            duration_ms: took.as_millis() as u64,
            log: log.display().to_string(),
            again: probe.again.is_some(),
        });
        Ok(Some(passed))
    }

    /// A green subset of a batch turned red when checked again: the gate is flaky on it, no
    /// stream can be blamed, and nothing more is integrated in this run on a gate that cannot
    /// be trusted.
    pub fn flaky_stop(&mut self, run: &mut Run, command: &[String], streams: &[String]) {
        let message = format!(
            "gate `{}` is flaky: it passed on + {} and failed on the same files when checked again",
            command.join(" "),
            streams.join(", ")
        );
        run.message(&format!(
            "error: {message}: no stream is blamed; nothing more is integrated, starting nothing new"
        ));
        self.stopped = Some(message);
        run.no_new_work = true;
    }

    /// The gate fails on the integration tip with no stream added: no stream can be blamed, so
    /// nothing more is integrated in this run.
    pub fn red_on_tip(&mut self, run: &mut Run, command: &[String], tip: &Oid) {
        let log = run
            .state
            .gates
            .iter()
            .rev()
            .find(|g| g.streams.is_empty())
            .map(|g| format!(" (log {})", g.log.display()))
            .unwrap_or_default();
        let message = format!(
            "gate `{}` fails on {} before any stream is added{log}",
            crate::text::shell_words(command),
            crate::text::short(tip)
        );
        run.message(&format!(
            "error: {message}: no stream can be blamed; starting nothing new"
        ));
        self.stopped = Some(message);
        run.no_new_work = true;
    }
}

/// A gate run laid out and ready: it owns what it needs, so the dispatcher can await it while it
/// handles signals (a stop reaches its processes through `cancel`, as it reaches agents).
pub(super) struct Running {
    log: PathBuf,
    cmd: AgentCommand,
    limits: Limits,
    /// The workspace's environment to make first, unless the worktree is set up at this tree.
    setup: Option<(IncludeJob, Option<SetupJob>)>,
    commit: Oid,
    tree: Oid,
    cancel: watch::Receiver<Cancel>,
}

impl Running {
    /// Sets the worktree up (see [`Self::set_up`]), then runs the gate.
    pub async fn run(self) -> Ended {
        let started = Instant::now();
        if let Some((include, setup)) = &self.setup
            && let Err(exit) = self.set_up(include, setup.as_ref()).await
        {
            return Ended {
                setup_failed: exit != AgentExit::Cancelled,
                exit,
                took: started.elapsed(),
                log: self.log,
                set_up_at: None,
            };
        }
        let (exit, took) = process::run_agent(self.cmd, self.limits, self.cancel, |_| {}).await;
        Ended {
            exit,
            took,
            log: self.log,
            setup_failed: false,
            set_up_at: Some(self.tree),
        }
    }

    /// The plan's workspace environment for the gate worktree, now at the candidate: the ignored
    /// files `include` and `.worktreeinclude` select, then `setup`, as for a stream's workspace
    /// reset to a new start (every gate run is on a new candidate; a tree already set up, as
    /// when a stopped gate runs again, is not set up twice). Both write to the gate run's log.
    /// An error is how the gate run ends: a setup that fails on a candidate makes it red, so a
    /// stream that breaks the setup is found like one that breaks the gate.
    async fn set_up(
        &self,
        include: &IncludeJob,
        setup: Option<&SetupJob>,
    ) -> std::result::Result<(), AgentExit> {
        let failed = AgentExit::SpawnFailed;
        let (include, worktree) = (include.clone(), self.cmd.cwd.clone());
        let copied = tokio::task::spawn_blocking(move || include.run(&worktree))
            .await
            .map_err(|e| failed(format!("copying the included files panicked: {e}")))?;
        copied.map_err(|why| failed(format!("setup: {why}")))?;
        let Some(job) = setup else {
            return Ok(());
        };
        let cancel = self.cancel.clone();
        let dir = self.cmd.cwd.clone();
        let changed = move || crate::git::worktree::uncommitted(&dir);
        match setup::run(&self.cmd.cwd, &self.commit, job, cancel, |_| {}, changed).await {
            SetupResult::Done => Ok(()),
            SetupResult::Failed(why) => Err(failed(why)),
            SetupResult::Interrupted => Err(AgentExit::Cancelled),
        }
    }
}
