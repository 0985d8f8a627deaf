"""Scoring throughput: RewardModel.score vs the bare backbone forward on the same batches.

    .venv/bin/python benchmarks/bench_rm_score.py [--pairs 256] [--batch-size 32] [--max-length 256]
        [--repeats 3] [--pooling auto] [--threads N]

``RewardModel.score`` does everything a caller needs: render each trajectory, tokenise, cut long
inputs to ``max_length`` tokens, sort by length, pad each batch to its longest input, run the model
without gradients and restore the input order. The baseline is only the last part: the plain
``AutoModelForSequenceClassification`` forward (``model(**batch)`` under ``torch.inference_mode``)
over the very same, already tokenised, already padded batches. Overhead = score time / forward
time − 1 (target ≤ 15 %). A third row shows what the length sorting buys: the bare forward over
batches in input order (what a naive loop pays in padding).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_rm_train import make_preferences  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=256)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--max-length", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--pooling", default="auto")
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()

    import torch
    from transformers.utils import logging as hf_logging

    from agentcritic.rm import RewardModel

    hf_logging.set_verbosity_error()
    if args.threads:
        torch.set_num_threads(args.threads)
    prefs = make_preferences(args.pairs, seed=3)
    pairs = [(p.intent, p.chosen if k % 2 else p.rejected) for k, p in enumerate(prefs)]
    rm = RewardModel("minilm", max_length=args.max_length, pooling=args.pooling)
    model = rm.model.eval()

    feats = rm.encode(pairs)
    order = sorted(range(len(feats)), key=lambda i: len(feats[i]["input_ids"]), reverse=True)
    sorted_batches = [
        rm.collate([feats[i] for i in order[s : s + args.batch_size]]) for s in range(0, len(order), args.batch_size)
    ]
    input_batches = [rm.collate(feats[s : s + args.batch_size]) for s in range(0, len(feats), args.batch_size)]

    def bare(batches):
        with torch.inference_mode():
            for b in batches:
                model(**b)

    def bare_fast(batches):
        with torch.inference_mode():
            for b in batches:
                rm.scorer(**b)

    def ours():
        rm.score(pairs, batch_size=args.batch_size)

    def tokenise_only():
        rm.encode(pairs)

    rm.score(pairs[:8])  # warm-up
    times: dict[str, list[float]] = {
        "score": [],
        "bare_sorted": [],
        "bare_fast": [],
        "bare_input_order": [],
        "tokenise": [],
    }
    for _ in range(args.repeats):  # interleaved, so load changes hit every row alike
        for name, fn in (
            ("score", ours),
            ("bare_sorted", lambda: bare(sorted_batches)),
            ("bare_fast", lambda: bare_fast(sorted_batches)),
            ("bare_input_order", lambda: bare(input_batches)),
            ("tokenise", tokenise_only),
        ):
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)

    n = len(pairs)
    best = {k: min(v) for k, v in times.items()}
    med = {k: statistics.median(v) for k, v in times.items()}
    tokens = sum(len(f["input_ids"]) for f in feats)
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    print(
        f"{n} (intent, trajectory) pairs, {tokens / n:.0f} tokens each on average (max {args.max_length}), "
        f"batch {args.batch_size}, {rm!r}, best of {args.repeats}\n"
    )
    print("| what | seconds (best) | seconds (median) | pairs/s (best) | vs bare forward |")
    print("|---|---:|---:|---:|---:|")
    rows = [
        ("RewardModel.score (render + tokenise + sort + pad + forward)", "score"),
        ("bare HF forward, same length-sorted batches", "bare_sorted"),
        ("bare forward through our [CLS]-only last layer, same batches", "bare_fast"),
        ("bare HF forward, batches in input order", "bare_input_order"),
        ("tokenise + fit only (part of score)", "tokenise"),
    ]
    for label, key in rows:
        rel = best[key] / best["bare_sorted"] - 1
        print(f"| {label} | {best[key]:.2f} | {med[key]:.2f} | {n / best[key]:.1f} | {rel:+.1%} |")
    print(
        f"\noverhead of score over the bare HF forward: {best['score'] / best['bare_sorted'] - 1:+.1%} "
        f"(median {med['score'] / med['bare_sorted'] - 1:+.1%}); target <= +15%"
    )
    print(f"pipeline overhead alone (score vs the same forward it runs): {best['score'] / best['bare_fast'] - 1:+.1%}")


if __name__ == "__main__":
    main()
