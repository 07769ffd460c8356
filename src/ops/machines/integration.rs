//! The central job's result: where an integration starts ([`integration_base`]), which stage
//! tips it may build on ([`stage_tip_problem`], [`allowed_starts`]) and its push
//! ([`publish_integration`]).

use crate::error::{Error, Result};
use crate::git::{self, Repo, refs, remote};
use crate::ids::Oid;
use crate::layout::{self, RefNames};
use crate::ownership::{Owner, Ownership};
use crate::plan::Plan;
use crate::state::{FailReason, Machines, RunState, TaskState};

use super::{Published, push_error, stages};
use crate::text::short7;

/// Pushes an integration run's result: the integration branch, the stage's tip (for the
/// machines of the next stage), and the work kept for streams rejected here.
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
    // What the remote had when this integration fetched: an integration of the same run made
    // elsewhere (the job run again in a fresh clone) with the same files is the same result,
    // and stays: machines of the next stage may have started from it already.
    let stage_ref = stage.map(|k| names.stage(run_id, k));
    let pushed_before = match &stage_ref {
        Some(name) => repo.ref_target(name)?,
        None => None,
    };
    let same_result = match &pushed_before {
        Some(before) if *before != tip => {
            git::commit::tree_of(repo, before).ok() == git::commit::tree_of(repo, &tip).ok()
        }
        _ => false,
    };
    // The integration branch moves only from the value this job saw on the remote (a lease):
    // another integrate job that pushed meanwhile is not pushed over unseen.
    let mut leases = Vec::new();
    if !same_result
        && let Some(seen) = integration_needs_push(repo, state, remote_name, run_id, *stage, &tip)?
    {
        targets.push((state.integration_ref.clone(), tip.clone()));
        leases.push((state.integration_ref.clone(), seen));
    }
    if let (Some(name), false) = (&stage_ref, same_result) {
        targets.push((name.clone(), tip.clone()));
    }
    for stream in &state.streams {
        for task in &stream.tasks {
            if let TaskState::Failed {
                reason: FailReason::Ownership { kept, .. },
                ..
            } = &task.state
                && let Some(oid) = repo.ref_target(kept)?
            {
                targets.push((kept.clone(), oid));
            }
        }
    }
    if targets.is_empty() {
        return Ok(None);
    }
    remote::push_atomic(repo, remote_name, &targets, &leases).map_err(|e| {
        if remote::lease_broken(&e) {
            Error::state(
                format!(
                    "{} on {remote_name} moved while this integration ran (another integrate job pushed it?): nothing was pushed",
                    layout::short_branch(&state.integration_ref)
                ),
                "run the same command again: it looks at the remote afresh, and pushes only when its result differs",
            )
        } else {
            push_error(remote_name, e)
        }
    })?;
    // This repository's copy of the stage tip follows the remote's.
    if let (Some(name), false) = (&stage_ref, same_result) {
        refs::set_refs(repo, &[(name.clone(), tip)], "streams integrate: pushed")?;
    }
    Ok(Some(Published {
        remote: remote_name.clone(),
        refs: targets.into_iter().map(|(n, _)| n).collect(),
    }))
}

/// Whether the remote's integration branch should move to `tip`: not when it is there already
/// or holds the same files, and not when a later stage of this run moved it on (integrating an
/// earlier stage again must not take it back). `Some(seen)`: push, from the value seen there
/// (`None`: the branch is not there).
fn integration_needs_push(
    repo: &Repo,
    state: &RunState,
    remote_name: &str,
    run_id: &str,
    stage: Option<usize>,
    tip: &Oid,
) -> Result<Option<Option<Oid>>> {
    let on_remote = remote::remote_refs(repo, remote_name, &state.integration_ref)?
        .into_iter()
        .find(|(name, _)| *name == state.integration_ref)
        .map(|(_, oid)| oid);
    let Some(there) = on_remote else {
        return Ok(Some(None));
    };
    if there == *tip {
        return Ok(None);
    }
    let later_stage = |there: &Oid| -> Result<bool> {
        let Some(k) = stage else { return Ok(false) };
        let prefix = RefNames::new(&state.plan_name).stages_prefix(run_id);
        Ok(refs::refs_under(repo, &prefix)?
            .into_iter()
            .any(|(name, oid)| {
                oid == *there
                    && name
                        .strip_prefix(&prefix)
                        .and_then(|n| n.parse::<usize>().ok())
                        .is_some_and(|j| j > k)
            }))
    };
    if later_stage(&there)? {
        return Ok(None);
    }
    let same_files =
        git::commit::tree_of(repo, &there).ok() == git::commit::tree_of(repo, tip).ok();
    Ok((!same_files).then_some(Some(there)))
}

/// The base an integration run starts from: stage K-1's tip for K > 0; else `first`, the
/// run's first start as the central job knows it (`--base`, or the plan's base here). Never
/// what a manifest says: a forged one would choose what every stream is integrated onto.
/// `Err(Some(k))`: stage k's tip is not there; `Err(None)`: no base.
pub fn integration_base(
    repo: &Repo,
    plan: &Plan,
    run_id: &str,
    stage: Option<usize>,
    first: Option<&Oid>,
) -> Result<std::result::Result<Oid, Option<usize>>> {
    let names = RefNames::new(&plan.name);
    if let Some(k) = stage.filter(|&k| k > 0) {
        return Ok(repo
            .ref_target(&names.stage(run_id, k - 1))?
            .ok_or(Some(k - 1)));
    }
    Ok(first.cloned().ok_or(None))
}

/// Why stage `k`'s tip read from the remote cannot be built on, if it cannot. Any runner can
/// push to the remote, so the tip is checked as a stream's work is: from the run's `base`, its
/// commits (each against a parent of its range) change only what streams of stages 0 to `k`
/// own, or `shared`.
pub fn stage_tip_problem(
    repo: &Repo,
    plan: &Plan,
    ownership: &Ownership,
    base: &Oid,
    tip: &Oid,
    k: usize,
) -> Result<Option<String>> {
    let allowed: Vec<usize> = stages(plan).into_iter().take(k + 1).flatten().collect();
    let stages_text = if k == 0 {
        "stage 0".to_string()
    } else {
        format!("stages 0 to {k}")
    };
    let commits = match remote::commits_with_paths(repo, base, tip) {
        Ok(commits) => commits,
        Err(e) => return Ok(Some(format!("its commits cannot be checked: {e}"))),
    };
    for commit in &commits {
        let outside = commit
            .paths
            .iter()
            .find(|path| match ownership.owner_of(path) {
                Owner::Stream(i) => !allowed.contains(&i),
                Owner::Shared => false,
                Owner::Nobody => true,
            });
        if let Some(path) = outside {
            return Ok(Some(format!(
                "its commit {} changes {path}, which no stream of {stages_text} owns",
                short7(&commit.id)
            )));
        }
    }
    Ok(None)
}

/// The commits streams of this integration may start from: its base, and without `--stage`
/// the tips of every stage already pushed for the run that pass [`stage_tip_problem`].
pub fn allowed_starts(
    repo: &Repo,
    plan: &Plan,
    ownership: &Ownership,
    run_id: &str,
    stage: Option<usize>,
    base: &Oid,
) -> Result<Vec<Oid>> {
    let mut starts = vec![base.clone()];
    if stage.is_none() {
        let prefix = RefNames::new(&plan.name).stages_prefix(run_id);
        for (name, tip) in refs::refs_under(repo, &prefix)? {
            let Some(k) = name
                .strip_prefix(&prefix)
                .and_then(|k| k.parse::<usize>().ok())
            else {
                continue;
            };
            if stage_tip_problem(repo, plan, ownership, base, &tip, k)?.is_none() {
                starts.push(tip);
            }
        }
    }
    Ok(starts)
}
