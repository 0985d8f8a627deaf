"""The budgeted DP: the vectorised solvers equal a plain-Python reference on random trees (both
forms), usage falls with λ, the bisection and its mix meet C, the exact DP dominates the Lagrangian
policy under a hard cap, and on an MDP where help matters only at one late state the DP asks there
while the PRM-threshold rule spends the budget early.

The reference solver here is deliberately naive (dicts, recursion) and independent of the package's
table: it counts the episodes itself. ``benchmarks/bench_dp.py`` imports it.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections import Counter, defaultdict
from functools import lru_cache

import numpy as np
import pytest

from agentcritic.helper.baselines import PRMGainThreshold, PRMThreshold, RandomAsk
from agentcritic.helper.dp import (
    DPError,
    evaluate_policy,
    reachable_budget,
    search_lambda,
    solve_budget,
    solve_lagrangian,
    uncapped_usage,
)
from agentcritic.helper.tabular import Episode, TabularModel
from agentcritic.types import Transition

EPS = 1e-12


# ----------------------------------------------------------------------------------- data
def hash_prm(items):
    """A deterministic stand-in PRM: a pseudo-random probability per (text, helped)."""
    out = []
    for text, helped in items:
        digest = hashlib.sha1(f"{text}|{int(helped)}".encode()).digest()
        out.append(int.from_bytes(digest[:4], "little") / 2**32)
    return np.array(out)


def random_episodes(seed: int, n_tasks: int = 4, n_episodes: int = 40, max_depth: int = 6, branching: int = 3):
    """Episodes on random per-task trees: the key is the action path; help picks action 0 more often."""
    rng = random.Random(seed)
    good = {}
    episodes = []
    for e in range(n_episodes):
        task = f"t{e % n_tasks}"
        p_help = rng.choice([0.0, 0.2, 0.5, 0.8, 1.0])
        path: list[str] = []
        trans = []
        length = rng.randint(1, max_depth)
        for _ in range(length):
            key = "/".join(path)
            helped = rng.random() < p_help
            if helped:
                action = "0" if rng.random() < 0.7 else str(rng.randrange(branching))
            else:
                action = str(rng.randrange(branching))
            path.append(action)
            trans.append(Transition(task, key, f"{task}:{key}", helped, "expert" if helped else "agent",
                                    "/".join(path), False))
        trans[-1].done = True
        final = "/".join(path)
        if (task, final) not in good:
            good[(task, final)] = 0.15 + 0.7 * (path.count("0") / len(path))
        success = rng.random() < good[(task, final)]
        for t in trans:
            t.success = success
        episodes.append(Episode(trans, success))
    return episodes


# ----------------------------------------------------------------------------------- reference
class ReferenceMDP:
    """Plain-Python empirical model and solvers (prefix keys), written straight from selfreg.md."""

    def __init__(self, episodes, prm=None, n_min: int = 1, kappa: float = 0.0):
        self.n_min, self.kappa = n_min, kappa
        self.N = defaultdict(lambda: [0, 0])
        self.succ = defaultdict(Counter)
        self.term_success = defaultdict(float)
        self.texts = defaultdict(set)
        self.roots = defaultdict(Counter)
        for ep in episodes:
            trans = ep.transitions
            keys = [(j, t.task_id, t.state_key) for j, t in enumerate(trans)]
            self.roots[trans[0].task_id][keys[0]] += 1
            for j, t in enumerate(trans):
                h = int(t.helped)
                self.N[keys[j]][h] += 1
                self.texts[keys[j]].add(t.state_text)
                if j + 1 < len(trans):
                    self.succ[(keys[j], h)][keys[j + 1]] += 1
                else:
                    self.term_success[(keys[j], h)] += float(ep.success)
        self.prm = {}
        for s, texts in self.texts.items():
            for h in (0, 1):
                if prm is None:
                    self.prm[(s, h)] = None
                else:
                    vals = [float(prm([(t, bool(h))])[0]) for t in sorted(texts)]
                    self.prm[(s, h)] = sum(vals) / len(vals)
        self.states = list(self.N)

    def q(self, s, h, value):
        """Q(s, h) given a value function over successors (no penalty)."""
        n = self.N[s][h]
        if n < self.n_min:
            return self.prm[(s, h)], 0.0
        table = (self.term_success[(s, h)] + sum(c * value(s2) for s2, c in self.succ[(s, h)].items())) / n
        w = n / (n + self.kappa)
        prm = self.prm[(s, h)] if self.kappa else 0.0
        return w * table + (1 - w) * prm, w

    def lagrangian(self, lam):
        value, asks, usage = {}, {}, {}

        def v(s):
            if s not in value:
                q0, _ = self.q(s, 0, v)
                q1, _ = self.q(s, 1, v)
                q1 -= lam
                asks[s] = q1 > q0 + EPS
                value[s] = q1 if asks[s] else q0
            return value[s]

        def u(s):
            if s not in usage:
                v(s)
                h = int(asks[s])
                n = self.N[s][h]
                if n < self.n_min:
                    usage[s] = float(h)
                else:
                    w = n / (n + self.kappa)
                    usage[s] = h + w * sum(c * u(s2) for s2, c in self.succ[(s, h)].items()) / n
            return usage[s]

        for s in sorted(self.states, key=lambda k: -k[0]):
            v(s)
            u(s)
        return value, asks, usage

    def budget(self, cap):
        @lru_cache(maxsize=None)
        def v(s, b):
            q0, _ = self.q(s, 0, lambda s2: v(s2, b)[0])
            if b == 0:
                return q0, False
            q1, _ = self.q(s, 1, lambda s2: v(s2, b - 1)[0])
            return (q1, True) if q1 > q0 + EPS else (q0, False)

        out = {}
        for s in sorted(self.states, key=lambda k: -k[0]):
            for b in range(cap + 1):
                out[(s, b)] = v(s, b)
        return out

    def mean_over_tasks(self, per_state):
        total = 0.0
        for roots in self.roots.values():
            n = sum(roots.values())
            total += sum(c / n * per_state[s] for s, c in roots.items())
        return total / len(self.roots)


def model_and_reference(seed, n_min=1, kappa=0.0, **kw):
    eps = random_episodes(seed, **kw)
    model = TabularModel.from_episodes(eps, prm=hash_prm, n_min=n_min, kappa=kappa)
    return model, ReferenceMDP(eps, hash_prm, n_min, kappa)


SETTINGS = [(0, 1, 0.0), (1, 1, 0.0), (2, 2, 0.0), (3, 1, 0.5), (4, 3, 2.0)]


# ----------------------------------------------------------------------------------- equality
@pytest.mark.parametrize("seed,n_min,kappa", SETTINGS)
def test_lagrangian_equals_reference(seed, n_min, kappa):
    model, ref = model_and_reference(seed, n_min, kappa)
    for lam in (0.0, 0.01, 0.05, 0.2, 0.7):
        fast = solve_lagrangian(model, lam)
        value, asks, usage = ref.lagrangian(lam)
        for s in ref.states:
            i = model.lookup(s)
            assert fast.value[i] == pytest.approx(value[s], abs=1e-12)
            assert bool(fast.asks[i]) == asks[s], (s, lam)
            assert fast.usage[i] == pytest.approx(usage[s], abs=1e-12)
        assert fast.mean_usage == pytest.approx(ref.mean_over_tasks(usage), abs=1e-12)
        success = {s: value[s] + lam * usage[s] for s in ref.states}
        assert fast.predicted_success == pytest.approx(ref.mean_over_tasks(success), abs=1e-12)
    assert model.n_states == len(ref.states)


@pytest.mark.parametrize("seed,n_min,kappa", SETTINGS)
def test_budget_dp_equals_reference(seed, n_min, kappa):
    model, ref = model_and_reference(seed, n_min, kappa)
    cap = 3
    fast = solve_budget(model, cap)
    slow = ref.budget(cap)
    for (s, b), (v, ask) in slow.items():
        i = model.lookup(s)
        assert fast.values[i, b] == pytest.approx(v, abs=1e-12)
        assert bool(fast.asks[i, b]) == ask, (s, b)
        assert fast.value_of(s, b) == pytest.approx(v, abs=1e-12)
        assert fast.ask(s, b) == ask
    v_root = ref.mean_over_tasks({s: slow[(s, cap)][0] for s in ref.states})
    assert fast.predicted_success == pytest.approx(v_root, abs=1e-12)
    assert fast.value() == pytest.approx(v_root, abs=1e-12)
    assert np.all(fast.asks[:, 0] == 0)  # no budget, no asking


def test_evaluating_the_optimal_policy_gives_its_value():
    model, _ = model_and_reference(5)
    sol = solve_budget(model, 2)
    ev = evaluate_policy(model, sol.asks.astype(float), 2)
    np.testing.assert_allclose(ev.success, sol.values, atol=1e-12)
    np.testing.assert_allclose(ev.usage, sol.usage, atol=1e-12)


# ----------------------------------------------------------------------------------- λ and C
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_usage_is_non_increasing_in_lambda(seed):
    model, _ = model_and_reference(seed, n_episodes=60)
    lams = np.linspace(0.0, 1.0, 81)
    usage = [solve_lagrangian(model, lam).mean_usage for lam in lams]
    assert usage[0] > usage[-1] == 0.0  # someone asks at λ = 0; nobody at λ = 1
    assert all(a >= b - 1e-12 for a, b in zip(usage, usage[1:], strict=False))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_bisection_meets_the_budget_and_the_mix_meets_it_exactly(seed):
    model, _ = model_and_reference(seed, n_episodes=60)
    u0 = solve_lagrangian(model, 0.0).mean_usage
    for frac in (0.1, 0.3, 0.6, 0.9):
        c = frac * u0
        res = search_lambda(model, c)
        assert res.upper.mean_usage <= c + 1e-12
        assert res.lower is not None and res.lower.mean_usage > c
        assert res.lam - res.lower.lam <= 1e-9  # the neighbouring policies are the step's two sides
        assert res.mean_usage == pytest.approx(c, abs=1e-12)
        assert 0.0 <= res.mix <= 1.0
        # smallest λ: a touch below it already asks too much
        assert solve_lagrangian(model, max(0.0, res.lam - 1e-7)).mean_usage > c
    loose = search_lambda(model, u0 + 1.0)
    assert loose.lam == 0.0 and loose.lower is None and loose.mean_usage == pytest.approx(u0)


def test_exact_dp_at_a_hard_cap_beats_every_lagrangian_policy():
    for seed in range(4):
        model, _ = model_and_reference(seed, n_episodes=60)
        for cap in (0, 1, 2, 3):
            best = solve_budget(model, cap).predicted_success
            for lam in np.linspace(0.0, 1.0, 21):
                capped = evaluate_policy(model, solve_lagrangian(model, lam).asks.astype(float), cap)
                assert capped.predicted_success <= best + 1e-12
            mix = search_lambda(model, cap)
            for sol in (mix.upper, mix.lower):
                if sol is not None:
                    assert evaluate_policy(model, sol.asks.astype(float), cap).predicted_success <= best + 1e-12


def test_both_forms_agree_when_the_cap_does_not_bind():
    model, _ = model_and_reference(7, n_episodes=60)
    free = solve_budget(model, math.inf)
    lag = solve_lagrangian(model, 0.0)
    np.testing.assert_allclose(free.values[:, -1], lag.value, atol=1e-12)
    assert np.array_equal(free.asks[:, -1], lag.asks)
    assert free.predicted_success == pytest.approx(lag.predicted_success, abs=1e-12)
    assert free.ask(model.keys[0], 100)  == bool(lag.asks[0])  # any budget beyond the horizon is "free"


def test_reachable_labels_are_a_subset_holding_the_roots():
    model, _ = model_and_reference(2, n_episodes=60)
    sol = solve_budget(model, 1)
    reach = reachable_budget(model, sol.asks)
    roots = model.root_weights()[0]
    assert reach[roots, 1].all() and not reach[roots, 0].any()
    labels = sol.labels(reachable_only=True)
    assert np.array_equal(labels >= 0, reach)
    assert np.array_equal(labels[reach], sol.asks[reach].astype(np.int8))
    assert 0 < reach.sum() < reach.size
    # after an ask at b = 1 nothing is left: successors of asking states only appear with b = 0
    for i in np.flatnonzero(sol.asks[:, 1] & reach[:, 1]):
        lo, hi = model.succ_ptr[1][i], model.succ_ptr[1][i + 1]
        assert reach[model.succ_idx[1][lo:hi], 0].all()


def test_bad_budgets_are_errors():
    model, _ = model_and_reference(0)
    with pytest.raises(DPError, match="budget"):
        solve_budget(model, 1.5)
    with pytest.raises(DPError, match="budget"):
        solve_budget(model, -1)
    with pytest.raises(DPError, match="lam"):
        solve_lagrangian(model, -0.1)
    with pytest.raises(DPError, match="exceeds the solved budget"):
        solve_budget(model, 1).ask(model.keys[0], 2)
    with pytest.raises(DPError, match="not in the table"):
        solve_budget(model, 1).ask((0, "nope", ""), 1)


# ----------------------------------------------------------------------------------- critical state
CRITICAL_PRM = {  # PRM(s, 0), PRM(s, 1): low early (hard-looking, but help changes nothing there)
    "": (0.20, 0.22),
    "a": (0.45, 0.46),
    "a/a": (0.50, 0.51),
    "a/a/a": (0.55, 0.56),
    "a/a/a/a": (0.50, 0.95),  # the late critical state
}


def critical_prm(items):
    return np.array([CRITICAL_PRM[text.split(":", 1)[1]][int(h)] for text, h in items])


def critical_episodes(n: int = 40):
    """One path of 5 decisions; help at steps 0-3 leads on unchanged, help at step 4 wins, base wins 1/2."""
    rng = random.Random(0)
    episodes = []
    base_runs = 0
    for _ in range(n):
        trans = []
        path = []
        for j in range(5):
            key = "/".join(path)
            helped = rng.random() < 0.5
            path.append("a")
            trans.append(Transition("task", key, f"task:{key}", helped, "expert" if helped else "agent",
                                    "/".join(path), j == 4))
        if not trans[-1].helped:
            base_runs += 1
        success = True if trans[-1].helped else base_runs % 2 == 0  # the base wins every other time
        episodes.append(Episode(trans, success))
    return episodes


def test_dp_asks_at_the_critical_state_and_the_prm_threshold_asks_early():
    episodes = critical_episodes()
    model = TabularModel.from_episodes(episodes, prm=critical_prm)
    sol = solve_budget(model, 1)
    asks_at = [key[2] for key in model.keys if sol.asks[model.lookup(key), 1]]
    assert asks_at == ["a/a/a/a"]
    assert sol.predicted_success == pytest.approx(1.0)
    base = [ep.success for ep in episodes if not ep.transitions[-1].helped]
    assert solve_budget(model, 0).predicted_success == pytest.approx(np.mean(base))
    assert 0.4 < np.mean(base) < 0.6

    rule = PRMThreshold.fit(model, 1)
    states = [Transition("task", k, f"task:{k}", False, "agent", "", False) for k in CRITICAL_PRM]
    assert [rule.ask(s, j, 1) for j, s in enumerate(states)] == [True, False, False, False, False]
    assert rule.fitted_usage == pytest.approx(1.0)
    # its success under the cap: the budget goes at step 0, where it buys nothing
    threshold_policy = np.array([critical_prm([(f"task:{k[2]}", False)])[0] < rule.tau for k in model.keys], float)
    assert evaluate_policy(model, threshold_policy, 1).predicted_success < sol.predicted_success - 0.3

    # the gain rule does find this one (help's gain is largest there), so it is the better baseline
    gain = PRMGainThreshold.fit(model, 1)
    assert [gain.ask(s, j, 1) for j, s in enumerate(states)] == [False, False, False, False, True]


def test_random_rate_matches_a_target_usage():
    model, _ = model_and_reference(1, n_episodes=60)
    rnd = RandomAsk.matched(model, 1.0)
    assert 0 < rnd.rate < 1
    assert uncapped_usage(model, np.full(model.n_states, rnd.rate)) == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("state_key", ["prefix", "bins"])
def test_more_budget_never_predicts_less_success(state_key):
    eps = random_episodes(6, n_episodes=80)
    model = TabularModel.from_episodes(eps, prm=hash_prm, state_key=state_key)
    sol = solve_budget(model, 4)
    assert np.all(np.diff(sol.values, axis=1) >= -1e-12)
    assert np.all(sol.usage <= np.arange(5)[None, :] + 1e-12)  # never more help than the budget left
    ev = evaluate_policy(model, sol.asks.astype(float), 4)
    np.testing.assert_allclose(ev.success, sol.values, atol=1e-12)
