//! One batch of the queue through the gate: its candidates built on the integration tip, the
//! search for the stream that turns it red, and what lands.

use std::collections::BTreeMap;

use super::Probe;
use crate::coordinator::{self, BisectStep, IntegrationMove, TaskRange, UnitInput};
use crate::error::{Error, Result};
use crate::exec::run::Run;
use crate::failpoint;
use crate::git;
use crate::ids::Oid;
use crate::report::Event;
use crate::state::{Bisection, SpanOutcome, Step, SyncUnit, now_ms};

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
    /// Each prefix gated so far (its length) and whether it passed, in order.
    gated: Vec<(usize, bool)>,
    /// Whether an earlier gate run passed on the tip's tree (known once the batch is red).
    tip_green: bool,
}

/// What the batch needs next.
pub(in crate::exec) enum Next {
    /// The gate's verdict on the tip plus the first `k` members.
    Gate(usize),
    /// Green as a whole: every member lands.
    Land,
    /// Member `culprit` turns the gate red: those before it land, its stream fails.
    Blame(usize),
    /// The gate fails on the tip alone: no stream can be blamed.
    TipRed,
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
        }))
    }

    pub fn command(&self) -> &[String] {
        &self.command
    }

    pub fn tip(&self) -> &Oid {
        &self.tip
    }

    fn names(&self) -> Vec<String> {
        self.members.iter().map(|m| m.stream.clone()).collect()
    }

    /// The whole batch first; once it is red, the prefixes [`coordinator::bisect_next`] says.
    pub fn next(&self) -> Next {
        let n = self.members.len();
        match self.gated.first() {
            None => return Next::Gate(n),
            Some(&(_, true)) => return Next::Land,
            Some(_) => {}
        }
        let results: BTreeMap<usize, bool> = self.gated.iter().copied().collect();
        match coordinator::bisect_next(n, self.tip_green, &results) {
            BisectStep::Probe(k) => Next::Gate(k),
            BisectStep::Culprit { index } => Next::Blame(index),
            BisectStep::TipRed => Next::TipRed,
        }
    }

    /// The candidate with the first `k` members on the tip.
    pub fn probe(&self, run: &Run, k: usize) -> Result<Probe> {
        let commit = match k {
            0 => &self.tip,
            k => &self.built[k - 1].0,
        };
        Probe::new(run, &self.command, &self.tip, commit, &self.names()[..k])
    }

    /// The gate's verdict on the first `k` members.
    pub fn record(&mut self, run: &Run, k: usize, passed: bool) -> Result<()> {
        if self.gated.is_empty() {
            if !passed {
                // Red: the search may skip the tip if a gate passed on its tree before.
                self.tip_green = tree_passed(run, &self.command, &self.tip)?;
            }
        } else {
            failpoint::hit("after-bisect-step");
        }
        self.gated.push((k, passed));
        Ok(())
    }

    /// Every member lands.
    pub async fn land(&self, run: &mut Run) -> Result<()> {
        land(run, &self.tip, &self.members, &self.built).await
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
        let steps = self
            .gated
            .iter()
            .map(|&(k, passed)| (names[..k].to_vec(), passed))
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
            self.command.join(" "),
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
