//! Stopping a run for good: the integration branch goes back, everything the run did is kept.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use crate::coordinator::{IntegrationMove, move_integration_ref};
use crate::error::Result;
use crate::exec::recover::{run_places, stop_run_processes};
use crate::git::{Repo, refs, worktree};
use crate::ids::Oid;
use crate::layout::RefNames;
use crate::ops::session::{self, Current};
use crate::state::{Entry, Journal, RunDir, RunPhase, RunState, StateStore, TaskState, now_ms};
use crate::state::{StateDir, lock};
use crate::workspace::{Kind, Workspace};

/// A `streams` process on this machine that holds plan `plan`'s lock: `abort` asks it to stop
/// first.
pub fn running_here(repo: &Repo, plan: &str) -> Option<lock::Holder> {
    lock::current_holder(&StateDir::new(repo.common_dir()), plan)
        .filter(|holder| holder.host == lock::hostname())
}

/// Asks the holder of plan `plan`'s lock to stop (on SIGTERM it saves its state and exits) and
/// waits up to a minute for it to let go of the lock.
pub fn stop_holder(repo: &Repo, plan: &str, holder: &lock::Holder) {
    let state_dir = &StateDir::new(repo.common_dir());
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(holder.pid as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    while lock::current_holder(state_dir, plan).is_some() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Aborts the current run (see [`abort`]); returns what was kept and the run's final state.
pub fn abort_current(current: Current) -> Result<(Aborted, RunState)> {
    let Current {
        repo,
        lock: _lock,
        run_dir,
        mut state,
        ..
    } = current;
    session::check_not_over(&state, "abort")?;
    let journal = session::open_journal(&run_dir)?;
    let aborted = session::runtime()?.block_on(abort(&repo, &run_dir, &mut state, &journal))?;
    // The run's report said how it stood when it stopped (interrupted, halted): it now says
    // aborted. It is not fatal when it cannot be written (the state is saved).
    let _ = session::write_report(&state, &run_dir, None);
    Ok((aborted, state))
}

/// What `abort` kept, for its message.
pub struct Aborted {
    pub kept: Vec<(String, Oid)>,
    pub integration_restored: Option<Oid>,
}

/// Stops a run for good: the integration ref goes back to where the run found it, every stream
/// branch and every piece of unintegrated work stays reachable under
/// `RefNames::aborted`, and the run's worktrees are unlocked.
pub async fn abort(
    repo: &Repo,
    run_dir: &RunDir,
    state: &mut RunState,
    journal: &Journal,
) -> Result<Aborted> {
    let refs = RefNames::new(&state.plan_name);
    let run_id = state.run_id.clone();
    let mut kept = Vec::new();

    // Nothing of the run may keep running.
    let mut groups = BTreeSet::new();
    for s in &state.streams {
        for t in &s.tasks {
            if let TaskState::Running {
                pgid: Some(pgid), ..
            } = t.state
            {
                groups.insert(pgid);
            }
        }
    }
    let places = run_places(state);
    stop_run_processes(
        &run_id,
        repo.common_dir(),
        &groups,
        &places,
        Duration::from_secs(5),
    )
    .await;
    // A coordinator killed while it held a ref's lock left it: the refs go back now.
    for note in crate::exec::stale_locks::clear_stale_ref_locks(repo, state)? {
        tracing::info!("{note}");
    }

    for s in &state.streams {
        if let Some(tip) = repo.ref_target(&s.branch)?
            && tip != state.base
        {
            let name = refs.aborted(&run_id, &format!("branches/{}", s.name));
            let name = refs::keep_ref(repo, &name, &tip, "streams abort: stream branch")?;
            kept.push((name, tip));
        }
        // A workspace may hold work its agent did that streams has not brought over yet:
        // keep everything beyond the stream branch.
        let ws = Workspace::find(repo, &s.worktree);
        // A stream that has not started in this run has no work of this run's: its workspace is
        // at the commit streams last put it at (prepared ahead at a tip of the run, which its
        // branch does not follow until its task starts), and only what differs from that is work.
        let recorded = matches!(s.state, crate::state::StreamState::Pending)
            .then(|| ws.recorded_at())
            .flatten();
        let head = match recorded {
            Some(at) => at,
            None => repo
                .ref_target(&s.branch)?
                .unwrap_or_else(|| state.base.clone()),
        };
        let name = refs.aborted(&run_id, &format!("uncommitted/{}", s.name));
        let message = "streams abort: uncommitted work";
        let found = match ws.kind() {
            Kind::Private { .. } => ws.keep_work(repo, &head, &s.branch, &name, message),
            // An earlier version's linked worktree (its commits are the user's already).
            Kind::Linked => {
                let found = worktree::keep_work(repo, &s.worktree, &head, &name, message);
                let _ = worktree::unlock(repo, &s.worktree);
                found
            }
            Kind::Absent | Kind::Foreign => Ok(None),
        };
        if let Ok(Some((name, commit))) = found {
            kept.push((name, commit));
        }
    }
    // Each parked stream's resolution worktree, and what a person did there.
    for (_, s, park) in state.parked() {
        let name = refs.aborted(&run_id, &format!("resolution/{}", s.name));
        if park.resolution_worktree.join(".git").exists() {
            if let Ok(Some((name, commit))) = worktree::keep_work(
                repo,
                &park.resolution_worktree,
                &park.ours,
                &name,
                "streams abort: resolution",
            ) {
                kept.push((name, commit));
            }
            worktree::remove(repo, &park.resolution_worktree)?;
        }
    }
    let current = repo.ref_target(&state.integration_ref)?;
    if let Some(current) = &current
        && Some(current) != state.integration_before.as_ref()
        && current != &state.base
    {
        let name = refs.aborted(&run_id, "integration");
        let name = refs::keep_ref(repo, &name, current, "streams abort: integration branch")?;
        kept.push((name, current.clone()));
    }
    let back_to = state.integration_before.as_deref();
    if let Some(cur) = &current
        && Some(cur.as_str()) != back_to
    {
        move_integration_ref(
            repo,
            None,
            &state.integration_ref,
            Some(cur),
            back_to,
            IntegrationMove::Other("streams abort"),
        )?;
    }
    state.phase = RunPhase::Aborted { at: now_ms() };
    let _ = journal.append(Entry::Aborted);
    StateStore::new(run_dir.clone()).save(state)?;
    Ok(Aborted {
        kept,
        integration_restored: state.integration_before.clone(),
    })
}
