//! Workspaces prepared ahead (issue 18): while every slot is taken, the next ready streams'
//! workspaces are prepared, so a stream taking a freed slot starts its agent at once; a stream
//! waiting for a dependency is not prepared (its start is not known yet).

use crate::common::TestRepo;

/// Stream `a`'s agent (the only one running: `jobs = 1`) waits until stream `b`'s workspace has
/// its files, and writes what it saw of `b` and of `c` (which waits for `a`) into `a/seen.txt`.
/// The wait is bounded: without preparation ahead `b` cannot start while `a` runs, and the
/// agent gives up and writes so.
const WATCHER: &str = r#"
here=$STREAMS_WORKTREE
for i in $(seq 1 300); do
    [ -f "$here/../b/README.md" ] && break
    sleep 0.1
done
if [ -f "$here/../b/README.md" ]; then b="b prepared"; else b="b not prepared"; fi
if [ -e "$here/../c" ]; then c="c prepared"; else c="c not prepared"; fi
mkdir -p a
echo "$b, $c" > a/seen.txt
"#;

#[test]
fn the_next_ready_stream_is_prepared_while_the_slots_are_taken_and_a_waiting_one_is_not() {
    let repo = TestRepo::with_files(&[
        ("README.md", "# app\n"),
        ("a/f.txt", "a\n"),
        ("b/f.txt", "b\n"),
        ("c/f.txt", "c\n"),
    ]);
    let base = repo.git(&["rev-parse", "HEAD"]);
    repo.write(
        "streams.toml",
        &format!(
            r#"
[plan]
name = "p"
jobs = 1

[[stream]]
name = "a"
owns = ["a/**"]
agent = ["sh", "-c", '''{WATCHER}''']
tasks = ["Watch"]

[[stream]]
name = "b"
owns = ["b/**"]
agent = ["act", "write", "b/f.txt", "b done"]
tasks = ["Work on b"]

[[stream]]
name = "c"
owns = ["c/**"]
depends_on = ["a"]
agent = ["act", "write", "c/f.txt", "c done"]
tasks = ["Work on c"]
"#
        ),
    );
    let mut cmd = repo.streams_cmd(&["run", "streams.toml"]);
    cmd.env("STREAMS_LOG", "streams::exec=debug");
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "run failed:\n{stderr}");
    let show = |path: &str| repo.git(&["show", &format!("streams/p/integration:{path}")]);
    assert_eq!(
        show("a/seen.txt"),
        "b prepared, c not prepared",
        "while a ran (the only slot), b's workspace was prepared and c's (waiting for a) was not"
    );
    assert!(
        stderr.contains("b: workspace prepared ahead at"),
        "the log says so:\n{stderr}"
    );
    // Every stream's work is integrated. b was prepared at the base but started from the tip
    // of the moment it took the slot (holding a's work), as an unprepared stream would; and so
    // did c, once a was integrated.
    assert_eq!(show("b/f.txt"), "b done");
    assert_eq!(show("c/f.txt"), "c done");
    for stream in ["b", "c"] {
        repo.git(&[
            "merge-base",
            "--is-ancestor",
            "streams/p/a",
            &format!("streams/p/{stream}"),
        ]);
    }
    assert_ne!(repo.git(&["rev-parse", "streams/p/b~1"]), base);
}

/// A prepared workspace is moved on to the tip by a checkout that is not forced: a file written
/// there meanwhile, where the tip brings one, makes it fall back to the full preparation, which
/// keeps that file on a ref (as for any workspace found with uncommitted work) before the reset.
#[test]
fn a_file_written_into_a_prepared_workspace_is_kept_not_overwritten() {
    let repo = TestRepo::with_files(&[("README.md", "# app\n"), ("b/f.txt", "b\n")]);
    let intruder = r#"
here=$STREAMS_WORKTREE
for i in $(seq 1 300); do
    [ -f "$here/../b/README.md" ] && break
    sleep 0.1
done
mkdir -p a "$here/../b/a"
echo "a's own" > a/new.txt
echo "written from outside" > "$here/../b/a/new.txt"
"#;
    repo.write(
        "streams.toml",
        &format!(
            r#"
[plan]
name = "p"
jobs = 1

[[stream]]
name = "a"
owns = ["a/**"]
agent = ["sh", "-c", '''{intruder}''']
tasks = ["Write"]

[[stream]]
name = "b"
owns = ["b/**"]
agent = ["act", "write", "b/f.txt", "b done"]
tasks = ["Work on b"]
"#
        ),
    );
    let out = repo.streams(&["run", "streams.toml"]);
    out.assert_code(0);
    let show = |rev: &str| repo.git(&["show", rev]);
    assert_eq!(show("streams/p/integration:a/new.txt"), "a's own");
    assert_eq!(show("streams/p/integration:b/f.txt"), "b done");
    assert!(
        out.stderr
            .contains("uncommitted work found in its workspace was kept on"),
        "{out}"
    );
    let kept = repo.git(&["for-each-ref", "--format=%(refname)", "refs/streams/p/"]);
    let wip = kept
        .lines()
        .find(|r| r.contains("wip") && r.contains("/b/"))
        .unwrap_or_else(|| panic!("no kept ref for b in:\n{kept}"));
    assert_eq!(
        show(&format!("{wip}:a/new.txt")),
        "written from outside",
        "the file written into the prepared workspace is kept"
    );
}
