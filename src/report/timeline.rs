//! Reading the run's timeline (`RunState::timeline`): what the JUnit, GitHub and Mermaid writers
//! share, so the three name and order steps the same way.

use crate::state::{RunState, Span, SpanOutcome, Step, StreamRecord};

/// A step's name for people: `setup`, `task 2`, `check`, `gate`, `integration`.
pub fn step_name(step: &Step) -> String {
    match step {
        Step::Setup => "setup".into(),
        Step::Task { task } => format!("task {}", task + 1),
        Step::Check => "check".into(),
        Step::Gate => "gate".into(),
        Step::Integration => "integration".into(),
    }
}

/// One word for how a span ended.
pub fn outcome_word(outcome: &SpanOutcome) -> &'static str {
    match outcome {
        SpanOutcome::Ok => "ok",
        SpanOutcome::Failed { .. } => "failed",
        SpanOutcome::Conflict { .. } => "conflict",
        SpanOutcome::Interrupted => "interrupted",
    }
}

/// A stream's spans, in the order they ended.
pub fn spans_of<'a>(state: &'a RunState, stream: &'a str) -> impl Iterator<Item = &'a Span> + 'a {
    state.timeline.iter().filter(move |s| s.stream == stream)
}

/// The spans of one task of a stream (more than one when the run was interrupted and resumed).
pub fn task_spans<'a>(
    state: &'a RunState,
    stream: &'a StreamRecord,
    task: usize,
) -> impl Iterator<Item = &'a Span> + 'a {
    spans_of(state, &stream.name).filter(move |s| s.step == Step::Task { task })
}

/// Milliseconds a span took.
pub fn duration_ms(span: &Span) -> u64 {
    span.finished_at.saturating_sub(span.started_at)
}

/// Spans that are not tasks (setup, check, gate, integration), each with its name, numbered
/// when the same step ran more than once for a stream (`integration`, `integration 2`).
pub fn named_steps<'a>(state: &'a RunState, stream: &'a str) -> Vec<(String, &'a Span)> {
    let mut seen: Vec<String> = Vec::new();
    spans_of(state, stream)
        .filter(|s| !matches!(s.step, Step::Task { .. }))
        .map(|span| {
            let base = step_name(&span.step);
            let n = seen.iter().filter(|b| **b == base).count() + 1;
            seen.push(base.clone());
            let name = if n == 1 { base } else { format!("{base} {n}") };
            (name, span)
        })
        .collect()
}

/// A finished run for the writers' tests: `db` integrated, `api` (after `db`) failed on an
/// ownership violation in its first task, `ui` (after `api`) skipped.
#[cfg(test)]
pub fn sample_state() -> RunState {
    use crate::state::{
        FailReason, OwnershipViolation, RunPhase, StreamState, TaskRecord, TaskState, WorkStats,
    };
    const T: u64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z
    let oid = |c: char| crate::ids::Oid::from(c.to_string().repeat(40));
    let task = |summary: &str, state: TaskState| TaskRecord {
        summary: summary.into(),
        attempts: u32::from(state != TaskState::Skipped),
        agent_ms: if state == TaskState::Skipped { 0 } else { 900 },
        retried_for: Vec::new(),
        state,
        fixing: None,
        usage: Vec::new(),
        waiting: None,
        limit_waits: 0,
    };
    let stream =
        |name: &str, deps: &[&str], state: StreamState, tasks: Vec<TaskRecord>| StreamRecord {
            name: name.into(),
            branch: format!("refs/heads/streams/p/{name}"),
            worktree: format!("/wt/{name}").into(),
            depends_on: deps.iter().map(|d| d.to_string()).collect(),
            state,
            tasks,
            notes: Vec::new(),
            setup_at: None,
            setting_up: false,
            conflicted_with: Vec::new(),
        };
    let ownership = FailReason::Ownership {
        violations: vec![
            OwnershipViolation {
                path: "src/db/x.rs".into(),
                owner: Some("db".into()),
            },
            OwnershipViolation {
                path: "README.md".into(),
                owner: None,
            },
        ],
        kept: "refs/streams/p/rejected/api/1".into(),
    };
    let span = |stream: &str, step: Step, from: u64, to: u64, outcome: SpanOutcome| Span {
        stream: stream.into(),
        step,
        started_at: T + from,
        finished_at: T + to,
        outcome,
        log: None,
    };
    RunState {
        version: crate::state::STATE_VERSION,
        run_id: "20260101-000000-0001".into(),
        plan_name: "p".into(),
        plan_path: "/repo/streams.toml".into(),
        plan_hash: None,
        repo_root: "/repo".into(),
        base_rev: "main".into(),
        base: oid('b'),
        integration_ref: "refs/heads/streams/p/integration".into(),
        integration_before: None,
        integration_tip: oid('c'),
        jobs: 2,
        fail_fast: false,
        started_at: T,
        updated_at: T + 2500,
        previous_wall_ms: 2500,
        session_started_at: T,
        phase: RunPhase::Finished,
        streams: vec![
            stream(
                "db",
                &[],
                StreamState::Done {
                    started_at: T,
                    finished_at: T + 1010,
                },
                vec![task(
                    "Add the schema",
                    TaskState::Integrated {
                        start: oid('b'),
                        end: oid('d'),
                        stats: WorkStats::default(),
                        finished_at: T + 1000,
                    },
                )],
            ),
            stream(
                "api",
                &["db"],
                StreamState::Failed {
                    reason: ownership.to_string(),
                    at: T + 2000,
                },
                vec![
                    task(
                        "Add /login",
                        TaskState::Failed {
                            reason: ownership.clone(),
                            at: T + 2000,
                        },
                    ),
                    task("Test /login", TaskState::Skipped),
                ],
            ),
            stream(
                "ui",
                &["api"],
                StreamState::Skipped {
                    reason: "its dependency `api` did not finish".into(),
                    chosen: false,
                },
                vec![task("Build the page", TaskState::Skipped)],
            ),
        ],
        queue: Vec::new(),
        no_check: false,
        no_gate: false,
        only: None,
        machines: None,
        checks: Vec::new(),
        gates: Vec::new(),
        bisections: Vec::new(),
        flaky: Vec::new(),
        integrations: vec![crate::state::Landing {
            stream: "db".into(),
            first: 0,
            last: 0,
            tip: oid('c'),
            at: T + 1010,
            parked: false,
            resolver: None,
        }],
        timeline: vec![
            span("db", Step::Task { task: 0 }, 0, 1000, SpanOutcome::Ok),
            span("db", Step::Integration, 1000, 1010, SpanOutcome::Ok),
            span(
                "api",
                Step::Task { task: 0 },
                1010,
                2000,
                SpanOutcome::Failed {
                    reason: ownership.to_string(),
                },
            ),
        ],
        merged: None,
        retries: Vec::new(),
        budget_overrides: Default::default(),
        budget_warnings: Vec::new(),
        forecast: None,
    }
}

/// Parks stream `name` of a sample state (its worktree `/wt/.resolve-<name>`) at `at`
/// milliseconds into the run, which is then halted.
#[cfg(test)]
pub fn park_sample(state: &mut RunState, name: &str, at: u64) {
    use crate::state::{Park, RunPhase, StreamState, SyncUnit};
    const T: u64 = 1_767_225_600_000;
    let oid = |c: char| crate::ids::Oid::from(c.to_string().repeat(40));
    let (s, _) = state.stream_by_name(name).expect("a stream of the sample");
    state.streams[s].state = StreamState::Parked(Park {
        started_at: T,
        parked_at: T + at,
        unit: SyncUnit {
            stream: s,
            first: 0,
            last: 0,
            from: oid('b'),
            to: oid('e'),
        },
        files: vec!["SHARED.md".into()],
        base: oid('b'),
        ours: oid('c'),
        theirs: oid('e'),
        bundle: format!("/run/conflicts/{name}").into(),
        resolution_worktree: format!("/wt/.resolve-{name}").into(),
        proposal: None,
    });
    state.phase = RunPhase::Halted;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A state written before the timeline and `depends_on` existed draws no Gantt chart and a
    /// graph without edges, and still gives a complete JUnit report.
    #[test]
    fn a_first_format_state_still_reports() {
        let text = include_str!("../../fixtures/state/v1.json")
            .replace("@BASE@", &"b".repeat(40))
            .replace("@ROOT@", "/repo");
        let state: RunState = serde_json::from_str(&text).unwrap();
        assert!(state.timeline.is_empty());
        assert_eq!(super::super::mermaid::gantt(&state), None);
        let graph = super::super::mermaid::graph(&state);
        assert!(!graph.contains("-->"), "{graph}");
        assert!(graph.contains("s1[\"b<br/>failed\"]"), "{graph}");
        let xml = super::super::junit::render(&state, &|_| Vec::new()).unwrap();
        let doc = roxmltree::Document::parse(&xml).unwrap();
        let cases = doc.descendants().filter(|n| n.has_tag_name("testcase"));
        assert_eq!(cases.count(), 3);
        let failure = doc
            .descendants()
            .find(|n| n.has_tag_name("failure"))
            .unwrap();
        assert_eq!(
            failure.attribute("message"),
            Some("agent exited with code 3")
        );
    }
}
