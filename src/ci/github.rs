//! The GitHub Actions workflow of a plan spread over CI jobs (`streams ci github`).
//!
//! Jobs: `plan` checks the plan (its stages must still be this file's) and pins the base and
//! the run id as job outputs; per stream, `stream-<name>` runs it (`streams run --only`,
//! pushing its branch and manifest) and reports its manifest's commit as its output; per
//! stage k, `integrate-k` integrates the stage (`streams integrate --stage k`) from those
//! outputs, even when some of its streams failed (so that it reports them), and reports the
//! tip as its output, which stage k + 1 starts from. Stage k + 1 starts only from a cleanly
//! integrated stage k.
//!
//! One job per stream, not a matrix: a matrix's entries share one set of outputs (the last to
//! set one wins), so any entry could report another stream's work as its own; a job's own
//! outputs can be set by that job only. Every value taken from the plan reaches a shell through
//! `env:`, never spliced into a script.
//!
//! Written by hand rather than through a YAML serialiser: the file is read by people, and its
//! comments and layout are part of what it says.

use std::fmt::Write as _;

use super::{Options, Spread};
use crate::plan::Plan;
use crate::text::escape_unsafe;

/// The workflow file for `plan`.
pub fn workflow(plan: &Plan, options: &Options, spread: &Spread) -> String {
    let mut out = String::new();
    header(&mut out, plan, options);
    plan_job(&mut out, plan, options, spread);
    let ids = job_ids(&spread.stages);
    for (k, stage) in spread.stages.iter().enumerate() {
        for (i, stream) in stage.iter().enumerate() {
            stream_job(&mut out, plan, options, spread, &ids, k, i, stream);
        }
        integrate_job(&mut out, plan, options, spread, &ids, k);
    }
    // Each job ends with a blank line before the next; the file ends with its last line.
    format!("{}\n", out.trim_end())
}

fn header(out: &mut String, plan: &Plan, options: &Options) {
    let integration =
        crate::layout::short_branch(&crate::layout::integration_ref(&plan.name)).to_string();
    let _ = write!(
        out,
        "\
# The streams plan `{name}` ({path}) spread over GitHub Actions jobs, stage by stage: each
# stream of a stage runs in a job of its own, pushes its work and reports it as the job's
# output; then one job checks every stream's work against the plan again, integrates the stage
# and reports the tip that the next stage starts from. Work travels between jobs only as job
# outputs, which no other job can set. The result is the branch {integration}.
#
# Written by `{command}`.
# Write it again after changing the plan: the same plan gives the same file, and the first
# job stops the run when the plan's stages are no longer this file's.
name: {title}

on:
  workflow_dispatch:

permissions:
  # Stream jobs push their branches; integrate jobs push the integration branch.
  contents: write

# One run of the plan at a time: runs would push the same integration branch.
concurrency:
  group: {group}
  cancel-in-progress: false

env:
  STREAMS_PLAN: {plan_path}

jobs:
",
        name = plan.name,
        path = escape_unsafe(&options.plan_path),
        command = escape_unsafe(&options.command),
        title = yaml_str(&format!("streams {}", plan.name)),
        group = yaml_str(&format!("streams-{}", plan.name)),
        plan_path = yaml_str(&options.plan_path),
    );
}

fn plan_job(out: &mut String, plan: &Plan, options: &Options, spread: &Spread) {
    let stages = serde_json::to_string(&spread.stages).expect("strings serialise");
    let _ = write!(
        out,
        "  plan:
    name: Check the plan, pin the base
    runs-on: {runs_on}
    outputs:
      base: ${{{{ steps.pin.outputs.base }}}}
      run-id: ${{{{ steps.pin.outputs.run-id }}}}
    steps:
",
        runs_on = yaml_str(&options.runs_on),
    );
    install_steps(out, plan, options, spread);
    let _ = write!(
        out,
        "      - name: Check the plan, pin its base and the run id
        id: pin
        env:
          # The stages this file was written for.
          STAGES: {stages}
          WRITTEN_BY: {command}
          RUN_ID: ${{{{ github.run_id }}}}-${{{{ github.run_attempt }}}}
        run: |
          streams plan \"$STREAMS_PLAN\" --json > plan.json
          if [ \"$(jq -c .stages plan.json)\" != \"$STAGES\" ]; then
            echo \"::error::the plan's stages are $(jq -c .stages plan.json), this workflow's $STAGES: write it again with $WRITTEN_BY\"
            exit 2
          fi
          echo \"base=$(jq -r .plan.base_commit plan.json)\" >> \"$GITHUB_OUTPUT\"
          echo \"run-id=$RUN_ID\" >> \"$GITHUB_OUTPUT\"

      - name: Keep the plan as streams read it
        uses: actions/upload-artifact@v4
        with:
          name: streams-plan
          path: plan.json
          overwrite: true

",
        stages = yaml_single_quoted(&stages),
        command = yaml_str(&options.command),
    );
}

/// The id of each stream's job, in stage order: `stream-<name>`, with any character GitHub
/// does not take in a job id as `_`, and `-2`, `-3`... after one that is taken already.
fn job_ids(stages: &[Vec<String>]) -> Vec<Vec<String>> {
    let mut taken: std::collections::BTreeSet<String> = ["plan".to_string()].into();
    let mut ids = Vec::new();
    for stage in stages {
        let mut stage_ids = Vec::new();
        for stream in stage {
            let clean: String = stream
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                        c
                    } else {
                        '_'
                    }
                })
                .collect();
            let base = format!("stream-{clean}");
            let mut id = base.clone();
            let mut n = 2;
            // GitHub compares job ids without regard to case.
            while !taken.insert(id.to_ascii_lowercase()) {
                id = format!("{base}-{n}");
                n += 1;
            }
            stage_ids.push(id);
        }
        ids.push(stage_ids);
    }
    ids
}

/// The condition of a job that runs once the plan job and the stage before succeeded, whatever
/// became of the other jobs it waits for.
fn after_stage_condition(k: usize) -> String {
    let mut condition = "!cancelled() && needs.plan.result == 'success'".to_string();
    if k > 0 {
        let _ = write!(
            condition,
            " && needs.integrate-{}.result == 'success'",
            k - 1
        );
    }
    format!("${{{{ {condition} }}}}")
}

/// The job of stream `stream`, the `i`th of stage `k`. With the plan's `jobs` = J, the stream
/// jobs of a stage run in J lanes: the `i`th waits for the `(i - J)`th to end (however it
/// ended), so that no more than J agents run at once.
#[allow(clippy::too_many_arguments)]
fn stream_job(
    out: &mut String,
    plan: &Plan,
    options: &Options,
    spread: &Spread,
    ids: &[Vec<String>],
    k: usize,
    i: usize,
    stream: &str,
) {
    let id = &ids[k][i];
    let mut needs = vec!["plan".to_string()];
    if k > 0 {
        needs.push(format!("integrate-{}", k - 1));
    }
    let lane_before = plan
        .jobs
        .filter(|&j| j > 0 && i >= j)
        .map(|j| &ids[k][i - j]);
    if let Some(before) = lane_before {
        needs.push(before.clone());
    }
    let _ = write!(
        out,
        "  {id}:
    name: {name}
    needs: [{needs}]
",
        name = yaml_str(&format!("Stream {stream} (stage {k})")),
        needs = needs.join(", "),
    );
    if lane_before.is_some() {
        let _ = write!(
            out,
            "    # After the job before it in its lane ({} at a time), however that ended.
    if: {}
",
            plan.jobs.unwrap_or(1),
            after_stage_condition(k)
        );
    }
    let _ = write!(
        out,
        "    runs-on: {runs_on}
    outputs:
      # What this stream did: its integrate job takes the stream's work from here only.
      manifest: ${{{{ steps.run.outputs.manifest }}}}
    steps:
",
        runs_on = yaml_str(&options.runs_on),
    );
    install_steps(out, plan, options, spread);
    identity_step(out);
    let _ = write!(
        out,
        "      - name: Run the stream, push its work
        id: run
        env:
          STREAM: {stream}
          RUN_ID: ${{{{ needs.plan.outputs.run-id }}}}
",
        stream = yaml_str(stream),
    );
    let start = if k == 0 {
        out.push_str("          BASE: ${{ needs.plan.outputs.base }}\n");
        "--base \"$BASE\"".to_string()
    } else {
        let _ = writeln!(
            out,
            "          START: ${{{{ needs.integrate-{}.outputs.tip }}}}",
            k - 1
        );
        format!("--after-stage {} --start \"$START\"", k - 1)
    };
    for secret in &spread.secrets {
        let _ = writeln!(out, "          {secret}: ${{{{ secrets.{secret} }}}}");
    }
    let _ = write!(
        out,
        "        run: streams run \"$STREAMS_PLAN\" --only \"$STREAM\" --run-id \"$RUN_ID\" {start} --push origin

"
    );
    keep_run_dir_step(out, &yaml_str(&format!("stream-{stream}")));
}

fn integrate_job(
    out: &mut String,
    plan: &Plan,
    options: &Options,
    spread: &Spread,
    ids: &[Vec<String>],
    k: usize,
) {
    let mut needs = vec!["plan".to_string()];
    if k > 0 {
        needs.push(format!("integrate-{}", k - 1));
    }
    needs.extend(ids[k].iter().cloned());
    let _ = write!(
        out,
        "  integrate-{k}:
    name: Integrate stage {k}
    needs: [{needs}]
    # Also when a stream job failed: integrate reports it (and integrates the others).
    if: {condition}
    runs-on: {runs_on}
    outputs:
      # The stage's integration tip: the next stage starts from it.
      tip: ${{{{ steps.integrate.outputs.tip }}}}
    steps:
",
        needs = needs.join(", "),
        condition = after_stage_condition(k),
        runs_on = yaml_str(&options.runs_on),
    );
    install_steps(out, plan, options, spread);
    identity_step(out);
    let _ = write!(
        out,
        "      - name: Check and integrate the stage, push the integration tip
        id: integrate
        env:
          RUN_ID: ${{{{ needs.plan.outputs.run-id }}}}
          BASE: ${{{{ needs.plan.outputs.base }}}}
"
    );
    let mut args = format!(
        "streams integrate \"$STREAMS_PLAN\" --from origin --run-id \"$RUN_ID\" --base \"$BASE\" --stage {k}"
    );
    if k > 0 {
        let _ = writeln!(
            out,
            "          START: ${{{{ needs.integrate-{}.outputs.tip }}}}",
            k - 1
        );
        args.push_str(" --start \"$START\"");
    }
    out.push_str("          # Each stream's work as its own job reported it.\n");
    for (n, (stream, id)) in spread.stages[k].iter().zip(&ids[k]).enumerate() {
        let _ = writeln!(
            out,
            "          MANIFEST_{}: {}",
            n + 1,
            yaml_str(&format!("{stream}=${{{{ needs.{id}.outputs.manifest }}}}"))
        );
        let _ = write!(args, " \\\n            --manifest \"$MANIFEST_{}\"", n + 1);
    }
    let _ = write!(
        out,
        "        run: |
          {args}

"
    );
    keep_run_dir_step(out, &format!("integrate-{k}"));
}

/// Checkout, streams, the agents and `--setup`: what every job needs before it runs streams
/// (every command checks the plan, and the check looks for its agents on PATH).
fn install_steps(out: &mut String, plan: &Plan, options: &Options, spread: &Spread) {
    out.push_str(
        "      - uses: actions/checkout@v4
        with:
          # streams reads history from the plan's base, and pushes branches back.
          fetch-depth: 0

",
    );
    if plan.base != "HEAD" {
        // Every command resolves the plan's `base` when it checks the plan, but the checkout
        // holds only the branch the workflow runs on: other branches are origin/<name>.
        let _ = write!(
            out,
            "      - name: Make the plan's base resolvable
        env:
          BASE_REF: {base}
        run: git rev-parse --verify --quiet \"$BASE_REF^{{commit}}\" >/dev/null || git branch \"$BASE_REF\" \"origin/$BASE_REF\"

",
            base = yaml_str(&plan.base),
        );
    }
    out.push_str("      - name: Install streams\n");
    run_block(out, &options.install);
    if !spread.agent_installs.is_empty() {
        out.push_str("      - name: Install the agents\n");
        run_block(out, &spread.agent_installs.join("\n"));
    }
    if !options.setup.is_empty() {
        out.push_str("      - name: Set up the runner\n");
        run_block(out, &options.setup.join("\n"));
    }
}

fn identity_step(out: &mut String) {
    out.push_str(
        "      - name: Who commits
        run: |
          git config --global user.name \"github-actions[bot]\"
          git config --global user.email \"41898282+github-actions[bot]@users.noreply.github.com\"

",
    );
}

/// Uploads the job's run directory (logs, report.md, report.json, conflict bundles) whatever
/// the job's outcome, short of a cancelled run.
fn keep_run_dir_step(out: &mut String, artifact: &str) {
    let runs = crate::layout::state_dir(std::path::Path::new(".git")).join("runs");
    let _ = write!(
        out,
        "      - name: Keep the run directory
        if: ${{{{ !cancelled() }}}}
        uses: actions/upload-artifact@v4
        with:
          name: {artifact}
          path: {runs}/
          # It lives under .git, which upload-artifact skips unless told.
          include-hidden-files: true
          if-no-files-found: ignore
          # Re-running a failed job uploads again under the same name: v4 refuses that otherwise.
          overwrite: true

",
        runs = runs.display(),
    );
}

/// A `run:` step holding `script` as a literal block (any characters, as written).
fn run_block(out: &mut String, script: &str) {
    out.push_str("        run: |\n");
    for line in script.lines() {
        if line.is_empty() {
            out.push('\n');
        } else {
            let _ = writeln!(out, "          {line}");
        }
    }
    out.push('\n');
}

/// A YAML scalar for `text`: plain when it cannot be read as anything but this string, else a
/// double-quoted string (JSON's escapes are YAML's).
fn yaml_str(text: &str) -> String {
    let plain = text
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-/ ".contains(c))
        && !text.ends_with(' ')
        && !matches!(
            text.to_ascii_lowercase().as_str(),
            "true" | "false" | "yes" | "no" | "on" | "off" | "null" | "y" | "n"
        );
    if plain {
        text.to_string()
    } else {
        serde_json::to_string(text).expect("a string serialises")
    }
}

/// A single-quoted YAML scalar: only `'` is special in it.
fn yaml_single_quoted(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalars_are_plain_only_when_they_cannot_be_misread() {
        assert_eq!(yaml_str("db"), "db");
        assert_eq!(yaml_str("streams/webapp.toml"), "streams/webapp.toml");
        assert_eq!(yaml_str("on"), "\"on\"");
        assert_eq!(yaml_str("1"), "\"1\"");
        assert_eq!(yaml_str("a:b"), "\"a:b\"");
        assert_eq!(yaml_str("a#b"), "\"a#b\"");
        assert_eq!(yaml_str("-x"), "\"-x\"");
        assert_eq!(yaml_str("x'y\"z"), "\"x'y\\\"z\"");
        assert_eq!(yaml_single_quoted("[[\"it's\"]]"), "'[[\"it''s\"]]'");
    }
}
