"""What every planner needs besides its search: cost metering, seeds, and agent settings.

- :class:`Cost` is what one ``solve`` spent; :class:`CountingEnv` wraps an env and counts every
  ``step`` (replays by ``restore`` included).
- :class:`CostMeter` turns the deltas of ``agent.lm.usage``, ``target.calls`` and the env's step
  count over one ``solve`` into a :class:`Cost`.
- :func:`agent_settings` sets an agent's ``temperature`` / ``reflections`` for one search and puts
  the old values back afterwards, so a planner never leaves the caller's agent changed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from agentcritic.agents.base import derive_seed
from agentcritic.envs.base import TextEnv


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


class CountingEnv:
    """A transparent proxy of ``env`` that counts env steps, those replayed by ``restore`` too."""

    def __init__(self, env: TextEnv) -> None:
        self.__dict__["_env"] = env
        self.__dict__["steps"] = 0

    @property
    def inner(self) -> TextEnv:
        return self.__dict__["_env"]

    def step(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        self.__dict__["steps"] += 1
        return self.inner.step(action)

    def restore(self, actions: Any, **kwargs: Any) -> tuple[str, dict[str, Any]]:
        out = self.inner.restore(actions, **kwargs)
        # The inner env replays through its own step(); what it replayed is its action list now.
        self.__dict__["steps"] += len(self.inner.actions)
        return out

    def __getattr__(self, name: str) -> Any:
        return getattr(self.__dict__["_env"], name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self.inner, name, value)


def unwrap(env: Any) -> TextEnv:
    return env.inner if isinstance(env, CountingEnv) else env


def agent_lm(agent: Any) -> Any:
    """The agent's language model where it has one with usage accounting, else None."""
    lm = getattr(agent, "lm", None)
    return lm if lm is not None and hasattr(lm, "usage") else None


class CostMeter:
    """Measures one ``solve``: create it first, route env calls through ``meter.env``, then
    :meth:`cost`."""

    def __init__(self, env: TextEnv, agent: Any, target: Any = None) -> None:
        self.env = env if isinstance(env, CountingEnv) else CountingEnv(env)
        self._steps0 = self.env.steps
        self._lm = agent_lm(agent)
        self._usage0 = self._lm.usage if self._lm is not None else None
        self._target = target
        self._calls0 = target.calls if target is not None else 0
        self._t0 = time.perf_counter()

    def cost(self) -> Cost:
        cost = Cost(env_steps=self.env.steps - self._steps0, seconds=time.perf_counter() - self._t0)
        if self._lm is not None and self._usage0 is not None:
            used = self._lm.usage - self._usage0
            cost.llm_calls, cost.prompt_tokens, cost.completion_tokens = (
                used.calls, used.prompt_tokens, used.completion_tokens,
            )
        if self._target is not None:
            cost.rm_calls = self._target.calls - self._calls0
        return cost


def sample_seed(seed: int, index: int) -> int:
    """The seed of sample ``index`` of a solve with ``seed`` (shared by Sampling and Best-of-N,
    so their samples are the same trajectories)."""
    return derive_seed(seed, "sample", index) % (2**31)


_UNSET = object()


@contextlib.contextmanager
def agent_settings(agent: Any, temperature: Any = _UNSET, reflections: Any = _UNSET) -> Iterator[Any]:
    """Set ``agent.temperature`` / ``agent.reflections`` (where the agent has them) inside the block."""
    saved: dict[str, Any] = {}
    for name, value in (("temperature", temperature), ("reflections", reflections)):
        if value is not _UNSET and value is not None and hasattr(agent, name):
            saved[name] = getattr(agent, name)
            setattr(agent, name, list(value) if name == "reflections" else float(value))
    try:
        yield agent
    finally:
        for name, value in saved.items():
            setattr(agent, name, value)
