//! The sparse set of a stream's workspace (a stream that declares `reads`): which patterns git's
//! sparse checkout is given, and how many tracked files that leaves in the workspace. Pure: `git`
//! applies it (see `git::sparse`).
//!
//! Cone mode (git's fast one: whole directories, matched by prefix) when every pattern is a
//! directory (`dir/**`) or a file at the top level (cone mode always has those); otherwise
//! non-cone mode, where each pattern becomes one gitignore-style line.

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
            if let Ok(g) = super::pattern::compile(glob) {
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
