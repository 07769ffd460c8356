//! The grouping's unit tests: small task lists against what `group` and `generate` make of
//! them (streams, `depends_on`, phases, cycles) and the plan that results checking.

use super::super::{Format, Generated, Options, generate};
use super::*;
use crate::plan::{self, CheckError, Plan};

const FILES: &[&str] = &[
    "README.md",
    "src/main.rs",
    "src/api/mod.rs",
    "src/api/login.rs",
    "src/db/mod.rs",
    "src/db/schema.rs",
    "docs/guide.md",
    "docs/api.md",
];

fn view() -> RepoView {
    RepoView::new("HEAD", "0".repeat(40), FILES.iter().map(|f| f.to_string()))
}

/// Generates a plan and holds it to the validator `streams plan` runs.
fn generated(tasks: &str) -> (Generated, Plan) {
    let options = Options {
        name: None,
        default_name: None,
        source: "tasks.md".into(),
        agent: crate::authoring::init::AgentChoice::Only(crate::authoring::init::AgentCli::Codex),
    };
    let out =
        generate(tasks, Format::Markdown, &view(), &options).unwrap_or_else(|p| panic!("{p:#?}"));
    match plan::check(&out.text, &mut view()) {
        Ok(checked) => (out, checked.plan),
        Err(CheckError::Invalid(d)) => {
            panic!("{}\n{}", out.text, d.render(&out.text, "plan", false))
        }
        Err(CheckError::Repository(never)) => match never {},
    }
}

fn problems(tasks: &str) -> Vec<String> {
    let list = super::super::parse::parse(tasks, Format::Markdown, &view()).unwrap();
    group(&list, &view())
        .unwrap_err()
        .into_iter()
        .map(|p| format!("{}: {}", p.at, p.message))
        .collect()
}

fn summary(plan: &Plan) -> Vec<String> {
    plan.streams
        .iter()
        .map(|s| {
            let owns: Vec<&str> = s.owns.iter().map(|p| p.text.as_str()).collect();
            let tasks: Vec<String> = s
                .tasks
                .iter()
                .map(|t| t.prompt.summary().split(' ').next().unwrap().to_string())
                .collect();
            format!(
                "{} owns {} tasks {} after [{}]",
                s.name,
                owns.join(" "),
                tasks.join(" "),
                s.depends_on.join(" ")
            )
        })
        .collect()
}

#[test]
fn tasks_naming_one_file_share_a_stream() {
    let (out, plan) = generated(
        "- [ ] T1 [P] Add login in src/api/login.rs\n- [ ] T2 [P] Write the guide in docs/guide.md\n- [ ] T3 [P] Rate-limit src/api/login.rs\n",
    );
    assert_eq!(
        summary(&plan),
        [
            "login owns src/api/login.rs tasks T1 T3 after []",
            "guide owns docs/guide.md tasks T2 after []",
        ]
    );
    let notes = &out.grouping.streams[0].notes;
    assert_eq!(notes[0], "T1 and T3: both name `src/api/login.rs`");
    assert!(
        notes[1].contains("marked [P], but share files"),
        "{notes:?}"
    );
}

#[test]
fn a_named_directory_takes_the_files_under_it() {
    let (_, plan) = generated(
        "- [ ] T1 Reorganise src/db/\n- [ ] T2 Index src/db/schema.rs\n- [ ] T3 Touch src/main.rs\n",
    );
    assert_eq!(
        summary(&plan),
        [
            "db owns src/db/** tasks T1 T2 after []",
            "main owns src/main.rs tasks T3 after []",
        ]
    );
}

#[test]
fn a_whole_directory_becomes_a_glob_and_a_shared_one_exact_paths() {
    // docs/ is all T1's; src/api/ also holds mod.rs, which nobody names; src/models/ is
    // new and only T3's.
    let (_, plan) = generated(
        "- [ ] T1 Edit docs/guide.md and docs/api.md\n- [ ] T2 Edit src/api/login.rs\n- [ ] T3 Create `src/models/user.py`\n- [ ] T4 Create `src/models/extra/x.py` and README.md\n",
    );
    assert_eq!(
        summary(&plan),
        [
            "docs owns docs/** tasks T1 after []",
            "login owns src/api/login.rs tasks T2 after []",
            "user owns src/models/user.py tasks T3 after []",
            "readme owns README.md src/models/extra/** tasks T4 after []",
        ]
    );
}

#[test]
fn dependencies_across_streams_become_depends_on_without_repeats() {
    let (out, plan) = generated(
        "- [ ] T1 Schema in src/db/schema.rs\n- [ ] T2 Login in src/api/login.rs (depends on T1)\n- [ ] T3 Guide in docs/guide.md after T2 and T1\n",
    );
    assert_eq!(
        summary(&plan),
        [
            "schema owns src/db/schema.rs tasks T1 after []",
            "login owns src/api/login.rs tasks T2 after [schema]",
            "guide owns docs/guide.md tasks T3 after [login]",
        ]
    );
    assert_eq!(
        out.grouping.streams[1].depends_on,
        [(0, "T2 depends on T1".to_string())]
    );
}

#[test]
fn a_cycle_is_an_error_naming_its_ids() {
    assert_eq!(
        problems(
            "- [ ] T1 a in src/main.rs after T3\n- [ ] T2 b\n- [ ] T3 c depends on T4\n- [ ] T4 d blocked by T1\n"
        ),
        [
            "line 1: the task dependencies form a cycle: T1 depends on T3, T3 on T4, T4 on T1; remove one of these dependencies"
        ]
    );
}

#[test]
fn streams_waiting_for_each_other_both_ways_become_one() {
    // T2 waits for T1 (other stream) and T3 (same stream as T1) waits for T4 (T2's).
    let (out, plan) = generated(
        "- [ ] T1 a in src/main.rs\n- [ ] T2 b in docs/guide.md after T1\n- [ ] T3 c in src/main.rs after T4\n- [ ] T4 d in docs/guide.md\n",
    );
    assert_eq!(
        summary(&plan),
        ["guide owns docs/guide.md src/main.rs tasks T1 T2 T4 T3 after []"]
    );
    assert!(
        out.grouping.streams[0]
            .notes
            .iter()
            .any(|n| n.contains("wait for each other both ways (T2 needs T1, T3 needs T4)")),
        "{:?}",
        out.grouping.streams[0].notes
    );
}

#[test]
fn a_task_creating_a_file_runs_before_the_tasks_changing_it() {
    let (out, plan) =
        generated("- [ ] T1 Call `src/auth.rs` from src/main.rs\n- [ ] T2 Create `src/auth.rs`\n");
    assert_eq!(
        summary(&plan),
        ["auth owns src/auth.rs src/main.rs tasks T2 T1 after []"]
    );
    assert!(
        out.grouping.streams[0]
            .notes
            .contains(&"T2 runs before T1: it creates `src/auth.rs`".to_string())
    );
}

#[test]
fn phases_order_the_streams_that_touch_and_no_others() {
    let (out, plan) = generated(
        "## Phase 1: Setup\n- [ ] T1 Prepare the schema in src/db/schema.rs\n- [ ] T2 [P] Outline docs/guide.md\n## Phase 2: Core\n- [ ] T3 Wire src/db/mod.rs\n- [ ] T4 Login in src/api/login.rs\n",
    );
    assert_eq!(
        summary(&plan),
        [
            "schema owns src/db/schema.rs tasks T1 after []",
            "guide owns docs/guide.md tasks T2 after []",
            "db owns src/db/mod.rs tasks T3 after [schema]",
            "login owns src/api/login.rs tasks T4 after []",
        ]
    );
    assert_eq!(
        out.grouping.streams[2].depends_on[0].1,
        "Phase 1 comes before Phase 2, and both work in `src/db/`"
    );
}

#[test]
fn tasks_naming_no_file_get_a_flagged_stream_per_phase_that_orders_its_neighbours() {
    let (out, plan) = generated(
        "## Phase 1: Setup (Shared Infrastructure)\n- [ ] T1 Create the project structure\n- [ ] T2 Configure linting\n## Phase 2: User Story 1 - Login (Priority: P1)\n- [ ] T3 Login in src/api/login.rs\n- [ ] T4 Add logging\n",
    );
    assert_eq!(
        summary(&plan),
        [
            "setup owns unassigned/setup/** tasks T1 T2 after []",
            "login owns src/api/login.rs tasks T3 after [setup]",
            "user-story-1 owns unassigned/user-story-1/** tasks T4 after [setup]",
        ]
    );
    let setup = &out.grouping.streams[0];
    assert!(setup.unassigned);
    assert!(
        setup.notes.iter().any(|n| n.starts_with("REVIEW")),
        "{:?}",
        setup.notes
    );
    assert_eq!(plan.streams[1].priority, 2, "P1");
    assert_eq!(plan.streams[0].priority, 0);
}

#[test]
fn a_new_directory_others_fill_is_scaffolding_not_ownership() {
    let (out, plan) = generated(
        "- [ ] T1 Create the src/app/ package\n- [ ] T2 [P] Parser in src/app/parse.rs\n- [ ] T3 [P] Lexer in src/app/lex.rs\n",
    );
    assert_eq!(
        summary(&plan),
        [
            "unassigned owns unassigned/unassigned/** tasks T1 after []",
            "parse owns src/app/parse.rs tasks T2 after [unassigned]",
            "lex owns src/app/lex.rs tasks T3 after [unassigned]",
        ]
    );
    assert!(
        out.grouping.streams[0]
            .notes
            .iter()
            .any(|n| n == "T1 names a new directory that other tasks fill (`src/app/`): it runs before them and owns nothing there"),
        "{:?}",
        out.grouping.streams[0].notes
    );
}

#[test]
fn priorities_map_p0_highest() {
    let (_, plan) = generated(
        "- [ ] T1 [P3] a in src/main.rs\n- [ ] T2 [P0] b in docs/api.md\n- [ ] T3 c in README.md priority: P2\n",
    );
    let priorities: Vec<i64> = plan.streams.iter().map(|s| s.priority).collect();
    assert_eq!(priorities, [0, 3, 1]);
}

#[test]
fn names_stay_unique_and_valid() {
    let (_, plan) = generated(
        "- [ ] a in src/api/mod.rs\n- [ ] b in src/db/mod.rs\n- [ ] c in `integration/x.rs`\n",
    );
    let names: Vec<&str> = plan.streams.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["api", "db", "integration-2"]);
}
