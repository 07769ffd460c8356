//! What past runs took: one line per finished task in `<git common dir>/streams/history.jsonl`,
//! so that `streams plan` can predict from experience instead of guesses.
//!
//! Append-only JSON lines, each carrying its format version (`v`), so a newer streams can add
//! fields or change the line format and an older file keeps loading: lines of a version this
//! build does not know, and a line torn by a crash, are skipped rather than failing the load.
//! Bounded: past [`MAX_BYTES`] the oldest half is dropped (the file is rewritten atomically).
//! A run is recorded once, when it finishes; its id makes a second recording a no-op.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::store::{StateDir, write_atomic};
use super::{RunState, StreamState, TaskState};
use crate::plan::Plan;
use crate::plan::learn::{self, text_hash};

/// The line format written by this build.
pub const HISTORY_VERSION: u32 = 1;

/// Past this size the oldest half of the history goes (about 5,000 tasks at 200 bytes each).
pub const MAX_BYTES: u64 = 1 << 20;

/// One finished task.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub v: u32,
    pub run: String,
    /// Milliseconds since the Unix epoch, when the task finished.
    pub at: u64,
    pub plan: String,
    pub stream: String,
    /// Zero-based position of the task in its stream.
    pub task: usize,
    /// [`text_hash`] of the task's prompt as the plan writes it: the same task in a later plan
    /// is recognised even if it moved.
    pub text_hash: String,
    /// The agent program (its argv[0]).
    pub agent: String,
    /// `done` or `failed`.
    pub outcome: String,
    /// Agent time, summed over its attempts, plus its share of its stream's overhead.
    pub seconds: f64,
    /// Tokens its agent used over its attempts, when it reported (absent in older lines).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens: Option<u64>,
    /// What they cost in US dollars, when known (stated or priced).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<f64>,
    /// The streams whose work its stream's conflicted with in that run (on each of the
    /// stream's lines; absent in older lines and when it met none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conflicted_with: Vec<String>,
    /// How many agents its run had at once (`--jobs`; absent in older lines): what a cost
    /// forecast per number of agents is taken from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jobs: Option<usize>,
}

/// The pairs of `plan`'s streams that conflicted in its earlier runs (see
/// [`learn::conflicts`]); none when the history cannot be read (it helps plan, it holds no
/// work).
pub fn conflicts(common_dir: &Path, plan: &Plan) -> Vec<learn::PairHistory> {
    let path = path(common_dir);
    let loaded = match load(&path) {
        Ok(loaded) => loaded,
        Err(err) => {
            tracing::warn!("could not read the history {}: {err}", path.display());
            return Vec::new();
        }
    };
    let met: Vec<learn::Met> = loaded
        .records
        .iter()
        .filter(|r| r.plan == plan.name)
        .map(|r| learn::Met {
            run: r.run.clone(),
            at: r.at,
            stream: r.stream.clone(),
            conflicted_with: r.conflicted_with.clone(),
        })
        .collect();
    learn::conflicts(plan, &met)
}

/// What [`load`] read.
#[derive(Debug, Default)]
pub struct History {
    /// Oldest first.
    pub records: Vec<Record>,
    /// Lines skipped: torn, or written by a newer streams in a format this one does not read.
    pub skipped: usize,
}

pub fn path(common_dir: &Path) -> PathBuf {
    StateDir::new(common_dir).root().join("history.jsonl")
}

/// Reads the history; a missing file is an empty history.
pub fn load(path: &Path) -> std::io::Result<History> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(History::default()),
        Err(err) => return Err(err),
    };
    Ok(parse(&text))
}

pub fn parse(text: &str) -> History {
    let mut history = History::default();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        match read_line(line) {
            Some(record) => history.records.push(record),
            None => history.skipped += 1,
        }
    }
    history
}

/// One line in any format this build reads.
fn read_line(line: &str) -> Option<Record> {
    #[derive(Deserialize)]
    struct Version {
        v: u32,
    }
    match serde_json::from_str::<Version>(line).ok()?.v {
        1 => serde_json::from_str(line).ok(),
        _ => None,
    }
}

/// The records a finished run adds: every task that ended done or failed, with its time.
///
/// A task's time is its agent's, plus its share of what its stream spent around the agents
/// (workspace, commits, integration) when the stream finished: what a plan has to wait for.
pub fn records_of(state: &RunState, plan: &Plan, now_ms: u64) -> Vec<Record> {
    let mut out = Vec::new();
    for record in &state.streams {
        let Some(stream) = plan.stream(&record.name) else {
            continue;
        };
        let agent_ms: u64 = record.tasks.iter().map(|t| t.agent_ms).sum();
        let scale = match record.state {
            StreamState::Done {
                started_at,
                finished_at,
            } if agent_ms > 0 && finished_at > started_at => {
                ((finished_at - started_at) as f64 / agent_ms as f64).max(1.0)
            }
            _ => 1.0,
        };
        for (k, task) in record.tasks.iter().enumerate() {
            let (outcome, at) = match &task.state {
                TaskState::Committed { finished_at, .. }
                | TaskState::Integrated { finished_at, .. } => ("done", *finished_at),
                TaskState::Failed { at, .. } => ("failed", *at),
                _ => continue,
            };
            let Some(plan_task) = stream.tasks.get(k) else {
                continue;
            };
            out.push(Record {
                v: HISTORY_VERSION,
                run: state.run_id.clone(),
                at: if at == 0 { now_ms } else { at },
                plan: plan.name.clone(),
                stream: stream.name.clone(),
                task: k,
                text_hash: text_hash(&plan_task.prompt),
                agent: plan
                    .agent_for(stream, plan_task)
                    .map(|a| a.program().to_string())
                    .unwrap_or_default(),
                outcome: outcome.to_string(),
                seconds: task.agent_ms as f64 * scale / 1000.0,
                tokens: reported(task).map(|u| u.total()),
                cost_usd: reported(task).and_then(|u| u.cost_usd),
                conflicted_with: record.conflicted_with.clone(),
                // A run spread over machines had as many agents at once as machines, which no
                // one of its runs knows: it does not say.
                jobs: state.machines.is_none().then_some(state.jobs),
            });
        }
    }
    out
}

/// What a task's agent reported over its attempts; `None` when no attempt reported.
fn reported(task: &super::TaskRecord) -> Option<super::model::Usage> {
    task.usage
        .iter()
        .filter_map(|a| a.usage.as_ref())
        .fold(None, |sum: Option<super::model::Usage>, u| {
            Some(sum.map_or_else(|| u.clone(), |s| s.add(u)))
        })
}

/// Appends a finished run's tasks, once: a run already in the history is not added again.
pub fn record_run(
    path: &Path,
    state: &RunState,
    plan: &Plan,
    now_ms: u64,
) -> std::io::Result<usize> {
    let existing = load(path)?;
    if existing.records.iter().any(|r| r.run == state.run_id) {
        return Ok(0);
    }
    let records = records_of(state, plan, now_ms);
    append(path, &records)?;
    Ok(records.len())
}

/// Appends records in one write, then keeps the file under [`MAX_BYTES`].
pub fn append(path: &Path, records: &[Record]) -> std::io::Result<()> {
    if records.is_empty() {
        return Ok(());
    }
    let mut lines = String::new();
    for record in records {
        lines.push_str(&serde_json::to_string(record).map_err(std::io::Error::other)?);
        lines.push('\n');
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    file.write_all(lines.as_bytes())?;
    file.sync_data()?;
    if file.metadata()?.len() > MAX_BYTES {
        compact(path)?;
    }
    Ok(())
}

/// Keeps the newest lines (whatever their version) that fit in half of [`MAX_BYTES`],
/// replacing the file atomically.
fn compact(path: &Path) -> std::io::Result<()> {
    let text = std::fs::read_to_string(path)?;
    let mut size = 0;
    let mut keep: Vec<&str> = text
        .lines()
        .rev()
        .filter(|l| !l.trim().is_empty())
        .take_while(|l| {
            size += l.len() as u64 + 1;
            size <= MAX_BYTES / 2
        })
        .collect();
    keep.reverse();
    let mut out = keep.join("\n");
    out.push('\n');
    write_atomic(path, out.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Prompt;

    fn record(run: &str, stream: &str, seconds: f64) -> Record {
        Record {
            v: 1,
            run: run.into(),
            at: 1,
            plan: "p".into(),
            stream: stream.into(),
            task: 0,
            text_hash: text_hash(&Prompt::Text("t".into())),
            agent: "a".into(),
            outcome: "done".into(),
            seconds,
            tokens: None,
            cost_usd: None,
            conflicted_with: Vec::new(),
            jobs: None,
        }
    }

    #[test]
    fn the_hash_is_stable() {
        // Pinned: changing it would make every history forget its tasks.
        let hash = |t: &str| text_hash(&Prompt::Text(t.into()));
        assert_eq!(hash(""), "cbf29ce484222325");
        assert_eq!(hash("Add the /login endpoint"), "3cf644a653e656c0");
    }

    #[test]
    fn torn_and_newer_lines_are_skipped() {
        let good = serde_json::to_string(&record("r", "s", 2.0)).unwrap();
        let text =
            format!("{good}\n{{\"v\": 9, \"whatever\": true}}\n{{\"v\": 1, \"run\": \"r\", \"at\"");
        let history = parse(&text);
        assert_eq!(history.records.len(), 1);
        assert_eq!(history.skipped, 2);
    }

    #[test]
    fn appends_and_stays_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("streams/history.jsonl");
        append(&path, &[record("r1", "a", 1.0)]).unwrap();
        append(&path, &[record("r2", "b", 2.0)]).unwrap();
        let loaded = load(&path).unwrap();
        assert_eq!(loaded.records.len(), 2);
        assert_eq!(loaded.records[1].stream, "b");
        // Fill past the bound: the oldest half goes, the newest stay.
        let many: Vec<Record> = (0..8000)
            .map(|i| record(&format!("x{i}"), "c", 1.0))
            .collect();
        append(&path, &many).unwrap();
        let size = std::fs::metadata(&path).unwrap().len();
        assert!(size <= MAX_BYTES, "{size}");
        let loaded = load(&path).unwrap();
        assert_eq!(loaded.records.last().unwrap().run, "x7999");
        assert!(loaded.records.iter().all(|r| r.run != "r1"));
    }
}
