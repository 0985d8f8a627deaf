"""household: generated houses, the stale map, task types, hints, the expert, and the knobs."""

from __future__ import annotations

import pickle
import re

import pytest

from agentcritic import envs
from agentcritic.envs import EnvError
from agentcritic.envs.household import SPLIT_RANGES, HouseholdEnv, generate_world


def _expert_episode(env: HouseholdEnv, task: str) -> tuple[bool, list[str], str]:
    obs, _ = env.reset(task_id=task, seed=0)
    done = False
    while not done:
        action = env.expert_action()
        assert action is not None
        assert action in env.admissible_actions(), f"{task}: expert action {action!r} is not listed"
        obs, _, terminated, truncated, info = env.step(action)
        done = terminated or truncated
    return bool(info["success"]), list(env.actions), obs


def test_registered_and_split_sizes() -> None:
    env = envs.make("household")
    assert isinstance(env, HouseholdEnv) and env.max_steps == 15
    sizes = {s: len(env.task_ids(s)) for s in ("train", "dev", "test")}
    assert sizes == {"train": 300, "dev": 60, "test": 120}
    assert {t.split("-")[0] for t in env.task_ids("test")} == {"pnp", "s_obj", "s_hum"}
    assert [t.split("-")[0] for t in env.task_ids("test")[:3]] == ["pnp", "s_obj", "s_hum"]


def test_expert_solves_every_test_task_within_the_limit() -> None:
    env = HouseholdEnv()
    for task in env.task_ids("test"):
        success, actions, obs = _expert_episode(env, task)
        assert success, f"{task}: expert failed after {actions}"
        assert len(actions) <= 6 and "Task complete" in obs


def test_house_shape_and_determinism() -> None:
    env = HouseholdEnv()
    for task in env.task_ids("train")[::25]:
        w = generate_world(task, 0.5, 0.5, (4, 7), (1, 4))
        assert 4 <= len(w.rooms) <= 7
        assert all(1 <= len(r) <= 4 for r in w.receptacles.values())
        names = [r for recs in w.receptacles.values() for r in recs]
        assert len(names) == len(set(names)), "receptacle names are unique in a house"
        assert w.target in w.placement and w.room_of(w.placement[w.target]) != w.agent_room
        assert generate_world(task, 0.5, 0.5, (4, 7), (1, 4)) == w
    small = HouseholdEnv(rooms=(4, 4), receptacles=(1, 1))
    small.reset(task_id="pnp-0003")
    assert len(small.world.rooms) == 4 and all(len(r) == 1 for r in small.world.receptacles.values())
    # the seed changes nothing: the prefix of actions is the state
    a, _ = env.reset(task_id="s_obj-0005", seed=1)
    b, _ = env.reset(task_id="s_obj-0005", seed=2)
    assert a == b


def test_staleness_knob_moves_objects_away_from_the_map() -> None:
    tasks = [f"pnp-{i:04d}" for i in range(40)]
    fresh = [generate_world(t, 0.0, 0.5, (4, 7), (1, 4)) for t in tasks]
    assert all(w.placement == w.map_placement for w in fresh)
    stale = [generate_world(t, 1.0, 0.5, (4, 7), (1, 4)) for t in tasks]
    for w in stale:
        assert all(w.room_of(w.placement[o]) != w.room_of(w.map_placement[o]) for o in w.placement)
    moved = []
    for s in (0.0, 0.25, 0.5, 0.75, 1.0):
        worlds = [generate_world(t, s, 0.5, (4, 7), (1, 4)) for t in tasks]
        moved.append(sum(w.placement[o] != w.map_placement[o] for w in worlds for o in w.placement))
    assert moved == sorted(moved) and moved[0] == 0 and moved[-1] > moved[2] > 0


def test_map_is_shown_as_explored_before_and_can_be_stale() -> None:
    env = HouseholdEnv(staleness=1.0)
    obs, info = env.reset(task_id="pnp-0011")
    w = env.world
    old_rec = w.map_placement[w.target]
    assert "Map of the house" in obs and f"{old_rec} (" in obs
    line = next(l for l in obs.splitlines() if l.startswith(f"- {w.room_of(old_rec)}:"))
    assert w.target in line
    # going where the map says and picking up fails: the object has moved
    env.step(f"go to {w.room_of(old_rec)}") if w.room_of(old_rec) != env.room else None
    obs, *_ = env.step(f"pick up {w.target}")
    assert obs.startswith(f"There is no {w.target} here")


@pytest.mark.parametrize("kind", ["s_obj", "s_hum"])
def test_hint_vagueness_knob_widens_the_hint(kind: str) -> None:
    for i in range(0, 30, 3):
        task = f"{kind}-{i:04d}"
        sizes = []
        for v in (0.0, 0.5, 1.0):
            w = generate_world(task, 0.5, v, (4, 7), (1, 4))
            truth = w.event_to if kind == "s_hum" else w.room_of(w.event_to)
            assert truth in w.hint_rooms
            sizes.append(len(w.hint_rooms))
        n = len(w.rooms)
        assert sizes[0] == 1 and sizes[2] == n and sizes[0] <= sizes[1] <= sizes[2]


def test_exact_hint_names_the_place_and_vague_hint_lists_rooms() -> None:
    exact = HouseholdEnv(hint_vagueness=0.0)
    exact.reset(task_id="s_obj-0004")
    obs, *_ = exact.step(exact.expert_action())
    w = exact.world
    assert f'I moved the {w.target} to the {w.event_to}.' in obs
    vague = HouseholdEnv(hint_vagueness=1.0)
    vague.reset(task_id="s_obj-0004")
    obs, *_ = vague.step(vague.expert_action())
    said = re.search(r"it is in (.+) now", obs).group(1)
    assert all(f"the {r}" in said for r in vague.world.rooms)
    # s_hum: the human walks away and the expert follows them
    env = HouseholdEnv(hint_vagueness=0.0)
    env.reset(task_id="s_hum-0002")
    start_room = env.world.human_room
    success, actions, _ = _expert_episode(env, "s_hum-0002")
    assert success and env.world.human_room != start_room and actions[-1].startswith("give")


def test_actions_rules_and_invalid_actions() -> None:
    env = HouseholdEnv()
    obs, info = env.reset(task_id="pnp-0001")
    acts = info["admissible_actions"]
    assert acts[-1] == "end task" and f"explore {env.room}" in acts
    assert all(a.startswith(("go to", "explore", "pick up", "end task")) for a in acts)
    obs, _, _, _, info = env.step(f"explore {env.room}")
    assert obs.startswith(f"You look around the {env.room}")
    other = next(r for r in env.world.rooms if r != env.room)
    obs, _, _, _, info = env.step(f"explore {other}")
    assert info["invalid"] and "only explore the room you are in" in obs
    obs, _, _, _, info = env.step("put mug on the moon")
    assert info["invalid"] and "not holding" in obs
    obs, _, terminated, _, info = env.step("end task")
    assert terminated and not info["success"]


def test_pickle_and_restore_mid_episode_after_the_event() -> None:
    env = HouseholdEnv()
    env.reset(task_id="s_obj-0130", seed=0)
    for _ in range(2):
        env.step(env.expert_action())
    clone = pickle.loads(pickle.dumps(env))
    assert clone.world == env.world and clone.last_observation == env.last_observation
    assert clone.expert_action() == env.expert_action()


def test_bad_knobs_are_clear_errors() -> None:
    with pytest.raises(EnvError, match="staleness"):
        HouseholdEnv(staleness=1.5)
    with pytest.raises(EnvError, match="rooms"):
        HouseholdEnv(rooms=(1, 12))
    assert SPLIT_RANGES["test"].stop == 160


def test_defaults_are_the_tuned_knobs() -> None:
    env = HouseholdEnv()
    assert (env.staleness, env.hint_vagueness) == (0.2, 0.25)
    assert env.rooms_range == (4, 7) and env.receptacles_range == (1, 4)
    assert HouseholdEnv.prompt_layout == "turns"


def test_admissible_actions_leave_out_moves_that_tell_nothing_new() -> None:
    env = HouseholdEnv()
    for task in env.task_ids("test")[:30]:
        _, info = env.reset(task_id=task)
        rng_actions = []
        for _ in range(8):
            acts = info["admissible_actions"]
            assert f"go to {env.room}" not in acts, f"{task}: lists going to the room it is in"
            assert len(acts) == len(set(acts))
            if env.holding is None:
                assert [a for a in acts if a.startswith("pick up")] in ([], [f"pick up {env.world.target}"])
            assert not any(a.startswith("put") and not a.endswith(f" on {env.world.goal}") for a in acts)
            assert not any(a.startswith("give") for a in acts) or env.world.goal == "human"
            action = sorted(acts)[len(rng_actions) * 7 % len(acts)]
            if action == "end task":
                action = acts[0]
            rng_actions.append(action)
            _, _, terminated, truncated, info = env.step(action)
            if terminated or truncated:
                break
    # explore: once per visit
    env.reset(task_id="pnp-0120")
    _, _, _, _, info = env.step(f"explore {env.room}")
    assert f"explore {env.room}" not in info["admissible_actions"]
    room = env.room
    other = next(r for r in env.world.rooms if r != room)
    env.step(f"go to {other}")
    _, _, _, _, info = env.step(f"go to {room}")
    assert f"explore {room}" in info["admissible_actions"]


def test_a_failed_guess_is_not_offered_again_until_the_object_moves() -> None:
    env = HouseholdEnv()
    _, info = env.reset(task_id="pnp-0121")
    w = env.world
    assert w.room_of(w.placement[w.target]) != env.room  # pnp: never in the starting room
    believed = env.belief.get(w.target)
    assert f"pick up {w.target}" in info["admissible_actions"]
    obs, _, _, _, info = env.step(f"pick up {w.target}")
    assert obs.startswith(f"There is no {w.target} here")
    assert f"pick up {w.target}" not in info["admissible_actions"]
    assert env.belief.get(w.target) == (believed if believed != env.room else None), \
        "a guess in one room says nothing of the map's other rooms"
    # s_obj: after the human moves the object every room is open again
    env.reset(task_id="s_obj-0121")
    start = env.room
    _, _, _, _, info = env.step(f"pick up {env.world.target}")  # action 1: then the human moves it
    if env.world.room_of(env.world.placement[env.world.target]) != start:
        assert f"pick up {env.world.target}" in info["admissible_actions"]


def test_every_observation_ends_with_what_the_agent_knows_not_the_truth() -> None:
    env = HouseholdEnv(staleness=1.0)
    obs, _ = env.reset(task_id="pnp-0011")
    w = env.world
    map_room, true_room = w.room_of(w.map_placement[w.target]), w.room_of(w.placement[w.target])
    assert map_room != true_room
    last = obs.splitlines()[-1]
    assert last == f"You are in the {env.room} and hold nothing. The {w.target} was last seen in the {map_room}."
    assert true_room not in last
    # holding the object: the note turns to the goal
    env = HouseholdEnv(staleness=0.0)
    env.reset(task_id="pnp-0011")
    w = env.world
    while env.holding is None:
        obs, *_ = env.step(env.expert_action())
    assert obs.splitlines()[-1] == (f"You are in the {env.room} and hold the {w.target}. "
                                    f"The {w.goal} is in the {w.room_of(w.goal)}.")
    # a vague hint: the hinted rooms, less those the agent has since checked
    env = HouseholdEnv(hint_vagueness=1.0)
    env.reset(task_id="s_obj-0004")
    obs, *_ = env.step(env.expert_action())
    hinted = list(env.world.hint_rooms)
    assert "may be in" in obs.splitlines()[-1] and all(f"the {r}" in obs.splitlines()[-1] for r in hinted)
    truth = env.world.room_of(env.world.placement[env.world.target])
    wrong = next(r for r in hinted if r != truth and r != env.room)
    env.step(f"go to {wrong}")
    obs, *_ = env.step(f"explore {wrong}")
    where = obs.splitlines()[-1].split(" may be in ")[1]
    assert f"the {wrong}" not in where and f"the {truth}" in where
    # s_hum after a vague hint (once the agent holds the object): where the human may be
    env = HouseholdEnv(hint_vagueness=1.0)
    env.reset(task_id="s_hum-0002")
    while len(env.actions) < env.world.event_step:
        obs, *_ = env.step(env.expert_action())
    assert env.holding == env.world.target
    where = obs.splitlines()[-1].split("The human may be in ")[1]
    assert all(f"the {r}" in where for r in env.world.hint_rooms) and len(env.world.hint_rooms) > 1
