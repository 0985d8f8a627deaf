"""LLM calls per task of MCTS with and without its per-state cache (game24, SmolLM2, choose mode).

    .venv/bin/python benchmarks/bench_mcts_cache.py [--tasks 3] [--rollouts 20] [--expand-k 10] [--threads 1]

Each test task is searched twice with the same seed: once with ``cache=True`` (an agent
distribution is computed once per state and reused by later simulations and expansions) and once
with ``cache=False``. The target is the env's own reward, so the search is the same in both runs
and only the cost differs. The LM's own (prompt, candidate) score cache is switched off
(``score_cache_size=0``): with it on, a repeated state would be a free cache hit inside the LM and
the uncached search would look as cheap as the cached one.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import time

from agentcritic import envs, llm
from agentcritic.agents import ReActAgent
from agentcritic.planning import make_planner
from agentcritic.rm.custom import EnvRewardTarget


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", type=int, default=3, help="first N test puzzles")
    ap.add_argument("--rollouts", type=int, default=20)
    ap.add_argument("--expand-k", type=int, default=10)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    lm = llm.load("smollm2", threads=args.threads, score_cache_size=0)
    env = envs.make("game24")
    agent = ReActAgent(lm, mode="choose", temperature=0.0)
    tasks = env.task_ids("test")[: args.tasks]
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}; torch threads "
          f"{args.threads}; {args.rollouts} rollouts, expand_k {args.expand_k}\n")
    print("| task | LLM calls, cached | LLM calls, no cache | ratio | s cached | s no cache | same pick | solved |")
    print("|---|---:|---:|---:|---:|---:|---|---|")
    rows = []
    for task in tasks:
        out = {}
        for cache in (True, False):
            planner = make_planner("mcts", agent, EnvRewardTarget(), rollouts=args.rollouts,
                                   expand_k=args.expand_k, cache=cache)
            t0 = time.perf_counter()
            out[cache] = (planner.solve(env, task, seed=0), time.perf_counter() - t0)
        (hit, t_hit), (miss, t_miss) = out[True], out[False]
        ratio = miss.cost.llm_calls / max(hit.cost.llm_calls, 1)
        rows.append((hit.cost.llm_calls, miss.cost.llm_calls, ratio))
        same = hit.trajectory.actions == miss.trajectory.actions
        print(f"| {task} | {hit.cost.llm_calls} | {miss.cost.llm_calls} | {ratio:.2f} | {t_hit:.0f} | {t_miss:.0f} | "
              f"{'yes' if same else 'no'} | {'yes' if hit.trajectory.success else 'no'} |", flush=True)
    cached = statistics.fmean(r[0] for r in rows)
    uncached = statistics.fmean(r[1] for r in rows)
    print(f"\nmean LLM calls per task: {cached:.1f} cached, {uncached:.1f} without the cache "
          f"(ratio {uncached / max(cached, 1e-9):.2f})")
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
