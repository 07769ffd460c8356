//! `streams init`: write a commented plan for this repository (or an embedded example), check it
//! the way `streams plan` does, and say what to do next. Never overwrites anything.
//! `init --from TASKS` builds the plan from a task list instead ([`super::init_from`]), with the
//! agent chosen the same way ([`agent_choice`]).

use std::path::{Path, PathBuf};

use crate::authoring::examples;
use crate::authoring::init::{self, AgentChoice, AgentCli, RepoShape};
use crate::error::{Error, ExitCode, Result};
use crate::ops;

use super::{Context, InitAgent, InitArgs, load};

pub fn init(ctx: &Context, args: InitArgs) -> Result<ExitCode> {
    if args.from.is_some() {
        return super::init_from::init_from(ctx, args);
    }
    if let Some(name) = &args.example
        && examples::example(name).is_none()
    {
        return list_examples(ctx, name);
    }
    let repo = ops::load::open_repo(&ctx.cwd)?;
    let path = ops::load::plan_path(&ctx.cwd, &repo, args.plan.as_deref());
    let shown = ops::load::shown_path(&ctx.cwd, &path);
    // Every file written, for the refusal to overwrite and the report.
    let mut files: Vec<(PathBuf, String)> = Vec::new();
    match &args.example {
        Some(name) => {
            let example = examples::example(name).expect("checked above");
            files.push((path.clone(), example.text.to_string()));
            let dir = path.parent().unwrap_or(Path::new("."));
            for (rel, text) in example.files {
                files.push((dir.join(rel), text.to_string()));
            }
        }
        None => {
            let shape = repo_shape(&repo)?;
            files.push((
                path.clone(),
                init::generate(&shape, agent_choice(args.agent)),
            ));
        }
    }
    if let Some((existing, _)) = files.iter().find(|(p, _)| p.exists()) {
        return Err(Error::usage_with_hint(
            format!(
                "{} already exists: streams init never overwrites a file",
                ops::load::shown_path(&ctx.cwd, existing)
            ),
            "remove it first, or name another plan file: `streams init plans/new.toml`",
        ));
    }
    for (file, text) in &files {
        if let Some(dir) = file.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| Error::io(format!("could not create {}", dir.display()), e))?;
        }
        // `create_new`: something that appeared since the check above is not overwritten either.
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(file)
            .and_then(|mut f| std::io::Write::write_all(&mut f, text.as_bytes()))
            .map_err(|e| Error::io(format!("could not write {}", file.display()), e))?;
        ctx.ui
            .info(format!("wrote {}", ops::load::shown_path(&ctx.cwd, file)));
    }

    // The same check as `streams plan`.
    let plan_arg = args.plan.clone().unwrap_or_else(|| path.clone());
    let next_run = if args.plan.is_some() {
        format!(" {}", crate::report::shell_quote(&shown))
    } else {
        String::new()
    };
    match ops::load::load_checked(&repo, load::plan_file(ctx, Some(&plan_arg))) {
        Ok((loaded, _)) => {
            load::show_warnings(ctx, loaded.warnings.as_deref());
            let streams: Vec<&str> = loaded
                .plan
                .streams
                .iter()
                .map(|s| s.name.as_str())
                .collect();
            ctx.ui.info(format!(
                "{shown} is a valid plan: {} ({})",
                crate::plan::diagnostic::count(streams.len(), "stream"),
                streams.join(", ")
            ));
        }
        Err(Error::InvalidPlan { rendered, .. }) => {
            // Without the closing "invalid plan ...; nothing was changed": a file was written.
            let rendered = rendered.trim_end();
            let problems = match rendered.rsplit_once('\n') {
                Some((problems, last)) if last.contains("nothing was changed") => problems,
                _ => rendered,
            };
            ctx.ui.info(problems.trim_end());
            ctx.ui.info(format!(
                "{shown} is written, but a run needs the changes above first"
            ));
        }
        Err(err) => return Err(err),
    }
    ctx.ui.info(format!(
        "\nnext:\n  \
         1. edit {shown}: each task is one prompt for the agent, run in the stream's workspace\n  \
         2. streams plan{next_run}              check it: waves, ownership, schedule\n  \
         3. streams run --dry-run{next_run}     what each agent would be given\n  \
         4. streams run{next_run}"
    ));
    Ok(ExitCode::Success)
}

/// `--example` without a name lists the examples (success); with an unknown one, the same list
/// as a usage error.
fn list_examples(ctx: &Context, name: &str) -> Result<ExitCode> {
    let list: Vec<String> = examples::EXAMPLES
        .iter()
        .map(|e| format!("  {:<8} {}", e.name, e.summary()))
        .collect();
    if name.is_empty() {
        crate::report::print_data(&format!("{}\n", list.join("\n")))?;
        ctx.ui.info("write one with `streams init --example NAME`");
        return Ok(ExitCode::Success);
    }
    Err(Error::usage_with_hint(
        format!(
            "no example plan named `{name}`; the examples are:\n{}",
            list.join("\n")
        ),
        "streams init --example NAME",
    ))
}

/// `--agent NAME` writes that agent only; without it, every agent CLI known is written, the first
/// found on PATH active.
pub(super) fn agent_choice(agent: Option<InitAgent>) -> AgentChoice {
    match agent {
        Some(agent) => AgentChoice::Only(agent_cli(agent)),
        None => AgentChoice::All {
            active: AgentCli::ALL
                .into_iter()
                .find(|cli| cli.program().is_some_and(on_path)),
        },
    }
}

fn agent_cli(agent: InitAgent) -> AgentCli {
    match agent {
        InitAgent::Claude => AgentCli::Claude,
        InitAgent::Codex => AgentCli::Codex,
        InitAgent::Aider => AgentCli::Aider,
        InitAgent::Script => AgentCli::Script,
    }
}

pub(super) fn on_path(program: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::env::var_os("PATH").is_some_and(|dirs| {
        std::env::split_paths(&dirs).any(|dir| {
            std::fs::metadata(dir.join(program))
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
    })
}

/// What the generated plan is built from: the files tracked at HEAD, the branch, the name.
fn repo_shape(repo: &crate::git::Repo) -> Result<RepoShape> {
    let head = repo.resolve_commit("HEAD").map_err(|_| {
        Error::usage_with_hint(
            "the repository has no commits yet: a plan divides the files of a commit",
            "commit something first, then run `streams init` again",
        )
    })?;
    let tracked = repo.tracked_files(&head)?;
    let branch = repo.current_branch();
    let dir_name = repo
        .root()
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "plan".into());
    Ok(RepoShape {
        dir_name,
        branch,
        tracked,
    })
}
