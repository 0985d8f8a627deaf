"""Tests only: a small planner for the evaluation, pipeline and report tests (``eval_planners:make``).

It rolls the agent out ``n`` times, picks the best by the target (or by env reward without one)
and can sleep a little per task so a test can kill a run mid-way.
"""

from __future__ import annotations

import time
from typing import Any

from agentcritic.agents import rollout
from agentcritic.planning.base import Cost, PlanResult


class RolloutPlanner:
    name = "test-rollouts"

    def __init__(self, agent: Any, target: Any, n: int = 1, delay: float = 0.0) -> None:
        self.agent, self.target, self.n, self.delay = agent, target, n, delay

    def solve(self, env: Any, task_id: str, seed: int = 0) -> PlanResult:
        candidates = [rollout(env, self.agent, task_id, seed=seed + i) for i in range(self.n)]
        scores = self.target.score(candidates) if self.target is not None else [c.score for c in candidates]
        best = max(range(self.n), key=lambda i: (scores[i], -i))
        if self.delay:
            time.sleep(self.delay)
        cost = Cost(env_steps=sum(len(c.steps) for c in candidates), rm_calls=self.n if self.target else 0)
        return PlanResult(candidates[best], float(scores[best]) if self.target else None, candidates, cost,
                          meta={"target_scores": [float(s) for s in scores], "pick": best})


def make(agent: Any, target: Any, **params: Any) -> RolloutPlanner:
    return RolloutPlanner(agent, target, **params)
