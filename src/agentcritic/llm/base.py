"""The contract every language-model backend follows: messages in, texts or log-probs out.

No heavy imports here: this module is imported by ``import agentcritic.llm``.
"""

from __future__ import annotations

import abc
import dataclasses
import threading
import time
from collections.abc import Sequence
from typing import Any, Union

Message = dict[str, str]
#: A conversation (``[{"role": ..., "content": ...}, ...]``) or a plain string (one user message).
Messages = Union[str, Sequence[Message]]

ROLES = ("system", "user", "assistant", "tool")


class LLMError(RuntimeError):
    """A language model could not answer: unreachable server, bad reply, missing capability."""


@dataclasses.dataclass
class Usage:
    """What a backend has spent since it was loaded (or since :meth:`LM.reset_usage`).

    ``calls`` counts ``generate``/``score`` calls that needed the model (answers served wholly from
    the score cache are not counted); ``prompt_tokens`` counts the tokens the model read (for
    ``score``: the prompt plus every candidate), ``completion_tokens`` the tokens it wrote,
    ``seconds`` the wall time spent inside the backend.
    """

    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0

    def copy(self) -> Usage:
        return dataclasses.replace(self)

    def __add__(self, other: Usage) -> Usage:
        return Usage(self.calls + other.calls, self.prompt_tokens + other.prompt_tokens,
                     self.completion_tokens + other.completion_tokens, self.seconds + other.seconds)

    def __sub__(self, other: Usage) -> Usage:
        """``after - before``: the cost of what ran in between."""
        return Usage(self.calls - other.calls, self.prompt_tokens - other.prompt_tokens,
                     self.completion_tokens - other.completion_tokens, self.seconds - other.seconds)


def as_messages(messages: Messages) -> list[Message]:
    """Normalise ``messages`` to a list of ``{"role", "content"}`` dicts, checking its shape."""
    if isinstance(messages, str):
        return [{"role": "user", "content": messages}]
    out: list[Message] = []
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or "role" not in m or "content" not in m:
            raise ValueError(f"message {i} must be a dict with 'role' and 'content', got {m!r}")
        if m["role"] not in ROLES:
            raise ValueError(f"message {i} has role {m['role']!r}; expected one of {ROLES}")
        if not isinstance(m["content"], str):
            raise ValueError(f"message {i} content must be a string, got {type(m['content']).__name__}")
        out.append({"role": m["role"], "content": m["content"]})
    if not out:
        raise ValueError("messages is empty: give at least one message")
    return out


# The plain-text template used where no chat template is known (the ``openai`` backend's ``score``,
# or ``template="plain"`` on the ``hf`` backend). It reads like the transcripts base models were
# trained on; the candidate continues the final "Assistant:" after one space, the way lm-eval
# scores a continuation (" Paris" after "Answer:").
PLAIN_ROLE_NAMES = {"system": "System", "user": "User", "assistant": "Assistant", "tool": "Tool"}
PLAIN_CANDIDATE_PREFIX = " "


def render_plain(messages: Messages) -> str:
    """Render a conversation as plain text ending in the generation prompt ``"Assistant:"``.

    ``[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]`` becomes::

        System: Be brief.
        User: Hi
        Assistant:

    A candidate reply ``c`` is then scored as the continuation ``" " + c``.
    """
    lines = [f"{PLAIN_ROLE_NAMES[m['role']]}: {m['content']}" for m in as_messages(messages)]
    return "\n".join(lines + ["Assistant:"])


def cut_at_stop(text: str, stop: Sequence[str] | None) -> str:
    """``text`` up to (not including) the earliest of the ``stop`` strings."""
    if not stop:
        return text
    cut = len(text)
    for s in stop:
        if s:
            i = text.find(s)
            if i != -1:
                cut = min(cut, i)
    return text[:cut]


def normalise_stop(stop: str | Sequence[str] | None) -> list[str] | None:
    if stop is None:
        return None
    if isinstance(stop, str):
        return [stop]
    return [s for s in stop if s] or None


class LM(abc.ABC):
    """One API over every backend (see :func:`agentcritic.llm.load`)."""

    #: the registry name of the backend
    backend: str = "base"

    def __init__(self) -> None:
        self._usage = Usage()
        self._usage_lock = threading.Lock()

    @property
    def usage(self) -> Usage:
        """A snapshot of what this backend has spent (subtract two snapshots for the cost between)."""
        with self._usage_lock:
            return self._usage.copy()

    def reset_usage(self) -> None:
        with self._usage_lock:
            self._usage = Usage()

    def _count(self, *, calls: int = 1, prompt_tokens: int = 0, completion_tokens: int = 0,
               seconds: float = 0.0) -> None:
        with self._usage_lock:
            self._usage.calls += calls
            self._usage.prompt_tokens += prompt_tokens
            self._usage.completion_tokens += completion_tokens
            self._usage.seconds += seconds

    @abc.abstractmethod
    def generate(self, messages: Messages, n: int = 1, temperature: float = 0.0, max_tokens: int = 128,
                 stop: str | Sequence[str] | None = None, seed: int | None = None) -> list[str]:
        """``n`` replies of the assistant to ``messages``.

        ``temperature`` 0 is greedy decoding (the ``n`` replies are then equal); above 0 the replies
        are sampled, reproducibly when ``seed`` is given. Each reply is cut before the first of the
        ``stop`` strings and holds at most ``max_tokens`` tokens.
        """

    @abc.abstractmethod
    def score(self, messages: Messages, candidates: Sequence[str]) -> list[float]:
        """``log p(candidate | messages)`` for each candidate, summed over the candidate's tokens.

        The candidate is the start of the assistant's reply: it follows the chat template's
        generation prompt. An empty candidate scores 0.0.
        """

    def close(self) -> None:
        """Free what the backend holds (model memory, connections). Safe to call twice."""

    def __enter__(self) -> LM:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} backend={self.backend!r}>"


def check_generate_args(n: int, temperature: float, max_tokens: int) -> None:
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    if max_tokens < 0:
        raise ValueError(f"max_tokens must be >= 0, got {max_tokens}")


class Timer:
    """``with Timer() as t: ...; t.seconds``"""

    def __enter__(self) -> Timer:
        self._t0 = time.perf_counter()
        self.seconds = 0.0
        return self

    def __exit__(self, *exc: Any) -> None:
        self.seconds = time.perf_counter() - self._t0
