#!/usr/bin/env bash
# Installs eventcoder and everything it needs into .venv/ in the repo root. Idempotent: a second
# run with an unchanged pyproject.toml and install script does nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
stamp=".venv/.eventcoder-installed"
want="$(cat pyproject.toml scripts/install.sh | sha256sum | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
.venv/bin/python -m pip install --quiet --upgrade pip
# The CPU wheel of torch first: an unpinned torch would pull a multi-GB CUDA build.
.venv/bin/python -m pip install --quiet torch==2.13.0
.venv/bin/python -m pip install --quiet -e ".[test,ray]"
echo "$want" > "$stamp"
echo "eventcoder installed: .venv/bin/eventcoder"
