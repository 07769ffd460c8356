//! What an agent is given for one task: the task's text, its rendered prompt, and the argv of
//! its command with the placeholders filled in.
//!
//! Built the same way for a run ([`super::Engine`] starting a task) and for `run --dry-run`, so
//! the dry run shows exactly what a run would execute.

use std::path::{Path, PathBuf};

use super::prompt::{self, DependencyWork};
use crate::agent::preset::{Invocation, Setting};
use crate::agent::{AgentSpec, Placeholders, Preset};
use crate::plan::Plan;

/// An agent as it starts for one task: its argv with the placeholders still in (a preset's
/// invocation, or the plan's argv), what a preset adds to its environment and may write outside
/// its workspace, and the preset.
pub struct AgentStart {
    pub template: Vec<String>,
    pub env: Vec<(String, String)>,
    pub writable: Vec<PathBuf>,
    pub preset: Option<Preset>,
}

impl AgentStart {
    /// How `agent` starts for a task whose home (a preset's configuration folder) is `home`;
    /// `resume`: the session a preset continues.
    pub fn new(agent: &AgentSpec, home: &Path, resume: Option<&str>) -> AgentStart {
        match agent {
            AgentSpec::Argv(argv) => AgentStart {
                template: argv.clone(),
                env: Vec::new(),
                writable: Vec::new(),
                preset: None,
            },
            AgentSpec::Preset(preset) => {
                let user_home = std::env::var_os("HOME")
                    .filter(|h| !h.is_empty())
                    .map(PathBuf::from);
                let Invocation {
                    argv,
                    env,
                    writable,
                } = preset.invocation(&Setting {
                    home,
                    resume,
                    as_root: nix::unistd::geteuid().is_root(),
                    user_home: user_home.as_deref(),
                });
                AgentStart {
                    template: argv,
                    env,
                    writable,
                    preset: Some(preset.clone()),
                }
            }
        }
    }
}

pub struct TaskSpec {
    /// The task's own text (its `prompt`, or the contents of its `prompt_file`).
    pub text: String,
    /// The prompt the agent receives: the text with the stream's context around it.
    pub prompt: String,
    /// Where the prompt is written for `{prompt_file}`.
    pub prompt_file: String,
    pub worktree: String,
    stream: String,
    task_index: usize,
    /// `{slot}` and `{port}`: known once the task starts (a dry run leaves them as written).
    slot: Option<(String, String)>,
    /// `{check_output}` / `{check_output_file}`: set when the agent fixes a failed check.
    pub check_output: String,
    pub check_output_file: String,
    /// `{usage_file}`: known once the task starts.
    pub usage_file: Option<String>,
}

impl TaskSpec {
    /// The spec of task `t` of stream `s`, given its text, what its dependencies did, and where
    /// its prompt file and worktree are.
    pub fn new(
        plan: &Plan,
        s: usize,
        t: usize,
        text: String,
        deps: &[DependencyWork],
        prompt_file: &Path,
        worktree: &Path,
    ) -> TaskSpec {
        let prompt = prompt::render(plan, s, t, &text, deps);
        TaskSpec {
            text,
            prompt,
            prompt_file: prompt_file.display().to_string(),
            worktree: worktree.display().to_string(),
            stream: plan.streams[s].name.clone(),
            task_index: t + 1,
            slot: None,
            check_output: String::new(),
            check_output_file: String::new(),
            usage_file: None,
        }
    }

    /// The spec for a task that runs in `slot`, whose ports start at `port`.
    pub fn in_slot(mut self, slot: usize, port: u16) -> TaskSpec {
        self.slot = Some((slot.to_string(), port.to_string()));
        self
    }

    /// The argv to run: the agent command with every placeholder filled in.
    pub fn argv(&self, agent: &[String]) -> Vec<String> {
        self.placeholders().argv(agent)
    }

    /// The argv as a person is shown it: `{prompt}` stays where the prompt would go.
    pub fn argv_shown(&self, agent: &[String]) -> Vec<String> {
        self.placeholders().argv_shown(agent)
    }

    fn placeholders(&self) -> Placeholders<'_> {
        Placeholders {
            prompt: &self.prompt,
            prompt_file: &self.prompt_file,
            stream: &self.stream,
            task: &self.text,
            task_index: self.task_index,
            worktree: &self.worktree,
            slot: self.slot.as_ref().map(|(slot, _)| slot.as_str()),
            port: self.slot.as_ref().map(|(_, port)| port.as_str()),
            check_output: &self.check_output,
            check_output_file: &self.check_output_file,
            usage_file: self.usage_file.as_deref(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> Plan {
        crate::plan::parse_simple(
            r#"
[plan]
name = "p"
agent = ["agent", "-p", "{prompt}", "--file={prompt_file}", "{stream}#{task_index}", "{worktree}"]

[[stream]]
name = "api"
owns = ["api/**"]
tasks = ["add the endpoint"]
"#,
        )
        .expect("a valid plan")
    }

    fn spec(plan: &Plan) -> TaskSpec {
        TaskSpec::new(
            plan,
            0,
            0,
            "add the endpoint".into(),
            &[],
            Path::new("/run/prompts/api/1.md"),
            Path::new("/wt/api"),
        )
    }

    #[test]
    fn the_run_gets_the_rendered_prompt_and_every_placeholder() {
        let plan = plan();
        let spec = spec(&plan);
        let agent = plan
            .agent_for(&plan.streams[0], &plan.streams[0].tasks[0])
            .unwrap();
        let agent = &AgentStart::new(agent, Path::new("/h"), None).template;
        assert!(spec.prompt.contains("add the endpoint"));
        assert_eq!(
            spec.argv(agent),
            [
                "agent",
                "-p",
                spec.prompt.as_str(),
                "--file=/run/prompts/api/1.md",
                "api#1",
                "/wt/api"
            ]
        );
    }

    #[test]
    fn a_person_sees_the_same_argv_with_the_prompt_left_as_a_placeholder() {
        let plan = plan();
        let spec = spec(&plan);
        let agent = plan
            .agent_for(&plan.streams[0], &plan.streams[0].tasks[0])
            .unwrap();
        let agent = &AgentStart::new(agent, Path::new("/h"), None).template;
        let (run, shown) = (spec.argv(agent), spec.argv_shown(agent));
        assert_eq!(shown[2], "{prompt}");
        assert_eq!(run[..2], shown[..2]);
        assert_eq!(run[3..], shown[3..]);
    }
}
