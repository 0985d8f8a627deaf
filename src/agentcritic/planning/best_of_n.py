"""Best-of-N (ARMAP-B): the same N samples as :class:`~agentcritic.planning.sampling.Sampling`
(same seeds, so the two are comparable task by task); return the one the target scores highest."""

from __future__ import annotations

from typing import Any

from agentcritic.envs.base import TextEnv
from agentcritic.planning.accounting import CostMeter
from agentcritic.planning.base import PlanResult
from agentcritic.planning.params import parse_params
from agentcritic.planning.sampling import SamplingConfig, draw_samples, sample_stats


class BestOfNConfig(SamplingConfig):
    """Parameters of :class:`BestOfN` (those of Sampling)."""


class BestOfN:
    """Sample N, score all with the target, return the argmax (the first on ties)."""

    name = "ARMAP-B"
    method = "best_of_n"

    def __init__(self, agent: Any, target: Any, **params: Any) -> None:
        if target is None:
            raise ValueError("best_of_n needs a target (a reward model or a custom target) to rank its samples")
        self.agent = agent
        self.target = target
        self.config = parse_params(BestOfNConfig, self.method, params)

    def solve(self, env: TextEnv, task_id: str, seed: int = 0) -> PlanResult:
        meter = CostMeter(env, self.agent, self.target)
        samples = draw_samples(meter.env, self.agent, task_id, seed, self.config, self.method)
        scores = [float(s) for s in self.target.score(samples)]
        best = max(range(len(samples)), key=lambda i: (scores[i], -i))
        meta = {"method": self.method, "target_scores": scores, "pick": best, **sample_stats(samples)}
        return PlanResult(samples[best], scores[best], samples, meter.cost(), meta=meta)
