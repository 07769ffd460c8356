//! Finding the repository and loading the plan: the first step of `plan`, `run` and `demo`.
//!
//! Reads only: the plan file, and from git the base commit and the files tracked there (the
//! facts validation asks for, through [`plan::Repository`]). Nothing is written, whatever the
//! outcome. The plan's warnings come back rendered, for the caller to show as soon as it has
//! the plan.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::git::{self, GitError, Repo};
use crate::ids::Oid;
use crate::plan::{self, CheckError, Plan, ProgramCheck};

pub use crate::report::plan_view::{Analysis, Located};

/// A validated plan, pinned to the commit its `base` named when it was loaded.
pub struct LoadedPlan {
    pub plan: Plan,
    /// The plan file, absolute.
    pub path: PathBuf,
    pub base_commit: Oid,
    /// Its warnings, rendered with file:line:column and carets, when it has any.
    pub warnings: Option<String>,
}

/// The plan file a command names, and how its diagnostics are rendered.
#[derive(Clone, Copy)]
pub struct PlanFile<'a> {
    /// The directory the command runs in (`-C`): a named plan is relative to it.
    pub cwd: &'a Path,
    /// The plan file as named on the command line; `None`: `streams.toml` at the root.
    pub arg: Option<&'a Path>,
    /// Colour in the rendered diagnostics.
    pub color: bool,
}

/// Checks git, finds the repository around `cwd`.
pub fn open_repo(cwd: &Path) -> Result<Repo> {
    git::check_git_version()?;
    Ok(Repo::discover(cwd)?)
}

/// The plan file named on the command line (relative to `-C`), or `streams.toml` at the root.
pub fn plan_path(cwd: &Path, repo: &Repo, arg: Option<&Path>) -> PathBuf {
    match arg {
        Some(path) => cwd.join(path),
        None => repo.root().join("streams.toml"),
    }
}

/// Reads and validates the plan; returns `Error::InvalidPlan` with every problem rendered when
/// it breaks a rule.
pub fn load_plan(repo: &Repo, file: PlanFile) -> Result<LoadedPlan> {
    load_checked(repo, file).map(|(loaded, _)| loaded)
}

/// [`load_plan`], checked against commit `at` instead of the plan's `base` (a CI machine's
/// clone may not have the base branch; it has the commit it was told to start from).
pub fn load_plan_at(repo: &Repo, file: PlanFile, at: &Oid) -> Result<LoadedPlan> {
    load_checked_at(repo, file, Some(at), true).map(|(loaded, _)| loaded)
}

/// [`load_plan_at`], also returning what checking it learned (how its estimates read, for the
/// forecast a machine's run starts with).
pub fn load_checked_plan_at(
    repo: &Repo,
    file: PlanFile,
    at: &Oid,
) -> Result<(LoadedPlan, Analysis)> {
    load_checked_at(repo, file, Some(at), true)
}

/// [`load_plan`] for a plan that runs on other machines (`streams ci github`): the agent programs
/// are installed there, so a bare name or an absolute path is not looked up here. A program
/// committed in the repository is still checked: every machine checks out the same files.
pub fn load_plan_for_elsewhere(repo: &Repo, file: PlanFile) -> Result<LoadedPlan> {
    load_checked_at(repo, file, None, false).map(|(loaded, _)| loaded)
}

/// [`load_plan`], also returning what `streams plan` shows besides the plan.
pub fn load_checked(repo: &Repo, file: PlanFile) -> Result<(LoadedPlan, Analysis)> {
    load_checked_at(repo, file, None, true)
}

/// The plan's names, streams and dependencies, read without the repository (to know where a
/// run starts before checking the plan against that commit). A plan that does not parse gets
/// the full check's messages (and, should that pass, its warnings beside the plan).
pub fn names_only(repo: &Repo, file: PlanFile) -> Result<(Plan, Option<String>)> {
    let path = plan_path(file.cwd, repo, file.arg);
    match read_plan_text(&path)
        .ok()
        .and_then(|text| plan::parse_simple(&text).ok())
    {
        Some(plan) => Ok((plan, None)),
        None => load_plan(repo, file).map(|loaded| (loaded.plan, loaded.warnings)),
    }
}

fn load_checked_at(
    repo: &Repo,
    file: PlanFile,
    at: Option<&Oid>,
    programs_here: bool,
) -> Result<(LoadedPlan, Analysis)> {
    let PlanFile { cwd, arg, color } = file;
    let path = plan_path(cwd, repo, arg);
    let shown_path = shown_path(cwd, &path);
    let text = read_plan_text(&path).map_err(|err| match err {
        PlanReadError::Io(source) if source.kind() == std::io::ErrorKind::NotFound => {
            let hint = if arg.is_none() {
                "create streams.toml at the repository root, or name the plan file: `streams plan PATH`"
            } else {
                "check the path: it is relative to the current directory (or to -C DIR)"
            };
            Error::usage_with_hint(format!("no plan at {shown_path}"), hint)
        }
        PlanReadError::Io(source) => Error::PlanUnreadable {
            path: path.clone(),
            source,
        },
        PlanReadError::TooLarge => Error::usage_with_hint(
            format!("{shown_path} is larger than 1 MiB, the most a plan may be"),
            "a plan is a short TOML file: check that this is the file you meant",
        ),
        PlanReadError::NotAFile(what) => Error::usage_with_hint(
            format!("{shown_path} is {what}, not a plan file"),
            "a plan is read from a regular file: name the TOML file itself",
        ),
    })?;

    let mut facts = GitFacts {
        repo,
        plan_dir: path.parent().map(Path::to_path_buf).unwrap_or_default(),
        at: at.cloned(),
        programs_here,
    };
    match plan::check(&text, &mut facts) {
        Ok(mut checked) => {
            if at.is_none()
                && let Some(warning) = uncommitted_owned(repo, &checked.plan, &path)
            {
                checked.warnings.push(warning);
            }
            let too_long = prompts_past_the_argument_limit(&checked.plan, &facts.plan_dir);
            if !too_long.is_empty() {
                let mut diags = checked.warnings;
                for error in too_long {
                    diags.push(error);
                }
                return Err(Error::InvalidPlan {
                    rendered: diags.render(&text, &shown_path, color),
                    errors: diags.errors(),
                });
            }
            let rendered = (!checked.warnings.is_empty())
                .then(|| checked.warnings.render(&text, &shown_path, color));
            let warnings = checked
                .warnings
                .items
                .iter()
                .map(|d| {
                    let (line, column) = match d.position() {
                        Some(at) => {
                            let (l, c) = line_column(&text, at);
                            (Some(l), Some(c))
                        }
                        None => (None, None),
                    };
                    Located {
                        message: d.message.clone(),
                        line,
                        column,
                    }
                })
                .collect();
            let mut plan = checked.plan;
            with_user_prices(&mut plan)?;
            Ok((
                LoadedPlan {
                    plan,
                    path,
                    base_commit: checked.base_commit.into(),
                    warnings: rendered,
                },
                Analysis {
                    ownership: checked.ownership,
                    estimates: checked.estimates,
                    sparse_files: checked.sparse_files,
                    shown_path,
                    warnings,
                },
            ))
        }
        Err(CheckError::Invalid(diags)) => Err(Error::InvalidPlan {
            rendered: diags.render(&text, &shown_path, color),
            errors: diags.errors(),
        }),
        Err(CheckError::Repository(err)) => Err(err.into()),
    }
}

/// The longest string one argument may be on Linux (`MAX_ARG_STRLEN`, 32 pages): `execve`
/// refuses a longer one with E2BIG, whatever the total.
const MAX_ARGUMENT_BYTES: u64 = 32 * 4096;

/// An error for each task whose agent is given the prompt as an argument (`{prompt}`) while
/// its text alone (inline, or its `prompt_file`) is past [`MAX_ARGUMENT_BYTES`]: the agent could
/// never start, and a run would find out only when it came to that task. streams does not
/// pass such a prompt another way by itself: where the program reads it (an argument, a file,
/// its stdin) is the program's to say, and `{prompt_file}` says "a file" in the plan.
fn prompts_past_the_argument_limit(plan: &plan::Plan, plan_dir: &Path) -> Vec<plan::Diagnostic> {
    let mut errors = Vec::new();
    for stream in &plan.streams {
        for (i, task) in stream.tasks.iter().enumerate() {
            let as_argument = plan
                .agent_for(stream, task)
                .is_some_and(|agent| match agent {
                    plan::AgentSpec::Argv(argv) => argv.iter().any(|a| a.contains("{prompt}")),
                    // Every preset's CLI is given the prompt as an argument (`agent::preset`).
                    plan::AgentSpec::Preset(_) => true,
                });
            if !as_argument {
                continue;
            }
            let (bytes, what) = match &task.prompt {
                plan::Prompt::Text(text) => (text.len() as u64, "its text".to_string()),
                plan::Prompt::File(file) => (
                    std::fs::metadata(plan_dir.join(file)).map_or(0, |m| m.len()),
                    format!("its prompt file {}", file.display()),
                ),
            };
            if bytes > MAX_ARGUMENT_BYTES {
                errors.push(
                    plan::Diagnostic::error(format!(
                        "task {} of stream `{}` gives its agent the prompt as one argument (`{{prompt}}`), and {what} alone is {} KiB: the system refuses an argument longer than {} KiB",
                        i + 1,
                        stream.name,
                        bytes / 1024,
                        MAX_ARGUMENT_BYTES / 1024,
                    ))
                    .help("pass it as a file: `{prompt_file}` in the agent's argv (with the flag your agent reads a prompt file with), or shorten the task"),
                );
            }
        }
    }
    errors
}

/// The most paths [`uncommitted_owned`] names; the others are counted.
const UNCOMMITTED_SHOWN: usize = 5;

/// A warning when files the plan's streams own (or share) have uncommitted changes in this
/// checkout, untracked files included: a run starts every stream from the pinned `base`
/// commit, so no agent sees those edits, and a person who made them expects otherwise. The
/// plan file itself is left out (it is read from the checkout). `None` when there are none, or
/// when `git status` cannot say (that is not the plan's problem; the run will tell).
fn uncommitted_owned(repo: &Repo, plan: &plan::Plan, plan_path: &Path) -> Option<plan::Diagnostic> {
    use crate::ownership::{Owner, Ownership};
    let root = repo.workdir()?;
    let plan_file = plan_path
        .strip_prefix(root)
        .ok()
        .map(|p| p.to_string_lossy().replace('\\', "/"));
    let ownership = Ownership::new(plan);
    let owned: Vec<String> =
        crate::git::worktree::uncommitted_under(root, owned_dirs(plan).as_deref())
            .ok()?
            .into_iter()
            .filter(|path| plan_file.as_deref() != Some(path.as_str()))
            .filter_map(|path| match ownership.owner_of(&path) {
                Owner::Stream(index) => Some(format!("{path} ({})", plan.streams[index].name)),
                Owner::Shared => Some(format!("{path} (shared)")),
                Owner::Nobody => None,
            })
            .collect();
    if owned.is_empty() {
        return None;
    }
    let mut shown = owned
        .iter()
        .take(UNCOMMITTED_SHOWN)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if owned.len() > UNCOMMITTED_SHOWN {
        shown.push_str(&format!(" and {} more", owned.len() - UNCOMMITTED_SHOWN));
    }
    Some(
        plan::Diagnostic::warning(format!(
            "{} that streams own {} uncommitted changes in this checkout: {shown}",
            plan::diagnostic::count(owned.len(), "file"),
            if owned.len() == 1 { "has" } else { "have" },
        ))
        .note(format!(
            "a run starts every stream from `base` ({}), without these changes: no agent sees them",
            plan.base
        ))
        .help(
            "commit them first for the agents to build on them (or stash them to leave them out)",
        ),
    )
}

/// The most paths [`owned_dirs`] hands git; past it, `git status` looks everywhere.
const OWNED_DIRS_MAX: usize = 1000;

/// Where the paths the plan's streams own or share lie: each pattern's literal start (see
/// [`plan::pattern::literal_prefix`]), for `git status` to look there only (the paths it finds
/// are then matched against the patterns themselves). `None` when a pattern can match anywhere
/// (its start is empty) or there are too many to name.
fn owned_dirs(plan: &plan::Plan) -> Option<Vec<String>> {
    let mut dirs = std::collections::BTreeSet::new();
    for pattern in plan
        .streams
        .iter()
        .flat_map(|s| &s.owns)
        .chain(&plan.shared)
    {
        let prefix = plan::pattern::literal_prefix(&pattern.glob);
        if prefix.is_empty() {
            return None;
        }
        dirs.insert(prefix.to_string());
    }
    (dirs.len() <= OWNED_DIRS_MAX).then(|| dirs.into_iter().collect())
}

/// Why a plan's file could not be read.
#[derive(Debug)]
pub enum PlanReadError {
    Io(std::io::Error),
    /// Larger than [`plan::MAX_PLAN_BYTES`].
    TooLarge,
    /// Not a regular file (what it is instead): a FIFO without a writer would block the read
    /// for good, a device could be endless.
    NotAFile(&'static str),
}

/// Reads a plan file, refusing one larger than [`plan::MAX_PLAN_BYTES`] without reading more
/// than that, and anything but a regular file at once: the file is opened without blocking (a
/// FIFO with no writer would hold `open` forever) and judged by what was opened, not by a name
/// that could change in between.
pub fn read_plan_text(path: &Path) -> Result<String, PlanReadError> {
    use std::io::Read;
    use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NONBLOCK | nix::libc::O_NOCTTY)
        .open(path)
        .map_err(PlanReadError::Io)?;
    let kind = file.metadata().map_err(PlanReadError::Io)?.file_type();
    if !kind.is_file() {
        let what = if kind.is_dir() {
            "a directory"
        } else if kind.is_fifo() {
            "a named pipe (FIFO)"
        } else if kind.is_socket() {
            "a socket"
        } else if kind.is_char_device() || kind.is_block_device() {
            "a device"
        } else {
            "something other than a regular file"
        };
        return Err(PlanReadError::NotAFile(what));
    }
    let mut text = String::new();
    file.take(plan::MAX_PLAN_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(PlanReadError::Io)?;
    if text.len() as u64 > plan::MAX_PLAN_BYTES {
        return Err(PlanReadError::TooLarge);
    }
    Ok(text)
}

/// The repository as the validator sees it: base resolution and tracked files from git, prompt
/// files from the file system next to the plan.
struct GitFacts<'a> {
    repo: &'a Repo,
    plan_dir: PathBuf,
    /// The commit to check against, whatever the plan's `base` says.
    at: Option<Oid>,
    /// False when the agents run on other machines: programs outside the repository are not
    /// looked for on this one.
    programs_here: bool,
}

impl plan::Repository for GitFacts<'_> {
    type Error = GitError;

    fn root(&self) -> Option<String> {
        self.repo
            .workdir()
            .map(|dir| dir.to_string_lossy().into_owned())
    }

    fn resolve(&mut self, rev: &str) -> Result<Option<String>, GitError> {
        if let Some(at) = &self.at {
            return Ok(Some(at.to_string()));
        }
        match self.repo.resolve_commit(rev) {
            Ok(id) => Ok(Some(id.to_string())),
            Err(GitError::BadRevision { .. }) => Ok(None),
            Err(err) => Err(err),
        }
    }

    fn tracked_files(&mut self, commit: &str) -> Result<Vec<String>, GitError> {
        // libgit2 found the repository, but if the git program cannot list a commit libgit2 just
        // resolved, git cannot read this repository: say that, not "a command failed".
        self.repo.tracked_files(commit).map_err(|err| match err {
            GitError::Command { stderr, .. } => GitError::Unreadable {
                dir: self.repo.root().to_path_buf(),
                message: stderr,
            },
            err => err,
        })
    }

    fn prompt_file_exists(&mut self, path: &str) -> bool {
        self.plan_dir.join(path).is_file()
    }

    fn agent_program(
        &mut self,
        program: &str,
        commit: &str,
        search_path: Option<&str>,
    ) -> Result<ProgramCheck, GitError> {
        use std::os::unix::fs::PermissionsExt;
        let executable = |path: &Path| {
            std::fs::metadata(path)
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        };
        let path = Path::new(program);
        if !self.programs_here && (path.is_absolute() || !program.contains('/')) {
            return Ok(ProgramCheck::Found);
        }
        if path.is_absolute() {
            return Ok(if executable(path) {
                ProgramCheck::Found
            } else if path.exists() {
                ProgramCheck::NotExecutable
            } else {
                ProgramCheck::Missing
            });
        }
        if !program.contains('/') {
            // As the agent's spawn looks it up: on the PATH its environment will have.
            let found = search_path
                .map(std::ffi::OsString::from)
                .or_else(|| std::env::var_os("PATH"))
                .is_some_and(|dirs| {
                    std::env::split_paths(&dirs).any(|dir| executable(&dir.join(program)))
                });
            return Ok(if found {
                ProgramCheck::Found
            } else {
                ProgramCheck::NotOnPath
            });
        }
        // Relative to the workspace root, which holds what is committed at `commit`.
        let mut parts: Vec<&str> = Vec::new();
        for part in program.split('/') {
            match part {
                "" | "." => {}
                ".." => {
                    if parts.pop().is_none() {
                        return Ok(ProgramCheck::NotCommitted { in_checkout: false });
                    }
                }
                part => parts.push(part),
            }
        }
        let relative = parts.join("/");
        let in_checkout = self.repo.root().join(&relative).is_file();
        // 100755 is an executable file, 120000 a symbolic link.
        Ok(match self.repo.mode_at(commit, &relative)?.as_deref() {
            Some("100755") | Some("120000") => ProgramCheck::Found,
            Some("100644") => ProgramCheck::CommittedNotExecutable,
            _ => ProgramCheck::NotCommitted { in_checkout },
        })
    }
}

/// `path` relative to `cwd` when it is inside it, else as is (absolute).
pub fn shown_path(cwd: &Path, path: &Path) -> String {
    let canonical = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let (cwd, full) = (canonical(cwd), canonical(path));
    match full.strip_prefix(&cwd) {
        Ok(rel) if !rel.as_os_str().is_empty() => rel.display().to_string(),
        _ => full.display().to_string(),
    }
}

/// 1-based line and column (in characters) of a byte offset.
fn line_column(text: &str, at: usize) -> (usize, usize) {
    let at = at.min(text.len());
    let before = &text[..at];
    let line = before.matches('\n').count() + 1;
    let start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[start..].chars().count() + 1)
}

/// Adds the user's `[prices]` (`ledger::config`) under the plan's own; a user config that does
/// not read is a usage error naming it.
pub fn with_user_prices(plan: &mut Plan) -> Result<()> {
    let Some(path) = crate::ledger::config::path() else {
        return Ok(());
    };
    let user = crate::ledger::config::user_prices(&path).map_err(|e| {
        Error::usage_with_hint(
            format!("streams' user config does not read: {e}"),
            "it holds `[prices.\"MODEL\"]` tables (`input`, `output`, `cache_read`, `cache_write` in USD per million tokens), as a plan's `[prices]`",
        )
    })?;
    crate::ledger::config::add_user_prices(&mut plan.prices, user);
    Ok(())
}
