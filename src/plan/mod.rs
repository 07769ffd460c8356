//! Plans: TOML text in, validated [`Plan`] out, plus the schedule analysis behind `streams plan`.
//!
//! The layers, each in its module:
//!
//! - [`raw`]: syntax, unknown keys, types and value formats, by walking the spanned TOML by hand
//!   so that every problem is collected (serde would stop at the first);
//! - [`validate`]: the rules between values (names, dependencies and cycles, agents, patterns)
//!   and against the repository (base, ownership of the tracked files);
//! - [`owners`] and [`pattern`]: the ownership rules and glob semantics;
//! - [`schedule`]: waves, critical path, the longest-remaining-path order, the makespan
//!   simulation;
//! - [`diagnostic`]: problems with spans, rendered with file:line:column and carets.
//!
//! This module is pure: it does no I/O. What it needs to know about the repository (does `base`
//! resolve, which files are tracked there, does a prompt file exist) it asks through the
//! [`Repository`] trait, which `cli::load` implements with `git`.

pub mod diagnostic;
pub mod model;
pub mod owners;
pub mod pattern;
pub mod raw;
pub mod schedule;
pub mod validate;

pub use diagnostic::{Diagnostic, Diagnostics, Severity};
pub use model::*;
pub use owners::OwnershipSummary;

use serde::Serialize;

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
    diags.items.extend(parsed.syntax.items);
    diags.sort();
    match facts {
        Some((Some(plan), facts)) if !diags.has_errors() => Ok(Checked {
            plan,
            base_commit: facts.base_commit.unwrap_or_default(),
            ownership: facts.ownership,
            estimates: facts.estimates,
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
