//! `streams status` as data (the `--json` document) and as text.

use std::fmt::Write as _;

use serde::Serialize;

use super::{fmt_duration_ms, hints};
use crate::state::lock;
use crate::text::{quote_paths, short};

/// Version of the `status --json` schema. Version 2: `halt` (the one conflict the run halted
/// on) became `parked` (every stream parked on a conflict, in the order they parked), and
/// `integration_order` and the gate's `flaky` verdicts were added.
pub const STATUS_SCHEMA: u32 = 2;

#[derive(Serialize)]
pub struct Status {
    pub schema: u32,
    pub run: Option<RunStatus>,
}

#[derive(Serialize)]
pub struct RunStatus {
    pub id: String,
    pub plan: String,
    /// `running`, `interrupted`, `halted`, `finished`, `aborted`.
    pub phase: String,
    /// For a finished run: `integrated`, `failed`, or `skipped` (integrated but for the streams
    /// left out with `streams skip`).
    pub outcome: Option<String>,
    pub holder: Option<lock::Holder>,
    /// An interrupted run: when its coordinator stopped (unix ms), to which its streams'
    /// `elapsed_ms` count. Stopped by a signal, when it saved its state; else it died (a crash,
    /// `kill -9`) without a word: when it was last seen at work (its last write to the run's
    /// state, journal or logs). Absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped_at: Option<u64>,
    /// An interrupted run that a signal stopped: its name (`SIGINT`, `SIGTERM`, `SIGHUP`).
    /// Absent when its coordinator died.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signal: Option<String>,
    /// An interrupted run: the coordinator that ran it last and is gone (its lock's record).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_holder: Option<lock::Holder>,
    pub base: String,
    pub integration_branch: String,
    /// Where the integration branch is; null when it does not exist (an aborted run that
    /// created it removed it).
    pub integration_tip: Option<String>,
    pub started_at: u64,
    pub streams: Vec<StreamStatus>,
    /// The streams parked on conflicts, in the order they parked.
    pub parked: Vec<ParkedStatus>,
    /// The units that landed on the integration branch, in the order they landed.
    pub integration_order: Vec<LandedStatus>,
    pub predicted_conflicts: Vec<PredictedConflict>,
    /// The gate's runs and culprits; absent when the run has no gate (or skipped it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gate: Option<GateStatus>,
    /// What this run left out on purpose: `check` (`--no-check`), `gate` (`--no-gate`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<&'static str>,
    /// What its agents used so far (running agents: what their output shows until now);
    /// absent while none reported.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost: Option<crate::ledger::Tally>,
    /// Budgets that reached 80 %, one line each (`80 % of the plan budget is spent (...)`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub budget_warnings: Vec<String>,
}

/// One run of a check or of the gate, as `status` shows it.
#[derive(Serialize)]
pub struct VerdictStatus {
    /// Checks: the task (1-based) whose work it checked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task: Option<usize>,
    /// The gate: the streams added to the integration tip (empty: the tip alone).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub streams: Option<Vec<String>>,
    pub passed: bool,
    /// How it ended, in words.
    pub result: String,
    pub log: String,
    /// The gate: run to check a verdict again (a red batch before it is bisected, the green
    /// subset bisection found before it lands).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub again: bool,
}

#[derive(Serialize)]
pub struct GateStatus {
    pub command: Vec<String>,
    pub runs: Vec<VerdictStatus>,
    pub culprits: Vec<CulpritStatus>,
    /// Candidates whose verdict flipped: flaky, blamed on no stream.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub flaky: Vec<FlakyStatus>,
}

/// A gate verdict that flipped on the same candidate.
#[derive(Serialize)]
pub struct FlakyStatus {
    pub streams: Vec<String>,
    /// Each run's verdict and log, in order (both outputs are kept).
    pub runs: Vec<VerdictStatus>,
    /// `landed` or `stopped` (see `state::FlakyGate`).
    pub outcome: String,
}

/// One unit on the integration branch, in the order they landed.
#[derive(Serialize)]
pub struct LandedStatus {
    pub stream: String,
    /// 1-based task numbers.
    pub tasks: Vec<usize>,
    pub tip: String,
    /// It was parked on a conflict before it landed.
    pub parked: bool,
}

/// A stream a red gate was bisected to.
#[derive(Serialize)]
pub struct CulpritStatus {
    pub stream: String,
    /// The largest green prefix of its batch, which it turns red.
    pub green: String,
    /// Prefixes gated to find it (the whole batch's run included).
    pub steps: usize,
}

#[derive(Serialize)]
pub struct StreamStatus {
    pub name: String,
    /// `pending`, `setting up`, `running`, `waiting`, `parked` (on a conflict), `integrated`,
    /// `failed`, `skipped`, or `aborted` (was integrated when the run was aborted; abort took
    /// it off the integration branch).
    pub state: String,
    /// The task running now (1-based), if any.
    pub task: Option<usize>,
    pub tasks: usize,
    /// Tasks whose work is committed (integrated or waiting for it).
    pub tasks_done: usize,
    pub elapsed_ms: Option<u64>,
    /// The commit its first task started from: the integration tip when the stream started.
    pub started_from: Option<String>,
    pub commits: usize,
    pub last_message: Option<String>,
    pub reason: Option<String>,
    /// Its check's runs, in order; absent without a check.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<VerdictStatus>,
    /// The running task's agent's last action (tool and target), as its events say.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub activity: Option<String>,
    /// The running task waits for its agent's usage limit to reset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waiting: Option<WaitingStatus>,
    /// What its agents used so far, the running one's output included.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost: Option<crate::ledger::Tally>,
}

/// A task waiting for its agent's usage limit to reset.
#[derive(Serialize)]
pub struct WaitingStatus {
    /// When it runs its agent again (unix ms).
    pub until: u64,
    /// `until` is the reset time the provider gave (else a backoff).
    pub reset_known: bool,
    pub message: String,
}

/// A stream parked on a conflict.
#[derive(Serialize)]
pub struct ParkedStatus {
    pub stream: String,
    /// Milliseconds since the Unix epoch.
    pub parked_at: u64,
    /// The streams that wait on it (directly or not).
    pub waiting: Vec<String>,
    pub files: Vec<String>,
    pub base: String,
    pub ours: String,
    pub theirs: String,
    pub bundle: String,
    pub resolution_worktree: String,
    /// False once someone deleted it (`continue` lays it out again).
    pub resolution_worktree_exists: bool,
    /// What the resolver agent made of the conflict, when the plan has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolver: Option<ResolverStatus>,
}

/// A resolver agent's resolution of a parked stream's conflict.
#[derive(Clone, Debug, Serialize)]
pub struct ResolverStatus {
    /// Its program's name.
    pub resolver: String,
    /// `propose` or `accept`.
    pub mode: String,
    /// The resolution commit: proposed (in the resolution worktree, ready for `continue`), or
    /// what a refused one did, kept.
    pub commit: Option<String>,
    /// Why streams refused it; `None`: proposed.
    pub refused: Option<String>,
    pub log: String,
}

/// Two branches (or a branch and the integration tip) that would conflict: the
/// coordinator's prediction, as `status` shows it.
#[derive(Clone, Debug, Serialize)]
pub struct PredictedConflict {
    pub left: String,
    pub right: String,
    pub files: Vec<String>,
}

/// The status of a run as a person reads it.
pub fn render(run: &RunStatus) -> String {
    let mut out = String::new();
    let phase = match (&run.phase[..], &run.holder, &run.outcome) {
        ("running", Some(h), _) => format!(
            "running (`streams {}`, pid {} on {})",
            h.command, h.pid, h.host
        ),
        ("finished", _, Some(outcome)) if outcome == "skipped" => {
            "finished: integrated, but for the streams left out as you chose".to_string()
        }
        ("finished", _, Some(outcome)) => format!("finished: {outcome}"),
        ("interrupted", _, _) => {
            let by = run
                .last_holder
                .as_ref()
                .map(|h| format!(" (`streams {}`, pid {})", h.command, h.pid))
                .unwrap_or_default();
            let at = run
                .stopped_at
                .map(|at| format!(" at {}", super::runs_view::when(at)))
                .unwrap_or_default();
            match &run.signal {
                Some(signal) => format!("interrupted: its coordinator{by} stopped on {signal}{at}"),
                None => format!("interrupted: its coordinator{by} is gone, last seen at work{at}"),
            }
        }
        (phase, _, _) => phase.to_string(),
    };
    let _ = writeln!(out, "run {} of plan `{}`: {phase}", run.id, run.plan);
    let branch = &run.integration_branch;
    let _ = match (run.phase.as_str(), &run.integration_tip) {
        ("aborted", Some(tip)) => writeln!(
            out,
            "integration branch {branch} is back at {} (where the run found it)",
            short(tip)
        ),
        (_, Some(tip)) => writeln!(out, "integration branch {branch} at {}", short(tip)),
        (_, None) => writeln!(
            out,
            "integration branch {branch} does not exist (abort removed it: there was none before the run)"
        ),
    };
    let _ = writeln!(out);
    let width = run
        .streams
        .iter()
        .map(|s| s.name.len())
        .max()
        .unwrap_or(6)
        .max(6);
    // The state, with the task it is at when it has more than one: the `done` column counts
    // the tasks whose work is committed, as the table at the end of `streams run` does.
    let states: Vec<String> = run
        .streams
        .iter()
        .map(|s| match s.task {
            Some(task) if s.tasks > 1 => format!("{} (task {task})", s.state),
            _ => s.state.clone(),
        })
        .collect();
    let state_width = states.iter().map(String::len).max().unwrap_or(0).max(10);
    let _ = writeln!(
        out,
        "{:width$}  {:<state_width$}  {:>5}  {:>7}  {:<10}  {:>7}  last commit",
        "stream", "state", "done", "elapsed", "from", "commits"
    );
    for (s, state) in run.streams.iter().zip(&states) {
        let done = format!("{}/{}", s.tasks_done, s.tasks);
        let elapsed = s
            .elapsed_ms
            .map(fmt_duration_ms)
            .unwrap_or_else(|| "-".into());
        let message = s.last_message.clone().unwrap_or_default();
        let from = s.started_from.as_deref().map(short).unwrap_or("-");
        let line = format!(
            "{:width$}  {state:<state_width$}  {done:>5}  {elapsed:>7}  {from:<10}  {:>7}  {message}",
            s.name, s.commits
        );
        let _ = writeln!(out, "{}", line.trim_end());
        if !s.checks.is_empty() {
            let results: Vec<String> = s
                .checks
                .iter()
                .map(|c| match c.task {
                    Some(task) if s.tasks > 1 => format!("{} (task {task})", c.result),
                    _ => c.result.clone(),
                })
                .collect();
            let _ = writeln!(out, "{:width$}  check: {}", "", results.join(", then "));
        }
        if let Some(wait) = &s.waiting {
            let left = fmt_duration_ms(wait.until.saturating_sub(crate::state::now_ms()));
            let then = if wait.reset_known {
                "when it resets"
            } else {
                "then tries again"
            };
            let _ = writeln!(
                out,
                "{:width$}  waiting for its agent's usage limit: {left} left, {then} ({})",
                "",
                crate::text::sanitize(&wait.message)
            );
        } else if let Some(activity) = &s.activity {
            let _ = writeln!(
                out,
                "{:width$}  agent: {}",
                "",
                crate::text::sanitize(activity)
            );
        }
        if let Some(reason) = &s.reason {
            let _ = writeln!(out, "{:width$}  {reason}", "");
        }
        if let Some(cost) = &s.cost {
            let _ = writeln!(
                out,
                "{:width$}  cost: {}, {} tokens",
                "",
                cost.cost_text(),
                cost.tokens_text()
            );
        }
    }
    if let Some(cost) = &run.cost {
        let so_far = if run.phase == "running" {
            " so far"
        } else {
            ""
        };
        let turns = if cost.turns > 0 {
            format!(" ({} turns)", cost.turns)
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "\ncost{so_far}: {}, {} tokens{turns}",
            cost.cost_text(),
            cost.tokens_text()
        );
    }
    for warning in &run.budget_warnings {
        let _ = writeln!(out, "warning: {warning}");
    }
    for what in &run.skipped {
        let _ = writeln!(out, "\n`--no-{what}`: this run skips the plan's `{what}`.");
    }
    if let Some(gate) = &run.gate {
        render_gate(&mut out, gate);
    }
    if !run.integration_order.is_empty() {
        let order: Vec<String> = run
            .integration_order
            .iter()
            .enumerate()
            .map(|(i, l)| {
                let after = if l.parked {
                    " (after its conflict)"
                } else {
                    ""
                };
                format!("{}. {}{after}", i + 1, l.stream)
            })
            .collect();
        let _ = writeln!(out, "\nintegrated in this order: {}", order.join(", "));
    }
    for h in &run.parked {
        let waiting = match h.waiting.as_slice() {
            [] => String::new(),
            names => format!(
                "; {} wait{} on it",
                names.join(", "),
                if names.len() == 1 { "s" } else { "" }
            ),
        };
        let _ = writeln!(
            out,
            "\nparked: integrating stream `{}` conflicts in {}{waiting}",
            h.stream,
            quote_paths(&h.files)
        );
        let _ = writeln!(
            out,
            "  base {}  ours (integration) {}  theirs ({}) {}",
            short(&h.base),
            short(&h.ours),
            h.stream,
            short(&h.theirs)
        );
        let _ = writeln!(out, "  conflict bundle: {}/README.md", h.bundle);
        let gone = if h.resolution_worktree_exists {
            ""
        } else {
            " (deleted: `streams continue` lays it out again)"
        };
        let _ = writeln!(out, "  resolve in:      {}{gone}", h.resolution_worktree);
        match &h.resolver {
            Some(ResolverStatus {
                refused: Some(reason),
                ..
            }) => {
                let _ = writeln!(out, "  the resolver's resolution was refused: {reason}");
            }
            Some(r) => {
                let _ = writeln!(
                    out,
                    "  the resolver `{}` proposes a resolution (in the worktree): `streams diff --resolution {}`, then `streams continue {}`",
                    r.resolver, h.stream, h.stream
                );
            }
            None => {}
        }
        let proposed = h.resolver.as_ref().is_some_and(|r| r.refused.is_none());
        for line in hints::parked_status(&h.stream, proposed) {
            let _ = writeln!(out, "{line}");
        }
    }
    if run.phase == "interrupted" {
        let _ = writeln!(out, "\n{}", hints::INTERRUPTED_STATUS);
    }
    if !run.predicted_conflicts.is_empty() {
        let _ = writeln!(out, "\npredicted conflicts (not integrated yet):");
        for p in &run.predicted_conflicts {
            let _ = writeln!(
                out,
                "  {} <-> {}: {}",
                p.left,
                p.right,
                quote_paths(&p.files)
            );
        }
    }
    out
}

/// The gate's runs, one line each, then each culprit.
fn render_gate(out: &mut String, gate: &GateStatus) {
    let runs = match gate.runs.len() {
        1 => "1 run".to_string(),
        n => format!("{n} runs"),
    };
    let _ = writeln!(
        out,
        "\ngate `{}`: {runs}",
        crate::text::shell_words(&gate.command)
    );
    let on: Vec<String> = gate
        .runs
        .iter()
        .map(|run| match run.streams.as_deref() {
            Some([]) | None => "the integration tip alone".to_string(),
            Some(streams) => format!("+ {}", streams.join(", ")),
        })
        .collect();
    let width = on.iter().map(String::len).max().unwrap_or(0);
    for (i, (run, on)) in gate.runs.iter().zip(&on).enumerate() {
        let verdict = if run.passed {
            "green".to_string()
        } else {
            format!("red: {}", run.result)
        };
        let verdict = if run.again {
            format!("{verdict} (run again)")
        } else {
            verdict
        };
        let _ = writeln!(out, "  {:>2}  {on:<width$}  {verdict}", i + 1);
    }
    for f in &gate.flaky {
        let verdicts: Vec<String> = f
            .runs
            .iter()
            .map(|r| {
                if r.passed {
                    format!("green (log {})", r.log)
                } else {
                    format!("red (log {})", r.log)
                }
            })
            .collect();
        let what = if f.outcome == "landed" {
            "landed on its last verdict"
        } else {
            "nothing of its batch landed"
        };
        let _ = writeln!(
            out,
            "  flaky on + {}: {}; no stream is blamed; {what}",
            f.streams.join(", "),
            verdicts.join(", then ")
        );
    }
    for c in &gate.culprits {
        let _ = writeln!(
            out,
            "  culprit `{}`: the gate fails once it is added to {} (found in {})",
            c.stream,
            short(&c.green),
            if c.steps == 1 {
                "1 gate run".to_string()
            } else {
                format!("{} gate runs", c.steps)
            }
        );
    }
}
