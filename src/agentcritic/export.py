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
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from agentcritic.rendering import blocks, render, with_intent
from agentcritic.store import atomic_write
from agentcritic.types import Preference, Trajectory


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
