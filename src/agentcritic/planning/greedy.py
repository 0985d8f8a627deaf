"""Greedy: one episode at temperature 0 — the first baseline of the paper's table."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from agentcritic.agents.rollout import rollout
from agentcritic.config import StageConfig
from agentcritic.planning.accounting import agent_settings
from agentcritic.planning.base import BasePlanner, PlanResult


class GreedyConfig(StageConfig):
    """Parameters of :class:`Greedy`."""

    max_steps: int | None = Field(None, ge=1, description="step limit of an episode (the env's own when unset)")


class Greedy(BasePlanner):
    """The agent at temperature 0, once. With a target, the pick's target score is reported too."""

    name = "Greedy"
    method = "greedy"
    config_class = GreedyConfig
    config: GreedyConfig

    def _plan(self, env: Any, task_id: str, seed: int) -> PlanResult:
        with agent_settings(self.agent, temperature=0.0):
            traj = rollout(env, self.agent, task_id, seed=seed, max_steps=self.config.max_steps,
                           meta={"planner": self.method})
        rm_score = self.target_score(traj)
        meta: dict[str, Any] = {"method": self.method}
        if rm_score is not None:
            meta["target_scores"] = [rm_score]
        return PlanResult(traj, rm_score, [traj], meta=meta)
