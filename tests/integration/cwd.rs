//! Where the person's shell is: the halt tells them to `cd` into the resolution workspace, and
//! `continue`, `skip` and `abort` run from there remove it. They say where to go instead, and
//! `streams` started from a directory that no longer exists says so clearly (and, when that
//! directory was a workspace of a run here, goes on in its repository).

use std::path::Path;

use crate::common::{CmdOutput, TestRepo, streams_bin};
use crate::support::runs::{halted, resolution, resolve_shared};

/// Runs `script` in `sh` from `dir` (the person's shell, `cd`ed there), `$STREAMS` being the
/// binary: a later command of the script runs in whatever is left of the directory.
fn shell_in(repo: &TestRepo, dir: &Path, script: &str) -> CmdOutput {
    let mut cmd = std::process::Command::new("sh");
    repo.hermetic(&mut cmd);
    for (k, v) in &repo.env {
        cmd.env(k, v);
    }
    cmd.env("ACT_REPO", &repo.root)
        .env("STREAMS", streams_bin())
        .arg("-c")
        .arg(format!("cd '{}' && {script}", dir.display()))
        .stdin(std::process::Stdio::null());
    CmdOutput::new(cmd.output().unwrap(), repo)
}

/// A halted run whose conflict is resolved in its resolution workspace, left staged.
fn halted_and_resolved() -> (TestRepo, std::path::PathBuf) {
    let repo = halted();
    let wt = resolve_shared(&repo, "from a and b\n");
    (repo, wt)
}

#[test]
fn continue_from_the_resolution_workspace_says_where_to_cd() {
    let (repo, wt) = halted_and_resolved();
    let out = shell_in(&repo, &wt, r#""$STREAMS" continue"#);
    out.assert_code(0);
    assert!(!wt.exists(), "continue removes the resolution workspace");
    assert!(
        out.stderr.contains(&format!(
            "the workspace this ran in, {}, is removed: `cd {}`",
            wt.display(),
            repo.root.display()
        )),
        "{out}"
    );
    assert_eq!(
        repo.git(&["show", "streams/p/integration:shared.txt"]),
        "from a and b"
    );
}

#[test]
fn skip_and_abort_from_the_resolution_workspace_say_where_to_cd() {
    for command in ["skip b", "abort"] {
        let repo = halted();
        let wt = resolution(&repo);
        let out = shell_in(&repo, &wt, &format!(r#""$STREAMS" {command}"#));
        out.assert_code(0);
        assert!(!wt.exists(), "{command} removes the resolution workspace");
        assert!(
            out.stderr
                .contains(&format!("is removed: `cd {}`", repo.root.display())),
            "{command}: {out}"
        );
    }
}

#[test]
fn a_command_run_where_the_workspace_was_goes_on_in_its_repository() {
    let (repo, wt) = halted_and_resolved();
    // The shell stays where it was: the next command starts in a directory that is gone.
    let out = shell_in(
        &repo,
        &wt,
        r#""$STREAMS" continue 2>/dev/null; "$STREAMS" status"#,
    );
    out.assert_code(0);
    assert!(out.stdout.contains("finished: integrated"), "{out}");
    assert!(
        out.stderr.contains(&format!(
            "warning: the current directory {} no longer exists (a workspace of a streams run, removed); working in {}",
            wt.display(),
            repo.root.display()
        )),
        "{out}"
    );
}

#[test]
fn a_command_run_in_a_deleted_directory_says_so() {
    let repo = TestRepo::with_files(&[("a", "a\n")]);
    let gone = repo.path("gone");
    std::fs::create_dir(&gone).unwrap();
    let out = shell_in(&repo, &gone, r#"rmdir "$PWD" && "$STREAMS" status"#);
    out.assert_code(2);
    assert_eq!(
        out.stderr_redacted(),
        "error: the current directory [REPO]/gone no longer exists\n\
         hint: `cd` to your repository (or give it with `-C DIR`) and run the command again\n",
        "{out}"
    );
}
