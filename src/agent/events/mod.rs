//! Reading what a preset's CLI printed: one parser per CLI (its own event shapes, written from
//! the recorded streams in `fixtures/agents/recorded/` and `docs/agents.md`), one result shape
//! for streams: [`Observed`].
//!
//! What streams takes from the events, and why it reads them at all: an agent's exit code
//! cannot be trusted (three of the five CLIs exit 0 when refused, interrupted or failing), so
//! whether a run finished, failed, was refused or hit a usage limit is read from its events;
//! so is its usage, its session (to resume it), and its last action (tool and target, for
//! `status`).
//!
//! The parsers are lenient: a line that is not an event (stderr in the same log, a line cut by
//! the log's limit) is skipped, and a field a CLI version drops reads as absent.

mod aider;
mod claude;
mod codex;
mod gemini;
mod progress;

use std::path::Path;

use serde_json::Value;

use super::Cli;
use super::usage::Usage;

pub use progress::{Beat, beat};

/// What the agent did last: a tool and what it acted on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Activity {
    pub tool: String,
    pub target: String,
}

impl std::fmt::Display for Activity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.target.is_empty() {
            write!(f, "{}", self.tool)
        } else {
            write!(f, "{} {}", self.tool, self.target)
        }
    }
}

/// A usage limit the CLI reported: the provider's message and, when it said, when the limit
/// resets (seconds since the epoch).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LimitHit {
    pub message: String,
    pub resets_at: Option<u64>,
}

/// What one run's events say.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Observed {
    /// The CLI's session, to resume it.
    pub session: Option<String>,
    /// Its final event came (a run without one did not finish, whatever its exit code).
    pub finished: bool,
    /// The final event says the run failed: its message.
    pub failure: Option<String>,
    /// The model refused, or a permission was denied, in the CLI's words.
    pub refusals: Vec<String>,
    /// Errors on the way: failed commands and tools, API errors.
    pub errors: Vec<String>,
    /// A usage limit stopped it.
    pub limit: Option<LimitHit>,
    /// The usage the CLI reported (for Codex, the session's running total).
    pub usage: Option<Usage>,
    /// Its last action.
    pub activity: Option<Activity>,
    /// Its last message to the person.
    pub answer: Option<String>,
}

impl Observed {
    /// What a person is told of a run that changed nothing: refusals, errors, the failure, and
    /// else its last message, each cut to a line.
    pub fn said(&self) -> Vec<String> {
        let mut said: Vec<String> = Vec::new();
        let mut push = |text: String| {
            if !said.contains(&text) {
                said.push(text);
            }
        };
        for r in &self.refusals {
            push(format!("refused: {}", one_line(r, 200)));
        }
        if let Some(limit) = &self.limit {
            push(format!("usage limit: {}", one_line(&limit.message, 200)));
        }
        if let Some(f) = &self.failure {
            push(format!("error: {}", one_line(f, 200)));
        }
        for e in self.errors.iter().rev().take(3).rev() {
            push(format!("error: {}", one_line(e, 200)));
        }
        if !self.finished {
            push("it ended without its final report".to_string());
        }
        if said.is_empty() {
            match &self.answer {
                Some(answer) if !answer.trim().is_empty() => {
                    said.push(format!("its last message: {}", one_line(answer, 200)))
                }
                _ if self.finished => said.push("its model gave no answer".to_string()),
                _ => {}
            }
        }
        said
    }

    /// Whether the events show a refusal or an error (what `allow_empty` does not excuse).
    pub fn troubled(&self) -> bool {
        !self.refusals.is_empty() || self.failure.is_some() || self.limit.is_some()
    }
}

/// Reads the output of one run of `cli` (what it printed, stdout and stderr as they came).
/// `workdir`: its working directory, which activity targets are shown relative to; `now`:
/// seconds since the epoch, for reset times given as a time of day.
pub fn observe(cli: Cli, output: &str, workdir: Option<&Path>, now: u64) -> Observed {
    let mut seen = Observer {
        observed: Observed::default(),
        workdir: workdir.map(|w| format!("{}/", w.display())),
        error_last: false,
    };
    read(cli, &mut seen, output, now);
    seen.observed
}

fn read(cli: Cli, seen: &mut Observer, output: &str, now: u64) {
    match cli {
        Cli::Claude | Cli::Qwen => claude::read(seen, cli, output),
        Cli::Codex => codex::read(seen, output, now),
        Cli::Aider => aider::read(seen, output),
        Cli::Gemini => gemini::read(seen, output),
    }
}

/// The agent's last action in `output` (for `status`), or the error it reported after it: a
/// CLI that cannot reach its model retries for as long as it may (Codex prints "Reconnecting...
/// waiting for network" until the task's timeout), and the person watching should see that,
/// not its last action long before.
pub fn last_activity(cli: Cli, output: &str, workdir: Option<&Path>) -> Option<Activity> {
    let mut seen = Observer {
        observed: Observed::default(),
        workdir: workdir.map(|w| format!("{}/", w.display())),
        error_last: false,
    };
    read(cli, &mut seen, output, 0);
    let failure = seen.observed.failure.as_ref();
    match failure.or(seen
        .error_last
        .then(|| seen.observed.errors.last())
        .flatten())
    {
        Some(error) => Some(Activity {
            tool: "error:".to_string(),
            target: one_line(error, 200),
        }),
        None => seen.observed.activity,
    }
}

/// The last action in `output`, whichever preset's CLI printed it (for `status`, which knows the
/// run's state, not its agents): each parser reads only its own CLI's events, so the first
/// that finds an action is the CLI's.
pub fn last_activity_of_any(output: &str, workdir: Option<&Path>) -> Option<Activity> {
    [Cli::Claude, Cli::Codex, Cli::Gemini, Cli::Aider]
        .into_iter()
        .find_map(|cli| last_activity(cli, output, workdir))
}

/// What the parsers fill in.
struct Observer {
    observed: Observed,
    /// The working directory with a trailing `/`, stripped from targets.
    workdir: Option<String>,
    /// The last thing read was an error, not an action.
    error_last: bool,
}

impl Observer {
    fn session(&mut self, id: Option<&str>) {
        if let Some(id) = id.filter(|id| !id.is_empty()) {
            self.observed.session = Some(id.to_string());
        }
    }

    fn act(&mut self, tool: &str, target: &str) {
        let target = match &self.workdir {
            Some(dir) => target.replace(dir.as_str(), ""),
            None => target.to_string(),
        };
        self.observed.activity = Some(Activity {
            tool: tool.to_string(),
            target: one_line(&target, 100),
        });
        self.error_last = false;
    }

    fn error(&mut self, text: &str) {
        let text = text.trim();
        if !text.is_empty() {
            self.observed.errors.push(text.to_string());
            self.error_last = true;
        }
    }

    fn refusal(&mut self, text: &str) {
        let text = text.trim();
        if !text.is_empty() && !self.observed.refusals.iter().any(|r| r == text) {
            self.observed.refusals.push(text.to_string());
        }
    }
}

/// The JSON events of an output, one per line; other lines are skipped.
fn json_lines(output: &str) -> impl Iterator<Item = Value> + '_ {
    output
        .lines()
        .filter(|l| l.starts_with('{'))
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
}

/// What a tool acted on, from its input: a file, a command, a pattern.
fn target_of(input: &Value) -> String {
    for key in [
        "file_path",
        "path",
        "command",
        "cmd",
        "pattern",
        "url",
        "query",
        "description",
    ] {
        match &input[key] {
            Value::String(s) => return s.clone(),
            Value::Array(items) => {
                let words: Vec<&str> = items.iter().filter_map(Value::as_str).collect();
                if !words.is_empty() {
                    return words.join(" ");
                }
            }
            _ => {}
        }
    }
    String::new()
}

/// The message of an API error body given as text (`{"error":{"message":...}}`), else the text.
fn error_message(text: &str) -> String {
    serde_json::from_str::<Value>(text)
        .ok()
        .and_then(|v| {
            v["error"]["message"]
                .as_str()
                .or(v["message"].as_str())
                .map(str::to_string)
        })
        .unwrap_or_else(|| text.to_string())
}

/// The first line of `text`, at most `max` characters.
pub fn one_line(text: &str, max: usize) -> String {
    let line = text.trim().lines().next().unwrap_or("").trim();
    if line.chars().count() > max {
        format!("{}...", line.chars().take(max - 3).collect::<String>())
    } else {
        line.to_string()
    }
}

fn u64_of(value: &Value) -> u64 {
    value.as_u64().unwrap_or(0)
}

#[cfg(test)]
mod tests;
