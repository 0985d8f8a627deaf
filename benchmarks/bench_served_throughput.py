"""Throughput against a served model at 1, 4 and 16 requests in flight (``--concurrency``).

    .venv/bin/python benchmarks/bench_served_throughput.py --tasks 32 --rounds 2

Starts llama.cpp's OpenAI-compatible server (``agentcritic.llm.llamacpp.LlamaCppServer``, the
``xllamacpp`` wheel) on loopback with the embedded SmolLM2-135M GGUF and 16 slots, then runs the same
rollout stage through the real CLI (``agentcritic rollout --policy openai --mode generate``, one
worker process) at each concurrency, in alternating order over the rounds. Each run is a fresh run
folder; its time is the stage's own (``rollouts_summary.json``: no interpreter start). The table
gives the median episodes/s and LLM requests/s per level and the ratio to one in flight.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

CLI = [sys.executable, "-m", "agentcritic.cli"]


def rollout(url: str, out: Path, env: str, tasks: int, concurrency: int) -> dict:
    args = ["rollout", "--env", env, "--split", "test", "--limit", str(tasks), "--policy", "openai",
            "--mode", "generate", "--base-url", url, "--concurrency", str(concurrency), "--out", str(out)]
    res = subprocess.run([*CLI, *args], capture_output=True, text=True)
    if res.returncode != 0:
        raise SystemExit(f"failed: agentcritic {' '.join(args)}\n{res.stdout[-1500:]}\n{res.stderr[-1500:]}")
    return json.loads((out / "rollouts_summary.json").read_text())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--env", default="game24", help="env name or module:Class")
    ap.add_argument("--tasks", type=int, default=32, help="test tasks per run (one episode each)")
    ap.add_argument("--rounds", type=int, default=2, help="runs per level (alternating order)")
    ap.add_argument("--levels", default="1,4,16", help="requests in flight to compare")
    ap.add_argument("--parallel", type=int, default=16, help="the server's slots")
    ap.add_argument("--threads", type=int, default=None, help="the server's CPU threads (default: all cores)")
    args = ap.parse_args()
    levels = [int(x) for x in args.levels.split(",")]

    from agentcritic.llm.llamacpp import LlamaCppServer

    print(f"load average {os.getloadavg()[0]:.2f} at the start; {os.cpu_count()} CPUs")
    seconds: dict[int, list[float]] = {c: [] for c in levels}
    calls: dict[int, list[int]] = {c: [] for c in levels}
    success: dict[int, list[float]] = {c: [] for c in levels}
    with LlamaCppServer(parallel=args.parallel, n_ctx=2048 * args.parallel, threads=args.threads) as server, \
            tempfile.TemporaryDirectory() as tmp:
        print(f"server: {server.model_path.name} at {server.url}, {args.parallel} slots")
        for r in range(args.rounds):
            for c in (levels if r % 2 == 0 else levels[::-1]):
                summary = rollout(server.url, Path(tmp) / f"r{r}-c{c}", args.env, args.tasks, c)
                seconds[c].append(summary["seconds"])
                calls[c].append(summary["llm_calls"])
                success[c].append(summary["success_rate"])
                print(f"round {r} concurrency {c:>2}: {summary['seconds']:.1f} s, {summary['llm_calls']} requests, "
                      f"{summary['llm_failures']} failed, success {summary['success_rate']:.1%}", flush=True)
    print(f"\nload average {os.getloadavg()[0]:.2f} at the end\n")
    base = statistics.median(seconds[levels[0]])
    print(f"| in flight | episodes | median s | episodes/s | requests/s | vs {levels[0]} in flight |")
    print("|---:|---:|---:|---:|---:|---:|")
    for c in levels:
        s = statistics.median(seconds[c])
        req = statistics.median(calls[c])
        print(f"| {c} | {args.tasks} | {s:.1f} | {args.tasks / s:.2f} | {req / s:.2f} | {base / s:.2f}x |")


if __name__ == "__main__":
    main()
