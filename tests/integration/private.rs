//! Stream workspaces are private repositories: what an agent's own git commands (and the
//! processes it leaves behind) can and cannot reach. One test per finding of the adversarial
//! trial (issue 11); each failed before workspaces stopped being linked worktrees.

use std::time::Duration;

use crate::common::{assert_gone, wait_for};
use crate::support::trial::{assert_fsck_clean, integrated, show, trial_plan, trial_repo};

/// Finding 1: `git gc --prune=now` in a workspace prunes the workspace's objects only. An
/// unreachable object of the user's (here a blob written with `hash-object -w`, as an editor
/// integration or `git add` would) survives, and the run's own objects all stay readable.
#[test]
fn gc_in_a_workspace_cannot_prune_the_users_objects() {
    let repo = trial_repo();
    let loose = repo.root.join("users-blob.txt");
    std::fs::write(&loose, "the user's unreachable blob\n").unwrap();
    let blob = repo.git(&["hash-object", "-w", loose.to_str().unwrap()]);
    std::fs::remove_file(&loose).unwrap();
    trial_plan(
        &repo,
        "for i in 1 2 3; do git gc -q --prune=now; git commit -q --allow-empty -m gc$i; done",
        "sync = \"task\"",
    );
    let out = repo.streams(&["run"]);
    out.assert_code(0);
    assert!(
        repo.git_output_in(&repo.root, &["cat-file", "-e", &blob])
            .status
            .success(),
        "the user's object was pruned by the agent's gc"
    );
    assert_fsck_clean(&repo);
    assert_eq!(integrated(&repo, "a/done.txt"), "a");
    assert_eq!(integrated(&repo, "b/done.txt"), "b");
}

/// Finding 2: branch, tag and ref commands reach only the workspace's own refs.
#[test]
fn an_agents_ref_commands_cannot_move_the_users_refs() {
    let repo = trial_repo();
    repo.git(&["tag", "v1"]);
    let main = repo.git(&["rev-parse", "main"]);
    repo.git(&["update-ref", "refs/streams/q/kept/x", &main]);
    trial_plan(
        &repo,
        "git commit -q --allow-empty -m mine; \
         git branch -f feature HEAD; git update-ref refs/heads/main HEAD; git tag -f v1 HEAD; \
         git update-ref -d refs/streams/q/kept/x; \
         git --git-dir=\"$(git rev-parse --git-common-dir)\" symbolic-ref HEAD refs/heads/evil; \
         git symbolic-ref HEAD refs/heads/streams/p/a",
        "",
    );
    let before = repo.refs();
    let head = repo.git(&["symbolic-ref", "HEAD"]);
    let out = repo.streams(&["run"]);
    out.assert_code(0);
    let after = repo.refs();
    for line in before.lines().filter(|l| !l.contains("streams/p/")) {
        assert!(after.contains(line), "{line} changed:\n{after}");
    }
    assert_eq!(repo.git(&["symbolic-ref", "HEAD"]), head);
    assert_eq!(integrated(&repo, "a/done.txt"), "a");
}

/// Finding 3: `git stash` / `git stash pop` in a clean workspace finds the workspace's stash
/// (empty), never the user's.
#[test]
fn an_agents_stash_pop_cannot_take_the_users_stash() {
    let repo = trial_repo();
    repo.write("c/f.txt", "the user's unfinished change\n");
    repo.git(&["stash", "-q"]);
    let stash = repo.git(&["rev-parse", "refs/stash"]);
    trial_plan(&repo, "git stash -q || true; git stash pop -q || true", "");
    repo.streams(&["run"]).assert_code(0);
    assert_eq!(repo.git(&["rev-parse", "refs/stash"]), stash);
    assert_eq!(integrated(&repo, "c/f.txt"), "c");
}

/// Finding 4: the run's copy of its plan is checked on resume; a widened `owns` there is
/// refused, and the out-of-lane file is never integrated.
#[test]
fn a_plan_copy_changed_during_the_run_is_refused_on_resume() {
    let repo = trial_repo();
    let release = repo.root.parent().unwrap().join("release");
    let started = repo.root.parent().unwrap().join("started");
    trial_plan(
        &repo,
        &format!(
            "echo evil > c/evil.txt; touch {}; while [ ! -e {} ]; do sleep 0.05; done",
            started.display(),
            release.display()
        ),
        "",
    );
    let mut child = repo.streams_cmd(&["run"]).spawn().unwrap();
    wait_for("a's agent", Duration::from_secs(20), || {
        started.exists().then_some(())
    });
    let runs = repo.common_dir().join("streams/runs");
    let entry = std::fs::read_dir(&runs).unwrap().next().unwrap().unwrap();
    let copy = entry.path().join("plan.toml");
    let widened = std::fs::read_to_string(&copy)
        .unwrap()
        .replace(r#"owns = ["a/**"]"#, r#"owns = ["a/**", "c/**"]"#);
    std::fs::write(&copy, widened).unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    std::fs::write(&release, "").unwrap();
    let out = repo.streams(&["resume"]);
    out.assert_code(5);
    assert!(
        out.stderr.contains("the run's copy of its plan")
            && out.stderr.contains("was changed since the run started"),
        "{out}"
    );
    assert!(show(&repo, "streams/p/integration:c/evil.txt").is_none());
}

/// Finding 5: a background process that keeps staging a file outside the stream's lane
/// cannot slip it in between the ownership check and the commit: it is dead before the check,
/// and the commit is built from the checked paths, not the agent's index.
#[test]
fn a_background_writer_cannot_slip_a_file_past_the_check() {
    let repo = trial_repo();
    trial_plan(
        &repo,
        "git commit -q --allow-empty -m start; \
         setsid sh -c 'sleep 0.2; while :; do echo evil > c/evil.txt; git add c/evil.txt 2>/dev/null; done' \
         </dev/null >/dev/null 2>&1 &",
        "",
    );
    let out = repo.streams(&["run"]);
    assert!(out.code == Some(0) || out.code == Some(4), "{out}");
    assert!(
        show(&repo, "streams/p/integration:c/evil.txt").is_none(),
        "{out}"
    );
}

/// Finding 7: config the agent sets in its workspace (hooks, identity, `core.bare`,
/// `core.worktree`) stays there; the user's config and checkout are untouched, and the next
/// run works.
#[test]
fn an_agents_git_config_stays_in_its_workspace() {
    let repo = trial_repo();
    let config = std::fs::read(repo.common_dir().join("config")).unwrap();
    trial_plan(
        &repo,
        "git config core.hooksPath /tmp/evil-hooks; git config user.name Evil; \
         git config core.worktree /tmp; git rm -q --cached a/f.txt; git config core.bare true",
        "",
    );
    repo.streams(&["run"]).assert_code(0);
    assert_eq!(
        std::fs::read(repo.common_dir().join("config")).unwrap(),
        config
    );
    assert_eq!(repo.git(&["status", "--porcelain"]), "?? streams.toml");
    // Committed as the files are: the agent's `rm --cached` (its index) is not what is checked.
    assert_eq!(integrated(&repo, "a/f.txt"), "a");
    let author = repo.git(&["log", "-1", "--format=%an", "streams/p/integration"]);
    assert_ne!(author, "Evil");
    repo.streams(&["run", "--restart"]).assert_code(0);
}

/// Finding 8: moving another stream's branch reaches the workspace's own ref of that name;
/// stream `b`, running meanwhile, is not blamed and integrates.
#[test]
fn an_agent_cannot_move_another_streams_branch() {
    let repo = trial_repo();
    let moved = repo.root.parent().unwrap().join("moved");
    repo.write(
        "streams.toml",
        &format!(
            r#"
[plan]
name = "p"
jobs = 2

[[stream]]
name = "a"
owns = ["a/**"]
agent = ["act", "wait-rev", "refs/heads/streams/p/b", "sh", "git commit -q --allow-empty -m elsewhere; git update-ref refs/heads/streams/p/b HEAD; touch {moved}", "write", "a/done.txt", "a"]
tasks = ["Work on a"]

[[stream]]
name = "b"
owns = ["b/**"]
agent = ["act", "wait-for", "{moved}", "write", "b/done.txt", "b", "commit", "b's work"]
tasks = ["Work on b"]
"#,
            moved = moved.display()
        ),
    );
    let out = repo.streams(&["run"]);
    out.assert_code(0);
    assert!(!out.stderr.contains("rewr"), "{out}");
    assert_eq!(integrated(&repo, "b/done.txt"), "b");
    assert_eq!(integrated(&repo, "a/done.txt"), "a");
}

/// Finding 9: a nested repository fails the task, naming its path; its files are kept in the
/// user's repository (not only a gitlink to a commit nobody else has).
#[test]
fn a_nested_repository_fails_the_task_and_its_content_is_kept() {
    let repo = trial_repo();
    trial_plan(
        &repo,
        "git init -q a/sub && echo nested > a/sub/n.txt && \
         git -C a/sub add n.txt && git -C a/sub commit -q -m nested",
        "",
    );
    let out = repo.streams(&["run"]);
    out.assert_code(4);
    assert!(
        out.stderr.contains("a/sub") && out.stderr.contains("nested repository"),
        "{out}"
    );
    let kept = repo.git(&["for-each-ref", "--format=%(refname)", "refs/streams/p/"]);
    let kept = kept
        .lines()
        .find(|r| r.contains("/a/1"))
        .unwrap_or_else(|| panic!("nothing kept: {kept}"));
    assert_eq!(
        show(&repo, &format!("{kept}:a/sub/n.txt")).unwrap(),
        "nested"
    );
}

/// Finding 10: processes an agent leaves running (even in a session of their own, with its
/// output closed and its environment cleared) die with its task.
#[test]
fn processes_an_agent_leaves_behind_die_with_its_task() {
    let repo = trial_repo();
    let pids = repo.root.parent().unwrap().join("pids");
    trial_plan(
        &repo,
        &format!(
            "setsid sh -c 'while :; do sleep 0.05; done' </dev/null >/dev/null 2>&1 & echo $! >> {p}; \
             env -i /bin/sh -c 'setsid sh -c \"while :; do sleep 0.05; done\" </dev/null >/dev/null 2>&1 & echo $! >> {p}'",
            p = pids.display()
        ),
        "",
    );
    repo.streams(&["run"]).assert_code(0);
    let pids: Vec<i32> = std::fs::read_to_string(&pids)
        .unwrap()
        .lines()
        .map(|l| l.trim().parse().unwrap())
        .collect();
    assert_eq!(pids.len(), 2);
    for pid in pids {
        // Killed before `streams run` returned; a moment for the kernel to collect it.
        assert_gone(pid, "the stray to be gone");
    }
}

/// Finding 11: variables that redirect git never reach an agent, whether from streams' own
/// environment or the plan's `env` (refused by the plan, or dropped): the agent commits in
/// its workspace, never on the user's branch.
#[test]
fn git_redirecting_variables_never_reach_an_agent() {
    let repo = trial_repo();
    let seen = repo.root.parent().unwrap().join("seen");
    let git_dir = repo.common_dir();
    trial_plan(
        &repo,
        &format!(
            "env | grep '^GIT_DIR\\|^GIT_WORK_TREE\\|^GIT_INDEX_FILE' > {} || true; \
             git commit -q --allow-empty -m 'where does this go'",
            seen.display()
        ),
        "",
    );
    let main = repo.git(&["rev-parse", "main"]);
    let out = repo
        .streams_cmd(&["run"])
        .env(
            "GIT_INDEX_FILE",
            repo.root.parent().unwrap().join("evil-index"),
        )
        .env("GIT_WORK_TREE", &repo.root)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(std::fs::read_to_string(&seen).unwrap(), "");
    assert_eq!(repo.git(&["rev-parse", "main"]), main);

    // The same through the plan's `env`.
    let text = repo.read("streams.toml").replace(
        "tasks = [\"Work on a\"]",
        &format!(
            "tasks = [\"Work on a\"]\nenv = {{ GIT_DIR = \"{}\" }}",
            git_dir.display()
        ),
    );
    repo.write("streams.toml", &text);
    let out = repo.streams(&["run"]);
    assert!(out.code == Some(0) || out.code == Some(2), "{out}");
    assert_eq!(repo.git(&["rev-parse", "main"]), main);
}

/// Finding 12: an agent that replaces its workspace's `.git` with a link to the user's
/// repository still gets a commit of its files (streams reads the files, not the workspace's
/// git), the user's repository is untouched, and the next run lays the workspace out again.
#[test]
fn an_agent_that_breaks_its_git_dir_does_not_wedge_the_stream() {
    let repo = trial_repo();
    trial_plan(
        &repo,
        &format!(
            "echo work > a/x.txt; rm -rf .git; echo 'gitdir: {}' > .git",
            repo.common_dir().display()
        ),
        "",
    );
    let out = repo.streams(&["run"]);
    out.assert_code(0);
    assert_eq!(integrated(&repo, "a/x.txt"), "work");
    assert_eq!(integrated(&repo, "a/done.txt"), "a");
    // The user's repository is as it was; the next run works.
    assert_eq!(repo.git(&["status", "--porcelain"]), "?? streams.toml");
    trial_plan(&repo, "true", "");
    repo.streams(&["run", "--restart"]).assert_code(0);
}

/// Finding 1, its second half: lock files a git of the agent's left behind (as a killed git
/// does) make streams' own git commands fail; the agent is dead by then, so they are stale and
/// removed, and the task's work is committed.
#[test]
fn lock_files_an_agent_leaves_do_not_fail_its_task() {
    let repo = trial_repo();
    trial_plan(
        &repo,
        "echo x > a/x.txt; d=$(git rev-parse --git-dir); touch \"$d/index.lock\" \"$d/HEAD.lock\"",
        "",
    );
    let out = repo.streams(&["run"]);
    out.assert_code(0);
    assert_eq!(integrated(&repo, "a/x.txt"), "x");
}

/// The agent's commits reach the user's repository only object by object, each hashed again: an
/// object the agent overwrote with another's content (a loose file that does not hash to its
/// name) is refused, and never reaches the user's repository; the task's files are committed by
/// streams instead, and the run says why its agent's commits were not taken.
#[test]
fn an_object_that_does_not_hold_what_its_name_says_is_not_copied() {
    let repo = trial_repo();
    trial_plan(
        &repo,
        "echo mine > a/x.txt && git add a/x.txt && git commit -qm x \
         && b=$(git rev-parse HEAD:a/x.txt) && o=$(echo other | git hash-object -w --stdin) \
         && f=.git/objects/$(echo $b | cut -c1-2)/$(echo $b | cut -c3-) \
         && chmod u+w $f && cp .git/objects/$(echo $o | cut -c1-2)/$(echo $o | cut -c3-) $f \
         && echo $b > ../forged-id",
        "",
    );
    let out = repo.streams(&["run"]);
    out.assert_code(0);
    assert!(
        out.stderr.contains("does not hold what its name says"),
        "{out}"
    );
    let forged =
        std::fs::read_to_string(repo.workspaces("p").join("forged-id")).unwrap_or_default();
    let forged = forged.trim();
    assert_eq!(forged.len(), 40, "the agent wrote the id it forged");
    // The blob of `mine` is the id it forged: the user's repository has it, with what its name
    // says, read from the file.
    assert_eq!(show(&repo, forged).unwrap(), "mine");
    assert_eq!(integrated(&repo, "a/x.txt"), "mine");
    assert_fsck_clean(&repo);
    assert_eq!(integrated(&repo, "b/done.txt"), "b");
}
