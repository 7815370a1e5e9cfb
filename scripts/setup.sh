#!/usr/bin/env bash
# Create ./.venv and install SemID Studio with its test tools. Safe to re-run: it only
# reinstalls when pyproject.toml changed since the last successful install.
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv with $($python --version)"
  "$python" -m venv .venv
fi

stamp=.venv/.semid-install-stamp
want=$(sha1sum pyproject.toml scripts/setup.sh | sha1sum | cut -c1-40)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi

echo "setup: installing dependencies into .venv (first run takes a few minutes)"
.venv/bin/python -m pip install --quiet --upgrade pip
# torch first and pinned here, so nothing that depends on it pulls a different build.
.venv/bin/python -m pip install --quiet "torch==2.13.0"
.venv/bin/python -m pip install --quiet -e ".[test]"
echo "$want" > "$stamp"
echo "setup: done"
