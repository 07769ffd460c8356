//! What a person does from the page (continue, skip, abort, retry, merge, resume, stop) is done
//! by the `streams` command itself, started by the server as the person would start it: the same
//! use cases, the same checks, the same messages (a refusal shows the CLI's own words), and a
//! run that goes on in its own process, with its own lock and signal handling, which outlives
//! the page and the server.
//!
//! The command runs in a process group of its own (Ctrl-C on the server's terminal does not
//! stop a run the page resumed) with its output in a temporary file the server reads as it
//! grows and sends to the page. The request is answered once the command has either ended (a
//! refusal, or a quick command like `merge`) or taken the run's lock (the run goes on; its
//! events come through the watcher).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use super::live::Live;
use crate::report::redact::Redactor;
use crate::state::{StateDir, lock};

/// The commands the page offers (each also in the page's table of actions).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Continue,
    Skip,
    Abort,
    Retry,
    Merge,
    Resume,
    /// One running stream (`streams stop STREAM`): the command talks to the run's coordinator
    /// and ends once the state says the stream stopped.
    Stop,
}

impl Kind {
    fn word(self) -> &'static str {
        match self {
            Kind::Continue => "continue",
            Kind::Skip => "skip",
            Kind::Abort => "abort",
            Kind::Retry => "retry",
            Kind::Merge => "merge",
            Kind::Resume => "resume",
            Kind::Stop => "stop",
        }
    }

    fn needs_stream(self) -> bool {
        matches!(self, Kind::Skip | Kind::Retry | Kind::Stop)
    }

    /// `continue` names the parked stream when several are parked.
    fn may_take_stream(self) -> bool {
        self.needs_stream() || self == Kind::Continue
    }
}

/// What the page asks for.
#[derive(Debug, Deserialize)]
pub struct Request {
    pub action: Kind,
    pub stream: Option<String>,
}

/// What the page is told.
#[derive(Debug, Serialize)]
pub struct Outcome {
    pub id: u64,
    /// The command as a person would type it.
    pub command: String,
    /// It goes on (it holds the run's lock); its end comes as an `action` event.
    pub running: bool,
    /// How it ended, when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit: Option<i32>,
    /// What it printed (both streams, in order).
    pub output: Vec<String>,
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// Refuses what the CLI would take for something else (a stream name that is an option).
pub fn validate(request: &Request, streams: &[String]) -> Result<(), String> {
    match (&request.stream, request.action.needs_stream()) {
        (None, true) => Err(format!(
            "`streams {}` needs a stream",
            request.action.word()
        )),
        (Some(_), false) if !request.action.may_take_stream() => Err(format!(
            "`streams {}` takes no stream",
            request.action.word()
        )),
        (Some(name), _) if !streams.iter().any(|s| s == name) => {
            Err(format!("the run has no stream `{name}`"))
        }
        _ => Ok(()),
    }
}

/// Runs the command for `request` in `repo_root` and answers as described in the module docs.
pub async fn run(
    exe: &Path,
    repo_root: &Path,
    state_dir: &StateDir,
    request: &Request,
    redactor: Arc<Redactor>,
    tx: broadcast::Sender<Live>,
) -> std::io::Result<Outcome> {
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    let mut args: Vec<String> = vec![request.action.word().to_string()];
    if let Some(stream) = &request.stream {
        // After `--`: a name is never read as an option.
        args.push("--".into());
        args.push(stream.clone());
    }
    let command = format!("streams {}", args.join(" ").replace("-- ", ""));
    let output_file = tempfile::Builder::new()
        .prefix("streams-ui-action-")
        .suffix(".log")
        .tempfile()?;
    let path = output_file.path().to_path_buf();
    let out = std::fs::OpenOptions::new().append(true).open(&path)?;
    let err = out.try_clone()?;
    let mut cmd = tokio::process::Command::new(exe);
    cmd.arg("-C")
        .arg(repo_root)
        .args(["--no-progress", "--color", "never"])
        .args(&args)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err))
        .process_group(0)
        .kill_on_drop(false);
    let mut child = cmd.spawn()?;
    let pid = child.id();
    let mut reader = Output {
        path,
        offset: 0,
        redactor,
    };
    let mut lines = Vec::new();
    // Until it ends or holds the lock.
    let exit = loop {
        if let Some(status) = child.try_wait()? {
            break Some(status.code().unwrap_or(1));
        }
        if pid.is_some() && lock::holders(state_dir).iter().any(|h| Some(h.pid) == pid) {
            break None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    lines.extend(reader.read());
    let outcome = Outcome {
        id,
        command,
        running: exit.is_none(),
        exit,
        output: lines,
    };
    if exit.is_none() {
        // Follow it to its end; the file goes when it has been read whole.
        tokio::spawn(async move {
            let _keep = output_file;
            loop {
                let ended = child.try_wait().ok().flatten();
                let lines = reader.read();
                if !lines.is_empty() || ended.is_some() {
                    let _ = tx.send(Live::Action {
                        id,
                        lines,
                        exit: ended.map(|s| s.code().unwrap_or(1)),
                    });
                }
                if ended.is_some() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
    }
    Ok(outcome)
}

/// Reads a growing output file line by line.
struct Output {
    path: PathBuf,
    offset: usize,
    /// The command prints agents' log tails (a failed task's last lines).
    redactor: Arc<Redactor>,
}

impl Output {
    /// The whole lines written since the last read, redacted and cleaned of terminal escapes.
    fn read(&mut self) -> Vec<String> {
        let Ok(bytes) = std::fs::read(&self.path) else {
            return Vec::new();
        };
        let Some(new) = bytes.get(self.offset..) else {
            return Vec::new();
        };
        let Some(end) = new.iter().rposition(|b| *b == b'\n') else {
            return Vec::new();
        };
        self.offset += end + 1;
        let text = String::from_utf8_lossy(&new[..end]);
        self.redactor
            .redact(&text)
            .lines()
            .map(crate::report::sanitize)
            .collect()
    }
}
