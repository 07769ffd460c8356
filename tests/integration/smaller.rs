//! Smaller things a new user tripped on (issue 27, item 8), each checked through the binary.

use crate::common::TestRepo;
use crate::run::plan;

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
