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
use toml::de::{DeTable, DeValue};

use super::diagnostic::{Diagnostic, Diagnostics, Span};
use super::model::{MergeStrategy, OnConflict, Prompt, Resolver, SandboxMode, SyncPoint};
use crate::agent::AgentSpec;

mod sections;
mod values;

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
    /// `[prices]`: per model, USD per million tokens.
    pub prices: Vec<(String, super::model::Price)>,
}

#[derive(Debug, Default)]
pub struct RawPlan {
    /// The `[plan]` header.
    pub header: Span,
    pub name: Option<Sp<String>>,
    pub base: Option<Sp<String>>,
    pub jobs: Option<usize>,
    /// The settings every stream takes unless it sets its own.
    pub settings: RawSettings,
    pub merge: Option<MergeStrategy>,
    pub sync: Option<SyncPoint>,
    pub shared: Vec<Sp<String>>,
    pub grace: Option<Duration>,
    pub retry_on: Vec<i32>,
    /// `retry_on` strings: looked for in the last lines of a failed agent's output.
    pub retry_on_output: Vec<String>,
    pub retry_backoff: Option<Duration>,
    /// `limit_wait`: how long a task waits for a usage limit to reset.
    pub limit_wait: Option<Duration>,
    pub worktree_root: Option<Sp<String>>,
    pub gate: Option<Vec<String>>,
    pub gate_batch: Option<usize>,
    pub gate_retries: Option<u32>,
    pub on_conflict: Option<OnConflict>,
    pub resolve: Option<Resolver>,
    /// The program `resolve`'s agent starts, where it is written (for the check that it can
    /// be found).
    pub resolve_program: Option<Sp<String>>,
    pub resolve_margin: Option<usize>,
    pub notify: Option<Vec<String>>,
    pub notify_timeout: Option<Duration>,
    /// `include`: gitignore-style patterns of ignored files copied into new workspaces.
    pub include: Vec<String>,
    /// `ports = { base, per_slot }`.
    pub ports: Option<(u16, u16)>,
    /// `[plan.limits]`: most agents of a group running at once, and where each was written.
    pub limits: Vec<(Sp<String>, usize)>,
    /// `budget`: what every task of the plan may spend in all.
    pub budget: Option<super::model::Budget>,
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
    pub depends_on: Vec<Sp<String>>,
    pub tasks: Vec<RawTask>,
    /// The stream's own settings, over the plan's.
    pub settings: RawSettings,
    pub priority: i64,
    pub estimate: Option<RawEstimate>,
    /// The concurrency group (`[plan.limits]`) of the stream's agents.
    pub group: Option<Sp<String>>,
    pub budget: Option<super::model::Budget>,
    pub present: Vec<&'static str>,
}

/// The settings `[plan]` and `[[stream]]` both take, read the same way: the plan's hold for
/// every stream, a stream's own for it (`validate` says how they combine).
#[derive(Debug, Default)]
pub struct RawSettings {
    pub agent: Option<AgentSpec>,
    /// The agent's program (`agent[0]`) and where it was written.
    pub agent_program: Option<Sp<String>>,
    /// Patterns the agent reads besides what its stream owns and `shared` (a sparse workspace).
    pub reads: Vec<Sp<String>>,
    pub timeout: Option<Duration>,
    pub idle_timeout: Option<Duration>,
    pub retries: Option<u32>,
    pub env: BTreeMap<String, String>,
    pub check: Option<Vec<String>>,
    pub check_timeout: Option<Duration>,
    pub check_retries: Option<u32>,
    pub sandbox: Option<SandboxMode>,
    pub sandbox_writable: Vec<String>,
    /// `setup`: the argv run in a new workspace before its first agent.
    pub setup: Option<Vec<String>>,
    pub setup_timeout: Option<Duration>,
    /// `allow_empty`: a task meant to change nothing (a review, an audit) may end without
    /// changes.
    pub allow_empty: Option<bool>,
}

#[derive(Debug)]
pub struct RawTask {
    pub span: Span,
    /// `None` when the task has neither `prompt` nor `prompt_file` (already reported).
    pub prompt: Option<Prompt>,
    /// `prompt_file` as written, for checking it exists.
    pub prompt_file: Option<Sp<String>>,
    pub agent: Option<AgentSpec>,
    pub agent_program: Option<Sp<String>>,
    /// `agent` was written, well-formed or not.
    pub agent_given: bool,
    pub timeout: Option<Duration>,
    pub estimate: Option<RawEstimate>,
    pub group: Option<Sp<String>>,
    pub allow_empty: Option<bool>,
    pub budget: Option<super::model::Budget>,
}

impl RawTask {
    /// A task written at `span`, nothing read from it yet.
    fn at(span: Span) -> RawTask {
        RawTask {
            span,
            prompt: None,
            prompt_file: None,
            agent: None,
            agent_program: None,
            agent_given: false,
            timeout: None,
            estimate: None,
            group: None,
            allow_empty: None,
            budget: None,
        }
    }
}

/// An `estimate` as written: a duration (in seconds) or a plain number of units.
#[derive(Clone, Debug, PartialEq)]
pub struct RawEstimate {
    pub value: f64,
    pub is_duration: bool,
    pub span: Span,
}

pub const TOP_KEYS: &[&str] = &["plan", "stream", "prices"];
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
    "limit_wait",
    "worktree_root",
    "env",
    "check",
    "check_timeout",
    "check_retries",
    "gate",
    "gate_batch",
    "gate_retries",
    "on_conflict",
    "resolve",
    "resolve_margin",
    "notify",
    "notify_timeout",
    "sandbox",
    "sandbox_writable",
    "ports",
    "limits",
    "setup",
    "setup_timeout",
    "include",
    "allow_empty",
    "budget",
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
    "allow_empty",
    "budget",
];
pub const TASK_KEYS: &[&str] = &[
    "prompt",
    "prompt_file",
    "agent",
    "timeout",
    "estimate",
    "group",
    "allow_empty",
    "budget",
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
