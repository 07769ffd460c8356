//! Running one agent process: its own process group, stdin closed, output to a log file, wall
//! clock and idle timeouts, and a stop that always reaches grandchildren.
//!
//! Stopping is SIGTERM to the whole group, a grace period, then SIGKILL. An agent CLI that still
//! reports when interrupted (a preset's: `docs/agents.md`, "Stop") gets SIGINT first and a grace
//! period before that. When the agent exits on its own, whatever it left running in its group is
//! stopped the same way: the task is over, and nothing may keep writing to the worktree while
//! streams commits it.

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

/// Above this much output, a log keeps only a note that it was cut (the agent keeps running and
/// its output keeps being drained, so it never blocks on a full pipe).
const LOG_LIMIT: u64 = 64 * 1024 * 1024;

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
            AgentExit::SpawnFailed(message) => (false, format!("could not start: {message}")),
        }
    }
}

/// Runs the agent to its end. `on_spawn` receives the process group id as soon as it exists.
pub async fn run_agent(
    mut cmd: AgentCommand,
    limits: Limits,
    mut cancel: watch::Receiver<Cancel>,
    on_spawn: impl FnOnce(i32),
) -> (AgentExit, Duration) {
    let started = Instant::now();
    let (mut child, log) = match spawn(&cmd, started) {
        Ok(spawned) => spawned,
        Err(failed) => return failed,
    };
    let pgid = child.id().map(|p| p as i32).unwrap_or(0);
    on_spawn(pgid);
    // What marks this agent's processes, even those that leave its group.
    let cmd_marker: Vec<String> = cmd
        .env
        .iter()
        .filter(|(k, _)| k == "STREAMS_RUN_ID" || k == "STREAMS_STREAM")
        .map(|(k, v)| format!("{k}={v}"))
        .collect();

    let last_output = Arc::new(AtomicU64::new(0));
    // Set by the stdout reader when the agent's streamed usage crosses its budget.
    let (over_tx, mut over) = watch::channel(None::<String>);
    let time_budget = cmd
        .metered
        .as_ref()
        .and_then(|m| m.budget.as_ref())
        .and_then(|b| b.time);
    let metered = cmd.metered.take().map(|m| (m, over_tx));
    let readers = [
        child.stdout.take().map(|out| {
            tokio::spawn(copy_to_log(
                out,
                log.clone(),
                last_output.clone(),
                started,
                metered,
            ))
        }),
        child.stderr.take().map(|err| {
            tokio::spawn(copy_to_log(
                err,
                log.clone(),
                last_output.clone(),
                started,
                None,
            ))
        }),
    ];
    let running = Running {
        pgid,
        started,
        limits,
        last_output,
        interrupt_first: cmd.interrupt_first,
        time_budget,
    };
    let exit = running.supervise(&mut child, &mut cancel, &mut over).await;
    running.stop_the_rest(readers, &cmd_marker).await;
    crate::children::agent_exited(pgid);
    (exit, started.elapsed())
}

/// Starts `cmd` in its own process group, stdin closed, its log opened with its header. `Err`:
/// how it ended without starting, and the time that took.
fn spawn(
    cmd: &AgentCommand,
    started: Instant,
) -> Result<(tokio::process::Child, SharedLog), (AgentExit, Duration)> {
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
        .stderr(Stdio::piped())
        // Its own group: terminal signals do not reach it, and we can signal all of it at once.
        .process_group(0);
    for var in &cmd.env_remove {
        command.env_remove(var);
    }
    // What must not reach the agent from streams' environment must not come from the plan's
    // `env` either (validation refuses it; this holds whatever the plan says).
    for (k, v) in cmd.env.iter().filter(|(k, _)| !cmd.env_remove.contains(k)) {
        command.env(k, v);
    }
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
    match spawned {
        Ok(child) => Ok((child, log)),
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

/// A started agent's process group, and what its end is judged by.
struct Running {
    pgid: i32,
    started: Instant,
    limits: Limits,
    /// When it last printed, in ms since `started` (written by the log copiers).
    last_output: Arc<AtomicU64>,
    /// SIGINT before SIGTERM (see [`AgentCommand::interrupt_first`]).
    interrupt_first: bool,
    /// The task's budget of agent time, if it has one.
    time_budget: Option<Duration>,
}

impl Running {
    /// Waits for the agent's end: its exit, a timeout (wall clock or idle), or the run's stop.
    async fn supervise(
        &self,
        child: &mut tokio::process::Child,
        cancel: &mut watch::Receiver<Cancel>,
        over: &mut watch::Receiver<Option<String>>,
    ) -> AgentExit {
        let (pgid, started, limits) = (self.pgid, self.started, self.limits);
        let first = self.interrupt_first.then_some(Signal::SIGINT);
        let wall_deadline = limits
            .timeout
            .map(|t| tokio::time::Instant::from_std(started + t));
        let budget_deadline = self
            .time_budget
            .map(|t| tokio::time::Instant::from_std(started + t));
        let mut over_open = true;
        loop {
            let idle_deadline = limits.idle.map(|idle| {
                let last = Duration::from_millis(self.last_output.load(Ordering::Relaxed));
                tokio::time::Instant::from_std(started + last + idle)
            });
            tokio::select! {
                status = child.wait() => {
                    return match status {
                        Ok(status) => match (status.code(), status.signal()) {
                            (Some(code), _) => AgentExit::Exited(code),
                            (None, Some(signal)) => AgentExit::Signaled(signal),
                            _ => AgentExit::Exited(-1),
                        },
                        Err(e) => AgentExit::SpawnFailed(format!("could not wait for the agent: {e}")),
                    };
                }
                _ = sleep_until(wall_deadline) => {
                    stop_group(pgid, first, Signal::SIGTERM, limits.grace, child).await;
                    return AgentExit::TimedOut(limits.timeout.unwrap_or_default());
                }
                // A budget stop is graceful whatever the agent: SIGINT first, so that it can
                // still report what it used.
                _ = sleep_until(budget_deadline) => {
                    stop_group(pgid, Some(Signal::SIGINT), Signal::SIGTERM, limits.grace, child).await;
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
                    stop_group(pgid, Some(Signal::SIGINT), Signal::SIGTERM, limits.grace, child).await;
                    return AgentExit::OverBudget(what);
                }
                _ = sleep_until(idle_deadline) => {
                    // Output may have arrived since the deadline was computed: re-arm if so.
                    let last = Duration::from_millis(self.last_output.load(Ordering::Relaxed));
                    let idle = limits.idle.unwrap_or_default();
                    if started.elapsed() >= last + idle {
                        stop_group(pgid, first, Signal::SIGTERM, limits.grace, child).await;
                        return AgentExit::Idle(idle);
                    }
                }
                changed = cancel.changed() => {
                    let level = if changed.is_ok() { *cancel.borrow() } else { Cancel::Kill };
                    match level {
                        Cancel::None => continue,
                        Cancel::Graceful(signal) => {
                            // A preset's CLI gets SIGINT first whatever stopped streams.
                            let first = first.filter(|f| *f != signal);
                            // A second Ctrl-C during the grace period turns into SIGKILL.
                            tokio::select! {
                                _ = stop_group(pgid, first, signal, limits.grace, child) => {}
                                _ = cancel.changed() => { kill_group(pgid); let _ = child.wait().await; }
                            }
                        }
                        Cancel::Kill => {
                            kill_group(pgid);
                            let _ = child.wait().await;
                        }
                        Cancel::Budget => {
                            stop_group(pgid, Some(Signal::SIGINT), Signal::SIGTERM, limits.grace, child).await;
                            return AgentExit::OverBudget("the shared budget ran out".into());
                        }
                    }
                    return AgentExit::Cancelled;
                }
            }
        }
    }

    /// The leader is gone; anything left in its group (a backgrounded grandchild) goes too, and
    /// so does a process that left the group but still holds its output pipes (`marker`: the
    /// variables that say whose it is). Returns once its output is all in the log, or out of
    /// reach.
    async fn stop_the_rest(
        &self,
        readers: [Option<tokio::task::JoinHandle<()>>; 2],
        marker: &[String],
    ) {
        let pgid = self.pgid;
        let _ = killpg(Pid::from_raw(pgid), Signal::SIGTERM);
        // Readers end when the last holder of the pipes exits.
        let drain = async {
            for reader in readers.into_iter().flatten() {
                let _ = reader.await;
            }
        };
        tokio::pin!(drain);
        if tokio::time::timeout(self.limits.grace, &mut drain)
            .await
            .is_err()
        {
            kill_group(pgid);
            // A process that left the group (setsid) but still holds the pipes: it carries the
            // agent's environment, which says whose it is.
            for pid in processes_with_env(marker) {
                let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
            // Whatever still holds the pipes after that is out of reach: stop waiting for it (the
            // readers finish on their own when it goes).
            let _ = tokio::time::timeout(Duration::from_secs(1), &mut drain).await;
        } else {
            // Processes that closed their pipes but ignore SIGTERM.
            kill_group(pgid);
        }
    }
}

/// Kills what an agent left running after it exited: every process re-parented to streams
/// (it is a child subreaper) that streams did not start itself and that does not carry another
/// task's marks, and every process carrying this task's marks (`env`: `STREAMS_RUN_ID` and
/// `STREAMS_STREAM`). Repeated until none is left, since a killed stray's own children are
/// re-parented in turn; bounded, for a stray that forks faster than it is killed.
pub fn reap_strays(env: &[(String, String)]) {
    let marks: Vec<String> = env
        .iter()
        .filter(|(k, _)| k == "STREAMS_RUN_ID" || k == "STREAMS_STREAM")
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let run_mark = env
        .iter()
        .find(|(k, _)| k == "STREAMS_RUN_ID")
        .map(|(k, v)| format!("{k}={v}"));
    let me = std::process::id() as i32;
    // Only these are collected once dead: a zombie git child belongs to the thread waiting
    // for it.
    let mut killed_pids = std::collections::BTreeSet::new();
    for _ in 0..200 {
        let killed = {
            let _hunting = crate::children::hunting();
            let mut killed = 0;
            for (pid, ppid, zombie) in all_processes() {
                if pid == me {
                    continue;
                }
                if zombie {
                    if ppid == me && killed_pids.contains(&pid) {
                        // A stray killed earlier: collect it (nobody else waits for it).
                        let _ = nix::sys::wait::waitpid(
                            Pid::from_raw(pid),
                            Some(nix::sys::wait::WaitPidFlag::WNOHANG),
                        );
                    }
                    continue;
                }
                let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
                let vars: Vec<&[u8]> = environ.split(|b| *b == 0).collect();
                let has = |v: &str| vars.contains(&v.as_bytes());
                let ours = !marks.is_empty() && marks.iter().all(|m| has(m));
                let adopted = ppid == me
                    && !crate::children::is_own(pid)
                    // Another task's stray, still running with its marks: its task ends it.
                    && !(run_mark.as_deref().is_some_and(&has)
                        && vars.iter().any(|v| v.starts_with(b"STREAMS_STREAM=")));
                if (ours || adopted) && !crate::children::is_own(pid) {
                    let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
                    killed_pids.insert(pid);
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

/// Every process as (pid, parent pid, is a zombie), from /proc (Linux; elsewhere none).
fn all_processes() -> Vec<(i32, i32, bool)> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()))
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            // `pid (comm) state ppid ...`; comm may hold spaces and parentheses.
            let rest = &stat[stat.rfind(')')? + 2..];
            let mut fields = rest.split(' ');
            let state = fields.next()?;
            let ppid = fields.next()?.parse().ok()?;
            Some((pid, ppid, state == "Z" || state == "X"))
        })
        .collect()
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// Signal the group (`first`, then `signal`, each with `grace` to exit), then SIGKILL it.
async fn stop_group(
    pgid: i32,
    first: Option<Signal>,
    signal: Signal,
    grace: Duration,
    child: &mut tokio::process::Child,
) {
    if let Some(first) = first {
        let _ = killpg(Pid::from_raw(pgid), first);
        if tokio::time::timeout(grace, child.wait()).await.is_ok() {
            return;
        }
    }
    let _ = killpg(Pid::from_raw(pgid), signal);
    if tokio::time::timeout(grace, child.wait()).await.is_err() {
        kill_group(pgid);
        let _ = child.wait().await;
    }
}

pub fn kill_group(pgid: i32) {
    if pgid > 0 {
        let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
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

async fn copy_to_log(
    mut pipe: impl tokio::io::AsyncRead + Unpin,
    log: SharedLog,
    last_output: Arc<AtomicU64>,
    started: Instant,
    mut metered: Option<(Metered, watch::Sender<Option<String>>)>,
) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut written: u64 = 0;
    let mut truncated = false;
    loop {
        let n = match pipe.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        last_output.store(started.elapsed().as_millis() as u64, Ordering::Relaxed);
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
