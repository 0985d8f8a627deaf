"""The results table as Markdown (stdout, BENCHMARKS.md) and as HTML (the run report)."""

from __future__ import annotations

import html
from typing import Any

from agentcritic.evaluate import COST_FIELDS, ResultsTable

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


def cells(table: ResultsTable) -> list[list[str]]:
    """Every row of ``table`` as display strings, in the order of :func:`header`."""
    out = []
    for row in table.rows:
        costs = [
            "" if row.oracle else _number(row.cost.get(f), 2 if f == "seconds" else 1)
            for f in COST_FIELDS
        ]
        extra = [_number(row.steps)] + ([_number(row.price, 2)] if _has_price(table) else [])
        out.append([row.policy, row.method, *[_number(row.values.get(c.label)) for c in table.columns],
                    str(row.tasks), *extra, *costs])
    return out


def to_markdown(table: ResultsTable) -> str:
    """A GitHub-flavoured Markdown table (numbers right-aligned)."""
    head = header(table)
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---", "---"] + ["---:"] * (len(head) - 2)) + "|"]
    for row in cells(table):
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in row) + " |")
    return "\n".join(lines) + "\n"


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
