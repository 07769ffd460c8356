//! Repositories the tests start from: committed files on `main`, nothing else.

use crate::common::TestRepo;

/// A repository with an `api`, a `db` and a `ui` directory and a shared file.
pub fn app_repo() -> TestRepo {
    TestRepo::with_files(&[
        ("README.md", "# app\n"),
        ("CHANGELOG.md", "# changes\n"),
        ("src/api/mod.rs", "// api\n"),
        ("src/db/mod.rs", "// db\n"),
        ("src/ui/index.html", "<p>ui</p>\n"),
    ])
}

/// A repository with three owned areas `a/`, `b/` and `c/`, and two shared files with several
/// lines (for the plans of `plans::two_streams`).
pub fn repo_with_shared() -> TestRepo {
    TestRepo::with_files(&[
        ("a/x", "a\n"),
        ("b/x", "b\n"),
        ("c/x", "c\n"),
        ("shared.txt", "line 1\nline 2\nline 3\n"),
        ("docs/guide.md", "# guide\nfirst\nsecond\n"),
    ])
}
