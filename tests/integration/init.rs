//! `streams init`: the plan it writes for a repository (snapshotted whole), the check it runs,
//! the embedded examples, and that it never overwrites anything.

use std::path::Path;

use crate::common::{TestRepo, agents_dir};

/// A repository shaped like many real ones: a few source directories of different sizes, a
/// hidden one, lock files and other files at the root.
fn project() -> TestRepo {
    TestRepo::with_files(&[
        ("Cargo.toml", "[package]\nname = \"shop\"\n"),
        ("Cargo.lock", "# lock\n"),
        ("package-lock.json", "{}\n"),
        ("CHANGELOG.md", "# changes\n"),
        ("README.md", "# shop\n"),
        ("LICENSE", "MIT\n"),
        ("src/main.rs", "fn main() {}\n"),
        ("src/api/mod.rs", "\n"),
        ("src/api/login.rs", "\n"),
        ("src/db/mod.rs", "\n"),
        ("web/index.html", "\n"),
        ("web/app.js", "\n"),
        ("web/style.css", "\n"),
        ("docs/guide.md", "\n"),
        ("docs/api.md", "\n"),
        ("tests/login.rs", "\n"),
        ("migrations/001.sql", "\n"),
        ("scripts/deploy.sh", "\n"),
        (".github/workflows/ci.yml", "\n"),
        ("my dir/notes.txt", "\n"),
    ])
}

/// PATH with only the system's programs and the scripted agents: no agent CLI on it.
fn without_agent_clis(repo: &mut TestRepo) {
    repo.env.push((
        "PATH".into(),
        format!("{}:/usr/local/bin:/usr/bin:/bin", agents_dir().display()),
    ));
}

#[test]
fn writes_a_commented_plan_for_the_repository_and_checks_it() {
    let repo = project().with_agent_stubs();
    let out = repo.streams(&["init"]);
    out.assert_code(0);
    insta::assert_snapshot!("generated_plan", repo.read("streams.toml"));
    insta::assert_snapshot!("init_output", out.to_string());
    // What it wrote is what `plan` accepts.
    repo.streams(&["plan"]).assert_code(0);
    // Nothing else changed: no commit, nothing staged.
    assert_eq!(
        repo.git(&["status", "--porcelain"]),
        "?? streams.toml",
        "init wrote more than the plan"
    );
}

#[test]
fn with_no_agent_cli_on_path_init_and_init_from_both_ask_for_one() {
    // A plan without an agent cannot run: `init` said `error:` about it and exited 0, while
    // `init --from --dry-run` refused (2). Both refuse now, nothing written, the same way.
    let mut repo = project();
    without_agent_clis(&mut repo);
    repo.write("TODO.md", "- [ ] add a login page in web/\n");
    let out = repo.streams(&["init"]);
    out.assert_code(2);
    assert!(!repo.path("streams.toml").exists());
    insta::assert_snapshot!(out.to_string());
    let from = repo.streams(&["init", "--from", "TODO.md", "--dry-run"]);
    from.assert_code(2);
    assert_eq!(
        from.stderr.lines().next(),
        out.stderr.lines().next(),
        "{from}"
    );
    assert!(
        from.stderr
            .contains("`streams init --from TODO.md --agent claude`"),
        "{from}"
    );
    // Named, it is written even so (`plan` says it is not on PATH).
    repo.streams(&["init", "--agent", "codex"]).assert_code(0);
}

#[test]
fn placeholder_tasks_are_a_plan_warning() {
    let repo = project().with_agent_stubs();
    repo.streams(&["init"]).assert_code(0);
    let out = repo.streams(&["plan"]);
    out.assert_code(0);
    assert!(
        out.stderr
            .contains("warning: task 1 of stream `docs` is the placeholder `streams init` wrote"),
        "{out}"
    );
    assert!(
        out.stderr
            .contains("help: write what the agent is to do: each task is one prompt"),
        "{out}"
    );
}

#[test]
fn an_agent_script_that_does_not_exist_is_a_plan_warning() {
    // `init --agent script` names `scripts/agent.sh` for the person to write: `plan` must not
    // call the plan valid before it is there and committed.
    let repo = project().with_agent_stubs();
    repo.streams(&["init", "--agent", "script"]).assert_code(0);
    let out = repo.streams(&["plan"]);
    out.assert_code(0);
    assert!(
        out.stderr
            .contains("warning: agent script `scripts/agent.sh` does not exist at `base`"),
        "{out}"
    );
    // Written but not committed: said so.
    repo.write("scripts/agent.sh", "#!/bin/sh\n");
    let out = repo.streams(&["plan"]);
    out.assert_code(0);
    assert!(
        out.stderr
            .contains("warning: agent script `scripts/agent.sh` is not committed at `base`"),
        "{out}"
    );
    repo.git(&["add", "scripts/agent.sh"]);
    repo.git(&["commit", "-qm", "agent script"]);
    let out = repo.streams(&["plan"]);
    out.assert_code(0);
    assert!(!out.stderr.contains("agent script"), "{out}");
}

#[test]
fn agent_flag_writes_that_agent_only() {
    for (agent, line) in [
        ("claude", r#"agent = "claude""#),
        ("codex", r#"agent = "codex""#),
        ("aider", r#"agent = "aider""#),
        // (`script`: the script is the person's to write, see
        // `an_agent_script_that_does_not_exist_is_a_plan_warning`.)
    ] {
        let repo = project().with_agent_stubs();
        let out = repo.streams(&["init", "--agent", agent]);
        out.assert_code(0);
        let text = repo.read("streams.toml");
        let agents: Vec<&str> = text.lines().filter(|l| l.starts_with("agent =")).collect();
        assert_eq!(agents, [line], "{agent}:\n{text}");
        assert!(out.stderr.contains("is a valid plan"), "{agent}: {out}");
    }
}

#[test]
fn never_overwrites() {
    let repo = project().with_agent_stubs();
    repo.write("streams.toml", "# mine\n");
    let out = repo.streams(&["init"]);
    out.assert_code(2);
    insta::assert_snapshot!(out.to_string());
    assert_eq!(repo.read("streams.toml"), "# mine\n");

    // Another path is fine, and `plan` is told to use it.
    let out = repo.streams(&["init", "plans/next.toml"]);
    out.assert_code(0);
    assert!(repo.path("plans/next.toml").is_file());
    assert!(out.stderr.contains("streams plan plans/next.toml"), "{out}");
    // An example never overwrites the files it brings either.
    repo.write("prompts/db-indexes.md", "mine\n");
    let out = repo.streams(&["init", "--example", "agents", "other.toml"]);
    out.assert_code(2);
    assert!(
        out.stderr.contains("prompts/db-indexes.md already exists"),
        "{out}"
    );
    assert!(!repo.path("other.toml").exists());
    assert_eq!(repo.read("prompts/db-indexes.md"), "mine\n");
}

#[test]
fn examples_are_embedded() {
    let repo = project().with_agent_stubs();
    let out = repo.streams(&["init", "--example"]);
    out.assert_code(0);
    insta::assert_snapshot!(out.to_string());

    let out = repo.streams(&["init", "--example", "nope"]);
    out.assert_code(2);
    assert!(out.stderr.contains("no example plan named `nope`"), "{out}");
    assert!(!repo.path("streams.toml").exists());

    // The binary's copy is the file in streams/, and its prompt file comes with it.
    let out = repo.streams(&["init", "--example", "agents"]);
    out.assert_code(0);
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("streams");
    assert_eq!(
        repo.read("streams.toml"),
        std::fs::read_to_string(examples.join("agents.toml")).unwrap()
    );
    assert_eq!(
        repo.read("prompts/db-indexes.md"),
        std::fs::read_to_string(examples.join("prompts/db-indexes.md")).unwrap()
    );
}

#[test]
fn a_repository_without_commits_is_refused() {
    let repo = TestRepo::empty();
    let out = repo.streams(&["init"]);
    out.assert_code(2);
    insta::assert_snapshot!(out.to_string());
    assert!(!repo.path("streams.toml").exists());
}
