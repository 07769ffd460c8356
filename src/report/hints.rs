//! "What to do next": the commands a person is pointed to when a run stops short of its end
//! (halted on a conflict, or interrupted), written here once so every message that gives them
//! says the same thing. (The conflict bundle's README says it at length, with the bundle.)

use std::path::Path;

use crate::text::{shell_quote, short};

/// One line for an error or a note about a halted run: resolve, skip, or (with `abort`) stop.
/// `worktree` is where to resolve, when the message has not said it already.
pub fn halted(stream: &str, worktree: Option<&Path>, abort: bool) -> String {
    let place = worktree
        .map(|w| format!(" in {}", w.display()))
        .unwrap_or_default();
    let stop = if abort { ", or `streams abort`" } else { "" };
    format!("resolve it{place} and run `streams continue`, or `streams skip {stream}`{stop}")
}

/// The steps after a run halts, as commands to type (the end of `run`, `continue`, `resume`).
pub fn halted_steps(stream: &str, worktree: &Path, files: &[String]) -> Vec<String> {
    vec![
        "next:".to_string(),
        format!("  cd {}", shell_quote(&worktree.display().to_string())),
        format!(
            "  # edit the conflicted files, then: git add {}",
            files
                .iter()
                .map(|f| shell_quote(f))
                .collect::<Vec<_>>()
                .join(" ")
        ),
        "  streams continue".to_string(),
        format!("or leave the stream out: streams skip {stream}    or stop: streams abort"),
    ]
}

/// The steps under `streams status` of a halted run (the worktree is named just above).
pub fn halted_status(stream: &str) -> [String; 2] {
    [
        "next: resolve there, `git add` the files, then `streams continue`".to_string(),
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
/// `plan_flag` is ` --plan NAME` when other plans ran here, else empty.
pub fn retry_failed(streams: &[&str], plan_flag: &str, logs: &Path) -> String {
    format!(
        "  streams retry {}{plan_flag} --with-dependents    # after fixing the cause (logs in {}): run them again on top of this result",
        streams.join(" "),
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
pub fn demo_closing(dir: &Path, streams: &str) -> Vec<String> {
    let dir = shell_quote(&dir.display().to_string());
    vec![
        String::new(),
        format!("the demo repository is {dir}; from here:"),
        format!("  git -C {dir} log --oneline --graph streams/demo/integration    # look around"),
        format!("  {streams} -C {dir} status"),
        format!("  {streams} -C {dir} merge    # take the result into the demo's main"),
        format!("  rm -rf {dir}    # remove the demo (its worktrees are inside it)"),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_halted_hint_names_the_worktree_and_abort_only_when_asked() {
        assert_eq!(
            halted("api", None, true),
            "resolve it and run `streams continue`, or `streams skip api`, or `streams abort`"
        );
        assert_eq!(
            halted("api", Some(Path::new("/wt/.integration")), false),
            "resolve it in /wt/.integration and run `streams continue`, or `streams skip api`"
        );
    }

    #[test]
    fn the_halted_steps_quote_what_a_shell_would_split() {
        let steps = halted_steps("api", Path::new("/w t"), &["a b.rs".into(), "c.rs".into()]);
        assert_eq!(steps[1], "  cd '/w t'");
        assert_eq!(
            steps[2],
            "  # edit the conflicted files, then: git add 'a b.rs' c.rs"
        );
    }
}
