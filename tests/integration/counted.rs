//! What a run costs in git processes, counted (issue 23's speed targets): every git process
//! streams runs is logged under `STREAMS_LOG=streams::git=debug` (`git ARGS in DIR: T ms`);
//! these tests hold the steps around the streams (the start, the report) to the processes they
//! need, not one per stream and question. Counted, never timed.

use crate::common::{CmdOutput, TestRepo};
use crate::support::plans::plan;
use crate::support::repos::app_repo;
use crate::support::runs::run_dir;

/// Three streams of one task each, one after the other; each writes a file of its own (and
/// `db` renames one, so the report has a rename to show).
fn three_streams(repo: &TestRepo) {
    plan(
        repo,
        r#"
[plan]
name = "p"
jobs = 1

[[stream]]
name = "api"
owns = ["src/api/**"]
agent = ["act", "write", "src/api/login.rs", "fn login() {}\n"]
tasks = ["Add login"]

[[stream]]
name = "db"
owns = ["src/db/**"]
agent = ["act", "mv", "src/db/mod.rs", "src/db/store.rs", "write", "src/db/schema.sql", "create table users;\n"]
tasks = ["Add the schema"]

[[stream]]
name = "ui"
owns = ["src/ui/**"]
agent = ["act", "write", "src/ui/login.html", "<form></form>\n"]
tasks = ["Add the login page"]
"#,
    );
    repo.commit_all("plan");
}

fn run_counted(repo: &TestRepo, args: &[&str]) -> CmdOutput {
    let out = repo
        .streams_cmd(args)
        .env("STREAMS_LOG", "streams::git=debug")
        .output()
        .unwrap();
    CmdOutput::new(out, repo)
}

/// The git processes of a run's log whose arguments contain every one of `words`.
fn git_runs<'a>(stderr: &'a str, words: &[&str]) -> Vec<&'a str> {
    stderr
        .lines()
        .filter_map(|line| {
            let (_, rest) = line.split_once(" git ")?;
            let (args, _) = rest.rsplit_once(" in ")?;
            let args: Vec<&str> = args.split(' ').collect();
            words.iter().all(|w| args.contains(w)).then_some(line)
        })
        .collect()
}

/// The report after the run (report.md, report.json, report.html) reads each stream's change
/// from one git process, its files, lines and patch together, and counts the files it lists in
/// process: before, four processes a stream (two `diff --numstat -M`, a `diff -M`, a
/// `diff --name-only`), and one more as each stream finished.
#[test]
fn the_report_reads_each_streams_change_from_one_git_process() {
    let repo = app_repo();
    three_streams(&repo);
    let out = run_counted(&repo, &["run"]);
    out.assert_code(0);
    let renames = git_runs(&out.stderr, &["diff", "-M"]);
    assert_eq!(renames.len(), 3, "one -M diff a stream:\n{}", out.stderr);
    assert!(
        renames
            .iter()
            .all(|l| l.contains("--numstat") && l.contains(" -p ")),
        "the files and the patch come from the same process:\n{}",
        renames.join("\n")
    );
    let listed = git_runs(&out.stderr, &["diff", "--name-only"]);
    assert!(listed.is_empty(), "{}", listed.join("\n"));

    // What they read is all there: report.md counts each stream's file, report.html shows
    // each stream's patch beside its files.
    let dir = run_dir(&repo);
    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).unwrap()).unwrap();
    let files: Vec<u64> = json["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["files"].as_u64().unwrap_or_default())
        .collect();
    // `db` renamed a file: its old and new paths count, as `git diff --name-only` lists them.
    assert_eq!(files, [1, 3, 1], "{json:#}\n{md}");
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    for line in [
        "fn login() {}",
        "create table users;",
        "src/db/mod.rs",
        "&lt;form&gt;&lt;/form&gt;",
    ] {
        assert!(html.contains(line), "report.html lacks {line}");
    }
}

/// `run --restart` keeps the last run's work that no branch of the user's holds, and finds
/// what the user's branches hold in one walk in process: at most one `for-each-ref
/// --contains` (where the integration tip went), not one per branch of the plan.
#[test]
fn a_restart_finds_what_the_users_branches_hold_without_a_git_process_a_branch() {
    let repo = app_repo();
    three_streams(&repo);
    repo.streams(&["run"]).assert_code(0);
    let tip = repo.git(&["rev-parse", "streams/p/integration"]);
    // Work on two stream branches beyond what was integrated: `db`'s the user took on a
    // branch of their own (under a nested name: every branch counts), `api`'s nobody holds.
    let beyond = |branch: &str| {
        let tree = format!("streams/p/{branch}^{{tree}}");
        let parent = format!("streams/p/{branch}");
        let commit = repo.git(&["commit-tree", "-p", &parent, "-m", "more", &tree]);
        repo.git(&[
            "update-ref",
            &format!("refs/heads/streams/p/{branch}"),
            &commit,
        ]);
        commit
    };
    let (db, api) = (beyond("db"), beyond("api"));
    repo.git(&["branch", "people/taken", &db]);

    let out = run_counted(&repo, &["run", "--restart"]);
    out.assert_code(0);
    let contains = git_runs(&out.stderr, &["--contains"]);
    assert!(contains.len() <= 1, "{}", contains.join("\n"));
    let kept = repo.git(&[
        "for-each-ref",
        "--format=%(refname) %(objectname)",
        "refs/streams/p/previous/",
    ]);
    assert!(
        kept.lines()
            .any(|l| l.ends_with(&format!("/integration {tip}"))),
        "the integration tip is kept:\n{kept}"
    );
    assert!(
        !kept.contains(&db),
        "what the user's branch holds is not kept again:\n{kept}"
    );
    assert!(
        kept.lines().any(|l| l.ends_with(&format!("/api {api}"))),
        "what no branch holds is kept:\n{kept}"
    );
}

/// Who commits is asked of git once a run (`git var`, then remembered for a minute), not at
/// each task's commit and again at each integration: before, two processes a task.
#[test]
fn a_run_asks_git_who_commits_once() {
    let repo = app_repo();
    three_streams(&repo);
    let out = run_counted(&repo, &["run"]);
    out.assert_code(0);
    let asked = git_runs(&out.stderr, &["var"]);
    assert!(asked.len() <= 2, "{}", asked.join("\n"));
    // The commits still carry the identity git gives (the tests' pinned one).
    let who = repo.git(&[
        "log",
        "-1",
        "--format=%an <%ae> %cn",
        "streams/p/integration",
    ]);
    let expected = repo.git(&["var", "GIT_AUTHOR_IDENT"]);
    assert!(
        expected.starts_with(&who[..who.find('>').unwrap() + 1]),
        "{who} / {expected}"
    );
}

/// The warning about uncommitted edits to owned files asks `git status` about the owned
/// directories only (a checkout's other files are no concern of the run's): the status names
/// them, and an edit elsewhere is still not reported while one in an owned directory is.
#[test]
fn the_uncommitted_edits_warning_looks_only_where_streams_own() {
    let repo = app_repo();
    three_streams(&repo);
    repo.write("README.md", "# changed\n");
    repo.write("src/db/mod.rs", "// changed\n");
    let out = run_counted(&repo, &["plan"]);
    out.assert_code(0);
    let status = git_runs(&out.stderr, &["status"]);
    assert_eq!(status.len(), 1, "{}", out.stderr);
    for dir in ["src/api", "src/db", "src/ui"] {
        assert!(
            status[0].contains(&format!(":(top,literal){dir}")),
            "{}",
            status[0]
        );
    }
    assert!(
        out.stderr.contains(
            "1 file that streams own has uncommitted changes in this checkout: src/db/mod.rs (db)"
        ),
        "{out}"
    );
}

/// A workspace prepared ahead of its task leaves the stream's branch alone until the task
/// starts, so each task moves it once: before, twice for every stream that waited for a slot
/// (once when its workspace was prepared at the tip of that moment, again when the task
/// started at the tip of its own). Its branch still starts at the task's start.
#[test]
fn a_workspace_prepared_ahead_moves_its_stream_branch_once() {
    let repo = app_repo();
    three_streams(&repo);
    let out = repo
        .streams_cmd(&["run"])
        .env("STREAMS_LOG", "streams::git=debug,streams::exec=debug")
        .output()
        .unwrap();
    let out = CmdOutput::new(out, &repo);
    out.assert_code(0);
    // In a git process or in process (see `ref_moves_are_written_in_process_where_git_would_do_no_more`).
    let at_start: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.contains("update-ref -m streams: stream branch at the task's start"))
        .collect();
    assert!(
        out.stderr.contains("preparing its workspace ahead"),
        "no workspace was prepared ahead:\n{}",
        out.stderr
    );
    assert_eq!(at_start.len(), 3, "one a task:\n{}", out.stderr);
    // `ui` started after `api` and `db` were integrated: its commit's parent is their tip.
    let parent = repo.git(&["rev-parse", "streams/p/ui^"]);
    let db = repo.git(&["rev-parse", "streams/p/integration~1"]);
    assert_eq!(parent, db);
}

/// The ref moves a run makes at every task (the stream branch at its start, the task's result,
/// the integration) are written in process where git would only write and log a loose ref:
/// no `git update-ref` process in a run, the reflogs as git writes them. Before, four git
/// processes a task.
#[test]
fn ref_moves_are_written_in_process_where_git_would_do_no_more() {
    let repo = app_repo();
    three_streams(&repo);
    let out = run_counted(&repo, &["run"]);
    out.assert_code(0);
    let processes = git_runs(&out.stderr, &["update-ref"]);
    assert!(processes.is_empty(), "{}", processes.join("\n"));
    let moves = out.stderr.lines().filter(|l| l.ends_with(": in process"));
    assert_eq!(moves.count(), 1 + 3 * 3, "{}", out.stderr);
    assert!(
        out.stderr.contains(
            "update-ref -m streams: integrate ui (task 1) refs/heads/streams/p/integration"
        ),
        "{}",
        out.stderr
    );
    let reflog = repo.git(&["reflog", "show", "--format=%gs", "streams/p/integration"]);
    assert!(
        reflog.contains("streams: integrate api (task 1)"),
        "{reflog}"
    );
    assert!(reflog.contains("streams: start run"), "{reflog}");
    let branch = repo.git(&["reflog", "show", "--format=%gs", "streams/p/db"]);
    assert!(branch.contains("streams: task result"), "{branch}");
}

/// A repository with a `reference-transaction` hook has every ref move go through git, which
/// runs the hook: the hook hears of the integration and of each stream branch.
#[test]
fn a_reference_transaction_hook_hears_of_every_ref_move() {
    let repo = app_repo();
    three_streams(&repo);
    let heard = repo.path("heard.txt");
    let hook = repo.path(".git/hooks/reference-transaction");
    repo.write(
        ".git/hooks/reference-transaction",
        &format!(
            "#!/bin/sh\n[ \"$1\" = committed ] && cat >> '{}'\nexit 0\n",
            heard.display()
        ),
    );
    let executable: std::fs::Permissions = std::os::unix::fs::PermissionsExt::from_mode(0o755);
    std::fs::set_permissions(&hook, executable).unwrap();
    let out = run_counted(&repo, &["run"]);
    out.assert_code(0);
    let heard = std::fs::read_to_string(&heard).unwrap();
    for name in [
        "refs/heads/streams/p/integration",
        "refs/heads/streams/p/api",
        "refs/heads/streams/p/ui",
    ] {
        assert!(heard.contains(name), "{name} not heard of:\n{heard}");
    }
    assert!(!git_runs(&out.stderr, &["update-ref"]).is_empty());
}
