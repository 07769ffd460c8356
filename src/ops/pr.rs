//! `pr`: push a run's stream branches (or its integration branch) to a remote and open one pull
//! request each through `gh`, or update the ones a previous `streams pr` opened.
//!
//! Nothing is pushed unless this is asked for. Pull requests are made in dependency order, so
//! a stream's body can link the pull requests of the streams it depends on ("Depends on #12").

use crate::error::{Error, Result};
use crate::gh::{Gh, PrText, PullRequest};
use crate::git::{Repo, review};
use crate::layout;
use crate::report::pr_view::{self, PrContext};
use crate::report::show_view::StreamShow;
use crate::state::{RunDir, RunState};

use super::show;

pub struct PrRequest<'a> {
    /// The streams to push (empty: every stream with commits).
    pub streams: &'a [String],
    pub remote: &'a str,
    /// Push and open a pull request for the integration branch only.
    pub integration: bool,
    /// The branch the pull requests merge into (default: the plan's base, if it is a branch).
    pub base: Option<&'a str>,
    pub draft: bool,
    pub dry_run: bool,
}

/// One pull request to open or update.
pub struct Planned {
    /// The stream, or `integration`.
    pub name: String,
    pub head: String,
    pub base: String,
    pub title: String,
    /// Streams (names) whose pull requests this one links to.
    pub depends_on: Vec<String>,
    /// The stream's view, to write the body once the dependencies' numbers are known.
    stream: Option<StreamShow>,
}

pub use crate::report::pr_view::{Opened, PrOutcome};

pub fn pr(repo: &Repo, dir: &RunDir, state: &RunState, req: &PrRequest<'_>) -> Result<PrOutcome> {
    let remote_url = review::remote_url(repo, req.remote).ok_or_else(|| {
        Error::usage_with_hint(
            format!("no remote `{}` in this repository", req.remote),
            "name one of `git remote -v`, or add one: `git remote add NAME URL`",
        )
    })?;
    let base = pr_base(repo, state, req.base)?;
    let plan = super::session::plan_from_copy(dir, state)?;
    let shown = show::show(repo, dir, state, None)?;
    let planned = if req.integration {
        let head = layout::short_branch(&state.integration_ref).to_string();
        vec![Planned {
            name: "integration".into(),
            title: format!(
                "{}: the integrated work of run {}",
                state.plan_name, state.run_id
            ),
            head,
            base: base.clone(),
            depends_on: Vec::new(),
            stream: None,
        }]
    } else {
        select(&shown.streams, req.streams)?
            .into_iter()
            .map(|s| Planned {
                name: s.name.clone(),
                head: s.branch.clone(),
                base: base.clone(),
                title: pr_view::title(s),
                depends_on: s.depends_on.clone(),
                stream: Some(s.clone()),
            })
            .collect()
    };
    let refspecs: Vec<String> = planned
        .iter()
        .map(|p| {
            let full = layout::branch_ref(&p.head);
            format!("{full}:{full}")
        })
        .collect();
    let gh = Gh::new(repo.root(), crate::gh::github_repo(&remote_url));
    let body_of = |p: &Planned, prs: &[(String, PullRequest)]| -> String {
        match &p.stream {
            None => pr_view::integration_body(&shown.streams, &state.plan_name, &state.run_id),
            Some(s) => {
                let owns: Vec<String> = plan
                    .streams
                    .iter()
                    .find(|ps| ps.name == s.name)
                    .map(|ps| ps.owns.iter().map(|o| o.text.clone()).collect())
                    .unwrap_or_default();
                let shared: Vec<String> = plan.shared.iter().map(|o| o.text.clone()).collect();
                let deps: Vec<(String, Option<String>)> = p
                    .depends_on
                    .iter()
                    .map(|d| {
                        let pr = prs
                            .iter()
                            .find(|(name, _)| name == d)
                            .map(|(_, pr)| format!("#{}", pr.number));
                        (d.clone(), pr)
                    })
                    .collect();
                pr_view::body(
                    s,
                    &PrContext {
                        plan: &state.plan_name,
                        run_id: &state.run_id,
                        owns: &owns,
                        shared: &shared,
                        depends_on: &deps,
                    },
                )
            }
        }
    };

    if req.dry_run {
        let mut commands = vec![push_argv(req.remote, &refspecs)];
        for p in &planned {
            let body = body_of(p, &[]);
            let text = PrText {
                title: &p.title,
                body: &body,
            };
            commands.push(gh.create_argv(&p.head, &p.base, &text, req.draft));
        }
        return Ok(PrOutcome::DryRun {
            commands,
            gh_missing: !gh.installed(),
        });
    }

    gh.check_ready()?;
    review::push(repo, req.remote, &refspecs, true)?;
    // Pull requests of this run's streams, found or made so far (a dependency that is not
    // pushed this time may still have one from an earlier `streams pr`).
    let mut prs: Vec<(String, PullRequest)> = Vec::new();
    for p in &planned {
        for dep in &p.depends_on {
            if !prs.iter().any(|(n, _)| n == dep)
                && let Some(found) = gh.find(layout::short_branch(&layout::stream_branch(
                    &state.plan_name,
                    dep,
                )))?
            {
                prs.push((dep.clone(), found));
            }
        }
    }
    let mut opened = Vec::new();
    for p in &planned {
        let body = body_of(p, &prs);
        let text = PrText {
            title: &p.title,
            body: &body,
        };
        let (pr, created) = match gh.find(&p.head)? {
            Some(existing) => {
                gh.edit(existing.number, &text)?;
                (existing, false)
            }
            None => (gh.create(&p.head, &p.base, &text, req.draft)?, true),
        };
        prs.retain(|(n, _)| *n != p.name);
        prs.push((p.name.clone(), pr.clone()));
        opened.push(Opened {
            name: p.name.clone(),
            head: p.head.clone(),
            created,
            number: pr.number,
            url: pr.url,
        });
    }
    Ok(PrOutcome::Done {
        pushed: planned.iter().map(|p| p.head.clone()).collect(),
        opened,
    })
}

/// The branch pull requests merge into: `--base`, else the plan's base when it names a branch
/// (a plan without `base` runs from `HEAD`: then the branch checked out now).
fn pr_base(repo: &Repo, state: &RunState, base: Option<&str>) -> Result<String> {
    if let Some(base) = base {
        return Ok(base.to_string());
    }
    let current = (state.base_rev == "HEAD")
        .then(|| repo.current_branch())
        .flatten();
    let name = current
        .as_deref()
        .unwrap_or_else(|| layout::short_branch(&state.base_rev));
    match repo.ref_target(&layout::branch_ref(name)) {
        Ok(Some(_)) => Ok(name.to_string()),
        _ => Err(Error::usage_with_hint(
            format!(
                "the plan's base `{}` is not a branch, so it cannot be a pull request's base",
                state.base_rev
            ),
            "name the branch to merge into: `streams pr --base BRANCH`",
        )),
    }
}

/// The streams named (each must have commits), or every stream with commits, dependencies
/// before the streams that depend on them.
fn select<'a>(streams: &'a [StreamShow], names: &[String]) -> Result<Vec<&'a StreamShow>> {
    let chosen: Vec<&StreamShow> = if names.is_empty() {
        let with_work: Vec<&StreamShow> =
            streams.iter().filter(|s| !s.commits.is_empty()).collect();
        if with_work.is_empty() {
            return Err(Error::usage_with_hint(
                "no stream of this run has commits to push",
                "`streams show` lists what each stream did",
            ));
        }
        with_work
    } else {
        names
            .iter()
            .map(|name| {
                let s = streams.iter().find(|s| &s.name == name).ok_or_else(|| {
                    Error::usage_with_hint(
                        format!("the run has no stream `{name}`"),
                        format!(
                            "its streams: {}",
                            streams
                                .iter()
                                .map(|s| s.name.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    )
                })?;
                if s.commits.is_empty() {
                    return Err(Error::usage_with_hint(
                        format!("stream `{name}` has no commits to push ({})", s.state),
                        "`streams show STREAM` says what happened to it",
                    ));
                }
                Ok(s)
            })
            .collect::<Result<_>>()?
    };
    // Dependencies first; the run's order breaks ties. Streams form a DAG, so this ends.
    let mut ordered: Vec<&StreamShow> = Vec::new();
    while ordered.len() < chosen.len() {
        let before = ordered.len();
        for s in &chosen {
            let placed = ordered.iter().any(|o| o.name == s.name);
            let ready = s.depends_on.iter().all(|d| {
                !chosen.iter().any(|c| &c.name == d) || ordered.iter().any(|o| &o.name == d)
            });
            if !placed && ready {
                ordered.push(s);
            }
        }
        if ordered.len() == before {
            // Not a DAG after all (a state file edited by hand): keep the rest in run order.
            let rest: Vec<&StreamShow> = chosen
                .iter()
                .copied()
                .filter(|s| !ordered.iter().any(|o| o.name == s.name))
                .collect();
            ordered.extend(rest);
        }
    }
    Ok(ordered)
}

fn push_argv(remote: &str, refspecs: &[String]) -> Vec<String> {
    let mut argv: Vec<String> = ["git", "push", "--force-with-lease", remote]
        .iter()
        .map(|s| s.to_string())
        .collect();
    argv.extend(refspecs.iter().cloned());
    argv
}
