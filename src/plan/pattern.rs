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

use std::collections::VecDeque;

use globset::{Glob, GlobBuilder};

/// Compiles one normalised pattern the way every part of streams does.
pub fn compile(glob: &str) -> Result<Glob, globset::Error> {
    GlobBuilder::new(glob)
        .literal_separator(true)
        .backslash_escape(true)
        .build()
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

// ---------------------------------------------------------------------------------------------
// Overlap analysis.

/// A glob prepared for [`overlap`]: its tokens, its automaton and the literal text every match
/// starts and ends with (a cheap test that rules out most pairs before any search).
#[derive(Clone, Debug)]
pub struct Shape {
    tokens: Vec<Token>,
    nfa: Nfa,
    prefix: String,
    suffix: String,
}

impl Shape {
    /// Prepares a normalised glob. `None` if globset would reject it.
    pub fn parse(glob: &str) -> Option<Shape> {
        let tokens = tokenize(glob)?;
        let nfa = Nfa::build(&tokens, false);
        let prefix = tokens
            .iter()
            .map_while(|t| match t {
                Token::Lit(c) => Some(*c),
                _ => None,
            })
            .collect();
        let mut suffix: Vec<char> = tokens
            .iter()
            .rev()
            .map_while(|t| match t {
                Token::Lit(c) => Some(*c),
                _ => None,
            })
            .collect();
        suffix.reverse();
        Some(Shape {
            tokens,
            nfa,
            prefix,
            suffix: suffix.into_iter().collect(),
        })
    }

    /// The literal text every path this glob matches starts with.
    pub fn literal_prefix(&self) -> &str {
        &self.prefix
    }
}

/// A path that both globs match, if any path can match both. The example prefers a readable
/// path (`src/api/x.rs` rather than `src/api/.rs`) when one exists.
pub fn overlap(a: &Shape, b: &Shape) -> Option<String> {
    let prefixes_agree = a.prefix.starts_with(&b.prefix) || b.prefix.starts_with(&a.prefix);
    let suffixes_agree = a.suffix.ends_with(&b.suffix) || b.suffix.ends_with(&a.suffix);
    if !prefixes_agree || !suffixes_agree {
        return None;
    }
    let witness = intersect(&a.nfa, &b.nfa)?;
    // Overlaps are rare (each one is an error), so the second search for a nicer example,
    // where every `*` matches at least one character, costs nothing in the common case.
    let nice = intersect(&Nfa::build(&a.tokens, true), &Nfa::build(&b.tokens, true));
    Some(nice.unwrap_or(witness))
}

/// Whether `path` is matched by the glob, by the same automaton [`overlap`] uses (for tests).
#[cfg(test)]
fn nfa_matches(shape: &Shape, path: &str) -> bool {
    let nfa = &shape.nfa;
    let mut current: Vec<u32> = nfa.closure[nfa.start as usize].clone();
    for c in path.chars() {
        let mut next = Vec::new();
        for &s in &current {
            for &(set, to) in &nfa.edges[s as usize] {
                if nfa.contains(set, c) {
                    for &t in &nfa.closure[to as usize] {
                        if !next.contains(&t) {
                            next.push(t);
                        }
                    }
                }
            }
        }
        current = next;
    }
    current.iter().any(|&s| nfa.accepting[s as usize])
}

/// globset's tokens, with the options [`compile`] sets (`/` is only matched literally).
#[derive(Clone, Debug, PartialEq, Eq)]
enum Token {
    Lit(char),
    /// `?`: one character, not `/`.
    Any,
    /// `*`: any run of characters without `/`.
    Star,
    /// `**/` at the start: `(?:/?|.*/)`.
    RecPrefix,
    /// `/**` at the end: `/.*`.
    RecSuffix,
    /// `/**/` in the middle: `(?:/|/.*/)`.
    RecZero,
    /// `[...]`. Note that globset lets a class match `/`, and so does this.
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
    Alt(Vec<Vec<Token>>),
}

/// A port of globset 0.4's parser (`Parser::parse` in glob.rs), returning `None` where globset
/// returns an error.
fn tokenize(glob: &str) -> Option<Vec<Token>> {
    struct P<'a> {
        chars: std::iter::Peekable<std::str::Chars<'a>>,
        prev: Option<char>,
        cur: Option<char>,
        stack: Vec<usize>,
        branches: Vec<Vec<Token>>,
    }
    impl P<'_> {
        fn bump(&mut self) -> Option<char> {
            self.prev = self.cur;
            self.cur = self.chars.next();
            self.cur
        }
        fn peek(&mut self) -> Option<char> {
            self.chars.peek().copied()
        }
        fn push(&mut self, t: Token) -> Option<()> {
            self.branches.last_mut()?.push(t);
            Some(())
        }
        fn star(&mut self) -> Option<()> {
            let prev = self.prev;
            if self.peek() != Some('*') {
                return self.push(Token::Star);
            }
            self.bump();
            if self.branches.last()?.is_empty() {
                if self.peek().is_some_and(|c| c != '/') {
                    self.push(Token::Star)?;
                    self.push(Token::Star)?;
                } else {
                    self.push(Token::RecPrefix)?;
                    self.bump();
                }
                return Some(());
            }
            if prev != Some('/')
                && (self.branches.len() <= 1 || (prev != Some(',') && prev != Some('{')))
            {
                self.push(Token::Star)?;
                return self.push(Token::Star);
            }
            let is_suffix = match self.peek() {
                None => {
                    self.bump();
                    true
                }
                Some(',') | Some('}') if self.branches.len() >= 2 => true,
                Some('/') => {
                    self.bump();
                    false
                }
                _ => {
                    self.push(Token::Star)?;
                    return self.push(Token::Star);
                }
            };
            let last = self.branches.last_mut()?.pop()?;
            match last {
                Token::RecPrefix => self.push(Token::RecPrefix),
                Token::RecSuffix => self.push(Token::RecSuffix),
                _ if is_suffix => self.push(Token::RecSuffix),
                _ => self.push(Token::RecZero),
            }
        }
        fn class(&mut self) -> Option<()> {
            let mut ranges: Vec<(char, char)> = Vec::new();
            let negated = matches!(self.peek(), Some('!') | Some('^'));
            if negated {
                self.bump();
            }
            let mut first = true;
            let mut in_range = false;
            loop {
                let c = self.bump()?;
                match c {
                    ']' if !first => break,
                    '-' if !first => {
                        if in_range {
                            let r = ranges.last_mut()?;
                            r.1 = '-';
                            if r.1 < r.0 {
                                return None;
                            }
                            in_range = false;
                        } else {
                            in_range = true;
                        }
                    }
                    c => {
                        if in_range {
                            let r = ranges.last_mut()?;
                            r.1 = c;
                            if r.1 < r.0 {
                                return None;
                            }
                        } else {
                            ranges.push((c, c));
                        }
                        in_range = false;
                    }
                }
                first = false;
            }
            if in_range {
                ranges.push(('-', '-'));
            }
            self.push(Token::Class { negated, ranges })
        }
    }

    let mut p = P {
        chars: glob.chars().peekable(),
        prev: None,
        cur: None,
        stack: Vec::new(),
        branches: vec![Vec::new()],
    };
    while let Some(c) = p.bump() {
        match c {
            '?' => p.push(Token::Any)?,
            '*' => p.star()?,
            '[' => p.class()?,
            '{' => {
                p.stack.push(p.branches.len());
                p.branches.push(Vec::new());
            }
            '}' => {
                let start = p.stack.pop()?;
                let alts: Vec<Vec<Token>> = p.branches.drain(start..).collect();
                p.push(Token::Alt(alts))?;
            }
            ',' if !p.stack.is_empty() => p.branches.push(Vec::new()),
            '\\' => {
                let c = p.bump()?;
                p.push(Token::Lit(c))?;
            }
            c => p.push(Token::Lit(c))?,
        }
    }
    if p.branches.len() != 1 {
        return None;
    }
    p.branches.pop()
}

/// The characters one automaton edge accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Set {
    Lit(char),
    NotSlash,
    All,
    /// An index into `Nfa::classes`.
    Class(u32),
}

/// A nondeterministic automaton over characters, with precomputed epsilon closures.
#[derive(Clone, Debug)]
struct Nfa {
    edges: Vec<Vec<(Set, u32)>>,
    eps: Vec<Vec<u32>>,
    classes: Vec<(bool, Vec<(char, char)>)>,
    start: u32,
    /// For each state, the states reachable by epsilon moves (itself included).
    closure: Vec<Vec<u32>>,
    /// States whose closure contains the final state.
    accepting: Vec<bool>,
}

impl Nfa {
    /// Thompson's construction. With `star_plus`, `*` must match at least one character (used
    /// only to find a readable example).
    fn build(tokens: &[Token], star_plus: bool) -> Nfa {
        let mut nfa = Nfa {
            edges: Vec::new(),
            eps: Vec::new(),
            classes: Vec::new(),
            start: 0,
            closure: Vec::new(),
            accepting: Vec::new(),
        };
        let start = nfa.state();
        // globset: a glob that is exactly `**` matches everything.
        let end = if tokens == [Token::RecPrefix] {
            let s = nfa.state();
            nfa.eps[start as usize].push(s);
            nfa.edges[s as usize].push((Set::All, s));
            s
        } else {
            nfa.sequence(tokens, start, star_plus)
        };
        nfa.start = start;
        nfa.close(end);
        nfa
    }

    fn state(&mut self) -> u32 {
        self.edges.push(Vec::new());
        self.eps.push(Vec::new());
        (self.edges.len() - 1) as u32
    }

    fn edge(&mut self, from: u32, set: Set, to: u32) {
        self.edges[from as usize].push((set, to));
    }

    fn sequence(&mut self, tokens: &[Token], mut at: u32, star_plus: bool) -> u32 {
        for token in tokens {
            at = self.token(token, at, star_plus);
        }
        at
    }

    fn token(&mut self, token: &Token, from: u32, star_plus: bool) -> u32 {
        match token {
            Token::Lit(c) => {
                let s = self.state();
                self.edge(from, Set::Lit(*c), s);
                s
            }
            Token::Any => {
                let s = self.state();
                self.edge(from, Set::NotSlash, s);
                s
            }
            Token::Star => {
                let s = self.state();
                if star_plus {
                    self.edge(from, Set::NotSlash, s);
                } else {
                    self.eps[from as usize].push(s);
                }
                self.edge(s, Set::NotSlash, s);
                s
            }
            Token::Class { negated, ranges } => {
                self.classes.push((*negated, ranges.clone()));
                let class = Set::Class((self.classes.len() - 1) as u32);
                let s = self.state();
                self.edge(from, class, s);
                s
            }
            Token::RecPrefix => {
                // (?:/?|.*/): a loop over anything, left by a `/`; or nothing at all.
                let lp = self.state();
                let out = self.state();
                self.eps[from as usize].push(lp);
                self.eps[from as usize].push(out);
                self.edge(lp, Set::All, lp);
                self.edge(lp, Set::Lit('/'), out);
                out
            }
            Token::RecSuffix => {
                // /.*
                let s = self.state();
                self.edge(from, Set::Lit('/'), s);
                self.edge(s, Set::All, s);
                s
            }
            Token::RecZero => {
                // (?:/|/.*/)
                let after = self.state();
                let middle = self.state();
                let out = self.state();
                self.edge(from, Set::Lit('/'), after);
                self.eps[after as usize].push(out);
                self.eps[after as usize].push(middle);
                self.edge(middle, Set::All, middle);
                self.edge(middle, Set::Lit('/'), out);
                out
            }
            Token::Alt(branches) => {
                // globset drops empty branches (empty_alternates is off); if all are empty the
                // alternation matches the empty string.
                let out = self.state();
                let mut any = false;
                for branch in branches.iter().filter(|b| !b.is_empty()) {
                    any = true;
                    let entry = self.state();
                    self.eps[from as usize].push(entry);
                    let exit = self.sequence(branch, entry, star_plus);
                    self.eps[exit as usize].push(out);
                }
                if !any {
                    self.eps[from as usize].push(out);
                }
                out
            }
        }
    }

    fn close(&mut self, end: u32) {
        let n = self.edges.len();
        self.closure = (0..n)
            .map(|s| {
                let mut seen = vec![s as u32];
                let mut i = 0;
                while i < seen.len() {
                    for &t in &self.eps[seen[i] as usize] {
                        if !seen.contains(&t) {
                            seen.push(t);
                        }
                    }
                    i += 1;
                }
                seen
            })
            .collect();
        self.accepting = self.closure.iter().map(|c| c.contains(&end)).collect();
    }

    fn contains(&self, set: Set, c: char) -> bool {
        match set {
            Set::Lit(l) => l == c,
            Set::NotSlash => c != '/',
            Set::All => true,
            Set::Class(i) => {
                let (negated, ranges) = &self.classes[i as usize];
                ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi) != *negated
            }
        }
    }

    /// Characters at which membership of `set` can change: the intersection of a few sets is a
    /// union of intervals whose ends are among these, so testing them decides emptiness.
    fn candidates(&self, set: Set, out: &mut Vec<char>) {
        match set {
            Set::Lit(c) => out.push(c),
            Set::NotSlash | Set::All => out.extend(['.', '0']),
            Set::Class(i) => {
                for &(lo, hi) in &self.classes[i as usize].1 {
                    out.extend([lo, hi]);
                    out.extend((lo as u32).checked_sub(1).and_then(char::from_u32));
                    out.extend(char::from_u32(hi as u32 + 1));
                }
            }
        }
    }
}

/// The well-formed-path automaton: state 0 at the start of a segment, 1 inside one (accepting).
fn path_edges(v: u8) -> &'static [(Set, u8)] {
    const START: &[(Set, u8)] = &[(Set::NotSlash, 1)];
    const INSIDE: &[(Set, u8)] = &[(Set::NotSlash, 1), (Set::Lit('/'), 0)];
    if v == 0 { START } else { INSIDE }
}

/// Breadth-first search of the product automaton; returns the shortest common path.
fn intersect(a: &Nfa, b: &Nfa) -> Option<String> {
    let nb = b.edges.len();
    let index = |ia: u32, ib: u32, v: u8| (ia as usize * nb + ib as usize) * 2 + v as usize;
    let total = a.edges.len() * nb * 2;
    let mut parent: Vec<Option<(usize, char)>> = vec![None; total];
    let mut seen = vec![false; total];
    let mut queue = VecDeque::new();
    let start = index(a.start, b.start, 0);
    seen[start] = true;
    queue.push_back((a.start, b.start, 0u8));
    let mut candidates = Vec::new();
    while let Some((ia, ib, v)) = queue.pop_front() {
        let here = index(ia, ib, v);
        if v == 1 && a.accepting[ia as usize] && b.accepting[ib as usize] {
            let mut path = Vec::new();
            let mut at = here;
            while let Some((prev, c)) = parent[at] {
                path.push(c);
                at = prev;
            }
            path.reverse();
            return Some(path.into_iter().collect());
        }
        for &xa in &a.closure[ia as usize] {
            for &(sa, ta) in &a.edges[xa as usize] {
                for &xb in &b.closure[ib as usize] {
                    for &(sb, tb) in &b.edges[xb as usize] {
                        for &(sv, tv) in path_edges(v) {
                            let next = index(ta, tb, tv);
                            if seen[next] {
                                continue;
                            }
                            candidates.clear();
                            // Readable characters first, then the boundaries.
                            candidates.push('x');
                            a.candidates(sa, &mut candidates);
                            b.candidates(sb, &mut candidates);
                            candidates.push('/');
                            let found = candidates.iter().copied().find(|&c| {
                                a.contains(sa, c) && b.contains(sb, c) && a.contains(sv, c)
                            });
                            if let Some(c) = found {
                                seen[next] = true;
                                parent[next] = Some((here, c));
                                queue.push_back((ta, tb, tv));
                            }
                        }
                    }
                }
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

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
