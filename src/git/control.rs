//! A workspace's control directory: a git directory of streams' own, outside the workspace
//! (under the user's git directory, which an agent under the sandbox cannot write), through
//! which streams writes the workspace's files and keeps its record of them.
//!
//! Its index is the record: for every tracked path, the blob streams checked out or read there
//! and the file's `lstat` at that moment. Its `HEAD` is the commit the record describes; its
//! `info/sparse-checkout`, a sparse workspace's set. Its config includes the user's
//! repository's (smudge filters, line endings), and its objects are the user's (alternates).
//! Every git process run through it is [hardened](super::cmd::Git::hardened) and takes its
//! attributes from the commit it checks out (`--attr-source`, git 2.41+).
//!
//! The workspace's own `.git` is the agent's: streams lays it out for the agent, and never runs
//! git with it.

use std::path::{Path, PathBuf};

use super::{Git, GitError, GitResult, Oid, Repo, Sparse};

/// Files a checkout must write before git's parallel checkout starts workers, when it has two
/// or three CPUs to itself: below it, on two cores, starting the workers cost more than they
/// saved even for a checkout running alone (5,000 files: 80 ms against 74). With four or more,
/// git's own threshold measurements apply ([`PARALLEL_THRESHOLD_MANY`]; not measured here).
const PARALLEL_THRESHOLD_FEW: &str = "checkout.thresholdForParallelism=20000";
const PARALLEL_THRESHOLD_MANY: &str = "checkout.thresholdForParallelism=2000";

/// Checkouts this process runs at this moment (each stream's, and those prepared ahead).
static CHECKOUTS_RUNNING: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// One checkout counted in [`CHECKOUTS_RUNNING`] while it lives.
struct Running;

impl Running {
    /// Counts a checkout starting; returns it with how many run now, itself included.
    fn start() -> (Running, usize) {
        let before = CHECKOUTS_RUNNING.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        (Running, before + 1)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        CHECKOUTS_RUNNING.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Where the control directory records the workspace it is for.
const WORKSPACE_FILE: &str = "streams-workspace";

/// The control directory `dir` of the workspace at `work_tree`.
#[derive(Clone, Debug)]
pub struct Control {
    dir: PathBuf,
    work_tree: PathBuf,
}

fn io_error(what: &str, path: &Path, e: std::io::Error) -> GitError {
    GitError::Command {
        args: what.to_string(),
        dir: path.to_path_buf(),
        stderr: e.to_string(),
    }
}

impl Control {
    pub fn new(dir: PathBuf, work_tree: PathBuf) -> Control {
        Control { dir, work_tree }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The record: streams' index of the workspace.
    pub fn index(&self) -> PathBuf {
        self.dir.join("index")
    }

    /// The sparse-checkout file git reads (absent: the workspace holds every file).
    pub fn sparse_file(&self) -> PathBuf {
        self.dir.join("info/sparse-checkout")
    }

    /// The `[core]` lines that say whether the workspace is sparse, and in which mode.
    pub fn sparse_config(&self) -> String {
        super::sparse::config_lines(&self.dir)
    }

    fn git(&self) -> Git {
        Git::new(&self.dir)
            .with_env("GIT_DIR", self.dir.to_string_lossy())
            .with_env("GIT_WORK_TREE", self.work_tree.to_string_lossy())
            .with_env("GIT_INDEX_FILE", self.index().to_string_lossy())
            .hardened()
    }

    /// Whether this directory was made for this workspace (whole or not: a run killed while it
    /// laid the workspace out leaves it half made).
    pub fn claims(&self) -> bool {
        std::fs::read_to_string(self.dir.join(WORKSPACE_FILE))
            .is_ok_and(|made_for| Path::new(made_for.trim_end()) == self.work_tree)
    }

    /// Whether this directory was made for this workspace and is whole (its `HEAD` a commit
    /// and its record there): the commit the record describes. `None`: unknown.
    pub fn at(&self) -> Option<Oid> {
        if !self.claims() || !self.index().is_file() {
            return None;
        }
        let head = std::fs::read_to_string(self.dir.join("HEAD")).ok()?;
        let head = head.trim();
        (head.len() == 40 && git2::Oid::from_str(head).is_ok()).then(|| Oid::from(head))
    }

    /// Makes the directory afresh: an empty record, no commit yet (`HEAD` on an unborn
    /// branch), the user's objects, config and attributes.
    pub fn init(&self, repo: &Repo) -> GitResult<()> {
        if self.dir.exists() {
            std::fs::remove_dir_all(&self.dir).map_err(|e| io_error("init", &self.dir, e))?;
        }
        for sub in ["refs", "objects/info", "info"] {
            let d = self.dir.join(sub);
            std::fs::create_dir_all(&d).map_err(|e| io_error("init", &d, e))?;
        }
        let write = |name: &str, text: &str| {
            let p = self.dir.join(name);
            std::fs::write(&p, text).map_err(|e| io_error("init", &p, e))
        };
        write("HEAD", "ref: refs/heads/streams-unborn\n")?;
        write(
            "objects/info/alternates",
            &format!("{}\n", repo.common_dir().join("objects").display()),
        )?;
        self.write_config(repo)?;
        write(
            WORKSPACE_FILE,
            &format!("{}\n", self.work_tree.to_string_lossy()),
        )
    }

    /// The config: the user's repository's, then what keeps this directory streams' (no
    /// automatic gc or maintenance, the sparse setting); the user's `info/attributes` beside
    /// it, so that checkouts convert files as the user's checkout would.
    pub fn write_config(&self, repo: &Repo) -> GitResult<()> {
        let quote = |p: &Path| {
            p.to_string_lossy()
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
        };
        let config = format!(
            "# Written by streams: the control directory of the workspace {}.\n\
             [include]\n\tpath = \"{}\"\n\
             [core]\n\trepositoryformatversion = 0\n\tbare = false\n\tlogallrefupdates = false\n{}\
             [gc]\n\tauto = 0\n\
             [maintenance]\n\tauto = false\n",
            self.work_tree.display(),
            quote(&repo.common_dir().join("config")),
            self.sparse_config(),
        );
        let path = self.dir.join("config");
        std::fs::write(&path, config).map_err(|e| io_error("config", &path, e))?;
        let theirs = repo.common_dir().join("info/attributes");
        let ours = self.dir.join("info/attributes");
        match std::fs::read(&theirs) {
            Ok(text) => std::fs::write(&ours, text).map_err(|e| io_error("config", &ours, e)),
            Err(_) => {
                let _ = std::fs::remove_file(&ours);
                Ok(())
            }
        }
    }

    /// Lock files a killed git of streams' left here (nobody else writes this directory).
    pub fn remove_stale_locks(&self) {
        for name in ["index.lock", "HEAD.lock", "config.lock"] {
            let _ = std::fs::remove_file(self.dir.join(name));
        }
    }

    /// Writes the workspace's files for commit `to` and records them. From `from` (what the
    /// record holds, the workspace checked to match it): only the files that differ between
    /// the two commits are written; git refuses rather than overwrite anything else. Without:
    /// every tracked file is made as `to` has it (files the record does not name, or whose
    /// `lstat` differs from it, are written again), untracked files left alone.
    pub fn checkout(&self, repo: &Repo, from: Option<&str>, to: &str) -> GitResult<()> {
        self.remove_stale_locks();
        let (_running, running) = Running::start();
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        let workers = checkout_workers(cpus, running);
        let threshold = if workers >= 4 {
            PARALLEL_THRESHOLD_MANY
        } else {
            PARALLEL_THRESHOLD_FEW
        };
        let workers = format!("checkout.workers={workers}");
        let source = format!("--attr-source={to}");
        let mut args: Vec<&str> = Vec::new();
        if super::git_version() >= (2, 41, 0) {
            args.push(&source);
        }
        args.extend(["-c", &workers, "-c", threshold, "read-tree"]);
        match from {
            Some(from) => args.extend(["-m", "-u", from, to]),
            None => args.extend(["--reset", "-u", to]),
        }
        let _ = repo;
        self.git().run(args)?;
        self.set_at(to)
    }

    /// Records that the record describes commit `commit`.
    pub fn set_at(&self, commit: &str) -> GitResult<()> {
        let path = self.dir.join("HEAD");
        let tmp = self.dir.join("HEAD.streams-tmp");
        std::fs::write(&tmp, format!("{commit}\n")).map_err(|e| io_error("HEAD", &tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| io_error("HEAD", &path, e))
    }

    /// Makes the workspace sparse with `sparse`, or whole with `None`, as git's sparse
    /// checkout does (files outside the set removed, files inside written); nothing when it is
    /// so already. Returns whether anything changed.
    pub fn sparse(&self, repo: &Repo, sparse: Option<&Sparse>) -> GitResult<bool> {
        self.remove_stale_locks();
        let changed = super::sparse::apply(&self.git(), &self.dir, sparse)?;
        if changed {
            // `sparse-checkout` wrote its settings with `git config`: ours again.
            self.write_config(repo)?;
        }
        Ok(changed)
    }

    /// Removes the directory.
    pub fn remove(&self) -> GitResult<()> {
        if self.dir.exists() {
            std::fs::remove_dir_all(&self.dir).map_err(|e| io_error("remove", &self.dir, e))?;
        }
        Ok(())
    }
}

/// Workers for one checkout among `running` at once on `cpus` CPUs: its share of the CPUs, up
/// to 8 (git's own measurements show little gain past that), and one (git's plain checkout,
/// whatever the user's `checkout.workers` says) when its share is a single CPU. Measured on two
/// cores (100,000 files, tmpfs): two workers made a checkout running alone 7% faster, and
/// checkouts running two or more at once 40-50% slower (their workers fight over the cores
/// the other checkouts use, and pay their start and pipes on top), which is how a run with
/// `jobs` of 2 or more and workspaces prepared ahead checks out.
fn checkout_workers(cpus: usize, running: usize) -> usize {
    (cpus / running.max(1)).clamp(1, 8)
}

#[cfg(test)]
mod tests {
    use super::checkout_workers;

    #[test]
    fn a_checkout_gets_workers_only_from_cpus_no_other_checkout_uses() {
        // Two cores: workers only for a checkout running alone.
        assert_eq!(checkout_workers(2, 1), 2);
        assert_eq!(checkout_workers(2, 2), 1);
        assert_eq!(checkout_workers(2, 4), 1);
        // Eight cores shared by three checkouts: two each.
        assert_eq!(checkout_workers(8, 3), 2);
        // Never more than eight, never none.
        assert_eq!(checkout_workers(64, 1), 8);
        assert_eq!(checkout_workers(1, 0), 1);
    }
}
