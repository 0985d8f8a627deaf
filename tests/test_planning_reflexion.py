"""Reflexion: the threshold stops it, otherwise the best attempt wins; reflections reach the prompt."""

from __future__ import annotations

import re

import pytest

from agentcritic import envs, llm
from agentcritic.agents import ExpertAgent, RandomAgent, ReActAgent, rollout
from agentcritic.planning import make_planner
from agentcritic.planning.reflexion import calibrate_on, calibrate_threshold, templated_reflection
from agentcritic.rm.custom import EnvRewardTarget

SECTION = "Reflections from previous attempts"


@pytest.fixture(scope="module")
def game24():
    return envs.make("game24")


class ScoresInOrder:
    """A target double that hands out the given scores, one per scored trajectory."""

    def __init__(self, scores):
        self.scores = list(scores)
        self.calls = 0

    def score(self, trajectories):
        out = self.scores[self.calls: self.calls + len(trajectories)]
        self.calls += len(trajectories)
        return out


def _avoid_reflected_first_action(messages, candidate):
    """Scripted scores: uniform, except the action a reflection says to avoid."""
    match = re.search(r"different action than '(.+?)'", messages[0]["content"])
    if match and candidate == f"Action: {match.group(1)}":
        return -20.0
    return -1.0


def test_stops_at_the_threshold(game24) -> None:
    agent = ReActAgent(llm.load("scripted", default_score=-1.0), few_shot=False)
    assert rollout(game24, agent, "0").success  # the greedy attempt on task 0 solves it
    result = make_planner("reflexion", agent, EnvRewardTarget(), max_trials=4).solve(game24, "0")
    assert result.meta["trials"] == 1 and result.meta["accepted"] is True
    assert result.rm_score == 1.0 and len(result.candidates) == 1 and result.meta["reflections"] == []


def test_otherwise_returns_the_best_scored_attempt(game24) -> None:
    target = ScoresInOrder([0.2, 0.7, 0.4])
    agent = RandomAgent(seed=0)
    result = make_planner("reflexion", agent, target, max_trials=3, threshold=0.9).solve(game24, "5")
    assert result.meta["trials"] == 3 and result.meta["accepted"] is False
    assert result.meta["target_scores"] == [0.2, 0.7, 0.4]
    assert result.trajectory is result.candidates[1] and result.rm_score == 0.7
    assert result.cost.rm_calls == 3


def test_accepts_the_first_attempt_that_clears_the_threshold(game24) -> None:
    result = make_planner("reflexion", RandomAgent(), ScoresInOrder([0.1, 0.95, 2.0]), max_trials=3,
                          threshold=0.9).solve(game24, "5")
    assert result.meta["trials"] == 2 and result.meta["accepted"] and result.rm_score == 0.95


def test_a_templated_reflection_reaches_the_next_prompt_and_changes_the_attempt(game24) -> None:
    lm = llm.load("scripted", scores=_avoid_reflected_first_action)
    agent = ReActAgent(lm, mode="choose", few_shot=False, reflections=["keep it simple"])
    first = rollout(game24, ReActAgent(llm.load("scripted", default_score=-1.0), few_shot=False), "901")
    assert not first.success
    result = make_planner("reflexion", agent, EnvRewardTarget(), max_trials=2).solve(game24, "901")
    attempt1, attempt2 = result.candidates
    assert attempt1.actions == first.actions
    (reflection,) = result.meta["reflections"]
    assert result.meta["reflection_writers"] == ["template"]
    assert reflection == templated_reflection(attempt1, 0.0, 1)
    assert f"different action than '{attempt1.actions[0]}'" in reflection
    prompts = [call["messages"][0]["content"] for call in lm.history if call["method"] == "score"]
    first_prompts, second_prompts = prompts[: len(attempt1.steps)], prompts[len(attempt1.steps):]
    assert all(reflection not in p for p in first_prompts) and all("- keep it simple" in p for p in first_prompts)
    assert second_prompts and all(SECTION in p and f"- {reflection}" in p for p in second_prompts)
    assert attempt2.actions[0] != attempt1.actions[0]
    assert agent.reflections == ["keep it simple"]  # the caller's agent is left as it was


@pytest.mark.parametrize("avoid", [False, True])
def test_avoid_first_actions_makes_every_retry_a_new_episode(game24, avoid) -> None:
    """An agent that ignores its reflections repeats itself, unless the reflection is made binding."""
    agent = ReActAgent(llm.load("scripted", default_score=-1.0), mode="choose", few_shot=False)
    result = make_planner("reflexion", agent, EnvRewardTarget(), max_trials=3,
                          avoid_first_actions=avoid).solve(game24, "901")
    firsts = [a.actions[0] for a in result.candidates]
    assert result.meta["trials"] == 3
    if not avoid:
        assert len({tuple(a.actions) for a in result.candidates}) == 1
    else:
        assert len(set(firsts)) == 3
        # each retry took the best action left: the first listed one not tried before
        listed = game24.reset(task_id="901")[1]["admissible_actions"]
        assert firsts == [a for a in listed if a in firsts][:3] == listed[:3]
    assert agent.reflections == []


def test_a_generating_agent_writes_its_own_reflection(game24) -> None:
    lm = llm.load("scripted", answers={
        "This attempt failed": "Reflection: I wrote the answer too early; combine numbers step by step.",
        "next action": "Thought: guess.\nAction: Answer: 1 + 1 + 4 + 6 = 24",
    })
    agent = ReActAgent(lm, mode="generate", few_shot=False)
    result = make_planner("reflexion", agent, EnvRewardTarget(), max_trials=3).solve(game24, "0")
    assert result.meta["trials"] == 3 and not result.trajectory.success
    assert result.meta["reflection_writers"] == ["llm", "llm"]
    text = "I wrote the answer too early; combine numbers step by step."
    assert result.meta["reflections"] == [text, text]
    action_prompts = [c["messages"][0]["content"] for c in lm.history if "next action" in c["messages"][-1]["content"]]
    assert SECTION not in action_prompts[0] and f"- {text}" in action_prompts[1]
    assert result.cost.llm_calls == 3 + 2  # three one-step attempts and two reflections


def test_calibrate_threshold_picks_the_best_separating_cut() -> None:
    assert calibrate_threshold([3.0, 4.0], [1.0, 2.0]) == 2.5
    assert calibrate_threshold([2.0, 3.0], [0.0, 1.0, 2.5]) == 1.5  # balanced accuracy 5/6
    for pos, neg in (([], [1.0]), ([1.0], [])):
        with pytest.raises(ValueError, match="both successful and failed"):
            calibrate_threshold(pos, neg)


def test_calibrate_on_labelled_dev_trajectories(game24) -> None:
    dev = game24.task_ids("dev")[:3]
    trajs = [rollout(game24, ExpertAgent(), t) for t in dev] + [rollout(game24, RandomAgent(), t) for t in dev]
    assert any(t.success for t in trajs) and not all(t.success for t in trajs)
    threshold = calibrate_on(EnvRewardTarget(), trajs)
    assert all((t.score >= threshold) == bool(t.success) for t in trajs)


def test_a_target_without_a_success_threshold_needs_one() -> None:
    agent = RandomAgent()
    with pytest.raises(ValueError, match="reflexion needs threshold=: calibrate it"):
        make_planner("reflexion", agent, ScoresInOrder([]))
    assert make_planner("reflexion", agent, ScoresInOrder([]), threshold=0.3).threshold == 0.3
