//! The test suite's scripted model server, run by hand: to drive the real agent CLIs (Claude
//! Code, Codex, ...) through `streams` without a model or a network. Test-only: an example is
//! never part of the installed binary.
//!
//! ```sh
//! cargo run --example model_server -- script.json
//! ```
//!
//! prints `http://127.0.0.1:PORT` on its first line and answers until it is killed. The script
//! gives each stream's conversation, told apart by a key its task's text holds (looked for in
//! the user's messages, the last that names one deciding: not in the system prompt, where
//! Claude Code lists recent commits), and where its workspace is (relative paths of file tools
//! are resolved there):
//!
//! ```json
//! { "conversations": [
//!     { "key": "KEY-a", "workdir": "/tmp/repo.streams/p/a",
//!       "turns": [ { "write": ["src/a.rs", "fn a() {}\n"] },
//!                  { "shell": "git add -A && git commit -qm a" },
//!                  { "text": "Done." } ] } ],
//!   "turns": [ { "text": "Done." } ] }
//! ```
//!
//! `turns` outside a conversation answer requests no key matches, in order. A turn is one of
//! `write` [path, content], `shell` command, `text`, `refusal`, `stall` (no answer until the
//! server ends). Point the CLIs at it as `tests/integration/agents/plans.rs` does (`agent` with
//! `ANTHROPIC_BASE_URL` for Claude Code; a `scripted` provider in `~/.codex/config.toml` for
//! Codex) with the fake key `sk-streams-scripted`.

#[allow(unused_imports)]
#[path = "../tests/integration/agents/server.rs"]
mod server;

use serde_json::Value;
use server::{Script, Server, Turn};

fn turn(value: &Value) -> Result<Turn, String> {
    let text = |v: &Value| v.as_str().map(str::to_string);
    if let Some([path, content]) = value
        .get("write")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
    {
        return match (text(path), text(content)) {
            (Some(path), Some(content)) => Ok(Turn::write(&path, &content)),
            _ => Err(format!("`write` takes [path, content]: {value}")),
        };
    }
    if let Some(command) = value.get("shell").and_then(text) {
        return Ok(Turn::shell(&command));
    }
    if let Some(answer) = value.get("text").and_then(text) {
        return Ok(Turn::text(&answer));
    }
    if let Some(answer) = value.get("refusal").and_then(text) {
        return Ok(Turn::refusal(&answer));
    }
    if value.get("stall").is_some() {
        return Ok(Turn::stall());
    }
    Err(format!(
        "not a turn (write, shell, text, refusal, stall): {value}"
    ))
}

fn turns(value: Option<&Value>) -> Result<Vec<Turn>, String> {
    match value {
        None => Ok(Vec::new()),
        Some(Value::Array(items)) => items.iter().map(turn).collect(),
        Some(other) => Err(format!("`turns` is a list: {other}")),
    }
}

fn script(value: &Value) -> Result<Script, String> {
    let mut script = Script::new(turns(value.get("turns"))?);
    for conversation in value
        .get("conversations")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let key = conversation
            .get("key")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("a conversation needs a `key`: {conversation}"))?;
        let workdir = conversation
            .get("workdir")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("a conversation needs a `workdir`: {conversation}"))?;
        script = script.conversation(
            key,
            turns(conversation.get("turns"))?,
            std::path::Path::new(workdir),
        );
    }
    Ok(script)
}

fn main() -> std::process::ExitCode {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: model_server SCRIPT.json (see examples/model_server.rs)");
        return std::process::ExitCode::from(2);
    };
    let parsed = std::fs::read_to_string(&path)
        .map_err(|e| format!("could not read {path}: {e}"))
        .and_then(|text| serde_json::from_str::<Value>(&text).map_err(|e| format!("{path}: {e}")))
        .and_then(|value| script(&value));
    let script = match parsed {
        Ok(script) => script,
        Err(e) => {
            eprintln!("model_server: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let server = Server::start(script);
    // Rust's stdout is line-buffered: the address is out before the first request.
    println!("{}", server.url());
    let mut seen = 0;
    loop {
        std::thread::sleep(std::time::Duration::from_millis(500));
        let requests = server.requests();
        for request in &requests[seen..] {
            eprintln!(
                "{} {} -> {:?}",
                request.method, request.path, request.answer
            );
        }
        seen = requests.len();
    }
}
