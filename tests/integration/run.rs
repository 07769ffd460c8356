//! `streams run`: worktrees, agents, commits, ownership, timeouts, what the user sees.

use std::time::Duration;

use crate::common::{TestRepo, assert_gone, process_alive, read_pid, wait_for};

use crate::support::plans::plan;
use crate::support::repos::app_repo;
use crate::support::runs::run_dir;

/// A plan with one stream `api` owning `src/api/**` whose agent is `agent` (a TOML array).
fn one_stream(repo: &TestRepo, agent: &str, extra_plan: &str) {
    plan(
        repo,
        &format!(
            r#"
[plan]
name = "p"
jobs = 1
{extra_plan}

[[stream]]
name = "api"
owns = ["src/api/**"]
agent = {agent}
tasks = ["Do the api work"]
"#
        ),
    );
}

fn show(repo: &TestRepo, rev: &str) -> String {
    repo.git(&["show", "-s", "--format=%B", rev])
}

#[test]
fn an_agent_that_commits_its_own_work() {
    let repo = app_repo();
    one_stream(
        &repo,
        r#"["act", "write", "src/api/login.rs", "fn login() {}", "commit", "Add login"]"#,
        "",
    );
    let out = repo.streams(&["run"]);
    out.assert_code(0);
    // Its commit is on the stream branch as it made it...
    assert_eq!(
        repo.git(&["log", "-1", "--format=%s", "streams/p/api"]),
        "Add login"
    );
    // ...and on the integration branch with the trailers that say whose work it is.
    let msg = show(&repo, "streams/p/integration");
    assert!(msg.starts_with("Add login"), "{msg}");
    assert!(
        msg.contains("Streams-Stream: api\nStreams-Task: 1"),
        "{msg}"
    );
    assert_eq!(
        repo.git(&["show", "streams/p/integration:src/api/login.rs"]),
        "fn login() {}"
    );
    // Exactly one commit on top of the base.
    assert_eq!(
        repo.git(&["rev-list", "--count", "main..streams/p/integration"]),
        "1"
    );
}

#[test]
fn work_left_uncommitted_is_committed_with_the_task_as_message() {
    let repo = app_repo();
    one_stream(
        &repo,
        r#"["act", "write", "src/api/new.rs", "new", "append", "src/api/mod.rs", "more"]"#,
        "",
    );
    repo.streams(&["run"]).assert_code(0);
    let msg = show(&repo, "streams/p/api");
    assert_eq!(
        msg,
        "Do the api work\n\nStreams-Stream: api\nStreams-Task: 1"
    );
    assert_eq!(
        repo.git(&["show", "streams/p/integration:src/api/new.rs"]),
        "new"
    );
    assert_eq!(
        repo.git(&["show", "streams/p/integration:src/api/mod.rs"]),
        "// api\nmore"
    );
}

#[test]
fn deletes_renames_and_binary_files_inside_ownership_are_fine() {
    let repo = TestRepo::with_files(&[
        ("src/api/old.rs", "old\n"),
        ("src/api/gone.rs", "gone\n"),
        ("README.md", "r\n"),
    ]);
    one_stream(
        &repo,
        r#"["act", "mv", "src/api/old.rs", "src/api/new.rs", "rm", "src/api/gone.rs", "binary", "src/api/logo.bin"]"#,
        "",
    );
    repo.streams(&["run"]).assert_code(0);
    let files = repo.git(&["ls-tree", "-r", "--name-only", "streams/p/integration"]);
    assert_eq!(files, "README.md\nsrc/api/logo.bin\nsrc/api/new.rs");
    // The binary file arrives byte for byte.
    let blob = std::process::Command::new("git")
        .current_dir(&repo.root)
        .args(["cat-file", "blob", "streams/p/integration:src/api/logo.bin"])
        .output()
        .unwrap()
        .stdout;
    assert_eq!(blob, b"\x00\x01\x02\xff\xfebinary\x00");
}

#[test]
fn writing_outside_ownership_fails_the_task_and_keeps_its_work() {
    let repo = app_repo();
    plan(
        &repo,
        r#"
[plan]
name = "p"
jobs = 1

[[stream]]
name = "api"
owns = ["src/api/**"]
agent = ["act", "write", "src/api/ok.rs", "ok", "write", "src/db/mod.rs", "hijacked", "write", "notes.txt", "n"]
tasks = ["Do the api work"]

[[stream]]
name = "db"
owns = ["src/db/**"]
agent = ["act", "write", "src/db/schema.sql", "create table t;"]
tasks = ["Schema"]

[[stream]]
name = "web"
owns = ["src/ui/**"]
depends_on = ["api"]
agent = ["act", "write", "src/ui/x.html", "x"]
tasks = ["Page"]
"#,
    );
    let out = repo.streams(&["run"]);
    out.assert_code(4);
    let stderr = out.stderr_redacted();
    assert!(
        stderr.contains("failed api (task 1): changed paths it does not own: notes.txt (owned by no stream), src/db/mod.rs (owned by db); its work is kept on refs/streams/p/rejected/api/1"),
        "{stderr}"
    );
    assert!(
        stderr.contains("skipped web: its dependency `api` did not finish"),
        "{stderr}"
    );
    // The rejected work is all there, on its ref.
    assert_eq!(
        repo.git(&["show", "refs/streams/p/rejected/api/1:src/db/mod.rs"]),
        "hijacked"
    );
    assert_eq!(
        repo.git(&["show", "refs/streams/p/rejected/api/1:src/api/ok.rs"]),
        "ok"
    );
    // The worktree went back to where the task began; the branch did not move.
    let wt = repo.workspaces("p").join("api");
    assert_eq!(repo.git_in(&wt, &["status", "--porcelain"]), "");
    assert_eq!(
        repo.git(&["rev-parse", "streams/p/api"]),
        repo.git(&["rev-parse", "main"])
    );
    // The other stream went on and was integrated; nothing of api's was.
    assert_eq!(
        repo.git(&["show", "streams/p/integration:src/db/schema.sql"]),
        "create table t;"
    );
    assert_eq!(
        repo.git(&["show", "streams/p/integration:src/db/mod.rs"]),
        "// db"
    );
}

/// A rename counts as both its paths: each side is checked against the stream's lane and each
/// side outside it is named, with its owner.
#[test]
fn renaming_a_file_out_of_ownership_names_both_sides() {
    let repo = app_repo();
    plan(
        &repo,
        r#"
[plan]
name = "p"
jobs = 1

[[stream]]
name = "api"
owns = ["src/api/**"]
agent = ["act", "mv", "src/db/mod.rs", "db.rs", "mv", "src/api/mod.rs", "src/ui/api.rs"]
tasks = ["Do the api work"]

[[stream]]
name = "db"
owns = ["src/db/**"]
agent = ["act", "say", "nothing to do"]
tasks = ["Nothing"]

[[stream]]
name = "ui"
owns = ["src/ui/**"]
agent = ["act", "say", "nothing to do"]
tasks = ["Nothing"]
"#,
    );
    let out = repo.streams(&["run"]);
    out.assert_code(4);
    // db's file renamed to a path nobody owns: both sides are named. api's own file moved
    // into ui's lane: only the new side is a violation (the old one is api's to change).
    assert!(
        out.stderr.contains(
            "failed api (task 1): changed paths it does not own: \
             db.rs (owned by no stream), src/db/mod.rs (owned by db), \
             src/ui/api.rs (owned by ui); its work is kept on refs/streams/p/rejected/api/1"
        ),
        "{out}"
    );
    assert!(!out.stderr.contains("src/api/mod.rs"), "{out}");
}

#[test]
fn rewriting_history_below_the_task_start_fails() {
    let repo = app_repo();
    repo.write("src/api/second.rs", "2\n");
    repo.commit_all("second commit");
    one_stream(
        &repo,
        r#"["act", "reset-hard", "HEAD~1", "write", "src/api/x.rs", "x"]"#,
        "",
    );
    let out = repo.streams(&["run"]);
    out.assert_code(4);
    assert!(out.stderr.contains("rewrote history below the task's start; its work is kept on refs/streams/p/rejected/api/1"), "{out}");
    assert_eq!(
        repo.git(&["rev-parse", "streams/p/api"]),
        repo.git(&["rev-parse", "main"])
    );
}

/// An agent that commits on its branch and then leaves it: the branch goes back to the task's
/// start, so its commits must be kept with the rest.
#[test]
fn commits_made_before_leaving_the_branch_are_kept() {
    let repo = app_repo();
    let start = repo.git(&["rev-parse", "HEAD"]);
    one_stream(
        &repo,
        &format!(
            r#"["act", "write", "src/api/a.rs", "a", "commit", "api work", "checkout", "{start}"]"#
        ),
        "",
    );
    let out = repo.streams(&["run"]);
    out.assert_code(4);
    assert!(
        out.stderr.contains(
            "failed api: left its branch for a detached HEAD; its work is kept on refs/streams/p/rejected/api/1"
        ),
        "{out}"
    );
    assert!(
        repo.git(&["log", "--format=%s", "refs/streams/p/rejected/api/1"])
            .contains("api work"),
        "{out}"
    );
    assert_eq!(repo.git(&["rev-parse", "streams/p/api"]), start);
}

#[test]
fn leaving_the_stream_branch_fails_like_a_rewrite() {
    let repo = app_repo();
    one_stream(
        &repo,
        r#"["act", "checkout", "--detach", "write", "src/api/x.rs", "x"]"#,
        "",
    );
    let out = repo.streams(&["run"]);
    out.assert_code(4);
    // Like a rewrite: the task fails saying why, its work is set aside, the branch stays.
    assert!(
        out.stderr.contains(
            "failed api (task 1): left its branch for a detached HEAD; \
             its work is kept on refs/streams/p/rejected/api/1"
        ),
        "{out}"
    );
    assert_eq!(
        repo.git(&["show", "refs/streams/p/rejected/api/1:src/api/x.rs"]),
        "x"
    );
    assert_eq!(
        repo.git(&["rev-parse", "streams/p/api"]),
        repo.git(&["rev-parse", "main"])
    );
}

#[test]
fn a_failing_agent_is_reported_with_its_log() {
    let repo = app_repo();
    one_stream(
        &repo,
        r#"["act", "write", "src/api/half.rs", "half", "say", "compiling...", "say", "error: it broke", "exit", "3"]"#,
        "",
    );
    let out = repo.streams(&["run"]);
    out.assert_code(4);
    let stderr = out.stderr_redacted();
    assert!(
        stderr.contains("failed api (task 1): agent exited with code 3"),
        "{stderr}"
    );
    assert!(stderr.contains("  | error: it broke"), "{stderr}");
    assert!(stderr.contains("/logs/api/1.log"), "{stderr}");
    // What it did before failing is kept.
    assert_eq!(
        repo.git(&["show", "refs/streams/p/failed/api/1:src/api/half.rs"]),
        "half"
    );
    // The table says so too.
    assert!(
        stderr
            .lines()
            .any(|l| l.starts_with("api ") && l.contains(" failed ") && l.contains("0/1")),
        "{stderr}"
    );
}

#[test]
fn a_missing_agent_program_is_a_clear_failure() {
    let repo = app_repo();
    // Caught by the plan's check, before anything starts.
    one_stream(&repo, r#"["no-such-agent-program", "{prompt}"]"#, "");
    let out = repo.streams(&["run"]);
    out.assert_code(2);
    assert!(
        out.stderr
            .contains("agent program `no-such-agent-program` was not found on PATH"),
        "{out}"
    );
    // A program named through a placeholder is only known at run time: the task fails then.
    one_stream(
        &repo,
        r#"["{worktree}/no-such-agent-program", "{prompt}"]"#,
        "",
    );
    let out = repo.streams(&["run"]);
    out.assert_code(4);
    assert!(
        out.stderr_redacted().contains(
            "could not start the agent: `[REPO].streams/p/api/no-such-agent-program` was not found"
        ),
        "{out}"
    );
}

#[test]
fn a_hanging_agent_times_out() {
    let repo = app_repo();
    one_stream(
        &repo,
        r#"["act", "hang"]"#,
        "timeout = \"1s\"\ngrace = \"500ms\"",
    );
    let out = repo.streams(&["run"]);
    out.assert_code(4);
    assert!(
        out.stderr
            .contains("failed api (task 1): timed out after 1.0s"),
        "{out}"
    );
}

#[test]
fn an_agent_silent_for_too_long_hits_the_idle_timeout() {
    let repo = app_repo();
    one_stream(
        &repo,
        r#"["act", "say", "thinking", "hang"]"#,
        "idle_timeout = \"1s\"\ngrace = \"500ms\"",
    );
    let out = repo.streams(&["run"]);
    out.assert_code(4);
    assert!(
        out.stderr
            .contains("failed api (task 1): no output for 1.0s (idle timeout)"),
        "{out}"
    );
}

#[test]
fn an_agent_ignoring_sigterm_is_killed_after_the_grace_period() {
    let repo = app_repo();
    let pidfile = repo.root.parent().unwrap().join("agent.pid");
    let agent = format!(r#"["act", "ignore-term", "{}", "hang"]"#, pidfile.display());
    one_stream(&repo, &agent, "timeout = \"1s\"\ngrace = \"500ms\"");
    let out = repo.streams(&["run"]);
    out.assert_code(4);
    assert!(out.stderr.contains("timed out after 1.0s"), "{out}");
    let pid = read_pid(&pidfile);
    assert!(
        !process_alive(pid),
        "the agent that ignored SIGTERM is still alive"
    );
}

#[test]
fn a_grandchild_left_running_is_stopped_with_its_agent() {
    let repo = app_repo();
    let pidfile = repo.root.parent().unwrap().join("grandchild.pid");
    let agent = format!(
        r#"["act", "grandchild", "{}", "write", "src/api/x.rs", "x"]"#,
        pidfile.display()
    );
    one_stream(&repo, &agent, "grace = \"500ms\"");
    repo.streams(&["run"]).assert_code(0);
    let pid = read_pid(&pidfile);
    // Killed (and reaped by init): poll briefly rather than assume instant reaping.
    assert_gone(pid, "the grandchild to die");
}

#[test]
fn an_agent_flooding_stdout_is_logged_and_does_not_block() {
    let repo = app_repo();
    one_stream(
        &repo,
        r#"["act", "flood", "8", "write", "src/api/x.rs", "x"]"#,
        "",
    );
    let out = repo.streams(&["run"]);
    out.assert_code(0);
    let run = run_dir(&repo);
    let size = std::fs::metadata(run.join("logs/api/1.log")).unwrap().len();
    assert!(size >= 8 * 1024 * 1024, "log holds {size} bytes");
    // The flood never reaches the user's terminal.
    assert!(
        out.stderr.len() < 10_000,
        "stderr has {} bytes",
        out.stderr.len()
    );
}

#[test]
fn a_dependent_stream_starts_from_its_dependencys_work() {
    let repo = app_repo();
    plan(
        &repo,
        r#"
[plan]
name = "p"
jobs = 2

[[stream]]
name = "api"
owns = ["src/api/**"]
depends_on = ["db"]
agent = ["act", "require", "src/db/schema.sql", "write", "src/api/users.rs", "uses schema"]
tasks = ["Use the schema"]

[[stream]]
name = "db"
owns = ["src/db/**"]
agent = ["act", "sleep", "0.3", "write", "src/db/schema.sql", "create table users;"]
tasks = ["Write the schema"]
"#,
    );
    let out = repo.streams(&["run"]);
    out.assert_code(0);
    let stderr = out.stderr;
    let db_done = stderr.find("done db").expect("db done");
    let api_started = stderr.find("started api").expect("api started");
    assert!(db_done < api_started, "{stderr}");
    // The prompt told api what db did.
    let run = run_dir(&repo);
    let prompt = std::fs::read_to_string(run.join("prompts/api/1.md")).unwrap();
    assert!(
        prompt.contains("- db:\n  - Write the schema\n  changed: src/db/schema.sql"),
        "{prompt}"
    );
}

#[test]
fn never_more_agents_at_once_than_jobs() {
    let repo = TestRepo::with_files(&[("README.md", "r\n")]);
    let dir = repo.root.parent().unwrap().join("concurrency");
    let mut text = String::from("[plan]\nname = \"p\"\njobs = 2\n");
    for i in 0..6 {
        text.push_str(&format!(
            "\n[[stream]]\nname = \"s{i}\"\nowns = [\"s{i}/**\"]\nagent = [\"act\", \"count\", \"{}\", \"write\", \"s{i}/f\", \"{i}\"]\ntasks = [\"t\"]\n",
            dir.display()
        ));
    }
    plan(&repo, &text);
    repo.streams(&["run"]).assert_code(0);
    let seen = std::fs::read_to_string(dir.join("seen")).unwrap();
    let max = seen
        .lines()
        .map(|l| l.trim().parse::<u32>().unwrap())
        .max()
        .unwrap();
    assert!(max <= 2, "saw {max} agents at once: {seen}");
    assert_eq!(seen.lines().count(), 6);
}

#[test]
fn the_users_checkout_is_never_touched() {
    let repo = app_repo();
    // A dirty checkout: staged, modified and untracked changes.
    repo.write("src/api/mod.rs", "// staged change\n");
    repo.git(&["add", "src/api/mod.rs"]);
    repo.write("README.md", "# locally modified\n");
    repo.write("scratch.txt", "untracked\n");
    one_stream(
        &repo,
        r#"["act", "write", "src/api/mod.rs", "agent version", "commit", "agent"]"#,
        "",
    );
    // Its status, HEAD, index and files.
    let checkout = || {
        (
            repo.git(&["status", "--porcelain"]),
            repo.git(&["rev-parse", "HEAD"]),
            repo.git(&["symbolic-ref", "HEAD"]),
            repo.git(&["ls-files", "-s"]),
            repo.read("src/api/mod.rs"),
            repo.read("README.md"),
        )
    };
    let before = checkout();
    repo.streams(&["run"]).assert_code(0);
    let after = checkout();
    assert_eq!(before, after);
}

#[test]
fn fifty_streams() {
    let repo = TestRepo::with_files(&[("README.md", "r\n")]);
    let mut text = String::from(
        "[plan]\nname = \"many\"\njobs = 4\nagent = [\"act\", \"write\", \"{stream}/out.txt\", \"{stream} {task_index}\"]\n",
    );
    for i in 0..50 {
        text.push_str(&format!(
            "\n[[stream]]\nname = \"s{i:02}\"\nowns = [\"s{i:02}/**\"]\ntasks = [\"t\"]\n"
        ));
    }
    plan(&repo, &text);
    let out = repo.streams(&["run", "-q"]);
    out.assert_code(0);
    let files = repo.git(&["ls-tree", "-r", "--name-only", "streams/many/integration"]);
    assert_eq!(files.lines().count(), 51);
    assert_eq!(
        repo.git(&["show", "streams/many/integration:s37/out.txt"]),
        "s37 1"
    );
    assert_eq!(
        repo.git(&["rev-list", "--count", "main..streams/many/integration"]),
        "50"
    );
}

#[test]
fn a_second_run_of_a_plan_is_refused_while_one_holds_its_lock() {
    let repo = app_repo();
    let release = repo.root.parent().unwrap().join("release");
    let agent = format!(
        r#"["act", "wait-for", "{}", "write", "src/api/x.rs", "x"]"#,
        release.display()
    );
    one_stream(&repo, &agent, "");
    let mut first = repo
        .streams_cmd(&["run"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_for(
        "the first run to start its agent",
        Duration::from_secs(20),
        || repo.workspaces("p").join("api/.git").exists().then_some(()),
    );
    let second = repo.streams(&["run"]);
    second.assert_code(5);
    assert!(
        second
            .stderr
            .contains("another streams process holds plan `p`: `streams run` (pid"),
        "{second}"
    );
    assert!(
        second.stderr.contains("hint: wait for it to finish"),
        "{second}"
    );
    std::fs::write(&release, "").unwrap();
    assert!(first.wait().unwrap().success());
}

#[test]
fn dry_run_shows_everything_and_writes_nothing() {
    let repo = app_repo().with_agent_stubs();
    plan(
        &repo,
        r#"
[plan]
name = "p"
agent = ["claude", "-p", "{prompt}", "--cwd", "{worktree}"]
shared = ["CHANGELOG.md"]

[[stream]]
name = "db"
owns = ["src/db/**"]
tasks = ["Create the users table"]

[[stream]]
name = "api"
owns = ["src/api/**"]
depends_on = ["db"]
tasks = ["Add /login"]
"#,
    );
    let refs = repo.refs();
    let out = repo.streams(&["run", "--dry-run"]);
    out.assert_code(0);
    assert_eq!(repo.refs(), refs);
    assert!(!repo.common_dir().join("streams").exists());
    let stdout = out.stdout_redacted();
    assert!(stdout.contains("stream api\n  branch:     streams/p/api\n  worktree:   [REPO].streams/p/api\n  depends on: db"), "{stdout}");
    assert!(
        stdout.contains("argv: claude -p {prompt} --cwd [REPO].streams/p/api"),
        "{stdout}"
    );
    // A summary by default: where each stream starts, the first line of each prompt.
    assert!(
        stdout.contains("  starts from: the integration tip once db is integrated"),
        "{stdout}"
    );
    assert!(stdout.contains("    prompt: Add /login\n"), "{stdout}");
    assert!(!stdout.contains("      | - src/api/**"), "{stdout}");
    // The prompts in full when asked.
    let out = repo.streams(&["run", "--dry-run", "--prompts"]);
    out.assert_code(0);
    assert_eq!(repo.refs(), refs);
    let stdout = out.stdout_redacted();
    assert!(stdout.contains("      | Add /login"), "{stdout}");
    assert!(stdout.contains("      | - src/api/**"), "{stdout}");
    assert!(stdout.contains("      | - CHANGELOG.md"), "{stdout}");
}

#[test]
fn json_events_are_one_object_per_line() {
    let repo = app_repo();
    one_stream(&repo, r#"["act", "write", "src/api/x.rs", "x"]"#, "");
    let out = repo.streams(&["run", "--json"]);
    out.assert_code(0);
    let events: Vec<serde_json::Value> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let names: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "run_started",
            "stream_started",
            "task_started",
            "task_committed",
            "integrated",
            "stream_done",
            "run_finished"
        ]
    );
    assert!(events.iter().all(|e| e["v"] == 1 && e["at"].is_u64()));
    assert_eq!(events[3]["stream"], "api");
    assert_eq!(events[3]["files"], 1);
    assert_eq!(events.last().unwrap()["status"], "integrated");
    assert_eq!(events.last().unwrap()["exit_code"], 0);
}

#[test]
fn retries_with_backoff_then_success() {
    let repo = app_repo();
    let counter = repo.root.parent().unwrap().join("runs");
    let agent = format!(
        r#"["act", "write", "src/api/try.rs", "attempt", "fail-first", "2", "{}", "75", "write", "src/api/ok.rs", "ok"]"#,
        counter.display()
    );
    one_stream(
        &repo,
        &agent,
        "retries = 2\nretry_on = [75]\nretry_backoff = \"10ms\"",
    );
    let out = repo.streams(&["run"]);
    out.assert_code(0);
    let stderr = out.stderr_redacted();
    assert!(
        stderr.contains("retrying api task 1 in [TIME] (attempt 2): agent exited with code 75"),
        "{stderr}"
    );
    assert!(
        stderr.contains("retrying api task 1 in [TIME] (attempt 3)"),
        "{stderr}"
    );
    // Each failed attempt's work was kept before the retry started over.
    assert_eq!(
        repo.git(&["show", "refs/streams/p/attempts/api/1/1:src/api/try.rs"]),
        "attempt"
    );
    assert_eq!(
        repo.git(&["show", "streams/p/integration:src/api/ok.rs"]),
        "ok"
    );
    // retries column of the table
    assert!(
        stderr
            .lines()
            .any(|l| l.starts_with("api ") && l.trim_end().ends_with('2')),
        "{stderr}"
    );
}

#[test]
fn exit_codes_outside_retry_on_are_not_retried() {
    let repo = app_repo();
    let counter = repo.root.parent().unwrap().join("runs");
    one_stream(
        &repo,
        &format!(
            r#"["act", "fail-first", "5", "{}", "3"]"#,
            counter.display()
        ),
        "retries = 2\nretry_on = [75]\nretry_backoff = \"10ms\"",
    );
    let out = repo.streams(&["run"]);
    out.assert_code(4);
    assert!(
        out.stderr
            .contains("failed api (task 1): agent exited with code 3"),
        "{out}"
    );
    assert!(!out.stderr.contains("retrying"), "{out}");
    // The agent ran once.
    assert_eq!(std::fs::read_to_string(&counter).unwrap(), "1\n");
}

#[test]
fn agents_get_the_streams_environment_and_placeholders() {
    let repo = app_repo();
    one_stream(
        &repo,
        r#"["act", "env", "src/api/env.txt", "write", "src/api/args.txt", "{stream}|{task_index}|{prompt_file}|{worktree}"]"#,
        "",
    );
    repo.streams(&["run"]).assert_code(0);
    let env = repo.git(&["show", "streams/p/integration:src/api/env.txt"]);
    let wt = repo.workspaces("p").join("api");
    assert!(env.contains("STREAMS_PLAN=p\n"), "{env}");
    assert!(env.contains("STREAMS_STREAM=api\n"), "{env}");
    assert!(env.contains("STREAMS_TASK_INDEX=1\n"), "{env}");
    assert!(
        env.contains(&format!("STREAMS_WORKTREE={}\n", wt.display())),
        "{env}"
    );
    assert!(
        env.contains("STREAMS_INTEGRATION=streams/p/integration\n"),
        "{env}"
    );
    assert!(
        env.contains(&format!(
            "STREAMS_BASE={}\n",
            repo.git(&["rev-parse", "main"])
        )),
        "{env}"
    );
    assert!(env.contains("STREAMS_RUN_ID="), "{env}");
    let prompt_file = env
        .lines()
        .find_map(|l| l.strip_prefix("STREAMS_PROMPT_FILE="))
        .unwrap();
    let args = repo.git(&["show", "streams/p/integration:src/api/args.txt"]);
    assert_eq!(args, format!("api|1|{prompt_file}|{}", wt.display()));
    let prompt = std::fs::read_to_string(prompt_file).unwrap();
    assert!(prompt.starts_with("Do the api work\n"), "{prompt}");
}

#[test]
fn fail_fast_starts_nothing_new_after_a_failure() {
    let repo = app_repo();
    plan(
        &repo,
        r#"
[plan]
name = "p"
jobs = 1

[[stream]]
name = "api"
owns = ["src/api/**"]
priority = 10
agent = ["act", "exit", "1"]
tasks = ["fails"]

[[stream]]
name = "db"
owns = ["src/db/**"]
agent = ["act", "write", "src/db/x", "x"]
tasks = ["never runs"]
"#,
    );
    let out = repo.streams(&["run", "--fail-fast"]);
    out.assert_code(4);
    assert!(
        out.stderr
            .contains("skipped db: not started: --fail-fast stopped the run after a failure"),
        "{out}"
    );
    assert!(!out.stderr.contains("started db"), "{out}");
}

#[test]
fn the_report_is_written_and_appended_to_the_github_step_summary() {
    let mut repo = app_repo();
    let summary = repo.root.parent().unwrap().join("summary.md");
    repo.env
        .push(("GITHUB_STEP_SUMMARY".into(), summary.display().to_string()));
    one_stream(&repo, r#"["act", "write", "src/api/x.rs", "x"]"#, "");
    repo.streams(&["run"]).assert_code(0);
    let run = run_dir(&repo);
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["schema"], 1);
    assert_eq!(report["status"], "integrated");
    assert_eq!(report["streams"][0]["name"], "api");
    assert_eq!(report["streams"][0]["commits"], 1);
    let md = std::fs::read_to_string(run.join("report.md")).unwrap();
    assert!(md.contains("| api | integrated | 1/1 | 1 | 1 |"), "{md}");
    assert_eq!(std::fs::read_to_string(summary).unwrap(), md);
}

#[test]
fn running_the_same_plan_again_reuses_the_worktrees() {
    let repo = app_repo();
    one_stream(&repo, r#"["act", "write", "src/api/x.rs", "x"]"#, "");
    repo.streams(&["run"]).assert_code(0);
    let wt = repo.workspaces("p").join("api");
    // An ignored build cache in the worktree survives reuse: proof it was not recreated.
    std::fs::write(repo.common_dir().join("info/exclude"), "build-cache/\n").unwrap();
    std::fs::create_dir_all(wt.join("build-cache")).unwrap();
    let marker = wt.join("build-cache/marker");
    std::fs::write(&marker, "cache").unwrap();
    let out = repo.streams(&["run", "--restart"]);
    out.assert_code(0);
    assert!(
        marker.exists(),
        "the worktree was recreated instead of reused"
    );
    // The second run kept nothing of the first: it started again from main.
    assert_eq!(
        repo.git(&["rev-list", "--count", "main..streams/p/integration"]),
        "1"
    );
}

#[test]
fn the_whole_output_of_a_simple_run() {
    let repo = app_repo();
    plan(
        &repo,
        r#"
[plan]
name = "p"
jobs = 1

[[stream]]
name = "db"
owns = ["src/db/**"]
agent = ["act", "write", "src/db/schema.sql", "create table users;", "commit", "Add the users table"]
tasks = ["Create the users table"]

[[stream]]
name = "api"
owns = ["src/api/**"]
depends_on = ["db"]
agent = ["act", "write", "src/api/login.rs", "fn login() {}"]
# The second task finds its file written: nothing to change.
allow_empty = true
tasks = ["Add /login", "Test /login"]
"#,
    );
    let out = repo.streams(&["run"]);
    insta::assert_snapshot!(out.to_string());
}

/// A merge stopped for conflicts (or a `stash pop` that conflicted) is not finished work:
/// committing over it would record half a merge, conflict markers included.
#[test]
fn an_agent_that_leaves_conflicts_unresolved_fails_and_its_work_is_kept() {
    for (action, what) in [
        ("merge-conflict", "a merge"),
        ("stash-conflict", "unresolved conflicts (src/api/c.rs)"),
    ] {
        let repo = app_repo();
        let start = repo.git(&["rev-parse", "HEAD"]);
        one_stream(
            &repo,
            &format!(r#"["act", "{action}", "src/api/c.rs"]"#),
            "",
        );
        let out = repo.streams(&["run"]);
        out.assert_code(4);
        let stderr = out.stderr_redacted();
        assert!(
            stderr.contains(&format!(
                "failed api: left {what} unfinished; its work is kept on refs/streams/p/rejected/api/1"
            )),
            "{action}: {stderr}"
        );
        // Nothing of it reached the integration branch; everything is on the kept ref: the
        // agent's commit and the file as it left it.
        assert_eq!(repo.git(&["rev-parse", "streams/p/integration"]), start);
        let kept = "refs/streams/p/rejected/api/1";
        assert!(
            repo.git(&["log", "--format=%s", kept]).contains("our side"),
            "{action}"
        );
        assert!(
            repo.git(&["show", &format!("{kept}:src/api/c.rs")])
                .contains("ours"),
            "{action}"
        );
        // The worktree is back at the task's start, with no merge left half done in it.
        let worktree = repo.workspaces("p").join("api");
        assert_eq!(repo.git_in(&worktree, &["status", "--porcelain"]), "");
        assert_eq!(repo.git_in(&worktree, &["rev-parse", "HEAD"]), start);
        assert!(
            repo.git_output_in(&worktree, &["rev-parse", "-q", "--verify", "MERGE_HEAD"])
                .stdout
                .is_empty(),
            "{action}"
        );
    }
}

/// A `merge --squash` the agent did not commit is its work, committed like any other; the
/// message git keeps for the next commit is cleared as `git commit` would clear it.
#[test]
fn a_squash_merge_left_uncommitted_is_committed_and_its_message_cleared() {
    let repo = app_repo();
    one_stream(&repo, r#"["act", "squash-merge", "src/api/s.rs"]"#, "");
    repo.streams(&["run"]).assert_code(0);
    assert_eq!(
        repo.git(&["show", "streams/p/integration:src/api/s.rs"]),
        "squashed"
    );
    let admin = repo.workspaces("p").join("api/.git");
    assert!(
        admin.join("HEAD").exists(),
        "not the workspace's git dir: {admin:?}"
    );
    assert!(!admin.join("SQUASH_MSG").exists());
}

/// A rebase, `git am` or cherry-pick sequence stopped half way leaves state that outlives a
/// reset. The task fails saying so, with every commit the agent made kept (a rebase detaches
/// HEAD, so its own commits are only on the stream branch, which goes back to the start), and
/// the state must not follow the worktree into the next run.
#[test]
fn an_operation_left_half_done_is_reported_kept_and_cleared() {
    for (action, what) in [
        ("rebase-conflict", "a rebase"),
        ("am-conflict", "a patch application (git am)"),
        (
            "pick-conflict",
            "a cherry-pick or revert of several commits",
        ),
    ] {
        let repo = app_repo();
        one_stream(
            &repo,
            &format!(r#"["act", "{action}", "src/api/c.rs"]"#),
            "",
        );
        let out = repo.streams(&["run"]);
        out.assert_code(4);
        assert!(
            out.stderr.contains(&format!(
                "failed api: left {what} unfinished; its work is kept on refs/streams/p/rejected/api/1"
            )),
            "{action}: {out}"
        );
        let kept = repo.git(&["log", "--format=%s", "refs/streams/p/rejected/api/1"]);
        assert!(kept.contains("our side"), "{action}: {kept}");
        let worktree = repo.workspaces("p").join("api");
        assert_eq!(repo.git_in(&worktree, &["status", "--porcelain"]), "");
        // The same worktree, a well-behaved agent: the run succeeds.
        one_stream(&repo, r#"["act", "write", "src/api/ok.rs", "ok"]"#, "");
        let again = repo.streams(&["run"]);
        again.assert_code(0);
        assert_eq!(
            repo.git(&["show", "streams/p/integration:src/api/ok.rs"]),
            "ok",
            "{action}"
        );
    }
}

/// A file git itself shows as changed right after a checkout (committed with CRLF, then put
/// under a `text` rule) is not blamed on the agent: streams reads the files against its own
/// record of the checkout, so a file the agent never touched is not read again, and its commit
/// holds the agent's work alone.
#[test]
fn files_that_change_on_checkout_are_not_blamed_on_the_agent() {
    let repo = app_repo();
    repo.write("src/db/win.txt", "a\r\nb\r\n");
    repo.commit_all("a CRLF file");
    repo.write(".gitattributes", "*.txt text\n");
    // Only the rule: `add -A` would renormalise the file too.
    repo.git(&["add", ".gitattributes"]);
    repo.git(&["commit", "-q", "-m", "line-ending rules"]);
    one_stream(&repo, r#"["act", "write", "src/api/y.rs", "y"]"#, "");
    let out = repo.streams(&["run"]);
    out.assert_code(0);
    assert!(!out.stderr.contains("does not own"), "{out}");
    assert_eq!(
        repo.git(&["diff", "--name-only", "main", "streams/p/integration"]),
        "src/api/y.rs"
    );
}

#[test]
fn work_kept_on_a_ref_is_never_overwritten_by_a_later_run() {
    let repo = app_repo();
    let counter = repo.root.parent().unwrap().join("n");
    // Each run writes something different outside its ownership.
    one_stream(
        &repo,
        &format!(
            r#"["act", "fail-first", "0", "{}", "0", "env", "src/db/stolen-{{task_index}}.txt"]"#,
            counter.display()
        ),
        "",
    );
    repo.streams(&["run"]).assert_code(4);
    let first = repo.git(&["rev-parse", "refs/streams/p/rejected/api/1"]);
    let out = repo.streams(&["run"]);
    out.assert_code(4);
    assert!(
        out.stderr
            .contains("its work is kept on refs/streams/p/rejected/api/1-2"),
        "{out}"
    );
    assert_eq!(
        repo.git(&["rev-parse", "refs/streams/p/rejected/api/1"]),
        first
    );
    assert_ne!(
        repo.git(&["rev-parse", "refs/streams/p/rejected/api/1-2"]),
        first
    );
}

#[test]
fn a_process_escaping_the_agents_group_with_its_output_open_does_not_hang_the_task() {
    let repo = app_repo();
    let pidfile = repo.root.parent().unwrap().join("escaped.pid");
    let agent = format!(
        r#"["act", "escape", "{}", "write", "src/api/x.rs", "x"]"#,
        pidfile.display()
    );
    one_stream(&repo, &agent, "grace = \"500ms\"");
    let mut child = repo
        .streams_cmd(&["run"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // The escaped process sleeps for an hour: a run that waited for it would never end.
    let status = wait_for("the run to end", Duration::from_secs(60), || {
        child.try_wait().unwrap()
    });
    assert_eq!(status.code(), Some(0));
    let pid = read_pid(&pidfile);
    assert_gone(pid, "the escaped process to die");
}

#[test]
fn a_very_long_task_works_through_the_prompt_file_and_says_why_it_cannot_be_an_argument() {
    let repo = app_repo();
    // Just under 128 KiB, the kernel's limit for one argument or environment string: the text
    // alone passes, the prompt made of it (with what the stream owns, ...) does not.
    let long = format!("Do this long thing.\n{}\n", "word ".repeat(26_190));
    assert!(long.len() < 128 * 1024);
    repo.write("prompts/long.md", &long);
    plan(
        &repo,
        r#"
[plan]
name = "p"
jobs = 1

[[stream]]
name = "api"
owns = ["src/api/**"]
[[stream.task]]
prompt_file = "prompts/long.md"
agent = ["act", "require", "{prompt_file}", "write", "src/api/done", "read it from the file"]

[[stream]]
name = "db"
owns = ["src/db/**"]
[[stream.task]]
prompt_file = "prompts/long.md"
agent = ["act", "say", "{prompt}"]
"#,
    );
    let out = repo.streams(&["run"]);
    out.assert_code(4);
    assert_eq!(
        repo.git(&["show", "streams/p/integration:src/api/done"]),
        "read it from the file"
    );
    assert!(
        out.stderr.contains("failed db (task 1): could not start the agent: its command line is too long for the system"),
        "{out}"
    );
    assert!(
        out.stderr.contains("pass the prompt with {prompt_file}"),
        "{out}"
    );
}

#[test]
fn a_prompt_past_the_argument_limit_is_refused_before_the_run() {
    // A 170 KiB task given as `{prompt}` passed `plan` and failed only when the run came to
    // it: the system refuses any argument past 128 KiB, so the plan cannot run it.
    let repo = app_repo().with_agent_stubs();
    let long = format!("Do this long thing.\n{}\n", "word ".repeat(34 * 1024));
    repo.write("prompts/long.md", &long);
    let text = r#"
[plan]
name = "p"
agent = ["act", "say", "{prompt}"]

[[stream]]
name = "api"
owns = ["src/api/**"]
tasks = ["LONG"]

[[stream]]
name = "db"
owns = ["src/db/**"]
[[stream.task]]
prompt_file = "prompts/long.md"

# A preset's CLI is given the prompt as an argument too.
[[stream]]
name = "ui"
owns = ["src/ui/**"]
agent = "codex"
tasks = ["LONG"]
"#;
    plan(&repo, &text.replace("LONG", &"word ".repeat(34 * 1024)));
    for args in [&["plan"][..], &["run", "--dry-run"], &["run"]] {
        let out = repo.streams(args);
        out.assert_code(2);
        assert!(
            out.stderr.contains(
                "error: task 1 of stream `api` gives its agent the prompt as one argument (`{prompt}`), and its text alone is 170 KiB: the system refuses an argument longer than 128 KiB"
            ),
            "{args:?}: {out}"
        );
        assert!(
            out.stderr.contains(
                "error: task 1 of stream `db` gives its agent the prompt as one argument (`{prompt}`), and its prompt file prompts/long.md alone is 170 KiB"
            ),
            "{args:?}: {out}"
        );
        assert!(
            out.stderr.contains(
                "error: task 1 of stream `ui` gives its agent the prompt as one argument"
            ),
            "{args:?}: {out}"
        );
        assert!(
            out.stderr
                .contains("help: pass it as a file: `{prompt_file}`"),
            "{out}"
        );
    }
    assert_eq!(
        repo.git(&["branch", "--list", "streams/*"]),
        "",
        "a run started"
    );
}

#[test]
fn prompt_files_are_read_as_they_were_when_the_run_started() {
    let repo = app_repo();
    repo.write("prompts/db.md", "Write the schema\n");
    let prompt = repo.path("prompts/db.md");
    // api runs first and, like a person switching branches meanwhile, makes the file vanish.
    plan(
        &repo,
        &format!(
            r#"
[plan]
name = "p"
jobs = 1

[[stream]]
name = "api"
owns = ["src/api/**"]
priority = 1
agent = ["act", "rm", "{}", "write", "src/api/x", "x"]
tasks = ["first"]

[[stream]]
name = "db"
owns = ["src/db/**"]
agent = ["act", "write", "src/db/schema.sql", "schema"]
[[stream.task]]
prompt_file = "prompts/db.md"
"#,
            prompt.display()
        ),
    );
    let out = repo.streams(&["run"]);
    out.assert_code(0);
    assert!(!prompt.exists());
    let run = run_dir(&repo);
    assert!(
        std::fs::read_to_string(run.join("prompts/db/1.md"))
            .unwrap()
            .starts_with("Write the schema\n")
    );
}

/// On a terminal the run draws its live view (a line per stream, an overall bar) and still ends
/// with the summary; the person's terminal gets every stream's outcome.
#[test]
fn on_a_terminal_the_run_draws_a_live_view() {
    use std::io::Read;
    use std::os::fd::OwnedFd;

    let repo = app_repo();
    plan(
        &repo,
        r#"
[plan]
name = "p"
jobs = 2

[[stream]]
name = "api"
owns = ["src/api/**"]
agent = ["act", "write", "src/api/a.rs", "a", "sleep", "0.3"]
# The second task finds its file written: nothing to change.
allow_empty = true
tasks = ["Write a", "Write b"]

[[stream]]
name = "db"
owns = ["src/db/**"]
agent = ["act", "write", "src/db/d.rs", "d"]
tasks = ["Write d"]
"#,
    );
    let size = nix::pty::Winsize {
        ws_row: 24,
        ws_col: 100,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    let pty = nix::pty::openpty(Some(&size), None).unwrap();
    let mut cmd = repo.streams_cmd(&["run"]);
    cmd.env("TERM", "xterm")
        .stdout(OwnedFd::try_clone(&pty.slave).unwrap())
        .stderr(pty.slave);
    let mut child = cmd.spawn().unwrap();
    // `cmd` holds the last copies of the terminal's slave side: once it and the child are gone,
    // reading the master side ends.
    drop(cmd);
    let mut master = std::fs::File::from(pty.master);
    let mut screen = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match master.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => screen.extend_from_slice(&buf[..n]),
            // Linux reports EIO once the slave side is closed.
            Err(_) => break,
        }
    }
    let status = child.wait().unwrap();
    let screen = String::from_utf8_lossy(&screen);
    assert_eq!(status.code(), Some(0), "{screen}");
    // The overall bar and the per-stream lines were drawn...
    assert!(screen.contains("tasks"), "no overall bar:\n{screen}");
    assert!(
        screen.contains("task 1/2: Write a"),
        "no line for api:\n{screen}"
    );
    // ...with cursor movement (redrawn in place, not printed line by line)...
    assert!(screen.contains("\x1b["), "no redraws:\n{screen}");
    // ...and the run still ends with the summary a person reads.
    assert!(screen.contains("integrated"), "{screen}");
    assert!(
        screen.contains("git log --stat"),
        "no next steps in:\n{screen}"
    );
    assert_eq!(
        repo.git(&["show", "streams/p/integration:src/db/d.rs"]),
        "d"
    );
}
