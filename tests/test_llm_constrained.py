"""Constrained decoding: replies fully match a pattern on every backend that can apply one, game24's
action grammar, the error of a backend that cannot, and the ReAct agent decoding under the grammar."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import httpx
import pytest

from agentcritic import envs, llm
from agentcritic.agents import ReActAgent, make_agent, rollout
from agentcritic.config import RolloutConfig
from agentcritic.llm.base import ConstraintUnsupported, generate_with_pattern
from agentcritic.specs import PolicySpec

sys.path.insert(0, str(Path(__file__).parent))
from llm_server import make_tiny_llama  # noqa: E402

MSGS = [{"role": "user", "content": "Observation: the door is closed.\nWhat is the next action?"}]
ACTIONS = "Action: (?:go north|open fridge|take apple from table|look [a-z]{1,6})"


@pytest.fixture(scope="module")
def tiny_lm():
    folder = make_tiny_llama(Path(__import__("tempfile").mkdtemp()) / "tiny")
    return llm.load("hf", path=folder, threads=1)


def test_hf_replies_fully_match_the_pattern_greedy_and_sampled(tiny_lm) -> None:
    free = tiny_lm.generate(MSGS, max_tokens=24)[0]
    assert re.fullmatch(ACTIONS, free) is None  # the random tiny model writes no action by itself
    greedy = tiny_lm.generate(MSGS, max_tokens=48, pattern=ACTIONS)
    sampled = tiny_lm.generate(MSGS, n=6, temperature=1.5, max_tokens=48, seed=3, pattern=ACTIONS)
    assert all(re.fullmatch(ACTIONS, t) for t in greedy + sampled), greedy + sampled
    assert len(set(sampled)) > 1  # sampling still samples, among the allowed tokens
    # the same seed gives the same samples
    assert tiny_lm.generate(MSGS, n=6, temperature=1.5, max_tokens=48, seed=3, pattern=ACTIONS) == sampled


def test_hf_ends_a_reply_only_on_a_complete_match(tiny_lm) -> None:
    # "7" alone is a prefix, not a match: the reply must go on to three digits and then stop
    for text in tiny_lm.generate(MSGS, n=4, temperature=1.0, max_tokens=16, seed=0, pattern="[0-9]{3}"):
        assert re.fullmatch("[0-9]{3}", text), text


def test_an_invalid_pattern_is_an_options_error(tiny_lm) -> None:
    with pytest.raises(llm.LLMOptionsError, match="not a valid regular expression"):
        tiny_lm.generate(MSGS, max_tokens=4, pattern="(unclosed")


# ------------------------------------------------------------------ game24's action grammar
def test_game24_pattern_accepts_every_expert_action_and_rejects_numbers_off_the_table() -> None:
    env = envs.make("game24")
    checked = 0
    for task in env.task_ids("train", limit=40) + ["5@10"]:
        env.reset(task_id=task)
        while (action := env.expert_action()) is not None:
            pattern = env.action_pattern()
            assert re.fullmatch(pattern, action), (task, action)
            for row in env.admissible_actions():  # every admissible action is well formed too
                assert re.fullmatch(pattern, row), (task, row)
            checked += 1
            env.step(action)
    assert checked > 100
    env.reset(task_id="900")  # numbers 4 5 6 10
    pattern = env.action_pattern()
    assert re.fullmatch(pattern, "10 - 4 = 6 (left: 5 6 6)")
    assert re.fullmatch(pattern, "10 - 4 = 7 (left: 5 6 7)")  # wrong arithmetic is the env's to judge
    assert not re.fullmatch(pattern, "10 - 3 = 7 (left: 5 6 7)")  # 3 is not on the table
    assert not re.fullmatch(pattern, "4 + 4 = 8 (left: 5 6 8)")  # only one 4
    assert not re.fullmatch(pattern, "10 - 4 = 6 (left: 4 6 6)")  # 4 was used, 5 is left
    assert not re.fullmatch(pattern, "Answer: (10 - 4) * (5 - 6) = 24")  # four numbers are left, not one
    env.step("Answer: 4 * 6 = 24")  # a wrong answer ends the episode
    assert env.action_pattern() is None


# ------------------------------------------------------------------ backends that cannot constrain
class _OldLM(llm.LM):
    backend = "legacy"

    def generate(self, messages, n=1, temperature=0.0, max_tokens=128, stop=None, seed=None):  # noqa: ANN001
        return ["Action: look"] * n

    def score(self, messages, candidates):  # noqa: ANN001
        return [0.0] * len(candidates)


def test_a_backend_without_patterns_says_so_and_what_to_use() -> None:
    with pytest.raises(ConstraintUnsupported, match="the legacy backend cannot constrain.*hf or smollm2 backend"):
        generate_with_pattern(_OldLM(), MSGS, "Action: look")


def _openai(handler) -> llm.LM:  # noqa: ANN001
    return llm.load("openai", base_url="http://example.invalid/v1", model="m", max_retries=0,
                    transport=httpx.MockTransport(handler))


def test_openai_sends_the_pattern_as_a_json_schema_and_unwraps_the_reply() -> None:
    sent = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(json.loads(request.content))
        content = '{\n  "reply": "Thought: go\nAction: look"\n}'  # llama.cpp writes the newline raw
        return httpx.Response(200, json={"choices": [{"index": 0, "message": {"content": content}}]})

    assert _openai(handler).generate(MSGS, pattern="Thought: [a-z]+\nAction: look") == ["Thought: go\nAction: look"]
    schema = sent[0]["response_format"]["json_schema"]["schema"]
    assert schema["properties"]["reply"]["pattern"] == "^(?:Thought: [a-z]+\nAction: look)$"
    assert schema["required"] == ["reply"]


@pytest.mark.parametrize("status", [400, 422])
def test_a_server_refusing_the_schema_gives_one_paragraph_naming_it(status: int) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json={"error": {"message": "response_format is not supported"}})

    with pytest.raises(ConstraintUnsupported) as err:
        _openai(handler).generate(MSGS, pattern="Action: look")
    text = str(err.value)
    assert "openai (at http://example.invalid/v1)" in text and f"HTTP {status}" in text
    assert "llamacpp backend" in text and "\n" not in text


def test_a_refusal_for_another_reason_stays_that_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, json={"error": {"message": "Field 'n': Value must be between 1 and 1"}})

    with pytest.raises(llm.LLMError, match="HTTP 400.*Field 'n'") as err:
        _openai(handler).generate(MSGS, n=2, temperature=1.0, pattern="Action: look")
    assert not isinstance(err.value, ConstraintUnsupported)


def test_a_server_ignoring_the_schema_is_caught() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"choices": [{"index": 0, "message": {"content": "I would look."}}]})

    with pytest.raises(ConstraintUnsupported, match="ignores JSON schemas"):
        _openai(handler).generate(MSGS, pattern="Action: look")


def test_scripted_lm_rejects_an_answer_outside_the_pattern() -> None:
    lm = llm.load("scripted", answers=["Action: look", "Action: dance"])
    assert lm.generate(MSGS, pattern="Action: (?:look|go north)") == ["Action: look"]
    with pytest.raises(llm.LLMError, match="does not fully match"):
        lm.generate(MSGS, pattern="Action: (?:look|go north)")


# ------------------------------------------------------------------ the agent
def _expert_replies(task: str) -> list[str]:
    env = envs.make("game24")
    env.reset(task_id=task)
    out = []
    while (action := env.expert_action()) is not None:
        out.append(f"Thought: the numbers left allow it\nAction: {action}")
        env.step(action)
    return out


def test_constrained_generate_mode_on_game24_writes_only_parseable_actions() -> None:
    env = envs.make("game24")
    lm = llm.load("scripted", answers=_expert_replies("900"))
    agent = ReActAgent(lm, mode="generate", constrain=True)
    traj = rollout(env, agent, "900")
    assert traj.success and agent.parse_failures == 0 and env.invalid_actions == 0
    calls = [h for h in lm.history if h["method"] == "generate"]
    assert len(calls) == 4 and all(h["pattern"] for h in calls)
    assert calls[0]["max_tokens"] >= 256  # room for the longest thought and step
    assert "Answer: " in calls[-1]["pattern"] and "left" not in calls[-1]["pattern"]
    # a reply with a number off the table could not have been decoded under the grammar
    bad = llm.load("scripted", answers=["Thought: try\nAction: 10 - 3 = 7 (left: 5 6 7)"])
    traj = rollout(env, ReActAgent(bad, mode="generate", constrain=True), "900")
    assert "does not fully match" in traj.meta["error"]


def test_constrain_is_off_by_default_and_then_passes_no_pattern() -> None:
    lm = llm.load("scripted", answers=["Thought: hm\nAction: 10 - 4 = 6 (left: 5 6 6)"])
    rollout(envs.make("game24", max_steps=1), ReActAgent(lm, mode="generate"), "900")
    assert lm.history[0]["pattern"] is None


def test_constrain_travels_from_the_config_to_the_agent(monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = RolloutConfig(env="game24", policy="smollm2", mode="generate", constrain=True)
    spec = cfg.policy_spec()
    assert spec.constrain and spec.agent_kwargs()["constrain"] is True
    assert "constrain" not in PolicySpec(name="smollm2").agent_kwargs()  # unconstrained records unchanged
    monkeypatch.setattr("agentcritic.agents.load_lm", lambda backend, **kw: llm.load("scripted", answers=[]))
    agent = make_agent("smollm2", **spec.agent_kwargs())
    assert isinstance(agent, ReActAgent) and agent.constrain and agent.name.endswith("-constrained")


# ------------------------------------------------------------------ llama.cpp (slow: loads SmolLM2)
@pytest.mark.slow
def test_llamacpp_in_process_and_served_replies_match_game24s_grammar() -> None:
    pytest.importorskip("xllamacpp")
    from agentcritic.llm.llamacpp import LlamaCppLM, LlamaCppServer

    env = envs.make("game24")
    obs, info = env.reset(task_id="900")
    agent = ReActAgent(llm.load("scripted", answers=[]), mode="generate")
    agent.reset(env, "900", 0)
    from agentcritic.types import Trajectory

    msgs = agent.messages(Trajectory(env="game24", task_id="900", instruction=info["instruction"],
                                     meta={"first_observation": obs}), info)
    pattern = agent.reply_pattern(env.action_pattern())
    lm = LlamaCppLM(score_with=None, threads=2)
    replies = lm.generate(msgs, max_tokens=256, pattern=pattern)
    replies += lm.generate(msgs, n=3, temperature=1.0, max_tokens=256, seed=1, pattern=pattern)
    assert all(re.fullmatch(pattern, r) for r in replies), replies
    assert re.fullmatch(pattern, lm.generate(msgs, max_tokens=256)[0]) is None  # unconstrained, it strays
    lm.close()
    with LlamaCppServer(parallel=1, threads=2) as server:
        served = llm.load("openai", base_url=server.url, max_retries=0)
        replies = served.generate(msgs, max_tokens=256, pattern=pattern)  # llama.cpp's server takes n = 1
        replies += served.generate(msgs, temperature=1.0, max_tokens=256, seed=2, pattern=pattern)
    assert all(re.fullmatch(pattern, r) for r in replies), replies
