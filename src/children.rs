//! The processes streams starts itself, told apart from what an agent leaves behind.
//!
//! Each agent runs under a reaper of its own (see `exec`), which adopts what the agent
//! abandons. streams makes itself a child subreaper too (Linux: `PR_SET_CHILD_SUBREAPER`): what
//! escapes an agent's reaper (the agent killed it) is re-parented to streams instead of init,
//! so it can still be found and killed, whatever session or process group it moved to and
//! whatever environment it set. Its own children (git commands, agents' reapers) are streams'
//! children too; they are registered from their spawn until they are waited for. Spawning holds [`spawning`] (a read lock) until the child is
//! registered, and the stray hunt holds [`hunting`] (the write lock), so no child of streams is
//! ever seen unregistered.

use std::collections::BTreeSet;
use std::sync::{Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};

static SPAWN: RwLock<()> = RwLock::new(());
static AGENTS: Mutex<BTreeSet<i32>> = Mutex::new(BTreeSet::new());
static OWN: Mutex<BTreeSet<i32>> = Mutex::new(BTreeSet::new());

/// A process streams started for itself (a git command), until [`own_exited`].
pub fn own_started(pid: u32) {
    OWN.lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(pid as i32);
}

/// Called once the process was waited for.
pub fn own_exited(pid: u32) {
    OWN.lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&(pid as i32));
}

/// Whether streams started `pid` itself (a git command or an agent) and has not yet waited for
/// it.
pub fn is_own(pid: i32) -> bool {
    OWN.lock().unwrap_or_else(|e| e.into_inner()).contains(&pid) || is_agent(pid)
}

/// Held while a child is being spawned (until its `exec`).
pub fn spawning() -> RwLockReadGuard<'static, ()> {
    SPAWN.read().unwrap_or_else(|e| e.into_inner())
}

/// Held while strays are looked for and killed: no child of streams is half-spawned meanwhile.
pub fn hunting() -> RwLockWriteGuard<'static, ()> {
    SPAWN.write().unwrap_or_else(|e| e.into_inner())
}

/// An agent streams started (its pid), alive until [`agent_exited`].
pub fn agent_started(pid: i32) {
    AGENTS.lock().unwrap_or_else(|e| e.into_inner()).insert(pid);
}

pub fn agent_exited(pid: i32) {
    AGENTS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&pid);
}

/// The agents running now (the pids streams started them with, which are also their process
/// groups and sessions).
pub fn agents() -> BTreeSet<i32> {
    AGENTS.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

pub fn is_agent(pid: i32) -> bool {
    AGENTS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .contains(&pid)
}

/// Makes this process the reaper of its orphaned descendants (once; Linux only, elsewhere a
/// no-op: strays are then found by their session alone).
pub fn become_subreaper() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        #[cfg(target_os = "linux")]
        if let Err(e) = nix::sys::prctl::set_child_subreaper(true) {
            tracing::warn!("could not become a child subreaper: {e}");
        }
    });
}
