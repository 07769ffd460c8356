//! Shared budgets while a run goes (`ledger::budget`): a stream's `budget` is shared by its
//! tasks, the plan's by every task. Before a task starts, what it is expected to spend is
//! reserved against each pool it draws on, and it does not start when the rest of a pool
//! cannot cover that; while tasks run, their streamed usage counts against their pools, and
//! when a pool runs dry every running task drawing on it is stopped (gracefully, as a budget
//! stop). So agents running at once overshoot a pool by at most what streams after the last
//! event they read: never by more than one task's reservation.
//!
//! The dispatcher owns this (it alone sees every running task); tasks report their usage as
//! it streams (`ExecEvent::Spending`).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::run::Run;
use super::task::TaskOutcome;
use crate::agent::Usage;
use crate::ids::TaskId;
use crate::ledger::budget::{self, Pool, Spent};
use crate::plan::model::Budget;
use crate::state::{BudgetWarning, Stop};

#[derive(Default)]
pub struct Budgets {
    /// What each task took in past runs of this plan (stream, task text hash): the median
    /// of its last runs that reported, what its reservation is when known.
    history: BTreeMap<(String, String), Spent>,
    /// Per running task (stream, task index): its reservation and what it has used so far.
    running: BTreeMap<(usize, usize), Draw>,
    /// Streams whose running task a dry pool is stopping: which pool, and what was spent.
    stopping: BTreeMap<usize, (String, String)>,
    /// The budgets warned of as nearly spent in this session.
    warned: std::collections::BTreeSet<String>,
}

/// What a task's usage so far means for the budgets.
#[derive(Default)]
pub struct Spending {
    /// Streams whose running task must stop (a pool ran dry), and the pool.
    pub stop: Vec<(usize, String)>,
    /// Budgets that have just reached 80 %.
    pub warn: Vec<BudgetWarning>,
}

struct Draw {
    reserved: Spent,
    /// Its running attempt's usage so far (recorded attempts are in the state).
    live: Spent,
    started: Instant,
}

/// A shared budget: whose, its limits, the streams drawing on it.
struct SharedPool {
    label: String,
    budget: Budget,
    streams: Vec<usize>,
}

impl Budgets {
    /// Shared budgets for a run of `plan`, with what its tasks took in past runs (the history
    /// under the git common dir; a history that cannot be read is no history). Read for every
    /// run: a `--max-cost` the plan does not show may need it.
    pub fn new(common_dir: &std::path::Path, plan: &crate::plan::Plan) -> Budgets {
        let mut budgets = Budgets::default();
        let path = crate::state::history::path(common_dir);
        let Ok(loaded) = crate::state::history::load(&path) else {
            return budgets;
        };
        let mut seen: BTreeMap<(String, String), Vec<&crate::state::history::Record>> =
            BTreeMap::new();
        for r in loaded.records.iter().filter(|r| r.plan == plan.name) {
            if r.tokens.is_some() || r.cost_usd.is_some() {
                seen.entry((r.stream.clone(), r.text_hash.clone()))
                    .or_default()
                    .push(r);
            }
        }
        for (key, mut records) in seen {
            records.sort_by_key(|r| r.at);
            let recent = &records[records.len().saturating_sub(crate::plan::learn::RECENT)..];
            let median = |mut v: Vec<f64>| {
                v.sort_by(f64::total_cmp);
                v.get(v.len() / 2).copied().unwrap_or(0.0)
            };
            budgets.history.insert(
                key,
                Spent {
                    usd: median(recent.iter().filter_map(|r| r.cost_usd).collect()),
                    tokens: median(
                        recent
                            .iter()
                            .filter_map(|r| r.tokens.map(|t| t as f64))
                            .collect(),
                    ) as u64,
                    turns: 0,
                    time: Duration::from_secs_f64(median(
                        recent.iter().map(|r| r.seconds).collect(),
                    )),
                },
            );
        }
        budgets
    }

    /// The pools stream `s` draws on: its own budget, then the plan's, then the run's
    /// `--max-cost`.
    fn pools(run: &Run, s: usize) -> Vec<SharedPool> {
        let plan = &run.ctx.plan;
        let mut pools = Vec::new();
        if let Some(b) = &plan.streams[s].budget {
            pools.push(SharedPool {
                label: format!("stream `{}`", plan.streams[s].name),
                budget: b.clone(),
                streams: vec![s],
            });
        }
        if let Some(b) = &plan.budget {
            pools.push(SharedPool {
                label: "plan".to_string(),
                budget: b.clone(),
                streams: (0..plan.streams.len()).collect(),
            });
        }
        if let Some(b) = budget::max_cost(&run.state.budget_overrides) {
            pools.push(SharedPool {
                label: budget::MAX_COST.to_string(),
                budget: b,
                streams: (0..plan.streams.len()).collect(),
            });
        }
        pools
    }

    /// What the streams' finished attempts spent (the state's ledger).
    fn spent(run: &Run, streams: &[usize]) -> Spent {
        let mut total = Spent::default();
        for &s in streams {
            for t in &run.state.streams[s].tasks {
                let tally = crate::ledger::task_tally(t);
                total = total.add(&Spent {
                    usd: tally.cost_usd.unwrap_or(0.0),
                    tokens: tally.tokens,
                    turns: tally.turns,
                    time: Duration::from_millis(tally.wall_ms),
                });
            }
        }
        total
    }

    /// What the running tasks of `streams` hold: each its reservation, or what it used if more.
    fn held(&self, streams: &[usize], live_only: bool) -> Spent {
        let mut total = Spent::default();
        for ((s, _), draw) in &self.running {
            if streams.contains(s) {
                let held = if live_only {
                    draw.live
                } else {
                    Spent {
                        usd: draw.reserved.usd.max(draw.live.usd),
                        tokens: draw.reserved.tokens.max(draw.live.tokens),
                        turns: draw.reserved.turns.max(draw.live.turns),
                        time: draw.reserved.time.max(draw.live.time),
                    }
                };
                total = total.add(&held);
            }
        }
        total
    }

    /// Reserves what `task` is expected to spend against every pool it draws on; the stop
    /// when a pool's rest cannot cover it (the task does not start).
    pub fn reserve(&mut self, run: &Run, task: TaskId) -> Option<Stop> {
        let (s, t) = (task.stream.index(), task.index);
        let plan_task = &run.ctx.plan.streams[s].tasks[t];
        let own = plan_task.budget.as_ref();
        let key = (
            run.ctx.plan.streams[s].name.clone(),
            crate::plan::learn::text_hash(&plan_task.prompt),
        );
        let past = self.history.get(&key);
        let mut reservation = Spent::default();
        for pool in Self::pools(run, s) {
            let expected = budget::expected(past, own, &pool.budget);
            let draw = Pool {
                budget: &pool.budget,
                spent: Self::spent(run, &pool.streams),
                reserved: self.held(&pool.streams, false),
            };
            if let Some(over) = draw.admits(&expected) {
                return Some(Stop::Budget {
                    budget: pool.label,
                    spent: format!("{over} with this task's reservation; it did not start"),
                    kept: None,
                });
            }
            reservation = Spent {
                usd: reservation.usd.max(expected.usd),
                tokens: reservation.tokens.max(expected.tokens),
                turns: reservation.turns.max(expected.turns),
                time: reservation.time.max(expected.time),
            };
        }
        self.running.insert(
            (s, t),
            Draw {
                reserved: reservation,
                live: Spent::default(),
                started: Instant::now(),
            },
        );
        None
    }

    /// `task`'s agent has used `usage` so far: the streams whose running task must stop
    /// because a pool ran dry (each told once), with the pool and what it spent; and the
    /// budgets (the task's own, its pools) that have just reached 80 %, each once a run.
    pub fn spending(&mut self, run: &Run, task: TaskId, usage: Usage) -> Spending {
        let (s, t) = (task.stream.index(), task.index);
        let mut out = Spending::default();
        let Some(draw) = self.running.get_mut(&(s, t)) else {
            return out;
        };
        draw.live = Spent::of(&usage, draw.started.elapsed());
        let live = draw.live;
        if let Some(own) = &run.ctx.plan.streams[s].tasks[t].budget
            && let Some(what) = budget::nearly(own, &live)
        {
            let label = format!("stream `{}` task {}", run.ctx.plan.streams[s].name, t + 1);
            self.warn(run, label, what, &mut out);
        }
        for pool in Self::pools(run, s) {
            let total = Self::spent(run, &pool.streams).add(&self.held(&pool.streams, true));
            if let Some(what) = budget::nearly(&pool.budget, &total) {
                self.warn(run, pool.label.clone(), what, &mut out);
            }
            let Some(what) = budget::crossed(&pool.budget, &total) else {
                continue;
            };
            for &(other, _) in self.running.keys() {
                if pool.streams.contains(&other) && !self.stopping.contains_key(&other) {
                    self.stopping
                        .insert(other, (pool.label.clone(), what.clone()));
                    out.stop.push((other, pool.label.clone()));
                }
            }
        }
        out
    }

    /// Warns of `label` nearly spent, unless the run already did.
    fn warn(&mut self, run: &Run, label: String, what: String, out: &mut Spending) {
        let said = run.state.budget_warnings.iter().any(|w| w.budget == label);
        if !said && self.warned.insert(label.clone()) {
            out.warn.push(BudgetWarning {
                budget: label,
                spent: what,
                at: crate::state::now_ms(),
            });
        }
    }

    /// `task`'s attempt was recorded in the state: its usage counts from there.
    pub fn attempt_recorded(&mut self, task: TaskId) {
        if let Some(draw) = self.running.get_mut(&(task.stream.index(), task.index)) {
            draw.live = Spent::default();
        }
    }

    /// `task` ended: its reservation is released; a budget stop a pool caused says which.
    pub fn finished(&mut self, task: TaskId, outcome: TaskOutcome) -> TaskOutcome {
        let s = task.stream.index();
        self.running.remove(&(s, task.index));
        let Some((label, what)) = self.stopping.remove(&s) else {
            return outcome;
        };
        match outcome {
            TaskOutcome::Stopped {
                stop: Stop::Budget { budget, kept, .. },
                agent,
                attempts,
            } if budget == "shared" => TaskOutcome::Stopped {
                stop: Stop::Budget {
                    budget: label,
                    spent: what,
                    kept,
                },
                agent,
                attempts,
            },
            other => other,
        }
    }
}
