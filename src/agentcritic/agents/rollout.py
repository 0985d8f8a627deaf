"""One episode of an agent in an env, recorded as a :class:`Trajectory`."""

from __future__ import annotations

from typing import Any

from agentcritic.agents.base import Agent
from agentcritic.envs.base import TextEnv
from agentcritic.types import Step, Trajectory


def rollout(
    env: TextEnv,
    agent: Agent,
    task_id: str,
    seed: int = 0,
    max_steps: int | None = None,
    meta: dict[str, Any] | None = None,
) -> Trajectory:
    """Run ``agent`` on ``task_id`` until the env ends the episode or ``max_steps`` is reached.

    An exception raised by the agent (an unreachable server, an expert with no move) does not
    escape: the episode is recorded as failed with the error in ``meta["error"]``, so a long run
    goes on. Errors of the env itself (unknown task id) do escape: they are the caller's.
    """
    obs, info = env.reset(task_id=task_id, seed=seed)
    traj = Trajectory(
        env=env.name,
        task_id=str(task_id),
        instruction=info["instruction"],
        meta={**env.trajectory_meta(), "policy": getattr(agent, "name", type(agent).__name__), **(meta or {})},
    )
    limit = min(env.max_steps, max_steps) if max_steps else env.max_steps
    agent.reset(env, task_id, seed)
    done = False
    while not done and len(traj.steps) < limit:
        try:
            action = agent.act(traj, info)
        except Exception as exc:  # noqa: BLE001 - recorded, not swallowed: see docstring
            traj.meta["error"] = f"{type(exc).__name__}: {exc}"
            break
        obs, reward, terminated, truncated, info = env.step(action)
        step_info = {k: v for k, v in info.items() if k not in ("admissible_actions", "instruction", "task_id")}
        traj.steps.append(Step(action=action, observation=obs, reward=reward, info=step_info))
        done = terminated or truncated
    traj.success = bool(env.success) and "error" not in traj.meta
    traj.score = float(env.score)
    traj.meta["invalid_actions"] = env.invalid_actions
    if hasattr(agent, "stats"):
        traj.meta["agent"] = agent.stats()
    traj.meta["truncated"] = bool(env.truncated or (not env.terminated and len(traj.steps) >= limit))
    return traj
