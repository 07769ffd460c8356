//! Running the `git` program.
//!
//! Every invocation goes through [`Git`], so the environment is cleaned the same way everywhere:
//! variables that would redirect git to another repository or index (set when streams itself is
//! run from a git hook, say) are removed, and the directory is always explicit.

use std::ffi::OsStr;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::{GitError, GitResult, Oid};
use crate::git_env::REDIRECTING_VARS;

/// `git merge-tree --write-tree` appeared in 2.38; `--merge-base` with it in 2.40.
pub const MIN_GIT_VERSION: &str = "2.40";

/// The run every git this process starts belongs to (see [`mark_run`]).
static RUN_MARK: std::sync::OnceLock<Vec<(String, String)>> = std::sync::OnceLock::new();

/// From now on, every git this process runs carries `mark` in its environment (the variables
/// that say whose run it is: `STREAMS_RUN_ID` and `STREAMS_REPO`).
pub fn mark_run(mark: &[(String, String)]) {
    let _ = RUN_MARK.set(mark.to_vec());
}

/// The environment variables an agent must not inherit either, for the same reason.
pub fn redirecting_vars() -> &'static [&'static str] {
    REDIRECTING_VARS
}

/// A `git` program bound to a directory (a worktree, or the common dir for bare operations).
#[derive(Clone, Debug)]
pub(in crate::git) struct Git {
    dir: PathBuf,
    envs: Vec<(String, String)>,
    /// Settings that keep what a workspace holds from running or redirecting anything (see
    /// [`Git::hardened`]).
    hardened: bool,
}

/// What [`Git::hardened`] sets, whatever any config file says: no hooks, no file-system
/// monitor (whose daemon and socket a workspace's owner controls), no recursion into
/// submodules, no caches or split index written beside an index, no pager.
const HARDENED: [(&str, &str); 7] = [
    ("core.hooksPath", "/dev/null"),
    ("core.fsmonitor", "false"),
    ("submodule.recurse", "false"),
    ("fetch.recurseSubmodules", "false"),
    ("core.untrackedCache", "false"),
    ("core.splitIndex", "false"),
    ("core.pager", "cat"),
];

#[derive(Debug)]
pub(in crate::git) struct GitOutput {
    pub status: std::process::ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl GitOutput {
    pub fn stdout_str(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    pub fn stderr_str(&self) -> String {
        String::from_utf8_lossy(&self.stderr).trim().to_string()
    }

    /// The fields of `-z` output (each ended by a NUL), as text, empty ones left out.
    pub fn z_fields(&self) -> impl Iterator<Item = String> + '_ {
        self.stdout
            .split(|b| *b == 0)
            .filter(|p| !p.is_empty())
            .map(|p| String::from_utf8_lossy(p).into_owned())
    }

    /// The paths of `git status --porcelain=v1 -z` entries (`XY <path>`), without renames.
    pub fn porcelain_paths(&self) -> Vec<String> {
        self.stdout
            .split(|b| *b == 0)
            .filter(|e| e.len() > 3)
            .map(|e| String::from_utf8_lossy(&e[3..]).into_owned())
            .collect()
    }
}

impl Git {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Git {
            dir: dir.into(),
            envs: Vec::new(),
            hardened: false,
        }
    }

    /// A copy for commands in or for a stream's workspace: the [`HARDENED`] settings win over
    /// every config file, and replace refs are not honoured (`GIT_NO_REPLACE_OBJECTS`), so
    /// nothing the workspace's owner wrote runs, or changes what an object id names.
    pub fn hardened(&self) -> Self {
        let mut git = self.clone();
        git.hardened = true;
        git
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A copy that sets an extra environment variable on every command.
    pub fn with_env(&self, key: impl Into<String>, value: impl Into<String>) -> Self {
        let mut git = self.clone();
        git.envs.push((key.into(), value.into()));
        git
    }

    fn command<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = Command::new("git");
        cmd.arg("-C").arg(&self.dir).args(args);
        // Its own process group: a Ctrl-C at the terminal is for streams to handle (stop agents,
        // save state), not to kill a `git commit` or `worktree add` half way.
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        for var in REDIRECTING_VARS {
            cmd.env_remove(var);
        }
        // Never prompt (credentials, editors): streams runs unattended.
        cmd.env("GIT_TERMINAL_PROMPT", "0");
        // Marked as the run's, like its agents: a git left running by a killed coordinator is
        // found and stopped by `resume` before it touches the same worktree.
        for (k, v) in RUN_MARK.get().into_iter().flatten() {
            cmd.env(k, v);
        }
        cmd.env("GIT_EDITOR", "true");
        for (k, v) in &self.envs {
            cmd.env(k, v);
        }
        if self.hardened {
            cmd.env("GIT_NO_REPLACE_OBJECTS", "1");
            cmd.env("GIT_CONFIG_COUNT", HARDENED.len().to_string());
            for (i, (key, value)) in HARDENED.iter().enumerate() {
                cmd.env(format!("GIT_CONFIG_KEY_{i}"), key);
                cmd.env(format!("GIT_CONFIG_VALUE_{i}"), value);
            }
        }
        cmd
    }

    /// Runs git and returns its output whatever the exit status.
    pub fn output<I, S>(&self, args: I, stdin: Option<&[u8]>) -> GitResult<GitOutput>
    where
        I: IntoIterator<Item = S> + Clone,
        S: AsRef<OsStr>,
    {
        let describe = || describe_args(args.clone());
        let started = std::time::Instant::now();
        let out = self.output_inner(args.clone(), stdin, &describe);
        // Every git process costs milliseconds: `STREAMS_LOG=streams::git=debug` lists them.
        tracing::debug!(
            "git {} in {}: {:.1} ms",
            describe(),
            self.dir.display(),
            started.elapsed().as_secs_f64() * 1000.0
        );
        out
    }

    fn output_inner<I, S>(
        &self,
        args: I,
        stdin: Option<&[u8]>,
        describe: &dyn Fn() -> String,
    ) -> GitResult<GitOutput>
    where
        I: IntoIterator<Item = S> + Clone,
        S: AsRef<OsStr>,
    {
        let mut cmd = self.command(args.clone());
        cmd.stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        // Registered as streams' own, not an agent's stray (see `crate::children`).
        let spawning = crate::children::spawning();
        let child = cmd.spawn();
        let pid = child.as_ref().map(|c| c.id()).ok();
        pid.into_iter().for_each(crate::children::own_started);
        drop(spawning);
        let out = self.wait_child(child, stdin, describe);
        pid.into_iter().for_each(crate::children::own_exited);
        out
    }

    fn wait_child(
        &self,
        child: std::io::Result<std::process::Child>,
        stdin: Option<&[u8]>,
        describe: &dyn Fn() -> String,
    ) -> GitResult<GitOutput> {
        let mut child = child.map_err(|source| {
            if source.kind() == std::io::ErrorKind::NotFound {
                GitError::GitMissing
            } else {
                GitError::Spawn {
                    args: describe(),
                    source,
                }
            }
        })?;
        if let Some(input) = stdin {
            let mut pipe = child.stdin.take().expect("stdin was piped");
            // Write on a thread: git may fill its stdout pipe before reading all of stdin.
            let input = input.to_vec();
            let writer = std::thread::spawn(move || pipe.write_all(&input));
            let out = child.wait_with_output().map_err(|source| GitError::Spawn {
                args: describe(),
                source,
            })?;
            // A write error after git exited (broken pipe) shows in git's own status.
            let _ = writer.join();
            return Ok(GitOutput {
                status: out.status,
                stdout: out.stdout,
                stderr: out.stderr,
            });
        }
        let out = child.wait_with_output().map_err(|source| GitError::Spawn {
            args: describe(),
            source,
        })?;
        Ok(GitOutput {
            status: out.status,
            stdout: out.stdout,
            stderr: out.stderr,
        })
    }

    /// Runs git and fails unless it exits 0.
    pub fn run<I, S>(&self, args: I) -> GitResult<GitOutput>
    where
        I: IntoIterator<Item = S> + Clone,
        S: AsRef<OsStr>,
    {
        self.run_with_stdin(args, None)
    }

    pub fn run_with_stdin<I, S>(&self, args: I, stdin: Option<&[u8]>) -> GitResult<GitOutput>
    where
        I: IntoIterator<Item = S> + Clone,
        S: AsRef<OsStr>,
    {
        let out = self.output(args.clone(), stdin)?;
        if out.status.success() {
            Ok(out)
        } else {
            Err(GitError::Command {
                args: describe_args(args),
                dir: self.dir.clone(),
                stderr: out.stderr_str(),
            })
        }
    }

    /// Runs git and returns the object id it prints.
    pub fn read_oid<I, S>(&self, args: I) -> GitResult<Oid>
    where
        I: IntoIterator<Item = S> + Clone,
        S: AsRef<OsStr>,
    {
        self.read(args).map(Oid::from)
    }

    /// Runs git and returns stdout, trimmed of the trailing newline.
    pub fn read<I, S>(&self, args: I) -> GitResult<String>
    where
        I: IntoIterator<Item = S> + Clone,
        S: AsRef<OsStr>,
    {
        Ok(self.run(args)?.stdout_str().trim_end().to_string())
    }
}

fn describe_args<I, S>(args: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    args.into_iter()
        .map(|a| a.as_ref().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Checks that the `git` on PATH is recent enough; returns its version.
pub fn check_git_version() -> GitResult<String> {
    let out = Git::new(".").output(["--version"], None)?;
    let text = out.stdout_str();
    let version = parse_version(&text).ok_or_else(|| GitError::GitTooOld {
        found: text.trim().to_string(),
    })?;
    let (found, min) = (version_tuple(&version), version_tuple(MIN_GIT_VERSION));
    if found < min {
        return Err(GitError::GitTooOld { found: version });
    }
    Ok(version)
}

/// The version of the `git` on PATH as (major, minor, patch), asked once per process; (0, 0, 0)
/// when it cannot be read (callers then take the path every supported git allows).
pub fn git_version() -> (u32, u32, u32) {
    static VERSION: std::sync::OnceLock<(u32, u32, u32)> = std::sync::OnceLock::new();
    *VERSION.get_or_init(|| {
        Git::new(".")
            .output(["--version"], None)
            .ok()
            .and_then(|out| parse_version(&out.stdout_str()))
            .map(|v| version_tuple(&v))
            .unwrap_or((0, 0, 0))
    })
}

/// "git version 2.47.3" (or "git version 2.39.5.windows.1") -> "2.47.3".
fn parse_version(text: &str) -> Option<String> {
    let rest = text.trim().strip_prefix("git version ")?;
    let version: String = rest
        .split(|c: char| c.is_whitespace())
        .next()?
        .split('.')
        .take_while(|part| part.chars().all(|c| c.is_ascii_digit()) && !part.is_empty())
        .collect::<Vec<_>>()
        .join(".");
    (!version.is_empty()).then_some(version)
}

fn version_tuple(version: &str) -> (u32, u32, u32) {
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    (
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_versions() {
        assert_eq!(
            parse_version("git version 2.47.3\n").as_deref(),
            Some("2.47.3")
        );
        assert_eq!(
            parse_version("git version 2.39.5.windows.1").as_deref(),
            Some("2.39.5")
        );
        assert_eq!(
            parse_version("git version 2.40.0 (Apple Git-143)").as_deref(),
            Some("2.40.0")
        );
        assert_eq!(parse_version("nonsense"), None);
        assert!(version_tuple("2.39.5") < version_tuple("2.40"));
        assert!(version_tuple("2.40.0") >= version_tuple("2.40"));
        assert!(version_tuple("3.0") >= version_tuple("2.40"));
    }
}
