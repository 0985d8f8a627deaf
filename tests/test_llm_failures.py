"""No silent fallback: LLM failures are counted, a dead server is cooled down, a stage stops past its
failure rate naming the backend and URL, and a trajectory is labelled by what actually acted.

The real openai backend against a real local server (tests/llm_server.py and its fault modes).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from agentcritic import envs, llm
from agentcritic.agents import ReActAgent, rollout
from agentcritic.agents.explorer import ExplorerAgent
from agentcritic.store import iter_shard

sys.path.insert(0, str(Path(__file__).parent))
from llm_server import ServerThread, create_app, make_tiny_llama  # noqa: E402

MSGS = [{"role": "user", "content": "Observation: the door is closed.\nWhat is the next action?"}]
FAST = dict(backoff=0.01, max_backoff=0.05, max_retries=0)
CLI = [sys.executable, "-m", "agentcritic.cli"]
NO_REFINER = ["--set", "rephrase=false", "--set", "llm_intents=false", "--set", "guided_per_task=0",
              "--set", 'negatives=["edit","truncate","cross_policy"]']


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    lm = llm.load("hf", path=make_tiny_llama(tmp_path_factory.mktemp("tiny-llama")), threads=1)
    with ServerThread(create_app(lm, model_name="tiny")) as srv:
        yield srv


def url(server, mode: str = "ok") -> str:
    return f"{server.url}/{mode}/{uuid.uuid4().hex[:8]}/v1"


def attempts(server, mode: str, base_url: str) -> int:
    return server.app.state.attempts[(mode, base_url.rstrip("/").split("/")[-2])]


# ------------------------------------------------------------------ counting
def test_every_call_and_failure_is_counted_with_the_backend_and_url(server) -> None:
    ok = llm.load("openai", base_url=url(server), model="tiny", **FAST)
    bad_url = url(server, "e500")
    bad = llm.load("openai", base_url=bad_url, model="tiny", **FAST)
    with llm.count_llm_calls() as outer:
        ok.generate(MSGS, max_tokens=4)
        ok.score(MSGS, ["Action: look"])
        with llm.count_llm_calls() as inner:
            with pytest.raises(llm.LLMError):
                bad.generate(MSGS)
        with pytest.raises(ValueError):  # a caller's mistake is no failure of the server
            ok.generate(MSGS, n=0)
    assert (inner.calls, inner.failures) == (1, 1)
    assert (outer.calls, outer.failures) == (4, 1)
    assert outer.backend == "openai" and outer.url == bad_url and "HTTP 500" in outer.last_error
    assert outer.as_fields() == {"llm_calls": 4, "llm_failures": 1, "llm_backend": "openai", "llm_url": bad_url,
                                 "llm_last_error": outer.last_error}


def test_other_backends_are_counted_too() -> None:
    lm = llm.load("scripted", answers=["one"])
    before = llm.process_llm_calls()
    with llm.count_llm_calls() as counted:
        lm.generate(MSGS)
        with pytest.raises(llm.LLMError):  # its answers ran out
            lm.generate(MSGS)
    assert (counted.calls, counted.failures, counted.backend) == (2, 1, "scripted")
    after = llm.process_llm_calls()  # the process's own count, which no block is needed for
    assert (after.calls - before.calls, after.failures - before.failures) == (2, 1)


def test_a_stage_past_its_rate_gets_one_error_naming_backend_and_url() -> None:
    from agentcritic.llm.base import check_failure_rate

    counts = llm.LLMCalls(calls=100, failures=5, backend="openai", url="http://h:1/v1", last_error="HTTP 500")
    check_failure_rate(counts, 0.05, "synthesize/explore")  # 5 % is allowed
    counts.failures = 6
    with pytest.raises(llm.LLMFailureRateError) as err:
        check_failure_rate(counts, 0.05, "synthesize/explore")
    msg = str(err.value)
    assert "6 of 100" in msg and "openai backend at http://h:1/v1" in msg and "HTTP 500" in msg
    assert "run the same command again" in msg and "\n" not in msg


# ------------------------------------------------------------------ the circuit breaker
def test_a_hung_server_is_cooled_down_after_consecutive_failures(server) -> None:
    base = url(server, "hang")
    lm = llm.load("openai", base_url=base, model="tiny", timeout=0.3, breaker_failures=2, breaker_cooldown=60,
                  **FAST)
    for _ in range(2):
        t0 = time.perf_counter()
        with pytest.raises(llm.LLMError, match="timed out"):
            lm.generate(MSGS)
        assert time.perf_counter() - t0 >= 0.3
    t0 = time.perf_counter()
    with pytest.raises(llm.LLMError) as err:  # the third call does not wait for the server
        lm.generate(MSGS)
    assert time.perf_counter() - t0 < 0.05
    msg = str(err.value)
    assert base in msg and "2 attempts in a row" in msg and "tried again" in msg and "timed out" in msg
    assert attempts(server, "hang", base) == 2


def test_the_breaker_retries_once_after_its_cool_down_and_reopens_on_failure(server) -> None:
    base = url(server, "e500")
    lm = llm.load("openai", base_url=base, model="tiny", breaker_failures=3, breaker_cooldown=0.3, **FAST)
    for _ in range(3):
        with pytest.raises(llm.LLMError, match="HTTP 500"):
            lm.generate(MSGS)
    with pytest.raises(llm.LLMError, match="not tried"):
        lm.generate(MSGS)
    assert attempts(server, "e500", base) == 3
    time.sleep(0.35)
    with pytest.raises(llm.LLMError, match="HTTP 500"):  # one trial call reaches the server
        lm.generate(MSGS)
    assert attempts(server, "e500", base) == 4
    with pytest.raises(llm.LLMError, match="not tried"):  # it failed: open again at once
        lm.score(MSGS, ["Action: look"])
    assert attempts(server, "e500", base) == 4


def test_a_live_server_keeps_the_breaker_closed(server) -> None:
    # r429 refuses the first two requests of its tag: a rate-limited server is alive, not dead
    lm = llm.load("openai", base_url=url(server, "r429"), model="tiny", breaker_failures=1, **FAST)
    for _ in range(2):
        with pytest.raises(llm.LLMError, match="HTTP 429"):
            lm.generate(MSGS, max_tokens=2)
    assert len(lm.generate(MSGS, max_tokens=2)) == 1


def test_breaker_options_are_checked() -> None:
    with pytest.raises(llm.LLMOptionsError, match="breaker_failures"):
        llm.load("openai", base_url="http://127.0.0.1:9/v1", breaker_failures="many")


# ------------------------------------------------------------------ replies of an unexpected shape
@pytest.fixture(scope="module")
def odd_server():
    from fastapi import FastAPI

    app = FastAPI()
    shapes = {
        "nochoices": {"object": "chat.completion", "id": "x"},
        "choicestext": {"choices": "hello"},
        "message": {"choices": [{"index": 0, "message": "hello"}]},
        "content": {"choices": [{"index": 0, "message": {"content": 5}}]},
        "index": {"choices": [{"index": "first", "message": {"content": "hi"}}]},
        "list": [1, 2, 3],
        "logprobs": {"choices": [{"index": 0, "logprobs": {"text_offset": "zero", "token_logprobs": [1.0]}}]},
        "tokens": {"choices": [{"index": 0, "logprobs": {"text_offset": [0, 3], "token_logprobs": ["a", "b"]}}]},
    }

    @app.post("/{shape}/v1/chat/completions")
    async def chat(shape: str):
        return shapes[shape]

    @app.post("/{shape}/v1/completions")
    async def completions(shape: str):
        return shapes[shape]

    with ServerThread(app) as srv:
        yield srv


@pytest.mark.parametrize("shape", ["nochoices", "choicestext", "message", "content", "index", "list"])
def test_a_chat_reply_of_another_shape_names_the_url(odd_server, shape: str) -> None:
    base = f"{odd_server.url}/{shape}/v1"
    lm = llm.load("openai", base_url=base, model="m", **FAST)
    with llm.count_llm_calls() as counted, pytest.raises(llm.LLMError) as err:
        lm.generate(MSGS)
    assert f"{base}/chat/completions" in str(err.value)
    assert counted.failures == 1


@pytest.mark.parametrize("shape", ["nochoices", "choicestext", "index", "logprobs", "tokens"])
def test_a_score_reply_of_another_shape_names_the_url(odd_server, shape: str) -> None:
    base = f"{odd_server.url}/{shape}/v1"
    lm = llm.load("openai", base_url=base, model="m", **FAST)
    with pytest.raises(llm.LLMError) as err:
        lm.score(MSGS, ["Action: look"])
    assert f"{base}/completions" in str(err.value)


# ------------------------------------------------------------------ what actually acted
def test_explorer_steps_taken_because_the_llm_failed_are_labelled(server) -> None:
    env = envs.make("game24")
    task = env.task_ids("train")[0]
    lm = llm.load("openai", base_url=url(server, "e500"), model="tiny", **FAST)
    explorer = ExplorerAgent(ReActAgent(lm, name="openai-choose"), eps=0.0, seed=0, name="openai-t1-eps0")
    traj = explorer.label(rollout(env, explorer, task, seed=0))
    assert traj.steps and all(s.actor == "random" and s.info["fallback"] == "llm_error" for s in traj.steps)
    assert traj.meta["policy"] == "random" and traj.meta["intended_policy"] == "openai-t1-eps0"
    assert traj.meta["fallback_steps"] == len(traj.steps) == traj.meta["agent"]["llm_fallbacks"]
    # not finished work: recorded as an infrastructure failure, to be explored again
    assert traj.meta["error_kind"] == "infrastructure" and "HTTP 500" in traj.meta["error"]


def test_a_partly_failed_llm_explorer_names_both_actors() -> None:
    env = envs.make("game24")
    task = env.task_ids("train")[0]
    calls = {"n": 0}

    def scores(messages, candidate):
        if calls["n"] == 1:
            raise llm.LLMError("server gone")
        return -float(len(candidate))

    class Counting(ReActAgent):
        def act(self, history, info):
            try:
                return super().act(history, info)
            finally:
                calls["n"] += 1

    lm = llm.load("scripted", scores=scores)
    explorer = ExplorerAgent(Counting(lm, name="s"), eps=0.0, seed=0, name="scripted-eps0")
    traj = explorer.label(rollout(env, explorer, task, seed=0))
    assert len(traj.steps) >= 2
    assert [s.actor for s in traj.steps[:2]] == ["agent", "random"] and "fallback" not in traj.steps[0].info
    assert traj.meta["policy"] == "scripted-eps0+random-fallback" and traj.meta["error_kind"] == "infrastructure"


def test_an_expert_off_its_path_is_labelled_but_finished(tmp_path) -> None:
    env = envs.make("game24")
    task = env.task_ids("train")[0]

    class NoMove:
        name = "none"

        def reset(self, *a): ...

        def act(self, *a):
            raise RuntimeError("off the gold path")

    explorer = ExplorerAgent(NoMove(), eps=0.0, seed=0, name="expert-eps0")
    traj = explorer.label(rollout(env, explorer, task, seed=0))
    assert all(s.info["fallback"] == "base_error" for s in traj.steps) and traj.meta["policy"] == "random"
    assert "error_kind" not in traj.meta  # a task-side fallback is finished data, labelled


# ------------------------------------------------------------------ a stage against a dead server
def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=600)


def synth_args(out: Path, base_url: str) -> list[str]:
    return ["synthesize", "--env", "game24", "--tasks", "2", "--explorer", "openai", "--base-url", base_url,
            "--model", "tiny", "--out", str(out), "--set", "trajectories_per_task=1", "--set", "eps=0",
            "--set", "explorer_llm.max_retries=0", "--set", "explorer_llm.backoff=0.01", *NO_REFINER]


def test_synthesize_against_a_failing_server_stops_with_its_url_and_counts(server, tmp_path) -> None:
    base = url(server, "e500")
    out = tmp_path / "dead"
    res = run_cli(*synth_args(out, base))
    assert res.returncode == 2, res.stderr
    assert "Traceback" not in res.stderr and base in res.stderr and "openai backend" in res.stderr
    assert "max_llm_failure_rate" in res.stderr
    stats = json.loads((out / "synth_stats.json").read_text())
    assert stats["llm_failures"] == stats["llm_calls"] > 0 and stats["stopped"] == "explore"
    assert stats["llm"]["explore"]["llm_url"] == base
    assert list(iter_shard(out / "explore.jsonl")) == []  # no random data passed off as the LLM's
    failed = dict(iter_shard(out / "explore.jsonl", retries=True))
    assert len(failed) == 2 and all(r["meta"]["policy"] == "random" for r in failed.values())
    # the breaker spared the server: past 5 failures in a row, calls failed without asking it
    assert attempts(server, "e500", base) == 5 < stats["llm_calls"]


def test_a_stage_stopped_by_an_outage_keeps_its_work_and_resumes(server, tmp_path) -> None:
    # r429 refuses the first two requests: the first episode's LLM fails, the second's does not
    base = url(server, "r429")
    out = tmp_path / "flaky"
    first = run_cli(*synth_args(out, base))
    assert first.returncode == 2 and "Traceback" not in first.stderr and base in first.stderr
    done = dict(iter_shard(out / "explore.jsonl"))
    assert len(done) == 1 and all(r["meta"]["llm"]["explore"]["llm_failures"] == 0 for r in done.values())
    assert len(dict(iter_shard(out / "explore.jsonl", retries=True))) == 1
    second = run_cli(*synth_args(out, base))
    assert second.returncode == 0, second.stderr
    again = dict(iter_shard(out / "explore.jsonl"))
    assert len(again) == 2 and all(again[k] == v for k, v in done.items())  # finished work kept as it was
    stats = json.loads((out / "synth_stats.json").read_text())
    assert stats["llm_failures"] == 0 and stats["llm_calls"] > 0
    assert f"LLM failures: 0 of {stats['llm_calls']} call(s)" in second.stdout
    result = json.loads((out / "result.json").read_text())
    assert result["llm_calls"] == stats["llm_calls"] and result["llm_failures"] == 0


def test_a_refiner_against_a_failing_server_stops_the_stage_after_exploring(server, tmp_path) -> None:
    base = url(server, "e500")
    out = tmp_path / "refine"
    res = run_cli("synthesize", "--env", "game24", "--tasks", "2", "--explorer", "expert", "--out", str(out),
                  "--set", "eps=0", "--set", "trajectories_per_task=1", "--set", "guided_per_task=0", "--set", "refiner=openai",
                  "--set", f"refiner_llm.base_url={base}", "--set", "refiner_llm.model=tiny",
                  "--set", "refiner_llm.max_retries=0", "--set", "rephrase=true", "--set", "llm_intents=false",
                  "--set", 'negatives=["edit","truncate"]')
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert "synthesize/refine" in res.stderr and base in res.stderr
    assert len(dict(iter_shard(out / "explore.jsonl"))) == 2  # the exploring is kept
    failed = dict(iter_shard(out / "refine.jsonl", retries=True))
    # a re-phrase that failed is not passed off as the template's intent: the trajectory is refined again
    assert len(failed) == 2 and all(r["meta"]["llm"]["refine"]["llm_failures"] == 1 for r in failed.values())
    stats = json.loads((out / "synth_stats.json").read_text())
    assert stats["stopped"] == "refine" and stats["llm"]["refine"]["llm_failures"] == 2
    assert stats["llm"]["explore"]["llm_calls"] == 0


def test_the_report_overview_shows_llm_failures(tmp_path) -> None:
    from agentcritic.report.html import overview
    from agentcritic.report.parts import Stage
    from agentcritic.stage_results import SynthesizeResult

    result = SynthesizeResult(env="game24", errors=2, pending=2, llm_calls=10, llm_failures=2)
    row = overview([Stage(name="synth", kind="synthesize", folder=tmp_path, result=result)])
    assert "2 (2 to retry); LLM failures: 2 of 10 calls" in row


def test_acting_stages_count_their_llm_calls_and_record_the_rate(server, tmp_path) -> None:
    from agentcritic.config import RolloutConfig
    from agentcritic.pipeline import run_kind
    from agentcritic.stage import recorded_settings

    base = url(server, "e500")
    config = RolloutConfig(env="game24", policy="openai", split="test", limit=2, max_steps=1,
                           max_llm_failure_rate=1.0, llm={"base_url": base, "model": "tiny", "max_retries": 0})
    assert recorded_settings(config)["max_llm_failure_rate"] == 1.0  # it changes what a run makes: recorded
    outcome = run_kind("rollout", config, tmp_path / "r", progress=False)  # every failure allowed: no stop
    assert outcome.pending == 2 and outcome.summary["llm_failures"] == outcome.summary["llm_calls"] == 2
    assert outcome.summary["llm_url"] == base
    result = json.loads((tmp_path / "r" / "result.json").read_text())
    assert (result["llm_calls"], result["llm_failures"]) == (2, 2)
