//! The signals a session listens to, as one stream: SIGINT, SIGTERM and SIGHUP stop it;
//! SIGUSR1 says `streams stop` left a request to stop one stream (see `super::stop`).

use nix::sys::signal::Signal;
use tokio::signal::unix::{SignalKind, signal};

use crate::error::{Error, Result};

/// SIGUSR1 is how `streams stop` wakes a coordinator; its default action ends a process.
/// Until a session listens for it ([`Signals::new`], which replaces this), and in every command
/// that never does, it is ignored. (An ignored signal is inherited by the programs started
/// meanwhile, only git; a listening session's agents get the default action back.)
pub fn ignore_stop_requests() {
    // SAFETY: setting a signal to SIG_IGN installs no handler code.
    let _ = unsafe {
        nix::sys::signal::signal(
            nix::sys::signal::Signal::SIGUSR1,
            nix::sys::signal::SigHandler::SigIgn,
        )
    };
}

pub(super) struct Signals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
    hangup: tokio::signal::unix::Signal,
    requests: tokio::signal::unix::Signal,
}

impl Signals {
    pub fn new() -> Result<Signals> {
        Ok(Signals {
            interrupt: signal(SignalKind::interrupt())
                .map_err(|e| Error::io("could not handle SIGINT", e))?,
            terminate: signal(SignalKind::terminate())
                .map_err(|e| Error::io("could not handle SIGTERM", e))?,
            // A closed terminal (or ssh session) must not leave agents running with nobody to
            // stop them: SIGHUP stops the session like SIGTERM does, and `resume` goes on.
            hangup: signal(SignalKind::hangup())
                .map_err(|e| Error::io("could not handle SIGHUP", e))?,
            requests: signal(SignalKind::user_defined1())
                .map_err(|e| Error::io("could not handle SIGUSR1", e))?,
        })
    }

    /// The next signal.
    pub async fn recv(&mut self) -> Signal {
        tokio::select! {
            _ = self.interrupt.recv() => Signal::SIGINT,
            _ = self.terminate.recv() => Signal::SIGTERM,
            _ = self.hangup.recv() => Signal::SIGHUP,
            _ = self.requests.recv() => Signal::SIGUSR1,
        }
    }
}

pub fn signal_name(sig: Signal) -> &'static str {
    match sig {
        Signal::SIGINT => "SIGINT",
        Signal::SIGTERM => "SIGTERM",
        Signal::SIGHUP => "SIGHUP",
        _ => "signal",
    }
}
