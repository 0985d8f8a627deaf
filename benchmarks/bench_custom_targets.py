"""Custom targets without retraining: re-rank stored Best-of-N samples under ``RM - w * term``.

    .venv/bin/python benchmarks/bench_custom_targets.py runs/X/eval-shop/results.jsonl \
        runs/Y/eval-shop-targets/results.jsonl --method ARMAP-B \
        --live 'ARMAP-B length=length:0.05' 'ARMAP-B price=price:0.01'

Best-of-N's samples do not depend on its target: a job's seed derives from the task and the sample,
never from the method, so ``ARMAP-B``, ``ARMAP-B length`` and ``ARMAP-B price`` draw the same N
trajectories and differ only in which one they return. Every ``results.jsonl`` record keeps each
candidate's RM score, steps, env reward, success and (shop) price paid, so the pick under any
weight is ``argmax(rm_score - w * term)`` over the stored candidates, with no model run again.

It prints, per term and weight, the mean reward, success, steps and price paid of the picks, and
the change against weight 0 (the plain reward model). Where ``--live`` names records of the same
tasks run with a term through ``evaluate`` (e.g. ``ARMAP-B length`` at w = 0.05), it checks that the
offline pick equals the live one, task by task.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from agentcritic.evaluate import load_records

TERMS = ("length", "price")


def load_all(paths: Sequence[Path]) -> list[dict[str, Any]]:
    records = []
    for path in paths:
        if not path.is_file():
            raise SystemExit(f"{path}: no such results file")
        records.extend(load_records(path))
    return records


def term_value(candidate: dict[str, Any], term: str) -> float:
    if term == "length":
        return float(candidate["steps"])
    price = candidate.get("price")
    return 0.0 if price is None else float(price)


def pick(candidates: Sequence[dict[str, Any]], term: str, weight: float) -> int:
    """The index Best-of-N returns under ``rm_score - weight * term`` (first on ties, as the planner)."""
    scores = [float(c["rm_score"]) - weight * term_value(c, term) for c in candidates]
    return max(range(len(scores)), key=lambda i: (scores[i], -i))


def summarise(picks: Sequence[dict[str, Any]]) -> dict[str, float]:
    prices = [float(c["price"]) for c in picks if c.get("price") is not None]
    return {
        "reward": 100 * statistics.fmean(float(c["score"]) for c in picks),
        "success": 100 * statistics.fmean(float(c["success"]) for c in picks),
        "steps": statistics.fmean(float(c["steps"]) for c in picks),
        "price": statistics.fmean(prices) if prices else float("nan"),
        "bought": 100 * sum(p > 0 for p in prices) / len(picks),
    }


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("results", nargs="+", type=Path, help="evaluate results.jsonl file(s)")
    ap.add_argument("--method", default="ARMAP-B", help="the table label of the plain Best-of-N records")
    ap.add_argument("--length-weights", nargs="+", type=float, default=[0, 0.02, 0.05, 0.1, 0.2, 0.5])
    ap.add_argument("--price-weights", nargs="+", type=float, default=[0, 0.002, 0.005, 0.01, 0.02, 0.05])
    ap.add_argument("--live", nargs="*", default=[], metavar="LABEL=TERM:WEIGHT",
                    help="records run live with a term, to check the offline pick against, e.g. "
                         "'ARMAP-B length=length:0.05'")
    args = ap.parse_args(argv)

    records = load_all(args.results)
    base = {r["task_id"]: r for r in records if r.get("method") == args.method}
    if not base:
        labels = sorted({r.get("method") for r in records})
        raise SystemExit(f"no records labelled {args.method!r}; the labels are {labels}")
    missing = [t for t, r in base.items() if not r.get("candidates") or r["candidates"][0].get("rm_score") is None]
    if missing:
        raise SystemExit(f"tasks {missing[:5]}: their {args.method} records keep no candidate RM scores")
    if any(r.get("env") == "shop" and "price" not in c for r in base.values() for c in r["candidates"]):
        print("note: these records predate the per-candidate price; the price rows count every pick as 0",
              file=sys.stderr)
    n = len(base)
    samples = statistics.fmean(len(r["candidates"]) for r in base.values())
    print(f"{args.method}: {n} tasks, {samples:.1f} candidates each ({', '.join(str(p) for p in args.results)})\n")
    print("| term | weight | reward ×100 | success % | steps | price paid | bought % | Δ steps | Δ reward | Δ price |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for term, weights in (("length", args.length_weights), ("price", args.price_weights)):
        plain = summarise([r["candidates"][pick(r["candidates"], term, 0.0)] for r in base.values()])
        for w in weights:
            s = summarise([r["candidates"][pick(r["candidates"], term, w)] for r in base.values()])
            d_steps = 100 * (s["steps"] - plain["steps"]) / plain["steps"] if plain["steps"] else float("nan")
            d_price = (100 * (s["price"] - plain["price"]) / plain["price"]
                       if plain["price"] and plain["price"] == plain["price"] else float("nan"))
            print(f"| {term} | {w:g} | {s['reward']:.1f} | {s['success']:.1f} | {s['steps']:.2f} | {s['price']:.2f} | "
                  f"{s['bought']:.0f} | {d_steps:+.1f} % | {s['reward'] - plain['reward']:+.1f} | {d_price:+.1f} % |")

    for spec in args.live:
        label, _, rest = spec.partition("=")
        term, _, weight = rest.partition(":")
        if term not in TERMS or not weight:
            raise SystemExit(f"--live {spec!r}: write LABEL=TERM:WEIGHT with TERM one of {TERMS}")
        live = {r["task_id"]: r for r in records if r.get("method") == label}
        same = [t for t in live if t in base
                and base[t]["candidates"][pick(base[t]["candidates"], term, float(weight))]["steps"] == live[t]["steps"]
                and base[t]["candidates"][pick(base[t]["candidates"], term, float(weight))]["score"] == live[t]["score"]]
        print(f"\nlive {label!r} ({term} × {weight}): the offline pick has the live pick's steps and reward on "
              f"{len(same)} of {len(live)} tasks")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
