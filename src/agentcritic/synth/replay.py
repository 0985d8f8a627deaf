"""Re-execute a list of actions in an env and record what it answers, as a :class:`Trajectory`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from agentcritic.envs.base import TextEnv
from agentcritic.types import Step, Trajectory

Repair = Callable[[str, dict[str, Any]], str]
_INFO_DROP = ("admissible_actions", "instruction", "task_id")


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
    ``score``/``success`` are the env's own, against the task's instruction.
    """
    obs, info = env.reset(task_id=task_id, seed=seed)
    traj = Trajectory(env=env.name, task_id=str(task_id), instruction=instruction,
                      meta={**env.trajectory_meta(), **(meta or {})})
    done = False
    for i, action in enumerate(actions):
        if done:
            break
        if repair is not None and i >= repair_from:
            action = repair(action, info)
        obs, reward, terminated, truncated, info = env.step(action)
        traj.steps.append(Step(action=action, observation=obs, reward=reward,
                               info={k: v for k, v in info.items() if k not in _INFO_DROP}))
        done = terminated or truncated
    traj.success = bool(env.success)
    traj.score = float(env.score)
    traj.meta["invalid_actions"] = env.invalid_actions
    return traj, info


def admissible_after(env: TextEnv, task_id: str, seed: int | None, prefix: Sequence[str]) -> list[str]:
    """The admissible actions after replaying ``prefix`` (empty where the env lists none)."""
    _, info = env.restore(list(prefix), task_id=task_id, seed=seed)
    return list(info.get("admissible_actions") or [])
