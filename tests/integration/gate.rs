//! The gate on the integration branch, its batches and their bisection; the plan keys of
//! checks and gates.
//!
//! The gate in these tests is `compile` (fixtures/agents): a stand-in compiler that fails when a
//! `call NAME` line under src/ has no `fn NAME` line anywhere under src/.

use std::path::PathBuf;

use crate::common::TestRepo;

fn plan(repo: &TestRepo, text: &str) {
    repo.write("streams.toml", text);
}

/// The run directory of the current (last) run.
fn run_dir(repo: &TestRepo) -> PathBuf {
    let root = repo.common_dir().join("streams");
    let id = std::fs::read_to_string(root.join("current")).unwrap();
    root.join("runs").join(id.trim())
}

fn state(repo: &TestRepo) -> serde_json::Value {
    let text = std::fs::read_to_string(run_dir(repo).join("state.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn stream_state(state: &serde_json::Value, name: &str) -> serde_json::Value {
    state["streams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no stream {name}"))["state"]
        .clone()
}

/// How many times the gate ran: its logs, counted on disk.
fn gate_runs(repo: &TestRepo) -> usize {
    let dir = run_dir(repo).join("logs").join(".gate");
    std::fs::read_dir(dir).map_or(0, |d| d.count())
}

#[test]
fn a_semantic_conflict_blames_the_stream_that_adds_a_caller_of_the_old_name() {
    let repo = TestRepo::with_files(&[
        ("src/a/lib.txt", "fn greet\ncall greet\n"),
        ("src/b/main.txt", "b\n"),
    ]);
    // `a` renames `greet` and its own callers; `b` adds a caller of the old name. Each alone
    // compiles; together they do not. `b` finishes after `a` has committed.
    plan(
        &repo,
        r#"
[plan]
name = "p"
jobs = 2
gate = ["compile"]
check = ["compile"]

[[stream]]
name = "a"
owns = ["src/a/**"]
agent = ["act", "write", "src/a/lib.txt", "fn hello\ncall hello"]
tasks = ["rename greet to hello"]

[[stream]]
name = "b"
owns = ["src/b/**"]
agent = ["act", "wait-rev", "streams/p/a~1", "write", "src/b/new.txt", "call greet"]
tasks = ["call greet again"]
"#,
    );
    let out = repo.streams(&["run"]);
    out.assert_code(4);
    assert!(
        out.stderr
            .contains("gate `compile` fails once `b` is added to "),
        "{out}"
    );
    let state = state(&repo);
    assert_eq!(stream_state(&state, "a")["state"], "done");
    assert_eq!(stream_state(&state, "b")["state"], "failed");
    // `a` is on the integration branch, `b` is not; `b`'s work stays on its branch.
    let tree = repo.tree_listing("streams/p/integration");
    assert!(!tree.contains("src/b/new.txt"), "{tree}");
    assert_eq!(
        repo.git(&["show", "streams/p/integration:src/a/lib.txt"]),
        "fn hello\ncall hello"
    );
    assert_eq!(
        repo.git(&["show", "streams/p/b:src/b/new.txt"]),
        "call greet"
    );
    // Both passed their own checks.
    let checks = state["checks"].as_array().unwrap();
    assert!(checks.iter().all(|c| c["passed"] == true), "{checks:?}");
    // The culprit's bisection is in the state, ending on the red prefix with `b` in it.
    let bisection = &state["bisections"][0];
    assert_eq!(bisection["culprit"], "b");
}

const FIVE: [&str; 5] = ["s1", "s2", "s3", "s4", "s5"];

/// Five streams whose work lands together; `s3` calls a function nobody defines. `gate` is the
/// plan's gate (a TOML array).
fn five_streams(gate: &str) -> TestRepo {
    five_streams_with(gate, "", &[])
}

/// [`five_streams`] with more `[plan]` lines and more files in the first commit.
fn five_streams_with(gate: &str, plan_lines: &str, more_files: &[(&str, &str)]) -> TestRepo {
    let mut files = vec![("src/lib/lib.txt", "fn base\n")];
    let owned: Vec<String> = FIVE.iter().map(|n| format!("src/{n}/x.txt")).collect();
    for path in &owned {
        files.push((path.as_str(), "call base\n"));
    }
    files.extend_from_slice(more_files);
    let repo = TestRepo::with_files(&files);
    let mut text = format!("[plan]\nname = \"p\"\njobs = 5\ngate = {gate}\n{plan_lines}\n");
    for name in FIVE {
        let call = if name == "s3" { "missing" } else { "base" };
        text.push_str(&format!(
            "\n[[stream]]\nname = \"{name}\"\nowns = [\"src/{name}/**\"]\nagent = [\"act\", \"write\", \"src/{name}/y.txt\", \"call {call}\"]\ntasks = [\"work\"]\n"
        ));
    }
    plan(&repo, &text);
    repo
}

/// The end every run of `five_streams` reaches, interrupted or not: `s3` failed and blamed,
/// the other four integrated.
fn assert_s3_blamed(repo: &TestRepo, out: &crate::common::CmdOutput) {
    out.assert_code(4);
    assert_s3_blamed_in(repo, &out.to_string());
}

fn assert_s3_blamed_in(repo: &TestRepo, out: &str) {
    let state = state(repo);
    for name in FIVE {
        let expected = if name == "s3" { "failed" } else { "done" };
        assert_eq!(
            stream_state(&state, name)["state"],
            expected,
            "{name}: {out}"
        );
    }
    let reason = stream_state(&state, "s3")["reason"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        reason.starts_with("gate `") && reason.contains("` fails once `s3` is added to "),
        "{reason}"
    );
    let tree = repo.tree_listing("streams/p/integration");
    for name in FIVE {
        assert_eq!(
            tree.contains(&format!("src/{name}/y.txt")),
            name != "s3",
            "{name}: {tree}"
        );
    }
}

#[test]
fn a_batch_of_five_with_a_culprit_in_the_middle_integrates_the_other_four() {
    let repo = five_streams(r#"["compile"]"#);
    let out = repo.streams(&["run"]);
    assert_s3_blamed(&repo, &out);
    assert!(
        out.stderr
            .contains("gate `compile` fails once `s3` is added to "),
        "{out}"
    );
    let state = state(&repo);
    // 1 + 2*ceil(log2 5) + 1, whatever batches the arrivals made.
    let runs = gate_runs(&repo);
    assert!((2..=8).contains(&runs), "{runs} gate runs");
    assert_eq!(state["gates"].as_array().unwrap().len(), runs);

    // The report lists every gate run and the culprit's bisection.
    let dir = run_dir(&repo);
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).unwrap()).unwrap();
    let gates = report["gates"].as_array().unwrap();
    assert_eq!(gates.len(), runs);
    for g in gates {
        assert_eq!(g["command"], serde_json::json!(["compile"]));
        assert!(g["tree"].as_str().unwrap().len() == 40, "{g}");
        assert!(
            std::path::Path::new(g["log"].as_str().unwrap()).exists(),
            "{g}"
        );
    }
    let bisection = &report["bisections"][0];
    assert_eq!(bisection["culprit"], "s3");
    let steps = bisection["steps"].as_array().unwrap();
    // The last red step ends with the culprit; a green one is its prefix, unless the culprit
    // arrived first in its batch (which arrivals decide): its green prefix is then the tip
    // the batch was built on, and every step is red.
    if bisection["batch"][0] != "s3" {
        assert!(steps.iter().any(|s| s[1] == true), "{steps:?}");
    } else {
        assert_eq!(bisection["green"], bisection["tip"], "{bisection}");
    }
    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(md.contains("Gate runs:"), "{md}");
    assert!(md.contains("`s3` turns the gate red once added to"), "{md}");
}

#[test]
fn a_gate_red_on_the_base_alone_stops_the_run_before_integrating_anything() {
    let repo = TestRepo::with_files(&[
        ("src/lib/lib.txt", "fn base\ncall nowhere\n"),
        ("src/a/x.txt", "x\n"),
    ]);
    let base = repo.git(&["rev-parse", "HEAD"]);
    let text = r#"
[plan]
name = "p"
gate = ["compile"]

[[stream]]
name = "a"
owns = ["src/a/**"]
agent = ["act", "write", "src/a/y.txt", "call base"]
tasks = ["work"]
"#;
    plan(&repo, text);
    let out = repo.streams(&["run"]);
    out.assert_code(4);
    assert!(
        out.stderr.contains(&format!(
            "gate `compile` fails on {} before any stream is added",
            &base[..10]
        )),
        "{out}"
    );
    assert_eq!(repo.git(&["rev-parse", "streams/p/integration"]), base);
    assert_eq!(stream_state(&state(&repo), "a")["state"], "failed");

    // `--no-gate` integrates without it, and says so in the state.
    repo.streams(&["clean", "--force"]).assert_code(0);
    let out = repo.streams(&["run", "--no-gate"]);
    out.assert_code(0);
    let report = std::fs::read_to_string(run_dir(&repo).join("report.md")).unwrap();
    assert!(
        report.contains("`--no-gate`: this run skipped the plan's `gate`."),
        "{report}"
    );
    assert!(
        repo.tree_listing("streams/p/integration")
            .contains("src/a/y.txt")
    );
}

#[test]
fn check_and_gate_keys_are_validated() {
    let repo = TestRepo::with_files(&[("src/a/x.txt", "x\n")]);
    plan(
        &repo,
        r#"
[plan]
name = "p"
agent = ["act"]
check = "cargo test"
gate = []
gate_batch = 0
check_retries = -1

[[stream]]
name = "a"
owns = ["src/a/**"]
check_timeout = "soon"
tasks = ["work"]
"#,
    );
    let out = repo.streams(&["plan"]);
    out.assert_code(2);
    for expected in [
        "wrong type for `check`: expected an array of strings (an argv), found a string",
        "`check = [\"cargo\", \"test\"]`",
        "`gate` names no program",
        "`gate_batch` is out of range",
        "`check_retries` is out of range",
        "check_timeout",
    ] {
        assert!(out.stderr.contains(expected), "{expected}: {out}");
    }
}

/// A plan with one stream `a` whose agent is `sh -c SCRIPT` and whose check is `compile`.
fn checked_stream(repo: &TestRepo, script: &str, retries: u32) {
    plan(
        repo,
        &format!(
            r#"
[plan]
name = "p"
check = ["compile"]
check_retries = {retries}

[[stream]]
name = "a"
owns = ["src/a/**"]
agent = ["sh", "-c", {script:?}, "agent", "{{check_output_file}}", "{{check_output}}"]
tasks = ["add the caller"]
"#
        ),
    );
}

#[test]
fn a_check_that_fails_sends_the_agent_back_with_the_failure_and_passes() {
    let repo = TestRepo::with_files(&[("src/a/lib.txt", "fn base\n")]);
    // First attempt: a caller of a function nobody defines. Second (given the check's output):
    // the function too.
    let script = r#"if [ -n "$1" ]; then
    case "$2" in *"cannot find function"*) ;; *) echo "no check output: $2"; exit 3 ;; esac
    echo "fn missing" > src/a/fix.txt
else
    echo "call missing" > src/a/use.txt
fi"#;
    checked_stream(&repo, script, 1);
    let out = repo.streams(&["run"]);
    out.assert_code(0);
    let state = state(&repo);
    let checks = state["checks"].as_array().unwrap();
    assert_eq!(checks.len(), 2, "{checks:?}");
    assert_eq!(checks[0]["passed"], false);
    assert_eq!(checks[1]["passed"], true);
    let log = std::fs::read_to_string(run_dir(&repo).join("logs/a/check-1.log")).unwrap();
    assert!(log.contains("cannot find function `missing`"), "{log}");
    // The agent was told what failed.
    let prompt = std::fs::read_to_string(run_dir(&repo).join("prompts/a/1.md")).unwrap();
    assert!(
        prompt.contains("The check `compile` failed (exit code 1)"),
        "{prompt}"
    );
    assert!(prompt.contains("without leaving your lane"), "{prompt}");
    // Both the first attempt and the fix are integrated.
    let tree = repo.tree_listing("streams/p/integration");
    assert!(
        tree.contains("src/a/use.txt") && tree.contains("src/a/fix.txt"),
        "{tree}"
    );
}

#[test]
fn a_check_that_never_passes_fails_the_stream_and_integrates_nothing() {
    let repo = TestRepo::with_files(&[("src/a/lib.txt", "fn base\n")]);
    let base = repo.git(&["rev-parse", "HEAD"]);
    checked_stream(&repo, "echo \"call missing\" >> src/a/use.txt", 1);
    let out = repo.streams(&["run"]);
    out.assert_code(4);
    assert!(
        out.stderr
            .contains("check `compile` failed (exit code 1) after 2 attempts"),
        "{out}"
    );
    assert_eq!(repo.git(&["rev-parse", "streams/p/integration"]), base);
    // Its commits stay on its branch.
    assert!(repo.tree_listing("streams/p/a").contains("src/a/use.txt"));
    assert_eq!(state(&repo)["checks"].as_array().unwrap().len(), 2);
    // `--no-check` skips it.
    repo.streams(&["clean", "--force"]).assert_code(0);
    repo.streams(&["run", "--no-check"]).assert_code(0);
}

/// Killed (SIGKILL) at a failpoint of the gate, then `resume`: the same culprit, the same
/// integration.
fn crash_in_the_gate_at(point: &str) {
    use std::os::unix::process::ExitStatusExt;
    let repo = five_streams(r#"["compile"]"#);
    let mut cmd = repo.streams_cmd(&["run"]);
    cmd.env("STREAMS_FAILPOINT", point);
    let out = cmd.output().unwrap();
    assert_eq!(
        out.status.signal(),
        Some(9),
        "the failpoint {point} was never reached: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = repo.streams(&["resume"]);
    assert_s3_blamed(&repo, &out);
}

#[test]
fn crash_before_a_gate_runs_then_resume() {
    crash_in_the_gate_at("before-gate");
}

#[test]
fn crash_after_a_gate_run_is_saved_then_resume() {
    crash_in_the_gate_at("after-gate-saved");
}

#[test]
fn crash_during_a_bisection_then_resume() {
    crash_in_the_gate_at("after-bisect-step");
}

#[test]
fn crash_before_the_green_prefix_lands_then_resume() {
    crash_in_the_gate_at("before-integrate-ref");
}

#[test]
fn crash_after_the_green_prefix_lands_then_resume() {
    crash_in_the_gate_at("after-integrate-ref");
}

#[test]
fn crash_after_the_culprit_is_saved_then_resume() {
    crash_in_the_gate_at("after-culprit-saved");
}

/// The five streams' run, started and left once its first gate run is under way: that run
/// hangs (for ten minutes), later ones are the real gate. `MARK` must be set to the path
/// returned in every later command, so that the gate knows its first run is over.
fn run_until_the_first_gate_hangs(
    stderr: std::process::Stdio,
) -> (TestRepo, std::process::Child, PathBuf) {
    let repo = five_streams(
        r#"["sh", "-c", "[ -e \"$MARK\" ] || { touch \"$MARK\"; sleep 600; }; exec compile"]"#,
    );
    run_until_the_first_gate_started(repo, stderr)
}

/// The run of `repo` (a [`five_streams`] one whose gate touches `MARK`), started and left once
/// its first gate run touched the mark.
fn run_until_the_first_gate_started(
    repo: TestRepo,
    stderr: std::process::Stdio,
) -> (TestRepo, std::process::Child, PathBuf) {
    let mark = repo.path("../gate-started");
    let child = repo
        .streams_cmd(&["run"])
        .env("MARK", &mark)
        .stdout(std::process::Stdio::null())
        .stderr(stderr)
        .spawn()
        .unwrap();
    crate::common::wait_for(
        "the gate to start",
        std::time::Duration::from_secs(60),
        || mark.exists().then_some(()),
    );
    (repo, child, mark)
}

#[test]
fn kill_9_while_the_gate_runs_then_resume() {
    let (repo, mut child, mark) = run_until_the_first_gate_hangs(std::process::Stdio::null());
    child.kill().unwrap();
    child.wait().unwrap();
    // `resume` runs the gate again, this time to its end (the mark is there).
    let out = crate::common::CmdOutput::new(
        repo.streams_cmd(&["resume"])
            .env("MARK", &mark)
            .output()
            .unwrap(),
        &repo,
    );
    assert_s3_blamed(&repo, &out);
    // The gate the killed run left sleeping was stopped by `resume`.
    assert!(
        repo.live_processes().is_empty(),
        "{:?}",
        repo.live_processes()
    );
}

/// A process the killed run's gate starts after `resume` looked for what to stop (here: a
/// gate that ignores SIGTERM starts another `sleep` every 100 ms) is stopped too, and `resume`
/// waits for it. (The race this makes certain, behind the flake of the test above: the gate's
/// shell forking `sleep` just after `touch` made the mark, as the test killed the run; its
/// reaper then held the `sleep`, both outliving `resume`.)
#[test]
fn a_process_the_killed_gate_starts_while_resume_stops_it_is_stopped_too() {
    let repo = five_streams_with(
        r#"["sh", "-c", "[ -e \"$MARK\" ] || { trap '' TERM; touch \"$MARK\"; while :; do sleep 600 & sleep 0.1; done; }; exec compile"]"#,
        "grace = \"1s\"",
        &[],
    );
    let (repo, mut child, mark) =
        run_until_the_first_gate_started(repo, std::process::Stdio::null());
    child.kill().unwrap();
    child.wait().unwrap();
    let out = crate::common::CmdOutput::new(
        repo.streams_cmd(&["resume"])
            .env("MARK", &mark)
            .output()
            .unwrap(),
        &repo,
    );
    assert_s3_blamed(&repo, &out);
    assert!(
        repo.live_processes().is_empty(),
        "{:?}",
        repo.live_processes()
    );
}

/// Killed at a failpoint of a check, then `resume`: the check runs (again) and the run ends
/// as an uninterrupted one does.
fn crash_in_a_check_at(point: &str) {
    use std::os::unix::process::ExitStatusExt;
    let repo = TestRepo::with_files(&[("src/a/lib.txt", "fn base\n")]);
    let script = r#"if [ -n "$1" ]; then echo "fn missing" > src/a/fix.txt; else echo "call missing" > src/a/use.txt; fi"#;
    checked_stream(&repo, script, 1);
    let mut cmd = repo.streams_cmd(&["run"]);
    cmd.env("STREAMS_FAILPOINT", point);
    let out = cmd.output().unwrap();
    assert_eq!(
        out.status.signal(),
        Some(9),
        "the failpoint {point} was never reached: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    repo.streams(&["resume"]).assert_code(0);
    let tree = repo.tree_listing("streams/p/integration");
    assert!(
        tree.contains("src/a/use.txt") && tree.contains("src/a/fix.txt"),
        "{tree}"
    );
    let state = state(&repo);
    let checks = state["checks"].as_array().unwrap();
    assert_eq!(checks.last().unwrap()["passed"], true, "{checks:?}");
}

#[test]
fn crash_before_a_check_then_resume() {
    crash_in_a_check_at("before-check");
}

#[test]
fn crash_after_a_failed_check_is_saved_then_resume() {
    // The second check is the one that passes; crash before the first verdict is acted on.
    crash_in_a_check_at("before-check@2");
}

#[test]
fn with_sync_task_the_check_runs_after_every_task() {
    let repo = TestRepo::with_files(&[("src/a/lib.txt", "fn base\n")]);
    plan(
        &repo,
        r#"
[plan]
name = "p"
sync = "task"
check = ["compile"]

[[stream]]
name = "a"
owns = ["src/a/**"]
agent = ["sh", "-c", "echo \"call base\" >> src/a/use-$STREAMS_TASK_INDEX.txt"]
tasks = ["one", "two"]
"#,
    );
    repo.streams(&["run"]).assert_code(0);
    let state = state(&repo);
    let checks = state["checks"].as_array().unwrap();
    let tasks: Vec<u64> = checks.iter().map(|c| c["task"].as_u64().unwrap()).collect();
    assert_eq!(tasks, [1, 2]);
    assert!(run_dir(&repo).join("logs/a/check-2.log").exists());
}

#[test]
fn clean_removes_the_gate_worktree_whatever_the_gate_left_in_it() {
    let repo = five_streams(r#"["sh", "-c", "echo built > build-output.txt; exec compile"]"#);
    repo.streams(&["run"]).assert_code(4);
    let gate = repo.workspaces("p").join(".gate");
    assert!(gate.join("build-output.txt").exists());
    // What the gate built is nobody's work: removed without `--force`.
    let out = repo.streams(&["clean"]);
    out.assert_code(0);
    assert!(
        out.stderr_redacted()
            .contains("removed gate worktree [REPO].streams/p/.gate"),
        "{out}"
    );
    assert!(!gate.exists());
    let worktrees = repo.git(&["worktree", "list"]);
    assert!(!worktrees.contains(".gate"), "{worktrees}");
}

#[test]
fn the_gate_worktree_gets_the_plans_include_and_setup_on_every_new_candidate() {
    // The gate needs what `setup` makes and the ignored `.env` that `.worktreeinclude` names;
    // neither is committed.
    let repo = five_streams_with(
        r#"["sh", "-c", "test -f .env && test -f built.marker && exec compile"]"#,
        r#"setup = ["sh", "-c", "echo \"$STREAMS_STREAM\" >> \"$SETUPS\"; touch built.marker"]"#,
        &[
            (".gitignore", ".env\nbuilt.marker\n"),
            (".worktreeinclude", ".env\n"),
        ],
    );
    repo.write(".env", "SECRET=1\n");
    let setups = repo.path("../setups");
    let out = crate::common::CmdOutput::new(
        repo.streams_cmd(&["run"])
            .env("SETUPS", &setups)
            .output()
            .unwrap(),
        &repo,
    );
    assert_s3_blamed(&repo, &out);
    // Once in each stream's workspace, and once before each gate run on a new candidate (a run
    // again on the same candidate, to tell a flaky gate from a red one, finds it set up).
    let lines = std::fs::read_to_string(&setups).unwrap();
    let gate_setups = lines.lines().filter(|l| *l == ".gate").count();
    let state = state(&repo);
    let trees: Vec<&str> = state["gates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["tree"].as_str().unwrap())
        .collect();
    let new_candidates = 1 + trees.windows(2).filter(|w| w[0] != w[1]).count();
    assert!(trees.len() > new_candidates, "the red batch ran again");
    assert_eq!(gate_setups, new_candidates, "{lines}");
    let first = std::fs::read_to_string(run_dir(&repo).join("logs/.gate/gate-1.log")).unwrap();
    assert!(first.contains("=== streams: setup at"), "{first}");
    assert!(
        first.contains("included 1 file(s) from the checkout"),
        "{first}"
    );
}

#[test]
fn a_setup_that_fails_on_a_candidate_makes_it_red_and_blames_the_stream() {
    // The setup fails once `s3`'s file is there: `s3` is blamed as for a red gate.
    let repo = five_streams_with(
        r#"["true"]"#,
        r#"setup = ["sh", "-c", "! grep -rq missing src/s3 2>/dev/null"]"#,
        &[],
    );
    let out = repo.streams(&["run"]);
    assert_s3_blamed(&repo, &out);
    let state = state(&repo);
    let red: Vec<&serde_json::Value> = state["gates"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|g| g["passed"] == false)
        .collect();
    assert!(!red.is_empty());
    for g in red {
        assert!(
            g["result"].as_str().unwrap().starts_with("setup `sh -c"),
            "{g}"
        );
    }
}

#[test]
fn ctrl_c_while_the_gate_runs_stops_it_and_resume_gates_again() {
    use std::time::Duration;
    let (repo, mut child, mark) = run_until_the_first_gate_hangs(std::process::Stdio::piped());
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    // It stops the gate as it stops agents (a deadline far below the gate's ten minutes).
    let status = crate::common::wait_for("streams to stop", Duration::from_secs(60), || {
        child.try_wait().unwrap()
    });
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(130), "{stderr}");
    assert!(
        stderr.contains("and the gate (again to kill them at once)"),
        "{stderr}"
    );
    assert!(
        repo.live_processes().is_empty(),
        "{:?}",
        repo.live_processes()
    );
    // The stopped run has no verdict; the journal says it was stopped.
    assert!(
        state(&repo)["gates"]
            .as_array()
            .is_none_or(|g| g.is_empty())
    );
    let journal = std::fs::read_to_string(run_dir(&repo).join("journal.ndjson")).unwrap();
    assert!(journal.contains("\"gate_stopped\""), "{journal}");
    let out = crate::common::CmdOutput::new(
        repo.streams_cmd(&["resume"])
            .env("MARK", &mark)
            .output()
            .unwrap(),
        &repo,
    );
    assert_s3_blamed(&repo, &out);
}

/// Whole output with commit ids (which carry the run's commit times) redacted too.
fn redact_oids(text: &str) -> String {
    let re = regex_lite::Regex::new(r"\b[0-9a-f]{10,40}\b").unwrap();
    re.replace_all(text, "[OID]").into_owned()
}

#[test]
fn plan_shows_each_streams_check_and_the_gate() {
    let repo = TestRepo::with_files(&[
        ("src/a/x.txt", "x\n"),
        ("src/b/x.txt", "x\n"),
        ("src/c/x.txt", "x\n"),
    ]);
    plan(
        &repo,
        r#"
[plan]
name = "p"
agent = ["act"]
check = ["compile", "--all"]
check_retries = 2
check_timeout = "10m"
gate = ["sh", "-c", "make test"]
gate_batch = 4

[[stream]]
name = "a"
owns = ["src/a/**"]
tasks = ["work"]

[[stream]]
name = "b"
owns = ["src/b/**"]
check = ["compile", "src/b"]
check_retries = 0
tasks = ["work"]

[[stream]]
name = "c"
owns = ["src/c/**"]
tasks = ["work"]
"#,
    );
    let out = repo.streams(&["plan"]);
    out.assert_code(0);
    insta::assert_snapshot!(redact_oids(&out.to_string()));

    let out = repo.streams(&["plan", "--json"]);
    out.assert_code(0);
    let json: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(
        json["plan"]["gate"],
        serde_json::json!(["sh", "-c", "make test"])
    );
    assert_eq!(json["plan"]["gate_batch"], 4);
    assert_eq!(
        json["streams"][0]["check"],
        serde_json::json!(["compile", "--all"])
    );
    assert_eq!(json["streams"][0]["check_retries"], 2);
    assert_eq!(
        json["streams"][1]["check"],
        serde_json::json!(["compile", "src/b"])
    );
    assert_eq!(json["streams"][1]["check_retries"], 0);
}

/// One stream at a time, so every gate run is on one stream: s2 is the culprit, s3's check
/// fails once and passes after its agent's second attempt.
fn one_at_a_time_with_a_culprit() -> TestRepo {
    let repo = TestRepo::with_files(&[
        ("src/lib/lib.txt", "fn base\n"),
        ("src/s1/x.txt", "call base\n"),
        ("src/s2/x.txt", "call base\n"),
        ("src/s3/x.txt", "call base\n"),
    ]);
    plan(
        &repo,
        r#"
[plan]
name = "p"
jobs = 1
gate = ["compile"]
check = ["true"]

[[stream]]
name = "s1"
owns = ["src/s1/**"]
agent = ["act", "write", "src/s1/y.txt", "call base"]
tasks = ["work"]

[[stream]]
name = "s2"
owns = ["src/s2/**"]
agent = ["act", "write", "src/s2/y.txt", "call missing"]
tasks = ["work"]

[[stream]]
name = "s3"
owns = ["src/s3/**"]
check = ["compile"]
check_retries = 1
agent = ["sh", "-c", "if [ -n \"$1\" ]; then echo 'fn other' > src/s3/fix.txt; else echo 'call other' > src/s3/use.txt; fi", "agent", "{check_output_file}"]
tasks = ["work"]
"#,
    );
    repo
}

#[test]
fn status_shows_check_results_and_gate_runs_with_the_culprit() {
    let repo = one_at_a_time_with_a_culprit();
    repo.streams(&["run"]).assert_code(4);
    let out = repo.streams(&["status"]);
    out.assert_code(0);
    insta::assert_snapshot!(redact_oids(&out.to_string()));

    let out = repo.streams(&["status", "--json"]);
    let json: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let run = &json["run"];
    assert_eq!(run["gate"]["command"], serde_json::json!(["compile"]));
    // s1, s2 (red), s2 again (red: not flaky), s3.
    assert_eq!(run["gate"]["runs"].as_array().unwrap().len(), 4);
    assert_eq!(run["gate"]["culprits"][0]["stream"], "s2");
    let s3 = &run["streams"][2];
    assert_eq!(s3["checks"][0]["passed"], false);
    assert_eq!(s3["checks"][1]["passed"], true);
}

/// The (stream, task) trailers on the integration branch, counted.
fn integrated_tasks(repo: &TestRepo) -> std::collections::BTreeMap<String, usize> {
    let log = repo.git(&[
        "log",
        "--format=%(trailers:key=Streams-Stream,valueonly,separator=%x2C)",
        "main..streams/p/integration",
    ]);
    let mut counts = std::collections::BTreeMap::new();
    for stream in log.lines().filter(|l| !l.is_empty()) {
        *counts.entry(stream.trim().to_string()).or_insert(0) += 1;
    }
    counts
}

/// SIGKILL the coordinator at random moments (resumes included) of a run whose gate batches
/// and bisects, then `resume` until it ends: the same integration tree and the same culprit as
/// an uninterrupted run, every other stream's work on it once, the culprit's on its branch.
/// A few iterations by default; STREAMS_CRASH_ITERATIONS for more, STREAMS_CRASH_SEED to
/// replay one.
#[test]
fn random_kills_with_a_gate_end_as_an_uninterrupted_run() {
    // Slow enough that kills land in gate runs and bisections, not only around them.
    const GATE: &str = r#"["sh", "-c", "sleep 0.1; exec compile"]"#;
    let seed: u64 = std::env::var("STREAMS_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x6a7e_5eed);
    let iterations: usize = std::env::var("STREAMS_CRASH_ITERATIONS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let reference = {
        let repo = five_streams(GATE);
        let out = repo.streams(&["run"]);
        assert_s3_blamed(&repo, &out);
        let culprits: Vec<serde_json::Value> = state(&repo)["bisections"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["culprit"].clone())
            .collect();
        (
            repo.git(&["rev-parse", "streams/p/integration^{tree}"]),
            culprits,
            integrated_tasks(&repo),
        )
    };
    let mut rng = crate::crash::Rng(seed);
    for iteration in 0..iterations {
        let repo = five_streams(GATE);
        let mut kills = 0;
        let mut command = "run";
        let mut last = String::new();
        loop {
            let (status, stderr) =
                crate::crash::run_killed_at_random(&repo, command, &mut rng, 1500, &mut kills);
            let context = format!("seed {seed:#x}, iteration {iteration}, {kills} kill(s)");
            match status.code() {
                // The end of the run: `s3` failed, so exit 4.
                Some(4) => {
                    last = stderr;
                    break;
                }
                None => command = "resume",
                Some(5) if stderr.contains("there is no run to resume") => command = "run",
                Some(5) if command == "resume" && stderr.contains("is finished") => break,
                Some(code) => panic!("{context}: `streams {command}` exited with {code}: {stderr}"),
            }
        }
        let context = format!("seed {seed:#x}, iteration {iteration}, {kills} kill(s)");
        assert_s3_blamed_in(&repo, &format!("{context}: {last}"));
        assert_eq!(
            repo.git(&["rev-parse", "streams/p/integration^{tree}"]),
            reference.0,
            "{context}: a different integration"
        );
        let culprits: Vec<serde_json::Value> = state(&repo)["bisections"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["culprit"].clone())
            .collect();
        assert_eq!(culprits, reference.1, "{context}: a different culprit");
        assert_eq!(
            integrated_tasks(&repo),
            reference.2,
            "{context}: some stream's work is missing or applied twice"
        );
        // The culprit's work stays on its branch.
        assert_eq!(
            repo.git(&["show", "streams/p/s3:src/s3/y.txt"]),
            "call missing",
            "{context}"
        );
        let fsck = repo.git_output_in(&repo.root, &["fsck", "--no-dangling", "--no-progress"]);
        assert!(fsck.status.success(), "{context}: git fsck failed");
        assert!(
            repo.live_processes().is_empty(),
            "{context}: {:?} left running",
            repo.live_processes()
        );
    }
}

#[test]
fn the_report_lists_every_check_and_gate_run_and_the_bisection() {
    let repo = one_at_a_time_with_a_culprit();
    let summary = repo.path("../step-summary.md");
    let out = repo
        .streams_cmd(&["run"])
        .env("GITHUB_STEP_SUMMARY", &summary)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4));
    let dir = run_dir(&repo);
    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    // The step summary is the Markdown report.
    let step = std::fs::read_to_string(&summary).unwrap();
    assert!(step.contains(&md), "{step}");
    // Checks and gate runs: command, commit and tree, result, time, log; then the bisection.
    let start = md.find("\nChecks:").expect("no checks section");
    let end = md[start..].find("\nNotes:").map_or(md.len(), |i| start + i);
    let section = md[start..end].replace(&dir.display().to_string(), "[RUN_DIR]");
    insta::assert_snapshot!(redact_oids(&crate::support::redact::redact_volatile(
        &section
    )));

    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).unwrap()).unwrap();
    let runs = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .chain(report["gates"].as_array().unwrap());
    let mut n = 0;
    for run in runs {
        n += 1;
        assert!(
            run["command"].as_array().is_some_and(|c| !c.is_empty()),
            "{run}"
        );
        assert_eq!(run["tree"].as_str().map(str::len), Some(40), "{run}");
        assert!(
            run["result"].is_string() && run["passed"].is_boolean(),
            "{run}"
        );
        assert!(run["ms"].is_u64() && run["at"].is_u64(), "{run}");
        assert!(
            std::path::Path::new(run["log"].as_str().unwrap()).exists(),
            "{run}"
        );
    }
    // Four checks (s3's twice), four gate runs (s2's red one run again before it is blamed).
    assert_eq!(n, 8);
    assert_eq!(report["bisections"][0]["culprit"], "s2");
    assert_eq!(
        report["bisections"][0]["steps"],
        serde_json::json!([[["s2"], false]])
    );
}

#[test]
fn the_culprits_dependents_are_skipped() {
    let repo = five_streams(r#"["compile"]"#);
    let mut text = repo.read("streams.toml");
    text.push_str(
        "\n[[stream]]\nname = \"after3\"\nowns = [\"src/after3/**\"]\ndepends_on = [\"s3\"]\nagent = [\"act\", \"write\", \"src/after3/y.txt\", \"call base\"]\ntasks = [\"work\"]\n",
    );
    plan(&repo, &text);
    let out = repo.streams(&["run"]);
    assert_s3_blamed(&repo, &out);
    let after = stream_state(&state(&repo), "after3");
    assert_eq!(after["state"], "skipped", "{after}");
    assert!(
        !repo
            .tree_listing("streams/p/integration")
            .contains("src/after3/")
    );
}

#[test]
fn a_gate_that_fails_once_then_passes_is_flaky_and_blames_nobody() {
    let repo = TestRepo::with_files(&[
        ("src/lib/lib.txt", "fn base\n"),
        ("src/s1/x.txt", "x\n"),
        ("src/s2/x.txt", "x\n"),
    ]);
    let count = repo.path("../gate-count");
    plan(
        &repo,
        &format!(
            r#"
[plan]
name = "p"
jobs = 2
gate = ["sh", "-c", "n=$(cat {count} 2>/dev/null || echo 0); echo $((n + 1)) > {count}; if [ $n = 0 ]; then echo 'the first run fails'; exit 1; fi; exec compile"]

[[stream]]
name = "s1"
owns = ["src/s1/**"]
agent = ["act", "write", "src/s1/y.txt", "call base"]
tasks = ["work"]

[[stream]]
name = "s2"
owns = ["src/s2/**"]
agent = ["act", "write", "src/s2/y.txt", "call base"]
tasks = ["work"]
"#,
            count = count.display()
        ),
    );
    let out = repo.streams(&["run"]);
    out.assert_code(0);
    assert!(
        out.stderr.contains("flaky gate on + ")
            && out.stderr.contains(
                "failed, then passed on the same files; no stream is blamed, it landed on its last verdict"
            ),
        "{out}"
    );
    let state = state(&repo);
    for name in ["s1", "s2"] {
        assert_eq!(stream_state(&state, name)["state"], "done", "{out}");
    }
    assert!(
        state.get("bisections").is_none(),
        "nothing bisected: {state}"
    );
    let flaky = state["flaky"].as_array().unwrap();
    assert_eq!(flaky.len(), 1, "{state}");
    assert_eq!(flaky[0]["outcome"], "landed");
    let runs = flaky[0]["runs"].as_array().unwrap();
    assert_eq!(
        runs.iter().map(|r| r["passed"].clone()).collect::<Vec<_>>(),
        [false, true]
    );
    // Both outputs are kept.
    let red = std::fs::read_to_string(runs[0]["log"].as_str().unwrap()).unwrap();
    assert!(red.contains("the first run fails"), "{red}");
    assert_ne!(runs[0]["log"], runs[1]["log"]);
    assert!(std::path::Path::new(runs[1]["log"].as_str().unwrap()).exists());
    // The run again is told apart in the report and status.
    let md = std::fs::read_to_string(run_dir(&repo).join("report.md")).unwrap();
    assert!(
        md.contains("(run again)") && md.contains("Flaky gate on + "),
        "{md}"
    );
    let status = repo.streams(&["status"]);
    assert!(
        status
            .stdout
            .contains("; no stream is blamed; landed on its last verdict"),
        "{status}"
    );
}

#[test]
fn a_green_subset_that_fails_when_checked_again_is_flaky_and_blames_nobody() {
    // s0 lands alone first: the others start their work once its gate runs, and its gate run
    // waits until they have all committed, so those five are gated together: red (s3), red
    // again, then bisected to s3 (which commits after s1: s1 is in the green subset). The gate
    // fails on a candidate without s3 that it has seen before: the green subset's check again.
    let mut files = vec![("src/lib/lib.txt", "fn base\n"), ("src/s0/x.txt", "x\n")];
    for name in FIVE {
        files.push((
            Box::leak(format!("src/{name}/x.txt").into_boxed_str()),
            "x\n",
        ));
    }
    let repo = TestRepo::with_files(&files);
    let seen = repo.path("../gate-seen");
    let started = repo.path("../s0-gated");
    let script = format!(
        r#"set -e
if [ "$STREAMS_GATE_STREAMS" = s0 ]; then
  touch {started}
  for s in s1 s2 s3 s4 s5; do
    until git -C "$ACT_REPO" cat-file -e streams/p/$s:src/$s/y.txt 2>/dev/null; do sleep 0.05; done
  done
fi
key=$(echo "$STREAMS_GATE_STREAMS" | tr '\n' ' ')
if grep -qxF "$key" {seen} 2>/dev/null && ! echo "$key" | grep -q s3; then echo 'fails when checked again'; exit 1; fi
echo "$key" >> {seen}
exec compile"#,
        seen = seen.display(),
        started = started.display()
    );
    let mut text = format!(
        "[plan]\nname = \"p\"\njobs = 6\ngate = [\"sh\", \"-c\", {}]\n",
        serde_json::to_string(&script).unwrap()
    );
    for name in std::iter::once("s0").chain(FIVE) {
        let call = if name == "s3" { "missing" } else { "base" };
        let wait = match name {
            "s0" => String::new(),
            "s3" => format!(
                r#""wait-for", "{}", "wait-rev", "streams/p/s1:src/s1/y.txt", "#,
                started.display()
            ),
            _ => format!(r#""wait-for", "{}", "#, started.display()),
        };
        text.push_str(&format!(
            "\n[[stream]]\nname = \"{name}\"\nowns = [\"src/{name}/**\"]\nagent = [\"act\", {wait}\"write\", \"src/{name}/y.txt\", \"call {call}\"]\ntasks = [\"work\"]\n"
        ));
    }
    plan(&repo, &text);
    let out = repo.streams(&["run"]);
    out.assert_code(4);
    assert!(
        out.stderr.contains("is flaky: it passed on + ")
            && out
                .stderr
                .contains("and failed on the same files when checked again: no stream is blamed"),
        "{out}"
    );
    let state = state(&repo);
    assert!(state.get("bisections").is_none(), "no culprit: {state}");
    assert_eq!(stream_state(&state, "s0")["state"], "done");
    for name in FIVE {
        let s = stream_state(&state, name);
        assert_eq!(s["state"], "failed", "{name}: {out}");
        let reason = s["reason"].as_str().unwrap();
        assert!(
            reason.starts_with("not integrated: gate `") && reason.contains("is flaky"),
            "{name}: {reason}"
        );
    }
    let flaky = &state["flaky"][0];
    assert_eq!(flaky["outcome"], "stopped");
    let subset = flaky["streams"].as_array().unwrap();
    assert!(
        subset.contains(&"s1".into()) && !subset.contains(&"s3".into()),
        "{flaky}"
    );
    let verdicts: Vec<serde_json::Value> = flaky["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["passed"].clone())
        .collect();
    assert_eq!(verdicts, [true, false]);
    // Only s0 landed.
    let tree = repo.tree_listing("streams/p/integration");
    assert!(
        tree.contains("src/s0/y.txt") && !tree.contains("src/s1/y.txt"),
        "{tree}"
    );
}
