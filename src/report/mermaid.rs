//! Pictures of a run for `report.md` and the GitHub step summary (GitHub renders Mermaid in
//! Markdown): a Gantt chart of the run's timeline and the plan's graph coloured by outcome.
//!
//! The Gantt chart has one section per stream and one bar per span of the timeline (setup,
//! tasks, check, gate, integration: whatever the dispatcher recorded), on one axis of Unix
//! milliseconds (`dateFormat x`), so bars are exactly the recorded times; each integration that
//! landed says its place in the order of integration (a parked stream lands after those that
//! went on meanwhile). Text that Mermaid would read as syntax (`:` `;` `#` in a task's summary,
//! quotes in a label) is replaced.

use std::fmt::Write as _;

use super::timeline::{self, spans_of};
use crate::state::{RunPhase, RunState, SpanOutcome, Step, StreamState};

/// The Gantt chart of a run, or `None` when nothing is on its timeline (a state written
/// before streams recorded one, or a run that has not run anything yet).
pub fn gantt(state: &RunState) -> Option<String> {
    if state.timeline.is_empty() {
        return None;
    }
    let mut out = String::from("gantt\n");
    let _ = writeln!(out, "    title streams run {}", state.run_id);
    // Bars are in the past: a marker at today would only stretch the axis.
    out.push_str("    dateFormat x\n    axisFormat %H:%M:%S\n    todayMarker off\n");
    for stream in &state.streams {
        let mut spans = spans_of(state, &stream.name).peekable();
        if spans.peek().is_none() {
            continue;
        }
        let _ = writeln!(out, "    section {}", plain(&stream.name, 60));
        // The stream's landings, in order: its n-th integration that landed is its n-th here.
        let mut landings = state
            .integrations
            .iter()
            .enumerate()
            .filter(|(_, l)| l.stream == stream.name)
            .map(|(i, _)| i + 1);
        for span in spans {
            let label = match span.step {
                Step::Task { task } => {
                    let summary = stream
                        .tasks
                        .get(task)
                        .map(|t| plain(&t.summary, 40))
                        .unwrap_or_default();
                    format!("{} - {summary}", timeline::step_name(&span.step))
                }
                Step::Integration if span.outcome == SpanOutcome::Ok => match landings.next() {
                    Some(order) => format!("integration (landed {})", ordinal(order)),
                    None => timeline::step_name(&span.step),
                },
                ref step => timeline::step_name(step),
            };
            let tag = match span.outcome {
                SpanOutcome::Ok => "done",
                SpanOutcome::Failed { .. } | SpanOutcome::Conflict { .. } => "crit",
                SpanOutcome::Interrupted => "active",
            };
            let _ = writeln!(
                out,
                "    {} :{tag}, {}, {}",
                label.trim(),
                span.started_at,
                span.finished_at.max(span.started_at)
            );
        }
    }
    Some(out)
}

/// The plan's graph (an edge from each dependency to the stream that waits for it), each
/// stream coloured by how it ended.
pub fn graph(state: &RunState) -> String {
    let mut out = String::from("flowchart LR\n");
    let mut used: Vec<&str> = Vec::new();
    let mut classes = String::new();
    for (i, stream) in state.streams.iter().enumerate() {
        let aborted = matches!(state.phase, RunPhase::Aborted { .. })
            && matches!(
                stream.state,
                StreamState::Done { .. } | StreamState::Active { .. } | StreamState::Pending
            );
        let outcome = if aborted {
            // Abort took its work off the integration branch (as `status` says).
            "aborted"
        } else {
            match stream.state {
                StreamState::Done { .. } => "integrated",
                StreamState::Failed { .. } => "failed",
                StreamState::Skipped { .. } => "skipped",
                StreamState::Parked(_) => "parked",
                StreamState::Stopped { .. } => "stopped",
                StreamState::Active { .. } => "active",
                StreamState::Pending => "pending",
            }
        };
        let label = format!("{}<br/>{outcome}", label_text(&stream.name));
        let _ = writeln!(out, "    s{i}[\"{label}\"]");
        if !used.contains(&outcome) {
            used.push(outcome);
        }
        let _ = writeln!(classes, "    class s{i} {outcome}");
    }
    for (i, stream) in state.streams.iter().enumerate() {
        for dep in &stream.depends_on {
            if let Some((d, _)) = state.stream_by_name(dep) {
                let _ = writeln!(out, "    s{d} --> s{i}");
            }
        }
    }
    // GitHub's palette (Primer): readable in light and dark themes.
    for (class, style) in [
        ("integrated", "fill:#dafbe1,stroke:#1a7f37,color:#1f2328"),
        ("failed", "fill:#ffebe9,stroke:#cf222e,color:#1f2328"),
        ("parked", "fill:#fff1e5,stroke:#bc4c00,color:#1f2328"),
        ("skipped", "fill:#fff8c5,stroke:#9a6700,color:#1f2328"),
        ("stopped", "fill:#fbefff,stroke:#8250df,color:#1f2328"),
        ("active", "fill:#ddf4ff,stroke:#0969da,color:#1f2328"),
        ("pending", "fill:#f6f8fa,stroke:#8c959f,color:#1f2328"),
        ("aborted", "fill:#eaeef2,stroke:#57606a,color:#1f2328"),
    ] {
        if used.contains(&class) {
            let _ = writeln!(out, "    classDef {class} {style}");
        }
    }
    out.push_str(&classes);
    out
}

/// Both pictures as Markdown sections, for `report.md` and the step summary.
pub fn markdown(state: &RunState) -> String {
    let mut out = String::new();
    if let Some(chart) = gantt(state) {
        let _ = write!(out, "\n### Timeline\n\n```mermaid\n{chart}```\n");
    }
    let _ = write!(out, "\n### Streams\n\n```mermaid\n{}```\n", graph(state));
    out
}

/// `1st`, `2nd`, `3rd`, `4th`, ... `11th`, `21st`.
fn ordinal(n: usize) -> String {
    let suffix = match (n % 10, n % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}

/// Text safe in a Gantt line: no characters Mermaid reads as syntax, one line, at most `max`
/// characters.
fn plain(text: &str, max: usize) -> String {
    let cleaned: String = text
        .chars()
        .map(|c| match c {
            ':' | ';' | '#' | '%' => ' ',
            c if c.is_control() => ' ',
            c => c,
        })
        .collect();
    let cleaned = cleaned.split_whitespace().collect::<Vec<_>>().join(" ");
    if cleaned.chars().count() > max {
        format!("{}...", cleaned.chars().take(max - 3).collect::<String>())
    } else {
        cleaned
    }
}

/// Text inside a quoted flowchart label, with Mermaid's entity codes for what would end it.
fn label_text(text: &str) -> String {
    text.replace('#', "#35;")
        .replace('"', "#quot;")
        .replace('<', "#lt;")
        .replace('>', "#gt;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::timeline::sample_state;

    #[test]
    fn the_gantt_chart_has_a_section_per_stream_that_ran_and_a_bar_per_span() {
        let mut state = sample_state();
        state.streams[1].tasks[0].summary = "Fix: the #1 bug; now".into();
        let chart = gantt(&state).unwrap();
        assert_eq!(
            chart,
            "\
gantt
    title streams run 20260101-000000-0001
    dateFormat x
    axisFormat %H:%M:%S
    todayMarker off
    section db
    task 1 - Add the schema :done, 1767225600000, 1767225601000
    integration (landed 1st) :done, 1767225601000, 1767225601010
    section api
    task 1 - Fix the 1 bug now :crit, 1767225601010, 1767225602000
"
        );
    }

    /// `report.md` as a person reads it (GitHub draws the two charts).
    #[test]
    fn the_whole_report_md() {
        let state = sample_state();
        let report = crate::report::summary::build(&state, "failed", None);
        let md = crate::report::summary::render_markdown(&report) + &markdown(&state);
        insta::assert_snapshot!(md);
    }

    #[test]
    fn ordinals_read_as_english() {
        let words: Vec<String> = [1, 2, 3, 4, 11, 12, 13, 21, 22, 101, 111]
            .into_iter()
            .map(ordinal)
            .collect();
        assert_eq!(
            words,
            [
                "1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "101st",
                "111th"
            ]
        );
    }

    #[test]
    fn no_timeline_no_chart() {
        let mut state = sample_state();
        state.timeline.clear();
        assert_eq!(gantt(&state), None);
        assert!(!markdown(&state).contains("gantt"));
    }

    #[test]
    fn the_graph_is_coloured_by_outcome() {
        let mut state = sample_state();
        state.streams[2].name = "u\"i".into();
        let text = graph(&state);
        assert_eq!(
            text,
            "\
flowchart LR
    s0[\"db<br/>integrated\"]
    s1[\"api<br/>failed\"]
    s2[\"u#quot;i<br/>skipped\"]
    s0 --> s1
    s1 --> s2
    classDef integrated fill:#dafbe1,stroke:#1a7f37,color:#1f2328
    classDef failed fill:#ffebe9,stroke:#cf222e,color:#1f2328
    classDef skipped fill:#fff8c5,stroke:#9a6700,color:#1f2328
    class s0 integrated
    class s1 failed
    class s2 skipped
"
        );
    }
}
