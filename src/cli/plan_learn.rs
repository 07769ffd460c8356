//! What `streams plan` adds from experience: estimates learned from the history of past runs
//! (with their source and a range), the makespan for several numbers of agents
//! (`--jobs 1,2,4,8`), and the bottlenecks on the critical path.
//!
//! The analysis is pure ([`crate::plan::learn`]); this reads the history and renders.

use std::fmt::Write as _;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::git::Repo;
use crate::plan::learn::{self, Learned, Observation};
use crate::plan::{Estimate, EstimateUnit, Plan, schedule};
use crate::state::history;

use super::Context;
use super::plan::{format_number, format_seconds};

/// The plan's predictions from the history, or `None` when no finished run of a plan with this
/// name was recorded.
pub fn learn(repo: &Repo, plan: &Plan, unit: EstimateUnit) -> Result<Option<Learned>> {
    let path = history::path(repo.common_dir());
    let loaded = history::load(&path)
        .map_err(|e| Error::io(format!("could not read the history {}", path.display()), e))?;
    let observations: Vec<Observation> = loaded
        .records
        .iter()
        .filter(|r| r.plan == plan.name && r.outcome == "done")
        .map(|r| Observation {
            stream: r.stream.clone(),
            text_hash: r.text_hash.clone(),
            seconds: r.seconds,
            at: r.at,
        })
        .collect();
    if observations.is_empty() {
        return Ok(None);
    }
    Ok(Some(learn::learn(plan, unit, &observations)))
}

/// The last recorded run of a plan: what the history before it predicted, and what it took.
pub struct LastRun {
    pub run: String,
    pub jobs: usize,
    pub predicted: Estimate,
    pub actual: Estimate,
}

/// Replays the prediction for the last finished run of this plan with the history it had, and
/// sets it beside the run's wall time; `None` when that run had no history to predict from (its
/// prediction was in units, not comparable) or its state is gone (`streams clean`).
pub fn last_run(repo: &Repo, plan: &Plan, unit: EstimateUnit) -> Option<LastRun> {
    let loaded = history::load(&history::path(repo.common_dir())).ok()?;
    let ours: Vec<&history::Record> = loaded
        .records
        .iter()
        .filter(|r| r.plan == plan.name)
        .collect();
    let last = ours.iter().max_by_key(|r| r.at)?.run.clone();
    let began = ours.iter().filter(|r| r.run == last).map(|r| r.at).min()?;
    let before: Vec<Observation> = ours
        .iter()
        .filter(|r| r.run != last && r.at < began && r.outcome == "done")
        .map(|r| Observation {
            stream: r.stream.clone(),
            text_hash: r.text_hash.clone(),
            seconds: r.seconds,
            at: r.at,
        })
        .collect();
    if before.is_empty() {
        return None;
    }
    let run_dir = crate::state::StateDir::new(repo.common_dir()).run_dir(&last);
    let state = run_dir.load().ok()?;
    let ran = super::load::plan_from_copy(&run_dir).unwrap_or_else(|_| plan.clone());
    let predicted =
        schedule::simulate(&learn::learn(&ran, unit, &before).plan, state.jobs).makespan;
    Some(LastRun {
        run: last,
        jobs: state.jobs,
        predicted,
        actual: state.previous_wall_ms as f64 / 1000.0,
    })
}

/// The same for `streams plan --json`: fields added to the document (schema version 1; they
/// are only present when there is something to say).
#[derive(Serialize)]
pub struct Json {
    #[serde(skip_serializing_if = "Option::is_none")]
    learned: Option<LearnedJson>,
    #[serde(skip_serializing_if = "Option::is_none")]
    what_if: Option<WhatIfJson>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    bottlenecks: Vec<BottleneckJson>,
}

#[derive(Serialize)]
struct LearnedJson {
    /// Tasks predicted from their own or their stream's history.
    from_history: usize,
    /// Per stream (plan order), per task: value, low, high (seconds) and source.
    tasks: Vec<Vec<learn::Prediction>>,
    makespan_low: Estimate,
    makespan_high: Estimate,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_run: Option<LastRunJson>,
}

#[derive(Serialize)]
struct LastRunJson {
    run: String,
    jobs: usize,
    predicted: Estimate,
    actual: Estimate,
}

#[derive(Serialize)]
struct WhatIfJson {
    rows: Vec<learn::WhatIf>,
    /// The fewest agents past which more do not shorten the makespan.
    enough_jobs: usize,
}

#[derive(Serialize)]
struct BottleneckJson {
    stream: String,
    work: Estimate,
    makespan: Estimate,
    if_halved: Estimate,
    if_split: Estimate,
}

pub fn json(
    repo: &Repo,
    plan: &Plan,
    learned: Option<&Learned>,
    jobs_list: &[usize],
    jobs: usize,
) -> Option<Json> {
    if learned.is_none() && jobs_list.len() < 2 {
        return None;
    }
    let unit = learned.map_or(EstimateUnit::Units, |l| l.unit);
    let learned = learned.map(|l| LearnedJson {
        from_history: l.from_history,
        tasks: l.tasks.clone(),
        makespan_low: schedule::simulate(&l.low, jobs).makespan,
        makespan_high: schedule::simulate(&l.high, jobs).makespan,
        last_run: last_run(repo, plan, unit).map(|r| LastRunJson {
            run: r.run,
            jobs: r.jobs,
            predicted: r.predicted,
            actual: r.actual,
        }),
    });
    let what_if = (jobs_list.len() > 1).then(|| {
        let (rows, enough_jobs) = learn::what_if(plan, jobs_list);
        WhatIfJson { rows, enough_jobs }
    });
    let bottlenecks = learn::bottlenecks(plan, jobs)
        .into_iter()
        .map(|b| BottleneckJson {
            stream: plan.streams[b.stream].name.clone(),
            work: b.work,
            makespan: b.makespan,
            if_halved: b.if_halved,
            if_split: b.if_split,
        })
        .collect();
    Some(Json {
        learned,
        what_if,
        bottlenecks,
    })
}

fn amount(unit: EstimateUnit, value: Estimate) -> String {
    match unit {
        EstimateUnit::Seconds => format_seconds(value),
        EstimateUnit::Units => {
            let n = format_number(value);
            if n == "1" {
                "1 unit".into()
            } else {
                format!("{n} units")
            }
        }
    }
}

/// The sections shown after the plan's own: learned estimates (with history), the `--jobs`
/// table (more than one number given), bottlenecks (either of those). `plan` is the plan with
/// the predictions as its estimates.
pub fn human(
    ctx: &Context,
    repo: &Repo,
    plan: &Plan,
    learned: Option<&Learned>,
    unit: EstimateUnit,
    jobs_list: &[usize],
    jobs: usize,
) -> Option<String> {
    if learned.is_none() && jobs_list.len() < 2 {
        return None;
    }
    let last = learned.and_then(|_| last_run(repo, plan, unit));
    let ui = &ctx.ui;
    let mut sections = Vec::new();
    if let Some(learned) = learned {
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
        let low = schedule::simulate(&learned.low, jobs).makespan;
        let high = schedule::simulate(&learned.high, jobs).makespan;
        let mid = schedule::simulate(plan, jobs).makespan;
        let _ = writeln!(
            out,
            "  predicted makespan with {}: {} (10th-90th percentile of past runs: {} to {})",
            plural(jobs, "job"),
            amount(unit, mid),
            amount(unit, low),
            amount(unit, high)
        );
        if let Some(last) = last {
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
                format_seconds(last.predicted),
                format_seconds(last.actual),
            );
        }
        sections.push(out);
    }
    if jobs_list.len() > 1 {
        let mut out = String::new();
        let (rows, enough) = learn::what_if(plan, jobs_list);
        let _ = writeln!(
            out,
            "{} (predicted makespan per number of agents)",
            ui.bold("what if")
        );
        for row in &rows {
            let mut line = format!(
                "  {:>4} {}  {}",
                row.jobs,
                if row.jobs == 1 { "job " } else { "jobs" },
                amount(unit, row.makespan)
            );
            if row.jobs == enough {
                line.push_str("  <- more agents no longer help: the dependencies bind");
            }
            let _ = writeln!(out, "{line}");
        }
        if !rows.iter().any(|r| r.jobs == enough) {
            let _ = writeln!(
                out,
                "  more agents stop helping at {}",
                plural(enough, "job")
            );
        }
        sections.push(out);
    }
    let found = learn::bottlenecks(plan, jobs);
    if !found.is_empty() {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{} (the critical path with {}; the makespan if a stream took half as long, or were split in two)",
            ui.bold("bottlenecks"),
            plural(jobs, "job")
        );
        let width = found
            .iter()
            .map(|b| plan.streams[b.stream].name.len())
            .max()
            .unwrap_or(0);
        for b in &found {
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
    Some(sections.join("\n\n"))
}

fn plural(n: usize, what: &str) -> String {
    crate::plan::diagnostic::count(n, what)
}
