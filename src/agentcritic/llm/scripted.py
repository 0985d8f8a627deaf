"""Canned answers for tests (DSPy's ``DummyLM`` idea). A test double: nothing defaults to it.

```python
lm = load("scripted", answers=["Action: look", "Action: go north"])     # in order
lm = load("scripted", answers={"kitchen": "Action: open fridge"})        # by last user message
lm = load("scripted", scores={"Action: look": -1.0}, default_score=-5.0) # or a callable
```
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from agentcritic.llm.base import LM, LLMError, Message, Messages, as_messages, cut_at_stop, generate_inputs


class ScriptedLM(LM):
    """Answers from a list (in order) or a dict (first key found in the last user message).

    Args:
        answers: a list of replies, handed out one per generated sample in order (running out
            raises :class:`LLMError`), or a dict ``{substring: reply or list of replies}``: the first
            key (in dict order) contained in the last user message picks the reply; a list value
            cycles. ``None``: ``generate`` raises.
        default: the reply when no dict key matches (``None``: raise :class:`LLMError`).
        scores: ``{candidate: log-prob}`` or a callable ``(messages, candidate) -> log-prob``.
        default_score: the log-prob of a candidate missing from the ``scores`` dict.

    Every call is appended to :attr:`history` as ``{"method", "messages", ...}`` for assertions.
    Token counts in :attr:`usage` are whitespace-separated words.
    """

    backend = "scripted"

    def __init__(self, answers: Sequence[str] | Mapping[str, str | Sequence[str]] | None = None,
                 default: str | None = None,
                 scores: Mapping[str, float] | Callable[[list[Message], str], float] | None = None,
                 default_score: float = -10.0) -> None:
        super().__init__()
        if isinstance(answers, str):
            answers = [answers]
        self.answers = answers
        self.default = default
        self.scores = scores
        self.default_score = float(default_score)
        self.history: list[dict[str, Any]] = []
        self._next = 0
        self._cycle: dict[str, int] = {}

    def _reply(self, msgs: list[Message]) -> str:
        if self.answers is None:
            raise LLMError("this scripted LM has no answers; pass answers= (a list or a dict)")
        if isinstance(self.answers, Mapping):
            last_user = next((m["content"] for m in reversed(msgs) if m["role"] == "user"), "")
            for key, value in self.answers.items():
                if key in last_user:
                    if isinstance(value, str):
                        return value
                    i = self._cycle.get(key, 0)
                    self._cycle[key] = i + 1
                    return list(value)[i % len(value)]
            if self.default is not None:
                return self.default
            raise LLMError(f"no scripted answer matches the last user message {last_user[:200]!r}; "
                           f"keys: {list(self.answers)}")
        if self._next >= len(self.answers):
            if self.default is not None:
                return self.default
            raise LLMError(f"the scripted LM ran out of answers after {len(self.answers)}")
        self._next += 1
        return self.answers[self._next - 1]

    def generate(self, messages: Messages, n: int = 1, temperature: float = 0.0, max_tokens: int = 128,
                 stop: str | Sequence[str] | None = None, seed: int | None = None,
                 pattern: str | None = None) -> list[str]:
        msgs, stops = generate_inputs(messages, n, temperature, max_tokens, stop)
        texts = [cut_at_stop(self._reply(msgs), stops) for _ in range(n)]
        if pattern is not None:  # a real backend would never write these: the test's script is wrong
            for text in texts:
                if re.fullmatch(pattern, text) is None:
                    raise LLMError(f"the scripted answer {text!r} does not fully match the reply pattern "
                                   f"{pattern!r} that constrained decoding would enforce; fix the test's answers")
        self.history.append({"method": "generate", "messages": msgs, "n": n, "temperature": temperature,
                             "max_tokens": max_tokens, "stop": stops, "seed": seed, "pattern": pattern,
                             "outputs": texts})
        self._count(prompt_tokens=_words(msgs), completion_tokens=sum(len(t.split()) for t in texts))
        return texts

    def score(self, messages: Messages, candidates: Sequence[str]) -> list[float]:
        msgs = as_messages(messages)
        out = []
        for c in candidates:
            if not c:
                out.append(0.0)
            elif callable(self.scores):
                out.append(float(self.scores(msgs, c)))
            elif self.scores is not None:
                out.append(float(self.scores.get(c, self.default_score)))
            else:
                out.append(self.default_score)
        self.history.append({"method": "score", "messages": msgs, "candidates": list(candidates),
                             "outputs": out})
        self._count(prompt_tokens=_words(msgs) + sum(len(c.split()) for c in candidates))
        return out


def _words(msgs: list[Message]) -> int:
    return sum(len(m["content"].split()) for m in msgs)
