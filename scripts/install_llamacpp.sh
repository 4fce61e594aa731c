#!/usr/bin/env bash
# Build llama-cpp-python's OpenAI-compatible server into ./.venv-llamacpp (idempotent).
# Its own venv: it is a separate server process, reached over HTTP (`--backend openai`).
# - Built from source: no prebuilt CPU wheel on PyPI. The default `-march=native` build
#   crashed with "Illegal instruction" on the project's machines, so GGML_NATIVE=OFF
#   (AVX2/FMA/F16C baseline). LLAVA_BUILD=OFF skips the multimodal library (not needed
#   for text; the server imports it lazily), which shortens the build.
# - The build takes 5 minutes on an idle 2-core machine and up to 25 under load.
# - Prints the build time and the venv's size (recorded in docs/lm.md).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${MOP_BENCH_LLAMACPP_VENV:-.venv-llamacpp}
VERSION=${MOP_BENCH_LLAMACPP_VERSION:-0.3.36}
PY=${PYTHON:-python3}
MARKER="$VENV/.mop-bench-installed"
if [ "$(cat "$MARKER" 2>/dev/null)" = "llama-cpp-python==$VERSION" ]; then
  echo "llama-cpp-python $VERSION already in $(cd "$VENV" && pwd)"
  exit 0
fi
# pip quiet, less the local index's "Location ... is ignored" notes
pip_() { "$VENV/bin/python" -m pip "$@" 2> >(grep -v "is ignored" >&2); }
start=$(date +%s)
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
pip_ install -q --upgrade pip
CMAKE_ARGS="-DGGML_NATIVE=OFF -DLLAVA_BUILD=OFF ${CMAKE_ARGS:-}" \
CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)} \
  pip_ install -q --no-cache-dir "llama-cpp-python[server]==$VERSION"
echo "llama-cpp-python==$VERSION" > "$MARKER"
echo "llama-cpp-python $VERSION installed in $(cd "$VENV" && pwd) in $(( $(date +%s) - start )) s ($(du -sh "$VENV" | cut -f1))"
