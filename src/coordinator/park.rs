//! Parking a stream on a conflict: the conflict bundle (each side's diff, the file with markers, a
//! README) and the resolution worktree a person resolves it in.

use std::path::{Path, PathBuf};

use similar::TextDiff;

use super::resolution::create_resolution_worktree;
use super::{ConflictFound, TaskRange, one_line, task_list};
use crate::error::IoContext;
use crate::git::Repo;
use crate::git::merge::{ConflictEntry, MergeOutcome};
use crate::report::conflict::{ConflictReadme, conflict_readme};

/// What a person needs to resolve a conflict, written when its stream parks.
pub struct ParkInput<'a> {
    pub stream: &'a str,
    pub tasks: &'a [TaskRange],
    pub plan_name: &'a str,
    pub integration_ref: &'a str,
    pub conflict: &'a ConflictFound,
    pub bundle_dir: &'a Path,
    pub resolution_worktree: &'a Path,
    pub run_id: &'a str,
    /// The worktree is detached at the conflict's integration tip rather than on the
    /// integration branch: the integration goes on while a person resolves (see
    /// [`create_resolution_worktree`]).
    pub detached: bool,
}

/// Writes the bundle and creates the resolution worktree. Returns the conflicted paths.
pub fn write_park(repo: &Repo, input: &ParkInput) -> crate::error::Result<Vec<String>> {
    let MergeOutcome::Conflict {
        tree,
        entries,
        messages,
        hints,
    } = &input.conflict.merge
    else {
        return Ok(Vec::new());
    };
    let files = input.conflict.merge.conflicted_paths();
    let labels = Labels::new(input);
    // Worded as it always was, though no git command is involved.
    let said = Said { messages, hints };
    write_bundle(repo, input, tree, entries, &said, &files, &labels).context(|| {
        format!(
            "`git write conflict bundle` failed in {}",
            input.bundle_dir.display()
        )
    })?;
    create_resolution_worktree(repo, input, tree, entries, &files, &labels)?;
    Ok(files)
}

/// merge-tree labels conflict markers with the commit ids it was given; people read names.
pub(super) struct Labels {
    replacements: Vec<(String, String)>,
}

impl Labels {
    pub(super) fn new(input: &ParkInput) -> Labels {
        let c = input.conflict;
        Labels {
            replacements: vec![
                (
                    format!("<<<<<<< {}", c.ours),
                    "<<<<<<< integration".to_string(),
                ),
                (
                    format!(">>>>>>> {}", c.theirs),
                    format!(">>>>>>> {} ({})", input.stream, task_list(input.tasks)),
                ),
                (format!("||||||| {}", c.base), "||||||| base".to_string()),
            ],
        }
    }

    pub(super) fn apply(&self, bytes: &[u8]) -> Vec<u8> {
        let Ok(text) = std::str::from_utf8(bytes) else {
            return bytes.to_vec();
        };
        let mut out = String::with_capacity(text.len());
        for line in text.split_inclusive('\n') {
            let replaced = self.replacements.iter().find_map(|(from, to)| {
                line.strip_prefix(from.as_str())
                    .map(|rest| format!("{to}{rest}"))
            });
            out.push_str(replaced.as_deref().unwrap_or(line));
        }
        out.into_bytes()
    }
}

/// What the merge said beside its result: git's messages and streams' hints.
struct Said<'a> {
    messages: &'a [String],
    hints: &'a [String],
}

fn write_bundle(
    repo: &Repo,
    input: &ParkInput,
    tree: &str,
    entries: &[ConflictEntry],
    said: &Said,
    files: &[String],
    labels: &Labels,
) -> std::io::Result<()> {
    let dir = input.bundle_dir;
    if dir.exists() {
        std::fs::remove_dir_all(dir)?;
    }
    std::fs::create_dir_all(dir.join("files"))?;
    let c = input.conflict;
    for path in files {
        let stage = |n: u8| {
            entries
                .iter()
                .find(|e| &e.path == path && e.stage == n)
                .map(|e| repo.blob(&e.oid))
        };
        let (base, ours, theirs) = (stage(1), stage(2), stage(3));
        let target = dir.join("files").join(path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(
            with_suffix(&target, ".integration.diff"),
            render_diff(
                path,
                base.as_deref(),
                ours.as_deref(),
                "base",
                "integration",
            ),
        )?;
        std::fs::write(
            with_suffix(&target, ".stream.diff"),
            render_diff(
                path,
                base.as_deref(),
                theirs.as_deref(),
                "base",
                input.stream,
            ),
        )?;
        let merged = repo
            .blob_at(tree, path)
            .map(|b| labels.apply(&b))
            .unwrap_or_default();
        std::fs::write(with_suffix(&target, ".conflicted"), merged)?;
    }
    let tasks: Vec<(usize, String)> = input
        .tasks
        .iter()
        .map(|t| (t.index + 1, one_line(&t.summary, 100)))
        .collect();
    let readme = conflict_readme(&ConflictReadme {
        stream: input.stream,
        task_list: &task_list(input.tasks),
        tasks: &tasks,
        integration_branch: crate::layout::short_branch(input.integration_ref),
        base: &c.base,
        ours: &c.ours,
        theirs: &c.theirs,
        files,
        messages: said.messages,
        hints: said.hints,
        resolution_worktree: input.resolution_worktree,
        parked: input.detached,
    });
    std::fs::write(dir.join("README.md"), readme)
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    path.with_file_name(name)
}

/// A unified diff between two versions of a file; either side may be missing (added/deleted).
pub fn render_diff(
    path: &str,
    old: Option<&[u8]>,
    new: Option<&[u8]>,
    old_label: &str,
    new_label: &str,
) -> String {
    let (Ok(old_text), Ok(new_text)) = (
        std::str::from_utf8(old.unwrap_or_default()),
        std::str::from_utf8(new.unwrap_or_default()),
    ) else {
        return format!("Binary file {path} differs ({old_label} -> {new_label})\n");
    };
    let old_name = if old.is_some() {
        format!("a/{path} ({old_label})")
    } else {
        "/dev/null".into()
    };
    let new_name = if new.is_some() {
        format!("b/{path} ({new_label})")
    } else {
        "/dev/null".into()
    };
    TextDiff::from_lines(old_text, new_text)
        .unified_diff()
        .context_radius(3)
        .header(&old_name, &new_name)
        .to_string()
}
