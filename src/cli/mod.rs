//! Command-line interface: clap types and one function per subcommand.
//!
//! It reaches only [`crate::ops`] (the use cases), [`crate::report`] (the text a person reads,
//! and the printer, the one writer of stdout and stderr) and [`crate::error`]; the layering
//! check holds it to that. Each subcommand turns its arguments into the use case's inputs,
//! calls it (step by step where something is shown between steps, such as a plan's warnings),
//! shows what comes back, and returns an [`ExitCode`].

mod ci;
mod clean;
mod completions;
mod demo;
mod init;
pub mod load;
mod machines;
mod merge;
mod plan;
mod retry;
mod review;
mod run;
mod session;
mod status;
mod steer;
mod ui;
mod watch;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::error::{ExitCode, Result};
use crate::ops;
pub use crate::report::ColorChoice;
use crate::report::Ui;

#[derive(Debug, Parser)]
#[command(
    name = "streams",
    version,
    about = "Run many coding agents in parallel on one git repository and merge their work safely",
    long_about = None,
    after_help = "Run `streams demo` to see a whole run on a throwaway repository."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
// Under their own heading in every subcommand's --help, apart from the command's own options.
#[command(next_help_heading = "Global options")]
pub struct GlobalArgs {
    /// Run as if started in DIR (like `git -C`)
    #[arg(short = 'C', global = true, value_name = "DIR")]
    pub change_dir: Option<PathBuf>,

    /// Print only errors and the final result
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,

    /// Print more about what is happening (repeat for debug logs)
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// When to use colours (NO_COLOR is honoured under `auto`)
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto, value_name = "WHEN")]
    pub color: ColorChoice,

    /// Never draw progress bars, even on a terminal
    #[arg(long, global = true)]
    pub no_progress: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate a plan and show what a run would do: waves, ownership, critical path, makespan
    Plan(PlanArgs),
    /// Execute a plan: worktrees, agents, commits, integration
    Run(RunArgs),
    /// Show a run (the last one, or --plan / --run), per stream (works while a run is going)
    Status(StatusArgs),
    /// List the runs of this repository: plan, status, when, wall time, merged or not
    Runs(RunsArgs),
    /// After resolving a parked stream's conflict: record the resolution on the integration as
    /// it is by then and resume the run
    Continue(ContinueArgs),
    /// Leave a stream's unintegrated work out of a halted run (its branch is kept) and resume
    Skip(SkipArgs),
    /// Stop one running stream and let the rest of the run go on (its work is kept; `streams
    /// retry STREAM` continues it)
    Stop(StopArgs),
    /// Stop the run: the integration branch goes back to where the run found it; nothing is lost
    Abort(AbortArgs),
    /// Pick up a run that was interrupted (crash, kill -9, Ctrl-C, reboot)
    Resume(ResumeArgs),
    /// Run streams of a finished run again (failed, skipped or stopped ones) on top of the
    /// integration branch as it is, with the plan as it is now, keeping everything integrated
    Retry(RetryArgs),
    /// Take a run's result (its integration branch) into your branch: a fast-forward; after
    /// another plan's result was merged, its commits replayed on top (or a merge commit)
    Merge(MergeArgs),
    /// Remove what a run, a plan (--plan) or every plan (--all) left: workspaces, branches,
    /// kept refs and run records; work merged nowhere is kept unless --force
    Clean(CleanArgs),
    /// What each stream of a run did: tasks, commits, files, rejections, conflicts, log tails
    Show(ShowArgs),
    /// A stream's whole change (from where it started to its tip) through `git diff`; without
    /// a stream, the integration branch against the run's base
    Diff(DiffArgs),
    /// An agent's log (`-f` follows a running task until it ends)
    Logs(LogsArgs),
    /// The central step of a run spread over CI machines: fetch what each machine pushed
    /// (`streams run --only S --push REMOTE`), check every stream's commits against the plan's
    /// ownership again, integrate them in dependency order, push the result back
    Integrate(IntegrateArgs),
    /// Push stream branches (or the integration branch) and open or update one pull request
    /// each through the GitHub CLI `gh`
    Pr(PrArgs),
    /// Serve the repository's runs as a live web page on this machine (127.0.0.1, behind a
    /// random token): the graph of streams, the timeline, logs, diffs, conflicts, and the
    /// actions continue, skip, abort, retry and merge
    Ui(UiArgs),
    /// Run a built-in example end to end on a throwaway repository
    Demo(DemoArgs),
    /// Write a commented streams.toml for this repository, one of the example plans, or a plan
    /// built from a task list (--from tasks.md)
    Init(InitArgs),
    /// Spread the plan over CI jobs: write the CI configuration that runs each stream in a job
    /// of its own and integrates stage by stage
    Ci(CiArgs),
    /// Print shell completions (bash, zsh, fish, powershell, elvish) on stdout
    Completions(CompletionsArgs),
    /// Print the man page (roff) on stdout
    Man,
}

/// Which run a command acts on. Without either, the command takes the only run that fits it
/// (the halted one for `continue`, ...), else the last one started, and says which.
#[derive(Debug, Default, Args)]
pub struct Which {
    /// The plan whose (last) run to act on: its name, or its plan file
    #[arg(long, value_name = "NAME|FILE")]
    pub plan: Option<String>,
    /// The run to act on, by id (`streams runs` lists them)
    #[arg(long, value_name = "ID")]
    pub run: Option<String>,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Where to write the plan (default: streams.toml at the repository root)
    pub plan: Option<PathBuf>,
    /// The agent CLI to write the `agent` line for (default: the first of claude, codex and
    /// aider found on PATH, the others as comments)
    #[arg(long, value_enum, conflicts_with = "example")]
    pub agent: Option<InitAgent>,
    /// Write one of the example plans instead (without a name: list them)
    #[arg(long, value_name = "NAME", num_args = 0..=1, default_missing_value = "", conflicts_with = "from")]
    pub example: Option<String>,
    /// Build the plan from a task list: spec-kit's tasks.md, a Markdown checklist, or JSON
    #[arg(long, value_name = "TASKS")]
    pub from: Option<PathBuf>,
    /// With --from: print the plan on stdout instead of writing it
    #[arg(long, requires = "from")]
    pub dry_run: bool,
    /// With --from: predict the makespan with this many agents at once (default: the number of
    /// CPUs)
    #[arg(long, short, requires = "from")]
    pub jobs: Option<usize>,
}

/// `init --agent`: the agent CLIs a generated plan can run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum InitAgent {
    /// Claude Code (the `claude` preset)
    Claude,
    /// OpenAI Codex CLI (the `codex` preset)
    Codex,
    /// aider (the `aider` preset)
    Aider,
    /// A script of your own, committed in the repository
    Script,
}

#[derive(Debug, Args)]
pub struct CiArgs {
    #[command(subcommand)]
    pub command: CiCommand,
}

#[derive(Debug, Subcommand)]
pub enum CiCommand {
    /// Write a GitHub Actions workflow for the plan: a job that checks the plan and pins the
    /// base, then per stage a matrix job (one entry per stream) and a job that integrates it
    Github(CiGithubArgs),
}

/// `ci github --runs-on`'s default.
pub const DEFAULT_RUNS_ON: &str = "ubuntu-latest";

#[derive(Debug, Args)]
pub struct CiGithubArgs {
    /// The plan file (default: streams.toml at the repository root); it must be committed in
    /// the repository, where the runners find it
    pub plan: Option<PathBuf>,
    /// Write the workflow to PATH (e.g. .github/workflows/streams.yml) instead of stdout
    #[arg(long, value_name = "PATH")]
    pub out: Option<PathBuf>,
    /// The shell command that installs streams on a runner (default: what `cargo install`
    /// installed this streams from, the same commit of the same repository or the same
    /// release; else `cargo install --locked agent-streams@<this version>`)
    #[arg(long, value_name = "CMD")]
    pub install: Option<String>,
    /// A shell command every job runs after installing streams and the agents it knows
    /// (claude, codex, aider): another agent, a toolchain (repeatable)
    #[arg(long, value_name = "CMD")]
    pub setup: Vec<String>,
    /// A repository secret passed, by name, to the stream jobs' agents as an environment
    /// variable, besides those of the agents streams knows (repeatable)
    #[arg(long, value_name = "NAME")]
    pub secret: Vec<String>,
    /// The runner label every job runs on
    #[arg(long, value_name = "LABEL", default_value = DEFAULT_RUNS_ON)]
    pub runs_on: String,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// The plan file (default: streams.toml at the repository root)
    pub plan: Option<PathBuf>,
    /// Simulate the schedule with this many agents at once (default: the plan's `jobs`); a
    /// list (`1,2,4,8`) shows the predicted makespan for each beside the plan's own `jobs`
    #[arg(long, short, value_delimiter = ',', num_args = 1)]
    pub jobs: Vec<usize>,
    /// Print the analysis as JSON on stdout (versioned schema, see README)
    #[arg(long, conflicts_with_all = ["dot", "mermaid"])]
    pub json: bool,
    /// Print the dependency graph in Graphviz dot format
    #[arg(long, conflicts_with = "mermaid")]
    pub dot: bool,
    /// Print the dependency graph as a Mermaid flowchart
    #[arg(long)]
    pub mermaid: bool,
    /// Predict merge conflicts between existing stream branches and the integration tip
    #[arg(long)]
    pub predict: bool,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The plan file (default: streams.toml at the repository root)
    pub plan: Option<PathBuf>,
    /// Agents running at once (default: the plan's `jobs`, else the number of CPUs)
    #[arg(long, short)]
    pub jobs: Option<usize>,
    /// Print events as NDJSON on stdout (versioned schema, see README)
    #[arg(long)]
    pub json: bool,
    /// Show each stream's worktree, branch, start commit, agent command and the first line of
    /// each prompt; change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// With --dry-run: print every prompt in full
    #[arg(long, requires = "dry_run")]
    pub prompts: bool,
    /// Start no new work after the first failure
    #[arg(long)]
    pub fail_fast: bool,
    /// Start over from the plan's base even if the last run's result is merged nowhere (it is
    /// kept under refs/streams/<plan>/previous/)
    #[arg(long)]
    pub restart: bool,
    /// Skip the plan's `check` commands for this run (the report says so)
    #[arg(long)]
    pub no_check: bool,
    /// Skip the plan's `gate` for this run: integrate without it (the report says so)
    #[arg(long)]
    pub no_gate: bool,
    /// The most this run's agents may spend in all, in US dollars: a budget shared by every
    /// task, on top of the plan's own `budget` (both hold; `retry --max-cost` raises it)
    #[arg(long, value_name = "USD", value_parser = parse_usd, conflicts_with = "only")]
    pub max_cost: Option<f64>,
    #[command(flatten)]
    pub report: ReportArgs,
    // Last: its help heading applies to what follows it.
    #[command(flatten)]
    pub machine: MachineArgs,
}

/// `run --only`: one stream of a run spread over CI machines (see `streams integrate`).
#[derive(Debug, Default, Args)]
#[command(next_help_heading = "Running one stream on a CI machine")]
pub struct MachineArgs {
    /// Run only this stream, on this machine: its tasks and check, with the same workspace,
    /// agent and ownership rules as a local run. Its dependencies must already be in the
    /// start commit (--base, or --after-stage). Needs --run-id
    #[arg(long, value_name = "STREAM", requires = "run_id")]
    pub only: Option<String>,
    /// The id every machine of the run shares (in GitHub Actions:
    /// `${{ github.run_id }}-${{ github.run_attempt }}`); letters, digits, `-`, `_`, `.`
    #[arg(long, value_name = "ID", requires = "only")]
    pub run_id: Option<String>,
    /// With --only: start from this commit (for a stream with no dependencies; every machine
    /// of the run must be given the same one)
    #[arg(
        long,
        value_name = "COMMIT",
        requires = "only",
        conflicts_with = "after_stage"
    )]
    pub base: Option<String>,
    /// With --only: start after stage K (for a stream of stage K+1, whose dependencies are
    /// integrated by then; stages are numbered from 0), from the tip given with --start
    #[arg(long, value_name = "K", requires_all = ["only", "push", "start"])]
    pub after_stage: Option<usize>,
    /// With --after-stage K: the tip `streams integrate --stage K` reported (in GitHub Actions,
    /// its job's output `tip`); fetched from the --push remote by id. Never read from a ref:
    /// any job could have moved one
    #[arg(long, value_name = "COMMIT", requires = "after_stage")]
    pub start: Option<String>,
    /// With --only: when the stream ends (done or failed), push its branch, its kept work and
    /// its manifest to this remote (a name or URL) for `streams integrate --from`
    #[arg(long, value_name = "REMOTE", requires = "only")]
    pub push: Option<String>,
}

/// What the commands that can end a run write besides the run directory's reports.
#[derive(Debug, Default, Args)]
pub struct ReportArgs {
    /// Also write the run's JUnit XML report to PATH (it is always in the run directory as
    /// report.xml)
    #[arg(long, value_name = "PATH")]
    pub junit: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub which: Which,
    /// Print the status as JSON on stdout
    #[arg(long)]
    pub json: bool,
    /// Keep showing it until the run stops (finishes, halts, is aborted or interrupted):
    /// redrawn on a terminal, one line per change otherwise; exits with the run's exit code
    #[arg(long, short, conflicts_with = "json")]
    pub watch: bool,
}

#[derive(Debug, Args)]
pub struct RunsArgs {
    /// Print the runs as JSON on stdout (versioned schema, see README)
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct StopArgs {
    /// The stream to stop
    pub stream: String,
    #[command(flatten)]
    pub which: Which,
}

#[derive(Debug, Args)]
pub struct AbortArgs {
    #[command(flatten)]
    pub which: Which,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The stream to show (default: every stream of the run)
    pub stream: Option<String>,
    #[command(flatten)]
    pub which: Which,
    /// Print it as JSON on stdout (versioned schema, see README)
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The stream (default: the integration branch against the base)
    pub stream: Option<String>,
    /// Only the files changed and how much (`git diff --stat`)
    #[arg(long)]
    pub stat: bool,
    /// The resolver agent's resolution of the stream's conflict, alone: the conflicted files
    /// as the integration has them against the resolution
    #[arg(long, requires = "stream")]
    pub resolution: bool,
    #[command(flatten)]
    pub which: Which,
    /// Limit the diff to these paths
    #[arg(last = true, value_name = "PATHS")]
    pub paths: Vec<String>,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// The stream
    pub stream: String,
    /// The task, numbered from 1 (default: the one running, else the last that ran)
    pub task: Option<usize>,
    /// Follow the log while the task runs; stop when it ends
    #[arg(short, long)]
    pub follow: bool,
    #[command(flatten)]
    pub which: Which,
}

#[derive(Debug, Args)]
pub struct PrArgs {
    /// The streams to push (default: every stream with commits)
    #[arg(value_name = "STREAM", conflicts_with = "integration")]
    pub streams: Vec<String>,
    /// The remote to push to (a name from `git remote`)
    #[arg(long, value_name = "NAME")]
    pub remote: String,
    /// Push the integration branch and open one pull request for it instead
    #[arg(long)]
    pub integration: bool,
    /// The branch the pull requests merge into (default: the plan's base)
    #[arg(long, value_name = "BRANCH")]
    pub base: Option<String>,
    /// Open new pull requests as drafts
    #[arg(long)]
    pub draft: bool,
    /// Print the `git push` and `gh` commands instead of running them
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub which: Which,
}

#[derive(Debug, Args)]
#[command(after_help = "\
A conflict parks its stream (exit 3 once nothing else can move) as in a local run: resolve it, then `streams continue STREAM` \
(which also pushes the result), `streams skip STREAM` or `streams abort`. A stream whose machine \
pushed nothing is reported as missing (exit 4); run the same command again once it has pushed. \
Running it again after a finish or a crash gives the same result.")]
pub struct IntegrateArgs {
    /// The plan file (default: streams.toml at the repository root); it must be the plan every
    /// machine ran (its hash is in each machine's manifest)
    pub plan: Option<PathBuf>,
    /// The remote the machines pushed to (a name or URL); the result is pushed there too
    #[arg(long, value_name = "REMOTE")]
    pub from: String,
    /// The run id the machines were given
    #[arg(long, value_name = "ID")]
    pub run_id: String,
    /// Integrate only stage K's streams (numbered from 0; `streams plan --json` lists the
    /// stages), on top of stage K-1's result, and push the tip as stage K for
    /// `run --after-stage K`. Default: every stream of the plan
    #[arg(long, value_name = "K")]
    pub stage: Option<usize>,
    /// The commit the run's first stage started from (the `--base` its machines were given).
    /// Default: the plan's base as it resolves here. Never taken from what machines pushed: a
    /// manifest cannot choose what the integration starts from
    #[arg(long, value_name = "COMMIT")]
    pub base: Option<String>,
    /// With --stage K (K > 0): the tip stage K-1 was integrated to, as its integrate job
    /// reported it (in GitHub Actions, its output `tip`). Never read from a ref on the remote
    #[arg(long, value_name = "COMMIT", requires = "stage")]
    pub start: Option<String>,
    /// The manifest commit STREAM's own job reported (in GitHub Actions, its output
    /// `manifest`; empty when it reported none), repeatable. Given, only these are read: no
    /// job can put work in another stream's name. Not given, the manifests on the remote are
    /// read, which any job that can push could have written
    #[arg(long, value_name = "STREAM=COMMIT", value_parser = stream_commit)]
    pub manifest: Vec<(String, String)>,
    /// Print events as NDJSON on stdout
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub report: ReportArgs,
}

/// `STREAM=COMMIT` (the commit may be empty: the stream's job reported nothing).
fn stream_commit(text: &str) -> std::result::Result<(String, String), String> {
    match text.rsplit_once('=') {
        Some((stream, commit)) if !stream.is_empty() => {
            Ok((stream.to_string(), commit.trim().to_string()))
        }
        _ => Err("expected STREAM=COMMIT".to_string()),
    }
}

#[derive(Debug, Args)]
pub struct ContinueArgs {
    /// The parked stream whose conflict you resolved (needed when several are parked; they go
    /// in any order)
    pub stream: Option<String>,
    #[command(flatten)]
    pub which: Which,
    /// Record the resolution even if it drops or rewrites the stream's work outside the
    /// conflicted files
    #[arg(long)]
    pub force: bool,
    /// Print events as NDJSON on stdout while the run goes on
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub report: ReportArgs,
}

#[derive(Debug, Args)]
pub struct SkipArgs {
    /// The stream to leave out
    pub stream: String,
    #[command(flatten)]
    pub which: Which,
    /// Print events as NDJSON on stdout while the run goes on
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub report: ReportArgs,
}

#[derive(Debug, Args)]
pub struct ResumeArgs {
    #[command(flatten)]
    pub which: Which,
    /// Print events as NDJSON on stdout
    #[arg(long)]
    pub json: bool,
    /// Agents running at once (default: what the interrupted run used)
    #[arg(long, short)]
    pub jobs: Option<usize>,
    #[command(flatten)]
    pub report: ReportArgs,
}

#[derive(Debug, Args)]
pub struct RetryArgs {
    /// The streams to run again
    #[arg(required = true, value_name = "STREAM")]
    pub streams: Vec<String>,
    #[command(flatten)]
    pub which: Which,
    /// Also run again every stream that depends on them and did not finish
    #[arg(long)]
    pub with_dependents: bool,
    /// Raise a budget for the retry (and the rest of the run), never lower it: the plan's
    /// (`usd=10`), a stream's (`api:tokens=2_000_000,turns=80`) or one task's (`api/2:time=45m`);
    /// limits usd, tokens, turns, time. Repeat it for several budgets
    #[arg(long = "budget", value_name = "[STREAM[/TASK]:]LIMIT=VALUE,...", value_parser = ops::retry::parse_budget)]
    pub budgets: Vec<ops::retry::BudgetRaise>,
    /// A new `--max-cost` for the run, in US dollars (replaces the one it started with)
    #[arg(long, value_name = "USD", value_parser = parse_usd)]
    pub max_cost: Option<f64>,
    /// Print events as NDJSON on stdout
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub report: ReportArgs,
}

/// An amount in US dollars for `--max-cost` (`5`, `2.50`, `$5`).
fn parse_usd(text: &str) -> std::result::Result<f64, String> {
    text.trim()
        .trim_start_matches('$')
        .parse::<f64>()
        .ok()
        .filter(|u| u.is_finite() && *u > 0.0)
        .ok_or_else(|| format!("`{text}` is not an amount in US dollars above 0 (`5`, `2.50`)"))
}

#[derive(Debug, Args)]
pub struct MergeArgs {
    #[command(flatten)]
    pub which: Which,
    /// The branch to merge into (default: the branch checked out here); a branch checked out
    /// nowhere is moved without touching any checkout
    #[arg(long, value_name = "BRANCH")]
    pub into: Option<String>,
    /// Make a merge commit when the branch has moved since the run's base (else refused)
    #[arg(long)]
    pub allow_moved: bool,
}

#[derive(Debug, Args)]
pub struct CleanArgs {
    /// Clean this plan (by name or plan file): every run of it (default: the plan of the last
    /// run started here)
    #[arg(long, value_name = "NAME|FILE", conflicts_with = "all")]
    pub plan: Option<String>,
    /// Clean this run only: its record and what is kept under its id (and, for its plan's last
    /// run, the plan's workspaces and branches)
    #[arg(long, value_name = "ID", conflicts_with = "all")]
    pub run: Option<String>,
    /// Clean every plan that ran here
    #[arg(long)]
    pub all: bool,
    /// Also delete work that was never integrated or merged (it is listed first)
    #[arg(long)]
    pub force: bool,
    /// Say what would be removed, remove nothing
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
pub struct UiArgs {
    /// The port to listen on, on 127.0.0.1 (default: a free one)
    #[arg(long)]
    pub port: Option<u16>,
    /// Open the page in the default browser
    #[arg(long)]
    pub open: bool,
    /// Show this run (default: the current one, and each new run as it starts)
    #[arg(long, value_name = "ID", conflicts_with = "plan")]
    pub run: Option<String>,
    /// Show this plan's last run, and each new run of it as it starts: its name, or its plan file
    #[arg(long, value_name = "NAME|FILE")]
    pub plan: Option<String>,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Where to create the example repository (default: a new temporary directory)
    pub dir: Option<PathBuf>,
    /// Agents running at once
    #[arg(long, short, default_value_t = 2)]
    pub jobs: usize,
}

/// What every subcommand receives: where to work and how to talk to the user.
pub struct Context {
    /// The directory given with `-C`, or the current directory.
    pub cwd: PathBuf,
    pub ui: Ui,
    /// `--color` as given: commands that hand output to git pass it on.
    pub color: ColorChoice,
}

impl Context {
    /// The run `which` names (`--plan NAME|FILE`, relative to `-C`; `--run ID`).
    pub fn selector(&self, which: &Which) -> Result<crate::ops::runs::Selector> {
        crate::ops::runs::Selector::new(&self.cwd, which.plan.as_deref(), which.run.as_deref())
    }

    /// Says which run `command` picked, when other plans had runs too.
    pub fn say_choice(&self, command: &str, choice: Option<&crate::report::runs_view::Choice>) {
        if let Some(choice) = choice {
            self.ui
                .info(crate::report::runs_view::picked_line(command, choice));
        }
    }
}

pub fn init_logging(global: &GlobalArgs) {
    // Logs are for debugging streams itself: off unless -vv or STREAMS_LOG asks for them.
    let default = match global.verbose {
        0 | 1 => "off",
        2 => "streams=debug",
        _ => "streams=trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("STREAMS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(crate::report::printer::log_writer)
        .with_target(false)
        .try_init();
}

/// Shows the error that ended a command, with its hint, on stderr.
pub fn show_error(err: &crate::error::Error) {
    crate::report::printer::line_to_stderr(&crate::error::Rendered(err).to_string());
}

pub fn run(cli: Cli) -> Result<ExitCode> {
    ops::stop::prepare_process();
    let ui = Ui::new(
        cli.global.quiet,
        cli.global.verbose,
        cli.global.color,
        cli.global.no_progress,
    );
    let cwd = match &cli.global.change_dir {
        Some(dir) => {
            let base = std::env::current_dir().unwrap_or_default();
            let dir = base.join(dir);
            if !dir.is_dir() {
                return Err(crate::error::Error::usage(format!(
                    "cannot change to {}: no such directory",
                    dir.display()
                )));
            }
            dir
        }
        None => {
            // A shell left in a workspace a command removed: see `ops::cwd`.
            let working = crate::ops::cwd::working_dir()?;
            if let Some(gone) = &working.gone {
                ui.warn(crate::report::hints::working_in_repository(
                    gone,
                    &working.dir,
                ));
            }
            working.dir
        }
    };
    let ctx = Context {
        cwd,
        ui,
        color: cli.global.color,
    };
    match cli.command {
        Command::Plan(args) => plan::plan(&ctx, args),
        Command::Run(args) => run::run(&ctx, args),
        Command::Status(args) => status::status(&ctx, args),
        Command::Runs(args) => status::runs(&ctx, args),
        Command::Continue(args) => steer::continue_run(&ctx, args),
        Command::Skip(args) => steer::skip(&ctx, args),
        Command::Stop(args) => steer::stop(&ctx, args),
        Command::Abort(args) => steer::abort(&ctx, args),
        Command::Resume(args) => steer::resume(&ctx, args),
        Command::Retry(args) => retry::retry(&ctx, args),
        Command::Merge(args) => merge::merge(&ctx, args),
        Command::Clean(args) => clean::clean(&ctx, args),
        Command::Show(args) => review::show(&ctx, args),
        Command::Diff(args) => review::diff(&ctx, args),
        Command::Logs(args) => review::logs(&ctx, args),
        Command::Pr(args) => review::pr(&ctx, args),
        Command::Integrate(args) => machines::integrate(&ctx, args),
        Command::Ui(args) => ui::ui(&ctx, args),
        Command::Demo(args) => demo::demo(&ctx, args),
        Command::Init(args) => init::init(&ctx, args),
        Command::Ci(args) => ci::ci(&ctx, args),
        Command::Completions(args) => completions::completions(args),
        Command::Man => completions::man(),
    }
}
