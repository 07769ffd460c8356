//! The agent presets, driven through the real `streams` with scripted stand-ins for the CLIs:
//! `fixtures/agents/replay`, installed under each CLI's name, prints what the real CLI printed
//! in a recorded scenario (`fixtures/agents/recorded/`) and makes the edit the recording made.
//! So each preset's invocation, its parser and the outcome rules are checked in a second, on
//! every machine; `agents::` runs the real CLIs.

use std::path::{Path, PathBuf};

use crate::common::{TestRepo, agents_dir};

/// A repository with three streams' directories, the replaying stand-ins first on PATH.
struct Replayed {
    repo: TestRepo,
    bin: PathBuf,
}

impl Replayed {
    fn new() -> Replayed {
        let repo = TestRepo::with_files(&[
            ("README.md", "A scratch repository.\n"),
            ("src/a/keep.txt", "a\n"),
            ("src/b/keep.txt", "b\n"),
            ("src/c/keep.txt", "c\n"),
        ]);
        let bin = repo.home.join("replay-bin");
        std::fs::create_dir_all(&bin).unwrap();
        for cli in ["claude", "codex", "aider", "gemini", "qwen"] {
            std::os::unix::fs::symlink(agents_dir().join("replay"), bin.join(cli)).unwrap();
        }
        Replayed { repo, bin }
    }

    /// The PATH the agents get: the stand-ins first.
    fn path(&self) -> String {
        let path = std::env::var("PATH").unwrap_or_default();
        format!("{}:{}:{path}", self.bin.display(), agents_dir().display())
    }

    /// Writes a plan whose streams `a`, `b`, `c` (as many as `streams` names) run `agent` with
    /// these scenarios; `extra` goes in `[plan]`, `env` in each stream's environment.
    fn plan(&self, agent: &str, streams: &[(&str, &str)], extra: &str, env: &[(&str, &Path)]) {
        let mut text = format!(
            "[plan]\nname = \"p\"\njobs = 3\nagent = {agent}\n{extra}\nenv = {{ PATH = {:?} }}\n",
            self.path()
        );
        for (name, scenario) in streams {
            let mut vars = vec![
                format!("REPLAY = \"{scenario}\""),
                format!("REPLAY_EDIT = \"src/{name}/hello.txt\""),
            ];
            vars.extend(
                env.iter()
                    .map(|(k, v)| format!("{k} = {:?}", v.display().to_string())),
            );
            text.push_str(&format!(
                "\n[[stream]]\nname = \"{name}\"\nowns = [\"src/{name}/**\"]\ntasks = [\"Write src/{name}/hello.txt\"]\nenv = {{ {} }}\n",
                vars.join(", ")
            ));
        }
        self.repo.write("streams.toml", &text);
        self.repo.commit_all("plan");
    }

    /// The arguments each run of a stand-in got (`REPLAY_ARGS`), one list per run.
    fn args(&self, file: &Path) -> Vec<Vec<String>> {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        let mut runs = vec![Vec::new()];
        for arg in text.split('\0').filter(|a| !a.is_empty()) {
            if arg == "--" {
                runs.push(Vec::new());
            } else {
                runs.last_mut().unwrap().push(arg.to_string());
            }
        }
        runs.pop();
        runs
    }

    fn state(&self) -> serde_json::Value {
        let root = self.repo.common_dir().join("streams");
        let id = std::fs::read_to_string(root.join("current")).unwrap();
        let text =
            std::fs::read_to_string(root.join("runs").join(id.trim()).join("state.json")).unwrap();
        serde_json::from_str(&text).unwrap()
    }

    fn task(&self, stream: &str) -> serde_json::Value {
        let state = self.state();
        let record = state["streams"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == stream)
            .unwrap_or_else(|| panic!("no stream {stream}"))
            .clone();
        record["tasks"][0].clone()
    }

    fn file(&self, name: &str) -> PathBuf {
        self.repo.home.join(name)
    }
}

/// Usage as the state keeps it: input (uncached), output, cache read, cache write.
fn tokens(task: &serde_json::Value, attempt: usize) -> (u64, u64, u64, u64) {
    let u = &task["usage"][attempt]["usage"];
    let n = |k: &str| u[k].as_u64().unwrap_or(0);
    (n("input"), n("output"), n("cache_read"), n("cache_write"))
}

#[test]
fn each_preset_commits_its_work_and_its_usage_is_kept_per_attempt() {
    // The recorded figures (README of fixtures/agents/recorded), in the neutral form: Codex,
    // Gemini and Qwen count cached tokens in their input figure; aider rounds (1.3k sent).
    let cases = [
        ("\"claude\"", (3500, 90, 300, 40)),
        ("\"codex\"", (3540, 90, 300, 0)),
        ("\"gemini\"", (3540, 90, 300, 0)),
        ("\"qwen\"", (3540, 90, 300, 0)),
        ("\"aider\"", (1300, 50, 0, 0)),
    ];
    for (agent, expected) in cases {
        let r = Replayed::new();
        r.plan(agent, &[("a", "edit-and-commit")], "", &[]);
        let out = r.repo.streams(&["run"]);
        out.assert_code(0);
        let cli = agent.trim_matches('"');
        assert_eq!(
            r.repo
                .git(&["show", "streams/p/integration:src/a/hello.txt"]),
            format!("hello from {cli}"),
            "{out}"
        );
        let task = r.task("a");
        assert_eq!(task["usage"].as_array().unwrap().len(), 1, "{task}");
        assert_eq!(task["usage"][0]["cli"], cli);
        assert_eq!(tokens(&task, 0), expected, "{cli}: {task}");
        assert!(task["usage"][0]["session"].is_string(), "{cli}: {task}");
    }
}

#[test]
fn a_preset_is_started_with_its_one_shot_invocation_and_its_own_home() {
    let r = Replayed::new();
    let args = r.file("args");
    r.plan(
        r#"{ preset = "claude", model = "claude-sonnet-4-5", args = ["--max-turns", "9"] }"#,
        &[("a", "edit-and-commit")],
        "",
        &[("REPLAY_ARGS", &args)],
    );
    // The user's own setup, which the task's home is seeded from.
    std::fs::create_dir_all(r.repo.home.join(".claude/commands")).unwrap();
    std::fs::write(r.repo.home.join(".claude/settings.json"), "{}").unwrap();
    std::fs::write(r.repo.home.join(".claude/commands/x.md"), "x").unwrap();
    std::fs::write(r.repo.home.join(".claude.json"), "{\"mcpServers\":{}}").unwrap();
    r.repo.streams(&["run"]).assert_code(0);
    let runs = r.args(&args);
    let argv = &runs[0];
    assert_eq!(argv[0], "-p");
    assert!(argv[1].starts_with("Write src/a/hello.txt"), "{argv:?}");
    assert_eq!(
        argv[2..],
        [
            "--output-format",
            "stream-json",
            "--verbose",
            "--dangerously-skip-permissions",
            "--model",
            "claude-sonnet-4-5",
            "--max-turns",
            "9",
        ]
    );
    let runs = r.repo.common_dir().join("streams/runs");
    let run = std::fs::read_dir(&runs)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let config = run.join("homes/a/1/.claude");
    assert!(config.join("commands/x.md").is_file());
    assert!(config.join(".claude.json").is_file());
}

#[test]
fn a_dry_run_shows_what_each_preset_sets_in_its_environment_and_not_the_plans_own() {
    // The names of the variables of a preset's `env` table are shown, their values not: they
    // were hidden with them, and a person checking which key reaches the CLI could not tell.
    let r = Replayed::new();
    let plan = r#"
[plan]
name = "p"
env = { PLAN_TOKEN = "plan-secret", PATH = "<path>" }

[[stream]]
name = "a"
owns = ["src/a/**"]
agent = { preset = "claude", env = { ANTHROPIC_API_KEY = "sk-ant-secret", DISABLE_AUTOUPDATER = "0" } }
tasks = ["Write src/a/hello.txt"]

[[stream]]
name = "b"
owns = ["src/b/**"]
agent = "codex"
tasks = ["Write src/b/hello.txt"]

[[stream]]
name = "c"
owns = ["src/c/**"]
agent = ["sh", "-c", "echo hi"]
tasks = ["Write src/c/hello.txt"]
"#;
    r.repo
        .write("streams.toml", &plan.replace("<path>", &r.path()));
    r.repo.commit_all("plan");
    let out = r.repo.streams(&["run", "--dry-run"]);
    out.assert_code(0);
    let stdout = out.stdout_redacted();
    for secret in ["secret", "PLAN_TOKEN"] {
        assert!(!stdout.contains(secret), "{stdout}");
    }
    // Claude Code is told it runs in a sandbox only where streams runs as root.
    let root = std::os::unix::fs::MetadataExt::uid(&std::fs::metadata("/proc/self").unwrap()) == 0;
    assert_eq!(stdout.contains(" IS_SANDBOX=1"), root, "{stdout}");
    let shown: String = stdout
        .lines()
        .filter(|l| l.starts_with("stream ") || l.starts_with("    env"))
        .map(|l| format!("{}\n", l.replace(" IS_SANDBOX=1", "")))
        .collect();
    // The preset's variable the plan overrides (DISABLE_AUTOUPDATER) is the plan's: its value
    // is hidden.
    insta::assert_snapshot!(shown, @r"
    stream a
        env:  CLAUDE_CONFIG_DIR='[REPO]/.git/streams/runs/<run-id>/homes/a/1/.claude' CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1
        env (values hidden): ANTHROPIC_API_KEY, DISABLE_AUTOUPDATER
    stream b
        env:  CODEX_HOME='[REPO]/.git/streams/runs/<run-id>/homes/b/1/.codex' TZ=UTC
    stream c
    ");
}

#[test]
fn a_refusal_fails_the_task_with_the_refusal_quoted() {
    let r = Replayed::new();
    r.plan("\"claude\"", &[("a", "refusal")], "", &[]);
    let out = r.repo.streams(&["run"]);
    out.assert_code(4);
    // The model's own words first, then Claude Code's fixed text.
    assert!(
        out.stderr.contains(
            "refused: the model said \"I can't help with that request.\" (API Error: Claude Code is unable to respond to this request"
        ),
        "{out}"
    );
    let task = r.task("a");
    assert_eq!(task["state"]["state"], "failed", "{task}");
}

#[test]
fn an_agent_that_changed_nothing_fails_saying_what_its_events_say() {
    let r = Replayed::new();
    r.plan("\"gemini\"", &[("a", "refusal")], "", &[]);
    let out = r.repo.streams(&["run"]);
    out.assert_code(4);
    assert!(
        out.stderr
            .contains("no changes: its last message: I can't help with that request."),
        "{out}"
    );
    // Codex drops a refusal: nothing to quote but that.
    let r = Replayed::new();
    r.plan("\"codex\"", &[("a", "refusal")], "", &[]);
    let out = r.repo.streams(&["run"]);
    out.assert_code(4);
    assert!(
        out.stderr.contains("no changes: its model gave no answer"),
        "{out}"
    );
    let report = std::fs::read_to_string(
        r.repo
            .common_dir()
            .join("streams/runs")
            .join(
                std::fs::read_to_string(r.repo.common_dir().join("streams/current"))
                    .unwrap()
                    .trim(),
            )
            .join("report.md"),
    )
    .unwrap();
    assert!(
        report.contains("no changes: its model gave no answer"),
        "{report}"
    );
}

#[test]
fn an_argv_agent_that_changed_nothing_fails_too_unless_its_task_allows_it() {
    let repo = TestRepo::with_files(&[("README.md", "r\n"), ("a/x", "x\n"), ("b/x", "x\n")]);
    repo.write(
        "streams.toml",
        r#"[plan]
name = "p"
agent = ["act", "say", "nothing to do here"]

[[stream]]
name = "a"
owns = ["a/**"]
tasks = ["Look at a"]

[[stream]]
name = "b"
owns = ["b/**"]
allow_empty = true
tasks = ["Review b"]
"#,
    );
    repo.commit_all("plan");
    let out = repo.streams(&["run"]);
    out.assert_code(4);
    assert!(
        out.stderr
            .contains("no changes: its output ends with: nothing to do here"),
        "{out}"
    );
    let status = repo.streams(&["status", "--json"]);
    let status: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    let states: Vec<&str> = status["run"]["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["failed", "integrated"]);
}

#[test]
fn allow_empty_does_not_excuse_a_refusal_or_an_error() {
    let r = Replayed::new();
    r.plan(
        "\"qwen\"",
        &[("a", "refusal"), ("b", "error")],
        "allow_empty = true",
        &[],
    );
    let out = r.repo.streams(&["run"]);
    out.assert_code(4);
    // Qwen's refusal is plain text: nothing in its events says it refused; an error is an error
    // even when Qwen calls its run a success.
    assert_eq!(r.task("a")["state"]["state"], "integrated", "{out}");
    assert_eq!(r.task("b")["state"]["state"], "failed", "{out}");
    assert!(
        out.stderr
            .contains("agent reported: [API Error: 400 scripted invalid request]"),
        "{out}"
    );
}

#[test]
fn a_run_that_ends_without_its_final_event_failed_whatever_its_exit_code() {
    let r = Replayed::new();
    r.plan("\"gemini\"", &[("a", "sigint-waiting")], "", &[]);
    let out = r.repo.streams(&["run"]);
    out.assert_code(4);
    assert!(
        out.stderr
            .contains("agent reported: it ended without its final report"),
        "{out}"
    );
}

#[test]
fn a_denied_commit_is_noted_and_the_work_committed_by_streams() {
    let r = Replayed::new();
    r.plan("\"claude\"", &[("a", "permission-denied")], "", &[]);
    let out = r.repo.streams(&["run"]);
    out.assert_code(0);
    assert!(
        out.stderr.contains(
            "its agent was refused on the way (permission denied: Bash git add -A && git commit"
        ),
        "{out}"
    );
    assert_eq!(
        r.repo
            .git(&["show", "streams/p/integration:src/a/hello.txt"]),
        "hello from claude"
    );
}

#[test]
fn a_usage_limit_past_limit_wait_stops_the_stream_and_retry_goes_on() {
    let r = Replayed::new();
    let sequence = r.file("sequence");
    std::fs::write(&sequence, "usage-limit\nedit-and-commit\n").unwrap();
    r.plan(
        "\"codex\"",
        &[("a", "-")],
        "limit_wait = \"0s\"",
        &[("REPLAY_SEQUENCE", &sequence)],
    );
    let out = r.repo.streams(&["run"]);
    out.assert_code(6);
    assert!(
        out.stderr
            .contains("stopped a task 1: usage limit: You’ve hit your usage limit."),
        "{out}"
    );
    let task = r.task("a");
    assert_eq!(task["state"]["state"], "stopped", "{task}");
    assert_eq!(task["state"]["stop"]["kind"], "usage_limit", "{task}");
    let status = r.repo.streams(&["status"]);
    assert!(status.stdout.contains("stopped"), "{status}");
    let retried = r.repo.streams(&["retry", "a"]);
    retried.assert_code(0);
    assert_eq!(
        r.repo
            .git(&["show", "streams/p/integration:src/a/hello.txt"]),
        "hello from codex"
    );
}

#[test]
fn a_usage_limit_waits_then_runs_the_agent_again_without_using_a_retry() {
    let r = Replayed::new();
    let sequence = r.file("sequence");
    std::fs::write(&sequence, "usage-limit\nedit-and-commit\n").unwrap();
    r.plan(
        "\"claude\"",
        &[("a", "-")],
        // Claude Code with an API key gives no reset time: a backoff, cut to `limit_wait`.
        "limit_wait = \"1s\"",
        &[("REPLAY_SEQUENCE", &sequence)],
    );
    let out = r.repo.streams(&["run"]);
    out.assert_code(0);
    assert!(
        out.stderr
            .contains("waiting a task 1: usage limit (API Error: Request rejected (429)"),
        "{out}"
    );
    let task = r.task("a");
    assert_eq!(task["attempts"], 2, "{task}");
    assert!(task.get("retried_for").is_none(), "{task}");
    assert_eq!(task["usage"].as_array().unwrap().len(), 2, "{task}");
    assert_eq!(task["limit_waits"], 1, "{task}");
    // The summary counts the wait apart from retries.
    let row = out
        .stderr
        .lines()
        .find(|l| l.starts_with("a ") && l.contains("integrated"))
        .unwrap_or_else(|| panic!("no row for a\n{out}"));
    assert!(row.ends_with(" 0"), "the wait is no retry: {row}\n{out}");
    let waited = "a waited for its agent's usage limit to reset once (not counted as retries)";
    assert!(out.stderr.contains(waited), "{out}");
    let root = r.repo.common_dir().join("streams");
    let id = std::fs::read_to_string(root.join("current")).unwrap();
    let run = root.join("runs").join(id.trim());
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("report.json")).unwrap()).unwrap();
    let stream = &report["streams"][0];
    assert_eq!(
        (&stream["retries"], &stream["limit_waits"]),
        (&0.into(), &1.into()),
        "{stream}"
    );
    let md = std::fs::read_to_string(run.join("report.md")).unwrap();
    assert!(md.contains(&format!("- {waited}")), "{md}");
}

#[test]
fn a_checks_second_chance_resumes_the_agents_session_with_the_checks_output() {
    let r = Replayed::new();
    let (sequence, args) = (r.file("sequence"), r.file("args"));
    std::fs::write(&sequence, "edit-and-commit\nresume\n").unwrap();
    r.plan(
        "\"claude\"",
        &[("a", "-")],
        // Passes once the agent has committed twice.
        "check = [\"sh\", \"-c\", \"test $(git rev-list --count HEAD) -ge 4 || { echo needs another commit; exit 1; }\"]\ncheck_retries = 1",
        &[("REPLAY_SEQUENCE", &sequence), ("REPLAY_ARGS", &args)],
    );
    let out = r.repo.streams(&["run"]);
    out.assert_code(0);
    let runs = r.args(&args);
    assert_eq!(runs.len(), 2, "{runs:?}\n{out}");
    assert!(!runs[0].contains(&"--resume".to_string()), "{runs:?}");
    // The recorded session of the first run, and the check's output as the new message.
    let resume = runs[1]
        .iter()
        .position(|a| a == "--resume")
        .expect("--resume");
    assert_eq!(runs[1][resume + 1], "d468ab8c-dc5b-446c-945a-4bed8844ba56");
    let message = &runs[1][1];
    assert!(message.contains("needs another commit"), "{message}");
    assert!(
        !message.contains("Write src/a/hello.txt"),
        "a resumed session has the task already: {message}"
    );
}

#[test]
fn a_preset_is_stopped_with_sigint_first() {
    let r = Replayed::new();
    let signals = r.file("signals");
    r.plan(
        "\"gemini\"",
        &[("a", "hang")],
        "timeout = \"1s\"\ngrace = \"1s\"",
        &[("REPLAY_SIGNALS", &signals)],
    );
    let out = r.repo.streams(&["run"]);
    out.assert_code(4);
    assert_eq!(
        std::fs::read_to_string(&signals).unwrap(),
        "INT\nTERM\n",
        "{out}"
    );
}

#[test]
fn status_shows_a_running_agents_last_action() {
    let r = Replayed::new();
    // A task whose agent reported a write and now waits for a file the test makes.
    let release = r.file("release");
    r.repo.write(
        "slow-claude.sh",
        &format!(
            "#!/bin/sh\nREPLAY=sigterm-waiting {} \"$@\"\nwhile [ ! -e {:?} ]; do sleep 0.05; done\n",
            r.bin.join("claude").display(),
            release.display().to_string()
        ),
    );
    let status = {
        use std::os::unix::fs::PermissionsExt;
        let script = r.repo.path("slow-claude.sh");
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        r.repo.commit_all("slow agent");
        r.repo.write(
            "streams.toml",
            "[plan]\nname = \"p\"\nagent = [\"./slow-claude.sh\"]\nallow_empty = true\n\n[[stream]]\nname = \"a\"\nowns = [\"src/a/**\"]\ntasks = [\"t\"]\n",
        );
        r.repo.commit_all("plan");
        let mut child = r.repo.streams_cmd(&["run"]).spawn().unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        let found = loop {
            let out = r.repo.streams(&["status"]);
            if out.stdout.contains("agent: Write src/a/hello.txt") {
                break out;
            }
            assert!(std::time::Instant::now() < deadline, "{out}");
            std::thread::sleep(std::time::Duration::from_millis(50));
        };
        std::fs::write(&release, "").unwrap();
        let _ = child.wait();
        found
    };
    assert!(
        status.stdout.contains("agent: Write src/a/hello.txt"),
        "{status}"
    );
}

#[test]
fn workspaces_are_beside_the_repository_and_one_left_under_git_is_moved_there() {
    let repo = TestRepo::with_files(&[("README.md", "r\n"), ("a/x", "x\n")]);
    repo.write(
        "streams.toml",
        r#"[plan]
name = "p"
agent = ["act", "append", "a/x", "more"]

[[stream]]
name = "a"
owns = ["a/**"]
tasks = ["Add a line to a/x"]
"#,
    );
    repo.commit_all("plan");
    repo.streams(&["run"]).assert_code(0);
    let beside = repo.root.parent().unwrap().join("repo.streams/p/a");
    assert!(beside.join("a/x").is_file(), "no workspace at {beside:?}");
    assert!(!repo.common_dir().join("streams/worktrees/p/a").exists());
    // As an earlier streams left it: under `.git/streams/worktrees`.
    let legacy = repo.common_dir().join("streams/worktrees/p/a");
    std::fs::create_dir_all(legacy.parent().unwrap()).unwrap();
    std::fs::rename(&beside, &legacy).unwrap();
    repo.streams(&["run", "--restart"]).assert_code(0);
    assert!(!legacy.exists(), "the old workspace was not moved");
    assert!(beside.join("a/x").is_file(), "no workspace at {beside:?}");
}

/// Found driving the real Codex by hand: a task failed on the provider's address in the user's
/// `~/.codex/config.toml`; the user fixed it and ran `streams retry`, and the task failed the
/// same way, on the copy its home had kept from the first attempt. What the user changed since
/// is copied again; what the CLI wrote in its home stays.
#[test]
fn a_retry_gives_the_cli_what_the_user_changed_in_their_setup_since() {
    let r = Replayed::new();
    let user = r.repo.home.join(".codex");
    std::fs::create_dir_all(user.join("prompts")).unwrap();
    std::fs::write(user.join("config.toml"), "base_url = \"wrong\"\n").unwrap();
    std::fs::write(user.join("prompts/p.md"), "p").unwrap();
    r.plan("\"codex\"", &[("a", "error")], "", &[]);
    r.repo.streams(&["run"]).assert_code(4);
    let config = crate::support::runs::run_dir(&r.repo).join("homes/a/1/.codex");
    assert_eq!(
        std::fs::read_to_string(config.join("config.toml")).unwrap(),
        "base_url = \"wrong\"\n"
    );
    // What the CLI keeps in its home between attempts.
    std::fs::write(config.join("prompts/p.md"), "the CLI's").unwrap();
    std::fs::write(user.join("config.toml"), "base_url = \"fixed\"\n").unwrap();
    r.plan("\"codex\"", &[("a", "edit-and-commit")], "", &[]);
    let out = r.repo.streams(&["retry", "a"]);
    out.assert_code(0);
    assert_eq!(
        std::fs::read_to_string(config.join("config.toml")).unwrap(),
        "base_url = \"fixed\"\n",
        "{out}"
    );
    assert_eq!(
        std::fs::read_to_string(config.join("prompts/p.md")).unwrap(),
        "the CLI's"
    );
}

/// Found driving the real Codex by hand against an address nothing answers on: it printed
/// "Reconnecting... waiting for network" until the task's timeout while `status` showed the
/// stream running and nothing else. An error after the agent's last action is what it shows.
#[test]
fn status_shows_the_error_a_running_agent_reported_after_its_last_action() {
    let r = Replayed::new();
    let release = r.file("release");
    let events = [
        r#"{"type":"thread.started","thread_id":"t1"}"#,
        r#"{"type":"turn.started"}"#,
        r#"{"type":"item.started","item":{"id":"i0","type":"command_execution","command":"ls","status":"in_progress"}}"#,
        r#"{"type":"error","message":"Reconnecting... 1/5 (stream disconnected before completion)"}"#,
        r#"{"type":"error","message":"Reconnecting... waiting for network (Connection failed: error sending request)"}"#,
    ];
    let mut script = String::from("#!/bin/sh\n");
    for event in events {
        script.push_str(&format!("echo '{event}'\n"));
    }
    script.push_str(&format!(
        "while [ ! -e {:?} ]; do sleep 0.05; done\n",
        release.display().to_string()
    ));
    r.repo.write("codex-offline.sh", &script);
    {
        use std::os::unix::fs::PermissionsExt;
        let path = r.repo.path("codex-offline.sh");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    r.repo.write(
        "streams.toml",
        "[plan]\nname = \"p\"\nagent = [\"./codex-offline.sh\"]\nallow_empty = true\n\n[[stream]]\nname = \"a\"\nowns = [\"src/a/**\"]\ntasks = [\"t\"]\n",
    );
    r.repo.commit_all("plan");
    let mut child = r.repo.streams_cmd(&["run"]).spawn().unwrap();
    let wanted = "agent: error: Reconnecting... waiting for network (Connection failed: error sending request)";
    let status = crate::common::wait_for(
        "status to show the agent's error",
        std::time::Duration::from_secs(60),
        || {
            let out = r.repo.streams(&["status"]);
            out.stdout.contains(wanted).then_some(out)
        },
    );
    std::fs::write(&release, "").unwrap();
    let _ = child.wait();
    assert!(!status.stdout.contains("agent: exec ls"), "{status}");
}

/// Claude Code and Gemini CLI give up by themselves after 3 to 4 minutes of failing to reach
/// their model (before the 5 minute default), with an error result and a non-zero exit: that
/// run ended the same way as one streams stops (unreachable, not retried), not as an ordinary
/// failure a task's `retries` would run again at once. The error results are those each CLI
/// gives for a request that failed (`recorded/<cli>/error.jsonl`), with the message
/// `docs/agents.md` quotes for a connection that failed.
#[test]
fn a_cli_that_gives_up_reaching_its_model_fails_the_same_way_and_is_not_retried() {
    let cases = [
        (
            "claude",
            r#"{"type":"result","subtype":"success","is_error":true,"duration_ms":190000,"num_turns":1,"result":"API Error: Unable to connect to API (ConnectionRefused)","session_id":"14a574ce-3775-4f3d-9e73-6146d1f523b7"}"#,
            "Claude Code could not reach its model: ",
        ),
        (
            "gemini",
            r#"{"type":"result","timestamp":"2026-12-08T03:39:32.523Z","status":"error","error":{"type":"unknown","message":"exception TypeError: fetch failed sending request"},"stats":{"total_tokens":0,"input_tokens":0,"output_tokens":0,"cached":0,"input":0,"duration_ms":0,"tool_calls":0}}"#,
            "Gemini CLI could not reach its model: ",
        ),
    ];
    for (cli, result, said) in cases {
        let r = Replayed::new();
        let give_up = r.file("give-up");
        std::fs::write(&give_up, format!("{result}\n")).unwrap();
        // Far longer than the replay: the CLI ends the run, not streams.
        r.plan(
            &format!("\"{cli}\""),
            &[("a", "unreachable")],
            "idle_timeout = \"60s\"\ntimeout = \"120s\"\nretries = 2",
            &[("REPLAY_GIVE_UP", &give_up)],
        );
        let out = r.repo.streams(&["run"]);
        out.assert_code(4);
        assert!(out.stderr.contains(said), "{cli}: {out}");
        let task = r.task("a");
        let reason = &task["state"]["reason"];
        assert_eq!(reason["kind"], "unreachable", "{cli}: {task}");
        assert_eq!(task["attempts"], 1, "{cli}: {task}");
    }
}

/// Found driving the real Codex by hand: pointed at an address nothing answers, it printed
/// "Reconnecting... waiting for network" for ever (`request_max_retries = 0` or not), and since
/// its retries are output, `idle_timeout` never fired: only the task's timeout stopped it, 45
/// minutes later. Claude Code and Gemini CLI retry for 3 and 4 minutes, the same way. A run of
/// failures to reach the model with no progress lasts at most `idle_timeout`; the task fails
/// saying what, and `streams retry` runs it again once the address is fixed. Replayed from
/// each CLI's recording of it (`fixtures/agents/recorded/<cli>/unreachable.*`).
#[test]
fn a_cli_that_cannot_reach_its_model_is_stopped_after_idle_timeout_and_retry_goes_on() {
    let cases = [
        (
            "codex",
            "Codex could not reach its model: \"Reconnecting... waiting for network (Connection failed: error sending request)\"; stopped after ",
            "check the provider's `base_url` and key in Codex's `config.toml`",
        ),
        (
            "claude",
            "Claude Code could not reach its model: \"api_retry 7 of 10: error unknown, no HTTP status\"; stopped after ",
            "check `ANTHROPIC_BASE_URL`",
        ),
        (
            "gemini",
            "Gemini CLI could not reach its model: \"TypeError: fetch failed sending request\"; stopped after ",
            "check `GOOGLE_GEMINI_BASE_URL`",
        ),
    ];
    for (cli, said, check) in cases {
        let r = Replayed::new();
        let sequence = r.file("sequence");
        std::fs::write(&sequence, "unreachable\nedit-and-commit\n").unwrap();
        // Far less than the timeout, far more than the time between two retries (0.2 s).
        r.plan(
            &format!("\"{cli}\""),
            &[("a", "-")],
            "idle_timeout = \"3s\"\ntimeout = \"60s\"",
            &[("REPLAY_SEQUENCE", &sequence)],
        );
        let out = r.repo.streams(&["run"]);
        out.assert_code(4);
        assert!(out.stderr.contains(said), "{cli}: {out}");
        assert!(out.stderr.contains(check), "{cli}: {out}");
        assert!(!out.stderr.contains("timed out"), "{cli}: {out}");
        let task = r.task("a");
        assert_eq!(task["state"]["state"], "failed", "{cli}: {task}");
        let reason = &task["state"]["reason"];
        assert_eq!(reason["kind"], "unreachable", "{cli}: {task}");
        assert_eq!(reason["cli"], cli, "{task}");
        // Not retried at once (it would fail the same way): one attempt.
        assert_eq!(task["attempts"], 1, "{cli}: {task}");
        assert!(reason["attempts"].as_u64().unwrap() >= 2, "{cli}: {task}");
        let retried = r.repo.streams(&["retry", "a"]);
        retried.assert_code(0);
        assert_eq!(
            r.repo
                .git(&["show", "streams/p/integration:src/a/hello.txt"]),
            format!("hello from {cli}"),
            "{cli}: {retried}"
        );
    }
}
