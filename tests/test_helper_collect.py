"""Collection: the p-grid × n episodes per task, one JSONL line each, transitions that chain, and a
run that resumes after SIGKILL with no duplicates and the same final record set."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agentcritic.cli import app
from agentcritic.helper.collect import run_collect
from agentcritic.helper.episode import parse_state_key
from agentcritic.helper.helper_config import CollectConfig


def _records(folder: Path) -> dict[str, dict]:
    out = {}
    for line in (folder / "episodes.jsonl").read_text().splitlines():
        row = json.loads(line)
        assert row["key"] not in out, f"duplicate record {row['key']}"
        out[row["key"]] = row["record"]
    return out


def _small(**kw) -> CollectConfig:
    base = dict(env="household", policy="random", limit=4, n=2, p_grid=[0.0, 0.5, 1.0])
    return CollectConfig(**{**base, **kw})


def test_every_task_p_and_rollout_is_one_episode_with_chained_transitions(tmp_path: Path) -> None:
    summary = run_collect(_small(), tmp_path, progress=False)
    recs = _records(tmp_path)
    assert summary["episodes"] == len(recs) == 4 * 3 * 2
    assert {k.split("|")[1] for k in recs} == {"p=0", "p=0.5", "p=1"}
    for key, rec in recs.items():
        trans = rec["transitions"]
        assert trans and len(trans) == rec["steps"]
        task, actions = parse_state_key(trans[0]["state_key"])
        assert task == rec["task_id"] and actions == []
        for a, b in zip(trans, trans[1:]):
            assert a["next_state_key"] == b["state_key"] and not a["done"]
        assert trans[-1]["done"]
        assert all(t["success"] == rec["success"] for t in trans)
        assert all(t["actor"] == ("expert" if t["helped"] else "agent") for t in trans)
        helped = [t["helped"] for t in trans]
        if rec["meta"]["p"] == 0.0:
            assert not any(helped)
        if rec["meta"]["p"] == 1.0:
            assert all(helped) and rec["success"], "always asking the expert succeeds"
        assert rec["interventions"] == sum(helped)
        assert trans[0]["state_text"].startswith("Instruction: ")
    by_p = {row["p"]: row for row in summary["per_p"]}
    assert by_p[1.0]["success_rate"] == 1.0 and by_p[0.0]["mean_interventions"] == 0.0


def test_the_next_state_key_is_the_actions_taken(tmp_path: Path) -> None:
    run_collect(_small(limit=1, n=1, p_grid=[0.5]), tmp_path, progress=False)
    (rec,) = _records(tmp_path).values()
    actions = [s["action"] for s in rec["trajectory"]["steps"]]
    assert parse_state_key(rec["transitions"][-1]["next_state_key"]) == (rec["task_id"], actions)


def test_a_rerun_writes_nothing_and_another_config_is_refused(tmp_path: Path) -> None:
    from agentcritic.pipeline import run_kind

    first = run_kind("collect", _small(limit=2), tmp_path, progress=False)
    assert not first.skipped and first.summary["episodes"] == 12
    lines = (tmp_path / "episodes.jsonl").read_text()
    again = run_kind("collect", _small(limit=2), tmp_path, progress=False)
    assert again.skipped and (tmp_path / "episodes.jsonl").read_text() == lines
    # the body itself resumes inside the stage: nothing is written twice
    body = run_collect(_small(limit=2), tmp_path, progress=False)
    assert body["written"] == 0 and body["resumed_from"] == body["episodes"] == 12
    result = CliRunner().invoke(app, ["collect", "--policy", "random", "--limit", "2", "--n", "3",
                                      "--out", str(tmp_path)])
    assert result.exit_code == 2 and "another config" in result.output


def test_torn_last_line_is_dropped_and_redone(tmp_path: Path) -> None:
    run_collect(_small(limit=1), tmp_path, progress=False)
    full = _records(tmp_path)
    lines = (tmp_path / "episodes.jsonl").read_text().splitlines(keepends=True)
    (tmp_path / "episodes.jsonl").write_text("".join(lines[:-1]) + lines[-1][: len(lines[-1]) // 2])
    run_collect(_small(limit=1), tmp_path, progress=False)
    assert _records(tmp_path) == full


@pytest.mark.slow
def test_collection_resumes_after_sigkill_without_duplicates(tmp_path: Path) -> None:
    clean, killed = tmp_path / "clean", tmp_path / "killed"
    args = ["-m", "agentcritic.cli", "collect", "--policy", "random", "--limit", "30", "--n", "3",
            "--p-grid", "0,0.2,0.4,0.6,0.8,1"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, *args, "--out", str(killed)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    shard = killed / "episodes.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and (not shard.exists() or shard.read_bytes().count(b"\n") < 20):
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    written = shard.read_bytes().count(b"\n")
    assert 20 <= written < 30 * 6 * 3, "the run was killed midway"
    subprocess.run([sys.executable, *args, "--out", str(killed)], env=env, check=True, capture_output=True)
    subprocess.run([sys.executable, *args, "--out", str(clean)], env=env, check=True, capture_output=True)
    resumed, reference = _records(killed), _records(clean)
    assert len(resumed) == 30 * 6 * 3
    assert resumed == reference


def test_cli_expands_the_p_grid_and_reports_per_p(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["collect", "--policy", "random", "--limit", "1", "--n", "1",
                                      "--p-grid", "0,0.25,...,1", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert {r["meta"]["p"] for r in _records(tmp_path).values()} == {0.0, 0.25, 0.5, 0.75, 1.0}
    assert "p=0.75" in result.output
    bad = CliRunner().invoke(app, ["collect", "--p-grid", "0,x", "--out", str(tmp_path / "b")])
    assert bad.exit_code == 2 and "comma-separated numbers" in bad.output
    bad = CliRunner().invoke(app, ["collect", "--p-grid", "0,1.5", "--out", str(tmp_path / "c")])
    assert bad.exit_code == 2 and "p_grid" in bad.output and "[0, 1]" in bad.output
