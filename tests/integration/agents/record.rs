//! Re-records `fixtures/agents/recorded/<cli>/`: each pinned CLI's real stdout (and stderr, and
//! how it ended) in a set of scenarios, run as `docs/agents.md` specifies against the scripted
//! server, as the unprivileged account. Ignored by default (they take minutes and rewrite
//! fixtures); run them by hand after a version bump:
//!
//! ```text
//! cargo nextest run --run-ignored only -E 'test(/^agents::record::/)'
//! ```
//!
//! `STREAMS_RECORD_ONLY=<scenario>` records that scenario alone and keeps the others.
//!
//! Paths under the temporary directory become `[TMP]`, the CLIs' install directory `[CLIS]` and
//! the server's port `[PORT]`; nothing else is changed (ids, timestamps and durations are the CLI's own).

use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sys::signal::Signal;
use serde_json::{Value, json};

use super::clis::{
    Ask, Cli, Finished, Located, Who, Workplace, invocation, require, require_user, usable_by,
};
use super::server::{Action, Answer, Script, Server, Turn};
use crate::common::wait_for;

/// What marks a shell command as running: it creates this file first.
const SLEEPING: &str = ".git/streams-sleeping";

/// How a scenario ends.
enum Ending {
    /// By itself.
    Natural,
    /// `signal` to the process group once the shell tool's command is running.
    SignalInTool(Signal),
    /// `signal` to the process group while the CLI waits for a stalled model answer.
    SignalWaiting(Signal),
    /// The server is stopped before the CLI starts (nothing listens on its port); SIGTERM to
    /// the process group after this long (the CLIs retry for minutes, Codex for ever).
    Unreachable(Duration),
}

struct Scenario {
    name: &'static str,
    what: &'static str,
    turns: Vec<Turn>,
    ask: Ask,
    ending: Ending,
}

const PROMPT: &str = "Create src/a/hello.txt saying hello, then commit it.";

fn scenarios(cli: Cli) -> Vec<Scenario> {
    let has_shell = cli != Cli::Aider;
    let write = || {
        Turn::write("src/a/hello.txt", "hello\n")
            .tokens(1000, 50)
            .cached(300, 40)
    };
    // aider's --message run is one request: the stall must be its first.
    let stalled = || {
        if has_shell {
            vec![write(), Turn::stall()]
        } else {
            vec![Turn::stall()]
        }
    };
    let commit = || Turn::shell("git add -A && git commit -q -m 'Add hello'").tokens(1200, 30);
    let done = || Turn::text("Created and committed src/a/hello.txt.").tokens(1300, 10);
    let success = if has_shell {
        vec![write(), commit(), done()]
    } else {
        vec![write()]
    };
    let mut list = vec![
        Scenario {
            name: "edit-and-commit",
            what: "writes a file with its own tool and commits it (aider: its own commit)",
            turns: success.clone(),
            ask: Ask::new(PROMPT),
            ending: Ending::Natural,
        },
        Scenario {
            name: "refusal",
            what: "the model refuses (Anthropic: stop_reason refusal; the others: text)",
            turns: vec![Turn::refusal("I can't help with that request.")],
            ask: Ask::new(PROMPT),
            ending: Ending::Natural,
        },
        Scenario {
            name: "error",
            what: "the API answers 400 invalid_request_error",
            turns: vec![Turn::error(400, "scripted invalid request")],
            ask: Ask::new(PROMPT),
            ending: Ending::Natural,
        },
        Scenario {
            name: "usage-limit",
            what: "every request is answered with the provider's usage-limit 429 (reset in 1 h)",
            turns: (0..40)
                .map(|_| Turn::usage_limit(Duration::from_secs(3600)))
                .collect(),
            ask: Ask::new(PROMPT),
            ending: Ending::Natural,
        },
        Scenario {
            name: "sigint-waiting",
            what: "SIGINT to the process group while the CLI waits for the model",
            turns: stalled(),
            ask: Ask::new(PROMPT),
            ending: Ending::SignalWaiting(Signal::SIGINT),
        },
        Scenario {
            name: "sigterm-waiting",
            what: "SIGTERM to the process group while the CLI waits for the model",
            turns: stalled(),
            ask: Ask::new(PROMPT),
            ending: Ending::SignalWaiting(Signal::SIGTERM),
        },
    ];
    if has_shell {
        let sleeping = || Turn::shell(&format!("touch {SLEEPING} && sleep 60"));
        list.push(Scenario {
            name: "permission-denied",
            what: "the CLI's edits-only mode (Claude acceptEdits, Codex workspace-write, Gemini \
                   auto_edit, Qwen auto-edit): the commit is not allowed",
            turns: vec![write(), commit(), done()],
            ask: Ask::new(PROMPT).edits_only(),
            ending: Ending::Natural,
        });
        list.push(Scenario {
            name: "sigint-in-tool",
            what: "SIGINT to the process group while its shell tool runs a command",
            turns: vec![write(), sleeping(), done()],
            ask: Ask::new(PROMPT),
            ending: Ending::SignalInTool(Signal::SIGINT),
        });
        list.push(Scenario {
            name: "sigterm-in-tool",
            what: "SIGTERM to the process group while its shell tool runs a command",
            turns: vec![write(), sleeping(), done()],
            ask: Ask::new(PROMPT),
            ending: Ending::SignalInTool(Signal::SIGTERM),
        });
    }
    if matches!(cli, Cli::Claude | Cli::Codex | Cli::Gemini) {
        list.push(Scenario {
            name: "unreachable",
            what: "nothing listens at the model's address (connection refused); SIGTERM to the \
                   process group after 40 s",
            turns: vec![write()],
            ask: Ask::new(PROMPT),
            ending: Ending::Unreachable(Duration::from_secs(40)),
        });
    }
    if cli == Cli::Claude {
        list.push(Scenario {
            name: "usage-limit-subscription",
            what: "the usage-limit 429 to an account signed in with claude.ai (an OAuth token \
                   instead of an API key): Claude Code reads the anthropic-ratelimit-unified-* \
                   headers",
            turns: vec![Turn::usage_limit(Duration::from_secs(3600))],
            ask: Ask::new(PROMPT)
                .unset("ANTHROPIC_API_KEY")
                .env("CLAUDE_CODE_OAUTH_TOKEN", "sk-ant-oat01-scripted"),
            ending: Ending::Natural,
        });
    }
    list
}

/// `fixtures/agents/recorded/<cli>`.
fn fixture_dir(cli: Cli) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/agents/recorded")
        .join(cli.name())
}

fn redact(text: &str, place: &Workplace, server: &Server) -> String {
    let tmp = place
        .root()
        .parent()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let clis = super::clis::tools_dir().to_string_lossy().into_owned();
    text.replace(&tmp, "[TMP]")
        .replace(&clis, "[CLIS]")
        .replace(&format!("127.0.0.1:{}", server.port()), "127.0.0.1:[PORT]")
}

fn exit_of(finished: &Finished) -> Value {
    use std::os::unix::process::ExitStatusExt;
    match (finished.status.code(), finished.status.signal()) {
        (Some(code), _) => json!(code),
        (None, Some(signal)) => json!(format!("killed by signal {signal}")),
        _ => json!(null),
    }
}

/// Runs one scenario; returns its index entry.
fn record_one(located: &Located, who: &Who, scenario: Scenario) -> Value {
    let cli = located.cli;
    let place = Workplace::new(who.clone());
    let stall_at = scenario
        .turns
        .iter()
        .position(|t| matches!(t.action, Action::Stall));
    let mut server = Server::start(
        Script::new(scenario.turns)
            .workdir(place.root())
            .commit_message("Add hello"),
    );
    if let Ending::Unreachable(_) = scenario.ending {
        server.stop();
    }
    let running = place.spawn(located, &server, &scenario.ask);
    let signal = match scenario.ending {
        Ending::Natural => None,
        Ending::SignalInTool(signal) => {
            let marker = place.root().join(SLEEPING);
            wait_for("the shell tool's command", Duration::from_secs(120), || {
                marker.exists().then_some(())
            });
            Some(signal)
        }
        Ending::SignalWaiting(signal) => {
            wait_for(
                "the stalled model request",
                Duration::from_secs(120),
                || (Some(server.turns_answered()) == stall_at.map(|i| i + 1)).then_some(()),
            );
            Some(signal)
        }
        Ending::Unreachable(after) => {
            // Not a synchronisation: the recording is of what the CLI prints in that time.
            std::thread::sleep(after);
            Some(Signal::SIGTERM)
        }
    };
    if let Some(signal) = signal {
        // A moment for the CLI to settle into the wait it is in (not a synchronisation: the
        // recording is of whatever it does when interrupted there).
        std::thread::sleep(Duration::from_millis(500));
        running.signal(signal);
    }
    let finished =
        running.wait_or_kill(Duration::from_secs(if signal.is_some() { 60 } else { 240 }));

    let dir = fixture_dir(cli);
    let ext = if cli == Cli::Aider { "txt" } else { "jsonl" };
    std::fs::write(
        dir.join(format!("{}.{ext}", scenario.name)),
        redact(&finished.stdout, &place, &server),
    )
    .unwrap();
    if !finished.stderr.trim().is_empty() {
        std::fs::write(
            dir.join(format!("{}.stderr.txt", scenario.name)),
            redact(&finished.stderr, &place, &server),
        )
        .unwrap();
    }
    eprintln!(
        "{} {}: exit {} after {:.1} s{}",
        cli.name(),
        scenario.name,
        exit_of(&finished),
        finished.elapsed.as_secs_f64(),
        if finished.killed {
            " (did not end: killed)"
        } else {
            ""
        }
    );
    let (args, env) = invocation(cli, &place.repo.home, &server, who, &scenario.ask);
    let argv: Vec<String> = std::iter::once(cli.name().to_string())
        .chain(args)
        .map(|a| redact(&a, &place, &server))
        .collect();
    let env: serde_json::Map<String, Value> = env
        .into_iter()
        .map(|(k, v)| (k, json!(redact(&v, &place, &server))))
        .collect();
    json!({
        "what": scenario.what,
        "argv": argv,
        "env": env,
        "signal": signal.map(|s| s.as_str()),
        "exit": exit_of(&finished),
        "killed_by_the_recorder": finished.killed,
        "model_requests": server
            .requests()
            .iter()
            .filter(|r| !matches!(r.answer, Answer::Meta))
            .count(),
        "commits": place.log().len() - 1,
        "left_uncommitted": place.status().lines().count(),
    })
}

/// Resumes the session of an edit-and-commit run with a new message; records the second run.
fn record_resume(located: &Located, who: &Who) -> Value {
    let cli = located.cli;
    let place = Workplace::new(who.clone());
    let mut first = vec![Turn::write("src/a/hello.txt", "hello\n").tokens(1000, 50)];
    if cli != Cli::Aider {
        first.push(Turn::shell("git add -A && git commit -q -m 'Add hello'"));
        first.push(Turn::text("Created and committed src/a/hello.txt."));
    }
    let server = Server::start(
        Script::new(first)
            .workdir(place.root())
            .commit_message("Add hello"),
    );
    let one = place.run(located, &server, &Ask::new(PROMPT));
    one.assert_success("the run to resume");
    let session = match cli {
        Cli::Claude | Cli::Qwen => one.last_event("result").unwrap()["session_id"].clone(),
        Cli::Codex => one.events()[0]["thread_id"].clone(),
        Cli::Gemini => one
            .events()
            .into_iter()
            .find_map(|e| e.get("session_id").cloned())
            .unwrap_or(Value::Null),
        Cli::Aider => json!("(chat history file)"),
    };
    let session = session.as_str().expect("a session id").to_string();
    drop(server);
    let server = Server::start(
        Script::new(vec![
            Turn::write("src/a/hello.txt", "hello again\n"),
            Turn::text("Fixed."),
        ])
        .workdir(place.root())
        .commit_message("Fix hello"),
    );
    let again = place.run(
        located,
        &server,
        &Ask::new("The check failed: say hello again.").resume(&session),
    );
    let ext = if cli == Cli::Aider { "txt" } else { "jsonl" };
    std::fs::write(
        fixture_dir(cli).join(format!("resume.{ext}")),
        redact(&again.stdout, &place, &server),
    )
    .unwrap();
    let first_request = &server.turn_requests()[0];
    let sent_earlier_turns = first_request.contains(PROMPT);
    eprintln!(
        "{} resume: exit {} after {:.1} s; the earlier turns were sent: {sent_earlier_turns}",
        cli.name(),
        exit_of(&again),
        again.elapsed.as_secs_f64()
    );
    json!({
        "what": "a second run resuming the session of an edit-and-commit run, with a new message",
        "exit": exit_of(&again),
        "resumed_with": match cli {
            Cli::Aider => "--restore-chat-history (same --chat-history-file)".to_string(),
            _ => "the session id of the first run".to_string(),
        },
        "sent_the_earlier_turns": sent_earlier_turns,
        "commits": place.log().len() - 1,
    })
}

fn record(cli: Cli) {
    let Some(located) = require(cli) else { return };
    let Some(who) = require_user() else { return };
    if !usable_by(&located, &who) {
        return;
    }
    let dir = fixture_dir(cli);
    // One scenario alone, the others' recordings kept (a scenario added since they were made).
    let only = std::env::var("STREAMS_RECORD_ONLY").ok();
    let mut index = serde_json::Map::new();
    match &only {
        Some(_) => {
            if let Ok(text) = std::fs::read_to_string(dir.join("index.json")) {
                let old: Value = serde_json::from_str(&text).unwrap();
                index = old["scenarios"].as_object().cloned().unwrap_or_default();
            }
        }
        None => {
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
    std::fs::create_dir_all(&dir).unwrap();
    for scenario in scenarios(cli) {
        let name = scenario.name;
        if only.as_deref().is_none_or(|only| only == name) {
            index.insert(name.into(), record_one(&located, &who, scenario));
        }
    }
    if only.as_deref().is_none_or(|only| only == "resume") {
        index.insert("resume".into(), record_resume(&located, &who));
    }
    let index = json!({
        "cli": cli.name(),
        "package": cli.package(),
        "version": located.version,
        "run_as": who.describe(),
        "scenarios": index,
    });
    std::fs::write(
        dir.join("index.json"),
        serde_json::to_string_pretty(&index).unwrap() + "\n",
    )
    .unwrap();
}

#[test]
#[ignore = "re-records fixtures/agents/recorded (minutes); run by hand after a version bump"]
fn record_claude() {
    record(Cli::Claude);
}

#[test]
#[ignore = "re-records fixtures/agents/recorded (minutes); run by hand after a version bump"]
fn record_codex() {
    record(Cli::Codex);
}

#[test]
#[ignore = "re-records fixtures/agents/recorded (minutes); run by hand after a version bump"]
fn record_aider() {
    record(Cli::Aider);
}

#[test]
#[ignore = "re-records fixtures/agents/recorded (minutes); run by hand after a version bump"]
fn record_gemini() {
    record(Cli::Gemini);
}

#[test]
#[ignore = "re-records fixtures/agents/recorded (minutes); run by hand after a version bump"]
fn record_qwen() {
    record(Cli::Qwen);
}
