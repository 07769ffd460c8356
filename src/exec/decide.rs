//! The dispatcher's decisions, as pure functions of the plan and the run state: which task of a
//! stream may start and from which commit, which streams start next, when new work may start,
//! which streams a stream's end leaves stranded, what a committed task queues for integration,
//! and how a session ends.
//!
//! No processes, no git, no clock: the engine asks, then acts (and saves). That is what lets
//! scheduling be tested here without running anything.

use nix::sys::signal::Signal;

use crate::error::Finish;
use crate::ids::Oid;
use crate::plan::{Plan, SyncPoint};
use crate::state::{RunState, StreamState, SyncUnit, TaskState};

/// Why the engine may not start anything new right now, if it may not.
#[derive(Clone, Copy, Debug, Default)]
pub struct Brakes {
    /// A conflict stopped the line (`on_conflict = "stop"`): the run halts once running tasks
    /// end. (A parked stream alone stops nothing.)
    pub line_stopped: bool,
    /// A signal arrived: running agents are being stopped.
    pub stopping: bool,
    /// `--fail-fast` after a failure.
    pub no_new_work: bool,
    /// An error ends the session.
    pub fatal: bool,
}

impl Brakes {
    pub fn may_start_work(&self) -> bool {
        !(self.line_stopped || self.stopping || self.no_new_work || self.fatal)
    }
}

/// Streams holding a slot (started, not ended).
pub fn active_streams(state: &RunState) -> usize {
    state
        .streams
        .iter()
        .filter(|s| matches!(s.state, StreamState::Active { .. }))
        .count()
}

/// Every dependency of stream `s` is done (integrated).
pub fn deps_done(plan: &Plan, state: &RunState, s: usize) -> bool {
    plan.streams[s].depends_on.iter().all(|d| {
        state
            .stream_by_name(d)
            .is_some_and(|(_, r)| matches!(r.state, StreamState::Done { .. }))
    })
}

/// Streams that may start now, best first: pending with their dependencies done and not kept
/// apart from a running stream ([`kept_apart`]), by priority, then longest remaining path
/// (`remaining`, per stream).
pub fn ready_streams(
    plan: &Plan,
    state: &RunState,
    remaining: &[f64],
    apart: &[(usize, usize)],
) -> Vec<usize> {
    let mut ready: Vec<usize> = (0..state.streams.len())
        .filter(|&s| {
            state.streams[s].state == StreamState::Pending
                && deps_done(plan, state, s)
                && kept_apart(state, apart, s).is_none()
        })
        .collect();
    ready.sort_by(|&a, &b| crate::plan::schedule::start_order(plan, remaining, a, b));
    ready
}

/// The running stream that stream `s` waits for, if any: `apart` holds the pairs of streams
/// that conflicted in earlier runs (from the history), and of such a pair the second starts
/// only once the first is no longer active (integrated, parked, failed or stopped), so it
/// starts from the other's work instead of conflicting with it. It only ever waits for a
/// stream that holds a slot, so the run always goes on.
pub fn kept_apart(state: &RunState, apart: &[(usize, usize)], s: usize) -> Option<usize> {
    apart
        .iter()
        .filter_map(|&(a, b)| match s {
            _ if s == a => Some(b),
            _ if s == b => Some(a),
            _ => None,
        })
        .find(|&other| matches!(state.streams[other].state, StreamState::Active { .. }))
}

/// Whether a new stream may take a slot.
pub fn slot_free(state: &RunState) -> bool {
    active_streams(state) < state.jobs.max(1)
}

/// The lowest slot (`STREAMS_SLOT`) no other active stream holds: slots stay below `jobs`
/// because no more than `jobs` streams are active at once.
pub fn free_slot(taken: &[usize]) -> usize {
    (0..).find(|n| !taken.contains(n)).unwrap_or(0)
}

/// The slot stream `s` runs its next task in: the one it holds (kept for the length of the
/// stream, so a dev server keeps its port), else the lowest one no other active stream holds.
pub fn slot_for(state: &RunState, slots: &[Option<usize>], s: usize) -> usize {
    if let Some(slot) = slots[s] {
        return slot;
    }
    let taken: Vec<usize> = (0..state.streams.len())
        .filter(|&i| i != s && matches!(state.streams[i].state, StreamState::Active { .. }))
        .filter_map(|i| slots[i])
        .collect();
    free_slot(&taken)
}

/// Task `t` of stream `s` may not start now: its concurrency group already has as many agents
/// running as `[plan.limits]` allows.
pub fn group_full(plan: &Plan, state: &RunState, s: usize, t: usize) -> bool {
    let stream = &plan.streams[s];
    let Some(group) = plan.group_for(stream, &stream.tasks[t]) else {
        return false;
    };
    let Some(limit) = plan.limit_of(group) else {
        return false;
    };
    let running = state
        .streams
        .iter()
        .enumerate()
        .flat_map(|(i, record)| {
            record
                .tasks
                .iter()
                .enumerate()
                .filter(|(_, task)| matches!(task.state, TaskState::Running { .. }))
                .map(move |(j, _)| (i, j))
        })
        .filter(|&(i, j)| {
            plan.group_for(&plan.streams[i], &plan.streams[i].tasks[j]) == Some(group)
        })
        .count();
    running >= limit
}

/// Task `t` of stream `s`, starting from `start`, needs the workspace's `setup` first: the
/// workspace is new or reset to a new start. A task going on from the one before it (same
/// stream, its end) keeps what setup made; a start setup already ran at (a resumed first task)
/// needs no second one.
pub fn needs_setup(state: &RunState, s: usize, t: usize, start: &Oid) -> bool {
    let stream = &state.streams[s];
    if t > 0 && stream.tasks[t - 1].state.end() == Some(start) {
        return false;
    }
    stream.setup_at.as_ref() != Some(start)
}

/// The next task of an active stream and the commit it starts from, if it can start now: none
/// while one of its tasks runs; the first starts from the integration tip; later ones from the
/// task before (sync = stream) or, once that was integrated, from the new tip (sync = task).
pub fn next_task(state: &RunState, sync: SyncPoint, s: usize) -> Option<(usize, Oid)> {
    let tasks = &state.streams[s].tasks;
    if tasks
        .iter()
        .any(|t| matches!(t.state, TaskState::Running { .. }))
    {
        return None;
    }
    let next = tasks.iter().position(|t| t.state == TaskState::Pending)?;
    if next == 0 {
        return Some((0, state.integration_tip.clone()));
    }
    match (&tasks[next - 1].state, sync) {
        (TaskState::Committed { end, .. }, SyncPoint::Stream) => Some((next, end.clone())),
        (TaskState::Integrated { end, .. }, SyncPoint::Stream) => Some((next, end.clone())),
        // After its sync point the stream goes on from the new integration tip.
        (TaskState::Integrated { .. }, SyncPoint::Task) => {
            Some((next, state.integration_tip.clone()))
        }
        _ => None,
    }
}

/// Streams that wait on stream `name` directly and have not started: they are skipped when it
/// ends without finishing (and theirs in turn, as each is skipped).
pub fn stranded_by(plan: &Plan, state: &RunState, name: &str) -> Vec<usize> {
    (0..plan.streams.len())
        .filter(|&i| plan.streams[i].depends_on.iter().any(|d| d == name))
        .filter(|&i| state.streams[i].state == StreamState::Pending)
        .collect()
}

/// What task `t` of stream `s`, just committed, queues for integration: nothing before the
/// stream's sync point; at it, the tasks since the last sync point that are not integrated yet.
pub fn sync_unit(state: &RunState, sync: SyncPoint, s: usize, t: usize) -> Option<SyncUnit> {
    let tasks = &state.streams[s].tasks;
    let first = match sync {
        SyncPoint::Task => t,
        SyncPoint::Stream if t == tasks.len() - 1 => 0,
        SyncPoint::Stream => return None,
    };
    let first = (first..=t)
        .find(|&i| matches!(tasks[i].state, TaskState::Committed { .. }))
        .unwrap_or(t);
    let from = match &tasks[first].state {
        TaskState::Committed { start, .. } => start.clone(),
        _ => return None,
    };
    let to = tasks[t].state.end().cloned()?;
    Some(SyncUnit {
        stream: s,
        first,
        last: t,
        from,
        to,
    })
}

/// Why a stream still pending when the session ends never started.
pub fn never_started(no_new_work: bool) -> &'static str {
    if no_new_work {
        "not started: --fail-fast stopped the run after a failure"
    } else {
        "not started: its dependencies did not finish"
    }
}

/// How a session that stopped starting work ends, in order of precedence: an error, then a
/// signal, then parked streams (nothing else can move: the run is halted); otherwise the run
/// is finished.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionEnd {
    Fatal,
    Interrupted(Signal),
    Halt,
    Finished,
}

pub fn session_end(fatal: bool, stopping: Option<Signal>, parked: bool) -> SessionEnd {
    match (fatal, stopping, parked) {
        (true, _, _) => SessionEnd::Fatal,
        (false, Some(sig), _) => SessionEnd::Interrupted(sig),
        (false, None, true) => SessionEnd::Halt,
        (false, None, false) => SessionEnd::Finished,
    }
}

/// How a run that came to rest ended: `halted` (streams are parked and nothing else can move)
/// or finished, with what its streams came to (some may have failed, some be left out by the
/// person's choice, some parked, at once).
pub fn settled(state: &RunState, halted: bool) -> Finish {
    Finish::settled(halted, &state.outcomes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{RunPhase, StreamRecord, WorkStats};

    /// `a` and `b` are independent (`b` has the higher priority); `c` waits on `a`; `d` on `c`.
    fn plan(sync: &str) -> Plan {
        crate::plan::parse_simple(&format!(
            r#"
[plan]
name = "p"
agent = ["agent"]
sync = "{sync}"

[[stream]]
name = "a"
owns = ["a/**"]
tasks = ["a1", "a2", "a3"]

[[stream]]
name = "b"
owns = ["b/**"]
priority = 5
tasks = ["b1"]

[[stream]]
name = "c"
owns = ["c/**"]
depends_on = ["a"]
tasks = ["c1"]

[[stream]]
name = "d"
owns = ["d/**"]
depends_on = ["c"]
tasks = ["d1"]
"#
        ))
        .expect("a valid plan")
    }

    /// A run of `plan` that has not started anything, at integration tip `tip`.
    fn state(plan: &Plan, jobs: usize) -> RunState {
        RunState {
            version: crate::state::STATE_VERSION,
            run_id: "r".into(),
            plan_name: plan.name.clone(),
            plan_path: "streams.toml".into(),
            plan_hash: None,
            repo_root: "/repo".into(),
            base_rev: "main".into(),
            base: "base".into(),
            integration_ref: "integration".into(),
            integration_before: None,
            integration_tip: "tip".into(),
            jobs,
            fail_fast: false,
            started_at: 0,
            updated_at: 0,
            previous_wall_ms: 0,
            session_started_at: 0,
            phase: RunPhase::Running,
            streams: plan
                .streams
                .iter()
                .map(|s| {
                    StreamRecord::pending(
                        s.name.clone(),
                        format!("branch/{}", s.name),
                        s.name.clone().into(),
                        s.depends_on.clone(),
                        s.tasks.iter().map(|t| t.prompt.summary()),
                    )
                })
                .collect(),
            queue: Vec::new(),
            no_check: false,
            no_gate: false,
            only: None,
            machines: None,
            checks: Vec::new(),
            gates: Vec::new(),
            bisections: Vec::new(),
            flaky: Vec::new(),
            integrations: Vec::new(),
            timeline: Vec::new(),
            merged: None,
            retries: Vec::new(),
            budget_overrides: Default::default(),
            budget_warnings: Vec::new(),
            forecast: None,
        }
    }

    fn committed(start: &str, end: &str) -> TaskState {
        TaskState::Committed {
            start: start.into(),
            end: end.into(),
            stats: WorkStats::default(),
            finished_at: 0,
        }
    }

    fn integrated(start: &str, end: &str) -> TaskState {
        TaskState::Integrated {
            start: start.into(),
            end: end.into(),
            stats: WorkStats::default(),
            finished_at: 0,
        }
    }

    const ACTIVE: StreamState = StreamState::Active { started_at: 0 };
    const DONE: StreamState = StreamState::Done {
        started_at: 0,
        finished_at: 0,
    };

    #[test]
    fn ready_streams_wait_for_their_dependencies_and_start_by_priority() {
        let plan = plan("stream");
        let remaining = crate::plan::schedule::longest_remaining_path(&plan);
        let mut state = state(&plan, 2);
        // b has the higher priority; c and d wait.
        assert_eq!(ready_streams(&plan, &state, &remaining, &[]), [1, 0]);
        state.streams[0].state = ACTIVE;
        assert_eq!(ready_streams(&plan, &state, &remaining, &[]), [1]);
        state.streams[0].state = DONE;
        assert_eq!(ready_streams(&plan, &state, &remaining, &[]), [1, 2]);
    }

    #[test]
    fn a_stream_kept_apart_waits_only_while_the_other_holds_a_slot() {
        let plan = plan("stream");
        let remaining = crate::plan::schedule::longest_remaining_path(&plan);
        let mut state = state(&plan, 2);
        // a and b conflicted before: with a running, b waits (and holds no slot).
        let apart = [(0, 1)];
        state.streams[0].state = ACTIVE;
        assert_eq!(kept_apart(&state, &apart, 1), Some(0));
        assert!(ready_streams(&plan, &state, &remaining, &apart).is_empty());
        // Integrated (or parked, failed): b goes.
        state.streams[0].state = DONE;
        assert_eq!(kept_apart(&state, &apart, 1), None);
        assert_eq!(ready_streams(&plan, &state, &remaining, &apart), [1, 2]);
        // Neither running: both may start, the first of them to start holds the other back.
        let state = super::tests::state(&plan, 2);
        assert_eq!(ready_streams(&plan, &state, &remaining, &apart), [1, 0]);
    }

    #[test]
    fn no_new_stream_starts_while_every_slot_is_taken() {
        let plan = plan("stream");
        let mut state = state(&plan, 1);
        assert!(slot_free(&state));
        state.streams[1].state = ACTIVE;
        assert!(!slot_free(&state));
        state.jobs = 0; // read as 1
        assert!(!slot_free(&state));
        state.streams[1].state = DONE;
        assert!(slot_free(&state));
    }

    fn running() -> TaskState {
        TaskState::Running {
            start: "tip".into(),
            started_at: 0,
            pgid: None,
        }
    }

    #[test]
    fn setup_runs_for_a_new_start_and_not_for_a_task_going_on_from_the_last() {
        let plan = plan("stream");
        let mut state = state(&plan, 2);
        assert!(needs_setup(&state, 0, 0, &"tip".into()), "a new workspace");
        state.streams[0].setup_at = Some("tip".into());
        assert!(
            !needs_setup(&state, 0, 0, &"tip".into()),
            "set up already (resumed)"
        );
        state.streams[0].tasks[0].state = committed("tip", "e1");
        assert!(
            !needs_setup(&state, 0, 1, &"e1".into()),
            "goes on from task 1"
        );
        state.streams[0].tasks[0].state = integrated("tip", "e1");
        assert!(
            needs_setup(&state, 0, 1, &"tip2".into()),
            "sync = task: reset to the new integration tip"
        );
    }

    #[test]
    fn a_stream_keeps_its_slot_and_a_new_one_takes_the_lowest_free() {
        let plan = plan("stream");
        let mut state = state(&plan, 3);
        let mut slots = vec![None; 4];
        state.streams[0].state = ACTIVE;
        state.streams[1].state = ACTIVE;
        slots[0] = Some(1);
        assert_eq!(slot_for(&state, &slots, 0), 1, "kept");
        assert_eq!(slot_for(&state, &slots, 1), 0);
        slots[1] = Some(0);
        state.streams[2].state = ACTIVE;
        assert_eq!(slot_for(&state, &slots, 2), 2);
        // A stream that ended gives its slot back.
        state.streams[1].state = DONE;
        assert_eq!(slot_for(&state, &slots, 2), 0);
    }

    #[test]
    fn a_group_at_its_limit_holds_back_its_agents_and_no_one_else() {
        let plan = crate::plan::parse_simple(
            r#"
[plan]
name = "p"
agent = ["agent"]
limits = { claude = 2 }

[[stream]]
name = "a"
owns = ["a/**"]
group = "claude"
tasks = ["a1"]

[[stream]]
name = "b"
owns = ["b/**"]
group = "claude"
tasks = ["b1"]

[[stream]]
name = "c"
owns = ["c/**"]
tasks = ["c1", { prompt = "c2", group = "claude" }]

[[stream]]
name = "d"
owns = ["d/**"]
tasks = ["d1"]
"#,
        )
        .expect("a valid plan");
        let mut state = state(&plan, 4);
        assert!(!group_full(&plan, &state, 0, 0));
        state.streams[0].tasks[0].state = running();
        // The ungrouped first task of `c` counts for nothing.
        state.streams[2].tasks[0].state = running();
        assert!(!group_full(&plan, &state, 1, 0));
        assert!(!group_full(&plan, &state, 2, 1));
        state.streams[1].tasks[0].state = running();
        assert!(group_full(&plan, &state, 2, 1), "a task's own group counts");
        assert!(
            !group_full(&plan, &state, 3, 0),
            "ungrouped agents still start"
        );
        state.streams[0].tasks[0].state = committed("tip", "e1");
        assert!(!group_full(&plan, &state, 2, 1));
    }

    #[test]
    fn with_sync_per_stream_each_task_starts_where_the_last_one_ended() {
        let plan = plan("stream");
        let mut state = state(&plan, 2);
        assert_eq!(
            next_task(&state, SyncPoint::Stream, 0),
            Some((0, "tip".into()))
        );
        state.streams[0].tasks[0].state = TaskState::Running {
            start: "tip".into(),
            started_at: 0,
            pgid: None,
        };
        assert_eq!(
            next_task(&state, SyncPoint::Stream, 0),
            None,
            "one task at a time"
        );
        state.streams[0].tasks[0].state = committed("tip", "e1");
        assert_eq!(
            next_task(&state, SyncPoint::Stream, 0),
            Some((1, "e1".into()))
        );
    }

    #[test]
    fn with_sync_per_task_the_next_task_waits_for_integration_then_starts_from_the_tip() {
        let plan = plan("task");
        let mut state = state(&plan, 2);
        state.streams[0].tasks[0].state = committed("tip", "e1");
        assert_eq!(next_task(&state, SyncPoint::Task, 0), None);
        state.streams[0].tasks[0].state = integrated("tip", "e1");
        state.integration_tip = "tip2".into();
        assert_eq!(
            next_task(&state, SyncPoint::Task, 0),
            Some((1, "tip2".into()))
        );
    }

    #[test]
    fn a_stream_that_ends_unfinished_strands_only_its_pending_direct_dependents() {
        let plan = plan("stream");
        let mut state = state(&plan, 2);
        assert_eq!(stranded_by(&plan, &state, "a"), [2]);
        // d is reached through c, as c is skipped in turn.
        assert_eq!(stranded_by(&plan, &state, "c"), [3]);
        state.streams[2].state = ACTIVE;
        assert!(stranded_by(&plan, &state, "a").is_empty());
        assert!(stranded_by(&plan, &state, "b").is_empty());
    }

    #[test]
    fn sync_per_stream_queues_the_whole_stream_once_its_last_task_commits() {
        let plan = plan("stream");
        let mut state = state(&plan, 2);
        state.streams[0].tasks[0].state = committed("tip", "e1");
        assert_eq!(sync_unit(&state, SyncPoint::Stream, 0, 0), None);
        state.streams[0].tasks[1].state = committed("e1", "e2");
        state.streams[0].tasks[2].state = committed("e2", "e3");
        let unit = sync_unit(&state, SyncPoint::Stream, 0, 2).expect("a unit");
        assert_eq!(
            (unit.first, unit.last, unit.from.as_str(), unit.to.as_str()),
            (0, 2, "tip", "e3")
        );
    }

    #[test]
    fn sync_per_task_queues_each_task_alone() {
        let plan = plan("task");
        let mut state = state(&plan, 2);
        state.streams[0].tasks[0].state = integrated("tip", "e1");
        state.streams[0].tasks[1].state = committed("tip2", "e2");
        let unit = sync_unit(&state, SyncPoint::Task, 0, 1).expect("a unit");
        assert_eq!(
            (unit.first, unit.last, unit.from.as_str(), unit.to.as_str()),
            (1, 1, "tip2", "e2")
        );
    }

    #[test]
    fn any_brake_stops_new_work() {
        assert!(Brakes::default().may_start_work());
        for brakes in [
            Brakes {
                line_stopped: true,
                ..Brakes::default()
            },
            Brakes {
                stopping: true,
                ..Brakes::default()
            },
            Brakes {
                no_new_work: true,
                ..Brakes::default()
            },
            Brakes {
                fatal: true,
                ..Brakes::default()
            },
        ] {
            assert!(!brakes.may_start_work(), "{brakes:?}");
        }
    }

    #[test]
    fn an_error_outranks_a_signal_which_outranks_a_parked_stream() {
        let sig = Some(Signal::SIGINT);
        assert_eq!(session_end(true, sig, true), SessionEnd::Fatal);
        assert_eq!(
            session_end(false, sig, true),
            SessionEnd::Interrupted(Signal::SIGINT)
        );
        assert_eq!(session_end(false, None, true), SessionEnd::Halt);
        assert_eq!(session_end(false, None, false), SessionEnd::Finished);
    }

    #[test]
    fn a_finished_run_failed_unless_only_chosen_skips_are_missing() {
        use crate::error::{ExitCode, Outcome};
        let plan = plan("stream");
        let mut state = state(&plan, 2);
        for s in &mut state.streams {
            s.state = DONE;
        }
        assert_eq!(
            settled(&state, false),
            Finish::settled(false, &[Outcome::Integrated])
        );
        state.streams[3].state = StreamState::Skipped {
            reason: "x".into(),
            chosen: true,
        };
        let finish = settled(&state, false);
        assert!(finish.has(Outcome::LeftOut) && finish.succeeded());
        state.streams[2].state = StreamState::Skipped {
            reason: "x".into(),
            chosen: false,
        };
        assert_eq!(
            ExitCode::of_run(&settled(&state, false)),
            ExitCode::StreamsFailed
        );
    }

    #[test]
    fn a_parked_stream_and_a_failed_one_halt_the_run_with_both_outcomes() {
        use crate::error::{ExitCode, Outcome};
        let plan = plan("stream");
        let mut state = state(&plan, 2);
        state.streams[0].state = StreamState::Parked(crate::state::Park {
            started_at: 0,
            parked_at: 0,
            unit: SyncUnit {
                stream: 0,
                first: 0,
                last: 2,
                from: "tip".into(),
                to: "e3".into(),
            },
            files: vec!["shared".into()],
            base: "tip".into(),
            ours: "tip2".into(),
            theirs: "e3".into(),
            bundle: "/b".into(),
            resolution_worktree: "/w".into(),
            proposal: None,
        });
        state.streams[1].state = StreamState::Failed {
            reason: "x".into(),
            at: 0,
        };
        let finish = settled(&state, true);
        assert!(finish.has(Outcome::Parked) && finish.has(Outcome::Failed));
        assert!(finish.has(Outcome::Waiting), "c and d wait on a");
        assert_eq!(ExitCode::of_run(&finish), ExitCode::Halted);
    }
}
