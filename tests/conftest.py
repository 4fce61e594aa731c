"""Shared fixtures: real inference-engine servers (see tests/engines.py).

An engine test is marked `engine` and `slow`. Without the engine's virtualenv it is
skipped with the command that installs it, except in CI (CI=true), where
scripts/test.sh installs vLLM first, so a missing engine is a failure there.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import engines
import pytest


def _require(engine: str) -> None:
    reason = engines.missing_reason(engine)
    if reason is None:
        return
    if os.environ.get("CI") and engine == "vllm" and os.environ.get("MOP_BENCH_ENGINES") != "0":
        pytest.fail(f"CI must run the vLLM tests: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def vllm_server() -> Iterator[engines.Server]:
    """vLLM's OpenAI-compatible server (float32 SmolLM2), started once per test module
    (and stopped after it, so it does not hold memory and a core through the rest)."""
    _require("vllm")
    with engines.serving("vllm") as server:
        yield server


@pytest.fixture(scope="module")
def llamacpp_server() -> Iterator[engines.Server]:
    """llama-cpp-python's server (the Q4_1 GGUF), started once per test module."""
    _require("llama-cpp-python")
    with engines.serving("llama-cpp-python") as server:
        yield server
