"""Constrained decoding on game24 in generate mode: well-formed replies and success, on or off.

    .venv/bin/python benchmarks/bench_constrained.py --backend smollm2 llamacpp --limit 20

For each backend and variant (``off``: free generation; ``thought``: ``Thought: …\\nAction: <the env's
grammar>``, what ``constrain=True`` does; ``action``: ``Action: <grammar>`` alone), SmolLM2 plays the
first ``--limit`` game24 test puzzles greedily with the env's expert example in the prompt, and the
script prints: replies, the share the env could read (a step or an answer line), the share it
accepted (the arithmetic right, the numbers on the table), and the puzzles solved.
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import sys
import time

from agentcritic import envs, llm
from agentcritic.agents import ReActAgent, rollout

VARIANTS = ("off", "thought", "action")


class _ActionOnlyAgent(ReActAgent):
    """Constrained to ``Action: <grammar>`` with no thought (the other variant measured)."""

    def reply_pattern(self, action_pattern: str) -> str:
        return f"Action: (?:{action_pattern})"


def measure(lm: llm.LM, variant: str, limit: int) -> dict[str, float]:
    env = envs.make("game24")
    cls = _ActionOnlyAgent if variant == "action" else ReActAgent
    agent = cls(lm, mode="generate", temperature=0.0, constrain=variant != "off")
    replies = readable = accepted = solved = 0
    t0 = time.perf_counter()
    for task in env.task_ids("test", limit=limit):
        traj = rollout(env, agent, task)
        for step in traj.steps:
            replies += 1
            readable += "could not read" not in step.observation
            accepted += not step.observation.startswith(("Invalid action", "Wrong answer"))
        solved += bool(env.success)
    return {"replies": replies, "readable": readable / max(replies, 1), "accepted": accepted / max(replies, 1),
            "solved": solved, "puzzles": limit, "seconds": time.perf_counter() - t0}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backend", nargs="+", default=["smollm2", "llamacpp"])
    ap.add_argument("--variant", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    ap.add_argument("--limit", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    print("command:", shlex.join([os.path.relpath(sys.executable), *sys.argv]))
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, {args.threads} threads; game24 test, "
          f"first {args.limit} puzzles, greedy, generate mode\n")
    print(f"{'backend':10} {'variant':8} {'replies':>7} {'readable':>8} {'accepted':>8} {'solved':>7} {'s':>6}")
    for backend in args.backend:
        kw = {"score_with": None} if backend == "llamacpp" else {}
        with llm.load(backend, threads=args.threads, **kw) as lm:
            for variant in args.variant:
                r = measure(lm, variant, args.limit)
                print(f"{backend:10} {variant:8} {r['replies']:7d} {r['readable']:8.0%} {r['accepted']:8.0%} "
                      f"{r['solved']:3d}/{r['puzzles']:<3d} {r['seconds']:6.0f}", flush=True)


if __name__ == "__main__":
    main()
