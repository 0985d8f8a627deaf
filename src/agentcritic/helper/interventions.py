"""Interventions: who acts when the agent asks for help (selfreg.md "Actors").

Three kinds, one interface (``reset`` once per episode, ``act`` once per helped step):

- ``expert``: the env's oracle (``env.expert_action()``) — stands in for a human;
- ``model``: a stronger policy through any ``agentcritic.llm`` backend (an
  :class:`~agentcritic.agents.ReActAgent` built by :func:`agentcritic.agents.make_agent`);
- ``search``: test-time compute — a planner from :mod:`agentcritic.planning` (Best-of-N, MCTS …)
  solves the task *from the current state* and its first action is taken.

Each has a ``cost`` per request (several kinds with different costs may be configured) and a
``takeover`` length: one request = one action by default, or ``k`` consecutive actions. The actor
tag logged on a helped step is the intervention's ``name`` (default: its kind).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from agentcritic.agents.base import AgentError
from agentcritic.envs.base import StepOutcome, TextEnv
from agentcritic.types import Trajectory

KINDS: tuple[str, ...] = ("expert", "model", "search")


class InterventionError(AgentError):
    """An intervention that cannot act as asked (no expert in this env, a planner with no action)."""


class Intervention:
    """Base class: ``name`` is the actor tag, ``cost`` the price of one request, ``takeover`` the
    number of consecutive actions one request buys."""

    kind: str = "base"

    def __init__(self, name: str | None = None, cost: float = 1.0, takeover: int = 1) -> None:
        if cost < 0:
            raise ValueError(f"{type(self).__name__}: cost={cost} must be >= 0")
        if int(takeover) < 1:
            raise ValueError(f"{type(self).__name__}: takeover={takeover} must be >= 1 (actions per request)")
        self.name = name or self.kind
        self.cost = float(cost)
        self.takeover = int(takeover)

    def reset(self, env: TextEnv, task_id: str, seed: int) -> None:
        """Start of an episode."""

    def act(self, env: TextEnv, history: Trajectory, info: dict[str, Any]) -> str:
        """The next action from the env's current state (``history`` is the episode so far)."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, cost={self.cost}, takeover={self.takeover})"


class ExpertIntervention(Intervention):
    """The env's oracle: the optimal next action over the true state."""

    kind = "expert"

    def act(self, env: TextEnv, history: Trajectory, info: dict[str, Any]) -> str:
        action = env.expert_action()
        if action is None:
            raise InterventionError(
                f"{env.name}/{history.task_id}: the expert has no action from this state "
                f"(after {len(history.steps)} steps); use another intervention kind for this env"
            )
        return action


class ModelIntervention(Intervention):
    """A (stronger) policy: any agent with ``reset(env, task_id, seed)`` and ``act(history, info)``."""

    kind = "model"

    def __init__(self, agent: Any, name: str | None = None, cost: float = 1.0, takeover: int = 1) -> None:
        super().__init__(name, cost, takeover)
        self.agent = agent

    def reset(self, env: TextEnv, task_id: str, seed: int) -> None:
        self.agent.reset(env, task_id, seed)

    def act(self, env: TextEnv, history: Trajectory, info: dict[str, Any]) -> str:
        return self.agent.act(history, info)


class SearchIntervention(Intervention):
    """A planner for that step: it solves the task from the current state (a :class:`PrefixEnv`
    replays the episode so far) and the first action of its pick is taken.

    ``planner`` is any object with ``solve(env, task_id, seed) -> PlanResult`` (see
    :mod:`agentcritic.planning`), or a zero-argument factory building one lazily.
    """

    kind = "search"

    def __init__(
        self,
        planner: Any | Callable[[], Any],
        name: str | None = None,
        cost: float = 1.0,
        takeover: int = 1,
    ) -> None:
        super().__init__(name, cost, takeover)
        self._planner = planner
        self._seed = 0
        self.last_result: Any = None

    @property
    def planner(self) -> Any:
        if not hasattr(self._planner, "solve") and callable(self._planner):
            self._planner = self._planner()
        return self._planner

    def reset(self, env: TextEnv, task_id: str, seed: int) -> None:
        self._seed = int(seed)

    def act(self, env: TextEnv, history: Trajectory, info: dict[str, Any]) -> str:
        prefix, seed = list(env.actions), env.seed
        view = PrefixEnv(env, prefix)
        try:
            result = self.planner.solve(view, history.task_id, seed=self._seed + len(prefix))
        finally:
            env.restore(prefix, task_id=history.task_id, seed=seed)  # the search moved the real env
        self.last_result = result
        steps = result.trajectory.steps
        if not steps:
            raise InterventionError(
                f"{env.name}/{history.task_id}: the planner returned an empty trajectory from step {len(env.actions)}"
            )
        return steps[0].action


class PrefixEnv(TextEnv):
    """A view of ``inner`` whose episodes start where ``inner`` stands after ``prefix``.

    ``reset(task_id)`` replays the prefix on ``inner``; steps go to ``inner``; the step limit is what
    the real episode has left. Planners written for whole episodes thus plan from a mid-episode state.
    ``inner`` is left wherever the planner leaves it: callers restore it afterwards.
    """

    def __init__(self, inner: TextEnv, prefix: list[str]) -> None:
        super().__init__(max_steps=max(1, inner.max_steps - len(prefix)))
        self.inner = inner
        self.prefix = list(prefix)
        self.name = inner.name  # type: ignore[misc]  # its trajectories render and prompt as the real env's
        self.splits = inner.splits  # type: ignore[misc]
        self._init_kwargs = {"inner": inner, "prefix": list(prefix)}

    def _task_ids(self, split: str) -> list[str]:
        return self.inner.task_ids(split)

    def is_task_id(self, task_id: str) -> bool:
        return self.inner.is_task_id(task_id)

    def _reset(self, task_id: str, seed: int | None) -> tuple[str, str]:
        obs, info = self.inner.restore(self.prefix, task_id=task_id, seed=seed)
        self.score, self.success = self.inner.score, self.inner.success
        return obs, info["instruction"]

    def _step(self, action: str) -> StepOutcome:
        obs, _, terminated, _, info = self.inner.step(action)
        return StepOutcome(obs, score=self.inner.score, done=terminated, valid=not info.get("invalid"),
                           success=self.inner.success)

    def _admissible(self) -> list[str] | None:
        return self.inner.admissible_actions()

    def _expert(self) -> str | None:
        return self.inner.expert_action()


def make_intervention(config: Any, env_name: str | None = None) -> Intervention:
    """Build an intervention from an :class:`~agentcritic.helper.helper_config.InterventionConfig`."""
    kind = config.kind
    common = {"name": config.name, "cost": config.cost, "takeover": config.takeover}
    if kind == "expert":
        return ExpertIntervention(**common)
    if kind == "model":
        from agentcritic.agents import make_agent

        agent = make_agent(config.policy, seed=config.seed, mode=config.mode, temperature=config.temperature,
                           few_shot=config.few_shot, llm=config.llm)
        return ModelIntervention(agent, **common)
    if kind == "search":
        return SearchIntervention(lambda: _build_planner(config), **common)
    raise ValueError(f"unknown intervention kind {kind!r}; valid kinds are {list(KINDS)}")


def _build_planner(config: Any) -> Any:
    # planning sits above helper's dependencies in spirit (it needs an RM); imported only when used
    from agentcritic.agents import make_agent
    from agentcritic.planning import NEEDS_TARGET, make_planner

    agent = make_agent(config.policy, seed=config.seed, mode=config.mode, temperature=config.temperature,
                       few_shot=config.few_shot, llm=config.llm)
    target = None
    if config.planner in NEEDS_TARGET:
        from agentcritic.rm.custom import make_target

        if config.reward_model:
            target = make_target("rm", rm=config.reward_model)
        else:
            target = make_target("env")  # the env's own reward: an oracle search (say so in reports)
    return make_planner(config.planner, agent, target, **config.planner_params)
