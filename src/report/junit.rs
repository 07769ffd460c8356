//! JUnit XML of a run (`report.xml` in the run directory, and `--junit PATH`), so CI systems
//! that read test reports show a run the way they show tests.
//!
//! One `<testsuite>` per stream; in it one `<testcase>` per task and one per other step on the
//! run's timeline (setup, check, gate, integration; see [`timeline::named_steps`]), so a step
//! the dispatcher records appears here with no change to this file. A failure carries the
//! reason as its message, the kind of failure as its type, and the log tail as its text. A
//! stream that failed without a failed task or step (it could not start) gets a `stream` case
//! that fails, so a CI view never shows a failed run as green.

use std::time::Duration;

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};

use super::timeline::{self, duration_ms};
use crate::state::{FailReason, RunPhase, RunState, Span, SpanOutcome, StreamState, TaskState};

/// The JUnit XML for a run. `log_tail` gives the last lines of a span's log (the caller reads
/// files; this stays a pure function of its inputs).
pub fn render(
    state: &RunState,
    log_tail: &dyn Fn(&Span) -> Vec<String>,
) -> Result<String, quick_junit::SerializeError> {
    let mut report = Report::new(format!("streams {}", state.plan_name));
    if let Some(at) = timestamp(state.started_at) {
        report.set_timestamp(at);
    }
    report.set_time(Duration::from_millis(state.previous_wall_ms));
    for stream in &state.streams {
        report.add_test_suite(suite(state, stream, log_tail));
    }
    report.to_string()
}

/// What agents used, as JUnit properties (`streams.tokens`, `streams.cost_usd`, ...).
fn cost_properties(t: &crate::ledger::Tally) -> Vec<quick_junit::Property> {
    let mut props: Vec<(&str, String)> = vec![
        ("streams.tokens", t.tokens.to_string()),
        ("streams.tokens.input", t.input_tokens.to_string()),
        ("streams.tokens.output", t.output_tokens.to_string()),
        ("streams.tokens.cache_read", t.cache_read_tokens.to_string()),
        (
            "streams.tokens.cache_write",
            t.cache_write_tokens.to_string(),
        ),
        ("streams.turns", t.turns.to_string()),
        ("streams.agent_runs", t.attempts.to_string()),
    ];
    if let Some(c) = t.cost_usd {
        props.push(("streams.cost_usd", format!("{c:.6}")));
        if t.cost_estimated {
            props.push(("streams.cost_estimated", "true".into()));
        }
    }
    if t.unreported > 0 {
        props.push(("streams.unreported_runs", t.unreported.to_string()));
    }
    if !t.models.is_empty() {
        props.push(("streams.models", t.models.join(",")));
    }
    props
        .into_iter()
        .map(|(k, v)| quick_junit::Property::new(k, v))
        .collect()
}

fn suite(
    state: &RunState,
    stream: &crate::state::StreamRecord,
    log_tail: &dyn Fn(&Span) -> Vec<String>,
) -> TestSuite {
    let mut suite = TestSuite::new(stream.name.as_str());
    let first = timeline::spans_of(state, &stream.name)
        .map(|s| s.started_at)
        .min();
    if let Some(at) = first.and_then(timestamp) {
        suite.set_timestamp(at);
    }
    let mut total_ms = 0;
    let mut failed = false;
    let mut stream_cost = crate::ledger::Tally::default();
    for (t, task) in stream.tasks.iter().enumerate() {
        let spans: Vec<&Span> = timeline::task_spans(state, stream, t).collect();
        let ms: u64 = spans.iter().map(|s| duration_ms(s)).sum();
        total_ms += ms;
        let status = match &task.state {
            TaskState::Committed { .. } | TaskState::Integrated { .. } => TaskCaseStatus::Passed,
            TaskState::Failed { reason, .. } => {
                failed = true;
                let tail = spans.last().map(|s| log_tail(s)).unwrap_or_default();
                TaskCaseStatus::Failed(failure(&reason.to_string(), kind(reason), &tail))
            }
            TaskState::Stopped { stop, .. } => TaskCaseStatus::Skipped(format!("stopped: {stop}")),
            TaskState::Skipped => TaskCaseStatus::Skipped(skip_reason(stream)),
            TaskState::Pending => TaskCaseStatus::Skipped(not_run(state)),
            TaskState::Running { .. } => {
                TaskCaseStatus::Skipped(format!("not finished: the run is {}", state.phase.name()))
            }
        };
        let status = match status {
            TaskCaseStatus::Passed => TestCaseStatus::success(),
            TaskCaseStatus::Failed(status) => status,
            TaskCaseStatus::Skipped(message) => {
                let mut status = TestCaseStatus::skipped();
                status.set_message(message);
                status
            }
        };
        let mut case = TestCase::new(format!("task {}: {}", t + 1, task.summary), status);
        case.set_classname(stream.name.as_str());
        if let Some(cost) = crate::ledger::task_cost(&stream.name, t, task) {
            case.add_properties(cost_properties(&cost.tally));
            if let Some(session) = cost.sessions.last() {
                case.add_property(("streams.session", session.as_str()));
            }
            stream_cost.add(&cost.tally);
        }
        case.set_time(Duration::from_millis(ms));
        if let Some(at) = spans.first().and_then(|s| timestamp(s.started_at)) {
            case.set_timestamp(at);
        }
        suite.add_test_case(case);
    }
    if !stream_cost.is_empty() {
        suite.add_properties(cost_properties(&stream_cost));
    }
    // A stream that ended done had every conflict of it resolved by a person (`continue`): its
    // conflicts are history, not failures, or CI would go red on a run that succeeded.
    let resolved = matches!(stream.state, StreamState::Done { .. });
    for (name, span) in timeline::named_steps(state, &stream.name) {
        total_ms += duration_ms(span);
        let mut note = None;
        let status = match &span.outcome {
            SpanOutcome::Conflict { files } if resolved => {
                note = Some(format!(
                    "merge conflict in {}, resolved by a person (streams continue)",
                    files.join(", ")
                ));
                TestCaseStatus::success()
            }
            SpanOutcome::Ok => TestCaseStatus::success(),
            SpanOutcome::Failed { reason } => {
                failed = true;
                failure(reason, "failed", &log_tail(span))
            }
            SpanOutcome::Conflict { files } => {
                failed = true;
                let message = format!("merge conflict in {}", files.join(", "));
                failure(&message, "conflict", &log_tail(span))
            }
            SpanOutcome::Interrupted => {
                let mut status = TestCaseStatus::skipped();
                status.set_message("interrupted");
                status
            }
        };
        let mut case = TestCase::new(name, status);
        case.set_classname(stream.name.as_str());
        if let Some(note) = note {
            case.set_system_out(note);
        }
        case.set_time(Duration::from_millis(duration_ms(span)));
        if let Some(at) = timestamp(span.started_at) {
            case.set_timestamp(at);
        }
        suite.add_test_case(case);
    }
    if let StreamState::Failed { reason, .. } = &stream.state
        && !failed
    {
        let mut case = TestCase::new("stream", failure(reason, "stream", &[]));
        case.set_classname(stream.name.as_str());
        case.set_time(Duration::ZERO);
        suite.add_test_case(case);
    }
    suite.set_time(Duration::from_millis(total_ms));
    suite
}

enum TaskCaseStatus {
    Passed,
    Failed(TestCaseStatus),
    Skipped(String),
}

fn failure(message: &str, kind: &str, tail: &[String]) -> TestCaseStatus {
    let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
    status.set_message(message).set_type(kind);
    let mut text = format!("{message}\n");
    if !tail.is_empty() {
        text.push_str("\nlast lines of the log:\n");
        for line in tail {
            text.push_str(line);
            text.push('\n');
        }
    }
    status.set_description(text);
    status
}

/// The failure's kind, as `report.json` and the NDJSON events name it.
fn kind(reason: &FailReason) -> &'static str {
    match reason {
        FailReason::Exit { .. } => "exit",
        FailReason::SandboxedExit { .. } => "sandboxed_exit",
        FailReason::Signal { .. } => "signal",
        FailReason::TimedOut { .. } => "timed_out",
        FailReason::Idle { .. } => "idle",
        FailReason::Unreachable { .. } => "unreachable",
        FailReason::Spawn { .. } => "spawn",
        FailReason::Ownership { .. } => "ownership",
        FailReason::HistoryRewritten { .. } => "history_rewritten",
        FailReason::LeftBranch { .. } => "left_branch",
        FailReason::Unfinished { .. } => "unfinished",
        FailReason::NestedRepository { .. } => "nested_repository",
        FailReason::MovedBranches { .. } => "moved_branches",
        FailReason::Internal { .. } => "internal",
        FailReason::Setup { .. } => "setup",
        FailReason::Reported { .. } => "reported",
        FailReason::NoChanges { .. } => "no_changes",
    }
}

fn skip_reason(stream: &crate::state::StreamRecord) -> String {
    match &stream.state {
        StreamState::Skipped { reason, .. } => reason.clone(),
        StreamState::Failed { .. } => "not run: an earlier task of its stream failed".into(),
        _ => "not run".into(),
    }
}

fn not_run(state: &RunState) -> String {
    match &state.phase {
        RunPhase::Halted => "not run yet: the run is halted (streams parked on conflicts)".into(),
        RunPhase::Interrupted { .. } => "not run yet: the run was interrupted".into(),
        phase => format!("not run (the run is {})", phase.name()),
    }
}

fn timestamp(ms: u64) -> Option<chrono::DateTime<chrono::FixedOffset>> {
    chrono::DateTime::from_timestamp_millis(i64::try_from(ms).ok()?).map(|t| t.fixed_offset())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::timeline::sample_state;

    fn tail(span: &Span) -> Vec<String> {
        vec![format!("tail of {} {:?}", span.stream, span.step)]
    }

    fn parse(xml: &str) -> roxmltree::Document<'_> {
        roxmltree::Document::parse(xml).unwrap()
    }

    #[test]
    fn one_suite_per_stream_one_case_per_task_and_step() {
        let state = sample_state();
        let xml = render(&state, &tail).unwrap();
        let doc = parse(&xml);
        let root = doc.root_element();
        assert_eq!(root.tag_name().name(), "testsuites");
        let suites: Vec<_> = root.children().filter(|n| n.is_element()).collect();
        let names: Vec<_> = suites
            .iter()
            .map(|s| s.attribute("name").unwrap())
            .collect();
        assert_eq!(names, ["db", "api", "ui"]);
        let cases = |i: usize| -> Vec<String> {
            suites[i]
                .children()
                .filter(|n| n.has_tag_name("testcase"))
                .map(|c| c.attribute("name").unwrap().to_string())
                .collect()
        };
        assert_eq!(cases(0), ["task 1: Add the schema", "integration"]);
        assert_eq!(
            cases(1),
            ["task 1: Add /login", "task 2: Test /login"],
            "a failed task stops its stream: no integration case"
        );
        assert_eq!(cases(2), ["task 1: Build the page"]);
        // The ownership failure: reason, kind and the log tail.
        let failure = suites[1]
            .descendants()
            .find(|n| n.has_tag_name("failure"))
            .unwrap();
        assert_eq!(failure.attribute("type"), Some("ownership"));
        assert!(
            failure
                .attribute("message")
                .unwrap()
                .contains("src/db/x.rs (owned by db)")
        );
        assert!(failure.text().unwrap().contains("tail of api Task"));
        assert_eq!(suites[1].attribute("failures"), Some("1"));
        assert_eq!(suites[1].attribute("skipped"), Some("1"));
        assert_eq!(suites[2].attribute("skipped"), Some("1"));
        let skipped = suites[2]
            .descendants()
            .find(|n| n.has_tag_name("skipped"))
            .unwrap();
        assert_eq!(
            skipped.attribute("message"),
            Some("its dependency `api` did not finish")
        );
        assert_eq!(root.attribute("tests"), Some("5"));
        assert_eq!(root.attribute("failures"), Some("1"));
    }

    #[test]
    fn a_conflict_and_a_failed_check_are_failures_and_new_steps_need_no_change_here() {
        let mut state = sample_state();
        let db_start = state.timeline[0].started_at;
        // Halted on the conflict: not resolved (yet).
        let db = state.streams.iter_mut().find(|s| s.name == "db").unwrap();
        db.state = StreamState::Active {
            started_at: db_start,
        };
        state.timeline.push(Span {
            stream: "db".into(),
            step: crate::state::Step::Check,
            started_at: db_start,
            finished_at: db_start + 10,
            outcome: SpanOutcome::Failed {
                reason: "check exited with code 2".into(),
            },
            log: None,
        });
        state.timeline.push(Span {
            stream: "db".into(),
            step: crate::state::Step::Integration,
            started_at: db_start + 20,
            finished_at: db_start + 30,
            outcome: SpanOutcome::Conflict {
                files: vec!["Cargo.lock".into()],
            },
            log: None,
        });
        let xml = render(&state, &tail).unwrap();
        let doc = parse(&xml);
        let db = doc
            .descendants()
            .find(|n| n.has_tag_name("testsuite") && n.attribute("name") == Some("db"))
            .unwrap();
        let names: Vec<_> = db
            .children()
            .filter(|n| n.has_tag_name("testcase"))
            .map(|c| c.attribute("name").unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "task 1: Add the schema",
                "integration",
                "check",
                "integration 2"
            ]
        );
        let messages: Vec<_> = db
            .descendants()
            .filter(|n| n.has_tag_name("failure"))
            .map(|f| {
                (
                    f.attribute("type").unwrap(),
                    f.attribute("message").unwrap(),
                )
            })
            .collect();
        assert_eq!(
            messages,
            [
                ("failed", "check exited with code 2"),
                ("conflict", "merge conflict in Cargo.lock")
            ]
        );
    }

    #[test]
    fn a_stream_that_failed_before_any_task_still_fails() {
        let mut state = sample_state();
        let ui = &mut state.streams[2];
        ui.state = StreamState::Failed {
            reason: "files change on checkout".into(),
            at: 0,
        };
        let xml = render(&state, &tail).unwrap();
        let doc = parse(&xml);
        let failure = doc
            .descendants()
            .filter(|n| n.has_tag_name("failure"))
            .find(|f| f.attribute("type") == Some("stream"))
            .unwrap();
        assert_eq!(
            failure.attribute("message"),
            Some("files change on checkout")
        );
        assert_eq!(failure.parent().unwrap().attribute("classname"), Some("ui"));
    }
}
