//! Reads and commands for reviewing a stream's work: its commits, its diffstat, the merge base
//! it started from, `git diff` shown to a person through their pager, and pushes to a remote.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use super::commit::parse_oid;
use super::repo::commit_info;
use super::{CommitInfo, Git, GitError, GitResult, Oid, Repo};
use crate::work::FileChange;

/// Every file changed from `from` to `to`, renames detected, in git's (path) order.
pub fn diffstat(repo: &Repo, from: &str, to: &str) -> GitResult<Vec<FileChange>> {
    let out = repo.git().run([
        "diff",
        "--numstat",
        "-z",
        "-M",
        "--no-color",
        from,
        to,
        "--",
    ])?;
    Ok(parse_numstat_z(&out.stdout_str()))
}

/// `git diff --numstat -z`: `ADD\tDEL\tPATH\0`, or for a rename `ADD\tDEL\t\0OLD\0NEW\0`;
/// binary files count `-` lines.
fn parse_numstat_z(text: &str) -> Vec<FileChange> {
    let mut fields = text.split('\0');
    let mut files = Vec::new();
    while let Some(head) = fields.next() {
        let mut parts = head.splitn(3, '\t');
        let (Some(ins), Some(del), Some(path)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        let (path, renamed_from) = if path.is_empty() {
            let old = fields.next().unwrap_or_default().to_string();
            let new = fields.next().unwrap_or_default().to_string();
            (new, Some(old))
        } else {
            (path.to_string(), None)
        };
        files.push(FileChange {
            path,
            renamed_from,
            insertions: ins.parse().ok(),
            deletions: del.parse().ok(),
        });
    }
    files
}

/// The unified diff from `from` to `to` as text, for a page to show (`streams ui`,
/// report.html): renames detected, no colours, no external diff or textconv drivers, paths
/// unquoted (the page escapes them itself), in the order of [`diffstat`].
pub fn patch(repo: &Repo, from: &str, to: &str) -> GitResult<String> {
    let out = repo.git().run([
        "-c",
        "core.quotePath=false",
        "diff",
        "-M",
        "--no-color",
        "--no-ext-diff",
        "--no-textconv",
        from,
        to,
        "--",
    ])?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A range's change: its files as [`diffstat`] reads them and, when asked for, its patch as
/// [`patch`] writes it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Change {
    pub files: Vec<FileChange>,
    pub patch: String,
}

/// [`diffstat`] and [`patch`] of one range from one git process (`--numstat -p`): the same
/// files and the same text as the two separate commands give (numstat ignores textconv and
/// external diff drivers either way, and `-z` changes only the numstat part), one git process
/// where a page needed two.
pub fn change(repo: &Repo, from: &str, to: &str) -> GitResult<Change> {
    let out = repo.git().run([
        "-c",
        "core.quotePath=false",
        "diff",
        "-M",
        "--numstat",
        "-p",
        "-z",
        "--no-color",
        "--no-ext-diff",
        "--no-textconv",
        from,
        to,
        "--",
    ])?;
    Ok(split_numstat_patch(&out.stdout))
}

/// Ranges' changes, each read once however many parts of a page show it (the stream's files in
/// its summary, its patch beside them). Commits never change, so what was read for a range in a
/// repository stays true; the cache lives as long as the page being gathered.
pub struct Changes {
    /// Read the patches too (report.html), or the files alone (`streams show`).
    patches: bool,
    read: Mutex<HashMap<(PathBuf, String, String), Arc<Change>>>,
}

impl Changes {
    /// Files alone: [`diffstat`]'s process, `patch` left empty.
    pub fn files_only() -> Changes {
        Changes {
            patches: false,
            read: Mutex::default(),
        }
    }

    /// Files and patches, from [`change`]'s one process per range.
    pub fn with_patches() -> Changes {
        Changes {
            patches: true,
            read: Mutex::default(),
        }
    }

    /// The change from `from` to `to` in `repo`, read now unless read before.
    pub fn get(&self, repo: &Repo, from: &str, to: &str) -> GitResult<Arc<Change>> {
        let key = (
            repo.common_dir().to_path_buf(),
            from.to_string(),
            to.to_string(),
        );
        if let Some(known) = self.lock().get(&key) {
            return Ok(Arc::clone(known));
        }
        let read = Arc::new(if self.patches {
            change(repo, from, to)?
        } else {
            Change {
                files: diffstat(repo, from, to)?,
                patch: String::new(),
            }
        });
        self.lock().insert(key, Arc::clone(&read));
        Ok(read)
    }

    /// Reads the changes of `ranges` in `repo` side by side (a git process each, a few at a
    /// time), for the [`get`](Self::get)s that follow. A range that fails is left for its `get`
    /// to read again and report.
    pub fn read_ahead(&self, repo: &Repo, ranges: &[(Oid, Oid)]) {
        let workers = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .clamp(1, 4)
            .min(ranges.len());
        if workers <= 1 {
            return;
        }
        let next = std::sync::atomic::AtomicUsize::new(0);
        std::thread::scope(|scope| {
            for _ in 0..workers {
                scope.spawn(|| {
                    while let Some((from, to)) =
                        ranges.get(next.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
                    {
                        let _ = self.get(repo, from, to);
                    }
                });
            }
        });
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(PathBuf, String, String), Arc<Change>>> {
        self.read.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// `git diff --numstat -p -z`: the numstat records (see [`parse_numstat_z`]), an empty record
/// (one NUL) when a patch follows, then the patch.
fn split_numstat_patch(out: &[u8]) -> Change {
    let mut at = 0;
    while at < out.len() && out[at] != 0 {
        // A record's head `ADD\tDEL\tPATH`; an empty PATH means OLD and NEW follow.
        let end = field_end(out, at);
        let mut head = out[at..end].splitn(3, |&b| b == b'\t');
        let renamed = head.nth(2).is_some_and(<[u8]>::is_empty);
        at = end + 1;
        if renamed {
            at = field_end(out, at) + 1;
            at = field_end(out, at) + 1;
        }
    }
    let numstat = String::from_utf8_lossy(&out[..at.min(out.len())]);
    let patch = out.get(at + 1..).unwrap_or_default();
    Change {
        files: parse_numstat_z(&numstat),
        patch: String::from_utf8_lossy(patch).into_owned(),
    }
}

/// Where the NUL-terminated field starting at `at` ends (the output's end if it is cut short).
fn field_end(out: &[u8], at: usize) -> usize {
    out.get(at..)
        .and_then(|rest| rest.iter().position(|&b| b == 0))
        .map_or(out.len(), |n| at + n)
}

/// The commits reachable from `to` and not from `from`, oldest first (as `git log --reverse
/// from..to` lists them).
pub fn commits_between(repo: &Repo, from: &str, to: &str) -> GitResult<Vec<CommitInfo>> {
    let r = repo.open()?;
    let mut walk = r.revwalk().map_err(|e| GitError::library("revwalk", e))?;
    walk.set_sorting(git2::Sort::TOPOLOGICAL | git2::Sort::REVERSE)
        .map_err(|e| GitError::library("revwalk", e))?;
    walk.push(parse_oid(to)?)
        .map_err(|e| GitError::library("revwalk", e))?;
    walk.hide(parse_oid(from)?)
        .map_err(|e| GitError::library("revwalk", e))?;
    walk.map(|id| {
        let id = id.map_err(|e| GitError::library("revwalk", e))?;
        commit_info(&r, &Oid::from(id))
    })
    .collect()
}

/// The best common ancestor of two commits, if they have one.
pub fn merge_base(repo: &Repo, a: &str, b: &str) -> GitResult<Option<Oid>> {
    let r = repo.open()?;
    match r.merge_base(parse_oid(a)?, parse_oid(b)?) {
        Ok(id) => Ok(Some(id.into())),
        Err(e) if e.code() == git2::ErrorCode::NotFound => Ok(None),
        Err(e) => Err(GitError::library(
            format!("could not find a merge base of {a} and {b}"),
            e,
        )),
    }
}

/// What `show_diff` shows.
pub struct DiffRequest<'a> {
    /// Where to run git: the user's current directory, so relative paths mean what they mean
    /// to `git diff` there.
    pub dir: &'a Path,
    pub from: &'a str,
    pub to: &'a str,
    /// `--stat` instead of the patch.
    pub stat: bool,
    /// Limit to these paths (pathspecs, as `git diff -- PATHS`).
    pub paths: &'a [String],
    /// `Some(true)`/`Some(false)` force colours on or off; `None` lets git decide (its
    /// `color.diff` config and whether stdout is a terminal), as `git diff` does.
    pub color: Option<bool>,
}

/// Runs `git diff` for a person: in the user's checkout (their config: pager, colours, diff
/// drivers; `dir` inside it), with stdin, stdout and stderr inherited and in streams' own process group, so the
/// pager can read the terminal. Returns git's exit code.
pub fn show_diff(request: &DiffRequest<'_>) -> GitResult<i32> {
    let mut args: Vec<String> = vec!["diff".into()];
    match request.color {
        Some(true) => args.push("--color=always".into()),
        Some(false) => args.push("--no-color".into()),
        None => {}
    }
    if request.stat {
        args.push("--stat".into());
    }
    args.push(request.from.to_string());
    args.push(request.to.to_string());
    args.push("--".into());
    args.extend(request.paths.iter().cloned());
    interactive(request.dir, &args)
}

/// Pushes `refspecs` to `remote` (a remote's name or URL). Asks nothing: credentials come from
/// the user's helpers or fail with git's own message.
pub fn push(repo: &Repo, remote: &str, refspecs: &[String], force: bool) -> GitResult<()> {
    let mut args: Vec<String> = vec!["push".into()];
    if force {
        // A stream branch is rewritten when a task is retried: a plain push would be refused
        // where the remote has the old tip; with the lease, only if nobody else pushed there.
        args.push("--force-with-lease".into());
    }
    args.push(remote.to_string());
    args.extend(refspecs.iter().cloned());
    Git::new(repo.root()).run(&args)?;
    Ok(())
}

/// The URL of a remote, if it is configured.
pub fn remote_url(repo: &Repo, remote: &str) -> Option<String> {
    repo.git()
        .read(["remote", "get-url", remote])
        .ok()
        .filter(|u| !u.is_empty())
}

fn interactive(dir: &Path, args: &[String]) -> GitResult<i32> {
    let mut cmd = std::process::Command::new("git");
    cmd.arg("-C").arg(dir).args(args);
    for var in crate::git_env::REDIRECTING_VARS {
        cmd.env_remove(var);
    }
    cmd.stdin(Stdio::inherit())
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit());
    let status = cmd.status().map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            GitError::GitMissing
        } else {
            GitError::Spawn {
                args: args.join(" "),
                source,
            }
        }
    })?;
    Ok(status.code().unwrap_or(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A commit of `files` (path, bytes: the whole tree) on top of `parent` in the repository
    /// at `dir`.
    fn commit(dir: &Path, parent: Option<git2::Oid>, files: &[(&str, &[u8])]) -> git2::Oid {
        let r = git2::Repository::open(dir).unwrap();
        let mut builder = git2::build::TreeUpdateBuilder::new();
        for (path, bytes) in files {
            builder.upsert(path, r.blob(bytes).unwrap(), git2::FileMode::Blob);
        }
        let base = r.treebuilder(None).unwrap().write().unwrap();
        let tree = builder
            .create_updated(&r, &r.find_tree(base).unwrap())
            .unwrap();
        let who = git2::Signature::new("T", "t@t", &git2::Time::new(1, 0)).unwrap();
        let parents: Vec<git2::Commit<'_>> = parent
            .map(|p| r.find_commit(p).unwrap())
            .into_iter()
            .collect();
        let parents: Vec<&git2::Commit<'_>> = parents.iter().collect();
        r.commit(None, &who, &who, "c", &r.find_tree(tree).unwrap(), &parents)
            .unwrap()
    }

    /// One process gives what the two did: the same files (renames, binaries, a tab in a
    /// path) and the same patch text.
    #[test]
    fn one_change_is_the_diffstat_and_the_patch() {
        let dir = tempfile::tempdir().unwrap();
        git2::Repository::init(dir.path()).unwrap();
        let lines: String = (1..=40).map(|i| format!("line {i}\n")).collect();
        let first = commit(
            dir.path(),
            None,
            &[
                ("a.txt", b"a\nb\n"),
                ("bin.dat", b"bin\0ary"),
                ("old.txt", lines.as_bytes()),
            ],
        );
        let moved = format!("{lines}line 41\n");
        let second = commit(
            dir.path(),
            Some(first),
            &[
                ("a.txt", b"a\nc\nd\n"),
                ("bin.dat", b"bin\0ary 2"),
                ("new name.txt", moved.as_bytes()),
                ("t\tab.txt", b"tab\n"),
            ],
        );
        let repo = Repo::discover(dir.path()).unwrap();
        let (from, to) = (first.to_string(), second.to_string());
        let change = change(&repo, &from, &to).unwrap();
        assert_eq!(change.files, diffstat(&repo, &from, &to).unwrap());
        assert_eq!(change.patch, patch(&repo, &from, &to).unwrap());
        assert_eq!(change.files.len(), 4, "{:?}", change.files);
        assert!(
            change
                .files
                .iter()
                .any(|f| f.renamed_from.as_deref() == Some("old.txt"))
        );
        // Nothing changed: nothing at all.
        assert_eq!(super::change(&repo, &to, &to).unwrap(), Change::default());
    }

    #[test]
    fn a_path_ending_in_a_tab_is_not_a_rename() {
        let out = b"1\t0\tx\t\x002\t1\t\0old\0new\0\0diff --git a/x b/x\n";
        let change = split_numstat_patch(out);
        assert_eq!(change.files.len(), 2, "{:?}", change.files);
        assert_eq!(change.files[0].path, "x\t");
        assert_eq!(change.files[1].renamed_from.as_deref(), Some("old"));
        assert_eq!(change.patch, "diff --git a/x b/x\n");
    }

    #[test]
    fn numstat_with_renames_and_binaries() {
        let text = "1\t0\ta.txt\0-\t-\tbin.dat\x002\t1\t\0old name.rs\0new name.rs\0";
        let files = parse_numstat_z(text);
        assert_eq!(files.len(), 3);
        assert_eq!(files[0].path, "a.txt");
        assert_eq!(files[0].insertions, Some(1));
        assert_eq!(files[1].insertions, None);
        assert_eq!(files[2].path, "new name.rs");
        assert_eq!(files[2].renamed_from.as_deref(), Some("old name.rs"));
        assert_eq!(files[2].deletions, Some(1));
    }
}
