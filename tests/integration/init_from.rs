//! `streams init --from TASKS`: task lists (spec-kit's tasks.md, a plain checklist, JSON) into
//! plans, each generated plan snapshotted whole and held to `streams plan`; errors in the list
//! (a dependency cycle, ids nobody defines) reported whole, with nothing written; the agent
//! chosen as plain `init` chooses it.

use crate::common::{CmdOutput, TestRepo, agents_dir, fixtures_dir};

fn fixture(name: &str) -> String {
    std::fs::read_to_string(fixtures_dir().join("tasks").join(name)).unwrap()
}

/// A Python web service, as spec-kit's example tasks assume.
const SERVICE_FILES: &[(&str, &str)] = &[
    ("README.md", "# accounts\n"),
    ("pyproject.toml", "[project]\nname = \"accounts\"\n"),
    ("src/app.py", "app = None\n"),
    ("src/db/__init__.py", ""),
    ("src/models/__init__.py", ""),
    ("src/services/__init__.py", ""),
    ("src/api/__init__.py", ""),
    ("src/api/routes.py", "routes = []\n"),
    ("tests/contract/__init__.py", ""),
    ("tests/integration/__init__.py", ""),
    ("docs/index.md", "# Accounts\n"),
    ("docs/api.md", "# API\n"),
];

/// A Rust command-line tool and a web app, for the checklist and the JSON list.
const TOOL_FILES: &[(&str, &str)] = &[
    ("Cargo.toml", "[package]\nname = \"tool\"\n"),
    ("CHANGELOG.md", "# Changes\n"),
    ("src/main.rs", "fn main() {}\n"),
    ("src/cli.rs", "pub fn args() {}\n"),
    ("src/parser.rs", "pub fn parse() {}\n"),
    ("src/db/mod.rs", "pub mod users;\n"),
    ("src/db/users.rs", "pub struct User;\n"),
    ("src/api/mod.rs", "pub mod users;\n"),
    ("migrations/001_users.sql", "create table users (id int);\n"),
    ("web/index.html", "<html></html>\n"),
    ("docs/usage.md", "# Usage\n"),
    ("tests/parser.rs", "#[test] fn parses() {}\n"),
];

/// A repository holding `files` and the task list at `tasks_path` (committed, as a spec-kit
/// project keeps it), with stand-ins for the agent CLIs on PATH (claude is the one picked).
fn repo_with_tasks(files: &[(&str, &str)], tasks_path: &str, tasks: &str) -> TestRepo {
    let repo = TestRepo::with_files(files).with_agent_stubs();
    repo.write(tasks_path, tasks);
    repo.commit_all("tasks");
    repo
}

/// Runs `init --from TASKS --dry-run`, then `init --from TASKS` for real: the file written is
/// what the dry run printed, and `streams plan` accepts it as it is.
fn generate(repo: &TestRepo, tasks_path: &str) -> CmdOutput {
    let dry = repo.streams(&["init", "--from", tasks_path, "--dry-run", "--jobs", "2"]);
    dry.assert_code(0);
    assert!(
        !repo.path("streams.toml").exists(),
        "--dry-run wrote streams.toml"
    );
    let real = repo.streams(&["init", "--from", tasks_path, "--jobs", "2"]);
    real.assert_code(0);
    assert_eq!(real.stdout, "", "the plan goes to the file, not stdout");
    assert_eq!(repo.read("streams.toml"), dry.stdout);
    // `streams plan` accepts it as written (its agent program check included).
    repo.streams(&["plan"]).assert_code(0);
    dry
}

/// PATH with only the system's programs and the scripted agents: no agent CLI on it.
fn without_agent_clis(repo: &mut TestRepo) {
    repo.env.push((
        "PATH".into(),
        format!("{}:/usr/local/bin:/usr/bin:/bin", agents_dir().display()),
    ));
}

/// The `agent = ...` lines of a plan that are not comments.
fn agent_lines(plan: &str) -> Vec<&str> {
    plan.lines().filter(|l| l.starts_with("agent =")).collect()
}

#[test]
fn spec_kit_tasks_with_phases_and_parallel_markers() {
    let path = "specs/001-user-accounts/tasks.md";
    let repo = repo_with_tasks(SERVICE_FILES, path, &fixture("spec-kit.md"));
    let out = generate(&repo, path);
    insta::assert_snapshot!(out.to_string());
}

#[test]
fn a_plain_checklist() {
    let repo = repo_with_tasks(TOOL_FILES, "TODO.md", &fixture("checklist.md"));
    let out = generate(&repo, "TODO.md");
    insta::assert_snapshot!(out.to_string());
}

#[test]
fn a_json_task_list() {
    let repo = repo_with_tasks(TOOL_FILES, "tasks.json", &fixture("billing.json"));
    let out = generate(&repo, "tasks.json");
    insta::assert_snapshot!(out.to_string());
}

#[test]
fn tasks_naming_one_file_become_one_stream() {
    // In the checklist, two tasks edit docs/usage.md: they must share a stream, in list order,
    // and no other stream may own the file.
    let repo = repo_with_tasks(TOOL_FILES, "TODO.md", &fixture("checklist.md"));
    let out = repo.streams(&["init", "--from", "TODO.md", "--dry-run"]);
    out.assert_code(0);
    let plan: toml::Table = toml::from_str(&out.stdout).unwrap();
    let streams = plan["stream"].as_array().unwrap();
    let owning: Vec<&toml::Value> = streams
        .iter()
        .filter(|s| {
            s["owns"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p.as_str() == Some("docs/usage.md") || p.as_str() == Some("docs/**"))
        })
        .collect();
    assert_eq!(owning.len(), 1, "{}", out.stdout);
    let tasks: Vec<&str> = owning[0]["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert_eq!(
        tasks,
        [
            "Update the flag's documentation in docs/usage.md",
            "Mention the renamed flag in CHANGELOG.md and docs/usage.md",
        ]
    );
}

#[test]
fn a_dependency_cycle_is_an_error_naming_the_ids() {
    let repo = repo_with_tasks(TOOL_FILES, "tasks.md", &fixture("cycle.md"));
    let out = repo.streams(&["init", "--from", "tasks.md"]);
    out.assert_code(2);
    assert!(!repo.path("streams.toml").exists());
    insta::assert_snapshot!(out.to_string());
}

#[test]
fn ids_referenced_but_not_defined_are_all_reported() {
    let repo = repo_with_tasks(TOOL_FILES, "tasks.md", &fixture("undefined.md"));
    let out = repo.streams(&["init", "--from", "tasks.md"]);
    out.assert_code(2);
    assert!(!repo.path("streams.toml").exists());
    insta::assert_snapshot!(out.to_string());
}

#[test]
fn an_existing_plan_is_never_overwritten() {
    let repo = repo_with_tasks(TOOL_FILES, "TODO.md", &fixture("checklist.md"));
    repo.write("streams.toml", "# mine\n");
    let out = repo.streams(&["init", "--from", "TODO.md"]);
    out.assert_code(2);
    assert_eq!(repo.read("streams.toml"), "# mine\n");
    insta::assert_snapshot!(out.to_string());
    // No temporary file is left behind either.
    let leftovers: Vec<String> = std::fs::read_dir(&repo.root)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".streams.toml"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn the_agent_is_the_first_cli_on_path_the_others_are_comments() {
    let repo = repo_with_tasks(TOOL_FILES, "TODO.md", &fixture("checklist.md"));
    let out = repo.streams(&["init", "--from", "TODO.md", "--dry-run"]);
    out.assert_code(0);
    assert_eq!(
        agent_lines(&out.stdout),
        [r#"agent = "claude""#],
        "{}",
        out.stdout
    );
    for other in [
        "# agent = \"codex\"",
        "# agent = \"aider\"",
        "# agent = [\"sh\"",
    ] {
        assert!(
            out.stdout.contains(other),
            "{other} missing:\n{}",
            out.stdout
        );
    }
}

#[test]
fn agent_flag_writes_that_agent_only() {
    let repo = repo_with_tasks(TOOL_FILES, "TODO.md", &fixture("checklist.md"));
    let out = repo.streams(&["init", "--from", "TODO.md", "--agent", "codex"]);
    out.assert_code(0);
    let written = repo.read("streams.toml");
    assert_eq!(agent_lines(&written), [r#"agent = "codex""#]);
    assert!(!written.contains("claude"), "{written}");
    assert!(!out.stderr.contains("not on PATH"), "{}", out.stderr);
    repo.streams(&["plan"]).assert_code(0);
}

#[test]
fn an_agent_named_but_not_installed_is_written_with_a_note() {
    let mut repo = repo_with_tasks(TOOL_FILES, "TODO.md", &fixture("checklist.md"));
    without_agent_clis(&mut repo);
    let out = repo.streams(&["init", "--from", "TODO.md", "--agent", "aider"]);
    out.assert_code(0);
    assert_eq!(
        agent_lines(&repo.read("streams.toml")),
        [r#"agent = "aider""#]
    );
    assert!(
        out.stderr
            .contains("note: `aider` is not on PATH: install it before `streams run`"),
        "{}",
        out.stderr
    );
    // And `plan` says the same, at the line.
    let plan = repo.streams(&["plan"]);
    plan.assert_code(2);
    assert!(
        plan.stderr
            .contains("agent program `aider` was not found on PATH"),
        "{}",
        plan.stderr
    );
}

#[test]
fn with_no_agent_cli_on_path_the_agent_is_asked_for() {
    let mut repo = repo_with_tasks(TOOL_FILES, "TODO.md", &fixture("checklist.md"));
    without_agent_clis(&mut repo);
    let out = repo.streams(&["init", "--from", "TODO.md"]);
    out.assert_code(2);
    assert!(!repo.path("streams.toml").exists());
    insta::assert_snapshot!(out.to_string());
    // A script of one's own needs no CLI on PATH (`plan` wants it committed first). A dry run
    // writes neither the plan nor the script; the plan comes with the script it names.
    let out = repo.streams(&[
        "init",
        "--from",
        "TODO.md",
        "--agent",
        "script",
        "--dry-run",
    ]);
    out.assert_code(0);
    assert!(!repo.path("scripts/agent.sh").exists(), "{out}");
    let out = repo.streams(&["init", "--from", "TODO.md", "--agent", "script"]);
    out.assert_code(0);
    assert_eq!(
        agent_lines(&repo.read("streams.toml")),
        [r#"agent = ["sh", "scripts/agent.sh", "{prompt_file}"]"#]
    );
    assert!(
        repo.read("scripts/agent.sh").contains("calls no agent yet"),
        "{out}"
    );
    assert!(
        out.stderr.contains(
            "wrote scripts/agent.sh: make it call your agent, then commit it: `git add scripts/agent.sh && git commit -m \"streams agent\"`"
        ),
        "{out}"
    );
}

#[test]
fn the_plan_path_argument_names_the_file_written() {
    let repo = repo_with_tasks(TOOL_FILES, "TODO.md", &fixture("checklist.md"));
    let out = repo.streams(&["init", "plans/todo.toml", "--from", "TODO.md"]);
    out.assert_code(0);
    assert!(!repo.path("streams.toml").exists());
    assert!(repo.read("plans/todo.toml").contains("[[stream]]"));
    assert!(
        out.stderr
            .contains("then `streams plan plans/todo.toml` and `streams run plans/todo.toml`"),
        "{}",
        out.stderr
    );
    repo.streams(&["plan", "plans/todo.toml"]).assert_code(0);
}

#[test]
fn from_only_options_need_from_and_from_excludes_example() {
    let repo = repo_with_tasks(TOOL_FILES, "TODO.md", &fixture("checklist.md"));
    for args in [
        &["init", "--dry-run"][..],
        &["init", "--jobs", "2"],
        &["init", "--from", "TODO.md", "--example", "script"],
    ] {
        let out = repo.streams(args);
        out.assert_code(2);
        assert!(out.stderr.contains("error:"), "{args:?}: {}", out.stderr);
    }
    assert!(!repo.path("streams.toml").exists());
}

#[test]
fn a_missing_task_list() {
    let repo = TestRepo::with_files(TOOL_FILES).with_agent_stubs();
    let out = repo.streams(&["init", "--from", "nope.md"]);
    out.assert_code(2);
    insta::assert_snapshot!(out.to_string());
}

#[test]
fn a_list_without_tasks() {
    let repo = repo_with_tasks(TOOL_FILES, "notes.md", "# Notes\n\nNothing to do yet.\n");
    let out = repo.streams(&["init", "--from", "notes.md"]);
    out.assert_code(2);
    insta::assert_snapshot!(out.to_string());
}

#[test]
fn a_task_naming_no_file_is_not_counted_as_a_path_the_tasks_create() {
    // One task edits a tracked file, one names no file: its stream's placeholder `owns`
    // matches nothing, but no task creates it; REVIEW is what the person must act on.
    let tasks = "- [ ] T001 Fix the parser in src/parser.rs\n- [ ] T002 Think about errors\n";
    let repo = repo_with_tasks(TOOL_FILES, "TODO.md", tasks);
    let out = repo.streams(&["init", "--from", "TODO.md", "--jobs", "2"]);
    out.assert_code(0);
    assert!(out.stderr.contains("look for REVIEW"), "{}", out.stderr);
    assert!(!out.stderr.contains("not tracked yet"), "{}", out.stderr);
}
