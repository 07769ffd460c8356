//! What `run`, `resume`, `continue`, `skip`, `retry` and `integrate` share on the command line:
//! starting a session with the reporters the command asked for, and telling the user how it
//! ended and what to do next.

use std::path::Path;

use crate::error::{ExitCode, Result};
use crate::ops::{
    self,
    session::{Ended, EngineParts, Session},
};
use crate::report::{Event, actions, printer, reporter, session_view};

use super::Context;

/// The session of `command` over `parts`, reporting as this command asked (`jobs` overrides the
/// run's agents at once, for `resume --jobs`). The live view or event lines start with the
/// run's first event.
pub fn start(
    ctx: &Context,
    parts: EngineParts,
    command: &str,
    json: bool,
    jobs: Option<usize>,
) -> Session {
    // `run` checked the sandbox before starting; a resumed run says again that `auto` runs
    // unconfined (a task asking for `landlock` fails on its own, with the reason).
    if command != "run" {
        for warning in ops::session::sandbox_warnings(&parts) {
            ctx.ui.warn(warning);
        }
    }
    let reporter = reporter::for_session(&ctx.ui, &parts.state, json);
    ops::session::start(parts, reporter, command, jobs)
}

/// Reports how a session ended; returns the exit code. `junit` is where `--junit` asked for a
/// copy of the JUnit report, as typed (relative to the working directory).
pub fn conclude(ctx: &Context, ended: Ended, junit: Option<&Path>) -> Result<ExitCode> {
    let junit = junit.map(|path| ctx.cwd.join(path));
    let mut concluded = ops::session::conclude(ended, junit.as_deref());
    let code = ExitCode::of_run(&concluded.finish);
    let (state, report) = (&concluded.state, &concluded.report);
    concluded.reporter.event(
        &Event::RunFinished {
            status: report.status.to_string(),
            exit_code: code.code(),
            wall_ms: report.wall_ms,
            agent_ms: report.agent_ms,
        },
        state,
    );
    for problem in &concluded.not_written {
        ctx.ui.warn(problem);
    }
    if let Some(annotations) = actions::session_annotations(state) {
        // The runner reads workflow commands from stderr too; stdout stays for `--json`.
        printer::text_to_stderr(&annotations);
    }
    session_view::ended(
        &ctx.ui,
        &concluded.finish,
        state,
        report,
        &concluded.run_dir,
        &concluded.plan_flag,
    );
    // A run spread over machines hands its result on (after `continue` too).
    let published = ops::machines::publish(state, &concluded.run_dir)?;
    session_view::published(
        &ctx.ui,
        state,
        published.as_ref().map(|p| session_view::Handed {
            remote: &p.remote,
            refs: &p.refs,
            outputs: &p.outputs,
        }),
    );
    Ok(code)
}
