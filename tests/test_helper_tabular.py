"""The tabular model: counts and P̂ from logged episodes, terminal mean success, the PRM fallback
below n_min, shrinkage, the two state keys, the level-by-level layout, and clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from agentcritic.helper.dp import solve_lagrangian
from agentcritic.helper.tabular import Episode, TabularError, TabularModel, as_episode, bin_of
from agentcritic.types import Transition

PRM = {"root": (0.3, 0.6), "x": (0.2, 0.9), "y": (0.7, 0.8)}


def prm(items):
    return np.array([PRM[text][int(h)] for text, h in items])


def tr(key, text, helped, nxt, done=False, success=None, task="t"):
    return Transition(task, key, text, helped, "expert" if helped else "agent", nxt, done, success)


def episodes():
    """root --h0--> x (twice: success, failure), root --h0--> y (once, success), root --h1--> y (success)."""
    return [
        Episode([tr("", "root", False, "x"), tr("x", "x", False, "x/end", True)], True),
        Episode([tr("", "root", False, "x"), tr("x", "x", False, "x/end", True)], False),
        Episode([tr("", "root", False, "y"), tr("y", "y", True, "y/end", True)], True),
        Episode([tr("", "root", True, "y"), tr("y", "y", False, "y/end", True)], True),
    ]


def test_counts_probabilities_and_terminal_success():
    m = TabularModel.from_episodes(episodes(), prm=prm)
    assert m.keys == [(0, "t", ""), (1, "t", "x"), (1, "t", "y")]
    root, x, y = 0, 1, 2
    assert m.counts.tolist() == [[3, 1], [2, 0], [1, 1]]
    lo, hi = m.succ_ptr[0][root], m.succ_ptr[0][root + 1]
    assert dict(zip(m.succ_idx[0][lo:hi].tolist(), m.succ_count[0][lo:hi].tolist(), strict=True)) == {x: 2, y: 1}
    np.testing.assert_allclose(m.edge_weight[0][lo:hi], [2 / 3, 1 / 3])
    assert m.term_value[x].tolist() == [0.5, 0.0]  # mean success of the two endings after x, h=0
    assert m.term_value[y].tolist() == [1.0, 1.0]
    assert m.level_ptr.tolist() == [0, 1, 3]
    assert m.roots["t"][0].tolist() == [root] and m.roots["t"][1].tolist() == [4.0]
    s = m.summary()
    assert s["states"] == 3 and s["transitions"] == 8 and s["episodes"] == 4 and s["states_with_both_h"] == 2


def test_prm_fallback_below_n_min():
    m = TabularModel.from_episodes(episodes(), prm=prm)
    x = m.lookup((1, "t", "x"))
    # x was never left by the intervention: Q(x, 1) is PRM(x, 1)
    sol = solve_lagrangian(m, 0.0)
    assert sol.q[x].tolist() == pytest.approx([0.5, 0.9])
    assert sol.asks[x]
    # with n_min = 2, the single h=1 visit at y no longer counts: PRM(y, 1) = 0.8 instead of 1.0
    m2 = TabularModel.from_episodes(episodes(), prm=prm, n_min=2)
    y = m2.lookup((1, "t", "y"))
    assert solve_lagrangian(m2, 0.0).q[y].tolist() == pytest.approx([0.7, 0.8])
    # and root's h=1 (one visit) falls back too
    assert solve_lagrangian(m2, 0.0).q[0, 1] == pytest.approx(0.6)


def test_shrinkage_towards_the_prm():
    kappa = 2.0
    m = TabularModel.from_episodes(episodes(), prm=prm, kappa=kappa)
    sol = solve_lagrangian(m, 0.0)
    x, y = m.lookup((1, "t", "x")), m.lookup((1, "t", "y"))
    assert sol.q[x, 0] == pytest.approx((2 * 0.5 + kappa * 0.2) / (2 + kappa))
    assert sol.q[y, 1] == pytest.approx((1 * 1.0 + kappa * 0.8) / (1 + kappa))
    table_root0 = (2 * sol.value[x] + 1 * sol.value[y]) / 3
    assert sol.q[0, 0] == pytest.approx((3 * table_root0 + kappa * 0.3) / (3 + kappa))


def test_no_prm_is_fine_only_where_the_table_suffices():
    full = [
        Episode([tr("", "root", False, "e", True)], True),
        Episode([tr("", "root", True, "e", True)], False),
    ]
    m = TabularModel.from_episodes(full)
    assert solve_lagrangian(m, 0.0).q[0].tolist() == [1.0, 0.0]
    with pytest.raises(TabularError, match="needs a PRM value"):
        TabularModel.from_episodes(episodes())
    with pytest.raises(TabularError, match="needs a PRM scorer"):
        TabularModel.from_episodes(episodes(), state_key="bins")


def test_bins_keys_share_states_across_tasks():
    eps = [
        Episode([tr("", "root", False, "x", task="a"), tr("x", "x", True, "e", True, task="a")], True),
        Episode([tr("", "root", True, "x", task="b"), tr("x", "y", False, "e", True, task="b")], False),
    ]
    m = TabularModel.from_episodes(eps, state_key="bins", prm=prm, n_bins=10)
    # step 0: PRM(root,0)=0.3 -> bin 3, no previous actor; step 1: bins of x (0.2) and y (0.7), by last actor
    assert m.keys == [(0, 3, "none"), (1, 2, "agent"), (1, 7, "expert")]
    assert m.counts[0].tolist() == [1, 1]
    assert sorted(m.roots) == ["a", "b"] and m.roots["a"][0].tolist() == m.roots["b"][0].tolist() == [0]
    assert m.key_for(step=1, state_text="x", last_actor="agent") == (1, 2, "agent")
    assert m.key_for(step=1, prm_value=0.75, last_actor="expert") == (1, 7, "expert")
    assert [bin_of(v, 4) for v in (0.0, 0.24, 0.25, 0.99, 1.0)] == [0, 0, 1, 3, 3]


def test_states_are_ordered_level_by_level():
    eps = [
        Episode([tr("", "r", False, "a"), tr("a", "r", False, "a/b"), tr("a/b", "r", False, "e", True)], True),
        Episode([tr("", "r", True, "c"), tr("c", "r", False, "e", True)], False),
    ]
    m = TabularModel.from_episodes(eps, prm=lambda items: np.full(len(items), 0.5))
    assert m.depth.tolist() == sorted(m.depth.tolist()) == [0, 1, 1, 2]
    for h in (0, 1):
        rows = m.edge_row[h]
        assert np.all(m.depth[m.succ_idx[h]] == m.depth[rows] + 1)
    assert [(a, b) for a, b in m.levels()] == [(3, 4), (1, 3), (0, 1)]


def test_bad_episodes_name_what_is_wrong():
    with pytest.raises(TabularError, match="episode 0: no success"):
        TabularModel.from_episodes([[tr("", "r", False, "e", True)]])
    assert as_episode([tr("", "r", False, "e", True, True)]).success is True
    assert as_episode({"transitions": [tr("", "r", False, "e", True).to_dict()], "success": False}).success is False
    broken = [tr("", "r", False, "a"), tr("zzz", "r", False, "e", True)]
    with pytest.raises(TabularError, match="episode 0 .*step 1: state key 'zzz'"):
        TabularModel.from_episodes([Episode(broken, True)], prm=prm)
    mixed = [tr("", "r", False, "a", task="t1"), tr("a", "r", False, "e", True, task="t2")]
    with pytest.raises(TabularError, match="task id 't2'"):
        TabularModel.from_episodes([Episode(mixed, True)])
    with pytest.raises(TabularError, match="outside"):
        TabularModel.from_episodes(episodes(), prm=lambda items: np.full(len(items), 1.5))
    with pytest.raises(TabularError, match="state_key"):
        TabularModel.from_episodes(episodes(), prm=prm, state_key="tree")  # type: ignore[arg-type]
    with pytest.raises(TabularError, match="empty"):
        TabularModel.from_episodes([])
