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
use crate::plan::Plan;
use crate::plan::model::Budget;
use crate::state::{BudgetOverrides, BudgetRaise};

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

/// Whether `spent` has reached [`WARN_AT`] of a limit of `budget` (the warning): that limit's
/// spending in words (`850 tokens of 1000`); `None`: all are below.
pub fn nearly(budget: &Budget, spent: &Spent) -> Option<String> {
    if let Some(usd) = budget.usd
        && spent.usd >= usd * WARN_AT
    {
        return Some(format!("${:.4} of ${usd:.2}", spent.usd));
    }
    if let Some(tokens) = budget.tokens
        && spent.tokens as f64 >= tokens as f64 * WARN_AT
    {
        return Some(format!("{} tokens of {}", spent.tokens, tokens));
    }
    if let Some(turns) = budget.turns
        && f64::from(spent.turns) >= f64::from(turns) * WARN_AT
    {
        return Some(format!("{} turns of {turns}", spent.turns));
    }
    if let Some(time) = budget.time
        && spent.time >= time.mul_f64(WARN_AT)
    {
        let ms = |d: Duration| crate::duration::fmt_duration_ms(d.as_millis() as u64);
        return Some(format!("{} of {} of agent time", ms(spent.time), ms(time)));
    }
    None
}

/// The share of a budget at which streams warns that it is nearly spent.
pub const WARN_AT: f64 = 0.8;

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

/// How `retry --budget` is written, for its help and its errors.
pub const RAISE_SYNTAX: &str = "[STREAM[/TASK]:]LIMIT=VALUE[,LIMIT=VALUE...]";

/// Reads one `retry --budget` value: `usd=10` (the plan's budget), `api:tokens=2000000,turns=80`
/// (stream `api`'s), `api/2:time=45m` (its second task's). Limits: `usd`, `tokens` (`_`
/// allowed), `turns`, `time` (`30m`, `1h`).
pub fn parse_raise(text: &str) -> Result<BudgetRaise, String> {
    let bad = |why: String| format!("`--budget {text}`: {why} (write {RAISE_SYNTAX})");
    let (scope, limits) = match text.split_once(':') {
        Some((scope, limits)) => (Some(scope.trim()), limits),
        None => (None, text),
    };
    let (stream, task) = match scope {
        None => (None, None),
        Some(scope) => match scope.split_once('/') {
            Some((stream, task)) => {
                let task = task
                    .parse::<usize>()
                    .ok()
                    .filter(|&n| n > 0)
                    .ok_or_else(|| bad(format!("`{task}` is not a task number (1, 2, ...)")))?;
                (Some(stream.to_string()), Some(task))
            }
            None => (Some(scope.to_string()), None),
        },
    };
    if stream.as_deref() == Some("") {
        return Err(bad("no stream before `:`".into()));
    }
    let mut raise = BudgetRaise {
        stream,
        task,
        usd: None,
        tokens: None,
        turns: None,
        time_ms: None,
    };
    for limit in limits.split(',').map(str::trim).filter(|l| !l.is_empty()) {
        let Some((key, value)) = limit.split_once('=') else {
            return Err(bad(format!("`{limit}` has no `=`")));
        };
        let value = value.trim();
        let number = || value.replace('_', "");
        let wrong = |what: &str| bad(format!("`{key}` takes {what}, not `{value}`"));
        match key.trim() {
            "usd" => {
                raise.usd = Some(
                    number()
                        .trim_start_matches('$')
                        .parse::<f64>()
                        .ok()
                        .filter(|u| u.is_finite() && *u > 0.0)
                        .ok_or_else(|| wrong("an amount in US dollars (`10`, `2.5`)"))?,
                )
            }
            "tokens" => {
                raise.tokens = Some(
                    number()
                        .parse()
                        .map_err(|_| wrong("a whole number (`2_000_000`)"))?,
                )
            }
            "turns" => raise.turns = Some(number().parse().map_err(|_| wrong("a whole number"))?),
            "time" => {
                raise.time_ms = Some(
                    humantime::parse_duration(value)
                        .map_err(|_| wrong("a duration (`45m`, `1h30m`)"))?
                        .as_millis() as u64,
                )
            }
            other => {
                return Err(bad(format!(
                    "no limit `{other}` (the limits are usd, tokens, turns, time)"
                )));
            }
        }
    }
    if raise.usd.is_none()
        && raise.tokens.is_none()
        && raise.turns.is_none()
        && raise.time_ms.is_none()
    {
        return Err(bad("no limit given".into()));
    }
    Ok(raise)
}

/// Applies the run's command-line budgets to its plan: each raise takes a limit up to its
/// figure (never down); the budget it names is created when the plan had none. An error names
/// a stream or task the plan does not have. (`--max-cost` is a pool of its own, see
/// [`max_cost`].)
pub fn apply_raises(plan: &mut Plan, overrides: &BudgetOverrides) -> Result<(), String> {
    for r in &overrides.raises {
        let target = match (&r.stream, r.task) {
            (None, _) => &mut plan.budget,
            (Some(name), task) => {
                let Some(stream) = plan.streams.iter_mut().find(|s| s.name == *name) else {
                    return Err(format!("the plan has no stream `{name}`"));
                };
                match task {
                    None => &mut stream.budget,
                    Some(n) => {
                        let count = stream.tasks.len();
                        let Some(task) = stream.tasks.get_mut(n - 1) else {
                            return Err(format!(
                                "stream `{name}` has {count} task(s), not a task {n}"
                            ));
                        };
                        &mut task.budget
                    }
                }
            }
        };
        let b = target.get_or_insert_with(Budget::default);
        b.usd = r.usd.map(|n| b.usd.map_or(n, |o| o.max(n))).or(b.usd);
        b.tokens = r
            .tokens
            .map(|n| b.tokens.map_or(n, |o| o.max(n)))
            .or(b.tokens);
        b.turns = r.turns.map(|n| b.turns.map_or(n, |o| o.max(n))).or(b.turns);
        let time = r.time_ms.map(Duration::from_millis);
        b.time = time.map(|n| b.time.map_or(n, |o| o.max(n))).or(b.time);
    }
    Ok(())
}

/// `--max-cost` as a budget (a shared pool over every task of the run), if it was given.
pub fn max_cost(overrides: &BudgetOverrides) -> Option<Budget> {
    overrides.max_cost.map(|usd| Budget {
        usd: Some(usd),
        ..Budget::default()
    })
}

/// The name a `--max-cost` pool goes by in messages (`the --max-cost budget ran out`).
pub const MAX_COST: &str = "--max-cost";

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
        assert_eq!(
            nearly(&budget, &at(800)).as_deref(),
            Some("800 tokens of 1000")
        );
        assert_eq!(nearly(&budget, &at(799)), None);
        let pool = Pool {
            budget: &budget,
            spent: at(300),
            reserved: at(400),
        };
        assert_eq!(pool.admits(&at(300)), None);
        assert!(pool.admits(&at(301)).is_some());
        assert_eq!(expected(None, None, &budget).tokens, 100);
    }

    #[test]
    fn budget_raises_are_read_and_only_raise() {
        let r = parse_raise("api/2:tokens=2_000,time=45m").unwrap();
        assert_eq!(
            (r.stream.as_deref(), r.task, r.tokens, r.time_ms),
            (Some("api"), Some(2), Some(2000), Some(2_700_000))
        );
        assert_eq!(parse_raise("usd=10").unwrap().usd, Some(10.0));
        assert!(parse_raise("api:").unwrap_err().contains("no limit given"));
        assert!(
            parse_raise("money=3")
                .unwrap_err()
                .contains("no limit `money`")
        );
        assert!(parse_raise("api/0:usd=1").is_err());
        let mut plan = crate::plan::parse_simple(
            "[plan]\nname = \"p\"\nagent = [\"true\"]\nbudget = { usd = 5, tokens = 100 }\n\n[[stream]]\nname = \"a\"\nowns = [\"a/**\"]\ntasks = [\"x\"]\n",
        )
        .unwrap();
        let overrides = BudgetOverrides {
            max_cost: None,
            raises: vec![
                parse_raise("usd=3,turns=9").unwrap(),
                parse_raise("a/1:usd=2").unwrap(),
            ],
        };
        apply_raises(&mut plan, &overrides).unwrap();
        let b = plan.budget.as_ref().unwrap();
        assert_eq!((b.usd, b.tokens, b.turns), (Some(5.0), Some(100), Some(9)));
        assert_eq!(
            plan.streams[0].tasks[0].budget.as_ref().unwrap().usd,
            Some(2.0)
        );
        let wrong = BudgetOverrides {
            max_cost: None,
            raises: vec![parse_raise("b:usd=2").unwrap()],
        };
        assert!(
            apply_raises(&mut plan, &wrong)
                .unwrap_err()
                .contains("no stream `b`")
        );
    }
}
