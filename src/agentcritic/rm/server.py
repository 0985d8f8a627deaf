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
request bodies over ``max_body_bytes`` get 413, more than ``max_batch`` items 413; malformed input
gets 400/422 with a message saying what was wrong — user input never causes a 500.

Throughput: requests are collected by an asyncio micro-batcher for up to ``batch_wait_ms`` and
scored together in one length-sorted pass on a single worker thread, so the event loop stays
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


class InputError(AgentCriticError, ValueError):
    """Client input that cannot be scored; becomes a 4xx answer with this message."""

    def __init__(self, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.status = status


# ----------------------------------------------------------------------------------- parsing
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
        records = json.loads(preference_data)
    except json.JSONDecodeError as exc:
        raise InputError(f"'preference_data' is not valid JSON ({exc})") from exc
    if isinstance(records, dict):
        records = [records]
    if not isinstance(records, list):
        raise InputError("'preference_data' must be a JSON list of records")
    factual: Any = {}
    if factual_data is not None and factual_data.strip():
        try:
            factual = json.loads(factual_data)
        except json.JSONDecodeError as exc:
            raise InputError(f"'factual_data' is not valid JSON ({exc}); send '{{}}' when there is none") from exc
    if not isinstance(factual, dict):
        raise InputError("'factual_data' must be a JSON object (image name → observation text)")
    return [armap_record_to_pair(r, factual, f"record {k}") for k, r in enumerate(records)]


# ----------------------------------------------------------------------------------- batching
class MicroBatcher:
    """Collects concurrent requests for up to ``max_wait_s`` and scores them in one call.

    The model runs on one worker thread (models are not thread-safe and a second thread would only
    fight the first for the same cores); while it runs, new requests queue up and form the next
    batch, so under load batches fill without any waiting.
    """

    def __init__(self, fn: Callable[[list[Any]], np.ndarray], max_wait_s: float = 0.005, max_items: int = 64) -> None:
        self.fn = fn
        self.max_wait_s = max_wait_s
        self.max_items = max_items
        self._queue: asyncio.Queue[tuple[list[Any], asyncio.Future[list[float]]]] | None = None
        self._task: asyncio.Task[None] | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rm-score")
        self.stats: dict[str, float] = {
            "requests": 0,
            "batches": 0,
            "items": 0,
            "largest_batch": 0,
            "model_seconds": 0.0,
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

    async def submit(self, items: list[Any]) -> list[float]:
        if not items:
            return []
        await self.start()
        assert self._queue is not None
        future: asyncio.Future[list[float]] = asyncio.get_running_loop().create_future()
        await self._queue.put((items, future))
        return await future

    async def _run(self) -> None:
        assert self._queue is not None
        loop = asyncio.get_running_loop()
        while True:
            jobs = [await self._queue.get()]
            n = len(jobs[0][0])
            deadline = loop.time() + self.max_wait_s
            while n < self.max_items:
                try:
                    job = self._queue.get_nowait()
                except asyncio.QueueEmpty:
                    remaining = deadline - loop.time()
                    if remaining <= 0:
                        break
                    try:
                        job = await asyncio.wait_for(self._queue.get(), remaining)
                    except TimeoutError:
                        break
                jobs.append(job)
                n += len(job[0])
            jobs = [j for j in jobs if not j[1].done()]  # clients that went away
            if not jobs:
                continue
            flat = [x for items, _ in jobs for x in items]
            self.stats["requests"] += len(jobs)
            self.stats["batches"] += 1
            self.stats["items"] += len(flat)
            self.stats["largest_batch"] = max(self.stats["largest_batch"], len(flat))
            t0 = time.perf_counter()
            try:
                scores = await loop.run_in_executor(self._executor, self.fn, flat)
            except Exception as exc:  # noqa: BLE001 - handed to every waiting request
                log.exception("scoring failed")
                for _, fut in jobs:
                    if not fut.done():
                        fut.set_exception(exc)
                continue
            self.stats["model_seconds"] += time.perf_counter() - t0
            start = 0
            for items, fut in jobs:
                if not fut.done():
                    fut.set_result([float(v) for v in scores[start : start + len(items)]])
                start += len(items)


# ----------------------------------------------------------------------------------- the app
class _BodyTooLarge(Exception):
    pass


class BodyLimitMiddleware:
    """Refuse bodies over ``max_bytes`` (413) by Content-Length, or while streaming when absent."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

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

        async def limited_receive() -> dict[str, Any]:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
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
) -> Any:
    """A FastAPI app serving ``model`` (a RewardModel or ProcessRewardModel)."""
    from contextlib import asynccontextmanager

    from fastapi import Depends, FastAPI, HTTPException
    from fastapi.responses import JSONResponse

    kind = getattr(model, "kind", "outcome")

    def run(items: list[Any]) -> np.ndarray:
        return model.score(items, batch_size=score_batch_size)

    batcher = MicroBatcher(run, max_wait_s=batch_wait_ms / 1000.0, max_items=max_micro_batch)

    @asynccontextmanager
    async def lifespan(app: Any):
        await batcher.start()
        try:
            yield
        finally:
            await batcher.stop()

    app = FastAPI(title="agentcritic reward model", version="1", lifespan=lifespan)
    app.state.batcher = batcher
    app.state.model = model
    app.add_middleware(BodyLimitMiddleware, max_bytes=max_body_bytes)

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
            raise HTTPException(
                status_code=413, detail=f"{n} items exceed the server's max_batch={max_batch}; split the request"
            )

    @app.exception_handler(InputError)
    async def _input_error(request: Request, exc: InputError) -> JSONResponse:
        return JSONResponse(status_code=exc.status, content={"detail": str(exc)})

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {
            "status": "ok",
            "kind": kind,
            "model": repr(model),
            "max_length": model.settings.max_length,
            "batching": dict(batcher.stats),
        }

    @app.post("/v1/score", dependencies=[Depends(require_token)])
    async def score(request: Request) -> dict[str, Any]:
        body = await request.body()
        if not body.strip():
            raise InputError("empty body: send a JSON list of {intent, trajectory} items", 400)
        try:
            payload = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InputError(f"malformed JSON: {exc}", 400) from exc
        if isinstance(payload, list):
            check_batch(len(payload))
        items = parse_score_request(payload, kind)
        check_batch(len(items))
        return {"scores": await batcher.submit(items)}

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
        except _BodyTooLarge:
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
        pairs = parse_armap_request(pref, factual)
        check_batch(len(pairs))
        return JSONResponse(await batcher.submit(pairs))

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
    "armap_record_to_pair",
    "create_app",
    "parse_armap_request",
    "parse_score_request",
    "score_remote",
    "serve",
]
