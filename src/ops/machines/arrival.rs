//! The central job's side of an arrival: which manifest it reads for each stream
//! ([`Reported`]), checking everything that manifest says ([`evaluate`]), and turning what
//! arrived into run state the engine integrates ([`settle`]).

use std::collections::BTreeMap;

use crate::error::{Error, Result};
use crate::git::{self, Repo, refs, remote};
use crate::ids::Oid;
use crate::layout::RefNames;
use crate::ownership::{Owner, Ownership};
use crate::plan::Plan;
use crate::state::{
    FailReason, Machines, OwnershipViolation, RunState, StreamRecord, StreamState, SyncUnit,
    TaskRecord, TaskState, now_ms,
};

use super::{MANIFEST_VERSION, Manifest, Outcome};
use crate::text::short7;

/// Where the central job takes each stream's manifest from.
#[derive(Clone, Debug)]
pub enum Reported {
    /// The manifest commit each stream's own job reported as its output
    /// (`--manifest STREAM=COMMIT`): no other job can set those, so no job can put its work
    /// in another stream's name. A stream without one reported nothing.
    ByJob(BTreeMap<String, Option<Oid>>),
    /// The manifest refs on the remote, for machines that report nothing else: any job that
    /// can push could have written them.
    Refs,
}

impl Reported {
    /// The manifest commit to read for `stream` of run `run_id` (fetched already); `None`
    /// when there is none.
    pub fn commit(
        &self,
        repo: &Repo,
        plan: &str,
        run_id: &str,
        stream: &str,
    ) -> Result<Option<Oid>> {
        match self {
            Reported::ByJob(ids) => Ok(ids.get(stream).cloned().flatten()),
            Reported::Refs => Ok(repo.ref_target(&RefNames::new(plan).manifest(run_id, stream))?),
        }
    }
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
    /// The commit every stream of this integration started from: the run's base, or the tip
    /// of the stage before as its integrate job reported it.
    pub start: &'a Oid,
    /// `--stage`: `None` for a whole integration.
    pub stage: Option<usize>,
    /// Where a stream's tip is fetched from by id, when this clone lacks it.
    pub remote: &'a str,
}

/// The manifest that commit `commit` holds; `Err` with a reason when there is none, or it
/// cannot be read.
pub fn read_manifest(repo: &Repo, commit: &Oid) -> Result<std::result::Result<Manifest, String>> {
    if repo.commit_info(commit).is_err() {
        return Ok(Err(format!(
            "its manifest {} is not on the remote (a ref that held it was moved or deleted?)",
            short7(commit)
        )));
    }
    let Some(bytes) = remote::read_manifest(repo, commit)? else {
        return Ok(Err(format!(
            "its manifest {} holds no {}",
            short7(commit),
            remote::MANIFEST_FILE
        )));
    };
    Ok(serde_json::from_slice::<Manifest>(&bytes)
        .map_err(|e| format!("its manifest {} is unreadable: {e}", short7(commit))))
}

/// Checks what arrived for stream `s` of `expect.plan` in manifest commit `manifest` (the one
/// its job reported), trusting nothing the manifest says that can be checked: it names this
/// run, plan and stream, and the plan's hash; the stream started where this integration
/// starts; its tasks chain from the start to its tip; and every commit changes only what the
/// stream owns (or `shared`). A violation keeps the work on the stream's rejected ref, as in a
/// local run.
pub fn evaluate(repo: &Repo, expect: &Expect, s: usize, manifest: Option<&Oid>) -> Result<Arrival> {
    let plan = expect.plan;
    let stream = &plan.streams[s].name;
    let Some(commit) = manifest else {
        return Ok(Arrival::Missing);
    };
    let manifest = match read_manifest(repo, commit)? {
        Err(reason) => return Ok(Arrival::Refused { reason }),
        Ok(m) => m,
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
            short7(&manifest.plan_hash),
            short7(expect.plan_hash)
        ));
    }
    if manifest.start != *expect.start {
        let whole = match (expect.stage, manifest.after_stage) {
            (None, Some(k)) => format!(
                " (it ran after stage {k}: a whole integration takes streams started from the base; integrate stage by stage with `--stage`)"
            ),
            _ => String::new(),
        };
        return refuse(format!(
            "it started from {}, not from where this integration starts ({}){whole}",
            short7(&manifest.start),
            short7(expect.start)
        ));
    }
    if repo.commit_info(&manifest.tip).is_err() {
        super::fetch_reported(repo, expect.remote, std::slice::from_ref(&manifest.tip));
        if repo.commit_info(&manifest.tip).is_err() {
            return refuse(format!(
                "its tip {} is not on the remote (a ref that held it was moved or deleted?)",
                short7(&manifest.tip)
            ));
        }
    }
    // The plan is the same (its hash), so the machine's record had every task of the stream.
    let planned = plan.streams[s].tasks.len();
    if manifest.tasks.len() != planned {
        return refuse(format!(
            "its manifest lists {} task(s), the plan gives `{stream}` {planned}",
            manifest.tasks.len()
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
        Err(e) => return refuse(format!("its commits cannot be checked: {e}")),
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
            &RefNames::new(&plan.name).rejected(stream, task),
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
/// missing, or left out because a dependency was; or failed here on a manifest other than
/// `reported`, the one its job reports now (the job was run again). Integrated streams are
/// settled for good, and so are failed ones while their job reports nothing new.
pub fn unsettled(state: &RunState, s: usize, reported: Option<&Oid>) -> bool {
    let (missing, settled_from) = match &state.machines {
        Some(Machines::Integrate {
            missing, arrived, ..
        }) => (
            missing.contains(&state.streams[s].name),
            arrived.get(&state.streams[s].name),
        ),
        _ => (false, None),
    };
    let failed_on_another = matches!(state.streams[s].state, StreamState::Failed { .. })
        && reported.is_some()
        && reported != settled_from;
    missing
        || failed_on_another
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
/// and streams waiting on one that did not arrive are skipped. `reported` is, per stream of
/// the state, the manifest its job reports (see [`Reported`]); `evaluate` checks one. Returns
/// the streams now missing. The local stream branches are set to what arrived.
pub fn settle(
    repo: &Repo,
    state: &mut RunState,
    plan: &Plan,
    order: &[usize],
    earlier: &EarlierStages,
    reported: &[Option<Oid>],
    mut evaluate: impl FnMut(usize, Option<&Oid>) -> Result<Arrival>,
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
        let manifest = reported.get(s).cloned().flatten();
        if !unsettled(state, s, manifest.as_ref()) {
            continue;
        }
        let name = state.streams[s].name.clone();
        if matches!(state.streams[s].state, StreamState::Failed { .. }) {
            // Its job was run again: what the last look made of it goes.
            let record = &mut state.streams[s];
            for task in &mut record.tasks {
                *task = TaskRecord::pending(task.summary.clone());
            }
            record.notes.clear();
            record.state = StreamState::Pending;
        }
        if let Some(dep) = blocked_by(state, plan, s, earlier) {
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
        let arrival = evaluate(s, manifest.as_ref())?;
        if arrival == Arrival::Missing {
            missing.push(name.clone());
        }
        settle_one(repo, state, s, arrival, &remote_name, &run_id, now)?;
        if let (Some(Machines::Integrate { arrived, .. }), Some(id)) =
            (&mut state.machines, manifest)
        {
            arrived.insert(name, id);
        }
    }
    if let Some(Machines::Integrate { missing: m, .. }) = &mut state.machines {
        *m = missing.clone();
    }
    Ok(missing)
}

/// The dependency of stream `s` that did not finish (here, or in an earlier stage), if any:
/// the stream is skipped, as in a local run.
fn blocked_by(state: &RunState, plan: &Plan, s: usize, earlier: &EarlierStages) -> Option<String> {
    plan.streams[s]
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
        .or_else(|| earlier.missing_dependency(&state.streams[s].name))
}

/// Stream `s` as its arrival leaves it: failed (missing, refused, failed on its machine,
/// rejected here), or active with its work queued for the engine (ready); its local branch set
/// to what its machine pushed.
fn settle_one(
    repo: &Repo,
    state: &mut RunState,
    s: usize,
    arrival: Arrival,
    remote_name: &str,
    run_id: &str,
    now: u64,
) -> Result<()> {
    let record = &mut state.streams[s];
    match arrival {
        Arrival::Missing => {
            record.state = StreamState::Failed {
                reason: missing_reason(remote_name, run_id),
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
            copy_tasks(repo, record, &manifest);
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
            copy_tasks(repo, record, &manifest);
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
            copy_tasks(repo, record, &manifest);
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
    Ok(())
}

/// The tasks' records as the machine's manifest has them (integrated there is committed here:
/// the integration is this job's), with their figures counted again from their commits: a
/// manifest's numbers are what its machine says. The agent time cannot be counted here; it is
/// kept as reported, and the stream's notes say so.
fn copy_tasks(repo: &Repo, record: &mut StreamRecord, m: &Manifest) {
    for (task, from) in record.tasks.iter_mut().zip(&m.tasks) {
        task.attempts = from.attempts;
        task.agent_ms = from.agent_ms;
        task.usage = from.usage.clone();
        task.state = match &from.state {
            TaskState::Integrated {
                start,
                end,
                finished_at,
                ..
            }
            | TaskState::Committed {
                start,
                end,
                finished_at,
                ..
            } => TaskState::Committed {
                start: start.clone(),
                end: end.clone(),
                // Zero when its commits cannot be read (a failed stream's are not checked).
                stats: git::changes::work_stats(repo, start, end).unwrap_or_default(),
                finished_at: *finished_at,
            },
            TaskState::Failed { reason, at } => TaskState::Failed {
                reason: reason.clone(),
                at: *at,
            },
            _ => TaskState::Skipped,
        };
    }
    let agent_ms: u64 = m.tasks.iter().map(|t| t.agent_ms).sum();
    record.notes.push(format!(
        "agent time as its job reported it ({}): streams cannot count it again",
        crate::duration::fmt_duration_ms(agent_ms)
    ));
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
