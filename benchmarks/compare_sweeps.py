"""Do two runs of ``collect`` hold the same episodes? And does each episode of a sweep follow its task's
no-help path up to its first ask (with a deterministic base it must: the prompts are the same there)?

    .venv/bin/python benchmarks/compare_sweeps.py RUN_A [RUN_B]

RUN_A alone: the count of sweep episodes that leave their task's no-help path before their first ask.
With RUN_B (the same command with other workers, or another scorer): how many episodes of the two runs
take the same actions, and how many end the same way.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def episodes(run: str) -> dict[str, dict]:
    """key → {"actions": [(action, actor)], "success": bool, "task": str, "asks": [step]} for played episodes."""
    out = {}
    for line in (Path(run) / "episodes.jsonl").read_text().splitlines():
        row = json.loads(line)
        rec = row.get("record") or {}
        traj = rec.get("trajectory")
        if not traj:  # a set recorded as repeat_of another, or a failed episode
            continue
        out[row["key"]] = {"actions": [(s["action"], s.get("actor")) for s in traj["steps"]],
                           "success": bool(rec.get("success")), "task": rec["task_id"],
                           "asks": [a[0] for a in (rec.get("meta") or {}).get("asks", [])]}
    return out


def departures(eps: dict[str, dict]) -> tuple[int, int, list[str]]:
    """Episodes with an ask whose actions before it differ from their task's no-help episode, of how many."""
    alone = {e["task"]: e["actions"] for e in eps.values() if not e["asks"]}
    departed, played, tasks = 0, 0, set()
    for e in eps.values():
        base = alone.get(e["task"])
        if base is None or not e["asks"]:
            continue
        k = min(min(e["asks"]), len(base), len(e["actions"]))
        played += 1
        if e["actions"][:k] != base[:k]:
            departed, tasks = departed + 1, tasks | {e["task"]}
    return departed, played, sorted(tasks)


def main() -> None:
    a = episodes(sys.argv[1])
    d, n, tasks = departures(a)
    print(f"{sys.argv[1]}: {len(a)} episodes played; {d} of {n} with an ask leave their task's no-help path "
          f"before it" + (f" (on {', '.join(tasks)})" if tasks else ""))
    if len(sys.argv) > 2:
        b = episodes(sys.argv[2])
        d, n, tasks = departures(b)
        print(f"{sys.argv[2]}: {len(b)} episodes played; {d} of {n} with an ask leave their task's no-help path "
              f"before it" + (f" (on {', '.join(tasks)})" if tasks else ""))
        both = sorted(set(a) & set(b))
        same = sum(a[k]["actions"] == b[k]["actions"] for k in both)
        ends = sum(a[k]["success"] == b[k]["success"] for k in both)
        print(f"in both: {len(both)} episodes; the same actions in {same}, the same outcome in {ends}; "
              f"only in the first {len(set(a) - set(b))}, only in the second {len(set(b) - set(a))}")


if __name__ == "__main__":
    main()
