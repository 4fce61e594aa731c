"""Entry point for subprocess tests against a real server: the real CLI and LM backends,
with the hashed bag-of-words encoder (tests/test_runner.py) instead of MiniLM, so a
run through an inference server is quick and can be killed part-way."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from test_runner import HashEncoder

from mop_bench import embed
from mop_bench.cli import main

embed.Encoder = lambda spec=None, **kw: HashEncoder()  # type: ignore[misc,assignment]

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
