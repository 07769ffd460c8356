//! The workspace's git is the agent's: nothing it forges there is believed (issue 23). Each test
//! is an agent script in the two-stream trial plan of `support::trial` (`a` owns `a/**`, `b` owns
//! `b/**`, `c/**` is nobody's); each failed when streams asked the workspace's own git what the
//! agent changed, and passes now that streams reads the files against the start tree read from
//! the user's repository, with no git process of its own in the workspace's git directory.

use std::path::{Path, PathBuf};

use crate::common::{TestRepo, agents_dir};
use crate::support::trial::{show, trial_plan, trial_repo};

/// The plan line that puts an agent under Landlock.
const LANDLOCK: &str = r#"sandbox = "landlock""#;

/// `sandbox`, and under Landlock, `dir` writable besides the workspace (what a scenario keeps
/// between runs, or a log the agent's own git writes).
fn writable(sandbox: &str, dir: &Path) -> String {
    if sandbox.is_empty() {
        String::new()
    } else {
        format!("{sandbox}\nsandbox_writable = [\"{}\"]", dir.display())
    }
}

/// Each scenario twice: as it is, and with the agent under `sandbox = "landlock"` (issue 23:
/// nothing the agent forges is believed there either), which a kernel without Landlock skips,
/// saying so.
macro_rules! scenario {
    ($name:ident, $under_landlock:ident) => {
        #[test]
        fn $name() {
            self::scenarios::$name("");
        }

        #[test]
        fn $under_landlock() {
            if let Some(why) = crate::sandbox::landlock_missing() {
                eprintln!("skipped: this kernel cannot run the Landlock tests: {why}");
                return;
            }
            self::scenarios::$name(LANDLOCK);
        }
    };
}

scenario!(
    a_replaced_tree_hides_nothing_from_the_ownership_check,
    a_replaced_tree_hides_nothing_under_landlock
);
scenario!(
    a_replaced_commit_hides_nothing_from_the_ownership_check,
    a_replaced_commit_hides_nothing_under_landlock
);
scenario!(
    a_loose_object_named_after_the_start_tree_hides_nothing,
    a_loose_object_named_after_the_start_tree_hides_nothing_under_landlock
);
scenario!(
    a_grafts_file_hides_nothing,
    a_grafts_file_hides_nothing_under_landlock
);
scenario!(
    an_alternates_file_pointing_elsewhere_hides_nothing,
    an_alternates_file_pointing_elsewhere_hides_nothing_under_landlock
);
scenario!(
    index_flags_hide_no_edit,
    index_flags_hide_no_edit_under_landlock
);
scenario!(
    a_nested_repositorys_filter_never_runs,
    a_nested_repositorys_filter_never_runs_under_landlock
);
scenario!(
    filters_the_agent_configures_never_run,
    filters_the_agent_configures_never_run_under_landlock
);
scenario!(
    a_config_writer_racing_streams_runs_nothing,
    a_config_writer_racing_streams_runs_nothing_under_landlock
);
scenario!(
    hooks_the_agent_plants_never_run,
    hooks_the_agent_plants_never_run_under_landlock
);
scenario!(
    hooks_the_agent_plants_are_removed,
    hooks_the_agent_plants_are_removed_under_landlock
);
scenario!(
    a_workspace_that_cannot_be_reset_is_laid_out_afresh,
    a_workspace_that_cannot_be_reset_is_laid_out_afresh_under_landlock
);
scenario!(
    an_agent_without_a_git_dir_gets_a_commit_of_its_files,
    an_agent_without_a_git_dir_gets_a_commit_of_its_files_under_landlock
);
scenario!(
    no_git_process_of_streams_uses_the_workspaces_git_dir_after_the_agent_started,
    no_git_process_of_streams_uses_the_workspaces_git_dir_under_landlock
);

/// The scenarios, each run with the plan line `sandbox` (empty, or [`LANDLOCK`]).
mod scenarios {
    use super::*;

    /// A file outside every workspace that a planted filter or hook creates when it runs.
    fn marker(repo: &TestRepo) -> PathBuf {
        repo.root.parent().unwrap().join("OUTSIDE")
    }

    /// The run rejects stream `a` for touching `b/f.txt` and `c/f.txt`, and neither edit reaches
    /// the integration branch.
    fn assert_rejected_for_b_and_c(repo: &TestRepo, out: &crate::common::CmdOutput) {
        out.assert_code(4);
        assert!(
            out.stderr.contains("b/f.txt") && out.stderr.contains("c/f.txt"),
            "{out}"
        );
        assert_eq!(show(repo, "streams/p/integration:b/f.txt").unwrap(), "b");
        assert_eq!(show(repo, "streams/p/integration:c/f.txt").unwrap(), "c");
        assert_eq!(show(repo, "streams/p/integration:b/done.txt").unwrap(), "b");
    }

    /// Edits to another stream's file and to a file nobody owns, committed by the agent.
    const TRESPASS: &str =
        "echo evil > b/f.txt; echo evil > c/f.txt; git add -A; git commit -qm mine";

    /// Reproduction 1: `git replace` of the start tree by the agent's tree made the workspace's own
    /// diff empty; the ownership check saw nothing and the edits were integrated.
    pub(super) fn a_replaced_tree_hides_nothing_from_the_ownership_check(sandbox: &str) {
        let repo = trial_repo();
        trial_plan(
            &repo,
            &format!("{TRESPASS}; git replace -f $(git rev-parse HEAD^:) HEAD:"),
            sandbox,
        );
        let out = repo.streams(&["run"]);
        assert_rejected_for_b_and_c(&repo, &out);
    }

    /// Variant: the agent's commit replaced by the start commit.
    pub(super) fn a_replaced_commit_hides_nothing_from_the_ownership_check(sandbox: &str) {
        let repo = trial_repo();
        trial_plan(
            &repo,
            &format!("{TRESPASS}; git replace -f HEAD HEAD^"),
            sandbox,
        );
        let out = repo.streams(&["run"]);
        assert_rejected_for_b_and_c(&repo, &out);
    }

    /// Variant: a loose object named after the start tree, holding the agent's tree, in the
    /// workspace's object directory (the start tree is loose in the user's repository too).
    pub(super) fn a_loose_object_named_after_the_start_tree_hides_nothing(sandbox: &str) {
        let repo = trial_repo();
        trial_plan(
            &repo,
            &format!(
                "{TRESPASS}; s=$(git rev-parse HEAD^:); t=$(git rev-parse HEAD:); \
             d=.git/objects/$(echo $s | cut -c1-2); mkdir -p $d; \
             cp .git/objects/$(echo $t | cut -c1-2)/$(echo $t | cut -c3-) $d/$(echo $s | cut -c3-)"
            ),
            sandbox,
        );
        let out = repo.streams(&["run"]);
        assert_rejected_for_b_and_c(&repo, &out);
    }

    /// Variant: a `grafts` file that makes the agent's commit look like the start's parent.
    pub(super) fn a_grafts_file_hides_nothing(sandbox: &str) {
        let repo = trial_repo();
        trial_plan(
            &repo,
            &format!(
                "{TRESPASS}; echo \"$(git rev-parse HEAD) $(git rev-parse HEAD^^ 2>/dev/null)\" \
             > .git/info/grafts; echo \"$(git rev-parse HEAD^)\" >> .git/info/grafts"
            ),
            sandbox,
        );
        let out = repo.streams(&["run"]);
        assert_rejected_for_b_and_c(&repo, &out);
    }

    /// Variant: an alternates file pointing at an object store the agent filled elsewhere.
    pub(super) fn an_alternates_file_pointing_elsewhere_hides_nothing(sandbox: &str) {
        let repo = trial_repo();
        trial_plan(
            &repo,
            &format!(
                "{TRESPASS}; git init -q --bare ../evil-store; \
             cp -r .git/objects/?? ../evil-store/objects/ 2>/dev/null; \
             echo \"$(cd ../evil-store/objects && pwd)\" > .git/objects/info/alternates; \
             git replace -f $(git rev-parse HEAD^:) HEAD:; \
             cp -r .git/objects/?? ../evil-store/objects/ 2>/dev/null; true"
            ),
            sandbox,
        );
        let out = repo.streams(&["run"]);
        assert_rejected_for_b_and_c(&repo, &out);
    }

    /// Reproduction 5: `skip-worktree` and `assume-unchanged` hid an edit from the workspace's
    /// status; `b`'s script, rewritten by `a`, stayed in `a`'s workspace.
    pub(super) fn index_flags_hide_no_edit(sandbox: &str) {
        for flag in ["--skip-worktree", "--assume-unchanged"] {
            let repo = trial_repo();
            trial_plan(
                &repo,
                &format!(
                    "echo evil > b/f.txt; git update-index {flag} b/f.txt; \
                 echo evil > c/f.txt; git update-index {flag} c/f.txt"
                ),
                sandbox,
            );
            let out = repo.streams(&["run"]);
            assert_rejected_for_b_and_c(&repo, &out);
        }
    }

    /// Reproduction 2: a nested repository whose config defines a clean filter. streams' `git
    /// status` recursed into it and ran the filter outside the sandbox; now no git process of
    /// streams runs inside a directory the agent made. The task is rejected, its files kept.
    pub(super) fn a_nested_repositorys_filter_never_runs(sandbox: &str) {
        let repo = trial_repo();
        let outside = marker(&repo);
        trial_plan(
            &repo,
            &format!(
                "git init -q a/sub && echo one > a/sub/n.txt && git -C a/sub add n.txt \
             && git -C a/sub commit -qm nested && git add a/sub 2>/dev/null; \
             git -C a/sub config filter.x.clean \"sh -c 'touch {o}; cat'\"; \
             git -C a/sub config filter.x.required true; \
             echo '* filter=x' > a/sub/.gitattributes; echo '* filter=x' > a/sub/.git/info/attributes; \
             echo two > a/sub/n.txt",
                o = outside.display()
            ),
            sandbox,
        );
        let out = repo.streams(&["run"]);
        out.assert_code(4);
        assert!(out.stderr.contains("a/sub"), "{out}");
        assert!(
            !outside.exists(),
            "the nested repository's filter ran\n{out}"
        );
    }

    /// A filter in every place a workspace's git takes attributes or config from: the agent's
    /// `.git/config`, `.git/info/attributes`, `core.attributesFile`, and the work tree's
    /// `.gitattributes` (which applies from the next task only, as the start tree's). None runs;
    /// the files are committed as they are.
    pub(super) fn filters_the_agent_configures_never_run(sandbox: &str) {
        let repo = trial_repo();
        let outside = marker(&repo);
        trial_plan(
            &repo,
            &format!(
                "git config filter.x.clean \"sh -c 'touch {o}; tr a-z A-Z'\"; \
             echo '* filter=x' > .git/info/attributes; \
             echo '* filter=x' > ../attrs; git config core.attributesFile \"$(cd .. && pwd)/attrs\"; \
             echo '* filter=x' > a/.gitattributes; echo lower > a/x.txt",
                o = outside.display()
            ),
            sandbox,
        );
        let out = repo.streams(&["run"]);
        out.assert_code(0);
        assert!(!outside.exists(), "a filter of the agent's ran\n{out}");
        assert_eq!(
            show(&repo, "streams/p/integration:a/x.txt").unwrap(),
            "lower"
        );
    }

    /// Reproduction 4: a writer that keeps re-adding a filter to the agent's config and attributes
    /// cannot win a race with streams: its processes are gone before the read, and the read runs no
    /// git with the workspace's config.
    pub(super) fn a_config_writer_racing_streams_runs_nothing(sandbox: &str) {
        let repo = trial_repo();
        let outside = marker(&repo);
        trial_plan(
            &repo,
            &format!(
                "echo mine > a/x.txt; \
             setsid sh -c 'while :; do printf \"[filter \\\\\"x\\\\\"]\\n\\tclean = touch {o}\\n\" >> .git/config; \
             echo \"* filter=x\" >> .git/info/attributes; done' </dev/null >/dev/null 2>&1 &",
                o = outside.display()
            ),
            sandbox,
        );
        let out = repo.streams(&["run"]);
        out.assert_code(0);
        assert!(!outside.exists(), "the racing filter ran\n{out}");
        assert_eq!(
            show(&repo, "streams/p/integration:a/x.txt").unwrap(),
            "mine"
        );
    }

    /// Hooks for every git command streams might have run, planted in the agent's `.git` (and, with
    /// `nested`, in a nested repository with a commit, which streams keeps the files of).
    fn plant_hooks(outside: &Path, nested: bool) -> String {
        let hooks = [
            "post-index-change",
            "pre-commit",
            "post-commit",
            "post-checkout",
            "reference-transaction",
            "pre-auto-gc",
        ];
        let mut script = String::from("mkdir -p .git/hooks; ");
        if nested {
            script.push_str(
                "git init -q a/sub && echo n > a/sub/n.txt && git -C a/sub add n.txt \
             && git -C a/sub commit -qm n; ",
            );
        }
        for h in hooks {
            script.push_str(&format!(
                "printf '#!/bin/sh\\ntouch {o}\\n' > .git/hooks/{h}; chmod +x .git/hooks/{h}; ",
                o = outside.display()
            ));
            if nested {
                script.push_str(&format!("cp .git/hooks/{h} a/sub/.git/hooks/; "));
            }
        }
        script.push_str("echo mine > a/x.txt");
        script
    }

    /// Reproduction 3: a hook planted in a nested repository, or in the agent's own `.git`, never
    /// runs for streams (it ran when streams kept a nested repository's files).
    pub(super) fn hooks_the_agent_plants_never_run(sandbox: &str) {
        let repo = trial_repo();
        let outside = marker(&repo);
        trial_plan(&repo, &plant_hooks(&outside, true), sandbox);
        let out = repo.streams(&["run"]);
        out.assert_code(4);
        assert!(out.stderr.contains("a/sub"), "{out}");
        assert!(!outside.exists(), "a planted hook ran\n{out}");
    }

    /// Reproduction 3, continued: hooks do not survive into the workspace's next task or run:
    /// `.git/hooks` is emptied whenever streams lays the workspace out.
    pub(super) fn hooks_the_agent_plants_are_removed(sandbox: &str) {
        let repo = trial_repo();
        let outside = marker(&repo);
        trial_plan(&repo, &plant_hooks(&outside, false), sandbox);
        let out = repo.streams(&["run"]);
        out.assert_code(0);
        assert!(!outside.exists(), "a planted hook ran\n{out}");
        assert_eq!(
            show(&repo, "streams/p/integration:a/x.txt").unwrap(),
            "mine"
        );
        let workspace = repo.workspaces("p").join("a");
        assert!(
            workspace.join("a/x.txt").is_file(),
            "no workspace at {}",
            workspace.display()
        );
        let hooks = workspace.join(".git/hooks");
        let left: Vec<_> = std::fs::read_dir(&hooks)
            .map(|d| d.map(|e| e.unwrap().file_name()).collect())
            .unwrap_or_default();
        assert!(left.is_empty(), "hooks left in the workspace: {left:?}");
    }

    /// Reproduction 6: a workspace the agent left in a state git cannot reset (a cached entry that
    /// does not match its file and is marked unchanged, an empty nested repository) is set aside
    /// with its work kept and laid out afresh: the stream runs again.
    pub(super) fn a_workspace_that_cannot_be_reset_is_laid_out_afresh(sandbox: &str) {
        let repo = trial_repo();
        let scratch = repo.root.parent().unwrap().join("scratch");
        std::fs::create_dir_all(&scratch).unwrap();
        let once = scratch.join("once");
        trial_plan(
            &repo,
            &format!(
                "if [ ! -e {once} ]; then touch {once}; \
             git update-index --cacheinfo 100644,$(echo forged | git hash-object -w --stdin),a/f.txt; \
             git update-index --assume-unchanged a/f.txt; git init -q a/sub; fi",
                once = once.display()
            ),
            &writable(sandbox, &scratch),
        );
        let out = repo.streams(&["run"]);
        out.assert_code(4);
        assert!(out.stderr.contains("a/sub"), "{out}");
        let out = repo.streams(&["retry", "a"]);
        out.assert_code(0);
        assert!(!out.stderr.contains("could not prepare"), "{out}");
        assert_eq!(show(&repo, "streams/p/integration:a/f.txt").unwrap(), "a");
        assert_eq!(
            show(&repo, "streams/p/integration:a/done.txt").unwrap(),
            "a"
        );
    }

    /// An agent that deletes its `.git`, or replaces it with garbage, still gets a commit equal to
    /// its files: streams never asked that directory what the work is.
    pub(super) fn an_agent_without_a_git_dir_gets_a_commit_of_its_files(sandbox: &str) {
        for wreck in [
            "rm -rf .git",
            "rm -rf .git; echo garbage > .git",
            "rm -rf .git/objects .git/refs .git/HEAD; echo x > .git/index",
        ] {
            let repo = trial_repo();
            trial_plan(
                &repo,
                &format!("echo work > a/x.txt; rm a/f.txt; {wreck}"),
                sandbox,
            );
            let out = repo.streams(&["run"]);
            out.assert_code(0);
            assert_eq!(
                repo.git(&["ls-tree", "-r", "--name-only", "streams/p/integration", "a"]),
                "a/done.txt\na/x.txt",
                "after `{wreck}`"
            );
            assert_eq!(
                show(&repo, "streams/p/integration:a/x.txt").unwrap(),
                "work"
            );
            let fsck = repo.git_output_in(&repo.root, &["fsck", "--no-dangling", "--no-progress"]);
            assert!(
                fsck.status.success(),
                "{}",
                String::from_utf8_lossy(&fsck.stderr)
            );
        }
    }

    /// A `git` first on PATH that logs, for every git process, whether it is the agent's (it runs
    /// with `STREAMS_STREAM` set) or streams' own, its directory, its arguments and the variables
    /// that point git somewhere, then runs the real git.
    fn logging_git(dir: &Path, log: &Path) {
        use std::os::unix::fs::PermissionsExt;
        let real = String::from_utf8(
            std::process::Command::new("sh")
                .args(["-c", "command -v git"])
                .output()
                .unwrap()
                .stdout,
        )
        .unwrap();
        std::fs::create_dir_all(dir).unwrap();
        let script = dir.join("git");
        std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nwho=streams; [ -n \"$STREAMS_STREAM\" ] && who=agent\n\
             printf '%s\\t%s\\t%s\\t%s\\t%s\\n' \"$who\" \"$PWD\" \"$GIT_DIR|$GIT_WORK_TREE|$GIT_INDEX_FILE|$GIT_CONFIG|$GIT_CONFIG_GLOBAL\" \"$*\" >> {log}\n\
             exec {real} \"$@\"\n",
            log = log.display(),
            real = real.trim()
        ),
    )
    .unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    /// Once the agent has started, no git process of streams uses the workspace's git directory,
    /// config or hooks: none runs in the workspace (where git would find its `.git`) or names
    /// its `.git`, until the workspace is laid out again for the next task.
    pub(super) fn no_git_process_of_streams_uses_the_workspaces_git_dir_after_the_agent_started(
        sandbox: &str,
    ) {
        let mut repo = trial_repo();
        let bin = repo.root.parent().unwrap().join("logging-bin");
        let scratch = repo.root.parent().unwrap().join("scratch");
        std::fs::create_dir_all(&scratch).unwrap();
        let log = scratch.join("git.log");
        logging_git(&bin, &log);
        let path = std::env::var("PATH").unwrap_or_default();
        repo.env.push((
            "PATH".into(),
            format!("{}:{}:{path}", bin.display(), agents_dir().display()),
        ));
        trial_plan(
            &repo,
            "echo mine > a/x.txt; git add a/x.txt; git commit -qm mine; echo more > a/y.txt",
            &writable(sandbox, &scratch),
        );
        let out = repo.streams(&["run"]);
        out.assert_code(0);
        assert_eq!(
            show(&repo, "streams/p/integration:a/y.txt").unwrap(),
            "more"
        );
        let log = std::fs::read_to_string(&log).unwrap();
        assert!(
            log.lines().any(|l| l.starts_with("agent\t")),
            "the logging git saw no agent:\n{log}"
        );
        assert!(
            log.lines().any(|l| l.starts_with("streams\t")),
            "the logging git saw no git of streams':\n{log}"
        );
        let workspaces = repo.workspaces("p");
        let workspaces = workspaces.to_string_lossy();
        assert!(
            log.lines().any(|l| l.starts_with("agent\t")
                && l.split('\t')
                    .nth(1)
                    .is_some_and(|cwd| cwd.starts_with(&*workspaces))),
            "no agent ran in {workspaces}:\n{log}"
        );
        // From the first agent line on, streams' own lines never touch a workspace's git.
        let after_start = log.lines().skip_while(|l| !l.starts_with("agent\t"));
        let offending: Vec<&str> = after_start
            .filter(|l| l.starts_with("streams\t"))
            .filter(|l| {
                let fields: Vec<&str> = l.splitn(5, '\t').collect();
                let cwd = fields.get(1).copied().unwrap_or("");
                let git_dir = fields
                    .get(2)
                    .and_then(|v| v.split('|').next())
                    .unwrap_or("");
                let args = fields.get(3).copied().unwrap_or("");
                // Run in a workspace without a git directory of its own choosing, git finds the
                // workspace's `.git`.
                // streams runs git as `git -C DIR ...`.
                let dir = args
                    .strip_prefix("-C ")
                    .and_then(|rest| rest.split(' ').next())
                    .unwrap_or(cwd);
                let in_workspace = dir.starts_with(&*workspaces)
                    && git_dir.is_empty()
                    && !args.contains("--git-dir");
                let names_its_git = ["/a/.git", "/b/.git"]
                    .iter()
                    .any(|g| l.contains(&format!("{workspaces}{g}")));
                in_workspace || names_its_git
            })
            .collect();
        assert!(
            offending.is_empty(),
            "git processes of streams in a workspace's git after its agent started:\n{}",
            offending.join("\n")
        );
    }
}
