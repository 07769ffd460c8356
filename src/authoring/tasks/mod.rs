//! From a task list to a plan: `streams init --from TASKS`.
//!
//! Pure, like the rest of [`crate::authoring`]: it takes the task list's text and a [`RepoView`] (the
//! files tracked at `base`) and returns the plan's text, or every problem found in the list.
//!
//! - [`parse`]: Markdown (spec-kit's `tasks.md`: `- [ ] T012 [P] [US1] Create User model in
//!   src/models/user.py` under `## Phase N` headings; or any checklist) and JSON, into [`Task`]s:
//!   id, the original line, phase, `[P]`, priority, the files named, the ids depended on.
//! - [`group`]: tasks naming the same files (or files under a directory another names) become
//!   one stream; dependencies between tasks become `depends_on` between streams; phases order
//!   the streams that touch each other; ownership patterns are the narrowest that cover a
//!   stream's files without overlapping another's.
//! - [`write`]: the TOML, with a comment above each stream saying which tasks it holds and why.
//!
//! The plan it writes passes [`crate::plan::check`] against the same view (a test holds every
//! fixture to that), so `streams plan` accepts it as it is.

mod graph;
pub mod group;
pub mod parse;
pub mod write;

use std::collections::BTreeSet;
use std::fmt;

pub use group::{GroupedStream, Grouping};
pub use parse::{Format, TaskList};

/// One task read from the list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Task {
    /// As written (`T012`, `3`, `1.2`), or `#N` (its position) when the list gives none.
    pub id: String,
    /// Where it was read, for messages.
    pub at: Location,
    /// The input as the agent will see it: the checklist line without its checkbox (and its
    /// indented continuation lines), or a JSON task's `text`.
    pub text: String,
    /// Index into [`TaskList::phases`].
    pub phase: Option<usize>,
    /// Marked `[P]`: the list says it may run beside the others of its phase.
    pub parallel: bool,
    /// `P0` (most urgent) to `P3`.
    pub priority: Option<u8>,
    /// Paths named, relative to the repository root; a directory ends with `/`.
    pub files: Vec<String>,
    /// Ids this task waits for, as written.
    pub depends_on: Vec<String>,
}

/// Where a task or a problem is in the input.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Location {
    /// 1-based line of a Markdown list.
    Line(usize),
    /// 1-based position of a task in a JSON list.
    Item(usize),
    /// The input as a whole.
    Input,
}

/// A `## Phase N: ...` heading (or a JSON task's `phase`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Phase {
    pub title: String,
    /// A `(Priority: P1)` in the heading: the priority of its tasks that set none.
    pub priority: Option<u8>,
}

/// Something wrong with the task list; each names where it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub at: Location,
    pub message: String,
}

impl Problem {
    pub fn new(at: Location, message: impl Into<String>) -> Self {
        Problem {
            at,
            message: message.into(),
        }
    }
}

/// Every problem found, rendered one per line as `error: FILE:LINE: message`.
pub fn render_problems(problems: &[Problem], file: &str) -> String {
    let mut out = String::new();
    for p in problems {
        let at = match p.at {
            Location::Line(n) => format!("{file}:{n}: "),
            Location::Item(n) => format!("{file}: task {n}: "),
            Location::Input => format!("{file}: "),
        };
        out.push_str(&format!("error: {at}{}\n", p.message));
    }
    out
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Line(n) => write!(f, "line {n}"),
            Location::Item(n) => write!(f, "task {n}"),
            Location::Input => write!(f, "the input"),
        }
    }
}

/// What the task list is read against: the files tracked at `base` and their directories.
/// It also answers [`crate::plan::Repository`], so the generated plan is validated against
/// exactly what it was generated from.
#[derive(Clone, Debug, Default)]
pub struct RepoView {
    /// `base` as it will be written in the plan.
    pub base: String,
    /// What `base` resolved to.
    pub base_commit: String,
    files: BTreeSet<String>,
    dirs: BTreeSet<String>,
}

impl RepoView {
    /// The same view with one more file at `base` (one the person is to write and commit).
    pub fn with_file(&self, path: &str) -> Self {
        RepoView::new(
            self.base.clone(),
            self.base_commit.clone(),
            self.files.iter().cloned().chain([path.to_string()]),
        )
    }

    pub fn new(
        base: impl Into<String>,
        base_commit: impl Into<String>,
        files: impl IntoIterator<Item = String>,
    ) -> Self {
        let files: BTreeSet<String> = files.into_iter().collect();
        let mut dirs = BTreeSet::new();
        for file in &files {
            let mut at = file.as_str();
            while let Some((parent, _)) = at.rsplit_once('/') {
                if !dirs.insert(parent.to_string()) {
                    break;
                }
                at = parent;
            }
        }
        RepoView {
            base: base.into(),
            base_commit: base_commit.into(),
            files,
            dirs,
        }
    }

    pub fn is_file(&self, path: &str) -> bool {
        self.files.contains(path)
    }

    /// `dir` without a trailing `/`; the root (``) always exists.
    pub fn is_dir(&self, dir: &str) -> bool {
        dir.is_empty() || self.dirs.contains(dir)
    }

    /// The tracked files below `dir` (without a trailing `/`).
    pub fn files_under<'a>(&'a self, dir: &str) -> impl Iterator<Item = &'a String> + 'a {
        let prefix = format!("{dir}/");
        self.files
            .range(prefix.clone()..)
            .take_while(move |f| f.starts_with(&prefix))
    }

    pub fn tracked(&self) -> usize {
        self.files.len()
    }
}

impl crate::plan::Repository for RepoView {
    type Error = std::convert::Infallible;

    fn root(&self) -> Option<String> {
        None
    }

    fn resolve(&mut self, rev: &str) -> Result<Option<String>, Self::Error> {
        Ok((rev == self.base).then(|| self.base_commit.clone()))
    }

    fn tracked_files(&mut self, _commit: &str) -> Result<Vec<String>, Self::Error> {
        Ok(self.files.iter().cloned().collect())
    }

    fn prompt_file_exists(&mut self, _path: &str) -> bool {
        // The generated plan has no prompt files.
        false
    }

    /// The view holds the files at `base`, not this machine's PATH or file system: a relative
    /// program must be tracked at `base`; a bare name or an absolute path is taken as found
    /// (`init --from` says itself when the agent CLI it wrote is not on PATH, and `streams plan`
    /// checks it for real).
    fn agent_program(
        &mut self,
        program: &str,
        _commit: &str,
        _path: Option<&str>,
    ) -> Result<crate::plan::ProgramCheck, Self::Error> {
        use crate::plan::ProgramCheck;
        if !program.contains('/') || program.starts_with('/') {
            return Ok(ProgramCheck::Found);
        }
        let relative = program.trim_start_matches("./");
        Ok(if self.is_file(relative) {
            ProgramCheck::Found
        } else {
            ProgramCheck::NotCommitted { in_checkout: false }
        })
    }
}

/// The plan generated from a task list.
#[derive(Clone, Debug)]
pub struct Generated {
    /// The plan's TOML.
    pub text: String,
    pub grouping: Grouping,
    /// Checked-off tasks left out (their ids still satisfy dependencies).
    pub done: Vec<String>,
}

/// What to put in the plan besides what the tasks say.
#[derive(Clone, Debug)]
pub struct Options {
    /// The plan's name (a valid ref component); from the list's title when `None`.
    pub name: Option<String>,
    /// The name when the list has no title (the repository's directory, say); else `tasks`.
    pub default_name: Option<String>,
    /// The task list's file name as the header comment shows it.
    pub source: String,
    /// The `agent` lines to write (as `streams init` writes them).
    pub agent: crate::authoring::init::AgentChoice,
}

/// Reads a task list and writes a plan for it, or returns every problem found.
pub fn generate(
    text: &str,
    format: Format,
    view: &RepoView,
    options: &Options,
) -> Result<Generated, Vec<Problem>> {
    let list = parse::parse(text, format, view)?;
    let grouping = group::group(&list, view)?;
    let name = options
        .name
        .clone()
        .or_else(|| list.title.as_deref().and_then(slug))
        .or_else(|| options.default_name.clone())
        .unwrap_or_else(|| "tasks".to_string());
    let text = write::write(&list, &grouping, &name, view, options);
    Ok(Generated {
        text,
        grouping,
        done: list.done,
    })
}

/// A valid ref component made of `text`'s words: lowercase ASCII letters, digits and `-`, at
/// most 40 characters; `None` if nothing is left.
pub fn slug(text: &str) -> Option<String> {
    let mut out = String::new();
    for c in text.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
        if out.len() >= 40 {
            break;
        }
    }
    let out = out.trim_end_matches('-').to_string();
    (!out.is_empty()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::RepoView;
    use crate::plan::{ProgramCheck, Repository};

    #[test]
    fn agent_programs_are_judged_by_the_files_at_base() {
        let mut view = RepoView::new(
            "HEAD",
            "0".repeat(40),
            ["scripts/agent.sh".to_string(), "src/a.rs".to_string()],
        );
        let mut check = |program: &str| view.agent_program(program, "HEAD", None).unwrap();
        // A relative program runs from the workspace: only what is tracked at base is there.
        assert_eq!(check("scripts/agent.sh"), ProgramCheck::Found);
        assert_eq!(check("./scripts/agent.sh"), ProgramCheck::Found);
        assert_eq!(
            check("./scripts/missing.sh"),
            ProgramCheck::NotCommitted { in_checkout: false }
        );
        // PATH and the file system are not in the view: `init --from` checks its agent itself.
        assert_eq!(check("claude"), ProgramCheck::Found);
        assert_eq!(check("/usr/bin/env"), ProgramCheck::Found);
    }
}
