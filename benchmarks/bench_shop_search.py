"""Build time of the shop's catalogue and BM25 index, and search latency, at 5k and 50k products.

    .venv/bin/python benchmarks/bench_shop_search.py [--sizes 5000 50000] [--queries 500] [--seed 0]

Every build is fresh (the module caches are bypassed). The queries are the search queries of the
env's goals (test, then dev, then train), as an agent or the expert would type them; each is timed
uncached (tokenising, BM25 scoring with ``bm25s``, top-50 selection), after a short warm-up.
Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np

from agentcritic.envs.shop import catalogue as catalogue_mod
from agentcritic.envs.shop import goals as goals_mod
from agentcritic.envs.shop import search as search_mod


def measure(size: int, seed: int, num_queries: int) -> dict[str, float]:
    t0 = time.perf_counter()
    catalogue = catalogue_mod.build_catalogue.__wrapped__(seed, size)
    t1 = time.perf_counter()
    index = search_mod.SearchIndex(catalogue)
    t2 = time.perf_counter()
    pools = goals_mod.split_pools(seed, size)
    goals: list = []
    for split in ("test", "dev", "train"):
        count = goals_mod.DEFAULT_TRAIN if split == "train" else goals_mod.SPLIT_COUNTS[split]
        exclude = frozenset(g.instruction for g in goals)
        goals.extend(goals_mod.generate_goals(catalogue, index, split, count, pools[split], exclude))
    t3 = time.perf_counter()
    queries = [g.query for g in goals][:num_queries]
    for q in queries[:20]:
        index.search(q, use_cache=False)
    latencies = []
    for q in queries:
        s = time.perf_counter()
        index.search(q, use_cache=False)
        latencies.append(time.perf_counter() - s)
    ms = np.array(latencies) * 1000
    return {
        "catalogue_s": t1 - t0,
        "index_s": t2 - t1,
        "goals_s": t3 - t2,
        "num_goals": len(goals),
        "queries": len(queries),
        "p50_ms": float(np.percentile(ms, 50)),
        "p99_ms": float(np.percentile(ms, 99)),
        "mean_ms": float(ms.mean()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[5000, 50000])
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"bm25s {search_mod.bm25s.__version__}, numpy {np.__version__}\n")
    print("| products | catalogue build (s) | index build (s) | goals (s) | queries | search p50 (ms) "
          "| search p99 (ms) | mean (ms) |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for size in args.sizes:
        r = measure(size, args.seed, args.queries)
        print(f"| {size:,} | {r['catalogue_s']:.2f} | {r['index_s']:.2f} | {r['goals_s']:.2f} "
              f"({r['num_goals']}) | {r['queries']} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} "
              f"| {r['mean_ms']:.2f} |")


if __name__ == "__main__":
    main()
