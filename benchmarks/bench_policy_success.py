"""Success of policies on env test splits (through the same resumable rollouts as the CLI).

    .venv/bin/python benchmarks/bench_policy_success.py --policy expert random --out runs/bench-success
    .venv/bin/python benchmarks/bench_policy_success.py --policy smollm2 --temperature 0 0.7 \
        --env game24 shop textworld --out runs/bench-smollm2

Each (env, policy, temperature) is one run folder under --out, so an interrupted benchmark resumes.
``--limit`` caps the tasks per env (default: the whole test split; ScienceWorld's is large, cap it
with --limit-scienceworld).
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

from agentcritic import envs
from agentcritic.config import RolloutConfig
from agentcritic.demo import summary_table
from agentcritic.rollouts import run_rollouts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--policy", nargs="+", default=["expert", "random"])
    ap.add_argument("--env", nargs="+", default=None)
    ap.add_argument("--split", default="test")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--limit-scienceworld", type=int, default=60)
    ap.add_argument("--mode", default="choose")
    ap.add_argument("--temperature", type=float, nargs="+", default=[0.0])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()

    rows = []
    t0 = time.perf_counter()
    for name in args.env or envs.names():
        limit = args.limit_scienceworld if name == "scienceworld" and args.limit is None else args.limit
        for policy in args.policy:
            temps = args.temperature if policy not in ("expert", "random") else [0.0]
            for temperature in temps:
                cfg = RolloutConfig(env=name, policy=policy, split=args.split, limit=limit, workers=args.workers,
                                    mode=args.mode, temperature=temperature)
                tag = f"{name}-{policy}" + (f"-{args.mode}-t{temperature:g}" if policy not in ("expert", "random") else "")
                summary = run_rollouts(cfg, args.out / tag)
                summary["policy"] = tag.removeprefix(f"{name}-")
                rows.append(summary)
    print(f"\nmachine: {platform.machine()}, {__import__('os').cpu_count()} cores; split {args.split}; "
          f"{time.perf_counter() - t0:.0f} s\n")
    print(summary_table(rows))


if __name__ == "__main__":
    main()
