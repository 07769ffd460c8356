//! Plan analysis that needs the repository: conflicts predicted between the plan's existing
//! stream branches and the integration tip, and what the history of past runs teaches (learned
//! estimates, the last run's prediction against its wall time, the `--jobs` what-if,
//! bottlenecks). (The pure analysis, waves, schedule and learning, is in
//! [`crate::plan::schedule`] and [`crate::plan::learn`].)

use crate::error::{Error, Result};
use crate::git::Repo;
use crate::plan::learn::{self, Learned, Observation};
use crate::plan::{EstimateUnit, Plan, schedule};
use crate::report::learn_view::{JobsCost, LastRun, LearnedSummary, Learning, WhatIfTable};
use crate::report::plan_view::Predicted;
use crate::report::status_view::PredictedConflict;
use crate::state::history;

pub fn predict(repo: &Repo, plan: &Plan, base_commit: &str) -> Result<Predicted> {
    let mut branches = Vec::new();
    for stream in &plan.streams {
        let name = crate::layout::stream_branch(&plan.name, &stream.name);
        if let Some(tip) = repo.ref_target(&name)?
            && tip != base_commit
        {
            branches.push((stream.name.clone(), tip));
        }
    }
    let integration_ref = crate::layout::integration_ref(&plan.name);
    let integration = repo
        .ref_target(&integration_ref)?
        .map(|tip| ("integration".to_string(), tip));
    let (conflicts, pairs_checked) =
        crate::coordinator::predict(repo, &branches, integration.as_ref())?;
    Ok(Predicted {
        branches: branches.into_iter().map(|(n, _)| n).collect(),
        integration: integration.map(|(_, tip)| tip.to_string()),
        pairs_checked,
        conflicts: conflicts
            .into_iter()
            .map(|p| PredictedConflict {
                left: p.left,
                right: p.right,
                files: p.files,
            })
            .collect(),
        conflicted_before: history::conflicts(repo.common_dir(), plan),
    })
}

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
        .map(observation)
        .collect();
    if observations.is_empty() {
        return Ok(None);
    }
    let mut learned = learn::learn(plan, unit, &observations);
    let (streams, run) = learn::forecast_cost(plan, &observations);
    if run.usd.is_some() || run.tokens.is_some() {
        learned.cost = Some((streams, run));
        let mut jobs_seen: Vec<usize> = observations.iter().filter_map(|o| o.jobs).collect();
        jobs_seen.sort_unstable();
        jobs_seen.dedup();
        for &jobs in &jobs_seen {
            if let Some(cost) = learn::forecast_cost_at(plan, &observations, jobs) {
                learned.cost_by_jobs.insert(jobs, cost);
            }
        }
        learned.jobs_seen = jobs_seen;
    }
    Ok(Some(learned))
}

/// The forecast a new run of `plan` with `jobs` agents starts with: what `streams plan` shows
/// from the history (see [`learn`]), per stream and for the run. With no history its figures are
/// absent (the report says so); `None` only when the history cannot be read (it helps the
/// report, it holds no work).
pub fn forecast(
    repo: &Repo,
    plan: &Plan,
    unit: EstimateUnit,
    jobs: usize,
) -> Option<crate::state::RunForecast> {
    let Some(learned) = learn(repo, plan, unit).ok()? else {
        return Some(crate::state::RunForecast {
            jobs,
            streams: plan
                .streams
                .iter()
                .map(|s| crate::state::StreamForecast {
                    stream: s.name.clone(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        });
    };
    // Past runs with as many agents when there are such, else all past runs.
    let (costs, run_cost) = learned.cost_at(jobs).map(|(cost, _)| cost.clone()).unzip();
    let streams = plan
        .streams
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let tasks = &learned.tasks[i];
            // Only a stream some of whose tasks ran before has a time from experience.
            let known = tasks.iter().any(|p| {
                matches!(
                    p.source,
                    learn::Source::History { .. } | learn::Source::StreamMean { .. }
                )
            });
            let cost = costs.as_ref().and_then(|c| c.get(i));
            crate::state::StreamForecast {
                stream: s.name.clone(),
                seconds: known.then(|| tasks.iter().map(|p| p.value).sum()),
                cost_usd: cost.and_then(|c| c.usd),
                tokens: cost.and_then(|c| c.tokens),
            }
        })
        .collect();
    Some(crate::state::RunForecast {
        history: true,
        jobs,
        makespan_s: Some(schedule::simulate(&learned.plan, jobs).makespan),
        cost_usd: run_cost.as_ref().and_then(|c| c.usd),
        tokens: run_cost.as_ref().and_then(|c| c.tokens),
        streams,
    })
}

/// What `streams plan` adds from experience, or `None` when there is nothing to add (no history
/// and at most one `--jobs` number). `plan` is the plan with the learned estimates (from
/// [`learn`]) when there is a history; `jobs_list` is `--jobs` as given, `jobs` the number the
/// schedule is simulated with.
pub fn learning(
    repo: &Repo,
    plan: &Plan,
    learned: Option<&Learned>,
    unit: EstimateUnit,
    jobs_list: &[usize],
    jobs: usize,
) -> Option<Learning> {
    if learned.is_none() && jobs_list.len() < 2 {
        return None;
    }
    let run_cost = learned
        .and_then(|l| l.cost.as_ref())
        .map(|(_, run)| run.clone());
    let jobs_seen = learned.map(|l| l.jobs_seen.clone()).unwrap_or_default();
    let history = learned;
    let learned = learned.map(|l| LearnedSummary {
        from_history: l.from_history,
        tasks: l.tasks.clone(),
        makespan: schedule::simulate(plan, jobs).makespan,
        makespan_low: schedule::simulate(&l.low, jobs).makespan,
        makespan_high: schedule::simulate(&l.high, jobs).makespan,
        last_run: last_run(repo, plan, unit),
        cost: l.cost.clone(),
    });
    let what_if = (jobs_list.len() > 1).then(|| {
        let (rows, enough_jobs) = learn::what_if(plan, jobs_list);
        // Past `enough_jobs` more agents buy nothing, which that row already says.
        let little_gain = learn::little_gain(&rows)
            .into_iter()
            .filter(|(j, _)| *j < enough_jobs)
            .collect();
        // A row's own cost where past runs had its number of agents.
        let by_jobs = rows
            .iter()
            .filter_map(|row| {
                let (cost, own) = history?.cost_at(row.jobs)?;
                own.then(|| JobsCost {
                    jobs: row.jobs,
                    cost: cost.1.clone(),
                })
            })
            .collect();
        WhatIfTable {
            rows,
            enough_jobs,
            cost: run_cost,
            by_jobs,
            jobs_seen,
            little_gain,
        }
    });
    Some(Learning {
        unit,
        jobs,
        learned,
        what_if,
        bottlenecks: learn::bottlenecks(plan, jobs),
    })
}

/// Replays the prediction for the last finished run of this plan with the history it had, and
/// sets it beside the run's wall time; `None` when that run had no history to predict from (its
/// prediction was in units, not comparable) or its state is gone (`streams clean`).
fn last_run(repo: &Repo, plan: &Plan, unit: EstimateUnit) -> Option<LastRun> {
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
        .map(|r| observation(r))
        .collect();
    if before.is_empty() {
        return None;
    }
    let run_dir = crate::state::StateDir::new(repo.common_dir()).run_dir(&last);
    let state = run_dir.load().ok()?;
    // The plan as that run had it (the file may have changed since).
    let ran = super::session::plan_from_copy(&run_dir, &state).unwrap_or_else(|_| plan.clone());
    let predicted =
        schedule::simulate(&learn::learn(&ran, unit, &before).plan, state.jobs).makespan;
    Some(LastRun {
        run: last,
        jobs: state.jobs,
        predicted,
        actual: state.previous_wall_ms as f64 / 1000.0,
    })
}

fn observation(record: &history::Record) -> Observation {
    Observation {
        stream: record.stream.clone(),
        text_hash: record.text_hash.clone(),
        seconds: record.seconds,
        at: record.at,
        tokens: record.tokens,
        cost_usd: record.cost_usd,
        jobs: record.jobs,
    }
}
