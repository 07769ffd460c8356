//! The layering check: no module of `src/` reaches a layer above its own.
//!
//! It reads every file of `src/` as the compiler does (with `syn`, not by searching text): every
//! `use` item and every qualified path (`crate::report::quote(..)`, `super::super::git::Oid`,
//! `streams::cli::run` in the binary), in items, function bodies and macro arguments alike,
//! resolves each to the top-level module it names, and fails naming `file:line` for every arrow
//! that [`LAYERS`] and [`NARROWER`] do not allow. Those two tables are the one place the allowed arrows
//! are written (`src/lib.rs` points here).

use std::collections::BTreeSet;
use std::fmt;
use std::path::Path;

use proc_macro2::{Span, TokenStream, TokenTree};
use syn::visit::Visit;

/// The layers of `src/`, top down. A module may use the modules on the rows below its own; a
/// module on its own row (a sibling) or on a row above is out of its reach. A top-level module
/// missing here fails the check, so a new one is placed on purpose.
const LAYERS: &[&[&str]] = &[
    &["main"],
    &["cli"],
    // The local web view: routes over the use cases, like the CLI.
    &["web"],
    &["ops"],
    &["exec"],
    &["coordinator"],
    // Plain data in, text out (report); a plan spread over CI jobs (ci).
    &["report", "ci"],
    // What a run's agents used and cost, and the budgets that limit it: over the run state.
    &["ledger"],
    &["state", "demo", "gh"],
    // A stream's workspace, its kind, and the one reader of an agent's work: over the git door.
    &["workspace"],
    // Error kinds wrap `git::GitError`: beside git, just above it.
    &["error"],
    // The one door to git (and git2).
    &["git"],
    &["ownership"],
    // Pure, the other direction: plan text written for a person, then checked by plan.
    &["authoring"],
    // Pure: TOML text in, a validated plan out.
    &["plan"],
    // What streams knows about an agent: its argv and placeholders, its log.
    &["agent"],
    // Leaves, usable from any layer.
    &[
        "text",
        "ids",
        "work",
        "layout",
        "failpoint",
        "duration",
        "git_env",
        "children",
        "beneath",
    ],
];

/// Where a module reaches less far than its row allows.
enum Reach {
    /// Only these modules.
    Only(&'static [&'static str]),
    /// Any module below, except these.
    Not(&'static [&'static str]),
}

/// The narrower reaches, each with why.
const NARROWER: &[(&str, Reach, &str)] = &[
    (
        "main",
        Reach::Only(&["cli", "error"]),
        "the binary parses, runs the CLI and renders its error",
    ),
    (
        "cli",
        Reach::Only(&["web", "ops", "report", "error"]),
        "clap and rendering choices over the use cases: the work is in ops, the text in report \
         (and `streams ui` in web)",
    ),
    (
        "report",
        Reach::Not(&["git"]),
        "report sees plain data (ids, work figures, run state), never the git door",
    ),
];

/// Arrows that break the tables today, by (from, to), each with why it is still here and who
/// removes it. The check fails when one of them is no longer used, so this list only shrinks.
const KNOWN_EXCEPTIONS: &[(&str, &str, &str)] = &[];

/// One module using another, where it is written.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Arrow {
    /// The file, relative to `src/`.
    pub file: String,
    pub line: usize,
    /// The top-level module the file belongs to (`main` for the binary).
    pub from: String,
    /// The top-level module the path names.
    pub to: String,
    /// The path as written.
    pub path: String,
}

impl fmt::Display for Arrow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "src/{}:{}: {} -> {} (`{}`)",
            self.file, self.line, self.from, self.to, self.path
        )
    }
}

/// The module path of a file of `src/`: `git/sparse.rs` and `git/sparse/mod.rs` are
/// `["git", "sparse"]`, `lib.rs` is the root. `main.rs` is the binary, a crate of its own.
fn module_of(file: &str) -> Vec<String> {
    let mut parts: Vec<String> = file
        .trim_end_matches(".rs")
        .split('/')
        .map(str::to_string)
        .collect();
    if parts
        .last()
        .is_some_and(|last| last == "mod" || last == "lib")
    {
        parts.pop();
    }
    parts
}

/// Every module the sources declare: their files and the `mod` items in them.
fn modules(files: &[(String, syn::File)]) -> BTreeSet<Vec<String>> {
    fn walk(items: &[syn::Item], module: &[String], out: &mut BTreeSet<Vec<String>>) {
        for item in items {
            if let syn::Item::Mod(m) = item {
                let mut child = module.to_vec();
                child.push(m.ident.to_string());
                if let Some((_, items)) = &m.content {
                    walk(items, &child, out);
                }
                out.insert(child);
            }
        }
    }
    let mut out = BTreeSet::new();
    for (file, ast) in files {
        if file == "main.rs" {
            continue;
        }
        let module = module_of(file);
        walk(&ast.items, &module, &mut out);
        out.insert(module);
    }
    out
}

/// Walks one file, collecting the arrows out of it.
struct Walker<'a> {
    file: &'a str,
    /// The binary: `streams::` names the library, `crate::` the binary itself.
    binary: bool,
    /// Where the walk is: the file's module, then any inline `mod` it is inside.
    module: Vec<String>,
    modules: &'a BTreeSet<Vec<String>>,
    arrows: Vec<Arrow>,
}

impl Walker<'_> {
    /// The module a path starting with `first` is inside of, resolved as rustc does (2018
    /// paths): `crate`, `self`, `super` (repeated), a child module of the current one, and in
    /// the binary the library's name. Anything else (another crate, a local item, a name a `use`
    /// brought in, checked at that `use`) names nothing here.
    fn resolve(&self, segments: &[String]) -> Option<Vec<String>> {
        let (first, rest) = segments.split_first()?;
        match first.as_str() {
            "crate" if !self.binary => Some(rest.to_vec()),
            "streams" if self.binary => Some(rest.to_vec()),
            "self" | "super" => {
                let mut base = self.module.clone();
                let mut rest = segments;
                if rest[0] == "self" {
                    rest = &rest[1..];
                }
                while rest.first().is_some_and(|s| s == "super") {
                    base.pop()?;
                    rest = &rest[1..];
                }
                base.extend(rest.iter().cloned());
                Some(base)
            }
            _ if !self.binary => {
                let mut child = self.module.clone();
                child.push(first.clone());
                self.modules.contains(&child).then(|| {
                    child.extend(rest.iter().cloned());
                    child
                })
            }
            _ => None,
        }
    }

    fn arrow(&mut self, segments: &[String], span: Span) {
        let Some(target) = self.resolve(segments) else {
            return;
        };
        let Some(to) = target.first() else {
            return;
        };
        // Only modules have layers (an item of the crate root would name none).
        if !self.modules.contains(&vec![to.clone()]) {
            return;
        }
        let from = if self.binary {
            "main".to_string()
        } else {
            match self.module.first() {
                Some(from) => from.clone(),
                // The crate root only declares the modules.
                None => return,
            }
        };
        if from == *to {
            return;
        }
        self.arrows.push(Arrow {
            file: self.file.to_string(),
            line: span.start().line,
            from,
            to: to.clone(),
            path: segments.join("::"),
        });
    }

    fn use_tree(&mut self, prefix: &mut Vec<String>, tree: &syn::UseTree) {
        match tree {
            syn::UseTree::Path(p) => {
                prefix.push(p.ident.to_string());
                self.use_tree(prefix, &p.tree);
                prefix.pop();
            }
            syn::UseTree::Name(n) => self.use_leaf(prefix, &n.ident),
            syn::UseTree::Rename(r) => self.use_leaf(prefix, &r.ident),
            syn::UseTree::Glob(g) => {
                if !prefix.is_empty() {
                    let span = g.star_token.spans[0];
                    self.arrow(&prefix.clone(), span);
                }
            }
            syn::UseTree::Group(g) => {
                for tree in &g.items {
                    self.use_tree(prefix, tree);
                }
            }
        }
    }

    fn use_leaf(&mut self, prefix: &[String], ident: &syn::Ident) {
        let mut segments = prefix.to_vec();
        // `use crate::git::{self}` names `crate::git`.
        if ident != "self" {
            segments.push(ident.to_string());
        }
        self.arrow(&segments, ident.span());
    }

    /// Paths inside a macro's tokens (`format!("{}", crate::text::short(x))`), which syn leaves
    /// unparsed: every `a::b::c` run of tokens, in nested groups too.
    fn tokens(&mut self, tokens: TokenStream) {
        let tokens: Vec<TokenTree> = tokens.into_iter().collect();
        let mut i = 0;
        while i < tokens.len() {
            match &tokens[i] {
                TokenTree::Group(g) => {
                    self.tokens(g.stream());
                    i += 1;
                }
                TokenTree::Ident(first) => {
                    let preceded_by_colons = i >= 1 && is_colon(&tokens[i - 1]);
                    let mut segments = vec![first.to_string()];
                    let mut j = i + 1;
                    while j + 2 < tokens.len() && is_colon(&tokens[j]) && is_colon(&tokens[j + 1]) {
                        let TokenTree::Ident(next) = &tokens[j + 2] else {
                            break;
                        };
                        segments.push(next.to_string());
                        j += 3;
                    }
                    if segments.len() > 1 && !preceded_by_colons {
                        self.arrow(&segments, first.span());
                    }
                    i = j;
                }
                _ => i += 1,
            }
        }
    }
}

fn is_colon(token: &TokenTree) -> bool {
    matches!(token, TokenTree::Punct(p) if p.as_char() == ':')
}

impl<'ast> Visit<'ast> for Walker<'_> {
    fn visit_item_use(&mut self, item: &'ast syn::ItemUse) {
        if item.leading_colon.is_none() {
            self.use_tree(&mut Vec::new(), &item.tree);
        }
    }

    fn visit_path(&mut self, path: &'ast syn::Path) {
        if path.leading_colon.is_none() {
            let segments: Vec<String> = path.segments.iter().map(|s| s.ident.to_string()).collect();
            if let Some(first) = path.segments.first() {
                self.arrow(&segments, first.ident.span());
            }
        }
        syn::visit::visit_path(self, path);
    }

    fn visit_macro(&mut self, mac: &'ast syn::Macro) {
        self.tokens(mac.tokens.clone());
        syn::visit::visit_macro(self, mac);
    }

    fn visit_item_mod(&mut self, item: &'ast syn::ItemMod) {
        self.module.push(item.ident.to_string());
        syn::visit::visit_item_mod(self, item);
        self.module.pop();
    }
}

/// Every arrow between top-level modules in the sources (paths relative to `src/`, text).
fn arrows(sources: &[(String, String)]) -> Vec<Arrow> {
    let files: Vec<(String, syn::File)> = sources
        .iter()
        .map(|(file, text)| {
            let ast = syn::parse_file(text).unwrap_or_else(|e| panic!("src/{file}: {e}"));
            (file.clone(), ast)
        })
        .collect();
    let modules = modules(&files);
    let mut arrows = Vec::new();
    for (file, ast) in &files {
        let binary = file == "main.rs";
        let mut walker = Walker {
            file,
            binary,
            module: if binary { Vec::new() } else { module_of(file) },
            modules: &modules,
            arrows: Vec::new(),
        };
        walker.visit_file(ast);
        arrows.append(&mut walker.arrows);
    }
    arrows.sort();
    arrows.dedup();
    arrows
}

/// Whether the tables allow `from` to use `to`: `None` when they do, else why not.
fn forbidden(from: &str, to: &str) -> Result<Option<String>, String> {
    let row = |m: &str| {
        LAYERS
            .iter()
            .position(|row| row.contains(&m))
            .ok_or_else(|| format!("module `{m}` is on no row of LAYERS: place it"))
    };
    let up = (row(to)? <= row(from)?).then(|| "goes up".to_string());
    let narrower = |why: &str| Some(format!("out of its reach: {why}"));
    Ok(match NARROWER.iter().find(|(m, _, _)| *m == from) {
        Some((_, Reach::Only(only), why)) if !only.contains(&to) => narrower(why),
        Some((_, Reach::Only(_), _)) => None,
        Some((_, Reach::Not(not), why)) if not.contains(&to) => narrower(why),
        _ => up,
    })
}

/// The arrows the tables do not allow, less the known exceptions, and the problems with the
/// tables themselves (a module on no row, an exception no longer used).
fn upward(arrows: &[Arrow], exceptions: &[(&str, &str, &str)]) -> Vec<String> {
    let mut problems = Vec::new();
    let mut used = BTreeSet::new();
    let mut seen = BTreeSet::new();
    for arrow in arrows {
        // One line naming a module twice (`use crate::git::{Oid, Repo}`) is one arrow.
        if !seen.insert((&arrow.file, arrow.line, &arrow.to)) {
            continue;
        }
        match forbidden(&arrow.from, &arrow.to) {
            Ok(None) => {}
            Ok(Some(why)) => {
                if let Some(e) = exceptions
                    .iter()
                    .find(|(from, to, _)| *from == arrow.from && *to == arrow.to)
                {
                    used.insert((e.0, e.1));
                } else {
                    problems.push(format!("{arrow}: {why}"));
                }
            }
            Err(e) => problems.push(format!("{arrow}: {e}")),
        }
    }
    for (from, to, _) in exceptions {
        if !used.contains(&(*from, *to)) {
            problems.push(format!(
                "the known exception {from} -> {to} is no longer used: remove it from KNOWN_EXCEPTIONS"
            ));
        }
    }
    problems.dedup();
    problems
}

/// Every `.rs` file under `src/` (or under `$LAYERING_SRC`, to measure another checkout),
/// relative path and text.
fn sources() -> Vec<(String, String)> {
    fn walk(dir: &Path, root: &Path, out: &mut Vec<(String, String)>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, root, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let rel = path
                    .strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                out.push((rel, std::fs::read_to_string(&path).unwrap()));
            }
        }
    }
    let root = match std::env::var_os("LAYERING_SRC") {
        Some(dir) => Path::new(&dir).to_path_buf(),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
    };
    let mut out = Vec::new();
    walk(&root, &root, &mut out);
    out.sort();
    out
}

#[test]
fn no_module_reaches_a_layer_above_its_own() {
    let problems = upward(&arrows(&sources()), KNOWN_EXCEPTIONS);
    assert!(
        problems.is_empty(),
        "arrows out of their layer (the allowed ones are in tests/integration/layering.rs):\n{}",
        problems.join("\n")
    );
}

/// `cargo nextest run -E 'test(every_arrow)' --run-ignored only --no-capture`: the whole graph.
#[test]
#[ignore = "a report, not a check"]
fn every_arrow() {
    let arrows = arrows(&sources());
    let mut pairs = std::collections::BTreeMap::<(String, String), Vec<String>>::new();
    for a in &arrows {
        pairs
            .entry((a.from.clone(), a.to.clone()))
            .or_default()
            .push(format!("{}:{}", a.file, a.line));
    }
    for ((from, to), at) in &pairs {
        let ok = forbidden(from, to).is_ok_and(|f| f.is_none());
        println!(
            "{}{from} -> {to} ({}): {}",
            if ok { "  " } else { "UP " },
            at.len(),
            at.join(" ")
        );
    }
    let up = upward(&arrows, &[]);
    println!(
        "{}\nupward arrows (file:line), no exceptions: {}",
        up.join("\n"),
        up.len()
    );
}

mod checker {
    use super::*;

    fn src(files: &[(&str, &str)]) -> Vec<(String, String)> {
        files
            .iter()
            .map(|(f, t)| (f.to_string(), t.to_string()))
            .collect()
    }

    const TREE: &[(&str, &str)] = &[
        ("lib.rs", "pub mod git; pub mod plan; pub mod report;"),
        ("git/mod.rs", "pub mod sparse;"),
        ("plan/mod.rs", "pub mod pattern;"),
        ("plan/pattern.rs", "pub fn compile() {}"),
        ("report/mod.rs", "pub fn quote() {}"),
    ];

    fn arrows_of(file: &str, text: &str) -> Vec<String> {
        let mut files = src(TREE);
        files.push((file.to_string(), text.to_string()));
        let mut found: Vec<String> = arrows(&files)
            .iter()
            .map(|a| format!("{}:{} {} -> {}", a.file, a.line, a.from, a.to))
            .collect();
        found.dedup();
        found
    }

    #[test]
    fn finds_use_items_and_qualified_paths_in_bodies_and_macros() {
        let text = "use crate::report;\n\
                    use super::super::plan::{pattern::{self, compile}};\n\
                    fn f() {\n    let _ = crate::report::quote();\n    \
                    println!(\"{:?}\", crate::plan::pattern::compile());\n}\n\
                    mod tests { use super::super::super::report::quote; }\n";
        assert_eq!(
            arrows_of("git/sparse/mod.rs", text),
            [
                "git/sparse/mod.rs:1 git -> report",
                "git/sparse/mod.rs:2 git -> plan",
                "git/sparse/mod.rs:4 git -> report",
                "git/sparse/mod.rs:5 git -> plan",
                "git/sparse/mod.rs:7 git -> report",
            ]
        );
    }

    #[test]
    fn ignores_other_crates_and_its_own_module() {
        let text = "use std::path::Path;\nuse ::report::x;\nuse super::sparse;\n\
                    fn f() { let _ = report::quote(); let _ = self::g(); }\nfn g() {}\n";
        assert_eq!(arrows_of("git/other.rs", text), Vec::<String>::new());
    }

    #[test]
    fn an_upward_arrow_fails_naming_its_place() {
        let mut files = src(TREE);
        files.push((
            "plan/model.rs".into(),
            "use crate::plan::pattern;\n\nfn f() -> crate::git::Sparse { todo!() }\n".into(),
        ));
        let problems = upward(&arrows(&files), &[]);
        assert_eq!(
            problems,
            ["src/plan/model.rs:3: plan -> git (`crate::git::Sparse`): goes up"]
        );
        // Down is fine; an unused exception is a problem of its own.
        files.pop();
        files.push((
            "git/sparse.rs".into(),
            "use crate::plan::pattern::compile;".into(),
        ));
        assert_eq!(upward(&arrows(&files), &[]), Vec::<String>::new());
        assert_eq!(
            upward(&arrows(&files), &[("plan", "git", "gone")]),
            ["the known exception plan -> git is no longer used: remove it from KNOWN_EXCEPTIONS"]
        );
    }

    #[test]
    fn a_narrower_reach_holds_below_the_row_too() {
        let mut files = src(TREE);
        files.push((
            "report/view.rs".into(),
            "use crate::plan::Plan;\nuse crate::git::Oid;\n".into(),
        ));
        assert_eq!(
            upward(&arrows(&files), &[]),
            [
                "src/report/view.rs:2: report -> git (`crate::git::Oid`): out of its reach: report \
              sees plain data (ids, work figures, run state), never the git door"
            ]
        );
    }

    #[test]
    fn a_module_on_no_row_fails() {
        let mut files = src(TREE);
        files[0].1.push_str(" pub mod forecast;");
        files.push(("forecast.rs".into(), "use crate::git;".into()));
        assert_eq!(
            upward(&arrows(&files), &[]),
            [
                "src/forecast.rs:1: forecast -> git (`crate::git`): module `forecast` is on no row of \
                 LAYERS: place it"
            ]
        );
    }

    #[test]
    fn the_binary_names_the_library_by_its_crate_name() {
        let mut files = src(TREE);
        files.push((
            "main.rs".into(),
            "fn main() { streams::git::run(); crate::x(); }".into(),
        ));
        let found: Vec<String> = arrows(&files).iter().map(|a| a.to_string()).collect();
        assert_eq!(found, ["src/main.rs:1: main -> git (`streams::git::run`)"]);
    }
}

/// `cargo nextest run -E 'test(long_functions)' --run-ignored only --no-capture`: the functions
/// of `src/` (outside tests) over 150 lines, from `fn` to the closing brace, longest first.
#[test]
#[ignore = "a report, not a check"]
fn long_functions() {
    struct Lengths {
        file: String,
        found: Vec<(usize, String)>,
    }
    impl Lengths {
        fn record(&mut self, name: &syn::Ident, fn_token: Span, body: &syn::Block) {
            let lines = body.brace_token.span.close().end().line - fn_token.start().line + 1;
            let at = format!("src/{}:{} {}", self.file, fn_token.start().line, name);
            self.found.push((lines, at));
        }
    }
    fn is_test(attrs: &[syn::Attribute]) -> bool {
        attrs.iter().any(|a| {
            a.path().is_ident("test")
                || (a.path().is_ident("cfg")
                    && a.parse_args::<syn::Ident>().is_ok_and(|i| i == "test"))
        })
    }
    impl<'ast> Visit<'ast> for Lengths {
        fn visit_item_mod(&mut self, m: &'ast syn::ItemMod) {
            if !is_test(&m.attrs) {
                syn::visit::visit_item_mod(self, m);
            }
        }
        fn visit_item_fn(&mut self, f: &'ast syn::ItemFn) {
            if !is_test(&f.attrs) {
                self.record(&f.sig.ident, f.sig.fn_token.span, &f.block);
                syn::visit::visit_item_fn(self, f);
            }
        }
        fn visit_impl_item_fn(&mut self, f: &'ast syn::ImplItemFn) {
            if !is_test(&f.attrs) {
                self.record(&f.sig.ident, f.sig.fn_token.span, &f.block);
                syn::visit::visit_impl_item_fn(self, f);
            }
        }
    }
    let mut all = Vec::new();
    for (file, text) in sources() {
        let mut lengths = Lengths {
            file,
            found: Vec::new(),
        };
        lengths.visit_file(&syn::parse_file(&text).unwrap());
        all.append(&mut lengths.found);
    }
    all.sort_by(|a, b| b.cmp(a));
    let long: Vec<_> = all.iter().filter(|(lines, _)| *lines > 150).collect();
    for (lines, at) in &long {
        println!("{lines:5} {at}");
    }
    println!("functions over 150 lines: {}", long.len());
}
