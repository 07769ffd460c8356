//! Sparse workspaces: a stream that declares `reads` gets only what it owns, the plan's `shared`
//! and what it reads checked out (git's sparse checkout), so a 100,000-file monorepo costs a
//! stream the few thousand files it needs. The ownership check is unchanged: it looks at what
//! the agent changed, and files outside the sparse set cannot be changed without being written.
//!
//! Cone mode (git's fast one: whole directories, matched by prefix) when every pattern is a
//! directory (`dir/**`) or a file at the top level (cone mode always has those); otherwise
//! non-cone mode, where each pattern becomes one gitignore-style line.

use std::path::Path;

use super::{Git, GitResult};

/// The sparse-checkout patterns of a workspace, in the mode git is to read them in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sparse {
    /// Cone mode: `lines` are directories. Otherwise gitignore-style patterns.
    pub cone: bool,
    pub lines: Vec<String>,
}

impl Sparse {
    /// The sparse set for globs (normalised `owns`, `shared` and `reads` patterns).
    pub fn from_globs<'a>(globs: impl IntoIterator<Item = &'a str>) -> Sparse {
        let globs: Vec<&str> = globs.into_iter().collect();
        let cone_dirs: Option<Vec<Option<String>>> = globs.iter().map(|g| cone_entry(g)).collect();
        match cone_dirs {
            Some(entries) => {
                let mut lines: Vec<String> = entries.into_iter().flatten().collect();
                lines.sort();
                lines.dedup();
                Sparse { cone: true, lines }
            }
            None => {
                let mut lines: Vec<String> = globs
                    .iter()
                    .flat_map(|g| expand_braces(g))
                    .map(|g| format!("/{g}"))
                    .collect();
                lines.dedup();
                Sparse { cone: false, lines }
            }
        }
    }

    /// Which of `paths` (tracked files) a workspace with these patterns holds: in cone mode
    /// the top level, each listed directory, and the files directly in their parent
    /// directories (what git's cone mode checks out); otherwise the files the globs match, or
    /// that are under a directory they match.
    pub fn count<'a>(&self, paths: impl IntoIterator<Item = &'a String>) -> usize {
        if self.cone {
            let mut parents: Vec<&str> = Vec::new();
            for dir in &self.lines {
                let mut rest = dir.as_str();
                while let Some((parent, _)) = rest.rsplit_once('/') {
                    parents.push(parent);
                    rest = parent;
                }
            }
            return paths
                .into_iter()
                .filter(|path| match path.rsplit_once('/') {
                    None => true,
                    Some((dir, _)) => {
                        parents.contains(&dir)
                            || self.lines.iter().any(|d| {
                                path.strip_prefix(d.as_str())
                                    .is_some_and(|rest| rest.starts_with('/'))
                            })
                    }
                })
                .count();
        }
        let mut set = globset::GlobSetBuilder::new();
        for line in &self.lines {
            let glob = line.strip_prefix('/').unwrap_or(line);
            if let Ok(g) = crate::plan::pattern::compile(glob) {
                set.add(g);
            }
        }
        let Ok(set) = set.build() else { return 0 };
        paths
            .into_iter()
            .filter(|path| {
                // A pattern naming a directory takes everything under it.
                set.is_match(path.as_str())
                    || path
                        .match_indices('/')
                        .any(|(i, _)| set.is_match(&path[..i]))
            })
            .count()
    }

    /// What is asked of git, as recorded beside git's own file.
    fn request(&self) -> String {
        let mode = if self.cone { "cone" } else { "no-cone" };
        let lines: String = self.lines.iter().map(|l| format!("{l}\n")).collect();
        format!("{mode}\n{lines}")
    }
}

/// What a glob contributes in cone mode: `Some(Some(dir))` for `dir/**` with a literal `dir`,
/// `Some(None)` for a literal file at the top level (always checked out in cone mode), `None`
/// when cone mode cannot express it.
fn cone_entry(glob: &str) -> Option<Option<String>> {
    let literal = |s: &str| !s.is_empty() && !s.contains(['*', '?', '[', ']', '{', '}', '\\']);
    if let Some(dir) = glob.strip_suffix("/**") {
        return literal(dir).then(|| Some(dir.trim_end_matches('/').to_string()));
    }
    (literal(glob) && !glob.contains('/')).then_some(None)
}

/// `{a,b}` alternations written out (gitignore patterns have none); nested groups too.
fn expand_braces(glob: &str) -> Vec<String> {
    let Some(open) = glob.find('{') else {
        return vec![glob.to_string()];
    };
    // The matching close brace, and the top-level commas between.
    let (mut depth, mut close, mut commas) = (0, None, Vec::new());
    for (i, c) in glob.char_indices().skip_while(|(i, _)| *i < open) {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    close = Some(i);
                    break;
                }
            }
            ',' if depth == 1 => commas.push(i),
            _ => {}
        }
    }
    let Some(close) = close else {
        return vec![glob.to_string()];
    };
    let (head, tail) = (&glob[..open], &glob[close + 1..]);
    let mut bounds = vec![open];
    bounds.extend(&commas);
    bounds.push(close);
    bounds
        .windows(2)
        .flat_map(|w| expand_braces(&format!("{head}{}{tail}", &glob[w[0] + 1..w[1]])))
        .collect()
}

/// Where streams records what it last asked `git sparse-checkout set` for, followed by the file
/// git wrote: when both still hold, the workspace is as asked without running git (an agent
/// that changed git's file gets it set again).
const RECORD: &str = "streams-sparse";
const SEPARATOR: &str = "--- git's sparse-checkout file:\n";

/// The files of a workspace's `info/` directory that hold its sparse set (kept when streams
/// cleans the rest of `info/` out).
pub(super) const FILES: [&str; 2] = ["sparse-checkout", RECORD];

/// The `[core]` lines of a workspace's config for its sparse set: on, in the mode recorded,
/// when streams set one and git's file is there; off otherwise.
pub(super) fn config_lines(git_dir: &Path) -> String {
    let info = git_dir.join("info");
    let recorded = std::fs::read_to_string(info.join(RECORD)).ok();
    match recorded {
        Some(record) if info.join("sparse-checkout").is_file() => {
            let cone = record.lines().next() == Some("cone");
            format!("\tsparseCheckout = true\n\tsparseCheckoutCone = {cone}\n")
        }
        _ => "\tsparseCheckout = false\n".to_string(),
    }
}

/// Makes the workspace at `git`'s directory sparse with `sparse`, or whole with `None`; call it
/// before a checkout fills the workspace (then only the sparse set is written), or on a filled
/// one (git then removes or adds files). Runs nothing when the workspace is already so:
/// `git_dir` is the workspace's own git directory (where `info/sparse-checkout` lives).
/// Returns whether it ran git (which then changed the config: the caller writes its own again).
pub(super) fn apply(git: &Git, git_dir: &Path, sparse: Option<&Sparse>) -> GitResult<bool> {
    let info = git_dir.join("info");
    let (file, record) = (info.join("sparse-checkout"), info.join(RECORD));
    // Read to compare; what streams writes or removes here goes beneath the git dir.
    let current = std::fs::read_to_string(&file).ok();
    let recorded = std::fs::read_to_string(&record).ok();
    match sparse {
        None if current.is_none() && recorded.is_none() => Ok(false),
        None => {
            git.run(["sparse-checkout", "disable"])?;
            // `disable` leaves git's file; without both, the next call sees a whole workspace.
            if let Ok(ours) = crate::beneath::Dir::open(git_dir) {
                let _ = ours.remove("info/sparse-checkout");
                let _ = ours.remove(Path::new("info").join(RECORD));
            }
            Ok(true)
        }
        Some(sparse) => {
            let request = sparse.request();
            if let (Some(current), Some(recorded)) = (&current, &recorded)
                && *recorded == format!("{request}{SEPARATOR}{current}")
            {
                return Ok(false);
            }
            let mode = if sparse.cone { "--cone" } else { "--no-cone" };
            let input: String = sparse.lines.iter().map(|l| format!("{l}\n")).collect();
            git.run_with_stdin(
                ["sparse-checkout", "set", mode, "--stdin"],
                Some(input.as_bytes()),
            )?;
            let written = std::fs::read_to_string(&file).unwrap_or_default();
            // Only an optimisation: a record that cannot be written costs a `set` next time.
            let _ = crate::beneath::Dir::open(git_dir).and_then(|ours| {
                ours.write(
                    Path::new("info").join(RECORD),
                    format!("{request}{SEPARATOR}{written}").as_bytes(),
                )
            });
            Ok(true)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directories_and_top_level_files_are_cone() {
        let s = Sparse::from_globs(["src/api/**", "Cargo.lock", "docs/**"]);
        assert!(s.cone);
        assert_eq!(s.lines, ["docs", "src/api"]);
    }

    #[test]
    fn other_globs_are_not_cone() {
        let s = Sparse::from_globs(["src/api/**", "src/*.rs", "a/{b,c}/x"]);
        assert!(!s.cone);
        assert_eq!(s.lines, ["/src/api/**", "/src/*.rs", "/a/b/x", "/a/c/x"]);
        // A file below the top level is not a cone either: cone mode would take its directory.
        assert!(!Sparse::from_globs(["src/main.rs"]).cone);
    }

    #[test]
    fn count_follows_git() {
        let paths: Vec<String> = [
            "top.txt",
            "src/lib.rs",
            "src/api/a.rs",
            "src/api/x/b.rs",
            "src/db/c.rs",
            "docs/d.md",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        // Cone: the top level, src/api recursively, and src/'s own files.
        assert_eq!(Sparse::from_globs(["src/api/**"]).count(&paths), 4);
        // Non-cone: exactly what matches.
        assert_eq!(
            Sparse::from_globs(["src/api/*.rs", "docs/**"]).count(&paths),
            2
        );
    }

    #[test]
    fn nested_braces_are_written_out() {
        assert_eq!(expand_braces("{a,b{c,d}}/e"), ["a/e", "bc/e", "bd/e"]);
        assert_eq!(expand_braces("a{b"), ["a{b"]);
    }
}
