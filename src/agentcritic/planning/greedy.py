"""Greedy: one episode at temperature 0 — the first baseline of the paper's table."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from agentcritic.agents.rollout import rollout
from agentcritic.config import StageConfig
from agentcritic.envs.base import TextEnv
from agentcritic.planning.accounting import CostMeter, agent_settings
from agentcritic.planning.base import PlanResult
from agentcritic.planning.params import parse_params


class GreedyConfig(StageConfig):
    """Parameters of :class:`Greedy`."""

    max_steps: int | None = Field(None, ge=1, description="step limit of an episode (the env's own when unset)")


class Greedy:
    """The agent at temperature 0, once. With a target, the pick's target score is reported too."""

    name = "Greedy"
    method = "greedy"

    def __init__(self, agent: Any, target: Any = None, **params: Any) -> None:
        self.agent = agent
        self.target = target
        self.config = parse_params(GreedyConfig, self.method, params)

    def solve(self, env: TextEnv, task_id: str, seed: int = 0) -> PlanResult:
        meter = CostMeter(env, self.agent, self.target)
        with agent_settings(self.agent, temperature=0.0):
            traj = rollout(meter.env, self.agent, task_id, seed=seed, max_steps=self.config.max_steps,
                           meta={"planner": self.method})
        rm_score = self.target.score([traj])[0] if self.target is not None else None
        meta: dict[str, Any] = {"method": self.method}
        if rm_score is not None:
            meta["target_scores"] = [rm_score]
        return PlanResult(traj, rm_score, [traj], meter.cost(), meta=meta)
