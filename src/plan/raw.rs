//! TOML text to raw, spanned plan values: syntax, unknown keys, types and the format of each
//! value (durations, enums, ranges), every problem collected rather than the first.
//!
//! serde's `deny_unknown_fields` stops at the first problem, so the document is parsed with
//! `DeTable::parse_recoverable` and walked by hand. What comes out keeps the span of everything
//! a later rule may need to point at; cross-value rules (names, dependencies, ownership) live in
//! `validate`.

use std::collections::BTreeMap;
use std::time::Duration;

use toml::Spanned;
use toml::de::{DeArray, DeTable, DeValue};

use super::diagnostic::{Diagnostic, Diagnostics, Span};
use super::model::{MergeStrategy, Prompt, SandboxMode, SyncPoint};

/// A value and where it was written.
#[derive(Clone, Debug, PartialEq)]
pub struct Sp<T> {
    pub value: T,
    pub span: Span,
}

#[derive(Debug, Default)]
pub struct RawFile {
    pub plan: Option<RawPlan>,
    pub streams: Vec<RawStream>,
    /// `plan` and `stream` were written, well-formed or not.
    pub plan_given: bool,
    pub streams_given: bool,
}

#[derive(Debug, Default)]
pub struct RawPlan {
    /// The `[plan]` header.
    pub header: Span,
    pub name: Option<Sp<String>>,
    pub base: Option<Sp<String>>,
    pub jobs: Option<usize>,
    pub agent: Option<Vec<String>>,
    /// The agent's program (`agent[0]`) and where it was written.
    pub agent_program: Option<Sp<String>>,
    pub merge: Option<MergeStrategy>,
    pub sync: Option<SyncPoint>,
    pub shared: Vec<Sp<String>>,
    /// Patterns every stream's agent reads besides what it owns and `shared` (a sparse
    /// workspace).
    pub reads: Vec<Sp<String>>,
    pub timeout: Option<Duration>,
    pub idle_timeout: Option<Duration>,
    pub grace: Option<Duration>,
    pub retries: Option<u32>,
    pub retry_on: Vec<i32>,
    /// `retry_on` strings: looked for in the last lines of a failed agent's output.
    pub retry_on_output: Vec<String>,
    pub retry_backoff: Option<Duration>,
    pub worktree_root: Option<Sp<String>>,
    pub env: BTreeMap<String, String>,
    pub check: Option<Vec<String>>,
    pub check_timeout: Option<Duration>,
    pub check_retries: Option<u32>,
    pub gate: Option<Vec<String>>,
    pub gate_batch: Option<usize>,
    pub sandbox: Option<SandboxMode>,
    pub sandbox_writable: Vec<String>,
    /// `setup`: the argv run in a new workspace before its first agent.
    pub setup: Option<Vec<String>>,
    /// `include`: gitignore-style patterns of ignored files copied into new workspaces.
    pub include: Vec<String>,
    pub setup_timeout: Option<Duration>,
    /// `ports = { base, per_slot }`.
    pub ports: Option<(u16, u16)>,
    /// `[plan.limits]`: most agents of a group running at once, and where each was written.
    pub limits: Vec<(Sp<String>, usize)>,
    /// Keys that were present (whatever their value), to tell "missing" from "wrong".
    pub present: Vec<&'static str>,
}

#[derive(Debug, Default)]
pub struct RawStream {
    /// The `[[stream]]` header (or the inline table).
    pub header: Span,
    pub name: Option<Sp<String>>,
    /// The `owns` array and its items.
    pub owns: Option<Sp<Vec<Sp<String>>>>,
    /// Patterns the agent reads besides `owns` and `shared`.
    pub reads: Vec<Sp<String>>,
    pub depends_on: Vec<Sp<String>>,
    pub tasks: Vec<RawTask>,
    pub agent: Option<Vec<String>>,
    pub agent_program: Option<Sp<String>>,
    pub timeout: Option<Duration>,
    pub idle_timeout: Option<Duration>,
    pub retries: Option<u32>,
    pub env: BTreeMap<String, String>,
    pub priority: i64,
    pub estimate: Option<RawEstimate>,
    pub check: Option<Vec<String>>,
    pub check_timeout: Option<Duration>,
    pub check_retries: Option<u32>,
    pub sandbox: Option<SandboxMode>,
    pub sandbox_writable: Vec<String>,
    /// The concurrency group (`[plan.limits]`) of the stream's agents.
    pub group: Option<Sp<String>>,
    pub setup: Option<Vec<String>>,
    pub setup_timeout: Option<Duration>,
    pub present: Vec<&'static str>,
}

#[derive(Debug)]
pub struct RawTask {
    pub span: Span,
    /// `None` when the task has neither `prompt` nor `prompt_file` (already reported).
    pub prompt: Option<Prompt>,
    /// `prompt_file` as written, for checking it exists.
    pub prompt_file: Option<Sp<String>>,
    pub agent: Option<Vec<String>>,
    pub agent_program: Option<Sp<String>>,
    /// `agent` was written, well-formed or not.
    pub agent_given: bool,
    pub timeout: Option<Duration>,
    pub estimate: Option<RawEstimate>,
    pub group: Option<Sp<String>>,
}

/// An `estimate` as written: a duration (in seconds) or a plain number of units.
#[derive(Clone, Debug, PartialEq)]
pub struct RawEstimate {
    pub value: f64,
    pub is_duration: bool,
    pub span: Span,
}

pub const TOP_KEYS: &[&str] = &["plan", "stream"];
pub const PLAN_KEYS: &[&str] = &[
    "name",
    "base",
    "jobs",
    "agent",
    "merge",
    "sync",
    "shared",
    "reads",
    "timeout",
    "idle_timeout",
    "grace",
    "retries",
    "retry_on",
    "retry_backoff",
    "worktree_root",
    "env",
    "check",
    "check_timeout",
    "check_retries",
    "gate",
    "gate_batch",
    "sandbox",
    "sandbox_writable",
    "ports",
    "limits",
    "setup",
    "setup_timeout",
    "include",
];
pub const STREAM_KEYS: &[&str] = &[
    "name",
    "owns",
    "reads",
    "depends_on",
    "tasks",
    "task",
    "agent",
    "timeout",
    "idle_timeout",
    "retries",
    "env",
    "priority",
    "estimate",
    "check",
    "check_timeout",
    "check_retries",
    "sandbox",
    "sandbox_writable",
    "group",
    "setup",
    "setup_timeout",
];
pub const TASK_KEYS: &[&str] = &[
    "prompt",
    "prompt_file",
    "agent",
    "timeout",
    "estimate",
    "group",
];

/// The placeholders an `agent` argv may use.
pub const PLACEHOLDERS: &[&str] = &[
    "prompt",
    "prompt_file",
    "stream",
    "task",
    "task_index",
    "worktree",
    "slot",
    "port",
    "check_output",
    "check_output_file",
];

/// The outcome of reading the text: the raw values, and the problems found on the way.
pub struct Parsed {
    pub file: RawFile,
    /// Syntax errors.
    pub syntax: Diagnostics,
    /// Where the first syntax error that swallows what follows it is (an unclosed array, table
    /// header or multi-line string): past it, the recovered document is a guess.
    pub structural: Option<usize>,
    /// Problems with a value at its own place (type, format, unknown key).
    pub local: Diagnostics,
    /// Problems of absence (a required key missing), meaningless after a syntax error.
    pub missing: Diagnostics,
}

pub fn parse(text: &str) -> Parsed {
    let (root, errors) = DeTable::parse_recoverable(text);
    let (syntax, structural) = syntax_diagnostics(text, &root, errors);
    let mut walker = Walker {
        text,
        local: Diagnostics::default(),
        missing: Diagnostics::default(),
    };
    let file = walker.file(root.get_ref());
    Parsed {
        file,
        syntax,
        structural,
        local: walker.local,
        missing: walker.missing,
    }
}

/// Turns toml's recovered errors into diagnostics, dropping the cascade an unclosed array or
/// inline table causes (everything up to the end of the file parses as its items).
fn syntax_diagnostics(
    text: &str,
    root: &Spanned<DeTable<'_>>,
    errors: Vec<toml::de::Error>,
) -> (Diagnostics, Option<usize>) {
    let mut containers = Vec::new();
    collect_containers(root.get_ref(), &mut containers);
    let mut errors: Vec<(Span, String)> = errors
        .into_iter()
        .map(|e| {
            let span = e.span().unwrap_or(text.len()..text.len());
            (span, e.message().to_string())
        })
        .collect();
    errors.sort_by_key(|(span, _)| span.start);

    // Where the recovered document stops being trustworthy.
    let mut structural = errors
        .iter()
        .filter(|(_, m)| m.starts_with("unclosed") || m.starts_with("invalid multi-line"))
        .map(|(span, _)| span.start)
        .min();
    // An unclosed container: report it at its opening bracket, and drop what it swallowed.
    let mut swallowed: Vec<Span> = Vec::new();
    let mut diagnostics = Diagnostics::default();
    for (span, message) in &errors {
        if message.starts_with("unclosed array") || message.starts_with("unclosed inline table") {
            if let Some(container) = containers
                .iter()
                .filter(|c| c.end == span.end || c.end == span.start)
                .min_by_key(|c| c.start)
            {
                swallowed.push(container.clone());
                structural = Some(structural.map_or(container.start, |s| s.min(container.start)));
                let (what, closing) = if message.starts_with("unclosed array") {
                    ("this array is never closed", ']')
                } else {
                    ("this inline table is never closed", '}')
                };
                diagnostics.push(
                    Diagnostic::error(format!("TOML syntax: {what}"))
                        .at(container.start..container.start + 1, format!("expected a `{closing}` to close this"))
                        .help("everything after it was read as part of it, so other problems may hide here"),
                );
            }
        }
    }
    let mut lines_seen = Vec::new();
    for (span, message) in errors {
        if message.starts_with("unclosed array") || message.starts_with("unclosed inline table") {
            if swallowed
                .iter()
                .any(|c| c.end == span.end || c.end == span.start)
            {
                continue;
            }
        } else if !message.starts_with("invalid multi-line")
            && swallowed
                .iter()
                .any(|c| c.start < span.start && span.start <= c.end)
        {
            continue;
        }
        // One syntax error per line: the rest of a broken line is rarely worth reading.
        let line = text[..span.start.min(text.len())].matches('\n').count();
        if lines_seen.contains(&line) {
            continue;
        }
        lines_seen.push(line);
        let (message, label) = match message.split_once(", expected ") {
            Some((what, expected)) => (what.to_string(), format!("expected {expected}")),
            None => (message.clone(), message.clone()),
        };
        let label = if message == "duplicate key" {
            "this key is already set above".to_string()
        } else {
            label
        };
        diagnostics.push(Diagnostic::error(format!("TOML syntax: {message}")).at(span, label));
    }
    diagnostics.sort();
    (diagnostics, structural)
}

fn collect_containers(table: &DeTable<'_>, out: &mut Vec<Span>) {
    for (_, value) in table.iter() {
        collect_value(value, out);
    }
}

fn collect_value(value: &Spanned<DeValue<'_>>, out: &mut Vec<Span>) {
    match value.get_ref() {
        DeValue::Array(items) => {
            out.push(value.span());
            for item in items.iter() {
                collect_value(item, out);
            }
        }
        DeValue::Table(table) => {
            out.push(value.span());
            collect_containers(table, out);
        }
        _ => {}
    }
}

/// Where a table sits, for messages about its keys.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Place {
    Top,
    Plan,
    Stream,
    Task,
}

impl Place {
    fn describe(self) -> &'static str {
        match self {
            Place::Top => "at the top level",
            Place::Plan => "in [plan]",
            Place::Stream => "in [[stream]]",
            Place::Task => "in a task",
        }
    }

    fn keys(self) -> &'static [&'static str] {
        match self {
            Place::Top => TOP_KEYS,
            Place::Plan => PLAN_KEYS,
            Place::Stream => STREAM_KEYS,
            Place::Task => TASK_KEYS,
        }
    }
}

struct Walker<'t> {
    text: &'t str,
    local: Diagnostics,
    missing: Diagnostics,
}

type Entry<'a, 'i> = (
    &'a Spanned<std::borrow::Cow<'i, str>>,
    &'a Spanned<DeValue<'i>>,
);

impl Walker<'_> {
    fn error(&mut self, diagnostic: Diagnostic) {
        self.local.push(diagnostic);
    }

    fn file(&mut self, root: &DeTable<'_>) -> RawFile {
        let mut file = RawFile::default();
        for (key, value) in root.iter() {
            match key.get_ref().as_ref() {
                "plan" => file.plan_given = true,
                "stream" => file.streams_given = true,
                _ => {}
            }
            match key.get_ref().as_ref() {
                "plan" => match value.get_ref() {
                    DeValue::Table(table) => file.plan = Some(self.plan(table, value.span())),
                    other => self.error(
                        Diagnostic::error(format!(
                            "`plan` must be a table, found {}",
                            a_type(other)
                        ))
                        .at(key.span(), "expected a `[plan]` table")
                        .help("write the plan settings under a single `[plan]` header"),
                    ),
                },
                "stream" => match value.get_ref() {
                    DeValue::Array(items) => {
                        for item in items.iter() {
                            match item.get_ref() {
                                DeValue::Table(table) => {
                                    file.streams.push(self.stream(table, item.span()))
                                }
                                other => self.error(
                                    Diagnostic::error(format!(
                                        "each stream must be a table, found {}",
                                        a_type(other)
                                    ))
                                    .at(item.span(), "expected a table"),
                                ),
                            }
                        }
                    }
                    DeValue::Table(_) => self.error(
                        Diagnostic::error("`[stream]` must be written `[[stream]]`")
                            .at(value.span(), "a single table, not an array of tables")
                            .help("each stream is one `[[stream]]` table (double brackets)"),
                    ),
                    other => self.error(
                        Diagnostic::error(format!(
                            "`stream` must be an array of tables, found {}",
                            a_type(other)
                        ))
                        .at(value.span(), "expected `[[stream]]` tables"),
                    ),
                },
                _ => {
                    self.unknown_key((key, value), Place::Top);
                }
            }
        }
        file
    }

    /// Reports an unknown key; returns the known key it is probably a typo of.
    fn unknown_key(&mut self, (key, _value): Entry<'_, '_>, place: Place) -> Option<&'static str> {
        let name = key.get_ref().as_ref();
        let mut diagnostic =
            Diagnostic::error(format!("unknown key `{name}` {}", place.describe()))
                .at(key.span(), "unknown key");
        let best = suggest(name, place.keys());
        let help = if let Some(best) = best {
            Some(format!("did you mean `{best}`?"))
        } else if place != Place::Plan && PLAN_KEYS.contains(&name) && place != Place::Top {
            Some(format!("`{name}` is a [plan] setting"))
        } else if place == Place::Plan && STREAM_KEYS.contains(&name) {
            Some(format!("`{name}` belongs in a [[stream]] table"))
        } else if place == Place::Task && STREAM_KEYS.contains(&name) {
            Some(format!(
                "keys after a `[[stream.task]]` header belong to that task: move `{name}` above the stream's first `[[stream.task]]`"
            ))
        } else if place == Place::Top && (PLAN_KEYS.contains(&name) || STREAM_KEYS.contains(&name))
        {
            Some(format!(
                "keys before the first header are outside any table: put `{name}` under `[plan]` or `[[stream]]`"
            ))
        } else {
            Some(format!("expected one of: {}", place.keys().join(", ")))
        };
        if let Some(help) = help {
            diagnostic = diagnostic.help(help);
        }
        self.error(diagnostic);
        best
    }

    fn plan(&mut self, table: &DeTable<'_>, header: Span) -> RawPlan {
        let mut plan = RawPlan {
            header,
            ..RawPlan::default()
        };
        for entry in table.iter() {
            let (key, _) = entry;
            let name = key.get_ref().as_ref();
            if let Some(known) = PLAN_KEYS.iter().find(|k| **k == name) {
                plan.present.push(known);
            }
            match name {
                "name" => plan.name = self.string(entry),
                "base" => plan.base = self.string(entry),
                "jobs" => {
                    plan.jobs = self
                        .integer(entry, 1, i64::from(u16::MAX))
                        .map(|n| n as usize)
                }
                "agent" => (plan.agent, plan.agent_program) = self.agent(entry).unzip(),
                "merge" => {
                    plan.merge = self.choice(entry, &["rebase", "merge", "squash"]).map(|i| {
                        [
                            MergeStrategy::Rebase,
                            MergeStrategy::Merge,
                            MergeStrategy::Squash,
                        ][i]
                    })
                }
                "sync" => {
                    plan.sync = self
                        .choice(entry, &["task", "stream"])
                        .map(|i| [SyncPoint::Task, SyncPoint::Stream][i])
                }
                "shared" => plan.shared = self.string_array(entry).unwrap_or_default(),
                "reads" => plan.reads = self.string_array(entry).unwrap_or_default(),
                "timeout" => plan.timeout = self.duration(entry, false),
                "idle_timeout" => plan.idle_timeout = self.duration(entry, false),
                "grace" => plan.grace = self.duration(entry, true),
                "retries" => plan.retries = self.integer(entry, 0, 100).map(|n| n as u32),
                "retry_on" => (plan.retry_on, plan.retry_on_output) = self.retry_on(entry),
                "retry_backoff" => plan.retry_backoff = self.duration(entry, true),
                "worktree_root" => {
                    plan.worktree_root = self.string(entry).and_then(|s| {
                        if s.value.is_empty() {
                            self.error(
                                Diagnostic::error("`worktree_root` is empty")
                                    .at(s.span, "expected a directory"),
                            );
                            None
                        } else {
                            Some(s)
                        }
                    })
                }
                "env" => plan.env = self.env(entry),
                "check" => plan.check = self.command(entry),
                "check_timeout" => plan.check_timeout = self.duration(entry, false),
                "check_retries" => {
                    plan.check_retries = self.integer(entry, 0, 100).map(|n| n as u32)
                }
                "gate" => plan.gate = self.command(entry),
                "gate_batch" => {
                    plan.gate_batch = self.integer(entry, 1, 10_000).map(|n| n as usize)
                }
                "sandbox" => plan.sandbox = self.sandbox(entry),
                "sandbox_writable" => plan.sandbox_writable = self.writable_paths(entry),
                "ports" => plan.ports = self.ports(entry),
                "limits" => plan.limits = self.limits(entry),
                "setup" => plan.setup = self.setup(entry),
                "include" => {
                    plan.include = self
                        .string_array(entry)
                        .unwrap_or_default()
                        .into_iter()
                        .map(|p| p.value)
                        .collect()
                }
                "setup_timeout" => plan.setup_timeout = self.duration(entry, false),
                _ => {
                    if let Some(meant) = self.unknown_key(entry, Place::Plan) {
                        plan.present.push(meant);
                    }
                }
            }
        }
        if !plan.present.contains(&"name") {
            self.missing.push(
                Diagnostic::error("[plan] has no `name`")
                    .at(plan.header.clone(), "`name` is required here")
                    .help("add `name = \"...\"`: it names the run's branches, `streams/<name>/<stream>`"),
            );
        }
        plan
    }

    fn stream(&mut self, table: &DeTable<'_>, header: Span) -> RawStream {
        let mut stream = RawStream {
            header,
            ..RawStream::default()
        };
        // Where `tasks = [...]` was written, to point at it when the stream ends up with none.
        let mut tasks_span = None;
        for entry in table.iter() {
            let (key, value) = entry;
            let name = key.get_ref().as_ref();
            if let Some(known) = STREAM_KEYS.iter().find(|k| **k == name) {
                stream.present.push(known);
            }
            match name {
                "name" => stream.name = self.string(entry),
                "owns" => {
                    if let Some(items) = self.string_array(entry) {
                        if items.is_empty() {
                            self.error(
                                Diagnostic::error("`owns` is empty: a stream must own something")
                                    .at(value.span(), "no patterns")
                                    .help("list the paths this stream may change, e.g. `owns = [\"src/api/**\"]`"),
                            );
                        }
                        stream.owns = Some(Sp {
                            value: items,
                            span: value.span(),
                        });
                    }
                }
                "depends_on" => stream.depends_on = self.string_array(entry).unwrap_or_default(),
                "reads" => stream.reads = self.string_array(entry).unwrap_or_default(),
                "tasks" => match value.get_ref() {
                    DeValue::Array(items) => {
                        tasks_span = Some(value.span());
                        for item in items.iter() {
                            match item.get_ref() {
                                DeValue::String(text) => {
                                    if text.trim().is_empty() {
                                        self.error(Diagnostic::error("empty task").at(item.span(), "this prompt is empty"));
                                    }
                                    stream.tasks.push(RawTask {
                                        span: item.span(),
                                        prompt: Some(Prompt::Text(text.to_string())),
                                        prompt_file: None,
                                        agent: None,
                                        agent_program: None,
                                        agent_given: false,
                                        timeout: None,
                                        estimate: None,
                                        group: None,
                                    });
                                }
                                DeValue::Table(table) => {
                                    let task = self.task(table, item.span());
                                    stream.tasks.push(task);
                                }
                                other => self.error(
                                    Diagnostic::error(format!(
                                        "wrong type for a task: expected a string or a table, found {}",
                                        a_type(other)
                                    ))
                                    .at(item.span(), "expected a prompt string"),
                                ),
                            }
                        }
                    }
                    other => self.wrong_type(entry, "an array of prompts", other),
                },
                "task" => match value.get_ref() {
                    DeValue::Array(items) => {
                        for item in items.iter() {
                            match item.get_ref() {
                                DeValue::Table(table) => {
                                    let task = self.task(table, item.span());
                                    stream.tasks.push(task);
                                }
                                other => self.error(
                                    Diagnostic::error(format!(
                                        "wrong type for a task: expected a table, found {}",
                                        a_type(other)
                                    ))
                                    .at(item.span(), "expected a table"),
                                ),
                            }
                        }
                    }
                    DeValue::Table(_) => self.error(
                        Diagnostic::error("`[stream.task]` must be written `[[stream.task]]`")
                            .at(value.span(), "a single table, not an array of tables"),
                    ),
                    other => self.wrong_type(entry, "`[[stream.task]]` tables", other),
                },
                "agent" => (stream.agent, stream.agent_program) = self.agent(entry).unzip(),
                "timeout" => stream.timeout = self.duration(entry, false),
                "idle_timeout" => stream.idle_timeout = self.duration(entry, false),
                "retries" => stream.retries = self.integer(entry, 0, 100).map(|n| n as u32),
                "env" => stream.env = self.env(entry),
                "priority" => {
                    stream.priority = self.integer(entry, -1_000_000, 1_000_000).unwrap_or(0)
                }
                "estimate" => stream.estimate = self.estimate(entry),
                "check" => stream.check = self.command(entry),
                "check_timeout" => stream.check_timeout = self.duration(entry, false),
                "check_retries" => {
                    stream.check_retries = self.integer(entry, 0, 100).map(|n| n as u32)
                }
                "sandbox" => stream.sandbox = self.sandbox(entry),
                "sandbox_writable" => stream.sandbox_writable = self.writable_paths(entry),
                "group" => stream.group = self.string(entry),
                "setup" => stream.setup = self.setup(entry),
                "setup_timeout" => stream.setup_timeout = self.duration(entry, false),
                _ => {
                    if let Some(meant) = self.unknown_key(entry, Place::Stream) {
                        stream.present.push(meant);
                    }
                }
            }
        }
        // Tasks in the order they were written, whichever syntax was used.
        stream.tasks.sort_by_key(|t| t.span.start);
        let missing = |key: &str| !stream.present.contains(&key);
        if missing("name") {
            self.missing.push(
                Diagnostic::error("stream has no `name`")
                    .at(stream.header.clone(), "`name` is required here")
                    .help("add `name = \"...\"`; it names the stream's branch"),
            );
        }
        if missing("owns") {
            self.missing.push(
                Diagnostic::error(format!(
                    "{} has no `owns`: a stream must own something",
                    describe_stream(&stream)
                ))
                .at(stream.header.clone(), "`owns` is required here")
                .help("list the paths this stream may change, e.g. `owns = [\"src/api/**\"]`"),
            );
        }
        if let (Some(span), true) = (tasks_span, stream.tasks.is_empty()) {
            // An empty stream would be integrated without doing anything, and the schedule
            // would count it as negative work.
            self.error(
                Diagnostic::error(format!("{} has no tasks", describe_stream(&stream)))
                    .at(span, "no tasks in this list")
                    .help(
                        "add at least one prompt, e.g. `tasks = [\"...\"]`, or remove the stream",
                    ),
            );
        }
        if missing("tasks") && missing("task") {
            self.missing.push(
                Diagnostic::error(format!("{} has no tasks", describe_stream(&stream)))
                    .at(stream.header.clone(), "no `tasks` in this stream")
                    .help("add `tasks = [\"...\"]` or `[[stream.task]]` tables: each task is one run of the agent"),
            );
        }
        stream
    }

    fn task(&mut self, table: &DeTable<'_>, span: Span) -> RawTask {
        let mut task = RawTask {
            span: span.clone(),
            prompt: None,
            prompt_file: None,
            agent: None,
            agent_program: None,
            agent_given: false,
            timeout: None,
            estimate: None,
            group: None,
        };
        let mut prompt: Option<Sp<String>> = None;
        let mut present = Vec::new();
        for entry in table.iter() {
            let (key, _) = entry;
            let name = key.get_ref().as_ref();
            present.push(name.to_string());
            match name {
                "prompt" => {
                    prompt = self.string(entry);
                    if let Some(p) = &prompt
                        && p.value.trim().is_empty()
                    {
                        self.error(
                            Diagnostic::error("empty task")
                                .at(p.span.clone(), "this prompt is empty"),
                        );
                    }
                }
                "prompt_file" => {
                    task.prompt_file = self.string(entry);
                    if let Some(p) = &task.prompt_file
                        && p.value.is_empty()
                    {
                        self.error(
                            Diagnostic::error("`prompt_file` is empty")
                                .at(p.span.clone(), "expected a file name"),
                        );
                    }
                }
                "agent" => {
                    task.agent_given = true;
                    (task.agent, task.agent_program) = self.agent(entry).unzip();
                }
                "timeout" => task.timeout = self.duration(entry, false),
                "estimate" => task.estimate = self.estimate(entry),
                "group" => task.group = self.string(entry),
                _ => {
                    if let Some(meant) = self.unknown_key(entry, Place::Task) {
                        present.push(meant.to_string());
                    }
                }
            }
        }
        let has = |key: &str| present.iter().any(|k| k == key);
        match (has("prompt"), has("prompt_file")) {
            (true, true) => {
                let at = task.prompt_file.as_ref().map(|p| p.span.clone()).unwrap_or(span);
                self.error(
                    Diagnostic::error("a task has both `prompt` and `prompt_file`")
                        .at(at, "remove one of the two")
                        .help("a task's prompt is either written inline or read from a file"),
                );
            }
            (false, false) => self.missing.push(
                Diagnostic::error("task has no prompt")
                    .at(span, "this task has neither `prompt` nor `prompt_file`")
                    .help("add `prompt = \"...\"`, or `prompt_file = \"...\"` (relative to the plan file)"),
            ),
            _ => {}
        }
        task.prompt = match (prompt, &task.prompt_file) {
            (Some(p), _) => Some(Prompt::Text(p.value)),
            (None, Some(f)) => Some(Prompt::File(f.value.clone().into())),
            _ => None,
        };
        task
    }

    fn wrong_type(&mut self, (key, value): Entry<'_, '_>, expected: &str, found: &DeValue<'_>) {
        let name = key.get_ref();
        let mut diagnostic = Diagnostic::error(format!(
            "wrong type for `{name}`: expected {expected}, found {}",
            a_type(found)
        ))
        .at(value.span(), format!("expected {expected}"));
        if let (DeValue::String(s), true) = (found, expected.starts_with("an array")) {
            diagnostic = diagnostic.help(format!("write `{name} = [\"{s}\"]`"));
        }
        self.error(diagnostic);
    }

    fn string(&mut self, entry: Entry<'_, '_>) -> Option<Sp<String>> {
        let (_, value) = entry;
        match value.get_ref() {
            DeValue::String(s) => Some(Sp {
                value: s.to_string(),
                span: value.span(),
            }),
            other => {
                self.wrong_type(entry, "a string", other);
                None
            }
        }
    }

    fn string_array(&mut self, entry: Entry<'_, '_>) -> Option<Vec<Sp<String>>> {
        let (key, value) = entry;
        let DeValue::Array(items) = value.get_ref() else {
            self.wrong_type(entry, "an array of strings", value.get_ref());
            return None;
        };
        Some(self.strings_in(key.get_ref(), items))
    }

    fn strings_in(&mut self, key: &str, items: &DeArray<'_>) -> Vec<Sp<String>> {
        let mut out = Vec::new();
        for item in items.iter() {
            match item.get_ref() {
                DeValue::String(s) => out.push(Sp {
                    value: s.to_string(),
                    span: item.span(),
                }),
                other => self.error(
                    Diagnostic::error(format!(
                        "wrong type in `{key}`: expected a string, found {}",
                        a_type(other)
                    ))
                    .at(item.span(), "expected a string"),
                ),
            }
        }
        out
    }

    /// An agent argv: a non-empty array of strings, placeholders known. Also returns the
    /// program, with its span.
    fn agent(&mut self, entry: Entry<'_, '_>) -> Option<(Vec<String>, Sp<String>)> {
        let (_, value) = entry;
        let items = match value.get_ref() {
            DeValue::Array(items) => self.strings_in("agent", items),
            DeValue::String(s) => {
                let words: Vec<String> = s.split_whitespace().map(|w| format!("{w:?}")).collect();
                self.error(
                    Diagnostic::error("wrong type for `agent`: expected an array of strings (an argv), found a string")
                        .at(value.span(), "expected an array")
                        .help(format!(
                            "the agent runs without a shell, one string per argument: `agent = [{}]`",
                            words.join(", ")
                        )),
                );
                return None;
            }
            other => {
                self.wrong_type(entry, "an array of strings", other);
                return None;
            }
        };
        if items.is_empty() {
            self.error(
                Diagnostic::error("`agent` is empty")
                    .at(value.span(), "expected the program and its arguments")
                    .help("e.g. `agent = [\"claude\", \"-p\", \"{prompt}\"]`"),
            );
            return None;
        }
        if items[0].value.trim().is_empty() {
            self.error(
                Diagnostic::error("`agent` names no program")
                    .at(items[0].span.clone(), "expected a program name"),
            );
        }
        for item in &items {
            for name in placeholders(&item.value) {
                if PLACEHOLDERS.contains(&name) {
                    continue;
                }
                // Point at the placeholder itself when the source spells it as the value does
                // (no escapes in the way); otherwise at the whole argument.
                let written = format!("{{{name}}}");
                let span = self
                    .text
                    .get(item.span.clone())
                    .and_then(|source| source.find(&written))
                    .map(|at| item.span.start + at..item.span.start + at + written.len())
                    .unwrap_or_else(|| item.span.clone());
                let help = match suggest(name, PLACEHOLDERS) {
                    Some(best) => format!("did you mean `{{{best}}}`?"),
                    None => format!(
                        "the placeholders are {}",
                        PLACEHOLDERS
                            .iter()
                            .map(|p| format!("{{{p}}}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                };
                self.error(
                    Diagnostic::error(format!("unknown placeholder `{{{name}}}` in `agent`"))
                        .at(span, "unknown placeholder")
                        .help(help),
                );
            }
        }
        let program = items[0].clone();
        Some((items.into_iter().map(|s| s.value).collect(), program))
    }

    /// A `check` or `gate`: an argv (no shell, no placeholders) naming a program.
    fn command(&mut self, entry: Entry<'_, '_>) -> Option<Vec<String>> {
        let (key, value) = entry;
        let key = key.get_ref().as_ref();
        let items = match value.get_ref() {
            DeValue::Array(items) => self.strings_in(key, items),
            DeValue::String(s) => {
                let words: Vec<String> = s.split_whitespace().map(|w| format!("{w:?}")).collect();
                self.error(
                    Diagnostic::error(format!(
                        "wrong type for `{key}`: expected an array of strings (an argv), found a string"
                    ))
                    .at(value.span(), "expected an array")
                    .help(format!(
                        "it runs without a shell, one string per argument: `{key} = [{}]`",
                        words.join(", ")
                    )),
                );
                return None;
            }
            other => {
                self.wrong_type(entry, "an array of strings", other);
                return None;
            }
        };
        if items.first().is_none_or(|p| p.value.trim().is_empty()) {
            self.error(
                Diagnostic::error(format!("`{key}` names no program"))
                    .at(value.span(), "expected the program and its arguments")
                    .help(format!("e.g. `{key} = [\"cargo\", \"test\"]`")),
            );
            return None;
        }
        Some(items.into_iter().map(|s| s.value).collect())
    }

    fn integer(&mut self, entry: Entry<'_, '_>, min: i64, max: i64) -> Option<i64> {
        let (key, value) = entry;
        let expected = if min == 1 {
            "a positive integer".to_string()
        } else if min == 0 {
            "a non-negative integer".to_string()
        } else {
            "an integer".to_string()
        };
        let DeValue::Integer(n) = value.get_ref() else {
            self.wrong_type(entry, &expected, value.get_ref());
            return None;
        };
        match i64::from_str_radix(n.as_str(), n.radix()) {
            Ok(n) if (min..=max).contains(&n) => Some(n),
            _ => {
                self.error(
                    Diagnostic::error(format!(
                        "`{}` is out of range: expected {min} to {max}",
                        key.get_ref()
                    ))
                    .at(value.span(), format!("expected {expected}")),
                );
                None
            }
        }
    }

    /// `retry_on`: exit codes (1 to 255) and strings looked for in the agent's last lines.
    fn retry_on(&mut self, entry: Entry<'_, '_>) -> (Vec<i32>, Vec<String>) {
        let (_, value) = entry;
        let DeValue::Array(items) = value.get_ref() else {
            self.wrong_type(
                entry,
                "an array of exit codes and output patterns",
                value.get_ref(),
            );
            return (Vec::new(), Vec::new());
        };
        let (mut codes, mut patterns) = (Vec::new(), Vec::new());
        for item in items.iter() {
            match item.get_ref() {
                DeValue::String(text) if !text.trim().is_empty() => {
                    patterns.push(text.to_string())
                }
                DeValue::String(_) => self.error(
                    Diagnostic::error("`retry_on` has an empty pattern")
                        .at(item.span(), "this would match any output")
                        .help("write words the agent prints when it is worth retrying, e.g. \"rate limit\""),
                ),
                DeValue::Integer(n) => match i64::from_str_radix(n.as_str(), n.radix()) {
                    Ok(code @ 1..=255) => codes.push(code as i32),
                    _ => self.error(
                        Diagnostic::error("`retry_on` lists exit codes from 1 to 255")
                            .at(item.span(), "expected an exit code from 1 to 255"),
                    ),
                },
                other => self.error(
                    Diagnostic::error(format!(
                        "`retry_on` lists exit codes and output patterns, found {}",
                        a_type(other)
                    ))
                    .at(item.span(), "expected an exit code or a string"),
                ),
            }
        }
        (codes, patterns)
    }

    /// `setup`: an argv (no shell), like `agent`.
    fn setup(&mut self, entry: Entry<'_, '_>) -> Option<Vec<String>> {
        let (_, value) = entry;
        let DeValue::Array(array) = value.get_ref() else {
            self.wrong_type(entry, "an array of strings (an argv)", value.get_ref());
            return None;
        };
        let items = self.strings_in("setup", array);
        if items.first().is_none_or(|p| p.value.trim().is_empty()) {
            self.error(
                Diagnostic::error("`setup` names no program")
                    .at(value.span(), "expected the program and its arguments")
                    .help("e.g. `setup = [\"npm\", \"ci\"]`, or `[\"sh\", \"-c\", \"...\"]` for a shell"),
            );
            return None;
        }
        Some(items.into_iter().map(|i| i.value).collect())
    }

    /// `ports = { base = 20000, per_slot = 10 }`: each slot's first port and how many it has.
    fn ports(&mut self, entry: Entry<'_, '_>) -> Option<(u16, u16)> {
        let (_, value) = entry;
        let DeValue::Table(table) = value.get_ref() else {
            self.wrong_type(
                entry,
                "a table `{ base = 20000, per_slot = 10 }`",
                value.get_ref(),
            );
            return None;
        };
        let (mut base, mut per_slot) = (
            Some(i64::from(crate::plan::DEFAULT_PORTS.0)),
            Some(i64::from(crate::plan::DEFAULT_PORTS.1)),
        );
        for sub in table.iter() {
            match sub.0.get_ref().as_ref() {
                "base" => base = self.integer(sub, 1024, 65535),
                "per_slot" => per_slot = self.integer(sub, 1, 1000),
                other => self.error(
                    Diagnostic::error(format!("unknown key `{other}` in `ports`"))
                        .at(sub.0.span(), "unknown key")
                        .help("`ports` has `base` (the first port of slot 0) and `per_slot`"),
                ),
            }
        }
        Some((base? as u16, per_slot? as u16))
    }

    /// `[plan.limits]`: a table of group names to the most agents of the group at once.
    fn limits(&mut self, entry: Entry<'_, '_>) -> Vec<(Sp<String>, usize)> {
        let (_, value) = entry;
        let DeValue::Table(table) = value.get_ref() else {
            self.wrong_type(entry, "a table such as `{ claude = 2 }`", value.get_ref());
            return Vec::new();
        };
        let mut limits = Vec::new();
        for sub in table.iter() {
            if let Some(n) = self.integer(sub, 1, i64::from(u16::MAX)) {
                let name = Sp {
                    value: sub.0.get_ref().to_string(),
                    span: sub.0.span(),
                };
                limits.push((name, n as usize));
            }
        }
        limits
    }

    fn choice(&mut self, entry: Entry<'_, '_>, choices: &[&str]) -> Option<usize> {
        let (key, value) = entry;
        let expected = choices
            .iter()
            .map(|c| format!("\"{c}\""))
            .collect::<Vec<_>>()
            .join(", ");
        let DeValue::String(s) = value.get_ref() else {
            self.wrong_type(entry, &format!("one of {expected}"), value.get_ref());
            return None;
        };
        if let Some(i) = choices.iter().position(|c| *c == s.as_ref()) {
            return Some(i);
        }
        let mut diagnostic = Diagnostic::error(format!("invalid `{}`: \"{s}\"", key.get_ref()))
            .at(value.span(), format!("expected one of {expected}"));
        if let Some(best) = suggest(s, choices) {
            diagnostic = diagnostic.help(format!("did you mean \"{best}\"?"));
        }
        self.error(diagnostic);
        None
    }

    fn sandbox(&mut self, entry: Entry<'_, '_>) -> Option<SandboxMode> {
        self.choice(entry, &["off", "auto", "landlock"])
            .map(|i| [SandboxMode::Off, SandboxMode::Auto, SandboxMode::Landlock][i])
    }

    /// `sandbox_writable`: absolute paths or paths under the home directory (`~/...`). A
    /// relative path would depend on where streams runs, and `~user` on another account.
    fn writable_paths(&mut self, entry: Entry<'_, '_>) -> Vec<String> {
        let Some(items) = self.string_array(entry) else {
            return Vec::new();
        };
        let mut paths = Vec::new();
        for item in items {
            let path = item.value.as_str();
            if path == "~" || path.starts_with("~/") || path.starts_with('/') {
                paths.push(item.value);
                continue;
            }
            let (label, help) = if path.is_empty() {
                (
                    "empty",
                    "write a directory, e.g. `\"~/.cache\"`".to_string(),
                )
            } else if path.starts_with('~') {
                (
                    "another user's home",
                    "only your own home is expanded: write `~/...` or an absolute path".to_string(),
                )
            } else {
                (
                    "a relative path",
                    "write an absolute path, or `~/...` for one under your home".to_string(),
                )
            };
            self.error(
                Diagnostic::error(format!(
                    "`sandbox_writable` needs absolute paths or `~/...`, found \"{path}\""
                ))
                .at(item.span, label)
                .help(help),
            );
        }
        paths
    }

    fn duration(&mut self, entry: Entry<'_, '_>, zero_ok: bool) -> Option<Duration> {
        let (key, value) = entry;
        let text = match value.get_ref() {
            DeValue::String(s) => s,
            DeValue::Integer(n) => {
                self.error(
                    Diagnostic::error(format!(
                        "wrong type for `{}`: expected a duration, found an integer",
                        key.get_ref()
                    ))
                    .at(value.span(), "expected a duration string")
                    .help(format!(
                        "durations carry a unit: write `{} = \"{}\"`",
                        key.get_ref(),
                        seconds_text(n.as_str())
                    )),
                );
                return None;
            }
            other => {
                self.wrong_type(entry, "a duration such as \"10m\"", other);
                return None;
            }
        };
        match humantime::parse_duration(text) {
            Ok(d) if d.is_zero() && !zero_ok => {
                self.error(
                    Diagnostic::error(format!("`{}` must be longer than zero", key.get_ref()))
                        .at(value.span(), "zero")
                        .help("leave the key out for no limit"),
                );
                None
            }
            Ok(d) => Some(d),
            Err(err) => {
                let mut diagnostic = Diagnostic::error(format!(
                    "invalid duration for `{}`: \"{text}\"",
                    key.get_ref()
                ))
                .at(
                    value.span(),
                    "expected a number and a unit, such as \"10m\" or \"1h30m\"",
                );
                if let humantime::DurationError::UnknownUnit { unit, .. } = &err {
                    diagnostic = diagnostic.help(format!(
                        "`{unit}` is not a unit: use s, m, h or d (or sec, min, hours, days)"
                    ));
                }
                self.error(diagnostic);
                None
            }
        }
    }

    fn estimate(&mut self, entry: Entry<'_, '_>) -> Option<RawEstimate> {
        let (_, value) = entry;
        let span = value.span();
        let positive = |this: &mut Walker<'_>, n: f64| {
            if n > 0.0 && n.is_finite() {
                Some(n)
            } else {
                this.error(
                    Diagnostic::error("`estimate` must be more than zero")
                        .at(span.clone(), "expected a positive number or a duration"),
                );
                None
            }
        };
        let (n, is_duration) = match value.get_ref() {
            DeValue::Integer(n) => (
                positive(
                    self,
                    i64::from_str_radix(n.as_str(), n.radix()).unwrap_or(0) as f64,
                )?,
                false,
            ),
            DeValue::Float(f) => (
                positive(self, f.as_str().parse::<f64>().unwrap_or(0.0))?,
                false,
            ),
            DeValue::String(_) => (self.duration(entry, false)?.as_secs_f64(), true),
            other => {
                self.wrong_type(entry, "a duration (\"10m\") or a number of units", other);
                return None;
            }
        };
        Some(RawEstimate {
            value: n,
            is_duration,
            span,
        })
    }

    fn env(&mut self, entry: Entry<'_, '_>) -> BTreeMap<String, String> {
        let (_, value) = entry;
        let mut env = BTreeMap::new();
        let DeValue::Table(table) = value.get_ref() else {
            self.wrong_type(entry, "a table of strings", value.get_ref());
            return env;
        };
        for (key, value) in table.iter() {
            let name = key.get_ref().as_ref();
            let valid = !name.is_empty()
                && !name.starts_with(|c: char| c.is_ascii_digit())
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid {
                self.error(
                    Diagnostic::error(format!("invalid environment variable name `{name}`")).at(
                        key.span(),
                        "expected letters, digits and `_`, not starting with a digit",
                    ),
                );
                continue;
            }
            if let Some(why) = crate::git_env::refused_in_plan(name) {
                self.error(
                    Diagnostic::error(format!("`env` may not set `{name}`: {why}"))
                        .at(key.span(), "not allowed in a plan")
                        .help("streams gives every agent its own workspace and repository: remove this variable"),
                );
                continue;
            }
            match value.get_ref() {
                DeValue::String(s) => {
                    env.insert(name.to_string(), s.to_string());
                }
                other => {
                    let mut diagnostic = Diagnostic::error(format!(
                        "wrong type for env `{name}`: expected a string, found {}",
                        a_type(other)
                    ))
                    .at(value.span(), "expected a string");
                    if matches!(
                        other,
                        DeValue::Integer(_) | DeValue::Float(_) | DeValue::Boolean(_)
                    ) {
                        let text = match other {
                            DeValue::Integer(n) => n.to_string(),
                            DeValue::Float(f) => f.to_string(),
                            DeValue::Boolean(b) => b.to_string(),
                            _ => unreachable!(),
                        };
                        diagnostic = diagnostic.help(format!("quote it: `{name} = \"{text}\"`"));
                    }
                    self.error(diagnostic);
                }
            }
        }
        env
    }
}

fn describe_stream(stream: &RawStream) -> String {
    match &stream.name {
        Some(name) => format!("stream `{}`", name.value),
        None => "stream".to_string(),
    }
}

/// A whole number of seconds as the duration one would write: 600 -> "10m", 90 -> "90s".
fn seconds_text(n: &str) -> String {
    match n.parse::<u64>() {
        Ok(n) if n > 0 && n % 3600 == 0 => format!("{}h", n / 3600),
        Ok(n) if n > 0 && n % 60 == 0 => format!("{}m", n / 60),
        _ => format!("{n}s"),
    }
}

/// "a string", "an integer", "a table", ...
pub fn a_type(value: &DeValue<'_>) -> &'static str {
    match value {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a datetime",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

/// The `{name}` placeholders in an argument.
pub fn placeholders(arg: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let bytes = arg.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'{' {
            let rest = &arg[i + 1..];
            let len = rest
                .bytes()
                .take_while(|b| b.is_ascii_lowercase() || *b == b'_')
                .count();
            if len > 0 && rest.as_bytes().get(len) == Some(&b'}') {
                out.push(&rest[..len]);
                i += len + 2;
                continue;
            }
        }
        i += 1;
    }
    out
}

/// The known word closest to `word`, if one is close enough to be a likely typo.
pub fn suggest<'a>(word: &str, known: &[&'a str]) -> Option<&'a str> {
    let normalized = word.to_ascii_lowercase().replace('-', "_");
    known
        .iter()
        .map(|k| (strsim::jaro_winkler(&normalized, k), *k))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, k)| k)
}
