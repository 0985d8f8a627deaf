"""The stage runner behind ``agentcritic run CONFIG.toml``: a list of stages, each in its own folder.

A pipeline config lists stages in order; each stage has a ``kind``, an optional ``name`` (its
sub-folder of the run; default: the kind) and the settings of that kind's config model inline::

    out = "runs/demo"                  # the run folder (the CLI's --out wins)

    [[stages]]
    kind = "synthesize"
    name = "synth-game24"
    env = "game24"
    tasks = 20

    [[stages]]
    kind = "train-rm"
    name = "rm"
    data = ["synth-game24/preferences.jsonl"]   # paths are relative to the run folder

    [[stages]]
    kind = "evaluate"
    envs = ["game24"]
    target = { rm = "rm" }

    [[stages]]
    kind = "report"

Each stage kind is a config model plus ``run(config, out, progress) -> summary``, both named as
``"module:attr"`` strings in :data:`STAGE_KINDS` and imported only when a stage of that kind runs,
so a kind whose optional extra is missing fails with a message naming it, never at import time.
:func:`run_kind` is how every stage runs — ``agentcritic run``, ``demo`` and each single-stage
command: it goes through the stage contract (:func:`agentcritic.stage.run_stage`), which locks the
stage's folder, checks and records its config, and skips it when done. The stage functions resume
inside a stage (shards, checkpoints), so an interrupted run re-run with the same config ends where
an uninterrupted one does.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from agentcritic.config import ConfigError, StageConfig, read_toml, validate
from agentcritic.errors import AgentCriticError
from agentcritic.stage import StageOutcome, run_stage
from agentcritic.store import FolderLock, RunStore, ensure_folder


class PipelineError(AgentCriticError, ValueError):
    """A pipeline that cannot run: unknown stage kind, a stage module that is not available."""


@dataclass(frozen=True)
class StageKind:
    """A stage kind: its settings model (``"module:Class"``), its ``run(config, out, progress)``
    (``"module:function"``), the settings that hold paths relative to a pipeline's run folder, and
    those of them that must exist before the stage starts."""

    config: str
    run: str
    paths: tuple[str, ...] = ()
    inputs: tuple[str, ...] = ()
    description: str = ""


_A, _H, _R = "agentcritic.", "agentcritic.helper.", "agentcritic.rm."
#: kind -> (config model, run function, path settings relative to a pipeline's run folder, those
#: that must exist before the stage starts, what it does)
STAGE_KINDS: dict[str, StageKind] = {kind: StageKind(*row) for kind, *row in [
    ("rollout", _A + "config:RolloutConfig", _A + "rollouts:run_rollouts", (), (),
     "a policy over an env split → rollouts.jsonl, rollouts_summary.json"),
    ("synthesize", _A + "synth.synth_config:SynthConfig", _A + "synth.pipeline:synthesize", (), (),
     "explore, refine intents, make negatives → preferences.jsonl, synth_stats.json"),
    ("train-rm", _R + "stages:TrainRMConfig", _R + "stages:train_rm", ("data", "eval_data"), ("data", "eval_data"),
     "train an outcome reward model on preference files → model/, metrics.json"),
    ("eval-rm", _R + "stages:EvalRMConfig", _R + "stages:run_eval_rm", ("model", "data", "output"), ("model", "data"),
     "held-out pairwise accuracy of a reward model → rm_eval.json"),
    ("evaluate", _A + "evaluate:EvalConfig", _A + "evaluate:run_evaluation", ("target.rm", "methods.target.rm"),
     ("target.rm", "methods.target.rm"), "planning methods × envs × tasks → results.jsonl and the results table"),
    ("report", _A + "pipeline:ReportStageConfig", _A + "pipeline:run_report", ("run", "out"), ("run",),
     "one self-contained HTML report of the run → report.html"),
    ("collect", _H + "helper_config:CollectConfig", _H + "collect:run_collect", (), (),
     "offline transitions with help at random rates"),
    ("train-prm", _H + "helper_config:TrainPRMConfig", _H + "prm:run_train_prm", ("data",), ("data",),
     "process reward model on the transitions"),
    ("train-helper", _H + "helper_trainer:TrainHelperConfig", _H + "helper_trainer:run_train_helper",
     ("data", "prm"), ("data", "prm"), "table -> budgeted DP labels -> helper model"),
    ("eval-helper", _H + "helper_config:EvalHelperConfig", _H + "evaluate_helper:run_eval_helper",
     ("data", "prm", "helper"), ("data", "prm", "helper"), "success vs help used per budget, helper against baselines"),
]}


def register_stage(kind: str, config: str, run: str, paths: tuple[str, ...] = (), inputs: tuple[str, ...] = (),
                   description: str = "") -> None:
    """Add (or replace) a stage kind: ``config`` = ``"module:Class"``, ``run`` = ``"module:function"``."""
    STAGE_KINDS[kind] = StageKind(config, run, tuple(paths), tuple(inputs), description)


def run_kind(kind: str, config: StageConfig, out: str | Path, progress: bool = True) -> StageOutcome:
    """Run one stage of ``kind`` into ``out`` through the stage contract; the one way any stage runs."""
    spec = STAGE_KINDS[kind]
    run = import_attr(spec.run, f"stage kind {kind!r}")
    return run_stage(kind, config, out, run, progress=progress, inputs=spec.inputs)


class StageSpec(BaseModel):
    """One ``[[stages]]`` table: its kind, its folder name, and the kind's settings."""

    kind: str
    name: str
    settings: dict[str, Any] = Field(default_factory=dict)


class PipelineConfig(StageConfig):
    """A run made of stages (see the module docstring)."""

    out: str | None = Field(None, description="run folder; the CLI's --out overrides it")
    stages: list[StageSpec] = Field(description="the stages, in the order they run")


class ReportStageConfig(StageConfig):
    """Settings of the ``report`` stage."""

    run: str = Field(".", description="the folder reported on, relative to the run (default: the whole run)")
    out: str | None = Field(None, description="where the HTML goes; default: report.html in the reported folder")


def import_attr(spec: str, what: str) -> Any:
    module, _, attr = spec.partition(":")
    try:
        return getattr(importlib.import_module(module), attr)
    except ImportError as exc:
        raise PipelineError(f"{what} needs {module}, which is not available here ({exc})") from exc
    except AttributeError as exc:
        raise PipelineError(f"{what} needs {spec}, but {module} has no {attr!r}") from exc


# ------------------------------------------------------------------------------------ loading
def load_pipeline(path: str | Path, overrides: list[str] | None = None) -> tuple[PipelineConfig, list[StageConfig]]:
    """Read a pipeline TOML; validate every stage's settings against its kind's config model.

    Errors name the file, the stage (index, kind, name), the line where known and the field.
    ``overrides`` are ``KEY=VALUE`` with KEY = ``out`` or ``STAGE_NAME.field.sub``.
    """
    path = Path(path)
    data = read_toml(path)
    text = path.read_text("utf-8")
    return parse_pipeline(data, source=str(path), text=text, overrides=overrides)


def parse_pipeline(
    data: dict[str, Any], source: str = "config", text: str | None = None, overrides: list[str] | None = None
) -> tuple[PipelineConfig, list[StageConfig]]:
    from agentcritic.config import parse_override

    unknown = sorted(set(data) - {"out", "stages"})
    if unknown:
        raise ConfigError(f"{source}: unknown top-level key(s) {unknown}; a pipeline has 'out' and [[stages]]")
    raw = data.get("stages")
    if not isinstance(raw, list) or not raw:
        raise ConfigError(f"{source}: field 'stages': list the stages as [[stages]] tables with a kind each")
    specs: list[StageSpec] = []
    for i, table in enumerate(raw):
        where = f"{source}:{_stage_line(text, i)}" if text and _stage_line(text, i) else source
        if not isinstance(table, dict):
            raise ConfigError(f"{where}: stages[{i}] is not a table")
        settings = dict(table)
        kind = settings.pop("kind", None)
        if kind is None:
            raise ConfigError(f"{where}: stages[{i}]: field 'kind' is missing; valid kinds are {sorted(STAGE_KINDS)}")
        if kind not in STAGE_KINDS:
            raise ConfigError(f"{where}: stages[{i}]: field 'kind': unknown stage kind {kind!r}; "
                              f"valid kinds are {sorted(STAGE_KINDS)}")
        name = str(settings.pop("name", kind))
        if not re.fullmatch(r"[A-Za-z0-9_.\-]+", name) or name in (".", ".."):
            raise ConfigError(f"{where}: stages[{i}]: field 'name': {name!r} is not a folder name (letters, digits, . _ -)")
        specs.append(StageSpec(kind=kind, name=name, settings=settings))
    names = [s.name for s in specs]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError(f"{source}: stages {dupes} appear twice; give each stage its own name")
    out = data.get("out")
    for item in overrides or []:
        keys, value = parse_override(item)
        if keys == ["out"]:
            out = value
            continue
        target = next((s for s in specs if s.name == keys[0]), None)
        if target is None or len(keys) < 2:
            raise ConfigError(f"override {item!r}: expected out=… or STAGE.field=… with STAGE one of {names}")
        node = target.settings
        for part in keys[1:-1]:
            node = node.setdefault(part, {})
        node[keys[-1]] = value
    pipeline = PipelineConfig(out=out, stages=specs)
    configs = []
    for i, spec in enumerate(specs):
        model = import_attr(STAGE_KINDS[spec.kind].config, f"stage {spec.name!r} (kind {spec.kind!r})")
        label = f"{source}:{_stage_line(text, i, None)}" if text and _stage_line(text, i) else source
        try:
            configs.append(validate(model, spec.settings, source=f"{label} stages[{i}] ({spec.kind} {spec.name!r})"))
        except ConfigError as exc:
            raise ConfigError(_with_lines(str(exc), text, i)) from None
    return pipeline, configs


def _stage_line(text: str | None, index: int, key: str | None = None) -> int | None:
    """The line of the ``index``-th ``[[stages]]`` header (or of ``key`` inside that stage)."""
    if not text:
        return None
    count, header = -1, None
    for lineno, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if re.match(r"^\[\[\s*stages\s*\]\]", stripped):
            count += 1
            if count == index:
                header = lineno
                if key is None:
                    return lineno
            elif count > index:
                return header if key is None else None
            continue
        if count == index and key is not None and re.match(rf"^{re.escape(key)}\s*=", stripped):
            return lineno
    return header


def _with_lines(message: str, text: str | None, index: int) -> str:
    """Point each ``field 'x…'`` error at the line of ``x`` inside its stage where it is found."""
    def fix(line: str) -> str:
        m = re.search(r"field '([^'.]+)", line)
        lineno = _stage_line(text, index, m.group(1)) if m else None
        if lineno:
            line = re.sub(r"^([^ ]+?)(:\d+)? stages\[", lambda mm: f"{mm.group(1)}:{lineno} stages[", line, count=1)
        return line
    return "\n".join(fix(line) for line in message.splitlines())


# ------------------------------------------------------------------------------------ running
def resolve_paths(config: StageConfig, fields: tuple[str, ...], run_dir: Path) -> StageConfig:
    """A copy of ``config`` with the relative paths in ``fields`` (dotted; lists walked) under ``run_dir``."""
    data = config.model_dump(mode="python")

    def fix(value: Any) -> Any:
        if isinstance(value, str) and value and not Path(value).is_absolute():
            return str(run_dir / value)
        if isinstance(value, list):
            return [fix(v) for v in value]
        return value

    def walk(node: Any, parts: list[str]) -> None:
        if isinstance(node, list):
            for item in node:
                walk(item, parts)
            return
        if not isinstance(node, dict) or parts[0] not in node or node[parts[0]] is None:
            return
        if len(parts) == 1:
            node[parts[0]] = fix(node[parts[0]])
        else:
            walk(node[parts[0]], parts[1:])

    for dotted in fields:
        walk(data, dotted.split("."))
    return type(config).model_validate(data)


def run_pipeline(
    pipeline: PipelineConfig,
    configs: list[StageConfig],
    out: str | Path | None = None,
    only: list[str] | None = None,
    echo: Callable[[str], None] = print,
    progress: bool = True,
) -> dict[str, Any]:
    """Run the stages not yet done into ``out`` (default: the config's ``out``); return the manifest.

    Each stage runs in its own sub-folder through :func:`run_kind`, which checks it against the
    settings it was recorded with: a stage that runs, or is skipped as done, under other settings is
    refused; stages outside ``only`` are neither run nor checked.
    """
    target = out or pipeline.out
    if not target:
        raise ConfigError("no run folder: pass --out or set out = \"runs/NAME\" in the config")
    run_dir = ensure_folder(target)
    names = [s.name for s in pipeline.stages]
    unknown = sorted(set(only or []) - set(names))
    if unknown:
        raise ConfigError(f"--stage {unknown}: no such stage; the stages are {names}")
    with FolderLock(run_dir):
        store = RunStore(run_dir)
        store.record_config({"pipeline": {"stages": [{"kind": s.kind, "name": s.name} for s in pipeline.stages]}})
        for i, (spec, config) in enumerate(zip(pipeline.stages, configs), start=1):
            if only and spec.name not in only:
                continue
            kind = STAGE_KINDS[spec.kind]
            resolved = resolve_paths(config, kind.paths, run_dir)
            echo(f"[{i}/{len(configs)}] {spec.name} ({spec.kind}) → {run_dir / spec.name}")
            outcome = run_kind(spec.kind, resolved, run_dir / spec.name, progress=progress)
            if outcome.pending:
                echo(f"[{i}/{len(configs)}] {spec.name}: {outcome.pending} item(s) failed outside the task "
                     "(LLM server, worker); re-run the same command to do them again")
                break
            summary = _scalars(outcome.summary)
            store.mark_done(spec.name, kind=spec.kind, seconds=outcome.seconds, errors=outcome.errors,
                            **{k: v for k, v in summary.items() if k not in ("done", "finished", "kind", "seconds",
                                                                             "errors")})
            state = "done before, skipped" if outcome.skipped else f"finished in {outcome.seconds:.1f} s"
            echo(f"[{i}/{len(configs)}] {spec.name}: {state}; {outcome.errors} error(s)")
        return dict(store.manifest)


# ------------------------------------------------------------------------------------ report
def run_report(config: ReportStageConfig, out: Path, progress: bool = True) -> dict[str, Any]:
    """The ``report`` stage: the HTML report of ``config.run`` (default: the whole run)."""
    from agentcritic.report.html import build_report

    report = build_report(config.run, config.out)
    return {"report": str(report.path), "records": report.records, "errors": 0}


def _scalars(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        return {}
    return {k: v for k, v in data.items() if isinstance(v, (int, float, str, bool))}
