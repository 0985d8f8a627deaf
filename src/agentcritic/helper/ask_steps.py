"""Where methods ask, and the fewest-asks oracle they are measured against.

- :func:`ask_step_counts`: from eval-helper's episode rows (``ask_steps``: the steps at which a
  request began), a histogram of ask steps per method and budget.
- :func:`oracle_from_sweep` / :func:`oracle_rows`: a ``collect --schedule sweep`` run on the
  evaluated tasks knows, per task, the fewest asks that rescue it and where (with a deterministic
  base, exactly, up to the sweep's largest ask set). That is an **oracle** — it knows the future of
  every ask — and it is shown as one: the row ``oracle:fewest-asks``, at each budget C the tasks
  it rescues with at most C asks, spending its fewest asks there and none elsewhere.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from agentcritic.errors import AgentCriticError
from agentcritic.intervals import wilson

ORACLE_METHOD = "oracle:fewest-asks"


class OracleDataError(AgentCriticError, ValueError):
    """The oracle's sweep run does not fit the evaluation; the message says what to collect."""


def ask_step_counts(rows: Iterable[dict[str, Any]]) -> dict[str, dict[str, dict[int, int]]]:
    """{method: {budget: {step: requests begun there}}} over the played episodes (repeats counted once)."""
    out: dict[str, dict[str, dict[int, int]]] = {}
    for row in rows:
        if row.get("same_as") or "ask_steps" not in row:
            continue
        hist = out.setdefault(row["method"], {}).setdefault(str(row["budget"]), {})
        for step in row["ask_steps"]:
            hist[int(step)] = hist.get(int(step), 0) + 1
    return {m: {b: dict(sorted(h.items())) for b, h in by.items()} for m, by in out.items()}


def oracle_from_sweep(folder: str | Path, tasks: Sequence[str], *, env: str, split: str) -> dict[str, Any]:
    """The fewest-asks oracle of ``tasks`` from a sweep collect run: {task: {asks, steps} | None},
    the largest ask set tried, and, per task, every single step whose one ask rescues it."""
    from agentcritic.helper.collect import STAGE, fewest_asks
    from agentcritic.stage import recorded_stage
    from agentcritic.store import RunStore, StoreError

    root = Path(folder)
    try:
        recorded = recorded_stage(root, "collect")
    except StoreError as exc:
        raise OracleDataError(f"--oracle {root}: not a collect run folder ({exc}). Give the folder of "
                              f"`agentcritic collect --schedule sweep --split {split}` on the evaluated tasks.") from None
    if recorded.get("schedule") != "sweep" or recorded.get("env") != env or recorded.get("split") != split:
        raise OracleDataError(
            f"--oracle {root}: a collect run with schedule {recorded.get('schedule', 'random')!r}, env "
            f"{recorded.get('env')!r}, split {recorded.get('split')!r}; the oracle needs schedule 'sweep' on env "
            f"{env!r}, split {split!r} (agentcritic collect --schedule sweep --env {env} --split {split} --limit N)")
    with RunStore(root) as store:
        records = [rec for _, rec in store.records(STAGE) if not rec.get("repeat_of")]
    found = fewest_asks(records)["tasks"]
    missing = [t for t in tasks if t not in found]
    if missing:
        raise OracleDataError(f"--oracle {root}: the sweep has no episodes of {len(missing)} evaluated task(s) "
                              f"({', '.join(missing[:5])}{' …' if len(missing) > 5 else ''}); collect them with a larger "
                              "--limit (the run resumes)")
    single: dict[str, list[int]] = {t: [] for t in tasks}
    for rec in records:
        asks = rec["meta"].get("asks") or []
        if rec["task_id"] in single and len(asks) == 1 and rec["success"] and rec.get("error") is None:
            single[rec["task_id"]].append(int(asks[0][0]))
    return {"tasks": {t: found[t] for t in tasks}, "most_asks": int(recorded.get("sweep_asks", 1)),
            "rescuing_steps": {t: sorted(s) for t, s in single.items()}}


def oracle_rows(oracle: dict[str, Any], budgets: Sequence[str]) -> list[dict[str, Any]]:
    """eval-helper rows (one per budget label) of the fewest-asks oracle."""
    per_task = oracle["tasks"]
    n = len(per_task)
    rows = []
    for label in budgets:
        cap = float(label)
        asks = [f["asks"] if f is not None and f["asks"] <= cap else None for f in per_task.values()]
        spent = [a or 0 for a in asks]
        rescued = sum(a is not None for a in asks)
        interval = wilson(rescued, n)
        rows.append({"method": ORACLE_METHOD, "budget": label, "episodes": n, "tasks": n,
                     "success_rate": rescued / n if n else 0.0,
                     "success_interval": list(interval) if interval else None,
                     "mean_interventions": statistics.fmean(spent) if n else 0.0,
                     "max_interventions": max(spent, default=0), "mean_cost": None, "mean_steps": None,
                     "errors": 0, "oracle": True})
    return rows


def oracle_step_counts(oracle: dict[str, Any]) -> dict[str, dict[int, int]]:
    """Histograms of the oracle's ask steps: ``first`` (the steps of each task's first fewest set)
    and ``any single`` (every step whose one ask rescues its task)."""
    first: dict[int, int] = {}
    anywhere: dict[int, int] = {}
    for found in oracle["tasks"].values():
        for step in (found or {}).get("steps", []):
            first[step] = first.get(step, 0) + 1
    for steps in oracle["rescuing_steps"].values():
        for step in steps:
            anywhere[step] = anywhere.get(step, 0) + 1
    return {"first": dict(sorted(first.items())), "any single": dict(sorted(anywhere.items()))}
