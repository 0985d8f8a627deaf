"""The openai backend against a real HTTP server (tests/llm_server.py) serving a real model."""

from __future__ import annotations

import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest

from agentcritic import llm
from agentcritic.llm.base import render_plain

sys.path.insert(0, str(Path(__file__).parent))
from llm_server import ServerThread, create_app, make_tiny_llama  # noqa: E402

MSGS = [{"role": "system", "content": "You are in the kitchen. There is a fridge and a door."},
        {"role": "user", "content": "Observation: the door is closed.\nWhat is the next action?"}]
CANDS = ["Action: go north", "Action: open fridge", "Action: take apple from the table", "x"]
FAST = dict(backoff=0.01, max_backoff=0.05)  # keep retry tests quick


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_llama(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="module")
def hf_lm(tiny_dir: Path):
    return llm.load("hf", path=tiny_dir, threads=1)


@pytest.fixture(scope="module")
def server(hf_lm):
    with ServerThread(create_app(hf_lm, model_name="tiny")) as srv:
        yield srv


def url(server, mode: str = "ok", tag: str | None = None) -> str:
    return f"{server.url}/{mode}/{tag or uuid.uuid4().hex[:8]}/v1"


def attempts(server, mode: str, base_url: str) -> int:
    tag = base_url.rstrip("/").split("/")[-2]
    return server.app.state.attempts[(mode, tag)]


def test_generate_round_trip_equals_the_local_backend(server, hf_lm) -> None:
    lm = llm.load("openai", base_url=server.url, model="tiny")
    got = lm.generate(MSGS, max_tokens=8)
    assert got == hf_lm.generate(MSGS, max_tokens=8)
    assert lm.generate(MSGS, n=3, max_tokens=8) == got * 3
    u = lm.usage
    assert u.calls == 2 and u.prompt_tokens > 0 and 0 < u.completion_tokens <= 16 and u.seconds > 0


def test_sampling_passes_n_and_seed(server) -> None:
    lm = llm.load("openai", base_url=server.url + "/v1", model="tiny")
    a = lm.generate(MSGS, n=3, temperature=1.5, max_tokens=8, seed=3)
    b = lm.generate(MSGS, n=3, temperature=1.5, max_tokens=8, seed=3)
    assert len(a) == 3 and a == b


def test_model_defaults_to_the_first_one_the_server_lists(server) -> None:
    lm = llm.load("openai", base_url=server.url)
    assert lm.model == "tiny"


def test_score_with_plain_template_equals_the_hf_score(server, hf_lm) -> None:
    base = url(server)
    lm = llm.load("openai", base_url=base, model="tiny")
    got = lm.score(MSGS, CANDS + [""])
    want = hf_lm.score_text(render_plain(MSGS), [" " + c for c in CANDS])
    assert max(abs(a - b) for a, b in zip(got, want)) < 1e-4
    assert got[-1] == 0.0
    assert attempts(server, "ok", base) == 1  # all candidates went in one request
    assert lm.score(MSGS, CANDS[::-1]) == got[:-1][::-1]
    assert attempts(server, "ok", base) == 1  # answered from the cache


def test_score_with_the_model_chat_template_equals_the_hf_score(server, hf_lm, tiny_dir) -> None:
    lm = llm.load("openai", base_url=server.url, model="tiny", tokenizer=tiny_dir)
    assert lm.render(MSGS) == hf_lm.render(MSGS)
    got = lm.score(MSGS, CANDS)
    assert max(abs(a - b) for a, b in zip(got, hf_lm.score(MSGS, CANDS))) < 1e-4


def test_500_is_retried_then_named(server) -> None:
    base = url(server, "e500")
    lm = llm.load("openai", base_url=base, model="tiny", max_retries=2, **FAST)
    with pytest.raises(llm.LLMError) as err:
        lm.generate(MSGS)
    msg = str(err.value)
    assert "HTTP 500" in msg and "3 attempt" in msg and base in msg and "the model fell over" in msg
    assert attempts(server, "e500", base) == 3


def test_a_hanging_server_times_out(server) -> None:
    base = url(server, "hang")
    lm = llm.load("openai", base_url=base, model="tiny", timeout=0.2, max_retries=1, **FAST)
    t0 = time.perf_counter()
    with pytest.raises(llm.LLMError, match=r"timed out after 0\.2 s") as err:
        lm.generate(MSGS)
    assert time.perf_counter() - t0 < 1.5
    assert "timeout=" in str(err.value)
    assert attempts(server, "hang", base) == 2


def test_malformed_json_is_reported(server) -> None:
    base = url(server, "badjson")
    lm = llm.load("openai", base_url=base, model="tiny", max_retries=3, **FAST)
    with pytest.raises(llm.LLMError, match="invalid JSON"):
        lm.generate(MSGS)
    assert attempts(server, "badjson", base) == 1  # not a transient failure: no retry


def test_429_is_retried_until_it_succeeds(server, hf_lm) -> None:
    base = url(server, "r429")
    lm = llm.load("openai", base_url=base, model="tiny", max_retries=3, **FAST)
    assert lm.generate(MSGS, max_tokens=8) == hf_lm.generate(MSGS, max_tokens=8)
    assert attempts(server, "r429", base) == 3


@pytest.mark.parametrize("mode", ["nolp", "nocomp"])
def test_a_server_without_prompt_logprobs_says_it_cannot_score(server, mode: str) -> None:
    lm = llm.load("openai", base_url=url(server, mode), model="tiny", **FAST)
    with pytest.raises(llm.LLMError, match="cannot score candidates"):
        lm.score(MSGS, CANDS)
    assert lm.generate(MSGS, max_tokens=4)  # generate still works


def test_an_unreachable_server_is_reported() -> None:
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    lm = llm.load("openai", base_url=f"http://127.0.0.1:{port}", model="m", max_retries=1, **FAST)
    with pytest.raises(llm.LLMError, match="connection error") as err:
        lm.generate(MSGS)
    assert "2 attempt" in str(err.value) and "reachable" in str(err.value)


def test_api_key_from_env_and_401_is_not_retried(monkeypatch) -> None:
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("authorization"))
        return httpx.Response(401, json={"error": {"message": "bad key"}})

    monkeypatch.delenv("AGENTCRITIC_API_KEY", raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    lm = llm.load("openai", base_url="http://example.invalid/v1", model="m",
                  transport=httpx.MockTransport(handler), **FAST)
    with pytest.raises(llm.LLMError, match="HTTP 401.*api_key"):
        lm.generate(MSGS)
    assert seen == ["Bearer sk-test"]


def test_base_url_is_required(monkeypatch) -> None:
    monkeypatch.delenv("AGENTCRITIC_BASE_URL", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(ValueError, match="base_url"):
        llm.load("openai")


@pytest.mark.slow
def test_smollm2_served_over_http_scores_like_the_local_backend() -> None:
    local = llm.load("smollm2", threads=1, dtype="float32")  # exact comparisons: the reference dtype
    with ServerThread(create_app(local, model_name="smollm2")) as srv:
        lm = llm.load("openai", base_url=srv.url, tokenizer=local.tokenizer)
        cands = ["Action: open the door", "Action: look"]
        got = lm.score(MSGS, cands)
        want = local.score(MSGS, cands)
        assert max(abs(a - b) for a, b in zip(got, want)) < 1e-4
        assert lm.generate(MSGS, max_tokens=10) == local.generate(MSGS, max_tokens=10)
