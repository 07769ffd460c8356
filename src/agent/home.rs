//! A task's own configuration folder for a preset's CLI, seeded from the user's own.
//!
//! Each task gets its own folder (the CLI's variable points there: `CLAUDE_CONFIG_DIR`,
//! `CODEX_HOME`, `GEMINI_CLI_HOME`, `QWEN_HOME`; aider's histories by flags), because the CLIs
//! write there as they run (sessions, databases, caches), parallel runs on one folder race
//! (Codex's `skills/`), and under the sandbox the user's own folder stays read-only. So that a
//! logged-in CLI stays logged in and the user's setup still applies, the folder is seeded from
//! the user's: credentials, settings, MCP servers, hooks, instructions, commands and agents, not
//! the sessions, logs and caches (large, and the task's own from then on). The preset's own
//! settings (telemetry, update checks and folder trust off; see `docs/agents.md`) are written
//! over the user's in the settings files that hold them.
//!
//! Seeded once, at the task's first attempt: later attempts (a retry, a limit's wait, a check's
//! second chance resuming the session) find the folder as the CLI left it.

use std::io;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::Cli;

/// Written once the folder is seeded: a later attempt leaves it as the CLI left it.
const SEEDED: &str = ".streams-seeded";

/// Where the user keeps the CLI's configuration: the CLI's own variable when set (in streams'
/// environment or the plan's), else its folder in the user's home. `var` reads a variable.
pub fn user_config_dir(
    cli: Cli,
    var: &dyn Fn(&str) -> Option<String>,
    user_home: Option<&Path>,
) -> Option<PathBuf> {
    let from_var = |name: &str| var(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    match cli {
        Cli::Claude => from_var("CLAUDE_CONFIG_DIR").or_else(|| Some(user_home?.join(".claude"))),
        Cli::Codex => from_var("CODEX_HOME").or_else(|| Some(user_home?.join(".codex"))),
        Cli::Gemini => from_var("GEMINI_CLI_HOME")
            .map(|h| h.join(".gemini"))
            .or_else(|| Some(user_home?.join(".gemini"))),
        Cli::Qwen => from_var("QWEN_HOME").or_else(|| Some(user_home?.join(".qwen"))),
        Cli::Aider => None,
    }
}

/// What is copied from the user's folder: files and folders by name (what is missing is
/// skipped).
fn seeded_entries(cli: Cli) -> &'static [&'static str] {
    match cli {
        Cli::Claude => &[
            ".credentials.json",
            ".claude.json",
            "settings.json",
            "settings.local.json",
            "CLAUDE.md",
            "agents",
            "commands",
            "skills",
            "hooks",
            "output-styles",
            "plugins",
        ],
        Cli::Codex => &[
            "auth.json",
            "config.toml",
            "AGENTS.md",
            "AGENTS.override.md",
            "prompts",
            "rules",
        ],
        Cli::Gemini => &[
            "settings.json",
            "oauth_creds.json",
            "google_accounts.json",
            "google_account_id",
            "GEMINI.md",
            ".env",
            "commands",
            "extensions",
        ],
        Cli::Qwen => &[
            "settings.json",
            "oauth_creds.json",
            "QWEN.md",
            ".env",
            "commands",
            "agents",
            "extensions",
        ],
        Cli::Aider => &[],
    }
}

/// Prepares the task's home for `cli` (once): its configuration folder, seeded from `user`
/// (the user's own folder, when there is one) and `user_home` (Claude keeps `.claude.json`
/// beside its folder unless `CLAUDE_CONFIG_DIR` is set), then the preset's settings written
/// over. `var` reads the agent's environment (which auth a settings file should select).
/// Returns the entries copied, for the log.
pub fn prepare(
    cli: Cli,
    home: &Path,
    user: Option<&Path>,
    user_home: Option<&Path>,
    var: &dyn Fn(&str) -> Option<String>,
) -> io::Result<Vec<String>> {
    let config = cli.config_dir_in(home);
    if config.join(SEEDED).exists() {
        return Ok(Vec::new());
    }
    std::fs::create_dir_all(&config)?;
    let mut copied = Vec::new();
    if let Some(user) = user.filter(|u| u.is_dir() && *u != config) {
        for name in seeded_entries(cli) {
            let from = user.join(name);
            if from.symlink_metadata().is_ok() {
                copy_tree(&from, &config.join(name))?;
                copied.push(from.display().to_string());
            }
        }
    }
    // Without CLAUDE_CONFIG_DIR, Claude Code keeps its main settings file (MCP servers, trust)
    // beside its folder, in the home.
    if cli == Cli::Claude
        && var("CLAUDE_CONFIG_DIR").is_none_or(|v| v.is_empty())
        && let Some(user_home) = user_home
    {
        let from = user_home.join(".claude.json");
        if from.is_file() {
            std::fs::copy(&from, config.join(".claude.json"))?;
            copied.push(from.display().to_string());
        }
    }
    if matches!(cli, Cli::Gemini | Cli::Qwen) {
        settle_settings(cli, &config.join("settings.json"), var)?;
    }
    std::fs::write(config.join(SEEDED), "")?;
    Ok(copied)
}

/// Gemini CLI's and Qwen Code's settings: the user's, with telemetry, usage statistics and
/// update checks off, and folder trust off (an untrusted folder overrides yolo mode). Without
/// an auth method chosen, the one the environment's API key stands for (else Gemini CLI exits
/// 41 at once).
fn settle_settings(cli: Cli, path: &Path, var: &dyn Fn(&str) -> Option<String>) -> io::Result<()> {
    let mut settings: Value = match std::fs::read_to_string(path) {
        Ok(text) => serde_json::from_str(&text).unwrap_or_else(|_| json!({})),
        Err(e) if e.kind() == io::ErrorKind::NotFound => json!({}),
        Err(e) => return Err(e),
    };
    if !settings.is_object() {
        settings = json!({});
    }
    let set = |settings: &mut Value, path: &[&str], value: Value| {
        let mut at = settings;
        for key in &path[..path.len() - 1] {
            if !at[*key].is_object() {
                at[*key] = json!({});
            }
            at = &mut at[*key];
        }
        at[path[path.len() - 1]] = value;
    };
    set(
        &mut settings,
        &["security", "folderTrust", "enabled"],
        json!(false),
    );
    set(
        &mut settings,
        &["privacy", "usageStatisticsEnabled"],
        json!(false),
    );
    set(&mut settings, &["telemetry", "enabled"], json!(false));
    set(
        &mut settings,
        &["general", "disableAutoUpdate"],
        json!(true),
    );
    set(&mut settings, &["general", "disableUpdateNag"], json!(true));
    let chosen = settings["security"]["auth"]["selectedType"].is_string();
    let has = |name: &str| var(name).is_some_and(|v| !v.is_empty());
    let by_key = match cli {
        Cli::Gemini if has("GEMINI_API_KEY") => Some("gemini-api-key"),
        Cli::Gemini if has("GOOGLE_API_KEY") => Some("vertex-ai"),
        Cli::Qwen if has("OPENAI_API_KEY") => Some("openai"),
        _ => None,
    };
    if let (false, Some(kind)) = (chosen, by_key) {
        set(
            &mut settings,
            &["security", "auth", "selectedType"],
            json!(kind),
        );
    }
    let text = serde_json::to_string_pretty(&settings).unwrap_or_default();
    std::fs::write(path, text)
}

/// Copies a file, a folder (recursively) or a symbolic link (as a link).
fn copy_tree(from: &Path, to: &Path) -> io::Result<()> {
    let meta = from.symlink_metadata()?;
    if meta.file_type().is_symlink() {
        let target = std::fs::read_link(from)?;
        let _ = std::fs::remove_file(to);
        return std::os::unix::fs::symlink(target, to);
    }
    if meta.is_dir() {
        std::fs::create_dir_all(to)?;
        for entry in std::fs::read_dir(from)? {
            let entry = entry?;
            copy_tree(&entry.path(), &to.join(entry.file_name()))?;
        }
        return Ok(());
    }
    std::fs::copy(from, to)?;
    // Credentials stay readable by their owner only, as the CLI wrote them.
    std::fs::set_permissions(to, meta.permissions())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name: &str| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        }
    }

    #[test]
    fn a_claude_home_is_seeded_from_the_users_setup_once() {
        let dir = tempfile::tempdir().unwrap();
        let user_home = dir.path().join("u");
        let user = user_home.join(".claude");
        std::fs::create_dir_all(user.join("projects/x")).unwrap();
        std::fs::create_dir_all(user.join("commands")).unwrap();
        std::fs::write(user.join(".credentials.json"), "{\"token\":1}").unwrap();
        std::fs::write(user.join("settings.json"), "{\"hooks\":{}}").unwrap();
        std::fs::write(user.join("commands/review.md"), "review").unwrap();
        std::fs::write(user.join("projects/x/s.jsonl"), "old session").unwrap();
        std::fs::write(user_home.join(".claude.json"), "{\"mcpServers\":{}}").unwrap();
        let home = dir.path().join("task");
        let none = vars(&[]);
        let found = user_config_dir(Cli::Claude, &none, Some(&user_home)).unwrap();
        assert_eq!(found, user);
        let copied = prepare(Cli::Claude, &home, Some(&found), Some(&user_home), &none).unwrap();
        assert_eq!(copied.len(), 4, "{copied:?}");
        let config = home.join(".claude");
        assert!(config.join(".credentials.json").is_file());
        assert!(config.join("commands/review.md").is_file());
        assert!(config.join(".claude.json").is_file());
        assert!(
            !config.join("projects").exists(),
            "sessions stay the user's"
        );
        // The CLI changes its folder; a later attempt keeps it so.
        std::fs::write(config.join("settings.json"), "changed").unwrap();
        assert!(
            prepare(Cli::Claude, &home, Some(&found), Some(&user_home), &none)
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            std::fs::read_to_string(config.join("settings.json")).unwrap(),
            "changed"
        );
    }

    #[test]
    fn gemini_settings_keep_the_users_and_turn_the_network_habits_and_folder_trust_off() {
        let dir = tempfile::tempdir().unwrap();
        let user = dir.path().join("u/.gemini");
        std::fs::create_dir_all(&user).unwrap();
        std::fs::write(
            user.join("settings.json"),
            r#"{"mcpServers":{"x":{"command":"y"}},"telemetry":{"enabled":true}}"#,
        )
        .unwrap();
        let home = dir.path().join("task");
        let env = vars(&[("GEMINI_API_KEY", "k")]);
        prepare(Cli::Gemini, &home, Some(&user), None, &env).unwrap();
        let settings: Value = serde_json::from_str(
            &std::fs::read_to_string(home.join(".gemini/settings.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(settings["mcpServers"]["x"]["command"], "y");
        assert_eq!(settings["telemetry"]["enabled"], false);
        assert_eq!(settings["security"]["folderTrust"]["enabled"], false);
        assert_eq!(
            settings["security"]["auth"]["selectedType"],
            "gemini-api-key"
        );
        // Qwen without a user folder: the preset's settings alone.
        prepare(
            Cli::Qwen,
            &home,
            None,
            None,
            &vars(&[("OPENAI_API_KEY", "k")]),
        )
        .unwrap();
        let qwen = std::fs::read_to_string(home.join(".qwen/settings.json")).unwrap();
        assert!(qwen.contains("\"openai\""), "{qwen}");
    }
}
