//! `streams init --from TASKS`: a plan built from a task list (spec-kit `tasks.md`, a Markdown
//! checklist, or JSON), checked like `streams plan` checks one, with the parallelism it found.
//!
//! The work is in [`crate::plan::tasks`] (pure); this reads the list and the files tracked at
//! `HEAD`, writes `streams.toml` (never over an existing one) or prints it with `--dry-run`,
//! and says on stderr what it found.

use std::io::Write as _;
use std::path::PathBuf;

use clap::Args;

use crate::error::{Error, ExitCode, Result};
use crate::plan::tasks::{self, Format, Options, RepoView};
use crate::plan::{self, CheckError, schedule};

use super::Context;
use super::load;

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Build the plan from a task list: spec-kit's tasks.md, a Markdown checklist, or JSON
    #[arg(long, value_name = "TASKS")]
    pub from: PathBuf,
    /// Print the plan on stdout instead of writing streams.toml
    #[arg(long)]
    pub dry_run: bool,
    /// Predict the makespan with this many agents at once (default: the number of CPUs)
    #[arg(long, short)]
    pub jobs: Option<usize>,
}

/// The agent a generated plan runs; the header comment tells the user where to change it.
const DEFAULT_AGENT: [&str; 3] = ["claude", "-p", "{prompt}"];

/// `HEAD`: the plan starts from whatever is checked out when the run starts.
const BASE: &str = "HEAD";

pub fn init_from(ctx: &Context, args: InitArgs) -> Result<ExitCode> {
    if args.jobs == Some(0) {
        return Err(Error::usage("--jobs must be at least 1"));
    }
    let repo = load::open_repo(ctx)?;
    let path = ctx.cwd.join(&args.from);
    let shown = load::shown_path(&ctx.cwd, &path);
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
        source: args.from.display().to_string(),
        agent: DEFAULT_AGENT.iter().map(|a| a.to_string()).collect(),
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
    // rather than shown one by one.
    let new_paths = checked
        .warnings
        .items
        .iter()
        .filter(|d| d.message.contains("matches no file"))
        .count();

    let target = repo.root().join("streams.toml");
    let shown_target = load::shown_path(&ctx.cwd, &target);
    if args.dry_run {
        print!("{}", generated.text);
    } else {
        write_new(&target, &generated.text).map_err(|source| {
            if source.kind() == std::io::ErrorKind::AlreadyExists {
                Error::usage_with_hint(
                    format!("{shown_target} already exists; nothing was written"),
                    format!(
                        "move it away, or print the new plan with `streams init --from {} --dry-run`",
                        args.from.display()
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
    ui.info(format!(
        "{} {}, {}; predicted makespan with {}: {}, against {} one after another ({speedup:.1}x)",
        ui.bold("parallelism"),
        plural(plan.streams.len(), "stream"),
        plural(waves, "wave"),
        plural(sim.jobs, "job"),
        units(sim.makespan),
        units(sim.total_work),
    ));
    let next = if args.dry_run {
        format!(
            "next: `streams init --from {}` to write it, then `streams plan`",
            args.from.display()
        )
    } else {
        format!("next: review {shown_target}, then `streams plan` and `streams run`")
    };
    ui.info(next);
    Ok(ExitCode::Success)
}

/// Writes a new file whole or not at all, and never over an existing one: the text goes to a
/// temporary file beside it, which is then linked into place.
fn write_new(target: &std::path::Path, text: &str) -> std::io::Result<()> {
    let dir = target.parent().unwrap_or(std::path::Path::new("."));
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
