//! Sync points: integrating a stream's work onto the integration branch, and halting on a
//! conflict.
//!
//! Integration never touches a working tree: each commit is merged with `git merge-tree` and
//! written as an object, and the integration ref moves once per sync unit, by compare-and-swap.
//! A unit therefore lands whole or not at all, which is what makes a crash at any instant safe:
//! the journal records the intended move before it happens, and `resume` finds the ref either at
//! the old tip (redo) or at the new one (done).
//!
//! Conflicts are detected on the unit as a whole (the stream's start, the integration tip, the
//! stream's end) before any commit is replayed, so a person resolves a stream's work once, not
//! commit by commit, and a conflict always halts: no side is ever picked silently.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use similar::TextDiff;

use crate::error::IoContext;
use crate::failpoint;
use crate::git::commit::{self, Ident};
use crate::git::merge::{self, ConflictEntry, MergeOutcome};
use crate::git::trailers::{TRAILER_STREAM, TRAILER_TASK, with_trailers};
use crate::git::{GitError, GitResult, Oid, Repo, conflict, refs, worktree};
use crate::plan::MergeStrategy;
use crate::state::{Entry, Journal};

/// One task's share of a unit: its number and the commits it made (`start..end`).
#[derive(Clone, Debug)]
pub struct TaskRange {
    /// Zero-based.
    pub index: usize,
    pub summary: String,
    pub start: Oid,
    pub end: Oid,
}

/// Everything needed to integrate one sync unit.
pub struct UnitInput<'a> {
    pub stream: &'a str,
    pub integration_ref: &'a str,
    /// The integration tip the run last recorded; the ref must still be there.
    pub tip: &'a str,
    /// The stream's starting point for this unit (first task's start).
    pub from: &'a str,
    /// The stream's work (last task's end).
    pub to: &'a str,
    pub tasks: &'a [TaskRange],
    pub strategy: MergeStrategy,
    /// Fallback identity when git has none configured.
    pub identity_env: &'a [(String, String)],
}

#[derive(Debug)]
pub enum UnitOutcome {
    /// The ref moved to `tip`; `commits` new commits on the integration branch.
    Integrated { tip: Oid, commits: usize },
    /// The unit conflicts with the integration tip; nothing moved.
    Conflict(ConflictFound),
}

#[derive(Clone, Debug)]
pub struct ConflictFound {
    pub base: Oid,
    pub ours: Oid,
    pub theirs: Oid,
    pub merge: MergeOutcome,
}

/// Integrates a unit. Expected outcomes (a conflict) are values; errors are git failing, or the
/// integration ref having moved behind the run's back.
pub fn integrate(
    repo: &Repo,
    journal: Option<&Journal>,
    input: &UnitInput,
) -> GitResult<UnitOutcome> {
    let actual = repo.ref_target(input.integration_ref)?;
    if actual.as_deref() != Some(input.tip) {
        return Err(GitError::RefMoved {
            name: input.integration_ref.to_string(),
            dir: repo.common_dir().to_path_buf(),
            message: format!(
                "the integration branch moved outside streams (expected {}, found {}); streams will not overwrite it",
                short(input.tip),
                actual.as_deref().map(short).unwrap_or("nothing")
            ),
        });
    }
    if input.from == input.to {
        // The tasks changed nothing: nothing to integrate.
        return Ok(UnitOutcome::Integrated {
            tip: input.tip.into(),
            commits: 0,
        });
    }
    let committer = commit::committer_ident(repo, input.identity_env)?;
    let built = match input.strategy {
        MergeStrategy::Rebase => rebase(repo, input, &committer)?,
        MergeStrategy::Merge => merge(repo, input, &committer)?,
        MergeStrategy::Squash => squash(repo, input, &committer)?,
    };
    let (new_tip, commits) = match built {
        Built::Commits { tip, count } => (tip, count),
        Built::Conflict(found) => return Ok(UnitOutcome::Conflict(found)),
    };
    move_integration_ref(repo, journal, input, &new_tip)?;
    Ok(UnitOutcome::Integrated {
        tip: new_tip,
        commits,
    })
}

/// The one place the integration ref moves during a run: journal intent, compare-and-swap,
/// journal completion.
pub fn move_integration_ref(
    repo: &Repo,
    journal: Option<&Journal>,
    input: &UnitInput,
    new_tip: &str,
) -> GitResult<()> {
    let (first, last) = task_bounds(input.tasks);
    if let Some(journal) = journal {
        let _ = journal.append(Entry::IntegrateIntent {
            stream: input.stream.to_string(),
            first,
            last,
            old: input.tip.to_string(),
            new: new_tip.to_string(),
        });
    }
    failpoint::hit("before-integrate-ref");
    refs::update_ref(
        repo,
        input.integration_ref,
        new_tip,
        Some(input.tip),
        &format!(
            "streams: integrate {} ({})",
            input.stream,
            task_list(input.tasks)
        ),
    )?;
    failpoint::hit("after-integrate-ref");
    if let Some(journal) = journal {
        let _ = journal.append(Entry::IntegrateDone {
            stream: input.stream.to_string(),
            first,
            last,
            new: new_tip.to_string(),
        });
    }
    Ok(())
}

fn task_bounds(tasks: &[TaskRange]) -> (usize, usize) {
    (
        tasks.first().map_or(0, |t| t.index),
        tasks.last().map_or(0, |t| t.index),
    )
}

enum Built {
    Commits { tip: Oid, count: usize },
    Conflict(ConflictFound),
}

/// Checks the unit as a whole against the tip. `None` when the tip has not moved since the
/// stream started (nothing to merge with).
fn whole_unit(
    repo: &Repo,
    input: &UnitInput,
    base: Option<&str>,
) -> GitResult<Result<Option<Oid>, ConflictFound>> {
    if input.tip == input.from {
        return Ok(Ok(None));
    }
    match merge::merge_tree(repo, base, input.tip, input.to)? {
        MergeOutcome::Clean { tree } => Ok(Ok(Some(tree))),
        merge @ MergeOutcome::Conflict { .. } => Ok(Err(ConflictFound {
            base: input.from.into(),
            ours: input.tip.into(),
            theirs: input.to.into(),
            merge,
        })),
    }
}

fn rebase(repo: &Repo, input: &UnitInput, committer: &Ident) -> GitResult<Built> {
    // The unit's commits, oldest first, with the task each belongs to.
    let mut commits = Vec::new();
    for task in input.tasks {
        if task.start == task.end {
            continue;
        }
        for commit in commit::first_parent_range(repo, &task.start, &task.end)? {
            commits.push((task.index, commit));
        }
    }
    // Each replayed commit holds the integration tip plus the stream's work up to that commit:
    // the merge of the commit onto the tip with the unit's start as base. When the tip has not
    // moved since the stream started, that is the commit's own tree. Otherwise every merge is
    // independent of the others, so they all go through one `git merge-tree --stdin` process,
    // with the unit as a whole first (a conflict there halts the run).
    let trees: Vec<Option<Oid>> = if input.tip == input.from {
        commits.iter().map(|(_, c)| Some(c.tree.clone())).collect()
    } else {
        let mut merges: Vec<(Oid, Oid, Oid)> =
            vec![(input.from.into(), input.tip.into(), input.to.into())];
        merges.extend(
            commits
                .iter()
                .map(|(_, c)| (input.from.into(), input.tip.into(), c.id.clone())),
        );
        let mut merged = merge::merge_trees(repo, &merges)?;
        let whole = match merged.remove(0) {
            Some(tree) => tree,
            // Conflicted: merge it again alone for the details a person needs.
            None => match whole_unit(repo, input, Some(input.from))? {
                Ok(tree) => tree.expect("a moved tip was merged as a whole"),
                Err(found) => return Ok(Built::Conflict(found)),
            },
        };
        if merged.iter().any(Option::is_none) {
            // The unit as a whole merges cleanly but one of its commits does not (a later
            // commit undoes what conflicts). Land the unit as one commit rather than stop on a
            // conflict that is not in the result.
            return squash_with_tree(repo, input, committer, &whole);
        }
        merged
    };
    let mut tip = Oid::from(input.tip);
    let mut count = 0;
    for ((task, commit), tree) in commits.iter().zip(trees) {
        let tree = tree.expect("conflicted commits were squashed above");
        let message = with_trailers(&commit.message, &trailers(input.stream, &[*task]));
        let author = Ident::of_author(commit);
        tip = commit::write_commit(
            repo,
            &tree,
            std::slice::from_ref(&tip),
            &message,
            &author,
            committer,
        )?;
        count += 1;
    }
    Ok(Built::Commits { tip, count })
}

fn merge(repo: &Repo, input: &UnitInput, committer: &Ident) -> GitResult<Built> {
    let tree = match merge::merge_tree(repo, None, input.tip, input.to)? {
        MergeOutcome::Clean { tree } => tree,
        merge @ MergeOutcome::Conflict { .. } => {
            return Ok(Built::Conflict(ConflictFound {
                base: input.from.into(),
                ours: input.tip.into(),
                theirs: input.to.into(),
                merge,
            }));
        }
    };
    let message = unit_message(input, MergeStrategy::Merge);
    let tip = commit::write_commit(
        repo,
        &tree,
        &[input.tip.into(), input.to.into()],
        &message,
        committer,
        committer,
    )?;
    Ok(Built::Commits { tip, count: 1 })
}

fn squash(repo: &Repo, input: &UnitInput, committer: &Ident) -> GitResult<Built> {
    let tree = match whole_unit(repo, input, Some(input.from))? {
        Ok(Some(tree)) => tree,
        Ok(None) => commit::tree_of(repo, input.to)?,
        Err(found) => return Ok(Built::Conflict(found)),
    };
    squash_with_tree(repo, input, committer, &tree)
}

fn squash_with_tree(
    repo: &Repo,
    input: &UnitInput,
    committer: &Ident,
    tree: &str,
) -> GitResult<Built> {
    let message = unit_message(input, MergeStrategy::Squash);
    let tip = commit::write_commit(
        repo,
        tree,
        &[input.tip.into()],
        &message,
        committer,
        committer,
    )?;
    Ok(Built::Commits { tip, count: 1 })
}

/// The message of a commit that stands for a whole unit (merge, squash, resolution).
pub fn unit_message(input: &UnitInput, strategy: MergeStrategy) -> String {
    let subject = match strategy {
        MergeStrategy::Merge => format!(
            "Merge stream '{}' ({})",
            input.stream,
            task_list(input.tasks)
        ),
        _ if input.tasks.len() == 1 => {
            format!(
                "{}: {}",
                input.stream,
                one_line(&input.tasks[0].summary, 60)
            )
        }
        _ => format!("{}: {}", input.stream, task_list(input.tasks)),
    };
    let mut body = String::new();
    for task in input.tasks {
        let _ = writeln!(
            body,
            "- task {}: {}",
            task.index + 1,
            one_line(&task.summary, 100)
        );
    }
    let indices: Vec<usize> = input.tasks.iter().map(|t| t.index).collect();
    with_trailers(
        &format!("{subject}\n\n{body}"),
        &trailers(input.stream, &indices),
    )
}

pub fn trailers(stream: &str, tasks: &[usize]) -> Vec<(&'static str, String)> {
    let mut list = vec![(TRAILER_STREAM, stream.to_string())];
    list.extend(tasks.iter().map(|t| (TRAILER_TASK, (t + 1).to_string())));
    list
}

fn task_list(tasks: &[TaskRange]) -> String {
    match tasks {
        [] => "no tasks".into(),
        [one] => format!("task {}", one.index + 1),
        [first, .., last] => format!("tasks {}-{}", first.index + 1, last.index + 1),
    }
}

fn one_line(text: &str, max: usize) -> String {
    let line = text.lines().next().unwrap_or("").trim();
    if line.chars().count() <= max {
        line.to_string()
    } else {
        let cut: String = line.chars().take(max.saturating_sub(3)).collect();
        format!("{cut}...")
    }
}

pub fn short(oid: &str) -> &str {
    &oid[..oid.len().min(10)]
}

// ---------------------------------------------------------------------------------------------
// Halting: the conflict bundle and the resolution worktree.

/// What a person needs to resolve a conflict, written when the run halts.
pub struct HaltInput<'a> {
    pub stream: &'a str,
    pub tasks: &'a [TaskRange],
    pub plan_name: &'a str,
    pub integration_ref: &'a str,
    pub conflict: &'a ConflictFound,
    pub bundle_dir: &'a Path,
    pub resolution_worktree: &'a Path,
    pub run_id: &'a str,
}

/// Writes the bundle and creates the resolution worktree. Returns the conflicted paths.
pub fn write_halt(repo: &Repo, input: &HaltInput) -> crate::error::Result<Vec<String>> {
    let MergeOutcome::Conflict {
        tree,
        entries,
        messages,
    } = &input.conflict.merge
    else {
        return Ok(Vec::new());
    };
    let files = input.conflict.merge.conflicted_paths();
    let labels = Labels::new(input);
    // Worded as it always was, though no git command is involved.
    write_bundle(repo, input, tree, entries, messages, &files, &labels).context(|| {
        format!(
            "`git write conflict bundle` failed in {}",
            input.bundle_dir.display()
        )
    })?;
    create_resolution_worktree(repo, input, tree, entries, &files, &labels)?;
    Ok(files)
}

/// merge-tree labels conflict markers with the commit ids it was given; people read names.
struct Labels {
    replacements: Vec<(String, String)>,
}

impl Labels {
    fn new(input: &HaltInput) -> Labels {
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

    fn apply(&self, bytes: &[u8]) -> Vec<u8> {
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

fn write_bundle(
    repo: &Repo,
    input: &HaltInput,
    tree: &str,
    entries: &[ConflictEntry],
    messages: &[String],
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
    let mut readme = String::new();
    let _ = writeln!(
        readme,
        "# Conflict: stream `{}` ({})\n",
        input.stream,
        task_list(input.tasks)
    );
    let _ = writeln!(
        readme,
        "Integrating stream `{}` onto `{}` conflicts in {} file(s). The run is halted: no new \
         task starts until this is resolved, skipped, or the run is aborted.\n",
        input.stream,
        crate::layout::short_branch(input.integration_ref),
        files.len()
    );
    let _ = writeln!(readme, "## Tasks\n");
    for task in input.tasks {
        let _ = writeln!(
            readme,
            "- task {}: {}",
            task.index + 1,
            one_line(&task.summary, 100)
        );
    }
    let _ = writeln!(readme, "\n## Commits\n");
    let _ = writeln!(readme, "- base (where the stream started): `{}`", c.base);
    let _ = writeln!(readme, "- ours (the integration tip):      `{}`", c.ours);
    let _ = writeln!(readme, "- theirs (the stream's work):      `{}`", c.theirs);
    let _ = writeln!(readme, "\n## Conflicted files\n");
    for path in files {
        let _ = writeln!(
            readme,
            "- `{path}`: `files/{path}.integration.diff` (base -> integration), \
             `files/{path}.stream.diff` (base -> {}), `files/{path}.conflicted` (with markers)",
            input.stream
        );
    }
    if !messages.is_empty() {
        let _ = writeln!(readme, "\n## What git said\n");
        for m in messages {
            let _ = writeln!(readme, "    {m}");
        }
    }
    let wt = input.resolution_worktree.display();
    let _ = writeln!(readme, "\n## How to go on\n");
    let _ = writeln!(
        readme,
        "The resolution worktree `{wt}` is on the integration branch with the conflicted files \
         holding conflict markers. Resolve them there with your usual tools, then:\n"
    );
    let quoted: Vec<String> = files
        .iter()
        .map(|f| crate::report::shell_quote(f))
        .collect();
    let _ = writeln!(
        readme,
        "    cd {}",
        crate::report::shell_quote(&input.resolution_worktree.display().to_string())
    );
    let _ = writeln!(readme, "    # edit the files, then mark them resolved:");
    let _ = writeln!(readme, "    git add {}", quoted.join(" "));
    let _ = writeln!(
        readme,
        "    streams continue      # records the resolution and resumes the run\n"
    );
    let _ = writeln!(
        readme,
        "Or leave this stream's work out (its branch is kept):\n"
    );
    let _ = writeln!(readme, "    streams skip {}\n", input.stream);
    let _ = writeln!(
        readme,
        "Or stop the run and put the integration branch back where it was:\n"
    );
    let _ = writeln!(readme, "    streams abort");
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

fn create_resolution_worktree(
    repo: &Repo,
    input: &HaltInput,
    tree: &str,
    entries: &[ConflictEntry],
    files: &[String],
    labels: &Labels,
) -> GitResult<()> {
    let path = input.resolution_worktree;
    if path.exists() || worktree::list(repo)?.iter().any(|w| w.path == path) {
        worktree::remove(repo, path)?;
    }
    if let Some(parent) = path.parent() {
        let _ = std::fs::create_dir_all(parent);
    }
    let branch = crate::layout::short_branch(input.integration_ref);
    let reason = format!("streams run {}: conflict resolution", input.run_id);
    // When the branch is checked out elsewhere (the user is looking at it), the resolution
    // happens on a detached HEAD at the same commit; `continue` records it either way.
    conflict::add_worktree(repo, path, branch, &input.conflict.ours, &reason)?;
    conflict::lay_out(path, tree, files, entries)?;
    for file in files {
        let target = path.join(file);
        if let Ok(bytes) = std::fs::read(&target) {
            let relabelled = labels.apply(&bytes);
            if relabelled != bytes {
                let _ = std::fs::write(&target, relabelled);
            }
        }
    }
    Ok(())
}

/// Why a resolution cannot be recorded yet.
#[derive(Debug)]
pub enum Unresolved {
    Unmerged(Vec<String>),
    Markers(Vec<(String, usize)>),
    /// The resolved tree is the integration tip's: every bit of the stream's work is gone.
    DropsStream,
    /// Files that merged cleanly differ from the merge: the resolution undoes (or rewrites)
    /// some of the stream's work outside the conflict.
    ChangesCleanFiles(Vec<String>),
}

/// Checks the resolution worktree: no unmerged entries, no conflict markers left in the files
/// that conflicted. Returns the resolved tree.
pub fn check_resolution(
    repo: &Repo,
    worktree_path: &Path,
    halt: &crate::state::Halt,
    force: bool,
) -> GitResult<Result<Oid, Unresolved>> {
    let paths = conflict::unmerged_paths(worktree_path)?;
    if !paths.is_empty() {
        return Ok(Err(Unresolved::Unmerged(paths)));
    }
    let mut markers = Vec::new();
    for file in &halt.files {
        let Ok(bytes) = std::fs::read(worktree_path.join(file)) else {
            continue;
        };
        let Ok(text) = std::str::from_utf8(&bytes) else {
            continue;
        };
        if let Some(line) = text
            .lines()
            .position(|l| l.starts_with("<<<<<<< ") || l.starts_with(">>>>>>> "))
        {
            markers.push((file.clone(), line + 1));
        }
    }
    if !markers.is_empty() {
        return Ok(Err(Unresolved::Markers(markers)));
    }
    let resolved = conflict::stage_all(worktree_path)?;
    if force {
        return Ok(Ok(resolved));
    }
    // A resolution decides the conflicted files; the rest of the merge is the stream's work,
    // and a resolution that loses it (a `git reset --hard` to start over, say) is refused.
    if resolved == commit::tree_of(repo, &halt.ours)? {
        return Ok(Err(Unresolved::DropsStream));
    }
    let merged = match merge::merge_tree(repo, Some(&halt.base), &halt.ours, &halt.theirs)? {
        MergeOutcome::Clean { tree } | MergeOutcome::Conflict { tree, .. } => tree,
    };
    let changed: Vec<String> = crate::git::changes::tree_diff_paths(repo, &merged, &resolved)?
        .into_iter()
        .filter(|p| !halt.files.contains(p))
        .collect();
    if !changed.is_empty() {
        return Ok(Err(Unresolved::ChangesCleanFiles(changed)));
    }
    Ok(Ok(resolved))
}

/// Records a resolved tree as the unit's integration: one commit (a merge commit for the merge
/// strategy), moved onto the integration ref by compare-and-swap from the halt's tip.
pub fn record_resolution(
    repo: &Repo,
    journal: Option<&Journal>,
    input: &UnitInput,
    tree: &str,
) -> GitResult<Oid> {
    let committer = commit::committer_ident(repo, input.identity_env)?;
    let parents = match input.strategy {
        MergeStrategy::Merge => vec![input.tip.into(), input.to.into()],
        _ => vec![input.tip.into()],
    };
    let strategy = if input.strategy == MergeStrategy::Merge {
        MergeStrategy::Merge
    } else {
        MergeStrategy::Squash
    };
    let message = unit_message(input, strategy);
    let message = message.replacen('\n', " (conflict resolved)\n", 1);
    let commit = commit::write_commit(repo, tree, &parents, &message, &committer, &committer)?;
    // The person may have committed in the resolution worktree, moving the branch; the resolved
    // tree already carries their work, so the ref goes from wherever they left it.
    let current = repo.ref_target(input.integration_ref)?;
    let from = match current {
        Some(cur) if cur == input.tip || refs::is_ancestor(repo, input.tip, &cur)? => cur,
        other => {
            return Err(GitError::RefMoved {
                name: input.integration_ref.to_string(),
                dir: repo.common_dir().to_path_buf(),
                message: format!(
                    "the integration branch moved away from the conflict's tip {} (now {})",
                    short(input.tip),
                    other.as_deref().map(short).unwrap_or("deleted")
                ),
            });
        }
    };
    let moved = UnitInput {
        tip: &from,
        ..*input
    };
    move_integration_ref(repo, journal, &moved, &commit)?;
    Ok(commit)
}

// ---------------------------------------------------------------------------------------------
// Predicting conflicts before they happen.

/// A pair of branches (or a branch and the integration tip) that would conflict.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Prediction {
    pub left: String,
    pub right: String,
    pub files: Vec<String>,
}

/// Merges every pair of `branches` and each branch with the integration tip in memory; returns
/// the pairs that conflict and how many pairs were checked.
pub fn predict(
    repo: &Repo,
    branches: &[(String, Oid)],
    integration: Option<&(String, Oid)>,
) -> GitResult<(Vec<Prediction>, usize)> {
    let mut pairs = Vec::new();
    let mut names = Vec::new();
    for (i, (a_name, a)) in branches.iter().enumerate() {
        for (b_name, b) in &branches[i + 1..] {
            if a != b {
                pairs.push((a.clone(), b.clone()));
                names.push((a_name.clone(), b_name.clone()));
            }
        }
        if let Some((tip_name, tip)) = integration
            && a != tip
        {
            pairs.push((tip.clone(), a.clone()));
            names.push((a_name.clone(), tip_name.clone()));
        }
    }
    let results = merge::conflicts_batch(repo, &pairs)?;
    let predictions = names
        .into_iter()
        .zip(results)
        .filter(|(_, files)| !files.is_empty())
        .map(|((left, right), files)| Prediction { left, right, files })
        .collect();
    Ok((predictions, pairs.len()))
}
