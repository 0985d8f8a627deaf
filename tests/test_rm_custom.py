"""Scoring targets: the RM over the one rendering, the env's reward, and base - sum(w * term)."""

from __future__ import annotations

import pytest

from agentcritic import envs
from agentcritic.agents import ExpertAgent, rollout
from agentcritic.rendering import render, trajectory_text
from agentcritic.rm.custom import (
    CustomTarget,
    EnvRewardTarget,
    RewardTarget,
    Target,
    length_term,
    make_target,
    price_term,
)
from agentcritic.types import Step, Trajectory


@pytest.fixture(scope="module")
def shop():
    return envs.make("shop", num_products=100, num_train=5)


@pytest.fixture(scope="module")
def game24():
    return envs.make("game24")


def _traj(n_steps: int, score: float = 0.5, instruction: str = "do it") -> Trajectory:
    steps = [Step(action=f"a{i}", observation=f"o{i}") for i in range(n_steps)]
    return Trajectory(env="x", task_id="t", instruction=instruction, steps=steps, success=False, score=score)


class RecordingRM:
    """Stands in for a RewardModel: scores a pair by the length of its text, records every call."""

    def __init__(self) -> None:
        self.pairs: list[tuple[str, Trajectory]] = []

    def score(self, pairs, batch_size=32):
        self.pairs.extend(pairs)
        return [float(len(render(intent, traj))) for intent, traj in pairs]


def test_length_term_counts_actions() -> None:
    assert length_term(_traj(0)) == 0.0
    assert length_term(_traj(7)) == 7.0


def test_price_term_reads_the_price_the_shop_charged(shop, game24) -> None:
    traj = rollout(shop, ExpertAgent(), "test-0")
    bought = traj.steps[-1].info["purchased_asin"]
    product = next(p for p in shop.catalogue if p.asin == bought)
    assert price_term(traj) == pytest.approx(product.price) and product.price > 0
    assert price_term(rollout(game24, ExpertAgent(), "900")) == 0.0  # nothing bought
    assert price_term(_traj(3)) == 0.0


def test_price_term_names_a_bad_price() -> None:
    traj = _traj(1)
    traj.steps[0].info = {"purchased_asin": "B0", "price": "cheap"}
    with pytest.raises(ValueError, match="non-numeric price 'cheap'"):
        price_term(traj)


def test_custom_target_subtracts_weighted_terms() -> None:
    base = EnvRewardTarget()
    target = CustomTarget(base, {"length": 0.1, "bonus": (-2.0, lambda t: 1.0 if t.score > 0.6 else 0.0)})
    short, long = _traj(2, score=0.5), _traj(5, score=0.9)
    assert target.score([short, long]) == pytest.approx([0.5 - 0.2, 0.9 - 0.5 + 2.0])
    assert target.parts(long) == {"length": 5.0, "bonus": 1.0}
    assert target.calls == base.calls == 2
    assert isinstance(target, Target)


def test_custom_target_takes_named_functions() -> None:
    target = CustomTarget(EnvRewardTarget(), {"odd": 1.0}, functions={"odd": lambda t: len(t.steps) % 2})
    assert target.score([_traj(3, 1.0), _traj(4, 1.0)]) == [0.0, 1.0]


@pytest.mark.parametrize(
    ("terms", "message"),
    [
        ({"speed": 1.0}, r"unknown term 'speed'; valid terms are \['length', 'price'\]"),
        ({"length": "a lot"}, "weight must be a finite number"),
        ({"length": float("nan")}, "weight must be a finite number"),
        ({"length": (1.0, "not callable")}, "expected a weight or"),
    ],
)
def test_custom_target_rejects_bad_terms(terms, message) -> None:
    with pytest.raises(ValueError, match=message):
        CustomTarget(EnvRewardTarget(), terms)


def test_env_reward_target_is_the_env_score_and_counts_calls() -> None:
    target = EnvRewardTarget()
    assert target.score([_traj(1, 0.25), _traj(1, 1.0)]) == [0.25, 1.0]
    assert target.calls == 2
    unscored = _traj(1)
    unscored.score = None
    with pytest.raises(ValueError, match="has no env score"):
        target.score([unscored])


def test_reward_target_hands_the_model_each_trajectory_with_its_instruction(shop) -> None:
    rm = RecordingRM()
    target = RewardTarget(rm)
    traj = rollout(shop, ExpertAgent(), "test-1")
    other = rollout(shop, ExpertAgent(), "test-2")
    scores = target.score([traj, other, traj])
    assert rm.pairs == [(traj.instruction, traj), (other.instruction, other)]
    assert scores[0] == scores[2] == float(len(render(traj.instruction, traj)))
    assert target.calls == 2  # the repeat was a cache hit
    target.score([other])
    assert target.calls == 2 and len(rm.pairs) == 2


def test_reward_target_scores_what_the_model_reads_without_the_verdict(tmp_path, game24) -> None:
    from agentcritic.rm import RewardModel
    from agentcritic.rm.backbone import make_tiny_backbone

    rm = RewardModel(make_tiny_backbone(tmp_path / "tiny"), max_length=128)
    trajs = [rollout(game24, ExpertAgent(), "900"), rollout(game24, ExpertAgent(), "901")]
    assert all(t.steps[-1].observation.startswith("Correct:") for t in trajs)
    shown = [float(x) for x in rm.score([(t.instruction, trajectory_text(t)) for t in trajs])]
    with_verdict = [float(x) for x in rm.score([(t.instruction, trajectory_text(t, raw=True)) for t in trajs])]
    assert shown != pytest.approx(with_verdict)  # the verdict would change what the model reads

    target = make_target("rm", rm=rm)
    assert target.score(trajs) == pytest.approx(shown, abs=1e-5)
    assert target.calls == 2


def test_make_target_builds_each_kind_and_names_bad_input() -> None:
    assert isinstance(make_target("env"), EnvRewardTarget)
    custom = make_target("env", terms={"length": 0.5})
    assert isinstance(custom, CustomTarget) and custom.score([_traj(2, 1.0)]) == [0.0]
    assert isinstance(make_target("rm", rm=RecordingRM()), RewardTarget)  # no env needed to render
    with pytest.raises(ValueError, match=r"unknown target kind 'oracle'; valid kinds are \['rm', 'env'\]"):
        make_target("oracle")
    with pytest.raises(ValueError, match="needs rm="):
        make_target("rm")
    with pytest.raises(ValueError, match="needs a reward model with score"):
        make_target("rm", rm=object())
