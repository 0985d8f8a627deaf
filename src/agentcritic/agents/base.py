"""The acting-policy contract shared by baseline policies and LLM agents."""

from __future__ import annotations

import hashlib
from typing import Any, Protocol, runtime_checkable

from agentcritic.envs.base import TextEnv
from agentcritic.errors import AgentCriticError
from agentcritic.types import Trajectory


class AgentError(AgentCriticError, RuntimeError):
    """The agent could not produce an action (e.g. the expert has no action from this state)."""


@runtime_checkable
class Agent(Protocol):
    """``reset`` once per episode, then ``act`` once per step."""

    name: str

    def reset(self, env: TextEnv, task_id: str, seed: int) -> None: ...

    def act(self, history: Trajectory, info: dict[str, Any]) -> str: ...


def derive_seed(base: int, *parts: object) -> int:
    """A seed that depends only on its inputs (not on Python's per-process string hashing)."""
    text = "\x1f".join([str(base), *map(str, parts)])
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") >> 1
