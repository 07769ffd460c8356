//! The report at the end of a run: a table for people, `report.json` and `report.md` in the run
//! directory, and the GitHub Actions step summary.

use std::fmt::Write as _;

use serde::Serialize;

use super::{Ui, fmt_duration_ms};
use crate::state::{RunPhase, RunState, StreamState, TaskState, WorkStats};

/// Version of the `report.json` schema.
pub const REPORT_SCHEMA: u32 = 1;

#[derive(Clone, Debug, Serialize)]
pub struct RunReport {
    pub schema: u32,
    pub run_id: String,
    pub plan: String,
    pub base: String,
    pub integration_branch: String,
    pub integration_tip: String,
    /// `integrated`, `failed`, `skipped` (every stream integrated but those left out with
    /// `streams skip`), `halted`, `interrupted`, `aborted` or `running`.
    pub status: String,
    pub wall_ms: u64,
    /// Agent time summed over every task.
    pub agent_ms: u64,
    /// `agent_ms / wall_ms`: how much faster than running the tasks one after another.
    pub speedup: f64,
    pub streams: Vec<StreamReport>,
    /// What the agents used and cost: in all, per stream, per task (absent when no agent
    /// reported its usage).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ledger: Option<crate::ledger::Ledger>,
    /// The units that landed on the integration branch, in the order they landed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub integration_order: Vec<LandedReport>,
    /// The streams parked on conflicts, in the order they parked.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub parked: Vec<ParkedReport>,
    /// Every check and gate run, and how red batches were bisected (see `gates_view`).
    #[serde(flatten)]
    pub verification: super::gates_view::Verification,
    /// What the run was forecast to take and cost as it started, beside what it did (absent
    /// in runs that kept no forecast: older ones, runs spread over machines).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub forecast: Option<super::forecast_view::ForecastReport>,
}

/// One unit on the integration branch.
#[derive(Clone, Debug, Serialize)]
pub struct LandedReport {
    pub stream: String,
    /// 1-based task numbers.
    pub tasks: Vec<usize>,
    pub tip: String,
    /// It was parked on a conflict before it landed.
    pub parked: bool,
    /// The resolver agent whose resolution (a commit of its own) it landed with.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolver: Option<String>,
}

/// A stream parked on a conflict, and where a person resolves it.
#[derive(Clone, Debug, Serialize)]
pub struct ParkedReport {
    pub stream: String,
    pub files: Vec<String>,
    pub bundle: String,
    pub resolution_worktree: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct StreamReport {
    pub name: String,
    /// `integrated`, `failed`, `skipped`, `parked`, `active`, `pending`.
    pub status: String,
    pub reason: Option<String>,
    pub tasks_done: usize,
    pub tasks_total: usize,
    pub commits: usize,
    pub files: usize,
    pub insertions: usize,
    pub deletions: usize,
    pub time_ms: u64,
    /// Attempts made again after a failure (not after a usage limit: see `limit_waits`).
    pub retries: u32,
    /// Waits for an agent's usage limit to reset, each followed by an attempt more.
    #[serde(skip_serializing_if = "is_zero")]
    pub limit_waits: u32,
    /// How many retries each `retry_on` reason made (`exit 75`, `output "rate limit"`).
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub retried_for: std::collections::BTreeMap<String, u32>,
    pub branch: String,
    pub worktree: String,
    /// Notes from the run (see `StreamRecord::notes`); left out when there are none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// The report of `state`. `stream_files`, when given, is each stream's count of distinct files
/// changed (a file two tasks changed counts once); else the tasks' counts are summed.
pub fn build(state: &RunState, status: &str, stream_files: Option<&[usize]>) -> RunReport {
    let wall_ms = state.previous_wall_ms;
    let streams: Vec<StreamReport> = state
        .streams
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let mut stats = WorkStats::default();
            let mut done = 0;
            let mut time_ms = 0;
            let mut retries = 0;
            let mut limit_waits = 0;
            let mut retried_for = std::collections::BTreeMap::new();
            for t in &s.tasks {
                for why in &t.retried_for {
                    *retried_for.entry(why.clone()).or_insert(0) += 1;
                }
                if let Some(st) = t.state.stats() {
                    stats.add(st);
                }
                if matches!(
                    t.state,
                    TaskState::Integrated { .. } | TaskState::Committed { .. }
                ) {
                    done += 1;
                }
                time_ms += t.agent_ms;
                // An attempt after a usage limit's reset is not a retry: nothing failed.
                retries += t.attempts.saturating_sub(1).saturating_sub(t.limit_waits);
                limit_waits += t.limit_waits;
            }
            let status = match (&state.phase, &s.state) {
                // Abort stopped it and took its work off the integration branch (as `status`).
                (
                    RunPhase::Aborted { .. },
                    StreamState::Done { .. } | StreamState::Active { .. } | StreamState::Pending,
                ) => "aborted",
                _ => super::stream_word(&s.state, None),
            };
            let reason = match &s.state {
                StreamState::Parked(park) => Some(format!(
                    "conflicts in {}: resolve it and run `streams continue {}`",
                    super::quote_paths(&park.files),
                    s.name
                )),
                other => other.reason(),
            };
            StreamReport {
                name: s.name.clone(),
                status: status.to_string(),
                reason,
                tasks_done: done,
                tasks_total: s.tasks.len(),
                commits: stats.commits,
                files: stream_files
                    .and_then(|f| f.get(i).copied())
                    .unwrap_or(stats.files),
                insertions: stats.insertions,
                deletions: stats.deletions,
                time_ms,
                retries,
                limit_waits,
                retried_for,
                branch: crate::layout::short_branch(&s.branch).to_string(),
                worktree: s.worktree.display().to_string(),
                notes: s.notes.clone(),
            }
        })
        .collect();
    let agent_ms: u64 = streams.iter().map(|s| s.time_ms).sum();
    // The agents of a central integration ran on other machines, during none of its wall time.
    let elsewhere = matches!(
        state.machines,
        Some(crate::state::Machines::Integrate { .. })
    );
    let speedup = if wall_ms > 0 && !elsewhere {
        agent_ms as f64 / wall_ms as f64
    } else {
        0.0
    };
    let mut report = RunReport {
        schema: REPORT_SCHEMA,
        run_id: state.run_id.clone(),
        plan: state.plan_name.clone(),
        base: state.base.to_string(),
        integration_branch: crate::layout::short_branch(&state.integration_ref).to_string(),
        integration_tip: state.integration_tip.to_string(),
        status: status.to_string(),
        wall_ms,
        agent_ms,
        speedup,
        streams,
        ledger: Some(crate::ledger::Ledger::of(state)).filter(|l| !l.is_empty()),
        integration_order: state
            .integrations
            .iter()
            .map(|l| LandedReport {
                stream: l.stream.clone(),
                tasks: (l.first..=l.last).map(|t| t + 1).collect(),
                tip: l.tip.to_string(),
                parked: l.parked,
                resolver: l.resolver.clone(),
            })
            .collect(),
        parked: state
            .parked()
            .into_iter()
            .map(|(_, s, park)| ParkedReport {
                stream: s.name.clone(),
                files: park.files.clone(),
                bundle: park.bundle.display().to_string(),
                resolution_worktree: park.resolution_worktree.display().to_string(),
            })
            .collect(),
        verification: super::gates_view::Verification::of(state),
        forecast: None,
    };
    report.forecast = state
        .forecast
        .as_ref()
        .map(|f| super::forecast_view::build(f, &report, elsewhere));
    report
}

/// The status word for a state's phase.
pub fn status_of(state: &RunState) -> &'static str {
    match &state.phase {
        RunPhase::Finished if state.any_failed() => "failed",
        RunPhase::Finished if state.any_stopped() => "stopped",
        RunPhase::Finished if state.any_chosen_skip() => "skipped",
        RunPhase::Finished => "integrated",
        RunPhase::Halted => "halted",
        RunPhase::Interrupted { .. } => "interrupted",
        RunPhase::Aborted { .. } => "aborted",
        RunPhase::Running => "running",
    }
}

fn rows(report: &RunReport) -> Vec<[String; 8]> {
    report
        .streams
        .iter()
        .map(|s| {
            [
                s.name.clone(),
                s.status.clone(),
                format!("{}/{}", s.tasks_done, s.tasks_total),
                s.commits.to_string(),
                s.files.to_string(),
                format!("+{}/-{}", s.insertions, s.deletions),
                fmt_duration_ms(s.time_ms),
                s.retries.to_string(),
            ]
        })
        .collect()
}

/// "done": the tasks whose work is committed, of all the stream's (as `status` counts them).
/// "agent time": the agents' running time summed over the stream's tasks (not the stream's
/// elapsed time, which includes waiting for integration).
const HEADERS: [&str; 8] = [
    "stream",
    "status",
    "done",
    "commits",
    "files",
    "+/-",
    "agent time",
    "retries",
];

/// " (2.5x speedup)", only when agents working at once did save time: a run whose agents all
/// failed at once, or ran one at a time, has no speedup worth a word.
fn speedup_text(report: &RunReport) -> String {
    if report.speedup >= 1.05 {
        format!(" ({:.1}x speedup)", report.speedup)
    } else {
        String::new()
    }
}

/// The table for a terminal or a log.
pub fn render_table(report: &RunReport, ui: &Ui) -> String {
    let rows = rows(report);
    let mut widths = HEADERS.map(str::len);
    // Durations are up to six characters ("59m59s"): a steady column whatever the values.
    widths[6] = widths[6].max(6);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let line = |cells: &[String; 8]| {
        let mut l = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            if i > 0 {
                l.push_str("  ");
            }
            // Names and words left, numbers right.
            if i < 2 {
                let _ = write!(l, "{cell:<w$}");
            } else {
                let _ = write!(l, "{cell:>w$}");
            }
        }
        l.trim_end().to_string()
    };
    let _ = writeln!(out, "{}", ui.bold(line(&HEADERS.map(String::from))));
    for (row, s) in rows.iter().zip(&report.streams) {
        let text = line(row);
        let text = match s.status.as_str() {
            "failed" => ui.red(text),
            "skipped" => ui.yellow(text),
            _ => text,
        };
        let _ = writeln!(out, "{text}");
    }
    let _ = writeln!(
        out,
        "\nwall time {} for {} of agent work{}",
        fmt_duration_ms(report.wall_ms),
        fmt_duration_ms(report.agent_ms),
        speedup_text(report)
    );
    if let Some(ledger) = &report.ledger {
        let _ = writeln!(out, "{}", cost_line(ledger));
    }
    for s in report.streams.iter().filter(|s| !s.retried_for.is_empty()) {
        let _ = writeln!(out, "  {} retried: {}", s.name, retry_reasons(s));
    }
    for s in report.streams.iter().filter(|s| s.limit_waits > 0) {
        let _ = writeln!(out, "  {}", limit_waits_text(s));
    }
    // A parked stream's reason is said at length under the table (`session_view`).
    for s in report
        .streams
        .iter()
        .filter(|s| s.reason.is_some() && s.status != "parked")
    {
        let _ = writeln!(
            out,
            "  {} {}: {}",
            s.status,
            s.name,
            crate::text::escape_unsafe(s.reason.as_deref().unwrap_or(""))
        );
    }
    out
}

/// `cost $0.0362 for 11.8k tokens (9 turns)` under the table.
pub fn cost_line(ledger: &crate::ledger::Ledger) -> String {
    let t = &ledger.total;
    let mut line = match t.cost_usd {
        Some(_) => format!("cost {} for {} tokens", t.cost_text(), t.tokens_text()),
        None => format!(
            "{} tokens (no agent stated a cost; `[prices]` would estimate it)",
            t.tokens_text()
        ),
    };
    if t.turns > 0 {
        line.push_str(&format!(" ({} turns)", t.turns));
    }
    if t.cost_estimated {
        line.push_str("; ~ marks an estimate from [prices]");
    }
    line
}

/// The cost table of `report.md` and the step summary: per stream with the total, then the
/// most expensive tasks.
pub fn cost_markdown(ledger: &crate::ledger::Ledger) -> String {
    let mut out = String::from("\n### Cost\n\n");
    out.push_str(
        "| stream | cost | tokens | in | out | cache read | cache write | turns | agent runs |\n",
    );
    out.push_str("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
    let row = |name: &str, t: &crate::ledger::Tally| {
        format!(
            "| {name} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            t.cost_text(),
            t.tokens_text(),
            t.input_tokens,
            t.output_tokens,
            t.cache_read_tokens,
            t.cache_write_tokens,
            t.turns,
            t.attempts
        )
    };
    for s in &ledger.streams {
        out.push_str(&row(&s.stream, &s.tally));
    }
    out.push_str(&row("**total**", &ledger.total));
    let top = ledger.most_expensive();
    if !top.is_empty() {
        out.push_str("\nMost expensive tasks:\n\n");
        for t in top {
            let _ = writeln!(
                out,
                "- **{}** task {} ({}): {}, {} tokens",
                t.stream,
                t.task,
                crate::agent::events::one_line(&t.summary, 60),
                t.tally.cost_text(),
                t.tally.tokens_text()
            );
        }
    }
    if ledger.total.cost_estimated {
        out.push_str(
            "\n~ marks a cost estimated from the plan's `[prices]` (the agent did not state it).\n",
        );
    }
    if ledger.total.unreported > 0 {
        let _ = writeln!(
            out,
            "\n{} agent run(s) ended before reporting their usage: their figures are what was seen until then (at least).",
            ledger.total.unreported
        );
    }
    out
}

/// `a waited for its agent's usage limit to reset 2 times (not counted as retries)`.
fn limit_waits_text(s: &StreamReport) -> String {
    format!(
        "{} waited for its agent's usage limit to reset {} (not counted as retries)",
        s.name,
        match s.limit_waits {
            1 => "once".to_string(),
            n => format!("{n} times"),
        }
    )
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// `exit 75` x1, `output "rate limit"` x2: the retries of a stream by reason.
fn retry_reasons(s: &StreamReport) -> String {
    s.retried_for
        .iter()
        .map(|(why, n)| format!("{why} x{n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `report.md` and the GitHub step summary. Reasons and notes may name files an agent chose:
/// they are Markdown-escaped ([`crate::text::md_text`]).
pub fn render_markdown(report: &RunReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "## streams run `{}` of plan `{}`: {}\n",
        report.run_id, report.plan, report.status
    );
    let _ = writeln!(out, "| {} |", HEADERS.join(" | "));
    let _ = writeln!(out, "|{}|", HEADERS.map(|_| " --- ").join("|"));
    for row in rows(report) {
        let _ = writeln!(out, "| {} |", row.join(" | ").replace("+/-", "+/&minus;"));
    }
    let _ = writeln!(
        out,
        "\nWall time {} for {} of agent work{}. Integration branch `{}` at `{}`.",
        fmt_duration_ms(report.wall_ms),
        fmt_duration_ms(report.agent_ms),
        speedup_text(report),
        report.integration_branch,
        crate::text::short(&report.integration_tip)
    );
    let failed: Vec<&StreamReport> = report
        .streams
        .iter()
        .filter(|s| s.reason.is_some())
        .collect();
    if !failed.is_empty() {
        let _ = writeln!(out);
        for s in failed {
            let _ = writeln!(
                out,
                "- **{}** {}: {}",
                s.name,
                s.status,
                crate::text::md_text(s.reason.as_deref().unwrap_or(""))
            );
        }
    }
    let waited: Vec<String> = report
        .streams
        .iter()
        .filter(|s| s.limit_waits > 0)
        .map(|s| format!("- {}", crate::text::md_text(&limit_waits_text(s))))
        .collect();
    if !waited.is_empty() {
        let _ = writeln!(out, "\n{}", waited.join("\n"));
    }
    if let Some(ledger) = &report.ledger {
        out.push_str(&cost_markdown(ledger));
    }
    if let Some(forecast) = &report.forecast {
        out.push_str(&super::forecast_view::render_markdown(forecast));
    }
    if !report.integration_order.is_empty() {
        let _ = writeln!(out, "\nIntegrated in this order:\n");
        for (i, l) in report.integration_order.iter().enumerate() {
            let tasks = match l.tasks.as_slice() {
                [one] => format!("task {one}"),
                [first, .., last] => format!("tasks {first}-{last}"),
                [] => "no tasks".into(),
            };
            let after = if l.parked {
                ", after it was parked on a conflict"
            } else {
                ""
            };
            let resolved = match &l.resolver {
                Some(resolver) => format!(
                    ", its conflict resolved by the resolver agent `{}` (a commit of its own)",
                    crate::text::md_text(resolver)
                ),
                None => String::new(),
            };
            let _ = writeln!(
                out,
                "{}. **{}** ({tasks}) at `{}`{after}{resolved}",
                i + 1,
                l.stream,
                &l.tip[..l.tip.len().min(10)]
            );
        }
    }
    for p in &report.parked {
        let _ = writeln!(
            out,
            "\n**{}** is parked on a conflict in {}: bundle `{}/README.md`, resolve in `{}`, then `streams continue {}`.",
            p.stream,
            super::quote_paths(&p.files),
            p.bundle,
            p.resolution_worktree,
            p.stream
        );
    }
    out.push_str(&super::gates_view::render_markdown(&report.verification));
    let notes: Vec<(&str, &String)> = report
        .streams
        .iter()
        .flat_map(|s| s.notes.iter().map(|n| (s.name.as_str(), n)))
        .collect();
    if !notes.is_empty() {
        let _ = writeln!(out, "\nNotes:\n");
        for (stream, note) in notes {
            let _ = writeln!(out, "- **{stream}**: {}", crate::text::md_text(note));
        }
    }
    out
}

/// Writes `report.json` and `report.md`, and appends to `$GITHUB_STEP_SUMMARY` when set (with
/// links to the branches when `GITHUB_SERVER_URL` and `GITHUB_REPOSITORY` say where they are).
pub fn write_files(
    report: &RunReport,
    state: &RunState,
    dir: &crate::state::RunDir,
) -> std::io::Result<()> {
    let json = serde_json::to_vec_pretty(report).map_err(std::io::Error::other)?;
    crate::state::store::write_atomic(&dir.report_json_path(), &json)?;
    let md = render_markdown(report) + &super::mermaid::markdown(state);
    crate::state::store::write_atomic(&dir.report_md_path(), md.as_bytes())?;
    if let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY").filter(|p| !p.is_empty()) {
        let mut summary = md;
        if let Some(links) = super::actions::Links::from_env(|name| std::env::var(name).ok()) {
            summary.push_str(&super::actions::branch_links(report, &links));
        }
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        std::io::Write::write_all(&mut file, summary.as_bytes())?;
    }
    Ok(())
}
