"""Tasks and data: task cards, loading splits (mirror, Hub or user files), seeded
label-stratified pool/golden sampling, and the run's contexts."""

from mop_bench.data._card import CLEANUPS, TaskCard, load_card, render_request
from mop_bench.data._load import TaskData, draw_contexts, load_task
from mop_bench.data._read import DataError
from mop_bench.data._resolve import TASKS, resolve_task
from mop_bench.data._summary import format_summary, task_summary

__all__ = [
    "CLEANUPS",
    "TASKS",
    "DataError",
    "TaskCard",
    "TaskData",
    "draw_contexts",
    "format_summary",
    "load_card",
    "load_task",
    "render_request",
    "resolve_task",
    "task_summary",
]
