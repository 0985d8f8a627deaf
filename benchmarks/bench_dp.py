"""DP speed: the vectorised solvers vs the plain-Python reference on ~10^5 tabular states.

    .venv/bin/python benchmarks/bench_dp.py [--states 100000] [--budget 10] [--repeats 5] [--seed 0]

Random per-task trees (prefix keys) are generated as logged episodes until the table has at least
``--states`` states; the PRM is a deterministic hash. Timed: ``solve_budget(model, C)`` (V(s, b) for
b = 0 … C, i.e. all budgets up to C in one sweep), ``solve_lagrangian`` (one λ), ``search_lambda``
(the full bisection) and the reference solver from ``tests/test_helper_dp.py`` on the same episodes
(once: it is slow). Results are checked to be equal before any number is printed. Target: the
budgeted solve under 1 s on one core and ≥ 20× the reference.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import numpy as np  # noqa: E402

from test_helper_dp import ReferenceMDP, hash_prm, random_episodes  # noqa: E402


def episodes_for(states: int, seed: int):
    """Enough random episodes for about ``states`` distinct states (depth up to 12, 4 actions)."""
    n = max(10, states // 4)
    while True:
        eps = random_episodes(seed, n_tasks=max(1, states // 500), n_episodes=n, max_depth=12, branching=4)
        distinct = {(j, t.task_id, t.state_key) for e in eps for j, t in enumerate(e.transitions)}
        if len(distinct) >= states:
            return eps, len(distinct)
        n = int(n * 1.3 * states / max(1, len(distinct))) + 1


def timed(fn, repeats: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--states", type=int, default=100_000)
    ap.add_argument("--budget", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    from agentcritic.helper.dp import search_lambda, solve_budget, solve_lagrangian
    from agentcritic.helper.tabular import TabularModel

    t0 = time.perf_counter()
    eps, n_states = episodes_for(args.states, args.seed)
    gen_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    model = TabularModel.from_episodes(eps, prm=hash_prm)
    build_s = time.perf_counter() - t0
    n_trans = model.n_transitions
    print(f"{len(eps)} episodes, {n_trans} transitions, {model.n_states} states, {model.n_levels} levels, "
          f"{len(model.roots)} tasks (generate {gen_s:.1f} s, build table {build_s:.2f} s)")

    fast_budget_s, sol = timed(lambda: solve_budget(model, args.budget), args.repeats)
    fast_lag_s, lag = timed(lambda: solve_lagrangian(model, 0.05), args.repeats)
    u0 = solve_lagrangian(model, 0.0).mean_usage
    search_s, res = timed(lambda: search_lambda(model, 0.5 * u0), max(1, args.repeats // 2))

    ref = ReferenceMDP(eps, hash_prm)
    t0 = time.perf_counter()
    slow = ref.budget(args.budget)
    ref_budget_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    value, asks, _ = ref.lagrangian(0.05)
    ref_lag_s = time.perf_counter() - t0

    worst = 0.0
    for (s, b), (v, ask) in slow.items():
        i = model.lookup(s)
        worst = max(worst, abs(sol.values[i, b] - v))
        assert bool(sol.asks[i, b]) == ask, f"budgeted decision differs at {s}, b={b}"
    for s in ref.states:
        i = model.lookup(s)
        worst = max(worst, abs(lag.value[i] - value[s]))
        assert bool(lag.asks[i]) == asks[s], f"Lagrangian decision differs at {s}"
    assert worst < 1e-9, worst

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"numpy {np.__version__}, load {os.getloadavg()[0]:.1f}; results equal (max |dV| {worst:.1e})")
    print()
    print(f"| solve | states x budgets | fast (s, median of {args.repeats}) | reference (s) | speed-up |")
    print("|---|---:|---:|---:|---:|")
    cols = args.budget + 1
    print(f"| exact budgeted V(s,b), b=0..{args.budget} | {model.n_states} x {cols} | {fast_budget_s:.3f} "
          f"| {ref_budget_s:.2f} | {ref_budget_s / fast_budget_s:.0f}x |")
    print(f"| Lagrangian, one λ | {model.n_states} x 1 | {fast_lag_s:.4f} | {ref_lag_s:.2f} "
          f"| {ref_lag_s / fast_lag_s:.0f}x |")
    print(f"| λ bisection for C = {0.5 * u0:.2f} ({res.iterations} solves) | {model.n_states} | {search_s:.3f} "
          f"| — | — |")


if __name__ == "__main__":
    main()
