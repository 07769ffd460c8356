//! What `clean` removes: the worktrees, branches and kept refs of a run that is over, each
//! judged by whether deleting it would lose work.

use std::collections::BTreeSet;
use std::path::PathBuf;

use crate::coordinator::{IntegrationMove, move_integration_ref};
use crate::error::{Error, IoContext, Result};
use crate::git::{self, Repo, commit, merge, refs, worktree};
use crate::ids::Oid;
use crate::layout::{self, KeptKind};
use crate::state::{RunDir, RunLock, RunState, StateDir};
use crate::text::short;

/// One thing `clean` looked at.
#[derive(Debug)]
pub struct CleanItem {
    pub what: String,
    /// Why it would lose work, if it would.
    pub loses: Option<String>,
    action: CleanAction,
}

#[derive(Debug)]
enum CleanAction {
    Worktree(PathBuf),
    Ref(String),
    /// The integration branch: it moves (here, goes) only through the coordinator.
    IntegrationRef(String),
    RunDir(PathBuf),
}

/// What `clean` found to remove, under the lock (held until the removals are done).
pub struct Found {
    pub lock: RunLock,
    /// What removing loses nothing.
    pub safe: Vec<CleanItem>,
    /// What removing would lose work (`--force` removes it too).
    pub risky: Vec<CleanItem>,
}

/// Takes the lock and finds what `clean` would remove: the last run's worktrees, branches and
/// refs, and older run directories. `None` when no run ever started here; an error when the
/// last run is not over.
pub fn find(repo: &Repo) -> Result<Option<Found>> {
    let state_dir = StateDir::new(repo.common_dir());
    let lock = RunLock::acquire(&state_dir, "clean")?;
    let Some((_, state)) = state_dir.current()? else {
        return Ok(None);
    };
    if !state.phase.is_over() {
        return Err(Error::state(
            format!(
                "run {} of plan `{}` is {}, not finished",
                state.run_id,
                state.plan_name,
                state.phase.name()
            ),
            "finish it (`streams resume` / `streams continue`) or stop it with `streams abort` first",
        ));
    }
    let mut items = clean_plan(repo, &state)?;
    items.extend(old_run_dirs(&state_dir, &state.run_id));
    let (safe, risky) = items.into_iter().partition(|i| i.loses.is_none());
    Ok(Some(Found { lock, safe, risky }))
}

/// What `clean` would remove for the last run (and older runs' leftovers of its plan).
pub fn clean_plan(repo: &Repo, state: &RunState) -> Result<Vec<CleanItem>> {
    let plan = &state.plan_name;
    let integration_tip = repo.ref_target(&state.integration_ref)?;
    let (mut items, dirty_streams) = worktree_items(repo, state)?;
    let branches = refs::refs_under(repo, &layout::plan_branches(plan))?;
    let kept = refs::refs_under(repo, &layout::kept_refs(plan))?;
    let integrated = integrated_refs(repo, state, integration_tip.as_ref(), &branches, &kept)?;
    for (name, oid) in &branches {
        items.push(branch_item(
            repo,
            state,
            name,
            oid,
            &dirty_streams,
            &integrated,
        )?);
    }
    for (name, oid) in &kept {
        items.push(kept_item(repo, plan, name, oid, &integrated)?);
    }
    Ok(items)
}

/// The plan's worktrees (the streams', leftover resolution worktrees: the stopped line's and
/// each parked stream's, and the gate's), each with what removing it loses; and the streams
/// whose worktree holds work not yet brought.
fn worktree_items(repo: &Repo, state: &RunState) -> Result<(Vec<CleanItem>, BTreeSet<String>)> {
    let mut items = Vec::new();
    let mut worktrees: Vec<PathBuf> = state.streams.iter().map(|s| s.worktree.clone()).collect();
    let mut gate = None;
    if let Some(parent) = state.streams.first().and_then(|s| s.worktree.parent()) {
        worktrees.push(layout::resolution_worktree(parent));
        worktrees.extend(
            state
                .streams
                .iter()
                .map(|s| layout::parked_worktree(parent, &s.name)),
        );
        gate = Some(layout::gate_worktree(parent));
        worktrees.extend(gate.clone());
    }
    let registered = worktree::list(repo)?;
    let mut dirty_streams = BTreeSet::new();
    for path in worktrees {
        if !registered.iter().any(|w| w.path == path) && !path.exists() {
            continue;
        }
        if gate.as_ref() == Some(&path) {
            // Candidates checked out to be gated, and what the gate built: no work of anyone's
            // (every candidate is a commit the run made from the streams' branches).
            items.push(CleanItem {
                what: format!("gate worktree {}", path.display()),
                loses: None,
                action: CleanAction::Worktree(path),
            });
            continue;
        }
        let dirty = path.exists()
            && git::changes::dirty_paths(&path)
                .map(|d| !d.is_empty())
                .unwrap_or(false);
        let unbrought = git::workspace::unbrought_head(repo, &path);
        if (dirty || unbrought.is_some())
            && let Some(name) = path.file_name()
        {
            dirty_streams.insert(name.to_string_lossy().into_owned());
        }
        let loses = match (dirty, unbrought) {
            (true, _) => Some("uncommitted changes in it".to_string()),
            (false, Some(head)) => Some(format!(
                "commits made in it that your repository does not have ({})",
                short(&head)
            )),
            (false, None) => None,
        };
        items.push(CleanItem {
            what: format!("worktree {}", path.display()),
            loses,
            action: CleanAction::Worktree(path),
        });
    }
    Ok((items, dirty_streams))
}

/// The refs whose work the integration branch holds. Decided by content, not by what the run
/// recorded: a commit made in a worktree after the run is work too. It is held if merging it
/// into the integration branch would change nothing.
fn integrated_refs<'a>(
    repo: &Repo,
    state: &RunState,
    integration_tip: Option<&Oid>,
    branches: &'a [(String, Oid)],
    kept: &'a [(String, Oid)],
) -> Result<BTreeSet<&'a str>> {
    let plan = &state.plan_name;
    let candidates: Vec<&(String, Oid)> = branches
        .iter()
        .filter(|(name, _)| *name != state.integration_ref)
        .chain(
            kept.iter()
                .filter(|(name, _)| layout::parse_kept(plan, name) == Some(KeptKind::Tasks)),
        )
        .collect();
    Ok(match integration_tip {
        Some(tip) => {
            let tree = commit::tree_of(repo, tip)?;
            let pairs: Vec<(Oid, Oid)> = candidates
                .iter()
                .map(|(_, oid)| (tip.clone(), oid.clone()))
                .collect();
            let merges = merge::merge_batch(repo, &pairs)?;
            candidates
                .iter()
                .zip(merges)
                .filter(|(_, m)| m.clean && m.tree == tree)
                .map(|((name, _), _)| name.as_str())
                .collect()
        }
        None => BTreeSet::new(),
    })
}

/// A branch of the plan, with what removing it loses: the integration branch when its
/// result is merged nowhere, a stream's when its work is not integrated.
fn branch_item(
    repo: &Repo,
    state: &RunState,
    name: &str,
    oid: &Oid,
    dirty_streams: &BTreeSet<String>,
    integrated: &BTreeSet<&str>,
) -> Result<CleanItem> {
    let plan = &state.plan_name;
    let base = state.base.as_str();
    let short_name = layout::plan_branch_name(plan, name)
        .unwrap_or(name)
        .to_string();
    let loses = if name == state.integration_ref {
        let merged = merged_elsewhere(repo, oid, plan)?;
        (!merged && oid != base)
            .then(|| "the run's result, not merged into any other branch".to_string())
    } else if dirty_streams.contains(&short_name) {
        Some("its worktree has uncommitted changes".to_string())
    } else if oid == base || integrated.contains(name) {
        None
    } else {
        Some(format!(
            "commits not on the integration branch ({})",
            short(oid)
        ))
    };
    Ok(CleanItem {
        what: format!("branch {}", crate::layout::short_branch(name)),
        loses,
        action: if name == state.integration_ref {
            CleanAction::IntegrationRef(name.to_string())
        } else {
            CleanAction::Ref(name.to_string())
        },
    })
}

/// A ref kept by a run, with what removing it loses (by what kind of work it keeps).
fn kept_item(
    repo: &Repo,
    plan: &str,
    name: &str,
    oid: &Oid,
    integrated: &BTreeSet<&str>,
) -> Result<CleanItem> {
    let kind = layout::parse_kept(plan, name).unwrap_or(KeptKind::Other);
    let work = match kind {
        // Whatever it keeps is on a branch of the user's (merged): nothing is lost.
        _ if merged_elsewhere(repo, oid, plan)? => None,
        // A task's own commits, kept when its branch moved on: safe once they are integrated.
        KeptKind::Tasks if integrated.contains(name) => None,
        KeptKind::Tasks => Some("a task's commits not on the integration branch"),
        KeptKind::Rejected => Some("work an agent did outside its lane, set aside"),
        KeptKind::Deleted => Some("the tip of a branch deleted while a task ran"),
        KeptKind::Failed | KeptKind::Attempts => Some("work of a failed task"),
        KeptKind::Wip => Some("unfinished work of an interrupted task"),
        KeptKind::Previous => Some("what an earlier run left on a branch"),
        KeptKind::Aborted => Some("work kept when a run was aborted"),
        KeptKind::Retried => Some("what a stream held before `streams retry` ran it again"),
        // A machine's copy of what it pushed, and the manifests and stage tips beside it:
        // the remote has them too, but a stream's work may be nowhere else here.
        KeptKind::Work => Some("a stream's work as a CI machine pushed it"),
        KeptKind::Manifests | KeptKind::Stages | KeptKind::Machine => None,
        KeptKind::Resolution | KeptKind::MovedIntegration | KeptKind::Other => Some("kept work"),
    };
    let loses = work.map(|work| format!("{work} ({})", short(oid)));
    Ok(CleanItem {
        what: format!("ref {name}"),
        loses,
        action: CleanAction::Ref(name.to_string()),
    })
}

/// Older run directories (logs, state) of runs that are over; the last run's is kept.
pub fn old_run_dirs(state_dir: &StateDir, keep: &str) -> Vec<CleanItem> {
    let Ok(entries) = std::fs::read_dir(state_dir.runs_dir()) else {
        return Vec::new();
    };
    let mut items: Vec<CleanItem> = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name() != keep)
        .filter(|e| {
            RunDir::at(e.path())
                .load()
                .map(|s| s.phase.is_over())
                .unwrap_or(true)
        })
        .map(|e| CleanItem {
            what: format!("run directory {}", e.path().display()),
            loses: None,
            action: CleanAction::RunDir(e.path()),
        })
        .collect();
    items.sort_by(|a, b| a.what.cmp(&b.what));
    items
}

/// Whether `oid` is reachable from a branch outside `streams/<plan>/` (it was merged).
fn merged_elsewhere(repo: &Repo, oid: &str, plan: &str) -> Result<bool> {
    let own = layout::plan_branches(plan);
    Ok(refs::branches_containing(repo, oid)?
        .iter()
        .any(|r| !r.starts_with(&own)))
}

pub fn clean_remove(repo: &Repo, item: &CleanItem) -> Result<()> {
    match &item.action {
        CleanAction::Worktree(path) => worktree::remove(repo, path)?,
        CleanAction::Ref(name) => refs::delete_ref(repo, name)?,
        CleanAction::IntegrationRef(name) => move_integration_ref(
            repo,
            None,
            name,
            None,
            None,
            IntegrationMove::Other("streams clean"),
        )?,
        CleanAction::RunDir(path) => std::fs::remove_dir_all(path)
            .context(|| format!("could not remove {}", path.display()))?,
    }
    Ok(())
}
