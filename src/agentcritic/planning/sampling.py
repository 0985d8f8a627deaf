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
from agentcritic.planning.accounting import agent_settings, sample_seed
from agentcritic.planning.base import BasePlanner, PlanResult
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


class Sampling(BasePlanner):
    """N samples; reports their mean env score; the first sample is its trajectory."""

    name = "Sampling"
    method = "sampling"
    config_class = SamplingConfig
    config: SamplingConfig

    def _plan(self, env: Any, task_id: str, seed: int) -> PlanResult:
        samples = draw_samples(env, self.agent, task_id, seed, self.config, self.method)
        pick = samples[0]
        return PlanResult(pick, self.target_score(pick), samples, meta={"method": self.method, **sample_stats(samples)})
