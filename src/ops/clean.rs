//! What `clean` removes: exactly what it is told to, a run, a plan, or every plan, and of that
//! only what loses no work unless forced.
//!
//! A plan's workspaces, branches and kept refs belong to its last run; refs kept under a run's
//! id (`previous/<run>`, `aborted/<run>`, ...) to that run. A run's record (its directory:
//! state, logs, reports) goes last, and only when everything that belongs to it went: work
//! that is kept (merged nowhere, not integrated) keeps the record that says what it is, so no
//! branch or workspace is ever left without its record.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::coordinator::{IntegrationMove, move_integration_ref};
use crate::error::{Error, IoContext, Result};
use crate::git::{Repo, commit, merge, refs, worktree};
use crate::ids::Oid;
use crate::layout::{self, KeptKind};
use crate::state::{RunDir, RunLock, RunState, StateDir, lock};
use crate::text::short;
use crate::workspace::{Kind, Workspace};

/// What `clean` is told to clean.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// The plan of the last run started here (a bare `streams clean`).
    Last,
    /// Every run of a plan, and what its last run left (`--plan`).
    Plan(String),
    /// One run: its record and what is kept under its id; for its plan's last run, the plan's
    /// workspaces, branches and kept refs too (`--run`).
    Run(String),
    /// Every plan that ran here, or left branches or kept refs (`--all`).
    All,
}

/// One thing `clean` looked at.
#[derive(Debug)]
pub struct CleanItem {
    pub what: String,
    /// Why it would lose work, if it would.
    pub loses: Option<String>,
    action: CleanAction,
    /// The run it belongs to (its record stays while it stays).
    run: Option<String>,
}

#[derive(Debug)]
enum CleanAction {
    Worktree(PathBuf),
    Ref(String),
    /// The integration branch: it moves (here, goes) only through the coordinator.
    IntegrationRef(String),
    RunDir(PathBuf),
}

/// What `clean` found of one plan, under the plan's lock (held until the removals are done).
pub struct PlanClean {
    pub plan: String,
    _lock: RunLock,
    /// Workspaces, branches and kept refs.
    items: Vec<CleanItem>,
    /// Run records (directories), removed last.
    records: Vec<CleanItem>,
    /// The directories that held the plan's workspaces (removed once empty).
    workspace_dirs: Vec<PathBuf>,
}

/// What `clean` found.
pub struct Found {
    pub plans: Vec<PlanClean>,
    /// With `--all`: the plans left alone, and why (a run not over, a process holding it).
    pub passed_over: Vec<String>,
    /// For a bare `clean`, which cleans the last run's plan: the other plans that ran here
    /// (left alone), for the line that says which plan it took.
    pub other_plans: Vec<String>,
}

/// What cleaning a plan does, as `--force` decides.
pub struct Decision<'a> {
    pub remove: Vec<&'a CleanItem>,
    /// What would lose work: kept (unless forced).
    pub keep: Vec<&'a CleanItem>,
    /// Run records kept because work of their run is kept.
    pub keep_records: Vec<&'a CleanItem>,
    /// What `--force` removes although it loses work (listed first).
    pub forced: Vec<&'a CleanItem>,
}

/// Finds what cleaning `target` removes, under each plan's lock. A named plan or run that is
/// not over (or whose lock another process holds) is an error; `--all` passes over such plans.
pub fn find(repo: &Repo, target: &Target) -> Result<Found> {
    let state_dir = StateDir::new(repo.common_dir());
    let (runs, _) = state_dir.runs();
    let mut by_plan: BTreeMap<String, Vec<(RunDir, RunState)>> = BTreeMap::new();
    for (dir, state) in runs.iter().cloned() {
        by_plan
            .entry(state.plan_name.clone())
            .or_default()
            .push((dir, state));
    }
    let (plans, only_run): (Vec<String>, Option<String>) = match target {
        Target::Last => match runs.last() {
            Some((_, state)) => (vec![state.plan_name.clone()], None),
            None => (Vec::new(), None),
        },
        Target::Plan(plan) => (vec![plan.clone()], None),
        Target::Run(id) => {
            let (_, state) = super::runs::by_id(&state_dir, id)?;
            (vec![state.plan_name], Some(id.clone()))
        }
        Target::All => {
            let mut plans: BTreeSet<String> = by_plan.keys().cloned().collect();
            plans.extend(plans_with_refs(repo)?);
            (plans.into_iter().collect(), None)
        }
    };
    let other_plans = match target {
        Target::Last => by_plan
            .keys()
            .filter(|plan| !plans.contains(plan))
            .cloned()
            .collect(),
        _ => Vec::new(),
    };
    let mut found = Found {
        plans: Vec::new(),
        passed_over: Vec::new(),
        other_plans,
    };
    for plan in plans {
        let plan_runs = by_plan.remove(&plan).unwrap_or_default();
        match plan_clean(repo, &state_dir, &plan, &plan_runs, only_run.as_deref()) {
            Ok(Some(clean)) => found.plans.push(clean),
            Ok(None) => {}
            Err(e) if *target == Target::All => found.passed_over.push(e.to_string()),
            Err(e) => return Err(e),
        }
    }
    Ok(found)
}

/// Plans that left branches or kept refs here (some may have no run record any more).
fn plans_with_refs(repo: &Repo) -> Result<BTreeSet<String>> {
    let mut plans = BTreeSet::new();
    for namespace in [layout::plan_branches(""), layout::kept_refs("")] {
        // `refs/heads/streams//` (the namespace of a plan without a name): every plan's.
        let prefix = format!("{}/", namespace.trim_end_matches('/'));
        for (name, _) in refs::refs_under(repo, &prefix)? {
            if let Some(plan) = name[prefix.len()..].split('/').next()
                && !plan.is_empty()
            {
                plans.insert(plan.to_string());
            }
        }
    }
    Ok(plans)
}

/// What cleaning plan `plan` (or only run `only_run` of it) removes; `None` when there is
/// nothing of it here.
fn plan_clean(
    repo: &Repo,
    state_dir: &StateDir,
    plan: &str,
    runs: &[(RunDir, RunState)],
    only_run: Option<&str>,
) -> Result<Option<PlanClean>> {
    let lock = RunLock::acquire(state_dir, plan, "clean")?;
    let latest = runs.last().map(|(_, state)| state);
    if let Some(state) = latest
        && !state.phase.is_over()
        && only_run.is_none_or(|id| id == state.run_id)
    {
        let holder = lock::current_holder(state_dir, plan);
        return Err(Error::state(
            format!(
                "run {} of plan `{plan}` is {}, not finished",
                state.run_id,
                state.phase.seen(holder.is_some())
            ),
            format!(
                "finish it (`streams resume --plan {plan}` / `streams continue --plan {plan}`) or stop it with `streams abort --plan {plan}` first"
            ),
        ));
    }
    let latest_id = latest.map(|s| s.run_id.clone());
    let whole_plan = only_run.is_none() || only_run == latest_id.as_deref();
    let known: BTreeSet<&str> = runs.iter().map(|(_, s)| s.run_id.as_str()).collect();
    // The run a ref kept under a run's id belongs to: that run if it is recorded, else the
    // plan's last run (whose record is then the one that stays with it).
    let owner_of = |name: &str| -> Option<String> {
        match layout::kept_run_id(plan, name) {
            Some(id) if known.contains(id) => Some(id.to_string()),
            _ => latest_id.clone(),
        }
    };
    let wanted = |run: &Option<String>| match only_run {
        None => true,
        Some(id) => run.as_deref() == Some(id),
    };

    let mut items = Vec::new();
    let mut workspace_dirs = Vec::new();
    let branches = refs::refs_under(repo, &layout::plan_branches(plan))?;
    let kept = refs::refs_under(repo, &layout::kept_refs(plan))?;
    let mut dirty_streams = BTreeSet::new();
    if whole_plan {
        let (paths, dirs) = workspaces(repo, plan, runs);
        workspace_dirs = dirs;
        for item in workspace_items(repo, &paths, &mut dirty_streams) {
            items.push(CleanItem {
                run: latest_id.clone(),
                ..item
            });
        }
    }
    let judge = Judge::new(repo, plan, latest, &branches, &kept)?;
    if whole_plan {
        for (name, oid) in &branches {
            let mut item = judge.branch_item(name, oid, &dirty_streams)?;
            item.run = latest_id.clone();
            items.push(item);
        }
    }
    for (name, oid) in &kept {
        let run = owner_of(name);
        let plan_level = layout::kept_run_id(plan, name).is_none_or(|id| !known.contains(id));
        if (plan_level && !whole_plan) || (!plan_level && !wanted(&run)) {
            continue;
        }
        let mut item = judge.kept_item(name, oid)?;
        item.run = run;
        items.push(item);
    }
    let records: Vec<CleanItem> = runs
        .iter()
        .filter(|(_, s)| only_run.is_none_or(|id| id == s.run_id))
        .map(|(dir, s)| CleanItem {
            what: format!("run record {}", dir.path().display()),
            loses: None,
            action: CleanAction::RunDir(dir.path().to_path_buf()),
            run: Some(s.run_id.clone()),
        })
        .collect();
    if items.is_empty() && records.is_empty() {
        return Ok(None);
    }
    Ok(Some(PlanClean {
        plan: plan.to_string(),
        _lock: lock,
        items,
        records,
        workspace_dirs,
    }))
}

impl PlanClean {
    /// What cleaning removes and keeps: without `force`, what would lose work stays, and so
    /// do the records of the runs it belongs to.
    pub fn decide(&self, force: bool) -> Decision<'_> {
        let (risky, safe): (Vec<&CleanItem>, Vec<&CleanItem>) =
            self.items.iter().partition(|i| i.loses.is_some());
        let (keep, forced) = if force {
            (Vec::new(), risky)
        } else {
            (risky, Vec::new())
        };
        let kept_runs: BTreeSet<&str> = keep.iter().filter_map(|i| i.run.as_deref()).collect();
        let (keep_records, records): (Vec<&CleanItem>, Vec<&CleanItem>) = self
            .records
            .iter()
            .partition(|r| r.run.as_deref().is_some_and(|id| kept_runs.contains(id)));
        let mut remove = safe;
        remove.extend(forced.iter().copied());
        remove.extend(records);
        Decision {
            remove,
            keep,
            keep_records,
            forced,
        }
    }

    /// Removes one item of [`Self::decide`]'s `remove`; once the last is gone, the emptied
    /// workspace directories go too.
    pub fn remove(&self, repo: &Repo, item: &CleanItem) -> Result<()> {
        clean_remove(repo, item)?;
        for dir in &self.workspace_dirs {
            // Only once empty: what else is there is not streams'.
            let _ = std::fs::remove_dir(dir);
            // And the `<repo>.streams` beside the repository that held it, once no plan is left
            // in it (only a directory of that name: a plan's `worktree_root` is the person's).
            if let Some(beside) = dir
                .parent()
                .filter(|p| p.extension().is_some_and(|e| e == "streams"))
            {
                let _ = std::fs::remove_dir(beside);
            }
        }
        Ok(())
    }
}

/// Every workspace of the plan: its runs' stream workspaces, what else is in the directories
/// that hold them (workspaces of streams an earlier plan had, the resolution and gate
/// worktrees), and the linked worktrees git has registered there. Also those directories.
fn workspaces(
    repo: &Repo,
    plan: &str,
    runs: &[(RunDir, RunState)],
) -> (Vec<PathBuf>, Vec<PathBuf>) {
    let mut dirs: BTreeSet<PathBuf> = runs
        .iter()
        .flat_map(|(_, s)| s.streams.iter())
        .filter_map(|s| s.worktree.parent().map(Path::to_path_buf))
        .collect();
    dirs.insert(layout::worktrees_dir(
        repo.root(),
        repo.common_dir(),
        plan,
        None,
    ));
    let mut paths: BTreeSet<PathBuf> = runs
        .last()
        .map(|(_, s)| s.streams.iter().map(|s| s.worktree.clone()).collect())
        .unwrap_or_default();
    for dir in &dirs {
        if let Ok(entries) = std::fs::read_dir(dir) {
            paths.extend(
                entries
                    .filter_map(|e| e.ok())
                    .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                    .map(|e| e.path()),
            );
        }
    }
    if let Ok(registered) = worktree::list(repo) {
        paths.extend(
            registered
                .into_iter()
                .map(|w| w.path)
                .filter(|p| p.parent().is_some_and(|parent| dirs.contains(parent))),
        );
    }
    (paths.into_iter().collect(), dirs.into_iter().collect())
}

/// The plan's workspaces (the streams', leftover resolution worktrees: the stopped line's and each
/// parked stream's, the gate's), each with
/// what removing it loses; `dirty_streams` gets the streams whose workspace holds work not
/// brought into the repository.
fn workspace_items(
    repo: &Repo,
    paths: &[PathBuf],
    dirty_streams: &mut BTreeSet<String>,
) -> Vec<CleanItem> {
    let registered = worktree::list(repo).unwrap_or_default();
    let mut items = Vec::new();
    for path in paths {
        if !registered.iter().any(|w| w.path == *path) && !path.exists() {
            continue;
        }
        if path.file_name().is_some_and(|n| n == layout::GATE_WORKTREE) {
            // Candidates checked out to be gated, and what the gate built: no work of anyone's
            // (every candidate is a commit the run made from the streams' branches).
            items.push(CleanItem {
                what: format!("gate worktree {}", path.display()),
                loses: None,
                action: CleanAction::Worktree(path.clone()),
                run: None,
            });
            continue;
        }
        let ws = Workspace::find(repo, path);
        let dirty = ws.is_dirty(repo);
        let unbrought = ws.unbrought_head(repo);
        if (dirty || unbrought.is_some())
            && let Some(name) = path.file_name()
        {
            dirty_streams.insert(name.to_string_lossy().into_owned());
        }
        let loses = match (dirty, unbrought) {
            // Its files then differ from what streams recorded too: the commits say more.
            (_, Some(head)) => Some(format!(
                "commits made in it that your repository does not have ({})",
                short(&head)
            )),
            (true, None) => Some("uncommitted changes in it".to_string()),
            (false, None) => None,
        };
        items.push(CleanItem {
            what: format!("worktree {}", path.display()),
            loses,
            action: CleanAction::Worktree(path.clone()),
            run: None,
        });
    }
    items
}

/// Judges a plan's branches and kept refs by whether removing them loses work.
struct Judge<'a> {
    repo: &'a Repo,
    plan: &'a str,
    integration_ref: String,
    /// The last run's base, when there is a run.
    base: Option<Oid>,
    /// Where `streams merge` took the last run's result, when it did (a replayed result is in
    /// no branch under its own commit ids).
    merged: Option<(String, Oid)>,
    /// The refs whose work the integration branch holds.
    integrated: BTreeSet<String>,
}

impl<'a> Judge<'a> {
    fn new(
        repo: &'a Repo,
        plan: &'a str,
        latest: Option<&RunState>,
        branches: &[(String, Oid)],
        kept: &[(String, Oid)],
    ) -> Result<Judge<'a>> {
        let integration_ref = latest
            .map(|s| s.integration_ref.clone())
            .unwrap_or_else(|| layout::integration_ref(plan));
        let tip = repo.ref_target(&integration_ref)?;
        let integrated =
            integrated_refs(repo, plan, &integration_ref, tip.as_ref(), branches, kept)?;
        Ok(Judge {
            repo,
            plan,
            integration_ref,
            base: latest.map(|s| s.base.clone()),
            merged: latest
                .and_then(|s| s.merged.as_ref())
                .map(|m| (layout::branch_ref(&m.branch), m.commit.clone())),
            integrated,
        })
    }

    /// A branch of the plan, with what removing it loses: the integration branch when its
    /// result is merged nowhere, a stream's when its work is not integrated.
    fn branch_item(
        &self,
        name: &str,
        oid: &Oid,
        dirty_streams: &BTreeSet<String>,
    ) -> Result<CleanItem> {
        let short_name = layout::plan_branch_name(self.plan, name)
            .unwrap_or(name)
            .to_string();
        let at_base = self.base.as_ref() == Some(oid);
        let loses = if name == self.integration_ref {
            let merged = merged_elsewhere(self.repo, oid, self.plan)? || self.recorded_merge()?;
            (!merged && !at_base)
                .then(|| "the run's result, not merged into any other branch".to_string())
        } else if dirty_streams.contains(&short_name) {
            Some("its worktree has uncommitted changes".to_string())
        } else if at_base
            || self.integrated.contains(name)
            || merged_elsewhere(self.repo, oid, self.plan)?
        {
            None
        } else {
            Some(format!(
                "commits not on the integration branch ({})",
                short(oid)
            ))
        };
        Ok(CleanItem {
            what: format!("branch {}", layout::short_branch(name)),
            loses,
            action: if name == self.integration_ref {
                CleanAction::IntegrationRef(name.to_string())
            } else {
                CleanAction::Ref(name.to_string())
            },
            run: None,
        })
    }

    /// Whether the last run's result was merged by `streams merge` and the branch it went
    /// into still holds what the merge made.
    fn recorded_merge(&self) -> Result<bool> {
        let Some((branch, commit)) = &self.merged else {
            return Ok(false);
        };
        Ok(match self.repo.ref_target(branch)? {
            Some(tip) => refs::is_ancestor(self.repo, commit, &tip).unwrap_or(false),
            None => false,
        })
    }

    /// A ref kept by a run, with what removing it loses (by what kind of work it keeps).
    fn kept_item(&self, name: &str, oid: &Oid) -> Result<CleanItem> {
        let kind = layout::parse_kept(self.plan, name).unwrap_or(KeptKind::Other);
        let work = match kind {
            // Whatever it keeps is on a branch of the user's (merged): nothing is lost.
            _ if merged_elsewhere(self.repo, oid, self.plan)? => None,
            // A task's own commits, kept when its branch moved on: safe once they are
            // integrated.
            KeptKind::Tasks if self.integrated.contains(name) => None,
            KeptKind::Tasks => Some("a task's commits not on the integration branch"),
            KeptKind::Rejected => Some("work an agent did outside its lane, set aside"),
            KeptKind::Deleted => Some("the tip of a branch deleted while a task ran"),
            KeptKind::Failed | KeptKind::Attempts => Some("work of a failed task"),
            KeptKind::Wip => Some("unfinished work of an interrupted or stopped task"),
            KeptKind::Previous => Some("what an earlier run left on a branch"),
            KeptKind::Aborted => Some("work kept when a run was aborted"),
            KeptKind::Retried => Some("what a stream held before `streams retry` ran it again"),
            // A machine's copy of what it pushed, and the manifests and stage tips beside it:
            // the remote has them too, but a stream's work may be nowhere else here.
            KeptKind::Work => Some("a stream's work as a CI machine pushed it"),
            KeptKind::Agent => Some("an agent's own commits, not taken as its task's history"),
            KeptKind::Manifests | KeptKind::Stages | KeptKind::Machine => None,
            KeptKind::Resolution | KeptKind::MovedIntegration | KeptKind::Other => {
                Some("kept work")
            }
        };
        Ok(CleanItem {
            what: format!("ref {name}"),
            loses: work.map(|work| format!("{work} ({})", short(oid))),
            action: CleanAction::Ref(name.to_string()),
            run: None,
        })
    }
}

/// The refs whose work the integration branch holds. Decided by content, not by what the run
/// recorded: a commit made in a worktree after the run is work too. It is held if merging it
/// into the integration branch would change nothing.
fn integrated_refs(
    repo: &Repo,
    plan: &str,
    integration_ref: &str,
    integration_tip: Option<&Oid>,
    branches: &[(String, Oid)],
    kept: &[(String, Oid)],
) -> Result<BTreeSet<String>> {
    let candidates: Vec<&(String, Oid)> = branches
        .iter()
        .filter(|(name, _)| name != integration_ref)
        .chain(
            kept.iter()
                .filter(|(name, _)| layout::parse_kept(plan, name) == Some(KeptKind::Tasks)),
        )
        .collect();
    let Some(tip) = integration_tip else {
        return Ok(BTreeSet::new());
    };
    let tree = commit::tree_of(repo, tip)?;
    let pairs: Vec<(Oid, Oid)> = candidates
        .iter()
        .map(|(_, oid)| (tip.clone(), oid.clone()))
        .collect();
    let merges = merge::merge_batch(repo, Some(tip), &pairs)?;
    Ok(candidates
        .iter()
        .zip(merges)
        .filter(|(_, m)| m.clean && m.tree == tree)
        .map(|((name, _), _)| name.clone())
        .collect())
}

/// Whether `oid` is reachable from a branch outside `streams/<plan>/` (it was merged).
fn merged_elsewhere(repo: &Repo, oid: &str, plan: &str) -> Result<bool> {
    let own = layout::plan_branches(plan);
    Ok(refs::branches_containing(repo, oid)?
        .iter()
        .any(|r| !r.starts_with(&own)))
}

fn clean_remove(repo: &Repo, item: &CleanItem) -> Result<()> {
    match &item.action {
        CleanAction::Worktree(path) => {
            let ws = Workspace::find(repo, path);
            match ws.kind() {
                Kind::Private { .. } | Kind::Absent => ws.remove(repo)?,
                // The gate's or a resolution worktree, or what is left of one.
                Kind::Linked | Kind::Foreign => worktree::remove(repo, path)?,
            }
        }
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
