//! A run spread over machines (CI jobs), with git as the only transport.
//!
//! - On a machine, `run --only STREAM` runs one stream from a start commit (the pinned base, or
//!   the integration tip of the stage before, as its integrate job reported it), then
//!   [`publish_stream`] pushes its branch, the work it kept and a [`Manifest`] saying what it
//!   did, under names of its own run and stream, and reports the manifest's commit id as the
//!   job's output.
//! - In the central job, `integrate --from` fetches the run ([`fetch_run`]) and takes each
//!   stream's manifest from what that stream's own job reported ([`Reported`]), never from a
//!   ref another job could have moved; it trusts nothing a manifest says that can be checked
//!   ([`evaluate`]: the plan's hash, the start commit, and every commit against the plan's
//!   ownership; figures are counted again), turns what arrived into a run state the engine
//!   integrates like any other ([`settle`]), and once the run is finished pushes the
//!   integration branch and records the stage's tip ([`publish_integration`]).
//!
//! Every push is leased: a ref moves only from the value seen on the remote, so no job pushes
//! over another's unseen. Names of everything on the remote come from
//! [`crate::layout::RefNames`]; the README's "Trust model" says what a runner can and cannot
//! forge.

use serde::{Deserialize, Serialize};

use crate::error::{Error, IoContext, Result};
use crate::git::{self, Repo, refs, remote};
use crate::ids::Oid;
use crate::layout::{self, KeptKind, RefNames};
use crate::plan::Plan;
use crate::state::{Machines, RunDir, RunPhase, RunState, StreamState, TaskState};
use crate::text::short7;

mod arrival;
pub mod central;
mod integration;
pub mod only;

pub use arrival::*;
pub use integration::*;
/// The manifest format written by this build.
pub const MANIFEST_VERSION: u32 = 1;

/// What a machine did with its stream, pushed beside its branch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub version: u32,
    pub run_id: String,
    pub plan: String,
    /// The git blob id of the plan file the machine ran.
    pub plan_hash: String,
    pub stream: String,
    /// The run's base commit as the machine knew it.
    pub base: Oid,
    /// The commit the stream started from: the base, or the tip of stage `after_stage`.
    pub start: Oid,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after_stage: Option<usize>,
    /// The stream branch's tip when it ended (`start` when nothing was committed).
    pub tip: Oid,
    pub outcome: Outcome,
    pub tasks: Vec<ManifestTask>,
    /// The work the machine kept for this stream, as named on the remote.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kept: Vec<String>,
    pub streams_version: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    Done,
    Failed { reason: String },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ManifestTask {
    pub summary: String,
    /// As the machine recorded it (`integrated` there means: on the machine's private ref).
    pub state: TaskState,
    pub attempts: u32,
    /// Agent time, all attempts.
    pub agent_ms: u64,
    /// What its agent used, attempt by attempt, as the machine recorded it: the runner's own
    /// word (a runner is not trusted; `integrate` adds these up as reported).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub usage: Vec<crate::state::AttemptUsage>,
}

/// The run's stages: the plan's waves (stage 0: streams with no dependencies).
pub fn stages(plan: &Plan) -> Vec<Vec<usize>> {
    crate::plan::schedule::waves(plan)
}

pub fn stage_of(plan: &Plan, stream: usize) -> usize {
    stages(plan)
        .iter()
        .position(|wave| wave.contains(&stream))
        .unwrap_or(0)
}

/// Refuses a run id a caller chose that cannot be part of ref and directory names.
pub fn check_run_id(id: &str) -> Result<()> {
    match layout::run_id_problem(id) {
        Some(problem) => Err(Error::usage_with_hint(
            format!("`{id}` cannot be a run id: {problem}"),
            "in GitHub Actions use `${{ github.run_id }}-${{ github.run_attempt }}`",
        )),
        None => Ok(()),
    }
}

/// The stream `--only` names, or an error listing the plan's streams.
pub fn only_stream(plan: &Plan, name: &str) -> Result<usize> {
    plan.stream_index(name).ok_or_else(|| {
        let names: Vec<&str> = plan.streams.iter().map(|s| s.name.as_str()).collect();
        Error::usage_with_hint(
            format!("the plan has no stream `{name}`"),
            format!("its streams are: {}", names.join(", ")),
        )
    })
}

/// Where a stream starts on a machine: `--base` (a stage-0 stream), or `--after-stage K` with
/// `--start`, the tip stage K's integrate job reported (never a ref on the remote: any job can
/// move those).
pub struct StartAt<'a> {
    pub base: Option<&'a str>,
    pub after_stage: Option<usize>,
    pub start: Option<&'a str>,
}

/// The commit stream `s` starts from on a machine (fetched from `remote` by id when this clone
/// lacks it). Each mismatch says what to run instead.
pub fn stream_start(
    repo: &Repo,
    plan: &Plan,
    run_id: &str,
    s: usize,
    at: &StartAt,
    remote: Option<&str>,
) -> Result<Oid> {
    let name = &plan.streams[s].name;
    let stage = stage_of(plan, s);
    match (at.base, at.after_stage) {
        (Some(base), _) => {
            if stage > 0 {
                return Err(Error::usage_with_hint(
                    format!(
                        "stream `{name}` depends on {} (it is in stage {stage}): it must start from their integrated work, not from a base",
                        plan.streams[s].depends_on.join(", ")
                    ),
                    format!(
                        "once `streams integrate --run-id {run_id} --stage {}` has reported its tip, run it with `--after-stage {} --start TIP`",
                        stage - 1,
                        stage - 1
                    ),
                ));
            }
            resolve_here(repo, base)
        }
        (None, Some(k)) => {
            if stage == 0 {
                return Err(Error::usage_with_hint(
                    format!(
                        "stream `{name}` is in stage 0: it depends on nothing, so it starts from the base, not after stage {k}"
                    ),
                    "start it with `--base COMMIT`",
                ));
            }
            if k + 1 != stage {
                return Err(Error::usage_with_hint(
                    format!(
                        "stream `{name}` is in stage {stage}, so it starts after stage {}, not after stage {k}",
                        stage - 1
                    ),
                    format!("start it with `--after-stage {}`", stage - 1),
                ));
            }
            let Some(tip) = at.start else {
                return Err(Error::usage_with_hint(
                    format!("`--after-stage {k}` needs the tip stage {k} was integrated to"),
                    format!(
                        "give `--start COMMIT`: the tip `streams integrate --stage {k}` reported (in GitHub Actions, its job's output `tip`)"
                    ),
                ));
            };
            reported_commit(repo, remote, tip, &format!("stage {k}'s tip"))
        }
        (None, None) => Err(Error::usage_with_hint(
            "`--only` needs the commit to start from",
            "give `--base COMMIT` (a stream with no dependencies) or `--after-stage K --start TIP`",
        )),
    }
}

/// `commit` as this clone has it, or a usage error saying to fetch it.
fn resolve_here(repo: &Repo, commit: &str) -> Result<Oid> {
    repo.resolve_commit(commit).map_err(|_| {
        Error::usage_with_hint(
            format!("`{commit}` is not a commit in this clone"),
            "fetch it first (in GitHub Actions: actions/checkout with `fetch-depth: 0`)",
        )
    })
}

/// A commit a job reported by its full id (`what` names it in messages), fetched from `remote`
/// by id when this clone lacks it: the id is taken as reported, whatever refs point at.
pub fn reported_commit(repo: &Repo, remote: Option<&str>, id: &str, what: &str) -> Result<Oid> {
    if !is_full_id(id) {
        return Err(Error::usage_with_hint(
            format!("{what} `{id}` is not a full commit id"),
            "give the 40-character id the job reported (a branch name or short id could be moved or mistaken)",
        ));
    }
    let oid = Oid::from(id.to_ascii_lowercase().as_str());
    if !has_commit(repo, &oid) {
        if let Some(remote) = remote {
            // A failure here is said below, as the commit not being found.
            let _ = remote::fetch_commits(repo, remote, std::slice::from_ref(&oid));
        }
        if !has_commit(repo, &oid) {
            return Err(Error::state(
                format!(
                    "{what} {} is not in this clone{}",
                    short7(&oid),
                    remote.map(|r| format!(", nor on {r}")).unwrap_or_default()
                ),
                "was it pushed? check the id against what the job reported",
            ));
        }
    }
    Ok(oid)
}

/// Whether this clone has commit `oid`.
fn has_commit(repo: &Repo, oid: &Oid) -> bool {
    repo.commit_info(oid).is_ok()
}

/// A full hexadecimal object id (SHA-1 or SHA-256).
pub fn is_full_id(id: &str) -> bool {
    matches!(id.len(), 40 | 64) && id.chars().all(|c| c.is_ascii_hexdigit())
}

/// What a machine (or the central job) handed on: the refs it pushed to `remote` (none when
/// the remote had them already), and the outputs its CI job reports (`key`, value).
#[derive(Debug)]
pub struct Published {
    pub remote: String,
    pub refs: Vec<String>,
    pub outputs: Vec<(&'static str, String)>,
}

/// Pushes what a finished run spread over machines produced (a machine's stream, or the
/// central integration); `None` for any other run, or when there was nothing to push.
pub fn publish(state: &RunState, run_dir: &RunDir) -> Result<Option<Published>> {
    let Some(machines) = &state.machines else {
        return Ok(None);
    };
    if state.phase != RunPhase::Finished {
        return Ok(None);
    }
    let repo = Repo::discover(&state.repo_root)?;
    crate::failpoint::hit("before-publish");
    let published = match machines {
        Machines::Stream { .. } => {
            let text = std::fs::read_to_string(run_dir.plan_copy_path())
                .context(|| format!("could not read {}", run_dir.plan_copy_path().display()))?;
            publish_stream(&repo, state, &text)?
        }
        Machines::Integrate { .. } => publish_integration(&repo, state)?,
    };
    if let Some(published) = &published {
        job_outputs(&published.outputs)?;
    }
    Ok(published)
}

/// Appends `outputs` to the file GitHub Actions names in `$GITHUB_OUTPUT` (nothing elsewhere):
/// the job's outputs are what later jobs take this job's results from, and no other job can
/// set them.
pub fn job_outputs(outputs: &[(&str, String)]) -> Result<()> {
    let Some(path) = std::env::var_os("GITHUB_OUTPUT").filter(|p| !p.is_empty()) else {
        return Ok(());
    };
    let text: String = outputs.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
    use std::io::Write;
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(&path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .context(|| {
            format!(
                "could not write the job's outputs to {}",
                std::path::Path::new(&path).display()
            )
        })
}

/// Pushes what a machine's run of one stream left: the stream branch (under its usual name and
/// under the run's own name), the work it kept, and its manifest, in one atomic push. Done for
/// a failed stream too, so the central job can report it.
pub fn publish_stream(repo: &Repo, state: &RunState, plan_text: &str) -> Result<Option<Published>> {
    let Some(Machines::Stream {
        stream,
        push,
        after_stage,
        base,
    }) = &state.machines
    else {
        return Ok(None);
    };
    let Some(remote_name) = push else {
        return Ok(None);
    };
    let Some((_, record)) = state.stream_by_name(stream) else {
        return Err(Error::Internal(format!("the run has no stream `{stream}`")));
    };
    let names = RefNames::new(&state.plan_name);
    let start = state.base.clone();
    let tip = repo.ref_target(&record.branch)?.unwrap_or(start.clone());
    // Kept work of this stream (failed, rejected, interrupted tasks).
    let mut kept = Vec::new();
    for (name, oid) in refs::refs_under(repo, &layout::kept_refs(&state.plan_name))? {
        let ours = matches!(
            layout::parse_kept(&state.plan_name, &name),
            Some(
                KeptKind::Rejected
                    | KeptKind::Failed
                    | KeptKind::Wip
                    | KeptKind::Attempts
                    | KeptKind::Deleted
            )
        ) && name
            .strip_prefix(&layout::kept_refs(&state.plan_name))
            .and_then(|rest| rest.split_once('/'))
            .is_some_and(|(_, rest)| rest.starts_with(&format!("{stream}/")));
        if ours {
            kept.push((names.work_kept(&state.run_id, stream, &name), oid));
        }
    }
    let outcome = match &record.state {
        StreamState::Done { .. } => Outcome::Done,
        StreamState::Failed { reason, .. } => Outcome::Failed {
            reason: reason.clone(),
        },
        StreamState::Skipped { reason, .. } => Outcome::Failed {
            reason: reason.clone(),
        },
        other => Outcome::Failed {
            reason: format!("it did not finish (it is {})", other.name()),
        },
    };
    let manifest = Manifest {
        version: MANIFEST_VERSION,
        run_id: state.run_id.clone(),
        plan: state.plan_name.clone(),
        plan_hash: git::text_hash(plan_text),
        stream: stream.clone(),
        base: base.clone(),
        start,
        after_stage: *after_stage,
        tip: tip.clone(),
        outcome,
        tasks: record
            .tasks
            .iter()
            .map(|t| ManifestTask {
                summary: t.summary.clone(),
                state: t.state.clone(),
                attempts: t.attempts,
                agent_ms: t.agent_ms,
                usage: t.usage.clone(),
            })
            .collect(),
        kept: kept.iter().map(|(n, _)| n.clone()).collect(),
        streams_version: env!("CARGO_PKG_VERSION").to_string(),
    };
    let json = serde_json::to_vec_pretty(&manifest)
        .map_err(|e| Error::Internal(format!("could not write the manifest: {e}")))?;
    let commit = remote::write_manifest(
        repo,
        &json,
        &format!("streams: manifest of {stream}, run {}", state.run_id),
    )?;
    let manifest_ref = names.manifest(&state.run_id, stream);
    // Kept here too: a push that fails leaves it to be pushed again.
    refs::set_refs(
        repo,
        &[(manifest_ref.clone(), commit.clone())],
        "streams: manifest",
    )?;
    // Only names of this run and stream: the usual branch (`streams/<plan>/<stream>`) is not
    // this job's to move (a person may have pushed it, with `streams pr` say).
    let mut targets: Vec<(String, Oid)> = vec![(names.work(&state.run_id, stream), tip)];
    targets.extend(kept);
    targets.push((manifest_ref, commit.clone()));
    let pushed = push_leased(repo, remote_name, targets, &[])?;
    Ok(Some(Published {
        remote: remote_name.clone(),
        refs: pushed,
        outputs: vec![("manifest", commit.to_string())],
    }))
}

/// Pushes `targets` (ref, commit) to `remote` in one atomic push, each ref only from the value
/// it has there now, or for a ref in `checked` from the value given there (what the caller
/// looked at and allowed); refs already at their commit are left out. Returns the refs pushed.
fn push_leased(
    repo: &Repo,
    remote_name: &str,
    targets: Vec<(String, Oid)>,
    checked: &[(String, Option<Oid>)],
) -> Result<Vec<String>> {
    let names: Vec<String> = targets.iter().map(|(n, _)| n.clone()).collect();
    let mut seen: std::collections::BTreeMap<String, Option<Oid>> =
        remote::remote_values(repo, remote_name, &names)
            .map_err(|e| push_error(remote_name, e))?
            .into_iter()
            .map(|(n, o)| (n, Some(o)))
            .collect();
    seen.extend(checked.iter().cloned());
    let leases: Vec<remote::Lease> = targets
        .into_iter()
        .map(|(name, to)| remote::Lease {
            from: seen.get(&name).cloned().flatten(),
            name,
            to,
        })
        .filter(|lease| lease.from.as_ref() != Some(&lease.to))
        .collect();
    if leases.is_empty() {
        return Ok(Vec::new());
    }
    remote::push_atomic(repo, remote_name, &leases).map_err(|e| {
        if remote::lease_broken(&e) {
            let stale = remote::stale_refs(&e);
            let refs: Vec<&str> = leases
                .iter()
                .map(|l| layout::short_branch(&l.name))
                .filter(|name| stale.iter().any(|s| s == name))
                .collect();
            Error::state(
                format!(
                    "{} moved on {remote_name} while this job ran (another job pushed?): nothing was pushed",
                    refs.join(", ")
                ),
                "run the same command again: it looks at the remote afresh",
            )
        } else {
            push_error(remote_name, e)
        }
    })?;
    Ok(leases.into_iter().map(|l| l.name).collect())
}

/// Checks that `remote` can be read from here, before a machine spends its agents' time on a
/// stream whose push could not work.
pub fn check_remote(repo: &Repo, remote: &str, plan: &str, run_id: &str) -> Result<()> {
    // A prefix that matches little: the answer says the remote is there, not what it holds.
    let prefix = RefNames::new(plan).manifests_prefix(run_id);
    remote::remote_refs(repo, remote, &prefix).map(drop).map_err(|e| {
        Error::usage_with_hint(
            format!("cannot reach {remote}: {}", git_says(&e)),
            "check the remote's name or URL (`git remote -v`) and that it can be reached from here; nothing was run",
        )
    })
}

/// What git said about a failed command with a remote, in one line (its first `fatal:` or
/// `error:` line) rather than the whole command and all of its output.
fn git_says(err: &git::GitError) -> String {
    if let git::GitError::Command { stderr, .. } = err {
        let line = stderr
            .lines()
            .map(str::trim)
            .find(|l| l.starts_with("fatal:") || l.starts_with("error:"))
            .or_else(|| stderr.lines().map(str::trim).find(|l| !l.is_empty()));
        if let Some(line) = line {
            return line
                .trim_start_matches("fatal:")
                .trim_start_matches("error:")
                .trim()
                .to_string();
        }
    }
    err.to_string()
}

fn push_error(remote: &str, err: git::GitError) -> Error {
    let err = git_says(&err);
    Error::state(
        format!("could not push to {remote}: {err}"),
        "the run's work is kept here: fix the remote (access, network), then run the same command again; it pushes without running anything again",
    )
}

/// Fetches everything machines pushed for run `run_id`: manifests, stream branches and kept
/// work. Fetching again is harmless: refs are replaced by what the remote has. (What the
/// central job builds on is taken by id from what jobs reported, see [`fetch_reported`]; these
/// refs bring the objects, and the manifests when no job reported any.)
pub fn fetch_run(repo: &Repo, remote_name: &str, plan: &str, run_id: &str) -> Result<()> {
    let names = RefNames::new(plan);
    let refspecs: Vec<String> = [names.manifests_prefix(run_id), names.work_prefix(run_id)]
        .into_iter()
        .map(|p| format!("+{p}*:{p}*"))
        .collect();
    remote::fetch(repo, remote_name, &refspecs).map_err(|e| {
        Error::usage_with_hint(
            format!(
                "could not fetch run {run_id} from {remote_name}: {}",
                git_says(&e)
            ),
            "check the remote's name or URL (`git remote -v`) and that it can be read from here",
        )
    })
}

/// Fetches by id the commits of `ids` this clone lacks. One that cannot be fetched (a ref that
/// held it was moved or deleted, and the remote does not serve it by id) is left out: whoever
/// needs it says so.
pub fn fetch_reported(repo: &Repo, remote_name: &str, ids: &[Oid]) {
    let lacking: Vec<Oid> = ids
        .iter()
        .filter(|id| !has_commit(repo, id))
        .cloned()
        .collect();
    if remote::fetch_commits(repo, remote_name, &lacking).is_err() {
        for id in &lacking {
            let _ = remote::fetch_commits(repo, remote_name, std::slice::from_ref(id));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::FailReason;

    fn plan() -> Plan {
        crate::plan::parse_simple(
            r#"
[plan]
name = "p"
agent = ["agent"]

[[stream]]
name = "a"
owns = ["a/**"]
tasks = ["a1"]

[[stream]]
name = "b"
owns = ["b/**"]
tasks = ["b1"]

[[stream]]
name = "c"
owns = ["c/**"]
depends_on = ["a", "b"]
tasks = ["c1"]
"#,
        )
        .unwrap()
    }

    #[test]
    fn stages_are_the_waves_and_a_cut_plan_drops_what_is_already_integrated() {
        let plan = plan();
        assert_eq!(stages(&plan), vec![vec![0, 1], vec![2]]);
        assert_eq!(stage_of(&plan, 2), 1);
        let only_c = plan.only(&["c".to_string()]);
        assert_eq!(only_c.streams.len(), 1);
        assert!(only_c.streams[0].depends_on.is_empty());
        let a_and_c = plan.only(&["a".to_string(), "c".to_string()]);
        assert_eq!(a_and_c.streams[1].depends_on, vec!["a".to_string()]);
    }

    #[test]
    fn a_manifest_reads_back_as_written() {
        let manifest = Manifest {
            version: MANIFEST_VERSION,
            run_id: "1-1".into(),
            plan: "p".into(),
            plan_hash: "0".repeat(40),
            stream: "a".into(),
            base: "b".repeat(40).into(),
            start: "b".repeat(40).into(),
            after_stage: None,
            tip: "c".repeat(40).into(),
            outcome: Outcome::Failed {
                reason: "agent exited with code 1".into(),
            },
            tasks: vec![ManifestTask {
                summary: "a1".into(),
                state: TaskState::Failed {
                    reason: FailReason::Exit { code: 1 },
                    at: 5,
                },
                attempts: 1,
                agent_ms: 20,
                usage: Vec::new(),
            }],
            kept: vec!["refs/streams/p/work/1-1/kept/a/failed/a/1".into()],
            streams_version: "0.0.0".into(),
        };
        let json = serde_json::to_string(&manifest).unwrap();
        assert!(json.contains(r#""outcome":"failed""#), "{json}");
        assert_eq!(serde_json::from_str::<Manifest>(&json).unwrap(), manifest);
    }
}
