//! `streams ci github`: the workflow that spreads a plan over CI jobs (the work is in
//! [`crate::ci`], which is pure), and the file system around it: where the plan file is
//! relative to the repository, and writing the workflow whole.

use std::path::Path;

pub use crate::ci::Options;
use crate::error::{Error, Result};
use crate::git::Repo;

use super::load::LoadedPlan;

/// A workflow written for a plan.
pub struct Workflow {
    pub text: String,
    /// What the workflow cannot keep of the plan, one line each (for warnings).
    pub notes: Vec<String>,
    pub stages: usize,
    /// Matrix entries over every stage: one per stream.
    pub stream_jobs: usize,
}

/// How runners install streams when `--install` does not say: the command, and a note when
/// it may not be what runs here.
pub struct Install {
    pub command: String,
    pub note: Option<String>,
}

/// What this streams was installed from, as `cargo install` recorded it beside the binary
/// (`<root>/bin/streams` and `<root>/.crates2.json`): the same release, or the same commit of
/// the same repository, so every job runs what wrote the workflow. Anything else (a build from
/// a checkout, a local path) falls back to this version's release on crates.io, and says so.
pub fn default_install() -> Install {
    let exe = std::env::current_exe().ok();
    let record = exe
        .as_deref()
        .and_then(|exe| {
            exe.parent()?
                .parent()
                .map(|root| root.join(".crates2.json"))
        })
        .and_then(|path| std::fs::read_to_string(path).ok());
    let bin = exe
        .as_deref()
        .and_then(|e| e.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "streams".into());
    let found = record.and_then(|text| crate::ci::install_from_record(&text, &bin));
    let release = crate::ci::release_install();
    let why = match found {
        Some(Ok(command)) => {
            return Install {
                command,
                note: None,
            };
        }
        Some(Err(place)) => {
            format!("this streams was installed from {place}, which runners do not have")
        }
        None => format!(
            "this streams was not installed by `cargo install` (it runs from {})",
            exe.as_deref()
                .map_or("an unknown place".into(), |e| e.display().to_string())
        ),
    };
    Install {
        note: Some(format!(
            "{why}: the workflow installs the release of this version, `{release}`; to install your build instead, give --install (e.g. `--install 'cargo install --locked --git URL --rev COMMIT {}'`)",
            crate::ci::PACKAGE
        )),
        command: release,
    }
}

/// What to say about files the plan's agents name that runners will not have: a relative path
/// not committed at the plan's base (the agent runs in a checkout of it), an absolute path
/// into this checkout (runners check out elsewhere), or one outside it that is not the
/// system's.
pub fn agent_file_notes(repo: &Repo, loaded: &LoadedPlan) -> Vec<String> {
    let root = repo.root();
    let tracked: std::collections::BTreeSet<String> = repo
        .tracked_files(&loaded.base_commit)
        .unwrap_or_default()
        .into_iter()
        .collect();
    let system = ["/usr/", "/bin/", "/sbin/", "/lib/", "/lib64/", "/etc/"];
    let mut notes = Vec::new();
    for (word, stream) in crate::ci::agent_paths(&loaded.plan) {
        let path = Path::new(&word);
        let problem = if path.is_absolute() {
            if !path.exists() || system.iter().any(|s| word.starts_with(s)) {
                continue;
            }
            let canonical = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
            let root = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
            match canonical.strip_prefix(&root) {
                Ok(rel) => format!(
                    "an absolute path into this checkout, which runners check out elsewhere: name it relative to the repository ({})",
                    rel.display()
                ),
                Err(_) => "which is outside the repository: no runner has it unless --setup puts it there (or commit it, named relative to the repository)".to_string(),
            }
        } else {
            let rel = word.trim_start_matches("./");
            if !root.join(rel).is_file() || tracked.contains(rel) {
                continue;
            }
            format!(
                "which is not committed at the plan's base ({}): runners check out the repository only; commit it",
                crate::text::short(&loaded.base_commit)
            )
        };
        notes.push(format!(
            "the agent of stream `{stream}` names {word}, {problem}"
        ));
    }
    notes
}

/// The plan file as every job names it: relative to the repository root, `/`-separated; a
/// plan outside the repository keeps its `../` (the generator refuses it).
pub fn plan_path(repo: &Repo, loaded: &LoadedPlan) -> String {
    let canonical = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let (root, path) = (canonical(repo.root()), canonical(&loaded.path));
    match path.strip_prefix(&root) {
        Ok(rel) => rel.to_string_lossy().replace('\\', "/"),
        Err(_) => format!("../{}", path.display()),
    }
}

/// The GitHub Actions workflow for `loaded`; a usage error listing every problem when the plan
/// cannot be spread over CI jobs.
pub fn github(repo: &Repo, loaded: &LoadedPlan, options: &Options) -> Result<Workflow> {
    let spread = crate::ci::spread(&loaded.plan, options).map_err(|refusal| {
        let problems: Vec<String> = refusal.problems.iter().map(|p| format!("  {p}")).collect();
        Error::usage_with_hint(
            format!(
                "the plan cannot be spread over CI jobs:\n{}",
                problems.join("\n")
            ),
            "change the plan (or the options) as said, then run `streams ci github` again; nothing was written",
        )
    })?;
    Ok(Workflow {
        text: crate::ci::github::workflow(&loaded.plan, options, &spread),
        notes: spread
            .notes
            .iter()
            .cloned()
            .chain(agent_file_notes(repo, loaded))
            .collect(),
        stages: spread.stages.len(),
        stream_jobs: spread.stages.iter().map(Vec::len).sum(),
    })
}

/// Writes the workflow to `path`, whole or not at all, with the mode any new file gets (others
/// read it: git, CI).
pub fn write(path: &Path, text: &str) -> Result<()> {
    crate::state::store::write_atomic(path, text.as_bytes())
        .map_err(|e| Error::io(format!("could not write {}", path.display()), e))
}
