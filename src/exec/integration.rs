//! Integrating one sync unit without a gate: the coordinator merges it onto the integration tip
//! and moves the ref, or finds that it conflicts (the dispatcher then parks its stream).

use super::run::Run;
use crate::coordinator::{self, ConflictFound, UnitInput, UnitOutcome};
use crate::error::{Error, Result};
use crate::failpoint;
use crate::report::Event;
use crate::state::{SpanOutcome, Step, SyncUnit, now_ms};

/// Integrates `unit` and records it (saved); `Some`: it conflicts, nothing moved.
pub(super) async fn integrate_unit(
    run: &mut Run,
    unit: &SyncUnit,
) -> Result<Option<ConflictFound>> {
    failpoint::hit("before-integrate");
    run.guard_integration_ref()?;
    let began = now_ms();
    let tasks = run.unit_tasks(unit);
    let name = run.state.streams[unit.stream].name.clone();
    let (repo, journal) = (run.ctx.repo.clone(), run.ctx.journal.clone());
    let (integration_ref, tip) = (
        run.state.integration_ref.clone(),
        run.state.integration_tip.clone(),
    );
    let (from, to, strategy, identity) = (
        unit.from.clone(),
        unit.to.clone(),
        run.ctx.plan.merge,
        run.ctx.identity_env.clone(),
    );
    let stream_name = name.clone();
    let task_ranges = tasks.clone();
    let outcome = tokio::task::spawn_blocking(move || {
        coordinator::integrate(
            &repo,
            Some(&journal),
            &UnitInput {
                stream: &stream_name,
                integration_ref: &integration_ref,
                tip: &tip,
                from: &from,
                to: &to,
                tasks: &task_ranges,
                strategy,
                identity_env: &identity,
            },
        )
    })
    .await
    .map_err(|e| Error::Internal(format!("integration panicked: {e}")))?
    .map_err(Error::Git)?;
    tracing::debug!("{name}: integration {} ms", now_ms().saturating_sub(began));
    match outcome {
        UnitOutcome::Integrated { tip, commits } => {
            run.record_span(unit.stream, Step::Integration, began, SpanOutcome::Ok, None);
            let stream_done = run.unit_integrated(unit, tip.clone());
            run.emit(Event::Integrated {
                stream: name,
                tasks: tasks.iter().map(|t| t.index + 1).collect(),
                commits,
                tip: tip.to_string(),
                order: run.state.integrations.len(),
            });
            if stream_done {
                run.finish_stream(unit.stream);
            }
            run.save()?;
            failpoint::hit("after-integrate-saved");
            Ok(None)
        }
        UnitOutcome::Conflict(conflict) => {
            let files = conflict
                .merge
                .conflicted_paths()
                .iter()
                .map(|p| p.to_string())
                .collect();
            run.record_span(
                unit.stream,
                Step::Integration,
                began,
                SpanOutcome::Conflict { files },
                None,
            );
            Ok(Some(conflict))
        }
    }
}
