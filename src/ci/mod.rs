//! A plan spread over CI jobs: whether it can be, and the workflow that does it.
//!
//! Pure: a validated [`Plan`] and the generator's options in, the workflow's text out (or every
//! reason the plan cannot be spread). The same plan and options always give the same bytes, so
//! a committed workflow can be checked against its plan.
//!
//! The shape is CI-neutral and lives here: the plan's [`stages`](crate::plan::schedule::stages),
//! the secrets its agents need, how its agents get installed, what cannot be kept across
//! machines. [`github`] renders it as a GitHub Actions workflow; other CIs read the same stages
//! from `streams plan --json`.

pub mod github;

use std::collections::BTreeSet;

use crate::plan::{Plan, SyncPoint, schedule};

/// What `streams ci github` is given besides the plan.
#[derive(Clone, Debug)]
pub struct Options {
    /// The plan file relative to the repository root, `/`-separated: every job names it so.
    pub plan_path: String,
    /// The shell command that installs streams on a runner.
    pub install: String,
    /// Shell commands every job runs after installing streams and the agents (a toolchain, an
    /// agent streams does not know how to install).
    pub setup: Vec<String>,
    /// Secrets passed to the stream jobs besides the ones the plan's agents are known to need.
    pub secrets: Vec<String>,
    /// The runner label of every job.
    pub runs_on: String,
    /// The command that writes this workflow again, for its header.
    pub command: String,
}

/// The package streams is published as (its binary is `streams`; the crates.io name
/// `streams` is an unrelated crate's).
pub const PACKAGE: &str = env!("CARGO_PKG_NAME");

/// The release of this version on crates.io: what runners install when nothing better is known.
pub fn release_install() -> String {
    format!(
        "cargo install --locked {PACKAGE}@{}",
        env!("CARGO_PKG_VERSION")
    )
}

/// The command that installs on a runner what `cargo install` recorded installing as the
/// binary `bin` (cargo's `.crates2.json`, `records`): the same release from crates.io, or the
/// same commit of the same git repository. `Err` with where it came from when a runner cannot
/// get it the same way (a local path), or `None` when cargo has no record of it.
pub fn install_from_record(records: &str, bin: &str) -> Option<Result<String, String>> {
    let records: serde_json::Value = serde_json::from_str(records).ok()?;
    let (id, _) = records["installs"].as_object()?.iter().find(|(_, entry)| {
        entry["bins"]
            .as_array()
            .is_some_and(|bins| bins.iter().any(|b| b == bin))
    })?;
    // "<name> <version> (<source>)"
    let (name, rest) = id.split_once(' ')?;
    let (version, source) = rest.split_once(' ')?;
    let source = source.strip_prefix('(')?.strip_suffix(')')?;
    if let Some(git) = source.strip_prefix("git+") {
        // git+<url>[?rev=..|?branch=..|?tag=..]#<commit>
        let (url, commit) = git.split_once('#')?;
        let url = url.split_once('?').map_or(url, |(u, _)| u);
        return Some(Ok(format!(
            "cargo install --locked --git {url} --rev {commit} {name}"
        )));
    }
    let crates_io = (source.starts_with("registry+") || source.starts_with("sparse+"))
        && (source.contains("crates.io-index") || source.contains("index.crates.io"));
    if crates_io {
        return Some(Ok(format!("cargo install --locked {name}@{version}")));
    }
    let place = source
        .strip_prefix("path+file://")
        .unwrap_or(source)
        .to_string();
    Some(Err(place))
}

/// An agent CLI streams knows: how a runner gets it and which secrets it reads.
struct KnownAgent {
    program: &'static str,
    install: &'static str,
    secrets: &'static [&'static str],
}

/// The agent CLIs `streams init` writes plans for. aider talks to whichever model it is told;
/// both keys are passed, and a secret that is not set arrives empty.
const KNOWN_AGENTS: &[KnownAgent] = &[
    KnownAgent {
        program: "claude",
        install: "npm install --global @anthropic-ai/claude-code",
        secrets: &["ANTHROPIC_API_KEY"],
    },
    KnownAgent {
        program: "codex",
        install: "npm install --global @openai/codex",
        secrets: &["OPENAI_API_KEY"],
    },
    KnownAgent {
        program: "aider",
        install: "pipx install aider-chat",
        secrets: &["ANTHROPIC_API_KEY", "OPENAI_API_KEY"],
    },
];

/// What the workflow does beyond the plan's stages, derived from the plan and the options.
#[derive(Debug)]
pub struct Spread {
    /// Stream names per stage, stage 0 first, file order within.
    pub stages: Vec<Vec<String>>,
    /// Install commands of the known agents the plan runs, in [`KNOWN_AGENTS`] order.
    pub agent_installs: Vec<&'static str>,
    /// Secret names the stream jobs get, sorted, each once.
    pub secrets: Vec<String>,
    /// Things worth saying that do not stop the workflow from being written.
    pub notes: Vec<String>,
}

/// Why a plan cannot run as it would on one machine once spread over CI jobs.
#[derive(Debug)]
pub struct Refusal {
    pub problems: Vec<String>,
}

/// Checks that `plan` can be spread and gathers what the workflow needs; every problem at once.
pub fn spread(plan: &Plan, options: &Options) -> Result<Spread, Refusal> {
    let mut problems = Vec::new();
    let stages: Vec<Vec<String>> = schedule::stages(plan)
        .into_iter()
        .map(|stage| {
            stage
                .into_iter()
                .map(|s| plan.streams[s].name.clone())
                .collect()
        })
        .collect();

    if plan.sync == SyncPoint::Task {
        problems.push(
            "`sync = \"task\"` cannot be spread over CI jobs: each stream job runs alone and \
             its stage is integrated only after every stream of it is done, so a next task \
             could not start from the other streams' work; use `sync = \"stream\"` (the \
             default)"
                .to_string(),
        );
    }
    problems.extend(limit_problems(plan, &stages));
    for stream in &plan.streams {
        // upload-artifact refuses these in artifact names, and each stream job keeps its run
        // directory under one named after the stream; git allows them in branch names.
        if let Some(c) = stream.name.chars().find(|c| "\"<>|".contains(*c)) {
            problems.push(format!(
                "stream name `{}` holds `{c}`, which GitHub refuses in the name of the \
                 artifact its job keeps: rename the stream",
                stream.name
            ));
        }
        if stream.name.contains("${{") {
            problems.push(format!(
                "stream name `{}` holds `${{{{`, which GitHub would read as an expression \
                 wherever the workflow names the stream: rename the stream",
                stream.name
            ));
        }
    }
    if options.plan_path.starts_with("../") || options.plan_path.starts_with('/') {
        problems.push(format!(
            "the plan {} is outside the repository: runners check out the repository only; \
             commit the plan in it",
            options.plan_path
        ));
    }
    let mut secrets: BTreeSet<String> = BTreeSet::new();
    for name in &options.secrets {
        match secret_name_problem(name) {
            Some(problem) => problems.push(format!("--secret {name}: {problem}")),
            None => {
                secrets.insert(name.clone());
            }
        }
    }
    if !problems.is_empty() {
        return Err(Refusal { problems });
    }

    let mut notes = Vec::new();
    let mut known: BTreeSet<usize> = BTreeSet::new();
    let mut unknown: BTreeSet<&str> = BTreeSet::new();
    for program in agent_programs(plan) {
        match KNOWN_AGENTS.iter().position(|a| a.program == program) {
            Some(i) => {
                known.insert(i);
            }
            // A path (`./scripts/agent.sh`) is in the checkout or on the image already.
            None if !program.contains('/') => {
                unknown.insert(program);
            }
            None => {}
        }
    }
    for &i in &known {
        secrets.extend(KNOWN_AGENTS[i].secrets.iter().map(|s| s.to_string()));
    }
    if !unknown.is_empty() && options.setup.is_empty() {
        let names: Vec<String> = unknown.iter().map(|p| format!("`{p}`")).collect();
        notes.push(format!(
            "streams does not know how to install the agent program {}: if the runner lacks \
             it, add its installation with --setup CMD, and its secrets with --secret NAME",
            names.join(", ")
        ));
    }
    // The one place a job other than a stream's own runs that stream's work: the integrate job
    // runs the gate (and its setup) on the integrated tree, so code a stream wrote runs there,
    // next to the file that job's outputs are read from.
    if plan.gate.is_some() {
        notes.push(
            "the plan's gate runs the streams' work inside each integrate job, where that code \
             could set the job's output `tip` the next stage starts from: trust a stage's \
             result only as far as you trust its streams' code (README: \"Trust model\")"
                .to_string(),
        );
    }
    if plan.jobs.is_none() {
        notes.push(
            "the plan sets no `jobs`: every stream of a stage runs at once (set `jobs` to bound \
             the matrix with max-parallel)"
                .to_string(),
        );
    }
    Ok(Spread {
        stages,
        agent_installs: known.iter().map(|&i| KNOWN_AGENTS[i].install).collect(),
        secrets: secrets.into_iter().collect(),
        notes,
    })
}

/// Every word of the plan's agent commands that names a file by its path (it holds a `/`; not
/// a placeholder), with the stream that runs it, each once: a runner has such a file only if
/// it is committed (relative: the agent runs in a checkout of the repository) or installed.
pub fn agent_paths(plan: &Plan) -> Vec<(String, String)> {
    let mut seen = BTreeSet::new();
    let mut paths = Vec::new();
    for stream in &plan.streams {
        for task in &stream.tasks {
            // A preset's own arguments name no file; the plan's extra ones may.
            let argv = match plan.agent_for(stream, task) {
                Some(crate::agent::AgentSpec::Argv(argv)) => argv,
                Some(crate::agent::AgentSpec::Preset(preset)) => &preset.args,
                None => continue,
            };
            for word in argv {
                let path = word.split_once('=').map_or(word.as_str(), |(_, v)| v);
                if path.contains('/')
                    && !path.contains('{')
                    && !path.contains("://")
                    && seen.insert(path.to_string())
                {
                    paths.push((path.to_string(), stream.name.clone()));
                }
            }
        }
    }
    paths
}

/// The first word of every agent command the plan can run (placeholders left out: they are
/// only known at run time).
fn agent_programs(plan: &Plan) -> BTreeSet<&str> {
    let mut programs = BTreeSet::new();
    for stream in &plan.streams {
        for task in &stream.tasks {
            if let Some(program) = plan.agent_for(stream, task).map(|a| a.program())
                && !program.is_empty()
                && !program.contains('{')
            {
                programs.insert(program);
            }
        }
    }
    programs
}

/// A `[plan.limits]` group can be kept across jobs only when no stage could run more of its
/// agents at once than the limit: a stream job runs one agent at a time, and at most `jobs`
/// stream jobs of a stage run at once.
fn limit_problems(plan: &Plan, stages: &[Vec<String>]) -> Vec<String> {
    let mut problems = Vec::new();
    for (group, &limit) in &plan.limits {
        for (k, stage) in stages.iter().enumerate() {
            let in_group = stage
                .iter()
                .filter_map(|name| plan.stream(name))
                .filter(|s| {
                    s.tasks
                        .iter()
                        .any(|t| t.group.as_ref().or(s.group.as_ref()) == Some(group))
                })
                .count();
            let at_once = plan.jobs.map_or(in_group, |jobs| in_group.min(jobs));
            if at_once > limit {
                problems.push(format!(
                    "[plan.limits] {group} = {limit} cannot be kept across CI jobs: stage {k} \
                     would run {at_once} of its streams at once; lower `jobs` to {limit}, or \
                     raise the limit"
                ));
                break;
            }
        }
    }
    problems
}

/// GitHub's rules for secret names.
fn secret_name_problem(name: &str) -> Option<&'static str> {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if !first_ok || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Some("a secret name is letters, digits and `_`, not starting with a digit");
    }
    if name.to_ascii_uppercase().starts_with("GITHUB_") {
        return Some("names starting with GITHUB_ are GitHub's own");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::parse_simple;

    #[test]
    fn runners_install_what_cargo_installed() {
        let record = |id: &str| {
            format!(
                r#"{{"installs":{{"other 1.0.0 (registry+https://github.com/rust-lang/crates.io-index)":{{"bins":["other"]}},"{id}":{{"bins":["streams"],"profile":"release"}}}}}}"#
            )
        };
        let git = record(
            "agent-streams 0.1.0 (git+https://github.com/o/streams?branch=main#0123456789abcdef0123456789abcdef01234567)",
        );
        assert_eq!(
            install_from_record(&git, "streams"),
            Some(Ok(
                "cargo install --locked --git https://github.com/o/streams --rev 0123456789abcdef0123456789abcdef01234567 agent-streams".to_string()
            ))
        );
        let release =
            record("agent-streams 0.2.0 (registry+https://github.com/rust-lang/crates.io-index)");
        assert_eq!(
            install_from_record(&release, "streams"),
            Some(Ok("cargo install --locked agent-streams@0.2.0".to_string()))
        );
        let path = record("agent-streams 0.1.0 (path+file:///home/me/streams)");
        assert_eq!(
            install_from_record(&path, "streams"),
            Some(Err("/home/me/streams".to_string()))
        );
        assert_eq!(install_from_record(&path, "nope"), None);
        assert_eq!(install_from_record("not json", "streams"), None);
    }

    #[test]
    fn agent_paths_are_the_words_that_name_files() {
        let plan = parse_simple(
            "[plan]\nname = \"p\"\nagent = [\"sh\", \"/home/me/agent.sh\", \"--model=anthropic/x\", \"{prompt_file}\"]\n\
             [[stream]]\nname = \"a\"\nowns = [\"a/**\"]\ntasks = [\"x\"]\n\
             [[stream]]\nname = \"b\"\nowns = [\"b/**\"]\nagent = [\"scripts/go.sh\", \"https://example.com/x\"]\ntasks = [\"x\"]\n",
        )
        .unwrap();
        assert_eq!(
            agent_paths(&plan),
            [
                ("/home/me/agent.sh".to_string(), "a".to_string()),
                ("anthropic/x".to_string(), "a".to_string()),
                ("scripts/go.sh".to_string(), "b".to_string()),
            ]
        );
    }

    fn options() -> Options {
        Options {
            plan_path: "streams.toml".into(),
            install: release_install(),
            setup: Vec::new(),
            secrets: Vec::new(),
            runs_on: "ubuntu-latest".into(),
            command: "streams ci github".into(),
        }
    }

    #[test]
    fn secrets_come_from_the_agents_and_the_options() {
        let plan = parse_simple(
            "[plan]\nname = \"p\"\nagent = [\"claude\", \"-p\", \"{prompt}\"]\n\
             [[stream]]\nname = \"a\"\nowns = [\"a/**\"]\ntasks = [\"x\"]\n\
             [[stream]]\nname = \"b\"\nowns = [\"b/**\"]\nagent = [\"codex\", \"exec\", \"{prompt}\"]\ntasks = [\"x\"]\n",
        )
        .unwrap();
        let mut opts = options();
        opts.secrets = vec!["NPM_TOKEN".into(), "ANTHROPIC_API_KEY".into()];
        let spread = spread(&plan, &opts).unwrap();
        assert_eq!(
            spread.secrets,
            ["ANTHROPIC_API_KEY", "NPM_TOKEN", "OPENAI_API_KEY"]
        );
        assert_eq!(
            spread.agent_installs,
            [
                "npm install --global @anthropic-ai/claude-code",
                "npm install --global @openai/codex"
            ]
        );
    }

    #[test]
    fn a_limit_a_stage_could_break_is_refused_and_one_it_cannot_is_not() {
        let text = |jobs: usize| {
            format!(
                "[plan]\nname = \"p\"\njobs = {jobs}\nagent = [\"true\"]\n[plan.limits]\ngpu = 2\n\
                 [[stream]]\nname = \"a\"\nowns = [\"a/**\"]\ngroup = \"gpu\"\ntasks = [\"x\"]\n\
                 [[stream]]\nname = \"b\"\nowns = [\"b/**\"]\ngroup = \"gpu\"\ntasks = [\"x\"]\n\
                 [[stream]]\nname = \"c\"\nowns = [\"c/**\"]\ntasks = [{{ prompt = \"x\", group = \"gpu\" }}]\n"
            )
        };
        let refused = spread(&parse_simple(&text(3)).unwrap(), &options()).unwrap_err();
        assert_eq!(
            refused.problems,
            [
                "[plan.limits] gpu = 2 cannot be kept across CI jobs: stage 0 would run 3 of its streams at once; lower `jobs` to 2, or raise the limit"
            ]
        );
        assert!(spread(&parse_simple(&text(2)).unwrap(), &options()).is_ok());
    }

    #[test]
    fn a_stream_name_github_would_read_as_an_expression_is_refused() {
        let plan = parse_simple(
            "[plan]\nname = \"p\"\nagent = [\"true\"]\n\
             [[stream]]\nname = \"a${{secrets.X}}\"\nowns = [\"a/**\"]\ntasks = [\"x\"]\n",
        )
        .unwrap();
        let refused = spread(&plan, &options()).unwrap_err();
        assert_eq!(refused.problems.len(), 1, "{:?}", refused.problems);
        assert!(refused.problems[0].contains("as an expression"));
    }

    #[test]
    fn bad_secret_names_are_refused() {
        let plan = parse_simple(
            "[plan]\nname = \"p\"\nagent = [\"true\"]\n\
             [[stream]]\nname = \"a\"\nowns = [\"a/**\"]\ntasks = [\"x\"]\n",
        )
        .unwrap();
        let mut opts = options();
        opts.secrets = vec!["1KEY".into(), "GITHUB_TOKEN".into(), "OK_KEY".into()];
        let refused = spread(&plan, &opts).unwrap_err();
        assert_eq!(refused.problems.len(), 2, "{:?}", refused.problems);
    }
}
