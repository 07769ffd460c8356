//! The rules about what each task's agent is given to start: an agent set somewhere for every
//! task, its program found (on PATH, or committed and executable at `base`), the script an
//! interpreter is told to run committed at `base`, and every prompt file there. Problems are
//! added to the caller's [`Diagnostics`]; nothing is run.

use std::path::Path;

use super::describe;
use crate::plan::diagnostic::{Diagnostic, Diagnostics, count};
use crate::plan::model::Prompt;
use crate::plan::raw::RawFile;
use crate::plan::{ProgramCheck, Repository};

pub(super) fn check_agents(file: &RawFile, plan_agent: bool, diags: &mut Diagnostics) {
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
pub(super) fn check_agent_programs<R: Repository>(
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
    // The resolver agent, with the plan's PATH.
    let resolver = file
        .plan
        .as_ref()
        .and_then(|p| p.resolve_program.as_ref())
        .map(|program| (program, plan_path.map(String::as_str)));
    let programs = programs.chain(resolver);
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

pub(super) fn check_prompt_files<R: Repository>(
    file: &RawFile,
    repo: &mut R,
    diags: &mut Diagnostics,
) {
    for stream in &file.streams {
        for (i, task) in stream.tasks.iter().enumerate() {
            // `streams init`'s placeholder, left as it was: the agent would be told to
            // "describe the first change".
            if let Some(Prompt::Text(text)) = &task.prompt
                && text.starts_with(crate::plan::PLACEHOLDER_TASK)
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
