//! What `run`, `resume`, `continue` and `skip` share: building the engine with the right
//! reporters, running it, and telling the user how it ended and what to do next.

use std::path::Path;

use crate::error::{ExitCode, Result};
use crate::exec::{Engine, Session};
use crate::ops::{self, session::EngineParts};
use crate::report::reporter::{Json, Lines, Live, Many};
use crate::report::{Event, Reporter, actions, session_view};
use crate::state::{RunDir, RunState};

use super::Context;

pub fn reporter(ctx: &Context, state: &RunState, json: bool) -> Box<dyn Reporter> {
    let mut list: Vec<Box<dyn Reporter>> = Vec::new();
    if json {
        list.push(Box::new(Json));
    }
    if ctx.ui.progress {
        list.push(Box::new(Live::new(ctx.ui.clone(), state)));
    } else {
        list.push(Box::new(Lines { ui: ctx.ui.clone() }));
    }
    Box::new(Many(list))
}

/// The engine for a session over `parts`, with the reporters this command asked for (`jobs`
/// overrides the run's agents at once, for `resume --jobs`). The live view or event lines start
/// with the run's first event.
pub fn engine(
    ctx: &Context,
    parts: EngineParts,
    command: &str,
    json: bool,
    jobs: Option<usize>,
) -> Engine {
    // `run` checked the sandbox before starting; a resumed run says again that `auto` runs
    // unconfined (a task asking for `landlock` fails on its own, with the reason).
    if command != "run" {
        let warnings = crate::exec::sandbox::preflight(&parts.plan).unwrap_or_default();
        warnings.iter().for_each(|w| ctx.ui.warn(w));
    }
    let reporter = reporter(ctx, &parts.state, json);
    let mut engine = ops::session::engine(parts, reporter);
    if let Some(jobs) = jobs {
        engine.set_jobs(jobs);
    }
    engine.announce(command);
    engine
}

/// Reports how a session ended; returns the exit code. `junit` is where `--junit` asked for a
/// copy of the JUnit report, as typed (relative to the working directory).
pub fn conclude(
    ctx: &Context,
    run_dir: &RunDir,
    session: Session,
    junit: Option<&Path>,
) -> Result<ExitCode> {
    let Session {
        finish,
        state,
        mut reporter,
    } = session;
    reporter.finish();
    let code = ExitCode::of_run(finish);
    let junit = junit.map(|path| ctx.cwd.join(path));
    let (report, not_written) = ops::session::write_report(&state, run_dir, junit.as_deref());
    reporter.event(
        &Event::RunFinished {
            status: report.status.to_string(),
            exit_code: code.code(),
            wall_ms: report.wall_ms,
            agent_ms: report.agent_ms,
        },
        &state,
    );
    for problem in not_written {
        ctx.ui.warn(problem);
    }
    if let Some(annotations) = actions::session_annotations(&state) {
        // The runner reads workflow commands from stderr too; stdout stays for `--json`.
        eprint!("{annotations}");
    }
    session_view::ended(&ctx.ui, finish, &state, &report, run_dir);
    // A run spread over machines hands its result on (after `continue` too).
    super::machines::publish(ctx, &state, run_dir)?;
    Ok(code)
}
