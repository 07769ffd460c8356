//! Telling someone a stream parked: the plan's `notify` command, run the moment a stream parks
//! on a conflict, with the stream, its conflict bundle and its resolution worktree in its
//! environment, so a person can start resolving while the rest of the run goes on.
//!
//! It never stops the run and is never waited on while other work goes on: it runs on its own
//! (in its own process group, like a check), bounded by `notify_timeout` (then stopped like an
//! agent: SIGTERM, the grace period, SIGKILL), its output appended to
//! `logs/<stream>/notify.log`. Only the end of a session waits for it (bounded too), so its
//! result is known. A failure, a timeout or a command that cannot start is a note on the
//! stream and a warning line; nothing else changes.

use std::path::PathBuf;
use std::time::Duration;

use super::events::{Channels, ExecEvent};
use super::process::{self, AgentCommand, AgentExit, Limits};
use super::run::Run;
use crate::ids::StreamId;
use crate::state::StreamState;

/// How a `notify` command ended, sent to the dispatcher.
#[derive(Debug)]
pub struct NotifyEnd {
    stream: StreamId,
    exit: AgentExit,
    took: Duration,
    log: PathBuf,
}

/// Starts the plan's `notify` for parked stream `s`, if the plan has one. Returns whether it
/// started (the dispatcher counts it as running until its [`NotifyEnd`] arrives).
pub(super) fn start(run: &Run, s: usize, channels: &Channels) -> bool {
    let plan = &run.ctx.plan;
    let Some(argv) = plan.notify.clone() else {
        return false;
    };
    let record = &run.state.streams[s];
    let StreamState::Parked(park) = &record.state else {
        return false;
    };
    let log = run
        .ctx
        .run_dir
        .path()
        .join("logs")
        .join(&record.name)
        .join("notify.log");
    let env: Vec<(String, String)> = [
        ("STREAMS_EVENT", "parked".to_string()),
        ("STREAMS_PLAN", plan.name.clone()),
        ("STREAMS_STREAM", record.name.clone()),
        ("STREAMS_BUNDLE", park.bundle.display().to_string()),
        (
            "STREAMS_BUNDLE_README",
            park.bundle.join("README.md").display().to_string(),
        ),
        (
            "STREAMS_RESOLUTION_WORKTREE",
            park.resolution_worktree.display().to_string(),
        ),
        ("STREAMS_CONFLICT_FILES", park.files.join("\n")),
        ("STREAMS_INTEGRATION", park.ours.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .chain(super::process::run_mark(
        &run.state.run_id,
        run.ctx.repo.common_dir(),
    ))
    .collect();
    let title = format!("notify: {} parked on a conflict", record.name);
    let header = crate::agent::log::header(&title, &argv);
    let cwd = run.ctx.repo.root().to_path_buf();
    let cmd = AgentCommand::new(argv, cwd, env, log.clone(), header);
    let limits = Limits::wall_clock(Some(plan.notify_timeout), plan.grace);
    let (events, cancel) = (channels.events().clone(), channels.cancel());
    let stream = StreamId::new(s);
    tokio::spawn(async move {
        let (exit, took) = process::run_agent(cmd, limits, cancel, |_| {}).await;
        let _ = events.send(ExecEvent::Notified(NotifyEnd {
            stream,
            exit,
            took,
            log,
        }));
    });
    true
}

/// A `notify` command ended: a failure is a note on its stream and a warning; the run goes on.
pub(super) fn ended(run: &mut Run, end: NotifyEnd) {
    let name = run.state.streams[end.stream.index()].name.clone();
    let took = crate::duration::fmt_duration_ms(end.took.as_millis() as u64);
    let how = match &end.exit {
        AgentExit::Exited(0) => {
            tracing::info!("notify for {name} done in {took}");
            return;
        }
        // The session is stopping: that is not the command's failure.
        AgentExit::Cancelled => return,
        AgentExit::TimedOut(limit) => format!(
            "did not finish within {} (`notify_timeout`) and was stopped",
            crate::duration::fmt_duration_ms(limit.as_millis() as u64)
        ),
        AgentExit::Exited(code) => format!("exited with code {code}"),
        AgentExit::Signaled(signal) => format!("was killed by signal {signal}"),
        AgentExit::Idle(_) => "went quiet and was stopped".to_string(),
        AgentExit::Unreachable { .. } => "could not reach its model and was stopped".to_string(),
        AgentExit::SpawnFailed(why) => format!("could not start: {why}"),
        AgentExit::OverBudget(what) => format!("was stopped by a budget ({what})"),
    };
    let note = format!(
        "`notify` for its conflict {how} (log {})",
        end.log.display()
    );
    tracing::warn!("{name}: {note}");
    run.state.streams[end.stream.index()]
        .notes
        .push(note.clone());
    run.message(&format!("warning: {name}: {note}; the run goes on"));
}
