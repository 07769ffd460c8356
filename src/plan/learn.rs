//! Plans that learn: estimates from what past runs took, what-if over the number of agents, and
//! where splitting work would pay.
//!
//! Pure: the caller reads the history (see `state::history`) and passes [`Observation`]s. Each
//! task's prediction comes from the first source that has something:
//!
//! 1. the median of the last [`RECENT`] runs of the same stream and the same task text;
//! 2. the mean of the stream's past tasks;
//! 3. the plan's `estimate`;
//! 4. one unit.
//!
//! With any history, predictions are seconds; a plan whose estimates are plain numbers then
//! counts a unit as the history's mean task time, so the sources can be added up.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::model::{Estimate, Plan, Prompt};
use super::schedule;
use super::{DEFAULT_ESTIMATE, EstimateUnit};

/// How many recent runs of a task its median is taken over.
pub const RECENT: usize = 5;

/// One finished task from the history.
#[derive(Clone, Debug, PartialEq)]
pub struct Observation {
    pub stream: String,
    pub text_hash: String,
    pub seconds: f64,
    /// When it finished (ordering only).
    pub at: u64,
    /// What its agent used and cost, when it reported.
    pub tokens: Option<u64>,
    pub cost_usd: Option<f64>,
    /// How many agents its run had at once, when the history says.
    pub jobs: Option<usize>,
}

/// A forecast of what something costs: the median and the 10th-90th percentile range.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Range {
    pub median: f64,
    pub low: f64,
    pub high: f64,
}

impl Range {
    fn add(&self, other: &Range) -> Range {
        Range {
            median: self.median + other.median,
            low: self.low + other.low,
            high: self.high + other.high,
        }
    }
}

/// What a stream (or the run) is expected to cost, from the history.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct CostForecast {
    /// `None` where no past run of its tasks reported a cost.
    pub usd: Option<Range>,
    pub tokens: Option<Range>,
    /// Tasks forecast from their own past runs, from their stream's, and not at all.
    pub from_task: usize,
    pub from_stream: usize,
    pub unknown: usize,
}

/// [`forecast_cost`] from the past runs that had `jobs` agents at once; `None` when there are
/// none, or when they know fewer of the plan's tasks than all past runs do (a forecast that
/// leaves out tasks would look cheaper than it is).
pub fn forecast_cost_at(
    plan: &Plan,
    history: &[Observation],
    jobs: usize,
) -> Option<(Vec<CostForecast>, CostForecast)> {
    let at: Vec<Observation> = history
        .iter()
        .filter(|o| o.jobs == Some(jobs))
        .cloned()
        .collect();
    if at.is_empty() {
        return None;
    }
    let (_, all) = forecast_cost(plan, history);
    let (streams, run) = forecast_cost(plan, &at);
    let known = |f: &CostForecast| f.from_task + f.from_stream;
    let priced = |f: &CostForecast| (f.usd.is_some(), f.tokens.is_some());
    (known(&run) == known(&all) && priced(&run) == priced(&all)).then_some((streams, run))
}

/// Per stream (plan order) and for the run: the cost expected from the history. A task's
/// figure is from the last [`RECENT`] runs of the same task, else from its stream's past tasks.
pub fn forecast_cost(plan: &Plan, history: &[Observation]) -> (Vec<CostForecast>, CostForecast) {
    let mut sorted: Vec<&Observation> = history.iter().collect();
    sorted.sort_by_key(|o| o.at);
    let range = |values: &[f64]| {
        (!values.is_empty()).then(|| Range {
            median: percentile(values, 0.5),
            low: percentile(values, 0.1),
            high: percentile(values, 0.9),
        })
    };
    let sum = |a: Option<Range>, b: Option<Range>| match (a, b) {
        (Some(a), Some(b)) => Some(a.add(&b)),
        (a, b) => a.or(b),
    };
    let mut streams = Vec::new();
    let mut run = CostForecast::default();
    for stream in &plan.streams {
        let mut f = CostForecast::default();
        let figures = |same: &dyn Fn(&Observation) -> bool| {
            let seen: Vec<&&Observation> = sorted.iter().filter(|o| same(o)).collect();
            let recent = &seen[seen.len().saturating_sub(RECENT)..];
            let usd: Vec<f64> = recent.iter().filter_map(|o| o.cost_usd).collect();
            let tokens: Vec<f64> = recent
                .iter()
                .filter_map(|o| o.tokens.map(|t| t as f64))
                .collect();
            (range(&usd), range(&tokens))
        };
        for task in &stream.tasks {
            let hash = text_hash(&task.prompt);
            let (mut usd, mut tokens) =
                figures(&|o: &Observation| o.stream == stream.name && o.text_hash == hash);
            if usd.is_some() || tokens.is_some() {
                f.from_task += 1;
            } else {
                (usd, tokens) = figures(&|o: &Observation| o.stream == stream.name);
                if usd.is_some() || tokens.is_some() {
                    f.from_stream += 1;
                } else {
                    f.unknown += 1;
                }
            }
            f.usd = sum(f.usd, usd);
            f.tokens = sum(f.tokens, tokens);
        }
        run.usd = sum(run.usd, f.usd);
        run.tokens = sum(run.tokens, f.tokens);
        run.from_task += f.from_task;
        run.from_stream += f.from_stream;
        run.unknown += f.unknown;
        streams.push(f);
    }
    (streams, run)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "source")]
pub enum Source {
    /// The median of the last runs of this task.
    History { runs: usize },
    /// The mean of the stream's past tasks (this task's text is new).
    StreamMean { runs: usize },
    /// The plan's `estimate`.
    Estimate,
    /// Nothing known: one unit (with history, a unit is the mean past task).
    Default,
}

impl Source {
    pub fn describe(self) -> String {
        match self {
            Source::History { runs } => format!("median of the last {}", plural(runs, "run")),
            Source::StreamMean { runs } => {
                format!("mean of the stream's {}", plural(runs, "past task"))
            }
            Source::Estimate => "the plan's estimate".into(),
            Source::Default => "no history, no estimate: one unit".into(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Prediction {
    pub value: Estimate,
    /// The 10th and 90th percentiles of what it took (the value itself without history).
    pub low: Estimate,
    pub high: Estimate,
    #[serde(flatten)]
    pub source: Source,
}

/// How many of the latest runs in which both streams of a pair took part say whether the pair
/// conflicts. Older runs are forgotten, so a pair kept apart that long runs at once again, and
/// is kept apart again if it still conflicts.
pub const CONFLICT_RUNS: usize = 10;

/// One stream's part in a past run (one of its history lines).
#[derive(Clone, Debug, PartialEq)]
pub struct Met {
    pub run: String,
    /// When its task finished (ordering only).
    pub at: u64,
    pub stream: String,
    /// The streams whose work its own conflicted with in that run.
    pub conflicted_with: Vec<String>,
}

/// A pair of a plan's streams that conflicted in earlier runs: `conflicted` of the last `runs`
/// runs (at most [`CONFLICT_RUNS`]) in which both took part. A run keeps such a pair apart.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PairHistory {
    /// In plan order.
    pub left: String,
    pub right: String,
    pub conflicted: usize,
    pub runs: usize,
}

/// The pairs of `plan`'s streams that conflicted in the runs `met` tells of, in plan order.
pub fn conflicts(plan: &Plan, met: &[Met]) -> Vec<PairHistory> {
    use std::collections::{BTreeMap, BTreeSet};
    // Per run: when it ended, the streams that took part, and the pairs that conflicted.
    #[derive(Default)]
    struct Run<'a> {
        at: u64,
        streams: BTreeSet<&'a str>,
        pairs: BTreeSet<(&'a str, &'a str)>,
    }
    let mut runs: BTreeMap<&str, Run> = BTreeMap::new();
    for m in met {
        let run = runs.entry(&m.run).or_default();
        run.at = run.at.max(m.at);
        run.streams.insert(&m.stream);
        for other in &m.conflicted_with {
            let pair = if m.stream.as_str() <= other.as_str() {
                (m.stream.as_str(), other.as_str())
            } else {
                (other.as_str(), m.stream.as_str())
            };
            run.pairs.insert(pair);
        }
    }
    let mut newest_first: Vec<&Run> = runs.values().collect();
    newest_first.sort_by_key(|run| std::cmp::Reverse(run.at));
    let mut out = Vec::new();
    for (i, left) in plan.streams.iter().enumerate() {
        for right in &plan.streams[i + 1..] {
            let (l, r) = (left.name.as_str(), right.name.as_str());
            let key = if l <= r { (l, r) } else { (r, l) };
            let both: Vec<&&Run> = newest_first
                .iter()
                .filter(|run| run.streams.contains(l) && run.streams.contains(r))
                .take(CONFLICT_RUNS)
                .collect();
            let conflicted = both.iter().filter(|run| run.pairs.contains(&key)).count();
            if conflicted > 0 {
                out.push(PairHistory {
                    left: l.to_string(),
                    right: r.to_string(),
                    conflicted,
                    runs: both.len(),
                });
            }
        }
    }
    out
}

/// A plan's predictions, and the plan with them as its estimates (for the schedule analysis).
#[derive(Clone, Debug)]
pub struct Learned {
    /// Per stream, per task.
    pub tasks: Vec<Vec<Prediction>>,
    pub unit: EstimateUnit,
    /// The plan with every task's `estimate` set to its prediction; `low` and `high` likewise.
    pub plan: Plan,
    pub low: Plan,
    pub high: Plan,
    /// Tasks predicted from their own or their stream's history.
    pub from_history: usize,
    /// What each stream and the run are expected to cost (set by the caller when the history
    /// has figures: [`forecast_cost`]).
    pub cost: Option<(Vec<CostForecast>, CostForecast)>,
    /// The same from the runs that had a given number of agents at once, for each number the
    /// history has such a forecast for ([`forecast_cost_at`]; set by the caller).
    pub cost_by_jobs: BTreeMap<usize, (Vec<CostForecast>, CostForecast)>,
    /// The numbers of agents past runs had at once (empty: the history does not say).
    pub jobs_seen: Vec<usize>,
}

impl Learned {
    /// The cost forecast for a run with `jobs` agents: from past runs with as many when there
    /// are such (true), else from all past runs (false).
    pub fn cost_at(&self, jobs: usize) -> Option<(&(Vec<CostForecast>, CostForecast), bool)> {
        match self.cost_by_jobs.get(&jobs) {
            Some(cost) => Some((cost, true)),
            None => self.cost.as_ref().map(|cost| (cost, false)),
        }
    }
}

/// A stable 64-bit FNV-1a hash of a task's wording (its text, or its prompt file's path), as 16
/// hex digits. std's hasher may change between Rust releases; this must not, or the history
/// would forget every task.
pub fn text_hash(prompt: &Prompt) -> String {
    let text = match prompt {
        Prompt::Text(text) => text.clone(),
        Prompt::File(path) => format!("file:{}", path.display()),
    };
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in text.as_bytes() {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{hash:016x}")
}

pub fn learn(plan: &Plan, unit: EstimateUnit, history: &[Observation]) -> Learned {
    let mut sorted: Vec<&Observation> = history.iter().collect();
    sorted.sort_by_key(|o| o.at);
    let use_history = !history.is_empty();
    // With history everything is seconds; a plan in units counts a unit as a typical task.
    let unit_seconds = if use_history && unit == EstimateUnit::Units {
        history.iter().map(|o| o.seconds).sum::<f64>() / history.len() as f64
    } else {
        1.0
    };
    let mut tasks = Vec::with_capacity(plan.streams.len());
    let mut from_history = 0;
    for stream in &plan.streams {
        let of_stream: Vec<f64> = sorted
            .iter()
            .filter(|o| o.stream == stream.name)
            .map(|o| o.seconds)
            .collect();
        let mut predictions = Vec::with_capacity(stream.tasks.len());
        for task in &stream.tasks {
            let hash = text_hash(&task.prompt);
            let same: Vec<f64> = sorted
                .iter()
                .filter(|o| o.stream == stream.name && o.text_hash == hash)
                .map(|o| o.seconds)
                .collect();
            let prediction = if !same.is_empty() {
                let recent = &same[same.len().saturating_sub(RECENT)..];
                from_history += 1;
                Prediction {
                    value: percentile(recent, 0.5),
                    low: percentile(recent, 0.1),
                    high: percentile(recent, 0.9),
                    source: Source::History { runs: recent.len() },
                }
            } else if !of_stream.is_empty() {
                from_history += 1;
                Prediction {
                    value: of_stream.iter().sum::<f64>() / of_stream.len() as f64,
                    low: percentile(&of_stream, 0.1),
                    high: percentile(&of_stream, 0.9),
                    source: Source::StreamMean {
                        runs: of_stream.len(),
                    },
                }
            } else {
                let written = task.estimate.or(stream.estimate);
                let value = written.unwrap_or(DEFAULT_ESTIMATE) * unit_seconds;
                Prediction {
                    value,
                    low: value,
                    high: value,
                    source: if written.is_some() {
                        Source::Estimate
                    } else {
                        Source::Default
                    },
                }
            };
            predictions.push(prediction);
        }
        tasks.push(predictions);
    }
    let with = |pick: fn(&Prediction) -> Estimate| {
        let mut out = plan.clone();
        for (s, stream) in out.streams.iter_mut().enumerate() {
            for (k, task) in stream.tasks.iter_mut().enumerate() {
                task.estimate = Some(pick(&tasks[s][k]));
            }
        }
        out
    };
    Learned {
        plan: with(|p| p.value),
        low: with(|p| p.low),
        high: with(|p| p.high),
        unit: if use_history {
            EstimateUnit::Seconds
        } else {
            unit
        },
        tasks,
        from_history,
        cost: None,
        cost_by_jobs: BTreeMap::new(),
        jobs_seen: Vec::new(),
    }
}

/// Linear interpolation between the closest ranks; `values` in any order, not empty.
fn percentile(values: &[f64], q: f64) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let at = q * (v.len() - 1) as f64;
    let (lo, hi) = (at.floor() as usize, at.ceil() as usize);
    v[lo] + (v[hi] - v[lo]) * (at - lo as f64)
}

/// The predicted makespan at one number of agents.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct WhatIf {
    pub jobs: usize,
    pub makespan: Estimate,
}

/// The makespan for each number of agents, and the fewest agents past which more no longer
/// help (the critical path or the dependencies bind), if one of those given reaches it.
pub fn what_if(plan: &Plan, jobs: &[usize]) -> (Vec<WhatIf>, usize) {
    let rows = jobs
        .iter()
        .map(|&j| WhatIf {
            jobs: j.max(1),
            makespan: schedule::simulate(plan, j.max(1)).makespan,
        })
        .collect();
    // With one agent per stream nothing ever waits for an agent: no more can help.
    let unlimited = schedule::simulate(plan, plan.streams.len().max(1)).makespan;
    let enough = (1..=plan.streams.len().max(1))
        .find(|&j| schedule::simulate(plan, j).makespan <= unlimited + 1e-9)
        .unwrap_or(1);
    (rows, enough)
}

/// Below this share of the makespan saved, more agents buy too little time for what they cost.
pub const FAN_OUT_GAIN: f64 = 0.25;

/// The numbers of agents in `rows` that save less than [`FAN_OUT_GAIN`] of the makespan over
/// the next smaller number given: fanning out there buys little time (many small tasks, or
/// dependencies that bind) while every agent costs its own start and context.
pub fn little_gain(rows: &[WhatIf]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    for row in rows {
        let fewer = rows
            .iter()
            .filter(|r| r.jobs < row.jobs)
            .max_by_key(|r| r.jobs);
        if let Some(fewer) = fewer
            && fewer.makespan > 0.0
            && (fewer.makespan - row.makespan) / fewer.makespan < FAN_OUT_GAIN
        {
            out.push((row.jobs, fewer.jobs));
        }
    }
    out
}

/// A stream on the critical path, and the makespan if it took half as long or were split in two
/// streams running side by side.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Bottleneck {
    pub stream: usize,
    pub work: Estimate,
    pub makespan: Estimate,
    pub if_halved: Estimate,
    pub if_split: Estimate,
}

pub fn bottlenecks(plan: &Plan, jobs: usize) -> Vec<Bottleneck> {
    let work = schedule::stream_work(plan);
    let base = schedule::simulate(plan, jobs);
    let halve = |p: &mut Plan, s: usize| {
        let stream = &p.streams[s].clone();
        for task in &mut p.streams[s].tasks {
            task.estimate = Some(plan.estimate_for(stream, task) / 2.0);
        }
    };
    base.critical_path
        .streams
        .iter()
        .map(|&s| {
            let mut halved = plan.clone();
            halve(&mut halved, s);
            let mut split = halved.clone();
            let mut twin = split.streams[s].clone();
            let name = split.streams[s].name.clone();
            twin.name = format!("{name}~2");
            for other in &mut split.streams {
                if other.depends_on.contains(&name) {
                    other.depends_on.push(twin.name.clone());
                }
            }
            split.streams.push(twin);
            Bottleneck {
                stream: s,
                work: work[s],
                makespan: base.makespan,
                if_halved: schedule::simulate(&halved, jobs).makespan,
                if_split: schedule::simulate(&split, jobs).makespan,
            }
        })
        .collect()
}

fn plural(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::parse_simple;

    fn plan() -> Plan {
        parse_simple(
            r#"
[plan]
name = "p"
agent = ["a"]
[[stream]]
name = "db"
owns = ["db/**"]
tasks = ["schema", "index"]
[[stream]]
name = "api"
owns = ["api/**"]
depends_on = ["db"]
tasks = ["login"]
[[stream]]
name = "ui"
owns = ["ui/**"]
tasks = [{ prompt = "form", estimate = "30s" }]
"#,
        )
        .unwrap()
    }

    fn seen(plan: &Plan, stream: &str, task: usize, seconds: f64, at: u64) -> Observation {
        let s = plan.stream(stream).unwrap();
        Observation {
            stream: stream.into(),
            text_hash: text_hash(&s.tasks[task].prompt),
            seconds,
            at,
            tokens: None,
            cost_usd: None,
            jobs: None,
        }
    }

    #[test]
    fn each_source_in_turn() {
        let p = plan();
        let history = vec![
            seen(&p, "db", 0, 100.0, 1),
            seen(&p, "db", 0, 10.0, 2),
            seen(&p, "db", 0, 12.0, 3),
            seen(&p, "db", 0, 14.0, 4),
            seen(&p, "db", 0, 16.0, 5),
            seen(&p, "db", 0, 18.0, 6),
        ];
        let learned = learn(&p, EstimateUnit::Seconds, &history);
        let db = &learned.tasks[0];
        // The oldest run (100s) is past the last five.
        assert_eq!(db[0].value, 14.0);
        assert_eq!(db[0].source, Source::History { runs: 5 });
        assert!((db[0].low - 10.8).abs() < 1e-9 && (db[0].high - 17.2).abs() < 1e-9);
        // `index` is new: the stream's mean over all six.
        assert_eq!(db[1].source, Source::StreamMean { runs: 6 });
        assert_eq!(db[1].value, 170.0 / 6.0);
        assert_eq!(learned.tasks[1][0].source, Source::Default);
        assert_eq!(learned.tasks[2][0].source, Source::Estimate);
        assert_eq!(learned.tasks[2][0].value, 30.0);
        assert_eq!(learned.from_history, 2);
        assert_eq!(learned.plan.streams[0].tasks[0].estimate, Some(14.0));
    }

    #[test]
    fn units_count_as_a_typical_task_once_there_is_history() {
        let p = parse_simple(
            "[plan]\nname = \"p\"\nagent = [\"a\"]\n[[stream]]\nname = \"s\"\nowns = [\"s/**\"]\ntasks = [\"a\", { prompt = \"b\", estimate = 2 }]\n",
        )
        .unwrap();
        let learned = learn(&p, EstimateUnit::Units, &[seen(&p, "s", 0, 8.0, 1)]);
        assert_eq!(learned.unit, EstimateUnit::Seconds);
        assert_eq!(learned.tasks[0][1].value, 8.0, "the stream's mean");
        let none = learn(&p, EstimateUnit::Units, &[]);
        assert_eq!(none.tasks[0][1].value, 2.0);
        assert_eq!(none.unit, EstimateUnit::Units);
    }

    #[test]
    fn more_jobs_stop_helping_where_dependencies_bind() {
        let p = plan();
        let (rows, enough) = what_if(&p, &[1, 2, 4]);
        let makespans: Vec<f64> = rows.iter().map(|r| r.makespan).collect();
        // db (2) -> api (1) is 3 units; ui is 30 "seconds" in a plan mixing units: 30.
        assert_eq!(makespans, [33.0, 30.0, 30.0]);
        assert_eq!(enough, 2);
    }

    #[test]
    fn bottlenecks_on_the_critical_path() {
        let p = parse_simple(
            "[plan]\nname = \"p\"\nagent = [\"a\"]\n[[stream]]\nname = \"a\"\nowns = [\"a/**\"]\ntasks = [\"1\", \"2\", \"3\", \"4\"]\n[[stream]]\nname = \"b\"\nowns = [\"b/**\"]\ndepends_on = [\"a\"]\ntasks = [\"1\"]\n[[stream]]\nname = \"c\"\nowns = [\"c/**\"]\ntasks = [\"1\"]\n",
        )
        .unwrap();
        let found = bottlenecks(&p, 4);
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].stream, 0);
        assert_eq!(found[0].makespan, 5.0);
        assert_eq!(found[0].if_halved, 3.0);
        assert_eq!(found[0].if_split, 3.0);
        // With one agent nothing runs beside anything: splitting gains nothing.
        let one = bottlenecks(&p, 1);
        assert_eq!(one[0].if_split, 6.0);
        assert_eq!(one[0].if_halved, 4.0);
    }

    #[test]
    fn pairs_that_conflicted_are_counted_over_the_runs_both_took_part_in() {
        let p = plan();
        let met = |run: &str, at: u64, stream: &str, with: &[&str]| Met {
            run: run.into(),
            at,
            stream: stream.into(),
            conflicted_with: with.iter().map(|w| w.to_string()).collect(),
        };
        // r1: ui met db; r2: db and ui, no conflict; r3: api alone with db (ui absent).
        let history = vec![
            met("r1", 1, "db", &[]),
            met("r1", 2, "ui", &["db"]),
            met("r2", 3, "db", &[]),
            met("r2", 4, "ui", &[]),
            met("r3", 5, "db", &[]),
            met("r3", 6, "api", &[]),
        ];
        assert_eq!(
            conflicts(&p, &history),
            [PairHistory {
                left: "db".into(),
                right: "ui".into(),
                conflicted: 1,
                runs: 2,
            }]
        );
        // Only the last CONFLICT_RUNS runs with both count: older conflicts are forgotten.
        let mut clean: Vec<Met> = (0..CONFLICT_RUNS as u64)
            .flat_map(|i| {
                let run = format!("later{i}");
                [met(&run, 10 + i, "db", &[]), met(&run, 10 + i, "ui", &[])]
            })
            .collect();
        clean.extend(history);
        assert!(conflicts(&p, &clean).is_empty());
    }
}
