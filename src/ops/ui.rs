//! What the pages about a run show (`streams ui` and `report.html`), gathered from the run's
//! state, its logs, its conflict bundle and the refs: [`page`] for the whole run, [`diff`] for
//! one stream's change, [`log_since`] for a log followed live, and [`write_html`], the static
//! report a run leaves beside report.md.
//!
//! Everything read from an agent's output goes through the run's [`Redactor`] here, before any
//! page sees it.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use crate::error::Result;
use crate::git::{Repo, review};
use crate::report::page::{
    ConflictFile, ConflictPage, PAGE_SCHEMA, RunPage, StreamDiff, StreamPage, parse_patch,
    parse_unified,
};
use crate::report::redact::Redactor;
use crate::report::{sanitize, svg};
use crate::state::{RunDir, RunState, StateDir, lock, now_ms};

/// The static report's name in the run directory, beside report.md.
pub const REPORT_HTML: &str = "report.html";

/// Lines of each stream's log a page shows at first.
pub const LOG_LINES: usize = 40;

/// The bytes of a log's end read for its tail (a flooding agent's log can be huge).
const TAIL_BYTES: u64 = 32 * 1024;

/// The secrets of a run: its plan's `env` (from the run's copy of the plan) and this process's
/// environment (see `report::redact`).
pub fn redactor(dir: &RunDir, state: &RunState) -> Redactor {
    let plan = super::session::plan_from_copy(dir, state).ok();
    Redactor::for_plan(plan.as_ref())
}

/// The whole page of a run. `diffs`: gather every stream's change too (report.html); the web
/// view asks for one stream's at a time.
pub fn page(
    repo: &Repo,
    dir: &RunDir,
    state: &RunState,
    redactor: &Redactor,
    diffs: bool,
) -> Result<RunPage> {
    let holder = lock::current_holder(&StateDir::new(repo.common_dir()), &state.plan_name);
    let status = super::status::build(repo, state, holder);
    // Each stream's files and patch from one git process, the streams' side by side.
    let changes = if diffs {
        let changes = review::Changes::with_patches();
        changes.read_ahead(repo, &ranges(repo, state));
        changes
    } else {
        review::Changes::files_only()
    };
    let show = super::show::show_with(repo, dir, state, None, &changes)?;
    let streams = show
        .streams
        .into_iter()
        .enumerate()
        .map(|(i, s)| {
            let changes = diffs.then_some(&changes);
            stream_page(repo, dir, state, i, s, redactor, changes)
        })
        .collect();
    Ok(RunPage {
        schema: PAGE_SCHEMA,
        run: show.run,
        status,
        outcome: crate::report::summary::status_of(state).to_string(),
        streams,
        conflicts: conflicts(state),
        at: now_ms(),
    })
}

/// One stream's part of the page (what the web view reads again when its state changes).
pub fn stream(
    repo: &Repo,
    dir: &RunDir,
    state: &RunState,
    name: &str,
    redactor: &Redactor,
) -> Result<StreamPage> {
    let (index, _) = super::show::find_stream(state, name)?;
    let show = super::show::show(repo, dir, state, Some(name))?;
    let s = show
        .streams
        .into_iter()
        .next()
        .ok_or_else(|| crate::error::Error::usage(format!("the run has no stream `{name}`")))?;
    Ok(stream_page(repo, dir, state, index, s, redactor, None))
}

fn stream_page(
    repo: &Repo,
    dir: &RunDir,
    state: &RunState,
    index: usize,
    mut s: crate::report::show_view::StreamShow,
    redactor: &Redactor,
    changes: Option<&review::Changes>,
) -> StreamPage {
    for task in &mut s.tasks {
        for line in &mut task.log_tail {
            *line = redactor.redact(line).into_owned();
        }
    }
    let log = super::logs::task_log(dir, state, &s.name, None).ok();
    let log_tail = log
        .as_ref()
        .map(|l| tail(&l.path, LOG_LINES, redactor))
        .unwrap_or_default();
    let diff = changes.and_then(|changes| diff_with(repo, state, &s.name, changes).ok());
    StreamPage {
        word: svg::node_word(state, index).to_string(),
        activity: log_tail.last().cloned(),
        log_task: log.filter(|l| l.path.exists()).map(|l| l.task + 1),
        log_tail,
        show: s,
        diff,
        cost: None,
    }
}

/// A stream's whole change, file by file (empty before it started).
pub fn diff(repo: &Repo, state: &RunState, stream: &str) -> Result<StreamDiff> {
    diff_with(repo, state, stream, &review::Changes::with_patches())
}

/// The ranges of the streams' changes a page shows, for [`review::Changes::read_ahead`]: each
/// stream's that ran and has no task running (a running one's is read in its workspace).
fn ranges(repo: &Repo, state: &RunState) -> Vec<(crate::ids::Oid, crate::ids::Oid)> {
    state
        .streams
        .iter()
        .filter(|s| {
            !s.tasks
                .iter()
                .any(|t| matches!(t.state, crate::state::TaskState::Running { .. }))
        })
        .filter_map(|s| {
            let from = super::show::start_point(repo, state, s)?;
            Some((from, super::show::end_point(repo, s)?))
        })
        .collect()
}

/// [`diff`], reading the change through `changes`.
fn diff_with(
    repo: &Repo,
    state: &RunState,
    stream: &str,
    changes: &review::Changes,
) -> Result<StreamDiff> {
    let range = match super::diff::range(repo, state, Some(stream)) {
        Ok(range) => range,
        Err(_) => return Ok(StreamDiff::default()),
    };
    let (_, s) = super::show::find_stream(state, stream)?;
    // While a task runs, its agent's commits are only in its workspace.
    let live = crate::workspace::Workspace::find(repo, &s.worktree).agent_repo();
    let read = |repo: &Repo| -> Result<StreamDiff> {
        let change = changes.get(repo, &range.from, &range.to)?;
        Ok(parse_patch(&change.patch, &change.files))
    };
    match read(repo) {
        Ok(diff) => Ok(diff),
        Err(e) => match &live {
            Some(live) => read(live),
            None => Err(e),
        },
    }
}

/// The conflicts that wait for a person, each read from its bundle: every parked stream's, in
/// the order they parked (none once the run is over).
pub fn conflicts(state: &RunState) -> Vec<ConflictPage> {
    if state.phase.is_over() {
        return Vec::new();
    }
    let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
    state
        .parked()
        .into_iter()
        .map(|(_, s, park)| {
            let bundle = &park.bundle;
            let files = park
                .files
                .iter()
                .map(|path| {
                    let base = bundle.join("files").join(path);
                    let with = |suffix: &str| {
                        let mut p = base.clone().into_os_string();
                        p.push(suffix);
                        std::path::PathBuf::from(p)
                    };
                    ConflictFile {
                        path: path.clone(),
                        lang: crate::report::page::lang_of(path),
                        integration: parse_unified(&read(&with(".integration.diff"))),
                        stream: parse_unified(&read(&with(".stream.diff"))),
                        conflicted: read(&with(".conflicted")),
                    }
                })
                .collect();
            ConflictPage {
                stream: s.name.clone(),
                readme: read(&bundle.join("README.md")),
                bundle: bundle.display().to_string(),
                resolution_worktree: park.resolution_worktree.display().to_string(),
                files,
                proposal: park.proposal.as_deref().map(|p| {
                    serde_json::json!({
                        "resolver": p.resolver,
                        "mode": p.mode,
                        "refused": p.refused,
                        "commit": p.commit,
                        // The resolution alone (`streams diff --resolution`), when proposed.
                        "diff": if p.refused.is_none() {
                            parse_unified(&read(&bundle.join("resolution.diff")))
                        } else {
                            Vec::new()
                        },
                    })
                }),
            }
        })
        .collect()
}

/// The last `n` lines of a log with text in them, redacted before they are cut or cleaned (a
/// secret must not survive in halves), each sanitised of terminal escapes.
pub fn tail(path: &Path, n: usize, redactor: &Redactor) -> Vec<String> {
    let Ok(mut file) = std::fs::File::open(path) else {
        return Vec::new();
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let from = len.saturating_sub(TAIL_BYTES);
    let _ = file.seek(SeekFrom::Start(from));
    let mut bytes = Vec::new();
    let _ = file.take(TAIL_BYTES).read_to_end(&mut bytes);
    let text = String::from_utf8_lossy(&bytes);
    let text = redactor.redact(&text);
    let mut lines: Vec<String> = text
        .lines()
        // A cut first line is a fragment; streams' own header lines are not the agent's.
        .skip(usize::from(from > 0))
        .filter(|l| !crate::agent::log::is_header(l))
        .map(sanitize)
        .filter(|l| !l.trim().is_empty())
        .collect();
    let keep = lines.len().saturating_sub(n);
    lines.drain(..keep);
    lines
}

/// What a followed log gained since `offset`: whole lines only (a secret is never sent in
/// halves), redacted and sanitised, and the offset to ask from next. At most `max` bytes.
pub fn log_since(path: &Path, offset: u64, max: u64, redactor: &Redactor) -> (Vec<String>, u64) {
    let Ok(mut file) = std::fs::File::open(path) else {
        return (Vec::new(), offset);
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    // A log that shrank was started again (a retried task): read it from its start.
    let offset = if len < offset { 0 } else { offset };
    if file.seek(SeekFrom::Start(offset)).is_err() {
        return (Vec::new(), offset);
    }
    let mut bytes = Vec::new();
    let _ = file.take(max).read_to_end(&mut bytes);
    let whole = match bytes.iter().rposition(|b| *b == b'\n') {
        Some(end) => end + 1,
        // One line longer than `max`: sent as it is rather than never.
        None if bytes.len() as u64 >= max => bytes.len(),
        None => 0,
    };
    let text = String::from_utf8_lossy(&bytes[..whole]);
    let lines = redactor
        .redact(&text)
        .lines()
        .filter(|l| !crate::agent::log::is_header(l))
        .map(sanitize)
        .collect();
    (lines, offset + whole as u64)
}

/// Writes `report.html` in the run directory: the static twin of the web view.
pub fn write_html(state: &RunState, dir: &RunDir) -> Result<()> {
    let repo = Repo::discover(&state.repo_root)?;
    let redactor = redactor(dir, state);
    let page = page(&repo, dir, state, &redactor, true)?;
    let html = crate::report::html::render(&page, state);
    let path = dir.path().join(REPORT_HTML);
    crate::state::store::write_atomic(&path, html.as_bytes())
        .map_err(|e| crate::error::Error::io(format!("could not write {}", path.display()), e))
}
