#!/usr/bin/env bash
# Sets everything up, then runs the whole test suite (slow end-to-end tests included).
#   bash scripts/test.sh [pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
set +e
.venv/bin/python -m pytest "$@"
status=$?
set -e
if [ "$status" -eq 5 ]; then
  echo "error: pytest collected no tests (exit 5); that is a failure here, not a pass" >&2
  exit 1
fi
exit "$status"
