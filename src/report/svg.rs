//! Pictures of a run drawn as SVG in Rust, so they show where scripts do not run (`report.html`
//! opened from a CI artifact with scripts off) and the web view needs no graph library: the
//! graph of streams coloured by state, and the timeline of every step.
//!
//! Both are plain data in, markup out. Every text that comes from the run (stream names, task
//! summaries, reasons) is escaped; nothing is interpreted. The graph's nodes carry
//! `data-stream` and a `st-<word>` class, so the live page recolours a node from an event
//! without redrawing it. Colours come from an embedded `<style>`, so the picture looks the same
//! inline, in an `<img>`, or as a file.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::html::escape;
use super::timeline::{self, step_name};
use crate::duration::fmt_duration_ms;
use crate::state::{RunPhase, RunState, SpanOutcome, Step, StreamRecord, StreamState, TaskState};

/// The word for a stream on the board and in the graph: `status`'s words (`parked` for a stream
/// that waits on its conflict), plus `aborted` for work an abort took off the branch.
pub fn node_word(state: &RunState, index: usize) -> &'static str {
    let s = &state.streams[index];
    let running = s
        .tasks
        .iter()
        .any(|t| matches!(t.state, TaskState::Running { .. }));
    match (&state.phase, &s.state) {
        (
            RunPhase::Aborted { .. },
            StreamState::Done { .. }
            | StreamState::Active { .. }
            | StreamState::Parked(_)
            | StreamState::Pending,
        ) => "aborted",
        (_, StreamState::Active { .. }) if s.setting_up => "setting up",
        _ => super::stream_word(&s.state, Some(running)),
    }
}

/// A CSS class name for a word (`setting up` -> `st-setting-up`).
pub fn state_class(word: &str) -> String {
    format!("st-{}", word.replace(' ', "-"))
}

/// The colours of the states, shared by both pictures and the pages that show them.
pub const STATE_STYLE: &str = "\
.st-pending{--fill:#f3f4f6;--line:#9ca3af}\
.st-running,.st-setting-up{--fill:#dbeafe;--line:#2563eb}\
.st-waiting,.st-active{--fill:#e0f2fe;--line:#0891b2}\
.st-integrated,.st-ok{--fill:#dcfce7;--line:#16a34a}\
.st-failed{--fill:#fee2e2;--line:#dc2626}\
.st-skipped{--fill:#fef9c3;--line:#ca8a04}\
.st-stopped{--fill:#fbefff;--line:#8250df}\
.st-conflict,.st-parked{--fill:#ffedd5;--line:#ea580c}\
.st-aborted,.st-interrupted{--fill:#e5e7eb;--line:#6b7280}";

const NODE_W: u32 = 176;
const NODE_H: u32 = 52;
const GAP_X: u32 = 64;
const GAP_Y: u32 = 20;
const PAD: u32 = 12;

/// The graph of streams, dependencies left to right (a stream's column is the length of the
/// longest chain of streams it waits for), each node coloured by its state.
pub fn graph(state: &RunState) -> String {
    let n = state.streams.len();
    let index: BTreeMap<&str, usize> = state
        .streams
        .iter()
        .enumerate()
        .map(|(i, s)| (s.name.as_str(), i))
        .collect();
    let deps: Vec<Vec<usize>> = state
        .streams
        .iter()
        .map(|s| {
            s.depends_on
                .iter()
                .filter_map(|d| index.get(d.as_str()).copied())
                .collect()
        })
        .collect();
    let depth = depths(&deps);
    let columns = depth.iter().copied().max().map_or(0, |d| d + 1);
    // Within a column: by the mean row of what a stream waits for (fewer crossings), then in
    // plan order.
    let mut row = vec![0usize; n];
    let mut rows_in: Vec<Vec<usize>> = Vec::with_capacity(columns);
    for col in 0..columns {
        let mut members: Vec<(f64, usize)> = (0..n)
            .filter(|&i| depth[i] == col)
            .map(|i| {
                let key = if deps[i].is_empty() {
                    i as f64
                } else {
                    deps[i].iter().map(|&d| row[d] as f64).sum::<f64>() / deps[i].len() as f64
                };
                (key, i)
            })
            .collect();
        members.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        for (r, (_, i)) in members.iter().enumerate() {
            row[*i] = r;
        }
        rows_in.push(members.into_iter().map(|(_, i)| i).collect());
    }
    let max_rows = rows_in.iter().map(Vec::len).max().unwrap_or(0).max(1) as u32;
    let width = PAD * 2 + columns.max(1) as u32 * (NODE_W + GAP_X) - GAP_X;
    let height = PAD * 2 + max_rows * (NODE_H + GAP_Y) - GAP_Y;
    let pos = |i: usize| -> (u32, u32) {
        (
            PAD + depth[i] as u32 * (NODE_W + GAP_X),
            PAD + row[i] as u32 * (NODE_H + GAP_Y),
        )
    };
    let mut out = String::new();
    let _ = write!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="graph" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" aria-label="graph of the streams of run {}">"#,
        escape(&state.run_id)
    );
    let _ = write!(
        out,
        "<style>{STATE_STYLE}\
         .node rect{{fill:var(--fill);stroke:var(--line);stroke-width:2}}\
         .node.st-conflict rect{{stroke-width:3}}\
         .node text{{font:13px system-ui,sans-serif;fill:#111827}}\
         .node .name{{font-weight:600}}\
         .node .word{{font-size:12px;fill:#374151}}\
         .edge{{fill:none;stroke:#9ca3af;stroke-width:1.5}}\
         </style>\
         <defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"7\" markerHeight=\"7\" orient=\"auto\"><path d=\"M0,0L10,5L0,10z\" fill=\"#9ca3af\"/></marker></defs>"
    );
    // Edges leave and enter a node at points spread over its side, in the order of the rows
    // at their other ends, so edges into one node do not meet in one point.
    let mut outgoing: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, ds) in deps.iter().enumerate() {
        for &d in ds {
            outgoing[d].push(i);
        }
    }
    for list in &mut outgoing {
        list.sort_by_key(|&i| (row[i], i));
    }
    let spread = |k: usize, of: usize| NODE_H * (k as u32 + 1) / (of as u32 + 1);
    for (i, ds) in deps.iter().enumerate() {
        let mut ins: Vec<usize> = ds.clone();
        ins.sort_by_key(|&d| (row[d], d));
        for (k, &d) in ins.iter().enumerate() {
            let (x1, y1) = pos(d);
            let (x2, y2) = pos(i);
            let out_k = outgoing[d].iter().position(|&t| t == i).unwrap_or(0);
            let (x1, y1) = (x1 + NODE_W, y1 + spread(out_k, outgoing[d].len()));
            let y2 = y2 + spread(k, ins.len());
            let mid = (x1 + x2) / 2;
            let _ = write!(
                out,
                r#"<path class="edge" d="M{x1},{y1}C{mid},{y1} {mid},{y2} {x2},{y2}" marker-end="url(#arrow)"/>"#
            );
        }
    }
    for (i, s) in state.streams.iter().enumerate() {
        let (x, y) = pos(i);
        let word = node_word(state, i);
        let done = s.tasks.iter().filter(|t| t.state.range().is_some()).count();
        let name = escape(&s.name);
        let _ = write!(
            out,
            r#"<g class="node {}" data-stream="{name}" transform="translate({x},{y})"><title>{name}: {}</title><rect width="{NODE_W}" height="{NODE_H}" rx="8"/><text class="name" x="12" y="21">{}</text><text class="word" x="12" y="40"><tspan class="state">{word}</tspan> · <tspan class="tasks">{done}/{}</tspan> tasks</text></g>"#,
            state_class(word),
            escape(&node_title(s, word)),
            escape(&ellipsis(&s.name, 22)),
            s.tasks.len(),
        );
    }
    out.push_str("</svg>");
    out
}

/// The tooltip of a node: its state and why, when it failed or was skipped.
fn node_title(s: &StreamRecord, word: &str) -> String {
    match s.state.reason() {
        Some(reason) => format!("{word}: {reason}"),
        None => word.to_string(),
    }
}

/// Each stream's column: the longest chain of dependencies below it (a cycle, which a valid
/// plan never has, is cut rather than looped on).
fn depths(deps: &[Vec<usize>]) -> Vec<usize> {
    fn visit(i: usize, deps: &[Vec<usize>], memo: &mut [Option<usize>], on: &mut [bool]) -> usize {
        if let Some(d) = memo[i] {
            return d;
        }
        if on[i] {
            return 0;
        }
        on[i] = true;
        let d = deps[i]
            .iter()
            .map(|&p| visit(p, deps, memo, on) + 1)
            .max()
            .unwrap_or(0);
        on[i] = false;
        memo[i] = Some(d);
        d
    }
    let mut memo = vec![None; deps.len()];
    let mut on = vec![false; deps.len()];
    (0..deps.len())
        .map(|i| visit(i, deps, &mut memo, &mut on))
        .collect()
}

/// `text` cut to `max` characters with an ellipsis.
fn ellipsis(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let cut: String = text.chars().take(max - 1).collect();
    format!("{cut}…")
}

const LABEL_W: u32 = 150;
const PLOT_W: u32 = 760;
const ROW_H: u32 = 26;
const AXIS_H: u32 = 24;

/// One bar of the timeline.
struct Bar {
    stream: usize,
    from: u64,
    to: u64,
    class: &'static str,
    label: String,
}

/// The timeline: a row per stream that did something, a bar per step (setup, each task, check,
/// gate, integration) as the run recorded it, and a bar up to `now` for each task still running.
/// `None` while nothing has happened.
pub fn timeline(state: &RunState, now: u64) -> Option<String> {
    let mut bars: Vec<Bar> = Vec::new();
    for span in &state.timeline {
        let Some((i, s)) = state.stream_by_name(&span.stream) else {
            continue;
        };
        let class = match (&span.outcome, &span.step) {
            (SpanOutcome::Ok, Step::Integration) => "bar-integration",
            (SpanOutcome::Ok, Step::Task { .. }) => "bar-ok",
            (SpanOutcome::Ok, _) => "bar-check",
            (SpanOutcome::Failed { .. }, _) => "bar-failed",
            (SpanOutcome::Conflict { .. }, _) => "bar-conflict",
            (SpanOutcome::Interrupted, _) => "bar-interrupted",
        };
        let what = match span.step {
            Step::Task { task } => format!(
                "{}: {}",
                step_name(&span.step),
                s.tasks.get(task).map_or("", |t| t.summary.as_str())
            ),
            ref step => step_name(step),
        };
        let how = match &span.outcome {
            SpanOutcome::Failed { reason } => format!("failed: {reason}"),
            SpanOutcome::Conflict { files } => format!("conflict in {}", files.join(", ")),
            outcome => timeline::outcome_word(outcome).to_string(),
        };
        bars.push(Bar {
            stream: i,
            from: span.started_at,
            to: span.finished_at.max(span.started_at),
            class,
            label: format!(
                "{} {what} — {how} ({})",
                s.name,
                fmt_duration_ms(timeline::duration_ms(span))
            ),
        });
    }
    let live = matches!(state.phase, RunPhase::Running);
    for (i, s) in state.streams.iter().enumerate() {
        for (t, task) in s.tasks.iter().enumerate() {
            if let TaskState::Running { started_at, .. } = task.state
                && live
            {
                let to = now.max(started_at);
                bars.push(Bar {
                    stream: i,
                    from: started_at,
                    to,
                    class: "bar-running",
                    label: format!(
                        "{} task {}: {} — running ({})",
                        s.name,
                        t + 1,
                        task.summary,
                        fmt_duration_ms(to - started_at)
                    ),
                });
            }
        }
    }
    if bars.is_empty() {
        return None;
    }
    let start = bars
        .iter()
        .map(|b| b.from)
        .min()
        .unwrap_or(state.started_at)
        .min(state.started_at.max(1));
    let end = bars
        .iter()
        .map(|b| b.to)
        .max()
        .unwrap_or(start)
        .max(start + 1);
    let span_ms = end - start;
    let rows: Vec<usize> = (0..state.streams.len())
        .filter(|i| bars.iter().any(|b| b.stream == *i))
        .collect();
    let width = LABEL_W + PLOT_W + 20;
    let height = AXIS_H + rows.len() as u32 * ROW_H + 8;
    let x = |t: u64| LABEL_W as f64 + (t - start) as f64 / span_ms as f64 * PLOT_W as f64;
    let mut out = String::new();
    let _ = write!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="timeline" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" aria-label="timeline of run {}">"#,
        escape(&state.run_id)
    );
    out.push_str(
        "<style>text{font:12px system-ui,sans-serif;fill:#374151}\
         .tick{stroke:#e5e7eb}.row{fill:#f9fafb}\
         .bar-ok{fill:#22c55e}.bar-check{fill:#a3e635}.bar-integration{fill:#0d9488}\
         .bar-failed{fill:#ef4444}.bar-conflict{fill:#f97316}.bar-interrupted{fill:#9ca3af}\
         .bar-running{fill:#3b82f6;opacity:.75}</style>",
    );
    let step = tick_step(span_ms);
    let mut t = 0;
    while t <= span_ms {
        let px = x(start + t);
        let _ = write!(
            out,
            r#"<line class="tick" x1="{px:.1}" y1="{AXIS_H}" x2="{px:.1}" y2="{height}"/><text x="{px:.1}" y="16" text-anchor="middle">{}</text>"#,
            if t == 0 {
                "0s".to_string()
            } else {
                fmt_duration_ms(t)
            }
        );
        t += step;
    }
    for (r, &i) in rows.iter().enumerate() {
        let y = AXIS_H + r as u32 * ROW_H;
        let name = &state.streams[i].name;
        let _ = write!(
            out,
            r#"<g data-stream="{}"><rect class="row" x="0" y="{y}" width="{width}" height="{}"/><text x="6" y="{}">{}</text>"#,
            escape(name),
            ROW_H - 2,
            y + 17,
            escape(&ellipsis(name, 20))
        );
        for b in bars.iter().filter(|b| b.stream == i) {
            let x1 = x(b.from);
            let w = (x(b.to) - x1).max(2.0);
            let _ = write!(
                out,
                r#"<rect class="{}" x="{x1:.1}" y="{}" width="{w:.1}" height="{}" rx="3"><title>{}</title></rect>"#,
                b.class,
                y + 4,
                ROW_H - 10,
                escape(&b.label)
            );
        }
        out.push_str("</g>");
    }
    out.push_str("</svg>");
    Some(out)
}

/// The distance between labelled ticks: a round step that gives at most eight of them.
fn tick_step(span_ms: u64) -> u64 {
    const STEPS: [u64; 14] = [
        100, 250, 500, 1_000, 2_000, 5_000, 10_000, 15_000, 30_000, 60_000, 120_000, 300_000,
        600_000, 1_800_000,
    ];
    STEPS
        .iter()
        .copied()
        .find(|s| span_ms / s <= 8)
        .unwrap_or_else(|| span_ms.div_ceil(8).max(3_600_000))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_graph_has_a_coloured_node_per_stream_and_an_edge_per_dependency() {
        let state = timeline::sample_state();
        let svg = graph(&state);
        roxmltree::Document::parse(&svg).expect("well-formed SVG");
        assert!(
            svg.contains(r#"class="node st-integrated" data-stream="db""#),
            "{svg}"
        );
        assert!(
            svg.contains(r#"class="node st-failed" data-stream="api""#),
            "{svg}"
        );
        assert!(
            svg.contains(r#"class="node st-skipped" data-stream="ui""#),
            "{svg}"
        );
        assert_eq!(svg.matches(r#"class="edge""#).count(), 2, "{svg}");
        assert_eq!(depths(&[vec![], vec![0], vec![1, 0]]), vec![0, 1, 2]);
    }

    #[test]
    fn names_are_escaped_never_markup() {
        let mut state = timeline::sample_state();
        state.streams[0].name = "<script>alert(1)</script>".into();
        state.timeline[0].stream = state.streams[0].name.clone();
        let svg = graph(&state) + &timeline(&state, 0).unwrap();
        assert!(!svg.contains("<script>"), "{svg}");
        assert!(svg.contains("&lt;script&gt;"), "{svg}");
    }

    #[test]
    fn the_timeline_draws_every_span_and_running_tasks_up_to_now() {
        let state = timeline::sample_state();
        let svg = timeline(&state, 0).unwrap();
        roxmltree::Document::parse(&svg).expect("well-formed SVG");
        assert_eq!(svg.matches("<rect class=\"bar-").count(), 3, "{svg}");
        assert!(svg.contains("bar-failed"), "{svg}");
        let mut running = state.clone();
        running.phase = RunPhase::Running;
        running.streams[2].tasks[0].state = TaskState::Running {
            start: running.base.clone(),
            started_at: running.started_at + 2000,
            pgid: None,
        };
        let svg = timeline(&running, running.started_at + 5000).unwrap();
        assert!(svg.contains("bar-running"), "{svg}");
        assert!(svg.contains("running (3.0s)"), "{svg}");
    }

    #[test]
    fn ticks_are_round_and_few() {
        assert_eq!(tick_step(2_500), 500);
        assert_eq!(tick_step(60_000), 10_000);
        assert_eq!(tick_step(3 * 3_600_000), 1_800_000);
        assert_eq!(tick_step(24 * 3_600_000), 10_800_000);
    }
}
