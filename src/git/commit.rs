//! Commit objects: who commits, writing commits (with libgit2, for integration and for a task's
//! end), reading history.
//!
//! Commit objects for integration are written with libgit2: a commit is a few hundred bytes and
//! spawning `git commit-tree` for each would double the cost of every integrated commit; the
//! committer identity comes from `git var GIT_COMMITTER_IDENT`, so it honours the same config
//! and environment `git commit-tree` would.

use super::repo::commit_info;
use super::{CommitInfo, GitError, GitResult, Oid, Repo};

/// A name, email and timestamp, as in a commit header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ident {
    pub name: String,
    pub email: String,
    pub time: i64,
    /// Minutes east of UTC.
    pub offset: i32,
}

impl Ident {
    fn signature(&self) -> GitResult<git2::Signature<'static>> {
        git2::Signature::new(
            &self.name,
            &self.email,
            &git2::Time::new(self.time, self.offset),
        )
        .map_err(|e| GitError::library("invalid identity", e))
    }

    /// streams itself, now: for the commits that keep work on a ref.
    pub fn streams() -> Ident {
        let time = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        Ident {
            name: "streams".into(),
            email: "streams@localhost".into(),
            time,
            offset: 0,
        }
    }

    pub fn of_author(info: &CommitInfo) -> Ident {
        Ident {
            name: info.author_name.clone(),
            email: info.author_email.clone(),
            time: info.author_time.0,
            offset: info.author_time.1,
        }
    }
}

/// The committer git would use right now (config, `GIT_COMMITTER_*` environment, clock).
pub fn committer_ident(repo: &Repo, env: &[(String, String)]) -> GitResult<Ident> {
    let mut git = repo.git();
    for (k, v) in env {
        git = git.with_env(k, v);
    }
    let line = git.read(["var", "GIT_COMMITTER_IDENT"])?;
    parse_ident(&line).ok_or_else(|| GitError::Command {
        args: "var GIT_COMMITTER_IDENT".into(),
        dir: repo.common_dir().to_path_buf(),
        stderr: format!("unexpected identity line: {line}"),
    })
}

/// The author and committer `git commit` would use right now (config, `GIT_AUTHOR_*` and
/// `GIT_COMMITTER_*` in the environment and `env`, the clock), from one git process.
pub fn identities(repo: &Repo, env: &[(String, String)]) -> GitResult<(Ident, Ident)> {
    let mut git = repo.git();
    for (k, v) in env {
        git = git.with_env(k, v);
    }
    let out = git.read(["var", "-l"])?;
    let find = |name: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix('='))
            .and_then(parse_ident)
            .ok_or_else(|| GitError::Command {
                args: "var -l".into(),
                dir: repo.common_dir().to_path_buf(),
                stderr: format!("no {name} in its output"),
            })
    };
    Ok((find("GIT_AUTHOR_IDENT")?, find("GIT_COMMITTER_IDENT")?))
}

/// The commits in `from..to` (reachable from `to`, not from `from`), parents before children;
/// `None` when there are more than `limit`.
pub fn commits_between(
    repo: &Repo,
    from: &str,
    to: &str,
    limit: usize,
) -> GitResult<Option<Vec<Oid>>> {
    let r = repo.open()?;
    let fail = |e| GitError::library(format!("could not walk the history {from}..{to}"), e);
    let mut walk = r.revwalk().map_err(fail)?;
    walk.set_sorting(git2::Sort::TOPOLOGICAL | git2::Sort::REVERSE)
        .map_err(fail)?;
    walk.push(parse_oid(to)?).map_err(fail)?;
    walk.hide(parse_oid(from)?).map_err(fail)?;
    let mut out = Vec::new();
    for step in walk {
        out.push(step.map_err(fail)?.into());
        if out.len() > limit {
            return Ok(None);
        }
    }
    Ok(Some(out))
}

/// "Name <email> 1767225600 +0000"
fn parse_ident(line: &str) -> Option<Ident> {
    let (name, rest) = line.split_once(" <")?;
    let (email, rest) = rest.split_once("> ")?;
    let mut parts = rest.split_whitespace();
    let time = parts.next()?.parse().ok()?;
    let tz = parts.next()?;
    let sign = if tz.starts_with('-') { -1 } else { 1 };
    let digits = tz.trim_start_matches(['+', '-']);
    let hours: i32 = digits.get(0..2)?.parse().ok()?;
    let minutes: i32 = digits.get(2..4)?.parse().ok()?;
    Some(Ident {
        name: name.to_string(),
        email: email.to_string(),
        time,
        offset: sign * (hours * 60 + minutes),
    })
}

/// The first-parent chain from `from` (exclusive) to `to` (inclusive), oldest first.
pub fn first_parent_range(repo: &Repo, from: &str, to: &str) -> GitResult<Vec<CommitInfo>> {
    let r = repo.open()?;
    let mut chain = Vec::new();
    let mut current = Oid::from(to);
    while current != from {
        let info = commit_info(&r, &current)?;
        let parent = info.parents.first().cloned();
        chain.push(info);
        match parent {
            Some(p) => current = p,
            // `from` is not on the first-parent chain: the caller checked ancestry, so this is
            // a root commit reached through a merge; stop here.
            None => break,
        }
    }
    chain.reverse();
    Ok(chain)
}

/// Writes a commit object (no ref moves).
pub fn write_commit(
    repo: &Repo,
    tree: &str,
    parents: &[Oid],
    message: &str,
    author: &Ident,
    committer: &Ident,
) -> GitResult<Oid> {
    let r = repo.open()?;
    let tree = r
        .find_tree(parse_oid(tree)?)
        .map_err(|e| GitError::library(format!("could not read tree {tree}"), e))?;
    let parents = parents
        .iter()
        .map(|p| {
            r.find_commit(parse_oid(p)?)
                .map_err(|e| GitError::library(format!("could not read {p}"), e))
        })
        .collect::<GitResult<Vec<_>>>()?;
    let parent_refs: Vec<&git2::Commit> = parents.iter().collect();
    let oid = r
        .commit(
            None,
            &author.signature()?,
            &committer.signature()?,
            message,
            &tree,
            &parent_refs,
        )
        .map_err(|e| GitError::library("could not write a commit", e))?;
    Ok(oid.into())
}

pub fn tree_of(repo: &Repo, commit: &str) -> GitResult<Oid> {
    Ok(repo.commit_info(commit)?.tree)
}

/// The message as `git commit -F` stores it (its default `whitespace` cleanup): trailing
/// whitespace cut from every line, runs of blank lines made one, blank lines at either end
/// dropped, one final newline.
pub fn clean_message(message: &str) -> String {
    let mut out = String::new();
    let mut blank_run = false;
    // Git's own idea of whitespace: not Unicode's (a title may end in an ideographic space).
    for line in message
        .lines()
        .map(|l| l.trim_end_matches([' ', '\t', '\r']))
    {
        if line.is_empty() {
            blank_run = !out.is_empty();
            continue;
        }
        if blank_run {
            out.push('\n');
            blank_run = false;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// Identity to fall back on when the user's git has none configured, so that streams' own
/// commits (and agents' commits) do not fail with "Please tell me who you are".
pub fn identity_env(repo: &Repo) -> Vec<(String, String)> {
    let has_ident = repo
        .git()
        .output(["var", "GIT_COMMITTER_IDENT"], None)
        .map(|o| o.status.success())
        .unwrap_or(false);
    if has_ident {
        return Vec::new();
    }
    [
        ("GIT_AUTHOR_NAME", "streams"),
        ("GIT_AUTHOR_EMAIL", "streams@localhost"),
        ("GIT_COMMITTER_NAME", "streams"),
        ("GIT_COMMITTER_EMAIL", "streams@localhost"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// The identity git commits with here (the user's configuration, or the environment), as the
/// variables that set it: for an agent whose shell hides the git configuration (Gemini CLI's),
/// so that its own commits still have an author. Empty when git has none.
pub fn ident_vars(repo: &Repo) -> Vec<(String, String)> {
    let mut vars = Vec::new();
    for (ident, name, email) in [
        ("GIT_AUTHOR_IDENT", "GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL"),
        (
            "GIT_COMMITTER_IDENT",
            "GIT_COMMITTER_NAME",
            "GIT_COMMITTER_EMAIL",
        ),
    ] {
        let Ok(out) = repo.git().output(["var", ident], None) else {
            continue;
        };
        if !out.status.success() {
            continue;
        }
        if let Some(found) = parse_ident(String::from_utf8_lossy(&out.stdout).trim()) {
            vars.push((name.to_string(), found.name));
            vars.push((email.to_string(), found.email));
        }
    }
    vars
}

pub(crate) fn parse_oid(id: &str) -> GitResult<git2::Oid> {
    git2::Oid::from_str(id).map_err(|_| GitError::BadRevision {
        rev: id.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_idents() {
        let ident = parse_ident("Test User <t@example.com> 1767225600 +0130").unwrap();
        assert_eq!(ident.name, "Test User");
        assert_eq!(ident.email, "t@example.com");
        assert_eq!(ident.time, 1767225600);
        assert_eq!(ident.offset, 90);
        assert_eq!(parse_ident("x <y> 5 -0200").unwrap().offset, -120);
    }

    /// `git stripspace` is the cleanup `git commit -F` applies; ours must agree with it.
    #[test]
    fn messages_are_cleaned_as_git_commit_cleans_them() {
        for message in [
            "Add login",
            "Add login\n",
            "\n\n  Add login  \n\n\n\nBody line \t\n\n\nStreams-Stream: api\nStreams-Task: 1\n\n",
            "one\r\ntwo\r\n",
            "   \n\t\n",
            "a\n \nb",
            "\u{3000}title\u{3000}\n\u{a0}\nbody\u{b}\u{c}\n",
        ] {
            let mut git = std::process::Command::new("git")
                .arg("stripspace")
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            use std::io::Write;
            git.stdin
                .take()
                .unwrap()
                .write_all(message.as_bytes())
                .unwrap();
            let expected = String::from_utf8(git.wait_with_output().unwrap().stdout).unwrap();
            assert_eq!(clean_message(message), expected, "for {message:?}");
        }
    }
}
