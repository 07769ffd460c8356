//! Index files streams reads and writes itself: the record of a workspace's tracked files (the
//! blob each path holds and the file's `lstat` when streams or its own git last wrote or read
//! it). The record lives outside the workspace, so the agent cannot edit it; the workspace's
//! own `.git/index` is only a copy handed to the agent.
//!
//! Read and written with libgit2 in process; callers see plain data ([`Entry`], [`FileStat`]).

use std::path::Path;

use super::{GitError, GitResult, Oid};

/// What `lstat` said of a file, as an index keeps it (git truncates `ino` and `size` to 32
/// bits, and so does this type, so that a record git wrote and one streams wrote compare).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FileStat {
    pub ctime: (i64, u32),
    pub mtime: (i64, u32),
    pub dev: u32,
    pub ino: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u32,
}

impl FileStat {
    pub fn of(meta: &std::fs::Metadata) -> FileStat {
        use std::os::unix::fs::MetadataExt;
        FileStat {
            ctime: (meta.ctime(), meta.ctime_nsec() as u32),
            mtime: (meta.mtime(), meta.mtime_nsec() as u32),
            dev: meta.dev() as u32,
            ino: meta.ino() as u32,
            uid: meta.uid(),
            gid: meta.gid(),
            size: meta.size() as u32,
        }
    }
}

/// One path of a record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub path: Vec<u8>,
    /// The blob (or, for a gitlink, the commit) the path holds.
    pub id: [u8; 20],
    /// git's mode: `0o100644`, `0o100755`, `0o120000`, `0o160000`.
    pub mode: u32,
    pub stat: FileStat,
    /// Outside a sparse workspace's set: not in the work tree.
    pub skip_worktree: bool,
}

impl Entry {
    pub fn oid(&self) -> Oid {
        raw_oid(&self.id)
    }
}

pub(crate) fn raw_oid(id: &[u8; 20]) -> Oid {
    git2::Oid::from_bytes(id).map(Oid::from).unwrap_or_default()
}

/// `GIT_INDEX_ENTRY_SKIP_WORKTREE` in an entry's extended flags.
const SKIP_WORKTREE: u16 = 1 << 14;
/// The stage bits of an entry's flags (non-zero: a conflict).
const STAGE_MASK: u16 = 0x3000;

fn open(path: &Path) -> GitResult<git2::Index> {
    git2::Index::open(path)
        .map_err(|e| GitError::library(format!("could not read the index {}", path.display()), e))
}

/// Every stage-0 entry of the index at `path`, sorted by path as git keeps them; an absent
/// file is an empty record.
pub fn read(path: &Path) -> GitResult<Vec<Entry>> {
    if !path.exists() {
        return Ok(Vec::new());
    }
    let index = open(path)?;
    Ok(index
        .iter()
        .filter(|e| e.flags & STAGE_MASK == 0)
        .map(|e| Entry {
            id: e.id.as_bytes().try_into().unwrap_or([0; 20]),
            mode: e.mode,
            stat: FileStat {
                ctime: (e.ctime.seconds() as i64, e.ctime.nanoseconds()),
                mtime: (e.mtime.seconds() as i64, e.mtime.nanoseconds()),
                dev: e.dev,
                ino: e.ino,
                uid: e.uid,
                gid: e.gid,
                size: e.file_size,
            },
            skip_worktree: e.flags_extended & SKIP_WORKTREE != 0,
            path: e.path,
        })
        .collect())
}

/// The paths with a conflict (an entry at stage 1, 2 or 3) in the index at `path`: an agent's
/// merge left unresolved. Unreadable or absent: none.
pub fn conflicted(path: &Path) -> Vec<String> {
    let Ok(index) = git2::Index::open(path) else {
        return Vec::new();
    };
    let mut paths: Vec<String> = index
        .iter()
        .filter(|e| e.flags & STAGE_MASK != 0)
        .map(|e| String::from_utf8_lossy(&e.path).into_owned())
        .collect();
    paths.dedup();
    paths
}

/// A change to a record: the path now holds `id` with `mode`, as `stat` says (a file streams
/// just read), or (`None`) it is gone.
#[derive(Clone, Debug)]
pub struct Update {
    pub path: Vec<u8>,
    pub now: Option<(u32, [u8; 20], FileStat)>,
}

/// Applies `updates` to the index at `path` and writes it (atomically, as libgit2 does: a lock
/// file renamed). Entries not named keep what they had, their stat data included.
pub fn update(path: &Path, updates: &[Update]) -> GitResult<()> {
    if updates.is_empty() {
        return Ok(());
    }
    let mut index = open(path)?;
    let fail = |e| GitError::library(format!("could not update the index {}", path.display()), e);
    for update in updates {
        let rel =
            Path::new(<std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(&update.path));
        match &update.now {
            None => match index.remove_path(rel) {
                Ok(()) => {}
                Err(e) if e.code() == git2::ErrorCode::NotFound => {}
                Err(e) => return Err(fail(e)),
            },
            Some((mode, id, stat)) => {
                let entry = git2::IndexEntry {
                    ctime: git2::IndexTime::new(stat.ctime.0 as i32, stat.ctime.1),
                    mtime: git2::IndexTime::new(stat.mtime.0 as i32, stat.mtime.1),
                    dev: stat.dev,
                    ino: stat.ino,
                    mode: *mode,
                    uid: stat.uid,
                    gid: stat.gid,
                    file_size: stat.size,
                    id: git2::Oid::from_bytes(id).map_err(fail)?,
                    // The path's length, capped as git caps it; no stage, not skipped (a file
                    // streams read is in the work tree).
                    flags: update.path.len().min(0xfff) as u16,
                    flags_extended: 0,
                    path: update.path.clone(),
                };
                index.add(&entry).map_err(fail)?;
            }
        }
    }
    index.write().map_err(fail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_reads_back_what_was_written() {
        let dir = tempfile::tempdir().unwrap();
        let index_path = dir.path().join("index");
        git2::Index::open(&index_path).unwrap().write().unwrap();
        let stat = FileStat {
            ctime: (1_700_000_000, 5),
            mtime: (1_700_000_001, 6),
            dev: 1,
            ino: 42,
            uid: 0,
            gid: 0,
            size: 3,
        };
        let id = [7u8; 20];
        update(
            &index_path,
            &[
                Update {
                    path: b"b/x.txt".to_vec(),
                    now: Some((0o100644, id, stat)),
                },
                Update {
                    path: b"a.txt".to_vec(),
                    now: Some((0o100755, id, stat)),
                },
            ],
        )
        .unwrap();
        let entries = read(&index_path).unwrap();
        assert_eq!(
            entries
                .iter()
                .map(|e| e.path.as_slice())
                .collect::<Vec<_>>(),
            [b"a.txt".as_slice(), b"b/x.txt"]
        );
        assert_eq!(entries[1].stat, stat);
        assert_eq!(entries[0].mode, 0o100755);
        update(
            &index_path,
            &[Update {
                path: b"a.txt".to_vec(),
                now: None,
            }],
        )
        .unwrap();
        assert_eq!(read(&index_path).unwrap().len(), 1);
        assert!(read(&dir.path().join("absent")).unwrap().is_empty());
    }
}
