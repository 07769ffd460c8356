//! `streams plan` as text, JSON, Graphviz dot and Mermaid: everything computed once in a
//! [`View`] of the validated plan and what checking it learned.
//!
//! The JSON schema is versioned by its `version` field and documented in docs/plan.md; fields
//! are only ever added within one version.

use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use super::Ui;
use super::status_view::PredictedConflict;
use crate::plan::schedule::{self, Simulation};
use crate::plan::{Estimate, EstimateUnit, OwnershipSummary, Plan};

/// The version of the `--json` document.
pub const JSON_VERSION: u32 = 1;

/// How many unowned files the summary names.
const UNOWNED_SHOWN: usize = 5;

/// What checking the plan learned, for `streams plan` to show.
pub struct Analysis {
    pub ownership: OwnershipSummary,
    pub estimates: EstimateUnit,
    /// Per stream: files in its sparse workspace (`None`: a whole checkout). Empty when the
    /// base did not resolve.
    pub sparse_files: Vec<Option<usize>>,
    /// The plan file as messages show it (relative to the current directory when inside it).
    pub shown_path: String,
    pub warnings: Vec<Located>,
}

/// A warning with its position, for `--json`.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Located {
    pub message: String,
    pub line: Option<usize>,
    pub column: Option<usize>,
}

/// Conflicts ahead: every pair of this plan's stream branches, and each against the
/// integration tip, merged in memory (nothing is written).
#[derive(Serialize)]
pub struct Predicted {
    pub branches: Vec<String>,
    pub integration: Option<String>,
    pub pairs_checked: usize,
    pub conflicts: Vec<PredictedConflict>,
    /// Pairs of streams that conflicted in earlier runs of the plan, from the history: a run
    /// keeps each pair apart.
    pub conflicted_before: Vec<crate::plan::learn::PairHistory>,
}

/// Everything the outputs show, computed once.
pub struct View<'a> {
    plan: &'a Plan,
    path: &'a Path,
    base_commit: &'a str,
    analysis: &'a Analysis,
    work: Vec<Estimate>,
    lrp: Vec<Estimate>,
    waves: Vec<Vec<usize>>,
    sim: Simulation,
    /// Whether any estimate was written (else every task counts one unit, and saying so per
    /// stream only repeats the task count).
    estimated: bool,
}

impl<'a> View<'a> {
    pub fn new(
        plan: &'a Plan,
        path: &'a Path,
        base_commit: &'a str,
        analysis: &'a Analysis,
        jobs: usize,
    ) -> Self {
        let estimated = plan
            .streams
            .iter()
            .any(|s| s.estimate.is_some() || s.tasks.iter().any(|t| t.estimate.is_some()));
        View {
            plan,
            path,
            base_commit,
            analysis,
            work: schedule::stream_work(plan),
            lrp: schedule::longest_remaining_path(plan),
            waves: schedule::waves(plan),
            sim: schedule::simulate(plan, jobs),
            estimated,
        }
    }

    fn plan(&self) -> &Plan {
        self.plan
    }

    fn name(&self, stream: usize) -> &str {
        &self.plan().streams[stream].name
    }

    fn amount(&self, value: Estimate) -> String {
        amount(self.analysis.estimates, value)
    }

    pub fn human(&self, ui: &Ui) -> String {
        let plan = self.plan();
        let tasks: usize = plan.streams.iter().map(|s| s.tasks.len()).sum();
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{} {} is valid: {}, {}, base `{}` at {}",
            ui.bold("plan"),
            ui.bold(format!("`{}`", plan.name)),
            plural(plan.streams.len(), "stream"),
            plural(tasks, "task"),
            plan.base,
            &self.base_commit[..12.min(self.base_commit.len())]
        );

        self.waves(ui, &mut out);
        self.ownership(ui, &mut out);
        self.agents(ui, &mut out);
        self.checks_and_gate(ui, &mut out);
        self.schedule(ui, &mut out);
        out.trim_end().to_string()
    }

    /// The streams by wave, each with its tasks (and their estimate) and what it waits for.
    fn waves(&self, ui: &Ui, out: &mut String) {
        let plan = self.plan();
        let _ = writeln!(
            out,
            "\n{} (streams in one wave can run at the same time; each in start order)",
            ui.bold("waves")
        );
        let width = plan.streams.iter().map(|s| s.name.len()).max().unwrap_or(0);
        let task_counts: Vec<String> = plan
            .streams
            .iter()
            .enumerate()
            .map(|(s, stream)| {
                let mut text = plural(stream.tasks.len(), "task");
                if self.estimated {
                    let _ = write!(text, ", {}", self.amount(self.work[s]));
                }
                if stream.priority != 0 {
                    let _ = write!(text, ", priority {}", stream.priority);
                }
                text
            })
            .collect();
        let tw = task_counts.iter().map(String::len).max().unwrap_or(0);
        for (w, wave) in self.waves.iter().enumerate() {
            for (k, &s) in wave.iter().enumerate() {
                let stream = &plan.streams[s];
                let number = if k == 0 {
                    format!("{:>3}", w + 1)
                } else {
                    "   ".into()
                };
                let mut line =
                    format!("{number}  {:<width$}  {:<tw$}", stream.name, task_counts[s]);
                if !stream.depends_on.is_empty() {
                    let _ = write!(line, "  after {}", stream.depends_on.join(", "));
                }
                let _ = writeln!(out, "{}", line.trim_end());
            }
        }
    }

    /// Who owns how much of the tree, and what nobody owns.
    fn ownership(&self, ui: &Ui, out: &mut String) {
        let plan = self.plan();
        let width = plan.streams.iter().map(|s| s.name.len()).max().unwrap_or(0);
        let own = &self.analysis.ownership;
        let _ = writeln!(
            out,
            "\n{} of the {} tracked at base",
            ui.bold("ownership"),
            plural(own.tracked_files, "file")
        );
        let width = width.max("shared".len());
        let counts: Vec<String> = own
            .owned_files
            .iter()
            .map(|n| plural(*n, "file"))
            .chain([
                plural(own.shared_files, "file"),
                plural(own.unowned_files, "file"),
            ])
            .collect();
        let cw = counts.iter().map(String::len).max().unwrap_or(0);
        for (s, stream) in plan.streams.iter().enumerate() {
            let patterns: Vec<&str> = stream.owns.iter().map(|p| p.text.as_str()).collect();
            // A sparse workspace holds only owns + shared + reads: say how much of the tree.
            let sparse = match self.analysis.sparse_files.get(s).copied().flatten() {
                Some(n) => format!("; sparse workspace: {}", plural(n, "file")),
                None => String::new(),
            };
            let _ = writeln!(
                out,
                "  {:<width$}  {:<cw$}  {}{sparse}",
                stream.name,
                counts[s],
                patterns.join(", ")
            );
        }
        if !plan.shared.is_empty() {
            let patterns: Vec<&str> = plan.shared.iter().map(|p| p.text.as_str()).collect();
            let _ = writeln!(
                out,
                "  {:<width$}  {:<cw$}  {} (any stream may edit)",
                "shared",
                counts[plan.streams.len()],
                patterns.join(", ")
            );
        }
        if own.unowned_files == 0 {
            let _ = writeln!(out, "  every tracked file has an owner");
        } else {
            let mut examples: Vec<String> = own
                .unowned_examples
                .iter()
                .take(UNOWNED_SHOWN)
                .cloned()
                .collect();
            let more = own.unowned_files - examples.len();
            if more > 0 {
                examples.push(format!("and {more} more"));
            }
            let _ = writeln!(
                out,
                "  {:<width$}  {:<cw$}  read-only for every agent: {}",
                "nobody",
                counts[plan.streams.len() + 1],
                crate::text::quote_paths(&examples)
            );
        }
    }

    /// The presets the plan's tasks run, each with the argv it resolves to and the streams
    /// that run it; nothing when every agent is an argv of the plan's own.
    fn agents(&self, ui: &Ui, out: &mut String) {
        let plan = self.plan();
        let mut presets: Vec<(&crate::agent::Preset, Vec<&str>)> = Vec::new();
        for stream in &plan.streams {
            for task in &stream.tasks {
                let Some(preset) = plan.agent_for(stream, task).and_then(|a| a.preset()) else {
                    continue;
                };
                match presets.iter_mut().find(|(p, _)| *p == preset) {
                    Some((_, streams)) => {
                        if !streams.contains(&stream.name.as_str()) {
                            streams.push(&stream.name);
                        }
                    }
                    None => presets.push((preset, vec![&stream.name])),
                }
            }
        }
        if presets.is_empty() {
            return;
        }
        let _ = writeln!(
            out,
            "
{} (presets: each task gets its own configuration folder, seeded from yours)",
            ui.bold("agents")
        );
        for (preset, streams) in presets {
            let invocation = preset.invocation(&crate::agent::preset::Setting {
                home: Path::new("<task home>"),
                resume: None,
                as_root: false,
                user_home: None,
            });
            let argv: Vec<String> = invocation
                .argv
                .iter()
                .map(|a| crate::text::shell_quote(a))
                .collect();
            let _ = writeln!(
                out,
                "  {} ({}, tested with {}) for {}",
                preset.cli.name(),
                preset.cli.product(),
                preset.cli.tested_versions().join(", "),
                streams.join(", ")
            );
            let _ = writeln!(out, "    {}", argv.join(" "));
        }
    }

    /// The simulated schedule: critical path, total work, makespan and its bound.
    fn schedule(&self, ui: &Ui, out: &mut String) {
        let sim = &self.sim;
        let unit_note = match self.analysis.estimates {
            EstimateUnit::Seconds => "estimates are durations; a task without one counts 1s",
            EstimateUnit::Units => "a task without an `estimate` counts 1 unit",
        };
        let _ = writeln!(
            out,
            "\n{} with {} ({unit_note})",
            ui.bold("schedule"),
            plural(sim.jobs, "job")
        );
        let path: Vec<&str> = sim
            .critical_path
            .streams
            .iter()
            .map(|&s| self.name(s))
            .collect();
        let _ = writeln!(
            out,
            "  critical path       {}: {}",
            path.join(" -> "),
            self.amount(sim.critical_path.length)
        );
        let _ = writeln!(out, "  total work          {}", self.amount(sim.total_work));
        let _ = writeln!(
            out,
            "  predicted makespan  {} (simulated: ready streams start by priority, critical path first)",
            self.amount(sim.makespan)
        );
        let _ = writeln!(
            out,
            "  ideal bound         {} = max(critical path, total work / {})",
            self.amount(sim.ideal_bound),
            plural(sim.jobs, "job")
        );
    }

    /// Each stream's check and the plan's gate; nothing when the plan has neither.
    fn checks_and_gate(&self, ui: &Ui, out: &mut String) {
        let plan = self.plan();
        let checks: Vec<Option<&[String]>> =
            plan.streams.iter().map(|s| plan.check_for(s)).collect();
        if plan.gate.is_none() && checks.iter().all(Option::is_none) {
            return;
        }
        let _ = writeln!(
            out,
            "\n{} (`--no-check`, `--no-gate` skip them for one run)",
            ui.bold("checks and gate")
        );
        let width = plan
            .streams
            .iter()
            .map(|s| s.name.len())
            .max()
            .unwrap_or(0)
            .max("gate".len());
        let timeout = |t: Option<std::time::Duration>| {
            t.map(|t| format!("; timeout {}", format_seconds(t.as_secs_f64())))
                .unwrap_or_default()
        };
        let argv = |argv: &[String]| -> String {
            argv.iter()
                .map(|a| crate::text::shell_quote(a))
                .collect::<Vec<_>>()
                .join(" ")
        };
        for (stream, check) in plan.streams.iter().zip(&checks) {
            let text = match check {
                Some(check) => {
                    let retries = match plan.check_retries_for(stream) {
                        0 => "no second attempt".to_string(),
                        1 => "1 more attempt for its agent when it fails".to_string(),
                        n => format!("{n} more attempts for its agent when it fails"),
                    };
                    format!(
                        "check `{}`; {retries}{}",
                        argv(check),
                        timeout(plan.check_timeout_for(stream))
                    )
                }
                None => "no check".to_string(),
            };
            let _ = writeln!(out, "  {:<width$}  {text}", stream.name);
        }
        if let Some(gate) = &plan.gate {
            let batch = match plan.gate_batch {
                None => "batches of every stream waiting".to_string(),
                Some(1) => "one stream at a time".to_string(),
                Some(n) => format!("batches of up to {n} streams"),
            };
            let _ = writeln!(
                out,
                "  {:<width$}  `{}` on each integration candidate; {batch}, bisected when red{}",
                "gate",
                argv(gate),
                timeout(plan.check_timeout)
            );
        }
    }

    pub fn json(&self) -> PlanJson<'_> {
        let plan = self.plan();
        let mut wave_of = vec![0; plan.streams.len()];
        for (w, wave) in self.waves.iter().enumerate() {
            for &s in wave {
                wave_of[s] = w + 1;
            }
        }
        let names =
            |streams: &[usize]| -> Vec<&str> { streams.iter().map(|&s| self.name(s)).collect() };
        PlanJson {
            version: JSON_VERSION,
            plan: PlanInfo {
                name: &plan.name,
                path: self.path.display().to_string(),
                base: &plan.base,
                base_commit: self.base_commit,
                jobs: plan.jobs,
                merge: plan.merge.as_str(),
                sync: plan.sync.as_str(),
                shared: plan.shared.iter().map(|p| p.text.as_str()).collect(),
                gate: plan.gate.as_deref(),
                gate_batch: plan.gate.as_ref().and(plan.gate_batch),
            },
            streams: plan
                .streams
                .iter()
                .enumerate()
                .map(|(s, stream)| StreamJson {
                    name: &stream.name,
                    owns: stream.owns.iter().map(|p| p.text.as_str()).collect(),
                    depends_on: stream.depends_on.iter().map(String::as_str).collect(),
                    priority: stream.priority,
                    tasks: stream
                        .tasks
                        .iter()
                        .map(|t| TaskJson {
                            summary: t.prompt.summary(),
                            estimate: plan.estimate_for(stream, t),
                        })
                        .collect(),
                    estimate: self.work[s],
                    longest_remaining_path: self.lrp[s],
                    wave: wave_of[s],
                    owned_files: self.analysis.ownership.owned_files[s],
                    reads: stream.reads.iter().map(|p| p.text.as_str()).collect(),
                    sparse_files: self.analysis.sparse_files.get(s).copied().flatten(),
                    check: plan.check_for(stream),
                    check_retries: plan
                        .check_for(stream)
                        .map(|_| plan.check_retries_for(stream)),
                })
                .collect(),
            waves: self.waves.iter().map(|w| names(w)).collect(),
            stages: schedule::stages(plan).iter().map(|s| names(s)).collect(),
            ownership: OwnershipJson {
                tracked_files: self.analysis.ownership.tracked_files,
                shared_files: self.analysis.ownership.shared_files,
                unowned_files: self.analysis.ownership.unowned_files,
                unowned_examples: &self.analysis.ownership.unowned_examples,
            },
            schedule: ScheduleJson {
                jobs: self.sim.jobs,
                unit: self.analysis.estimates,
                critical_path: names(&self.sim.critical_path.streams),
                critical_path_length: self.sim.critical_path.length,
                total_work: self.sim.total_work,
                ideal_bound: self.sim.ideal_bound,
                makespan: self.sim.makespan,
                timeline: self
                    .sim
                    .slots
                    .iter()
                    .map(|slot| SlotJson {
                        stream: self.name(slot.stream),
                        agent: slot.agent,
                        start: slot.start,
                        end: slot.end,
                    })
                    .collect(),
            },
            warnings: &self.analysis.warnings,
            predicted_conflicts: None,
            learning: None,
        }
    }

    fn on_critical_path(&self, from: usize, to: usize) -> bool {
        self.sim
            .critical_path
            .streams
            .windows(2)
            .any(|pair| pair == [from, to])
    }

    fn edges(&self) -> Vec<(usize, usize)> {
        let deps = schedule::dependencies(self.plan());
        let mut edges = Vec::new();
        for (s, deps) in deps.iter().enumerate() {
            for &d in deps {
                edges.push((d, s));
            }
        }
        edges
    }

    fn label(&self, s: usize) -> String {
        let stream = &self.plan().streams[s];
        let mut label = format!("{}\\n{}", stream.name, plural(stream.tasks.len(), "task"));
        if self.estimated {
            label = format!("{label}, {}", self.amount(self.work[s]));
        }
        label
    }

    /// Graphviz: an edge from each stream to the streams that depend on it (it runs first);
    /// the critical path in bold.
    pub fn dot(&self) -> String {
        let quote = |s: &str| format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""));
        let plan = self.plan();
        let mut out = String::new();
        let _ = writeln!(out, "digraph {} {{", quote(&plan.name));
        let _ = writeln!(out, "  rankdir=LR;");
        let _ = writeln!(out, "  node [shape=box, style=rounded];");
        for s in 0..plan.streams.len() {
            let bold = if self.sim.critical_path.streams.contains(&s) {
                ", penwidth=2"
            } else {
                ""
            };
            // The label keeps its `\n` (a dot line break); only quotes need escaping.
            let label = self.label(s).replace('"', "\\\"");
            let _ = writeln!(out, "  {} [label=\"{label}\"{bold}];", quote(self.name(s)));
        }
        for (from, to) in self.edges() {
            let bold = if self.on_critical_path(from, to) {
                " [penwidth=2]"
            } else {
                ""
            };
            let _ = writeln!(
                out,
                "  {} -> {}{bold};",
                quote(self.name(from)),
                quote(self.name(to))
            );
        }
        out.push_str("}\n");
        out
    }

    /// Mermaid flowchart: the same graph; nodes are `s0`, `s1`, ... labelled with their names.
    pub fn mermaid(&self) -> String {
        let plan = self.plan();
        let mut out = String::from("flowchart LR\n");
        for s in 0..plan.streams.len() {
            let label = self.label(s).replace("\\n", "<br/>").replace('"', "#quot;");
            let _ = writeln!(out, "  s{s}[\"{label}\"]");
        }
        for (from, to) in self.edges() {
            let arrow = if self.on_critical_path(from, to) {
                "==>"
            } else {
                "-->"
            };
            let _ = writeln!(out, "  s{from} {arrow} s{to}");
        }
        if !self.sim.critical_path.streams.is_empty() {
            let ids: Vec<String> = self
                .sim
                .critical_path
                .streams
                .iter()
                .map(|s| format!("s{s}"))
                .collect();
            out.push_str("  classDef critical stroke-width:3px;\n");
            let _ = writeln!(out, "  class {} critical;", ids.join(","));
        }
        out
    }
}

#[derive(Serialize)]
pub struct PlanJson<'a> {
    version: u32,
    plan: PlanInfo<'a>,
    streams: Vec<StreamJson<'a>>,
    waves: Vec<Vec<&'a str>>,
    /// The waves as stages of a run spread over CI jobs: numbered from 0, file order within.
    stages: Vec<Vec<&'a str>>,
    ownership: OwnershipJson<'a>,
    schedule: ScheduleJson<'a>,
    warnings: &'a [Located],
    /// With `--predict` only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub predicted_conflicts: Option<&'a Predicted>,
    /// Learned estimates (with a history), `--jobs` what-if (a list), bottlenecks: top-level
    /// fields, each present only when there is something to say.
    #[serde(flatten)]
    pub learning: Option<super::learn_view::LearningJson<'a>>,
}

#[derive(Serialize)]
struct PlanInfo<'a> {
    name: &'a str,
    path: String,
    base: &'a str,
    base_commit: &'a str,
    jobs: Option<usize>,
    merge: &'static str,
    sync: &'static str,
    shared: Vec<&'a str>,
    /// Run on each integration candidate; absent without one.
    #[serde(skip_serializing_if = "Option::is_none")]
    gate: Option<&'a [String]>,
    /// The most streams one gate run takes (absent: every stream waiting).
    #[serde(skip_serializing_if = "Option::is_none")]
    gate_batch: Option<usize>,
}

#[derive(Serialize)]
struct StreamJson<'a> {
    name: &'a str,
    owns: Vec<&'a str>,
    depends_on: Vec<&'a str>,
    priority: i64,
    tasks: Vec<TaskJson>,
    estimate: Estimate,
    longest_remaining_path: Estimate,
    wave: usize,
    owned_files: usize,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    reads: Vec<&'a str>,
    /// Files in its sparse workspace; absent for a whole checkout.
    #[serde(skip_serializing_if = "Option::is_none")]
    sparse_files: Option<usize>,
    /// Its check (the plan's or its own); absent without one.
    #[serde(skip_serializing_if = "Option::is_none")]
    check: Option<&'a [String]>,
    /// With a check: how many times a failing check sends its agent back.
    #[serde(skip_serializing_if = "Option::is_none")]
    check_retries: Option<u32>,
}

#[derive(Serialize)]
struct TaskJson {
    summary: String,
    estimate: Estimate,
}

#[derive(Serialize)]
struct OwnershipJson<'a> {
    tracked_files: usize,
    shared_files: usize,
    unowned_files: usize,
    unowned_examples: &'a [String],
}

#[derive(Serialize)]
struct ScheduleJson<'a> {
    jobs: usize,
    unit: EstimateUnit,
    critical_path: Vec<&'a str>,
    critical_path_length: Estimate,
    total_work: Estimate,
    ideal_bound: Estimate,
    makespan: Estimate,
    timeline: Vec<SlotJson<'a>>,
}

#[derive(Serialize)]
struct SlotJson<'a> {
    stream: &'a str,
    agent: usize,
    start: Estimate,
    end: Estimate,
}

fn plural(n: usize, noun: &str) -> String {
    crate::plan::diagnostic::count(n, noun)
}

/// An estimate as people read it: a duration, or a number of units.
pub(super) fn amount(unit: EstimateUnit, value: Estimate) -> String {
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

/// 4 -> "4", 2.5 -> "2.5", 1/3 -> "0.33".
pub(super) fn format_number(value: f64) -> String {
    let text = format!("{value:.2}");
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// 5400 -> "1h30m", 600 -> "10m", 45 -> "45s".
pub(super) fn format_seconds(value: f64) -> String {
    let total = value.round() as u64;
    let (h, m, s) = (total / 3600, total / 60 % 60, total % 60);
    let mut out = String::new();
    if h > 0 {
        let _ = write!(out, "{h}h");
    }
    if m > 0 {
        let _ = write!(out, "{m}m");
    }
    if s > 0 || out.is_empty() {
        let _ = write!(out, "{s}s");
    }
    out
}

/// The conflict prediction of `plan --predict`, as text: the branches merged in memory, then
/// the pairs that conflicted in earlier runs.
pub fn predicted_human(predicted: &Predicted) -> String {
    let this = predicted;
    let mut out = String::new();
    if this.branches.is_empty() {
        out.push_str("conflict prediction: no stream branch has work yet (they appear once `streams run` starts)\n");
    } else {
        let _ = writeln!(
            out,
            "conflict prediction: {} stream branch{}{}, {} pair{} merged in memory",
            this.branches.len(),
            if this.branches.len() == 1 { "" } else { "es" },
            if this.integration.is_some() {
                " and the integration tip"
            } else {
                ""
            },
            this.pairs_checked,
            if this.pairs_checked == 1 { "" } else { "s" },
        );
        if this.conflicts.is_empty() {
            out.push_str("  no conflicts predicted\n");
        }
        for c in &this.conflicts {
            let _ = writeln!(
                out,
                "  {} <-> {}: {}",
                c.left,
                c.right,
                crate::text::quote_paths(&c.files)
            );
        }
    }
    if !this.conflicted_before.is_empty() {
        out.push_str(
            "conflicted in earlier runs (a run keeps each pair apart: one starts once the other is integrated)\n",
        );
        for pair in &this.conflicted_before {
            let _ = writeln!(
                out,
                "  {} <-> {}: conflicted in {} of {} earlier run{}",
                pair.left,
                pair.right,
                pair.conflicted,
                pair.runs,
                if pair.runs == 1 { "" } else { "s" }
            );
        }
    }
    out.trim_end().to_string()
}
