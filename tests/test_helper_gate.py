"""The Gate's hard cap, per-episode reset, and the baseline deciders behind it (never, always,
random, DP policy and its Lagrangian mix)."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from agentcritic.helper.baselines import AlwaysAsk, DPPolicy, NeverAsk, RandomAsk
from agentcritic.helper.dp import search_lambda, solve_budget, solve_lagrangian
from agentcritic.helper.gate import Decider, DecisionState, Gate
from agentcritic.helper.tabular import TabularModel

from test_helper_dp import critical_episodes, critical_prm, hash_prm, random_episodes  # noqa: E402


class Recorder:
    """A decider that wants help at every step and records what the Gate told it."""

    def __init__(self):
        self.calls = []
        self.resets = 0

    def ask(self, state, step, budget_left):
        self.calls.append((step, budget_left))
        return True

    def reset(self):
        self.resets += 1


def state(key="", text="s", task="task"):
    return DecisionState(task, key, text)


@pytest.mark.parametrize("budget", [0, 1, 2, 3, 5, math.inf])
def test_gate_never_exceeds_the_budget(budget):
    rng = random.Random(int(budget) if math.isfinite(budget) else 99)
    deciders = [AlwaysAsk(), RandomAsk(0.5, seed=1), RandomAsk(1.0), Recorder()]
    for decider in deciders:
        gate = Gate(decider, budget)
        for _ in range(50):
            gate.reset()
            asked = sum(gate.ask(state(), step) for step in range(rng.randint(0, 15)))
            assert asked == gate.used <= budget
            assert gate.budget_left == budget - asked


def test_gate_tells_the_helper_the_budget_left_and_stops_asking_it():
    rec = Recorder()
    gate = Gate(rec, 2)
    gate.reset()
    answers = [gate.ask(state(), k) for k in range(5)]
    assert answers == [True, True, False, False, False]
    assert rec.calls == [(0, 2), (1, 1)]  # not consulted once the budget is spent
    gate.reset()
    assert gate.used == 0 and rec.resets == 2 and gate.ask(state(), 0)
    assert isinstance(rec, Decider)


def test_gate_rejects_bad_budgets_and_helpers():
    with pytest.raises(ValueError, match="budget"):
        Gate(NeverAsk(), -1)
    with pytest.raises(ValueError, match="whole number"):
        Gate(NeverAsk(), 1.5)
    with pytest.raises(TypeError, match="ask"):
        Gate(object(), 1)  # type: ignore[arg-type]


def test_never_and_always():
    never, always = Gate(NeverAsk(), math.inf), Gate(AlwaysAsk(), 3)
    for g in (never, always):
        g.reset()
    assert [never.ask(state(), k) for k in range(6)] == [False] * 6
    assert [always.ask(state(), k) for k in range(6)] == [True, True, True, False, False, False]


def test_random_rate_over_many_steps():
    rnd = RandomAsk(0.25, seed=3)
    asks = [rnd.ask(state(), k, 100) for k in range(4000)]
    assert abs(np.mean(asks) - 0.25) < 0.03
    assert RandomAsk.from_usage(1.5, 10).rate == pytest.approx(0.15)
    with pytest.raises(ValueError):
        RandomAsk(1.5)


def test_dp_policy_behind_the_gate_asks_at_the_critical_state():
    model = TabularModel.from_episodes(critical_episodes(), prm=critical_prm)
    gate = Gate(DPPolicy(solve_budget(model, 1), model), 1)
    gate.reset()
    path = ["", "a", "a/a", "a/a/a", "a/a/a/a"]
    assert [gate.ask(state(k, f"task:{k}"), j) for j, k in enumerate(path)] == [False, False, False, False, True]
    # an unlogged state is answered "don't ask" and counted
    policy = gate.helper
    assert policy.ask(state("b", "task:b"), 1, 1) is False and policy.misses == 1


def test_dp_mix_runs_the_lower_policy_in_the_right_share_of_episodes():
    model = TabularModel.from_episodes(random_episodes(1, n_episodes=60), prm=hash_prm)
    u0 = solve_lagrangian(model, 0.0).mean_usage
    res = search_lambda(model, 0.5 * u0)
    assert res.lower is not None and 0 < res.mix < 1
    policy = DPPolicy(res, model, seed=0)
    picks = []
    for _ in range(2000):
        policy.reset()
        picks.append(policy._active is res.lower)
    assert abs(np.mean(picks) - res.mix) < 0.04
    # the policy answers with the drawn policy's decisions
    root = model.root_weights()[0][0]
    key = model.keys[root]
    s = DecisionState(key[1], key[2], "")
    policy._active = res.lower
    assert policy.ask(s, 0, 5) == bool(res.lower.asks[root])
    assert policy.ask(s, 0, 0) is False


def test_make_baseline_builds_each_fitted_for_the_budget():
    from agentcritic.helper.baselines import PRMGainThreshold, PRMThreshold, make_baseline
    from agentcritic.helper.dp import uncapped_usage

    model = TabularModel.from_episodes(random_episodes(2, n_episodes=60), prm=hash_prm)
    kinds = {name: type(make_baseline(name, model, 1)) for name in ("never", "always", "random", "prm_threshold",
                                                                   "prm_gain", "dp")}
    assert kinds == {"never": NeverAsk, "always": AlwaysAsk, "random": RandomAsk, "prm_threshold": PRMThreshold,
                     "prm_gain": PRMGainThreshold, "dp": DPPolicy}
    rnd = make_baseline("random", model, 1)
    assert uncapped_usage(model, np.full(model.n_states, rnd.rate)) == pytest.approx(1.0, abs=1e-6)
    for name in ("prm_threshold", "prm_gain"):
        rule = make_baseline(name, model, 1)
        assert rule.fitted_usage <= 1.0
    assert make_baseline("dp", model, math.inf).solution.budget == model.n_levels
    with pytest.raises(ValueError, match="unknown baseline"):
        make_baseline("oracle", model, 1)
