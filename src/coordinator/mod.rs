//! Sync points: integrating a stream's work onto the integration branch, and parking a stream
//! whose work conflicts.
//!
//! Integration never touches a working tree: each commit is merged with `git merge-tree` and
//! written as an object, and the integration ref moves once per sync unit, by compare-and-swap.
//! A unit therefore lands whole or not at all, which is what makes a crash at any instant safe:
//! the journal records the intended move before it happens, and `resume` finds the ref either at
//! the old tip (redo) or at the new one (done).
//!
//! Conflicts are detected on the unit as a whole (the stream's start, the integration tip, the
//! stream's end) before any commit is replayed, so a person resolves a stream's work once, not
//! commit by commit, and a conflict always waits for a person: no side is ever picked silently.

use std::fmt::Write as _;

mod bisect;
mod park;
mod predict;
mod resolution;

pub use bisect::{BisectStep, bisect_next};
pub use park::{ParkInput, write_park};
pub use predict::{Prediction, predict};
pub use resolution::{
    Recorded, RecreateInput, Unresolved, check_resolution, record_resolution,
    recreate_resolution_worktree,
};

use crate::failpoint;
use crate::git::commit::{self, Ident};
use crate::git::merge::{self, MergeOutcome};
use crate::git::trailers::{TRAILER_STREAM, TRAILER_TASK, with_trailers};
use crate::git::{GitError, GitResult, Repo, refs};
use crate::ids::Oid;
use crate::plan::MergeStrategy;
use crate::state::{Entry, Journal};
use crate::text::short;

/// One task's share of a unit: its number and the commits it made (`start..end`).
#[derive(Clone, Debug)]
pub struct TaskRange {
    /// Zero-based.
    pub index: usize,
    pub summary: String,
    pub start: Oid,
    pub end: Oid,
    /// What its agent used, as commit trailers (`Streams-Cost`, `Streams-Tokens`): on the
    /// task's last commit (empty when no agent reported).
    pub cost: Vec<(&'static str, String)>,
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
    let (new_tip, commits) = match build_unit(repo, input)? {
        Ok(built) => built,
        Err(found) => return Ok(UnitOutcome::Conflict(found)),
    };
    if new_tip == input.tip {
        return Ok(UnitOutcome::Integrated {
            tip: new_tip,
            commits,
        });
    }
    move_integration_ref(
        repo,
        journal,
        input.integration_ref,
        Some(input.tip),
        Some(&new_tip),
        IntegrationMove::Unit(input),
    )?;
    Ok(UnitOutcome::Integrated {
        tip: new_tip,
        commits,
    })
}

/// Writes the commits that put the unit on top of `input.tip`, without moving any ref: the new
/// tip and how many commits it adds, or the conflict. The gate builds candidates this way.
pub fn build_unit(
    repo: &Repo,
    input: &UnitInput,
) -> GitResult<Result<(Oid, usize), ConflictFound>> {
    if input.from == input.to {
        // The tasks changed nothing: nothing to integrate.
        return Ok(Ok((input.tip.into(), 0)));
    }
    let committer = commit::committer_ident(repo, input.identity_env)?;
    let built = match input.strategy {
        MergeStrategy::Rebase => rebase(repo, input, &committer)?,
        MergeStrategy::Merge => merge(repo, input, &committer)?,
        MergeStrategy::Squash => squash(repo, input, &committer)?,
    };
    Ok(match built {
        Built::Commits { tip, count } => Ok((tip, count)),
        Built::Conflict(found) => Err(found),
    })
}

/// Why the integration ref moves.
pub enum IntegrationMove<'a> {
    /// A unit's work lands on it, from `input.tip`: the intent and the completion are
    /// journaled, so that `resume` can tell a crash before the move from one after it.
    Unit(&'a UnitInput<'a>),
    /// Several units at once (a green gate over a batch): each unit with the tip it builds,
    /// in order, each on the previous one. Journaled unit by unit, as `Unit` is, so `resume`
    /// recognises every unit of a batch whose move landed.
    Batch(&'a [(&'a UnitInput<'a>, Oid)]),
    /// Anything else (a run starts, the ref is put back, a resolution is dropped, an abort),
    /// with its reflog message.
    Other(&'a str),
}

/// The one place the integration ref `name` moves: by compare-and-swap from `old` (`None`: it
/// must not exist yet) to `new`. With `new` = `None` it is deleted (an abort of the run that
/// created it, `clean`), whatever it points at: `old` is not checked then.
pub fn move_integration_ref(
    repo: &Repo,
    journal: Option<&Journal>,
    name: &str,
    old: Option<&str>,
    new: Option<&str>,
    why: IntegrationMove,
) -> GitResult<()> {
    let input = match why {
        IntegrationMove::Other(message) => {
            return match new {
                Some(new) => refs::update_ref(repo, name, new, old, message),
                None => refs::delete_ref(repo, name),
            };
        }
        IntegrationMove::Unit(input) => input,
        IntegrationMove::Batch(steps) => return move_batch(repo, journal, name, old, steps),
    };
    let new_tip = new.unwrap_or(crate::git::ZERO_OID);
    let (first, last) = task_bounds(input.tasks);
    if let Some(journal) = journal {
        let _ = journal.append(Entry::IntegrateIntent {
            stream: input.stream.to_string(),
            first,
            last,
            old: old.unwrap_or_default().to_string(),
            new: new_tip.to_string(),
        });
    }
    failpoint::hit("before-integrate-ref");
    refs::update_ref(
        repo,
        name,
        new_tip,
        old,
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

fn move_batch(
    repo: &Repo,
    journal: Option<&Journal>,
    name: &str,
    old: Option<&str>,
    steps: &[(&UnitInput, Oid)],
) -> GitResult<()> {
    let Some((_, last)) = steps.last() else {
        return Ok(());
    };
    if let Some(journal) = journal {
        let mut from = old.unwrap_or_default().to_string();
        for (input, new) in steps {
            let (first, last) = task_bounds(input.tasks);
            let _ = journal.append(Entry::IntegrateIntent {
                stream: input.stream.to_string(),
                first,
                last,
                old: from.clone(),
                new: new.to_string(),
            });
            from = new.to_string();
        }
    }
    failpoint::hit("before-integrate-ref");
    let streams: Vec<&str> = steps.iter().map(|(i, _)| i.stream).collect();
    refs::update_ref(
        repo,
        name,
        last,
        old,
        &format!("streams: integrate {} (gate passed)", streams.join(", ")),
    )?;
    failpoint::hit("after-integrate-ref");
    if let Some(journal) = journal {
        for (input, new) in steps {
            let (first, last) = task_bounds(input.tasks);
            let _ = journal.append(Entry::IntegrateDone {
                stream: input.stream.to_string(),
                first,
                last,
                new: new.to_string(),
            });
        }
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
    // with the unit as a whole first (a conflict there parks the stream).
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
    for (i, ((task, commit), tree)) in commits.iter().zip(trees).enumerate() {
        let tree = tree.expect("conflicted commits were squashed above");
        let mut marks = trailers(input.stream, &[*task]);
        // The task's cost travels with its last commit.
        let last_of_task = commits.get(i + 1).is_none_or(|(next, _)| next != task);
        if last_of_task && let Some(range) = input.tasks.iter().find(|t| t.index == *task) {
            marks.extend(range.cost.iter().cloned());
        }
        let message = with_trailers(&commit.message, &marks);
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
    let mut marks = trailers(input.stream, &indices);
    // Each task's cost, in the order of its `Streams-Task`.
    marks.extend(input.tasks.iter().flat_map(|t| t.cost.iter().cloned()));
    with_trailers(&format!("{subject}\n\n{body}"), &marks)
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
