//! The real `streams` running the real CLIs through their presets (`agent = "claude"`, ...)
//! against the scripted server: a plan of three streams, each stream's agent writing its file
//! with its own file tool and committing it with its own shell tool, side by side (the server
//! tells the three conversations apart by a key in each task's text). Every stream must be
//! integrated, with the tokens the server scripted recorded in the task's `usage`; under
//! `sandbox = "landlock"` where the kernel has it.
//!
//! `streams` runs as the unprivileged account (the CLIs as its children), once as root.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};

use super::clis::{
    self, Cli, FAKE_KEY, Located, Who, Workplace, require, require_root, require_user, usable_by,
};
use super::server::{Answer, Script, Server, Turn, Usage};
use crate::common::{CmdOutput, TestRepo};

const STREAMS: [&str; 3] = ["a", "b", "c"];

/// The conversation of stream `name`: write its file, commit it, answer. The totals it should
/// leave in the task's `usage` (input uncached, output, cache read, cache write).
fn conversation(cli: Cli, name: &str) -> (Vec<Turn>, Usage) {
    let path = format!("src/{name}/hello.txt");
    let content = format!("hello from {} in {name}\n", cli.name());
    let turns = if cli == Cli::Aider {
        vec![Turn::write(&path, &content).tokens(1000, 50)]
    } else {
        vec![
            Turn::write(&path, &content)
                .tokens(1000, 50)
                .cached(300, 40),
            Turn::shell(&format!(
                "git add -A && git commit -q -m 'Add {name} hello'"
            ))
            .tokens(1200, 30),
            Turn::text("Created and committed the file.").tokens(1300, 10),
        ]
    };
    let total = turns.iter().fold(Usage::NONE, |sum, turn| Usage {
        input: sum.input + turn.usage.input,
        output: sum.output + turn.usage.output,
        cache_read: sum.cache_read + turn.usage.cache_read,
        cache_write: sum.cache_write + turn.usage.cache_write,
    });
    (turns, total)
}

/// The key in stream `name`'s task text that tells its requests apart.
fn key(name: &str) -> String {
    format!("STREAM-KEY-{name}-5c1e")
}

/// The `agent` of the plan for `cli`, pointed at the server with a fake key.
pub(super) fn agent(cli: Cli, server: &Server, home: &Path) -> String {
    let model = clis::model(cli);
    let url = server.url();
    match cli {
        Cli::Claude => format!(
            r#"{{ preset = "claude", model = "{model}", env = {{ ANTHROPIC_BASE_URL = "{url}", ANTHROPIC_API_KEY = "{FAKE_KEY}" }} }}"#
        ),
        // The provider is in the user's ~/.codex/config.toml, which the task's home is
        // seeded from.
        Cli::Codex => {
            format!(r#"{{ preset = "codex", env = {{ STREAMS_SCRIPTED_KEY = "{FAKE_KEY}" }} }}"#)
        }
        Cli::Gemini => format!(
            r#"{{ preset = "gemini", model = "{model}", env = {{ GEMINI_API_KEY = "{FAKE_KEY}", GOOGLE_GEMINI_BASE_URL = "{url}" }} }}"#
        ),
        Cli::Qwen => format!(
            r#"{{ preset = "qwen", model = "{model}", env = {{ OPENAI_API_KEY = "{FAKE_KEY}", OPENAI_BASE_URL = "{url}/v1", OPENAI_MODEL = "{model}" }} }}"#
        ),
        Cli::Aider => {
            let metadata = clis::config_dir(cli, home).join("model.metadata.json");
            format!(
                r#"{{ preset = "aider", model = "{model}", args = ["--weak-model", "{model}", "--editor-model", "{model}", "--openai-api-base", "{url}/v1", "--openai-api-key", "{FAKE_KEY}", "--model-metadata-file", "{}", "--edit-format", "whole", "--map-tokens", "0"] }}"#,
                metadata.display()
            )
        }
    }
}

/// Whether `streams` can confine agents with Landlock here.
pub(super) fn landlock(repo: &TestRepo) -> bool {
    let probe = TestRepo::with_files(&[("a.txt", "a\n")]);
    probe.write(
        "streams.toml",
        "[plan]\nname = \"probe\"\nsandbox = \"landlock\"\n\n[[stream]]\nname = \"s\"\nowns = [\"a.txt\"]\nagent = [\"act\", \"say\", \"hi\"]\nallow_empty = true\ntasks = [\"probe\"]\n",
    );
    probe.commit_all("plan");
    let out = probe.streams(&["run"]);
    if !out.success() {
        eprintln!("no Landlock here, the plan runs without it: {}", out.stderr);
    }
    let _ = repo;
    out.success()
}

/// The PATH `streams` and its agents get: the CLI's install and a Node.js 20 first, then the
/// test's own (a Node.js found in a system directory goes after it: an older git may be there).
fn path(located: &Located) -> String {
    let mut dirs: Vec<PathBuf> = vec![located.program.parent().unwrap().to_path_buf()];
    let node_beside_git = located
        .node_dir
        .as_ref()
        .is_some_and(|dir| dir.join("git").exists());
    if !node_beside_git {
        dirs.extend(located.node_dir.clone());
    }
    dirs.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    if node_beside_git {
        dirs.extend(located.node_dir.clone());
    }
    std::env::join_paths(dirs)
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

/// Runs `streams` as the workplace's user.
pub(super) fn run_as(place: &Workplace, located: &Located, args: &[&str]) -> CmdOutput {
    run_as_with(place, located, args, &[])
}

/// Runs `streams` as the workplace's user, with `env` added.
pub(super) fn run_as_with(
    place: &Workplace,
    located: &Located,
    args: &[&str],
    env: &[(&str, &str)],
) -> CmdOutput {
    let mut cmd = command_as(place, located, args, env);
    CmdOutput::new(cmd.output().unwrap(), &place.repo)
}

/// The command that runs `streams` as the workplace's user, with `env` added (not started;
/// the workplace handed over to that user first).
pub(super) fn command_as(
    place: &Workplace,
    located: &Located,
    args: &[&str],
    env: &[(&str, &str)],
) -> std::process::Command {
    place.hand_over();
    let mut cmd = place.repo.streams_cmd(args);
    cmd.envs(env.iter().copied());
    cmd.env("PATH", path(located))
        .env("TMPDIR", place.repo.home.join("tmp"));
    if let Who::User(Some(account)) = &place.who {
        cmd.uid(account.uid).gid(account.gid);
        cmd.env("USER", &account.name).env("LOGNAME", &account.name);
    } else {
        cmd.env("USER", "root").env("LOGNAME", "root");
    }
    cmd
}

fn three_streams(cli: Cli, who: fn() -> Option<Who>) {
    let Some(located) = require(cli) else { return };
    let Some(who) = who() else { return };
    if !usable_by(&located, &who) {
        return;
    }
    let place = Workplace::new(who.clone());
    let repo = &place.repo;
    for name in STREAMS {
        repo.write(&format!("src/{name}/keep.txt"), "keep\n");
    }
    repo.commit_all("streams' directories");
    // Where the workspaces go (DESIGN.md: beside the repository).
    let workspaces = repo.root.parent().unwrap().join(format!(
        "{}.streams/p",
        repo.root.file_name().unwrap().to_string_lossy()
    ));
    let mut script = Script::new(Vec::new());
    let mut totals = Vec::new();
    for name in STREAMS {
        let (turns, total) = conversation(cli, name);
        totals.push(total);
        script = script.conversation(&key(name), turns, &workspaces.join(name));
    }
    let server = Server::start(script);
    clis::write_config(cli, &repo.home, &server);
    let sandbox = if landlock(repo) {
        "sandbox = \"landlock\"\n"
    } else {
        ""
    };
    let mut plan = format!(
        "[plan]\nname = \"p\"\njobs = 3\ntimeout = \"4m\"\n{sandbox}agent = {}\n",
        agent(cli, &server, &repo.home)
    );
    for name in STREAMS {
        plan.push_str(&format!(
            "\n[[stream]]\nname = \"{name}\"\nowns = [\"src/{name}/**\"]\ntasks = [\"Create src/{name}/hello.txt saying hello, then commit it ({}).\"]\n",
            key(name)
        ));
    }
    repo.write("streams.toml", &plan);
    repo.commit_all("plan");

    let out = run_as(&place, &located, &["run"]);
    eprintln!(
        "{} {} under streams as {} ({}): {}",
        cli.name(),
        located.version,
        who.describe(),
        if sandbox.is_empty() {
            "no sandbox"
        } else {
            "landlock"
        },
        out.stderr.lines().last().unwrap_or("")
    );
    out.assert_code(0);
    for name in STREAMS {
        assert_eq!(
            repo.git(&[
                "show",
                &format!("streams/p/integration:src/{name}/hello.txt")
            ]),
            format!("hello from {} in {name}", cli.name()),
            "{out}"
        );
    }
    let requests = server.requests();
    assert!(
        requests
            .iter()
            .all(|r| r.answer != Answer::Unknown && r.answer != Answer::Exhausted),
        "the CLIs asked for more than the scripts: {:?}",
        requests
            .iter()
            .map(|r| format!("{} {} {:?}", r.method, r.path, r.answer))
            .collect::<Vec<_>>()
    );
    let state = state(repo);
    for (name, total) in STREAMS.iter().zip(totals) {
        let task = &state["streams"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == *name)
            .unwrap()["tasks"][0];
        let usage = &task["usage"][0]["usage"];
        let n = |k: &str| usage[k].as_u64().unwrap_or(0);
        let expected = expected(cli, total);
        assert_eq!(
            (n("input"), n("output"), n("cache_read"), n("cache_write")),
            expected,
            "{name}: {task}"
        );
    }
}

/// The tokens the state keeps for the scripted `total`, in the neutral form: input without
/// what was read from the cache (OpenAI's and Gemini's counts include it; aider's rounds).
fn expected(cli: Cli, total: Usage) -> (u64, u64, u64, u64) {
    match cli {
        Cli::Claude => (
            total.input,
            total.output,
            total.cache_read,
            total.cache_write,
        ),
        Cli::Aider => (total.prompt_total(), total.output, 0, 0),
        _ => (
            total.prompt_total() - total.cache_read,
            total.output,
            total.cache_read,
            0,
        ),
    }
}

pub(super) fn state(repo: &TestRepo) -> serde_json::Value {
    let root = repo.common_dir().join("streams");
    let id = std::fs::read_to_string(root.join("current")).unwrap();
    let text =
        std::fs::read_to_string(root.join("runs").join(id.trim()).join("state.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

#[test]
fn claude_runs_a_plan_of_three_streams_as_an_unprivileged_user() {
    three_streams(Cli::Claude, require_user);
}

#[test]
fn claude_runs_a_plan_of_three_streams_as_root() {
    three_streams(Cli::Claude, require_root);
}

#[test]
fn codex_runs_a_plan_of_three_streams_as_an_unprivileged_user() {
    three_streams(Cli::Codex, require_user);
}

#[test]
fn aider_runs_a_plan_of_three_streams_as_an_unprivileged_user() {
    three_streams(Cli::Aider, require_user);
}

#[test]
fn gemini_runs_a_plan_of_three_streams_as_an_unprivileged_user() {
    three_streams(Cli::Gemini, require_user);
}

#[test]
fn qwen_runs_a_plan_of_three_streams_as_an_unprivileged_user() {
    three_streams(Cli::Qwen, require_user);
}

#[test]
fn the_plan_streams_init_writes_with_claude_on_path_integrates_every_stream() {
    let Some(located) = require(Cli::Claude) else {
        return;
    };
    let Some(who) = require_user() else { return };
    if !usable_by(&located, &who) {
        return;
    }
    let place = Workplace::new(who);
    let repo = &place.repo;
    let dirs = ["alpha", "beta", "gamma"];
    for dir in dirs {
        repo.write(&format!("{dir}/keep.txt"), "keep\n");
    }
    repo.commit_all("three directories");
    let workspaces = repo.root.parent().unwrap().join("repo.streams/repo");
    let mut script = Script::new(Vec::new());
    for dir in dirs {
        let turns = vec![
            Turn::write(&format!("{dir}/hello.txt"), "hello\n").tokens(1000, 50),
            Turn::shell(&format!("git add -A && git commit -q -m 'Add {dir} hello'"))
                .tokens(1200, 30),
            Turn::text("Done.").tokens(1300, 10),
        ];
        // Each stream's placeholder task names its directory.
        script = script.conversation(&format!("make in {dir}/"), turns, &workspaces.join(dir));
    }
    let server = Server::start(script);

    let init = run_as_with(&place, &located, &["init"], &[]);
    init.assert_code(0);
    let plan = repo.read("streams.toml");
    assert!(
        plan.lines().any(|l| l == r#"agent = "claude""#),
        "{plan}\n{init}"
    );
    repo.commit_all("plan");
    // The user's own setup: Claude Code pointed at the server.
    let url = server.url();
    let env = [
        ("ANTHROPIC_BASE_URL", url.as_str()),
        ("ANTHROPIC_API_KEY", FAKE_KEY),
    ];
    let out = run_as_with(&place, &located, &["run"], &env);
    out.assert_code(0);
    for dir in dirs {
        assert_eq!(
            repo.git(&["show", &format!("streams/repo/integration:{dir}/hello.txt")]),
            "hello",
            "{out}"
        );
    }
}
