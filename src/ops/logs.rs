//! `logs`: an agent's log, whole or followed while its task runs.
//!
//! Following polls the file and the run's state: the dispatcher alone writes the state, so a
//! reader learns that the task ended by reading it, and then prints what the log holds at that
//! moment (everything the agent wrote: the executor closes the log before it reports the end).

use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;

use crate::error::{Error, Result};
use crate::report::timeline;
use crate::state::{RunDir, RunState, StateDir, TaskState, lock};

use super::show::find_stream;

/// The log of one task of a stream, and which task that is.
#[derive(Clone, Debug)]
pub struct TaskLog {
    pub stream: String,
    /// Zero-based.
    pub task: usize,
    pub path: PathBuf,
}

/// The log of task `task` (1-based) of `stream`; without a task, the one running now, else the
/// last one that wrote a log, else the first (whose log may not exist yet).
pub fn task_log(
    dir: &RunDir,
    state: &RunState,
    stream: &str,
    task: Option<usize>,
) -> Result<TaskLog> {
    let (_, s) = find_stream(state, stream)?;
    let count = s.tasks.len();
    let log_of = |i: usize| {
        timeline::task_spans(state, s, i)
            .filter_map(|span| span.log.clone())
            .last()
            .unwrap_or_else(|| dir.log_path(&s.name, i))
    };
    let index = match task {
        Some(n) if n == 0 || n > count => {
            return Err(Error::usage_with_hint(
                format!("stream `{stream}` has no task {n}"),
                format!("its tasks are numbered 1 to {count}"),
            ));
        }
        Some(n) => n - 1,
        // Not started yet: the first task, whose log `-f` waits for.
        None => s
            .tasks
            .iter()
            .position(|t| matches!(t.state, TaskState::Running { .. }))
            .or_else(|| (0..count).rev().find(|i| log_of(*i).exists()))
            .unwrap_or(0),
    };
    Ok(TaskLog {
        stream: s.name.clone(),
        task: index,
        path: log_of(index),
    })
}

/// Reads a log from where it was last read, and says when the task writing it has ended.
pub struct Follower {
    log: TaskLog,
    dir: RunDir,
    state_dir: StateDir,
    offset: u64,
}

/// What one look at a followed log found.
#[derive(Debug, PartialEq, Eq)]
pub enum Poll {
    /// New bytes the agent wrote.
    Data(Vec<u8>),
    /// Nothing new; the task still runs (or has not started): look again later.
    Waiting,
    /// The task is over and everything it wrote has been read.
    Ended,
}

impl Follower {
    pub fn new(repo: &crate::git::Repo, dir: RunDir, log: TaskLog) -> Follower {
        Follower {
            log,
            dir,
            state_dir: StateDir::new(repo.common_dir()),
            offset: 0,
        }
    }

    pub fn log(&self) -> &TaskLog {
        &self.log
    }

    pub fn poll(&mut self) -> Result<Poll> {
        // The state first: if the task is over now, whatever the log holds after this is all.
        let running = self.still_running()?;
        let data = self.read_new()?;
        Ok(match (data.is_empty(), running) {
            (false, _) => Poll::Data(data),
            (true, true) => Poll::Waiting,
            (true, false) => Poll::Ended,
        })
    }

    /// Whether the task may still write: it runs, or it has not started and the run goes on.
    fn still_running(&self) -> Result<bool> {
        let state = self.dir.load()?;
        let Some((_, s)) = state.stream_by_name(&self.log.stream) else {
            return Ok(false);
        };
        let alive = lock::current_holder(&self.state_dir, &state.plan_name).is_some();
        Ok(match s.tasks.get(self.log.task).map(|t| &t.state) {
            Some(TaskState::Running { .. }) => alive,
            Some(TaskState::Pending) => alive && !state.phase.is_over(),
            _ => false,
        })
    }

    fn read_new(&mut self) -> Result<Vec<u8>> {
        let mut file = match std::fs::File::open(&self.log.path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => {
                return Err(Error::io(
                    format!("could not read {}", self.log.path.display()),
                    e,
                ));
            }
        };
        let read = |file: &mut std::fs::File, offset: u64| -> std::io::Result<Vec<u8>> {
            file.seek(SeekFrom::Start(offset))?;
            let mut bytes = Vec::new();
            // A bounded read per look: a flooding agent is shown as it goes, not buffered whole.
            file.take(1 << 20).read_to_end(&mut bytes)?;
            Ok(bytes)
        };
        let bytes = read(&mut file, self.offset)
            .map_err(|e| Error::io(format!("could not read {}", self.log.path.display()), e))?;
        self.offset += bytes.len() as u64;
        Ok(bytes)
    }
}

/// The error for a log that does not exist (the task has not started).
pub fn no_log(log: &TaskLog) -> Error {
    Error::usage_with_hint(
        format!(
            "task {} of stream `{}` has no log yet: it has not started",
            log.task + 1,
            log.stream
        ),
        format!(
            "`streams logs {} {} -f` waits for it and follows it",
            log.stream,
            log.task + 1
        ),
    )
}
