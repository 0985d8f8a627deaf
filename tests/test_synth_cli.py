"""`agentcritic synthesize` run as a user would, on a tiny budget; re-running resumes."""

from __future__ import annotations

import json
import subprocess
import sys

CLI = [sys.executable, "-m", "agentcritic.cli"]
NO_LLM = ["--set", "rephrase=false", "--set", "llm_intents=false",
          "--set", 'negatives=["edit","truncate","cross_policy"]']


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=300)


def test_synthesize_writes_pairs_and_resumes(tmp_path) -> None:
    out = tmp_path / "g24"
    args = ["synthesize", "--env", "game24", "--tasks", "3", "--explorer", "random", "--out", str(out), *NO_LLM]
    first = run_cli(*args)
    assert first.returncode == 0, first.stderr
    stats = json.loads((out / "synth_stats.json").read_text())
    assert f"{stats['pairs']} pairs in" in first.stdout and stats["pairs"] > 0
    prefs = (out / "preferences.jsonl").read_text()
    explore = (out / "explore.jsonl").read_text()
    again = run_cli(*args, "--workers", "2")  # workers change no result, so the run resumes
    assert again.returncode == 0, again.stderr
    assert (out / "explore.jsonl").read_text() == explore
    assert (out / "preferences.jsonl").read_text() == prefs


def test_synthesize_bad_input_is_one_clear_line(tmp_path) -> None:
    res = run_cli("synthesize", "--env", "game24", "--out", str(tmp_path / "x"), "--set", "tasks=ten")
    assert res.returncode == 2 and "field 'tasks'" in res.stderr and "Traceback" not in res.stderr
    res = run_cli("synthesize", "--env", "nope", "--out", str(tmp_path / "y"))
    assert res.returncode == 2 and "unknown env 'nope'" in res.stderr
    out = tmp_path / "z"
    ok = run_cli("synthesize", "--env", "game24", "--tasks", "1", "--explorer", "random", "--out", str(out), *NO_LLM)
    assert ok.returncode == 0, ok.stderr
    other = run_cli("synthesize", "--env", "game24", "--tasks", "2", "--explorer", "random", "--out", str(out), *NO_LLM)
    assert other.returncode == 2 and "another config" in other.stderr
