//! `retry`: runs chosen streams of a finished run again, on top of the integration tip as it
//! is, keeping everything already integrated.
//!
//! The streams are reopened here (their unintegrated tasks back to pending); the engine then
//! runs them like any pending stream: each starts from the current integration tip.

use std::collections::BTreeSet;

use crate::error::{Error, Result};
use crate::git::{Repo, refs};
use crate::ids::Oid;
use crate::layout::RefNames;
use crate::plan::Plan;
use crate::state::{RunPhase, RunState, StreamState, TaskState};

/// What `retry` reopened, for its message.
#[derive(Debug)]
pub struct Reopened {
    /// The streams that will run again, in plan order.
    pub streams: Vec<String>,
    /// Work on their branches that the integration branch does not hold, kept before the
    /// branches move to the tip.
    pub kept: Vec<(String, Oid)>,
}

/// The streams to run again: those named, and with `with_dependents` every stream that depends
/// on one of them (directly or not) and did not finish. Each must exist and must not be done;
/// each dependency outside the set must be done (else the stream could never start).
pub fn choose(
    plan: &Plan,
    state: &RunState,
    named: &[String],
    with_dependents: bool,
) -> Result<BTreeSet<usize>> {
    let mut chosen = BTreeSet::new();
    for name in named {
        let Some((s, record)) = state.stream_by_name(name) else {
            let names: Vec<&str> = state.streams.iter().map(|s| s.name.as_str()).collect();
            return Err(Error::usage_with_hint(
                format!("the run has no stream `{name}`"),
                format!("its streams are: {}", names.join(", ")),
            ));
        };
        if matches!(record.state, StreamState::Done { .. }) {
            return Err(Error::usage_with_hint(
                format!("stream `{name}` is integrated already; there is nothing to retry"),
                "retry a stream that failed or was skipped (`streams status` shows which)",
            ));
        }
        chosen.insert(s);
    }
    if with_dependents {
        // Until nothing is added: dependents of dependents too.
        loop {
            let before = chosen.len();
            for (s, stream) in plan.streams.iter().enumerate() {
                let waits = stream
                    .depends_on
                    .iter()
                    .any(|d| chosen.iter().any(|&c| plan.streams[c].name == *d));
                if waits && !matches!(state.streams[s].state, StreamState::Done { .. }) {
                    chosen.insert(s);
                }
            }
            if chosen.len() == before {
                break;
            }
        }
    }
    for &s in &chosen {
        for dep in &plan.streams[s].depends_on {
            let Some((d, record)) = state.stream_by_name(dep) else {
                continue;
            };
            if !chosen.contains(&d) && !matches!(record.state, StreamState::Done { .. }) {
                return Err(Error::usage_with_hint(
                    format!(
                        "stream `{}` depends on `{dep}`, which did not finish",
                        plan.streams[s].name
                    ),
                    format!("retry `{dep}` too: `streams retry {dep} --with-dependents`"),
                ));
            }
        }
    }
    Ok(chosen)
}

/// Reopens `named` (and, with `with_dependents`, what depends on them) in a finished run: their
/// tasks that are not integrated go back to pending, and whatever their branches hold that the
/// integration branch does not is kept under `RefNames::retried` first. The engine saves the
/// state when it starts; until then nothing but the kept refs has changed.
pub fn reopen(
    repo: &Repo,
    plan: &Plan,
    state: &mut RunState,
    named: &[String],
    with_dependents: bool,
) -> Result<Reopened> {
    match &state.phase {
        RunPhase::Finished => {}
        RunPhase::Aborted { .. } => {
            return Err(Error::state(
                format!(
                    "run {} was aborted: its integration branch is gone",
                    state.run_id
                ),
                "start a new run with `streams run`",
            ));
        }
        _ => {
            return Err(Error::state(
                format!(
                    "run {} is not finished ({}): retry works on a finished run",
                    state.run_id,
                    state.phase.name()
                ),
                "finish it first (`streams status` says how)",
            ));
        }
    }
    // The streams start from the integration tip the run recorded; a branch moved or removed
    // since then (by `clean`, or by hand) would be silently overwritten or undone.
    let tip = repo.ref_target(&state.integration_ref)?;
    if tip.as_ref() != Some(&state.integration_tip) {
        let branch = crate::layout::short_branch(&state.integration_ref);
        return Err(Error::state(
            match tip {
                Some(tip) => format!(
                    "{branch} has moved since the run finished (it is at {}, the run left it at {})",
                    crate::text::short(&tip),
                    crate::text::short(&state.integration_tip)
                ),
                None => format!("{branch} was removed since the run finished"),
            },
            "start a new run with `streams run`",
        ));
    }
    let chosen = choose(plan, state, named, with_dependents)?;
    let names = RefNames::new(&state.plan_name);
    let mut kept = Vec::new();
    for &s in &chosen {
        let record = &state.streams[s];
        if let Some(branch_tip) = repo.ref_target(&record.branch)?
            && !refs::is_ancestor(repo, &branch_tip, &state.integration_tip)?
        {
            let name = names.retried(&state.run_id, &record.name);
            let name = refs::keep_ref(repo, &name, &branch_tip, "streams retry: stream branch")?;
            kept.push((name, branch_tip));
        }
    }
    for &s in &chosen {
        let record = &mut state.streams[s];
        record.state = StreamState::Pending;
        for task in &mut record.tasks {
            if !matches!(task.state, TaskState::Integrated { .. }) {
                task.state = TaskState::Pending;
            }
        }
    }
    Ok(Reopened {
        streams: chosen
            .iter()
            .map(|&s| state.streams[s].name.clone())
            .collect(),
        kept,
    })
}
