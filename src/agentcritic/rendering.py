"""The one text a model reads for an (intent, trajectory) pair.

Reward-model training and scoring, the process reward model, the scoring server, the planners'
targets, the helper's state texts, the synthesis filter and the TRL exports all read
:func:`render`, so an exported row is exactly what the reward model reads::

    Instruction: buy red shoes
    Observation: <first observation>
    Action: search[red shoes]
    Observation: <observation, as the env shows it to reward models>
    ...

Observations pass through the env class's ``rm_observation`` (looked up by the trajectory's env
name, no env is built), which hides what would let a model read the verdict instead of judging
the steps (game24's "Correct") or text every page repeats (the shop's echo of the instruction).
An env name that is not registered reads its observations as they are.
"""

from __future__ import annotations

from collections.abc import Callable

from agentcritic.envs.base import EnvError, TextEnv
from agentcritic.envs.registry import env_class
from agentcritic.types import Trajectory

#: the intent's line; the trajectory's text follows it directly
INTENT_TEMPLATE = "Instruction: {intent}\n"
#: what stands for the steps that ``max_chars`` cut
CUT_MARKER = "[... {n} earlier steps cut ...]"
#: room kept for the cut marker when cutting to ``max_chars``
_MARKER_ROOM = 40


def observation_view(env: str) -> Callable[[str, bool], str]:
    """``rm_observation`` of the env registered as ``env`` (as is for an unregistered name)."""
    try:
        return env_class(env).rm_observation
    except EnvError:
        return TextEnv.rm_observation


def blocks(trajectory: Trajectory, *, raw: bool = False) -> tuple[str | None, list[str]]:
    """The first-observation line (None when there is none) and one ``Action:``/``Observation:``
    block per step. ``raw`` shows observations as they are (models saved before reward models
    read the env's view kept that)."""
    view = TextEnv.rm_observation if raw else observation_view(trajectory.env)
    first = None
    if trajectory.first_observation:
        first = f"Observation: {view(trajectory.first_observation, not trajectory.steps)}"
    last = len(trajectory.steps) - 1
    steps = [f"Action: {s.action}\nObservation: {view(s.observation, i == last)}" for i, s in enumerate(trajectory.steps)]
    return first, steps


def trajectory_text(trajectory: Trajectory | str, *, raw: bool = False) -> str:
    """The text after the intent line: first observation, then the steps. A string is taken as a
    trajectory already rendered."""
    if isinstance(trajectory, str):
        return trajectory
    first, steps = blocks(trajectory, raw=raw)
    return "\n".join(([first] if first else []) + steps)


def with_intent(intent: str, text: str) -> str:
    """The intent line followed by a trajectory's text."""
    return INTENT_TEMPLATE.format(intent=intent) + text


def render(
    intent: str, trajectory: Trajectory | str, *, max_chars: int | None = None, raw: bool = False
) -> str:
    """The exact text a model reads for ``trajectory`` judged against ``intent``.

    Longer than ``max_chars``: keep the intent, the first observation and as many of the last
    steps as fit, with a ``[... N earlier steps cut ...]`` marker (a trajectory given as text is
    not cut). Reward models cut to their token budget the same way; see
    :class:`agentcritic.rm.scoring_model.TextFitter`.
    """
    full = with_intent(intent, trajectory_text(trajectory, raw=raw))
    if max_chars is None or len(full) <= max_chars or isinstance(trajectory, str):
        return full
    first, steps = blocks(trajectory, raw=raw)
    head = with_intent(intent, first or "").rstrip("\n")
    kept: list[str] = []
    budget = max_chars - len(head) - _MARKER_ROOM
    for text in reversed(steps):
        if budget - len(text) - 1 < 0:
            break
        kept.insert(0, text)
        budget -= len(text) + 1
    return "\n".join([head, CUT_MARKER.format(n=len(steps) - len(kept)), *kept])
