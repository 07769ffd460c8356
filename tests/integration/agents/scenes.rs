//! The real `streams` running Claude Code and Codex through their presets against the scripted
//! server, in the scenes the presets exist for (issue 25), each under `sandbox = "landlock"`
//! where the kernel has it and as the unprivileged account:
//!
//! - an edit outside the stream's lane is rejected and nothing of it is integrated;
//! - a refusal (Claude: the model's, its words quoted before Claude Code's fixed text; Codex
//!   drops a model's refusal from its events, so there a command the agent was denied) fails
//!   the task with its words quoted, exit 4;
//! - a usage-limit answer makes the task wait for the reset (`status` says so meanwhile), then
//!   the agent runs again and the task commits;
//! - a check's second chance resumes the agent's session: the server receives the earlier
//!   turns with the check's output, and the task commits; the tokens kept per attempt are the
//!   server's scripted figures.
//!
//! - a model out of reach (nothing listens at its address; Gemini CLI too): the CLI is stopped
//!   after the stream's `idle_timeout` of failed attempts, the task fails saying so, and
//!   `streams retry` commits once the address answers;
//!
//! Each test runs one plan of one or two streams (a few seconds of the CLI each).

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use super::clis::{Cli, Located, Who, Workplace, require, require_user, usable_by};
use super::plans::{agent, command_as, landlock, run_as, state};
use super::server::{Answer, Script, Server, Turn, Usage};
use crate::common::{CmdOutput, TestRepo};
use crate::support::runs::run_dir;

/// The key in stream `name`'s task text that tells its requests apart.
fn key(name: &str) -> String {
    format!("SCENE-KEY-{name}-9d2b")
}

/// A repository with streams `src/<name>/**` ready, the scripted server, and the CLI.
struct Scene {
    place: Workplace,
    located: Located,
    server: Server,
    landlock: bool,
}

impl Scene {
    /// Sets up the scene for `cli` with each stream's scripted turns; None when the CLI or the
    /// account is missing (skipped; a failure under CI).
    fn new(cli: Cli, streams: &[(&str, Vec<Turn>)]) -> Option<Scene> {
        let located = require(cli)?;
        let who = require_user()?;
        if !usable_by(&located, &who) {
            return None;
        }
        let place = Workplace::new(who);
        let repo = &place.repo;
        for (name, _) in streams {
            repo.write(&format!("src/{name}/keep.txt"), "keep\n");
        }
        repo.commit_all("streams' directories");
        let mut script = Script::new(Vec::new());
        for (name, turns) in streams {
            script = script.conversation(&key(name), turns.clone(), &workspace(repo, name));
        }
        let server = Server::start(script);
        super::clis::write_config(cli, &repo.home, &server);
        let landlock = landlock(repo);
        Some(Scene {
            place,
            located,
            server,
            landlock,
        })
    }

    fn repo(&self) -> &TestRepo {
        &self.place.repo
    }

    /// Writes and commits the plan: `agent`, `extra` lines in `[plan]`, one task per stream.
    fn plan(&self, agent: &str, names: &[&str], extra: &str) {
        let sandbox = if self.landlock {
            "sandbox = \"landlock\"\n"
        } else {
            ""
        };
        let mut plan = format!(
            "[plan]\nname = \"p\"\njobs = 2\ntimeout = \"4m\"\n{sandbox}agent = {agent}\n{extra}\n"
        );
        for name in names {
            plan.push_str(&format!(
                "\n[[stream]]\nname = \"{name}\"\nowns = [\"src/{name}/**\"]\ntasks = [\"Do the work of stream {name} ({}).\"]\n",
                key(name)
            ));
        }
        self.repo().write("streams.toml", &plan);
        self.repo().commit_all("plan");
    }

    /// Writes and commits a plan of stream `a` alone, its one task under `budget`.
    fn plan_with_task_budget(&self, budget: &str) {
        self.plan(&self.agent(), &[], "");
        let mut plan = self.repo().read("streams.toml");
        plan.push_str(&format!(
            "\n[[stream]]\nname = \"a\"\nowns = [\"src/a/**\"]\n\n[[stream.task]]\nprompt = \"Do the work of stream a ({}).\"\nbudget = {budget}\n",
            key("a")
        ));
        self.repo().write("streams.toml", &plan);
        self.repo().commit_all("budget");
    }

    /// The preset's `agent` pointed at the server.
    fn agent(&self) -> String {
        agent(self.located.cli, &self.server, &self.repo().home)
    }

    fn run(&self, what: &str) -> CmdOutput {
        let started = Instant::now();
        let out = run_as(&self.place, &self.located, &["run"]);
        self.timed(what, started, &out);
        out
    }

    fn timed(&self, what: &str, started: Instant, out: &CmdOutput) {
        eprintln!(
            "{} {} {what} ({}): {:.1} s, {}",
            self.located.cli.name(),
            self.located.version,
            if self.landlock {
                "landlock"
            } else {
                "no sandbox"
            },
            started.elapsed().as_secs_f64(),
            out.stderr
                .lines()
                .find(|l| ["ok:", "failed:", "stopped:"]
                    .iter()
                    .any(|p| l.starts_with(p)))
                .unwrap_or("")
        );
    }

    /// Stream `name`'s (first) task in the state.
    fn task(&self, name: &str) -> serde_json::Value {
        state(self.repo())["streams"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == name)
            .unwrap_or_else(|| panic!("no stream {name}"))["tasks"][0]
            .clone()
    }

    /// `path` on the integration branch, if there.
    fn integrated(&self, path: &str) -> Option<String> {
        let repo = self.repo();
        let out = repo.git_output_in(
            &repo.root,
            &["show", &format!("streams/p/integration:{path}")],
        );
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Every request was one the script foresaw.
    fn assert_scripted(&self, out: &CmdOutput) {
        let requests = self.server.requests();
        assert!(
            requests
                .iter()
                .all(|r| r.answer != Answer::Unknown && r.answer != Answer::Exhausted),
            "the CLI asked for more than the script: {:?}\n{out}",
            requests
                .iter()
                .map(|r| format!("{} {} {:?}", r.method, r.path, r.answer))
                .collect::<Vec<_>>()
        );
    }
}

/// Where stream `name`'s workspace is (DESIGN.md: beside the repository).
fn workspace(repo: &TestRepo, name: &str) -> PathBuf {
    repo.root.parent().unwrap().join(format!(
        "{}.streams/p/{name}",
        repo.root.file_name().unwrap().to_string_lossy()
    ))
}

/// Write `path`, commit it, answer.
fn edit_and_commit(path: &str, content: &str, message: &str) -> Vec<Turn> {
    vec![
        Turn::write(path, content).tokens(1000, 50).cached(300, 40),
        Turn::shell(&format!("git add -A && git commit -q -m '{message}'")).tokens(1200, 30),
        Turn::text("Done.").tokens(1300, 10),
    ]
}

/// The scripted figures of `turns` summed.
fn total(turns: &[Turn]) -> Usage {
    turns.iter().fold(Usage::NONE, |sum, turn| Usage {
        input: sum.input + turn.usage.input,
        output: sum.output + turn.usage.output,
        cache_read: sum.cache_read + turn.usage.cache_read,
        cache_write: sum.cache_write + turn.usage.cache_write,
    })
}

/// What the state keeps for the scripted `total` (input uncached, output, cache read, cache
/// write): Codex counts no cache writes, and its input includes the cache reads.
fn kept(cli: Cli, total: Usage) -> (u64, u64, u64, u64) {
    match cli {
        Cli::Claude => (
            total.input,
            total.output,
            total.cache_read,
            total.cache_write,
        ),
        _ => (
            total.prompt_total() - total.cache_read,
            total.output,
            total.cache_read,
            0,
        ),
    }
}

/// The tokens of attempt `index` of a task in the state.
fn attempt_tokens(task: &serde_json::Value, index: usize) -> (u64, u64, u64, u64) {
    let usage = &task["usage"][index]["usage"];
    let n = |k: &str| usage[k].as_u64().unwrap_or(0);
    (n("input"), n("output"), n("cache_read"), n("cache_write"))
}

// ---- an edit outside the lane -----------------------------------------------------------

fn out_of_lane_edit_is_rejected(cli: Cli) {
    let intruder = edit_and_commit("src/b/intruder.txt", "not mine\n", "Touch b");
    let own = edit_and_commit("src/b/hello.txt", "hello from b\n", "Add b hello");
    let Some(scene) = Scene::new(cli, &[("a", intruder), ("b", own)]) else {
        return;
    };
    scene.plan(&scene.agent(), &["a", "b"], "");
    let out = scene.run("an out-of-lane edit");
    out.assert_code(4);
    assert!(
        out.stderr.contains("changed paths it does not own"),
        "{out}"
    );
    assert!(out.stderr.contains("src/b/intruder.txt"), "{out}");
    assert_eq!(scene.task("a")["state"]["state"], "failed", "{out}");
    // The other stream's own work is integrated, the intruder's file is not.
    assert_eq!(
        scene.integrated("src/b/hello.txt").as_deref(),
        Some("hello from b\n"),
        "{out}"
    );
    assert_eq!(scene.integrated("src/b/intruder.txt"), None, "{out}");
    let log = scene
        .repo()
        .git(&["log", "--format=%s", "streams/p/integration"]);
    assert!(!log.contains("Touch b"), "{log}\n{out}");
    scene.assert_scripted(&out);
}

#[test]
fn claude_an_edit_outside_the_lane_is_rejected_and_not_integrated() {
    out_of_lane_edit_is_rejected(Cli::Claude);
}

#[test]
fn codex_an_edit_outside_the_lane_is_rejected_and_not_integrated() {
    out_of_lane_edit_is_rejected(Cli::Codex);
}

// ---- a refusal --------------------------------------------------------------------------

#[test]
fn claude_a_refusal_fails_the_task_with_the_refusal_quoted() {
    let words = "I can't help with that request (scripted refusal).";
    let Some(scene) = Scene::new(Cli::Claude, &[("a", vec![Turn::refusal(words)])]) else {
        return;
    };
    scene.plan(&scene.agent(), &["a"], "");
    let out = scene.run("a refusal");
    out.assert_code(4);
    let outcome = out
        .stderr
        .lines()
        .find(|l| l.starts_with("failed a (task 1)"))
        .unwrap_or_else(|| panic!("no outcome line for a\n{out}"));
    // Claude Code answers a refusal (`stop_reason: "refusal"`) with its own fixed text in its
    // `result`; the model's words are only in the `assistant` event before it: both are quoted,
    // the model's first.
    assert!(
        outcome.contains(&format!(
            "refused: the model said \"{words}\" (API Error: Claude Code is unable to respond to \
             this request, which appears to violate our Usage Policy"
        )),
        "{outcome}\n{out}"
    );
    assert_eq!(scene.task("a")["state"]["state"], "failed", "{out}");
    scene.assert_scripted(&out);
}

#[test]
fn codex_a_denied_command_fails_the_task_with_the_denial_quoted() {
    // Codex drops a model's refusal from its events (docs/agents.md: no message, exit 0), so
    // the refusal here is the system's: a command writing where the agent may not (outside
    // its workspace: the sandbox's, and the unprivileged account's, refusal), then the model
    // gives up in words Codex does not report.
    let turns = vec![
        Turn::shell("touch /etc/streams-scene-denied").tokens(900, 20),
        Turn::refusal("I cannot do this without writing to /etc.").tokens(950, 15),
    ];
    let Some(scene) = Scene::new(Cli::Codex, &[("a", turns)]) else {
        return;
    };
    scene.plan(&scene.agent(), &["a"], "");
    let out = scene.run("a denied command");
    out.assert_code(4);
    let outcome = out
        .stderr
        .lines()
        .find(|l| l.starts_with("failed a (task 1)"))
        .unwrap_or_else(|| panic!("no outcome line for a\n{out}"));
    assert!(
        outcome.contains("touch /etc/streams-scene-denied` failed"),
        "{outcome}\n{out}"
    );
    assert!(outcome.contains("Permission denied"), "{outcome}\n{out}");
    assert_eq!(scene.task("a")["state"]["state"], "failed", "{out}");
    scene.assert_scripted(&out);
}

// ---- a usage limit ----------------------------------------------------------------------

fn usage_limit_waits_and_resumes(cli: Cli) {
    let mut turns = vec![Turn::usage_limit(Duration::from_secs(3))];
    turns.extend(edit_and_commit(
        "src/a/hello.txt",
        "hello after the limit\n",
        "Add a hello",
    ));
    let Some(scene) = Scene::new(cli, &[("a", turns)]) else {
        return;
    };
    let agent = match cli {
        // With an API key Claude Code reports no reset time (a backoff of a minute): signed in
        // with claude.ai (an OAuth token) it reports the server's reset.
        Cli::Claude => format!(
            r#"{{ preset = "claude", model = "{}", env = {{ ANTHROPIC_BASE_URL = "{}", CLAUDE_CODE_OAUTH_TOKEN = "sk-ant-oat01-scripted" }} }}"#,
            super::clis::model(cli),
            scene.server.url()
        ),
        _ => scene.agent(),
    };
    scene.plan(&agent, &["a"], "limit_wait = \"3m\"");
    let started = Instant::now();
    let mut child = command_as(&scene.place, &scene.located, &["run"], &[])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // `status` while the task waits (polled; the run goes on whether or not it is seen).
    let mut waiting_seen = None;
    let deadline = Instant::now() + super::clis::RUN_DEADLINE;
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        assert!(Instant::now() < deadline, "the run did not end");
        if waiting_seen.is_none() {
            // As the run's user: nothing of root's is left in the repository.
            let mut cmd = scene.repo().streams_cmd(&["status"]);
            if let Who::User(Some(account)) = &scene.place.who {
                cmd.uid(account.uid).gid(account.gid);
            }
            let status = CmdOutput::new(cmd.output().unwrap(), scene.repo());
            if status
                .stdout
                .contains("waiting for its agent's usage limit")
            {
                waiting_seen = Some(status.stdout);
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = CmdOutput::new(child.wait_with_output().unwrap(), scene.repo());
    scene.timed("a usage limit", started, &out);
    out.assert_code(0);
    assert!(
        out.stderr.contains("waiting a task 1: usage limit"),
        "{out}"
    );
    let waiting = waiting_seen.unwrap_or_else(|| panic!("status never showed the wait\n{out}"));
    assert!(waiting.contains("reset"), "{waiting}");
    let task = scene.task("a");
    assert_eq!(task["attempts"], 2, "{task}");
    assert_eq!(task["limit_waits"], 1, "{task}");
    assert!(task.get("retried_for").is_none(), "{task}");
    assert_eq!(
        scene.integrated("src/a/hello.txt").as_deref(),
        Some("hello after the limit\n"),
        "{out}"
    );
    // The limit, then the whole conversation again in the second run.
    assert_eq!(scene.server.turns_answered(), 4, "{out}");
    scene.assert_scripted(&out);
}

#[test]
fn claude_a_usage_limit_waits_for_the_reset_then_the_task_commits() {
    usage_limit_waits_and_resumes(Cli::Claude);
}

#[test]
fn codex_a_usage_limit_waits_for_the_reset_then_the_task_commits() {
    usage_limit_waits_and_resumes(Cli::Codex);
}

// ---- a check's second chance ------------------------------------------------------------

fn check_retry_resumes_the_session(cli: Cli) {
    let first = edit_and_commit("src/a/hello.txt", "hello\n", "Add a hello");
    let second = vec![
        Turn::write("src/a/fixed.txt", "fixed\n").tokens(2000, 60),
        Turn::shell("git add -A && git commit -q -m 'Fix a'").tokens(2100, 25),
        Turn::text("Fixed.").tokens(2200, 5),
    ];
    let mut turns = first.clone();
    turns.extend(second.clone());
    let Some(scene) = Scene::new(cli, &[("a", turns)]) else {
        return;
    };
    scene.plan(
        &scene.agent(),
        &["a"],
        "check = [\"sh\", \"-c\", \"test -f src/a/fixed.txt || { echo CHECK-SAYS-add-fixed-txt; exit 1; }\"]\ncheck_retries = 1",
    );
    let out = scene.run("a check's second chance");
    out.assert_code(0);
    assert_eq!(
        scene.integrated("src/a/fixed.txt").as_deref(),
        Some("fixed\n"),
        "{out}"
    );
    // The resumed run's first request carries the first run's turns and the check's output.
    let turn_requests = scene.server.turn_requests();
    assert_eq!(turn_requests.len(), 6, "{out}");
    let resumed = &turn_requests[3];
    assert!(resumed.contains("CHECK-SAYS-add-fixed-txt"), "{out}");
    assert!(
        resumed.contains("git commit -q -m 'Add a hello'"),
        "the resumed request lacks the first run's turns: {}\n{out}",
        resumed.raw
    );
    assert!(resumed.contains(&key("a")), "{out}");
    // The tokens of each attempt are the server's figures for that run.
    let task = scene.task("a");
    assert_eq!(attempt_tokens(&task, 0), kept(cli, total(&first)), "{task}");
    assert_eq!(
        attempt_tokens(&task, 1),
        kept(cli, total(&second)),
        "{task}"
    );
    scene.assert_scripted(&out);
}

#[test]
fn claude_a_checks_second_chance_resumes_the_session_and_commits() {
    check_retry_resumes_the_session(Cli::Claude);
}

#[test]
fn codex_a_checks_second_chance_resumes_the_session_and_commits() {
    check_retry_resumes_the_session(Cli::Codex);
}

// ---- a task budget stops Claude Code ----------------------------------------------------
//
// A budget stops an agent with SIGINT so that it can still report (docs/agents.md, "Stop").
// What Claude Code 2.1.197 prints then depends on where it is: while its shell tool runs a
// command, a `result` with the usage so far; between the model's answer and the tool's start
// (where a token or turn budget crossed by that answer interrupts it), or while it waits for
// the model, mostly nothing (exit 0), sometimes a `result` short of what its messages showed.

/// The scripted turns: write (1340 prompt tokens), then a shell command that outlives any
/// budget here (1200 more), then an answer never asked for.
fn runaway_command() -> Vec<Turn> {
    vec![
        Turn::write("src/a/hello.txt", "hello\n")
            .tokens(1000, 50)
            .cached(300, 40),
        Turn::shell("sleep 300").tokens(1200, 30),
        Turn::text("Done.").tokens(1300, 10),
    ]
}

/// The run's only attempt: its state record and the budget stop it ended in.
fn budget_stopped(scene: &Scene, out: &CmdOutput) -> serde_json::Value {
    out.assert_code(6);
    assert!(
        out.stderr
            .contains("stopped a task 1: budget: the task budget ran out"),
        "{out}"
    );
    let task = scene.task("a");
    assert_eq!(task["state"]["stop"]["kind"], "budget", "{task}");
    assert_eq!(task["usage"].as_array().unwrap().len(), 1, "{task}");
    assert_eq!(task["usage"][0]["over_budget"], true, "{task}");
    // Stopped within the command: the model was not asked again.
    assert_eq!(scene.server.turns_answered(), 2, "{out}");
    scene.assert_scripted(out);
    task["usage"][0].clone()
}

/// The agent's output in the run (its task log).
fn agent_output(repo: &TestRepo) -> String {
    let mut pending = vec![run_dir(repo)];
    let mut output = String::new();
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() && !path.is_symlink() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "log") {
                output.push_str(&std::fs::read_to_string(&path).unwrap_or_default());
            }
        }
    }
    output
}

#[test]
fn claude_stopped_by_its_budget_while_a_command_runs_has_its_result_recorded() {
    let Some(scene) = Scene::new(Cli::Claude, &[("a", runaway_command())]) else {
        return;
    };
    // Claude Code reaches the command within a few seconds: the budget ends while it runs.
    scene.plan_with_task_budget("{ time = \"12s\" }");
    let out = scene.run("a time budget during a command");
    let attempt = budget_stopped(&scene, &out);
    // Claude Code's own `result` (after SIGINT: `error_during_execution`) is the record: the
    // output of both answers (the message events show only their first token), its price.
    let usage = &attempt["usage"];
    assert!(attempt.get("seen").is_none(), "{attempt}");
    let n = |k: &str| usage[k].as_u64().unwrap_or(0);
    assert_eq!(
        (n("input"), n("output"), n("cache_read"), n("cache_write")),
        (2200, 80, 300, 40),
        "{attempt}"
    );
    assert!(usage["cost_usd"].as_f64().unwrap() > 0.0, "{attempt}");
    let output = agent_output(scene.repo());
    assert!(
        output.contains(r#""subtype":"error_during_execution""#),
        "{output}"
    );
    assert!(
        !out.stderr.contains("at least"),
        "the run's total is known\n{out}"
    );
}

#[test]
fn claude_stopped_by_its_token_budget_as_it_asks_for_a_command_is_never_zero() {
    let Some(scene) = Scene::new(Cli::Claude, &[("a", runaway_command())]) else {
        return;
    };
    // Crossed by the command's answer (2540 prompt tokens seen): SIGINT as the tool starts.
    scene.plan_with_task_budget("{ tokens = 2000 }");
    let out = scene.run("a token budget crossed by an answer");
    let attempt = budget_stopped(&scene, &out);
    assert!(
        out.stderr
            .contains("the task budget ran out (2542 tokens of 2000)"),
        "{out}"
    );
    let output = agent_output(scene.repo());
    let result = output
        .lines()
        .rfind(|l| l.starts_with(r#"{"type":"result""#));
    let figures = |u: &serde_json::Value| {
        let n = |k: &str| u[k].as_u64().unwrap_or(0);
        (n("input"), n("cache_read"), n("cache_write"))
    };
    match (&attempt["usage"], &attempt["seen"]) {
        // Claude Code reported in full: its figures.
        (usage, serde_json::Value::Null) if !usage.is_null() => {
            eprintln!("claude printed its result");
            assert!(result.is_some(), "{output}");
            assert_eq!(figures(usage), (2200, 300, 40), "{attempt}");
        }
        // No result, or one short of its messages (it happens): what was seen, "at least".
        (serde_json::Value::Null, seen) => {
            eprintln!("claude printed {}", result.unwrap_or("no result"));
            assert_eq!(figures(seen), (2200, 300, 40), "{attempt}");
            // Its events show each answer's first output token only; its transcript has the
            // first answer's 50 at least (written before the second was asked for).
            let output = seen["output"].as_u64().unwrap_or(0);
            assert!((51..=80).contains(&output), "{attempt}");
            assert!(out.stderr.contains("at least 2.6k tokens"), "{out}");
            let md = std::fs::read_to_string(run_dir(scene.repo()).join("report.md")).unwrap();
            assert!(md.contains("| a | unknown | at least "), "{md}");
        }
        _ => panic!("the attempt is both reported and seen: {attempt}"),
    }
}

// ---- a model out of reach ---------------------------------------------------------------

/// Found driving Codex by hand (`docs/agents.md`, "A model it cannot reach"): against an
/// address nothing answers it printed "Reconnecting... waiting for network" until the task's
/// timeout, and its retries kept `idle_timeout` from firing; Claude Code and Gemini CLI retry
/// for 3 and 4 minutes. Each is stopped after `idle_timeout` of failures; once the user's setup
/// names an address that answers, `streams retry` commits.
fn unreachable_model_stops_the_task_and_retry_commits(cli: Cli) {
    let turns = edit_and_commit("src/a/hello.txt", "hello from a\n", "Add a hello");
    let Some(mut scene) = Scene::new(cli, &[("a", turns.clone())]) else {
        return;
    };
    scene.server.stop();
    scene.plan(&scene.agent(), &["a"], "idle_timeout = \"5s\"");
    let out = scene.run("against an address nothing answers");
    out.assert_code(4);
    let (product, check) = match cli {
        Cli::Claude => ("Claude Code", "check `ANTHROPIC_BASE_URL`"),
        Cli::Codex => ("Codex", "check the provider's `base_url`"),
        _ => ("Gemini CLI", "check `GOOGLE_GEMINI_BASE_URL`"),
    };
    let said = format!("{product} could not reach its model: \"");
    assert!(out.stderr.contains(&said), "{out}");
    assert!(out.stderr.contains(check), "{out}");
    let task = scene.task("a");
    assert_eq!(task["state"]["reason"]["kind"], "unreachable", "{task}");
    assert!(scene.server.requests().is_empty());

    // The address answers again (the user's setup names the new server).
    let script =
        Script::new(Vec::new()).conversation(&key("a"), turns, &workspace(scene.repo(), "a"));
    scene.server = Server::start(script);
    super::clis::write_config(cli, &scene.repo().home, &scene.server);
    scene.plan(&scene.agent(), &["a"], "");
    let started = Instant::now();
    let retried = run_as(&scene.place, &scene.located, &["retry", "a"]);
    scene.timed("retried", started, &retried);
    retried.assert_code(0);
    assert_eq!(
        scene.integrated("src/a/hello.txt").as_deref(),
        Some("hello from a\n"),
        "{retried}"
    );
}

#[test]
fn codex_a_model_out_of_reach_fails_the_task_and_retry_commits() {
    unreachable_model_stops_the_task_and_retry_commits(Cli::Codex);
}

#[test]
fn claude_a_model_out_of_reach_fails_the_task_and_retry_commits() {
    unreachable_model_stops_the_task_and_retry_commits(Cli::Claude);
}

#[test]
fn gemini_a_model_out_of_reach_fails_the_task_and_retry_commits() {
    unreachable_model_stops_the_task_and_retry_commits(Cli::Gemini);
}
