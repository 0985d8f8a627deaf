"""HTTP server for a reward model (FastAPI + uvicorn).

Endpoints:

- ``POST /v1/score`` — JSON list of ``{"intent": str, "trajectory": str | Trajectory dict}`` (or
  ``{"items": [...]}``) → ``{"scores": [float, ...]}`` in input order. A process RM takes
  ``{"text": str}``, ``{"state": str, "actor": str}`` or ``{"trajectory": Trajectory dict, "actor": str}``
  items and answers probabilities. Trajectories are read as :func:`agentcritic.rendering.render`
  renders them, the text the models were trained on.
- ``GET /health`` — ``{"status": "ok", ...}``, never needs the token.
- ``POST /api/generate`` — ARMAP's contract, for drop-in use with their evaluation scripts: a
  multipart form with ``preference_data`` (JSON list of records with ``conversations`` and
  ``output_1``), ``factual_data`` (JSON object, ``{}`` for text envs), ``prompt`` (unused) and image
  files (accepted, ignored: the model reads text) → a JSON list of floats, one per record. Their
  dialogue is mapped onto our rendering: the human turn's intent, then ``Action:`` for every
  assistant turn and ``Observation:`` for every human turn, without the closing evaluation
  question ("Please evaluate whether …") and answer prefix ("… the score of my last response is").

Safety: binds 127.0.0.1 unless told otherwise; optional bearer token (401 when missing or wrong);
request bodies over ``max_body_bytes`` get 413, more than ``max_batch`` items 413; a body that does
not arrive in full within ``body_timeout_s`` gets 408; malformed input (bad JSON, JSON nested
deeper than :data:`MAX_JSON_DEPTH`, integers longer than :data:`MAX_INT_DIGITS` digits, text that
is not valid Unicode such as a lone surrogate) gets 400/422 with a message saying what was wrong —
user input never causes a 500.

Hostile clients: each request is parsed, validated, rendered and tokenized on its own (on an
encoding thread) *before* it joins a batch, so a bad request fails alone. Texts longer than
``cut_chars_per_token × max_length`` characters are cut (head and last steps kept, the dropped
steps still counted, see :func:`cut_to_window`) before the tokenizer sees them, so a 2 MB text
costs what a text at the model's window costs, and the model reads the text it reads offline
(unless a text averages over ``cut_chars_per_token`` characters a token, or drops more than
:data:`MAX_CUT_STUBS` steps: then the marker's count can differ). A forward holds at most
``max_batch_tokens`` tokens and takes the requests with the fewest tokens left first, so a tiny
request is not held behind big ones; a failure inside a batched forward is retried request by
request, so only the request that fails gets its 500.

Throughput: requests are collected by an asyncio micro-batcher for up to ``batch_wait_ms`` and
scored together in length-sorted passes on a single model thread, so the event loop stays
responsive while the model runs and concurrent clients share forwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
from fastapi import Request  # at module level: FastAPI resolves endpoint annotations from here

from agentcritic.errors import AgentCriticError
from agentcritic.types import RecordError, Trajectory

log = logging.getLogger("agentcritic.rm.server")

DEFAULT_PORT = 8765
TOKEN_ENV = "AGENTCRITIC_RM_TOKEN"
#: deepest JSON nesting a request may have (a score request needs about 6 levels)
MAX_JSON_DEPTH = 64
#: longest integer literal (in digits) a request may hold
MAX_INT_DIGITS = 64
#: at most this many dropped steps are kept as one-line stubs by :func:`cut_to_window`
MAX_CUT_STUBS = 2048


class InputError(AgentCriticError, ValueError):
    """Client input that cannot be scored; becomes a 4xx answer with this message."""

    def __init__(self, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.status = status


class ScoringFailed(AgentCriticError, RuntimeError):
    """The model failed on one request (scored alone after its batch failed); answered with a 500."""


# ----------------------------------------------------------------------------------- parsing
def _parse_int(text: str) -> int:
    digits = len(text.lstrip("-"))
    if digits > MAX_INT_DIGITS:
        raise InputError(
            f"malformed JSON: an integer of {digits} digits; numbers in a request have at most {MAX_INT_DIGITS} digits",
            400,
        )
    return int(text)


def _check_depth(value: Any, limit: int = MAX_JSON_DEPTH) -> None:
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            node = list(node.values())
        elif not isinstance(node, list):
            continue
        if depth > limit:
            raise InputError(f"malformed JSON: nested deeper than {limit} levels; a score request needs about 6", 400)
        stack.extend((child, depth + 1) for child in node if isinstance(child, (list, dict)))


def parse_json(body: bytes | str, what: str = "the body") -> Any:
    """``json.loads`` for untrusted input: every parse failure (bad syntax or encoding, nesting
    deeper than :data:`MAX_JSON_DEPTH`, integers longer than :data:`MAX_INT_DIGITS`) is an
    :class:`InputError` (400) saying what was wrong."""
    try:
        payload = json.loads(body, parse_int=_parse_int)
    except InputError:
        raise
    except RecursionError as exc:
        raise InputError(
            f"malformed JSON: {what} is nested deeper than {MAX_JSON_DEPTH} levels; a score request needs about 6", 400
        ) from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"malformed JSON: {exc}", 400) from exc
    except ValueError as exc:  # e.g. Python's limit on int-from-str conversion
        raise InputError(f"malformed JSON: {exc}", 400) from exc
    _check_depth(payload)
    return payload


def check_text(text: str, where: str) -> None:
    """Refuse text the tokenizer cannot read (a lone surrogate such as ``"\\ud800"``) with a 422."""
    if text.isascii():
        return
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        bad = text[exc.start]
        raise InputError(
            f"{where}: the text holds {ascii(bad)} at character {exc.start}, a lone surrogate that is not valid "
            "Unicode; send text that encodes as UTF-8 (pair surrogates or drop them)"
        ) from exc


def cut_to_window(text: str, max_chars: int, marker: str = "Action:", max_stubs: int = MAX_CUT_STUBS) -> str:
    """``text`` cut in characters so that the reward model's token fitting reads the same text.

    The model keeps a text's head, then a ``[... N earlier steps cut ...]`` marker and as many of
    the last steps (blocks starting with ``marker``) as fit its window of tokens. Over
    ``max_chars`` characters, this keeps the head's first ``max_chars`` characters and the last
    steps up to ``max_chars`` characters (the last one's end when it alone is longer), and replaces
    each dropped step by a bare ``marker`` line (at most ``max_stubs`` of them) so the model still
    counts it in N. With ``max_chars`` many times the window, the token fitting never reaches the
    stubs. A text without steps keeps its first and last ``max_chars // 2`` characters.
    """
    if len(text) <= max_chars:
        return text
    from agentcritic.rm.scoring_model import split_blocks

    head, steps = split_blocks(text, marker)
    if not steps:
        half = max(1, max_chars // 2)
        return text[:half] + text[-half:]
    kept: list[str] = []
    room = max_chars
    for step in reversed(steps):
        if kept and len(step) > room:
            break
        if len(step) > room:  # the last step alone is too long: its start (the marker) and its end
            step = step[: len(marker) + 1] + step[-room:]
        kept.insert(0, step)
        room -= len(step) + 1
    dropped = len(steps) - len(kept)
    stubs = [marker] * min(dropped, max_stubs)
    return "\n".join([head[:max_chars], *stubs, *kept]) if head else "\n".join([*stubs, *kept])


def _trajectory(value: Any, intent: str, where: str) -> Trajectory | str:
    if isinstance(value, str):
        return value
    if not isinstance(value, dict):
        raise InputError(f"{where}: 'trajectory' must be a string or a Trajectory object, got {type(value).__name__}")
    data = dict(value)
    data.setdefault("env", "")
    data.setdefault("task_id", "")
    data.setdefault("instruction", intent)
    steps = data.get("steps", [])
    if not isinstance(steps, list):
        raise InputError(f"{where}: 'trajectory.steps' must be a list of {{action, observation}} objects")
    for k, s in enumerate(steps):
        if not isinstance(s, dict) or not isinstance(s.get("action"), str) or not isinstance(s.get("observation"), str):
            raise InputError(f"{where}: trajectory.steps[{k}] must be an object with string 'action' and 'observation'")
    if "meta" in data and not isinstance(data["meta"], dict):
        raise InputError(f"{where}: 'trajectory.meta' must be an object")
    try:
        return Trajectory.from_dict(data)
    except (RecordError, TypeError) as exc:
        raise InputError(f"{where}: {exc}") from exc


def parse_score_request(payload: Any, kind: str) -> list[Any]:
    """Validate a /v1/score body; return the items the model scores."""
    if isinstance(payload, dict):
        for key in ("items", "pairs", "inputs"):
            if key in payload:
                payload = payload[key]
                break
        else:
            raise InputError("expected a JSON list of items (or an object with an 'items' list)")
    if not isinstance(payload, list):
        raise InputError(f"expected a JSON list of items, got {type(payload).__name__}")
    items: list[Any] = []
    for k, item in enumerate(payload):
        where = f"item {k}"
        if not isinstance(item, dict):
            raise InputError(f"{where}: expected an object, got {type(item).__name__}")
        if kind == "process":
            if isinstance(item.get("text"), str):
                items.append(item["text"])
            elif not isinstance(item.get("actor", "agent"), (str, bool)):
                raise InputError(f"{where}: 'actor' must be a string (e.g. 'agent' or 'intervention')")
            elif isinstance(item.get("state"), str):
                items.append((item["state"], item.get("actor", "agent")))
            elif isinstance(item.get("trajectory"), dict):
                state = _trajectory(item["trajectory"], str(item.get("intent", "")), where)
                items.append((state, item.get("actor", "agent")))
            else:
                raise InputError(
                    f"{where}: a process RM needs 'text' (string), or 'state' (string) or 'trajectory' (object) "
                    "with 'actor'"
                )
            continue
        intent = item.get("intent")
        if not isinstance(intent, str):
            raise InputError(f"{where}: 'intent' must be a string" + ("" if "intent" in item else " (missing)"))
        if "trajectory" not in item:
            raise InputError(f"{where}: 'trajectory' is missing")
        items.append((intent, _trajectory(item["trajectory"], intent, where)))
    return items


_EVAL_QUESTION = re.compile(r"^\s*please evaluate whether", re.IGNORECASE)
_ANSWER_PREFIX = re.compile(r"score of my last response is\s*:?\s*$", re.IGNORECASE)
_ASSISTANT = {"gpt", "llava", "assistant", "model", "bot"}
_HUMAN = {"human", "user"}


def _factual_text(factual: dict[str, Any], image: Any) -> str:
    if not isinstance(image, str) or image not in factual:
        return ""
    value = factual[image]
    if isinstance(value, list):
        return " ".join(str(v) for v in value)
    return str(value)


def _clean_intent(text: str) -> str:
    text = text.replace("<image>", " ").strip()
    m = re.search(r"(?:navigation\s+)?intent\s*:\s*(.+)$", text, re.IGNORECASE | re.DOTALL)
    return (m.group(1) if m else text).strip()


def armap_record_to_pair(record: Any, factual: dict[str, Any], where: str = "record") -> tuple[str, str]:
    """Map one ARMAP ``preference_data`` record onto (intent, rendered trajectory text)."""
    if not isinstance(record, dict):
        raise InputError(f"{where}: expected an object, got {type(record).__name__}")
    conversations = record.get("conversations")
    if not isinstance(conversations, list) or not conversations:
        raise InputError(f"{where}: 'conversations' must be a non-empty list of turns")
    first = next((t for t in conversations if isinstance(t, dict) and str(t.get("from", "")).lower() in _HUMAN), None)
    if first is None or not isinstance(first.get("value"), str):
        raise InputError(f"{where}: 'conversations' has no human turn holding the intent")
    intent = _clean_intent(first["value"])
    turns = record.get("output_1")
    if isinstance(turns, dict):
        turns = [turns]
    if not isinstance(turns, list):
        raise InputError(f"{where}: 'output_1' must be a list of turns {{from, value}}")
    lines: list[str] = []
    first_obs = _factual_text(factual, record.get("image"))
    if first_obs:
        lines.append(f"Observation: {first_obs}")
    for k, turn in enumerate(turns):
        if not isinstance(turn, dict) or not isinstance(turn.get("value"), str):
            raise InputError(f"{where}: output_1[{k}] must be an object with a string 'value'")
        speaker = str(turn.get("from", "")).lower()
        value = turn["value"]
        if speaker in _HUMAN:
            if _EVAL_QUESTION.match(value):
                continue
            obs = value.replace("<image>", "").strip()
            if "<obs>" in obs:
                obs = obs.replace("<obs>", _factual_text(factual, turn.get("image")))
            obs = re.sub(r"^current screenshot:\s*\.?\s*", "", obs, flags=re.IGNORECASE)
            obs = re.sub(r"^observation:\s*", "", obs, flags=re.IGNORECASE).strip()
            lines.append(f"Observation: {obs}")
        elif speaker in _ASSISTANT:
            if _ANSWER_PREFIX.search(value):
                continue
            action = re.sub(r"^\s*action:\s*", "", value, flags=re.IGNORECASE).strip()
            if re.match(r"^steps:\s*\n", action, flags=re.IGNORECASE):  # Game of 24: one step per line
                lines.extend(f"Action: {line.strip()}" for line in action.split("\n")[1:] if line.strip())
            else:
                lines.append(f"Action: {action}")
        else:
            raise InputError(f"{where}: output_1[{k}] has unknown speaker {turn.get('from')!r} (use human/gpt/llava)")
    return intent, "\n".join(lines)


def parse_armap_request(preference_data: str, factual_data: str | None) -> list[tuple[str, str]]:
    try:
        records = parse_json(preference_data, "'preference_data'")
    except InputError as exc:
        raise InputError(f"'preference_data' is not valid JSON ({exc})", 400) from exc
    if isinstance(records, dict):
        records = [records]
    if not isinstance(records, list):
        raise InputError("'preference_data' must be a JSON list of records")
    factual: Any = {}
    if factual_data is not None and factual_data.strip():
        try:
            factual = parse_json(factual_data, "'factual_data'")
        except InputError as exc:
            raise InputError(f"'factual_data' is not valid JSON ({exc}); send '{{}}' when there is none", 400) from exc
    if not isinstance(factual, dict):
        raise InputError("'factual_data' must be a JSON object (image name → observation text)")
    return [armap_record_to_pair(r, factual, f"record {k}") for k, r in enumerate(records)]


# ----------------------------------------------------------------------------------- batching
class _Job:
    """One request's tokenized items, scored in one or more forwards."""

    __slots__ = ("feats", "future", "lengths", "passed_over", "pos", "scores")

    def __init__(self, feats: list[Any], lengths: list[int], future: asyncio.Future[list[float]]) -> None:
        self.feats = feats
        self.lengths = lengths
        self.future = future
        self.pos = 0  # items before this one are scored
        self.scores: list[float] = []
        self.passed_over = 0  # forwards that ran while this job waited

    def tokens_left(self) -> int:
        return sum(self.lengths[self.pos :])

    def priority(self) -> tuple[bool, int]:
        """Fewest tokens left first; a job passed over :data:`_MAX_PASSED_OVER` times goes first."""
        return (self.passed_over < _MAX_PASSED_OVER, self.tokens_left())


#: forwards a request may be passed over for requests with fewer tokens left before it goes first
_MAX_PASSED_OVER = 8


class MicroBatcher:
    """Collects concurrent requests for up to ``max_wait_s`` and scores them together.

    ``fn`` scores a list of already-encoded items (a request is validated and tokenized before it
    gets here, so one bad request cannot spoil a batch). A forward holds at most ``max_items``
    items and ``max_tokens`` tokens (``lengths`` gives each item's tokens); the requests with the
    fewest tokens left go first (one passed over 8 times goes first, so none starves) and a big
    request is scored over several forwards, so a tiny request never waits behind more than one
    bounded forward. When a forward over several requests
    raises, each request is scored alone and only the ones that fail again get the error
    (:class:`ScoringFailed`).

    The model runs on one worker thread (models are not thread-safe and a second thread would only
    fight the first for the same cores); while it runs, new requests queue up and form the next
    batch, so under load batches fill without any waiting.
    """

    def __init__(
        self,
        fn: Callable[[list[Any]], np.ndarray],
        max_wait_s: float = 0.005,
        max_items: int = 64,
        max_tokens: int | None = None,
    ) -> None:
        self.fn = fn
        self.max_wait_s = max_wait_s
        self.max_items = max(1, max_items)
        self.max_tokens = max_tokens
        self._queue: asyncio.Queue[_Job] | None = None
        self._task: asyncio.Task[None] | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rm-score")
        self.stats: dict[str, float] = {
            "requests": 0,
            "batches": 0,
            "items": 0,
            "largest_batch": 0,
            "largest_batch_tokens": 0,
            "model_seconds": 0.0,
            "batch_failures": 0,
            "failed_requests": 0,
        }

    async def start(self) -> None:
        if self._task is None:
            self._queue = asyncio.Queue()
            self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def submit(self, items: list[Any], lengths: Sequence[int] | None = None) -> list[float]:
        """Scores for ``items`` (encoded model input; ``lengths``: their token counts, default 1)."""
        if not items:
            return []
        await self.start()
        assert self._queue is not None
        future: asyncio.Future[list[float]] = asyncio.get_running_loop().create_future()
        sizes = [max(1, int(n)) for n in lengths] if lengths is not None else [1] * len(items)
        await self._queue.put(_Job(list(items), sizes, future))
        return await future

    def _full(self, jobs: list[_Job]) -> bool:
        items = sum(len(j.feats) - j.pos for j in jobs)
        tokens = sum(j.tokens_left() for j in jobs)
        return items >= self.max_items or (self.max_tokens is not None and tokens >= self.max_tokens)

    def _plan(self, jobs: list[_Job]) -> list[tuple[_Job, int, int]]:
        """The next forward: (job, lo, hi) slices, fewest tokens left first, within the bounds."""
        plan: list[tuple[_Job, int, int]] = []
        items = tokens = 0
        for job in sorted(jobs, key=_Job.priority):
            lo = hi = job.pos
            while hi < len(job.feats):
                n = job.lengths[hi]
                if items and (
                    items + 1 > self.max_items or (self.max_tokens is not None and tokens + n > self.max_tokens)
                ):
                    break
                items += 1
                tokens += n
                hi += 1
            if hi > lo:
                plan.append((job, lo, hi))
            if hi < len(job.feats):
                break  # this forward is full
        return plan

    async def _run(self) -> None:
        assert self._queue is not None
        loop = asyncio.get_running_loop()
        pending: list[_Job] = []
        while True:
            if not pending:
                pending.append(await self._queue.get())
                deadline = loop.time() + self.max_wait_s
                while not self._full(pending):
                    remaining = deadline - loop.time()
                    if remaining <= 0:
                        break
                    try:
                        pending.append(await asyncio.wait_for(self._queue.get(), remaining))
                    except TimeoutError:
                        break
            while not self._queue.empty():  # whatever arrived during the last forward
                pending.append(self._queue.get_nowait())
            pending = [j for j in pending if not j.future.done()]  # clients that went away
            if not pending:
                continue
            plan = self._plan(pending)
            flat = [f for job, lo, hi in plan for f in job.feats[lo:hi]]
            self.stats["batches"] += 1
            self.stats["items"] += len(flat)
            self.stats["largest_batch"] = max(self.stats["largest_batch"], len(flat))
            self.stats["largest_batch_tokens"] = max(
                self.stats["largest_batch_tokens"], sum(sum(j.lengths[lo:hi]) for j, lo, hi in plan)
            )
            t0 = time.perf_counter()
            try:
                scores = await loop.run_in_executor(self._executor, self.fn, flat)
                results = []
                start = 0
                for _job, lo, hi in plan:
                    results.append([float(v) for v in scores[start : start + hi - lo]])
                    start += hi - lo
            except Exception as exc:  # noqa: BLE001 - one request may have spoiled the batch
                if len(plan) == 1:
                    results = [exc]
                else:
                    log.warning("a batch of %d requests failed (%s); scoring them one by one", len(plan), exc)
                    self.stats["batch_failures"] += 1
                    results = []
                    for job, lo, hi in plan:
                        try:
                            alone = await loop.run_in_executor(self._executor, self.fn, job.feats[lo:hi])
                            results.append([float(v) for v in alone])
                        except Exception as exc_alone:  # noqa: BLE001 - this request's own failure
                            results.append(exc_alone)
            self.stats["model_seconds"] += time.perf_counter() - t0
            planned = {id(job) for job, _lo, _hi in plan}
            for job in pending:
                job.passed_over = 0 if id(job) in planned else job.passed_over + 1
            for (job, _lo, hi), result in zip(plan, results, strict=True):
                if job.future.done():
                    continue
                if isinstance(result, Exception):
                    log.error("scoring a request failed: %r", result, exc_info=result)
                    self.stats["failed_requests"] += 1
                    job.future.set_exception(ScoringFailed(f"the model failed on this request: {result!r:.300}"))
                    continue
                job.scores.extend(result)
                job.pos = hi
                if job.pos >= len(job.feats):
                    self.stats["requests"] += 1
                    job.future.set_result(job.scores)
            pending = [j for j in pending if not j.future.done()]


# ----------------------------------------------------------------------------------- the app
class _BodyTooLarge(Exception):
    pass


class _BodyTimeout(Exception):
    pass


class BodyLimitMiddleware:
    """Refuse bodies over ``max_bytes`` (413) by Content-Length, or while streaming when absent,
    and bodies that do not arrive in full within ``timeout_s`` of the first read (408): uvicorn's
    ``timeout_keep_alive`` does not cover a client that sends headers and part of a body, then waits."""

    def __init__(self, app: Any, max_bytes: int, timeout_s: float | None = 30.0) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None:
            try:
                n = int(length)
            except ValueError:
                await _send_json(send, 400, {"detail": "invalid Content-Length header"})
                return
            if n > self.max_bytes:
                await _send_json(send, 413, {"detail": self._message(n)})
                return
        received = 0
        started = False
        body_done = False
        deadline: float | None = None
        loop = asyncio.get_running_loop()

        async def limited_receive() -> dict[str, Any]:
            nonlocal received, deadline, body_done
            if self.timeout_s is None or body_done:  # e.g. a later wait for the client to disconnect
                message = await receive()
            else:
                if deadline is None:
                    deadline = loop.time() + self.timeout_s
                try:
                    message = await asyncio.wait_for(receive(), max(0.0, deadline - loop.time()))
                except TimeoutError:
                    raise _BodyTimeout from None
            if message["type"] == "http.request":
                body_done = not message.get("more_body", False)
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _BodyTooLarge
            return message

        async def tracking_send(message: dict[str, Any]) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _BodyTooLarge:
            if not started:
                await _send_json(send, 413, {"detail": self._message(received)})
        except _BodyTimeout:
            log.info("a request body stalled at %d bytes; answered 408", received)
            if not started:
                await _send_json(
                    send,
                    408,
                    {
                        "detail": f"the request body did not arrive within {self.timeout_s:g} s "
                        f"({received} bytes came); send the whole body at once"
                    },
                )

    def _message(self, n: int) -> str:
        return f"request body of {n}+ bytes exceeds the server's limit of {self.max_bytes} bytes; send fewer items per request"


async def _send_json(send: Any, status: int, body: dict[str, Any]) -> None:
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": payload})


def create_app(
    model: Any,
    token: str | None = None,
    max_body_bytes: int = 8 * 1024 * 1024,
    max_batch: int = 256,
    batch_wait_ms: float = 5.0,
    max_micro_batch: int = 64,
    score_batch_size: int = 32,
    max_batch_tokens: int | None = None,
    cut_chars_per_token: int = 32,
    body_timeout_s: float | None = 30.0,
) -> Any:
    """A FastAPI app serving ``model`` (a RewardModel or ProcessRewardModel).

    ``max_batch_tokens``: the most tokens one forward holds (default ``score_batch_size ×
    max_length``); ``cut_chars_per_token``: texts over this many characters per token of the
    model's window are cut before tokenizing (:func:`cut_to_window`); ``body_timeout_s``: a body
    not received in full within this many seconds gets 408 (None: no limit).
    """
    from contextlib import asynccontextmanager

    from fastapi import Depends, FastAPI, HTTPException
    from fastapi.responses import JSONResponse

    kind = getattr(model, "kind", "outcome")
    settings = getattr(model, "settings", None)
    max_length = int(getattr(settings, "max_length", 512))
    step_marker = str(getattr(settings, "step_marker", "Action:"))
    max_chars = max(256, cut_chars_per_token * max_length)
    encoded = hasattr(model, "encode_texts") and hasattr(model, "score_features")
    if max_batch_tokens is None:
        max_batch_tokens = score_batch_size * max_length if encoded else None

    def prepare(items: list[Any]) -> tuple[list[Any], list[int]]:
        """One request's model input, encoded on its own: bad text fails here, not in a batch."""
        if not encoded:  # a model without the text pipeline scores its raw items
            return items, [1] * len(items)
        try:
            texts = model.item_texts(items) if kind == "process" else model.pair_texts(items)
        except (TypeError, ValueError, KeyError) as exc:
            raise InputError(f"cannot read the items: {exc}") from exc
        cut: list[tuple[str | None, str]] = []
        for k, (first, second) in enumerate(texts):
            if first is not None:
                check_text(first, f"item {k}")
                first = first[:max_chars]
            check_text(second, f"item {k}")
            cut.append((first, cut_to_window(second, max_chars, step_marker)))
        feats = model.encode_texts(cut)
        return feats, [len(f["input_ids"]) for f in feats]

    def run(feats: list[Any]) -> np.ndarray:
        if encoded:
            return model.score_features(feats, batch_size=score_batch_size)
        return model.score(feats, batch_size=score_batch_size)

    batcher = MicroBatcher(
        run, max_wait_s=batch_wait_ms / 1000.0, max_items=max_micro_batch, max_tokens=max_batch_tokens
    )
    # parsing and tokenizing run here, off the event loop and off the model's thread; one thread:
    # a fast tokenizer is not safe to call from two threads at once
    encoder = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rm-encode")

    @asynccontextmanager
    async def lifespan(app: Any):
        await batcher.start()
        try:
            yield
        finally:
            await batcher.stop()
            encoder.shutdown(wait=False, cancel_futures=True)

    app = FastAPI(title="agentcritic reward model", version="1", lifespan=lifespan)
    app.state.batcher = batcher
    app.state.model = model
    app.add_middleware(BodyLimitMiddleware, max_bytes=max_body_bytes, timeout_s=body_timeout_s)

    async def require_token(request: Request) -> None:
        if token is None:
            return
        header = request.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not secrets.compare_digest(value.strip().encode(), token.encode()):
            raise HTTPException(
                status_code=401,
                detail="missing or wrong bearer token (send 'Authorization: Bearer <token>')",
                headers={"WWW-Authenticate": "Bearer"},
            )

    def check_batch(n: int) -> None:
        if n > max_batch:
            raise InputError(f"{n} items exceed the server's max_batch={max_batch}; split the request", 413)

    @app.exception_handler(InputError)
    async def _input_error(request: Request, exc: InputError) -> JSONResponse:
        return JSONResponse(status_code=exc.status, content={"detail": str(exc)})

    @app.exception_handler(ScoringFailed)
    async def _scoring_failed(request: Request, exc: ScoringFailed) -> JSONResponse:
        return JSONResponse(status_code=500, content={"detail": str(exc)})

    async def encode(fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(encoder, fn, *args)

    def prepare_score(body: bytes) -> tuple[list[Any], list[int]]:
        payload = parse_json(body)
        if isinstance(payload, list):
            check_batch(len(payload))
        items = parse_score_request(payload, kind)
        check_batch(len(items))
        return prepare(items)

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {
            "status": "ok",
            "kind": kind,
            "model": repr(model),
            "max_length": max_length,
            "batching": dict(batcher.stats),
        }

    @app.post("/v1/score", dependencies=[Depends(require_token)])
    async def score(request: Request) -> dict[str, Any]:
        body = await request.body()
        if not body.strip():
            raise InputError("empty body: send a JSON list of {intent, trajectory} items", 400)
        feats, lengths = await encode(prepare_score, body)
        return {"scores": await batcher.submit(feats, lengths)}

    @app.post("/api/generate", dependencies=[Depends(require_token)])
    async def generate(request: Request) -> JSONResponse:
        if kind != "outcome":
            raise InputError("/api/generate serves outcome reward models; this server holds a process RM", 400)
        ctype = request.headers.get("content-type", "")
        if "multipart/form-data" not in ctype and "application/x-www-form-urlencoded" not in ctype:
            raise InputError(
                "send a multipart form (preference_data, factual_data, prompt, images), as ARMAP's client does", 415
            )
        try:
            form = await request.form(max_files=max(1000, max_batch * 4), max_fields=1000)
        except (_BodyTooLarge, _BodyTimeout):
            raise
        except Exception as exc:  # noqa: BLE001 - python-multipart's parse errors
            raise InputError(f"malformed multipart form: {exc}", 400) from exc
        raw = form.get("preference_data")
        if raw is None:
            raise InputError("the form has no 'preference_data' field")
        pref = raw if isinstance(raw, str) else (await raw.read()).decode("utf-8", "replace")
        fraw = form.get("factual_data")
        factual = (
            None
            if fraw is None
            else (fraw if isinstance(fraw, str) else (await fraw.read()).decode("utf-8", "replace"))
        )

        def prepare_armap() -> tuple[list[Any], list[int]]:
            pairs = parse_armap_request(pref, factual)
            check_batch(len(pairs))
            return prepare(pairs)

        feats, lengths = await encode(prepare_armap)
        return JSONResponse(await batcher.submit(feats, lengths))

    return app


# ----------------------------------------------------------------------------------- running
class BackgroundServer:
    """Run an app with uvicorn on a background thread (tests, benchmarks, notebooks).

    >>> with BackgroundServer(create_app(rm)) as srv:
    ...     httpx.post(f"{srv.url}/v1/score", json=[...])
    """

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0, log_level: str = "warning") -> None:
        import uvicorn

        self.config = uvicorn.Config(app, host=host, port=port, log_level=log_level, lifespan="on", access_log=False)
        self.server = uvicorn.Server(self.config)
        self.thread = threading.Thread(target=self.server.run, name="rm-server", daemon=True)
        self.host = host
        self.port = port

    def start(self, timeout: float = 30.0) -> BackgroundServer:
        self.thread.start()
        t0 = time.monotonic()
        while not self.server.started:
            if not self.thread.is_alive():
                raise RuntimeError("the server thread exited during start-up (port in use?)")
            if time.monotonic() - t0 > timeout:
                raise TimeoutError("the server did not start in time")
            time.sleep(0.01)
        sockets = [s for srv in getattr(self.server, "servers", []) for s in srv.sockets]
        if sockets:
            self.port = sockets[0].getsockname()[1]
        return self

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve(
    model_dir: str | os.PathLike[str],
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    token: str | None = None,
    device: str | None = None,
    token_env: str | None = TOKEN_ENV,
    **app_kwargs: Any,
) -> None:
    """Load a saved reward model and serve it until interrupted (blocking).

    Without ``token``, the bearer token is read from the environment variable ``token_env``
    (None: no token).
    """
    import uvicorn

    from agentcritic.rm.loading import load_model

    if token is None and token_env:
        token = os.environ.get(token_env) or None
    if host not in ("127.0.0.1", "localhost", "::1") and token is None:
        log.warning("serving on %s without a token: anyone who can reach this port can use the model", host)
    model = load_model(model_dir, device=device)
    app = create_app(model, token=token, **app_kwargs)
    uvicorn.run(app, host=host, port=port, log_level="info")


def score_remote(
    url: str, pairs: Sequence[tuple[str, Any]], token: str | None = None, timeout: float = 60.0
) -> list[float]:
    """Client helper: score (intent, trajectory) pairs on a running server."""
    import httpx

    items = [{"intent": i, "trajectory": t.to_dict() if isinstance(t, Trajectory) else t} for i, t in pairs]
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    r = httpx.post(f"{url.rstrip('/')}/v1/score", json=items, headers=headers, timeout=timeout)
    r.raise_for_status()
    return list(r.json()["scores"])


__all__ = [
    "BackgroundServer",
    "InputError",
    "MicroBatcher",
    "ScoringFailed",
    "armap_record_to_pair",
    "check_text",
    "create_app",
    "cut_to_window",
    "parse_armap_request",
    "parse_json",
    "parse_score_request",
    "score_remote",
    "serve",
]
