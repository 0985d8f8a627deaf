"""Solving the budgeted help problem on a :class:`~agentcritic.helper.tabular.TabularModel`.

Two forms (selfreg.md Phase 2b):

- **Lagrangian** (the paper's reward search / usage computation / policy computation): for a help
  penalty λ ≥ 0, ``Q_λ(s,h) = −λ·h + Σ P̂(s'|s,h) V_λ(s')``, ``π_λ = argmax`` (ties → don't ask),
  usage ``U_λ``. :func:`search_lambda` bisects λ ∈ [0, 1] for the smallest λ with
  ``mean_tasks U_λ(s₀) ≤ C`` and offers the episode-level mix of the two neighbouring policies whose
  expected usage is exactly C.
- **Exact budgeted**: ``V(s,b) = max(Σ P̂(s'|s,0) V(s',b), [b>0] Σ P̂(s'|s,1) V(s',b−1))`` — a hard
  per-episode cap, no λ (:func:`solve_budget`).

Both sweep the states level by level, deepest first, with NumPy over whole levels: a solve is
O(|S|·C). Segment sums over each state's successors use ``np.add.reduceat`` on the non-empty rows
(exact sums, no cumulative-sum cancellation). Ties are decided with a tolerance of ``TIE_EPS``
towards "don't ask", so float rounding never flips a decision between solvers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from agentcritic.errors import AgentCriticError
from agentcritic.helper.tabular import TabularModel

#: asking must beat not asking by more than this (ties → don't ask)
TIE_EPS = 1e-12


class DPError(AgentCriticError, ValueError):
    """A budget or state the solvers cannot answer for; the message says why."""


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
        if budget_left is not None and budget_left <= 0:
            return False
        return bool(self.asks[i])

    def labels(self, reachable_only: bool = False) -> np.ndarray:
        """π_λ(s) for every non-terminal logged state (-1 where not reachable, if asked)."""
        out = self.asks.astype(np.int8)
        if reachable_only:
            out = np.where(reachable_lagrangian(self.model, self.asks), out, -1).astype(np.int8)
        return out


def solve_lagrangian(model: TabularModel, lam: float) -> LagrangianSolution:
    """Q_λ, V_λ, π_λ (ties → don't ask) and U_λ for a help penalty ``lam`` ≥ 0."""
    if not (lam >= 0 and math.isfinite(lam)):
        raise DPError(f"lam={lam}: the help penalty must be a finite number >= 0")
    n = model.n_states
    q = np.zeros((n, 2))
    value = np.zeros(n)
    usage = np.zeros(n)
    asks = np.zeros(n, dtype=bool)
    for a, b in model.levels():
        q0 = model.base[a:b, 0] + _segment_sums(model, 0, a, b, value)
        q1 = model.base[a:b, 1] + _segment_sums(model, 1, a, b, value) - lam
        ask = q1 > q0 + TIE_EPS
        q[a:b, 0], q[a:b, 1] = q0, q1
        value[a:b] = np.where(ask, q1, q0)
        asks[a:b] = ask
        u0 = _segment_sums(model, 0, a, b, usage)
        u1 = 1.0 + _segment_sums(model, 1, a, b, usage)
        usage[a:b] = np.where(ask, u1, u0)
    return LagrangianSolution(model, float(lam), q, value, asks, usage, value + lam * usage)


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


def search_lambda(model: TabularModel, budget: float, tol: float = 1e-9, max_iter: int = 100) -> LambdaSearch:
    """Smallest λ ∈ [0, 1] with ``mean_tasks U_λ(s₀) ≤ budget``, plus the exact-usage mix.

    Usage is a non-increasing step function of λ; values are success probabilities, so at λ = 1 no
    state asks and the search interval is [0, 1].
    """
    if not budget >= 0:
        raise DPError(f"budget={budget}: must be >= 0 (math.inf for no cap)")
    zero = solve_lagrangian(model, 0.0)
    if zero.mean_usage <= budget + 1e-12:
        return LambdaSearch(float(budget), 0.0, zero, None, 0.0, 0)
    lo, hi = 0.0, 1.0
    lower, upper = zero, solve_lagrangian(model, hi)
    it = 0
    while hi - lo > tol and it < max_iter:
        it += 1
        mid = 0.5 * (lo + hi)
        sol = solve_lagrangian(model, mid)
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

    def _b(self, budget_left: int | float | None) -> int:
        if budget_left is None:
            return self.budget
        if budget_left < 0:
            raise DPError(f"budget_left={budget_left}: must be >= 0")
        if budget_left > self.budget:
            # one intervention per step at most: with as many left as there are steps, more changes nothing
            if self.budget >= self.model.n_levels:
                return self.budget
            raise DPError(f"budget_left={budget_left} exceeds the solved budget {self.budget}; solve with a larger one")
        return int(budget_left)

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
            out = np.where(reachable_budget(self.model, self.asks), out, -1).astype(np.int8)
        return out


def solve_budget(model: TabularModel, budget: int | float) -> BudgetSolution:
    """V(s, b) and π*(s, b) for b = 0 … ``budget`` (math.inf: as many as there are steps)."""
    if not budget >= 0:
        raise DPError(f"budget={budget}: must be >= 0 (math.inf for no cap)")
    if math.isinf(budget):
        c = int(model.n_levels)
    else:
        if budget != int(budget):
            raise DPError(f"budget={budget}: the exact DP needs a whole number of interventions")
        c = int(budget)
    n = model.n_states
    value = np.zeros((n, c + 1))
    usage = np.zeros((n, c + 1))
    asks = np.zeros((n, c + 1), dtype=bool)
    for a, b in model.levels():
        q0 = model.base[a:b, 0, None] + _segment_sums(model, 0, a, b, value)
        q1 = np.full_like(q0, -np.inf)
        u0 = _segment_sums(model, 0, a, b, usage)
        u1 = np.zeros_like(u0)
        if c > 0:
            s1 = _segment_sums(model, 1, a, b, value[:, :-1])
            q1[:, 1:] = model.base[a:b, 1, None] + s1
            u1[:, 1:] = 1.0 + _segment_sums(model, 1, a, b, usage[:, :-1])
        ask = q1 > q0 + TIE_EPS
        value[a:b] = np.where(ask, q1, q0)
        usage[a:b] = np.where(ask, u1, u0)
        asks[a:b] = ask
    return BudgetSolution(model, c, value, asks, usage)


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


def evaluate_policy(model: TabularModel, ask_prob: np.ndarray, budget: int | float) -> PolicyEvaluation:
    """Success and usage of "ask with probability ``ask_prob[s]`` (or ``ask_prob[s, b]``) while
    b > 0" from every (s, b): the Gate's hard cap applied to any policy, evaluated on the table."""
    c = model.n_levels if math.isinf(budget) else int(budget)
    p = np.asarray(ask_prob, dtype=np.float64)
    if p.shape[0] != model.n_states:
        raise DPError(f"ask_prob has {p.shape[0]} rows for {model.n_states} states")
    if p.ndim == 1:
        p = np.repeat(p[:, None], c + 1, axis=1)
    if p.shape != (model.n_states, c + 1):
        raise DPError(f"ask_prob has shape {p.shape}; expected ({model.n_states},) or ({model.n_states}, {c + 1})")
    p = p.copy()
    p[:, 0] = 0.0  # the cap: nothing left, nothing asked
    n = model.n_states
    succ = np.zeros((n, c + 1))
    usage = np.zeros((n, c + 1))
    for a, b in model.levels():
        s0 = model.base[a:b, 0, None] + _segment_sums(model, 0, a, b, succ)
        u0 = _segment_sums(model, 0, a, b, usage)
        s1 = np.zeros_like(s0)
        u1 = np.zeros_like(u0)
        if c > 0:
            s1[:, 1:] = model.base[a:b, 1, None] + _segment_sums(model, 1, a, b, succ[:, :-1])
            u1[:, 1:] = 1.0 + _segment_sums(model, 1, a, b, usage[:, :-1])
        pa = p[a:b]
        succ[a:b] = (1 - pa) * s0 + pa * s1
        usage[a:b] = (1 - pa) * u0 + pa * u1
    return PolicyEvaluation(succ, usage, model, c)


def uncapped_usage(model: TabularModel, ask_prob: np.ndarray) -> float:
    """Mean over tasks of the expected interventions per episode of a per-state policy, no cap."""
    p = np.asarray(ask_prob, dtype=np.float64)
    usage = np.zeros(model.n_states)
    for a, b in model.levels():
        u0 = _segment_sums(model, 0, a, b, usage)
        u1 = 1.0 + _segment_sums(model, 1, a, b, usage)
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
        act = np.concatenate([act[:, shift:], np.zeros((act.shape[0], shift), dtype=bool)], axis=1)
    np.logical_or.at(reach, dst, act)


def reachable_lagrangian(model: TabularModel, asks: np.ndarray) -> np.ndarray:
    """States reached with positive probability from the start states under policy ``asks``."""
    reach = np.zeros(model.n_states, dtype=bool)
    reach[model.root_weights()[0]] = True
    for d in range(model.n_levels):
        a, b = int(model.level_ptr[d]), int(model.level_ptr[d + 1])
        for h in (0, 1):
            _forward(model, h, a, b, reach[a:b] & (asks[a:b] == bool(h)), reach, 0)
    return reach


def reachable_budget(model: TabularModel, asks: np.ndarray) -> np.ndarray:
    """(s, b) pairs reached from (s₀, C) under π*(s, b); C = asks.shape[1] - 1."""
    c = asks.shape[1] - 1
    reach = np.zeros(asks.shape, dtype=bool)
    reach[model.root_weights()[0], c] = True
    for d in range(model.n_levels):
        a, b = int(model.level_ptr[d]), int(model.level_ptr[d + 1])
        for h in (0, 1):
            _forward(model, h, a, b, reach[a:b] & (asks[a:b] == bool(h)), reach, h)
    return reach


def _index(model: TabularModel, state_key: Any) -> int:
    if isinstance(state_key, (int, np.integer)):
        return int(state_key)
    i = model.lookup(tuple(state_key))
    if i is None:
        raise DPError(f"state {state_key!r} is not in the table (it was never logged)")
    return i
