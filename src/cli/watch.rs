//! `streams status --watch`: the status, again and again, until the run stops moving (it
//! finishes, halts for a person, is aborted or interrupted). On a terminal the whole view is
//! redrawn in place; otherwise each change is one line (see `report::watch_view`).

use std::time::Duration;

use crate::error::{Error, ExitCode, Result};
use crate::ops;
use crate::report::status_view::{self, RunStatus};
use crate::report::{printer, watch_view};

use super::Context;

/// How often the state and refs are read again.
const INTERVAL: Duration = Duration::from_millis(300);

pub fn watch(ctx: &Context, selector: ops::runs::Selector) -> Result<ExitCode> {
    let repo = ops::load::open_repo(&ctx.cwd)?;
    let terminal = printer::stdout_is_terminal();
    let mut last: Option<RunStatus> = None;
    let mut last_drawn = String::new();
    let mut selector = selector;
    loop {
        let (status, choice) = ops::status::status(&repo, &selector)?;
        if selector.run.is_none()
            && let Some(run) = &status.run
        {
            // The run picked first is the one followed, whatever starts meanwhile.
            ctx.say_choice("status", choice.as_ref());
            selector.run = Some(run.id.clone());
        }
        let Some(run) = status.run else {
            return Err(Error::state(
                "no streams run in this repository yet",
                "start one with `streams run`; `status --watch` follows it from another terminal",
            ));
        };
        let text = if terminal {
            let view = status_view::render(&run);
            if view != last_drawn {
                // Home, clear, draw: the view replaces itself rather than scrolling.
                let text = format!("\x1b[H\x1b[2J{view}");
                last_drawn = view;
                text
            } else {
                String::new()
            }
        } else {
            watch_view::changes(last.as_ref(), &run)
                .iter()
                .map(|line| format!("{line}\n"))
                .collect()
        };
        if printer::write_stdout(text.as_bytes()).is_err() {
            // The reader went away: nothing more to show.
            return Ok(ExitCode::Success);
        }
        if run.phase != "running" {
            return Ok(exit_code(&run));
        }
        last = Some(run);
        std::thread::sleep(INTERVAL);
    }
}

/// The watched run's end as an exit code, as `streams run` would have returned it: a script can
/// wait for a run started elsewhere and act on how it ended.
fn exit_code(run: &RunStatus) -> ExitCode {
    match (&run.phase[..], run.outcome.as_deref()) {
        ("finished", Some("integrated")) => ExitCode::Success,
        ("finished", Some("stopped")) => ExitCode::Stopped,
        ("finished", _) => ExitCode::StreamsFailed,
        ("halted", _) => ExitCode::Halted,
        // Aborted or interrupted: nothing runs, and nothing will until someone resumes it.
        _ => ExitCode::State,
    }
}
