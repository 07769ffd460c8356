//! What `run`, `resume`, `continue` and `skip` share: building the engine with the right
//! reporters, running it, and telling the user how it ended and what to do next.

use crate::error::{ExitCode, Result};
use crate::exec::{Engine, Session};
use crate::ops::{self, session::EngineParts};
use crate::report::reporter::{Json, Lines, Live, Many};
use crate::report::{Event, Reporter, session_view};
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

/// Reports how a session ended; returns the exit code.
pub fn conclude(ctx: &Context, run_dir: &RunDir, session: Session) -> Result<ExitCode> {
    let Session {
        finish,
        state,
        mut reporter,
    } = session;
    reporter.finish();
    let code = ExitCode::of_run(finish);
    let (report, written) = ops::session::write_report(&state, run_dir);
    reporter.event(
        &Event::RunFinished {
            status: report.status.to_string(),
            exit_code: code.code(),
            wall_ms: report.wall_ms,
            agent_ms: report.agent_ms,
        },
        &state,
    );
    if let Err(e) = written {
        ctx.ui.warn(format!(
            "could not write the report in {}: {e}",
            run_dir.path().display()
        ));
    }
    session_view::ended(&ctx.ui, finish, &state, &report, run_dir);
    Ok(code)
}
