"""A user's path against a real served model: llama.cpp's OpenAI-compatible server (``xllamacpp``)
serving the embedded SmolLM2 GGUF on loopback, with every LLM stage pointed at it over HTTP and
several requests in flight."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from agentcritic.cli import app

pytest.importorskip("xllamacpp")
pytestmark = pytest.mark.slow

ENV = "tests.user_envs:CounterEnv"


@pytest.fixture(scope="module")
def served() -> Any:
    from agentcritic.llm.llamacpp import LlamaCppServer

    with LlamaCppServer(parallel=4, n_ctx=4 * 2048) as server:
        yield server


def _ok(args: list[str]) -> str:
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    return result.output


def test_synthesize_with_a_served_explorer_and_refiner(tmp_path: Path, served: Any) -> None:
    out = tmp_path / "synth"
    output = _ok(["synthesize", "--env", ENV, "--explorer", "openai", "--refiner", "openai", "--base-url", served.url,
                  "--tasks", "2", "--trajectories", "2", "--concurrency", "4", "--set", "mode=generate",
                  "--set", "env_kwargs.max_steps=5",
                  "--out", str(out)])
    stats = json.loads((out / "synth_stats.json").read_text())
    assert stats["llm_failures"] == 0 and stats["llm_calls"] > 6, stats
    assert stats["llm"]["explore"]["llm_calls"] > 0 and stats["llm"]["refine"]["llm_calls"] > 0
    explored = [json.loads(line)["record"] for line in (out / "explore.jsonl").read_text().splitlines()]
    assert len(explored) == 4
    assert all(t["meta"]["explorer"] == "openai" for t in explored)
    # the served model acted: a step is labelled by what took it ("random" for the eps-random ones)
    assert "agent" in {s.get("actor") for t in explored for s in t["steps"]}
    assert "errors: 0" in output


def test_evaluate_with_a_served_policy_keeps_requests_in_flight(tmp_path: Path, served: Any) -> None:
    out, config = tmp_path / "eval", tmp_path / "eval.toml"
    config.write_text('methods = [{method = "greedy"}, {method = "sampling", params = {n = 3}}]\n')
    output = _ok(["evaluate", "--env", ENV, "--split", "test", "--limit", "3", "--set", "max_steps=6", "--policy", "openai",
                  "--mode", "generate", "--base-url", served.url, "--config", str(config), "--concurrency", "4",
                  "--out", str(out)])
    rows = [json.loads(line)["record"] for line in (out / "results.jsonl").read_text().splitlines()]
    assert len(rows) == 6 and not any(r.get("error") for r in rows)
    assert all(r["cost"]["llm_calls"] > 0 for r in rows), [r["cost"] for r in rows]
    assert sorted(len(r["candidates"]) for r in rows if r["planner"] == "sampling") == [3, 3, 3]
    assert "errors: 0" in output
