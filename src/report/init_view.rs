//! What `streams init --from TASKS` says on stderr once the plan is built: what it read, what
//! it wrote (or printed), the parallelism it found, and what to do next. Built by `ops::init`.

use super::Ui;

/// A plan built from a task list, as the summary shows it.
pub struct FromTasks {
    /// The task list, as the person named it (relative to the current directory).
    pub list_shown: String,
    /// As typed after `--from`, for the commands shown.
    pub list_arg: String,
    pub tasks: usize,
    /// Tasks checked off in the list, left out.
    pub done: usize,
    /// The plan was printed (`--dry-run`), not written.
    pub dry_run: bool,
    /// Where the plan goes, as shown.
    pub target_shown: String,
    /// How `plan` and `run` name it: empty at the default place, else ` PATH`.
    pub plan_arg: String,
    pub streams: usize,
    /// Streams whose tasks name no file (a placeholder the person reviews).
    pub unassigned: usize,
    /// Owned patterns that match no tracked file yet: the tasks create them.
    pub new_paths: usize,
    /// The agent named with `--agent`, when it is not on PATH.
    pub missing_program: Option<&'static str>,
    /// The agent script `--agent script` writes with the plan (unless one is there), as shown.
    pub script_shown: Option<String>,
    pub waves: usize,
    pub jobs: usize,
    pub makespan: f64,
    pub total_work: f64,
}

/// The summary's lines, in order.
pub fn from_tasks(ui: &Ui, s: &FromTasks) -> Vec<String> {
    let mut lines = Vec::new();
    let mut read = format!("read {} from {}", count(s.tasks, "task"), s.list_shown);
    if s.done > 0 {
        read.push_str(&format!(" ({} checked off, left out)", s.done));
    }
    lines.push(read);
    let mut wrote = if s.dry_run {
        format!(
            "{} {} (printed above; nothing written)",
            ui.bold("plan"),
            count(s.streams, "stream")
        )
    } else {
        format!(
            "{} {}: {}",
            ui.bold("wrote"),
            s.target_shown,
            count(s.streams, "stream")
        )
    };
    if s.unassigned > 0 {
        wrote.push_str(&format!(
            "; {} {} no file: look for REVIEW",
            s.unassigned,
            if s.unassigned == 1 { "names" } else { "name" }
        ));
    }
    lines.push(wrote);
    if let Some(script) = &s.script_shown
        && !s.dry_run
    {
        lines.push(format!(
            "{} {script}: make it call your agent, then commit it: `git add {script} && git commit -m \"streams agent\"` (each stream's workspace starts from a commit)",
            ui.bold("wrote"),
        ));
    }
    if s.new_paths > 0 {
        lines.push(format!(
            "  {} not tracked yet: the tasks create them",
            count(s.new_paths, "owned path")
        ));
    }
    let speedup = if s.makespan > 0.0 {
        s.total_work / s.makespan
    } else {
        1.0
    };
    // An agent named with --agent need not be installed yet, but a run needs it.
    if let Some(program) = s.missing_program {
        lines.push(format!(
            "note: `{program}` is not on PATH: install it before `streams run` (`streams plan` checks)"
        ));
    }
    lines.push(format!(
        "{} {}, {}; predicted makespan with {}: {}, against {} one after another ({speedup:.1}x)",
        ui.bold("parallelism"),
        count(s.streams, "stream"),
        count(s.waves, "wave"),
        count(s.jobs, "job"),
        units(s.makespan),
        units(s.total_work),
    ));
    let plan_arg = &s.plan_arg;
    lines.push(if s.dry_run {
        format!(
            "next: `streams init{plan_arg} --from {}` to write it, then `streams plan{plan_arg}`",
            s.list_arg
        )
    } else {
        format!(
            "next: review {}, then `streams plan{plan_arg}` and `streams run{plan_arg}`",
            s.target_shown
        )
    });
    lines
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

/// `n` things: `1 stream`, `2 streams`.
pub fn count(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}
