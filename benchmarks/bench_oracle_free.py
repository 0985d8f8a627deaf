"""Reward-model held-out accuracy from oracle-free data against oracle-assisted data, per env.

    .venv/bin/python benchmarks/bench_oracle_free.py --out runs/oracle-free --tasks 8 \
        --env game24 --env shop --env textworld --env tests.user_envs:CounterEnv

For each env, two synthesis runs with the same number of explorations per task:

- oracle-free: ``--trajectories K`` from the configured explorer only (the method as published);
- oracle-assisted: ``K - G`` from the explorer plus ``G`` from the env's expert (``guided_per_task``).

Then a reward model is trained on each (``train-rm``), and the table gives its held-out pairwise
accuracy. The split is by task, so the held-out tasks are not the same across runs. Rates carry n
and a 95 % Wilson interval. Everything runs through the real CLI, one command after another; each
run folder resumes if interrupted.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from agentcritic.intervals import wilson

CLI = [sys.executable, "-m", "agentcritic.cli"]


def run(*args: str) -> None:
    res = subprocess.run([*CLI, *args], capture_output=True, text=True)
    if res.returncode != 0:
        raise SystemExit(f"failed: agentcritic {' '.join(args)}\n{res.stderr[-2000:]}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--env", action="append", default=[], help="env name or module:Class (repeatable)")
    ap.add_argument("--tasks", type=int, default=8, help="training tasks explored per env")
    ap.add_argument("--trajectories", type=int, default=4, help="explorations per task (K)")
    ap.add_argument("--guided", type=int, default=2, help="of them, by the expert in the assisted run (G)")
    ap.add_argument("--explorer", default="random", help="the configured explorer (random | smollm2 | openai …)")
    ap.add_argument("--max-steps", type=int, default=60, help="reward-model optimizer steps")
    args = ap.parse_args()
    envs = args.env or ["game24", "shop"]
    print(f"load average {os.getloadavg()[0]:.1f} at the start; explorer {args.explorer}, {args.tasks} tasks x "
          f"{args.trajectories} explorations; assisted: {args.guided} of them by the expert\n")
    print("| env | data | pairs | positives by explorer | held-out accuracy (95 % CI) | n held out | seconds |")
    print("|---|---|---:|---|---|---:|---:|")
    for env in envs:
        for label, own, guided in (("oracle-free", args.trajectories, 0),
                                   ("oracle-assisted", args.trajectories - args.guided, args.guided)):
            folder = args.out / env.replace(":", "_").replace(".", "_") / label
            start = time.perf_counter()
            run("synthesize", "--env", env, "--explorer", args.explorer, "--tasks", str(args.tasks),
                "--trajectories", str(own), "--set", f"guided_per_task={guided}", "--out", str(folder / "synth"))
            stats = json.loads((folder / "synth" / "synth_stats.json").read_text())
            if not stats.get("pairs"):
                print(f"| {env} | {label} | 0 | {stats.get('by_explorer', {}).get('positives', {})} | no pairs | 0 | "
                      f"{time.perf_counter() - start:.0f} |")
                continue
            run("train-rm", "--data", str(folder / "synth" / "preferences.jsonl"), "--out", str(folder / "rm"),
                "--max-steps", str(args.max_steps))
            ev = json.loads((folder / "rm" / "metrics.json").read_text()).get("eval") or {}
            n, acc = int(ev.get("n") or 0), ev.get("accuracy")
            lo, hi = wilson((acc or 0) * n, n) or (float("nan"), float("nan"))
            shown = "–" if acc is None else f"{acc:.3f} ({lo:.2f}–{hi:.2f})"
            print(f"| {env} | {label} | {stats['pairs']} | {stats.get('by_explorer', {}).get('positives', {})} | "
                  f"{shown} | {n} | {time.perf_counter() - start:.0f} |", flush=True)
    print(f"\nload average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
