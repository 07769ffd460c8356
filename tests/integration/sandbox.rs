//! `sandbox = "landlock"`: the kernel confines an agent's writes to its own workspace.
//!
//! Each test that needs Landlock first asks the kernel (through `streams` itself, see
//! `landlock_missing`) and, where it has none, prints why it is skipped and passes: these
//! behaviours cannot be observed there. The tests run as root on CI and here; Landlock binds
//! root as well, which the EACCES below prove.

use std::path::Path;

use crate::common::TestRepo;
use crate::support::plans::plan;
use crate::support::repos::app_repo;

/// Why this machine cannot run the Landlock tests, if it cannot: a run with `sandbox =
/// "landlock"` refuses to start there, saying so.
pub(crate) fn landlock_missing() -> Option<String> {
    let repo = TestRepo::with_files(&[("a.txt", "a\n")]);
    plan(
        &repo,
        r#"
[plan]
name = "probe"
sandbox = "landlock"

[[stream]]
name = "s"
owns = ["a.txt"]
agent = ["act", "write", "a.txt", "b"]
tasks = ["probe"]
"#,
    );
    let out = repo.streams(&["run"]);
    if out.success() {
        return None;
    }
    // Any other failure is the probe's own: fail loudly rather than skip every test.
    assert!(
        out.stderr.contains("Landlock"),
        "the Landlock probe failed for another reason:\n{out}"
    );
    Some(out.stderr.clone())
}

macro_rules! require_landlock {
    () => {
        if let Some(why) = landlock_missing() {
            eprintln!("skipped: this kernel cannot run the Landlock tests: {why}");
            return;
        }
    };
}

/// An agent (a shell script) that tries to write outside its workspace: into the user's checkout,
/// into the user's git directory, into another stream's workspace and into $HOME; then inside
/// its workspace, its TMPDIR and /dev/null. It prints what happened to each, then exits 3.
const TRESPASSER: &str = r#"
targets="$CHECKOUT/src/api/evil.rs $CHECKOUT/.git/hooks/pre-commit $STREAMS_WORKTREE/../db/src/db/evil.rs $HOME/evil.txt"
# The user's object store, where the workspace does not share it (a repository of its own
# borrowing the user's objects): a linked worktree must write there to commit.
if [ "$STREAMS_GIT_COMMON_DIR" != "$CHECKOUT/.git" ]; then targets="$targets $CHECKOUT/.git/objects/evil"; fi
for f in $targets; do
    if printf 'evil\n' > "$f"; then echo "wrote $f"; else echo "refused $f"; fi
done
printf 'mine\n' > src/api/inside.rs && echo "ok inside"
if [ -n "$TMPDIR" ]; then printf 'scratch\n' > "$TMPDIR/scratch" && echo "ok tmp $TMPDIR"; fi
echo quiet > /dev/null && echo "ok /dev/null"
exit 3
"#;

/// `db` runs first (so its workspace exists), then `api` runs the trespasser.
fn trespass_plan(repo: &TestRepo, sandbox: &str) {
    let script = TRESPASSER.replace("$CHECKOUT", &repo.root.display().to_string());
    let agent = toml_string(&script);
    plan(
        repo,
        &format!(
            r#"
[plan]
name = "p"
jobs = 1
{sandbox}

[[stream]]
name = "db"
owns = ["src/db/**"]
agent = ["act", "write", "src/db/schema.sql", "create table t;"]
tasks = ["db work"]

[[stream]]
name = "api"
owns = ["src/api/**"]
depends_on = ["db"]
agent = ["sh", "-c", {agent}]
tasks = ["api work"]
"#
        ),
    );
}

fn toml_string(text: &str) -> String {
    format!(
        "\"{}\"",
        text.replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n")
    )
}

fn api_log(repo: &TestRepo) -> String {
    let runs = repo.common_dir().join("streams/runs");
    let run = std::fs::read_dir(&runs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.is_dir())
        .expect("a run directory");
    std::fs::read_to_string(run.join("logs/api/1.log")).unwrap()
}

/// Where the trespasser tried to write in the `db` stream's workspace (found beside its own).
fn db_target(log: &str) -> std::path::PathBuf {
    let line = log
        .lines()
        .find(|l| l.ends_with("/../db/src/db/evil.rs") && !l.contains("for f in"))
        .expect("the attempt on db's workspace");
    let path = line.split_once(' ').unwrap().1;
    // The workspace itself must exist, or the refusal would prove nothing.
    let workspace = Path::new(path).ancestors().nth(3).unwrap();
    assert!(workspace.join("src/db/schema.sql").exists(), "{log}");
    path.into()
}

#[test]
fn a_sandboxed_agent_cannot_write_outside_its_workspace() {
    require_landlock!();
    let repo = app_repo();
    let hook = repo.common_dir().join("hooks/pre-commit");
    trespass_plan(&repo, r#"sandbox = "landlock""#);
    let out = repo.streams(&["run"]);
    out.assert_code(4);
    let log = api_log(&repo);
    let checkout_file = repo.path("src/api/evil.rs");
    let db_file = db_target(&log);
    let home_file = repo.home.join("evil.txt");
    for denied in [&checkout_file, &hook, &db_file, &home_file] {
        assert!(!denied.exists(), "{} was written:\n{log}", denied.display());
    }
    let refused = log.lines().filter(|l| l.starts_with("refused ")).count();
    assert!(refused >= 4, "{log}");
    assert!(!log.lines().any(|l| l.starts_with("wrote ")), "{log}");
    assert!(!repo.common_dir().join("objects/evil").exists(), "{log}");
    // The kernel's answer is EACCES, as the shell reports it.
    assert!(log.contains("Permission denied"), "{log}");
    // Root too (as on CI and here): Landlock is not a permission check privileges bypass.
    let uid = std::os::unix::fs::MetadataExt::uid(&std::fs::metadata("/proc/self").unwrap());
    eprintln!("the writes were refused to uid {uid}");
    // Inside its lane it works as before.
    assert!(log.contains("ok inside"), "{log}");
    assert!(log.contains("ok /dev/null"), "{log}");
    let tmp_line = log.lines().find(|l| l.starts_with("ok tmp ")).unwrap();
    let tmp_dir = Path::new(tmp_line.trim_start_matches("ok tmp "));
    assert!(
        tmp_dir.starts_with(repo.common_dir().join("streams/runs")),
        "{tmp_line}"
    );
    // ...and is gone with the task.
    assert!(!tmp_dir.exists(), "{tmp_line}");
    // The failure says what happened and what to do.
    assert!(
        out.stderr
            .contains("the sandbox denied it writes outside its workspace"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("sandbox_writable"), "{}", out.stderr);
    // What a person reads (the rest of the output, the log tail included, varies by shell).
    let failure = out
        .stderr
        .lines()
        .find(|l| l.starts_with("failed api"))
        .unwrap();
    insta::assert_snapshot!(failure, @r#"failed api (task 1): agent exited with code 3; the sandbox denied it writes outside its workspace (its output says "Permission denied"): list what it must write in `sandbox_writable`"#);
    // Nothing outside its workspace changed: the user's checkout is as it was.
    assert_eq!(repo.git(&["status", "--porcelain"]), "?? streams.toml");
}

#[test]
fn without_the_sandbox_the_same_agent_writes_everywhere_as_before() {
    let repo = app_repo();
    trespass_plan(&repo, "");
    let out = repo.streams(&["run"]);
    out.assert_code(4);
    let log = api_log(&repo);
    assert_eq!(
        log.lines().filter(|l| l.starts_with("refused ")).count(),
        0,
        "{log}"
    );
    assert!(repo.common_dir().join("hooks/pre-commit").exists(), "{log}");
    assert!(repo.path("src/api/evil.rs").exists(), "{log}");
    assert!(db_target(&log).exists(), "{log}");
    assert!(repo.home.join("evil.txt").exists(), "{log}");
    assert!(
        out.stderr.contains("agent exited with code 3"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("sandbox"), "{}", out.stderr);
}

#[test]
fn a_sandboxed_agent_commits_and_writes_where_the_plan_allows() {
    require_landlock!();
    let repo = app_repo();
    let cache = repo.home.join(".cache/tool");
    std::fs::create_dir_all(&cache).unwrap();
    let script = r#"
set -e
printf 'cached\n' > "$HOME/.cache/tool/entry"
git rev-parse --path-format=absolute --git-dir --git-common-dir > "$TMPDIR/dirs"
printf '%s\n%s\n' "$STREAMS_GIT_DIR" "$STREAMS_GIT_COMMON_DIR" > "$TMPDIR/env"
cmp "$TMPDIR/dirs" "$TMPDIR/env"
mkdir -p src/api && printf 'fn login() {}\n' > src/api/login.rs
git add -A && git commit -q -m "Add login"
"#;
    plan(
        &repo,
        &format!(
            r#"
[plan]
name = "p"
sandbox = "landlock"
sandbox_writable = ["~/.cache/tool"]

[[stream]]
name = "api"
owns = ["src/api/**"]
agent = ["sh", "-c", {}]
tasks = ["api work"]
"#,
            toml_string(script)
        ),
    );
    let out = repo.streams(&["run"]);
    out.assert_code(0);
    assert_eq!(
        std::fs::read_to_string(cache.join("entry")).unwrap(),
        "cached\n"
    );
    assert_eq!(
        repo.git(&["log", "-1", "--format=%s", "streams/p/integration"]),
        "Add login"
    );
}

#[test]
fn a_sandboxed_agent_still_gets_the_ownership_check() {
    require_landlock!();
    let repo = app_repo();
    // Inside its workspace but outside its lane: the kernel allows it (per directory), the
    // ownership check after the agent does not (per glob).
    plan(
        &repo,
        r#"
[plan]
name = "p"
sandbox = "landlock"

[[stream]]
name = "api"
owns = ["src/api/**"]
agent = ["act", "write", "src/ui/index.html", "<p>mine</p>"]
tasks = ["api work"]
"#,
    );
    let out = repo.streams(&["run"]);
    out.assert_code(4);
    assert!(
        out.stderr.contains("changed paths it does not own"),
        "{}",
        out.stderr
    );
}

#[test]
fn landlock_fails_the_run_at_start_where_the_kernel_lacks_it_and_auto_warns() {
    let mut repo = app_repo();
    repo.env
        .push(("STREAMS_FAILPOINT".into(), "landlock:absent".into()));
    let stream = r#"
[[stream]]
name = "api"
owns = ["src/api/**"]
agent = ["act", "write", "src/api/x.rs", "x"]
tasks = ["api work"]
"#;
    plan(
        &repo,
        &format!("[plan]\nname = \"p\"\nsandbox = \"landlock\"\n{stream}"),
    );
    let out = repo.streams(&["run"]);
    out.assert_code(2);
    insta::assert_snapshot!(out.stderr_redacted(), @r#"
    error: stream `api` asks for sandbox = "landlock", but this kernel has no Landlock (Linux 6.2 or newer built with CONFIG_SECURITY_LANDLOCK is needed)
    hint: set `sandbox = "auto"` to run agents unconfined where the kernel cannot confine them, or run on a kernel with Landlock
    "#);
    // Nothing was started.
    assert!(!repo.common_dir().join("streams/runs").exists());

    plan(
        &repo,
        &format!("[plan]\nname = \"p\"\nsandbox = \"auto\"\n{stream}"),
    );
    let out = repo.streams(&["run"]);
    out.assert_code(0);
    let warning = "sandbox = \"auto\": this kernel has no Landlock";
    assert_eq!(out.stderr.matches(warning).count(), 1, "{}", out.stderr);
}

#[test]
fn a_missing_writable_path_stops_the_run_before_it_starts() {
    require_landlock!();
    let repo = app_repo();
    plan(
        &repo,
        r#"
[plan]
name = "p"
sandbox = "auto"
sandbox_writable = ["~/.cache/none"]

[[stream]]
name = "api"
owns = ["src/api/**"]
agent = ["act", "write", "src/api/x.rs", "x"]
tasks = ["api work"]
"#,
    );
    let out = repo.streams(&["run"]);
    out.assert_code(2);
    assert!(
        out.stderr
            .contains("`sandbox_writable` lists ~/.cache/none"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_sandboxed_agent_that_fails_without_a_refused_write_is_not_blamed_on_the_sandbox() {
    require_landlock!();
    let repo = app_repo();
    plan(
        &repo,
        r#"
[plan]
name = "p"
sandbox = "landlock"

[[stream]]
name = "api"
owns = ["src/api/**"]
agent = ["act", "say", "tests failed", "exit", "5"]
tasks = ["api work"]
"#,
    );
    let out = repo.streams(&["run"]);
    out.assert_code(4);
    assert!(
        out.stderr.contains(
            "agent exited with code 5 while the sandbox kept its writes inside its workspace (its output shows no refused write)"
        ),
        "{}",
        out.stderr
    );
}

#[test]
fn a_dry_run_shows_the_sandbox() {
    let mut repo = app_repo();
    // Whatever this kernel has: `auto` shows the plan's intent either way.
    repo.env
        .push(("STREAMS_FAILPOINT".into(), "landlock:absent".into()));
    plan(
        &repo,
        r#"
[plan]
name = "p"
sandbox = "auto"
sandbox_writable = ["~/.cache"]

[[stream]]
name = "api"
owns = ["src/api/**"]
agent = ["act", "write", "src/api/x.rs", "x"]
tasks = ["api work"]

[[stream]]
name = "db"
owns = ["src/db/**"]
agent = ["act", "write", "src/db/x.sql", "x"]
tasks = ["db work"]
sandbox = "off"
"#,
    );
    let out = repo.streams(&["run", "--dry-run"]);
    out.assert_code(0);
    assert!(
        out.stdout
            .contains("  sandbox:    auto (writes only: its workspace, its TMPDIR, ~/.cache)"),
        "{}",
        out.stdout
    );
    assert_eq!(out.stdout.matches("sandbox:").count(), 1, "{}", out.stdout);
    assert!(
        out.stderr.contains("agents run without the sandbox"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_run_resumed_where_the_kernel_lacks_landlock_fails_its_tasks_with_the_reason_or_warns() {
    require_landlock!();
    for (mode, code) in [("landlock", 4), ("auto", 0)] {
        let repo = app_repo();
        plan(
            &repo,
            &format!(
                r#"
[plan]
name = "p"
sandbox = "{mode}"

[[stream]]
name = "api"
owns = ["src/api/**"]
agent = ["act", "write", "src/api/x.rs", "x"]
tasks = ["api work"]
"#
            ),
        );
        // The run dies after recording its task, before the agent starts...
        let mut cmd = repo.streams_cmd(&["run"]);
        cmd.env("STREAMS_FAILPOINT", "task-recorded");
        let out = cmd.output().unwrap();
        assert!(!out.status.success(), "{mode}: {out:?}");
        // ...and is resumed on a machine without Landlock.
        let mut cmd = repo.streams_cmd(&["resume"]);
        cmd.env("STREAMS_FAILPOINT", "landlock:absent");
        let out = crate::common::CmdOutput::new(cmd.output().unwrap(), &repo);
        out.assert_code(code);
        if mode == "landlock" {
            assert!(
                out.stderr.contains(
                    "sandbox = \"landlock\", but this kernel has no Landlock (Linux 6.2 or newer built with CONFIG_SECURITY_LANDLOCK is needed); the agent was not started"
                ),
                "{out}"
            );
        } else {
            let warning = "sandbox = \"auto\": this kernel has no Landlock";
            assert_eq!(out.stderr.matches(warning).count(), 1, "{out}");
        }
    }
}

#[test]
fn every_agent_gets_the_git_dirs_a_commit_writes() {
    // No sandbox: agents with a sandbox of their own need these all the same.
    let repo = app_repo();
    let script = r#"
set -e
git rev-parse --path-format=absolute --git-dir --git-common-dir > "$HOME/dirs.rev-parse"
printf '%s\n%s\n' "$STREAMS_GIT_DIR" "$STREAMS_GIT_COMMON_DIR" > "$HOME/dirs.env"
"#;
    plan(
        &repo,
        &format!(
            r#"
[plan]
name = "p"
# The agent only looks: it changes nothing.
allow_empty = true

[[stream]]
name = "api"
owns = ["src/api/**"]
agent = ["sh", "-c", {}]
tasks = ["api work"]
"#,
            toml_string(script)
        ),
    );
    repo.streams(&["run"]).assert_code(0);
    let from_git = std::fs::read_to_string(repo.home.join("dirs.rev-parse")).unwrap();
    let from_env = std::fs::read_to_string(repo.home.join("dirs.env")).unwrap();
    assert_eq!(from_env, from_git);
    assert_eq!(from_env.lines().count(), 2, "{from_env}");
}

#[test]
fn a_sandboxed_agent_that_succeeds_after_a_refused_write_gets_a_note() {
    require_landlock!();
    let repo = app_repo();
    // It writes its work, tries to write into the user's checkout (refused), and exits 0
    // anyway, as an agent does whose tool only warns when it cannot write its cache.
    let script = format!(
        "printf 'mine\\n' > src/api/inside.rs; printf 'evil\\n' > {}/outside.txt; exit 0",
        repo.root.display()
    );
    plan(
        &repo,
        &format!(
            r#"
[plan]
name = "p"
sandbox = "landlock"

[[stream]]
name = "api"
owns = ["src/api/**"]
agent = ["sh", "-c", {}]
tasks = ["api work"]
"#,
            toml_string(&script)
        ),
    );
    let out = repo.streams(&["run"]);
    out.assert_code(0);
    assert!(!repo.path("outside.txt").exists());
    let note = out
        .stderr
        .lines()
        .find(|l| l.starts_with("note api:"))
        .unwrap_or_else(|| panic!("no note:\n{}", out.stderr));
    assert!(
        note.contains("the sandbox refused some of its agent's writes outside its workspace"),
        "{note}"
    );
    assert!(note.contains("sandbox_writable"), "{note}");
    assert!(note.contains("logs/api/1.log"), "{note}");
}

/// The running kernel's Landlock ABI (0: none), asked as the kernel documents it.
fn landlock_abi() -> i64 {
    const LANDLOCK_CREATE_RULESET: i64 = 444;
    const VERSION: u32 = 1;
    // SAFETY: with a null attribute and size 0, the call only returns the ABI version.
    let abi = unsafe {
        nix::libc::syscall(
            LANDLOCK_CREATE_RULESET,
            std::ptr::null::<u8>(),
            0usize,
            VERSION,
        )
    };
    abi.max(0)
}

/// Issue 24, finding 7: a confined agent cannot stop the process it runs under, nor streams
/// above it (`kill -STOP`): the kernel scopes its signals to its own tree (Landlock ABI 6,
/// Linux 6.12; on older kernels this is not defended and the test is skipped).
#[test]
fn a_sandboxed_agent_cannot_signal_streams() {
    require_landlock!();
    if landlock_abi() < 6 {
        eprintln!(
            "skipped: this kernel's Landlock (ABI {}) cannot scope signals",
            landlock_abi()
        );
        return;
    }
    let repo = TestRepo::with_files(&[("a/f.txt", "a\n")]);
    // Its parent, and its parent's parent when that is streams: stopped (and woken at once,
    // should the kernel let it through), or refused.
    let script = "pp=$(cut -d' ' -f4 /proc/$PPID/stat); targets=$PPID; \
         [ \"$(cat /proc/$pp/comm)\" = streams ] && targets=\"$targets $pp\"; \
         for p in $targets; do \
           if kill -STOP $p 2>/dev/null; then kill -CONT $p; echo stopped; else echo refused; fi; \
         done > a/kills.txt";
    plan(
        &repo,
        &format!(
            r#"
[plan]
name = "p"
sandbox = "landlock"

[[stream]]
name = "a"
owns = ["a/**"]
agent = ["sh", "-c", {}]
tasks = ["Try to stop streams"]
"#,
            toml_string(script)
        ),
    );
    repo.streams(&["run"]).assert_code(0);
    assert_eq!(
        repo.git(&["show", "streams/p/integration:a/kills.txt"]),
        "refused\nrefused"
    );
}
