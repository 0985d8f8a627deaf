"""Run folders: resolved config, a manifest of finished stages, and append-only JSONL shards.

A run is a folder::

    RUN/config.toml      the resolved config, seeds and package versions (written once)
    RUN/manifest.json    stages done, record counts (rewritten atomically)
    RUN/<stage>.jsonl    one record per line: {"key": ..., "record": {...}}
    RUN/.lock            held (flock) by the one process writing the folder

A record may be marked ``retry``: work that failed for a reason outside the task (the LLM server
was down or timed out, a worker died). It is kept as evidence, but its key is not done: a resumed
run does that work again, and the new record supersedes it. Readers see retry rows only when they
ask (:func:`iter_shard` with ``retries=True``).

Writes are crash-safe: a record is one ``write`` of one line, flushed and fsynced before the next;
files that are replaced whole (config, manifest, summaries) go through a temporary file and
``os.replace``. On reopening, a torn last line (a record cut mid-write by a crash or SIGKILL) is
discarded, and records whose key is already present are never written again, so re-running a
command resumes it and ends with exactly the records an uninterrupted run gives.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import tomli_w

from agentcritic.errors import AgentCriticError


class StoreError(AgentCriticError, ValueError):
    """A run folder or shard that cannot be used as asked (conflicting config, corrupt line)."""


def atomic_write(path: str | os.PathLike[str], data: str | bytes) -> None:
    """Replace ``path`` with ``data`` so that readers see the old or the new file, never half."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class Shard:
    """One append-only JSONL file of keyed records."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._keys: set[str] = set()
        self._retries: dict[str, dict[str, Any]] = {}
        self._count = 0
        self._repair_and_index()
        self._file = open(self.path, "ab")  # noqa: SIM115 - kept open for appends, closed in close()

    def _repair_and_index(self) -> None:
        if not self.path.exists():
            return
        raw = self.path.read_bytes()
        end = raw.rfind(b"\n") + 1
        if end < len(raw):
            # A torn last line: the process died mid-write. Drop it; the record is redone.
            with open(self.path, "r+b") as f:
                f.truncate(end)
                f.flush()
                os.fsync(f.fileno())
            raw = raw[:end]
        for lineno, line in enumerate(raw.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                key = row["key"]
                row["record"]
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise StoreError(
                    f"{self.path}:{lineno}: not a store record ({exc}); the file was changed by hand "
                    "or by another program: move it aside to start the stage again"
                ) from exc
            if row.get("retry"):
                if str(key) not in self._keys:
                    self._retries[str(key)] = row["record"]
                continue
            self._retries.pop(str(key), None)
            if str(key) not in self._keys:
                self._keys.add(str(key))
                self._count += 1

    def __contains__(self, key: str) -> bool:
        return key in self._keys

    def __len__(self) -> int:
        return self._count

    @property
    def keys(self) -> set[str]:
        return set(self._keys)

    @property
    def retries(self) -> dict[str, dict[str, Any]]:
        """Keys whose last attempt failed outside the task, with that attempt's record: to run again."""
        return dict(self._retries)

    def append(self, key: str, record: dict[str, Any], retry: bool = False) -> bool:
        """Write one record durably; return False (and write nothing) if ``key`` is already done.

        ``retry=True`` records a failed attempt that does not finish ``key`` (see the module
        docstring); a later append of the same key supersedes it.
        """
        key = str(key)
        if key in self._keys:
            return False
        row: dict[str, Any] = {"key": key, "record": record}
        if retry:
            row["retry"] = True
        line = json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n"
        self._file.write(line.encode("utf-8"))
        self._file.flush()
        os.fsync(self._file.fileno())
        if retry:
            self._retries[key] = record
            return False
        self._retries.pop(key, None)
        self._keys.add(key)
        self._count += 1
        return True

    def __iter__(self) -> Iterator[tuple[str, dict[str, Any]]]:
        return iter_shard(self.path)

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()

    def __enter__(self) -> Shard:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def iter_shard(path: str | os.PathLike[str], retries: bool = False) -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield (key, record) from a shard file, skipping a torn last line without changing the file.

    Retry rows (failed attempts, see the module docstring) are skipped unless ``retries``; with
    it, only the retry rows of keys not done since are yielded.
    """
    path = Path(path)
    if not path.exists():
        return
    if retries:
        pending: dict[str, dict[str, Any]] = {}
        for key, record, retry in _rows(path):
            if retry:
                pending[key] = record
            else:
                pending.pop(key, None)
        yield from pending.items()
        return
    for key, record, retry in _rows(path):
        if not retry:
            yield key, record


def _rows(path: Path) -> Iterator[tuple[str, dict[str, Any], bool]]:
    with open(path, "rb") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.endswith(b"\n"):
                return  # torn tail; the writer repairs it when it reopens
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                yield str(row["key"]), row["record"], bool(row.get("retry"))
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise StoreError(f"{path}:{lineno}: not a store record ({exc})") from exc


class FolderLock:
    """An exclusive, non-blocking lock on a run folder (``flock`` on ``FOLDER/.lock``).

    A second writer fails at once with an error naming the process that holds the folder. The
    kernel drops the lock when its holder dies, so a killed run never leaves the folder locked.
    """

    FILE = ".lock"

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)
        self._fd: int | None = None

    def acquire(self) -> FolderLock:
        import fcntl

        ensure_folder(self.folder)
        path = self.folder / self.FILE
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 4096, 0).decode("utf-8", "replace").strip() or "another process"
            os.close(fd)
            raise StoreError(
                f"{self.folder} is being written by {holder}; two writers would mix their records. "
                "Wait for it to finish (or stop it), or choose another --out folder."
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"process {os.getpid()} ({_command_line()})\n".encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None

    def __enter__(self) -> FolderLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def _command_line() -> str:
    try:
        raw = Path(f"/proc/{os.getpid()}/cmdline").read_bytes()
        return " ".join(part.decode("utf-8", "replace") for part in raw.split(b"\0") if part)[:200]
    except OSError:
        import sys

        return " ".join(sys.argv)[:200]


def ensure_folder(folder: str | os.PathLike[str]) -> Path:
    """Create ``folder`` (and its parents), or say plainly why it cannot be a run folder."""
    folder = Path(folder)
    for part in [folder, *folder.parents]:
        if part.exists() and not part.is_dir():
            what = "is" if part == folder else f"is under {part}, which is"
            raise StoreError(f"{folder} {what} a file, not a folder; choose another --out folder")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def package_versions(names: tuple[str, ...] = ("agentcritic", "torch", "transformers", "numpy")) -> dict[str, str]:
    from importlib import metadata

    out = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


class RunStore:
    """A run folder. Opening an existing run with the same config resumes it; with another
    config it refuses, so a run never overwrites another run's folder."""

    def __init__(self, root: str | os.PathLike[str], config: dict[str, Any] | None = None) -> None:
        self.root = ensure_folder(root)
        self.config_path = self.root / "config.toml"
        self.manifest_path = self.root / "manifest.json"
        self._shards: dict[str, Shard] = {}
        if config is not None:
            self._claim(config)
        self.manifest = self._read_manifest()

    # -- config ---------------------------------------------------------------------------
    def _claim(self, config: dict[str, Any]) -> None:
        clean = _toml_ready(config)
        if self.config_path.exists():
            import tomllib

            try:
                existing = tomllib.loads(self.config_path.read_text("utf-8"))
            except tomllib.TOMLDecodeError as exc:
                raise StoreError(f"{self.config_path}: unreadable ({exc})") from exc
            existing.pop("run", None)
            if existing != clean:
                diff = sorted(k for k in set(existing) | set(clean) if existing.get(k) != clean.get(k))
                raise StoreError(
                    f"{self.root} already holds a run with another config (differs in {diff}); "
                    "choose a new --out folder, or re-run with the same settings to resume it"
                )
            return
        self.record_config(config)

    def record_config(self, config: dict[str, Any]) -> None:
        """Write ``config`` as the run's recorded config, keeping the ``run`` header (created,
        versions) of one already there; for callers that check a config part by part themselves."""
        doc = dict(_toml_ready(config))
        doc["run"] = self.config().get("run") or {
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "versions": package_versions()}
        atomic_write(self.config_path, tomli_w.dumps(doc))

    def config(self) -> dict[str, Any]:
        import tomllib

        if not self.config_path.exists():
            return {}
        return tomllib.loads(self.config_path.read_text("utf-8"))

    # -- manifest -------------------------------------------------------------------------
    def _read_manifest(self) -> dict[str, Any]:
        if not self.manifest_path.exists():
            return {"stages": {}}
        try:
            data = json.loads(self.manifest_path.read_text("utf-8"))
        except json.JSONDecodeError as exc:
            raise StoreError(f"{self.manifest_path}: invalid JSON ({exc})") from exc
        data.setdefault("stages", {})
        return data

    def is_done(self, stage: str) -> bool:
        return bool(self.manifest["stages"].get(stage, {}).get("done"))

    def mark_done(self, stage: str, **stats: Any) -> None:
        self.manifest["stages"][stage] = {"done": True, "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **stats}
        self.write_json("manifest.json", self.manifest)

    def reopen(self, stage: str) -> None:
        """Mark ``stage`` unfinished again (a run that grows: its finished work stays and is resumed)."""
        if self.manifest["stages"].pop(stage, None) is not None:
            self.write_json("manifest.json", self.manifest)

    # -- files ----------------------------------------------------------------------------
    def shard(self, stage: str) -> Shard:
        if stage not in self._shards:
            self._shards[stage] = Shard(self.root / f"{stage}.jsonl")
        return self._shards[stage]

    def records(self, stage: str) -> Iterator[tuple[str, dict[str, Any]]]:
        return iter_shard(self.root / f"{stage}.jsonl")

    def write_json(self, name: str, data: Any) -> Path:
        path = self.root / name
        atomic_write(path, json.dumps(data, indent=2, ensure_ascii=False, sort_keys=True) + "\n")
        return path

    def write_text(self, name: str, text: str) -> Path:
        path = self.root / name
        atomic_write(path, text)
        return path

    def close(self) -> None:
        for shard in self._shards.values():
            shard.close()
        self._shards.clear()

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def as_recorded(value: Any) -> Any:
    """``value`` as it reads back from a recorded config.toml (None dropped, tuples as lists)."""
    import tomllib

    return tomllib.loads(tomli_w.dumps({"value": _toml_ready(value)})).get("value")


def _toml_ready(value: Any) -> Any:
    """TOML has no null: drop None values so the stored config compares equal after a round trip."""
    if isinstance(value, dict):
        return {str(k): _toml_ready(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return [_toml_ready(v) for v in value if v is not None]
    return value
