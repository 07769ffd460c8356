//! Plans: TOML text in, validated [`Plan`] out, plus the schedule analysis behind `streams plan`.
//!
//! The layers, each in its module:
//!
//! - [`raw`]: syntax, unknown keys, types and value formats, by walking the spanned TOML by hand
//!   so that every problem is collected (serde would stop at the first);
//! - [`validate`]: the rules between values (names, dependencies and cycles, agents, patterns)
//!   and against the repository (base, ownership of the tracked files);
//! - [`owners`] and [`pattern`]: the ownership rules and glob semantics;
//! - [`sparse`]: the sparse checkout of a stream that declares `reads`;
//! - [`schedule`]: waves, critical path, the longest-remaining-path order, the makespan
//!   simulation;
//! - [`diagnostic`]: problems with spans, rendered with file:line:column and carets;
//! - [`learn`]: estimates from the history of past runs, what-if over `jobs`, bottlenecks.
//!
//! Writing plans (`streams init`, `init --from TASKS`) is the other direction, and lives beside
//! this module in [`crate::authoring`].
//!
//! This module is pure: it does no I/O. What it needs to know about the repository (does `base`
//! resolve, which files are tracked there, does a prompt file exist, can an agent program be
//! started) it asks through the [`Repository`] trait, which `ops::load` implements with `git`.

pub mod diagnostic;
pub mod learn;
pub mod model;
pub mod owners;
pub mod pattern;
pub mod raw;
pub mod schedule;
pub mod sparse;
pub mod validate;

pub use diagnostic::{Diagnostic, Diagnostics, Severity};
pub use model::*;
pub use owners::OwnershipSummary;
pub use sparse::Sparse;

use serde::Serialize;

/// How the tasks `streams init` writes begin: a plan still holding one is warned about.
pub const PLACEHOLDER_TASK: &str = "Describe the first change to make";

/// What validation needs to know about the repository and the file system.
pub trait Repository {
    /// An environment failure (git broke, the repository cannot be read): it ends the check.
    type Error;

    /// The repository's root as an absolute path, to recognise absolute patterns into it.
    fn root(&self) -> Option<String>;

    /// The commit `rev` names, or `None` if it names none.
    fn resolve(&mut self, rev: &str) -> Result<Option<String>, Self::Error>;

    /// Every file tracked at `commit`, relative to the root, `/`-separated.
    fn tracked_files(&mut self, commit: &str) -> Result<Vec<String>, Self::Error>;

    /// Whether a task's `prompt_file` (as written: relative to the plan's directory) exists.
    fn prompt_file_exists(&mut self, path: &str) -> bool;

    /// Whether an agent's program (`agent[0]` as written, no placeholders) can be started in a
    /// stream's workspace, a checkout of `commit`: a bare name is looked up on PATH (`path`
    /// when the plan's `env` sets one, else this process's), an absolute path on this machine,
    /// a relative path among the files committed at `commit` (the only files a fresh workspace
    /// has).
    fn agent_program(
        &mut self,
        program: &str,
        commit: &str,
        path: Option<&str>,
    ) -> Result<ProgramCheck, Self::Error>;
}

/// What [`Repository::agent_program`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProgramCheck {
    Found,
    /// A bare name that no directory on PATH holds as an executable file.
    NotOnPath,
    /// An absolute path to nothing.
    Missing,
    /// An absolute path to something that is not an executable file.
    NotExecutable,
    /// A relative path with no file at `base`. `in_checkout`: the user's checkout has it
    /// (untracked, or added since `base`).
    NotCommitted {
        in_checkout: bool,
    },
    /// A relative path committed without the executable bit.
    CommittedNotExecutable,
}

/// How estimates are to be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EstimateUnit {
    /// Some estimate was a duration: every number is seconds.
    Seconds,
    /// Plain numbers only (or none: one unit per task).
    Units,
}

/// A plan that passed every rule, with what checking it learned.
#[derive(Debug)]
pub struct Checked {
    pub plan: Plan,
    /// `base`, resolved.
    pub base_commit: String,
    pub ownership: OwnershipSummary,
    pub estimates: EstimateUnit,
    /// Per stream: files in its sparse workspace at base (`None`: a whole checkout).
    pub sparse_files: Vec<Option<usize>>,
    /// Problems that do not stop a run (a pattern that matches nothing yet, ...).
    pub warnings: Diagnostics,
}

#[derive(Debug)]
pub enum CheckError<E> {
    /// The plan breaks at least one rule; every problem found, warnings included, in file order.
    Invalid(Diagnostics),
    /// The repository could not answer.
    Repository(E),
}

/// Validates a plan's text against a repository.
pub fn check<R: Repository>(text: &str, repo: &mut R) -> Result<Checked, CheckError<R::Error>> {
    let parsed = raw::parse(text);
    let mut diags = Diagnostics::default();
    diags.items.extend(parsed.local.items);
    let mut facts = None;
    match parsed.structural {
        None => {
            diags.items.extend(parsed.missing.items);
            facts = Some(
                validate::validate(&parsed.file, repo, &mut diags)
                    .map_err(CheckError::Repository)?,
            );
        }
        // Past an unclosed array or header the recovered document is a guess: keep what was
        // found before it, which is real, and skip the rules that need the whole plan.
        Some(cutoff) => diags
            .items
            .retain(|d| d.position().is_some_and(|p| p < cutoff)),
    }
    // A value with a syntax error was recovered as something; what else is said about its line
    // would only repeat the syntax error, or be wrong.
    let line = |at: usize| text[..at.min(text.len())].matches('\n').count();
    let broken: Vec<usize> = parsed
        .syntax
        .items
        .iter()
        .filter_map(|d| d.position().map(line))
        .collect();
    diags
        .items
        .retain(|d| d.position().is_none_or(|p| !broken.contains(&line(p))));
    // Absence errors about the whole file ("no [plan] table", "no streams") carry no position;
    // after a syntax error they are most often its echo (the recovered document lost what the
    // broken line swallowed), and the syntax error is what to fix first.
    if !parsed.syntax.items.is_empty() {
        diags.items.retain(|d| d.position().is_some());
    }
    diags.items.extend(parsed.syntax.items);
    diags.sort();
    match facts {
        Some((Some(plan), facts)) if !diags.has_errors() => Ok(Checked {
            plan,
            base_commit: facts.base_commit.unwrap_or_default(),
            ownership: facts.ownership,
            estimates: facts.estimates,
            sparse_files: facts.sparse_files,
            warnings: diags,
        }),
        _ => Err(CheckError::Invalid(diags)),
    }
}

/// A repository with no files, where every revision resolves and every prompt file exists: for
/// checking a plan's own rules without one (tests, tools).
pub struct NoRepository;

impl Repository for NoRepository {
    type Error = std::convert::Infallible;

    fn root(&self) -> Option<String> {
        None
    }

    fn resolve(&mut self, _rev: &str) -> Result<Option<String>, Self::Error> {
        Ok(Some("0".repeat(40)))
    }

    fn tracked_files(&mut self, _commit: &str) -> Result<Vec<String>, Self::Error> {
        Ok(Vec::new())
    }

    fn prompt_file_exists(&mut self, _path: &str) -> bool {
        true
    }

    fn agent_program(
        &mut self,
        _program: &str,
        _commit: &str,
        _path: Option<&str>,
    ) -> Result<ProgramCheck, Self::Error> {
        Ok(ProgramCheck::Found)
    }
}

/// Parses and validates a plan without a repository (every rule except those about tracked
/// files and `base`). The error is the rendered diagnostics, for tests and tools.
pub fn parse_simple(text: &str) -> Result<Plan, String> {
    match check(text, &mut NoRepository) {
        Ok(checked) => Ok(checked.plan),
        Err(CheckError::Invalid(diags)) => Err(diags.render(text, "plan", false)),
        Err(CheckError::Repository(never)) => match never {},
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn defaults_are_applied() {
        let plan = parse_simple(
            "[plan]\nname = \"p\"\nagent = [\"a\", \"{prompt}\"]\n[[stream]]\nname = \"s\"\nowns = [\"/src/**\"]\ntasks = [\"t\"]\n",
        )
        .unwrap();
        assert_eq!(plan.base, DEFAULT_BASE);
        assert_eq!(plan.merge, MergeStrategy::Rebase);
        assert_eq!(plan.sync, SyncPoint::Stream);
        assert_eq!(plan.grace, DEFAULT_GRACE);
        assert_eq!(plan.retry_backoff, DEFAULT_RETRY_BACKOFF);
        assert_eq!(plan.retries, 0);
        assert_eq!(plan.jobs, None);
        assert_eq!(plan.timeout, None);
        let stream = &plan.streams[0];
        assert_eq!(stream.owns[0].text, "/src/**");
        assert_eq!(stream.owns[0].glob, "src/**");
        assert_eq!(stream.priority, 0);
        assert_eq!(
            plan.estimate_for(stream, &stream.tasks[0]),
            DEFAULT_ESTIMATE
        );
    }

    #[test]
    fn every_key_is_read() {
        let plan = parse_simple(
            r#"
[plan]
name = "p"
base = "main"
jobs = 3
agent = ["a", "{prompt}"]
merge = "squash"
sync = "task"
shared = ["Cargo.lock"]
timeout = "30m"
idle_timeout = "5m"
grace = "3s"
retries = 2
retry_on = [75, 124]
retry_backoff = "2s"
worktree_root = "../wt"
env = { A = "1" }

[[stream]]
name = "s"
owns = ["src/**"]
depends_on = []
agent = ["b"]
timeout = "10m"
idle_timeout = "1m"
retries = 1
env = { B = "2" }
priority = 5
estimate = "2m"
tasks = ["first", { prompt = "second", estimate = 3 }]

[[stream.task]]
prompt_file = "third.md"
agent = ["c"]
timeout = "1h"
estimate = "1h"
"#,
        )
        .unwrap();
        assert_eq!(plan.base, "main");
        assert_eq!(plan.jobs, Some(3));
        assert_eq!(plan.merge, MergeStrategy::Squash);
        assert_eq!(plan.sync, SyncPoint::Task);
        assert_eq!(plan.shared[0].glob, "Cargo.lock");
        assert_eq!(plan.timeout, Some(Duration::from_secs(1800)));
        assert_eq!(plan.idle_timeout, Some(Duration::from_secs(300)));
        assert_eq!(plan.grace, Duration::from_secs(3));
        assert_eq!(plan.retries, 2);
        assert_eq!(plan.retry_on, vec![75, 124]);
        assert_eq!(plan.retry_backoff, Duration::from_secs(2));
        assert_eq!(
            plan.worktree_root.as_deref(),
            Some(std::path::Path::new("../wt"))
        );
        let s = &plan.streams[0];
        assert_eq!(s.priority, 5);
        assert_eq!(s.retries, Some(1));
        assert_eq!(s.estimate, Some(120.0));
        assert_eq!(plan.env_for(s).len(), 2);
        // Tasks in file order, whichever way they were written.
        let summaries: Vec<String> = s.tasks.iter().map(|t| t.prompt.summary()).collect();
        assert_eq!(summaries, ["first", "second", "prompt from third.md"]);
        assert_eq!(plan.estimate_for(s, &s.tasks[0]), 120.0);
        assert_eq!(plan.estimate_for(s, &s.tasks[1]), 3.0);
        assert_eq!(plan.estimate_for(s, &s.tasks[2]), 3600.0);
        assert_eq!(
            plan.agent_for(s, &s.tasks[0]),
            Some(&AgentSpec::Argv(vec!["b".to_string()]))
        );
        assert_eq!(
            plan.agent_for(s, &s.tasks[2]),
            Some(&AgentSpec::Argv(vec!["c".to_string()]))
        );
        assert_eq!(
            plan.timeout_for(s, &s.tasks[2]),
            Some(Duration::from_secs(3600))
        );
        assert_eq!(plan.idle_timeout_for(s), Some(Duration::from_secs(60)));
    }

    #[test]
    fn sandbox_keys_are_read_and_streams_add_to_the_plan() {
        let plan = parse_simple(
            r#"
[plan]
name = "p"
agent = ["a"]
sandbox = "auto"
sandbox_writable = ["~/.cache", "/var/tmp/x"]

[[stream]]
name = "s"
owns = ["src/**"]
tasks = ["t"]
sandbox = "landlock"
sandbox_writable = ["~"]

[[stream]]
name = "u"
owns = ["lib/**"]
tasks = ["t"]
"#,
        )
        .unwrap();
        let (s, u) = (&plan.streams[0], &plan.streams[1]);
        assert_eq!(plan.sandbox_for(s), SandboxMode::Landlock);
        assert_eq!(plan.sandbox_for(u), SandboxMode::Auto);
        assert_eq!(
            plan.sandbox_writable_for(s),
            ["~/.cache", "/var/tmp/x", "~"]
        );
        assert_eq!(plan.sandbox_writable_for(u), ["~/.cache", "/var/tmp/x"]);
        let off = parse_simple(
            "[plan]\nname = \"p\"\nagent = [\"a\"]\n[[stream]]\nname = \"s\"\nowns = [\"a\"]\ntasks = [\"t\"]\n",
        )
        .unwrap();
        assert_eq!(off.sandbox_for(&off.streams[0]), SandboxMode::Off);
    }

    #[test]
    fn errors_are_rendered_with_positions() {
        let err = parse_simple("[plan]\nname = \"p\"\njobz = 1\n").unwrap_err();
        assert!(err.contains("--> plan:3:1"), "{err}");
        assert!(err.contains("did you mean `jobs`?"), "{err}");
        assert!(err.contains("the plan has no streams"), "{err}");
    }
}

#[cfg(test)]
mod syntax_tests {
    use super::parse_simple;

    #[test]
    fn a_syntax_error_is_not_followed_by_absence_errors_it_caused() {
        // "garbage here" swallows the `[plan]` after it in the recovered document; saying the
        // plan has no [plan] table and no streams would send the user looking for the wrong thing.
        let err = parse_simple(
            "garbage here\n[plan]\nname = \"p\"\nagent = [\"a\"]\n[[stream]]\nname = \"s\"\nowns = [\"a\"]\ntasks = [\"t\"]\n",
        )
        .unwrap_err();
        assert!(err.contains("TOML syntax"), "{err}");
        assert!(!err.contains("has no"), "{err}");
        assert!(err.contains(": 1 error;"), "{err}");
    }
}
