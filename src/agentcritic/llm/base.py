"""The contract every language-model backend follows: messages in, texts or log-probs out.

No heavy imports here: this module is imported by ``import agentcritic.llm``.
"""

from __future__ import annotations

import abc
import contextlib
import contextvars
import dataclasses
import functools
import inspect
import json
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Union

from agentcritic.errors import AgentCriticError

Message = dict[str, str]
#: A conversation (``[{"role": ..., "content": ...}, ...]``) or a plain string (one user message).
Messages = Union[str, Sequence[Message]]

ROLES = ("system", "user", "assistant", "tool")


class LLMError(AgentCriticError, RuntimeError):
    """A language model could not answer: unreachable server, bad reply, missing capability."""


class ConstraintUnsupported(LLMError):
    """A backend (or the server behind it) cannot constrain its replies to a pattern (``generate(pattern=)``)."""


#: what to use instead when a backend cannot constrain its replies (see :class:`ConstraintUnsupported`)
CONSTRAINT_ALTERNATIVES = (
    "use the hf or smollm2 backend (a logits processor), the llamacpp backend, or the openai backend "
    "against a server that applies a JSON schema's string pattern as a grammar (llama.cpp's server, vLLM, "
    "SGLang); or turn constrained decoding off (constrain=False)"
)


def cannot_constrain(backend: str, why: str) -> ConstraintUnsupported:
    """The one-paragraph error for a backend that cannot apply a reply pattern."""
    return ConstraintUnsupported(f"the {backend} backend cannot constrain its replies to a pattern: {why}. "
                                 f"To decode under a grammar, {CONSTRAINT_ALTERNATIVES}.")


def generate_with_pattern(lm: LM, messages: Messages, pattern: str, **kwargs: Any) -> list[str]:
    """``lm.generate(messages, pattern=pattern, **kwargs)``, or :class:`ConstraintUnsupported` naming
    the backend when its ``generate`` takes no ``pattern`` (a backend written before constraints)."""
    if "pattern" not in inspect.signature(lm.generate).parameters:
        raise cannot_constrain(getattr(lm, "backend", type(lm).__name__), "its generate() takes no pattern")
    return lm.generate(messages, pattern=pattern, **kwargs)


def pattern_response_format(pattern: str) -> dict[str, Any]:
    """An OpenAI ``response_format`` asking for ``{"reply": <a full match of pattern>}``.

    JSON schema's string ``pattern`` is how OpenAI-compatible servers take a regular expression
    (llama.cpp turns it into a grammar; vLLM and SGLang into their guided decoding). The grammar writes
    the string's characters raw, so a pattern whose matches may hold ``"`` or a backslash can break the
    JSON on llama.cpp: keep them out of its character classes (``[^\\n"\\\\]``).
    """
    schema = {"type": "object", "properties": {"reply": {"type": "string", "pattern": f"^(?:{pattern})$"}},
              "required": ["reply"]}
    return {"type": "json_schema", "json_schema": {"name": "reply", "schema": schema}}


def unwrap_pattern_reply(text: str, backend: str) -> str:
    """The ``reply`` string of a reply constrained by :func:`pattern_response_format`.

    A reply cut by ``max_tokens`` before its JSON closed gives the text written so far; a reply that is
    not that JSON object at all means the server ignored the schema (:class:`ConstraintUnsupported`).
    """
    try:
        data = json.loads(text, strict=False)  # llama.cpp's grammar writes newlines raw
    except json.JSONDecodeError:
        cut = re.match(r'\s*\{\s*"reply"\s*:\s*"(.*)', text, re.DOTALL)
        if cut is not None:
            return cut.group(1).rstrip().removesuffix("}").rstrip().removesuffix('"')
        data = None
    if isinstance(data, dict) and isinstance(data.get("reply"), str):
        return data["reply"]
    raise cannot_constrain(backend, f"it was asked for a JSON object {{\"reply\": ...}} through response_format "
                           f"but answered {text[:200]!r}, so it ignores JSON schemas")


class LLMOptionsError(AgentCriticError, ValueError):
    """Backend options that cannot be used: an unknown backend or option, a missing or mistyped value.

    Not an :class:`LLMError`: retrying cannot help, the options must change.
    """


def is_infrastructure_failure(exc: BaseException) -> bool:
    """True when ``exc`` says the machinery failed (the LLM server, the network, a worker), not the task.

    Work that failed this way is not finished: a resumed run does it again.
    """
    from concurrent.futures.process import BrokenProcessPool

    return isinstance(exc, (LLMError, TimeoutError, ConnectionError, BrokenProcessPool))


class LLMFailureRateError(AgentCriticError, RuntimeError):
    """A stage's LLM calls failed more often than its ``max_llm_failure_rate`` allows.

    Not an :class:`LLMError` (that is one call); this stops the stage. Finished work is kept and a
    re-run of the same command does the failed work again.
    """


@dataclasses.dataclass
class LLMCalls:
    """LLM calls and how many failed, with where the last failure came from.

    Every backend counts each ``generate``/``score`` call into the per-process total
    (:func:`process_llm_calls`) and into every :func:`count_llm_calls` block around it; a call
    failed when it raised an infrastructure failure (:func:`is_infrastructure_failure`: a dead,
    hung or misbehaving server), not when its arguments were wrong.
    """

    calls: int = 0
    failures: int = 0
    backend: str = ""  # the backend of the last failure
    url: str = ""  # where that backend was reached (the server's URL; a model name for local backends)
    last_error: str = ""

    def copy(self) -> LLMCalls:
        return dataclasses.replace(self)

    def add(self, other: LLMCalls | dict[str, Any] | None) -> LLMCalls:
        """Add ``other`` (or the ``llm_*`` fields of a record, see :meth:`as_fields`) into this one."""
        if isinstance(other, dict):
            other = LLMCalls.from_fields(other)
        if other is not None:
            self.calls += other.calls
            self.failures += other.failures
            if other.failures:
                self.backend, self.url, self.last_error = other.backend, other.url, other.last_error
        return self

    def as_fields(self) -> dict[str, Any]:
        """``llm_calls``/``llm_failures`` (and where the last failure came from, when one did) for a record."""
        out: dict[str, Any] = {"llm_calls": self.calls, "llm_failures": self.failures}
        if self.failures:
            out.update(llm_backend=self.backend, llm_url=self.url, llm_last_error=self.last_error)
        return out

    @classmethod
    def from_fields(cls, data: dict[str, Any]) -> LLMCalls:
        return cls(int(data.get("llm_calls") or 0), int(data.get("llm_failures") or 0),
                   str(data.get("llm_backend") or ""), str(data.get("llm_url") or ""),
                   str(data.get("llm_last_error") or ""))

    @property
    def rate(self) -> float:
        return self.failures / self.calls if self.calls else 0.0

    def where(self) -> str:
        """``the openai backend at http://…/v1``: who failed, for an error message."""
        return f"the {self.backend or 'unknown'} backend" + (f" at {self.url}" if self.url else "")


_PROCESS_CALLS = LLMCalls()
_PROCESS_LOCK = threading.Lock()
#: the :func:`count_llm_calls` blocks open in this context, innermost last
_OPEN_COUNTS: contextvars.ContextVar[tuple[LLMCalls, ...]] = contextvars.ContextVar("llm_counts", default=())
#: True inside a counted backend call, so a backend method calling another is one call
_IN_CALL: contextvars.ContextVar[bool] = contextvars.ContextVar("llm_in_call", default=False)


def process_llm_calls() -> LLMCalls:
    """This process's LLM calls and failures since it started (a snapshot)."""
    with _PROCESS_LOCK:
        return _PROCESS_CALLS.copy()


@contextlib.contextmanager
def count_llm_calls() -> Iterator[LLMCalls]:
    """``with count_llm_calls() as counted: ...``: the LLM calls made inside the block, in this thread.

    Blocks nest (an episode inside a planner's search counts in both). A unit of work (an episode,
    a refined trajectory) counts its calls this way and writes them into its record
    (:meth:`LLMCalls.as_fields`), so the stage can sum them across worker processes.
    """
    counted = LLMCalls()
    token = _OPEN_COUNTS.set(_OPEN_COUNTS.get() + (counted,))
    try:
        yield counted
    finally:
        _OPEN_COUNTS.reset(token)


def _note_call(lm: LM, error: BaseException | None) -> None:
    failed = error is not None and is_infrastructure_failure(error)
    message = f"{type(error).__name__}: {error}"[:500] if failed else ""
    with _PROCESS_LOCK:
        for counts in (_PROCESS_CALLS, *_OPEN_COUNTS.get()):
            counts.calls += 1
            if failed:
                counts.failures += 1
                counts.backend, counts.url, counts.last_error = lm.backend, lm.where, message


def _counted(method: Callable[..., Any]) -> Callable[..., Any]:
    """``method`` (a backend's ``generate`` or ``score``) counted as one LLM call (see :class:`LLMCalls`)."""

    @functools.wraps(method)
    def counted(self: LM, *args: Any, **kwargs: Any) -> Any:
        if _IN_CALL.get():  # a backend method calling another: the outer call counts
            return method(self, *args, **kwargs)
        token = _IN_CALL.set(True)
        try:
            if self.thread_safe:
                result = method(self, *args, **kwargs)
            else:  # an in-process model: threads of one worker take turns (see LM.thread_safe)
                with self.__dict__.setdefault("_call_lock", threading.RLock()):
                    result = method(self, *args, **kwargs)
        except BaseException as exc:
            _note_call(self, exc)
            raise
        finally:
            _IN_CALL.reset(token)
        _note_call(self, None)
        return result

    counted.__wrapped_llm_call__ = True  # type: ignore[attr-defined]
    return counted


def check_failure_rate(counts: LLMCalls, max_rate: float, what: str) -> None:
    """Raise :class:`LLMFailureRateError` when more than ``max_rate`` of ``counts.calls`` failed.

    ``what`` names the work (``synthesize/explore``); the message names the backend and its URL.
    """
    if not counts.failures or counts.failures <= max_rate * counts.calls:
        return
    raise LLMFailureRateError(
        f"{what}: {counts.failures} of {counts.calls} LLM calls failed ({counts.rate:.0%}), more than "
        f"max_llm_failure_rate = {max_rate:g} allows, on {counts.where()}; last error: "
        f"{counts.last_error.rstrip('. ')}. Once the server answers, run the same command again: finished "
        "work is kept and the failed work is done again."
    )


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
    #: where the backend is reached, for error messages and failure counts (a server's URL)
    where: str = ""
    #: True where calls from several threads may run at once (a client of a server); an in-process
    #: model's calls take turns, so ``--concurrency`` is safe with it but gains nothing
    thread_safe: bool = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # every backend's generate/score is counted (LLMCalls) without each backend doing it itself
        super().__init_subclass__(**kwargs)
        for name in ("generate", "score"):
            method = cls.__dict__.get(name)
            if callable(method) and not getattr(method, "__isabstractmethod__", False) \
                    and not getattr(method, "__wrapped_llm_call__", False):
                setattr(cls, name, _counted(method))

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
                 stop: str | Sequence[str] | None = None, seed: int | None = None,
                 pattern: str | None = None) -> list[str]:
        """``n`` replies of the assistant to ``messages``.

        ``temperature`` 0 is greedy decoding (the ``n`` replies are then equal); above 0 the replies
        are sampled, reproducibly when ``seed`` is given. Each reply is cut before the first of the
        ``stop`` strings and holds at most ``max_tokens`` tokens.

        ``pattern``: a regular expression (a portable subset: literals, ``[]`` classes, ``(?:…|…)``,
        ``?``, ``*``, ``+``, ``{m,n}``) that each reply fully matches, by constrained decoding; a reply
        cut by ``max_tokens`` is a prefix of a match. A backend that cannot constrain raises
        :class:`ConstraintUnsupported`.
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


class PromptLM(LM):
    """A backend that scores through one prompt text: the messages rendered (:meth:`render`), each
    candidate, after :attr:`candidate_prefix`, scored as a continuation of it (:meth:`score_text`).

    Where the backend knows no chat template (:attr:`_plain_template`), the prompt is
    :func:`render_plain`'s. Subclasses give :attr:`_plain_template`, :meth:`_render_chat` and
    :meth:`_score_new`, and set ``self._scores`` (an :class:`~agentcritic.llm.cache.LRUCache`); this
    class keeps the scores per (prompt, continuation).
    """

    _scores: Any

    @property
    @abc.abstractmethod
    def _plain_template(self) -> bool:
        """True when prompts are rendered with :func:`render_plain` rather than a chat template."""

    @abc.abstractmethod
    def _render_chat(self, messages: list[Message]) -> str:
        """``messages`` through the chat template, ending with the generation prompt."""

    def render(self, messages: Messages) -> str:
        """The prompt text for ``messages``, ending where the assistant's reply starts."""
        msgs = as_messages(messages)
        return render_plain(msgs) if self._plain_template else self._render_chat(msgs)

    @property
    def candidate_prefix(self) -> str:
        """Text put before a candidate reply: ``" "`` after the plain template's "Assistant:"."""
        return PLAIN_CANDIDATE_PREFIX if self._plain_template else ""

    @abc.abstractmethod
    def _score_new(self, prompt: str, continuations: list[str]) -> list[float]:
        """The scores of ``continuations`` (distinct, non-empty, none cached yet), usage counted."""

    def score(self, messages: Messages, candidates: Sequence[str]) -> list[float]:
        prompt = self.render(messages)
        pre = self.candidate_prefix
        return self.score_text(prompt, [pre + c if c else "" for c in candidates])

    def score_text(self, prompt: str, continuations: Sequence[str]) -> list[float]:
        """``log p(continuation | prompt)`` for raw texts (no template), summed over its tokens.

        An empty continuation scores 0.0; one scored before after the same prompt comes from the
        cache; the rest go to :meth:`_score_new`, each distinct one once.
        """
        continuations = list(continuations)
        out: list[float | None] = []
        todo: dict[str, None] = {}  # the distinct ones to score, in order
        for c in continuations:
            hit = self._scores.get((prompt, c)) if c else 0.0
            out.append(hit)
            if hit is None:
                todo[c] = None
        if todo:
            found = dict(zip(todo, self._score_new(prompt, list(todo))))
            for c, value in found.items():
                self._scores.put((prompt, c), value)
            out = [found[c] if x is None else x for c, x in zip(continuations, out)]
        return [float(x) for x in out]  # type: ignore[arg-type]


def check_generate_args(n: int, temperature: float, max_tokens: int) -> None:
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    if max_tokens < 0:
        raise ValueError(f"max_tokens must be >= 0, got {max_tokens}")


def generate_inputs(messages: Messages, n: int, temperature: float, max_tokens: int,
                    stop: str | Sequence[str] | None) -> tuple[list[Message], list[str] | None]:
    """What a chat backend's ``generate`` starts with: the arguments checked, the messages as a list
    (:func:`as_messages`) and the stop strings normalised (:func:`normalise_stop`)."""
    check_generate_args(n, temperature, max_tokens)
    return as_messages(messages), normalise_stop(stop)


def usage_tokens(reply: dict[str, Any]) -> tuple[int, int]:
    """(prompt tokens, completion tokens) from an OpenAI-style reply's ``usage``; 0 where it says nothing."""
    usage = reply.get("usage") or {}
    return int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)


class Timer:
    """``with Timer() as t: ...; t.seconds``"""

    def __enter__(self) -> Timer:
        self._t0 = time.perf_counter()
        self.seconds = 0.0
        return self

    def __exit__(self, *exc: Any) -> None:
        self.seconds = time.perf_counter() - self._t0
