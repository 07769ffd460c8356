//! Ownership rules against the repository: every file tracked at `base` has at most one owner,
//! no two patterns of different owners could ever match the same path, `shared` and `owns` stay
//! apart, and patterns that match nothing are pointed out.
//!
//! Each tracked file is classified once. The patterns are compiled into GlobSets bucketed by the
//! literal directories they start with (`tests/api/*.rs` goes to `tests/api`, `**/*.md` to the
//! root), and a path is matched only against the buckets along its own directories. One GlobSet
//! of every pattern would be simpler, but globset then tests every `dir/*.rs` regex against every
//! `.rs` file: with 200 streams and 100,000 files that is 20 million regex runs, against a few
//! per file here. Pairs of patterns are then compared with [`pattern::overlap`], but only pairs
//! whose literal prefixes agree (one starts with the other), found through an index of the
//! prefixes: checking every pair made 20,000 patterns take minutes.

use std::collections::{HashMap, HashSet};

use globset::{Candidate, GlobSet, GlobSetBuilder};
use serde::Serialize;

use super::diagnostic::{Diagnostic, Diagnostics, Span, count};
use super::pattern::{self, Shape};

/// Who a pattern gives paths to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PatternOwner {
    Stream(usize),
    Shared,
}

/// A pattern that passed [`pattern::normalize`], with where it was written.
#[derive(Clone, Debug)]
pub struct OwnedPattern {
    pub owner: PatternOwner,
    pub text: String,
    pub glob: String,
    pub span: Span,
}

/// How the files tracked at `base` divide between the streams.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct OwnershipSummary {
    pub tracked_files: usize,
    /// Per stream (plan order): how many tracked files it owns.
    pub owned_files: Vec<usize>,
    /// Files only `shared` patterns match: any stream may edit them.
    pub shared_files: usize,
    /// Files no pattern matches: read-only for every agent.
    pub unowned_files: usize,
    /// The first few of those, in path order.
    pub unowned_examples: Vec<String>,
}

const EXAMPLES: usize = 5;
const CONFLICT_EXAMPLES: usize = 3;

#[derive(Default)]
struct Conflict {
    files: usize,
    examples: Vec<String>,
}

/// Checks `patterns` against `tracked` and against each other, adding what is wrong to `diags`.
pub fn check(
    patterns: &[OwnedPattern],
    streams: &[String],
    tracked: &[String],
    diags: &mut Diagnostics,
) -> OwnershipSummary {
    let classifier = Classifier::new(patterns);

    let mut summary = OwnershipSummary {
        tracked_files: tracked.len(),
        owned_files: vec![0; streams.len()],
        ..OwnershipSummary::default()
    };
    let mut hits = vec![0usize; patterns.len()];
    let mut conflicts: HashMap<(usize, usize), Conflict> = HashMap::new();
    let mut matched = Vec::new();
    let mut scratch = Vec::new();
    let mut owners: Vec<usize> = Vec::new();
    for path in tracked {
        classifier.matches_into(path, &mut matched, &mut scratch);
        if matched.is_empty() {
            summary.unowned_files += 1;
            if summary.unowned_examples.len() < EXAMPLES {
                summary.unowned_examples.push(path.clone());
            }
            continue;
        }
        owners.clear();
        let mut shared = false;
        for &p in &matched {
            hits[p] += 1;
            match patterns[p].owner {
                PatternOwner::Stream(s) if !owners.contains(&s) => owners.push(s),
                PatternOwner::Stream(_) => {}
                PatternOwner::Shared => shared = true,
            }
        }
        if owners.is_empty() {
            summary.shared_files += 1;
            continue;
        }
        for &s in &owners {
            summary.owned_files[s] += 1;
        }
        if owners.len() > 1 || shared {
            for (i, &p) in matched.iter().enumerate() {
                for &q in &matched[i + 1..] {
                    if patterns[p].owner != patterns[q].owner {
                        let conflict = conflicts.entry((p, q)).or_default();
                        conflict.files += 1;
                        if conflict.examples.len() < CONFLICT_EXAMPLES {
                            conflict.examples.push(path.clone());
                        }
                    }
                }
            }
        }
    }

    let mut pairs: Vec<_> = conflicts.into_iter().collect();
    pairs.sort_by_key(|((p, q), _)| (*p, *q));
    let reported: HashSet<(usize, usize)> = pairs.iter().map(|(pair, _)| *pair).collect();
    for ((p, q), conflict) in &pairs {
        diags.push(tracked_conflict(
            &patterns[*p],
            &patterns[*q],
            conflict,
            streams,
        ));
    }

    let mut in_error = vec![false; patterns.len()];
    for (p, q) in &reported {
        in_error[*p] = true;
        in_error[*q] = true;
    }
    // Future paths: every pair of patterns with different owners that no tracked file already
    // showed to overlap (those were reported above, with the files).
    // Only pairs whose literal prefixes agree can meet (see `candidate_pairs`); the meetings are
    // reported in pattern order, as a plain double loop would find them.
    let shapes: Vec<Option<Shape>> = patterns.iter().map(|p| Shape::parse(&p.glob)).collect();
    let mut meetings: Vec<((usize, usize), Diagnostic)> = Vec::new();
    candidate_pairs(&shapes, |p, q| {
        let (a, b) = (&patterns[p], &patterns[q]);
        if a.owner == b.owner || reported.contains(&(p, q)) {
            return;
        }
        let (Some(sa), Some(sb)) = (&shapes[p], &shapes[q]) else {
            return;
        };
        let diagnostic = if let Some(example) = pattern::overlap(sa, sb) {
            future_conflict(a, b, &example, streams)
        } else if let Some((file, dir)) = file_under_file(a, b).or_else(|| file_under_file(b, a)) {
            file_dir_conflict(file, dir, streams)
        } else {
            return;
        };
        meetings.push(((p, q), diagnostic));
    });
    meetings.sort_by_key(|(pair, _)| *pair);
    for ((p, q), diagnostic) in meetings {
        diags.push(diagnostic);
        in_error[p] = true;
        in_error[q] = true;
    }
    // A pattern that matches nothing yet is worth a warning, unless an error about it was
    // already given.
    for ((p, hits), in_error) in patterns.iter().zip(&hits).zip(&in_error) {
        if *hits > 0 || *in_error {
            continue;
        }
        if pattern::looks_absolute(&p.text) {
            diags.push(
                Diagnostic::error(format!(
                    "pattern `{}` looks like an absolute path outside the repository",
                    p.text
                ))
                .at(p.span.clone(), "matches no file in the repository")
                .help("patterns are relative to the repository root; a leading `/` only anchors them there"),
            );
            continue;
        }
        let whose = match p.owner {
            PatternOwner::Stream(s) => {
                format!("stream `{}` may still create files there", streams[s])
            }
            PatternOwner::Shared => "any stream may still create files there".to_string(),
        };
        diags.push(
            Diagnostic::warning(format!(
                "pattern `{}` matches no file tracked at `base`",
                p.text
            ))
            .at(p.span.clone(), "matches nothing yet")
            .note(whose),
        );
    }

    summary
}

/// Calls `pair(p, q)` (`p < q`) for every pair of parsed shapes whose literal prefixes agree (one
/// starts with the other), each pair once: the only pairs [`pattern::overlap`] can find
/// meeting, and the only ones a literal file and a directory below it can form. Indexing by
/// prefix first keeps plans of many patterns linear in practice: `mod001/**` is compared with
/// `mod001/src/*.rs` and `**/*.md`, never with the thousands of other streams' `modNNN/**`.
/// (Patterns with no literal prefix, like `**/*.md`, are still compared with every other.)
fn candidate_pairs(shapes: &[Option<Shape>], mut pair: impl FnMut(usize, usize)) {
    let mut by_prefix: HashMap<&str, Vec<usize>> = HashMap::new();
    for (index, shape) in shapes.iter().enumerate() {
        if let Some(shape) = shape {
            by_prefix.entry(shape.prefix()).or_default().push(index);
        }
    }
    let mut partners = Vec::new();
    for (p, shape) in shapes.iter().enumerate() {
        let Some(shape) = shape else { continue };
        let prefix = shape.prefix();
        partners.clear();
        // Every shorter prefix of `p`'s (each such pair is found from its longer side only),
        // then `p`'s own (found from the later pattern only).
        let ends = prefix.char_indices().map(|(i, _)| i);
        for end in ends {
            if let Some(shorter) = by_prefix.get(&prefix[..end]) {
                partners.extend(shorter.iter().copied());
            }
        }
        if let Some(same) = by_prefix.get(prefix) {
            partners.extend(same.iter().copied().take_while(|&q| q < p));
        }
        for &q in &partners {
            pair(p.min(q), p.max(q));
        }
    }
}

/// Patterns bucketed by their literal leading directories, one GlobSet per bucket.
struct Classifier {
    buckets: HashMap<String, (GlobSet, Vec<usize>)>,
}

impl Classifier {
    fn new(patterns: &[OwnedPattern]) -> Self {
        let mut grouped: HashMap<String, (GlobSetBuilder, Vec<usize>)> = HashMap::new();
        for (index, p) in patterns.iter().enumerate() {
            let (builder, indices) = grouped
                .entry(literal_dirs(&p.glob).to_string())
                .or_insert_with(|| (GlobSetBuilder::new(), Vec::new()));
            // Every pattern here was compiled once already by `normalize`.
            builder.add(pattern::compile(&p.glob).expect("normalised patterns compile"));
            indices.push(index);
        }
        let buckets = grouped
            .into_iter()
            .map(|(dirs, (builder, indices))| {
                let set = builder.build().expect("normalised patterns compile");
                (dirs, (set, indices))
            })
            .collect();
        Classifier { buckets }
    }

    /// The indices (ascending) of the patterns that match `path`.
    fn matches_into(&self, path: &str, out: &mut Vec<usize>, scratch: &mut Vec<usize>) {
        out.clear();
        let candidate = Candidate::new(path);
        let ends = std::iter::once(0).chain(path.match_indices('/').map(|(i, _)| i));
        for end in ends {
            if let Some((set, indices)) = self.buckets.get(&path[..end]) {
                set.matches_candidate_into(&candidate, scratch);
                out.extend(scratch.iter().map(|&i| indices[i]));
            }
        }
        out.sort_unstable();
    }
}

/// The directories a glob starts with that are plain text (`tests/api` for `tests/api/*.rs`,
/// empty for `**/*.md`): every path it matches is inside them.
fn literal_dirs(glob: &str) -> &str {
    let mut end = 0;
    let mut segments = glob.split('/').peekable();
    while let Some(segment) = segments.next() {
        // The last segment names files, not a directory.
        if segments.peek().is_none() || segment.contains(['*', '?', '[', ']', '{', '}', '\\']) {
            break;
        }
        end += segment.len() + usize::from(end > 0);
    }
    &glob[..end]
}

/// `(file, dir)` when `file` is a literal path and every path `dir` matches lies below it: `x`
/// and `x/**`. No path matches both, so [`pattern::overlap`] finds nothing, but git cannot hold
/// a file `x` and a file `x/y` at once: the run would halt on a file/directory conflict shown
/// as `x~<oid>` (issue 11). Only a literal `file` counts: `docs/*` beside `docs/api/**` is a
/// normal layout, a conflict only if someone creates a file named `docs/api`.
fn file_under_file<'a>(
    file: &'a OwnedPattern,
    dir: &'a OwnedPattern,
) -> Option<(&'a OwnedPattern, &'a OwnedPattern)> {
    literal_file_under(&file.glob, &dir.glob).then_some((file, dir))
}

/// Whether `file` is a literal path that every path `dir` matches lies below (see
/// [`file_under_file`]).
fn literal_file_under(file: &str, dir: &str) -> bool {
    let literal = !file.contains(['*', '?', '[', ']', '{', '}', '\\']);
    let below = literal_dirs(dir);
    let under = below == file
        || below
            .strip_prefix(file)
            .is_some_and(|rest| rest.starts_with('/'));
    literal && under
}

/// Whether two normalised globs of different owners (two plans side by side, say) claim
/// something in common, compared as [`check`] compares the patterns of different streams: a
/// path both could match (returned as an example), or a literal file one names that the other
/// puts files below (returned as that file: git cannot hold both).
pub fn claims_overlap(a: &str, b: &str) -> Option<String> {
    if let (Some(sa), Some(sb)) = (Shape::parse(a), Shape::parse(b))
        && let Some(example) = pattern::overlap(&sa, &sb)
    {
        return Some(example);
    }
    if literal_file_under(a, b) {
        return Some(a.to_string());
    }
    literal_file_under(b, a).then(|| b.to_string())
}

fn file_dir_conflict(file: &OwnedPattern, dir: &OwnedPattern, streams: &[String]) -> Diagnostic {
    Meeting::new(file, dir).diagnostic(
        format!(
            "`{}` ({}) is a file, but `{}` ({}) puts files below it",
            file.text,
            owner_name(file, streams),
            dir.text,
            owner_name(dir, streams)
        ),
        streams,
        format!(
            "git cannot hold a file `{}` and files below a directory of that name: integrating both streams would conflict",
            file.glob
        ),
        format!(
            "give `{}` and everything below it to one stream, e.g. `{}/**`",
            file.glob, file.glob
        ),
    )
}

fn owner_name(p: &OwnedPattern, streams: &[String]) -> String {
    match p.owner {
        PatternOwner::Stream(s) => format!("stream `{}`", streams[s]),
        PatternOwner::Shared => "`shared`".to_string(),
    }
}

fn claims(p: &OwnedPattern, streams: &[String]) -> String {
    match p.owner {
        PatternOwner::Stream(s) => format!("owned by `{}`", streams[s]),
        PatternOwner::Shared => "shared".to_string(),
    }
}

/// Two patterns that meet, as a diagnostic tells it: in the order they were written, and, when
/// one of them is `shared`, which one is the stream's.
struct Meeting<'a> {
    first: &'a OwnedPattern,
    second: &'a OwnedPattern,
    /// The stream's pattern and the `shared` one, when one is shared.
    with_shared: Option<(&'a OwnedPattern, &'a OwnedPattern)>,
}

impl<'a> Meeting<'a> {
    fn new(a: &'a OwnedPattern, b: &'a OwnedPattern) -> Meeting<'a> {
        let (first, second) = if a.span.start <= b.span.start {
            (a, b)
        } else {
            (b, a)
        };
        let with_shared = match (a.owner, b.owner) {
            (PatternOwner::Shared, _) => Some((b, a)),
            (_, PatternOwner::Shared) => Some((a, b)),
            _ => None,
        };
        Meeting {
            first,
            second,
            with_shared,
        }
    }

    /// The error, its label on the pattern written later (the one that broke the rule) and the
    /// other one beside it.
    fn diagnostic(
        &self,
        message: String,
        streams: &[String],
        note: String,
        help: impl Into<String>,
    ) -> Diagnostic {
        let (first, second) = (self.first, self.second);
        Diagnostic::error(message)
            .at(
                second.span.clone(),
                format!("{} here", claims(second, streams)),
            )
            .also(
                first.span.clone(),
                format!("{} here", claims(first, streams)),
            )
            .note(note)
            .help(help)
    }
}

fn tracked_conflict(
    a: &OwnedPattern,
    b: &OwnedPattern,
    conflict: &Conflict,
    streams: &[String],
) -> Diagnostic {
    let meeting = Meeting::new(a, b);
    let mut files = conflict
        .examples
        .iter()
        .map(|f| format!("`{}`", crate::text::quote_path(f)))
        .collect::<Vec<_>>()
        .join(", ");
    if conflict.files > conflict.examples.len() {
        files.push_str(&format!(
            " and {} more",
            conflict.files - conflict.examples.len()
        ));
    }
    let (message, help) = match meeting.with_shared {
        Some((owned, shared)) => {
            let files = match conflict.files {
                1 => "a tracked file".to_string(),
                n => format!("{n} tracked files"),
            };
            (
                format!(
                    "{} owns {files} that `shared` also lists (`{}`)",
                    owner_name(owned, streams),
                    shared.text
                ),
                "shared paths belong to no stream: take them out of `owns`, or out of `shared`",
            )
        }
        None => (
            format!(
                "{} and {} both own {}",
                owner_name(meeting.first, streams),
                owner_name(meeting.second, streams),
                count(conflict.files, "tracked file")
            ),
            "a file has exactly one owner: narrow one of the patterns so they no longer meet",
        ),
    };
    meeting.diagnostic(message, streams, format!("both match {files}"), help)
}

fn future_conflict(
    a: &OwnedPattern,
    b: &OwnedPattern,
    example: &str,
    streams: &[String],
) -> Diagnostic {
    let meeting = Meeting::new(a, b);
    let (first, second) = (meeting.first, meeting.second);
    let (message, help) = match meeting.with_shared {
        Some((owned, shared)) => (
            format!(
                "`{}` of {} overlaps shared pattern `{}`",
                owned.text,
                owner_name(owned, streams),
                shared.text
            ),
            "shared paths belong to no stream: make the `owns` pattern exclude them",
        ),
        None => (
            format!(
                "`{}` ({}) and `{}` ({}) could both match the same file",
                first.text,
                owner_name(first, streams),
                second.text,
                owner_name(second, streams)
            ),
            "a file has exactly one owner: make the patterns disjoint, e.g. by naming directories",
        ),
    };
    meeting.diagnostic(
        message,
        streams,
        format!("no tracked file matches both yet, but `{example}` would"),
        help,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_of_two_plans_overlap_as_two_streams_would() {
        assert_eq!(
            claims_overlap("src/**", "src/api/*.rs").as_deref(),
            Some("src/api/x.rs")
        );
        assert_eq!(claims_overlap("docs/*.md", "src/**"), None);
        // A file one names, below which the other puts files: git cannot hold both.
        assert_eq!(claims_overlap("x", "x/**").as_deref(), Some("x"));
        assert_eq!(claims_overlap("x/**", "x").as_deref(), Some("x"));
        assert_eq!(
            claims_overlap("Cargo.lock", "Cargo.lock").as_deref(),
            Some("Cargo.lock")
        );
    }

    #[test]
    fn literal_directories() {
        assert_eq!(literal_dirs("tests/api/*.rs"), "tests/api");
        assert_eq!(literal_dirs("src/**"), "src");
        assert_eq!(literal_dirs("**/*.md"), "");
        assert_eq!(literal_dirs("Cargo.toml"), "");
        assert_eq!(literal_dirs("docs/guide.md"), "docs");
        assert_eq!(literal_dirs("a/{b,c}/d"), "a");
        assert_eq!(literal_dirs("a/b\\*/c"), "a");
    }

    #[test]
    fn classifier_agrees_with_one_globset() {
        let globs = [
            "src/**",
            "src/api/*.rs",
            "**/*.rs",
            "docs/guide.md",
            "*.md",
            "{src,lib}/**",
            "a/[bc]/d",
            "tests/**/x",
            "Cargo.toml",
        ];
        let patterns: Vec<OwnedPattern> = globs
            .iter()
            .enumerate()
            .map(|(i, g)| OwnedPattern {
                owner: PatternOwner::Stream(i),
                text: g.to_string(),
                glob: g.to_string(),
                span: 0..0,
            })
            .collect();
        let classifier = Classifier::new(&patterns);
        let mut builder = GlobSetBuilder::new();
        for g in globs {
            builder.add(pattern::compile(g).unwrap());
        }
        let set = builder.build().unwrap();
        for path in [
            "src/a.rs",
            "src/api/x.rs",
            "src/api/deep/x.rs",
            "docs/guide.md",
            "README.md",
            "lib/x",
            "a/b/d",
            "a/e/d",
            "tests/x",
            "tests/q/r/x",
            "Cargo.toml",
            "x/Cargo.toml",
            "x.rs",
        ] {
            let (mut out, mut scratch) = (Vec::new(), Vec::new());
            classifier.matches_into(path, &mut out, &mut scratch);
            assert_eq!(out, set.matches(path), "{path}");
        }
    }
}
