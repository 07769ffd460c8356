//! What agents running side by side are given (issue 17): a slot and a block of ports each,
//! concurrency groups, retries on what the agent printed.

use std::path::Path;

use crate::common::TestRepo;

use crate::support::{plans::plan, repos::app_repo};

/// A first port with the 100 after it free right now, so the test does not collide with
/// whatever else runs on the machine.
fn free_port_base() -> u16 {
    loop {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        if port < 60000 {
            return port;
        }
    }
}

/// `n` streams `s0..` each owning `s<i>/**`, with `per_stream` added to each stream table.
fn streams(n: usize, per_stream: impl Fn(usize) -> String) -> String {
    (0..n)
        .map(|i| {
            format!(
                "\n[[stream]]\nname = \"s{i}\"\nowns = [\"s{i}/**\"]\ntasks = [\"work {i}\"]\n{}\n",
                per_stream(i)
            )
        })
        .collect()
}

/// An agent that binds `STREAMS_PORT`, records its slot and port in `$MARKS`, and holds the
/// port until every one of `$EXPECTED` agents has bound its own: all of them at once.
const BINDING_AGENT: &str = r#"agent = ["python3", "-c", '''
import os, socket, time, pathlib
port, slot = int(os.environ["STREAMS_PORT"]), os.environ["STREAMS_SLOT"]
s = socket.socket()
s.bind(("127.0.0.1", port))
s.listen()
marks = pathlib.Path(os.environ["MARKS"])
(marks / os.environ["STREAMS_STREAM"]).write_text("%s %d" % (slot, port))
deadline = time.time() + 60
while len(list(marks.iterdir())) < int(os.environ["EXPECTED"]):
    if time.time() > deadline:
        raise SystemExit("the other agents never bound their ports")
    time.sleep(0.05)
''', "{slot}", "{port}"]"#;

fn marks(dir: &Path) -> Vec<(String, String)> {
    let mut marks: Vec<(String, String)> = std::fs::read_dir(dir)
        .unwrap()
        // `TIMED_AGENT`'s rendezvous files, not marks.
        .filter(|e| {
            !e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".started")
        })
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read_to_string(e.path()).unwrap(),
            )
        })
        .collect();
    marks.sort();
    marks
}

#[test]
fn agents_running_at_once_each_bind_their_own_port() {
    let repo = app_repo();
    let marks_dir = tempfile::tempdir().unwrap();
    let base = free_port_base();
    plan(
        &repo,
        &format!(
            "[plan]\nname = \"p\"\njobs = 4\nallow_empty = true\nports = {{ base = {base}, per_slot = 10 }}\n{BINDING_AGENT}\n\
             env = {{ MARKS = \"{}\", EXPECTED = \"4\" }}\n{}",
            marks_dir.path().display(),
            streams(4, |_| String::new())
        ),
    );
    let out = repo.streams(&["run"]);
    assert!(out.success(), "{}{}", out.stdout, out.stderr);
    let marks = marks(marks_dir.path());
    assert_eq!(marks.len(), 4, "{marks:?}");
    let mut slots: Vec<usize> = marks
        .iter()
        .map(|(_, m)| {
            let (slot, port) = m.split_once(' ').unwrap();
            let slot: usize = slot.parse().unwrap();
            // STREAMS_PORT is the slot's block: base + slot * per_slot.
            assert_eq!(port.parse::<usize>().unwrap(), base as usize + slot * 10);
            slot
        })
        .collect();
    slots.sort();
    assert_eq!(slots, [0, 1, 2, 3], "slots are 0..jobs-1, one per agent");
}

#[test]
fn the_dry_run_leaves_slot_and_port_as_placeholders() {
    let repo = app_repo();
    plan(
        &repo,
        &format!(
            "[plan]\nname = \"p\"\n{BINDING_AGENT}\n{}",
            streams(1, |_| String::new())
        ),
    );
    let out = repo.streams(&["run", "--dry-run"]);
    assert!(out.success(), "{}{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("{slot} {port}"), "{}", out.stdout);
}

#[test]
fn a_port_block_past_65535_is_a_plan_error() {
    let repo = app_repo();
    plan(
        &repo,
        &format!(
            "[plan]\nname = \"p\"\nagent = [\"true\"]\nports = {{ base = 70000 }}\n{}",
            streams(1, |_| String::new())
        ),
    );
    let out = repo.streams(&["plan"]);
    assert!(!out.success());
    assert!(
        out.stderr
            .contains("`base` is out of range: expected 1024 to 65535"),
        "{}",
        out.stderr
    );
}

/// An agent that records when it ran (monotonic clock, shared by every process) in
/// `$MARKS/<stream>` as `<group> <start> <end>`. In between it waits until `$AT_ONCE` agents
/// have started (each leaves `$MARKS/<stream>.started`), or 60 s have passed: the overlap the
/// test looks for then does not depend on how fast a loaded machine lays out workspaces, and a
/// scheduler that never runs that many at once still ends (and fails the test) instead of
/// hanging.
const TIMED_AGENT: &str = r#"agent = ["python3", "-c", '''
import os, time, pathlib
marks = pathlib.Path(os.environ["MARKS"])
stream = os.environ["STREAMS_STREAM"]
start = time.monotonic_ns()
(marks / (stream + ".started")).write_text("")
deadline = time.monotonic() + 60
while len(list(marks.glob("*.started"))) < int(os.environ["AT_ONCE"]) and time.monotonic() < deadline:
    time.sleep(0.05)
time.sleep(0.2)
end = time.monotonic_ns()
(marks / stream).write_text("%s %d %d" % (os.environ.get("GROUP", "-"), start, end))
''']"#;

/// The most intervals of `marks` (as `TIMED_AGENT` writes them) that overlap, among those
/// whose group `keep` accepts.
fn most_at_once(marks: &[(String, String)], keep: impl Fn(&str) -> bool) -> usize {
    let mut edges: Vec<(u128, i32)> = Vec::new();
    for (_, mark) in marks {
        let fields: Vec<&str> = mark.split(' ').collect();
        if keep(fields[0]) {
            edges.push((fields[1].parse().unwrap(), 1));
            edges.push((fields[2].parse().unwrap(), -1));
        }
    }
    // Ends before starts at the same instant: touching is not overlapping.
    edges.sort();
    let (mut now, mut most) = (0, 0);
    for (_, step) in edges {
        now += step;
        most = most.max(now);
    }
    most as usize
}

#[test]
fn a_group_never_has_more_agents_than_its_limit_while_others_use_the_rest() {
    let repo = app_repo();
    let marks_dir = tempfile::tempdir().unwrap();
    // Streams s0..s3 are in group `claude` (at most 2 at once), s4 and s5 in no group.
    plan(
        &repo,
        &format!(
            "[plan]\nname = \"p\"\njobs = 4\nallow_empty = true\n{TIMED_AGENT}\nenv = {{ MARKS = \"{}\", AT_ONCE = \"4\" }}\n\
             [plan.limits]\nclaude = 2\n{}",
            marks_dir.path().display(),
            streams(6, |i| if i < 4 {
                "group = \"claude\"\nenv = { GROUP = \"claude\" }".to_string()
            } else {
                String::new()
            })
        ),
    );
    let out = repo.streams(&["run"]);
    assert!(out.success(), "{}{}", out.stdout, out.stderr);
    let marks = marks(marks_dir.path());
    assert_eq!(marks.len(), 6, "{marks:?}");
    assert_eq!(most_at_once(&marks, |g| g == "claude"), 2, "{marks:?}");
    // The two free slots went to the ungrouped streams meanwhile (the agents wait for a fourth
    // to start, so a scheduler that kept them idle would show 3 or fewer here).
    assert_eq!(most_at_once(&marks, |_| true), 4, "{marks:?}");
}

#[test]
fn a_group_with_no_limit_is_a_plan_error() {
    let repo = app_repo();
    plan(
        &repo,
        &format!(
            "[plan]\nname = \"p\"\nagent = [\"true\"]\n[plan.limits]\nclaude = 2\n{}",
            streams(1, |_| "group = \"cluade\"".to_string())
        ),
    );
    let out = repo.streams(&["plan"]);
    assert!(!out.success());
    insta::assert_snapshot!(out.stderr_redacted());
}

/// An agent that fails with each of `$SAY`'s `;`-separated lines in turn (one per attempt,
/// counted in `$COUNT`), then writes its file.
const FLAKY_AGENT: &str = r#"agent = ["python3", "-c", '''
import os, pathlib, sys
count = pathlib.Path(os.environ["COUNT"])
n = int(count.read_text()) if count.exists() else 0
count.write_text(str(n + 1))
says = os.environ["SAY"].split(";")
if n < len(says):
    print("working...")
    print(says[n])
    sys.exit(1)
pathlib.Path("s0").mkdir(exist_ok=True)
pathlib.Path("s0/done.txt").write_text("done")
''']"#;

fn flaky_run(say: &str) -> (crate::common::CmdOutput, String) {
    let repo = app_repo();
    let dir = tempfile::tempdir().unwrap();
    let count = dir.path().join("count");
    plan(
        &repo,
        &format!(
            "[plan]\nname = \"p\"\nretries = 3\nretry_backoff = \"0s\"\n\
             retry_on = [75, \"rate limit\", \"overloaded\"]\n{FLAKY_AGENT}\n\
             env = {{ COUNT = \"{}\", SAY = \"{say}\" }}\n{}",
            count.display(),
            streams(1, |_| String::new())
        ),
    );
    let out = repo.streams(&["run"]);
    (out, std::fs::read_to_string(count).unwrap())
}

#[test]
fn output_matching_a_retry_on_pattern_is_retried_and_the_report_says_why() {
    let (out, attempts) = flaky_run("Error: Rate limit exceeded;API overloaded;rate limit again");
    assert!(out.success(), "{}{}", out.stdout, out.stderr);
    assert_eq!(attempts, "4");
    assert!(
        out.stderr
            .contains(r#"s0 retried: output "overloaded" x1, output "rate limit" x2"#),
        "{}",
        out.stderr
    );
}

#[test]
fn output_matching_no_pattern_is_not_retried() {
    let (out, attempts) = flaky_run("SyntaxError: invalid syntax");
    assert_eq!(
        out.code,
        Some(4),
        "a failed stream: {}{}",
        out.stdout,
        out.stderr
    );
    assert_eq!(attempts, "1");
    assert!(!out.stderr.contains("retried:"), "{}", out.stderr);
}

/// A repository whose `.gitignore` keeps `node_modules/` and `.env` out of git.
fn node_repo() -> TestRepo {
    TestRepo::with_files(&[
        (".gitignore", "node_modules/\n.env\n"),
        ("package.json", "{}\n"),
        ("src/api/mod.rs", "// api\n"),
    ])
}

/// A setup that counts its runs in `$COUNT`, "installs" into the ignored `node_modules/` and
/// prints a line to its log.
const INSTALLING_SETUP: &str = r#"setup = ["sh", "-c", "echo installing for $STREAMS_STREAM; echo x >> \"$COUNT\"; mkdir -p node_modules && touch node_modules/.installed"]"#;

#[test]
fn setup_prepares_the_workspace_once_and_what_it_writes_stays_out_of_commits() {
    let repo = node_repo();
    let dir = tempfile::tempdir().unwrap();
    let count = dir.path().join("count");
    plan(
        &repo,
        &format!(
            r#"[plan]
name = "p"
{INSTALLING_SETUP}
env = {{ COUNT = "{}" }}

[[stream]]
name = "api"
owns = ["src/api/**"]
agent = ["act", "require", "node_modules/.installed", "write", "src/api/{{task_index}}.rs", "x"]
tasks = ["one", "two"]
"#,
            count.display()
        ),
    );
    let dry = repo.streams(&["run", "--dry-run"]);
    assert!(
        dry.stdout.contains(
            r#"  setup:      sh -c 'echo installing for $STREAMS_STREAM; echo x >> "$COUNT"; mkdir -p node_modules && touch node_modules/.installed' (timeout 30m; log logs/api/setup.log)"#
        ),
        "{}",
        dry.stdout
    );
    assert!(!count.exists(), "a dry run runs nothing");

    let out = repo.streams(&["run"]);
    assert!(out.success(), "{}{}", out.stdout, out.stderr);
    // Once for the stream: the second task goes on in the workspace the first one left.
    assert_eq!(std::fs::read_to_string(&count).unwrap(), "x\n");
    let tree = repo.tree_listing("streams/p/integration");
    assert!(
        tree.contains("src/api/1.rs") && tree.contains("src/api/2.rs"),
        "{tree}"
    );
    assert!(!tree.contains("node_modules"), "{tree}");
    let log = find_file(&repo.common_dir().join("streams"), "setup.log").expect("a setup.log");
    assert!(
        std::fs::read_to_string(&log)
            .unwrap()
            .contains("installing for api"),
        "{}",
        log.display()
    );
    // The report's times show the setup as a step of its own.
    let junit = find_file(&repo.common_dir().join("streams"), "report.xml").expect("report.xml");
    let junit = std::fs::read_to_string(junit).unwrap();
    assert!(junit.contains(r#"name="setup""#), "{junit}");
}

/// The first file named `name` under `dir`.
fn find_file(dir: &Path, name: &str) -> Option<std::path::PathBuf> {
    for entry in std::fs::read_dir(dir).ok()? {
        let path = entry.ok()?.path();
        if path.is_dir() {
            if let Some(found) = find_file(&path, name) {
                return Some(found);
            }
        } else if path.file_name().is_some_and(|n| n == name) {
            return Some(path);
        }
    }
    None
}

fn setup_plan(repo: &TestRepo, setup: &str) {
    plan(
        repo,
        &format!(
            r#"[plan]
name = "p"
setup = {setup}

[[stream]]
name = "api"
owns = ["src/api/**"]
agent = ["act", "write", "src/api/a.rs", "x"]
tasks = ["one"]

[[stream]]
name = "ui"
owns = ["src/ui/**"]
depends_on = ["api"]
agent = ["act", "write", "src/ui/a.rs", "x"]
tasks = ["one"]
"#
        ),
    );
}

#[test]
fn a_failing_setup_fails_its_stream_with_the_command_and_its_log() {
    let repo = node_repo();
    setup_plan(
        &repo,
        r#"["sh", "-c", "echo npm ERR! missing lockfile; exit 3"]"#,
    );
    let out = repo.streams(&["run"]);
    assert_eq!(out.code, Some(4), "{}{}", out.stdout, out.stderr);
    assert!(
        out.stderr
            .contains("setup `sh -c 'echo npm ERR! missing lockfile; exit 3'` exited with code 3"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("npm ERR! missing lockfile"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("setup.log"), "{}", out.stderr);
    assert!(
        out.stderr.contains("its dependency `api` did not finish"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_setup_that_changes_tracked_files_fails_with_the_list() {
    let repo = node_repo();
    setup_plan(
        &repo,
        r#"["sh", "-c", "echo changed > package.json; echo new > stray.txt; echo ok > .env"]"#,
    );
    let out = repo.streams(&["run"]);
    assert_eq!(out.code, Some(4), "{}{}", out.stdout, out.stderr);
    assert!(
        out.stderr
            .contains("changed files git would commit: package.json, stray.txt (a setup must not edit the code"),
        "{}",
        out.stderr
    );
    assert!(
        !out.stderr.contains(".env,"),
        "ignored files are the environment"
    );
}

#[test]
fn status_shows_a_stream_whose_setup_runs_as_setting_up() {
    let repo = node_repo();
    let dir = tempfile::tempdir().unwrap();
    let go = dir.path().join("go");
    setup_plan(
        &repo,
        &format!(
            r#"["sh", "-c", "while [ ! -e '{}' ]; do sleep 0.05; done"]"#,
            go.display()
        ),
    );
    let mut child = repo
        .streams_cmd(&["run"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let line =
        crate::common::wait_for("api setting up", std::time::Duration::from_secs(20), || {
            let status = repo.streams(&["status"]);
            status
                .stdout
                .lines()
                .find(|l| l.starts_with("api ") && l.contains("setting up"))
                .map(str::to_string)
        });
    // No task is done yet.
    assert!(line.contains("0/1"), "{line}");
    std::fs::write(&go, "").unwrap();
    assert!(child.wait().unwrap().success());
    let status = repo.streams(&["status"]);
    assert!(!status.stdout.contains("setting up"), "{}", status.stdout);
}

#[test]
fn ignored_files_matched_by_worktreeinclude_or_include_are_copied_before_setup() {
    let repo = TestRepo::with_files(&[
        (".gitignore", "node_modules/\n.env*\nconfig/local.toml\n"),
        (".worktreeinclude", ".env*\n"),
        ("src/api/mod.rs", "// api\n"),
    ]);
    repo.write(".env", "SECRET=1\n");
    repo.write("config/local.toml", "port = 1\n");
    repo.write("node_modules/left/index.js", "big\n");
    std::os::unix::fs::symlink("/etc/hostname", repo.path(".env.host")).unwrap();
    plan(
        &repo,
        r#"[plan]
name = "p"
include = ["config/local.toml"]
setup = ["sh", "-c", "test -f .env && test -f config/local.toml && test ! -e node_modules && test ! -e .env.host"]

[[stream]]
name = "api"
owns = ["src/api/**"]
agent = ["act", "require", ".env", "write", "src/api/a.rs", "x"]
tasks = ["one"]
"#,
    );
    let out = repo.streams(&["run"]);
    assert!(out.success(), "{}{}", out.stdout, out.stderr);
    let tree = repo.tree_listing("streams/p/integration");
    assert!(
        tree.contains("src/api/a.rs") && !tree.contains(".env\n"),
        "{tree}"
    );
    let log = find_file(&repo.common_dir().join("streams"), "setup.log").expect("a setup.log");
    let log = std::fs::read_to_string(log).unwrap();
    let line = log
        .lines()
        .find(|l| l.starts_with("streams: included"))
        .expect(&log);
    // Which of the two happened depends on the file system the test runs on.
    let (cow, plain) = (
        "2 as copy-on-write clones, 0 as plain copies",
        "0 as copy-on-write clones, 2 as plain copies",
    );
    assert!(line.contains(cow) || line.contains(plain), "{line}");
    assert!(
        line.ends_with("skipped links pointing outside the repository: .env.host"),
        "{line}"
    );
}

/// Issue 27: the note about ignored files names only what the agent wrote. What streams put in
/// the workspace (files `.worktreeinclude` and `include` copy in, what `setup` writes, the
/// checkout) is left out, and so is a file an include rule names even when the agent rewrote
/// it: the note's hint would have it committed.
#[test]
fn the_ignored_files_note_names_only_what_the_agent_wrote() {
    let repo = TestRepo::with_files(&[
        (".gitignore", ".env\nsecrets.local\ntarget/\nbuild.log\n"),
        (".worktreeinclude", ".env\n"),
        ("src/api/mod.rs", "// api\n"),
    ]);
    repo.write(".env", "SECRET=1\n");
    repo.write("secrets.local", "token\n");
    plan(
        &repo,
        r#"[plan]
name = "p"
include = ["secrets.local"]
setup = ["sh", "-c", "mkdir -p target && echo built > target/out"]

[[stream]]
name = "api"
owns = ["src/api/**"]
agent = ["act", "sh", "echo rotated > secrets.local; echo log > build.log", "write", "src/api/a.rs", "x"]
tasks = ["one"]
"#,
    );
    let out = repo.streams(&["run"]);
    assert!(out.success(), "{}{}", out.stdout, out.stderr);
    let note = out
        .stderr
        .lines()
        .chain(out.stdout.lines())
        .find(|l| l.contains("that git ignores"))
        .unwrap_or_else(|| panic!("no note about ignored files:\n{out}"));
    assert!(
        note.contains("wrote 1 path(s)") && note.contains("build.log"),
        "{note}"
    );
    for streams_own in [".env", "secrets.local", "target"] {
        assert!(!note.contains(streams_own), "{note}");
    }
}
