"""When does one intervention matter? Success with exactly one expert action at step t, per task type.

    .venv/bin/python benchmarks/bench_help_timing.py --env household --policy random --limit 60 --samples 5
    .venv/bin/python benchmarks/bench_help_timing.py --policy smollm2 --limit 9 --samples 1 --steps 0 1 2

For each test task (first ``--limit``), each sample and each t in ``--steps``, the base policy runs
the episode and the env's expert takes the action at step t only (t = -1: no help at all). The
table gives the success rate per task type (the part before '-' of the task id) and overall: a
row that beats t = -1 by much says help at that step changes the outcome.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

from agentcritic import envs
from agentcritic.agents import derive_seed, make_agent
from agentcritic.helper.episode import run_helped_episode
from agentcritic.helper.interventions import ExpertIntervention


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--env", default="household")
    ap.add_argument("--policy", default="random")
    ap.add_argument("--split", default="test")
    ap.add_argument("--limit", type=int, default=60)
    ap.add_argument("--samples", type=int, default=5)
    ap.add_argument("--steps", type=int, nargs="+", default=[-1, 0, 1, 2, 3, 4, 5])
    ap.add_argument("--json", default=None, help="also write the table here")
    args = ap.parse_args()

    env = envs.make(args.env)
    tasks = env.task_ids(args.split)[: args.limit]
    kinds = sorted({t.split("-")[0] for t in tasks})
    table: dict[int, dict[str, float]] = {}
    t0 = time.perf_counter()
    for t in args.steps:
        wins: dict[str, list[bool]] = {k: [] for k in kinds}
        for task in tasks:
            for s in range(args.samples):
                seed = derive_seed(0, task, s) % (2**31)
                agent = make_agent(args.policy, seed=seed)
                ep = run_helped_episode(env, agent, ExpertIntervention(), task, lambda st, k, t=t: k == t, seed=seed)
                wins[task.split("-")[0]].append(ep.success)
        row = {k: statistics.fmean(v) for k, v in wins.items()}
        row["all"] = statistics.fmean(x for v in wins.values() for x in v)
        table[t] = row
    seconds = time.perf_counter() - t0
    print(f"{args.env}, base {args.policy}, {len(tasks)} {args.split} tasks x {args.samples} samples "
          f"({platform.python_version()}, {seconds:.1f} s)")
    print(f"{'help at step':<14}" + "".join(f"{k:>8}" for k in [*kinds, "all"]))
    for t, row in table.items():
        label = "never" if t < 0 else str(t)
        print(f"{label:<14}" + "".join(f"{row[k]:>8.1%}" for k in [*kinds, "all"]))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"env": args.env, "policy": args.policy, "tasks": len(tasks), "samples": args.samples,
                       "table": {str(k): v for k, v in table.items()}}, f, indent=2)


if __name__ == "__main__":
    main()
