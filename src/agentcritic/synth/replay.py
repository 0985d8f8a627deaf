"""Re-execute a list of actions in an env and record what it answers, as a :class:`Trajectory`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from agentcritic.agents.rollout import EpisodeHooks, play_episode
from agentcritic.envs.base import TextEnv
from agentcritic.types import Trajectory

Repair = Callable[[str, dict[str, Any]], str]


def execute(
    env: TextEnv,
    task_id: str,
    seed: int | None,
    actions: Sequence[str],
    *,
    instruction: str,
    meta: dict[str, Any] | None = None,
    repair: Repair | None = None,
    repair_from: int = 0,
) -> tuple[Trajectory, dict[str, Any]]:
    """Reset ``task_id`` and step ``actions`` until the episode ends; return (trajectory, last info).

    ``repair(action, info)`` may rewrite each action from index ``repair_from`` on, given the info
    of the state it is taken in (e.g. game24's answer line rebuilt from the steps actually taken).
    ``score``/``success`` are the env's own, against the task's instruction. An exception of
    ``repair`` escapes: a replay has no actor whose failure could be recorded.
    """

    def next_action(history: Trajectory, info: dict[str, Any]) -> str | None:
        i = len(history.steps)
        if i >= len(actions):
            return None
        return repair(actions[i], info) if repair is not None and i >= repair_from else actions[i]

    episode = play_episode(env, None, task_id, seed, meta=meta, instruction=instruction,
                           hooks=EpisodeHooks(act=next_action))
    if episode.exception is not None:
        raise episode.exception
    return episode.trajectory, episode.info


def admissible_after(env: TextEnv, task_id: str, seed: int | None, prefix: Sequence[str]) -> list[str]:
    """The admissible actions after replaying ``prefix`` (empty where the env lists none)."""
    _, info = env.restore(list(prefix), task_id=task_id, seed=seed)
    return list(info.get("admissible_actions") or [])
