"""The results table: evaluation records in the paper's layout, as Markdown (stdout, BENCHMARKS.md)
and as HTML (the run report); and the small HTML tables of the report's stage sections.

``results_table(records)`` aggregates the records of ``results.jsonl`` (see
:mod:`agentcritic.evaluate`): rows = policy × method (Sampling, Greedy, ARMAP-R, ARMAP-B, ARMAP-M),
columns = env metrics ×100, then cost per task, plus the oracle line (best of N by env reward) of
methods that sample.

Each metric cell is the mean over tasks with its 95 % interval and its n, shown as
``45.0 (26–66) n=20``: a task's records (one per seed) are averaged first, so n counts tasks, not
seeds, and the interval is over tasks. Success uses the Wilson interval of the tasks' mean success
(a fractional count where a task's seeds, or Sampling's N samples, disagree); rewards use a seeded
percentile bootstrap of the tasks' mean reward (:mod:`agentcritic.intervals`).
"""

from __future__ import annotations

import html
import statistics
from dataclasses import dataclass, field
from typing import Any

from agentcritic.intervals import bootstrap_mean, wilson

# The paper's row order within one policy; other labels follow in the order they appear.
ROW_ORDER = ("Sampling", "Greedy", "ARMAP-R", "ARMAP-B", "ARMAP-M")
COST_FIELDS = ("llm_calls", "tokens", "rm_calls", "env_steps", "seconds")
ENV_NAMES = {"game24": "Game24", "shop": "Shop", "scienceworld": "SciWorld", "textworld": "TextWorld"}
ENV_COLUMNS: dict[str, list[tuple[str, str]]] = {
    "game24": [("success", "success %")],
    "shop": [("score", "reward ×100"), ("success", "success %")],
    "scienceworld": [("score", "×100")],
    "textworld": [("score", "score ×100"), ("success", "success %")],
}
SPLIT_NAMES = {"scienceworld": {"dev": "seen", "test": "unseen"}}


@dataclass
class Column:
    """One metric column: ``metric`` ("score" or "success") of ``env`` on ``split``, ×100."""

    env: str
    split: str
    metric: str
    label: str


@dataclass
class Row:
    policy: str
    method: str
    values: dict[str, float | None]  # column label -> mean over tasks ×100 (None: no records)
    cost: dict[str, float]  # COST_FIELDS -> mean per task
    tasks: int
    oracle: bool = False
    steps: float | None = None  # mean actions of the chosen trajectories
    price: float | None = None  # mean price paid (shop records only)
    intervals: dict[str, tuple[float, float] | None] = field(default_factory=dict)  # label -> 95 % interval ×100
    counts: dict[str, int] = field(default_factory=dict)  # label -> n, the tasks behind the cell


@dataclass
class ResultsTable:
    """The paper's layout: rows = policy × method, columns = env metrics, then cost per task."""

    columns: list[Column]
    rows: list[Row]

    def to_dict(self) -> dict[str, Any]:
        return {
            "columns": [c.__dict__ for c in self.columns],
            "rows": [r.__dict__ for r in self.rows],
        }


def _columns(records: list[dict[str, Any]]) -> list[Column]:
    envs: dict[str, list[str]] = {}
    for r in records:
        splits = envs.setdefault(r["env"], [])
        if r["split"] not in splits:
            splits.append(r["split"])
    cols = []
    for env in sorted(envs, key=lambda e: (list(ENV_COLUMNS).index(e) if e in ENV_COLUMNS else 99, e)):
        splits = sorted(envs[env], key=lambda s: ("train", "dev", "test").index(s) if s in ("train", "dev", "test") else 9)
        specs = ENV_COLUMNS.get(env, [("score", "score ×100"), ("success", "success %")])
        name = ENV_NAMES.get(env, env)
        for split in splits:
            if env in SPLIT_NAMES:
                suffix = " " + SPLIT_NAMES[env].get(split, split)
            else:
                suffix = f" ({split})" if (len(splits) > 1 or split != "test") else ""
            for metric, text in specs:
                cols.append(Column(env=env, split=split, metric=metric, label=f"{name}{suffix} {text}"))
    return cols


def _row_sort_key(label: str, seen: list[str]) -> tuple[int, int]:
    if label in ROW_ORDER:
        return (0, ROW_ORDER.index(label))
    return (1, seen.index(label))


def results_table(records: list[dict[str, Any]]) -> ResultsTable:
    """Aggregate records into the paper's layout (means ×100, cost means per task)."""
    columns = _columns(records)
    policies: list[str] = []
    methods: dict[str, list[str]] = {}
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in records:
        if r["policy"] not in policies:
            policies.append(r["policy"])
        seen = methods.setdefault(r["policy"], [])
        if r["method"] not in seen:
            seen.append(r["method"])
        groups.setdefault((r["policy"], r["method"]), []).append(r)
    rows: list[Row] = []
    for policy in policies:
        seen = methods[policy]
        for method in sorted(seen, key=lambda m: _row_sort_key(m, seen)):
            recs = groups[(policy, method)]
            prices = [float(r["price"]) for r in recs if r.get("price") is not None]
            rows.append(Row(policy=policy, method=method, **_cells_of(columns, recs, "score", "success"),
                            cost=_cost_means(recs), tasks=len(recs),
                            steps=statistics.fmean(float(r.get("steps", 0)) for r in recs),
                            price=statistics.fmean(prices) if prices else None))
        for method in seen:
            recs = [r for r in groups[(policy, method)] if r.get("oracle_score") is not None]
            if recs:
                rows.append(Row(policy=policy, method=f"{method} oracle (best of N by env reward)",
                                **_cells_of(columns, recs, "oracle_score", "oracle_success"),
                                cost={}, tasks=len(recs), oracle=True))
    return ResultsTable(columns=columns, rows=rows)


def _cells_of(columns: list[Column], recs: list[dict[str, Any]], score_key: str, success_key: str) -> dict[str, Any]:
    """Per column: the mean over tasks ×100, its 95 % interval ×100, and n (tasks)."""
    values: dict[str, float | None] = {}
    intervals: dict[str, tuple[float, float] | None] = {}
    counts: dict[str, int] = {}
    for col in columns:
        key = score_key if col.metric == "score" else success_key
        per_task = _task_means(recs, col, key)
        n = counts[col.label] = len(per_task)
        values[col.label] = 100.0 * statistics.fmean(per_task) if per_task else None
        if col.metric == "success":
            interval = wilson(min(float(n), max(0.0, sum(per_task))), n)
        else:
            interval = bootstrap_mean(per_task)
        intervals[col.label] = None if interval is None else (100.0 * interval[0], 100.0 * interval[1])
    return {"values": values, "intervals": intervals, "counts": counts}


def _task_means(recs: list[dict[str, Any]], col: Column, key: str) -> list[float]:
    """One value per task of ``col``'s env and split: the mean of ``key`` over that task's seeds."""
    by_task: dict[str, list[float]] = {}
    for r in recs:
        if r["env"] == col.env and r["split"] == col.split and r.get(key) is not None:
            by_task.setdefault(str(r["task_id"]), []).append(float(r[key]))
    return [statistics.fmean(xs) for xs in by_task.values()]


def _cost_means(recs: list[dict[str, Any]]) -> dict[str, float]:
    def value(r: dict[str, Any], name: str) -> float:
        cost = r.get("cost") or {}
        if name == "tokens":
            return float(cost.get("prompt_tokens", 0)) + float(cost.get("completion_tokens", 0))
        return float(cost.get(name, 0.0))

    return {name: statistics.fmean(value(r, name) for r in recs) for name in COST_FIELDS}


# ------------------------------------------------------------------------------------ rendering
COST_LABELS = {
    "llm_calls": "LLM calls/task",
    "tokens": "tokens/task",
    "rm_calls": "RM calls/task",
    "env_steps": "env steps/task",
    "seconds": "s/task",
}


def _has_price(table: ResultsTable) -> bool:
    return any(r.price is not None for r in table.rows)


def header(table: ResultsTable) -> list[str]:
    extra = ["steps", "price paid"] if _has_price(table) else ["steps"]
    return ["policy", "method", *[c.label for c in table.columns], "tasks", *extra, *[COST_LABELS[f] for f in COST_FIELDS]]


def _number(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _metric(row: Row, label: str) -> str:
    """``45.0 (26–66) n=20``: the mean ×100, its 95 % interval rounded to whole points, and n tasks."""
    value = row.values.get(label)
    if value is None:
        return "–"
    interval = row.intervals.get(label)
    bounds = f" ({interval[0]:.0f}–{interval[1]:.0f})" if interval is not None else ""
    return f"{value:.1f}{bounds} n={row.counts.get(label, 0)}"


def cells(table: ResultsTable) -> list[list[str]]:
    """Every row of ``table`` as display strings, in the order of :func:`header`."""
    out = []
    for row in table.rows:
        costs = [
            "" if row.oracle else _number(row.cost.get(f), 2 if f == "seconds" else 1)
            for f in COST_FIELDS
        ]
        extra = [_number(row.steps)] + ([_number(row.price, 2)] if _has_price(table) else [])
        out.append([row.policy, row.method, *[_metric(row, c.label) for c in table.columns],
                    str(row.tasks), *extra, *costs])
    return out


INTERVAL_NOTE = ("Env cells: mean over tasks ×100 (95 % interval) n=tasks; Wilson interval for success %, "
                 "bootstrap (2000 resamples) for rewards; a task's seeds are averaged first.")


def to_markdown(table: ResultsTable) -> str:
    """A GitHub-flavoured Markdown table (numbers right-aligned), then :data:`INTERVAL_NOTE`."""
    head = header(table)
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---", "---"] + ["---:"] * (len(head) - 2)) + "|"]
    for row in cells(table):
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in row) + " |")
    return "\n".join([*lines, "", INTERVAL_NOTE]) + "\n"


def to_html(table: ResultsTable, table_id: str = "results") -> str:
    """An HTML ``<table>``; oracle rows carry ``class="oracle"``, the best cell per column ``class="best"``."""
    best: dict[str, float] = {}
    for row in table.rows:
        if row.oracle:
            continue
        for col in table.columns:
            v = row.values.get(col.label)
            if v is not None and v > best.get(col.label, float("-inf")):
                best[col.label] = v
    for col in table.columns:  # a column where every method ties has no best cell
        values = {r.values.get(col.label) for r in table.rows if not r.oracle} - {None}
        if len(values) < 2:
            best.pop(col.label, None)
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header(table))
    body = []
    for row, texts in zip(table.rows, cells(table)):
        tds = []
        for i, text in enumerate(texts):
            cls = ""
            if 2 <= i < 2 + len(table.columns):
                label = table.columns[i - 2].label
                if not row.oracle and row.values.get(label) is not None and row.values.get(label) == best.get(label):
                    cls = ' class="best"'
            tds.append(f"<td{cls}>{html.escape(text)}</td>")
        attrs = ' class="oracle"' if row.oracle else ""
        body.append(f"<tr{attrs}>{''.join(tds)}</tr>")
    return f'<table id="{table_id}"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def dict_table(rows: list[dict[str, Any]], columns: list[str] | None = None, table_id: str | None = None) -> str:
    """A small HTML table of ``rows`` (dicts) for stage statistics."""
    if not rows:
        return "<p>(none)</p>"
    columns = columns or list(dict.fromkeys(k for r in rows for k in r))
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_fmt(r.get(c)))}</td>" for c in columns) + "</tr>" for r in rows
    )
    ident = f' id="{table_id}"' if table_id else ""
    return f"<table{ident}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"
    return str(value)
