"""The real `agentcritic` command, run as a user would, on small budgets."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

CLI = [sys.executable, "-m", "agentcritic.cli"]


def run_cli(*args: str, input: str | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, input=input, timeout=timeout)


def records(path: Path) -> dict[str, dict]:
    out = {}
    for line in path.read_text().splitlines():
        row = json.loads(line)
        assert row["key"] not in out, f"key {row['key']} written twice"
        out[row["key"]] = row["record"]
    return out


def test_help_is_fast_and_lists_commands() -> None:
    t0 = time.perf_counter()
    res = run_cli("--help")
    assert res.returncode == 0
    for cmd in ("envs", "play", "rollout", "demo"):
        assert cmd in res.stdout
    # the command must not import torch or start a JVM to print its help
    probe = subprocess.run(
        [sys.executable, "-c", "import sys, agentcritic.cli; print('torch' in sys.modules, 'py4j' in sys.modules)"],
        capture_output=True, text=True,
    )
    assert probe.stdout.strip() == "False False"
    assert time.perf_counter() - t0 < 30  # generous: only guards against a model load in --help


def test_rollout_expert_on_game24_and_resume_writes_nothing_twice(tmp_path) -> None:
    out = tmp_path / "run"
    res = run_cli("rollout", "--env", "game24", "--policy", "expert", "--limit", "5", "--out", str(out))
    assert res.returncode == 0, res.stderr
    assert "success 100.0%" in res.stdout
    first = records(out / "rollouts.jsonl")
    assert len(first) == 5 and all(r["success"] for r in first.values())
    res = run_cli("rollout", "--env", "game24", "--policy", "expert", "--limit", "5", "--out", str(out))
    assert res.returncode == 0 and "this rollout is done; nothing to do" in res.stdout, res.stdout
    assert records(out / "rollouts.jsonl") == first
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["stages"]["rollout"]["done"] is True


def test_a_different_config_in_the_same_folder_is_refused(tmp_path) -> None:
    out = tmp_path / "run"
    assert run_cli("rollout", "--env", "game24", "--policy", "random", "--limit", "2", "--out", str(out)).returncode == 0
    res = run_cli("rollout", "--env", "game24", "--policy", "expert", "--limit", "2", "--out", str(out))
    assert res.returncode == 2
    assert "another config" in res.stderr and "Traceback" not in res.stderr


def test_unknown_env_names_the_valid_choices(tmp_path) -> None:
    res = run_cli("rollout", "--env", "chess", "--policy", "random", "--out", str(tmp_path / "x"))
    assert res.returncode == 2
    assert "unknown env 'chess'" in res.stderr and "game24" in res.stderr and "Traceback" not in res.stderr
    res = run_cli("play", "game24", "--task-id", "99999")
    assert res.returncode == 2 and "unknown task id" in res.stderr


def test_broken_config_file_names_file_line_and_field(tmp_path) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text('env = "game24"\npolicy = "random"\nsamples = -1\n')
    res = run_cli("rollout", "--config", str(cfg), "--out", str(tmp_path / "x"))
    assert res.returncode == 2
    assert "bad.toml:3: field 'samples'" in res.stderr


def test_play_with_typed_input_reaches_the_end(tmp_path) -> None:
    # 900 is "4 5 6 10" (rank 901) in ToT's list; '?' asks the expert for a hint, then we play its moves by text.
    from agentcritic import envs

    env = envs.make("game24")
    env.reset(task_id="900")
    moves = []
    while (a := env.expert_action()) is not None:
        moves.append(a)
        env.step(a)
    res = run_cli("play", "game24", "--task-id", "900", input="?\n" + "\n".join(moves) + "\n")
    assert res.returncode == 0, res.stderr
    assert "hint:" in res.stdout
    assert "success True" in res.stdout


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2])
def test_sigkill_mid_run_then_resume_gives_exactly_the_uninterrupted_records(tmp_path, workers) -> None:
    args = ["rollout", "--env", "game24", "--policy", "random", "--split", "train", "--limit", "400",
            "--samples", "2", "--workers", str(workers)]
    reference = tmp_path / "reference"
    assert run_cli(*args, "--out", str(reference), timeout=300).returncode == 0
    expected = records(reference / "rollouts.jsonl")
    assert len(expected) == 800

    out = tmp_path / "killed"
    proc = subprocess.Popen([*CLI, *args, "--out", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    shard = out / "rollouts.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline:
        if shard.exists() and shard.read_bytes().count(b"\n") >= 100:
            break
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    partial = shard.read_bytes().count(b"\n")
    assert 100 <= partial < 800, "the kill must land mid-run for this test to mean anything"
    # simulate the worst case too: a record torn in the middle of its line
    with open(shard, "ab") as f:
        f.write(b'{"key": "torn", "rec')
    res = run_cli(*args, "--out", str(out), timeout=300)
    assert res.returncode == 0, res.stderr
    assert records(shard) == expected


@pytest.mark.slow
def test_ray_executor_writes_the_same_records_as_the_pool(tmp_path) -> None:
    args = ["rollout", "--env", "game24", "--policy", "random", "--limit", "30", "--samples", "2", "--workers", "2"]
    assert run_cli(*args, "--out", str(tmp_path / "pool")).returncode == 0
    res = run_cli(*args, "--executor", "ray", "--out", str(tmp_path / "ray"), timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    assert records(tmp_path / "ray" / "rollouts.jsonl") == records(tmp_path / "pool" / "rollouts.jsonl")
