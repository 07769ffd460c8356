//! `streams plan`: validation (one fixture per rule in fixtures/invalid/, each snapshotted whole),
//! the analysis it prints, its JSON/dot/mermaid outputs, and that it never writes anything.

use std::path::{Path, PathBuf};

use crate::common::{TestRepo, fixtures_dir};

/// A small web app: the repository every plan test runs against.
const WEBAPP_FILES: &[(&str, &str)] = &[
    ("Cargo.toml", "[package]\nname = \"webapp\"\n"),
    ("Cargo.lock", "# lock file\n"),
    ("README.md", "# webapp\n"),
    ("src/main.rs", "fn main() {}\n"),
    ("src/api/mod.rs", "pub mod login;\n"),
    ("src/api/login.rs", "pub fn login() {}\n"),
    ("src/db/mod.rs", "pub mod schema;\n"),
    ("src/db/schema.rs", "pub struct User;\n"),
    ("migrations/001_users.sql", "create table users (id int);\n"),
    ("web/index.html", "<html></html>\n"),
    ("web/app.js", "console.log('hi');\n"),
    ("docs/guide.md", "# Guide\n"),
    ("docs/api.md", "# API\n"),
    ("tests/api/login.rs", "#[test] fn login() {}\n"),
];

/// The web app, with stand-ins for `claude`, `codex` and `aider` on PATH (the plans name them).
fn webapp_repo() -> TestRepo {
    TestRepo::with_files(WEBAPP_FILES).with_agent_stubs()
}

fn repo_with_plan(plan: &str) -> TestRepo {
    let repo = webapp_repo();
    repo.write("streams.toml", plan);
    repo
}

fn streams_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("streams")
}

/// Everything `plan` could conceivably change: refs, the index, the working tree (ignored and
/// untracked files included) and the top of the git directory.
fn repo_state(repo: &TestRepo) -> String {
    let index = std::fs::read(repo.common_dir().join("index")).unwrap_or_default();
    let mut git_dir: Vec<String> = std::fs::read_dir(repo.common_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    git_dir.sort();
    format!(
        "refs:\n{}\nstatus:\n{}\nindex bytes: {} hash {:x}\ngit dir: {}",
        repo.refs(),
        repo.git(&[
            "status",
            "--porcelain",
            "--ignored",
            "--untracked-files=all"
        ]),
        index.len(),
        index
            .iter()
            .fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(*b))),
        git_dir.join(" ")
    )
}

/// Runs `streams plan ARGS` and checks that it changed nothing in the repository.
fn plan_unchanged(repo: &TestRepo, args: &[&str]) -> crate::common::CmdOutput {
    let before = repo_state(repo);
    let mut full = vec!["plan"];
    full.extend_from_slice(args);
    let out = repo.streams(&full);
    assert_eq!(
        before,
        repo_state(repo),
        "`streams plan` changed the repository"
    );
    assert!(
        !repo.common_dir().join("streams").exists(),
        "`streams plan` created a streams directory in .git"
    );
    out
}

fn check_fixture(file: &str, code: i32) {
    let text = std::fs::read_to_string(fixtures_dir().join("invalid").join(file)).unwrap();
    let repo = repo_with_plan(&text);
    let out = plan_unchanged(&repo, &[]);
    out.assert_code(code);
    let name = file.trim_end_matches(".toml");
    insta::assert_snapshot!(format!("fixture_{name}"), out.to_string());
}

macro_rules! fixture_tests {
    ($($test:ident: $file:literal => $code:expr,)*) => {
        $(
            #[test]
            fn $test() {
                check_fixture($file, $code);
            }
        )*
        const FIXTURES: &[&str] = &[$($file),*];
    };
}

fixture_tests! {
    invalid_syntax: "syntax.toml" => 2,
    invalid_unclosed_array: "unclosed-array.toml" => 2,
    invalid_unknown_key: "unknown-key.toml" => 2,
    invalid_wrong_type: "wrong-type.toml" => 2,
    invalid_bad_values: "bad-values.toml" => 2,
    invalid_empty_owns: "empty-owns.toml" => 2,
    invalid_no_streams: "no-streams.toml" => 2,
    invalid_no_plan: "no-plan.toml" => 2,
    invalid_table_shapes: "table-shapes.toml" => 2,
    invalid_missing_keys: "missing-keys.toml" => 2,
    invalid_stream_name: "stream-name.toml" => 2,
    invalid_duplicate_stream: "duplicate-stream.toml" => 2,
    invalid_reserved_name: "reserved-name.toml" => 2,
    invalid_unknown_dependency: "unknown-dependency.toml" => 2,
    invalid_dependency_cycle: "dependency-cycle.toml" => 2,
    invalid_owned_twice: "owned-twice.toml" => 2,
    invalid_future_overlap: "future-overlap.toml" => 2,
    warning_unmatched_pattern: "unmatched-pattern.toml" => 0,
    invalid_pattern_escapes: "pattern-escapes.toml" => 2,
    invalid_glob: "invalid-glob.toml" => 2,
    invalid_shared_overlap: "shared-overlap.toml" => 2,
    invalid_base_unresolved: "base-unresolved.toml" => 2,
    invalid_no_agent: "no-agent.toml" => 2,
    invalid_task_prompt: "task-prompt.toml" => 2,
    invalid_many_problems: "many-problems.toml" => 2,
    invalid_git_env: "git-env.toml" => 2,
    invalid_name_too_long: "name-too-long.toml" => 2,
    invalid_negated_pattern: "negated-pattern.toml" => 2,
    invalid_empty_tasks: "empty-tasks.toml" => 2,
    invalid_file_dir_conflict: "file-dir-conflict.toml" => 2,
    invalid_huge_pattern: "huge-pattern.toml" => 2,
    invalid_worktree_root: "worktree-root.toml" => 2,
    invalid_agent_program: "agent-program.toml" => 2,
    invalid_sandbox: "sandbox.toml" => 2,
}

#[test]
fn every_fixture_has_a_test() {
    let mut on_disk: Vec<String> = std::fs::read_dir(fixtures_dir().join("invalid"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".toml"))
        .collect();
    on_disk.sort();
    let mut tested: Vec<String> = FIXTURES.iter().map(|s| s.to_string()).collect();
    tested.sort();
    assert_eq!(
        on_disk, tested,
        "add a test for each fixture in fixtures/invalid/"
    );
}

#[test]
fn many_problems_are_all_reported_in_file_order() {
    let text = std::fs::read_to_string(fixtures_dir().join("invalid/many-problems.toml")).unwrap();
    let repo = repo_with_plan(&text);
    let out = repo.streams(&["plan"]);
    out.assert_code(2);
    let positions: Vec<(usize, usize)> = out
        .stderr
        .lines()
        .filter_map(|l| l.trim().strip_prefix("--> streams.toml:"))
        .map(|rest| {
            let mut parts = rest.split(':').map(|n| n.parse::<usize>().unwrap());
            (parts.next().unwrap(), parts.next().unwrap())
        })
        .collect();
    assert!(positions.len() >= 10, "expected many problems:\n{out}");
    let mut sorted = positions.clone();
    sorted.sort();
    assert_eq!(positions, sorted, "problems are not in file order:\n{out}");
    assert!(out.stderr.contains("nothing was changed"));
}

// ---------------------------------------------------------------------------------------------
// The example plans.

#[test]
fn every_example_plan_is_valid() {
    let mut checked = 0;
    for entry in std::fs::read_dir(streams_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        let repo = webapp_repo();
        // script.toml runs a committed script, as its comment says it must be.
        repo.write(
            "scripts/codemod.sh",
            "#!/bin/sh\nset -eu\ngit ls-files -- \"src/$1\" | xargs sed -i 's/\\bget_user\\b/find_user/g'\n",
        );
        use std::os::unix::fs::PermissionsExt;
        let script = repo.path("scripts/codemod.sh");
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        repo.commit_all("add the codemod script");
        let out = plan_unchanged(&repo, &[path.to_str().unwrap()]);
        assert!(
            out.success(),
            "{} is not a valid plan:\n{out}",
            path.display()
        );
        checked += 1;
    }
    assert!(checked >= 3, "expected at least three example plans");
}

fn webapp_example() -> TestRepo {
    let repo = webapp_repo();
    let text = std::fs::read_to_string(streams_dir().join("webapp.toml")).unwrap();
    repo.write("streams.toml", &text);
    repo
}

#[test]
fn shows_waves_ownership_and_schedule() {
    let repo = webapp_example();
    let out = plan_unchanged(&repo, &[]);
    out.assert_code(0);
    // The view is the command's output: `streams plan | less` must show it.
    assert_eq!(out.stderr, "", "the view goes to stdout");
    insta::assert_snapshot!(out.to_string());
}

#[test]
fn json_output() {
    let repo = webapp_example();
    let out = plan_unchanged(&repo, &["--json"]);
    out.assert_code(0);
    assert_eq!(out.stderr, "", "nothing but data with --json");
    let json: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(json["version"], 1);
    assert_eq!(json["plan"]["name"], "webapp");
    assert_eq!(
        json["plan"]["base_commit"].as_str().unwrap(),
        repo.git(&["rev-parse", "main"])
    );
    // The stages a CI spreads the run over (`streams ci`): the waves, file order within.
    assert_eq!(
        json["stages"],
        serde_json::json!([["db"], ["api", "ui"], ["docs"]])
    );
    insta::assert_snapshot!(out.stdout_redacted());
}

#[test]
fn dot_output() {
    let repo = webapp_example();
    let out = plan_unchanged(&repo, &["--dot"]);
    out.assert_code(0);
    insta::assert_snapshot!(out.to_string());
}

#[test]
fn mermaid_output() {
    let repo = webapp_example();
    let out = plan_unchanged(&repo, &["--mermaid"]);
    out.assert_code(0);
    insta::assert_snapshot!(out.to_string());
}

fn schedule(repo: &TestRepo, args: &[&str]) -> serde_json::Value {
    let mut full = vec!["--json"];
    full.extend_from_slice(args);
    let out = plan_unchanged(repo, &full);
    out.assert_code(0);
    let json: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    json["schedule"].clone()
}

/// Five independent streams of one task and a chain a -> b -> c: the makespan depends on jobs.
const SCHEDULE_PLAN: &str = r#"
[plan]
name = "sched"
agent = ["true"]
jobs = 3

[[stream]]
name = "a"
owns = ["a/**"]
tasks = ["one", "two"]

[[stream]]
name = "b"
owns = ["b/**"]
depends_on = ["a"]
tasks = ["one", "two"]

[[stream]]
name = "c"
owns = ["c/**"]
depends_on = ["b"]
tasks = ["one"]

[[stream]]
name = "d"
owns = ["d/**"]
tasks = ["one"]

[[stream]]
name = "e"
owns = ["e/**"]
tasks = ["one"]

[[stream]]
name = "f"
owns = ["f/**"]
tasks = ["one", "two", "three"]
"#;

#[test]
fn makespan_follows_jobs() {
    let repo = repo_with_plan(SCHEDULE_PLAN);
    // Work: a2 b2 c1 d1 e1 f3 = 10; critical path a -> b -> c = 5.
    let one = schedule(&repo, &["--jobs", "1"]);
    assert_eq!(one["jobs"], 1);
    assert_eq!(one["total_work"], 10.0);
    assert_eq!(one["critical_path"], serde_json::json!(["a", "b", "c"]));
    assert_eq!(one["critical_path_length"], 5.0);
    assert_eq!(one["makespan"], 10.0);
    assert_eq!(one["ideal_bound"], 10.0);

    let two = schedule(&repo, &["--jobs", "2"]);
    assert_eq!(two["ideal_bound"], 5.0);
    assert_eq!(two["makespan"], 5.0);
    // The critical path starts first, then the longest remaining work.
    assert_eq!(two["timeline"][0]["stream"], "a");
    assert_eq!(two["timeline"][1]["stream"], "f");

    // Without --jobs, the plan's `jobs`.
    let plan_jobs = schedule(&repo, &[]);
    assert_eq!(plan_jobs["jobs"], 3);
    assert_eq!(plan_jobs["makespan"], 5.0);

    let out = repo.streams(&["plan", "--jobs", "0"]);
    out.assert_code(2);
}

#[test]
fn estimates_as_durations() {
    let repo = repo_with_plan(
        r#"
[plan]
name = "est"
agent = ["true"]
jobs = 2

[[stream]]
name = "db"
owns = ["src/db/**"]
estimate = "10m"
tasks = ["one", "two"]

[[stream]]
name = "api"
owns = ["src/api/**"]
depends_on = ["db"]
tasks = ["one"]

[[stream.task]]
prompt = "two"
estimate = "1h"

[[stream]]
name = "ui"
owns = ["web/**"]
tasks = ["one"]
estimate = "45m"
"#,
    );
    let s = schedule(&repo, &[]);
    assert_eq!(s["unit"], "seconds");
    // db 20m, api 1s + 1h (a task without an estimate counts 1), ui 45m.
    assert_eq!(s["critical_path"], serde_json::json!(["db", "api"]));
    assert_eq!(s["critical_path_length"], 1200.0 + 1.0 + 3600.0);
    let out = plan_unchanged(&repo, &[]);
    out.assert_code(0);
    insta::assert_snapshot!(out.to_string());
}

// ---------------------------------------------------------------------------------------------
// Where the plan is, and where streams runs.

#[test]
fn plan_path_default_explicit_and_dash_c() {
    let repo = webapp_example();
    // The same plan under another name: the output says which file was read.
    let other = repo
        .read("streams.toml")
        .replacen("name = \"webapp\"", "name = \"other\"", 1);
    repo.write("plans/other.toml", &other);
    let read = |out: &crate::common::CmdOutput, name: &str| {
        out.assert_code(0);
        assert!(
            out.stdout.starts_with(&format!("plan `{name}` is valid")),
            "{out}"
        );
    };
    read(&plan_unchanged(&repo, &[]), "webapp");
    read(&plan_unchanged(&repo, &["plans/other.toml"]), "other");

    // From a subdirectory, the default is still streams.toml at the root.
    let mut cmd = repo.streams_cmd(&["plan"]);
    cmd.current_dir(repo.path("src/api"));
    read(
        &crate::common::CmdOutput::new(cmd.output().unwrap(), &repo),
        "webapp",
    );

    // -C DIR, like git; a relative plan path is relative to DIR.
    let mut cmd = repo.streams_cmd(&["-C", "plans", "plan", "other.toml"]);
    cmd.current_dir(&repo.root);
    read(
        &crate::common::CmdOutput::new(cmd.output().unwrap(), &repo),
        "other",
    );
}

#[test]
fn diagnostics_show_the_path_relative_to_the_current_directory() {
    let repo = repo_with_plan("[plan]\nname = \"x\"\n");
    repo.write("plans/bad.toml", "[plan]\nname = \"x\"\n");
    let out = repo.streams(&["plan"]);
    out.assert_code(2);
    assert!(out.stderr.contains("--> streams.toml:"), "{out}");

    let out = repo.streams(&["plan", "plans/bad.toml"]);
    assert!(out.stderr.contains("--> plans/bad.toml:"), "{out}");

    // Outside the current directory: the absolute path.
    let mut cmd = repo.streams_cmd(&["plan"]);
    cmd.current_dir(repo.path("src"));
    let out = crate::common::CmdOutput::new(cmd.output().unwrap(), &repo);
    assert!(
        out.to_string().contains("--> [REPO]/streams.toml:"),
        "{out}"
    );
}

#[test]
fn missing_plan_file() {
    let repo = webapp_repo();
    let out = plan_unchanged(&repo, &[]);
    out.assert_code(2);
    insta::assert_snapshot!(out.to_string());
}

#[test]
fn a_plan_larger_than_a_mebibyte_is_refused() {
    let repo = webapp_repo();
    // Reading /dev/zero would never end: it is not a regular file, refused before any read.
    let out = plan_unchanged(&repo, &["/dev/zero"]);
    out.assert_code(2);
    insta::assert_snapshot!(out.to_string());

    // A regular file just over the limit, valid TOML throughout (comments).
    let comments = "# padding padding padding padding padding padding padding\n".repeat(20_000);
    repo.write("big.toml", &format!("{SMALL_PLAN}{comments}"));
    let out = plan_unchanged(&repo, &["big.toml"]);
    out.assert_code(2);
    assert!(
        out.stderr.contains("big.toml is larger than 1 MiB"),
        "{out}"
    );
}

#[test]
fn worktree_root_outside_the_checkout_only() {
    let repo = webapp_repo();
    let root = repo.root.display().to_string();
    let with_root = |dir: &str| {
        repo.write(
            "streams.toml",
            &SMALL_PLAN.replace("[plan]\n", &format!("[plan]\nworktree_root = {dir:?}\n")),
        );
        plan_unchanged(&repo, &[])
    };
    for inside in [
        "wt",
        "./wt",
        "src/../wt",
        "../repo/wt",
        &format!("{root}/wt"),
        &root,
    ] {
        let out = with_root(inside);
        out.assert_code(2);
        assert!(
            out.stderr
                .contains("puts the workspaces inside your checkout"),
            "{inside}: {out}"
        );
    }
    let out = with_root("~/wt");
    out.assert_code(2);
    assert!(
        out.stderr
            .contains("starts with `~`, which is not expanded"),
        "{out}"
    );
    for outside in ["../wt", "../repo-wt", "/tmp/streams-wt"] {
        with_root(outside).assert_code(0);
    }
}

/// Issue 16 #10: an agent script that is not committed passed `plan`, then every task failed
/// with "not found": the workspaces hold only what is committed at `base`.
#[test]
fn an_uncommitted_agent_script_is_refused_until_committed() {
    use std::os::unix::fs::PermissionsExt;
    let repo = webapp_repo();
    repo.write(
        "agent.sh",
        "#!/bin/sh\necho done > \"$STREAMS_WORKTREE/src/api/done\"\n",
    );
    std::fs::set_permissions(
        repo.path("agent.sh"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    repo.write(
        "streams.toml",
        &SMALL_PLAN.replace("agent = [\"true\"]", "agent = [\"./agent.sh\"]"),
    );
    let out = plan_unchanged(&repo, &[]);
    out.assert_code(2);
    insta::assert_snapshot!(out.to_string());

    // An absolute path to the same script works from anywhere.
    let absolute = repo.path("agent.sh").display().to_string();
    repo.write(
        "streams.toml",
        &SMALL_PLAN.replace("agent = [\"true\"]", &format!("agent = [{absolute:?}]")),
    );
    plan_unchanged(&repo, &[]).assert_code(0);

    // Committed (with its executable bit), the relative path is found in the workspace.
    repo.write(
        "streams.toml",
        &SMALL_PLAN.replace("agent = [\"true\"]", "agent = [\"./agent.sh\"]"),
    );
    repo.commit_all("add the agent");
    plan_unchanged(&repo, &[]).assert_code(0);
}

/// A bare program name is looked up on the PATH the agent will get: the plan's or its stream's
/// `env` may set one.
#[test]
fn agent_programs_are_looked_up_on_the_path_the_agent_gets() {
    use std::os::unix::fs::PermissionsExt;
    let repo = webapp_repo();
    let bin = repo.home.join("tools");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::write(bin.join("my-agent"), "#!/bin/sh\n").unwrap();
    std::fs::set_permissions(bin.join("my-agent"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let with = |env: &str| {
        repo.write(
            "streams.toml",
            &SMALL_PLAN.replace(
                "agent = [\"true\"]",
                &format!("agent = [\"my-agent\"]\n{env}"),
            ),
        );
        plan_unchanged(&repo, &[])
    };
    let out = with("");
    out.assert_code(2);
    assert!(
        out.stderr
            .contains("agent program `my-agent` was not found on PATH"),
        "{out}"
    );
    with(&format!(
        "env = {{ PATH = {:?} }}",
        bin.display().to_string()
    ))
    .assert_code(0);
}

#[test]
fn quiet_prints_nothing_for_a_valid_plan() {
    let repo = webapp_example();
    let out = repo.streams(&["-q", "plan"]);
    out.assert_code(0);
    assert_eq!(out.stderr, "");
    assert_eq!(out.stdout, "");
}

// ---------------------------------------------------------------------------------------------
// The repository and git.

const SMALL_PLAN: &str = r#"
[plan]
name = "webapp"
agent = ["true"]

[[stream]]
name = "api"
owns = ["src/api/**"]
tasks = ["Add /login"]
"#;

#[test]
fn git_too_old() {
    let repo = repo_with_plan(SMALL_PLAN);
    let bin = repo.home.join("old-git");
    std::fs::create_dir_all(&bin).unwrap();
    let git = bin.join("git");
    std::fs::write(&git, "#!/bin/sh\necho \"git version 2.30.0\"\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&git, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut cmd = repo.streams_cmd(&["plan"]);
    let path = std::env::var("PATH").unwrap_or_default();
    cmd.env("PATH", format!("{}:{path}", bin.display()));
    let out = crate::common::CmdOutput::new(cmd.output().unwrap(), &repo);
    out.assert_code(2);
    insta::assert_snapshot!(out.to_string());
}

#[test]
fn not_a_repository() {
    let repo = webapp_repo();
    let outside = repo.home.join("elsewhere");
    std::fs::create_dir_all(&outside).unwrap();
    let mut cmd = repo.streams_cmd(&["plan"]);
    cmd.current_dir(&outside);
    // Keep git from finding the repository of whoever runs the tests above the temp dir.
    cmd.env("GIT_CEILING_DIRECTORIES", repo.home.parent().unwrap());
    let out = crate::common::CmdOutput::new(cmd.output().unwrap(), &repo);
    out.assert_code(2);
    insta::assert_snapshot!(out.to_string());
}

#[test]
fn repository_git_cannot_read() {
    let repo = repo_with_plan(SMALL_PLAN);
    repo.git(&["config", "core.repositoryformatversion", "99"]);
    let out = repo.streams(&["plan"]);
    out.assert_code(2);
    insta::assert_snapshot!(out.to_string());
}

#[test]
fn repository_without_commits() {
    let repo = TestRepo::empty();
    repo.write("streams.toml", SMALL_PLAN);
    let out = plan_unchanged(&repo, &[]);
    out.assert_code(2);
    insta::assert_snapshot!(out.to_string());
}

#[test]
fn base_is_pinned_and_ownership_is_read_at_base() {
    // Files added after `base` do not count: `src/api/new.rs` only exists on main's tip.
    let repo = repo_with_plan(
        r#"
[plan]
name = "webapp"
base = "v1"
agent = ["true"]

[[stream]]
name = "api"
owns = ["src/api/**"]
tasks = ["Add /login"]

[[stream]]
name = "later"
owns = ["src/api/new.rs"]
tasks = ["x"]
"#,
    );
    repo.git(&["tag", "v1"]);
    repo.write("src/api/new.rs", "\n");
    repo.commit_all("later");
    let out = plan_unchanged(&repo, &["--json"]);
    // The two patterns overlap on a future path, though no file at `v1` shows it.
    out.assert_code(2);
    assert!(
        out.stderr.contains("could both match the same file"),
        "{out}"
    );
    assert!(out.stderr.contains("`src/api/new.rs` would"), "{out}");
}

#[test]
fn absolute_path_into_the_repository() {
    let repo = webapp_repo();
    let root = repo.root.display().to_string();
    repo.write(
        "streams.toml",
        &SMALL_PLAN.replace("\"src/api/**\"", &format!("\"{root}/src/api/**\"")),
    );
    let out = plan_unchanged(&repo, &[]);
    out.assert_code(2);
    insta::assert_snapshot!(out.to_string());
}

/// The pattern rules docs/plan.md states, checked against tracked files.
#[test]
fn pattern_semantics() {
    let repo = TestRepo::with_files(&[
        ("Cargo.toml", ""),
        ("crates/a/Cargo.toml", ""),
        ("src/lib.rs", ""),
        ("src/x/deep.rs", ""),
        ("README.md", ""),
        ("docs/intro.md", ""),
    ]);
    let count = |pattern: &str| -> u64 {
        repo.write(
            "streams.toml",
            &format!(
                "[plan]\nname = \"p\"\nagent = [\"true\"]\n[[stream]]\nname = \"s\"\nowns = [{pattern:?}]\ntasks = [\"t\"]\n"
            ),
        );
        let out = repo.streams(&["plan", "--json"]);
        out.assert_code(0);
        let json: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
        json["streams"][0]["owned_files"].as_u64().unwrap()
    };
    assert_eq!(count("Cargo.toml"), 1, "the root file only");
    assert_eq!(count("/Cargo.toml"), 1, "a leading / changes nothing");
    assert_eq!(count("**/Cargo.toml"), 2, "any of them");
    assert_eq!(count("src/*"), 1, "direct children only");
    assert_eq!(count("src/**"), 2, "everything below");
    assert_eq!(count("*.md"), 1, "root-level only");
    assert_eq!(count("**/*.md"), 2);
    assert_eq!(count("{src,docs}/**"), 3);
    assert_eq!(count("**"), 6);
}

#[test]
fn unowned_files_are_counted_with_examples() {
    let repo = repo_with_plan(SMALL_PLAN);
    let out = plan_unchanged(&repo, &["--json"]);
    out.assert_code(0);
    let json: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let own = &json["ownership"];
    assert_eq!(own["tracked_files"], 14);
    assert_eq!(json["streams"][0]["owned_files"], 2);
    assert_eq!(own["unowned_files"], 12);
    assert_eq!(
        own["unowned_examples"],
        serde_json::json!([
            "Cargo.lock",
            "Cargo.toml",
            "README.md",
            "docs/api.md",
            "docs/guide.md"
        ])
    );
}

#[test]
fn uncommitted_edits_to_owned_files_are_a_warning() {
    // A run starts from the pinned base commit: edits in the checkout never reach an agent,
    // and neither `plan` nor `run --dry-run` said so.
    let repo = repo_with_plan(
        r#"
[plan]
name = "dirty"
agent = ["act", "write", "{stream}.txt", "x"]
shared = ["Cargo.lock"]

[[stream]]
name = "api"
owns = ["src/api/**"]
tasks = ["Add the login endpoint"]

[[stream]]
name = "web"
owns = ["web/**"]
tasks = ["Add the login page"]
"#,
    );
    let clean = repo.streams(&["plan"]);
    clean.assert_code(0);
    assert!(!clean.stderr.contains("uncommitted"), "{clean}");

    // An edit nobody owns is no concern of a run's: no warning either.
    repo.write("README.md", "# changed\n");
    let out = repo.streams(&["plan"]);
    out.assert_code(0);
    assert!(!out.stderr.contains("uncommitted"), "{out}");

    repo.write("src/api/login.rs", "pub fn login() { todo!() }\n");
    repo.write("web/new.js", "\n");
    repo.write("Cargo.lock", "# changed\n");
    let out = repo.streams(&["plan"]);
    out.assert_code(0);
    assert!(
        out.stderr.contains(
            "warning: 3 files that streams own have uncommitted changes in this checkout: \
             Cargo.lock (shared), src/api/login.rs (api), web/new.js (web)"
        ),
        "{out}"
    );
    assert!(
        out.stderr
            .contains("a run starts every stream from `base` (HEAD), without these changes"),
        "{out}"
    );
    assert!(out.stderr.contains("help: commit them first"), "{out}");
    let dry = repo.streams(&["run", "--dry-run"]);
    dry.assert_code(0);
    assert!(
        dry.stderr
            .contains("warning: 3 files that streams own have uncommitted changes"),
        "{dry}"
    );
}
