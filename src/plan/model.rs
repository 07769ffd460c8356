//! The validated plan: what the rest of `streams` works from.
//!
//! A `Plan` only exists once every rule in `validate` held, so code that receives one never
//! re-checks names, cycles or ownership. Defaults are already applied; per-task settings are
//! resolved through the `*_for` accessors (task, then stream, then plan).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

pub use crate::agent::AgentSpec;

/// How a stream's commits land on the integration branch at a sync point.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MergeStrategy {
    /// Each commit is replayed onto the integration tip (linear history).
    #[default]
    Rebase,
    /// One merge commit per sync point; the stream's own commits stay in history.
    Merge,
    /// One commit per sync point whose message lists the tasks.
    Squash,
}

impl MergeStrategy {
    pub fn as_str(self) -> &'static str {
        match self {
            MergeStrategy::Rebase => "rebase",
            MergeStrategy::Merge => "merge",
            MergeStrategy::Squash => "squash",
        }
    }
}

/// When a stream's work is integrated.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SyncPoint {
    /// After every task: the stream's next task starts from the new integration tip.
    Task,
    /// Once, when the stream's last task is done.
    #[default]
    Stream,
}

impl SyncPoint {
    pub fn as_str(self) -> &'static str {
        match self {
            SyncPoint::Task => "task",
            SyncPoint::Stream => "stream",
        }
    }
}

/// What a conflict at integration does to the run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OnConflict {
    /// The conflicting stream is parked for a person; every other stream goes on.
    #[default]
    Park,
    /// The whole line stops: nothing new starts or integrates until the conflict is resolved.
    Stop,
}

impl OnConflict {
    pub fn as_str(self) -> &'static str {
        match self {
            OnConflict::Park => "park",
            OnConflict::Stop => "stop",
        }
    }
}

/// What a resolver agent's resolution, once streams accepted it, does.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ResolveMode {
    /// The stream stays parked with the resolution ready: a person looks, edits if they want,
    /// and `continue`s.
    #[default]
    Propose,
    /// The resolution is integrated at once, and the report says so.
    Accept,
}

impl ResolveMode {
    pub fn as_str(self) -> &'static str {
        match self {
            ResolveMode::Propose => "propose",
            ResolveMode::Accept => "accept",
        }
    }
}

/// `resolve = { agent = ..., mode = "propose" | "accept" }`: an agent (a preset, or an argv)
/// that resolves conflicts before a person does.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Resolver {
    pub agent: AgentSpec,
    pub mode: ResolveMode,
}

/// How many lines around each conflicted region a resolution may change, unless the plan says.
pub const DEFAULT_RESOLVE_MARGIN: usize = 3;

/// How many times a red gate batch is run again before it is bisected, unless the plan says.
pub const DEFAULT_GATE_RETRIES: u32 = 1;

/// How long a `notify` command may run before it is stopped, unless the plan says.
pub const DEFAULT_NOTIFY_TIMEOUT: Duration = Duration::from_secs(30);

/// Whether the kernel confines an agent's writes to its workspace (Linux Landlock).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SandboxMode {
    /// No confinement beyond the ownership check after the agent.
    #[default]
    Off,
    /// Landlock where the kernel has it; elsewhere a warning, and the agent runs unconfined.
    Auto,
    /// Landlock, or the run does not start.
    Landlock,
}

impl SandboxMode {
    pub fn as_str(self) -> &'static str {
        match self {
            SandboxMode::Off => "off",
            SandboxMode::Auto => "auto",
            SandboxMode::Landlock => "landlock",
        }
    }
}

/// An `owns` or `shared` pattern. `text` is what the user wrote (for messages); `glob` is the
/// normalised form that is compiled (leading `/` removed).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Pattern {
    pub text: String,
    pub glob: String,
}

/// A planning estimate: seconds when written as a duration ("10m"), abstract units when written
/// as a plain number. The default is one unit per task.
pub type Estimate = f64;

pub const DEFAULT_ESTIMATE: Estimate = 1.0;
pub const DEFAULT_GRACE: Duration = Duration::from_secs(10);
pub const DEFAULT_RETRY_BACKOFF: Duration = Duration::from_secs(1);
/// How long a task waits for a usage limit to reset when the plan does not say (`limit_wait`).
pub const DEFAULT_LIMIT_WAIT: Duration = Duration::from_secs(60 * 60);
pub const DEFAULT_BASE: &str = "HEAD";
/// How long `setup` may run when the plan does not say (`setup_timeout`).
pub const DEFAULT_SETUP_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// `ports` when the plan does not set it: slot 0 gets 20000-20009, slot 1 20010-20019, ...
pub const DEFAULT_PORTS: (u16, u16) = (20000, 10);

/// The largest plan file read, in bytes. A plan is a short TOML file; the limit keeps a wrong
/// path (`streams plan /dev/zero`, a log file) from being read without end.
pub const MAX_PLAN_BYTES: u64 = 1024 * 1024;

/// The longest plan or stream name, in bytes. Each is one component of refs such as
/// `refs/streams/<plan>/<kind>/<stream>/<n>` and of workspace paths; git stores a ref as a file
/// (plus `.lock` while it changes it), and most file systems allow 255 bytes per file name. Names
/// longer than 250 bytes passed `plan` and then failed mid-run (issue 11); 100 leaves room for
/// what streams adds and keeps branch names readable.
pub const MAX_NAME_BYTES: usize = 100;

/// The name every plan reserves for the integration branch.
pub const RESERVED_STREAM_NAME: &str = "integration";

#[derive(Clone, Debug, Serialize)]
pub struct Plan {
    /// Used in ref names (see `layout`).
    pub name: String,
    /// The revision as written; a run pins it to a commit once.
    pub base: String,
    /// Agents running at once; `None` means the number of CPUs.
    pub jobs: Option<usize>,
    /// The default agent: a preset, or an argv (no shell) with placeholders.
    pub agent: Option<AgentSpec>,
    pub merge: MergeStrategy,
    pub sync: SyncPoint,
    /// Paths any stream may edit; conflicts there halt the run.
    pub shared: Vec<Pattern>,
    /// Paths every stream's agent reads besides what it owns and `shared`; with a stream's own
    /// `reads`, its workspace is a sparse checkout of owns + shared + reads. Empty: whole.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub reads: Vec<Pattern>,
    /// Per task, wall clock.
    pub timeout: Option<Duration>,
    /// Per task, no output for that long.
    pub idle_timeout: Option<Duration>,
    /// Between SIGTERM and SIGKILL when a task is stopped.
    pub grace: Duration,
    pub retries: u32,
    /// Exit codes worth retrying; with `retry_on_output`, empty means any failure (non-zero
    /// exit or timeout).
    pub retry_on: Vec<i32>,
    /// Text worth retrying when a failed agent printed it in its last lines (case-insensitive).
    pub retry_on_output: Vec<String>,
    /// The first retry waits this long; each further one twice as long (capped at a minute).
    pub retry_backoff: Duration,
    /// How long a task waits, in all, for its agent's usage limit to reset before it stops as
    /// limited (its work kept; `retry` goes on). The wait does not count against `timeout`.
    pub limit_wait: Duration,
    /// Every task may end without changes (a stream's or task's own setting overrides it).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub allow_empty: bool,
    /// Where stream worktrees go (relative paths are relative to the repository root);
    /// `None` means under the git common dir.
    pub worktree_root: Option<PathBuf>,
    /// Environment for every agent; a stream's `env` adds to and overrides it.
    pub env: BTreeMap<String, String>,
    /// Run in a stream's worktree after its tasks (after each with `sync = "task"`), before
    /// its work is integrated; a stream's own `check` replaces it.
    pub check: Option<Vec<String>>,
    /// Wall clock for one run of a check or of the gate.
    pub check_timeout: Option<Duration>,
    /// How many times a failing check sends the stream's agent back to fix it.
    pub check_retries: u32,
    /// Run on the candidate integration result before the integration ref moves.
    pub gate: Option<Vec<String>>,
    /// The most streams one gate run takes at once; `None`: every stream waiting.
    pub gate_batch: Option<usize>,
    /// How many times a red batch is gated again before it is bisected (a verdict that flips
    /// is flaky, and blames no stream).
    pub gate_retries: u32,
    /// What a conflict at integration does: park the stream (default) or stop the line.
    pub on_conflict: OnConflict,
    /// The agent that resolves a conflict before a person does, if any.
    pub resolve: Option<Resolver>,
    /// How many lines around each conflicted region the resolver may change.
    pub resolve_margin: usize,
    /// Run (an argv, no shell) the moment a stream parks on a conflict, with the stream and its
    /// conflict bundle in its environment.
    pub notify: Option<Vec<String>>,
    /// How long `notify` may run before it is stopped.
    pub notify_timeout: Duration,
    /// Confinement of every agent's writes; a stream may set its own.
    pub sandbox: SandboxMode,
    /// Paths (absolute or `~/...`, as written) every sandboxed agent may also write.
    pub sandbox_writable: Vec<String>,
    /// Ignored files to copy from the checkout into each new workspace (gitignore syntax, added
    /// to `.worktreeinclude`'s).
    pub include: Vec<String>,
    /// Run in each new workspace before its first agent (an argv; a stream may set its own).
    pub setup: Option<Vec<String>>,
    pub setup_timeout: Option<Duration>,
    /// Each agent's block of ports: `STREAMS_PORT` = base + slot * per_slot.
    pub ports: Ports,
    /// Concurrency groups: the most agents of a group running at once (`[plan.limits]`).
    pub limits: BTreeMap<String, usize>,
    /// What the plan's agents may spend in all (shared by every task).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub budget: Option<Budget>,
    /// Prices per model (`[prices]`), for agents that do not state their cost.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub prices: BTreeMap<String, Price>,
    pub streams: Vec<Stream>,
}

/// A limit on what an agent may spend (`budget = { usd = 5, tokens = 2_000_000, turns = 60,
/// time = "30m" }`), on a task (its agent alone), a stream or the plan (shared by their tasks).
/// Each limit is optional; crossing any one of them exhausts the budget.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Budget {
    pub usd: Option<f64>,
    /// Every token, of every kind.
    pub tokens: Option<u64>,
    pub turns: Option<u32>,
    /// The agent's running time.
    pub time: Option<Duration>,
}

impl Budget {
    /// No limit set.
    pub fn is_empty(&self) -> bool {
        self.usd.is_none() && self.tokens.is_none() && self.turns.is_none() && self.time.is_none()
    }

    /// `$5.00, 2.0M tokens, 60 turns, 30m`.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(usd) = self.usd {
            parts.push(format!("${usd:.2}"));
        }
        if let Some(tokens) = self.tokens {
            parts.push(format!("{} tokens", crate::agent::usage::tokens(tokens)));
        }
        if let Some(turns) = self.turns {
            parts.push(format!("{turns} turns"));
        }
        if let Some(time) = self.time {
            parts.push(crate::duration::fmt_duration_ms(time.as_millis() as u64));
        }
        parts.join(", ")
    }
}

/// What a model's tokens cost, in US dollars per million tokens (`[prices]`): what streams
/// prices an agent's usage with when the agent does not state its cost (marked an estimate).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Price {
    pub input: f64,
    pub output: f64,
    pub cache_read: f64,
    pub cache_write: f64,
}

/// Where each slot's ports start: slot `n` may use `base + n * per_slot` and the
/// `per_slot - 1` ports after it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Ports {
    pub base: u16,
    pub per_slot: u16,
}

impl Default for Ports {
    fn default() -> Ports {
        Ports {
            base: DEFAULT_PORTS.0,
            per_slot: DEFAULT_PORTS.1,
        }
    }
}

impl Ports {
    /// The first port of `slot`, if it fits below 65536.
    pub fn for_slot(&self, slot: usize) -> Option<u16> {
        let port = u64::from(self.base) + slot as u64 * u64::from(self.per_slot);
        u16::try_from(port).ok()
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Stream {
    pub name: String,
    pub owns: Vec<Pattern>,
    /// Paths this stream's agent reads besides `owns` and `shared` (added to the plan's).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub reads: Vec<Pattern>,
    pub depends_on: Vec<String>,
    pub tasks: Vec<Task>,
    pub agent: Option<AgentSpec>,
    pub timeout: Option<Duration>,
    pub idle_timeout: Option<Duration>,
    pub retries: Option<u32>,
    pub env: BTreeMap<String, String>,
    /// Higher starts first among ready streams; default 0.
    pub priority: i64,
    /// Estimate of each task of this stream, unless the task sets its own.
    pub estimate: Option<Estimate>,
    pub check: Option<Vec<String>>,
    pub check_timeout: Option<Duration>,
    pub check_retries: Option<u32>,
    pub sandbox: Option<SandboxMode>,
    /// Added to the plan's `sandbox_writable` for this stream's agents.
    pub sandbox_writable: Vec<String>,
    /// The concurrency group of its agents (a key of `[plan.limits]`).
    pub group: Option<String>,
    pub setup: Option<Vec<String>>,
    pub setup_timeout: Option<Duration>,
    /// Its tasks may end without changes (unless a task says otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_empty: Option<bool>,
    /// What the stream's tasks may spend in all (shared).
    pub budget: Option<Budget>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Task {
    pub prompt: Prompt,
    pub agent: Option<AgentSpec>,
    pub timeout: Option<Duration>,
    pub estimate: Option<Estimate>,
    pub group: Option<String>,
    /// A task meant to change nothing (a review, an audit): it passes without changes unless
    /// its agent's events show a refusal or an error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_empty: Option<bool>,
    /// What this task's agent may spend (each attempt stops when it crosses it).
    pub budget: Option<Budget>,
}

/// What a task asks of its agent.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Prompt {
    Text(String),
    /// Read at run time; relative paths are relative to the plan file's directory.
    File(PathBuf),
}

impl Prompt {
    /// A one-line summary for progress lines and commit subjects.
    pub fn summary(&self) -> String {
        match self {
            Prompt::Text(text) => text.lines().next().unwrap_or("").trim().to_string(),
            Prompt::File(path) => format!("prompt from {}", path.display()),
        }
    }
}

impl Plan {
    /// The sparse checkout of stream `s`'s workspace when it (or the plan) declares `reads`:
    /// what it owns, the plan's `shared`, and what it reads. `None`: a whole checkout.
    pub fn sparse_set(&self, s: usize) -> Option<super::Sparse> {
        let stream = &self.streams[s];
        if stream.reads.is_empty() && self.reads.is_empty() {
            return None;
        }
        let globs = (stream.owns.iter())
            .chain(&self.shared)
            .chain(&self.reads)
            .chain(&stream.reads)
            .map(|p| p.glob.as_str());
        Some(super::Sparse::from_globs(globs))
    }

    /// The plan cut down to the streams named (in plan order), for a run that covers only
    /// them (one CI machine's stream, one stage's integration): dependencies on streams left
    /// out are dropped, since their work is already in the run's start commit.
    pub fn only(&self, names: &[String]) -> Plan {
        let mut plan = self.clone();
        plan.streams.retain(|s| names.contains(&s.name));
        for stream in &mut plan.streams {
            stream.depends_on.retain(|d| names.contains(d));
        }
        plan
    }

    pub fn stream(&self, name: &str) -> Option<&Stream> {
        self.streams.iter().find(|s| s.name == name)
    }

    pub fn stream_index(&self, name: &str) -> Option<usize> {
        self.streams.iter().position(|s| s.name == name)
    }

    /// The agent of a task: the task's, else the stream's, else the plan's.
    pub fn agent_for<'a>(&'a self, stream: &'a Stream, task: &'a Task) -> Option<&'a AgentSpec> {
        task.agent
            .as_ref()
            .or(stream.agent.as_ref())
            .or(self.agent.as_ref())
    }

    /// Whether a task may end without changes: the task's `allow_empty`, else its stream's,
    /// else the plan's.
    pub fn allow_empty_for(&self, stream: &Stream, task: &Task) -> bool {
        task.allow_empty
            .or(stream.allow_empty)
            .unwrap_or(self.allow_empty)
    }

    pub fn timeout_for(&self, stream: &Stream, task: &Task) -> Option<Duration> {
        task.timeout.or(stream.timeout).or(self.timeout)
    }

    pub fn idle_timeout_for(&self, stream: &Stream) -> Option<Duration> {
        stream.idle_timeout.or(self.idle_timeout)
    }

    /// The setup argv of a stream's workspace: the stream's, else the plan's.
    pub fn setup_for<'a>(&'a self, stream: &'a Stream) -> Option<&'a [String]> {
        stream.setup.as_deref().or(self.setup.as_deref())
    }

    pub fn setup_timeout_for(&self, stream: &Stream) -> Duration {
        stream
            .setup_timeout
            .or(self.setup_timeout)
            .unwrap_or(DEFAULT_SETUP_TIMEOUT)
    }

    /// The concurrency group of a task's agent: the task's, else the stream's.
    pub fn group_for<'a>(&'a self, stream: &'a Stream, task: &'a Task) -> Option<&'a str> {
        task.group.as_deref().or(stream.group.as_deref())
    }

    /// The most agents of `group` that may run at once, if the group is limited.
    pub fn limit_of(&self, group: &str) -> Option<usize> {
        self.limits.get(group).copied()
    }

    pub fn retries_for(&self, stream: &Stream) -> u32 {
        stream.retries.unwrap_or(self.retries)
    }

    /// The check of a stream: its own, else the plan's.
    pub fn check_for<'a>(&'a self, stream: &'a Stream) -> Option<&'a [String]> {
        stream.check.as_deref().or(self.check.as_deref())
    }

    pub fn check_timeout_for(&self, stream: &Stream) -> Option<Duration> {
        stream.check_timeout.or(self.check_timeout)
    }

    pub fn check_retries_for(&self, stream: &Stream) -> u32 {
        stream.check_retries.unwrap_or(self.check_retries)
    }

    pub fn estimate_for(&self, stream: &Stream, task: &Task) -> Estimate {
        task.estimate
            .or(stream.estimate)
            .unwrap_or(DEFAULT_ESTIMATE)
    }

    pub fn sandbox_for(&self, stream: &Stream) -> SandboxMode {
        stream.sandbox.unwrap_or(self.sandbox)
    }

    /// The extra writable paths of a stream's agents: the plan's, then the stream's own.
    pub fn sandbox_writable_for(&self, stream: &Stream) -> Vec<String> {
        let mut paths = self.sandbox_writable.clone();
        paths.extend(stream.sandbox_writable.iter().cloned());
        paths
    }

    /// The environment an agent of this stream gets on top of the user's.
    pub fn env_for(&self, stream: &Stream) -> BTreeMap<String, String> {
        let mut env = self.env.clone();
        env.extend(stream.env.iter().map(|(k, v)| (k.clone(), v.clone())));
        env
    }
}
