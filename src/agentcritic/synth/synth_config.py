"""The config of a reward-data synthesis run (``agentcritic synthesize``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from agentcritic.config import CONCURRENCY_FIELD, EnvName, StageConfig

NEGATIVE_SOURCES = ("edit", "llm_negative", "cross_policy", "truncate")
GAME24_ERRORS = ("wrong_arithmetic", "missing_number", "invented_number", "broken_format")


def _one_of(name: str, valid: list[str], what: str, plural: str) -> str:
    """``name`` when it is one of ``valid``, else an error naming the ``what`` and the valid ones."""
    if name not in valid:
        raise ValueError(f"unknown {what} {name!r}; valid {plural} are {valid}")
    return name


class SynthConfig(StageConfig):
    """Explore → refine intents → negatives → filter, for one env, into one run folder."""

    env: EnvName = Field(description="registered env name: game24, shop, scienceworld, textworld …")
    env_kwargs: dict[str, Any] = Field(default_factory=dict, description="keyword arguments for envs.make")
    tasks: int = Field(50, ge=1, description="training tasks (random intents) drawn from the env's train split")
    trajectories_per_task: int = Field(4, ge=0, description="explorer trajectories per task")
    explorer: str = Field("smollm2", description="explorer policy: random | smollm2 | hf | openai | llamacpp | expert")
    explorer_llm: dict[str, Any] = Field(default_factory=dict, description="explorer backend kwargs (base_url, model, path …)")
    mode: Literal["choose", "generate"] = Field("choose", description="LLM explorer: score listed actions or write them")
    temperatures: list[float] = Field(
        default_factory=lambda: [1.0, 0.3],
        description="LLM explorer temperatures, cycled over a task's trajectories (different policies for cross_policy)",
    )
    eps: float = Field(0.2, ge=0.0, le=1.0, description="chance per step of a uniformly random admissible action")
    max_candidates: int | None = Field(40, ge=1, description="LLM explorer: at most this many listed actions scored a step")
    few_shot: bool = Field(True, description="LLM explorer: show the expert's episode on a training task in the prompt")
    guided_per_task: int = Field(
        0, ge=0, description="oracle-assisted: extra trajectories per task from the env's expert (solver, gold "
                             "path) with eps-random steps; 0, the published method, explores with `explorer` only"
    )
    guided_eps: float = Field(0.25, ge=0.0, le=1.0, description="random-step chance of the guided explorer")
    refiner: str = Field("smollm2", description="llm.load backend that writes and re-phrases intents")
    refiner_llm: dict[str, Any] = Field(default_factory=dict, description="refiner backend kwargs")
    rephrase: bool = Field(True, description="let the refiner re-phrase grounded template intents (facts checked)")
    llm_intents: bool = Field(
        True, description="where the env cannot ground the outcome, let the refiner write the intent"
    )
    hindsight: bool = Field(
        True, description="game24: a trajectory that missed 24 but left one whole number N is a positive for "
                          "'make N from a b c d' (replayed and checked by the env)"
    )
    llm_max_tokens: int = Field(64, ge=8, description="tokens per refiner answer (intents)")
    negative_max_tokens: int = Field(80, ge=8, description="tokens per llm_negative answer (a rewritten solution)")
    llm_temperature: float = Field(0.7, ge=0.0, description="refiner sampling temperature")
    max_llm_failure_rate: float = Field(0.05, ge=0.0, le=1.0, description="stop with an error when more of the LLM "
                                        "calls of explore, refine or negatives fail (a dead or hung server)")
    negatives: list[str] = Field(default_factory=lambda: list(NEGATIVE_SOURCES),
                                 description="negative sources: edit, llm_negative, cross_policy, truncate")
    llm_negative_llm: bool = Field(True, description="game24: ask the refiner for llm_negative (false: rule-made errors only)")
    edits_per_positive: int = Field(2, ge=0, description="edit:* negatives tried per positive")
    llm_negatives_per_positive: int = Field(2, ge=0, description="game24: llm_negative error types per positive (cycled)")
    cross_pairs_per_task: int = Field(6, ge=0, description="cross_policy pairs kept per task at most")
    max_steps: int = Field(60, ge=1, description="pairs with a longer trajectory are dropped")
    max_chars: int = Field(12000, ge=100, description="pairs whose rendering is longer are dropped")
    verify: bool = Field(True, description="re-execute grounded positives in the env and drop those that fail")
    seed: int = Field(0, description="base seed of task draws, exploration and negatives")
    workers: int = Field(1, ge=1, description="parallel worker processes (explore, refine, negatives)")
    concurrency: int = CONCURRENCY_FIELD
    executor: Literal["pool", "ray"] = Field("pool", description="local process pool or Ray")

    @field_validator("explorer")
    @classmethod
    def _known_explorer(cls, name: str) -> str:
        from agentcritic.agents.explorer import EXPLORER_POLICIES

        return _one_of(name, list(EXPLORER_POLICIES), "explorer", "explorers")

    @field_validator("refiner")
    @classmethod
    def _known_refiner(cls, name: str) -> str:
        from agentcritic.llm import BACKENDS

        return _one_of(name, sorted(BACKENDS), "refiner backend", "backends")

    @field_validator("negatives")
    @classmethod
    def _known_sources(cls, sources: list[str]) -> list[str]:
        unknown = [s for s in sources if s not in NEGATIVE_SOURCES]
        if unknown:
            raise ValueError(f"unknown negative source(s) {unknown}; valid sources are {list(NEGATIVE_SOURCES)}")
        return list(dict.fromkeys(sources))

    @field_validator("temperatures")
    @classmethod
    def _temperatures(cls, values: list[float]) -> list[float]:
        if not values or any(t < 0 for t in values):
            raise ValueError(f"temperatures must be a non-empty list of numbers >= 0, got {values}")
        return values

    @model_validator(mode="after")
    def _some_trajectories(self) -> SynthConfig:
        if self.trajectories_per_task + self.guided_per_task == 0:
            raise ValueError("trajectories_per_task and guided_per_task are both 0: nothing to explore")
        return self


@dataclass(frozen=True)
class ExplorePayload:
    """An exploration job's part: which of the task's trajectories, and the explorer that makes it."""

    sample: int
    split: str
    explorer: str
    options: dict[str, Any]


@dataclass(frozen=True)
class TrajectoryPayload:
    """A refine or negatives job's part: the trajectory to work on and the LLM backend that helps
    (``backend`` empty: no LLM; ``options`` holds its generation settings and ``llm`` kwargs)."""

    trajectory: dict[str, Any]
    backend: str
    options: dict[str, Any]

    def lm(self) -> Any:
        from agentcritic.agents import load_lm

        return load_lm(self.backend, **self.options.get("llm", {})) if self.backend else None

    def settings(self) -> dict[str, Any]:
        return {k: v for k, v in self.options.items() if k != "llm"}
