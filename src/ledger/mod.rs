//! What a run's agents used and cost: the ledger, and what limits it (budgets).
//!
//! - [`meter`]: usage read line by line from an agent's output as it streams (each preset's
//!   CLI by its own rules, any other program by the generic JSON line or `{usage_file}`).
//! - [`price`]: the cost of usage an agent did not price itself, from the plan's `[prices]`
//!   and the user's ([`config`]; marked as an estimate).
//! - [`Ledger`]: the usage each attempt recorded in a run's state (task attempts, check fixes;
//!   gate fixes and resolutions when an agent makes them), added up per task, per stream and
//!   for the run: what `report.json`, `report.md`, JUnit, `show`, `status`, `runs`, PR bodies
//!   and commit trailers show.
//!
//! Honest accounting: an attempt that ended before its agent reported counts as "unknown", with
//! what its output showed until then, never as zero; a total that holds one says "at least".

pub mod budget;
pub mod config;
pub mod meter;

use std::collections::BTreeMap;

use serde::Serialize;

use crate::agent::Usage;
use crate::agent::usage::{AttemptKind, AttemptUsage, tokens, usd};
use crate::plan::model::Price;
use crate::state::{RunState, TaskRecord};

/// Prices `usage` from `prices` when its agent did not state a cost: by its first model that
/// has a price, else by the `"*"` entry. The cost is marked as an estimate.
pub fn price(usage: &mut Usage, prices: &BTreeMap<String, Price>) {
    if usage.cost_usd.is_some() || prices.is_empty() {
        return;
    }
    let found = usage
        .models
        .iter()
        .find_map(|m| prices.get(m))
        .or_else(|| prices.get("*"));
    if let Some(p) = found {
        let per = |n: u64, usd: f64| n as f64 * usd / 1_000_000.0;
        usage.cost_usd = Some(
            per(usage.input, p.input)
                + per(usage.output, p.output)
                + per(usage.cache_read, p.cache_read)
                + per(usage.cache_write, p.cache_write),
        );
        usage.estimated = true;
    }
}

/// Usage added up over attempts.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Tally {
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cache_read_tokens: u64,
    pub cache_write_tokens: u64,
    /// Every token, of every kind.
    pub tokens: u64,
    /// In US dollars, over the attempts whose cost is known (stated or priced); `None` when
    /// none is.
    pub cost_usd: Option<f64>,
    /// Part of the cost comes from the price table, not from the agents.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub cost_estimated: bool,
    /// Attempts whose tokens are known but whose cost is not (no price for their model).
    #[serde(skip_serializing_if = "is_zero32")]
    pub unpriced: u32,
    pub turns: u32,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub models: Vec<String>,
    /// Agent runs counted.
    pub attempts: u32,
    /// Runs that ended before their agent reported its usage: their figures are what was seen
    /// until then, so the totals are at least these.
    #[serde(skip_serializing_if = "is_zero32")]
    pub unreported: u32,
    /// The agents' running time.
    pub wall_ms: u64,
}

fn is_zero32(n: &u32) -> bool {
    *n == 0
}

impl Tally {
    /// Adds one attempt.
    pub fn attempt(&mut self, a: &AttemptUsage) {
        self.attempts += 1;
        self.wall_ms += a.wall_ms;
        let usage = match (&a.usage, &a.seen) {
            (Some(u), _) => u,
            (None, seen) => {
                self.unreported += 1;
                match seen {
                    Some(seen) => seen,
                    None => return,
                }
            }
        };
        self.usage(usage);
    }

    /// Adds usage (of an attempt that reported).
    pub fn usage(&mut self, u: &Usage) {
        self.input_tokens += u.input;
        self.output_tokens += u.output;
        self.cache_read_tokens += u.cache_read;
        self.cache_write_tokens += u.cache_write;
        self.tokens += u.total();
        match u.cost_usd {
            Some(c) => self.cost_usd = Some(self.cost_usd.unwrap_or(0.0) + c),
            None if u.total() > 0 => self.unpriced += 1,
            None => {}
        }
        self.cost_estimated |= u.estimated;
        self.turns += u.turns.unwrap_or(0);
        for m in &u.models {
            if !self.models.contains(m) {
                self.models.push(m.clone());
            }
        }
    }

    /// Adds another tally.
    pub fn add(&mut self, other: &Tally) {
        self.input_tokens += other.input_tokens;
        self.output_tokens += other.output_tokens;
        self.cache_read_tokens += other.cache_read_tokens;
        self.cache_write_tokens += other.cache_write_tokens;
        self.tokens += other.tokens;
        if let Some(c) = other.cost_usd {
            self.cost_usd = Some(self.cost_usd.unwrap_or(0.0) + c);
        }
        self.cost_estimated |= other.cost_estimated;
        self.unpriced += other.unpriced;
        self.turns += other.turns;
        for m in &other.models {
            if !self.models.contains(m) {
                self.models.push(m.clone());
            }
        }
        self.attempts += other.attempts;
        self.unreported += other.unreported;
        self.wall_ms += other.wall_ms;
    }

    /// Nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.attempts == 0
    }

    /// The cost for a person: `$0.0121`, `~$0.02` (estimated), `at least $0.01` (a run did not
    /// report), `unknown` (nothing known), `-` (no tokens).
    pub fn cost_text(&self) -> String {
        let at_least = if self.unreported > 0 || self.unpriced > 0 {
            "at least "
        } else {
            ""
        };
        match self.cost_usd {
            Some(c) => format!("{at_least}{}", usd(c, self.cost_estimated)),
            None if self.unreported > 0 || self.tokens > 0 => "unknown".to_string(),
            None => "-".to_string(),
        }
    }

    /// The tokens for a person: `3.9k`, `at least 1.0k`, `unknown`.
    pub fn tokens_text(&self) -> String {
        match (self.tokens, self.unreported) {
            (0, 0) => "0".to_string(),
            (0, _) => "unknown".to_string(),
            (n, 0) => tokens(n),
            (n, _) => format!("at least {}", tokens(n)),
        }
    }

    /// `3.9k tokens (3.5k in, 90 out, 300 cache read, 40 cache write), $0.0121, 3 turns`.
    pub fn describe(&self) -> String {
        let mut kinds = vec![
            format!("{} in", tokens(self.input_tokens)),
            format!("{} out", tokens(self.output_tokens)),
        ];
        if self.cache_read_tokens > 0 {
            kinds.push(format!("{} cache read", tokens(self.cache_read_tokens)));
        }
        if self.cache_write_tokens > 0 {
            kinds.push(format!("{} cache write", tokens(self.cache_write_tokens)));
        }
        let mut text = format!("{} tokens ({})", self.tokens_text(), kinds.join(", "));
        let cost = self.cost_text();
        if cost != "-" {
            text.push_str(&format!(", {cost}"));
        }
        if self.turns > 0 {
            text.push_str(&format!(", {} turns", self.turns));
        }
        text
    }

    /// The commit trailers of a task's work: `Streams-Cost: $0.0121` (when known) and
    /// `Streams-Tokens: 3930 (in 3500, out 90, cache read 300, cache write 40)`.
    pub fn trailers(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if self.is_empty() {
            return out;
        }
        let at_least = if self.unreported > 0 { "at least " } else { "" };
        if let Some(c) = self.cost_usd {
            let estimate = if self.cost_estimated {
                " (estimate)"
            } else {
                ""
            };
            out.push((TRAILER_COST, format!("{at_least}${c:.4}{estimate}")));
        }
        out.push((
            TRAILER_TOKENS,
            format!(
                "{at_least}{} (in {}, out {}, cache read {}, cache write {})",
                self.tokens,
                self.input_tokens,
                self.output_tokens,
                self.cache_read_tokens,
                self.cache_write_tokens
            ),
        ));
        out
    }
}

pub const TRAILER_COST: &str = "Streams-Cost";
pub const TRAILER_TOKENS: &str = "Streams-Tokens";

/// A task's line in the ledger.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TaskCost {
    pub stream: String,
    /// 1-based.
    pub task: usize,
    pub summary: String,
    #[serde(flatten)]
    pub tally: Tally,
    /// Of which: the runs that fixed a failed check (or a gate, or resolved a conflict).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fixes: Option<Tally>,
    /// The agent's sessions, in order (to find them in the agent's own records).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sessions: Vec<String>,
}

/// A stream's line in the ledger.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StreamCost {
    pub stream: String,
    #[serde(flatten)]
    pub tally: Tally,
}

/// What a run's agents used: per task, per stream and in all.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Ledger {
    pub total: Tally,
    pub streams: Vec<StreamCost>,
    /// Every task that ran an agent, in plan order.
    pub tasks: Vec<TaskCost>,
}

/// How many tasks "the most expensive tasks" lists.
pub const TOP: usize = 5;

impl Ledger {
    /// The ledger of a run's state.
    pub fn of(state: &RunState) -> Ledger {
        let mut ledger = Ledger::default();
        for s in &state.streams {
            let mut stream = Tally::default();
            for (i, t) in s.tasks.iter().enumerate() {
                let Some(cost) = task_cost(&s.name, i, t) else {
                    continue;
                };
                stream.add(&cost.tally);
                ledger.tasks.push(cost);
            }
            if !stream.is_empty() {
                ledger.total.add(&stream);
                ledger.streams.push(StreamCost {
                    stream: s.name.clone(),
                    tally: stream,
                });
            }
        }
        ledger
    }

    /// Nothing recorded: no agent reported (argv agents without the generic form).
    pub fn is_empty(&self) -> bool {
        self.total.is_empty()
    }

    /// The stream's line, if it has one.
    pub fn stream(&self, name: &str) -> Option<&Tally> {
        self.streams
            .iter()
            .find(|s| s.stream == name)
            .map(|s| &s.tally)
    }

    /// The task's line, if it has one (`task`: 1-based).
    pub fn task(&self, stream: &str, task: usize) -> Option<&TaskCost> {
        self.tasks
            .iter()
            .find(|t| t.stream == stream && t.task == task)
    }

    /// The most expensive tasks, costliest first (by cost where known, else by tokens), at
    /// most [`TOP`].
    pub fn most_expensive(&self) -> Vec<&TaskCost> {
        let mut tasks: Vec<&TaskCost> = self.tasks.iter().filter(|t| t.tally.tokens > 0).collect();
        tasks.sort_by(|a, b| {
            let key = |t: &TaskCost| (t.tally.cost_usd.unwrap_or(-1.0), t.tally.tokens);
            let (ka, kb) = (key(a), key(b));
            kb.0.total_cmp(&ka.0).then(kb.1.cmp(&ka.1))
        });
        tasks.truncate(TOP);
        tasks
    }
}

/// The ledger line of one task (`None`: no agent run of it recorded usage).
pub fn task_cost(stream: &str, index: usize, t: &TaskRecord) -> Option<TaskCost> {
    if t.usage.is_empty() {
        return None;
    }
    let mut tally = Tally::default();
    let mut fixes = Tally::default();
    let mut sessions = Vec::new();
    for a in &t.usage {
        tally.attempt(a);
        if a.kind != AttemptKind::Task {
            fixes.attempt(a);
        }
        if let Some(s) = &a.session
            && !sessions.contains(s)
        {
            sessions.push(s.clone());
        }
    }
    Some(TaskCost {
        stream: stream.to_string(),
        task: index + 1,
        summary: t.summary.clone(),
        tally,
        fixes: (!fixes.is_empty()).then_some(fixes),
        sessions,
    })
}

/// A task's usage so far, for its commit trailers.
pub fn task_tally(t: &TaskRecord) -> Tally {
    let mut tally = Tally::default();
    for a in &t.usage {
        tally.attempt(a);
    }
    tally
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt(usage: Option<Usage>, seen: Option<Usage>) -> AttemptUsage {
        AttemptUsage {
            attempt: 1,
            cli: None,
            kind: AttemptKind::Task,
            wall_ms: 10,
            session: None,
            usage,
            reported: None,
            seen,
            over_budget: false,
        }
    }

    #[test]
    fn unreported_runs_read_as_at_least_what_was_seen_never_zero() {
        let mut t = Tally::default();
        t.attempt(&attempt(None, None));
        assert_eq!(
            (t.tokens_text(), t.cost_text()),
            ("unknown".into(), "unknown".into())
        );
        let seen = Usage {
            input: 1000,
            output: 1,
            ..Usage::default()
        };
        t.attempt(&attempt(None, Some(seen)));
        assert_eq!(t.tokens_text(), "at least 1.0k");
        let mut priced = Usage {
            input: 1_000_000,
            output: 100_000,
            models: vec!["m".into()],
            ..Usage::default()
        };
        let prices = BTreeMap::from([(
            "m".to_string(),
            Price {
                input: 3.0,
                output: 15.0,
                ..Price::default()
            },
        )]);
        price(&mut priced, &prices);
        assert_eq!(priced.cost_usd, Some(4.5));
        assert!(priced.estimated);
        let mut u = Tally::default();
        u.attempt(&attempt(Some(priced), None));
        assert_eq!(u.cost_text(), "~$4.50");
        assert_eq!(u.trailers()[0].1, "$4.5000 (estimate)");
    }
}
