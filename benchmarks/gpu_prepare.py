"""Prepare what `benchmarks/gpu_check.sh` needs on a GPU machine that can fetch nothing.

Run here (online for PyPI, with the mop-bench model cache built): writes
`benchmarks/gpu_assets/` (git-ignored, about 22 MB):
- `model/`: SmolLM2-135M-Instruct's config and tokenizer files, no weights (the check
  builds a random-weight model of the exact architecture: throughput does not depend on
  the weights, and the 538 MB of weights could not travel);
- `wheels/`: the packages the GPU image lacks (`mauve-text`, `faiss-cpu`; its torch,
  transformers, sentence-transformers, pandas, pyarrow, ... are there).

Then, with the device tool: `run` with carry ["benchmarks/gpu_assets"] and the command
`bash benchmarks/gpu_check.sh`.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ASSETS = HERE / "gpu_assets"
MODEL_FILES = (
    "config.json",
    "generation_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "chat_template.jinja",
)
WHEELS = ("mauve-text", "faiss-cpu")


def main() -> None:
    from mop_bench.lm.loading import ensure_dequantized, resolve_model

    source = resolve_model("smollm2-135m-instruct")
    folder = Path(ensure_dequantized(source))
    model_dir = ASSETS / "model"
    model_dir.mkdir(parents=True, exist_ok=True)
    for name in MODEL_FILES:
        if (folder / name).is_file():
            shutil.copy2(folder / name, model_dir / name)
    wheels = ASSETS / "wheels"
    wheels.mkdir(exist_ok=True)
    # The GPU image runs Python 3.12 on x86-64 (device KINDS.md); faiss-cpu is abi3.
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
         "--python-version", "3.12", "--platform", "manylinux_2_28_x86_64",
         "-d", str(wheels), *WHEELS],
        check=True,
    )  # fmt: skip
    size = sum(p.stat().st_size for p in ASSETS.rglob("*") if p.is_file())
    print(f"assets: {ASSETS} ({size / 2**20:.1f} MiB)")


if __name__ == "__main__":
    main()
