"""Does ``lm.score`` depend on what the model scored before? Replays an agent's own calls in other orders.

    .venv/bin/python benchmarks/score_history.py [--env household] [--tasks 4] [--kv-block N]

Plays greedy ``choose``-mode episodes on the first test tasks with the default ``smollm2`` (bfloat16
where the CPU has it), recording every ``score`` call and its result in the natural order (each prompt
continuing the last one's KV). Then it scores every call again, once from an empty KV cache ("fresh")
and once in a shuffled order (each continuing whatever came before), and counts the calls whose
log-probs are not bit-identical to the natural order's, the largest difference, and the calls whose
best candidate changed. A score that is a function of its prompt and candidates gives 0 everywhere.
"""

from __future__ import annotations

import argparse
import random
import time

from agentcritic import envs, llm
from agentcritic.agents import ReActAgent
from agentcritic.types import Step, Trajectory


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--env", default="household")
    ap.add_argument("--tasks", type=int, default=4)
    ap.add_argument("--kv-block", type=int, default=None, help="HFLM.kv_block (default: the model's own)")
    args = ap.parse_args()
    lm = llm.load("smollm2", **({} if args.kv_block is None else {"kv_block": args.kv_block}))
    print(f"{time.strftime('%Y-%m-%d %H:%M')}; {args.env}, {args.tasks} tasks; dtype {lm.dtype}; "
          f"kv_block {lm.kv_block}")
    calls = []
    score = lm.score

    def record(messages, cands):
        out = score(messages, cands)
        calls.append((messages, list(cands), out))
        return out

    lm.score = record
    env = envs.make(args.env)
    agent = ReActAgent(lm, mode="choose", temperature=0.0)
    for task in env.task_ids("test")[: args.tasks]:
        obs, info = env.reset(task_id=task, seed=0)
        agent.reset(env, task, 0)
        hist = Trajectory(args.env, task, info["instruction"], meta={"first_observation": obs})
        done = False
        while not done:
            lm.clear_cache(kv=False)
            action = agent.act(hist, info)
            obs, _, term, trunc, info = env.step(action)
            hist.steps.append(Step(action, obs))
            done = term or trunc
    env.close()
    del lm.score
    print(f"{len(calls)} score calls recorded in the natural order")
    order = list(range(len(calls)))
    for label in ("fresh", "shuffled"):
        if label == "shuffled":
            random.Random(0).shuffle(order)
        differ, worst, flips = 0, 0.0, 0
        for i in order:
            messages, cands, want = calls[i]
            lm.clear_cache(kv=label == "fresh")
            got = lm.score(messages, cands)
            gap = max(abs(x - y) for x, y in zip(got, want))
            differ += gap > 0
            worst = max(worst, gap)
            flips += max(range(len(got)), key=got.__getitem__) != max(range(len(want)), key=want.__getitem__)
        print(f"| {label} | {differ}/{len(calls)} | {worst:.2e} | {flips} |")


if __name__ == "__main__":
    main()
