//! Three-way merges without a working tree, one at a time or in batches.
//!
//! Merges use `git merge-tree --write-tree` (the user's git, its merge drivers and attributes);
//! libgit2's merges are several times slower on big repositories and skip merge drivers.
//!
//! Merge drivers and attributes apply as `git merge` applies them in a checkout of the branch
//! merged into: a merge runs in the common dir, where git has no working tree to read
//! `.gitattributes` from, so each merge names its attribute source (`--attr-source`, git 2.41+):
//! the tree of `ours`, the side being merged into (the integration tip). The drivers themselves
//! come from the user's config only (`merge.<driver>.driver`): a stream's `.gitattributes` can
//! pick among the drivers the user configured, never define one. `info/attributes` and
//! `core.attributesFile` apply as always. A driver that exits non-zero leaves the file
//! conflicted, as in `git merge`. A driver named by the attributes whose config has no
//! `driver` command (`merge.<name>.name` alone) makes git stop the whole merge ("lacks command
//! line"); streams instead merges the files it would have merged as text and leaves them
//! conflicted for a person, with a hint saying what to configure ([`MergeOutcome::Conflict`]'s
//! `hints`).

use super::{GitError, GitResult, Oid, Repo};

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
        /// What the person should fix besides the conflict, one line each (a merge driver
        /// named by `.gitattributes` with no command configured).
        hints: Vec<String>,
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
    let mut args = attr_source(Some(ours));
    args.extend(["merge-tree".to_string(), "--write-tree".into(), "-z".into()]);
    if let Some(base) = base {
        args.push(format!("--merge-base={base}"));
    }
    args.push(ours.to_string());
    args.push(theirs.to_string());
    let labels = [ours, base.unwrap_or("base"), theirs];
    let mut driverless = Driverless::default();
    let out = loop {
        let out = repo
            .git()
            .output([driverless.config(labels), args.clone()].concat(), None)?;
        let code = out.status.code();
        if code == Some(0) || code == Some(1) || !driverless.learn(&out.stderr_str()) {
            break out;
        }
    };
    let code = out.status.code();
    if code != Some(0) && code != Some(1) {
        return Err(GitError::Command {
            args: args.join(" "),
            dir: repo.common_dir().to_path_buf(),
            stderr: out.stderr_str(),
        });
    }
    let mut outcome =
        parse_merge_tree(&out.stdout, code == Some(1)).ok_or_else(|| GitError::Command {
            args: args.join(" "),
            dir: repo.common_dir().to_path_buf(),
            stderr: "could not read the output of git merge-tree".into(),
        })?;
    if let MergeOutcome::Conflict { hints, .. } = &mut outcome {
        *hints = driverless.hints();
    }
    Ok(outcome)
}

/// The merge drivers named by the attributes that have no command configured, found one per
/// failed try (git stops the whole merge at the first: "custom merge driver X lacks command
/// line"). Each is given one for the next try: git's own text merge (`git merge-file`), which
/// then reports a conflict whatever it merged, so a person looks at what the driver the user
/// named would have merged.
#[derive(Default)]
struct Driverless {
    names: Vec<String>,
}

impl Driverless {
    /// How many drivers without a command one merge tries to get past.
    const MAX: usize = 16;

    /// Learns the driver git stopped at from its `stderr`; false when it stopped for another
    /// reason (or at one already given a command).
    fn learn(&mut self, stderr: &str) -> bool {
        let found = stderr.lines().find_map(|l| {
            l.split_once("custom merge driver ")?
                .1
                .strip_suffix(" lacks command line.")
        });
        match found {
            Some(name) if !self.names.iter().any(|n| n == name) && self.names.len() < Self::MAX => {
                self.names.push(name.to_string());
                true
            }
            _ => false,
        }
    }

    /// The `-c merge.<name>.driver=...` arguments for git, before its subcommand; `labels`
    /// name ours, the base and theirs in the conflict markers (as git's own merge would).
    fn config(&self, labels: [&str; 3]) -> Vec<String> {
        let [ours, base, theirs] = labels.map(crate::text::shell_quote);
        self.names
            .iter()
            .flat_map(|name| {
                [
                    "-c".to_string(),
                    format!(
                        "merge.{name}.driver=git merge-file --marker-size=%L -L {ours} -L {base} -L {theirs} %A %O %B; exit 1"
                    ),
                ]
            })
            .collect()
    }

    fn hints(&self) -> Vec<String> {
        self.names
            .iter()
            .map(|name| {
                format!(
                    "`.gitattributes` names the merge driver `{name}` (merge={name}), but your git config has no `merge.{name}.driver` command: the files it merges are merged as text and left to you; set it (`git config merge.{name}.driver '...'`) or drop the attribute"
                )
            })
            .collect()
    }
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
    // One process has one attribute source: batches merged into one tip (every caller's) share
    // it; a batch into several is merged one by one, each with its own.
    let ours = &merges[0].1;
    if merges.iter().any(|(_, o, _)| o != ours) {
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
    Ok(merge_tree_stdin(repo, Some(ours), &input, merges.len())?
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
/// own merge base), in memory, with the attributes (and so the merge drivers) of
/// `attributes_from` (a commit; see the module docs).
pub fn merge_batch(
    repo: &Repo,
    attributes_from: Option<&str>,
    pairs: &[(Oid, Oid)],
) -> GitResult<Vec<BatchMerge>> {
    if pairs.is_empty() {
        return Ok(Vec::new());
    }
    let input: String = pairs.iter().map(|(a, b)| format!("{a} {b}\n")).collect();
    merge_tree_stdin(repo, attributes_from, &input, pairs.len())
}

/// `--attr-source=<commit>` where git has it (2.41+): the attributes a merge in the common dir
/// reads, as a checkout of `commit` would.
fn attr_source(commit: Option<&str>) -> Vec<String> {
    match commit {
        Some(commit) if super::git_version() >= (2, 41, 0) => {
            vec![format!("--attr-source={commit}")]
        }
        _ => Vec::new(),
    }
}

/// Runs `count` merges, one per line of `input`, in one `git merge-tree --stdin` process.
fn merge_tree_stdin(
    repo: &Repo,
    attributes_from: Option<&str>,
    input: &str,
    count: usize,
) -> GitResult<Vec<BatchMerge>> {
    let mut args = attr_source(attributes_from);
    args.extend(
        [
            "merge-tree",
            "--stdin",
            "-z",
            "--name-only",
            "--no-messages",
        ]
        .map(String::from),
    );
    let mut driverless = Driverless::default();
    let out = loop {
        let out = repo.git().output(
            [driverless.config(["ours", "base", "theirs"]), args.clone()].concat(),
            Some(input.as_bytes()),
        )?;
        if out.status.success() || !driverless.learn(&out.stderr_str()) {
            break out;
        }
    };
    if !out.status.success() {
        return Err(GitError::Command {
            args: args.join(" "),
            dir: repo.common_dir().to_path_buf(),
            stderr: out.stderr_str(),
        });
    }
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
        let tree: Oid = String::from_utf8_lossy(fields.next().ok_or_else(unreadable)?)
            .into_owned()
            .into();
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
pub fn conflicts_batch(
    repo: &Repo,
    attributes_from: Option<&str>,
    pairs: &[(Oid, Oid)],
) -> GitResult<Vec<Vec<String>>> {
    Ok(merge_batch(repo, attributes_from, pairs)?
        .into_iter()
        .map(|m| m.conflicts)
        .collect())
}

/// `<tree>\0` then, on conflict, `<mode> <oid> <stage>\t<path>\0`..., `\0`, then messages as
/// `<n paths>\0<path>\0...<type>\0<message>\0`.
fn parse_merge_tree(stdout: &[u8], conflicted: bool) -> Option<MergeOutcome> {
    let mut fields = stdout.split(|b| *b == 0);
    let tree = Oid::from(String::from_utf8_lossy(fields.next()?).trim());
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
            oid: meta.next()?.into(),
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
        hints: Vec::new(),
    })
}

/// Brings `commit` into the branch checked out at `worktree` as `git merge` does there: a
/// fast-forward when `fast_forward`, else a merge commit with `message`. The caller has checked
/// that the checkout is clean and that the merge has no conflicts.
pub fn merge_into_checkout(
    worktree: &std::path::Path,
    commit: &str,
    fast_forward: bool,
    message: &str,
) -> GitResult<()> {
    let git = super::Git::new(worktree);
    if fast_forward {
        git.run(["merge", "-q", "--ff-only", commit])?;
    } else {
        git.run(["merge", "-q", "--no-ff", "--no-edit", "-m", message, commit])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
            ..
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
