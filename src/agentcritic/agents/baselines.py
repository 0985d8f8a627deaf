"""Policies that need no language model: the env's expert and a uniform random chooser."""

from __future__ import annotations

import random
from typing import Any

from agentcritic.agents.base import AgentError, derive_seed
from agentcritic.envs.base import TextEnv
from agentcritic.types import Trajectory


class ExpertAgent:
    """Follows ``env.expert_action()`` (a solver, the target product, a gold path)."""

    name = "expert"

    def __init__(self) -> None:
        self._env: TextEnv | None = None

    def reset(self, env: TextEnv, task_id: str, seed: int) -> None:
        self._env = env

    def act(self, history: Trajectory, info: dict[str, Any]) -> str:
        assert self._env is not None, "reset() first"
        action = self._env.expert_action()
        if action is None:
            raise AgentError(f"{self._env.name}/{history.task_id}: the expert has no action from this state")
        return action


class RandomAgent:
    """Picks uniformly among the admissible actions, seeded per episode."""

    name = "random"

    def __init__(self, seed: int = 0) -> None:
        self.base_seed = seed
        self._rng = random.Random(seed)

    def reset(self, env: TextEnv, task_id: str, seed: int) -> None:
        self._rng = random.Random(derive_seed(self.base_seed, env.name, task_id, seed))

    def act(self, history: Trajectory, info: dict[str, Any]) -> str:
        choices = info.get("admissible_actions")
        if not choices:
            raise AgentError(f"{history.env}/{history.task_id}: no admissible actions to choose from")
        return self._rng.choice(sorted(choices))
