"""Exports to the dataset formats other tools read, in the text our reward models read.

- TRL *preference* rows, standard (text) form with an implicit prompt (``chosen``, ``rejected``;
  plus ``source``), as read by ``trl.RewardTrainer`` and ``DPOTrainer``: each side is exactly
  :func:`agentcritic.rendering.render` of (intent, trajectory), the text our
  :class:`~agentcritic.rm.RewardModel` reads (so game24's verdict on the answer is hidden here too).
- TRL *stepwise supervision* rows (``prompt``, ``completions``, ``labels``), as read by
  ``trl.PRMTrainer``: the prompt is the rendering's head (intent and first observation, ending in a
  newline) and the completions its step blocks, so ``prompt + "\n".join(completions)`` is the
  rendering of the whole trajectory.
- Parquet files of any such rows (pyarrow), which ``datasets.load_dataset("parquet", ...)`` reads.
- :func:`export_run`: a run folder or a JSONL file to one of those files (``agentcritic export``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agentcritic.errors import AgentCriticError
from agentcritic.rendering import blocks, render, with_intent
from agentcritic.store import atomic_write
from agentcritic.types import Preference, RecordError, Trajectory


def preference_rows(preferences: Iterable[Preference]) -> list[dict[str, str]]:
    """TRL preference rows (implicit prompt): each side is what the reward model reads for it."""
    return [
        {"chosen": render(p.intent, p.chosen), "rejected": render(p.intent, p.rejected), "source": p.source}
        for p in preferences
    ]


def stepwise_rows(
    trajectories: Iterable[Trajectory], labels: Callable[[Trajectory], list[bool]] | None = None
) -> list[dict[str, Any]]:
    """TRL stepwise-supervision rows: one completion per step, labelled.

    The default label of every step is the episode's success (Monte-Carlo labels, as the process
    reward model of the self-regulation method uses); pass ``labels`` for anything finer.
    """
    rows = []
    for t in trajectories:
        first, completions = blocks(t)
        step_labels = labels(t) if labels else [bool(t.success)] * len(completions)
        if len(step_labels) != len(completions):
            raise ValueError(
                f"{t.env}/{t.task_id}: {len(step_labels)} labels for {len(completions)} steps"
            )
        prompt = with_intent(t.instruction, f"{first}\n" if first else "")
        rows.append({"prompt": prompt, "completions": completions, "labels": list(step_labels)})
    return rows


def write_parquet(rows: list[dict[str, Any]], path: str | Path) -> Path:
    """Write rows as one Parquet file, atomically."""
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    if not rows:
        raise ValueError(f"{path}: no rows to write")
    table = pa.Table.from_pylist(rows)
    buf = io.BytesIO()
    pq.write_table(table, buf)
    atomic_write(path, buf.getvalue())
    return Path(path)


def read_parquet(path: str | Path) -> list[dict[str, Any]]:
    import pyarrow.parquet as pq

    return pq.read_table(path).to_pylist()


# ----------------------------------------------------------------------------------- runs
#: what ``agentcritic export --format`` accepts
FORMATS = ("trl-preference", "trl-stepwise", "parquet")


class ExportError(AgentCriticError, ValueError):
    """An export asked of something that cannot give it: an unknown format, a file that cannot be read,
    or a folder with nothing to export."""


@dataclass
class ExportResult:
    """What :func:`export_run` wrote."""

    path: Path
    format: str
    rows: int
    kind: str  # "preference" or "stepwise"
    sources: list[str]  # the files the rows came from
    splits: dict[str, int] = field(default_factory=dict)  # rows per "split" column value, when there is one


def _records(file: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, record) of a JSONL file of bare records or store rows; retry rows and a torn
    last line (a write cut short) are skipped."""
    try:
        raw = file.read_bytes()
    except OSError as exc:
        raise ExportError(f"{file}: cannot be read ({exc.strerror or exc})") from exc
    lines = raw.split(b"\n")
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            if lineno == len(lines):  # no newline after it: torn
                return
            raise ExportError(f"{file}:{lineno}: not a JSON line ({exc})") from exc
        if not isinstance(row, dict):
            raise ExportError(f"{file}:{lineno}: expected a JSON object, got {type(row).__name__}")
        if set(row) >= {"key", "record"} and isinstance(row["record"], dict):
            if row.get("retry"):
                continue  # a failed attempt kept as evidence, not data
            row = row["record"]
        yield lineno, row


def _kind_of(record: dict[str, Any]) -> str | None:
    if "chosen" in record and "rejected" in record:
        return "preference"
    if "transitions" in record and isinstance(record.get("trajectory"), dict):
        return "episode"
    if "steps" in record and "task_id" in record:
        return "trajectory"
    return None


def _file_kind(file: Path) -> str | None:
    for _, record in _records(file):
        return _kind_of(record)
    return None


def read_preference_records(files: list[Path]) -> list[Preference]:
    """Every :class:`Preference` of ``files``; a line of another shape is an error naming file and line."""
    out: list[Preference] = []
    for file in files:
        for lineno, record in _records(file):
            if _kind_of(record) != "preference":
                raise ExportError(f"{file}:{lineno}: not a preference pair (no 'chosen' and 'rejected')")
            try:
                out.append(Preference.from_dict(record))
            except (RecordError, TypeError, KeyError) as exc:
                raise ExportError(f"{file}:{lineno}: not a Preference record: {exc}") from exc
    return out


def read_trajectories(files: list[Path]) -> list[Trajectory]:
    """Every trajectory of ``files``: trajectory lines (rollouts, exploration) or collected episodes."""
    out: list[Trajectory] = []
    for file in files:
        for lineno, record in _records(file):
            kind = _kind_of(record)
            if kind not in ("trajectory", "episode"):
                raise ExportError(f"{file}:{lineno}: neither a trajectory nor a collected episode")
            try:
                out.append(Trajectory.from_dict(record["trajectory"] if kind == "episode" else record))
            except (RecordError, TypeError, KeyError) as exc:
                raise ExportError(f"{file}:{lineno}: not a Trajectory record: {exc}") from exc
    return out


# the files of a run folder, by what they hold, in the order they are looked for
_PREFERENCE_FILES = ("preferences.jsonl",)
_TRAJECTORY_FILES = ("episodes.jsonl", "rollouts.jsonl", "explore.jsonl")


def _train_rm_pairs(run: Path) -> tuple[list[Preference], list[str], list[Path]]:
    """A train-rm folder's pairs with their side of its held-out split ("train" / "test")."""
    split = json.loads((run / "split.json").read_text("utf-8"))
    held_file = run / "heldout_preferences.jsonl"
    held = read_preference_records([held_file]) if held_file.is_file() else []
    data = []
    for name in split.get("data", []):
        path = Path(name)
        found = next((p for p in (path, run / path, run.parent / path) if p.is_file()), None)
        if found is None:
            raise ExportError(f"{run}: its training data {name} is gone; export that preferences file instead")
        data.append(found)
    pairs = read_preference_records(data)  # with eval_data, held-out pairs are not among them: none drop out
    held_ids = {p.to_json() for p in held}
    train = [p for p in pairs if p.to_json() not in held_ids]
    return [*train, *held], ["train"] * len(train) + ["test"] * len(held), [*data, held_file]


def export_run(run: str | Path, format: str, out: str | Path | None = None) -> ExportResult:
    """Export ``run`` in ``format`` (one of :data:`FORMATS`) to ``out``; see ``agentcritic export --help``.

    ``run`` is a synthesize run folder (its ``preferences.jsonl``), a train-rm folder (the pairs it
    trained on and held out, with a ``split`` column ``train`` / ``test``), a collect or rollout
    folder (its episodes), or a JSONL file of any of these. ``trl-preference`` needs pairs and
    ``trl-stepwise`` trajectories; ``parquet`` writes whichever rows the run holds. A ``trl-*``
    export is JSON lines unless ``out`` ends in ``.parquet``.
    """
    if format not in FORMATS:
        raise ExportError(f"unknown export format {format!r}; use one of: {', '.join(FORMATS)}")
    src = Path(run)
    splits: list[str] | None = None
    prefs: list[Preference] | None = None
    trajs: list[Trajectory] | None = None
    if src.is_file():
        kind = _file_kind(src)
        if kind == "preference":
            prefs, sources = read_preference_records([src]), [src]
        elif kind in ("trajectory", "episode"):
            trajs, sources = read_trajectories([src]), [src]
        else:
            raise ExportError(f"{src}: holds neither preference pairs nor trajectories or episodes; nothing to export")
    elif src.is_dir():
        pref_files = [src / n for n in _PREFERENCE_FILES if (src / n).is_file()]
        traj_files = [src / n for n in _TRAJECTORY_FILES if (src / n).is_file()][:1]
        wants_steps = format == "trl-stepwise"
        if (src / "split.json").is_file() and not wants_steps:
            prefs, splits, sources = _train_rm_pairs(src)
        elif pref_files and not wants_steps:
            prefs, sources = read_preference_records(pref_files), pref_files
        elif traj_files and format != "trl-preference":
            trajs, sources = read_trajectories(traj_files), traj_files
        elif traj_files:
            raise ExportError(f"{src}: holds trajectories, not preference pairs; export them with --format "
                              "trl-stepwise or parquet")
        elif pref_files or (src / "split.json").is_file():
            raise ExportError(f"{src}: holds preference pairs, not trajectories; export them with --format "
                              "trl-preference or parquet")
        else:
            files = ", ".join(("split.json", *_PREFERENCE_FILES, *_TRAJECTORY_FILES))
            raise ExportError(
                f"{src}: nothing to export here (none of {files}); give a synthesize, train-rm, collect or "
                "rollout folder, or a JSONL file of preference pairs, trajectories or episodes"
            )
    else:
        raise ExportError(f"{src}: no such file or folder")
    if format == "trl-preference" and prefs is None:
        raise ExportError(f"{src}: holds trajectories, not preference pairs; export them with --format "
                          "trl-stepwise or parquet")
    if format == "trl-stepwise" and trajs is None:
        raise ExportError(f"{src}: holds preference pairs, not trajectories; export them with --format "
                          "trl-preference or parquet")
    if prefs is not None:
        kind, rows = "preference", preference_rows(prefs)
        if splits is not None:
            rows = [{**row, "split": s} for row, s in zip(rows, splits, strict=True)]
    else:
        kind, rows = "stepwise", stepwise_rows(trajs or [])
    if not rows:
        raise ExportError(f"{src}: holds no {kind} rows to export")
    as_parquet = format == "parquet" or (out is not None and str(out).endswith(".parquet"))
    if out is None:
        base, stem = (src, "export") if src.is_dir() else (src.parent, src.stem)
        if format != "parquet":
            stem += f"-{format}" if src.is_dir() else f".{format}"
        out = base / (stem + (".parquet" if as_parquet else ".jsonl"))
    path = Path(out)
    if path.is_dir():
        raise ExportError(f"{path}: is a folder; give --out a file name")
    if as_parquet:
        write_parquet(rows, path)
    else:
        atomic_write(path, "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))
    counts: dict[str, int] = {}
    for s in splits or []:
        counts[s] = counts.get(s, 0) + 1
    return ExportResult(path, format, len(rows), kind, [str(s) for s in sources], counts)
