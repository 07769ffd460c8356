//! The version of a preset's CLI found on the agent's PATH, against the versions the preset was
//! tested with (`Cli::tested_versions`): another version may name its flags or shape its events
//! differently, so a person is told.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::Cli;

/// How `<cli> --version` may take before it is given up on (aider's Python start takes seconds).
const PATIENCE: Duration = Duration::from_secs(20);

/// What was found of one CLI.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Found {
    /// A version the preset was tested with.
    Tested(String),
    /// Another version: what to tell a person.
    Untested { version: String, warning: String },
    /// Not found, or its version could not be read: what to tell a person.
    Unknown(String),
}

/// Runs `<program> --version` with `path` as PATH (the agent's) and compares.
pub fn check(cli: Cli, path: Option<&str>) -> Found {
    let mut command = Command::new(cli.program());
    command
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    if let Some(path) = path {
        command.env("PATH", path);
    }
    let output = match run_with_patience(command) {
        Ok(output) => output,
        Err(e) => {
            return Found::Unknown(format!(
                "the {} preset runs `{}`, which could not be run: {e}",
                cli.name(),
                cli.program()
            ));
        }
    };
    match parse_version(&output) {
        Some(version) => judge(cli, version),
        None => Found::Unknown(format!(
            "`{} --version` printed no version the {} preset understands",
            cli.program(),
            cli.name()
        )),
    }
}

/// Whether `version` is one the preset was tested with.
pub fn judge(cli: Cli, version: String) -> Found {
    let tested = cli.tested_versions();
    if tested.contains(&version.as_str()) {
        return Found::Tested(version);
    }
    let warning = format!(
        "{} {version} is not a version the `{}` preset was tested with ({}): if it misbehaves, \
         install {} {}, or run it through an argv of your own",
        cli.product(),
        cli.name(),
        tested.join(", "),
        cli.product(),
        tested[tested.len() - 1],
    );
    Found::Untested { version, warning }
}

/// The first `N.N.N` in what `--version` printed (`2.1.197 (Claude Code)`, `codex-cli 0.171.0`,
/// `aider 0.86.2`).
pub fn parse_version(text: &str) -> Option<String> {
    text.split(|c: char| c.is_whitespace() || c == ',' || c == '(' || c == ')')
        .map(|w| w.trim_start_matches('v'))
        .find(|w| {
            let parts: Vec<&str> = w.split('.').collect();
            parts.len() >= 3
                && parts[..3]
                    .iter()
                    .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
        })
        .map(str::to_string)
}

fn run_with_patience(mut command: Command) -> std::io::Result<String> {
    let mut child = command.spawn()?;
    let started = Instant::now();
    loop {
        if let Some(_status) = child.try_wait()? {
            let mut out = String::new();
            if let Some(mut stdout) = child.stdout.take() {
                use std::io::Read;
                let _ = stdout.read_to_string(&mut out);
            }
            return Ok(out);
        }
        if started.elapsed() > PATIENCE {
            let _ = child.kill();
            let _ = child.wait();
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("`--version` did not answer within {}s", PATIENCE.as_secs()),
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether a program of that name is on `path`.
pub fn on_path(program: &str, path: &str) -> bool {
    std::env::split_paths(path).any(|dir| Path::new(&dir).join(program).is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_read_from_what_each_cli_prints() {
        assert_eq!(
            parse_version("2.1.197 (Claude Code)\n").as_deref(),
            Some("2.1.197")
        );
        assert_eq!(
            parse_version("codex-cli 0.171.0").as_deref(),
            Some("0.171.0")
        );
        assert_eq!(parse_version("aider 0.86.2").as_deref(), Some("0.86.2"));
        assert_eq!(parse_version("v0.61.0").as_deref(), Some("0.61.0"));
        assert_eq!(parse_version("no version"), None);
    }

    #[test]
    fn another_version_gets_a_warning_naming_the_tested_one() {
        assert_eq!(
            judge(Cli::Claude, "2.1.197".into()),
            Found::Tested("2.1.197".into())
        );
        match judge(Cli::Codex, "0.200.0".into()) {
            Found::Untested { warning, .. } => assert!(
                warning.starts_with(
                    "Codex 0.200.0 is not a version the `codex` preset was tested with (0.171.0)"
                ),
                "{warning}"
            ),
            other => panic!("{other:?}"),
        }
    }
}
