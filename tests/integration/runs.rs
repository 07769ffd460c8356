//! Runs and plans side by side in one repository: plans whose ownership does not overlap run
//! at once (an overlapping one is refused, naming the overlap), every command that acts on a
//! run takes `--plan` / `--run` and says which it picked, `streams runs` lists them, `clean`
//! removes exactly what it names, `merge` takes one plan's result after another's, `streams
//! stop` stops one stream, `retry` runs the plan as it is now; and runs an older streams left
//! (state version 1) still continue, resume and clean.

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::Duration;

use crate::common::{TestRepo, wait_for};

fn repo() -> TestRepo {
    TestRepo::with_files(&[
        ("README.md", "# side by side\n"),
        ("a/x", "a\n"),
        ("b/x", "b\n"),
        ("c/x", "c\n"),
        ("shared.txt", "line 1\nline 2\n"),
    ])
}

/// Writes `<name>.toml`: plan `name` with one stream `s` owning `owns` (a TOML list) whose
/// agent is `agent` (a TOML list), `extra` under `[plan]`.
fn one_stream_plan(repo: &TestRepo, name: &str, owns: &str, agent: &str, extra: &str) {
    repo.write(
        &format!("{name}.toml"),
        &format!(
            r#"
[plan]
name = "{name}"
jobs = 2
{extra}

[[stream]]
name = "s"
owns = {owns}
agent = {agent}
tasks = ["Work of {name}"]
"#
        ),
    );
}

/// Plan `one`: its stream `s` owns `a/**` and writes `a/y` ("one").
fn plan_one(repo: &TestRepo) {
    one_stream_plan(
        repo,
        "one",
        r#"["a/**"]"#,
        r#"["act", "write", "a/y", "one"]"#,
        "",
    );
}

/// Plans `one` (see [`plan_one`]) and `two` (its stream `s` owning `b/**`, its agent
/// `two_agent`, `two_extra` under `[plan]`), each run to its end, one after the other.
fn one_and_two_run(repo: &TestRepo, two_agent: &str, two_extra: &str) {
    plan_one(repo);
    one_stream_plan(repo, "two", r#"["b/**"]"#, two_agent, two_extra);
    repo.streams(&["run", "one.toml"]).assert_code(0);
    repo.streams(&["run", "two.toml"]).assert_code(0);
}

fn tmp(repo: &TestRepo) -> PathBuf {
    repo.root.parent().unwrap().to_path_buf()
}

/// `streams run <plan>.toml` in the background.
fn spawn_run(repo: &TestRepo, plan: &str) -> Child {
    repo.streams_cmd(&["run", &format!("{plan}.toml")])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn wait_for_file(path: &Path, what: &str) {
    wait_for(what, Duration::from_secs(30), || {
        path.exists().then_some(())
    });
}

fn status_json(repo: &TestRepo, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["status", "--json"];
    all.extend(args);
    let out = repo.streams(&all);
    out.assert_code(0);
    serde_json::from_str(&out.stdout).unwrap()
}

fn run_id_of(repo: &TestRepo, plan: &str) -> String {
    status_json(repo, &["--plan", plan])["run"]["id"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn two_plans_with_disjoint_ownership_run_at_once_and_an_overlapping_third_is_refused() {
    let repo = repo();
    let release = tmp(&repo).join("release");
    for (name, dir) in [("one", "a"), ("two", "b")] {
        let started = tmp(&repo).join(format!("{name}.started"));
        one_stream_plan(
            &repo,
            name,
            &format!(r#"["{dir}/**"]"#),
            &format!(
                r#"["act", "env", "{}", "wait-for", "{}", "write", "{dir}/y", "{name}"]"#,
                started.display(),
                release.display()
            ),
            "",
        );
    }
    let one = spawn_run(&repo, "one");
    let two = spawn_run(&repo, "two");
    // Both agents run at the same time: neither plan waits for the other.
    wait_for_file(&tmp(&repo).join("one.started"), "plan one's agent");
    wait_for_file(&tmp(&repo).join("two.started"), "plan two's agent");

    // A third plan that claims what `one` owns and what `two` owns (through `shared`).
    repo.write(
        "three.toml",
        r#"
[plan]
name = "three"
shared = ["b/notes.md"]

[[stream]]
name = "t"
owns = ["a/deep/**", "c/**"]
agent = ["act", "write", "c/y", "three"]
tasks = ["Work of three"]
"#,
    );
    let three = repo.streams(&["run", "three.toml"]);
    three.assert_code(5);
    let text = three.stderr_redacted();
    // Both plans, in whichever order they started.
    assert!(
        text.contains("error: plan `three` overlaps what plan `"),
        "{three}"
    );
    for plan in ["one", "two"] {
        assert!(
            text.contains(&format!(
                "plan `{plan}` (run [RUN], running, `streams run` pid [PID]"
            )),
            "{three}"
        );
    }
    assert!(
        text.contains(
            "`a/deep/**` (stream `t` of `three`) and `a/**` (stream `s` of `one`) could both match a/deep/"
        ),
        "{three}"
    );
    assert!(
        text.contains(
            "`b/notes.md` (shared of `three`) and `b/**` (stream `s` of `two`) could both match b/notes.md"
        ),
        "{three}"
    );
    assert!(
        text.contains("hint: plans run side by side only when"),
        "{three}"
    );
    for plan in ["one", "two"] {
        assert!(
            text.contains(&format!("`streams abort --plan {plan}`")),
            "the hint names what to stop: {three}"
        );
    }
    // Refused before anything was written.
    assert!(!repo.refs().contains("streams/three/"), "{}", repo.refs());

    std::fs::write(&release, "").unwrap();
    for (name, child) in [("one", one), ("two", two)] {
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "plan {name}: {stderr}");
        // Another plan ran here: the commands its hints suggest name this one.
        for hint in [
            format!("  streams merge --plan {name}    # take it into your branch"),
            format!("  streams clean --plan {name}    # remove"),
        ] {
            assert!(stderr.contains(&hint), "plan {name}: {stderr}");
        }
    }
    assert_eq!(repo.git(&["show", "streams/one/integration:a/y"]), "one");
    assert_eq!(repo.git(&["show", "streams/two/integration:b/y"]), "two");
    // Integration branches stay per plan.
    assert!(
        repo.git_output_in(&repo.root, &["show", "streams/one/integration:b/y"])
            .status
            .code()
            != Some(0)
    );
    // A bare `merge` takes a result not merged yet: one plan's, then the other's.
    let mut merged = Vec::new();
    for _ in 0..2 {
        let out = repo.streams(&["merge"]);
        out.assert_code(0);
        let said = out.stderr_redacted();
        let plan = ["one", "two"]
            .into_iter()
            .find(|plan| said.contains(&format!("merge: run [RUN] of plan `{plan}`")))
            .unwrap_or_else(|| panic!("merge says which run it took: {out}"));
        merged.push(plan);
    }
    merged.sort();
    assert_eq!(merged, ["one", "two"]);
    assert_eq!(repo.read("a/y").trim_end(), "one");
    assert_eq!(repo.read("b/y").trim_end(), "two");
    // Once they ended, the third plan starts.
    repo.streams(&["run", "three.toml"]).assert_code(0);
}

/// Plan `one` halted on a conflict in `shared.txt`; plan `two` (owning `c/**`) run after it.
fn halted_one_and_finished_two(repo: &TestRepo) {
    repo.write(
        "one.toml",
        r#"
[plan]
name = "one"
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
agent = ["act", "wait-rev", "streams/one/integration:a/y", "write", "b/y", "yb", "write", "shared.txt", "from b"]
tasks = ["Task of b"]
"#,
    );
    repo.streams(&["run", "one.toml"]).assert_code(3);
    one_stream_plan(
        repo,
        "two",
        r#"["c/**"]"#,
        r#"["act", "write", "c/y", "two"]"#,
        "",
    );
    // A halted run of another plan does not hold this one back.
    repo.streams(&["run", "two.toml"]).assert_code(0);
}

#[test]
fn commands_take_the_plan_or_the_run_and_say_which_they_picked() {
    let repo = repo();
    halted_one_and_finished_two(&repo);
    let one = run_id_of(&repo, "one");
    let two = run_id_of(&repo, "two.toml");

    // No choice made: status shows the last run and says which it picked and what else is here.
    let out = repo.streams(&["status"]);
    out.assert_code(0);
    assert!(
        out.stdout
            .starts_with(&format!("run {two} of plan `two`: finished")),
        "{out}"
    );
    assert!(
        out.stderr.contains(&format!(
            "status: run {two} of plan `two` (integrated); other plans here: `one` (halted) (choose with --plan NAME or --run ID)"
        )),
        "{out}"
    );
    // By name, by plan file, by id.
    for args in [
        vec!["status", "--plan", "one"],
        vec!["status", "--plan", "one.toml"],
        vec!["status", "--run", one.as_str()],
    ] {
        let out = repo.streams(&args);
        out.assert_code(0);
        assert!(
            out.stdout
                .starts_with(&format!("run {one} of plan `one`: halted")),
            "{args:?}: {out}"
        );
        assert!(!out.stderr.contains("other plans here"), "{args:?}: {out}");
    }
    let out = repo.streams(&["show", "b", "--plan", "one"]);
    out.assert_code(0);
    assert!(out.stdout.contains("conflict"), "{out}");
    let out = repo.streams(&["status", "--plan", "nope"]);
    out.assert_code(5);
    assert!(
        out.stderr
            .contains("error: plan `nope` has no run in this repository"),
        "{out}"
    );
    assert!(
        out.stderr.contains("plans that ran here: `one`, `two`"),
        "{out}"
    );
    let out = repo.streams(&["status", "--run", &one, "--plan", "two"]);
    out.assert_code(2);
    assert!(
        out.stderr
            .contains(&format!("run {one} is a run of plan `one`, not of `two`")),
        "{out}"
    );

    // `continue` takes the run it can continue: the halted one, not the last.
    let out = repo.streams(&["continue"]);
    out.assert_code(3);
    assert!(
        out.stderr.contains(&format!(
            "continue: run {one} of plan `one` (halted); other plans here: `two` (integrated)"
        )),
        "{out}"
    );
    assert!(out.stderr.contains("not resolved yet"), "{out}");
    let resolution =
        status_json(&repo, &["--plan", "one"])["run"]["parked"][0]["resolution_worktree"]
            .as_str()
            .unwrap()
            .to_string();
    std::fs::write(Path::new(&resolution).join("shared.txt"), "from a and b\n").unwrap();
    repo.git_in(Path::new(&resolution), &["add", "shared.txt"]);
    repo.streams(&["continue"]).assert_code(0);
    assert_eq!(
        repo.git(&["show", "streams/one/integration:shared.txt"]),
        "from a and b"
    );
    // `merge` of a plan that has not finished is refused for that plan, by name.
    let out = repo.streams(&["resume", "--plan", "two"]);
    out.assert_code(5);
    assert!(
        out.stderr.contains(&format!(
            "nothing to resume: run {two} of plan `two` is finished"
        )),
        "{out}"
    );
}

#[test]
fn runs_lists_each_runs_plan_status_time_and_whether_it_was_merged() {
    let repo = repo();
    plan_one(&repo);
    one_stream_plan(&repo, "two", r#"["b/**"]"#, r#"["act", "exit", "3"]"#, "");
    repo.streams(&["run", "one.toml"]).assert_code(0);
    repo.streams(&["run", "two.toml"]).assert_code(4);
    repo.streams(&["merge", "--plan", "one"]).assert_code(0);
    let out = repo.streams(&["runs"]);
    out.assert_code(0);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert!(
        lines[0].starts_with("RUN")
            && lines[0].contains("PLAN  STATUS")
            && lines[0].ends_with("MERGED      COST"),
        "{out}"
    );
    assert!(
        lines[1].contains(" one ")
            && lines[1].contains("integrated")
            && lines[1].contains("yes (main)"),
        "{out}"
    );
    assert!(
        lines[2].contains(" two ") && lines[2].contains("failed"),
        "{out}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&repo.streams(&["runs", "--json"]).stdout).unwrap();
    let runs = json["runs"].as_array().unwrap();
    assert_eq!(json["schema"], 1);
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[0]["plan"], "one");
    assert_eq!(runs[0]["outcome"], "integrated");
    assert_eq!(runs[0]["merged"], "main");
    assert_eq!(runs[0]["cost_usd"], serde_json::Value::Null);
    assert!(runs[0]["wall_ms"].as_u64().unwrap() > 0);
    assert_eq!(runs[1]["plan"], "two");
    assert_eq!(runs[1]["outcome"], "failed");
    assert_eq!(runs[1]["merged"], serde_json::Value::Null);
}

#[test]
fn after_one_plans_result_is_merged_the_others_merge_is_replayed_on_top() {
    let repo = repo();
    one_and_two_run(
        &repo,
        r#"["act", "write", "b/y", "two", "commit", "b by its agent", "write", "b/z", "two more", "commit", "b: z"]"#,
        "",
    );
    let out = repo.streams(&["merge", "--plan", "one"]);
    out.assert_code(0);
    assert!(out.stderr.contains("main fast-forwarded"), "{out}");
    let one_tip = repo.git(&["rev-parse", "main"]);
    // main has moved since plan two's base, by plan one's result only: no --allow-moved.
    let out = repo.streams(&["merge", "--plan", "two"]);
    out.assert_code(0);
    assert!(
        out.stderr.contains(
            "(another plan's result): replayed the 2 commit(s) of streams/two/integration"
        ),
        "{out}"
    );
    // A line: plan two's commits on top of plan one's, with their messages and trailers.
    assert_eq!(repo.git(&["rev-list", "--merges", "main"]), "");
    assert_eq!(repo.git(&["rev-parse", "main~2"]), one_tip);
    assert_eq!(
        repo.git(&["log", "-1", "--format=%s", "main~1"]),
        "b by its agent"
    );
    assert!(
        repo.git(&["log", "-1", "--format=%B", "main"])
            .contains("Streams-Stream: s")
    );
    assert_eq!(repo.git(&["show", "main:a/y"]), "one");
    assert_eq!(repo.git(&["show", "main:b/z"]), "two more");
    // The checkout follows (main is checked out here).
    assert_eq!(repo.read("b/z"), "two more\n");
    // Both are recorded as merged, so `clean` loses nothing and `runs` says so.
    let json: serde_json::Value =
        serde_json::from_str(&repo.streams(&["runs", "--json"]).stdout).unwrap();
    assert_eq!(json["runs"][1]["merged"], "main");
    let out = repo.streams(&["clean", "--all"]);
    out.assert_code(0);
    assert!(!out.stderr.contains("kept"), "{out}");
}

#[test]
fn after_one_plans_result_is_merged_a_plan_that_merges_gets_a_merge_commit() {
    let repo = repo();
    one_and_two_run(
        &repo,
        r#"["act", "write", "b/y", "two"]"#,
        r#"merge = "merge""#,
    );
    repo.streams(&["merge", "--plan", "one"]).assert_code(0);
    let out = repo.streams(&["merge", "--plan", "two"]);
    out.assert_code(0);
    assert!(out.stderr.contains("with merge commit"), "{out}");
    assert_eq!(
        repo.git(&["rev-list", "--parents", "-1", "main"])
            .split(' ')
            .count(),
        3
    );
    assert!(
        repo.git(&["log", "-1", "--format=%s", "main"])
            .starts_with("Merge streams/two/integration (streams run "),
    );
    assert_eq!(repo.git(&["show", "main:b/y"]), "two");
    assert_eq!(repo.git(&["show", "main:a/y"]), "one");
}

#[test]
fn a_bare_clean_cleans_the_last_runs_plan_only_and_never_leaves_work_without_its_record() {
    let repo = repo();
    one_and_two_run(&repo, r#"["act", "write", "b/y", "two"]"#, "");
    repo.streams(&["merge", "--plan", "two"]).assert_code(0);
    let (one, two) = (run_id_of(&repo, "one"), run_id_of(&repo, "two"));
    let runs = repo.common_dir().join("streams/runs");
    let workspaces = |plan: &str| repo.workspaces(plan);
    assert!(workspaces("one").join("s").exists() && workspaces("two").join("s").exists());

    // Only the plan of the last run: two's branches, workspace and record go; one is untouched.
    let before = repo.refs();
    let out = repo.streams(&["clean"]);
    out.assert_code(0);
    assert!(
        out.stderr
            .contains("removed branch streams/two/integration"),
        "{out}"
    );
    assert!(
        out.stderr
            .contains(&format!("removed run record {}", runs.join(&two).display())),
        "{out}"
    );
    assert!(!out.stderr.contains("/one"), "{out}");
    assert!(
        out.stderr.contains(
            "clean: plan `two` (of the last run started here); other plans here, left alone: `one`"
        ),
        "it says which plan it took: {out}"
    );
    assert!(!runs.join(&two).exists() && !workspaces("two").exists());
    assert!(runs.join(&one).join("state.json").exists());
    assert!(workspaces("one").join("s").exists());
    let one_refs = |refs: &str| -> Vec<String> {
        refs.lines()
            .filter(|l| l.contains("streams/one/"))
            .map(str::to_string)
            .collect()
    };
    assert_eq!(one_refs(&repo.refs()), one_refs(&before));
    assert!(!repo.refs().contains("streams/two/"), "{}", repo.refs());

    // Plan one's result was merged nowhere: its integration branch stays, and so does the
    // record that says what it is; its workspace and its integrated stream branch go.
    let dry = repo.streams(&["clean", "--plan", "one", "--dry-run"]);
    dry.assert_code(0);
    assert!(
        dry.stderr
            .contains("would keep branch streams/one/integration"),
        "{dry}"
    );
    assert!(
        workspaces("one").join("s").exists(),
        "a dry run removes nothing"
    );
    let out = repo.streams(&["clean", "--plan", "one.toml"]);
    out.assert_code(0);
    assert!(out.stderr.contains("removed branch streams/one/s"), "{out}");
    assert!(
        out.stderr.contains(&format!(
            "run record {}: the record of the work kept above",
            runs.join(&one).display()
        )),
        "{out}"
    );
    assert!(runs.join(&one).join("state.json").exists());
    assert!(!workspaces("one").exists());
    assert!(repo.refs().contains("refs/heads/streams/one/integration"));
    let listed = repo.streams(&["runs"]);
    assert!(listed.stdout.contains(&one), "{listed}");

    // Everything, forced: nothing of any plan is left, and no record without its work.
    let out = repo.streams(&["clean", "--all", "--force"]);
    out.assert_code(0);
    assert!(!repo.refs().contains("streams/"), "{}", repo.refs());
    assert_eq!(std::fs::read_dir(&runs).unwrap().count(), 0);
    let out = repo.streams(&["clean", "--all"]);
    out.assert_code(0);
    assert!(out.stderr.contains("nothing to clean"), "{out}");
}

#[test]
fn clean_of_one_run_removes_its_record_and_what_is_kept_under_its_id() {
    let repo = repo();
    // Each run adds a line: the second has work to do too.
    one_stream_plan(
        &repo,
        "one",
        r#"["a/**"]"#,
        r#"["act", "append", "a/y", "one"]"#,
        "",
    );
    repo.streams(&["run", "one.toml"]).assert_code(0);
    let first = run_id_of(&repo, "one");
    repo.streams(&["merge", "--plan", "one"]).assert_code(0);
    repo.streams(&["run", "one.toml"]).assert_code(0);
    let second = run_id_of(&repo, "one");
    assert_ne!(first, second);
    let runs = repo.common_dir().join("streams/runs");
    let out = repo.streams(&["clean", "--run", &first]);
    out.assert_code(0);
    assert!(!runs.join(&first).exists(), "{out}");
    // The plan's branches and workspaces are the last run's: untouched.
    assert!(runs.join(&second).exists());
    assert!(
        repo.refs().contains("refs/heads/streams/one/integration"),
        "{out}"
    );
    assert!(repo.workspaces("one").join("s").exists());
}

#[test]
fn stop_stops_one_stream_the_run_goes_on_and_retry_continues_it() {
    let repo = repo();
    let started = tmp(&repo).join("a.started");
    let release = tmp(&repo).join("release");
    repo.write(
        "streams.toml",
        &format!(
            r#"
[plan]
name = "p"
jobs = 3
grace = "2s"

[[stream]]
name = "a"
owns = ["a/**"]
agent = ["act", "write", "a/partial", "half", "env", "{}", "wait-for", "{}", "write", "a/y", "ya"]
tasks = ["Task of a"]

[[stream]]
name = "b"
owns = ["b/**"]
agent = ["act", "wait-for", "{}", "write", "b/y", "yb"]
tasks = ["Task of b"]

[[stream]]
name = "c"
owns = ["c/**"]
depends_on = ["a"]
agent = ["act", "write", "c/y", "yc"]
tasks = ["Task of c"]
"#,
            started.display(),
            release.display(),
            started.display()
        ),
    );
    let run = repo
        .streams_cmd(&["run"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_file(&started, "a's agent");
    let out = repo.streams(&["stop", "a"]);
    out.assert_code(0);
    assert!(out.stderr.contains("stopped a; the rest of run"), "{out}");
    assert!(
        out.stderr
            .contains("its unfinished work is kept on refs/streams/p/wip/a/1"),
        "{out}"
    );
    assert!(
        out.stderr.contains("`streams retry a` continues it"),
        "{out}"
    );
    assert_eq!(
        repo.git(&["show", "refs/streams/p/wip/a/1:a/partial"]),
        "half"
    );
    let out = run.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    // The rest went on: b integrated, c left out; the run says a was stopped.
    assert_eq!(out.status.code(), Some(6), "{stderr}");
    assert!(
        stderr.contains("stopped a: its unfinished work is kept on refs/streams/p/wip/a/1"),
        "{stderr}"
    );
    assert!(
        stderr.contains("stopped: 1 of 3 streams integrated"),
        "{stderr}"
    );
    assert_eq!(repo.git(&["show", "streams/p/integration:b/y"]), "yb");
    let status = status_json(&repo, &[]);
    let streams = status["run"]["streams"].as_array().unwrap();
    assert_eq!(streams[0]["state"], "stopped");
    assert_eq!(streams[1]["state"], "integrated");
    assert_eq!(streams[2]["state"], "skipped");
    assert_eq!(streams[2]["reason"], "its dependency `a` was stopped");
    // Stopping what is no longer running says so.
    let out = repo.streams(&["stop", "b"]);
    out.assert_code(2);
    assert!(
        out.stderr
            .contains("is integrated already: there is nothing to stop"),
        "{out}"
    );

    std::fs::write(&release, "").unwrap();
    let out = repo.streams(&["retry", "a", "--with-dependents"]);
    out.assert_code(0);
    assert_eq!(repo.git(&["show", "streams/p/integration:a/y"]), "ya");
    assert_eq!(repo.git(&["show", "streams/p/integration:c/y"]), "yc");
}

#[test]
fn retry_runs_the_plan_as_it_is_now_and_says_what_changed() {
    let repo = repo();
    let plan = |a_task: &str, a_agent: &str, b_task: &str| {
        repo.write(
            "streams.toml",
            &format!(
                r#"
[plan]
name = "p"

[[stream]]
name = "a"
owns = ["a/**"]
agent = {a_agent}
tasks = ["{a_task}"]

[[stream]]
name = "b"
owns = ["b/**"]
agent = ["act", "write", "b/y", "yb"]
tasks = ["{b_task}"]
"#
            ),
        );
    };
    plan("Do it wrong", r#"["act", "exit", "3"]"#, "Task of b");
    repo.streams(&["run"]).assert_code(4);
    plan(
        "Do it right",
        r#"["act", "write", "a/y", "{task}"]"#,
        "Task of b, reworded",
    );
    let out = repo.streams(&["retry", "a"]);
    out.assert_code(0);
    let text = out.stderr_redacted();
    assert!(
        text.contains(
            "[REPO]/streams.toml changed since the run started; retrying with it as it is now:"
        ),
        "{out}"
    );
    assert!(
        text.contains("  stream `a`: task 1 changed (Do it right)"),
        "{out}"
    );
    assert!(
        text.contains("  stream `a`: task 1's agent `act exit 3` -> `act write a/y {task}`"),
        "{out}"
    );
    assert!(
        text.contains("  stream `b`: task 1 changed (Task of b, reworded)"),
        "{out}"
    );
    // The task as the plan says it now.
    assert_eq!(
        repo.git(&["show", "streams/p/integration:a/y"]),
        "Do it right"
    );
    // What the retry ran with is recorded, and the run goes on with it (its copy is the plan).
    let run_dir = crate::support::runs::run_dir(&repo);
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run_dir.join("state.json")).unwrap())
            .unwrap();
    assert_eq!(state["version"], 5);
    assert_eq!(state["retries"][0]["streams"][0], "a");
    assert!(
        state["retries"][0]["plan_changes"]
            .as_array()
            .unwrap()
            .len()
            >= 3
    );
    assert!(
        std::fs::read_to_string(run_dir.join("plan.toml"))
            .unwrap()
            .contains("Do it right")
    );
    let out = repo.streams(&["retry", "b"]);
    out.assert_code(2);
    assert!(
        out.stderr.contains("stream `b` is integrated already"),
        "{out}"
    );
}

/// Found driving the real Claude Code by hand: moving the preset's `env` out of the plan (into
/// the shell) made `retry` say "preset `claude` (model m) -> preset `claude` (model m)", a
/// change that reads as none. It names what changed instead (variables by name: values may be
/// keys).
#[test]
fn retry_says_which_of_a_presets_args_and_env_changed() {
    let repo = repo().with_agent_stubs();
    let plan = |agent: &str| {
        repo.write(
            "streams.toml",
            &format!(
                "[plan]\nname = \"p\"\n\n[[stream]]\nname = \"a\"\nowns = [\"a/**\"]\nagent = {agent}\ntasks = [\"Do it\"]\n"
            ),
        );
    };
    // The stub `claude` fails the task, which is all the first run is for.
    plan(
        r#"{ preset = "claude", model = "m", args = ["--max-turns", "3"], env = { ANTHROPIC_BASE_URL = "http://127.0.0.1:1", ANTHROPIC_API_KEY = "sk-secret", KEPT = "1" } }"#,
    );
    repo.streams(&["run"]).assert_code(4);
    plan(r#"{ preset = "claude", model = "m", env = { KEPT = "2", NEW = "x" } }"#);
    let out = repo.streams(&["retry", "a"]);
    let text = out.stderr_redacted();
    assert!(
        text.contains(
            "  stream `a`: task 1's agent preset `claude` (model m): args `--max-turns 3` -> (none), env `NEW` added, env `ANTHROPIC_API_KEY`, `ANTHROPIC_BASE_URL` removed, env `KEPT` changed\n"
        ),
        "{out}"
    );
    assert!(!text.contains("sk-secret"), "{out}");
}

#[test]
fn retry_refuses_what_a_run_in_progress_cannot_take_and_says_what_to_do() {
    let repo = repo();
    let text = |owns: &str, more: &str| {
        format!(
            r#"
[plan]
name = "p"

[[stream]]
name = "a"
owns = {owns}
agent = ["act", "exit", "3"]
tasks = ["Task of a"]
{more}
"#
        )
    };
    repo.write("streams.toml", &text(r#"["a/**"]"#, ""));
    repo.streams(&["run"]).assert_code(4);
    let copy =
        std::fs::read_to_string(crate::support::runs::run_dir(&repo).join("plan.toml")).unwrap();
    repo.write(
        "streams.toml",
        &text(
            r#"["a/**", "c/**"]"#,
            "[[stream]]\nname = \"z\"\nowns = [\"b/**\"]\nagent = [\"act\"]\ntasks = [\"New\"]\n",
        ),
    );
    let out = repo.streams(&["retry", "a"]);
    out.assert_code(2);
    let err = out.stderr_redacted();
    assert!(
        err.contains(
            "[REPO]/streams.toml changed in ways run [RUN] cannot take while it is in progress:"
        ),
        "{out}"
    );
    assert!(err.contains("  stream(s) added: `z`"), "{out}");
    assert!(
        err.contains("  stream `a`'s `owns` changed: its work was checked against the old one"),
        "{out}"
    );
    assert!(err.contains("hint: put those back to retry this run; or take its result as it is (`streams merge --plan p`) and start a new run of the changed plan (`streams run`;"), "{out}");
    // Nothing changed: the run is as it was, its copy of the plan too.
    assert_eq!(
        std::fs::read_to_string(crate::support::runs::run_dir(&repo).join("plan.toml")).unwrap(),
        copy
    );
    assert_eq!(status_json(&repo, &[])["run"]["phase"], "finished");
}

#[test]
fn a_run_halted_under_state_version_1_still_continues_holds_its_patterns_and_cleans() {
    let repo = TestRepo::from_fixture("v1-halted");
    let out = repo.streams(&["runs"]);
    out.assert_code(0);
    assert!(
        out.stdout.contains(" early ") && out.stdout.contains(" one "),
        "{out}"
    );
    assert!(out.stdout.contains("halted"), "{out}");
    // Its plan holds what it owns, as a run of this version would.
    one_stream_plan(
        &repo,
        "three",
        r#"["a/**"]"#,
        r#"["act", "write", "a/z", "z"]"#,
        "",
    );
    let out = repo.streams(&["run", "three.toml"]);
    out.assert_code(5);
    assert!(
        out.stderr.contains("overlaps what plan `one` (run"),
        "{out}"
    );
    assert!(
        out.stderr
            .contains("`a/**` (stream `s` of `three`) and `a/**` (stream `a` of `one`)"),
        "{out}"
    );

    let resolution = status_json(&repo, &[])["run"]["parked"][0]["resolution_worktree"]
        .as_str()
        .unwrap()
        .to_string();
    std::fs::write(Path::new(&resolution).join("shared.txt"), "from a and b\n").unwrap();
    repo.git_in(Path::new(&resolution), &["add", "shared.txt"]);
    let out = repo.streams(&["continue"]);
    out.assert_code(0);
    assert_eq!(
        repo.git(&["show", "streams/one/integration:shared.txt"]),
        "from a and b"
    );
    assert_eq!(repo.git(&["show", "streams/one/integration:d/y"]), "yd");
    let state: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(crate::support::runs::run_dir(&repo).join("state.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(state["version"], 5, "saved in this version's format");
    repo.streams(&["run", "three.toml"]).assert_code(0);
    let out = repo.streams(&["clean", "--all", "--force"]);
    out.assert_code(0);
    assert!(!repo.refs().contains("streams/"), "{}", repo.refs());
}

#[test]
fn a_run_interrupted_under_state_version_1_still_resumes_and_cleans() {
    let repo = TestRepo::from_fixture("v1-interrupted");
    let status = status_json(&repo, &[]);
    assert_eq!(status["run"]["phase"], "interrupted");
    // What its agent waits for.
    repo.git(&["tag", "release"]);
    let out = repo.streams(&["resume"]);
    out.assert_code(0);
    assert_eq!(repo.git(&["show", "streams/two/integration:y/c"]), "yc");
    assert_eq!(repo.git(&["show", "streams/two/integration:x/b"]), "xb");
    repo.streams(&["merge"]).assert_code(0);
    // The interrupted attempt's work is kept (on a ref), and so is the record that says so.
    let out = repo.streams(&["clean"]);
    out.assert_code(0);
    let text = out.stderr_redacted();
    assert!(
        text.contains(
            "  ref refs/streams/two/wip/y/1: unfinished work of an interrupted or stopped task"
        ),
        "{out}"
    );
    assert!(
        text.contains(
            "  run record [REPO]/.git/streams/runs/[RUN]: the record of the work kept above"
        ),
        "{out}"
    );
    assert!(!text.contains("removed run record"), "{out}");
    repo.streams(&["clean", "--force"]).assert_code(0);
    assert!(!repo.refs().contains("streams/two/"), "{}", repo.refs());
    let runs = repo.common_dir().join("streams/runs");
    assert_eq!(std::fs::read_dir(runs).unwrap().count(), 0);
}

#[test]
fn clean_all_removes_what_a_plan_left_without_records() {
    let repo = repo();
    plan_one(&repo);
    repo.streams(&["run", "one.toml"]).assert_code(0);
    repo.streams(&["merge", "--plan", "one"]).assert_code(0);
    // What an older `streams clean` did: the run's record gone, its branches and workspace left.
    let runs = repo.common_dir().join("streams/runs");
    for entry in std::fs::read_dir(&runs).unwrap() {
        std::fs::remove_dir_all(entry.unwrap().path()).unwrap();
    }
    let workspace = repo.workspaces("one").join("s");
    assert!(workspace.exists() && repo.refs().contains("streams/one/"));
    let out = repo.streams(&["clean", "--all"]);
    out.assert_code(0);
    assert!(
        out.stderr
            .contains("removed branch streams/one/integration"),
        "{out}"
    );
    assert!(!workspace.exists(), "{out}");
    assert!(!repo.refs().contains("streams/one/"), "{}", repo.refs());
}

#[test]
fn show_diff_logs_and_pr_take_the_plan_or_the_run() {
    let repo = repo();
    for (name, dir) in [("one", "a"), ("two", "b")] {
        one_stream_plan(
            &repo,
            name,
            &format!(r#"["{dir}/**"]"#),
            &format!(r#"["act", "write", "{dir}/y", "{name}", "say", "agent of {name}"]"#),
            "",
        );
        repo.streams(&["run", &format!("{name}.toml")])
            .assert_code(0);
    }
    let one = run_id_of(&repo, "one");

    // Without a choice: the last run (plan two's), and the line that says so.
    let out = repo.streams(&["diff", "--stat"]);
    out.assert_code(0);
    assert!(
        out.stdout.contains("b/y") && !out.stdout.contains("a/y"),
        "{out}"
    );
    assert!(
        out.stderr_redacted()
            .contains("diff: run [RUN] of plan `two` (integrated); other plans here: `one`"),
        "{out}"
    );
    for args in [
        vec!["diff", "--stat", "--plan", "one"],
        vec!["diff", "s", "--stat", "--run", one.as_str()],
    ] {
        let out = repo.streams(&args);
        out.assert_code(0);
        assert!(
            out.stdout.contains("a/y") && !out.stdout.contains("b/y"),
            "{args:?}: {out}"
        );
        assert!(!out.stderr.contains("other plans here"), "{args:?}: {out}");
    }

    let out = repo.streams(&["logs", "s", "--plan", "one"]);
    out.assert_code(0);
    assert!(out.stdout.contains("agent of one"), "{out}");
    let out = repo.streams(&["logs", "s"]);
    out.assert_code(0);
    assert!(out.stdout.contains("agent of two"), "{out}");

    let out = repo.streams(&["show", "--run", &one, "--json"]);
    out.assert_code(0);
    assert!(out.stdout.contains("\"one\""), "{out}");
    assert!(!out.stdout.contains("streams/two/"), "{out}");

    let remote = tmp(&repo).join("remote.git");
    repo.git(&["init", "-q", "--bare", &remote.display().to_string()]);
    repo.git(&["remote", "add", "origin", &remote.display().to_string()]);
    let out = repo.streams(&["pr", "--remote", "origin", "--dry-run", "--plan", "one"]);
    out.assert_code(0);
    let said = format!("{}{}", out.stdout, out.stderr);
    assert!(said.contains("streams/one/s"), "{out}");
    assert!(!said.contains("streams/two/"), "{out}");
}

#[test]
fn skip_and_abort_take_the_run_that_is_not_over_or_the_plan_named() {
    // `skip` without a plan: the halted run, though another plan ran after it.
    let repo = repo();
    halted_one_and_finished_two(&repo);
    let out = repo.streams(&["skip", "b"]);
    out.assert_code(0);
    assert!(
        out.stderr_redacted()
            .contains("skip: run [RUN] of plan `one` (halted); other plans here: `two`"),
        "{out}"
    );
    assert!(out.stderr.contains("left out as you chose: b"), "{out}");
    assert_eq!(repo.git(&["show", "streams/one/integration:a/y"]), "ya");

    // `abort` of a plan whose run is over is refused by name; `--plan` aborts the one named.
    let repo = self::repo();
    halted_one_and_finished_two(&repo);
    let out = repo.streams(&["abort", "--plan", "two"]);
    out.assert_code(5);
    let refs_before = repo.refs();
    assert!(
        refs_before.contains("streams/two/integration"),
        "{refs_before}"
    );
    let out = repo.streams(&["abort", "--plan", "one.toml"]);
    out.assert_code(0);
    assert!(out.stderr.contains("aborted run"), "{out}");
    assert!(!out.stderr.contains("other plans here"), "{out}");
    // Its hint names the plan: a bare `streams clean` would clean plan two's last run.
    assert!(
        out.stderr
            .contains("`streams clean --plan one` removes worktrees"),
        "{out}"
    );
    assert_eq!(
        status_json(&repo, &["--plan", "one"])["run"]["phase"],
        "aborted"
    );
    assert_eq!(
        repo.git(&["show", "streams/two/integration:c/y"]),
        "two",
        "plan two is untouched"
    );
}
