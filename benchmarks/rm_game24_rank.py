"""Does a reward model rank a solved game24 trajectory first? A quick check of a model before MCTS.

    .venv/bin/python benchmarks/rm_game24_rank.py runs/demo/rm/model [OTHER_MODEL ...] --puzzles 20

For each of the first ``--puzzles`` test puzzles it builds one solved trajectory (the env's solver:
an oracle, used here only to have a known-good candidate) and ``--random`` finished trajectories of
random admissible steps with the env's answer line, then prints per model: on how many puzzles the
solved one scores highest, and P(a solved trajectory scores above an unsolved one). MCTS returns its
highest-scored rollout, so the first number bounds what ARMAP-M can pick when a rollout solves.
"""

from __future__ import annotations

import argparse
import random

import numpy as np

from agentcritic.envs import make
from agentcritic.rm.loading import load_model
from agentcritic.synth.replay import execute


def candidate_sets(puzzles: int, n_random: int, seed: int) -> list[tuple[str, list]]:
    env, rng = make("game24"), random.Random(seed)
    sets = []
    for task in env.task_ids("test")[:puzzles]:
        env.reset(task_id=task)
        solution = []
        while not env.terminated:
            solution.append(env.expert_action())
            env.step(solution[-1])
        trajs = [execute(env, task, 0, solution, instruction=env.instruction)[0]]
        for _ in range(n_random):
            _, info = env.reset(task_id=task)
            actions: list[str] = []
            while not env.terminated and len(actions) < 6:
                actions.append(rng.choice(info["admissible_actions"]))
                _, _, _, _, info = env.step(actions[-1])
            trajs.append(execute(env, task, 0, actions, instruction=env.instruction)[0])
        sets.append((env.instruction, trajs))
    return sets


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="+", help="saved reward-model folders (RUN/rm/model)")
    ap.add_argument("--puzzles", type=int, default=20)
    ap.add_argument("--random", type=int, default=30, help="random finished trajectories per puzzle")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    sets = candidate_sets(args.puzzles, args.random, args.seed)
    print(f"game24 test, first {len(sets)} puzzles; 1 solved + {args.random} random finished trajectories each")
    print("| model | solved ranked first | P(solved > unsolved) |\n|---|---:|---:|")
    for path in args.models:
        rm = load_model(path)
        first, above = 0, []
        for intent, trajs in sets:
            scores = rm.score([(intent, t) for t in trajs])
            first += bool(trajs[int(np.argmax(scores))].success)
            good = [i for i, t in enumerate(trajs) if t.success]
            bad = [i for i, t in enumerate(trajs) if not t.success]
            above.append(float(np.mean([scores[i] > scores[j] for i in good for j in bad])))
        print(f"| {path} | {first}/{len(sets)} | {np.mean(above):.3f} |")


if __name__ == "__main__":
    main()
