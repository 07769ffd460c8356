//! Git as the transport of a run spread over machines: fetching and pushing refs, manifests
//! stored as parent-less commits, and what each commit of a range changed (a remote runner's
//! commits are checked one by one: a change that a later commit undoes still lands in history).

use super::commit::parse_oid;
use super::{GitError, GitResult, Oid, Repo};
use crate::text::short7;

/// The file a manifest commit's tree holds.
pub const MANIFEST_FILE: &str = "manifest.json";

/// Fetches `refspecs` (`+src:dst`, globs allowed) from `remote`, a remote's name or a URL or
/// path. A glob that matches nothing fetches nothing and is no error.
pub fn fetch(repo: &Repo, remote: &str, refspecs: &[String]) -> GitResult<()> {
    let mut args: Vec<String> = vec![
        "fetch".into(),
        "--quiet".into(),
        "--no-tags".into(),
        // Never write FETCH_HEAD in the user's repository: nothing reads it and a parallel
        // fetch would race on it.
        "--no-write-fetch-head".into(),
        remote.to_string(),
    ];
    args.extend(refspecs.iter().cloned());
    repo.git().run(&args)?;
    Ok(())
}

/// Fetches the commits `ids` (and what they reach) from `remote` by id, without a ref: what a
/// job reported is taken as it reported it, whatever the remote's refs say meanwhile.
pub fn fetch_commits(repo: &Repo, remote: &str, ids: &[Oid]) -> GitResult<()> {
    if ids.is_empty() {
        return Ok(());
    }
    let mut args: Vec<String> = vec![
        "fetch".into(),
        "--quiet".into(),
        "--no-tags".into(),
        "--no-write-fetch-head".into(),
        remote.to_string(),
    ];
    args.extend(ids.iter().map(|id| id.to_string()));
    repo.git().with_env("GIT_TERMINAL_PROMPT", "0").run(&args)?;
    Ok(())
}

/// One ref a push sets: `name` to `to`, only from `from` (`None`: only where the remote lacks
/// it). Nothing streams pushes is forced: a ref that moved since it was looked at is left as
/// it is, and the push fails ([`lease_broken`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease {
    pub name: String,
    pub to: Oid,
    pub from: Option<Oid>,
}

/// Sets every ref of `leases` on `remote` atomically (all or none), each only from the value
/// it names, without asking for anything.
pub fn push_atomic(repo: &Repo, remote: &str, leases: &[Lease]) -> GitResult<()> {
    let mut args: Vec<String> = vec![
        "push".into(),
        "--quiet".into(),
        "--atomic".into(),
        "--no-verify".into(),
    ];
    for lease in leases {
        let from = lease.from.as_ref().map(Oid::to_string).unwrap_or_default();
        args.push(format!("--force-with-lease={}:{from}", lease.name));
    }
    args.push(remote.to_string());
    for lease in leases {
        args.push(format!("{}:{}", lease.to, lease.name));
    }
    repo.git().with_env("GIT_TERMINAL_PROMPT", "0").run(&args)?;
    Ok(())
}

/// Whether a push failed because a leased ref was not at the value given for it.
pub fn lease_broken(err: &GitError) -> bool {
    matches!(err, GitError::Command { stderr, .. } if stderr.contains("(stale info)"))
}

/// The refs a push left because they were not at the value leased for them, as git names them
/// (`streams/p/integration` for a branch).
pub fn stale_refs(err: &GitError) -> Vec<String> {
    let GitError::Command { stderr, .. } = err else {
        return Vec::new();
    };
    stderr
        .lines()
        .filter(|line| line.contains("(stale info)"))
        .filter_map(|line| line.split(" -> ").nth(1))
        .filter_map(|rest| rest.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

/// The refs under `prefix` on `remote` and their targets (`git ls-remote`).
pub fn remote_refs(repo: &Repo, remote: &str, prefix: &str) -> GitResult<Vec<(String, Oid)>> {
    ls_remote(repo, remote, &[format!("{prefix}*")])
}

/// What each of the full ref `names` holds on `remote` (absent: not there), in one look.
pub fn remote_values(
    repo: &Repo,
    remote: &str,
    names: &[String],
) -> GitResult<std::collections::BTreeMap<String, Oid>> {
    if names.is_empty() {
        return Ok(Default::default());
    }
    // ls-remote matches a pattern against the tail of every ref: keep the exact names only.
    Ok(ls_remote(repo, remote, names)?
        .into_iter()
        .filter(|(name, _)| names.contains(name))
        .collect())
}

fn ls_remote(repo: &Repo, remote: &str, patterns: &[String]) -> GitResult<Vec<(String, Oid)>> {
    let mut args: Vec<String> = vec!["ls-remote".into(), "--refs".into(), remote.to_string()];
    args.extend(patterns.iter().cloned());
    let out = repo
        .git()
        .with_env("GIT_TERMINAL_PROMPT", "0")
        .read(&args)?;
    Ok(out
        .lines()
        .filter_map(|line| {
            let (oid, name) = line.split_once('\t')?;
            Some((name.to_string(), Oid::from(oid)))
        })
        .collect())
}

/// Writes `json` as a parent-less commit whose tree holds [`MANIFEST_FILE`]; returns it.
pub fn write_manifest(repo: &Repo, json: &[u8], message: &str) -> GitResult<Oid> {
    let r = repo.open()?;
    let blob = r
        .blob(json)
        .map_err(|e| GitError::library("could not write the manifest", e))?;
    let mut builder = r
        .treebuilder(None)
        .map_err(|e| GitError::library("could not build the manifest's tree", e))?;
    builder
        .insert(MANIFEST_FILE, blob, 0o100644)
        .map_err(|e| GitError::library("could not build the manifest's tree", e))?;
    let tree_id = builder
        .write()
        .map_err(|e| GitError::library("could not write the manifest's tree", e))?;
    let tree = r
        .find_tree(tree_id)
        .map_err(|e| GitError::library("could not read the manifest's tree", e))?;
    // The manifest's own dates say nothing: a fixed signature keeps the commit reproducible.
    let sig = git2::Signature::new("streams", "streams@localhost", &git2::Time::new(0, 0))
        .map_err(|e| GitError::library("could not sign the manifest", e))?;
    let oid = r
        .commit(None, &sig, &sig, message, &tree, &[])
        .map_err(|e| GitError::library("could not write the manifest's commit", e))?;
    Ok(oid.into())
}

/// The manifest text a manifest commit holds; `None` when the commit has no manifest file.
pub fn read_manifest(repo: &Repo, commit: &str) -> GitResult<Option<Vec<u8>>> {
    let tree = repo.commit_info(commit)?.tree;
    Ok(repo.blob_at(&tree, MANIFEST_FILE))
}

/// One commit of a range and every path it changed against its first parent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommitPaths {
    pub id: Oid,
    pub paths: Vec<String>,
}

/// Every commit reachable from `to` and not from `from`, oldest first, each with the paths it
/// changed against its first parent. Fails when `from` is not an ancestor of `to`, and when a
/// commit has a parent that is neither `from` nor in the range (or none): checked against such
/// a parent, a commit could look like a change of a few paths while its tree takes back
/// anything `from` holds. With every parent in the range, each commit's tree differs from
/// `from`'s only where the range's commits changed something.
pub fn commits_with_paths(repo: &Repo, from: &str, to: &str) -> GitResult<Vec<CommitPaths>> {
    if !super::refs::is_ancestor(repo, from, to)? {
        return Err(GitError::Library {
            context: format!("{to} does not descend from {from}"),
            message: "the range has no start".into(),
        });
    }
    let commits = super::review::commits_between(repo, from, to)?;
    // Oldest first: a commit's parents in the range come before it.
    let mut seen: std::collections::HashSet<&str> = std::collections::HashSet::new();
    for c in &commits {
        let outside = c
            .parents
            .iter()
            .find(|p| p.as_str() != from && !seen.contains(p.as_str()));
        if c.parents.is_empty() || outside.is_some() {
            return Err(GitError::Library {
                context: format!(
                    "commit {} has a parent that is neither its start {} nor one of its commits ({})",
                    short7(c.id.as_str()),
                    short7(from),
                    outside.map_or("none", |p| short7(p.as_str()))
                ),
                message: "checked against that parent, it could undo work outside its lane".into(),
            });
        }
        seen.insert(c.id.as_str());
    }
    let from_tree = repo.commit_info(from)?.tree;
    let r = repo.open()?;
    let tree_of = |id: &Oid| -> GitResult<Oid> {
        let commit = r
            .find_commit(parse_oid(id)?)
            .map_err(|e| GitError::library(format!("could not read {id}"), e))?;
        Ok(commit.tree_id().into())
    };
    commits
        .into_iter()
        .map(|c| {
            let before = match c.parents.first() {
                Some(parent) => tree_of(parent)?,
                None => from_tree.clone(),
            };
            Ok(CommitPaths {
                paths: super::changes::tree_diff_paths(repo, &before, &c.tree)?,
                id: c.id,
            })
        })
        .collect()
}
