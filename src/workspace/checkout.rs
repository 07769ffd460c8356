//! Moving a workspace's tracked files from one commit to another in process: only the paths
//! whose content differs between the two trees are touched (the trees compared by walking down
//! only the subtrees whose ids differ), each written from the user's object store beneath the
//! workspace (never through a link), and the record updated from the `lstat` of what was
//! written. No git process runs and no pass over every file is made: a reused workspace moved on
//! to a new start by one file costs one file.
//!
//! It declines (the caller then runs git's checkout through the control directory) whenever git
//! would do something it does not: a sparse workspace, a path a smudge filter or line-ending rule
//! may apply to (the user's rules, the new commit's attribute files), a gitlink; and whenever
//! something stands in the way: a file it would overwrite or remove that is not as recorded
//! (its `lstat`, changed before the record's boundary: the same evidence the reader takes), or
//! anything at a path the new commit adds. Declining is decided before anything is written.

use std::collections::HashSet;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use super::read::{self, Record};
use super::{Workspace, io_error};
use crate::beneath::{self, Kind};
use crate::git::hash::{Conversion, Store};
use crate::git::index::{self, FileStat, Update};
use crate::git::tree::{self, GITLINK_MODE};
use crate::git::{GitResult, Repo};

/// What a move did, for the log and the tests that count it.
#[derive(Debug, Default)]
pub(super) struct Moved {
    pub written: usize,
    pub removed: usize,
}

/// Moves the files of `ws` from what `record` describes to commit `to` (whose tree is `to_tree`)
/// and writes the record (with `also`, updates a read just found, applied first). `Ok(None)`:
/// declined, nothing written (see the module docs). An error after the first write leaves the
/// workspace part way: the caller sets it aside.
pub(super) fn move_to(
    repo: &Repo,
    ws: &Workspace,
    record: &Record,
    also: &[Update],
    to: &str,
    to_tree: &str,
) -> GitResult<Option<Moved>> {
    let clock = std::time::Instant::now();
    let Some(boundary) = record.boundary else {
        return Ok(None);
    };
    if ws.control.sparse_file().exists() || record.entries.iter().any(|e| e.skip_worktree) {
        return Ok(None);
    }
    let deltas = tree::diff(repo, Some(&record.tree), Some(to_tree))?;
    let mut conversion = Conversion::new(repo, to_tree)?;
    let refreshed: HashSet<&[u8]> = also
        .iter()
        .filter(|u| u.now.is_some())
        .map(|u| u.path.as_slice())
        .collect();
    let root = beneath::Dir::open(ws.path()).map_err(|e| io_error("check out", ws.path(), e))?;
    let removed: HashSet<&[u8]> = deltas
        .iter()
        .filter(|d| d.old.is_some())
        .map(|d| d.path.as_slice())
        .collect();
    for delta in &deltas {
        let gitlink = |c: &tree::Content| c.as_ref().is_some_and(|(m, _)| *m == GITLINK_MODE);
        if gitlink(&delta.old) || gitlink(&delta.new) {
            return Ok(None);
        }
        if delta.new.is_some() && conversion.may_apply(&delta.path) {
            return Ok(None);
        }
        let rel = Path::new(OsStr::from_bytes(&delta.path));
        match &delta.old {
            Some((mode, id)) => {
                // Tracked: as recorded, or declined.
                let Ok(i) = record
                    .entries
                    .binary_search_by(|e| e.path.as_slice().cmp(&delta.path))
                else {
                    return Ok(None);
                };
                let entry = &record.entries[i];
                if entry.mode != *mode || entry.oid() != *id {
                    return Ok(None);
                }
                if refreshed.contains(delta.path.as_slice()) {
                    // Read just now and found as recorded (its new `lstat` in `also`).
                    continue;
                }
                let Ok(Some(now)) = root.lstat(rel) else {
                    return Ok(None);
                };
                let now = FileStat::of_stat(&now);
                let same = now.ctime == entry.stat.ctime
                    && now.ino == entry.stat.ino
                    && now.size == entry.stat.size
                    && now.ctime < boundary;
                if !same {
                    return Ok(None);
                }
            }
            None => {
                // Added: nothing there, and nothing but directories (or tracked files this
                // move removes) on the way.
                if !matches!(root.kind(rel), Ok(None)) {
                    return Ok(None);
                }
                let mut on_the_way = Vec::new();
                for name in rel.parent().into_iter().flat_map(Path::components) {
                    if !on_the_way.is_empty() {
                        on_the_way.push(b'/');
                    }
                    on_the_way.extend_from_slice(name.as_os_str().as_bytes());
                    let way = Path::new(OsStr::from_bytes(&on_the_way));
                    match root.kind(way) {
                        Ok(None | Some(Kind::Dir)) => {}
                        Ok(Some(Kind::File | Kind::Link))
                            if removed.contains(on_the_way.as_slice()) => {}
                        _ => return Ok(None),
                    }
                }
            }
        }
    }

    // Nothing stands in the way: from here on, the record no longer vouches for the files.
    read::forget_boundary(ws);
    let fail = |p: &[u8], e: std::io::Error| {
        io_error("check out", &ws.path().join(OsStr::from_bytes(p)), e)
    };
    let store = Store::open(repo)?;
    let mut updates: Vec<Update> = also.to_vec();
    let mut moved = Moved::default();
    // Removals first (a file may give way to a directory of the same name), deepest first, and
    // the directories they leave empty, as git does.
    for delta in deltas.iter().rev().filter(|d| d.old.is_some()) {
        let rel = Path::new(OsStr::from_bytes(&delta.path));
        root.remove(rel).map_err(|e| fail(&delta.path, e))?;
        if delta.new.is_none() {
            moved.removed += 1;
            updates.push(Update {
                path: delta.path.clone(),
                now: None,
            });
            let mut dir = rel.parent();
            while let Some(d) = dir.filter(|d| !d.as_os_str().is_empty()) {
                if !root.remove_empty_dir(d).unwrap_or(false) {
                    break;
                }
                dir = d.parent();
            }
        }
    }
    for delta in &deltas {
        let Some((mode, id)) = &delta.new else {
            continue;
        };
        let rel = Path::new(OsStr::from_bytes(&delta.path));
        let content = store.blob(id)?;
        let written = if *mode == 0o120000 {
            root.symlink(Path::new(OsStr::from_bytes(&content)), rel)
        } else {
            root.write_mode(rel, &content, *mode == 0o100755)
        };
        written.map_err(|e| fail(&delta.path, e))?;
        let stat = match root.lstat(rel) {
            Ok(Some(stat)) => FileStat::of_stat(&stat),
            Ok(None) => {
                let gone = std::io::Error::other("gone right after it was written");
                return Err(fail(&delta.path, gone));
            }
            Err(e) => return Err(fail(&delta.path, e)),
        };
        let raw = read::git2_bytes(id).unwrap_or([0; 20]);
        updates.push(Update {
            path: delta.path.clone(),
            now: Some((*mode, raw, stat)),
        });
        moved.written += 1;
    }
    index::write(
        &ws.control.index(),
        &index::merged(&record.entries, &updates),
    )?;
    ws.control.set_at(to)?;
    tracing::debug!(
        "moved {} to {to} in process: {} written, {} removed, {:.1} ms",
        ws.path().display(),
        moved.written,
        moved.removed,
        clock.elapsed().as_secs_f64() * 1000.0
    );
    Ok(Some(moved))
}
