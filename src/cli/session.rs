//! What `run`, `resume`, `continue` and `skip` share: building the engine with the right
//! reporters, running it, and telling the user how it ended and what to do next.

use std::path::Path;
use std::sync::Arc;

use crate::error::{Error, ExitCode, Result};
use crate::exec::{Engine, EngineInput, Finish, Session};
use crate::git::Repo;
use crate::plan::Plan;
use crate::report::reporter::{Json, Lines, Live, Many};
use crate::report::{Event, Reporter, summary};
use crate::state::{Journal, RunDir, RunPhase, RunState};

use super::Context;

pub fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::io("could not start the async runtime", e))
}

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

pub struct EngineParts {
    pub repo: Repo,
    pub plan: Plan,
    pub run_dir: RunDir,
    pub state: RunState,
    pub journal: Journal,
}

pub fn engine(ctx: &Context, parts: EngineParts, command: &str, json: bool) -> Engine {
    let mut reporter = reporter(ctx, &parts.state, json);
    reporter.event(
        &Event::RunStarted {
            run_id: parts.state.run_id.clone(),
            plan: parts.state.plan_name.clone(),
            base: parts.state.base.to_string(),
            streams: parts.state.streams.len(),
            jobs: parts.state.jobs,
            command: command.to_string(),
        },
        &parts.state,
    );
    let plan_dir = parts
        .state
        .plan_path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let identity_env = crate::git::commit::identity_env(&parts.repo);
    Engine::new(EngineInput {
        repo: parts.repo,
        plan: parts.plan,
        plan_dir,
        run_dir: parts.run_dir,
        state: parts.state,
        journal: Arc::new(parts.journal),
        reporter,
        identity_env,
    })
}

/// Reports how a session ended; returns the exit code.
pub fn conclude(ctx: &Context, run_dir: &RunDir, session: Session) -> Result<ExitCode> {
    let Session {
        finish,
        state,
        mut reporter,
    } = session;
    reporter.finish();
    let code = match finish {
        Finish::Integrated => ExitCode::Success,
        Finish::Failed => ExitCode::StreamsFailed,
        Finish::Halted => ExitCode::Halted,
        Finish::Interrupted(nix::sys::signal::Signal::SIGINT) => ExitCode::Interrupted,
        Finish::Interrupted(_) => ExitCode::Terminated,
    };
    let status = summary::status_of(&state);
    let report = summary::build(&state, status);
    reporter.event(
        &Event::RunFinished {
            status: status.to_string(),
            exit_code: code.code(),
            wall_ms: report.wall_ms,
            agent_ms: report.agent_ms,
        },
        &state,
    );
    if let Err(e) = summary::write_files(&report, run_dir) {
        ctx.ui.warn(format!(
            "could not write the report in {}: {e}",
            run_dir.path().display()
        ));
    }
    let ui = &ctx.ui;
    let branch = crate::layout::short_branch(&state.integration_ref);
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
                    "    (this run's branches are kept under {} when it starts)",
                    crate::layout::RefNames::new(&state.plan_name).previous_prefix()
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
                ui.always("next:");
                ui.always(format!(
                    "  cd {}",
                    crate::report::shell_quote(&halt.resolution_worktree.display().to_string())
                ));
                ui.always(format!(
                    "  # edit the conflicted files, then: git add {}",
                    halt.files
                        .iter()
                        .map(|f| crate::report::shell_quote(f))
                        .collect::<Vec<_>>()
                        .join(" ")
                ));
                ui.always("  streams continue");
                ui.always(format!(
                    "or leave the stream out: streams skip {name}    or stop: streams abort"
                ));
            }
        }
        Finish::Interrupted(_) => {
            ui.always("interrupted: the run's state is saved; `streams resume` goes on from here (or `streams abort`)");
        }
    }
    Ok(code)
}
