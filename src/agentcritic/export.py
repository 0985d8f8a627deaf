"""Exports to the dataset formats other tools read.

- TRL *preference* rows (``prompt``, ``chosen``, ``rejected``), standard (text) form, as read by
  ``trl.RewardTrainer`` and ``DPOTrainer``.
- TRL *stepwise supervision* rows (``prompt``, ``completions``, ``labels``), as read by
  ``trl.PRMTrainer``.
- Parquet files of any such rows (pyarrow), which ``datasets.load_dataset("parquet", ...)`` reads.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from agentcritic.store import atomic_write
from agentcritic.types import Preference, Trajectory


def render_steps(trajectory: Trajectory) -> str:
    """The trajectory after the prompt: first observation, then actions and observations."""
    lines = []
    if trajectory.first_observation:
        lines.append(f"Observation: {trajectory.first_observation}")
    for s in trajectory.steps:
        lines.append(f"Action: {s.action}")
        lines.append(f"Observation: {s.observation}")
    return "\n".join(lines)


def preference_rows(
    preferences: Iterable[Preference], render: Callable[[Trajectory], str] = render_steps
) -> list[dict[str, str]]:
    """TRL preference rows: the intent is the prompt, the two trajectories are the completions."""
    return [
        {"prompt": p.intent, "chosen": render(p.chosen), "rejected": render(p.rejected), "source": p.source}
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
        completions = [f"Action: {s.action}\nObservation: {s.observation}" for s in t.steps]
        step_labels = labels(t) if labels else [bool(t.success)] * len(completions)
        if len(step_labels) != len(completions):
            raise ValueError(
                f"{t.env}/{t.task_id}: {len(step_labels)} labels for {len(completions)} steps"
            )
        prompt = f"Instruction: {t.instruction}"
        if t.first_observation:
            prompt += f"\nObservation: {t.first_observation}"
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
