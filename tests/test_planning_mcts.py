"""MCTS: finds the optimum with a perfect target, caches agent calls per state, scores only
finished or horizon-cut trajectories, counts its cost, and searches game24."""

from __future__ import annotations

from collections import Counter

import pytest

from agentcritic import envs, llm
from agentcritic.agents import RandomAgent, ReActAgent, rollout
from agentcritic.envs.base import StepOutcome, TextEnv
from agentcritic.planning import make_planner
from agentcritic.planning.mcts import MCTS
from agentcritic.rm.custom import EnvRewardTarget

GOAL = ("c", "a", "b")


class TreeEnv(TextEnv):
    """Three moves (a, b, c) at each of three levels; only the path c, a, b scores 1.

    A path that starts right gets partial credit (0.3 per correct leading move), so a search has
    something to follow; the agent's favourite move (a) is wrong at the first level.
    """

    name = "tree"

    def __init__(self, max_steps: int = 10) -> None:
        super().__init__(max_steps=max_steps)
        self.path: tuple[str, ...] = ()
        self.step_calls = 0

    def _task_ids(self, split: str) -> list[str]:
        return ["t0"]

    def _reset(self, task_id: str, seed: int | None) -> tuple[str, str]:
        self.path = ()
        return "You are at the root.", "Find the treasure."

    def _admissible(self) -> list[str]:
        return ["a", "b", "c"]

    def _step(self, action: str) -> StepOutcome:
        self.step_calls += 1
        if action not in ("a", "b", "c"):
            return StepOutcome("No such move.", self.score, False, valid=False)
        self.path += (action,)
        correct = 0
        for got, want in zip(self.path, GOAL):
            if got != want:
                break
            correct += 1
        done = len(self.path) == len(GOAL)
        score = 1.0 if self.path == GOAL else (0.3 * correct if done else 0.0)
        return StepOutcome(f"You are at {'/'.join(self.path)}.", score, done, success=self.path == GOAL)


class RecordingTarget(EnvRewardTarget):
    def __init__(self) -> None:
        super().__init__()
        self.seen = []

    def score(self, trajectories):
        self.seen.extend(trajectories)
        return super().score(trajectories)


class CountingAgent(ReActAgent):
    """ReActAgent that records the state (action prefix) of every distribution call."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.states: Counter = Counter()

    def distribution(self, history, info):
        self.states[tuple(history.actions)] += 1
        return super().distribution(history, info)


def _likes_a(messages, candidate):
    return 0.0 if candidate == "Action: a" else -2.0


def _agent() -> CountingAgent:
    return CountingAgent(llm.load("scripted", scores=_likes_a), few_shot=False)


def test_greedy_misses_the_goal_that_mcts_finds_with_a_perfect_target() -> None:
    env = TreeEnv()
    greedy = make_planner("greedy", _agent(), EnvRewardTarget()).solve(env, "t0")
    assert greedy.trajectory.actions == ["a", "a", "a"] and greedy.trajectory.score == 0.0
    result = make_planner("mcts", _agent(), EnvRewardTarget(), rollouts=25, expand_k=3).solve(env, "t0")
    assert tuple(result.trajectory.actions) == GOAL
    assert result.trajectory.success and result.rm_score == 1.0
    assert result.rm_score == max(result.meta["target_scores"])


def test_the_state_cache_never_repeats_an_agent_call() -> None:
    agent = _agent()
    result = make_planner("mcts", agent, EnvRewardTarget(), rollouts=25, expand_k=3).solve(TreeEnv(), "t0")
    assert agent.states and max(agent.states.values()) == 1
    assert result.cost.llm_calls == sum(agent.states.values()) == result.meta["agent_calls"]
    uncached_agent = _agent()
    uncached = make_planner("mcts", uncached_agent, EnvRewardTarget(), rollouts=25, expand_k=3,
                            cache=False).solve(TreeEnv(), "t0")
    assert max(uncached_agent.states.values()) > 1
    assert uncached.cost.llm_calls > result.cost.llm_calls
    assert tuple(uncached.trajectory.actions) == GOAL  # the cache changes the cost, not the search


def test_only_finished_or_horizon_cut_trajectories_are_scored_once_each() -> None:
    target = RecordingTarget()
    result = make_planner("mcts", _agent(), target, rollouts=20, expand_k=3).solve(TreeEnv(), "t0")
    assert all(len(t.steps) == 3 for t in target.seen)
    keys = [tuple(t.actions) for t in target.seen]
    assert len(keys) == len(set(keys)) == result.cost.rm_calls == len(result.candidates)
    assert result.meta["repeated_rollouts"] + len(keys) == 20
    cut = RecordingTarget()
    short = make_planner("mcts", _agent(), cut, rollouts=8, expand_k=3, horizon=2).solve(TreeEnv(), "t0")
    assert cut.seen and all(len(t.steps) == 2 and t.meta["horizon_cut"] for t in cut.seen)
    assert all(not t.success for t in short.candidates)


def test_env_steps_count_every_step_including_restores() -> None:
    env = TreeEnv()
    result = make_planner("mcts", _agent(), EnvRewardTarget(), rollouts=15, expand_k=3).solve(env, "t0")
    assert result.cost.env_steps == env.step_calls > sum(len(t.steps) for t in result.candidates)


def test_backup_discounts_and_q_modes(monkeypatch) -> None:
    planner = MCTS(_agent(), EnvRewardTarget(), rollouts=30, expand_k=3, gamma=0.5)
    captured = {}
    from agentcritic.planning import mcts as mcts_module

    original = mcts_module._Search.run

    def run(self):
        out = original(self)
        captured["search"] = self
        return out

    monkeypatch.setattr(mcts_module._Search, "run", run)
    planner.solve(TreeEnv(), "t0")
    root = captured["search"].root
    by_action = {ch.action: ch for ch in root.children}
    # the best return through "c" is the goal's score discounted over the two later steps
    assert by_action["c"].best == pytest.approx(0.5**2 * 1.0)
    assert by_action["a"].best == 0.0
    assert by_action["c"].q("mean") <= by_action["c"].q("max")
    assert root.visits == 30 == sum(ch.visits for ch in root.children)


def test_prior_and_mean_variants_search_too() -> None:
    for params in ({"prior": True}, {"q": "mean"}):
        result = make_planner("mcts", _agent(), EnvRewardTarget(), rollouts=30, expand_k=3, **params).solve(TreeEnv(), "t0")
        assert result.trajectory.success, params


def test_the_same_seed_gives_the_same_search() -> None:
    runs = [make_planner("mcts", _agent(), EnvRewardTarget(), rollouts=12, expand_k=2).solve(TreeEnv(), "t0", seed=5)
            for _ in range(2)]
    assert [t.actions for t in runs[0].candidates] == [t.actions for t in runs[1].candidates]


def test_agents_without_a_distribution_expand_the_admissible_actions() -> None:
    result = make_planner("mcts", RandomAgent(seed=0), EnvRewardTarget(), rollouts=30, expand_k=3).solve(TreeEnv(), "t0")
    assert result.trajectory.success and result.cost.llm_calls == 0


def test_expand_k_limits_the_branching() -> None:
    captured = {}
    from agentcritic.planning import mcts as mcts_module

    search = mcts_module._Search
    original = search.expand

    def expand(self, node):
        original(self, node)
        captured.setdefault("sizes", []).append(len(node.children))

    search.expand = expand
    try:
        make_planner("mcts", _agent(), EnvRewardTarget(), rollouts=10, expand_k=2).solve(TreeEnv(), "t0")
    finally:
        search.expand = original
    assert captured["sizes"] and set(captured["sizes"]) == {2}


def test_mcts_solves_a_game24_puzzle_that_greedy_fails() -> None:
    game24 = envs.make("game24")
    agent = ReActAgent(llm.load("scripted", default_score=-1.0), few_shot=False)
    assert not rollout(game24, agent, "901").success
    result = make_planner("mcts", agent, EnvRewardTarget(), rollouts=100).solve(game24, "901")
    assert result.trajectory.success and result.rm_score == 1.0
    assert result.trajectory.actions[-1].startswith("Answer:")
    assert result.cost.rm_calls == len(result.candidates) <= 100


def test_the_first_rollout_is_the_greedy_episode() -> None:
    game24 = envs.make("game24")
    for task in ("900", "903", "4"):  # tasks the greedy episode solves
        agent = ReActAgent(llm.load("scripted", default_score=-1.0), few_shot=False)
        greedy = rollout(game24, agent, task)
        result = make_planner("mcts", agent, EnvRewardTarget(), rollouts=5).solve(game24, task)
        assert result.candidates[0].actions == greedy.actions and result.trajectory.success


def test_an_exhausted_tree_stops_the_search_early() -> None:
    agent = _agent()
    result = make_planner("mcts", agent, EnvRewardTarget(), rollouts=500, expand_k=3).solve(TreeEnv(), "t0")
    assert result.meta["tree_exhausted"] is True
    assert len(result.candidates) == 27 == result.cost.rm_calls  # every leaf, each scored once
    assert result.meta["rollouts"] < 500
    assert len(agent.states) == 1 + 3 + 9  # each inner state asked once
