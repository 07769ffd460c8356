//! Each real CLI, run with the invocation `docs/agents.md` specifies, against the scripted
//! server in a scratch repository: it writes a file with its own file tool and commits it with
//! its own shell tool (aider: a whole-file edit and its own commit), the server saw the prompt,
//! and what the CLI reports as its token usage is what the server scripted.
//!
//! Each CLI runs as the unprivileged account; Claude Code and Codex also as root (Claude Code
//! refuses to skip permissions as root unless told it is in a sandbox).

use serde_json::{Value, json};

use super::clis::{
    Ask, Cli, Finished, Located, Who, Workplace, require, require_root, require_user, usable_by,
};
use super::server::{Answer, Script, Server, Turn, Usage};

/// What every run is asked; the marker stands for the lane text streams puts in a prompt.
const PROMPT: &str = "Create src/a/hello.txt saying hello, then commit it. Lane: LANE-MARKER-7f3a";

/// The scripted conversation: write, commit, answer. Returns it with the token figures the
/// CLI should report in total.
fn conversation(cli: Cli) -> (Vec<Turn>, Usage) {
    let content = format!("hello from {}\n", cli.name());
    let turns = if cli == Cli::Aider {
        // aider makes its edit in the reply text and commits it itself.
        vec![Turn::write("src/a/hello.txt", &content).tokens(1000, 50)]
    } else {
        vec![
            Turn::write("src/a/hello.txt", &content)
                .tokens(1000, 50)
                .cached(300, 40),
            Turn::shell("git add -A && git commit -q -m 'Add hello'").tokens(1200, 30),
            Turn::text("Created and committed src/a/hello.txt.").tokens(1300, 10),
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

fn edits_and_commits(cli: Cli, who: fn() -> Option<Who>) {
    let Some(located) = require(cli) else { return };
    let Some(who) = who() else { return };
    if !usable_by(&located, &who) {
        return;
    }
    let place = Workplace::new(who.clone());
    let (turns, total) = conversation(cli);
    let script_len = turns.len();
    let server = Server::start(
        Script::new(turns)
            .workdir(place.root())
            .commit_message("Add hello"),
    );
    let finished = place.run(&located, &server, &Ask::new(PROMPT));
    eprintln!(
        "{} {} as {}: {:.1} s",
        cli.name(),
        located.version,
        who.describe(),
        finished.elapsed.as_secs_f64()
    );

    finished.assert_success(&format!("{} exited with", cli.name()));
    assert_eq!(
        place.repo.read("src/a/hello.txt"),
        format!("hello from {}\n", cli.name()),
        "{finished}"
    );
    let log = place.log();
    assert!(
        log[0].starts_with("Add hello ("),
        "the CLI's commit is not on top: {log:?}\n{finished}"
    );
    assert_eq!(log.len(), 2, "{log:?}");
    assert_eq!(
        place.status(),
        "",
        "the CLI left files behind in its working directory\n{finished}"
    );

    let requests = server.requests();
    assert!(
        requests.iter().all(|r| r.answer != Answer::Unknown),
        "the CLI asked for endpoints the server does not know: {:?}",
        requests
            .iter()
            .filter(|r| r.answer == Answer::Unknown)
            .map(|r| format!("{} {}", r.method, r.path))
            .collect::<Vec<_>>()
    );
    assert_eq!(server.turns_answered(), script_len, "{finished}");
    assert!(
        requests.iter().all(|r| r.answer != Answer::Exhausted),
        "the CLI went on past the script\n{finished}"
    );
    let first_turn = &server.turn_requests()[0];
    assert!(
        first_turn.contains("LANE-MARKER-7f3a"),
        "the prompt did not reach the model"
    );

    assert_eq!(
        reported_usage(&located, &finished),
        expected_usage(cli, total),
        "{finished}"
    );
}

/// The token figures the CLI reports at the end of its run, by the CLI's own field names.
fn reported_usage(located: &Located, finished: &Finished) -> Value {
    let pick = |event: Value, path: &str, fields: &[&str]| -> Value {
        let object = event.pointer(path).cloned().unwrap_or(Value::Null);
        fields
            .iter()
            .map(|f| (f.to_string(), object[*f].clone()))
            .collect::<serde_json::Map<_, _>>()
            .into()
    };
    let last = |kind: &str| {
        finished
            .last_event(kind)
            .unwrap_or_else(|| panic!("no {kind} event\n{finished}"))
    };
    match located.cli {
        Cli::Claude => pick(
            last("result"),
            "/usage",
            &[
                "input_tokens",
                "output_tokens",
                "cache_read_input_tokens",
                "cache_creation_input_tokens",
            ],
        ),
        Cli::Codex => pick(
            last("turn.completed"),
            "/usage",
            &["input_tokens", "cached_input_tokens", "output_tokens"],
        ),
        Cli::Gemini => pick(
            last("result"),
            "/stats",
            &["input_tokens", "cached", "output_tokens"],
        ),
        Cli::Qwen => pick(
            last("result"),
            "/usage",
            &["input_tokens", "cache_read_input_tokens", "output_tokens"],
        ),
        Cli::Aider => {
            // "Tokens: 1.0k sent, 50 received. Cost: $0.0024 message, $0.0024 session."
            let line = finished
                .stdout
                .lines()
                .find(|l| l.starts_with("Tokens: "))
                .unwrap_or_else(|| panic!("no Tokens: line\n{finished}"));
            let count = |word: &str| -> u64 {
                let before = line.split(word).next().unwrap();
                let figure = before.trim_end().rsplit(' ').next().unwrap();
                match figure.strip_suffix('k') {
                    Some(k) => (k.parse::<f64>().unwrap() * 1000.0).round() as u64,
                    None => figure.parse().unwrap(),
                }
            };
            json!({ "sent": count(" sent"), "received": count(" received") })
        }
    }
}

/// What the CLI should report for the scripted `total`: Anthropic's input excludes the cache;
/// OpenAI's and Gemini's prompt counts include it (`docs/agents.md`, "Usage").
fn expected_usage(cli: Cli, total: Usage) -> Value {
    match cli {
        Cli::Claude => json!({
            "input_tokens": total.input, "output_tokens": total.output,
            "cache_read_input_tokens": total.cache_read,
            "cache_creation_input_tokens": total.cache_write,
        }),
        Cli::Codex => json!({
            "input_tokens": total.prompt_total(), "cached_input_tokens": total.cache_read,
            "output_tokens": total.output,
        }),
        Cli::Gemini => json!({
            "input_tokens": total.prompt_total(), "cached": total.cache_read,
            "output_tokens": total.output,
        }),
        Cli::Qwen => json!({
            "input_tokens": total.prompt_total(), "cache_read_input_tokens": total.cache_read,
            "output_tokens": total.output,
        }),
        Cli::Aider => json!({ "sent": total.prompt_total(), "received": total.output }),
    }
}

#[test]
fn claude_edits_and_commits_as_an_unprivileged_user() {
    edits_and_commits(Cli::Claude, require_user);
}

#[test]
fn claude_edits_and_commits_as_root() {
    edits_and_commits(Cli::Claude, require_root);
}

#[test]
fn codex_edits_and_commits_as_an_unprivileged_user() {
    edits_and_commits(Cli::Codex, require_user);
}

#[test]
fn codex_edits_and_commits_as_root() {
    edits_and_commits(Cli::Codex, require_root);
}

#[test]
fn aider_edits_and_commits_as_an_unprivileged_user() {
    edits_and_commits(Cli::Aider, require_user);
}

#[test]
fn gemini_edits_and_commits_as_an_unprivileged_user() {
    edits_and_commits(Cli::Gemini, require_user);
}

#[test]
fn qwen_edits_and_commits_as_an_unprivileged_user() {
    edits_and_commits(Cli::Qwen, require_user);
}

#[test]
fn the_lock_files_pin_the_versions_docs_agents_md_was_written_from() {
    // docs/agents.md is the spec of the presets: a version bump means re-running the real
    // tests, re-recording fixtures/agents/recorded and updating the doc, then this list.
    let pinned: Vec<(&str, String)> = Cli::ALL
        .iter()
        .map(|cli| (cli.name(), super::clis::pinned_version(*cli)))
        .collect();
    let expected = json!([
        ["claude", "2.1.197"],
        ["codex", "0.171.0"],
        ["aider", "0.86.2"],
        ["gemini", "0.61.0"],
        ["qwen", "0.15.10"]
    ]);
    assert_eq!(json!(pinned), expected);
    let doc = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/agents.md"),
    )
    .unwrap();
    for (name, version) in &pinned {
        assert!(
            doc.contains(&format!("{name} {version}")) || doc.contains(version.as_str()),
            "docs/agents.md does not name {name} {version}"
        );
    }
}
