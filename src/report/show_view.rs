//! `streams show`: what each stream of a run did, as data (the `--json` document) and as text.
//!
//! The JSON schema is versioned by [`SHOW_SCHEMA`] and documented in the README ("Reviewing a
//! run"); fields are only added, never renamed, within a version.

use std::fmt::Write as _;

use serde::Serialize;

use super::fmt_duration_ms;
use crate::state::OwnershipViolation;
use crate::text::{escape_unsafe, quote_path, quote_paths, short};
use crate::work::FileChange;

/// Version of the `show --json` schema.
pub const SHOW_SCHEMA: u32 = 1;

/// The whole document: the run, and one entry per stream shown.
#[derive(Clone, Debug, Serialize)]
pub struct Show {
    pub schema: u32,
    pub run: RunHeader,
    pub streams: Vec<StreamShow>,
}

#[derive(Clone, Debug, Serialize)]
pub struct RunHeader {
    pub id: String,
    pub plan: String,
    /// `running`, `interrupted`, `halted`, `finished`, `aborted`.
    pub phase: String,
    pub base: String,
    pub integration_branch: String,
    pub integration_tip: String,
    /// The run directory (logs, report, conflict bundles).
    pub dir: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct StreamShow {
    pub name: String,
    /// `pending`, `running`, `waiting`, `integrated`, `failed`, `skipped`.
    pub state: String,
    /// Why it failed or was skipped.
    pub reason: Option<String>,
    /// The branch's short name, and where it points now (`None` once `clean` removed it).
    pub branch: String,
    pub tip: Option<String>,
    /// The commit its work started from (`None` before it started).
    pub started_from: Option<String>,
    /// The streams it waited for.
    pub depends_on: Vec<String>,
    pub tasks: Vec<TaskShow>,
    /// `started_from..tip`, oldest first.
    pub commits: Vec<CommitShow>,
    /// `started_from` to `tip`, file by file.
    pub files: Vec<FileChange>,
    pub insertions: usize,
    pub deletions: usize,
    /// Work refused because it touched paths the stream does not own.
    pub rejections: Vec<Rejection>,
    /// Every ref under `refs/streams/<plan>/` keeping this stream's work out of the way.
    pub kept: Vec<KeptRef>,
    /// Setup, check and gate runs, when the plan has them (empty otherwise).
    pub checks: Vec<CheckRun>,
    /// The merge conflict this stream halted the run on, and how it was resolved.
    pub conflict: Option<ConflictShow>,
    pub notes: Vec<String>,
    /// Its agents' usage over every task, when any reported.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost: Option<crate::ledger::Tally>,
}

#[derive(Clone, Debug, Serialize)]
pub struct TaskShow {
    /// 1-based, as in log file names and `streams logs STREAM TASK`.
    pub number: usize,
    pub text: String,
    /// `pending`, `running`, `committed`, `integrated`, `failed`, `skipped`.
    pub status: String,
    pub attempts: u32,
    /// Agent time over all attempts.
    pub time_ms: u64,
    pub reason: Option<String>,
    /// The agent's log, if it exists.
    pub log: Option<String>,
    /// Its last lines, sanitised.
    pub log_tail: Vec<String>,
    /// When its agent first started and last ended (milliseconds since the Unix epoch), from
    /// the run's timeline; `None` for runs recorded before the timeline existed.
    pub started_at: Option<u64>,
    pub finished_at: Option<u64>,
    /// What its agent used (tokens by kind, cost, turns, models, sessions), when it reported.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost: Option<crate::ledger::TaskCost>,
}

#[derive(Clone, Debug, Serialize)]
pub struct CommitShow {
    pub id: String,
    pub subject: String,
    pub author: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct Rejection {
    pub task: usize,
    /// Each offending path and its owner (`None`: owned by no stream).
    pub paths: Vec<OwnershipViolation>,
    pub kept: String,
}

impl Rejection {
    /// Each offending path with its owner, as `show` and the page list them.
    pub fn paths_and_owners(&self) -> Vec<String> {
        self.paths
            .iter()
            .map(|v| match &v.owner {
                Some(owner) => format!("{} (owned by {owner})", quote_path(&v.path)),
                None => format!("{} (owned by no stream)", quote_path(&v.path)),
            })
            .collect()
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct KeptRef {
    pub name: String,
    pub commit: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct CheckRun {
    /// `setup`, `check` or `gate`, numbered when it ran more than once (`check 2`).
    pub kind: String,
    /// `ok`, `failed`, `interrupted`.
    pub outcome: String,
    pub reason: Option<String>,
    pub time_ms: u64,
    pub log: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ConflictShow {
    pub files: Vec<String>,
    /// `conflicts/<stream>/` in the run dir.
    pub bundle: String,
    /// The commit that recorded the person's resolution; `None` while the run waits for it.
    pub resolution: Option<String>,
    /// The worktree to resolve in, while the run is halted on it.
    pub resolve_in: Option<String>,
}

/// The streams of a run as a person reads them: one block per stream.
pub fn render(show: &Show) -> String {
    let mut out = String::new();
    let run = &show.run;
    let _ = writeln!(
        out,
        "run {} of plan `{}`: {}, base {}, {} at {}",
        run.id,
        run.plan,
        run.phase,
        short(&run.base),
        run.integration_branch,
        short(&run.integration_tip)
    );
    for stream in &show.streams {
        out.push('\n');
        render_stream(&mut out, stream);
    }
    out
}

fn render_stream(out: &mut String, s: &StreamShow) {
    let _ = writeln!(out, "stream {}: {}", s.name, s.state);
    // A stream that failed with its task says why once, under the task.
    if let Some(reason) = &s.reason
        && !s.tasks.iter().any(|t| t.reason.as_ref() == Some(reason))
    {
        let _ = writeln!(out, "  reason:    {}", escape_unsafe(reason));
    }
    let tip = s
        .tip
        .as_deref()
        .map(|t| format!(" at {}", short(t)))
        .unwrap_or_else(|| " (removed)".into());
    let _ = writeln!(out, "  branch:    {}{tip}", s.branch);
    if let Some(from) = &s.started_from {
        let _ = writeln!(out, "  from:      {}", short(from));
    }
    if !s.depends_on.is_empty() {
        let _ = writeln!(out, "  after:     {}", s.depends_on.join(", "));
    }
    if let Some(cost) = &s.cost {
        let _ = writeln!(out, "  cost:      {}", cost.describe());
    }

    let _ = writeln!(out, "  tasks:");
    for t in &s.tasks {
        let attempts = match t.attempts {
            0 => String::new(),
            1 => "1 attempt".to_string(),
            n => format!("{n} attempts"),
        };
        let time = if t.attempts > 0 {
            fmt_duration_ms(t.time_ms)
        } else {
            String::new()
        };
        let line = format!(
            "    {}. {}  [{}]  {attempts}  {time}",
            t.number,
            escape_unsafe(&t.text),
            t.status
        );
        let _ = writeln!(out, "{}", line.trim_end());
        // An ownership rejection has its own lines below, with where the work is kept.
        let rejected = s.rejections.iter().any(|r| r.task == t.number);
        if let Some(reason) = t.reason.as_ref().filter(|_| !rejected) {
            let _ = writeln!(out, "       {}", escape_unsafe(reason));
        }
        if let Some(cost) = &t.cost {
            let _ = writeln!(out, "       cost: {}", cost.tally.describe());
            if let Some(session) = cost.sessions.last() {
                let _ = writeln!(out, "       session: {session}");
            }
        }
        if let Some(log) = &t.log {
            let _ = writeln!(out, "       log: {log}");
        }
        for line in &t.log_tail {
            let _ = writeln!(out, "       | {line}");
        }
    }

    if s.commits.is_empty() {
        let _ = writeln!(out, "  commits:   none");
    } else {
        let _ = writeln!(out, "  commits ({}):", s.commits.len());
        for c in &s.commits {
            let _ = writeln!(out, "    {} {}", short(&c.id), escape_unsafe(&c.subject));
        }
    }

    if !s.files.is_empty() {
        let _ = writeln!(
            out,
            "  files ({}, +{} -{}):",
            s.files.len(),
            s.insertions,
            s.deletions
        );
        let width = s
            .files
            .iter()
            .map(|f| shown_path(f).len())
            .max()
            .unwrap_or(0);
        for f in &s.files {
            let counts = match (f.insertions, f.deletions) {
                (Some(i), Some(d)) => format!("+{i} -{d}"),
                _ => "binary".to_string(),
            };
            let _ = writeln!(out, "    {:width$}  {counts}", shown_path(f));
        }
    }

    for r in &s.rejections {
        let paths = r.paths_and_owners();
        let _ = writeln!(
            out,
            "  rejected:  task {} changed {}",
            r.task,
            paths.join(", ")
        );
        let _ = writeln!(out, "             its work is kept on {}", r.kept);
    }
    if !s.kept.is_empty() {
        let _ = writeln!(out, "  kept:");
        for k in &s.kept {
            let _ = writeln!(out, "    {} {}", short(&k.commit), k.name);
        }
    }

    if !s.checks.is_empty() {
        let _ = writeln!(out, "  checks:");
        for c in &s.checks {
            let reason = c
                .reason
                .as_deref()
                .map(|r| format!(": {}", escape_unsafe(r)))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "    {} {}  {}{reason}",
                c.kind,
                c.outcome,
                fmt_duration_ms(c.time_ms)
            );
            if let Some(log) = &c.log {
                let _ = writeln!(out, "       log: {log}");
            }
        }
    }

    if let Some(c) = &s.conflict {
        let _ = writeln!(out, "  conflict:  {}", quote_paths(&c.files));
        let _ = writeln!(out, "             bundle {}/README.md", c.bundle);
        match (&c.resolution, &c.resolve_in) {
            (Some(commit), _) => {
                let _ = writeln!(out, "             resolved as {}", short(commit));
            }
            (None, Some(dir)) => {
                let _ = writeln!(
                    out,
                    "             parked: resolve in {dir}, then `streams continue {}`",
                    s.name
                );
            }
            (None, None) => {}
        }
    }
    for note in &s.notes {
        let _ = writeln!(out, "  note:      {}", escape_unsafe(note));
    }
}

fn shown_path(f: &FileChange) -> String {
    match &f.renamed_from {
        Some(old) => format!("{} => {}", quote_path(old), quote_path(&f.path)),
        None => quote_path(&f.path).into_owned(),
    }
}
