//! Raw values to a validated [`Plan`]: the rules that relate values to each other and to the
//! repository (names, dependencies, agents, prompt files, base, ownership). This module runs
//! the rules in order and owns the plan-wide ones (the `[plan]` table, names, patterns,
//! `worktree_root`, groups, estimates, `base`) and building the model; the rules about
//! `depends_on` live in [`dependencies`], those about what an agent is given to start (its
//! program, script and prompt files) in [`agent`].

mod agent;
mod dependencies;

use std::collections::HashMap;

use super::diagnostic::{Diagnostic, Diagnostics};
use super::model::{
    DEFAULT_BASE, DEFAULT_GRACE, DEFAULT_RETRY_BACKOFF, MAX_NAME_BYTES, Pattern, Plan,
    RESERVED_STREAM_NAME, Stream, Task,
};
use super::owners::{self, OwnedPattern, OwnershipSummary, PatternOwner};
use super::pattern;
use super::raw::{RawFile, RawPlan, RawStream, Sp, suggest};
use super::{EstimateUnit, Repository};
use agent::{check_agent_programs, check_agents, check_prompt_files};
use dependencies::check_dependencies;

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
        resolve: raw.resolve.clone(),
        resolve_margin: raw
            .resolve_margin
            .unwrap_or(super::model::DEFAULT_RESOLVE_MARGIN),
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
