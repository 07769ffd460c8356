//! Issue 24, findings 5 to 9, as an attacker found them: strays that lie about whose they are,
//! an agent that stops streams, links planted in a workspace, hostile file names, and plans
//! that are slow or strange to read.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use crate::common::{TestRepo, assert_gone, is_zombie, process_alive, read_pid, wait_for};

fn repo() -> TestRepo {
    TestRepo::with_files(&[("a/f.txt", "a\n"), ("b/f.txt", "b\n")])
}

/// A plan `p` whose stream `a` runs `a_script` and stream `b` runs `b_script` (each then writes
/// its `done.txt`), at the same time. The agent is the shell itself (its `$PPID` is what
/// streams started it under).
fn two_streams(repo: &TestRepo, a_script: &str, b_script: &str, extra: &str) {
    repo.write(
        "streams.toml",
        &format!(
            r#"
[plan]
name = "p"
jobs = 2
{extra}

[[stream]]
name = "a"
owns = ["a/**"]
agent = ["sh", "-c", {a}]
tasks = ["Work on a"]

[[stream]]
name = "b"
owns = ["b/**"]
agent = ["sh", "-c", {b}]
tasks = ["Work on b"]
"#,
            a = toml_string(&format!("{a_script}; echo a > a/done.txt")),
            b = toml_string(&format!("{b_script}; echo b > b/done.txt")),
        ),
    );
}

fn toml_string(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Plan `p` (with `settings` under `[plan]`) of one stream, `stream`, owning `stream/**`, whose
/// agent is the shell script `script`.
fn shell_plan(stream: &str, settings: &str, script: &str) -> String {
    format!(
        r#"
[plan]
name = "p"
{settings}

[[stream]]
name = "{stream}"
owns = ["{stream}/**"]
agent = ["sh", "-c", {script}]
tasks = ["Work on {stream}"]
"#,
        script = toml_string(script),
    )
}

/// Shell that starts a stray in a session of its own with its environment cleared (nothing
/// marks it as the run's), which writes its pid to `pidfile`; only once when `once`.
fn unmarked_stray(pidfile: &Path, once: bool) -> String {
    format!(
        "{guard}env -i HOME=\"$HOME\" setsid sh -c 'echo $$ > {p}.tmp && mv {p}.tmp {p}; \
         while :; do sleep 0.05; done' </dev/null >/dev/null 2>&1 &",
        guard = if once {
            format!("[ -s {} ] || ", pidfile.display())
        } else {
            String::new()
        },
        p = pidfile.display()
    )
}

/// A process in a session of its own, still carrying the run's id but naming a stream no task
/// has, looping until killed; its pid goes to `pidfile`.
fn forged_stray(pidfile: &Path) -> String {
    format!(
        "STREAMS_STREAM=ghost setsid sh -c 'echo $$ > {p}.tmp && mv {p}.tmp {p}; \
         while :; do sleep 0.05; done' </dev/null >/dev/null 2>&1 & \
         while [ ! -s {p} ]; do sleep 0.02; done",
        p = pidfile.display()
    )
}

/// Finding 5: a stray in a session of its own that names a stream no task has is still its
/// task's (it descends from the task's agent): it dies when its task ends, while the other
/// stream is still running, not when the run ends, and certainly not after.
#[test]
fn a_stray_that_names_no_stream_dies_with_its_task() {
    let repo = repo();
    let pidfile = repo.root.parent().unwrap().join("stray.pid");
    // b waits (up to 20 s) for a's stray to be gone, then finishes.
    let b_waits = format!(
        "while [ ! -s {p} ]; do sleep 0.02; done; pid=$(cat {p}); i=0; \
         while kill -0 $pid 2>/dev/null && ! grep -q '^State:.*Z' /proc/$pid/status; do \
           i=$((i+1)); [ $i -lt 400 ] || {{ echo 'the stray is still alive' >&2; exit 1; }}; sleep 0.05; \
         done",
        p = pidfile.display()
    );
    two_streams(&repo, &forged_stray(&pidfile), &b_waits, "");
    let out = repo.streams(&["run"]);
    let pid = read_pid(&pidfile);
    assert_gone(pid, "the stray to be gone");
    out.assert_code(0);
}

/// Finding 5, the stray out of its task's reach: the agent kills its own reaper (what makes its
/// strays its task's), so its stray lands on streams with nothing to say whose it is. It dies
/// before the run ends, and the task fails, saying how.
#[test]
fn a_stray_out_of_its_tasks_reach_dies_with_the_run() {
    let repo = repo();
    let pidfile = repo.root.parent().unwrap().join("stray.pid");
    repo.write(
        "streams.toml",
        &shell_plan(
            "a",
            "",
            &format!(
                "{}; kill -9 $PPID; sleep 1; echo a > a/done.txt",
                forged_stray(&pidfile)
            ),
        ),
    );
    let out = repo.streams(&["run"]);
    let pid = read_pid(&pidfile);
    assert_gone(pid, "the stray to be gone");
    out.assert_code(4);
    assert!(out.stderr.contains("killed by signal 9"), "{out}");
}

/// Finding 7: `kill -STOP $PPID` from an agent stops a process that holds nothing: streams goes
/// on, and the run finishes.
#[test]
fn an_agent_that_stops_its_parent_does_not_stop_streams() {
    let repo = repo();
    two_streams(&repo, "kill -STOP $PPID; sleep 0.5", "sleep 0.5", "");
    let mut child = repo
        .streams_cmd(&["run"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for("the run to finish", Duration::from_secs(30), || {
        child.try_wait().unwrap()
    });
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Finding 5 after a crash: streams is killed while its agent runs; the agent's stray (in a
/// session of its own, its environment cleared, so nothing in it says whose it is) is still
/// under the task's reaper, and `resume` stops it with the rest of the task's tree.
#[test]
fn a_stray_with_no_marks_left_by_a_crashed_run_dies_on_resume() {
    let repo = repo();
    let dir = repo.root.parent().unwrap();
    let (pidfile, release) = (dir.join("stray.pid"), dir.join("release"));
    stray_plan(&repo, &pidfile, &release);
    let mut run = repo
        .streams_cmd(&["run"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for("the stray to start", Duration::from_secs(20), || {
        pidfile
            .exists()
            .then(|| std::fs::read_to_string(&pidfile).ok())
            .flatten()
            .filter(|p| !p.trim().is_empty())
    });
    let pid = read_pid(&pidfile);
    // The crash comes once the run has recorded its agent's reaper: the agent can be quicker to
    // start its stray than streams to write that down (under load it was, and the stray was
    // then nobody's; for that window see the next test).
    wait_for(
        "the agent's reaper recorded",
        Duration::from_secs(20),
        || {
            journal(&repo)
                .contains("\"step\":\"agent_spawned\"")
                .then_some(())
        },
    );
    run.kill().unwrap();
    run.wait().unwrap();
    assert!(process_alive(pid), "the stray died with streams");
    std::fs::write(&release, "").unwrap();
    let out = repo.streams(&["resume"]);
    out.assert_code(0);
    assert_gone(pid, "the stray to be gone");
}

/// Streams is killed after starting its agent and before recording the agent's reaper: no
/// journal names the reaper, and the stray has no marks. The agent, still running, says whose it
/// is (its environment); the reaper is its parent, and the stray in that reaper's tree dies on
/// resume before the task runs again.
#[test]
fn a_stray_of_an_agent_started_but_not_yet_recorded_dies_on_resume() {
    let repo = repo();
    let dir = repo.root.parent().unwrap();
    let (pidfile, release) = (dir.join("stray.pid"), dir.join("release"));
    stray_plan(&repo, &pidfile, &release);
    run_killed_before_the_agent_is_recorded(&repo);
    assert!(!journal(&repo).contains("\"step\":\"agent_spawned\""));
    wait_for("the stray to start", Duration::from_secs(20), || {
        std::fs::read_to_string(&pidfile)
            .ok()
            .filter(|p| !p.trim().is_empty())
    });
    let pid = read_pid(&pidfile);
    let resume = repo
        .streams_cmd(&["resume"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Stopped before the task runs again (whose agent waits for the release); the deadline
    // counts resume's own start too.
    wait_for("the stray to be gone", Duration::from_secs(30), || {
        (!process_alive(pid) || is_zombie(pid)).then_some(())
    });
    std::fs::write(&release, "").unwrap();
    let out = resume.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("agent process(es) left running by the interrupted run"),
        "{stderr}"
    );
}

/// The same window, the agent already gone when `resume` looks: nothing left says whose the
/// stray (no marks, a session of its own) or its reaper (no journal names it) is. The reaper
/// still is a fork of streams leading its own session, in the run's worktree (where streams
/// started the agent): `resume` stops the stray in its tree.
#[test]
fn a_stray_whose_unrecorded_agent_already_exited_dies_on_resume() {
    let repo = repo();
    let dir = repo.root.parent().unwrap();
    let (pidfile, agent_pidfile) = (dir.join("stray.pid"), dir.join("agent.pid"));
    repo.write(
        "streams.toml",
        &shell_plan(
            "a",
            "grace = \"1s\"",
            &format!(
                "{} echo a > a/done.txt; echo $$ > {a}.tmp && mv {a}.tmp {a}",
                unmarked_stray(&pidfile, true),
                a = agent_pidfile.display(),
            ),
        ),
    );
    repo.commit_all("plan");
    run_killed_before_the_agent_is_recorded(&repo);
    assert!(!journal(&repo).contains("\"step\":\"agent_spawned\""));
    let read = |path: &Path| {
        std::fs::read_to_string(path)
            .ok()
            .filter(|p| !p.trim().is_empty())
    };
    wait_for("the stray to start", Duration::from_secs(20), || {
        read(&pidfile)
    });
    wait_for("the agent to end", Duration::from_secs(20), || {
        read(&agent_pidfile)
    });
    let (pid, agent) = (read_pid(&pidfile), read_pid(&agent_pidfile));
    assert_gone(agent, "the agent to end");
    let out = repo.streams(&["resume"]);
    let stray_alive = process_alive(pid) && !is_zombie(pid);
    if stray_alive {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    out.assert_code(0);
    assert!(!stray_alive, "the stray outlived resume: {out}");
    assert!(
        out.stderr
            .contains("agent process(es) left running by the interrupted run"),
        "{out}"
    );
}

/// Two repositories whose plans share a name and a `worktree_root`: the resume of one leaves
/// alone a reaper of the other's (its agent exited, its stray cleared its environment), though
/// it works under the same worktree directory.
#[test]
fn resume_leaves_alone_the_reaper_of_another_repositorys_plan_in_the_same_worktree_root() {
    let (mine, theirs) = (repo(), repo());
    let shared = theirs.root.parent().unwrap().join("shared-worktrees");
    let pidfile = theirs.root.parent().unwrap().join("stray.pid");
    let settings = format!(
        "grace = \"1s\"\nworktree_root = {}",
        toml_string(&shared.display().to_string())
    );
    let plan = |stream: &str, script: &str| shell_plan(stream, &settings, script);
    // Theirs: killed before its agent was recorded; the agent leaves a stray and exits.
    theirs.write(
        "streams.toml",
        &plan(
            "a",
            &format!("{} echo a > a/done.txt", unmarked_stray(&pidfile, false)),
        ),
    );
    theirs.commit_all("plan");
    run_killed_before_the_agent_is_recorded(&theirs);
    let stray = wait_for("their stray to start", Duration::from_secs(20), || {
        std::fs::read_to_string(&pidfile)
            .ok()
            .and_then(|p| p.trim().parse::<i32>().ok())
    });
    // Mine: killed the same way, then resumed.
    mine.write("streams.toml", &plan("b", "echo b > b/done.txt"));
    mine.commit_all("plan");
    run_killed_before_the_agent_is_recorded(&mine);
    let out = mine.streams(&["resume"]);
    let alive = process_alive(stray) && !is_zombie(stray);
    // Theirs is theirs to stop.
    let _ = theirs.streams_cmd(&["resume"]).output();
    if process_alive(stray) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(stray),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    out.assert_code(0);
    assert!(alive, "my resume stopped another repository's stray: {out}");
}

/// `streams run`, killed (by its failpoint) after starting the agent, before recording it.
fn run_killed_before_the_agent_is_recorded(repo: &TestRepo) {
    let run = repo
        .streams_cmd(&["run"])
        .env("STREAMS_FAILPOINT", "before-agent-recorded")
        .output()
        .unwrap();
    assert_eq!(run.status.code(), None, "killed at the failpoint");
}

/// Stream `a`'s agent starts a stray (once: in a session of its own, its environment cleared)
/// that writes its pid to `pidfile`, then waits for `release`.
fn stray_plan(repo: &TestRepo, pidfile: &Path, release: &Path) {
    repo.write(
        "streams.toml",
        &shell_plan(
            "a",
            "grace = \"1s\"",
            &format!(
                "{} while [ ! -e {r} ]; do sleep 0.05; done; echo a > a/done.txt",
                unmarked_stray(pidfile, true),
                r = release.display()
            ),
        ),
    );
}

/// The run's journal, as far as it was written.
fn journal(repo: &TestRepo) -> String {
    let root = repo.common_dir().join("streams");
    let id = std::fs::read_to_string(root.join("current")).unwrap_or_default();
    std::fs::read_to_string(root.join("runs").join(id.trim()).join("journal.ndjson"))
        .unwrap_or_default()
}

/// Finding 6: the agent turns the ignored folder `secrets/` of its workspace into a link to a
/// directory outside; the next start of the workspace copies nothing through it (the log says
/// what was skipped and why).
#[test]
fn include_never_writes_through_a_link_planted_in_the_workspace() {
    let repo = TestRepo::with_files(&[(".gitignore", "secrets\n"), ("a/f.txt", "a\n")]);
    repo.write("secrets/key.env", "KEY=1\n");
    let outside = repo.root.parent().unwrap().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    let plant = format!(
        "if [ -f secrets/key.env ] && [ ! -L secrets ]; then rm -rf secrets && ln -s {} secrets; fi; \
         echo a > a/done.txt",
        outside.display()
    );
    repo.write(
        "streams.toml",
        &shell_plan("a", "include = [\"secrets/\"]", &plant),
    );
    repo.streams(&["run"]).assert_code(0);
    // The workspace, with its link, is reused by the next run: a new start, so `include` again.
    let out = repo.streams(&["run", "--restart"]);
    out.assert_code(0);
    assert_eq!(
        std::fs::read_dir(&outside).unwrap().count(),
        0,
        "something was written through the link"
    );
    let logs = repo.common_dir().join("streams/runs");
    let log = std::fs::read_dir(&logs)
        .unwrap()
        .filter_map(|run| {
            std::fs::read_to_string(run.unwrap().path().join("logs/a/setup.log")).ok()
        })
        .find(|log| log.contains("through a symbolic link"))
        .expect("a setup log naming the skipped file");
    assert!(log.contains("secrets/key.env"), "{log}");
}

/// Finding 6, streams' own files in the workspace's git directory: the agent turns `.git/info`,
/// `.git/refs` or `.git/objects` into a link to a directory outside; laying the git directory
/// out again after the task removes the link, not the files it points at, and writes nothing
/// there (not the branch under `refs/heads`, not `objects/info/alternates`).
#[test]
fn restoring_the_git_directory_never_goes_through_a_planted_link() {
    for planted in ["info", "refs", "objects"] {
        let repo = repo();
        let outside = repo.root.parent().unwrap().join("outside");
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(outside.join("victim.txt"), "mine\n").unwrap();
        let plant = format!(
            "echo a > a/done.txt && git add -A && git commit -qm done && rm -rf .git/{planted} && ln -s {} .git/{planted}",
            outside.display()
        );
        two_streams(&repo, &plant, "true", "");
        let run = repo.streams(&["run"]);
        let names: Vec<String> = std::fs::read_dir(&outside)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["victim.txt"], "{planted}: {run}");
        assert_eq!(
            std::fs::read_to_string(outside.join("victim.txt")).unwrap(),
            "mine\n"
        );
    }
}

/// Finding 9: `streams plan` on a FIFO no one writes to is refused at once (it blocked in
/// `open` for good), and so is any other file that is not a regular one.
#[test]
fn a_plan_path_that_is_not_a_regular_file_is_refused_at_once() {
    let repo = repo();
    let fifo = repo.path("plan.fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let mut child = repo
        .streams_cmd(&["plan", "plan.fifo"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("`streams plan` on a FIFO did not return");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = crate::common::CmdOutput::new(child.wait_with_output().unwrap(), &repo);
    out.assert_code(2);
    assert!(
        out.stderr
            .contains("plan.fifo is a named pipe (FIFO), not a plan file"),
        "{out}"
    );

    std::fs::create_dir(repo.path("plans")).unwrap();
    let out = repo.streams(&["plan", "plans"]);
    out.assert_code(2);
    assert!(
        out.stderr.contains("plans is a directory, not a plan file"),
        "{out}"
    );
}

/// Finding 9: `run` killed in its first milliseconds, before its state is saved (at each step
/// where it has left something: its directory, then the pointer to it), leaves nothing to
/// resume: `resume` says what happened and what to do, and a new `run` starts, saying so.
#[test]
fn a_run_killed_as_it_started_is_explained_and_a_new_run_works() {
    use std::os::unix::process::ExitStatusExt;
    for point in ["run-dir-created", "run-current-set"] {
        let repo = repo();
        two_streams(&repo, "true", "true", "");
        // A finished run before, so `resume` has an older run it could wrongly talk about.
        repo.streams(&["run"]).assert_code(0);
        let out = repo
            .streams_cmd(&["run", "--restart"])
            .env("STREAMS_FAILPOINT", point)
            .output()
            .unwrap();
        assert_eq!(out.status.signal(), Some(9), "{point} was never reached");

        let resume = repo.streams(&["resume"]);
        resume.assert_code(5);
        assert!(
            resume.stderr.contains("was stopped as it started")
                && resume.stderr.contains("`streams run`"),
            "{point}: {resume}"
        );
        let run = repo.streams(&["run", "--restart"]);
        run.assert_code(0);
        assert!(
            run.stderr.contains("was stopped as it started")
                && run.stderr.contains("starting afresh"),
            "{point}: {run}"
        );
        // Once a run has started after it, the stopped one is history.
        let resume = repo.streams(&["resume"]);
        assert!(
            resume.stderr.contains("nothing to resume")
                && !resume.stderr.contains("stopped as it started"),
            "{point}: {resume}"
        );
    }
}

/// Finding 8: file names holding escape sequences, a newline, backticks and Markdown reach
/// people escaped. `show` prints the rejected name with an escape sequence and the owned one
/// with a newline quoted, one line each; `pr`'s body puts each name in a code span nothing can
/// close, so none of them adds a heading, an image or a mention.
#[test]
fn hostile_file_names_are_escaped_in_show_and_in_pull_requests() {
    let repo = repo();
    let newline = "a/new\n## Approved by security team.txt";
    let ticks = "a/tick`` ![x](e.png) @admin.txt";
    let owned = "printf x > \"$(printf 'a/new\\n## Approved by security team.txt')\"; \
                 printf x > 'a/tick`` ![x](e.png) @admin.txt'";
    let rejected = "mkdir -p c && printf x > \"$(printf 'c/\\033]0;pwned\\007\\033[32mok.txt')\"";
    two_streams(&repo, owned, rejected, "");
    repo.streams(&["run"]).assert_code(4);

    // report.md (and so the step summary) says why `b` failed, naming the file, escaped.
    let runs = repo.common_dir().join("streams/runs");
    let run = std::fs::read_dir(&runs).unwrap().next().unwrap().unwrap();
    let report = std::fs::read_to_string(run.path().join("report.md")).unwrap();
    assert!(report.contains("c/"), "{report}");
    assert!(!report.contains(['\u{1b}', '\u{7}']), "{report:?}");

    let show = repo.streams(&["show"]);
    show.assert_code(0);
    assert!(
        !show.stdout.contains(['\u{1b}', '\u{7}']),
        "raw control characters: {:?}",
        show.stdout
    );
    assert!(
        show.stdout
            .contains(r#"c/\033]0;pwned\007\033[32mok.txt" (owned by no stream)"#),
        "{show}"
    );
    assert!(
        show.stdout
            .lines()
            .any(|l| l.contains(r#""a/new\n## Approved by security team.txt""#)),
        "{show}"
    );
    assert!(!show.stdout.lines().any(|l| l.starts_with("## ")), "{show}");

    let remote = repo.root.parent().unwrap().join("remote.git");
    repo.git(&["init", "-q", "--bare", &remote.display().to_string()]);
    repo.git(&["remote", "add", "origin", &remote.display().to_string()]);
    let dry = repo.streams(&["pr", "--remote", "origin", "--dry-run", "a"]);
    dry.assert_code(0);
    // The commands as a shell would run them: `gh` prints the body it was given.
    let script = format!(
        "gh() {{ while [ $# -gt 0 ]; do [ \"$1\" = --body ] && printf '%s' \"$2\"; shift; done; }}\n{}",
        dry.stdout
    );
    let body = std::process::Command::new("bash")
        .args(["-c", &script])
        .output()
        .unwrap();
    let body = String::from_utf8(body.stdout).unwrap();
    assert!(body.contains("### Files"), "{body}");
    assert!(
        !body.lines().any(|l| l.starts_with("## ")),
        "a name made a heading:\n{body}"
    );
    assert!(
        body.contains(r#"`"a/new\n## Approved by security team.txt"`"#),
        "{body}"
    );
    assert!(body.contains(&format!("```{ticks}```")), "{body}");
    assert!(!body.contains(newline), "{body}");
}
