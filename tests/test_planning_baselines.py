"""Greedy, Sampling and Best-of-N; custom terms changing Best-of-N's pick; costs; make_planner."""

from __future__ import annotations

import pytest

from agentcritic import envs, llm
from agentcritic.agents import RandomAgent, ReActAgent, rollout
from agentcritic.envs.base import StepOutcome, TextEnv
from agentcritic.planning import METHODS, PARAMS, Cost, Planner, make_planner, method_params
from agentcritic.planning.accounting import sample_seed
from agentcritic.rm.custom import CustomTarget, EnvRewardTarget, make_target


class CorridorEnv(TextEnv):
    """Two ways to succeed: ``short`` (1 action) or ``long`` then ``walk``, ``walk``, ``arrive``."""

    name = "corridor"

    def __init__(self, max_steps: int = 10) -> None:
        super().__init__(max_steps=max_steps)
        self.pos = "start"

    def _task_ids(self, split: str) -> list[str]:
        return ["c0"]

    def _reset(self, task_id: str, seed: int | None) -> tuple[str, str]:
        self.pos, self.walked = "start", 0
        return "You are at the start.", "Reach the exit."

    def _admissible(self) -> list[str]:
        if self.pos == "start":
            return ["long", "short"]
        return ["walk"] if self.walked < 2 else ["arrive"]

    def _step(self, action: str) -> StepOutcome:
        if action not in self._admissible():
            return StepOutcome("Nothing happens.", 0.0, False, valid=False)
        if action == "short":
            return StepOutcome("You are out.", 1.0, True, success=True)
        if action == "long":
            self.pos = "hall"
        elif action == "walk":
            self.walked += 1
        else:
            return StepOutcome("You are out, slowly.", 1.0, True, success=True)
        return StepOutcome(f"You are in the hall ({self.walked}).", 0.0, False)


class PrefersLong:
    """A stand-in reward model that likes long trajectories a little more."""

    def __init__(self) -> None:
        self.calls = 0

    def score(self, trajectories):
        self.calls += len(trajectories)
        return [1.0 if len(t.steps) > 1 else 0.9 for t in trajectories]


class ByLength:
    """A target double: longer is better (so the argmax is checkable)."""

    def __init__(self) -> None:
        self.calls = 0

    def score(self, trajectories):
        self.calls += len(trajectories)
        return [float(len(t.steps)) + 0.01 * i for i, t in enumerate(trajectories)]


@pytest.fixture(scope="module")
def game24():
    return envs.make("game24")


def _uniform_agent(temperature: float = 0.0) -> ReActAgent:
    return ReActAgent(llm.load("scripted", default_score=-1.0), temperature=temperature, few_shot=False)


def test_methods_map_to_table_labels_and_every_planner_follows_the_protocol(game24) -> None:
    assert METHODS == {"greedy": "Greedy", "sampling": "Sampling", "best_of_n": "ARMAP-B",
                       "reflexion": "ARMAP-R", "mcts": "ARMAP-M"}
    for method, label in METHODS.items():
        planner = make_planner(method, _uniform_agent(), EnvRewardTarget())
        assert isinstance(planner, Planner) and planner.name == label
        assert set(method_params(method)) == set(PARAMS[method].model_fields)


def test_unknown_method_or_parameter_names_the_valid_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown planning method 'beam'; valid methods are \['greedy', 'sampling'"):
        make_planner("beam", _uniform_agent())
    with pytest.raises(ValueError, match=r"mcts: unknown parameter\(s\) \['depth'\]; valid parameters are \['c', "):
        make_planner("mcts", _uniform_agent(), EnvRewardTarget(), depth=3)
    with pytest.raises(ValueError, match=r"sampling: invalid parameter\(s\): n: .*greater than or equal to 1"):
        make_planner("sampling", _uniform_agent(), n=0)
    for method in ("best_of_n", "reflexion", "mcts"):
        with pytest.raises(ValueError, match=f"{method} needs a target"):
            make_planner(method, _uniform_agent())


def test_greedy_is_the_temperature_zero_episode_and_leaves_the_agent_as_it_was(game24) -> None:
    agent = _uniform_agent(temperature=1.3)
    result = make_planner("greedy", agent, EnvRewardTarget()).solve(game24, "901", seed=3)
    assert agent.temperature == 1.3
    reference = rollout(game24, _uniform_agent(0.0), "901", seed=3)
    assert result.trajectory.actions == reference.actions
    assert result.rm_score == reference.score and result.candidates == [result.trajectory]
    assert make_planner("greedy", _uniform_agent()).solve(game24, "901").rm_score is None


def test_sampling_reports_the_mean_and_the_oracle_only_in_meta(game24) -> None:
    result = make_planner("sampling", _uniform_agent(), n=6, temperature=1.0).solve(game24, "0", seed=0)
    scores = [t.score for t in result.candidates]
    assert len(result.candidates) == 6 and len(set(map(tuple, (t.actions for t in result.candidates)))) > 1
    assert 0 < sum(scores) < 6, "the constructed case needs both successes and failures among the samples"
    assert result.trajectory is result.candidates[0]
    assert result.meta["mean_score"] == pytest.approx(sum(scores) / 6)
    assert result.meta["oracle_score"] == 1.0 and result.meta["env_scores"] == scores
    assert result.rm_score is None


def test_best_of_n_uses_the_samples_of_sampling_and_returns_the_target_argmax(game24) -> None:
    sampling = make_planner("sampling", _uniform_agent(), n=5, temperature=1.0).solve(game24, "0", seed=0)
    target = ByLength()
    best = make_planner("best_of_n", _uniform_agent(), target, n=5, temperature=1.0).solve(game24, "0", seed=0)
    assert [t.actions for t in best.candidates] == [t.actions for t in sampling.candidates]
    assert 0 < sampling.meta["mean_score"] < 1, "the constructed case needs successes and failures"
    scores = best.meta["target_scores"]
    assert scores == target.score(best.candidates)
    assert best.rm_score == max(scores)
    assert best.trajectory is best.candidates[scores.index(max(scores))]
    # with the env's reward as the target the pick is a success whenever any sample is one
    oracle = make_planner("best_of_n", _uniform_agent(), EnvRewardTarget(), n=5, temperature=1.0).solve(game24, "0", seed=0)
    assert oracle.trajectory.success and oracle.trajectory.score == sampling.meta["oracle_score"]


def test_sample_seeds_differ_per_sample_and_depend_on_the_solve_seed() -> None:
    assert len({sample_seed(0, i) for i in range(20)}) == 20
    assert sample_seed(0, 1) != sample_seed(1, 1)


def test_a_length_term_flips_best_of_n_to_the_short_path() -> None:
    env = CorridorEnv()
    agent = RandomAgent(seed=1)
    plain = make_planner("best_of_n", agent, PrefersLong(), n=6).solve(env, "c0")
    assert {len(t.steps) for t in plain.candidates} == {1, 4}, "the samples must hold both paths"
    assert len(plain.trajectory.steps) == 4
    short = make_planner("best_of_n", agent, CustomTarget(PrefersLong(), {"length": 0.05}), n=6).solve(env, "c0")
    assert len(short.trajectory.steps) == 1 and short.trajectory.success
    assert short.rm_score == pytest.approx(0.9 - 0.05)


class BuysNth:
    """Test policy for the shop: search the goal's query, open result k (k = episode number), buy."""

    name = "buys-nth"

    def __init__(self) -> None:
        self.episode = -1

    def reset(self, env, task_id, seed):
        self.env = env
        self.episode += 1

    def act(self, history, info):
        page = info.get("page")
        if page == "search":
            return f"search[{self.env.goal.query}]"
        if page == "results":
            items = [a for a in info["admissible_actions"] if a.startswith("click[B0")]
            return items[self.episode % len(items)]
        return "click[Buy Now]"


def test_a_price_term_lowers_the_price_of_the_pick() -> None:
    shop = envs.make("shop", num_products=100, num_train=5)
    plain = make_planner("best_of_n", BuysNth(), EnvRewardTarget(), n=6).solve(shop, "test-3")
    prices = [t.steps[-1].info["price"] for t in plain.candidates]
    assert len(set(prices)) > 1
    cheap = make_planner("best_of_n", BuysNth(), make_target("env", terms={"price": 0.05}), n=6).solve(shop, "test-3")
    assert cheap.trajectory.steps[-1].info["price"] < plain.trajectory.steps[-1].info["price"]
    assert [t.actions for t in cheap.candidates] == [t.actions for t in plain.candidates]
    values = [t.score - 0.05 * t.steps[-1].info["price"] for t in cheap.candidates]
    assert cheap.rm_score == pytest.approx(max(values))


def test_costs_add_up(game24) -> None:
    agent = _uniform_agent()
    lm = agent.lm
    target = EnvRewardTarget()
    before = lm.usage
    result = make_planner("best_of_n", agent, target, n=4, temperature=1.0).solve(game24, "3", seed=0)
    used = lm.usage - before
    cost = result.cost
    assert cost.llm_calls == used.calls == sum(len(t.steps) for t in result.candidates)
    assert cost.prompt_tokens == used.prompt_tokens > 0
    assert cost.env_steps == sum(len(t.steps) for t in result.candidates)
    assert cost.rm_calls == 4 == target.calls
    assert cost.seconds > 0
    total = cost + make_planner("greedy", agent).solve(game24, "3").cost
    assert total.llm_calls == cost.llm_calls + 4 and total.env_steps == cost.env_steps + 4
    assert Cost.from_dict(total.to_dict()) == total


def test_best_of_n_and_mcts_rank_with_a_real_reward_model(tmp_path, game24) -> None:
    from agentcritic.rm import RewardModel
    from agentcritic.rm.backbone import make_tiny_backbone

    rm = RewardModel(make_tiny_backbone(tmp_path / "tiny"), max_length=128)
    target = make_target("rm", rm=rm)
    best = make_planner("best_of_n", _uniform_agent(), target, n=4, temperature=1.0).solve(game24, "2", seed=0)
    expected = [float(x) for x in rm.score([(t.instruction, t) for t in best.candidates])]
    assert best.meta["target_scores"] == pytest.approx(expected, abs=1e-5)
    assert best.rm_score == pytest.approx(max(expected), abs=1e-5)
    search = make_planner("mcts", _uniform_agent(), target, rollouts=6).solve(game24, "2", seed=0)
    assert search.cost.rm_calls == len(search.candidates) and search.rm_score == max(search.meta["target_scores"])
