//! Preparing workspaces ahead: while every slot is taken, the next streams' workspaces are
//! created (checked out, on their branch) so that a stream taking a freed slot starts its agent
//! at once. On a large tree the checkout is most of a stream's own cost; done ahead, it overlaps
//! the agents that run.
//!
//! Only a stream whose start commit is known is prepared: one ready to start (pending, its
//! dependencies integrated), at the integration tip of the moment. A stream that waits for a
//! dependency is not: its start is the tip once that dependency is integrated. A prepared
//! stream still starts at the integration tip of the moment it takes its slot: its workspace is
//! moved there from the commit it was prepared at, writing only the files that differ (a
//! checkout that refuses to overwrite a change, so nothing written there meanwhile is lost).
//! Nothing of a preparation is in the run state until its stream starts: a crash leaves a clean
//! workspace that the next run reuses (reset to its start) like any other.

use std::collections::BTreeMap;

use tokio::sync::mpsc;

use super::events::ExecEvent;
use super::run::Run;
use crate::ids::{Oid, StreamId};
use crate::state::StreamState;
use crate::workspace::{self, PrepareReport};

/// A workspace prepared before its stream took a slot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ahead {
    /// Being prepared at this commit.
    Preparing(Oid),
    /// Ready at this commit; nothing has run in it since.
    Ready(Oid),
}

/// How many workspaces are prepared (or ready, waiting for a slot) ahead at once: a few, so
/// that the checkouts do not take the CPUs and disk from the agents that run, nor fill the disk
/// with workspaces of streams that may never start.
pub fn pool(jobs: usize) -> usize {
    jobs.clamp(1, 2)
}

/// The workspaces prepared ahead of their streams, by stream.
#[derive(Default)]
pub(super) struct AheadPool {
    workspaces: BTreeMap<StreamId, Ahead>,
}

impl AheadPool {
    /// Starts preparing the workspaces of the streams `ready` to start (best first), within the
    /// pool. Each preparation ends in an [`ExecEvent::Prepared`].
    pub fn refill(
        &mut self,
        run: &Run,
        ready: Vec<usize>,
        events: &mpsc::UnboundedSender<ExecEvent>,
    ) {
        let (state, ctx) = (&run.state, &run.ctx);
        // A stream that ended without starting (skipped) leaves its workspace as it is.
        self.workspaces.retain(|s, ahead| {
            matches!(ahead, Ahead::Preparing(_))
                || state.streams[s.index()].state == StreamState::Pending
        });
        let pool = pool(state.jobs);
        for s in ready.into_iter().map(StreamId::new) {
            if self.workspaces.len() >= pool {
                break;
            }
            let record = &state.streams[s.index()];
            if self.workspaces.contains_key(&s) || record.tasks.is_empty() {
                continue;
            }
            let at = state.integration_tip.clone();
            self.workspaces.insert(s, Ahead::Preparing(at.clone()));
            let (repo, path, branch) = (
                ctx.repo.clone(),
                record.worktree.clone(),
                record.branch.clone(),
            );
            let wip = ctx.refs.wip(&record.name, 0);
            let sparse = ctx.plan.sparse_set(s.index());
            tracing::debug!("{}: preparing its workspace ahead at {at}", record.name);
            let events = events.clone();
            tokio::task::spawn_blocking(move || {
                let result = workspace::prepare(
                    &repo,
                    &workspace::Spec {
                        path: &path,
                        branch: &branch,
                        commit: &at,
                        wip_ref: &wip,
                        sparse: sparse.as_ref(),
                        ahead: true,
                    },
                )
                .map(|(_, report)| report)
                .map_err(|e| e.to_string());
                let _ = events.send(ExecEvent::Prepared {
                    stream: s,
                    at,
                    result,
                });
            });
        }
    }

    /// A preparation ended: the stream may start there, or (on failure) its executor prepares
    /// the workspace itself and reports what fails.
    pub fn prepared(
        &mut self,
        run: &Run,
        s: StreamId,
        at: Oid,
        result: Result<PrepareReport, String>,
        events: &mpsc::UnboundedSender<ExecEvent>,
    ) {
        let name = &run.state.streams[s.index()].name;
        match result {
            Ok(report) => {
                tracing::debug!("{name}: workspace prepared ahead at {at}");
                super::task::report_prepared(events, s, &report);
                self.workspaces.insert(s, Ahead::Ready(at));
            }
            Err(e) => {
                tracing::debug!("{name}: preparing its workspace ahead failed: {e}");
                self.workspaces.remove(&s);
            }
        }
    }

    /// Whether stream `s` waits for its workspace, being prepared ahead: it takes its slot once
    /// that ends (two preparations of one workspace at once would undo each other).
    pub fn preparing(&self, s: StreamId) -> bool {
        matches!(self.workspaces.get(&s), Some(Ahead::Preparing(_)))
    }

    /// Preparations still under way: the session waits for them before it ends.
    pub fn preparations(&self) -> usize {
        self.workspaces
            .values()
            .filter(|a| matches!(a, Ahead::Preparing(_)))
            .count()
    }

    /// The commit stream `s`'s workspace was prepared at, if it was and is ready: its first task
    /// starts there at the tip, the workspace moved on by the files that differ.
    pub fn take(&mut self, s: StreamId) -> Option<Oid> {
        match self.workspaces.remove(&s) {
            Some(Ahead::Ready(at)) => Some(at),
            Some(other) => {
                // Still being prepared: not taken (see `preparing`).
                self.workspaces.insert(s, other);
                None
            }
            None => None,
        }
    }
}
