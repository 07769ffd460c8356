//! A workspace's `setup`: the plan's argv (no shell) run in a stream's workspace after it is
//! created or reset to a new start, before the agent of the task that starts there.
//!
//! Supervised like an agent (its own process group, `setup_timeout`, stopped on Ctrl-C, output
//! to `logs/<stream>/setup.log`). What it writes is the workspace's environment, not work: files
//! git ignores stay out of every commit as they always do, and a setup that leaves anything git
//! would commit (a changed tracked file, a new file not ignored) fails with the list, before
//! an agent's work could be mixed with it.
//!
//! Whether a task needs it is decided by the dispatcher (`decide::needs_setup`); the executor
//! calls [`run`] once the workspace is ready.

use std::path::{Path, PathBuf};

use tokio::sync::watch;

use super::process::{self, AgentCommand, AgentExit, Cancel, Limits};
use crate::git::GitResult;
use crate::ids::Oid;

/// What the dispatcher hands the executor when the task's workspace needs setting up.
#[derive(Clone, Debug)]
pub struct SetupJob {
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    pub log_path: PathBuf,
    pub limits: Limits,
}

impl SetupJob {
    /// `argv` with the workspace's environment `env`, stopped after `timeout`.
    pub fn new(
        argv: Vec<String>,
        env: Vec<(String, String)>,
        log_path: PathBuf,
        timeout: std::time::Duration,
        grace: std::time::Duration,
    ) -> SetupJob {
        SetupJob {
            argv,
            env,
            log_path,
            limits: Limits::wall_clock(Some(timeout), grace),
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum SetupResult {
    Done,
    /// Why it failed, for a person: the command and what went wrong.
    Failed(String),
    /// The run is being stopped.
    Interrupted,
}

/// Runs `job` in `workspace` (checked out at `start`), then checks it left nothing git would
/// commit: `changed` says what it changed (a stream's workspace is read as an agent's work
/// is). `on_spawn` gets its process group, as an agent's would.
pub async fn run(
    workspace: &Path,
    start: &Oid,
    job: &SetupJob,
    cancel: watch::Receiver<Cancel>,
    on_spawn: impl FnOnce(i32),
    changed: impl FnOnce() -> GitResult<Vec<String>> + Send + 'static,
) -> SetupResult {
    let shown = shown(&job.argv);
    let header = crate::agent::log::setup_header(start, &job.argv);
    let cmd = AgentCommand::new(
        job.argv.clone(),
        workspace.to_path_buf(),
        job.env.clone(),
        job.log_path.clone(),
        header,
    );
    let (exit, _) = process::run_agent(cmd, job.limits, cancel, on_spawn).await;
    let failed = match exit {
        AgentExit::Exited(0) => None,
        AgentExit::Cancelled => return SetupResult::Interrupted,
        AgentExit::Exited(code) => Some(format!("exited with code {code}")),
        AgentExit::Signaled(signal) => Some(format!("was killed by signal {signal}")),
        AgentExit::TimedOut(after) => Some(format!(
            "timed out after {} (`setup_timeout`)",
            humantime::format_duration(after)
        )),
        AgentExit::Idle(after) => Some(format!(
            "printed nothing for {}",
            humantime::format_duration(after)
        )),
        AgentExit::SpawnFailed(message) => Some(format!("could not start: {message}")),
        AgentExit::OverBudget(what) => Some(format!("was stopped by a budget ({what})")),
        // Only a preset's CLI is watched for that.
        AgentExit::Unreachable { .. } => Some("could not reach its model".to_string()),
    };
    if let Some(what) = failed {
        return SetupResult::Failed(format!("setup `{shown}` {what}"));
    }
    let changed = tokio::task::spawn_blocking(changed)
        .await
        .expect("blocking git work panicked");
    match changed {
        Ok(paths) if paths.is_empty() => SetupResult::Done,
        Ok(paths) => SetupResult::Failed(format!(
            "setup `{shown}` changed files git would commit: {} (a setup must not edit the code: write what it generates to paths git ignores)",
            list(paths.iter().map(String::as_str))
        )),
        Err(e) => SetupResult::Failed(format!("could not check what setup `{shown}` changed: {e}")),
    }
}

/// The argv as one line, for messages.
pub fn shown(argv: &[String]) -> String {
    argv.iter()
        .map(|a| {
            if a.is_empty() || a.contains(|c: char| c.is_whitespace() || c == '\'' || c == '"') {
                format!("'{}'", a.replace('\'', r"'\''"))
            } else {
                a.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Up to ten paths, then how many more.
fn list<'a>(paths: impl Iterator<Item = &'a str>) -> String {
    let paths: Vec<&str> = paths.collect();
    let mut text = paths
        .iter()
        .take(10)
        .copied()
        .collect::<Vec<_>>()
        .join(", ");
    if paths.len() > 10 {
        text.push_str(&format!(" and {} more", paths.len() - 10));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argv_is_shown_quoted_where_a_shell_would_need_it() {
        let argv = ["sh", "-c", "npm ci && cp .env.example .env"].map(String::from);
        assert_eq!(shown(&argv), "sh -c 'npm ci && cp .env.example .env'");
    }

    #[test]
    fn long_lists_are_cut() {
        let paths: Vec<String> = (0..12).map(|i| format!("f{i}")).collect();
        assert_eq!(
            list(paths.iter().map(String::as_str)),
            "f0, f1, f2, f3, f4, f5, f6, f7, f8, f9 and 2 more"
        );
    }
}
