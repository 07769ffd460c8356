//! The runs of a repository: `streams runs` (as data, the `--json` document, and as a table),
//! and the line a command says when it had to choose which run to act on.

use std::fmt::Write as _;

use serde::Serialize;

use super::fmt_duration_ms;

/// Version of the `runs --json` schema.
pub const RUNS_SCHEMA: u32 = 1;

#[derive(Serialize)]
pub struct Runs {
    pub schema: u32,
    /// Oldest first.
    pub runs: Vec<RunRow>,
    /// Run directories whose state could not be read, one line each (left alone).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unreadable: Vec<String>,
}

/// One run, as `streams runs` lists it.
#[derive(Clone, Debug, Serialize)]
pub struct RunRow {
    pub id: String,
    pub plan: String,
    /// `running`, `interrupted`, `halted`, `finished`, `aborted` (as `status` says it).
    pub phase: String,
    /// For a finished run: `integrated`, `failed`, `skipped` or `stopped`.
    pub outcome: Option<String>,
    /// Milliseconds since the Unix epoch.
    pub started_at: u64,
    /// Wall time of its sessions so far (the one going on included).
    pub wall_ms: u64,
    /// The branch its result was merged into; `None` when it was not (or it has no result).
    pub merged: Option<String>,
    /// Whether it has a result to merge: finished, with commits its base does not have.
    pub has_result: bool,
    /// What its agents cost, in USD, once usage is recorded (the ledger); `None` until then.
    pub cost_usd: Option<f64>,
    /// The last run of its plan: the one its plan's branches and workspaces belong to.
    pub latest: bool,
    /// A `streams` process works on it right now (`streams <command>`, pid).
    pub held_by: Option<String>,
}

impl RunRow {
    /// Its phase and outcome in one word: `integrated`, `halted`, ...
    pub fn status(&self) -> &str {
        self.outcome.as_deref().unwrap_or(&self.phase)
    }
}

/// The table `streams runs` prints on stdout.
pub fn render(runs: &Runs) -> String {
    let header = ["RUN", "PLAN", "STATUS", "STARTED", "WALL", "MERGED", "COST"];
    let rows: Vec<[String; 7]> = runs
        .runs
        .iter()
        .map(|r| {
            let merged = match (&r.merged, r.has_result) {
                (Some(branch), _) => format!("yes ({branch})"),
                (None, true) => "no".to_string(),
                (None, false) => "-".to_string(),
            };
            let mut status = r.status().to_string();
            if r.held_by.is_some() && r.phase == "running" {
                status = "running".to_string();
            }
            [
                if r.latest {
                    r.id.clone()
                } else {
                    format!("{} (earlier)", r.id)
                },
                r.plan.clone(),
                status,
                when(r.started_at),
                fmt_duration_ms(r.wall_ms),
                merged,
                r.cost_usd
                    .map(|c| format!("${c:.2}"))
                    .unwrap_or_else(|| "-".to_string()),
            ]
        })
        .collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let line = |cells: Vec<&str>, out: &mut String| {
        let text: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        let _ = writeln!(out, "{}", text.join("  ").trim_end());
    };
    line(header.to_vec(), &mut out);
    for row in &rows {
        line(row.iter().map(String::as_str).collect(), &mut out);
    }
    out
}

/// A start time for people: `2026-12-07 14:09 UTC`.
pub fn when(ms: u64) -> String {
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms);
    let stamp = humantime::format_rfc3339_seconds(at).to_string();
    // 2026-12-07T14:09:05Z -> 2026-12-07 14:09 UTC
    match (stamp.get(..10), stamp.get(11..16)) {
        (Some(day), Some(time)) => format!("{day} {time} UTC"),
        _ => stamp,
    }
}

/// Which run a command picked when it had a choice, and the others it could have taken.
#[derive(Clone, Debug)]
pub struct Choice {
    pub picked: RunRow,
    pub others: Vec<RunRow>,
}

/// The line a command says (on stderr) when it chose among several runs.
pub fn picked_line(command: &str, choice: &Choice) -> String {
    let others: Vec<String> = choice
        .others
        .iter()
        .map(|r| format!("`{}` ({})", r.plan, r.status()))
        .collect();
    format!(
        "{command}: run {} of plan `{}` ({}); other plans here: {} (choose with --plan NAME or --run ID)",
        choice.picked.id,
        choice.picked.plan,
        choice.picked.status(),
        others.join(", ")
    )
}

/// What a bare `clean` says when other plans ran here too: it cleans the last run's plan only.
pub fn clean_picked_line(plan: &str, others: &[String]) -> String {
    let others: Vec<String> = others.iter().map(|p| format!("`{p}`")).collect();
    format!(
        "clean: plan `{plan}` (of the last run started here); other plans here, left alone: {} (clean them with --plan NAME, or --all)",
        others.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str, plan: &str, outcome: Option<&str>, merged: Option<&str>) -> RunRow {
        RunRow {
            id: id.into(),
            plan: plan.into(),
            phase: if outcome.is_some() {
                "finished".into()
            } else {
                "halted".into()
            },
            outcome: outcome.map(str::to_string),
            started_at: 1_767_225_600_000,
            wall_ms: 1500,
            merged: merged.map(str::to_string),
            has_result: outcome.is_some(),
            cost_usd: None,
            latest: true,
            held_by: None,
        }
    }

    #[test]
    fn the_table_says_each_runs_plan_status_and_whether_it_was_merged() {
        let runs = Runs {
            schema: RUNS_SCHEMA,
            runs: vec![
                row("r1", "api", Some("integrated"), Some("main")),
                row("r2", "docs", None, None),
            ],
            unreadable: Vec::new(),
        };
        assert_eq!(
            render(&runs),
            "RUN  PLAN  STATUS      STARTED               WALL  MERGED      COST\n\
             r1   api   integrated  2026-01-01 00:00 UTC  1.5s  yes (main)  -\n\
             r2   docs  halted      2026-01-01 00:00 UTC  1.5s  -           -\n"
        );
        let choice = Choice {
            picked: runs.runs[1].clone(),
            others: vec![runs.runs[0].clone()],
        };
        assert_eq!(
            picked_line("continue", &choice),
            "continue: run r2 of plan `docs` (halted); other plans here: `api` (integrated) (choose with --plan NAME or --run ID)"
        );
    }
}
