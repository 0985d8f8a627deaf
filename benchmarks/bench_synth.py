"""Reward-data synthesis at a measurable size: counts per source, verification rate, time, and
(optionally) a quick held-out pairwise accuracy of the default reward model on the pairs.

    .venv/bin/python benchmarks/bench_synth.py --env game24 --tasks 8 --out runs/bench-synth-g24 \
        [--explorer smollm2] [--refiner smollm2] [--set KEY=VALUE ...] [--train-rm]

Re-running the same command resumes the run folder (and only re-trains the RM).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--env", required=True)
    ap.add_argument("--tasks", type=int, default=8)
    ap.add_argument("--explorer", default="smollm2")
    ap.add_argument("--refiner", default="smollm2")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--set", dest="overrides", action="append", default=[], help="SynthConfig KEY=VALUE")
    ap.add_argument("--train-rm", action="store_true", help="train the default RM on the pairs, report held-out accuracy")
    ap.add_argument("--rm-epochs", type=int, default=2)
    ap.add_argument("--rm-max-pairs", type=int, default=None, help="train/evaluate on a seeded sample of the pairs")
    ap.add_argument("--rm-max-length", type=int, default=None, help="tokens per input (default: the model's)")
    args = ap.parse_args()

    from agentcritic.config import load_config
    from agentcritic.synth import SynthConfig, read_preferences, synthesize

    base = {"env": args.env, "tasks": args.tasks, "explorer": args.explorer, "refiner": args.refiner}
    cfg = load_config(SynthConfig, None, args.overrides, base=base)
    t0 = time.perf_counter()
    stats = synthesize(cfg, args.out)
    print(json.dumps({k: stats[k] for k in ("pairs", "per_source", "made_by", "verification", "dropped",
                                             "intent_source", "refiner_failures", "trajectories")}, indent=1))
    print(f"synthesis: {time.perf_counter() - t0:.1f} s (this invocation)")
    if args.train_rm:
        from agentcritic.rm import RewardConfig, RewardModel, train_reward_model

        import random

        prefs = read_preferences(args.out / "preferences.jsonl")
        if args.rm_max_pairs and len(prefs) > args.rm_max_pairs:
            prefs = random.Random(0).sample(prefs, args.rm_max_pairs)
        t1 = time.perf_counter()
        rm_config = RewardConfig(num_epochs=args.rm_epochs, progress=True, eval_fraction=0.2, seed=0,
                                 max_length=args.rm_max_length)
        metrics = train_reward_model(RewardModel(), prefs, rm_config)
        train = {k: v for k, v in metrics["train"].items() if k != "log_history"}
        print(json.dumps({"train": train, "eval": metrics.get("eval")}, indent=1, default=str))
        print(f"rm training: {time.perf_counter() - t1:.1f} s on {len(prefs)} pairs")


if __name__ == "__main__":
    main()
