"""Acting policies. ``make_agent(name, **kwargs)`` builds one by name."""

from __future__ import annotations

from typing import Any

from agentcritic.agents.base import Agent, AgentError, derive_seed
from agentcritic.agents.baselines import ExpertAgent, RandomAgent
from agentcritic.agents.rollout import rollout

POLICIES = ("expert", "random")


def make_agent(policy: str, seed: int = 0, **kwargs: Any) -> Agent:
    """Build a policy by name: ``expert`` or ``random``."""
    if policy == "expert":
        return ExpertAgent()
    if policy == "random":
        return RandomAgent(seed=seed)
    raise ValueError(f"unknown policy {policy!r}; valid policies are {list(POLICIES)}")


__all__ = ["Agent", "AgentError", "ExpertAgent", "RandomAgent", "derive_seed", "make_agent", "rollout", "POLICIES"]
