"""The command line's output: our log lines only, one progress bar per stage, and no
traceback when the reader of standard output leaves early (`... | head`).

A run used to print, besides its own lines, sentence-transformers' INFO line naming
the model folder, transformers' "Loading weights" bars (one for the encoder, one for
the LM) and the LM's per-call bars nested under the stage's bar; log lines cut through
the bars. Third-party bars are switched off here (huggingface_hub's switch, which
transformers reads when it is imported), third-party loggers keep their warnings only,
and log lines are written through tqdm so that a running bar is redrawn below them.

INFO lines read `time level message`; with MOP_BENCH_DEBUG set they carry the logger's
module path and DEBUG lines show too.
"""

from __future__ import annotations

import logging
import os
import sys

#: Libraries whose INFO lines describe their internals, not the run.
THIRD_PARTY = (
    "sentence_transformers",
    "transformers",
    "huggingface_hub",
    "datasets",
    "httpx",
    "urllib3",
    "filelock",
    "faiss",  # its loader logs every fallback
)
FORMAT = "%(asctime)s %(levelname)s %(message)s"
DEBUG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class TqdmHandler(logging.StreamHandler):
    """A stderr handler that writes through `tqdm.write`, so a log line printed while a
    progress bar runs lands above the bar instead of inside it."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            from tqdm import tqdm

            tqdm.write(self.format(record), file=sys.stderr)
        except Exception:  # logging must never raise; the standard way to report it
            self.handleError(record)


def silence_third_party_bars() -> None:
    """No download or "Loading weights" bars from the Hugging Face libraries. The
    environment switch is read when they are imported; libraries imported already are
    switched off through their own APIs. An explicit user setting is kept."""
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    if os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] not in ("1", "true", "True", "yes"):
        return
    if "huggingface_hub" in sys.modules:
        from huggingface_hub.utils import disable_progress_bars

        disable_progress_bars()
    if "transformers" in sys.modules:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()


def setup_logging(*, quiet: bool = False) -> None:
    """Configure the root logger for a command (a no-op where the root logger has
    handlers already, e.g. under pytest, as `logging.basicConfig`)."""
    debug = bool(os.environ.get("MOP_BENCH_DEBUG"))
    handler = TqdmHandler()
    handler.setFormatter(logging.Formatter(DEBUG_FORMAT if debug else FORMAT, "%H:%M:%S"))
    logging.basicConfig(level=logging.WARNING if quiet else logging.INFO, handlers=[handler])
    if debug:  # our DEBUG lines, not every library's
        logging.getLogger("mop_bench").setLevel(logging.DEBUG)
    for name in THIRD_PARTY:
        logging.getLogger(name).setLevel(logging.INFO if debug else logging.WARNING)
    silence_third_party_bars()


def quiet_broken_pipe() -> bool:
    """After a BrokenPipeError: whether it was our standard output whose reader left
    (a pipe's write end then polls as an error; a broken pipe elsewhere, such as an LM
    server's socket, is a real failure). If so, stdout is pointed at /dev/null so that
    the interpreter's final flush stays quiet, and the command ends normally."""
    import select

    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLERR)
        closed = any(event & select.POLLERR for _, event in poller.poll(0))
    except (OSError, ValueError, AttributeError):  # no poll(), or stdout has no descriptor
        return False
    if closed:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return closed
