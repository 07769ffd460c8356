//! What a read of a workspace becomes: the task's end commit, work kept on a ref, and the agent's
//! own commits, taken only after each was checked object by object.
//!
//! The agent's commits are history the task keeps only when every object they need was read
//! from its store, hashed again and copied into the user's repository, they descend from the
//! task's start (the caller also checks that each stays in the stream's lane), and the last
//! one's tree is the tree streams built from the files (issue 23: a history that does not end
//! in the task's work does not describe it). Otherwise streams makes one commit of its own from
//! the files, and the agent's commits, when they could be copied, are kept on a ref. The task's
//! end is always the tree streams built from the files.

use std::collections::{BTreeSet, HashSet};

use super::read::{self, Options, Read, Record};
use super::{Workspace, agent_git, prepare};
use crate::git::commit::{self, Ident};
use crate::git::foreign::{self, Head};
use crate::git::{GitResult, Repo, refs, tree};
use crate::ids::Oid;

/// One commit of the agent's beyond the task's start.
#[derive(Clone, Debug)]
pub struct AgentCommit {
    pub id: Oid,
    pub tree: Oid,
    /// The paths its tree changes from the start's.
    pub paths: BTreeSet<String>,
}

/// The agent's own commits, as far as streams could check them.
#[derive(Clone, Debug)]
pub struct AgentHistory {
    /// Where the agent's `HEAD` was.
    pub head: Head,
    /// Its commits beyond the start, oldest first (copied into the user's repository); empty
    /// when `HEAD` is at the start, unreadable, or refused.
    pub commits: Vec<AgentCommit>,
    /// Why its commits could not be taken, if they could not (said in the task's notes).
    pub refused: Option<String>,
    /// Its `HEAD` does not descend from the start: history below it was rewritten.
    pub rewritten: bool,
}

/// Agents make fewer commits than this in a task; a longer history is not taken.
const MAX_COMMITS: usize = 10_000;

impl AgentHistory {
    /// Reads the agent's `HEAD` in `ws` and brings its commits beyond `start` into the user's
    /// repository, each object hashed again.
    pub fn read(repo: &Repo, ws: &Workspace, start: &Oid) -> GitResult<AgentHistory> {
        let git_dir = ws.git_dir();
        let head = foreign::head(&git_dir);
        let mut history = AgentHistory {
            head: head.clone(),
            commits: Vec::new(),
            refused: None,
            rewritten: false,
        };
        let Some(tip) = head.commit() else {
            return Ok(history);
        };
        if tip == start {
            return Ok(history);
        }
        foreign::prepare_objects(repo, &git_dir)?;
        if let Err(refused) = foreign::bring(repo, &git_dir, tip)? {
            history.refused = Some(refused.to_string());
            return Ok(history);
        }
        if !refs::is_ancestor(repo, start, tip)? {
            history.rewritten = true;
            return Ok(history);
        }
        let Some(ids) = commit::commits_between(repo, start, tip, MAX_COMMITS)? else {
            history.refused = Some(format!("it made more than {MAX_COMMITS} commits"));
            return Ok(history);
        };
        let start_tree = repo.commit_info(start)?.tree;
        for id in ids {
            let tree = repo.commit_info(&id)?.tree;
            let paths = tree::diff(repo, Some(&start_tree), Some(&tree))?
                .iter()
                .map(tree::Delta::path_text)
                .collect();
            history.commits.push(AgentCommit { id, tree, paths });
        }
        Ok(history)
    }

    /// The agent's last commit, when it made any that streams could take.
    pub fn tip(&self) -> Option<&AgentCommit> {
        self.commits.last()
    }

    /// Every path any of its commits changes from the start.
    pub fn paths(&self) -> BTreeSet<String> {
        self.commits
            .iter()
            .flat_map(|c| c.paths.iter().cloned())
            .collect()
    }

    /// Paths its last commit tracks that the start does not: files it committed (ignored ones
    /// with `git add -f`, say) that a read then takes as tracked.
    pub fn tracked_beyond(&self, repo: &Repo, start: &Oid) -> GitResult<HashSet<Vec<u8>>> {
        let Some(tip) = self.tip() else {
            return Ok(HashSet::new());
        };
        let start_tree = repo.commit_info(start)?.tree;
        Ok(tree::diff(repo, Some(&start_tree), Some(&tip.tree))?
            .into_iter()
            .filter(|d| d.old.is_none() && d.new.is_some())
            .map(|d| d.path)
            .collect())
    }
}

/// How a task ended, as streams committed it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskEnd {
    /// The task's end commit (the start when it changed nothing).
    pub end: Oid,
    /// The agent's commits are the task's history.
    pub agent_history: bool,
    /// The agent's commits were not taken as history but kept on this ref, and why.
    pub agent_kept: Option<(String, Oid, NotHistory)>,
}

/// Why the agent's own commits are not the task's history.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotHistory {
    /// One of them changes a path outside the stream's lane.
    OutsideLane,
    /// Its files hold more than (or other than) its last commit: a history that does not end
    /// in the task's work does not describe it.
    FilesBeyond,
}

/// Work kept on a ref: its name and commit.
pub type Kept = Option<(String, Oid)>;

impl Workspace {
    /// Reads the workspace's files against streams' record (the one pass): see `read`.
    /// `since`: ignored files written from then on are marked; `history`: the agent's commits,
    /// whose files are tracked.
    pub fn read(
        &self,
        repo: &Repo,
        since: Option<read::FsTime>,
        also_tracked: &HashSet<Vec<u8>>,
    ) -> GitResult<Read> {
        let record = match Record::of(repo, self)? {
            Some(record) => record,
            None => {
                return Err(super::damaged(
                    self.path(),
                    "streams has no record of its files",
                ));
            }
        };
        read::read(
            repo,
            self,
            &record,
            &Options {
                since,
                also_tracked,
            },
        )
    }

    /// The task's end. When `take_history` (the caller checked the agent's commits against
    /// the lane) and the agent's last commit holds exactly what its files hold, the agent's
    /// commits are its history. Otherwise one commit of streams' own of the files on top of
    /// `start` (none when they are the start's), and the agent's commits kept on `agent_ref`
    /// (see [`TaskEnd::agent_kept`] for why). The end's tree is always the files'.
    #[allow(clippy::too_many_arguments)]
    pub fn commit(
        &self,
        repo: &Repo,
        read: &Read,
        history: &AgentHistory,
        take_history: bool,
        start: &Oid,
        message: &str,
        identity: &[(String, String)],
        agent_ref: &str,
    ) -> GitResult<TaskEnd> {
        let tree = read.tree(repo)?;
        let Some(tip) = history.tip() else {
            return self.own_commit(repo, tree, start, message, identity, None);
        };
        if take_history && tip.tree == tree {
            return Ok(TaskEnd {
                end: tip.id.clone(),
                agent_history: true,
                agent_kept: None,
            });
        }
        let why = if take_history {
            NotHistory::FilesBeyond
        } else {
            NotHistory::OutsideLane
        };
        let name = refs::keep_ref(
            repo,
            agent_ref,
            &tip.id,
            "streams: the agent's own commits, not taken as the task's history",
        )?;
        self.own_commit(
            repo,
            tree,
            start,
            message,
            identity,
            Some((name, tip.id.clone(), why)),
        )
    }

    /// One commit of streams' own of `tree` on top of `start` (none when it is the start's).
    fn own_commit(
        &self,
        repo: &Repo,
        tree: Oid,
        start: &Oid,
        message: &str,
        identity: &[(String, String)],
        agent_kept: Option<(String, Oid, NotHistory)>,
    ) -> GitResult<TaskEnd> {
        let parent = start.clone();
        if tree == repo.commit_info(start)?.tree {
            return Ok(TaskEnd {
                end: parent,
                agent_history: false,
                agent_kept,
            });
        }
        let (author, committer) = commit::identities(repo, identity)?;
        let end = commit::write_commit(
            repo,
            &tree,
            std::slice::from_ref(&parent),
            &commit::clean_message(message),
            &author,
            &committer,
        )?;
        Ok(TaskEnd {
            end,
            agent_history: false,
            agent_kept,
        })
    }

    /// Takes the files as the task's end `end` (their tree is `end`'s): the record describes
    /// them, and the agent's `.git` is laid out on `branch` at `end`.
    pub fn adopt(&self, repo: &Repo, read: &Read, end: &Oid, branch: &str) -> GitResult<()> {
        read::forget_boundary(self);
        read::update_record(self, read, Some(end))?;
        agent_git::lay_out(repo, self, branch, end)
    }

    /// Keeps everything in the workspace beyond `start` on a ref named after `ref_name` (a free
    /// variant of it): what its files hold, with the agent's commits (where its `HEAD` is, and
    /// its `branch` when `HEAD` left it) as further parents when they could be taken. `None`:
    /// nothing beyond `start`.
    pub fn keep_work(
        &self,
        repo: &Repo,
        start: &Oid,
        branch: &str,
        ref_name: &str,
        message: &str,
    ) -> GitResult<Kept> {
        self.keep_found(repo, start, branch, ref_name, message)
            .map(|(kept, _)| kept)
    }

    /// Puts the workspace back at `commit` on `branch` after `read` (what was found there,
    /// kept by the caller first): what the agent added removed, what it changed written again,
    /// its `.git` laid out there.
    pub fn reset(&self, repo: &Repo, read: &Read, branch: &str, commit: &str) -> GitResult<()> {
        prepare::restore(repo, self, read, commit)?;
        agent_git::lay_out(repo, self, branch, commit)?;
        read::mark_boundary(self)
    }

    /// [`Workspace::keep_work`], then [`Workspace::reset`] to `start`, from one read.
    pub fn keep_and_reset(
        &self,
        repo: &Repo,
        start: &Oid,
        branch: &str,
        ref_name: &str,
        message: &str,
    ) -> GitResult<Kept> {
        let (kept, found) = self.keep_found(repo, start, branch, ref_name, message)?;
        self.reset(repo, &found, branch, start)?;
        Ok(kept)
    }

    fn keep_found(
        &self,
        repo: &Repo,
        start: &Oid,
        branch: &str,
        ref_name: &str,
        message: &str,
    ) -> GitResult<(Kept, Read)> {
        let record = match Record::of(repo, self)? {
            Some(record) => record,
            None => Record::of_commit(repo, start)?,
        };
        let history = AgentHistory::read(repo, self, start)?;
        let also = history.tracked_beyond(repo, start)?;
        let found = read::read(
            repo,
            self,
            &record,
            &Options {
                since: None,
                also_tracked: &also,
            },
        )?;
        let mut tips: Vec<Oid> = history.tip().map(|t| t.id.clone()).into_iter().collect();
        // `HEAD` left the branch (a rebase stopped half way, a checkout): what the agent
        // committed on the branch is its work too.
        let on_branch = matches!(&history.head, Head::Branch { name, .. } if name == branch);
        if !on_branch
            && let Some(tip) = foreign::ref_target(&self.git_dir(), branch)
            && tip != *start
            && !tips.contains(&tip)
            && foreign::bring(repo, &self.git_dir(), &tip)?.is_ok()
            && !refs::is_ancestor(repo, &tip, start)?
        {
            tips.push(tip);
        }
        let kept = keep_with(repo, &found, start, &tips, ref_name, message)?;
        Ok((kept, found))
    }

    /// Whether the workspace holds work that removing it would lose: files that differ from
    /// streams' record (from its agent's `HEAD`, for an earlier version's workspace without a
    /// record). Unreadable: taken as holding work.
    pub fn is_dirty(&self, repo: &Repo) -> bool {
        match self.kind {
            super::Kind::Private { recorded: true } => self
                .read(repo, None, &HashSet::new())
                .map_or(true, |r| !r.is_clean()),
            super::Kind::Private { recorded: false } => {
                let Some(head) = foreign::head(&self.git_dir()).commit().cloned() else {
                    return true;
                };
                Record::of_commit(repo, &head)
                    .and_then(|record| read::read(repo, self, &record, &Options::default()))
                    .map_or(true, |r| !r.is_clean())
            }
            super::Kind::Linked => crate::git::worktree::is_dirty(self.path()),
            super::Kind::Absent | super::Kind::Foreign => false,
        }
    }

    /// Whether the workspace is at `commit` with its files as recorded (a task's end, found
    /// after a crash).
    pub fn is_clean_at(&self, repo: &Repo, commit: &str) -> bool {
        self.recorded_at().as_deref() == Some(commit)
            && self
                .read(repo, None, &HashSet::new())
                .is_ok_and(|r| r.is_clean())
    }
}

/// Keeps `found` (the files) on `ref_name` as a commit on top of `start` (its tree the files',
/// `also` further parents to keep reachable). `None` when there is nothing beyond `start`.
pub(super) fn keep(
    repo: &Repo,
    found: &Read,
    start: &Oid,
    ref_name: &str,
    message: &str,
) -> GitResult<Kept> {
    keep_with(repo, found, start, &[], ref_name, message)
}

fn keep_with(
    repo: &Repo,
    found: &Read,
    start: &Oid,
    also: &[Oid],
    ref_name: &str,
    message: &str,
) -> GitResult<Kept> {
    let tree = found.tree(repo)?;
    let start_tree = repo.commit_info(start)?.tree;
    let also: Vec<&Oid> = also.iter().filter(|a| *a != start).collect();
    let commit = match also.as_slice() {
        // Only the agent's commits, and the files are its last one's: keep that.
        [tip] if repo.commit_info(tip)?.tree == tree => (*tip).clone(),
        [] if tree == start_tree => return Ok(None),
        _ => {
            let parents: Vec<Oid> = std::iter::once(start.clone())
                .chain(also.into_iter().cloned())
                .collect();
            let ident = Ident::streams();
            commit::write_commit(repo, &tree, &parents, message, &ident, &ident)?
        }
    };
    let name = refs::keep_ref(repo, ref_name, &commit, message)?;
    Ok(Some((name, commit)))
}
