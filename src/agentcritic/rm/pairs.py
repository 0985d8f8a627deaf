"""What a preference pair is grouped by: the task(s) it comes from, who explored it, where its intent came from.

- :func:`pair_tasks` names the tasks of a pair's two trajectories (``env/task_id``); the reward
  model's held-out split keeps every task wholly on one side, so no trajectory is both trained on and
  held out (two intents of one task, two pairs of one positive, all stay together).
- :func:`explorer_of` is who made the chosen trajectory (the explorer synthesis records, or its
  policy's name); :func:`intent_source_of` is how its intent was written
  (``meta["intent_source"]``: template, llm_rephrase, llm, hindsight, …).
"""

from __future__ import annotations

from agentcritic.types import Preference, Trajectory

UNKNOWN = "unknown"


def task_key(t: Trajectory, intent: str) -> str:
    """``env/task_id`` of one trajectory; a trajectory with no task id stands for its intent alone.

    A hindsight task (game24's ``"<puzzle>@<N>"``: the same puzzle with the target the trajectory
    reached) is keyed by the task it was explored on, so one puzzle's pairs under several targets
    stay on one side of the split.
    """
    meta = t.meta if isinstance(t.meta, dict) else {}
    origin = (meta.get("hindsight") or {}).get("from_task") if isinstance(meta.get("hindsight"), dict) else None
    task = str(origin or t.task_id or "")
    if task:
        return f"task:{t.env or UNKNOWN}/{task}"
    return f"intent:{intent}"


def pair_tasks(p: Preference) -> tuple[str, ...]:
    """The task keys of a pair's trajectories (one when both come from the same task)."""
    chosen, rejected = task_key(p.chosen, p.intent), task_key(p.rejected, p.intent)
    return (chosen,) if chosen == rejected else (chosen, rejected)


def explorer_of(p: Preference) -> str:
    """Who made the chosen trajectory: synthesis records its explorer (``meta["explorer"]``: random,
    expert, smollm2, openai, …); otherwise the first part of its policy name (``expert-eps0.25`` →
    ``expert``), as synthesis counts positives per explorer; ``"unknown"`` when neither is there."""
    meta = p.chosen.meta if isinstance(p.chosen.meta, dict) else {}
    name = meta.get("explorer")
    if name:
        return str(name)
    policy = meta.get("policy")
    return str(policy).split("-")[0] if policy else UNKNOWN


def intent_source_of(p: Preference) -> str:
    """How the pair's intent was written: the chosen trajectory's ``meta["intent_source"]``."""
    meta = p.chosen.meta if isinstance(p.chosen.meta, dict) else {}
    source = meta.get("intent_source")
    return str(source) if source else UNKNOWN


__all__ = ["UNKNOWN", "explorer_of", "intent_source_of", "pair_tasks", "task_key"]
