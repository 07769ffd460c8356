//! The adversarial trial's repository and plan (issues 11 and 23): an agent under test in
//! stream `a`, a harmless stream `b`, and `c/**` owned by nobody; `private.rs` and `forgery.rs`
//! run their agent scripts in it.

use crate::common::TestRepo;

/// `a/f.txt`, `b/f.txt`, `c/f.txt`, and a user's branch `feature`.
pub fn trial_repo() -> TestRepo {
    let repo = TestRepo::with_files(&[("a/f.txt", "a\n"), ("b/f.txt", "b\n"), ("c/f.txt", "c\n")]);
    repo.git(&["branch", "feature"]);
    repo
}

/// Plan `p`: stream `a` (the agent under test, running `script` with sh, then writing
/// `a/done.txt`) and stream `b` (harmless), each owning its directory.
pub fn trial_plan(repo: &TestRepo, script: &str, extra: &str) {
    let script = script.replace('\\', "\\\\").replace('"', "\\\"");
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
agent = ["act", "sh", "{script}", "write", "a/done.txt", "a"]
tasks = ["Work on a"]

[[stream]]
name = "b"
owns = ["b/**"]
agent = ["act", "write", "b/done.txt", "b", "commit", "b's work"]
tasks = ["Work on b"]
"#
        ),
    );
}

/// `git show REV` in the user's repository, trimmed; `None` when it has no such object.
pub fn show(repo: &TestRepo, rev: &str) -> Option<String> {
    let out = repo.git_output_in(&repo.root, &["show", rev]);
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim_end().to_string())
}

/// `path` as the run's integration branch holds it (it must be there).
#[track_caller]
pub fn integrated(repo: &TestRepo, path: &str) -> String {
    show(repo, &format!("streams/p/integration:{path}"))
        .unwrap_or_else(|| panic!("{path} is not on the integration branch"))
}

/// `git fsck` of the user's repository finds nothing wrong.
#[track_caller]
pub fn assert_fsck_clean(repo: &TestRepo) {
    let fsck = repo.git_output_in(&repo.root, &["fsck", "--no-dangling", "--no-progress"]);
    assert!(
        fsck.status.success(),
        "{}",
        String::from_utf8_lossy(&fsck.stderr)
    );
}
