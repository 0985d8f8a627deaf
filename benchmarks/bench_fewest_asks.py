"""The fewest one-step interventions that rescue each task: the floor any when-to-ask method meets.

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/bench_fewest_asks.py --policy smollm2 --limit 12 --max-asks 2

With a deterministic base policy (an LLM at T = 0) and a deterministic env, an episode is a function
of the steps at which help is asked. For each test task this tries every set of ask steps of size
0, 1, …, ``--max-asks`` (smallest first) and records the smallest size that succeeds. The base
agent's action is memoised by the actions so far, so episodes that share a prefix share its LLM calls.

It prints, per task, the fewest asks (``>K`` where none of size ≤ K succeeded) and the steps of the
first rescuing set; then the oracle's curve: for each success rate reachable, the least mean
interventions per episode that reaches it (rescue the cheapest tasks first, give up on the rest).
A helper "within 5 points of always-intervene at ≤ 1.5 interventions" needs this curve to pass there.
(`agentcritic collect --schedule sweep` records the same for every task, and `eval-helper --oracle`
shows it beside the methods; this script tries the sets one task at a time, stopping at the first
that rescues.)
"""

from __future__ import annotations

import argparse
import itertools
import json
import platform
import time
from typing import Any

from agentcritic import envs
from agentcritic.agents import derive_seed, make_agent
from agentcritic.agents.memo import ActionMemo, MemoAgent
from agentcritic.helper.episode import run_helped_episode
from agentcritic.helper.interventions import ExpertIntervention


def fewest_asks(env: Any, agent: MemoAgent, task: str, seed: int, max_asks: int) -> tuple[int | None, list[int]]:
    """(fewest asks that succeed, the steps of the first such set); (None, []) past ``max_asks``."""
    help_ = ExpertIntervention()
    horizon = env.max_steps
    for k in range(max_asks + 1):
        for steps in itertools.combinations(range(horizon), k):
            chosen = set(steps)
            episode = run_helped_episode(env, agent, help_, task, lambda state, t: t in chosen, seed=seed)
            if episode.success and episode.interventions == k:
                return k, list(steps)
    return None, []


def oracle_curve(fewest: list[int | None]) -> list[tuple[float, float]]:
    """(success rate, least mean interventions) rescuing the cheapest tasks first."""
    n = len(fewest)
    costs = sorted(k for k in fewest if k is not None)
    out, spent = [], 0
    for i, k in enumerate(costs, start=1):
        spent += k
        out.append((i / n, spent / n))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--env", default="household")
    ap.add_argument("--policy", default="smollm2")
    ap.add_argument("--split", default="test")
    ap.add_argument("--limit", type=int, default=12)
    ap.add_argument("--tasks", nargs="+", default=None, help="these task ids instead of the first --limit")
    ap.add_argument("--max-asks", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=None, help="also write the per-task results here")
    args = ap.parse_args()

    env = envs.make(args.env)
    tasks = args.tasks or env.task_ids(args.split, limit=args.limit)
    memo = ActionMemo()
    agent = MemoAgent(make_agent(args.policy, temperature=0.0), memo)
    t0 = time.perf_counter()
    rows = []
    for task in tasks:
        seed = derive_seed(args.seed, task, 0) % (2**31)  # the seed eval-helper gives sample 0
        t_task = time.perf_counter()
        k, steps = fewest_asks(env, agent, task, seed, args.max_asks)
        rows.append({"task": task, "fewest_asks": k, "steps": steps, "seconds": round(time.perf_counter() - t_task, 1)})
        shown = k if k is not None else f">{args.max_asks}"
        print(f"{task:<14} fewest asks {shown!s:>3}  at steps {steps}  ({rows[-1]['seconds']} s, {memo.misses} LLM calls so far)",
              flush=True)
    env.close()
    curve = oracle_curve([r["fewest_asks"] for r in rows])
    print(f"\nmachine: {platform.machine()}, {__import__('os').cpu_count()} cores; {len(tasks)} {args.split} tasks; "
          f"policy {args.policy} at T=0; {time.perf_counter() - t0:.0f} s; {memo.misses} LLM calls\n")
    print("| success | least mean interventions |\n|---:|---:|")
    for rate, mean in curve:
        print(f"| {rate:.1%} | {mean:.2f} |")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"tasks": rows, "curve": curve, "max_asks": args.max_asks, "policy": args.policy}, f, indent=1)


if __name__ == "__main__":
    main()
