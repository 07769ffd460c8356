//! The primitives of integration: three-way merges without a working tree, commit objects,
//! compare-and-swap ref moves, and the trailers that mark whose work a commit carries.
//!
//! Merges use `git merge-tree --write-tree` (the user's git, its merge drivers and attributes);
//! libgit2's merges are several times slower on big repositories and skip merge drivers. Commit
//! objects are written with libgit2: a commit is a few hundred bytes and spawning
//! `git commit-tree` for each would double the cost of every integrated commit; the committer
//! identity comes from `git var GIT_COMMITTER_IDENT`, so it honours the same config and
//! environment `git commit-tree` would. Ref moves go through `git update-ref` with the expected
//! old value, so a ref is never moved from a state we did not see.

use super::repo::commit_info;
use super::work::parse_oid;
use super::{CommitInfo, Git, GitError, GitResult, Oid, Repo, ZERO_OID};

pub const TRAILER_STREAM: &str = "Streams-Stream";
pub const TRAILER_TASK: &str = "Streams-Task";

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

/// One conflicted index entry of a merge: what `git ls-files -u` would show.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConflictEntry {
    pub mode: String,
    pub oid: Oid,
    /// 1 = base, 2 = ours, 3 = theirs.
    pub stage: u8,
    pub path: String,
}

#[derive(Clone, Debug)]
pub enum MergeOutcome {
    Clean {
        tree: Oid,
    },
    /// `tree` holds the conflicted files with conflict markers (ours for binary files).
    Conflict {
        tree: Oid,
        entries: Vec<ConflictEntry>,
        messages: Vec<String>,
    },
}

impl MergeOutcome {
    /// The distinct conflicted paths.
    pub fn conflicted_paths(&self) -> Vec<String> {
        match self {
            MergeOutcome::Clean { .. } => Vec::new(),
            MergeOutcome::Conflict { entries, .. } => {
                let mut paths: Vec<String> = entries.iter().map(|e| e.path.clone()).collect();
                paths.dedup();
                paths
            }
        }
    }
}

/// A three-way merge of commits `ours` and `theirs` without touching any working tree. With
/// `base`, that commit is the merge base (a cherry-pick when it is the parent of `theirs`);
/// otherwise git finds it.
pub fn merge_tree(
    repo: &Repo,
    base: Option<&str>,
    ours: &str,
    theirs: &str,
) -> GitResult<MergeOutcome> {
    let mut args = vec!["merge-tree".to_string(), "--write-tree".into(), "-z".into()];
    if let Some(base) = base {
        args.push(format!("--merge-base={base}"));
    }
    args.push(ours.to_string());
    args.push(theirs.to_string());
    let out = repo.git().output(args.clone(), None)?;
    let code = out.status.code();
    if code != Some(0) && code != Some(1) {
        return Err(GitError::Command {
            args: args.join(" "),
            dir: repo.common_dir().to_path_buf(),
            stderr: out.stderr_str(),
        });
    }
    parse_merge_tree(&out.stdout, code == Some(1)).ok_or_else(|| GitError::Command {
        args: args.join(" "),
        dir: repo.common_dir().to_path_buf(),
        stderr: "could not read the output of git merge-tree".into(),
    })
}

/// Three-way merges of `(base, ours, theirs)` commits without a working tree, like
/// [`merge_tree`] with an explicit base: the tree of each merge that is clean, `None` for each
/// that conflicts (ask [`merge_tree`] for the details). With git 2.45 or newer, which reads a
/// merge base on each line of `git merge-tree --stdin`, the whole batch is one git process;
/// older git runs one process per merge.
pub fn merge_trees(repo: &Repo, merges: &[(Oid, Oid, Oid)]) -> GitResult<Vec<Option<Oid>>> {
    if merges.len() < 2 || super::git_version() < (2, 45, 0) {
        return merges
            .iter()
            .map(|(base, ours, theirs)| {
                Ok(match merge_tree(repo, Some(base), ours, theirs)? {
                    MergeOutcome::Clean { tree } => Some(tree),
                    MergeOutcome::Conflict { .. } => None,
                })
            })
            .collect();
    }
    let input: String = merges
        .iter()
        .map(|(base, ours, theirs)| format!("{base} -- {ours} {theirs}\n"))
        .collect();
    Ok(merge_tree_stdin(repo, &input, merges.len())?
        .into_iter()
        .map(|m| m.clean.then_some(m.tree))
        .collect())
}

/// One merge of a batch: the tree it gives and the conflicted paths (empty when clean).
#[derive(Clone, Debug)]
pub struct BatchMerge {
    pub tree: Oid,
    pub clean: bool,
    pub conflicts: Vec<String>,
}

/// Merges many pairs of commits with one `git merge-tree --stdin` process (each pair with its
/// own merge base), in memory.
pub fn merge_batch(repo: &Repo, pairs: &[(Oid, Oid)]) -> GitResult<Vec<BatchMerge>> {
    if pairs.is_empty() {
        return Ok(Vec::new());
    }
    let input: String = pairs.iter().map(|(a, b)| format!("{a} {b}\n")).collect();
    merge_tree_stdin(repo, &input, pairs.len())
}

/// Runs `count` merges, one per line of `input`, in one `git merge-tree --stdin` process.
fn merge_tree_stdin(repo: &Repo, input: &str, count: usize) -> GitResult<Vec<BatchMerge>> {
    let out = repo.git().run_with_stdin(
        [
            "merge-tree",
            "--stdin",
            "-z",
            "--name-only",
            "--no-messages",
        ],
        Some(input.as_bytes()),
    )?;
    let unreadable = || GitError::Command {
        args: "merge-tree --stdin".into(),
        dir: repo.common_dir().to_path_buf(),
        stderr: "could not read the output of git merge-tree --stdin".into(),
    };
    // Per merge: `<1 clean | 0 conflicted>\0<tree>\0[<path>\0...]\0`.
    let mut fields = out.stdout.split(|b| *b == 0);
    let mut results = Vec::with_capacity(count);
    for _ in 0..count {
        let status = fields.next().ok_or_else(unreadable)?;
        let tree = String::from_utf8_lossy(fields.next().ok_or_else(unreadable)?).into_owned();
        let mut conflicts = Vec::new();
        for field in fields.by_ref() {
            if field.is_empty() {
                break;
            }
            conflicts.push(String::from_utf8_lossy(field).into_owned());
        }
        let clean = match status {
            _ if tree.is_empty() => return Err(unreadable()),
            b"1" => true,
            b"0" => false,
            _ => return Err(unreadable()),
        };
        if clean {
            conflicts.clear();
        }
        results.push(BatchMerge {
            tree,
            clean,
            conflicts,
        });
    }
    Ok(results)
}

/// The conflicted paths of each pair (see [`merge_batch`]); an empty list means it merges
/// cleanly.
pub fn conflicts_batch(repo: &Repo, pairs: &[(Oid, Oid)]) -> GitResult<Vec<Vec<String>>> {
    Ok(merge_batch(repo, pairs)?
        .into_iter()
        .map(|m| m.conflicts)
        .collect())
}

/// `<tree>\0` then, on conflict, `<mode> <oid> <stage>\t<path>\0`..., `\0`, then messages as
/// `<n paths>\0<path>\0...<type>\0<message>\0`.
fn parse_merge_tree(stdout: &[u8], conflicted: bool) -> Option<MergeOutcome> {
    let mut fields = stdout.split(|b| *b == 0);
    let tree = String::from_utf8_lossy(fields.next()?).trim().to_string();
    if !conflicted {
        return Some(MergeOutcome::Clean { tree });
    }
    let mut entries = Vec::new();
    for field in fields.by_ref() {
        if field.is_empty() {
            break;
        }
        let field = String::from_utf8_lossy(field);
        let (meta, path) = field.split_once('\t')?;
        let mut meta = meta.split(' ');
        entries.push(ConflictEntry {
            mode: meta.next()?.to_string(),
            oid: meta.next()?.to_string(),
            stage: meta.next()?.parse().ok()?,
            path: path.to_string(),
        });
    }
    let mut messages = Vec::new();
    let rest: Vec<&[u8]> = fields.collect();
    let mut i = 0;
    while i < rest.len() {
        let Ok(count) = String::from_utf8_lossy(rest[i]).parse::<usize>() else {
            break;
        };
        let message_index = i + 1 + count + 1;
        if let Some(message) = rest.get(message_index) {
            messages.push(String::from_utf8_lossy(message).trim_end().to_string());
        }
        i = message_index + 1;
    }
    Some(MergeOutcome::Conflict {
        tree,
        entries,
        messages,
    })
}

/// The first-parent chain from `from` (exclusive) to `to` (inclusive), oldest first.
pub fn first_parent_range(repo: &Repo, from: &str, to: &str) -> GitResult<Vec<CommitInfo>> {
    let r = repo.open()?;
    let mut chain = Vec::new();
    let mut current = to.to_string();
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
    Ok(oid.to_string())
}

pub fn tree_of(repo: &Repo, commit: &str) -> GitResult<Oid> {
    Ok(repo.commit_info(commit)?.tree)
}

/// Moves `name` to `new` only if it points at `old` (`None`: only if it does not exist).
pub fn update_ref(
    repo: &Repo,
    name: &str,
    new: &str,
    old: Option<&str>,
    message: &str,
) -> GitResult<()> {
    repo.git().run([
        "update-ref",
        "-m",
        message,
        name,
        new,
        old.unwrap_or(ZERO_OID),
    ])?;
    Ok(())
}

/// Keeps `oid` reachable under `name`, never overwriting what another ref keeps: when `name`
/// already holds something else, `name-2`, `name-3`, ... is used. Returns the name used.
pub fn keep_ref(git: &Git, name: &str, oid: &str, message: &str) -> GitResult<String> {
    for n in 1..=1000 {
        let candidate = if n == 1 {
            name.to_string()
        } else {
            format!("{name}-{n}")
        };
        // Create-only: the all-zero old value means "must not exist yet".
        let out = git.output(
            ["update-ref", "-m", message, &candidate, oid, ZERO_OID],
            None,
        )?;
        if out.status.success() {
            return Ok(candidate);
        }
        let existing = git.output(
            [
                "rev-parse",
                "-q",
                "--verify",
                &format!("{candidate}^{{object}}"),
            ],
            None,
        )?;
        if existing.status.success() && existing.stdout_str().trim() == oid {
            return Ok(candidate);
        }
        if !existing.status.success() {
            // Not a name clash: the update itself failed.
            return Err(GitError::Command {
                args: format!("update-ref {candidate}"),
                dir: git.dir().to_path_buf(),
                stderr: out.stderr_str(),
            });
        }
    }
    Err(GitError::Command {
        args: format!("update-ref {name}"),
        dir: git.dir().to_path_buf(),
        stderr: "a thousand refs of that name exist already".into(),
    })
}

/// Points each `(name, new)` at its commit whatever it was, in one `git update-ref --stdin`
/// transaction (all or none): one git process for the batch instead of one per ref.
pub fn set_refs(repo: &Repo, refs: &[(String, Oid)], message: &str) -> GitResult<()> {
    if refs.is_empty() {
        return Ok(());
    }
    let input: String = refs
        .iter()
        .map(|(name, new)| format!("update {name} {new}\n"))
        .collect();
    repo.git().run_with_stdin(
        ["update-ref", "-m", message, "--stdin"],
        Some(input.as_bytes()),
    )?;
    Ok(())
}

pub fn delete_ref(repo: &Repo, name: &str) -> GitResult<()> {
    repo.git().run(["update-ref", "-d", name])?;
    Ok(())
}

/// Every ref under `prefix` and its target, sorted by name.
pub fn refs_under(repo: &Repo, prefix: &str) -> GitResult<Vec<(String, Oid)>> {
    let out = repo
        .git()
        .run(["for-each-ref", "--format=%(refname) %(objectname)", prefix])?;
    Ok(out
        .stdout_str()
        .lines()
        .filter_map(|l| {
            l.split_once(' ')
                .map(|(n, o)| (n.to_string(), o.to_string()))
        })
        .collect())
}

/// Appends trailers to a commit message, keeping an existing trailer block together.
pub fn with_trailers(message: &str, trailers: &[(&str, String)]) -> String {
    let body = message.trim_end();
    let missing: Vec<String> = trailers
        .iter()
        .map(|(k, v)| format!("{k}: {v}"))
        .filter(|line| !body.lines().any(|l| l.trim() == line))
        .collect();
    if missing.is_empty() {
        return format!("{body}\n");
    }
    let last_paragraph = body.rsplit("\n\n").next().unwrap_or("");
    let ends_with_trailers = body.contains("\n\n")
        && !last_paragraph.is_empty()
        && last_paragraph.lines().all(|l| {
            l.split_once(": ").is_some_and(|(k, _)| {
                !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            })
        });
    let separator = if ends_with_trailers { "\n" } else { "\n\n" };
    format!("{body}{separator}{}\n", missing.join("\n"))
}

/// The (stream, task number) pairs named by `Streams-Stream` / `Streams-Task` trailers on the
/// commits in `base..tip`: the tasks whose work is already on that branch.
pub fn integrated_tasks(repo: &Repo, base: &str, tip: &str) -> GitResult<Vec<(String, usize)>> {
    let r = repo.open()?;
    let mut walk = r.revwalk().map_err(|e| GitError::library("revwalk", e))?;
    walk.push(parse_oid(tip)?)
        .map_err(|e| GitError::library("revwalk", e))?;
    walk.hide(parse_oid(base)?)
        .map_err(|e| GitError::library("revwalk", e))?;
    let mut found = Vec::new();
    for oid in walk {
        let oid = oid.map_err(|e| GitError::library("revwalk", e))?;
        let commit = r
            .find_commit(oid)
            .map_err(|e| GitError::library("revwalk", e))?;
        let message = String::from_utf8_lossy(commit.message_bytes()).into_owned();
        let mut stream = None;
        let mut tasks = Vec::new();
        for line in message.lines() {
            if let Some(v) = line.strip_prefix(&format!("{TRAILER_STREAM}: ")) {
                stream = Some(v.trim().to_string());
            } else if let Some(v) = line.strip_prefix(&format!("{TRAILER_TASK}: ")) {
                if let Ok(n) = v.trim().parse::<usize>() {
                    tasks.push(n);
                }
            }
        }
        if let Some(stream) = stream {
            found.extend(tasks.into_iter().map(|t| (stream.clone(), t)));
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trailers_join_an_existing_block() {
        assert_eq!(
            with_trailers("Add x", &[("Streams-Task", "1".into())]),
            "Add x\n\nStreams-Task: 1\n"
        );
        assert_eq!(
            with_trailers(
                "Add x\n\nSigned-off-by: a <b>\n",
                &[("Streams-Task", "1".into())]
            ),
            "Add x\n\nSigned-off-by: a <b>\nStreams-Task: 1\n"
        );
        assert_eq!(
            with_trailers(
                "Add x\n\nStreams-Task: 1\n",
                &[("Streams-Task", "1".into())]
            ),
            "Add x\n\nStreams-Task: 1\n"
        );
    }

    #[test]
    fn parses_idents() {
        let ident = parse_ident("Test User <t@example.com> 1767225600 +0130").unwrap();
        assert_eq!(ident.name, "Test User");
        assert_eq!(ident.email, "t@example.com");
        assert_eq!(ident.time, 1767225600);
        assert_eq!(ident.offset, 90);
        assert_eq!(parse_ident("x <y> 5 -0200").unwrap().offset, -120);
    }

    #[test]
    fn parses_merge_tree_conflicts() {
        let out: Vec<u8> = [
            "tree1",
            "100644 aaa 1\tf",
            "100644 bbb 2\tf",
            "100644 ccc 3\tf",
            "",
            "1",
            "f",
            "Auto-merging",
            "Auto-merging f\n",
            "1",
            "f",
            "CONFLICT (content)",
            "Merge conflict in f\n",
        ]
        .join("\0")
        .into_bytes();
        let MergeOutcome::Conflict {
            tree,
            entries,
            messages,
        } = parse_merge_tree(&out, true).unwrap()
        else {
            panic!("expected a conflict")
        };
        assert_eq!(tree, "tree1");
        assert_eq!(entries.len(), 3);
        assert_eq!(entries[2].stage, 3);
        assert_eq!(messages, vec!["Auto-merging f", "Merge conflict in f"]);
    }
}
