//! The one reader of a workspace: its work tree's files against streams' record of them, in
//! one pass, once the agent's processes are gone (see the module docs of `workspace`).
//!
//! A tracked file (one the record names) whose `lstat` is as recorded (inode, size, change
//! time) and whose change time is before the record's boundary is unchanged without being
//! read: a write to it since would have set its change time to the moment of the write, which
//! is at or after the boundary (taken on the workspace's own file system, after the record was
//! written). Every other file is read and hashed into the user's object store; a file whose
//! blob is the recorded one is unchanged (its new `lstat` goes into the record). Untracked
//! files are work unless the user's ignore rules (the work tree's `.gitignore` files, the
//! user's `info/exclude` and excludes file) match them; a directory holding `.git` is a nested
//! repository (its own `.git` never read, its files read as work), and the workspace's own
//! `.git` is the agent's, not content. Symbolic links are blobs of their target; a directory
//! link is never followed. FIFOs, sockets and devices are not content (a tracked file replaced
//! by one is deleted), and are never opened.

use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use ignore::Match;
use ignore::gitignore::{Gitignore, GitignoreBuilder};
use nix::dir::{Dir, Type};
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::Mode;

use super::{Workspace, damaged};
use crate::git::hash::{Conversion, Store};
use crate::git::index::{self, Entry, FileStat, Update};
use crate::git::tree::{self, Content, GITLINK_MODE};
use crate::git::{GitResult, Repo};
use crate::ids::Oid;

/// A moment on a workspace's file system: a file's change time (seconds, nanoseconds).
pub type FsTime = (i64, u32);

/// Where the record's boundary is kept, beside the record.
const BOUNDARY_FILE: &str = "streams-boundary";

/// What streams knows of a workspace's files before reading them.
pub struct Record {
    /// The commit (and its tree) the record describes.
    pub at: Oid,
    pub tree: Oid,
    pub(super) entries: std::sync::Arc<Vec<Entry>>,
    /// Files whose change time is before this were recorded as they are (`None`: nothing is
    /// known of any file's `lstat`: every file is read).
    pub(super) boundary: Option<FsTime>,
    /// Where the record lives (`None`: made from a commit, nothing written back).
    index: Option<PathBuf>,
}

impl Record {
    /// The record in the workspace's control directory, if it has one.
    pub fn of(repo: &Repo, ws: &Workspace) -> GitResult<Option<Record>> {
        let Some(at) = ws.control.at() else {
            return Ok(None);
        };
        let clock = std::time::Instant::now();
        let index = ws.control.index();
        let entries = index::read(&index)?;
        tracing::debug!(
            "record of {} loaded: {} entries, {:.1} ms",
            ws.path.display(),
            entries.len(),
            ms(clock.elapsed())
        );
        let boundary = std::fs::read_to_string(ws.control.dir().join(BOUNDARY_FILE))
            .ok()
            .and_then(|t| {
                let (s, n) = t.trim().split_once(' ')?;
                Some((s.parse().ok()?, n.parse().ok()?))
            });
        Ok(Some(Record {
            tree: repo.commit_info(&at)?.tree,
            at,
            entries: std::sync::Arc::new(entries),
            boundary,
            index: Some(index),
        }))
    }

    /// A record of commit `at`'s files with nothing known of their `lstat`: every file of the
    /// workspace is read (an earlier version's workspace, whose own git directory is not
    /// trusted).
    pub fn of_commit(repo: &Repo, at: &Oid) -> GitResult<Record> {
        let tree = repo.commit_info(at)?.tree;
        let entries = tree::diff(repo, None, Some(&tree))?
            .into_iter()
            .filter_map(|d| {
                let (mode, id) = d.new?;
                let id: [u8; 20] = git2_bytes(&id)?;
                Some(Entry {
                    path: d.path,
                    id,
                    mode,
                    stat: FileStat::default(),
                    skip_worktree: false,
                })
            })
            .collect();
        Ok(Record {
            at: at.clone(),
            tree,
            entries: std::sync::Arc::new(entries),
            boundary: None,
            index: None,
        })
    }
}

pub(super) fn git2_bytes(oid: &Oid) -> Option<[u8; 20]> {
    let mut out = [0u8; 20];
    for (i, chunk) in oid.as_bytes().chunks(2).enumerate().take(20) {
        out[i] = u8::from_str_radix(std::str::from_utf8(chunk).ok()?, 16).ok()?;
    }
    Some(out)
}

/// One path whose content differs from the record.
#[derive(Clone, Debug)]
pub struct Change {
    pub path: Vec<u8>,
    /// What the record holds there.
    pub old: Content,
    /// What the file holds now (`None`: gone), and its `lstat`.
    pub new: Content,
    stat: Option<FileStat>,
}

impl Change {
    pub fn path_text(&self) -> String {
        String::from_utf8_lossy(&self.path).into_owned()
    }
}

/// A path the user's ignore rules match: never part of the work.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ignored {
    pub path: String,
    /// A directory, ignored as a whole (nothing tracked below it).
    pub dir: bool,
    /// Written (created or changed) at or after the moment asked about: by the agent.
    pub written_since: bool,
}

/// What one read found.
#[derive(Clone, Debug, Default)]
pub struct Read {
    /// The commit and tree the files were compared with.
    pub at: Oid,
    pub tree: Oid,
    /// Every path whose content differs, in path order.
    pub changes: Vec<Change>,
    /// Directories holding a `.git` of their own (a nested repository), outermost first.
    pub nested: Vec<String>,
    /// Ignored paths (files, and directories ignored as a whole).
    pub ignored: Vec<Ignored>,
    /// Tracked files read again and found as recorded: their new `lstat`, for the record.
    refreshed: Vec<Update>,
    /// Untracked `.gitattributes` files the ignore rules hide: a checkout must not read them.
    hidden_attributes: Vec<PathBuf>,
    /// How much work the read did.
    pub counts: Counts,
    /// The record it read, when it is streams' record of the workspace: what the record
    /// becomes is written from it, not read again.
    record: Option<std::sync::Arc<Vec<Entry>>>,
}

/// How much work one read did: what tells a read that trusted the record from one that read
/// every file (logged as `read <workspace>: ...` under `STREAMS_LOG=streams::workspace=debug`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Files and links the walk met (`lstat` each).
    pub files: usize,
    /// Tracked files taken as recorded without being read (their `lstat` vouched for them).
    pub skipped: usize,
    /// Files read and hashed (tracked ones the record could not vouch for, and untracked work).
    pub hashed: usize,
    /// Of those, hashed through `git hash-object` (a filter or line-ending rule may apply).
    pub filtered: usize,
}

impl Read {
    /// Whether the files differ from the record at all.
    pub fn is_clean(&self) -> bool {
        self.changes.is_empty() && self.nested.is_empty()
    }

    /// The changed paths, as text (both sides of a move, a file and the directory that
    /// replaced it).
    pub fn paths(&self) -> std::collections::BTreeSet<String> {
        self.changes.iter().map(Change::path_text).collect()
    }

    /// The tree the files make: the record's tree with the changed paths replaced, written
    /// into the user's repository.
    pub fn tree(&self, repo: &Repo) -> GitResult<Oid> {
        if self.changes.is_empty() {
            return Ok(self.tree.clone());
        }
        let changes: Vec<(Vec<u8>, Content)> = self
            .changes
            .iter()
            .map(|c| (c.path.clone(), c.new.clone()))
            .collect();
        tree::build(repo, Some(&self.tree), &changes)
    }

    /// What the record must say once the workspace's files are taken as they are: changed
    /// paths with what they hold now, files read again with their new `lstat`.
    pub(super) fn updates(&self) -> Vec<Update> {
        let mut updates = self.refreshed.clone();
        for change in &self.changes {
            updates.push(Update {
                path: change.path.clone(),
                now: match (&change.new, change.stat) {
                    (Some((mode, id)), Some(stat)) => git2_bytes(id).map(|id| (*mode, id, stat)),
                    _ => None,
                },
            });
        }
        updates
    }

    /// Untracked files (and links) the read found: what a reset removes.
    pub(super) fn untracked(&self) -> impl Iterator<Item = &Change> {
        self.changes.iter().filter(|c| c.old.is_none())
    }

    pub(super) fn hidden_attributes(&self) -> &[PathBuf] {
        &self.hidden_attributes
    }
}

/// What a read is asked besides the files.
pub struct Options<'a> {
    /// Ignored paths written at or after this moment are marked (`Ignored::written_since`).
    pub since: Option<FsTime>,
    /// Paths tracked beyond the record (files the agent's own checked commits hold): the ignore
    /// rules do not hide them, as git's do not hide a tracked file.
    pub also_tracked: &'a HashSet<Vec<u8>>,
}

/// No paths besides the record's.
static NONE: std::sync::LazyLock<HashSet<Vec<u8>>> = std::sync::LazyLock::new(HashSet::new);

impl Default for Options<'_> {
    fn default() -> Self {
        Options {
            since: None,
            also_tracked: &NONE,
        }
    }
}

/// Reads the workspace's files against `record`.
pub fn read(repo: &Repo, ws: &Workspace, record: &Record, options: &Options) -> GitResult<Read> {
    let clock = std::time::Instant::now();
    let config = UserConfig::of(repo);
    let mut walk = Walk {
        root: ws.path.clone(),
        record,
        seen: vec![false; record.entries.len()],
        tracked_dirs: tracked_dirs(&record.entries),
        ignores: Vec::new(),
        base_ignores: base_ignores(repo, &ws.path),
        options,
        config: &config,
        to_hash: Vec::new(),
        out: Read {
            at: record.at.clone(),
            tree: record.tree.clone(),
            record: record.index.is_some().then(|| record.entries.clone()),
            ..Read::default()
        },
    };
    let root = open_dir(None, b"", &ws.path)
        .map_err(|e| damaged(&ws.path, &format!("cannot read {}: {e}", ws.path.display())))?;
    walk.dir(Vec::new(), root, (0, record.entries.len()), false)?;
    // What the walk did not meet: gone (or outside a sparse workspace's set; or a submodule's
    // directory, which a checkout may leave out).
    for (i, entry) in record.entries.iter().enumerate() {
        if !walk.seen[i] && !entry.skip_worktree && entry.mode != GITLINK_MODE {
            walk.out.changes.push(Change {
                path: entry.path.clone(),
                old: Some((entry.mode, entry.oid())),
                new: None,
                stat: None,
            });
        }
    }
    let Walk {
        to_hash, mut out, ..
    } = walk;
    let walked = clock.elapsed();
    hash(repo, ws, record, to_hash, &mut out)?;
    out.changes.sort_by(|a, b| a.path.cmp(&b.path));
    out.nested.sort();
    out.ignored.sort_by(|a, b| a.path.cmp(&b.path));
    let Counts {
        files,
        skipped,
        hashed,
        filtered,
    } = out.counts;
    tracing::debug!(
        "read {}: {files} files, {skipped} skipped, {hashed} hashed ({filtered} through filters), {} changed; walk {:.1} ms, hash {:.1} ms",
        ws.path.display(),
        out.changes.len(),
        ms(walked),
        ms(clock.elapsed() - walked),
    );
    Ok(out)
}

fn ms(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The user's settings a read follows.
struct UserConfig {
    /// `core.fileMode`: whether the executable bit is content.
    file_mode: bool,
}

impl UserConfig {
    fn of(repo: &Repo) -> UserConfig {
        UserConfig {
            file_mode: repo.config_bool("core.fileMode", true),
        }
    }
}

/// Every directory with a tracked path below it (`""` is the root).
fn tracked_dirs(entries: &[Entry]) -> HashSet<Vec<u8>> {
    let mut dirs = HashSet::new();
    for entry in entries {
        let mut end = entry.path.len();
        while let Some(slash) = entry.path[..end].iter().rposition(|b| *b == b'/') {
            let dir = &entry.path[..slash];
            if dirs.contains(dir) {
                break;
            }
            dirs.insert(dir.to_vec());
            end = slash;
        }
    }
    dirs
}

/// The user's own ignore rules, below every `.gitignore`: `info/exclude` of the user's
/// repository, then `core.excludesFile` (or the default per-user file). The agent's
/// `.git/info/exclude` is not among them.
fn base_ignores(repo: &Repo, root: &Path) -> Vec<Gitignore> {
    let mut files = vec![repo.common_dir().join("info/exclude")];
    files.extend(repo.config_path("core.excludesFile").or_else(|| {
        std::env::var_os("XDG_CONFIG_HOME")
            .filter(|x| !x.is_empty())
            .map(|x| PathBuf::from(x).join("git/ignore"))
            .or_else(|| {
                std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config/git/ignore"))
            })
    }));
    files
        .into_iter()
        .filter(|f| f.is_file())
        .filter_map(|f| {
            let mut builder = GitignoreBuilder::new(root);
            builder.add(&f);
            builder.build().ok()
        })
        .collect()
}

/// A file to read after the walk: tracked ones with what the record holds.
struct ToHash {
    path: Vec<u8>,
    link: bool,
    mode: u32,
    stat: FileStat,
    recorded: Option<(u32, [u8; 20])>,
}

struct Walk<'a> {
    root: PathBuf,
    record: &'a Record,
    seen: Vec<bool>,
    tracked_dirs: HashSet<Vec<u8>>,
    /// The `.gitignore` files of the directories being walked, deepest last: (directory, rules).
    ignores: Vec<(Vec<u8>, Gitignore)>,
    base_ignores: Vec<Gitignore>,
    options: &'a Options<'a>,
    config: &'a UserConfig,
    to_hash: Vec<ToHash>,
    out: Read,
}

fn join(dir: &[u8], name: &[u8]) -> Vec<u8> {
    let mut path = dir.to_vec();
    if !path.is_empty() {
        path.push(b'/');
    }
    path.extend_from_slice(name);
    path
}

fn as_path(rel: &[u8]) -> &Path {
    Path::new(OsStr::from_bytes(rel))
}

fn fs_time(meta: &std::fs::Metadata) -> FsTime {
    (meta.ctime(), meta.ctime_nsec() as u32)
}

/// What `lstat` said of a path, as the walk uses it.
struct Meta {
    stat: FileStat,
    /// `st_mode`: the kind and permission bits.
    mode: u32,
}

impl Meta {
    /// `lstat` of `name` in the directory `dir` (never following a link).
    fn at(dir: &Dir, name: &[u8]) -> Option<Meta> {
        let st = nix::sys::stat::fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW).ok()?;
        Some(Meta {
            stat: FileStat {
                ctime: (st.st_ctime, st.st_ctime_nsec as u32),
                mtime: (st.st_mtime, st.st_mtime_nsec as u32),
                dev: st.st_dev as u32,
                ino: st.st_ino as u32,
                uid: st.st_uid,
                gid: st.st_gid,
                size: st.st_size as u32,
            },
            mode: st.st_mode,
        })
    }

    fn ctime(&self) -> FsTime {
        self.stat.ctime
    }

    fn kind(&self) -> u32 {
        self.mode & nix::libc::S_IFMT
    }
}

/// A directory open for the walk: names are looked up relative to it, so each `lstat` costs no
/// walk of the whole path, and a directory swapped for a link meanwhile is not followed.
fn open_dir(parent: Option<&Dir>, name: &[u8], abs: &Path) -> nix::Result<Dir> {
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
    match parent {
        Some(parent) => Dir::openat(parent, name, flags | OFlag::O_NOFOLLOW, Mode::empty()),
        None => Dir::open(abs, flags, Mode::empty()),
    }
}

/// The entries of `entries` whose paths are below the directory `dir` (`""`: all of them),
/// found within `range`, where they are: a directory's paths are contiguous in path order.
fn below(entries: &[Entry], range: (usize, usize), dir: &[u8]) -> (usize, usize) {
    if dir.is_empty() {
        return range;
    }
    let slice = &entries[range.0..range.1];
    let mut prefix = dir.to_vec();
    prefix.push(b'/');
    let start = slice.partition_point(|e| e.path.as_slice() < prefix.as_slice());
    // Every path below sorts before `dir` followed by the byte after `/`.
    *prefix.last_mut().unwrap_or(&mut 0) = b'/' + 1;
    let end = slice.partition_point(|e| e.path.as_slice() < prefix.as_slice());
    (range.0 + start, range.0 + end)
}

impl Walk<'_> {
    fn abs(&self, rel: &[u8]) -> PathBuf {
        self.root.join(as_path(rel))
    }

    /// The record's entry for `rel`, looked for among `range` (the entries below its directory).
    fn index_of(&self, range: (usize, usize), rel: &[u8]) -> Option<usize> {
        self.record.entries[range.0..range.1]
            .binary_search_by(|e| e.path.as_slice().cmp(rel))
            .ok()
            .map(|i| range.0 + i)
    }

    /// Whether the ignore rules match `rel`: the deepest `.gitignore` with a say decides, then
    /// the user's files.
    fn is_ignored(&self, rel: &[u8], is_dir: bool) -> bool {
        let abs = self.abs(rel);
        for (_, rules) in self.ignores.iter().rev() {
            match rules.matched(&abs, is_dir) {
                Match::Ignore(_) => return true,
                Match::Whitelist(_) => return false,
                Match::None => {}
            }
        }
        for rules in &self.base_ignores {
            match rules.matched(&abs, is_dir) {
                Match::Ignore(_) => return true,
                Match::Whitelist(_) => return false,
                Match::None => {}
            }
        }
        false
    }

    fn ignored(&mut self, rel: &[u8], dir: bool, meta: Option<&Meta>) {
        let written_since = match (self.options.since, meta) {
            (Some(since), Some(meta)) => meta.ctime() >= since,
            _ => false,
        };
        if !dir && rel.ends_with(b".gitattributes") {
            self.out.hidden_attributes.push(self.abs(rel));
        }
        self.out.ignored.push(Ignored {
            path: String::from_utf8_lossy(rel).into_owned(),
            dir,
            written_since,
        });
    }

    /// Walks the directory `rel`, open as `fd` (`ignored`: an ignore rule matched it or a
    /// parent: what is untracked below it is ignored; `range`: the record's entries below it).
    fn dir(
        &mut self,
        rel: Vec<u8>,
        mut fd: Dir,
        range: (usize, usize),
        ignored: bool,
    ) -> GitResult<()> {
        let mut names: Vec<(Vec<u8>, Option<Type>)> = Vec::new();
        for entry in fd.iter() {
            let entry = entry.map_err(|e| {
                damaged(
                    &self.root,
                    &format!("cannot read {}: {e}", self.abs(&rel).display()),
                )
            })?;
            let name = entry.file_name().to_bytes();
            if name == b"." || name == b".." {
                continue;
            }
            names.push((name.to_vec(), entry.file_type()));
        }
        let pushed = if !ignored
            && names
                .iter()
                .any(|(n, k)| n == b".gitignore" && *k != Some(Type::Directory))
        {
            let abs = self.abs(&rel);
            let mut builder = GitignoreBuilder::new(&abs);
            builder.add(abs.join(".gitignore"));
            match builder.build() {
                Ok(rules) => {
                    self.ignores.push((rel.clone(), rules));
                    true
                }
                Err(_) => false,
            }
        } else {
            false
        };
        for (name, kind) in names {
            // A `.git` is never content: the agent's git dir at the top, a nested
            // repository's below.
            if name == b".git" {
                continue;
            }
            let kind = match kind {
                Some(kind) => kind,
                // The file system does not say in its listing: ask.
                None => match Meta::at(&fd, &name).map(|m| m.kind()) {
                    Some(nix::libc::S_IFDIR) => Type::Directory,
                    Some(nix::libc::S_IFREG) => Type::File,
                    Some(nix::libc::S_IFLNK) => Type::Symlink,
                    Some(_) => Type::Fifo,
                    None => continue,
                },
            };
            let path = join(&rel, &name);
            match kind {
                Type::Directory => self.subdir(&fd, &name, path, range, ignored)?,
                Type::File | Type::Symlink => {
                    self.file(&fd, &name, path, range, ignored)?;
                }
                // A FIFO, socket or device: never content, never opened.
                _ => {}
            }
        }
        if pushed {
            self.ignores.pop();
        }
        Ok(())
    }

    fn subdir(
        &mut self,
        parent: &Dir,
        name: &[u8],
        path: Vec<u8>,
        range: (usize, usize),
        ignored: bool,
    ) -> GitResult<()> {
        let mut dot_git = name.to_vec();
        dot_git.extend_from_slice(b"/.git");
        let has_git = Meta::at(parent, &dot_git).is_some();
        if let Some(i) = self.index_of(range, &path) {
            self.seen[i] = true;
            let entry = &self.record.entries[i];
            if entry.mode == GITLINK_MODE {
                // A submodule's directory: unchanged unless the agent made it a repository.
                if has_git {
                    self.out
                        .nested
                        .push(String::from_utf8_lossy(&path).into_owned());
                }
                return Ok(());
            }
            // A tracked file replaced by a directory.
            self.out.changes.push(Change {
                path: path.clone(),
                old: Some((entry.mode, entry.oid())),
                new: None,
                stat: None,
            });
        }
        let tracked_below = self.tracked_dirs.contains(&path);
        let ignored = ignored || self.is_ignored(&path, true);
        if ignored && !tracked_below {
            // Ignored as a whole, as git lists it: not walked.
            let meta = Meta::at(parent, name);
            self.ignored(&path, true, meta.as_ref());
            return Ok(());
        }
        if has_git {
            // A nested repository: its files are read as work (kept when the task is rejected
            // for it); its `.git` never.
            self.out
                .nested
                .push(String::from_utf8_lossy(&path).into_owned());
        }
        let fd = match open_dir(Some(parent), name, &self.abs(&path)) {
            Ok(fd) => fd,
            // Gone since the directory was listed (or replaced by a link): not there.
            Err(nix::errno::Errno::ENOENT | nix::errno::Errno::ELOOP) => return Ok(()),
            Err(nix::errno::Errno::ENOTDIR) => return Ok(()),
            Err(e) => {
                return Err(damaged(
                    &self.root,
                    &format!("cannot read {}: {e}", self.abs(&path).display()),
                ));
            }
        };
        let range = below(&self.record.entries, range, &path);
        self.dir(path, fd, range, ignored)
    }

    fn file(
        &mut self,
        parent: &Dir,
        name: &[u8],
        path: Vec<u8>,
        range: (usize, usize),
        ignored: bool,
    ) -> GitResult<()> {
        let Some(meta) = Meta::at(parent, name) else {
            return Ok(()); // gone since the directory was listed: not there
        };
        // What the listing said may be stale: the `lstat` decides.
        let link = match meta.kind() {
            nix::libc::S_IFLNK => true,
            nix::libc::S_IFREG => false,
            nix::libc::S_IFDIR => return self.subdir(parent, name, path, range, ignored),
            _ => return Ok(()),
        };
        let stat = meta.stat;
        self.out.counts.files += 1;
        match self.index_of(range, &path) {
            Some(i) => {
                self.seen[i] = true;
                let entry = &self.record.entries[i];
                let mode = self.mode(&meta, link, entry.mode);
                let unchanged = !entry.skip_worktree
                    && mode == entry.mode
                    && same_stat(&entry.stat, &stat)
                    && self.record.boundary.is_some_and(|b| meta.ctime() < b);
                if unchanged {
                    self.out.counts.skipped += 1;
                } else {
                    self.to_hash.push(ToHash {
                        path,
                        link,
                        mode,
                        stat,
                        recorded: Some((entry.mode, entry.id)),
                    });
                }
            }
            None => {
                let tracked = self.options.also_tracked.contains(&path);
                if !tracked && (ignored || self.is_ignored(&path, false)) {
                    self.ignored(&path, false, Some(&meta));
                    return Ok(());
                }
                let mode = self.mode(&meta, link, 0o100644);
                self.to_hash.push(ToHash {
                    path,
                    link,
                    mode,
                    stat,
                    recorded: None,
                });
            }
        }
        Ok(())
    }

    /// git's mode for a file: a link, or a regular file executable by its owner or not (when
    /// the user's `core.fileMode` is off, what the record says).
    fn mode(&self, meta: &Meta, link: bool, recorded: u32) -> u32 {
        if link {
            0o120000
        } else if !self.config.file_mode && (recorded == 0o100644 || recorded == 0o100755) {
            recorded
        } else if meta.mode & 0o100 != 0 {
            0o100755
        } else {
            0o100644
        }
    }
}

/// Whether a file's `lstat` is the recorded one, as far as an index keeps it.
fn same_stat(recorded: &FileStat, now: &FileStat) -> bool {
    recorded.ctime == now.ctime && recorded.ino == now.ino && recorded.size == now.size
}

/// Reads and hashes what the walk could not vouch for, and sorts each into unchanged (its new
/// `lstat` for the record) or changed.
fn hash(
    repo: &Repo,
    ws: &Workspace,
    record: &Record,
    to_hash: Vec<ToHash>,
    out: &mut Read,
) -> GitResult<()> {
    if to_hash.is_empty() {
        return Ok(());
    }
    let store = Store::open(repo)?;
    let mut conversion = Conversion::new(repo, &record.tree)?;
    let mut ids: HashMap<usize, [u8; 20]> = HashMap::new();
    let mut filtered = Vec::new();
    for (i, item) in to_hash.iter().enumerate() {
        let abs = ws.path.join(as_path(&item.path));
        if item.link {
            let target = std::fs::read_link(&abs)
                .map_err(|e| damaged(&ws.path, &format!("cannot read {}: {e}", abs.display())))?;
            ids.insert(i, store.bytes(target.as_os_str().as_bytes())?);
        } else if conversion.may_apply(&item.path) {
            filtered.push(i);
        } else {
            ids.insert(i, store.file(&abs)?);
        }
    }
    out.counts.hashed = to_hash.len();
    out.counts.filtered = filtered.len();
    if !filtered.is_empty() {
        let paths: Vec<Vec<u8>> = filtered.iter().map(|&i| to_hash[i].path.clone()).collect();
        // Without a record of its own, an index that does not exist: git takes it as empty.
        let index = record
            .index
            .clone()
            .unwrap_or_else(|| ws.control.dir().join("no-index"));
        let hashed = crate::git::hash::with_filters(repo, &ws.path, &record.at, &index, &paths)?;
        ids.extend(filtered.into_iter().zip(hashed));
    }
    for (i, item) in to_hash.into_iter().enumerate() {
        let Some(id) = ids.get(&i).copied() else {
            continue;
        };
        if item.recorded == Some((item.mode, id)) {
            out.refreshed.push(Update {
                path: item.path,
                now: Some((item.mode, id, item.stat)),
            });
            continue;
        }
        out.changes.push(Change {
            old: item
                .recorded
                .map(|(mode, id)| (mode, crate::git::index::raw_oid(&id))),
            new: Some((item.mode, crate::git::index::raw_oid(&id))),
            stat: Some(item.stat),
            path: item.path,
        });
    }
    Ok(())
}

/// Takes a moment on the workspace's file system, as a file created now records it: a file
/// created or changed after this call has a change time at or after it.
pub fn now(ws: &Workspace) -> GitResult<FsTime> {
    let name = format!(".streams-now-{}", std::process::id());
    let marker = ws.path.join(&name);
    // Made beneath the workspace: whatever the agent left under that name (a link) is removed,
    // never written through.
    let meta = crate::beneath::Dir::open(&ws.path).and_then(|dir| {
        dir.remove(&name)?;
        let meta = dir.create_new(&name).and_then(|file| file.metadata());
        let _ = dir.remove(&name);
        meta
    });
    let meta = meta.map_err(|e| super::io_error("mark", &marker, e))?;
    Ok(fs_time(&meta))
}

/// A moment strictly after everything written before this call, on the workspace's file
/// system: waits (a few milliseconds at most, on a file system whose clock ticks coarsely) for
/// its clock to move past the first mark.
pub fn after_now(ws: &Workspace) -> GitResult<FsTime> {
    let first = now(ws)?;
    let deadline = std::time::Instant::now() + std::time::Duration::from_millis(50);
    loop {
        let next = now(ws)?;
        if next > first || std::time::Instant::now() > deadline {
            return Ok(next);
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

/// Writes `read`'s findings into the record (as the files are now) and, when `at` is given,
/// says the record describes that commit; then a new boundary. Only for files that are the
/// work of a commit streams keeps (the task's end), or that were found as recorded.
pub(super) fn update_record(ws: &Workspace, read: &Read, at: Option<&str>) -> GitResult<()> {
    let clock = std::time::Instant::now();
    let updates = read.updates();
    if !updates.is_empty() {
        let index = ws.control.index();
        match &read.record {
            Some(entries) => index::write(&index, &index::merged(entries, &updates))?,
            None => index::update(&index, &updates)?,
        }
    }
    tracing::debug!(
        "record of {} written: {} updates, {:.1} ms",
        ws.path.display(),
        updates.len(),
        ms(clock.elapsed())
    );
    if let Some(at) = at {
        ws.control.set_at(at)?;
    }
    mark_boundary(ws)
}

/// Records the boundary: every file's `lstat` in the record was taken before this moment
/// (strictly: a file written in the same tick of a coarse clock is not vouched for by it).
pub(super) fn mark_boundary(ws: &Workspace) -> GitResult<()> {
    let (s, n) = after_now(ws)?;
    let path = ws.control.dir().join(BOUNDARY_FILE);
    std::fs::write(&path, format!("{s} {n}\n")).map_err(|e| super::io_error("mark", &path, e))
}

/// Forgets the boundary: until the next one, every file is read (the record may not say
/// what the files hold, while streams changes them).
pub(super) fn forget_boundary(ws: &Workspace) {
    let _ = std::fs::remove_file(ws.control.dir().join(BOUNDARY_FILE));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracked_dirs_lists_every_ancestor() {
        let entry = |p: &str| Entry {
            path: p.as_bytes().to_vec(),
            id: [0; 20],
            mode: 0o100644,
            stat: FileStat::default(),
            skip_worktree: false,
        };
        let dirs = tracked_dirs(&[entry("a/b/c.txt"), entry("a/d.txt"), entry("e.txt")]);
        let mut dirs: Vec<String> = dirs
            .into_iter()
            .map(|d| String::from_utf8(d).unwrap())
            .collect();
        dirs.sort();
        assert_eq!(dirs, ["a", "a/b"]);
    }

    #[test]
    fn oids_round_trip_through_bytes() {
        let oid = Oid::from("587be6b4c3f93f93c489c0111bba5596147a26cb");
        let bytes = git2_bytes(&oid).unwrap();
        assert_eq!(crate::git::index::raw_oid(&bytes), oid);
    }
}
