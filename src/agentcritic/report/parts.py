"""Pieces every report section uses: a finished stage as the report sees it, reading its files, small HTML."""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agentcritic.errors import AgentCriticError
from agentcritic.report.tables import dict_table
from agentcritic.stage_results import StageResult


class ReportError(AgentCriticError, ValueError):
    """A run folder with nothing to report, or a stage file that cannot be read."""


@dataclass(eq=False)
class Stage:
    """One finished stage of a run: its folder, its kind (from the run's manifest) and its typed result."""

    name: str  # its folder relative to the run ("." when the run folder is the stage's own)
    kind: str
    folder: Path
    result: StageResult
    seconds: float | None = None  # from the run's manifest
    index: int = 0  # among the run's stages of the same kind, in manifest order
    _shards: dict[str, list[dict[str, Any]]] = field(default_factory=dict, repr=False)

    def path(self, name: str) -> Path:
        """A file the result names: relative to the stage folder, or absolute."""
        return self.folder / name

    def shard(self, name: str) -> list[dict[str, Any]]:
        """The records of the store shard ``name`` the result names (read once)."""
        if name not in self._shards:
            from agentcritic.store import iter_shard

            path = self.path(name)
            if not path.is_file():
                raise ReportError(f"{path}: missing, but {self.folder / 'result.json'} names it; "
                                  f"run the stage {self.name!r} again")
            self._shards[name] = [rec for _, rec in iter_shard(path)]
        return self._shards[name]

    @property
    def anchor(self) -> str:
        return "stage-" + (re.sub(r"[^A-Za-z0-9_-]", "-", self.name) if self.name != "." else "run")

    def table_id(self, base: str) -> str:
        """``base`` for the first stage of its kind, ``base-2`` … for the others (ids stay unique)."""
        return base if self.index == 0 else f"{base}-{self.index + 1}"


def title(stage: Stage, what: str) -> str:
    """A stage section's heading, the target of its overview link."""
    return f'<h3 id="{stage.anchor}">{html.escape(what)}: {html.escape(stage.name)}</h3>'


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        raise ReportError(f"{path}: missing; run the stage that writes it again") from None
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


def head(values: dict[str, Any]) -> str:
    """A stage's headline numbers as a one-row table (fields without a value left out)."""
    return dict_table([{k: v for k, v in values.items() if v is not None}])


def img(uri: str | None, alt: str) -> str:
    return f'<img class="plot" alt="{html.escape(alt)}" src="{uri}">' if uri else ""


def details(data: Any, skip: tuple[str, ...] = ()) -> str:
    flat = {k: v for k, v in flatten(data).items() if not k.startswith(skip)}
    rows = [{"field": k, "value": v} for k, v in flat.items()]
    return f"<details><summary>all fields</summary>{dict_table(rows, ['field', 'value'])}</details>"
