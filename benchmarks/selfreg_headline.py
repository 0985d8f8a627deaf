"""The self-regulation headline of an eval-helper run, as Markdown for BENCHMARKS.md.

    .venv/bin/python benchmarks/selfreg_headline.py runs/hh-sweep/eval48

Reads ``RUN/results.json`` and ``RUN/episodes.jsonl`` (what ``agentcritic eval-helper`` wrote) and
prints:

1. success (95 % Wilson interval over tasks) / mean interventions (95 % bootstrap interval) / max,
   per method and budget C, with n; oracle rows (``oracle:fewest-asks``) are marked as oracles;
2. the headline check (issue 17): the helper within 5 points of always-intervene's success at
   ≤ 1.5 interventions per episode, and above random and PRM-threshold at C ∈ {1, 2, 3};
3. the DP on its training tasks, predicted vs measured;
4. where the helper asks (requests begun per step) beside the fewest-asks oracle's steps.

Nothing is recomputed from models: it only reads what the run recorded.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from agentcritic.intervals import bootstrap_mean


def _episodes(run: Path) -> list[dict[str, Any]]:
    rows = []
    for line in (run / "episodes.jsonl").read_text("utf-8").splitlines():
        if line.strip():
            rec = json.loads(line)
            rows.append(rec.get("record", rec))
    return rows


def _interventions(episodes: list[dict[str, Any]], split: str) -> dict[tuple[str, str], list[float]]:
    """Mean interventions per task, per (method, budget); C = 0 rows repeat the never episode."""
    per: dict[tuple[str, str], dict[str, list[int]]] = {}
    for e in episodes:
        if e.get("split", split) != split:
            continue
        per.setdefault((e["method"], e["budget"]), {}).setdefault(e["task_id"], []).append(int(e["interventions"]))
    return {k: [sum(v) / len(v) for v in tasks.values()] for k, tasks in per.items()}


def cell(row: dict[str, Any], spent: list[float] | None, priced: bool = False) -> str:
    lo, hi = row.get("success_interval") or (None, None)
    s = f"{100 * row['success_rate']:.1f}" + (f" ({100 * lo:.0f}–{100 * hi:.0f})" if lo is not None else "")
    mean = f"{row['mean_interventions']:.2f}"
    ci = bootstrap_mean(spent) if spent else None
    if ci is not None and ci[0] != ci[1]:
        mean += f" ({ci[0]:.2f}–{ci[1]:.2f})"
    out = f"{s} / {mean} / {row['max_interventions']}"
    if priced and row.get("mean_cost") is not None:  # several kinds at different prices: the cost compares them
        out += f" / cost {row['mean_cost']:.2f}"
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path, help="an eval-helper run folder")
    ap.add_argument("--method", default="helper", help="the method whose headline is checked")
    args = ap.parse_args()
    res = json.loads((args.run / "results.json").read_text("utf-8"))
    rows, budgets = res["results"], res["budgets"]
    spent = _interventions(_episodes(args.run), res["split"])
    for row in rows:  # a C = 0 row repeats the never episode, and never ignores C
        if (row["method"], row["budget"]) not in spent and not row.get("oracle"):
            spent[(row["method"], row["budget"])] = spent.get(("never", budgets[0]), [])

    print(f"{res['env']}, {res['split']} split, n = {res['tasks']} tasks; base {res['policy']}, help "
          f"{res['intervention']}; costs {res.get('costs')}; {res.get('llm_calls', '?')} LLM calls, "
          f"{res.get('seconds', '?')} s\n")
    priced = len(res.get("costs") or {}) > 1
    print("Each cell: success % (95 % Wilson interval over tasks) / mean interventions per episode "
          "(95 % bootstrap interval) / max" + (" / mean cost per episode" if priced else "") + ".\n")
    print("| method | " + " | ".join(f"C = {b}" for b in budgets) + " |")
    print("|---|" + "---|" * len(budgets))
    by = {(r["method"], r["budget"]): r for r in rows}
    for method in dict.fromkeys(r["method"] for r in rows):
        name = f"{method} (oracle)" if any(r.get("oracle") for r in rows if r["method"] == method) else method
        cells = [cell(by[(method, b)], spent.get((method, b)), priced) if (method, b) in by else "–"
                 for b in budgets]
        print(f"| {name} | " + " | ".join(cells) + " |")

    always = by.get(("always", "inf"))
    print("\n**Headline check** (the helper within 5 points of always-intervene at ≤ 1.5 interventions):\n")
    if not always:
        print("- no `always` row at C = inf in this run (with several kinds: `always@KIND` rows), so no check.")
    else:
        for b in budgets:
            r = by.get((args.method, b))
            if r is None:
                continue
            gap = 100 * (always["success_rate"] - r["success_rate"])
            ok = gap <= 5 and r["mean_interventions"] <= 1.5
            print(f"- C = {b}: {args.method} {100 * r['success_rate']:.1f} % at {r['mean_interventions']:.2f}; "
                  f"always (C = inf) {100 * always['success_rate']:.1f} % at {always['mean_interventions']:.2f}: "
                  f"{gap:+.1f} points behind{' — **met**' if ok else ''}")
    print("\n**Above random and PRM threshold** at C ∈ {1, 2, 3} (point estimates; intervals in the table):\n")
    for b in ("1", "2", "3"):
        r = by.get((args.method, b))
        if r is None:
            continue
        others = {m: by[(m, b)]["success_rate"] for m in ("random", "prm_threshold") if (m, b) in by}
        if not others:
            print(f"- C = {b}: {args.method} {100 * r['success_rate']:.1f} %; no `random` or `prm_threshold` row "
                  "in this run, so no comparison.")
            continue
        verdict = all(r["success_rate"] > v for v in others.values())
        missing = [m for m in ("random", "prm_threshold") if m not in others]
        print(f"- C = {b}: {args.method} {100 * r['success_rate']:.1f} % vs " + ", ".join(
            f"{m} {100 * v:.1f} %" for m, v in others.items())
            + (" — above " + ("both" if len(others) == 2 else "it") if verdict else " — **not above**")
            + (f" (no {missing[0]} row in this run)" if missing else ""))

    if res.get("dp_train"):
        print("\n**The DP on its training tasks**, predicted by the table vs measured by playing it:\n")
        print("| C | predicted success | measured success (95 % interval) | tasks | predicted int. | measured int. |")
        print("|---|---:|---:|---:|---:|---:|")
        for r in res["dp_train"]:
            lo, hi = r.get("success_interval") or (0, 0)
            print(f"| {r['budget']} | {100 * r['predicted_success']:.1f} % | {100 * r['success_rate']:.1f} % "
                  f"({100 * lo:.0f}–{100 * hi:.0f}) | {r.get('tasks')} | {r['predicted_interventions']:.2f} | "
                  f"{r['mean_interventions']:.2f} |")

    steps = (res.get("ask_steps") or {}).get(args.method) or {}
    oracle = (res.get("oracle") or {}).get("ask_steps") or {}
    if steps or oracle:
        shown = [b for b in budgets if b != "0" and b in steps]
        cols = [f"{args.method} C = {b}" for b in shown] + [f"oracle {k}" for k in oracle]
        hists = [steps[b] for b in shown] + list(oracle.values())
        every = sorted({int(s) for h in hists for s in h})
        print(f"\n**Where {args.method} asks** (requests begun at each step, over {res['tasks']} tasks) beside the "
              "fewest-asks oracle (first: the steps of each task's first fewest set; any single: every step whose "
              "one ask rescues its task):\n")
        print("| step | " + " | ".join(cols) + " |")
        print("|---:|" + "---:|" * len(cols))
        for s in every:
            print(f"| {s} | " + " | ".join(str(h.get(str(s), h.get(s, 0))) for h in hists) + " |")
    if res.get("oracle"):
        found = res["oracle"]["tasks"]
        counts: dict[str, int] = {}
        for f in found.values():
            key = "none within the sweep" if f is None else str(f["asks"])
            counts[key] = counts.get(key, 0) + 1
        print(f"\nFewest asks per task (oracle, sweep of up to {res['oracle'].get('most_asks')} asks): "
              + ", ".join(f"{k}: {v}" for k, v in sorted(counts.items())))

    departed, played, tasks = base_departures(_episodes(args.run), res["split"])
    print(f"\n**The base's own path:** {departed} of {played} episodes take other actions before their first "
          "ask than the same task's no-help (C = 0) episode" + (f", on {', '.join(tasks)}" if tasks else "")
          + ". The prompts are the same there, so a difference is numerical (a near-tie in the base's scores).")


def base_departures(episodes: list[dict[str, Any]], split: str) -> tuple[int, int, list[str]]:
    """How many episodes leave their task's no-help path before their first ask, of how many, on which tasks."""
    alone = {e["task_id"]: e["actions"] for e in episodes
             if e.get("split", split) == split and str(e.get("budget")) == "0" and "actions" in e}
    departed, played, tasks = 0, 0, set()
    for e in episodes:
        base = alone.get(e["task_id"])
        if base is None or str(e.get("budget")) == "0" or e.get("split", split) != split:
            continue
        asks = e.get("ask_steps") or []
        k = min(asks[0] if asks else len(e["actions"]), len(base), len(e["actions"]))
        played += 1
        if e["actions"][:k] != base[:k]:
            departed, tasks = departed + 1, tasks | {e["task_id"]}
    return departed, played, sorted(tasks)


if __name__ == "__main__":
    main()
