"""Solving the budgeted help problem on a :class:`~agentcritic.helper.tabular.TabularModel`.

Two forms (selfreg.md Phase 2b):

- **Lagrangian** (the paper's reward search / usage computation / policy computation): for a help
  penalty λ ≥ 0, ``Q_λ(s,h) = −λ·h + Σ P̂(s'|s,h) V_λ(s')``, ``π_λ = argmax`` (ties → don't ask),
  usage ``U_λ``. :func:`search_lambda` bisects λ ∈ [0, 1] for the smallest λ with
  ``mean_tasks U_λ(s₀) ≤ C`` and offers the episode-level mix of the two neighbouring policies whose
  expected usage is exactly C.
- **Exact budgeted**: ``V(s,b) = max(Σ P̂(s'|s,0) V(s',b), [b>0] Σ P̂(s'|s,1) V(s',b−1))`` — a hard
  per-episode cap, no λ (:func:`solve_budget`).

**Costs.** The budget is in cost units: asking intervention ``a`` (an actor name of the table, see
:attr:`TabularModel.actors`) spends ``costs[a]`` (1 when absent), so ``−λ·h`` above is ``−λ·cost(h)``,
``b−1`` is ``b−cost(h)`` and usage is spent cost. With several interventions in the table the solvers
choose whom to ask (``choice``: 0 = nobody, 1 + i = ``actors[i]``). A k-step takeover is one request
(the table folds its steps into one edge). With no costs every result is the one of unit costs.

Both sweep the states level by level, deepest first, with NumPy over whole levels: a solve is
O(|S|·C). Segment sums over each state's successors use ``np.add.reduceat`` on the non-empty rows
(exact sums, no cumulative-sum cancellation). Ties are decided with a tolerance of ``TIE_EPS``
towards "don't ask" (then, between interventions, towards the cheaper), so float rounding never
flips a decision between solvers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from agentcritic.errors import AgentCriticError
from agentcritic.helper.tabular import TabularModel

#: asking must beat not asking by more than this (ties → don't ask)
TIE_EPS = 1e-12


class DPError(AgentCriticError, ValueError):
    """A budget or state the solvers cannot answer for; the message says why."""


# ----------------------------------------------------------------------------------- costs
def action_costs(model: TabularModel, costs: dict[str, float] | None = None, *, whole: bool = False) -> np.ndarray:
    """The cost of each action h of ``model``: 0 for the base policy, ``costs[actor]`` (1 when absent)
    for each intervention. ``whole``: the exact DP counts the budget in whole cost units."""
    costs = dict(costs or {})
    unknown = sorted(set(costs) - set(model.actors))
    if unknown:
        raise DPError(
            f"costs name actor(s) {unknown} that the table does not have; its actors (the names logged on "
            f"helped steps) are {list(model.actors)}: give costs for those only"
        )
    for actor, cost in costs.items():
        if isinstance(cost, bool) or not isinstance(cost, (int, float, np.integer, np.floating)) \
                or not (math.isfinite(cost) and cost > 0):
            raise DPError(f"costs[{actor!r}]={cost!r}: a cost must be a finite number > 0 (e.g. 1 or 3)")
        if whole and cost != int(cost):
            raise DPError(
                f"costs[{actor!r}]={cost}: the exact budgeted DP counts the budget in whole cost units; "
                f"scale every cost and the budget by the same factor so they are whole numbers "
                f"(costs given: {costs})"
            )
    return np.array([0.0] + [float(costs.get(a, 1.0)) for a in model.actors])


def check_costs(model: TabularModel, costs: dict[str, float] | None, budgets: Iterable[float] = ()) -> None:
    """Raise :class:`DPError` for a cost table the exact DP cannot plan with on ``model`` (an unknown
    actor, a cost that is not a whole number > 0) or a budget > 0 that no request fits."""
    cost = action_costs(model, costs, whole=True)
    for budget in budgets:
        if math.isfinite(budget):
            _check_budget_fits(budget, cost, model)


def _check_budget_fits(budget: float, cost: np.ndarray, model: TabularModel) -> None:
    """A budget > 0 below every intervention's cost buys nothing: an error, not a silent "never"."""
    cheapest = float(cost[1:].min())
    if 0 < budget < cheapest:
        table = dict(zip(model.actors, cost[1:].tolist(), strict=True))
        raise DPError(
            f"budget={budget}: no intervention fits (costs {table}); give 0 for no help or a budget of at "
            f"least {cheapest:g} cost units"
        )


# ----------------------------------------------------------------------------------- kernels
def _segment_sums(model: TabularModel, h: int, a: int, b: int, values: np.ndarray) -> np.ndarray:
    """Σ_k edge_weight[h][k] · values[succ[h][k]] for each state a..b-1 (values: (n,) or (n, C+1))."""
    ptr = model.succ_ptr[h]
    lo, hi = int(ptr[a]), int(ptr[b])
    shape = (b - a,) + values.shape[1:]
    out = np.zeros(shape)
    if hi == lo:
        return out
    w = model.edge_weight[h][lo:hi]
    contrib = values[model.succ_idx[h][lo:hi]]
    contrib = contrib * (w[:, None] if contrib.ndim == 2 else w)
    starts = ptr[a:b]
    nonempty = starts < ptr[a + 1 : b + 1]
    out[nonempty] = np.add.reduceat(contrib, starts[nonempty] - lo, axis=0)
    return out


def _better(qh: np.ndarray, best: np.ndarray, h: int, pick: np.ndarray, cost: np.ndarray) -> np.ndarray:
    """Where asking ``h`` beats the best so far: by more than ``TIE_EPS``, or a tie with another
    intervention that costs more (equal help → the cheaper; never over not asking)."""
    cheaper = (pick > 0) & (cost[h] < cost[pick]) & (np.abs(qh - best) <= TIE_EPS)
    return (qh > best + TIE_EPS) | cheaper


# ----------------------------------------------------------------------------------- Lagrangian
@dataclass
class LagrangianSolution:
    """π_λ with its values: ``q`` (n, 2), ``value`` V_λ, ``asks`` π_λ, ``usage`` U_λ, ``success``
    (expected success under π_λ, = V_λ + λ·U_λ)."""

    model: TabularModel = field(repr=False)
    lam: float
    q: np.ndarray = field(repr=False)
    value: np.ndarray = field(repr=False)
    asks: np.ndarray = field(repr=False)
    usage: np.ndarray = field(repr=False)
    success: np.ndarray = field(repr=False)
    #: whom π_λ asks: 0 nobody, 1 + i ``model.actors[i]``
    choice: np.ndarray | None = field(default=None, repr=False)
    #: cost of each action h (0 for the base policy)
    cost: np.ndarray | None = field(default=None, repr=False)

    @property
    def mean_usage(self) -> float:
        """Mean over tasks of U_λ(s₀): expected interventions per episode."""
        return self.model.mean_over_tasks(self.usage)

    @property
    def predicted_success(self) -> float:
        """Mean over tasks of the expected success from s₀ under π_λ."""
        return self.model.mean_over_tasks(self.success)

    def ask(self, state_key: tuple, budget_left: int | float | None = None) -> bool:
        """π_λ at a table state (the budget left does not enter the Lagrangian policy, except 0)."""
        i = _index(self.model, state_key)
        if budget_left is not None and (budget_left <= 0 or (self.cost is not None and self.choice is not None
                                                            and budget_left < self.cost[self.choice[i]])):
            return False
        return bool(self.asks[i])

    def labels(self, reachable_only: bool = False) -> np.ndarray:
        """π_λ(s) for every non-terminal logged state (-1 where not reachable, if asked)."""
        out = self.asks.astype(np.int8)
        if reachable_only:
            choice = self.asks if self.choice is None else self.choice
            out = np.where(reachable_lagrangian(self.model, choice), out, -1).astype(np.int8)
        return out


def solve_lagrangian(model: TabularModel, lam: float, costs: dict[str, float] | None = None) -> LagrangianSolution:
    """Q_λ, V_λ, π_λ (ties → don't ask, then the cheaper actor, then the first) and U_λ (spent cost) for a help penalty
    ``lam`` ≥ 0 per cost unit; ``costs``: actor → cost of one request (1 when absent)."""
    if not (lam >= 0 and math.isfinite(lam)):
        raise DPError(f"lam={lam}: the help penalty must be a finite number >= 0")
    cost = action_costs(model, costs)
    n = model.n_states
    q = np.zeros((n, model.n_actions))
    value = np.zeros(n)
    usage = np.zeros(n)
    choice = np.zeros(n, dtype=np.int8)
    for a, b in model.levels():
        best = model.base[a:b, 0] + _segment_sums(model, 0, a, b, value)
        q[a:b, 0] = best
        pick = np.zeros(b - a, dtype=np.int8)
        for h in range(1, model.n_actions):
            qh = model.base[a:b, h] + _segment_sums(model, h, a, b, value) - lam * cost[h]
            q[a:b, h] = qh
            better = _better(qh, best, h, pick, cost)
            best = np.where(better, qh, best)
            pick[better] = h
        value[a:b] = best
        choice[a:b] = pick
        spent = np.zeros(b - a)
        for h in range(model.n_actions):
            uh = _segment_sums(model, h, a, b, usage) + cost[h]
            spent = np.where(pick == h, uh, spent)
        usage[a:b] = spent
    return LagrangianSolution(model, float(lam), q, value, choice > 0, usage, value + lam * usage, choice, cost)


@dataclass
class LambdaSearch:
    """The bisection's result for a budget C.

    ``upper``: π at the smallest λ found with usage ≤ C; ``lower``: π just below it (usage > C, or
    None when λ = 0 already meets C). ``mix`` is the probability of running ``lower`` for a whole
    episode (else ``upper``) so that the expected usage is exactly C.
    """

    budget: float
    lam: float
    upper: LagrangianSolution
    lower: LagrangianSolution | None
    mix: float
    iterations: int

    @property
    def mean_usage(self) -> float:
        """Expected interventions per episode of the mixed policy (= C when the cap binds)."""
        u = self.upper.mean_usage
        return u if self.lower is None else self.mix * self.lower.mean_usage + (1 - self.mix) * u

    @property
    def predicted_success(self) -> float:
        s = self.upper.predicted_success
        return s if self.lower is None else self.mix * self.lower.predicted_success + (1 - self.mix) * s

    def ask(self, state_key: tuple, budget_left: int | float | None = None) -> bool:
        """The deterministic policy π at ``lam`` (the mix needs episode-level randomness: MixedPolicy)."""
        return self.upper.ask(state_key, budget_left)


def search_lambda(
    model: TabularModel, budget: float, tol: float = 1e-9, max_iter: int = 100, costs: dict[str, float] | None = None
) -> LambdaSearch:
    """Smallest λ ∈ [0, 1/min cost] with ``mean_tasks U_λ(s₀) ≤ budget`` (cost units), plus the
    exact-usage mix.

    Usage is a non-increasing step function of λ; values are success probabilities, so at
    λ = 1/min cost no state asks (help gains at most 1) and that bounds the search interval.
    """
    if not budget >= 0:
        raise DPError(f"budget={budget}: must be >= 0 (math.inf for no cap)")
    cost = action_costs(model, costs)
    zero = solve_lagrangian(model, 0.0, costs)
    if zero.mean_usage <= budget + 1e-12:
        return LambdaSearch(float(budget), 0.0, zero, None, 0.0, 0)
    lo, hi = 0.0, 1.0 / float(cost[1:].min())
    lower, upper = zero, solve_lagrangian(model, hi, costs)
    it = 0
    while hi - lo > tol and it < max_iter:
        it += 1
        mid = 0.5 * (lo + hi)
        sol = solve_lagrangian(model, mid, costs)
        if sol.mean_usage <= budget + 1e-12:
            hi, upper = mid, sol
        else:
            lo, lower = mid, sol
    u_hi, u_lo = upper.mean_usage, lower.mean_usage
    mix = 0.0 if u_lo <= u_hi else float(np.clip((budget - u_hi) / (u_lo - u_hi), 0.0, 1.0))
    return LambdaSearch(float(budget), hi, upper, lower, mix, it)


# ----------------------------------------------------------------------------------- exact budgeted
@dataclass
class BudgetSolution:
    """The exact budget-augmented DP: ``values[s, b]`` = V(s, b), ``asks[s, b]`` = π*(s, b),
    ``usage[s, b]`` = expected interventions from (s, b) under π*, for b = 0 … budget."""

    model: TabularModel = field(repr=False)
    budget: int
    values: np.ndarray = field(repr=False)
    asks: np.ndarray = field(repr=False)
    usage: np.ndarray = field(repr=False)
    #: whom π*(s, b) asks: 0 nobody, 1 + i ``model.actors[i]``
    choice: np.ndarray | None = field(default=None, repr=False)
    #: cost of each action h (0 for the base policy); the budget is in these units
    cost: np.ndarray | None = field(default=None, repr=False)

    def _b(self, budget_left: int | float | None) -> int:
        if budget_left is None:
            return self.budget
        if budget_left < 0:
            raise DPError(f"budget_left={budget_left}: must be >= 0")
        if budget_left > self.budget:
            # one request per step at most: with the dearest request at every step left, more changes nothing
            dearest = 1.0 if self.cost is None else float(self.cost.max())
            if self.budget >= self.model.n_levels * dearest:
                return self.budget
            raise DPError(f"budget_left={budget_left} exceeds the solved budget {self.budget}; solve with a larger one")
        return int(budget_left)

    def actor(self, state_key: tuple, budget_left: int | float | None = None) -> str | None:
        """Whom π*(s, b) asks (an actor of the table), or None for "don't ask"."""
        h = int(self.choice[_index(self.model, state_key), self._b(budget_left)]) if self.choice is not None \
            else int(self.ask(state_key, budget_left))
        return self.model.actors[h - 1] if h else None

    def ask(self, state_key: tuple, budget_left: int | float | None = None) -> bool:
        """π*(s, b): ask at table state ``state_key`` with ``budget_left`` interventions left."""
        return bool(self.asks[_index(self.model, state_key), self._b(budget_left)])

    def value_of(self, state_key: tuple, budget_left: int | float | None = None) -> float:
        """V(s, b): the predicted success from a table state with ``budget_left`` left."""
        return float(self.values[_index(self.model, state_key), self._b(budget_left)])

    def value(self, s0: tuple | None = None, budget: int | float | None = None) -> float:
        """V(s₀, C) for one start state, or (``s0`` None) the mean over tasks: predicted success."""
        if s0 is None:
            return self.predicted_success_at(budget)
        return self.value_of(s0, budget)

    def predicted_success_at(self, budget: int | float | None = None) -> float:
        return self.model.mean_over_tasks(self.values[:, self._b(budget)])

    @property
    def predicted_success(self) -> float:
        return self.predicted_success_at(None)

    @property
    def mean_usage(self) -> float:
        return self.model.mean_over_tasks(self.usage[:, self.budget])

    def labels(self, reachable_only: bool = False) -> np.ndarray:
        """π*(s, b) as int8 (n, budget+1); -1 marks (s, b) not reachable from s₀ with b = C (if asked)."""
        out = self.asks.astype(np.int8)
        if reachable_only:
            choice = self.asks if self.choice is None else self.choice
            out = np.where(reachable_budget(self.model, choice, self.costs), out, -1).astype(np.int8)
        return out

    @property
    def costs(self) -> dict[str, float]:
        """The cost table this solution was solved under (actor → cost)."""
        cost = self.cost if self.cost is not None else np.ones(self.model.n_actions)
        return dict(zip(self.model.actors, cost[1:].tolist(), strict=True))


def ask_now_labels(solution: BudgetSolution, frugal: bool = False) -> np.ndarray:
    """"Asking now is optimal and helps": int8 (n, budget+1), 1 where asking (some intervention) is
    worth as much as the best choice, V(s, b), and more than never asking again, V(s, 0).

    π*(s, b) breaks the tie between asking now and asking at a later step that rescues as well
    towards later, so along a path where any of several steps would do, it labels only the last one
    and every earlier one "don't": states that read alike get opposite labels. These labels mark all
    of them; a Gate that asks at the first state its helper says "ask" then spends the same one
    request, earlier. Where waiting is worth more (a better step is coming), the label stays 0.

    ``frugal``: where waiting is worth as much as asking, say "ask" only if asking now spends no
    more expected cost than waiting does (usage under π* after each). Without it, with budget to
    spare an ask that changes nothing (the intervention takes the step the base would have taken,
    and the rescue is still ahead) is "as good" as waiting, so the labels at b ≥ 2 say "ask" almost
    everywhere and a helper learns the budget instead of the state. Per actor: :func:`ask_now_actions`."""
    return ask_now_actions(solution, frugal).any(axis=2).astype(np.int8)


def ask_now_actions(
    solution: BudgetSolution, frugal: bool = False, actors: Sequence[str] | None = None
) -> np.ndarray:
    """:func:`ask_now_labels` for each intervention: int8 (n, budget+1, n_actions), where [s, b, h]
    is 1 if asking actor h now is optimal and helps; column 0 (don't ask) is 0. ``frugal``: and h
    spends no more expected cost than waiting (where waiting is as good) and than any other kind
    that is as good, so of two equally good kinds only the cheaper one says "ask". ``actors``: the
    interventions the solution was solved with (``solve_budget(…, actors=…)``); the others are never
    labelled."""
    model, values, usage = solution.model, solution.values, solution.usage
    cost = solution.cost if solution.cost is not None else np.ones(model.n_actions)
    allowed = set(range(1, model.n_actions)) if actors is None else {_asked_action(model, a) for a in actors}
    c = solution.budget
    out = np.zeros((model.n_states, c + 1, model.n_actions), dtype=np.int8)
    for a, b in model.levels():
        best = values[a:b]
        if frugal:
            q_wait = model.base[a:b, 0, None] + _segment_sums(model, 0, a, b, values)
            u_wait = _segment_sums(model, 0, a, b, usage)
        asks, spends = {}, {}
        for h in sorted(allowed):
            k = int(cost[h])
            if k > c:
                continue
            qh = np.full((b - a, c + 1), -np.inf)
            uh = np.full((b - a, c + 1), np.inf)
            qh[:, k:] = model.base[a:b, h, None] + _segment_sums(model, h, a, b, values[:, : c + 1 - k])
            uh[:, k:] = cost[h] + _segment_sums(model, h, a, b, usage[:, : c + 1 - k])
            asks[h] = (qh >= best - TIE_EPS) & (qh > values[a:b, :1] + TIE_EPS)
            spends[h] = np.where(asks[h], uh, np.inf)
        if frugal and asks:
            least = np.minimum.reduce(list(spends.values()))  # the cheapest of the equally good kinds
            for h in asks:
                asks[h] &= ((q_wait < best - TIE_EPS) | (spends[h] <= u_wait + TIE_EPS)) & (spends[h] <= least + TIE_EPS)
        for h, ask in asks.items():
            out[a:b, :, h] = ask
    return out


def solve_budget(
    model: TabularModel,
    budget: int | float,
    costs: dict[str, float] | None = None,
    actors: Sequence[str] | None = None,
) -> BudgetSolution:
    """V(s, b) and π*(s, b) for b = 0 … ``budget`` cost units (math.inf: the dearest request at every
    step); ``costs``: actor → whole cost of one request (1 when absent). ``actors``: ask only these
    interventions of the table (e.g. one kind alone, to compare with the mix); default all."""
    if not budget >= 0:
        raise DPError(f"budget={budget}: must be >= 0 (math.inf for no cap)")
    cost = action_costs(model, costs, whole=True)
    allowed = set(range(1, model.n_actions)) if actors is None else {_asked_action(model, a) for a in actors}
    if math.isinf(budget):
        c = int(model.n_levels * cost.max())
    else:
        if budget != int(budget):
            raise DPError(f"budget={budget}: the exact DP needs a whole number of cost units")
        _check_budget_fits(budget, cost, model)
        c = int(budget)
    step = cost.astype(np.int64)
    n = model.n_states
    value = np.zeros((n, c + 1))
    usage = np.zeros((n, c + 1))
    choice = np.zeros((n, c + 1), dtype=np.int8)
    for a, b in model.levels():
        best = model.base[a:b, 0, None] + _segment_sums(model, 0, a, b, value)
        spent = _segment_sums(model, 0, a, b, usage)
        pick = np.zeros(best.shape, dtype=np.int8)
        for h in range(1, model.n_actions):
            k = int(step[h])
            if k > c or h not in allowed:
                continue  # this intervention never fits, or is not offered
            qh = np.full_like(best, -np.inf)
            uh = np.zeros_like(spent)
            qh[:, k:] = model.base[a:b, h, None] + _segment_sums(model, h, a, b, value[:, : c + 1 - k])
            uh[:, k:] = cost[h] + _segment_sums(model, h, a, b, usage[:, : c + 1 - k])
            better = _better(qh, best, h, pick, cost)
            best = np.where(better, qh, best)
            spent = np.where(better, uh, spent)
            pick[better] = h
        value[a:b] = best
        usage[a:b] = spent
        choice[a:b] = pick
    return BudgetSolution(model, c, value, choice > 0, usage, choice, cost)


# ----------------------------------------------------------------------------------- evaluation
@dataclass
class PolicyEvaluation:
    """Expected success and usage of a (possibly random) policy under a hard cap, from the table."""

    success: np.ndarray  # (n, C+1)
    usage: np.ndarray  # (n, C+1)
    model: TabularModel = field(repr=False)
    budget: int = 0

    @property
    def predicted_success(self) -> float:
        return self.model.mean_over_tasks(self.success[:, self.budget])

    @property
    def mean_usage(self) -> float:
        return self.model.mean_over_tasks(self.usage[:, self.budget])


def _asked_action(model: TabularModel, actor: str | None) -> int:
    """h of the intervention a yes/no policy calls (the table's only one when ``actor`` is None)."""
    if actor is None:
        if len(model.actors) > 1:
            raise DPError(f"the table has several interventions {list(model.actors)}: say which one the policy asks")
        return 1
    if actor not in model.actors:
        raise DPError(f"actor {actor!r} is not an intervention of the table; its actors are {list(model.actors)}")
    return 1 + model.actors.index(actor)


def evaluate_policy(
    model: TabularModel,
    ask_prob: np.ndarray,
    budget: int | float,
    costs: dict[str, float] | None = None,
    actor: str | None = None,
) -> PolicyEvaluation:
    """Success and usage of "ask ``actor`` with probability ``ask_prob[s]`` (or ``ask_prob[s, b]``)
    while its cost fits in b" from every (s, b): the Gate's hard cap applied to any policy, evaluated
    on the table (budget and usage in cost units)."""
    cost = action_costs(model, costs, whole=True)
    h = _asked_action(model, actor)
    k = int(cost[h])
    c = int(model.n_levels * k) if math.isinf(budget) else int(budget)
    p = np.asarray(ask_prob, dtype=np.float64)
    if p.shape[0] != model.n_states:
        raise DPError(f"ask_prob has {p.shape[0]} rows for {model.n_states} states")
    if p.ndim == 1:
        p = np.repeat(p[:, None], c + 1, axis=1)
    if p.shape != (model.n_states, c + 1):
        raise DPError(f"ask_prob has shape {p.shape}; expected ({model.n_states},) or ({model.n_states}, {c + 1})")
    p = p.copy()
    p[:, : min(k, c + 1)] = 0.0  # the cap: what is left does not pay for a request, nothing asked
    n = model.n_states
    succ = np.zeros((n, c + 1))
    usage = np.zeros((n, c + 1))
    for a, b in model.levels():
        s0 = model.base[a:b, 0, None] + _segment_sums(model, 0, a, b, succ)
        u0 = _segment_sums(model, 0, a, b, usage)
        s1 = np.zeros_like(s0)
        u1 = np.zeros_like(u0)
        if c >= k:
            s1[:, k:] = model.base[a:b, h, None] + _segment_sums(model, h, a, b, succ[:, : c + 1 - k])
            u1[:, k:] = cost[h] + _segment_sums(model, h, a, b, usage[:, : c + 1 - k])
        pa = p[a:b]
        succ[a:b] = (1 - pa) * s0 + pa * s1
        usage[a:b] = (1 - pa) * u0 + pa * u1
    return PolicyEvaluation(succ, usage, model, c)


def uncapped_usage(
    model: TabularModel, ask_prob: np.ndarray, costs: dict[str, float] | None = None, actor: str | None = None
) -> float:
    """Mean over tasks of the expected cost spent per episode of a per-state policy asking ``actor``,
    no cap (with unit costs: interventions per episode)."""
    cost = action_costs(model, costs)
    h = _asked_action(model, actor)
    p = np.asarray(ask_prob, dtype=np.float64)
    usage = np.zeros(model.n_states)
    for a, b in model.levels():
        u0 = _segment_sums(model, 0, a, b, usage)
        u1 = cost[h] + _segment_sums(model, h, a, b, usage)
        usage[a:b] = (1 - p[a:b]) * u0 + p[a:b] * u1
    return model.mean_over_tasks(usage)


# ----------------------------------------------------------------------------------- reachability
def _forward(model: TabularModel, h: int, a: int, b: int, active: np.ndarray, reach: np.ndarray, shift: int) -> None:
    ptr = model.succ_ptr[h]
    lo, hi = int(ptr[a]), int(ptr[b])
    if hi == lo:
        return
    rows = model.edge_row[h][lo:hi] - a
    live = model.edge_weight[h][lo:hi] > 0
    act = active[rows] & live[:, None] if active.ndim == 2 else (active[rows] & live)
    dst = model.succ_idx[h][lo:hi]
    if act.ndim == 2 and shift:
        shift = min(shift, act.shape[1])
        act = np.concatenate([act[:, shift:], np.zeros((act.shape[0], shift), dtype=bool)], axis=1)
    np.logical_or.at(reach, dst, act)


def reachable_lagrangian(model: TabularModel, asks: np.ndarray) -> np.ndarray:
    """States reached with positive probability from the start states under policy ``asks`` (bool:
    ask the only intervention, or a ``choice`` array: 0 nobody, h the action taken)."""
    choice = np.asarray(asks).astype(np.int64)
    reach = np.zeros(model.n_states, dtype=bool)
    reach[model.root_weights()[0]] = True
    for d in range(model.n_levels):
        a, b = int(model.level_ptr[d]), int(model.level_ptr[d + 1])
        for h in range(model.n_actions):
            _forward(model, h, a, b, reach[a:b] & (choice[a:b] == h), reach, 0)
    return reach


def reachable_budget(model: TabularModel, asks: np.ndarray, costs: dict[str, float] | None = None) -> np.ndarray:
    """(s, b) pairs reached from (s₀, C) under π*(s, b) (bool, or a ``choice`` array); C = asks.shape[1] - 1;
    asking h moves b down by its cost."""
    choice = np.asarray(asks).astype(np.int64)
    step = action_costs(model, costs, whole=True).astype(np.int64)
    c = choice.shape[1] - 1
    reach = np.zeros(choice.shape, dtype=bool)
    reach[model.root_weights()[0], c] = True
    for d in range(model.n_levels):
        a, b = int(model.level_ptr[d]), int(model.level_ptr[d + 1])
        for h in range(model.n_actions):
            _forward(model, h, a, b, reach[a:b] & (choice[a:b] == h), reach, int(step[h]))
    return reach


def _index(model: TabularModel, state_key: Any) -> int:
    if isinstance(state_key, (int, np.integer)):
        return int(state_key)
    i = model.lookup(tuple(state_key))
    if i is None:
        raise DPError(f"state {state_key!r} is not in the table (it was never logged)")
    return i
