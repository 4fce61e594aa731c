"""Entry point for subprocess tests: the real CLI with a fake, slow LM backend and a
hashed bag-of-words encoder, so a run can be killed part-way through generation."""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fake_lm import FakeLM
from test_runner import HashEncoder

from mop_bench import embed
from mop_bench.cli import main
from mop_bench.lm.registry import LM_BACKENDS


class SlowFakeLM(FakeLM):
    """Sleeps per generate call so a test has time to kill the process mid-run."""

    def generate(self, *args, **kwargs):
        time.sleep(float(__import__("os").environ.get("FAKE_LM_DELAY", "0")))
        return super().generate(*args, **kwargs)


def _fake_backend(spec, *, batch_size, progress, **kw):
    return SlowFakeLM(name="slow-fake")


LM_BACKENDS.register("fake", _fake_backend, replace=True)
embed.Encoder = lambda spec=None, **kw: HashEncoder()  # type: ignore[misc,assignment]

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
