"""Sampling: N episodes at temperature T — the second baseline.

The number it reports is the mean env score of the N (one random sample's expected result, in
``meta["mean_score"]``); its trajectory is the first sample. The best of the N by env score is an
oracle, never a method: it is given only as ``meta["oracle_score"]``.
"""

from __future__ import annotations

import copy
import statistics
import warnings
from typing import Any

from pydantic import Field

from agentcritic.agents.rollout import rollout
from agentcritic.concurrency import requests_in_flight, thread_map
from agentcritic.config import StageConfig
from agentcritic.planning.accounting import agent_settings, sample_seed
from agentcritic.planning.base import BasePlanner, PlanResult
from agentcritic.specs import EnvSpec
from agentcritic.types import Trajectory


class SamplingConfig(StageConfig):
    """Parameters of :class:`Sampling` (and of :class:`~agentcritic.planning.best_of_n.BestOfN`)."""

    n: int = Field(5, ge=1, description="episodes sampled per task")
    temperature: float = Field(0.7, ge=0.0, description="sampling temperature of the agent")
    max_steps: int | None = Field(None, ge=1, description="step limit of an episode (the env's own when unset)")


def draw_samples(env: Any, agent: Any, task_id: str, seed: int, config: SamplingConfig, planner: str) -> list[Trajectory]:
    """``config.n`` episodes at ``config.temperature``; sample i uses ``sample_seed(seed, i)``.

    Where the run keeps several requests in flight (``--concurrency``, see
    :mod:`agentcritic.concurrency`), the samples go out together: each on a thread with its own
    env of the same spec and its own copy of the agent (same seeds, so the same samples).
    """
    def sample(i: int, env: Any = env, agent: Any = agent) -> Trajectory:
        return rollout(env, agent, task_id, seed=sample_seed(seed, i), max_steps=config.max_steps,
                       meta={"planner": planner, "sample": i})

    together = min(config.n, requests_in_flight())
    spec = EnvSpec.of_env(env) if together > 1 else None
    if together > 1 and spec is None:
        _warn_one_at_a_time(env)
    with agent_settings(agent, temperature=config.temperature):
        if spec is None:
            return [sample(i) for i in range(config.n)]
        return thread_map(lambda i: sample(i, spec.cached(), copy.copy(agent)), range(config.n), together)


def _warn_one_at_a_time(env: Any) -> None:
    warnings.warn(f"{type(env).__name__} was not made by agentcritic.envs.make, so no more of it can be made: "
                  "its samples run one at a time despite --concurrency; make it with envs.make (register "
                  "it, or pass 'module:Class') to send them together", RuntimeWarning, stacklevel=3)


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
