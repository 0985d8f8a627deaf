"""What every planner shares: its result, the protocol it follows, and the base class that keeps
its agent, target and parameters and measures what each ``solve`` costs.

``planner.solve(env, task_id, seed) -> PlanResult``. A planner combines an agent (the policy) with a
scoring target (a reward model or a custom target, see :mod:`agentcritic.rm.custom`); the result
says which trajectory it picked, what the target thought of it, which other trajectories it
considered, and what the search cost. ``trajectory.score`` is always the env's own reward.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, runtime_checkable

from agentcritic.config import StageConfig
from agentcritic.envs.base import TextEnv
from agentcritic.planning.accounting import Cost, CostMeter
from agentcritic.planning.params import parse_params
from agentcritic.types import Trajectory


@dataclass
class PlanResult:
    """The planner's pick (``trajectory``), its target score, the alternatives, and the cost."""

    trajectory: Trajectory
    rm_score: float | None
    candidates: list[Trajectory] = field(default_factory=list)
    cost: Cost = field(default_factory=Cost)
    meta: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "trajectory": self.trajectory.to_dict(),
            "rm_score": self.rm_score,
            "candidates": [c.to_dict() for c in self.candidates],
            "cost": self.cost.to_dict(),
            "meta": self.meta,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PlanResult:
        return cls(
            trajectory=Trajectory.from_dict(data["trajectory"]),
            rm_score=data.get("rm_score"),
            candidates=[Trajectory.from_dict(c) for c in data.get("candidates", [])],
            cost=Cost.from_dict(data.get("cost", {})),
            meta=dict(data.get("meta", {})),
        )


@runtime_checkable
class Planner(Protocol):
    """``name`` labels the method in tables (``"ARMAP-B"`` …)."""

    name: str

    def solve(self, env: TextEnv, task_id: str, seed: int = 0) -> PlanResult: ...


class BasePlanner:
    """What every planner does around its search: keep the agent and the target, parse the
    parameters into the method's ``config_class`` (an unknown or invalid one raises ``ValueError``),
    and measure what each ``solve`` costs. A planner gives :meth:`_plan`, the search itself."""

    name: ClassVar[str]  # the label in tables ("ARMAP-B" …)
    method: ClassVar[str]  # the key of make_planner ("best_of_n" …)
    config_class: ClassVar[type[StageConfig]]
    #: what the target is for, where the method cannot work without one ("to rank its samples");
    #: None where a target is optional
    target_use: ClassVar[str | None] = None

    def __init__(self, agent: Any, target: Any = None, **params: Any) -> None:
        if target is None and self.target_use is not None:
            raise ValueError(f"{self.method} needs a target (a reward model or a custom target) {self.target_use}")
        self.agent = agent
        self.target = target
        self.config = parse_params(self.config_class, self.method, params)

    def solve(self, env: TextEnv, task_id: str, seed: int = 0) -> PlanResult:
        """The planner's pick for ``task_id``; its ``cost`` is what this call spent."""
        meter = CostMeter(env, self.agent, self.target)
        result = self._plan(meter.env, task_id, seed)
        result.cost = meter.cost()
        return result

    def _plan(self, env: Any, task_id: str, seed: int) -> PlanResult:
        """The search on ``env`` (a proxy that counts its steps); :meth:`solve` fills in the cost."""
        raise NotImplementedError

    def target_score(self, trajectory: Trajectory) -> float | None:
        """The target's score of ``trajectory``; None without a target."""
        return self.target.score([trajectory])[0] if self.target is not None else None
