"""Latency of one agent step (``ReActAgent.act``) in choose mode, per env, on the embedded SmolLM2.

    .venv/bin/python benchmarks/bench_agent_step.py [--steps 30] [--env game24 shop textworld] [--threads N]
        [--baseline REV [--baseline-dtype bfloat16] | --compare-dtype bfloat16] [--dtype bfloat16] [--kv-block N]

A step = build the prompt, score every admissible action with ``lm.score`` (KV reuse), pick the
argmax; the env step itself is excluded. Steps are drawn from greedy episodes on test tasks, so
candidate counts are the ones a real run sees. The score cache is cleared before each step, so no
step is a cache hit. Each step is timed twice, side by side:

- by default "warm" keeps the previous step's prompt KV (as in a real episode, where the next prompt
  continues from the shared head: system text, few-shot example, the steps so far) and "cold" runs
  the whole prompt;
- with ``--baseline REV`` both are warm, one with this checkout's scorer ("new") and one with
  ``llm/hf.py`` as it was at git revision REV ("old", read with ``git show``; same weights, its own
  prompt KV), in alternating order; the table also gives the largest difference of the two
  scorers' log-probs over the steps and whether they picked the same actions; with ``--dtype D`` as
  well, this checkout's model runs in D and the old one in ``--baseline-dtype`` (float32, the
  reference, unless told otherwise);
- with ``--compare-dtype DTYPE`` both are warm, one with the model in float32 (the reference, whose
  picks the episodes follow) and one with it in DTYPE (``llm.load("smollm2", dtype=DTYPE)``, its own
  weights and prompt KV), in alternating order; the table gives the median of the per-step time
  ratios float32/DTYPE, the largest and 99th-percentile |log-prob difference| per candidate, and how
  many steps picked the same action. On a shared machine pass ``--threads 1``: two OpenMP threads
  on two busy cores spin against each other and swamp any difference.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from agentcritic import envs, llm
from agentcritic.agents import ReActAgent
from agentcritic.types import Step, Trajectory

ROOT = Path(__file__).resolve().parent.parent


def load_baseline(rev: str, lm, dtype: str = "float32"):
    """An LM scoring with ``src/agentcritic/llm/hf.py`` at git revision ``rev`` in ``dtype``, sharing
    ``lm``'s weights where both are float32."""
    src = subprocess.run(["git", "show", f"{rev}:src/agentcritic/llm/hf.py"], cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "hf_baseline.py"
        path.write_text(src)
        spec = importlib.util.spec_from_file_location("agentcritic_hf_baseline", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    old = module.HFLM(lm.path, **({} if dtype == "float32" else {"dtype": dtype, "probe_tolerance": float("inf")}))
    if lm.dtype == "float32" and dtype == "float32":
        old.model = lm.model  # one copy of the weights (the baseline's own is freed)
    old.backend = lm.backend
    return old


class Recorder:
    """Wraps ``lm.score`` to keep the scores of the last call."""

    def __init__(self, lm) -> None:
        self.lm, self.last = lm, None
        self._score = lm.score
        lm.score = self

    def __call__(self, messages, candidates):
        self.last = self._score(messages, candidates)
        return self.last


def timed_act(agent, lm, hist, info, keep_kv: bool) -> float:
    lm.clear_cache(kv=not keep_kv)
    t0 = time.perf_counter()
    agent.act(hist, info)
    return time.perf_counter() - t0


def measure(name: str, lm, steps: int, old=None) -> dict[str, float]:
    env = envs.make(name)
    agent = ReActAgent(lm, mode="choose", temperature=0.0)
    other = ReActAgent(old if old is not None else lm, mode="choose", temperature=0.0)
    rec_new = Recorder(lm) if old is not None else None
    rec_old = Recorder(old) if old is not None else None
    times, second, counts, ratios, diffs = [], [], [], [], []
    diff, same = 0.0, 0
    tasks = iter(env.task_ids("test"))
    while len(times) < steps:
        task = next(tasks)
        obs, info = env.reset(task_id=task, seed=0)
        agent.reset(env, task, 0)
        other.reset(env, task, 0)
        hist = Trajectory(name, task, info["instruction"], meta={"first_observation": obs})
        done = False
        while not done and len(times) < steps:
            if old is None:  # warm, then cold (the cold pass drops the KV the next warm step continues)
                lm.clear_cache(kv=False)
                t0 = time.perf_counter()
                action = agent.act(hist, info)
                times.append(time.perf_counter() - t0)
                second.append(timed_act(agent, lm, hist, info, keep_kv=False))
            else:  # new and old, both warm, in alternating order
                order = [(agent, lm, times), (other, old, second)]
                for a, m, out in order if len(times) % 2 == 0 else order[::-1]:
                    m.clear_cache(kv=False)
                    t0 = time.perf_counter()
                    picked = a.act(hist, info)
                    out.append(time.perf_counter() - t0)
                    if m is lm:
                        action = picked
                    else:
                        old_action = picked
                ratios.append(times[-1] / second[-1])
                diffs.extend(abs(x - y) for x, y in zip(rec_new.last, rec_old.last))
                diff = max(diff, max(diffs[-len(rec_new.last):]))
                same += action == old_action
            counts.append(len(info["admissible_actions"]))
            obs, _, term, trunc, info = env.step(action)
            hist.steps.append(Step(action, obs))
            done = term or trunc
    env.close()
    if old is not None:
        del lm.score, old.score  # back to the methods
    times.sort()
    second.sort()
    diffs.sort()
    return {
        "median_ratio": statistics.median(ratios) if ratios else float("nan"),  # first LM's time / second's
        "median_inverse_ratio": statistics.median(1 / x for x in ratios) if ratios else float("nan"),
        "p99_diff": diffs[int(0.99 * (len(diffs) - 1))] if diffs else float("nan"),
        "median": statistics.median(times),
        "p90": times[int(0.9 * (len(times) - 1))],
        "second_median": statistics.median(second),
        "second_p90": second[int(0.9 * (len(second) - 1))],
        "candidates": statistics.median(counts),
        "max_diff": diff,
        "same": same,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--env", nargs="+", default=["game24", "shop", "textworld"])
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--baseline", metavar="REV", default=None,
                    help="time llm/hf.py at this git revision beside this checkout's (both warm)")
    ap.add_argument("--compare-dtype", metavar="DTYPE", default=None, choices=["bfloat16", "auto"],
                    help="time the model in DTYPE beside float32 (both warm) and compare their scores")
    ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "auto"],
                    help="this checkout's model dtype (with --baseline: the old one's is --baseline-dtype)")
    ap.add_argument("--baseline-dtype", default="float32", choices=["float32", "bfloat16"],
                    help="the --baseline scorer's dtype (float32: the reference; bfloat16: time it like for like)")
    ap.add_argument("--kv-block", type=int, default=None, help="this checkout's HFLM.kv_block (default: its own)")
    args = ap.parse_args()
    kwargs = {"threads": args.threads} if args.threads else {}
    lm = llm.load("smollm2", dtype=args.dtype, probe_tolerance=float("inf"), **kwargs)
    if args.kv_block:
        lm.kv_block = args.kv_block
    old = load_baseline(args.baseline, lm, args.baseline_dtype) if args.baseline else None
    if args.compare_dtype:
        # no probe limit here: the point is to measure the drift, not to refuse it
        old = llm.load("smollm2", dtype=args.compare_dtype, probe_tolerance=float("inf"), **kwargs)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores; torch threads {args.threads or 'default'}; "
          f"{args.steps} steps per env; dtype {lm.dtype}; load average at start {os.getloadavg()[0]:.1f}; "
          f"{time.strftime('%Y-%m-%d %H:%M')}; python {sys.version.split()[0]}\n")
    if args.compare_dtype:
        print(f"{args.compare_dtype} runs in {old.dtype}; load-time probe drift {old.probe_drift:.3f} nats "
              f"(probe took {getattr(old, 'probe_seconds', 0.0):.2f} s)\n")
        print(f"| env | float32 median s/step | {old.dtype} median s/step | float32/{old.dtype} (median of "
              "per-step ratios) | max abs log-prob diff | p99 abs diff | same pick | candidates (median) |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|")
    elif old is None:
        print("| env | median s/step | p90 s/step | cold median | cold p90 | cold/warm (medians) | candidates (median) |")
        print("|---|---:|---:|---:|---:|---:|---:|")
    else:
        print(f"| env | old ({args.baseline}) median s/step | old p90 | new median s/step | new p90 | "
              "old/new (medians) | old/new (median of per-step ratios) | max abs score diff | p99 abs diff | "
              "same pick | candidates (median) |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name in args.env:
        r = measure(name, lm, args.steps, old)
        if args.compare_dtype:
            print(f"| {name} | {r['median']:.3f} | {r['second_median']:.3f} | {r['median_ratio']:.2f}x | "
                  f"{r['max_diff']:.3f} | {r['p99_diff']:.3f} | {r['same']}/{args.steps} | {r['candidates']:.0f} |",
                  flush=True)
        elif old is None:
            print(f"| {name} | {r['median']:.2f} | {r['p90']:.2f} | {r['second_median']:.2f} | "
                  f"{r['second_p90']:.2f} | {r['second_median'] / r['median']:.1f}x | {r['candidates']:.0f} |",
                  flush=True)
        else:
            print(f"| {name} | {r['second_median']:.2f} | {r['second_p90']:.2f} | {r['median']:.2f} | "
                  f"{r['p90']:.2f} | {r['second_median'] / r['median']:.1f}x | {r['median_inverse_ratio']:.2f}x | "
                  f"{r['max_diff']:.1e} | {r['p99_diff']:.1e} | "
                  f"{r['same']}/{args.steps} | {r['candidates']:.0f} |", flush=True)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\npeak RSS {rss:.0f} MB; load average at end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
