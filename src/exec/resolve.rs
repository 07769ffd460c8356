//! The resolver agent (`resolve = { agent, mode }`): when a stream's integration conflicts, an
//! agent resolves the conflict in the stream's resolution workspace before a person sees it.
//! Its result is accepted only by streams' own rules (`coordinator::resolver::verify`: no
//! markers, only the conflicted regions and their margin changed) and only once the checks of
//! the streams whose work conflicts and the plan's gate pass on it. Then `propose` leaves it
//! ready for a person (the stream stays parked), `accept` integrates it as a commit of its own.
//! A refused resolution is kept on the stream's `resolution` ref, the resolution workspace is
//! laid out again with the conflict, and the stream waits for a person with the reason.
//!
//! It runs inside the integration step (the dispatcher waits for it), sandboxed as any agent.
//! Crash safety: the stream is recorded as parked (or its unit integrated) only after the
//! resolver is done; killed while it runs, its unit is still queued and `resume` integrates it
//! again, finds the same conflict and runs the resolver again.
//!
//! Its usage is in the ledger: recorded as an attempt of kind `resolution` of the conflicting
//! unit's last task (read from a preset's events, else the generic forms, `{usage_file}` or a
//! `streams_usage` line), so the stream's and the run's totals, the report and the budgets count
//! it. The budgets of the stream and of the plan apply: with nothing left it does not run, and
//! it is stopped when its streamed usage spends what is left.

use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::process::{self, AgentCommand, AgentExit, Cancel, Limits};
use super::run::Run;
use super::sandbox::{Lane, Spec};
use super::task_spec::AgentStart;
use crate::agent::argv::Placeholders;
use crate::agent::usage::{AttemptKind, AttemptUsage};
use crate::coordinator::resolver::{self, Conflicted, Refusal};
use crate::coordinator::{ConflictFound, IntegrationMove, UnitInput};
use crate::error::{Error, Result};
use crate::git::trailers::TRAILER_STREAM;
use crate::ids::{Oid, StreamId};
use crate::ledger::budget::Spent;
use crate::plan::model::Budget;
use crate::plan::{ResolveMode, Resolver};
use crate::state::{Proposal, SyncUnit};

/// What the resolver came to.
pub(super) enum Outcome {
    /// Accepted; `mode = "accept"`: integrated, the integration tip is now `tip`.
    Integrated { tip: Oid, proposal: Proposal },
    /// Accepted; `mode = "propose"`: ready in the resolution workspace for a person.
    Proposed(Proposal),
    /// Refused (or the agent failed): the reason is in the proposal; the workspace holds the
    /// conflict again.
    Refused(Proposal),
}

/// Runs the resolver on the conflict of `unit`, laid out in `workspace`, and judges its
/// result. `None` when the plan has no resolver.
pub(super) async fn run(
    run: &mut Run,
    unit: &SyncUnit,
    conflict: &ConflictFound,
    files: &[String],
    workspace: &Path,
    cancel: watch::Receiver<Cancel>,
) -> Result<Option<Outcome>> {
    let Some(resolver) = run.ctx.plan.resolve.clone() else {
        return Ok(None);
    };
    if files.is_empty() {
        return Ok(None);
    }
    let s = unit.stream;
    let name = run.state.streams[s].name.clone();
    run.message(&format!(
        "conflict integrating {name} in {}: the resolver agent tries first",
        crate::report::quote_paths(files)
    ));
    let bundle = run.ctx.run_dir.conflicts_dir(&name);
    let others = conflicting_streams(run, conflict, files);
    let prompt = prompt(run, unit, &others, files, &bundle, workspace);
    let prompt_file = bundle.join("resolver-prompt.md");
    std::fs::write(&prompt_file, &prompt).map_err(|e| {
        Error::io(
            format!("could not write the prompt {}", prompt_file.display()),
            e,
        )
    })?;
    let log = bundle.join("resolver.log");
    let left = budget_left(run, s);
    let (exit, took) = match &left {
        Err(spent) => (
            AgentExit::SpawnFailed(format!("nothing is left of {spent}")),
            Duration::ZERO,
        ),
        Ok(left) => {
            let ran = run_agent(
                run,
                s,
                &resolver,
                &prompt,
                &prompt_file,
                workspace,
                &log,
                left.clone(),
                cancel.clone(),
            )
            .await;
            record_usage(run, unit, &ran);
            (ran.exit, ran.took)
        }
    };
    let attempt = crate::state::ResolverAttempt {
        log: log.clone(),
        took_ms: took.as_millis() as u64,
        exit: exit_words(&exit),
    };
    let mut proposal = Proposal {
        resolver: resolver_name(&resolver),
        mode: resolver.mode.as_str().to_string(),
        work: None,
        commit: None,
        tree: None,
        refused: None,
        attempt,
    };
    let verdict = if exit != AgentExit::Exited(0) {
        Err(format!(
            "the resolver agent {} (its log: {})",
            exit.verdict().1,
            log.display()
        ))
    } else {
        judge(run, unit, conflict, files, workspace, &others, cancel).await?
    };
    match verdict {
        Ok(tree) => {
            let tasks = run.unit_tasks(unit);
            let input = unit_input(run, unit, &name, &conflict.ours, &tasks);
            let sides = conflicted(conflict, files);
            let repo = run.ctx.repo.clone();
            let (work, commit) =
                resolver::resolution_commits(&repo, &input, &sides, &tree, &proposal.resolver)?;
            // The resolution alone, for a person (`streams ui` shows it beside the conflict).
            if let Ok(patch) = crate::git::review::patch(&repo, &work, &commit) {
                let _ = std::fs::write(bundle.join("resolution.diff"), patch);
            }
            proposal.work = Some(work);
            proposal.commit = Some(commit.clone());
            proposal.tree = Some(tree);
            crate::git::refs::keep_ref(
                &repo,
                &run.ctx.refs.resolution(&name),
                &commit,
                "streams: the resolver's resolution",
            )?;
            if resolver.mode == ResolveMode::Accept {
                crate::coordinator::move_integration_ref(
                    &repo,
                    Some(&run.ctx.journal),
                    &run.state.integration_ref,
                    Some(&conflict.ours),
                    Some(&commit),
                    IntegrationMove::Unit(&input),
                )?;
                return Ok(Some(Outcome::Integrated {
                    tip: commit,
                    proposal,
                }));
            }
            Ok(Some(Outcome::Proposed(proposal)))
        }
        Err(reason) => {
            proposal.refused = Some(reason);
            // Nothing lost: what the resolver left is kept before the conflict is laid out
            // again for a person.
            if let Ok(Some((_, kept))) = crate::git::worktree::keep_work(
                &run.ctx.repo,
                workspace,
                &conflict.ours,
                &run.ctx.refs.resolution(&name),
                "streams: a refused resolution",
            ) {
                proposal.commit = Some(kept);
            }
            Ok(Some(Outcome::Refused(proposal)))
        }
    }
}

fn resolver_name(resolver: &Resolver) -> String {
    let program = resolver.agent.program();
    Path::new(program)
        .file_name()
        .map_or(program.to_string(), |n| n.to_string_lossy().into_owned())
}

fn exit_words(exit: &AgentExit) -> String {
    match exit {
        AgentExit::Exited(0) => "exited 0".into(),
        other => other.verdict().1,
    }
}

fn conflicted<'a>(conflict: &'a ConflictFound, files: &'a [String]) -> Conflicted<'a> {
    Conflicted {
        base: &conflict.base,
        ours: &conflict.ours,
        theirs: &conflict.theirs,
        files,
    }
}

fn unit_input<'a>(
    run: &'a Run,
    unit: &'a SyncUnit,
    name: &'a str,
    tip: &'a str,
    tasks: &'a [crate::coordinator::TaskRange],
) -> UnitInput<'a> {
    UnitInput {
        stream: name,
        integration_ref: &run.state.integration_ref,
        tip,
        from: &unit.from,
        to: &unit.to,
        tasks,
        strategy: run.ctx.plan.merge,
        identity_env: &run.ctx.identity_env,
    }
}

/// The streams whose integrated work (between the stream's start and the tip it conflicts
/// with) changed the conflicted files, by their commits' `Streams-Stream` trailers. (None when
/// git cannot tell: they help the resolver and the history, they hold no work.)
pub(super) fn conflicting_streams(
    run: &Run,
    conflict: &ConflictFound,
    files: &[String],
) -> Vec<usize> {
    let repo = &run.ctx.repo;
    let Ok(commits) = crate::git::remote::commits_with_paths(repo, &conflict.base, &conflict.ours)
    else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for c in commits {
        if !c.paths.iter().any(|p| files.contains(p)) {
            continue;
        }
        let Ok(info) = repo.commit_info(&c.id) else {
            continue;
        };
        let prefix = format!("{TRAILER_STREAM}: ");
        for line in info.message.lines() {
            if let Some(stream) = line.strip_prefix(&prefix)
                && let Some((i, _)) = run.state.stream_by_name(stream.trim())
                && !found.contains(&i)
            {
                found.push(i);
            }
        }
    }
    found
}

/// What the resolver is told: what each side meant to do (both streams' tasks), both sides'
/// diffs, the conflicted files, and the rules its result is held to.
fn prompt(
    run: &Run,
    unit: &SyncUnit,
    others: &[usize],
    files: &[String],
    bundle: &Path,
    workspace: &Path,
) -> String {
    let plan = &run.ctx.plan;
    let name = &run.state.streams[unit.stream].name;
    let mut text = String::new();
    let _ = writeln!(
        text,
        "Resolve a merge conflict. The work of stream `{name}` conflicts with what is already on the integration branch, in: {}.\n",
        files.join(", ")
    );
    let _ = writeln!(
        text,
        "The conflicted files, with conflict markers, are in the current directory ({}). Edit them so that both sides' intent holds, and remove every conflict marker. Do not run git commands that change the index or commit: streams records the resolution itself.\n",
        workspace.display()
    );
    let _ = writeln!(
        text,
        "Rules your result is checked against (a result that breaks one is refused):\n- no conflict markers left;\n- change only the conflicted files, and in them only the conflicted regions and at most {} line(s) around each;\n- the checks of both streams and the plan's gate must pass on the result.\n",
        plan.resolve_margin
    );
    let _ = writeln!(text, "## What `{name}` meant to do\n");
    for t in unit.first..=unit.last {
        let _ = writeln!(
            text,
            "- {}",
            run.state.streams[unit.stream].tasks[t].summary
        );
    }
    for &o in others {
        let record = &run.state.streams[o];
        let _ = writeln!(
            text,
            "\n## What `{}` (already integrated) meant to do\n",
            record.name
        );
        for task in &record.tasks {
            let _ = writeln!(text, "- {}", task.summary);
        }
    }
    for file in files {
        for (side, suffix) in [
            ("the integration", ".integration.diff"),
            (name.as_str(), ".stream.diff"),
        ] {
            let path = bundle.join("files").join(format!("{file}{suffix}"));
            if let Ok(diff) = std::fs::read_to_string(&path) {
                let _ = writeln!(
                    text,
                    "\n## {file}: what {side} changed since the common base\n\n```diff\n{}```",
                    diff
                );
            }
        }
    }
    text
}

/// One run of the resolver: how it ended, how long it took, and what it used.
struct Ran {
    exit: AgentExit,
    took: Duration,
    /// Its preset's CLI (`None`: an argv).
    cli: Option<crate::agent::Cli>,
    log: std::path::PathBuf,
    usage_file: std::path::PathBuf,
    workspace: std::path::PathBuf,
}

#[allow(clippy::too_many_arguments)]
async fn run_agent(
    run: &Run,
    s: usize,
    resolver: &Resolver,
    prompt: &str,
    prompt_file: &Path,
    workspace: &Path,
    log: &Path,
    budget: Option<Budget>,
    cancel: watch::Receiver<Cancel>,
) -> Ran {
    let plan = &run.ctx.plan;
    let stream = &plan.streams[s];
    let name = &run.state.streams[s].name;
    let bundle = run.ctx.run_dir.conflicts_dir(name);
    let shown = workspace.display().to_string();
    let prompt_file_text = prompt_file.display().to_string();
    // A preset's CLI gets a home of its own in the bundle, as a task's agent gets one.
    let home = bundle.join("resolver-home");
    let start = AgentStart::new(&resolver.agent, &home, None);
    let cli = start.preset.as_ref().map(|p| p.cli);
    let tmp = bundle.join("tmp");
    // The agent may write there (the sandbox grants it), so it must exist; a report left by
    // an earlier run of the resolver is not this one's.
    let _ = std::fs::create_dir_all(&tmp);
    let usage_file = tmp.join("usage.json");
    let _ = std::fs::remove_file(&usage_file);
    let usage_file_text = usage_file.display().to_string();
    let mut ran = Ran {
        exit: AgentExit::Exited(0),
        took: Duration::ZERO,
        cli,
        log: log.to_path_buf(),
        usage_file: usage_file.clone(),
        workspace: workspace.to_path_buf(),
    };
    let argv = Placeholders {
        prompt,
        prompt_file: &prompt_file_text,
        stream: name,
        task: "resolve the conflict",
        task_index: 0,
        worktree: &shown,
        slot: None,
        port: None,
        check_output: "",
        check_output_file: "",
        usage_file: Some(&usage_file_text),
    }
    .argv(&start.template);
    let task = StreamId::new(s).task(run.state.streams[s].tasks.len() - 1);
    let mut env = super::launch::agent_env(run, task, prompt, &prompt_file_text, &shown);
    env.push(("STREAMS_RESOLVING".into(), "1".into()));
    if let Some(preset) = &start.preset {
        env.extend(start.env.iter().cloned());
        seed_home(preset.cli, &home, &start, &env).await;
    }
    let header = crate::agent::log::header(&format!("resolver for {name}"), &argv);
    let mut spec = Spec::new(plan, stream, tmp);
    spec.writable.extend(start.writable.iter().cloned());
    let lane = {
        let workspace = workspace.to_path_buf();
        tokio::task::spawn_blocking(move || Lane::for_task(&workspace, &spec)).await
    };
    let lane = match lane {
        Ok(Ok(lane)) => Arc::new(lane),
        Ok(Err(message)) => {
            ran.exit = AgentExit::SpawnFailed(message);
            return ran;
        }
        Err(e) => {
            ran.exit = AgentExit::SpawnFailed(e.to_string());
            return ran;
        }
    };
    env.extend(lane.env());
    let metered = process::Metered {
        meter: crate::ledger::meter::Meter::new(cli, None),
        budget,
        prices: plan.prices.clone(),
        on_usage: Box::new(|_| {}),
    };
    let cmd = AgentCommand::new(
        argv,
        workspace.to_path_buf(),
        env,
        log.to_path_buf(),
        header,
    )
    .confined(lane)
    .interrupted_first(cli.is_some())
    .watched(cli)
    .metered(Some(metered));
    let limits = Limits {
        timeout: plan.timeout_for(stream, &stream.tasks[0]),
        idle: plan.idle_timeout_for(stream),
        grace: plan.grace,
    };
    (ran.exit, ran.took) = process::run_agent(cmd, limits, cancel, |_| {}).await;
    ran
}

/// A preset's CLI gets its configuration folder in the resolver's home, seeded from the
/// user's (as a task's agent does); a failure is logged: the CLI may run without it.
async fn seed_home(
    cli: crate::agent::Cli,
    home: &Path,
    start: &AgentStart,
    env: &[(String, String)],
) {
    for dir in std::iter::once(home).chain(start.writable.iter().map(|p| p.as_path())) {
        if !dir.starts_with("/dev") {
            let _ = std::fs::create_dir_all(dir);
        }
    }
    let env = env.to_vec();
    let home = home.to_path_buf();
    let seeded = tokio::task::spawn_blocking(move || {
        let var = |name: &str| {
            env.iter()
                .rev()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .or_else(|| std::env::var(name).ok())
        };
        let user_home = std::env::var_os("HOME")
            .filter(|h| !h.is_empty())
            .map(std::path::PathBuf::from);
        let user = crate::agent::home::user_config_dir(cli, &var, user_home.as_deref());
        crate::agent::home::prepare(cli, &home, user.as_deref(), user_home.as_deref(), &var)
    })
    .await;
    if let Ok(Err(e)) = seeded {
        tracing::warn!("could not prepare the resolver's {} home: {e}", cli.name());
    }
}

/// What the stream's and the plan's budgets leave the resolver (`Ok(None)`: neither has one),
/// from what the run's finished attempts spent; `Err`: one is spent (in words).
fn budget_left(run: &Run, s: usize) -> std::result::Result<Option<Budget>, String> {
    let plan = &run.ctx.plan;
    let spent = |streams: &mut dyn Iterator<Item = usize>| {
        streams
            .flat_map(|i| &run.state.streams[i].tasks)
            .fold(Spent::default(), |total, t| {
                let tally = crate::ledger::task_tally(t);
                total.add(&Spent {
                    usd: tally.cost_usd.unwrap_or(0.0),
                    tokens: tally.tokens,
                    turns: tally.turns,
                    time: Duration::from_millis(tally.wall_ms),
                })
            })
    };
    let mut left: Option<Budget> = None;
    let max_cost = crate::ledger::budget::max_cost(&run.state.budget_overrides);
    let pools = [
        (
            plan.streams[s].budget.as_ref(),
            format!("stream `{}`'s budget", plan.streams[s].name),
            spent(&mut std::iter::once(s)),
        ),
        (
            plan.budget.as_ref(),
            "the plan's budget".to_string(),
            spent(&mut (0..plan.streams.len())),
        ),
        (
            max_cost.as_ref(),
            format!("the {} budget", crate::ledger::budget::MAX_COST),
            spent(&mut (0..plan.streams.len())),
        ),
    ];
    for (budget, label, spent) in pools {
        let Some(budget) = budget else {
            continue;
        };
        if let Some(what) = crate::ledger::budget::crossed(budget, &spent) {
            return Err(format!("{label} ({what})"));
        }
        let rest = Budget {
            usd: budget.usd.map(|u| u - spent.usd),
            tokens: budget.tokens.map(|t| t - spent.tokens),
            turns: budget.turns.map(|t| t - spent.turns),
            time: budget.time.map(|t| t.saturating_sub(spent.time)),
        };
        let min = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        left = Some(match left {
            None => rest,
            Some(l) => Budget {
                usd: min(l.usd, rest.usd),
                tokens: l.tokens.min(rest.tokens).or(l.tokens).or(rest.tokens),
                turns: l.turns.min(rest.turns).or(l.turns).or(rest.turns),
                time: l.time.min(rest.time).or(l.time).or(rest.time),
            },
        });
    }
    Ok(left)
}

/// Records what the resolver used in the ledger: an attempt of kind `resolution` of the unit's
/// last task, read from its preset's events, else from the generic forms (its `{usage_file}`,
/// else its last `streams_usage` line). Nothing is recorded when it reported nothing.
fn record_usage(run: &mut Run, unit: &SyncUnit, ran: &Ran) {
    const OUTPUT_READ: u64 = 64 * 1024 * 1024;
    if matches!(ran.exit, AgentExit::SpawnFailed(_)) {
        return;
    }
    let output = crate::agent::log::last_attempt(&ran.log, OUTPUT_READ);
    let (usage, session, seen) = match ran.cli {
        Some(cli) => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            let observed = crate::agent::events::observe(cli, &output, Some(&ran.workspace), now);
            let (usage, seen) =
                crate::ledger::meter::settle(cli, observed.usage, None, || output.clone(), || None);
            (usage, observed.session, seen)
        }
        None => {
            let usage = std::fs::read_to_string(&ran.usage_file)
                .ok()
                .and_then(|text| crate::ledger::meter::generic_file(&text))
                .or_else(|| {
                    output
                        .lines()
                        .rev()
                        .find_map(crate::ledger::meter::generic_line)
                });
            (usage, None, None)
        }
    };
    if usage.is_none() && seen.is_none() {
        return;
    }
    let mut record = AttemptUsage {
        attempt: run.state.streams[unit.stream].tasks[unit.last].attempts,
        cli: ran.cli,
        kind: AttemptKind::Resolution,
        wall_ms: ran.took.as_millis() as u64,
        session,
        usage,
        reported: None,
        seen,
        over_budget: matches!(ran.exit, AgentExit::OverBudget(_)),
    };
    for usage in [&mut record.usage, &mut record.seen].into_iter().flatten() {
        crate::ledger::price(usage, &run.ctx.plan.prices);
    }
    let task = StreamId::new(unit.stream).task(unit.last);
    if let Some(u) = &record.usage {
        let event = crate::report::Event::TaskUsage {
            stream: run.state.streams[unit.stream].name.clone(),
            task: task.number(),
            attempt: record.attempt,
            input_tokens: u.input,
            output_tokens: u.output,
            cache_read_tokens: u.cache_read,
            cache_write_tokens: u.cache_write,
            cost_usd: u.cost_usd,
        };
        run.emit(event);
    }
    run.task_mut(task).usage.push(record);
}

/// streams' own verdict on the resolver's result: its rules, then the checks of the streams
/// whose work conflicts, then the gate, each on the resolved files. `Ok(tree)`: accepted.
async fn judge(
    run: &Run,
    unit: &SyncUnit,
    conflict: &ConflictFound,
    files: &[String],
    workspace: &Path,
    others: &[usize],
    cancel: watch::Receiver<Cancel>,
) -> Result<std::result::Result<Oid, String>> {
    let repo = run.ctx.repo.clone();
    let margin = run.ctx.plan.resolve_margin;
    let verdict = {
        let (conflict, files, workspace) =
            (conflict.clone(), files.to_vec(), workspace.to_path_buf());
        tokio::task::spawn_blocking(move || {
            resolver::verify(&repo, &workspace, &conflicted(&conflict, &files), margin)
        })
        .await
        .map_err(|e| Error::Internal(format!("checking a resolution panicked: {e}")))??
    };
    let tree = match verdict {
        Ok(tree) => tree,
        Err(refusal) => return Ok(Err(refused(&refusal))),
    };
    let plan = &run.ctx.plan;
    let mut commands: Vec<(String, Vec<String>)> = Vec::new();
    if !run.state.no_check {
        for s in std::iter::once(unit.stream).chain(others.iter().copied()) {
            if let Some(check) = plan.check_for(&plan.streams[s]) {
                let label = format!("the check of {}", run.state.streams[s].name);
                if !commands.iter().any(|(_, c)| c.as_slice() == check) {
                    commands.push((label, check.to_vec()));
                }
            }
        }
    }
    if let Some(gate) = &plan.gate {
        commands.push(("the gate".into(), gate.clone()));
    }
    let name = &run.state.streams[unit.stream].name;
    let bundle = run.ctx.run_dir.conflicts_dir(name);
    for (n, (label, command)) in commands.into_iter().enumerate() {
        let log = bundle.join(format!("resolver-check-{}.log", n + 1));
        let header = crate::agent::log::header(&format!("{label} on the resolution"), &command);
        let env = run.ctx.identity_env.clone();
        let cmd = AgentCommand::new(command, workspace.to_path_buf(), env, log.clone(), header);
        let limits = Limits::wall_clock(plan.check_timeout, plan.grace);
        let (exit, _) = process::run_agent(cmd, limits, cancel.clone(), |_| {}).await;
        let (passed, words) = exit.verdict();
        if !passed {
            return Ok(Err(format!(
                "{label} {words} on it (its log: {})",
                log.display()
            )));
        }
    }
    Ok(Ok(tree))
}

fn refused(refusal: &Refusal) -> String {
    refusal.reason()
}
