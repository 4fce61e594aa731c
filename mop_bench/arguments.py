"""Turning parsed command-line arguments into run settings (used by every command).

Kept below both `cli.py` (parsing) and `commands.py` (the work), so neither imports the
other for it.
"""

from __future__ import annotations

from typing import Any


def task_name(args: Any) -> str:
    """`--task`, or the `--data` file itself when only a data file is given (the task is
    then named by the file's stem; see `data.resolve_task`)."""
    task = getattr(args, "task", None)
    if task:
        return str(task)
    data = getattr(args, "data", None)
    if data:
        return str(data)
    raise ValueError("name a task with --task (see `mop-bench ls tasks`) or give a --data file")


def spec_overrides(args: Any) -> dict[str, Any]:
    """Collect overrides from --config, --set and the shortcut flags (in that order)."""
    overrides: dict[str, Any] = {}
    if getattr(args, "config", None):
        from mop_bench.yaml_load import load_yaml

        try:
            text = args.config.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise FileNotFoundError(f"{args.config}: --config file not found") from None
        except IsADirectoryError:
            raise IsADirectoryError(
                f"{args.config}: --config takes a YAML file, not a directory"
            ) from None
        except UnicodeDecodeError as exc:
            raise ValueError(f"{args.config}: --config is not UTF-8 text ({exc.reason})") from None
        loaded = load_yaml(text, str(args.config)) or {}
        if not isinstance(loaded, dict):
            raise ValueError(f"{args.config}: expected a mapping of KEY: VALUE overrides")
        overrides.update(_flatten(loaded))
    overrides.update(dict(args.overrides))
    shortcuts = {
        "n": "budget.n_samples",
        "model": "lm.model",
        "backend": "lm.backend",
        "base_url": "lm.base_url",
        "encoder": "encoder.model",
        "data_dir": "data.data_dir",
        "data": "data.data_file",
        "text_column": "data.text_column",
        "label_column": "data.label_column",
    }
    for attr, path in shortcuts.items():
        value = getattr(args, attr, None)
        if value is not None:
            overrides[path] = value
    return overrides


def _flatten(obj: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in obj.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out
