//! Reads and commands for reviewing a stream's work: its commits, its diffstat, the merge base
//! it started from, `git diff` shown to a person through their pager, and pushes to a remote.

use std::path::Path;
use std::process::Stdio;

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
