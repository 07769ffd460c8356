//! A conflict parks one stream: every other stream keeps running and integrating, the run halts
//! only when nothing else can move, and a person resolves the parked streams in any order
//! (`continue STREAM`, `skip STREAM`). Also: telling someone (`notify`, the event stream), the
//! order of integration, the exit code of mixed outcomes, the line that stops instead
//! (`on_conflict = "stop"`), and a run halted under the previous release.

use std::path::PathBuf;

use crate::common::TestRepo;
use crate::support::plans::plan;
use crate::support::runs::run_dir;

pub(crate) fn repo() -> TestRepo {
    TestRepo::with_files(&[
        ("SHARED.md", "# shared\n"),
        ("NOTES.md", "# notes\n"),
        ("api/x", "api\n"),
        ("db/x", "db\n"),
        ("ui/x", "ui\n"),
        ("late/x", "late\n"),
        ("ops/x", "ops\n"),
        ("dbdep/x", "dbdep\n"),
        ("bad/x", "bad\n"),
    ])
}

/// Agent actions that wait until stream `name` is parked: its conflict bundle is written (the
/// dispatcher records the park before it handles anything else, this agent's end included).
pub(crate) fn after_parked(name: &str) -> String {
    format!(
        r#""sh", "until ls \"$ACT_REPO\"/.git/streams/runs/*/conflicts/{name}/README.md >/dev/null 2>&1; do sleep 0.05; done""#
    )
}

/// Agent actions that wait until `api`'s work is on the integration branch.
const API_LANDED: &str = r#""wait-rev", "streams/p/integration:api/y""#;

/// The case of issue 28: `api` and `db` both append to the shared `SHARED.md` (`api` lands
/// first, so `db` conflicts), `ui` is independent and slower (it finishes only once `db` is
/// parked), and `late` can only start after the park: it depends on `ui`. `extra_plan` goes in
/// `[plan]`, `extra` after the streams.
pub(crate) fn three_streams(repo: &TestRepo, extra_plan: &str, extra: &str) {
    plan(
        repo,
        &format!(
            r#"
[plan]
name = "p"
jobs = 4
shared = ["SHARED.md", "NOTES.md"]
{extra_plan}

[[stream]]
name = "api"
owns = ["api/**"]
agent = ["act", "append", "SHARED.md", "from api", "append", "NOTES.md", "from api", "write", "api/y", "api"]
tasks = ["Api work"]

[[stream]]
name = "db"
owns = ["db/**"]
agent = ["act", {API_LANDED}, "append", "SHARED.md", "from db", "write", "db/y", "db"]
tasks = ["Db work"]

[[stream]]
name = "ui"
owns = ["ui/**"]
agent = ["act", {}, "write", "ui/y", "ui"]
tasks = ["Ui work"]

[[stream]]
name = "late"
owns = ["late/**"]
depends_on = ["ui"]
agent = ["act", "write", "late/y", "late"]
tasks = ["Late work"]
{extra}
"#,
            after_parked("db")
        ),
    );
}

/// `three_streams` and a stream `dbdep` that depends on db (parked): its agent's `actions`.
fn with_dbdep(repo: &TestRepo, actions: &str) {
    three_streams(
        repo,
        "",
        &format!(
            r#"
[[stream]]
name = "dbdep"
owns = ["dbdep/**"]
depends_on = ["db"]
agent = ["act", {actions}]
tasks = ["Use the db"]
"#
        ),
    );
}

fn status_json(repo: &TestRepo) -> serde_json::Value {
    let out = repo.streams(&["status", "--json"]);
    out.assert_code(0);
    serde_json::from_str(&out.stdout).unwrap()
}

fn state_of(json: &serde_json::Value, stream: &str) -> String {
    json["run"]["streams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == stream)
        .unwrap_or_else(|| panic!("no stream {stream} in {json}"))["state"]
        .as_str()
        .unwrap()
        .to_string()
}

fn order(json: &serde_json::Value) -> Vec<String> {
    json["run"]["integration_order"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["stream"].as_str().unwrap().to_string())
        .collect()
}

pub(crate) fn parked_worktree(repo: &TestRepo, stream: &str) -> PathBuf {
    repo.workspaces("p").join(format!(".resolve-{stream}"))
}

/// Resolves `stream`'s conflict in `file` by writing `text` there and marking it resolved.
fn resolve(repo: &TestRepo, stream: &str, file: &str, text: &str) {
    let wt = parked_worktree(repo, stream);
    std::fs::write(wt.join(file), text).unwrap();
    repo.git_in(&wt, &["add", file]);
}

fn shown(repo: &TestRepo, path: &str) -> String {
    repo.git(&["show", &format!("streams/p/integration:{path}")])
}

fn on_integration(repo: &TestRepo, path: &str) -> bool {
    repo.git_output_in(
        &repo.root,
        &["cat-file", "-e", &format!("streams/p/integration:{path}")],
    )
    .status
    .success()
}

#[test]
fn a_conflict_parks_db_while_api_ui_and_what_starts_after_integrate() {
    let repo = repo();
    three_streams(&repo, "", "");
    let out = repo.streams(&["run"]);
    out.assert_code(3);
    let stderr = out.stderr_redacted();
    // Said the moment it parks, and again, with its bundle, once nothing else can move.
    assert!(
        stderr.contains(
            "parked db: integrating it conflicts in SHARED.md; the other streams go on\n  conflict bundle: [REPO]/.git/streams/runs/[RUN]/conflicts/db/README.md\n  resolve in:      [REPO].streams/p/.resolve-db"
        ),
        "{out}"
    );
    let parked_at = stderr.find("parked db:").unwrap();
    let late_started = stderr.find("started late").expect("late ran");
    assert!(
        parked_at < late_started,
        "late starts after the park: {out}"
    );
    assert!(
        stderr.contains("halted: `db` is parked on a conflict; 3 of 4 streams integrated"),
        "{out}"
    );
    assert!(
        stderr.contains("  conflict bundle: [REPO]/.git/streams/runs/[RUN]/conflicts/db/README.md\n  resolve in:      [REPO].streams/p/.resolve-db\n  cd [REPO].streams/p/.resolve-db\n  # edit the conflicted files, then: git add SHARED.md\n  streams continue db\n"),
        "{out}"
    );

    let json = status_json(&repo);
    assert_eq!(json["run"]["phase"], "halted");
    for (stream, state) in [
        ("api", "integrated"),
        ("db", "parked"),
        ("ui", "integrated"),
        ("late", "integrated"),
    ] {
        assert_eq!(state_of(&json, stream), state, "{stream}: {json}");
    }
    assert_eq!(order(&json), ["api", "ui", "late"]);
    assert_eq!(json["run"]["parked"][0]["stream"], "db");
    assert_eq!(json["run"]["parked"][0]["files"][0], "SHARED.md");
    assert_eq!(shown(&repo, "SHARED.md"), "# shared\nfrom api");
    assert!(on_integration(&repo, "ui/y") && on_integration(&repo, "late/y"));
    assert!(!on_integration(&repo, "db/y"));
    // The bundle says the rest went on.
    let readme = std::fs::read_to_string(run_dir(&repo).join("conflicts/db/README.md")).unwrap();
    assert!(
        readme.contains("The stream is parked: every other stream goes on"),
        "{readme}"
    );
    assert!(readme.contains("streams continue db"), "{readme}");

    // The worktree is detached at the tip db conflicted with, which has moved on since.
    let wt = parked_worktree(&repo, "db");
    assert!(
        !repo
            .git_output_in(&wt, &["symbolic-ref", "-q", "HEAD"])
            .status
            .success()
    );
    resolve(&repo, "db", "SHARED.md", "# shared\nfrom api\nfrom db\n");
    let out = repo.streams(&["continue", "db"]);
    out.assert_code(0);
    assert!(
        out.stderr.contains("recorded the resolution of db as ")
            && out
                .stderr
                .contains("on top of what was integrated since it parked"),
        "{out}"
    );
    assert!(!wt.exists(), "the resolution worktree goes once recorded");
    assert_eq!(shown(&repo, "SHARED.md"), "# shared\nfrom api\nfrom db");
    for path in ["api/y", "db/y", "ui/y", "late/y"] {
        assert!(on_integration(&repo, path), "{path}");
    }
    let json = status_json(&repo);
    assert_eq!(json["run"]["phase"], "finished");
    assert_eq!(json["run"]["outcome"], "integrated");
    assert_eq!(order(&json), ["api", "ui", "late", "db"]);
    assert_eq!(json["run"]["integration_order"][3]["parked"], true);
    let status = repo.streams(&["status"]);
    assert!(
        status.stdout.contains(
            "integrated in this order: 1. api, 2. ui, 3. late, 4. db (after its conflict)"
        ),
        "{status}"
    );
    let report = std::fs::read_to_string(run_dir(&repo).join("report.md")).unwrap();
    assert!(
        report.contains("Integrated in this order:")
            && report.contains("4. **db** (task 1) at ")
            && report.contains(", after it was parked on a conflict")
            && report.contains("integration (landed 4th)"),
        "{report}"
    );
}

#[test]
fn the_event_stream_and_notify_say_the_moment_a_stream_parks() {
    let repo = repo();
    let told = repo.root.parent().unwrap().join("told");
    three_streams(
        &repo,
        &format!(
            r#"notify = ["sh", "-c", "echo \"$STREAMS_EVENT $STREAMS_STREAM $STREAMS_BUNDLE $STREAMS_CONFLICT_FILES\" > {}"]"#,
            told.display()
        ),
        "",
    );
    let out = repo.streams(&["run", "--json"]);
    out.assert_code(3);
    let events: Vec<serde_json::Value> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let at = |pred: &dyn Fn(&serde_json::Value) -> bool| events.iter().position(pred);
    let parked =
        at(&|e| e["event"] == "conflict" && e["stream"] == "db").expect("a conflict event");
    let event = &events[parked];
    assert_eq!(event["parked"], true);
    assert_eq!(event["files"][0], "SHARED.md");
    assert!(event["bundle"].as_str().unwrap().ends_with("/conflicts/db"));
    assert!(
        event["worktree"]
            .as_str()
            .unwrap()
            .ends_with("/.resolve-db")
    );
    // Told before the streams that went on landed.
    let ui = at(&|e| e["event"] == "integrated" && e["stream"] == "ui").unwrap();
    let late = at(&|e| e["event"] == "integrated" && e["stream"] == "late").unwrap();
    assert!(parked < ui && ui < late, "{}", out.stdout);
    assert_eq!(events[late]["order"], 3);
    let finished = events.last().unwrap();
    assert_eq!(finished["event"], "run_finished");
    assert_eq!(finished["status"], "halted");
    assert_eq!(finished["exit_code"], 3);
    // The notify command got the stream and its bundle.
    let bundle = run_dir(&repo).join("conflicts/db");
    assert_eq!(
        std::fs::read_to_string(&told).unwrap().trim(),
        format!("parked db {} SHARED.md", bundle.display())
    );
}

#[test]
fn a_notify_that_fails_or_hangs_is_logged_and_never_stops_the_run() {
    for (notify, said) in [
        (
            r#"["sh", "-c", "echo no route >&2; exit 7"]"#,
            "exited with code 7",
        ),
        (
            r#"["sh", "-c", "exec sleep 600"]"#,
            "did not finish within [TIME] (`notify_timeout`) and was stopped",
        ),
        (r#"["no-such-notifier"]"#, "could not start"),
    ] {
        let repo = repo();
        three_streams(
            &repo,
            &format!("notify = {notify}\nnotify_timeout = \"1s\""),
            "",
        );
        let out = repo.streams(&["run"]);
        out.assert_code(3);
        let warning = format!("warning: db: `notify` for its conflict {said}");
        assert!(out.stderr_redacted().contains(&warning), "{notify}: {out}");
        assert!(out.stderr.contains("the run goes on"), "{out}");
        // Everything else went on as without it.
        let json = status_json(&repo);
        assert_eq!(order(&json), ["api", "ui", "late"], "{notify}");
        assert!(
            repo.live_processes().is_empty(),
            "{notify}: nothing left running"
        );
        let log = run_dir(&repo).join("logs/db/notify.log");
        assert!(log.exists(), "{notify}: its output is kept");
    }
}

#[test]
fn parked_and_failed_at_once_exit_halted_then_failed_once_resolved() {
    let repo = repo();
    three_streams(
        &repo,
        "",
        r#"
[[stream]]
name = "bad"
owns = ["bad/**"]
agent = ["act", "write", "bad/y", "bad", "exit", "1"]
tasks = ["Bad work"]
"#,
    );
    let out = repo.streams(&["run"]);
    // Halted (3) before failed (4): a person's action first.
    out.assert_code(3);
    assert!(
        out.stderr
            .contains("halted: `db` is parked on a conflict; 3 of 5 streams integrated")
            && out.stderr.contains("; failed: bad"),
        "{out}"
    );
    let table = out.stderr_redacted();
    assert!(table.contains("bad     failed"), "{out}");
    assert!(table.contains("db      parked"), "{out}");
    resolve(&repo, "db", "SHARED.md", "# shared\nfrom api\nfrom db\n");
    let out = repo.streams(&["continue", "db"]);
    out.assert_code(4);
    assert!(
        out.stderr.contains("failed: 4 of 5 streams integrated"),
        "{out}"
    );
}

/// `three_streams` and a stream `ops` that, once api has landed, appends to `file`: db and ops
/// both park. In `NOTES.md`, ops conflicts with api only (each resolution is independent of the
/// other's); in `SHARED.md`, whichever is resolved second meets the first's line too.
fn two_parked(repo: &TestRepo, file: &str) {
    three_streams(
        repo,
        "",
        &format!(
            r#"
[[stream]]
name = "ops"
owns = ["ops/**"]
agent = ["act", {API_LANDED}, "append", "{file}", "from ops", "write", "ops/y", "ops"]
tasks = ["Ops work"]
"#
        ),
    );
}

#[test]
fn two_parked_streams_are_resolved_in_either_order() {
    for first in ["db", "ops"] {
        let repo = repo();
        two_parked(&repo, "NOTES.md");
        let out = repo.streams(&["run"]);
        out.assert_code(3);
        assert!(
            out.stderr.contains("2 streams are parked on conflicts: "),
            "{out}"
        );
        // Which one `continue` is about must be said.
        let out = repo.streams(&["continue"]);
        out.assert_code(2);
        assert!(
            out.stderr.contains("error: 2 streams are parked on conflicts: ")
                && out.stderr.contains(
                    "hint: name the one you resolved: `streams continue STREAM` (they go in any order)"
                ),
            "{out}"
        );
        let resolve_one = |stream: &str| match stream {
            "db" => resolve(&repo, "db", "SHARED.md", "# shared\nfrom api\nfrom db\n"),
            _ => resolve(&repo, "ops", "NOTES.md", "# notes\nfrom api\nfrom ops\n"),
        };
        let second = if first == "db" { "ops" } else { "db" };
        resolve_one(first);
        let out = repo.streams(&["continue", first]);
        out.assert_code(3);
        assert!(
            out.stderr
                .contains(&format!("halted: `{second}` is parked on a conflict")),
            "{out}"
        );
        resolve_one(second);
        let out = repo.streams(&["continue", second]);
        out.assert_code(0);
        assert_eq!(shown(&repo, "SHARED.md"), "# shared\nfrom api\nfrom db");
        assert_eq!(shown(&repo, "NOTES.md"), "# notes\nfrom api\nfrom ops");
        let json = status_json(&repo);
        assert_eq!(order(&json), ["api", "ui", "late", first, second]);
    }
}

#[test]
fn a_resolution_that_conflicts_with_what_landed_since_parks_again_and_says_so() {
    let repo = repo();
    // ops conflicts in SHARED.md too: whichever is resolved second meets the first's line.
    two_parked(&repo, "SHARED.md");
    repo.streams(&["run"]).assert_code(3);
    resolve(&repo, "db", "SHARED.md", "# shared\nfrom api\nfrom db\n");
    repo.streams(&["continue", "db"]).assert_code(3);
    // Resolved against the tip ops parked on, which db's resolution has moved on from.
    resolve(&repo, "ops", "SHARED.md", "# shared\nfrom api\nfrom ops\n");
    let out = repo.streams(&["continue", "ops"]);
    out.assert_code(3);
    assert!(
        out.stderr.contains(
            "error: `ops`'s resolution conflicts with what was integrated since it parked, in SHARED.md: it stays parked, laid out again against "
        ),
        "{out}"
    );
    assert!(
        out.stderr
            .contains("hint: your resolution is kept on refs/streams/p/resolution/ops"),
        "{out}"
    );
    // The new conflict: db's line against the resolution's.
    let wt = parked_worktree(&repo, "ops");
    let marked = std::fs::read_to_string(wt.join("SHARED.md")).unwrap();
    assert!(
        marked.contains("<<<<<<< integration\nfrom db\n")
            && marked.contains("from ops\n>>>>>>> ops"),
        "{marked}"
    );
    assert_eq!(state_of(&status_json(&repo), "ops"), "parked");
    resolve(
        &repo,
        "ops",
        "SHARED.md",
        "# shared\nfrom api\nfrom db\nfrom ops\n",
    );
    repo.streams(&["continue", "ops"]).assert_code(0);
    assert_eq!(
        shown(&repo, "SHARED.md"),
        "# shared\nfrom api\nfrom db\nfrom ops"
    );
}

#[test]
fn a_conflict_that_went_away_integrates_without_a_resolution() {
    let repo = TestRepo::with_files(&[
        ("SHARED.md", "one\nline\nthree\n"),
        ("api/x", "api\n"),
        ("db/x", "db\n"),
        ("ops/x", "ops\n"),
    ]);
    // api rewrites the middle line; db and ops both rewrite it the same other way, so both
    // park; once ops is resolved as its own version, db's work merges cleanly.
    plan(
        &repo,
        &format!(
            r#"
[plan]
name = "p"
jobs = 3
shared = ["SHARED.md"]

[[stream]]
name = "api"
owns = ["api/**"]
agent = ["act", "write", "SHARED.md", "one\nAPI\nthree", "write", "api/y", "api"]
tasks = ["Api work"]

[[stream]]
name = "db"
owns = ["db/**"]
agent = ["act", {API_LANDED}, "write", "SHARED.md", "one\nOURS\nthree", "write", "db/y", "db"]
tasks = ["Db work"]

[[stream]]
name = "ops"
owns = ["ops/**"]
agent = ["act", {API_LANDED}, "write", "SHARED.md", "one\nOURS\nthree", "write", "ops/y", "ops"]
tasks = ["Ops work"]
"#
        ),
    );
    repo.streams(&["run"]).assert_code(3);
    resolve(&repo, "ops", "SHARED.md", "one\nOURS\nthree\n");
    repo.streams(&["continue", "ops"]).assert_code(3);
    // db's worktree still has its markers: nothing was resolved there.
    let out = repo.streams(&["continue", "db"]);
    out.assert_code(0);
    assert!(
        out.stderr
            .contains("`db` merges cleanly on streams/p/integration as it is now: integrated as "),
        "{out}"
    );
    assert!(
        out.stderr.contains(
            "what was left in db's resolution worktree is kept on refs/streams/p/resolution/db"
        ),
        "{out}"
    );
    assert_eq!(shown(&repo, "SHARED.md"), "one\nOURS\nthree");
    assert!(on_integration(&repo, "db/y"));
}

#[test]
fn a_dependent_of_a_parked_stream_waits_then_runs() {
    let repo = repo();
    with_dbdep(&repo, r#""require", "db/y", "write", "dbdep/y", "dbdep""#);
    let out = repo.streams(&["run"]);
    out.assert_code(3);
    assert!(out.stderr.contains("waiting on it: dbdep"), "{out}");
    assert!(
        out.stderr.contains("parked db: integrating it conflicts in SHARED.md; the other streams go on; dbdep waits for it"),
        "{out}"
    );
    let json = status_json(&repo);
    assert_eq!(state_of(&json, "dbdep"), "pending");
    assert_eq!(json["run"]["parked"][0]["waiting"][0], "dbdep");
    let status = repo.streams(&["status"]);
    assert!(
        status
            .stdout
            .contains("waits for `db` (parked on a conflict)"),
        "{status}"
    );
    resolve(&repo, "db", "SHARED.md", "# shared\nfrom api\nfrom db\n");
    let out = repo.streams(&["continue", "db"]);
    out.assert_code(0);
    assert!(out.stderr.contains("started dbdep"), "{out}");
    assert!(on_integration(&repo, "dbdep/y"));
    assert_eq!(
        order(&status_json(&repo)),
        ["api", "ui", "late", "db", "dbdep"]
    );
}

#[test]
fn skip_leaves_a_parked_stream_out_and_its_dependents_with_it() {
    let repo = repo();
    with_dbdep(&repo, r#""write", "dbdep/y", "dbdep""#);
    repo.streams(&["run"]).assert_code(3);
    let out = repo.streams(&["skip", "db"]);
    out.assert_code(0);
    assert!(!parked_worktree(&repo, "db").exists());
    let json = status_json(&repo);
    assert_eq!(json["run"]["outcome"], "skipped");
    assert_eq!(state_of(&json, "db"), "skipped");
    assert_eq!(state_of(&json, "dbdep"), "skipped");
    assert_eq!(order(&json), ["api", "ui", "late"]);
    // The branch is kept.
    assert!(repo.git(&["rev-parse", "streams/p/db"]).len() == 40);
}

#[test]
fn on_conflict_stop_stops_the_whole_line_as_before() {
    let repo = repo();
    three_streams(&repo, r#"on_conflict = "stop""#, "");
    let out = repo.streams(&["run"]);
    out.assert_code(3);
    assert!(!out.stderr.contains("started late"), "{out}");
    let json = status_json(&repo);
    assert_eq!(state_of(&json, "db"), "parked");
    // ui finished but waits: the line stopped at db.
    assert_eq!(state_of(&json, "ui"), "waiting");
    assert_eq!(state_of(&json, "late"), "pending");
    assert_eq!(order(&json), ["api"]);
    // One resolution worktree, on the integration branch, as before parking existed.
    let wt = repo.workspaces("p").join(".integration");
    assert_eq!(
        repo.git_in(&wt, &["symbolic-ref", "HEAD"]),
        "refs/heads/streams/p/integration"
    );
    let readme = std::fs::read_to_string(run_dir(&repo).join("conflicts/db/README.md")).unwrap();
    assert!(
        readme.contains("The run is halted: no new task starts"),
        "{readme}"
    );
    std::fs::write(wt.join("SHARED.md"), "# shared\nfrom api\nfrom db\n").unwrap();
    repo.git_in(&wt, &["add", "SHARED.md"]);
    let out = repo.streams(&["continue"]);
    out.assert_code(0);
    assert_eq!(order(&status_json(&repo)), ["api", "db", "ui", "late"]);
}

/// A run halted under state version 1 (the release before parking; the fixture was made with
/// that release's binary by `fixtures/state/v1-halted.sh`): its halted stream is parked, and
/// `continue` resolves it and finishes the run, the queued `ui` included.
#[test]
fn a_run_halted_under_the_previous_release_continues() {
    let repo = TestRepo::with_files(&[
        ("SHARED.md", "# shared\n"),
        ("api/x", "api\n"),
        ("db/x", "db\n"),
        ("ui/x", "ui\n"),
    ]);
    let base = repo.git(&["rev-parse", "HEAD"]);
    // The commits the fixture names: each stream's work on the base, api's also the tip.
    let commit_on_base = |branch: &str, files: &[(&str, &str)]| {
        repo.git(&["checkout", "-q", "-b", branch, &base]);
        for (path, text) in files {
            repo.write(path, text);
        }
        let oid = repo.commit_all(&format!("{branch} work"));
        repo.git(&["checkout", "-q", "main"]);
        oid
    };
    let api = commit_on_base(
        "streams/p/api",
        &[("SHARED.md", "# shared\nfrom api\n"), ("api/y", "api\n")],
    );
    let db = commit_on_base(
        "streams/p/db",
        &[("SHARED.md", "# shared\nfrom db\n"), ("db/y", "db\n")],
    );
    let ui = commit_on_base("streams/p/ui", &[("ui/y", "ui\n")]);
    repo.git(&["branch", "streams/p/integration", &api]);
    let run_id = "20260101-000000-0002";
    let run = repo.common_dir().join("streams/runs").join(run_id);
    std::fs::create_dir_all(&run).unwrap();
    let fixtures = crate::common::fixtures_dir().join("state");
    let state = std::fs::read_to_string(fixtures.join("v1-halted.json"))
        .unwrap()
        .replace("@ROOT@", &repo.root.display().to_string())
        .replace("@BASE@", &base)
        .replace("@API@", &api)
        .replace("@TIP@", &api)
        .replace("@DB@", &db)
        .replace("@UI@", &ui);
    std::fs::write(run.join("state.json"), state).unwrap();
    std::fs::copy(fixtures.join("v1-halted.toml"), run.join("plan.toml")).unwrap();
    std::fs::write(
        repo.common_dir().join("streams/current"),
        format!("{run_id}\n"),
    )
    .unwrap();

    let json = status_json(&repo);
    assert_eq!(json["run"]["phase"], "halted");
    assert_eq!(state_of(&json, "db"), "parked");
    assert_eq!(state_of(&json, "ui"), "waiting");
    // Its resolution worktree went with the old release's repository: laid out again where the
    // run recorded it (under `.git/`, where workspaces were then).
    let wt = repo.common_dir().join("streams/worktrees/p/.integration");
    let out = repo.streams(&["continue"]);
    out.assert_code(3);
    assert!(
        out.stderr.contains("was deleted: it is laid out again"),
        "{out}"
    );
    std::fs::write(wt.join("SHARED.md"), "# shared\nfrom api\nfrom db\n").unwrap();
    repo.git_in(&wt, &["add", "SHARED.md"]);
    let out = repo.streams(&["continue", "db"]);
    out.assert_code(0);
    assert_eq!(shown(&repo, "SHARED.md"), "# shared\nfrom api\nfrom db");
    assert!(on_integration(&repo, "ui/y") && on_integration(&repo, "db/y"));
    let json = status_json(&repo);
    assert_eq!(json["run"]["outcome"], "integrated");
    assert_eq!(order(&json), ["db", "ui"]);
}

#[test]
fn stop_refuses_a_parked_stream_and_names_skip_and_continue() {
    let repo = repo();
    three_streams(&repo, "", "");
    repo.streams(&["run"]).assert_code(3);
    let out = repo.streams(&["stop", "db"]);
    out.assert_code(2);
    assert!(
        out.stderr.contains("stream `db` of run ")
            && out
                .stderr
                .contains(" is parked on a conflict: nothing of it runs to stop"),
        "{out}"
    );
    assert!(
        out.stderr
            .contains("`streams skip db` leaves it out; or resolve it and `streams continue db`"),
        "{out}"
    );
    // Still parked, its resolution worktree in place.
    assert_eq!(state_of(&status_json(&repo), "db"), "parked");
    assert!(parked_worktree(&repo, "db").join(".git").exists());
}

/// A coordinator killed in the moment it held a ref's lock (streams writes its ref moves in
/// process) leaves the lock file; `continue` clears it before it moves the integration, as
/// `resume` does, instead of failing with "cannot lock ref" every time until a person removes
/// it (found by `crash::random_kills_while_streams_are_parked_and_others_integrate`).
#[test]
fn continue_clears_a_lock_a_killed_coordinator_left_on_the_plans_refs() {
    let repo = crate::support::runs::halted();
    crate::support::runs::resolve_shared(&repo, "line 1\nfrom both\nline 3\n");
    let lock = repo
        .common_dir()
        .join("refs/heads/streams/p/integration.lock");
    std::fs::write(&lock, "").unwrap();
    let out = repo.streams(&["continue"]);
    out.assert_code(0);
    assert!(!lock.exists());
    assert!(
        out.stderr
            .contains("removed a stale git lock file left by the crash"),
        "{out}"
    );
}
