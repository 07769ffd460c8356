//! Environment variables that send git somewhere other than the repository it was started in.
//!
//! A leaf module (it depends on nothing) so that both sides can share one list: `git` removes
//! these from every git it runs and from every agent's environment, and `plan` refuses a plan
//! whose `env` sets one, since an agent's own git commands would then work on another
//! repository, index or object store than its stream's (issue 11: `GIT_DIR` in a plan made an
//! agent commit onto the user's branch).

/// Variables that point git at another repository, work tree, index or object store. Removed
/// from every git streams runs and from every agent's environment.
pub const REDIRECTING_VARS: &[&str] = &[
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_COMMON_DIR",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_PREFIX",
    "GIT_NAMESPACE",
];

/// Variables a plan may not set besides [`REDIRECTING_VARS`]: they change which repository git
/// finds (`GIT_CEILING_DIRECTORIES`, `GIT_DISCOVERY_ACROSS_FILESYSTEM`) or which configuration
/// it reads (hooks, `core.worktree`, `core.bare` can all come from there).
const ALSO_REFUSED: &[&str] = &[
    "GIT_CEILING_DIRECTORIES",
    "GIT_DISCOVERY_ACROSS_FILESYSTEM",
    "GIT_QUARANTINE_PATH",
    "GIT_REPLACE_REF_BASE",
    "GIT_SHALLOW_FILE",
    "GIT_GRAFT_FILE",
];

/// Why a plan may not set `name` in an agent's environment, if it may not.
pub fn refused_in_plan(name: &str) -> Option<&'static str> {
    if REDIRECTING_VARS.contains(&name) {
        Some("it points git at another repository, work tree, index or object store")
    } else if name.starts_with("GIT_CONFIG") {
        // GIT_CONFIG, GIT_CONFIG_GLOBAL, GIT_CONFIG_SYSTEM, GIT_CONFIG_NOSYSTEM,
        // GIT_CONFIG_COUNT / _KEY_n / _VALUE_n, GIT_CONFIG_PARAMETERS.
        Some("it changes the configuration git reads (hooks, `core.worktree`, `core.bare`)")
    } else if ALSO_REFUSED.contains(&name) {
        Some("it changes which repository or history git sees")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_names() {
        for name in [
            "GIT_DIR",
            "GIT_WORK_TREE",
            "GIT_CONFIG",
            "GIT_CONFIG_GLOBAL",
            "GIT_CONFIG_KEY_0",
            "GIT_CEILING_DIRECTORIES",
        ] {
            assert!(refused_in_plan(name).is_some(), "{name}");
        }
        for name in ["GIT_AUTHOR_NAME", "PATH", "GIT_EDITOR", "git_dir"] {
            assert!(refused_in_plan(name).is_none(), "{name}");
        }
    }
}
