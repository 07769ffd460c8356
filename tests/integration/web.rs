//! `streams ui` and report.html, in a real browser: Debian's chromium, headless, driven by
//! playwright-core (tests/browser/drive.mjs, one scenario per test) against a real `streams ui`
//! serving a real run of scripted agents. The requests the server must refuse are plain HTTP
//! from here.
//!
//! The browser tests need node, `npm ci` in tests/tools and /usr/bin/chromium (`.ci/run`
//! installs them): without them they are skipped with the reason, and fail under CI. They keep
//! screenshots of the main views in `target/ui-screenshots/`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::common::{TestRepo, wait_for};
use crate::support::plans::plan;
use crate::support::runs::run_dir;

/// Where Debian installs chromium (`apt-get install chromium`).
const CHROMIUM: &str = "/usr/bin/chromium";

/// A `streams ui` serving a repository, stopped when dropped.
struct UiServer {
    child: Child,
    url: String,
    port: u16,
    token: String,
}

impl UiServer {
    fn start(repo: &TestRepo, env: &[(&str, &str)]) -> UiServer {
        UiServer::start_with(repo, &[], env)
    }

    /// `streams ui ARGS...`.
    fn start_with(repo: &TestRepo, args: &[&str], env: &[(&str, &str)]) -> UiServer {
        let mut cmd = repo.streams_cmd(&[&["ui"], args].concat());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = line.trim().to_string();
        assert!(
            url.starts_with("http://127.0.0.1:"),
            "`streams ui` printed {url:?}"
        );
        let rest = &url["http://127.0.0.1:".len()..];
        let port = rest[..rest.find('/').unwrap()].parse().unwrap();
        let token = url.split("token=").nth(1).unwrap().to_string();
        UiServer {
            child,
            url,
            port,
            token,
        }
    }
}

impl Drop for UiServer {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let _ = self.child.wait();
    }
}

/// One HTTP/1.1 request to the server, as raw as a hostile client would send it. Returns the
/// status code and the whole response.
fn http(port: u16, request: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, response)
}

fn get(port: u16, path: &str, headers: &[&str]) -> (u16, String) {
    let mut request =
        format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n");
    for h in headers {
        request.push_str(h);
        request.push_str("\r\n");
    }
    request.push_str("\r\n");
    http(port, &request)
}

/// The tools the browser tests need, or `None` (outside CI) when one is missing: the test
/// skips, saying why (`crate::ci::missing_tool`; under CI a failure).
fn browser() -> Option<PathBuf> {
    let tools = crate::ci::node_tools("playwright-core")?;
    if !Path::new(CHROMIUM).exists() {
        crate::ci::missing_tool(&format!(
            "{CHROMIUM} is not installed (apt-get install chromium)"
        ));
        return None;
    }
    Some(tools)
}

fn screenshots() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("target/ui-screenshots")
}

/// Runs one scenario of tests/browser/drive.mjs and returns what it found.
fn drive(repo: &TestRepo, scenario: &str, args: Value) -> Value {
    let mut args = args;
    args["chromium"] = json!(CHROMIUM);
    args["screenshots"] = json!(screenshots().join(scenario));
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/drive.mjs");
    let mut cmd = std::process::Command::new("node");
    cmd.arg(script).arg(scenario).arg(args.to_string());
    // git for the conflict's resolution, as in the repository's other commands.
    repo.hermetic(&mut cmd);
    let out = cmd.stdin(Stdio::null()).output().unwrap();
    assert!(
        out.status.success(),
        "the browser scenario `{scenario}` failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let found: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    // Every page ran without a script error (a refused request is a console error too).
    assert_eq!(found["errors"], json!([]), "{found:#}");
    found
}

fn app() -> TestRepo {
    TestRepo::with_files(&[
        ("README.md", "# app\n"),
        ("CHANGES.md", "line 1\n"),
        ("src/api/mod.rs", "// api\n"),
        ("src/db/mod.rs", "// db\n"),
        ("src/ui/index.html", "<p>ui</p>\n"),
    ])
}

/// The id of the repository's current run.
fn run_id(repo: &TestRepo) -> String {
    std::fs::read_to_string(repo.common_dir().join("streams/current"))
        .unwrap()
        .trim()
        .to_string()
}

#[test]
fn ui_refuses_requests_without_the_token_with_a_wrong_one_or_from_elsewhere() {
    let repo = app();
    plan(
        &repo,
        r#"
[plan]
name = "app"

[[stream]]
name = "db"
owns = ["src/db/**"]
agent = ["act", "write", "src/db/a.rs", "a"]
tasks = ["Add a"]
"#,
    );
    repo.streams(&["run"]).assert_code(0);
    let ui = UiServer::start(&repo, &[]);
    let port = ui.port;
    let token = &ui.token;
    // No token.
    let (status, body) = get(port, "/", &[]);
    assert_eq!(status, 401, "{body}");
    assert!(
        body.contains("open the address `streams ui` printed"),
        "{body}"
    );
    let (status, _) = get(port, "/api/run", &[]);
    assert_eq!(status, 401);
    // A wrong one, in each place a token is read.
    assert_eq!(get(port, "/?token=0123", &[]).0, 403);
    assert_eq!(get(port, "/api/run", &["X-Streams-Token: 0123"]).0, 403);
    assert_eq!(
        get(
            port,
            "/api/run",
            &[&format!("Cookie: streams_ui_{port}=0123")]
        )
        .0,
        403
    );
    // The right token from a foreign page (Origin), or through another name (DNS rebinding).
    let right = format!("X-Streams-Token: {token}");
    assert_eq!(
        get(port, "/api/run", &[&right, "Origin: http://evil.example"]).0,
        403
    );
    let (status, body) = http(
        port,
        &format!(
            "GET /api/run HTTP/1.1\r\nHost: evil.example:{port}\r\n{right}\r\nConnection: close\r\n\r\n"
        ),
    );
    assert_eq!(status, 403, "{body}");
    // A change needs the token in its header, not just the cookie a browser sends anywhere.
    let action = |headers: &str| {
        let body = r#"{"action":"merge"}"#;
        http(
            port,
            &format!(
                "POST /api/action HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{headers}Connection: close\r\n\r\n{body}",
                body.len()
            ),
        )
    };
    assert_eq!(
        action(&format!("Cookie: streams_ui_{port}={token}\r\n")).0,
        401
    );
    assert_eq!(
        action(&format!("{right}\r\nOrigin: http://evil.example\r\n")).0,
        403
    );
    // Nothing was merged by the refused requests.
    assert!(repo.git(&["log", "--format=%s", "main"]).lines().count() == 1);
    // The right token: the first load sets the cookie and drops the token from the address.
    let (status, response) = get(port, &format!("/?token={token}"), &[]);
    assert_eq!(status, 303, "{response}");
    assert!(
        response.contains(&format!(
            "set-cookie: streams_ui_{port}={token}; Path=/; HttpOnly; SameSite=Strict"
        )),
        "{response}"
    );
    let (status, page) = get(port, "/", &[&format!("Cookie: streams_ui_{port}={token}")]);
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains("content-security-policy: default-src 'self'"),
        "{page}"
    );
    let (status, doc) = get(port, "/api/run", &[&right]);
    assert_eq!(status, 200, "{doc}");
    assert!(doc.contains(r#""name":"db""#), "{doc}");
    // An action that does not apply is refused by the command itself, in its own words.
    let (status, outcome) = post_action(&ui, r#"{"action":"skip","stream":"db"}"#);
    assert_eq!(status, 200, "{outcome}");
    assert_eq!(outcome["command"], "streams skip db", "{outcome:#}");
    assert_eq!(outcome["running"], false, "{outcome:#}");
    assert_eq!(outcome["exit"], 5, "{outcome:#}");
    let cli = repo.streams(&["skip", "db"]);
    cli.assert_code(5);
    assert_eq!(
        output_of(&outcome),
        cli.stderr.trim_end(),
        "the page shows what the command says"
    );
    // A name that is not one of the run's streams never reaches the command (`--force`).
    let (status, refusal) = post_action(&ui, r#"{"action":"skip","stream":"--force"}"#);
    assert_eq!(status, 400, "{refusal}");
    assert!(
        refusal
            .to_string()
            .contains("the run has no stream `--force`"),
        "{refusal}"
    );
    // Only loopback: the port is not open on any other address of this machine.
    assert!(ui.url.starts_with(&format!("http://127.0.0.1:{port}/")));
}

/// Lets held agents go when dropped.
struct Release(PathBuf);

impl Drop for Release {
    fn drop(&mut self) {
        let _ = std::fs::write(&self.0, "go\n");
    }
}

/// `a` and `c` run at once until the test lets them go; `b` waits for `a`.
fn held_plan(repo: &TestRepo, release: &Path) -> String {
    let release = release.display().to_string();
    let text = format!(
        r#"
[plan]
name = "app"
jobs = 2

[[stream]]
name = "a"
owns = ["src/api/**"]
agent = ["act", "say", "a is waiting for the test", "wait-for", "{release}", "write", "src/api/a.rs", "fn a() {{}}", "say", "a wrote its file"]
tasks = ["Write a"]

[[stream]]
name = "b"
owns = ["src/db/**"]
depends_on = ["a"]
agent = ["act", "write", "src/db/b.rs", "fn b() {{}}"]
tasks = ["Write b"]

[[stream]]
name = "c"
owns = ["src/ui/**"]
agent = ["act", "wait-for", "{release}", "write", "src/ui/c.html", "<p>c</p>"]
tasks = ["Write c"]
"#
    );
    plan(repo, &text);
    text
}

#[test]
fn the_graph_shows_every_stream_and_follows_the_run_without_a_reload() {
    let Some(_) = browser() else {
        return;
    };
    let repo = app();
    let release = repo.home.join("release");
    held_plan(&repo, &release);
    // The page is open before the run starts: it picks the run up when it begins.
    let ui = UiServer::start(&repo, &[]);
    // Whatever happens, the agents are let go (a failing test must not leave them waiting).
    let _release = Release(release.clone());
    let mut run = spawn_run(&repo);
    let found = drive(
        &repo,
        "live",
        json!({
            "url": ui.url,
            "first": {"a": "running", "b": "pending", "c": "running"},
            "last": {"a": "integrated", "b": "integrated", "c": "integrated"},
            "select": "a",
            "log_text": "a is waiting for the test",
            "release": release,
            // A task and an integration per stream.
            "bars": 6,
            "outcome": "integrated",
        }),
    );
    assert_eq!(run.wait().unwrap().code(), Some(0));
    assert_eq!(
        found["first"],
        json!({"a": "running", "b": "pending", "c": "running"})
    );
    assert_eq!(
        found["last"],
        json!({"a": "integrated", "b": "integrated", "c": "integrated"})
    );
    // The same page all along: no reload.
    assert_eq!(found["mark"], "same page", "{found:#}");
    assert_eq!(found["navigations"], 1, "{found:#}");
    assert_eq!(found["badge"], "integrated", "{found:#}");
    // The timeline has a bar per task and integration.
    assert_eq!(found["bars"], 6, "{found:#}");
}

#[test]
fn report_html_shows_the_graph_with_scripts_disabled() {
    let repo = app();
    plan(
        &repo,
        r#"
[plan]
name = "app"
jobs = 1

[[stream]]
name = "db"
owns = ["src/db/**"]
agent = ["act", "write", "src/db/schema.sql", "create table t;"]
tasks = ["Add the schema"]

[[stream]]
name = "api"
owns = ["src/api/**"]
depends_on = ["db"]
agent = ["act", "write", "README.md", "not mine", "say", "wrote the README"]
tasks = ["Add /login"]

[[stream]]
name = "ui"
owns = ["src/ui/**"]
depends_on = ["api"]
agent = ["act", "write", "src/ui/x.html", "x"]
tasks = ["Link it"]
"#,
    );
    repo.streams(&["run"]).assert_code(4);
    let report = run_dir(&repo).join("report.html");
    let html = std::fs::read_to_string(&report).unwrap();
    // One file: nothing loaded from anywhere, and its policy forbids any load.
    for reference in ["src=\"", "href=\"http", "<link", "url(http"] {
        assert!(
            !html.contains(reference),
            "report.html refers out: {reference}"
        );
    }
    assert!(html.contains("content=\"default-src 'none';"));
    assert!(html.contains("create table t;"), "the diff is in it");
    assert!(
        html.contains("refs/streams/app/rejected/api/1"),
        "the kept work is in it"
    );
    let Some(_) = browser() else {
        return;
    };
    let found = drive(&repo, "report", json!({ "file": report }));
    assert_eq!(
        found["states"],
        json!({"db": "integrated", "api": "failed", "ui": "skipped"}),
        "{found:#}"
    );
    // Scripts were off (the highlighter never ran), and the pictures showed anyway.
    assert_eq!(found["scripts"], "undefined");
    assert_eq!(found["visible"], true);
    assert!(found["timeline"].as_u64().unwrap() >= 3, "{found:#}");
}

#[test]
fn a_secret_in_an_agents_output_is_redacted() {
    const PLAN_SECRET: &str = "sk-test-plan-0123456789";
    const ENV_SECRET: &str = "ghp_process0123456789";
    let repo = app();
    plan(
        &repo,
        &format!(
            r#"
[plan]
name = "app"
env = {{ OPENAI_API_KEY = "{PLAN_SECRET}" }}

[[stream]]
name = "db"
owns = ["src/db/**"]
agent = ["act", "sh", "echo \"using key $OPENAI_API_KEY and token $GH_TOKEN\"", "write", "src/db/a.rs", "a", "say", "finished the schema"]
tasks = ["Add a"]
"#
        ),
    );
    let out = repo
        .streams_cmd(&["run"])
        .env("GH_TOKEN", ENV_SECRET)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    // The agent did print them (the raw log is the agent's own output, kept as it is).
    let log = std::fs::read_to_string(run_dir(&repo).join("logs/db/1.log")).unwrap();
    assert!(
        log.contains(PLAN_SECRET) && log.contains(ENV_SECRET),
        "{log}"
    );
    // report.html, written by the run (whose environment the agent had), shows neither.
    let html = std::fs::read_to_string(run_dir(&repo).join("report.html")).unwrap();
    assert!(!html.contains(PLAN_SECRET) && !html.contains(ENV_SECRET));
    assert!(
        html.contains("[redacted OPENAI_API_KEY]"),
        "report.html lost the line"
    );
    assert!(
        html.contains("[redacted GH_TOKEN]"),
        "report.html lost the line"
    );
    let Some(_) = browser() else {
        return;
    };
    let ui = UiServer::start(&repo, &[("GH_TOKEN", ENV_SECRET)]);
    let found = drive(
        &repo,
        "secret",
        json!({ "url": ui.url, "select": "db", "log_text": "finished the schema" }),
    );
    let shown = found["log"].as_str().unwrap();
    assert!(
        shown.contains("using key [redacted OPENAI_API_KEY] and token [redacted GH_TOKEN]"),
        "{shown}"
    );
    let body = found["body"].as_str().unwrap();
    assert!(
        !body.contains(PLAN_SECRET) && !body.contains(ENV_SECRET),
        "{body}"
    );
}

/// Plan `app` with `jobs` agents whose stream `b` parks on a conflict: `a` and `b` both write
/// the shared CHANGES.md, `b` once `a`'s work is integrated (and, with `hold_b`, once that file
/// exists); `c` waits for `release` (and, with `c_after_b`, for `b`).
fn conflict_plan(
    repo: &TestRepo,
    jobs: usize,
    hold_b: Option<&Path>,
    c_after_b: bool,
    release: &Path,
) {
    let hold_b = hold_b
        .map(|held| format!(r#""wait-for", "{}", "#, held.display()))
        .unwrap_or_default();
    let c_after_b = if c_after_b {
        "depends_on = [\"b\"]\n"
    } else {
        ""
    };
    plan(
        repo,
        &format!(
            r#"
[plan]
name = "app"
jobs = {jobs}
shared = ["CHANGES.md"]

[[stream]]
name = "a"
owns = ["src/api/**"]
agent = ["act", "write", "src/api/a.rs", "a", "write", "CHANGES.md", "from a"]
tasks = ["Task of a"]

[[stream]]
name = "b"
owns = ["src/db/**"]
agent = ["act", {hold_b}"wait-rev", "streams/app/integration:src/api/a.rs", "write", "src/db/b.rs", "b", "write", "CHANGES.md", "from b"]
tasks = ["Task of b"]

[[stream]]
name = "c"
owns = ["src/ui/**"]
{c_after_b}agent = ["act", "wait-for", "{release}", "write", "src/ui/c.html", "<p>c</p>"]
tasks = ["Task of c"]
"#,
            release = release.display(),
        ),
    );
}

#[test]
fn a_halted_run_shows_its_conflict_and_continue_from_the_page_ends_it() {
    let Some(_) = browser() else {
        return;
    };
    let repo = app();
    // `c` waits for `b`, then holds the continued run running until the page asked for the
    // whole run on the `running` event (as it did when CI lost the notification).
    let release = repo.home.join("release");
    let _release = Release(release.clone());
    conflict_plan(&repo, 2, None, true, &release);
    repo.streams(&["run"]).assert_code(3);
    // report.html of the halted run shows the conflict too.
    let html = std::fs::read_to_string(run_dir(&repo).join("report.html")).unwrap();
    assert!(
        html.contains("The run waits on a conflict in stream <strong>b</strong>"),
        "report.html lacks the conflict"
    );
    let ui = UiServer::start(&repo, &[]);
    let found = drive(
        &repo,
        "conflict",
        json!({
            "url": ui.url,
            "file": "CHANGES.md",
            "resolution": "from a and b\n",
            "outcome": "integrated",
            "release": release,
        }),
    );
    // The conflict as a person needs it: where to resolve, both sides, the bundle's README.
    assert_eq!(
        found["worktree"].as_str().map(PathBuf::from),
        Some(repo.workspaces("app").join(".resolve-b")),
        "{found:#}"
    );
    assert!(
        found["readme"]
            .as_str()
            .unwrap()
            .contains("streams continue"),
        "{found:#}"
    );
    assert_eq!(found["sides"], 2, "{found:#}");
    // Continue before the resolution: refused with the CLI's own words.
    let refused = found["refused"].as_str().unwrap();
    assert!(refused.contains("not resolved yet"), "{refused}");
    // Then accepted: the run ended as `streams continue` ends it.
    assert_eq!(
        found["states"],
        json!({"a": "integrated", "b": "integrated", "c": "integrated"}),
        "{found:#}"
    );
    assert_eq!(found["conflictHidden"], true, "{found:#}");
    assert_eq!(found["actionResult"], "done", "{found:#}");
    assert_eq!(found["badge"], "integrated", "{found:#}");
    // The person was told the run ended (a browser notification).
    assert_eq!(
        found["notes"],
        json!(["streams: the run ended: integrated | run ".to_string() + &run_id(&repo)]),
        "{found:#}"
    );
    let status: Value = serde_json::from_str(&repo.streams(&["status", "--json"]).stdout).unwrap();
    assert_eq!(status["run"]["phase"], "finished", "{status:#}");
    assert_eq!(status["run"]["outcome"], "integrated", "{status:#}");
    assert_eq!(
        repo.git(&["show", "streams/app/integration:CHANGES.md"]),
        "from a and b"
    );
    assert!(run_dir(&repo).join("report.html").exists());
    wait_for(
        "the continued run to release its lock",
        Duration::from_secs(30),
        || {
            let status: Value =
                serde_json::from_str(&repo.streams(&["status", "--json"]).stdout).unwrap();
            status["run"]["holder"].is_null().then_some(())
        },
    );
}

#[test]
fn a_stream_that_parks_while_another_runs_is_shown_and_told_at_once() {
    let Some(_) = browser() else {
        return;
    };
    let repo = app();
    // b is held until the page is open (so the page sees it park), c until b has parked.
    let release_b = repo.home.join("release-b");
    let release = repo.home.join("release");
    conflict_plan(&repo, 3, Some(&release_b), false, &release);
    let ui = UiServer::start(&repo, &[]);
    let _release = (Release(release_b.clone()), Release(release.clone()));
    let mut run = spawn_run(&repo);
    let found = drive(
        &repo,
        "parked",
        json!({
            "url": ui.url,
            "first": {"a": "integrated", "b": "running", "c": "running"},
            "release_b": release_b,
            "while": {"a": "integrated", "b": "parked", "c": "running"},
            "last": {"a": "integrated", "b": "parked", "c": "integrated"},
            "release": release,
        }),
    );
    assert_eq!(run.wait().unwrap().code(), Some(3));
    // While c still runs: b's conflict is on the page, the run still running, and the person
    // was told the moment b parked.
    assert_eq!(
        found["whileStates"],
        json!({"a": "integrated", "b": "parked", "c": "running"}),
        "{found:#}"
    );
    assert_eq!(found["badgeWhile"], "running", "{found:#}");
    assert_eq!(found["cards"], json!(["b"]), "{found:#}");
    let banner = found["banner"].as_str().unwrap();
    assert!(
        banner.contains("Stream b is parked on a conflict; the rest of the run goes on"),
        "{banner}"
    );
    assert_eq!(
        found["notesWhile"],
        json!([
            "streams: b is parked on a conflict | Resolve it while the rest of the run goes on."
        ]),
        "{found:#}"
    );
    // Then c integrates, nothing else can move, and the run halts (told once more).
    assert_eq!(
        found["last"],
        json!({"a": "integrated", "b": "parked", "c": "integrated"}),
        "{found:#}"
    );
    assert_eq!(
        found["notes"][1], "streams: the run is halted | A conflict in b waits for you.",
        "{found:#}"
    );
}

#[test]
fn markup_in_a_file_name_or_a_log_shows_as_text() {
    let Some(_) = browser() else {
        return;
    };
    const NAME: &str = "src/db/<img src=x onerror=window.__pwned=1>.txt";
    const SAID: &str = "<script>window.__pwned=2</script> done";
    let repo = app();
    plan(
        &repo,
        &format!(
            r#"
[plan]
name = "app"

[[stream]]
name = "db"
owns = ["src/db/**"]
agent = ["act", "write", "{NAME}", "<b>bold?</b>", "write", "src/db/mod.rs", "// db, <i>changed</i>", "say", "{}"]
tasks = ["Add a file"]
"#,
            SAID.replace('"', "\\\"")
        ),
    );
    repo.streams(&["run"]).assert_code(0);
    let ui = UiServer::start(&repo, &[]);
    let found = drive(
        &repo,
        "escape",
        json!({ "url": ui.url, "select": "db", "log_text": "done" }),
    );
    assert_eq!(found["paths"], json!([NAME, "src/db/mod.rs"]), "{found:#}");
    assert!(found["log"].as_str().unwrap().contains(SAID), "{found:#}");
    assert_eq!(found["pwned"], Value::Null, "{found:#}");
    assert_eq!(found["injected"], 0, "{found:#}");
    // Side by side, the same: the changed line faces its old version, as text.
    assert_eq!(
        found["facing"],
        json!([["// db", "// db, <i>changed</i>"]]),
        "{found:#}"
    );
    assert_eq!(found["splitPaths"], found["paths"], "{found:#}");
    assert_eq!(found["injectedSplit"], 0, "{found:#}");
}

#[test]
fn ui_refuses_an_unknown_run_and_a_taken_port() {
    let repo = app();
    let out = repo.streams(&["ui", "--run", "nope"]);
    out.assert_code(2);
    assert!(
        out.stderr.contains("no run `nope` in this repository"),
        "{out}"
    );
    let taken = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let out = repo.streams(&["ui", "--port", &port]);
    out.assert_code(2);
    assert!(
        out.stderr
            .contains(&format!("port {port} on 127.0.0.1 is taken")),
        "{out}"
    );
    assert_eq!(
        out.stdout, "",
        "no address is printed for a server that never ran"
    );
}

#[test]
fn ui_plan_shows_that_plans_last_run_though_another_ran_after_it() {
    let repo = app();
    for (name, dir) in [("one", "api"), ("two", "db")] {
        repo.write(
            &format!("{name}.toml"),
            &format!(
                "[plan]\nname = \"{name}\"\n\n[[stream]]\nname = \"{dir}\"\nowns = [\"src/{dir}/**\"]\n\
                 agent = [\"act\", \"write\", \"src/{dir}/a.rs\", \"a\"]\ntasks = [\"Add a\"]\n"
            ),
        );
    }
    repo.commit_all("two plans");
    repo.streams(&["run", "one.toml"]).assert_code(0);
    let one = run_id(&repo);
    repo.streams(&["run", "two.toml"]).assert_code(0);
    let two = run_id(&repo);
    let page = |ui: &UiServer| {
        let (status, body) = get(
            ui.port,
            "/api/run",
            &[&format!("X-Streams-Token: {}", ui.token)],
        );
        assert_eq!(status, 200, "{body}");
        body
    };
    let ui = UiServer::start_with(&repo, &["--plan", "one"], &[]);
    let body = page(&ui);
    assert!(body.contains(&one) && !body.contains(&two), "{body}");
    drop(ui);
    // By its file too; and without `--plan`, the current run (two's).
    let ui = UiServer::start_with(&repo, &["--plan", "one.toml"], &[]);
    assert!(page(&ui).contains(&one));
    drop(ui);
    let ui = UiServer::start(&repo, &[]);
    assert!(page(&ui).contains(&two));
    drop(ui);
    // A plan with no run is refused as other commands refuse it, naming those that ran.
    let out = repo.streams(&["ui", "--plan", "nope"]);
    out.assert_code(5);
    assert!(
        out.stderr
            .contains("plan `nope` has no run in this repository"),
        "{out}"
    );
    assert!(out.stderr.contains("`one`, `two`"), "{out}");
}

#[test]
fn ui_stops_on_sigterm_while_a_page_follows_it() {
    let repo = app();
    let mut ui = UiServer::start(&repo, &[]);
    // A page's event stream, open.
    let mut events = TcpStream::connect(("127.0.0.1", ui.port)).unwrap();
    events
        .write_all(
            format!(
                "GET /events HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nX-Streams-Token: {}\r\n\r\n",
                ui.port, ui.token
            )
            .as_bytes(),
        )
        .unwrap();
    let mut head = [0u8; 12];
    events.read_exact(&mut head).unwrap();
    assert_eq!(&head, b"HTTP/1.1 200");
    let pid = nix::unistd::Pid::from_raw(ui.child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let status = wait_for("streams ui to stop", Duration::from_secs(30), || {
        ui.child.try_wait().unwrap()
    });
    assert_eq!(status.code(), Some(0));
}

/// Asks the server for an action as the page does; returns the status and the outcome (or the
/// refusal's body).
fn post_action(ui: &UiServer, body: &str) -> (u16, Value) {
    let port = ui.port;
    let (status, response) = http(
        port,
        &format!(
            "POST /api/action HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nOrigin: http://127.0.0.1:{port}\r\nX-Streams-Token: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            ui.token,
            body.len()
        ),
    );
    let text = response.split("\r\n\r\n").nth(1).unwrap_or_default();
    let value = serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_string()));
    (status, value)
}

/// The lines an outcome shows, as one text.
fn output_of(outcome: &Value) -> String {
    outcome["output"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect::<Vec<_>>()
        .join("\n")
}

/// `a` runs until the test lets it go (it says when its agent started); `b` ends at once.
fn stop_plan(repo: &TestRepo, started: &Path, release: &Path) {
    plan(
        repo,
        &format!(
            r#"
[plan]
name = "app"
jobs = 2
grace = "2s"

[[stream]]
name = "a"
owns = ["src/api/**"]
agent = ["act", "write", "src/api/partial.rs", "// half", "env", "{}", "wait-for", "{}", "write", "src/api/a.rs", "fn a() {{}}"]
tasks = ["Write a"]

[[stream]]
name = "b"
owns = ["src/db/**"]
agent = ["act", "write", "src/db/b.rs", "fn b() {{}}"]
tasks = ["Write b"]
"#,
            started.display(),
            release.display()
        ),
    );
}

/// `streams run` in the background, its output discarded (the page is what the test reads).
fn spawn_run(repo: &TestRepo) -> Child {
    repo.streams_cmd(&["run"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// `stop_plan` run in the background and `streams ui` serving it, returned once `a`'s agent has
/// started; `a` is let go when the returned `Release` is dropped.
fn stop_plan_running(repo: &TestRepo) -> (UiServer, Child, Release) {
    let started = repo.home.join("a.started");
    let release = repo.home.join("release");
    stop_plan(repo, &started, &release);
    let release = Release(release);
    let ui = UiServer::start(repo, &[]);
    let run = spawn_run(repo);
    wait_for("a's agent", Duration::from_secs(30), || {
        started.exists().then_some(())
    });
    (ui, run, release)
}

#[test]
fn stop_from_the_page_stops_one_running_stream_and_is_refused_once_it_is_stopped() {
    let repo = app();
    let (ui, run, _release) = stop_plan_running(&repo);
    // A stop needs its stream, one of the run's.
    let (status, refusal) = post_action(&ui, r#"{"action":"stop"}"#);
    assert_eq!(status, 400, "{refusal}");
    assert!(
        refusal
            .to_string()
            .contains("`streams stop` needs a stream"),
        "{refusal}"
    );
    let (status, outcome) = post_action(&ui, r#"{"action":"stop","stream":"a"}"#);
    assert_eq!(status, 200, "{outcome}");
    assert_eq!(outcome["command"], "streams stop a", "{outcome:#}");
    assert_eq!(outcome["running"], false, "{outcome:#}");
    assert_eq!(outcome["exit"], 0, "{outcome:#}");
    let said = output_of(&outcome);
    assert!(said.contains("stopped a; the rest of run"), "{said}");
    assert!(said.contains("`streams retry a` continues it"), "{said}");
    // The rest of the run went on without a.
    let out = run.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(6));
    let status = repo.streams(&["status", "--json"]);
    status.assert_code(0);
    let status: Value = serde_json::from_str(&status.stdout).unwrap();
    assert_eq!(
        status["run"]["streams"][0]["state"], "stopped",
        "{status:#}"
    );
    assert_eq!(
        status["run"]["streams"][1]["state"], "integrated",
        "{status:#}"
    );
    // Stopping it again is refused by the command, in its own words.
    let (status, outcome) = post_action(&ui, r#"{"action":"stop","stream":"a"}"#);
    assert_eq!(status, 200, "{outcome}");
    let cli = repo.streams(&["stop", "a"]);
    cli.assert_code(2);
    assert_eq!(outcome["exit"], 2, "{outcome:#}");
    assert_eq!(output_of(&outcome), cli.stderr.trim_end());
    assert!(
        output_of(&outcome).contains("there is nothing to stop"),
        "{outcome:#}"
    );
}

#[test]
fn the_stop_button_stops_a_running_stream_and_the_page_shows_it_stopped() {
    let Some(_) = browser() else {
        return;
    };
    let repo = app();
    let (ui, run, _release) = stop_plan_running(&repo);
    let found = drive(&repo, "stop", json!({"url": ui.url, "stream": "a"}));
    assert_eq!(found["confirm"], "streams stop a", "{found:#}");
    assert_eq!(found["actionResult"], "done", "{found:#}");
    assert!(
        found["output"]
            .as_str()
            .unwrap()
            .contains("`streams retry a` continues it"),
        "{found:#}"
    );
    assert_eq!(found["mark"], "same page", "{found:#}");
    assert_eq!(run.wait_with_output().unwrap().status.code(), Some(6));
    let status: Value = serde_json::from_str(&repo.streams(&["status", "--json"]).stdout).unwrap();
    assert_eq!(
        status["run"]["streams"][0]["state"], "stopped",
        "{status:#}"
    );
}

#[test]
fn the_page_shows_a_resolvers_proposal_with_its_diff() {
    let (repo, _) = crate::resolve::resolver_repo(crate::resolve::RESOLVE, "propose", "");
    repo.streams(&["run"]).assert_code(3);
    let ui = UiServer::start(&repo, &[]);
    let (status, response) = get(
        ui.port,
        "/api/run",
        &[&format!("X-Streams-Token: {}", ui.token)],
    );
    assert_eq!(status, 200, "{response}");
    let json: Value = serde_json::from_str(response.split("\r\n\r\n").nth(1).unwrap())
        .unwrap_or_else(|e| panic!("{e}: {response}"));
    let conflict = &json["conflicts"][0];
    assert_eq!(conflict["stream"], "b", "{json}");
    let proposal = &conflict["proposal"];
    assert_eq!(proposal["resolver"], "resolver", "{proposal}");
    assert_eq!(proposal["refused"], Value::Null, "{proposal}");
    let added: Vec<&str> = proposal["diff"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["kind"] == "add")
        .map(|l| l["text"].as_str().unwrap())
        .collect();
    assert_eq!(added, ["B6"], "{proposal}");
}
