//! `streams init --from TASKS`: a plan built from a task list (spec-kit `tasks.md`, a Markdown
//! checklist, or JSON), checked like `streams plan` checks one, with the parallelism it found.
//!
//! The work is in [`crate::authoring::tasks`] (pure); this reads the list and the files tracked at
//! `HEAD`, writes the plan (never over an existing file) or prints it with `--dry-run`, and says
//! on stderr what it found. The agent is chosen as plain `init` chooses it.

use std::io::Write as _;
use std::path::Path;

use crate::authoring::init::AgentChoice;
use crate::authoring::tasks::{self, Format, Options, RepoView};
use crate::error::{Error, ExitCode, Result};
use crate::ops;
use crate::plan::{self, CheckError, schedule};

use super::{Context, InitArgs};

/// `HEAD`: the plan starts from whatever is checked out when the run starts.
const BASE: &str = "HEAD";

pub fn init_from(ctx: &Context, args: InitArgs) -> Result<ExitCode> {
    let from = args
        .from
        .as_deref()
        .expect("init dispatches here with --from");
    if args.jobs == Some(0) {
        return Err(Error::usage("--jobs must be at least 1"));
    }
    let agent = super::init::agent_choice(args.agent);
    if agent == (AgentChoice::All { active: None }) {
        // Plain `init` writes every agent line commented out for the user to pick; a plan from
        // a task list is meant to run as it is, so the choice is asked for here instead.
        return Err(Error::usage_with_hint(
            "no agent CLI (claude, codex, aider) was found on PATH: the plan needs one to run its tasks; nothing was written",
            format!(
                "name the one to write: `streams init --from {} --agent claude` (or codex, aider, or script for a script of your own)",
                from.display()
            ),
        ));
    }
    let repo = ops::load::open_repo(&ctx.cwd)?;
    let path = ctx.cwd.join(from);
    let shown = ops::load::shown_path(&ctx.cwd, &path);
    let text = std::fs::read_to_string(&path).map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            Error::usage_with_hint(
                format!("no task list at {shown}"),
                "give the path of a tasks.md, a Markdown checklist or a JSON list of tasks (relative to the current directory)",
            )
        } else {
            Error::io(format!("could not read the task list {shown}"), source)
        }
    })?;
    let base_commit = repo.resolve_commit(BASE)?;
    let view = RepoView::new(BASE, base_commit, repo.tracked_files(BASE)?);
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let options = Options {
        name: None,
        default_name: repo
            .root()
            .file_name()
            .and_then(|n| tasks::slug(&n.to_string_lossy())),
        source: from.display().to_string(),
        agent,
    };
    let generated = tasks::generate(&text, Format::detect(&file_name, &text), &view, &options)
        .map_err(|problems| Error::InvalidPlan {
            rendered: tasks::render_problems(&problems, &shown),
            errors: problems.len(),
        })?;

    // The same check `streams plan` runs. A failure is a bug here, not the user's.
    let checked = match plan::check(&generated.text, &mut view.clone()) {
        Ok(checked) => checked,
        Err(CheckError::Invalid(diags)) => {
            return Err(Error::Internal(format!(
                "the plan built from {shown} does not pass validation (a bug in streams; please report it with the task list):\n{}",
                diags.render(&generated.text, "generated plan", false)
            )));
        }
        Err(CheckError::Repository(never)) => match never {},
    };
    // Patterns of files the tasks will create match nothing yet: expected here, so counted
    // rather than shown one by one. The placeholder of a stream whose tasks name no file
    // matches nothing too, but no task creates it: REVIEW says what to do with it.
    let placeholders: Vec<String> = generated
        .grouping
        .streams
        .iter()
        .filter(|s| s.unassigned)
        .flat_map(|s| s.owns.iter().map(|p| format!("`{p}`")))
        .collect();
    let new_paths = checked
        .warnings
        .items
        .iter()
        .filter(|d| d.message.contains("matches no file"))
        .filter(|d| !placeholders.iter().any(|p| d.message.contains(p.as_str())))
        .count();

    let target = ops::load::plan_path(&ctx.cwd, &repo, args.plan.as_deref());
    let shown_target = ops::load::shown_path(&ctx.cwd, &target);
    if args.dry_run {
        crate::report::print_data(&generated.text)?;
    } else {
        write_new(&target, &generated.text).map_err(|source| {
            if source.kind() == std::io::ErrorKind::AlreadyExists {
                Error::usage_with_hint(
                    format!("{shown_target} already exists; nothing was written"),
                    format!(
                        "move it away, or print the new plan with `streams init --from {} --dry-run`",
                        from.display()
                    ),
                )
            } else {
                Error::io(format!("could not write {shown_target}"), source)
            }
        })?;
    }

    let plan = &checked.plan;
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let sim = schedule::simulate(plan, jobs);
    let waves = schedule::waves(plan).len();
    let task_count: usize = plan.streams.iter().map(|s| s.tasks.len()).sum();
    let unassigned = generated
        .grouping
        .streams
        .iter()
        .filter(|s| s.unassigned)
        .count();
    let ui = &ctx.ui;
    let mut read = format!("read {} from {shown}", plural(task_count, "task"));
    if !generated.done.is_empty() {
        read.push_str(&format!(
            " ({} checked off, left out)",
            generated.done.len()
        ));
    }
    ui.info(read);
    let mut wrote = if args.dry_run {
        format!(
            "{} {} (printed above; nothing written)",
            ui.bold("plan"),
            plural(plan.streams.len(), "stream")
        )
    } else {
        format!(
            "{} {shown_target}: {}",
            ui.bold("wrote"),
            plural(plan.streams.len(), "stream")
        )
    };
    if unassigned > 0 {
        wrote.push_str(&format!(
            "; {} {} no file: look for REVIEW",
            unassigned,
            if unassigned == 1 { "names" } else { "name" }
        ));
    }
    ui.info(wrote);
    if new_paths > 0 {
        ui.info(format!(
            "  {} not tracked yet: the tasks create them",
            plural(new_paths, "owned path")
        ));
    }
    let speedup = if sim.makespan > 0.0 {
        sim.total_work / sim.makespan
    } else {
        1.0
    };
    // An agent named with --agent need not be installed yet, but a run needs it.
    if let AgentChoice::Only(cli) = agent
        && let Some(program) = cli.program()
        && !super::init::on_path(program)
    {
        ui.info(format!(
            "note: `{program}` is not on PATH: install it before `streams run` (`streams plan` checks)"
        ));
    }
    ui.info(format!(
        "{} {}, {}; predicted makespan with {}: {}, against {} one after another ({speedup:.1}x)",
        ui.bold("parallelism"),
        plural(plan.streams.len(), "stream"),
        plural(waves, "wave"),
        plural(sim.jobs, "job"),
        units(sim.makespan),
        units(sim.total_work),
    ));
    // A plan not at the default place is named to `plan` and `run`.
    let plan_arg = match &args.plan {
        Some(_) => format!(" {}", crate::report::shell_quote(&shown_target)),
        None => String::new(),
    };
    let next = if args.dry_run {
        format!(
            "next: `streams init{plan_arg} --from {}` to write it, then `streams plan{plan_arg}`",
            from.display()
        )
    } else {
        format!(
            "next: review {shown_target}, then `streams plan{plan_arg}` and `streams run{plan_arg}`"
        )
    };
    ui.info(next);
    Ok(ExitCode::Success)
}

/// Writes a new file whole or not at all, and never over an existing one: the text goes to a
/// temporary file beside it, which is then linked into place.
fn write_new(target: &Path, text: &str) -> std::io::Result<()> {
    let dir = target.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".streams.toml.")
        .tempfile_in(dir)?;
    tmp.write_all(text.as_bytes())?;
    tmp.as_file().sync_all()?;
    tmp.persist_noclobber(target).map_err(|e| e.error)?;
    Ok(())
}

fn units(value: f64) -> String {
    let n = if value.fract() == 0.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.1}")
    };
    if n == "1" {
        "1 unit".into()
    } else {
        format!("{n} units")
    }
}

fn plural(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}
