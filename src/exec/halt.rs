//! The halt: a unit that conflicts stops the run, with what a person needs to resolve it
//! (the conflict bundle, the resolution worktree); and what a person does then: `continue`
//! records their resolution ([`resolve`]), `skip` leaves a stream out ([`skip`]).

use super::dispatcher::resolution_worktree_path;
use super::run::Run;
use crate::coordinator::{self, ConflictFound, IntegrationMove, UnitInput};
use crate::error::{Error, Result};
use crate::git::worktree::{self, keep_work};
use crate::report::Event;
use crate::state::{Entry, Halt, RunPhase, StreamState, SyncUnit};

/// Writes the halt of a run whose `unit` conflicts: the conflict bundle, the resolution
/// worktree, and the state (`Halted`), saved.
pub(super) async fn write(run: &mut Run, unit: SyncUnit, conflict: ConflictFound) -> Result<()> {
    let name = run.state.streams[unit.stream].name.clone();
    let tasks = run.unit_tasks(&unit);
    let bundle = run.ctx.run_dir.conflicts_dir(&name);
    let resolution = resolution_worktree_path(&run.ctx.repo, &run.ctx.plan);
    let (repo, plan_name, integration_ref, run_id) = (
        run.ctx.repo.clone(),
        run.ctx.plan.name.clone(),
        run.state.integration_ref.clone(),
        run.state.run_id.clone(),
    );
    let (bundle_c, resolution_c, conflict_c, name_c, tasks_c) = (
        bundle.clone(),
        resolution.clone(),
        conflict.clone(),
        name.clone(),
        tasks.clone(),
    );
    let files = tokio::task::spawn_blocking(move || {
        coordinator::write_halt(
            &repo,
            &coordinator::HaltInput {
                stream: &name_c,
                tasks: &tasks_c,
                plan_name: &plan_name,
                integration_ref: &integration_ref,
                conflict: &conflict_c,
                bundle_dir: &bundle_c,
                resolution_worktree: &resolution_c,
                run_id: &run_id,
            },
        )
    })
    .await
    .map_err(|e| Error::Internal(format!("writing the conflict panicked: {e}")))??;
    run.state.phase = RunPhase::Halted(Halt {
        unit,
        files: files.clone(),
        base: conflict.base.clone(),
        ours: conflict.ours.clone(),
        theirs: conflict.theirs.clone(),
        bundle: bundle.clone(),
        resolution_worktree: resolution.clone(),
    });
    let _ = run.ctx.journal.append(Entry::Halted {
        stream: name.clone(),
    });
    run.save()?;
    run.emit(Event::Conflict {
        stream: name,
        files,
        bundle: bundle.display().to_string(),
        worktree: resolution.display().to_string(),
    });
    Ok(())
}

/// `continue`: records the person's resolution of the halted unit and clears the halt.
pub(super) fn resolve(run: &mut Run, force: bool) -> Result<Option<coordinator::Unresolved>> {
    let RunPhase::Halted(halt) = run.state.phase.clone() else {
        return Err(Error::state(
            "the run is not halted on a conflict",
            "`streams status` shows where it stands",
        ));
    };
    let wt = &halt.resolution_worktree;
    if !wt.exists() {
        // Deleted by a person (or a cleanup script): lay it out again rather than fail on
        // a directory that is not there. Nothing of the run is lost: the halt records the
        // three sides of the merge.
        let name = run.state.streams[halt.unit.stream].name.clone();
        let tasks = run.unit_tasks(&halt.unit);
        coordinator::recreate_resolution_worktree(
            &run.ctx.repo,
            &halt,
            &coordinator::RecreateInput {
                stream: &name,
                tasks: &tasks,
                plan_name: &run.ctx.plan.name,
                integration_ref: &run.state.integration_ref,
                run_id: &run.state.run_id,
            },
        )?;
        return Ok(Some(coordinator::Unresolved::Recreated));
    }
    if !wt.join(".git").exists() {
        // Something is there, but not the worktree: it may hold the person's edits, so it
        // is not streams' to delete.
        return Err(Error::state(
            format!(
                "the resolution worktree {} is no longer a git worktree",
                wt.display()
            ),
            "move that directory out of the way (copy your resolved files first) and run `streams continue` again: it is laid out anew with the conflicts; or `streams abort`",
        ));
    }
    let tree = match coordinator::check_resolution(
        &run.ctx.repo,
        &halt.resolution_worktree,
        &halt,
        force,
    )? {
        Ok(tree) => tree,
        Err(unresolved) => return Ok(Some(unresolved)),
    };
    let began = crate::state::now_ms();
    let tasks = run.unit_tasks(&halt.unit);
    let name = run.state.streams[halt.unit.stream].name.clone();
    let input = UnitInput {
        stream: &name,
        integration_ref: &run.state.integration_ref,
        tip: &halt.ours,
        from: &halt.unit.from,
        to: &halt.unit.to,
        tasks: &tasks,
        strategy: run.ctx.plan.merge,
        identity_env: &run.ctx.identity_env,
    };
    let commit =
        coordinator::record_resolution(&run.ctx.repo, Some(&run.ctx.journal), &input, &tree)?;
    let _ = run.ctx.journal.append(Entry::Resolved {
        stream: name.clone(),
        commit: commit.to_string(),
    });
    run.message(&format!(
        "recorded the resolution of {name} as {} on {}",
        crate::text::short(&commit),
        crate::layout::short_branch(&run.state.integration_ref)
    ));
    run.record_span(
        halt.unit.stream,
        crate::state::Step::Integration,
        began,
        crate::state::SpanOutcome::Ok,
        None,
    );
    if run.unit_integrated(&halt.unit, commit.clone()) {
        run.finish_stream(halt.unit.stream);
    }
    run.state.phase = RunPhase::Running;
    run.save()?;
    worktree::remove(&run.ctx.repo, &halt.resolution_worktree)?;
    Ok(None)
}

/// `skip`: leaves a stream's unintegrated work out of the run. Returns whether the run is
/// still halted (on another stream's conflict).
pub(super) fn skip(run: &mut Run, stream: &str) -> Result<bool> {
    let RunPhase::Halted(halt) = run.state.phase.clone() else {
        return Err(Error::state(
            "`streams skip` works on a run halted on a conflict, and this run is not halted",
            "`streams status` shows where it stands",
        ));
    };
    let Some((s, record)) = run.state.stream_by_name(stream) else {
        let names: Vec<&str> = run.state.streams.iter().map(|s| s.name.as_str()).collect();
        return Err(Error::usage_with_hint(
            format!("there is no stream `{stream}` in this run"),
            format!("the streams are: {}", names.join(", ")),
        ));
    };
    if matches!(record.state, StreamState::Done { .. }) {
        return Err(Error::usage(format!(
            "stream `{stream}` is already integrated; there is nothing to skip"
        )));
    }
    let halted_here = halt.unit.stream == s;
    if halted_here {
        drop_resolution(run, &halt)?;
    }
    run.state.queue.retain(|u| u.stream != s);
    run.skip_stream(
        s,
        "left out with `streams skip` (its branch is kept)".into(),
        true,
    );
    if halted_here {
        run.state.phase = RunPhase::Running;
    }
    run.save()?;
    Ok(!halted_here)
}

/// Removes the resolution worktree of a halt that will not be resolved, keeping anything the
/// person did there, and puts the integration ref back at the halt's tip.
fn drop_resolution(run: &mut Run, halt: &Halt) -> Result<()> {
    let name = run.state.streams[halt.unit.stream].name.clone();
    let keep = run.ctx.refs.resolution(&name);
    if halt.resolution_worktree.join(".git").exists() {
        if let Ok(Some((keep, kept))) = keep_work(
            &run.ctx.repo,
            &halt.resolution_worktree,
            &halt.ours,
            &keep,
            "streams: unfinished resolution",
        ) {
            run.message(&format!(
                "the unfinished resolution is kept on {keep} ({})",
                crate::text::short(&kept)
            ));
        }
    }
    let current = run.ctx.repo.ref_target(&run.state.integration_ref)?;
    if let Some(current) = current
        && current != halt.ours
    {
        coordinator::move_integration_ref(
            &run.ctx.repo,
            None,
            &run.state.integration_ref,
            Some(&current),
            Some(&halt.ours),
            IntegrationMove::Other("streams: drop resolution"),
        )?;
    }
    worktree::remove(&run.ctx.repo, &halt.resolution_worktree)?;
    Ok(())
}
