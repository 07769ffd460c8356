//! Events of a run: what the engine tells the user, as plain data.
//!
//! The same values drive the live view, the event lines (CI, pipes) and the NDJSON stream of
//! `--json`. NDJSON lines are `{"v":1,"at":<unix ms>,"event":"<name>",...fields}`; the schema
//! version `v` changes only when a field changes meaning or disappears (adding fields does not).

use serde::Serialize;

/// The NDJSON schema version.
pub const EVENTS_SCHEMA: u32 = 1;

#[derive(Clone, Debug, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    RunStarted {
        run_id: String,
        plan: String,
        base: String,
        streams: usize,
        jobs: usize,
        /// `run`, `resume`, `continue` or `skip`.
        command: String,
    },
    StreamStarted {
        stream: String,
        tasks: usize,
        branch: String,
        worktree: String,
    },
    TaskStarted {
        stream: String,
        /// 1-based.
        task: usize,
        tasks: usize,
        attempt: u32,
        summary: String,
    },
    /// Something worth knowing about a worktree (reused, repaired, uncommitted work saved).
    Note {
        stream: String,
        message: String,
    },
    TaskRetrying {
        stream: String,
        task: usize,
        attempt: u32,
        reason: String,
        delay_ms: u64,
    },
    TaskCommitted {
        stream: String,
        task: usize,
        tasks: usize,
        commits: usize,
        files: usize,
        insertions: usize,
        deletions: usize,
        duration_ms: u64,
    },
    TaskFailed {
        stream: String,
        task: usize,
        reason: String,
        log: String,
        /// The last lines of the agent's output, control characters removed.
        log_tail: Vec<String>,
    },
    /// A stream's `check` ran on its work.
    CheckRan {
        stream: String,
        /// 1-based.
        task: usize,
        passed: bool,
        result: String,
        duration_ms: u64,
        log: String,
    },
    /// The plan's `gate` ran on a candidate: the integration tip plus `streams`, in order.
    GateRan {
        streams: Vec<String>,
        commit: String,
        passed: bool,
        result: String,
        duration_ms: u64,
        log: String,
        /// Run to check a verdict again: a red batch before it is bisected, or the green subset
        /// bisection found before it lands.
        again: bool,
    },
    /// The gate's verdict flipped on the same candidate: flaky. No stream is blamed; `landed`:
    /// its last verdict passed and the candidate landed (else nothing of its batch did, and
    /// nothing more is integrated).
    GateFlaky {
        streams: Vec<String>,
        commit: String,
        /// Each run's verdict, in order, and its log (both kept).
        passed: Vec<bool>,
        logs: Vec<String>,
        landed: bool,
    },
    Integrated {
        stream: String,
        tasks: Vec<usize>,
        commits: usize,
        tip: String,
        /// Its place in the order of integration (1-based: the run's first unit to land is 1).
        order: usize,
    },
    StreamDone {
        stream: String,
        duration_ms: u64,
        commits: usize,
        files: usize,
    },
    StreamFailed {
        stream: String,
        reason: String,
    },
    StreamSkipped {
        stream: String,
        reason: String,
    },
    /// `streams stop` stopped the stream; the unfinished work of the task it ran is kept on
    /// `kept`, and `streams retry` continues it.
    StreamStopped {
        stream: String,
        kept: Option<String>,
    },
    /// A limit stopped a task of the stream (its agent's usage limit did not reset within
    /// `limit_wait`): not a failure, its work is kept for `retry`.
    StreamLimited {
        stream: String,
        task: usize,
        reason: String,
    },
    /// A task's agent hit its usage limit: the task waits (until `until`, unix ms) and then
    /// runs it again. Not a failure, and not counted against `retries`.
    TaskWaiting {
        stream: String,
        task: usize,
        until: u64,
        /// The reset time is the provider's (else a backoff).
        reset_known: bool,
        message: String,
    },
    /// A budget (`stream `a` task 1`, `stream `a``, `plan`, `--max-cost`) reached 80 %:
    /// `spent` says of which limit (`850 tokens of 1000`).
    BudgetWarning {
        budget: String,
        spent: String,
    },
    /// What an attempt of a preset's agent used, as its events said.
    TaskUsage {
        stream: String,
        task: usize,
        attempt: u32,
        input_tokens: u64,
        output_tokens: u64,
        cache_read_tokens: u64,
        cache_write_tokens: u64,
        #[serde(skip_serializing_if = "Option::is_none")]
        cost_usd: Option<f64>,
    },
    /// Integrating `stream` conflicts in `files`: it is parked (the moment it happens), with
    /// its conflict bundle and the worktree to resolve it in. `parked`: every other stream
    /// goes on; false when the plan stops the line instead (`on_conflict = "stop"`).
    Conflict {
        stream: String,
        files: Vec<String>,
        bundle: String,
        worktree: String,
        parked: bool,
        /// The streams that wait on it (directly or not) until it is resolved or left out.
        waiting: Vec<String>,
    },
    Interrupted {
        signal: String,
    },
    RunFinished {
        /// `integrated`, `failed`, `halted` or `interrupted`.
        status: String,
        exit_code: u8,
        wall_ms: u64,
        agent_ms: u64,
    },
}

#[derive(Serialize)]
struct Line<'a> {
    v: u32,
    at: u64,
    #[serde(flatten)]
    event: &'a Event,
}

impl Event {
    pub fn to_ndjson(&self, at: u64) -> String {
        serde_json::to_string(&Line {
            v: EVENTS_SCHEMA,
            at,
            event: self,
        })
        .unwrap_or_default()
    }
}
