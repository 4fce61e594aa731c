#!/usr/bin/env bash
# The prepared GPU check (issue 20), one command on a GPU machine that can fetch nothing:
#   here:   python benchmarks/gpu_prepare.py        (writes benchmarks/gpu_assets, ~22 MB)
#   device: run(command="bash benchmarks/gpu_check.sh", carry=["benchmarks/gpu_assets"])
# 1. installs what the GPU image lacks (mauve-text, faiss-cpu) from the carried wheels;
# 2. generation and scoring throughput of a random-weight SmolLM2-135M (exact
#    architecture, real tokenizer) with --device cuda, then the same script on the CPU;
# 3. a smoke MoP run with tiny in-code models on --device cuda.
# Under 8 minutes on one H100. DEVICE=cpu runs the same steps without a GPU (to test
# the script itself); DEVICE_PROMPTS and CPU_PROMPTS set the throughput runs' sizes.
set -euo pipefail
cd "$(dirname "$0")/.."
DEVICE="${DEVICE:-cuda}"
CPU_PROMPTS="${CPU_PROMPTS:-16}"
PY="${PYTHON:-python3}"
ASSETS=benchmarks/gpu_assets
[ -d "$ASSETS/model" ] || { echo "gpu_check: $ASSETS missing: run python benchmarks/gpu_prepare.py and carry it" >&2; exit 2; }
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
OUT_DIR="${OUT:-/tmp/gpu_check_out}"
mkdir -p "$OUT_DIR"

echo "== packages"
missing=$("$PY" - <<'PY'
import importlib.util
need = {"mauve": "mauve_text", "faiss": "faiss_cpu"}
print(" ".join(w for m, w in need.items() if importlib.util.find_spec(m) is None))
PY
)
for wheel in $missing; do
  "$PY" -m pip install -q --no-index --no-deps "$ASSETS"/wheels/"${wheel}"-*.whl
done
"$PY" -c "import torch, transformers, sentence_transformers; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.get_device_name() if torch.cuda.is_available() else ''); print('transformers', transformers.__version__, 'sentence-transformers', sentence_transformers.__version__)"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || true

echo "== throughput: --device $DEVICE"
timeout 200 "$PY" benchmarks/gpu_throughput.py --device "$DEVICE" --prompts "${DEVICE_PROMPTS:-64}" | tee "$OUT_DIR/throughput_$DEVICE.txt"
echo "== throughput: --device cpu ($CPU_PROMPTS prompts)"
timeout 200 "$PY" benchmarks/gpu_throughput.py --device cpu --prompts "$CPU_PROMPTS" | tee "$OUT_DIR/throughput_cpu.txt"
"$PY" - "$OUT_DIR/throughput_$DEVICE.txt" "$OUT_DIR/throughput_cpu.txt" <<'PY'
import sys
def read(path):
    return {k: v for k, _, v in (l.partition(": ") for l in open(path)) if v}
dev, cpu = read(sys.argv[1]), read(sys.argv[2])
for name in ("generate_new_tokens_per_s", "score_continuation_tokens_per_s", "score_all_tokens_per_s"):
    print(f"ratio_{name}: {float(dev[name]) / float(cpu[name]):.2f}x")
PY

echo "== smoke MoP run: --device $DEVICE"
timeout 240 "$PY" benchmarks/gpu_smoke.py --device "$DEVICE" | tee "$OUT_DIR/smoke_$DEVICE.txt"
echo "gpu_check: done"
