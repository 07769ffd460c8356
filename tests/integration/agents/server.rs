//! The scripted model server: what the real agent CLIs talk to instead of a model provider.
//!
//! It listens on 127.0.0.1 only, on a port the kernel picks, and speaks just enough of four APIs
//! for the CLIs to run a whole conversation: the Anthropic Messages API (Claude Code), the OpenAI
//! Responses API (Codex), OpenAI chat completions (aider, Qwen Code) and Gemini's
//! generateContent (Gemini CLI). A test scripts the conversation as [`Turn`]s: each request that
//! is a turn of the agent's conversation gets the next one, rendered in the dialect of the API it
//! came on and with the tools the CLI offered in that request (a [`Action::WriteFile`] becomes
//! Claude's `Write`, Codex's `apply_patch`, Gemini's and Qwen's `write_file`, or a whole-file edit
//! block in aider's text). Side requests (session titles, commit messages, routing classifiers)
//! get a short fixed answer and do not consume the script.
//!
//! Every request is recorded (method, path, headers, body, what it was answered with) so a test
//! can check what the CLI sent: the prompt, the earlier turns of a resumed session, nothing to an
//! unknown endpoint. Token usage in the answers comes from the script, so a test can compare what
//! a CLI reports with what the server sent.

#![allow(dead_code)]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};

/// Token figures of one answer, in API-neutral terms: `input` is the prompt tokens that were
/// neither read from nor written to a cache. Each API gets them in its own shape: Anthropic's
/// `input_tokens` excludes cache reads and writes; OpenAI's and Gemini's prompt counts include
/// the cached tokens and name them separately (see `docs/agents.md`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Usage {
    pub input: u64,
    pub output: u64,
    pub cache_read: u64,
    pub cache_write: u64,
}

impl Usage {
    pub const DEFAULT: Usage = Usage {
        input: 100,
        output: 20,
        cache_read: 0,
        cache_write: 0,
    };
    /// What side requests (titles, commit messages) report: nothing, so that a CLI's totals are
    /// the scripted turns' figures alone.
    pub const NONE: Usage = Usage {
        input: 0,
        output: 0,
        cache_read: 0,
        cache_write: 0,
    };

    /// The prompt tokens as OpenAI and Gemini count them (cached tokens included).
    pub fn prompt_total(&self) -> u64 {
        self.input + self.cache_read + self.cache_write
    }
}

/// What the model does in one turn.
#[derive(Clone, Debug)]
pub enum Action {
    /// Create or overwrite a file with the CLI's own file tool (a whole-file edit for aider).
    /// A relative path is made absolute against the script's workdir for the tools that want
    /// absolute paths.
    WriteFile { path: String, content: String },
    /// Run a command with the CLI's own shell tool.
    Shell(String),
    /// A final answer in plain text.
    Text(String),
    /// A call of a tool the test names itself, with its arguments (for tools the other actions
    /// do not cover; the CLI must have offered it).
    Tool { name: String, input: Value },
    /// The model declines (Anthropic: `stop_reason: "refusal"`; elsewhere the text alone).
    Refusal(String),
    /// An HTTP error with the API's own error body.
    Error { status: u16, message: String },
    /// The provider's usage-limit answer: HTTP 429 with the reset time in the API's own form
    /// (headers and body), `reset_after` from the moment of the answer.
    UsageLimit { reset_after: Duration },
    /// No answer until the server is dropped or [`Server::release`] is called (to interrupt a
    /// CLI while it waits for the model); then a 500.
    Stall,
}

/// One scripted answer: an action and the token figures reported with it.
#[derive(Clone, Debug)]
pub struct Turn {
    pub action: Action,
    pub usage: Usage,
}

impl Turn {
    fn new(action: Action) -> Turn {
        Turn {
            action,
            usage: Usage::DEFAULT,
        }
    }
    pub fn write(path: &str, content: &str) -> Turn {
        Turn::new(Action::WriteFile {
            path: path.into(),
            content: content.into(),
        })
    }
    pub fn shell(command: &str) -> Turn {
        Turn::new(Action::Shell(command.into()))
    }
    pub fn text(text: &str) -> Turn {
        Turn::new(Action::Text(text.into()))
    }
    pub fn tool(name: &str, input: Value) -> Turn {
        Turn::new(Action::Tool {
            name: name.into(),
            input,
        })
    }
    pub fn refusal(text: &str) -> Turn {
        Turn::new(Action::Refusal(text.into()))
    }
    pub fn error(status: u16, message: &str) -> Turn {
        Turn::new(Action::Error {
            status,
            message: message.into(),
        })
    }
    pub fn usage_limit(reset_after: Duration) -> Turn {
        Turn::new(Action::UsageLimit { reset_after })
    }
    pub fn stall() -> Turn {
        Turn::new(Action::Stall)
    }
    /// Sets the uncached input and the output tokens of this answer.
    pub fn tokens(mut self, input: u64, output: u64) -> Turn {
        self.usage.input = input;
        self.usage.output = output;
        self
    }
    /// Sets the cache read and cache write tokens of this answer.
    pub fn cached(mut self, read: u64, write: u64) -> Turn {
        self.usage.cache_read = read;
        self.usage.cache_write = write;
        self
    }
}

/// A scripted conversation, or several at once (agents running side by side, each told
/// apart by a key its requests carry).
#[derive(Clone, Debug, Default)]
pub struct Script {
    turns: Vec<Turn>,
    workdir: Option<PathBuf>,
    commit_message: Option<String>,
    /// Conversations of their own: a request whose body holds the key (the task's text, which
    /// every request of its conversation repeats) takes its turns from them.
    conversations: Vec<Conversation>,
}

/// One of several conversations of a script: its key, turns and working directory.
#[derive(Clone, Debug)]
pub struct Conversation {
    pub key: String,
    pub turns: Vec<Turn>,
    pub workdir: Option<PathBuf>,
}

impl Script {
    pub fn new(turns: Vec<Turn>) -> Script {
        Script {
            turns,
            ..Script::default()
        }
    }
    /// A conversation of its own for the requests whose body holds `key` (agents running side
    /// by side); `workdir` resolves its relative paths as [`Script::workdir`] does.
    pub fn conversation(
        mut self,
        key: &str,
        turns: Vec<Turn>,
        workdir: &std::path::Path,
    ) -> Script {
        self.conversations.push(Conversation {
            key: key.into(),
            turns,
            workdir: Some(workdir.to_path_buf()),
        });
        self
    }
    /// The CLI's working directory: relative paths of file tools that want absolute ones are
    /// resolved against it.
    pub fn workdir(mut self, dir: impl Into<PathBuf>) -> Script {
        self.workdir = Some(dir.into());
        self
    }
    /// What a commit-message request (aider's) is answered with.
    pub fn commit_message(mut self, message: &str) -> Script {
        self.commit_message = Some(message.into());
        self
    }
}

/// How a request was answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// With the script's turn of this index.
    Turn(usize),
    /// A turn came after the script ran out: answered with a closing text.
    Exhausted,
    /// A side request (title, commit message, classifier): a fixed short answer.
    Side,
    /// Metadata: token counts, model lists, the connectivity check.
    Meta,
    /// Nothing this server knows: 404.
    Unknown,
}

/// A request the server received.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub headers: Vec<(String, String)>,
    /// The JSON body (`Null` when empty or not JSON; `raw` then holds it).
    pub body: Value,
    pub raw: String,
    pub answer: Answer,
    /// For a usage-limit answer: the reset time sent, in seconds since the epoch.
    pub resets_at: Option<u64>,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    /// Whether `text` occurs anywhere in the request body (strings are searched unescaped).
    pub fn contains(&self, text: &str) -> bool {
        fn walk(value: &Value, text: &str) -> bool {
            match value {
                Value::String(s) => s.contains(text),
                Value::Array(items) => items.iter().any(|v| walk(v, text)),
                Value::Object(map) => map.values().any(|v| walk(v, text)),
                _ => false,
            }
        }
        walk(&self.body, text) || (self.body.is_null() && self.raw.contains(text))
    }
}

/// A keyed conversation as the server keeps it: key, turns left, turns answered, workdir.
type Keyed = (String, VecDeque<Turn>, usize, Option<PathBuf>);

struct Shared {
    turns: Mutex<VecDeque<Turn>>,
    next_turn: Mutex<usize>,
    /// The keyed conversations: key, turns left, turns answered, workdir.
    conversations: Mutex<Vec<Keyed>>,
    requests: Mutex<Vec<Recorded>>,
    workdir: Option<PathBuf>,
    commit_message: String,
    released: tokio::sync::watch::Sender<bool>,
    ids: Mutex<u64>,
}

impl Shared {
    fn next_id(&self) -> u64 {
        let mut ids = self.ids.lock().unwrap();
        *ids += 1;
        *ids
    }
    /// The keyed conversation a request belongs to, if any: the one whose key the person's
    /// last message that names one holds ([`user_texts`]). Not anywhere in the body: Claude
    /// Code's system prompt lists recent commits, whose messages are earlier tasks' text, so
    /// a later stream's request holds their keys too. Latest first, not the last message
    /// alone: a resumed session's new message (a check's output) names no key, the task's
    /// first message before it does.
    fn conversation_of(&self, api: Api, body: &Value) -> Option<usize> {
        let conversations = self.conversations.lock().unwrap();
        if conversations.is_empty() {
            return None;
        }
        user_texts(api, body).iter().rev().find_map(|text| {
            conversations
                .iter()
                .position(|(key, ..)| text.contains(key.as_str()))
        })
    }

    /// The next turn of keyed conversation `c` (its index there), or None once it ran out.
    fn take_turn_of(&self, c: usize) -> Option<(usize, Turn)> {
        let mut conversations = self.conversations.lock().unwrap();
        let (_, turns, answered, _) = &mut conversations[c];
        let turn = turns.pop_front()?;
        let index = *answered;
        *answered += 1;
        *self.next_turn.lock().unwrap() += 1;
        Some((index, turn))
    }

    /// The working directory of keyed conversation `c`.
    fn workdir_of(&self, c: Option<usize>) -> Option<PathBuf> {
        match c {
            Some(c) => self.conversations.lock().unwrap()[c].3.clone(),
            None => self.workdir.clone(),
        }
    }

    /// The next scripted turn, or None once the script ran out.
    fn take_turn(&self) -> Option<(usize, Turn)> {
        let turn = self.turns.lock().unwrap().pop_front()?;
        let mut next = self.next_turn.lock().unwrap();
        let index = *next;
        *next += 1;
        Some((index, turn))
    }
    fn absolute(&self, path: &str, conversation: Option<usize>) -> String {
        match &self.workdir_of(conversation) {
            Some(dir) if !path.starts_with('/') => dir.join(path).to_string_lossy().into_owned(),
            _ => path.to_string(),
        }
    }
}

/// A running scripted model server. Dropping it releases stalled requests and stops it.
pub struct Server {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    stopped: std::sync::mpsc::Receiver<()>,
}

impl Server {
    /// Starts a server on 127.0.0.1 (a free port) answering with `script`.
    pub fn start(script: Script) -> Server {
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).expect("bind 127.0.0.1:0");
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let (released, _) = tokio::sync::watch::channel(false);
        let shared = Arc::new(Shared {
            turns: Mutex::new(script.turns.into()),
            next_turn: Mutex::new(0),
            conversations: Mutex::new(
                script
                    .conversations
                    .into_iter()
                    .map(|c| (c.key, c.turns.into(), 0, c.workdir))
                    .collect(),
            ),
            requests: Mutex::new(Vec::new()),
            workdir: script.workdir,
            commit_message: script
                .commit_message
                .unwrap_or_else(|| "Scripted change".into()),
            released,
            ids: Mutex::new(0),
        });
        let (shutdown, shutdown_rx) = tokio::sync::oneshot::channel::<()>();
        let (stopped_tx, stopped) = std::sync::mpsc::channel();
        let state = Arc::clone(&shared);
        std::thread::Builder::new()
            .name(format!("model-server-{}", addr.port()))
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_io()
                    .enable_time()
                    .build()
                    .unwrap();
                runtime.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                    let app = axum::Router::new().fallback(handle).with_state(state);
                    let _ = axum::serve(listener, app)
                        .with_graceful_shutdown(async move {
                            let _ = shutdown_rx.await;
                        })
                        .await;
                });
                let _ = stopped_tx.send(());
            })
            .unwrap();
        Server {
            addr,
            shared,
            shutdown: Some(shutdown),
            stopped,
        }
    }

    /// `http://127.0.0.1:PORT` (no trailing slash, no API version).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Every request so far, in order of arrival.
    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.requests.lock().unwrap().clone()
    }

    /// The requests that were answered with a scripted turn (or arrived after the script ran
    /// out), in order.
    pub fn turn_requests(&self) -> Vec<Recorded> {
        self.requests()
            .into_iter()
            .filter(|r| matches!(r.answer, Answer::Turn(_) | Answer::Exhausted))
            .collect()
    }

    /// How many scripted turns have been answered.
    pub fn turns_answered(&self) -> usize {
        *self.shared.next_turn.lock().unwrap()
    }

    /// Whether any request had `text` in its body.
    pub fn saw(&self, text: &str) -> bool {
        self.requests().iter().any(|r| r.contains(text))
    }

    /// Ends every stalled request (with a 500) and lets later stalls through at once.
    pub fn release(&self) {
        let _ = self.shared.released.send(true);
    }

    /// Stops answering: from now on nothing listens on its port (a connection is refused), as
    /// for a CLI whose model's address is wrong or whose server went away. Its URL and what it
    /// recorded stay readable.
    pub fn stop(&mut self) {
        self.release();
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
            // A client that keeps a connection open would hold a graceful shutdown forever:
            // wait a little, then leave the thread to end with the test process.
            let _ = self.stopped.recv_timeout(Duration::from_secs(5));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

fn now_epoch() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The one handler: records the request, then answers by path.
async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let query = request.uri().query().map(str::to_string);
    let headers = request.headers().clone();
    let bytes = axum::body::to_bytes(request.into_body(), 64 << 20)
        .await
        .unwrap_or_default();
    let raw = String::from_utf8_lossy(&bytes).into_owned();
    let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);

    let (answer, reply) = route(&shared, &method, &path, &body).await;
    let resets_at = reply.resets_at;
    shared.requests.lock().unwrap().push(Recorded {
        method: method.to_string(),
        path,
        query,
        headers: header_list(&headers),
        body,
        raw,
        answer,
        resets_at,
    });
    if reply.stall {
        let mut released = shared.released.subscribe();
        let _ = released.wait_for(|released| *released).await;
        return plain(StatusCode::INTERNAL_SERVER_ERROR, "application/json", "{}");
    }
    reply.response
}

fn header_list(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(k, v)| (k.to_string(), String::from_utf8_lossy(v.as_bytes()).into()))
        .collect()
}

/// An answer, possibly deferred (a stall) or carrying the reset time it announced.
struct Reply {
    response: Response,
    stall: bool,
    resets_at: Option<u64>,
}

impl From<Response> for Reply {
    fn from(response: Response) -> Reply {
        Reply {
            response,
            stall: false,
            resets_at: None,
        }
    }
}

impl Reply {
    fn stall() -> Reply {
        Reply {
            response: plain(StatusCode::OK, "text/plain", ""),
            stall: true,
            resets_at: None,
        }
    }
}

async fn route(shared: &Shared, method: &Method, path: &str, body: &Value) -> (Answer, Reply) {
    let api = if *method == Method::POST {
        if path.ends_with("/messages/count_tokens") {
            let tokens = serde_json::to_string(body).unwrap_or_default().len() / 4;
            return (
                Answer::Meta,
                json_response(StatusCode::OK, &json!({ "input_tokens": tokens })).into(),
            );
        } else if path.ends_with("/messages") {
            Api::Anthropic
        } else if path.ends_with("/responses") {
            Api::Responses
        } else if path.ends_with("/chat/completions") {
            Api::Chat
        } else if path.ends_with(":countTokens") {
            return (
                Answer::Meta,
                json_response(StatusCode::OK, &json!({ "totalTokens": 100 })).into(),
            );
        } else if path.ends_with(":streamGenerateContent") {
            Api::Gemini { stream: true }
        } else if path.ends_with(":generateContent") {
            Api::Gemini { stream: false }
        } else {
            return unknown(path);
        }
    } else if *method == Method::GET || *method == Method::HEAD {
        if path == "/" {
            // Claude Code's connectivity check (HEAD on the base URL).
            return (Answer::Meta, plain(StatusCode::OK, "text/plain", "").into());
        } else if path.ends_with("/models") {
            let models = json!({
                "object": "list",
                "data": [model_object("claude-sonnet-4-5"), model_object("gpt-5.5")],
                "has_more": false,
            });
            return (Answer::Meta, json_response(StatusCode::OK, &models).into());
        } else if let Some(id) = path.strip_prefix("/v1/models/") {
            return (
                Answer::Meta,
                json_response(StatusCode::OK, &model_object(id)).into(),
            );
        }
        return unknown(path);
    } else {
        return unknown(path);
    };

    let model = match api {
        // Gemini names the model in the path: /v1beta/models/<model>:streamGenerateContent.
        Api::Gemini { .. } => path
            .rsplit('/')
            .next()
            .and_then(|last| last.split(':').next())
            .unwrap_or("scripted-model")
            .to_string(),
        _ => body["model"]
            .as_str()
            .unwrap_or("scripted-model")
            .to_string(),
    };
    let conversation = shared.conversation_of(api, body);
    let request = Req {
        api,
        model: &model,
        body,
        tools: &offered_tools(api, body),
        conversation,
    };
    if is_side_request(api, body, request.tools) {
        let text = side_text(shared, api, body);
        let turn = Turn {
            action: Action::Text(text),
            usage: Usage::NONE,
        };
        return (Answer::Side, render(shared, &request, &turn));
    }
    let taken = match conversation {
        Some(c) => shared.take_turn_of(c),
        None => shared.take_turn(),
    };
    match taken {
        Some((index, turn)) => (Answer::Turn(index), render(shared, &request, &turn)),
        None => {
            let turn = Turn::text("The scripted conversation is over.");
            (Answer::Exhausted, render(shared, &request, &turn))
        }
    }
}

/// The text of each message the person (or the program that runs the CLI) sent, in order, as
/// each API carries it: not the system prompt or instructions, not tool results (Anthropic's
/// `tool_result` blocks, OpenAI's `function_call_output` items and `tool` messages, Gemini's
/// `functionResponse` parts), not Claude Code's `<system-reminder>` blocks.
fn user_texts(api: Api, body: &Value) -> Vec<String> {
    let items = |v: &Value| v.as_array().cloned().unwrap_or_default();
    // A message's content: a string, or parts with a `text` of the given type (any when None).
    let text_of = |content: &Value, kind: Option<&str>| -> String {
        match content {
            Value::String(s) => s.clone(),
            Value::Array(parts) => parts
                .iter()
                .filter(|p| kind.is_none_or(|k| p["type"] == k))
                .filter_map(|p| p["text"].as_str())
                .filter(|t| !t.starts_with("<system-reminder>"))
                .collect::<Vec<_>>()
                .join("\n"),
            _ => String::new(),
        }
    };
    let texts: Vec<String> = match api {
        Api::Anthropic => items(&body["messages"])
            .iter()
            .filter(|m| m["role"] == "user")
            .map(|m| text_of(&m["content"], Some("text")))
            .collect(),
        Api::Responses => items(&body["input"])
            .iter()
            .filter(|i| i["role"] == "user" && (i["type"].is_null() || i["type"] == "message"))
            .map(|i| text_of(&i["content"], None))
            .collect(),
        Api::Chat => items(&body["messages"])
            .iter()
            .filter(|m| m["role"] == "user")
            .map(|m| text_of(&m["content"], None))
            .collect(),
        Api::Gemini { .. } => items(&body["contents"])
            .iter()
            .filter(|c| c["role"] == "user")
            .map(|c| text_of(&c["parts"], None))
            .collect(),
    };
    texts.into_iter().filter(|t| !t.is_empty()).collect()
}

/// What an answer is rendered for.
struct Req<'a> {
    api: Api,
    model: &'a str,
    body: &'a Value,
    tools: &'a [String],
    /// The keyed conversation it belongs to (see [`Script::conversation`]).
    conversation: Option<usize>,
}

fn unknown(path: &str) -> (Answer, Reply) {
    let body = json!({ "error": { "message": format!("no such endpoint on the scripted server: {path}") } });
    (
        Answer::Unknown,
        json_response(StatusCode::NOT_FOUND, &body).into(),
    )
}

fn model_object(id: &str) -> Value {
    json!({
        "id": id, "object": "model", "type": "model", "display_name": id,
        "created_at": "2026-01-01T00:00:00Z", "created": 1_767_225_600, "owned_by": "streams-test",
    })
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Api {
    Anthropic,
    Responses,
    Chat,
    Gemini { stream: bool },
}

/// The names of the tools the request offers the model.
fn offered_tools(api: Api, body: &Value) -> Vec<String> {
    let mut names = Vec::new();
    for tool in body["tools"].as_array().into_iter().flatten() {
        match api {
            Api::Chat => names.extend(tool["function"]["name"].as_str().map(str::to_string)),
            Api::Gemini { .. } => {
                for decl in tool["functionDeclarations"]
                    .as_array()
                    .into_iter()
                    .flatten()
                {
                    names.extend(decl["name"].as_str().map(str::to_string));
                }
            }
            _ => names.extend(
                tool["name"]
                    .as_str()
                    .or(tool["type"].as_str())
                    .map(str::to_string),
            ),
        }
    }
    names
}

/// A request that is not a turn of the agent's conversation: it offers no tools (titles,
/// classifiers) or asks for a commit message. Aider's turns offer no tools either: a chat
/// completion without tools is a turn unless it asks for a commit message.
fn is_side_request(api: Api, body: &Value, tools: &[String]) -> bool {
    match api {
        Api::Chat => tools.is_empty() && asks_for_commit_message(body),
        _ => tools.is_empty(),
    }
}

fn asks_for_commit_message(body: &Value) -> bool {
    body["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|m| m["role"] == "system")
        .any(|m| {
            m["content"]
                .as_str()
                .is_some_and(|c| c.contains("commit message"))
        })
}

/// The fixed answer of a side request. A Gemini request that asks for JSON of a given schema
/// gets the smallest object that fits it.
fn side_text(shared: &Shared, api: Api, body: &Value) -> String {
    match api {
        Api::Chat => shared.commit_message.clone(),
        Api::Gemini { .. } => {
            let config = &body["generationConfig"];
            let schema = config
                .get("responseJsonSchema")
                .or(config.get("responseSchema"));
            match schema {
                Some(schema) => example_of(schema).to_string(),
                None => "Scripted side answer.".into(),
            }
        }
        _ => "Scripted side answer".into(),
    }
}

/// The smallest value that fits a JSON schema (Gemini's schemas use upper-case type names).
fn example_of(schema: &Value) -> Value {
    if let Some(first) = schema["enum"].as_array().and_then(|e| e.first()) {
        return first.clone();
    }
    let kind = schema["type"].as_str().unwrap_or("object").to_lowercase();
    match kind.as_str() {
        "string" => json!("scripted"),
        "number" | "integer" => json!(1),
        "boolean" => json!(false),
        "array" => json!([]),
        _ => {
            let mut object = serde_json::Map::new();
            if let Some(props) = schema["properties"].as_object() {
                for (name, prop) in props {
                    object.insert(name.clone(), example_of(prop));
                }
            }
            Value::Object(object)
        }
    }
}

fn render(shared: &Shared, request: &Req<'_>, turn: &Turn) -> Reply {
    let Req {
        api,
        model,
        body,
        tools,
        conversation,
    } = *request;
    match &turn.action {
        Action::Stall => return Reply::stall(),
        Action::Error { status, message } => {
            let status = StatusCode::from_u16(*status).unwrap_or(StatusCode::BAD_REQUEST);
            return json_response(status, &error_body(api, status, message)).into();
        }
        Action::UsageLimit { reset_after } => return usage_limit(api, *reset_after),
        _ => {}
    }
    let call = ToolCall::of(shared, api, tools, &turn.action, conversation);
    let id = shared.next_id();
    match api {
        Api::Anthropic => anthropic(body, model, id, call, turn),
        Api::Responses => responses(model, id, call, turn),
        Api::Chat => chat(body, model, id, call, turn),
        Api::Gemini { stream } => gemini(stream, model, call, turn),
    }
}

/// What one turn says, once the action is put in the CLI's own terms.
enum ToolCall {
    Text(String),
    Refusal(String),
    /// A function call with JSON arguments.
    Function {
        name: String,
        input: Value,
    },
    /// A freeform tool call (Codex's `apply_patch`): plain-text input.
    Custom {
        name: String,
        input: String,
    },
}

impl ToolCall {
    fn of(
        shared: &Shared,
        api: Api,
        tools: &[String],
        action: &Action,
        conversation: Option<usize>,
    ) -> ToolCall {
        let has = |name: &str| tools.iter().any(|t| t == name);
        let function = |name: &str, input: Value| ToolCall::Function {
            name: name.into(),
            input,
        };
        match action {
            Action::Text(text) => ToolCall::Text(text.clone()),
            Action::Refusal(text) => ToolCall::Refusal(text.clone()),
            Action::Tool { name, input } => function(name, input.clone()),
            Action::WriteFile { path, content } => {
                if api == Api::Chat && tools.is_empty() {
                    // aider: a whole-file edit block in the reply text.
                    ToolCall::Text(format!("{path}\n```\n{content}```\n"))
                } else if has("Write") {
                    function(
                        "Write",
                        json!({ "file_path": shared.absolute(path, conversation), "content": content }),
                    )
                } else if has("apply_patch") {
                    let mut patch = format!("*** Begin Patch\n*** Add File: {path}\n");
                    for line in content.lines() {
                        patch.push_str(&format!("+{line}\n"));
                    }
                    patch.push_str("*** End Patch\n");
                    ToolCall::Custom {
                        name: "apply_patch".into(),
                        input: patch,
                    }
                } else if has("write_file") {
                    function(
                        "write_file",
                        json!({ "file_path": shared.absolute(path, conversation), "content": content }),
                    )
                } else {
                    let command = format!(
                        "mkdir -p \"$(dirname '{path}')\" && cat > '{path}' <<'STREAMS_EOF'\n{content}STREAMS_EOF"
                    );
                    ToolCall::of(shared, api, tools, &Action::Shell(command), conversation)
                }
            }
            Action::Shell(command) => {
                if has("Bash") {
                    function(
                        "Bash",
                        json!({ "command": command, "description": "Run a command" }),
                    )
                } else if has("exec_command") {
                    function("exec_command", json!({ "cmd": command }))
                } else if has("shell") {
                    function("shell", json!({ "command": ["bash", "-lc", command] }))
                } else if has("run_shell_command") {
                    function(
                        "run_shell_command",
                        json!({ "command": command, "is_background": false }),
                    )
                } else {
                    // aider suggests commands in a fenced block.
                    ToolCall::Text(format!("```bash\n{command}\n```\n"))
                }
            }
            Action::Error { .. } | Action::UsageLimit { .. } | Action::Stall => {
                unreachable!("answered before rendering")
            }
        }
    }
}

fn json_response(status: StatusCode, value: &Value) -> Response {
    plain(status, "application/json", &value.to_string())
}

fn plain(status: StatusCode, content_type: &str, body: &str) -> Response {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .body(Body::from(body.to_string()))
        .unwrap()
}

fn sse(events: &[(Option<&str>, Value)]) -> Response {
    let mut text = String::new();
    for (name, data) in events {
        if let Some(name) = name {
            text.push_str(&format!("event: {name}\n"));
        }
        text.push_str(&format!("data: {data}\n\n"));
    }
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "text/event-stream")
        .header("cache-control", "no-cache")
        .body(Body::from(text))
        .unwrap()
}

fn error_body(api: Api, status: StatusCode, message: &str) -> Value {
    match api {
        Api::Anthropic => {
            let kind = match status.as_u16() {
                400 => "invalid_request_error",
                401 => "authentication_error",
                403 => "permission_error",
                404 => "not_found_error",
                429 => "rate_limit_error",
                529 => "overloaded_error",
                _ => "api_error",
            };
            json!({ "type": "error", "error": { "type": kind, "message": message } })
        }
        Api::Responses | Api::Chat => {
            let kind = match status.as_u16() {
                400 => "invalid_request_error",
                401 => "authentication_error",
                429 => "rate_limit_exceeded",
                _ => "server_error",
            };
            json!({ "error": { "type": kind, "code": kind, "message": message, "param": null } })
        }
        Api::Gemini { .. } => {
            let kind = match status.as_u16() {
                400 => "INVALID_ARGUMENT",
                401 => "UNAUTHENTICATED",
                403 => "PERMISSION_DENIED",
                429 => "RESOURCE_EXHAUSTED",
                _ => "INTERNAL",
            };
            json!({ "error": { "code": status.as_u16(), "message": message, "status": kind } })
        }
    }
}

/// Each provider's usage-limit answer, as its CLI recognises it (see `docs/agents.md`).
fn usage_limit(api: Api, reset_after: Duration) -> Reply {
    let secs = reset_after.as_secs();
    let resets_at = now_epoch() + secs;
    let mut builder = Response::builder()
        .status(StatusCode::TOO_MANY_REQUESTS)
        .header("content-type", "application/json")
        .header("retry-after", secs.to_string());
    let body = match api {
        Api::Anthropic => {
            // The subscription limit: Claude Code reads the unified headers (for an account
            // signed in with claude.ai; an API key gets the body's message alone).
            builder = builder
                .header("anthropic-ratelimit-unified-status", "rejected")
                .header("anthropic-ratelimit-unified-reset", resets_at.to_string())
                .header(
                    "anthropic-ratelimit-unified-representative-claim",
                    "five_hour",
                )
                .header("request-id", "req_scripted_limit");
            json!({ "type": "error", "error": { "type": "rate_limit_error",
                "message": "This request would exceed your account's rate limit. Please try again later." } })
        }
        Api::Responses => json!({ "error": {
            "type": "usage_limit_reached", "message": "The usage limit has been reached",
            "plan_type": "pro", "resets_at": resets_at, "resets_in_seconds": secs } }),
        Api::Chat => {
            builder = builder
                .header("x-ratelimit-remaining-requests", "0")
                .header("x-ratelimit-reset-requests", format!("{secs}s"));
            json!({ "error": { "type": "insufficient_quota", "code": "insufficient_quota", "param": null,
                "message": "You exceeded your current quota, please check your plan and billing details." } })
        }
        Api::Gemini { .. } => json!({ "error": {
            "code": 429, "status": "RESOURCE_EXHAUSTED",
            "message": "Resource has been exhausted (e.g. check quota).",
            "details": [
                { "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                  "violations": [{ "quotaMetric": "generativelanguage.googleapis.com/generate_content_requests",
                                   "quotaId": "GenerateRequestsPerDayPerProjectPerModel" }] },
                { "@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": format!("{secs}s") }
            ] } }),
    };
    Reply {
        response: builder.body(Body::from(body.to_string())).unwrap(),
        stall: false,
        resets_at: Some(resets_at),
    }
}

fn anthropic(body: &Value, model: &str, id: u64, call: ToolCall, turn: &Turn) -> Reply {
    let u = turn.usage;
    let (block, delta, stop) = match call {
        ToolCall::Text(text) => (
            json!({ "type": "text", "text": "" }),
            json!({ "type": "text_delta", "text": text }),
            "end_turn",
        ),
        ToolCall::Refusal(text) => (
            json!({ "type": "text", "text": "" }),
            json!({ "type": "text_delta", "text": text }),
            "refusal",
        ),
        ToolCall::Function { name, input } => (
            json!({ "type": "tool_use", "id": format!("toolu_{id:04}"), "name": name, "input": {} }),
            json!({ "type": "input_json_delta", "partial_json": input.to_string() }),
            "tool_use",
        ),
        ToolCall::Custom { name, input } => (
            json!({ "type": "tool_use", "id": format!("toolu_{id:04}"), "name": name, "input": {} }),
            json!({ "type": "input_json_delta", "partial_json": json!({ "input": input }).to_string() }),
            "tool_use",
        ),
    };
    let usage_start = json!({
        "input_tokens": u.input, "cache_read_input_tokens": u.cache_read,
        "cache_creation_input_tokens": u.cache_write, "output_tokens": 1,
    });
    let message_id = format!("msg_{id:04}");
    if body["stream"] != true {
        let mut content = block.clone();
        match delta["type"].as_str() {
            Some("text_delta") => content["text"] = delta["text"].clone(),
            _ => {
                content["input"] =
                    serde_json::from_str(delta["partial_json"].as_str().unwrap_or("{}")).unwrap()
            }
        }
        let mut usage = usage_start;
        usage["output_tokens"] = json!(u.output);
        let message = json!({ "id": message_id, "type": "message", "role": "assistant", "model": model,
            "content": [content], "stop_reason": stop, "stop_sequence": null, "usage": usage });
        return json_response(StatusCode::OK, &message).into();
    }
    sse(&[
        (
            Some("message_start"),
            json!({ "type": "message_start", "message": { "id": message_id, "type": "message",
                "role": "assistant", "model": model, "content": [], "stop_reason": null,
                "stop_sequence": null, "usage": usage_start } }),
        ),
        (
            Some("content_block_start"),
            json!({ "type": "content_block_start", "index": 0, "content_block": block }),
        ),
        (
            Some("content_block_delta"),
            json!({ "type": "content_block_delta", "index": 0, "delta": delta }),
        ),
        (
            Some("content_block_stop"),
            json!({ "type": "content_block_stop", "index": 0 }),
        ),
        (
            Some("message_delta"),
            json!({ "type": "message_delta", "delta": { "stop_reason": stop, "stop_sequence": null },
                "usage": { "output_tokens": u.output } }),
        ),
        (Some("message_stop"), json!({ "type": "message_stop" })),
    ])
    .into()
}

fn responses(model: &str, id: u64, call: ToolCall, turn: &Turn) -> Reply {
    let u = turn.usage;
    let item = match call {
        ToolCall::Text(text) => json!({ "type": "message", "id": format!("msg_{id:04}"),
            "role": "assistant", "status": "completed",
            "content": [{ "type": "output_text", "text": text, "annotations": [] }] }),
        ToolCall::Refusal(text) => json!({ "type": "message", "id": format!("msg_{id:04}"),
            "role": "assistant", "status": "completed",
            "content": [{ "type": "refusal", "refusal": text }] }),
        ToolCall::Function { name, input } => json!({ "type": "function_call",
            "id": format!("fc_{id:04}"), "call_id": format!("call_{id:04}"), "name": name,
            "arguments": input.to_string(), "status": "completed" }),
        ToolCall::Custom { name, input } => json!({ "type": "custom_tool_call",
            "id": format!("ctc_{id:04}"), "call_id": format!("call_{id:04}"), "name": name,
            "input": input, "status": "completed" }),
    };
    let usage = json!({
        "input_tokens": u.prompt_total(),
        "input_tokens_details": { "cached_tokens": u.cache_read },
        "output_tokens": u.output,
        "output_tokens_details": { "reasoning_tokens": 0 },
        "total_tokens": u.prompt_total() + u.output,
    });
    let response = json!({ "id": format!("resp_{id:04}"), "object": "response",
        "created_at": 1_767_225_600, "status": "in_progress", "model": model, "output": [] });
    let mut done = response.clone();
    done["status"] = json!("completed");
    done["output"] = json!([item.clone()]);
    done["usage"] = usage;
    sse(&[
        (
            Some("response.created"),
            json!({ "type": "response.created", "sequence_number": 0, "response": response }),
        ),
        (
            Some("response.output_item.done"),
            json!({ "type": "response.output_item.done", "sequence_number": 1,
                "output_index": 0, "item": item }),
        ),
        (
            Some("response.completed"),
            json!({ "type": "response.completed", "sequence_number": 2, "response": done }),
        ),
    ])
    .into()
}

fn chat(body: &Value, model: &str, id: u64, call: ToolCall, turn: &Turn) -> Reply {
    let u = turn.usage;
    let usage = json!({
        "prompt_tokens": u.prompt_total(), "completion_tokens": u.output,
        "total_tokens": u.prompt_total() + u.output,
        "prompt_tokens_details": { "cached_tokens": u.cache_read },
    });
    let (message, finish) = match call {
        ToolCall::Text(text) | ToolCall::Refusal(text) => {
            (json!({ "role": "assistant", "content": text }), "stop")
        }
        ToolCall::Function { name, input } => (
            json!({ "role": "assistant", "content": null, "tool_calls": [{ "index": 0,
                "id": format!("call_{id:04}"), "type": "function",
                "function": { "name": name, "arguments": input.to_string() } }] }),
            "tool_calls",
        ),
        ToolCall::Custom { name, input } => (
            json!({ "role": "assistant", "content": null, "tool_calls": [{ "index": 0,
                "id": format!("call_{id:04}"), "type": "function",
                "function": { "name": name, "arguments": json!({ "input": input }).to_string() } }] }),
            "tool_calls",
        ),
    };
    let cid = format!("chatcmpl-{id:04}");
    if body["stream"] != true {
        let completion = json!({ "id": cid, "object": "chat.completion", "created": 1_767_225_600,
            "model": model, "choices": [{ "index": 0, "message": message, "finish_reason": finish }],
            "usage": usage });
        return json_response(StatusCode::OK, &completion).into();
    }
    let chunk = |choices: Value, usage: Value| {
        json!({ "id": cid, "object": "chat.completion.chunk", "created": 1_767_225_600,
            "model": model, "choices": choices, "usage": usage })
    };
    // Usage comes in a last chunk with no choices, as OpenAI sends it with
    // `stream_options.include_usage` (sent here whether asked for or not).
    let chunks = [
        chunk(
            json!([{ "index": 0, "delta": message, "finish_reason": null }]),
            Value::Null,
        ),
        chunk(
            json!([{ "index": 0, "delta": {}, "finish_reason": finish }]),
            Value::Null,
        ),
        chunk(json!([]), usage),
    ];
    let mut text = String::new();
    for data in chunks {
        text.push_str(&format!("data: {data}\n\n"));
    }
    text.push_str("data: [DONE]\n\n");
    plain(StatusCode::OK, "text/event-stream", &text).into()
}

fn gemini(stream: bool, model: &str, call: ToolCall, turn: &Turn) -> Reply {
    let u = turn.usage;
    let part = match call {
        ToolCall::Text(text) | ToolCall::Refusal(text) => json!({ "text": text }),
        ToolCall::Function { name, input } => {
            json!({ "functionCall": { "name": name, "args": input } })
        }
        ToolCall::Custom { name, input } => {
            json!({ "functionCall": { "name": name, "args": { "input": input } } })
        }
    };
    let chunk = json!({
        "candidates": [{ "content": { "role": "model", "parts": [part] }, "finishReason": "STOP", "index": 0 }],
        "usageMetadata": {
            "promptTokenCount": u.prompt_total(), "candidatesTokenCount": u.output,
            "cachedContentTokenCount": u.cache_read, "totalTokenCount": u.prompt_total() + u.output,
        },
        "modelVersion": model,
    });
    if stream {
        sse(&[(None, chunk)]).into()
    } else {
        json_response(StatusCode::OK, &chunk).into()
    }
}
