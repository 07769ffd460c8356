//! The hermetic git environment, defined once for the integration tests and the benchmarks
//! (both include this file: `tests/integration/common.rs` and `benches/common/mod.rs`).
//!
//! Every command runs with its own HOME holding the only gitconfig it sees; the system config is
//! ignored; identity, dates, timezone, locale and terminal are pinned. So the user's git setup
//! (hooks, fsmonitor, signing, aliases, auto gc) never changes a result or a figure, and commit
//! ids are the same on every machine.

#![allow(dead_code)]

use std::path::Path;
use std::process::Command;

/// Author and committer date of every commit made under this environment.
pub const DATE: &str = "2026-01-01T00:00:00+00:00";
/// `DATE` as seconds since the epoch (for `git fast-import`).
pub const DATE_EPOCH: u64 = 1_767_225_600;
pub const USER_NAME: &str = "Test User";
pub const USER_EMAIL: &str = "test@example.com";

/// The one gitconfig the commands see. `gc.auto = 0`: no automatic gc starts in the middle of
/// a test or a timed run.
const GITCONFIG: &str = "[user]\n\tname = Test User\n\temail = test@example.com\n\
                         [init]\n\tdefaultBranch = main\n\
                         [advice]\n\tdetachedHead = false\n\
                         [gc]\n\tauto = 0\n";

/// Variables from the caller's environment that would point git (or streams) elsewhere, or
/// change what it prints.
const CLEARED: &[&str] = &[
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_COMMON_DIR",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_CONFIG",
    "GIT_CONFIG_PARAMETERS",
    "GIT_CONFIG_COUNT",
    "GITHUB_STEP_SUMMARY",
    "GITHUB_ACTIONS",
    "GITHUB_SERVER_URL",
    "GITHUB_REPOSITORY",
    "STREAMS_LOG",
    "STREAMS_FAILPOINT",
    "NO_COLOR",
];

/// Makes `home` a HOME for hermetic commands: writes its gitconfig.
pub fn init_home(home: &Path) {
    std::fs::create_dir_all(home).unwrap();
    std::fs::write(home.join(".gitconfig"), GITCONFIG).unwrap();
}

/// Applies the hermetic environment to `cmd`, with `home` (set up by `init_home`) as HOME.
/// The scripted agents (`agents_dir`) come first on PATH.
pub fn apply(cmd: &mut Command, home: &Path) {
    for var in CLEARED {
        cmd.env_remove(var);
    }
    cmd.env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", home.join(".gitconfig"))
        .env("GIT_AUTHOR_NAME", USER_NAME)
        .env("GIT_AUTHOR_EMAIL", USER_EMAIL)
        .env("GIT_COMMITTER_NAME", USER_NAME)
        .env("GIT_COMMITTER_EMAIL", USER_EMAIL)
        .env("GIT_AUTHOR_DATE", DATE)
        .env("GIT_COMMITTER_DATE", DATE)
        .env("TZ", "UTC")
        .env("LC_ALL", "C")
        .env("TERM", "dumb")
        .env("COLUMNS", "100");
    let path = std::env::var("PATH").unwrap_or_default();
    cmd.env("PATH", format!("{}:{path}", agents_dir().display()));
}

/// The scripted agents (`fixtures/agents/`).
pub fn agents_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/agents")
}
