//! The signals that stop a session: SIGINT, SIGTERM and SIGHUP, as one stream.

use nix::sys::signal::Signal;
use tokio::signal::unix::{SignalKind, signal};

use crate::error::{Error, Result};

pub(super) struct Signals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
    hangup: tokio::signal::unix::Signal,
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
        })
    }

    /// The next signal.
    pub async fn recv(&mut self) -> Signal {
        tokio::select! {
            _ = self.interrupt.recv() => Signal::SIGINT,
            _ = self.terminate.recv() => Signal::SIGTERM,
            _ = self.hangup.recv() => Signal::SIGHUP,
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
