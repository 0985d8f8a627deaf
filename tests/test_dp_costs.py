"""Costs and takeovers in the budgeted DP: the budget is in cost units, the solvers choose between
two interventions of different costs exactly as a brute-force search over every ask set does, the
Lagrangian charges λ·cost, a k-step takeover is one request in the table as in the Gate, bad cost
tables are one-paragraph errors, and a helper trained under one cost table is refused under another.
"""

from __future__ import annotations

import itertools
import math
import random
from collections import Counter, defaultdict
from functools import lru_cache

import numpy as np
import pytest

from agentcritic import envs
from agentcritic.agents import RandomAgent
from agentcritic.helper.baselines import DPPolicy
from agentcritic.helper.dp import (
    DPError,
    check_costs,
    evaluate_policy,
    reachable_budget,
    search_lambda,
    solve_budget,
    solve_lagrangian,
)
from agentcritic.helper.episode import run_helped_episode
from agentcritic.helper.gate import Gate
from agentcritic.helper.helper_model import Helper, HelperCostError
from agentcritic.helper.interventions import ExpertIntervention
from agentcritic.helper.tabular import Episode, TabularModel, decision_steps
from agentcritic.types import Transition

from test_helper_dp import hash_prm  # noqa: E402

EPS = 1e-12
COSTS = {"cheap": 1, "dear": 3}


# ----------------------------------------------------------------------------------- data
def two_actor_episodes(seed: int, n_tasks: int = 3, n_episodes: int = 60, max_depth: int = 5, branching: int = 3):
    """Random per-task trees; each episode is helped (at random steps) by one of two actors: 'dear'
    picks the good action 0 far more often than 'cheap'."""
    rng = random.Random(seed)
    good: dict = {}
    episodes = []
    for e in range(n_episodes):
        task = f"t{e % n_tasks}"
        actor = rng.choice(["cheap", "dear"])
        skill = 0.95 if actor == "dear" else 0.5
        p_help = rng.choice([0.0, 0.3, 0.6, 1.0])
        path: list[str] = []
        trans = []
        for _ in range(rng.randint(1, max_depth)):
            key = "/".join(path)
            helped = rng.random() < p_help
            action = "0" if helped and rng.random() < skill else str(rng.randrange(branching))
            path.append(action)
            trans.append(Transition(task, key, f"{task}:{key}", helped, actor if helped else "agent",
                                    "/".join(path), False))
        trans[-1].done = True
        final = (task, "/".join(path))
        good.setdefault(final, 0.1 + 0.8 * path.count("0") / len(path))
        success = rng.random() < good[final]
        episodes.append(Episode(trans, success))
    return episodes


class Reference:
    """Plain-Python empirical model with one action per actor (prefix keys, n_min = 1, no kappa),
    solved by exhaustive recursion over every action at every (state, budget left)."""

    def __init__(self, episodes, prm):
        self.N = defaultdict(Counter)
        self.succ = defaultdict(Counter)
        self.term = defaultdict(float)
        self.texts = defaultdict(set)
        self.roots = defaultdict(Counter)
        for ep in episodes:
            keys = [(j, t.task_id, t.state_key) for j, t in enumerate(ep.transitions)]
            self.roots[ep.transitions[0].task_id][keys[0]] += 1
            for j, t in enumerate(ep.transitions):
                h = t.actor if t.helped else None
                self.N[keys[j]][h] += 1
                self.texts[keys[j]].add(t.state_text)
                if j + 1 < len(keys):
                    self.succ[(keys[j], h)][keys[j + 1]] += 1
                else:
                    self.term[(keys[j], h)] += float(ep.success)
        self.prm = prm
        self.actors = sorted({h for counts in self.N.values() for h in counts if h is not None})
        self.states = list(self.N)

    def prm_of(self, s, h):
        texts = sorted(self.texts[s])
        return sum(float(self.prm([(t, h is not None)])[0]) for t in texts) / len(texts)

    def q(self, s, h, value):
        n = self.N[s][h]
        if n == 0:
            return self.prm_of(s, h)
        return (self.term[(s, h)] + sum(c * value(s2) for s2, c in self.succ[(s, h)].items())) / n

    def usage(self, s, h, usage, cost):
        n = self.N[s][h]
        here = cost[h]
        if n == 0:
            return here
        return here + sum(c * usage(s2) for s2, c in self.succ[(s, h)].items()) / n

    def budget(self, costs, cap):
        cost = {None: 0, **{a: costs.get(a, 1) for a in self.actors}}

        @lru_cache(maxsize=None)
        def v(s, b):
            best, pick = self.q(s, None, lambda s2: v(s2, b)[0]), None
            for a in self.actors:
                if cost[a] <= b:
                    qa = self.q(s, a, lambda s2, a=a: v(s2, b - cost[a])[0])
                    if qa > best + EPS:
                        best, pick = qa, a
            return best, pick

        return v

    def lagrangian(self, costs, lam):
        cost = {None: 0, **{a: costs.get(a, 1) for a in self.actors}}

        @lru_cache(maxsize=None)
        def v(s):
            best, pick = self.q(s, None, lambda s2: v(s2)[0]), None
            for a in self.actors:
                qa = self.q(s, a, lambda s2: v(s2)[0]) - lam * cost[a]
                if qa > best + EPS:
                    best, pick = qa, a
            return best, pick

        @lru_cache(maxsize=None)
        def u(s):
            return self.usage(s, v(s)[1], u, cost)

        return v, u

    def mean_over_tasks(self, per_state):
        total = 0.0
        for roots in self.roots.values():
            n = sum(roots.values())
            total += sum(c / n * per_state(s) for s, c in roots.items())
        return total / len(self.roots)


def model_and_reference(seed):
    eps = two_actor_episodes(seed)
    return TabularModel.from_episodes(eps, prm=hash_prm), Reference(eps, hash_prm)


# ----------------------------------------------------------------------------------- exact DP
@pytest.mark.parametrize("seed", range(4))
def test_budget_dp_with_two_costs_equals_the_reference(seed):
    model, ref = model_and_reference(seed)
    assert model.actors == ["cheap", "dear"] == ref.actors
    v = ref.budget(COSTS, 7)
    sol = solve_budget(model, 7, COSTS)
    for s in ref.states:
        i = model.lookup(s)
        for b in range(8):
            value, pick = v(s, b)
            assert sol.values[i, b] == pytest.approx(value, abs=1e-12), (s, b)
            assert sol.actor(s, b) == pick, (s, b)
    for budget in (0, 3, 4, 5):
        small = solve_budget(model, budget, COSTS)
        assert small.predicted_success == pytest.approx(ref.mean_over_tasks(lambda s, b=budget: v(s, b)[0]), abs=1e-12)


def chain_episodes(depth: int = 3, copies: int = 12, seed: int = 0):
    """One task whose every action path of length ``depth`` is logged ``copies`` times: the agent
    plays 'a', the actor 'cheap' plays 'c', 'dear' plays 'd' (each path its own success rate, higher
    the more help it had, dear help most)."""
    rng = random.Random(seed)
    who = {"a": "agent", "c": "cheap", "d": "dear"}
    episodes = []
    for path in itertools.product("acd", repeat=depth):
        wins = min(copies, path.count("c") + 3 * path.count("d") + rng.randint(0, 2))
        for k in range(copies):
            trans = [Transition("t", "".join(path[:j]), f"t:{''.join(path[:j])}", path[j] != "a", who[path[j]],
                                "".join(path[: j + 1]), j == depth - 1) for j in range(depth)]
            episodes.append(Episode(trans, k < wins))
    return episodes


@pytest.mark.parametrize("budget", [0, 1, 2, 3, 4, 5, 7, 9])
def test_budget_dp_equals_brute_force_over_every_ask_set(budget):
    """Every transition is deterministic, so a policy from the start is its sequence of actions: the
    best sequence whose cost fits the budget is the optimum."""
    episodes = chain_episodes()
    model = TabularModel.from_episodes(episodes)
    success = Counter()
    logged = Counter()
    for ep in episodes:
        path = "".join({"agent": "a", "cheap": "c", "dear": "d"}[t.actor] for t in ep.transitions)
        success[path] += ep.success
        logged[path] += 1
    price = {"a": 0, "c": COSTS["cheap"], "d": COSTS["dear"]}
    best = max(success[p] / logged[p] for p in logged if sum(price[x] for x in p) <= budget)
    sol = solve_budget(model, budget, COSTS)
    assert sol.predicted_success == pytest.approx(best, abs=1e-12)
    # and the plan it follows spends no more than the budget
    assert sol.mean_usage <= budget + 1e-12


def test_no_costs_is_unit_costs_and_costs_change_the_plan():
    model, _ = model_and_reference(0)
    plain, unit = solve_budget(model, 4), solve_budget(model, 4, {"cheap": 1, "dear": 1.0})
    assert np.array_equal(plain.values, unit.values) and np.array_equal(plain.choice, unit.choice)
    assert np.array_equal(plain.usage, unit.usage)
    priced = solve_budget(model, 4, COSTS)
    assert priced.predicted_success <= plain.predicted_success + 1e-12  # dearer help can only cost success
    assert not np.array_equal(priced.choice, plain.choice)
    assert priced.costs == {"cheap": 1.0, "dear": 3.0}


def test_evaluating_the_budget_policy_under_costs_gives_its_value():
    eps = [ep for ep in two_actor_episodes(1) if all(t.actor in ("agent", "dear") for t in ep.transitions)]
    model = TabularModel.from_episodes(eps, prm=hash_prm)
    assert model.actors == ["dear"]
    sol = solve_budget(model, 6, {"dear": 3})
    ev = evaluate_policy(model, sol.asks, 6, {"dear": 3})
    np.testing.assert_allclose(ev.success, sol.values, atol=1e-12)
    np.testing.assert_allclose(ev.usage, sol.usage, atol=1e-12)
    assert np.all(sol.usage[:, 6] <= 6 + 1e-12) and set(np.unique(sol.usage[:, :3])) == {0.0}


def test_reachable_pairs_move_down_by_the_cost_asked():
    model, _ = model_and_reference(2)
    sol = solve_budget(model, 6, COSTS)
    reach = reachable_budget(model, sol.choice, COSTS)
    assert reach[model.root_weights()[0], 6].all()
    labels = sol.labels(reachable_only=True)
    for i, b in zip(*np.nonzero(reach & (sol.choice == 2)), strict=True):  # asked 'dear' (cost 3) here
        lo, hi = model.succ_ptr[2][i], model.succ_ptr[2][i + 1]
        assert reach[model.succ_idx[2][lo:hi], b - 3].all()
        assert labels[i, b] == 1


# ----------------------------------------------------------------------------------- Lagrangian
@pytest.mark.parametrize("seed", range(3))
def test_lagrangian_charges_lambda_times_cost(seed):
    model, ref = model_and_reference(seed)
    for lam in (0.0, 0.02, 0.1, 0.3):
        sol = solve_lagrangian(model, lam, COSTS)
        v, u = ref.lagrangian(COSTS, lam)
        for s in ref.states:
            i = model.lookup(s)
            assert sol.value[i] == pytest.approx(v(s)[0], abs=1e-12)
            pick = v(s)[1]
            assert int(sol.choice[i]) == (0 if pick is None else 1 + model.actors.index(pick))
            assert sol.usage[i] == pytest.approx(u(s), abs=1e-12)


@pytest.mark.parametrize("seed", range(3))
def test_lambda_search_meets_a_budget_in_cost_units(seed):
    model, _ = model_and_reference(seed)
    free = solve_lagrangian(model, 0.0, COSTS)
    for budget in (0.5, 1.0, 2.5):
        if budget >= free.mean_usage:
            continue
        res = search_lambda(model, budget, costs=COSTS)
        assert res.upper.mean_usage <= budget + 1e-9
        assert res.mean_usage == pytest.approx(budget, abs=1e-6)
        assert 0 < res.lam <= 1.0  # the cheapest request costs 1: λ ≤ 1 silences every ask
    # where the cap does not bind, both forms agree
    cap = solve_budget(model, math.inf, COSTS)
    assert cap.predicted_success == pytest.approx(free.predicted_success, abs=1e-9)


# ----------------------------------------------------------------------------------- takeovers
def test_decision_steps_cut_runs_into_requests_of_the_takeover():
    def run(actors):
        return [Transition("t", str(j), "", a != "agent", a, str(j + 1), False) for j, a in enumerate(actors)]

    trans = run(["x", "x", "x", "x", "agent", "x", "y", "y"])
    assert decision_steps(trans, {"x": 3}) == [0, 3, 4, 5, 6, 7]
    assert decision_steps(trans, {"x": 3, "y": 2}) == [0, 3, 4, 5, 6]
    assert decision_steps(trans, {}) == list(range(8))


def test_a_takeover_is_one_request_in_the_table_the_dp_and_the_gate():
    env = envs.make("household")
    help_ = ExpertIntervention(takeover=3, cost=2)
    rng = random.Random(0)
    episodes, requests = [], 0
    for k, task in enumerate(env.task_ids("train")[:4] * 3):
        ep = run_helped_episode(env, RandomAgent(seed=k), help_, task, lambda s, step: rng.random() < 0.3, seed=k)
        episodes.append(ep)
        requests += ep.interventions
    model = TabularModel.from_episodes(episodes, takeovers={"expert": 3}, n_min=1, prm=lambda items: [0.5] * len(items))
    assert model.actors == ["expert"]
    assert model.counts[:, 1].sum() == requests  # one decision per request, not one per helped step
    rows = np.repeat(np.arange(model.n_states), np.diff(model.succ_ptr[1]))
    assert np.all(model.depth[model.succ_idx[1]] == model.depth[rows] + 3)  # the request leads 3 steps on
    sol = solve_budget(model, 4, {"expert": 2})
    assert sol.mean_usage <= 4 + 1e-12
    assert not sol.usage[:, :2].any()  # less than one request's cost left: nothing asked
    assert sol.asks[:, 2].any() and np.all(sol.usage[:, 2:4] <= 2 + 1e-12)  # a 3-step takeover costs 2, once
    # the Gate spends the same units: a budget of 4 buys two takeovers, never a third
    for k, task in enumerate(env.task_ids("train")[:4]):
        gate = Gate(DPPolicy(sol, model), 4, cost=help_.cost)
        gate.reset()
        ep = run_helped_episode(env, RandomAgent(seed=k), help_, task, lambda s, step: gate.ask(s, step), seed=k)
        assert ep.cost == gate.used <= 4 and ep.interventions == gate.requests <= 2


def test_the_gate_never_spends_more_than_the_budget_in_cost_units():
    class Always:
        def ask(self, state, step, budget_left):
            return True

    gate = Gate(Always(), 7, cost=3)
    gate.reset()
    assert [gate.ask("s", k) for k in range(4)] == [True, True, False, False]
    assert gate.used == 6 and gate.requests == 2 and gate.budget_left == 1
    with pytest.raises(ValueError, match="cost=0"):
        Gate(Always(), 3, cost=0)


# ----------------------------------------------------------------------------------- bad input
def test_bad_cost_tables_are_errors_naming_the_value_and_the_valid_ones():
    model, _ = model_and_reference(0)
    with pytest.raises(DPError, match=r"\['human'\].*\['cheap', 'dear'\]"):
        solve_budget(model, 3, {"human": 2})
    for bad in (0, -1, float("nan")):
        with pytest.raises(DPError, match=r"costs\['dear'\]=.*> 0"):
            solve_budget(model, 3, {"dear": bad})
        with pytest.raises(DPError, match="> 0"):
            solve_lagrangian(model, 0.1, {"dear": bad})
    with pytest.raises(DPError, match=r"costs\['dear'\]=1.5.*whole"):
        solve_budget(model, 3, {"dear": 1.5})
    assert solve_lagrangian(model, 0.1, {"dear": 1.5}).lam == 0.1  # the Lagrangian takes any positive cost
    with pytest.raises(DPError, match=r"budget=2: no intervention fits.*'cheap': 3.0.*at least 3"):
        solve_budget(model, 2, {"cheap": 3, "dear": 5})
    assert solve_budget(model, 0, {"cheap": 3, "dear": 5}).predicted_success > 0  # 0 = no help: fine
    with pytest.raises(DPError, match="budget=1"):
        check_costs(model, {"cheap": 3, "dear": 5}, [0, 1, 5, math.inf])


def test_a_helper_trained_under_one_cost_table_is_refused_under_another():
    helper = Helper(model=None, costs={"expert": 3})  # type: ignore[arg-type]
    helper.check_costs({"expert": 3.0})
    with pytest.raises(HelperCostError, match=r"\{'expert': 3.0\}.*\{'expert': 1\}"):
        helper.check_costs({"expert": 1})
    old = Helper(model=None)  # type: ignore[arg-type]  # trained before costs were recorded: unit costs
    old.check_costs({"expert": 1})
    with pytest.raises(HelperCostError, match="all 1"):
        old.check_costs({"expert": 2})
