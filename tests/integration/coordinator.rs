//! The merge coordinator: sync points, conflict halts, continue and skip. (`abort`, `status`
//! and `clean` have their own files.)

use crate::support::plans::{conflicting, plan, two_streams};
use crate::support::repos::repo_with_shared;
use crate::support::runs::{halted, resolution, resolve_shared, run_dir};

#[test]
fn a_conflict_in_a_shared_file_halts_with_a_bundle_and_a_resolution_worktree() {
    let repo = repo_with_shared();
    conflicting(&repo);
    let out = repo.streams(&["run"]);
    out.assert_code(3);
    insta::assert_snapshot!(out.to_string());

    // The bundle: a README, both diffs against the base, the file with markers.
    let bundle = run_dir(&repo).join("conflicts/b");
    let readme = std::fs::read_to_string(bundle.join("README.md")).unwrap();
    assert!(
        readme.contains("# Conflict: stream `b` (task 1)"),
        "{readme}"
    );
    assert!(readme.contains("streams continue"), "{readme}");
    assert!(readme.contains("streams skip b"), "{readme}");
    assert!(readme.contains("streams abort"), "{readme}");
    for id in [
        repo.git(&["rev-parse", "main"]),
        repo.git(&["rev-parse", "streams/p/integration"]),
    ] {
        assert!(readme.contains(&id), "{readme} lacks {id}");
    }
    let ours = std::fs::read_to_string(bundle.join("files/shared.txt.integration.diff")).unwrap();
    assert!(
        ours.contains("+from a") && ours.contains("-line 2"),
        "{ours}"
    );
    let theirs = std::fs::read_to_string(bundle.join("files/shared.txt.stream.diff")).unwrap();
    assert!(theirs.contains("+from b"), "{theirs}");
    let marked = std::fs::read_to_string(bundle.join("files/shared.txt.conflicted")).unwrap();
    assert_eq!(
        marked,
        "<<<<<<< integration\nfrom a\n=======\nfrom b\n>>>>>>> b (task 1)\n"
    );

    // The resolution worktree: detached at the tip the conflict was found on (the integration
    // goes on while a person resolves), the file with markers, unmerged.
    let wt = resolution(&repo);
    assert!(
        !repo
            .git_output_in(&wt, &["symbolic-ref", "-q", "HEAD"])
            .status
            .success()
    );
    assert_eq!(
        repo.git_in(&wt, &["rev-parse", "HEAD"]),
        repo.git(&["rev-parse", "streams/p/integration"])
    );
    assert_eq!(
        std::fs::read_to_string(wt.join("shared.txt")).unwrap(),
        marked
    );
    assert_eq!(
        repo.git_in(&wt, &["status", "--porcelain"]),
        "A  b/y\nUU shared.txt"
    );
    // Nothing of b reached the integration branch.
    assert_eq!(
        repo.git(&["show", "streams/p/integration:shared.txt"]),
        "from a"
    );
}

#[test]
fn continue_records_the_resolution_and_finishes_the_run() {
    let repo = halted();
    let wt = resolve_shared(&repo, "from a and b\n");
    let out = repo.streams(&["continue"]);
    // What it says, and `status` after it, are in the scene `scenes::continue_after_a_resolution`.
    out.assert_code(0);
    assert_eq!(
        repo.git(&["show", "streams/p/integration:shared.txt"]),
        "from a and b"
    );
    assert_eq!(repo.git(&["show", "streams/p/integration:b/y"]), "yb");
    assert_eq!(repo.git(&["show", "streams/p/integration:a/y"]), "ya");
    let msg = repo.git(&["log", "-1", "--format=%B", "streams/p/integration"]);
    assert!(msg.starts_with("b: Task of b (conflict resolved)"), "{msg}");
    assert!(msg.contains("Streams-Stream: b\nStreams-Task: 1"), "{msg}");
    assert_eq!(
        repo.git(&["rev-list", "--count", "main..streams/p/integration"]),
        "2"
    );
    // The resolution worktree is gone.
    assert!(!wt.exists());
}

#[test]
fn a_resolution_the_person_committed_is_recorded_too() {
    let repo = halted();
    let wt = resolve_shared(&repo, "merged by hand\n");
    repo.git_in(&wt, &["commit", "-q", "-m", "my resolution"]);
    repo.streams(&["continue"]).assert_code(0);
    assert_eq!(
        repo.git(&["show", "streams/p/integration:shared.txt"]),
        "merged by hand"
    );
    assert_eq!(
        repo.git(&["rev-list", "--count", "main..streams/p/integration"]),
        "2"
    );
}

#[test]
fn continue_refuses_while_the_conflict_is_unresolved() {
    let repo = halted();
    let wt = resolution(&repo);
    let tip = repo.git(&["rev-parse", "streams/p/integration"]);

    // Unmerged entries: says which file and how to mark it resolved.
    let out = repo.streams(&["continue"]);
    out.assert_code(3);
    assert!(
        out.stderr
            .contains("error: not resolved yet: shared.txt still unmerged"),
        "{out}"
    );
    assert!(out.stderr.contains("add shared.txt"), "{out}");
    assert!(
        out.stderr.starts_with("error: not resolved yet"),
        "the error comes alone, not after \"continuing run ...\":\n{out}"
    );

    // Marked resolved but the markers are still in the file: says where.
    repo.git_in(&wt, &["add", "shared.txt"]);
    let out = repo.streams(&["continue"]);
    out.assert_code(3);
    assert!(
        out.stderr
            .contains("error: not resolved yet: shared.txt still has conflict markers (line 1)"),
        "{out}"
    );
    assert_eq!(repo.git(&["rev-parse", "streams/p/integration"]), tip);
}

#[test]
fn skip_leaves_the_stream_out_and_keeps_its_branch() {
    let repo = halted();
    let b_branch = repo.git(&["rev-parse", "streams/p/b"]);
    let out = repo.streams(&["skip", "b"]);
    // The person's choice, not a failure (see scenarios::a_conflict_halt_then_skip).
    out.assert_code(0);
    assert!(
        out.stderr
            .contains("skipped b: left out with `streams skip` (its branch is kept)"),
        "{out}"
    );
    assert_eq!(
        repo.git(&["show", "streams/p/integration:shared.txt"]),
        "from a"
    );
    assert!(
        repo.git_output_in(&repo.root, &["cat-file", "-e", "streams/p/integration:b/y"])
            .status
            .code()
            != Some(0)
    );
    assert_eq!(repo.git(&["rev-parse", "streams/p/b"]), b_branch);
    assert!(!resolution(&repo).exists());
}

#[test]
fn skip_of_an_unknown_stream_says_which_exist() {
    let repo = halted();
    let out = repo.streams(&["skip", "nope"]);
    out.assert_code(2);
    assert!(
        out.stderr.contains("there is no stream `nope` in this run"),
        "{out}"
    );
    assert!(out.stderr.contains("hint: the streams are: a, b"), "{out}");
}

#[test]
fn a_stream_whose_base_moved_is_rebased_cleanly() {
    let repo = repo_with_shared();
    // Both start from main; a integrates first, so b's base has moved by the time b lands.
    two_streams(
        &repo,
        r#""commit", "a: y", "append", "shared.txt", "line from a""#,
        r#""write", "b/y", "yb", "commit", "b: y", "write", "b/z", "zb", "commit", "b: z""#,
        "",
    );
    repo.streams(&["run"]).assert_code(0);
    let log = repo.git(&["log", "--format=%s", "main..streams/p/integration"]);
    let subjects: Vec<&str> = log.lines().collect();
    // b's two commits, and one of streams' own for a: its agent left the append to
    // `shared.txt` beyond its commit, so its commit is kept aside, not taken as history.
    assert_eq!(subjects.len(), 3, "{log}");
    assert_eq!(repo.git(&["show", "streams/p/integration:b/z"]), "zb");
    assert_eq!(
        repo.git(&["show", "streams/p/integration:shared.txt"]),
        "line 1\nline 2\nline 3\nline from a"
    );
    // Linear history: every integration commit has one parent.
    assert_eq!(
        repo.git(&["rev-list", "--merges", "main..streams/p/integration"]),
        ""
    );
}

#[test]
fn a_dependency_integrated_meanwhile_moves_the_next_tasks_base() {
    let repo = repo_with_shared();
    plan(
        &repo,
        r#"
[plan]
name = "p"
jobs = 2
sync = "task"
shared = ["shared.txt"]

[[stream]]
name = "a"
owns = ["a/**"]
agent = ["act", "write", "a/{task_index}", "a{task_index}", "append", "shared.txt", "a task {task_index}"]
tasks = ["first", "second"]

[[stream]]
name = "b"
owns = ["b/**"]
agent = ["act", "write", "b/{task_index}", "b{task_index}"]
tasks = ["first", "second"]
"#,
    );
    repo.streams(&["run"]).assert_code(0);
    // Each task was its own sync point; after each, the stream went on from the new tip, so
    // the second task of b sees the first task of a.
    let tree = repo.git(&["ls-tree", "-r", "--name-only", "streams/p/integration"]);
    for f in ["a/1", "a/2", "b/1", "b/2"] {
        assert!(tree.lines().any(|l| l == f), "{f} missing: {tree}");
    }
    assert_eq!(
        repo.git(&["show", "streams/p/integration:shared.txt"]),
        "line 1\nline 2\nline 3\na task 1\na task 2"
    );
    // The original end of each task is kept under refs/streams/p/tasks/.
    assert!(
        repo.git(&["for-each-ref", "refs/streams/p/tasks/"])
            .contains("refs/streams/p/tasks/a/1")
    );
}

#[test]
fn renaming_a_shared_file_merges_with_an_edit_of_it() {
    let repo = repo_with_shared();
    two_streams(
        &repo,
        r#""mv", "docs/guide.md", "docs/manual.md""#,
        r##""write", "docs/guide.md", "# guide\nfirst\nsecond, edited by b""##,
        "",
    );
    repo.streams(&["run"]).assert_code(0);
    let tree = repo.git(&[
        "ls-tree",
        "-r",
        "--name-only",
        "streams/p/integration",
        "docs",
    ]);
    assert_eq!(tree, "docs/manual.md");
    assert_eq!(
        repo.git(&["show", "streams/p/integration:docs/manual.md"]),
        "# guide\nfirst\nsecond, edited by b"
    );
}

#[test]
fn a_binary_shared_file_changed_on_both_sides_halts() {
    let repo = repo_with_shared();
    two_streams(
        &repo,
        r#""binary", "assets/logo.bin""#,
        r#""binary", "assets/logo.bin", "append", "assets/logo.bin", "b's version""#,
        "",
    );
    let out = repo.streams(&["run"]);
    out.assert_code(3);
    assert!(
        out.stderr
            .contains("parked b: integrating it conflicts in assets/logo.bin"),
        "{out}"
    );
    let diff = std::fs::read_to_string(
        run_dir(&repo).join("conflicts/b/files/assets/logo.bin.stream.diff"),
    )
    .unwrap();
    assert!(
        diff.contains("Binary file assets/logo.bin differs"),
        "{diff}"
    );
}

#[test]
fn adding_the_same_shared_file_twice_halts() {
    let repo = repo_with_shared();
    two_streams(
        &repo,
        r#""write", "docs/new.md", "a's new doc""#,
        r#""write", "docs/new.md", "b's new doc""#,
        "",
    );
    let out = repo.streams(&["run"]);
    out.assert_code(3);
    assert!(out.stderr.contains("conflicts in docs/new.md"), "{out}");
}

#[test]
fn deleting_what_another_stream_edits_halts() {
    let repo = repo_with_shared();
    two_streams(
        &repo,
        r#""rm", "shared.txt""#,
        r#""append", "shared.txt", "b was here""#,
        "",
    );
    let out = repo.streams(&["run"]);
    out.assert_code(3);
    assert!(out.stderr.contains("conflicts in shared.txt"), "{out}");
}

fn final_tree(strategy: &str) -> (String, String) {
    let repo = repo_with_shared();
    plan(
        &repo,
        &format!(
            r#"
[plan]
name = "p"
jobs = 2
merge = "{strategy}"
shared = ["shared.txt"]

[[stream]]
name = "a"
owns = ["a/**"]
agent = ["act", "write", "a/{{task_index}}", "a", "commit", "a commit {{task_index}}", "write", "a/left{{task_index}}", "left"]
tasks = ["first", "second"]

[[stream]]
name = "b"
owns = ["b/**"]
agent = ["act", "write", "b/y", "b", "append", "shared.txt", "b was here"]
tasks = ["only"]
"#
        ),
    );
    repo.streams(&["run"]).assert_code(0);
    let tree = repo.git(&["rev-parse", "streams/p/integration^{tree}"]);
    let merges = repo.git(&[
        "rev-list",
        "--count",
        "--merges",
        "main..streams/p/integration",
    ]);
    (tree, merges)
}

#[test]
fn all_three_merge_strategies_give_the_same_tree() {
    let (rebase, rebase_merges) = final_tree("rebase");
    let (merge, merge_merges) = final_tree("merge");
    let (squash, squash_merges) = final_tree("squash");
    assert_eq!(rebase, merge);
    assert_eq!(rebase, squash);
    assert_eq!(rebase_merges, "0");
    assert_eq!(merge_merges, "2");
    assert_eq!(squash_merges, "0");
}

#[test]
fn squash_makes_one_commit_per_stream_listing_its_tasks() {
    let repo = repo_with_shared();
    plan(
        &repo,
        r#"
[plan]
name = "p"
jobs = 1
merge = "squash"

[[stream]]
name = "a"
owns = ["a/**"]
agent = ["act", "write", "a/{task_index}", "a", "commit", "a commit {task_index}"]
tasks = ["first task", "second task"]
"#,
    );
    repo.streams(&["run"]).assert_code(0);
    assert_eq!(
        repo.git(&["rev-list", "--count", "main..streams/p/integration"]),
        "1"
    );
    let msg = repo.git(&["log", "-1", "--format=%B", "streams/p/integration"]);
    assert_eq!(
        msg,
        "a: tasks 1-2\n\n- task 1: first task\n- task 2: second task\n\nStreams-Stream: a\nStreams-Task: 1\nStreams-Task: 2"
    );
}

#[test]
fn plan_predict_names_the_conflicts_ahead() {
    let repo = repo_with_shared();
    conflicting(&repo);
    let before = repo.streams(&["plan", "--predict"]);
    before.assert_code(0);
    assert!(
        before
            .stdout
            .contains("conflict prediction: no stream branch has work yet"),
        "{before}"
    );

    repo.streams(&["run"]).assert_code(3);
    let refs = repo.refs();
    let out = repo.streams(&["plan", "--predict"]);
    out.assert_code(0);
    assert!(out.stdout.contains("conflict prediction: 2 stream branches and the integration tip, 2 pairs merged in memory"), "{out}");
    assert!(out.stdout.contains("  a <-> b: shared.txt"), "{out}");
    assert!(
        out.stdout.contains("  b <-> integration: shared.txt"),
        "{out}"
    );
    // Predicting writes nothing.
    assert_eq!(repo.refs(), refs);
    let json: serde_json::Value =
        serde_json::from_str(&repo.streams(&["plan", "--predict", "--json"]).stdout).unwrap();
    let conflicts = json["predicted_conflicts"]["conflicts"].as_array().unwrap();
    assert_eq!(conflicts.len(), 2);
    assert_eq!(conflicts[0]["files"][0], "shared.txt");
    // Without --predict the JSON has no such field.
    let json: serde_json::Value =
        serde_json::from_str(&repo.streams(&["plan", "--json"]).stdout).unwrap();
    assert!(json.get("predicted_conflicts").is_none());
}

#[test]
fn with_sync_per_task_the_next_task_goes_on_after_a_resolved_conflict() {
    let repo = repo_with_shared();
    plan(
        &repo,
        r#"
[plan]
name = "p"
jobs = 2
sync = "task"
shared = ["shared.txt"]

[[stream]]
name = "a"
owns = ["a/**"]
agent = ["act", "write", "a/y", "ya", "write", "shared.txt", "from a"]
tasks = ["a's only task"]

[[stream]]
name = "b"
owns = ["b/**"]
agent = ["act", "wait-rev", "streams/p/integration:a/y", "write", "b/{task_index}", "b{task_index}", "write", "shared.txt", "from b {task_index}"]
tasks = ["b first", "b second"]
"#,
    );
    repo.streams(&["run"]).assert_code(3);
    resolve_shared(&repo, "from a, then b\n");
    let out = repo.streams(&["continue"]);
    out.assert_code(0);
    // b's second task started from the resolved tip: it saw the resolution and built on it.
    assert!(out.stderr.contains("started b (task 2/2)"), "{out}");
    assert_eq!(
        repo.git(&["show", "streams/p/integration:shared.txt"]),
        "from b 2"
    );
    assert_eq!(repo.git(&["show", "streams/p/integration:b/1"]), "b1");
    assert_eq!(repo.git(&["show", "streams/p/integration:b/2"]), "b2");
    let subjects = repo.git(&["log", "--format=%s", "main..streams/p/integration"]);
    assert_eq!(
        subjects,
        "b second\nb: b first (conflict resolved)\na's only task"
    );
}

#[test]
fn worktree_root_moves_the_worktrees() {
    let repo = repo_with_shared();
    plan(
        &repo,
        r#"
[plan]
name = "p"
worktree_root = "../wt"

[[stream]]
name = "a"
owns = ["a/**"]
agent = ["act", "write", "a/y", "y"]
tasks = ["t"]
"#,
    );
    repo.streams(&["run"]).assert_code(0);
    let wt = repo.root.parent().unwrap().join("wt/p/a");
    assert!(wt.join(".git").is_dir(), "no workspace at {}", wt.display());
    assert_eq!(
        repo.git_in(&wt, &["rev-parse", "HEAD"]),
        repo.git(&["rev-parse", "streams/p/a"])
    );
}

#[test]
fn continue_refuses_a_resolution_that_drops_the_streams_work() {
    let repo = halted();
    let wt = resolution(&repo);
    let tip = repo.git(&["rev-parse", "streams/p/integration"]);
    // Starting over the natural way throws away b's clean changes (b/y) as well.
    repo.git_in(&wt, &["reset", "-q", "--hard"]);
    let out = repo.streams(&["continue"]);
    out.assert_code(3);
    assert!(
        out.stderr
            .contains("error: the resolution drops all of stream `b`'s work"),
        "{out}"
    );
    assert!(out.stderr.contains("streams skip b"), "{out}");
    assert_eq!(repo.git(&["rev-parse", "streams/p/integration"]), tip);

    // Resolving the conflict but losing b's clean change is refused too.
    std::fs::write(wt.join("shared.txt"), "from a and b\n").unwrap();
    let out = repo.streams(&["continue"]);
    out.assert_code(3);
    assert!(
        out.stderr
            .contains("error: the resolution changes files that merged cleanly: b/y"),
        "{out}"
    );

    // Unless the person says so.
    let out = repo.streams(&["continue", "--force"]);
    out.assert_code(0);
    assert_eq!(
        repo.git(&["show", "streams/p/integration:shared.txt"]),
        "from a and b"
    );
    assert!(
        repo.git_output_in(&repo.root, &["cat-file", "-e", "streams/p/integration:b/y"])
            .status
            .code()
            != Some(0)
    );
}

#[test]
fn a_run_refuses_to_move_a_branch_checked_out_where_a_person_works() {
    let repo = repo_with_shared();
    two_streams(&repo, r#""say", "a""#, r#""write", "b/y", "yb""#, "");
    repo.streams(&["run"]).assert_code(0);
    // The person looks at the result in their own checkout, then runs the plan again.
    repo.git(&["switch", "-q", "streams/p/integration"]);
    let refs = repo.refs();
    let out = repo.streams(&["run"]);
    out.assert_code(2);
    assert!(
        out.stderr.contains(
            "error: streams/p/integration is checked out in [REPO]; a run moves that branch"
                .replace("[REPO]", &repo.root.display().to_string())
                .as_str()
        ),
        "{out}"
    );
    assert!(
        out.stderr
            .contains("hint: switch that checkout to another branch first"),
        "{out}"
    );
    assert_eq!(repo.refs(), refs);
    assert_eq!(repo.git(&["status", "--porcelain"]), "?? streams.toml");
}

#[test]
fn moving_worktree_root_between_runs_moves_the_worktrees() {
    let repo = repo_with_shared();
    two_streams(&repo, r#""say", "a""#, r#""write", "b/y", "yb""#, "");
    repo.streams(&["run"]).assert_code(0);
    // The same plan with its worktrees somewhere else.
    let text = repo
        .read("streams.toml")
        .replace("jobs = 2", "jobs = 2\nworktree_root = \"../elsewhere\"");
    plan(&repo, &text);
    repo.streams(&["run", "--restart"]).assert_code(0);
    let elsewhere = repo.root.parent().unwrap().join("elsewhere/p");
    assert!(elsewhere.join("a/.git").is_dir() && elsewhere.join("b/.git").is_dir());
}

/// A person deletes the resolution worktree (`rm -rf`, or `git worktree remove`): `continue`
/// lays it out again, says so, and the conflict can then be resolved there as before.
#[test]
fn continue_after_the_resolution_worktree_was_deleted_lays_it_out_again() {
    let repo = halted();
    let wt = resolution(&repo);
    let marked = std::fs::read_to_string(wt.join("shared.txt")).unwrap();
    std::fs::remove_dir_all(&wt).unwrap();

    // `status` does not send the person to a directory that is gone.
    let status = repo.streams(&["status"]);
    assert!(
        status.stdout_redacted().contains(
            "  resolve in:      [REPO].streams/p/.resolve-b (deleted: `streams continue` lays it out again)"
        ),
        "{status}"
    );

    let out = repo.streams(&["continue"]);
    out.assert_code(3);
    let stderr = out.stderr_redacted();
    assert!(
        stderr.contains("error: the resolution worktree [REPO].streams/p/.resolve-b was deleted: it is laid out again with the conflicts in shared.txt"),
        "{out}"
    );
    assert!(
        stderr.contains("hint: resolve them in [REPO].streams/p/.resolve-b, mark them resolved with `git -C [REPO].streams/p/.resolve-b add shared.txt`, then run `streams continue b`"),
        "{out}"
    );
    // As the halt left it: the markers, the file unmerged.
    assert_eq!(
        std::fs::read_to_string(wt.join("shared.txt")).unwrap(),
        marked
    );
    assert_eq!(
        repo.git_in(&wt, &["diff", "--name-only", "--diff-filter=U"]),
        "shared.txt"
    );
    repo.streams(&["continue"]).assert_code(3);

    std::fs::write(wt.join("shared.txt"), "from a and b\n").unwrap();
    repo.git_in(&wt, &["add", "shared.txt"]);
    repo.streams(&["continue"]).assert_code(0);
    assert_eq!(
        repo.git(&["show", "streams/p/integration:shared.txt"]),
        "from a and b"
    );
}

/// Something at the resolution worktree's path that is not a worktree any more may hold a
/// person's edits: `continue` does not touch it and says what to do.
#[test]
fn continue_refuses_a_resolution_worktree_that_is_no_longer_one() {
    let repo = halted();
    let wt = resolution(&repo);
    std::fs::remove_file(wt.join(".git")).unwrap();
    std::fs::write(wt.join("shared.txt"), "my edits\n").unwrap();

    let out = repo.streams(&["continue"]);
    out.assert_code(5);
    let stderr = out.stderr_redacted();
    assert!(
        stderr.contains(
            "error: the resolution worktree [REPO].streams/p/.resolve-b is no longer a git worktree"
        ),
        "{out}"
    );
    assert!(
        stderr.contains("hint: move that directory out of the way"),
        "{out}"
    );
    assert_eq!(
        std::fs::read_to_string(wt.join("shared.txt")).unwrap(),
        "my edits\n"
    );
    // Moved away, it is laid out anew.
    std::fs::rename(&wt, wt.with_extension("mine")).unwrap();
    repo.streams(&["continue"]).assert_code(3);
    assert!(wt.join(".git").exists());
}
