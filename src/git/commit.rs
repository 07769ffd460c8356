//! Commit objects: who commits, writing commits (with libgit2, for integration and for a task's
//! end), reading history.
//!
//! Commit objects for integration are written with libgit2: a commit is a few hundred bytes and
//! spawning `git commit-tree` for each would double the cost of every integrated commit; the
//! committer identity comes from `git var GIT_COMMITTER_IDENT`, so it honours the same config
//! and environment `git commit-tree` would (asked once a minute, the clock read for each
//! commit).

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
    let line = git_var(repo, env, "GIT_COMMITTER_IDENT")?;
    let ident = parse_ident(&line).ok_or_else(|| GitError::Command {
        args: "var GIT_COMMITTER_IDENT".into(),
        dir: repo.common_dir().to_path_buf(),
        stderr: format!("unexpected identity line: {line}"),
    })?;
    Ok(now_unless_set(ident, env, "GIT_COMMITTER_DATE"))
}

/// The author and committer `git commit` would use right now (config, `GIT_AUTHOR_*` and
/// `GIT_COMMITTER_*` in the environment and `env`, the clock), from one git process.
pub fn identities(repo: &Repo, env: &[(String, String)]) -> GitResult<(Ident, Ident)> {
    let out = git_var(repo, env, "-l")?;
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
    Ok((
        now_unless_set(find("GIT_AUTHOR_IDENT")?, env, "GIT_AUTHOR_DATE"),
        now_unless_set(find("GIT_COMMITTER_IDENT")?, env, "GIT_COMMITTER_DATE"),
    ))
}

/// How long what `git var` said is taken as still true: a run commits and integrates every
/// task, and asking git each time cost two processes a task. A change of the user's identity
/// (or of the time zone's offset) is seen within this time.
const IDENT_FRESH: std::time::Duration = std::time::Duration::from_secs(60);

/// What `git var` said, by repository, environment and question, and when.
type VarKey = (std::path::PathBuf, Vec<(String, String)>, String);
static VARS: std::sync::Mutex<Vec<(VarKey, std::time::Instant, String)>> =
    std::sync::Mutex::new(Vec::new());

/// `git var WHAT` in `repo` with `env`, asked at most once per [`IDENT_FRESH`]. The clock in
/// its answer is the time it was asked: [`now_unless_set`] puts the present in.
fn git_var(repo: &Repo, env: &[(String, String)], what: &str) -> GitResult<String> {
    let key: VarKey = (
        repo.common_dir().to_path_buf(),
        env.to_vec(),
        what.to_string(),
    );
    let mut vars = VARS.lock().unwrap_or_else(|e| e.into_inner());
    vars.retain(|(_, at, _)| at.elapsed() < IDENT_FRESH);
    if let Some((_, _, known)) = vars.iter().find(|(k, _, _)| *k == key) {
        return Ok(known.clone());
    }
    let mut git = repo.git();
    for (k, v) in env {
        git = git.with_env(k, v);
    }
    let out = git.read(["var", what])?;
    vars.push((key, std::time::Instant::now(), out.clone()));
    Ok(out)
}

/// `ident` at the present second, unless its date comes from `date_var` (in `env` or streams'
/// environment), which git reads instead of the clock.
fn now_unless_set(mut ident: Ident, env: &[(String, String)], date_var: &str) -> Ident {
    let set = env.iter().any(|(k, _)| k == date_var) || std::env::var_os(date_var).is_some();
    if !set {
        ident.time = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
    }
    ident
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
    let has_ident = git_var(repo, &[], "GIT_COMMITTER_IDENT").is_ok();
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
