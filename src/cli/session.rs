//! What `run`, `resume`, `continue` and `skip` share: building the engine with the right
//! reporters, running it, and telling the user how it ended and what to do next.

use crate::error::{ExitCode, Result};
use crate::exec::{Engine, Finish, Session};
use crate::ops::{self, session::EngineParts};
use crate::report::reporter::{Json, Lines, Live, Many};
use crate::report::{Event, Reporter, hints, summary};
use crate::state::{RunDir, RunPhase, RunState};

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
    let ui = &ctx.ui;
    let branch = state.integration_ref.trim_start_matches("refs/heads/");
    match finish {
        Finish::Integrated | Finish::Failed => {
            ui.info("");
            ui.always(summary::render_table(&report, ui).trim_end());
            ui.info("");
            let done = report
                .streams
                .iter()
                .filter(|s| s.status == "integrated")
                .count();
            if finish == Finish::Integrated {
                let all = match report.streams.len() {
                    1 => "the stream".to_string(),
                    n => format!("all {n} streams"),
                };
                ui.always(format!(
                    "{} {all} integrated on {branch} ({})",
                    ui.green("ok:"),
                    crate::coordinator::short(&state.integration_tip)
                ));
            } else {
                ui.always(format!(
                    "{} {done} of {} streams integrated on {branch}; the others failed or were skipped",
                    ui.red("failed:"),
                    report.streams.len()
                ));
            }
            ui.info(format!(
                "stream branches: streams/{}/<stream>; report: {}",
                state.plan_name,
                run_dir.report_md_path().display()
            ));
            ui.info("next:");
            ui.info(format!(
                "  git log --stat {}..{branch}    # review what was integrated",
                crate::coordinator::short(&state.base)
            ));
            ui.info(format!(
                "  git merge {branch}    # take it into your branch"
            ));
            if finish == Finish::Failed {
                ui.info(format!(
                    "  fix what failed (logs in {}); `streams run` then runs the whole plan again from its base",
                    run_dir.path().join("logs").display()
                ));
                ui.info(format!(
                    "    (this run's branches are kept under refs/streams/{}/previous/ when it starts)",
                    state.plan_name
                ));
            }
            ui.info("  streams clean    # remove the worktrees and stream branches");
        }
        Finish::Halted => {
            if let RunPhase::Halted(halt) = &state.phase {
                let name = &state.streams[halt.unit.stream].name;
                ui.always("");
                ui.always(format!(
                    "{} integrating stream `{name}` conflicts in {}",
                    ui.red("halted:"),
                    halt.files.join(", ")
                ));
                ui.always(format!(
                    "conflict bundle: {}",
                    halt.bundle.join("README.md").display()
                ));
                ui.always(format!(
                    "resolve in:      {}",
                    halt.resolution_worktree.display()
                ));
                for line in hints::halted_steps(name, &halt.resolution_worktree, &halt.files) {
                    ui.always(line);
                }
            }
        }
        Finish::Interrupted(_) => {
            ui.always(hints::INTERRUPTED_NOW);
        }
    }
    Ok(code)
}
