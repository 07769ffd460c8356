//! One coordinator per plan (plans whose ownership does not overlap run side by side: see
//! `state::register` for what keeps them apart).
//!
//! The lock is an `flock` on `<common dir>/streams/locks/<plan>`, held for the coordinator's
//! lifetime (and by the commands that change the plan's run, branches or workspaces: `merge`,
//! `clean`, `abort`).
//! The kernel drops it when the holder dies, however it dies, so a lock whose holder is gone is
//! simply free again: `resume` takes it over, and a live holder can never be overridden. The file
//! also records who holds it (pid, start time, host, run, command) so that a refused command can
//! say who is in the way. The descriptor is close-on-exec, so agents never inherit it.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::Path;

use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

use super::store::{StateDir, now_ms};

/// Who holds (or last held) the lock.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Holder {
    pub pid: u32,
    pub started_at: u64,
    pub host: String,
    pub command: String,
    #[serde(default)]
    pub run_id: Option<String>,
    /// The plan it holds (absent in version 1's lock, which held the whole repository).
    #[serde(default)]
    pub plan: Option<String>,
}

impl Holder {
    fn describe(&self) -> String {
        let since = humantime::format_rfc3339_seconds(
            std::time::UNIX_EPOCH + std::time::Duration::from_millis(self.started_at),
        );
        format!(
            "`streams {}` (pid {} on {}, since {since})",
            self.command, self.pid, self.host
        )
    }
}

/// The held lock of one plan; released on drop.
pub struct RunLock {
    file: Flock<File>,
    plan: String,
}

impl RunLock {
    /// Takes plan `plan`'s lock or says who holds it (exit 5).
    pub fn acquire(dir: &StateDir, plan: &str, command: &str) -> Result<RunLock> {
        let path = dir.lock_path(plan);
        let parent = path.parent().unwrap_or(dir.root());
        std::fs::create_dir_all(parent)
            .map_err(|e| Error::io(format!("could not create {}", parent.display()), e))?;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| {
                Error::io(
                    format!("could not open the lock file {}", path.display()),
                    e,
                )
            })?;
        let mut file = match lock_with_retries(file) {
            Ok(locked) => locked,
            Err((_, nix::errno::Errno::EWOULDBLOCK)) => {
                let who = read_holder(&path)
                    .map(|h| h.describe())
                    .unwrap_or_else(|| "another streams process".into());
                return Err(Error::state(
                    format!("another streams process holds plan `{plan}`: {who}"),
                    format!(
                        "wait for it to finish, follow it with `streams status --plan {plan}`, or stop it with `streams abort --plan {plan}`"
                    ),
                ));
            }
            Err((_, errno)) => {
                return Err(Error::io(
                    format!("could not lock {}", path.display()),
                    std::io::Error::from(errno),
                ));
            }
        };
        let holder = Holder {
            pid: std::process::id(),
            started_at: now_ms(),
            host: hostname(),
            command: command.to_string(),
            run_id: None,
            plan: Some(plan.to_string()),
        };
        write_holder(&mut file, &holder).map_err(|e| {
            Error::io(
                format!("could not write the lock file {}", path.display()),
                e,
            )
        })?;
        Ok(RunLock {
            file,
            plan: plan.to_string(),
        })
    }

    /// Records which run the holder works on (shown to whoever is refused).
    pub fn set_run(&mut self, run_id: &str, command: &str) {
        let holder = Holder {
            pid: std::process::id(),
            started_at: now_ms(),
            host: hostname(),
            command: command.to_string(),
            run_id: Some(run_id.to_string()),
            plan: Some(self.plan.clone()),
        };
        let _ = write_holder(&mut self.file, &holder);
    }

    /// The plan this lock holds.
    pub fn plan(&self) -> &str {
        &self.plan
    }
}

/// The lock of the register of running plans, held while a run is checked against the others
/// and joins them (see `state::register`); released on drop. Waits for a holder instead of
/// refusing: nobody holds it for more than an instant.
pub struct RegisterLock {
    _file: Flock<File>,
}

impl RegisterLock {
    pub fn acquire(dir: &StateDir) -> Result<RegisterLock> {
        let path = dir.register_lock_path();
        std::fs::create_dir_all(dir.root())
            .map_err(|e| Error::io(format!("could not create {}", dir.root().display()), e))?;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| {
                Error::io(
                    format!("could not open the lock file {}", path.display()),
                    e,
                )
            })?;
        let file = Flock::lock(file, FlockArg::LockExclusive).map_err(|(_, errno)| {
            Error::io(
                format!("could not lock {}", path.display()),
                std::io::Error::from(errno),
            )
        })?;
        Ok(RegisterLock { _file: file })
    }
}

/// `status` probes the lock by taking it for an instant; a few quick retries keep such a probe
/// from refusing a real coordinator that starts at the same moment.
fn lock_with_retries(
    mut file: File,
) -> std::result::Result<Flock<File>, (File, nix::errno::Errno)> {
    for _ in 0..5 {
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Err((f, nix::errno::Errno::EWOULDBLOCK)) => {
                file = f;
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            other => return other,
        }
    }
    Flock::lock(file, FlockArg::LockExclusiveNonblock)
}

fn write_holder(file: &mut File, holder: &Holder) -> std::io::Result<()> {
    let json = serde_json::to_vec(holder).map_err(std::io::Error::other)?;
    file.set_len(0)?;
    file.rewind()?;
    file.write_all(&json)?;
    file.write_all(b"\n")?;
    file.sync_data()
}

/// Who holds plan `plan`'s lock, if someone does right now (a live holder).
pub fn current_holder(dir: &StateDir, plan: &str) -> Option<Holder> {
    let path = dir.lock_path(plan);
    let file = OpenOptions::new().read(true).write(true).open(&path).ok()?;
    match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        // We could take it: nobody holds it. Dropping releases it again at once.
        Ok(_) => None,
        Err((_, nix::errno::Errno::EWOULDBLOCK)) => read_holder(&path),
        Err(_) => None,
    }
}

/// Every live holder of a plan's lock here (any plan).
pub fn holders(dir: &StateDir) -> Vec<Holder> {
    let Ok(entries) = std::fs::read_dir(dir.root().join("locks")) else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .filter_map(|plan| current_holder(dir, &plan))
        .collect()
}

/// The live holder working on run `run_id`, if one is.
pub fn holder_of_run(dir: &StateDir, run_id: &str) -> Option<Holder> {
    holders(dir)
        .into_iter()
        .find(|h| h.run_id.as_deref() == Some(run_id))
}

/// Who held plan `plan`'s lock last, gone or not: what its file records (a coordinator killed
/// with `kill -9` left its own record behind).
pub fn last_holder(dir: &StateDir, plan: &str) -> Option<Holder> {
    read_holder(&dir.lock_path(plan))
}

fn read_holder(path: &Path) -> Option<Holder> {
    let mut text = String::new();
    File::open(path).ok()?.read_to_string(&mut text).ok()?;
    serde_json::from_str(text.trim()).ok()
}

pub fn hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "unknown-host".into())
}
