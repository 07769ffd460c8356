//! Budgets: what an agent, a stream or a plan may spend, and when spending crosses one.
//!
//! A task's own `budget` is checked against its agent's usage as it streams (`super::meter`):
//! the moment a line takes it over a limit, the agent is stopped gracefully (SIGINT first, so
//! that it still reports). A stream's or the plan's budget is shared by their tasks: before a
//! task starts, what it is expected to cost is reserved ([`expected`]), and a task whose
//! reservation the rest of the pool cannot cover does not start ([`Pool::admits`]); while tasks
//! run, their streamed usage counts against the pool, and when it runs dry they are stopped.

use std::time::Duration;

use crate::agent::Usage;
use crate::plan::model::Budget;

/// What has been spent against a budget.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Spent {
    pub usd: f64,
    pub tokens: u64,
    pub turns: u32,
    pub time: Duration,
}

impl Spent {
    /// Usage (priced where it could be) and running time.
    pub fn of(usage: &Usage, time: Duration) -> Spent {
        Spent {
            usd: usage.cost_usd.unwrap_or(0.0),
            tokens: usage.total(),
            turns: usage.turns.unwrap_or(0),
            time,
        }
    }

    pub fn add(&self, other: &Spent) -> Spent {
        Spent {
            usd: self.usd + other.usd,
            tokens: self.tokens + other.tokens,
            turns: self.turns + other.turns,
            time: self.time + other.time,
        }
    }
}

/// Which limit of `budget` `spent` has reached, in words (`2.0k tokens of 2.0k`); `None`: all
/// are below.
pub fn crossed(budget: &Budget, spent: &Spent) -> Option<String> {
    if let Some(usd) = budget.usd
        && spent.usd >= usd
    {
        return Some(format!("${:.4} of ${usd:.2}", spent.usd));
    }
    if let Some(tokens) = budget.tokens
        && spent.tokens >= tokens
    {
        return Some(format!("{} tokens of {}", spent.tokens, tokens));
    }
    if let Some(turns) = budget.turns
        && spent.turns >= turns
    {
        return Some(format!("{} turns of {turns}", spent.turns));
    }
    if let Some(time) = budget.time
        && spent.time >= time
    {
        return Some(format!(
            "{} of agent time",
            crate::duration::fmt_duration_ms(time.as_millis() as u64)
        ));
    }
    None
}

/// Whether `spent` has reached 80 % of any limit (the warning).
pub fn nearly(budget: &Budget, spent: &Spent) -> bool {
    let scaled = Budget {
        usd: budget.usd.map(|u| u * 0.8),
        tokens: budget.tokens.map(|t| t * 8 / 10),
        turns: budget.turns.map(|t| t * 8 / 10),
        time: budget.time.map(|t| t.mul_f64(0.8)),
    };
    crossed(&scaled, spent).is_some()
}

/// What a task is expected to spend, reserved against a shared budget before it starts: what
/// it took in earlier runs (`history`), else its own budget, else [`DEFAULT_SHARE`] of the pool.
pub fn expected(history: Option<&Spent>, own: Option<&Budget>, pool: &Budget) -> Spent {
    if let Some(h) = history {
        return *h;
    }
    let share = |total: f64| total * DEFAULT_SHARE;
    Spent {
        usd: own
            .and_then(|b| b.usd)
            .or(pool.usd.map(share))
            .unwrap_or(0.0),
        tokens: own
            .and_then(|b| b.tokens)
            .or(pool.tokens.map(|t| share(t as f64) as u64))
            .unwrap_or(0),
        turns: own
            .and_then(|b| b.turns)
            .or(pool.turns.map(|t| share(f64::from(t)) as u32))
            .unwrap_or(0),
        time: own
            .and_then(|b| b.time)
            .or(pool.time.map(|t| t.mul_f64(DEFAULT_SHARE)))
            .unwrap_or_default(),
    }
}

/// A task's reservation when nothing better is known: a tenth of the shared budget.
pub const DEFAULT_SHARE: f64 = 0.1;

/// A shared budget and what is drawn on it.
#[derive(Clone, Debug)]
pub struct Pool<'a> {
    pub budget: &'a Budget,
    /// Spent by finished attempts (the ledger).
    pub spent: Spent,
    /// Reserved by the tasks running now, each at least what it has spent so far.
    pub reserved: Spent,
}

impl Pool<'_> {
    /// Whether a task expected to spend `expected` may start: the limit it would cross, if
    /// any (`None`: it may).
    pub fn admits(&self, expected: &Spent) -> Option<String> {
        let after = self.spent.add(&self.reserved).add(expected);
        // Reaching the limit exactly is allowed; crossing it is not.
        let over = |b: &Budget| crossed(b, &after).filter(|_| exceeds(b, &after));
        over(self.budget)
    }
}

/// Whether `spent` is strictly over a limit of `budget` (not merely at it).
fn exceeds(budget: &Budget, spent: &Spent) -> bool {
    budget.usd.is_some_and(|u| spent.usd > u + 1e-12)
        || budget.tokens.is_some_and(|t| spent.tokens > t)
        || budget.turns.is_some_and(|t| spent.turns > t)
        || budget.time.is_some_and(|t| spent.time > t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_cross_at_their_figure_and_reservations_refuse_an_overshoot() {
        let budget = Budget {
            tokens: Some(1000),
            ..Budget::default()
        };
        let at = |tokens| Spent {
            tokens,
            ..Spent::default()
        };
        assert_eq!(crossed(&budget, &at(999)), None);
        assert_eq!(
            crossed(&budget, &at(1000)).as_deref(),
            Some("1000 tokens of 1000")
        );
        assert!(nearly(&budget, &at(800)) && !nearly(&budget, &at(799)));
        let pool = Pool {
            budget: &budget,
            spent: at(300),
            reserved: at(400),
        };
        assert_eq!(pool.admits(&at(300)), None);
        assert!(pool.admits(&at(301)).is_some());
        assert_eq!(expected(None, None, &budget).tokens, 100);
    }
}
