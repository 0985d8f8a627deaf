"""ReActAgent over the scripted LM: choosing, generating, parsing, prompting, failing softly."""

from __future__ import annotations

import math
from collections import Counter

import pytest

from agentcritic import envs, llm
from agentcritic.agents import ReActAgent, rollout
from agentcritic.agents.react import softmax


@pytest.fixture(scope="module")
def game24():
    return envs.make("game24")


def _prefer(action: str):
    """Scores that make ``action`` the likeliest continuation, the rest equal."""
    return lambda messages, candidate: 0.0 if candidate == f"Action: {action}" else -3.0


def test_choose_greedy_takes_the_argmax_and_solves_with_expert_scores(game24) -> None:
    def expert_scores(messages, candidate):
        return 0.0 if candidate == f"Action: {game24.expert_action()}" else -5.0

    agent = ReActAgent(llm.load("scripted", scores=expert_scores), mode="choose", temperature=0.0)
    traj = rollout(game24, agent, "900")
    assert traj.success and traj.score == 1.0
    assert len(traj.steps) == 4


def test_choose_distribution_is_the_softmax_of_the_scores(game24) -> None:
    _, info = game24.reset(task_id="901")
    target = info["admissible_actions"][3]
    agent = ReActAgent(llm.load("scripted", scores=_prefer(target)), mode="choose", temperature=1.0)
    agent.reset(game24, "901", 0)
    dist = dict(agent.distribution(_history(game24), info))
    n = len(info["admissible_actions"])
    assert math.isclose(sum(dist.values()), 1.0)
    expected_top = 1.0 / (1.0 + (n - 1) * math.exp(-3.0))
    assert dist[target] == pytest.approx(expected_top)


def test_choose_sampling_follows_the_distribution_and_is_seeded(game24) -> None:
    _, info = game24.reset(task_id="902")
    target = info["admissible_actions"][0]
    picks = []
    for seed in range(2):
        agent = ReActAgent(llm.load("scripted", scores=_prefer(target)), temperature=1.0, seed=seed)
        agent.reset(game24, "902", 0)
        picks.append([agent.act(_history(game24), info) for _ in range(300)])
    counts = Counter(picks[0])
    n = len(info["admissible_actions"])
    p_top = 1.0 / (1.0 + (n - 1) * math.exp(-3.0))
    assert abs(counts[target] / 300 - p_top) < 0.1
    assert len(counts) > 3, "sampling at T=1 must sometimes pick other actions"
    assert picks[0] != picks[1], "different seeds give different samples"
    again = ReActAgent(llm.load("scripted", scores=_prefer(target)), temperature=1.0, seed=0)
    again.reset(game24, "902", 0)
    assert [again.act(_history(game24), info) for _ in range(300)] == picks[0]


def test_generate_mode_parses_the_action_and_counts_parse_failures(game24) -> None:
    lm = llm.load("scripted", answers=[
        "Thought: 4 times 6 is 24.\nAction: 4 * 6 = 24 (left: 5 10 24)",
        "I am not sure what to do",          # no Action: → sent as is, invalid, counted
        "Thought: now subtract.\nAction: 10 - 5 = 5 (left: 5 24)",
    ])
    agent = ReActAgent(lm, mode="generate", temperature=0.0, few_shot=False)
    traj = rollout(game24, agent, "900", max_steps=3)
    assert traj.actions == ["4 * 6 = 24 (left: 5 10 24)", "I am not sure what to do", "10 - 5 = 5 (left: 5 24)"]
    assert traj.steps[1].info["invalid"] is True
    assert traj.meta["agent"]["parse_failures"] == 1
    assert traj.meta["invalid_actions"] == 1
    assert "error" not in traj.meta


def test_prompt_carries_few_shot_example_and_reflections(game24) -> None:
    lm = llm.load("scripted", answers=["Action: 4 * 6 = 24 (left: 5 10 24)"])
    agent = ReActAgent(lm, mode="generate", reflections=["I multiplied too early last time."])
    rollout(game24, agent, "900", max_steps=1)
    system = lm.history[0]["messages"][0]["content"]
    assert "Reflections from previous attempts" in system and "multiplied too early" in system
    assert "example of a successful episode" in system
    # the example is the expert solving the first *train* task, to its answer line
    _, train_info = game24.reset(task_id=game24.task_ids("train")[0])
    assert train_info["instruction"] in system and "Answer:" in system
    assert "Input: 4 5 6 10" not in system, "the test task itself never appears in the example"
    user = lm.history[0]["messages"][1]["content"]
    assert "Input: 4 5 6 10" in user


def test_an_llm_failure_records_a_failed_episode_instead_of_crashing(game24) -> None:
    agent = ReActAgent(llm.load("scripted", answers=[]), mode="generate", few_shot=False)
    traj = rollout(game24, agent, "900")
    assert traj.success is False and traj.steps == []
    assert "LLMError" in traj.meta["error"]


def test_softmax_temperature_zero_is_one_hot() -> None:
    assert softmax([-1.0, -0.5, -2.0], 0.0) == [0.0, 1.0, 0.0]
    probs = softmax([-1.0, -0.5, -2.0], 2.0)
    assert probs[1] > probs[0] > probs[2] and math.isclose(sum(probs), 1.0)


def _history(env):
    from agentcritic.types import Trajectory

    return Trajectory(env.name, env.task_id, env.instruction, meta={"first_observation": env.first_observation})


def test_household_prompt_is_chat_turns_after_an_expert_example_on_a_train_task() -> None:
    from agentcritic.agents.react import expert_episode

    env = envs.make("household")
    task = env.task_ids("test")[0]
    lm = llm.load("scripted", scores=lambda messages, candidate: 0.0)
    agent = ReActAgent(lm, mode="choose", temperature=0.0)
    traj = rollout(env, agent, task, max_steps=2)
    assert agent.layout == "turns"
    msgs = lm.history[-1]["messages"]
    roles = [m["role"] for m in msgs]
    assert roles[0] == "system" and roles[-1] == "user"
    assert all(a != b for a, b in zip(roles[1:], roles[2:])), "user and assistant turns alternate"
    # the example: the expert on the first *train* task, its actions as assistant turns
    instruction, first, steps = expert_episode(env)
    _, train_info = env.reset(task_id=env.task_ids("train")[0])
    assert instruction == train_info["instruction"] and instruction != traj.instruction
    assert msgs[1]["content"] == f"Instruction: {instruction}\nObservation: {first}"
    assert [m["content"] for m in msgs[2:2 + 2 * len(steps):2]] == [f"Action: {a}" for a, _ in steps]
    assert steps[-1][1].endswith("Task complete.")
    assert all(traj.instruction not in m["content"] for m in msgs[1:2 + 2 * len(steps)])
    # then the episode itself: its instruction, then one assistant turn per action taken
    start = 3 + 2 * len(steps)
    assert msgs[start]["content"].startswith(f"Instruction: {traj.instruction}")
    assert [m["content"] for m in msgs[start + 1::2]] == [f"Action: {a}" for a in traj.actions[:-1]]


def test_layout_defaults_to_flat_and_the_example_depends_on_the_knobs(game24) -> None:
    from agentcritic.agents.react import expert_episode
    from agentcritic.envs.household import HouseholdEnv

    lm = llm.load("scripted", scores=lambda messages, candidate: 0.0)
    agent = ReActAgent(lm, mode="choose")
    rollout(game24, agent, "900", max_steps=1)
    assert agent.layout == "flat" and [m["role"] for m in lm.history[-1]["messages"]] == ["system", "user"]
    forced = ReActAgent(lm, mode="choose", layout="flat")
    rollout(envs.make("household"), forced, "pnp-0120", max_steps=1)
    assert forced.layout == "flat" and "example of a successful episode" in lm.history[-1]["messages"][0]["content"]
    with pytest.raises(ValueError, match="layout"):
        ReActAgent(lm, layout="zigzag")
    fresh, stale = expert_episode(HouseholdEnv(staleness=0.0)), expert_episode(HouseholdEnv(staleness=1.0))
    assert fresh[1] != stale[1], "the few-shot cache is keyed by the env's knobs too"
