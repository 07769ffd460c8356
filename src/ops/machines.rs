//! A run spread over machines (CI jobs), with git as the only transport.
//!
//! - On a machine, `run --only STREAM` runs one stream from a start commit (the pinned base, or
//!   the integration tip an earlier stage pushed), then [`publish_stream`] pushes its branch,
//!   the work it kept and a [`Manifest`] saying what it did.
//! - In the central job, `integrate --from` fetches everything of the run ([`fetch_run`]),
//!   trusts nothing a machine says without checking it ([`evaluate`]: the plan's hash, the
//!   start commit, the branch against the manifest, and every commit against the plan's
//!   ownership), turns what arrived into a run state the engine integrates like any other
//!   ([`settle`]), and once the run is finished pushes the integration branch and the stage's
//!   tip ([`publish_integration`]).
//!
//! Names of everything on the remote come from [`crate::layout::RefNames`].

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::git::{self, Oid, Repo, refs, remote};
use crate::layout::{self, KeptKind, RefNames};
use crate::ownership::{Owner, Ownership};
use crate::plan::Plan;
use crate::state::{
    FailReason, Machines, OwnershipViolation, RunState, StreamState, SyncUnit, TaskRecord,
    TaskState, now_ms,
};

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

/// The commit stream `s` starts from on a machine: `base` (a stage-0 stream), or the tip that
/// `integrate --stage K` pushed to `remote` (`after_stage` = K, the stage before the stream's),
/// fetched here. Each mismatch says what to run instead.
pub fn stream_start(
    repo: &Repo,
    plan: &Plan,
    run_id: &str,
    s: usize,
    base: Option<&str>,
    after_stage: Option<usize>,
    remote: Option<&str>,
) -> Result<Oid> {
    let name = &plan.streams[s].name;
    let stage = stage_of(plan, s);
    match (base, after_stage) {
        (Some(base), _) => {
            if stage > 0 {
                return Err(Error::usage_with_hint(
                    format!(
                        "stream `{name}` depends on {} (it is in stage {stage}): it must start from their integrated work, not from a base",
                        plan.streams[s].depends_on.join(", ")
                    ),
                    format!(
                        "once `streams integrate --run-id {run_id} --stage {}` has pushed, run it with `--after-stage {}`",
                        stage - 1,
                        stage - 1
                    ),
                ));
            }
            repo.resolve_commit(base).map_err(|_| {
                Error::usage_with_hint(
                    format!("`{base}` is not a commit in this clone"),
                    "fetch it first (in GitHub Actions: actions/checkout with `fetch-depth: 0`)",
                )
            })
        }
        (None, Some(k)) => {
            if k + 1 != stage {
                let hint = if stage == 0 {
                    "it depends on nothing: start it with `--base COMMIT`".to_string()
                } else {
                    format!("start it with `--after-stage {}`", stage - 1)
                };
                return Err(Error::usage_with_hint(
                    format!(
                        "stream `{name}` is in stage {stage}, so it starts after stage {}, not after stage {k}",
                        stage.saturating_sub(1)
                    ),
                    hint,
                ));
            }
            let remote = remote.unwrap_or("origin");
            let names = RefNames::new(&plan.name);
            let stage_ref = names.stage(run_id, k);
            let found = remote::remote_refs(repo, remote, &names.stages_prefix(run_id))?;
            let Some((_, tip)) = found.into_iter().find(|(n, _)| *n == stage_ref) else {
                return Err(Error::usage_with_hint(
                    format!(
                        "{remote} has no integration tip for stage {k} of run {run_id} (no {stage_ref})"
                    ),
                    format!(
                        "the integrate job of stage {k} has to run first: `streams integrate --from {remote} --run-id {run_id} --stage {k}`"
                    ),
                ));
            };
            remote::fetch(repo, remote, &[format!("+{stage_ref}:{stage_ref}")])?;
            Ok(tip)
        }
        (None, None) => Err(Error::usage_with_hint(
            "`--only` needs the commit to start from",
            "give `--base COMMIT` (a stream with no dependencies) or `--after-stage K`",
        )),
    }
}

/// What a machine pushed: the refs on the remote, for the message.
#[derive(Debug)]
pub struct Published {
    pub remote: String,
    pub refs: Vec<String>,
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
    let mut targets: Vec<(String, Oid)> = vec![
        (record.branch.clone(), tip.clone()),
        (names.work(&state.run_id, stream), tip),
    ];
    targets.extend(kept);
    // The manifest last: whoever sees it finds everything it names.
    targets.push((manifest_ref, commit));
    let refspecs: Vec<String> = targets.iter().map(|(n, o)| format!("+{o}:{n}")).collect();
    remote::push_atomic(repo, remote_name, &refspecs).map_err(|e| push_error(remote_name, e))?;
    Ok(Some(Published {
        remote: remote_name.clone(),
        refs: targets.into_iter().map(|(n, _)| n).collect(),
    }))
}

fn push_error(remote: &str, err: git::GitError) -> Error {
    Error::state(
        format!("could not push to {remote}: {err}"),
        "the run's work is kept here: fix the remote (access, network), then run the same command again; it pushes without running anything again",
    )
}

/// Fetches everything machines pushed for run `run_id`: manifests, stream branches, kept work
/// and stage tips. Fetching again is harmless: refs are replaced by what the remote has.
pub fn fetch_run(repo: &Repo, remote_name: &str, plan: &str, run_id: &str) -> Result<()> {
    let names = RefNames::new(plan);
    let refspecs: Vec<String> = [
        names.manifests_prefix(run_id),
        names.work_prefix(run_id),
        names.stages_prefix(run_id),
    ]
    .into_iter()
    .map(|p| format!("+{p}*:{p}*"))
    .collect();
    remote::fetch(repo, remote_name, &refspecs).map_err(|e| {
        Error::usage_with_hint(
            format!("could not fetch run {run_id} from {remote_name}: {e}"),
            "check the remote's name or URL (`git remote -v`) and that it can be read from here",
        )
    })
}

/// What the central job made of one stream's arrival.
#[derive(Clone, Debug, PartialEq)]
pub enum Arrival {
    /// No manifest: its machine never pushed (or has not yet).
    Missing,
    /// Its manifest cannot be trusted or does not fit this run; nothing of it is integrated.
    Refused { reason: String },
    /// Its machine says it failed there.
    FailedThere {
        reason: String,
        manifest: Box<Manifest>,
    },
    /// Its commits change paths it does not own; its work is kept on `kept`.
    Rejected {
        task: usize,
        violations: Vec<OwnershipViolation>,
        kept: String,
        manifest: Box<Manifest>,
    },
    /// Checked: ready to integrate.
    Ready { manifest: Box<Manifest> },
}

/// What [`evaluate`] checks a manifest against.
pub struct Expect<'a> {
    pub run_id: &'a str,
    pub plan: &'a Plan,
    pub plan_hash: &'a str,
    pub ownership: &'a Ownership,
    /// The commits a stream of this integration may start from.
    pub starts: &'a [Oid],
}

/// The manifest machines pushed for `stream` of run `run_id`, fetched into this repository;
/// `Ok(None)` when there is none, `Err` with a reason when it cannot be read.
pub fn read_manifest(
    repo: &Repo,
    plan: &str,
    run_id: &str,
    stream: &str,
) -> Result<Option<std::result::Result<Manifest, String>>> {
    let name = RefNames::new(plan).manifest(run_id, stream);
    let Some(commit) = repo.ref_target(&name)? else {
        return Ok(None);
    };
    let Some(bytes) = remote::read_manifest(repo, &commit)? else {
        return Ok(Some(Err(format!(
            "{name} holds no {}",
            remote::MANIFEST_FILE
        ))));
    };
    Ok(Some(
        serde_json::from_slice::<Manifest>(&bytes)
            .map_err(|e| format!("{name} is unreadable: {e}")),
    ))
}

/// Checks what arrived for stream `s` of `expect.plan`, trusting nothing the machine says that
/// can be checked: the manifest names this run, plan and stream, and the plan's hash; the
/// stream started where this integration allows; the branch pushed is the manifest's tip, its
/// tasks chain from the start to that tip; and every commit changes only what the stream owns
/// (or `shared`). A violation keeps the work on the stream's rejected ref, as in a local run.
pub fn evaluate(repo: &Repo, expect: &Expect, s: usize) -> Result<Arrival> {
    let plan = expect.plan;
    let stream = &plan.streams[s].name;
    let manifest = match read_manifest(repo, &plan.name, expect.run_id, stream)? {
        None => return Ok(Arrival::Missing),
        Some(Err(reason)) => return Ok(Arrival::Refused { reason }),
        Some(Ok(m)) => m,
    };
    let refuse = |reason: String| Ok(Arrival::Refused { reason });
    if manifest.version > MANIFEST_VERSION {
        return refuse(format!(
            "its manifest has version {}, newer than this streams reads ({MANIFEST_VERSION}): use the same streams version on every machine",
            manifest.version
        ));
    }
    if manifest.run_id != expect.run_id || manifest.plan != plan.name || manifest.stream != *stream
    {
        return refuse(format!(
            "its manifest is for stream `{}` of plan `{}`, run {}",
            manifest.stream, manifest.plan, manifest.run_id
        ));
    }
    if manifest.plan_hash != expect.plan_hash {
        return refuse(format!(
            "its machine ran a different plan (plan hash {}, here {}): integrate with the plan file the machines ran, or run the stream again",
            short(&manifest.plan_hash),
            short(expect.plan_hash)
        ));
    }
    if !expect.starts.contains(&manifest.start) {
        let allowed: Vec<String> = expect.starts.iter().map(|o| short(o)).collect();
        return refuse(format!(
            "it started from {}, not from where this integration starts ({})",
            short(&manifest.start),
            allowed.join(" or ")
        ));
    }
    let names = RefNames::new(&plan.name);
    let pushed = repo.ref_target(&names.work(expect.run_id, stream))?;
    if pushed.as_ref() != Some(&manifest.tip) {
        return refuse(format!(
            "its pushed branch ({}) is not the tip its manifest names ({})",
            pushed.as_deref().map_or("none".to_string(), short),
            short(&manifest.tip)
        ));
    }
    if let Outcome::Failed { reason } = &manifest.outcome {
        return Ok(Arrival::FailedThere {
            reason: reason.clone(),
            manifest: Box::new(manifest),
        });
    }
    // The tasks' commits, one chain from the start to the tip.
    let mut at = manifest.start.clone();
    for task in &manifest.tasks {
        match task.state.range() {
            Some((start, end)) if start == at => at = end,
            _ => {
                return refuse(
                    "its manifest's tasks do not chain from its start to its tip".to_string(),
                );
            }
        }
    }
    if at != manifest.tip {
        return refuse("its manifest's tasks do not end at its tip".to_string());
    }
    let commits = match remote::commits_with_paths(repo, &manifest.start, &manifest.tip) {
        Ok(commits) => commits,
        Err(e) => return refuse(format!("its commits cannot be read: {e}")),
    };
    for commit in &commits {
        let violations = expect
            .ownership
            .check(s, commit.paths.iter().map(String::as_str));
        if violations.is_empty() {
            continue;
        }
        // The task whose commits hold the first offending one.
        let task = manifest
            .tasks
            .iter()
            .position(|t| {
                t.state
                    .end()
                    .is_some_and(|end| refs::is_ancestor(repo, &commit.id, end).unwrap_or(false))
            })
            .unwrap_or(manifest.tasks.len().saturating_sub(1));
        let kept = refs::keep_ref(
            repo,
            &names.rejected(stream, task),
            &manifest.tip,
            "streams integrate: work outside the stream's lane",
        )?;
        let violations = violations
            .into_iter()
            .map(|v| OwnershipViolation {
                path: v.path,
                owner: match v.owner {
                    Owner::Stream(i) => Some(plan.streams[i].name.clone()),
                    _ => None,
                },
            })
            .collect();
        return Ok(Arrival::Rejected {
            task,
            violations,
            kept,
            manifest: Box::new(manifest),
        });
    }
    Ok(Arrival::Ready {
        manifest: Box::new(manifest),
    })
}

/// Whether stream record `s` still waits for what its machine sends: not looked at yet, or
/// missing, or left out because a dependency was. Integrated, failed and refused streams are
/// settled for good.
pub fn unsettled(state: &RunState, s: usize) -> bool {
    let missing = match &state.machines {
        Some(Machines::Integrate { missing, .. }) => missing.contains(&state.streams[s].name),
        _ => false,
    };
    missing
        || matches!(
            state.streams[s].state,
            StreamState::Pending | StreamState::Skipped { chosen: false, .. }
        )
}

/// The message for a stream whose manifest never arrived.
pub fn missing_reason(remote: &str, run_id: &str) -> String {
    format!(
        "missing: its machine pushed nothing for run {run_id} to {remote} (it may still be running, or it died)"
    )
}

/// Turns every unsettled stream of an integration run (see [`unsettled`]) into what the engine
/// integrates: an arrived and checked stream becomes active with its tasks committed and its
/// work queued (in the order of `order`, dependencies first); the others fail with the reason,
/// and streams waiting on one that did not arrive are skipped. Returns the streams now missing.
/// The local stream branches are set to what arrived. `arrivals` is indexed like the state's
/// streams.
pub fn settle(
    repo: &Repo,
    state: &mut RunState,
    plan: &Plan,
    order: &[usize],
    earlier: &EarlierStages,
    mut arrival_of: impl FnMut(usize) -> Result<Arrival>,
) -> Result<Vec<String>> {
    let Some(Machines::Integrate {
        remote: remote_name,
        run_id,
        ..
    }) = state.machines.clone()
    else {
        return Err(Error::Internal("not an integration run".into()));
    };
    let now = now_ms();
    let mut missing = Vec::new();
    for &s in order {
        if !unsettled(state, s) {
            continue;
        }
        let name = state.streams[s].name.clone();
        let blocked = plan.streams[s]
            .depends_on
            .iter()
            .find(|d| {
                state.stream_by_name(d).is_some_and(|(_, r)| {
                    !matches!(
                        r.state,
                        StreamState::Active { .. } | StreamState::Done { .. }
                    )
                })
            })
            .cloned()
            .or_else(|| earlier.missing_dependency(&name));
        if let Some(dep) = blocked {
            let record = &mut state.streams[s];
            record.state = StreamState::Skipped {
                reason: format!("its dependency `{dep}` did not finish"),
                chosen: false,
            };
            for task in &mut record.tasks {
                task.state = TaskState::Skipped;
            }
            continue;
        }
        let arrival = arrival_of(s)?;
        let record = &mut state.streams[s];
        let copy_tasks = |record: &mut crate::state::StreamRecord, m: &Manifest| {
            for (task, from) in record.tasks.iter_mut().zip(&m.tasks) {
                task.attempts = from.attempts;
                task.agent_ms = from.agent_ms;
                task.state = match &from.state {
                    TaskState::Integrated {
                        start,
                        end,
                        stats,
                        finished_at,
                    }
                    | TaskState::Committed {
                        start,
                        end,
                        stats,
                        finished_at,
                    } => TaskState::Committed {
                        start: start.clone(),
                        end: end.clone(),
                        stats: stats.clone(),
                        finished_at: *finished_at,
                    },
                    TaskState::Failed { reason, at } => TaskState::Failed {
                        reason: reason.clone(),
                        at: *at,
                    },
                    _ => TaskState::Skipped,
                };
            }
        };
        match arrival {
            Arrival::Missing => {
                missing.push(name.clone());
                record.state = StreamState::Failed {
                    reason: missing_reason(&remote_name, &run_id),
                    at: now,
                };
                record
                    .tasks
                    .iter_mut()
                    .for_each(|t| *t = TaskRecord::pending(t.summary.clone()));
                record
                    .tasks
                    .iter_mut()
                    .for_each(|t| t.state = TaskState::Skipped);
            }
            Arrival::Refused { reason } => {
                record.state = StreamState::Failed {
                    reason: format!("refused: {reason}"),
                    at: now,
                };
                record
                    .tasks
                    .iter_mut()
                    .for_each(|t| t.state = TaskState::Skipped);
            }
            Arrival::FailedThere { reason, manifest } => {
                copy_tasks(record, &manifest);
                record.state = StreamState::Failed {
                    reason: format!("failed on its machine: {reason}"),
                    at: now,
                };
                if !manifest.kept.is_empty() {
                    record.notes.push(format!(
                        "its machine kept its work on {remote_name} as {}",
                        manifest.kept.join(", ")
                    ));
                }
            }
            Arrival::Rejected {
                task,
                violations,
                kept,
                manifest,
            } => {
                copy_tasks(record, &manifest);
                let reason = FailReason::Ownership { violations, kept };
                for (t, rec) in record.tasks.iter_mut().enumerate() {
                    if t == task {
                        rec.state = TaskState::Failed {
                            reason: reason.clone(),
                            at: now,
                        };
                    } else if t > task {
                        rec.state = TaskState::Skipped;
                    }
                }
                record.state = StreamState::Failed {
                    reason: format!("checked again centrally: {reason}"),
                    at: now,
                };
            }
            Arrival::Ready { manifest } => {
                copy_tasks(record, &manifest);
                let before = repo.ref_target(&record.branch)?;
                if before.as_ref() != Some(&manifest.tip) {
                    refs::update_ref(
                        repo,
                        &record.branch,
                        &manifest.tip,
                        before.as_deref(),
                        "streams integrate: the stream as its machine pushed it",
                    )?;
                }
                record.state = StreamState::Active { started_at: now };
                let unit = SyncUnit {
                    stream: s,
                    first: 0,
                    last: record.tasks.len().saturating_sub(1),
                    from: manifest.start.clone(),
                    to: manifest.tip.clone(),
                };
                if !state.queue.contains(&unit) {
                    state.queue.push(unit);
                }
            }
        }
    }
    if let Some(Machines::Integrate { missing: m, .. }) = &mut state.machines {
        *m = missing.clone();
    }
    Ok(missing)
}

/// What earlier stages of the run integrated, for a stage's streams whose dependencies are
/// there (dropped from the stage's cut plan): a dependency that did not make it into the
/// earlier stages' tip leaves the stream skipped, as in a local run.
#[derive(Debug, Default)]
pub struct EarlierStages {
    /// Per stream of this stage, its dependencies in earlier stages.
    pub dependencies: Vec<(String, Vec<String>)>,
    /// The streams whose work the earlier stages' tip holds (by their commits' trailers).
    pub integrated: std::collections::BTreeSet<String>,
}

impl EarlierStages {
    /// What earlier stages integrated between the run's base and `tip` (stage K-1's), for the
    /// streams named in `stage` of `full`.
    pub fn read(repo: &Repo, full: &Plan, stage: &[String], base: &Oid, tip: &Oid) -> Result<Self> {
        let integrated = git::trailers::integrated_tasks(repo, base, tip)?
            .into_iter()
            .map(|(stream, _)| stream)
            .collect();
        let dependencies = full
            .streams
            .iter()
            .filter(|s| stage.contains(&s.name))
            .map(|s| {
                let outside = s
                    .depends_on
                    .iter()
                    .filter(|d| !stage.contains(d))
                    .cloned()
                    .collect();
                (s.name.clone(), outside)
            })
            .collect();
        Ok(EarlierStages {
            dependencies,
            integrated,
        })
    }

    fn missing_dependency(&self, stream: &str) -> Option<String> {
        self.dependencies
            .iter()
            .find(|(s, _)| s == stream)
            .and_then(|(_, deps)| deps.iter().find(|d| !self.integrated.contains(*d)))
            .cloned()
    }
}

/// Pushes an integration run's result: the integration branch, the stage's tip (for the
/// machines of the next stage), and the work kept for streams rejected here.
pub fn publish_integration(repo: &Repo, state: &RunState) -> Result<Option<Published>> {
    let Some(Machines::Integrate {
        remote: remote_name,
        run_id,
        stage,
        ..
    }) = &state.machines
    else {
        return Ok(None);
    };
    let names = RefNames::new(&state.plan_name);
    let tip = state.integration_tip.clone();
    let mut targets = Vec::new();
    // What the remote had when this integration fetched: an integration of the same run made
    // elsewhere (the job run again in a fresh clone) with the same files is the same result,
    // and stays: machines of the next stage may have started from it already.
    let stage_ref = stage.map(|k| names.stage(run_id, k));
    let pushed_before = match &stage_ref {
        Some(name) => repo.ref_target(name)?,
        None => None,
    };
    let same_result = match &pushed_before {
        Some(before) if *before != tip => {
            git::commit::tree_of(repo, before).ok() == git::commit::tree_of(repo, &tip).ok()
        }
        _ => false,
    };
    if !same_result && integration_needs_push(repo, state, remote_name, run_id, *stage, &tip)? {
        targets.push((state.integration_ref.clone(), tip.clone()));
    }
    if let (Some(name), false) = (&stage_ref, same_result) {
        targets.push((name.clone(), tip.clone()));
    }
    for stream in &state.streams {
        for task in &stream.tasks {
            if let TaskState::Failed {
                reason: FailReason::Ownership { kept, .. },
                ..
            } = &task.state
                && let Some(oid) = repo.ref_target(kept)?
            {
                targets.push((kept.clone(), oid));
            }
        }
    }
    if targets.is_empty() {
        return Ok(None);
    }
    let refspecs: Vec<String> = targets.iter().map(|(n, o)| format!("+{o}:{n}")).collect();
    remote::push_atomic(repo, remote_name, &refspecs).map_err(|e| push_error(remote_name, e))?;
    // This repository's copy of the stage tip follows the remote's.
    if let (Some(name), false) = (&stage_ref, same_result) {
        refs::set_refs(repo, &[(name.clone(), tip)], "streams integrate: pushed")?;
    }
    Ok(Some(Published {
        remote: remote_name.clone(),
        refs: targets.into_iter().map(|(n, _)| n).collect(),
    }))
}

/// Whether the remote's integration branch should move to `tip`: not when it is there already
/// or holds the same files, and not when a later stage of this run moved it on (integrating an
/// earlier stage again must not take it back).
fn integration_needs_push(
    repo: &Repo,
    state: &RunState,
    remote_name: &str,
    run_id: &str,
    stage: Option<usize>,
    tip: &Oid,
) -> Result<bool> {
    let on_remote = remote::remote_refs(repo, remote_name, &state.integration_ref)?
        .into_iter()
        .find(|(name, _)| *name == state.integration_ref)
        .map(|(_, oid)| oid);
    let Some(there) = on_remote else {
        return Ok(true);
    };
    if there == *tip {
        return Ok(false);
    }
    let later_stage = |there: &Oid| -> Result<bool> {
        let Some(k) = stage else { return Ok(false) };
        let prefix = RefNames::new(&state.plan_name).stages_prefix(run_id);
        Ok(refs::refs_under(repo, &prefix)?
            .into_iter()
            .any(|(name, oid)| {
                oid == *there
                    && name
                        .strip_prefix(&prefix)
                        .and_then(|n| n.parse::<usize>().ok())
                        .is_some_and(|j| j > k)
            }))
    };
    if later_stage(&there)? {
        return Ok(false);
    }
    let same_files =
        git::commit::tree_of(repo, &there).ok() == git::commit::tree_of(repo, tip).ok();
    Ok(!same_files)
}

/// The base an integration run starts from: stage K-1's tip for K > 0; else the start every
/// arrived stage-0 manifest names (the first in plan order), else `fallback` (the plan's base
/// here, if it resolves). `Err(Some(k))`: stage k's tip is not there; `Err(None)`: no base.
pub fn integration_base(
    repo: &Repo,
    plan: &Plan,
    run_id: &str,
    stage: Option<usize>,
    fallback: Option<&Oid>,
) -> Result<std::result::Result<Oid, Option<usize>>> {
    let names = RefNames::new(&plan.name);
    if let Some(k) = stage.filter(|&k| k > 0) {
        return Ok(repo
            .ref_target(&names.stage(run_id, k - 1))?
            .ok_or(Some(k - 1)));
    }
    for stream in &plan.streams {
        if let Some(Ok(m)) = read_manifest(repo, &plan.name, run_id, &stream.name)?
            && m.after_stage.is_none()
        {
            return Ok(Ok(m.start));
        }
    }
    Ok(fallback.cloned().ok_or(None))
}

/// The commits streams of this integration may start from: its base, and without `--stage`
/// the tips of every stage already pushed for the run.
pub fn allowed_starts(
    repo: &Repo,
    plan: &str,
    run_id: &str,
    stage: Option<usize>,
    base: &Oid,
) -> Result<Vec<Oid>> {
    let mut starts = vec![base.clone()];
    if stage.is_none() {
        let prefix = RefNames::new(plan).stages_prefix(run_id);
        starts.extend(refs::refs_under(repo, &prefix)?.into_iter().map(|(_, o)| o));
    }
    Ok(starts)
}

fn short(oid: &str) -> String {
    oid.chars().take(7).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

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
            }],
            kept: vec!["refs/streams/p/work/1-1/kept/a/failed/a/1".into()],
            streams_version: "0.0.0".into(),
        };
        let json = serde_json::to_string(&manifest).unwrap();
        assert!(json.contains(r#""outcome":"failed""#), "{json}");
        assert_eq!(serde_json::from_str::<Manifest>(&json).unwrap(), manifest);
    }
}
