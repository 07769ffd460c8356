//! Reviewing a run: `show`, `diff`, `logs`, `status --watch` and `pr`, against real runs of
//! scripted agents in temporary repositories.

use crate::common::TestRepo;
use crate::support::plans::plan;
use crate::support::redact::Redactor;

/// A small application with three owned areas and a shared file.
fn app() -> TestRepo {
    TestRepo::with_files(&[
        ("README.md", "# app\n"),
        ("CHANGES.md", "line 1\n"),
        ("src/api/mod.rs", "// api\n"),
        ("src/db/mod.rs", "// db\nold line\n"),
        ("src/ui/index.html", "<p>ui</p>\n"),
    ])
}

/// `db` (two tasks, one committed by the agent, one left for streams to commit), `api`
/// depending on it, which also writes outside its lane and is rejected, and `ui`, which runs
/// on its own. `jobs = 1`, so the order is fixed.
fn reviewed_run(repo: &TestRepo) {
    plan(
        repo,
        r#"
[plan]
name = "app"
jobs = 1
shared = ["CHANGES.md"]

[[stream]]
name = "db"
owns = ["src/db/**"]
agent = ["act", "say", "working on {task}", "write", "src/db/schema.sql", "create table users;", "write", "src/db/mod.rs", "// db", "append", "CHANGES.md", "db: {task}", "say", "done"]
tasks = ["Create the users table", "Index the users table"]

[[stream]]
name = "api"
owns = ["src/api/**"]
depends_on = ["db"]
agent = ["act", "write", "src/api/login.rs", "fn login() {}", "write", "src/ui/login.html", "<form></form>", "say", "wrote the login page too"]
tasks = ["Add /login"]

[[stream]]
name = "ui"
owns = ["src/ui/**"]
agent = ["act", "binary", "src/ui/logo.png", "write", "src/ui/index.html", "<p>login</p>", "commit", "Link the login page", "say", "ui done"]
tasks = ["Link the login page"]
"#,
    );
}

#[test]
fn show_every_stream_of_a_finished_run() {
    let repo = app();
    reviewed_run(&repo);
    repo.streams(&["run"]).assert_code(4);
    let mut redact = Redactor::new();
    let out = repo.streams(&["show"]);
    out.assert_code(0);
    insta::assert_snapshot!("show_all", redact.output(&out));
}

#[test]
fn show_one_stream_as_json() {
    let repo = app();
    reviewed_run(&repo);
    repo.streams(&["run"]).assert_code(4);
    let out = repo.streams(&["show", "db", "--json"]);
    out.assert_code(0);
    let json: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(json["schema"], 1);
    let streams = json["streams"].as_array().unwrap();
    assert_eq!(streams.len(), 1);
    let db = &streams[0];
    assert_eq!(db["name"], "db");
    assert_eq!(db["state"], "integrated");
    // Both tasks' commits, from the base of the run.
    let base = repo.git(&["rev-parse", "main"]);
    assert_eq!(db["started_from"], base.as_str());
    let subjects: Vec<&str> = db["commits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["subject"].as_str().unwrap())
        .collect();
    assert_eq!(
        subjects,
        ["Create the users table", "Index the users table"]
    );
    let files: Vec<(&str, u64, u64)> = db["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["path"].as_str().unwrap(),
                f["insertions"].as_u64().unwrap(),
                f["deletions"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        files,
        [
            ("CHANGES.md", 2, 0),
            ("src/db/mod.rs", 0, 1),
            ("src/db/schema.sql", 1, 0)
        ]
    );
    let task = &db["tasks"][1];
    assert_eq!(task["number"], 2);
    assert_eq!(task["status"], "integrated");
    assert_eq!(task["attempts"], 1);
    assert_eq!(task["log_tail"][0], "working on Index the users table");
    assert!(
        task["log"].as_str().unwrap().ends_with("logs/db/2.log"),
        "{task}"
    );
    // Times come from the run's timeline: the second task starts after the first ends.
    let first_end = db["tasks"][0]["finished_at"].as_u64().unwrap();
    let start = task["started_at"].as_u64().unwrap();
    assert!(first_end <= start && start <= task["finished_at"].as_u64().unwrap());
    assert_eq!(db["checks"], serde_json::json!([]));

    // The rejected stream says what it touched and where its work is kept; that ref exists.
    let out = repo.streams(&["show", "api", "--json"]);
    let json: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let api = &json["streams"][0];
    assert_eq!(api["state"], "failed");
    assert_eq!(api["depends_on"], serde_json::json!(["db"]));
    let rejection = &api["rejections"][0];
    assert_eq!(rejection["paths"][0]["path"], "src/ui/login.html");
    assert_eq!(rejection["paths"][0]["owner"], "ui");
    let kept = rejection["kept"].as_str().unwrap();
    repo.git(&["rev-parse", "--verify", kept]);
    assert_eq!(api["kept"][0]["name"], kept);
}

#[test]
fn show_names_the_streams_and_runs_it_knows() {
    let repo = app();
    let out = repo.streams(&["show"]);
    out.assert_code(5);
    reviewed_run(&repo);
    repo.streams(&["run"]).assert_code(4);
    let mut redact = Redactor::new();
    let mut text = redact.output(&repo.streams(&["show", "nope"]));
    text.push_str(&redact.output(&repo.streams(&["show", "--run", "20200101-000000-abcd"])));
    text.insert_str(0, &redact.output(&out));
    insta::assert_snapshot!("show_errors", text);
}

/// `a` and `b` both rewrite the shared file; `b` waits for `a`'s integration, then conflicts.
fn conflicting(repo: &TestRepo) {
    plan(
        repo,
        r#"
[plan]
name = "app"
jobs = 2
shared = ["CHANGES.md"]

[[stream]]
name = "a"
owns = ["src/api/**"]
agent = ["act", "write", "src/api/a.rs", "a", "write", "CHANGES.md", "from a"]
tasks = ["Task of a"]

[[stream]]
name = "b"
owns = ["src/db/**"]
agent = ["act", "wait-rev", "streams/app/integration:src/api/a.rs", "write", "src/db/b.rs", "b", "write", "CHANGES.md", "from b"]
tasks = ["Task of b"]
"#,
    );
}

#[test]
fn show_a_conflict_while_halted_and_once_resolved() {
    let repo = app();
    conflicting(&repo);
    repo.streams(&["run"]).assert_code(3);
    let mut redact = Redactor::new();
    let halted = repo.streams(&["show", "b"]);
    halted.assert_code(0);
    let wt = repo.workspaces("app").join(".resolve-b");
    std::fs::write(wt.join("CHANGES.md"), "from a and b\n").unwrap();
    repo.git_in(&wt, &["add", "CHANGES.md"]);
    repo.streams(&["continue"]).assert_code(0);
    let resolved = repo.streams(&["show", "b"]);
    resolved.assert_code(0);
    let text = format!("{}\n{}", redact.output(&halted), redact.output(&resolved));
    insta::assert_snapshot!("show_conflict", text);
    let json: serde_json::Value =
        serde_json::from_str(&repo.streams(&["show", "b", "--json"]).stdout).unwrap();
    let resolution = json["streams"][0]["conflict"]["resolution"]
        .as_str()
        .unwrap();
    assert_eq!(
        repo.git(&["log", "-1", "--format=%H", "streams/app/integration"]),
        resolution
    );
    assert_eq!(json["streams"][0]["conflict"]["files"][0], "CHANGES.md");
}

#[test]
fn diff_shows_a_stream_and_the_integration_branch() {
    let repo = app();
    reviewed_run(&repo);
    repo.streams(&["run"]).assert_code(4);
    let mut redact = Redactor::new();
    let stat = repo.streams(&["diff", "db", "--stat"]);
    stat.assert_code(0);
    let patch = repo.streams(&["diff", "db", "--", "src/db/schema.sql"]);
    patch.assert_code(0);
    let whole = repo.streams(&["diff", "--stat"]);
    whole.assert_code(0);
    let text = format!(
        "{}\n{}\n{}",
        redact.output(&stat),
        redact.output(&patch),
        redact.output(&whole)
    );
    insta::assert_snapshot!("diff", text);
    // The same as git's own diff of the range, byte for byte: from where ui started (after
    // db was integrated) to its tip.
    let show: serde_json::Value =
        serde_json::from_str(&repo.streams(&["show", "ui", "--json"]).stdout).unwrap();
    let from = show["streams"][0]["started_from"].as_str().unwrap();
    assert_eq!(
        repo.streams(&["diff", "ui"]).stdout.trim_end(),
        repo.git(&["diff", &format!("{from}..streams/app/ui")])
    );
    // --color is passed on to git.
    let coloured = repo.streams(&["--color", "always", "diff", "ui"]);
    assert!(coloured.stdout.contains("\u{1b}["), "{}", coloured.stdout);
    assert!(!repo.streams(&["diff", "ui"]).stdout.contains('\u{1b}'));
}

#[test]
fn diff_through_the_users_pager() {
    use std::os::unix::fs::PermissionsExt;
    let repo = app();
    reviewed_run(&repo);
    repo.streams(&["run"]).assert_code(4);
    // The user's pager (core.pager in their config) records what it was given.
    let pager = repo.home.join("pager.sh");
    let seen = repo.home.join("paged.txt");
    std::fs::write(&pager, format!("#!/bin/sh\ncat > {}\n", seen.display())).unwrap();
    std::fs::set_permissions(&pager, std::fs::Permissions::from_mode(0o755)).unwrap();
    repo.git(&["config", "core.pager", &pager.display().to_string()]);
    // git pages only to a terminal: `script` gives the command one.
    let command = format!(
        "{} --color never diff ui --stat",
        crate::common::streams_bin().display()
    );
    let mut cmd = std::process::Command::new("script");
    cmd.current_dir(&repo.root)
        .args(["-qec", &command, "/dev/null"])
        .stdin(std::process::Stdio::null());
    repo.hermetic(&mut cmd);
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let paged = std::fs::read_to_string(&seen).unwrap_or_default();
    assert!(paged.contains("src/ui/logo.png"), "{paged:?}");
    assert!(
        !paged.contains('\u{1b}'),
        "--color never reaches git: {paged:?}"
    );
}

#[test]
fn logs_of_a_task_and_of_the_last_one() {
    let repo = app();
    reviewed_run(&repo);
    repo.streams(&["run"]).assert_code(4);
    let mut redact = Redactor::new();
    let first = repo.streams(&["logs", "db", "1"]);
    first.assert_code(0);
    // Without a task: the last one that ran.
    let last = repo.streams(&["logs", "db"]);
    last.assert_code(0);
    let missing = repo.streams(&["logs", "db", "3"]);
    missing.assert_code(2);
    let text = format!(
        "{}\n{}\n{}",
        redact.output(&first),
        redact.output(&last),
        redact.output(&missing)
    );
    insta::assert_snapshot!("logs", text);
    // The file, byte for byte.
    let log = repo
        .common_dir()
        .join("streams/runs")
        .read_dir()
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path()
        .join("logs/db/2.log");
    assert_eq!(last.stdout, std::fs::read_to_string(log).unwrap());
}

#[test]
fn logs_follow_a_running_task_until_it_ends() {
    use std::io::{BufRead, BufReader, Read};
    use std::process::Stdio;
    use std::time::Duration;
    let repo = app();
    let release = repo.root.parent().unwrap().join("release");
    plan(
        &repo,
        &format!(
            r#"
[plan]
name = "app"

[[stream]]
name = "db"
owns = ["src/db/**"]
agent = ["act", "say", "before the wait", "wait-for", "{}", "say", "after the wait", "write", "src/db/x.sql", "x"]
tasks = ["Wait, then write"]
"#,
            release.display()
        ),
    );
    let mut run = repo
        .streams_cmd(&["run"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    crate::common::wait_for("the agent's first line", Duration::from_secs(20), || {
        repo.streams(&["logs", "db"])
            .stdout
            .contains("before the wait")
            .then_some(())
    });
    let mut follow = repo
        .streams_cmd(&["logs", "db", "-f"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut reader = BufReader::new(follow.stdout.take().unwrap());
    // What is there already comes first, while the task still waits.
    let mut seen = String::new();
    while !seen.contains("before the wait") {
        let mut line = String::new();
        assert!(
            reader.read_line(&mut line).unwrap() > 0,
            "ended early: {seen}"
        );
        seen.push_str(&line);
    }
    assert!(
        follow.try_wait().unwrap().is_none(),
        "-f stopped while the task ran"
    );
    std::fs::write(&release, "").unwrap();
    reader.read_to_string(&mut seen).unwrap();
    assert_eq!(follow.wait().unwrap().code(), Some(0));
    assert!(seen.contains("after the wait"), "{seen}");
    assert_eq!(run.wait().unwrap().code(), Some(0));
}

#[test]
fn status_watch_on_a_finished_run_prints_it_once_and_exits_with_its_code() {
    let repo = app();
    reviewed_run(&repo);
    repo.streams(&["run"]).assert_code(4);
    let out = repo.streams(&["status", "--watch"]);
    out.assert_code(4);
    insta::assert_snapshot!("status_watch_finished", Redactor::new().output(&out));
}

#[test]
fn status_watch_prints_one_line_per_change_until_the_run_ends() {
    use std::io::{BufRead, BufReader, Read};
    use std::process::Stdio;
    use std::time::Duration;
    let repo = app();
    let release = repo.root.parent().unwrap().join("release");
    plan(
        &repo,
        &format!(
            r#"
[plan]
name = "app"

[[stream]]
name = "db"
owns = ["src/db/**"]
agent = ["act", "write", "src/db/a.sql", "a", "commit", "First step", "wait-for", "{}", "write", "src/db/x.sql", "x"]
tasks = ["Write the schema"]
"#,
            release.display()
        ),
    );
    let mut run = repo
        .streams_cmd(&["run"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The agent's commit is in its workspace until its task ends.
    let wt = repo.workspaces("app").join("db");
    crate::common::wait_for("the agent's commit", Duration::from_secs(20), || {
        (wt.join(".git/index").exists()
            && repo
                .git_output_in(&wt, &["log", "-1", "--format=%s", "streams/app/db"])
                .stdout
                .starts_with(b"First step"))
        .then_some(())
    });
    // `show` reads it there too, while the task runs.
    let live: serde_json::Value =
        serde_json::from_str(&repo.streams(&["show", "db", "--json"]).stdout).unwrap();
    assert_eq!(live["streams"][0]["state"], "running");
    assert_eq!(live["streams"][0]["commits"][0]["subject"], "First step");
    assert_eq!(live["streams"][0]["files"][0]["path"], "src/db/a.sql");
    let mut watch = repo
        .streams_cmd(&["status", "--watch"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut reader = BufReader::new(watch.stdout.take().unwrap());
    let mut seen = String::new();
    while !seen.contains("db: 1 commit, last: First step") {
        let mut line = String::new();
        assert!(
            reader.read_line(&mut line).unwrap() > 0,
            "ended early: {seen}"
        );
        seen.push_str(&line);
    }
    assert!(seen.contains("db: running (task 1/1)\n"), "{seen}");
    std::fs::write(&release, "").unwrap();
    reader.read_to_string(&mut seen).unwrap();
    assert_eq!(watch.wait().unwrap().code(), Some(0), "{seen}");
    assert_eq!(run.wait().unwrap().code(), Some(0));
    // Each change once, in order, and the end.
    let lines: Vec<&str> = seen.lines().collect();
    let at = |needle: &str| {
        lines
            .iter()
            .position(|l| *l == needle)
            .unwrap_or_else(|| panic!("no line {needle:?} in:\n{seen}"))
    };
    assert!(
        at("db: running (task 1/1)") < at("db: integrated"),
        "{seen}"
    );
    assert_eq!(lines.last(), Some(&"run: finished: integrated"), "{seen}");
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.starts_with("db: integrated"))
            .count(),
        1,
        "{seen}"
    );
}

#[test]
fn status_watch_redraws_on_a_terminal() {
    let repo = app();
    reviewed_run(&repo);
    repo.streams(&["run"]).assert_code(4);
    let command = format!("{} status --watch", crate::common::streams_bin().display());
    let mut cmd = std::process::Command::new("script");
    cmd.current_dir(&repo.root)
        .args(["-qec", &command, "/dev/null"])
        .stdin(std::process::Stdio::null());
    repo.hermetic(&mut cmd);
    let out = cmd.output().unwrap();
    assert_eq!(out.status.code(), Some(4));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("\u{1b}[H\u{1b}[2J"), "{text:?}");
    assert!(text.contains("stream  state"), "{text:?}");
}

/// A stand-in for the GitHub CLI, first on PATH: records each call's argv in `$HOME/gh.log`
/// and answers `--version`, `auth status` (logged out when `$HOME/gh-logged-out` exists),
/// `pr list --head B` (the PR it made for B, if any), `pr create` (a new number and URL) and
/// `pr edit`.
const FAKE_GH: &str = r#"#!/bin/sh
for a in "$@"; do printf '%s\037' "$a"; done >> "$HOME/gh.log"
printf '\036' >> "$HOME/gh.log"
mkdir -p "$HOME/gh-prs"
case "$1 $2" in
"--version ") echo "gh version 2.99.0 (fake)" ;;
"auth status")
    if [ -e "$HOME/gh-logged-out" ]; then echo "You are not logged into any GitHub hosts." >&2; exit 1; fi
    echo "Logged in to github.com as tester" ;;
"pr list")
    shift 2
    while [ $# -gt 0 ]; do [ "$1" = "--head" ] && head=$2; shift; done
    for f in "$HOME"/gh-prs/*; do
        [ -e "$f" ] || continue
        if [ "$(cat "$f")" = "$head" ]; then
            n=$(basename "$f"); printf '[{"number":%s,"url":"https://github.com/o/r/pull/%s"}]\n' "$n" "$n"; exit 0
        fi
    done
    echo "[]" ;;
"pr create")
    shift 2
    while [ $# -gt 0 ]; do [ "$1" = "--head" ] && head=$2; shift; done
    n=$(( $(ls "$HOME/gh-prs" | wc -l) + 11 ))
    printf '%s' "$head" > "$HOME/gh-prs/$n"
    echo "Creating pull request for $head" >&2
    echo "https://github.com/o/r/pull/$n" ;;
"pr edit") ;;
*) echo "fake gh: unexpected $*" >&2; exit 2 ;;
esac
"#;

/// The repository of `reviewed_run` after its run, with a bare repository as remote `origin`
/// and the fake `gh` on PATH.
fn repo_with_remote() -> (TestRepo, std::path::PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let mut repo = app();
    reviewed_run(&repo);
    repo.streams(&["run"]).assert_code(4);
    let remote = repo.root.parent().unwrap().join("remote.git");
    repo.git(&["init", "-q", "--bare", &remote.display().to_string()]);
    repo.git(&["remote", "add", "origin", &remote.display().to_string()]);
    let bin = repo.home.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::write(bin.join("gh"), FAKE_GH).unwrap();
    std::fs::set_permissions(bin.join("gh"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = std::env::var("PATH").unwrap_or_default();
    repo.env
        .push(("PATH".into(), format!("{}:{path}", bin.display())));
    (repo, remote)
}

/// Each call the fake gh got, as its argv.
fn gh_calls(repo: &TestRepo) -> Vec<Vec<String>> {
    std::fs::read_to_string(repo.home.join("gh.log"))
        .unwrap_or_default()
        .split('\u{1e}')
        .filter(|c| !c.is_empty())
        .map(|c| {
            c.split('\u{1f}')
                .filter(|a| !a.is_empty())
                .map(str::to_string)
                .collect()
        })
        .collect()
}

fn is_call(argv: &[String], command: &str, sub: &str) -> bool {
    argv.len() >= 2 && argv[0] == command && argv[1] == sub
}

fn arg_after<'a>(argv: &'a [String], flag: &str) -> &'a str {
    let i = argv.iter().position(|a| a == flag).unwrap();
    &argv[i + 1]
}

#[test]
fn pr_pushes_the_streams_and_opens_one_pull_request_each_then_updates_them() {
    let (repo, remote) = repo_with_remote();
    let mut redact = Redactor::new();
    let first = repo.streams(&["pr", "--remote", "origin"]);
    first.assert_code(0);
    // Both streams with work are on the remote, at their local tips; the failed one is not.
    for stream in ["db", "ui"] {
        let branch = format!("streams/app/{stream}");
        assert_eq!(
            repo.git(&[
                "--git-dir",
                &remote.display().to_string(),
                "rev-parse",
                &branch
            ]),
            repo.git(&["rev-parse", &branch])
        );
    }
    let on_remote = repo.git(&[
        "--git-dir",
        &remote.display().to_string(),
        "for-each-ref",
        "--format=%(refname)",
    ]);
    assert!(!on_remote.contains("api"), "{on_remote}");
    let calls = gh_calls(&repo);
    let creates: Vec<&Vec<String>> = calls
        .iter()
        .filter(|c| is_call(c, "pr", "create"))
        .collect();
    assert_eq!(creates.len(), 2, "{calls:?}");
    let db = creates
        .iter()
        .find(|c| arg_after(c, "--head") == "streams/app/db")
        .unwrap();
    assert_eq!(arg_after(db, "--base"), "main");
    assert_eq!(
        arg_after(db, "--title"),
        "db: Create the users table (+1 more task)"
    );
    let body = arg_after(db, "--body");
    for text in [
        "- [x] Create the users table (integrated)",
        "- [x] Index the users table (integrated)",
        "| `src/db/schema.sql` | 1 | 0 |",
        "The stream may change only `src/db/**` and the shared `CHANGES.md`",
    ] {
        assert!(body.contains(text), "{text:?} not in:\n{body}");
    }
    insta::assert_snapshot!("pr_body_db", redact.text(body));

    // Again: the same two pull requests are edited, none is opened.
    let before = calls.len();
    let second = repo.streams(&["pr", "--remote", "origin"]);
    second.assert_code(0);
    let calls = gh_calls(&repo);
    let again = &calls[before..];
    assert!(
        again.iter().all(|c| !is_call(c, "pr", "create")),
        "{again:?}"
    );
    let edits: Vec<&str> = again
        .iter()
        .filter(|c| is_call(c, "pr", "edit"))
        .map(|c| c[2].as_str())
        .collect();
    assert_eq!(edits, ["11", "12"], "{again:?}");
    insta::assert_snapshot!(
        "pr",
        format!("{}\n{}", redact.output(&first), redact.output(&second))
    );
}

#[test]
fn pr_links_a_stream_to_the_pull_request_it_depends_on() {
    let (repo, _remote) = repo_with_remote();
    // api failed; give it work to push: a commit on its branch by hand.
    let wt = repo.root.parent().unwrap().join("api-by-hand");
    let wt_arg = wt.display().to_string();
    repo.git(&["worktree", "add", "-q", &wt_arg, "streams/app/api"]);
    std::fs::write(wt.join("src/api/login.rs"), "fn login() {}\n").unwrap();
    repo.git_in(&wt, &["add", "-A"]);
    repo.git_in(&wt, &["commit", "-q", "-m", "Add /login by hand"]);
    repo.git(&["worktree", "remove", &wt_arg]);
    repo.streams(&["pr", "--remote", "origin", "db"])
        .assert_code(0);
    repo.streams(&["pr", "--remote", "origin", "api", "--draft"])
        .assert_code(0);
    let calls = gh_calls(&repo);
    let api = calls
        .iter()
        .find(|c| is_call(c, "pr", "create") && arg_after(c, "--head") == "streams/app/api")
        .unwrap();
    assert!(api.contains(&"--draft".to_string()), "{api:?}");
    let body = arg_after(api, "--body");
    assert!(
        body.contains("Depends on #11 (stream `db`): merge that first."),
        "{body}"
    );
}

#[test]
fn pr_dry_run_and_what_it_refuses() {
    let (repo, remote) = repo_with_remote();
    let mut redact = Redactor::new();
    let dry = repo.streams(&["pr", "--remote", "origin", "--integration", "--dry-run"]);
    dry.assert_code(0);
    // Nothing pushed, gh never run.
    assert_eq!(
        repo.git(&["--git-dir", &remote.display().to_string(), "for-each-ref"]),
        ""
    );
    assert!(gh_calls(&repo).is_empty());
    let no_remote = repo.streams(&["pr", "--remote", "upstream"]);
    no_remote.assert_code(2);
    let no_work = repo.streams(&["pr", "--remote", "origin", "api"]);
    no_work.assert_code(2);
    std::fs::write(repo.home.join("gh-logged-out"), "").unwrap();
    let logged_out = repo.streams(&["pr", "--remote", "origin"]);
    logged_out.assert_code(2);
    let mut text = String::new();
    for out in [&dry, &no_remote, &no_work, &logged_out] {
        text.push_str(&redact.output(out));
        text.push('\n');
    }
    insta::assert_snapshot!("pr_dry_run_and_errors", text);
    // Logged out: nothing was pushed either.
    assert_eq!(
        repo.git(&["--git-dir", &remote.display().to_string(), "for-each-ref"]),
        ""
    );
}

#[test]
fn pr_without_gh_names_the_fix() {
    let (mut repo, _remote) = repo_with_remote();
    // PATH without the fake gh (and, on this machine, without a real one).
    repo.env.retain(|(k, _)| k != "PATH");
    let dir = repo.root.parent().unwrap().join("bin-without-gh");
    std::fs::create_dir_all(&dir).unwrap();
    let git = String::from_utf8(
        std::process::Command::new("sh")
            .args(["-c", "command -v git"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    std::os::unix::fs::symlink(git.trim(), dir.join("git")).unwrap();
    repo.env.push(("PATH".into(), dir.display().to_string()));
    let out = repo.streams(&["pr", "--remote", "origin"]);
    out.assert_code(2);
    insta::assert_snapshot!("pr_without_gh", Redactor::new().output(&out));
    // A dry run prints what would run, and says that it could not run here.
    let dry = repo.streams(&["pr", "--remote", "origin", "--dry-run"]);
    dry.assert_code(0);
    assert!(
        dry.stderr
            .contains("warning: the GitHub CLI `gh` was not found on PATH: install it"),
        "{dry}"
    );
}
