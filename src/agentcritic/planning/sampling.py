"""Sampling: N episodes at temperature T — the second baseline.

The number it reports is the mean env score of the N (one random sample's expected result, in
``meta["mean_score"]``); its trajectory is the first sample. The best of the N by env score is an
oracle, never a method: it is given only as ``meta["oracle_score"]``.
"""

from __future__ import annotations

import statistics
from typing import Any

from pydantic import Field

from agentcritic.agents.rollout import rollout
from agentcritic.config import StageConfig
from agentcritic.envs.base import TextEnv
from agentcritic.planning.accounting import CostMeter, agent_settings, sample_seed
from agentcritic.planning.base import PlanResult
from agentcritic.planning.params import parse_params
from agentcritic.types import Trajectory


class SamplingConfig(StageConfig):
    """Parameters of :class:`Sampling` (and of :class:`~agentcritic.planning.best_of_n.BestOfN`)."""

    n: int = Field(5, ge=1, description="episodes sampled per task")
    temperature: float = Field(0.7, ge=0.0, description="sampling temperature of the agent")
    max_steps: int | None = Field(None, ge=1, description="step limit of an episode (the env's own when unset)")


def draw_samples(env: Any, agent: Any, task_id: str, seed: int, config: SamplingConfig, planner: str) -> list[Trajectory]:
    """``config.n`` episodes at ``config.temperature``; sample i uses ``sample_seed(seed, i)``."""
    samples = []
    with agent_settings(agent, temperature=config.temperature):
        for i in range(config.n):
            samples.append(rollout(env, agent, task_id, seed=sample_seed(seed, i), max_steps=config.max_steps,
                                   meta={"planner": planner, "sample": i}))
    return samples


def sample_stats(samples: list[Trajectory]) -> dict[str, Any]:
    scores = [float(t.score or 0.0) for t in samples]
    return {
        "env_scores": scores,
        "mean_score": statistics.fmean(scores),
        "mean_success": statistics.fmean(float(bool(t.success)) for t in samples),
        "oracle_score": max(scores),
        "oracle_success": any(bool(t.success) for t in samples),
    }


class Sampling:
    """N samples; reports their mean env score; the first sample is its trajectory."""

    name = "Sampling"
    method = "sampling"

    def __init__(self, agent: Any, target: Any = None, **params: Any) -> None:
        self.agent = agent
        self.target = target
        self.config = parse_params(SamplingConfig, self.method, params)

    def solve(self, env: TextEnv, task_id: str, seed: int = 0) -> PlanResult:
        meter = CostMeter(env, self.agent, self.target)
        samples = draw_samples(meter.env, self.agent, task_id, seed, self.config, self.method)
        pick = samples[0]
        rm_score = self.target.score([pick])[0] if self.target is not None else None
        return PlanResult(pick, rm_score, samples, meter.cost(), meta={"method": self.method, **sample_stats(samples)})
