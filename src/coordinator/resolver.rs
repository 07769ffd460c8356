//! Accepting a resolver agent's resolution, by rules streams checks itself (never the agent's
//! word): no conflict markers left; only the conflicted files changed, and within each only its
//! conflicted regions and `margin` lines around each (the rest equals the merge's clean part).
//! The checks and the gate on the result are the engine's to run (`exec::resolve`); this module
//! also writes an accepted resolution as a commit of its own, apart from the stream's work.

use std::path::Path;

use super::UnitInput;
use crate::git::merge::{self, MergeOutcome};
use crate::git::trailers::{TRAILER_STREAM, with_trailers};
use crate::git::{GitResult, Repo, commit, conflict, tree};
use crate::ids::Oid;
use crate::plan::MergeStrategy;

/// The trailer that names the resolver on a resolution's commit.
pub const TRAILER_RESOLVER: &str = "Streams-Resolver";

/// Why a resolution is refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Conflict markers left: each file and the first line that has one.
    Markers(Vec<(String, usize)>),
    /// Files changed that did not conflict.
    OutsideConflict(Vec<String>),
    /// A line of a conflicted file changed outside its conflicted regions and their margin:
    /// the line's number in the merge's file (markers included) and its text there.
    BeyondMargin {
        file: String,
        line: usize,
        text: String,
        margin: usize,
    },
    /// It changed nothing: the conflict is still there.
    Unchanged,
}

impl Refusal {
    /// The reason, in one line a person reads.
    pub fn reason(&self) -> String {
        match self {
            Refusal::Markers(files) => format!(
                "it left conflict markers in {}",
                files
                    .iter()
                    .map(|(f, line)| format!("{f} (line {line})"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Refusal::OutsideConflict(files) => format!(
                "it changed files that did not conflict: {}",
                files.join(", ")
            ),
            Refusal::BeyondMargin {
                file,
                line,
                text,
                margin,
            } => format!(
                "it changed {file} outside the conflicted regions and their margin of {margin} line{}: line {line} of the merge ({:?})",
                if *margin == 1 { "" } else { "s" },
                text.chars().take(60).collect::<String>()
            ),
            Refusal::Unchanged => "it left the conflict as it was".into(),
        }
    }
}

/// The three sides of the conflicted merge and its conflicted files.
pub struct Conflicted<'a> {
    pub base: &'a str,
    pub ours: &'a str,
    pub theirs: &'a str,
    pub files: &'a [String],
}

/// Checks the resolution left in the worktree at `worktree` against the merge it resolves:
/// the resolved tree (staged there) when every rule holds, else why not.
pub fn verify(
    repo: &Repo,
    worktree: &Path,
    conflicted: &Conflicted,
    margin: usize,
) -> GitResult<Result<Oid, Refusal>> {
    let mut markers = Vec::new();
    for file in conflicted.files {
        let Ok(bytes) = std::fs::read(worktree.join(file)) else {
            continue;
        };
        if let Some(line) = marker_line(&bytes) {
            markers.push((file.clone(), line));
        }
    }
    if !markers.is_empty() {
        return Ok(Err(Refusal::Markers(markers)));
    }
    let resolved = conflict::stage_all(worktree)?;
    let merged = match merge::merge_tree(
        repo,
        Some(conflicted.base),
        conflicted.ours,
        conflicted.theirs,
    )? {
        MergeOutcome::Clean { tree } | MergeOutcome::Conflict { tree, .. } => tree,
    };
    let changed = crate::git::changes::tree_diff_paths(repo, &merged, &resolved)?;
    let outside: Vec<String> = changed
        .iter()
        .filter(|p| !conflicted.files.contains(p))
        .cloned()
        .collect();
    if !outside.is_empty() {
        return Ok(Err(Refusal::OutsideConflict(outside)));
    }
    for file in conflicted.files.iter().filter(|f| changed.contains(f)) {
        let (Some(before), Some(after)) =
            (repo.blob_at(&merged, file), repo.blob_at(&resolved, file))
        else {
            // Added or deleted as a whole: the file is all conflict (modify/delete, add/add).
            continue;
        };
        let (Ok(before), Ok(after)) = (std::str::from_utf8(&before), std::str::from_utf8(&after))
        else {
            // A binary file conflicts as a whole.
            continue;
        };
        if let Some((line, text)) = beyond_margin(before, after, margin) {
            return Ok(Err(Refusal::BeyondMargin {
                file: file.clone(),
                line,
                text,
                margin,
            }));
        }
    }
    if changed.is_empty() {
        return Ok(Err(Refusal::Unchanged));
    }
    Ok(Ok(resolved))
}

/// The first line (1-based) of `bytes` that is a conflict marker, if any.
pub fn marker_line(bytes: &[u8]) -> Option<usize> {
    let text = std::str::from_utf8(bytes).ok()?;
    text.lines()
        .position(|l| l.starts_with("<<<<<<<") || l.starts_with(">>>>>>>"))
        .map(|i| i + 1)
}

/// Where `after` changes `before` (a merged file with conflict markers) outside its conflicted
/// regions widened by `margin` lines each way: the first such line of `before` (1-based) and its
/// text. Lines added next to a region, or next to its margin, are inside.
pub fn beyond_margin(before: &str, after: &str, margin: usize) -> Option<(usize, String)> {
    let lines: Vec<&str> = before.split_inclusive('\n').collect();
    let free = free_lines(&lines, margin);
    let diff = similar::TextDiff::from_lines(before, after);
    let outside = |i: usize| -> Option<(usize, String)> {
        (!free[i]).then(|| (i + 1, lines[i].trim_end_matches('\n').to_string()))
    };
    for op in diff.ops() {
        match *op {
            similar::DiffOp::Equal { .. } => {}
            similar::DiffOp::Delete {
                old_index, old_len, ..
            }
            | similar::DiffOp::Replace {
                old_index, old_len, ..
            } => {
                if let Some(found) = (old_index..old_index + old_len).find_map(outside) {
                    return Some(found);
                }
            }
            similar::DiffOp::Insert { old_index, .. } => {
                let next_to_free = (old_index > 0 && free[old_index - 1])
                    || (old_index < lines.len() && free[old_index]);
                if !next_to_free {
                    let at = old_index.min(lines.len().saturating_sub(1));
                    return Some((
                        at + 1,
                        lines
                            .get(at)
                            .map(|l| l.trim_end_matches('\n').to_string())
                            .unwrap_or_default(),
                    ));
                }
            }
        }
    }
    None
}

/// For each line: whether a resolution may change it (inside a conflicted region, markers
/// included, or within `margin` lines of one).
fn free_lines(lines: &[&str], margin: usize) -> Vec<bool> {
    let mut free = vec![false; lines.len()];
    let mut start = None;
    for (i, line) in lines.iter().enumerate() {
        if line.starts_with("<<<<<<<") && start.is_none() {
            start = Some(i);
        } else if line.starts_with(">>>>>>>")
            && let Some(s) = start.take()
        {
            let from = s.saturating_sub(margin);
            let to = (i + margin).min(lines.len() - 1);
            free[from..=to].iter_mut().for_each(|f| *f = true);
        }
    }
    free
}

/// The two commits an accepted resolution lands as, on `tip` (the integration tip the conflict
/// was found on): the stream's work with its conflicted files as `tip` has them (a merge
/// commit for the merge strategy), then the resolution alone, with a trailer naming the
/// resolver. Objects only; no ref moves. Returns (work, resolution).
pub fn resolution_commits(
    repo: &Repo,
    input: &UnitInput,
    conflicted: &Conflicted,
    tree: &str,
    resolver: &str,
) -> GitResult<(Oid, Oid)> {
    let committer = commit::committer_ident(repo, input.identity_env)?;
    let merged = match merge::merge_tree(
        repo,
        Some(conflicted.base),
        conflicted.ours,
        conflicted.theirs,
    )? {
        MergeOutcome::Clean { tree } | MergeOutcome::Conflict { tree, .. } => tree,
    };
    let ours_tree = commit::tree_of(repo, conflicted.ours)?;
    let mut changes = Vec::new();
    for file in conflicted.files {
        let content = tree::entry_at(repo, &ours_tree, file.as_bytes())?;
        changes.push((file.as_bytes().to_vec(), content));
    }
    let work_tree = tree::build(repo, Some(&merged), &changes)?;
    let parents = match input.strategy {
        MergeStrategy::Merge => vec![input.tip.into(), input.to.into()],
        _ => vec![input.tip.into()],
    };
    let strategy = if input.strategy == MergeStrategy::Merge {
        MergeStrategy::Merge
    } else {
        MergeStrategy::Squash
    };
    let message = super::unit_message(input, strategy).replacen(
        '\n',
        " (conflicted files as on the integration; resolved in the next commit)\n",
        1,
    );
    let work = commit::write_commit(repo, &work_tree, &parents, &message, &committer, &committer)?;
    let resolution_message = with_trailers(
        &format!(
            "Resolve the conflict of stream '{}' in {}\n\nProposed by the resolver agent and accepted by streams' checks.",
            input.stream,
            conflicted.files.join(", ")
        ),
        &[
            (TRAILER_STREAM, input.stream.to_string()),
            (TRAILER_RESOLVER, resolver.to_string()),
        ],
    );
    let resolution = commit::write_commit(
        repo,
        tree,
        std::slice::from_ref(&work),
        &resolution_message,
        &committer,
        &committer,
    )?;
    Ok((work, resolution))
}

/// Lands a proposal a person accepted as it was (`continue` with the proposed files): its two
/// commits ([`resolution_commits`], made on `input.tip`), carried onto `onto` when streams
/// landed since, then the integration ref moved by compare-and-swap from `onto`. `None` when
/// carrying them conflicts with what landed (the caller records the resolution as a person's).
pub fn land_proposal(
    repo: &Repo,
    journal: Option<&crate::state::Journal>,
    input: &UnitInput,
    work: &str,
    resolution: &str,
    onto: &str,
) -> GitResult<Option<Oid>> {
    let tip = if onto == input.tip {
        Oid::from(resolution)
    } else {
        let committer = commit::committer_ident(repo, input.identity_env)?;
        let mut parent = Oid::from(onto);
        let mut base = Oid::from(input.tip);
        for c in [work, resolution] {
            let info = repo.commit_info(c)?;
            let tree = match merge::merge_tree(repo, Some(&base), &parent, c)? {
                MergeOutcome::Clean { tree } => tree,
                MergeOutcome::Conflict { .. } => return Ok(None),
            };
            let mut parents = vec![parent.clone()];
            if c == work && input.strategy == MergeStrategy::Merge {
                parents.push(input.to.into());
            }
            parent =
                commit::write_commit(repo, &tree, &parents, &info.message, &committer, &committer)?;
            base = c.into();
        }
        parent
    };
    let moved = UnitInput {
        tip: onto,
        ..*input
    };
    super::move_integration_ref(
        repo,
        journal,
        input.integration_ref,
        Some(onto),
        Some(&tip),
        super::IntegrationMove::Unit(&moved),
    )?;
    Ok(Some(tip))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MERGED: &str =
        "1\n2\n3\n4\n5\n<<<<<<< ours\na\n=======\nb\n>>>>>>> theirs\n6\n7\n8\n9\n10\n";

    #[test]
    fn changes_within_the_region_and_its_margin_are_inside() {
        let resolved = "1\n2\n3\n4\n5\na\nb\n6\n7\n8\n9\n10\n";
        assert_eq!(beyond_margin(MERGED, resolved, 3), None);
        // The third line after the region is within a margin of 3.
        let resolved = "1\n2\n3\n4\n5\na\nb\n6\n7\nEIGHT\n9\n10\n";
        assert_eq!(beyond_margin(MERGED, resolved, 3), None);
        // An added line next to the region.
        let resolved = "1\n2\n3\n4\n5\na\nb\nc\n6\n7\n8\n9\n10\n";
        assert_eq!(beyond_margin(MERGED, resolved, 0), None);
    }

    #[test]
    fn one_line_beyond_the_margin_is_outside() {
        let resolved = "1\n2\n3\n4\n5\na\nb\n6\n7\n8\nNINE\n10\n";
        assert_eq!(beyond_margin(MERGED, resolved, 3), Some((14, "9".into())));
        let resolved = "ONE\n2\n3\n4\n5\na\nb\n6\n7\n8\n9\n10\n";
        assert_eq!(beyond_margin(MERGED, resolved, 3), Some((1, "1".into())));
        assert_eq!(beyond_margin(MERGED, resolved, 4), Some((1, "1".into())));
        assert_eq!(beyond_margin(MERGED, resolved, 5), None);
    }

    #[test]
    fn finds_markers() {
        assert_eq!(marker_line(b"a\n<<<<<<< x\nb\n"), Some(2));
        assert_eq!(marker_line(b"a\n=======\nb\n"), None);
    }
}
