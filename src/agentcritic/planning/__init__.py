"""Planners: an agent (the policy) plus a scoring target, behind one ``solve`` (armap.md §4).

```python
from agentcritic.planning import make_planner
from agentcritic.rm.custom import make_target

target = make_target("rm", rm=rm)                                # or make_target("env"), terms=...
planner = make_planner("mcts", agent, target, rollouts=100)      # greedy, sampling, best_of_n, reflexion, mcts
result = planner.solve(env, "900", seed=0)                       # PlanResult(trajectory, rm_score, candidates, cost)
```

:data:`METHODS` maps a method to its label in the paper's table. Each method's parameters are a
pydantic model (:data:`PARAMS`) with working defaults; an unknown method or parameter raises
``ValueError`` naming the valid ones.
"""

from __future__ import annotations

from typing import Any

from agentcritic.planning.accounting import Cost
from agentcritic.planning.base import BasePlanner, Planner, PlanResult
from agentcritic.planning.best_of_n import BestOfN
from agentcritic.planning.greedy import Greedy
from agentcritic.planning.mcts import MCTS
from agentcritic.planning.params import describe
from agentcritic.planning.reflexion import Reflexion, calibrate_on, calibrate_threshold
from agentcritic.planning.sampling import Sampling

PLANNERS: dict[str, type[BasePlanner]] = {p.method: p for p in (Greedy, Sampling, BestOfN, Reflexion, MCTS)}

METHODS: dict[str, str] = {method: p.name for method, p in PLANNERS.items()}

PARAMS: dict[str, type] = {method: p.config_class for method, p in PLANNERS.items()}

#: methods that rank or judge with a target (the baselines need none)
NEEDS_TARGET = tuple(method for method, p in PLANNERS.items() if p.target_use is not None)


def make_planner(method: str, agent: Any, target: Any = None, **params: Any) -> Planner:
    """Build the planner ``method`` over ``agent`` and ``target`` with its ``params``."""
    if method not in PLANNERS:
        raise ValueError(f"unknown planning method {method!r}; valid methods are {list(PLANNERS)}")
    return PLANNERS[method](agent, target, **params)


def method_params(method: str) -> dict[str, str]:
    """The parameters of ``method``: name → default and description."""
    if method not in PARAMS:
        raise ValueError(f"unknown planning method {method!r}; valid methods are {list(PARAMS)}")
    return describe(PARAMS[method])


__all__ = [
    "METHODS", "NEEDS_TARGET", "PARAMS", "PLANNERS", "BasePlanner", "BestOfN", "Cost", "Greedy", "MCTS", "PlanResult",
    "Planner", "Reflexion", "Sampling", "calibrate_on", "calibrate_threshold", "make_planner", "method_params",
]
