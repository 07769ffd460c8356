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

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

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
/// [`crate::state::store::parse_state`] upgrades versions 1 to 3.
pub const STATE_VERSION: u32 = 4;

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

/// The forecast a run started with: per stream and for the run, its time and cost from the
/// history (medians with the 10th-90th percentile range), as `streams plan` shows them.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RunForecast {
    /// Some earlier run of the plan finished a task to forecast from (else every figure is
    /// absent).
    pub history: bool,
    /// The number of agents the makespan was simulated with.
    pub jobs: usize,
    /// Seconds from start to end (absent without history).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub makespan_s: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<crate::plan::learn::Range>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens: Option<crate::plan::learn::Range>,
    /// Plan order.
    pub streams: Vec<StreamForecast>,
}

/// One stream's forecast; each figure absent where its tasks had no history.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StreamForecast {
    pub stream: String,
    /// Agent time of its tasks, summed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seconds: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<crate::plan::learn::Range>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens: Option<crate::plan::learn::Range>,
}

/// A budget nearly spent (80 %).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BudgetWarning {
    /// Whose: `stream `api` task 2`, `stream `api``, `plan`, `--max-cost`.
    pub budget: String,
    /// What was spent of which limit, in words (`850 tokens of 1000`).
    pub spent: String,
    /// Milliseconds since the Unix epoch.
    pub at: u64,
}

impl BudgetWarning {
    /// `80 % of the plan budget is spent (850 tokens of 1000)`.
    pub fn line(&self) -> String {
        format!(
            "80 % of the {} budget is spent ({})",
            self.budget, self.spent
        )
    }
}

/// Budgets given on the command line for one run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BudgetOverrides {
    /// `--max-cost`: the most the run's agents may spend in all, in US dollars, on top of the
    /// plan's own budget (a shared pool of its own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_cost: Option<f64>,
    /// `retry --budget`: budgets raised for the rest of the run, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub raises: Vec<BudgetRaise>,
}

impl BudgetOverrides {
    pub fn is_empty(&self) -> bool {
        self.max_cost.is_none() && self.raises.is_empty()
    }
}

/// One `retry --budget`: a budget raised (never lowered) over what the plan says.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BudgetRaise {
    /// Whose: the plan's when `None`, else this stream's (or, with `task`, its task's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<String>,
    /// 1-based.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usd: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub turns: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_ms: Option<u64>,
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

/// One run of a stream's `check`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckRun {
    pub stream: String,
    /// One-based.
    pub task: usize,
    /// The stream's commit it ran on.
    pub commit: Oid,
    /// That commit's tree (absent in state files written before it was recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tree: Option<Oid>,
    pub command: Vec<String>,
    pub passed: bool,
    /// How it ended, in words ("exited with code 1", "timed out after 5s").
    pub result: String,
    pub ms: u64,
    pub log: PathBuf,
    pub at: u64,
}

/// One run of the plan's `gate` on a candidate integration result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GateRun {
    pub command: Vec<String>,
    /// The integration tip the candidate was built on.
    pub tip: Oid,
    /// The candidate commit and its tree (results are looked up by tree: the same files give
    /// the same verdict, whatever the commit dates).
    pub commit: Oid,
    pub tree: Oid,
    /// The streams added on top of `tip`, in order (empty: the tip alone).
    pub streams: Vec<String>,
    pub passed: bool,
    pub result: String,
    pub ms: u64,
    pub log: PathBuf,
    pub at: u64,
    /// Run to check a verdict again (a red batch before it is bisected, the green subset
    /// bisection found before it lands), not taken from an earlier run on the same tree.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub again: bool,
}

/// A gate whose verdict flipped on the same candidate tree: flaky. No stream is blamed for it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FlakyGate {
    /// The streams on top of the tip in that candidate.
    pub streams: Vec<String>,
    pub commit: Oid,
    pub tree: Oid,
    /// Each run on that tree, in order: whether it passed, how it ended, and its log (kept).
    pub runs: Vec<FlakyRun>,
    /// What the run did about it: `landed` (the latest verdict passed) or `stopped` (a green
    /// subset turned red when checked again: nothing of the batch was integrated).
    pub outcome: String,
    pub at: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FlakyRun {
    pub passed: bool,
    pub result: String,
    pub log: PathBuf,
}

/// A unit that landed on the integration branch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Landing {
    pub stream: String,
    /// Zero-based task indices, inclusive.
    pub first: usize,
    pub last: usize,
    /// The integration tip once it landed.
    pub tip: Oid,
    pub at: u64,
    /// It was parked on a conflict before it landed (a person's resolution, or the conflict
    /// went away by the time they ran `streams continue`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub parked: bool,
    /// The resolver agent whose resolution (a commit of its own) it landed with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolver: Option<String>,
}

/// A red batch bisected to the stream that turns the gate red.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Bisection {
    pub culprit: String,
    /// The batch, in order, and the tip it was built on.
    pub batch: Vec<String>,
    pub tip: Oid,
    /// The largest green prefix (the culprit is added to it); `tip` when it is empty.
    pub green: Oid,
    /// Each prefix gated, as the streams it holds, and its result.
    pub steps: Vec<(Vec<String>, bool)>,
}

/// One step of a stream on the run's time axis.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Span {
    /// The stream's name (names are stable across sessions; indices are too, but a name reads
    /// better in `state.json`).
    pub stream: String,
    pub step: Step,
    /// Milliseconds since the Unix epoch.
    pub started_at: u64,
    pub finished_at: u64,
    pub outcome: SpanOutcome,
    /// The step's log, when it has one of its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log: Option<PathBuf>,
}

/// What kind of step a span is. `Setup`, `Check` and `Gate` are the steps of the workspace
/// `setup`, `check` and `gate` plan keys: the report draws and lists them as soon as the
/// dispatcher records them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Step {
    Setup,
    /// A task's agent, all attempts included; `task` is zero-based.
    Task {
        task: usize,
    },
    Check,
    Gate,
    /// Moving the stream's work onto the integration branch.
    Integration,
}

/// How a span ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SpanOutcome {
    Ok,
    Failed {
        reason: String,
    },
    /// The integration conflicted and halted the run.
    Conflict {
        files: Vec<String>,
    },
    /// Stopped by a signal; `resume` runs it again.
    Interrupted,
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

/// A stream's work ready to be integrated: tasks `first..=last`, whose commits are the
/// first-parent chain from `from` (exclusive) to `to` (inclusive).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncUnit {
    pub stream: usize,
    /// Zero-based task indices, inclusive.
    pub first: usize,
    pub last: usize,
    pub from: Oid,
    pub to: Oid,
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

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TaskRecord {
    /// One line, for progress and commit subjects.
    pub summary: String,
    pub state: TaskState,
    /// Attempts started so far (1 + retries used).
    #[serde(default)]
    pub attempts: u32,
    /// Agent time summed over attempts, in milliseconds.
    #[serde(default)]
    pub agent_ms: u64,
    /// Why each retry was made, in order (`exit 75`, `output "rate limit"`, `timed out`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retried_for: Vec<String>,
    /// Set while the agent runs again to fix a failed check: where the task's work began and
    /// what it amounted to before the fix (the fix starts from the task's end).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fixing: Option<CheckFix>,
    /// What each attempt of a preset's agent used, as its events said (tokens by kind, cost,
    /// turns, models, session), in order. Absent from older state files and for agents that
    /// are an argv.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub usage: Vec<AttemptUsage>,
    /// Set while the task waits for its agent's usage limit to reset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting: Option<LimitWait>,
}

/// A task waiting for its agent's usage limit to reset before its next attempt.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LimitWait {
    /// When the wait began and when it ends (milliseconds since the epoch).
    pub since: u64,
    pub until: u64,
    /// Whether `until` is the reset time the provider gave (else a backoff).
    pub reset_known: bool,
    /// The provider's message.
    pub message: String,
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

impl TaskRecord {
    /// A task not started yet.
    pub fn pending(summary: String) -> TaskRecord {
        TaskRecord {
            summary,
            state: TaskState::Pending,
            attempts: 0,
            agent_ms: 0,
            retried_for: Vec::new(),
            fixing: None,
            usage: Vec::new(),
            waiting: None,
        }
    }
}

/// A task whose check failed, sent back to its agent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckFix {
    pub start: Oid,
    pub stats: WorkStats,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum TaskState {
    Pending,
    /// The agent runs (or ran, if the coordinator crashed) from `start`.
    Running {
        start: Oid,
        started_at: u64,
        /// The agent's process group, once spawned.
        #[serde(default)]
        pgid: Option<i32>,
    },
    /// Its work is committed on the stream branch, waiting for its sync point.
    Committed {
        start: Oid,
        end: Oid,
        stats: WorkStats,
        finished_at: u64,
    },
    /// Its work is on the integration branch.
    Integrated {
        start: Oid,
        end: Oid,
        stats: WorkStats,
        finished_at: u64,
    },
    Failed {
        reason: FailReason,
        at: u64,
    },
    /// Stopped by a limit (not a failure): its work is kept, `retry` goes on from it.
    Stopped {
        stop: Stop,
        at: u64,
    },
    /// Will not run (its stream failed or was skipped).
    Skipped,
}

/// Why a task or stream was stopped (exit code 6): the work stands, `retry` goes on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Stop {
    /// The agent's usage limit did not reset within `limit_wait`.
    UsageLimit {
        /// The provider's message.
        message: String,
        /// When the provider said it resets (seconds since the epoch), if it said.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        resets_at: Option<u64>,
        /// Where the task's work is kept, if it did any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        kept: Option<String>,
    },
    /// A budget ran out: the task's own (its agent crossed it), or one it shares with its
    /// stream or the plan.
    Budget {
        /// Whose budget: `task`, `stream`, `plan` (or `shared` while not known which).
        budget: String,
        /// What was spent against which limit, in words (`2100 tokens of 2000`).
        spent: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        kept: Option<String>,
    },
}

impl std::fmt::Display for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Stop::UsageLimit {
                message,
                resets_at,
                kept,
            } => {
                write!(f, "usage limit: {message}")?;
                if let Some(at) = resets_at {
                    let when = humantime::format_rfc3339_seconds(
                        std::time::UNIX_EPOCH + std::time::Duration::from_secs(*at),
                    );
                    write!(f, " (resets at {when})")?;
                }
                if let Some(kept) = kept {
                    write!(f, "; its work is kept on {kept}")?;
                }
                write!(f, "; `streams retry` goes on")
            }
            Stop::Budget {
                budget,
                spent,
                kept,
            } => {
                write!(f, "budget: the {budget} budget ran out ({spent})")?;
                if let Some(kept) = kept {
                    write!(f, "; its work is kept on {kept}")?;
                }
                if budget == "--max-cost" {
                    write!(f, "; `streams retry --max-cost` with more goes on")
                } else {
                    write!(f, "; `streams retry --budget` raises it and goes on")
                }
            }
        }
    }
}

impl TaskState {
    pub fn name(&self) -> &'static str {
        match self {
            TaskState::Pending => "pending",
            TaskState::Running { .. } => "running",
            TaskState::Committed { .. } => "committed",
            TaskState::Integrated { .. } => "integrated",
            TaskState::Failed { .. } => "failed",
            TaskState::Stopped { .. } => "stopped",
            TaskState::Skipped => "skipped",
        }
    }

    pub fn stats(&self) -> Option<&WorkStats> {
        match self {
            TaskState::Committed { stats, .. } | TaskState::Integrated { stats, .. } => Some(stats),
            _ => None,
        }
    }

    /// The commits a task's work spans, once it is committed.
    pub fn range(&self) -> Option<(Oid, Oid)> {
        match self {
            TaskState::Committed { start, end, .. } | TaskState::Integrated { start, end, .. } => {
                Some((start.clone(), end.clone()))
            }
            _ => None,
        }
    }

    pub fn end(&self) -> Option<&Oid> {
        match self {
            TaskState::Committed { end, .. } | TaskState::Integrated { end, .. } => Some(end),
            _ => None,
        }
    }
}

/// What a task's work amounts to: computed by git, kept in state.
pub use crate::work::WorkStats;

/// Why a task failed. Carried in state, events and the report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FailReason {
    /// The agent exited with a non-zero code.
    Exit {
        code: i32,
    },
    /// The agent exited with a non-zero code while the sandbox confined its writes; `denied`:
    /// its output shows a write refused by the kernel.
    SandboxedExit {
        code: i32,
        denied: bool,
    },
    /// The agent was killed by a signal it did not get from us.
    Signal {
        signal: i32,
    },
    TimedOut {
        after_ms: u64,
    },
    Idle {
        after_ms: u64,
    },
    /// The agent could not be started (not found, not executable, no agent configured).
    Spawn {
        message: String,
    },
    /// It changed paths its stream does not own; its work is kept on `kept`.
    Ownership {
        violations: Vec<OwnershipViolation>,
        kept: String,
    },
    /// It rewrote history below the task's start; its work is kept on `kept`.
    HistoryRewritten {
        kept: String,
    },
    /// It left the stream's branch (checked out another one, or detached HEAD).
    LeftBranch {
        on: String,
        kept: String,
    },
    /// It left a git operation half done (a merge with conflicts, a rebase).
    Unfinished {
        what: String,
        kept: String,
    },
    /// It made nested repositories (committing them would keep only a gitlink to commits
    /// nobody else has); its work, their files included, is kept on `kept`.
    NestedRepository {
        paths: Vec<String>,
        kept: String,
    },
    /// It moved branches other than its own; they were put back.
    MovedBranches {
        branches: Vec<String>,
        kept: String,
    },
    /// The workspace's `setup` failed (exit, timeout, or it changed files git would commit).
    Setup {
        message: String,
    },
    /// streams itself could not finish the task (git failed, disk full).
    Internal {
        message: String,
    },
    /// The agent's own events report a failure, a refusal or a run that never finished, which
    /// its exit code (`code`) may not show.
    Reported {
        code: i32,
        message: String,
    },
    /// The agent changed nothing (and the task does not allow that): what its events say.
    NoChanges {
        said: Vec<String>,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwnershipViolation {
    pub path: String,
    /// The owning stream, `None` when nobody owns it (read-only).
    pub owner: Option<String>,
}

impl std::fmt::Display for FailReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FailReason::Exit { code } => write!(f, "agent exited with code {code}"),
            FailReason::SandboxedExit { code, denied: true } => write!(
                f,
                "agent exited with code {code}; the sandbox denied it writes outside its workspace (its output says \"Permission denied\"): list what it must write in `sandbox_writable`"
            ),
            FailReason::SandboxedExit {
                code,
                denied: false,
            } => write!(
                f,
                "agent exited with code {code} while the sandbox kept its writes inside its workspace (its output shows no refused write); if it must write elsewhere, list that in `sandbox_writable`"
            ),
            FailReason::Signal { signal } => write!(f, "agent was killed by signal {signal}"),
            FailReason::TimedOut { after_ms } => {
                write!(
                    f,
                    "timed out after {}",
                    crate::duration::fmt_duration_ms(*after_ms)
                )
            }
            FailReason::Idle { after_ms } => write!(
                f,
                "no output for {} (idle timeout)",
                crate::duration::fmt_duration_ms(*after_ms)
            ),
            FailReason::Spawn { message } => write!(f, "could not start the agent: {message}"),
            FailReason::Ownership { violations, kept } => {
                use crate::text::quote_path;
                write!(f, "changed paths it does not own: ")?;
                for (i, v) in violations.iter().enumerate() {
                    if i > 0 {
                        write!(f, ", ")?;
                    }
                    if i == 5 {
                        write!(f, "and {} more", violations.len() - 5)?;
                        break;
                    }
                    match &v.owner {
                        Some(owner) => write!(f, "{} (owned by {owner})", quote_path(&v.path))?,
                        None => write!(f, "{} (owned by no stream)", quote_path(&v.path))?,
                    }
                }
                write!(f, "; its work is kept on {kept}")
            }
            FailReason::HistoryRewritten { kept } => write!(
                f,
                "rewrote history below the task's start; its work is kept on {kept}"
            ),
            FailReason::LeftBranch { on, kept } => {
                write!(f, "left its branch for {on}; its work is kept on {kept}")
            }
            FailReason::Unfinished { what, kept } => {
                write!(f, "left {what} unfinished; its work is kept on {kept}")
            }
            FailReason::NestedRepository { paths, kept } => write!(
                f,
                "made a nested repository at {} (only a link to commits nobody else has would be committed); its work, with the nested repository's files, is kept on {kept}",
                paths.join(", ")
            ),
            FailReason::MovedBranches { branches, kept } => write!(
                f,
                "moved branches that are not its own: {} (put back; what it left there is kept on {kept})",
                branches.join(", ")
            ),
            FailReason::Internal { message } => write!(f, "{message}"),
            FailReason::Reported { code: 0, message } => write!(f, "agent reported: {message}"),
            FailReason::Reported { code, message } => {
                write!(f, "agent exited with code {code}: {message}")
            }
            FailReason::NoChanges { said } if said.is_empty() => write!(
                f,
                "no changes: its agent changed no file and made no commit (`allow_empty = true` lets a task meant to change nothing pass)"
            ),
            FailReason::NoChanges { said } => write!(f, "no changes: {}", said.join("; ")),
            FailReason::Setup { message } => write!(f, "{message}"),
        }
    }
}

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
