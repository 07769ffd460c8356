//! What an agent's run used, as its events report it, in one shape for every CLI.
//!
//! The token kinds are API-neutral: `input` is the prompt tokens that were neither read from nor
//! written to a cache. Each CLI reports them its own way (`docs/agents.md`, "Usage"): Anthropic's
//! input figure excludes the cache, OpenAI's and Gemini's include the cached tokens; the parsers
//! of [`super::events`] turn each into this form, so figures of different CLIs add up.
//!
//! Kept per attempt in the task's record in state: what a ledger of a run's cost (tokens by
//! kind, USD where a CLI states it, turns, models, sessions) is built from.

use serde::{Deserialize, Serialize};

/// The usage of one run of an agent.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Usage {
    /// Prompt tokens neither read from nor written to a cache.
    pub input: u64,
    pub output: u64,
    #[serde(default)]
    pub cache_read: u64,
    #[serde(default)]
    pub cache_write: u64,
    /// What the run cost in US dollars, when the CLI says (Claude Code, aider: from their own
    /// price tables).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<f64>,
    /// Model turns (requests), when the CLI says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub turns: Option<u32>,
    /// The models it used, as the CLI names them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub models: Vec<String>,
    /// `cost_usd` was computed by streams from a price table (`[prices]`), not stated by the
    /// agent: an estimate.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub estimated: bool,
}

impl Usage {
    /// Every token of the prompt and the answer.
    pub fn total(&self) -> u64 {
        self.input + self.output + self.cache_read + self.cache_write
    }

    /// This and `other` together (one attempt after another).
    pub fn add(&self, other: &Usage) -> Usage {
        let mut models = self.models.clone();
        for m in &other.models {
            if !models.contains(m) {
                models.push(m.clone());
            }
        }
        Usage {
            input: self.input + other.input,
            output: self.output + other.output,
            cache_read: self.cache_read + other.cache_read,
            cache_write: self.cache_write + other.cache_write,
            cost_usd: match (self.cost_usd, other.cost_usd) {
                (None, None) => None,
                (a, b) => Some(a.unwrap_or(0.0) + b.unwrap_or(0.0)),
            },
            turns: match (self.turns, other.turns) {
                (None, None) => None,
                (a, b) => Some(a.unwrap_or(0) + b.unwrap_or(0)),
            },
            models,
            estimated: self.estimated || other.estimated,
        }
    }

    /// Each figure the larger of this and `other`'s: the least a run used, given two partial
    /// accounts of it. A cost is kept only when this one states it (the other's figures may
    /// be more than it covers).
    pub fn at_least(&self, other: &Usage) -> Usage {
        let mut models = self.models.clone();
        for m in &other.models {
            if !models.contains(m) {
                models.push(m.clone());
            }
        }
        Usage {
            input: self.input.max(other.input),
            output: self.output.max(other.output),
            cache_read: self.cache_read.max(other.cache_read),
            cache_write: self.cache_write.max(other.cache_write),
            cost_usd: self.cost_usd.filter(|usd| *usd > 0.0),
            turns: self.turns.max(other.turns),
            models,
            estimated: self.estimated,
        }
    }

    /// This run's share of a session's running total, given what the session had reported
    /// before (Codex reports the thread's total: see `Cli::usage_is_cumulative`).
    pub fn since(&self, before: &Usage) -> Usage {
        Usage {
            input: self.input.saturating_sub(before.input),
            output: self.output.saturating_sub(before.output),
            cache_read: self.cache_read.saturating_sub(before.cache_read),
            cache_write: self.cache_write.saturating_sub(before.cache_write),
            cost_usd: self.cost_usd,
            turns: self.turns,
            models: self.models.clone(),
            estimated: self.estimated,
        }
    }

    /// One line for a person: `3.5k in, 90 out, 300 cache read, 40 cache write, $0.0121`.
    pub fn describe(&self) -> String {
        let mut parts = vec![
            format!("{} in", tokens(self.input)),
            format!("{} out", tokens(self.output)),
        ];
        if self.cache_read > 0 {
            parts.push(format!("{} cache read", tokens(self.cache_read)));
        }
        if self.cache_write > 0 {
            parts.push(format!("{} cache write", tokens(self.cache_write)));
        }
        if let Some(cost) = self.cost_usd {
            parts.push(usd(cost, self.estimated));
        }
        parts.join(", ")
    }
}

/// An amount in US dollars for a person: `$0.0121`, `$1.25`, `~$0.0121` for an estimate.
pub fn usd(amount: f64, estimated: bool) -> String {
    let mark = if estimated { "~" } else { "" };
    if amount >= 1.0 {
        format!("{mark}${amount:.2}")
    } else {
        format!("{mark}${amount:.4}")
    }
}

/// A token count for a person: `950`, `3.5k`, `1.2M`.
pub fn tokens(n: u64) -> String {
    match n {
        0..1_000 => n.to_string(),
        1_000..1_000_000 => format!("{:.1}k", n as f64 / 1_000.0),
        _ => format!("{:.1}M", n as f64 / 1_000_000.0),
    }
}

/// What an agent's run was for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttemptKind {
    /// The task's own work (a first attempt or a retry).
    #[default]
    Task,
    /// A second chance to fix a failed check.
    CheckFix,
    /// A fix of a red gate.
    GateFix,
    /// A resolution of a conflict.
    Resolution,
}

impl AttemptKind {
    fn is_task(&self) -> bool {
        *self == AttemptKind::Task
    }
}

/// One attempt's usage as a task's record keeps it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AttemptUsage {
    /// The attempt (counted over the task's life, as `attempts` is).
    pub attempt: u32,
    /// The preset that ran; `None` for an agent that is an argv (its usage from the generic
    /// forms: a `streams.usage` JSON line or its `{usage_file}`).
    #[serde(default)]
    pub cli: Option<super::Cli>,
    /// What the run was for (absent in older state files: the task's own work).
    #[serde(default, skip_serializing_if = "AttemptKind::is_task")]
    pub kind: AttemptKind,
    /// How long the agent ran, in milliseconds (absent in older state files).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub wall_ms: u64,
    /// The CLI's session (Claude's `session_id`, Codex's `thread_id`, ...), to resume.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    /// `None` when the run ended without saying (interrupted before its final event).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    /// What the CLI reported, as it reported it, when that is a session's running total: what
    /// the next run of the same session's figure is taken from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reported: Option<Usage>,
    /// What its output showed before it ended without its final report (`usage` is `None`
    /// then): the least it used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seen: Option<Usage>,
    /// A budget stopped the run.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub over_budget: bool,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_adds_and_subtracts_and_reads_for_a_person() {
        let a = Usage {
            input: 3500,
            output: 90,
            cache_read: 300,
            cache_write: 40,
            cost_usd: Some(0.01209),
            turns: Some(3),
            models: vec!["claude-sonnet-4-5".into()],
            estimated: false,
        };
        let b = Usage {
            input: 100,
            output: 20,
            ..Usage::default()
        };
        let sum = a.add(&b);
        assert_eq!((sum.input, sum.output, sum.turns), (3600, 110, Some(3)));
        assert_eq!(sum.since(&a).input, 100);
        assert_eq!(
            a.describe(),
            "3.5k in, 90 out, 300 cache read, 40 cache write, $0.0121"
        );
        assert_eq!(tokens(999), "999");
        assert_eq!(tokens(1_250_000), "1.2M");
        assert_eq!(a.total(), 3930);
    }
}
