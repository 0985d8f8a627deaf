"""Small shared helpers for backends: an LRU dict for scores, and atomic folder writes."""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Any


class LRUCache:
    """A thread-safe dict that forgets its least recently used entries beyond ``maxsize``."""

    def __init__(self, maxsize: int = 65536) -> None:
        self.maxsize = maxsize
        self._data: OrderedDict[Hashable, Any] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable, default: Any = None) -> Any:
        with self._lock:
            if key in self._data:
                self._data.move_to_end(key)
                self.hits += 1
                return self._data[key]
            self.misses += 1
            return default

    def put(self, key: Hashable, value: Any) -> None:
        if self.maxsize <= 0:
            return
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.maxsize:
                self._data.popitem(last=False)

    def __contains__(self, key: Hashable) -> bool:
        with self._lock:
            return key in self._data

    def __len__(self) -> int:
        with self._lock:
            return len(self._data)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()


def cache_root() -> Path:
    """agentcritic's user cache: ``$AGENTCRITIC_CACHE`` if set, else ``~/.cache/agentcritic``."""
    env = os.environ.get("AGENTCRITIC_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "agentcritic"


def build_folder_atomically(target: Path, build: Callable[[Path], None]) -> Path:
    """Create the folder ``target`` by calling ``build(tmp)`` on a temporary sibling, then renaming.

    A build that fails or is killed leaves no ``target`` behind (at most a ``.tmp-*`` sibling, which
    the next call ignores), so readers never see a half-written folder. If another process finished
    the same folder first, its copy wins and ours is discarded.
    """
    target = Path(target)
    if target.is_dir():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{target.name}-", dir=target.parent))
    try:
        build(tmp)
        try:
            os.replace(tmp, target)
        except OSError:
            if not target.is_dir():  # not a lost race: a real failure
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target
