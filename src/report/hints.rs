//! "What to do next": the commands a person is pointed to when a run stops short of its end
//! (halted with streams parked on conflicts, or interrupted), written here once so every message
//! that gives them says the same thing. (The conflict bundle's README says it at length, with
//! the bundle.)

use std::path::Path;

use crate::state::RunState;
use crate::text::{shell_quote, short};

/// The parked streams of a run, in words: "`db` is parked on a conflict", "2 streams are
/// parked on conflicts: `db`, `ui`".
pub fn parked_list(state: &RunState) -> String {
    let names: Vec<String> = state
        .parked()
        .iter()
        .map(|(_, s, _)| format!("`{}`", s.name))
        .collect();
    match names.as_slice() {
        [] => "no stream is parked".to_string(),
        [one] => format!("{one} is parked on a conflict"),
        many => format!(
            "{} streams are parked on conflicts: {}",
            many.len(),
            many.join(", ")
        ),
    }
}

/// One line for an error or a note about a halted run: resolve each parked stream and continue
/// it, skip it, or (with `abort`) stop.
pub fn halted(state: &RunState, abort: bool) -> String {
    let stop = if abort { ", or `streams abort`" } else { "" };
    match state.parked().as_slice() {
        [(_, s, park)] => format!(
            "resolve it in {} and run `streams continue {}`, or `streams skip {}`{stop}",
            park.resolution_worktree.display(),
            s.name,
            s.name
        ),
        _ => format!(
            "resolve each in its worktree (`streams status` lists them) and run `streams continue STREAM`, or `streams skip STREAM`{stop}"
        ),
    }
}

/// The steps to resolve one parked stream, as commands to type (the end of `run`,
/// `continue`, `resume`). `proposed`: a resolver's resolution passed streams' checks and waits
/// in the worktree, so the person reviews it instead of editing the conflict.
pub fn parked_steps(
    stream: &str,
    worktree: &Path,
    files: &[String],
    proposed: bool,
) -> Vec<String> {
    if proposed {
        return vec![
            format!("  streams diff --resolution {stream}    # review the resolver's proposal"),
            format!(
                "  streams continue {stream}    # land it (edit it first in {} if you like)",
                shell_quote(&worktree.display().to_string())
            ),
            format!("  or leave it out: streams skip {stream}"),
        ];
    }
    vec![
        format!("  cd {}", shell_quote(&worktree.display().to_string())),
        format!(
            "  # edit the conflicted files, then: git add {}",
            files
                .iter()
                .map(|f| shell_quote(f))
                .collect::<Vec<_>>()
                .join(" ")
        ),
        format!("  streams continue {stream}"),
        format!("  or leave it out: streams skip {stream}"),
    ]
}

/// The steps under `streams status` of a parked stream (its worktree is named just above);
/// `proposed` as for [`parked_steps`].
pub fn parked_status(stream: &str, proposed: bool) -> [String; 2] {
    let first = if proposed {
        format!("next: review the proposal, then `streams continue {stream}` lands it")
    } else {
        format!("next: resolve there, `git add` the files, then `streams continue {stream}`")
    };
    [
        first,
        format!("  or: `streams skip {stream}` to leave it out, `streams abort` to stop the run"),
    ]
}

/// For a new `run` refused because the last run's result is on no branch of the user's: the
/// error and what to do (take it, or start over; starting over keeps it, nothing is lost).
pub fn unmerged_result(plan: &str, tip: &str) -> (String, String) {
    let branch = crate::layout::short_branch(&crate::layout::integration_ref(plan)).to_string();
    (
        format!(
            "the last run's result on {branch} ({}) is not merged into any of your branches; a new run would start over from the plan's base",
            short(tip)
        ),
        format!(
            "take it with `streams merge` first, or start over with `streams run --restart` (the result stays kept under {})",
            crate::layout::RefNames::new(plan).previous_prefix()
        ),
    )
}

/// What a command says about a run killed as it started (before its state was saved): nothing
/// of it can be resumed, and a new run simply starts.
pub fn stopped_as_it_started(run_id: &str) -> String {
    format!("run {run_id} was stopped as it started, before it saved its state")
}

/// The one line a new run says about what the last run left: what it kept and where, or that
/// the result is merged (so nothing needed keeping).
pub fn last_result_line(
    tip: Option<&str>,
    merged_into: Option<&str>,
    kept: &[(String, String)],
) -> Option<String> {
    let kept_text = |kept: &[(String, String)]| {
        kept.iter()
            .map(|(name, oid)| format!("{name} ({})", short(oid)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match (tip, merged_into, kept.is_empty()) {
        (None, _, true) => None,
        (Some(tip), Some(into), true) => Some(format!(
            "the last run's result ({}) is merged into {into}; starting over from the plan's base",
            short(tip)
        )),
        (Some(tip), Some(into), false) => Some(format!(
            "the last run's result ({}) is merged into {into}; kept what is on no other branch: {}",
            short(tip),
            kept_text(kept)
        )),
        (Some(tip), None, true) => Some(format!(
            "starting over from the plan's base; the last run's result ({}) was kept already",
            short(tip)
        )),
        (_, _, false) => Some(format!("kept the last run's work: {}", kept_text(kept))),
    }
}

/// After a run with failed streams: where the logs are, and how to run just those again on top
/// of what was integrated (a new `run` would start over from the base).
/// `plan_flag` is ` --plan NAME` when other plans ran here, else empty; `--with-dependents`
/// only when some stream depends on them (it brings those back too).
pub fn retry_failed(
    streams: &[&str],
    plan_flag: &str,
    with_dependents: bool,
    logs: &Path,
) -> String {
    format!(
        "  streams retry {}{plan_flag}{}    # after fixing the cause (logs in {}): run them again on top of this result",
        streams.join(" "),
        if with_dependents {
            " --with-dependents"
        } else {
            ""
        },
        shell_quote(&logs.display().to_string())
    )
}

/// How to take a finished run's result (`plan_flag`: ` --plan NAME` when other plans ran here,
/// else empty).
pub fn take_result(plan_flag: &str) -> String {
    format!(
        "  streams merge{plan_flag}    # take it into your branch (--into BRANCH for another one)"
    )
}

/// The demo's last lines: commands that work from where the user is (`streams` is the command
/// that runs this binary: its name when on PATH, else its path), and how to remove the demo.
/// `workspaces` is the directory the demo's workspaces sit in, beside the repository: removing
/// the demo removes it too.
pub fn demo_closing(dir: &Path, workspaces: &Path, streams: &str) -> Vec<String> {
    let dir = shell_quote(&dir.display().to_string());
    let workspaces = shell_quote(&workspaces.display().to_string());
    vec![
        String::new(),
        format!("the demo repository is {dir}; from here:"),
        format!("  git -C {dir} log --oneline --graph streams/demo/integration    # look around"),
        format!("  {streams} -C {dir} status"),
        format!("  {streams} -C {dir} merge    # take the result into the demo's main"),
        format!("  rm -rf {dir} {workspaces}    # remove the demo and its workspaces beside it"),
    ]
}

/// For a new `run` refused because the last run was interrupted.
pub const INTERRUPTED_BEFORE_RUN: &str =
    "run `streams resume` to finish it, or `streams abort` to stop it (nothing is lost either way)";

/// The last line of a session stopped by a signal.
pub const INTERRUPTED_NOW: &str = "interrupted: the run's state is saved; `streams resume` goes on from here (or `streams abort`)";

/// Under `streams status` of an interrupted run.
pub const INTERRUPTED_STATUS: &str =
    "next: `streams resume` goes on from where it stopped (or `streams abort`)";

/// After a command removed the workspace it was started in (the resolution workspace the halt
/// said to `cd` into): the person's shell is still there.
pub fn removed_workspace(dir: &Path, root: &Path) -> String {
    format!(
        "the workspace this ran in, {}, is removed: `cd {}`",
        dir.display(),
        shell_quote(&root.display().to_string())
    )
}

/// A command started in a directory that no longer exists, which was a run's workspace: it
/// works in that run's repository instead.
pub fn working_in_repository(gone: &Path, root: &Path) -> String {
    format!(
        "the current directory {} no longer exists (a workspace of a streams run, removed); working in {}",
        gone.display(),
        root.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_halted_hint_names_the_worktree_and_abort_only_when_asked() {
        let mut state = crate::report::timeline::sample_state();
        crate::report::timeline::park_sample(&mut state, "api", 10);
        assert_eq!(
            halted(&state, true),
            "resolve it in /wt/.resolve-api and run `streams continue api`, or `streams skip api`, or `streams abort`"
        );
        assert_eq!(parked_list(&state), "`api` is parked on a conflict");
        crate::report::timeline::park_sample(&mut state, "ui", 5);
        assert_eq!(
            halted(&state, false),
            "resolve each in its worktree (`streams status` lists them) and run `streams continue STREAM`, or `streams skip STREAM`"
        );
        assert_eq!(
            parked_list(&state),
            "2 streams are parked on conflicts: `ui`, `api`",
            "in the order they parked"
        );
    }

    #[test]
    fn the_parked_steps_quote_what_a_shell_would_split() {
        let steps = parked_steps(
            "api",
            Path::new("/w t"),
            &["a b.rs".into(), "c.rs".into()],
            false,
        );
        assert_eq!(steps[0], "  cd '/w t'");
        assert_eq!(
            steps[1],
            "  # edit the conflicted files, then: git add 'a b.rs' c.rs"
        );
        assert_eq!(steps[2], "  streams continue api");
    }
}
