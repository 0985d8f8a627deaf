"""ScienceWorld adapter: splits, the score rule, candidates, the expert, invalid actions, JVMs."""

from __future__ import annotations

import contextlib
import gc
import os
import pickle
import shutil
import time
from typing import Any

import pytest

from agentcritic import envs
from agentcritic.envs import EnvError
from agentcritic.envs.scienceworld import (
    LONGEST_GOLD,
    MAX_STEP_LIMIT,
    MAX_VARIATIONS,
    MIN_STEP_LIMIT,
    STEP_LIMITS,
    TASK_NAMES,
    ScienceWorldEnv,
    Thing,
    build_candidates,
    variation_splits,
)

needs_java = pytest.mark.skipif(shutil.which("java") is None, reason="needs Java")
BASIC = ["look around", "inventory", "wait1", "wait"]


@pytest.fixture(scope="module")
def env() -> ScienceWorldEnv:
    e = ScienceWorldEnv()
    yield e
    e.close()


def _gone(pid: int, timeout: float = 10.0) -> bool:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if not os.path.exists(f"/proc/{pid}"):
            return True
        time.sleep(0.05)
    return False


# ------------------------------------------------------------------------------- no JVM needed
def test_variation_splits_reproduce_scienceworlds_cut() -> None:
    # values read from ScienceWorld's get_variations_train/dev/test
    assert variation_splits(30) == (list(range(14)), list(range(14, 21)), list(range(21, 30)))
    assert variation_splits(10) == ([0, 1, 2, 3], [4, 5], [6, 7, 8, 9])
    assert variation_splits(14) == (list(range(6)), [6, 7, 8], list(range(9, 14)))
    train, dev, test = variation_splits(1386)
    assert (len(train), len(dev), len(test)) == (692, 346, 348) and test[0] == 1038
    assert variation_splits(3) == ([0], [1], [2])


def test_ids_cover_every_task_and_interleave() -> None:
    e = ScienceWorldEnv()
    test = e.task_ids("test")
    assert len(test) == sum(len(variation_splits(n)[2]) for n in MAX_VARIATIONS.values()) == 1819
    assert [t.split(":")[0] for t in test[:30]] == list(TASK_NAMES), "any prefix covers all task types"
    assert test[:2] == ["boil:21", "change-the-state-of-matter-of:21"]
    assert e.is_task_id("boil:21") and not e.is_task_id("boil:30") and not e.is_task_id("boil")
    assert e.jvm_pid is None, "listing ids must not start a JVM"
    sub = ScienceWorldEnv(tasks=["melt", "find-plant"])
    assert sub.task_ids("dev")[:3] == ["melt:14", "find-plant:150", "melt:15"]
    assert {t.split(":")[0] for t in sub.task_ids("train")} == {"melt", "find-plant"}


def test_unknown_task_name_lists_the_valid_ones() -> None:
    with pytest.raises(EnvError, match=r"unknown task name\(s\) \['boiling'\]; valid tasks are \['boil', "):
        ScienceWorldEnv(tasks=["boil", "boiling"])
    with pytest.raises(EnvError, match="unknown task id"):
        ScienceWorldEnv(tasks=["melt"]).reset(task_id="boil:21")


def test_step_limits_fit_the_gold_paths_and_can_be_overridden() -> None:
    assert set(STEP_LIMITS) == set(TASK_NAMES) == set(LONGEST_GOLD)
    for task, limit in STEP_LIMITS.items():
        assert MIN_STEP_LIMIT <= limit <= MAX_STEP_LIMIT, task
        assert limit >= min(2 * LONGEST_GOLD[task], MAX_STEP_LIMIT), task
    assert STEP_LIMITS["find-animal"] == 42 and STEP_LIMITS["boil"] == MAX_STEP_LIMIT
    e = envs.make("scienceworld", max_steps=7)
    assert e.max_steps == 7 and e._init_kwargs["max_steps"] == 7
    assert ScienceWorldEnv()._init_kwargs["max_steps"] is None  # pickles as "per task"


def _kitchen() -> list[Thing]:
    return [
        Thing("agent", "agent.Agent", 1),
        Thing("air", "substance.Air", 2),
        Thing("kitchen", "location.Room", 3),
        Thing("hallway", "location.Room", 4),
        Thing("door to hallway", "portal.Door", 5),
        Thing("stove", "devices.Stove", 6),
        Thing("cupboard", "containers.furniture.Cupboard", 7),
        Thing("metal pot", "containers.MetalPot", 8),
        Thing("substance in metal pot", "substance.Water", 9),
        Thing("table", "containers.furniture.WoodTable", 10),
        Thing("thermometer in inventory", "devices.Thermometer", 11, held=True),
        Thing("orange in inventory", "substance.food.Orange", 12, held=True),
        Thing("book", "document.BookFrankenstein", 13),
    ]


def test_candidates_hold_the_basic_actions_without_duplicates() -> None:
    texts = [c.text for c in build_candidates(_kitchen(), room="kitchen")]
    assert texts[:4] == BASIC
    assert len(texts) == len(set(texts))
    for expected in [
        "go to hallway", "open door to hallway", "open cupboard", "activate stove", "deactivate stove",
        "pick up metal pot", "pick up substance in metal pot", "focus on substance in metal pot",
        "look at metal pot", "read book", "mix metal pot", "focus on thermometer in inventory",
        "use thermometer in inventory on substance in metal pot", "move orange in inventory to stove",
        "move orange in inventory to metal pot", "put down thermometer in inventory",
    ]:
        assert expected in texts, expected
    assert "go to kitchen" not in texts, "no 'go to' the room the agent is in"
    assert not [t for t in texts if t.endswith((" agent", " air")) or "agent " in t]
    assert "pick up stove" not in texts and "pick up cupboard" not in texts and "focus on door to hallway" not in texts


def test_candidate_cap_trims_the_largest_groups_first() -> None:
    full = build_candidates(_kitchen(), room="kitchen")
    capped = build_candidates(_kitchen(), room="kitchen", cap=20)
    texts = [c.text for c in capped]
    assert len(full) > 20 and len(texts) == 20
    assert texts[:4] == BASIC and "go to hallway" in texts and "open door to hallway" in texts
    assert {c.template for c in capped} >= {"go", "open", "use", "move", "pick up", "focus on"}
    assert set(texts) <= {c.text for c in full}


def test_connect_candidates_pair_wire_ends_with_other_terminals() -> None:
    things = [
        Thing("battery anode", "electricalcomponent.Anode", 1),
        Thing("battery cathode", "electricalcomponent.Cathode", 2),
        Thing("red wire terminal 1", "electricalcomponent.Terminal", 3),
        Thing("red wire terminal 2", "electricalcomponent.Terminal", 4),
        Thing("anode in light bulb", "electricalcomponent.Anode", 5),
    ]
    pairs = [c for c in build_candidates(things, room="workshop") if c.template == "connect"]
    assert {frozenset(c.uuids) for c in pairs} == {frozenset((w, t)) for w in (3, 4) for t in (1, 2, 5)}
    assert len(pairs) == 6
    assert "connect battery anode to red wire terminal 1" in [c.text for c in pairs]


class _FakeServer:
    """Just enough of ScienceWorld's interface to script scores (its internals are absent)."""

    def __init__(self, scores: list[float]) -> None:
        self.scores, self.score = list(scores), 0.0

    def load(self, *args: Any) -> str:
        return ""

    def step(self, action: str) -> str:
        if action != "look around":
            self.score = self.scores.pop(0)
        return f"you did {action}"

    def getScore(self) -> float:
        return self.score

    def getCompleted(self) -> bool:
        return self.score >= 1.0

    def getTaskDescription(self) -> str:
        return "Your task is to boil water."

    def freeActionLook(self) -> str:
        return "This room is called the kitchen."

    def getPossibleObjectReferentTypesLUTJSON(self) -> str:
        return '{"132": {"5": "hallway", "desc": "scienceworld.objects.location.Room"}}'


class _FakeJvm:
    can_isolate_random = True

    def __init__(self, scores: list[float]) -> None:
        self.server, self.pid = _FakeServer(scores), -1

    def isolated_random(self) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()

    def close(self) -> None:
        pass


def _scripted(scores: list[float]) -> ScienceWorldEnv:
    e = ScienceWorldEnv()
    e._jvm = _FakeJvm(scores)  # type: ignore[assignment]
    return e


def test_score_is_the_best_seen_and_a_negative_score_ends_the_episode() -> None:
    e = _scripted([0.5, 0.3, -1.0])
    _, info = e.reset(task_id="boil:21")
    assert info["admissible_actions"][:5] == BASIC + ["go to hallway"]  # the public-API fallback
    _, reward, terminated, _, info = e.step("a")
    assert (reward, info["score"], terminated, info["sw_score"]) == (0.5, 0.5, False, 50)
    _, reward, terminated, _, info = e.step("b")  # the simulator's score drops
    assert (reward, info["score"], terminated, info["sw_score"]) == (0.0, 0.5, False, 30)
    _, reward, terminated, _, info = e.step("c")  # -100: a fatal mistake
    assert (reward, info["score"], terminated, info["sw_score"], info["success"]) == (0.0, 0.5, True, -100, False)
    assert e.score == 0.5


def test_success_is_reaching_100() -> None:
    e = _scripted([0.25, 1.0])
    e.reset(task_id="boil:21")
    assert e.step("a")[4]["success"] is False
    _, reward, terminated, _, info = e.step("b")
    assert terminated and info["success"] is True and reward == 0.75 and info["score"] == 1.0


# ------------------------------------------------------------------------------- with the JVM
@pytest.mark.java
@needs_java
def test_variation_tables_match_the_simulator(env: ScienceWorldEnv) -> None:
    server = env._server()
    assert list(server.getTaskNames()) == list(TASK_NAMES)
    assert {t: server.getTaskMaxVariations(t) for t in TASK_NAMES} == MAX_VARIATIONS
    for task in ("identify-life-stages-2", "power-component", "lifespan-longest-lived"):
        server.load(task, 0, "", False)
        got = (list(server.getVariationsTrain()), list(server.getVariationsDev()), list(server.getVariationsTest()))
        assert got == variation_splits(MAX_VARIATIONS[task]), task


@pytest.mark.java
@needs_java
@pytest.mark.parametrize("task", ["lifespan-longest-lived:93", "find-non-living-thing:225"])
def test_expert_reaches_full_score(env: ScienceWorldEnv, task: str) -> None:
    gold = env.gold_actions(task)
    _, info = env.reset(task_id=task)
    assert env.max_steps == STEP_LIMITS[task.split(":")[0]]
    while not (env.terminated or env.truncated):
        action = env.expert_action()
        assert action is not None, f"{task}: the expert gave up after {env.actions}"
        _, _, _, _, info = env.step(action)
    assert info["success"] is True and info["score"] == pytest.approx(1.0) and env.terminated
    assert env.actions == gold[: len(env.actions)]


@pytest.mark.java
@needs_java
def test_invalid_and_ambiguous_actions(env: ScienceWorldEnv) -> None:
    env.reset(task_id="find-non-living-thing:225")
    before = env.admissible_actions()
    obs, reward, _, _, info = env.step("xyzzy frobnicate")
    assert obs == "No known action matches that input." and info["invalid"] is True and reward == 0.0
    assert info["admissible_actions"] == before, "a refused action changes nothing"
    env.step("open door to hallway")
    env.step("go to hallway")
    obs, _, _, _, info = env.step("look at door")  # six doors: the simulator asks which one
    assert obs.startswith("Ambiguous request") and info["invalid"] is False
    assert info["admissible_actions"] == ["0", "1", "2", "3", "4", "5"]
    obs, _, _, _, info = env.step("7")  # not one of the choices
    assert info["invalid"] is True
    env.step("look at door")
    obs, _, _, _, info = env.step("1")
    assert info["invalid"] is False and obs.startswith("A door to the")
    assert "look around" in info["admissible_actions"]


@pytest.mark.java
@needs_java
def test_a_fatal_mistake_keeps_the_best_score(env: ScienceWorldEnv) -> None:
    env.reset(task_id="lifespan-longest-lived:93")
    env.step("open door to outside")
    _, reward, _, _, info = env.step("go to outside")
    assert reward == 0.5 and info["sw_score"] == 50
    _, reward, terminated, _, info = env.step("focus on agent")  # the wrong thing to focus on
    assert info["sw_score"] == -100 and terminated and info["success"] is False
    assert info["score"] == 0.5 and reward == 0.0 and env.expert_action() is None


@pytest.mark.java
@needs_java
def test_candidates_in_a_real_state(env: ScienceWorldEnv) -> None:
    _, info = env.reset(task_id="boil:21")
    start = info["admissible_actions"]
    assert start[:4] == BASIC and len(start) == len(set(start)) <= env.max_candidates
    assert {"go to kitchen", "open door", "focus on orange in inventory"} <= set(start)
    for action in ("open door to kitchen", "go to kitchen", "pick up thermometer"):
        _, _, _, _, info = env.step(action)
    now = info["admissible_actions"]
    assert len(now) == len(set(now)) <= env.max_candidates
    assert {"focus on thermometer in inventory", "put down thermometer in inventory", "activate stove",
            "open cupboard", "pick up lighter", "use thermometer in inventory on orange in bowl"} <= set(now)
    snapshot = env.snapshot()
    for action in now[4::25]:  # the candidates are commands the simulator knows
        env.restore(snapshot)
        _, _, _, _, info = env.step(action)
        assert info["invalid"] is False, action


GREENHOUSE = [  # grow-fruit:93's gold path up to the greenhouse, where three identical bees fly
    "open door to hallway", "go to hallway", "open door to kitchen", "go to kitchen", "open door to bathroom",
    "go to bathroom", "look around", "pick up seed jar", "open door to kitchen", "go to kitchen",
    "open door to hallway", "go to hallway", "open door to greenhouse", "go to greenhouse", "look around",
]


@pytest.mark.java
@needs_java
def test_listing_objects_leaves_the_simulation_alone(env: ScienceWorldEnv) -> None:
    env.restore(GREENHOUSE, task_id="grow-fruit:93")
    names = env.admissible_actions()
    assert any("bee" in a for a in names)
    simulation = env._jvm._random[2]  # the generator the simulation draws from

    def next_draw(list_objects: int, isolated: bool = True) -> int:
        env.restore(GREENHOUSE, task_id="grow-fruit:93")
        for _ in range(list_objects):
            env._candidates = None
            if isolated:
                assert env.admissible_actions() == names, "an object's name depends on the state alone"
            else:  # the same listing without the isolation
                parser, agent, _ = env._handles
                parser.getAllUniqueReferentsWithTypeLUTJSON(agent.getContainer().get(), False, True)
        return simulation.nextLong()

    untouched = next_draw(0)
    assert next_draw(5) == untouched
    assert next_draw(5, isolated=False) != untouched  # the hazard the isolation removes


@pytest.mark.java
@needs_java
def test_pickled_mid_episode_env_has_the_same_state_and_its_own_jvm(env: ScienceWorldEnv) -> None:
    env.reset(task_id="find-non-living-thing:225")
    for action in ("open door to hallway", "go to hallway", "xyzzy", "look around"):
        env.step(action)
    clone = pickle.loads(pickle.dumps(env))
    try:
        assert clone.last_observation == env.last_observation
        assert clone.admissible_actions() == env.admissible_actions()
        assert (clone.actions, clone.score, clone.invalid_actions) == (env.actions, env.score, 1)
        assert clone.jvm_pid is not None and clone.jvm_pid != env.jvm_pid
        assert clone.max_steps == env.max_steps and clone._init_kwargs == env._init_kwargs
    finally:
        pid = clone.jvm_pid
        clone.close()
    assert _gone(pid)


@pytest.mark.java
@needs_java
def test_jvms_are_started_lazily_and_never_leaked() -> None:
    made = [ScienceWorldEnv(tasks=["lifespan-longest-lived"]) for _ in range(2)]
    assert all(e.jvm_pid is None for e in made)
    for one in made:
        one.reset(task_id="lifespan-longest-lived:93")
    del one  # the loop variable would keep the last env alive
    pids = [e.jvm_pid for e in made]
    assert len(set(pids)) == 2 and all(os.path.exists(f"/proc/{p}") for p in pids)
    made[0].close()
    made[0].close()  # twice is fine
    del made[1]  # forgotten: garbage collection ends its JVM
    gc.collect()
    assert all(_gone(p) for p in pids)
