#!/usr/bin/env bash
# Installs the real agent CLIs the integration tests run (tests/integration/agents), from the
# lock files beside this script, with the registries' own clients only:
#   - npm: Claude Code, Codex, Gemini CLI, Qwen Code (package-lock.json) into node_modules/;
#   - Node.js 20 or newer to run them: the machine's when new enough, else the npm registry's
#     `node-linux-<arch>` package into node/bin (Debian's nodejs is 18 on bookworm);
#   - PyPI: aider (requirements.txt) into a virtual environment .venv/ made with Debian's python3
#     (a pyenv python under /root cannot be run by another user);
#   - the unprivileged account `streams-agent` the CLIs run as (when run as root).
# Installs go to $STREAMS_AGENT_CLIS when set (a directory the unprivileged account can read),
# else next to this script. Each step is skipped when its lock file is already installed.
# Prints how long each step took on stderr.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
dest="${STREAMS_AGENT_CLIS:-$here}"
mkdir -p "$dest"
# The Node.js that runs the npm CLIs when the machine's is older than 20 (npm registry package).
node_version=22.23.5
account=streams-agent

sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo=sudo; fi
apt_updated=""
apt_install() {
  if [ -z "$apt_updated" ]; then
    $sudo apt-get update -qq
    apt_updated=1
  fi
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"
}
step_started=0
step() { step_started=$(date +%s); echo "agents: $1..." >&2; }
done_step() { echo "agents: $1 in $(($(date +%s) - step_started)) s" >&2; }
node_major() { "$1" --version 2>/dev/null | sed -n 's/^v\([0-9]*\).*/\1/p'; }

# npm (with any Node) fetches the packages; only running them needs Node 20.
if ! command -v npm >/dev/null 2>&1; then
  step "installing Debian's nodejs and npm"
  apt_install nodejs npm
  done_step "nodejs and npm"
fi
system_major="$(node_major node || true)"
bundled_major="$(node_major "$dest/node/bin/node" || true)"
if [ "${system_major:-0}" -lt 20 ] && [ "${bundled_major:-0}" -lt 20 ]; then
  case "$(uname -m)" in
    x86_64) arch=x64 ;;
    aarch64 | arm64) arch=arm64 ;;
    *) echo "agents: no Node.js package for $(uname -m)" >&2; exit 1 ;;
  esac
  step "installing Node.js $node_version (npm package node-linux-$arch)"
  npm install --no-save --no-package-lock --no-audit --no-fund --prefix "$dest/node-package" \
    "node-linux-$arch@$node_version" >/dev/null
  mkdir -p "$dest/node/bin"
  ln -sfn "$dest/node-package/node_modules/node-linux-$arch/bin/node" "$dest/node/bin/node"
  done_step "Node.js $(node_major "$dest/node/bin/node")"
fi
if [ -x "$dest/node/bin/node" ]; then export PATH="$dest/node/bin:$PATH"; fi

# The npm CLIs, at the versions of the lock file. `npm ci` refuses this lock: Qwen Code's
# clipboard add-on names platform packages the registry never had, which `npm install` leaves
# out of the lock and `npm ci` then calls missing; `npm install --no-save` installs exactly what
# the lock says and leaves it alone. Install scripts are not run: they would download prebuilt
# add-ons from outside the registry (keytar) or compile them (node-pty), which the CLIs do
# without; Claude Code's own, which puts its native binary in place, is run by hand.
if ! cmp -s "$here/package-lock.json" "$dest/node_modules/.streams-installed-lock.json"; then
  step "installing the npm CLIs (package-lock.json)"
  if [ "$dest" != "$here" ]; then cp "$here/package.json" "$here/package-lock.json" "$dest/"; fi
  rm -rf "$dest/node_modules"
  (cd "$dest" && npm install --no-save --ignore-scripts --no-audit --no-fund --loglevel=error)
  (cd "$dest/node_modules/@anthropic-ai/claude-code" && node install.cjs)
  cp "$here/package-lock.json" "$dest/node_modules/.streams-installed-lock.json"
  done_step "npm CLIs ($(du -sh "$dest/node_modules" | cut -f1))"
fi

# aider, in a virtual environment of Debian's python3.
python=/usr/bin/python3
if ! [ -x "$python" ] || ! "$python" -c 'import ensurepip, venv' >/dev/null 2>&1; then
  step "installing Debian's python3-venv"
  apt_install python3 python3-venv
  done_step "python3-venv"
fi
if ! cmp -s "$here/requirements.txt" "$dest/.venv/.streams-installed-requirements.txt"; then
  step "installing aider (requirements.txt)"
  rm -rf "$dest/.venv"
  "$python" -m venv "$dest/.venv"
  "$dest/.venv/bin/pip" install --quiet --no-input --disable-pip-version-check --no-deps \
    -r "$here/requirements.txt"
  cp "$here/requirements.txt" "$dest/.venv/.streams-installed-requirements.txt"
  done_step "aider ($(du -sh "$dest/.venv" | cut -f1))"
fi

# The unprivileged account (Claude Code refuses to skip permissions as root).
if [ "$(id -u)" -eq 0 ] && ! id "$account" >/dev/null 2>&1; then
  useradd --system --create-home --home-dir "/var/lib/$account" --shell /bin/bash "$account"
  echo "agents: created the account $account" >&2
fi
