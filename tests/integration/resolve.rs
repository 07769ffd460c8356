//! Conflicts settled before they reach a person (issue 29): the merge drivers the user's
//! repository configures run in the integration, as `git merge` runs them.

use std::path::PathBuf;

use crate::common::TestRepo;
use crate::support::plans::conflicting;
use crate::support::repos::repo_with_shared;
use crate::support::runs::resolution;

/// A repository whose `.gitattributes` (committed) sends `shared.txt` to the merge driver
/// `both`, configured in its `.git/config` to run `script` (sh) as `script %O %A %B %P`.
fn with_driver(script: &str) -> (TestRepo, PathBuf) {
    let repo = repo_with_shared();
    let driver = repo.root.parent().unwrap().join("driver.sh");
    std::fs::write(&driver, script).unwrap();
    repo.write(".gitattributes", "shared.txt merge=both\n");
    repo.commit_all("attributes");
    repo.git(&[
        "config",
        "merge.both.driver",
        &format!("sh {} %O %A %B %P", driver.display()),
    ]);
    (repo, driver)
}

/// Keeps every line of both sides, once each, sorted: a merge line-based merging cannot make
/// when both sides rewrote the same line. It notes each path it merged.
const SORTED_UNION: &str = r#"echo "$4" >> "$(dirname "$0")/driver-ran"
sort -u "$2" "$3" > "$2.merged" && mv "$2.merged" "$2"
"#;

#[test]
fn a_merge_driver_of_the_repository_resolves_a_conflict_with_no_halt() {
    let (repo, driver) = with_driver(SORTED_UNION);
    conflicting(&repo);
    let out = repo.streams(&["run"]);
    out.assert_code(0);
    assert_eq!(
        repo.git(&["show", "streams/p/integration:shared.txt"]),
        "from a\nfrom b"
    );
    let ran = std::fs::read_to_string(driver.with_file_name("driver-ran")).unwrap();
    assert!(ran.lines().all(|l| l == "shared.txt"), "{ran}");
    assert!(!resolution(&repo).exists(), "nothing parked");
}

#[test]
fn a_merge_driver_that_fails_leaves_the_conflict_for_a_person() {
    let (repo, driver) = with_driver(
        r#"echo "$4" >> "$(dirname "$0")/driver-ran"
exit 1
"#,
    );
    conflicting(&repo);
    let out = repo.streams(&["run"]);
    out.assert_code(3);
    assert!(
        out.stderr
            .contains("parked b: integrating it conflicts in shared.txt"),
        "{out}"
    );
    assert!(
        driver.with_file_name("driver-ran").exists(),
        "the driver ran"
    );
    assert!(resolution(&repo).exists());
}
