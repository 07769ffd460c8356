//! What `run`, `resume`, `continue`, `skip`, `retry` and `integrate` share below the command
//! line: finding the run under the lock, checking it is in a phase the command applies to,
//! building the engine from its parts and driving it ([`Session`]), and writing the run's report
//! once a session ends ([`conclude`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use crate::coordinator::Unresolved;
use crate::error::{Error, Finish, IoContext, Result};
use crate::exec::{self, Engine, EngineInput};
use crate::git::Repo;
use crate::plan::Plan;
use crate::report::{Reporter, junit, summary};
use crate::state::{Journal, RunDir, RunLock, RunPhase, RunState, StateDir, StreamState};

/// The run a command acts on, under its plan's lock.
pub struct Current {
    pub repo: Repo,
    pub lock: RunLock,
    pub run_dir: RunDir,
    pub state: RunState,
    /// Which run was picked when there was a choice (see [`super::runs::Picked`]).
    pub choice: Option<crate::report::runs_view::Choice>,
}

/// Picks the run `selector` names (or the one that fits `want` best, see
/// [`super::runs::pick`]), takes its plan's lock and loads it again under the lock, for
/// `command`.
pub fn current(
    repo: Repo,
    selector: &super::runs::Selector,
    want: super::runs::Want,
    command: &str,
) -> Result<Current> {
    let state_dir = StateDir::new(repo.common_dir());
    // A run stopped as it started (its state never saved) is no run to pick, but it is what a
    // person just did: said so rather than "no run", or than the run before it.
    let stillborn = |plan: Option<&str>| {
        selector
            .run
            .is_none()
            .then(|| state_dir.stillborn(plan))
            .flatten()
    };
    let picked = match super::runs::pick(&repo, selector, want, command) {
        Ok(picked) => picked,
        Err(e) => {
            return Err(match stillborn(selector.plan.as_deref()) {
                Some(id) => Error::state(
                    format!(
                        "there is no run to {command}: {}",
                        crate::report::hints::stopped_as_it_started(&id)
                    ),
                    "start it again with `streams run`",
                ),
                None => e,
            });
        }
    };
    // `resume` means the run that was just stopped, not the finished one of its plan before it
    // (other commands may still act on that one).
    if command == "resume"
        && check_resumable(&picked.state).is_err()
        && let Some(id) = stillborn(Some(&picked.state.plan_name))
    {
        return Err(Error::state(
            format!(
                "nothing to resume: {}",
                crate::report::hints::stopped_as_it_started(&id)
            ),
            "start it again with `streams run`",
        ));
    }
    // A command that does not apply is refused before it takes the lock (and again under it,
    // by the caller): a refusal never holds the plan's lock, which says a command is at work
    // on the run (the web view follows an action as running once it does).
    refuse_early(&picked.state, want, command)?;
    let mut lock = RunLock::acquire(&state_dir, &picked.state.plan_name, command)?;
    // What it was before the lock is not what it is now: another command may have moved it.
    let state = picked.dir.load()?;
    lock.set_run(&state.run_id, command);
    Ok(Current {
        repo,
        lock,
        run_dir: picked.dir,
        state,
        choice: picked.choice,
    })
}

/// The refusal of the commands that need a run in some phase (`resume`, `continue`, `skip`,
/// `abort`), as they give it under the lock.
fn refuse_early(state: &RunState, want: super::runs::Want, command: &str) -> Result<()> {
    use super::runs::Want;
    match want {
        Want::Resumable => check_resumable(state),
        Want::Halted => check_continuable(state),
        Want::NotOver => check_not_over(state, command),
        Want::Any | Want::Finished | Want::Unmerged => Ok(()),
    }
}

/// The error for a command that needs a run that is not over.
pub fn over(state: &RunState, command: &str) -> Error {
    Error::state(
        format!(
            "nothing to {command}: run {} of plan `{}` is {}",
            state.run_id,
            state.plan_name,
            state.phase.name()
        ),
        "start a new run with `streams run`",
    )
}

/// Only a plan's last run can go on: an earlier one's branches and workspaces are the later
/// run's now.
fn check_latest(current: &Current) -> Result<()> {
    let state_dir = StateDir::new(current.repo.common_dir());
    match state_dir.last_of_plan(&current.state.plan_name) {
        Some((_, last)) if last.run_id != current.state.run_id => Err(Error::state(
            format!(
                "run {} of plan `{}` was followed by run {}: its branches and workspaces are that run's now",
                current.state.run_id, current.state.plan_name, last.run_id
            ),
            format!(
                "act on the last run (`--run {}`), or look at this one with `streams show --run {}`",
                last.run_id, current.state.run_id
            ),
        )),
        _ => Ok(()),
    }
}

/// `resume` picks up a run that was interrupted, nothing else.
pub fn check_resumable(state: &RunState) -> Result<()> {
    match &state.phase {
        RunPhase::Running | RunPhase::Interrupted { .. } => Ok(()),
        RunPhase::Halted => Err(Error::state(
            format!(
                "run {} is halted, not interrupted: {}",
                state.run_id,
                crate::report::hints::parked_list(state)
            ),
            crate::report::hints::halted(state, true),
        )),
        _ => Err(over(state, "resume")),
    }
}

/// `continue` records the resolution of a parked stream of a halted run, nothing else.
pub fn check_continuable(state: &RunState) -> Result<()> {
    match &state.phase {
        RunPhase::Halted => Ok(()),
        RunPhase::Running | RunPhase::Interrupted { .. } => Err(Error::state(
            format!(
                "run {} is not halted on a conflict: it was interrupted",
                state.run_id
            ),
            "run `streams resume` to go on",
        )),
        _ => Err(over(state, "continue")),
    }
}

/// The parked stream `continue` is about: the one named, or the only one parked. Returns its
/// index.
pub fn parked_stream(state: &RunState, name: Option<&str>) -> Result<usize> {
    let parked = state.parked();
    let names = || {
        parked
            .iter()
            .map(|(_, s, _)| s.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    match name {
        Some(name) => match state.stream_by_name(name) {
            Some((s, record)) if matches!(record.state, StreamState::Parked(_)) => Ok(s),
            Some((_, record)) => Err(Error::usage_with_hint(
                format!(
                    "stream `{name}` is not parked on a conflict (it is {})",
                    crate::report::stream_word(&record.state, None)
                ),
                format!("the parked streams are: {}", names()),
            )),
            None => Err(Error::usage_with_hint(
                format!("there is no stream `{name}` in this run"),
                format!("the parked streams are: {}", names()),
            )),
        },
        None => match parked.as_slice() {
            [(s, _, _)] => Ok(*s),
            [] => Err(Error::state(
                format!("run {} has no stream parked on a conflict", state.run_id),
                "`streams status` shows where it stands",
            )),
            many => Err(Error::usage_with_hint(
                format!(
                    "{} streams are parked on conflicts: {}",
                    many.len(),
                    names()
                ),
                "name the one you resolved: `streams continue STREAM` (they go in any order)",
            )),
        },
    }
}

/// `skip` and `abort` work on any run that is not over.
pub fn check_not_over(state: &RunState, command: &str) -> Result<()> {
    if state.phase.is_over() {
        return Err(over(state, command));
    }
    Ok(())
}

/// Everything an engine is built from.
pub struct EngineParts {
    pub repo: Repo,
    pub plan: Plan,
    pub run_dir: RunDir,
    pub state: RunState,
    pub journal: Journal,
}

/// The parts of the current run: its plan (the copy taken when it started) and its journal.
/// The lock is handed back to be held for as long as the engine runs.
pub fn engine_parts(current: Current) -> Result<(EngineParts, RunLock)> {
    check_latest(&current)?;
    let plan = plan_from_copy(&current.run_dir, &current.state)?;
    let journal = open_journal(&current.run_dir)?;
    Ok((
        EngineParts {
            repo: current.repo,
            plan,
            run_dir: current.run_dir,
            state: current.state,
            journal,
        },
        current.lock,
    ))
}

pub fn open_journal(run_dir: &RunDir) -> Result<Journal> {
    Journal::open(&run_dir.journal_path()).context(|| {
        format!(
            "could not open the journal {}",
            run_dir.journal_path().display()
        )
    })
}

/// The plan a run started with, from the copy in its directory, refused when it no longer
/// matches the hash taken when the run started (an agent could have widened its own `owns`).
pub fn plan_from_copy(run_dir: &RunDir, state: &RunState) -> Result<Plan> {
    let path = run_dir.plan_copy_path();
    let text = std::fs::read_to_string(&path).map_err(|source| Error::PlanUnreadable {
        path: path.clone(),
        source,
    })?;
    if let Some(expected) = &state.plan_hash
        && crate::git::text_hash(&text) != *expected
    {
        return Err(Error::state(
            format!(
                "the run's copy of its plan, {}, was changed since the run started; streams will not go on with a plan it did not check",
                path.display()
            ),
            "put the copy back as it was, or `streams abort` the run (its work is kept) and start a new one",
        ));
    }
    // It was validated against the repository when the run started; only the rules that need
    // no repository are checked again (a newer streams may be stricter).
    let plan = crate::plan::parse_simple(&text).map_err(|rendered| Error::InvalidPlan {
        rendered,
        errors: 1,
    })?;
    let mut plan = plan_for_run(plan, state.only.as_deref(), state.machines.is_some());
    // Checked when the run started; should it no longer read, the run goes on pricing from
    // the plan alone rather than refuse `status`, `resume` or `continue` over a price table.
    let _ = super::load::with_user_prices(&mut plan);
    // The budgets `retry --budget` raised hold for the rest of the run.
    crate::ledger::budget::apply_raises(&mut plan, &state.budget_overrides).map_err(|e| {
        Error::state(
            format!("the run's raised budgets no longer fit its plan: {e}"),
            "`streams abort` the run (its work is kept) and start a new one",
        )
    })?;
    Ok(plan)
}

/// The plan as a run works from it: cut down to the streams it covers (`only`), and for a run
/// spread over machines integrated once per stream (`sync = "task"` lets other streams see a
/// task's work early, which one stream alone on a machine cannot use; once per stream keeps its
/// branch one chain of task commits that the central integration checks against its manifest).
pub fn plan_for_run(plan: Plan, only: Option<&[String]>, machines: bool) -> Plan {
    let mut plan = match only {
        Some(names) => plan.only(names),
        None => plan,
    };
    if machines {
        plan.sync = crate::plan::SyncPoint::Stream;
    }
    plan
}

/// What the sandbox says before a session of a run that already started (`resume`, `continue`,
/// ...): that `auto` runs unconfined here, say (a task asking for `landlock` fails on its own,
/// with the reason). `run` checks it before starting, where a failure stops it.
pub fn sandbox_warnings(parts: &EngineParts) -> Vec<String> {
    exec::sandbox::preflight(&parts.plan).unwrap_or_default()
}

/// A session of the engine over a run, announced to its reporters and ready to go.
pub struct Session {
    engine: Engine,
    run_dir: RunDir,
}

/// The session of `command` over `parts`, reporting to `reporter` (`jobs` overrides the run's
/// agents at once, for `resume --jobs`). The reporters see the run's first event now.
pub fn start(
    parts: EngineParts,
    reporter: Box<dyn Reporter>,
    command: &str,
    jobs: Option<usize>,
) -> Session {
    let run_dir = parts.run_dir.clone();
    let mut engine = engine(parts, reporter);
    if let Some(jobs) = jobs {
        engine.set_jobs(jobs);
    }
    engine.announce(command);
    Session { engine, run_dir }
}

/// Why `continue` cannot record the resolution yet, with what the message needs to say so.
pub struct NotResolved {
    pub why: Unresolved,
    /// The parked stream.
    pub stream: String,
    pub plan: String,
    pub resolution_worktree: PathBuf,
    /// The files that conflicted.
    pub files: Vec<String>,
}

impl NotResolved {
    fn of(state: &RunState, s: usize, why: Unresolved) -> Option<NotResolved> {
        let StreamState::Parked(park) = &state.streams[s].state else {
            return None;
        };
        Some(NotResolved {
            why,
            stream: state.streams[s].name.clone(),
            plan: state.plan_name.clone(),
            resolution_worktree: park.resolution_worktree.clone(),
            files: park.files.clone(),
        })
    }
}

/// A resolution of parked stream `s` that is not finished, found before a session is built (a
/// check that cannot run is left to the session, which says why). Once the integration moved
/// on since the stream parked, the session decides: the conflict may have gone.
pub fn unfinished_resolution(current: &Current, s: usize, force: bool) -> Option<NotResolved> {
    let StreamState::Parked(park) = &current.state.streams[s].state else {
        return None;
    };
    if park.ours != current.state.integration_tip {
        return None;
    }
    match crate::coordinator::check_resolution(
        &current.repo,
        &park.resolution_worktree,
        park,
        force,
    ) {
        Ok(Err(why)) => NotResolved::of(&current.state, s, why),
        _ => None,
    }
}

/// What `continue STREAM` came to.
pub enum Resolved {
    /// The stream's work landed (the engine said how): the run goes on.
    Landed,
    /// Not resolved yet; the stream stays parked.
    NotResolved(NotResolved),
    /// The resolution conflicts with what was integrated since the stream parked: it stays
    /// parked with the new conflict laid out, and the resolution kept on `kept`.
    ParkedAgain {
        stream: String,
        files: Vec<String>,
        resolution_worktree: PathBuf,
        kept: String,
        tip: crate::ids::Oid,
    },
}

impl Session {
    pub fn state(&self) -> &RunState {
        self.engine.state()
    }

    /// Runs the session to its end.
    pub fn run(self) -> Result<Ended> {
        let Session { engine, run_dir } = self;
        let ended = runtime()?.block_on(engine.run())?;
        Ok(Ended { ended, run_dir })
    }

    /// Puts a run that was interrupted back together (see `exec::recover`), then runs it.
    pub fn recover_and_run(self) -> Result<Ended> {
        let Session {
            mut engine,
            run_dir,
        } = self;
        let ended = runtime()?.block_on(async {
            engine.recover().await?;
            engine.run().await
        })?;
        Ok(Ended { ended, run_dir })
    }

    /// Records the person's resolution of parked stream `s` (`continue`) on the integration as
    /// it is by then; what is not resolved yet comes back instead, and the stream stays parked.
    pub fn resolve(&mut self, s: usize, force: bool) -> Result<Resolved> {
        let resolution = self.engine.resolve(s, force)?;
        let state = self.engine.state();
        match resolution {
            exec::Resolution::Landed { .. } => Ok(Resolved::Landed),
            exec::Resolution::Unresolved(why) => NotResolved::of(state, s, why)
                .map(Resolved::NotResolved)
                .ok_or_else(|| {
                    Error::Internal("a resolution was checked on a stream not parked".into())
                }),
            exec::Resolution::ParkedAgain { files } => {
                let StreamState::Parked(park) = &state.streams[s].state else {
                    return Err(Error::Internal(
                        "a stream parked again is not parked".into(),
                    ));
                };
                let stream = state.streams[s].name.clone();
                Ok(Resolved::ParkedAgain {
                    kept: crate::layout::RefNames::new(&state.plan_name).resolution(&stream),
                    stream,
                    files,
                    resolution_worktree: park.resolution_worktree.clone(),
                    tip: state.integration_tip.clone(),
                })
            }
        }
    }

    /// Leaves `stream` out of the halted run (`skip`); the session then goes on with whatever
    /// can move.
    pub fn skip(&mut self, stream: &str) -> Result<()> {
        self.engine.skip(stream)
    }
}

/// A session that ended, before its report is written.
pub struct Ended {
    ended: exec::Session,
    run_dir: RunDir,
}

impl Ended {
    /// A run that had ended already, ended again without running (an integration that nothing
    /// new arrived for): the same report, said again.
    pub fn already(state: RunState, run_dir: RunDir, reporter: Box<dyn Reporter>) -> Ended {
        Ended {
            ended: exec::Session {
                finish: finished(&state),
                state,
                reporter,
            },
            run_dir,
        }
    }
}

/// How a finished run ended, read from its state (the engine's own rule, for `integrate`,
/// which can end one without running the engine).
pub fn finished(state: &RunState) -> Finish {
    exec::settled(state, false)
}

/// A session's end with its report written: what the command tells the person.
pub struct Concluded {
    pub finish: Finish,
    pub state: RunState,
    pub run_dir: RunDir,
    /// Still open: the run's last event goes to it.
    pub reporter: Box<dyn Reporter>,
    pub report: summary::RunReport,
    /// A line for each report that could not be written.
    pub not_written: Vec<String>,
    /// ` --plan NAME` when other plans ran here too, for the hints that name a command
    /// ([`super::runs::plan_flag`]).
    pub plan_flag: String,
}

/// Clears what the reporters drew and writes the run's report (see [`write_report`]); `junit`
/// is where `--junit` asked for a copy, absolute.
pub fn conclude(ended: Ended, junit: Option<&Path>) -> Concluded {
    let Ended {
        ended:
            exec::Session {
                finish,
                state,
                mut reporter,
            },
        run_dir,
    } = ended;
    reporter.finish();
    let (report, not_written) = write_report(&state, &run_dir, junit);
    let plan_flag = super::runs::plan_flag(&state);
    Concluded {
        plan_flag,
        finish,
        state,
        run_dir,
        reporter,
        report,
        not_written,
    }
}

/// The engine for a session over `parts`, reporting to `reporter`.
fn engine(parts: EngineParts, reporter: Box<dyn Reporter>) -> Engine {
    let plan_dir = parts
        .state
        .plan_path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let identity_env = crate::git::commit::identity_env(&parts.repo);
    Engine::new(EngineInput {
        repo: parts.repo,
        plan: parts.plan,
        plan_dir,
        run_dir: parts.run_dir,
        state: parts.state,
        journal: Arc::new(parts.journal),
        reporter,
        identity_env,
    })
}

pub fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::io("could not start the async runtime", e))
}

/// The run's report as it stands, written to `report.json`, `report.md`, `report.html` and
/// `report.xml` (JUnit) in its directory, the JUnit report also to `junit` (`--junit PATH`,
/// absolute). A report that cannot be written is not fatal: what was not written comes back beside it, one line each.
pub fn write_report(
    state: &RunState,
    run_dir: &RunDir,
    junit: Option<&Path>,
) -> (summary::RunReport, Vec<String>) {
    let files = Repo::discover(&state.repo_root).ok().and_then(|repo| {
        state
            .streams
            .iter()
            .map(|s| {
                let ranges: Vec<_> = s.tasks.iter().filter_map(|t| t.state.range()).collect();
                crate::git::changes::distinct_files_changed(&repo, &ranges).ok()
            })
            .collect::<Option<Vec<usize>>>()
    });
    let report = summary::build(state, summary::status_of(state), files.as_deref());
    let mut not_written = Vec::new();
    if let Err(e) = summary::write_files(&report, state, run_dir) {
        not_written.push(format!(
            "could not write the report in {}: {e}",
            run_dir.path().display()
        ));
    }
    // report.html, the static twin of `streams ui`, beside report.md.
    if let Err(e) = super::ui::write_html(state, run_dir) {
        not_written.push(format!("could not write report.html: {e}"));
    }
    not_written.extend(write_junit(state, run_dir, junit));
    (report, not_written)
}

/// `report.xml` in the run directory and the copy `--junit` asked for; what failed, one line each.
fn write_junit(state: &RunState, run_dir: &RunDir, junit: Option<&Path>) -> Vec<String> {
    let xml = match junit::render(state, &crate::report::span_log_tail) {
        Ok(xml) => xml,
        Err(e) => return vec![format!("could not write the JUnit report: {e}")],
    };
    let in_run_dir = run_dir.report_xml_path();
    std::iter::once(in_run_dir.as_path())
        .chain(junit)
        .filter_map(|path| {
            let written = path
                .parent()
                .map_or(Ok(()), std::fs::create_dir_all)
                .and_then(|()| crate::state::store::write_atomic(path, xml.as_bytes()));
            written
                .err()
                .map(|e| format!("could not write the JUnit report {}: {e}", path.display()))
        })
        .collect()
}
