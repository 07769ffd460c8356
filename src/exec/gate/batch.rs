//! One batch of the queue through the gate: its candidates built on the integration tip, the
//! search for the stream that turns it red (after the red batch is run again, since a gate can
//! be flaky), the green subset checked again, and what lands.

use std::collections::BTreeMap;

use super::Probe;
use crate::coordinator::{self, BisectStep, IntegrationMove, TaskRange, UnitInput};
use crate::error::{Error, Result};
use crate::exec::run::Run;
use crate::failpoint;
use crate::git;
use crate::ids::Oid;
use crate::report::Event;
use crate::state::{Bisection, FlakyGate, FlakyRun, SpanOutcome, Step, SyncUnit, now_ms};

/// One unit of a batch, with what building it needs.
struct Member {
    unit: SyncUnit,
    stream: String,
    tasks: Vec<TaskRange>,
}

/// The first units of the queue, each integrated (as objects only) on the one before it.
pub(in crate::exec) struct Batch {
    command: Vec<String>,
    /// The integration tip the batch is built on.
    tip: Oid,
    /// The units that built, in queue order (a unit that conflicts ends the batch before it).
    members: Vec<Member>,
    /// Per member: the candidate with it on top, and the commits it added.
    built: Vec<(Oid, usize)>,
    /// Each verdict so far, in order.
    gated: Vec<Verdict>,
    /// Whether an earlier gate run passed on the tip's tree (known once the batch is red).
    tip_green: bool,
    /// How many times a red batch is gated again before it is bisected (`gate_retries`); with
    /// any, the green subset bisection finds is checked once more before it lands.
    retries: usize,
}

/// The gate's verdict on the first `k` members.
#[derive(Clone, Copy, Debug)]
struct Verdict {
    k: usize,
    passed: bool,
    /// A run to check a verdict again.
    again: bool,
}

/// What the batch needs next.
pub(in crate::exec) enum Next {
    /// The gate's verdict on the tip plus the first `k` members.
    Gate(usize),
    /// The gate on the first `k` members once more, a fresh run: the red batch before it is
    /// bisected, or the green subset bisection found before it lands.
    Again(usize),
    /// Green as a whole (on its first run, or flaky: red, then green when run again): every
    /// member lands.
    Land,
    /// Member `culprit` turns the gate red: those before it land, its stream fails.
    Blame(usize),
    /// The gate fails on the tip alone: no stream can be blamed.
    TipRed,
    /// The first `k` members passed, then failed when checked again: the gate is flaky; no
    /// stream can be blamed.
    Flaky(usize),
}

impl Batch {
    /// The first units of the queue (up to `gate_batch`), built on the integration tip. `None`:
    /// the first unit conflicts with the tip (integrating it halts, as without a gate).
    pub async fn build(run: &Run, command: Vec<String>) -> Result<Option<Batch>> {
        let limit = run.ctx.plan.gate_batch.unwrap_or(usize::MAX).max(1);
        let mut members: Vec<Member> = run
            .state
            .queue
            .iter()
            .take(limit)
            .map(|unit| Member {
                unit: unit.clone(),
                stream: run.state.streams[unit.stream].name.clone(),
                tasks: run.unit_tasks(unit),
            })
            .collect();
        let tip = run.state.integration_tip.clone();
        let built = candidates(run, &tip, &members).await?;
        if built.is_empty() {
            return Ok(None);
        }
        members.truncate(built.len());
        Ok(Some(Batch {
            command,
            tip,
            members,
            built,
            gated: Vec::new(),
            tip_green: false,
            retries: run.ctx.plan.gate_retries as usize,
        }))
    }

    pub fn command(&self) -> &[String] {
        &self.command
    }

    pub fn tip(&self) -> &Oid {
        &self.tip
    }

    pub fn names(&self) -> Vec<String> {
        self.members.iter().map(|m| m.stream.clone()).collect()
    }

    /// The whole batch first, and again while it is red (`gate_retries` times); still red, the
    /// prefixes [`coordinator::bisect_next`] says, then the green subset once more.
    pub fn next(&self) -> Next {
        let n = self.members.len();
        let whole: Vec<&Verdict> = self.gated.iter().filter(|v| v.k == n).collect();
        if whole.is_empty() {
            return Next::Gate(n);
        }
        // Green on its first run, or on a run again after red ones (flaky): it lands.
        if whole.iter().any(|v| v.passed) {
            return Next::Land;
        }
        if whole.iter().filter(|v| v.again).count() < self.retries {
            return Next::Again(n);
        }
        // Bisection reads first verdicts; the whole batch counts as red.
        let results: BTreeMap<usize, bool> = self
            .gated
            .iter()
            .filter(|v| !v.again)
            .map(|v| (v.k, v.passed))
            .collect();
        match coordinator::bisect_next(n, self.tip_green, &results) {
            BisectStep::Probe(k) => Next::Gate(k),
            BisectStep::Culprit { index: 0 } => Next::Blame(0),
            BisectStep::Culprit { index } => {
                let again: Vec<&Verdict> = self
                    .gated
                    .iter()
                    .filter(|v| v.k == index && v.again)
                    .collect();
                match again.first() {
                    None if self.retries > 0 => Next::Again(index),
                    Some(v) if !v.passed => Next::Flaky(index),
                    _ => Next::Blame(index),
                }
            }
            BisectStep::TipRed => Next::TipRed,
        }
    }

    /// The candidate with the first `k` members on the tip, for `next` (a run again is a fresh
    /// one: the next of its kind on that tree).
    pub fn probe(&self, run: &Run, next: &Next) -> Result<Probe> {
        let (k, again) = match *next {
            Next::Gate(k) => (k, false),
            Next::Again(k) => (k, true),
            _ => return Err(Error::Internal("only a gate run has a probe".into())),
        };
        let commit = match k {
            0 => &self.tip,
            k => &self.built[k - 1].0,
        };
        let probe = Probe::new(run, &self.command, &self.tip, commit, &self.names()[..k])?;
        Ok(if again {
            let nth = self.gated.iter().filter(|v| v.k == k && v.again).count();
            probe.again(nth)
        } else {
            probe
        })
    }

    /// The gate's verdict for `next`.
    pub fn record(&mut self, run: &Run, next: &Next, passed: bool) -> Result<()> {
        let (k, again) = match *next {
            Next::Gate(k) => (k, false),
            Next::Again(k) => (k, true),
            _ => return Err(Error::Internal("only a gate run has a verdict".into())),
        };
        if self.gated.is_empty() {
            if !passed {
                // Red: the search may skip the tip if a gate passed on its tree before.
                self.tip_green = tree_passed(run, &self.command, &self.tip)?;
            }
        } else {
            failpoint::hit("after-bisect-step");
        }
        self.gated.push(Verdict { k, passed, again });
        Ok(())
    }

    /// Every member lands; if the batch was red before it passed, its gate is flaky (said and
    /// recorded, with both runs' logs).
    pub async fn land(&self, run: &mut Run) -> Result<()> {
        let n = self.members.len();
        if self.gated.iter().any(|v| v.k == n && !v.passed) {
            self.flaky(run, n, true)?;
        }
        land(run, &self.tip, &self.members, &self.built).await
    }

    /// The first `k` members' verdicts flipped: recorded (every run on their tree, with its
    /// log), saved and told. `landed`: the last passed and they land; else nothing does.
    pub fn flaky(&self, run: &mut Run, k: usize, landed: bool) -> Result<()> {
        let commit = match k {
            0 => self.tip.clone(),
            k => self.built[k - 1].0.clone(),
        };
        let tree = git::commit::tree_of(&run.ctx.repo, &commit)?;
        let streams = self.names()[..k].to_vec();
        let runs: Vec<FlakyRun> = run
            .state
            .gates
            .iter()
            .filter(|g| g.tree == tree && g.command == self.command)
            .map(|g| FlakyRun {
                passed: g.passed,
                result: g.result.clone(),
                log: g.log.clone(),
            })
            .collect();
        let outcome = if landed { "landed" } else { "stopped" };
        // A resumed run reaches the same flip again: recorded once.
        if run
            .state
            .flaky
            .iter()
            .any(|f| f.tree == tree && f.outcome == outcome)
        {
            return Ok(());
        }
        let event = Event::GateFlaky {
            streams: streams.clone(),
            commit: commit.to_string(),
            passed: runs.iter().map(|r| r.passed).collect(),
            logs: runs.iter().map(|r| r.log.display().to_string()).collect(),
            landed,
        };
        run.state.flaky.push(FlakyGate {
            streams,
            commit,
            tree,
            runs,
            outcome: outcome.to_string(),
            at: now_ms(),
        });
        run.save()?;
        run.emit(event);
        Ok(())
    }

    /// Member `culprit` turns the gate red: the members before it land, its stream fails (with
    /// the red run's log), and the rest stays queued to be gated again on the new tip.
    pub async fn blame(&self, run: &mut Run, culprit: usize) -> Result<()> {
        let names = self.names();
        let tip = &self.tip;
        let green = if culprit == 0 {
            tip.clone()
        } else {
            self.built[culprit - 1].0.clone()
        };
        // The red run that has the culprit on top of the green prefix: its log says why.
        let log = run
            .state
            .gates
            .iter()
            .rev()
            .find(|g| g.commit == self.built[culprit].0 || g.streams == names[..=culprit])
            .map(|g| g.log.clone());
        // The search's steps: each prefix's first verdict (runs again are told apart in the
        // gate's runs).
        let steps = self
            .gated
            .iter()
            .filter(|v| !v.again)
            .map(|v| (names[..v.k].to_vec(), v.passed))
            .collect();
        run.state.bisections.push(Bisection {
            culprit: names[culprit].clone(),
            batch: names.clone(),
            tip: tip.clone(),
            green: green.clone(),
            steps,
        });
        if culprit > 0 {
            land(run, tip, &self.members[..culprit], &self.built[..culprit]).await?;
        }
        let s = self.members[culprit].unit.stream;
        run.state.queue.retain(|u| u.stream != s);
        let mut reason = format!(
            "gate `{}` fails once `{}` is added to {}",
            crate::text::shell_words(&self.command),
            names[culprit],
            crate::text::short(&green)
        );
        if let Some(log) = &log {
            let tail = crate::agent::log::tail(log, 5);
            reason.push_str(&format!(" (log {})", log.display()));
            if !tail.is_empty() {
                run.state.streams[s]
                    .notes
                    .push(format!("the gate's log ends with:\n{}", tail.join("\n")));
            }
        }
        run.fail_stream(s, reason);
        run.save()?;
        failpoint::hit("after-culprit-saved");
        Ok(())
    }
}

/// Whether `gate` passed on a commit with the same tree as `commit` earlier in this run.
fn tree_passed(run: &Run, gate: &[String], commit: &Oid) -> Result<bool> {
    let tree = git::commit::tree_of(&run.ctx.repo, commit)?;
    Ok(run
        .state
        .gates
        .iter()
        .any(|g| g.tree == tree && g.command == gate && g.passed))
}

/// Each member integrated on the previous one, starting at `tip`, without moving any ref.
/// Stops before the first that conflicts (it is gated, and halts, on its own later).
async fn candidates(run: &Run, tip: &Oid, members: &[Member]) -> Result<Vec<(Oid, usize)>> {
    let inputs: Vec<(String, SyncUnit, Vec<TaskRange>)> = members
        .iter()
        .map(|m| (m.stream.clone(), m.unit.clone(), m.tasks.clone()))
        .collect();
    let (repo, tip, strategy, identity, integration_ref) = (
        run.ctx.repo.clone(),
        tip.clone(),
        run.ctx.plan.merge,
        run.ctx.identity_env.clone(),
        run.state.integration_ref.clone(),
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
async fn land(run: &mut Run, tip: &Oid, members: &[Member], built: &[(Oid, usize)]) -> Result<()> {
    let (repo, journal, name) = (
        run.ctx.repo.clone(),
        run.ctx.journal.clone(),
        run.state.integration_ref.clone(),
    );
    let (strategy, identity) = (run.ctx.plan.merge, run.ctx.identity_env.clone());
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
        let stream_done = run.unit_integrated(&member.unit, new_tip.clone());
        let s = member.unit.stream;
        run.record_span(s, Step::Integration, began, SpanOutcome::Ok, None);
        run.emit(Event::Integrated {
            stream: member.stream.clone(),
            tasks: member.tasks.iter().map(|t| t.index + 1).collect(),
            commits: *commits,
            tip: new_tip.to_string(),
            order: run.state.integrations.len(),
        });
        if stream_done {
            run.finish_stream(s);
        }
    }
    run.save()?;
    failpoint::hit("after-integrate-saved");
    Ok(())
}
