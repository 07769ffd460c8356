//! A run spread over CI machines: a bare repository is the remote, clones are the machines
//! (`streams run --only S --push origin`, run as separate processes at once) and the central job
//! (`streams integrate --from origin`). No network: every remote is a path.

use std::path::{Path, PathBuf};
use std::process::Child;

use crate::common::{CmdOutput, TestRepo};
use crate::support::redact::Redactor;

/// The run id, unique per test: a task's stray processes are found by their run id and stream
/// name, which on one host must not be another test's (on CI each machine is its own host).
/// In the form of streams' own ids, so snapshots redact it.
fn run_id() -> &'static str {
    static ID: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ID.get_or_init(|| {
        let salt = std::process::id() & 0xffff;
        format!("20260101-000000-{salt:04x}")
    })
}

/// `a` and `b` depend on nothing (stage 0); `c` waits on `a` (stage 1) and needs its work.
const STAGED_PLAN: &str = r#"
[plan]
name = "p"
jobs = 3
shared = ["CHANGELOG.md"]

[[stream]]
name = "a"
owns = ["a/**"]
agent = ["act", "append", "a/x", "{task}"]
tasks = ["a one", "a two"]

[[stream]]
name = "b"
owns = ["b/**"]
agent = ["act", "append", "b/x", "{task}"]
tasks = ["b one"]

[[stream]]
name = "c"
owns = ["c/**"]
depends_on = ["a"]
agent = ["act", "require", "a/x", "append", "c/x", "{task}"]
tasks = ["c one"]
"#;

/// The same work in one stage.
const FLAT_PLAN: &str = r#"
[plan]
name = "p"
jobs = 2
shared = ["CHANGELOG.md"]

[[stream]]
name = "a"
owns = ["a/**"]
agent = ["act", "append", "a/x", "{task}"]
tasks = ["a one", "a two"]

[[stream]]
name = "b"
owns = ["b/**"]
agent = ["act", "append", "b/x", "{task}"]
tasks = ["b one"]
"#;

/// A source repository holding `plan`, a bare clone of it as the remote, and clones.
struct Fleet {
    src: TestRepo,
    remote: PathBuf,
}

impl Fleet {
    fn new(plan: &str) -> Fleet {
        let src = TestRepo::with_files(&[
            ("README.md", "# app\n"),
            ("CHANGELOG.md", "# changes\n"),
            ("a/x", "a\n"),
            ("b/x", "b\n"),
            ("c/x", "c\n"),
            ("streams.toml", plan),
        ]);
        let remote = src.root.parent().unwrap().join("remote.git");
        src.git(&["clone", "-q", "--bare", ".", remote.to_str().unwrap()]);
        Fleet { src, remote }
    }

    fn base(&self) -> String {
        self.src.git(&["rev-parse", "HEAD"])
    }

    /// A new clone of the remote: a machine, or the central job.
    fn clone(&self, name: &str) -> PathBuf {
        let dir = self.src.root.parent().unwrap().join(name);
        self.src.git(&[
            "clone",
            "-q",
            self.remote.to_str().unwrap(),
            dir.to_str().unwrap(),
        ]);
        dir
    }

    fn streams_in(&self, dir: &Path, args: &[&str]) -> CmdOutput {
        let out = self
            .src
            .streams_cmd(args)
            .current_dir(dir)
            .output()
            .unwrap();
        CmdOutput::new(out, &self.src)
    }

    fn spawn_in(&self, dir: &Path, args: &[&str]) -> Child {
        self.src
            .streams_cmd(args)
            .current_dir(dir)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    }

    /// Runs `stream` on a fresh machine from the base; returns the machine's directory.
    fn machine(&self, stream: &str) -> (PathBuf, Child) {
        let dir = self.clone(&format!("machine-{stream}"));
        let base = self.base();
        let child = self.spawn_in(&dir, &only(stream, "--base", &base));
        (dir, child)
    }

    /// Runs `a` and `b` on machines of their own at the same time, as their CI jobs would, and
    /// waits for both to succeed; returns `a`'s machine.
    fn a_and_b(&self) -> PathBuf {
        let (machine_a, a) = self.machine("a");
        let (_, b) = self.machine("b");
        wait_ok(a);
        wait_ok(b);
        machine_a
    }

    fn remote_git(&self, args: &[&str]) -> String {
        self.src.git_in(&self.remote, args)
    }

    /// `path` as the remote's integration branch holds it.
    fn remote_file(&self, path: &str) -> String {
        self.remote_git(&["show", &format!("streams/p/integration:{path}")])
    }

    fn remote_ref(&self, name: &str) -> Option<String> {
        let out = self
            .src
            .git_output_in(&self.remote, &["rev-parse", "-q", "--verify", name]);
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    /// The files and contents of the remote's integration branch.
    fn remote_result(&self) -> String {
        self.remote_git(&["ls-tree", "-r", "streams/p/integration"])
    }

    /// What a local `streams run` of the same plan produces on one machine.
    fn local_result(&self) -> String {
        let dir = self.clone("local");
        self.streams_in(&dir, &["run"]).assert_code(0);
        self.src
            .git_in(&dir, &["ls-tree", "-r", "streams/p/integration"])
    }
}

/// `streams run --only STREAM --run-id <this test run's> FROM AT --push origin`: a machine's
/// command, starting from `--base COMMIT` or `--after-stage K`.
fn only<'a>(stream: &'a str, from: &'a str, at: &'a str) -> Vec<&'a str> {
    vec![
        "run",
        "--only",
        stream,
        "--run-id",
        run_id(),
        from,
        at,
        "--push",
        "origin",
    ]
}

#[track_caller]
fn wait_ok(child: Child) {
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "a machine failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `run --only STREAM --run-id <this test run's> --after-stage K --start TIP --push origin`: a
/// machine of stage K + 1, started from the tip stage K's integrate job reported.
fn after<'a>(stream: &'a str, k: &'a str, tip: &'a str) -> Vec<&'a str> {
    vec![
        "run",
        "--only",
        stream,
        "--run-id",
        run_id(),
        "--after-stage",
        k,
        "--start",
        tip,
        "--push",
        "origin",
    ]
}

fn integrate(fleet: &Fleet, central: &Path, stage: Option<usize>) -> CmdOutput {
    integrate_reporting(fleet, central, stage, None).0
}

/// The command `streams integrate --from origin` of this test run's id, of `stage` (every
/// stage: `None`), from `start`, in `central`.
fn integrate_cmd(
    fleet: &Fleet,
    central: &Path,
    stage: Option<usize>,
    start: Option<&str>,
) -> std::process::Command {
    let mut args = vec!["integrate", "--from", "origin", "--run-id", run_id()];
    let stage_text = stage.map(|k| k.to_string());
    if let Some(k) = &stage_text {
        args.extend(["--stage", k.as_str()]);
    }
    if let Some(start) = start {
        args.extend(["--start", start]);
    }
    let mut cmd = fleet.src.streams_cmd(&args);
    cmd.current_dir(central);
    cmd
}

/// `streams integrate` of `stage` in `central`, killed (SIGKILL) at the failpoint `point`.
#[track_caller]
fn integrate_killed_at(fleet: &Fleet, central: &Path, stage: Option<usize>, point: &str) {
    let out = integrate_cmd(fleet, central, stage, None)
        .env("STREAMS_FAILPOINT", point)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), None, "{point}: not killed");
}

/// `streams integrate` of `stage` (every stage: `None`) in `central`, a stage after the first
/// from `start` (the tip the stage before reported); returns what it said and the tip it
/// reports as its CI job's output (`$GITHUB_OUTPUT`), if any.
fn integrate_reporting(
    fleet: &Fleet,
    central: &Path,
    stage: Option<usize>,
    start: Option<&str>,
) -> (CmdOutput, Option<String>) {
    let outputs = tempfile::NamedTempFile::new().unwrap();
    let out = integrate_cmd(fleet, central, stage, start)
        .env("GITHUB_OUTPUT", outputs.path())
        .output()
        .unwrap();
    let tip = std::fs::read_to_string(outputs.path())
        .unwrap()
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("tip="))
        .map(str::to_string);
    (CmdOutput::new(out, &fleet.src), tip)
}

#[test]
fn streams_run_on_machines_at_once_integrate_to_what_one_machine_makes() {
    let run = run_id();
    let fleet = Fleet::new(STAGED_PLAN);
    // Stage 0: `a` and `b` on two machines at the same time.
    fleet.a_and_b();
    assert!(
        fleet
            .remote_ref(&format!("refs/streams/p/manifests/{run}/a"))
            .is_some()
    );
    // Only names of the run: the usual stream branches are not the machines' to push.
    assert_eq!(fleet.remote_ref("refs/heads/streams/p/a"), None);
    let central = fleet.clone("central");
    let (out, stage0) = integrate_reporting(&fleet, &central, Some(0), None);
    out.assert_code(0);
    let mut redactor = Redactor::new();
    insta::assert_snapshot!("integrate_stage_0", redactor.output(&out));
    let stage0 = stage0.expect("integrate reports stage 0's tip");
    assert_eq!(
        fleet.remote_ref(&format!("refs/streams/p/stages/{run}/0")),
        Some(stage0.clone()),
        "recorded on the remote too"
    );
    // Stage 1: `c` starts from stage 0's tip, as its integrate job reported it. Its clone has
    // no `main` (the plan's base), as a CI checkout of another branch would not: the plan is
    // checked against the commit the stream starts from.
    let dir = fleet.clone("machine-c");
    fleet.src.git_in(&dir, &["checkout", "-q", "--detach"]);
    fleet.src.git_in(&dir, &["branch", "-q", "-D", "main"]);
    fleet
        .streams_in(&dir, &after("c", "0", &stage0))
        .assert_code(0);
    let manifest = fleet.remote_git(&[
        "show",
        &format!("refs/streams/p/manifests/{run}/c:manifest.json"),
    ]);
    let manifest: serde_json::Value = serde_json::from_str(&manifest).unwrap();
    assert_eq!(manifest["start"], stage0.as_str());
    assert_eq!(manifest["after_stage"], 0);
    assert_eq!(manifest["outcome"]["outcome"], "done");
    assert_eq!(manifest["tasks"].as_array().unwrap().len(), 1);
    assert!(manifest["plan_hash"].as_str().unwrap().len() == 40);
    let (out, stage1) = integrate_reporting(&fleet, &central, Some(1), Some(&stage0));
    out.assert_code(0);
    let stage1 = stage1.expect("integrate reports stage 1's tip");
    assert_eq!(
        fleet.remote_ref(&format!("refs/streams/p/stages/{run}/1")),
        Some(stage1.clone())
    );
    assert_eq!(
        fleet.remote_ref("streams/p/integration"),
        Some(stage1.clone())
    );
    assert_eq!(fleet.remote_result(), fleet.local_result());
    // Integrating a stage again pushes that stage's result again (in CI the jobs after it run
    // again too, from what it reports), here and in a fresh clone, where its commits get other
    // dates, so other ids.
    integrate(&fleet, &central, Some(0)).assert_code(0);
    assert_eq!(
        fleet.remote_ref("streams/p/integration"),
        Some(stage0.clone())
    );
    let (again, tip) = integrate_reporting(&fleet, &central, Some(1), Some(&stage0));
    again.assert_code(0);
    assert_eq!(tip, Some(stage1.clone()), "the same result");
    assert_eq!(fleet.remote_ref("streams/p/integration"), Some(stage1));
    let fresh = fleet.clone("central-again");
    let out = integrate_cmd(&fleet, &fresh, Some(0), None)
        .env("GIT_COMMITTER_DATE", "2026-02-02T00:00:00+00:00")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let elsewhere = fleet
        .src
        .git_in(&fresh, &["rev-parse", "streams/p/integration"]);
    assert_ne!(elsewhere, stage0, "the fresh clone's commits should differ");
    assert_eq!(
        fleet.remote_ref(&format!("refs/streams/p/stages/{run}/0")),
        Some(elsewhere)
    );
}

#[test]
fn a_stream_that_depends_on_another_needs_its_stage_integrated_first() {
    let fleet = Fleet::new(STAGED_PLAN);
    let dir = fleet.clone("machine-c");
    let out = fleet.streams_in(&dir, &only("c", "--after-stage", "0"));
    out.assert_code(2);
    let base = fleet.base();
    let from_base = fleet.streams_in(&dir, &only("c", "--base", &base));
    from_base.assert_code(2);
    let unknown = fleet.streams_in(
        &dir,
        &[
            "run",
            "--only",
            "nope",
            "--run-id",
            run_id(),
            "--base",
            &base,
        ],
    );
    unknown.assert_code(2);
    let bad_id = fleet.streams_in(
        &dir,
        &["run", "--only", "a", "--run-id", "a/b", "--base", &base],
    );
    bad_id.assert_code(2);
    let mut redactor = Redactor::new();
    insta::assert_snapshot!(
        "machine_errors",
        [&out, &from_base, &unknown, &bad_id]
            .map(|o| redactor.output(o))
            .join("\n")
    );
    // Nothing was pushed.
    assert_eq!(fleet.remote_git(&["for-each-ref", "refs/streams"]), "");
}

#[test]
fn a_missing_stream_fails_the_integration_until_it_arrives() {
    let fleet = Fleet::new(FLAT_PLAN);
    let (_, a) = fleet.machine("a");
    wait_ok(a);
    let central = fleet.clone("central");
    let out = integrate(&fleet, &central, None);
    out.assert_code(4);
    let mut redactor = Redactor::new();
    insta::assert_snapshot!("integrate_missing", redactor.output(&out));
    // What arrived is integrated and pushed already.
    assert!(
        fleet
            .remote_git(&["ls-tree", "-r", "streams/p/integration"])
            .contains("a/x")
    );
    let (_, b) = fleet.machine("b");
    wait_ok(b);
    integrate(&fleet, &central, None).assert_code(0);
    assert_eq!(fleet.remote_result(), fleet.local_result());
}

/// A machine's streams was changed to lie: its agent wrote outside its lane and it pushed that
/// as done, with a manifest to match. The central job checks every commit again.
/// A lying machine: rewrites the manifest `stream` pushed from `machine` with `edit`, and pushes
/// it with the branch it names (its `tip`) under the run's names, as a runner could.
fn forge_manifest(
    fleet: &Fleet,
    machine: &Path,
    stream: &str,
    edit: impl FnOnce(&mut serde_json::Value),
) {
    let run = run_id();
    let git = |args: &[&str]| fleet.src.git_in(machine, args);
    let manifest_ref = format!("refs/streams/p/manifests/{run}/{stream}");
    let text = git(&["show", &format!("{manifest_ref}:manifest.json")]);
    let mut manifest: serde_json::Value = serde_json::from_str(&text).unwrap();
    edit(&mut manifest);
    let tip = manifest["tip"].as_str().unwrap().to_string();
    let file = machine.join(".git/forged-manifest.json");
    std::fs::write(&file, manifest.to_string()).unwrap();
    let blob = git(&["hash-object", "-w", file.to_str().unwrap()]);
    let tree = {
        let mut cmd = std::process::Command::new("git");
        cmd.current_dir(machine).args(["mktree"]);
        fleet.src.hermetic(&mut cmd);
        cmd.stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        use std::io::Write;
        writeln!(
            child.stdin.take().unwrap(),
            "100644 blob {blob}\tmanifest.json"
        )
        .unwrap();
        String::from_utf8(child.wait_with_output().unwrap().stdout)
            .unwrap()
            .trim()
            .to_string()
    };
    let forged = git(&["commit-tree", &tree, "-m", "manifest"]);
    git(&[
        "push",
        "-q",
        "origin",
        &format!("+{forged}:{manifest_ref}"),
        &format!("+{tip}:refs/streams/p/work/{run}/branch/{stream}"),
    ]);
}

#[test]
fn a_lying_machine_is_caught_centrally_and_its_work_kept() {
    let fleet = Fleet::new(FLAT_PLAN);
    let machine_a = fleet.a_and_b();
    // The lie: one more commit on `a`, into `b`'s lane, and a manifest that claims it.
    let git = |args: &[&str]| fleet.src.git_in(&machine_a, args);
    let tip = git(&["rev-parse", "streams/p/a"]);
    git(&["checkout", "-q", "--detach", &tip]);
    std::fs::write(machine_a.join("b/x"), "taken over by a\n").unwrap();
    git(&["commit", "-q", "-am", "a: also b"]);
    let lie = git(&["rev-parse", "HEAD"]);
    forge_manifest(&fleet, &machine_a, "a", |manifest| {
        manifest["tip"] = lie.clone().into();
        let last = manifest["tasks"].as_array().unwrap().len() - 1;
        manifest["tasks"][last]["state"]["end"] = lie.clone().into();
    });
    let central = fleet.clone("central");
    let out = integrate(&fleet, &central, None);
    out.assert_code(4);
    assert!(
        out.stderr
            .contains("changed paths it does not own: b/x (owned by b)"),
        "{out}"
    );
    // `b` is integrated; `a`'s work is kept on its rejected ref, here and on the remote.
    let result = fleet.remote_result();
    assert!(result.contains("b/x"), "{result}");
    assert_eq!(fleet.remote_file("b/x"), "b\nb one");
    assert_eq!(fleet.remote_file("a/x"), "a");
    assert_eq!(
        fleet.remote_ref(&format!(
            "refs/streams/p/work/{}/kept/a/rejected/a/2",
            run_id()
        )),
        Some(lie.clone())
    );
    assert_eq!(
        fleet
            .src
            .git_in(&central, &["rev-parse", "refs/streams/p/rejected/a/2"]),
        lie
    );
}

/// Moves the remote's (and the source's) branch on by one commit that changes `README.md`,
/// outside every stream's lane: the run's base then has a parent that differs from it there.
fn base_with_history(fleet: &Fleet) -> (String, String) {
    let before = fleet.base();
    std::fs::write(fleet.src.root.join("README.md"), "# app, v2\n").unwrap();
    fleet.src.git(&["commit", "-q", "-am", "README: v2"]);
    let branch = fleet.src.git(&["rev-parse", "--abbrev-ref", "HEAD"]);
    fleet.src.git(&[
        "push",
        "-q",
        fleet.remote.to_str().unwrap(),
        &format!("HEAD:refs/heads/{branch}"),
    ]);
    (before, fleet.base())
}

#[test]
fn a_merge_whose_first_parent_is_older_than_the_start_cannot_undo_work_outside_the_lane() {
    let fleet = Fleet::new(FLAT_PLAN);
    let (old, base) = base_with_history(&fleet);
    let machine_a = fleet.a_and_b();
    // The lie: a merge of the start whose first parent is the base's parent. Against that
    // parent it changes `a/x` only, yet its tree takes README.md back to the old one.
    let git = |args: &[&str]| fleet.src.git_in(&machine_a, args);
    git(&["checkout", "-q", "--detach", &old]);
    std::fs::write(machine_a.join("a/x"), "a\nall of a\n").unwrap();
    git(&["commit", "-q", "-am", "a: all"]);
    let tree = git(&["rev-parse", "HEAD^{tree}"]);
    let lie = git(&[
        "commit-tree",
        &tree,
        "-p",
        &old,
        "-p",
        &base,
        "-m",
        "a: merge",
    ]);
    forge_manifest(&fleet, &machine_a, "a", |manifest| {
        manifest["tip"] = lie.clone().into();
        manifest["tasks"][0]["state"]["end"] = lie.clone().into();
        manifest["tasks"][1]["state"]["start"] = lie.clone().into();
        manifest["tasks"][1]["state"]["end"] = lie.clone().into();
    });
    let central = fleet.clone("central");
    let out = integrate(&fleet, &central, None);
    out.assert_code(4);
    assert!(out.stderr.contains("refused"), "{out}");
    assert_eq!(fleet.remote_file("README.md"), "# app, v2");
    assert_eq!(fleet.remote_file("b/x"), "b\nb one");
}

#[test]
fn a_manifest_cannot_choose_where_the_integration_starts() {
    let fleet = Fleet::new(FLAT_PLAN);
    let machine_a = fleet.a_and_b();
    // The lie: `a` (first in the plan) says it started from a commit of its own that changes
    // README.md, outside every lane, and did nothing since.
    let git = |args: &[&str]| fleet.src.git_in(&machine_a, args);
    git(&["checkout", "-q", "--detach", &fleet.base()]);
    std::fs::write(machine_a.join("README.md"), "# taken over\n").unwrap();
    git(&["commit", "-q", "-am", "README: taken over"]);
    let start = git(&["rev-parse", "HEAD"]);
    forge_manifest(&fleet, &machine_a, "a", |manifest| {
        manifest["start"] = start.clone().into();
        manifest["base"] = start.clone().into();
        manifest["tip"] = start.clone().into();
        for task in manifest["tasks"].as_array_mut().unwrap() {
            task["state"]["start"] = start.clone().into();
            task["state"]["end"] = start.clone().into();
        }
    });
    let central = fleet.clone("central");
    let out = integrate(&fleet, &central, Some(0));
    out.assert_code(4);
    assert!(out.stderr.contains("refused: it started from"), "{out}");
    assert_eq!(fleet.remote_file("README.md"), "# app");
    assert_eq!(fleet.remote_file("b/x"), "b\nb one");
}

#[test]
fn a_manifest_from_another_plan_is_refused() {
    let fleet = Fleet::new(FLAT_PLAN);
    fleet.a_and_b();
    let central = fleet.clone("central");
    // The central job's plan differs from the one the machines ran.
    let plan = central.join("streams.toml");
    let text = std::fs::read_to_string(&plan).unwrap();
    std::fs::write(&plan, text.replace("jobs = 2", "jobs = 3")).unwrap();
    let out = integrate(&fleet, &central, None);
    out.assert_code(4);
    assert!(
        out.stderr
            .contains("refused: its machine ran a different plan"),
        "{out}"
    );
}

#[test]
fn a_conflict_halts_the_central_integration_and_continue_pushes_the_result() {
    let plan = FLAT_PLAN
        .replace(
            r#"["act", "append", "a/x", "{task}"]"#,
            r#"["act", "append", "a/x", "{task}", "append", "CHANGELOG.md", "from a"]"#,
        )
        .replace(
            r#"["act", "append", "b/x", "{task}"]"#,
            r#"["act", "append", "b/x", "{task}", "append", "CHANGELOG.md", "from b"]"#,
        );
    let fleet = Fleet::new(&plan);
    fleet.a_and_b();
    let central = fleet.clone("central");
    let out = integrate(&fleet, &central, None);
    out.assert_code(3);
    assert!(out.stderr.contains("conflicts in CHANGELOG.md"), "{out}");
    // Nothing is pushed while halted.
    assert_eq!(fleet.remote_ref("streams/p/integration"), None);
    // Integrating again while halted says what to do.
    integrate(&fleet, &central, None).assert_code(5);
    let wt = central.parent().unwrap().join(format!(
        "{}.streams/p/.resolve-b",
        central.file_name().unwrap().to_string_lossy()
    ));
    std::fs::write(wt.join("CHANGELOG.md"), "# changes\nfrom a\nfrom b\n").unwrap();
    fleet.src.git_in(&wt, &["add", "CHANGELOG.md"]);
    let out = fleet.streams_in(&central, &["continue"]);
    out.assert_code(0);
    assert!(out.stderr.contains("pushed to origin"), "{out}");
    assert_eq!(
        fleet.remote_file("CHANGELOG.md"),
        "# changes\nfrom a\nfrom b"
    );
    assert!(fleet.remote_result().contains("b/x"));
}

#[test]
fn a_killed_integration_run_again_gives_the_same_result() {
    let fleet = Fleet::new(FLAT_PLAN);
    fleet.a_and_b();
    // Killed (SIGKILL) right after the first stream's integration was saved, and once just
    // before the first integration: both picked up by integrating again.
    for point in [
        "after-integrate-saved@1",
        "before-integrate@2",
        "integrate-settled",
    ] {
        let central = fleet.clone(&format!("central-{}", point.replace('@', "-")));
        integrate_killed_at(&fleet, &central, None, point);
        let again = integrate(&fleet, &central, None);
        again.assert_code(0);
        let tree = fleet
            .src
            .git_in(&central, &["ls-tree", "-r", "streams/p/integration"]);
        assert_eq!(tree, fleet.remote_result(), "{point}");
        // Each stream's work is there once.
        let log = fleet.src.git_in(
            &central,
            &["log", "--format=%s", "main..streams/p/integration"],
        );
        assert_eq!(log.lines().count(), 3, "{point}: {log}");
        // Once more: the same result, nothing moves.
        let refs = fleet.remote_git(&["for-each-ref"]);
        integrate(&fleet, &central, None).assert_code(0);
        assert_eq!(fleet.remote_git(&["for-each-ref"]), refs, "{point}");
    }
    assert_eq!(fleet.remote_result(), fleet.local_result());
}

#[test]
fn a_failed_stream_still_pushes_its_manifest_and_kept_work() {
    let run = run_id();
    let plan = FLAT_PLAN.replace(
        r#"["act", "append", "b/x", "{task}"]"#,
        r#"["act", "append", "b/x", "{task}", "append", "a/x", "not mine"]"#,
    );
    let fleet = Fleet::new(&plan);
    let (_, a) = fleet.machine("a");
    let (_, b) = fleet.machine("b");
    wait_ok(a);
    let out = b.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(4));
    let kept = fleet.remote_git(&[
        "for-each-ref",
        "--format=%(refname)",
        &format!("refs/streams/p/work/{run}/kept/"),
    ]);
    assert_eq!(
        kept,
        format!("refs/streams/p/work/{run}/kept/b/rejected/b/1")
    );
    let central = fleet.clone("central");
    let out = integrate(&fleet, &central, None);
    out.assert_code(4);
    assert!(out.stderr.contains("failed on its machine"), "{out}");
    assert!(fleet.remote_result().contains("a/x"));
}

/// The plan's gate runs on the central integration, as in a local run: a stream that turns it
/// red fails there, the others integrate. (Machines run no gate: their integration is private.)
#[test]
fn the_gate_runs_on_the_central_integration() {
    let plan = FLAT_PLAN
        .replace(
            "shared = [\"CHANGELOG.md\"]",
            "shared = [\"CHANGELOG.md\"]\ngate = [\"sh\", \"-c\", \"! grep -q bad b/x\"]",
        )
        .replace(
            r#"["act", "append", "b/x", "{task}"]"#,
            r#"["act", "append", "b/x", "bad"]"#,
        );
    let fleet = Fleet::new(&plan);
    fleet.a_and_b();
    let central = fleet.clone("central");
    let out = integrate(&fleet, &central, None);
    out.assert_code(4);
    assert!(out.stderr.contains("failed b: gate"), "{out}");
    assert_eq!(fleet.remote_file("a/x"), "a\na one\na two");
    assert_eq!(fleet.remote_file("b/x"), "b");
}

/// `c` waits on `a`; `a` fails on its machine, so stage 0's tip lacks it. `c`'s machine runs all
/// the same (it cannot know), but the central job leaves it out, as a local run would skip it.
#[test]
fn a_stream_whose_dependency_failed_in_an_earlier_stage_is_skipped() {
    let plan = STAGED_PLAN.replace(
        r#"["act", "append", "a/x", "{task}"]"#,
        r#"["act", "exit", "1"]"#,
    );
    let fleet = Fleet::new(&plan);
    let (_, a) = fleet.machine("a");
    let (_, b) = fleet.machine("b");
    assert_eq!(a.wait_with_output().unwrap().status.code(), Some(4));
    wait_ok(b);
    let central = fleet.clone("central");
    let (out, tip) = integrate_reporting(&fleet, &central, Some(0), None);
    out.assert_code(4);
    let tip = tip.expect("a stage that integrated something reports its tip");
    let dir = fleet.clone("machine-c");
    fleet
        .streams_in(&dir, &after("c", "0", &tip))
        .assert_code(0);
    let (out, _) = integrate_reporting(&fleet, &central, Some(1), Some(&tip));
    out.assert_code(4);
    assert!(
        out.stderr.contains("its dependency `a` did not finish"),
        "{out}"
    );
    assert_eq!(fleet.remote_file("c/x"), "c");
}

/// `sync = "task"` cannot hold on a machine (its stream runs alone; the central job integrates
/// it when it is done): the machine says so rather than changing the plan's meaning silently,
/// and `streams ci github` refuses such a plan outright.
#[test]
fn a_machine_says_that_sync_task_becomes_sync_stream() {
    let fleet = Fleet::new(&FLAT_PLAN.replace("jobs = 2", "jobs = 2\nsync = \"task\""));
    let (_, a) = fleet.machine("a");
    let out = a.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "warning: the plan's `sync = \"task\"` does not hold on a machine: stream `a`'s commits are integrated together, by `streams integrate`, once it is done"
        ),
        "{stderr}"
    );
}

#[test]
fn a_push_remote_that_cannot_be_reached_is_refused_before_the_stream_runs() {
    let fleet = Fleet::new(FLAT_PLAN);
    let machine = fleet.clone("machine-a");
    let base = fleet.base();
    let out = fleet.streams_in(
        &machine,
        &[
            "run",
            "--only",
            "a",
            "--run-id",
            run_id(),
            "--base",
            &base,
            "--push",
            "nowhere",
        ],
    );
    out.assert_code(2);
    assert!(out.stderr.contains("cannot reach nowhere"), "{out}");
    assert!(out.stderr.lines().count() <= 2, "{out}");
    // Nothing ran: hours of agent work are not spent before the push is known to fail.
    assert!(!out.stdout.contains("started a"), "{out}");
    let branch = fleet
        .src
        .git_output_in(&machine, &["rev-parse", "-q", "--verify", "streams/p/a"]);
    assert!(!branch.status.success());
}

#[test]
fn an_unreachable_remote_is_said_in_two_lines() {
    let fleet = Fleet::new(FLAT_PLAN);
    let central = fleet.clone("central");
    let out = fleet.streams_in(
        &central,
        &[
            "integrate",
            "--from",
            "/nonexistent/remote.git",
            "--run-id",
            run_id(),
        ],
    );
    out.assert_code(2);
    assert!(out.stderr.contains("/nonexistent/remote.git"), "{out}");
    assert!(out.stderr.lines().count() <= 2, "{out}");
}

#[test]
fn a_stage_0_stream_started_after_a_stage_is_told_to_use_base() {
    let fleet = Fleet::new(STAGED_PLAN);
    let machine = fleet.clone("machine-a");
    let base = fleet.base();
    let out = fleet.streams_in(&machine, &after("a", "0", &base));
    out.assert_code(2);
    assert!(
        out.stderr.contains(
            "stream `a` is in stage 0: it depends on nothing, so it starts from the base, not after stage 0"
        ),
        "{out}"
    );
    assert!(out.stderr.contains("--base COMMIT"), "{out}");
}

#[test]
fn a_stage_integration_killed_anywhere_and_run_again_pushes_the_same_stage_tip() {
    let fleet = Fleet::new(FLAT_PLAN);
    fleet.a_and_b();
    let stage_ref = format!("refs/streams/p/stages/{}/0", run_id());
    let mut results = Vec::new();
    for point in [
        "run-saved",
        "integration-created",
        "before-integrate-ref@1",
        "after-integrate-ref@2",
        "before-publish",
    ] {
        let central = fleet.clone(&format!("central-{}", point.replace('@', "-")));
        integrate_killed_at(&fleet, &central, Some(0), point);
        let again = integrate(&fleet, &central, Some(0));
        again.assert_code(0);
        let log = fleet.src.git_in(
            &central,
            &["log", "--format=%s", "main..streams/p/integration"],
        );
        assert_eq!(log.lines().count(), 3, "{point}: {log}");
        let tip = fleet
            .remote_ref(&stage_ref)
            .expect("the stage tip is pushed");
        results.push(fleet.remote_git(&["ls-tree", "-r", &tip]));
    }
    results.dedup();
    assert_eq!(results.len(), 1, "{results:#?}");
}

/// A runner of the next stage (it can push to the remote) moves stage 0's tip on the remote
/// to a commit that changes `a/x` (a stream of stage 0: the old check allowed that) and
/// `README.md` (no stream's), then runs `c` from there. Returns the forged tip.
fn forge_stage_0_and_run_c(fleet: &Fleet) -> String {
    let run = run_id();
    let stage_ref = format!("refs/streams/p/stages/{run}/0");
    let forger = fleet.clone("forger");
    let git = |args: &[&str]| fleet.src.git_in(&forger, args);
    git(&["fetch", "-q", "origin", &format!("{stage_ref}:{stage_ref}")]);
    git(&["checkout", "-q", "--detach", &stage_ref]);
    std::fs::write(forger.join("a/x"), "a, taken over\n").unwrap();
    std::fs::write(forger.join("README.md"), "# taken over\n").unwrap();
    git(&["commit", "-q", "-am", "taken over"]);
    git(&["push", "-q", "origin", &format!("+HEAD:{stage_ref}")]);
    let forged = git(&["rev-parse", "HEAD"]);
    let c = fleet.clone("machine-c");
    fleet
        .streams_in(&c, &after("c", "0", &forged))
        .assert_code(0);
    forged
}

/// Finding 2 of issue 24, by hand: stage 1 is integrated on the tip stage 0's job reported,
/// whatever the remote's stage ref says, and a stream that started elsewhere is refused.
#[test]
fn a_stage_tip_moved_on_the_remote_is_not_built_on() {
    let fleet = Fleet::new(STAGED_PLAN);
    fleet.a_and_b();
    let central = fleet.clone("central");
    let (out, tip) = integrate_reporting(&fleet, &central, Some(0), None);
    out.assert_code(0);
    let tip = tip.unwrap();
    forge_stage_0_and_run_c(&fleet);
    let central_1 = fleet.clone("central-1");
    let (out, _) = integrate_reporting(&fleet, &central_1, Some(1), Some(&tip));
    out.assert_code(4);
    assert!(
        out.stderr.contains("failed c: refused: it started from"),
        "{out}"
    );
    for (file, text) in [("a/x", "a\na one\na two"), ("README.md", "# app")] {
        assert_eq!(fleet.remote_file(file), text);
    }
    // Its job run again, from the reported tip: the same central clone takes it this time (a
    // failed stream is looked at again once its machine pushes another manifest).
    let c = fleet.clone("machine-c-again");
    fleet.streams_in(&c, &after("c", "0", &tip)).assert_code(0);
    let (out, _) = integrate_reporting(&fleet, &central_1, Some(1), Some(&tip));
    out.assert_code(0);
    assert_eq!(fleet.remote_file("c/x"), "c\nc one");
}

#[test]
fn a_stream_started_after_a_stage_is_refused_by_a_whole_integration() {
    // `merge`: the stream's branch is merged whole, so what its start holds would land.
    let plan = STAGED_PLAN.replace("jobs = 3", "jobs = 3\nmerge = \"merge\"");
    let fleet = Fleet::new(&plan);
    fleet.a_and_b();
    // `c` ran after a stage 0 of its machine's own making.
    let forger = fleet.clone("forger");
    let git = |args: &[&str]| fleet.src.git_in(&forger, args);
    std::fs::write(forger.join("a/x"), "a, taken over\n").unwrap();
    std::fs::write(forger.join("README.md"), "# taken over\n").unwrap();
    git(&["commit", "-q", "-am", "taken over"]);
    git(&["push", "-q", "origin", "HEAD:refs/heads/forged"]);
    let forged = git(&["rev-parse", "HEAD"]);
    let c = fleet.clone("machine-c");
    fleet
        .streams_in(&c, &after("c", "0", &forged))
        .assert_code(0);
    let out = integrate(&fleet, &fleet.clone("central-all"), None);
    out.assert_code(4);
    assert!(
        out.stderr.contains("failed c: refused: it started from")
            && out
                .stderr
                .contains("a whole integration takes streams started from the base"),
        "{out}"
    );
    assert_eq!(fleet.remote_file("README.md"), "# app");
}

#[test]
fn a_manifest_that_leaves_out_tasks_is_refused() {
    let fleet = Fleet::new(FLAT_PLAN);
    let machine_a = fleet.a_and_b();
    // The lie: `a` says the plan's first task was all it had, and ends there.
    forge_manifest(&fleet, &machine_a, "a", |manifest| {
        let first = manifest["tasks"][0].clone();
        manifest["tip"] = first["state"]["end"].clone();
        manifest["tasks"] = serde_json::json!([first]);
    });
    let out = integrate(&fleet, &fleet.clone("central"), None);
    out.assert_code(4);
    assert!(
        out.stderr
            .contains("refused: its manifest lists 1 task(s), the plan gives `a` 2"),
        "{out}"
    );
}

/// Another integrate job (another run of the plan, say) moves the remote's integration branch
/// after this one looked at it and before its push lands. This one must not push over that
/// result unseen: its push is refused, it says why, and running it again decides afresh.
#[test]
fn an_integration_branch_moved_meanwhile_is_not_pushed_over() {
    use std::os::unix::fs::PermissionsExt;
    let fleet = Fleet::new(FLAT_PLAN);
    fleet.a_and_b();
    let central = fleet.clone("central");
    // The remote's receive-pack, as this clone runs it: first the other job's push lands (the
    // branch moves to the base's commit with a README of its own), then ours is received.
    let other = fleet
        .src
        .git(&["commit-tree", "-m", "another run", "HEAD^{tree}"]);
    fleet.src.git(&[
        "push",
        "-q",
        fleet.remote.to_str().unwrap(),
        &format!("{other}:refs/heads/other"),
    ]);
    let wrapper = central.join("..").join("receive-pack-racing");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\ngit --git-dir=\"$1\" update-ref refs/heads/streams/p/integration {other}\ngit --git-dir=\"$1\" update-ref refs/streams/p/stages/other-run/0 {other}\nexec git-receive-pack \"$@\"\n"
        ),
    )
    .unwrap();
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    fleet.src.git_in(
        &central,
        &[
            "config",
            "remote.origin.receivepack",
            wrapper.to_str().unwrap(),
        ],
    );

    let out = integrate(&fleet, &central, None);
    assert_ne!(out.code, Some(0), "{out}");
    assert!(
        out.stderr
            .contains("streams/p/integration moved on origin while this job ran"),
        "{out}"
    );
    // The other job's result stands.
    assert_eq!(
        fleet
            .remote_ref("refs/heads/streams/p/integration")
            .as_deref(),
        Some(other.as_str())
    );

    // Without the race, the same command again pushes this integration's result over the
    // other run's (recorded as an integration's result: a branch streams left).
    fleet.src.git_in(
        &central,
        &["config", "--unset", "remote.origin.receivepack"],
    );
    integrate(&fleet, &central, None).assert_code(0);
    assert_eq!(fleet.remote_result(), fleet.local_result());
}

/// The integration branch on the remote holds what no integration left there (a person's
/// push, `streams pr` of a local run): the central job refuses to push over it, says what to
/// do, and pushes nothing, before it integrates anything.
#[test]
fn an_integration_branch_no_integration_left_is_not_pushed_over() {
    let fleet = Fleet::new(FLAT_PLAN);
    let theirs = fleet
        .src
        .git(&["commit-tree", "-m", "a person's", "HEAD^{tree}"]);
    fleet.src.git(&[
        "push",
        "-q",
        fleet.remote.to_str().unwrap(),
        &format!("{theirs}:refs/heads/streams/p/integration"),
        &format!("{theirs}:refs/heads/streams/p/a"),
    ]);
    fleet.a_and_b();
    // The machines pushed only names of their run.
    assert_eq!(
        fleet.remote_ref("refs/heads/streams/p/a"),
        Some(theirs.clone())
    );
    let central = fleet.clone("central");
    let out = integrate(&fleet, &central, None);
    out.assert_code(5);
    let mut redactor = Redactor::new();
    insta::assert_snapshot!("integration_branch_not_ours", redactor.output(&out));
    assert_eq!(
        fleet.remote_ref("refs/heads/streams/p/integration"),
        Some(theirs.clone())
    );
    assert!(
        !central.join(".git/streams/runs").join(run_id()).exists(),
        "refused before anything was integrated"
    );
    // Deleted as the hint says, the next integration pushes.
    fleet.src.git(&[
        "push",
        "-q",
        fleet.remote.to_str().unwrap(),
        ":refs/heads/streams/p/integration",
    ]);
    integrate(&fleet, &central, None).assert_code(0);
    assert_eq!(fleet.remote_result(), fleet.local_result());
}

/// Nothing arrived yet (the integrate job ran before any stream job pushed): nothing is
/// pushed, not even a stage tip equal to the base.
#[test]
fn an_integration_before_any_machine_pushed_pushes_nothing() {
    let fleet = Fleet::new(FLAT_PLAN);
    let central = fleet.clone("central");
    let (out, _) = integrate_reporting(&fleet, &central, Some(0), None);
    out.assert_code(4);
    assert_eq!(fleet.remote_git(&["for-each-ref", "refs/streams"]), "");
    assert_eq!(fleet.remote_ref("refs/heads/streams/p/integration"), None);
    assert!(out.stderr.contains("nothing to push to origin"), "{out}");
    // Once they have, the same clone integrates them.
    fleet.a_and_b();
    integrate(&fleet, &central, Some(0)).assert_code(0);
    assert_eq!(fleet.remote_result(), fleet.local_result());
}

/// A stream that failed on its machine, and whose job is then run again under the same run id
/// (GitHub's "Re-run failed jobs"), is taken by integrating again in the same clone.
#[test]
fn a_failed_stream_run_again_is_integrated_in_the_same_clone() {
    let plan = FLAT_PLAN.replace(
        r#"["act", "append", "b/x", "{task}"]"#,
        r#"["sh", "-c", "test -n \"$B_FIXED\" && echo fixed >> b/x"]"#,
    );
    let fleet = Fleet::new(&plan);
    let (_, a) = fleet.machine("a");
    let (_, b) = fleet.machine("b");
    wait_ok(a);
    assert_eq!(b.wait_with_output().unwrap().status.code(), Some(4));
    let central = fleet.clone("central");
    let out = integrate(&fleet, &central, None);
    out.assert_code(4);
    assert!(
        out.stderr.contains("failed b: failed on its machine"),
        "{out}"
    );
    let dir = fleet.clone("machine-b-again");
    let base = fleet.base();
    let out = fleet
        .src
        .streams_cmd(&only("b", "--base", &base))
        .current_dir(&dir)
        .env("B_FIXED", "1")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let out = integrate(&fleet, &central, None);
    out.assert_code(0);
    assert_eq!(fleet.remote_file("b/x"), "b\nfixed");
}

/// The state and `report.md` of the run `dir`'s clone ran last.
fn run_files(dir: &Path) -> (serde_json::Value, String) {
    let root = dir.join(".git/streams");
    let id = std::fs::read_to_string(root.join("current")).unwrap();
    let run = root.join("runs").join(id.trim());
    let state =
        serde_json::from_str(&std::fs::read_to_string(run.join("state.json")).unwrap()).unwrap();
    (
        state,
        std::fs::read_to_string(run.join("report.md")).unwrap(),
    )
}

fn forecast_streams(state: &serde_json::Value) -> Vec<String> {
    state["forecast"]["streams"]
        .as_array()
        .unwrap_or_else(|| panic!("no forecast: {state}"))
        .iter()
        .map(|s| s["stream"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn machines_and_the_central_job_set_their_forecast_beside_the_actual() {
    let fleet = Fleet::new(STAGED_PLAN);
    let base = fleet.base();
    let first = run_id().to_string();
    let second = format!("{}0", &first[..first.len() - 1]);
    let second = if second == first {
        format!("{}1", &first[..first.len() - 1])
    } else {
        second
    };
    let machine = |stream: &str, run: &str| {
        let dir = fleet
            .src
            .root
            .parent()
            .unwrap()
            .join(format!("machine-{stream}"));
        if !dir.exists() {
            fleet.clone(&format!("machine-{stream}"));
        }
        let args = [
            "run", "--only", stream, "--run-id", run, "--base", &base, "--push", "origin",
        ];
        fleet.streams_in(&dir, &args).assert_code(0);
        dir
    };
    // A machine's first run: nothing to forecast from in its clone, and it says so.
    let dir = machine("a", &first);
    let (state, md) = run_files(&dir);
    assert_eq!(state["forecast"]["history"], false, "{state}");
    assert_eq!(forecast_streams(&state), ["a"], "only its own stream");
    assert!(md.contains("### Forecast against actual"), "{md}");
    assert!(md.contains("| a | no history | "), "{md}");
    machine("b", &first);
    let central = fleet.clone("central");
    let integrate_run = |run: &str| {
        fleet
            .streams_in(
                &central,
                &[
                    "integrate",
                    "--from",
                    "origin",
                    "--run-id",
                    run,
                    "--stage",
                    "0",
                ],
            )
            .assert_code(0);
    };
    integrate_run(&first);
    let (state, md) = run_files(&central);
    assert_eq!(forecast_streams(&state), ["a", "b"], "the stage's streams");
    assert!(md.contains("### Forecast against actual"), "{md}");

    // The same clones run the next run: each forecasts from what it recorded of the first.
    let dir = machine("a", &second);
    let (state, md) = run_files(&dir);
    assert_eq!(state["forecast"]["history"], true, "{state}");
    assert!(
        state["forecast"]["streams"][0]["seconds"]
            .as_f64()
            .is_some(),
        "{state}"
    );
    assert!(!md.contains("| a | no history | "), "{md}");
    // How many agents ran at once is the number of machines, which no machine knows: its
    // history does not say (a cost per number of agents is not taken from it).
    let history = std::fs::read_to_string(dir.join(".git/streams/history.jsonl")).unwrap();
    assert!(!history.contains("\"jobs\""), "{history}");
    machine("b", &second);
    integrate_run(&second);
    let (state, md) = run_files(&central);
    assert_eq!(state["forecast"]["history"], true, "{state}");
    assert!(
        md.contains(
            "each stream ran on a machine of its own, so the run's time is its longest stream's"
        ),
        "{md}"
    );
}
