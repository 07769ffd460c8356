//! What `clean` removes: the worktrees, branches and kept refs of a run that is over, each
//! judged by whether deleting it would lose work.

use std::collections::BTreeSet;
use std::path::PathBuf;

use crate::coordinator::{IntegrationMove, move_integration_ref};
use crate::error::{IoContext, Result};
use crate::git::{self, Repo, commit, merge, refs, worktree};
use crate::ids::Oid;
use crate::layout::{self, KeptKind};
use crate::state::{RunDir, RunState, StateDir};
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

/// What `clean` would remove for the last run (and older runs' leftovers of its plan).
pub fn clean_plan(repo: &Repo, state: &RunState) -> Result<Vec<CleanItem>> {
    let mut items = Vec::new();
    let plan = &state.plan_name;
    let integration_tip = repo.ref_target(&state.integration_ref)?;
    // Worktrees of this plan: the streams', a leftover resolution worktree, and the gate's.
    let mut worktrees: Vec<PathBuf> = state.streams.iter().map(|s| s.worktree.clone()).collect();
    let mut gate = None;
    if let Some(parent) = state.streams.first().and_then(|s| s.worktree.parent()) {
        worktrees.push(layout::resolution_worktree(parent));
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

    let branches = refs::refs_under(repo, &layout::plan_branches(plan))?;
    let kept = refs::refs_under(repo, &layout::kept_refs(plan))?;
    // Whether a ref's work is on the integration branch is decided by content, not by what the
    // run recorded: a commit made in a worktree after the run is work too. It is if merging it
    // into the integration branch would change nothing.
    let candidates: Vec<&(String, Oid)> = branches
        .iter()
        .filter(|(name, _)| *name != state.integration_ref)
        .chain(
            kept.iter()
                .filter(|(name, _)| layout::parse_kept(plan, name) == Some(KeptKind::Tasks)),
        )
        .collect();
    let integrated: BTreeSet<&str> = match &integration_tip {
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
    };
    let base = state.base.as_str();

    for (name, oid) in &branches {
        let short_name = layout::plan_branch_name(plan, name)
            .unwrap_or(name)
            .to_string();
        let loses = if *name == state.integration_ref {
            let merged = merged_elsewhere(repo, oid, plan)?;
            (!merged && oid != base)
                .then(|| "the run's result, not merged into any other branch".to_string())
        } else if dirty_streams.contains(&short_name) {
            Some("its worktree has uncommitted changes".to_string())
        } else if oid == base || integrated.contains(name.as_str()) {
            None
        } else {
            Some(format!(
                "commits not on the integration branch ({})",
                short(oid)
            ))
        };
        items.push(CleanItem {
            what: format!("branch {}", crate::layout::short_branch(name)),
            loses,
            action: if *name == state.integration_ref {
                CleanAction::IntegrationRef(name.clone())
            } else {
                CleanAction::Ref(name.clone())
            },
        });
    }
    for (name, oid) in &kept {
        let kind = layout::parse_kept(plan, name).unwrap_or(KeptKind::Other);
        let loses = match kind {
            // Whatever it keeps is on a branch of the user's (merged): nothing is lost.
            _ if merged_elsewhere(repo, oid, plan)? => None,
            // A task's own commits, kept when its branch moved on: safe once they are integrated.
            KeptKind::Tasks if integrated.contains(name.as_str()) => None,
            KeptKind::Tasks => Some(format!(
                "a task's commits not on the integration branch ({})",
                short(oid)
            )),
            KeptKind::Rejected => Some(format!(
                "work an agent did outside its lane, set aside ({})",
                short(oid)
            )),
            KeptKind::Deleted => Some(format!(
                "the tip of a branch deleted while a task ran ({})",
                short(oid)
            )),
            KeptKind::Failed | KeptKind::Attempts => {
                Some(format!("work of a failed task ({})", short(oid)))
            }
            KeptKind::Wip => Some(format!(
                "unfinished work of an interrupted task ({})",
                short(oid)
            )),
            KeptKind::Previous => Some(format!(
                "what an earlier run left on a branch ({})",
                short(oid)
            )),
            KeptKind::Aborted => Some(format!("work kept when a run was aborted ({})", short(oid))),
            KeptKind::Retried => Some(format!(
                "what a stream held before `streams retry` ran it again ({})",
                short(oid)
            )),
            // A machine's copy of what it pushed, and the manifests and stage tips beside it:
            // the remote has them too, but a stream's work may be nowhere else here.
            KeptKind::Work => Some(format!(
                "a stream's work as a CI machine pushed it ({})",
                short(oid)
            )),
            KeptKind::Manifests | KeptKind::Stages | KeptKind::Machine => None,
            KeptKind::Resolution | KeptKind::MovedIntegration | KeptKind::Other => {
                Some(format!("kept work ({})", short(oid)))
            }
        };
        items.push(CleanItem {
            what: format!("ref {name}"),
            loses,
            action: CleanAction::Ref(name.clone()),
        });
    }
    Ok(items)
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
