#!/usr/bin/env bash
# One command from a fresh checkout to the full test suite (browser and end-to-end training tests
# included). Installs Debian's chromium for the browser test when it is missing and we are root.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
    || echo "warning: could not install chromium; the browser test will be skipped"
fi
export GRADIO_ANALYTICS_ENABLED=False HF_HUB_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1
# -m "" lifts pyproject's default selection (the fast tier): every tier runs unless the caller picks one
exec .venv/bin/python -m pytest -m "" "$@"
