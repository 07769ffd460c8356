//! Crash safety: kill -9 at any instant, `streams resume` finishes with nothing lost.
//!
//! Every test compares the integration branch after crash + resume with an uninterrupted run of
//! the same plan, checks that every task's work is on it exactly once (by its trailers), and
//! that `git fsck` finds nothing wrong.

use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use crate::common::{TestRepo, process_alive, wait_for};
use crate::support::interrupt::start_waiting_run;
use crate::support::plans::plan;

fn crash_repo() -> TestRepo {
    TestRepo::with_files(&[
        ("README.md", "crash test\n"),
        ("a/README", "a\n"),
        ("b/README", "b\n"),
        ("c/README", "c\n"),
    ])
}

/// Three streams: `a` (two tasks, each an agent commit plus work left for streams to commit),
/// `b` after `a`, and `c` beside them.
fn crash_plan(repo: &TestRepo, sync: &str, pause: &str) {
    plan(
        repo,
        &format!(
            r#"
[plan]
name = "c"
jobs = 2
sync = "{sync}"
grace = "1s"

[[stream]]
name = "a"
owns = ["a/**"]
agent = ["act", "sleep", "{pause}", "write", "a/{{task_index}}", "a{{task_index}}", "commit", "a commit {{task_index}}", "write", "a/left{{task_index}}", "left {{task_index}}"]
tasks = ["a one", "a two"]

[[stream]]
name = "b"
owns = ["b/**"]
depends_on = ["a"]
agent = ["act", "require", "a/2", "sleep", "{pause}", "write", "b/1", "b1"]
tasks = ["b one"]

[[stream]]
name = "c"
owns = ["c/**"]
agent = ["act", "sleep", "{pause}", "write", "c/1", "c1", "commit", "c commit"]
tasks = ["c one"]
"#
        ),
    );
}

/// What every (stream, task) contributes: commits carrying its trailers. `a`'s agent commits,
/// then leaves a file beyond its commit: one commit of streams' own (its commit kept aside).
const EXPECTED: &[((&str, usize), usize)] =
    &[(("a", 1), 1), (("a", 2), 1), (("b", 1), 1), (("c", 1), 1)];

fn reference_tree(sync: &str) -> String {
    let repo = crash_repo();
    crash_plan(&repo, sync, "0");
    repo.streams(&["run"]).assert_code(0);
    repo.git(&["rev-parse", "streams/c/integration^{tree}"])
}

/// The (stream, task) trailers on the integration branch, counted.
fn task_counts(repo: &TestRepo) -> BTreeMap<(String, usize), usize> {
    let log = repo.git(&["log", "--format=%(trailers:key=Streams-Stream,valueonly,separator=%x2C)|%(trailers:key=Streams-Task,valueonly,separator=%x2C)", "main..streams/c/integration"]);
    let mut counts = BTreeMap::new();
    for line in log.lines().filter(|l| !l.is_empty()) {
        let (stream, tasks) = line.split_once('|').unwrap();
        for task in tasks.split(',') {
            *counts
                .entry((stream.to_string(), task.trim().parse().unwrap()))
                .or_insert(0) += 1;
        }
    }
    counts
}

/// The checks every crash test ends with.
fn assert_complete(repo: &TestRepo, reference: &str, context: &str) {
    assert_eq!(
        repo.git(&["rev-parse", "streams/c/integration^{tree}"]),
        reference,
        "{context}: different result"
    );
    let counts = task_counts(repo);
    let expected: BTreeMap<(String, usize), usize> = EXPECTED
        .iter()
        .map(|((s, t), n)| ((s.to_string(), *t), *n))
        .collect();
    assert_eq!(
        counts, expected,
        "{context}: some task's work is missing or applied twice"
    );
    let fsck = repo.git_output_in(&repo.root, &["fsck", "--no-dangling", "--no-progress"]);
    assert!(
        fsck.status.success(),
        "{context}: git fsck: {}",
        String::from_utf8_lossy(&fsck.stderr)
    );
    let status = repo.streams(&["status", "--json"]);
    let json: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    assert_eq!(json["run"]["phase"], "finished", "{context}");
    assert_eq!(json["run"]["outcome"], "integrated", "{context}");
}

/// Runs with a failpoint armed: the coordinator must die there (SIGKILL), then `resume`
/// must finish the run.
fn crash_at(point: &str, sync: &str) {
    let reference = reference_tree(sync);
    let repo = crash_repo();
    crash_plan(&repo, sync, "0");
    let mut cmd = repo.streams_cmd(&["run"]);
    cmd.env("STREAMS_FAILPOINT", point);
    let out = cmd.output().unwrap();
    assert_eq!(
        out.status.signal(),
        Some(9),
        "the failpoint {point} was never reached: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // `run` refuses to start over an interrupted run and says what to do.
    let again = repo.streams(&["run"]);
    again.assert_code(5);
    assert!(
        again
            .stderr
            .contains("was interrupted and has not finished"),
        "{again}"
    );
    assert!(again.stderr.contains("`streams resume`"), "{again}");

    let out = repo.streams(&["resume"]);
    out.assert_code(0);
    assert_complete(&repo, &reference, &format!("crash at {point} ({sync})"));
}

macro_rules! crash_tests {
    ($($name:ident: $point:expr, $sync:expr;)*) => {
        $(
            #[test]
            fn $name() {
                crash_at($point, $sync);
            }
        )*
    };
}

crash_tests! {
    crash_after_the_run_is_saved: "run-saved", "stream";
    crash_after_the_integration_branch_is_created: "integration-created", "stream";
    crash_after_a_worktree_is_registered_before_checkout: "worktree-registered", "stream";
    crash_after_a_task_is_recorded: "task-recorded", "stream";
    crash_before_the_agent_starts: "before-agent", "stream";
    crash_right_after_the_agent_is_spawned: "after-agent-spawn", "stream";
    crash_after_the_agent_exits: "after-agent-exit", "stream";
    crash_before_the_commit: "before-commit", "stream";
    crash_after_the_commit: "after-commit", "stream";
    crash_before_integrating: "before-integrate", "stream";
    crash_before_the_integration_ref_moves: "before-integrate-ref", "stream";
    crash_after_the_integration_ref_moves: "after-integrate-ref", "stream";
    crash_after_an_integration_is_saved: "after-integrate-saved", "stream";
    crash_after_the_second_integration_ref_move: "after-integrate-ref@2", "stream";
    crash_after_the_third_commit: "after-commit@3", "stream";
    crash_at_task_sync_after_a_ref_move: "after-integrate-ref@2", "task";
    crash_at_task_sync_after_a_commit: "after-commit@2", "task";
    crash_at_task_sync_before_an_agent: "before-agent@3", "task";
}

/// Every state save of a run is a step: crash after each one in turn.
#[test]
fn crash_after_every_state_save() {
    let reference = reference_tree("stream");
    let mut n = 1;
    loop {
        let repo = crash_repo();
        crash_plan(&repo, "stream", "0");
        let mut cmd = repo.streams_cmd(&["run"]);
        cmd.env("STREAMS_FAILPOINT", format!("after-state-save@{n}"));
        let out = cmd.output().unwrap();
        if out.status.signal() != Some(9) {
            // The run has fewer saves than n: every one was covered.
            assert_eq!(
                out.status.code(),
                Some(0),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(n > 10, "only {n} saves in a whole run?");
            break;
        }
        let resumed = repo.streams(&["resume"]);
        // Killed after the final save: the run was already finished.
        if !(resumed.code == Some(5) && resumed.stderr.contains("is finished")) {
            resumed.assert_code(0);
        }
        assert_complete(&repo, &reference, &format!("crash after state save {n}"));
        n += 1;
    }
}

/// A tiny deterministic generator (xorshift), so failures can be replayed from the seed.
/// Runs `streams <command>` and, unless it ends first, kills it with SIGKILL at a random moment
/// within `max_ms` (at most 4 kills in all, counted in `kills`: then it runs to its end). Its
/// exit status and stderr.
pub(crate) fn run_killed_at_random(
    repo: &TestRepo,
    command: &str,
    rng: &mut Rng,
    max_ms: u64,
    kills: &mut u32,
) -> (std::process::ExitStatus, String) {
    run_args_killed_at_random(repo, &[command], rng, max_ms, kills)
}

/// [`run_killed_at_random`] for a command with arguments (`continue STREAM`).
pub(crate) fn run_args_killed_at_random(
    repo: &TestRepo,
    args: &[&str],
    rng: &mut Rng,
    max_ms: u64,
    kills: &mut u32,
) -> (std::process::ExitStatus, String) {
    let mut child = repo
        .streams_cmd(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let delay = Duration::from_millis(rng.below(max_ms));
    let started = Instant::now();
    let mut finished = None;
    while started.elapsed() < delay {
        if let Some(status) = child.try_wait().unwrap() {
            finished = Some(status);
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let status = match finished {
        Some(status) => status,
        None if *kills < 4 => {
            child.kill().unwrap();
            *kills += 1;
            child.wait().unwrap()
        }
        None => child.wait().unwrap(),
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    (status, stderr)
}

pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// SIGKILL the coordinator at random moments, resumes included, until the run finishes.
#[test]
fn random_kills_during_run_and_resume() {
    let seed: u64 = std::env::var("STREAMS_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_cafe);
    let iterations: usize = std::env::var("STREAMS_CRASH_ITERATIONS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let reference = reference_tree("stream");
    let mut rng = Rng(seed);
    for iteration in 0..iterations {
        let repo = crash_repo();
        crash_plan(&repo, "stream", "0.05");
        let mut kills = 0;
        let mut command = "run";
        loop {
            let (status, stderr) = run_killed_at_random(&repo, command, &mut rng, 500, &mut kills);
            let context = format!("seed {seed:#x}, iteration {iteration}, {kills} kill(s)");
            match status.code() {
                Some(0) => break,
                None => command = "resume",
                // Killed before the run existed: a person would start it again.
                Some(5) if stderr.contains("there is no run to resume") => command = "run",
                // Killed after the run was saved as finished (while it wrote its report): done.
                Some(5) if command == "resume" && stderr.contains("is finished") => break,
                Some(code) => panic!("{context}: `streams {command}` exited with {code}: {stderr}"),
            }
        }
        assert_complete(
            &repo,
            &reference,
            &format!("seed {seed:#x}, iteration {iteration}, {kills} kill(s)"),
        );
    }
}

#[test]
fn resume_stops_agents_left_running_and_keeps_their_unfinished_work() {
    let repo = crash_repo();
    let pidfile = repo.root.parent().unwrap().join("agent.pid");
    let release = repo.root.parent().unwrap().join("release");
    plan(
        &repo,
        &format!(
            r#"
[plan]
name = "c"
grace = "1s"

[[stream]]
name = "a"
owns = ["a/**"]
agent = ["act", "write", "a/draft", "unfinished", "env", "a/env", "ignore-term", "{}", "wait-for", "{}", "write", "a/done", "done"]
tasks = ["slow work"]
"#,
            pidfile.display(),
            release.display()
        ),
    );
    let mut child = repo
        .streams_cmd(&["run"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for("the agent to start", Duration::from_secs(20), || {
        pidfile.exists().then_some(())
    });
    let pid: i32 = wait_for("the agent's pid", Duration::from_secs(5), || {
        std::fs::read_to_string(&pidfile)
            .ok()
            .and_then(|s| s.trim().parse().ok())
    });
    child.kill().unwrap();
    child.wait().unwrap();
    // The coordinator is gone; its agent is not (it is in its own process group).
    assert!(process_alive(pid));
    std::fs::remove_file(&pidfile).unwrap();

    let resume = repo
        .streams_cmd(&["resume"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The old agent is stopped (it ignores SIGTERM: killed after the grace period) before its
    // task runs again; the new agent waits for the release.
    wait_for("the task to run again", Duration::from_secs(20), || {
        pidfile.exists().then_some(())
    });
    assert!(
        !process_alive(pid) || is_zombie(pid),
        "the agent of the dead run is still running"
    );
    // Its unfinished work was kept before the worktree was reset.
    assert_eq!(
        repo.git(&["show", "refs/streams/c/wip/a/1:a/draft"]),
        "unfinished"
    );
    std::fs::write(&release, "").unwrap();
    let out = resume.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    // The agent, and a `sleep` of its wait loop if one was running at the kill: one or two.
    let stopping = regex_lite::Regex::new(
        r"(?m)^stopping ([12]) agent process\(es\) left running by the interrupted run$",
    )
    .unwrap();
    assert!(stopping.is_match(&stderr), "{stderr}");
    assert!(
        stderr.contains("its unfinished work is kept on refs/streams/c/wip/a/1"),
        "{stderr}"
    );
    assert_eq!(repo.git(&["show", "streams/c/integration:a/done"]), "done");
}

fn is_zombie(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| s.contains(") Z "))
}

#[test]
fn resume_clears_its_own_stale_git_locks_and_reports_others() {
    let repo = crash_repo();
    crash_plan(&repo, "stream", "0");
    let mut cmd = repo.streams_cmd(&["run"]);
    cmd.env("STREAMS_FAILPOINT", "after-agent-exit");
    assert_eq!(cmd.output().unwrap().status.signal(), Some(9));
    // Whatever the dead coordinator had started (its agents, a git it ran) ends on its own here;
    // wait for that, so the lock files below are the only ones.
    let run = std::fs::read_to_string(repo.common_dir().join("streams/current")).unwrap();
    let mark = format!("STREAMS_RUN_ID={}", run.trim());
    wait_for(
        "the dead run's processes to end",
        Duration::from_secs(20),
        || {
            let busy = std::fs::read_dir("/proc")
                .unwrap()
                .filter_map(|e| e.ok())
                .any(|e| {
                    std::fs::read(e.path().join("environ"))
                        .is_ok_and(|env| env.split(|b| *b == 0).any(|v| v == mark.as_bytes()))
                });
            (!busy).then_some(())
        },
    );
    // A killed git would leave these: one in a stream workspace's git dir, one in the user's.
    let common = repo.common_dir();
    let admin = std::fs::read_dir(repo.workspaces("c"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path()
        .join(".git");
    std::fs::write(admin.join("index.lock"), "").unwrap();
    std::fs::write(common.join("index.lock"), "").unwrap();
    let out = repo.streams(&["resume"]);
    out.assert_code(0);
    let stderr = out.stderr_redacted();
    assert!(
        stderr.contains("removed a stale git lock file left by the crash"),
        "{stderr}"
    );
    assert!(stderr.contains("warning: [REPO]/.git/index.lock exists (not streams'); if no git command is running, remove it"), "{stderr}");
    assert!(!admin.join("index.lock").exists());
    assert!(
        common.join("index.lock").exists(),
        "the user's lock file must never be deleted"
    );
}

#[test]
fn nothing_to_resume_is_a_state_error() {
    let repo = crash_repo();
    let out = repo.streams(&["resume"]);
    out.assert_code(5);
    assert!(
        out.stderr
            .contains("there is no run to resume in this repository"),
        "{out}"
    );
    crash_plan(&repo, "stream", "0");
    repo.streams(&["run"]).assert_code(0);
    let out = repo.streams(&["resume"]);
    out.assert_code(5);
    assert!(out.stderr.contains("nothing to resume: run"), "{out}");
    assert!(out.stderr.contains("is finished"), "{out}");
}

#[test]
fn ctrl_c_stops_agents_saves_state_and_resume_goes_on() {
    a_signal_stops_agents_saves_state_and_resume_goes_on(Signal::SIGINT, 130);
}

#[test]
fn a_hangup_stops_agents_like_sigterm_and_resume_goes_on() {
    // A closed terminal or ssh session sends SIGHUP: it must stop the agents and save the state,
    // not end streams with its agents left running.
    a_signal_stops_agents_saves_state_and_resume_goes_on(Signal::SIGHUP, 129);
}

/// `signal` to streams while its agent works: the agent is stopped, the state saved, streams
/// exits with `code`, and `resume` runs the task again to its end.
fn a_signal_stops_agents_saves_state_and_resume_goes_on(signal: Signal, code: i32) {
    let repo = crash_repo();
    let mut run = start_waiting_run(&repo);
    // streams and its agent (at least).
    assert!(repo.live_processes().len() >= 2);
    let out = run.signal(signal);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "{} received: stopping 1 running agent(s)",
            signal.as_str()
        )),
        "{stderr}"
    );
    assert!(
        stderr
            .contains("interrupted: the run's state is saved; `streams resume` goes on from here"),
        "{stderr}"
    );
    // The agent (waiting for a release that has not come) is stopped, not left behind.
    wait_for("the agent to be stopped", Duration::from_secs(5), || {
        repo.live_processes().is_empty().then_some(())
    });
    let status = repo.streams(&["status"]);
    assert!(status.stdout.contains(": interrupted"), "{status}");
    std::fs::write(&run.release, "").unwrap();
    repo.streams(&["resume"]).assert_code(0);
    assert_eq!(repo.git(&["show", "streams/c/integration:a/done"]), "done");
}

#[test]
fn a_full_disk_is_a_clear_error_and_the_state_stays_readable() {
    let reference = reference_tree("stream");
    let repo = crash_repo();
    crash_plan(&repo, "stream", "0");
    let mut cmd = repo.streams_cmd(&["run"]);
    cmd.env("STREAMS_FAILPOINT", "state-save:enospc@4");
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("error: could not save the run state to "),
        "{stderr}"
    );
    assert!(stderr.contains("hint: the disk is full: free some space, then `streams resume` picks up where this stopped"), "{stderr}");
    // The state on disk is the last good one, still readable.
    let status = repo.streams(&["status", "--json"]);
    status.assert_code(0);
    let json: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    assert_eq!(json["run"]["phase"], "interrupted");
    repo.streams(&["resume"]).assert_code(0);
    assert_complete(&repo, &reference, "after a full disk");
}

#[test]
fn state_files_of_the_first_format_still_load() {
    let repo = crash_repo();
    let base = repo.git(&["rev-parse", "HEAD"]);
    let run_dir = repo.common_dir().join("streams/runs/20260101-000000-0001");
    std::fs::create_dir_all(&run_dir).unwrap();
    let fixture =
        std::fs::read_to_string(crate::common::fixtures_dir().join("state/v1.json")).unwrap();
    let state = fixture
        .replace("@BASE@", &base)
        .replace("@ROOT@", &repo.root.display().to_string());
    std::fs::write(run_dir.join("state.json"), state).unwrap();
    std::fs::write(
        repo.common_dir().join("streams/current"),
        "20260101-000000-0001\n",
    )
    .unwrap();
    let out = repo.streams(&["status"]);
    out.assert_code(0);
    insta::assert_snapshot!(out.to_string());
}

#[test]
fn a_second_ctrl_c_kills_at_once() {
    use std::io::BufRead;
    let repo = crash_repo();
    let pidfile = repo.root.parent().unwrap().join("agent.pid");
    plan(
        &repo,
        &format!(
            r#"
[plan]
name = "c"
grace = "60s"

[[stream]]
name = "a"
owns = ["a/**"]
agent = ["act", "ignore-term", "{}", "hang"]
tasks = ["stubborn"]
"#,
            pidfile.display()
        ),
    );
    let mut child = repo
        .streams_cmd(&["run"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid: i32 = wait_for("the agent's pid", Duration::from_secs(20), || {
        std::fs::read_to_string(&pidfile)
            .ok()
            .and_then(|s| s.trim().parse().ok())
    });
    let coordinator = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(coordinator, nix::sys::signal::Signal::SIGINT).unwrap();
    // Wait until the first signal was taken in (the agent ignores it; the grace is a minute).
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    while !seen.contains("SIGINT received") {
        let mut line = String::new();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "streams exited early: {seen}"
        );
        seen.push_str(&line);
    }
    let second = Instant::now();
    nix::sys::signal::kill(coordinator, nix::sys::signal::Signal::SIGINT).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    // Well within the minute of grace the first signal gave.
    assert!(
        second.elapsed() < Duration::from_secs(30),
        "took {:?}",
        second.elapsed()
    );
    assert!(!process_alive(pid) || is_zombie(pid));
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    assert!(
        rest.contains("stopping now (second signal): killing every agent"),
        "{seen}{rest}"
    );
}

#[test]
fn a_read_only_run_directory_is_a_clear_error() {
    let repo = crash_repo();
    crash_plan(&repo, "stream", "0");
    let mut cmd = repo.streams_cmd(&["run"]);
    cmd.env("STREAMS_FAILPOINT", "state-save:erofs@3");
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("error: could not save the run state to "),
        "{stderr}"
    );
    assert!(stderr.contains("Read-only file system"), "{stderr}");
    assert!(
        stderr.contains("hint: check that you can write to the repository's .git directory"),
        "{stderr}"
    );
    // Readable, resumable.
    let json: serde_json::Value =
        serde_json::from_str(&repo.streams(&["status", "--json"]).stdout).unwrap();
    assert_eq!(json["run"]["phase"], "interrupted");
    repo.streams(&["resume"]).assert_code(0);
}

#[test]
fn ctrl_c_at_the_terminal_does_not_kill_streams_own_git_commands() {
    use std::os::unix::process::CommandExt;
    let mut repo = crash_repo();
    // A git that pauses inside the commit step (`git var -l`, which reads the identity the
    // task's commit is made with), long enough for a Ctrl-C to land there.
    let real_git = String::from_utf8(
        std::process::Command::new("sh")
            .args(["-c", "command -v git"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let bin = repo.root.parent().unwrap().join("slow-git");
    let marker = repo.root.parent().unwrap().join("committing");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::write(
        bin.join("git"),
        format!(
            "#!/bin/sh\nif [ \"$3\" = var ] && [ \"$4\" = -l ]; then touch '{}'; sleep 1; fi\nexec '{}' \"$@\"\n",
            marker.display(),
            real_git.trim()
        ),
    )
    .unwrap();
    std::process::Command::new("chmod")
        .arg("+x")
        .arg(bin.join("git"))
        .status()
        .unwrap();
    let path = format!(
        "{}:{}:{}",
        bin.display(),
        crate::common::agents_dir().display(),
        std::env::var("PATH").unwrap()
    );
    repo.env.push(("PATH".into(), path));
    plan(
        &repo,
        r#"
[plan]
name = "c"

[[stream]]
name = "a"
owns = ["a/**"]
agent = ["act", "write", "a/y", "left for streams to commit"]
tasks = ["a task"]
"#,
    );
    // Its own process group, as a shell gives a foreground job; the terminal's Ctrl-C goes to
    // the whole group.
    let mut cmd = repo.streams_cmd(&["run"]);
    cmd.process_group(0)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let child = cmd.spawn().unwrap();
    wait_for("streams to be committing", Duration::from_secs(20), || {
        marker.exists().then_some(())
    });
    nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(!stderr.contains("could not commit"), "{stderr}");
    // The commit went through although the Ctrl-C arrived while it ran.
    assert_eq!(
        repo.git(&["log", "-1", "--format=%s", "streams/c/a"]),
        "a task"
    );
    repo.streams(&["resume"]).assert_code(0);
    assert_eq!(
        repo.git(&["show", "streams/c/integration:a/y"]),
        "left for streams to commit"
    );
    assert_eq!(
        repo.git(&["rev-list", "--count", "main..streams/c/integration"]),
        "1"
    );
}

#[test]
fn resume_never_kills_a_process_that_is_not_the_runs() {
    let repo = crash_repo();
    crash_plan(&repo, "stream", "0");
    let mut cmd = repo.streams_cmd(&["run"]);
    cmd.env("STREAMS_FAILPOINT", "after-agent-exit");
    assert_eq!(cmd.output().unwrap().status.signal(), Some(9));
    // A process of someone else's whose group id the journal happens to name (after a reboot,
    // or once pids wrap, a recorded id can be anyone's).
    let mut stranger = std::process::Command::new("setsid")
        .args(["sleep", "300"])
        .spawn()
        .unwrap();
    let pgid = stranger.id();
    let run = std::fs::read_to_string(repo.common_dir().join("streams/current")).unwrap();
    let journal = repo
        .common_dir()
        .join("streams/runs")
        .join(run.trim())
        .join("journal.ndjson");
    let mut text = std::fs::read_to_string(&journal).unwrap();
    text.push_str(&format!(
        "{{\"at\":1,\"step\":\"agent_spawned\",\"stream\":\"c\",\"task\":0,\"pgid\":{pgid}}}\n"
    ));
    std::fs::write(&journal, text).unwrap();
    repo.streams(&["resume"]).assert_code(0);
    assert!(
        process_alive(pgid as i32),
        "resume killed a process that was not the run's"
    );
    stranger.kill().unwrap();
    stranger.wait().unwrap();
}

/// The crash plan with two streams that park beside it: `c` also appends to the shared
/// `SHARED.md` and `NOTES.md`; `p1` and `p2` append to one each once `c` has landed, so each
/// conflicts (in its own file) while `a`, `b` and `c` go on integrating.
///
/// Each parks whenever the run is killed: its second task appends, going on from the end of
/// its first (the sync point is the stream), which `c` waits for on the stream's branch before
/// it makes its own change. (A single task interrupted after `c` landed would run again from the
/// new integration tip, `c`'s change in it, and not conflict.)
fn parking_plan(repo: &TestRepo, pause: &str) {
    plan(
        repo,
        &format!(
            r#"
[plan]
name = "c"
jobs = 5
grace = "1s"
shared = ["SHARED.md", "NOTES.md"]

[[stream]]
name = "a"
owns = ["a/**"]
agent = ["act", "sleep", "{pause}", "write", "a/{{task_index}}", "a{{task_index}}", "commit", "a commit {{task_index}}", "write", "a/left{{task_index}}", "left {{task_index}}"]
tasks = ["a one", "a two"]

[[stream]]
name = "b"
owns = ["b/**"]
depends_on = ["a"]
agent = ["act", "require", "a/2", "sleep", "{pause}", "write", "b/1", "b1"]
tasks = ["b one"]

[[stream]]
name = "c"
owns = ["c/**"]
agent = ["act", "wait-rev", "streams/c/p1:p1/0", "wait-rev", "streams/c/p2:p2/0", "write", "c/1", "c1", "append", "SHARED.md", "from c", "append", "NOTES.md", "from c", "commit", "c commit"]
tasks = ["c one"]

[[stream]]
name = "p1"
owns = ["p1/**"]
agent = ["sh", "-c", 'if [ {{task_index}} = 1 ]; then exec act write p1/0 p1; else exec act wait-rev streams/c/integration:c/1 sleep {pause} append SHARED.md "from p1" write p1/1 p1; fi']
tasks = ["p1 zero", "p1 one"]

[[stream]]
name = "p2"
owns = ["p2/**"]
agent = ["sh", "-c", 'if [ {{task_index}} = 1 ]; then exec act write p2/0 p2; else exec act wait-rev streams/c/integration:c/1 sleep {pause} append NOTES.md "from p2" write p2/1 p2; fi']
tasks = ["p2 zero", "p2 one"]
"#
        ),
    );
}

fn parking_repo() -> TestRepo {
    TestRepo::with_files(&[
        ("README.md", "crash test\n"),
        ("SHARED.md", "# shared\n"),
        ("NOTES.md", "# notes\n"),
        ("a/README", "a\n"),
        ("b/README", "b\n"),
        ("c/README", "c\n"),
        ("p1/README", "p1\n"),
        ("p2/README", "p2\n"),
    ])
}

/// What a person resolves each parked stream's conflict to.
fn park_resolution(stream: &str) -> (&'static str, &'static str) {
    match stream {
        "p1" => ("SHARED.md", "# shared\nfrom c\nfrom p1\n"),
        _ => ("NOTES.md", "# notes\nfrom c\nfrom p2\n"),
    }
}

/// The next command for a run that a kill -9 (or a halt) left: from its phase as `status` reads
/// it; a halted run's first parked stream is resolved (again, if its worktree was laid out
/// anew) and continued.
fn next_command(repo: &TestRepo) -> Vec<String> {
    let out = repo.streams(&["status", "--json"]);
    let json: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    if json["run"].is_null() {
        return vec!["run".into()];
    }
    match json["run"]["phase"].as_str().unwrap() {
        "halted" => {
            let parked = &json["run"]["parked"][0];
            let stream = parked["stream"].as_str().unwrap().to_string();
            let wt = std::path::PathBuf::from(parked["resolution_worktree"].as_str().unwrap());
            if wt.join(".git").exists() {
                let (file, text) = park_resolution(&stream);
                std::fs::write(wt.join(file), text).unwrap();
                repo.git_in(&wt, &["add", file]);
            }
            vec!["continue".into(), stream]
        }
        "finished" => Vec::new(),
        _ => vec!["resume".into()],
    }
}

/// Drives the parking plan to its end, with kills at random moments when `rng` is given:
/// run, resume after each kill, and at each halt resolve a parked stream and continue it.
fn drive_parking_run(repo: &TestRepo, mut rng: Option<&mut Rng>, context: &str) -> u32 {
    let mut kills = 0;
    let mut args: Vec<String> = vec!["run".into()];
    for _ in 0..40 {
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let (status, stderr) = match rng.as_deref_mut() {
            Some(rng) => run_args_killed_at_random(repo, &argv, rng, 700, &mut kills),
            None => {
                let out = repo.streams_cmd(&argv).output().unwrap();
                (
                    out.status,
                    String::from_utf8_lossy(&out.stderr).into_owned(),
                )
            }
        };
        match status.code() {
            Some(0) => return kills,
            // Killed, or halted with streams parked, or a resolution laid out anew: what the
            // run's phase says comes next.
            None | Some(3) => {}
            Some(5) if stderr.contains("there is no run to resume") => {}
            Some(code) => panic!("{context}: `streams {argv:?}` exited with {code}: {stderr}"),
        }
        args = next_command(repo);
        if args.is_empty() {
            return kills;
        }
    }
    panic!("{context}: the run did not finish");
}

/// SIGKILL the coordinator at random moments while streams are parked and others integrate
/// (`run`, `resume`, and `continue STREAM` too), until the run finishes: the same result as
/// without kills, every task's work on it exactly once.
#[test]
fn random_kills_while_streams_are_parked_and_others_integrate() {
    let seed: u64 = std::env::var("STREAMS_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x9a4c_ed01);
    let iterations: usize = std::env::var("STREAMS_CRASH_ITERATIONS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(8);
    let reference = {
        let repo = parking_repo();
        parking_plan(&repo, "0");
        drive_parking_run(&repo, None, "reference");
        repo.git(&["rev-parse", "streams/c/integration^{tree}"])
    };
    let expected: BTreeMap<(String, usize), usize> = EXPECTED
        .iter()
        .map(|((s, t), n)| ((s.to_string(), *t), *n))
        .chain([("p1", 1), ("p1", 2), ("p2", 1), ("p2", 2)].map(|(s, t)| ((s.to_string(), t), 1)))
        .collect();
    let mut rng = Rng(seed);
    for iteration in 0..iterations {
        let repo = parking_repo();
        parking_plan(&repo, "0.05");
        let context = format!("seed {seed:#x}, iteration {iteration}");
        let kills = drive_parking_run(&repo, Some(&mut rng), &context);
        let context = format!("{context}, {kills} kill(s)");
        assert_eq!(
            repo.git(&["rev-parse", "streams/c/integration^{tree}"]),
            reference,
            "{context}: different result"
        );
        assert_eq!(
            task_counts(&repo),
            expected,
            "{context}: some task's work is missing or applied twice"
        );
        let fsck = repo.git_output_in(&repo.root, &["fsck", "--no-dangling", "--no-progress"]);
        assert!(fsck.status.success(), "{context}: git fsck");
        let json: serde_json::Value =
            serde_json::from_str(&repo.streams(&["status", "--json"]).stdout).unwrap();
        assert_eq!(json["run"]["outcome"], "integrated", "{context}");
        let order: Vec<&str> = json["run"]["integration_order"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["stream"].as_str().unwrap())
            .collect();
        // Both parked streams landed after their conflicts, once each.
        for p in ["p1", "p2"] {
            assert_eq!(
                order.iter().filter(|s| **s == p).count(),
                1,
                "{context}: {order:?}"
            );
        }
        // Both parked, whenever the kills came (see `parking_plan`).
        let mut parked: Vec<&str> = json["run"]["integration_order"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|l| l["parked"] == true)
            .map(|l| l["stream"].as_str().unwrap())
            .collect();
        parked.sort();
        assert_eq!(parked, ["p1", "p2"], "{context}: {order:?}");
    }
}

/// A run id is the second a run started plus 16 random bits: another repository's run may carry
/// the same one. `resume` stops the processes of its own run only, told apart by the repository
/// they say they belong to, never another's agent that shares the id.
#[test]
fn resume_leaves_another_repositorys_run_with_the_same_id_alone() {
    let repo = crash_repo();
    // One agent: once it exited, nothing of the killed run is left for `resume` to stop (with
    // another stream beside it, that one's agent may still run, and is rightly stopped).
    plan(
        &repo,
        r#"
[plan]
name = "c"

[[stream]]
name = "a"
owns = ["a/**"]
agent = ["act", "write", "a/1", "a1"]
tasks = ["a one"]
"#,
    );
    let mut cmd = repo.streams_cmd(&["run"]);
    cmd.env("STREAMS_FAILPOINT", "after-agent-exit");
    assert_eq!(cmd.output().unwrap().status.signal(), Some(9));
    let run = std::fs::read_to_string(repo.common_dir().join("streams/current")).unwrap();
    // The agent of a run with the same id, in a repository elsewhere.
    let elsewhere = tempfile::tempdir().unwrap();
    let mut other = std::process::Command::new("sleep")
        .arg("300")
        .env("STREAMS_RUN_ID", run.trim())
        .env("STREAMS_REPO", elsewhere.path().join(".git"))
        .spawn()
        .unwrap();
    let out = repo.streams(&["resume"]);
    let pid = other.id() as i32;
    // Stopped, it would be a zombie until this test reaps it.
    let alive = process_alive(pid) && !is_zombie(pid);
    let _ = other.kill();
    let _ = other.wait();
    out.assert_code(0);
    assert!(alive, "resume stopped another repository's agent: {out}");
    assert!(!out.stderr.contains("stopping"), "{out}");
}
