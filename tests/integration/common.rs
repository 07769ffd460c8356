//! Hermetic repositories and the real `streams` binary.
//!
//! Every repository lives in its own temporary directory with its own HOME, under the hermetic
//! git environment of `tests/support/hermetic.rs` (shared with the benchmarks): commit ids are the
//! same on every machine and whole outputs can be snapshotted.

#![allow(dead_code)]

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

// The environment itself is shared with the benchmarks.
use crate::support::hermetic;
use crate::support::redact::redact_volatile;
pub use hermetic::agents_dir;

pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

pub fn streams_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_streams"))
}

/// A temporary git repository with a pinned environment.
pub struct TestRepo {
    // Held for its Drop: removes everything.
    _tmp: tempfile::TempDir,
    /// The repository's working tree.
    pub root: PathBuf,
    /// HOME for every command run here (holds the only gitconfig they see).
    pub home: PathBuf,
    /// Extra environment for `streams` invocations.
    pub env: Vec<(String, String)>,
}

impl TestRepo {
    /// An empty repository on branch `main` with no commits.
    pub fn empty() -> TestRepo {
        let tmp = tempfile::Builder::new()
            .prefix("streams-test-")
            .tempdir()
            .unwrap();
        // Canonical path: macOS /var -> /private/var, and git prints canonical paths.
        let base = tmp.path().canonicalize().unwrap();
        let root = base.join("repo");
        let home = base.join("home");
        std::fs::create_dir_all(&root).unwrap();
        hermetic::init_home(&home);
        let repo = TestRepo {
            _tmp: tmp,
            root,
            home,
            env: Vec::new(),
        };
        repo.git(&["init", "-q", "-b", "main"]);
        repo
    }

    /// A repository an older streams left behind (`fixtures/state/<name>.tar.gz`, made by
    /// `fixtures/state/make-runs.sh`): unpacked here, with this test's directory where the pack
    /// says `@TMP@`.
    pub fn from_fixture(name: &str) -> TestRepo {
        let repo = TestRepo::empty();
        let tmp = repo.root.parent().unwrap().to_path_buf();
        std::fs::remove_dir_all(&repo.root).unwrap();
        let pack = fixtures_dir().join("state").join(format!("{name}.tar.gz"));
        let out = Command::new("tar")
            .arg("-xzf")
            .arg(&pack)
            .arg("-C")
            .arg(&tmp)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "tar: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        fn walk(dir: &Path, with: &str) {
            for entry in std::fs::read_dir(dir).unwrap().flatten() {
                let path = entry.path();
                let kind = entry.file_type().unwrap();
                if kind.is_dir() {
                    walk(&path, with);
                } else if kind.is_file() {
                    let bytes = std::fs::read(&path).unwrap();
                    let text = String::from_utf8_lossy(&bytes);
                    if text.contains("@TMP@") && std::str::from_utf8(&bytes).is_ok() {
                        std::fs::write(&path, text.replace("@TMP@", with)).unwrap();
                    }
                }
            }
        }
        let with = tmp.display().to_string();
        for dir in ["repo", "repo.streams"] {
            if tmp.join(dir).is_dir() {
                walk(&tmp.join(dir), &with);
            }
        }
        repo
    }

    /// A repository with files committed as one initial commit.
    pub fn with_files(files: &[(&str, &str)]) -> TestRepo {
        let repo = TestRepo::empty();
        for (path, contents) in files {
            repo.write(path, contents);
        }
        repo.commit_all("initial");
        repo
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    pub fn write(&self, rel: &str, contents: &str) {
        let path = self.root.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, contents).unwrap();
    }

    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.root.join(rel)).unwrap()
    }

    /// Applies the hermetic environment to any command.
    pub fn hermetic(&self, cmd: &mut Command) {
        hermetic::apply(cmd, &self.home);
    }

    /// Puts stand-ins for the real agent CLIs the example plans name (`claude`, `codex`,
    /// `aider`) first on PATH, so that `plan` finds them: they fail if anything runs them, but
    /// `--version` (which `plan` asks) prints the version their presets were tested with.
    pub fn with_agent_stubs(mut self) -> TestRepo {
        use std::os::unix::fs::PermissionsExt;
        let bin = self.home.join("agent-stubs");
        std::fs::create_dir_all(&bin).unwrap();
        for (name, version) in [
            ("claude", "2.1.197 (Claude Code)"),
            ("codex", "codex-cli 0.171.0"),
            ("aider", "aider 0.86.2"),
        ] {
            let path = bin.join(name);
            std::fs::write(
                &path,
                format!(
                    "#!/bin/sh\nif [ \"$1\" = --version ]; then echo \"{version}\"; exit 0; fi\necho \"{name} is a stand-in for tests\" >&2\nexit 1\n"
                ),
            )
            .unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let path = std::env::var("PATH").unwrap_or_default();
        self.env.push((
            "PATH".into(),
            format!("{}:{}:{path}", bin.display(), agents_dir().display()),
        ));
        self
    }

    /// Where a plan's workspaces are laid out by default: beside the repository,
    /// `<parent>/<repo>.streams/<plan>`.
    pub fn workspaces(&self, plan: &str) -> PathBuf {
        let name = self.root.file_name().unwrap().to_string_lossy();
        self.root
            .parent()
            .unwrap()
            .join(format!("{name}.streams"))
            .join(plan)
    }

    /// Runs git in the repository and returns stdout; panics on failure.
    pub fn git(&self, args: &[&str]) -> String {
        self.git_in(&self.root, args)
    }

    pub fn git_in(&self, dir: &Path, args: &[&str]) -> String {
        let out = self.git_output_in(dir, args);
        assert!(
            out.status.success(),
            "git {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout)
            .unwrap()
            .trim_end()
            .to_string()
    }

    pub fn git_output_in(&self, dir: &Path, args: &[&str]) -> Output {
        let mut cmd = Command::new("git");
        cmd.current_dir(dir).args(args);
        self.hermetic(&mut cmd);
        cmd.output().unwrap()
    }

    pub fn commit_all(&self, message: &str) -> String {
        self.git(&["add", "-A"]);
        self.git(&["commit", "-q", "--allow-empty", "-m", message]);
        self.git(&["rev-parse", "HEAD"])
    }

    /// A `streams` command in the repository, hermetic, not yet run.
    pub fn streams_cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(streams_bin());
        cmd.current_dir(&self.root).args(args).stdin(Stdio::null());
        self.hermetic(&mut cmd);
        // Where the scripted agent's `wait-rev` looks: a workspace has only its own branch.
        cmd.env("ACT_REPO", &self.root);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd
    }

    /// Runs `streams` to completion.
    pub fn streams(&self, args: &[&str]) -> CmdOutput {
        let out = self.streams_cmd(args).output().unwrap();
        CmdOutput::new(out, self)
    }

    /// Every ref and what it points at, for before/after comparisons.
    pub fn refs(&self) -> String {
        self.git(&["for-each-ref", "--format=%(refname) %(objectname)"])
    }

    /// The file list and contents of a commit's tree, for comparing results.
    pub fn tree_listing(&self, rev: &str) -> String {
        self.git(&["ls-tree", "-r", rev])
    }

    pub fn common_dir(&self) -> PathBuf {
        let dir = self.git(&["rev-parse", "--git-common-dir"]);
        self.root.join(dir).canonicalize().unwrap()
    }
}

impl TestRepo {
    /// Every live process started here: they all carry this repository's HOME (zombies, whose
    /// environment is gone, are not counted: they are dead).
    pub fn live_processes(&self) -> Vec<i32> {
        let mark = format!("HOME={}", self.home.display());
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return Vec::new();
        };
        entries
            .filter_map(|e| e.ok())
            .filter_map(|entry| {
                let pid = entry.file_name().to_str()?.parse::<i32>().ok()?;
                let env = std::fs::read(entry.path().join("environ")).ok()?;
                env.split(|b| *b == 0)
                    .any(|v| v == mark.as_bytes())
                    .then_some(pid)
            })
            .collect()
    }
}

impl Drop for TestRepo {
    /// A test that fails half way may leave `streams` or an agent running (waiting for a file
    /// that will never come): every process started here carries this repository's HOME, so
    /// none of them outlives the test.
    fn drop(&mut self) {
        for pid in self.live_processes() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

/// A finished command: exit code, stdout and stderr, printable as one value for snapshots with
/// temporary paths, durations and run ids redacted.
pub struct CmdOutput {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    redactions: Vec<(String, String)>,
}

impl CmdOutput {
    pub fn new(out: Output, repo: &TestRepo) -> Self {
        let tmp_base = repo.root.parent().unwrap().to_string_lossy().into_owned();
        CmdOutput {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            redactions: vec![
                (format!("{tmp_base}/repo"), "[REPO]".into()),
                (format!("{tmp_base}/home"), "[HOME]".into()),
                (tmp_base, "[TMP]".into()),
                (
                    agents_dir().to_string_lossy().into_owned(),
                    "[AGENTS]".into(),
                ),
            ],
        }
    }

    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// Stdout with paths redacted (for JSON output checks).
    pub fn stdout_redacted(&self) -> String {
        redact(&self.stdout, &self.redactions)
    }

    pub fn stderr_redacted(&self) -> String {
        redact(&self.stderr, &self.redactions)
    }

    #[track_caller]
    pub fn assert_code(&self, code: i32) -> &Self {
        assert_eq!(self.code, Some(code), "unexpected exit code:\n{self}");
        self
    }
}

fn redact(text: &str, redactions: &[(String, String)]) -> String {
    let mut text = text.to_string();
    for (from, to) in redactions {
        text = text.replace(from.as_str(), to);
    }
    redact_volatile(&text)
}

impl fmt::Display for CmdOutput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.code {
            Some(code) => writeln!(f, "exit code: {code}")?,
            None => writeln!(f, "exit code: (killed by a signal)")?,
        }
        let stdout = redact(&self.stdout, &self.redactions);
        let stderr = redact(&self.stderr, &self.redactions);
        if !stdout.is_empty() {
            writeln!(f, "----- stdout -----\n{}", stdout.trim_end())?;
        }
        if !stderr.is_empty() {
            writeln!(f, "----- stderr -----\n{}", stderr.trim_end())?;
        }
        Ok(())
    }
}

/// Polls `check` until it returns Some or the deadline passes. Not a sleep: the condition is
/// what we wait for; the deadline only turns a hang into a failure.
#[track_caller]
pub fn wait_for<T>(what: &str, timeout: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether a process exists (signal 0).
pub fn process_alive(pid: i32) -> bool {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok()
}

/// Whether a process is a zombie: dead, waiting for its parent to collect it.
pub fn is_zombie(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rsplit_once(')')
            .is_some_and(|(_, r)| r.trim_start().starts_with('Z'))
    })
}

/// Waits (up to 5 s) for `pid` to be gone: dead, or dead and not yet collected by its parent
/// (a stray reparented to init is collected a moment after it is killed).
#[track_caller]
pub fn assert_gone(pid: i32, what: &str) {
    wait_for(what, Duration::from_secs(5), || {
        (!process_alive(pid) || is_zombie(pid)).then_some(())
    });
}

/// The pid a test's script wrote to `pidfile`.
pub fn read_pid(pidfile: &Path) -> i32 {
    std::fs::read_to_string(pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}
