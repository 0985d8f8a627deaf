"""The reward-model server over real HTTP on loopback (uvicorn on a background thread, httpx)."""

from __future__ import annotations

import asyncio
import io
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")

from agentcritic.rendering import render, trajectory_text  # noqa: E402
from agentcritic.rm import ProcessRewardModel, RewardModel, prefix_examples  # noqa: E402
from agentcritic.rm.backbone import make_tiny_backbone  # noqa: E402
from agentcritic.rm.server import BackgroundServer, armap_record_to_pair, create_app  # noqa: E402
from agentcritic.types import Step, Trajectory  # noqa: E402

TOKEN = "s3cret-token"


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_torch_thread):
    yield


@pytest.fixture(scope="module")
def rm(tmp_path_factory):
    folder = make_tiny_backbone(tmp_path_factory.mktemp("tiny") / "bert", "bert")
    return RewardModel(folder, max_length=96, seed=0)


@pytest.fixture(scope="module")
def server(rm):
    app = create_app(rm, max_body_bytes=20_000, max_batch=8, batch_wait_ms=20)
    with BackgroundServer(app) as srv:
        yield srv


@pytest.fixture(scope="module")
def secured(rm):
    with BackgroundServer(create_app(rm, token=TOKEN)) as srv:
        yield srv


def traj(n: int, tag: str = "a") -> Trajectory:
    return Trajectory(
        "shop",
        "t",
        "buy",
        [Step(f"click[{tag}{i}]", f"page {tag}{i}") for i in range(n)],
        None,
        None,
        {"first_observation": "search page"},
    )


def items_and_pairs(k: int = 4):
    pairs = [(f"buy item {i}", traj(i + 1, chr(97 + i % 26))) for i in range(k)]
    items = [{"intent": i, "trajectory": t.to_dict() if n % 2 else trajectory_text(t)} for n, (i, t) in enumerate(pairs)]
    direct = [(i, t if n % 2 else trajectory_text(t)) for n, (i, t) in enumerate(pairs)]
    return items, direct


def test_health_and_a_valid_batch(server, rm) -> None:
    h = httpx.get(f"{server.url}/health")
    assert h.status_code == 200 and h.json()["status"] == "ok" and h.json()["kind"] == "outcome"
    items, direct = items_and_pairs(5)
    r = httpx.post(f"{server.url}/v1/score", json=items)
    assert r.status_code == 200, r.text
    np.testing.assert_allclose(r.json()["scores"], rm.score(direct), atol=1e-5)
    assert httpx.post(f"{server.url}/v1/score", json={"items": items[:2]}).json()["scores"] == pytest.approx(
        r.json()["scores"][:2], abs=1e-5
    )
    assert httpx.post(f"{server.url}/v1/score", json=[]).json() == {"scores": []}


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        (b'[{"intent": "x", ', 400, "malformed JSON"),
        (b"", 400, "empty body"),
        (b'"just a string"', 422, "expected a JSON list"),
        (json.dumps([{"intent": 3, "trajectory": "t"}]).encode(), 422, "item 0: 'intent' must be a string"),
        (json.dumps([{"intent": "x"}]).encode(), 422, "'trajectory' is missing"),
        (
            json.dumps([{"intent": "x", "trajectory": "ok"}, {"intent": "x", "trajectory": [1, 2]}]).encode(),
            422,
            "item 1: 'trajectory' must be",
        ),
        (json.dumps([{"intent": "x", "trajectory": {"steps": [{"action": 1}]}}]).encode(), 422, "steps[0]"),
        (json.dumps([["x", "y"]]).encode(), 422, "item 0: expected an object"),
        (json.dumps({"foo": []}).encode(), 422, "expected a JSON list"),
    ],
)
def test_malformed_input_gets_a_4xx_that_says_what_is_wrong(server, body, status, needle) -> None:
    r = httpx.post(f"{server.url}/v1/score", content=body, headers={"content-type": "application/json"})
    assert r.status_code == status, r.text
    assert needle in r.json()["detail"]


def test_limits_on_body_size_and_batch_length(server) -> None:
    big = [{"intent": "x", "trajectory": "y" * 30_000}]
    r = httpx.post(f"{server.url}/v1/score", json=big)
    assert r.status_code == 413 and "limit of 20000 bytes" in r.json()["detail"]

    def chunks():  # no Content-Length: the limit is enforced while streaming
        yield b"["
        for _ in range(40):
            yield json.dumps({"intent": "x", "trajectory": "y" * 1000}).encode() + b","
        yield b"{}]"

    r = httpx.post(f"{server.url}/v1/score", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413
    items, _ = items_and_pairs(9)
    r = httpx.post(f"{server.url}/v1/score", json=items)
    assert r.status_code == 413 and "max_batch=8" in r.json()["detail"]
    assert httpx.get(f"{server.url}/health").status_code == 200  # still serving


def test_bearer_token(secured) -> None:
    items, _ = items_and_pairs(2)
    assert httpx.post(f"{secured.url}/v1/score", json=items).status_code == 401
    wrong = httpx.post(f"{secured.url}/v1/score", json=items, headers={"Authorization": "Bearer nope"})
    assert (
        wrong.status_code == 401 and "token" in wrong.json()["detail"] and wrong.headers["www-authenticate"] == "Bearer"
    )
    assert httpx.post(f"{secured.url}/api/generate", data={"preference_data": "[]"}).status_code == 401
    ok = httpx.post(f"{secured.url}/v1/score", json=items, headers={"Authorization": f"Bearer {TOKEN}"})
    assert ok.status_code == 200 and len(ok.json()["scores"]) == 2
    assert httpx.get(f"{secured.url}/health").status_code == 200


def armap_records():
    webshop = {
        "image": "image_task_0.png",
        "conversations": [
            {"from": "human", "value": "<image>\nNavigation Intent: i need red running shoes under 50 dollars"},
            {"from": "gpt", "value": "###test gpt###"},
        ],
        "output_1": [
            {"from": "llava", "value": "Action:\nsearch[red running shoes]"},
            {"from": "human", "image": "image_task_1.png", "value": "Current screenshot: <image>. Observation: <obs>."},
            {"from": "llava", "value": "Action:\nclick[B0ABC]"},
            {
                "from": "human",
                "value": 'Please evaluate whether your last response achieves the "Navigation Intent" or not',
            },
            {"from": "llava", "value": "Following your definitions, the score of my last response is"},
        ],
    }
    game24 = {
        "id": 0,
        "conversations": [
            {"from": "human", "value": "Use numbers to obtain 24. Input: 4 4 9 3"},
            {"from": "gpt", "value": "###test gpt###"},
        ],
        "output_1": [
            {"from": "llava", "value": "Steps:\n4 + 4 = 8 (left: 3 8 9)\n9 / 3 = 3 (left: 3 8)\n8 * 3 = 24 (left: 24)"},
            {
                "from": "human",
                "value": "Please evaluate whether your last response achieves the goal of Game 24 or not",
            },
            {"from": "llava", "value": "Following your definitions, the score of my last response is"},
        ],
        "output_2": [],
        "preference": 1,
    }
    factual = {"image_task_0.png": ["WebShop search page"], "image_task_1.png": ["[B0ABC] Red runner $39"]}
    return [webshop, game24], factual


def test_armap_dialogue_maps_onto_our_rendering() -> None:
    (webshop, game24), factual = armap_records()
    intent, text = armap_record_to_pair(webshop, factual)
    assert intent == "i need red running shoes under 50 dollars"
    assert text.split("\n") == [
        "Observation: WebShop search page",
        "Action: search[red running shoes]",
        "Observation: [B0ABC] Red runner $39.",
        "Action: click[B0ABC]",
    ]
    intent, text = armap_record_to_pair(game24, {})
    assert text.split("\n")[0] == "Action: 4 + 4 = 8 (left: 3 8 9)" and len(text.split("\n")) == 3
    assert "evaluate" not in text and "score of my last response" not in text


def test_armap_generate_multipart(server, rm) -> None:
    records, factual = armap_records()
    files = {"image_task_0.png": ("image_task_0.png", io.BytesIO(b"\x89PNG fake"), "image/png")}
    data = {
        "preference_data": json.dumps(records),
        "factual_data": json.dumps(factual),
        "prompt": "USER: ... ASSISTANT:",
    }
    r = httpx.post(f"{server.url}/api/generate", data=data, files=files)
    assert r.status_code == 200, r.text
    scores = r.json()
    assert isinstance(scores, list) and len(scores) == 2 and all(isinstance(s, float) for s in scores)
    expected = rm.score([armap_record_to_pair(records[0], factual), armap_record_to_pair(records[1], factual)])
    np.testing.assert_allclose(scores, expected, atol=1e-5)
    # ARMAP's text-only envs send factual_data "{}" with stray whitespace
    r = httpx.post(
        f"{server.url}/api/generate",
        data={"preference_data": json.dumps(records[1:]), "factual_data": "{\n    }\n", "prompt": ""},
    )
    assert r.status_code == 200 and r.json() == pytest.approx(scores[1:], abs=1e-5)
    bad = [
        ({"factual_data": "{}"}, "no 'preference_data'"),
        ({"preference_data": "[{", "factual_data": "{}"}, "not valid JSON"),
        ({"preference_data": json.dumps([{"conversations": []}])}, "record 0: 'conversations'"),
        (
            {"preference_data": json.dumps([{**records[1], "output_1": [{"from": "robot", "value": "x"}]}])},
            "unknown speaker",
        ),
        ({"preference_data": json.dumps(records), "factual_data": "not json"}, "'factual_data'"),
    ]
    for form, needle in bad:
        r = httpx.post(f"{server.url}/api/generate", data=form, files=files)
        assert 400 <= r.status_code < 500 and needle in r.json()["detail"], (form, r.text)
    r = httpx.post(f"{server.url}/api/generate", json=records)
    assert r.status_code == 415


def test_sixteen_concurrent_clients_get_their_own_correct_scores(server, rm) -> None:
    requests = []
    for c in range(16):
        pairs = [(f"client {c} wants item {j}", traj(1 + (c + j) % 7, chr(97 + c))) for j in range(1 + c % 3)]
        requests.append(pairs)
    expected = [rm.score(p) for p in requests]
    before = dict(httpx.get(f"{server.url}/health").json()["batching"])

    async def run():
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:

            async def one(pairs):
                r = await client.post("/v1/score", json=[{"intent": i, "trajectory": t.to_dict()} for i, t in pairs])
                assert r.status_code == 200, r.text
                return r.json()["scores"]

            return await asyncio.gather(*(one(p) for p in requests))

    got = asyncio.run(run())
    for g, e in zip(got, expected, strict=True):
        np.testing.assert_allclose(g, e, atol=1e-5)
    after = httpx.get(f"{server.url}/health").json()["batching"]
    assert after["requests"] - before["requests"] == 16
    assert after["batches"] - before["batches"] < 16  # requests shared forwards


def test_the_server_reads_the_one_rendering_for_both_kinds_of_model(server, rm, tiny_bert, fed_texts) -> None:
    won = Trajectory("game24", "900", "make 24 from 4 5 6 10",
                     [Step("10 - 4 = 6", "Numbers left: 5 6 6", actor="agent"),
                      Step("Answer: (5 - 6 / 6) * 6 = 24", "Correct: (5 - 6 / 6) * 6 = 24", actor="intervention")],
                     True, 1.0, {"first_observation": "Numbers: 4 5 6 10"})
    # the outcome model: a trajectory sent to the server is read as render(intent, trajectory)
    read = fed_texts(rm, lambda: httpx.post(f"{server.url}/v1/score",
                                            json=[{"intent": "make 24", "trajectory": won.to_dict()}]))
    assert read == [render("make 24", won)] and "Correct" not in read[0]

    # the process model reads, for a trajectory prefix and the next actor, the text it was trained on
    prm = ProcessRewardModel(tiny_bert, max_length=96, seed=0)
    trained_on = prefix_examples([won])[1].text  # the state after one step, the intervention acting next
    prefix = Trajectory(won.env, won.task_id, won.instruction, won.steps[:1], None, None, dict(won.meta))
    body = [{"trajectory": prefix.to_dict(), "actor": "intervention"},
            {"state": render(won.instruction, prefix), "actor": "intervention"},
            {"trajectory": won.to_dict(), "actor": "agent"}]
    with BackgroundServer(create_app(prm, batch_wait_ms=5)) as srv:
        answer = {}
        read = fed_texts(prm, lambda: answer.update(httpx.post(f"{srv.url}/v1/score", json=body).json()))
        bad = httpx.post(f"{srv.url}/v1/score", json=[{"trajectory": "Action: a", "actor": "agent"}])
    assert bad.status_code == 422 and "'trajectory' (object)" in bad.json()["detail"]
    assert read[:2] == [trained_on, trained_on]
    assert answer["scores"][0] == pytest.approx(answer["scores"][1], abs=1e-6)
    assert read[2] == render(won.instruction, won) + "\nNext action by: agent" and "Correct" not in read[2]
