//! A run stopped by a signal while its agent works: plan `c`, one stream `a` (owning `a/**`)
//! whose agent writes its pid file and then waits for a release file before it writes `a/done`;
//! `streams run` in the background, returned once the agent runs, then signalled like a
//! terminal would (Ctrl-C, a hangup) and waited for.

use std::io::Read;
use std::path::PathBuf;
use std::process::{Child, Output, Stdio};
use std::time::Duration;

use nix::sys::signal::Signal;

use crate::common::{TestRepo, wait_for};
use crate::support::plans::plan;

/// `streams run` of the waiting plan, its agent started and waiting.
pub struct WaitingRun {
    pub child: Child,
    /// Written, the agent goes on and finishes its task (for a `resume` after the signal).
    pub release: PathBuf,
}

/// Writes the waiting plan in `repo` (which has an `a/` directory), starts `streams run` with
/// its stderr piped, and returns once the agent has started.
pub fn start_waiting_run(repo: &TestRepo) -> WaitingRun {
    let pidfile = repo.root.parent().unwrap().join("agent.pid");
    let release = repo.root.parent().unwrap().join("release");
    plan(
        repo,
        &format!(
            r#"
[plan]
name = "c"
grace = "2s"

[[stream]]
name = "a"
owns = ["a/**"]
agent = ["act", "env", "{}", "wait-for", "{}", "write", "a/done", "done"]
tasks = ["slow work"]
"#,
            pidfile.display(),
            release.display()
        ),
    );
    let child = repo
        .streams_cmd(&["run"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for("the agent to start", Duration::from_secs(20), || {
        pidfile.exists().then_some(())
    });
    WaitingRun { child, release }
}

impl WaitingRun {
    /// Sends `signal` to `streams` (not to its agent's process group) and waits for it to end:
    /// its exit status and stderr (its stdout goes nowhere).
    pub fn signal(&mut self, signal: Signal) -> Output {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.child.id() as i32), signal).unwrap();
        let mut stderr = Vec::new();
        if let Some(mut pipe) = self.child.stderr.take() {
            pipe.read_to_end(&mut stderr).unwrap();
        }
        let status = self.child.wait().unwrap();
        Output {
            status,
            stdout: Vec::new(),
            stderr,
        }
    }
}
