//! `streams stop` inside the dispatcher: taking the requests a running session is signalled
//! about, stopping a stream once nothing of its runs, and what a stopped stream's task leaves
//! (committed work stays on its branch, interrupted work is kept on its `wip` ref). The state
//! changes go through the `Run` like every other, and are saved before the next step.

use nix::sys::signal::Signal;

use super::Engine;
use crate::error::Result;
use crate::exec::process::Cancel;
use crate::exec::recover;
use crate::exec::task::TaskOutcome;
use crate::ids::{Oid, StreamId, TaskId};
use crate::state::{FailReason, SpanOutcome, StreamState, TaskState};

impl Engine {
    /// `streams stop` asked for streams to stop (see `RunDir::stop_requests`): a pending stream
    /// stops now; one whose task runs has its agent stopped, and stops when the task ends (its
    /// work kept, see [`Engine::stopped_task`]); one whose work is being checked or integrated
    /// stops before its next task.
    pub(super) fn take_stop_requests(&mut self) -> Result<()> {
        let run_dir = self.run.ctx.run_dir.clone();
        for name in run_dir.stop_requests() {
            let _ = std::fs::remove_file(run_dir.stop_request_path(&name));
            let Some((s, record)) = self.run.state.stream_by_name(&name) else {
                continue;
            };
            // A parked stream runs nothing: `stop` refuses it (skip or continue it instead).
            if record.state.is_terminal() || matches!(record.state, StreamState::Parked(_)) {
                continue;
            }
            self.stop_requested.insert(s);
            let running = record
                .tasks
                .iter()
                .any(|t| matches!(t.state, TaskState::Running { .. }));
            if running {
                self.run.message(&format!(
                    "stopping {name} (`streams stop`): its agent is asked to stop; the rest of the run goes on"
                ));
                self.channels
                    .stop_stream(s, Cancel::Graceful(Signal::SIGTERM));
            }
        }
        self.stop_idle_streams()
    }

    /// Stops the streams asked to stop that nothing of theirs runs for (no task, no check, no
    /// work waiting for integration).
    pub(super) fn stop_idle_streams(&mut self) -> Result<()> {
        let mut changed = false;
        for s in self.stop_requested.clone() {
            let record = &self.run.state.streams[s];
            if record.state.is_terminal() {
                self.stop_requested.remove(&s);
                continue;
            }
            let busy = record
                .tasks
                .iter()
                .any(|t| matches!(t.state, TaskState::Running { .. }))
                || self.run.state.queue.iter().any(|u| u.stream == s)
                || self.checks.running_for(StreamId::new(s));
            if !busy {
                self.stop_requested.remove(&s);
                self.run.stop_stream(s, None);
                changed = true;
            }
        }
        if changed {
            self.run.save()?;
        }
        Ok(())
    }

    /// A task of a stream asked to stop ended: committed work stays on the stream's branch
    /// (not integrated: `retry` goes on from it), an interrupted task's work is kept on its
    /// `wip` ref and the task goes back to pending; then the stream stops.
    pub(super) fn stopped_task(
        &mut self,
        task: TaskId,
        outcome: TaskOutcome,
        start: Oid,
        started_at: u64,
    ) -> Result<()> {
        let (s, t) = (task.stream.index(), task.index);
        let run = &mut self.run;
        match outcome {
            TaskOutcome::Committed {
                end,
                stats,
                agent,
                attempts,
            } => {
                run.count_attempts(task, attempts, agent);
                run.task_committed(task, start, started_at, end, stats);
            }
            TaskOutcome::Failed {
                reason: FailReason::Internal { .. },
                agent,
                attempts,
            }
            | TaskOutcome::Interrupted { agent, attempts } => {
                run.count_attempts(task, attempts, agent);
                run.record_task_span(task, started_at, SpanOutcome::Interrupted);
                recover::start_over(run, s, t, &start)?;
            }
            TaskOutcome::Failed {
                reason,
                agent,
                attempts,
            } => {
                // It failed on its own before it could be stopped: a failure like any other.
                self.stop_requested.remove(&s);
                run.count_attempts(task, attempts, agent);
                run.task_failed(task, reason);
                return run.save();
            }
            TaskOutcome::Stopped {
                stop,
                agent,
                attempts,
            } => {
                // A limit stopped it first: the stream is stopped either way, its work kept.
                self.stop_requested.remove(&s);
                run.count_attempts(task, attempts, agent);
                run.task_stopped(task, stop);
                return run.save();
            }
        }
        self.stop_requested.remove(&s);
        let kept = run
            .ctx
            .repo
            .ref_target(&run.ctx.refs.wip(&run.state.streams[s].name, t))?
            .map(|_| run.ctx.refs.wip(&run.state.streams[s].name, t));
        run.stop_stream(s, kept);
        self.run.save()
    }
}
