//! `streams ci github`: the workflow that spreads the plan over CI jobs, on stdout or in a file.

use crate::error::{ExitCode, Result};
use crate::ops::{self, ci::Options};
use crate::report::{print_data, shell_quote};

use super::{CiArgs, CiCommand, CiGithubArgs, Context, load};

pub fn ci(ctx: &Context, args: CiArgs) -> Result<ExitCode> {
    match args.command {
        CiCommand::Github(args) => github(ctx, args),
    }
}

fn github(ctx: &Context, args: CiGithubArgs) -> Result<ExitCode> {
    let repo = ops::load::open_repo(&ctx.cwd)?;
    let loaded =
        ops::load::load_plan_for_elsewhere(&repo, load::plan_file(ctx, args.plan.as_deref()))?;
    load::show_warnings(ctx, loaded.warnings.as_deref());
    let plan_path = ops::ci::plan_path(&repo, &loaded);
    let (install, install_note) = match &args.install {
        Some(command) => (command.clone(), None),
        None => {
            let default = ops::ci::default_install();
            (default.command, default.note)
        }
    };
    let options = Options {
        command: command_line(&args, &plan_path),
        plan_path,
        install,
        setup: args.setup.clone(),
        secrets: args.secret.clone(),
        runs_on: args.runs_on.clone(),
    };
    let workflow = ops::ci::github(&repo, &loaded, &options)?;
    for note in install_note.iter().chain(&workflow.notes) {
        ctx.ui.warn(note);
    }
    match &args.out {
        None => print_data(&workflow.text)?,
        Some(out) => {
            ops::ci::write(&ctx.cwd.join(out), &workflow.text)?;
            ctx.ui.info(format!(
                "wrote {}: {} stages, {} stream jobs",
                out.display(),
                workflow.stages,
                workflow.stream_jobs
            ));
        }
    }
    Ok(ExitCode::Success)
}

/// The command that writes the same workflow, options in a fixed order (for the header and
/// the message of a stale workflow). `--out` is left out: stdout and the file are the same.
fn command_line(args: &CiGithubArgs, plan_path: &str) -> String {
    let mut words = vec!["streams".to_string(), "ci".into(), "github".into()];
    if plan_path != "streams.toml" {
        words.push(shell_quote(plan_path));
    }
    if let Some(install) = &args.install {
        words.push(format!("--install {}", shell_quote(install)));
    }
    for setup in &args.setup {
        words.push(format!("--setup {}", shell_quote(setup)));
    }
    let mut secrets = args.secret.clone();
    secrets.sort();
    secrets.dedup();
    for secret in &secrets {
        words.push(format!("--secret {}", shell_quote(secret)));
    }
    if args.runs_on != super::DEFAULT_RUNS_ON {
        words.push(format!("--runs-on {}", shell_quote(&args.runs_on)));
    }
    words.join(" ")
}
