"""Latency of one agent step (``ReActAgent.act``) in choose mode, per env, on the embedded SmolLM2.

    .venv/bin/python benchmarks/bench_agent_step.py [--steps 30] [--env game24 shop textworld] [--threads N]

A step = build the prompt, score every admissible action with ``lm.score`` (KV reuse), pick the
argmax; the env step itself is excluded. Steps are drawn from greedy episodes on test tasks, so
candidate counts are the ones a real run sees. The score cache is cleared before each step, so no
step is a cache hit. Each step is timed twice, side by side: "warm" keeps the previous step's
prompt KV (as in a real episode, where the next prompt continues from the shared head: system
text, few-shot example, the steps so far) and "cold" runs the whole prompt.
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
from agentcritic.types import Step, Trajectory


def measure(name: str, lm, steps: int) -> dict[str, float]:
    env = envs.make(name)
    agent = ReActAgent(lm, mode="choose", temperature=0.0)
    times, cold, counts = [], [], []
    tasks = iter(env.task_ids("test"))
    while len(times) < steps:
        task = next(tasks)
        obs, info = env.reset(task_id=task, seed=0)
        agent.reset(env, task, 0)
        hist = Trajectory(name, task, info["instruction"], meta={"first_observation": obs})
        done = False
        while not done and len(times) < steps:
            lm.clear_cache(kv=False)
            t0 = time.perf_counter()
            action = agent.act(hist, info)
            times.append(time.perf_counter() - t0)
            lm.clear_cache()
            t0 = time.perf_counter()
            agent.act(hist, info)
            cold.append(time.perf_counter() - t0)
            counts.append(len(info["admissible_actions"]))
            obs, _, term, trunc, info = env.step(action)
            hist.steps.append(Step(action, obs))
            done = term or trunc
    env.close()
    times.sort()
    cold.sort()
    return {
        "median": statistics.median(times),
        "p90": times[int(0.9 * (len(times) - 1))],
        "cold_median": statistics.median(cold),
        "cold_p90": cold[int(0.9 * (len(cold) - 1))],
        "candidates": statistics.median(counts),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--env", nargs="+", default=["game24", "shop", "textworld"])
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    kwargs = {"threads": args.threads} if args.threads else {}
    lm = llm.load("smollm2", **kwargs)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores; torch threads {args.threads or 'default'}; "
          f"{args.steps} steps per env\n")
    print("| env | median s/step | p90 s/step | cold median | cold p90 | cold/warm (medians) | candidates (median) |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name in args.env:
        r = measure(name, lm, args.steps)
        print(f"| {name} | {r['median']:.2f} | {r['p90']:.2f} | {r['cold_median']:.2f} | {r['cold_p90']:.2f} | "
              f"{r['cold_median'] / r['median']:.1f}x | {r['candidates']:.0f} |", flush=True)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\npeak RSS {rss:.0f} MB")


if __name__ == "__main__":
    main()
