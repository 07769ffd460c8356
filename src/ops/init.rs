//! `streams init`: the files a new plan is made of, written without ever overwriting anything,
//! and `init --from TASKS`, a plan built from a task list and checked the way `streams plan`
//! checks one. The text itself is [`crate::authoring`]'s (pure); this reads what it is built
//! from (the files tracked at `HEAD`, the task list, PATH) and writes the result.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::authoring::init::{self, RepoShape};
pub use crate::authoring::init::{AgentChoice, AgentCli, SCRIPT_PATH};
use crate::authoring::{examples, members, tasks};
use crate::error::{Error, Result};
use crate::git::Repo;
use crate::plan::{self, CheckError, schedule};
use crate::report::init_view::FromTasks;

/// The example plans built in: each one's name and what it is.
pub fn examples() -> Vec<(&'static str, String)> {
    examples::EXAMPLES
        .iter()
        .map(|e| (e.name, e.summary()))
        .collect()
}

pub fn is_example(name: &str) -> bool {
    examples::example(name).is_some()
}

/// `--agent NAME` writes that agent only; without it, every agent CLI known is written, the
/// first found on PATH active.
pub fn agent_choice(agent: Option<AgentCli>) -> AgentChoice {
    match agent {
        Some(agent) => AgentChoice::Only(agent),
        None => AgentChoice::All {
            active: AgentCli::ALL
                .into_iter()
                .find(|cli| cli.program().is_some_and(on_path)),
        },
    }
}

/// The agent a new plan runs: `--agent NAME`, else the first agent CLI on PATH. Refused (a
/// usage error, nothing written) when there is neither: a plan without an agent cannot run, and
/// `init` and `init --from` (written or `--dry-run`) say so the same way. `again` is the
/// command to run instead, without its `--agent`.
pub fn required_agent(agent: Option<AgentCli>, again: &str) -> Result<AgentChoice> {
    let choice = agent_choice(agent);
    if choice == (AgentChoice::All { active: None }) {
        return Err(Error::usage_with_hint(
            "no agent CLI (claude, codex, aider) was found on PATH: the plan needs one to run its tasks; nothing was written",
            format!(
                "name the one to write: `{again} --agent claude` (or codex, aider, or script for a script of your own)"
            ),
        ));
    }
    Ok(choice)
}

fn on_path(program: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::env::var_os("PATH").is_some_and(|dirs| {
        std::env::split_paths(&dirs).any(|dir| {
            std::fs::metadata(dir.join(program))
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
    })
}

/// Every file `init` writes for a plan at `path`: an example and the files it refers to, or a
/// commented plan for this repository with the lines of `agent` (see [`required_agent`]).
/// Refused, naming it, when one of them exists already: `init` never overwrites a file.
pub fn files(
    repo: &Repo,
    cwd: &Path,
    path: &Path,
    example: Option<&str>,
    agent: Option<AgentCli>,
) -> Result<Vec<(PathBuf, String)>> {
    let mut files: Vec<(PathBuf, String)> = Vec::new();
    match example.and_then(examples::example) {
        Some(example) => {
            files.push((path.to_path_buf(), example.text.to_string()));
            let dir = path.parent().unwrap_or(Path::new("."));
            for (rel, text) in example.files {
                files.push((dir.join(rel), text.to_string()));
            }
        }
        None => {
            let shape = repo_shape(repo)?;
            let agent = required_agent(agent, "streams init")?;
            files.push((path.to_path_buf(), init::generate(&shape, agent)));
            // The script the plan names, unless the person has one there already.
            let script = repo.root().join(init::SCRIPT_PATH);
            if agent == AgentChoice::Only(AgentCli::Script) && !script.exists() {
                files.push((script, init::SCRIPT_TEXT.to_string()));
            }
        }
    }
    if let Some((existing, _)) = files.iter().find(|(p, _)| p.exists()) {
        return Err(Error::usage_with_hint(
            format!(
                "{} already exists: streams init never overwrites a file",
                super::load::shown_path(cwd, existing)
            ),
            "remove it first, or name another plan file: `streams init plans/new.toml`",
        ));
    }
    Ok(files)
}

/// Writes one of [`files`]: its directory made first, the file created new (something that
/// appeared since the check is not overwritten either), a script (`#!`) executable.
pub fn write_file(file: &Path, text: &str) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::io(format!("could not create {}", dir.display()), e))?;
    }
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(if text.starts_with("#!") { 0o755 } else { 0o644 })
        .open(file)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(|e| Error::io(format!("could not write {}", file.display()), e))
}

/// What the generated plan is built from: the files tracked at HEAD and its root manifests,
/// the branch, the name.
fn repo_shape(repo: &Repo) -> Result<RepoShape> {
    let head = repo.resolve_commit("HEAD").map_err(|_| {
        Error::usage_with_hint(
            "the repository has no commits yet: a plan divides the files of a commit",
            "commit something first, then run `streams init` again",
        )
    })?;
    let tracked = repo.tracked_files(&head)?;
    let tree = repo.commit_info(&head)?.tree;
    let manifests = members::ROOT_MANIFESTS
        .iter()
        .filter(|name| tracked.iter().any(|t| t == *name))
        .filter_map(|name| {
            let text = repo.blob_at(&tree, name)?;
            Some((
                name.to_string(),
                String::from_utf8_lossy(&text).into_owned(),
            ))
        })
        .collect();
    let branch = repo.current_branch();
    let dir_name = repo
        .root()
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "plan".into());
    Ok(RepoShape {
        dir_name,
        branch,
        tracked,
        manifests,
    })
}

/// `HEAD`: a plan built from a task list starts from whatever is checked out when it runs.
const BASE: &str = "HEAD";

/// What `init --from` was asked.
pub struct FromRequest<'a> {
    pub cwd: &'a Path,
    /// The task list, as typed.
    pub list: &'a Path,
    /// Where to write the plan, as typed (`None`: `streams.toml` at the root).
    pub plan: Option<&'a Path>,
    pub agent: AgentChoice,
    /// Predict the makespan with this many agents at once.
    pub jobs: usize,
    /// Print the plan rather than write it.
    pub dry_run: bool,
}

/// A plan built from a task list: its text, where it goes, and the summary to show.
pub struct FromList {
    pub text: String,
    pub target: PathBuf,
    /// Where `--agent script`'s script goes with it (none there yet).
    pub script: Option<PathBuf>,
    pub summary: FromTasks,
}

/// Reads the task list and builds the plan from it against the files tracked at `HEAD`,
/// checked as `streams plan` checks one (a plan that fails is a bug of streams, said so).
pub fn from_tasks(repo: &Repo, req: &FromRequest) -> Result<FromList> {
    let path = req.cwd.join(req.list);
    let shown = super::load::shown_path(req.cwd, &path);
    let text = read_task_list(&path, &shown)?;
    let base_commit = repo.resolve_commit(BASE)?;
    let view = tasks::RepoView::new(BASE, base_commit, repo.tracked_files(BASE)?);
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let options = tasks::Options {
        name: None,
        default_name: repo
            .root()
            .file_name()
            .and_then(|n| tasks::slug(&n.to_string_lossy())),
        source: req.list.display().to_string(),
        agent: req.agent,
    };
    let format = tasks::Format::detect(&file_name, &text);
    let generated =
        tasks::generate(&text, format, &view, &options).map_err(|problems| Error::InvalidPlan {
            rendered: tasks::render_problems(&problems, &shown),
            errors: problems.len(),
        })?;
    // The same check `streams plan` runs. A failure is a bug here, not the user's.
    // The script `--agent script` names is the person's to write: `streams plan` checks it.
    let mut check_view = match req.agent {
        AgentChoice::Only(AgentCli::Script) => view.with_file(init::SCRIPT_PATH),
        _ => view.clone(),
    };
    let checked = match plan::check(&generated.text, &mut check_view) {
        Ok(checked) => checked,
        Err(CheckError::Invalid(diags)) => {
            return Err(Error::Internal(format!(
                "the plan built from {shown} does not pass validation (a bug in streams; please report it with the task list):\n{}",
                diags.render(&generated.text, "generated plan", false)
            )));
        }
        Err(CheckError::Repository(never)) => match never {},
    };
    let target = super::load::plan_path(req.cwd, repo, req.plan);
    let target_shown = super::load::shown_path(req.cwd, &target);
    let script = Some(repo.root().join(init::SCRIPT_PATH))
        .filter(|script| req.agent == AgentChoice::Only(AgentCli::Script) && !script.exists());
    let plan = &checked.plan;
    let sim = schedule::simulate(plan, req.jobs);
    let summary = FromTasks {
        list_shown: shown,
        list_arg: req.list.display().to_string(),
        tasks: plan.streams.iter().map(|s| s.tasks.len()).sum(),
        done: generated.done.len(),
        dry_run: req.dry_run,
        // A plan not at the default place is named to `plan` and `run`.
        plan_arg: match req.plan {
            Some(_) => format!(" {}", crate::report::shell_quote(&target_shown)),
            None => String::new(),
        },
        target_shown,
        streams: plan.streams.len(),
        unassigned: generated
            .grouping
            .streams
            .iter()
            .filter(|s| s.unassigned)
            .count(),
        new_paths: new_paths(&generated, &checked.warnings),
        missing_program: match req.agent {
            AgentChoice::Only(cli) => cli.program().filter(|program| !on_path(program)),
            AgentChoice::All { .. } => None,
        },
        script_shown: script
            .as_ref()
            .map(|script| super::load::shown_path(req.cwd, script)),
        waves: schedule::waves(plan).len(),
        jobs: sim.jobs,
        makespan: sim.makespan,
        total_work: sim.total_work,
    };
    Ok(FromList {
        text: generated.text,
        target,
        script,
        summary,
    })
}

fn read_task_list(path: &Path, shown: &str) -> Result<String> {
    std::fs::read_to_string(path).map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            Error::usage_with_hint(
                format!("no task list at {shown}"),
                "give the path of a tasks.md, a Markdown checklist or a JSON list of tasks (relative to the current directory)",
            )
        } else {
            Error::io(format!("could not read the task list {shown}"), source)
        }
    })
}

/// How many owned patterns match no tracked file because the tasks create those files:
/// expected here, so counted rather than shown one by one. The placeholder of a stream whose
/// tasks name no file matches nothing too, but no task creates it: REVIEW says what to do.
fn new_paths(generated: &tasks::Generated, warnings: &plan::Diagnostics) -> usize {
    let placeholders: Vec<String> = generated
        .grouping
        .streams
        .iter()
        .filter(|s| s.unassigned)
        .flat_map(|s| s.owns.iter().map(|p| format!("`{p}`")))
        .collect();
    warnings
        .items
        .iter()
        .filter(|d| d.message.contains("matches no file"))
        .filter(|d| !placeholders.iter().any(|p| d.message.contains(p.as_str())))
        .count()
}

/// Writes the plan built from a task list to `list.target`, whole or not at all (a temporary
/// file beside it, linked into place), and never over an existing file; then the agent script
/// it names, if it brings one.
pub fn write_from_tasks(list: &FromList) -> Result<()> {
    let shown = &list.summary.target_shown;
    write_new(&list.target, &list.text).map_err(|source| {
        if source.kind() == std::io::ErrorKind::AlreadyExists {
            Error::usage_with_hint(
                format!("{shown} already exists; nothing was written"),
                format!(
                    "move it away, or print the new plan with `streams init --from {} --dry-run`",
                    list.summary.list_arg
                ),
            )
        } else {
            Error::io(format!("could not write {shown}"), source)
        }
    })?;
    match &list.script {
        Some(script) => write_file(script, init::SCRIPT_TEXT),
        None => Ok(()),
    }
}

fn write_new(target: &Path, text: &str) -> std::io::Result<()> {
    let dir = target.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".streams.toml.")
        .tempfile_in(dir)?;
    tmp.write_all(text.as_bytes())?;
    tmp.as_file().sync_all()?;
    tmp.persist_noclobber(target).map_err(|e| e.error)?;
    Ok(())
}
