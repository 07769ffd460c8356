//! Checks and gates in the run report: every run (command, what it ran on, result, time, log)
//! and each culprit's bisection, for `report.json` and `report.md`.

use std::fmt::Write as _;

use serde::Serialize;

use super::fmt_duration_ms;
use crate::state::{Bisection, CheckRun, FlakyGate, GateRun, RunState};
use crate::text::short;

#[derive(Clone, Debug, Default, Serialize)]
pub struct Verification {
    /// What this run left out on purpose: `check` (`--no-check`), `gate` (`--no-gate`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<&'static str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<CheckRun>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub gates: Vec<GateRun>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub bisections: Vec<Bisection>,
    /// Gate verdicts that flipped on the same candidate: flaky, blamed on no stream.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub flaky: Vec<FlakyGate>,
}

impl Verification {
    pub fn of(state: &RunState) -> Verification {
        let mut skipped = Vec::new();
        if state.no_check {
            skipped.push("check");
        }
        if state.no_gate {
            skipped.push("gate");
        }
        Verification {
            skipped,
            checks: state.checks.clone(),
            gates: state.gates.clone(),
            bisections: state.bisections.clone(),
            flaky: state.flaky.clone(),
        }
    }
}

fn verdict(passed: bool, result: &str) -> String {
    if passed {
        "passed".into()
    } else {
        result.to_string()
    }
}

/// The Markdown section (empty when the run had no checks or gates and skipped none).
pub fn render_markdown(v: &Verification) -> String {
    let mut out = String::new();
    for what in &v.skipped {
        let _ = writeln!(
            out,
            "\n`--no-{what}`: this run skipped the plan's `{what}`."
        );
    }
    if !v.checks.is_empty() {
        let _ = writeln!(
            out,
            "\nChecks:\n\n| stream | task | command | on | tree | result | time | log |\n| --- | --- | --- | --- | --- | --- | --- | --- |"
        );
        for c in &v.checks {
            let tree = c
                .tree
                .as_deref()
                .map_or("-".into(), |t| format!("`{}`", short(t)));
            let _ = writeln!(
                out,
                "| {} | {} | `{}` | `{}` | {tree} | {} | {} | `{}` |",
                c.stream,
                c.task,
                c.command.join(" "),
                short(&c.commit),
                verdict(c.passed, &c.result),
                fmt_duration_ms(c.ms),
                c.log.display()
            );
        }
    }
    if !v.gates.is_empty() {
        let _ = writeln!(
            out,
            "\nGate runs:\n\n| # | command | on | streams added | tree | result | time | log |\n| --- | --- | --- | --- | --- | --- | --- | --- |"
        );
        for (i, g) in v.gates.iter().enumerate() {
            let added = if g.streams.is_empty() {
                "(none)".to_string()
            } else {
                g.streams.join(", ")
            };
            let again = if g.again { " (run again)" } else { "" };
            let _ = writeln!(
                out,
                "| {} | `{}` | `{}` | {added} | `{}` | {}{again} | {} | `{}` |",
                i + 1,
                g.command.join(" "),
                short(&g.tip),
                short(&g.tree),
                verdict(g.passed, &g.result),
                fmt_duration_ms(g.ms),
                g.log.display()
            );
        }
    }
    for f in &v.flaky {
        let what = if f.outcome == "landed" {
            "it landed on its last verdict"
        } else {
            "nothing of its batch landed"
        };
        let _ = writeln!(
            out,
            "\nFlaky gate on + {} (tree `{}`): its verdict flipped, so no stream is blamed; {what}.\n",
            f.streams.join(", "),
            short(&f.tree)
        );
        for r in &f.runs {
            let _ = writeln!(
                out,
                "- {}: `{}`",
                if r.passed { "green" } else { "red" },
                r.log.display()
            );
        }
    }
    for b in &v.bisections {
        let _ = writeln!(
            out,
            "\nBisection of [{}] on `{}`: `{}` turns the gate red once added to `{}`.\n",
            b.batch.join(", "),
            short(&b.tip),
            b.culprit,
            short(&b.green)
        );
        for (streams, passed) in &b.steps {
            let on = if streams.is_empty() {
                "the tip alone".to_string()
            } else {
                format!("+ {}", streams.join(", "))
            };
            let _ = writeln!(out, "- {on}: {}", if *passed { "green" } else { "red" });
        }
    }
    out
}
