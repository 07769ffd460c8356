//! `streams init`: write a commented plan for this repository (or an embedded example), check it
//! the way `streams plan` does, and say what to do next. Never overwrites anything.
//! `init --from TASKS` builds the plan from a task list instead, with the agent chosen the same
//! way. The work is in `ops::init`.

use crate::error::{Error, ExitCode, Result};
use crate::ops::{
    self,
    init::{AgentCli, FromRequest},
};
use crate::report::{init_view, print_data};

use super::{Context, InitAgent, InitArgs, load};

pub fn init(ctx: &Context, args: InitArgs) -> Result<ExitCode> {
    if args.from.is_some() {
        return init_from(ctx, args);
    }
    if let Some(name) = &args.example
        && !ops::init::is_example(name)
    {
        return list_examples(ctx, name);
    }
    let repo = ops::load::open_repo(&ctx.cwd)?;
    let path = ops::load::plan_path(&ctx.cwd, &repo, args.plan.as_deref());
    let shown = ops::load::shown_path(&ctx.cwd, &path);
    let files = ops::init::files(
        &repo,
        &ctx.cwd,
        &path,
        args.example.as_deref(),
        args.agent.map(agent_cli),
    )?;
    for (file, text) in &files {
        ops::init::write_file(file, text)?;
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
            // A generated plan's only warnings are its placeholder tasks, which the next
            // steps below say to write.
            if args.example.is_some() {
                load::show_warnings(ctx, loaded.warnings.as_deref());
            }
            let streams: Vec<&str> = loaded
                .plan
                .streams
                .iter()
                .map(|s| s.name.as_str())
                .collect();
            ctx.ui.info(format!(
                "{shown} is a valid plan: {} ({})",
                init_view::count(streams.len(), "stream"),
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
    // The agent script `--agent script` wrote: each workspace starts from a commit, so the
    // script reaches the agents only once committed.
    let script = files
        .iter()
        .find(|(file, _)| file.ends_with(ops::init::SCRIPT_PATH))
        .map(|(file, _)| ops::load::shown_path(&ctx.cwd, file));
    let script_step = match &script {
        Some(script) => format!(
            "\n     and make {script} call your agent, then commit it: `git add {script} && git commit -m \"streams agent\"`\n     \
             (each stream's workspace starts from a commit: until then no agent has it)"
        ),
        None => String::new(),
    };
    ctx.ui.info(format!(
        "\nnext:\n  \
         1. edit {shown}: each task is one prompt for the agent, run in the stream's workspace{script_step}\n  \
         2. streams plan{next_run}              check it: waves, ownership, schedule\n  \
         3. streams run --dry-run{next_run}     what each agent would be given\n  \
         4. streams run{next_run}"
    ));
    Ok(ExitCode::Success)
}

/// `--example` without a name lists the examples (success); with an unknown one, the same list
/// as a usage error.
fn list_examples(ctx: &Context, name: &str) -> Result<ExitCode> {
    let list: Vec<String> = ops::init::examples()
        .into_iter()
        .map(|(name, summary)| format!("  {name:<8} {summary}"))
        .collect();
    if name.is_empty() {
        print_data(&format!("{}\n", list.join("\n")))?;
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

fn agent_cli(agent: InitAgent) -> AgentCli {
    match agent {
        InitAgent::Claude => AgentCli::Claude,
        InitAgent::Codex => AgentCli::Codex,
        InitAgent::Aider => AgentCli::Aider,
        InitAgent::Script => AgentCli::Script,
    }
}

/// `streams init --from TASKS`: a plan built from a task list (spec-kit `tasks.md`, a Markdown
/// checklist, or JSON), checked like `streams plan` checks one, with the parallelism it found;
/// written (never over an existing file) or printed with `--dry-run`, what it found said on
/// stderr.
fn init_from(ctx: &Context, args: InitArgs) -> Result<ExitCode> {
    let list = args
        .from
        .as_deref()
        .expect("init dispatches here with --from");
    if args.jobs == Some(0) {
        return Err(Error::usage("--jobs must be at least 1"));
    }
    let agent = ops::init::required_agent(
        args.agent.map(agent_cli),
        &format!("streams init --from {}", list.display()),
    )?;
    let repo = ops::load::open_repo(&ctx.cwd)?;
    let built = ops::init::from_tasks(
        &repo,
        &FromRequest {
            cwd: &ctx.cwd,
            list,
            plan: args.plan.as_deref(),
            agent,
            jobs: args
                .jobs
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
            dry_run: args.dry_run,
        },
    )?;
    if args.dry_run {
        print_data(&built.text)?;
    } else {
        ops::init::write_from_tasks(&built)?;
    }
    for line in init_view::from_tasks(&ctx.ui, &built.summary) {
        ctx.ui.info(line);
    }
    Ok(ExitCode::Success)
}
