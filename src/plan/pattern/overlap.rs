//! Whether two globs could ever match the same path ([`overlap`]): each glob, tokenized the way
//! globset parses it, becomes a small automaton over characters, and the product of the two with
//! an automaton of well-formed relative paths is searched once per state (see the parent module).

use std::collections::VecDeque;

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

    /// The literal text every path the glob matches starts with. Two globs can only overlap if
    /// one's prefix starts with the other's, so callers can index globs by it and compare only
    /// those pairs.
    pub fn prefix(&self) -> &str {
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
pub(super) fn nfa_matches(shape: &Shape, path: &str) -> bool {
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
