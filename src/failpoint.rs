//! Failpoints: named places where the process can be made to die (or fail) on purpose, so tests
//! can prove that a crash at each step loses nothing.
//!
//! `STREAMS_FAILPOINT=<name>[@<n>]` makes the n-th (default first) pass through `hit(name)` kill
//! this process with SIGKILL, exactly as `kill -9` would: no destructors, no flushing.
//! `STREAMS_FAILPOINT=<name>:enospc` makes `io(name)` fail as a full disk does, `:erofs` as a
//! read-only file system does. `STREAMS_FAILPOINT=<name>:absent` makes `absent(name)` true: a
//! feature of the system (Landlock) is treated as missing. Several can be given, separated by commas. Without the variable every call is a cheap no-op.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

struct Point {
    name: String,
    action: Action,
    nth: usize,
    hits: AtomicUsize,
}

#[derive(PartialEq)]
enum Action {
    Kill,
    NoSpace,
    ReadOnly,
    Absent,
}

fn points() -> &'static [Point] {
    static POINTS: OnceLock<Vec<Point>> = OnceLock::new();
    POINTS.get_or_init(|| {
        let Ok(spec) = std::env::var("STREAMS_FAILPOINT") else {
            return Vec::new();
        };
        spec.split(',')
            .filter(|s| !s.trim().is_empty())
            .map(|item| {
                let (rest, nth) = match item.trim().split_once('@') {
                    Some((rest, n)) => (rest, n.parse().unwrap_or(1)),
                    None => (item.trim(), 1),
                };
                let (name, action) = match rest.split_once(':') {
                    Some((name, "enospc")) => (name, Action::NoSpace),
                    Some((name, "erofs")) => (name, Action::ReadOnly),
                    Some((name, "absent")) => (name, Action::Absent),
                    Some((name, _)) => (name, Action::Kill),
                    None => (rest, Action::Kill),
                };
                Point {
                    name: name.to_string(),
                    action,
                    nth,
                    hits: AtomicUsize::new(0),
                }
            })
            .collect()
    })
}

fn triggered(name: &str, action: Action) -> bool {
    points().iter().any(|p| {
        p.name == name && p.action == action && p.hits.fetch_add(1, Ordering::SeqCst) + 1 == p.nth
    })
}

/// Dies here, as if killed with `kill -9`, when the failpoint is armed.
pub fn hit(name: &str) {
    if points().is_empty() {
        return;
    }
    if triggered(name, Action::Kill) {
        use std::io::Write;
        // The one write outside the printer: a leaf below it, and the process dies next.
        #[allow(clippy::disallowed_methods)]
        let _ = writeln!(
            std::io::stderr(),
            "streams: failpoint {name}: killing this process"
        );
        let _ = nix::sys::signal::kill(nix::unistd::Pid::this(), nix::sys::signal::Signal::SIGKILL);
        // SIGKILL cannot be caught; never reached.
        std::process::abort();
    }
}

/// Fails like a full disk (or a read-only file system) here, when the failpoint is armed.
pub fn io(name: &str) -> std::io::Result<()> {
    if points().is_empty() {
        return Ok(());
    }
    // The errors the kernel gives, so messages read exactly as they would for real.
    if triggered(name, Action::NoSpace) {
        return Err(std::io::Error::from_raw_os_error(
            nix::errno::Errno::ENOSPC as i32,
        ));
    }
    if triggered(name, Action::ReadOnly) {
        return Err(std::io::Error::from_raw_os_error(
            nix::errno::Errno::EROFS as i32,
        ));
    }
    Ok(())
}

/// Whether the system feature `name` is to be treated as missing (`<name>:absent`).
pub fn absent(name: &str) -> bool {
    !points().is_empty() && triggered(name, Action::Absent)
}
