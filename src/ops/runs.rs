//! Which run a command acts on, and the runs `streams runs` lists.
//!
//! A repository holds runs of several plans side by side (each plan's last run owns its
//! branches and workspaces; earlier runs of a plan are history). Every command that acts on a
//! run takes `--plan NAME|FILE` and `--run ID`; without them it takes the only run that fits
//! what it does (the halted one for `continue`, a finished one not merged yet for `merge`,
//! ...), else the last one started, and says which when there was a choice
//! ([`Picked::choice`]).

use std::path::Path;

use crate::error::{Error, Result};
use crate::git::Repo;
use crate::report::runs_view::{Choice, RUNS_SCHEMA, RunRow, Runs};
use crate::state::{RunDir, RunPhase, RunState, StateDir, lock, now_ms};

/// What the command line said about the run to act on.
#[derive(Clone, Debug, Default)]
pub struct Selector {
    /// The plan's name (`--plan NAME`, or the name a `--plan FILE` gives itself).
    pub plan: Option<String>,
    /// `--run ID`.
    pub run: Option<String>,
}

impl Selector {
    /// From `--plan NAME|FILE` and `--run ID`. A value that names a file (relative to `cwd`)
    /// or looks like one (`.toml`, a `/`) is read for its `[plan] name`.
    pub fn new(cwd: &Path, plan: Option<&str>, run: Option<&str>) -> Result<Selector> {
        let plan = match plan {
            None => None,
            Some(value) => Some(plan_name(cwd, value)?),
        };
        Ok(Selector {
            plan,
            run: run.map(str::to_string),
        })
    }

    /// The selector of one plan by name.
    pub fn plan(name: &str) -> Selector {
        Selector {
            plan: Some(name.to_string()),
            run: None,
        }
    }
}

/// The plan name `--plan` means: a plan file's `[plan] name`, or the value itself.
fn plan_name(cwd: &Path, value: &str) -> Result<String> {
    let path = cwd.join(value);
    let looks_like_file = value.ends_with(".toml") || value.contains('/') || path.is_file();
    if !looks_like_file {
        return Ok(value.to_string());
    }
    let text = std::fs::read_to_string(&path).map_err(|source| Error::PlanUnreadable {
        path: path.clone(),
        source,
    })?;
    let name = toml::from_str::<toml::Table>(&text).ok().and_then(|t| {
        t.get("plan")?
            .get("name")?
            .as_str()
            .map(|name| name.to_string())
    });
    name.ok_or_else(|| {
        Error::usage_with_hint(
            format!("{} names no plan: it has no `[plan] name`", path.display()),
            "give --plan a plan file, or the plan's name",
        )
    })
}

/// What a command can act on, to choose among the plans' last runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Want {
    /// Any run (`status`, `show`, `diff`, `logs`, `pr`, `clean`).
    Any,
    /// A run that is not over (`abort`, `skip`, `stop`).
    NotOver,
    /// A halted run (`continue`).
    Halted,
    /// An interrupted run (`resume`).
    Resumable,
    /// A finished run (`retry`).
    Finished,
    /// A finished run whose result was not merged yet, else a finished one (`merge`).
    Unmerged,
}

impl Want {
    fn fits(self, state: &RunState) -> bool {
        match self {
            Want::Any => true,
            Want::NotOver => !state.phase.is_over(),
            Want::Halted => matches!(state.phase, RunPhase::Halted),
            Want::Resumable => {
                matches!(
                    state.phase,
                    RunPhase::Running | RunPhase::Interrupted { .. }
                )
            }
            Want::Finished => matches!(state.phase, RunPhase::Finished),
            Want::Unmerged => matches!(state.phase, RunPhase::Finished) && state.merged.is_none(),
        }
    }

    /// What fits next best when no run fits.
    fn fallback(self) -> Option<Want> {
        match self {
            Want::Unmerged => Some(Want::Finished),
            _ => None,
        }
    }
}

/// The run a command acts on.
pub struct Picked {
    pub dir: RunDir,
    pub state: RunState,
    /// Set when other plans had runs too and nothing on the command line chose: which was
    /// picked and which were not, for the line the command says.
    pub choice: Option<Choice>,
}

/// The run `selector` names, or the one `command` fits best: among the last run of each plan
/// (of `--plan`'s only), the last started that fits `want`, else the last started. An error
/// when there is none, or `--run` names none.
pub fn pick(repo: &Repo, selector: &Selector, want: Want, command: &str) -> Result<Picked> {
    pick_optional(repo, selector, want)?.ok_or_else(|| match &selector.plan {
        Some(plan) => Error::state(
            format!("plan `{plan}` has no run in this repository"),
            plans_hint(repo),
        ),
        None if want == Want::Any => Error::state(
            "no streams run in this repository yet",
            "start one with `streams run`",
        ),
        None => Error::state(
            format!("there is no run to {command} in this repository"),
            "start one with `streams run`",
        ),
    })
}

/// [`pick`], with `None` when nothing ran here (or nothing of `--plan`).
pub fn pick_optional(repo: &Repo, selector: &Selector, want: Want) -> Result<Option<Picked>> {
    let state_dir = StateDir::new(repo.common_dir());
    if let Some(id) = &selector.run {
        let (dir, state) = by_id(&state_dir, id)?;
        if let Some(plan) = &selector.plan
            && *plan != state.plan_name
        {
            return Err(Error::usage(format!(
                "run {id} is a run of plan `{}`, not of `{plan}`",
                state.plan_name
            )));
        }
        return Ok(Some(Picked {
            dir,
            state,
            choice: None,
        }));
    }
    let (runs, _) = state_dir.runs();
    let mut lasts = last_of_each_plan(runs);
    if let Some(plan) = &selector.plan {
        lasts.retain(|(_, state)| state.plan_name == *plan);
    }
    let fitting = |want: Want| lasts.iter().rposition(|(_, state)| want.fits(state));
    let Some(index) = fitting(want)
        .or_else(|| want.fallback().and_then(fitting))
        .or_else(|| lasts.len().checked_sub(1))
    else {
        return Ok(None);
    };
    let choice = (lasts.len() > 1).then(|| {
        let holders = |state: &RunState| lock::current_holder(&state_dir, &state.plan_name);
        let rows: Vec<RunRow> = lasts
            .iter()
            .map(|(_, state)| row(repo, state, true, holders(state)))
            .collect();
        Choice {
            picked: rows[index].clone(),
            others: rows
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != index)
                .map(|(_, r)| r.clone())
                .collect(),
        }
    });
    let (dir, state) = lasts.swap_remove(index);
    Ok(Some(Picked { dir, state, choice }))
}

/// The run with id `id`, or a usage error listing the runs recorded here.
pub fn by_id(state_dir: &StateDir, id: &str) -> Result<(RunDir, RunState)> {
    let dir = state_dir.run_dir(id);
    if crate::layout::run_id_problem(id).is_some() || !dir.state_path().exists() {
        let known: Vec<String> = state_dir
            .runs()
            .0
            .iter()
            .map(|(_, s)| s.run_id.clone())
            .collect();
        let hint = if known.is_empty() {
            "no run has been recorded here; start one with `streams run`".to_string()
        } else {
            format!("runs recorded here: {}", known.join(", "))
        };
        return Err(Error::usage_with_hint(
            format!("no run `{id}` in this repository"),
            hint,
        ));
    }
    let state = dir.load()?;
    Ok((dir, state))
}

/// The plans that ran here, for a message that names them.
fn plans_hint(repo: &Repo) -> String {
    let (runs, _) = StateDir::new(repo.common_dir()).runs();
    let plans: Vec<String> = last_of_each_plan(runs)
        .into_iter()
        .map(|(_, s)| format!("`{}`", s.plan_name))
        .collect();
    if plans.is_empty() {
        "no plan ran here yet; start one with `streams run`".to_string()
    } else {
        format!("plans that ran here: {}", plans.join(", "))
    }
}

/// `--plan NAME` (with a leading space) for the hints that end a run of `state`'s plan when
/// other plans ran here too: without it, `merge`, `retry` and `clean` could take another
/// plan's run. Empty when this plan is the only one.
pub fn plan_flag(state: &RunState) -> String {
    let Ok(repo) = Repo::discover(&state.repo_root) else {
        return String::new();
    };
    let (runs, _) = StateDir::new(repo.common_dir()).runs();
    if runs.iter().any(|(_, s)| s.plan_name != state.plan_name) {
        format!(" --plan {}", crate::text::shell_quote(&state.plan_name))
    } else {
        String::new()
    }
}

/// The last run of each plan, in the order they started.
pub fn last_of_each_plan(runs: Vec<(RunDir, RunState)>) -> Vec<(RunDir, RunState)> {
    let mut lasts: Vec<(RunDir, RunState)> = Vec::new();
    for (dir, state) in runs {
        lasts.retain(|(_, s)| s.plan_name != state.plan_name);
        lasts.push((dir, state));
    }
    lasts
}

/// Every run recorded here, oldest first (`streams runs`).
pub fn list(repo: &Repo) -> Runs {
    let state_dir = StateDir::new(repo.common_dir());
    let (runs, unreadable) = state_dir.runs();
    let lasts: Vec<String> = last_of_each_plan(runs.clone())
        .into_iter()
        .map(|(_, s)| s.run_id)
        .collect();
    let runs = runs
        .iter()
        .map(|(_, state)| {
            let latest = lasts.contains(&state.run_id);
            let holder = latest
                .then(|| lock::current_holder(&state_dir, &state.plan_name))
                .flatten();
            row(repo, state, latest, holder)
        })
        .collect();
    Runs {
        schema: RUNS_SCHEMA,
        runs,
        unreadable,
    }
}

/// One run as `runs` lists it (and a choice names it).
fn row(repo: &Repo, state: &RunState, latest: bool, holder: Option<lock::Holder>) -> RunRow {
    let finished = matches!(state.phase, RunPhase::Finished);
    let has_result = finished && state.integration_tip != state.base;
    let merged = match &state.merged {
        Some(m) => Some(m.branch.clone()),
        None if has_result => {
            super::start::users_branch_containing(repo, &state.plan_name, &state.integration_tip)
                .ok()
                .flatten()
        }
        None => None,
    };
    let running_now = holder.is_some() && !state.phase.is_over();
    let wall_ms = state.previous_wall_ms
        + if running_now && matches!(state.phase, RunPhase::Running) {
            now_ms().saturating_sub(state.session_started_at)
        } else {
            0
        };
    RunRow {
        id: state.run_id.clone(),
        plan: state.plan_name.clone(),
        phase: state.phase.seen(running_now).to_string(),
        outcome: finished.then(|| crate::report::summary::status_of(state).to_string()),
        started_at: state.started_at,
        wall_ms,
        merged,
        has_result,
        cost_usd: crate::ledger::Ledger::of(state).total.cost_usd,
        latest,
        held_by: holder.map(|h| format!("`streams {}` (pid {})", h.command, h.pid)),
    }
}
