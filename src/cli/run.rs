//! `streams run`: execute a plan (or, with `--dry-run`, show what would run).

use std::fmt::Write as _;

use crate::error::{ExitCode, IoContext, Result};
use crate::exec::dispatcher::worktrees_dir;
use crate::exec::prompt::{self, DependencyWork};
use crate::exec::task_spec::TaskSpec;
use crate::ops::{self, session::EngineParts, start::NewRun};
use crate::report::{print_data, shell_quote};
use crate::state::{RunLock, StateDir};

use crate::ops::load::LoadedPlan;

use super::load;
use super::session;
use super::{Context, RunArgs};

pub fn default_jobs() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
}

pub fn run(ctx: &Context, args: RunArgs) -> Result<ExitCode> {
    if args.jobs == Some(0) {
        return Err(crate::error::Error::usage("--jobs must be at least 1"));
    }
    if args.machine.only.is_some() {
        return super::machines::run_only(ctx, args);
    }
    let repo = ops::load::open_repo(&ctx.cwd)?;
    let loaded = ops::load::load_plan(&repo, load::plan_file(ctx, args.plan.as_deref()))?;
    load::show_warnings(ctx, loaded.warnings.as_deref());
    for warning in crate::exec::sandbox::preflight(&loaded.plan)? {
        ctx.ui.warn(warning);
    }
    let jobs = args
        .jobs
        .or(loaded.plan.jobs)
        .unwrap_or_else(default_jobs)
        .max(1);
    if args.dry_run {
        // The prompts in full with --prompts or -v; else their first lines.
        let full = args.prompts || ctx.ui.verbose > 0;
        return dry_run(ctx, &repo, &loaded, jobs, full);
    }
    let state_dir = StateDir::new(repo.common_dir());
    let mut lock = RunLock::acquire(&state_dir, "run")?;
    ops::start::check_no_active_run(&state_dir)?;
    let text = std::fs::read_to_string(&loaded.path)
        .context(|| format!("could not read {}", loaded.path.display()))?;
    let started = ops::start::start_run(&NewRun {
        repo: &repo,
        plan: &loaded.plan,
        plan_path: &loaded.path,
        plan_text: &text,
        base: &loaded.base_commit,
        jobs,
        fail_fast: args.fail_fast,
        restart: args.restart,
        no_check: args.no_check,
        no_gate: args.no_gate,
        machines: None,
    })?;
    let ops::start::Started {
        run_dir,
        state,
        journal,
        last,
    } = started;
    let kept: Vec<(String, String)> = last
        .kept
        .iter()
        .map(|(name, oid)| (name.clone(), oid.to_string()))
        .collect();
    if let Some(line) = crate::report::hints::last_result_line(
        last.tip.as_deref(),
        last.merged_into.as_deref(),
        &kept,
    ) {
        ctx.ui.info(line);
    }
    lock.set_run(&state.run_id, "run");
    let parts = EngineParts {
        repo,
        plan: loaded.plan,
        run_dir,
        state,
        journal,
    };
    let ended = session::start(ctx, parts, "run", args.json, None).run()?;
    session::conclude(ctx, ended, args.report.junit.as_deref())
}

/// Shows each stream's worktree, branch, start commit, agent command and prompt (the first line
/// of each, or with `full_prompts` all of it). Writes nothing.
fn dry_run(
    ctx: &Context,
    repo: &crate::git::Repo,
    loaded: &LoadedPlan,
    jobs: usize,
    full_prompts: bool,
) -> Result<ExitCode> {
    let plan = &loaded.plan;
    let plan_dir = loaded
        .path
        .parent()
        .map(|p| p.to_path_buf())
        .unwrap_or_default();
    let wt_dir = worktrees_dir(repo, plan);
    let runs = StateDir::new(repo.common_dir()).runs_dir();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "dry run of plan `{}`: base {} ({}), {} at a time, merge = {}, sync = {}; nothing is changed",
        plan.name,
        plan.base,
        crate::coordinator::short(&loaded.base_commit),
        jobs,
        plan.merge.as_str(),
        plan.sync.as_str()
    );
    let lrp = crate::plan::schedule::longest_remaining_path(plan);
    let mut streams: Vec<usize> = (0..plan.streams.len()).collect();
    // The order a run considers them in (dependencies permitting).
    streams.sort_by(|&a, &b| crate::plan::schedule::start_order(plan, &lrp, a, b));
    for s in streams {
        let stream = &plan.streams[s];
        let worktree = wt_dir.join(&stream.name);
        let _ = writeln!(out, "\nstream {}", stream.name);
        let _ = writeln!(out, "  branch:     streams/{}/{}", plan.name, stream.name);
        let _ = writeln!(out, "  worktree:   {}", worktree.display());
        if !stream.depends_on.is_empty() {
            let _ = writeln!(out, "  depends on: {}", stream.depends_on.join(", "));
        }
        // Every stream starts from the integration tip of the moment it starts: the base, plus
        // whatever is integrated by then (its dependencies at least).
        let base = crate::coordinator::short(&loaded.base_commit);
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
        let sandbox = plan.sandbox_for(stream);
        if sandbox != crate::plan::SandboxMode::Off {
            let mut writes = vec!["its workspace".to_string(), "its TMPDIR".to_string()];
            writes.extend(plan.sandbox_writable_for(stream));
            let _ = writeln!(
                out,
                "  sandbox:    {} (writes only: {})",
                sandbox.as_str(),
                writes.join(", ")
            );
        }
        if let Some(setup) = plan.setup_for(stream) {
            let shown: Vec<String> = setup.iter().map(|a| shell_quote(a)).collect();
            let _ = writeln!(
                out,
                "  setup:      {} (timeout {}; log logs/{}/setup.log)",
                shown.join(" "),
                humantime::format_duration(plan.setup_timeout_for(stream)),
                stream.name
            );
        }
        let deps: Vec<DependencyWork> = stream
            .depends_on
            .iter()
            .filter_map(|d| plan.stream(d))
            .map(|d| DependencyWork {
                stream: d.name.clone(),
                tasks: d.tasks.iter().map(|t| t.prompt.summary()).collect(),
                files: Vec::new(),
                total_files: 0,
            })
            .collect();
        for (t, task) in stream.tasks.iter().enumerate() {
            let text =
                prompt::task_text(&plan_dir, &task.prompt).unwrap_or_else(|e| format!("<{e}>"));
            let prompt_file = runs
                .join("<run-id>/prompts")
                .join(&stream.name)
                .join(format!("{}.md", t + 1));
            let spec = TaskSpec::new(plan, s, t, text, &deps, &prompt_file, &worktree);
            let _ = writeln!(
                out,
                "  task {}/{}: {}",
                t + 1,
                stream.tasks.len(),
                task.prompt.summary()
            );
            match plan.agent_for(stream, task) {
                Some(agent) => {
                    let shown: Vec<String> = spec
                        .argv_shown(agent)
                        .iter()
                        .map(|a| shell_quote(a))
                        .collect();
                    let _ = writeln!(out, "    argv: {}", shown.join(" "));
                    if let Some(timeout) = plan.timeout_for(stream, task) {
                        let _ =
                            writeln!(out, "    timeout: {}", humantime::format_duration(timeout));
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
                for line in spec.prompt.lines() {
                    let _ = writeln!(out, "      | {line}");
                }
            } else {
                let first = spec
                    .text
                    .lines()
                    .find(|l| !l.trim().is_empty())
                    .unwrap_or("");
                let _ = writeln!(out, "    prompt: {first}");
            }
        }
    }
    if !full_prompts {
        let _ = writeln!(
            out,
            "\nprompts: first lines only; `streams run --dry-run --prompts` prints them in full"
        );
    }
    print_data(&out)?;
    ctx.ui
        .detail("dry run: no worktree, branch, ref or file was written");
    Ok(ExitCode::Success)
}
