"""The one per-process cache of heavy parts: envs, loaded language models, reward models, interventions.

A worker (a pool process or a Ray task's process) runs many jobs; building an env (a JVM, a
catalogue) or loading a model once per job would dominate the run. Everything built from a spec is
kept here under (kind, the spec as JSON), so a worker builds each part once, whichever stage asks.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

_PARTS: dict[tuple[str, str], Any] = {}
# Threads of one worker (agentcritic.concurrency) ask at once: a part is built once, by one of them.
_BUILDING = threading.RLock()


def cached(kind: str, spec: Any, build: Callable[[], T]) -> T:
    """The part of ``kind`` built from ``spec`` in this process, built by ``build()`` the first time."""
    key = (kind, json.dumps(spec, sort_keys=True, default=str))
    part = _PARTS.get(key, _MISSING)
    if part is _MISSING:
        with _BUILDING:
            part = _PARTS.get(key, _MISSING)
            if part is _MISSING:
                part = _PARTS[key] = build()
    return part  # type: ignore[no-any-return]


_MISSING = object()


def cached_parts(kind: str | None = None) -> list[Any]:
    """The parts held (of one kind, or all): for tests and for closing them."""
    return [part for (k, _), part in _PARTS.items() if kind is None or k == kind]


def clear(kind: str | None = None) -> None:
    """Forget the parts held (of one kind, or all); envs are closed."""
    for key in [k for k in _PARTS if kind is None or k[0] == kind]:
        part = _PARTS.pop(key)
        close = getattr(part, "close", None)
        if key[0] == "env" and callable(close):
            close()
