"""The stage contract: how one stage of work claims its folder, runs, and is recorded as done.

A stage kind is a config model plus ``run(config, out, progress) -> summary`` (see
:mod:`agentcritic.pipeline` for the table of kinds). :func:`run_stage` is the one way a stage runs —
from ``agentcritic run``, ``demo``, every single-stage command and the Python API:

1. it takes an exclusive lock on the folder; a second writer stops at once, naming the holder;
2. it checks the inputs the config names exist, and only then compares the config with the one
   recorded in the folder (a refusal names the fields that differ) or records it; fields that
   change no result (workers, executor, threads, progress, concurrency, report_to) are left out of the
   record, so a run may resume with others; a kind's ``GROWABLE`` settings (``collect``'s limit, n
   and sweep_asks) may grow in a finished run, which is then reopened and plays only what it lacks;
   if the stage then fails before it wrote anything, the record is taken back, so the corrected
   command is not refused;
3. a stage the manifest marks done is skipped, and its recorded summary returned;
4. otherwise it runs, writes the kind's typed result to ``result.json`` and marks the stage done —
   unless work failed for a reason outside the task (a dead LLM server, a worker that died): such
   work is recorded as pending (``retry`` rows in the stage's shards), the stage stays unfinished,
   and the next run of the same command does that work again. A stage whose LLM calls failed more
   often than its config's ``max_llm_failure_rate`` stops with an error naming the backend and URL
   (:func:`check_llm_failures`), after its result is written; it stays unfinished too.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from agentcritic.config import ConfigError
from agentcritic.stage_results import KIND_RESULTS, RESULT_FILE, StageResult, write_result
from agentcritic.store import FolderLock, RunStore, StoreError, as_recorded, ensure_folder

#: config fields that change how a stage runs, never what it produces; left out of the record
RESUMABLE_FIELDS = frozenset({"workers", "executor", "num_threads", "threads", "progress", "concurrency", "report_to",
                              "output_dir"})

#: the files a stage contract writes itself; a folder holding only these has no finished work
CONTRACT_FILES = frozenset({FolderLock.FILE, "config.toml", "manifest.json"})

#: a stage body: ``run(config, out, progress) -> summary``
StageRun = Callable[[Any, Path, bool], Any]


@dataclass
class StageOutcome:
    """What :func:`run_stage` hands back: the summary, whether the stage was already done, its time."""

    kind: str
    summary: dict[str, Any]
    skipped: bool = False
    seconds: float = 0.0
    pending: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def errors(self) -> int:
        return int(self.summary.get("errors") or 0)


def recorded_settings(config: BaseModel) -> dict[str, Any]:
    """``config`` as it is recorded: JSON values, without the fields that change no result."""
    return as_recorded(_drop_resumable(config.model_dump(mode="json")))


def _drop_resumable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_resumable(v) for k, v in value.items() if k not in RESUMABLE_FIELDS}
    if isinstance(value, list):
        return [_drop_resumable(v) for v in value]
    return value


def differing_fields(before: Any, after: Any, prefix: str = "") -> list[str]:
    """Dotted names of the fields whose values differ between two recorded configs."""
    if isinstance(before, dict) and isinstance(after, dict):
        out: list[str] = []
        for key in sorted(set(before) | set(after), key=str):
            out += differing_fields(before.get(key), after.get(key), f"{prefix}{key}.")
        return out
    return [] if before == after else [prefix.rstrip(".") or "(config)"]


def grows(before: dict[str, Any], after: dict[str, Any], diff: list[str], growable: Iterable[str]) -> bool:
    """Whether the recorded settings ``after`` only extend ``before``: every field in ``diff`` is a
    top-level setting in ``growable`` (more tasks, rollouts, asks) whose value grew (None: no limit)."""
    names = set(growable)
    for dotted in diff:
        name = dotted.removeprefix("settings.")
        if name not in names:
            return False
        old, new = before["settings"].get(name), after["settings"].get(name)
        if new is not None and (old is None or new < old):
            return False
    return bool(diff)


def check_inputs(config: BaseModel, inputs: Iterable[str]) -> None:
    """Every path the config names in the (dotted) fields ``inputs`` exists, or a ConfigError says which."""
    data = config.model_dump(mode="python")
    for dotted in inputs:
        for value in _values_at(data, dotted.split(".")):
            for path in value if isinstance(value, list) else [value]:
                if isinstance(path, str) and path and not Path(path).exists():
                    raise ConfigError(
                        f"field '{dotted}': {path} does not exist; give the path of an existing file or run "
                        "folder (paths in a pipeline config are relative to the run folder)"
                    )


def _values_at(node: Any, parts: list[str]) -> list[Any]:
    if isinstance(node, list):
        return [v for item in node for v in _values_at(item, parts)]
    if not isinstance(node, dict) or node.get(parts[0]) is None:
        return []
    return [node[parts[0]]] if len(parts) == 1 else _values_at(node[parts[0]], parts[1:])


def run_stage(
    kind: str,
    config: BaseModel,
    out: str | Path,
    run: StageRun,
    *,
    progress: bool = True,
    inputs: Iterable[str] = (),
) -> StageOutcome:
    """Claim ``out`` for a stage of ``kind`` and run it (see the module docstring)."""
    check_inputs(config, inputs)
    out = ensure_folder(out)
    with FolderLock(out):
        store = RunStore(out)
        settings = {"kind": kind, "settings": recorded_settings(config)}
        before = store.config().get("stage")
        if before is None and _holds_other_run(store):
            raise StoreError(
                f"{out} already holds a run that is not a {kind!r} stage, or was made by an older version "
                "of agentcritic; choose a new --out folder"
            )
        fresh = before is None
        if before is not None and before != settings:
            diff = differing_fields(before, settings)
            growable = sorted(getattr(type(config), "GROWABLE", ()))
            if not grows(before, settings, diff, growable):
                may = f"; a {kind} run may also grow here (a larger {', '.join(growable)})" if growable else ""
                raise StoreError(
                    f"{out} already holds a run with another config (differs in {diff}); choose a new --out "
                    f"folder, or re-run with the same settings to resume it{may}"
                )
            store.record_config({"stage": settings})  # it grows: the finished work is kept and resumed
            store.reopen(kind)
        if fresh:
            store.record_config({"stage": settings})
        if store.is_done(kind):
            done = store.manifest["stages"][kind]
            summary = {k: v for k, v in done.items() if k not in ("done", "finished", "kind")}
            return StageOutcome(kind, summary, skipped=True, seconds=float(done.get("seconds") or 0.0))
        start = time.perf_counter()
        try:
            summary = run(config, out, progress)
        except BaseException:
            if fresh and not _holds_work(out):
                (out / "config.toml").unlink(missing_ok=True)
            raise
        seconds = round(time.perf_counter() - start, 2)
        result = typed_result(kind, summary)
        if not result.made:  # what the stage wrote: everything in its folder but the contract's own files
            result.made = sorted(p.name + ("/" if p.is_dir() else "") for p in out.iterdir()
                                 if p.name not in CONTRACT_FILES and p.name != RESULT_FILE)
        summary = summary if isinstance(summary, dict) else result.model_dump(mode="json")
        write_result(out, kind, result)
        check_llm_failures(kind, config, summary)
        store = RunStore(out)  # the body may have written the manifest meanwhile
        if result.pending:
            return StageOutcome(kind, summary, seconds=seconds, pending=result.pending)
        store.mark_done(kind, kind=kind, seconds=seconds, **_scalars(result.model_dump(mode="json")))
        return StageOutcome(kind, summary, seconds=seconds)


def check_llm_failures(kind: str, config: BaseModel, summary: dict[str, Any]) -> None:
    """Stop a stage whose LLM calls failed more often than its ``max_llm_failure_rate`` (where its config
    has one), with an error naming the backend and URL; its result is written, the stage stays unfinished."""
    from agentcritic.llm.base import LLMCalls, check_failure_rate

    max_rate = getattr(config, "max_llm_failure_rate", None)
    if max_rate is not None:
        check_failure_rate(LLMCalls.from_fields(summary), float(max_rate), kind)


def typed_result(kind: str, summary: Any) -> StageResult:
    """The kind's typed result of what a stage body returned (its model, or the dict it summarises)."""
    if isinstance(summary, StageResult):
        return summary
    model = KIND_RESULTS.get(kind, StageResult)
    data = dict(summary or {})
    if hasattr(model, "from_summary"):
        return model.from_summary(data)
    return model.model_validate({k: v for k, v in data.items() if k in model.model_fields})


def recorded_stage(folder: str | Path, kind: str) -> dict[str, Any]:
    """The settings a ``kind`` stage recorded in ``folder`` (for a later stage that reads its output)."""
    path = Path(folder) / "config.toml"
    if not path.exists():
        raise StoreError(f"{path}: missing; give the folder of a {kind} run (it records how it was made)")
    stage = RunStore(folder).config().get("stage") or {}
    if stage.get("kind") != kind:
        what = f"a {stage['kind']} run" if stage.get("kind") else "not a stage run of this version of agentcritic"
        raise StoreError(f"{folder} is {what}, not a {kind} run; give the folder a `{kind}` command wrote")
    return dict(stage.get("settings") or {})


def _holds_work(folder: Path) -> bool:
    return any(p.name not in CONTRACT_FILES for p in folder.iterdir())


def _holds_other_run(store: RunStore) -> bool:
    recorded = {k: v for k, v in store.config().items() if k != "run"}
    return bool(recorded)


def _scalars(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items()
            if isinstance(v, (int, float, str, bool)) and k not in ("done", "finished", "kind", "seconds")}
