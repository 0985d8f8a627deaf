"""Pieces every report section uses: finding a stage's files in a run, reading them, and small HTML."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from agentcritic.report.tables import dict_table


class ReportError(ValueError):
    """A run folder with nothing to report, or a stage file that cannot be read."""


def find_files(run: Path, name: str) -> list[Path]:
    """``run/name`` and every ``run/**/name``, in a stable order (the run's own first)."""
    return sorted(run.rglob(name), key=lambda p: (len(p.relative_to(run).parts), str(p)))


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ReportError(f"{path}: not valid JSON ({exc})") from exc


def flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    """Scalars of a nested JSON object as ``{"a.b": value}`` (lists are summarised by length)."""
    out: dict[str, Any] = {}
    if isinstance(data, dict):
        for k, v in data.items():
            out.update(flatten(v, f"{prefix}{k}."))
    elif isinstance(data, list):
        out[prefix.rstrip(".")] = f"[{len(data)} items]"
    else:
        out[prefix.rstrip(".")] = data
    return out


def img(uri: str | None, alt: str) -> str:
    return f'<img class="plot" alt="{html.escape(alt)}" src="{uri}">' if uri else ""


def details(data: Any, skip: tuple[str, ...] = ()) -> str:
    flat = {k: v for k, v in flatten(data).items() if not k.startswith(skip)}
    rows = [{"field": k, "value": v} for k, v in flat.items()]
    return f"<details><summary>all fields</summary>{dict_table(rows, ['field', 'value'])}</details>"
