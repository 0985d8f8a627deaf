"""KV-reuse ``score`` vs naive per-candidate forward passes, for the embedded SmolLM2-135M.

    .venv/bin/python benchmarks/bench_llm_score.py [--repeats 7] [--threads N]

One ~150-token prompt (a ReAct-style system + user message) and 25 short action candidates
(3–10 tokens each). Each repeat scores all 25 candidates both ways from cold (the score cache and
the prompt's KV cache are cleared first, so the prompt's forward pass is counted every time); the
two methods alternate within a repeat. Prints medians, the speed-up and the largest |difference|.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

from agentcritic import llm

SYSTEM = (
    "You are an agent in a text household. Each turn you read the observation and answer with one "
    "admissible action, written as 'Action: <action>'. Prefer actions that make progress on the task; "
    "do not repeat actions that failed; examine objects before using them."
)
USER = (
    "Instruction: put a clean mug in the coffee machine.\n"
    "Observation: You are in the kitchen. You see a countertop 1, a sinkbasin 1, a fridge 1, a cabinet 1, "
    "a cabinet 2 and a coffeemachine 1. On the countertop 1 you see a mug 1 and an apple 2.\n"
    "What is the next action?"
)
CANDIDATES = [
    "Action: take mug 1", "Action: take apple 2 from table", "Action: look",
    "Action: inventory", "Action: go to sinkbasin 1", "Action: go to fridge 1", "Action: open fridge 1",
    "Action: go to cabinet 1", "Action: open cabinet 2", "Action: go to coffeemachine 1",
    "Action: examine mug 1", "Action: clean mug 1", "Action: wait",
    "Action: go to countertop 1", "Action: examine countertop 1", "Action: take apple 2",
    "Action: put mug 1 in machine", "Action: heat mug 1", "Action: use sinkbasin 1",
    "Action: close fridge 1", "Action: go to cabinet 2", "Action: examine apple 2", "Action: help",
    "Action: slice apple 2", "Action: cool mug 1 with fridge",
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = ap.parse_args()

    lm = llm.load("smollm2", threads=args.threads)
    import torch

    msgs = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": USER}]
    prompt = lm.render(msgs)
    n_prompt = len(lm.encode(prompt))
    lengths = [len(lm.encode(prompt + c)) - n_prompt for c in CANDIDATES]
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"{torch.get_num_threads()} torch threads, load avg {os.getloadavg()[0]:.1f}")
    print(f"smollm2 (SmolLM2-135M-Instruct, float32): prompt {n_prompt} tokens, {len(CANDIDATES)} candidates "
          f"of {min(lengths)}–{max(lengths)} tokens, {args.repeats} repeats each\n")

    lm.score(msgs, CANDIDATES[:2])  # warm-up: first-call allocations
    kv_times, naive_times = [], []
    kv = naive = []
    for _ in range(args.repeats):
        lm.clear_cache()
        t0 = time.perf_counter()
        kv = lm.score(msgs, CANDIDATES)
        kv_times.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        naive = lm.score_naive(msgs, CANDIDATES)
        naive_times.append(time.perf_counter() - t0)
    lm.clear_cache()
    lm.score(msgs, CANDIDATES)
    t0 = time.perf_counter()
    lm.score(msgs, CANDIDATES)
    cached = time.perf_counter() - t0

    diff = max(abs(a - b) for a, b in zip(kv, naive))
    med_kv, med_naive = statistics.median(kv_times), statistics.median(naive_times)
    print("| method | median s | min–max s | ms / candidate |")
    print("|---|---:|---:|---:|")
    for name, times in (("KV reuse, batched", kv_times), ("naive, one pass per candidate", naive_times)):
        med = statistics.median(times)
        per = 1000 * med / len(CANDIDATES)
        print(f"| {name} | {med:.3f} | {min(times):.3f}–{max(times):.3f} | {per:.1f} |")
    print(f"| score cache hit (same call again) | {cached:.5f} | | |")
    print(f"\nspeed-up: {med_naive / med_kv:.1f}x (target >= 5x)")
    print(f"max |KV - naive| log-prob: {diff:.2e} (tolerance 1e-4)")


if __name__ == "__main__":
    main()
