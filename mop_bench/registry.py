"""One generic registry for tasks, simulators, metrics and LM backends.

Entries register lazily: declarative cards (YAML files) are discovered on first use,
and code entries register a *factory* by dotted path, so nothing heavy is imported
until an entry is actually built. Unknown names get a "did you mean" error listing
what exists.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable, Iterator
from importlib import resources
from pathlib import Path
from typing import Generic, TypeVar

T = TypeVar("T")


class UnknownNameError(KeyError):
    """Raised for a name that is not registered; the message lists the choices."""

    def __str__(self) -> str:  # KeyError quotes its message; we want it plain
        return str(self.args[0])


def suggest(name: str, choices: list[str] | tuple[str, ...]) -> str:
    """' (did you mean X?)' for the closest choice, or ''."""
    close = difflib.get_close_matches(name, list(choices), n=2, cutoff=0.5)
    return f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""


class Registry(Generic[T]):
    """Named entries of one kind; each is a value or a lazily imported factory."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T | str] = {}
        self._loaders: list[Callable[[Registry[T]], None]] = []
        self._loaded = False

    def register(self, name: str, entry: T | str, *, replace: bool = False) -> None:
        """Register a value, or a `"module:attr"` string imported on first `get`."""
        if name in self._entries and not replace:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        self._entries[name] = entry

    def decorator(self, name: str) -> Callable[[T], T]:
        def wrap(obj: T) -> T:
            self.register(name, obj)
            return obj

        return wrap

    def add_loader(self, loader: Callable[[Registry[T]], None]) -> None:
        """A function that registers entries on first lookup (e.g. scans card files)."""
        self._loaders.append(loader)
        self._loaded = False

    def _ensure_loaded(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        for loader in self._loaders:
            loader(self)

    def names(self) -> list[str]:
        self._ensure_loaded()
        return sorted(self._entries)

    def __contains__(self, name: str) -> bool:
        self._ensure_loaded()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def get(self, name: str) -> T:
        self._ensure_loaded()
        if name not in self._entries:
            names = self.names()
            raise UnknownNameError(
                f"unknown {self.kind} {name!r}{suggest(name, names)}; "
                f"available: {', '.join(names) or '(none)'}"
            )
        entry = self._entries[name]
        if isinstance(entry, str) and ":" in entry and not entry.endswith((".yaml", ".yml")):
            module, attr = entry.split(":", 1)
            value = getattr(importlib.import_module(module), attr)
            self._entries[name] = value
            return value
        return entry  # type: ignore[return-value]


def cards_dir(kind: str) -> Path:
    """Directory of the bundled declarative files of `kind` ("tasks" or "baselines").

    A wheel carries them inside the package (mop_bench/_cards/<kind>); a source checkout
    or editable install reads them from the repository root.
    """
    packaged = resources.files("mop_bench") / "_cards" / kind
    if packaged.is_dir():
        return Path(str(packaged))
    source = Path(__file__).resolve().parent.parent / kind
    if source.is_dir():
        return source
    raise FileNotFoundError(f"bundled {kind} cards not found (looked in {packaged} and {source})")
