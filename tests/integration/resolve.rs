//! Conflicts settled before they reach a person (issue 29): the merge drivers the user's
//! repository configures run in the integration, as `git merge` runs them.

use std::path::PathBuf;

use crate::common::TestRepo;
use crate::support::plans::conflicting;
use crate::support::repos::repo_with_shared;
use crate::support::runs::{resolution, run_dir};

/// A repository whose `.gitattributes` (committed) sends `shared.txt` to the merge driver
/// `both`, configured in its `.git/config` to run `script` (sh) as `script %O %A %B %P`.
fn with_driver(script: &str) -> (TestRepo, PathBuf) {
    let repo = repo_with_shared();
    let driver = repo.root.parent().unwrap().join("driver.sh");
    std::fs::write(&driver, script).unwrap();
    repo.write(".gitattributes", "shared.txt merge=both\n");
    repo.commit_all("attributes");
    repo.git(&[
        "config",
        "merge.both.driver",
        &format!("sh {} %O %A %B %P", driver.display()),
    ]);
    (repo, driver)
}

/// Keeps every line of both sides, once each, sorted: a merge line-based merging cannot make
/// when both sides rewrote the same line. It notes each path it merged.
const SORTED_UNION: &str = r#"echo "$4" >> "$(dirname "$0")/driver-ran"
sort -u "$2" "$3" > "$2.merged" && mv "$2.merged" "$2"
"#;

#[test]
fn a_merge_driver_of_the_repository_resolves_a_conflict_with_no_halt() {
    let (repo, driver) = with_driver(SORTED_UNION);
    conflicting(&repo);
    let out = repo.streams(&["run"]);
    out.assert_code(0);
    assert_eq!(
        repo.git(&["show", "streams/p/integration:shared.txt"]),
        "from a\nfrom b"
    );
    let ran = std::fs::read_to_string(driver.with_file_name("driver-ran")).unwrap();
    assert!(ran.lines().all(|l| l == "shared.txt"), "{ran}");
    assert!(!resolution(&repo).exists(), "nothing parked");
}

#[test]
fn a_merge_driver_that_fails_leaves_the_conflict_for_a_person() {
    let (repo, driver) = with_driver(
        r#"echo "$4" >> "$(dirname "$0")/driver-ran"
exit 1
"#,
    );
    conflicting(&repo);
    let out = repo.streams(&["run"]);
    out.assert_code(3);
    assert!(
        out.stderr
            .contains("parked b: integrating it conflicts in shared.txt"),
        "{out}"
    );
    assert!(
        driver.with_file_name("driver-ran").exists(),
        "the driver ran"
    );
    assert!(resolution(&repo).exists());
}

#[test]
fn a_merge_driver_with_no_command_parks_the_stream_with_a_hint() {
    // Named by the attributes, configured without `driver`: `git merge` stops the whole merge.
    let repo = repo_with_shared();
    repo.write(".gitattributes", "shared.txt merge=both\n");
    repo.commit_all("attributes");
    repo.git(&["config", "merge.both.name", "keeps both sides"]);
    conflicting(&repo);
    let out = repo.streams(&["run"]);
    out.assert_code(3);
    assert!(
        out.stderr
            .contains("parked b: integrating it conflicts in shared.txt"),
        "{out}"
    );
    let hint = "b's conflict: `.gitattributes` names the merge driver `both` (merge=both), but your git config has no `merge.both.driver` command: the files it merges are merged as text and left to you; set it (`git config merge.both.driver '...'`) or drop the attribute";
    assert!(out.stderr.contains(hint), "{out}");
    // Merged as text, with the usual labelled markers, for a person.
    let text = std::fs::read_to_string(resolution(&repo).join("shared.txt")).unwrap();
    assert!(
        text.starts_with("<<<<<<< integration\nfrom a\n=======\nfrom b\n>>>>>>> b (task 1)"),
        "{text}"
    );
    let readme = std::fs::read_to_string(run_dir(&repo).join("conflicts/b/README.md")).unwrap();
    assert!(
        readme.contains("has no `merge.both.driver` command"),
        "{readme}"
    );
}

// ---------------------------------------------------------------------------------------------
// The resolver agent

/// The shared file both streams change at line 6 (`a` to `A6`, `b` to `B6`): the merge has one
/// conflicted region, lines 6-10 with its markers, and clean lines around it.
const LINES: &str = "l1\nl2\nl3\nl4\nl5\nl6\nl7\nl8\nl9\nl10\nl11\nl12\n";

/// Drops the conflict markers: both sides' lines kept, `A6` then `B6` (a correct resolution).
pub(crate) const RESOLVE: &str = r#"sed -i -e '/^<<<<<<< /d' -e '/^=======$/d' -e '/^>>>>>>> /d' shared.txt
"#;

/// Plan `p`: `a` changes line 6 of `shared.txt` and lands first; `b` changes the same line and
/// conflicts. The resolver is the script `script` (written beside the repository, named
/// `resolver`), with `mode`; `extra` goes in `[plan]`.
pub(crate) fn resolver_repo(script: &str, mode: &str, extra: &str) -> (TestRepo, PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let repo = TestRepo::with_files(&[("a/x", "a\n"), ("b/x", "b\n"), ("shared.txt", LINES)]);
    let resolver = repo.root.parent().unwrap().join("resolver");
    std::fs::write(&resolver, format!("#!/bin/sh\nset -e\n{script}")).unwrap();
    std::fs::set_permissions(&resolver, std::fs::Permissions::from_mode(0o755)).unwrap();
    crate::support::plans::plan(
        &repo,
        &format!(
            r#"
[plan]
name = "p"
jobs = 2
shared = ["shared.txt"]
resolve = {{ agent = ["{}"], mode = "{mode}" }}
{extra}

[[stream]]
name = "a"
owns = ["a/**"]
agent = ["act", "write", "a/y", "ya", "sh", "sed -i 's/^l6$/A6/' shared.txt"]
tasks = ["Make line 6 say A"]

[[stream]]
name = "b"
owns = ["b/**"]
agent = ["act", "wait-rev", "streams/p/integration:a/y", "sh", "sed -i 's/^l6$/B6/' shared.txt", "write", "b/y", "yb"]
tasks = ["Make line 6 say B"]
"#,
            resolver.display()
        ),
    );
    (repo, resolver)
}

const RESOLVED: &str = "l1\nl2\nl3\nl4\nl5\nA6\nB6\nl7\nl8\nl9\nl10\nl11\nl12";

fn integrated(repo: &TestRepo, path: &str) -> String {
    repo.git(&["show", &format!("streams/p/integration:{path}")])
}

/// `b` is parked: what `status --json` says of its resolver.
fn parked_state(repo: &TestRepo) -> serde_json::Value {
    let out = repo.streams(&["status", "--json"]);
    out.assert_code(0);
    let json: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(json["run"]["parked"][0]["stream"], "b", "{json}");
    json["run"]["parked"][0]["resolver"].clone()
}

#[test]
fn an_accepted_resolution_is_integrated_as_a_commit_of_its_own() {
    let (repo, _) = resolver_repo(RESOLVE, "accept", r#"check = ["test", "-f", "shared.txt"]"#);
    let out = repo.streams(&["run"]);
    out.assert_code(0);
    assert!(
        out.stderr.contains("the resolver resolved b's conflict in shared.txt and streams' checks passed: integrated as "),
        "{out}"
    );
    assert_eq!(integrated(&repo, "shared.txt"), RESOLVED);
    assert_eq!(integrated(&repo, "b/y"), "yb");
    // The resolution is its own commit, naming the resolver; below it, b's work with the
    // conflicted file as the integration had it.
    let top = repo.git(&["log", "-1", "--format=%B", "streams/p/integration"]);
    assert!(
        top.starts_with("Resolve the conflict of stream 'b' in shared.txt"),
        "{top}"
    );
    assert!(top.contains("Streams-Resolver: resolver"), "{top}");
    assert_eq!(
        repo.git(&[
            "diff",
            "--name-only",
            "streams/p/integration~1",
            "streams/p/integration"
        ]),
        "shared.txt"
    );
    assert_eq!(
        repo.git(&["show", "streams/p/integration~1:shared.txt"]),
        LINES.replace("l6", "A6").trim_end()
    );
    let report =
        std::fs::read_to_string(crate::support::runs::run_dir(&repo).join("report.md")).unwrap();
    assert!(
        report.contains("resolved by the resolver agent `resolver`"),
        "{report}"
    );
}

#[test]
fn a_proposed_resolution_waits_for_a_person_and_continue_lands_it() {
    let (repo, _) = resolver_repo(RESOLVE, "propose", "");
    let out = repo.streams(&["run"]);
    out.assert_code(3);
    assert!(
        out.stderr.contains("the resolver proposes a resolution of b's conflict in shared.txt (streams' checks passed); review it with `streams diff --resolution b`, then `streams continue b`"),
        "{out}"
    );
    // The steps at the end, and under `status`, are the review's, not a person's edit.
    let said = format!("{}{}", out.stdout, out.stderr);
    assert!(
        said.contains("streams diff --resolution b    # review the resolver's proposal"),
        "{out}"
    );
    assert!(!said.contains("# edit the conflicted files"), "{out}");
    let status = repo.streams(&["status"]);
    assert!(
        status
            .stdout
            .contains("next: review the proposal, then `streams continue b` lands it"),
        "{status}"
    );
    let b = parked_state(&repo);
    assert_eq!(b["resolver"], "resolver", "{b}");
    assert_eq!(b["refused"], serde_json::Value::Null, "{b}");
    let diff = repo.streams(&["diff", "--resolution", "b"]);
    diff.assert_code(0);
    assert!(
        diff.stdout.contains("+B6") && !diff.stdout.contains("-A6"),
        "{diff}"
    );
    // Nothing landed yet.
    assert_eq!(
        integrated(&repo, "shared.txt"),
        LINES.replace("l6", "A6").trim_end()
    );
    let out = repo.streams(&["continue", "b"]);
    out.assert_code(0);
    assert_eq!(integrated(&repo, "shared.txt"), RESOLVED);
    let top = repo.git(&["log", "-1", "--format=%B", "streams/p/integration"]);
    assert!(top.contains("Streams-Resolver: resolver"), "{top}");
}

#[test]
fn a_person_may_edit_a_proposal_before_continue_and_it_is_checked_as_theirs() {
    let (repo, _) = resolver_repo(RESOLVE, "propose", "");
    repo.streams(&["run"]).assert_code(3);
    let wt = resolution(&repo);
    // An edit outside the conflict is refused, as any `continue` refuses it.
    std::fs::write(wt.join("a/x"), "changed\n").unwrap();
    let out = repo.streams(&["continue", "b"]);
    assert_ne!(out.code, Some(0), "{out}");
    assert!(out.stderr.contains("a/x"), "{out}");
    std::fs::write(wt.join("a/x"), "a\n").unwrap();
    std::fs::write(
        wt.join("shared.txt"),
        format!("{}\n", RESOLVED.replace("B6", "B6 and A6")),
    )
    .unwrap();
    repo.streams(&["continue", "b"]).assert_code(0);
    assert_eq!(
        integrated(&repo, "shared.txt"),
        RESOLVED.replace("B6", "B6 and A6")
    );
    let top = repo.git(&["log", "-1", "--format=%B", "streams/p/integration"]);
    assert!(
        !top.contains("Streams-Resolver"),
        "the person's resolution: {top}"
    );
}

/// Runs plan `p` with the resolver `script` in mode accept and checks it was refused with
/// `reason`: the run halts with `b` parked, the conflict laid out again for a person, and what
/// the resolver did kept on `refs/streams/p/resolution/b`.
fn refused(script: &str, extra: &str, reason: &str) -> TestRepo {
    let (repo, _) = resolver_repo(script, "accept", extra);
    let out = repo.streams(&["run"]);
    out.assert_code(3);
    assert!(
        out.stderr.contains(&format!(
            "the resolver's resolution of b's conflict was refused: {reason}"
        )),
        "{out}"
    );
    assert!(out.stderr.contains("b waits for a person"), "{out}");
    let b = parked_state(&repo);
    assert!(
        b["refused"].as_str().is_some_and(|r| r.starts_with(reason)),
        "{b}"
    );
    // The person starts from the conflict; nothing the resolver did is lost.
    let text = std::fs::read_to_string(resolution(&repo).join("shared.txt")).unwrap();
    assert!(text.contains("<<<<<<< integration"), "{text}");
    let kept = repo.git(&["show", "refs/streams/p/resolution/b:shared.txt"]);
    assert!(kept.contains("B6"), "{kept}");
    assert_eq!(
        integrated(&repo, "shared.txt"),
        LINES.replace("l6", "A6").trim_end()
    );
    repo
}

#[test]
fn a_resolution_that_edits_a_file_outside_the_conflict_is_refused() {
    let _ = refused(
        &format!("{RESOLVE}echo changed > a/x\n"),
        "",
        "it changed files that did not conflict: a/x",
    );
}

#[test]
fn a_resolution_that_edits_one_line_beyond_the_margin_is_refused() {
    // Line 10 of the file is line 14 of the merge, 4 lines after the region's end marker.
    let _ = refused(
        &format!("{RESOLVE}sed -i 's/^l10$/L10/' shared.txt\n"),
        "",
        "it changed shared.txt outside the conflicted regions and their margin of 3 lines: line 14 of the merge (\"l10\")",
    );
}

#[test]
fn a_resolution_that_edits_within_the_margin_is_accepted() {
    let (repo, _) = resolver_repo(
        &format!("{RESOLVE}sed -i 's/^l9$/L9/' shared.txt\n"),
        "accept",
        "",
    );
    repo.streams(&["run"]).assert_code(0);
    assert_eq!(
        integrated(&repo, "shared.txt"),
        RESOLVED.replace("l9", "L9")
    );
}

#[test]
fn a_resolution_that_leaves_markers_is_refused() {
    let _ = refused(
        "sed -i -e '/^=======$/d' -e 's/^B6$/B6 too/' shared.txt\n",
        "",
        "it left conflict markers in shared.txt (line 6)",
    );
}

#[test]
fn a_resolution_that_breaks_the_gate_is_refused() {
    let repo = refused(
        RESOLVE,
        r#"gate = ["sh", "-c", "echo B6 is not welcome; ! grep -q B6 shared.txt"]"#,
        "the gate failed (exit code 1) on it (its log: ",
    );
    // The log it names is there, in the bundle laid out again for a person.
    let bundle = crate::support::runs::run_dir(&repo).join("conflicts/b");
    let log = std::fs::read_to_string(bundle.join("resolver-check-1.log")).unwrap();
    assert!(log.contains("B6 is not welcome"), "{log}");
    assert!(bundle.join("resolver-prompt.md").exists());
    assert!(bundle.join("README.md").exists());
}

#[test]
fn the_plan_says_what_is_wrong_with_resolve() {
    let repo = TestRepo::with_files(&[("a/x", "a\n")]);
    crate::support::plans::plan(
        &repo,
        r#"
[plan]
name = "p"
agent = ["act"]
resolve = { mode = "always", agnet = ["x"] }
resolve_margin = -1

[[stream]]
name = "a"
owns = ["a/**"]
tasks = ["Work"]
"#,
    );
    let out = repo.streams(&["plan"]);
    out.assert_code(2);
    for wanted in [
        "invalid `mode`: \"always\"",
        "unknown key `agnet` in `resolve`",
        "`resolve` has no `agent`",
        "resolve_margin",
    ] {
        assert!(out.stderr.contains(wanted), "{wanted}: {out}");
    }
}

#[test]
fn a_kill_during_resolution_resumes_and_resolves() {
    use std::process::Stdio;
    use std::time::Duration;
    // The resolver hangs the first time (after saying so), and resolves the next.
    let (repo, resolver) = resolver_repo(
        &format!(
            "first=\"$(dirname \"$0\")/first-run\"\nif [ ! -e \"$first\" ]; then touch \"$first\"; sleep 300; fi\n{RESOLVE}"
        ),
        "accept",
        "",
    );
    let first = resolver.with_file_name("first-run");
    let mut child = repo
        .streams_cmd(&["run"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    crate::common::wait_for("the resolver to start", Duration::from_secs(60), || {
        first.exists().then_some(())
    });
    child.kill().unwrap();
    child.wait().unwrap();
    let out = repo.streams(&["resume"]);
    out.assert_code(0);
    assert!(
        out.stderr
            .contains("the resolver resolved b's conflict in shared.txt"),
        "{out}"
    );
    assert_eq!(integrated(&repo, "shared.txt"), RESOLVED);
    assert_eq!(integrated(&repo, "b/y"), "yb");
    crate::common::wait_for(
        "nothing of the run left running",
        Duration::from_secs(10),
        || repo.live_processes().is_empty().then_some(()),
    );
}

// ---------------------------------------------------------------------------------------------
// Prediction learns from the history

/// The position of the first NDJSON event of `run --json` output that `is` picks.
fn event_index(stdout: &str, is: impl Fn(&serde_json::Value) -> bool) -> usize {
    stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .position(|e| is(&e))
        .unwrap_or_else(|| panic!("no such event in {stdout}"))
}

#[test]
fn streams_that_conflicted_in_earlier_runs_are_kept_apart() {
    let repo = repo_with_shared();
    conflicting(&repo);
    // Run 1: `a` and `b` run at once, and `b`'s work conflicts with `a`'s; `b` is left out.
    repo.streams(&["run"]).assert_code(3);
    repo.streams(&["skip", "b"]).assert_code(0);
    let history = std::fs::read_to_string(repo.common_dir().join("streams/history.jsonl")).unwrap();
    assert!(
        history
            .lines()
            .any(|l| l.contains(r#""stream":"b""#) && l.contains(r#""conflicted_with":["a"]"#)),
        "{history}"
    );
    let out = repo.streams(&["plan", "--predict"]);
    out.assert_code(0);
    assert!(
        out.stdout
            .contains("a <-> b: conflicted in 1 of 1 earlier run\n")
            || out
                .stdout
                .ends_with("a <-> b: conflicted in 1 of 1 earlier run"),
        "{out}"
    );
    let json = repo.streams(&["plan", "--predict", "--json"]);
    json.assert_code(0);
    let json: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(
        json["predicted_conflicts"]["conflicted_before"],
        serde_json::json!([{"left": "a", "right": "b", "conflicted": 1, "runs": 1}])
    );

    // Runs 2 and 3: two slots, yet `b` starts only once `a` is integrated, from its work: no
    // conflict. The pair stays apart (1 of 2 earlier runs).
    for (run, runs) in [(2, 1), (3, 2)] {
        repo.streams(&["clean", "--force"]).assert_code(0);
        let out = repo.streams(&["run", "--restart", "--json"]);
        out.assert_code(0);
        assert!(
            out.stderr.contains(&format!(
                "a and b conflicted in 1 of {runs} earlier run{}: one starts once the other is integrated",
                if runs == 1 { "" } else { "s" }
            )),
            "run {run}: {out}"
        );
        let a_integrated = event_index(&out.stdout, |e| {
            e["event"] == "integrated" && e["stream"] == "a"
        });
        let b_started = event_index(&out.stdout, |e| {
            e["event"] == "stream_started" && e["stream"] == "b"
        });
        assert!(a_integrated < b_started, "run {run}: {}", out.stdout);
        assert_eq!(
            repo.git(&["show", "streams/p/integration:shared.txt"]),
            "from b",
            "run {run}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The resolver's usage, budgets and presets

/// `resolver_repo`, with the `resolve` line of its plan replaced by `resolve` (`{resolver}` in
/// it: the resolver script's path) and `extra` in `[plan]`.
fn resolver_plan(script: &str, resolve: &str, extra: &str) -> TestRepo {
    let (repo, resolver) = resolver_repo(script, "propose", extra);
    let text = std::fs::read_to_string(repo.root.join("streams.toml")).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with("resolve = "))
        .unwrap()
        .to_string();
    let resolve = resolve.replace("{resolver}", &resolver.display().to_string());
    crate::support::plans::plan(&repo, &text.replace(&line, &resolve));
    repo
}

/// What `status --json` says the run's agents used.
fn run_cost(repo: &TestRepo) -> serde_json::Value {
    let out = repo.streams(&["status", "--json"]);
    out.assert_code(0);
    let json: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    json["run"]["cost"].clone()
}

/// The usage attempts stream `b`'s tasks recorded in the run's state.
fn b_usage(repo: &TestRepo) -> Vec<serde_json::Value> {
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run_dir(repo).join("state.json")).unwrap())
            .unwrap();
    let b = state["streams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "b")
        .unwrap()
        .clone();
    b["tasks"][0]["usage"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[test]
fn the_resolvers_usage_from_its_usage_file_is_in_the_ledger() {
    let script = format!(
        "{RESOLVE}echo '{{\"input_tokens\": 100, \"output_tokens\": 20, \"cost_usd\": 0.5}}' > \"$1\"\n"
    );
    let repo = resolver_plan(
        &script,
        r#"resolve = { agent = ["{resolver}", "{usage_file}"], mode = "accept" }"#,
        "",
    );
    repo.streams(&["run"]).assert_code(0);
    let usage = b_usage(&repo);
    assert_eq!(usage.len(), 1, "{usage:?}");
    assert_eq!(usage[0]["kind"], "resolution");
    assert_eq!(usage[0]["usage"]["input"], 100);
    let cost = run_cost(&repo);
    assert_eq!(cost["tokens"], 120, "{cost}");
    assert_eq!(cost["cost_usd"], 0.5, "{cost}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run_dir(&repo).join("report.json")).unwrap())
            .unwrap();
    assert_eq!(report["ledger"]["total"]["tokens"], 120, "{report}");
}

#[test]
fn the_plans_budget_stops_the_resolver_and_a_person_resolves() {
    // It reports its usage as it goes, then would resolve after a long pause: the plan's
    // budget stops it first.
    let script = format!(
        "echo '{{\"streams_usage\": {{\"input_tokens\": 100, \"output_tokens\": 1}}}}'\nsleep 60\n{RESOLVE}"
    );
    let repo = resolver_plan(
        &script,
        r#"resolve = { agent = ["{resolver}"], mode = "accept" }"#,
        "budget = { tokens = 50 }",
    );
    let out = repo.streams(&["run"]);
    out.assert_code(3);
    assert!(
        out.stderr.contains(
            "the resolver's resolution of b's conflict was refused: the resolver agent stopped by its budget ("
        ),
        "{out}"
    );
    let usage = b_usage(&repo);
    assert_eq!(usage.len(), 1, "{usage:?}");
    assert_eq!(usage[0]["kind"], "resolution");
    assert_eq!(usage[0]["over_budget"], true);
    assert_eq!(run_cost(&repo)["tokens"], 101);
    // The conflict waits for a person, laid out again.
    let text = std::fs::read_to_string(resolution(&repo).join("shared.txt")).unwrap();
    assert!(text.contains("<<<<<<< integration"), "{text}");
}

#[test]
fn a_preset_resolves_and_its_events_are_read() {
    // `claude` is the replay of a recorded Claude Code run (it edits nothing of the conflict:
    // refused), found on the plan's PATH.
    let bin = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(
        crate::common::agents_dir().join("replay"),
        bin.path().join("claude"),
    )
    .unwrap();
    let path = format!(
        "{}:{}:{}",
        bin.path().display(),
        crate::common::agents_dir().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let repo = resolver_plan(
        "",
        r#"resolve = { agent = "claude", mode = "propose" }"#,
        &format!("env = {{ PATH = {path:?}, REPLAY = \"refusal\" }}"),
    );
    let out = repo.streams(&["plan"]);
    out.assert_code(0);
    let out = repo.streams(&["run"]);
    out.assert_code(3);
    assert!(
        out.stderr
            .contains("the resolver's resolution of b's conflict was refused"),
        "{out}"
    );
    let usage = b_usage(&repo);
    assert_eq!(usage.len(), 1, "{usage:?}");
    assert_eq!(usage[0]["kind"], "resolution");
    assert_eq!(usage[0]["cli"], "claude");
    assert!(
        usage[0]["usage"]["output"].as_u64().unwrap() > 0,
        "{usage:?}"
    );
}

#[test]
fn a_resolver_preset_that_cannot_be_found_is_a_plan_error() {
    let repo = resolver_plan(
        "",
        r#"resolve = { agent = { preset = "codex", model = "m" }, mode = "propose" }"#,
        r#"env = { PATH = "/nonexistent" }"#,
    );
    let out = repo.streams(&["plan"]);
    out.assert_code(2);
    assert!(
        out.stderr
            .contains("agent program `codex` was not found on PATH"),
        "{out}"
    );
}
