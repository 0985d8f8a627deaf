"""Any OpenAI-compatible server (vLLM, SGLang, llama.cpp server, Ollama, OpenAI) over HTTP.

``generate`` posts to ``/v1/chat/completions``; ``generate(pattern=)`` adds a ``response_format``
JSON schema ``{"reply": <string matching the pattern>}`` (llama.cpp, vLLM and SGLang decode under it)
and returns the ``reply``; a server that rejects the schema raises :class:`ConstraintUnsupported`.
``score`` posts to ``/v1/completions`` with
``echo=true, logprobs=1, max_tokens=1`` and sums the echoed log-probs of the candidate's tokens,
found through ``logprobs.text_offset``. The server's chat template is unknown to the client, so the
prompt is rendered with the chat template of a tokenizer you pass (``tokenizer=`` a transformers
tokenizer or a local folder, or ``chat_template=`` a Jinja string); without one, with the plain-text
template of :func:`agentcritic.llm.base.render_plain` (the candidate follows ``"Assistant:"`` after
one space). Servers that return no prompt log-probs cannot score; they raise :class:`LLMError`.

Failures are retried with exponential backoff: HTTP 429 and 5xx, connection errors and timeouts.
Other 4xx answers, malformed JSON and replies of an unexpected shape are not retried. When the
retries are spent, an :class:`LLMError` names the URL, the last status or error, an excerpt of the
last body, and what to check.

A circuit breaker spares a dead server (and the caller's time): after ``breaker_failures`` failed
attempts in a row (a connection error, a time-out, a 5xx; a 429 is a live server asking to wait),
calls fail at once with an :class:`LLMError` naming the URL and when it is tried again, for
``breaker_cooldown`` seconds; then one call tries the server again, and a success closes the breaker.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from collections.abc import Sequence
from typing import Any

import httpx

from agentcritic.llm.base import (
    LLMError,
    LLMOptionsError,
    Message,
    Messages,
    PromptLM,
    Timer,
    cannot_constrain,
    cut_at_stop,
    generate_inputs,
    pattern_response_format,
    unwrap_pattern_reply,
    usage_tokens,
)
from agentcritic.llm.cache import LRUCache

#: words of a refusal that is about the response_format (not another field of the request)
_SCHEMA_WORDS = re.compile(r"response_format|json_schema|schema|pattern|grammar|regex|guided", re.IGNORECASE)
RETRY_STATUSES = frozenset({408, 409, 425, 429, 500, 502, 503, 504})
_CANNOT_SCORE = ("this server cannot score candidates (no prompt log-probs from /v1/completions with "
                 "echo=true); use generate mode, or a server such as vLLM or SGLang that returns them")


def _option(name: str, value: Any, kind: type[int] | type[float]) -> Any:
    """``value`` as ``kind``, or an error naming the option (options often come from ``--set``)."""
    # int(2.7) and float(True) would pass silently; they are mistakes in a config too
    if not isinstance(value, bool) and not (kind is int and isinstance(value, float) and not value.is_integer()):
        try:
            return kind(value)
        except (TypeError, ValueError):
            pass
    what = "a whole number" if kind is int else "a number"
    raise LLMOptionsError(
        f"openai backend: option {name} must be {what}, got {value!r}; correct llm.{name} in the config "
        f"or its --set (e.g. --set llm.{name}={3 if kind is int else 2.5})"
    )


def _excerpt(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + " …"


class OpenAICompatLM(PromptLM):
    """A client for an OpenAI-compatible HTTP server.

    Args:
        base_url: the server's root or its ``/v1`` URL (``http://localhost:8000/v1``).
        model: the served model's name; default: the first one ``GET /v1/models`` lists.
        api_key: bearer token; default ``$AGENTCRITIC_API_KEY`` or ``$OPENAI_API_KEY`` (none: no header).
        timeout: seconds for one HTTP request (connect, read and write each).
        max_retries: extra attempts after a retryable failure (so ``max_retries + 1`` in all).
        backoff: the first wait between attempts in seconds; doubled each time, capped at ``max_backoff``.
        tokenizer: a transformers tokenizer (or local folder) whose chat template renders ``score``
            prompts the way the server does; ``chat_template``: the same as a Jinja string.
        score_batch: candidates sent in one ``/v1/completions`` request (as a list of prompts).
        headers: extra HTTP headers sent with every request.
        breaker_failures: failed attempts in a row after which the server is not called for a while.
        breaker_cooldown: seconds calls fail at once once ``breaker_failures`` is reached.
    """

    backend = "openai"
    thread_safe = True  # one httpx client, shared by the threads of --concurrency

    def __init__(self, base_url: str | None = None, model: str | None = None, api_key: str | None = None,
                 timeout: float = 60.0, max_retries: int = 3, backoff: float = 0.5, max_backoff: float = 8.0,
                 tokenizer: Any = None, chat_template: str | None = None, score_batch: int = 32,
                 score_cache_size: int = 65536, headers: dict[str, str] | None = None,
                 breaker_failures: int = 5, breaker_cooldown: float = 60.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        super().__init__()
        base_url = base_url or os.environ.get("AGENTCRITIC_BASE_URL") or os.environ.get("OPENAI_BASE_URL")
        if not base_url:
            raise LLMOptionsError(
                "the openai backend needs the server's URL (base_url, e.g. http://localhost:8000/v1): "
                "pass --base-url, set llm.base_url in the config, or set $AGENTCRITIC_BASE_URL"
            )
        base_url = base_url.rstrip("/")
        if not base_url.endswith("/v1"):
            base_url += "/v1"
        self.base_url = self.where = base_url
        self.breaker_failures = max(1, _option("breaker_failures", breaker_failures, int))
        self.breaker_cooldown = max(0.0, _option("breaker_cooldown", breaker_cooldown, float))
        self._breaker_lock = threading.Lock()
        self._failed_in_row = 0
        self._open_until = 0.0  # time.monotonic() until which calls fail at once
        self._breaker_error = ""
        self.max_retries = max(0, _option("max_retries", max_retries, int))
        self.backoff, self.max_backoff, self.timeout = (
            _option("backoff", backoff, float), _option("max_backoff", max_backoff, float),
            _option("timeout", timeout, float))
        api_key = api_key or os.environ.get("AGENTCRITIC_API_KEY") or os.environ.get("OPENAI_API_KEY")
        hdrs = {"Content-Type": "application/json", **(headers or {})}
        if api_key:
            hdrs["Authorization"] = f"Bearer {api_key}"
        self._client = httpx.Client(timeout=httpx.Timeout(self.timeout), headers=hdrs, transport=transport)
        self._model = model
        self.score_batch = max(1, _option("score_batch", score_batch, int))
        self._scores = LRUCache(_option("score_cache_size", score_cache_size, int))
        self._tokenizer = self._resolve_tokenizer(tokenizer)
        self._chat_template = chat_template

    # ------------------------------------------------------------------ HTTP
    @property
    def model(self) -> str:
        """The model name sent with each request (asked of the server once when not given)."""
        if self._model is None:
            data = self._request("GET", "/models")
            try:
                self._model = str(data["data"][0]["id"])
            except (KeyError, IndexError, TypeError) as e:
                raise LLMError(f"GET {self.base_url}/models listed no model ({_excerpt(json.dumps(data))}); "
                               "pass model= to load('openai', ...)") from e
        return self._model

    def _request(self, method: str, path: str, payload: dict[str, Any] | None = None) -> Any:
        url = self.base_url + path
        last = ""
        attempts = self.max_retries + 1
        server_wait: float | None = None
        for attempt in range(attempts):
            self._check_breaker(method, url)
            if attempt:
                wait = min(self.max_backoff, self.backoff * 2 ** (attempt - 1))
                if server_wait is not None:  # a 429/503 with Retry-After: the server knows best
                    wait = min(self.max_backoff, max(wait, server_wait))
                time.sleep(wait)
            server_wait = None
            try:
                resp = self._client.request(method, url, json=payload)
            except httpx.TimeoutException as e:
                last = f"timed out after {self.timeout:g} s ({type(e).__name__})"
                self._attempt_failed(last)
                continue
            except httpx.TransportError as e:
                last = f"connection error: {type(e).__name__}: {e}"
                self._attempt_failed(last)
                continue
            if resp.status_code >= 500:
                last = f"HTTP {resp.status_code}: {_excerpt(resp.text)}"
                server_wait = _retry_after(resp)
                self._attempt_failed(last)
                continue
            self._attempt_answered()
            if resp.status_code in RETRY_STATUSES:
                last = f"HTTP {resp.status_code}: {_excerpt(resp.text)}"
                server_wait = _retry_after(resp)
                continue
            if resp.status_code >= 400:
                raise _HTTPStatusError(method, url, resp)
            try:
                return resp.json()
            except (json.JSONDecodeError, UnicodeDecodeError) as e:
                raise LLMError(f"{method} {url} answered HTTP {resp.status_code} with invalid JSON "
                               f"({e}); body starts: {_excerpt(resp.text, 200)!r}. Is base_url an "
                               "OpenAI-compatible API (it should end in /v1)?") from e
        hint = ("check that the server is up and reachable, that base_url is right, and raise timeout= "
                "for slow models" if "timed out" in last or "connection" in last
                else "check the server's logs; the model may be overloaded or out of memory")
        raise LLMError(f"{method} {url} failed after {attempts} attempt(s); last error: {last}. {hint}")

    # ------------------------------------------------------------------ circuit breaker
    def _check_breaker(self, method: str, url: str) -> None:
        """Fail at once while the breaker is open (see the module doc)."""
        with self._breaker_lock:
            left = self._open_until - time.monotonic()
            if left <= 0:
                return
            failed, last = self._failed_in_row, self._breaker_error
        again = time.strftime("%H:%M:%S", time.localtime(time.time() + left))
        raise LLMError(f"{method} {url} not tried: the server failed {failed} attempts in a row (last error: "
                       f"{last}); calls fail at once until {again} (in {left:.0f} s), then it is tried again. "
                       "Check that the server is up and reachable and that base_url is right")

    def _attempt_failed(self, error: str) -> None:
        with self._breaker_lock:
            self._failed_in_row += 1
            self._breaker_error = error
            if self._failed_in_row >= self.breaker_failures:  # open (again, after a failed trial call)
                self._open_until = time.monotonic() + self.breaker_cooldown

    def _attempt_answered(self) -> None:
        with self._breaker_lock:
            self._failed_in_row, self._open_until = 0, 0.0

    # ------------------------------------------------------------------ generation
    def generate(self, messages: Messages, n: int = 1, temperature: float = 0.0, max_tokens: int = 128,
                 stop: str | Sequence[str] | None = None, seed: int | None = None,
                 pattern: str | None = None) -> list[str]:
        msgs, stops = generate_inputs(messages, n, temperature, max_tokens, stop)
        texts: list[str] = []
        with Timer() as t:
            prompt_tokens = completion_tokens = calls = 0
            # Greedy replies are all the same: ask once. Some servers (Ollama) ignore n > 1: ask again.
            want = 1 if temperature == 0 else n
            while len(texts) < want:
                payload: dict[str, Any] = {"model": self.model, "messages": msgs, "n": want - len(texts),
                                           "temperature": temperature, "max_tokens": max_tokens}
                if stops:
                    payload["stop"] = stops
                if seed is not None:
                    payload["seed"] = int(seed) + calls
                if pattern is not None:
                    payload["response_format"] = pattern_response_format(pattern)
                try:
                    data = self._request("POST", "/chat/completions", payload)
                except _HTTPStatusError as e:
                    if pattern is None or e.status not in (400, 422) or not _SCHEMA_WORDS.search(e.body):
                        raise  # refused for another reason (n > 1 on llama.cpp's server, say)
                    raise cannot_constrain(f"{self.backend} (at {self.base_url})", f"the server refused "
                                           f"response_format with a JSON schema pattern (HTTP {e.status}: "
                                           f"{e.body})") from e
                calls += 1
                got = [_content(c) for c in _choices(data, f"{self.base_url}/chat/completions")]
                if any(x is None for x in got):
                    raise LLMError(f"POST {self.base_url}/chat/completions answered without "
                                   f"choices[].message.content as text: {_excerpt(json.dumps(data))}")
                if pattern is not None:
                    got = [unwrap_pattern_reply(x, f"{self.backend} (at {self.base_url})")  # type: ignore[arg-type]
                           for x in got]
                if not got:
                    raise LLMError(f"POST {self.base_url}/chat/completions returned no choices")
                texts += [cut_at_stop(x, stops) for x in got]  # type: ignore[arg-type]  # checked above
                read, wrote = _usage(data)
                prompt_tokens += read
                completion_tokens += wrote
        self._count(calls=1, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens,
                    seconds=t.seconds)
        texts = texts[:want]
        return texts * n if temperature == 0 else texts

    # ------------------------------------------------------------------ scoring
    @staticmethod
    def _resolve_tokenizer(tokenizer: Any) -> Any:
        if tokenizer is None or hasattr(tokenizer, "apply_chat_template"):
            return tokenizer
        os.environ["HF_HUB_OFFLINE"] = "1"
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(str(tokenizer), local_files_only=True)

    @property
    def _plain_template(self) -> bool:
        return self._tokenizer is None and self._chat_template is None

    def _render_chat(self, messages: list[Message]) -> str:
        if self._tokenizer is not None:
            return self._tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        import jinja2

        env = jinja2.Environment(trim_blocks=True, lstrip_blocks=True)
        return env.from_string(self._chat_template).render(messages=messages, add_generation_prompt=True)

    def _score_new(self, prompt: str, continuations: list[str]) -> list[float]:
        """From the server's echoed log-probs, ``score_batch`` prompts a request."""
        scores: list[float] = []
        with Timer() as t:
            n_tokens = 0
            for start in range(0, len(continuations), self.score_batch):
                vals, used = self._score_chunk(prompt, continuations[start:start + self.score_batch])
                scores += vals
                n_tokens += used
        self._count(prompt_tokens=n_tokens, seconds=t.seconds)
        return scores

    def _score_chunk(self, prompt: str, chunk: list[str]) -> tuple[list[float], int]:
        payload = {"model": self.model, "prompt": [prompt + c for c in chunk], "echo": True, "logprobs": 1,
                   "max_tokens": 1, "temperature": 0.0}
        try:
            data = self._request("POST", "/completions", payload)
        except _HTTPStatusError as e:
            if e.status in (400, 404, 405, 422, 501):
                raise LLMError(f"{_CANNOT_SCORE}. POST {e.url} answered HTTP {e.status}: {e.body}") from e
            raise
        choices = _choices(data, f"{self.base_url}/completions")
        if len(choices) != len(chunk):
            raise LLMError(f"POST {self.base_url}/completions answered {len(choices)} choices for "
                           f"{len(chunk)} prompts; the server must accept a list of prompts")
        try:
            return self._chunk_scores(prompt, chunk, choices)
        except (TypeError, ValueError, AttributeError) as e:  # logprobs of the wrong types
            raise LLMError(f"POST {self.base_url}/completions answered logprobs of an unexpected shape ({e}): "
                           f"{_excerpt(json.dumps(data), 200)}") from e

    def _chunk_scores(self, prompt: str, chunk: list[str], choices: list[dict[str, Any]]) -> tuple[list[float], int]:
        vals, used = [], 0
        where = f"POST {self.base_url}/completions"
        for c, choice in zip(chunk, choices):
            lp = choice.get("logprobs") or {}
            offsets, token_lps = lp.get("text_offset"), lp.get("token_logprobs")
            if not offsets or not token_lps or len(offsets) != len(token_lps):
                raise LLMError(f"{_CANNOT_SCORE}. {where}: its reply had no logprobs.text_offset/token_logprobs "
                               f"for the prompt: {_excerpt(json.dumps(choice), 200)}")
            full, p = prompt + c, len(prompt)
            ends = list(offsets[1:]) + [None]
            total, n = 0.0, 0
            for off, end, val in zip(offsets, ends, token_lps):
                if off >= len(full):
                    break  # the generated token(s) after the echo
                tok_end = end if end is not None else len(full)
                if tok_end <= p:
                    continue  # a prompt token
                # a candidate token (one straddling the boundary counts as the candidate's)
                if val is None:
                    raise LLMError(f"{_CANNOT_SCORE}. {where}: a candidate token had a null log-prob.")
                total += float(val)
                n += 1
            if n == 0:
                raise LLMError(f"{_CANNOT_SCORE}. {where}: no echoed token fell inside the candidate {c!r}; "
                               "does the server honour echo=true?")
            vals.append(total)
            used += len(offsets)
        return vals, used

    def close(self) -> None:
        self._client.close()


class _HTTPStatusError(LLMError):
    def __init__(self, method: str, url: str, resp: httpx.Response) -> None:
        self.status, self.url, self.body = resp.status_code, url, _excerpt(resp.text)
        hint = {401: "check api_key (or $AGENTCRITIC_API_KEY / $OPENAI_API_KEY)",
                403: "check api_key and that it may use this model",
                404: "check base_url (it should end in /v1) and model"}.get(resp.status_code,
                                                                         "check the request parameters")
        super().__init__(f"{method} {url} answered HTTP {resp.status_code}: {self.body}. {hint}")


def _choices(data: Any, url: str) -> list[dict[str, Any]]:
    """The reply's ``choices`` in index order, or an :class:`LLMError` naming ``url`` when the reply
    has another shape (no ``choices``, not a list of objects, indices that are not numbers)."""
    choices = data.get("choices") if isinstance(data, dict) else None
    if not isinstance(choices, list) or not all(isinstance(c, dict) for c in choices) \
            or not all(isinstance(c.get("index", 0), int) for c in choices):
        raise LLMError(f"POST {url} answered without a list of choices: {_excerpt(json.dumps(data), 300)}. "
                       "Is base_url an OpenAI-compatible API (it should end in /v1)?")
    return sorted(choices, key=lambda c: c.get("index", 0))


def _content(choice: dict[str, Any]) -> str | None:
    """A chat choice's ``message.content`` (None content is an empty reply); None when it has another shape."""
    message = choice.get("message")
    if not isinstance(message, dict) or not isinstance(message.get("content", ""), (str, type(None))):
        return None
    return message.get("content") or ""


def _usage(data: dict[str, Any]) -> tuple[int, int]:
    try:
        return usage_tokens(data)
    except (TypeError, ValueError, AttributeError):  # a server's odd usage block costs nothing but the count
        return 0, 0


def _retry_after(resp: httpx.Response) -> float | None:
    value = resp.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None
