"""The Gate: a helper's "ask?" under a hard per-episode budget (selfreg.md Phase 3).

``ask = helper(s) and used + cost ≤ C``: the cap is hard, whatever the helper says. The budget is
in cost units: each request spends the intervention's ``cost`` (1 by default), a k-step takeover
being one request — the units and the request the DP (:mod:`agentcritic.helper.dp`) plans with. Every decider — the
trained helper model, the baselines in :mod:`agentcritic.helper.baselines`, the DP policy — has the
same interface, ``ask(state, step, budget_left) -> bool`` (plus an optional per-episode ``reset``),
so the evaluation wraps each in a Gate the same way.
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

    def __init__(self, helper: Decider, budget: float, cost: float = 1.0) -> None:
        if not callable(getattr(helper, "ask", None)):
            raise TypeError(f"Gate: the helper must have ask(state, step, budget_left), got {type(helper).__name__}")
        if not (budget >= 0):
            raise ValueError(f"Gate: budget={budget} must be >= 0 (math.inf for no cap)")
        if not math.isinf(budget) and budget != int(budget):
            raise ValueError(f"Gate: budget={budget} must be a whole number of interventions or math.inf")
        if not (cost > 0 and math.isfinite(cost)):
            raise ValueError(f"Gate: cost={cost} must be a finite number > 0 (the budget units one request spends)")
        self.helper = helper
        self.budget = budget
        self.cost = cost
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

    def __repr__(self) -> str:
        return f"Gate({type(self.helper).__name__}, budget={self.budget}, cost={self.cost}, used={self.used})"
