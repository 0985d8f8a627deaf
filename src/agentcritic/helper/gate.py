"""The Gate: a helper's "ask?" under a hard per-episode budget (selfreg.md Phase 3).

``ask = helper(s) and used + cost ≤ C``: the cap is hard, whatever the helper says. The budget is
in cost units: each request spends the intervention's ``cost`` (1 by default), a k-step takeover
being one request — the units and the request the DP (:mod:`agentcritic.helper.dp`) plans with. Every decider — the
trained helper model, the baselines in :mod:`agentcritic.helper.baselines`, the DP policy — has the
same interface, ``ask(state, step, budget_left) -> bool`` (plus an optional per-episode ``reset``),
so the evaluation wraps each in a Gate the same way.

Several interventions: ``Gate(decider, budget, costs={actor: cost})`` and :meth:`Gate.choose`. A
decider with ``choose(state, step, budget_left) -> actor | None`` picks whom to ask (the DP policy,
the helper); a yes/no decider under a one-actor cost table asks that actor. The Gate spends the
chosen actor's cost and refuses a request that does not fit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable


@dataclass
class DecisionState:
    """What a decider sees of the current state.

    ``state_key`` is the collector's key of the state (the action sequence so far) and
    ``last_actor`` the actor of the previous action ("none" at the start); a
    :class:`~agentcritic.types.Transition` carries the first three fields too and can be passed as is.
    """

    task_id: str
    state_key: str
    state_text: str
    last_actor: str = "none"


@runtime_checkable
class Decider(Protocol):
    """Anything that answers "ask for help now?" for a state, its step and the budget left."""

    def ask(self, state: Any, step: int, budget_left: float) -> bool: ...


class Gate:
    """Wrap a decider with a hard cap of ``budget`` cost units per episode, ``cost`` per request.

    >>> gate = Gate(helper, budget=2)
    >>> gate.reset()                      # at the start of every episode
    >>> if gate.ask(state, step): ...     # call the intervention
    """

    def __init__(self, helper: Decider, budget: float, cost: float = 1.0,
                 costs: dict[str, float] | None = None) -> None:
        if not callable(getattr(helper, "ask", None)) and not callable(getattr(helper, "choose", None)):
            raise TypeError(f"Gate: the helper must have ask(state, step, budget_left) (or choose: whom to ask), "
                            f"got {type(helper).__name__}")
        if not (budget >= 0):
            raise ValueError(f"Gate: budget={budget} must be >= 0 (math.inf for no cap)")
        if not math.isinf(budget) and budget != int(budget):
            raise ValueError(f"Gate: budget={budget} must be a whole number of interventions or math.inf")
        if not (cost > 0 and math.isfinite(cost)):
            raise ValueError(f"Gate: cost={cost} must be a finite number > 0 (the budget units one request spends)")
        costs = {str(a): float(c) for a, c in (costs or {}).items()}
        bad = {a: c for a, c in costs.items() if not (c > 0 and math.isfinite(c))}
        if bad:
            raise ValueError(f"Gate: costs {bad} must be finite numbers > 0 (the budget units a request spends)")
        self.helper = helper
        self.budget = budget
        self.cost = cost
        #: actor → cost of a request, for :meth:`choose` (whom a request may go to)
        self.costs = costs
        self.used: float = 0  # cost units spent this episode
        self.requests = 0
        self.asked_helper = 0  # decisions the helper was consulted on this episode

    @property
    def budget_left(self) -> float:
        return self.budget - self.used

    def reset(self) -> None:
        """Start a new episode: nothing used; the helper resets its own per-episode state too."""
        self.used = 0
        self.requests = 0
        self.asked_helper = 0
        reset = getattr(self.helper, "reset", None)
        if callable(reset):
            reset()

    def ask(self, state: Any, step: int) -> bool:
        """True when the helper asks and a request's cost is left; spends it."""
        if self.budget_left < self.cost:
            return False
        self.asked_helper += 1
        if bool(self.helper.ask(state, step, self.budget_left)):
            self.used += self.cost
            self.requests += 1
            return True
        return False

    def choose(self, state: Any, step: int) -> str | None:
        """Whom to ask (an actor of ``costs``) when the decider asks someone whose cost fits; spends it."""
        if not self.costs:
            raise ValueError("Gate.choose needs the cost table: Gate(decider, budget, costs={actor: cost})")
        if self.budget_left < min(self.costs.values()):
            return None
        self.asked_helper += 1
        choose = getattr(self.helper, "choose", None)
        if len(self.costs) == 1 and callable(getattr(self.helper, "ask", None)):
            # one actor offered: "ask?" is the whole question, whatever names the decider knows it by
            actor = next(iter(self.costs)) if self.helper.ask(state, step, self.budget_left) else None
        elif callable(choose):
            actor = choose(state, step, self.budget_left)
        else:
            raise TypeError(f"Gate: {type(self.helper).__name__} answers yes or no only; with several "
                            f"interventions {list(self.costs)} it needs choose(state, step, budget_left)")
        if actor is None:
            return None
        if actor not in self.costs:
            raise ValueError(f"Gate: the decider chose {actor!r}; the interventions offered are {list(self.costs)}")
        if self.costs[actor] > self.budget_left:
            return None  # the cap is hard: a request that does not fit is not made
        self.used += self.costs[actor]
        self.requests += 1
        return actor

    def __repr__(self) -> str:
        return f"Gate({type(self.helper).__name__}, budget={self.budget}, cost={self.cost}, used={self.used})"
