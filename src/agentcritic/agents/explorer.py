"""The explorer: any acting policy made noisy, for reward-data synthesis (ARMAP's wandering agent).

``ExplorerAgent(base, eps)`` asks ``base`` for an action and, with probability ``eps`` per step (or
whenever ``base`` has no action — an expert off its gold path, an LLM agent that fails), takes a
uniformly random admissible action instead. Diversity comes from two knobs: the LLM's sampling
temperature (inside ``base``) and ``eps``. An explorer with no base is the uniform random policy.

Which policies may be explored with is :data:`EXPLORER_POLICIES`: the env's own expert (a "guided"
explorer that reaches the goal unless its random steps spoil it; label-free, since the env knows
its own solution) and every LLM policy of :func:`agentcritic.agents.make_agent`.
"""

from __future__ import annotations

import random
from typing import Any

from agentcritic.agents.base import Agent, AgentError, derive_seed
from agentcritic.envs.base import TextEnv
from agentcritic.types import Trajectory

EXPLORER_POLICIES = ("random", "expert", "smollm2", "hf", "openai", "llamacpp")


class ExplorerAgent:
    """``base``'s action, or with probability ``eps`` a uniformly random admissible one.

    ``stats()`` reports how many steps were random (``random_steps``) and how many times the base
    had no action (``fallbacks``), so a run can tell exploration noise from a failing base policy.
    """

    def __init__(self, base: Agent | None, eps: float = 0.0, seed: int = 0, name: str | None = None) -> None:
        if not 0.0 <= eps <= 1.0:
            raise ValueError(f"eps must be in [0, 1], got {eps}")
        self.base = base
        self.eps = 1.0 if base is None else float(eps)
        self.base_seed = seed
        self.name = name or (f"{getattr(base, 'name', 'random')}-eps{self.eps:g}" if base else "random")
        self._rng = random.Random(seed)
        self.random_steps = 0
        self.fallbacks = 0
        self.base_errors: list[str] = []

    def reset(self, env: TextEnv, task_id: str, seed: int) -> None:
        self._rng = random.Random(derive_seed(self.base_seed, "explore", env.name, task_id, seed))
        self.random_steps = self.fallbacks = 0
        self.base_errors = []
        if self.base is not None:
            self.base.reset(env, task_id, seed)

    def act(self, history: Trajectory, info: dict[str, Any]) -> str:
        choices = sorted(info.get("admissible_actions") or [])
        if self.base is not None and (not choices or self._rng.random() >= self.eps):
            try:
                return self.base.act(history, info)
            except Exception as exc:  # noqa: BLE001 - an expert off its path: explore on at random
                if not choices:
                    raise
                self.fallbacks += 1
                if len(self.base_errors) < 3:
                    self.base_errors.append(f"{type(exc).__name__}: {exc}")
        if not choices:
            raise AgentError(f"{history.env}/{history.task_id}: no admissible actions to explore from")
        self.random_steps += 1
        return self._rng.choice(choices)

    def stats(self) -> dict[str, Any]:
        out: dict[str, Any] = {"eps": self.eps, "random_steps": self.random_steps, "fallbacks": self.fallbacks}
        if self.base_errors:
            out["base_errors"] = list(self.base_errors)
        base_stats = getattr(self.base, "stats", None)
        if callable(base_stats):
            out["base"] = base_stats()
        return out


def make_explorer(
    policy: str,
    eps: float = 0.2,
    seed: int = 0,
    temperature: float = 1.0,
    mode: str = "choose",
    few_shot: bool = True,
    max_candidates: int | None = None,
    llm: dict[str, Any] | None = None,
) -> ExplorerAgent:
    """An explorer over ``policy`` (see :data:`EXPLORER_POLICIES`)."""
    from agentcritic.agents import ExpertAgent, ReActAgent, load_lm

    if policy not in EXPLORER_POLICIES:
        raise ValueError(f"unknown explorer policy {policy!r}; valid policies are {list(EXPLORER_POLICIES)}")
    if policy == "random":
        return ExplorerAgent(None, seed=seed)
    if policy == "expert":
        return ExplorerAgent(ExpertAgent(), eps=eps, seed=seed, name=f"expert-eps{eps:g}")
    lm = load_lm(policy, **(llm or {}))
    base = ReActAgent(lm, mode=mode, temperature=temperature, few_shot=few_shot, seed=seed,
                      max_candidates=max_candidates, name=f"{policy}-{mode}-t{temperature:g}")
    return ExplorerAgent(base, eps=eps, seed=seed, name=f"{policy}-t{temperature:g}-eps{eps:g}")
