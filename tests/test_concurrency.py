"""Requests in flight: ``--concurrency`` runs a stage's jobs on threads, and a planner's samples go out
together, against a real HTTP server that answers slowly and counts the requests it holds at once."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from agentcritic import envs
from agentcritic.agents import make_agent
from agentcritic.cli import app
from agentcritic.concurrency import in_flight, lane, requests_in_flight, thread_map
from agentcritic.planning.sampling import Sampling

ENV = "tests.user_envs:CounterEnv"


class SlowServer:
    """An OpenAI-compatible chat server on loopback: each reply takes ``delay`` seconds and picks
    ``add 1|2|3`` from the request's seed, so a reply depends on the request alone."""

    def __init__(self, delay: float = 0.15) -> None:
        self.delay, self.now, self.most, self.requests = delay, 0, 0, 0
        lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, data: dict[str, Any]) -> None:
                body = json.dumps(data).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:  # /v1/models
                self._send({"data": [{"id": "slow"}]})

            def do_POST(self) -> None:
                payload = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with lock:
                    outer.now += 1
                    outer.requests += 1
                    outer.most = max(outer.most, outer.now)
                time.sleep(outer.delay)
                with lock:
                    outer.now -= 1
                text = f"Thought: count up.\nAction: add {1 + int(payload.get('seed') or 0) % 3}"
                self._send({"choices": [{"index": 0, "message": {"role": "assistant", "content": text}}],
                            "usage": {"prompt_tokens": 10, "completion_tokens": 5}})

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def reset(self) -> None:
        self.now = self.most = self.requests = 0

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def server() -> Any:
    s = SlowServer()
    yield s
    s.close()


def test_thread_map_keeps_order_runs_in_lanes_and_raises_the_first_error_after_all_ran() -> None:
    seen: list[tuple[int, ...]] = []

    def work(x: int) -> int:
        seen.append(lane())
        time.sleep(0.01)
        if x in (3, 5):
            raise ValueError(f"item {x}")
        return x * x

    with pytest.raises(ValueError, match="item 3"):
        thread_map(work, range(8), 3)
    assert len(seen) == 8  # every item ran although two raised
    assert set(seen) == {(0,), (1,), (2,)}  # three threads, each in its own lane
    assert thread_map(lambda x: x * x, range(10), 4) == [x * x for x in range(10)]

    written: list[tuple[int, Any, Any]] = []
    thread_map(work, range(6), 2, on_result=lambda i, r, e: written.append((i, r, type(e).__name__ if e else None)))
    assert sorted(written) == [(0, 0, None), (1, 1, None), (2, 4, None), (3, None, "ValueError"),
                               (4, 16, None), (5, None, "ValueError")]


def test_in_flight_is_seen_by_the_threads_it_starts() -> None:
    assert requests_in_flight() == 1
    with in_flight(6):
        assert thread_map(lambda _: requests_in_flight(), range(3), 3) == [6, 6, 6]
    assert requests_in_flight() == 1


def _rollout(tmp: Path, url: str, concurrency: int) -> list[dict[str, Any]]:
    out = tmp / f"c{concurrency}"
    result = CliRunner().invoke(app, [
        "rollout", "--env", ENV, "--policy", "openai", "--mode", "generate", "--base-url", url,
        "--limit", "8", "--concurrency", str(concurrency), "--out", str(out)])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in (out / "rollouts.jsonl").read_text().splitlines()]
    return sorted(rows, key=lambda r: r["key"])


def _comparable(row: dict[str, Any]) -> tuple[Any, ...]:
    rec = row["record"]
    return row["key"], rec["task_id"], rec["steps"], rec["score"], rec["success"]


def test_rollout_concurrency_keeps_requests_in_flight_with_the_same_episodes(tmp_path: Path, server: SlowServer) -> None:
    server.reset()
    one = _rollout(tmp_path, server.url, 1)
    assert server.most == 1
    calls_one = server.requests
    server.reset()
    four = _rollout(tmp_path, server.url, 4)
    assert server.most == 4  # four episodes waited on the server together
    assert server.requests == calls_one
    assert len(one) == len(four) == 8
    assert [_comparable(r) for r in one] == [_comparable(r) for r in four]


def test_sampling_sends_its_samples_together_with_the_same_results(server: SlowServer) -> None:
    env = envs.make(ENV)
    agent = make_agent("openai", seed=0, mode="generate", llm={"base_url": server.url})
    planner = Sampling(agent, n=4, temperature=0.7)
    server.reset()
    alone = planner.solve(env, "count-6", seed=3)
    assert server.most == 1
    server.reset()
    with in_flight(4):
        together = planner.solve(env, "count-6", seed=3)
    assert server.most == 4
    assert [t.actions for t in alone.candidates] == [t.actions for t in together.candidates]
    assert alone.meta["env_scores"] == together.meta["env_scores"]
    assert len({tuple(t.actions) for t in together.candidates}) > 1  # the samples differ by seed


def test_evaluate_with_concurrency_and_two_workers_records_every_job(tmp_path: Path, server: SlowServer) -> None:
    out, config = tmp_path / "eval", tmp_path / "eval.toml"
    config.write_text('methods = [{method = "greedy"}, {method = "sampling", params = {n = 3}}]\n')
    server.reset()
    result = CliRunner().invoke(app, [
        "evaluate", "--env", ENV, "--split", "test", "--limit", "4", "--policy", "openai", "--mode", "generate",
        "--base-url", server.url, "--config", str(config), "--workers", "2", "--concurrency", "3",
        "--out", str(out)])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line)["record"] for line in (out / "results.jsonl").read_text().splitlines()]
    assert len(rows) == 8 and not any(r.get("error") for r in rows)
    assert sorted(len(r["candidates"]) for r in rows if r["planner"] == "sampling") == [3, 3, 3, 3]
    assert server.most >= 3


def test_one_at_a_time_runs_in_the_calling_thread_and_lane() -> None:
    caller = threading.get_ident()
    seen: list[tuple[int, tuple[int, ...]]] = []
    written: list[tuple[int, Any, Any]] = []

    def work(x: int) -> int:
        seen.append((threading.get_ident(), lane()))
        if x == 1:
            raise ValueError("one")
        return x

    thread_map(work, range(3), 1, on_result=lambda i, r, e: written.append((i, r, type(e).__name__ if e else None)))
    assert seen == [(caller, ())] * 3  # so a run with --concurrency 1 keeps the one env it always had
    assert written == [(0, 0, None), (1, None, "ValueError"), (2, 2, None)]
