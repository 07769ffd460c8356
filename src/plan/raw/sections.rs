//! The walk over the document's tables: the top level, `[plan]`, each `[[stream]]` and its
//! tasks. Each key is handed to a reader in `values`.

use toml::de::{DeTable, DeValue};

use super::*;
use crate::plan::diagnostic::{Diagnostic, Span};
use crate::plan::model::{MergeStrategy, OnConflict, Prompt, SyncPoint};

impl Walker<'_> {
    pub(super) fn error(&mut self, diagnostic: Diagnostic) {
        self.local.push(diagnostic);
    }

    pub(super) fn file(&mut self, root: &DeTable<'_>) -> RawFile {
        let mut file = RawFile::default();
        for (key, value) in root.iter() {
            match key.get_ref().as_ref() {
                "plan" => file.plan_given = true,
                "stream" => file.streams_given = true,
                _ => {}
            }
            match key.get_ref().as_ref() {
                "plan" => match value.get_ref() {
                    DeValue::Table(table) => file.plan = Some(self.plan(table, value.span())),
                    other => self.error(
                        Diagnostic::error(format!(
                            "`plan` must be a table, found {}",
                            a_type(other)
                        ))
                        .at(key.span(), "expected a `[plan]` table")
                        .help("write the plan settings under a single `[plan]` header"),
                    ),
                },
                "stream" => match value.get_ref() {
                    DeValue::Array(items) => {
                        for item in items.iter() {
                            match item.get_ref() {
                                DeValue::Table(table) => {
                                    file.streams.push(self.stream(table, item.span()))
                                }
                                other => self.error(
                                    Diagnostic::error(format!(
                                        "each stream must be a table, found {}",
                                        a_type(other)
                                    ))
                                    .at(item.span(), "expected a table"),
                                ),
                            }
                        }
                    }
                    DeValue::Table(_) => self.error(
                        Diagnostic::error("`[stream]` must be written `[[stream]]`")
                            .at(value.span(), "a single table, not an array of tables")
                            .help("each stream is one `[[stream]]` table (double brackets)"),
                    ),
                    other => self.error(
                        Diagnostic::error(format!(
                            "`stream` must be an array of tables, found {}",
                            a_type(other)
                        ))
                        .at(value.span(), "expected `[[stream]]` tables"),
                    ),
                },
                "prices" => file.prices = self.prices((key, value)),
                _ => {
                    self.unknown_key((key, value), Place::Top);
                }
            }
        }
        file
    }

    /// Reports an unknown key; returns the known key it is probably a typo of.
    pub(super) fn unknown_key(
        &mut self,
        (key, _value): Entry<'_, '_>,
        place: Place,
    ) -> Option<&'static str> {
        let name = key.get_ref().as_ref();
        let mut diagnostic =
            Diagnostic::error(format!("unknown key `{name}` {}", place.describe()))
                .at(key.span(), "unknown key");
        let best = suggest(name, place.keys());
        let help = if let Some(best) = best {
            Some(format!("did you mean `{best}`?"))
        } else if place != Place::Plan && PLAN_KEYS.contains(&name) && place != Place::Top {
            Some(format!("`{name}` is a [plan] setting"))
        } else if place == Place::Plan && STREAM_KEYS.contains(&name) {
            Some(format!("`{name}` belongs in a [[stream]] table"))
        } else if place == Place::Task && STREAM_KEYS.contains(&name) {
            Some(format!(
                "keys after a `[[stream.task]]` header belong to that task: move `{name}` above the stream's first `[[stream.task]]`"
            ))
        } else if place == Place::Top && (PLAN_KEYS.contains(&name) || STREAM_KEYS.contains(&name))
        {
            Some(format!(
                "keys before the first header are outside any table: put `{name}` under `[plan]` or `[[stream]]`"
            ))
        } else {
            Some(format!("expected one of: {}", place.keys().join(", ")))
        };
        if let Some(help) = help {
            diagnostic = diagnostic.help(help);
        }
        self.error(diagnostic);
        best
    }

    pub(super) fn plan(&mut self, table: &DeTable<'_>, header: Span) -> RawPlan {
        let mut plan = RawPlan {
            header,
            ..RawPlan::default()
        };
        for entry in table.iter() {
            let (key, _) = entry;
            let name = key.get_ref().as_ref();
            if let Some(known) = PLAN_KEYS.iter().find(|k| **k == name) {
                plan.present.push(known);
            }
            match name {
                "name" => plan.name = self.string(entry),
                "base" => plan.base = self.string(entry),
                "jobs" => {
                    plan.jobs = self
                        .integer(entry, 1, i64::from(u16::MAX))
                        .map(|n| n as usize)
                }
                "merge" => {
                    plan.merge = self.choice(entry, &["rebase", "merge", "squash"]).map(|i| {
                        [
                            MergeStrategy::Rebase,
                            MergeStrategy::Merge,
                            MergeStrategy::Squash,
                        ][i]
                    })
                }
                "sync" => {
                    plan.sync = self
                        .choice(entry, &["task", "stream"])
                        .map(|i| [SyncPoint::Task, SyncPoint::Stream][i])
                }
                "shared" => plan.shared = self.string_array(entry).unwrap_or_default(),
                "grace" => plan.grace = self.duration(entry, true),
                "retry_on" => (plan.retry_on, plan.retry_on_output) = self.retry_on(entry),
                "retry_backoff" => plan.retry_backoff = self.duration(entry, true),
                "limit_wait" => plan.limit_wait = self.duration(entry, true),
                "worktree_root" => {
                    plan.worktree_root = self.string(entry).and_then(|s| {
                        if s.value.is_empty() {
                            self.error(
                                Diagnostic::error("`worktree_root` is empty")
                                    .at(s.span, "expected a directory"),
                            );
                            None
                        } else {
                            Some(s)
                        }
                    })
                }
                "gate" => plan.gate = self.command(entry),
                "gate_batch" => {
                    plan.gate_batch = self.integer(entry, 1, 10_000).map(|n| n as usize)
                }
                "gate_retries" => plan.gate_retries = self.integer(entry, 0, 10).map(|n| n as u32),
                "on_conflict" => {
                    plan.on_conflict = self
                        .choice(entry, &["park", "stop"])
                        .map(|i| [OnConflict::Park, OnConflict::Stop][i])
                }
                "resolve" => {
                    if let Some((resolver, program)) = self.resolver(entry) {
                        plan.resolve = Some(resolver);
                        plan.resolve_program = Some(program);
                    }
                }
                "resolve_margin" => {
                    plan.resolve_margin = self.integer(entry, 0, 1000).map(|n| n as usize)
                }
                "notify" => plan.notify = self.command(entry),
                "notify_timeout" => plan.notify_timeout = self.duration(entry, false),
                "ports" => plan.ports = self.ports(entry),
                "budget" => plan.budget = self.budget(entry),
                "limits" => plan.limits = self.limits(entry),
                "include" => {
                    plan.include = self
                        .string_array(entry)
                        .unwrap_or_default()
                        .into_iter()
                        .map(|p| p.value)
                        .collect()
                }
                _ if self.setting(entry, &mut plan.settings) => {}
                _ => {
                    if let Some(meant) = self.unknown_key(entry, Place::Plan) {
                        plan.present.push(meant);
                    }
                }
            }
        }
        if !plan.present.contains(&"name") {
            self.missing.push(
                Diagnostic::error("[plan] has no `name`")
                    .at(plan.header.clone(), "`name` is required here")
                    .help("add `name = \"...\"`: it names the run's branches, `streams/<name>/<stream>`"),
            );
        }
        plan
    }

    /// Reads `entry` into `settings` when it is one of the keys `[plan]` and `[[stream]]` both
    /// take; false when it is not.
    fn setting(&mut self, entry: Entry<'_, '_>, settings: &mut RawSettings) -> bool {
        match entry.0.get_ref().as_ref() {
            "agent" => (settings.agent, settings.agent_program) = self.agent(entry).unzip(),
            "reads" => settings.reads = self.string_array(entry).unwrap_or_default(),
            "timeout" => settings.timeout = self.duration(entry, false),
            "idle_timeout" => settings.idle_timeout = self.duration(entry, false),
            "retries" => settings.retries = self.integer(entry, 0, 100).map(|n| n as u32),
            "env" => settings.env = self.env(entry),
            "check" => settings.check = self.command(entry),
            "check_timeout" => settings.check_timeout = self.duration(entry, false),
            "check_retries" => {
                settings.check_retries = self.integer(entry, 0, 100).map(|n| n as u32)
            }
            "sandbox" => settings.sandbox = self.sandbox(entry),
            "sandbox_writable" => settings.sandbox_writable = self.writable_paths(entry),
            "setup" => settings.setup = self.setup(entry),
            "setup_timeout" => settings.setup_timeout = self.duration(entry, false),
            "allow_empty" => settings.allow_empty = self.boolean(entry),
            _ => return false,
        }
        true
    }

    pub(super) fn stream(&mut self, table: &DeTable<'_>, header: Span) -> RawStream {
        let mut stream = RawStream {
            header,
            ..RawStream::default()
        };
        // Where `tasks = [...]` was written, to point at it when the stream ends up with none.
        let mut tasks_span = None;
        for entry in table.iter() {
            let (key, value) = entry;
            let name = key.get_ref().as_ref();
            if let Some(known) = STREAM_KEYS.iter().find(|k| **k == name) {
                stream.present.push(known);
            }
            match name {
                "name" => stream.name = self.string(entry),
                "owns" => {
                    if let Some(items) = self.string_array(entry) {
                        if items.is_empty() {
                            self.error(
                                Diagnostic::error("`owns` is empty: a stream must own something")
                                    .at(value.span(), "no patterns")
                                    .help("list the paths this stream may change, e.g. `owns = [\"src/api/**\"]`"),
                            );
                        }
                        stream.owns = Some(Sp {
                            value: items,
                            span: value.span(),
                        });
                    }
                }
                "depends_on" => stream.depends_on = self.string_array(entry).unwrap_or_default(),
                "tasks" => {
                    if let Some(span) = self.task_list(entry, &mut stream.tasks) {
                        tasks_span = Some(span);
                    }
                }
                "task" => self.task_tables(entry, &mut stream.tasks),
                "priority" => {
                    stream.priority = self.integer(entry, -1_000_000, 1_000_000).unwrap_or(0)
                }
                "estimate" => stream.estimate = self.estimate(entry),
                "group" => stream.group = self.string(entry),
                "budget" => stream.budget = self.budget(entry),
                _ if self.setting(entry, &mut stream.settings) => {}
                _ => {
                    if let Some(meant) = self.unknown_key(entry, Place::Stream) {
                        stream.present.push(meant);
                    }
                }
            }
        }
        // Tasks in the order they were written, whichever syntax was used.
        stream.tasks.sort_by_key(|t| t.span.start);
        let missing = |key: &str| !stream.present.contains(&key);
        if missing("name") {
            self.missing.push(
                Diagnostic::error("stream has no `name`")
                    .at(stream.header.clone(), "`name` is required here")
                    .help("add `name = \"...\"`; it names the stream's branch"),
            );
        }
        if missing("owns") {
            self.missing.push(
                Diagnostic::error(format!(
                    "{} has no `owns`: a stream must own something",
                    describe_stream(&stream)
                ))
                .at(stream.header.clone(), "`owns` is required here")
                .help("list the paths this stream may change, e.g. `owns = [\"src/api/**\"]`"),
            );
        }
        if let (Some(span), true) = (tasks_span, stream.tasks.is_empty()) {
            // An empty stream would be integrated without doing anything, and the schedule
            // would count it as negative work.
            self.error(
                Diagnostic::error(format!("{} has no tasks", describe_stream(&stream)))
                    .at(span, "no tasks in this list")
                    .help(
                        "add at least one prompt, e.g. `tasks = [\"...\"]`, or remove the stream",
                    ),
            );
        }
        if missing("tasks") && missing("task") {
            self.missing.push(
                Diagnostic::error(format!("{} has no tasks", describe_stream(&stream)))
                    .at(stream.header.clone(), "no `tasks` in this stream")
                    .help("add `tasks = [\"...\"]` or `[[stream.task]]` tables: each task is one run of the agent"),
            );
        }
        stream
    }

    /// `tasks = [...]`: each a prompt, or a table like `[[stream.task]]`. The list's span when it
    /// is one.
    fn task_list(&mut self, entry: Entry<'_, '_>, tasks: &mut Vec<RawTask>) -> Option<Span> {
        let (_, value) = entry;
        let DeValue::Array(items) = value.get_ref() else {
            self.wrong_type(entry, "an array of prompts", value.get_ref());
            return None;
        };
        for item in items.iter() {
            match item.get_ref() {
                DeValue::String(text) => {
                    if text.trim().is_empty() {
                        self.error(
                            Diagnostic::error("empty task").at(item.span(), "this prompt is empty"),
                        );
                    }
                    let mut task = RawTask::at(item.span());
                    task.prompt = Some(Prompt::Text(text.to_string()));
                    tasks.push(task);
                }
                DeValue::Table(table) => tasks.push(self.task(table, item.span())),
                other => self.error(
                    Diagnostic::error(format!(
                        "wrong type for a task: expected a string or a table, found {}",
                        a_type(other)
                    ))
                    .at(item.span(), "expected a prompt string"),
                ),
            }
        }
        Some(value.span())
    }

    /// `[[stream.task]]` tables.
    fn task_tables(&mut self, entry: Entry<'_, '_>, tasks: &mut Vec<RawTask>) {
        let (_, value) = entry;
        match value.get_ref() {
            DeValue::Array(items) => {
                for item in items.iter() {
                    match item.get_ref() {
                        DeValue::Table(table) => tasks.push(self.task(table, item.span())),
                        other => self.error(
                            Diagnostic::error(format!(
                                "wrong type for a task: expected a table, found {}",
                                a_type(other)
                            ))
                            .at(item.span(), "expected a table"),
                        ),
                    }
                }
            }
            DeValue::Table(_) => self.error(
                Diagnostic::error("`[stream.task]` must be written `[[stream.task]]`")
                    .at(value.span(), "a single table, not an array of tables"),
            ),
            other => self.wrong_type(entry, "`[[stream.task]]` tables", other),
        }
    }

    pub(super) fn task(&mut self, table: &DeTable<'_>, span: Span) -> RawTask {
        let mut task = RawTask::at(span.clone());
        let mut prompt: Option<Sp<String>> = None;
        let mut present = Vec::new();
        for entry in table.iter() {
            let (key, _) = entry;
            let name = key.get_ref().as_ref();
            present.push(name.to_string());
            match name {
                "prompt" => {
                    prompt = self.string(entry);
                    if let Some(p) = &prompt
                        && p.value.trim().is_empty()
                    {
                        self.error(
                            Diagnostic::error("empty task")
                                .at(p.span.clone(), "this prompt is empty"),
                        );
                    }
                }
                "prompt_file" => {
                    task.prompt_file = self.string(entry);
                    if let Some(p) = &task.prompt_file
                        && p.value.is_empty()
                    {
                        self.error(
                            Diagnostic::error("`prompt_file` is empty")
                                .at(p.span.clone(), "expected a file name"),
                        );
                    }
                }
                "agent" => {
                    task.agent_given = true;
                    (task.agent, task.agent_program) = self.agent(entry).unzip();
                }
                "timeout" => task.timeout = self.duration(entry, false),
                "estimate" => task.estimate = self.estimate(entry),
                "group" => task.group = self.string(entry),
                "allow_empty" => task.allow_empty = self.boolean(entry),
                "budget" => task.budget = self.budget(entry),
                _ => {
                    if let Some(meant) = self.unknown_key(entry, Place::Task) {
                        present.push(meant.to_string());
                    }
                }
            }
        }
        let has = |key: &str| present.iter().any(|k| k == key);
        match (has("prompt"), has("prompt_file")) {
            (true, true) => {
                let at = task.prompt_file.as_ref().map(|p| p.span.clone()).unwrap_or(span);
                self.error(
                    Diagnostic::error("a task has both `prompt` and `prompt_file`")
                        .at(at, "remove one of the two")
                        .help("a task's prompt is either written inline or read from a file"),
                );
            }
            (false, false) => self.missing.push(
                Diagnostic::error("task has no prompt")
                    .at(span, "this task has neither `prompt` nor `prompt_file`")
                    .help("add `prompt = \"...\"`, or `prompt_file = \"...\"` (relative to the plan file)"),
            ),
            _ => {}
        }
        task.prompt = match (prompt, &task.prompt_file) {
            (Some(p), _) => Some(Prompt::Text(p.value)),
            (None, Some(f)) => Some(Prompt::File(f.value.clone().into())),
            _ => None,
        };
        task
    }
}
