"""The process pool: a run killed with SIGKILL leaves no worker processes behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

SCRIPT = textwrap.dedent('''
    import os, sys, time
    from agentcritic.parallel import EpisodeJob, run_jobs
    from agentcritic.specs import EnvSpec, PolicySpec
    from agentcritic.store import Shard

    def slow(job):
        with open(os.path.join(sys.argv[1], f"worker-{os.getpid()}"), "w"):
            pass
        time.sleep(60)
        return job.key, {}

    if __name__ == "__main__":
        jobs = [EpisodeJob(key=str(i), env=EnvSpec(name="game24"), task_id="900", seed=i,
                           policy=PolicySpec(name="random")) for i in range(8)]
        with Shard(os.path.join(sys.argv[1], "shard.jsonl")) as shard:
            run_jobs(jobs, shard, workers=2, progress=None, fn=slow)
''')


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split()[2] == "Z")  # a zombie is gone


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_pool_workers_end_when_the_run_is_killed(tmp_path: Path) -> None:
    script = tmp_path / "run.py"
    script.write_text(SCRIPT)
    proc = subprocess.Popen([sys.executable, str(script), str(tmp_path)])
    deadline = time.time() + 60
    while time.time() < deadline and len(list(tmp_path.glob("worker-*"))) < 2:
        time.sleep(0.05)
    workers = [int(p.name.split("-")[1]) for p in tmp_path.glob("worker-*")]
    assert len(workers) == 2 and all(_alive(pid) for pid in workers)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    deadline = time.time() + 20
    while time.time() < deadline and any(_alive(pid) for pid in workers):
        time.sleep(0.05)
    assert not any(_alive(pid) for pid in workers), "pool workers outlived the killed run"
