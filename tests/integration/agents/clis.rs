//! The real agent CLIs: where the pinned installs are, who runs them, how each is invoked.
//!
//! The CLIs are installed by `tests/agents/install.sh` (which `.ci/run` runs) from the committed
//! lock files: the npm ones under `tests/agents/node_modules`, aider in the virtual environment
//! `tests/agents/.venv`, and Node.js under `tests/agents/node` when the machine's is older than
//! 20 (all under `$STREAMS_AGENT_CLIS` instead when it is set). A test asks for a CLI with
//! [`require`]: when it is missing (or not the pinned version), the test fails under `CI=true`,
//! saying what is missing and how to install it, and elsewhere it prints `SKIPPED: ...` on
//! stderr and passes; nextest shows the output of the `agents::real::` tests at the end of every
//! run (`.config/nextest.toml`), so a skip is seen.
//!
//! The invocation of each CLI here is the one `docs/agents.md` describes: one-shot, streaming
//! JSON on stdout, allowed to edit and commit in its working directory, its configuration in a
//! directory of the test's own (the variable each CLI honours), pointed at the scripted server
//! with a fake key, and with telemetry, update checks and every other network habit off.

#![allow(dead_code)]

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::server::Server;
use crate::common::TestRepo;

/// The unprivileged account the CLIs run as (`.ci/run` creates it).
pub const USER: &str = "streams-agent";

/// The fake key every CLI is given: the scripted server takes any.
pub const FAKE_KEY: &str = "sk-streams-scripted";

/// How long one CLI run may take before the test gives up on it (a hang guard, not a timing
/// assertion: the slowest, aider, takes about 15 s).
pub const RUN_DEADLINE: Duration = Duration::from_secs(240);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cli {
    Claude,
    Codex,
    Aider,
    Gemini,
    Qwen,
}

impl Cli {
    pub const ALL: [Cli; 5] = [Cli::Claude, Cli::Codex, Cli::Aider, Cli::Gemini, Cli::Qwen];

    pub fn name(self) -> &'static str {
        match self {
            Cli::Claude => "claude",
            Cli::Codex => "codex",
            Cli::Aider => "aider",
            Cli::Gemini => "gemini",
            Cli::Qwen => "qwen",
        }
    }

    /// The registry package and where its version is pinned.
    pub fn package(self) -> &'static str {
        match self {
            Cli::Claude => "@anthropic-ai/claude-code",
            Cli::Codex => "@openai/codex",
            Cli::Aider => "aider-chat",
            Cli::Gemini => "@google/gemini-cli",
            Cli::Qwen => "@qwen-code/qwen-code",
        }
    }

    fn needs_node(self) -> bool {
        // Claude Code's bin is its native binary; Codex's is a Node wrapper around its own.
        !matches!(self, Cli::Claude | Cli::Aider)
    }

    fn program(self) -> PathBuf {
        match self {
            Cli::Aider => tools_dir().join(".venv/bin/aider"),
            _ => tools_dir().join("node_modules/.bin").join(self.name()),
        }
    }
}

/// `tests/agents`: the lock files (and, by default, the installs).
pub fn lock_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/agents")
}

/// Where the CLIs are installed: `$STREAMS_AGENT_CLIS` when set (`.ci/run` sets it when the
/// checkout is in a directory the unprivileged account cannot enter), else `tests/agents`.
pub fn tools_dir() -> PathBuf {
    match std::env::var_os("STREAMS_AGENT_CLIS") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => lock_dir(),
    }
}

/// The version the lock files pin.
pub fn pinned_version(cli: Cli) -> String {
    match cli {
        Cli::Aider => {
            let requirements =
                std::fs::read_to_string(lock_dir().join("requirements.txt")).unwrap();
            requirements
                .lines()
                .find_map(|line| line.strip_prefix("aider-chat=="))
                .expect("aider-chat pinned in tests/agents/requirements.txt")
                .trim()
                .to_string()
        }
        _ => {
            let manifest: Value = serde_json::from_str(
                &std::fs::read_to_string(lock_dir().join("package.json")).unwrap(),
            )
            .unwrap();
            manifest["dependencies"][cli.package()]
                .as_str()
                .expect("pinned in tests/agents/package.json")
                .to_string()
        }
    }
}

/// The version installed, read from the install itself (running the CLI would take seconds).
fn installed_version(cli: Cli) -> Option<String> {
    match cli {
        Cli::Aider => {
            let lib = tools_dir().join(".venv/lib");
            for python in std::fs::read_dir(lib).ok()?.flatten() {
                let site = python.path().join("site-packages");
                for entry in std::fs::read_dir(site).ok()?.flatten() {
                    let name = entry.file_name().to_string_lossy().into_owned();
                    if let Some(rest) = name.strip_prefix("aider_chat-") {
                        return rest.strip_suffix(".dist-info").map(str::to_string);
                    }
                }
            }
            None
        }
        _ => {
            let manifest = tools_dir()
                .join("node_modules")
                .join(cli.package())
                .join("package.json");
            let manifest: Value =
                serde_json::from_str(&std::fs::read_to_string(manifest).ok()?).ok()?;
            manifest["version"].as_str().map(str::to_string)
        }
    }
}

/// Whether this run must have every CLI (`CI=true`): then missing means failing.
pub fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

const HOW_TO_INSTALL: &str = "install the pinned CLIs with tests/agents/install.sh (`.ci/run` \
     runs it; it needs only npm, python3 and the registries)";

/// Fails the test under CI, else prints why it is skipped and lets it pass.
#[track_caller]
pub fn skip(reason: &str) {
    if ci() {
        panic!("{reason}: under CI=true every real agent CLI test must run; {HOW_TO_INSTALL}");
    }
    eprintln!("SKIPPED: {reason} ({HOW_TO_INSTALL})");
}

/// A pinned CLI found installed.
#[derive(Clone, Debug)]
pub struct Located {
    pub cli: Cli,
    pub program: PathBuf,
    pub version: String,
    /// Put first on PATH: a Node.js of 20 or newer, for the CLIs that run under Node.
    pub node_dir: Option<PathBuf>,
}

pub fn locate(cli: Cli) -> Result<Located, String> {
    let pinned = pinned_version(cli);
    let program = cli.program();
    if !program.exists() {
        return Err(format!(
            "{} {} ({}) is not installed: {} is missing",
            cli.name(),
            pinned,
            cli.package(),
            program.display()
        ));
    }
    match installed_version(cli) {
        Some(version) if version == pinned => {}
        found => {
            return Err(format!(
                "{} is installed at version {} but the lock file pins {pinned}",
                cli.name(),
                found.as_deref().unwrap_or("(unknown)")
            ));
        }
    }
    let node_dir = if cli.needs_node() {
        Some(node_dir().map_err(|e| format!("{} needs Node.js: {e}", cli.name()))?)
    } else {
        None
    };
    Ok(Located {
        cli,
        program,
        version: pinned,
        node_dir,
    })
}

/// The pinned CLI, or None (skipped; a failure under CI).
#[track_caller]
pub fn require(cli: Cli) -> Option<Located> {
    match locate(cli) {
        Ok(located) => Some(located),
        Err(reason) => {
            skip(&reason);
            None
        }
    }
}

/// A directory holding a `node` of version 20 or newer: `tests/agents/node/bin` (where
/// `.ci/run` puts one when the machine's is older), else the one on PATH.
fn node_dir() -> Result<PathBuf, String> {
    let bundled = tools_dir().join("node/bin");
    let candidates = [Some(bundled.join("node")), which("node")];
    let mut seen = Vec::new();
    for node in candidates.into_iter().flatten() {
        let Ok(out) = Command::new(&node).arg("--version").output() else {
            continue;
        };
        let version = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let major: u32 = version
            .trim_start_matches('v')
            .split('.')
            .next()
            .and_then(|m| m.parse().ok())
            .unwrap_or(0);
        if major >= 20 {
            return Ok(node.parent().unwrap().to_path_buf());
        }
        seen.push(format!("{} is {version}", node.display()));
    }
    Err(format!(
        "no Node.js 20 or newer ({})",
        if seen.is_empty() {
            "none found".to_string()
        } else {
            seen.join(", ")
        }
    ))
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(program))
            .find(|candidate| candidate.is_file())
    })
}

/// Who runs the CLI.
#[derive(Clone, Debug)]
pub enum Who {
    /// The test's own user, which must be root.
    Root,
    /// The unprivileged account (when the tests run as root), or the test's own user when it is
    /// not root.
    User(Option<Account>),
}

#[derive(Clone, Debug)]
pub struct Account {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
}

impl Who {
    pub fn is_root(&self) -> bool {
        match self {
            Who::Root => true,
            Who::User(account) => account.is_none() && nix::unistd::geteuid().is_root(),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Who::Root => "root".into(),
            Who::User(Some(account)) => account.name.clone(),
            Who::User(None) => "the test's own user".into(),
        }
    }
}

/// Root, if the tests run as root; else None (skipped; a failure under CI).
#[track_caller]
pub fn require_root() -> Option<Who> {
    if nix::unistd::geteuid().is_root() {
        Some(Who::Root)
    } else {
        skip("the tests do not run as root, so the CLIs cannot be run as root");
        None
    }
}

/// Whether `who` can run the located CLI: every directory above it must let the account in
/// (a checkout under /root does not). Skipped, or a failure under CI, when it cannot.
#[track_caller]
pub fn usable_by(located: &Located, who: &Who) -> bool {
    use std::os::unix::fs::MetadataExt;
    let Who::User(Some(account)) = who else {
        return true;
    };
    for dir in located.program.ancestors().skip(1) {
        let Ok(meta) = std::fs::metadata(dir) else {
            continue;
        };
        let mode = meta.mode();
        let enters = if meta.uid() == account.uid {
            mode & 0o100 != 0
        } else if meta.gid() == account.gid {
            mode & 0o010 != 0
        } else {
            mode & 0o001 != 0
        };
        if !enters {
            skip(&format!(
                "{} cannot be run by {}: {} is closed to it; install the CLIs in a directory \
                 it can read (STREAMS_AGENT_CLIS=/opt/streams-agent-clis tests/agents/install.sh) \
                 and run the tests with STREAMS_AGENT_CLIS set so",
                located.program.display(),
                account.name,
                dir.display()
            ));
            return false;
        }
    }
    true
}

/// An unprivileged user to run the CLIs as: the account `streams-agent` when the tests run as
/// root (None when it does not exist: skipped; a failure under CI), else the test's own user.
#[track_caller]
pub fn require_user() -> Option<Who> {
    if !nix::unistd::geteuid().is_root() {
        return Some(Who::User(None));
    }
    match nix::unistd::User::from_name(USER) {
        Ok(Some(user)) => Some(Who::User(Some(Account {
            name: USER.into(),
            uid: user.uid.as_raw(),
            gid: user.gid.as_raw(),
        }))),
        _ => {
            skip(&format!(
                "the unprivileged account `{USER}` does not exist (`.ci/run` creates it: \
                 useradd --system --create-home {USER})"
            ));
            None
        }
    }
}

/// What one run of a CLI is asked to do.
#[derive(Clone, Debug)]
pub struct Ask {
    pub prompt: String,
    /// Continue this session (Claude's `session_id`, Codex's `thread_id`, Gemini's and Qwen's
    /// `session_id`; for aider, any value: it restores its chat history file).
    pub resume: Option<String>,
    /// The CLI's narrower mode instead of full permissions: Claude's `acceptEdits`, Codex's
    /// `workspace-write` sandbox, Gemini's `auto_edit`, Qwen's `auto-edit` (their shell
    /// commands then need an approval a one-shot run cannot give, or run read-only on `.git`).
    pub edits_only: bool,
    /// Extra environment, after the invocation's own.
    pub env: Vec<(String, String)>,
    /// Variables of the invocation to leave out.
    pub unset: Vec<String>,
}

impl Ask {
    pub fn new(prompt: &str) -> Ask {
        Ask {
            prompt: prompt.into(),
            resume: None,
            edits_only: false,
            env: Vec::new(),
            unset: Vec::new(),
        }
    }
    pub fn resume(mut self, session: &str) -> Ask {
        self.resume = Some(session.into());
        self
    }
    pub fn edits_only(mut self) -> Ask {
        self.edits_only = true;
        self
    }
    pub fn env(mut self, key: &str, value: &str) -> Ask {
        self.env.push((key.into(), value.into()));
        self
    }
    pub fn unset(mut self, key: &str) -> Ask {
        self.unset.push(key.into());
        self
    }
}

/// Where a CLI keeps its configuration, sessions and caches in the test's home, and the
/// variable that says so (`docs/agents.md`, "Homes").
pub fn config_dir(cli: Cli, home: &Path) -> PathBuf {
    match cli {
        Cli::Claude => home.join(".claude"),
        Cli::Codex => home.join(".codex"),
        Cli::Aider => home.join(".aider"),
        Cli::Gemini => home.join(".gemini"),
        Cli::Qwen => home.join(".qwen"),
    }
}

/// The model each CLI is told to use (the scripted server answers for any).
pub fn model(cli: Cli) -> &'static str {
    match cli {
        Cli::Claude => "claude-sonnet-4-5",
        // One Codex has metadata for: with an unknown one it emits an error item first.
        Cli::Codex => "gpt-5.5",
        Cli::Aider => "openai/gpt-4.1",
        // Naming the model skips Gemini CLI's routing classifier request.
        Cli::Gemini => "gemini-2.5-pro",
        Cli::Qwen => "qwen3-coder-plus",
    }
}

/// Writes the CLI's configuration files into `home` (before a run; owned by the test, the
/// caller hands them to the CLI's user).
pub fn write_config(cli: Cli, home: &Path, server: &Server) {
    let dir = config_dir(cli, home);
    std::fs::create_dir_all(&dir).unwrap();
    match cli {
        Cli::Claude => {}
        Cli::Codex => {
            let config = format!(
                r#"# Written by the test harness (tests/integration/agents/clis.rs).
model = "{model}"
model_provider = "scripted"
# No version check at start (it would reach the network).
check_for_update_on_startup = false

[features]
# The plugin marketplace looks github.com up at every start.
plugins = false

[analytics]
enabled = false

[model_providers.scripted]
name = "scripted"
base_url = "{url}/v1"
env_key = "STREAMS_SCRIPTED_KEY"
wire_api = "responses"
# A failed request is an answer to record, not something to retry.
request_max_retries = 0
stream_max_retries = 0
"#,
                model = model(cli),
                url = server.url()
            );
            std::fs::write(dir.join("config.toml"), config).unwrap();
        }
        Cli::Aider => {
            // Model metadata of our own: without it aider fetches litellm's price list from
            // GitHub at every start (a file under ~/.aider/caches does not stop it when empty).
            let metadata = serde_json::json!({
                model(cli): {
                    "max_input_tokens": 1_000_000, "max_output_tokens": 32_768,
                    "input_cost_per_token": 0.000002, "output_cost_per_token": 0.000008,
                    "litellm_provider": "openai", "mode": "chat",
                }
            });
            std::fs::write(dir.join("model.metadata.json"), metadata.to_string()).unwrap();
        }
        Cli::Gemini | Cli::Qwen => {
            let auth = if cli == Cli::Gemini {
                "gemini-api-key"
            } else {
                "openai"
            };
            let settings = serde_json::json!({
                "security": { "auth": { "selectedType": auth }, "folderTrust": { "enabled": false } },
                "privacy": { "usageStatisticsEnabled": false },
                "telemetry": { "enabled": false },
                "general": { "disableAutoUpdate": true, "disableUpdateNag": true },
            });
            std::fs::write(
                dir.join("settings.json"),
                serde_json::to_string_pretty(&settings).unwrap(),
            )
            .unwrap();
        }
    }
}

/// The argv (after the program) and environment of one run: the invocation `docs/agents.md`
/// specifies.
pub fn invocation(
    cli: Cli,
    home: &Path,
    server: &Server,
    who: &Who,
    ask: &Ask,
) -> (Vec<String>, Vec<(String, String)>) {
    let s = |v: &str| v.to_string();
    let dir = config_dir(cli, home);
    let dir_s = dir.to_string_lossy().into_owned();
    let mut env: Vec<(String, String)> = Vec::new();
    let mut args: Vec<String> = Vec::new();
    match cli {
        Cli::Claude => {
            env.push((s("CLAUDE_CONFIG_DIR"), dir_s));
            env.push((s("ANTHROPIC_BASE_URL"), server.url()));
            env.push((s("ANTHROPIC_API_KEY"), s(FAKE_KEY)));
            env.push((s("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC"), s("1")));
            env.push((s("DISABLE_AUTOUPDATER"), s("1")));
            if who.is_root() {
                // As root, --dangerously-skip-permissions is refused without it.
                env.push((s("IS_SANDBOX"), s("1")));
            }
            args.extend(
                [
                    "-p",
                    &ask.prompt,
                    "--output-format",
                    "stream-json",
                    "--verbose",
                ]
                .map(s),
            );
            args.extend(["--model", model(cli)].map(s));
            if ask.edits_only {
                args.extend(["--permission-mode", "acceptEdits"].map(s));
            } else {
                args.push(s("--dangerously-skip-permissions"));
            }
            if let Some(session) = &ask.resume {
                args.extend([s("--resume"), session.clone()]);
            }
        }
        Cli::Codex => {
            env.push((s("CODEX_HOME"), dir_s));
            env.push((s("STREAMS_SCRIPTED_KEY"), s(FAKE_KEY)));
            let sandbox = if ask.edits_only {
                "workspace-write"
            } else {
                "danger-full-access"
            };
            args.extend(["exec", "--json", "--sandbox", sandbox].map(s));
            if let Some(session) = &ask.resume {
                args.extend([s("resume"), session.clone()]);
            }
            args.push(ask.prompt.clone());
        }
        Cli::Aider => {
            env.push((s("LITELLM_LOCAL_MODEL_COST_MAP"), s("True")));
            let m = model(cli);
            args.extend(
                [
                    "--model",
                    m,
                    "--weak-model",
                    m,
                    "--editor-model",
                    m,
                    "--openai-api-base",
                    &format!("{}/v1", server.url()),
                    "--openai-api-key",
                    FAKE_KEY,
                    "--model-metadata-file",
                    &dir.join("model.metadata.json").to_string_lossy(),
                    "--chat-history-file",
                    &dir.join("chat.history.md").to_string_lossy(),
                    "--input-history-file",
                    &dir.join("input.history").to_string_lossy(),
                    "--edit-format",
                    "whole",
                    "--map-tokens",
                    "0",
                    "--yes-always",
                    "--no-check-update",
                    "--no-analytics",
                    "--no-gitignore",
                    "--no-show-model-warnings",
                    "--no-pretty",
                    "--no-fancy-input",
                    "--no-stream",
                ]
                .map(s),
            );
            if ask.resume.is_some() {
                args.push(s("--restore-chat-history"));
            }
            args.extend([s("--message"), ask.prompt.clone()]);
        }
        Cli::Gemini => {
            // Gemini CLI's "home": its settings, sessions and caches go to <it>/.gemini.
            env.push((s("GEMINI_CLI_HOME"), home.to_string_lossy().into_owned()));
            env.push((s("GEMINI_API_KEY"), s(FAKE_KEY)));
            env.push((s("GOOGLE_GEMINI_BASE_URL"), server.url()));
            let mode = if ask.edits_only { "auto_edit" } else { "yolo" };
            args.extend(["-m", model(cli), "--output-format", "stream-json"].map(s));
            args.extend([s("--approval-mode"), s(mode)]);
            if let Some(session) = &ask.resume {
                args.extend([s("--resume"), session.clone()]);
            }
            args.extend([s("-p"), ask.prompt.clone()]);
        }
        Cli::Qwen => {
            env.push((s("QWEN_HOME"), dir_s));
            env.push((s("OPENAI_API_KEY"), s(FAKE_KEY)));
            env.push((s("OPENAI_BASE_URL"), format!("{}/v1", server.url())));
            env.push((s("OPENAI_MODEL"), s(model(cli))));
            let mode = if ask.edits_only { "auto-edit" } else { "yolo" };
            args.extend(["--output-format", "stream-json"].map(s));
            args.extend([s("--approval-mode"), s(mode)]);
            if let Some(session) = &ask.resume {
                args.extend([s("--resume"), session.clone()]);
            }
            args.extend([s("-p"), ask.prompt.clone()]);
        }
    }
    env.extend(ask.env.iter().cloned());
    (args, env)
}

/// A repository (with one commit) for a CLI to work in, its home holding the CLI's
/// configuration, everything owned by whoever runs the CLI.
pub struct Workplace {
    pub repo: TestRepo,
    pub who: Who,
}

impl Workplace {
    pub fn new(who: Who) -> Workplace {
        let repo = TestRepo::with_files(&[("README.md", "A scratch repository.\n")]);
        // The test's own git runs as root over a repository the CLI's user owns.
        let gitconfig = repo.home.join(".gitconfig");
        let mut config = std::fs::read_to_string(&gitconfig).unwrap();
        config.push_str("[safe]\n\tdirectory = *\n");
        std::fs::write(&gitconfig, config).unwrap();
        std::fs::create_dir_all(repo.home.join("tmp")).unwrap();
        Workplace { repo, who }
    }

    /// The repository's working tree (the CLI's working directory).
    pub fn root(&self) -> &Path {
        &self.repo.root
    }

    /// Gives the repository and the home to the CLI's user (again after the test wrote there).
    pub fn hand_over(&self) {
        if let Who::User(Some(account)) = &self.who {
            let base = self.repo.root.parent().unwrap();
            chown_tree(base, account.uid, account.gid);
        }
    }

    /// The command that runs the CLI here, not yet started.
    pub fn command(&self, located: &Located, server: &Server, ask: &Ask) -> Command {
        let home = &self.repo.home;
        let (args, env) = invocation(located.cli, home, server, &self.who, ask);
        let mut cmd = Command::new(&located.program);
        cmd.current_dir(&self.repo.root)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            // Nothing of the caller's environment (a developer's own keys and CLI settings).
            .env_clear();
        self.repo.hermetic(&mut cmd);
        let path = cmd
            .get_envs()
            .find(|(k, _)| *k == "PATH")
            .and_then(|(_, v)| v.map(|v| v.to_string_lossy().into_owned()))
            .unwrap_or_default();
        if let Some(node) = &located.node_dir {
            cmd.env("PATH", format!("{}:{path}", node.display()));
        }
        cmd.env("TMPDIR", home.join("tmp"));
        if let Who::User(Some(account)) = &self.who {
            cmd.uid(account.uid).gid(account.gid);
            cmd.env("USER", &account.name).env("LOGNAME", &account.name);
        } else {
            cmd.env("USER", "root").env("LOGNAME", "root");
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        for k in &ask.unset {
            cmd.env_remove(k);
        }
        cmd
    }

    /// Starts the CLI (its configuration written first).
    pub fn spawn(&self, located: &Located, server: &Server, ask: &Ask) -> Running {
        write_config(located.cli, &self.repo.home, server);
        self.hand_over();
        Running::spawn(self.command(located, server, ask))
    }

    /// Runs the CLI to the end (killed at `RUN_DEADLINE`).
    pub fn run(&self, located: &Located, server: &Server, ask: &Ask) -> Finished {
        self.spawn(located, server, ask).wait(RUN_DEADLINE)
    }

    /// `git log` of the repository: one line per commit, `subject (author)`.
    pub fn log(&self) -> Vec<String> {
        self.repo
            .git(&["log", "--format=%s (%an)"])
            .lines()
            .map(str::to_string)
            .collect()
    }

    pub fn status(&self) -> String {
        self.repo
            .git(&["status", "--porcelain", "--untracked-files=all"])
    }
}

fn chown_tree(path: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::lchown(path, Some(uid), Some(gid)).unwrap();
    if path.is_dir() && !path.is_symlink() {
        for entry in std::fs::read_dir(path).unwrap().flatten() {
            chown_tree(&entry.path(), uid, gid);
        }
    }
}

/// A CLI started in its own process group, its output collected as it comes.
pub struct Running {
    child: Child,
    started: Instant,
    stdout: std::thread::JoinHandle<String>,
    stderr: std::thread::JoinHandle<String>,
}

impl Running {
    pub fn spawn(mut cmd: Command) -> Running {
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("could not start {:?}: {e}", cmd.get_program()));
        let collect = |mut pipe: Box<dyn Read + Send>| {
            std::thread::spawn(move || {
                let mut bytes = Vec::new();
                let _ = pipe.read_to_end(&mut bytes);
                String::from_utf8_lossy(&bytes).into_owned()
            })
        };
        let stdout = collect(Box::new(child.stdout.take().unwrap()));
        let stderr = collect(Box::new(child.stderr.take().unwrap()));
        Running {
            child,
            started: Instant::now(),
            stdout,
            stderr,
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Sends `signal` to the CLI's process group (as a terminal's Ctrl-C would, and as streams
    /// stops an agent).
    pub fn signal(&self, signal: nix::sys::signal::Signal) {
        let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(self.pid()), signal);
    }

    /// Waits for the end; past `deadline` kills the group and fails the test with what it
    /// printed.
    pub fn wait(self, deadline: Duration) -> Finished {
        let finished = self.wait_or_kill(deadline);
        assert!(
            !finished.killed,
            "the CLI did not finish within {deadline:?}\n{finished}"
        );
        finished
    }

    /// Waits for the end, at most `patience` after the start: then kills the group
    /// (`Finished::killed`).
    pub fn wait_or_kill(mut self, patience: Duration) -> Finished {
        let mut killed = false;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if self.started.elapsed() > patience {
                self.signal(nix::sys::signal::Signal::SIGKILL);
                killed = true;
                break self.child.wait().unwrap();
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let elapsed = self.started.elapsed();
        // The group may hold children that keep the pipes open (a shell tool's command): they
        // go with it.
        self.signal(nix::sys::signal::Signal::SIGKILL);
        Finished {
            status,
            elapsed,
            killed,
            stdout: self.stdout.join().unwrap(),
            stderr: self.stderr.join().unwrap(),
        }
    }
}

/// A CLI run that ended.
#[derive(Debug)]
pub struct Finished {
    pub status: ExitStatus,
    pub elapsed: Duration,
    /// Killed by the harness for not ending in time.
    pub killed: bool,
    pub stdout: String,
    pub stderr: String,
}

impl Finished {
    /// Stdout's JSON lines (lines that are not JSON are left out: aider prints text).
    pub fn events(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect()
    }

    /// The last event of this `type`.
    pub fn last_event(&self, kind: &str) -> Option<Value> {
        self.events().into_iter().rev().find(|e| e["type"] == kind)
    }

    #[track_caller]
    pub fn assert_success(&self, what: &str) -> &Finished {
        assert!(self.status.success(), "{what}: {}\n{self}", self.status);
        self
    }
}

impl std::fmt::Display for Finished {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "--- stdout\n{}\n--- stderr\n{}",
            self.stdout.trim_end(),
            self.stderr.trim_end()
        )
    }
}
