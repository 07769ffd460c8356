//! Step 1: the workspace, on the stream's branch at the task's start; the lane its agent may
//! write in; and, in a workspace new or reset to a new start, its environment: the ignored
//! files the plan includes, then `setup`.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use super::{Steps, TaskOutcome, blocking};
use crate::exec::events::ExecEvent;
use crate::exec::process::Cancel;
use crate::exec::sandbox::Lane;
use crate::exec::setup::{self, SetupResult};
use crate::ids::StreamId;
use crate::state::FailReason;
use crate::workspace::{self, PrepareReport, Prepared, Workspace};

/// Prepares the task's workspace; returns it and its lane.
pub(super) async fn prepare(
    task: &Steps<'_>,
    cancel: &watch::Receiver<Cancel>,
) -> Result<(Arc<Lane>, Workspace), TaskOutcome> {
    let ws = self::workspace(task).await?;
    // Its git dirs and, when sandboxed, what it may write: known once the workspace exists.
    let lane = lane(task).await?;
    include(task).await?;
    self::setup(task, &ws, cancel).await?;
    task.lap("lane, include, setup");
    Ok((lane, ws))
}

/// The workspace on the stream branch at the task's start.
async fn workspace(task: &Steps<'_>) -> Result<Workspace, TaskOutcome> {
    let job = task.job;
    let (repo, path, branch, start) = (
        task.shared.repo.clone(),
        job.worktree.clone(),
        job.branch.clone(),
        job.start.clone(),
    );
    let (wip, sparse, ahead) = (
        job.refs.wip(&job.stream, job.task.index),
        job.sparse.clone(),
        job.prepared.clone(),
    );
    let prepared = blocking(move || {
        let spec = workspace::Spec {
            path: &path,
            branch: &branch,
            commit: &start,
            wip_ref: &wip,
            sparse: sparse.as_ref(),
            ahead: false,
        };
        // Prepared ahead: moved on to the start by the files that differ. Should that
        // fail (a file changed there meanwhile), the whole preparation keeps what it finds.
        if let Some(at) = ahead
            && let Ok(ws) = workspace::advance(&repo, &spec, &at)
        {
            let report = PrepareReport {
                how: Prepared::Ready,
                saved: None,
                repaired: false,
                set_aside: None,
            };
            return Ok((ws, report));
        }
        workspace::prepare(&repo, &spec)
    })
    .await;
    task.lap("workspace");
    match prepared {
        Ok((ws, report)) => {
            report_prepared(task.events, job.task.stream, &report);
            Ok(ws)
        }
        Err(e) => Err(TaskOutcome::internal(
            format!(
                "could not prepare the workspace {}: {e}",
                job.worktree.display()
            ),
            job.previous_attempts,
        )),
    }
}

/// Tells what preparing a stream's workspace found there (work kept, a workspace repaired).
pub(in crate::exec) fn report_prepared(
    events: &mpsc::UnboundedSender<ExecEvent>,
    stream: StreamId,
    report: &PrepareReport,
) {
    if let Some((kept, saved)) = &report.saved {
        let _ = events.send(ExecEvent::Note {
            stream,
            message: format!(
                "uncommitted work found in its workspace was kept on {kept} ({})",
                crate::text::short(saved)
            ),
        });
    }
    if report.repaired {
        let message = match &report.set_aside {
            None => "a damaged or outdated workspace was removed and created again".to_string(),
            Some(aside) => format!(
                "its workspace could not be reset: it was set aside at {} (remove it once you have what you need from it) and created again",
                aside.display()
            ),
        };
        let _ = events.send(ExecEvent::Note { stream, message });
    }
}

async fn lane(task: &Steps<'_>) -> Result<Arc<Lane>, TaskOutcome> {
    let job = task.job;
    let (worktree, spec) = (job.worktree.clone(), job.sandbox.clone());
    match blocking(move || Lane::for_task(&worktree, &spec)).await {
        Ok(lane) => Ok(Arc::new(lane)),
        Err(message) => Err(TaskOutcome::failed(
            FailReason::Spawn { message },
            Duration::ZERO,
            job.previous_attempts,
        )),
    }
}

/// The ignored files the workspace needs, copied in from the checkout.
async fn include(task: &Steps<'_>) -> Result<(), TaskOutcome> {
    let job = task.job;
    let Some(include) = job.include.clone() else {
        return Ok(());
    };
    let workspace = job.worktree.clone();
    blocking(move || include.run(&workspace))
        .await
        .map_err(|message| {
            TaskOutcome::failed(
                FailReason::Setup { message },
                Duration::ZERO,
                job.previous_attempts,
            )
        })
}

/// The workspace's `setup`, told to the dispatcher as it starts and ends.
async fn setup(
    task: &Steps<'_>,
    ws: &Workspace,
    cancel: &watch::Receiver<Cancel>,
) -> Result<(), TaskOutcome> {
    let (shared, job) = (task.shared, task.job);
    let Some(setup) = &job.setup else {
        return Ok(());
    };
    let stream = job.task.stream;
    let _ = task.events.send(ExecEvent::SetupStarted { stream });
    let started_at = crate::state::now_ms();
    let (journal, name, task_index) = (shared.journal.clone(), job.stream.clone(), job.task.index);
    // What it wrote is read as an agent's work is: against streams' record of the files.
    let (repo, reader) = (shared.repo.clone(), ws.clone());
    let changed = move || {
        let read = reader.read(&repo, None, &std::collections::HashSet::new())?;
        Ok(read.paths().into_iter().collect())
    };
    let result = setup::run(
        ws.path(),
        &job.start,
        setup,
        cancel.clone(),
        move |pgid| {
            // As for an agent: `resume` finds a group left running by a dead coordinator.
            let _ = journal.append(crate::state::Entry::AgentSpawned {
                stream: name,
                task: task_index,
                pgid,
            });
        },
        changed,
    )
    .await;
    let (failure, at) = match &result {
        SetupResult::Done => (None, Some(job.start.clone())),
        SetupResult::Failed(why) => (Some(why.clone()), None),
        SetupResult::Interrupted => (Some("interrupted".into()), None),
    };
    let _ = task.events.send(ExecEvent::SetupFinished {
        stream,
        started_at,
        failure,
        at,
    });
    let attempts = job.previous_attempts;
    match result {
        SetupResult::Done => Ok(()),
        SetupResult::Failed(message) => Err(TaskOutcome::failed(
            FailReason::Setup { message },
            Duration::ZERO,
            attempts,
        )),
        SetupResult::Interrupted => Err(TaskOutcome::Interrupted {
            agent: Duration::ZERO,
            attempts,
        }),
    }
}
