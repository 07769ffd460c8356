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
//! <parent>/<repo>.streams/<plan>/<stream>     a stream's workspace (`worktree_root` moves it)
//! <common dir>/streams/control/<plan>/<stream> streams' control directory for that workspace
//! <parent>/<repo>.streams/<plan>/.integration the resolution worktree when the line stopped
//! <parent>/<repo>.streams/<plan>/.resolve-<stream> a parked stream's resolution worktree
//!
//! A run spread over CI machines (`run --only`, `integrate --from`) adds, per run id:
//! refs/streams/<plan>/manifests/<run>/<stream>  what a stream's machine did (a parent-less
//!                                                commit whose tree holds manifest.json)
//! refs/streams/<plan>/work/<run>/branch/<stream> that machine's stream branch, per run
//! refs/streams/<plan>/work/<run>/kept/<stream>/.. the work it kept (failed, rejected tasks)
//! refs/streams/<plan>/stages/<run>/<k>          the integration tip after stage k
//! refs/streams/<plan>/machine/<run>/integration a machine's private integration ref
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

/// A parked stream's resolution worktree is this followed by the stream's name (several
/// streams may be parked at once, each resolved in its own).
pub const PARKED_WORKTREE_PREFIX: &str = ".resolve-";

/// The gate worktree's directory name (beside the stream worktrees, reused by every gate run
/// of every run of the plan).
pub const GATE_WORKTREE: &str = ".gate";

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
    /// Manifests of streams run on other machines (`run --only --push`).
    Manifests,
    /// Stream branches pushed by other machines, per run.
    Work,
    /// The integration tip after each stage of a run spread over machines.
    Stages,
    /// A machine's private integration ref for its one stream.
    Machine,
    /// An agent's own commits, not taken as its task's history (the task's end is a commit of
    /// streams' own of its files).
    Agent,
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
            KeptKind::Manifests => "manifests",
            KeptKind::Work => "work",
            KeptKind::Stages => "stages",
            KeptKind::Machine => "machine",
            KeptKind::Agent => "agent",
            KeptKind::Other => "",
        }
    }

    const ALL: [KeptKind; 16] = [
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
        KeptKind::Manifests,
        KeptKind::Work,
        KeptKind::Stages,
        KeptKind::Machine,
        KeptKind::Agent,
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

/// The run a kept ref of `plan` belongs to, for the kinds kept under a run's id
/// (`previous`, `aborted`, `retried`, and those of a run spread over machines); `None` for the
/// others (they belong to the plan's last run) and for refs outside the plan.
pub fn kept_run_id<'a>(plan: &str, name: &'a str) -> Option<&'a str> {
    let kind = parse_kept(plan, name)?;
    let per_run = matches!(
        kind,
        KeptKind::Previous
            | KeptKind::Aborted
            | KeptKind::Retried
            | KeptKind::Manifests
            | KeptKind::Work
            | KeptKind::Stages
            | KeptKind::Machine
    );
    if !per_run {
        return None;
    }
    let rest = name.strip_prefix(&kept_refs(plan))?;
    rest.split('/').nth(1).filter(|id| !id.is_empty())
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
    pub fn wip(&self, stream: &str, task: usize) -> String {
        format!("{}/{stream}/{}", self.kept(KeptKind::Wip), task + 1)
    }
    pub fn failed(&self, stream: &str, task: usize) -> String {
        format!("{}/{stream}/{}", self.kept(KeptKind::Failed), task + 1)
    }
    /// Where an agent's own commits are kept when they are not its task's history.
    pub fn agent(&self, stream: &str, task: usize) -> String {
        format!("{}/{stream}/{}", self.kept(KeptKind::Agent), task + 1)
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
    /// The manifest of `stream` in run `run_id` spread over machines.
    pub fn manifest(&self, run_id: &str, stream: &str) -> String {
        format!("{}{stream}", self.manifests_prefix(run_id))
    }
    /// Where every manifest of run `run_id` lives (a fetch refspec's source and destination).
    pub fn manifests_prefix(&self, run_id: &str) -> String {
        format!("{}/{run_id}/", self.kept(KeptKind::Manifests))
    }
    /// The stream branch a machine pushed for run `run_id` (the usual branch name is shared by
    /// every run; this one is not overwritten by the next).
    pub fn work(&self, run_id: &str, stream: &str) -> String {
        format!("{}branch/{stream}", self.work_prefix(run_id))
    }
    /// Where a machine pushes the work it kept for `stream` (a failed or rejected task's):
    /// `local` is the kept ref's name on the machine, under `refs/streams/<plan>/`.
    pub fn work_kept(&self, run_id: &str, stream: &str, local: &str) -> String {
        let rest = local.strip_prefix(&kept_refs(&self.plan)).unwrap_or(local);
        format!("{}kept/{stream}/{rest}", self.work_prefix(run_id))
    }
    pub fn work_prefix(&self, run_id: &str) -> String {
        format!("{}/{run_id}/", self.kept(KeptKind::Work))
    }
    /// The integration tip after stage `stage` (numbered from 0) of run `run_id`.
    pub fn stage(&self, run_id: &str, stage: usize) -> String {
        format!("{}{stage}", self.stages_prefix(run_id))
    }
    pub fn stages_prefix(&self, run_id: &str) -> String {
        format!("{}/{run_id}/", self.kept(KeptKind::Stages))
    }
    /// The result of a whole integration (every stage at once) of run `run_id`.
    pub fn whole(&self, run_id: &str) -> String {
        format!("{}all", self.stages_prefix(run_id))
    }
    /// Where the integration results of every run spread over machines are recorded.
    pub fn all_stages_prefix(&self) -> String {
        format!("{}/", self.kept(KeptKind::Stages))
    }
    /// The integration ref of a machine running one stream of run `run_id`: private to that
    /// run, so the user's integration branch is never touched by it.
    pub fn machine_integration(&self, run_id: &str) -> String {
        format!("{}/{run_id}/{INTEGRATION}", self.kept(KeptKind::Machine))
    }
}

/// The longest run id a caller may choose (it is one component of refs and a directory name).
pub const MAX_RUN_ID_BYTES: usize = 100;

/// Why `id` cannot be a run id chosen by a caller (`--run-id`): it must be one ref component
/// and one directory name. GitHub's `<run_id>-<run_attempt>` (`123456789-1`) passes.
pub fn run_id_problem(id: &str) -> Option<String> {
    if id.len() > MAX_RUN_ID_BYTES {
        return Some(format!(
            "it has {} bytes, more than the {MAX_RUN_ID_BYTES} a run id may have",
            id.len()
        ));
    }
    if id.is_empty() {
        return Some("it is empty".into());
    }
    if let Some(c) = id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        return Some(format!(
            "it contains `{c}`: use letters, digits, `-`, `_` and `.`"
        ));
    }
    // What git's ref rules add to the characters above (`git check-ref-format`).
    if id.starts_with(['.', '-']) {
        return Some(format!("it starts with `{}`", &id[..1]));
    }
    if id.ends_with('.') || id.ends_with(".lock") || id.contains("..") {
        return Some("it ends with `.` or `.lock`, or contains `..`".into());
    }
    None
}

/// `<common dir>/streams`: where run state lives.
pub fn state_dir(common_dir: &Path) -> PathBuf {
    common_dir.join("streams")
}

/// The directory holding a plan's worktrees: the plan's `worktree_root` (relative to the
/// repository root) if it sets one, else beside the repository on the same file system,
/// `<parent>/<repo>.streams/<plan>`: outside `.git/`, where agent CLIs refuse to edit (Claude
/// Code treats every path under `.git/` as sensitive), and near the objects the workspaces
/// borrow.
pub fn worktrees_dir(
    repo_root: &Path,
    common_dir: &Path,
    plan: &str,
    worktree_root: Option<&Path>,
) -> PathBuf {
    match worktree_root {
        Some(root) if root.is_absolute() => root.join(plan),
        Some(root) => repo_root.join(root).join(plan),
        None => match (repo_root.parent(), repo_root.file_name()) {
            (Some(parent), Some(name)) => {
                let mut dir = name.to_os_string();
                dir.push(".streams");
                parent.join(dir).join(plan)
            }
            // A repository at `/`: nowhere beside it.
            _ => legacy_worktrees_dir(common_dir, plan),
        },
    }
}

/// The checkout whose default workspaces directory (`<parent>/<repo>.streams`, see
/// [`worktrees_dir`]) holds `path`, if one does: `<parent>/<repo>` for the nearest
/// `<repo>.streams` above it. A guess from the name only: the caller checks it is a repository.
pub fn checkout_beside(path: &Path) -> Option<PathBuf> {
    path.ancestors().find_map(|dir| {
        let repo = dir.file_name()?.to_str()?.strip_suffix(".streams")?;
        (!repo.is_empty()).then(|| dir.with_file_name(repo))
    })
}

/// Where a plan's worktrees were before they moved out of `.git/`:
/// `<common dir>/streams/worktrees/<plan>`. A run finds a stream's workspace left there and moves
/// it to [`worktrees_dir`].
pub fn legacy_worktrees_dir(common_dir: &Path, plan: &str) -> PathBuf {
    state_dir(common_dir).join("worktrees").join(plan)
}

/// The control directory of the workspace at `workspace` (streams' own git directory for it,
/// see `git::control`): under the user's git directory, by plan and stream (a workspace's
/// path ends in `<plan>/<stream>`), where an agent confined to its workspace cannot write.
pub fn workspace_control_dir(common_dir: &Path, workspace: &Path) -> PathBuf {
    let name = |p: Option<&Path>| {
        p.and_then(Path::file_name)
            .map(|n| n.to_os_string())
            .unwrap_or_default()
    };
    state_dir(common_dir)
        .join("control")
        .join(name(workspace.parent()))
        .join(name(Some(workspace)))
}

/// Where the resolution worktree goes when a conflict stops the line
/// (`on_conflict = "stop"`), given the plan's worktree directory.
pub fn resolution_worktree(worktrees_dir: &Path) -> PathBuf {
    worktrees_dir.join(RESOLUTION_WORKTREE)
}

/// Where a parked stream's resolution worktree goes, given the plan's worktree directory.
pub fn parked_worktree(worktrees_dir: &Path, stream: &str) -> PathBuf {
    worktrees_dir.join(format!("{PARKED_WORKTREE_PREFIX}{stream}"))
}

/// Where the gate runs: one worktree per plan, detached at each candidate in turn.
pub fn gate_worktree(worktrees_dir: &Path) -> PathBuf {
    worktrees_dir.join(GATE_WORKTREE)
}

/// Whether a worktree path is a resolution worktree (the stopped line's or a parked stream's).
pub fn is_resolution_worktree(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n == RESOLUTION_WORKTREE || n.starts_with(PARKED_WORKTREE_PREFIX))
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
            (refs.agent("a", 0), KeptKind::Agent),
            (format!("{}/x", refs.deleted_branches()), KeptKind::Deleted),
            (refs.attempt("a", 0, 2), KeptKind::Attempts),
            (refs.task_end("a", 0), KeptKind::Tasks),
            (refs.previous("r1", "api"), KeptKind::Previous),
            (refs.aborted("r1", "integration"), KeptKind::Aborted),
            (refs.resolution("r1"), KeptKind::Resolution),
            (refs.moved_integration(), KeptKind::MovedIntegration),
            (refs.retried("r1", "api"), KeptKind::Retried),
            (refs.manifest("r1", "api"), KeptKind::Manifests),
            (refs.work("r1", "api"), KeptKind::Work),
            (refs.stage("r1", 0), KeptKind::Stages),
            (refs.machine_integration("r1"), KeptKind::Machine),
            ("refs/streams/p/future/x".to_string(), KeptKind::Other),
        ];
        for (name, kind) in cases {
            assert_eq!(parse_kept("p", &name), Some(kind), "{name}");
        }
        assert_eq!(refs.wip("a", 1), "refs/streams/p/wip/a/2");
        assert_eq!(kept_run_id("p", &refs.previous("r1", "api")), Some("r1"));
        assert_eq!(kept_run_id("p", &refs.manifest("r2", "api")), Some("r2"));
        assert_eq!(kept_run_id("p", &refs.wip("a", 1)), None);
        assert_eq!(kept_run_id("q", &refs.previous("r1", "api")), None);
        assert_eq!(refs.moved_integration(), "refs/streams/p/moved-integration");
        assert_eq!(parse_kept("q", &refs.wip("a", 1)), None);
    }

    #[test]
    fn run_ids_chosen_by_a_caller() {
        assert_eq!(run_id_problem("123456789-1"), None);
        assert_eq!(run_id_problem("20260101-000000-1a2b"), None);
        assert!(run_id_problem("").is_some());
        assert!(run_id_problem("a/b").is_some());
        assert!(run_id_problem("..").is_some());
        assert!(run_id_problem("-x").is_some());
        assert!(run_id_problem(&"1".repeat(101)).is_some());
        assert_eq!(
            RefNames::new("p").stage("9-1", 2),
            "refs/streams/p/stages/9-1/2"
        );
    }

    #[test]
    fn worktree_dirs() {
        let (root, common) = (Path::new("/r"), Path::new("/r/.git"));
        assert_eq!(
            worktrees_dir(root, common, "p", None),
            Path::new("/r.streams/p")
        );
        assert_eq!(
            worktrees_dir(Path::new("/home/u/app"), common, "p", None),
            Path::new("/home/u/app.streams/p")
        );
        assert_eq!(
            checkout_beside(Path::new("/home/u/app.streams/p/.resolve-b/src")),
            Some(PathBuf::from("/home/u/app"))
        );
        assert_eq!(checkout_beside(Path::new("/home/u/app/src")), None);
        assert_eq!(
            legacy_worktrees_dir(common, "p"),
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
        assert_eq!(
            workspace_control_dir(common, Path::new("/abs/p/api")),
            Path::new("/r/.git/streams/control/p/api")
        );
        let res = resolution_worktree(Path::new("/w/p"));
        assert!(is_resolution_worktree(&res));
        let parked = parked_worktree(Path::new("/w/p"), "api");
        assert_eq!(parked, Path::new("/w/p/.resolve-api"));
        assert!(is_resolution_worktree(&parked));
        assert!(!is_resolution_worktree(Path::new("/w/p/api")));
    }
}
