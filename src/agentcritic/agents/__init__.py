"""Acting policies. ``make_agent(policy, ...)`` builds one by name.

Policies: ``expert`` and ``random`` need no model; ``smollm2``, ``hf``, ``openai`` and ``llamacpp``
are a :class:`ReActAgent` over that ``agentcritic.llm`` backend.
"""

from __future__ import annotations

from typing import Any

from agentcritic.agents.base import Agent, AgentError, derive_seed
from agentcritic.agents.baselines import ExpertAgent, RandomAgent
from agentcritic.agents.react import ReActAgent
from agentcritic.agents.rollout import rollout

BASELINE_POLICIES = ("expert", "random")
LLM_POLICIES = ("smollm2", "hf", "openai", "llamacpp")
POLICIES = BASELINE_POLICIES + LLM_POLICIES

def load_lm(backend: str, **llm_kwargs: Any) -> Any:
    """The language model of ``backend`` and its kwargs, loaded once per process (workers run many episodes)."""
    from agentcritic import llm
    from agentcritic.worker_cache import cached

    return cached("lm", [backend, llm_kwargs], lambda: llm.load(backend, **llm_kwargs))


def make_agent(
    policy: str,
    seed: int = 0,
    mode: str = "choose",
    temperature: float = 0.0,
    few_shot: bool = True,
    llm: dict[str, Any] | None = None,
    constrain: bool = False,
) -> Agent:
    """Build a policy by name (see :data:`POLICIES`)."""
    if policy == "expert":
        return ExpertAgent()
    if policy == "random":
        return RandomAgent(seed=seed)
    if policy in LLM_POLICIES:
        lm = load_lm(policy, **(llm or {}))
        return ReActAgent(lm, mode=mode, temperature=temperature, few_shot=few_shot, seed=seed,
                          name=f"{policy}-{mode}-t{temperature:g}" + ("-constrained" if constrain else ""),
                          constrain=constrain)
    raise ValueError(f"unknown policy {policy!r}; valid policies are {list(POLICIES)}")


__all__ = [
    "Agent", "AgentError", "ExpertAgent", "RandomAgent", "ReActAgent", "derive_seed", "make_agent",
    "rollout", "POLICIES", "LLM_POLICIES",
]
