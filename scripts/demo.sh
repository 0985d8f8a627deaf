#!/usr/bin/env bash
# Sets everything up, then runs the main job (the end-to-end demo) and prints where the report is.
#   bash scripts/demo.sh [agentcritic demo options]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/agentcritic demo "$@"
