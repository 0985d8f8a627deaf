"""Evaluating an outcome reward model on preference pairs (armap.md §3 "Report").

- :func:`read_preferences` reads ``preferences.jsonl`` files (one :class:`Preference` per line, bare
  or wrapped as a store record ``{"key": ..., "record": {...}}``); a bad line is an error naming the
  file and the line.
- :func:`evaluate_reward_model` gives held-out pairwise accuracy overall, per negative source
  (``Preference.source``), per env and per (env, source), per explorer (who made the chosen
  trajectory) and per intent source (template, llm_rephrase, llm, hindsight, …), the mean margins,
  and chosen-vs-rejected score histograms (data only: :func:`agentcritic.report.plots.write_score_histograms` draws them).
- :func:`cross_domain_accuracy` trains a fresh model on one env's pairs and tests it on another's;
  :func:`cross_domain_matrix` does it for every pair of envs.
- :func:`write_report` writes the JSON-able report atomically (``rm_eval.json``);
  :func:`format_report` prints it as a table.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from agentcritic.errors import AgentCriticError
from agentcritic.rm.metrics import pairwise_accuracy, preference_report
from agentcritic.rm.pairs import explorer_of, intent_source_of
from agentcritic.store import atomic_write
from agentcritic.types import Preference, RecordError

if TYPE_CHECKING:
    from agentcritic.rm.reward_config import RewardConfig
    from agentcritic.rm.reward_model import RewardModel

log = logging.getLogger("agentcritic.rm")

EVAL_FILE = "rm_eval.json"
UNKNOWN_ENV = "unknown"


class PreferenceDataError(AgentCriticError, ValueError):
    """A preference file that cannot be read; the message names the file and the line."""


# ----------------------------------------------------------------------------------- reading
def read_preferences(path: str | os.PathLike[str]) -> list[Preference]:
    """All preference pairs of one JSONL file, in file order.

    A line is a :class:`Preference` object or a store record wrapping one. An unterminated last
    line that is not valid JSON is a write cut short by a crash (as :mod:`agentcritic.store` treats
    it): it is skipped with a warning. Any other bad line raises :class:`PreferenceDataError`.
    """
    file = Path(path)
    if not file.exists():
        raise PreferenceDataError(f"{file}: no such preference file")
    if file.is_dir():
        hint = " (did you mean its preferences.jsonl?)" if (file / "preferences.jsonl").exists() else ""
        raise PreferenceDataError(f"{file}: is a folder, not a preferences JSONL file{hint}")
    raw = file.read_bytes()
    lines = raw.split(b"\n")
    torn = not raw.endswith(b"\n") and bool(lines[-1].strip())
    out: list[Preference] = []
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise PreferenceDataError(f"{file}:{lineno}: not UTF-8 text ({exc})") from exc
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            if torn and lineno == len(lines):
                log.warning("%s:%d: skipping a torn last line (a write cut short)", file, lineno)
                break
            raise PreferenceDataError(f"{file}:{lineno}: invalid JSON ({exc.msg} at column {exc.colno})") from exc
        if isinstance(data, dict) and set(data) == {"key", "record"}:
            data = data["record"]
        if not isinstance(data, dict):
            raise PreferenceDataError(
                f"{file}:{lineno}: expected a JSON object describing a Preference, got {type(data).__name__}"
            )
        try:
            pref = Preference.from_dict(data)
        except (RecordError, TypeError) as exc:
            raise PreferenceDataError(f"{file}:{lineno}: not a Preference record: {exc}") from exc
        problem = _check_preference(pref)
        if problem:
            raise PreferenceDataError(f"{file}:{lineno}: {problem}")
        out.append(pref)
    return out


def _check_preference(p: Preference) -> str | None:
    """The first wrong field of a parsed preference (from_dict does not check nested types)."""
    if not isinstance(p.intent, str) or not p.intent.strip():
        return "field 'intent' must be a non-empty string"
    if not isinstance(p.source, str):
        return f"field 'source' must be a string, got {type(p.source).__name__}"
    for side in ("chosen", "rejected"):
        t = getattr(p, side)
        if not hasattr(t, "steps"):
            return f"field {side!r} must be a Trajectory object, got {type(t).__name__}"
        if not isinstance(t.steps, list):
            return f"field '{side}.steps' must be a list"
        for k, s in enumerate(t.steps):
            if not hasattr(s, "action") or not isinstance(s.action, str) or not isinstance(s.observation, str):
                return f"field '{side}.steps[{k}]' must be an object with string 'action' and 'observation'"
        if not isinstance(t.meta, dict):
            return f"field '{side}.meta' must be an object"
    return None


def read_preference_files(paths: Iterable[str | os.PathLike[str]]) -> list[Preference]:
    """:func:`read_preferences` over several files, concatenated; an empty total is an error."""
    paths = list(paths)
    if not paths:
        raise PreferenceDataError("no preference files given (pass --data RUN/preferences.jsonl)")
    out: list[Preference] = []
    for path in paths:
        prefs = read_preferences(path)
        if not prefs:
            raise PreferenceDataError(f"{path}: holds no preference pairs")
        out.extend(prefs)
    return out


def env_of(p: Preference) -> str:
    """The env a pair comes from: its trajectories' ``env`` field."""
    return p.chosen.env or p.rejected.env or UNKNOWN_ENV


# ----------------------------------------------------------------------------------- scoring
def score_preferences(
    rm: RewardModel, preferences: Sequence[Preference], batch_size: int = 64, progress: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Reward of every chosen and every rejected trajectory, in input order."""
    n = len(preferences)
    chosen = np.empty(n, dtype=np.float64)
    rejected = np.empty(n, dtype=np.float64)
    if n == 0:
        return chosen, rejected
    chunk = max(batch_size * 8, 256)  # large enough for length sorting, small enough for a live bar
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=n, desc="score pairs", unit="pair", dynamic_ncols=True)
    try:
        for start in range(0, n, chunk):
            part = preferences[start : start + chunk]
            items = [(p.intent, p.chosen) for p in part] + [(p.intent, p.rejected) for p in part]
            scores = rm.score(items, batch_size=batch_size)
            chosen[start : start + len(part)] = scores[: len(part)]
            rejected[start : start + len(part)] = scores[len(part) :]
            if bar is not None:
                bar.update(len(part))
    finally:
        if bar is not None:
            bar.close()
    return chosen, rejected


def _per_group(c: np.ndarray, r: np.ndarray, labels: Sequence[str], what: str) -> dict[str, dict[str, Any]]:
    """``{label: {"n", "accuracy", "mean_margin"}}`` over the pairs of each label."""
    if len(labels) != len(c):
        raise ValueError(f"{len(labels)} {what} for {len(c)} pairs")
    arr = np.asarray([str(x) for x in labels], dtype=object)
    out: dict[str, dict[str, Any]] = {}
    for name in sorted(set(arr.tolist())):
        sel = arr == name
        out[name] = {
            "n": int(sel.sum()),
            "accuracy": pairwise_accuracy(c[sel], r[sel]),
            "mean_margin": float(np.mean(c[sel] - r[sel])),
        }
    return out


def preference_metrics(
    chosen: Sequence[float],
    rejected: Sequence[float],
    sources: Sequence[str],
    envs: Sequence[str],
    bins: int = 20,
    *,
    explorers: Sequence[str] | None = None,
    intent_sources: Sequence[str] | None = None,
) -> dict[str, Any]:
    """The report of :func:`evaluate_reward_model` from scores already computed.

    ``explorers`` and ``intent_sources`` (one label per pair, see :mod:`agentcritic.rm.pairs`) add
    ``per_explorer`` and ``per_intent_source``.
    """
    c, r = np.asarray(chosen, dtype=np.float64), np.asarray(rejected, dtype=np.float64)
    if not (len(c) == len(r) == len(sources) == len(envs)):
        raise ValueError(f"{len(c)} chosen, {len(r)} rejected, {len(sources)} sources and {len(envs)} envs differ")
    report = preference_report(c, r, list(sources), bins=bins)
    report.setdefault("per_source", {})
    env_arr = np.asarray(list(envs), dtype=object)
    src_arr = np.asarray(list(sources), dtype=object)
    per_env: dict[str, Any] = {}
    for env in sorted(set(env_arr.tolist())):
        sel = env_arr == env
        per_env[str(env)] = {
            "n": int(sel.sum()),
            "accuracy": pairwise_accuracy(c[sel], r[sel]),
            "mean_margin": float(np.mean(c[sel] - r[sel])),
            "per_source": {
                str(s): {
                    "n": int((sel & (src_arr == s)).sum()),
                    "accuracy": pairwise_accuracy(c[sel & (src_arr == s)], r[sel & (src_arr == s)]),
                }
                for s in sorted(set(src_arr[sel].tolist()))
            },
        }
    report["per_env"] = per_env
    if explorers is not None:
        report["per_explorer"] = _per_group(c, r, explorers, "explorers")
    if intent_sources is not None:
        report["per_intent_source"] = _per_group(c, r, intent_sources, "intent sources")
    return report


def pair_labels(preferences: Sequence[Preference]) -> dict[str, list[str]]:
    """The labels the report breaks accuracy down by, one per pair: ``sources`` (negative source),
    ``envs``, ``explorers`` (who made the chosen trajectory) and ``intent_sources``."""
    return {
        "sources": [p.source for p in preferences],
        "envs": [env_of(p) for p in preferences],
        "explorers": [explorer_of(p) for p in preferences],
        "intent_sources": [intent_source_of(p) for p in preferences],
    }


def evaluate_reward_model(
    rm: RewardModel,
    preferences: Sequence[Preference],
    env_names: Sequence[str] | None = None,
    *,
    bins: int = 20,
    batch_size: int = 64,
    progress: bool = False,
) -> dict[str, Any]:
    """Pairwise accuracy of ``rm`` on ``preferences``: overall, per source, per env, per explorer, per
    intent source, and histograms.

    ``env_names`` labels each pair's env (one name per pair); by default it is the trajectories'
    ``env`` field. A pair counts as ranked right when the chosen trajectory scores higher; a tie
    counts half. The result is JSON-able::

        {"n", "accuracy", "mean_margin", "mean_chosen", "mean_rejected",
         "per_source": {source: {"n", "accuracy", "mean_margin"}},
         "per_env": {env: {"n", "accuracy", "mean_margin", "per_source": {source: {"n", "accuracy"}}}},
         "per_explorer": {policy: {"n", "accuracy", "mean_margin"}},
         "per_intent_source": {intent_source: {"n", "accuracy", "mean_margin"}},
         "histogram": {"edges", "chosen", "rejected"}}
    """
    prefs = list(preferences)
    if not prefs:
        raise PreferenceDataError("no preference pairs to evaluate")
    envs = list(env_names) if env_names is not None else [env_of(p) for p in prefs]
    if len(envs) != len(prefs):
        raise ValueError(f"env_names has {len(envs)} names for {len(prefs)} preference pairs")
    chosen, rejected = score_preferences(rm, prefs, batch_size=batch_size, progress=progress)
    labels = pair_labels(prefs)
    return preference_metrics(chosen, rejected, labels["sources"], envs, bins=bins,
                              explorers=labels["explorers"], intent_sources=labels["intent_sources"])


# ----------------------------------------------------------------------------------- cross-domain
def cross_domain_accuracy(
    make_model: Callable[[], RewardModel],
    train: Sequence[Preference],
    test: Sequence[Preference],
    config: RewardConfig | None = None,
    *,
    batch_size: int = 64,
) -> dict[str, Any]:
    """Train a fresh model (``make_model()``) on ``train`` and evaluate it on ``test`` (another env).

    Returns ``{"n_train", "n_test", "in_domain": held-out report on train's env (when the config
    holds some out), "cross_domain": report on test, "model": the trained RewardModel}``.
    """
    from agentcritic.rm.reward_config import RewardConfig
    from agentcritic.rm.reward_trainer import train_reward_model

    if not train:
        raise PreferenceDataError("cross-domain: no training pairs")
    if not test:
        raise PreferenceDataError("cross-domain: no test pairs")
    cfg = (config or RewardConfig()).model_copy(update={"output_dir": None, "report_to": "none"})  # in memory
    model = make_model()
    metrics = train_reward_model(model, list(train), cfg)
    return {
        "n_train": metrics["train"]["n_train"],
        "n_test": len(test),
        "in_domain": metrics.get("eval"),
        "cross_domain": evaluate_reward_model(model, list(test), batch_size=batch_size),
        "model": model,
    }


def cross_domain_matrix(
    make_model: Callable[[], RewardModel],
    preferences: Sequence[Preference],
    config: RewardConfig | None = None,
    *,
    env_names: Sequence[str] | None = None,
    batch_size: int = 64,
) -> dict[str, Any]:
    """For every env with pairs: train on it alone, test on every other env's pairs.

    Returns ``{"envs": [...], "accuracy": {train_env: {test_env: acc}}, "n": {env: pairs}}``; the
    diagonal is the in-domain held-out accuracy (``config.eval_fraction`` of the pairs, whole tasks), or None
    when nothing was held out.
    """
    prefs = list(preferences)
    envs = list(env_names) if env_names is not None else [env_of(p) for p in prefs]
    by_env: dict[str, list[Preference]] = {}
    for p, e in zip(prefs, envs, strict=True):
        by_env.setdefault(e, []).append(p)
    names = sorted(by_env)
    if len(names) < 2:
        raise PreferenceDataError(f"cross-domain needs pairs from two or more envs; got {names or 'none'}")
    matrix: dict[str, dict[str, float | None]] = {}
    for train_env in names:
        others = [p for e in names if e != train_env for p in by_env[e]]
        result = cross_domain_accuracy(make_model, by_env[train_env], others, config, batch_size=batch_size)
        result.pop("model")  # free it before the next env's model is built
        row: dict[str, float | None] = {}
        held = result["in_domain"]
        row[train_env] = held["accuracy"] if held and held.get("n") else None
        per_env = result["cross_domain"]["per_env"]
        for e in names:
            if e != train_env:
                row[e] = per_env[e]["accuracy"]
        matrix[train_env] = row
    return {"envs": names, "accuracy": matrix, "n": {e: len(v) for e, v in by_env.items()}}


# ----------------------------------------------------------------------------------- output
def jsonable(value: Any) -> Any:
    """NaN/inf become None and NumPy scalars plain numbers, so the file is strict JSON."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, (np.floating, float)):
        f = float(value)
        return f if math.isfinite(f) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def write_report(report: dict[str, Any], path: str | os.PathLike[str]) -> Path:
    """Write ``report`` as strict JSON, atomically; returns the path."""
    out = Path(path)
    atomic_write(out, json.dumps(jsonable(report), indent=2, sort_keys=True, allow_nan=False) + "\n")
    return out


def _fmt(x: Any) -> str:
    return "—" if x is None or (isinstance(x, float) and not math.isfinite(x)) else f"{x:.3f}"


def format_report(report: dict[str, Any]) -> str:
    """The report as plain-text tables: overall, per source, per env (and the cross-domain matrix)."""
    lines = [
        f"pairs {report['n']}: accuracy {_fmt(report['accuracy'])}, mean margin {_fmt(report['mean_margin'])} "
        f"(chosen {_fmt(report['mean_chosen'])}, rejected {_fmt(report['mean_rejected'])})",
        "",
        f"{'source':<24}{'pairs':>8}{'accuracy':>10}{'margin':>10}",
    ]
    for name, row in report.get("per_source", {}).items():
        lines.append(f"{name:<24}{row['n']:>8}{_fmt(row['accuracy']):>10}{_fmt(row['mean_margin']):>10}")
    lines += ["", f"{'env':<24}{'pairs':>8}{'accuracy':>10}{'margin':>10}  seen in training"]
    trained = report.get("training_envs")
    for name, row in report.get("per_env", {}).items():
        seen = "?" if trained is None else ("yes" if name in trained else "no (cross-domain)")
        lines.append(f"{name:<24}{row['n']:>8}{_fmt(row['accuracy']):>10}{_fmt(row['mean_margin']):>10}  {seen}")
    for key, label in (("per_explorer", "explorer"), ("per_intent_source", "intent source")):
        groups = report.get(key)
        if groups:
            lines += ["", f"{label:<24}{'pairs':>8}{'accuracy':>10}{'margin':>10}"]
            for name, row in groups.items():
                lines.append(f"{name:<24}{row['n']:>8}{_fmt(row['accuracy']):>10}{_fmt(row['mean_margin']):>10}")
    if report.get("cross_domain") is not None:
        cd = report["cross_domain"]
        lines += ["", f"cross-domain (envs not in training, {cd['n']} pairs): accuracy {_fmt(cd['accuracy'])}"]
    matrix = report.get("cross_domain_matrix")
    if matrix:
        names = matrix["envs"]
        lines += ["", "fresh model trained on (row) tested on (column); diagonal = its held-out tasks:"]
        lines.append(f"{'':<16}" + "".join(f"{n:>14}" for n in names))
        for a in names:
            lines.append(f"{a:<16}" + "".join(f"{_fmt(matrix['accuracy'][a].get(b)):>14}" for b in names))
    if report.get("n_seen_in_training"):
        lines += [
            "",
            f"note: {report['n_seen_in_training']} of {report['n']} pairs have intents the model was trained on; "
            "for held-out accuracy evaluate RUN/heldout_preferences.jsonl",
        ]
    if report.get("n_task_seen_in_training"):
        lines.append(f"note: {report['n_task_seen_in_training']} of {report['n']} pairs come from tasks "
                     "the model was trained on")
    return "\n".join(lines)


__all__ = [
    "EVAL_FILE",
    "PreferenceDataError",
    "cross_domain_accuracy",
    "cross_domain_matrix",
    "env_of",
    "evaluate_reward_model",
    "format_report",
    "jsonable",
    "pair_labels",
    "preference_metrics",
    "read_preference_files",
    "read_preferences",
    "score_preferences",
    "write_report",
]
