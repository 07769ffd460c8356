//! Reporters: how events reach the user while a run goes on.
//!
//! - [`Lines`]: one line per event on stderr (CI logs, pipes, `--no-progress`).
//! - [`Live`]: a line per stream with state, task and elapsed time, and an overall bar, on a
//!   terminal.
//! - [`Json`]: NDJSON on stdout (`--json`).
//!
//! The CLI combines them with [`Many`].

use std::collections::HashMap;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::{Event, Ui, fmt_duration_ms};
use crate::state::{RunState, now_ms};

pub trait Reporter: Send {
    fn event(&mut self, event: &Event, state: &RunState);
    /// A line that is not an event (a signal received, a conflict found).
    fn message(&mut self, text: &str);
    /// The run is over for this session: clear anything drawn.
    fn finish(&mut self) {}
}

/// The reporters of a session: NDJSON on stdout with `--json`, and the live view on a terminal
/// (else event lines) on stderr.
pub fn for_session(ui: &Ui, state: &RunState, json: bool) -> Box<dyn Reporter> {
    let mut list: Vec<Box<dyn Reporter>> = Vec::new();
    if json {
        list.push(Box::new(Json));
    }
    if ui.progress {
        list.push(Box::new(Live::new(ui.clone(), state)));
    } else {
        list.push(Box::new(Lines { ui: ui.clone() }));
    }
    Box::new(Many(list))
}

pub struct Many(pub Vec<Box<dyn Reporter>>);

impl Reporter for Many {
    fn event(&mut self, event: &Event, state: &RunState) {
        for r in &mut self.0 {
            r.event(event, state);
        }
    }
    fn message(&mut self, text: &str) {
        for r in &mut self.0 {
            r.message(text);
        }
    }
    fn finish(&mut self) {
        for r in &mut self.0 {
            r.finish();
        }
    }
}

/// NDJSON events on stdout.
pub struct Json;

impl Reporter for Json {
    fn event(&mut self, event: &Event, _state: &RunState) {
        let line = format!("{}\n", event.to_ndjson(now_ms()));
        let _ = super::printer::write_stdout(line.as_bytes());
    }
    fn message(&mut self, _text: &str) {}
}

/// The text of an event line, or `None` for events that have no line of their own.
pub fn event_line(event: &Event, ui: &Ui) -> Option<String> {
    Some(match event {
        Event::RunStarted {
            run_id,
            plan,
            base,
            streams,
            jobs,
            command,
        } => {
            let verb = match command.as_str() {
                "run" => "run",
                "resume" => "resuming run",
                "continue" => "continuing run",
                _ => "run",
            };
            // A stream runs one agent at a time: no more run at once than there are streams.
            format!(
                "{verb} {run_id} of plan `{plan}`: {streams} stream{}, base {}, {} at a time",
                plural(*streams),
                crate::text::short(base),
                (*jobs).min((*streams).max(1))
            )
        }
        Event::StreamStarted { .. } => return None,
        Event::TaskStarted {
            stream,
            task,
            tasks,
            attempt,
            ..
        } => {
            if *attempt > 1 {
                format!("started {stream} (task {task}/{tasks}, attempt {attempt})")
            } else {
                format!("started {stream} (task {task}/{tasks})")
            }
        }
        Event::Note { stream, message } => format!("note {stream}: {message}"),
        Event::CheckRan {
            stream,
            task,
            passed,
            result,
            duration_ms,
            log,
        } => {
            if *passed {
                format!(
                    "check {stream} (task {task}): passed in {}",
                    fmt_duration_ms(*duration_ms)
                )
            } else {
                format!("check {stream} (task {task}): {result}; log {log}")
            }
        }
        Event::GateFlaky {
            streams,
            commit,
            passed,
            logs,
            landed,
        } => {
            let verdicts: Vec<&str> = passed
                .iter()
                .map(|p| if *p { "passed" } else { "failed" })
                .collect();
            let then = if *landed {
                "it landed on its last verdict"
            } else {
                "nothing of its batch is integrated"
            };
            format!(
                "{} gate on + {} ({}): {} on the same files; no stream is blamed, {then} (logs: {})",
                ui.yellow("flaky"),
                streams.join(", "),
                crate::text::short(commit),
                verdicts.join(", then "),
                logs.join(", ")
            )
        }
        Event::GateRan {
            streams,
            commit,
            passed,
            result,
            duration_ms,
            again,
            ..
        } => {
            let on = if streams.is_empty() {
                "the integration tip alone".to_string()
            } else {
                format!("+ {}", streams.join(", "))
            };
            let verdict = if *passed {
                "passed".to_string()
            } else {
                result.clone()
            };
            let again = if *again { " again" } else { "" };
            format!(
                "gate{again} on {on} ({}): {verdict} in {}",
                crate::text::short(commit),
                fmt_duration_ms(*duration_ms)
            )
        }
        Event::TaskRetrying {
            stream,
            task,
            attempt,
            reason,
            delay_ms,
        } => format!(
            "retrying {stream} task {task} in {} (attempt {attempt}): {reason}",
            fmt_duration_ms(*delay_ms)
        ),
        Event::TaskCommitted {
            stream,
            task,
            tasks,
            commits: 0,
            files: 0,
            duration_ms,
            ..
        } => format!(
            "finished {stream} task {task}/{tasks} in {} (no changes)",
            fmt_duration_ms(*duration_ms)
        ),
        Event::TaskCommitted {
            stream,
            task,
            tasks,
            commits,
            files,
            insertions,
            deletions,
            duration_ms,
        } => {
            format!(
                "committed {stream} task {task}/{tasks} in {} ({commits} commit{}, {files} file{}, +{insertions}/-{deletions})",
                fmt_duration_ms(*duration_ms),
                plural(*commits),
                plural(*files)
            )
        }
        Event::TaskFailed {
            stream,
            task,
            reason,
            log,
            log_tail,
        } => {
            let mut line = format!("{} {stream} (task {task}): {reason}", ui.red("failed"));
            line.push_str(&format!("\n  log: {log}"));
            for tail in log_tail {
                line.push_str(&format!("\n  | {tail}"));
            }
            line
        }
        Event::Integrated {
            stream,
            tasks,
            commits,
            ..
        } => {
            let tasks = match tasks.as_slice() {
                [one] => format!("task {one}"),
                [first, .., last] => format!("tasks {first}-{last}"),
                [] => "no tasks".into(),
            };
            format!(
                "integrated {stream} ({tasks}): {commits} commit{}",
                plural(*commits)
            )
        }
        Event::StreamDone {
            stream,
            duration_ms,
            commits,
            files,
        } => format!(
            "{} {stream} in {} ({commits} commit{}, {files} file{})",
            ui.green("done"),
            fmt_duration_ms(*duration_ms),
            plural(*commits),
            plural(*files)
        ),
        Event::StreamFailed { .. } => return None,
        Event::StreamSkipped { stream, reason } => {
            format!("{} {stream}: {reason}", ui.yellow("skipped"))
        }
        Event::StreamStopped { stream, kept } => format!(
            "{} {stream}{}; `streams retry {stream}` continues it",
            ui.yellow("stopped"),
            kept.as_ref()
                .map(|k| format!(": its unfinished work is kept on {k}"))
                .unwrap_or_default()
        ),
        Event::StreamLimited {
            stream,
            task,
            reason,
        } => format!("{} {stream} task {task}: {reason}", ui.yellow("stopped")),
        Event::TaskWaiting {
            stream,
            task,
            until,
            reset_known,
            message,
        } => {
            let wait = until.saturating_sub(crate::state::now_ms());
            let why = if *reset_known {
                "until it resets"
            } else {
                "then tries again"
            };
            format!(
                "{} {stream} task {task}: usage limit ({}); waits {} {why}",
                ui.yellow("waiting"),
                crate::text::sanitize(message),
                fmt_duration_ms(wait)
            )
        }
        Event::BudgetWarning { budget, spent } => format!(
            "{} 80 % of the {budget} budget is spent ({spent})",
            ui.yellow("budget")
        ),
        Event::TaskUsage { .. } => return None,
        // When the line stops, said once by the halt at the end of the session
        // (`session_view::ended`); a parked stream is said the moment it parks.
        Event::Conflict { parked: false, .. } => return None,
        Event::Conflict {
            stream,
            files,
            bundle,
            worktree,
            waiting,
            ..
        } => {
            let waiting = match waiting.as_slice() {
                [] => String::new(),
                [one] => format!("; {one} waits for it"),
                many => format!("; {} wait for it", many.join(", ")),
            };
            format!(
                "{} {stream}: integrating it conflicts in {}; the other streams go on{waiting}\n  conflict bundle: {bundle}/README.md\n  resolve in:      {worktree}",
                ui.yellow("parked"),
                super::quote_paths(files)
            )
        }
        Event::Interrupted { signal } => format!("interrupted by {signal}: state saved"),
        Event::RunFinished { .. } => return None,
    })
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// One line per event on stderr.
pub struct Lines {
    pub ui: Ui,
}

impl Reporter for Lines {
    fn event(&mut self, event: &Event, _state: &RunState) {
        if let Some(line) = event_line(event, &self.ui) {
            let important = matches!(event, Event::TaskFailed { .. } | Event::Conflict { .. });
            if important {
                self.ui.always(line)
            } else {
                self.ui.info(line)
            }
        }
    }
    fn message(&mut self, text: &str) {
        self.ui.info(text);
    }
}

/// The live view on a terminal: a line per stream, an overall bar, event lines printed above.
pub struct Live {
    ui: Ui,
    multi: MultiProgress,
    overall: ProgressBar,
    streams: HashMap<String, ProgressBar>,
}

impl Live {
    pub fn new(ui: Ui, state: &RunState) -> Live {
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(10));
        let total: usize = state.streams.iter().map(|s| s.tasks.len()).sum();
        let overall = multi.add(ProgressBar::new(total as u64));
        overall.set_style(
            ProgressStyle::with_template("{prefix:>12} [{bar:30}] {pos}/{len} tasks  {elapsed}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        overall.set_prefix("streams");
        let done: usize = state
            .streams
            .iter()
            .flat_map(|s| &s.tasks)
            .filter(|t| {
                matches!(
                    t.state,
                    crate::state::TaskState::Integrated { .. }
                        | crate::state::TaskState::Committed { .. }
                )
            })
            .count();
        overall.set_position(done as u64);
        overall.enable_steady_tick(Duration::from_millis(200));
        Live {
            ui,
            multi,
            overall,
            streams: HashMap::new(),
        }
    }

    fn bar(&mut self, stream: &str) -> ProgressBar {
        if let Some(bar) = self.streams.get(stream) {
            return bar.clone();
        }
        let bar = self
            .multi
            .insert_before(&self.overall, ProgressBar::new_spinner());
        bar.set_style(
            ProgressStyle::with_template("{spinner} {prefix:>10} {wide_msg} {elapsed:>5}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.set_prefix(stream.to_string());
        bar.enable_steady_tick(Duration::from_millis(120));
        self.streams.insert(stream.to_string(), bar.clone());
        bar
    }

    fn println(&self, line: &str) {
        let _ = self.multi.println(line);
    }
}

impl Reporter for Live {
    fn event(&mut self, event: &Event, _state: &RunState) {
        match event {
            Event::TaskStarted {
                stream,
                task,
                tasks,
                summary,
                attempt,
            } => {
                let bar = self.bar(stream);
                let attempt = if *attempt > 1 {
                    format!(" (attempt {attempt})")
                } else {
                    String::new()
                };
                bar.set_message(format!(
                    "task {task}/{tasks}{attempt}: {}",
                    crate::text::sanitize(summary)
                ));
            }
            Event::TaskCommitted { .. } => self.overall.inc(1),
            Event::Integrated { stream, .. } => {
                if let Some(bar) = self.streams.get(stream) {
                    bar.set_message("integrated");
                }
            }
            Event::StreamDone { stream, .. } => {
                let bar = self.bar(stream);
                bar.finish_with_message(self.ui.green("done"));
            }
            Event::StreamFailed { stream, reason } => {
                let bar = self.bar(stream);
                bar.finish_with_message(format!("{}: {reason}", self.ui.red("failed")));
            }
            Event::StreamLimited { stream, reason, .. } => {
                let bar = self.bar(stream);
                let why = if reason.starts_with("budget") {
                    "budget"
                } else {
                    "usage limit"
                };
                bar.finish_with_message(self.ui.yellow(format!("stopped ({why})")));
            }
            Event::TaskWaiting { stream, task, .. } => {
                let bar = self.bar(stream);
                bar.set_message(format!("task {task}: waiting for the usage limit to reset"));
            }
            Event::Conflict { stream, files, .. } => {
                let bar = self.bar(stream);
                bar.finish_with_message(format!(
                    "{}: conflicts in {}",
                    self.ui.yellow("parked"),
                    super::quote_paths(files)
                ));
            }
            _ => {}
        }
        let quiet_here = matches!(
            event,
            Event::TaskStarted { .. } | Event::TaskCommitted { .. } | Event::Integrated { .. }
        );
        if !quiet_here && let Some(line) = event_line(event, &self.ui) {
            self.println(&line);
        }
    }

    fn message(&mut self, text: &str) {
        self.println(text);
    }

    fn finish(&mut self) {
        for bar in self.streams.values() {
            bar.finish_and_clear();
        }
        self.overall.finish_and_clear();
        let _ = self.multi.clear();
    }
}
