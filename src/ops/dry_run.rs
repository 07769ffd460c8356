//! `streams run --dry-run`: what each stream and task of a run would be given (worktree,
//! branch, start, sandbox, setup, argv, prompt), built with the same [`TaskSpec`] a run uses.
//! Reads the plan's prompt files; writes nothing.

use std::path::Path;

use crate::agent::AgentSpec;
use crate::exec::dispatcher::worktrees_dir;
use crate::exec::prompt::{self, DependencyWork};
use crate::exec::task_spec::{AgentStart, TaskSpec};
use crate::git::Repo;
use crate::plan::{Plan, SandboxMode, Stream, schedule};
use crate::report::dry_run_view::{DryRun, DrySetup, DryStream, DryTask};
use crate::state::StateDir;

use super::load::LoadedPlan;

/// The dry run of `loaded` with `jobs` agents at once.
pub fn dry_run(repo: &Repo, loaded: &LoadedPlan, jobs: usize) -> DryRun {
    let plan = &loaded.plan;
    let plan_dir = loaded
        .path
        .parent()
        .map(|p| p.to_path_buf())
        .unwrap_or_default();
    let wt_dir = worktrees_dir(repo, plan);
    let runs = StateDir::new(repo.common_dir()).runs_dir();
    let lrp = schedule::longest_remaining_path(plan);
    let mut order: Vec<usize> = (0..plan.streams.len()).collect();
    // The order a run considers them in (dependencies permitting).
    order.sort_by(|&a, &b| schedule::start_order(plan, &lrp, a, b));
    let streams = order
        .into_iter()
        .map(|s| {
            let stream = &plan.streams[s];
            let worktree = wt_dir.join(&stream.name);
            let prompts = runs.join("<run-id>/prompts").join(&stream.name);
            DryStream {
                name: stream.name.clone(),
                branch: format!("streams/{}/{}", plan.name, stream.name),
                depends_on: stream.depends_on.clone(),
                sandbox: sandbox(plan, stream),
                setup: plan.setup_for(stream).map(|argv| DrySetup {
                    argv: argv.to_vec(),
                    timeout: plan.setup_timeout_for(stream),
                }),
                tasks: tasks(plan, s, &plan_dir, &prompts, &worktree),
                worktree,
            }
        })
        .collect();
    DryRun {
        plan: plan.name.clone(),
        base: plan.base.clone(),
        base_commit: crate::text::short(&loaded.base_commit).to_string(),
        jobs,
        merge: plan.merge.as_str(),
        sync: plan.sync.as_str(),
        streams,
    }
}

/// The sandbox a stream's agents run in, and where they may write; `None` when it is off.
fn sandbox(plan: &Plan, stream: &Stream) -> Option<(&'static str, Vec<String>)> {
    let mode = plan.sandbox_for(stream);
    if mode == SandboxMode::Off {
        return None;
    }
    let mut writes = vec!["its workspace".to_string(), "its TMPDIR".to_string()];
    writes.extend(plan.sandbox_writable_for(stream));
    Some((mode.as_str(), writes))
}

/// Each task of stream `s` as its agent would start: argv and prompt, with what its
/// dependencies' tasks are (their files are not known before they run).
fn tasks(plan: &Plan, s: usize, plan_dir: &Path, prompts: &Path, worktree: &Path) -> Vec<DryTask> {
    let stream = &plan.streams[s];
    // Where a run keeps each task's home for a preset's CLI (see `RunDir::agent_home_path`).
    let homes = prompts
        .parent()
        .and_then(Path::parent)
        .unwrap_or(prompts)
        .join("homes")
        .join(&stream.name);
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
    stream
        .tasks
        .iter()
        .enumerate()
        .map(|(t, task)| {
            let text =
                prompt::task_text(plan_dir, &task.prompt).unwrap_or_else(|e| format!("<{e}>"));
            let prompt_file = prompts.join(format!("{}.md", t + 1));
            let spec = TaskSpec::new(plan, s, t, text, &deps, &prompt_file, worktree);
            let agent = plan.agent_for(stream, task);
            let home = homes.join((t + 1).to_string());
            let start = agent.map(|agent| AgentStart::new(agent, &home, None));
            DryTask {
                summary: task.prompt.summary(),
                argv: start.as_ref().map(|start| spec.argv_shown(&start.template)),
                env: agent
                    .zip(start.as_ref())
                    .map_or_else(Vec::new, |(agent, start)| presets_own_env(agent, start)),
                hidden_env: agent
                    .and_then(|agent| agent.preset())
                    .map_or_else(Vec::new, |preset| preset.env.keys().cloned().collect()),
                timeout: agent.and(plan.timeout_for(stream, task)),
                text: spec.text,
                prompt: spec.prompt,
            }
        })
        .collect()
}

/// What a preset sets in its CLI's environment, as streams sets it: the plan's own `env` (in
/// the preset's table or the plan's) is the user's, and may hold secrets: its values are left
/// out, a variable of the preset's it overrides too (the preset table's names are shown apart,
/// [`DryTask::hidden_env`]).
fn presets_own_env(agent: &AgentSpec, start: &AgentStart) -> Vec<(String, String)> {
    let users = agent.preset().map(|p| &p.env);
    start
        .env
        .iter()
        .filter(|(k, _)| users.is_none_or(|users| !users.contains_key(k)))
        .cloned()
        .collect()
}
