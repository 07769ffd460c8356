//! What a CI run leaves for people: JUnit XML, GitHub Actions annotations and step summary,
//! Mermaid charts in `report.md`, and the example workflow.

use std::path::PathBuf;

use crate::common::TestRepo;
use crate::run::{app_repo, plan};

fn run_dir(repo: &TestRepo) -> PathBuf {
    let id = std::fs::read_to_string(repo.common_dir().join("streams/current")).unwrap();
    repo.common_dir().join("streams/runs").join(id.trim())
}

/// `db` (two tasks) lands; `api` fails: its agent prints and exits 3; `ui` waits for `api`
/// and is skipped.
fn mixed_plan(repo: &TestRepo) {
    plan(
        repo,
        r#"
[plan]
name = "p"
jobs = 2

[[stream]]
name = "db"
owns = ["src/db/**"]
agent = ["act", "append", "src/db/mod.rs", "{task}"]
tasks = ["Add the schema", "Add the migration"]

[[stream]]
name = "api"
owns = ["src/api/**"]
agent = ["act", "say", "compiling...", "say", "error: it broke", "exit", "3"]
tasks = ["Add /login"]

[[stream]]
name = "ui"
owns = ["src/ui/**"]
depends_on = ["api"]
agent = ["act", "write", "src/ui/x.html", "x"]
tasks = ["Build the page"]
"#,
    );
}

// ---------------------------------------------------------------------------------------------
// JUnit XML

/// The required parts of the JUnit XSD that Jenkins, GitLab and the JUnit-reading GitHub
/// actions use (junit-10.xsd): `testsuites` holding `testsuite`s with `name` and counts that
/// match their cases, `testcase`s with `name`, `classname` and a numeric `time`, at most one
/// `failure`/`error`/`skipped` in a case, `failure` with `message` and `type`. Returns the
/// suites by name.
fn check_junit_schema(xml: &str) -> Vec<(String, Vec<roxmltree::Node<'_, '_>>)> {
    let doc = Box::leak(Box::new(
        roxmltree::Document::parse(xml).unwrap_or_else(|e| panic!("not XML: {e}\n{xml}")),
    ));
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "testsuites");
    let number = |n: &roxmltree::Node, attr: &str| -> f64 {
        n.attribute(attr)
            .unwrap_or_else(|| panic!("<{}> has no {attr}", n.tag_name().name()))
            .parse()
            .unwrap_or_else(|e| panic!("{attr} is not a number: {e}"))
    };
    let mut suites = Vec::new();
    let (mut all_tests, mut all_failures) = (0.0, 0.0);
    for suite in root.children().filter(|n| n.is_element()) {
        assert_eq!(suite.tag_name().name(), "testsuite");
        let name = suite.attribute("name").expect("testsuite without a name");
        let cases: Vec<_> = suite
            .children()
            .filter(|n| n.has_tag_name("testcase"))
            .collect();
        let count = |tag: &str| {
            cases
                .iter()
                .filter(|c| c.children().any(|n| n.has_tag_name(tag)))
                .count() as f64
        };
        assert_eq!(number(&suite, "tests"), cases.len() as f64, "{name}");
        assert_eq!(number(&suite, "failures"), count("failure"), "{name}");
        assert_eq!(number(&suite, "errors"), count("error"), "{name}");
        assert_eq!(number(&suite, "skipped"), count("skipped"), "{name}");
        assert!(number(&suite, "time") >= 0.0);
        for case in &cases {
            assert!(case.attribute("name").is_some_and(|n| !n.is_empty()));
            assert_eq!(case.attribute("classname"), Some(name));
            assert!(number(case, "time") >= 0.0);
            let outcomes = case
                .children()
                .filter(|n| ["failure", "error", "skipped"].contains(&n.tag_name().name()))
                .count();
            assert!(outcomes <= 1, "{xml}");
            for failure in case.children().filter(|n| n.has_tag_name("failure")) {
                assert!(failure.attribute("message").is_some(), "{xml}");
                assert!(failure.attribute("type").is_some(), "{xml}");
            }
        }
        all_tests += cases.len() as f64;
        all_failures += count("failure");
        suites.push((name.to_string(), cases));
    }
    assert_eq!(number(&root, "tests"), all_tests);
    assert_eq!(number(&root, "failures"), all_failures);
    suites
}

#[test]
fn junit_xml_has_a_suite_per_stream_and_a_case_per_task_and_integration() {
    let repo = app_repo();
    mixed_plan(&repo);
    let out = repo.streams(&["run", "--junit", "out/junit.xml"]);
    out.assert_code(4);
    let xml = std::fs::read_to_string(repo.path("out/junit.xml")).unwrap();
    assert_eq!(
        std::fs::read_to_string(run_dir(&repo).join("report.xml")).unwrap(),
        xml,
        "the copy at --junit is report.xml"
    );
    let suites = check_junit_schema(&xml);
    let shape: Vec<(String, Vec<&str>)> = suites
        .iter()
        .map(|(name, cases)| {
            let names = cases.iter().map(|c| c.attribute("name").unwrap()).collect();
            (name.clone(), names)
        })
        .collect();
    assert_eq!(
        shape,
        [
            (
                "db".to_string(),
                vec![
                    "task 1: Add the schema",
                    "task 2: Add the migration",
                    "integration"
                ]
            ),
            ("api".to_string(), vec!["task 1: Add /login"]),
            ("ui".to_string(), vec!["task 1: Build the page"]),
        ]
    );
    // The failure: reason, kind, and the agent's last lines.
    let failure = suites[1].1[0]
        .children()
        .find(|n| n.has_tag_name("failure"))
        .unwrap();
    assert_eq!(
        failure.attribute("message"),
        Some("agent exited with code 3")
    );
    assert_eq!(failure.attribute("type"), Some("exit"));
    let text = failure.text().unwrap();
    assert!(
        text.contains("compiling...\nerror: it broke"),
        "the log tail is in the failure: {text}"
    );
    let skipped = suites[2].1[0]
        .children()
        .find(|n| n.has_tag_name("skipped"))
        .unwrap();
    assert_eq!(
        skipped.attribute("message"),
        Some("its dependency `api` did not finish")
    );
}

#[test]
fn a_halt_and_its_continue_both_leave_a_junit_report() {
    let repo = TestRepo::with_files(&[("a/x", "a\n"), ("b/x", "b\n"), ("shared.txt", "1\n2\n3\n")]);
    conflicting_plan(&repo);
    repo.streams(&["run"]).assert_code(3);
    let xml = std::fs::read_to_string(run_dir(&repo).join("report.xml")).unwrap();
    let suites = check_junit_schema(&xml);
    let b = &suites.iter().find(|(n, _)| n == "b").unwrap().1;
    let failure = b
        .iter()
        .flat_map(|c| c.children())
        .find(|n| n.has_tag_name("failure"))
        .expect("the conflict is a failure");
    assert_eq!(failure.attribute("type"), Some("conflict"));
    assert_eq!(
        failure.attribute("message"),
        Some("merge conflict in shared.txt")
    );

    let resolution = repo.common_dir().join("streams/worktrees/p/.integration");
    std::fs::write(resolution.join("shared.txt"), "1\nboth\n3\n").unwrap();
    repo.git_in(&resolution, &["add", "shared.txt"]);
    repo.streams(&["continue", "--junit", "continued.xml"])
        .assert_code(0);
    let xml = std::fs::read_to_string(repo.path("continued.xml")).unwrap();
    let suites = check_junit_schema(&xml);
    let b: Vec<&str> = suites
        .iter()
        .find(|(n, _)| n == "b")
        .unwrap()
        .1
        .iter()
        .map(|c| c.attribute("name").unwrap())
        .collect();
    // The conflicted attempt stays on record; the resolution integrated it.
    assert_eq!(b, ["task 1: Task of b", "integration", "integration 2"]);
    assert_eq!(xml.matches("<failure").count(), 1, "{xml}");
}

/// Streams `a` and `b` both rewrite the middle line of `shared.txt`; `b` waits until `a` is
/// integrated, so `b` is the one that conflicts.
fn conflicting_plan(repo: &TestRepo) {
    plan(
        repo,
        r#"
[plan]
name = "p"
jobs = 2
shared = ["shared.txt"]

[[stream]]
name = "a"
owns = ["a/**"]
agent = ["act", "write", "a/y", "ya", "write", "shared.txt", "from a"]
tasks = ["Task of a"]

[[stream]]
name = "b"
owns = ["b/**"]
agent = ["act", "wait-rev", "streams/p/integration:a/y", "write", "shared.txt", "from b"]
tasks = ["Task of b"]
"#,
    );
}

// ---------------------------------------------------------------------------------------------
// GitHub Actions

/// The workflow-command lines of an output (annotations, groups, fences).
fn commands(text: &str) -> Vec<&str> {
    text.lines().filter(|l| l.starts_with("::")).collect()
}

#[test]
fn in_github_actions_failures_are_annotated_and_logs_grouped() {
    let mut repo = app_repo();
    let summary = repo.root.parent().unwrap().join("summary.md");
    repo.env.extend([
        ("GITHUB_ACTIONS".to_string(), "true".to_string()),
        ("GITHUB_STEP_SUMMARY".into(), summary.display().to_string()),
        ("GITHUB_SERVER_URL".into(), "https://github.example".into()),
        ("GITHUB_REPOSITORY".into(), "octo/app".into()),
    ]);
    plan(
        &repo,
        r#"
[plan]
name = "p"
jobs = 1

[[stream]]
name = "db"
owns = ["src/db/**"]
agent = ["act", "say", "::warning::forged by the agent", "append", "src/db/mod.rs", "x"]
tasks = ["Add the schema"]

[[stream]]
name = "api"
owns = ["src/api/**"]
depends_on = ["db"]
agent = ["act", "say", "writing, 100% sure", "write", "src/ui/index.html", "mine now", "write", "README.md", "too"]
tasks = ["Add /login"]
"#,
    );
    let out = repo.streams(&["run"]);
    out.assert_code(4);
    let stderr = out.stderr_redacted();
    let lines = commands(&stderr);
    // Every line between a fence and its end is inert, whatever an agent printed.
    let fence = lines[1].strip_prefix("::stop-commands::").unwrap();
    assert!(
        fence.starts_with("streams-") && fence.len() > 16,
        "{stderr}"
    );
    let end = format!("::{fence}::");
    let shown: Vec<String> = lines
        .iter()
        .map(|l| l.replace(fence, "[TOKEN]").replace(&end, "::[TOKEN]::"))
        .collect();
    assert_eq!(
        shown,
        [
            "::group::db task 1: Add the schema (ok, [TIME])",
            "::stop-commands::[TOKEN]",
            "::warning::forged by the agent",
            "::[TOKEN]::",
            "::endgroup::",
            "::group::api task 1: Add /login (failed, [TIME])",
            "::stop-commands::[TOKEN]",
            "::[TOKEN]::",
            "::endgroup::",
            "::error file=README.md,title=streams%3A task 1 of stream api changed a path it does not own::changed paths it does not own: README.md (owned by no stream), src/ui/index.html (owned by no stream); its work is kept on refs/streams/p/rejected/api/1",
        ],
        "{stderr}"
    );
    // The agent's own lines are inside its group.
    let api_group = stderr.split("::group::api").nth(1).unwrap();
    assert!(api_group.contains("\nwriting, 100% sure\n"), "{stderr}");

    // The step summary: the report's table, then links to the branches.
    let summary = std::fs::read_to_string(summary).unwrap();
    assert!(summary.contains("| db | integrated | 1/1 |"), "{summary}");
    assert!(summary.contains("| api | failed | 0/1 |"), "{summary}");
    assert!(
        summary.contains(
            "- api: [streams/p/api](https://github.example/octo/app/tree/streams/p/api) (failed)"
        ),
        "{summary}"
    );
    assert!(summary.contains(
        "- integration: [streams/p/integration](https://github.example/octo/app/tree/streams/p/integration)"
    ));
    // report.md is the same report without the links (they point at GitHub).
    let md = std::fs::read_to_string(run_dir(&repo).join("report.md")).unwrap();
    assert!(summary.starts_with(&md));
    assert!(!md.contains("https://github.example"));
}

#[test]
fn a_conflict_halt_is_annotated_at_each_conflicted_file() {
    let mut repo = TestRepo::with_files(&[
        ("a/x", "a\n"),
        ("b/x", "b\n"),
        ("shared.txt", "1\n2\n3\n"),
        ("notes.md", "1\n2\n3\n"),
    ]);
    repo.env.push(("GITHUB_ACTIONS".into(), "true".into()));
    plan(
        &repo,
        r#"
[plan]
name = "p"
jobs = 2
shared = ["shared.txt", "notes.md"]

[[stream]]
name = "a"
owns = ["a/**"]
agent = ["act", "write", "a/y", "ya", "write", "shared.txt", "from a", "write", "notes.md", "from a"]
tasks = ["Task of a"]

[[stream]]
name = "b"
owns = ["b/**"]
agent = ["act", "wait-rev", "streams/p/integration:a/y", "write", "shared.txt", "from b", "write", "notes.md", "from b"]
tasks = ["Task of b"]
"#,
    );
    let out = repo.streams(&["run"]);
    out.assert_code(3);
    let stderr = out.stderr_redacted();
    let errors: Vec<&str> = commands(&stderr)
        .into_iter()
        .filter(|l| l.starts_with("::error"))
        .collect();
    assert_eq!(errors.len(), 2, "{stderr}");
    for (line, file) in errors.iter().zip(["notes.md", "shared.txt"]) {
        assert!(
            line.starts_with(&format!(
                "::error file={file},title=streams%3A conflict integrating stream b::b's work conflicts with the integration branch here; resolve it in "
            )),
            "{line}"
        );
        assert!(line.ends_with("and run `streams continue` (or `streams skip b`)"));
    }
}

#[test]
fn outside_github_actions_there_are_no_workflow_commands() {
    let repo = app_repo();
    mixed_plan(&repo);
    let out = repo.streams(&["run"]);
    out.assert_code(4);
    assert_eq!(commands(&out.stderr), Vec::<&str>::new(), "{out}");
}
