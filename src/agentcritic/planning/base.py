"""What every planner shares: its result, its cost, and the protocol it follows.

``planner.solve(env, task_id, seed) -> PlanResult``. A planner combines an agent (the policy) with a
scoring target (a reward model or a custom target, see :mod:`agentcritic.rm.custom`); the result
says which trajectory it picked, what the target thought of it, which other trajectories it
considered, and what the search cost. ``trajectory.score`` is always the env's own reward.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from agentcritic.envs.base import TextEnv
from agentcritic.types import Trajectory


@dataclass
class Cost:
    """What one ``solve`` spent. Added up over tasks for the evaluation table."""

    llm_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    rm_calls: int = 0  # trajectories the target scored (a cache hit is not a call)
    env_steps: int = 0  # env.step calls, replays by env.restore included
    seconds: float = 0.0

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: Cost) -> Cost:
        return Cost(**{f.name: getattr(self, f.name) + getattr(other, f.name) for f in dataclasses.fields(self)})

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Cost:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"Cost: unknown field(s) {unknown}; valid fields are {sorted(names)}")
        return cls(**data)


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
