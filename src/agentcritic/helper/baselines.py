"""Baseline deciders for "when to ask" (selfreg.md Evaluation), all with the Gate's interface
``ask(state, step, budget_left) -> bool``:

- :class:`NeverAsk`, :class:`AlwaysAsk`;
- :class:`RandomAsk` — ask with a fixed probability per step, matched to a target usage;
- :class:`PRMThreshold` — the paper's self-regulation baseline: ask when ``PRM(s, 0) < τ``, τ chosen
  on the training table so that the mean usage (no cap) is ≤ C;
- :class:`PRMGainThreshold` — ask when ``PRM(s,1) − PRM(s,0) > τ``, τ chosen the same way;
- :class:`DPPolicy` — the DP's own policy (exact budgeted, or the Lagrangian mix) looked up in the
  table; defined on logged (training) states only.

τ is fitted with :func:`agentcritic.helper.dp.uncapped_usage` on the table: the expected number of
interventions per episode if the rule ran on the logged MDP. Usage is not always monotone in τ
(asking early changes which states follow); the fit bisects on the sorted candidate thresholds and
returns a τ whose usage is ≤ C.
"""

from __future__ import annotations

import math
import random
from typing import Any

import numpy as np

from agentcritic.helper.dp import BudgetSolution, LagrangianSolution, LambdaSearch, uncapped_usage
from agentcritic.helper.tabular import NO_ACTOR, PRMScorer, TabularModel, _scorer


class NeverAsk:
    """Never intervene (the base policy alone)."""

    name = "never"

    def ask(self, state: Any, step: int, budget_left: float) -> bool:
        return False


class AlwaysAsk:
    """Intervene at every step while budget is left."""

    name = "always"

    def ask(self, state: Any, step: int, budget_left: float) -> bool:
        return budget_left > 0


class RandomAsk:
    """Ask with probability ``rate`` at each step (seeded; the stream continues across episodes)."""

    name = "random"

    def __init__(self, rate: float, seed: int = 0) -> None:
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"RandomAsk: rate={rate} must lie in [0, 1]")
        self.rate = float(rate)
        self.rng = random.Random(seed)

    def ask(self, state: Any, step: int, budget_left: float) -> bool:
        return budget_left > 0 and self.rng.random() < self.rate

    @classmethod
    def matched(
        cls, model: TabularModel, usage: float, seed: int = 0, tol: float = 1e-9, costs: dict[str, float] | None = None,
        actor: str | None = None,
    ) -> RandomAsk:
        """The rate whose expected cost per episode on the table (no cap) equals ``usage`` (unit costs:
        interventions per episode) when asking ``actor`` (needed when the table has several)."""
        ones = np.ones(model.n_states)
        if usage >= uncapped_usage(model, ones, costs, actor):
            return cls(1.0, seed)
        lo, hi = 0.0, 1.0
        while hi - lo > tol:
            mid = 0.5 * (lo + hi)
            if uncapped_usage(model, mid * ones, costs, actor) <= usage:
                lo = mid
            else:
                hi = mid
        return cls(lo, seed)

    @classmethod
    def from_usage(cls, usage: float, mean_steps: float, seed: int = 0) -> RandomAsk:
        """The rate that spends ``usage`` interventions over episodes of ``mean_steps`` steps."""
        if mean_steps <= 0:
            raise ValueError(f"RandomAsk.from_usage: mean_steps={mean_steps} must be > 0")
        return cls(min(1.0, max(0.0, usage / mean_steps)), seed)


class _PRMRule:
    """Shared parts of the PRM rules: a cached scorer over state texts."""

    def __init__(self, prm: Any, tau: float) -> None:
        self.scorer: PRMScorer | None = _scorer(prm)
        if self.scorer is None:
            raise ValueError(f"{type(self).__name__}: needs a PRM (a ProcessRewardModel or a callable)")
        self.tau = float(tau)
        self.fitted_usage: float | None = None  # the table's mean usage at tau (set by fit)
        self._cache: dict[tuple[str, bool], float] = {}

    def prm(self, text: str, helped: bool) -> float:
        key = (text, helped)
        if key not in self._cache:
            self._cache[key] = float(np.asarray(self.scorer([(text, helped)]), dtype=np.float64).reshape(-1)[0])
        return self._cache[key]


def _fit_threshold(
    model: TabularModel, score: np.ndarray, budget: float, asks_below: bool, costs: dict[str, float] | None = None,
    actor: str | None = None,
) -> tuple[float, float]:
    """τ over the candidate scores (midpoints) with table usage ≤ budget; returns (τ, usage).

    ``asks_below``: the rule asks when score < τ (so larger τ asks more); else when score > τ.
    """
    cands = np.unique(score[np.isfinite(score)])
    if cands.size == 0:
        raise ValueError("fitting a PRM threshold needs PRM values on the table: build it with a PRM")
    if asks_below:
        # τ_k asks at every state with score <= cands[k]; τ_{-1} asks nowhere
        taus = np.concatenate(([cands[0] - 1.0], (cands[:-1] + cands[1:]) / 2.0, [cands[-1] + 1.0]))
        asks = lambda t: (score < t).astype(np.float64)  # noqa: E731
    else:
        taus = np.concatenate(([cands[-1] + 1.0], ((cands[:-1] + cands[1:]) / 2.0)[::-1], [cands[0] - 1.0]))
        asks = lambda t: (score > t).astype(np.float64)  # noqa: E731
    # taus[0] asks nowhere; going right asks at more states. Find the last index with usage <= budget.
    lo, hi = 0, len(taus) - 1
    if uncapped_usage(model, asks(taus[hi]), costs, actor) <= budget:
        return float(taus[hi]), uncapped_usage(model, asks(taus[hi]), costs, actor)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if uncapped_usage(model, asks(taus[mid]), costs, actor) <= budget:
            lo = mid
        else:
            hi = mid
    return float(taus[lo]), uncapped_usage(model, asks(taus[lo]), costs, actor)


class PRMThreshold(_PRMRule):
    """Ask when ``PRM(s, 0) < tau`` (the paper's self-regulation baseline)."""

    name = "prm_threshold"

    def ask(self, state: Any, step: int, budget_left: float) -> bool:
        return budget_left > 0 and self.prm(state.state_text, False) < self.tau

    @classmethod
    def fit(
        cls, model: TabularModel, budget: float, prm: Any = None, costs: dict[str, float] | None = None,
        actor: str | None = None,
    ) -> PRMThreshold:
        """τ on the training table so that the mean usage (no cap) is ≤ ``budget``."""
        if math.isinf(budget):
            return cls(prm or model.scorer, math.inf)
        tau, usage = _fit_threshold(model, model.prm[:, 0], budget, asks_below=True, costs=costs, actor=actor)
        rule = cls(prm or model.scorer, tau)
        rule.fitted_usage = usage
        return rule


class PRMGainThreshold(_PRMRule):
    """Ask when ``PRM(s, 1) − PRM(s, 0) > tau``."""

    name = "prm_gain"

    def ask(self, state: Any, step: int, budget_left: float) -> bool:
        if budget_left <= 0:
            return False
        return self.prm(state.state_text, True) - self.prm(state.state_text, False) > self.tau

    @classmethod
    def fit(
        cls, model: TabularModel, budget: float, prm: Any = None, costs: dict[str, float] | None = None,
        actor: str | None = None,
    ) -> PRMGainThreshold:
        """τ on the training table so that the mean usage (no cap) is ≤ ``budget``."""
        if math.isinf(budget):
            return cls(prm or model.scorer, -math.inf)
        tau, usage = _fit_threshold(model, model.prm[:, 1] - model.prm[:, 0], budget, asks_below=False, costs=costs, actor=actor)
        rule = cls(prm or model.scorer, tau)
        rule.fitted_usage = usage
        return rule


class DPPolicy:
    """The DP's policy on table states: exact budgeted π*(s, b), a Lagrangian π_λ, or the
    episode-level mix of :class:`~agentcritic.helper.dp.LambdaSearch` (drawn at each ``reset``).

    States not in the table (held-out tasks with ``prefix`` keys) are answered ``unknown``
    (default: don't ask) and counted in ``misses``.
    """

    name = "dp"

    def __init__(
        self,
        solution: BudgetSolution | LagrangianSolution | LambdaSearch,
        model: TabularModel | None = None,
        *,
        unknown: bool = False,
        seed: int = 0,
    ) -> None:
        self.solution = solution
        self.model = model or getattr(solution, "model", None) or solution.upper.model  # type: ignore[union-attr]
        self.unknown = unknown
        self.misses = 0
        self.lookups = 0
        self.rng = random.Random(seed)
        self._active: Any = solution.upper if isinstance(solution, LambdaSearch) else solution
        self.reset()

    def reset(self) -> None:
        sol = self.solution
        if isinstance(sol, LambdaSearch):
            use_lower = sol.lower is not None and self.rng.random() < sol.mix
            self._active = sol.lower if use_lower else sol.upper

    def key(self, state: Any, step: int) -> tuple:
        return self.model.key_for(
            step=step,
            task_id=getattr(state, "task_id", ""),
            state_key=getattr(state, "state_key", ""),
            state_text=getattr(state, "state_text", ""),
            last_actor=getattr(state, "last_actor", NO_ACTOR),
        )

    def ask(self, state: Any, step: int, budget_left: float) -> bool:
        if budget_left <= 0:
            return False
        self.lookups += 1
        i = self.model.lookup(self.key(state, step))
        if i is None:
            self.misses += 1
            return self.unknown
        sol = self._active
        if isinstance(sol, BudgetSolution):
            return sol.ask(i, budget_left)
        return bool(sol.asks[i])

    def choose(self, state: Any, step: int, budget_left: float) -> str | None:
        """Whom the DP asks at this state (an actor of the table), or None; see :class:`~agentcritic.helper.gate.Gate`."""
        if budget_left <= 0:
            return None
        self.lookups += 1
        i = self.model.lookup(self.key(state, step))
        if i is None:
            self.misses += 1
            return self.model.actors[0] if self.unknown else None
        sol = self._active
        if isinstance(sol, BudgetSolution):
            return sol.actor(i, budget_left)
        h = int(sol.choice[i]) if getattr(sol, "choice", None) is not None else int(sol.asks[i])
        return self.model.actors[h - 1] if h else None


BASELINES: dict[str, type] = {
    "never": NeverAsk,
    "always": AlwaysAsk,
    "random": RandomAsk,
    "prm_threshold": PRMThreshold,
    "prm_gain": PRMGainThreshold,
    "dp": DPPolicy,
}



def make_baseline(
    name: str,
    table: TabularModel,
    budget: float,
    *,
    prm: Any = None,
    usage: float | None = None,
    seed: int = 0,
    costs: dict[str, float] | None = None,
    actor: str | None = None,
) -> Any:
    """One baseline decider, fitted on the training table for ``budget``.

    ``random`` matches ``usage`` interventions per episode (default: ``budget``, or the DP's
    unconstrained usage when the budget is unlimited); ``dp`` is the exact budgeted policy (solved
    for ``budget``, every step when unlimited). ``costs`` (actor → cost of a request) puts budget and
    usage in cost units, as the Gate spends them. ``actor``: the intervention it asks (its usage is
    fitted for that one; needed when the table has several; ``dp`` then asks that one alone).
    """
    from agentcritic.helper.dp import solve_budget, solve_lagrangian

    if name == "never":
        return NeverAsk()
    if name == "always":
        return AlwaysAsk()
    if name == "random":
        target = usage if usage is not None else (budget if math.isfinite(budget) else None)
        if target is None:
            target = solve_lagrangian(table, 0.0, costs).mean_usage
        return RandomAsk.matched(table, target, seed=seed, costs=costs, actor=actor)
    if name == "prm_threshold":
        return PRMThreshold.fit(table, budget, prm, costs, actor)
    if name == "prm_gain":
        return PRMGainThreshold.fit(table, budget, prm, costs, actor)
    if name == "dp":
        return DPPolicy(solve_budget(table, budget, costs, None if actor is None else [actor]), table, seed=seed)
    raise ValueError(f"unknown baseline {name!r}; choose from {sorted(BASELINES)}")
