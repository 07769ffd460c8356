//! The central job's result: whether the remote's integration branch may be moved to it
//! ([`integration_branch`]), and its push ([`publish_integration`]).
//!
//! The integration branch has a name shared by every run of the plan, so it moves only from a
//! value streams itself left there: the tip the stage before reported (what this stage builds
//! on), or a result recorded under `refs/streams/<plan>/stages/` (this stage's earlier attempt;
//! for a first stage, an earlier run). Anything else (a person's push, `streams pr`, a job that
//! planted something) is refused with what to do, and nothing is pushed. Recorded results can
//! be forged too, but moving from a forged one only replaces it with this job's result.

use crate::error::{Error, Result};
use crate::git::{Repo, remote};
use crate::ids::Oid;
use crate::layout::{self, RefNames};
use crate::state::{FailReason, Machines, RunState, TaskState};

use super::{Published, git_says, push_leased};
use crate::text::short7;

/// What the remote's integration branch holds, when this integration may move it.
#[derive(Clone, Debug, PartialEq)]
pub enum BranchThere {
    /// Not there: it is created.
    Absent,
    /// At this integration's result already.
    Ours,
    /// At a value streams left: moved from it.
    Movable(Oid),
}

/// Whether the integration of run `run_id`, stage `stage` (`None`: whole) may move `branch`
/// on `remote` to `ours` (when known): `prev` is the tip of the stage before as its job
/// reported it (`None` for a first stage or a whole integration). A refusal says what the
/// branch holds and what to do.
pub fn integration_branch(
    repo: &Repo,
    remote_name: &str,
    plan: &str,
    run_id: &str,
    stage: Option<usize>,
    prev: Option<&Oid>,
    ours: Option<&Oid>,
) -> Result<BranchThere> {
    let branch = layout::integration_ref(plan);
    let names = RefNames::new(plan);
    let unreadable = |e: crate::git::GitError| {
        Error::state(
            format!("could not read {remote_name}: {}", git_says(&e)),
            "check the remote's name or URL (`git remote -v`) and that it can be read from here",
        )
    };
    let there = remote::remote_values(repo, remote_name, std::slice::from_ref(&branch))
        .map_err(unreadable)?
        .remove(&branch);
    let Some(there) = there else {
        return Ok(BranchThere::Absent);
    };
    if Some(&there) == ours {
        return Ok(BranchThere::Ours);
    }
    let recorded =
        remote::remote_refs(repo, remote_name, &names.all_stages_prefix()).map_err(unreadable)?;
    let movable = match (stage, prev) {
        // A later stage builds on the stage before: the branch is its result, or this stage's
        // own from an earlier attempt of this job.
        (Some(k), Some(prev)) if k > 0 => {
            there == *prev
                || recorded
                    .iter()
                    .any(|(name, oid)| *oid == there && *name == names.stage(run_id, k))
        }
        // A first stage (or every stage at once): the result of any integration streams
        // recorded, of this run or an earlier one.
        _ => recorded.iter().any(|(_, oid)| *oid == there),
    };
    if movable {
        return Ok(BranchThere::Movable(there));
    }
    let short_branch = layout::short_branch(&branch);
    let (what, hint) = match (stage, prev) {
        (Some(k), Some(prev)) if k > 0 => (
            format!(
                "not stage {}'s result ({}) that stage {k} builds on",
                k - 1,
                short7(prev)
            ),
            format!(
                "a job of this run or a person pushed it: look at it (`git fetch {remote_name} {short_branch} && git log -p FETCH_HEAD`); to go on, put stage {}'s result back (`git push --force-with-lease={branch}:{there} {remote_name} {prev}:{branch}`) and run this job again",
                k - 1
            ),
        ),
        _ => (
            "which no integration of this plan spread over machines left there".to_string(),
            format!(
                "it may be a person's (`streams pr` pushes it too): look at it (`git fetch {remote_name} {short_branch} && git log FETCH_HEAD`); if it can go, delete it (`git push --force-with-lease={branch}:{there} {remote_name} :{branch}`) and run this job again"
            ),
        ),
    };
    Err(Error::state(
        format!(
            "refusing to push {short_branch} to {remote_name}: it holds {}, {what}; nothing was pushed",
            short7(&there)
        ),
        hint,
    ))
}

/// Pushes an integration run's result: the integration branch (see [`integration_branch`]),
/// the result recorded under the run's own name (`stages/<run>/<k>`, or `all`), and the work
/// kept for streams rejected here; and reports the tip as the job's output `tip`, which the
/// next stage's jobs start from. Nothing moves on the remote when nothing was integrated.
pub fn publish_integration(repo: &Repo, state: &RunState) -> Result<Option<Published>> {
    let Some(Machines::Integrate {
        remote: remote_name,
        run_id,
        stage,
        ..
    }) = &state.machines
    else {
        return Ok(None);
    };
    let names = RefNames::new(&state.plan_name);
    let tip = state.integration_tip.clone();
    let mut targets = Vec::new();
    let mut checked = Vec::new();
    // The start of a stage after the first is the tip its job was given (`--start`).
    let prev = stage.filter(|&k| k > 0).map(|_| &state.base);
    let integrated = tip != state.base;
    if integrated {
        let there = integration_branch(
            repo,
            remote_name,
            &state.plan_name,
            run_id,
            *stage,
            prev,
            Some(&tip),
        )?;
        match there {
            BranchThere::Ours => {}
            BranchThere::Absent => {
                targets.push((state.integration_ref.clone(), tip.clone()));
                checked.push((state.integration_ref.clone(), None));
            }
            BranchThere::Movable(from) => {
                targets.push((state.integration_ref.clone(), tip.clone()));
                checked.push((state.integration_ref.clone(), Some(from)));
            }
        }
        let recorded = match stage {
            Some(k) => names.stage(run_id, *k),
            None => names.whole(run_id),
        };
        targets.push((recorded, tip.clone()));
    }
    for stream in &state.streams {
        for task in &stream.tasks {
            if let TaskState::Failed {
                reason: FailReason::Ownership { kept, .. },
                ..
            } = &task.state
                && let Some(oid) = repo.ref_target(kept)?
            {
                targets.push((names.work_kept(run_id, &stream.name, kept), oid));
            }
        }
    }
    let refs = push_leased(repo, remote_name, targets, &checked)?;
    Ok(Some(Published {
        remote: remote_name.clone(),
        refs,
        outputs: vec![("tip", tip.to_string())],
    }))
}
