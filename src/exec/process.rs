//! Running one agent process: under a reaper of its own (`reaper`), in a session and process
//! group of its own, stdin closed, output to a log file, wall clock and idle timeouts, and a
//! stop that always reaches grandchildren.
//!
//! Stopping is the signal to the agent's group, a grace period, then SIGKILL to its whole tree.
//! An agent CLI that still reports when interrupted (a preset's: `docs/agents.md`, "Stop") gets
//! SIGINT first and a grace period before that. When the agent exits on its own, whatever it left
//! running in its tree (its group, its session, everything its reaper adopted) is stopped the
//! same way: the task is over, and nothing may keep writing to the worktree while streams
//! commits it.
//!
//! A preset's CLI is also watched for progress (`agent::events::beat`): one that keeps failing
//! to reach its model prints its retries (so an idle timeout never fires) and may retry until
//! the task's timeout; after a run of such failures with no model turn and no tool action for
//! the stream's `idle_timeout` (else [`UNREACHABLE_AFTER`]) it is stopped
//! ([`AgentExit::Unreachable`]).

use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::AsyncReadExt;
use tokio::sync::watch;

use super::reaper::{self, Reaper};

/// Above this much output, a log keeps only a note that it was cut (the agent keeps running and
/// its output keeps being drained, so it never blocks on a full pipe).
const LOG_LIMIT: u64 = 64 * 1024 * 1024;

/// How long a preset's CLI may go on failing to reach its model, with no progress at all,
/// before it is stopped, when its stream sets no `idle_timeout` (which bounds it otherwise).
/// Five minutes: long enough for a network that comes back (a Wi-Fi or VPN reconnect, a
/// provider's brief outage; Claude Code itself gives up after its 10 retries, about 3 minutes),
/// short against the task's timeout (45 minutes in `streams init`'s plan), which is all that
/// stopped Codex before. Codex tries 7 times in it (after 0, 5, 15, 35, 75, 155 s, 315 s...).
pub const UNREACHABLE_AFTER: Duration = Duration::from_secs(5 * 60);

/// How the coordinator asks running agents to stop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cancel {
    None,
    /// Forward this signal to the group, wait the grace period, then SIGKILL.
    Graceful(Signal),
    /// SIGKILL now (a second Ctrl-C).
    Kill,
    /// A shared budget ran dry: SIGINT, the grace period, then the usual escalation; the task
    /// ends stopped by its budget, not interrupted.
    Budget,
}

pub struct AgentCommand {
    pub argv: Vec<String>,
    pub cwd: PathBuf,
    pub env: Vec<(String, String)>,
    pub env_remove: Vec<String>,
    pub log_path: PathBuf,
    /// Written at the top of the log (which attempt, which command).
    pub log_header: String,
    /// The kernel confinement of its writes, if any (see `sandbox`).
    pub sandbox: Option<Arc<super::sandbox::Lane>>,
    /// Stopped with SIGINT first (then the usual SIGTERM and SIGKILL): a preset's CLI, which
    /// may still report its usage when interrupted.
    pub interrupt_first: bool,
    /// Its usage, read from its stdout as it streams, against its task's budget.
    pub metered: Option<Metered>,
    /// A preset's CLI: its output is watched for a model it cannot reach.
    pub watched: Option<crate::agent::Cli>,
}

/// An agent's usage read as it streams (`ledger::meter`), checked against its task's budget
/// after every line.
pub struct Metered {
    pub meter: crate::ledger::meter::Meter,
    /// The task's own budget (`None`: only told, not limited).
    pub budget: Option<crate::plan::model::Budget>,
    /// For usage whose cost the agent does not state.
    pub prices: std::collections::BTreeMap<String, crate::plan::model::Price>,
    /// Told the usage so far each time it changes (for shared budgets and `status`).
    pub on_usage: Box<dyn Fn(&crate::agent::Usage) + Send + Sync>,
}

impl Metered {
    /// Reads a chunk of stdout; the limit it crossed, if it did.
    fn chunk(&mut self, bytes: &[u8], elapsed: Duration) -> Option<String> {
        if !self.meter.chunk(bytes) {
            return None;
        }
        let mut usage = self.meter.so_far().clone();
        crate::ledger::price(&mut usage, &self.prices);
        (self.on_usage)(&usage);
        let budget = self.budget.as_ref()?;
        crate::ledger::budget::crossed(budget, &crate::ledger::budget::Spent::of(&usage, elapsed))
    }
}

impl AgentCommand {
    /// `argv` run in `cwd` without the variables that would redirect its git, its output to
    /// `log_path` under `log_header` (`agent::log::header`); unconfined until [`Self::confined`]. Unconfined is
    /// right for the plan's own commands (a check, the gate, a setup): they run as in CI.
    pub fn new(
        argv: Vec<String>,
        cwd: PathBuf,
        env: Vec<(String, String)>,
        log_path: PathBuf,
        log_header: String,
    ) -> AgentCommand {
        AgentCommand {
            argv,
            cwd,
            env,
            env_remove: crate::git::redirecting_vars()
                .iter()
                .map(|s| s.to_string())
                .collect(),
            log_path,
            log_header,
            sandbox: None,
            interrupt_first: false,
            metered: None,
            watched: None,
        }
    }

    /// An agent whose usage is read as it streams, against its task's budget.
    pub fn metered(self, metered: Option<Metered>) -> AgentCommand {
        AgentCommand { metered, ..self }
    }

    /// An agent's command: its writes confined to its lane.
    pub fn confined(self, lane: Arc<super::sandbox::Lane>) -> AgentCommand {
        AgentCommand {
            sandbox: Some(lane),
            ..self
        }
    }

    /// A preset's CLI: stopped when it keeps failing to reach its model (see the module docs).
    pub fn watched(self, cli: Option<crate::agent::Cli>) -> AgentCommand {
        AgentCommand {
            watched: cli,
            ..self
        }
    }

    /// Stopped with SIGINT first when `yes` (a preset's CLI).
    pub fn interrupted_first(self, yes: bool) -> AgentCommand {
        AgentCommand {
            interrupt_first: yes,
            ..self
        }
    }
}

#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub timeout: Option<Duration>,
    pub idle: Option<Duration>,
    pub grace: Duration,
}

impl Limits {
    /// A wall-clock limit only: for the plan's own commands, which may well be silent a while.
    pub fn wall_clock(timeout: Option<Duration>, grace: Duration) -> Limits {
        Limits {
            timeout,
            idle: None,
            grace,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AgentExit {
    Exited(i32),
    /// Killed by a signal that did not come from streams.
    Signaled(i32),
    TimedOut(Duration),
    Idle(Duration),
    /// Stopped because the run was interrupted.
    Cancelled,
    /// Stopped because it crossed a budget: which limit, in words.
    OverBudget(String),
    /// Stopped after failing to reach its model `attempts` times over `over`, with no
    /// progress between: the CLI's last words about it.
    Unreachable {
        attempts: u32,
        over: Duration,
        message: String,
    },
    SpawnFailed(String),
}

impl AgentExit {
    /// A check's or the gate's verdict on this end: whether it passed, and how it ended in
    /// words.
    pub fn verdict(&self) -> (bool, String) {
        match self {
            AgentExit::Exited(0) => (true, "passed".into()),
            AgentExit::Exited(code) => (false, format!("failed (exit code {code})")),
            AgentExit::Signaled(signal) => (false, format!("failed (killed by signal {signal})")),
            AgentExit::TimedOut(after) => (
                false,
                format!(
                    "timed out after {}",
                    crate::duration::fmt_duration_ms(after.as_millis() as u64)
                ),
            ),
            AgentExit::Idle(after) => (
                false,
                format!(
                    "no output for {}",
                    crate::duration::fmt_duration_ms(after.as_millis() as u64)
                ),
            ),
            AgentExit::Cancelled => (false, "stopped".into()),
            AgentExit::OverBudget(what) => (false, format!("stopped by its budget ({what})")),
            AgentExit::Unreachable { attempts, over, .. } => (
                false,
                format!(
                    "could not reach its model ({attempts} attempt{} over {})",
                    if *attempts == 1 { "" } else { "s" },
                    crate::duration::fmt_duration_ms(over.as_millis() as u64)
                ),
            ),
            AgentExit::SpawnFailed(message) => (false, format!("could not start: {message}")),
        }
    }
}

/// Runs the agent to its end. `on_spawn` receives its process group id (its reaper's pid, which
/// is also its session's id) as soon as it exists.
pub async fn run_agent(
    mut cmd: AgentCommand,
    limits: Limits,
    mut cancel: watch::Receiver<Cancel>,
    on_spawn: impl FnOnce(i32),
) -> (AgentExit, Duration) {
    let started = Instant::now();
    let (mut child, log, status) = match spawn(&cmd, started) {
        Ok(spawned) => spawned,
        Err(failed) => return failed,
    };
    let group = child.id().map(|p| p as i32).unwrap_or(0);
    on_spawn(group);

    let last_output = Arc::new(AtomicU64::new(0));
    // Set by the stdout reader when the agent's streamed usage crosses its budget.
    let (over_tx, mut over) = watch::channel(None::<String>);
    let time_budget = cmd
        .metered
        .as_ref()
        .and_then(|m| m.budget.as_ref())
        .and_then(|b| b.time);
    let metered = cmd.metered.take().map(|m| (m, over_tx));
    // Both streams: Gemini CLI prints its retries on stderr, the others on stdout.
    let reaching = cmd.watched.map(|_| Reaching::shared());
    let watcher =
        |cli, reaching: &Option<_>| Some(Watcher::new(cli?, Arc::clone(reaching.as_ref()?)));
    let readers = [
        child.stdout.take().map(|out| {
            tokio::spawn(copy_to_log(
                out,
                log.clone(),
                last_output.clone(),
                started,
                metered,
                watcher(cmd.watched, &reaching),
            ))
        }),
        child.stderr.take().map(|err| {
            tokio::spawn(copy_to_log(
                err,
                log.clone(),
                last_output.clone(),
                started,
                None,
                watcher(cmd.watched, &reaching),
            ))
        }),
    ];
    let mut running = Running {
        group,
        started,
        limits,
        last_output,
        status: Status::Waiting(status),
        interrupt_first: cmd.interrupt_first,
        time_budget,
        reaching: reaching.map(|r| (r, limits.idle.unwrap_or(UNREACHABLE_AFTER))),
    };
    let mut exit = running.supervise(&mut child, &mut cancel, &mut over).await;
    running.stop_the_rest(&mut child, readers).await;
    // Claude Code and Gemini CLI give up by themselves after a few minutes of failing to
    // reach their model (their error result is no progress): that is how such a run ended,
    // whatever its exit code (read once its output is all read).
    if let AgentExit::Exited(_) = exit
        && let Some((reaching, _)) = running.unreachable()
    {
        exit = AgentExit::Unreachable {
            attempts: reaching.attempts,
            over: Duration::from_millis(reaching.last.saturating_sub(reaching.since.unwrap_or(0))),
            message: reaching.message,
        };
    }
    crate::children::agent_exited(group);
    // Its tree is gone; what streams adopted from it, if its reaper was killed, goes too once
    // it can be no other task's.
    tokio::task::spawn_blocking(|| reap_strays(Strays::OfNoRunningTask))
        .await
        .ok();
    (exit, started.elapsed())
}

/// Starts `cmd` under a reaper (in a session and group of their own), stdin closed, its log
/// opened with its header. `Err`: how it ended without starting, and the time that took.
fn spawn(
    cmd: &AgentCommand,
    started: Instant,
) -> Result<(tokio::process::Child, SharedLog, ReportedStatus), (AgentExit, Duration)> {
    let Some(program) = cmd.argv.first() else {
        return Err((
            AgentExit::SpawnFailed("the agent command is empty".into()),
            Duration::ZERO,
        ));
    };
    let log = match open_log(cmd) {
        Ok(log) => log,
        Err(e) => {
            return Err((
                AgentExit::SpawnFailed(format!(
                    "could not open the log {}: {e}",
                    cmd.log_path.display()
                )),
                Duration::ZERO,
            ));
        }
    };
    let mut command = tokio::process::Command::new(program);
    command
        .args(&cmd.argv[1..])
        .current_dir(&cmd.cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for var in &cmd.env_remove {
        command.env_remove(var);
    }
    // What must not reach the agent from streams' environment must not come from the plan's
    // `env` either (validation refuses it; this holds whatever the plan says).
    for (k, v) in cmd.env.iter().filter(|(k, _)| !cmd.env_remove.contains(k)) {
        command.env(k, v);
    }
    // First: the hooks after it run in the agent only, not in its reaper.
    let reaper = match Reaper::arrange(&mut command) {
        Ok(reaper) => reaper,
        Err(e) => {
            let message = format!("could not set up its process reaper: {e}");
            let _ = append(&log, format!("streams: {message}\n").as_bytes());
            return Err((AgentExit::SpawnFailed(message), started.elapsed()));
        }
    };
    let lane = cmd.sandbox.as_ref().and_then(|l| l.confinement());
    if let Err(message) = super::sandbox::confine(&mut command, lane) {
        let _ = append(&log, crate::agent::log::note(&message).as_bytes());
        return Err((AgentExit::SpawnFailed(message), started.elapsed()));
    }
    crate::children::become_subreaper();
    let spawned = {
        let _spawning = crate::children::spawning();
        let spawned = command.spawn();
        if let Some(pid) = spawned.as_ref().ok().and_then(|c| c.id()) {
            crate::children::agent_started(pid as i32);
        }
        spawned
    };
    let status = reaper.status();
    match spawned {
        Ok(child) => Ok((child, log, status)),
        Err(e) => {
            let message = spawn_error(cmd, program, lane.is_some(), &e);
            let note = crate::agent::log::note(&format!("could not start the agent: {message}"));
            let _ = append(&log, note.as_bytes());
            Err((AgentExit::SpawnFailed(message), started.elapsed()))
        }
    }
}

/// Why `program` could not start, for a person.
fn spawn_error(cmd: &AgentCommand, program: &str, confined: bool, e: &std::io::Error) -> String {
    match e.kind() {
        _ if confined && e.raw_os_error() == Some(super::sandbox::NOT_CONFINED) => {
            super::sandbox::NOT_CONFINED_MESSAGE.to_string()
        }
        std::io::ErrorKind::NotFound => format!("`{program}` was not found"),
        std::io::ErrorKind::PermissionDenied => format!("`{program}` is not executable"),
        _ if e.raw_os_error() == Some(nix::errno::Errno::E2BIG as i32) => {
            let size: usize = cmd.argv.iter().map(|a| a.len()).sum();
            format!(
                "its command line is too long for the system ({} KiB): pass the prompt with \
                 {{prompt_file}} (a file) rather than {{prompt}} (the text itself)",
                size / 1024
            )
        }
        _ => format!("`{program}`: {e}"),
    }
}

/// The agent's wait status as its reaper reports it (`None`: the reaper ended without
/// reporting one).
type ReportedStatus = tokio::task::JoinHandle<Option<i32>>;

/// What is known of the agent's end.
enum Status {
    Waiting(ReportedStatus),
    Known(Option<i32>),
}

/// A started agent's reaper (its pid is the agent's process group and session), and what its
/// end is judged by.
struct Running {
    group: i32,
    started: Instant,
    limits: Limits,
    /// When it last printed, in ms since `started` (written by the log copiers).
    last_output: Arc<AtomicU64>,
    status: Status,
    /// SIGINT before the stop's signal (see [`AgentCommand::interrupt_first`]).
    interrupt_first: bool,
    /// The task's budget of agent time, if it has one.
    time_budget: Option<Duration>,
    /// A preset's CLI: its failures to reach its model, and how long a run of them may last.
    reaching: Option<(SharedReaching, Duration)>,
}

/// How often a reaper is woken, in case the agent stopped it.
const WAKE_EVERY: Duration = Duration::from_millis(500);

impl Running {
    /// Waits for the agent's end: its exit, a timeout (wall clock or idle), or the run's stop.
    async fn supervise(
        &mut self,
        child: &mut tokio::process::Child,
        cancel: &mut watch::Receiver<Cancel>,
        over: &mut watch::Receiver<Option<String>>,
    ) -> AgentExit {
        let (group, started, limits) = (self.group, self.started, self.limits);
        let wall_deadline = limits
            .timeout
            .map(|t| tokio::time::Instant::from_std(started + t));
        let budget_deadline = self
            .time_budget
            .map(|t| tokio::time::Instant::from_std(started + t));
        let mut over_open = true;
        let mut wake = tokio::time::interval(WAKE_EVERY);
        loop {
            // Recomputed at each wake: a failure printed later may make a run stale so far one
            // to stop (at once).
            let unreachable_deadline = self
                .unreachable()
                .and_then(|(_, stop_at)| stop_at)
                .map(|deadline| tokio::time::Instant::from_std(started + deadline));
            let idle_deadline = limits.idle.map(|idle| {
                let last = Duration::from_millis(self.last_output.load(Ordering::Relaxed));
                tokio::time::Instant::from_std(started + last + idle)
            });
            tokio::select! {
                status = self.ended() => {
                    return match status {
                        Some(status) => exit_of(status),
                        // The reaper died before the agent (it was killed): what killed it says
                        // how the agent's run ended.
                        None => match child.wait().await {
                            Ok(status) => match (status.code(), status.signal()) {
                                (Some(code), _) => AgentExit::Exited(code),
                                (None, Some(signal)) => AgentExit::Signaled(signal),
                                _ => AgentExit::Exited(-1),
                            },
                            Err(e) => AgentExit::SpawnFailed(format!("could not wait for the agent: {e}")),
                        },
                    };
                }
                _ = wake.tick() => reaper::wake(group),
                _ = sleep_until(wall_deadline) => {
                    self.stop(Signal::SIGTERM).await;
                    return AgentExit::TimedOut(limits.timeout.unwrap_or_default());
                }
                // A budget stop is graceful whatever the agent: SIGINT first, so that it can
                // still report what it used.
                _ = sleep_until(budget_deadline) => {
                    self.stop_for_budget().await;
                    let time = self.time_budget.unwrap_or_default().as_millis() as u64;
                    return AgentExit::OverBudget(format!(
                        "{} of agent time",
                        crate::duration::fmt_duration_ms(time)
                    ));
                }
                changed = over.changed(), if over_open => {
                    if changed.is_err() {
                        // The reader is done (the agent closed its output): nothing more to read.
                        over_open = false;
                        continue;
                    }
                    let Some(what) = over.borrow().clone() else { continue };
                    self.stop_for_budget().await;
                    return AgentExit::OverBudget(what);
                }
                _ = sleep_until(idle_deadline) => {
                    // Output may have arrived since the deadline was computed: re-arm if so.
                    let last = Duration::from_millis(self.last_output.load(Ordering::Relaxed));
                    let idle = limits.idle.unwrap_or_default();
                    if started.elapsed() >= last + idle {
                        // Quiet since its last failure to reach its model (its retries further
                        // apart than `idle_timeout`): that is what stopped it.
                        if let Some((reaching, _)) = self.unreachable() {
                            return self.stop_unreachable(reaching).await;
                        }
                        self.stop(Signal::SIGTERM).await;
                        return AgentExit::Idle(idle);
                    }
                }
                _ = sleep_until(unreachable_deadline) => {
                    // Progress may have come since the deadline was computed: re-arm if so.
                    let Some((reaching, Some(deadline))) = self.unreachable() else { continue };
                    if started.elapsed() >= deadline {
                        return self.stop_unreachable(reaching).await;
                    }
                }
                changed = cancel.changed() => {
                    let level = if changed.is_ok() { *cancel.borrow() } else { Cancel::Kill };
                    match level {
                        Cancel::None => continue,
                        Cancel::Graceful(signal) => {
                            // A second Ctrl-C during the grace period turns into SIGKILL.
                            let mut again = cancel.clone();
                            tokio::select! {
                                _ = self.stop(signal) => {}
                                _ = again.changed() => { self.kill().await; }
                            }
                        }
                        Cancel::Kill => self.kill().await,
                        Cancel::Budget => {
                            self.stop_for_budget().await;
                            return AgentExit::OverBudget("the shared budget ran out".into());
                        }
                    }
                    return AgentExit::Cancelled;
                }
            }
        }
    }

    /// The run of failures to reach the model going on, if one is, and when (since the start)
    /// it is to be stopped, if what it printed so far says so (see [`Reaching::stop_at`]).
    fn unreachable(&self) -> Option<(Reaching, Option<Duration>)> {
        let (reaching, limit) = self.reaching.as_ref()?;
        let reaching = reaching.lock().unwrap_or_else(|e| e.into_inner()).clone();
        reaching.since?;
        let stop_at = reaching.stop_at(*limit);
        Some((reaching, stop_at))
    }

    /// Stops an agent that kept failing to reach its model: how it ended.
    async fn stop_unreachable(&mut self, reaching: Reaching) -> AgentExit {
        let since = Duration::from_millis(reaching.since.unwrap_or(0));
        let over = self.started.elapsed().saturating_sub(since);
        self.stop(Signal::SIGTERM).await;
        AgentExit::Unreachable {
            attempts: reaching.attempts,
            over,
            message: reaching.message,
        }
    }

    /// The agent's wait status once its reaper reported it (`None`: the reaper died first).
    async fn ended(&mut self) -> Option<i32> {
        if let Status::Waiting(reported) = &mut self.status {
            let status = reported.await.ok().flatten();
            self.status = Status::Known(status);
        }
        match self.status {
            Status::Known(status) => status,
            Status::Waiting(_) => None,
        }
    }

    /// `signal` to the agent's group (SIGINT before it for a preset's CLI), up to the grace
    /// period for it to end after each, then SIGKILL to its whole tree.
    async fn stop(&mut self, signal: Signal) {
        let grace = self.limits.grace;
        // A preset's CLI gets SIGINT first whatever stopped streams, so it can still report.
        if self.interrupt_first && signal != Signal::SIGINT {
            let _ = killpg(Pid::from_raw(self.group), Signal::SIGINT);
            if tokio::time::timeout(grace, self.ended()).await.is_ok() {
                return;
            }
        }
        let _ = killpg(Pid::from_raw(self.group), signal);
        if tokio::time::timeout(grace, self.ended()).await.is_err() {
            self.kill().await;
        }
    }

    /// A budget stop, graceful whatever the agent: SIGINT (so that it can still report what it
    /// used), then SIGTERM, each with the grace period, then SIGKILL to its whole tree.
    async fn stop_for_budget(&mut self) {
        let grace = self.limits.grace;
        for signal in [Signal::SIGINT, Signal::SIGTERM] {
            let _ = killpg(Pid::from_raw(self.group), signal);
            if tokio::time::timeout(grace, self.ended()).await.is_ok() {
                return;
            }
        }
        self.kill().await;
    }

    /// SIGKILL to the agent's whole tree, and its end collected.
    async fn kill(&mut self) {
        reaper::kill_tree(self.group).await;
        let _ = tokio::time::timeout(Duration::from_secs(5), self.ended()).await;
    }

    /// The agent is gone; anything left in its tree (a backgrounded grandchild, a daemon in a
    /// session of its own) goes too: SIGTERM, until its output is all in the log or the grace
    /// period ends, then SIGKILL; then its reaper, its tree empty, exits.
    async fn stop_the_rest(
        &self,
        child: &mut tokio::process::Child,
        readers: [Option<tokio::task::JoinHandle<()>>; 2],
    ) {
        let group = self.group;
        let _ =
            tokio::task::spawn_blocking(move || reaper::signal_tree(group, Signal::SIGTERM)).await;
        // Readers end when the last holder of the pipes exits.
        let drain = async {
            for reader in readers.into_iter().flatten() {
                let _ = reader.await;
            }
        };
        tokio::pin!(drain);
        let drained = tokio::time::timeout(self.limits.grace, &mut drain)
            .await
            .is_ok();
        reaper::kill_tree(group).await;
        reaper::wake(group);
        if tokio::time::timeout(Duration::from_secs(5), child.wait())
            .await
            .is_err()
        {
            // A reaper that does not end with an empty tree is not doing its work.
            let _ = child.start_kill();
            let _ = child.wait().await;
        }
        if !drained {
            // Whatever still holds the pipes after that is out of reach: stop waiting for it
            // (the readers finish on their own when it goes).
            let _ = tokio::time::timeout(Duration::from_secs(1), &mut drain).await;
        }
    }
}

/// How an agent with this wait status ended.
fn exit_of(status: i32) -> AgentExit {
    use nix::libc;
    if libc::WIFEXITED(status) {
        AgentExit::Exited(libc::WEXITSTATUS(status))
    } else if libc::WIFSIGNALED(status) {
        AgentExit::Signaled(libc::WTERMSIG(status))
    } else {
        AgentExit::Exited(-1)
    }
}

/// Which of the processes streams adopted [`reap_strays`] kills.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strays {
    /// Those no running agent can own: in the session of no agent still running, and only when
    /// no agent runs at all (any running one could be the one that left it).
    OfNoRunningTask,
    /// Every one: the run is over.
    All,
}

/// Kills processes streams adopted itself (it is a child subreaper): an agent's tree lands on
/// its reaper, so what lands on streams left a tree whose reaper was killed. Such a process is
/// its task's if it is still in the session its task started in (that task's end kills it);
/// otherwise nothing says whose it is (its environment is its own to forge), so it dies once no
/// agent runs, or when the run ends ([`Strays::All`]). Repeated until none is left, since a
/// killed stray's own children are re-parented in turn; bounded, for a stray that forks faster
/// than it is killed. Dead ones are collected (nobody else waits for them).
pub fn reap_strays(which: Strays) {
    let me = std::process::id() as i32;
    for _ in 0..200 {
        let killed = {
            let _hunting = crate::children::hunting();
            let running = crate::children::agents();
            let mut killed = 0;
            for p in reaper::all_processes() {
                if p.ppid != me || crate::children::is_own(p.pid) {
                    continue;
                }
                if p.zombie {
                    let _ = nix::sys::wait::waitpid(
                        Pid::from_raw(p.pid),
                        Some(nix::sys::wait::WaitPidFlag::WNOHANG),
                    );
                    continue;
                }
                let unowned = running.is_empty() && which == Strays::OfNoRunningTask;
                if which == Strays::All || (unowned && !running.contains(&p.session)) {
                    let _ = nix::sys::signal::kill(Pid::from_raw(p.pid), Signal::SIGKILL);
                    killed += 1;
                }
            }
            killed
        };
        if killed == 0 {
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    tracing::warn!("processes an agent left kept appearing; giving up killing them");
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// Whether any process of the group is still alive.
pub fn group_alive(pgid: i32) -> bool {
    pgid > 0 && killpg(Pid::from_raw(pgid), None).is_ok()
}

type SharedLog = Arc<std::fs::File>;

fn open_log(cmd: &AgentCommand) -> std::io::Result<SharedLog> {
    if let Some(dir) = cmd.log_path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&cmd.log_path)?;
    let log = Arc::new(file);
    append(&log, cmd.log_header.as_bytes())?;
    Ok(log)
}

fn append(log: &SharedLog, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    // O_APPEND: each write lands whole at the end, so stdout and stderr chunks never overwrite
    // each other.
    (&**log).write_all(bytes)
}

/// A run of failed attempts to reach the model with no progress since its first, as a preset's
/// CLI printed them (written by its output readers, read by its supervisor).
#[derive(Clone, Debug, Default)]
struct Reaching {
    /// When the first failure of the run was printed, in ms since the agent started.
    since: Option<u64>,
    /// When its latest one was.
    last: u64,
    attempts: u32,
    /// The CLI's words about the last one.
    message: String,
}

type SharedReaching = Arc<std::sync::Mutex<Reaching>>;

impl Reaching {
    fn shared() -> SharedReaching {
        Arc::new(std::sync::Mutex::new(Reaching::default()))
    }

    /// When (since the agent started) this run is to be stopped, `limit` the longest it may
    /// last: once it lasted `limit`, if the failures keep coming: two at least, the latest
    /// within the last half of `limit`. `None`: not on what it printed so far (a later failure
    /// may change that). One failure followed by a long silent answer is a model that works;
    /// Codex's retries, 5, 10, 20, 40, 80 s ... apart, stay within half of the limit (the
    /// last before 300 s is at 155 s).
    fn stop_at(&self, limit: Duration) -> Option<Duration> {
        let end = Duration::from_millis(self.since?) + limit;
        let fresh_until = Duration::from_millis(self.last) + limit / 2;
        (self.attempts >= 2 && fresh_until >= end).then_some(end)
    }
}

/// Reads one output stream of a preset's CLI line by line for its progress.
struct Watcher {
    cli: crate::agent::Cli,
    reaching: SharedReaching,
    /// A partial line carried over to the next chunk.
    pending: Vec<u8>,
}

impl Watcher {
    fn new(cli: crate::agent::Cli, reaching: SharedReaching) -> Watcher {
        Watcher {
            cli,
            reaching,
            pending: Vec::new(),
        }
    }

    /// Reads a chunk printed `at` ms after the start (lines may be cut anywhere).
    fn chunk(&mut self, bytes: &[u8], at: u64) {
        use crate::agent::events::{Beat, beat};
        self.pending.extend_from_slice(bytes);
        while let Some(end) = self.pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=end).collect();
            let Some(beat) = beat(self.cli, &String::from_utf8_lossy(&line)) else {
                continue;
            };
            let mut reaching = self.reaching.lock().unwrap_or_else(|e| e.into_inner());
            match beat {
                Beat::Progress => *reaching = Reaching::default(),
                Beat::Unreachable(message) => {
                    reaching.since.get_or_insert(at);
                    // Its two readers may take the lock out of order.
                    reaching.last = reaching.last.max(at);
                    reaching.attempts += 1;
                    reaching.message = message;
                }
            }
        }
        // A line longer than any event is not one: drop it rather than grow without end.
        if self.pending.len() > 1024 * 1024 {
            self.pending.clear();
        }
    }
}

async fn copy_to_log(
    mut pipe: impl tokio::io::AsyncRead + Unpin,
    log: SharedLog,
    last_output: Arc<AtomicU64>,
    started: Instant,
    mut metered: Option<(Metered, watch::Sender<Option<String>>)>,
    mut watcher: Option<Watcher>,
) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut written: u64 = 0;
    let mut truncated = false;
    loop {
        let n = match pipe.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let at = started.elapsed().as_millis() as u64;
        last_output.store(at, Ordering::Relaxed);
        if let Some(watcher) = &mut watcher {
            watcher.chunk(&buf[..n], at);
        }
        if let Some((meter, over)) = &mut metered
            && over.borrow().is_none()
            && let Some(what) = meter.chunk(&buf[..n], started.elapsed())
        {
            over.send_replace(Some(what));
        }
        if written + n as u64 <= LOG_LIMIT {
            let log = log.clone();
            let chunk = buf[..n].to_vec();
            // File writes block; keep them off the async workers.
            let _ = tokio::task::spawn_blocking(move || append(&log, &chunk)).await;
            written += n as u64;
        } else if !truncated {
            truncated = true;
            let _ = append(&log, crate::agent::log::cut(LOG_LIMIT >> 20).as_bytes());
        }
    }
}

/// What marks a process as a run's, in its environment: `STREAMS_RUN_ID` and `STREAMS_REPO` (the
/// repository's git common dir, canonical). The run id alone is not enough: it is the second
/// the run started plus 16 random bits, so two repositories' runs started in the same second
/// may share it, and `resume` or `abort` of one would stop the other's agents.
pub fn run_mark(run_id: &str, common_dir: &std::path::Path) -> [(String, String); 2] {
    let repo = std::fs::canonicalize(common_dir).unwrap_or_else(|_| common_dir.to_path_buf());
    [
        ("STREAMS_RUN_ID".to_string(), run_id.to_string()),
        ("STREAMS_REPO".to_string(), repo.display().to_string()),
    ]
}

/// Processes (other than this one) whose environment holds every one of `vars` (`NAME=value`).
/// Linux only (it reads /proc); elsewhere, and for an empty list, none.
pub fn processes_with_env(vars: &[String]) -> Vec<i32> {
    if vars.is_empty() {
        return Vec::new();
    }
    let me = std::process::id() as i32;
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()))
        .filter(|&pid| pid != me)
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ")).is_ok_and(|env| {
                let vars_of: Vec<&[u8]> = env.split(|b| *b == 0).collect();
                vars.iter().all(|v| vars_of.contains(&v.as_bytes()))
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_of_failures_to_reach_the_model_starts_at_its_first_and_ends_with_progress() {
        let reaching = Reaching::shared();
        let mut out = Watcher::new(crate::agent::Cli::Codex, Arc::clone(&reaching));
        let retry = br#"{"type":"error","message":"Reconnecting... waiting for network (Connection failed: error sending request)"}"#;
        out.chunk(br#"{"type":"turn.started"}"#, 10);
        // A line cut in two chunks counts once, when it is whole.
        out.chunk(b"\n", 10);
        out.chunk(&retry[..20], 100);
        assert_eq!(reaching.lock().unwrap().since, None);
        out.chunk(&retry[20..], 150);
        out.chunk(b"\n", 150);
        out.chunk(&[retry.as_slice(), b"\n"].concat(), 5000);
        {
            let r = reaching.lock().unwrap();
            assert_eq!((r.since, r.attempts), (Some(150), 2));
            assert!(r.message.starts_with("Reconnecting..."), "{}", r.message);
        }
        // The model answered: the run is over; the next failure starts another.
        out.chunk(
            b"{\"type\":\"item.started\",\"item\":{\"type\":\"command_execution\",\"command\":\"ls\"}}\n",
            6000,
        );
        assert_eq!(reaching.lock().unwrap().since, None);
        out.chunk(&[retry.as_slice(), b"\n"].concat(), 7000);
        let r = reaching.lock().unwrap();
        assert_eq!((r.since, r.last, r.attempts), (Some(7000), 7000, 1));
    }

    /// A run of `failures` (ms since the start).
    fn run_of(failures: &[u64]) -> Reaching {
        Reaching {
            since: failures.first().copied(),
            last: failures.last().copied().unwrap_or(0),
            attempts: failures.len() as u32,
            message: String::new(),
        }
    }

    #[test]
    fn a_run_of_failures_is_stopped_only_while_they_keep_coming() {
        let five_minutes = Duration::from_secs(300);
        let s = |secs: u64| secs * 1000;
        // One blip, then a long silent answer: a model that works.
        assert_eq!(run_of(&[s(1)]).stop_at(five_minutes), None);
        // Two close together, then silence past the limit: not stopped either.
        assert_eq!(run_of(&[s(1), s(3)]).stop_at(five_minutes), None);
        // ... unless the failures start again: then at once (the limit is behind).
        assert_eq!(
            run_of(&[s(1), s(3), s(400)]).stop_at(five_minutes),
            Some(Duration::from_secs(301))
        );
        // Codex's backoff against an address nothing answers: stopped at the limit, by default
        // and at a test's short idle_timeout (retries 0.2 s apart).
        let codex = [0, 5, 15, 35, 75, 155].map(s);
        assert_eq!(run_of(&codex).stop_at(five_minutes), Some(five_minutes));
        let paced: Vec<u64> = (0..15).map(|i| 100 + i * 200).collect();
        assert_eq!(
            run_of(&paced).stop_at(Duration::from_secs(3)),
            Some(Duration::from_millis(3100))
        );
    }
}
