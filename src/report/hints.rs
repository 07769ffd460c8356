//! "What to do next": the commands a person is pointed to when a run stops short of its end
//! (halted on a conflict, or interrupted), written here once so every message that gives them
//! says the same thing. (The conflict bundle's README says it at length, with the bundle.)

use std::path::Path;

use super::shell_quote;

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
