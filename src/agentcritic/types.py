"""Core records that flow between the parts: steps, trajectories, preferences, transitions.

Every record is a plain dataclass that round-trips through JSON (``to_json`` / ``from_json``) and
through the JSONL shards of :mod:`agentcritic.store`. No heavy imports here.
"""

from __future__ import annotations

import json
from dataclasses import MISSING, asdict, dataclass, field, fields
from typing import Any, ClassVar, TypeVar

from agentcritic.errors import AgentCriticError

R = TypeVar("R", bound="Record")


class RecordError(AgentCriticError, ValueError):
    """A JSON object that does not describe the record it was read as."""


class Record:
    """Mixin: dict/JSON conversion with a clear error on missing or unknown fields."""

    _nested: ClassVar[dict[str, type]] = {}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)  # type: ignore[call-overload]

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_dict(cls: type[R], data: dict[str, Any]) -> R:
        if not isinstance(data, dict):
            raise RecordError(f"{cls.__name__}: expected a JSON object, got {type(data).__name__}")
        names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(data) - names)
        if unknown:
            raise RecordError(f"{cls.__name__}: unknown field(s) {unknown}; valid fields are {sorted(names)}")
        required = {
            f.name for f in fields(cls)  # type: ignore[arg-type]
            if f.default is MISSING and f.default_factory is MISSING
        }
        missing = sorted(required - set(data))
        if missing:
            raise RecordError(f"{cls.__name__}: missing field(s) {missing}")
        kwargs = dict(data)
        for name, kind in cls._nested.items():
            value = kwargs.get(name)
            if isinstance(value, list):
                kwargs[name] = [kind.from_dict(v) if isinstance(v, dict) else v for v in value]  # type: ignore[attr-defined]
            elif isinstance(value, dict):
                kwargs[name] = kind.from_dict(value)  # type: ignore[attr-defined]
        return cls(**kwargs)

    @classmethod
    def from_json(cls: type[R], text: str) -> R:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise RecordError(f"{cls.__name__}: invalid JSON ({exc})") from exc
        return cls.from_dict(data)


@dataclass
class Step(Record):
    """One action and what the environment answered."""

    action: str
    observation: str
    reward: float = 0.0
    info: dict[str, Any] = field(default_factory=dict)
    actor: str = "agent"  # "agent" or the name of the intervention that produced the action


@dataclass
class Trajectory(Record):
    """One episode. ``score`` is the environment's own reward, never a reward model's."""

    env: str
    task_id: str
    instruction: str
    steps: list[Step] = field(default_factory=list)
    success: bool | None = None
    score: float | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    _nested: ClassVar[dict[str, type]] = {"steps": Step}

    @property
    def actions(self) -> list[str]:
        return [s.action for s in self.steps]

    @property
    def first_observation(self) -> str:
        return str(self.meta.get("first_observation", ""))


@dataclass
class Preference(Record):
    """A ranked pair for one intent; ``source`` says how the pair was made (``edit:option`` …)."""

    intent: str
    chosen: Trajectory
    rejected: Trajectory
    source: str

    _nested: ClassVar[dict[str, type]] = {"chosen": Trajectory, "rejected": Trajectory}


@dataclass
class Transition(Record):
    """One logged decision of a self-regulation rollout."""

    task_id: str
    state_key: str
    state_text: str
    helped: bool
    actor: str
    next_state_key: str
    done: bool
    success: bool | None = None


RECORD_TYPES: dict[str, type[Record]] = {
    "step": Step,
    "trajectory": Trajectory,
    "preference": Preference,
    "transition": Transition,
}
