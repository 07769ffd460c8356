//! The scripted model server on its own, through plain HTTP/1.1 requests: what each API's
//! answer carries (tool calls in the CLI's own terms, usage, limits) and what is recorded.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::{Value, json};

use super::server::{Answer, Script, Server, Turn};
use crate::common::wait_for;

/// A response as received: status, headers (lower-case names), body.
struct Got {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Got {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap()
    }
    /// The `data:` payloads of a server-sent event stream, as JSON (`[DONE]` left out).
    fn events(&self) -> Vec<Value> {
        self.body
            .lines()
            .filter_map(|line| line.strip_prefix("data: "))
            .filter(|data| *data != "[DONE]")
            .map(|data| serde_json::from_str(data).unwrap())
            .collect()
    }
}

fn request(server: &Server, method: &str, path: &str, body: Option<&Value>) -> Got {
    let mut stream = TcpStream::connect(("127.0.0.1", server.port())).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut raw = String::new();
    stream.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_lowercase(), v.to_string()))
        .collect();
    Got {
        status,
        headers,
        body: body.to_string(),
    }
}

fn post(server: &Server, path: &str, body: Value) -> Got {
    request(server, "POST", path, Some(&body))
}

fn anthropic_request(tools: &[&str]) -> Value {
    let tools: Vec<Value> = tools
        .iter()
        .map(|t| json!({ "name": t, "input_schema": {} }))
        .collect();
    json!({ "model": "claude-test", "stream": true, "max_tokens": 100, "tools": tools,
        "messages": [{ "role": "user", "content": "Do the lane's task: LANE-TEXT-1" }] })
}

#[test]
fn anthropic_turns_use_the_cli_tools_report_the_scripted_usage_and_are_recorded() {
    let server = Server::start(
        Script::new(vec![
            Turn::write("src/a.txt", "hello\n")
                .tokens(1000, 50)
                .cached(300, 40),
            Turn::shell("git commit -am x"),
            Turn::text("Done."),
        ])
        .workdir("/work/repo"),
    );
    assert!(
        server.url().starts_with("http://127.0.0.1:"),
        "{}",
        server.url()
    );

    let got = post(
        &server,
        "/v1/messages",
        anthropic_request(&["Bash", "Write"]),
    );
    assert_eq!(got.status, 200);
    assert_eq!(got.header("content-type"), Some("text/event-stream"));
    let events = got.events();
    let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "message_start",
            "content_block_start",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    assert_eq!(events[1]["content_block"]["name"], "Write");
    let input: Value =
        serde_json::from_str(events[2]["delta"]["partial_json"].as_str().unwrap()).unwrap();
    assert_eq!(
        input,
        json!({ "file_path": "/work/repo/src/a.txt", "content": "hello\n" })
    );
    let usage = &events[0]["message"]["usage"];
    assert_eq!(
        (
            &usage["input_tokens"],
            &usage["cache_read_input_tokens"],
            &usage["cache_creation_input_tokens"]
        ),
        (&json!(1000), &json!(300), &json!(40))
    );
    assert_eq!(events[4]["usage"]["output_tokens"], 50);
    assert_eq!(events[4]["delta"]["stop_reason"], "tool_use");

    let got = post(
        &server,
        "/v1/messages",
        anthropic_request(&["Bash", "Write"]),
    );
    let events = got.events();
    assert_eq!(events[1]["content_block"]["name"], "Bash");

    let recorded = server.requests();
    assert_eq!(recorded.len(), 2);
    assert_eq!(recorded[0].answer, Answer::Turn(0));
    assert_eq!(recorded[1].answer, Answer::Turn(1));
    assert!(recorded[0].contains("LANE-TEXT-1"));
    assert!(server.saw("LANE-TEXT-1"));
    assert!(!server.saw("LANE-TEXT-2"));
}

#[test]
fn side_requests_get_a_fixed_answer_and_leave_the_script_alone() {
    let server = Server::start(Script::new(vec![Turn::text("the turn")]).commit_message("Add x"));
    // A request without tools (Claude's session title) is a side request.
    let got = post(&server, "/v1/messages", anthropic_request(&[]));
    assert!(got.body.contains("Scripted side answer"), "{}", got.body);
    // aider's commit-message request: a chat completion whose system prompt asks for one.
    let got = post(
        &server,
        "/v1/chat/completions",
        json!({ "model": "m", "messages": [
            { "role": "system", "content": "Write a one-line Git commit message for the diff." },
            { "role": "user", "content": "diff" }] }),
    );
    assert_eq!(got.json()["choices"][0]["message"]["content"], "Add x");
    // Gemini's classifiers ask for JSON of a schema: they get the smallest object that fits.
    let got = post(
        &server,
        "/v1beta/models/gemini-flash:generateContent",
        json!({ "contents": [], "generationConfig": { "responseJsonSchema": { "type": "object",
            "properties": { "score": { "type": "integer" }, "reason": { "type": "string" } } } } }),
    );
    let text = got.json()["candidates"][0]["content"]["parts"][0]["text"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap(),
        json!({ "score": 1, "reason": "scripted" })
    );
    assert_eq!(server.turns_answered(), 0);
    // The turn is still the first of the script; after it the script is exhausted.
    let got = post(&server, "/v1/messages", anthropic_request(&["Write"]));
    assert!(got.body.contains("the turn"), "{}", got.body);
    let got = post(&server, "/v1/messages", anthropic_request(&["Write"]));
    assert!(
        got.body.contains("scripted conversation is over"),
        "{}",
        got.body
    );
    let answers: Vec<Answer> = server.requests().into_iter().map(|r| r.answer).collect();
    assert_eq!(
        answers,
        [
            Answer::Side,
            Answer::Side,
            Answer::Side,
            Answer::Turn(0),
            Answer::Exhausted
        ]
    );
}

#[test]
fn responses_api_writes_with_apply_patch_runs_exec_command_and_counts_cached_input() {
    let server = Server::start(Script::new(vec![
        Turn::write("src/a.txt", "one\ntwo\n")
            .tokens(1000, 50)
            .cached(400, 0),
        Turn::shell("git add -A && git commit -m x"),
    ]));
    let request = json!({ "model": "gpt-5.5", "stream": true, "input": [],
        "tools": [{ "type": "function", "name": "exec_command" }, { "type": "custom", "name": "apply_patch" }] });
    let events = post(&server, "/v1/responses", request.clone()).events();
    assert_eq!(events.last().unwrap()["type"], "response.completed");
    let item = &events[1]["item"];
    assert_eq!(item["type"], "custom_tool_call");
    assert_eq!(
        item["input"],
        "*** Begin Patch\n*** Add File: src/a.txt\n+one\n+two\n*** End Patch\n"
    );
    let usage = &events[2]["response"]["usage"];
    assert_eq!(
        usage["input_tokens"], 1400,
        "OpenAI counts cached input in input_tokens"
    );
    assert_eq!(usage["input_tokens_details"]["cached_tokens"], 400);
    assert_eq!(usage["output_tokens"], 50);

    let events = post(&server, "/v1/responses", request).events();
    let item = &events[1]["item"];
    assert_eq!(item["name"], "exec_command");
    assert_eq!(
        serde_json::from_str::<Value>(item["arguments"].as_str().unwrap()).unwrap(),
        json!({ "cmd": "git add -A && git commit -m x" })
    );
}

#[test]
fn aider_gets_whole_file_edits_in_text_and_gemini_gets_function_calls() {
    let server = Server::start(
        Script::new(vec![
            Turn::write("src/a.txt", "hello\n").tokens(10, 5),
            Turn::write("src/b.txt", "bye\n"),
        ])
        .workdir("/w"),
    );
    // No tools offered (aider): the edit is a whole-file block in the text, not streamed here.
    let got = post(
        &server,
        "/v1/chat/completions",
        json!({ "model": "gpt-4.1", "messages": [{ "role": "user", "content": "x" }] }),
    );
    let reply = got.json();
    assert_eq!(
        reply["choices"][0]["message"]["content"],
        "src/a.txt\n```\nhello\n```\n"
    );
    assert_eq!(reply["usage"]["prompt_tokens"], 10);
    assert_eq!(reply["usage"]["completion_tokens"], 5);

    let got = post(
        &server,
        "/v1beta/models/gemini-2.5-pro:streamGenerateContent",
        json!({ "contents": [], "tools": [{ "functionDeclarations": [{ "name": "write_file" }] }] }),
    );
    let events = got.events();
    assert_eq!(
        events[0]["candidates"][0]["content"]["parts"][0]["functionCall"],
        json!({ "name": "write_file", "args": { "file_path": "/w/src/b.txt", "content": "bye\n" } })
    );
    assert_eq!(events[0]["modelVersion"], "gemini-2.5-pro");
}

#[test]
fn usage_limits_carry_the_reset_time_in_each_api_own_form() {
    let hour = Duration::from_secs(3600);
    let server = Server::start(Script::new(vec![
        Turn::usage_limit(hour),
        Turn::usage_limit(hour),
        Turn::usage_limit(hour),
    ]));
    let got = post(&server, "/v1/messages", anthropic_request(&["Write"]));
    assert_eq!(got.status, 429);
    assert_eq!(got.header("retry-after"), Some("3600"));
    assert_eq!(
        got.header("anthropic-ratelimit-unified-status"),
        Some("rejected")
    );
    let reset: u64 = got
        .header("anthropic-ratelimit-unified-reset")
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(Some(reset), server.requests()[0].resets_at);
    assert_eq!(got.json()["error"]["type"], "rate_limit_error");

    let got = post(
        &server,
        "/v1/responses",
        json!({ "model": "gpt-5.5", "input": [], "tools": [{ "type": "function", "name": "exec_command" }] }),
    );
    assert_eq!(got.status, 429);
    let error = &got.json()["error"];
    assert_eq!(error["type"], "usage_limit_reached");
    assert_eq!(error["resets_in_seconds"], 3600);
    assert_eq!(
        Some(error["resets_at"].as_u64().unwrap()),
        server.requests()[1].resets_at
    );

    let got = post(
        &server,
        "/v1beta/models/gemini-2.5-pro:streamGenerateContent",
        json!({ "contents": [], "tools": [{ "functionDeclarations": [{ "name": "write_file" }] }] }),
    );
    assert_eq!(got.status, 429);
    assert_eq!(got.json()["error"]["status"], "RESOURCE_EXHAUSTED");
    assert_eq!(got.json()["error"]["details"][1]["retryDelay"], "3600s");
}

#[test]
fn a_stall_holds_its_request_until_released() {
    let server = Server::start(Script::new(vec![Turn::stall()]));
    let port = server.port();
    let client = std::thread::spawn(move || {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let body = anthropic_request(&["Write"]).to_string();
        write!(
            stream,
            "POST /v1/messages HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut raw = String::new();
        stream.read_to_string(&mut raw).unwrap();
        raw
    });
    wait_for(
        "the stalled request to arrive",
        Duration::from_secs(10),
        || (!server.requests().is_empty()).then_some(()),
    );
    assert!(!client.is_finished(), "a stall must not answer by itself");
    server.release();
    let raw = client.join().unwrap();
    assert!(raw.starts_with("HTTP/1.1 500"), "{raw}");
}

#[test]
fn unknown_endpoints_are_recorded_and_answered_404() {
    let server = Server::start(Script::default());
    let got = request(&server, "GET", "/api/unknown", None);
    assert_eq!(got.status, 404);
    assert_eq!(server.requests()[0].answer, Answer::Unknown);
    assert_eq!(server.requests()[0].path, "/api/unknown");
    // What Claude Code asks at start: a HEAD on the base URL, the models list, token counts.
    assert_eq!(request(&server, "HEAD", "/", None).status, 200);
    assert_eq!(request(&server, "GET", "/v1/models", None).status, 200);
    let got = post(&server, "/v1/messages/count_tokens", anthropic_request(&[]));
    assert!(got.json()["input_tokens"].as_u64().unwrap() > 0);
    assert_eq!(server.turns_answered(), 0);
}

/// Found running two Claude Code streams one after the other: Claude Code's system prompt lists
/// recent commits, whose messages are the earlier stream's task text (its key), and the later
/// stream's requests got the earlier one's turns. A request belongs to the conversation the
/// person's last message naming a key names: not the system prompt, not a tool's output, not an
/// earlier message's key when a later one names its own; a resumed session's new message,
/// which names none, leaves it to the message before.
#[test]
fn a_request_belongs_to_the_conversation_its_last_user_message_names() {
    let (a, b) = ("KEY-A-earlier", "KEY-B-later");
    let script = Script::new(Vec::new())
        .conversation(a, vec![Turn::text("turn of A")], std::path::Path::new("/a"))
        .conversation(
            b,
            vec![
                Turn::text("turn of B"),
                Turn::text("turn of B again"),
                Turn::text("turn of B resumed"),
            ],
            std::path::Path::new("/b"),
        );
    let cases = [
        (
            "/v1/messages",
            json!({ "model": "m", "stream": true, "max_tokens": 9,
                "tools": [{ "name": "Write", "input_schema": {} }],
                "system": [{ "type": "text", "text": format!("Recent commits:\nabc {a}") }],
                "messages": [
                    { "role": "user", "content": [
                        { "type": "text", "text": format!("<system-reminder>{a}</system-reminder>") },
                        { "type": "text", "text": format!("Do {b}") }] },
                    { "role": "assistant", "content": [{ "type": "tool_use", "id": "t", "name": "Bash", "input": {} }] },
                    { "role": "user", "content": [{ "type": "tool_result", "tool_use_id": "t", "content": format!("git log: {a}") }] }] }),
        ),
        (
            "/v1/responses",
            json!({ "model": "m", "stream": true, "instructions": format!("{a}"),
                "tools": [{ "type": "function", "name": "exec_command" }],
                "input": [
                    { "type": "message", "role": "user", "content": [{ "type": "input_text", "text": format!("Do {a}") }] },
                    { "type": "message", "role": "user", "content": [{ "type": "input_text", "text": format!("Do {b}") }] },
                    { "type": "function_call_output", "call_id": "c", "output": format!("{a}") }] }),
        ),
        (
            "/v1/chat/completions",
            json!({ "model": "m", "stream": false,
                "tools": [{ "type": "function", "function": { "name": "write_file" } }],
                "messages": [
                    { "role": "system", "content": format!("{a}") },
                    { "role": "user", "content": format!("Do {b}") },
                    { "role": "tool", "tool_call_id": "c", "content": format!("{a}") }] }),
        ),
    ];
    let server = Server::start(script);
    for (path, body) in cases.iter().take(2) {
        let got = post(&server, path, body.clone());
        assert!(got.body.contains("turn of B"), "{path}: {}", got.body);
        assert!(!got.body.contains("turn of A"), "{path}: {}", got.body);
    }
    // Gemini; then a resumed session: its new message names no key, the task's first does.
    let gemini = json!({
        "tools": [{ "functionDeclarations": [{ "name": "write_file" }] }],
        "systemInstruction": { "parts": [{ "text": format!("{a}") }] },
        "contents": [
            { "role": "user", "parts": [{ "text": format!("Do {b}") }] },
            { "role": "model", "parts": [{ "functionCall": { "name": "run_shell_command", "args": {} } }] },
            { "role": "user", "parts": [{ "functionResponse": { "name": "run_shell_command", "response": { "output": format!("{a}") } } }] },
            { "role": "user", "parts": [{ "text": "The check failed: add fixed.txt" }] }] });
    let got = post(
        &server,
        "/v1beta/models/gemini-2.5-pro:generateContent",
        gemini,
    );
    assert!(got.body.contains("turn of B resumed"), "{}", got.body);
    // Chat completions (aider, Qwen Code): the script of B ran out, A is untouched.
    let (path, body) = &cases[2];
    let got = post(&server, path, body.clone());
    assert!(!got.body.contains("turn of A"), "{path}: {}", got.body);
    let answers: Vec<Answer> = server.requests().into_iter().map(|r| r.answer).collect();
    assert_eq!(
        answers,
        [
            Answer::Turn(0),
            Answer::Turn(1),
            Answer::Turn(2),
            Answer::Exhausted
        ]
    );
}
