//! Files of a workspace written into the user's object store as blobs, hashed from the bytes
//! streams read (never an object the workspace's own store holds under a name).
//!
//! Most paths are hashed in process, byte for byte. A path that a clean filter or a line-ending
//! rule may apply to (an attribute of the user's repository: the start tree's
//! `.gitattributes`, `info/attributes`, the user's attributes file; or `core.autocrlf`) goes
//! through `git hash-object` in the user's repository, with the attributes read from the start
//! commit only (`--attr-source`, git 2.41; on git 2.40, from the start tree's attribute files
//! laid out in a directory of streams' own): what the agent wrote to `.gitattributes`, or to its
//! `.git/config`, changes nothing until a later task starts from it.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::commit::parse_oid;
use super::{Git, GitError, GitResult, Repo};

/// Files at most this large are read whole and hashed before they are written (a blob the
/// store has already costs no write); larger ones are streamed.
const WHOLE: u64 = 64 << 20;

/// The user's object store, open for writing blobs.
pub struct Store {
    repo: git2::Repository,
}

fn io_error(what: &str, path: &Path, e: std::io::Error) -> GitError {
    GitError::Command {
        args: what.to_string(),
        dir: path.to_path_buf(),
        stderr: e.to_string(),
    }
}

impl Store {
    pub fn open(repo: &Repo) -> GitResult<Store> {
        Ok(Store { repo: repo.open()? })
    }

    fn odb(&self) -> GitResult<git2::Odb<'_>> {
        self.repo
            .odb()
            .map_err(|e| GitError::library("could not open the object store", e))
    }

    /// Writes the regular file at `path` as a blob; returns its id. The file is opened without
    /// following a symbolic link and without waiting on a FIFO put in its place.
    pub fn file(&self, path: &Path) -> GitResult<[u8; 20]> {
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK)
            .open(path)
            .map_err(|e| io_error("read", path, e))?;
        let meta = file.metadata().map_err(|e| io_error("read", path, e))?;
        if !meta.is_file() {
            return Err(io_error(
                "read",
                path,
                std::io::Error::other("not a regular file"),
            ));
        }
        let odb = self.odb()?;
        let fail = |e| GitError::library(format!("could not write {}", path.display()), e);
        let id = if meta.len() <= WHOLE {
            let mut bytes = Vec::with_capacity(meta.len() as usize);
            file.read_to_end(&mut bytes)
                .map_err(|e| io_error("read", path, e))?;
            odb.write(git2::ObjectType::Blob, &bytes).map_err(fail)?
        } else {
            let mut writer = odb
                .writer(meta.len() as usize, git2::ObjectType::Blob)
                .map_err(fail)?;
            std::io::copy(&mut file, &mut writer).map_err(|e| io_error("read", path, e))?;
            writer.finalize().map_err(fail)?
        };
        Ok(raw(id))
    }

    /// The bytes of the blob `id` (to write a file as a commit holds it).
    pub fn blob(&self, id: &str) -> GitResult<Vec<u8>> {
        self.repo
            .find_blob(parse_oid(id)?)
            .map(|b| b.content().to_vec())
            .map_err(|e| GitError::library(format!("could not read blob {id}"), e))
    }

    /// Writes `bytes` (a symbolic link's target, say) as a blob.
    pub fn bytes(&self, bytes: &[u8]) -> GitResult<[u8; 20]> {
        let odb = self.odb()?;
        odb.write(git2::ObjectType::Blob, bytes)
            .map(raw)
            .map_err(|e| GitError::library("could not write a blob", e))
    }
}

fn raw(id: git2::Oid) -> [u8; 20] {
    id.as_bytes().try_into().unwrap_or([0; 20])
}

/// The blob id of `bytes`, without writing it.
pub fn blob_id(bytes: &[u8]) -> [u8; 20] {
    git2::Oid::hash_object(git2::ObjectType::Blob, bytes)
        .map(raw)
        .unwrap_or([0; 20])
}

/// Whether content conversion (a clean filter, line endings) may apply to a path, by the user's
/// repository's rules and the attribute files of the start tree. Asked once per directory.
pub struct Conversion {
    /// Some rule outside the tree may apply to any path (`core.autocrlf`, an attributes file
    /// of the user's repository or account, the system's).
    everywhere: bool,
    tree: Option<git2::Oid>,
    /// Directory (`""` for the root) -> whether the start tree has a `.gitattributes` there.
    dirs: HashMap<Vec<u8>, bool>,
    repo: git2::Repository,
}

impl Conversion {
    /// The rules of `repo` with the attribute files of `tree` (the start commit's tree).
    pub fn new(repo: &Repo, tree: &str) -> GitResult<Conversion> {
        let r = repo.open()?;
        let everywhere = rules_outside_the_tree(&r, repo);
        Ok(Conversion {
            everywhere,
            tree: Some(parse_oid(tree)?),
            dirs: HashMap::new(),
            repo: r,
        })
    }

    /// Whether a rule may convert `path`'s content when git hashes it.
    pub fn may_apply(&mut self, path: &[u8]) -> bool {
        if self.everywhere {
            return true;
        }
        let mut at: usize = 0;
        loop {
            let dir = &path[..at.saturating_sub(1)];
            if self.has_attributes(dir) {
                return true;
            }
            match path[at..].iter().position(|b| *b == b'/') {
                Some(next) => at += next + 1,
                None => return false,
            }
        }
    }

    fn has_attributes(&mut self, dir: &[u8]) -> bool {
        if let Some(known) = self.dirs.get(dir) {
            return *known;
        }
        let mut file = dir.to_vec();
        if !file.is_empty() {
            file.push(b'/');
        }
        file.extend_from_slice(b".gitattributes");
        let found = self
            .tree
            .and_then(|t| self.repo.find_tree(t).ok())
            .and_then(|t| {
                t.get_path(Path::new(std::ffi::OsStr::from_bytes(&file)))
                    .ok()
            })
            .is_some();
        self.dirs.insert(dir.to_vec(), found);
        found
    }
}

use std::os::unix::ffi::OsStrExt;

/// Whether a rule outside the tree may convert content: `core.autocrlf`, `info/attributes` of
/// the user's repository, `core.attributesFile` (or the default per-user file), the system's
/// attributes file.
fn rules_outside_the_tree(r: &git2::Repository, repo: &Repo) -> bool {
    let config = r.config().ok().and_then(|mut c| c.snapshot().ok());
    let get = |key: &str| config.as_ref().and_then(|c| c.get_string(key).ok());
    if get("core.autocrlf").is_some_and(|v| {
        let v = v.to_ascii_lowercase();
        v == "true" || v == "input" || v == "yes" || v == "on" || v == "1"
    }) {
        return true;
    }
    let non_empty = |p: &Path| std::fs::metadata(p).is_ok_and(|m| m.len() > 0);
    if non_empty(&repo.common_dir().join("info/attributes")) {
        return true;
    }
    let user_file = get("core.attributesFile")
        .map(|p| home_path(&p))
        .or_else(|| {
            std::env::var_os("XDG_CONFIG_HOME")
                .filter(|x| !x.is_empty())
                .map(|x| PathBuf::from(x).join("git/attributes"))
                .or_else(|| {
                    std::env::var_os("HOME")
                        .map(|h| PathBuf::from(h).join(".config/git/attributes"))
                })
        });
    if user_file.as_deref().is_some_and(non_empty) {
        return true;
    }
    std::env::var_os("GIT_ATTR_NOSYSTEM").is_none() && non_empty(Path::new("/etc/gitattributes"))
}

/// `~/x` under `$HOME`, as git reads a path in its config.
fn home_path(path: &str) -> PathBuf {
    match (path.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => PathBuf::from(path),
    }
}

/// `git hash-object -w` of each of `paths` (relative to `workdir`) in the user's repository,
/// with the user's filters and line-ending rules and the attributes of commit `source` only;
/// `index` is streams' record of the workspace (git asks it whether a path held CRLF before).
/// Returns the ids in the order of `paths`.
pub fn with_filters(
    repo: &Repo,
    workdir: &Path,
    source: &str,
    index: &Path,
    paths: &[Vec<u8>],
) -> GitResult<Vec<[u8; 20]>> {
    if paths.is_empty() {
        return Ok(Vec::new());
    }
    if super::git_version() >= (2, 41, 0) {
        let git = hashing_git(repo, workdir, workdir, index);
        let input: Vec<u8> = paths
            .iter()
            .flat_map(|p| {
                let mut line = c_quote(p);
                line.push(b'\n');
                line
            })
            .collect();
        let out = git.run_with_stdin(
            [
                &format!("--attr-source={source}"),
                "hash-object",
                "-w",
                "--stdin-paths",
            ],
            Some(&input),
        )?;
        let ids: Vec<[u8; 20]> = out
            .stdout_str()
            .lines()
            .map(|l| parse_oid(l.trim()).map(raw))
            .collect::<GitResult<_>>()?;
        if ids.len() != paths.len() {
            return Err(GitError::Command {
                args: "hash-object --stdin-paths".into(),
                dir: workdir.to_path_buf(),
                stderr: format!("{} ids for {} paths", ids.len(), paths.len()),
            });
        }
        return Ok(ids);
    }
    attributes_laid_out(repo, workdir, source, index, paths)
}

/// [`with_filters`] for git 2.40 (no `--attr-source`): the start tree's attribute files on the
/// way to each path are written into a directory of streams' own, which is the work tree git
/// reads attributes from; each file's bytes are piped to `hash-object --stdin --path`.
fn attributes_laid_out(
    repo: &Repo,
    workdir: &Path,
    source: &str,
    index: &Path,
    paths: &[Vec<u8>],
) -> GitResult<Vec<[u8; 20]>> {
    let tmp = tempfile::Builder::new()
        .prefix("streams-attributes-")
        .tempdir()
        .map_err(|e| io_error("hash-object", workdir, e))?;
    let tree = super::commit::tree_of(repo, source)?;
    let mut laid = std::collections::HashSet::new();
    for path in paths {
        let mut dirs = vec![Vec::new()];
        for (i, b) in path.iter().enumerate() {
            if *b == b'/' {
                dirs.push(path[..i].to_vec());
            }
        }
        for dir in dirs {
            if !laid.insert(dir.clone()) {
                continue;
            }
            let mut file = dir.clone();
            if !file.is_empty() {
                file.push(b'/');
            }
            file.extend_from_slice(b".gitattributes");
            if let Some((_, id)) = super::tree::entry_at(repo, &tree, &file)? {
                let target = tmp.path().join(std::ffi::OsStr::from_bytes(&file));
                if let Some(parent) = target.parent() {
                    std::fs::create_dir_all(parent)
                        .map_err(|e| io_error("hash-object", parent, e))?;
                }
                std::fs::write(&target, repo.blob(&id))
                    .map_err(|e| io_error("hash-object", &target, e))?;
            }
        }
    }
    let git = hashing_git(repo, tmp.path(), tmp.path(), index);
    let mut ids = Vec::with_capacity(paths.len());
    for path in paths {
        let file = workdir.join(std::ffi::OsStr::from_bytes(path));
        let mut bytes = Vec::new();
        std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK)
            .open(&file)
            .and_then(|mut f| f.read_to_end(&mut bytes))
            .map_err(|e| io_error("read", &file, e))?;
        let path_arg = format!("--path={}", String::from_utf8_lossy(path));
        let id = git.run_with_stdin(["hash-object", "-w", "--stdin", &path_arg], Some(&bytes))?;
        ids.push(raw(parse_oid(id.stdout_str().trim())?));
    }
    Ok(ids)
}

/// A `git` that hashes into the user's repository: its config and object store, `work_tree`
/// as the work tree (run from `dir`), streams' record as the index; no hooks, no fsmonitor,
/// no replace refs.
fn hashing_git(repo: &Repo, dir: &Path, work_tree: &Path, index: &Path) -> Git {
    Git::new(dir)
        .with_env("GIT_DIR", repo.common_dir().to_string_lossy())
        .with_env("GIT_WORK_TREE", work_tree.to_string_lossy())
        .with_env("GIT_INDEX_FILE", index.to_string_lossy())
        .hardened()
}

/// A path as `--stdin-paths` reads it: in C-style quotes, so that any byte but NUL passes.
fn c_quote(path: &[u8]) -> Vec<u8> {
    let mut out = vec![b'"'];
    for &b in path {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0..=0x1f | 0x7f => {
                let _ = write!(out, "\\{b:03o}");
            }
            _ => out.push(b),
        }
    }
    out.push(b'"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_paths_keep_every_byte() {
        assert_eq!(c_quote(b"a/b.txt"), b"\"a/b.txt\"");
        assert_eq!(c_quote(b"a\"b\\c\nd\x01"), b"\"a\\\"b\\\\c\\nd\\001\"");
    }

    #[test]
    fn a_blob_id_is_gits() {
        // `printf 'x\n' | git hash-object --stdin`
        assert_eq!(
            crate::git::Oid::from(git2::Oid::from_bytes(&blob_id(b"x\n")).unwrap()),
            "587be6b4c3f93f93c489c0111bba5596147a26cb"
        );
    }
}
