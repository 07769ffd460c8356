//! The agent CLIs streams knows (a preset per CLI), and what a plan's `agent` is: a preset or
//! the argv of any program.
//!
//! A preset is written from `docs/agents.md` (every fact there found by running the pinned CLI
//! against the test suite's scripted model server) and knows, for its CLI: the one-shot,
//! non-interactive invocation with streaming JSON; the permissions that let it edit and commit
//! in its workspace (also as root); its configuration folder (one per task, seeded from the
//! user's own by [`super::home`]) and what else it writes outside the workspace; its network and
//! ignore-file habits; how to resume a session; which signal stops it so that it still reports.
//! How its events read is in [`super::events`].
//!
//! ```toml
//! agent = "claude"
//! agent = { preset = "codex", model = "gpt-5.5", args = ["-c", "model_reasoning_effort=\"high\""], env = { OPENAI_BASE_URL = "..." } }
//! agent = ["my-agent", "--task", "{prompt}"]
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// An agent CLI streams has a preset for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Cli {
    Claude,
    Codex,
    Aider,
    Gemini,
    Qwen,
}

impl Cli {
    pub const ALL: [Cli; 5] = [Cli::Claude, Cli::Codex, Cli::Aider, Cli::Gemini, Cli::Qwen];

    /// The preset's name in a plan (`agent = "claude"`), also the CLI's program name.
    pub fn name(self) -> &'static str {
        match self {
            Cli::Claude => "claude",
            Cli::Codex => "codex",
            Cli::Aider => "aider",
            Cli::Gemini => "gemini",
            Cli::Qwen => "qwen",
        }
    }

    pub fn from_name(name: &str) -> Option<Cli> {
        Cli::ALL.into_iter().find(|c| c.name() == name)
    }

    /// What a person calls it.
    pub fn product(self) -> &'static str {
        match self {
            Cli::Claude => "Claude Code",
            Cli::Codex => "Codex",
            Cli::Aider => "aider",
            Cli::Gemini => "Gemini CLI",
            Cli::Qwen => "Qwen Code",
        }
    }

    /// Where a person sets the address of its model and its key: what to check when it cannot
    /// reach the model.
    pub fn where_its_model_is(self) -> &'static str {
        match self {
            Cli::Claude => {
                "`ANTHROPIC_BASE_URL` (if set), the API key (`ANTHROPIC_API_KEY` or its login) and the network"
            }
            Cli::Codex => {
                "the provider's `base_url` and key in Codex's `config.toml` (`~/.codex/`, or `$CODEX_HOME`) and the network"
            }
            Cli::Aider => "`--openai-api-base` (or its model's address), its key and the network",
            Cli::Gemini => "`GOOGLE_GEMINI_BASE_URL` (if set), `GEMINI_API_KEY` and the network",
            Cli::Qwen => "`OPENAI_BASE_URL`, `OPENAI_API_KEY` and the network",
        }
    }

    /// The program it is started as (found on the agent's PATH).
    pub fn program(self) -> &'static str {
        self.name()
    }

    /// The versions this preset was written from and tested with (`docs/agents.md`, the lock
    /// files of `tests/agents`); another version gets a warning.
    pub fn tested_versions(self) -> &'static [&'static str] {
        match self {
            Cli::Claude => &["2.1.197"],
            Cli::Codex => &["0.171.0"],
            Cli::Aider => &["0.86.2"],
            Cli::Gemini => &["0.61.0"],
            Cli::Qwen => &["0.15.10"],
        }
    }

    /// Whether the usage its final event reports is the session's running total rather than
    /// this run's (Codex: a resumed thread reports every earlier run's tokens too).
    pub fn usage_is_cumulative(self) -> bool {
        self == Cli::Codex
    }

    /// Files it writes into its working directory that are not work: removed before the work
    /// is read (aider's repository map cache; its histories are moved to its home by flags).
    pub fn litter(self) -> &'static [&'static str] {
        match self {
            Cli::Aider => &[
                ".aider.tags.cache.v4",
                ".aider.chat.history.md",
                ".aider.input.history",
            ],
            _ => &[],
        }
    }

    /// Its configuration folder in a task's home, and the variable that points it there.
    fn config_dir(self, home: &Path) -> (Option<&'static str>, PathBuf) {
        match self {
            Cli::Claude => (Some("CLAUDE_CONFIG_DIR"), home.join(".claude")),
            Cli::Codex => (Some("CODEX_HOME"), home.join(".codex")),
            // Gemini CLI's variable names the folder that holds `.gemini`.
            Cli::Gemini => (Some("GEMINI_CLI_HOME"), home.join(".gemini")),
            Cli::Qwen => (Some("QWEN_HOME"), home.join(".qwen")),
            // No variable: its histories go there by flags.
            Cli::Aider => (None, home.join(".aider")),
        }
    }

    /// Where the CLI keeps its configuration folder in a task's home.
    pub fn config_dir_in(self, home: &Path) -> PathBuf {
        self.config_dir(home).1
    }
}

/// A preset with the plan's choices: the model, extra arguments, extra environment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Preset {
    pub cli: Cli,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Appended to the preset's own arguments (placeholders allowed).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// Set for the CLI on top of the plan's `env`.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
}

impl Preset {
    pub fn new(cli: Cli) -> Preset {
        Preset {
            cli,
            model: None,
            args: Vec::new(),
            env: BTreeMap::new(),
        }
    }
}

/// What a plan's `agent` names: a preset, or the argv of any program (placeholders inside).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum AgentSpec {
    Argv(Vec<String>),
    Preset(Preset),
}

impl AgentSpec {
    /// The program started (a preset's CLI, or `argv[0]`).
    pub fn program(&self) -> &str {
        match self {
            AgentSpec::Argv(argv) => argv.first().map(String::as_str).unwrap_or(""),
            AgentSpec::Preset(p) => p.cli.program(),
        }
    }

    pub fn preset(&self) -> Option<&Preset> {
        match self {
            AgentSpec::Preset(p) => Some(p),
            AgentSpec::Argv(_) => None,
        }
    }
}

/// What streams knows when it starts a preset's CLI for a task.
pub struct Setting<'a> {
    /// The task's own home for the CLI: its configuration folder is made there (see
    /// [`super::home`]), kept across the task's attempts so that a session can be resumed.
    pub home: &'a Path,
    /// The session to continue (a check's second chance), with the new message as the prompt.
    pub resume: Option<&'a str>,
    /// streams runs as root: the CLIs refuse to skip permissions as root unless told they run
    /// in a sandbox.
    pub as_root: bool,
    /// The user's home (`$HOME`), for what a CLI keeps there whatever it is told.
    pub user_home: Option<&'a Path>,
}

/// How a preset's CLI is started for one task.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invocation {
    /// The argv, `{prompt}` (and the plan's placeholders in `args`) still to fill in.
    pub argv: Vec<String>,
    /// Its environment on top of the plan's.
    pub env: Vec<(String, String)>,
    /// What it writes outside its workspace: its home, and what it keeps whatever it is told;
    /// writable under the sandbox.
    pub writable: Vec<PathBuf>,
}

impl Preset {
    /// The invocation of this preset for a task (`docs/agents.md`, each CLI's "Invocation").
    pub fn invocation(&self, setting: &Setting<'_>) -> Invocation {
        let s = |v: &str| v.to_string();
        let home = setting.home;
        let (variable, config) = self.cli.config_dir(home);
        let mut env: Vec<(String, String)> = Vec::new();
        if let Some(variable) = variable {
            let value = match self.cli {
                Cli::Gemini => home,
                _ => config.as_path(),
            };
            env.push((s(variable), value.display().to_string()));
        }
        let mut writable = vec![home.to_path_buf()];
        let model = self.model.as_deref();
        let mut argv: Vec<String> = vec![s(self.cli.program())];
        match self.cli {
            Cli::Claude => {
                // Its lookups and telemetry otherwise reach outside hosts at every start.
                env.push((s("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC"), s("1")));
                env.push((s("DISABLE_AUTOUPDATER"), s("1")));
                if setting.as_root {
                    env.push((s("IS_SANDBOX"), s("1")));
                }
                argv.extend(
                    [
                        "-p",
                        "{prompt}",
                        "--output-format",
                        "stream-json",
                        "--verbose",
                    ]
                    .map(s),
                );
                // Every edit and command allowed: streams' ownership check (and its sandbox)
                // is the confinement. `acceptEdits` refuses the agent's own commit.
                argv.push(s("--dangerously-skip-permissions"));
                if let Some(model) = model {
                    argv.extend([s("--model"), s(model)]);
                }
                argv.extend(self.args.iter().cloned());
                if let Some(session) = setting.resume {
                    argv.extend([s("--resume"), s(session)]);
                }
            }
            Cli::Codex => {
                // The reset time of a usage limit is printed in local time, without a zone.
                env.push((s("TZ"), s("UTC")));
                argv.extend(["exec", "--json"].map(s));
                // Its own sandbox cannot start inside streams' (bubblewrap under Landlock), and
                // under `workspace-write` its `.git` is read-only: its commit fails.
                argv.extend(["--sandbox", "danger-full-access"].map(s));
                for setting in [
                    "check_for_update_on_startup=false",
                    "analytics.enabled=false",
                    // The plugin marketplace looks github.com up at every start.
                    "features.plugins=false",
                ] {
                    argv.extend([s("-c"), s(setting)]);
                }
                if let Some(model) = model {
                    argv.extend([s("--model"), s(model)]);
                }
                argv.extend(self.args.iter().cloned());
                if let Some(session) = setting.resume {
                    argv.extend([s("resume"), s(session)]);
                }
                argv.push(s("{prompt}"));
            }
            Cli::Aider => {
                // litellm's price list from GitHub at import.
                env.push((s("LITELLM_LOCAL_MODEL_COST_MAP"), s("True")));
                if let Some(model) = model {
                    argv.extend([s("--model"), s(model)]);
                }
                let history = config.join("chat.history.md").display().to_string();
                let input = config.join("input.history").display().to_string();
                argv.extend(
                    [
                        "--chat-history-file",
                        &history,
                        "--input-history-file",
                        &input,
                        "--yes-always",
                        "--no-check-update",
                        "--no-analytics",
                        // It would add `.aider*` to `.gitignore`, a file no stream owns.
                        "--no-gitignore",
                        "--no-show-model-warnings",
                        "--no-pretty",
                        "--no-fancy-input",
                        // Streamed, it prints its own estimate of the tokens, not the API's.
                        "--no-stream",
                    ]
                    .map(s),
                );
                argv.extend(self.args.iter().cloned());
                if setting.resume.is_some() {
                    argv.push(s("--restore-chat-history"));
                }
                argv.extend([s("--message"), s("{prompt}")]);
                // It keeps caches and its analytics id in ~/.aider whatever it is told.
                if let Some(user_home) = setting.user_home {
                    writable.push(user_home.join(".aider"));
                }
            }
            Cli::Gemini | Cli::Qwen => {
                argv.extend(["--output-format", "stream-json", "--approval-mode", "yolo"].map(s));
                if let Some(model) = model {
                    argv.extend([s("--model"), s(model)]);
                }
                argv.extend(self.args.iter().cloned());
                if let Some(session) = setting.resume {
                    argv.extend([s("--resume"), s(session)]);
                }
                argv.extend([s("-p"), s("{prompt}")]);
                if self.cli == Cli::Qwen {
                    // Its shell tool runs commands in a pseudo-terminal.
                    writable.push(PathBuf::from("/dev/ptmx"));
                }
            }
        }
        env.extend(self.env.iter().map(|(k, v)| (k.clone(), v.clone())));
        Invocation {
            argv,
            env,
            writable,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setting<'a>(home: &'a Path, resume: Option<&'a str>, as_root: bool) -> Setting<'a> {
        Setting {
            home,
            resume,
            as_root,
            user_home: Some(Path::new("/home/u")),
        }
    }

    #[test]
    fn each_preset_is_the_documented_one_shot_invocation() {
        let home = Path::new("/run/homes/api/1");
        let argv = |cli: Cli| {
            let mut preset = Preset::new(cli);
            preset.model = Some("m".into());
            preset
                .invocation(&setting(home, None, false))
                .argv
                .join(" ")
        };
        assert_eq!(
            argv(Cli::Claude),
            "claude -p {prompt} --output-format stream-json --verbose --dangerously-skip-permissions --model m"
        );
        assert_eq!(
            argv(Cli::Codex),
            "codex exec --json --sandbox danger-full-access -c check_for_update_on_startup=false -c analytics.enabled=false -c features.plugins=false --model m {prompt}"
        );
        assert_eq!(
            argv(Cli::Gemini),
            "gemini --output-format stream-json --approval-mode yolo --model m -p {prompt}"
        );
        assert!(argv(Cli::Aider).starts_with(
            "aider --model m --chat-history-file /run/homes/api/1/.aider/chat.history.md"
        ));
        assert!(argv(Cli::Aider).ends_with("--no-stream --message {prompt}"));
    }

    #[test]
    fn a_resumed_session_and_root_change_the_invocation() {
        let home = Path::new("/h");
        let claude = Preset::new(Cli::Claude).invocation(&setting(home, Some("s1"), true));
        assert!(claude.argv.ends_with(&["--resume".into(), "s1".into()]));
        assert!(claude.env.contains(&("IS_SANDBOX".into(), "1".into())));
        assert!(
            claude
                .env
                .contains(&("CLAUDE_CONFIG_DIR".into(), "/h/.claude".into()))
        );
        let codex = Preset::new(Cli::Codex).invocation(&setting(home, Some("t1"), false));
        let tail: Vec<&str> = codex
            .argv
            .iter()
            .rev()
            .take(3)
            .map(String::as_str)
            .collect();
        assert_eq!(tail, ["{prompt}", "t1", "resume"]);
        let gemini = Preset::new(Cli::Gemini).invocation(&setting(home, None, false));
        assert!(
            gemini
                .env
                .contains(&("GEMINI_CLI_HOME".into(), "/h".into()))
        );
        let aider = Preset::new(Cli::Aider).invocation(&setting(home, Some("x"), false));
        assert!(aider.argv.contains(&"--restore-chat-history".to_string()));
        assert!(aider.writable.contains(&PathBuf::from("/home/u/.aider")));
        let qwen = Preset::new(Cli::Qwen).invocation(&setting(home, None, false));
        assert!(qwen.writable.contains(&PathBuf::from("/dev/ptmx")));
    }

    #[test]
    fn the_plans_args_and_env_come_after_the_presets_own() {
        let mut preset = Preset::new(Cli::Claude);
        preset.args = vec!["--max-turns".into(), "5".into()];
        preset
            .env
            .insert("ANTHROPIC_BASE_URL".into(), "http://x".into());
        preset.env.insert(
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC".into(),
            "0".into(),
        );
        let inv = preset.invocation(&setting(Path::new("/h"), None, false));
        assert!(inv.argv.ends_with(&["--max-turns".into(), "5".into()]));
        let last = inv
            .env
            .iter()
            .rev()
            .find(|(k, _)| k == "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC");
        assert_eq!(last.map(|(_, v)| v.as_str()), Some("0"));
    }
}
