//! `streams ci github`: the workflow that spreads the plan over CI jobs, on stdout or in a file.

use std::path::Path;

use crate::ci::{self, Options};
use crate::error::{Error, ExitCode, Result};
use crate::ops;
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
    let plan_path = repo_relative(repo.root(), &loaded.path);
    let options = Options {
        command: command_line(&args, &plan_path),
        plan_path,
        install: args.install.clone().unwrap_or_else(ci::default_install),
        setup: args.setup.clone(),
        secrets: args.secret.clone(),
        runs_on: args.runs_on.clone(),
    };
    let spread = ci::spread(&loaded.plan, &options).map_err(|refusal| {
        let problems: Vec<String> = refusal.problems.iter().map(|p| format!("  {p}")).collect();
        Error::usage_with_hint(
            format!(
                "the plan cannot be spread over CI jobs:\n{}",
                problems.join("\n")
            ),
            "change the plan (or the options) as said, then run `streams ci github` again; nothing was written",
        )
    })?;
    for note in &spread.notes {
        ctx.ui.warn(note);
    }
    let text = ci::github::workflow(&loaded.plan, &options, &spread);
    match &args.out {
        None => print_data(&text)?,
        Some(out) => {
            let path = ctx.cwd.join(out);
            // Whole or not at all, with the mode any new file gets (others read it: git, CI).
            crate::state::store::write_atomic(&path, text.as_bytes())
                .map_err(|e| Error::io(format!("could not write {}", path.display()), e))?;
            let streams: usize = spread.stages.iter().map(Vec::len).sum();
            ctx.ui.info(format!(
                "wrote {}: {} stages, {} stream jobs",
                out.display(),
                spread.stages.len(),
                streams
            ));
        }
    }
    Ok(ExitCode::Success)
}

/// The plan file as every job names it: relative to the repository root, `/`-separated; a
/// plan outside the repository keeps its `../` (the generator refuses it).
fn repo_relative(root: &Path, path: &Path) -> String {
    let canonical = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let (root, path) = (canonical(root), canonical(path));
    match path.strip_prefix(&root) {
        Ok(rel) => rel.to_string_lossy().replace('\\', "/"),
        Err(_) => format!("../{}", path.display()),
    }
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
