"""The reward-model server under hostile clients (issue 15, deliverable 9): the real server
(uvicorn on 127.0.0.1, a background thread) with a tiny model; httpx and raw sockets on loopback."""

from __future__ import annotations

import asyncio
import json
import resource
import socket
import time

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")

from agentcritic.rendering import trajectory_text  # noqa: E402
from agentcritic.rm import RewardModel  # noqa: E402
from agentcritic.rm.server import BackgroundServer, create_app, cut_to_window  # noqa: E402
from agentcritic.types import Step, Trajectory  # noqa: E402

MAX_LENGTH = 96


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_torch_thread):
    yield


@pytest.fixture(scope="module")
def rm(tiny_bert):
    return RewardModel(tiny_bert, max_length=MAX_LENGTH, seed=0)


@pytest.fixture(scope="module")
def server(rm):
    app = create_app(rm, max_body_bytes=3_000_000, max_batch=64, batch_wait_ms=30, body_timeout_s=0.5)
    with BackgroundServer(app) as srv:
        yield srv


def traj(n: int, tag: str = "a", width: int = 1) -> Trajectory:
    return Trajectory(
        "shop",
        "t",
        "buy",
        [Step(f"click[{tag}{i}]", f"page {tag}{i} " + "lorem ipsum " * width) for i in range(n)],
        None,
        None,
        {"first_observation": "search page"},
    )


def valid_requests(k: int) -> list[list[tuple[str, Trajectory]]]:
    return [[(f"client {c} buys item {j}", traj(1 + (c + j) % 5, chr(97 + c % 26))) for j in range(1 + c % 2)]
            for c in range(k)]


def as_body(pairs) -> list[dict]:
    return [{"intent": i, "trajectory": t.to_dict()} for i, t in pairs]


async def post_all(url: str, bodies: list[bytes], timeout: float = 60.0) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=len(bodies), max_keepalive_connections=len(bodies))
    async with httpx.AsyncClient(base_url=url, timeout=timeout, limits=limits) as client:
        return await asyncio.gather(
            *(client.post("/v1/score", content=b, headers={"content-type": "application/json"}) for b in bodies)
        )


def stats(srv) -> dict:
    return httpx.get(f"{srv.url}/health").json()["batching"]


def test_a_lone_surrogate_fails_only_its_own_request(server, rm) -> None:
    requests = valid_requests(16)
    expected = [rm.score(p) for p in requests]
    bodies = [json.dumps(as_body(p)).encode() for p in requests]
    bad = json.dumps([{"intent": "buy \ud800 shoes", "trajectory": "Action: x"}]).encode()  # '\\ud800' on the wire
    assert b"\\ud800" in bad
    before = stats(server)
    answers = asyncio.run(post_all(server.url, [*bodies[:8], bad, *bodies[8:]]))
    bad_answer = answers.pop(8)
    assert bad_answer.status_code == 422, bad_answer.text
    assert "item 0" in bad_answer.json()["detail"] and "lone surrogate" in bad_answer.json()["detail"]
    for r, e in zip(answers, expected, strict=True):
        assert r.status_code == 200, r.text
        np.testing.assert_allclose(r.json()["scores"], e, atol=1e-5)
    after = stats(server)
    assert after["requests"] - before["requests"] == 16 and after["batches"] - before["batches"] < 16  # batched


def test_a_failure_inside_a_batched_forward_is_retried_request_by_request(rm) -> None:
    poison = rm.tokenizer.convert_tokens_to_ids("poison")
    assert poison != rm.tokenizer.unk_token_id
    real = rm.score_features

    class Flaky:  # the same model, whose forward fails on any batch holding the word "poison"
        kind = rm.kind
        settings = rm.settings
        encode_texts = rm.encode_texts
        pair_texts = rm.pair_texts

        def score_features(self, feats, batch_size=32):
            if any(poison in f["input_ids"] for f in feats):
                raise RuntimeError("CUDA error: device-side assert triggered")
            return real(feats, batch_size=batch_size)

    requests = valid_requests(8)
    expected = [rm.score(p) for p in requests]
    bodies = [json.dumps(as_body(p)).encode() for p in requests]
    bad = json.dumps([{"intent": "poison", "trajectory": "Action: x"}]).encode()
    with BackgroundServer(create_app(Flaky(), batch_wait_ms=200)) as srv:
        answers = asyncio.run(post_all(srv.url, [bad, *bodies]))
        after = stats(srv)
    assert answers[0].status_code == 500 and "the model failed on this request" in answers[0].json()["detail"]
    assert "device-side assert" in answers[0].json()["detail"]
    for r, e in zip(answers[1:], expected, strict=True):
        assert r.status_code == 200, r.text
        np.testing.assert_allclose(r.json()["scores"], e, atol=1e-5)
    assert after["batch_failures"] >= 1 and after["failed_requests"] == 1


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (b"[" * 100_000 + b"]" * 100_000, "nested deeper than 64 levels"),  # past Python's recursion limit
        (b"[" * 200 + b"]" * 200, "nested deeper than 64 levels"),  # parses, still refused
        (json.dumps([{"intent": "x", "trajectory": {"steps": [], "meta": {"a": [[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]}}}])
         .replace("[1]", "[" * 60 + "1" + "]" * 60).encode(), "nested deeper"),
        (b'[{"intent": "x", "trajectory": "y", "n": ' + b"9" * 5000 + b"}]", "an integer of 5000 digits"),
        (b'[{"intent": "x", "trajectory": "y", "n": -' + b"9" * 100 + b"}]", "at most 64 digits"),
        (b"\xff\xfe[]", "malformed JSON"),
    ],
)
def test_hostile_json_gets_a_400_that_says_what_is_wrong(server, body, needle) -> None:
    t0 = time.monotonic()
    r = httpx.post(f"{server.url}/v1/score", content=body, headers={"content-type": "application/json"}, timeout=30)
    assert r.status_code == 400, r.text
    assert needle in r.json()["detail"] and time.monotonic() - t0 < 10
    assert httpx.get(f"{server.url}/health").status_code == 200


def test_armap_fields_are_parsed_with_the_same_bounds(server) -> None:
    r = httpx.post(f"{server.url}/api/generate", data={"preference_data": "[" * 5000 + "]" * 5000})
    assert r.status_code == 400 and "'preference_data'" in r.json()["detail"] and "nested" in r.json()["detail"]
    r = httpx.post(f"{server.url}/api/generate", data={"preference_data": "[]", "factual_data": "1" * 5000})
    assert r.status_code == 400 and "'factual_data'" in r.json()["detail"]


class Recording:
    """A tokenizer wrapper noting the longest string it was handed."""

    def __init__(self, real):
        self.real, self.longest = real, 0

    def _note(self, value):
        if isinstance(value, str):
            self.longest = max(self.longest, len(value))
        elif isinstance(value, (list, tuple)):
            for v in value:
                self._note(v)

    def __call__(self, *args, **kwargs):
        self._note(args)
        return self.real(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self.real, name)


def test_long_texts_are_cut_before_tokenizing_and_read_as_offline(server, rm) -> None:
    long_traj = traj(400, "q", width=3)  # ~30 k characters, 400 steps: the model keeps the last few
    text = trajectory_text(long_traj)
    assert len(text) > 32 * MAX_LENGTH
    no_steps = "word " * 20_000
    pairs = [("buy the q item", long_traj), ("buy it", text), ("read it", no_steps), ("x" * 10_000, "Action: y")]
    expected = rm.score(pairs)  # offline: the whole texts through the model's own token fitting
    recorder = Recording(rm.tokenizer)
    rm.tokenizer = recorder
    try:
        body = [{"intent": i, "trajectory": t.to_dict() if isinstance(t, Trajectory) else t} for i, t in pairs]
        r = httpx.post(f"{server.url}/v1/score", json=body, timeout=60)
        huge = [{"intent": "buy", "trajectory": "Action: click[x]\n" + "Observation: " + "y" * 2_200_000}]
        t0 = time.monotonic()
        r_huge = httpx.post(f"{server.url}/v1/score", json=huge, timeout=60)
        huge_s = time.monotonic() - t0
    finally:
        rm.tokenizer = recorder.real
    assert r.status_code == 200, r.text
    np.testing.assert_allclose(r.json()["scores"], expected, atol=1e-5)  # the cut is invisible to the model
    assert r_huge.status_code == 200 and len(r_huge.json()["scores"]) == 1
    assert recorder.longest < 3 * 32 * MAX_LENGTH  # the tokenizer never saw the 2.2 MB text
    assert huge_s < 20


def test_six_huge_texts_at_once_keep_memory_bounded_and_a_tiny_request_fast(server) -> None:
    huge = json.dumps([{"intent": "buy", "trajectory": "Action: search[x]\nObservation: " + "y z " * 550_000}]).encode()
    tiny = json.dumps([{"intent": "buy", "trajectory": "Action: click[a]"}]).encode()
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB; the server runs in this process

    async def run():
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
            async def post(body, delay=0.0):
                await asyncio.sleep(delay)
                t0 = time.monotonic()
                r = await client.post("/v1/score", content=body, headers={"content-type": "application/json"})
                return r, time.monotonic() - t0

            return await asyncio.gather(*(post(huge) for _ in range(6)), post(tiny, 0.05))

    answers = asyncio.run(run())
    grew_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before) / 1024
    assert all(r.status_code == 200 for r, _ in answers), [r.text for r, _ in answers]
    assert grew_mb < 300, f"the peak memory grew by {grew_mb:.0f} MB"
    assert answers[-1][1] < 10  # the tiny request was not held for the huge ones' tokenization


def test_cut_to_window_keeps_the_head_the_last_steps_and_the_step_count() -> None:
    text = "Observation: start\n" + "\n".join(f"Action: a{i}\nObservation: o{i}" for i in range(1000))
    cut = cut_to_window(text, 200)
    lines = cut.split("\n")
    assert lines[0] == "Observation: start" and cut.endswith("Action: a999\nObservation: o999")
    assert sum(1 for line in lines if line.startswith("Action:")) == 1000  # dropped steps stay counted
    assert len(cut) < 200 + 1000 * len("Action:\n") + 50
    assert cut_to_window("short", 200) == "short"
    assert len(cut_to_window("z" * 10_000, 200)) == 200


def test_a_tiny_request_is_not_held_behind_a_big_one(rm) -> None:
    big = [{"intent": f"buy {j}", "trajectory": trajectory_text(traj(30, chr(97 + j % 26), width=2))}
           for j in range(160)]  # 160 items at the model's window: many forwards of at most 200 tokens
    tiny = [{"intent": "buy", "trajectory": "Action: click[a]"}]
    app = create_app(rm, batch_wait_ms=5, max_batch_tokens=200, max_batch=256)
    with BackgroundServer(app) as srv:
        async def run():
            done: dict[str, float] = {}
            async with httpx.AsyncClient(base_url=srv.url, timeout=120) as client:
                async def one(name, body):
                    r = await client.post("/v1/score", json=body)
                    assert r.status_code == 200, r.text
                    done[name] = time.monotonic()
                    return r.json()["scores"]

                async def tiny_once_big_is_being_scored():
                    # sent once the big request's forwards have begun, however fast or loaded the machine
                    for _ in range(2000):
                        if (await client.get("/health")).json()["batching"]["batches"] >= 2:
                            break
                        await asyncio.sleep(0.005)
                    return await one("tiny", tiny)

                big_scores, _ = await asyncio.gather(one("big", big), tiny_once_big_is_being_scored())
            return done, big_scores

        done, big_scores = asyncio.run(run())
        after = stats(srv)
    assert done["tiny"] < done["big"]  # it went ahead of the big request's remaining forwards
    assert after["largest_batch_tokens"] <= 200 and after["batches"] > 10
    np.testing.assert_allclose(big_scores, rm.score([(b["intent"], b["trajectory"]) for b in big]), atol=1e-5)


def raw_request(port: int, head: bytes, body: bytes, wait: float = 10.0) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as sock:
        sock.sendall(head + body)
        chunks = []
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            try:
                data = sock.recv(65536)
            except (TimeoutError, ConnectionResetError):
                break
            if not data:
                break
            chunks.append(data)
            if b"\r\n\r\n" in b"".join(chunks) and b"}" in chunks[-1]:
                break
        return b"".join(chunks)


def test_a_stalled_body_is_timed_out_with_a_408(server) -> None:
    head = (
        b"POST /v1/score HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: 1000\r\n\r\n"
    )
    t0 = time.monotonic()
    answer = raw_request(server.port, head, b'[{"intent": "x", "traj')  # then nothing more
    took = time.monotonic() - t0
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert b"did not arrive within 0.5 s" in answer and took < 5
    # headers only, no body at all
    answer = raw_request(server.port, head, b"")
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert httpx.post(f"{server.url}/v1/score", json=[{"intent": "x", "trajectory": "Action: y"}]).status_code == 200


def test_a_big_request_is_not_starved_by_a_stream_of_tiny_ones() -> None:
    from agentcritic.rm.server import MicroBatcher

    def forward(feats):  # a model taking 5 ms per forward
        time.sleep(0.005)
        return np.array([-1.0 if f == "t" else f for f in feats], dtype=np.float32)

    async def run():
        batcher = MicroBatcher(forward, max_wait_s=0.0, max_items=64, max_tokens=100)
        big = asyncio.create_task(batcher.submit(list(range(10)), [100] * 10))  # one item per forward
        tiny_answers, deadline = [], time.monotonic() + 10
        while not big.done() and time.monotonic() < deadline:  # a tiny request every millisecond
            tiny_answers.append(asyncio.create_task(batcher.submit(["t"], [1])))
            await asyncio.sleep(0.001)
        finished_first = big.done()
        scores = await big
        assert all(a == [-1.0] for a in await asyncio.gather(*tiny_answers))
        await batcher.stop()
        return finished_first, scores, batcher.stats

    finished_first, scores, stats = asyncio.run(run())
    assert finished_first  # it went first after being passed over, while tiny requests kept coming
    assert scores == list(range(10)) and stats["largest_batch_tokens"] <= 100
