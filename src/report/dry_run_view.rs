//! `streams run --dry-run` as data (what each stream and task would be given, built by
//! `ops::dry_run`) and as the text it prints on stdout.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use super::shell_quote;

/// What a run of the plan would do, changing nothing.
pub struct DryRun {
    pub plan: String,
    /// The plan's `base` as written, and the commit it names (short).
    pub base: String,
    pub base_commit: String,
    pub jobs: usize,
    pub merge: &'static str,
    pub sync: &'static str,
    /// In the order a run considers them (dependencies permitting).
    pub streams: Vec<DryStream>,
}

pub struct DryStream {
    pub name: String,
    /// The stream's branch, short (`streams/<plan>/<stream>`).
    pub branch: String,
    pub worktree: PathBuf,
    pub depends_on: Vec<String>,
    /// The sandbox mode, and every place the agent may write.
    pub sandbox: Option<(&'static str, Vec<String>)>,
    pub setup: Option<DrySetup>,
    pub tasks: Vec<DryTask>,
}

pub struct DrySetup {
    pub argv: Vec<String>,
    pub timeout: Duration,
}

pub struct DryTask {
    pub summary: String,
    /// The agent's argv as it would start, placeholders filled; `None`: no agent is set.
    pub argv: Option<Vec<String>>,
    /// What a preset sets in its CLI's environment (never the plan's own `env`).
    pub env: Vec<(String, String)>,
    /// The variables the plan sets in a preset's own `env` table, by name: their values may be
    /// secrets (an API key) and are not shown.
    pub hidden_env: Vec<String>,
    pub timeout: Option<Duration>,
    /// The task's own text (its first line is shown by default).
    pub text: String,
    /// The whole prompt the agent gets (`{prompt}`).
    pub prompt: String,
}

/// The dry run as text: each stream's worktree, branch, start, sandbox and setup, and each
/// task's argv and prompt (its first line, or with `full_prompts` all of it).
pub fn render(dry: &DryRun, full_prompts: bool) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "dry run of plan `{}`: base {} ({}), {} at a time, merge = {}, sync = {}; nothing is changed",
        dry.plan,
        dry.base,
        dry.base_commit,
        // A stream runs one agent at a time: no more at once than there are streams.
        dry.jobs.min(dry.streams.len().max(1)),
        dry.merge,
        dry.sync
    );
    for stream in &dry.streams {
        render_stream(&mut out, stream, &dry.base_commit);
        for (t, task) in stream.tasks.iter().enumerate() {
            render_task(&mut out, task, t, stream.tasks.len(), full_prompts);
        }
    }
    if !full_prompts {
        let _ = writeln!(
            out,
            "\nprompts: first lines only; `streams run --dry-run --prompts` prints them in full"
        );
    }
    out
}

fn render_stream(out: &mut String, stream: &DryStream, base: &str) {
    let _ = writeln!(out, "\nstream {}", stream.name);
    let _ = writeln!(out, "  branch:     {}", stream.branch);
    let _ = writeln!(out, "  worktree:   {}", stream.worktree.display());
    if !stream.depends_on.is_empty() {
        let _ = writeln!(out, "  depends on: {}", stream.depends_on.join(", "));
    }
    // Every stream starts from the integration tip of the moment it starts: the base, plus
    // whatever is integrated by then (its dependencies at least).
    let start = if stream.depends_on.is_empty() {
        format!(
            "the integration tip when it starts: base {base}, plus any stream integrated by then"
        )
    } else {
        format!(
            "the integration tip once {} {} integrated (base {base} and their work)",
            stream.depends_on.join(", "),
            if stream.depends_on.len() == 1 {
                "is"
            } else {
                "are"
            }
        )
    };
    let _ = writeln!(out, "  starts from: {start}");
    if let Some((mode, writes)) = &stream.sandbox {
        let _ = writeln!(
            out,
            "  sandbox:    {mode} (writes only: {})",
            writes.join(", ")
        );
    }
    if let Some(setup) = &stream.setup {
        let shown: Vec<String> = setup.argv.iter().map(|a| shell_quote(a)).collect();
        let _ = writeln!(
            out,
            "  setup:      {} (timeout {}; log logs/{}/setup.log)",
            shown.join(" "),
            humantime::format_duration(setup.timeout),
            stream.name
        );
    }
}

fn render_task(out: &mut String, task: &DryTask, t: usize, tasks: usize, full_prompts: bool) {
    let _ = writeln!(out, "  task {}/{}: {}", t + 1, tasks, task.summary);
    match &task.argv {
        Some(argv) => {
            let shown: Vec<String> = argv.iter().map(|a| shell_quote(a)).collect();
            let _ = writeln!(out, "    argv: {}", shown.join(" "));
            if !task.env.is_empty() {
                let shown: Vec<String> = task
                    .env
                    .iter()
                    .map(|(k, v)| format!("{k}={}", shell_quote(v)))
                    .collect();
                let _ = writeln!(out, "    env:  {}", shown.join(" "));
            }
            // Names only, on a line of their own: `KEY=<hidden>` among the shell-quoted
            // assignments would read as a redirection once copied to a shell.
            if !task.hidden_env.is_empty() {
                let _ = writeln!(
                    out,
                    "    env (values hidden): {}",
                    task.hidden_env.join(", ")
                );
            }
            if let Some(timeout) = task.timeout {
                let _ = writeln!(out, "    timeout: {}", humantime::format_duration(timeout));
            }
        }
        None => {
            let _ = writeln!(
                out,
                "    argv: (none: no `agent` is set for this task; it would fail)"
            );
        }
    }
    if full_prompts {
        let _ = writeln!(out, "    prompt ({{prompt}}):");
        for line in task.prompt.lines() {
            let _ = writeln!(out, "      | {line}");
        }
    } else {
        let first = task
            .text
            .lines()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("");
        let _ = writeln!(out, "    prompt: {first}");
    }
}
