//! Every process an agent starts is its task's, by ancestry.
//!
//! Between fork and exec, the child streams spawns for a command (an agent, a check, the gate, a
//! setup) makes itself the leader of a new session and a child subreaper, then forks again: the
//! grandchild becomes the command, the child stays behind as the task's *reaper*. Whatever the
//! command starts and abandons (`setsid cmd &`, a daemon that double-forks, a process that
//! rewrote its environment) is re-parented to that reaper, never to streams or init. So a
//! process is the task's when it descends from the task's reaper, or is still in its session
//! (the reaper's pid, recorded when the task started): facts the kernel keeps, never what a
//! process says about itself (its environment is its own to forge).
//!
//! The reaper reports the command's wait status through a pipe the moment it reaps it, reaps
//! everything else as it dies, and exits with the command's status once its tree is empty.
//! streams ends what is left of the tree ([`kill_tree`]); the reaper never decides anything.
//!
//! The command's parent is the reaper, not streams: signalling `$PPID` reaches a process that
//! holds nothing, blocks every signal it can, and is woken with SIGCONT by streams should it be
//! stopped (see `process`). Under the sandbox the kernel also keeps the agent from signalling
//! anything outside its own process tree (see `sandbox`).
//!
//! What the reaper runs is async-signal-safe only: it is a fork of a multi-threaded program
//! that never execs (system calls through libc, no allocation, no lock).

use std::io::{self, Read};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use nix::libc;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// The parent's side of one reaper: the pipe its command's status comes through.
pub struct Reaper {
    read: OwnedFd,
    /// The reaper's end, held by streams until the spawn is done (then the reaper alone has it,
    /// so its death reads as the end of the pipe).
    write: Option<OwnedFd>,
}

impl Reaper {
    /// Arranges for `command`, once spawned, to run under a reaper. Call it before any other
    /// `pre_exec` hook: hooks registered after it run in the command only (the reaper never
    /// returns from this one).
    pub fn arrange(command: &mut tokio::process::Command) -> io::Result<Reaper> {
        let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
        let report = write.as_raw_fd();
        // SAFETY: `become_reaper` makes async-signal-safe system calls only (see the module
        // docs); the one value it captures is a plain file descriptor number.
        unsafe {
            command.pre_exec(move || become_reaper(report));
        }
        Ok(Reaper {
            read,
            write: Some(write),
        })
    }

    /// Once the reaper is spawned (or failed to be): the command's wait status as the reaper
    /// reports it, read on a blocking thread. `None`: the reaper ended without reporting one
    /// (it was killed, or never started).
    pub fn status(mut self) -> tokio::task::JoinHandle<Option<i32>> {
        drop(self.write.take());
        let mut pipe = std::fs::File::from(self.read);
        tokio::task::spawn_blocking(move || {
            let mut status = [0u8; 4];
            pipe.read_exact(&mut status)
                .ok()
                .map(|()| i32::from_ne_bytes(status))
        })
    }
}

/// In the spawned child, between fork and exec: becomes the reaper and forks the command, which
/// returns from here to be exec'd (with the hooks registered after this one).
fn become_reaper(report: RawFd) -> io::Result<()> {
    // SAFETY: system calls on plain values and zeroed C structs; see the module docs.
    unsafe {
        if libc::setsid() < 0 {
            return Err(io::Error::last_os_error());
        }
        // Orphans of the command's tree come here. (Elsewhere than Linux they go to init: the
        // session is all that still says whose they are.)
        #[cfg(target_os = "linux")]
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1 as libc::c_ulong, 0, 0, 0);
        // Blocked before the fork, so that no signal sent to the new group between the fork and
        // the reaper's loop can end the reaper; the command unblocks them again.
        let mut all: libc::sigset_t = std::mem::zeroed();
        let mut before: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut before);
        match libc::fork() {
            -1 => {
                let e = io::Error::last_os_error();
                libc::pthread_sigmask(libc::SIG_SETMASK, &before, std::ptr::null_mut());
                Err(e)
            }
            0 => {
                libc::close(report);
                libc::pthread_sigmask(libc::SIG_SETMASK, &before, std::ptr::null_mut());
                Ok(())
            }
            command => reap(command, report),
        }
    }
}

/// The reaper's life: collect every child as it dies, report the command's status, exit as the
/// command did once nothing of its tree is left.
unsafe fn reap(command: libc::pid_t, report: RawFd) -> ! {
    // SAFETY: as `become_reaper`.
    unsafe {
        // Nothing of streams' is the reaper's to hold: not the command's output pipes (they must
        // close when the command's tree is gone), nor the pipe std reports a failed exec on.
        close_all_but(report);
        let mut status_of_command = None;
        loop {
            let mut status: libc::c_int = 0;
            let pid = libc::waitpid(-1, &mut status, 0);
            if pid == command {
                status_of_command = Some(status);
                // Four bytes, less than PIPE_BUF: written whole or not at all.
                let bytes = status.to_ne_bytes();
                libc::write(report, bytes.as_ptr().cast(), bytes.len());
                libc::close(report);
            } else if pid < 0 && io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
                // ECHILD: the tree is empty.
                break;
            }
        }
        exit_as(status_of_command)
    }
}

/// Ends the reaper with the command's wait status: its exit code, or the signal that killed it
/// (raised on itself, without a core dump).
unsafe fn exit_as(status: Option<libc::c_int>) -> ! {
    // SAFETY: as `become_reaper`.
    unsafe {
        match status {
            Some(s) if libc::WIFEXITED(s) => libc::_exit(libc::WEXITSTATUS(s)),
            Some(s) if libc::WIFSIGNALED(s) => {
                let signal = libc::WTERMSIG(s);
                let no_core = libc::rlimit {
                    rlim_cur: 0,
                    rlim_max: 0,
                };
                libc::setrlimit(libc::RLIMIT_CORE, &no_core);
                let mut default: libc::sigaction = std::mem::zeroed();
                default.sa_sigaction = libc::SIG_DFL;
                libc::sigaction(signal, &default, std::ptr::null_mut());
                let mut only: libc::sigset_t = std::mem::zeroed();
                libc::sigemptyset(&mut only);
                libc::sigaddset(&mut only, signal);
                libc::pthread_sigmask(libc::SIG_UNBLOCK, &only, std::ptr::null_mut());
                libc::kill(libc::getpid(), signal);
                libc::_exit(128 + signal)
            }
            _ => libc::_exit(127),
        }
    }
}

/// Closes every descriptor but `keep`.
unsafe fn close_all_but(keep: RawFd) {
    // SAFETY: as `become_reaper`.
    unsafe {
        #[cfg(target_os = "linux")]
        {
            let below = keep == 0
                || libc::syscall(libc::SYS_close_range, 0u32, (keep - 1) as u32, 0u32) == 0;
            let above =
                libc::syscall(libc::SYS_close_range, (keep + 1) as u32, u32::MAX, 0u32) == 0;
            if below && above {
                return;
            }
        }
        let mut limit: libc::rlimit = std::mem::zeroed();
        let max = if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 {
            limit.rlim_cur.min(1 << 16) as RawFd
        } else {
            1024
        };
        for fd in (0..max).filter(|&fd| fd != keep) {
            libc::close(fd);
        }
    }
}

/// Whether `pid` blocks SIGHUP, SIGINT and SIGTERM, as a reaper does all its life (it blocks
/// every signal it can, see [`Reaper::arrange`]), with a single thread, as a reaper has (a fork
/// that never execs); read from /proc (elsewhere: false).
///
/// The single thread matters: /proc shows a process's mask as its main thread's, and a
/// multi-threaded process's main thread blocks every signal for the moment it starts a thread
/// (glibc's `pthread_create`), so any program starting threads (a coordinator, `streams ui`, an
/// agent's runtime) would look like a reaper then.
pub fn blocks_termination(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .is_ok_and(|status| status_blocks_termination(&status))
}

/// [`blocks_termination`] of a `/proc/PID/status` text.
fn status_blocks_termination(status: &str) -> bool {
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(str::trim)
    };
    field("Threads:") == Some("1")
        && field("SigBlk:")
            .and_then(|mask| u64::from_str_radix(mask, 16).ok())
            .is_some_and(blocks_termination_in)
}

fn blocks_termination_in(mask: u64) -> bool {
    [libc::SIGHUP, libc::SIGINT, libc::SIGTERM]
        .iter()
        .all(|&signal| mask & (1 << (signal - 1)) != 0)
}

/// One process as /proc shows it.
#[derive(Clone, Copy, Debug)]
pub struct Proc {
    pub pid: i32,
    pub ppid: i32,
    pub session: i32,
    /// Dead, waiting for its parent to collect it.
    pub zombie: bool,
}

/// Every process, from /proc (Linux; elsewhere none).
pub fn all_processes() -> Vec<Proc> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()))
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            parse_stat(pid, &stat)
        })
        .collect()
}

/// `pid (comm) state ppid pgrp session ...`; comm may hold spaces and parentheses.
fn parse_stat(pid: i32, stat: &str) -> Option<Proc> {
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    let mut fields = rest.split(' ');
    let state = fields.next()?;
    let ppid = fields.next()?.parse().ok()?;
    let _group: i32 = fields.next()?.parse().ok()?;
    let session = fields.next()?.parse().ok()?;
    Some(Proc {
        pid,
        ppid,
        session,
        zombie: state == "Z" || state == "X",
    })
}

/// The live processes of the tree of `reaper`: its descendants and what is left in its session
/// (a process whose reaper was killed is still in the session it started in, unless it left it),
/// the reaper itself excepted.
pub fn tree(reaper: i32, processes: &[Proc]) -> Vec<i32> {
    let mut members = descendants(reaper, processes);
    members.insert(reaper);
    members.extend(
        processes
            .iter()
            .filter(|p| p.session == reaper)
            .map(|p| p.pid),
    );
    processes
        .iter()
        .filter(|p| p.pid != reaper && !p.zombie && members.contains(&p.pid))
        .map(|p| p.pid)
        .collect()
}

/// The descendants of `root` (its children, theirs, and so on), zombies included; not `root`.
pub fn descendants(root: i32, processes: &[Proc]) -> std::collections::BTreeSet<i32> {
    let mut members = std::collections::BTreeSet::new();
    let mut to_visit = vec![root];
    while let Some(parent) = to_visit.pop() {
        for p in processes.iter().filter(|p| p.ppid == parent) {
            if p.pid != root && members.insert(p.pid) {
                to_visit.push(p.pid);
            }
        }
    }
    members
}

/// Sends `signal` to every live process of the tree of `reaper` (not the reaper) and wakes the
/// reaper should it be stopped, so it goes on collecting them. Returns how many it signalled.
pub fn signal_tree(reaper: i32, signal: Signal) -> usize {
    if reaper <= 0 {
        return 0;
    }
    let members = tree(reaper, &all_processes());
    for &pid in &members {
        let _ = kill(Pid::from_raw(pid), signal);
    }
    wake(reaper);
    members.len()
}

/// SIGKILL to the tree of `reaper` until none of it is left (a killed process's children are
/// re-parented to the reaper and killed in the next round); bounded, for a tree that forks
/// faster than it is killed.
pub async fn kill_tree(reaper: i32) {
    for _ in 0..400 {
        let signalled = tokio::task::spawn_blocking(move || signal_tree(reaper, Signal::SIGKILL))
            .await
            .unwrap_or(0);
        if signalled == 0 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    tracing::warn!("the processes of a task kept appearing; giving up killing them");
}

/// SIGCONT to the reaper: a reaper stopped by the command it runs (`kill -STOP $PPID`) would
/// never report the command's end.
pub fn wake(reaper: i32) {
    if reaper > 0 {
        let _ = kill(Pid::from_raw(reaper), Signal::SIGCONT);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_are_read_whatever_the_command_name() {
        let p = parse_stat(42, "42 (a) b (c)) S 7 42 40 0 -1").unwrap();
        assert_eq!((p.pid, p.ppid, p.session, p.zombie), (42, 7, 40, false));
        assert!(parse_stat(9, "9 (x) Z 1 9 9 0").unwrap().zombie);
        assert!(parse_stat(9, "9 (x) S").is_none());
    }

    #[test]
    fn a_reaper_blocks_what_would_end_it() {
        // A reaper's mask as /proc shows it: everything but SIGKILL, SIGSTOP and glibc's own.
        assert!(blocks_termination_in(0xfffffffe7ffbfeff));
        assert!(!blocks_termination_in(0));
        assert!(!blocks_termination_in(
            0xfffffffe7ffbfeff & !(1 << (libc::SIGTERM - 1))
        ));
        // This test's process blocks none of them.
        assert!(!blocks_termination(std::process::id() as i32));
    }

    /// A process starting a thread shows every signal blocked for a moment (its main thread's
    /// mask, as glibc's `pthread_create` sets it): not a reaper, having more than one thread.
    /// (This test's own process, read while the test harness started a thread, failed the
    /// check above now and then before: at the 4th of a loop of runs.)
    #[test]
    fn a_process_starting_a_thread_is_no_reaper() {
        let status = |threads: u32, mask: &str| {
            format!(
                "Name:\tstreams\nThreads:\t{threads}\nSigPnd:\t0000000000000000\nSigBlk:\t{mask}\n"
            )
        };
        assert!(status_blocks_termination(&status(1, "fffffffe7ffbfeff")));
        assert!(!status_blocks_termination(&status(2, "fffffffe7ffbfeff")));
        assert!(!status_blocks_termination(&status(17, "fffffffffffbfeff")));
        assert!(!status_blocks_termination(&status(1, "0000000000000000")));
        assert!(!status_blocks_termination("Name:\tx\n"));
    }

    #[test]
    fn a_tree_is_the_descendants_and_the_session() {
        let p = |pid, ppid, session| Proc {
            pid,
            ppid,
            session,
            zombie: false,
        };
        let processes = [
            p(10, 1, 10),  // the reaper
            p(11, 10, 10), // the command
            p(12, 11, 10), // its child
            p(13, 10, 13), // a stray that left the session, adopted by the reaper
            p(14, 13, 13), // its child
            p(15, 1, 10),  // left the tree when its reaper was killed, still in the session
            p(16, 1, 16),  // someone else's
            Proc {
                zombie: true,
                ..p(17, 10, 10)
            },
        ];
        let mut members = tree(10, &processes);
        members.sort();
        assert_eq!(members, vec![11, 12, 13, 14, 15]);
        // The session is no part of the descendants; a zombie is.
        let all: Vec<i32> = descendants(10, &processes).into_iter().collect();
        assert_eq!(all, vec![11, 12, 13, 14, 17]);
        assert!(descendants(16, &processes).is_empty());
    }
}
