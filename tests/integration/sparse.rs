//! `reads`: a stream that declares it works in a sparse workspace holding what it owns, the
//! plan's `shared` and what it reads; its work is checked and integrated as any other.

use crate::common::TestRepo;

fn repo() -> TestRepo {
    TestRepo::with_files(&[
        ("top.txt", "top\n"),
        ("a/f.txt", "a\n"),
        ("b/f.txt", "b\n"),
        ("c/x/f.txt", "cx\n"),
        ("c/y/f.txt", "cy\n"),
        ("lib/g.rs", "g\n"),
        ("lib/h.txt", "h\n"),
    ])
}

/// Stream `a` lists the files of its workspace into `a/seen.txt` (its own file, committed as
/// its work), and changes `a/f.txt`; stream `b` (no `reads`) does the same for `b`.
fn plan(repo: &TestRepo, reads: &str) {
    let list =
        "find . -path ./.git -prune -o -type f -print | sed 's|^./||' | grep -v seen.txt | sort";
    repo.write(
        "streams.toml",
        &format!(
            r#"
[plan]
name = "p"
jobs = 2
shared = ["top.txt"]

[[stream]]
name = "a"
owns = ["a/**"]
reads = {reads}
agent = ["act", "sh", "{list} > a/seen.txt", "write", "a/f.txt", "a done"]
tasks = ["Work on a"]

[[stream]]
name = "b"
owns = ["b/**"]
agent = ["act", "sh", "{list} > b/seen.txt", "write", "b/f.txt", "b done"]
tasks = ["Work on b"]
"#
        ),
    );
    repo.commit_all("plan");
}

fn integrated(repo: &TestRepo, path: &str) -> String {
    repo.git(&["show", &format!("streams/p/integration:{path}")])
}

#[test]
fn a_stream_with_reads_sees_only_owns_shared_and_reads_and_is_integrated() {
    let repo = repo();
    plan(&repo, r#"["c/x/**"]"#);
    let out = repo.streams(&["run"]);
    out.assert_code(0);
    // Cone mode: the top level, a/ and c/x/ (with c/'s own files, of which there are none).
    assert_eq!(
        integrated(&repo, "a/seen.txt"),
        "a/f.txt\nc/x/f.txt\nstreams.toml\ntop.txt"
    );
    // A stream without `reads` has every file.
    let seen_by_b = integrated(&repo, "b/seen.txt");
    assert!(seen_by_b.contains("c/y/f.txt") && seen_by_b.contains("lib/g.rs"));
    // Its work was checked and integrated; the integration result holds every file.
    assert_eq!(integrated(&repo, "a/f.txt"), "a done");
    assert_eq!(integrated(&repo, "b/f.txt"), "b done");
    let files = repo.git(&["ls-tree", "-r", "--name-only", "streams/p/integration"]);
    for path in ["c/x/f.txt", "c/y/f.txt", "lib/g.rs", "lib/h.txt", "top.txt"] {
        assert!(files.lines().any(|l| l == path), "{path} missing:\n{files}");
    }
}

#[test]
fn reads_that_are_not_directories_give_a_non_cone_sparse_workspace() {
    let repo = repo();
    plan(&repo, r#"["lib/*.rs"]"#);
    repo.streams(&["run"]).assert_code(0);
    // Exactly the globs: no other top-level file, no lib/h.txt.
    assert_eq!(
        integrated(&repo, "a/seen.txt"),
        "a/f.txt\nlib/g.rs\ntop.txt"
    );
}

#[test]
fn an_agent_writing_outside_what_it_owns_is_still_refused() {
    let repo = repo();
    repo.write(
        "streams.toml",
        r#"
[plan]
name = "p"

[[stream]]
name = "a"
owns = ["a/**"]
reads = ["c/x/**"]
agent = ["act", "write", "c/x/f.txt", "changed"]
tasks = ["Change what it only reads"]
"#,
    );
    repo.commit_all("plan");
    let out = repo.streams(&["run"]);
    assert!(
        !out.success(),
        "the run succeeded:\n{}",
        out.stderr_redacted()
    );
    assert!(
        out.stderr_redacted().contains("c/x/f.txt"),
        "{}",
        out.stderr_redacted()
    );
}

#[test]
fn plan_shows_each_sparse_workspace_in_files() {
    let repo = repo();
    plan(&repo, r#"["c/x/**"]"#);
    let out = repo.streams(&["plan"]);
    out.assert_code(0);
    // The report goes to stderr (stdout is for `--json`).
    let text = out.stderr_redacted() + &out.stdout_redacted();
    // a/f.txt, c/x/f.txt, streams.toml, top.txt.
    assert!(text.contains("sparse workspace: 4 files"), "{text}");
    // Stream b has a whole checkout: no sparse size on its line.
    assert!(text.contains("b/**\n"), "{text}");
}

#[test]
fn an_invalid_reads_pattern_is_refused_like_owns() {
    let repo = repo();
    plan(&repo, r#"["c/[x"]"#);
    let out = repo.streams(&["plan"]);
    assert!(!out.success());
    assert!(
        out.stderr_redacted()
            .contains("invalid pattern `c/[x` in `reads`"),
        "{}",
        out.stderr_redacted()
    );
}

/// Fresh workspaces are filled with git's parallel checkout (git starts the workers once a
/// checkout has enough files to write): the debug log of streams' git commands shows it.
#[test]
fn fresh_workspaces_are_filled_with_parallel_checkout() {
    let repo = repo();
    plan(&repo, r#"["c/x/**"]"#);
    let out = repo
        .streams_cmd(&["run"])
        .env("STREAMS_LOG", "streams::git=debug")
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert!(out.status.success());
    let log = String::from_utf8_lossy(&out.stderr);
    let fills: Vec<&str> = log
        .lines()
        .filter(|l| l.contains(" read-tree --reset -u "))
        .collect();
    assert_eq!(fills.len(), 2, "{log}");
    assert!(
        fills.iter().all(|l| l.contains("-c checkout.workers=")),
        "{log}"
    );
}
