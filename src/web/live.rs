//! Live events: what changed in the run, sent to every open page as server-sent events.
//!
//! A watcher on the run's directory (inotify on Linux) wakes a scan whenever the dispatcher
//! saves `state.json`, appends to the journal, or an agent writes to its log; the scan compares
//! with what it saw last and sends only the differences: a stream's new state, the run's phase,
//! new timeline steps, new journal entries, new log lines (redacted). The page never re-reads
//! the whole run to find out what changed. A slow tick (once a second) also scans, for what
//! writes no file: a coordinator that died (its lock released), and the `current` pointer of a
//! new run where the file system sends no events.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::broadcast;

use crate::report::redact::Redactor;
use crate::report::svg;
use crate::state::{RunDir, RunState, StateDir, TaskState, journal, lock};

/// One change, as the page receives it (`event:` is the variant's name).
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Live {
    /// Another run became the repository's current one (or the first one started): the page
    /// loads it.
    Run { run_id: Option<String> },
    /// The run's phase as a reader sees it (`running`, `halted`, `finished`, ...), its outcome
    /// word, and the first stream parked on a conflict.
    Phase {
        phase: String,
        outcome: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        halted: Option<String>,
    },
    /// A stream's state changed.
    Stream(StreamLive),
    /// The timeline gained steps (the page redraws it).
    Timeline { spans: usize },
    /// New journal entries, one line each (`at` in milliseconds since the Unix epoch).
    Journal { at: u64, entry: serde_json::Value },
    /// New lines of a task's log, redacted; `end` is the log's offset after them.
    Log {
        stream: String,
        task: usize,
        lines: Vec<String>,
        end: u64,
    },
    /// Output of an action the page started (`streams continue`, ...), and its end.
    Action {
        id: u64,
        lines: Vec<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        exit: Option<i32>,
    },
    /// Events were missed (a slow page): it reloads the whole run once.
    Resync,
}

impl Live {
    pub fn name(&self) -> &'static str {
        match self {
            Live::Run { .. } => "run",
            Live::Phase { .. } => "phase",
            Live::Stream(_) => "stream",
            Live::Timeline { .. } => "timeline",
            Live::Journal { .. } => "journal",
            Live::Log { .. } => "log",
            Live::Action { .. } => "action",
            Live::Resync => "resync",
        }
    }
}

/// What the board shows of a stream; sent whole when any of it changes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StreamLive {
    pub name: String,
    pub word: String,
    pub tasks_done: usize,
    pub tasks: usize,
    /// The running task, 1-based.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl StreamLive {
    pub fn of(state: &RunState, index: usize) -> StreamLive {
        let s = &state.streams[index];
        StreamLive {
            name: s.name.clone(),
            word: svg::node_word(state, index).to_string(),
            tasks_done: s.tasks.iter().filter(|t| t.state.range().is_some()).count(),
            tasks: s.tasks.len(),
            task: s
                .tasks
                .iter()
                .position(|t| matches!(t.state, TaskState::Running { .. }))
                .map(|t| t + 1),
            reason: match &s.state {
                crate::state::StreamState::Failed { reason, .. }
                | crate::state::StreamState::Skipped { reason, .. } => Some(reason.clone()),
                _ => None,
            },
        }
    }
}

/// Which run the page follows.
#[derive(Clone, Debug)]
pub enum Follow {
    /// The repository's current run, and the next one when another starts.
    Current,
    /// `--run ID`.
    Fixed(String),
    /// `--plan NAME`: that plan's last run, and its next one when another starts.
    Plan(String),
}

impl Follow {
    pub fn run_id(&self, state_dir: &StateDir) -> Option<String> {
        match self {
            Follow::Current => state_dir.current_run_id(),
            Follow::Fixed(id) => Some(id.clone()),
            Follow::Plan(plan) => {
                // The current run most often is the plan's: one state read, not every run's.
                let current = state_dir.current_run_id();
                if let Some(id) = &current
                    && state_dir
                        .run_dir(id)
                        .load()
                        .is_ok_and(|s| s.plan_name == *plan)
                {
                    return current;
                }
                let (runs, _) = state_dir.runs();
                runs.into_iter()
                    .rev()
                    .find(|(_, s)| s.plan_name == *plan)
                    .map(|(_, s)| s.run_id)
            }
        }
    }
}

/// What the scanner saw last.
#[derive(Default)]
struct Seen {
    /// A scan happened before (the first one tells nobody what it found).
    scanned: bool,
    run_id: Option<String>,
    /// `state.json` as last read (its file, its time and size: the store replaces it whole),
    /// and what it held.
    state_stamp: Option<(u64, std::time::SystemTime, u64)>,
    state: Option<RunState>,
    streams: Vec<StreamLive>,
    phase: Option<(String, String)>,
    spans: usize,
    /// When the page was last told to redraw the timeline.
    timeline_sent: Option<std::time::Instant>,
    journal_offset: u64,
    /// Each followed log: (stream, task) -> offset read up to.
    logs: BTreeMap<(String, usize), (PathBuf, u64)>,
    /// The tasks running as of the last state read.
    running: std::collections::BTreeSet<(String, usize)>,
    redactor: Option<Arc<Redactor>>,
}

/// Watches the state directory and sends what changes. Runs until the sender has no
/// receivers left and the server is gone (the task is dropped with the runtime).
pub async fn watch(state_dir: StateDir, follow: Follow, tx: broadcast::Sender<Live>) {
    let (wake_tx, mut wake_rx) = tokio::sync::mpsc::channel::<()>(1);
    let watcher = {
        let wake_tx = wake_tx.clone();
        notify::recommended_watcher(move |_event: notify::Result<notify::Event>| {
            // A full channel already holds a wake-up: the scan it starts sees this change too.
            let _ = wake_tx.try_send(());
        })
    };
    let mut watcher = match watcher {
        Ok(w) => Some(w),
        Err(e) => {
            tracing::debug!("no file watcher ({e}); scanning once a second");
            None
        }
    };
    let mut watched: Vec<PathBuf> = Vec::new();
    let mut seen = Seen::default();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        // What to watch: the state directory (the `current` pointer, new runs) and the run's
        // own directory with its logs, once they exist.
        if let Some(w) = watcher.as_mut() {
            use notify::Watcher as _;
            let mut want = vec![(state_dir.root().to_path_buf(), false)];
            if let Some(id) = &seen.run_id {
                want.push((state_dir.run_dir(id).path().to_path_buf(), true));
            }
            for (path, recursive) in want {
                if !watched.contains(&path) && path.is_dir() {
                    let mode = if recursive {
                        notify::RecursiveMode::Recursive
                    } else {
                        notify::RecursiveMode::NonRecursive
                    };
                    if w.watch(&path, mode).is_ok() {
                        watched.push(path);
                    }
                }
            }
        }
        let (sd, fl) = (state_dir.clone(), follow.clone());
        let scanned = tokio::task::spawn_blocking(move || {
            let mut events = Vec::new();
            let seen = scan(&sd, &fl, seen, &mut events);
            (seen, events)
        })
        .await;
        let Ok((next, events)) = scanned else {
            return;
        };
        seen = next;
        for event in events {
            // No page open: nothing to tell.
            let _ = tx.send(event);
        }
        tokio::select! {
            _ = wake_rx.recv() => {
                // Writes come in bursts (a state save is a write and a rename; an agent prints
                // line by line): one scan for the burst.
                tokio::time::sleep(Duration::from_millis(40)).await;
                while wake_rx.try_recv().is_ok() {}
            }
            _ = tick.tick() => {}
        }
    }
}

/// One look at the run: the events since the last look, and what it saw.
fn scan(state_dir: &StateDir, follow: &Follow, mut seen: Seen, events: &mut Vec<Live>) -> Seen {
    let run_id = follow.run_id(state_dir);
    if !seen.scanned || run_id != seen.run_id {
        if seen.scanned {
            events.push(Live::Run {
                run_id: run_id.clone(),
            });
        }
        seen = Seen {
            scanned: true,
            run_id,
            ..Seen::default()
        };
    }
    let Some(id) = seen.run_id.clone() else {
        return seen;
    };
    let dir = state_dir.run_dir(&id);
    let holder = lock::holder_of_run(state_dir, &id);
    let stamp = std::fs::metadata(dir.state_path()).ok().and_then(|m| {
        use std::os::unix::fs::MetadataExt as _;
        Some((m.ino(), m.modified().ok()?, m.len()))
    });
    let state = if stamp.is_some() && stamp != seen.state_stamp {
        dir.load().ok()
    } else {
        None
    };
    if let Some(state) = &state {
        seen.state_stamp = stamp;
        if seen.redactor.is_none() {
            seen.redactor = Some(Arc::new(crate::ops::ui::redactor(&dir, state)));
        }
        let streams: Vec<StreamLive> = (0..state.streams.len())
            .map(|i| StreamLive::of(state, i))
            .collect();
        for (i, s) in streams.iter().enumerate() {
            if seen.streams.get(i) != Some(s) {
                events.push(Live::Stream(s.clone()));
            }
        }
        seen.streams = streams;
        if state.timeline.len() != seen.spans {
            seen.spans = state.timeline.len();
            seen.timeline_sent = Some(std::time::Instant::now());
            events.push(Live::Timeline { spans: seen.spans });
        }
        follow_logs(&dir, state, &mut seen);
    }
    // Running tasks' bars grow with no change to the state: now and then, a redraw.
    if !seen.running.is_empty()
        && seen
            .timeline_sent
            .is_none_or(|at| at.elapsed() >= TIMELINE_GROWTH)
    {
        seen.timeline_sent = Some(std::time::Instant::now());
        events.push(Live::Timeline { spans: seen.spans });
    }
    if state.is_some() {
        seen.state = state;
    }
    // The phase also changes with no write: a coordinator that died leaves `running` saved.
    if let Some(state) = &seen.state {
        let phase = state.phase.seen(holder.is_some()).to_string();
        let outcome = crate::report::summary::status_of(state).to_string();
        if seen.phase.as_ref() != Some(&(phase.clone(), outcome.clone())) {
            seen.phase = Some((phase.clone(), outcome.clone()));
            // The first stream that parked (the page lists every parked stream's conflict).
            let halted = match &state.phase {
                crate::state::RunPhase::Halted => {
                    state.parked().first().map(|(_, s, _)| s.name.clone())
                }
                _ => None,
            };
            events.push(Live::Phase {
                phase,
                outcome,
                halted,
            });
        }
    }
    read_journal(&dir, &mut seen, events);
    read_logs(&mut seen, events);
    seen
}

/// Starts following the log of each task that runs (and keeps following one until it is read
/// to its end after the task stopped).
fn follow_logs(dir: &RunDir, state: &RunState, seen: &mut Seen) {
    seen.running.clear();
    for s in &state.streams {
        for (t, task) in s.tasks.iter().enumerate() {
            if matches!(task.state, TaskState::Running { .. }) {
                let key = (s.name.clone(), t);
                seen.running.insert(key.clone());
                seen.logs
                    .entry(key)
                    .or_insert_with(|| (dir.log_path(&s.name, t), 0));
            }
        }
    }
}

/// How often the timeline is redrawn while tasks run and nothing else changes it.
const TIMELINE_GROWTH: Duration = Duration::from_secs(5);

/// At most this much of a log per event: a flooding agent is shown as it goes.
const LOG_CHUNK: u64 = 64 * 1024;

fn read_logs(seen: &mut Seen, events: &mut Vec<Live>) {
    let redactor = seen.redactor.clone().unwrap_or_default();
    let mut finished = Vec::new();
    for ((stream, task), (path, offset)) in seen.logs.iter_mut() {
        let (lines, end) = crate::ops::ui::log_since(path, *offset, LOG_CHUNK, &redactor);
        if end == *offset && !seen.running.contains(&(stream.clone(), *task)) {
            // Its task ended and its log is read to the end.
            finished.push((stream.clone(), *task));
        }
        if end != *offset {
            *offset = end;
            let lines: Vec<String> = lines.into_iter().filter(|l| !l.trim().is_empty()).collect();
            if !lines.is_empty() {
                events.push(Live::Log {
                    stream: stream.clone(),
                    task: task + 1,
                    lines,
                    end,
                });
            }
        }
    }
    for key in finished {
        seen.logs.remove(&key);
    }
}

fn read_journal(dir: &RunDir, seen: &mut Seen, events: &mut Vec<Live>) {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut file) = std::fs::File::open(dir.journal_path()) else {
        return;
    };
    if file.seek(SeekFrom::Start(seen.journal_offset)).is_err() {
        return;
    }
    let mut bytes = Vec::new();
    let _ = file.take(1 << 20).read_to_end(&mut bytes);
    // Whole lines only: the last may be mid-write.
    let Some(end) = bytes.iter().rposition(|b| *b == b'\n') else {
        return;
    };
    seen.journal_offset += end as u64 + 1;
    for line in bytes[..end].split(|b| *b == b'\n') {
        if let Ok(line) = serde_json::from_slice::<journal::Line>(line)
            && let Ok(entry) = serde_json::to_value(&line.entry)
        {
            events.push(Live::Journal { at: line.at, entry });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn save(state_dir: &StateDir, state: &RunState) {
        let dir = state_dir.run_dir(&state.run_id);
        std::fs::create_dir_all(dir.path().join("logs/api")).unwrap();
        crate::state::store::write_atomic(&dir.state_path(), &serde_json::to_vec(state).unwrap())
            .unwrap();
        state_dir.set_current(&state.run_id).unwrap();
    }

    fn names(events: &[Live]) -> Vec<String> {
        events
            .iter()
            .map(|e| match e {
                Live::Stream(s) => format!("stream {} {}", s.name, s.word),
                Live::Log { stream, lines, .. } => format!("log {stream} {}", lines.join("|")),
                other => other.name().to_string(),
            })
            .collect()
    }

    /// The events other than a redraw of the timeline (which a running task's growing bar
    /// asks for every few seconds, whatever else changed).
    fn changes(events: &[Live]) -> Vec<String> {
        names(events)
            .into_iter()
            .filter(|name| name != "timeline")
            .collect()
    }

    /// A scan sends what changed since the last one, and nothing when nothing did.
    #[test]
    fn scans_send_only_what_changed() {
        let tmp = tempfile::tempdir().unwrap();
        let state_dir = StateDir::new(tmp.path());
        let mut state = crate::report::timeline::sample_state();
        state.phase = crate::state::RunPhase::Running;
        save(&state_dir, &state);
        let mut events = Vec::new();
        let seen = scan(&state_dir, &Follow::Current, Seen::default(), &mut events);
        // The first look reports everything (to nobody yet: pages load the whole run first).
        assert_eq!(
            names(&events),
            [
                "stream db integrated",
                "stream api failed",
                "stream ui skipped",
                "timeline",
                "phase"
            ]
        );
        let mut events = Vec::new();
        let seen = scan(&state_dir, &Follow::Current, seen, &mut events);
        assert!(events.is_empty(), "{events:?}");

        // `api` runs again: one stream's change, and its log as it grows, line by line.
        state.streams[1].state = crate::state::StreamState::Active { started_at: 1 };
        state.streams[1].tasks[0].state = TaskState::Running {
            start: state.base.clone(),
            started_at: 1,
            pgid: None,
        };
        save(&state_dir, &state);
        let log = state_dir.run_dir(&state.run_id).log_path("api", 0);
        std::fs::write(&log, "=== streams: task 1 ===\nfirst line\nhalf a li").unwrap();
        let mut events = Vec::new();
        let seen = scan(&state_dir, &Follow::Current, seen, &mut events);
        // A run saved as running that nobody holds reads as interrupted: no phase change here.
        assert_eq!(
            changes(&events),
            ["stream api running", "log api first line"]
        );
        std::fs::write(&log, "=== streams: task 1 ===\nfirst line\nhalf a line\n").unwrap();
        let mut events = Vec::new();
        let seen = scan(&state_dir, &Follow::Current, seen, &mut events);
        assert_eq!(changes(&events), ["log api half a line"]);

        // Another run becomes the current one.
        let mut next = state.clone();
        next.run_id = "20260101-000000-0002".into();
        save(&state_dir, &next);
        let mut events = Vec::new();
        scan(&state_dir, &Follow::Current, seen, &mut events);
        assert_eq!(names(&events)[0], "run");
    }
}
