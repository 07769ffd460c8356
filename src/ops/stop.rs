//! `stop STREAM`: stops one stream of a running run and lets the rest go on.
//!
//! The run's coordinator is another process: `stop` leaves a request in the run's directory
//! (`RunDir::stop_request_path`) and wakes the coordinator with SIGUSR1. The coordinator alone
//! changes the run's state: it stops the stream's agent (as it would on Ctrl-C, with the
//! grace period), keeps the task's unfinished work on its `wip` ref, and records the stream as
//! stopped; `streams retry STREAM` continues it. `stop` waits until the state says so.

use std::time::{Duration, Instant};

use crate::error::{Error, IoContext, Result};
use crate::git::Repo;
use crate::layout::RefNames;
use crate::state::{StateDir, StreamState, TaskState, lock};

use super::runs::Picked;

/// The commands whose process is a run's coordinator (and listens for stop requests).
const COORDINATORS: &[&str] = &["run", "resume", "continue", "skip", "retry", "integrate"];

/// How long `stop` waits for the coordinator to have stopped the stream: an agent gets its
/// grace period (10s unless the plan says otherwise) before it is killed.
const WAIT: Duration = Duration::from_secs(120);

pub use crate::report::session_view::Stopped as StopOutcome;

/// SIGUSR1 asks a coordinator to read stop requests once it listens (see `exec::signals`);
/// until then, and in every other command, it must not end the process.
pub fn prepare_process() {
    crate::exec::signals::ignore_stop_requests();
}

/// Stops `stream` of the picked run (see the module docs).
pub fn stop(repo: &Repo, picked: &Picked, stream: &str) -> Result<StopOutcome> {
    let state = &picked.state;
    let (_, record) = super::show::find_stream(state, stream)?;
    if record.state.is_terminal() {
        return Err(Error::usage_with_hint(
            format!(
                "stream `{stream}` of run {} is {} already: there is nothing to stop",
                state.run_id,
                crate::report::stream_word(&record.state, None)
            ),
            "`streams status` shows where each stream stands",
        ));
    }
    if matches!(record.state, StreamState::Parked(_)) {
        // Nothing of it runs: it waits for a person, who leaves it out or resolves it.
        return Err(Error::usage_with_hint(
            format!(
                "stream `{stream}` of run {} is parked on a conflict: nothing of it runs to stop",
                state.run_id
            ),
            format!(
                "`streams skip {stream}` leaves it out; or resolve it and `streams continue {stream}`"
            ),
        ));
    }
    let state_dir = StateDir::new(repo.common_dir());
    let holder = lock::current_holder(&state_dir, &state.plan_name)
        .filter(|h| COORDINATORS.contains(&h.command.as_str()));
    let Some(holder) = holder else {
        return Err(Error::state(
            format!(
                "run {} of plan `{}` is {}: no agent of it runs, so there is nothing to stop",
                state.run_id,
                state.plan_name,
                state.phase.seen(false)
            ),
            format!(
                "while a run is halted, `streams skip {stream}` leaves a stream out; an interrupted run goes on with `streams resume`"
            ),
        ));
    };
    if holder.host != lock::hostname() {
        return Err(Error::state(
            format!(
                "run {} runs on {} (`streams {}`, pid {}): stop it from there",
                state.run_id, holder.host, holder.command, holder.pid
            ),
            format!("on {}, run `streams stop {stream}`", holder.host),
        ));
    }
    let request = picked.dir.stop_request_path(stream);
    if let Some(parent) = request.parent() {
        std::fs::create_dir_all(parent)
            .context(|| format!("could not create {}", parent.display()))?;
    }
    std::fs::write(&request, format!("{}\n", std::process::id()))
        .context(|| format!("could not write {}", request.display()))?;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(holder.pid as i32),
        nix::sys::signal::Signal::SIGUSR1,
    )
    .map_err(|e| {
        Error::io(
            format!(
                "could not reach `streams {}` (pid {})",
                holder.command, holder.pid
            ),
            std::io::Error::from(e),
        )
    })?;
    let deadline = Instant::now() + WAIT;
    while Instant::now() < deadline {
        let now = picked.dir.load()?;
        if let Some((_, record)) = now.stream_by_name(stream) {
            match &record.state {
                StreamState::Stopped { .. } => {
                    return Ok(StopOutcome::Stopped {
                        kept: kept_ref(repo, &now.plan_name, record),
                    });
                }
                other if other.is_terminal() => {
                    return Ok(StopOutcome::Ended {
                        word: crate::report::stream_word(other, None),
                    });
                }
                _ => {}
            }
        }
        if now.phase.is_over() || lock::current_holder(&state_dir, &now.plan_name).is_none() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(StopOutcome::Asked { pid: holder.pid })
}

/// The `wip` ref keeping the work of the task a stopped stream was running (its first task
/// not done), if there is one.
fn kept_ref(repo: &Repo, plan: &str, record: &crate::state::StreamRecord) -> Option<String> {
    let t = record.tasks.iter().position(|t| {
        matches!(
            t.state,
            TaskState::Pending | TaskState::Running { .. } | TaskState::Skipped
        )
    })?;
    let name = RefNames::new(plan).wip(&record.name, t);
    repo.ref_target(&name).ok().flatten().map(|_| name)
}
