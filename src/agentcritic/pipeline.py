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

Each stage kind maps to a config model and a library function, both named as ``"module:attr"``
strings and imported only when a stage of that kind runs, so a kind whose module has not landed
(or whose optional extra is missing) fails with a message naming it, never at import time. A
stage is skipped when the run's manifest says it is done; the stage functions themselves resume
inside a stage (shards, checkpoints), so an interrupted run re-run with the same config ends where
an uninterrupted one does.
"""

from __future__ import annotations

import importlib
import inspect
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from agentcritic.config import ConfigError, StageConfig, read_toml, validate
from agentcritic.store import RunStore, StoreError, as_recorded


class PipelineError(ValueError):
    """A pipeline that cannot run: unknown stage kind, a stage module that is not available."""


@dataclass(frozen=True)
class StageKind:
    """How a stage kind runs: ``runner(config, stage_dir, run_dir) -> dict`` (``"module:function"``),
    its settings model (``"module:Class"``), and which settings hold paths relative to the run."""

    config: str
    runner: str
    paths: tuple[str, ...] = ()
    description: str = ""


STAGE_KINDS: dict[str, StageKind] = {
    "synthesize": StageKind(
        "agentcritic.synth.synth_config:SynthConfig", "agentcritic.pipeline:run_synthesize",
        description="explore, refine intents, make negatives → preferences.jsonl, synth_stats.json"),
    "train-rm": StageKind(
        "agentcritic.rm.stages:TrainRMConfig", "agentcritic.pipeline:run_train_rm", paths=("data", "eval_data"),
        description="train an outcome reward model on preference files → model/, metrics.json"),
    "eval-rm": StageKind(
        "agentcritic.rm.stages:EvalRMConfig", "agentcritic.pipeline:run_eval_rm", paths=("model", "data", "output"),
        description="held-out pairwise accuracy of a reward model → rm_eval.json"),
    "evaluate": StageKind(
        "agentcritic.evaluate:EvalConfig", "agentcritic.pipeline:run_evaluate",
        paths=("target.rm", "methods.target.rm"),
        description="planning methods × envs × tasks → results.jsonl and the results table"),
    "report": StageKind(
        "agentcritic.pipeline:ReportStageConfig", "agentcritic.pipeline:run_report", paths=("run", "out"),
        description="one self-contained HTML report of the run → report.html"),
    # Self-regulation stages (selfreg.md): runners are ``fn(config, out)`` in agentcritic.helper.
    "collect": StageKind("agentcritic.helper.helper_config:CollectConfig", "agentcritic.helper.collect:run_collect",
                         description="offline transitions with help at random rates"),
    "train-prm": StageKind("agentcritic.helper.helper_config:TrainPRMConfig", "agentcritic.helper.prm:run_train_prm",
                           paths=("data",), description="process reward model on the transitions"),
    "train-helper": StageKind("agentcritic.helper.helper_trainer:TrainHelperConfig",
                              "agentcritic.helper.helper_trainer:run_train_helper", paths=("data", "prm"),
                              description="table -> budgeted DP labels -> helper model"),
    "eval-helper": StageKind("agentcritic.helper.helper_config:EvalHelperConfig",
                             "agentcritic.helper.evaluate_helper:run_eval_helper", paths=("data", "prm", "helper"),
                             description="success vs help used per budget, helper against baselines"),
}


def register_stage(kind: str, config: str, runner: str, paths: tuple[str, ...] = (), description: str = "") -> None:
    """Add (or replace) a stage kind: ``config`` = ``"module:Class"``, ``runner`` = ``"module:function"``."""
    STAGE_KINDS[kind] = StageKind(config, runner, tuple(paths), description)


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


RESUMABLE_WITH_OTHER = {"workers", "executor"}


def claim_stages(store: RunStore, stages: list[dict[str, Any]], only: list[str] | None) -> None:
    """Check the run folder's record of each stage that this call runs or skips as done; record the call's.

    A stage whose recorded settings differ from this call's is refused, so a done stage is never
    skipped under other settings and an unfinished one never resumes under them. Stages outside
    ``--stage`` are neither run nor skipped, so their settings may differ: ``--stage B --set
    B.limit=20`` runs in a folder made by ``--stage A --set A.limit=5``, and A keeps its record.
    A stage is recorded when a call first runs it.
    """
    recorded = {s["name"]: s for s in store.config().get("pipeline", {}).get("stages", [])}
    kept, changed = [], []
    for stage in stages:
        name = stage["name"]
        if only and name not in only:
            if name in recorded:  # outside --stage: keeps its record, or stays unrecorded until it runs
                kept.append(recorded.pop(name))
            continue
        before = recorded.pop(name, None)
        if before is not None and (before["kind"], before.get("settings")) != (stage["kind"], as_recorded(stage["settings"])):
            changed.append(name)
        kept.append(stage)
    if changed:
        raise StoreError(
            f"{store.root} already holds a run with another config (stages {changed} have other settings); "
            "choose a new --out folder, or re-run with the same settings to resume it"
        )
    kept += recorded.values()  # stages no longer in the config keep their records
    store.record_config({"pipeline": {"stages": kept}})


def run_pipeline(
    pipeline: PipelineConfig,
    configs: list[StageConfig],
    out: str | Path | None = None,
    only: list[str] | None = None,
    echo: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Run the stages not yet done into ``out`` (default: the config's ``out``); return the manifest."""
    target = out or pipeline.out
    if not target:
        raise ConfigError("no run folder: pass --out or set out = \"runs/NAME\" in the config")
    run_dir = Path(target)
    unknown = sorted(set(only or []) - {s.name for s in pipeline.stages})
    if unknown:
        raise ConfigError(f"--stage {unknown}: no such stage; the stages are {[s.name for s in pipeline.stages]}")
    claimed = [
        # workers and executor change no result, so a run may resume with others
        {"kind": s.kind, "name": s.name, "settings": c.model_dump(mode="json", exclude=RESUMABLE_WITH_OTHER)}
        for s, c in zip(pipeline.stages, configs)
    ]
    with RunStore(run_dir) as store:
        claim_stages(store, claimed, only)
        for i, (spec, config) in enumerate(zip(pipeline.stages, configs), start=1):
            if only and spec.name not in only:
                continue
            if store.is_done(spec.name):
                echo(f"[{i}/{len(configs)}] {spec.name} ({spec.kind}): done, skipped")
                continue
            kind = STAGE_KINDS[spec.kind]
            runner = import_attr(kind.runner, f"stage {spec.name!r} (kind {spec.kind!r})")
            echo(f"[{i}/{len(configs)}] {spec.name} ({spec.kind}) → {run_dir / spec.name}")
            start = time.perf_counter()
            resolved = resolve_paths(config, kind.paths, run_dir)
            # Library stage functions take (config, out); the pipeline's own runners also get the run folder.
            takes_run = "run_dir" in inspect.signature(runner).parameters
            summary = (runner(resolved, run_dir / spec.name, run_dir) if takes_run
                       else runner(resolved, run_dir / spec.name)) or {}
            summary = _scalars(summary)
            seconds = round(time.perf_counter() - start, 2)
            reserved = ("done", "finished", "kind", "seconds")
            store.mark_done(spec.name, kind=spec.kind, seconds=seconds,
                            **{k: v for k, v in summary.items() if k not in reserved})
            echo(f"[{i}/{len(configs)}] {spec.name}: finished in {seconds:.1f} s")
        return dict(store.manifest)


# ------------------------------------------------------------------------------------ runners
def run_synthesize(config: Any, stage_dir: Path, run_dir: Path) -> dict[str, Any]:
    synthesize = import_attr("agentcritic.synth.pipeline:synthesize", "stage kind 'synthesize'")
    return _scalars(synthesize(config, stage_dir))


def run_train_rm(config: Any, stage_dir: Path, run_dir: Path) -> dict[str, Any]:
    from agentcritic.rm.stages import train_rm

    metrics = train_rm(config, stage_dir)
    accuracy = (metrics.get("eval") or {}).get("accuracy")
    return {"heldout_accuracy": accuracy} if accuracy is not None else {}


def run_eval_rm(config: Any, stage_dir: Path, run_dir: Path) -> dict[str, Any]:
    from agentcritic.rm.stages import eval_rm

    if config.output is None:
        config = config.model_copy(update={"output": str(stage_dir / "rm_eval.json")})
    stage_dir.mkdir(parents=True, exist_ok=True)
    report, path = eval_rm(config)
    return {"accuracy": report.get("accuracy"), "pairs": report.get("n")}


def run_evaluate(config: Any, stage_dir: Path, run_dir: Path) -> dict[str, Any]:
    from agentcritic.evaluate import run_evaluation
    from agentcritic.report.tables import to_markdown
    from agentcritic.evaluate import load_records, results_table

    summary = run_evaluation(config, stage_dir)
    print(to_markdown(results_table(load_records(stage_dir / "results.jsonl"))))
    return {"records": summary["records"]}


def run_report(config: ReportStageConfig, stage_dir: Path, run_dir: Path) -> dict[str, Any]:
    from agentcritic.report import build_report

    report = build_report(config.run, config.out)
    return {"report": str(report.path), "records": report.records}


def _scalars(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        return {}
    return {k: v for k, v in data.items() if isinstance(v, (int, float, str, bool))}
