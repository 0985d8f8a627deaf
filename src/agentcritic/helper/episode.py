"""One episode in which the base policy may ask for help: the loop shared by collection and evaluation.

At every decision the caller's ``should_ask(state, step)`` answers (a coin with probability p while
collecting; a Gate over a helper or baseline while evaluating); on "ask" the intervention acts for
``takeover`` consecutive actions, else the base agent acts. Each action is logged as a
:class:`~agentcritic.types.Transition`:

- ``state_key`` (option ``prefix`` of selfreg.md): the JSON list ``[task id, action 1, …]`` of the
  actions taken so far — with a deterministic env, the exact state;
- ``state_text``: what the agent sees (``env.render_for_rm`` of the episode so far, cut to
  ``state_chars`` keeping the start and the last steps);
- ``helped`` / ``actor``: whether the intervention acted, and its name (``"agent"`` otherwise);
- ``next_state_key`` and ``done``; every transition carries the episode's ``success``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from agentcritic.envs.base import TextEnv
from agentcritic.helper.gate import DecisionState
from agentcritic.helper.interventions import Intervention
from agentcritic.types import Step, Trajectory, Transition

#: ``should_ask(state, step) -> bool``
AskFn = Callable[[DecisionState, int], bool]


def state_key(task_id: str, actions: list[str]) -> str:
    """The ``prefix`` state key: the task id and the actions so far, as a compact JSON list."""
    return json.dumps([str(task_id), *actions], ensure_ascii=False, separators=(",", ":"))


def parse_state_key(key: str) -> tuple[str, list[str]]:
    """Inverse of :func:`state_key`: (task id, actions)."""
    items = json.loads(key)
    return str(items[0]), [str(a) for a in items[1:]]


@dataclass
class HelpedEpisode:
    """An episode's trajectory, its transitions and what the help cost."""

    trajectory: Trajectory
    transitions: list[Transition]
    interventions: int = 0  # requests (a k-step takeover is one request)
    cost: float = 0.0
    error: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def success(self) -> bool:
        return bool(self.trajectory.success)

    def to_record(self) -> dict[str, Any]:
        """The JSONL record: one episode per line (what ``train-prm`` and ``train-helper`` read)."""
        return {
            "task_id": self.trajectory.task_id,
            "env": self.trajectory.env,
            "success": self.success,
            "score": self.trajectory.score,
            "steps": len(self.trajectory.steps),
            "interventions": self.interventions,
            "cost": self.cost,
            "error": self.error,
            "meta": self.meta,
            "transitions": [t.to_dict() for t in self.transitions],
            "trajectory": self.trajectory.to_dict(),
        }


def run_helped_episode(
    env: TextEnv,
    agent: Any,
    intervention: Intervention,
    task_id: str,
    should_ask: AskFn,
    *,
    seed: int = 0,
    max_steps: int | None = None,
    state_chars: int | None = 4000,
    meta: dict[str, Any] | None = None,
) -> HelpedEpisode:
    """Run one episode; the base ``agent`` acts unless ``should_ask`` says to call ``intervention``.

    An exception of the agent or the intervention ends the episode as a failure with the error in
    ``error`` (a long collection goes on); env errors (unknown task) escape: they are the caller's.
    """
    obs, info = env.reset(task_id=task_id, seed=seed)
    traj = Trajectory(env=env.name, task_id=str(task_id), instruction=info["instruction"],
                      meta={**env.trajectory_meta(), "policy": getattr(agent, "name", type(agent).__name__),
                            "intervention": intervention.name, **(meta or {})})
    agent.reset(env, task_id, seed)
    intervention.reset(env, task_id, seed)
    limit = min(env.max_steps, max_steps) if max_steps else env.max_steps
    transitions: list[Transition] = []
    requests, cost, takeover_left = 0, 0.0, 0
    last_actor, error = "none", None
    done = False
    while not done and len(traj.steps) < limit:
        key = state_key(task_id, env.actions)
        text = env.render_for_rm(traj, max_chars=state_chars)
        try:
            if takeover_left > 0:
                helped = True
                takeover_left -= 1
            else:
                helped = bool(should_ask(DecisionState(str(task_id), key, text, last_actor), len(traj.steps)))
                if helped:
                    requests += 1
                    cost += intervention.cost
                    takeover_left = intervention.takeover - 1
            action = intervention.act(env, traj, info) if helped else agent.act(traj, info)
        except Exception as exc:  # noqa: BLE001 - recorded on the episode, see the docstring
            error = f"{type(exc).__name__}: {exc}"
            break
        actor = intervention.name if helped else "agent"
        obs, reward, terminated, truncated, info = env.step(action)
        step_info = {k: v for k, v in info.items() if k not in ("admissible_actions", "instruction", "task_id")}
        traj.steps.append(Step(action=action, observation=obs, reward=reward, info=step_info, actor=actor))
        done = terminated or truncated or len(traj.steps) >= limit
        transitions.append(Transition(task_id=str(task_id), state_key=key, state_text=text, helped=helped,
                                      actor=actor, next_state_key=state_key(task_id, env.actions), done=done))
        last_actor = actor
    success = bool(env.success) and error is None
    traj.success, traj.score = success, float(env.score)
    traj.meta.update(invalid_actions=env.invalid_actions, interventions=requests, intervention_cost=cost)
    if error:
        traj.meta["error"] = error
    for t in transitions:
        t.success = success
    if transitions and not transitions[-1].done:
        transitions[-1].done = True  # the episode stopped here (an error): nothing follows this state
    return HelpedEpisode(traj, transitions, requests, cost, error, dict(meta or {}))
