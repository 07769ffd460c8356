//! Plans: TOML text in, validated [`Plan`] out.
//!
//! TEMPORARY: a minimal serde loader while the full validator is built on its own branch.

pub mod model;
pub mod pattern;

pub use model::*;

use std::collections::BTreeMap;

use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    plan: RawPlan,
    #[serde(default)]
    stream: Vec<RawStream>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlan {
    name: String,
    base: Option<String>,
    jobs: Option<usize>,
    agent: Option<Vec<String>>,
    merge: Option<String>,
    sync: Option<String>,
    #[serde(default)]
    shared: Vec<String>,
    timeout: Option<String>,
    idle_timeout: Option<String>,
    grace: Option<String>,
    retries: Option<u32>,
    #[serde(default)]
    retry_on: Vec<i32>,
    retry_backoff: Option<String>,
    worktree_root: Option<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStream {
    name: String,
    owns: Vec<String>,
    #[serde(default)]
    depends_on: Vec<String>,
    #[serde(default)]
    tasks: Vec<String>,
    #[serde(default)]
    task: Vec<RawTask>,
    agent: Option<Vec<String>>,
    timeout: Option<String>,
    idle_timeout: Option<String>,
    retries: Option<u32>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    #[serde(default)]
    priority: i64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTask {
    prompt: Option<String>,
    prompt_file: Option<String>,
    agent: Option<Vec<String>>,
    timeout: Option<String>,
}

fn dur(s: &Option<String>) -> Result<Option<std::time::Duration>, String> {
    s.as_ref()
        .map(|s| humantime::parse_duration(s).map_err(|e| e.to_string()))
        .transpose()
}

fn pattern(text: &str) -> Pattern {
    Pattern {
        text: text.to_string(),
        glob: text.trim_start_matches('/').to_string(),
    }
}

pub fn parse_simple(text: &str) -> Result<Plan, String> {
    let raw: RawFile = toml::from_str(text).map_err(|e| e.to_string())?;
    let p = raw.plan;
    let mut streams = Vec::new();
    for s in raw.stream {
        let mut tasks: Vec<Task> = s
            .tasks
            .iter()
            .map(|t| Task {
                prompt: Prompt::Text(t.clone()),
                agent: None,
                timeout: None,
                estimate: None,
            })
            .collect();
        for t in s.task {
            tasks.push(Task {
                prompt: match (t.prompt, t.prompt_file) {
                    (Some(p), _) => Prompt::Text(p),
                    (None, Some(f)) => Prompt::File(f.into()),
                    _ => return Err("task needs prompt".into()),
                },
                agent: t.agent,
                timeout: dur(&t.timeout)?,
                estimate: None,
            });
        }
        streams.push(Stream {
            name: s.name,
            owns: s.owns.iter().map(|o| pattern(o)).collect(),
            depends_on: s.depends_on,
            tasks,
            agent: s.agent,
            timeout: dur(&s.timeout)?,
            idle_timeout: dur(&s.idle_timeout)?,
            retries: s.retries,
            env: s.env,
            priority: s.priority,
            estimate: None,
        });
    }
    Ok(Plan {
        name: p.name,
        base: p.base.unwrap_or_else(|| DEFAULT_BASE.into()),
        jobs: p.jobs,
        agent: p.agent,
        merge: match p.merge.as_deref() {
            Some("merge") => MergeStrategy::Merge,
            Some("squash") => MergeStrategy::Squash,
            _ => MergeStrategy::Rebase,
        },
        sync: match p.sync.as_deref() {
            Some("task") => SyncPoint::Task,
            _ => SyncPoint::Stream,
        },
        shared: p.shared.iter().map(|s| pattern(s)).collect(),
        timeout: dur(&p.timeout)?,
        idle_timeout: dur(&p.idle_timeout)?,
        grace: dur(&p.grace)?.unwrap_or(DEFAULT_GRACE),
        retries: p.retries.unwrap_or(0),
        retry_on: p.retry_on,
        retry_backoff: dur(&p.retry_backoff)?.unwrap_or(DEFAULT_RETRY_BACKOFF),
        worktree_root: p.worktree_root.map(Into::into),
        env: p.env,
        streams,
    })
}
