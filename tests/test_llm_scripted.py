"""The scripted test double, and the parts of the shared API that need no model."""

from __future__ import annotations

import pytest

from agentcritic import llm
from agentcritic.llm.base import (
    Message,
    PromptLM,
    Usage,
    as_messages,
    cut_at_stop,
    generate_inputs,
    render_plain,
    usage_tokens,
)
from agentcritic.llm.cache import LRUCache


def test_answers_from_a_list_in_order_then_runs_out() -> None:
    lm = llm.load("scripted", answers=["Action: look", "Action: go north", "Action: wait"])
    assert lm.generate("hi") == ["Action: look"]
    assert lm.generate("hi", n=2, temperature=0.7) == ["Action: go north", "Action: wait"]
    with pytest.raises(llm.LLMError, match="ran out of answers after 3"):
        lm.generate("hi")


def test_answers_from_a_dict_match_the_last_user_message() -> None:
    lm = llm.load("scripted", answers={"kitchen": "Action: open fridge", "door": ["A", "B"]},
                  default="Action: look")
    msgs = [{"role": "user", "content": "You see a door."}, {"role": "assistant", "content": "ok"},
            {"role": "user", "content": "Now you are in the kitchen."}]
    assert lm.generate(msgs) == ["Action: open fridge"]
    assert [lm.generate("a door")[0] for _ in range(3)] == ["A", "B", "A"]
    assert lm.generate("nothing matches") == ["Action: look"]
    strict = llm.load("scripted", answers={"kitchen": "x"})
    with pytest.raises(llm.LLMError, match="no scripted answer matches"):
        strict.generate("the garden")


def test_stop_strings_cut_scripted_answers() -> None:
    lm = llm.load("scripted", answers=["Thought: go\nAction: look\nObservation: dark"])
    assert lm.generate("x", stop=["\nObservation"]) == ["Thought: go\nAction: look"]


def test_scores_from_a_dict_or_a_callable() -> None:
    lm = llm.load("scripted", scores={"Action: look": -1.5}, default_score=-7.0)
    assert lm.score("x", ["Action: look", "Action: jump", ""]) == [-1.5, -7.0, 0.0]
    by_len = llm.load("scripted", scores=lambda msgs, c: -float(len(c)) - len(msgs))
    assert by_len.score([{"role": "user", "content": "q"}], ["ab", "abcd"]) == [-3.0, -5.0]


def test_usage_and_history_are_recorded() -> None:
    lm = llm.load("scripted", answers=["one two three"], scores={})
    lm.generate("a b", n=1, seed=5)
    lm.score("a b", ["c d e"])
    u = lm.usage
    assert u == Usage(calls=2, prompt_tokens=2 + 2 + 3, completion_tokens=3, seconds=0.0)
    assert [h["method"] for h in lm.history] == ["generate", "score"]
    assert lm.history[0]["seed"] == 5 and lm.history[1]["candidates"] == ["c d e"]
    lm.reset_usage()
    assert lm.usage == Usage()


def test_usage_snapshots_subtract_to_the_cost_between() -> None:
    a, b = Usage(1, 10, 5, 0.5), Usage(3, 25, 9, 1.25)
    assert b - a == Usage(2, 15, 4, 0.75) and a + (b - a) == b


def test_messages_are_checked() -> None:
    assert as_messages("hi") == [{"role": "user", "content": "hi"}]
    bad_ones = ([], [{"role": "user"}], [{"role": "robot", "content": "x"}], [{"role": "user", "content": 3}])
    for bad in bad_ones:
        with pytest.raises(ValueError):
            as_messages(bad)
    lm = llm.load("scripted", answers=["x"])
    with pytest.raises(ValueError, match="n must be"):
        lm.generate("hi", n=0)


def test_plain_template_and_stop_helpers() -> None:
    text = render_plain([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
                         {"role": "assistant", "content": "Hello."}, {"role": "user", "content": "Go"}])
    assert text == "System: Be brief.\nUser: Hi\nAssistant: Hello.\nUser: Go\nAssistant:"
    assert cut_at_stop("abcXdefYg", ["Y", "X"]) == "abc" and cut_at_stop("abc", None) == "abc"


def test_scripted_is_never_the_default() -> None:
    assert llm.DEFAULT_BACKEND == "smollm2"
    assert "scripted" not in llm.load.__defaults__


class _CountingPromptLM(PromptLM):
    """A PromptLM whose score of a continuation is minus its length; it records what it was asked."""

    def __init__(self, plain: bool) -> None:
        super().__init__()
        self._scores = LRUCache(16)
        self.plain = plain
        self.asked: list[list[str]] = []

    @property
    def _plain_template(self) -> bool:
        return self.plain

    def _render_chat(self, messages: list[Message]) -> str:
        return "|".join(f"<{m['role']}>{m['content']}" for m in messages) + "|<assistant>"

    def _score_new(self, prompt: str, continuations: list[str]) -> list[float]:
        self.asked.append(list(continuations))
        return [-float(len(c)) for c in continuations]

    def generate(self, messages, n=1, temperature=0.0, max_tokens=128, stop=None, seed=None):  # noqa: ANN001
        raise NotImplementedError


def test_a_prompt_lm_scores_each_new_continuation_once_and_caches_it() -> None:
    lm = _CountingPromptLM(plain=True)
    assert lm.render("Hi") == render_plain("Hi") and lm.candidate_prefix == " "
    # " ab" twice and an empty candidate: one question, for the distinct non-empty one
    assert lm.score("Hi", ["ab", "", "ab"]) == [-3.0, 0.0, -3.0]
    assert lm.asked == [[" ab"]]
    assert lm.score("Hi", ["ab", "abcd"]) == [-3.0, -5.0]
    assert lm.asked == [[" ab"], [" abcd"]]  # " ab" came from the cache
    chat = _CountingPromptLM(plain=False)
    assert chat.render("Hi") == "<user>Hi|<assistant>" and chat.candidate_prefix == ""
    assert chat.score("Hi", ["ab"]) == [-2.0]


def test_generate_inputs_checks_the_arguments_and_normalises_messages_and_stops() -> None:
    assert generate_inputs("hi", 1, 0.0, 8, "\n") == ([{"role": "user", "content": "hi"}], ["\n"])
    assert generate_inputs("hi", 1, 0.0, 8, ["", ""])[1] is None
    with pytest.raises(ValueError, match="n must be at least 1"):
        generate_inputs("hi", 0, 0.0, 8, None)
    assert usage_tokens({"usage": {"prompt_tokens": 7, "completion_tokens": None}}) == (7, 0)
    assert usage_tokens({}) == (0, 0)
