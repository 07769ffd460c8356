//! A conflict parks its stream: what a person needs to resolve it (the conflict bundle, a
//! resolution worktree of its own) is laid out, and the stream is set aside while every other
//! stream goes on; its dependents wait. Then what a person does: `continue STREAM` records
//! their resolution against the integration as it is by then ([`resolve`]), `skip STREAM`
//! leaves the stream out ([`skip`]). With `on_conflict = "stop"` the dispatcher stops the whole
//! line at the first parked stream, as streams did before parking existed.
//!
//! Crash safety: the bundle and the worktree are laid out before the stream is recorded as
//! parked (its unit leaves the queue in the same save). Killed in between, the unit is still
//! queued: `resume` integrates it again, finds the same conflict and lays it out again.

use std::path::Path;

use super::dispatcher::worktrees_dir;
use super::resolve::Outcome;
use super::run::Run;
use crate::coordinator::{self, ConflictFound, IntegrationMove, Recorded, UnitInput, UnitOutcome};
use crate::error::{Error, Result};
use crate::git::refs;
use crate::git::worktree::{self, keep_work};
use crate::ids::Oid;
use crate::layout;
use crate::report::Event;
use crate::state::{Entry, Park, RunPhase, SpanOutcome, Step, StreamState, SyncUnit, now_ms};

/// Parks the stream of `unit`, whose integration conflicts: lays out its bundle and
/// resolution worktree, takes its unit out of the queue (its slot is free), saves, and tells.
/// `stop`: the line stops here (`on_conflict = "stop"`): the worktree is the run's one
/// resolution worktree, on the integration branch, as before parking existed.
///
/// With a resolver agent in the plan, it tries first (`resolve`): its accepted resolution is
/// integrated at once (`mode = "accept"`: the stream is not parked, and this returns false) or
/// left ready for a person (`propose`); a refused one is kept, and the conflict laid out again.
pub(super) async fn park(
    run: &mut Run,
    unit: SyncUnit,
    conflict: ConflictFound,
    stop: bool,
    cancel: tokio::sync::watch::Receiver<super::process::Cancel>,
) -> Result<bool> {
    let s = unit.stream;
    let name = run.state.streams[s].name.clone();
    let worktrees = worktrees_dir(&run.ctx.repo, &run.ctx.plan);
    let resolution = if stop {
        layout::resolution_worktree(&worktrees)
    } else {
        layout::parked_worktree(&worktrees, &name)
    };
    let job = LayOut::new(run, &unit, &conflict, &resolution);
    let files = tokio::task::spawn_blocking(move || job.write())
        .await
        .map_err(|e| Error::Internal(format!("writing the conflict panicked: {e}")))??;
    note_partners(run, s, &conflict, &files);
    if let crate::git::merge::MergeOutcome::Conflict { hints, .. } = &conflict.merge {
        for hint in hints {
            run.message(&format!("{name}'s conflict: {hint}"));
        }
    }
    let proposal = match super::resolve::run(run, &unit, &conflict, &files, &resolution, cancel)
        .await?
    {
        None => None,
        Some(Outcome::Integrated { tip, proposal }) => {
            resolved_by_agent(run, &unit, &files, &resolution, tip, proposal)?;
            return Ok(false);
        }
        Some(Outcome::Proposed(proposal)) => {
            run.message(&format!(
                    "the resolver proposes a resolution of {name}'s conflict in {} (streams' checks passed); review it with `streams diff --resolution {name}`, then `streams continue {name}` (or edit it in {} first)",
                    crate::report::quote_paths(&files),
                    resolution.display()
                ));
            Some(proposal)
        }
        Some(Outcome::Refused(proposal)) => {
            // The person starts from the conflict, not from what was refused (kept). The
            // bundle is written anew: the resolver's prompt and logs stay in it.
            let bundle = run.ctx.run_dir.conflicts_dir(&name);
            let kept = resolver_files(&bundle);
            let job = LayOut::new(run, &unit, &conflict, &resolution);
            tokio::task::spawn_blocking(move || job.write())
                .await
                .map_err(|e| Error::Internal(format!("writing the conflict panicked: {e}")))??;
            for (file, bytes) in kept {
                let _ = std::fs::write(bundle.join(file), bytes);
            }
            run.message(&format!(
                    "the resolver's resolution of {name}'s conflict was refused: {}{}; {name} waits for a person",
                    proposal.refused.as_deref().unwrap_or("refused"),
                    if proposal.commit.is_some() {
                        format!(
                            " (what it did is kept on {})",
                            run.ctx.refs.resolution(&name)
                        )
                    } else {
                        String::new()
                    }
                ));
            Some(proposal)
        }
    };
    let started_at = match &run.state.streams[s].state {
        StreamState::Active { started_at } => *started_at,
        StreamState::Parked(park) => park.started_at,
        _ => now_ms(),
    };
    run.state.queue.retain(|u| *u != unit);
    let park = Park {
        started_at,
        parked_at: now_ms(),
        unit,
        files,
        base: conflict.base,
        ours: conflict.ours,
        theirs: conflict.theirs,
        bundle: run.ctx.run_dir.conflicts_dir(&name),
        resolution_worktree: resolution,
        proposal: proposal.map(Box::new),
    };
    let event = conflict_event(run, &name, &park, !stop);
    run.state.streams[s].state = StreamState::Parked(park);
    let _ = run.ctx.journal.append(Entry::Halted {
        stream: name.clone(),
    });
    run.save()?;
    run.emit(event);
    Ok(true)
}

/// Records on stream `s` whose integrated work its conflict in `files` met (the streams whose
/// commits since its start changed them), for the history to learn which streams to keep
/// apart.
fn note_partners(run: &mut Run, s: usize, conflict: &ConflictFound, files: &[String]) {
    for other in super::resolve::conflicting_streams(run, conflict, files) {
        let other = run.state.streams[other].name.clone();
        let record = &mut run.state.streams[s];
        if other != record.name && !record.conflicted_with.contains(&other) {
            record.conflicted_with.push(other);
        }
    }
}

/// The resolver's files in a conflict bundle (`resolver.log`, `resolver-prompt.md`, the logs
/// of the checks on its result), read to be written back into the bundle laid out anew.
fn resolver_files(bundle: &Path) -> Vec<(std::ffi::OsString, Vec<u8>)> {
    let Ok(entries) = std::fs::read_dir(bundle) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("resolver"))
        .filter_map(|e| Some((e.file_name(), std::fs::read(e.path()).ok()?)))
        .collect()
}

/// The resolver's resolution of `unit`'s conflict was accepted and integrated at `tip`
/// (`mode = "accept"`): recorded as any integration, with the resolver named; its resolution
/// worktree goes.
fn resolved_by_agent(
    run: &mut Run,
    unit: &SyncUnit,
    files: &[String],
    resolution: &Path,
    tip: Oid,
    proposal: crate::state::Proposal,
) -> Result<()> {
    let s = unit.stream;
    let name = run.state.streams[s].name.clone();
    let tasks = run.unit_tasks(unit);
    let stream_done = run.unit_integrated(unit, tip.clone());
    if let Some(landing) = run.state.integrations.last_mut() {
        landing.resolver = Some(proposal.resolver.clone());
    }
    run.message(&format!(
        "the resolver resolved {name}'s conflict in {} and streams' checks passed: integrated as {} (the resolution is a commit of its own, `{}: {}`)",
        crate::report::quote_paths(files),
        crate::text::short(&tip),
        coordinator::resolver::TRAILER_RESOLVER,
        proposal.resolver
    ));
    run.emit(Event::Integrated {
        stream: name,
        tasks: tasks.iter().map(|t| t.index + 1).collect(),
        commits: 2,
        tip: tip.to_string(),
        order: run.state.integrations.len(),
    });
    if stream_done {
        run.finish_stream(s);
    }
    run.save()?;
    worktree::remove(&run.ctx.repo, resolution)?;
    Ok(())
}

/// What the event stream says when `name` parks (again): with the streams that wait on it,
/// directly or not.
fn conflict_event(run: &Run, name: &str, park: &Park, goes_on: bool) -> Event {
    let dependents = crate::plan::schedule::dependents(&run.ctx.plan);
    let mut waiting: Vec<usize> = Vec::new();
    let mut next = vec![park.unit.stream];
    while let Some(i) = next.pop() {
        for &d in &dependents[i] {
            if !waiting.contains(&d) && !run.state.streams[d].state.is_terminal() {
                waiting.push(d);
                next.push(d);
            }
        }
    }
    waiting.sort_unstable();
    let waiting = waiting
        .into_iter()
        .map(|i| run.state.streams[i].name.clone())
        .collect();
    Event::Conflict {
        stream: name.to_string(),
        files: park.files.clone(),
        bundle: park.bundle.display().to_string(),
        worktree: park.resolution_worktree.display().to_string(),
        parked: goes_on,
        waiting,
    }
}

/// Writing a unit's conflict bundle and laying its resolution worktree out: what it needs,
/// owned, so the dispatcher can run it on a blocking thread.
struct LayOut {
    repo: crate::git::Repo,
    name: String,
    tasks: Vec<coordinator::TaskRange>,
    plan_name: String,
    integration_ref: String,
    run_id: String,
    conflict: ConflictFound,
    bundle: std::path::PathBuf,
    resolution: std::path::PathBuf,
}

impl LayOut {
    fn new(run: &Run, unit: &SyncUnit, conflict: &ConflictFound, resolution: &Path) -> LayOut {
        let name = run.state.streams[unit.stream].name.clone();
        LayOut {
            repo: run.ctx.repo.clone(),
            tasks: run.unit_tasks(unit),
            bundle: run.ctx.run_dir.conflicts_dir(&name),
            name,
            plan_name: run.ctx.plan.name.clone(),
            integration_ref: run.state.integration_ref.clone(),
            run_id: run.state.run_id.clone(),
            conflict: conflict.clone(),
            resolution: resolution.to_path_buf(),
        }
    }

    /// The bundle, and the worktree at `resolution`: detached, unless it is the stopped
    /// line's. Returns the conflicted paths.
    fn write(&self) -> Result<Vec<String>> {
        coordinator::write_park(
            &self.repo,
            &coordinator::ParkInput {
                stream: &self.name,
                tasks: &self.tasks,
                plan_name: &self.plan_name,
                integration_ref: &self.integration_ref,
                conflict: &self.conflict,
                bundle_dir: &self.bundle,
                resolution_worktree: &self.resolution,
                run_id: &self.run_id,
                detached: detached(&self.resolution),
            },
        )
    }
}

/// A parked stream's own resolution worktree is detached; the stopped line's is on the
/// integration branch (see `coordinator::ParkInput::detached`).
fn detached(resolution: &Path) -> bool {
    resolution
        .file_name()
        .is_none_or(|n| n != layout::RESOLUTION_WORKTREE)
}

/// What `continue STREAM` came to.
#[derive(Debug)]
pub enum Resolution {
    /// The stream's work landed at `commit`: with the person's resolution, carried onto the
    /// tip as it is now (`carried`: other streams landed since it parked), or as it was
    /// (`as_is`: not resolved, but it merges cleanly on the tip as it is now).
    Landed {
        commit: Oid,
        carried: bool,
        as_is: bool,
    },
    /// Not resolved yet: what is left to do. Nothing changed.
    Unresolved(coordinator::Unresolved),
    /// The resolution conflicts with what landed since the stream parked: laid out again,
    /// with the new conflict in `files`; the stream stays parked.
    ParkedAgain { files: Vec<String> },
}

/// `continue STREAM`: checks the person's resolution of parked stream `s` and records it on
/// the integration as it is by then.
pub(super) fn resolve(run: &mut Run, s: usize, force: bool) -> Result<Resolution> {
    let StreamState::Parked(park) = run.state.streams[s].state.clone() else {
        let record = &run.state.streams[s];
        return Err(Error::usage(format!(
            "stream `{}` is not parked on a conflict (it is {})",
            record.name,
            crate::report::stream_word(&record.state, None)
        )));
    };
    let name = run.state.streams[s].name.clone();
    let wt = &park.resolution_worktree;
    if !wt.exists() {
        // Deleted by a person (or a cleanup script): lay it out again rather than fail on
        // a directory that is not there. Nothing of the run is lost: the park records the
        // three sides of the merge.
        let tasks = run.unit_tasks(&park.unit);
        coordinator::recreate_resolution_worktree(
            &run.ctx.repo,
            &park,
            &coordinator::RecreateInput {
                stream: &name,
                tasks: &tasks,
                plan_name: &run.ctx.plan.name,
                integration_ref: &run.state.integration_ref,
                run_id: &run.state.run_id,
                detached: detached(wt),
            },
        )?;
        return Ok(Resolution::Unresolved(coordinator::Unresolved::Recreated));
    }
    if !wt.join(".git").exists() {
        // Something is there, but not the worktree: it may hold the person's edits, so it
        // is not streams' to delete.
        return Err(Error::state(
            format!(
                "the resolution worktree {} is no longer a git worktree",
                wt.display()
            ),
            format!(
                "move that directory out of the way (copy your resolved files first) and run `streams continue {name}` again: it is laid out anew with the conflicts; or `streams skip {name}`"
            ),
        ));
    }
    let began = now_ms();
    let onto = run.state.integration_tip.clone();
    let tree = match coordinator::check_resolution(&run.ctx.repo, wt, &park, force)? {
        Ok(tree) => tree,
        Err(unresolved) => {
            // Not resolved; but the integration moved since, and the conflict may have gone.
            if onto != park.ours
                && let Some(commit) = land_as_is(run, &name, &park, &onto)?
            {
                return landed(run, s, &park, began, commit, true, true);
            }
            return Ok(Resolution::Unresolved(unresolved));
        }
    };
    let tasks = run.unit_tasks(&park.unit);
    let input = UnitInput {
        stream: &name,
        integration_ref: &run.state.integration_ref,
        tip: &park.ours,
        from: &park.unit.from,
        to: &park.unit.to,
        tasks: &tasks,
        strategy: run.ctx.plan.merge,
        identity_env: &run.ctx.identity_env,
    };
    // The resolver's proposal, accepted as it was: its own commit, naming it, lands.
    if let Some(crate::state::Proposal {
        work: Some(work),
        commit: Some(proposed),
        tree: Some(proposed_tree),
        refused: None,
        resolver,
        ..
    }) = park.proposal.as_deref()
        && *proposed_tree == tree
        && let Some(commit) = coordinator::resolver::land_proposal(
            &run.ctx.repo,
            Some(&run.ctx.journal),
            &input,
            work,
            proposed,
            &onto,
        )?
    {
        let _ = run.ctx.journal.append(Entry::Resolved {
            stream: name.clone(),
            commit: commit.to_string(),
        });
        let resolver = resolver.clone();
        let carried = onto != park.ours;
        let landed = landed(run, s, &park, began, commit, carried, false)?;
        if let Some(landing) = run.state.integrations.last_mut() {
            landing.resolver = Some(resolver);
            run.save()?;
        }
        return Ok(landed);
    }
    let recorded = coordinator::record_resolution(
        &run.ctx.repo,
        Some(&run.ctx.journal),
        &input,
        &tree,
        &onto,
    )?;
    match recorded {
        Recorded::Landed(commit) => {
            let _ = run.ctx.journal.append(Entry::Resolved {
                stream: name.clone(),
                commit: commit.to_string(),
            });
            let carried = onto != park.ours;
            landed(run, s, &park, began, commit, carried, false)
        }
        Recorded::Conflict(found) => park_again(run, s, park, found),
    }
}

/// The unit of a parked stream merged on `onto` as it was, when that is clean now.
fn land_as_is(run: &Run, name: &str, park: &Park, onto: &Oid) -> Result<Option<Oid>> {
    let tasks = run.unit_tasks(&park.unit);
    let input = UnitInput {
        stream: name,
        integration_ref: &run.state.integration_ref,
        tip: onto,
        from: &park.unit.from,
        to: &park.unit.to,
        tasks: &tasks,
        strategy: run.ctx.plan.merge,
        identity_env: &run.ctx.identity_env,
    };
    match coordinator::integrate(&run.ctx.repo, Some(&run.ctx.journal), &input)? {
        UnitOutcome::Integrated { tip, .. } => Ok(Some(tip)),
        UnitOutcome::Conflict(_) => Ok(None),
    }
}

/// Parked stream `s` landed at `commit`: recorded (its stream goes on, or is done), saved,
/// told; then its resolution worktree goes (what a person left there is kept first).
fn landed(
    run: &mut Run,
    s: usize,
    park: &Park,
    began: u64,
    commit: Oid,
    carried: bool,
    as_is: bool,
) -> Result<Resolution> {
    let name = run.state.streams[s].name.clone();
    if as_is {
        keep_resolution(run, &name, park, false);
    }
    let branch = crate::layout::short_branch(&run.state.integration_ref).to_string();
    let short = crate::text::short(&commit);
    run.message(&if as_is {
        format!(
            "`{name}` merges cleanly on {branch} as it is now: integrated as {short} without a resolution"
        )
    } else if carried {
        format!(
            "recorded the resolution of {name} as {short} on {branch}, on top of what was integrated since it parked"
        )
    } else {
        format!("recorded the resolution of {name} as {short} on {branch}")
    });
    run.record_span(s, Step::Integration, began, SpanOutcome::Ok, None);
    let stream_done = run.unit_integrated(&park.unit, commit.clone());
    let tasks = run.unit_tasks(&park.unit);
    run.emit(Event::Integrated {
        stream: name.clone(),
        tasks: tasks.iter().map(|t| t.index + 1).collect(),
        commits: 1,
        tip: commit.to_string(),
        order: run.state.integrations.len(),
    });
    if stream_done {
        run.finish_stream(s);
    }
    if run.state.phase == RunPhase::Halted {
        run.state.phase = RunPhase::Running;
    }
    run.save()?;
    worktree::remove(&run.ctx.repo, &park.resolution_worktree)?;
    Ok(Resolution::Landed {
        commit,
        carried,
        as_is,
    })
}

/// The resolution of parked stream `s` conflicts with what landed since it parked: the
/// resolution is kept on a ref, and the new conflict laid out in its place.
fn park_again(run: &mut Run, s: usize, park: Park, found: ConflictFound) -> Result<Resolution> {
    let name = run.state.streams[s].name.clone();
    let keep = run.ctx.refs.resolution(&name);
    refs::keep_ref(
        &run.ctx.repo,
        &keep,
        &found.theirs,
        "streams: a resolution that conflicts with a moved integration",
    )?;
    let files = LayOut::new(run, &park.unit, &found, &park.resolution_worktree).write()?;
    let park = Park {
        parked_at: now_ms(),
        files: files.clone(),
        base: found.base,
        ours: found.ours,
        theirs: found.theirs,
        ..park
    };
    let event = conflict_event(run, &name, &park, true);
    run.state.streams[s].state = StreamState::Parked(park);
    run.save()?;
    run.emit(event);
    Ok(Resolution::ParkedAgain { files })
}

/// Keeps what a person did in a parked stream's resolution worktree on its `resolution` ref,
/// before the worktree goes.
fn keep_resolution(run: &mut Run, name: &str, park: &Park, unfinished: bool) {
    if !park.resolution_worktree.join(".git").exists() {
        return;
    }
    let keep = run.ctx.refs.resolution(name);
    if let Ok(Some((keep, kept))) = keep_work(
        &run.ctx.repo,
        &park.resolution_worktree,
        &park.ours,
        &keep,
        "streams: unfinished resolution",
    ) {
        let what = if unfinished {
            "the unfinished resolution".to_string()
        } else {
            format!("what was left in {name}'s resolution worktree")
        };
        run.message(&format!(
            "{what} is kept on {keep} ({})",
            crate::text::short(&kept)
        ));
    }
}

/// `skip STREAM` while the run is halted: leaves the stream's unintegrated work out of the run
/// (a parked stream's resolution worktree goes, what a person did there kept on a ref), and
/// the streams that wait on it with it.
pub(super) fn skip(run: &mut Run, stream: &str) -> Result<()> {
    if run.state.phase != RunPhase::Halted {
        return Err(Error::state(
            "`streams skip` works on a halted run (streams parked on conflicts), and this run is not halted",
            "`streams status` shows where it stands",
        ));
    }
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
    if let StreamState::Parked(park) = record.state.clone() {
        drop_resolution(run, stream, &park)?;
    }
    run.state.queue.retain(|u| u.stream != s);
    run.skip_stream(
        s,
        "left out with `streams skip` (its branch is kept)".into(),
        true,
    );
    run.state.phase = RunPhase::Running;
    run.save()
}

/// Removes the resolution worktree of a stream that will not be resolved, keeping anything the
/// person did there; commits they made on the integration branch (the stopped line's worktree
/// is on it) are taken off it again.
fn drop_resolution(run: &mut Run, name: &str, park: &Park) -> Result<()> {
    keep_resolution(run, name, park, true);
    let tip = run.state.integration_tip.clone();
    let current = run.ctx.repo.ref_target(&run.state.integration_ref)?;
    if let Some(current) = current
        && current != tip
        && refs::is_ancestor(&run.ctx.repo, &tip, &current)?
    {
        coordinator::move_integration_ref(
            &run.ctx.repo,
            None,
            &run.state.integration_ref,
            Some(&current),
            Some(&tip),
            IntegrationMove::Other("streams: drop resolution"),
        )?;
    }
    worktree::remove(&run.ctx.repo, &park.resolution_worktree)?;
    Ok(())
}
