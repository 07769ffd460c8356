//! The append-only journal: each step's intent before its side effect, its completion after.
//!
//! `state.json` says where the run stands as of its last save; the journal says what was under
//! way when it stopped. `resume` reads it to finish or undo the step that was in flight (an agent
//! that was spawned but never recorded in the state, an integration whose ref move may or may not
//! have happened). Each entry is one line of JSON written with a single `write` on an `O_APPEND`
//! descriptor and synced, so entries never interleave and a torn last line (a crash mid-write) is
//! simply skipped when reading.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use super::store::now_ms;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum Entry {
    RunStarted {
        run_id: String,
        base: String,
    },
    /// An agent process group exists from now on.
    AgentSpawned {
        stream: String,
        task: usize,
        pgid: i32,
    },
    AgentExited {
        stream: String,
        task: usize,
        pgid: i32,
    },
    /// The task's work is committed on its branch at `end` (written before the state knows).
    TaskCommitted {
        stream: String,
        task: usize,
        start: String,
        end: String,
    },
    /// About to move the integration ref from `old` to `new` for these tasks.
    IntegrateIntent {
        stream: String,
        first: usize,
        last: usize,
        old: String,
        new: String,
    },
    IntegrateDone {
        stream: String,
        first: usize,
        last: usize,
        new: String,
    },
    Halted {
        stream: String,
    },
    /// A budget reached 80 % (shown as it happens; `resume` ignores it).
    BudgetWarning {
        budget: String,
        spent: String,
    },
    /// The gate starts on `commit` (the integration tip plus `streams`).
    GateStarted {
        commit: String,
        streams: Vec<String>,
    },
    GateDone {
        commit: String,
        passed: bool,
    },
    /// A signal stopped the gate on `commit` before its verdict: `resume` runs it again.
    GateStopped {
        commit: String,
    },
    Resolved {
        stream: String,
        commit: String,
    },
    Resumed {
        pid: u32,
    },
    Finished,
    Aborted,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Line {
    pub at: u64,
    #[serde(flatten)]
    pub entry: Entry,
}

/// Appends to the journal. Shared by the dispatcher and executors (each write is one line).
pub struct Journal {
    path: PathBuf,
    file: Mutex<File>,
}

impl Journal {
    pub fn open(path: &Path) -> std::io::Result<Journal> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(Journal {
            path: path.to_path_buf(),
            file: Mutex::new(file),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn append(&self, entry: Entry) -> std::io::Result<()> {
        let mut line = serde_json::to_vec(&Line {
            at: now_ms(),
            entry,
        })
        .map_err(std::io::Error::other)?;
        line.push(b'\n');
        let mut file = self.file.lock().unwrap_or_else(|e| e.into_inner());
        file.write_all(&line)?;
        file.sync_data()
    }
}

/// Every readable entry, in order. A torn final line is skipped.
pub fn read(path: &Path) -> Vec<Entry> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    text.lines()
        .filter_map(|line| serde_json::from_str::<Line>(line).ok())
        .map(|line| line.entry)
        .collect()
}
