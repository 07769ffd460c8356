//! Starting a task: its spec (prompt and argv), its environment and limits, recorded as running
//! before its executor is spawned.

use super::dispatcher::Engine;
use super::include::IncludeJob;
use super::process::Limits;
use super::prompt::{self, DependencyWork};
use super::setup::SetupJob;
use super::task::{self, TaskJob};
use super::task_spec::TaskSpec;
use crate::coordinator;
use crate::error::{Error, Result};
use crate::failpoint;
use crate::git;
use crate::report::Event;
use crate::state::{FailReason, TaskState, now_ms};

impl Engine {
    pub(super) fn start_task(&mut self, s: usize, t: usize, start: git::Oid) -> Result<()> {
        self.start_task_in(s, t, start, None)
    }

    /// [`Self::start_task`]; `prepared`: the commit its workspace was prepared at ahead.
    pub(super) fn start_task_in(
        &mut self,
        s: usize,
        t: usize,
        start: git::Oid,
        prepared: Option<git::Oid>,
    ) -> Result<()> {
        let plan = self.plan.clone();
        let stream = &plan.streams[s];
        let task = &stream.tasks[t];
        let record = &self.state.streams[s];
        let name = record.name.clone();
        let worktree = record.worktree.clone();
        let attempts = record.tasks[t].attempts;

        let Some(agent) = plan.agent_for(stream, task) else {
            self.task_failed(
                s,
                t,
                FailReason::Spawn {
                    message:
                        "no agent command: set `agent` in [plan], on the stream or on the task"
                            .into(),
                },
            );
            return Ok(());
        };
        // A prompt file is read from the copy taken when the run started, so a checkout
        // switching branches (or an edit) mid-run changes nothing.
        let copy = self.run_dir.prompt_source_path(&name, t);
        let text = match std::fs::read_to_string(&copy)
            .map_err(|_| ())
            .or_else(|()| prompt::task_text(&self.plan_dir, &task.prompt))
        {
            Ok(text) => text,
            Err(message) => {
                self.task_failed(s, t, FailReason::Spawn { message });
                return Ok(());
            }
        };
        // The slot is held for the stream's life, so every task of it gets the same port.
        let slot = super::decide::slot_for(&self.state, &self.slots, s);
        self.slots[s] = Some(slot);
        let Some(port) = plan.ports.for_slot(slot) else {
            let message = format!(
                "slot {slot} has no port below 65536 (`ports = {{ base = {}, per_slot = {} }}`): lower `base` or `per_slot`",
                plan.ports.base, plan.ports.per_slot
            );
            self.task_failed(s, t, FailReason::Spawn { message });
            return Ok(());
        };
        let deps = self.dependency_work(s);
        let prompt_path = self.run_dir.prompt_path(&name, t);
        let fixing = self.check_failure(s, t);
        let text = match &fixing {
            Some((failure, _, _)) => format!("{text}{failure}"),
            None => text,
        };
        let mut spec =
            TaskSpec::new(&plan, s, t, text, &deps, &prompt_path, &worktree).in_slot(slot, port);
        if let Some((_, output, file)) = fixing {
            spec.check_output = output;
            spec.check_output_file = file;
        }
        if let Some(dir) = prompt_path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| Error::io(format!("could not create {}", dir.display()), e))?;
        }
        std::fs::write(&prompt_path, &spec.prompt).map_err(|e| {
            Error::io(
                format!("could not write the prompt {}", prompt_path.display()),
                e,
            )
        })?;

        let argv = spec.argv(agent);
        let mut env = self.agent_env(s, t, &spec.text, &spec.prompt_file, &spec.worktree);
        env.extend([
            ("STREAMS_SLOT".to_string(), slot.to_string()),
            ("STREAMS_PORT".to_string(), port.to_string()),
        ]);
        let limits = Limits {
            timeout: plan.timeout_for(stream, task),
            idle: plan.idle_timeout_for(stream),
            grace: plan.grace,
        };
        let new_start = super::decide::needs_setup(&self.state, s, t, &start);
        let setup_log = self.run_dir.setup_log_path(&name);
        let include = new_start.then(|| IncludeJob::new(&self.repo, &plan, setup_log.clone()));
        let setup = plan.setup_for(stream).filter(|_| new_start).map(|argv| {
            let timeout = plan.setup_timeout_for(stream);
            SetupJob::new(argv.to_vec(), env.clone(), setup_log, timeout, plan.grace)
        });
        let commit_message = commit_message(&name, t, &spec.text);
        let job = TaskJob {
            stream_index: s,
            task_index: t,
            stream: name.clone(),
            branch: self.state.streams[s].branch.clone(),
            worktree,
            start: start.clone(),
            argv,
            env,
            log_path: self.run_dir.log_path(&name, t),
            limits,
            retries: plan.retries_for(stream),
            retry_on: plan.retry_on.clone(),
            retry_on_output: plan.retry_on_output.clone(),
            retry_backoff: plan.retry_backoff,
            commit_message,
            identity_env: self.identity_env.clone(),
            refs: self.refs.clone(),
            lock_reason: format!("streams run {}", self.state.run_id),
            previous_attempts: attempts,
            sandbox: super::sandbox::Spec::new(&plan, stream, self.run_dir.tmp_path(&name, t)),
            setup,
            include,
            sparse: plan.sparse_set(s),
            prepared,
        };

        // Intent first: the task is recorded as running (with its start) before anything runs.
        self.state.streams[s].tasks[t].state = TaskState::Running {
            start,
            started_at: now_ms(),
            pgid: None,
        };
        self.save()?;
        failpoint::hit("task-recorded");
        let event = Event::TaskStarted {
            stream: name,
            task: t + 1,
            tasks: stream.tasks.len(),
            attempt: attempts + 1,
            summary: self.state.streams[s].tasks[t].summary.clone(),
        };
        self.emit(event);
        self.running += 1;
        tokio::spawn(task::run_task(
            self.shared.clone(),
            job,
            self.events_tx.clone(),
            self.cancel.subscribe(),
        ));
        Ok(())
    }

    pub(super) fn agent_env(
        &self,
        s: usize,
        t: usize,
        text: &str,
        prompt_file: &str,
        worktree: &str,
    ) -> Vec<(String, String)> {
        let plan = &self.plan;
        let stream = &plan.streams[s];
        let mut env: Vec<(String, String)> = self.identity_env.clone();
        env.extend(plan.env_for(stream));
        let owns: Vec<&str> = stream.owns.iter().map(|p| p.text.as_str()).collect();
        let shared: Vec<&str> = plan.shared.iter().map(|p| p.text.as_str()).collect();
        env.extend(
            [
                ("STREAMS_RUN_ID", self.state.run_id.clone()),
                ("STREAMS_PLAN", plan.name.clone()),
                ("STREAMS_STREAM", stream.name.clone()),
                ("STREAMS_TASK_INDEX", (t + 1).to_string()),
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
                ("STREAMS_BASE", self.state.base.to_string()),
                (
                    "STREAMS_INTEGRATION",
                    crate::layout::short_branch(&self.state.integration_ref).to_string(),
                ),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v)),
        );
        env
    }

    /// What the stream's direct dependencies integrated, for its prompt.
    pub(super) fn dependency_work(&self, s: usize) -> Vec<DependencyWork> {
        self.plan.streams[s]
            .depends_on
            .iter()
            .filter_map(|dep| {
                let (_, record) = self.state.stream_by_name(dep)?;
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
                        git::changes::changed_files(&self.repo, &from, &to, 20).unwrap_or_default()
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
