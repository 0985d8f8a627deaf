"""What each stage kind hands back: one typed result per kind, shared by the stage and the report.

A stage's ``run(config, out, progress)`` returns one of these; the stage contract
(:mod:`agentcritic.stage`) writes it to ``OUT/result.json`` with its ``kind``, and the report reads
it back by the kind the manifest records. A result names the data files the report reads besides it
(``results.jsonl``, ``rm_eval.json`` …), relative to the stage folder. A stage body that still returns
a summary dict is mapped onto its kind's model by :meth:`StageResult.from_summary`.

This module imports pydantic and the error base only, so the stages and the report share it cheaply.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agentcritic.errors import AgentCriticError

RESULT_FILE = "result.json"


class ResultError(AgentCriticError, ValueError):
    """A stage folder whose ``result.json`` is missing, unreadable or not a known stage's result."""


class StageResult(BaseModel):
    """Fields every stage kind reports."""

    model_config = ConfigDict(extra="forbid")

    errors: int = Field(0, ge=0, description="episodes or items that failed (infrastructure or task errors)")
    pending: int = Field(0, ge=0, description="work that failed outside the task (dead LLM server, worker died); "
                                              "run again when the stage is resumed")
    made: list[str] = Field(default_factory=list, description="files and folders it wrote, relative to its folder")
    llm_calls: int = Field(0, ge=0, description="LLM calls made for the work the stage holds (exploring, acting …)")
    llm_failures: int = Field(0, ge=0, description="of those, calls that failed (server down, hung, or a bad reply); "
                                                   "work they spoiled is pending")

    def headline(self) -> str:
        """What the stage made, in a few words (the report's overview, the console's summary line)."""
        return ", ".join(self.made)

    @classmethod
    def from_summary(cls, data: dict[str, Any]) -> StageResult:
        """The result of the summary dict a stage body returned before it returned this model; keys this
        kind does not know are left out, missing ones keep their defaults."""
        return cls.model_validate({k: v for k, v in cls._fields_of(data).items()
                                   if k in cls.model_fields and v is not None})

    @classmethod
    def _fields_of(cls, data: dict[str, Any]) -> dict[str, Any]:
        """The kind's fields from a summary dict (overridden where the summary nests them)."""
        return dict(data)


def _num(value: float | None, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _at(data: Any, *path: str) -> Any:
    """``data[path[0]][path[1]]…``, or None where a step is missing."""
    for key in path:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def _first(*values: Any) -> Any:
    """The first value that is not None."""
    return next((v for v in values if v is not None), None)


def _common(data: dict[str, Any]) -> dict[str, Any]:
    """The fields every kind shares, from a summary that nests the rest."""
    return {k: data.get(k) for k in StageResult.model_fields}


def find_key(data: Any, name: str) -> Any:
    """The first value under key ``name`` anywhere in nested dicts (trainers nest their metrics)."""
    if isinstance(data, dict):
        if name in data:
            return data[name]
        for value in data.values():
            found = find_key(value, name)
            if found is not None:
                return found
    return None


# ----------------------------------------------------------------------------------- ARMAP stages
class SynthesizeResult(StageResult):
    """``synthesize``: preference pairs from explored, refined trajectories and their negatives."""

    env: str = Field("", description="the env synthesised on")
    pairs: int = Field(0, ge=0, description="preference pairs kept (lines of preferences.jsonl)")
    candidates: int = Field(0, ge=0, description="pairs made before the filter")
    explored: int = Field(0, ge=0, description="trajectories explored")
    positives: int = Field(0, ge=0, description="explored trajectories that fulfil their (refined) intent")
    verification_rate: float | None = Field(None, description="share of checked positives the env verified")
    per_source: dict[str, int] = Field(default_factory=dict, description="kept pairs per negative source")
    seconds: float | None = Field(None, description="wall time of the synthesis itself")
    by_explorer: dict[str, dict[str, int]] = Field(
        default_factory=dict, description="positives and pairs per explorer (the policy that made the positive)")
    by_intent_source: dict[str, dict[str, int]] = Field(
        default_factory=dict, description="positives and pairs per intent source (template, hindsight, llm …)")
    oracle_pairs: int = Field(0, ge=0, description="oracle-assisted pairs: their positive came from the env's expert")
    preferences: str = Field("preferences.jsonl", description="the kept pairs, one Preference a line")
    stats: str = Field("synth_stats.json", description="every counter of the synthesis (filter, refiner, lengths)")

    def headline(self) -> str:
        return f"{self.pairs} preference pairs on {self.env} from {self.explored} trajectories"

    @classmethod
    def _fields_of(cls, data: dict[str, Any]) -> dict[str, Any]:  # synth_stats.json
        return {**data, "explored": _at(data, "trajectories", "explored"),
                "positives": _at(data, "trajectories", "positives"),
                "verification_rate": _at(data, "verification", "rate"),
                "oracle_pairs": _at(data, "oracle_assisted", "pairs") or 0}


class TrainRMResult(StageResult):
    """``train-rm``: an outcome reward model trained on preference files."""

    n_train: int = Field(0, ge=0, description="training pairs")
    n_heldout: int = Field(0, ge=0, description="held-out pairs (whole tasks)")
    heldout_accuracy: float | None = Field(None, description="pairwise accuracy on the held-out pairs")
    steps: int | None = Field(None, description="optimizer steps")
    final_loss: float | None = Field(None, description="the last logged training loss")
    resumed: bool = Field(False, description="the model was finished before this call (nothing trained)")
    model: str = Field("model", description="the saved reward model folder")
    metrics: str = Field("metrics.json", description="training log and held-out accuracy per source")
    heldout: str = Field("heldout_preferences.jsonl", description="the held-out pairs, for eval-rm")

    def headline(self) -> str:
        return f"reward model on {self.n_train} pairs, held-out accuracy {_num(self.heldout_accuracy)}"

    @classmethod
    def _fields_of(cls, data: dict[str, Any]) -> dict[str, Any]:  # the trainer's metrics.json
        return {"n_train": _at(data, "train", "n_train"), "n_heldout": _at(data, "train", "n_eval"),
                "heldout_accuracy": _first(_at(data, "eval", "accuracy"), data.get("heldout_accuracy")),
                "steps": _at(data, "train", "steps"), "final_loss": _at(data, "train", "final_loss"),
                "resumed": data.get("resumed"), **_common(data)}


class EvalRMResult(StageResult):
    """``eval-rm``: pairwise accuracy of a reward model on preference files."""

    pairs: int = Field(0, ge=0, description="pairs scored")
    accuracy: float | None = Field(None, description="pairwise accuracy (ties count half)")
    mean_margin: float | None = Field(None, description="mean score(chosen) - score(rejected)")
    cross_domain_accuracy: float | None = Field(None, description="accuracy on envs the model was not trained on")
    report: str = Field("rm_eval.json", description="the full report (per source, per env, histograms); "
                        "relative to the stage folder, or absolute")

    def headline(self) -> str:
        return f"accuracy {_num(self.accuracy)} on {self.pairs} pairs"

    @classmethod
    def _fields_of(cls, data: dict[str, Any]) -> dict[str, Any]:  # rm_eval.json
        return {**data, "pairs": data.get("n", data.get("pairs")),
                "cross_domain_accuracy": _at(data, "cross_domain", "accuracy")}


class EvaluateResult(StageResult):
    """``evaluate``: planning methods × envs × tasks, one record per solved job."""

    records: int = Field(0, ge=0, description="records in results.jsonl")
    jobs: int = Field(0, ge=0, description="jobs of the config (env × split × method × task × seed)")
    written: int = Field(0, ge=0, description="records this call added")
    resumed: int = Field(0, ge=0, description="records found from an earlier call")
    envs: list[str] = Field(default_factory=list, description="envs evaluated")
    methods: list[str] = Field(default_factory=list, description="row labels (Greedy, ARMAP-B …)")
    policy: str = Field("", description="the acting policy's label")
    results: str = Field("results.jsonl", description="the records (see agentcritic.evaluate)")

    def headline(self) -> str:
        where = f": {len(self.methods)} methods on {', '.join(self.envs)}" if self.methods and self.envs else ""
        return f"{self.records} evaluation records{where}"

    @classmethod
    def _fields_of(cls, data: dict[str, Any]) -> dict[str, Any]:  # run_evaluation's summary
        return {**data, "resumed": data.get("resumed_from", data.get("resumed"))}


class ReportResult(StageResult):
    """``report``: one self-contained HTML file."""

    report: str = Field("report.html", description="the HTML file; relative to the stage folder, or absolute")
    records: int = Field(0, ge=0, description="evaluation records in its results table")

    def headline(self) -> str:
        return f"{Path(self.report).name} ({self.records} evaluation records)"


class RolloutResult(StageResult):
    """``rollout``: episodes of one policy on one env split."""

    env: str = Field("", description="the env")
    policy: str = Field("", description="the acting policy")
    split: str = Field("train", description="the task split")
    episodes: int = Field(0, ge=0, description="trajectories in the shard")
    success_rate: float = Field(0.0, description="share of successful episodes")
    mean_score: float = Field(0.0, description="mean env reward")
    mean_steps: float = Field(0.0, description="mean actions per episode")
    invalid_actions: int = Field(0, ge=0, description="actions the env refused, summed")
    written: int = Field(0, ge=0, description="episodes this call added")
    resumed: int = Field(0, ge=0, description="episodes found from an earlier call")
    trajectories: str = Field("rollouts.jsonl", description="one Trajectory a record")

    def headline(self) -> str:
        return f"{self.episodes} episodes of {self.policy} on {self.env}, success {_num(self.success_rate, 2)}"

    @classmethod
    def _fields_of(cls, data: dict[str, Any]) -> dict[str, Any]:  # run_rollouts' summary
        return {**data, "resumed": data.get("resumed_from", data.get("resumed"))}


# ----------------------------------------------------------------------------------- self-regulation
class CollectRow(BaseModel):
    """Episodes collected at one help rate ``p``."""

    p: float
    episodes: int
    success_rate: float
    mean_interventions: float
    mean_steps: float
    errors: int = 0


class CollectResult(StageResult):
    """``collect``: offline episodes with help at random rates, for the PRM and the DP."""

    env: str = Field("", description="the env")
    policy: str = Field("", description="the base policy")
    intervention: str = Field("", description="who helps (expert …)")
    split: str = Field("train", description="the task split")
    episodes: int = Field(0, ge=0, description="episodes in the shard")
    expected_episodes: int = Field(0, ge=0, description="episodes of the config")
    tasks: int = Field(0, ge=0, description="distinct tasks")
    transitions: int = Field(0, ge=0, description="(state, actor, action) steps logged")
    success_rate: float = Field(0.0, description="share of successful episodes")
    written: int = Field(0, ge=0, description="episodes this call added")
    resumed: int = Field(0, ge=0, description="episodes found from an earlier call")
    per_p: list[CollectRow] = Field(default_factory=list, description="the same per help rate")
    episodes_file: str = Field("episodes.jsonl", description="one episode a record")

    def headline(self) -> str:
        return f"{self.episodes} episodes ({self.transitions} transitions) on {self.env}"

    @classmethod
    def _fields_of(cls, data: dict[str, Any]) -> dict[str, Any]:  # collect_summary.json
        return {**data, "resumed": data.get("resumed_from", data.get("resumed"))}


class ReliabilityBin(BaseModel):
    mean_predicted: float | None = None
    observed: float | None = None
    count: int = 0


class TrainPRMResult(StageResult):
    """``train-prm``: the process reward model, P(success | state, who acts next)."""

    auroc: float | None = Field(None, description="held-out AUROC")
    brier: float | None = Field(None, description="held-out Brier score")
    ece: float | None = Field(None, description="held-out expected calibration error")
    reliability: list[ReliabilityBin] = Field(default_factory=list, description="held-out reliability bins")
    episodes: int = Field(0, ge=0, description="episodes read")
    tasks: int = Field(0, ge=0, description="distinct tasks")
    held_out_tasks: int = Field(0, ge=0, description="tasks held out (none on both sides)")
    train_examples: int = Field(0, ge=0, description="training (state, actor) examples")
    eval_examples: int = Field(0, ge=0, description="held-out examples")
    model: str = Field("model", description="the saved PRM folder")
    metrics: str = Field("metrics.json", description="the trainer's metrics")

    def headline(self) -> str:
        return f"PRM on {self.train_examples} examples, held-out AUROC {_num(self.auroc)}"

    @classmethod
    def _fields_of(cls, data: dict[str, Any]) -> dict[str, Any]:  # the trainer's metrics.json
        held = data.get("eval") or data
        reliability = find_key(held, "reliability") or {}
        return {**(data.get("sizes") or {}), "auroc": find_key(held, "auroc"), "brier": find_key(held, "brier"),
                "ece": reliability.get("ece"), "reliability": reliability.get("bins"), **_common(data)}


class TrainHelperResult(StageResult):
    """``train-helper``: DP labels from the training table, and the helper trained on them."""

    backbone: str = Field("", description="the helper's backbone (or kind)")
    examples: int = Field(0, ge=0, description="labelled examples")
    states: int = Field(0, ge=0, description="states of the tabular model")
    balanced_accuracy: float | None = Field(None, description="held-out balanced accuracy vs the DP labels")
    accuracy: float | None = Field(None, description="held-out accuracy vs the DP labels")
    auroc: float | None = Field(None, description="held-out AUROC")
    label_ask_rate: float | None = Field(None, description="share of held-out labels that ask for help")
    predicted_ask_rate: float | None = Field(None, description="share the helper asks for")
    model: str = Field("model", description="the helper's folder")
    metrics: str = Field("metrics.json", description="the trainer's metrics")
    dp: str = Field("dp.json", description="the table's summary and the DP's predicted success and usage per budget")

    def headline(self) -> str:
        return f"helper on {self.examples} examples, balanced accuracy {_num(self.balanced_accuracy)}"

    @classmethod
    def _fields_of(cls, data: dict[str, Any]) -> dict[str, Any]:  # the trainer's metrics.json
        held = data.get("eval") or {}
        labels = data.get("labels") or {}
        return {**{k: held.get(k) for k in ("balanced_accuracy", "accuracy", "auroc", "label_ask_rate",
                                             "predicted_ask_rate")},
                "backbone": data.get("backbone") or _at(data, "config", "backbone"), "states": data.get("states"),
                "examples": data.get("examples", sum(v for v in labels.values() if isinstance(v, int)) or None),
                **_common(data)}


class BudgetRow(BaseModel):
    """One method at one budget C on held-out tasks."""

    method: str
    budget: str
    episodes: int
    success_rate: float
    mean_interventions: float
    max_interventions: int
    mean_cost: float | None = None
    mean_steps: float | None = None
    errors: int = 0
    tasks: int | None = None  # n of the interval (a task's samples count once); None in older runs
    success_interval: tuple[float, float] | None = None  # 95 % Wilson interval over tasks
    oracle: bool = False  # a row that knows the future (the fewest-asks oracle of a sweep), not a method


class DPTrainRow(BudgetRow):
    """The DP on its own training tasks: measured (the row) and predicted from the table."""

    predicted_success: float | None = None
    predicted_interventions: float | None = None


class EvalHelperResult(StageResult):
    """``eval-helper``: success vs help used, per method × budget, on held-out tasks."""

    env: str = Field("", description="the env")
    split: str = Field("test", description="the held-out split")
    tasks: int = Field(0, ge=0, description="tasks evaluated")
    policy: str = Field("", description="the base policy")
    intervention: str = Field("", description="who helps")
    budgets: list[str] = Field(default_factory=list, description="budget labels (0, 1, inf …)")
    methods: list[str] = Field(default_factory=list, description="methods compared")
    rows: list[BudgetRow] = Field(default_factory=list, description="one row per method × budget")
    dp_train: list[DPTrainRow] = Field(default_factory=list, description="the DP on its training tasks")
    ask_steps: dict[str, dict[str, dict[int, int]]] = Field(
        default_factory=dict, description="method → budget → step → requests begun there")
    oracle: dict[str, Any] | None = Field(None, description="the fewest-asks oracle of a sweep run, when given")
    results: str = Field("results.json", description="everything above plus the tabular model's summary")

    def headline(self) -> str:
        return f"{len(self.methods)} methods × {len(self.budgets)} budgets on {self.tasks} {self.env} tasks"

    @classmethod
    def _fields_of(cls, data: dict[str, Any]) -> dict[str, Any]:  # results.json
        return {**data, "rows": data.get("results") if isinstance(data.get("results"), list) else data.get("rows"),
                "results": None}


# ----------------------------------------------------------------------------------- the table
KIND_RESULTS: dict[str, type[StageResult]] = {
    "synthesize": SynthesizeResult,
    "train-rm": TrainRMResult,
    "eval-rm": EvalRMResult,
    "evaluate": EvaluateResult,
    "report": ReportResult,
    "rollout": RolloutResult,
    "collect": CollectResult,
    "train-prm": TrainPRMResult,
    "train-helper": TrainHelperResult,
    "eval-helper": EvalHelperResult,
}


def _finite(value: Any) -> Any:
    """NaN and infinities as None: JSON has no such numbers, and the fields that may hold them are optional."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def result_json(kind: str, result: StageResult) -> dict[str, Any]:
    """What ``result.json`` holds: ``{"kind": KIND, **fields}``."""
    expected = KIND_RESULTS.get(kind)
    if expected is None:
        raise ResultError(f"unknown stage kind {kind!r}; the kinds are {sorted(KIND_RESULTS)}")
    if not isinstance(result, expected):
        raise TypeError(f"a {kind!r} stage returns {expected.__name__}, not {type(result).__name__}")
    return {"kind": kind, **_finite(result.model_dump(mode="json"))}


def write_result(out: str | Path, kind: str, result: StageResult) -> Path:
    """Write ``result`` of a ``kind`` stage to ``out/result.json`` (atomically); return the path."""
    path = Path(out) / RESULT_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(result_json(kind, result), indent=2, ensure_ascii=False) + "\n"
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".result.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_result(out: str | Path) -> StageResult:
    """The typed result a stage left in folder ``out`` (``out/result.json``), as its kind's model.

    Raises :class:`ResultError` naming the file when it is missing, not JSON, of no known kind, or
    does not match its kind's fields.
    """
    path = Path(out) / RESULT_FILE
    if not path.is_file():
        raise ResultError(f"{path}: no stage result here; {Path(out)} is not a finished stage folder "
                          "(run the stage, or point at the folder it wrote)")
    try:
        data = json.loads(path.read_text("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ResultError(f"{path}: not a readable JSON file ({exc}); run the stage again to rewrite it") from None
    kind = data.get("kind") if isinstance(data, dict) else None
    model = KIND_RESULTS.get(kind) if isinstance(kind, str) else None
    if model is None:
        raise ResultError(f"{path}: not a stage result (kind {kind!r}; the kinds are {sorted(KIND_RESULTS)}); "
                          "it was written by something else: move it aside and run the stage again")
    fields = {k: v for k, v in data.items() if k != "kind"}
    try:
        return model.model_validate(fields)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or '(top)'}: {e['msg']}" for e in exc.errors()[:5])
        raise ResultError(f"{path}: not a valid {kind!r} result ({problems}); it was written by another "
                          "version of agentcritic: run the stage again into a new folder") from None


def kind_of(result: StageResult) -> str:
    """The stage kind whose result ``result`` is."""
    for kind, model in KIND_RESULTS.items():
        if type(result) is model:
            return kind
    raise ResultError(f"{type(result).__name__} is not the result of any stage kind")


__all__ = [
    "KIND_RESULTS", "RESULT_FILE", "BudgetRow", "CollectResult", "CollectRow", "DPTrainRow",
    "EvalHelperResult", "EvalRMResult", "EvaluateResult", "ReliabilityBin", "ReportResult", "ResultError",
    "RolloutResult", "StageResult", "SynthesizeResult", "TrainHelperResult", "TrainPRMResult", "TrainRMResult",
    "kind_of", "read_result", "result_json", "write_result",
]
