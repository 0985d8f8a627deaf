"""Wall time and peak RSS of the main job (``agentcritic demo``), per stage, from a fresh folder.

    .venv/bin/python benchmarks/bench_demo.py --out runs/bench-demo
    .venv/bin/python benchmarks/bench_demo.py --out runs/bench-demo-small \
        --set synth-game24.tasks=4 --set synth-shop.tasks=4 --set evaluate-game24.limit=1 --set evaluate-shop.limit=1

Runs the real command in a child process (so the numbers include model loads and worker start-up),
then prints one Markdown table: stage, seconds (from the run's manifest), and the totals. Peak RSS
is the largest resident set of any one process of the run (the parent or a worker), from
``getrusage(RUSAGE_CHILDREN)``, which also gives the CPU time of the whole run (a number that
hardly moves with the machine's load); the load average before and after says how busy it was.
An existing --out is resumed, which measures the resume, not the run: use a new folder.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True, help="a new run folder")
    ap.add_argument("--workers", type=int, default=None, help="passed to `agentcritic demo --workers`")
    ap.add_argument("--set", dest="overrides", action="append", default=[], help="STAGE.field=VALUE")
    args = ap.parse_args()

    cmd = [sys.executable, "-m", "agentcritic.cli", "demo", "--out", str(args.out)]
    if args.workers:
        cmd += ["--workers", str(args.workers)]
    for item in args.overrides:
        cmd += ["--set", item]
    load_before = os.getloadavg()
    t0 = time.perf_counter()
    proc = subprocess.run(cmd)
    wall = time.perf_counter() - t0
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    peak_mb = usage.ru_maxrss / 1024
    cpu = usage.ru_utime + usage.ru_stime
    load_after = os.getloadavg()
    if proc.returncode != 0:
        sys.exit(f"demo failed with exit code {proc.returncode}")

    stages = json.loads((args.out / "manifest.json").read_text())["stages"]
    print(f"\n{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
          f"load average {load_before[0]:.1f} before, {load_after[0]:.1f} after")
    print("| stage | kind | seconds |\n|---|---|---:|")
    for name, info in sorted(stages.items(), key=lambda kv: kv[1].get("finished", "")):
        if name == "demo":
            continue
        print(f"| {name} | {info.get('kind', '')} | {info.get('seconds', 0):.0f} |")
    print(f"| **total (wall)** | | **{wall:.0f}** |")
    print(f"\npeak RSS of one process: {peak_mb:.0f} MB")
    # CPU time hardly depends on how busy the machine is: on two free cores the wall time is about
    # CPU / 2 where both workers are busy, and up to CPU / 1 in the single-process stages.
    print(f"CPU time of all processes (user + sys): {cpu:.0f} s, i.e. {cpu / wall:.2f} cores busy on average")


if __name__ == "__main__":
    main()
