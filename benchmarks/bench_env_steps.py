"""Steps per second of every registered env under a random admissible-action policy.

    .venv/bin/python benchmarks/bench_env_steps.py [--steps 2000] [--repeats 5] [--env NAME ...]

Each repeat runs ``--steps`` steps (resetting on a fresh test task whenever an episode ends) and
reports steps/s; the table gives the median and the spread over repeats, plus the median reset time.
The admissible-action listing is part of a step, as it is for an agent that chooses.
"""

from __future__ import annotations

import argparse
import platform
import random
import statistics
import time

from agentcritic import envs


def measure(name: str, steps: int, repeats: int) -> dict[str, float]:
    env = envs.make(name)
    tasks = env.task_ids("test")
    rng = random.Random(0)
    rates, resets = [], []
    try:
        for _ in range(repeats):
            done_steps = 0
            t0 = time.perf_counter()
            while done_steps < steps:
                r0 = time.perf_counter()
                _, info = env.reset(task_id=rng.choice(tasks), seed=0)
                resets.append(time.perf_counter() - r0)
                done = False
                while not done and done_steps < steps:
                    choices = info["admissible_actions"] or ["look"]
                    _, _, term, trunc, info = env.step(rng.choice(choices))
                    done = term or trunc
                    done_steps += 1
            rates.append(steps / (time.perf_counter() - t0))
    finally:
        env.close()
    return {
        "median": statistics.median(rates),
        "min": min(rates),
        "max": max(rates),
        "reset_ms": 1000 * statistics.median(resets),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--env", nargs="*", default=None)
    args = ap.parse_args()
    print(f"machine: {platform.machine()}, {__import__('os').cpu_count()} cores, Python {platform.python_version()}")
    print(f"random admissible-action policy, {args.steps} steps x {args.repeats} repeats\n")
    print("| env | steps/s (median) | min–max | reset (median ms) |")
    print("|---|---:|---:|---:|")
    for name in args.env or envs.names():
        r = measure(name, args.steps, args.repeats)
        print(f"| {name} | {r['median']:.0f} | {r['min']:.0f}–{r['max']:.0f} | {r['reset_ms']:.1f} |", flush=True)


if __name__ == "__main__":
    main()
