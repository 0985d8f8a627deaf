"""The explorer: any acting policy made noisy, for reward-data synthesis (ARMAP's wandering agent).

``ExplorerAgent(base, eps)`` asks ``base`` for an action and, with probability ``eps`` per step (or
whenever ``base`` has no action — an expert off its gold path, an LLM agent that fails), takes a
uniformly random admissible action instead. A step the base failed to take is labelled by what
took it (:meth:`ExplorerAgent.label`), and a trajectory whose LLM failed is not finished work: it
is recorded as an infrastructure failure, so the stage counts it and a re-run explores it again.
Diversity comes from two knobs: the LLM's sampling temperature (inside ``base``) and ``eps``. An
explorer with no base is the uniform random policy.

Which policies may be explored with is :data:`EXPLORER_POLICIES`: the env's own expert (a "guided"
explorer that reaches the goal unless its random steps spoil it; label-free, since the env knows
its own solution) and every LLM policy of :func:`agentcritic.agents.make_agent`.
"""

from __future__ import annotations

import random
from typing import Any

from agentcritic.agents.base import Agent, AgentError, derive_seed
from agentcritic.envs.base import TextEnv
from agentcritic.llm.base import is_infrastructure_failure
from agentcritic.types import Trajectory

EXPLORER_POLICIES = ("random", "expert", "smollm2", "hf", "openai", "llamacpp")


class ExplorerAgent:
    """``base``'s action, or with probability ``eps`` a uniformly random admissible one.

    ``stats()`` reports how many steps were random (``random_steps``) and how many times the base
    had no action (``fallbacks``; ``llm_fallbacks`` of them because its LLM failed), so a run can
    tell exploration noise from a failing base policy.
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
        self.llm_fallbacks = 0
        self.base_steps = 0
        self.base_errors: list[str] = []
        self.fallback_at: dict[int, str] = {}  # step index -> why the base did not act there

    def reset(self, env: TextEnv, task_id: str, seed: int) -> None:
        self._rng = random.Random(derive_seed(self.base_seed, "explore", env.name, task_id, seed))
        self.random_steps = self.fallbacks = self.llm_fallbacks = self.base_steps = 0
        self.base_errors = []
        self.fallback_at = {}
        if self.base is not None:
            self.base.reset(env, task_id, seed)

    def act(self, history: Trajectory, info: dict[str, Any]) -> str:
        choices = sorted(info.get("admissible_actions") or [])
        if self.base is not None and (not choices or self._rng.random() >= self.eps):
            try:
                action = self.base.act(history, info)
                self.base_steps += 1
                return action
            except Exception as exc:  # noqa: BLE001 - an expert off its path: explore on at random, labelled
                if not choices:
                    raise
                self.fallbacks += 1
                llm = is_infrastructure_failure(exc)
                self.llm_fallbacks += llm
                self.fallback_at[len(history.steps)] = "llm_error" if llm else "base_error"
                if len(self.base_errors) < 3:
                    self.base_errors.append(f"{type(exc).__name__}: {exc}")
        if not choices:
            raise AgentError(f"{history.env}/{history.task_id}: no admissible actions to explore from")
        self.random_steps += 1
        return self._rng.choice(choices)

    def label(self, traj: Trajectory) -> Trajectory:
        """Label ``traj`` (this explorer's last episode) by what actually acted.

        A step the base failed to take gets ``actor = "random"`` and ``info["fallback"]`` (why:
        ``llm_error`` or ``base_error``); the trajectory's ``policy`` names the base only when the
        base acted (``"random"`` when it acted in no step, ``"<name>+random-fallback"`` when it
        acted in some), with the explorer's own name in ``meta["intended_policy"]``. When the base's LLM
        failed, the trajectory is an infrastructure failure (``meta["error_kind"]``): not finished
        work, explored again by a re-run.
        """
        for i, why in self.fallback_at.items():
            if i < len(traj.steps):
                traj.steps[i].actor = "random"
                traj.steps[i].info["fallback"] = why
        if self.base is None or not self.fallbacks:
            return traj
        traj.meta["intended_policy"] = self.name
        traj.meta["fallback_steps"] = self.fallbacks
        traj.meta["policy"] = f"{self.name}+random-fallback" if self.base_steps else "random"
        if self.llm_fallbacks and traj.meta.get("error_kind") != "infrastructure":
            traj.meta["error"] = (f"the explorer's LLM failed on {self.llm_fallbacks} of {len(traj.steps)} step(s), "
                                  f"taken at random instead; last error: {self.base_errors[-1]}")
            traj.meta["error_kind"] = "infrastructure"
        return traj

    def stats(self) -> dict[str, Any]:
        out: dict[str, Any] = {"eps": self.eps, "random_steps": self.random_steps, "fallbacks": self.fallbacks,
                               "llm_fallbacks": self.llm_fallbacks}
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
