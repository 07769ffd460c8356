//! Index files streams reads and writes itself: the record of a workspace's tracked files (the
//! blob each path holds and the file's `lstat` when streams or its own git last wrote or read
//! it). The record lives outside the workspace, so the agent cannot edit it; the workspace's
//! own `.git/index` is only a copy handed to the agent.
//!
//! Read and written in process by streams itself (git's index format, versions 2 to 4 read,
//! 2 or 3 written, no extensions): a record is read once per task and written once, and at
//! 100,000 entries libgit2's index (its map of every path, its checks on every entry added)
//! cost 0.3-0.75 s to load and 0.6 s to write under load, against 0.06-0.12 s and 0.06-0.26 s
//! for this plain parse and write. Callers see plain data ([`Entry`], [`FileStat`]).

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

impl FileStat {
    /// From `lstat`'s own structure (as `fstatat` returns it).
    pub fn of_stat(st: &nix::sys::stat::FileStat) -> FileStat {
        FileStat {
            ctime: (st.st_ctime, st.st_ctime_nsec as u32),
            mtime: (st.st_mtime, st.st_mtime_nsec as u32),
            dev: st.st_dev as u32,
            ino: st.st_ino as u32,
            uid: st.st_uid,
            gid: st.st_gid,
            size: st.st_size as u32,
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

/// `CE_EXTENDED` in an entry's flags: extended flags follow (index version 3 and up).
const EXTENDED: u16 = 0x4000;
/// `CE_SKIP_WORKTREE` in an entry's extended flags.
const SKIP_WORKTREE: u16 = 1 << 14;
/// The stage bits of an entry's flags (non-zero: a conflict).
const STAGE_MASK: u16 = 0x3000;
/// The name-length bits of an entry's flags (`0xfff`: the name is at least that long).
const NAME_MASK: u16 = 0x0fff;
/// An entry's fixed part: ten 32-bit stat and mode fields, the id, the flags.
const FIXED: usize = 40 + 20 + 2;
/// The header: `DIRC`, the version, the number of entries.
const HEADER: usize = 12;

fn damaged(path: &Path, what: impl std::fmt::Display) -> GitError {
    GitError::Library {
        context: format!("could not read the index {}", path.display()),
        message: what.to_string(),
    }
}

/// One entry as the file holds it, stage included.
struct Raw {
    entry: Entry,
    stage: u16,
}

/// Parses an index file (versions 2, 3 and 4; extensions skipped, the trailing checksum not
/// checked: the file is streams' own, or only looked into).
fn parse(path: &Path, bytes: &[u8]) -> GitResult<Vec<Raw>> {
    let bad = |what: &str| damaged(path, what);
    if bytes.len() < HEADER + 20 || &bytes[..4] != b"DIRC" {
        return Err(bad("not an index file"));
    }
    let be32 = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap_or([0; 4]));
    let version = be32(4);
    if !(2..=4).contains(&version) {
        return Err(bad(&format!("index version {version}")));
    }
    let count = be32(8) as usize;
    let end = bytes.len() - 20;
    let mut at = HEADER;
    let mut out = Vec::with_capacity(count.min(end / FIXED));
    let mut previous: Vec<u8> = Vec::new();
    for _ in 0..count {
        if at + FIXED > end {
            return Err(bad("truncated"));
        }
        let field = |i: usize| be32(at + 4 * i);
        let stat = FileStat {
            ctime: (field(0) as i64, field(1)),
            mtime: (field(2) as i64, field(3)),
            dev: field(4),
            ino: field(5),
            uid: field(7),
            gid: field(8),
            size: field(9),
        };
        let mode = field(6);
        let id: [u8; 20] = bytes[at + 40..at + 60].try_into().unwrap_or([0; 20]);
        let flags = u16::from_be_bytes([bytes[at + 60], bytes[at + 61]]);
        let mut pos = at + FIXED;
        let mut extended = 0u16;
        if flags & EXTENDED != 0 {
            if version < 3 || pos + 2 > end {
                return Err(bad("extended flags"));
            }
            extended = u16::from_be_bytes([bytes[pos], bytes[pos + 1]]);
            pos += 2;
        }
        let path_bytes = if version == 4 {
            // The name is the previous one with `strip` bytes cut off its end, then a suffix.
            let (strip, used) = varint(&bytes[pos..end]).ok_or_else(|| bad("name prefix"))?;
            pos += used;
            let nul = bytes[pos..end]
                .iter()
                .position(|b| *b == 0)
                .ok_or_else(|| bad("name"))?;
            let keep = previous
                .len()
                .checked_sub(strip as usize)
                .ok_or_else(|| bad("name prefix"))?;
            let mut name = previous[..keep].to_vec();
            name.extend_from_slice(&bytes[pos..pos + nul]);
            at = pos + nul + 1;
            name
        } else {
            let nul = bytes[pos..end]
                .iter()
                .position(|b| *b == 0)
                .ok_or_else(|| bad("name"))?;
            let name = bytes[pos..pos + nul].to_vec();
            // Padded with 1 to 8 NULs to a multiple of 8 bytes from the entry's start.
            let len = pos + nul - at;
            at += (len + 8) & !7;
            name
        };
        previous.clone_from(&path_bytes);
        out.push(Raw {
            stage: flags & STAGE_MASK,
            entry: Entry {
                path: path_bytes,
                id,
                mode,
                stat,
                skip_worktree: extended & SKIP_WORKTREE != 0,
            },
        });
    }
    Ok(out)
}

/// git's varint of index version 4 (`decode_varint`): the value and the bytes it took.
fn varint(bytes: &[u8]) -> Option<(u64, usize)> {
    let mut used = 0;
    let mut c = *bytes.first()?;
    used += 1;
    let mut value = u64::from(c & 127);
    while c & 128 != 0 {
        value = value.checked_add(1)?;
        if value >> 57 != 0 {
            return None;
        }
        c = *bytes.get(used)?;
        used += 1;
        value = (value << 7) + u64::from(c & 127);
    }
    Some((value, used))
}

fn read_raw(path: &Path) -> GitResult<Vec<Raw>> {
    let bytes = std::fs::read(path).map_err(|e| damaged(path, e))?;
    parse(path, &bytes)
}

/// Every stage-0 entry of the index at `path`, sorted by path as git keeps them; an absent
/// file is an empty record.
pub fn read(path: &Path) -> GitResult<Vec<Entry>> {
    if !path.exists() {
        return Ok(Vec::new());
    }
    Ok(read_raw(path)?
        .into_iter()
        .filter(|r| r.stage == 0)
        .map(|r| r.entry)
        .collect())
}

/// The paths with a conflict (an entry at stage 1, 2 or 3) in the index at `path`: an agent's
/// merge left unresolved. Unreadable or absent: none.
pub fn conflicted(path: &Path) -> Vec<String> {
    let Ok(raw) = read_raw(path) else {
        return Vec::new();
    };
    let mut paths: Vec<String> = raw
        .iter()
        .filter(|r| r.stage != 0)
        .map(|r| String::from_utf8_lossy(&r.entry.path).into_owned())
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

/// `entries` (sorted by path) with `updates` applied, sorted by path. Entries not named keep
/// what they had, their stat data included; a path an update sets is in the work tree (not
/// skipped).
pub fn merged(entries: &[Entry], updates: &[Update]) -> Vec<Entry> {
    let mut updates: Vec<&Update> = updates.iter().collect();
    updates.sort_by(|a, b| a.path.cmp(&b.path));
    updates.dedup_by(|later, earlier| {
        // The last update of a path wins.
        if later.path == earlier.path {
            std::mem::swap(later, earlier);
            true
        } else {
            false
        }
    });
    let mut out = Vec::with_capacity(entries.len() + updates.len());
    let mut old = entries.iter().peekable();
    for update in updates {
        while let Some(entry) = old.next_if(|e| e.path < update.path) {
            out.push(entry.clone());
        }
        old.next_if(|e| e.path == update.path);
        if let Some((mode, id, stat)) = &update.now {
            out.push(Entry {
                path: update.path.clone(),
                id: *id,
                mode: *mode,
                stat: *stat,
                skip_worktree: false,
            });
        }
    }
    out.extend(old.cloned());
    out
}

/// Applies `updates` to the index at `path` and writes it (see [`write`]).
pub fn update(path: &Path, updates: &[Update]) -> GitResult<()> {
    if updates.is_empty() {
        return Ok(());
    }
    write(path, &merged(&read(path)?, updates))
}

/// Writes `entries` (sorted by path, stage 0) as the index at `path`: version 2, or 3 when an
/// entry is skipped; no extensions (git rebuilds its caches). Replaced whole, never truncated:
/// written beside it, then renamed over it (a crash leaves the old record or the new one).
pub fn write(path: &Path, entries: &[Entry]) -> GitResult<()> {
    let fail = |e: std::io::Error| GitError::Library {
        context: format!("could not write the index {}", path.display()),
        message: e.to_string(),
    };
    let version: u32 = if entries.iter().any(|e| e.skip_worktree) {
        3
    } else {
        2
    };
    let mut bytes = Vec::with_capacity(HEADER + entries.len() * (FIXED + 2 + 48) + 20);
    bytes.extend_from_slice(b"DIRC");
    bytes.extend_from_slice(&version.to_be_bytes());
    bytes.extend_from_slice(&(entries.len() as u32).to_be_bytes());
    for e in entries {
        let start = bytes.len();
        let s = &e.stat;
        for field in [
            s.ctime.0 as u32,
            s.ctime.1,
            s.mtime.0 as u32,
            s.mtime.1,
            s.dev,
            s.ino,
            e.mode,
            s.uid,
            s.gid,
            s.size,
        ] {
            bytes.extend_from_slice(&field.to_be_bytes());
        }
        bytes.extend_from_slice(&e.id);
        let mut flags = e.path.len().min(NAME_MASK as usize) as u16;
        if e.skip_worktree {
            flags |= EXTENDED;
        }
        bytes.extend_from_slice(&flags.to_be_bytes());
        if e.skip_worktree {
            bytes.extend_from_slice(&SKIP_WORKTREE.to_be_bytes());
        }
        bytes.extend_from_slice(&e.path);
        let len = bytes.len() - start;
        bytes.resize(start + ((len + 8) & !7), 0);
    }
    let checksum: [u8; 20] = <sha1::Sha1 as sha1::Digest>::digest(&bytes).into();
    bytes.extend_from_slice(&checksum);
    let lock = path.with_extension("streams-tmp");
    let written = (|| {
        let mut file = std::fs::File::create(&lock)?;
        std::io::Write::write_all(&mut file, &bytes)?;
        drop(file);
        std::fs::rename(&lock, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&lock);
    }
    written.map_err(fail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_reads_back_what_was_written() {
        let dir = tempfile::tempdir().unwrap();
        let index_path = dir.path().join("index");
        write(&index_path, &[]).unwrap();
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

    fn git(dir: &Path, index: &Path, args: &[&str]) -> String {
        let out = std::process::Command::new("git")
            .args(args)
            .current_dir(dir)
            .env("GIT_DIR", dir.join("repo.git"))
            .env("GIT_INDEX_FILE", index)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    #[test]
    fn git_reads_what_streams_writes_and_streams_reads_every_version_git_writes() {
        let dir = tempfile::tempdir().unwrap();
        git2::Repository::init_bare(dir.path().join("repo.git")).unwrap();
        let index = dir.path().join("index");
        let stat = |n: u32| FileStat {
            ctime: (1_700_000_000 + i64::from(n), n),
            mtime: (1_700_000_000, 7),
            dev: 3,
            ino: 100 + n,
            uid: 0,
            gid: 0,
            size: n,
        };
        let id = blob_id_of(b"x\n");
        // Names around the 8-byte padding, a long one, and one outside a sparse set.
        let long = format!("d/{}", "n".repeat(300));
        let names = ["a", "ab/cdefgh", "ab/cdefghi", long.as_str(), "z/skipped"];
        let entries: Vec<Entry> = names
            .iter()
            .enumerate()
            .map(|(i, name)| Entry {
                path: name.as_bytes().to_vec(),
                id,
                mode: 0o100644,
                stat: stat(i as u32),
                skip_worktree: *name == "z/skipped",
            })
            .collect();
        write(&index, &entries).unwrap();
        // Its checksum is the SHA-1 of what precedes it (as coreutils computes it), which
        // `git fsck` and libgit2 verify.
        let bytes = std::fs::read(&index).unwrap();
        let (body, trailer) = bytes.split_at(bytes.len() - 20);
        let mut sum = std::process::Command::new("sha1sum")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(&mut sum.stdin.take().unwrap(), body).unwrap();
        let sum = String::from_utf8(sum.wait_with_output().unwrap().stdout).unwrap();
        let hex: String = trailer.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(sum.split_whitespace().next(), Some(hex.as_str()));
        let listed = git(dir.path(), &index, &["ls-files", "-s", "-t"]);
        assert_eq!(listed.lines().count(), names.len(), "{listed}");
        assert!(listed.contains("S 100644 587be6b4c3f93f93c489c0111bba5596147a26cb 0\tz/skipped"));
        assert_eq!(read(&index).unwrap(), entries);
        for version in ["2", "3", "4"] {
            git(
                dir.path(),
                &index,
                &["update-index", "--index-version", version],
            );
            let back = read(&index).unwrap();
            let paths = |e: &[Entry]| e.iter().map(|e| e.path.clone()).collect::<Vec<_>>();
            assert_eq!(paths(&back), paths(&entries), "version {version}");
            assert_eq!(back[3].stat, entries[3].stat, "version {version}");
            assert!(back[4].skip_worktree, "version {version}");
        }
    }

    fn blob_id_of(bytes: &[u8]) -> [u8; 20] {
        git2::Oid::hash_object(git2::ObjectType::Blob, bytes)
            .unwrap()
            .as_bytes()
            .try_into()
            .unwrap()
    }

    #[test]
    fn updates_merge_into_entries_by_path_the_last_winning() {
        let entry = |p: &str| Entry {
            path: p.as_bytes().to_vec(),
            id: [1; 20],
            mode: 0o100644,
            stat: FileStat::default(),
            skip_worktree: true,
        };
        let set = |p: &str, n: u8| Update {
            path: p.as_bytes().to_vec(),
            now: Some((0o100755, [n; 20], FileStat::default())),
        };
        let gone = |p: &str| Update {
            path: p.as_bytes().to_vec(),
            now: None,
        };
        let out = merged(
            &[entry("a"), entry("c"), entry("e")],
            &[
                set("d", 2),
                gone("c"),
                set("a", 3),
                set("a", 4),
                set("f", 5),
            ],
        );
        let got: Vec<(String, u8, bool)> = out
            .iter()
            .map(|e| {
                (
                    String::from_utf8_lossy(&e.path).into_owned(),
                    e.id[0],
                    e.skip_worktree,
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("a".to_string(), 4, false),
                ("d".to_string(), 2, false),
                ("e".to_string(), 1, true),
                ("f".to_string(), 5, false),
            ]
        );
    }
}
