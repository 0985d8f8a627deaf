"""Typed blocks that say which env and which policy a job uses, and build them.

Every stage that runs episodes names an env (its registered name and keyword arguments, the step
limit folded in) and an acting policy (its name and, for language models, mode, temperature,
few-shot and backend kwargs). Stage configs keep these as flat fields (``env``, ``env_kwargs``,
``max_steps``, ``policy``, ``mode`` …, declared once in :class:`agentcritic.config.PolicyFields`, so
config files and flags read as they always did); their ``env_spec()`` / ``policy_spec()`` turn them
into these blocks, which jobs carry to workers.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from agentcritic.worker_cache import cached


class EnvSpec(BaseModel):
    """A registered env and the keyword arguments it is made with."""

    model_config = ConfigDict(frozen=True)

    name: str = Field(description="registered env name (see `agentcritic envs`)")
    kwargs: dict[str, Any] = Field(default_factory=dict, description="keyword arguments for envs.make")

    @classmethod
    def of(cls, name: str, kwargs: dict[str, Any] | None = None, max_steps: int | None = None) -> EnvSpec:
        """The spec of ``name`` with ``kwargs``; a ``max_steps`` given overrides the env's step limit."""
        merged = dict(kwargs or {})
        if max_steps is not None:
            merged["max_steps"] = max_steps
        return cls(name=name, kwargs=merged)

    def make(self) -> Any:
        """A new env (the caller closes it)."""
        from agentcritic import envs

        return envs.make(self.name, **self.kwargs)

    def task_ids(self, split: str, limit: int | None = None) -> list[str]:
        """The first ``limit`` task ids of ``split`` (all when None), from an env made for the purpose."""
        env = self.make()
        try:
            return env.task_ids(split, limit=limit)
        finally:
            env.close()

    def cached(self) -> Any:
        """This process's env of this spec for this thread's lane, made once (see
        :mod:`agentcritic.worker_cache`; threads of one worker each step their own env, see
        :mod:`agentcritic.concurrency`)."""
        from agentcritic.concurrency import lane

        where = lane()
        spec = self.model_dump(mode="json")
        return cached("env", {**spec, "lane": list(where)} if where else spec, self.make)

    @classmethod
    def of_env(cls, env: Any) -> EnvSpec | None:
        """The spec an env was made from by :func:`agentcritic.envs.make` (None for one built otherwise)."""
        made = getattr(env, "made_from", None)
        return cls(name=made[0], kwargs=dict(made[1])) if made else None


class PolicySpec(BaseModel):
    """An acting policy: ``expert``, ``random``, or a language-model backend and how it acts."""

    model_config = ConfigDict(frozen=True)

    name: str = Field(description="expert | random | smollm2 | hf | openai | llamacpp")
    mode: Literal["choose", "generate"] = Field("choose", description="LLM: score listed actions or write them")
    temperature: float = Field(0.0, ge=0.0, description="LLM: sampling temperature (0 = greedy)")
    few_shot: bool = Field(True, description="LLM: show the expert's episode on a training task")
    constrain: bool = Field(False, description="LLM generate mode: decode under the env's action grammar, "
                            "where it offers one (constrained decoding)")
    llm: dict[str, Any] = Field(default_factory=dict, description="LLM: backend kwargs (base_url, model, path …)")

    @property
    def uses_llm(self) -> bool:
        return self.name not in ("expert", "random")

    @property
    def deterministic(self) -> bool:
        """A language model at temperature 0: its action is a function of the state (memoisable,
        see :mod:`agentcritic.agents.memo`)."""
        return self.uses_llm and self.temperature == 0

    def agent_kwargs(self) -> dict[str, Any]:
        """The keyword arguments :func:`agentcritic.agents.make_agent` takes besides the name and seed."""
        if not self.uses_llm:
            return {}
        out = {"mode": self.mode, "temperature": self.temperature, "few_shot": self.few_shot, "llm": dict(self.llm)}
        if self.constrain:  # only when on: what unconstrained runs recorded stays as it was
            out["constrain"] = True
        return out

    def make(self, seed: int = 0) -> Any:
        """An agent of this policy; a language model is loaded once per process."""
        from agentcritic.agents import make_agent

        return make_agent(self.name, seed=seed, **self.agent_kwargs())

    def make_memoised(self, seed: int = 0) -> Any:
        """:meth:`make`, with a deterministic policy's actions computed once per state in this process
        (one :class:`~agentcritic.agents.memo.ActionMemo` per policy; other policies as :meth:`make`)."""
        agent = self.make(seed)
        if not self.deterministic:
            return agent
        from agentcritic.agents.memo import ActionMemo, MemoAgent
        from agentcritic.worker_cache import cached

        return MemoAgent(agent, cached("action memo", self.model_dump(mode="json"), ActionMemo))
