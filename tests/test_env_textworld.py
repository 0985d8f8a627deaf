"""TextWorldExpress adapter: folds and ids, the expert, invalid actions, failure, pickling, JVMs."""

from __future__ import annotations

import gc
import os
import pickle
import shutil
import time

import pytest

from agentcritic import envs
from agentcritic.envs import EnvError
from agentcritic.envs.textworld import (
    DEFAULT_GAME_PARAMS,
    FOLD_SEEDS,
    GAMES,
    TextWorldEnv,
)

needs_java = pytest.mark.skipif(shutil.which("java") is None, reason="needs Java")


@pytest.fixture(scope="module")
def env() -> TextWorldEnv:
    e = TextWorldEnv()
    yield e
    e.close()


def _gone(pid: int, timeout: float = 10.0) -> bool:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if not os.path.exists(f"/proc/{pid}"):
            return True
        time.sleep(0.05)
    return False


def _expert_episode(env: TextWorldEnv, task: str) -> dict:
    env.reset(task_id=task)
    info: dict = {}
    while not (env.terminated or env.truncated):
        action = env.expert_action()
        assert action is not None, f"{task}: the expert gave up after {env.actions}"
        _, _, _, _, info = env.step(action)
    return info


# ------------------------------------------------------------------------------- no JVM needed
def test_ids_are_twx_fold_seeds_with_configurable_sizes() -> None:
    e = TextWorldEnv(num_train=5, num_dev=3, num_test=4)
    assert e.task_ids("train") == [f"cookingworld:{s}" for s in range(5)]
    assert e.task_ids("dev") == ["cookingworld:10000", "cookingworld:10001", "cookingworld:10002"]
    assert e.task_ids("test") == [f"cookingworld:{s}" for s in range(20000, 20004)]
    default = TextWorldEnv(game="coin")
    assert [len(default.task_ids(s)) for s in ("train", "dev", "test")] == [1000, 100, 100]
    assert default.task_ids("test")[0] == "coin:20000"
    assert e.jvm_pid is None, "listing ids must not start a JVM"
    with pytest.raises(EnvError, match="unknown task id"):
        e.reset(task_id="cookingworld:20004")  # beyond the configured test size


def test_bad_arguments_name_the_choices() -> None:
    with pytest.raises(EnvError, match="valid games are .*cookingworld.*coin.*twc"):
        TextWorldEnv(game="zork")
    with pytest.raises(EnvError, match="num_test must be between 1 and 1000"):
        TextWorldEnv(num_test=1001)
    assert set(DEFAULT_GAME_PARAMS) <= set(GAMES)


def test_registry_builds_it() -> None:
    e = envs.make("textworld", game="twc", max_steps=20)
    assert isinstance(e, TextWorldEnv) and e.game == "twc" and e.max_steps == 20
    assert e.game_params == DEFAULT_GAME_PARAMS["twc"]


# ------------------------------------------------------------------------------- with the JVM
@pytest.mark.java
@needs_java
def test_fold_seeds_match_twx(env: TextWorldEnv) -> None:
    server = env._server()
    assert list(server.getSeedsTrain()) == list(FOLD_SEEDS["train"])
    assert list(server.getSeedsDev()) == list(FOLD_SEEDS["dev"])
    assert list(server.getSeedsTest()) == list(FOLD_SEEDS["test"])


@pytest.mark.java
@needs_java
@pytest.mark.parametrize("task", ["cookingworld:20000", "cookingworld:20001"])
def test_expert_reaches_full_score(env: TextWorldEnv, task: str) -> None:
    gold = env.gold_actions(task)
    info = _expert_episode(env, task)
    assert info["success"] is True and info["score"] == pytest.approx(1.0)
    assert env.terminated and env.actions == gold
    # the episode's rewards add up to its score
    assert env.score == pytest.approx(1.0)


@pytest.mark.java
@needs_java
@pytest.mark.parametrize("game", ["coin", "twc"])
def test_other_games_have_an_expert_too(game: str) -> None:
    e = TextWorldEnv(game=game)
    try:
        info = _expert_episode(e, e.task_ids("test")[0])
        assert info["success"] is True and info["score"] == pytest.approx(1.0)
    finally:
        e.close()


@pytest.mark.java
@needs_java
def test_admissible_actions_are_sorted_unique_and_twx_valid(env: TextWorldEnv) -> None:
    _, info = env.reset(task_id="cookingworld:20000")
    actions = info["admissible_actions"]
    assert actions == sorted(set(actions))
    assert {"look around", "inventory", "take cookbook", "read cookbook"} <= set(actions)
    assert "cookbook" in info["instruction"]
    for action in actions[:5]:  # every admissible action is accepted
        env.restore([action])
        assert env.invalid_actions == 0


@pytest.mark.java
@needs_java
@pytest.mark.parametrize("action", ["xyzzy frobnicate", "Look Around", "take the moon"])
def test_an_action_outside_the_valid_list_is_invalid(env: TextWorldEnv, action: str) -> None:
    _, info0 = env.reset(task_id="cookingworld:20000")
    obs, reward, terminated, _, info = env.step(action)
    assert info["invalid"] is True and reward == 0.0 and not terminated
    assert obs.startswith("Unknown action")  # TWX's own answer is the observation
    assert info["admissible_actions"] == info0["admissible_actions"]
    assert env.step("look around")[4]["invalid"] is False


@pytest.mark.java
@needs_java
def test_task_failure_ends_the_episode_and_keeps_the_best_score(env: TextWorldEnv) -> None:
    env.reset(task_id="cookingworld:20000")
    _, reward, terminated, _, info = env.step("take red potato")  # an ingredient: +1 of 6
    assert reward == pytest.approx(1 / 6) and not terminated
    # the recipe wants it cooked in the barbeque, not the oven: TWX fails the task
    _, reward, terminated, _, info = env.step("cook red potato in oven")
    assert terminated and info["task_failure"] is True and info["success"] is False
    assert info["score"] == pytest.approx(1 / 6) and reward == 0.0
    assert env.expert_action() is None


@pytest.mark.java
@needs_java
def test_expert_gives_up_after_a_deviation(env: TextWorldEnv) -> None:
    env.reset(task_id="cookingworld:20001")
    assert env.expert_action() == "look around"
    env.step("inventory")
    assert env.expert_action() is None


@pytest.mark.java
@needs_java
def test_same_task_same_episode_across_jvms(env: TextWorldEnv) -> None:
    other = TextWorldEnv()
    try:
        for e in (env, other):
            e.reset(task_id="cookingworld:20002", seed=1)
            for action in ("take cookbook", "read cookbook", "move east", "look around"):
                e.step(action)
        assert other.jvm_pid != env.jvm_pid
        assert other.last_observation == env.last_observation
        assert other.admissible_actions() == env.admissible_actions()
    finally:
        other.close()


@pytest.mark.java
@needs_java
def test_pickled_mid_episode_env_has_the_same_state_and_its_own_jvm(env: TextWorldEnv) -> None:
    env.reset(task_id="cookingworld:20001")
    for action in ("take cookbook", "read cookbook", "xyzzy"):
        env.step(action)
    clone = pickle.loads(pickle.dumps(env))
    try:
        assert clone.last_observation == env.last_observation
        assert clone.admissible_actions() == env.admissible_actions()
        assert clone.actions == env.actions and clone.invalid_actions == 1
        assert clone.jvm_pid is not None and clone.jvm_pid != env.jvm_pid
    finally:
        pid = clone.jvm_pid
        clone.close()
    assert _gone(pid)


@pytest.mark.java
@needs_java
def test_jvms_are_started_lazily_and_never_leaked() -> None:
    made = [TextWorldEnv() for _ in range(3)]
    assert all(e.jvm_pid is None for e in made)
    for one in made:
        one.reset(task_id=one.task_ids("test")[0])
    del one  # the loop variable would keep the last env alive
    pids = [e.jvm_pid for e in made]
    assert len(set(pids)) == 3 and all(os.path.exists(f"/proc/{p}") for p in pids)
    made[0].close()
    made[0].close()  # twice is fine
    made[1].close()
    del made[2]  # forgotten: garbage collection ends its JVM
    gc.collect()
    assert all(_gone(p) for p in pids)


@pytest.mark.java
@needs_java
@pytest.mark.parametrize(("params", "message"), [("numLocations=99", "less than or equal to 11"),
                                                 ("numLocations=banana", "could not make")])
def test_bad_game_params_are_reported(params: str, message: str) -> None:
    e = TextWorldEnv(game_params=params)
    try:
        with pytest.raises(EnvError, match=message):
            e.reset(task_id=e.task_ids("test")[0])
    finally:
        e.close()
