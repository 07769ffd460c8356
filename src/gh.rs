//! The one door to the GitHub CLI (`gh`): checking it is there and logged in, finding, opening
//! and editing pull requests. Like `git/`, callers see named operations and plain data; `gh`
//! runs in the user's checkout, so it picks the GitHub repository from its remotes. (GitHub
//! Actions is elsewhere: the workflow in `ci::github`, a run's annotations in `report::actions`.)

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::error::Error;

/// `gh` bound to a directory (the user's checkout), optionally to one GitHub repository.
pub struct Gh {
    dir: PathBuf,
    /// `OWNER/REPO` for `--repo`, when the remote's URL names one: `gh` then needs no guess
    /// among several remotes.
    repo: Option<String>,
}

/// A pull request `gh` found or made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PullRequest {
    pub number: u64,
    pub url: String,
}

/// What a new or edited pull request says.
pub struct PrText<'a> {
    pub title: &'a str,
    pub body: &'a str,
}

impl Gh {
    pub fn new(dir: &Path, repo: Option<String>) -> Gh {
        Gh {
            dir: dir.to_path_buf(),
            repo,
        }
    }

    /// Whether `gh` can be started at all (a dry run says when it cannot; it asks nothing of
    /// GitHub).
    /// Looked up on PATH, not run: a dry run runs nothing.
    pub fn installed(&self) -> bool {
        use std::os::unix::fs::PermissionsExt;
        std::env::var_os("PATH").is_some_and(|dirs| {
            std::env::split_paths(&dirs).any(|dir| {
                std::fs::metadata(dir.join("gh"))
                    .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            })
        })
    }

    /// Fails with the fix when `gh` is not installed or not logged in.
    pub fn check_ready(&self) -> Result<(), Error> {
        let out = self.output(&["--version"]).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Error::usage_with_hint(
                    "the GitHub CLI `gh` was not found on PATH",
                    "install it (https://cli.github.com), run `gh auth login`, then run this again",
                )
            } else {
                Error::io("could not run `gh --version`", e)
            }
        })?;
        if !out.status.success() {
            return Err(self.failed("--version", &out));
        }
        let out = self
            .output(&["auth", "status"])
            .map_err(|e| Error::io("could not run `gh auth status`", e))?;
        if !out.status.success() {
            return Err(Error::usage_with_hint(
                "the GitHub CLI `gh` is not logged in",
                "run `gh auth login` (or set GH_TOKEN), then run this again",
            ));
        }
        Ok(())
    }

    /// The open pull request whose head is `branch`, if there is one.
    pub fn find(&self, branch: &str) -> Result<Option<PullRequest>, Error> {
        let args = self.with_repo(vec![
            "pr",
            "list",
            "--head",
            branch,
            "--state",
            "open",
            "--json",
            "number,url",
        ]);
        let out = self.run(&args)?;
        #[derive(serde::Deserialize)]
        struct Listed {
            number: u64,
            url: String,
        }
        let listed: Vec<Listed> = serde_json::from_slice(&out).map_err(|e| {
            Error::Internal(format!("`gh pr list` printed something unexpected: {e}"))
        })?;
        Ok(listed.into_iter().next().map(|p| PullRequest {
            number: p.number,
            url: p.url,
        }))
    }

    /// Opens a pull request from `head` into `base`.
    pub fn create(
        &self,
        head: &str,
        base: &str,
        text: &PrText<'_>,
        draft: bool,
    ) -> Result<PullRequest, Error> {
        let args = self.with_repo(create_args(head, base, text, draft));
        let out = self.run(&args)?;
        // `gh pr create` prints the new pull request's URL, ending in its number.
        let url = String::from_utf8_lossy(&out)
            .lines()
            .rev()
            .find(|l| l.starts_with("http"))
            .unwrap_or_default()
            .trim()
            .to_string();
        let number = url
            .rsplit('/')
            .next()
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| {
                Error::Internal(format!(
                    "`gh pr create` did not print the new pull request's URL: {}",
                    String::from_utf8_lossy(&out).trim()
                ))
            })?;
        Ok(PullRequest { number, url })
    }

    /// Replaces a pull request's title and body.
    pub fn edit(&self, number: u64, text: &PrText<'_>) -> Result<(), Error> {
        let number = number.to_string();
        let args = self.with_repo(edit_args(&number, text));
        self.run(&args)?;
        Ok(())
    }

    /// The argv of `create`, for `--dry-run`.
    pub fn create_argv(
        &self,
        head: &str,
        base: &str,
        text: &PrText<'_>,
        draft: bool,
    ) -> Vec<String> {
        let mut argv = vec!["gh".to_string()];
        argv.extend(
            self.with_repo(create_args(head, base, text, draft))
                .into_iter()
                .map(str::to_string),
        );
        argv
    }

    fn with_repo<'a>(&'a self, mut args: Vec<&'a str>) -> Vec<&'a str> {
        if let Some(repo) = &self.repo {
            args.extend(["--repo", repo.as_str()]);
        }
        args
    }

    fn output(&self, args: &[&str]) -> std::io::Result<std::process::Output> {
        Command::new("gh")
            .args(args)
            .current_dir(&self.dir)
            // Never a prompt or a pager: streams waits for the answer.
            .env("GH_PROMPT_DISABLED", "1")
            .env("GH_PAGER", "cat")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .output()
    }

    fn run(&self, args: &[&str]) -> Result<Vec<u8>, Error> {
        let out = self
            .output(args)
            .map_err(|e| Error::io(format!("could not run `gh {}`", args.join(" ")), e))?;
        if out.status.success() {
            Ok(out.stdout)
        } else {
            Err(self.failed(&args[..2.min(args.len())].join(" "), &out))
        }
    }

    fn failed(&self, what: &str, out: &std::process::Output) -> Error {
        Error::Internal(format!(
            "`gh {what}` failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn create_args<'a>(head: &'a str, base: &'a str, text: &PrText<'a>, draft: bool) -> Vec<&'a str> {
    let mut args = vec![
        "pr", "create", "--head", head, "--base", base, "--title", text.title, "--body", text.body,
    ];
    if draft {
        args.push("--draft");
    }
    args
}

fn edit_args<'a>(number: &'a str, text: &PrText<'a>) -> Vec<&'a str> {
    vec![
        "pr", "edit", number, "--title", text.title, "--body", text.body,
    ]
}

/// `OWNER/REPO` from a GitHub remote URL (`https://github.com/o/r.git`, `git@github.com:o/r`,
/// `ssh://git@github.com/o/r`); `None` for anything else.
pub fn github_repo(url: &str) -> Option<String> {
    let rest = url
        .strip_prefix("https://github.com/")
        .or_else(|| url.strip_prefix("http://github.com/"))
        .or_else(|| url.strip_prefix("git@github.com:"))
        .or_else(|| url.strip_prefix("ssh://git@github.com/"))?;
    let rest = rest.trim_end_matches('/');
    let rest = rest.strip_suffix(".git").unwrap_or(rest);
    let mut parts = rest.split('/');
    let (owner, name) = (parts.next()?, parts.next()?);
    (parts.next().is_none() && !owner.is_empty() && !name.is_empty())
        .then(|| format!("{owner}/{name}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn github_urls() {
        assert_eq!(
            github_repo("https://github.com/o/r.git").as_deref(),
            Some("o/r")
        );
        assert_eq!(github_repo("git@github.com:o/r").as_deref(), Some("o/r"));
        assert_eq!(
            github_repo("ssh://git@github.com/o/r.git").as_deref(),
            Some("o/r")
        );
        assert_eq!(github_repo("/tmp/remote.git"), None);
        assert_eq!(github_repo("https://gitlab.com/o/r"), None);
    }
}
