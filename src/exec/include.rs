//! Copying the files git ignores that a workspace needs (`.env`, local config, caches) from the
//! user's checkout into a new workspace, before its `setup`.
//!
//! What is copied: a file git ignores in the checkout AND matched by `.worktreeinclude` at the
//! repository root (gitignore syntax: the convention Claude Code, the Codex app and worktrunk
//! share) or by the plan's `include` (same syntax). Nothing in the workspace is overwritten; a
//! symbolic link is recreated only when it points inside the repository. Every write goes
//! through [`crate::beneath`]: a directory of the workspace an agent turned into a link (to a
//! place outside) is never written through; what would land beneath it is skipped and the log
//! names it. Files are cloned copy-on-write where the file system can (btrfs, XFS, APFS),
//! plainly copied elsewhere (ext4), and the log says which: a copy of a large `node_modules`
//! costs its size on such systems.

use std::path::{Component, Path, PathBuf};

use ignore::gitignore::{Gitignore, GitignoreBuilder};

use crate::beneath;

/// What the dispatcher hands the executor for a new workspace.
#[derive(Clone, Debug)]
pub struct IncludeJob {
    /// The user's checkout (the repository root).
    pub checkout: PathBuf,
    /// The plan's `include`.
    pub patterns: Vec<String>,
    /// Where workspaces live: never copied from, when it is inside the checkout.
    pub skip: PathBuf,
    /// Where the line saying what was copied, and how, goes (the setup log).
    pub log_path: PathBuf,
}

impl IncludeJob {
    /// The plan's `include` (and `.worktreeinclude`) copied from `repo`'s checkout, saying so
    /// in `log_path`.
    pub fn new(repo: &crate::git::Repo, plan: &crate::plan::Plan, log_path: PathBuf) -> IncludeJob {
        IncludeJob {
            checkout: repo.root().to_path_buf(),
            patterns: plan.include.clone(),
            skip: super::dispatcher::worktrees_dir(repo, plan),
            log_path,
        }
    }

    /// Copies what the patterns select into `workspace` and says so in the log; nothing at all
    /// when there are no patterns. An error is the message for a person.
    pub fn run(&self, workspace: &Path) -> Result<(), String> {
        let Some(include) = patterns(&self.checkout, &self.patterns)? else {
            return Ok(());
        };
        let ignored = crate::git::ignored::in_checkout(&self.checkout).map_err(|e| {
            format!(
                "could not list the ignored files of {}: {e}",
                self.checkout.display()
            )
        })?;
        let done = copy(&self.checkout, workspace, &ignored, &include, &self.skip)?;
        let line = crate::agent::log::note(&done.describe());
        if let Some(dir) = self.log_path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        use std::io::Write as _;
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .and_then(|mut log| log.write_all(line.as_bytes()))
            .map_err(|e| format!("could not write {}: {e}", self.log_path.display()))
    }
}

/// The file at the repository root listing what to copy.
pub const INCLUDE_FILE: &str = ".worktreeinclude";

/// What a copy did, for the log.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Copied {
    /// Cloned copy-on-write.
    pub cloned: usize,
    /// Copied byte by byte (no copy-on-write on this file system).
    pub copied: usize,
    pub links: usize,
    /// Already in the workspace: left as they were.
    pub kept: usize,
    /// Symbolic links pointing outside the repository: not copied.
    pub outside: Vec<String>,
    /// Files whose way in the workspace goes through a link: not copied.
    pub through_links: Vec<String>,
}

impl Copied {
    /// One line for the log.
    pub fn describe(&self) -> String {
        let mut text = format!(
            "included {} file(s) from the checkout: {} as copy-on-write clones, {} as plain copies (no copy-on-write on this file system), {} symbolic link(s); {} already there left alone",
            self.cloned + self.copied + self.links,
            self.cloned,
            self.copied,
            self.links,
            self.kept
        );
        if !self.outside.is_empty() {
            text.push_str(&format!(
                "; skipped links pointing outside the repository: {}",
                self.outside.join(", ")
            ));
        }
        if !self.through_links.is_empty() {
            text.push_str(&format!(
                "; skipped files whose way in the workspace goes through a symbolic link (streams does not write through links): {}",
                self.through_links.join(", ")
            ));
        }
        text
    }
}

/// The patterns of `.worktreeinclude` in `checkout` and the plan's `include`, compiled; `None`
/// when there are none (nothing to list, no git call).
pub fn patterns(checkout: &Path, plan: &[String]) -> Result<Option<Gitignore>, String> {
    let file = checkout.join(INCLUDE_FILE);
    let text = match std::fs::read_to_string(&file) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(format!("could not read {}: {e}", file.display())),
    };
    let lines: Vec<&str> = text
        .lines()
        .chain(plan.iter().map(String::as_str))
        .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .collect();
    if lines.is_empty() {
        return Ok(None);
    }
    let mut builder = GitignoreBuilder::new(checkout);
    for line in lines {
        builder
            .add_line(None, line)
            .map_err(|e| format!("invalid include pattern `{line}`: {e}"))?;
    }
    builder
        .build()
        .map(Some)
        .map_err(|e| format!("invalid include patterns: {e}"))
}

/// Copies into `workspace` each of `ignored` (paths relative to `checkout`, as git lists the
/// files it ignores) that `include` matches. Paths under `skip` (where workspaces live, when
/// that is inside the checkout) are never copied.
pub fn copy(
    checkout: &Path,
    workspace: &Path,
    ignored: &[String],
    include: &Gitignore,
    skip: &Path,
) -> Result<Copied, String> {
    let mut done = Copied::default();
    let into = beneath::Dir::open(workspace)
        .map_err(|e| format!("could not open the workspace {}: {e}", workspace.display()))?;
    for rel in ignored {
        let from = checkout.join(rel);
        if from.starts_with(skip) || !include.matched_path_or_any_parents(rel, false).is_ignore() {
            continue;
        }
        let written = match into.kind(rel) {
            Ok(Some(_)) => {
                done.kept += 1;
                continue;
            }
            Ok(None) => copy_one(&from, &into, rel, checkout, &mut done),
            Err(e) => Err(e),
        };
        match written {
            Ok(()) => {}
            Err(e) if beneath::is_through_link(&e) => done.through_links.push(rel.clone()),
            Err(e) => {
                return Err(format!(
                    "could not copy {} into {}: {e}",
                    from.display(),
                    workspace.display()
                ));
            }
        }
    }
    Ok(done)
}

/// Copies `from` to `rel` in `into` (nothing is there), counting it in `done`.
fn copy_one(
    from: &Path,
    into: &beneath::Dir,
    rel: &str,
    checkout: &Path,
    done: &mut Copied,
) -> std::io::Result<()> {
    let Ok(meta) = from.symlink_metadata() else {
        return Ok(()); // gone since git listed it
    };
    if meta.file_type().is_symlink() {
        let target = std::fs::read_link(from)?;
        if !inside(checkout, from, &target) {
            done.outside.push(rel.to_string());
            return Ok(());
        }
        into.symlink(&target, rel)?;
        done.links += 1;
        return Ok(());
    }
    match into.copy_in(from, rel)? {
        beneath::Copied::Cloned => done.cloned += 1,
        beneath::Copied::Copied => done.copied += 1,
    }
    Ok(())
}

/// Whether the link at `link` to `target` points inside `root` (resolved lexically: the
/// target need not exist, and `..` may not climb out).
fn inside(root: &Path, link: &Path, target: &Path) -> bool {
    let start = if target.is_absolute() {
        PathBuf::new()
    } else {
        link.parent().unwrap_or(root).to_path_buf()
    };
    let mut path = PathBuf::new();
    for part in start.join(target).components() {
        match part {
            Component::ParentDir => {
                if !path.pop() {
                    return false;
                }
            }
            Component::CurDir => {}
            other => path.push(other),
        }
    }
    path.starts_with(root)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_are_judged_by_where_they_point() {
        let root = Path::new("/repo");
        let link = Path::new("/repo/config/.env");
        assert!(inside(root, link, Path::new("../shared.env")));
        assert!(inside(root, link, Path::new("/repo/x")));
        assert!(!inside(root, link, Path::new("../../etc/passwd")));
        assert!(!inside(root, link, Path::new("/etc/passwd")));
    }

    #[test]
    fn only_ignored_files_that_a_pattern_matches_are_copied_and_nothing_is_overwritten() {
        let tmp = tempfile::tempdir().unwrap();
        let (checkout, workspace) = (tmp.path().join("repo"), tmp.path().join("ws"));
        for (path, text) in [
            (".env", "SECRET=1"),
            ("config/local.toml", "x"),
            ("build/out.o", "o"),
            ("keep.txt", "checkout"),
        ] {
            let p = checkout.join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        std::fs::create_dir_all(&workspace).unwrap();
        std::fs::write(workspace.join("keep.txt"), "workspace").unwrap();
        std::os::unix::fs::symlink("/etc/hostname", checkout.join("config/host")).unwrap();
        std::os::unix::fs::symlink("local.toml", checkout.join("config/alias.toml")).unwrap();
        std::fs::write(checkout.join(INCLUDE_FILE), ".env\n# comment\nconfig/\n").unwrap();
        let include = patterns(&checkout, &["keep.txt".into()]).unwrap().unwrap();
        let ignored: Vec<String> = [
            ".env",
            "config/local.toml",
            "config/host",
            "config/alias.toml",
            "build/out.o",
            "keep.txt",
        ]
        .map(String::from)
        .to_vec();
        let done = copy(
            &checkout,
            &workspace,
            &ignored,
            &include,
            &tmp.path().join("none"),
        )
        .unwrap();
        assert_eq!(done.cloned + done.copied, 2);
        assert_eq!((done.links, done.kept), (1, 1));
        assert_eq!(done.outside, ["config/host"]);
        assert_eq!(
            std::fs::read_to_string(workspace.join(".env")).unwrap(),
            "SECRET=1"
        );
        assert_eq!(
            std::fs::read_to_string(workspace.join("keep.txt")).unwrap(),
            "workspace"
        );
        assert!(!workspace.join("build/out.o").exists());
        assert!(!workspace.join("config/host").exists());
        assert_eq!(
            std::fs::read_link(workspace.join("config/alias.toml")).unwrap(),
            Path::new("local.toml")
        );
    }

    #[test]
    fn nothing_is_copied_through_a_link_the_workspace_holds() {
        let tmp = tempfile::tempdir().unwrap();
        let (checkout, workspace, outside) = (
            tmp.path().join("repo"),
            tmp.path().join("ws"),
            tmp.path().join("outside"),
        );
        std::fs::create_dir_all(checkout.join("secrets")).unwrap();
        std::fs::write(checkout.join("secrets/key.env"), "KEY=1").unwrap();
        std::fs::write(checkout.join(".env"), "A=1").unwrap();
        std::fs::create_dir_all(&workspace).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::os::unix::fs::symlink(&outside, workspace.join("secrets")).unwrap();
        let include = patterns(&checkout, &["secrets/".into(), ".env".into()])
            .unwrap()
            .unwrap();
        let ignored = ["secrets/key.env", ".env"].map(String::from).to_vec();
        let done = copy(
            &checkout,
            &workspace,
            &ignored,
            &include,
            &tmp.path().join("none"),
        )
        .unwrap();
        assert_eq!(done.through_links, ["secrets/key.env"]);
        assert_eq!(done.cloned + done.copied, 1);
        assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
        assert!(done.describe().ends_with(
            "skipped files whose way in the workspace goes through a symbolic link (streams does not write through links): secrets/key.env"
        ));
    }

    #[test]
    fn no_file_and_no_plan_patterns_means_nothing_to_do() {
        let tmp = tempfile::tempdir().unwrap();
        assert!(patterns(tmp.path(), &[]).unwrap().is_none());
    }
}
