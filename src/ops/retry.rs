//! `retry`: runs chosen streams of a finished run again, on top of the integration tip as it
//! is, keeping everything already integrated, with the plan as it is now.
//!
//! The plan file is read again and compared with the run's copy ([`plan_now`]): what changed
//! in tasks, agents, checks and other settings is said and applied (to the streams retried:
//! the others do not run again); what a run in progress cannot take (its ownership, its
//! streams) is refused with what to do instead. The streams are then reopened (their
//! unintegrated tasks back to pending, as the plan now lists them; a stopped stream keeps its
//! committed tasks and goes on after them); the engine runs them like any pending stream.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::error::{Error, IoContext, Result};
use crate::git::{Repo, refs};
use crate::ids::Oid;
use crate::layout::RefNames;
pub use crate::ledger::budget::parse_raise as parse_budget;
use crate::plan::{Plan, Prompt};
pub use crate::state::BudgetRaise;
use crate::state::{
    RegisterLock, RetryRecord, RunDir, RunPhase, RunState, StateDir, StateStore, StreamState,
    TaskRecord, TaskState, now_ms,
};

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

/// Reopens `named` (and, with `with_dependents`, what depends on them) in a finished run, as
/// `plan` (the plan as it is now, see [`plan_now`]; `old`, the run's copy) lists their tasks:
/// tasks that are integrated stay, the rest go back to pending (a stopped stream also keeps
/// the tasks it committed, when the plan did not change them, and goes on after them), and
/// whatever their branches hold that the integration branch does not is kept under
/// `RefNames::retried` first. Saved by [`prepare`].
pub fn reopen(
    repo: &Repo,
    old: &Plan,
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
        let stream = plan.stream(&record.name).ok_or_else(|| {
            Error::Internal(format!("stream `{}` is not in the plan", record.name))
        })?;
        let old_stream = old.stream(&record.name);
        let keep = kept_tasks(repo, record, stream, old_stream)?;
        if let Some(branch_tip) = repo.ref_target(&record.branch)?
            && !refs::is_ancestor(repo, &branch_tip, &state.integration_tip)?
            && keep.goes_on_from.as_ref() != Some(&branch_tip)
        {
            let name = names.retried(&state.run_id, &record.name);
            let name = refs::keep_ref(repo, &name, &branch_tip, "streams retry: stream branch")?;
            kept.push((name, branch_tip));
        }
        let record = &mut state.streams[s];
        record.state = StreamState::Pending;
        record.depends_on = stream.depends_on.clone();
        record.tasks.truncate(keep.count);
        record.tasks.extend(
            stream.tasks[keep.count..]
                .iter()
                .map(|t| TaskRecord::pending(t.prompt.summary())),
        );
    }
    Ok(Reopened {
        streams: chosen
            .iter()
            .map(|&s| state.streams[s].name.clone())
            .collect(),
        kept,
    })
}

/// How many of a retried stream's first tasks stay as they are, and the commit its next task
/// starts from when that is its own branch (a stopped stream's committed work).
struct Kept {
    count: usize,
    goes_on_from: Option<Oid>,
}

/// The tasks of a stream being retried that stay: every integrated one, then (a stream that
/// was stopped) the committed ones its branch still holds, as long as the plan did not change
/// them.
fn kept_tasks(
    repo: &Repo,
    record: &crate::state::StreamRecord,
    stream: &crate::plan::Stream,
    old: Option<&crate::plan::Stream>,
) -> Result<Kept> {
    let integrated = record
        .tasks
        .iter()
        .take_while(|t| matches!(t.state, TaskState::Integrated { .. }))
        .count();
    let mut kept = Kept {
        count: integrated,
        goes_on_from: None,
    };
    if !matches!(record.state, StreamState::Stopped { .. }) {
        return Ok(kept);
    }
    let tip = repo.ref_target(&record.branch)?;
    for (t, task) in record.tasks.iter().enumerate().skip(integrated) {
        let TaskState::Committed { end, .. } = &task.state else {
            break;
        };
        let unchanged = old
            .and_then(|o| o.tasks.get(t))
            .zip(stream.tasks.get(t))
            .is_some_and(|(a, b)| same_prompt(&a.prompt, &b.prompt));
        if !unchanged {
            break;
        }
        kept.count = t + 1;
        kept.goes_on_from = Some(end.clone());
    }
    // Only if the branch still ends there: else its tasks run again from the integration tip.
    if kept.goes_on_from.is_some() && kept.goes_on_from != tip {
        kept.count = integrated;
        kept.goes_on_from = None;
    }
    Ok(kept)
}

fn same_prompt(a: &Prompt, b: &Prompt) -> bool {
    match (a, b) {
        (Prompt::Text(a), Prompt::Text(b)) => a == b,
        (Prompt::File(a), Prompt::File(b)) => a == b,
        _ => false,
    }
}

/// `streams run` of the plan file at `path`, as typed at the repository's root (the default
/// plan file needs no argument).
fn run_command(root: &Path, path: &Path) -> String {
    let shown = super::load::shown_path(root, path);
    if shown == "streams.toml" {
        "streams run".to_string()
    } else {
        format!("streams run {}", crate::text::shell_quote(&shown))
    }
}

/// The plan as it is now, for `retry`: read from the file the run started from (or `file`),
/// validated against the repository, and compared with the run's copy.
pub struct PlanNow {
    pub plan: Plan,
    pub path: PathBuf,
    pub text: String,
    /// What changed since the run's copy was taken, one line each (empty: nothing).
    pub changes: Vec<String>,
    /// Its warnings, rendered, when it has any.
    pub warnings: Option<String>,
}

/// Reads the plan as it is now (see [`PlanNow`]). `None` when its file is gone: the run goes
/// on with its copy. A change a run in progress cannot take (its ownership or its streams) is
/// a usage error saying what to do instead; nothing was changed then.
pub fn plan_now(
    repo: &Repo,
    run_dir: &RunDir,
    state: &RunState,
    old: &Plan,
    file: Option<&Path>,
) -> Result<Option<PlanNow>> {
    let path = file.unwrap_or(&state.plan_path).to_path_buf();
    if !path.is_file() {
        return Ok(None);
    }
    let loaded = super::load::load_plan(
        repo,
        super::load::PlanFile {
            cwd: repo.root(),
            arg: Some(&path),
            color: false,
        },
    )?;
    let text =
        std::fs::read_to_string(&path).context(|| format!("could not read {}", path.display()))?;
    let plan =
        super::session::plan_for_run(loaded.plan, state.only.as_deref(), state.machines.is_some());
    let (changes, refused) = compare(old, &plan, run_dir, &path);
    if !refused.is_empty() {
        return Err(Error::usage_with_hint(
            format!(
                "{} changed in ways run {} cannot take while it is in progress:\n{}",
                path.display(),
                state.run_id,
                refused
                    .iter()
                    .map(|r| format!("  {r}"))
                    .collect::<Vec<_>>()
                    .join("\n")
            ),
            format!(
                "put those back to retry this run; or take its result as it is (`streams merge --plan {plan}`) and start a new run of the changed plan (`{run}`; `--restart` keeps this run's result under refs/streams/{plan}/previous/)",
                plan = state.plan_name,
                run = run_command(repo.root(), &path),
            ),
        ));
    }
    Ok(Some(PlanNow {
        plan,
        path,
        text,
        changes,
        warnings: loaded.warnings,
    }))
}

/// What changed from `old` (the run's copy) to `new`: the changes retry applies, and those it
/// refuses (names, streams added or removed, ownership).
fn compare(
    old: &Plan,
    new: &Plan,
    run_dir: &RunDir,
    new_path: &Path,
) -> (Vec<String>, Vec<String>) {
    let mut changes = Vec::new();
    let mut refused = Vec::new();
    if old.name != new.name {
        refused.push(format!(
            "the plan's name is `{}` now, not `{}`: it names the run's branches",
            new.name, old.name
        ));
        return (changes, refused);
    }
    let names = |p: &Plan| -> Vec<String> { p.streams.iter().map(|s| s.name.clone()).collect() };
    let (was, now) = (names(old), names(new));
    let added: Vec<&String> = now.iter().filter(|n| !was.contains(n)).collect();
    let removed: Vec<&String> = was.iter().filter(|n| !now.contains(n)).collect();
    if !added.is_empty() {
        refused.push(format!("stream(s) added: {}", ticked(&added)));
    }
    if !removed.is_empty() {
        refused.push(format!("stream(s) removed: {}", ticked(&removed)));
    }
    let globs = |ps: &[crate::plan::Pattern]| -> Vec<String> {
        ps.iter().map(|p| p.glob.clone()).collect()
    };
    if globs(&old.shared) != globs(&new.shared) {
        refused.push("`shared` changed: the run's work was checked against the old one".into());
    }
    for stream in &new.streams {
        let Some(before) = old.stream(&stream.name) else {
            continue;
        };
        let name = &stream.name;
        if globs(&before.owns) != globs(&stream.owns) {
            refused.push(format!(
                "stream `{name}`'s `owns` changed: its work was checked against the old one"
            ));
        }
        changes.extend(task_changes(old, before, new, stream, run_dir, new_path));
        if old.check_for(before) != new.check_for(stream) {
            changes.push(format!(
                "stream `{name}`: check {} -> {}",
                argv(old.check_for(before)),
                argv(new.check_for(stream))
            ));
        }
        if before.depends_on != stream.depends_on {
            changes.push(format!(
                "stream `{name}`: depends_on [{}] -> [{}]",
                before.depends_on.join(", "),
                stream.depends_on.join(", ")
            ));
        }
        changes.extend(other_changes(
            &format!("stream `{name}`"),
            before,
            stream,
            &["name", "owns", "tasks", "agent", "check", "depends_on"],
        ));
    }
    if old.gate != new.gate {
        changes.push(format!(
            "gate {} -> {}",
            argv(old.gate.as_deref()),
            argv(new.gate.as_deref())
        ));
    }
    changes.extend(other_changes(
        "plan",
        old,
        new,
        &[
            "name",
            "streams",
            "shared",
            "agent",
            "check",
            "gate",
            "base",
            "worktree_root",
        ],
    ));
    (changes, refused)
}

/// A stream's task changes: its tasks' prompts (and prompt files' contents), count, agents.
fn task_changes(
    old: &Plan,
    before: &crate::plan::Stream,
    new: &Plan,
    stream: &crate::plan::Stream,
    run_dir: &RunDir,
    new_path: &Path,
) -> Vec<String> {
    let name = &stream.name;
    let mut changes = Vec::new();
    for (t, task) in stream.tasks.iter().enumerate() {
        let Some(was) = before.tasks.get(t) else {
            changes.push(format!(
                "stream `{name}`: task {} added ({})",
                t + 1,
                task.prompt.summary()
            ));
            continue;
        };
        let file_changed = match (&was.prompt, &task.prompt) {
            (Prompt::File(_), Prompt::File(file)) => {
                let copy = std::fs::read(run_dir.prompt_source_path(name, t)).ok();
                let dir = new_path.parent().unwrap_or(Path::new("."));
                copy != std::fs::read(dir.join(file)).ok()
            }
            _ => false,
        };
        if !same_prompt(&was.prompt, &task.prompt) || file_changed {
            changes.push(format!(
                "stream `{name}`: task {} changed ({})",
                t + 1,
                task.prompt.summary()
            ));
        }
        if old.agent_for(before, was) != new.agent_for(stream, task) {
            changes.push(format!(
                "stream `{name}`: task {}'s agent {}",
                t + 1,
                agent_change(old.agent_for(before, was), new.agent_for(stream, task))
            ));
        }
    }
    if before.tasks.len() > stream.tasks.len() {
        changes.push(format!(
            "stream `{name}`: {} task(s) fewer (it has {} now)",
            before.tasks.len() - stream.tasks.len(),
            stream.tasks.len()
        ));
    }
    changes
}

/// The keys of two serialised values (a plan, a stream) that differ, but `skip`.
fn other_changes<T: serde::Serialize>(what: &str, old: &T, new: &T, skip: &[&str]) -> Vec<String> {
    let (Ok(serde_json::Value::Object(a)), Ok(serde_json::Value::Object(b))) =
        (serde_json::to_value(old), serde_json::to_value(new))
    else {
        return Vec::new();
    };
    let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    keys.into_iter()
        .filter(|k| !skip.contains(&k.as_str()) && a.get(*k) != b.get(*k))
        .map(|k| format!("{what}: `{k}` changed"))
        .collect()
}

fn argv(argv: Option<&[String]>) -> String {
    match argv {
        Some(argv) => format!("`{}`", argv.join(" ")),
        None => "(none)".to_string(),
    }
}

fn agent(agent: Option<&crate::agent::AgentSpec>) -> String {
    match agent {
        Some(crate::agent::AgentSpec::Argv(a)) => argv(Some(a)),
        Some(crate::agent::AgentSpec::Preset(preset)) => match &preset.model {
            Some(model) => format!("preset `{}` (model {model})", preset.cli.name()),
            None => format!("preset `{}`", preset.cli.name()),
        },
        None => "(none)".to_string(),
    }
}

/// How an agent changed: `was -> now`, and when both read alike (the same preset and model),
/// which of the preset's `args` and `env` changed instead. Variables are named, never shown:
/// their values are often keys.
fn agent_change(
    was: Option<&crate::agent::AgentSpec>,
    now: Option<&crate::agent::AgentSpec>,
) -> String {
    let (before, after) = (agent(was), agent(now));
    let (Some(a), Some(b)) = (
        was.and_then(crate::agent::AgentSpec::preset),
        now.and_then(crate::agent::AgentSpec::preset),
    ) else {
        return format!("{before} -> {after}");
    };
    if before != after {
        return format!("{before} -> {after}");
    }
    let mut parts = Vec::new();
    if a.args != b.args {
        let args = |args: &[String]| argv((!args.is_empty()).then_some(args));
        parts.push(format!("args {} -> {}", args(&a.args), args(&b.args)));
    }
    let names = |pick: &dyn Fn(&String) -> bool| -> Vec<&String> {
        a.env
            .keys()
            .chain(b.env.keys())
            .filter(|k| pick(k))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect()
    };
    let added = names(&|k| !a.env.contains_key(k));
    let removed = names(&|k| !b.env.contains_key(k));
    let changed = names(&|k| matches!((a.env.get(k), b.env.get(k)), (Some(x), Some(y)) if x != y));
    for (list, what) in [(added, "added"), (removed, "removed"), (changed, "changed")] {
        if !list.is_empty() {
            parts.push(format!("env {} {what}", ticked(&list)));
        }
    }
    format!("{after}: {}", parts.join(", "))
}

fn ticked(names: &[&String]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Makes the plan as it is now the run's plan: its copy and hash, and its prompt files' copies
/// (the run reads those from then on: `resume` and `continue` included). The settings a run
/// keeps whatever its plan says now (its base, where its workspaces are) stay as they were.
pub fn adopt(run_dir: &RunDir, state: &mut RunState, old: &Plan, now: &mut PlanNow) -> Result<()> {
    now.plan.base = old.base.clone();
    now.plan.worktree_root = old.worktree_root.clone();
    crate::state::store::write_atomic(&run_dir.plan_copy_path(), now.text.as_bytes())
        .context(|| format!("could not write {}", run_dir.plan_copy_path().display()))?;
    super::start::copy_prompt_files(&now.plan, &now.path, run_dir)?;
    state.plan_hash = Some(crate::git::text_hash(&now.text));
    Ok(())
}

/// A retry ready to run: what it reopened, and the plan as it is now when it was read.
pub struct Prepared {
    pub reopened: Reopened,
    /// The plan file and what changed in it since the run started; `None`: its file is gone,
    /// the run's copy is used.
    pub plan_now: Option<(PathBuf, Vec<String>, Option<String>)>,
}

/// Everything `retry` does before its session: the plan as it is now ([`plan_now`], `file`
/// instead of the one the run started from), the streams reopened ([`reopen`]), and the run
/// joining the register of running plans, refused (exit 5) when a plan running now overlaps
/// it. Then the plan is the run's (its copy rewritten) and the state saved as running, this
/// retry recorded; all under the register's lock. `parts.plan` is the plan to run with.
///
/// `budgets` (`--budget`) are raised, and `max_cost` (`--max-cost`) replaces the run's, from
/// this retry on (kept in the state, so `resume` keeps them); a budget naming a stream or task
/// the plan does not have is refused (exit 2) before anything changes.
pub fn prepare(
    parts: &mut super::session::EngineParts,
    named: &[String],
    with_dependents: bool,
    file: Option<&Path>,
    budgets: &[BudgetRaise],
    max_cost: Option<f64>,
) -> Result<Prepared> {
    let old = parts.plan.clone();
    let mut now = plan_now(&parts.repo, &parts.run_dir, &parts.state, &old, file)?;
    let mut overrides = parts.state.budget_overrides.clone();
    overrides.raises.extend(budgets.iter().cloned());
    if max_cost.is_some() {
        overrides.max_cost = max_cost;
    }
    if let Some(now) = &mut now {
        // The engine pairs the plan's streams and the run's by position.
        let order: Vec<String> = parts.state.streams.iter().map(|s| s.name.clone()).collect();
        now.plan
            .streams
            .sort_by_key(|s| order.iter().position(|n| *n == s.name));
        crate::ledger::budget::apply_raises(&mut now.plan, &overrides)
            .map_err(|e| Error::usage(format!("--budget: {e}")))?;
    }
    let mut old = old;
    crate::ledger::budget::apply_raises(&mut old, &overrides)
        .map_err(|e| Error::usage(format!("--budget: {e}")))?;
    let plan = now.as_ref().map_or(&old, |n| &n.plan).clone();
    let reopened = reopen(
        &parts.repo,
        &old,
        &plan,
        &mut parts.state,
        named,
        with_dependents,
    )?;
    let state_dir = StateDir::new(parts.repo.common_dir());
    let register = RegisterLock::acquire(&state_dir)?;
    super::start::check_register(&state_dir, &plan)?;
    let changes = now.as_ref().map(|n| n.changes.clone()).unwrap_or_default();
    if let Some(now) = &mut now {
        adopt(&parts.run_dir, &mut parts.state, &old, now)?;
        parts.plan = now.plan.clone();
    }
    if now.is_none() {
        parts.plan = old.clone();
    }
    parts.state.budget_overrides = overrides;
    parts.state.retries.push(RetryRecord {
        at: now_ms(),
        streams: reopened.streams.clone(),
        plan_changes: changes,
    });
    parts.state.phase = RunPhase::Running;
    StateStore::new(parts.run_dir.clone()).save(&mut parts.state)?;
    drop(register);
    Ok(Prepared {
        reopened,
        plan_now: now.map(|n| (n.path, n.changes, n.warnings)),
    })
}
