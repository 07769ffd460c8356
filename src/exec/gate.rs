//! The gate at sync points: the plan's `gate` runs on the candidate integration result before the
//! integration ref moves; a red batch is bisected to the stream whose addition turns it red.
//!
//! Units waiting in the queue are gated together (up to `gate_batch`): the candidate is the
//! integration tip with each unit integrated on it in queue order, built as objects only
//! ([`coordinator::build_unit`]). Green: the ref moves to the candidate in one compare-and-swap.
//! Red: prefixes are gated as [`coordinator::bisect_next`] says; the largest green prefix lands,
//! the culprit's stream fails, and the rest stays queued to be gated again on the new tip.
//!
//! Crash safety: every gate run is saved in the state (`gates`) before its verdict is acted on,
//! keyed by the candidate's tree. A resumed run rebuilds the same candidates (same trees), finds
//! the verdicts it already has and gates only what it had not, so it reaches the same
//! integration tree and the same culprit as an uninterrupted run.

use std::collections::BTreeMap;
use std::time::Duration;

use super::dispatcher::{Engine, worktrees_dir};
use super::process::{self, AgentCommand, AgentExit, Limits};
use crate::coordinator::{self, BisectStep, IntegrationMove, TaskRange, UnitInput};
use crate::error::{Error, Result};
use crate::failpoint;
use crate::git;
use crate::ids::Oid;
use crate::layout;
use crate::report::Event;
use crate::state::{Bisection, Entry, GateRun, SpanOutcome, Step, SyncUnit, now_ms};

/// After the first unit reaches its sync point, how long the gate waits for more to arrive
/// (each arrival restarts the wait, up to [`GATE_GATHER_MAX`]). Streams that finish together
/// then share one gate run instead of queueing behind one another; against a gate that builds
/// and tests, this is noise.
const GATE_GATHER_QUIET: Duration = Duration::from_millis(150);
const GATE_GATHER_MAX: Duration = Duration::from_secs(1);

/// One unit of a batch, with what building it needs.
struct Member {
    unit: SyncUnit,
    stream: String,
    tasks: Vec<TaskRange>,
}

impl Engine {
    /// The gate this run uses, unless `--no-gate` turned it off.
    pub(super) fn gate_command(&self) -> Option<Vec<String>> {
        if self.state.no_gate {
            return None;
        }
        self.plan.gate.clone()
    }

    /// Gates the first batch of the queue and integrates what passes.
    pub(super) async fn gate_queue(&mut self, gate: Vec<String>) -> Result<()> {
        self.gather_arrivals().await?;
        if self.halting.is_some() || self.fatal.is_some() || self.state.queue.is_empty() {
            return Ok(());
        }
        if let Some(message) = self.gate_stopped.clone() {
            // Nothing can be integrated on a tip the gate fails: every waiting stream fails.
            for unit in std::mem::take(&mut self.state.queue) {
                if !self.state.streams[unit.stream].state.is_terminal() {
                    self.fail_stream(unit.stream, format!("not integrated: {message}"));
                }
            }
            return self.save();
        }
        self.guard_integration_ref()?;
        let limit = self.plan.gate_batch.unwrap_or(usize::MAX).max(1);
        let members: Vec<Member> = self
            .state
            .queue
            .iter()
            .take(limit)
            .map(|unit| Member {
                unit: unit.clone(),
                stream: self.state.streams[unit.stream].name.clone(),
                tasks: self.unit_tasks(unit),
            })
            .collect();
        let tip = self.state.integration_tip.clone();
        let built = self.build_candidates(&tip, &members).await?;
        if built.is_empty() {
            // The first unit conflicts with the tip: integrating it halts as without a gate.
            let unit = members[0].unit.clone();
            return self.integrate_unit(unit).await;
        }
        let n = built.len();
        let names: Vec<String> = members[..n].iter().map(|m| m.stream.clone()).collect();
        let tips: Vec<Oid> = built.iter().map(|(tip, _)| tip.clone()).collect();
        match self.gate_passes(&gate, &tip, &tips[n - 1], &names).await? {
            Some(true) => return self.land(&members[..n], &built, &tip).await,
            Some(false) => {}
            // Stopped by a signal: the batch stays queued and `resume` gates it again.
            None => return Ok(()),
        }

        // Red: find the stream that turns it red.
        let tip_green = self.tree_passed(&gate, &tip)?;
        let mut results = BTreeMap::from([(n, false)]);
        let mut steps = vec![(names.clone(), false)];
        let culprit = loop {
            match coordinator::bisect_next(n, tip_green, &results) {
                BisectStep::Probe(k) => {
                    let commit = if k == 0 {
                        tip.clone()
                    } else {
                        tips[k - 1].clone()
                    };
                    let Some(passed) = self.gate_passes(&gate, &tip, &commit, &names[..k]).await?
                    else {
                        // Stopped: the results so far are saved; `resume` goes on from them.
                        return Ok(());
                    };
                    failpoint::hit("after-bisect-step");
                    results.insert(k, passed);
                    steps.push((names[..k].to_vec(), passed));
                }
                BisectStep::Culprit { index } => break index,
                BisectStep::TipRed => {
                    self.gate_red_on_tip(&gate, &tip);
                    // The queued streams fail on the next pass (see the start of this function).
                    return self.save();
                }
            }
        };
        let green = if culprit == 0 {
            tip.clone()
        } else {
            tips[culprit - 1].clone()
        };
        // The red run that has the culprit on top of the green prefix: its log says why.
        let log = self
            .state
            .gates
            .iter()
            .rev()
            .find(|g| g.commit == tips[culprit] || g.streams == names[..=culprit])
            .map(|g| g.log.clone());
        self.state.bisections.push(Bisection {
            culprit: names[culprit].clone(),
            batch: names.clone(),
            tip: tip.clone(),
            green: green.clone(),
            steps,
        });
        if culprit > 0 {
            self.land(&members[..culprit], &built[..culprit], &tip)
                .await?;
        }
        let s = members[culprit].unit.stream;
        self.state.queue.retain(|u| u.stream != s);
        let mut reason = format!(
            "gate `{}` fails once `{}` is added to {}",
            gate.join(" "),
            names[culprit],
            coordinator::short(&green)
        );
        if let Some(log) = &log {
            let tail = crate::agent::log::tail(log, 5);
            reason.push_str(&format!(" (log {})", log.display()));
            if !tail.is_empty() {
                self.state.streams[s]
                    .notes
                    .push(format!("the gate's log ends with:\n{}", tail.join("\n")));
            }
        }
        self.fail_stream(s, reason);
        self.save()?;
        failpoint::hit("after-culprit-saved");
        Ok(())
    }

    /// Handles every event already sent, then waits a moment for more while agents are still
    /// running, so units that reach their sync point together are gated together.
    async fn gather_arrivals(&mut self) -> Result<()> {
        let started = tokio::time::Instant::now();
        loop {
            while let Ok(event) = self.events_rx.try_recv() {
                Box::pin(self.handle(event)).await?;
            }
            if self.running == 0 || started.elapsed() >= GATE_GATHER_MAX {
                return Ok(());
            }
            let quiet = tokio::time::sleep(GATE_GATHER_QUIET);
            tokio::select! {
                Some(event) = self.events_rx.recv() => Box::pin(self.handle(event)).await?,
                _ = quiet => return Ok(()),
            }
        }
    }

    /// Each member integrated on the previous one, starting at `tip`, without moving any ref.
    /// Stops before the first that conflicts (it is gated, and halts, on its own later).
    async fn build_candidates(&self, tip: &Oid, members: &[Member]) -> Result<Vec<(Oid, usize)>> {
        let inputs: Vec<(String, SyncUnit, Vec<TaskRange>)> = members
            .iter()
            .map(|m| (m.stream.clone(), m.unit.clone(), m.tasks.clone()))
            .collect();
        let (repo, tip, strategy, identity, integration_ref) = (
            self.repo.clone(),
            tip.clone(),
            self.plan.merge,
            self.identity_env.clone(),
            self.state.integration_ref.clone(),
        );
        tokio::task::spawn_blocking(move || -> git::GitResult<Vec<(Oid, usize)>> {
            let mut built = Vec::new();
            let mut on = tip;
            for (stream, unit, tasks) in &inputs {
                let input = UnitInput {
                    stream,
                    integration_ref: &integration_ref,
                    tip: &on,
                    from: &unit.from,
                    to: &unit.to,
                    tasks,
                    strategy,
                    identity_env: &identity,
                };
                match coordinator::build_unit(&repo, &input)? {
                    Ok((next, commits)) => {
                        built.push((next.clone(), commits));
                        on = next;
                    }
                    Err(_conflict) => break,
                }
            }
            Ok(built)
        })
        .await
        .map_err(|e| Error::Internal(format!("building the gate's candidate panicked: {e}")))?
        .map_err(Error::Git)
    }

    /// Moves the integration ref from `tip` over `members` (built as `built`), and records them
    /// as integrated.
    async fn land(&mut self, members: &[Member], built: &[(Oid, usize)], tip: &Oid) -> Result<()> {
        let (repo, journal, name) = (
            self.repo.clone(),
            self.journal.clone(),
            self.state.integration_ref.clone(),
        );
        let (strategy, identity) = (self.plan.merge, self.identity_env.clone());
        let owned: Vec<(String, SyncUnit, Vec<TaskRange>, Oid, Oid)> = {
            let mut on = tip.clone();
            members
                .iter()
                .zip(built)
                .map(|(m, (next, _))| {
                    let row = (
                        m.stream.clone(),
                        m.unit.clone(),
                        m.tasks.clone(),
                        on.clone(),
                        next.clone(),
                    );
                    on = next.clone();
                    row
                })
                .collect()
        };
        let old = tip.clone();
        let began = now_ms();
        tokio::task::spawn_blocking(move || -> git::GitResult<()> {
            let inputs: Vec<UnitInput> = owned
                .iter()
                .map(|(stream, unit, tasks, on, _)| UnitInput {
                    stream,
                    integration_ref: &name,
                    tip: on,
                    from: &unit.from,
                    to: &unit.to,
                    tasks,
                    strategy,
                    identity_env: &identity,
                })
                .collect();
            let steps: Vec<(&UnitInput, Oid)> = inputs
                .iter()
                .zip(&owned)
                .map(|(input, row)| (input, row.4.clone()))
                .collect();
            coordinator::move_integration_ref(
                &repo,
                Some(&journal),
                &name,
                Some(&old),
                steps.last().map(|(_, new)| new.as_str()),
                IntegrationMove::Batch(&steps),
            )
        })
        .await
        .map_err(|e| Error::Internal(format!("moving the integration ref panicked: {e}")))?
        .map_err(Error::Git)?;
        for (member, (new_tip, commits)) in members.iter().zip(built) {
            let stream_done = self.unit_integrated(&member.unit, new_tip.clone());
            self.record_span(
                member.unit.stream,
                Step::Integration,
                began,
                SpanOutcome::Ok,
                None,
            );
            self.emit(Event::Integrated {
                stream: member.stream.clone(),
                tasks: member.tasks.iter().map(|t| t.index + 1).collect(),
                commits: *commits,
                tip: new_tip.to_string(),
            });
            if stream_done {
                self.finish_stream(member.unit.stream);
            }
        }
        self.save()?;
        failpoint::hit("after-integrate-saved");
        Ok(())
    }

    /// Whether `gate` passed on a commit with the same tree as `commit` earlier in this run.
    fn tree_passed(&self, gate: &[String], commit: &Oid) -> Result<bool> {
        let tree = git::commit::tree_of(&self.repo, commit)?;
        Ok(self
            .state
            .gates
            .iter()
            .any(|g| g.tree == tree && g.command == gate && g.passed))
    }

    /// Runs the gate on `commit` (the tip plus `streams`), unless this run already has its
    /// verdict on the same tree. Saved before it is acted on. `None`: a signal stopped it (or
    /// the session was already stopping); nothing is recorded, so `resume` runs it again.
    async fn gate_passes(
        &mut self,
        gate: &[String],
        tip: &Oid,
        commit: &Oid,
        streams: &[String],
    ) -> Result<Option<bool>> {
        let tree = git::commit::tree_of(&self.repo, commit)?;
        if let Some(known) = self
            .state
            .gates
            .iter()
            .rev()
            .find(|g| g.tree == tree && g.command == gate)
        {
            return Ok(Some(known.passed));
        }
        if self.stopping.is_some() {
            return Ok(None);
        }
        let n = self.state.gates.len() + 1;
        let log = self.run_dir.gate_log_path(n);
        let worktree = layout::gate_worktree(&worktrees_dir(&self.repo, &self.plan));
        {
            let (repo, path, commit) = (self.repo.clone(), worktree.clone(), commit.clone());
            let reason = format!("streams gate of run {}", self.state.run_id);
            tokio::task::spawn_blocking(move || {
                git::worktree::checkout_detached(&repo, &path, &commit, &reason)
            })
            .await
            .map_err(|e| Error::Internal(format!("preparing the gate worktree panicked: {e}")))?
            .map_err(Error::Git)?;
        }
        let _ = self.journal.append(Entry::GateStarted {
            commit: commit.to_string(),
            streams: streams.to_vec(),
        });
        failpoint::hit("before-gate");
        let mut env = self.identity_env.clone();
        env.extend(
            [
                ("STREAMS_RUN_ID", self.state.run_id.clone()),
                ("STREAMS_PLAN", self.plan.name.clone()),
                // Marks its processes as the gate's for the stop that reaches stragglers.
                ("STREAMS_STREAM", layout::GATE_WORKTREE.to_string()),
                ("STREAMS_GATE_STREAMS", streams.join("\n")),
                ("STREAMS_WORKTREE", worktree.display().to_string()),
                ("STREAMS_BASE", self.state.base.to_string()),
                ("STREAMS_INTEGRATION", tip.to_string()),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v)),
        );
        let on = if streams.is_empty() {
            "the integration tip alone".to_string()
        } else {
            format!("+ {}", streams.join(", "))
        };
        let cmd = AgentCommand {
            argv: gate.to_vec(),
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
                crate::agent::log::Section::Gate {
                    run: n,
                    on: coordinator::short(commit),
                    members: &on,
                },
                gate,
            ),
        };
        let limits = Limits {
            timeout: self.plan.check_timeout,
            idle: None,
            grace: self.plan.grace,
        };
        self.gate_running = true;
        let ran = self.gate_setup(&cmd, &tree, commit, &log).await;
        let set_up = ran.is_ok();
        let (exit, took) = match ran {
            Ok(()) => {
                let running = process::run_agent(cmd, limits, self.cancel.subscribe(), |_| {});
                self.listening(running).await
            }
            Err(exit) => exit,
        };
        self.gate_running = false;
        if exit == AgentExit::Cancelled {
            let _ = self.journal.append(Entry::GateStopped {
                commit: commit.to_string(),
            });
            return Ok(None);
        }
        let (passed, result) = match &exit {
            // Not the gate's own failure: the setup's, in its words.
            AgentExit::SpawnFailed(why) if !set_up => (false, why.clone()),
            _ => exit_words(&exit),
        };
        self.state.gates.push(GateRun {
            command: gate.to_vec(),
            tip: tip.clone(),
            commit: commit.clone(),
            tree,
            streams: streams.to_vec(),
            passed,
            result: result.clone(),
            ms: took.as_millis() as u64,
            log: log.clone(),
            at: now_ms(),
        });
        // On each added stream's timeline (a gate of the tip alone is on none).
        let began = now_ms().saturating_sub(took.as_millis() as u64);
        for name in streams {
            if let Some((s, _)) = self.state.stream_by_name(name) {
                let outcome = if passed {
                    SpanOutcome::Ok
                } else {
                    SpanOutcome::Failed {
                        reason: result.clone(),
                    }
                };
                self.record_span(s, Step::Gate, began, outcome, Some(log.clone()));
            }
        }
        let _ = self.journal.append(Entry::GateDone {
            commit: commit.to_string(),
            passed,
        });
        self.save()?;
        failpoint::hit("after-gate-saved");
        self.emit(Event::GateRan {
            streams: streams.to_vec(),
            commit: commit.to_string(),
            passed,
            result,
            duration_ms: took.as_millis() as u64,
            log: log.display().to_string(),
        });
        Ok(Some(passed))
    }

    /// The plan's workspace environment for the gate worktree, now at `commit`: the ignored
    /// files `include` and `.worktreeinclude` select, then `setup`, as for a stream's workspace
    /// reset to a new start (every gate run is on a new candidate; a tree already set up, as
    /// when a stopped gate runs again, is not set up twice). Both write to the gate run's log.
    /// An error is how the gate run ends: a setup that fails on a candidate makes it red, so a
    /// stream that breaks the setup is found like one that breaks the gate.
    async fn gate_setup(
        &mut self,
        gate: &AgentCommand,
        tree: &Oid,
        commit: &Oid,
        log: &std::path::Path,
    ) -> std::result::Result<(), (AgentExit, Duration)> {
        if self.gate_setup_at.as_ref() == Some(tree) {
            return Ok(());
        }
        let started = std::time::Instant::now();
        let failed = |why: String| (AgentExit::SpawnFailed(why), started.elapsed());
        let include = super::include::IncludeJob {
            checkout: self.repo.root().to_path_buf(),
            patterns: self.plan.include.clone(),
            skip: worktrees_dir(&self.repo, &self.plan),
            log_path: log.to_path_buf(),
        };
        let worktree = gate.cwd.clone();
        let copied = tokio::task::spawn_blocking(move || include.run(&worktree))
            .await
            .map_err(|e| failed(format!("copying the included files panicked: {e}")))?;
        copied.map_err(|why| failed(format!("setup: {why}")))?;
        if let Some(argv) = self.plan.setup.clone() {
            let job = super::setup::SetupJob {
                argv,
                env: gate.env.clone(),
                log_path: log.to_path_buf(),
                limits: Limits {
                    timeout: Some(
                        self.plan
                            .setup_timeout
                            .unwrap_or(crate::plan::DEFAULT_SETUP_TIMEOUT),
                    ),
                    idle: None,
                    grace: self.plan.grace,
                },
            };
            let (repo, cwd, commit, cancel) = (
                self.repo.clone(),
                gate.cwd.clone(),
                commit.clone(),
                self.cancel.subscribe(),
            );
            let setting_up =
                async move { super::setup::run(&repo, &cwd, &commit, &job, cancel, |_| {}).await };
            match self.listening(setting_up).await {
                super::setup::SetupResult::Done => {}
                super::setup::SetupResult::Failed(why) => return Err(failed(why)),
                super::setup::SetupResult::Interrupted => {
                    return Err((AgentExit::Cancelled, started.elapsed()));
                }
            }
        }
        self.gate_setup_at = Some(tree.clone());
        Ok(())
    }

    /// The gate fails on the integration tip with no stream added: no stream can be blamed, so
    /// nothing more is integrated in this run.
    fn gate_red_on_tip(&mut self, gate: &[String], tip: &Oid) {
        let log = self
            .state
            .gates
            .iter()
            .rev()
            .find(|g| g.streams.is_empty())
            .map(|g| format!(" (log {})", g.log.display()))
            .unwrap_or_default();
        let message = format!(
            "gate `{}` fails on {} before any stream is added{log}",
            gate.join(" "),
            coordinator::short(tip)
        );
        self.reporter.message(&format!(
            "error: {message}: no stream can be blamed; starting nothing new"
        ));
        self.gate_stopped = Some(message);
        self.no_new_work = true;
    }
}

/// Whether a check or gate passed, and how it ended in words.
pub(super) fn exit_words(exit: &AgentExit) -> (bool, String) {
    match exit {
        AgentExit::Exited(0) => (true, "passed".into()),
        AgentExit::Exited(code) => (false, format!("failed (exit code {code})")),
        AgentExit::Signaled(signal) => (false, format!("failed (killed by signal {signal})")),
        AgentExit::TimedOut(after) => (
            false,
            format!(
                "timed out after {}",
                crate::duration::fmt_duration_ms(after.as_millis() as u64)
            ),
        ),
        AgentExit::Idle(after) => (
            false,
            format!(
                "no output for {}",
                crate::duration::fmt_duration_ms(after.as_millis() as u64)
            ),
        ),
        AgentExit::Cancelled => (false, "stopped".into()),
        AgentExit::SpawnFailed(message) => (false, format!("could not start: {message}")),
    }
}
