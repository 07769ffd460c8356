//! What `streams plan` adds from experience, as text and as fields of its JSON document:
//! learned estimates with their source and range (and the last run's prediction against its
//! wall time), the makespan per number of agents (`--jobs 1,2,4,8`), and the bottlenecks on
//! the critical path. [`crate::ops::plan::learning`] computes it; this only shows it.

use std::fmt::Write as _;

use serde::Serialize;

use super::Ui;
use super::plan_view::amount;
use crate::plan::learn::{Bottleneck, Prediction, WhatIf};
use crate::plan::{Estimate, EstimateUnit, Plan};

/// The learning sections of `streams plan`.
pub struct Learning {
    /// The unit of every estimate below.
    pub unit: EstimateUnit,
    /// The number of agents the makespans and bottlenecks are simulated with.
    pub jobs: usize,
    /// With a history of this plan's runs.
    pub learned: Option<LearnedSummary>,
    /// With more than one `--jobs` number.
    pub what_if: Option<WhatIfTable>,
    /// The streams on the critical path, and what shortening each would give.
    pub bottlenecks: Vec<Bottleneck>,
}

/// Estimates learned from past runs.
#[derive(Serialize)]
pub struct LearnedSummary {
    /// Tasks predicted from their own or their stream's history.
    pub from_history: usize,
    /// Per stream (plan order), per task: value, low, high (seconds) and source.
    pub tasks: Vec<Vec<Prediction>>,
    #[serde(skip)]
    pub makespan: Estimate,
    pub makespan_low: Estimate,
    pub makespan_high: Estimate,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_run: Option<LastRun>,
    /// Per stream and for the run: the cost expected from past runs, when they reported one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost: Option<(
        Vec<crate::plan::learn::CostForecast>,
        crate::plan::learn::CostForecast,
    )>,
}

/// The last recorded run of a plan: what the history before it predicted, and what it took.
#[derive(Serialize)]
pub struct LastRun {
    pub run: String,
    pub jobs: usize,
    pub predicted: Estimate,
    pub actual: Estimate,
}

/// `--jobs 1,2,4,8`: the predicted makespan for each.
#[derive(Serialize)]
pub struct WhatIfTable {
    pub rows: Vec<WhatIf>,
    /// The fewest agents past which more do not shorten the makespan.
    pub enough_jobs: usize,
    /// The run's cost expected from all past runs, when they reported one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost: Option<crate::plan::learn::CostForecast>,
    /// The run's cost expected from past runs with a row's number of agents, for the rows
    /// whose number past runs had.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub by_jobs: Vec<JobsCost>,
    /// The numbers of agents past runs had (empty: the history does not say).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub jobs_seen: Vec<usize>,
    /// Numbers of agents that save too little time over the next smaller one given (each with
    /// that one): the fan-out warning.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub little_gain: Vec<(usize, usize)>,
}

/// A what-if row's cost from past runs with its number of agents.
#[derive(Serialize)]
pub struct JobsCost {
    pub jobs: usize,
    pub cost: crate::plan::learn::CostForecast,
}

/// The fields [`Learning`] adds to `streams plan --json` (schema version 1; each is present
/// only when there is something to say).
#[derive(Serialize)]
pub struct LearningJson<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    learned: Option<&'a LearnedSummary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    what_if: Option<&'a WhatIfTable>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    bottlenecks: Vec<BottleneckJson<'a>>,
}

#[derive(Serialize)]
struct BottleneckJson<'a> {
    stream: &'a str,
    work: Estimate,
    makespan: Estimate,
    if_halved: Estimate,
    if_split: Estimate,
}

impl Learning {
    /// The JSON fields; `plan` is the plan the bottlenecks index into.
    pub fn json<'a>(&'a self, plan: &'a Plan) -> LearningJson<'a> {
        LearningJson {
            learned: self.learned.as_ref(),
            what_if: self.what_if.as_ref(),
            bottlenecks: self
                .bottlenecks
                .iter()
                .map(|b| BottleneckJson {
                    stream: &plan.streams[b.stream].name,
                    work: b.work,
                    makespan: b.makespan,
                    if_halved: b.if_halved,
                    if_split: b.if_split,
                })
                .collect(),
        }
    }

    /// The sections shown after the plan's own: learned estimates (with a history), the
    /// `--jobs` table (more than one number given), bottlenecks. `plan` is the plan with the
    /// predictions as its estimates.
    pub fn human(&self, ui: &Ui, plan: &Plan) -> String {
        let unit = self.unit;
        let jobs = self.jobs;
        let mut sections = Vec::new();
        if let Some(learned) = &self.learned {
            let mut out = String::new();
            let _ = writeln!(
                out,
                "{} ({} of {} from past runs)",
                ui.bold("learned estimates"),
                learned.from_history,
                plural(learned.tasks.iter().map(Vec::len).sum(), "task"),
            );
            let width = plan.streams.iter().map(|s| s.name.len()).max().unwrap_or(0);
            for (s, stream) in plan.streams.iter().enumerate() {
                for (k, task) in stream.tasks.iter().enumerate() {
                    let p = &learned.tasks[s][k];
                    let name = if k == 0 { stream.name.as_str() } else { "" };
                    let summary: String = task.prompt.summary().chars().take(40).collect();
                    let _ = writeln!(
                        out,
                        "  {name:<width$}  {:>6}  {summary:<40}  {}",
                        amount(unit, p.value),
                        p.source.describe()
                    );
                }
            }
            let _ = writeln!(
                out,
                "  predicted makespan with {}: {} (10th-90th percentile of past runs: {} to {})",
                plural(jobs, "job"),
                amount(unit, learned.makespan),
                amount(unit, learned.makespan_low),
                amount(unit, learned.makespan_high)
            );
            if let Some((streams, run)) = &learned.cost {
                for (stream, f) in plan.streams.iter().zip(streams) {
                    let _ = writeln!(out, "  cost of {:<width$}  {}", stream.name, cost_text(f));
                }
                let _ = writeln!(out, "  expected cost of the run: {}", cost_text(run));
            }
            if let Some(last) = &learned.last_run {
                let off = if last.actual > 0.0 {
                    (last.predicted - last.actual) / last.actual * 100.0
                } else {
                    0.0
                };
                let _ = writeln!(
                    out,
                    "  last run {} with {}: predicted {}, took {} ({off:+.0}%)",
                    last.run,
                    plural(last.jobs, "job"),
                    // As the run's own report shows its wall time (`8.5s`), so they can be
                    // compared; whole seconds hid a 2% error behind `9s` against `8s`.
                    seconds(last.predicted),
                    seconds(last.actual),
                );
            }
            sections.push(out);
        }
        if let Some(table) = &self.what_if {
            let mut out = String::new();
            let _ = writeln!(
                out,
                "{} (predicted makespan per number of agents)",
                ui.bold("what if")
            );
            // The median in dollars, else in tokens.
            let money = |c: &crate::plan::learn::CostForecast| {
                c.usd
                    .map(|r| crate::agent::usage::usd(r.median, false))
                    .or_else(|| {
                        c.tokens.map(|t| {
                            format!("{} tokens", crate::agent::usage::tokens(t.median as u64))
                        })
                    })
            };
            let all_runs = table.cost.as_ref().and_then(money);
            // Per row only where some row has a figure of its own: else it would repeat one
            // number, which the line under the table says once.
            let per_row = all_runs.is_some() && !table.by_jobs.is_empty();
            for row in &table.rows {
                let mut line = format!(
                    "  {:>4} {}  {}",
                    row.jobs,
                    if row.jobs == 1 { "job " } else { "jobs" },
                    amount(unit, row.makespan)
                );
                if per_row {
                    match table.by_jobs.iter().find(|c| c.jobs == row.jobs) {
                        Some(own) => {
                            line.push_str(&format!("  {}", money(&own.cost).unwrap_or_default()))
                        }
                        None => line.push_str(&format!(
                            "  {} (all runs)",
                            all_runs.clone().unwrap_or_default()
                        )),
                    }
                }
                if row.jobs == table.enough_jobs {
                    line.push_str("  <- more agents no longer help: the dependencies bind");
                } else if let Some((_, fewer)) =
                    table.little_gain.iter().find(|(j, _)| *j == row.jobs)
                {
                    line.push_str(&format!(
                        "  <- little time saved over {}, for more agents to pay",
                        plural(*fewer, "job")
                    ));
                }
                let _ = writeln!(out, "{line}");
            }
            if !table.little_gain.is_empty() {
                let _ = writeln!(
                    out,
                    "  where marked, more agents save less than {:.0}% of the time: with many small tasks each one costs its own start and context for little time",
                    crate::plan::learn::FAN_OUT_GAIN * 100.0
                );
            }
            if per_row {
                let _ = writeln!(
                    out,
                    "  cost: the run's median from past runs with that number of agents; (all runs): none had it, the median of every past run"
                );
            } else if let Some(all_runs) = &all_runs {
                let seen = match table.jobs_seen.as_slice() {
                    [] => "past runs do not say how many agents they had".to_string(),
                    [one] => format!("every past run had {}", plural(*one, "agent")),
                    many => format!(
                        "past runs had {} agents",
                        many.iter()
                            .map(|j| j.to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                };
                let _ = writeln!(
                    out,
                    "  cost: {all_runs} at any of these numbers of agents as far as the history tells ({seen}); a run with another number teaches what it changes (resolutions after conflicts count)"
                );
            }
            if !table.rows.iter().any(|r| r.jobs == table.enough_jobs) {
                let _ = writeln!(
                    out,
                    "  more agents stop helping at {}",
                    plural(table.enough_jobs, "job")
                );
            }
            sections.push(out);
        }
        if !self.bottlenecks.is_empty() {
            let mut out = String::new();
            let _ = writeln!(
                out,
                "{} (the critical path with {}; the makespan if a stream took half as long, or were split in two)",
                ui.bold("bottlenecks"),
                plural(jobs, "job")
            );
            let width = self
                .bottlenecks
                .iter()
                .map(|b| plan.streams[b.stream].name.len())
                .max()
                .unwrap_or(0);
            for b in &self.bottlenecks {
                let _ = writeln!(
                    out,
                    "  {:<width$}  {} of work  halved: {}  split in two: {}",
                    plan.streams[b.stream].name,
                    amount(unit, b.work),
                    amount(unit, b.if_halved),
                    amount(unit, b.if_split),
                );
            }
            sections.push(out);
        }
        let sections: Vec<&str> = sections.iter().map(|s| s.trim_end()).collect();
        sections.join("\n\n")
    }
}

fn seconds(value: Estimate) -> String {
    crate::duration::fmt_duration_ms((value.max(0.0) * 1000.0).round() as u64)
}

/// `$0.0121 (10th-90th percentile $0.0100 to $0.0150), 3.9k tokens, from 2 tasks' past runs`.
fn cost_text(f: &crate::plan::learn::CostForecast) -> String {
    let money = |v: f64| crate::agent::usage::usd(v, false);
    let mut parts = Vec::new();
    match &f.usd {
        Some(r) => parts.push(format!(
            "{} (10th-90th percentile {} to {})",
            money(r.median),
            money(r.low),
            money(r.high)
        )),
        None => parts.push("cost unknown".to_string()),
    }
    if let Some(t) = &f.tokens {
        parts.push(format!(
            "{} tokens",
            crate::agent::usage::tokens(t.median as u64)
        ));
    }
    let mut from = Vec::new();
    if f.from_task > 0 {
        from.push(format!(
            "{} from their own past runs",
            plural(f.from_task, "task")
        ));
    }
    if f.from_stream > 0 {
        from.push(format!(
            "{} from their stream's",
            plural(f.from_stream, "task")
        ));
    }
    if f.unknown > 0 {
        from.push(format!("{} never reported", plural(f.unknown, "task")));
    }
    parts.push(from.join(", "));
    parts.join(", ")
}

fn plural(n: usize, what: &str) -> String {
    crate::plan::diagnostic::count(n, what)
}
