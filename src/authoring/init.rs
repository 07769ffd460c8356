//! The plan `streams init` writes: pure text generation from facts about the repository, so that
//! other sources of a plan reuse its pieces (`init --from TASKS` writes [`agent_lines`]).
//!
//! The generated plan is a starting point a person edits: one stream per member of the
//! repository's workspaces ([`super::members`]: Cargo, npm/pnpm, Go, Python) and per directory
//! outside them, or, without workspaces, per top-level directory that holds tracked files (the
//! largest few; the others written out as comments); lock files and similar at the root, and
//! the workspaces' root manifests, as `shared`; an `agent` line for the chosen agent CLI; and a
//! placeholder task per stream. Every line a newcomer may want to change carries a comment.

use std::collections::{BTreeMap, BTreeSet};

use super::members::{self, Kind, Member};
use crate::plan::validate::ref_component_problem;
use crate::plan::{MAX_NAME_BYTES, PLACEHOLDER_TASK, RESERVED_STREAM_NAME};

/// The agent CLIs `init` knows how to run headless.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AgentCli {
    Claude,
    Codex,
    Aider,
    Script,
}

impl AgentCli {
    pub const ALL: [AgentCli; 4] = [
        AgentCli::Claude,
        AgentCli::Codex,
        AgentCli::Aider,
        AgentCli::Script,
    ];

    /// The program looked up on PATH to pick a default (`script` is never picked).
    pub fn program(self) -> Option<&'static str> {
        match self {
            AgentCli::Claude => Some("claude"),
            AgentCli::Codex => Some("codex"),
            AgentCli::Aider => Some("aider"),
            AgentCli::Script => None,
        }
    }

    /// What the line does, as a comment above it.
    fn comment(self) -> &'static str {
        match self {
            AgentCli::Claude => {
                "Claude Code through streams' preset: one prompt, printing each step (stream-json), allowed to\n\
                 # edit and commit in its workspace; its settings are a copy of yours made for each task.\n\
                 # `agent = { preset = \"claude\", model = \"...\", args = [...] }` picks a model or adds flags."
            }
            AgentCli::Codex => {
                "OpenAI Codex CLI through streams' preset: `codex exec --json`, allowed to edit and commit in\n\
                 # its workspace; its settings are a copy of your ~/.codex made for each task."
            }
            AgentCli::Aider => {
                "aider through streams' preset: one message, yes to its questions, no update check; its\n\
                 # histories are kept out of the workspace."
            }
            AgentCli::Script => {
                "Your own script (commit it first): it gets the prompt file and runs in the stream's workspace."
            }
        }
    }

    /// The `agent = ...` line.
    fn line(self) -> &'static str {
        match self {
            AgentCli::Claude => r#"agent = "claude""#,
            AgentCli::Codex => r#"agent = "codex""#,
            AgentCli::Aider => r#"agent = "aider""#,
            AgentCli::Script => r#"agent = ["sh", "scripts/agent.sh", "{prompt_file}"]"#,
        }
    }
}

/// The script `--agent script` runs: `init` writes [`SCRIPT_TEXT`] there (unless a file is
/// there already) for the person to make call their agent and commit (`streams plan` says so
/// until it is committed).
pub const SCRIPT_PATH: &str = "scripts/agent.sh";

/// The script written at [`SCRIPT_PATH`]: the contract an agent script keeps, and a body that
/// fails saying it calls no agent yet (a run with it says so in every stream's log).
pub const SCRIPT_TEXT: &str = include_str!("agent.sh");

/// Which `agent` lines to write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AgentChoice {
    /// Only this one (`init --agent NAME`).
    Only(AgentCli),
    /// All of them, each commented out except `active` (the one found on PATH), if any.
    All { active: Option<AgentCli> },
}

/// What `init` needs to know about the repository.
#[derive(Clone, Debug)]
pub struct RepoShape {
    /// The repository's directory name: the plan's name, once made a valid ref component.
    pub dir_name: String,
    /// The branch checked out (the plan's `base`), or `None` on a detached HEAD.
    pub branch: Option<String>,
    /// Every file tracked at HEAD, `/`-separated.
    pub tracked: Vec<String>,
    /// The text of the root manifests ([`members::ROOT_MANIFESTS`]) tracked at HEAD: what
    /// says which directories are workspace members.
    pub manifests: BTreeMap<String, String>,
}

/// At most this many streams are written as streams; further directories become comments.
pub const MAX_STREAMS: usize = 5;

/// Root files that many streams change at once (lock files, changelogs): `shared` candidates.
const SHARED_NAMES: &[&str] = &[
    "Cargo.lock",
    "package-lock.json",
    "npm-shrinkwrap.json",
    "yarn.lock",
    "pnpm-lock.yaml",
    "bun.lockb",
    "bun.lock",
    "poetry.lock",
    "uv.lock",
    "Pipfile.lock",
    "pdm.lock",
    "Gemfile.lock",
    "composer.lock",
    "go.sum",
    "go.work.sum",
    "mix.lock",
    "flake.lock",
    "pubspec.lock",
    "Podfile.lock",
    "CHANGELOG.md",
    "CHANGELOG",
    "CHANGES.md",
];

/// One directory a stream is written for, and the name its stream gets.
struct Dir {
    path: String,
    files: usize,
    stream: String,
    /// The workspace it is a member of, if it is one.
    member: Option<Kind>,
}

/// The plan text `streams init` writes for a repository.
pub fn generate(shape: &RepoShape, agent: AgentChoice) -> String {
    let workspaces = members::find(&shape.tracked, &shape.manifests);
    // Each member is a directory of its own; every other file goes to its top-level directory,
    // or, where that holds members (`crates/` in a Cargo workspace), to the directory below it
    // that holds none, so that no two streams own the same path.
    let mut dirs: BTreeMap<&str, (usize, Option<Kind>)> = workspaces
        .members
        .iter()
        .map(|m| (m.path.as_str(), (0, Some(m.kind))))
        .collect();
    let mut root_files: Vec<&str> = Vec::new();
    for path in &shape.tracked {
        let dir = match workspaces
            .members
            .iter()
            .find(|m| members::is_within(path, &m.path))
        {
            Some(member) => Some(member.path.as_str()),
            None => outside_members(path, &workspaces.members),
        };
        match dir {
            Some(dir) => dirs.entry(dir).or_default().0 += 1,
            // At the root, or beside members (`crates/README.md`): owned by no stream.
            None => root_files.push(path),
        }
    }
    let mut used: Vec<String> = vec![RESERVED_STREAM_NAME.to_string()];
    let mut all: Vec<Dir> = dirs
        .into_iter()
        .map(|(path, (files, member))| {
            let base = path.rsplit('/').next().unwrap_or(path);
            let stream = unique_name(&ref_name(base, "stream"), &mut used);
            Dir {
                path: path.to_string(),
                files,
                stream,
                member,
            }
        })
        .collect();
    // The largest directories become streams, written in path order; hidden ones (`.github`,
    // `.vscode`) are rarely where the work is, so they come last. In a workspace its members
    // come first, with the directories beside them (ripgrep's `crates/core` is the root
    // package's code), before the others (benchmarks, tests, docs).
    all.sort_by_key(|d| {
        (
            d.path.starts_with('.'),
            !(d.member.is_some() || d.path.contains('/')),
            std::cmp::Reverse(d.files),
            d.path.clone(),
        )
    });
    let rest = all.split_off(all.len().min(MAX_STREAMS));
    let mut streams = all;
    streams.sort_by(|a, b| a.path.cmp(&b.path));
    let mut rest = rest;
    rest.sort_by(|a, b| a.path.cmp(&b.path));

    // Lock files and the like, and the workspaces' root manifests, which members change
    // together (a dependency added for one member goes into the root `Cargo.toml`).
    let manifests: Vec<&(String, &str)> = workspaces
        .root_files
        .iter()
        .filter(|(f, _)| root_files.contains(&f.as_str()))
        .collect();
    let shared: Vec<&str> = root_files
        .iter()
        .copied()
        .filter(|f| SHARED_NAMES.contains(f) || manifests.iter().any(|(m, _)| m == f))
        .collect();
    let unowned: Vec<&str> = root_files
        .iter()
        .copied()
        .filter(|f| !shared.contains(f))
        .collect();

    let mut out = String::new();
    let name = ref_name(&shape.dir_name, "plan");
    out.push_str(&format!(
        "# A streams plan for {}, written by `streams init`. Edit the tasks, then check it with\n\
         # `streams plan` and try it with `streams run --dry-run`. Each stream gets its own workspace\n\
         # and branch; its agent may change only what the stream owns (and `shared`).\n\
         [plan]\n\
         name = {}\n",
        shape.dir_name,
        toml_string(&name)
    ));
    out.push_str(&match &shape.branch {
        Some(branch) => commented(
            &format!("base = {}", toml_string(branch)),
            "the branch the streams start from",
        ),
        None => commented("base = \"HEAD\"", "the commit the streams start from"),
    });
    out.push_str(&commented(
        "# jobs = 4",
        "agents at once (default: the number of CPUs)",
    ));
    out.push('\n');

    out.push_str(&agent_lines(agent));
    out.push('\n');
    out.push_str(&commented("timeout = \"45m\"", "per task, wall clock"));
    out.push_str(&commented(
        "idle_timeout = \"10m\"",
        "per task, no output for that long: an agent that prints",
    ));
    out.push_str(&commented(
        "",
        "nothing until it is done needs more than its longest task",
    ));
    if !shared.is_empty() {
        out.push_str(
            "# Any stream may edit these; a conflict in one halts the run for a person to resolve.\n",
        );
        for (file, why) in &manifests {
            out.push_str(&format!("# `{file}` is {why}.\n"));
        }
        out.push_str(&format!(
            "shared = [{}]\n",
            shared
                .iter()
                .map(|f| toml_string(&escape_glob(f)))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if !unowned.is_empty() {
        out.push_str(&format!(
            "# Owned by no stream, so read-only to every agent: {}.\n\
             # Add one to a stream's `owns` (or to `shared`) for an agent to change it.\n",
            examples(&unowned)
        ));
    }

    if streams.is_empty() {
        // No directories: one stream for everything.
        out.push_str(&format!(
            "\n[[stream]]\n\
             name = \"all\"\n\
             owns = [\"**\"]\n\
             tasks = [\"{PLACEHOLDER_TASK} here\"]\n",
        ));
        return out;
    }
    if !workspaces.members.is_empty() {
        let kinds: BTreeSet<&str> = workspaces
            .members
            .iter()
            .map(|m| m.kind.workspace())
            .collect();
        out.push_str(&format!(
            "\n# A stream per member of {} and per directory outside the members.\n",
            kinds.into_iter().collect::<Vec<_>>().join(", ")
        ));
    }
    for dir in &streams {
        out.push_str(&stream_block(dir, ""));
    }
    if !rest.is_empty() {
        out.push_str(&format!(
            "\n# The other {}: uncomment a stream to give it its own agent. Until then\n\
             # they are read-only to every agent.\n",
            if workspaces.members.is_empty() {
                "top-level directories"
            } else {
                "members and directories"
            }
        ));
        for dir in &rest {
            out.push_str(&stream_block(dir, "# "));
        }
    }
    out
}

/// The `agent` lines of a generated plan, each with a comment saying why its flags: the chosen
/// one, or every one known with `active` (if any) uncommented. Shared with `init --from`.
pub fn agent_lines(agent: AgentChoice) -> String {
    let mut out = String::new();
    match agent {
        AgentChoice::Only(cli) => {
            out.push_str(&format!("# {}\n{}\n", cli.comment(), cli.line()));
        }
        AgentChoice::All { active } => {
            out.push_str(match active {
                Some(_) => "# The agent every task runs: a CLI streams has a preset for, or an argv (no shell). One line\n# is active: the first agent CLI found on PATH. Keep one.\n",
                None => "# The agent every task runs: a CLI streams has a preset for, or an argv (no shell).\n# No agent CLI was found on PATH: uncomment the line of the one you use.\n",
            });
            for cli in AgentCli::ALL {
                out.push_str(&format!("# {}\n", cli.comment()));
                if active == Some(cli) {
                    out.push_str(&format!("{}\n", cli.line()));
                } else {
                    out.push_str(&format!("# {}\n", cli.line()));
                }
            }
        }
    }
    out
}

/// A line of TOML with a comment after it, the comments of a block aligned.
fn commented(code: &str, comment: &str) -> String {
    format!("{code:<24} # {comment}\n")
}

/// The directory `path` (outside every member) is counted under: its top-level directory, or
/// the first directory on its way down that holds no member; `None` at the root or when the
/// file sits beside members.
fn outside_members<'a>(path: &'a str, members: &[Member]) -> Option<&'a str> {
    let holds_members = |dir: &str| members.iter().any(|m| members::is_within(&m.path, dir));
    path.match_indices('/')
        .map(|(i, _)| &path[..i])
        .find(|dir| !holds_members(dir))
}

fn stream_block(dir: &Dir, prefix: &str) -> String {
    let mut files = if dir.files == 1 {
        "1 tracked file".to_string()
    } else {
        format!("{} tracked files", dir.files)
    };
    if let Some(kind) = dir.member {
        files = format!("{}, {files}", kind.describe());
    }
    format!(
        "\n{prefix}[[stream]]\n\
         {prefix}name = {}\n\
         {}\
         {prefix}tasks = [{}]\n",
        toml_string(&dir.stream),
        commented(
            &format!(
                "{prefix}owns = [{}]",
                toml_string(&format!("{}/**", escape_glob(&dir.path)))
            ),
            &files
        ),
        toml_string(&format!("{PLACEHOLDER_TASK} in {}/", dir.path)),
    )
}

/// A few names, then how many more.
fn examples(names: &[&str]) -> String {
    const SHOWN: usize = 4;
    let mut text = names
        .iter()
        .take(SHOWN)
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > SHOWN {
        text.push_str(&format!(" and {} more", names.len() - SHOWN));
    }
    text
}

/// `text` made a valid plan or stream name: characters git refuses become `-`, leading dots and
/// dashes go, and it is cut to [`MAX_NAME_BYTES`].
pub fn ref_name(text: &str, fallback: &str) -> String {
    let mut name: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '-'
            }
        })
        .collect();
    while name.contains("..") {
        name = name.replace("..", ".");
    }
    let mut name = name.trim_start_matches(['.', '-']).to_string();
    name.truncate(MAX_NAME_BYTES);
    while name.ends_with('.') || name.ends_with(".lock") {
        name = name
            .trim_end_matches('.')
            .trim_end_matches(".lock")
            .to_string();
    }
    if name.is_empty() || ref_component_problem(&name).is_some() {
        fallback.to_string()
    } else {
        name
    }
}

/// `name`, or `name-2`, `name-3`, ... if taken (case-insensitively, as branches are on macOS).
fn unique_name(name: &str, used: &mut Vec<String>) -> String {
    let taken = |n: &str, used: &[String]| used.iter().any(|u| u.eq_ignore_ascii_case(n));
    let mut candidate = name.to_string();
    let mut n = 2;
    while taken(&candidate, used) {
        candidate = format!("{name}-{n}");
        n += 1;
    }
    used.push(candidate.clone());
    candidate
}

/// A path as a glob that matches exactly it.
fn escape_glob(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for c in path.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '{' | '}' | '\\' | '!') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A TOML basic string.
fn toml_string(text: &str) -> String {
    toml::Value::String(text.to_string()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_become_valid_refs() {
        assert_eq!(ref_name("my repo", "plan"), "my-repo");
        assert_eq!(ref_name(".github", "stream"), "github");
        assert_eq!(ref_name("x.lock", "stream"), "x");
        assert_eq!(ref_name("..", "stream"), "stream");
        assert_eq!(ref_name("a..b", "stream"), "a.b");
        assert_eq!(ref_name(&"x".repeat(300), "p").len(), MAX_NAME_BYTES);
        let mut used = vec!["integration".to_string()];
        assert_eq!(unique_name("integration", &mut used), "integration-2");
        assert_eq!(unique_name("API", &mut used), "API");
        assert_eq!(unique_name("api", &mut used), "api-2");
    }

    #[test]
    fn generated_plans_parse() {
        let shape = RepoShape {
            dir_name: "web app".into(),
            branch: Some("main".into()),
            tracked: [
                "Cargo.lock",
                "README.md",
                "src/a.rs",
                "docs/x.md",
                "we*rd/y",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect(),
            manifests: BTreeMap::new(),
        };
        for agent in AgentCli::ALL {
            let text = generate(&shape, AgentChoice::Only(agent));
            let plan = crate::plan::parse_simple(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
            assert_eq!(plan.name, "web-app");
            assert_eq!(plan.streams.len(), 3);
        }
        let text = generate(&shape, AgentChoice::All { active: None });
        // No agent is active: the plan says so when checked.
        assert!(
            crate::plan::parse_simple(&text)
                .unwrap_err()
                .contains("no agent")
        );
    }
}
