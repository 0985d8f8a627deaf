"""Scoring targets for the planners: a reward model, the env's own reward, or either plus terms.

A *target* scores finished trajectories; higher is better. Planners (Best-of-N, Reflexion, MCTS)
only ever see this interface, so a reward model, the env's ground truth (the oracle that measures
how far the reward model is from perfect) and a customised objective are interchangeable::

    target = make_target("rm", rm=RewardModel.from_pretrained("runs/x/rm"))
    target = make_target("env")                                    # the env's own reward
    target = make_target("rm", rm=rm, terms={"length": 0.05})      # R - 0.05 * #actions
    target = CustomTarget(base, {"price": 0.01, "detours": (0.1, count_detours)})

``score = base - sum(weight * term(trajectory))``. Built-in terms: ``length`` (number of actions)
and ``price`` (the price paid for the item bought in the shop; 0 where nothing was bought). Any
callable ``Trajectory -> float`` can be a term too.

``calls`` counts the trajectories a target actually scored (cache hits excluded): the planners
report it as the RM cost of a search.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from agentcritic.types import Trajectory

TermFn = Callable[[Trajectory], float]


@runtime_checkable
class Target(Protocol):
    """Scores trajectories (higher = better); ``calls`` = trajectories scored so far."""

    calls: int

    def score(self, trajectories: Sequence[Trajectory]) -> list[float]: ...


# --------------------------------------------------------------------------- terms
def length_term(trajectory: Trajectory) -> float:
    """The number of actions taken."""
    return float(len(trajectory.steps))


def price_term(trajectory: Trajectory) -> float:
    """The price of the item bought (the shop's ``price`` after ``Buy Now``); 0 where none was."""
    for step in reversed(trajectory.steps):
        info = step.info or {}
        if "purchased_asin" in info or ("price" in info and info.get("page") == "done"):
            return _number(info.get("price", 0.0), "price", trajectory)
    if "price" in trajectory.meta:
        return _number(trajectory.meta["price"], "price", trajectory)
    return 0.0


def _number(value: Any, name: str, trajectory: Trajectory) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise ValueError(
            f"term {name!r}: trajectory {trajectory.env}/{trajectory.task_id} has a non-numeric {name} {value!r}"
        ) from None
    return out


BUILTIN_TERMS: dict[str, TermFn] = {"length": length_term, "price": price_term}


# --------------------------------------------------------------------------- targets
def _key(trajectory: Trajectory) -> tuple[Any, ...]:
    return (trajectory.env, trajectory.task_id, trajectory.instruction, tuple(trajectory.actions))


class RewardTarget:
    """A :class:`~agentcritic.rm.RewardModel` scoring (trajectory.instruction, trajectory).

    The model reads :func:`agentcritic.rendering.render` of each pair, as at training time (no env
    is needed: the trajectory's env name picks how its observations are shown). Scores are cached
    per (instruction, actions).
    """

    def __init__(self, rm: Any, batch_size: int = 32) -> None:
        if not hasattr(rm, "score"):
            raise ValueError(f"RewardTarget needs a reward model with score(pairs); got {type(rm).__name__}")
        self.rm = rm
        self.batch_size = batch_size
        self.calls = 0
        self._cache: dict[tuple[Any, ...], float] = {}

    def pairs(self, trajectories: Sequence[Trajectory]) -> list[tuple[str, Trajectory]]:
        """The (intent, trajectory) pairs handed to the reward model."""
        return [(t.instruction, t) for t in trajectories]

    def score(self, trajectories: Sequence[Trajectory]) -> list[float]:
        todo = {_key(t): t for t in trajectories if _key(t) not in self._cache}
        if todo:
            values = self.rm.score(self.pairs(list(todo.values())), batch_size=self.batch_size)
            for key, value in zip(todo, values):
                self._cache[key] = float(value)
            self.calls += len(todo)
        return [self._cache[_key(t)] for t in trajectories]


class EnvRewardTarget:
    """The env's own reward (``trajectory.score``): the oracle a reward model is measured against.

    ``success_threshold`` (1.0, the reward of a success in every built-in env) lets Reflexion
    accept an attempt without a calibrated threshold.
    """

    success_threshold: float = 1.0

    def __init__(self) -> None:
        self.calls = 0

    def score(self, trajectories: Sequence[Trajectory]) -> list[float]:
        out = []
        for t in trajectories:
            if t.score is None:
                raise ValueError(
                    f"EnvRewardTarget: trajectory {t.env}/{t.task_id} has no env score (score=None); "
                    "only trajectories rolled out in an env can be scored by the env's reward"
                )
            out.append(float(t.score))
        self.calls += len(out)
        return out


class CustomTarget:
    """``base`` minus weighted terms: ``score = base - sum(w * term(trajectory))``.

    ``terms`` maps a term name to its weight (a built-in term: ``length``, ``price``; or a name in
    ``functions``), or to a ``(weight, callable)`` pair. A negative weight rewards the term.
    """

    def __init__(
        self,
        base: Target,
        terms: Mapping[str, float | tuple[float, TermFn]] | None = None,
        functions: Mapping[str, TermFn] | None = None,
    ) -> None:
        self.base = base
        self.terms: dict[str, tuple[float, TermFn]] = {}
        functions = dict(functions or {})
        for name, spec in (terms or {}).items():
            if isinstance(spec, tuple):
                if len(spec) != 2 or not callable(spec[1]):
                    raise ValueError(f"term {name!r}: expected a weight or (weight, callable), got {spec!r}")
                weight, fn = spec
            else:
                weight = spec
                fn = functions.get(name) or BUILTIN_TERMS.get(name)  # type: ignore[assignment]
                if fn is None:
                    valid = sorted(set(BUILTIN_TERMS) | set(functions))
                    raise ValueError(
                        f"unknown term {name!r}; valid terms are {valid} (or pass (weight, callable))"
                    )
            if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not math.isfinite(weight):
                raise ValueError(f"term {name!r}: the weight must be a finite number, got {weight!r}")
            self.terms[name] = (float(weight), fn)

    @property
    def calls(self) -> int:  # type: ignore[override]
        return self.base.calls

    def parts(self, trajectory: Trajectory) -> dict[str, float]:
        """Each term's (unweighted) value for ``trajectory``."""
        return {name: float(fn(trajectory)) for name, (_, fn) in self.terms.items()}

    def score(self, trajectories: Sequence[Trajectory]) -> list[float]:
        base = self.base.score(trajectories)
        out = []
        for value, t in zip(base, trajectories):
            penalty = sum(w * v for (w, _), v in zip(self.terms.values(), self.parts(t).values()))
            out.append(float(value) - penalty)
        return out


TARGET_KINDS = ("rm", "env")


def make_target(
    kind: str = "rm",
    rm: Any = None,
    terms: Mapping[str, float | tuple[float, TermFn]] | None = None,
) -> Target:
    """Build a target: ``"rm"`` (a RewardModel, or the folder of a saved one) or ``"env"`` (the
    env's reward), wrapped in a :class:`CustomTarget` when ``terms`` are given."""
    if kind == "rm":
        if rm is None:
            raise ValueError("make_target('rm') needs rm= (a RewardModel or the folder of a saved one)")
        if isinstance(rm, (str, os.PathLike)):
            from agentcritic.rm.reward_model import RewardModel

            rm = RewardModel.from_pretrained(rm)
        base: Target = RewardTarget(rm)
    elif kind == "env":
        base = EnvRewardTarget()
    else:
        raise ValueError(f"unknown target kind {kind!r}; valid kinds are {list(TARGET_KINDS)}")
    return CustomTarget(base, terms) if terms else base
