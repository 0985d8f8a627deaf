"""The stage contract (agentcritic.stage) through the real stage kinds and the real CLI: one writer per
folder, a failed start-up leaves nothing that refuses the corrected command, fields that change no
result may differ on resume for every kind, and an LLM outage is work to redo, not finished work."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from llm_server import ServerThread, create_app, make_tiny_llama  # noqa: E402

from agentcritic import llm  # noqa: E402
from agentcritic.config import RolloutConfig  # noqa: E402
from agentcritic.pipeline import STAGE_KINDS, import_attr, run_kind  # noqa: E402
from agentcritic.stage import RESUMABLE_FIELDS, recorded_settings  # noqa: E402
from agentcritic.store import FolderLock, StoreError, iter_shard  # noqa: E402

CLI = [sys.executable, "-m", "agentcritic.cli"]


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=300)


def test_a_second_writer_stops_at_once_naming_the_holder(tmp_path: Path) -> None:
    out = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from agentcritic.store import FolderLock; "
        f"lock = FolderLock({str(out)!r}).acquire(); print('held', flush=True); time.sleep(60)")],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        res = cli("rollout", "--env", "game24", "--policy", "random", "--limit", "2", "--out", str(out))
        assert res.returncode == 2 and "Traceback" not in res.stderr
        assert f"process {holder.pid}" in res.stderr and "being written" in res.stderr
        assert not (out / "rollouts.jsonl").exists() and not (out / "config.toml").exists()
    finally:
        holder.kill()
        holder.wait()
    # the kernel dropped the dead holder's lock: the folder is usable at once
    assert cli("rollout", "--env", "game24", "--policy", "random", "--limit", "2", "--out", str(out)).returncode == 0
    assert len(list(iter_shard(out / "rollouts.jsonl"))) == 2


def test_the_lock_is_exclusive_within_one_process_too(tmp_path: Path) -> None:
    with FolderLock(tmp_path):
        with pytest.raises(StoreError, match="being written by process"):
            FolderLock(tmp_path).acquire()
    FolderLock(tmp_path).acquire().release()


def test_a_failed_start_up_does_not_block_the_corrected_command(tmp_path: Path) -> None:
    out = tmp_path / "r1"
    bad = cli("train-rm", "--data", str(tmp_path / "nope.jsonl"), "--out", str(out))
    assert bad.returncode == 2 and "nope.jsonl" in bad.stderr and "Traceback" not in bad.stderr
    assert not (out / "config.toml").exists()
    # a stage that fails inside its body, before it wrote anything, takes its record back too
    broken = tmp_path / "broken.jsonl"
    broken.write_text("{not json\n")
    res = cli("train-rm", "--data", str(broken), "--out", str(out))
    assert res.returncode == 2 and "broken.jsonl" in res.stderr and "Traceback" not in res.stderr
    assert not (out / "config.toml").exists()
    # the corrected command is not refused as "another config"
    good = tmp_path / "good.jsonl"
    good.write_text("")
    res = cli("train-rm", "--data", str(good), "--out", str(out))
    assert "another config" not in res.stderr


def test_a_rollout_resumes_with_other_workers(tmp_path: Path) -> None:
    out = tmp_path / "run"
    base = ["rollout", "--env", "game24", "--policy", "random", "--limit", "3", "--out", str(out)]
    assert cli(*base, "--workers", "1").returncode == 0
    res = cli(*base, "--workers", "2", "--executor", "pool")
    assert res.returncode == 0 and "nothing to do" in res.stdout, res.stderr
    res = cli(*base, "--seed", "7")
    assert res.returncode == 2 and "another config" in res.stderr and "seed" in res.stderr


def test_a_finished_collect_run_grows_in_its_folder_and_never_shrinks(tmp_path: Path) -> None:
    grown, whole = tmp_path / "grown", tmp_path / "whole"
    sweep = ["collect", "--env", "household", "--policy", "random", "--schedule", "sweep"]
    assert cli(*sweep, "--limit", "2", "--out", str(grown)).returncode == 0
    res = cli(*sweep, "--limit", "3", "--sweep-asks", "2", "--out", str(grown))  # more tasks, and pairs
    assert res.returncode == 0 and "resumed" in res.stdout, res.stderr
    assert cli(*sweep, "--limit", "3", "--sweep-asks", "2", "--out", str(whole)).returncode == 0
    keys = [{key for key, _ in iter_shard(folder / "episodes.jsonl")} for folder in (grown, whole)]
    assert keys[0] == keys[1] and len(keys[0]) > 0
    summary = json.loads((grown / "collect_summary.json").read_text())
    assert summary["expected_episodes"] == len(keys[0]) and "limit = 3" in (grown / "config.toml").read_text()
    for shrink in (["--limit", "2", "--sweep-asks", "2"], ["--limit", "3", "--sweep-asks", "2", "--seed", "5"]):
        res = cli(*sweep, *shrink, "--out", str(grown))
        assert res.returncode == 2 and "another config" in res.stderr and "may also grow" in res.stderr, shrink


def _field_paths(model: type, prefix: str = "") -> list[str]:
    from pydantic import BaseModel

    paths = []
    for name, field in model.model_fields.items():
        paths.append(prefix + name)
        kind = field.annotation
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            paths += _field_paths(kind, f"{prefix}{name}.")
    return paths


@pytest.mark.parametrize("kind", sorted(STAGE_KINDS))
def test_every_kind_records_no_field_that_only_changes_how_it_runs(kind: str) -> None:
    model = import_attr(STAGE_KINDS[kind].config, kind)
    config = model.model_construct()
    recorded = recorded_settings(config)

    def leaves(node: object, prefix: str = "") -> list[str]:
        if isinstance(node, dict):
            return [p for k, v in node.items() for p in [prefix + k, *leaves(v, f"{prefix}{k}.")]]
        return []

    kept = leaves(recorded)
    resumable = [p for p in _field_paths(model) if p.split(".")[-1] in RESUMABLE_FIELDS]
    assert not set(resumable) & set(kept), f"{kind} records {set(resumable) & set(kept)}"
    assert set(p for p in _field_paths(model) if p not in resumable and "." not in p) <= set(kept) | {
        p for p in _field_paths(model) if getattr(config, p, None) is None}


# ------------------------------------------------------------------ an LLM outage, then recovery
@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    lm = llm.load("hf", path=make_tiny_llama(tmp_path_factory.mktemp("tiny-llama")), threads=1)
    with ServerThread(create_app(lm, model_name="tiny")) as srv:
        yield srv


def test_an_llm_outage_is_retried_when_the_run_is_resumed(server, tmp_path: Path) -> None:
    # 'r429' answers 429 to the first two requests of its tag, then answers: a server that was down
    base_url = f"{server.url}/r429/{uuid.uuid4().hex[:8]}/v1"
    config = RolloutConfig(env="game24", policy="openai", split="test", limit=2, max_steps=1,
                           llm={"base_url": base_url, "model": "tiny", "max_retries": 0})
    out = tmp_path / "run"
    with pytest.raises(llm.LLMFailureRateError, match=base_url):  # 2 of 2 calls failed: past the 5 % allowed
        run_kind("rollout", config, out, progress=False)
    first = json.loads((out / "result.json").read_text())
    assert first["pending"] == 2 and first["errors"] >= 2 and (first["llm_calls"], first["llm_failures"]) == (2, 2)
    assert list(iter_shard(out / "rollouts.jsonl")) == []  # nothing counts as done
    assert len(list(iter_shard(out / "rollouts.jsonl", retries=True))) == 2  # but the failures are recorded
    requests = sum(server.app.state.attempts.values())
    second = run_kind("rollout", config, out, progress=False)
    assert not second.skipped and second.pending == 0 and second.errors == 0
    assert second.summary["llm_failures"] == 0 and second.summary["llm_calls"] == 2
    assert sum(server.app.state.attempts.values()) > requests  # the server was asked again
    done = dict(iter_shard(out / "rollouts.jsonl"))
    assert len(done) == 2 and all("error" not in t["meta"] for t in done.values())
    assert run_kind("rollout", config, out, progress=False).skipped


def test_a_task_failure_stays_done(tmp_path: Path) -> None:
    # the expert of a task it cannot solve is a task failure, not an outage: recorded once, done
    from agentcritic.llm.base import is_infrastructure_failure
    from agentcritic.agents.base import AgentError

    assert not is_infrastructure_failure(AgentError("no move"))
    assert is_infrastructure_failure(llm.LLMError("down")) and is_infrastructure_failure(TimeoutError())
