//! The run state: what a run intends and has done, persisted as `state.json`.
//!
//! Refs are the source of truth for work (commits live on branches and the kept refs of `layout`); this
//! records intent and progress so that `status` can show it and `resume` can pick up after a crash.
//! Stream and task states are enums whose variants carry their data, so an impossible state (a
//! running task without a start commit, an integrated task without an end commit) cannot be
//! written.
//!
//! Compatibility: `version` is bumped on any change that an older reader could misread, and
//! `store::load` upgrades every older version it knows. Fields added later must be optional
//! (`#[serde(default)]`) so older files keep loading.
//!
//! The run's and its streams' records are here; a task's are in `task`, the integration's
//! (checks, gates, the queue, landings) in `integration`, the time axis in `timeline`, budgets
//! and the forecast in `budget` and `forecast`. All are re-exported from [`crate::state`].

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{
    Bisection, BudgetOverrides, BudgetWarning, CheckRun, FlakyGate, GateRun, Landing, RunForecast,
    Span, SyncUnit, TaskRecord,
};
pub use crate::agent::usage::{AttemptUsage, Usage};
use crate::ids::Oid;

/// The format version written by this build. Version 2 (runs side by side) added the
/// `stopped` stream state, `merged` and `retries`. Version 3: a conflict parks its stream
/// ([`StreamState::Parked`]) instead of halting the run with the conflict in its phase; the
/// order of integration, gate runs made to check a verdict again and flaky gates are recorded.
/// Version 4: what a task's agent used per attempt (the ledger: tokens, cost, turns, models,
/// session, wall time, the attempt's kind), its wait on a usage limit, a task stopped by a
/// limit or a budget, the failure of an agent that did nothing or reported an error, and a
/// resolver's proposal on a parked stream, the streams a stream conflicted with.
/// Version 5: the failure of a preset's CLI that could not reach its model (`unreachable`).
/// [`crate::state::store::parse_state`] upgrades versions 1 to 4.
pub const STATE_VERSION: u32 = 5;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunState {
    pub version: u32,
    pub run_id: String,
    pub plan_name: String,
    /// The plan file the run was started from (a copy is kept as `plan.toml` in the run dir, and
    /// that copy is what `resume` and `continue` read).
    pub plan_path: PathBuf,
    /// The git blob id of that copy's text, taken when the run started: `resume`, `continue` and
    /// `skip` refuse a copy that no longer matches it (an agent could have widened its own
    /// `owns` there). Absent in runs started by older versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan_hash: Option<String>,
    /// The user's checkout (or the common dir for a bare repository).
    pub repo_root: PathBuf,
    /// `base` as written in the plan, and the commit it was pinned to.
    pub base_rev: String,
    pub base: Oid,
    /// The full ref name (`layout::integration_ref`).
    pub integration_ref: String,
    /// Where the integration ref pointed before this run; `None` if it did not exist. `abort`
    /// puts it back there.
    pub integration_before: Option<Oid>,
    /// The integration tip as of the last save.
    pub integration_tip: Oid,
    pub jobs: usize,
    pub fail_fast: bool,
    /// Milliseconds since the Unix epoch.
    pub started_at: u64,
    pub updated_at: u64,
    /// Wall time spent by earlier sessions of this run (before a halt or crash), so the report's
    /// wall time covers the whole run.
    #[serde(default)]
    pub previous_wall_ms: u64,
    /// When the current session (run, resume or continue) began.
    #[serde(default)]
    pub session_started_at: u64,
    pub phase: RunPhase,
    pub streams: Vec<StreamRecord>,
    /// Units of work finished by their agents but not yet integrated, in arrival order.
    #[serde(default)]
    pub queue: Vec<SyncUnit>,
    /// `--no-check` / `--no-gate`: this run skips them (kept so `resume` does too).
    #[serde(default)]
    pub no_check: bool,
    #[serde(default)]
    pub no_gate: bool,
    /// Every check run, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<CheckRun>,
    /// Every gate run, in order. Also what a resumed run reads instead of gating a tree again.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gates: Vec<GateRun>,
    /// How each red batch was bisected to its culprit.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bisections: Vec<Bisection>,
    /// Gate verdicts that flipped on the same tree: flaky, never blamed on a stream.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flaky: Vec<FlakyGate>,
    /// Every unit that landed on the integration branch, in the order it landed: how the
    /// history came to be (a parked stream lands after those integrated while it waited).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub integrations: Vec<Landing>,
    /// The streams of the plan this run covers, when not all of them (a CI machine's one
    /// stream, one stage of a central integration): the plan is cut down to them
    /// ([`crate::plan::Plan::only`]) whenever the run's copy of it is read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub only: Option<Vec<String>>,
    /// Set for a run spread over machines: where it came from and where its results go.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub machines: Option<Machines>,
    /// Every step that took time (tasks, integrations; setup, checks and gates once they
    /// exist), in the order they ended: the report's Gantt chart and JUnit timings. Absent from
    /// older state files, which then draw no chart.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub timeline: Vec<Span>,
    /// Where `streams merge` took the run's result, once it did (version 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged: Option<MergedInto>,
    /// Each `streams retry` of the run, in order: what it ran again and what had changed in
    /// the plan since the run's copy was taken (version 2).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retries: Vec<RetryRecord>,
    /// Budgets set on the command line (`run --max-cost`, `retry --budget`), over the plan's:
    /// applied whenever the run's plan is read, so `resume` and later retries keep them.
    #[serde(default, skip_serializing_if = "BudgetOverrides::is_empty")]
    pub budget_overrides: BudgetOverrides,
    /// Budgets that reached 80 % during the run, in order (each once): what `status` warns of.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub budget_warnings: Vec<BudgetWarning>,
    /// What `streams plan` forecast for this run as it started (from the history then), for the
    /// report to set beside what it took. Absent in older runs and runs spread over machines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forecast: Option<RunForecast>,
}

/// Where `streams merge` took a run's result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MergedInto {
    /// The branch's short name.
    pub branch: String,
    /// What the branch pointed at afterwards: the integration tip (a fast-forward), a merge
    /// commit, or the tip of the run's commits replayed onto the branch.
    pub commit: Oid,
    /// `fast-forward`, `merge` or `rebase`.
    pub how: String,
    pub at: u64,
}

/// One `streams retry` of a run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RetryRecord {
    pub at: u64,
    pub streams: Vec<String>,
    /// What changed in the plan since the run's copy was taken, one line each (empty: nothing).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub plan_changes: Vec<String>,
}

/// A run that is part of one spread over CI machines.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "role", rename_all = "snake_case")]
pub enum Machines {
    /// One stream run on this machine (`run --only`); its branch and manifest go to `push`.
    Stream {
        stream: String,
        push: Option<String>,
        /// `--after-stage`: the stage whose integration tip it started from.
        after_stage: Option<usize>,
        /// The run's base as this machine knew it (`--base`, else the plan's base here).
        base: Oid,
    },
    /// The central integration (`integrate --from`): streams fetched from `remote`; the
    /// integration branch and stage tip pushed back there once the run finishes.
    Integrate {
        remote: String,
        /// The run id the machines were given (this run's own id adds the stage).
        run_id: String,
        stage: Option<usize>,
        /// The streams whose manifest never arrived, in plan order (reported; a later
        /// `integrate` takes them in once they arrive).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        missing: Vec<String>,
        /// The manifest commit each stream was settled from: a stream that failed is looked at
        /// again when its job reports another one (its job was run again). Absent from older
        /// state files: their failed streams stay failed.
        #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
        arrived: std::collections::BTreeMap<String, Oid>,
    },
}

/// Where the run as a whole stands.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "phase", rename_all = "snake_case")]
pub enum RunPhase {
    /// A coordinator is (or was, if it crashed) working on it.
    Running,
    /// Nothing else can move: every stream left waits on a conflict a person resolves (the
    /// parked streams, [`StreamState::Parked`], and what depends on them), or, with
    /// `on_conflict = "stop"`, the line stopped at the first conflict.
    Halted,
    /// Stopped by a signal with its state saved; `resume` goes on.
    Interrupted { signal: String },
    /// Every stream reached an end.
    Finished,
    /// `streams abort` stopped it.
    Aborted { at: u64 },
}

impl RunPhase {
    pub fn name(&self) -> &'static str {
        match self {
            RunPhase::Running => "running",
            RunPhase::Halted => "halted",
            RunPhase::Interrupted { .. } => "interrupted",
            RunPhase::Finished => "finished",
            RunPhase::Aborted { .. } => "aborted",
        }
    }

    /// Finished or aborted: nothing more will happen to this run.
    pub fn is_over(&self) -> bool {
        matches!(self, RunPhase::Finished | RunPhase::Aborted { .. })
    }

    /// The phase as a reader sees it, given whether a `streams` process holds the run's lock:
    /// a run saved as running that nobody holds was interrupted (its coordinator died).
    pub fn seen(&self, lock_held: bool) -> &'static str {
        match self {
            RunPhase::Running if !lock_held => "interrupted",
            phase => phase.name(),
        }
    }
}

/// A stream set aside on a conflict: what a person needs to resolve it, and what `continue`
/// records the resolution from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Park {
    /// When the stream started (kept for when it is done).
    pub started_at: u64,
    pub parked_at: u64,
    /// The work that conflicts; no longer in the queue.
    pub unit: SyncUnit,
    /// The conflicted paths.
    pub files: Vec<String>,
    /// The three sides of the merge: the stream's starting point, the integration tip, and the
    /// stream's work (after a resolution that conflicted anew on a moved tip: the tip it was
    /// made on, the new tip, and the resolution).
    pub base: Oid,
    pub ours: Oid,
    pub theirs: Oid,
    /// `conflicts/<stream>/` in the run dir.
    pub bundle: PathBuf,
    /// The worktree where the person resolves: at `ours`, detached while the integration goes
    /// on (on the integration branch when the line stopped).
    pub resolution_worktree: PathBuf,
    /// What the resolver agent made of the conflict, if the plan has one: a proposal ready in
    /// the resolution worktree, or one refused (with the reason). Absent from older state
    /// files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proposal: Option<Box<Proposal>>,
}

/// A resolver agent's resolution of a parked stream's conflict.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Proposal {
    /// The resolver's program name, as its commit's `Streams-Resolver` trailer says.
    pub resolver: String,
    /// `propose` or `accept`, as the plan said.
    pub mode: String,
    /// Accepted: the stream's work with the conflicted files as the integration has them, and
    /// the resolution on top of it (a commit of its own). Refused: `commit` holds what the
    /// resolver left, kept on the stream's `resolution` ref.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub work: Option<Oid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<Oid>,
    /// The resolved tree (accepted only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tree: Option<Oid>,
    /// Why streams refused it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
    pub attempt: ResolverAttempt,
}

/// One run of the resolver agent, kept like a task attempt (the ledger's usage goes here too).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ResolverAttempt {
    pub log: PathBuf,
    pub took_ms: u64,
    /// How it ended, in words.
    pub exit: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StreamRecord {
    pub name: String,
    /// The full ref name (`layout::stream_branch`).
    pub branch: String,
    pub worktree: PathBuf,
    /// The streams this one waits for, as the plan said (for the report's graph). Absent from
    /// older state files, whose graph then has no edges.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<String>,
    pub state: StreamState,
    pub tasks: Vec<TaskRecord>,
    /// What a person should know that is not a failure (a branch deleted while a task ran, and
    /// where its tip is kept), in the order it happened. Absent from older state files.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// The start commit its workspace was last set up at (`setup`); absent when none ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub setup_at: Option<Oid>,
    /// Its `setup` runs now.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub setting_up: bool,
    /// The streams whose integrated work its own conflicted with in this run (each once, in
    /// the order found), whether a person or the resolver settled it: the history learns from
    /// it which streams to keep apart. Absent from older state files.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conflicted_with: Vec<String>,
}

// A run holds one of these per stream (tens, not millions) and moves them rarely: a parked
// stream's record being a few hundred bytes wider than the others costs nothing worth a box.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum StreamState {
    /// Waiting for its dependencies or for a free slot.
    Pending,
    /// Holds a slot: a task is running, or its work waits for integration before the next task.
    Active { started_at: u64 },
    /// Its work conflicts with the integration: set aside, holding no slot, until a person
    /// resolves it (`streams continue STREAM`) or leaves it out (`streams skip STREAM`). The
    /// streams that depend on it wait; every other stream goes on.
    Parked(Park),
    /// Every task done and integrated.
    Done { started_at: u64, finished_at: u64 },
    /// A task failed; the stream stopped there.
    Failed { reason: String, at: u64 },
    /// Never ran, or ran and was left out (a dependency did not finish, `--fail-fast`, or
    /// `streams skip`).
    Skipped {
        reason: String,
        /// Left out by the person's choice: `streams skip`, or a stream that waits on one so
        /// left out. Not a failure. Absent (false) in older state files.
        #[serde(default)]
        chosen: bool,
    },
    /// Stopped, not failed: by `streams stop` while the rest of the run went on, or by a limit
    /// (an agent's usage limit that did not reset within `limit_wait`; the task's
    /// `TaskState::Stopped` says which). Its committed work stays on its branch, the task it was
    /// running is kept on a ref, and `streams retry` continues the stream (version 2).
    Stopped { reason: String, at: u64 },
}

impl StreamState {
    pub fn name(&self) -> &'static str {
        match self {
            StreamState::Pending => "pending",
            StreamState::Active { .. } => "active",
            StreamState::Parked(_) => "parked",
            StreamState::Done { .. } => "done",
            StreamState::Failed { .. } => "failed",
            StreamState::Skipped { .. } => "skipped",
            StreamState::Stopped { .. } => "stopped",
        }
    }

    /// Why a stream that did not finish did not: failed, stopped or skipped.
    pub fn reason(&self) -> Option<String> {
        match self {
            StreamState::Failed { reason, .. }
            | StreamState::Skipped { reason, .. }
            | StreamState::Stopped { reason, .. } => Some(reason.clone()),
            _ => None,
        }
    }

    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            StreamState::Done { .. }
                | StreamState::Failed { .. }
                | StreamState::Skipped { .. }
                | StreamState::Stopped { .. }
        )
    }
}

impl StreamRecord {
    /// A stream as a new run records it: nothing started, one pending task per summary.
    pub fn pending(
        name: String,
        branch: String,
        worktree: PathBuf,
        depends_on: Vec<String>,
        task_summaries: impl IntoIterator<Item = String>,
    ) -> StreamRecord {
        StreamRecord {
            name,
            branch,
            worktree,
            depends_on,
            state: StreamState::Pending,
            tasks: task_summaries
                .into_iter()
                .map(TaskRecord::pending)
                .collect(),
            notes: Vec::new(),
            setup_at: None,
            setting_up: false,
            conflicted_with: Vec::new(),
        }
    }
}

/// What a task's work amounts to: computed by git, kept in state.
pub use crate::work::WorkStats;

impl RunState {
    pub fn stream_by_name(&self, name: &str) -> Option<(usize, &StreamRecord)> {
        self.streams
            .iter()
            .enumerate()
            .find(|(_, s)| s.name == name)
    }

    /// A stream failed, or was skipped for a reason other than the person's choice.
    pub fn any_failed(&self) -> bool {
        self.streams.iter().any(|s| {
            matches!(
                s.state,
                StreamState::Failed { .. } | StreamState::Skipped { chosen: false, .. }
            )
        })
    }

    /// A stream was stopped (`streams stop`, or a limit): its work kept, `retry` continues it.
    pub fn any_stopped(&self) -> bool {
        self.streams
            .iter()
            .any(|s| matches!(s.state, StreamState::Stopped { .. }))
    }

    /// A stream was left out by the person's choice (`streams skip`, and what waits on it).
    pub fn any_chosen_skip(&self) -> bool {
        self.streams
            .iter()
            .any(|s| matches!(s.state, StreamState::Skipped { chosen: true, .. }))
    }

    /// The parked streams, in the order they parked.
    pub fn parked(&self) -> Vec<(usize, &StreamRecord, &Park)> {
        let mut parked: Vec<_> = self
            .streams
            .iter()
            .enumerate()
            .filter_map(|(i, s)| match &s.state {
                StreamState::Parked(park) => Some((i, s, park)),
                _ => None,
            })
            .collect();
        parked.sort_by_key(|(i, _, park)| (park.parked_at, *i));
        parked
    }

    /// What the run's streams came to, each kind once, for the exit code (see
    /// [`crate::error::Outcome`]): a run may end with some parked and others failed at once.
    pub fn outcomes(&self) -> Vec<crate::error::Outcome> {
        use crate::error::Outcome;
        let mut outcomes: Vec<Outcome> = self
            .streams
            .iter()
            .map(|s| match s.state {
                StreamState::Done { .. } => Outcome::Integrated,
                StreamState::Parked(_) => Outcome::Parked,
                StreamState::Failed { .. } | StreamState::Skipped { chosen: false, .. } => {
                    Outcome::Failed
                }
                StreamState::Skipped { chosen: true, .. } => Outcome::LeftOut,
                StreamState::Stopped { .. } => Outcome::Stopped,
                // Not started, or not done when the session ended: it waits (on a parked
                // stream, or for `resume`).
                StreamState::Pending | StreamState::Active { .. } => Outcome::Waiting,
            })
            .collect();
        outcomes.sort();
        outcomes.dedup();
        outcomes
    }
}
