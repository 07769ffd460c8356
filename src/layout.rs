//! Every name a run uses, built and parsed in one place: the plan's branches, the integration
//! ref, the refs that keep work out of the way (`refs/streams/<plan>/<kind>/...`), and the
//! directories of the plan's worktrees.
//!
//! A leaf module: it knows strings and paths only, so every layer (git included) may use it.
//!
//! ```text
//! refs/heads/streams/<plan>/<stream>          a stream's branch
//! refs/heads/streams/<plan>/integration       the integration branch
//! refs/streams/<plan>/<kind>/...              kept work, one kind per reason (see KeptKind)
//! <common dir>/streams/                       run state (see state::store)
//! <worktree dir>/<stream>                     a stream's worktree
//! <worktree dir>/.integration                 the resolution worktree of a halted run
//! ```

use std::path::{Path, PathBuf};

/// Where git keeps local branches.
const HEADS: &str = "refs/heads/";

/// Where every plan's kept work lives (followed by the plan's name).
pub const KEPT_ROOT: &str = "refs/streams/";

/// The name of the integration branch inside a plan's branch namespace.
const INTEGRATION: &str = "integration";

/// The resolution worktree's directory name: beside the stream worktrees, under a name no stream
/// can have (stream names cannot start with a dot).
pub const RESOLUTION_WORKTREE: &str = ".integration";

/// A branch's short name: `refs/heads/main` -> `main`; any other ref name is returned whole.
pub fn short_branch(name: &str) -> &str {
    name.strip_prefix(HEADS).unwrap_or(name)
}

/// The full ref of a local branch: `main` -> `refs/heads/main`.
pub fn branch_ref(short: &str) -> String {
    format!("{HEADS}{short}")
}

/// The prefix every local branch ref starts with.
pub fn branches_prefix() -> &'static str {
    HEADS
}

/// `refs/heads/streams/<plan>/`: the plan's own branches (streams and integration).
pub fn plan_branches(plan: &str) -> String {
    format!("{HEADS}streams/{plan}/")
}

/// `refs/heads/streams/<plan>/<stream>`.
pub fn stream_branch(plan: &str, stream: &str) -> String {
    format!("{}{stream}", plan_branches(plan))
}

/// `refs/heads/streams/<plan>/integration`.
pub fn integration_ref(plan: &str) -> String {
    stream_branch(plan, INTEGRATION)
}

/// A plan branch's name inside the plan's namespace (`refs/heads/streams/p/api` -> `api`);
/// None for a ref outside it.
pub fn plan_branch_name<'a>(plan: &str, name: &'a str) -> Option<&'a str> {
    name.strip_prefix(&plan_branches(plan))
}

/// `refs/streams/<plan>/`: where work of the plan is kept out of the way.
pub fn kept_refs(plan: &str) -> String {
    format!("{KEPT_ROOT}{plan}/")
}

/// The directories holding a plan's loose refs under the common dir (where a killed git may have
/// left lock files).
pub fn loose_ref_dirs(common_dir: &Path, plan: &str) -> [PathBuf; 2] {
    [
        common_dir.join(plan_branches(plan)),
        common_dir.join(kept_refs(plan)),
    ]
}

/// Why a ref under `refs/streams/<plan>/` keeps work: the first component after the plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeptKind {
    /// A task's own end commit, kept when its branch moved on.
    Tasks,
    /// Work an agent did outside its lane (and branches it moved).
    Rejected,
    /// The tip of a branch deleted while a task ran.
    Deleted,
    /// The work of a failed task.
    Failed,
    /// One attempt of a retried task.
    Attempts,
    /// Unfinished work of an interrupted task.
    Wip,
    /// What an earlier run left on a branch.
    Previous,
    /// Work kept when a run was aborted.
    Aborted,
    /// A resolution worktree's unfinished work.
    Resolution,
    /// Where the integration branch was when something other than streams moved it.
    MovedIntegration,
    /// What a stream's branch held when `streams retry` ran it again.
    Retried,
    /// A name this version does not write.
    Other,
}

impl KeptKind {
    fn component(self) -> &'static str {
        match self {
            KeptKind::Tasks => "tasks",
            KeptKind::Rejected => "rejected",
            KeptKind::Deleted => "deleted",
            KeptKind::Failed => "failed",
            KeptKind::Attempts => "attempts",
            KeptKind::Wip => "wip",
            KeptKind::Previous => "previous",
            KeptKind::Aborted => "aborted",
            KeptKind::Resolution => "resolution",
            KeptKind::MovedIntegration => "moved-integration",
            KeptKind::Retried => "retried",
            KeptKind::Other => "",
        }
    }

    const ALL: [KeptKind; 11] = [
        KeptKind::Tasks,
        KeptKind::Rejected,
        KeptKind::Deleted,
        KeptKind::Failed,
        KeptKind::Attempts,
        KeptKind::Wip,
        KeptKind::Previous,
        KeptKind::Aborted,
        KeptKind::Resolution,
        KeptKind::MovedIntegration,
        KeptKind::Retried,
    ];
}

/// The kind of a kept ref of `plan`; None for a ref outside `refs/streams/<plan>/`.
pub fn parse_kept(plan: &str, name: &str) -> Option<KeptKind> {
    let rest = name.strip_prefix(&kept_refs(plan))?;
    let first = rest.split('/').next().unwrap_or("");
    Some(
        KeptKind::ALL
            .into_iter()
            .find(|k| k.component() == first)
            .unwrap_or(KeptKind::Other),
    )
}

/// Names of the refs that keep a plan's work out of the way.
#[derive(Clone, Debug)]
pub struct RefNames {
    pub plan: String,
}

impl RefNames {
    pub fn new(plan: &str) -> RefNames {
        RefNames {
            plan: plan.to_string(),
        }
    }

    fn kept(&self, kind: KeptKind) -> String {
        format!("{}{}", kept_refs(&self.plan), kind.component())
    }

    pub fn rejected(&self, stream: &str, task: usize) -> String {
        format!("{}/{stream}/{}", self.kept(KeptKind::Rejected), task + 1)
    }
    /// The prefix of every rejected-work ref.
    pub fn rejected_prefix(&self) -> String {
        format!("{}/", self.kept(KeptKind::Rejected))
    }
    pub fn wip(&self, stream: &str, task: usize) -> String {
        format!("{}/{stream}/{}", self.kept(KeptKind::Wip), task + 1)
    }
    pub fn failed(&self, stream: &str, task: usize) -> String {
        format!("{}/{stream}/{}", self.kept(KeptKind::Failed), task + 1)
    }
    /// The prefix of the plan's own branches (streams and integration), which the dispatcher
    /// moves and guards; an agent's moves there are caught by it, not the branch guard.
    pub fn plan_branches(&self) -> String {
        plan_branches(&self.plan)
    }
    /// Where the tip of a branch deleted while a task ran is kept.
    pub fn deleted_branches(&self) -> String {
        self.kept(KeptKind::Deleted)
    }
    /// Where branches an agent moved keep what it left on them.
    pub fn moved_branches(&self, stream: &str, task: usize) -> String {
        format!(
            "{}/{stream}/{}-branches",
            self.kept(KeptKind::Rejected),
            task + 1
        )
    }
    pub fn attempt(&self, stream: &str, task: usize, attempt: u32) -> String {
        format!(
            "{}/{stream}/{}/{attempt}",
            self.kept(KeptKind::Attempts),
            task + 1
        )
    }
    /// A task's own end commit, kept when the stream branch moves on (sync = "task").
    pub fn task_end(&self, stream: &str, task: usize) -> String {
        format!("{}/{stream}/{}", self.kept(KeptKind::Tasks), task + 1)
    }
    pub fn previous(&self, run_id: &str, name: &str) -> String {
        format!("{}/{run_id}/{name}", self.kept(KeptKind::Previous))
    }
    /// Where `previous` refs go, for a message that names the place.
    pub fn previous_prefix(&self) -> String {
        format!("{}/", self.kept(KeptKind::Previous))
    }
    pub fn aborted(&self, run_id: &str, name: &str) -> String {
        format!("{}/{run_id}/{name}", self.kept(KeptKind::Aborted))
    }
    /// What a stream's branch held when `streams retry` ran the stream again.
    pub fn retried(&self, run_id: &str, stream: &str) -> String {
        format!("{}/{run_id}/{stream}", self.kept(KeptKind::Retried))
    }
    /// A resolution worktree's work, kept before the worktree is recreated.
    pub fn resolution(&self, name: &str) -> String {
        format!("{}/{name}", self.kept(KeptKind::Resolution))
    }
    /// Where the integration branch was when something other than streams moved it.
    pub fn moved_integration(&self) -> String {
        self.kept(KeptKind::MovedIntegration)
    }
}

/// `<common dir>/streams`: where run state lives.
pub fn state_dir(common_dir: &Path) -> PathBuf {
    common_dir.join("streams")
}

/// The directory holding a plan's worktrees: the plan's `worktree_root` (relative to the
/// repository root) if it sets one, else `<common dir>/streams/worktrees/<plan>`.
pub fn worktrees_dir(
    repo_root: &Path,
    common_dir: &Path,
    plan: &str,
    worktree_root: Option<&Path>,
) -> PathBuf {
    match worktree_root {
        Some(root) if root.is_absolute() => root.join(plan),
        Some(root) => repo_root.join(root).join(plan),
        None => state_dir(common_dir).join("worktrees").join(plan),
    }
}

/// Where the resolution worktree of a halted run goes, given the plan's worktree directory.
pub fn resolution_worktree(worktrees_dir: &Path) -> PathBuf {
    worktrees_dir.join(RESOLUTION_WORKTREE)
}

/// Whether a worktree path is a resolution worktree.
pub fn is_resolution_worktree(path: &Path) -> bool {
    path.file_name().is_some_and(|n| n == RESOLUTION_WORKTREE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_their_parsers() {
        let refs = RefNames::new("p");
        assert_eq!(stream_branch("p", "api"), "refs/heads/streams/p/api");
        assert_eq!(integration_ref("p"), "refs/heads/streams/p/integration");
        assert_eq!(
            plan_branch_name("p", &stream_branch("p", "api")),
            Some("api")
        );
        assert_eq!(plan_branch_name("p", "refs/heads/main"), None);
        assert_eq!(short_branch(&integration_ref("p")), "streams/p/integration");
        assert_eq!(
            short_branch("refs/streams/p/wip/a/1"),
            "refs/streams/p/wip/a/1"
        );
        assert_eq!(branch_ref("main"), "refs/heads/main");
        let cases = [
            (refs.rejected("a", 0), KeptKind::Rejected),
            (refs.moved_branches("a", 0), KeptKind::Rejected),
            (refs.wip("a", 1), KeptKind::Wip),
            (refs.failed("a", 0), KeptKind::Failed),
            (format!("{}/x", refs.deleted_branches()), KeptKind::Deleted),
            (refs.attempt("a", 0, 2), KeptKind::Attempts),
            (refs.task_end("a", 0), KeptKind::Tasks),
            (refs.previous("r1", "api"), KeptKind::Previous),
            (refs.aborted("r1", "integration"), KeptKind::Aborted),
            (refs.resolution("r1"), KeptKind::Resolution),
            (refs.moved_integration(), KeptKind::MovedIntegration),
            (refs.retried("r1", "api"), KeptKind::Retried),
            ("refs/streams/p/future/x".to_string(), KeptKind::Other),
        ];
        for (name, kind) in cases {
            assert_eq!(parse_kept("p", &name), Some(kind), "{name}");
        }
        assert_eq!(refs.wip("a", 1), "refs/streams/p/wip/a/2");
        assert_eq!(refs.moved_integration(), "refs/streams/p/moved-integration");
        assert_eq!(parse_kept("q", &refs.wip("a", 1)), None);
    }

    #[test]
    fn worktree_dirs() {
        let (root, common) = (Path::new("/r"), Path::new("/r/.git"));
        assert_eq!(
            worktrees_dir(root, common, "p", None),
            Path::new("/r/.git/streams/worktrees/p")
        );
        assert_eq!(
            worktrees_dir(root, common, "p", Some(Path::new("../wt"))),
            Path::new("/r/../wt/p")
        );
        assert_eq!(
            worktrees_dir(root, common, "p", Some(Path::new("/abs"))),
            Path::new("/abs/p")
        );
        let res = resolution_worktree(Path::new("/w/p"));
        assert!(is_resolution_worktree(&res));
        assert!(!is_resolution_worktree(Path::new("/w/p/api")));
    }
}
