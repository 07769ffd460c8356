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
fn agent_script_writes_the_script_it_names_and_says_to_commit_it() {
    // `init --agent script` named `scripts/agent.sh` and left it to the person to write.
    use std::os::unix::fs::PermissionsExt as _;
    let repo = project().with_agent_stubs();
    let out = repo.streams(&["init", "--agent", "script"]);
    out.assert_code(0);
    let script = repo.path("scripts/agent.sh");
    let mode = std::fs::metadata(&script).unwrap().permissions().mode();
    assert_eq!(mode & 0o111, 0o111, "not executable: {mode:o}");
    assert!(out.stderr.contains("wrote scripts/agent.sh"), "{out}");
    assert!(
        out.stderr
            .contains("`git add scripts/agent.sh && git commit -m \"streams agent\"`"),
        "{out}"
    );
    // Until it is committed, `plan` says the workspaces will not have it.
    let out = repo.streams(&["plan"]);
    out.assert_code(0);
    assert!(
        out.stderr
            .contains("warning: agent script `scripts/agent.sh` is not committed at `base`"),
        "{out}"
    );
    // Committed as told, the plan is clean of it and a run runs it: every stream fails with
    // the script's own word that it calls no agent yet.
    repo.git(&["add", "scripts/agent.sh"]);
    repo.git(&["commit", "-qm", "streams agent"]);
    let out = repo.streams(&["plan"]);
    out.assert_code(0);
    assert!(!out.stderr.contains("agent script"), "{out}");
    let out = repo.streams(&["run", "--jobs", "2"]);
    out.assert_code(4);
    let logs = repo.streams(&["logs", "docs"]);
    assert!(
        logs.to_string()
            .contains("scripts/agent.sh calls no agent yet: edit it to run one on"),
        "{out}\n{logs}"
    );
    // A script of the person's own is kept as it is.
    let repo = project().with_agent_stubs();
    repo.write("scripts/agent.sh", "#!/bin/sh\nmine\n");
    let out = repo.streams(&["init", "--agent", "script"]);
    out.assert_code(0);
    assert_eq!(repo.read("scripts/agent.sh"), "#!/bin/sh\nmine\n");
    assert!(!out.stderr.contains("wrote scripts/agent.sh"), "{out}");
}

#[test]
fn an_agent_script_that_does_not_exist_is_a_plan_warning() {
    // The plan names `scripts/agent.sh`: `plan` must not call the plan valid while it is not
    // there and committed.
    let repo = project().with_agent_stubs();
    repo.streams(&["init", "--agent", "script"]).assert_code(0);
    std::fs::remove_file(repo.path("scripts/agent.sh")).unwrap();
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

/// The `owns` lines of a written plan's streams, comments left out.
fn owned(text: &str) -> Vec<&str> {
    text.lines()
        .filter(|l| l.starts_with("owns = "))
        .map(|l| l.split(" #").next().unwrap().trim_end())
        .collect()
}

#[test]
fn a_cargo_workspace_gets_a_stream_per_member() {
    // Shaped like ripgrep: the root package's code in `crates/core`, members beside it in
    // `crates/`, one of them by a glob and one excluded; one `crates` stream of everything was
    // written before.
    let repo = TestRepo::with_files(&[
        (
            "Cargo.toml",
            "[package]\nname = \"rg\"\n\n[[bin]]\nname = \"rg\"\npath = \"crates/core/main.rs\"\n\n\
             [workspace]\nmembers = [\"crates/cli\", \"crates/globset\", \"crates/ignore\", \"crates/p*\"]\n\
             exclude = [\"crates/fuzz\"]\n",
        ),
        ("Cargo.lock", "# lock\n"),
        ("build.rs", "fn main() {}\n"),
        ("README.md", "# rg\n"),
        ("crates/README.md", "the crates\n"),
        ("crates/core/main.rs", "\n"),
        ("crates/core/flags.rs", "\n"),
        ("crates/core/search.rs", "\n"),
        ("crates/cli/Cargo.toml", "[package]\nname = \"grep-cli\"\n"),
        ("crates/cli/src/lib.rs", "\n"),
        ("crates/cli/src/wtr.rs", "\n"),
        ("crates/globset/Cargo.toml", "[package]\nname = \"globset\"\n"),
        ("crates/globset/src/lib.rs", "\n"),
        ("crates/globset/src/glob.rs", "\n"),
        ("crates/ignore/Cargo.toml", "[package]\nname = \"ignore\"\n"),
        ("crates/ignore/src/lib.rs", "\n"),
        ("crates/ignore/src/walk.rs", "\n"),
        ("crates/ignore/src/dir.rs", "\n"),
        ("crates/ignore/tests/gitignore.rs", "\n"),
        ("crates/printer/Cargo.toml", "[package]\nname = \"grep-printer\"\n"),
        ("crates/printer/src/lib.rs", "\n"),
        ("crates/printer/src/json.rs", "\n"),
        ("crates/pcre2/Cargo.toml", "[package]\nname = \"grep-pcre2\"\n"),
        ("crates/pcre2/src/lib.rs", "\n"),
        ("crates/fuzz/Cargo.toml", "[package]\nname = \"fuzz\"\n"),
        ("crates/fuzz/fuzz_targets/glob.rs", "\n"),
        ("tests/tests.rs", "\n"),
        ("tests/misc.rs", "\n"),
        ("tests/json.rs", "\n"),
        ("tests/util.rs", "\n"),
        (".github/workflows/ci.yml", "\n"),
    ])
    .with_agent_stubs();
    let out = repo.streams(&["init", "--agent", "codex"]);
    out.assert_code(0);
    let text = repo.read("streams.toml");
    insta::assert_snapshot!("cargo_workspace_plan", text);
    // The five largest members (and directories beside them) as streams before `tests/`, the
    // others written out as comments; `crates/core` (the root package's code) and `crates/fuzz`
    // (excluded) are directories of their own, never one `crates/**` over the members.
    assert_eq!(
        owned(&text),
        [
            r#"owns = ["crates/cli/**"]"#,
            r#"owns = ["crates/core/**"]"#,
            r#"owns = ["crates/globset/**"]"#,
            r#"owns = ["crates/ignore/**"]"#,
            r#"owns = ["crates/printer/**"]"#,
        ]
    );
    for other in [
        "crates/fuzz/**",
        "crates/pcre2/**",
        "tests/**",
        ".github/**",
    ] {
        assert!(
            text.contains(&format!("# owns = [\"{other}\"]")),
            "{other}:\n{text}"
        );
    }
    assert!(
        text.contains(r#"shared = ["Cargo.lock", "Cargo.toml"]"#),
        "{text}"
    );
    // `streams plan` takes it as written: no two streams own a path.
    let out = repo.streams(&["plan"]);
    out.assert_code(0);
    assert!(!out.stderr.contains("overlap"), "{out}");
}

#[test]
fn npm_pnpm_go_and_python_workspaces_get_a_stream_per_member() {
    /// The workspace, its files, the patterns of the streams written, the `shared` line.
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a [&'a str], &'a str);
    let cases: [Case; 4] = [
        (
            "npm",
            &[
                (
                    "package.json",
                    r#"{"name": "root", "workspaces": ["packages/*"]}"#,
                ),
                ("package-lock.json", "{}\n"),
                ("packages/ui/package.json", "{}\n"),
                ("packages/ui/index.js", "\n"),
                ("packages/api/package.json", "{}\n"),
                ("packages/api/index.js", "\n"),
                ("docs/intro.md", "\n"),
            ],
            &["docs/**", "packages/api/**", "packages/ui/**"],
            r#"shared = ["package-lock.json", "package.json"]"#,
        ),
        (
            "pnpm",
            &[
                ("package.json", r#"{"name": "root"}"#),
                ("pnpm-lock.yaml", "\n"),
                (
                    "pnpm-workspace.yaml",
                    "packages:\n  - 'apps/*'\n  - 'packages/*'\n",
                ),
                ("apps/web/package.json", "{}\n"),
                ("apps/web/main.ts", "\n"),
                ("packages/utils/package.json", "{}\n"),
                ("packages/utils/index.ts", "\n"),
            ],
            &["apps/web/**", "packages/utils/**"],
            r#"shared = ["package.json", "pnpm-lock.yaml", "pnpm-workspace.yaml"]"#,
        ),
        (
            "go",
            &[
                (
                    "go.work",
                    "go 1.22\n\nuse (\n\t./services/api\n\t./services/worker\n)\n",
                ),
                ("go.work.sum", "\n"),
                ("services/api/go.mod", "module api\n"),
                ("services/api/main.go", "package main\n"),
                ("services/worker/go.mod", "module worker\n"),
                ("services/worker/main.go", "package main\n"),
                ("services/worker/testdata/mod/go.mod", "module fixture\n"),
            ],
            &["services/api/**", "services/worker/**"],
            r#"shared = ["go.work", "go.work.sum"]"#,
        ),
        (
            "python",
            &[
                (
                    "pyproject.toml",
                    "[tool.uv.workspace]\nmembers = [\"libs/*\"]\n",
                ),
                ("uv.lock", "\n"),
                ("libs/core/pyproject.toml", "[project]\nname = \"core\"\n"),
                ("libs/core/core.py", "\n"),
                ("libs/cli/pyproject.toml", "[project]\nname = \"cli\"\n"),
                ("libs/cli/cli.py", "\n"),
                ("scripts/release.sh", "\n"),
            ],
            &["libs/cli/**", "libs/core/**", "scripts/**"],
            r#"shared = ["pyproject.toml", "uv.lock"]"#,
        ),
    ];
    for (kind, files, streams, shared) in cases {
        let repo = TestRepo::with_files(files).with_agent_stubs();
        let out = repo.streams(&["init", "--agent", "codex"]);
        out.assert_code(0);
        let text = repo.read("streams.toml");
        let expected: Vec<String> = streams
            .iter()
            .map(|s| format!("owns = [\"{s}\"]"))
            .collect();
        assert_eq!(owned(&text), expected, "{kind}:\n{text}");
        assert!(text.contains(shared), "{kind}:\n{text}");
        // Why each root manifest is shared is said beside it.
        assert!(text.contains("# `"), "{kind}:\n{text}");
        let out = repo.streams(&["plan"]);
        out.assert_code(0);
        assert!(!out.stderr.contains("overlap"), "{kind}: {out}");
    }
}
