//! Forecast against actual: what `streams plan` forecast for a run as it started (kept in its
//! state, see [`crate::state::RunForecast`]) beside what it took, for `report.json`, `report.md`
//! and the step summary.

use std::fmt::Write as _;

use serde::Serialize;

use crate::state::{RunForecast, StreamForecast};

/// The forecast and the actual figures of each stream and of the run.
#[derive(Clone, Debug, Serialize)]
pub struct ForecastReport {
    /// There was a history to forecast from (else every forecast figure is absent).
    pub history: bool,
    /// The number of agents the run's time was forecast with.
    pub jobs: usize,
    /// A central integration: each stream ran on a machine of its own, so the run's actual
    /// time is its longest stream's (not the integration's own wall time).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub elsewhere: bool,
    pub streams: Vec<ForecastRow>,
    /// The run: its makespan against its wall time, its total cost.
    pub run: ForecastRow,
}

#[derive(Clone, Debug, Serialize)]
pub struct ForecastRow {
    /// Seconds (a stream's agent time, the run's makespan) and cost, medians with their
    /// 10th-90th percentile range; each absent where there was no history.
    pub forecast: StreamForecast,
    /// A stream's agent time, the run's wall time.
    pub actual_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actual_cost_usd: Option<f64>,
    pub actual_tokens: u64,
}

/// Sets `forecast` beside the run's report: each stream's agent time and cost, the run's wall
/// time (`elsewhere`, a central integration's: its longest stream's) and total.
pub fn build(
    forecast: &RunForecast,
    report: &super::summary::RunReport,
    elsewhere: bool,
) -> ForecastReport {
    let tally = |name: &str| {
        report.ledger.as_ref().and_then(|l| {
            l.streams
                .iter()
                .find(|s| s.stream == name)
                .map(|s| &s.tally)
        })
    };
    let streams: Vec<ForecastRow> = forecast
        .streams
        .iter()
        .map(|f| {
            let actual = tally(&f.stream);
            ForecastRow {
                forecast: f.clone(),
                actual_ms: report
                    .streams
                    .iter()
                    .find(|s| s.name == f.stream)
                    .map_or(0, |s| s.time_ms),
                actual_cost_usd: actual.and_then(|t| t.cost_usd),
                actual_tokens: actual.map_or(0, |t| t.tokens),
            }
        })
        .collect();
    let total = report.ledger.as_ref().map(|l| &l.total);
    let actual_ms = if elsewhere {
        streams.iter().map(|r| r.actual_ms).max().unwrap_or(0)
    } else {
        report.wall_ms
    };
    ForecastReport {
        history: forecast.history,
        jobs: forecast.jobs,
        elsewhere,
        streams,
        run: ForecastRow {
            forecast: StreamForecast {
                stream: "run".into(),
                seconds: forecast.makespan_s,
                cost_usd: forecast.cost_usd,
                tokens: forecast.tokens,
            },
            actual_ms,
            actual_cost_usd: total.and_then(|t| t.cost_usd),
            actual_tokens: total.map_or(0, |t| t.tokens),
        },
    }
}

/// The `### Forecast against actual` section of `report.md` and the step summary.
pub fn render_markdown(report: &ForecastReport) -> String {
    let mut out = String::from("\n### Forecast against actual\n\n");
    out.push_str("| stream | forecast time | actual time | forecast cost | actual cost |\n");
    out.push_str("| --- | ---: | ---: | ---: | ---: |\n");
    let row = |name: &str, r: &ForecastRow| {
        let had_history = r.forecast.seconds.is_some();
        format!(
            "| {name} | {} | {} | {} | {} |\n",
            r.forecast
                .seconds
                .map_or_else(|| "no history".to_string(), seconds),
            crate::duration::fmt_duration_ms(r.actual_ms),
            forecast_cost(&r.forecast, had_history),
            actual_cost(r)
        )
    };
    for r in &report.streams {
        out.push_str(&row(&r.forecast.stream, r));
    }
    out.push_str(&row("**run**", &report.run));
    if report.history && report.elsewhere {
        out.push_str(
            "\nForecast as the integration started, from the history of earlier runs here (medians): a stream's agent time; each stream ran on a machine of its own, so the run's time is its longest stream's.\n",
        );
    } else if report.history {
        let _ = writeln!(
            out,
            "\nForecast as the run started, from the history of earlier runs (medians): a stream's agent time, the run's time from start to end with {}.",
            crate::plan::diagnostic::count(report.jobs, "job")
        );
    } else {
        out.push_str(
            "\nNo earlier run of this plan had finished a task: there was no history to forecast from.\n",
        );
    }
    out
}

fn seconds(value: f64) -> String {
    crate::duration::fmt_duration_ms((value.max(0.0) * 1000.0).round() as u64)
}

/// The median cost, else tokens; `unknown` where the history had time but no usage.
fn forecast_cost(f: &StreamForecast, had_history: bool) -> String {
    match (&f.cost_usd, &f.tokens) {
        (Some(usd), _) => crate::agent::usage::usd(usd.median, false),
        (None, Some(tokens)) => format!(
            "{} tokens",
            crate::agent::usage::tokens(tokens.median.round() as u64)
        ),
        (None, None) if had_history => "unknown".into(),
        (None, None) => "no history".into(),
    }
}

fn actual_cost(r: &ForecastRow) -> String {
    match (r.actual_cost_usd, r.actual_tokens) {
        (Some(usd), _) => crate::agent::usage::usd(usd, false),
        // No agent time and nothing reported: nothing ran (a budget or a failed dependency kept
        // it from starting), so nothing was spent.
        (None, 0) if r.actual_ms == 0 => "-".into(),
        (None, 0) => "unknown".into(),
        (None, tokens) => format!("{} tokens", crate::agent::usage::tokens(tokens)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::learn::Range;

    fn row(stream: &str, seconds: Option<f64>, usd: Option<f64>, actual: u64) -> ForecastRow {
        ForecastRow {
            forecast: StreamForecast {
                stream: stream.into(),
                seconds,
                cost_usd: usd.map(|m| Range {
                    median: m,
                    low: m,
                    high: m,
                }),
                tokens: None,
            },
            actual_ms: actual,
            actual_cost_usd: Some(0.02),
            actual_tokens: 4000,
        }
    }

    #[test]
    fn a_stream_without_history_says_so_beside_one_with() {
        let report = ForecastReport {
            history: true,
            jobs: 2,
            elsewhere: false,
            streams: vec![
                row("api", Some(90.0), Some(0.0121), 95_000),
                row("new", None, None, 30_000),
            ],
            run: row("run", Some(90.0), Some(0.0121), 100_000),
        };
        let md = render_markdown(&report);
        assert!(
            md.contains("| api | 1m30s | 1m35s | $0.0121 | $0.0200 |"),
            "{md}"
        );
        assert!(
            md.contains("| new | no history | 30.0s | no history | $0.0200 |"),
            "{md}"
        );
        assert!(
            md.contains("| **run** | 1m30s | 1m40s | $0.0121 | $0.0200 |"),
            "{md}"
        );
        assert!(md.contains("with 2 jobs"), "{md}");
    }

    #[test]
    fn a_stream_that_never_ran_spent_nothing_and_one_that_ran_silently_is_unknown() {
        let mut never = row("never", Some(10.0), Some(0.4), 0);
        never.actual_cost_usd = None;
        never.actual_tokens = 0;
        let mut silent = row("silent", Some(10.0), Some(0.4), 2_000);
        silent.actual_cost_usd = None;
        silent.actual_tokens = 0;
        let report = ForecastReport {
            history: true,
            jobs: 2,
            elsewhere: false,
            streams: vec![never, silent],
            run: row("run", Some(10.0), Some(0.8), 2_000),
        };
        let md = render_markdown(&report);
        assert!(md.contains("| never | 10.0s | 0ms | $0.4000 | - |"), "{md}");
        assert!(
            md.contains("| silent | 10.0s | 2.0s | $0.4000 | unknown |"),
            "{md}"
        );
    }
}
