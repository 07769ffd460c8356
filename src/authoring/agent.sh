#!/bin/sh
# The agent streams runs for every task of the plan (`agent = ["sh", "scripts/agent.sh",
# "{prompt_file}"]`), written by `streams init --agent script`. Make it call your agent.
#
# It runs in the stream's own workspace: a private copy of the repository at the plan's base
# commit, so this file must be committed for the workspaces to have it. $1 is the prompt file:
# the task and what the stream may change. streams also sets, among others:
#   STREAMS_STREAM, STREAMS_TASK  the stream's name and the task's text
#   STREAMS_OWNS                  the patterns it may change, one a line (and STREAMS_SHARED)
# Change files, commit them or leave them for streams to commit; exit 0 when the task is done,
# non-zero when it failed (streams keeps the log and says so).
set -eu
prompt_file="$1"

# Call your agent here, for example:
#   my-agent --non-interactive --prompt-file "$prompt_file"
echo "scripts/agent.sh calls no agent yet: edit it to run one on $prompt_file (task: $STREAMS_TASK)" >&2
exit 1
