//! Raw values to a validated [`Plan`]: the rules that relate values to each other and to the
//! repository (names, dependencies, agents, prompt files, base, ownership).

use std::collections::HashMap;
use std::path::Path;

use super::diagnostic::{Diagnostic, Diagnostics, Span, count};
use super::model::{
    DEFAULT_BASE, DEFAULT_GRACE, DEFAULT_RETRY_BACKOFF, MAX_NAME_BYTES, Pattern, Plan, Prompt,
    RESERVED_STREAM_NAME, Stream, Task,
};
use super::owners::{self, OwnedPattern, OwnershipSummary, PatternOwner};
use super::pattern;
use super::raw::{RawFile, RawPlan, RawStream, Sp, suggest};
use super::{EstimateUnit, ProgramCheck, Repository};

/// What validation learned besides the plan itself.
pub struct Facts {
    pub base_commit: Option<String>,
    pub ownership: OwnershipSummary,
    pub estimates: EstimateUnit,
    /// Per stream (plan order): the files of its sparse workspace at base, for a stream that
    /// declares `reads` (or in a plan that does); `None` for a whole checkout.
    pub sparse_files: Vec<Option<usize>>,
}

/// Runs every rule, adding problems to `diags`. Returns the plan when nothing was wrong (the
/// caller also checks `diags` for errors found before this step).
pub fn validate<R: Repository>(
    file: &RawFile,
    repo: &mut R,
    diags: &mut Diagnostics,
) -> Result<(Option<Plan>, Facts), R::Error> {
    let mut facts = Facts {
        base_commit: None,
        ownership: OwnershipSummary::default(),
        estimates: EstimateUnit::Units,
        sparse_files: Vec::new(),
    };
    // Without a usable [plan] the streams are still checked; only what depends on the plan's
    // settings (its agent, `shared`, `base`) is not.
    let raw_plan = file.plan.as_ref();
    check_plan_table(file, diags);
    check_names(file, diags);
    check_dependencies(file, diags);
    check_agents(
        file,
        raw_plan.is_none_or(|p| p.present.contains(&"agent")),
        diags,
    );
    check_prompt_files(file, repo, diags);
    check_groups(file, diags);
    facts.estimates = check_estimates(file, diags);

    // Patterns, then the repository.
    let root = repo.root();
    let owned = patterns(file, root.as_deref(), diags);

    if let Some(dir) = raw_plan.and_then(|p| p.worktree_root.as_ref()) {
        check_worktree_root(dir, root.as_deref(), diags);
    }

    // Without [plan] there is no knowing which `base` was meant.
    let Some(raw_plan) = raw_plan else {
        return Ok((None, facts));
    };
    let base_present = raw_plan.present.contains(&"base");
    let base = raw_plan.base.as_ref();
    // A `base` of the wrong type was reported already; there is nothing to resolve.
    if base.is_some() || !base_present {
        let rev = base.map_or(DEFAULT_BASE, |b| b.value.as_str());
        match repo.resolve(rev)? {
            Some(commit) => {
                let tracked = repo.tracked_files(&commit)?;
                let names: Vec<String> = file
                    .streams
                    .iter()
                    .map(|s| {
                        s.name
                            .as_ref()
                            .map_or_else(String::new, |n| n.value.clone())
                    })
                    .collect();
                facts.ownership = owners::check(&owned, &names, &tracked, diags);
                facts.sparse_files = sparse_sizes(file, raw_plan, &tracked);
                check_agent_programs(file, repo, Some(&commit), diags)?;
                facts.base_commit = Some(commit);
            }
            None => {
                // Every problem at once: a wrong `base` does not hide a missing agent program
                // (those that need no commit to look for: names looked up on PATH, absolute
                // paths).
                check_agent_programs(file, repo, None, diags)?;
                let diagnostic = match base {
                    Some(base) => Diagnostic::error(format!(
                        "`base` does not resolve: `{}` names no commit in this repository",
                        base.value
                    ))
                    .at(base.span.clone(), "no such commit"),
                    None => Diagnostic::error(format!(
                        "`base` is not set and `{DEFAULT_BASE}` names no commit: the repository has no commits yet"
                    ))
                    .at(raw_plan.header.clone(), "no `base` in this table")
                    .help("commit something first, or set `base` to a branch, tag or commit"),
                };
                diags.push(diagnostic);
            }
        }
    }

    if diags.has_errors() {
        return Ok((None, facts));
    }
    Ok((build(file), facts))
}

/// The `[plan]` table itself: there, with a name usable in a branch, and streams beside it.
fn check_plan_table(file: &RawFile, diags: &mut Diagnostics) {
    let raw_plan = file.plan.as_ref();
    if raw_plan.is_none() && !file.plan_given {
        diags.push(
            Diagnostic::error("the plan has no `[plan]` table")
                .help("start the file with `[plan]` and at least `name = \"...\"`"),
        );
    }
    if let Some(raw_plan) = raw_plan
        && let Some(name) = &raw_plan.name
        && let Some(problem) = ref_component_problem(&name.value)
    {
        diags.push(
            Diagnostic::error(format!("invalid plan name `{}`: {problem}", name.value))
                .at(name.span.clone(), "not usable in a git branch name")
                .help("the plan name is part of every branch, `streams/<plan>/<stream>`: use letters, digits, `-`, `_` and `.`"),
        );
    }
    if let Some(raw_plan) = raw_plan
        && let Some(name) = &raw_plan.name
        && let Some(problem) = too_long(&name.value)
    {
        diags.push(
            Diagnostic::error(format!("plan name is too long: {problem}"))
                .at(name.span.clone(), "too long for a git ref")
                .help(LONG_NAME_HELP),
        );
    }
    if file.streams.is_empty() && !file.streams_given {
        let diagnostic = Diagnostic::error("the plan has no streams")
            .help("add a `[[stream]]` table with `name`, `owns` and `tasks`");
        diags.push(match raw_plan {
            Some(p) => diagnostic.at(p.header.clone(), "no `[[stream]]` table in this plan"),
            None => diagnostic,
        });
    }
}

/// Every `owns` and `shared` pattern normalised, with its owner (a pattern that is not usable is
/// reported and left out); every `reads` pattern checked the same way.
fn patterns(file: &RawFile, root: Option<&str>, diags: &mut Diagnostics) -> Vec<OwnedPattern> {
    let mut owned = Vec::new();
    let mut normalize =
        |text: &Sp<String>, owner: PatternOwner, diags: &mut Diagnostics| match pattern::normalize(
            &text.value,
            root,
        ) {
            Ok(glob) => owned.push(OwnedPattern {
                owner,
                text: text.value.clone(),
                glob,
                span: text.span.clone(),
            }),
            Err(err) => {
                diags.push(
                    Diagnostic::error(format!(
                        "invalid pattern `{}`: {}",
                        shorten(&text.value),
                        err.message
                    ))
                    .at(text.span.clone(), "not a usable pattern")
                    .help_opt(err.help),
                );
            }
        };
    for (index, stream) in file.streams.iter().enumerate() {
        for item in stream.owns.iter().flat_map(|o| &o.value) {
            normalize(item, PatternOwner::Stream(index), diags);
        }
    }
    for item in file.plan.iter().flat_map(|p| &p.shared) {
        normalize(item, PatternOwner::Shared, diags);
    }
    // `reads` is checked like the patterns above, but owns nothing: it takes no part in the
    // overlap and coverage checks.
    let reads = file
        .streams
        .iter()
        .flat_map(|s| &s.settings.reads)
        .chain(file.plan.iter().flat_map(|p| &p.settings.reads));
    for text in reads {
        if let Err(err) = pattern::normalize(&text.value, root) {
            diags.push(
                Diagnostic::error(format!(
                    "invalid pattern `{}` in `reads`: {}",
                    shorten(&text.value),
                    err.message
                ))
                .at(text.span.clone(), "not a usable pattern")
                .help_opt(err.help),
            );
        }
    }
    owned
}

/// Builds the model from raw values that passed every rule.
fn build(file: &RawFile) -> Option<Plan> {
    let raw = file.plan.as_ref()?;
    let pattern = |text: &Sp<String>| Pattern {
        text: text.value.clone(),
        glob: text
            .value
            .strip_prefix('/')
            .unwrap_or(&text.value)
            .to_string(),
    };
    let mut streams = Vec::new();
    for s in &file.streams {
        let tasks = s
            .tasks
            .iter()
            .map(|t| {
                Some(Task {
                    prompt: t.prompt.clone()?,
                    agent: t.agent.clone(),
                    timeout: t.timeout,
                    estimate: t.estimate.as_ref().map(|e| e.value),
                    group: t.group.as_ref().map(|g| g.value.clone()),
                    allow_empty: t.allow_empty,
                    budget: t.budget.clone(),
                })
            })
            .collect::<Option<Vec<_>>>()?;
        streams.push(Stream {
            name: s.name.as_ref()?.value.clone(),
            owns: s.owns.as_ref()?.value.iter().map(pattern).collect(),
            reads: s.settings.reads.iter().map(pattern).collect(),
            depends_on: dedup(s.depends_on.iter().map(|d| d.value.clone())),
            tasks,
            agent: s.settings.agent.clone(),
            timeout: s.settings.timeout,
            idle_timeout: s.settings.idle_timeout,
            retries: s.settings.retries,
            env: s.settings.env.clone(),
            priority: s.priority,
            estimate: s.estimate.as_ref().map(|e| e.value),
            check: s.settings.check.clone(),
            check_timeout: s.settings.check_timeout,
            check_retries: s.settings.check_retries,
            sandbox: s.settings.sandbox,
            sandbox_writable: s.settings.sandbox_writable.clone(),
            group: s.group.as_ref().map(|g| g.value.clone()),
            setup: s.settings.setup.clone(),
            setup_timeout: s.settings.setup_timeout,
            allow_empty: s.settings.allow_empty,
            budget: s.budget.clone(),
        });
    }
    Some(Plan {
        name: raw.name.as_ref()?.value.clone(),
        base: raw
            .base
            .as_ref()
            .map_or_else(|| DEFAULT_BASE.to_string(), |b| b.value.clone()),
        jobs: raw.jobs,
        agent: raw.settings.agent.clone(),
        merge: raw.merge.unwrap_or_default(),
        sync: raw.sync.unwrap_or_default(),
        shared: raw.shared.iter().map(pattern).collect(),
        reads: raw.settings.reads.iter().map(pattern).collect(),
        timeout: raw.settings.timeout,
        idle_timeout: raw.settings.idle_timeout,
        grace: raw.grace.unwrap_or(DEFAULT_GRACE),
        retries: raw.settings.retries.unwrap_or(0),
        retry_on: raw.retry_on.clone(),
        retry_on_output: raw.retry_on_output.clone(),
        retry_backoff: raw.retry_backoff.unwrap_or(DEFAULT_RETRY_BACKOFF),
        limit_wait: raw.limit_wait.unwrap_or(super::model::DEFAULT_LIMIT_WAIT),
        allow_empty: raw.settings.allow_empty.unwrap_or(false),
        worktree_root: raw.worktree_root.as_ref().map(|w| w.value.clone().into()),
        env: raw.settings.env.clone(),
        check: raw.settings.check.clone(),
        check_timeout: raw.settings.check_timeout,
        check_retries: raw.settings.check_retries.unwrap_or(0),
        gate: raw.gate.clone(),
        gate_batch: raw.gate_batch,
        gate_retries: raw
            .gate_retries
            .unwrap_or(super::model::DEFAULT_GATE_RETRIES),
        on_conflict: raw.on_conflict.unwrap_or_default(),
        notify: raw.notify.clone(),
        notify_timeout: raw
            .notify_timeout
            .unwrap_or(super::model::DEFAULT_NOTIFY_TIMEOUT),
        sandbox: raw.settings.sandbox.unwrap_or_default(),
        sandbox_writable: raw.settings.sandbox_writable.clone(),
        setup: raw.settings.setup.clone(),
        setup_timeout: raw.settings.setup_timeout,
        include: raw.include.clone(),
        ports: raw
            .ports
            .map_or_else(super::model::Ports::default, |(base, per_slot)| {
                super::model::Ports { base, per_slot }
            }),
        limits: raw
            .limits
            .iter()
            .map(|(name, n)| (name.value.clone(), *n))
            .collect(),
        budget: raw.budget.clone(),
        prices: file.prices.iter().cloned().collect(),
        streams,
    })
}

/// [`Facts::sparse_files`]: the globs as the run will have them (`Plan::sparse_set`).
fn sparse_sizes(file: &RawFile, raw_plan: &RawPlan, tracked: &[String]) -> Vec<Option<usize>> {
    let glob = |p: &Sp<String>| p.value.strip_prefix('/').unwrap_or(&p.value).to_string();
    file.streams
        .iter()
        .map(|stream| {
            if stream.settings.reads.is_empty() && raw_plan.settings.reads.is_empty() {
                return None;
            }
            let globs: Vec<String> = (stream.owns.iter().flat_map(|o| &o.value))
                .chain(&raw_plan.shared)
                .chain(&raw_plan.settings.reads)
                .chain(&stream.settings.reads)
                .map(glob)
                .collect();
            let sparse = super::Sparse::from_globs(globs.iter().map(String::as_str));
            Some(sparse.count(tracked))
        })
        .collect()
}

/// A pattern as a message quotes it: long ones cut in the middle (the source line under the
/// message shows where it is).
fn shorten(text: &str) -> String {
    const KEEP: usize = 24;
    if text.chars().count() <= 3 * KEEP {
        return text.to_string();
    }
    let head: String = text.chars().take(KEEP).collect();
    let tail: String = text.chars().skip(text.chars().count() - KEEP).collect();
    format!("{head}...{tail}")
}

fn dedup(items: impl Iterator<Item = String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for item in items {
        if !out.contains(&item) {
            out.push(item);
        }
    }
    out
}

/// Why `name` cannot be one component of a git ref (`git check-ref-format` rules, plus a
/// leading `-`, which git allows in refs but not in branch names given on a command line).
pub fn ref_component_problem(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("it is empty".into());
    }
    if name.starts_with('.') {
        return Some("it starts with `.`".into());
    }
    if name.starts_with('-') {
        return Some("it starts with `-`".into());
    }
    if name.ends_with(".lock") {
        return Some("it ends with `.lock`".into());
    }
    if name.ends_with('.') {
        return Some("it ends with `.`".into());
    }
    if name.contains("..") {
        return Some("it contains `..`".into());
    }
    if name.contains("@{") {
        return Some("it contains `@{`".into());
    }
    if name == "@" {
        return Some("`@` alone means HEAD to git".into());
    }
    for c in name.chars() {
        let what = match c {
            ' ' => "a space".to_string(),
            c if c.is_control() => "a control character".to_string(),
            '~' | '^' | ':' | '?' | '*' | '[' | '\\' | '/' => format!("`{c}`"),
            _ => continue,
        };
        return Some(format!("it contains {what}"));
    }
    None
}

const LONG_NAME_HELP: &str = "each name is one part of refs such as `refs/streams/<plan>/<kind>/<stream>/<n>.lock`, which git stores as files (255 bytes at most per name on most file systems): use a shorter name";

/// Why a plan or stream name is too long to be part of the refs and paths a run makes.
fn too_long(name: &str) -> Option<String> {
    (name.len() > MAX_NAME_BYTES).then(|| {
        format!(
            "{} bytes, more than the {MAX_NAME_BYTES} a name may have",
            name.len()
        )
    })
}

/// `worktree_root` must be outside the user's checkout: workspaces inside it would show up in
/// the user's `git status`, be picked up by their builds and tools, and be walked into by every
/// agent's searches. `~` is refused rather than expanded: a plan is shared, and a literal `~`
/// directory was created instead (issue 11).
fn check_worktree_root(dir: &Sp<String>, root: Option<&str>, diags: &mut Diagnostics) {
    use std::path::{Component, Path, PathBuf};
    let help = "write a directory outside the repository, such as `../<repo>-streams` (relative to the repository root) or an absolute path, or leave `worktree_root` out to keep workspaces in the git directory";
    if dir.value.starts_with('~') {
        diags.push(
            Diagnostic::error(format!(
                "`worktree_root` starts with `~`, which is not expanded: `{}`",
                dir.value
            ))
            .at(dir.span.clone(), "a directory named `~` would be created")
            .help(help),
        );
        return;
    }
    // Lexically, as the run joins it: relative to the repository root.
    let path = Path::new(&dir.value);
    let joined = match root {
        Some(root) => Path::new(root).join(path),
        None if path.is_absolute() => return,
        None => Path::new("/repository").join(path),
    };
    let mut normal = PathBuf::new();
    for part in joined.components() {
        match part {
            Component::ParentDir => {
                normal.pop();
            }
            Component::CurDir => {}
            other => normal.push(other),
        }
    }
    let root = Path::new(root.unwrap_or("/repository"));
    if normal.starts_with(root) {
        let where_ = if normal == root {
            "the repository's root".to_string()
        } else {
            format!(
                "`{}`, inside the repository",
                normal.strip_prefix(root).unwrap_or(&normal).display()
            )
        };
        diags.push(
            Diagnostic::error(format!(
                "`worktree_root` puts the workspaces inside your checkout ({where_})"
            ))
            .at(dir.span.clone(), "inside the repository")
            .note("they would show up in your `git status`, builds and searches")
            .help(help),
        );
    }
}

fn check_names(file: &RawFile, diags: &mut Diagnostics) {
    let mut seen: HashMap<String, &Sp<String>> = HashMap::new();
    for stream in &file.streams {
        let Some(name) = &stream.name else { continue };
        if let Some(problem) = ref_component_problem(&name.value) {
            let message = if name.value.is_empty() {
                "stream name is empty".to_string()
            } else {
                format!("invalid stream name `{}`: {problem}", name.value)
            };
            diags.push(
                Diagnostic::error(message)
                    .at(name.span.clone(), "not usable as a git branch name")
                    .help("each stream gets the branch `streams/<plan>/<stream>`: use letters, digits, `-`, `_` and `.`"),
            );
            continue;
        }
        if let Some(problem) = too_long(&name.value) {
            diags.push(
                Diagnostic::error(format!("stream name is too long: {problem}"))
                    .at(name.span.clone(), "too long for a git ref")
                    .help(LONG_NAME_HELP),
            );
            continue;
        }
        if name.value.eq_ignore_ascii_case(RESERVED_STREAM_NAME) {
            diags.push(
                Diagnostic::error(format!(
                    "stream name `{}` is reserved",
                    name.value
                ))
                .at(name.span.clone(), "reserved")
                .help(format!("`streams/<plan>/{RESERVED_STREAM_NAME}` is the branch every stream's work is integrated on: pick another name")),
            );
            continue;
        }
        // Case-insensitively: on macOS and Windows, branches `api` and `API` are one file.
        match seen.get(&name.value.to_lowercase()) {
            Some(first) => {
                let message = if first.value == name.value {
                    format!("two streams are named `{}`", name.value)
                } else {
                    format!(
                        "streams `{}` and `{}` differ only in case",
                        first.value, name.value
                    )
                };
                diags.push(
                    Diagnostic::error(message)
                        .at(name.span.clone(), "second stream with this name")
                        .also(first.span.clone(), "first one here")
                        .help("stream names must be unique (ignoring case): each names a branch"),
                );
            }
            None => {
                seen.insert(name.value.to_lowercase(), name);
            }
        }
    }
}

fn check_dependencies(file: &RawFile, diags: &mut Diagnostics) {
    let names: Vec<Option<&str>> = file
        .streams
        .iter()
        .map(|s| s.name.as_ref().map(|n| n.value.as_str()))
        .collect();
    let known: Vec<&str> = names.iter().flatten().copied().collect();
    let index_of = |name: &str| names.iter().position(|n| *n == Some(name));

    // Edges: stream -> the streams it depends on, each with the span of the entry.
    let mut edges: Vec<Vec<(usize, Span)>> = vec![Vec::new(); file.streams.len()];
    for (i, stream) in file.streams.iter().enumerate() {
        let mut listed: Vec<&str> = Vec::new();
        for dep in &stream.depends_on {
            if listed.contains(&dep.value.as_str()) {
                diags.push(
                    Diagnostic::warning(format!("`{}` is listed twice in `depends_on`", dep.value))
                        .at(dep.span.clone(), "listed again here"),
                );
                continue;
            }
            listed.push(&dep.value);
            match index_of(&dep.value) {
                Some(j) => edges[i].push((j, dep.span.clone())),
                None => {
                    let others: Vec<&str> = known
                        .iter()
                        .copied()
                        .filter(|k| Some(*k) != names[i])
                        .collect();
                    let help = match suggest(&dep.value, &others) {
                        Some(best) => format!("did you mean `{best}`?"),
                        None if others.is_empty() => "this plan has no other stream".to_string(),
                        // Every stream, this one too: a list without it reads as if it were
                        // missing from the plan.
                        None => format!("the streams are: {}", known.join(", ")),
                    };
                    diags.push(
                        Diagnostic::error(format!(
                            "unknown stream `{}` in `depends_on`",
                            dep.value
                        ))
                        .at(dep.span.clone(), "no stream has this name")
                        .help(help),
                    );
                }
            }
        }
    }

    for cycle in cycles(&edges) {
        let name = |i: usize| names[i].unwrap_or("?");
        let path: Vec<&str> = cycle
            .iter()
            .map(|&i| name(i))
            .chain(std::iter::once(name(cycle[0])))
            .collect();
        let edge_span = |from: usize, to: usize| {
            edges[from]
                .iter()
                .find(|(t, _)| *t == to)
                .map(|(_, span)| span.clone())
                .expect("cycle edges exist")
        };
        let mut diagnostic = if cycle.len() == 1 {
            Diagnostic::error(format!("stream `{}` depends on itself", name(cycle[0])))
        } else {
            Diagnostic::error(format!("dependency cycle: {}", path.join(" -> ")))
        };
        for k in 0..cycle.len() {
            let (from, to) = (cycle[k], cycle[(k + 1) % cycle.len()]);
            let label = format!("`{}` depends on `{}`", name(from), name(to));
            diagnostic = if k == 0 {
                diagnostic.at(edge_span(from, to), label)
            } else {
                diagnostic.also(edge_span(from, to), label)
            };
        }
        diags.push(diagnostic.help("streams must form a DAG: remove one of these dependencies"));
    }
}

/// One cycle per strongly connected component that has one, each starting at its first stream
/// in file order (Tarjan's algorithm, then a breadth-first search inside the component).
fn cycles(edges: &[Vec<(usize, Span)>]) -> Vec<Vec<usize>> {
    struct Tarjan<'a> {
        edges: &'a [Vec<(usize, Span)>],
        index: Vec<Option<usize>>,
        low: Vec<usize>,
        on_stack: Vec<bool>,
        stack: Vec<usize>,
        next: usize,
        components: Vec<Vec<usize>>,
    }
    impl Tarjan<'_> {
        fn visit(&mut self, v: usize) {
            self.index[v] = Some(self.next);
            self.low[v] = self.next;
            self.next += 1;
            self.stack.push(v);
            self.on_stack[v] = true;
            for &(w, _) in &self.edges[v] {
                match self.index[w] {
                    None => {
                        self.visit(w);
                        self.low[v] = self.low[v].min(self.low[w]);
                    }
                    Some(iw) if self.on_stack[w] => self.low[v] = self.low[v].min(iw),
                    Some(_) => {}
                }
            }
            if Some(self.low[v]) == self.index[v] {
                let mut component = Vec::new();
                while let Some(w) = self.stack.pop() {
                    self.on_stack[w] = false;
                    component.push(w);
                    if w == v {
                        break;
                    }
                }
                self.components.push(component);
            }
        }
    }
    let n = edges.len();
    let mut t = Tarjan {
        edges,
        index: vec![None; n],
        low: vec![0; n],
        on_stack: vec![false; n],
        stack: Vec::new(),
        next: 0,
        components: Vec::new(),
    };
    for v in 0..n {
        if t.index[v].is_none() {
            t.visit(v);
        }
    }
    let mut found = Vec::new();
    for component in t.components {
        let start = *component.iter().min().expect("components are not empty");
        let self_loop = edges[start].iter().any(|(w, _)| *w == start);
        if component.len() == 1 && !self_loop {
            continue;
        }
        if self_loop {
            found.push(vec![start]);
            continue;
        }
        // Shortest way back to `start` within the component.
        let mut parent: HashMap<usize, usize> = HashMap::new();
        let mut queue = std::collections::VecDeque::from([start]);
        let mut last = None;
        'search: while let Some(v) = queue.pop_front() {
            for &(w, _) in &edges[v] {
                if w == start {
                    last = Some(v);
                    break 'search;
                }
                if component.contains(&w) && !parent.contains_key(&w) {
                    parent.insert(w, v);
                    queue.push_back(w);
                }
            }
        }
        let mut cycle = Vec::new();
        let mut at = last.expect("a strongly connected component has a cycle");
        while at != start {
            cycle.push(at);
            at = parent[&at];
        }
        cycle.push(start);
        cycle.reverse();
        found.push(cycle);
    }
    found.sort_by_key(|c| c[0]);
    found
}

/// Every `group` names a key of `[plan.limits]`: a misspelt group would limit nothing.
fn check_groups(file: &RawFile, diags: &mut Diagnostics) {
    let limits: Vec<&str> = file
        .plan
        .as_ref()
        .map(|p| p.limits.iter().map(|(n, _)| n.value.as_str()).collect())
        .unwrap_or_default();
    let groups = file.streams.iter().flat_map(|s| {
        s.group
            .iter()
            .chain(s.tasks.iter().filter_map(|t| t.group.as_ref()))
    });
    for group in groups {
        if limits.contains(&group.value.as_str()) {
            continue;
        }
        let help = if let Some(best) = suggest(&group.value, &limits) {
            format!("did you mean `{best}`?")
        } else if limits.is_empty() {
            format!(
                "add `[plan.limits]` with `{} = <most at once>`",
                group.value
            )
        } else {
            format!(
                "the groups in `[plan.limits]` are: {}; or add `{} = <most at once>` there",
                limits.join(", "),
                group.value
            )
        };
        diags.push(
            Diagnostic::error(format!(
                "group `{}` has no limit in `[plan.limits]`",
                group.value
            ))
            .at(group.span.clone(), "unknown group")
            .help(help),
        );
    }
}

fn check_agents(file: &RawFile, plan_agent: bool, diags: &mut Diagnostics) {
    if plan_agent {
        return;
    }
    // No agent anywhere: one problem, at [plan], rather than one per stream.
    let any_agent = file
        .streams
        .iter()
        .any(|s| s.present.contains(&"agent") || s.tasks.iter().any(|t| t.agent_given));
    if !any_agent && file.streams.len() > 1 {
        let mut diagnostic = Diagnostic::error("no agent: the plan sets no `agent`, nor does any stream")
            .help("set `agent` in [plan]: a preset (`agent = \"claude\"`; also codex, aider, gemini, qwen) or the argv of any program (`agent = [\"program\", \"{prompt}\"]`)");
        if let Some(plan) = &file.plan {
            diagnostic = diagnostic.at(plan.header.clone(), "no `agent` in this table");
        }
        diags.push(diagnostic);
        return;
    }
    for stream in &file.streams {
        // Present but malformed was reported already.
        if stream.present.contains(&"agent") {
            continue;
        }
        let without: Vec<_> = stream.tasks.iter().filter(|t| !t.agent_given).collect();
        if without.is_empty() {
            continue;
        }
        diags.push(
            Diagnostic::error(format!(
                "no agent for {} of {}",
                if without.len() == stream.tasks.len() {
                    "the tasks".to_string()
                } else {
                    count(without.len(), "task")
                },
                describe(stream)
            ))
            .at(stream.header.clone(), "no `agent` here, nor in [plan]")
            .help("set `agent = [\"program\", \"{prompt}\"]` in [plan] for every stream, or in this stream or its tasks"),
        );
    }
}

/// Every agent program can be started: an untracked `./agent.sh` passed `plan` and then failed
/// every task with "not found", because a workspace holds only what is committed (issue 16).
/// Each program is checked once per PATH it is looked up with (the `env` of its stream or the
/// plan may set one), and reported at the place it is written.
fn check_agent_programs<R: Repository>(
    file: &RawFile,
    repo: &mut R,
    commit: Option<&str>,
    diags: &mut Diagnostics,
) -> Result<(), R::Error> {
    let plan_program = file
        .plan
        .as_ref()
        .and_then(|p| p.settings.agent_program.as_ref());
    let plan_path = file.plan.as_ref().and_then(|p| p.settings.env.get("PATH"));
    // What each task runs, and the PATH its agent gets (as `Plan::agent_for` and `env_for`).
    let programs = file.streams.iter().flat_map(|s| {
        let stream_program = s.settings.agent_program.as_ref().or(plan_program);
        let path = s.settings.env.get("PATH").or(plan_path).map(String::as_str);
        s.tasks
            .iter()
            .filter_map(move |t| t.agent_program.as_ref().or(stream_program))
            .map(move |program| (program, path))
    });
    let mut seen: Vec<(&str, Option<&str>)> = Vec::new();
    let workspace_note = "each stream's agent runs in its own workspace, checked out from `base`: only committed files are there, and relative paths are resolved in it";
    for (program, path) in programs {
        let name = program.value.as_str();
        // A placeholder is only known at run time; an empty name was reported already.
        if name.trim().is_empty() || name.contains('{') || seen.contains(&(name, path)) {
            continue;
        }
        seen.push((name, path));
        // A relative path is looked for at `base`: without one, there is nowhere to look.
        let Some(commit) =
            commit.or((Path::new(name).is_absolute() || !name.contains('/')).then_some(""))
        else {
            continue;
        };
        let diagnostic = match repo.agent_program(name, commit, path)? {
            ProgramCheck::Found => continue,
            ProgramCheck::NotOnPath => Diagnostic::error(format!(
                "agent program `{name}` was not found on PATH"
            ))
            .at(program.span.clone(), "not found")
            .help("install it, or write its absolute path"),
            ProgramCheck::Missing => Diagnostic::error(format!(
                "agent program `{name}` does not exist"
            ))
            .at(program.span.clone(), "no such file")
            .help("check the path, or write a program name found on PATH"),
            ProgramCheck::NotExecutable => Diagnostic::error(format!(
                "agent program `{name}` is not an executable file"
            ))
            .at(program.span.clone(), "not executable")
            .help(format!("make it executable (`chmod +x {name}`), or run it through its interpreter: `agent = [\"sh\", \"{name}\", ...]`")),
            ProgramCheck::NotCommitted { in_checkout } => Diagnostic::error(if in_checkout {
                format!("agent program `{name}` is not committed at `base`")
            } else {
                format!("agent program `{name}` does not exist at `base`")
            })
            .at(program.span.clone(), "not in the workspace")
            .note(workspace_note)
            .help("commit it, or use an absolute path"),
            ProgramCheck::CommittedNotExecutable => Diagnostic::error(format!(
                "agent program `{name}` is committed without the executable bit"
            ))
            .at(program.span.clone(), "not executable")
            .help(format!(
                "run `git update-index --chmod=+x {}` and commit, or run it through its interpreter: `agent = [\"sh\", \"{name}\", ...]`",
                name.trim_start_matches("./")
            )),
        };
        diags.push(diagnostic);
    }
    if let Some(commit) = commit {
        check_agent_scripts(file, repo, commit, workspace_note, diags)?;
    }
    Ok(())
}

/// Programs that run the script named by their first argument (`sh scripts/agent.sh ...`).
const INTERPRETERS: &[&str] = &[
    "sh", "bash", "dash", "zsh", "python", "python3", "node", "ruby", "perl",
];

/// An agent run through an interpreter (`["sh", "scripts/agent.sh", "{prompt_file}"]`): its
/// script is looked for as a relative program is, among the files committed at `base`, so
/// that a plan naming a script nobody wrote does not pass `plan` to fail every task.
fn check_agent_scripts<R: Repository>(
    file: &RawFile,
    repo: &mut R,
    commit: &str,
    workspace_note: &str,
    diags: &mut Diagnostics,
) -> Result<(), R::Error> {
    let plan = file.plan.as_ref().map(|p| &p.settings);
    let agents = file.streams.iter().flat_map(|s| {
        let stream = s
            .settings
            .agent
            .as_ref()
            .zip(s.settings.agent_program.as_ref())
            .or_else(|| plan.and_then(|p| p.agent.as_ref().zip(p.agent_program.as_ref())));
        s.tasks
            .iter()
            .filter_map(move |t| t.agent.as_ref().zip(t.agent_program.as_ref()).or(stream))
    });
    let mut seen: Vec<&str> = Vec::new();
    for (agent, program) in agents {
        // A preset runs its own CLI: no script of the person's.
        let crate::agent::AgentSpec::Argv(argv) = agent else {
            continue;
        };
        let interpreter = program.value.rsplit('/').next().unwrap_or_default();
        let Some(script) = argv.get(1) else { continue };
        if !INTERPRETERS.contains(&interpreter)
            || script.starts_with('-')
            || script.contains('{')
            || script.trim().is_empty()
            || Path::new(script).is_absolute()
            || seen.contains(&script.as_str())
        {
            continue;
        }
        seen.push(script);
        // Looked for as a path in the workspace, never on PATH.
        let relative = if script.contains('/') {
            script.clone()
        } else {
            format!("./{script}")
        };
        if let ProgramCheck::NotCommitted { in_checkout } =
            repo.agent_program(&relative, commit, None)?
        {
            diags.push(
                // A warning: `ci github` plans may name a script their runners bring.
                Diagnostic::warning(if in_checkout {
                    format!("agent script `{script}` is not committed at `base`")
                } else {
                    format!("agent script `{script}` does not exist at `base`")
                })
                .at(
                    program.span.clone(),
                    format!("`{}` runs it in the workspace", program.value),
                )
                .note(workspace_note)
                .help(if in_checkout {
                    "commit it, or use an absolute path"
                } else {
                    "write the script and commit it, or use an absolute path"
                }),
            );
        }
    }
    Ok(())
}

fn check_prompt_files<R: Repository>(file: &RawFile, repo: &mut R, diags: &mut Diagnostics) {
    for stream in &file.streams {
        for (i, task) in stream.tasks.iter().enumerate() {
            // `streams init`'s placeholder, left as it was: the agent would be told to
            // "describe the first change".
            if let Some(Prompt::Text(text)) = &task.prompt
                && text.starts_with(super::PLACEHOLDER_TASK)
            {
                diags.push(
                    Diagnostic::warning(format!(
                        "task {} of {} is the placeholder `streams init` wrote",
                        i + 1,
                        describe(stream)
                    ))
                    .at(task.span.clone(), "a placeholder")
                    .help("write what the agent is to do: each task is one prompt"),
                );
            }
            if let Some(path) = &task.prompt_file
                && !path.value.is_empty()
                && !repo.prompt_file_exists(&path.value)
            {
                diags.push(
                    Diagnostic::error(format!("prompt file `{}` does not exist", path.value))
                        .at(path.span.clone(), "no such file")
                        .help("`prompt_file` is relative to the directory of the plan file"),
                );
            }
        }
    }
}

/// Estimates are durations (seconds) or plain units; mixing the two makes the schedule
/// meaningless, so say so.
fn check_estimates(file: &RawFile, diags: &mut Diagnostics) -> EstimateUnit {
    let all: Vec<_> = file
        .streams
        .iter()
        .flat_map(|s| {
            s.estimate
                .iter()
                .chain(s.tasks.iter().filter_map(|t| t.estimate.as_ref()))
        })
        .collect();
    let duration = all.iter().find(|e| e.is_duration);
    let units = all.iter().find(|e| !e.is_duration);
    if let (Some(d), Some(u)) = (duration, units) {
        diags.push(
            Diagnostic::warning("estimates mix durations and plain numbers")
                .at(u.span.clone(), "a plain number, counted as seconds")
                .also(d.span.clone(), "a duration")
                .help("write every `estimate` the same way: all durations (\"10m\") or all plain numbers"),
        );
    }
    if duration.is_some() {
        EstimateUnit::Seconds
    } else {
        EstimateUnit::Units
    }
}

fn describe(stream: &RawStream) -> String {
    match &stream.name {
        Some(name) => format!("stream `{}`", name.value),
        None => "this stream".to_string(),
    }
}
