//! The members of a repository's workspaces, which `streams init` makes streams of: a Cargo
//! workspace's `members`, an npm/yarn `workspaces` list or a `pnpm-workspace.yaml`, a `go.work`
//! or several Go modules, several Python packages (each a `pyproject.toml`).
//!
//! Pure: the files tracked at `HEAD` and the text of the root manifests in, member directories
//! out. What a manifest declares is believed (its globs matched against the directories that
//! hold a tracked manifest of the same kind); where nothing declares the members (Go modules
//! without a `go.work`, Python packages), a directory holding a `go.mod` or `pyproject.toml` is
//! a member when at least two are found outside test data, fixtures, vendored and hidden
//! directories (a Go repository's `testdata/` often holds modules that are no one's work).
//!
//! Members never nest: a member inside another is left to the outer one, so that the streams
//! made of them own disjoint paths.

use std::collections::BTreeMap;

use globset::{GlobBuilder, GlobSetBuilder};

/// The root files read to find members: their text is what [`find`] is given.
pub const ROOT_MANIFESTS: &[&str] = &[
    "Cargo.toml",
    "package.json",
    "pnpm-workspace.yaml",
    "go.work",
    "go.mod",
    "pyproject.toml",
];

/// What kind of workspace a member belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Cargo,
    Npm,
    Pnpm,
    Go,
    Python,
}

impl Kind {
    /// As a person names it, for the plan's comments.
    pub fn describe(self) -> &'static str {
        match self {
            Kind::Cargo => "Cargo workspace member",
            Kind::Npm => "npm workspace",
            Kind::Pnpm => "pnpm workspace package",
            Kind::Go => "Go module",
            Kind::Python => "Python package",
        }
    }

    /// The workspace as a person names it: "a member of ...".
    pub fn workspace(self) -> &'static str {
        match self {
            Kind::Cargo => "the Cargo workspace",
            Kind::Npm => "the npm workspaces",
            Kind::Pnpm => "the pnpm workspace",
            Kind::Go => "the Go modules",
            Kind::Python => "the Python packages",
        }
    }

    /// The manifest a member directory of this kind holds.
    fn manifest(self) -> &'static str {
        match self {
            Kind::Cargo => "Cargo.toml",
            Kind::Npm | Kind::Pnpm => "package.json",
            Kind::Go => "go.mod",
            Kind::Python => "pyproject.toml",
        }
    }
}

/// One member: its directory (`/`-separated, no trailing slash) and what declared it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    pub path: String,
    pub kind: Kind,
}

/// What [`find`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Workspaces {
    /// Every member, in path order, none inside another.
    pub members: Vec<Member>,
    /// The root files that declare the workspaces (or hold what their members share: the root
    /// `Cargo.toml` of a workspace keeps `[workspace.dependencies]`), each with what it is (a
    /// phrase following "`Cargo.toml` is"), for `shared`.
    pub root_files: Vec<(String, &'static str)>,
}

/// The members of the workspaces declared at the root of a repository whose tracked files are
/// `tracked`; `manifests` holds the text of those of [`ROOT_MANIFESTS`] that are tracked.
pub fn find(tracked: &[String], manifests: &BTreeMap<String, String>) -> Workspaces {
    let mut found: Vec<Member> = Vec::new();
    let mut root_files: Vec<(String, &'static str)> = Vec::new();
    let manifest = |name: &str| manifests.get(name).map(String::as_str);

    if let Some(globs) = manifest("Cargo.toml").and_then(cargo_members) {
        let members = matching(tracked, Kind::Cargo, &globs);
        if !members.is_empty() {
            root_files.push((
                "Cargo.toml".into(),
                "the workspace's manifest, where members share dependencies",
            ));
        }
        found.extend(members);
    }
    if let Some(globs) = manifest("pnpm-workspace.yaml").map(pnpm_packages) {
        let members = matching(tracked, Kind::Pnpm, &globs);
        if !members.is_empty() {
            root_files.push((
                "pnpm-workspace.yaml".into(),
                "the list of the workspace's packages",
            ));
            if manifests.contains_key("package.json") {
                root_files.push((
                    "package.json".into(),
                    "the workspace root, with the scripts and tools every package uses",
                ));
            }
        }
        found.extend(members);
    } else if let Some(globs) = manifest("package.json").and_then(npm_workspaces) {
        let members = matching(tracked, Kind::Npm, &globs);
        if !members.is_empty() {
            root_files.push((
                "package.json".into(),
                "the workspace root, with its `workspaces` and the tools every package uses",
            ));
        }
        found.extend(members);
    }
    let go = match manifest("go.work") {
        Some(text) => {
            root_files.push(("go.work".into(), "the list of the workspace's modules"));
            go_work_uses(text)
                .into_iter()
                .filter(|dir| tracked.contains(&format!("{dir}/go.mod")))
                .map(|path| Member {
                    path,
                    kind: Kind::Go,
                })
                .collect()
        }
        None => undeclared(tracked, Kind::Go),
    };
    if !go.is_empty() && manifests.contains_key("go.mod") {
        root_files.push(("go.mod".into(), "the root module"));
    }
    found.extend(go);
    let python = undeclared(tracked, Kind::Python);
    if !python.is_empty() && manifests.contains_key("pyproject.toml") {
        root_files.push((
            "pyproject.toml".into(),
            "the root project, with the tools every package uses",
        ));
    }
    found.extend(python);

    // Outermost first; a member inside one already taken is left to it.
    found.sort_by(|a, b| a.path.cmp(&b.path).then(a.kind.cmp(&b.kind)));
    let mut members: Vec<Member> = Vec::new();
    for member in found {
        if !members.iter().any(|m| is_within(&member.path, &m.path)) {
            members.push(member);
        }
    }
    root_files.dedup_by(|a, b| a.0 == b.0);
    if members.is_empty() {
        root_files.clear();
    }
    Workspaces {
        members,
        root_files,
    }
}

/// Whether `path` is `dir` or below it.
pub fn is_within(path: &str, dir: &str) -> bool {
    path == dir
        || path
            .strip_prefix(dir)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// The directories holding a tracked manifest of `kind` that one of `globs` matches (a
/// leading `!` excludes, as in pnpm; `./` and trailing slashes are dropped), the root left out.
fn matching(tracked: &[String], kind: Kind, globs: &[String]) -> Vec<Member> {
    let mut include = GlobSetBuilder::new();
    let mut exclude = GlobSetBuilder::new();
    for glob in globs {
        let (set, glob) = match glob.strip_prefix('!') {
            Some(glob) => (&mut exclude, glob),
            None => (&mut include, glob.as_str()),
        };
        let glob = glob.trim_start_matches("./").trim_end_matches('/');
        if glob.is_empty() || glob == "." {
            continue;
        }
        // A glob the manifest's tool would reject names nothing here either.
        if let Ok(glob) = GlobBuilder::new(glob).literal_separator(true).build() {
            set.add(glob);
        }
    }
    let (Ok(include), Ok(exclude)) = (include.build(), exclude.build()) else {
        return Vec::new();
    };
    manifest_dirs(tracked, kind)
        .filter(|dir| include.is_match(dir) && !exclude.is_match(dir))
        .filter(|dir| !dir.split('/').any(|c| c == "node_modules"))
        .map(|path| Member {
            path: path.to_string(),
            kind,
        })
        .collect()
}

/// The directories (not the root) holding a tracked manifest of `kind`.
fn manifest_dirs(tracked: &[String], kind: Kind) -> impl Iterator<Item = &str> {
    let name = kind.manifest();
    tracked.iter().filter_map(move |path| {
        path.strip_suffix(name)
            .and_then(|dir| dir.strip_suffix('/'))
            .filter(|dir| !dir.is_empty())
    })
}

/// Directories no one would make a stream of, though they hold a manifest.
const NOT_MEMBERS: &[&str] = &[
    "testdata",
    "test",
    "tests",
    "fixtures",
    "vendor",
    "third_party",
    "node_modules",
];

/// Members found by their manifests alone, where nothing declares them: two at least.
fn undeclared(tracked: &[String], kind: Kind) -> Vec<Member> {
    let dirs: Vec<&str> = manifest_dirs(tracked, kind)
        .filter(|dir| {
            !dir.split('/')
                .any(|c| c.starts_with('.') || NOT_MEMBERS.contains(&c))
        })
        .collect();
    if dirs.len() < 2 {
        return Vec::new();
    }
    dirs.into_iter()
        .map(|path| Member {
            path: path.to_string(),
            kind,
        })
        .collect()
}

/// `[workspace] members` of a Cargo manifest, without its `exclude`d ones (as `!` globs).
fn cargo_members(text: &str) -> Option<Vec<String>> {
    let value: toml::Table = text.parse().ok()?;
    let workspace = value.get("workspace")?.as_table()?;
    let strings = |key: &str| -> Vec<String> {
        workspace
            .get(key)
            .and_then(|v| v.as_array())
            .map(|items| {
                items
                    .iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut globs = strings("members");
    globs.extend(strings("exclude").into_iter().map(|e| format!("!{e}")));
    Some(globs)
}

/// `workspaces` of a package.json: a list, or `{ "packages": [...] }` (yarn).
fn npm_workspaces(text: &str) -> Option<Vec<String>> {
    let value: serde_json::Value = serde_json::from_str(text).ok()?;
    let list = match value.get("workspaces")? {
        serde_json::Value::Object(object) => object.get("packages")?,
        list => list,
    };
    Some(
        list.as_array()?
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
    )
}

/// `packages` of a pnpm-workspace.yaml: the block list (`- 'packages/*'`) or a flow list
/// (`packages: [a, b]`). A small reader, not YAML: the file holds little else.
fn pnpm_packages(text: &str) -> Vec<String> {
    let unquote = |s: &str| {
        let s = s.trim();
        let s = s.split(" #").next().unwrap_or(s).trim();
        s.trim_matches(|c| c == '\'' || c == '"').to_string()
    };
    let mut out = Vec::new();
    let mut in_packages = false;
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let indented = line.starts_with([' ', '\t', '-']);
        if !indented {
            in_packages = false;
            if let Some(rest) = trimmed.strip_prefix("packages:") {
                let rest = rest.trim();
                if let Some(flow) = rest.strip_prefix('[') {
                    let flow = flow.split(']').next().unwrap_or("");
                    out.extend(flow.split(',').map(unquote).filter(|s| !s.is_empty()));
                } else {
                    in_packages = true;
                }
            }
            continue;
        }
        if in_packages && let Some(item) = trimmed.strip_prefix('-') {
            let item = unquote(item);
            if !item.is_empty() {
                out.push(item);
            }
        }
    }
    out
}

/// The directories a go.work `use`s: `use ./a`, or a `use ( ... )` block.
fn go_work_uses(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut in_block = false;
    for line in text.lines() {
        let line = line.split("//").next().unwrap_or("").trim();
        if in_block {
            if line.starts_with(')') {
                in_block = false;
            } else if !line.is_empty() {
                out.push(line.to_string());
            }
            continue;
        }
        if let Some(rest) = line.strip_prefix("use") {
            let rest = rest.trim();
            if rest.starts_with('(') {
                in_block = true;
            } else if !rest.is_empty() {
                out.push(rest.to_string());
            }
        }
    }
    out.into_iter()
        .map(|dir| {
            dir.trim_matches('"')
                .trim_start_matches("./")
                .trim_end_matches('/')
                .to_string()
        })
        .filter(|dir| !dir.is_empty() && dir != "." && !dir.starts_with(".."))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(paths: &[&str]) -> Vec<String> {
        paths.iter().map(|p| p.to_string()).collect()
    }

    fn manifests(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn paths(ws: &Workspaces) -> Vec<&str> {
        ws.members.iter().map(|m| m.path.as_str()).collect()
    }

    #[test]
    fn cargo_members_with_globs_and_excludes() {
        let tracked = files(&[
            "Cargo.toml",
            "crates/a/Cargo.toml",
            "crates/a/src/lib.rs",
            "crates/b/Cargo.toml",
            "crates/fuzz/Cargo.toml",
            "tools/x/Cargo.toml",
            "crates/README.md",
        ]);
        let ws = find(
            &tracked,
            &manifests(&[(
                "Cargo.toml",
                "[workspace]\nmembers = [\"crates/*\", \"tools/x\"]\nexclude = [\"crates/fuzz\"]\n",
            )]),
        );
        assert_eq!(paths(&ws), ["crates/a", "crates/b", "tools/x"]);
        assert_eq!(ws.root_files[0].0, "Cargo.toml");
        // A plain package is no workspace.
        let ws = find(
            &tracked,
            &manifests(&[("Cargo.toml", "[package]\nname = \"x\"\n")]),
        );
        assert_eq!(ws, Workspaces::default());
    }

    #[test]
    fn npm_yarn_and_pnpm_workspaces() {
        let tracked = files(&[
            "package.json",
            "packages/ui/package.json",
            "packages/api/package.json",
            "packages/api/test/fixture/package.json",
            "apps/web/package.json",
        ]);
        let npm = find(
            &tracked,
            &manifests(&[("package.json", r#"{"workspaces": ["packages/*"]}"#)]),
        );
        assert_eq!(paths(&npm), ["packages/api", "packages/ui"]);
        let yarn = find(
            &tracked,
            &manifests(&[(
                "package.json",
                r#"{"workspaces": {"packages": ["apps/*", "packages/*"]}}"#,
            )]),
        );
        assert_eq!(paths(&yarn), ["apps/web", "packages/api", "packages/ui"]);
        let pnpm = find(
            &tracked,
            &manifests(&[
                ("package.json", "{}"),
                (
                    "pnpm-workspace.yaml",
                    "# the packages\npackages:\n  - 'apps/*'\n  - \"packages/**\"\n  - '!packages/ui'\ncatalog:\n  - x\n",
                ),
            ]),
        );
        // `packages/**` also matches the fixture inside `packages/api`: left to its owner.
        assert_eq!(paths(&pnpm), ["apps/web", "packages/api"]);
        let names: Vec<&str> = pnpm.root_files.iter().map(|f| f.0.as_str()).collect();
        assert_eq!(names, ["pnpm-workspace.yaml", "package.json"]);
        assert_eq!(
            pnpm_packages("packages: ['a/*', \"b\"]\n"),
            ["a/*".to_string(), "b".to_string()]
        );
    }

    #[test]
    fn go_modules_declared_or_found() {
        let tracked = files(&[
            "go.mod",
            "svc/a/go.mod",
            "svc/b/go.mod",
            "lib/go.mod",
            "lib/testdata/mod/go.mod",
        ]);
        let ws = find(
            &tracked,
            &manifests(&[
                ("go.mod", "module x\n"),
                (
                    "go.work",
                    "go 1.22\n\nuse (\n\t.\n\t./svc/a // the api\n)\nuse ./lib\n",
                ),
            ]),
        );
        assert_eq!(paths(&ws), ["lib", "svc/a"]);
        // Without go.work: every module outside test data.
        let ws = find(&tracked, &manifests(&[("go.mod", "module x\n")]));
        assert_eq!(paths(&ws), ["lib", "svc/a", "svc/b"]);
        assert_eq!(ws.root_files[0].0, "go.mod");
        // One nested module alone is no workspace.
        let ws = find(&files(&["go.mod", "tools/go.mod"]), &BTreeMap::new());
        assert!(ws.members.is_empty());
    }

    #[test]
    fn python_packages() {
        let tracked = files(&[
            "pyproject.toml",
            "packages/core/pyproject.toml",
            "packages/cli/pyproject.toml",
            ".venv/x/pyproject.toml",
        ]);
        let ws = find(&tracked, &manifests(&[("pyproject.toml", "[project]\n")]));
        assert_eq!(paths(&ws), ["packages/cli", "packages/core"]);
        assert_eq!(ws.root_files[0].0, "pyproject.toml");
    }
}
