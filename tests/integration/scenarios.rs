//! What a person reads in a CI log, whole, for the main scenarios of a run: a clean run, a failing
//! agent, an ownership violation, a conflict halt, `status` while halted, `continue`, `abort` and
//! `clean`. Each snapshot is the spec of that output; volatile parts are redacted by one helper
//! (`support::redact::Redactor`). Streams run one at a time wherever output order could vary.

use crate::common::TestRepo;
use crate::support::plans::plan;
use crate::support::redact::Redactor;

/// A small application: three areas owned by streams, and a shared file.
fn app() -> TestRepo {
    TestRepo::with_files(&[
        ("README.md", "# app\n"),
        ("CHANGES.md", "line 1\nline 2\nline 3\n"),
        ("src/api/mod.rs", "// api\n"),
        ("src/db/mod.rs", "// db\n"),
        ("src/ui/index.html", "<p>ui</p>\n"),
    ])
}

/// `db`, then `api` depending on it, then `ui` depending on `api`; `jobs = 1`. Each agent is the
/// scripted `act` with the given actions (comma-separated TOML strings).
fn chain(repo: &TestRepo, db: &str, api: &str, ui: &str) {
    plan(
        repo,
        &format!(
            r#"
[plan]
name = "app"
jobs = 1
shared = ["CHANGES.md"]

[[stream]]
name = "db"
owns = ["src/db/**"]
agent = ["act", {db}]
tasks = ["Create the users table"]

[[stream]]
name = "api"
owns = ["src/api/**"]
depends_on = ["db"]
agent = ["act", {api}]
tasks = ["Add /login", "Test /login"]

[[stream]]
name = "ui"
owns = ["src/ui/**"]
depends_on = ["api"]
agent = ["act", {ui}]
tasks = ["Add the login page"]
"#
        ),
    );
}

#[test]
fn a_clean_run() {
    let repo = app();
    chain(
        &repo,
        r#""write", "src/db/schema.sql", "create table users;", "commit", "Add the users table""#,
        r#""write", "src/api/login.rs", "fn login() {}", "append", "CHANGES.md", "login""#,
        r#""write", "src/ui/login.html", "<form></form>""#,
    );
    let mut redact = Redactor::new();
    let out = repo.streams(&["run"]);
    out.assert_code(0);
    insta::assert_snapshot!("clean_run", redact.output(&out));
    let status = repo.streams(&["status"]);
    status.assert_code(0);
    insta::assert_snapshot!("clean_run_status", redact.output(&status));
}

#[test]
fn a_failing_agent() {
    let repo = app();
    chain(
        &repo,
        r#""write", "src/db/schema.sql", "create table users;""#,
        r#""write", "src/api/half.rs", "half", "say", "compiling...", "say", "error: it broke", "exit", "3""#,
        r#""write", "src/ui/login.html", "<form></form>""#,
    );
    let out = repo.streams(&["run"]);
    out.assert_code(4);
    insta::assert_snapshot!("failing_agent", Redactor::new().output(&out));
}

#[test]
fn an_ownership_violation() {
    let repo = app();
    chain(
        &repo,
        r#""write", "src/db/schema.sql", "create table users;""#,
        r#""write", "src/api/login.rs", "fn login() {}", "write", "src/db/mod.rs", "// taken over by api", "write", "notes.txt", "n""#,
        r#""write", "src/ui/login.html", "<form></form>""#,
    );
    let out = repo.streams(&["run"]);
    out.assert_code(4);
    insta::assert_snapshot!("ownership_violation", Redactor::new().output(&out));
}

/// `a` and `b` both rewrite the shared file from the same base: `b` waits until `a` is
/// integrated (so the order is fixed), then its integration conflicts.
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

fn resolution_worktree(repo: &TestRepo) -> std::path::PathBuf {
    repo.workspaces("app").join(".resolve-b")
}

#[test]
fn a_conflict_halt_then_status_then_continue() {
    let repo = app();
    conflicting(&repo);
    let mut redact = Redactor::new();
    let out = repo.streams(&["run"]);
    out.assert_code(3);
    insta::assert_snapshot!("conflict_halt", redact.output(&out));

    let status = repo.streams(&["status"]);
    status.assert_code(0);
    insta::assert_snapshot!("status_while_halted", redact.output(&status));

    let wt = resolution_worktree(&repo);
    std::fs::write(wt.join("CHANGES.md"), "from a and b\n").unwrap();
    repo.git_in(&wt, &["add", "CHANGES.md"]);
    let out = repo.streams(&["continue"]);
    out.assert_code(0);
    insta::assert_snapshot!("continue", redact.output(&out));
}

#[test]
fn a_conflict_halt_then_abort() {
    let repo = app();
    conflicting(&repo);
    let mut redact = Redactor::new();
    repo.streams(&["run"]).assert_code(3);
    let out = repo.streams(&["abort"]);
    out.assert_code(0);
    insta::assert_snapshot!("abort", redact.output(&out));
    // Abort removed the integration branch it had created: status says so, and shows no
    // stream as integrated.
    let status = repo.streams(&["status"]);
    status.assert_code(0);
    insta::assert_snapshot!("status_after_abort", redact.output(&status));
}

/// A stream left out with `streams skip` is the person's choice: reported as skipped, not as a
/// failure, and the run exits 0.
#[test]
fn a_conflict_halt_then_skip() {
    let repo = app();
    conflicting(&repo);
    let mut redact = Redactor::new();
    repo.streams(&["run"]).assert_code(3);
    let out = repo.streams(&["skip", "b"]);
    out.assert_code(0);
    insta::assert_snapshot!("skip", redact.output(&out));
    let status = repo.streams(&["status"]);
    status.assert_code(0);
    insta::assert_snapshot!("status_after_skip", redact.output(&status));
}

#[test]
fn clean_after_a_run_with_rejected_work() {
    let repo = app();
    chain(
        &repo,
        r#""write", "src/db/schema.sql", "create table users;""#,
        r#""write", "src/api/login.rs", "fn login() {}", "write", "notes.txt", "n""#,
        r#""write", "src/ui/login.html", "<form></form>""#,
    );
    repo.streams(&["run"]).assert_code(4);
    let mut redact = Redactor::new();
    let out = repo.streams(&["clean"]);
    out.assert_code(0);
    insta::assert_snapshot!("clean", redact.output(&out));
    let out = repo.streams(&["clean", "--force"]);
    out.assert_code(0);
    insta::assert_snapshot!("clean_force", redact.output(&out));
}
