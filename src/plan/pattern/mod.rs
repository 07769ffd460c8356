//! `owns` and `shared` patterns: what a written pattern means, how it is compiled, and whether two
//! patterns could ever match the same path.
//!
//! A pattern is a glob matched against the whole path from the repository root, `/` separated:
//! `*`, `?` and `[...]` stay within one path segment, `**` as a whole segment spans any number of
//! them, `{a,b}` is an alternation. A leading `/` is accepted and changes nothing. Everything is
//! compiled by [`compile`], the one place that sets globset's options, so validation and the run
//! engine can never disagree on what a pattern matches.
//!
//! [`overlap`] decides whether two globs share a path that could exist in a repository, even if
//! none does yet, and returns such a path as an example. It mirrors globset's own parser (so
//! `a**`, `**/x`, `x/**`, `a/**/b` and alternations mean exactly what globset makes of them),
//! turns each glob into a small automaton over characters, and searches the product of the two
//! automata with a third that only accepts well-formed relative paths (no empty segment, no
//! leading or trailing `/`). The search visits each product state once: polynomial in the pattern
//! lengths, with no expansion of alternations.

use globset::{Glob, GlobBuilder};

mod overlap;

#[cfg(test)]
use overlap::nfa_matches;
pub use overlap::{Shape, overlap};

/// Compiles one normalised pattern the way every part of streams does.
pub fn compile(glob: &str) -> Result<Glob, globset::Error> {
    GlobBuilder::new(glob)
        .literal_separator(true)
        .backslash_escape(true)
        .build()
}

/// The path every path `glob` matches starts with, whole segments only: the pattern up to the
/// last `/` before its first special character (`*`, `?`, `[`, `{`, `\\`), or all of it when
/// it has none. Empty when a match can start at the top. A path the glob matches is this path
/// or lies under it (a superset, for asking git about the paths a plan owns only).
pub fn literal_prefix(glob: &str) -> &str {
    let glob = glob.trim_start_matches('/');
    match glob.find(['*', '?', '[', '{', '\\']) {
        None => glob.trim_end_matches('/'),
        Some(at) => glob[..at].rfind('/').map_or("", |slash| &glob[..slash]),
    }
}

/// Why a written pattern cannot be used, with what to do about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PatternError {
    pub message: String,
    pub help: Option<String>,
}

impl PatternError {
    fn new(message: impl Into<String>, help: Option<String>) -> Self {
        PatternError {
            message: message.into(),
            help,
        }
    }
}

/// Top-level directories that say "this is an absolute path on some machine" when a pattern
/// starts with them and matches nothing in the repository.
const SYSTEM_DIRS: &[&str] = &[
    "home", "Users", "usr", "etc", "tmp", "var", "opt", "root", "mnt", "media", "srv", "private",
    "Volumes", "nix",
];

/// Turns what the user wrote into the glob that is compiled, or says why it cannot be used.
///
/// `root` is the repository's absolute path, to recognise a pasted absolute path into it.
pub fn normalize(text: &str, root: Option<&str>) -> Result<String, PatternError> {
    if text.is_empty() {
        return Err(PatternError::new("empty pattern", None));
    }
    if text.trim() != text {
        return Err(PatternError::new(
            "pattern starts or ends with whitespace",
            Some(format!("did you mean `{}`?", text.trim())),
        ));
    }
    if let Some(rest) = text.strip_prefix('!') {
        // gitignore and CODEOWNERS readers expect `!` to take paths back out; globset would read
        // it as a literal `!` and the pattern would silently match nothing.
        return Err(PatternError::new(
            "negated patterns (`!...`) are not supported",
            Some(format!(
                "patterns only add paths: instead of taking `{rest}` out, list the paths you mean (e.g. `src/api/**` rather than `src/**` and `!src/db/**`)"
            )),
        ));
    }
    if text.starts_with('~') {
        return Err(PatternError::new(
            "pattern starts with `~`, which is not expanded",
            Some("patterns are relative to the repository root, e.g. `src/**`".into()),
        ));
    }
    let bytes = text.as_bytes();
    if bytes.len() >= 2
        && bytes[0].is_ascii_alphabetic()
        && bytes[1] == b':'
        && (bytes.len() == 2 || bytes[2] == b'/' || bytes[2] == b'\\')
    {
        return Err(PatternError::new(
            "pattern is an absolute path outside the repository",
            Some("patterns are relative to the repository root, e.g. `src/**`".into()),
        ));
    }
    if text.starts_with("//") {
        return Err(PatternError::new(
            "pattern is an absolute path outside the repository",
            Some("patterns are relative to the repository root; a single leading `/` is allowed and means the root".into()),
        ));
    }
    if let Some(root) = root
        .map(|r| r.trim_end_matches('/'))
        .filter(|r| !r.is_empty())
        && let Some(rest) = text.strip_prefix(root)
        && (rest.is_empty() || rest.starts_with('/'))
    {
        let relative = rest.trim_start_matches('/');
        let help = if relative.is_empty() {
            "patterns are relative to the repository root: write `**` for everything".to_string()
        } else {
            format!("patterns are relative to the repository root: write `{relative}`")
        };
        return Err(PatternError::new(
            "pattern is an absolute path into the repository",
            Some(help),
        ));
    }

    let glob = text.strip_prefix('/').unwrap_or(text);
    if glob.is_empty() {
        return Err(PatternError::new(
            "pattern `/` names the repository root itself, not files in it",
            Some("write `**` for every file".into()),
        ));
    }
    let segments: Vec<&str> = glob.split('/').collect();
    if segments.contains(&"..") {
        return Err(PatternError::new(
            "pattern escapes the repository: `..` segments are not allowed",
            Some("patterns are relative to the repository root and cannot leave it".into()),
        ));
    }
    if segments.last() == Some(&"") {
        let dir = glob.trim_end_matches('/');
        return Err(PatternError::new(
            "pattern ends with `/`, so it matches no file",
            Some(format!(
                "write `{dir}/**` for everything below `{dir}`, or `{dir}/*` for its direct children"
            )),
        ));
    }
    if segments.contains(&"") {
        return Err(PatternError::new(
            "pattern has an empty segment (`//`)",
            Some(format!("did you mean `{}`?", squeeze_slashes(glob))),
        ));
    }
    if segments.contains(&".") {
        let fixed: Vec<&str> = segments.iter().copied().filter(|s| *s != ".").collect();
        return Err(PatternError::new(
            "pattern has a `.` segment, which no path in git contains",
            Some(format!("did you mean `{}`?", fixed.join("/"))),
        ));
    }
    let wildcards = wildcard_count(glob);
    if wildcards > MAX_WILDCARDS {
        return Err(PatternError::new(
            format!(
                "pattern has {wildcards} wildcards and alternatives, more than the {MAX_WILDCARDS} a pattern may have"
            ),
            Some(
                "checking that two streams' patterns cannot meet takes time that grows with the \
                 product of their wildcards: split it into simpler patterns"
                    .into(),
            ),
        ));
    }
    if glob.len() > MAX_PATTERN_BYTES {
        return Err(PatternError::new(
            format!(
                "pattern is {} bytes long, more than the {MAX_PATTERN_BYTES} a pattern may have",
                glob.len()
            ),
            Some("name a directory and own everything below it, e.g. `src/api/**`".into()),
        ));
    }
    compile(glob).map_err(|err| PatternError::new(glob_error_message(&err), None))?;
    Ok(glob.to_string())
}

/// The longest pattern accepted, in bytes: far beyond any real path, short enough that
/// [`overlap`] stays quick.
pub const MAX_PATTERN_BYTES: usize = 1024;

/// The most wildcards a pattern may have (`*`, `**`, `?`, `[...]`, each `{` and each `,` in an
/// alternation). [`overlap`] searches the product of two patterns' automata, whose size grows
/// with the product of their lengths and whose fan-out grows with their wildcards: two patterns
/// of 2,000 wildcards took 54 s and gigabytes (issue 11); two of 32 take milliseconds.
pub const MAX_WILDCARDS: usize = 32;

/// Wildcards and alternatives in a glob, escapes and class contents skipped.
fn wildcard_count(glob: &str) -> usize {
    let mut count = 0;
    let mut depth = 0usize;
    let mut chars = glob.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                chars.next();
            }
            '*' => {
                count += 1;
                // `**` is one wildcard.
                if chars.peek() == Some(&'*') {
                    chars.next();
                }
            }
            '?' => count += 1,
            '[' => {
                count += 1;
                // `]` right after `[` or `[!` is a member, not the end.
                if matches!(chars.peek(), Some('!') | Some('^')) {
                    chars.next();
                }
                if chars.peek() == Some(&']') {
                    chars.next();
                }
                for c in chars.by_ref() {
                    if c == ']' {
                        break;
                    }
                }
            }
            '{' => {
                count += 1;
                depth += 1;
            }
            '}' => depth = depth.saturating_sub(1),
            ',' if depth > 0 => count += 1,
            _ => {}
        }
    }
    count
}

/// Whether a pattern that matched nothing looks like an absolute path on this machine (`/home/..`).
pub fn looks_absolute(text: &str) -> bool {
    text.strip_prefix('/')
        .and_then(|rest| rest.split('/').next())
        .is_some_and(|first| SYSTEM_DIRS.contains(&first))
}

fn squeeze_slashes(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if !(c == '/' && out.ends_with('/')) {
            out.push(c);
        }
    }
    out
}

fn glob_error_message(err: &globset::Error) -> String {
    use globset::ErrorKind;
    match err.kind() {
        ErrorKind::UnclosedClass => {
            "invalid glob: `[` opens a character class that is never closed".into()
        }
        ErrorKind::InvalidRange(a, b) => {
            format!("invalid glob: the character range `{a}-{b}` is backwards")
        }
        ErrorKind::UnopenedAlternates => {
            "invalid glob: `}` closes an alternation that was never opened".into()
        }
        ErrorKind::UnclosedAlternates => {
            "invalid glob: `{` opens an alternation that is never closed".into()
        }
        ErrorKind::DanglingEscape => "invalid glob: it ends with a lone `\\`".into(),
        other => format!("invalid glob: {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_literal_prefix_holds_every_match() {
        for (glob, prefix, matches) in [
            ("src/api/**", "src/api", "src/api/x/y.rs"),
            ("src/api*/**", "src", "src/api2/y.rs"),
            ("src/{api,db}/**", "src", "src/db/y.rs"),
            ("docs/guide.md", "docs/guide.md", "docs/guide.md"),
            ("a/b?/c", "a", "a/bx/c"),
            ("a/\\*b/**", "a", "a/*b/c"),
            ("*.md", "", "README.md"),
            ("**/x", "", "a/b/x"),
            ("[ab]/x", "", "a/x"),
        ] {
            assert_eq!(literal_prefix(glob), prefix, "{glob}");
            assert!(
                compile(glob).unwrap().compile_matcher().is_match(matches),
                "{glob}"
            );
            assert!(
                matches == prefix
                    || matches.starts_with(&format!("{prefix}/"))
                    || prefix.is_empty(),
                "{glob}"
            );
        }
    }

    fn shape(glob: &str) -> Shape {
        Shape::parse(glob).unwrap_or_else(|| panic!("{glob} should parse"))
    }

    fn over(a: &str, b: &str) -> Option<String> {
        let found = overlap(&shape(a), &shape(b));
        let back = overlap(&shape(b), &shape(a));
        assert_eq!(
            found.is_some(),
            back.is_some(),
            "{a} vs {b} is not symmetric"
        );
        if let Some(path) = &found {
            // The example really is matched by both, according to globset itself.
            for glob in [a, b] {
                let m = compile(glob).unwrap().compile_matcher();
                assert!(m.is_match(path), "{glob} should match example {path}");
            }
        }
        found
    }

    #[test]
    fn overlaps_and_examples() {
        assert_eq!(
            over("src/**", "src/api/*.rs").as_deref(),
            Some("src/api/x.rs")
        );
        assert_eq!(over("**/*.rs", "src/**").as_deref(), Some("src/x.rs"));
        assert_eq!(over("src/**", "src/**"), Some("src/x".into()));
        assert_eq!(over("*.md", "README.md").as_deref(), Some("README.md"));
        assert!(over("**", "a").is_some());
        assert!(over("a/**/b", "a/b").is_some());
        assert!(over("a/**/b", "a/x/y/b").is_some());
        assert!(over("{src,lib}/**", "lib/x.rs").is_some());
        assert!(over("src/[a-c]*/x", "src/b/x").is_some());
        assert!(over("src/[!a]/x", "src/b/x").is_some());
        assert!(over("a**", "abc").is_some());
        assert!(over("**/Cargo.toml", "Cargo.toml").is_some());
        assert!(over("**/Cargo.toml", "crates/x/Cargo.toml").is_some());
    }

    #[test]
    fn disjoint_patterns() {
        assert_eq!(over("src/api/**", "src/db/**"), None);
        assert_eq!(over("*.md", "docs/*.md"), None);
        assert_eq!(over("*.rs", "*.md"), None);
        assert_eq!(over("src/*", "src/a/b"), None);
        assert_eq!(over("a/**", "a"), None);
        assert_eq!(over("src/[a-c]/x", "src/[d-f]/x"), None);
        assert_eq!(over("src/[!a]/x", "src/a/x"), None);
        assert_eq!(over("{a,b}/x", "c/x"), None);
        assert_eq!(over("a/*/b", "a/b"), None);
        assert_eq!(over("?", "ab"), None);
        assert_eq!(over("x/**/y", "x/y/z"), None);
    }

    #[test]
    fn globset_quirks_are_mirrored() {
        // Negated classes match `/` in globset; so does our automaton.
        let m = compile("a[!x]b").unwrap().compile_matcher();
        assert!(m.is_match("a/b"));
        assert!(nfa_matches(&shape("a[!x]b"), "a/b"));
        assert!(over("a[!x]b", "a/b").is_some());
        // `**` inside a segment is two stars.
        assert!(nfa_matches(&shape("a**"), "abc"));
        assert!(!nfa_matches(&shape("a**"), "a/c"));
    }

    #[test]
    fn automaton_agrees_with_globset() {
        let globs = [
            "src/**",
            "**/x",
            "a/**/b",
            "*.rs",
            "src/*",
            "**",
            "{a,b}/**",
            "a{,.txt}",
            "x/[a-c]?",
            "**/{a,b/**}",
            "a/{b,c/**/d}/e",
            "\\*",
            "[]]x",
            "[!]]",
            "a-[--/]",
        ];
        let paths = [
            "src/a",
            "src/a/b",
            "x",
            "a/x",
            "a/b",
            "a/c/b",
            "a/c/d/b",
            "m.rs",
            "src/m.rs",
            "a",
            "b/q",
            "a.txt",
            "x/b1",
            "*",
            "]x",
            "a",
            "c",
            "b/z",
            "a/b/e",
            "a/c/d/e",
            "a/c/q/d/e",
            "a--",
            "a-/",
        ];
        for glob in globs {
            let m = compile(glob).unwrap().compile_matcher();
            let s = shape(glob);
            for path in paths {
                assert_eq!(nfa_matches(&s, path), m.is_match(path), "{glob} on {path}");
            }
        }
    }

    /// Random globs and paths from a small alphabet: the automaton matches exactly what globset
    /// matches, and `overlap` finds a common path whenever one of the sampled paths is common.
    #[test]
    fn random_globs_agree_with_globset() {
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as usize
        };
        let pieces = [
            "a", "b", "/", "*", "**", "?", "[ab]", "[!a]", "{a,b/c}", "/**/", "**/", "/**",
        ];
        let mut globs = Vec::new();
        while globs.len() < 150 {
            let len = 1 + next(5);
            let glob: String = (0..len).map(|_| pieces[next(pieces.len())]).collect();
            if compile(&glob).is_ok() && normalize(&glob, None).is_ok() {
                globs.push(glob);
            }
        }
        let mut paths = Vec::new();
        for _ in 0..400 {
            let segments = 1 + next(3);
            let path: Vec<String> = (0..segments)
                .map(|_| (0..1 + next(3)).map(|_| ["a", "b", "c"][next(3)]).collect())
                .collect();
            paths.push(path.join("/"));
        }
        let matchers: Vec<_> = globs
            .iter()
            .map(|g| compile(g).unwrap().compile_matcher())
            .collect();
        let shapes: Vec<_> = globs.iter().map(|g| shape(g)).collect();
        for (i, glob) in globs.iter().enumerate() {
            for path in &paths {
                assert_eq!(
                    nfa_matches(&shapes[i], path),
                    matchers[i].is_match(path),
                    "{glob} on {path}"
                );
            }
        }
        for i in 0..globs.len() {
            for j in 0..globs.len() {
                let common = paths
                    .iter()
                    .find(|p| matchers[i].is_match(p) && matchers[j].is_match(p));
                let found = overlap(&shapes[i], &shapes[j]);
                if let Some(path) = &common {
                    assert!(
                        found.is_some(),
                        "{} and {} share {path}",
                        globs[i],
                        globs[j]
                    );
                }
                if let Some(example) = &found {
                    assert!(
                        example.split('/').all(|s| !s.is_empty()),
                        "example {example} is not a file path"
                    );
                    assert!(
                        matchers[i].is_match(example) && matchers[j].is_match(example),
                        "bad example {example} for {} and {}",
                        globs[i],
                        globs[j]
                    );
                }
            }
        }
    }

    #[test]
    fn normalising() {
        assert_eq!(normalize("/src/**", None).unwrap(), "src/**");
        assert_eq!(normalize("src/**", None).unwrap(), "src/**");
        for bad in [
            "", " src", "!a/**", "../x", "a/../b", "src/", "a//b", "./src", "~/x", "C:/x", "//x",
            "/", "[z-a]", "{a", "a}", "x\\",
        ] {
            assert!(normalize(bad, None).is_err(), "{bad:?} should be rejected");
        }
        let err = normalize("/repo/root/src/**", Some("/repo/root")).unwrap_err();
        assert_eq!(
            err.help.as_deref(),
            Some("patterns are relative to the repository root: write `src/**`")
        );
        assert!(looks_absolute("/home/me/x"));
        assert!(!looks_absolute("/src/x"));
    }

    #[test]
    fn wildcards_are_counted() {
        assert_eq!(wildcard_count("src/api/x.rs"), 0);
        assert_eq!(wildcard_count("src/**/*.rs"), 2);
        assert_eq!(wildcard_count("{a,b,c}/x?"), 4);
        assert_eq!(wildcard_count("[*?{]x"), 1);
        assert_eq!(wildcard_count("a\\*b"), 0);
        assert!(normalize(&"*a".repeat(MAX_WILDCARDS), None).is_ok());
        assert!(normalize(&"*a".repeat(MAX_WILDCARDS + 1), None).is_err());
        assert!(normalize(&"a".repeat(MAX_PATTERN_BYTES + 1), None).is_err());
    }

    /// The largest patterns accepted still compare quickly (run it in release to see the time:
    /// it is not asserted).
    #[test]
    fn the_largest_patterns_compare() {
        let stars = |end: &str| format!("{}{end}", "*a".repeat(MAX_WILDCARDS));
        assert_eq!(over(&stars("b"), &stars("c")), None);
        let alternatives =
            |c: &str| format!("{}/x", format!("{{{c},b}}").repeat(MAX_WILDCARDS / 2));
        assert!(over(&alternatives("a"), &alternatives("c")).is_some());
    }

    #[test]
    fn many_stars_stay_polynomial() {
        let a = "*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b";
        let b = "*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*c";
        assert_eq!(over(a, b), None);
        let a =
            "{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}/x";
        let b =
            "{c,b}{c,b}{c,b}{c,b}{c,b}{c,b}{c,b}{c,b}{c,b}{c,b}{c,b}{c,b}{c,b}{c,b}{c,b}{c,b}/x";
        assert_eq!(over(a, b).as_deref(), Some("bbbbbbbbbbbbbbbb/x"));
    }
}
