//! Sync points inside the dispatcher: integrating the queued units in order, on their own or
//! through the gate (a batch gated, bisected, landed), and what a conflict does to the run (its
//! stream parked, the line stopped with `on_conflict = "stop"`, `notify` started). The
//! dispatcher awaits this work itself, listening for signals meanwhile.

use super::Engine;
use crate::error::Result;
use crate::exec::gate::{self, Gate};
use crate::exec::{integration, notify, park};
use crate::plan::OnConflict;
use crate::state::SyncUnit;

impl Engine {
    /// Integrates queued units in order until the queue is empty (a unit that conflicts parks
    /// its stream and leaves the queue), or a conflict stops the line.
    pub(super) async fn drain_queue(&mut self) {
        while !self.line_stopped && self.fatal.is_none() && !self.run.state.queue.is_empty() {
            let done = match Gate::command(&self.run) {
                // Stopping: what waits is gated by `resume`, not now (a gate can take minutes).
                Some(_) if self.stopping.is_some() => return,
                Some(command) => self.gate_queue(command).await,
                None => {
                    let unit = self.run.state.queue[0].clone();
                    self.integrate(unit).await
                }
            };
            if let Err(e) = done {
                self.fail_session(e);
            }
        }
    }

    /// Integrates `unit` on its own. A conflict parks its stream, and every other stream goes
    /// on; with `on_conflict = "stop"` the line stops there, and the run halts once running
    /// tasks end.
    async fn integrate(&mut self, unit: SyncUnit) -> Result<()> {
        let Some(conflict) = integration::integrate_unit(&mut self.run, &unit).await? else {
            return Ok(());
        };
        let stop = self.run.ctx.plan.on_conflict == OnConflict::Stop;
        let s = unit.stream;
        let files = conflict.merge.conflicted_paths();
        let cancel = self.channels.cancel();
        if !park::park(&mut self.run, unit, conflict, stop, cancel).await? {
            // The resolver's resolution was accepted and integrated: nothing is parked.
            return Ok(());
        }
        let running = self.running();
        if stop {
            self.line_stopped = true;
            if running > 0 {
                let name = &self.run.state.streams[s].name;
                let message = format!(
                    "conflict integrating {name} in {}: starting nothing new; halting once {running} running task(s) finish",
                    crate::report::quote_paths(&files),
                );
                self.run.message(&message);
            }
        }
        if notify::start(&self.run, s, &self.channels) {
            self.notifying += 1;
        }
        Ok(())
    }

    /// Gates the first batch of the queue and integrates what passes (see [`gate`]).
    async fn gate_queue(&mut self, command: Vec<String>) -> Result<()> {
        self.gather_arrivals().await?;
        if self.line_stopped || self.fatal.is_some() || self.run.state.queue.is_empty() {
            return Ok(());
        }
        if self.gate.refuse_queue(&mut self.run)? {
            return Ok(());
        }
        self.run.guard_integration_ref()?;
        let Some(mut batch) = gate::Batch::build(&self.run, command).await? else {
            // The first unit conflicts with the tip: integrating it parks it as without a gate.
            let unit = self.run.state.queue[0].clone();
            return self.integrate(unit).await;
        };
        loop {
            match batch.next() {
                next @ (gate::Next::Gate(_) | gate::Next::Again(_)) => {
                    let probe = batch.probe(&self.run, &next)?;
                    let Some(passed) = self.gate_verdict(&probe).await? else {
                        // Stopped: the verdicts so far are saved; `resume` goes on from them.
                        return Ok(());
                    };
                    batch.record(&self.run, &next, passed)?;
                }
                gate::Next::Flaky(k) => {
                    batch.flaky(&mut self.run, k, false)?;
                    let streams = batch.names()[..k].to_vec();
                    self.gate
                        .flaky_stop(&mut self.run, batch.command(), &streams);
                    // The queued streams fail on the next pass (see `Gate::refuse_queue`),
                    // with the reason: the gate, not one of them.
                    return self.run.save();
                }
                gate::Next::Land => return batch.land(&mut self.run).await,
                gate::Next::Blame(culprit) => return batch.blame(&mut self.run, culprit).await,
                gate::Next::TipRed => {
                    self.gate
                        .red_on_tip(&mut self.run, batch.command(), batch.tip());
                    // The queued streams fail on the next pass (see `Gate::refuse_queue`).
                    return self.run.save();
                }
            }
        }
    }

    /// The gate's verdict on `probe`: the one this run already has on the same tree, or a new
    /// gate run's (saved before it is acted on), awaited while listening for signals. `None`:
    /// a signal stopped it (or the session was already stopping); nothing is recorded, so
    /// `resume` runs it again.
    async fn gate_verdict(&mut self, probe: &gate::Probe) -> Result<Option<bool>> {
        if let Some(known) = probe.known(&self.run.state) {
            return Ok(Some(known));
        }
        if self.stopping.is_some() {
            return Ok(None);
        }
        let cancel = self.channels.cancel();
        let running = self.gate.begin(&self.run, probe, cancel).await?;
        let ended = self.listening(running.run()).await;
        self.gate.end(&mut self.run, probe, ended)
    }

    /// Handles every event already sent, then waits a moment for more while agents are still
    /// running, so units that reach their sync point together are gated together.
    async fn gather_arrivals(&mut self) -> Result<()> {
        let started = tokio::time::Instant::now();
        loop {
            while let Ok(event) = self.events.try_recv() {
                Box::pin(self.handle(event)).await?;
            }
            if self.running() == 0 || started.elapsed() >= gate::GATHER_MAX {
                return Ok(());
            }
            let quiet = tokio::time::sleep(gate::GATHER_QUIET);
            tokio::select! {
                Some(event) = self.events.recv() => Box::pin(self.handle(event)).await?,
                _ = quiet => return Ok(()),
            }
        }
    }
}
