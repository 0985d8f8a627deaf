"""One episode loop: every path it drives makes the records it made before the loops were merged.

The records in ``tests/data/episode_loop/`` were made by the four separate loops (the agent
rollout, the replay of edited negatives, helped episodes, MCTS simulation); see
``episode_loop_cases.py``. Only timing fields may differ.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from agentcritic import envs
from agentcritic.agents import ExpertAgent, RandomAgent, rollout
from agentcritic.agents.rollout import EpisodeHooks, play_episode
from agentcritic.helper.episode import run_helped_episode
from agentcritic.helper.interventions import ExpertIntervention
from agentcritic.synth.replay import execute

from episode_loop_cases import CASES, DATA, make  # noqa: E402


def first_difference(got: Any, want: Any, path: str = "") -> str | None:
    """Where ``got`` and ``want`` first differ, as a readable path, or None."""
    if isinstance(got, dict) and isinstance(want, dict):
        if list(got) != list(want) and set(got) != set(want):
            return f"{path or '/'}: keys {sorted(set(got) ^ set(want))} differ"
        for key in want:
            diff = first_difference(got[key], want[key], f"{path}/{key}")
            if diff:
                return diff
        return None
    if isinstance(got, list) and isinstance(want, list):
        for i, (a, b) in enumerate(zip(got, want)):
            diff = first_difference(a, b, f"{path}/{i}")
            if diff:
                return diff
        return None if len(got) == len(want) else f"{path}: {len(got)} items, expected {len(want)}"
    return None if got == want else f"{path}: {got!r} != {want!r}"


@pytest.mark.parametrize("name", list(CASES))
def test_the_loop_makes_the_records_it_made_before(name: str) -> None:
    want = json.loads((DATA / f"{name}.json").read_text())
    got = make(name)
    assert got == want, first_difference(got, want)


def test_a_helped_state_text_is_the_episode_so_far() -> None:
    env = envs.make("household")
    ep = run_helped_episode(env, RandomAgent(seed=5), ExpertIntervention(), "pnp-0120",
                            lambda state, step: step % 2 == 0, seed=2, state_chars=None)
    actions = ep.trajectory.actions
    assert len(ep.transitions) == len(actions) >= 2
    for i, t in enumerate(ep.transitions):
        assert t.state_text.startswith(f"Instruction: {ep.trajectory.instruction}")
        assert t.state_text.count("Action: ") == i  # exactly the i actions taken before this decision
        if i:
            assert f"Action: {actions[i - 1]}" in t.state_text


# ------------------------------------------------------------------------------------ the hooks
def test_act_replaces_the_agent_and_none_ends_the_episode() -> None:
    env = envs.make("game24")
    planned = ["1 + 2 = 3 (left: 3 4 7)", "not an action", "3 * 7 = 21 (left: 4 21)"]
    seen = []

    def act(history, info):
        seen.append(len(info["admissible_actions"]))
        return planned[len(history.steps)] if len(history.steps) < len(planned) else None

    ep = play_episode(env, None, "901", seed=0, meta={"key": "k"}, hooks=EpisodeHooks(act=act))
    traj = ep.trajectory
    assert traj.actions == planned and ep.exception is None
    assert len(seen) == 4  # asked once more after the last action, and answered None
    assert "policy" not in traj.meta and traj.meta["key"] == "k"
    assert traj.meta["invalid_actions"] == 1 and traj.success is False
    assert ep.info["steps"] == 3 and ep.limit == env.max_steps


def test_override_tags_its_steps_and_on_step_flags_the_last_one() -> None:
    env = envs.make("household")
    calls = []

    def override(history, info):
        return ("look", "helper") if len(history.steps) % 2 else None

    hooks = EpisodeHooks(override=override, on_step=lambda h, info, last: calls.append((len(h.steps), last)))
    ep = play_episode(env, RandomAgent(seed=0), "pnp-0120", seed=0, max_steps=5, hooks=hooks)
    actors = [s.actor for s in ep.trajectory.steps]
    assert actors == ["agent", "helper", "agent", "helper", "agent"]  # the step limit ends it
    assert ep.trajectory.actions[1] == ep.trajectory.actions[3] == "look"
    assert calls == [(1, False), (2, False), (3, False), (4, False), (5, True)]
    assert ep.trajectory.meta["policy"] == "random"


def test_an_exception_of_a_hook_fails_the_episode_with_its_kind() -> None:
    env = envs.make("household")

    def override(history, info):
        if history.steps:
            raise ConnectionError("the helper's server is down")
        return None

    ep = play_episode(env, RandomAgent(seed=0), "pnp-0120", seed=0, hooks=EpisodeHooks(override=override))
    assert len(ep.trajectory.steps) == 1 and isinstance(ep.exception, ConnectionError)
    assert ep.trajectory.meta["error"] == "ConnectionError: the helper's server is down"
    assert ep.trajectory.meta["error_kind"] == "infrastructure"
    assert ep.trajectory.success is False


def test_start_continues_an_episode_without_a_reset() -> None:
    env = envs.make("game24")
    agent = ExpertAgent()
    first = play_episode(env, agent, "900", seed=0, max_steps=2)
    assert len(first.trajectory.steps) == 2 and not env.terminated
    rest = play_episode(env, None, "900", start=(first.trajectory, first.info),
                        hooks=EpisodeHooks(act=lambda h, info: env.expert_action()))
    assert rest.trajectory is first.trajectory and len(env.actions) == len(rest.trajectory.steps) == 4
    assert rest.trajectory.success is True and rest.trajectory.score == 1.0


def test_an_episode_needs_someone_to_act() -> None:
    with pytest.raises(ValueError, match="needs an agent or hooks.act"):
        play_episode(envs.make("game24"), None, "900")


def test_a_replay_repairs_from_its_index_and_lets_a_failing_repair_escape() -> None:
    env = envs.make("game24")
    expert = rollout(env, ExpertAgent(), "100", seed=0)
    positions = []
    traj, info = execute(env, "100", 0, expert.actions, instruction="another intent",
                         repair=lambda a, info: positions.append(info["steps"]) or a, repair_from=2)
    assert traj.actions == expert.actions and traj.instruction == "another intent" and traj.success
    assert positions == list(range(2, len(expert.actions)))
    assert info["steps"] == len(expert.actions)

    def broken(action, info):
        raise KeyError("a bug in the repair rule")

    with pytest.raises(KeyError, match="a bug in the repair rule"):
        execute(env, "100", 0, expert.actions, instruction="x", repair=broken)
