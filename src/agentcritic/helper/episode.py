"""One episode in which the base policy may ask for help, shared by collection and evaluation.

It is the episode loop of :func:`agentcritic.agents.rollout.play_episode` with two hooks: at every
decision the caller's ``should_ask(state, step)`` answers (a coin with probability p while
collecting; a Gate over a helper or baseline while evaluating); on "ask" the intervention acts for
``takeover`` consecutive actions, else the base agent acts. With several interventions (a mapping
actor → intervention) ``should_ask`` answers *whom* to ask: an actor name, or None for nobody.
Each action is logged as a :class:`~agentcritic.types.Transition`:

- ``state_key`` (option ``prefix`` of selfreg.md): the JSON list ``[task id, action 1, …]`` of the
  actions taken so far — with a deterministic env, the exact state;
- ``state_text``: what the agent sees (:func:`agentcritic.rendering.render` of the episode so far, cut to
  ``state_chars`` keeping the start and the last steps);
- ``helped`` / ``actor``: whether the intervention acted, and its name (``"agent"`` otherwise);
- ``next_state_key`` and ``done``; every transition carries the episode's ``success``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from agentcritic.agents.rollout import EpisodeHooks, play_episode
from agentcritic.envs.base import TextEnv
from agentcritic.errors import AgentCriticError
from agentcritic.helper.gate import DecisionState
from agentcritic.helper.interventions import Intervention
from agentcritic.rendering import render
from agentcritic.types import Trajectory, Transition

#: ``should_ask(state, step) -> bool`` (one intervention) or ``-> actor | None`` (several)
AskFn = Callable[[DecisionState, int], "bool | str | None"]


class HelpChoiceError(AgentCriticError, ValueError):
    """``should_ask`` named an intervention the episode does not have, or said "yes" without saying which."""


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
    intervention: Intervention | Mapping[str, Intervention],
    task_id: str,
    should_ask: AskFn,
    *,
    seed: int = 0,
    max_steps: int | None = None,
    state_chars: int | None = 4000,
    meta: dict[str, Any] | None = None,
) -> HelpedEpisode:
    """Run one episode; the base ``agent`` acts unless ``should_ask`` says to call ``intervention``.

    ``intervention`` may be a mapping actor → intervention; ``should_ask`` then returns the actor to
    ask (or None). An exception of the agent or the intervention ends the episode as a failure with
    the error in ``error`` (a long collection goes on); env errors (unknown task) escape: they are the caller's.
    """
    several = dict(intervention) if isinstance(intervention, Mapping) else {intervention.name: intervention}
    helping = _Helping(env, several, str(task_id), should_ask, state_chars)
    for one in several.values():
        one.reset(env, task_id, seed)
    name = intervention.name if not isinstance(intervention, Mapping) else ",".join(several)
    episode = play_episode(env, agent, task_id, seed, max_steps=max_steps,
                           meta={"intervention": name, **(meta or {})},
                           hooks=EpisodeHooks(override=helping.override, on_step=helping.on_step))
    traj, transitions, error = episode.trajectory, helping.transitions, episode.error
    traj.meta.update(interventions=helping.requests, intervention_cost=helping.cost)
    for t in transitions:
        t.success = traj.success
    if transitions and not transitions[-1].done:
        transitions[-1].done = True  # the episode stopped here (an error): nothing follows this state
    return HelpedEpisode(traj, transitions, helping.requests, helping.cost, error, dict(meta or {}))


class _Helping:
    """The hooks of a helped episode: ask at each decision, let the intervention act for its
    takeover, log one transition per step."""

    def __init__(self, env: TextEnv, interventions: dict[str, Intervention], task_id: str, should_ask: AskFn,
                 state_chars: int | None) -> None:
        self.env, self.interventions, self.task_id = env, interventions, task_id
        self.intervention = next(iter(interventions.values()))  # the one acting (the last asked)
        self.should_ask, self.state_chars = should_ask, state_chars
        self.transitions: list[Transition] = []
        self.requests, self.cost, self.takeover_left = 0, 0.0, 0
        self.last_actor = "none"
        self.state: tuple[str, str, bool] = ("", "", False)  # key, text, helped of the pending decision

    def override(self, traj: Trajectory, info: dict[str, Any]) -> tuple[str, str] | None:
        key = state_key(self.task_id, self.env.actions)
        text = render(traj.instruction, traj, max_chars=self.state_chars)
        if self.takeover_left > 0:
            helped = True
            self.takeover_left -= 1
        else:
            answer = self.should_ask(DecisionState(self.task_id, key, text, self.last_actor), len(traj.steps))
            helped = self._choose(answer)
            if helped:
                self.requests += 1
                self.cost += self.intervention.cost
                self.takeover_left = self.intervention.takeover - 1
        self.state = (key, text, helped)
        return (self.intervention.act(self.env, traj, info), self.intervention.name) if helped else None

    def _choose(self, answer: bool | str | None) -> bool:
        """Set the intervention ``should_ask``'s answer names; whether one was asked."""
        if isinstance(answer, str):
            if answer not in self.interventions:
                raise HelpChoiceError(f"should_ask answered {answer!r}; this episode's interventions are "
                                      f"{list(self.interventions)}")
            self.intervention = self.interventions[answer]
            return True
        if not answer:
            return False
        if len(self.interventions) > 1:
            raise HelpChoiceError(f"should_ask answered {answer!r} with several interventions "
                                  f"{list(self.interventions)}: answer the actor to ask, or None")
        return True

    def on_step(self, traj: Trajectory, info: dict[str, Any], last: bool) -> None:
        key, text, helped = self.state
        actor = traj.steps[-1].actor
        self.transitions.append(Transition(task_id=self.task_id, state_key=key, state_text=text, helped=helped,
                                           actor=actor, next_state_key=state_key(self.task_id, self.env.actions),
                                           done=last))
        self.last_actor = actor
