//! How a session of the engine ended, as the lines a person reads at the end of `run`,
//! `resume`, `continue` and `skip`: the summary table and what to do next.

use super::summary::{self, RunReport};
use super::{Ui, hints, short};
use crate::error::Finish;
use crate::state::{RunDir, RunPhase, RunState};

/// Prints how the session ended and what to do next.
pub fn ended(ui: &Ui, finish: Finish, state: &RunState, report: &RunReport, run_dir: &RunDir) {
    let branch = crate::layout::short_branch(&state.integration_ref);
    match finish {
        Finish::Integrated | Finish::Failed => {
            ui.info("");
            ui.always(summary::render_table(report, ui).trim_end());
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
                    short(&state.integration_tip)
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
                short(&state.base)
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
                    super::quote_paths(&halt.files)
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
}

/// Prints what `abort` did: where the integration branch is, and every ref that keeps work.
pub fn aborted(ui: &Ui, state: &RunState, kept: &[(String, String)], restored: Option<&str>) {
    let branch = crate::layout::short_branch(&state.integration_ref);
    ui.always(format!(
        "aborted run {} of plan `{}`",
        state.run_id, state.plan_name
    ));
    match restored {
        Some(before) => ui.info(format!("{branch} is back at {}", short(before))),
        None => ui.info(format!(
            "{branch} is removed (it did not exist before the run)"
        )),
    }
    if kept.is_empty() {
        ui.info("no work was lost: nothing had been done yet");
    } else {
        ui.info("kept (nothing is lost):");
        for (name, oid) in kept {
            ui.info(format!("  {name}  {}", short(oid)));
        }
    }
    ui.info(format!(
        "stream branches stay as they are: streams/{}/<stream>; `streams clean` removes worktrees",
        state.plan_name
    ));
}
