//! Smaller things a new user tripped on (issue 27, item 8), each checked through the binary.

use crate::common::TestRepo;
use crate::support::plans::plan;

#[test]
fn a_wrong_base_does_not_hide_a_missing_agent() {
    let repo = TestRepo::with_files(&[("a/x", "a\n")]);
    plan(
        &repo,
        r#"
[plan]
name = "p"
base = "no-such-branch"
agent = ["no-such-agent-cli", "{prompt}"]

[[stream]]
name = "a"
owns = ["a/**"]
tasks = ["work"]
"#,
    );
    let out = repo.streams(&["plan"]);
    out.assert_code(2);
    assert!(
        out.stderr
            .contains("error: `base` does not resolve: `no-such-branch` names no commit"),
        "{out}"
    );
    assert!(
        out.stderr
            .contains("error: agent program `no-such-agent-cli` was not found on PATH"),
        "{out}"
    );
}

#[test]
fn a_run_that_integrated_nothing_suggests_no_merge_and_no_needless_flags() {
    let repo = TestRepo::with_files(&[("a/x", "a\n"), ("b/x", "b\n")]);
    plan(
        &repo,
        r#"
[plan]
name = "p"
jobs = 4
agent = ["act", "exit", "1"]

[[stream]]
name = "a"
owns = ["a/**"]
tasks = ["work"]

[[stream]]
name = "b"
owns = ["b/**"]
tasks = ["work"]
"#,
    );
    let dry = repo.streams(&["run", "--dry-run"]);
    dry.assert_code(0);
    assert!(dry.stdout.contains(", 2 at a time,"), "{dry}");
    let out = repo.streams(&["run"]);
    out.assert_code(4);
    assert!(out.stderr.contains(": 2 streams, base "), "{out}");
    assert!(out.stderr.contains(", 2 at a time"), "{out}");
    // Nothing was integrated: nothing to review or merge.
    assert!(!out.stderr.contains("streams merge"), "{out}");
    assert!(!out.stderr.contains("review what was integrated"), "{out}");
    // Neither has a dependent: no `--with-dependents`.
    assert!(
        out.stderr
            .contains("  streams retry a b    # after fixing the cause"),
        "{out}"
    );
    assert!(!out.stderr.contains("--with-dependents"), "{out}");
}

#[test]
fn the_man_page_synopsis_names_values_and_refers_to_no_missing_pages() {
    let repo = TestRepo::empty();
    let out = repo.streams(&["man"]);
    out.assert_code(0);
    let synopsis = out
        .stdout
        .lines()
        .skip_while(|l| *l != ".SH SYNOPSIS")
        .nth(1)
        .unwrap_or_default();
    assert!(synopsis.contains(r"[\fB\-C\fR \fIDIR\fR]"), "{synopsis}");
    assert!(
        synopsis.contains(r"[\fB\-\-color\fR \fIWHEN\fR]"),
        "{synopsis}"
    );
    // Only one page is generated: no `streams-plan(1)`.
    assert!(!out.stdout.contains("(1)\n"), "{}", out.stdout);
    assert!(out.stdout.contains(r"\fBstreams plan\fR"), "{}", out.stdout);
}

#[test]
fn the_gate_failure_message_keeps_the_commands_quoting() {
    let repo = TestRepo::with_files(&[("a/x", "x\n")]);
    plan(
        &repo,
        r#"
[plan]
name = "p"
gate = ["sh", "-c", "exit 1"]

[[stream]]
name = "a"
owns = ["a/**"]
agent = ["act", "write", "a/y", "y"]
tasks = ["work"]
"#,
    );
    let out = repo.streams(&["run"]);
    out.assert_code(4);
    assert!(
        out.stderr.contains("gate `sh -c 'exit 1'` fails on "),
        "{out}"
    );
}
