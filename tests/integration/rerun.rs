//! Runs that follow runs: what a new `run` does with the last run's result, `retry` of single
//! streams, and `merge` of the result into the user's branch.

use crate::common::TestRepo;
use crate::run::{app_repo, plan};

/// Two independent streams, `api` and `db`; `db`'s agent runs `db_agent` (TOML strings).
fn two_streams(repo: &TestRepo, db_agent: &str) {
    plan(
        repo,
        &format!(
            r#"
[plan]
name = "p"
jobs = 1

[[stream]]
name = "api"
owns = ["src/api/**"]
agent = ["act", "write", "src/api/login.rs", "fn login() {{}}"]
tasks = ["Add login"]

[[stream]]
name = "db"
owns = ["src/db/**"]
agent = ["act", {db_agent}]
tasks = ["Add the schema"]
"#
        ),
    );
}

const DB_OK: &str = r#""write", "src/db/schema.sql", "create table users;""#;

fn previous_refs(repo: &TestRepo) -> Vec<(String, String)> {
    repo.git(&[
        "for-each-ref",
        "--format=%(refname) %(objectname)",
        "refs/streams/p/previous/",
    ])
    .lines()
    .filter_map(|l| l.split_once(' '))
    .map(|(n, o)| (n.to_string(), o.to_string()))
    .collect()
}

#[test]
fn a_second_run_refuses_to_move_an_unmerged_result_aside_without_restart() {
    let repo = app_repo();
    two_streams(&repo, DB_OK);
    repo.streams(&["run"]).assert_code(0);
    let tip = repo.git(&["rev-parse", "streams/p/integration"]);
    let before = repo.refs();

    let out = repo.streams(&["run"]);
    out.assert_code(5);
    assert!(
        out.stderr.contains(&tip[..7]) && out.stderr.contains("streams merge"),
        "names the commit and how to take it:\n{out}"
    );
    assert!(out.stderr.contains("--restart"), "{out}");
    assert_eq!(repo.refs(), before, "a refused run touches nothing");

    // Told to, it starts over and says in one line what it kept and where.
    let out = repo.streams(&["run", "--restart"]);
    out.assert_code(0);
    let kept = previous_refs(&repo);
    assert_eq!(
        kept.len(),
        1,
        "only the integration tip holds work: {kept:?}"
    );
    assert!(kept[0].0.ends_with("/integration") && kept[0].1 == tip);
    let line = out
        .stderr
        .lines()
        .find(|l| l.contains("kept the last run's work"))
        .unwrap_or_else(|| panic!("no line about what was kept:\n{out}"));
    assert!(
        line.contains(&kept[0].0) && line.contains(&tip[..7]),
        "{line}"
    );

    // The same result again is not kept twice: one ref per commit.
    repo.streams(&["run", "--restart"]).assert_code(0);
    repo.streams(&["run", "--restart"]).assert_code(0);
    let kept = previous_refs(&repo);
    let mut oids: Vec<&String> = kept.iter().map(|(_, o)| o).collect();
    oids.sort();
    oids.dedup();
    assert_eq!(oids.len(), kept.len(), "one ref per commit: {kept:?}");
}

#[test]
fn a_run_after_the_result_was_merged_proceeds_and_clean_prunes_what_the_users_branches_hold() {
    let repo = app_repo();
    two_streams(&repo, DB_OK);
    repo.streams(&["run"]).assert_code(0);
    let tip = repo.git(&["rev-parse", "streams/p/integration"]);
    // A result kept from an earlier run, then merged by the user into a branch of theirs.
    repo.git(&["update-ref", "refs/streams/p/previous/r0/integration", &tip]);
    repo.git(&["branch", "taken", &tip]);

    let out = repo.streams(&["run"]);
    out.assert_code(0);
    let line = out.stderr.lines().next().unwrap_or_default();
    assert!(
        line.contains(&tip[..7]) && line.contains("is merged into taken"),
        "says first, in one line, where the result went:\n{out}"
    );
    let out = repo.streams(&["clean"]);
    out.assert_code(0);
    assert!(
        previous_refs(&repo).is_empty(),
        "a kept ref a user's branch holds is pruned:\n{out}"
    );
}

/// `api` and `db` beside each other, `ui` on top of `db`; `db`'s agent fails on its first run
/// only (counted in a file outside the repository).
fn db_fails_once(repo: &TestRepo) {
    let count = repo.home.join("db-runs");
    plan(
        repo,
        &format!(
            r#"
[plan]
name = "p"
jobs = 1

[[stream]]
name = "api"
owns = ["src/api/**"]
agent = ["act", "write", "src/api/login.rs", "fn login() {{}}"]
tasks = ["Add login"]

[[stream]]
name = "db"
owns = ["src/db/**"]
agent = ["act", "fail-first", "1", "{}", "3", "write", "src/db/schema.sql", "create table users;"]
tasks = ["Add the schema"]

[[stream]]
name = "ui"
owns = ["src/ui/**"]
depends_on = ["db"]
agent = ["act", "require", "src/db/schema.sql", "write", "src/ui/login.html", "<form></form>"]
tasks = ["Add the login page"]
"#,
            count.display()
        ),
    );
}

#[test]
fn retry_runs_a_failed_stream_and_its_dependents_on_top_of_what_was_integrated() {
    let repo = app_repo();
    db_fails_once(&repo);
    repo.streams(&["run"]).assert_code(4);
    let first_tip = repo.git(&["rev-parse", "streams/p/integration"]);
    assert!(repo.tree_listing(&first_tip).contains("src/api/login.rs"));

    // An integrated stream has nothing to retry; a dependent cannot run without its dependency.
    let out = repo.streams(&["retry", "api"]);
    out.assert_code(2);
    assert!(out.stderr.contains("integrated already"), "{out}");
    let out = repo.streams(&["retry", "ui"]);
    out.assert_code(2);
    assert!(
        out.stderr.contains("depends on `db`") && out.stderr.contains("--with-dependents"),
        "{out}"
    );
    assert_eq!(
        repo.git(&["rev-parse", "streams/p/integration"]),
        first_tip,
        "a refused retry changes nothing"
    );

    let out = repo.streams(&["retry", "db", "--with-dependents"]);
    out.assert_code(0);
    assert!(
        out.stderr
            .contains("retrying db, ui on top of streams/p/integration"),
        "{out}"
    );
    let tip = repo.git(&["rev-parse", "streams/p/integration"]);
    // Built on the first run's result, not started over: api's integration is kept as it was.
    repo.git(&["merge-base", "--is-ancestor", &first_tip, &tip]);
    let files = repo.tree_listing(&tip);
    for file in ["src/api/login.rs", "src/db/schema.sql", "src/ui/login.html"] {
        assert!(files.contains(file), "{file} missing:\n{files}");
    }
    let status = repo.streams(&["status", "--json"]);
    let json: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    let states: Vec<&str> = json["run"]["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["integrated", "integrated", "integrated"]);
}

#[test]
fn merge_fast_forwards_the_checked_out_branch_and_refuses_a_dirty_checkout() {
    let repo = app_repo();
    two_streams(&repo, DB_OK);
    repo.streams(&["run"]).assert_code(0);
    let tip = repo.git(&["rev-parse", "streams/p/integration"]);
    let main_before = repo.git(&["rev-parse", "main"]);

    repo.write("README.md", "# app, edited\n");
    let out = repo.streams(&["merge"]);
    out.assert_code(5);
    assert!(
        out.stderr.contains("uncommitted changes (README.md)"),
        "{out}"
    );
    assert_eq!(repo.git(&["rev-parse", "main"]), main_before);
    repo.git(&["checkout", "README.md"]);

    let out = repo.streams(&["merge"]);
    out.assert_code(0);
    assert!(out.stderr.contains("main fast-forwarded"), "{out}");
    assert_eq!(repo.git(&["rev-parse", "main"]), tip);
    // The checkout is updated like `git merge` would: the result's files are there, clean.
    assert_eq!(repo.read("src/db/schema.sql"), "create table users;\n");
    assert_eq!(
        repo.git(&["status", "--porcelain", "--untracked-files=no"]),
        ""
    );

    let out = repo.streams(&["merge"]);
    out.assert_code(0);
    assert!(out.stderr.contains("already"), "{out}");
}

#[test]
fn merge_into_a_branch_that_moved_needs_allow_moved_and_touches_no_checkout() {
    let repo = app_repo();
    two_streams(&repo, DB_OK);
    repo.streams(&["run"]).assert_code(0);
    let tip = repo.git(&["rev-parse", "streams/p/integration"]);
    // `release` moved on since the run's base; it is checked out nowhere.
    repo.git(&["switch", "-q", "-c", "release"]);
    repo.write("RELEASE.md", "1.0\n");
    let moved = repo.commit_all("release notes");
    repo.git(&["switch", "-q", "main"]);
    let head = repo.git(&["rev-parse", "HEAD"]);

    let out = repo.streams(&["merge", "--into", "release"]);
    out.assert_code(5);
    assert!(
        out.stderr
            .contains("release has moved since the run's base")
            && out.stderr.contains("--allow-moved"),
        "{out}"
    );
    assert_eq!(repo.git(&["rev-parse", "release"]), moved);

    let out = repo.streams(&["merge", "--into", "release", "--allow-moved"]);
    out.assert_code(0);
    assert!(out.stderr.contains("merge commit"), "{out}");
    assert!(out.stderr.contains("checked out nowhere"), "{out}");
    let parents = repo.git(&["rev-list", "--parents", "-n", "1", "release"]);
    assert_eq!(
        parents.split(' ').skip(1).collect::<Vec<_>>(),
        [moved.as_str(), tip.as_str()]
    );
    let files = repo.tree_listing("release");
    assert!(
        files.contains("RELEASE.md") && files.contains("src/db/schema.sql"),
        "{files}"
    );
    assert_eq!(
        repo.git(&["rev-parse", "HEAD"]),
        head,
        "the checkout did not move"
    );
    assert!(!repo.path("src/db/schema.sql").exists());
}

#[test]
fn quiet_prints_only_the_final_result() {
    let repo = app_repo();
    two_streams(&repo, DB_OK);
    let out = repo.streams(&["-q", "run"]);
    out.assert_code(0);
    assert_eq!(out.stdout, "");
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{out}");
    assert!(lines[0].starts_with("ok: all 2 streams integrated on streams/p/integration"));
}

#[test]
fn the_demo_closes_with_commands_that_work_from_where_the_user_is() {
    let repo = TestRepo::empty();
    let dir = repo.root.parent().unwrap().join("demo");
    let out = repo.streams(&["demo", dir.to_str().unwrap()]);
    out.assert_code(0);
    // The test binary is on no PATH: the closing lines name it by its full path, with -C.
    let bin = crate::common::streams_bin().canonicalize().unwrap();
    let merge = format!("{} -C {} merge", bin.display(), dir.display());
    assert!(out.stderr.contains(&merge), "{out}");
    assert!(
        out.stderr.contains(&format!("rm -rf {}", dir.display())),
        "{out}"
    );
    // And they work: run from elsewhere, exactly as printed.
    let mut cmd = std::process::Command::new(&bin);
    cmd.args(["-C", dir.to_str().unwrap(), "merge"])
        .current_dir(&repo.home);
    repo.hermetic(&mut cmd);
    let merged = crate::common::CmdOutput::new(cmd.output().unwrap(), &repo);
    merged.assert_code(0);
    assert!(merged.stderr.contains("main fast-forwarded"), "{merged}");
    // The last line removes the demo whole: the repository and the workspaces beside it.
    let rm = out
        .stderr
        .lines()
        .find(|l| l.trim_start().starts_with("rm -rf"))
        .expect("a line that removes the demo");
    let status = std::process::Command::new("sh")
        .args(["-c", rm])
        .status()
        .unwrap();
    assert!(status.success());
    let left: Vec<_> = std::fs::read_dir(dir.parent().unwrap())
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("demo"))
        .collect();
    assert!(left.is_empty(), "the demo left {left:?} behind");
}
