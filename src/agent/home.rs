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
//! Seeded at the task's first attempt: later attempts (a retry, a limit's wait, a check's
//! second chance resuming the session) find the folder as the CLI left it, but for what the
//! user changed in their own folder since: that is copied again (the user's change wins), so
//! that a user who fixes their setup (a provider's address, a login) after a task failed on it
//! gets it in `streams retry`. The marker file keeps a fingerprint of each entry as seeded.

use std::io;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::Cli;

/// Written once the folder is seeded: a later attempt leaves it as the CLI left it, but for the
/// entries whose fingerprint at the user's changed. Its first line is [`SEEDED_HEADER`], then
/// one `fingerprint<TAB>entry` line per entry seeded; a marker without the header (written
/// before fingerprints were kept) refreshes nothing.
const SEEDED: &str = ".streams-seeded";
const SEEDED_HEADER: &str = "streams-seeded 1";

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

/// Prepares the task's home for `cli`: its configuration folder, seeded from `user` (the
/// user's own folder, when there is one) and `user_home` (Claude keeps `.claude.json` beside
/// its folder unless `CLAUDE_CONFIG_DIR` is set), then the preset's settings written over. At a
/// later attempt only the entries the user changed since are copied again. `var` reads the
/// agent's environment (which auth a settings file should select). Returns the entries copied,
/// for the log.
pub fn prepare(
    cli: Cli,
    home: &Path,
    user: Option<&Path>,
    user_home: Option<&Path>,
    var: &dyn Fn(&str) -> Option<String>,
) -> io::Result<Vec<String>> {
    let config = cli.config_dir_in(home);
    let marker = config.join(SEEDED);
    let mut seeded = match std::fs::read_to_string(&marker) {
        Ok(text) => match text.strip_prefix(SEEDED_HEADER) {
            Some(lines) => fingerprints(lines),
            // Seeded before fingerprints were kept: left as the CLI left it.
            None => return Ok(Vec::new()),
        },
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            std::fs::create_dir_all(&config)?;
            Vec::new()
        }
        Err(e) => return Err(e),
    };
    let first = !marker.exists();
    let mut copied = Vec::new();
    for (name, from) in sources(cli, &config, user, user_home, var) {
        if from.symlink_metadata().is_err() {
            continue;
        }
        let now = fingerprint(&from)?;
        let known = seeded.iter_mut().find(|(n, _)| *n == name);
        if known.as_ref().is_some_and(|(_, f)| *f == now) {
            continue;
        }
        let to = config.join(&name);
        if !first && to.symlink_metadata().is_ok_and(|m| m.is_dir()) {
            // The user's folder replaces the copy whole: what they removed goes too.
            std::fs::remove_dir_all(&to)?;
        }
        copy_tree(&from, &to)?;
        copied.push(from.display().to_string());
        match known {
            Some((_, f)) => *f = now,
            None => seeded.push((name, now)),
        }
    }
    if matches!(cli, Cli::Gemini | Cli::Qwen) && (first || !copied.is_empty()) {
        settle_settings(cli, &config.join("settings.json"), var)?;
    }
    if first || !copied.is_empty() {
        let mut text = format!("{SEEDED_HEADER}\n");
        for (name, f) in &seeded {
            text.push_str(&format!("{f:016x}\t{name}\n"));
        }
        std::fs::write(&marker, text)?;
    }
    Ok(copied)
}

/// What the folder is seeded from: each entry's name in the folder and where it is copied from
/// (present or not).
fn sources(
    cli: Cli,
    config: &Path,
    user: Option<&Path>,
    user_home: Option<&Path>,
    var: &dyn Fn(&str) -> Option<String>,
) -> Vec<(String, PathBuf)> {
    let mut sources = Vec::new();
    if let Some(user) = user.filter(|u| u.is_dir() && *u != config) {
        for name in seeded_entries(cli) {
            sources.push((name.to_string(), user.join(name)));
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
            sources.retain(|(name, _)| name != ".claude.json");
            sources.push((".claude.json".to_string(), from));
        }
    }
    sources
}

/// The marker's `fingerprint<TAB>entry` lines.
fn fingerprints(lines: &str) -> Vec<(String, u64)> {
    lines
        .lines()
        .filter_map(|line| {
            let (f, name) = line.split_once('\t')?;
            Some((name.to_string(), u64::from_str_radix(f, 16).ok()?))
        })
        .collect()
}

/// A fingerprint of a file, a folder (its names and contents, in order) or a link (its
/// target): FNV-1a, stable across builds, so that an upgrade between attempts refreshes
/// nothing the user did not change.
fn fingerprint(path: &Path) -> io::Result<u64> {
    fn feed(hash: &mut u64, bytes: &[u8]) {
        for b in bytes {
            *hash ^= u64::from(*b);
            *hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
        // Each piece ends, so that "ab"+"c" differs from "a"+"bc".
        *hash ^= 0xff;
        *hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    fn walk(path: &Path, hash: &mut u64) -> io::Result<()> {
        let meta = path.symlink_metadata()?;
        if meta.file_type().is_symlink() {
            feed(hash, b"link");
            feed(
                hash,
                std::fs::read_link(path)?.as_os_str().as_encoded_bytes(),
            );
        } else if meta.is_dir() {
            feed(hash, b"dir");
            let mut names: Vec<_> = std::fs::read_dir(path)?
                .map(|e| e.map(|e| e.file_name()))
                .collect::<io::Result<_>>()?;
            names.sort();
            for name in names {
                feed(hash, name.as_encoded_bytes());
                walk(&path.join(name), hash)?;
            }
        } else {
            feed(hash, b"file");
            feed(hash, &std::fs::read(path)?);
        }
        Ok(())
    }
    let mut hash = 0xcbf2_9ce4_8422_2325;
    walk(path, &mut hash)?;
    Ok(hash)
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
    fn a_claude_home_is_seeded_once_and_takes_what_the_user_changed_since() {
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
        // The user changes their own (a retry after fixing their setup): that entry is copied
        // again, the CLI's other changes stay.
        std::fs::write(config.join("commands/review.md"), "the CLI's").unwrap();
        std::fs::write(user.join("settings.json"), "{\"fixed\":1}").unwrap();
        let copied = prepare(Cli::Claude, &home, Some(&found), Some(&user_home), &none).unwrap();
        assert_eq!(copied, [user.join("settings.json").display().to_string()]);
        assert_eq!(
            std::fs::read_to_string(config.join("settings.json")).unwrap(),
            "{\"fixed\":1}"
        );
        assert_eq!(
            std::fs::read_to_string(config.join("commands/review.md")).unwrap(),
            "the CLI's"
        );
        // A folder the user changed replaces the copy whole.
        std::fs::remove_file(user.join("commands/review.md")).unwrap();
        std::fs::write(user.join("commands/new.md"), "new").unwrap();
        prepare(Cli::Claude, &home, Some(&found), Some(&user_home), &none).unwrap();
        assert!(!config.join("commands/review.md").exists());
        assert!(config.join("commands/new.md").is_file());
        // A folder seeded before fingerprints were kept is left as the CLI left it.
        std::fs::write(config.join(SEEDED), "").unwrap();
        std::fs::write(user.join("settings.json"), "{\"again\":1}").unwrap();
        assert!(
            prepare(Cli::Claude, &home, Some(&found), Some(&user_home), &none)
                .unwrap()
                .is_empty()
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
