//! How much work the one reader of a workspace does (issue 23's fast path): counted, not timed.
//! Each read logs what it did (`read <workspace>: N files, S skipped, H hashed ...` under
//! `STREAMS_LOG=streams::workspace=debug`); these tests hold streams to reading only what its
//! record cannot vouch for. And what becomes of an agent's own commits that do not end in its
//! work.

use crate::common::TestRepo;

/// What one read did, parsed from its log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Counts {
    files: usize,
    skipped: usize,
    hashed: usize,
}

/// Every read's counts, in order, from a run's debug log.
fn reads(stderr: &str) -> Vec<Counts> {
    stderr
        .lines()
        .filter_map(|line| {
            let (_, rest) = line.split_once(" read /")?;
            let (_, counts) = rest.split_once(": ")?;
            let numbers: Vec<usize> = counts
                .split(", ")
                .take(3)
                .filter_map(|part| part.split(' ').next()?.parse().ok())
                .collect();
            match numbers[..] {
                [files, skipped, hashed] => Some(Counts {
                    files,
                    skipped,
                    hashed,
                }),
                _ => None,
            }
        })
        .collect()
}

/// `a/` with 200 files, `b/` with 100, one stream per directory.
fn many_files() -> TestRepo {
    let repo = TestRepo::empty();
    for i in 0..200 {
        repo.write(&format!("a/d{}/f{i}.txt", i % 10), &format!("a {i}\n"));
    }
    for i in 0..100 {
        repo.write(&format!("b/f{i}.txt"), &format!("b {i}\n"));
    }
    repo.commit_all("initial");
    repo
}

fn plan(repo: &TestRepo, agent: &str) {
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
agent = {agent}
tasks = ["Work on a"]
"#
        ),
    );
    repo.commit_all("plan");
}

fn run_logged(repo: &TestRepo, args: &[&str]) -> crate::common::CmdOutput {
    let out = repo
        .streams_cmd(args)
        .env("STREAMS_LOG", "streams::workspace=debug")
        .output()
        .unwrap();
    crate::common::CmdOutput::new(out, repo)
}

/// The files of the repository: 300 under `a/` and `b/`, and the plan.
const TRACKED: usize = 301;

/// A task that edits 2 files and adds 1 in a fresh workspace: its read hashes those 3 and
/// takes every other file from the record (the checkout's own `lstat`, before the boundary);
/// run again, the reused workspace's read hashes nothing, and the task's read the 3 again.
#[test]
fn a_read_hashes_only_the_files_the_agent_wrote() {
    let repo = many_files();
    plan(
        &repo,
        r#"["act", "write", "a/d1/f1.txt", "new 1", "write", "a/d2/f2.txt", "new 2", "write", "a/new.txt", "new"]"#,
    );
    let out = run_logged(&repo, &["run"]);
    out.assert_code(0);
    let cold = reads(&out.stderr);
    assert_eq!(
        cold,
        [Counts {
            files: TRACKED + 1,
            skipped: TRACKED - 2,
            hashed: 3,
        }],
        "a fresh workspace is read once, after its task:\n{}",
        out.stderr
    );
    assert_eq!(
        repo.git(&["show", "streams/p/integration:a/new.txt"]),
        "new"
    );

    let out = run_logged(&repo, &["run", "--restart"]);
    out.assert_code(0);
    let warm = reads(&out.stderr);
    assert_eq!(
        warm,
        [
            // The reused workspace, at the last task's end: as recorded.
            Counts {
                files: TRACKED + 1,
                skipped: TRACKED + 1,
                hashed: 0,
            },
            // The task, from the start again.
            Counts {
                files: TRACKED + 1,
                skipped: TRACKED - 2,
                hashed: 3,
            },
        ],
        "{}",
        out.stderr
    );
}

/// A file changed behind streams' back between two runs (its change time after the record's
/// boundary) is read, found, and kept; nothing else is hashed.
#[test]
fn a_file_changed_between_runs_is_read_and_kept() {
    let repo = many_files();
    plan(&repo, r#"["act", "write", "a/out.txt", "out"]"#);
    repo.streams(&["run"]).assert_code(0);
    let ws = repo.root.parent().unwrap().join("repo.streams/p/a");
    let ws = if ws.is_dir() {
        ws
    } else {
        repo.common_dir().join("streams/worktrees/p/a")
    };
    std::fs::write(ws.join("b/f7.txt"), "edited by a person\n").unwrap();
    let out = run_logged(&repo, &["run", "--restart"]);
    out.assert_code(0);
    let counts = reads(&out.stderr);
    assert_eq!(counts.len(), 2, "{}", out.stderr);
    assert_eq!(counts[0].hashed, 1, "{}", out.stderr);
    assert_eq!(counts[1].hashed, 1, "{}", out.stderr);
    assert!(out.stderr.contains("uncommitted work found"), "{out}");
    let kept = repo.git(&["for-each-ref", "--format=%(refname)", "refs/streams/p/wip/"]);
    assert!(!kept.is_empty(), "{out}");
    assert_eq!(
        repo.git(&["show", &format!("{kept}:b/f7.txt")]),
        "edited by a person"
    );
}

/// Issue 23: the agent's own commits are the task's history only when the last one holds what
/// its files hold. An agent that commits one file and leaves another uncommitted gets one
/// commit of streams' own of both, and its commit is kept on `agent/`.
#[test]
fn an_agents_commits_that_do_not_end_in_its_files_are_kept_aside() {
    let repo = many_files();
    plan(
        &repo,
        r#"["act", "write", "a/x.txt", "x", "commit", "a: x", "write", "a/y.txt", "y"]"#,
    );
    let out = repo.streams(&["run"]);
    out.assert_code(0);
    assert_eq!(
        repo.git(&["rev-list", "--count", "main..streams/p/a"]),
        "1",
        "{out}"
    );
    assert_eq!(
        repo.git(&["log", "-1", "--format=%s", "streams/p/a"]),
        "Work on a"
    );
    assert_eq!(repo.git(&["show", "streams/p/a:a/x.txt"]), "x");
    assert_eq!(repo.git(&["show", "streams/p/a:a/y.txt"]), "y");
    assert_eq!(
        repo.git(&["log", "-1", "--format=%s", "refs/streams/p/agent/a/1"]),
        "a: x",
        "{out}"
    );
    assert!(
        out.stderr
            .contains("its agent left work beyond its last commit"),
        "{out}"
    );
}

/// And an agent whose last commit holds all its work keeps its commits as the history.
#[test]
fn an_agents_commits_that_end_in_its_files_are_the_history() {
    let repo = many_files();
    plan(
        &repo,
        r#"["act", "write", "a/x.txt", "x", "commit", "a: x", "write", "a/y.txt", "y", "commit", "a: y"]"#,
    );
    let out = repo.streams(&["run"]);
    out.assert_code(0);
    assert_eq!(
        repo.git(&["log", "--format=%s", "main..streams/p/a"]),
        "a: y\na: x",
        "{out}"
    );
    assert!(
        repo.git(&["for-each-ref", "refs/streams/p/agent/"])
            .is_empty(),
        "{out}"
    );
}

/// Every workspace move a run's debug log tells (`moved <workspace> to <commit> in process: W
/// written, R removed`): (written, removed).
fn moves(stderr: &str) -> Vec<(usize, usize)> {
    stderr
        .lines()
        .filter_map(|line| {
            let (_, rest) = line.split_once(" in process: ")?;
            let mut numbers = rest
                .split(", ")
                .take(2)
                .filter_map(|part| part.split(' ').next()?.parse().ok());
            Some((numbers.next()?, numbers.next()?))
        })
        .collect()
}

/// A reused workspace is moved on to the new start in process by the files that differ, and by
/// nothing else: no git checkout runs, and the next read still hashes only what the agent wrote
/// (the record holds the `lstat` of each file the move wrote).
#[test]
fn a_reused_workspace_is_moved_by_the_files_that_differ_in_process() {
    let repo = many_files();
    plan(
        &repo,
        r#"["act", "write", "a/d1/f1.txt", "new 1", "write", "a/d2/f2.txt", "new 2", "write", "a/new.txt", "new"]"#,
    );
    repo.streams(&["run"]).assert_code(0);
    // Run again from the same base: the workspace is at the last task's end, 2 files changed
    // and 1 added beyond the new start.
    let out = repo
        .streams_cmd(&["run", "--restart"])
        .env("STREAMS_LOG", "streams::workspace=debug,streams::git=debug")
        .output()
        .unwrap();
    let out = crate::common::CmdOutput::new(out, &repo);
    out.assert_code(0);
    assert_eq!(moves(&out.stderr), [(2, 1)], "{}", out.stderr);
    assert!(
        !out.stderr.contains("git read-tree"),
        "a git checkout ran:\n{}",
        out.stderr
    );
    let counts = reads(&out.stderr);
    assert_eq!(counts.len(), 2, "{}", out.stderr);
    assert_eq!(counts[1].hashed, 3, "{}", out.stderr);
    assert_eq!(counts[1].skipped, TRACKED - 2, "{}", out.stderr);
    assert_eq!(
        repo.git(&["show", "streams/p/integration:a/d1/f1.txt"]),
        "new 1"
    );
}

/// What stands in the way of the move makes streams decline it before writing anything, and
/// git's checkout does the work as before: here an ignored file where the new start has a
/// tracked one (the move writes nothing over a file it does not know).
#[test]
fn a_move_declines_over_a_file_it_does_not_know() {
    let repo = many_files();
    repo.write(".gitignore", "*.log\n");
    repo.commit_all("ignore logs");
    plan(&repo, r#"["act", "write", "a/out.txt", "out"]"#);
    repo.streams(&["run"]).assert_code(0);
    let ws = repo.workspaces("p").join("a");
    std::fs::write(ws.join("b/kept.log"), "a person's log\n").unwrap();
    // The next start tracks `b/kept.log`.
    repo.write("b/kept.log", "tracked now\n");
    repo.git(&["add", "-f", "b/kept.log"]);
    repo.commit_all("track the log");
    let out = run_logged(&repo, &["run", "--restart"]);
    out.assert_code(0);
    assert!(moves(&out.stderr).is_empty(), "{}", out.stderr);
    assert_eq!(
        std::fs::read_to_string(ws.join("b/kept.log")).unwrap(),
        "tracked now\n"
    );
}
