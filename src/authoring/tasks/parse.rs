//! Reading a task list: Markdown checklists (spec-kit's `tasks.md` and plain ones) and JSON.
//!
//! Markdown: every `- [ ]` line (also `*`, `+`, `1.`) is a task; `- [x]` lines are done and
//! left out (their ids still satisfy dependencies). The first word is the task's id when it
//! looks like one (`T012`, `T-3`, `12`, `1.2`). `[P]` marks a task that may run in parallel;
//! `[P0]`..`[P3]` or `Priority: P1` give its priority (a phase heading's `(Priority: P1)` gives
//! it to the phase's tasks). `## Phase N: ...` headings set the phase; any other level-2
//! heading ends it. Indented lines below a task continue it. Lines inside code fences, HTML
//! comments and front matter are not tasks.
//!
//! Files: a backticked path is taken as written (it may be a file a task creates); a bare word
//! is a path when it is tracked at `base`, or when its directory is. A directory is named with a
//! trailing `/` or by naming one that exists. Dependencies: `depends on`, `after` or
//! `blocked by` followed by ids (`depends on T010, T011`); in JSON, `depends_on`.

use std::collections::{HashMap, HashSet};

use serde_json::Value;

use super::{Location, Phase, Problem, RepoView, Task};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Markdown,
    Json,
}

impl Format {
    /// JSON when the file name ends in `.json` or the text starts with `[` or `{`.
    pub fn detect(file_name: &str, text: &str) -> Format {
        let starts_json = matches!(text.trim_start().chars().next(), Some('[' | '{'));
        if file_name.to_ascii_lowercase().ends_with(".json") || starts_json {
            Format::Json
        } else {
            Format::Markdown
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct TaskList {
    /// The list's `# Title` (without a `Tasks:` prefix), or a JSON `title`.
    pub title: Option<String>,
    pub phases: Vec<Phase>,
    /// In list order.
    pub tasks: Vec<Task>,
    /// Ids of the tasks already checked off.
    pub done: Vec<String>,
}

pub fn parse(text: &str, format: Format, view: &RepoView) -> Result<TaskList, Vec<Problem>> {
    let (list, mut problems) = match format {
        Format::Markdown => parse_markdown(text, view),
        Format::Json => parse_json(text, view),
    };
    if problems.is_empty() && list.tasks.is_empty() {
        let what = match format {
            Format::Markdown => {
                "no tasks found: a task is a checklist line such as `- [ ] T001 Create src/app.py`"
            }
            Format::Json => "no tasks found: the list is empty",
        };
        problems.push(Problem::new(Location::Input, what));
    }
    let list = resolve(list, &mut problems);
    if problems.is_empty() {
        Ok(list)
    } else {
        problems.sort_by_key(|p| p.at);
        Err(problems)
    }
}

/// Checks ids: each defined once, every reference defined. Numeric references are kept only
/// when the list numbers its tasks (else `after 5 minutes` would name task 5).
fn resolve(mut list: TaskList, problems: &mut Vec<Problem>) -> TaskList {
    let mut first: HashMap<String, Location> = HashMap::new();
    for task in &list.tasks {
        if let Some(at) = first.get(&task.id) {
            problems.push(Problem::new(
                task.at,
                format!("{} is defined twice (first at {at})", task.id),
            ));
        } else {
            first.insert(task.id.clone(), task.at);
        }
    }
    let numbered = list.tasks.iter().any(|t| is_numeric(&t.id));
    let done: HashSet<&String> = list.done.iter().collect();
    for task in &mut list.tasks {
        task.depends_on.retain(|r| numbered || !is_numeric(r));
        let mut seen = HashSet::new();
        task.depends_on.retain(|r| seen.insert(r.clone()));
        if task.depends_on.contains(&task.id) {
            problems.push(Problem::new(
                task.at,
                format!("{} depends on itself", task.id),
            ));
        }
        let missing: Vec<&str> = task
            .depends_on
            .iter()
            .filter(|r| !first.contains_key(*r) && !done.contains(r))
            .map(String::as_str)
            .collect();
        if !missing.is_empty() {
            problems.push(Problem::new(
                task.at,
                format!(
                    "{} depends on {}, which no task defines",
                    task.id,
                    join_and(&missing)
                ),
            ));
        }
        // Done tasks are satisfied already.
        task.depends_on.retain(|r| !done.contains(r));
    }
    list
}

pub(crate) fn join_and(items: &[&str]) -> String {
    match items {
        [] => String::new(),
        [one] => one.to_string(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

// ---------------------------------------------------------------------------------------------
// Markdown

fn parse_markdown(text: &str, view: &RepoView) -> (TaskList, Vec<Problem>) {
    let mut list = TaskList::default();
    let problems = Vec::new();
    let mut fence: Option<&str> = None;
    let mut in_comment = false;
    let mut front_matter = text.starts_with("---");
    let mut phase: Option<usize> = None;
    // The task that indented lines below continue, and its indentation.
    let mut open: Option<(usize, usize)> = None;
    for (i, line) in text.lines().enumerate() {
        let number = i + 1;
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        if front_matter {
            if number > 1 && line.trim() == "---" {
                front_matter = false;
            }
            continue;
        }
        if in_comment {
            in_comment = !line.contains("-->");
            continue;
        }
        if let Some(marker) = fence {
            if trimmed.starts_with(marker) {
                fence = None;
            }
            continue;
        }
        if trimmed.starts_with("<!--") {
            in_comment = !trimmed.contains("-->");
            open = None;
            continue;
        }
        if let Some(marker) = ["```", "~~~"].into_iter().find(|m| trimmed.starts_with(m)) {
            fence = Some(marker);
            open = None;
            continue;
        }
        if let Some((level, title)) = heading(trimmed) {
            open = None;
            if level == 1 {
                if list.title.is_none() {
                    let title = title
                        .strip_prefix("Tasks:")
                        .or_else(|| title.strip_prefix("tasks:"))
                        .unwrap_or(title);
                    list.title = Some(title.trim().to_string());
                }
            } else if is_phase_heading(title) {
                list.phases.push(Phase {
                    title: title.to_string(),
                    priority: priority_in(title),
                });
                phase = Some(list.phases.len() - 1);
            } else if level == 2 {
                phase = None;
            }
            continue;
        }
        if let Some((checked, rest)) = checkbox(trimmed) {
            open = None;
            let (id, _) = leading_id(rest);
            if checked {
                if let Some(id) = id {
                    list.done.push(id);
                }
                continue;
            }
            let position = list.tasks.len() + 1;
            let mut task = Task {
                id: id.unwrap_or_else(|| format!("task {position}")),
                at: Location::Line(number),
                text: rest.trim().to_string(),
                phase,
                parallel: false,
                priority: None,
                files: Vec::new(),
                depends_on: Vec::new(),
            };
            read_markers(&mut task, rest);
            if task.priority.is_none() {
                task.priority = phase.and_then(|p| list.phases[p].priority);
            }
            add_files(&mut task.files, rest, view);
            task.depends_on = references(rest);
            list.tasks.push(task);
            open = Some((list.tasks.len() - 1, indent));
            continue;
        }
        match open {
            Some((task, task_indent)) if indent > task_indent && !trimmed.is_empty() => {
                let task = &mut list.tasks[task];
                task.text.push('\n');
                task.text.push_str(trimmed);
                add_files(&mut task.files, trimmed, view);
                task.depends_on.extend(references(trimmed));
            }
            _ => open = None,
        }
    }
    (list, problems)
}

/// `## Title` -> (2, "Title").
fn heading(line: &str) -> Option<(usize, &str)> {
    let level = line.chars().take_while(|&c| c == '#').count();
    if level == 0 || level > 6 {
        return None;
    }
    let rest = &line[level..];
    if !rest.is_empty() && !rest.starts_with(' ') {
        return None;
    }
    Some((level, rest.trim().trim_end_matches('#').trim()))
}

fn is_phase_heading(title: &str) -> bool {
    let lower = title.to_ascii_lowercase();
    lower.starts_with("phase ") || lower.starts_with("phase:")
}

/// `- [ ] rest` / `* [x] rest` / `1. [ ] rest` -> (checked, rest).
fn checkbox(line: &str) -> Option<(bool, &str)> {
    let after_marker = if let Some(rest) = line
        .strip_prefix("- ")
        .or_else(|| line.strip_prefix("* "))
        .or_else(|| line.strip_prefix("+ "))
    {
        rest
    } else {
        let digits = line.chars().take_while(char::is_ascii_digit).count();
        let rest = &line[digits..];
        if digits == 0 {
            return None;
        }
        rest.strip_prefix(". ")
            .or_else(|| rest.strip_prefix(") "))?
    };
    let after_marker = after_marker.trim_start();
    let (checked, rest) = if let Some(rest) = after_marker.strip_prefix("[ ]") {
        (false, rest)
    } else if let Some(rest) = after_marker
        .strip_prefix("[x]")
        .or_else(|| after_marker.strip_prefix("[X]"))
    {
        (true, rest)
    } else {
        return None;
    };
    if !rest.is_empty() && !rest.starts_with(char::is_whitespace) {
        return None;
    }
    Some((checked, rest.trim()))
}

/// The task's id when its first word looks like one.
fn leading_id(rest: &str) -> (Option<String>, &str) {
    let Some(first) = rest.split_whitespace().next() else {
        return (None, rest);
    };
    let candidate = first.trim_end_matches([':', '.', ')']);
    if is_id(candidate) && !is_priority(candidate) {
        (Some(candidate.to_string()), &rest[first.len()..])
    } else {
        (None, rest)
    }
}

/// `T012`, `T-3`, `TASK12`, `12`, `1.2`.
fn is_id(word: &str) -> bool {
    if is_numeric(word) {
        return true;
    }
    let letters = word.chars().take_while(char::is_ascii_alphabetic).count();
    if letters == 0 || letters > 10 {
        return false;
    }
    let rest = &word[letters..];
    let rest = rest.strip_prefix('-').unwrap_or(rest);
    is_numeric(rest)
}

/// `12`, `1.2`.
fn is_numeric(word: &str) -> bool {
    !word.is_empty()
        && word
            .split('.')
            .all(|part| !part.is_empty() && part.chars().all(|c| c.is_ascii_digit()))
}

fn is_priority(word: &str) -> bool {
    priority_of(word).is_some()
}

/// `P0`..`P3` -> 0..3.
fn priority_of(word: &str) -> Option<u8> {
    let digit = word.strip_prefix(['P', 'p'])?;
    match digit {
        "0" => Some(0),
        "1" => Some(1),
        "2" => Some(2),
        "3" => Some(3),
        _ => None,
    }
}

/// A `(Priority: P1)`, `[P1]` or `Priority P1` anywhere in `text`.
fn priority_in(text: &str) -> Option<u8> {
    let words: Vec<&str> = text.split_whitespace().collect();
    for (i, word) in words.iter().enumerate() {
        let inner = word.trim_matches(['[', ']', '(', ')', ',', '.', ';']);
        if (word.starts_with('[') || word.starts_with('(')) && word.len() == inner.len() + 2 {
            if let Some(p) = priority_of(inner) {
                return Some(p);
            }
        }
        let lower = inner.to_ascii_lowercase();
        if (lower == "priority" || lower == "priority:")
            && let Some(next) = words.get(i + 1)
            && let Some(p) = priority_of(next.trim_matches(['[', ']', '(', ')', ',', '.', ';']))
        {
            return Some(p);
        }
    }
    None
}

fn read_markers(task: &mut Task, rest: &str) {
    for word in rest.split_whitespace() {
        if word == "[P]" || word == "(P)" {
            task.parallel = true;
        }
    }
    task.priority = priority_in(rest);
}

// ---------------------------------------------------------------------------------------------
// Files

/// Adds the paths `text` names, in order, without repeats.
fn add_files(files: &mut Vec<String>, text: &str, view: &RepoView) {
    for (k, part) in text.split('`').enumerate() {
        // Odd parts are inside backticks (an unclosed one at the end is not a code span).
        let quoted = k % 2 == 1 && text.split('`').count() > k + 1;
        let candidates: Vec<&str> = if quoted {
            vec![part.trim()]
        } else {
            part.split_whitespace().collect()
        };
        for raw in candidates {
            if let Some(path) = path_in(raw, quoted, view)
                && !files.contains(&path)
            {
                files.push(path);
            }
        }
    }
}

/// The path `raw` names, normalised (`dir/` for a directory), if it names one.
fn path_in(raw: &str, quoted: bool, view: &RepoView) -> Option<String> {
    let mut word = raw;
    if !quoted {
        word = word.trim_matches(|c: char| "()[]{},;:\"'*_<>!?".contains(c));
        word = word.trim_end_matches('.');
    }
    if word.is_empty()
        || word.contains("://")
        || word.starts_with(['-', '$', '@', '~'])
        || word
            .chars()
            .any(|c| c.is_whitespace() || "*?[]{}<>|\"'()=,;`\\".contains(c))
    {
        return None;
    }
    let word = word.strip_prefix("./").unwrap_or(word);
    let word = word.trim_start_matches('/');
    let (is_dir_ref, path) = inside_path(word)?;
    if view.is_file(path) {
        return Some(path.to_string());
    }
    // A bare `tests` or `docs` is a word more often than a directory: bare, a directory needs
    // a `/` (`docs/`, `src/api`).
    if view.is_dir(path) && (quoted || word.contains('/')) {
        return Some(format!("{path}/"));
    }
    let parent = path.rsplit_once('/').map(|(p, _)| p);
    if is_dir_ref {
        return (quoted || parent.is_some_and(|p| below_a_directory(p, view)))
            .then(|| format!("{path}/"));
    }
    let name = path.rsplit('/').next().unwrap_or(path);
    // A file that does not exist yet: only with an extension (`user.py`, not `and/or`), and
    // only in backticks or in a directory that exists (a bare `e.g` is not a file).
    let extension = name.rsplit_once('.');
    let looks_like_file = extension.is_some_and(|(stem, ext)| {
        !stem.is_empty()
            && !ext.is_empty()
            && ext.len() <= 10
            && ext.chars().all(|c| c.is_ascii_alphanumeric())
            && ext.chars().any(|c| c.is_ascii_alphabetic())
    });
    if !looks_like_file {
        return None;
    }
    match parent {
        Some(parent) => (quoted || below_a_directory(parent, view)).then(|| path.to_string()),
        None => quoted.then(|| path.to_string()),
    }
}

/// Whether `dir` or a directory above it (not the top) exists: a task list written before
/// the code names new directories (`src/auth/hashing.py` in a repository with only `src/`).
fn below_a_directory(dir: &str, view: &RepoView) -> bool {
    let mut at = dir;
    loop {
        if view.is_dir(at) {
            return true;
        }
        match at.rsplit_once('/') {
            Some((parent, _)) => at = parent,
            None => return false,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Dependencies

/// Ids after `depends on`, `after` or `blocked by`, separated by commas, `and`, `&`.
fn references(text: &str) -> Vec<String> {
    let words: Vec<&str> = text.split_whitespace().collect();
    let clean = |w: &str| {
        w.trim_matches(|c: char| "()[],;:".contains(c))
            .trim_end_matches('.')
            .to_string()
    };
    let lower: Vec<String> = words.iter().map(|w| clean(w).to_lowercase()).collect();
    let mut out = Vec::new();
    for i in 0..words.len() {
        let start = match lower[i].as_str() {
            "after" => i + 1,
            "depends" | "depend" if lower.get(i + 1).is_some_and(|w| w == "on") => i + 2,
            "blocked" if lower.get(i + 1).is_some_and(|w| w == "by") => i + 2,
            _ => continue,
        };
        let mut j = start;
        if lower.get(j).is_some_and(|w| w == "task" || w == "tasks") {
            j += 1;
        }
        while let Some(word) = words.get(j) {
            let id = clean(word);
            if matches!(lower[j].as_str(), "and" | "&" | "or" | "") {
                j += 1;
                continue;
            }
            if !is_id(&id) || is_priority(&id) {
                break;
            }
            out.push(id);
            // A `)` or `.` ends the phrase: `(depends on T012) after review`.
            if word.ends_with([')', '.', ';']) {
                break;
            }
            j += 1;
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// JSON

const JSON_TASK_KEYS: &str = "id, text, files, depends_on, phase, parallel, priority";

fn parse_json(text: &str, view: &RepoView) -> (TaskList, Vec<Problem>) {
    let mut list = TaskList::default();
    let mut problems = Vec::new();
    let value: Value = match serde_json::from_str(text) {
        Ok(value) => value,
        Err(err) => {
            problems.push(Problem::new(
                Location::Line(err.line()),
                format!("not valid JSON: {err}"),
            ));
            return (list, problems);
        }
    };
    let Some(items) = json_items(value, &mut list, &mut problems) else {
        return (list, problems);
    };
    for (k, item) in items.into_iter().enumerate() {
        let Value::Object(fields) = item else {
            problems.push(Problem::new(
                Location::Item(k + 1),
                format!("expected an object with keys {JSON_TASK_KEYS}"),
            ));
            continue;
        };
        let task = json_task(k, fields, &mut list.phases, view, &mut problems);
        list.tasks.push(task);
    }
    (list, problems)
}

/// The tasks of a JSON document: a list of them, or an object with `tasks` (and a `title`,
/// kept in `list`). `None` when there is no list to read.
fn json_items(
    value: Value,
    list: &mut TaskList,
    problems: &mut Vec<Problem>,
) -> Option<Vec<Value>> {
    match value {
        Value::Array(items) => Some(items),
        Value::Object(mut top) => {
            if let Some(title) = top.remove("title") {
                match title {
                    Value::String(title) => list.title = Some(title),
                    _ => problems.push(Problem::new(Location::Input, "`title` must be a string")),
                }
            }
            for key in top.keys().filter(|k| *k != "tasks") {
                problems.push(Problem::new(
                    Location::Input,
                    format!("unknown key `{key}` (known: title, tasks)"),
                ));
            }
            match top.remove("tasks") {
                Some(Value::Array(items)) => Some(items),
                _ => {
                    problems.push(Problem::new(
                        Location::Input,
                        "expected `tasks`: a list of tasks such as {\"id\": \"T1\", \"text\": \"...\", \"files\": [\"src/a.rs\"]}",
                    ));
                    None
                }
            }
        }
        _ => {
            problems.push(Problem::new(
                Location::Input,
                "expected a list of tasks, or an object with `tasks`",
            ));
            None
        }
    }
}

/// Task `k` of a JSON list, every key checked; a new `phase` is added to `phases`. Without
/// `files`, the files are read from the text as in Markdown.
fn json_task(
    k: usize,
    fields: serde_json::Map<String, Value>,
    phases: &mut Vec<Phase>,
    view: &RepoView,
    problems: &mut Vec<Problem>,
) -> Task {
    let at = Location::Item(k + 1);
    let mut task = Task {
        id: format!("task {}", k + 1),
        at,
        text: String::new(),
        phase: None,
        parallel: false,
        priority: None,
        files: Vec::new(),
        depends_on: Vec::new(),
    };
    let mut files = None;
    let mut problem = |message: String| problems.push(Problem::new(at, message));
    for (key, value) in fields {
        match key.as_str() {
            "id" => match json_id(&value) {
                Some(id) => task.id = id,
                None => problem("`id` must be a string or a number".into()),
            },
            "text" => match value {
                Value::String(text) if !text.trim().is_empty() => task.text = text,
                _ => problem("`text` must be a non-empty string".into()),
            },
            "files" => match value {
                Value::Array(items) => files = Some(json_files(items, view, &mut problem)),
                _ => problem("`files` must be a list of strings".into()),
            },
            "depends_on" => match value {
                Value::Array(items) => {
                    for item in items {
                        match json_id(&item) {
                            Some(id) => task.depends_on.push(id),
                            None => problem(
                                "`depends_on` must be a list of ids (strings or numbers)".into(),
                            ),
                        }
                    }
                }
                _ => problem("`depends_on` must be a list of ids".into()),
            },
            "phase" => match json_phase(value, phases) {
                Some(index) => task.phase = Some(index),
                None => problem("`phase` must be a name or a number".into()),
            },
            "parallel" => match value {
                Value::Bool(b) => task.parallel = b,
                _ => problem("`parallel` must be true or false".into()),
            },
            "priority" => match json_priority(&value) {
                Some(p) => task.priority = Some(p),
                None => problem("`priority` must be \"P0\" to \"P3\" (or 0 to 3)".into()),
            },
            other => problem(format!("unknown key `{other}` (known: {JSON_TASK_KEYS})")),
        }
    }
    if task.text.is_empty() {
        problems.push(Problem::new(at, "no `text`: say what the task is to do"));
    }
    match files {
        Some(files) => task.files = files,
        None => add_files(&mut task.files, &task.text.clone(), view),
    }
    task
}

/// A JSON `files` list: each entry a path (see [`json_path`]), each once.
fn json_files(items: Vec<Value>, view: &RepoView, problem: &mut impl FnMut(String)) -> Vec<String> {
    let mut paths = Vec::new();
    for item in items {
        match item.as_str().map(|p| json_path(p, view)) {
            Some(Ok(path)) => {
                if !paths.contains(&path) {
                    paths.push(path);
                }
            }
            Some(Err(message)) => problem(message),
            None => problem("`files` must be a list of strings".into()),
        }
    }
    paths
}

/// The index of a JSON `phase` (a name, or a number: `Phase N`) in `phases`, added when new.
fn json_phase(value: Value, phases: &mut Vec<Phase>) -> Option<usize> {
    let title = match value {
        Value::String(s) if !s.trim().is_empty() => s,
        Value::Number(n) => format!("Phase {n}"),
        _ => return None,
    };
    Some(match phases.iter().position(|p| p.title == title) {
        Some(index) => index,
        None => {
            phases.push(Phase {
                title,
                priority: None,
            });
            phases.len() - 1
        }
    })
}

/// A JSON `priority`: `"P0"` to `"P3"`, or 0 to 3.
fn json_priority(value: &Value) -> Option<u8> {
    match value {
        Value::String(s) => priority_of(s),
        Value::Number(n) => n.as_u64().filter(|n| *n <= 3).map(|n| n as u8),
        _ => None,
    }
}

fn json_id(value: &Value) -> Option<String> {
    match value {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A relative path as a task names it (`src/api/`, `src/a.rs`): whether it names a directory
/// (a trailing `/`), and the path without that; `None` when it is empty or does not stay inside
/// the repository (`.`, `..` or empty segments).
fn inside_path(word: &str) -> Option<(bool, &str)> {
    let is_dir_ref = word.ends_with('/');
    let path = word.trim_end_matches('/');
    if path.is_empty()
        || path
            .split('/')
            .any(|part| part.is_empty() || part == "." || part == "..")
    {
        return None;
    }
    Some((is_dir_ref, path))
}
/// A JSON `files` entry, normalised like a Markdown one but taken as given.
fn json_path(raw: &str, view: &RepoView) -> Result<String, String> {
    let word = raw.trim();
    if word.chars().any(|c| "*?[]{}".contains(c)) {
        return Err(format!(
            "`{raw}` is a pattern: name files or directories (`src/api/`), streams picks the patterns"
        ));
    }
    let word = word.strip_prefix("./").unwrap_or(word);
    if word.starts_with('/') || word.starts_with('~') {
        return Err(format!(
            "`{raw}` is absolute: files are relative to the repository root"
        ));
    }
    let Some((is_dir_ref, path)) = inside_path(word) else {
        return Err(format!("`{raw}` is not a path inside the repository"));
    };
    if is_dir_ref || (!view.is_file(path) && view.is_dir(path)) {
        Ok(format!("{path}/"))
    } else {
        Ok(path.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view() -> RepoView {
        RepoView::new(
            "HEAD",
            "0".repeat(40),
            [
                "src/main.rs",
                "src/api/login.rs",
                "docs/guide.md",
                "README.md",
            ]
            .map(String::from),
        )
    }

    fn md(text: &str) -> TaskList {
        parse(text, Format::Markdown, &view()).unwrap()
    }

    #[test]
    fn a_spec_kit_line() {
        let list = md(
            "## Phase 3: User Story 1 (Priority: P1)\n- [ ] T014 [P] [US1] Implement UserService in src/services/user_service.py (depends on T012, T013)\n- [ ] T012 x\n- [x] T013 done\n",
        );
        let t = &list.tasks[0];
        assert_eq!(t.id, "T014");
        assert!(t.parallel);
        assert_eq!(t.priority, Some(1), "from the phase heading");
        assert_eq!(t.phase, Some(0));
        // `src/services/` is new, but `src/` exists.
        assert_eq!(t.files, ["src/services/user_service.py"]);
        assert_eq!(t.depends_on, ["T012"], "T013 is done");
        assert_eq!(list.done, ["T013"]);
    }

    #[test]
    fn paths_backticked_bare_and_directories() {
        let list = md(
            "- [ ] Edit src/api/login.rs, add `src/models/user.py`, see docs/ and e.g. the README.md.\n- [ ] New src/api/logout.rs and and/or stuff in `new/dir/`, not new/file.rs\n",
        );
        assert_eq!(
            list.tasks[0].files,
            [
                "src/api/login.rs",
                "src/models/user.py",
                "docs/",
                "README.md"
            ]
        );
        assert_eq!(list.tasks[1].files, ["src/api/logout.rs", "new/dir/"]);
        // Words that happen to name a directory are words; with a slash or backticks, paths.
        let list = md("- [ ] Write unit tests for the src docs in src/api and `docs`\n");
        assert_eq!(list.tasks[0].files, ["src/api/", "docs/"]);
        assert_eq!(list.tasks[0].id, "task 1");
    }

    #[test]
    fn dependency_phrases() {
        assert_eq!(
            references("Do it after T1 and T2, blocked by T-3; depends on tasks 4, 5.1 then"),
            ["T1", "T2", "T-3", "4", "5.1"]
        );
        assert!(references("after lunch, after 5 minutes with P1").len() == 1);
    }

    #[test]
    fn numeric_references_only_count_in_numbered_lists() {
        let list = md("- [ ] T1 wait after 5 minutes\n");
        assert!(list.tasks[0].depends_on.is_empty());
        let list = md("- [ ] 1. first\n- [ ] 2. after 1\n");
        assert_eq!(list.tasks[1].depends_on, ["1"]);
    }

    #[test]
    fn fences_comments_and_continuations() {
        let list = md(
            "<!--\n- [ ] T9 not a task\n-->\n```\n- [ ] T8 nor this\n```\n- [ ] T1 first\n  - touches src/main.rs\n  - depends on T2\n- [ ] T2 second\n",
        );
        assert_eq!(list.tasks.len(), 2);
        assert_eq!(list.tasks[0].files, ["src/main.rs"]);
        assert_eq!(list.tasks[0].depends_on, ["T2"]);
        assert!(list.tasks[0].text.contains("\n- touches src/main.rs"));
    }

    #[test]
    fn undefined_and_duplicate_ids_are_all_reported() {
        let err = parse(
            "- [ ] T1 a after T7\n- [ ] T1 b\n- [ ] T2 c depends on T8, T9 and T1\n",
            Format::Markdown,
            &view(),
        )
        .unwrap_err();
        let messages: Vec<String> = err
            .iter()
            .map(|p| format!("{}: {}", p.at, p.message))
            .collect();
        assert_eq!(
            messages,
            [
                "line 1: T1 depends on T7, which no task defines",
                "line 2: T1 is defined twice (first at line 1)",
                "line 3: T2 depends on T8 and T9, which no task defines",
            ]
        );
    }

    #[test]
    fn json_tasks() {
        let list = parse(
            r#"{"title": "Auth", "tasks": [
                {"id": 1, "text": "Schema", "files": ["src/db/", "./src/main.rs"], "phase": 1, "priority": "P0"},
                {"id": "T2", "text": "Login in src/api/login.rs", "depends_on": [1], "parallel": true}
            ]}"#,
            Format::Json,
            &view(),
        )
        .unwrap();
        assert_eq!(list.title.as_deref(), Some("Auth"));
        assert_eq!(list.tasks[0].id, "1");
        assert_eq!(list.tasks[0].files, ["src/db/", "src/main.rs"]);
        assert_eq!(list.tasks[0].priority, Some(0));
        assert_eq!(list.phases[0].title, "Phase 1");
        assert_eq!(list.tasks[1].files, ["src/api/login.rs"]);
        assert_eq!(list.tasks[1].depends_on, ["1"]);
        assert!(list.tasks[1].parallel);
    }

    #[test]
    fn json_problems_are_all_reported() {
        let err = parse(
            r#"[{"id": "a", "txt": "x"}, {"text": "y", "files": ["src/*.rs", "../up"], "priority": 9}]"#,
            Format::Json,
            &view(),
        )
        .unwrap_err();
        let messages: Vec<String> = err.iter().map(|p| p.message.clone()).collect();
        assert_eq!(messages.len(), 5, "{messages:#?}");
        assert!(messages[0].starts_with("unknown key `txt`"));
    }
}
