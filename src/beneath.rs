//! Writing beneath a directory without following links: the one way streams writes into a
//! workspace.
//!
//! A workspace is its agent's: any directory in it may since have become a symbolic link to a
//! place outside (`secrets -> /home/me/.ssh`), and a write that resolves its path the usual way
//! lands there. Through a [`Dir`], a path is resolved one component at a time from a directory
//! already open, each component opened with `O_NOFOLLOW` (and `O_DIRECTORY` on the way), so no
//! link is followed anywhere in the path and a link swapped in meanwhile changes nothing: the
//! guarantee of `openat2` with `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS`, on every kernel, with
//! directories created on the way. `..`, absolute and empty paths are refused. A file is
//! replaced by writing a temporary file beside it and renaming it over the name, so nothing is
//! ever written through what is there (a link, or a hard link to a file elsewhere); removing
//! removes a link itself, never what it points at.
//!
//! Reads of what an agent left are another matter (see `workspace`); this is for what streams
//! puts there.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, openat, renameat};
use nix::sys::stat::{Mode, SFlag, fstatat, mkdirat};
use nix::unistd::{UnlinkatFlags, symlinkat, unlinkat};

/// How a directory is opened on the way: never through a link.
const DIR: OFlag = OFlag::O_DIRECTORY
    .union(OFlag::O_NOFOLLOW)
    .union(OFlag::O_CLOEXEC)
    .union(OFlag::O_RDONLY);

/// A directory open for writing beneath it.
#[derive(Debug)]
pub struct Dir {
    fd: OwnedFd,
    /// For messages only: nothing is resolved through it.
    path: PathBuf,
}

/// What is at a path, the link itself when it is one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
    Link,
    Other,
}

/// How [`Dir::copy_in`] made its copy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Copied {
    /// Cloned copy-on-write (btrfs, XFS, APFS): no space taken until either side changes.
    Cloned,
    /// Copied byte by byte.
    Copied,
}

impl Dir {
    /// Opens `path`, which must be a directory and not a link. The way to it is streams' own
    /// (where workspaces live), so it is resolved as usual.
    pub fn open(path: &Path) -> io::Result<Dir> {
        let fd = nix::fcntl::open(path, DIR, Mode::empty()).map_err(|e| refused(e, path))?;
        Ok(Dir {
            fd,
            path: path.to_path_buf(),
        })
    }

    /// Where this directory was opened, for messages.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `path` (absolute, spelled from where this directory was opened) as a path relative to
    /// it, for the calls here; an error if it is not beneath.
    pub fn relative<'a>(&self, path: &'a Path) -> io::Result<&'a Path> {
        path.strip_prefix(&self.path)
            .map_err(|_| invalid(path, &format!("is not in {}", self.path.display())))
    }

    /// The directory `rel` beneath this one, which must be there.
    pub fn open_dir(&self, rel: impl AsRef<Path>) -> io::Result<Dir> {
        self.walk(&names(rel.as_ref())?, false)
    }

    /// The directory `rel` beneath this one, created with its parents where missing.
    pub fn create_dir_all(&self, rel: impl AsRef<Path>) -> io::Result<Dir> {
        self.walk(&names(rel.as_ref())?, true)
    }

    /// What is at `rel` (the link itself if it is one); `None`: nothing, or a directory on the
    /// way is missing. A link on the way is an error: nothing beneath it is this directory's.
    pub fn kind(&self, rel: impl AsRef<Path>) -> io::Result<Option<Kind>> {
        let (dir, name) = match self.parent(rel.as_ref(), false) {
            Ok(found) => found,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        dir.kind_of(name)
    }

    /// The bytes of the file `rel` (a link is refused).
    pub fn read(&self, rel: impl AsRef<Path>) -> io::Result<Vec<u8>> {
        let (dir, name) = self.parent(rel.as_ref(), false)?;
        let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let fd = openat(&dir.fd, name, flags, Mode::empty()).map_err(|e| dir.refused(e, name))?;
        let mut bytes = Vec::new();
        File::from(fd).read_to_end(&mut bytes)?;
        Ok(bytes)
    }

    /// Creates the file `rel` (and the directories on the way); an error if anything is there
    /// already, a link included.
    pub fn create_new(&self, rel: impl AsRef<Path>) -> io::Result<File> {
        let (dir, name) = self.parent(rel.as_ref(), true)?;
        dir.create_new_in(name)
    }

    /// Makes `rel` a file holding `bytes`, whatever file or link was there (replaced, never
    /// written through); the directories on the way are created.
    pub fn write(&self, rel: impl AsRef<Path>, bytes: &[u8]) -> io::Result<()> {
        let (dir, name) = self.parent(rel.as_ref(), true)?;
        dir.replace(name, bytes, 0o666)
    }

    /// [`Self::write`], the file executable (mode `0777` less the umask, as git checks an
    /// executable file out) when `executable`.
    pub fn write_mode(
        &self,
        rel: impl AsRef<Path>,
        bytes: &[u8],
        executable: bool,
    ) -> io::Result<()> {
        let (dir, name) = self.parent(rel.as_ref(), true)?;
        dir.replace(name, bytes, if executable { 0o777 } else { 0o666 })
    }

    /// `lstat` of `rel` (the link itself if it is one); `None`: nothing there, or a directory
    /// on the way is missing. A link on the way is an error.
    pub fn lstat(&self, rel: impl AsRef<Path>) -> io::Result<Option<nix::sys::stat::FileStat>> {
        let (dir, name) = match self.parent(rel.as_ref(), false) {
            Ok(found) => found,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        match fstatat(&dir.fd, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(stat) => Ok(Some(stat)),
            Err(Errno::ENOENT) => Ok(None),
            Err(e) => Err(dir.refused(e, name)),
        }
    }

    /// [`Self::write`], unless `rel` is a file holding `bytes` already. Returns whether it
    /// wrote.
    pub fn write_if_changed(&self, rel: impl AsRef<Path>, bytes: &[u8]) -> io::Result<bool> {
        let rel = rel.as_ref();
        if self.kind(rel)? == Some(Kind::File) && self.read(rel).is_ok_and(|b| b == bytes) {
            return Ok(false);
        }
        self.write(rel, bytes).map(|()| true)
    }

    /// Creates the link `rel` to `target` (written as given; never resolved by streams).
    pub fn symlink(&self, target: &Path, rel: impl AsRef<Path>) -> io::Result<()> {
        let (dir, name) = self.parent(rel.as_ref(), true)?;
        symlinkat(target, &dir.fd, name).map_err(|e| dir.refused(e, name))
    }

    /// Removes what is at `rel`: a file, a link (not what it points at), or a directory and
    /// everything in it. Nothing there is no error.
    pub fn remove(&self, rel: impl AsRef<Path>) -> io::Result<()> {
        match self.parent(rel.as_ref(), false) {
            Ok((dir, name)) => dir.remove_entry(name),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Removes the directory `rel` if it is empty; whether it did (a directory with anything
    /// in it, a file, a link or nothing there is left as it is).
    pub fn remove_empty_dir(&self, rel: impl AsRef<Path>) -> io::Result<bool> {
        let (dir, name) = match self.parent(rel.as_ref(), false) {
            Ok(found) => found,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(e),
        };
        if dir.kind_of(name)? != Some(Kind::Dir) {
            return Ok(false);
        }
        match unlinkat(&dir.fd, name, UnlinkatFlags::RemoveDir) {
            Ok(()) => Ok(true),
            Err(Errno::ENOTEMPTY | Errno::EEXIST | Errno::ENOENT | Errno::ENOTDIR) => Ok(false),
            Err(e) => Err(dir.refused(e, name)),
        }
    }

    /// The names in the directory `rel` (`""` for this one).
    pub fn names(&self, rel: impl AsRef<Path>) -> io::Result<Vec<OsString>> {
        let rel = rel.as_ref();
        let dir = if rel.as_os_str().is_empty() {
            self.reopen()?
        } else {
            self.open_dir(rel)?
        };
        dir.entries()
    }

    /// Copies the file `from` (read the usual way: it is not in the workspace) to `rel`, a new
    /// file, with its permissions: cloned copy-on-write where the file system can.
    pub fn copy_in(&self, from: &Path, rel: impl AsRef<Path>) -> io::Result<Copied> {
        let mut source = File::open(from)?;
        let permissions = source.metadata()?.permissions();
        let (dir, name) = self.parent(rel.as_ref(), true)?;
        let mut copy = dir.create_new_in(name)?;
        let copied = (|| {
            let how = if reflink_copy::reflink_file(&source, &copy).is_ok() {
                Copied::Cloned
            } else {
                io::copy(&mut source, &mut copy)?;
                Copied::Copied
            };
            copy.set_permissions(permissions)?;
            Ok(how)
        })();
        if copied.is_err() {
            let _ = unlinkat(&dir.fd, name, UnlinkatFlags::NoRemoveDir);
        }
        copied
    }

    /// Down `names` from here, creating what is missing when `create`.
    fn walk(&self, names: &[&OsStr], create: bool) -> io::Result<Dir> {
        let mut dir = self.reopen()?;
        for name in names {
            dir = dir.child(name, create)?;
        }
        Ok(dir)
    }

    /// The directory that holds `rel` (created when `create`), and `rel`'s last name.
    fn parent<'a>(&self, rel: &'a Path, create: bool) -> io::Result<(Dir, &'a OsStr)> {
        let names = names(rel)?;
        let (last, on_the_way) = names
            .split_last()
            .ok_or_else(|| invalid(rel, "names no file"))?;
        Ok((self.walk(on_the_way, create)?, last))
    }

    /// This directory, opened again (its own position for listing).
    fn reopen(&self) -> io::Result<Dir> {
        let fd = openat(&self.fd, ".", DIR, Mode::empty()).map_err(|e| refused(e, &self.path))?;
        Ok(Dir {
            fd,
            path: self.path.clone(),
        })
    }

    fn child(&self, name: &OsStr, create: bool) -> io::Result<Dir> {
        let open = || openat(&self.fd, name, DIR, Mode::empty());
        let fd = match open() {
            Err(Errno::ENOENT) if create => {
                match mkdirat(&self.fd, name, Mode::from_bits_truncate(0o777)) {
                    Ok(()) | Err(Errno::EEXIST) => {}
                    Err(e) => return Err(self.refused(e, name)),
                }
                open()
            }
            opened => opened,
        };
        Ok(Dir {
            fd: fd.map_err(|e| self.refused(e, name))?,
            path: self.path.join(name),
        })
    }

    fn kind_of(&self, name: &OsStr) -> io::Result<Option<Kind>> {
        match fstatat(&self.fd, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(stat) => Ok(Some(
                match SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT {
                    SFlag::S_IFREG => Kind::File,
                    SFlag::S_IFDIR => Kind::Dir,
                    SFlag::S_IFLNK => Kind::Link,
                    _ => Kind::Other,
                },
            )),
            Err(Errno::ENOENT) => Ok(None),
            Err(e) => Err(self.refused(e, name)),
        }
    }

    fn create_new_in(&self, name: &OsStr) -> io::Result<File> {
        self.create_new_mode(name, 0o666)
    }

    fn create_new_mode(&self, name: &OsStr, mode: u32) -> io::Result<File> {
        let flags =
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        openat(&self.fd, name, flags, Mode::from_bits_truncate(mode))
            .map(File::from)
            .map_err(|e| self.refused(e, name))
    }

    /// `name` replaced by a file holding `bytes`: written under a temporary name, renamed over.
    fn replace(&self, name: &OsStr, bytes: &[u8], mode: u32) -> io::Result<()> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let mut temp = OsString::from(".");
        temp.push(name);
        temp.push(format!(
            ".streams-{}-{}.tmp",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let written = self
            .create_new_mode(&temp, mode)
            .and_then(|mut file| file.write_all(bytes))
            .and_then(|()| {
                renameat(&self.fd, temp.as_os_str(), &self.fd, name)
                    .map_err(|e| self.refused(e, name))
            });
        if written.is_err() {
            let _ = unlinkat(&self.fd, temp.as_os_str(), UnlinkatFlags::NoRemoveDir);
        }
        written
    }

    fn remove_entry(&self, name: &OsStr) -> io::Result<()> {
        let removed = match self.kind_of(name)? {
            None => return Ok(()),
            Some(Kind::Dir) => {
                let inside = self.child(name, false)?;
                for entry in inside.entries()? {
                    inside.remove_entry(&entry)?;
                }
                unlinkat(&self.fd, name, UnlinkatFlags::RemoveDir)
            }
            Some(_) => unlinkat(&self.fd, name, UnlinkatFlags::NoRemoveDir),
        };
        match removed {
            Ok(()) | Err(Errno::ENOENT) => Ok(()),
            Err(e) => Err(self.refused(e, name)),
        }
    }

    fn entries(&self) -> io::Result<Vec<OsString>> {
        let fd = openat(&self.fd, ".", DIR, Mode::empty()).map_err(|e| refused(e, &self.path))?;
        let mut listing = nix::dir::Dir::from_fd(fd).map_err(|e| refused(e, &self.path))?;
        let mut names = Vec::new();
        for entry in listing.iter() {
            let entry = entry.map_err(|e| refused(e, &self.path))?;
            let name = entry.file_name().to_bytes();
            if name != b"." && name != b".." {
                names.push(OsStr::from_bytes(name).to_os_string());
            }
        }
        Ok(names)
    }

    fn refused(&self, errno: Errno, name: &OsStr) -> io::Error {
        refused(errno, &self.path.join(name))
    }
}

impl AsFd for Dir {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// The components of a relative path that stays beneath: `.` skipped; `..`, a root, or no
/// component at all refused.
fn names(rel: &Path) -> io::Result<Vec<&OsStr>> {
    rel.components()
        .filter(|c| *c != Component::CurDir)
        .map(|c| match c {
            Component::Normal(name) => Ok(name),
            _ => Err(invalid(rel, "does not stay beneath its directory")),
        })
        .collect()
}

fn invalid(rel: &Path, why: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("the path `{}` {why}", rel.display()),
    )
}

/// The error for a system call refused at `path`; a link met on the way (`O_NOFOLLOW` answers
/// ELOOP, or ENOTDIR for a link where a directory is wanted) says so.
fn refused(errno: Errno, path: &Path) -> io::Error {
    let is_link = matches!(errno, Errno::ELOOP | Errno::ENOTDIR)
        && std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
    if is_link {
        return io::Error::other(ThroughLink(path.to_path_buf()));
    }
    io::Error::from(errno)
}

/// The error of a path with a link where a directory, or the file itself, had to be.
#[derive(Debug)]
pub struct ThroughLink(pub PathBuf);

impl std::fmt::Display for ThroughLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} is a symbolic link: streams does not write through links in a workspace",
            self.0.display()
        )
    }
}

impl std::error::Error for ThroughLink {}

/// Whether `e` is a refusal to go through a link.
pub fn is_through_link(e: &io::Error) -> bool {
    e.get_ref().is_some_and(|inner| inner.is::<ThroughLink>())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn setup() -> (tempfile::TempDir, PathBuf, PathBuf) {
        let tmp = tempfile::tempdir().unwrap();
        let (root, outside) = (tmp.path().join("ws"), tmp.path().join("outside"));
        std::fs::create_dir_all(&root).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        (tmp, root, outside)
    }

    #[test]
    fn a_link_anywhere_on_the_way_is_never_followed() {
        let (_tmp, root, outside) = setup();
        symlink(&outside, root.join("secrets")).unwrap();
        std::fs::create_dir_all(root.join("a")).unwrap();
        symlink(&outside, root.join("a/b")).unwrap();
        let ws = Dir::open(&root).unwrap();
        for rel in ["secrets/key.env", "a/b/c/key.env"] {
            let e = ws.write(rel, b"KEY").unwrap_err();
            assert!(is_through_link(&e), "{e}");
            assert!(e.to_string().contains("is a symbolic link"), "{e}");
            assert!(ws.create_new(rel).is_err());
            assert!(ws.copy_in(&root.join("../ws"), rel).is_err());
            assert!(ws.kind(rel).is_err());
        }
        assert!(ws.create_dir_all("secrets/deeper").is_err());
        assert!(ws.names("secrets").is_err());
        assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
    }

    #[test]
    fn a_file_that_is_a_link_is_replaced_not_written_through() {
        let (_tmp, root, outside) = setup();
        std::fs::write(outside.join("victim"), "theirs").unwrap();
        symlink(outside.join("victim"), root.join("config")).unwrap();
        std::fs::hard_link(outside.join("victim"), root.join("hard")).unwrap();
        let ws = Dir::open(&root).unwrap();
        assert_eq!(ws.kind("config").unwrap(), Some(Kind::Link));
        assert!(ws.read("config").is_err());
        assert!(ws.write_if_changed("config", b"ours").unwrap());
        ws.write("hard", b"ours").unwrap();
        assert!(!ws.write_if_changed("hard", b"ours").unwrap());
        assert_eq!(
            std::fs::read_to_string(outside.join("victim")).unwrap(),
            "theirs"
        );
        assert_eq!(ws.read("config").unwrap(), b"ours");
        assert_eq!(ws.kind("config").unwrap(), Some(Kind::File));
        assert_eq!(ws.names("").unwrap().len(), 2, "no temporary file is left");
    }

    #[test]
    fn removing_takes_a_link_itself_and_a_directory_whole() {
        let (_tmp, root, outside) = setup();
        std::fs::write(outside.join("kept"), "x").unwrap();
        std::fs::create_dir_all(root.join("d/e")).unwrap();
        std::fs::write(root.join("d/e/f"), "x").unwrap();
        symlink(&outside, root.join("d/link")).unwrap();
        symlink(&outside, root.join("top")).unwrap();
        let ws = Dir::open(&root).unwrap();
        ws.remove("top").unwrap();
        ws.remove("d").unwrap();
        ws.remove("missing/too").unwrap();
        assert!(outside.join("kept").exists());
        assert_eq!(ws.names("").unwrap(), Vec::<OsString>::new());
    }

    #[test]
    fn directories_are_created_on_the_way_and_paths_must_stay_beneath() {
        let (_tmp, root, _outside) = setup();
        let ws = Dir::open(&root).unwrap();
        ws.write("a/b/c.txt", b"c").unwrap();
        assert_eq!(std::fs::read(root.join("a/b/c.txt")).unwrap(), b"c");
        ws.symlink(Path::new("c.txt"), "a/b/alias").unwrap();
        assert_eq!(ws.kind("a/b/alias").unwrap(), Some(Kind::Link));
        assert_eq!(ws.kind("a/nothing/here").unwrap(), None);
        assert!(ws.create_new("a/b/c.txt").is_err());
        for rel in ["../x", "/etc/x", "", "a/../../x"] {
            assert_eq!(
                ws.write(rel, b"x").unwrap_err().kind(),
                io::ErrorKind::InvalidInput,
                "{rel}"
            );
        }
        let copied = root.join("a/b/c.txt");
        assert!(matches!(
            ws.copy_in(&copied, "copy/c.txt"),
            Ok(Copied::Cloned | Copied::Copied)
        ));
        assert_eq!(std::fs::read(root.join("copy/c.txt")).unwrap(), b"c");
    }
}
