//! A lane the kernel enforces: with `sandbox = "landlock"` (or `"auto"` where the kernel has it),
//! an agent's whole process tree may write only inside its own workspace, its private temp dir and
//! the directories the plan lists in `sandbox_writable`. Everything else stays readable and
//! becomes read-only to it, above all the user's repository and checkout and the other streams'
//! workspaces. The ownership check after the agent stays: the kernel rule is per directory, a
//! lane is per glob.
//!
//! How it is applied: Linux Landlock, through the `landlock` crate, between fork and exec of the
//! agent. Everything that allocates or opens files (resolving paths, creating the ruleset, one
//! `O_PATH` descriptor per rule) happens in the parent, in [`confine`]; the child only calls
//! `RulesetCreated::restrict_self`, which is two system calls (`prctl(PR_SET_NO_NEW_PRIVS)` and
//! `landlock_restrict_self`) and closing the ruleset descriptor: no allocation, no lock, so it is
//! safe between fork and exec of a multi-threaded program (checked against landlock 0.4.8's
//! source). Landlock binds root too: it is not a permission check that privileges bypass.
//!
//! Only write rights are handled (the crate's `AccessFs::from_write(ABI::V3)`: creating, writing,
//! truncating, removing, renaming and linking), so reads, execution, device ioctls and the
//! network are untouched. ABI 3 (Linux 6.2) is the least streams uses: ABI 2 cannot stop a file
//! outside the workspace from being truncated, and ABI 1 refuses every rename between two
//! directories, the workspace's included, which breaks git. Where the kernel has ABI 6 (Linux
//! 6.12), signals are scoped too: the agent's tree may signal its own processes only, so it
//! cannot stop or kill streams (`kill -STOP` of its parent's parent) or its reaper.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::error::{Error, Result};
use crate::plan::{Plan, SandboxMode, Stream};
use crate::state::FailReason;

/// The Landlock ABI whose write rights streams handles (Linux 6.2).
const NEEDED_ABI: i32 = 3;

/// The Landlock ABI that can keep an agent from signalling processes outside its own tree
/// (Linux 6.12): streams above all. Used where the kernel has it; below it, see the README.
const SIGNAL_SCOPE_ABI: i32 = 6;

/// Device files an agent may write (not create or remove): what shells and tools open for
/// writing as a matter of course. Other shared scratch places (`/tmp`, `/dev/shm`) are not
/// writable unless the plan lists them: the agent gets a private `TMPDIR` instead.
const DEVICES: &[&str] = &["/dev/null", "/dev/zero", "/dev/full", "/dev/tty"];

/// What the plan asks of one task's confinement; built by the dispatcher.
#[derive(Clone, Debug)]
pub struct Spec {
    pub mode: SandboxMode,
    /// `sandbox_writable`, `~` expanded.
    pub writable: Vec<PathBuf>,
    /// The task's private temp dir (its `TMPDIR`), under the run directory.
    pub tmp_dir: PathBuf,
}

impl Spec {
    pub fn new(plan: &Plan, stream: &Stream, tmp_dir: PathBuf) -> Spec {
        Spec {
            mode: plan.sandbox_for(stream),
            writable: plan
                .sandbox_writable_for(stream)
                .iter()
                .map(|p| expand_home(p))
                .collect(),
            tmp_dir,
        }
    }
}

/// `~` and `~/...` under `$HOME`; anything else as written.
pub fn expand_home(path: &str) -> PathBuf {
    let home = std::env::var_os("HOME").filter(|h| !h.is_empty());
    match (path.strip_prefix('~'), home) {
        (Some(""), Some(home)) => PathBuf::from(home),
        (Some(rest), Some(home)) if rest.starts_with('/') => {
            PathBuf::from(home).join(rest.trim_start_matches('/'))
        }
        _ => PathBuf::from(path),
    }
}

/// The git directories of a workspace: where a commit made in it writes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GitDirs {
    /// The workspace's own git dir (`git rev-parse --git-dir`).
    pub git_dir: PathBuf,
    /// Where objects and refs live (`git rev-parse --git-common-dir`); the git dir itself for a
    /// repository of its own, the main repository's for a linked worktree.
    pub common_dir: PathBuf,
}

/// Resolves a workspace's git dirs as git does (gitrepository-layout: `.git` is a directory or a
/// `gitdir: <path>` file; a git dir holding a `commondir` file shares that one's objects and
/// refs), without starting git. Paths are absolute and canonical.
pub fn git_dirs(workspace: &Path) -> io::Result<GitDirs> {
    let dot_git = workspace.join(".git");
    let git_dir = if dot_git.is_dir() {
        dot_git
    } else {
        let text = std::fs::read_to_string(&dot_git)?;
        let target = text
            .strip_prefix("gitdir:")
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "{} is neither a directory nor a `gitdir:` file",
                        dot_git.display()
                    ),
                )
            })?;
        workspace.join(target)
    };
    let git_dir = git_dir.canonicalize()?;
    let common_dir = match std::fs::read_to_string(git_dir.join("commondir")) {
        Ok(text) => git_dir.join(text.trim()).canonicalize()?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => git_dir.clone(),
        Err(e) => return Err(e),
    };
    Ok(GitDirs {
        git_dir,
        common_dir,
    })
}

/// Whether this kernel can confine agents, as the `landlock` crate finds it: the ABI, or why not.
/// Asked once per process.
pub fn kernel_support() -> &'static std::result::Result<i32, String> {
    static SUPPORT: OnceLock<std::result::Result<i32, String>> = OnceLock::new();
    SUPPORT.get_or_init(|| {
        const MISSING: &str = "this kernel has no Landlock (Linux 6.2 or newer built with CONFIG_SECURITY_LANDLOCK is needed)";
        if crate::failpoint::absent("landlock") {
            return Err(MISSING.into());
        }
        let abi = kernel::probe(MISSING)?;
        tracing::debug!(abi, "Landlock available");
        if abi < NEEDED_ABI {
            return Err(format!(
                "this kernel's Landlock is ABI {abi}; streams needs ABI {NEEDED_ABI} (Linux 6.2), which can also stop an agent from truncating files outside its workspace"
            ));
        }
        Ok(abi)
    })
}

/// Checked before a run starts: a stream asking for `landlock` on a kernel without it fails the
/// run with the reason; `auto` gets one warning (returned) and runs unconfined. Paths in
/// `sandbox_writable` must exist (Landlock grants rights on existing files only).
pub fn preflight(plan: &Plan) -> Result<Vec<String>> {
    let confined: Vec<&Stream> = plan
        .streams
        .iter()
        .filter(|s| plan.sandbox_for(s) != SandboxMode::Off)
        .collect();
    if confined.is_empty() {
        return Ok(Vec::new());
    }
    let mut warnings = Vec::new();
    if let Err(reason) = kernel_support() {
        if let Some(stream) = confined
            .iter()
            .find(|s| plan.sandbox_for(s) == SandboxMode::Landlock)
        {
            return Err(Error::usage_with_hint(
                format!(
                    "stream `{}` asks for sandbox = \"landlock\", but {reason}",
                    stream.name
                ),
                "set `sandbox = \"auto\"` to run agents unconfined where the kernel cannot confine them, or run on a kernel with Landlock",
            ));
        }
        warnings.push(format!(
            "sandbox = \"auto\": {reason}; agents run without the sandbox"
        ));
        return Ok(warnings);
    }
    for stream in confined {
        for written in plan.sandbox_writable_for(stream) {
            let path = expand_home(&written);
            if !path.is_absolute() || !path.exists() {
                return Err(Error::usage_with_hint(
                    format!(
                        "`sandbox_writable` lists {written} ({}), which does not exist",
                        path.display()
                    ),
                    "create it or take it out of the list: the kernel grants rights on existing paths only",
                ));
            }
        }
    }
    Ok(warnings)
}

/// One task's lane: the git dirs (which the agent gets in its environment whether or not it is
/// confined) and, when confined, what it may write.
#[derive(Debug)]
pub struct Lane {
    pub dirs: GitDirs,
    confinement: Option<Confinement>,
}

#[derive(Debug)]
pub struct Confinement {
    /// `landlock`: refuse to start the agent unless the kernel enforces every rule.
    required: bool,
    /// Directories (and their contents) it may write.
    writable: Vec<PathBuf>,
    tmp_dir: PathBuf,
}

impl Lane {
    /// Resolves a task's lane once its workspace is ready.
    pub fn for_task(workspace: &Path, spec: &Spec) -> std::result::Result<Lane, String> {
        let dirs = git_dirs(workspace).map_err(|e| {
            format!(
                "could not find the git directory of the workspace {}: {e}",
                workspace.display()
            )
        })?;
        let required = match (spec.mode, kernel_support()) {
            (SandboxMode::Off, _) | (SandboxMode::Auto, Err(_)) => {
                return Ok(Lane {
                    dirs,
                    confinement: None,
                });
            }
            (SandboxMode::Landlock, Err(reason)) => {
                return Err(format!(
                    "sandbox = \"landlock\", but {reason}; the agent was not started"
                ));
            }
            (mode, Ok(_)) => mode == SandboxMode::Landlock,
        };
        std::fs::create_dir_all(&spec.tmp_dir).map_err(|e| {
            format!(
                "could not create the agent's temp dir {}: {e}",
                spec.tmp_dir.display()
            )
        })?;
        let mut writable = vec![workspace.to_path_buf(), dirs.git_dir.clone()];
        writable.extend(commit_dirs(workspace, &dirs));
        writable.push(spec.tmp_dir.clone());
        for path in &spec.writable {
            if !path.exists() {
                return Err(format!(
                    "`sandbox_writable` lists {}, which does not exist; the agent was not started",
                    path.display()
                ));
            }
            writable.push(path.clone());
        }
        Ok(Lane {
            dirs,
            confinement: Some(Confinement {
                required,
                writable,
                tmp_dir: spec.tmp_dir.clone(),
            }),
        })
    }

    /// What the agent finds in its environment: where a commit writes (for an agent that runs a
    /// sandbox of its own) and, when confined, its private temp dir.
    pub fn env(&self) -> Vec<(String, String)> {
        let mut env = vec![
            (
                "STREAMS_GIT_DIR".to_string(),
                self.dirs.git_dir.display().to_string(),
            ),
            (
                "STREAMS_GIT_COMMON_DIR".to_string(),
                self.dirs.common_dir.display().to_string(),
            ),
        ];
        if let Some(c) = &self.confinement {
            env.push(("TMPDIR".to_string(), c.tmp_dir.display().to_string()));
        }
        env
    }

    pub fn confinement(&self) -> Option<&Confinement> {
        self.confinement.as_ref()
    }

    /// The failure of an agent that exited with `code`: when it ran confined, say so, and
    /// whether its output shows a refused write (read from the end of its log).
    pub fn exit_reason(&self, code: i32, log: &Path) -> FailReason {
        if self.confinement.is_none() {
            return FailReason::Exit { code };
        }
        FailReason::SandboxedExit {
            code,
            denied: output_shows_denial(log),
        }
    }

    /// For an agent that exited 0: when it ran confined and its output shows a refused write,
    /// the note that says so. Its task succeeds, but something it tried (a cache, a tool's
    /// settings, a file outside its lane) did not happen, and only its log would tell.
    pub fn refused_writes_note(&self, task: usize, log: &Path) -> Option<String> {
        (self.confinement.is_some() && output_shows_denial(log)).then(|| {
            format!(
                "task {task}: the sandbox refused some of its agent's writes outside its workspace (its output says \"Permission denied\"; see {}); if it must write there, list the path in `sandbox_writable`",
                log.display()
            )
        })
    }
}

impl Drop for Lane {
    /// The task is over (its agent's processes are gone): its temp dir goes with it.
    fn drop(&mut self) {
        if let Some(c) = &self.confinement {
            let _ = std::fs::remove_dir_all(&c.tmp_dir);
        }
    }
}

/// In a linked worktree the git dir holds only the worktree's own files (HEAD, index); a commit
/// also writes objects, refs and reflogs in the shared common dir. Those three are granted, not
/// the common dir itself, whose other entries (config, hooks, other worktrees) stay read-only.
/// A workspace that is a repository of its own needs nothing more.
fn commit_dirs(workspace: &Path, dirs: &GitDirs) -> Vec<PathBuf> {
    if dirs.common_dir == dirs.git_dir || dirs.common_dir.starts_with(workspace) {
        return Vec::new();
    }
    ["objects", "refs", "logs"]
        .iter()
        .map(|d| dirs.common_dir.join(d))
        // Created now by streams, unconfined: the agent could not create them itself.
        .filter(|d| std::fs::create_dir_all(d).is_ok())
        .collect()
}

/// Whether the end of the agent's log shows the kernel refusing a write (EACCES; Landlock
/// never answers EPERM or EROFS).
fn output_shows_denial(log: &Path) -> bool {
    crate::agent::log::output_mentions(log, &["Permission denied", "EACCES"])
}

/// Arranges for the agent to start confined. The ruleset is built here, in the parent; the hook
/// run in the child between fork and exec only applies it (see the module docs).
pub fn confine(
    command: &mut tokio::process::Command,
    confinement: Option<&Confinement>,
) -> std::result::Result<(), String> {
    let Some(c) = confinement else {
        return Ok(());
    };
    let devices: Vec<&Path> = DEVICES
        .iter()
        .map(Path::new)
        .filter(|p| p.exists())
        .collect();
    let abi = kernel_support().as_ref().map_or(0, |abi| *abi);
    let ruleset = kernel::build(&c.writable, &devices, c.required, abi)
        .map_err(|e| format!("could not set up the sandbox: {e}"))?;
    let mut ruleset = Some(ruleset);
    let required = c.required;
    // SAFETY: the closure only moves a ready ruleset out of its Option and applies it:
    // async-signal-safe system calls, no allocation (the error values built are OS error codes).
    unsafe {
        command.pre_exec(move || kernel::restrict(&mut ruleset, required));
    }
    Ok(())
}

/// What the spawn fails with when the child could not confine itself (an errno that exec itself
/// does not give, so the message can say what happened).
pub const NOT_CONFINED: i32 = nix::libc::EOPNOTSUPP;

/// The message for a spawn that failed with [`NOT_CONFINED`].
pub const NOT_CONFINED_MESSAGE: &str =
    "the kernel did not apply the sandbox to it, so it was not started";

/// The Landlock calls, through the `landlock` crate (Linux only).
#[cfg(target_os = "linux")]
mod kernel {
    use std::io;
    use std::path::{Path, PathBuf};

    use landlock::{
        ABI, AccessFs, CompatLevel, Compatible, LandlockStatus, Ruleset, RulesetAttr,
        RulesetCreated, RulesetCreatedAttr, RulesetError, RulesetStatus, Scope, path_beneath_rules,
    };

    /// The running kernel's Landlock ABI as the crate finds it, or why there is none.
    pub fn probe(missing: &str) -> Result<i32, String> {
        // Landlock binds the calling thread only: a throwaway thread restricts itself and reports
        // the status the crate found, leaving the rest of streams untouched.
        let probe = std::thread::spawn(|| {
            Ruleset::default()
                .handle_access(AccessFs::from_write(ABI::V1))
                .and_then(|r| r.create())
                .and_then(|r| r.restrict_self())
                .map(|status| status.landlock)
                .map_err(|e| e.to_string())
        });
        let status = probe
            .join()
            .unwrap_or_else(|_| Err("the Landlock probe panicked".into()))?;
        match status {
            LandlockStatus::Available {
                effective_abi,
                kernel_abi,
            } => Ok(kernel_abi.unwrap_or(effective_abi as i32)),
            LandlockStatus::NotEnabled => Err("Landlock is built into this kernel but not enabled (add `landlock` to the `lsm=` boot parameter)".into()),
            LandlockStatus::NotImplemented => Err(missing.into()),
        }
    }

    /// In the parent: the ruleset, every path opened and added. Only write rights are handled,
    /// and signals where the kernel's ABI (`abi`) can scope them (6, Linux 6.12): the agent may
    /// then signal only processes of its own tree, not streams nor the reaper it runs under.
    pub fn build(
        writable: &[PathBuf],
        devices: &[&Path],
        required: bool,
        abi: i32,
    ) -> Result<RulesetCreated, RulesetError> {
        let access = AccessFs::from_write(ABI::V3);
        let level = if required {
            CompatLevel::HardRequirement
        } else {
            CompatLevel::BestEffort
        };
        let mut ruleset = Ruleset::default()
            .set_compatibility(level)
            .handle_access(access)?;
        if abi >= super::SIGNAL_SCOPE_ABI {
            ruleset = ruleset.scope(Scope::Signal)?;
        }
        ruleset
            .create()?
            // Directories: everything below them; files (the devices): write and truncate only.
            .add_rules(path_beneath_rules(writable, access))?
            .add_rules(path_beneath_rules(devices, access))
    }

    /// In the child, between fork and exec.
    pub fn restrict(ruleset: &mut Option<RulesetCreated>, required: bool) -> io::Result<()> {
        let Some(ruleset) = ruleset.take() else {
            return Ok(());
        };
        match ruleset.restrict_self() {
            Ok(status) if status.ruleset == RulesetStatus::FullyEnforced || !required => Ok(()),
            // `landlock`, and the kernel did not enforce every rule (or refused): the agent must
            // not run unconfined.
            _ => Err(io::Error::from_raw_os_error(super::NOT_CONFINED)),
        }
    }
}

/// Elsewhere there is no Landlock: `kernel_support` says so, and nothing is ever confined.
#[cfg(not(target_os = "linux"))]
mod kernel {
    use std::io;
    use std::path::{Path, PathBuf};

    pub struct Never;

    pub fn probe(_missing: &str) -> Result<i32, String> {
        Err("Landlock is a Linux feature; this system has none".into())
    }

    pub fn build(_: &[PathBuf], _: &[&Path], _: bool, _: i32) -> Result<Never, String> {
        Err("Landlock is a Linux feature".into())
    }

    pub fn restrict(_: &mut Option<Never>, _: bool) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn git(dir: &Path, args: &[&str]) -> String {
        let out = std::process::Command::new("git")
            .args(args)
            .current_dir(dir)
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .output()
            .unwrap();
        assert!(out.status.success(), "git {args:?}: {out:?}");
        String::from_utf8(out.stdout).unwrap()
    }

    fn rev_parse(dir: &Path) -> GitDirs {
        let out = git(
            dir,
            &[
                "rev-parse",
                "--path-format=absolute",
                "--git-dir",
                "--git-common-dir",
            ],
        );
        let mut lines = out
            .lines()
            .map(|l| PathBuf::from(l).canonicalize().unwrap());
        GitDirs {
            git_dir: lines.next().unwrap(),
            common_dir: lines.next().unwrap(),
        }
    }

    #[test]
    fn git_dirs_agree_with_git_for_a_repository_a_linked_worktree_and_a_shared_clone() {
        let tmp = tempfile::tempdir().unwrap();
        let main = tmp.path().join("main");
        std::fs::create_dir(&main).unwrap();
        git(&main, &["init", "-q"]);
        git(
            &main,
            &[
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@t",
                "commit",
                "-q",
                "--allow-empty",
                "-m",
                "one",
            ],
        );
        let linked = tmp.path().join("linked");
        git(
            &main,
            &["worktree", "add", "-q", linked.to_str().unwrap(), "-b", "x"],
        );
        let shared = tmp.path().join("shared");
        git(
            tmp.path(),
            &[
                "clone",
                "-q",
                "--shared",
                "--no-checkout",
                main.to_str().unwrap(),
                shared.to_str().unwrap(),
            ],
        );
        for dir in [&main, &linked, &shared] {
            assert_eq!(git_dirs(dir).unwrap(), rev_parse(dir), "{}", dir.display());
        }
        let linked_dirs = git_dirs(&linked).unwrap();
        assert_ne!(linked_dirs.git_dir, linked_dirs.common_dir);
        // A linked worktree gets the shared store's objects, refs and logs; a repository of its
        // own nothing beyond its git dir.
        let granted = commit_dirs(&linked, &linked_dirs);
        let common = &linked_dirs.common_dir;
        assert_eq!(
            granted,
            [
                common.join("objects"),
                common.join("refs"),
                common.join("logs")
            ]
        );
        assert!(commit_dirs(&shared, &git_dirs(&shared).unwrap()).is_empty());
    }

    #[test]
    fn the_kernel_is_asked_through_the_crate() {
        // Informative where there is no Landlock; where there is, the ABI is a real one.
        match kernel_support() {
            Ok(abi) => {
                println!("Landlock ABI {abi}");
                assert!(*abi >= NEEDED_ABI);
            }
            Err(why) => println!("no usable Landlock: {why}"),
        }
    }

    #[test]
    fn home_is_expanded_only_at_the_start() {
        let home = PathBuf::from(std::env::var_os("HOME").unwrap());
        assert_eq!(expand_home("~"), home);
        assert_eq!(expand_home("~/.cache/x"), home.join(".cache/x"));
        assert_eq!(expand_home("/a/~/b"), PathBuf::from("/a/~/b"));
        assert_eq!(expand_home("~bob/x"), PathBuf::from("~bob/x"));
    }

    #[test]
    fn denial_is_read_from_the_end_of_the_log() {
        let tmp = tempfile::tempdir().unwrap();
        let log = tmp.path().join("1.log");
        std::fs::write(&log, "sh: 1: cannot create /x: Permission denied\n").unwrap();
        assert!(output_shows_denial(&log));
        std::fs::write(&log, "error: tests failed\n").unwrap();
        assert!(!output_shows_denial(&log));
        let header = "=== argv: [\"grep\", \"Permission denied\"]\nno match\n";
        std::fs::write(&log, header).unwrap();
        assert!(!output_shows_denial(&log));
        assert!(!output_shows_denial(&tmp.path().join("missing.log")));
    }
}
