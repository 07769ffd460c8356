//! Starting a task, the part that needs the plan and the state: its spec (prompt and argv, the
//! same as `run --dry-run` shows), its environment and limits, its workspace's setup, as the
//! [`TaskJob`] its executor runs. The dispatcher records the task as running before it spawns
//! the executor.

use super::check::{self, CheckFailure};
use super::include::IncludeJob;
use super::process::Limits;
use super::prompt::{self, DependencyWork};
use super::run::Run;
use super::setup::SetupJob;
use super::task::{PresetJob, TaskJob};
use super::task_spec::{AgentStart, TaskSpec};
use crate::agent::{self, Cli, Preset};
use crate::coordinator;
use crate::error::{Error, Result};
use crate::git;
use crate::ids::{Oid, TaskId};
use crate::state::{AttemptUsage, FailReason, TaskState};

/// How a task can start.
pub(super) enum Launch {
    Ready(Box<TaskJob>),
    /// It cannot (no agent, no prompt, no port): it fails without running.
    CannotStart(FailReason),
}

/// The job of task `id`, starting from `start` in slot `slot` (`prepared`: the
/// commit its workspace was prepared at ahead). Writes its prompt file. `Err`: the prompt file
/// could not be written.
pub(super) fn task_job(
    run: &Run,
    id: TaskId,
    start: &Oid,
    slot: usize,
    prepared: Option<Oid>,
) -> Result<Launch> {
    let (ctx, state) = (&run.ctx, &run.state);
    let (s, t) = (id.stream.index(), id.index);
    let plan = &ctx.plan;
    let stream = &plan.streams[s];
    let task = &stream.tasks[t];
    let record = &state.streams[s];
    let name = record.name.clone();
    let worktree = record.worktree.clone();
    let Some(agent) = plan.agent_for(stream, task) else {
        return Ok(Launch::CannotStart(FailReason::Spawn {
            message: "no agent command: set `agent` in [plan], on the stream or on the task".into(),
        }));
    };
    // A prompt file is read from the copy taken when the run started, so a checkout
    // switching branches (or an edit) mid-run changes nothing.
    let copy = ctx.run_dir.prompt_source_path(&name, t);
    let text = match std::fs::read_to_string(&copy)
        .map_err(|_| ())
        .or_else(|()| prompt::task_text(&ctx.plan_dir, &task.prompt))
    {
        Ok(text) => text,
        Err(message) => return Ok(Launch::CannotStart(FailReason::Spawn { message })),
    };
    // The slot is held for the stream's life, so every task of it gets the same port.
    let Some(port) = plan.ports.for_slot(slot) else {
        let message = format!(
            "slot {slot} has no port below 65536 (`ports = {{ base = {}, per_slot = {} }}`): lower `base` or `per_slot`",
            plan.ports.base, plan.ports.per_slot
        );
        return Ok(Launch::CannotStart(FailReason::Spawn { message }));
    };
    let deps = dependency_work(run, s);
    let prompt_path = ctx.run_dir.prompt_path(&name, t);
    let fixing = check::failure(state, s, t);
    let text = match &fixing {
        Some(failure) => format!("{text}{}", failure.text),
        None => text,
    };
    // A check's second chance continues the agent's session where its preset can: it keeps
    // its context, and the new message is the check's failure alone.
    let home = ctx.run_dir.agent_home_path(&name, t);
    let session = record.tasks[t]
        .usage
        .iter()
        .rev()
        .find_map(|u| u.session.clone());
    let resume = session.filter(|_| fixing.is_some() && agent.preset().is_some());
    let start_agent = AgentStart::new(agent, &home, resume.as_deref());
    let mut spec =
        TaskSpec::new(plan, s, t, text, &deps, &prompt_path, &worktree).in_slot(slot, port);
    let kind = match fixing {
        Some(_) => crate::agent::usage::AttemptKind::CheckFix,
        None => crate::agent::usage::AttemptKind::Task,
    };
    let tmp = ctx.run_dir.tmp_path(&name, t);
    let usage_file = tmp.join("usage.json");
    // The agent may write there (the sandbox grants the task's tmp), so it must exist.
    let _ = std::fs::create_dir_all(&tmp);
    spec.usage_file = Some(usage_file.display().to_string());
    if let Some(CheckFailure { output, file, text }) = fixing {
        if resume.is_some() {
            spec.prompt = text.trim_start().to_string();
        }
        spec.check_output = output;
        spec.check_output_file = file;
    }
    write_prompt(&prompt_path, &spec.prompt)?;

    let argv = spec.argv(&start_agent.template);
    let mut env = agent_env(run, id, &spec.text, &spec.prompt_file, &spec.worktree);
    env.extend([
        ("STREAMS_SLOT".to_string(), slot.to_string()),
        ("STREAMS_PORT".to_string(), port.to_string()),
    ]);
    let preset = start_agent.preset.as_ref().map(|preset| {
        preset_job(
            run,
            preset,
            &home,
            &mut env,
            &start_agent,
            resume,
            &record.tasks[t].usage,
        )
    });
    let mut sandbox = super::sandbox::Spec::new(plan, stream, tmp);
    sandbox
        .writable
        .extend(start_agent.writable.iter().cloned());
    let limits = Limits {
        timeout: plan.timeout_for(stream, task),
        idle: plan.idle_timeout_for(stream),
        grace: plan.grace,
    };
    let new_start = super::decide::needs_setup(state, s, t, start);
    let setup_log = ctx.run_dir.setup_log_path(&name);
    let include = new_start.then(|| IncludeJob::new(&ctx.repo, plan, setup_log.clone()));
    let setup = plan.setup_for(stream).filter(|_| new_start).map(|argv| {
        let timeout = plan.setup_timeout_for(stream);
        SetupJob::new(argv.to_vec(), env.clone(), setup_log, timeout, plan.grace)
    });
    Ok(Launch::Ready(Box::new(TaskJob {
        task: id,
        stream: name.clone(),
        branch: record.branch.clone(),
        commit_message: commit_message(&name, t, &spec.text),
        worktree,
        start: start.clone(),
        argv,
        env,
        log_path: ctx.run_dir.log_path(&name, t),
        limits,
        retries: plan.retries_for(stream),
        retry_on: plan.retry_on.clone(),
        retry_on_output: plan.retry_on_output.clone(),
        retry_backoff: plan.retry_backoff,
        identity_env: ctx.identity_env.clone(),
        refs: ctx.refs.clone(),
        previous_attempts: record.tasks[t].attempts,
        sandbox,
        preset,
        allow_empty: plan.allow_empty_for(stream, task),
        limit_wait: plan.limit_wait,
        kind,
        budget: task.budget.clone(),
        usage_file: Some(usage_file),
        setup,
        include,
        sparse: plan.sparse_set(s),
        prepared,
    })))
}

/// What the executor of a task whose agent is a preset's CLI needs: its home (created now, so
/// that the sandbox can grant it; seeded by the executor), where the user's own configuration
/// is, and what the session it continues had used. Adds the preset's environment to `env`.
fn preset_job(
    run: &Run,
    preset: &Preset,
    home: &std::path::Path,
    env: &mut Vec<(String, String)>,
    start: &AgentStart,
    resume: Option<String>,
    usage: &[AttemptUsage],
) -> PresetJob {
    let cli = preset.cli;
    // What the agent's environment says, then streams' own.
    let lookup = |name: &str| -> Option<String> {
        env.iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .or_else(|| std::env::var(name).ok())
    };
    let user_home = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(std::path::PathBuf::from);
    let user_config = agent::home::user_config_dir(cli, &lookup, user_home.as_deref());
    let auth_env: Vec<(String, String)> = [
        "GEMINI_API_KEY",
        "GOOGLE_API_KEY",
        "OPENAI_API_KEY",
        "CLAUDE_CONFIG_DIR",
    ]
    .iter()
    .filter_map(|name| lookup(name).map(|v| (name.to_string(), v)))
    .collect();
    let identity_missing = lookup("GIT_AUTHOR_NAME").is_none();
    if cli == Cli::Gemini && identity_missing {
        // Its shell tool hides the git configuration: its commits need the identity here.
        env.extend(git::commit::ident_vars(&run.ctx.repo));
    }
    env.extend(start.env.iter().cloned());
    // Created now: the sandbox grants existing paths only.
    for dir in std::iter::once(home).chain(start.writable.iter().map(|p| p.as_path())) {
        if !dir.starts_with("/dev") {
            let _ = std::fs::create_dir_all(dir);
        }
    }
    // For a CLI whose usage is the session's running total: what the session had used.
    let session_before = resume.map(|session| {
        let before = usage
            .iter()
            .rev()
            .filter(|u| u.session.as_deref() == Some(session.as_str()))
            .find_map(|u| u.reported.clone().or_else(|| u.usage.clone()))
            .unwrap_or_default();
        (session, before)
    });
    PresetJob {
        cli,
        home: home.to_path_buf(),
        user_config,
        user_home,
        auth_env,
        session_before,
    }
}

fn write_prompt(path: &std::path::Path, prompt: &str) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::io(format!("could not create {}", dir.display()), e))?;
    }
    std::fs::write(path, prompt)
        .map_err(|e| Error::io(format!("could not write the prompt {}", path.display()), e))
}

/// The environment of the agent of `task` (a check's too): identity, the
/// plan's `env`, and what streams tells it (`STREAMS_*`).
pub(super) fn agent_env(
    run: &Run,
    task: TaskId,
    text: &str,
    prompt_file: &str,
    worktree: &str,
) -> Vec<(String, String)> {
    let plan = &run.ctx.plan;
    let stream = &plan.streams[task.stream.index()];
    let mut env: Vec<(String, String)> = run.ctx.identity_env.clone();
    env.extend(plan.env_for(stream));
    let owns: Vec<&str> = stream.owns.iter().map(|p| p.text.as_str()).collect();
    let shared: Vec<&str> = plan.shared.iter().map(|p| p.text.as_str()).collect();
    env.extend(super::process::run_mark(
        &run.state.run_id,
        run.ctx.repo.common_dir(),
    ));
    env.extend(
        [
            ("STREAMS_PLAN", plan.name.clone()),
            ("STREAMS_STREAM", stream.name.clone()),
            ("STREAMS_TASK_INDEX", task.number().to_string()),
            // The kernel limits one environment string to 128 KiB; a long task is cut here
            // (the whole of it is in the prompt file).
            (
                "STREAMS_TASK",
                truncate_utf8(text, STREAMS_TASK_LIMIT).to_string(),
            ),
            ("STREAMS_PROMPT_FILE", prompt_file.to_string()),
            ("STREAMS_OWNS", owns.join("\n")),
            ("STREAMS_SHARED", shared.join("\n")),
            ("STREAMS_WORKTREE", worktree.to_string()),
            ("STREAMS_BASE", run.state.base.to_string()),
            (
                "STREAMS_INTEGRATION",
                crate::layout::short_branch(&run.state.integration_ref).to_string(),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v)),
    );
    env
}

/// What the stream's direct dependencies integrated, for its prompt.
fn dependency_work(run: &Run, s: usize) -> Vec<DependencyWork> {
    run.ctx.plan.streams[s]
        .depends_on
        .iter()
        .filter_map(|dep| {
            let (_, record) = run.state.stream_by_name(dep)?;
            let tasks = record.tasks.iter().map(|t| t.summary.clone()).collect();
            let first = record.tasks.first().and_then(|t| match &t.state {
                TaskState::Integrated { start, .. } | TaskState::Committed { start, .. } => {
                    Some(start.clone())
                }
                _ => None,
            });
            let last = record.tasks.last().and_then(|t| t.state.end().cloned());
            let (files, total_files) = match (first, last) {
                (Some(from), Some(to)) => {
                    git::changes::changed_files(&run.ctx.repo, &from, &to, 20).unwrap_or_default()
                }
                _ => (Vec::new(), 0),
            };
            Some(DependencyWork {
                stream: dep.clone(),
                tasks,
                files,
                total_files,
            })
        })
        .collect()
}

/// How much of a task's text goes into `STREAMS_TASK`.
const STREAMS_TASK_LIMIT: usize = 32 * 1024;

/// The longest prefix of `text` of at most `max` bytes that ends on a character boundary.
fn truncate_utf8(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// The commit message for what an agent left uncommitted.
fn commit_message(stream: &str, task: usize, text: &str) -> String {
    let first = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("(no task text)");
    let subject: String = if first.chars().count() > 72 {
        format!("{}...", first.chars().take(69).collect::<String>())
    } else {
        first.to_string()
    };
    let rest = text.trim();
    let body = if rest != subject {
        format!("\n{rest}\n")
    } else {
        String::new()
    };
    git::trailers::with_trailers(
        &format!("{subject}\n{body}"),
        &coordinator::trailers(stream, &[task]),
    )
}
