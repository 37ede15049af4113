#!/usr/bin/env bash
# One command from a fresh checkout to the web page: install, build the default model if it is
# missing (about 10 minutes on a 2-core AVX2-only CPU, see README "Figures"), start the demo on
# http://127.0.0.1:7860.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
export GRADIO_ANALYTICS_ENABLED=False HF_HUB_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1
if [ ! -f models/default/eventcoder.json ]; then
  echo "building the default model from data/ (first run only) ..."
  .venv/bin/eventcoder train --config configs/default.yaml --overwrite  # a directory without eventcoder.json is a broken one
fi
exec .venv/bin/eventcoder demo "$@"
