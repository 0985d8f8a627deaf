"""Best-of-N (ARMAP-B): the same N samples as :class:`~agentcritic.planning.sampling.Sampling`
(same seeds, so the two are comparable task by task); return the one the target scores highest."""

from __future__ import annotations

from typing import Any

from agentcritic.planning.base import BasePlanner, PlanResult
from agentcritic.planning.sampling import SamplingConfig, draw_samples, sample_stats


class BestOfNConfig(SamplingConfig):
    """Parameters of :class:`BestOfN` (those of Sampling)."""


class BestOfN(BasePlanner):
    """Sample N, score all with the target, return the argmax (the first on ties)."""

    name = "ARMAP-B"
    method = "best_of_n"
    config_class = BestOfNConfig
    target_use = "to rank its samples"
    config: BestOfNConfig

    def _plan(self, env: Any, task_id: str, seed: int) -> PlanResult:
        samples = draw_samples(env, self.agent, task_id, seed, self.config, self.method)
        scores = [float(s) for s in self.target.score(samples)]
        best = max(range(len(samples)), key=lambda i: (scores[i], -i))
        meta = {"method": self.method, "target_scores": scores, "pick": best, **sample_stats(samples)}
        return PlanResult(samples[best], scores[best], samples, meta=meta)
