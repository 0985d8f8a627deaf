"""One self-contained HTML report per run: ``build_report(RUN)`` writes ``RUN/report.html``.

The report reads what the run's stages returned, never guesses from file names: each finished
stage is in the run's ``manifest.json`` with its ``kind``, and its folder holds ``result.json``, the
typed result of that kind (:mod:`agentcritic.stage_results`). The first screen is a short overview
(stage, kind, what it made, time, errors); below it each stage has its own section, drawn by the
renderer of its kind (:data:`SECTIONS`) from its result and the data files the result names. A
folder that is one stage's own (``agentcritic evaluate --out X``) is reported as that stage.
Plots are inline PNG data URIs and the style is inline, so the file opens anywhere, offline.
"""

from __future__ import annotations

import html
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from agentcritic.report.armap import (
    eval_rm_section,
    evaluate_section,
    evaluation_records,
    example_trajectories,
    rollout_section,
    synth_section,
    train_rm_section,
)
from agentcritic.report.parts import ReportError, Stage, read_json
from agentcritic.report.selfreg import collect_section, eval_section, helper_section, prm_section
from agentcritic.report.tables import results_table, to_markdown
from agentcritic.stage_results import KIND_RESULTS, RESULT_FILE, ResultError, kind_of, read_result
from agentcritic.store import atomic_write

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;max-width:1250px;color:#222;padding:0 1em}
h1{font-size:1.6em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.8em}
table{border-collapse:collapse;margin:.6em 0;font-size:.9em}
th,td{border:1px solid #ccc;padding:.25em .6em;text-align:right}
th:first-child,td:first-child,th:nth-child(2),td:nth-child(2){text-align:left}
thead th{background:#f3f3f3}tr.oracle td{color:#777;font-style:italic}td.best{font-weight:bold;background:#eef7ee}
img.plot{max-width:100%;border:1px solid #eee;margin:.5em 0}
.traj{display:grid;gap:.8em;margin-bottom:1.5em}
.traj>div{border:1px solid #ddd;border-radius:4px;padding:.5em;font-size:.82em;overflow-wrap:anywhere}
.traj h4{margin:.1em 0 .4em}.traj ol{padding-left:1.4em;margin:0}.obs{color:#555;white-space:pre-wrap}
.muted{color:#777}
#overview td:nth-child(3),#overview th:nth-child(3){text-align:left}#overview a{color:inherit}
"""


@dataclass
class Report:
    """Where the report went and the results table as Markdown (printed by the CLI)."""

    path: Path
    markdown: str
    records: int


# One section renderer per stage kind; ``report`` has none (it is the page itself).
SECTIONS: dict[str, Callable[[Stage], str]] = {
    "evaluate": evaluate_section,
    "rollout": rollout_section,
    "synthesize": synth_section,
    "train-rm": train_rm_section,
    "eval-rm": eval_rm_section,
    "collect": collect_section,
    "train-prm": prm_section,
    "train-helper": helper_section,
    "eval-helper": eval_section,
}
# The page's headings, in order, and the kinds whose sections each holds.
GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Results", ("evaluate",)),
    ("Rollouts", ("rollout",)),
    ("Reward-data synthesis", ("synthesize",)),
    ("Reward model accuracy", ("train-rm", "eval-rm")),
    ("When to ask for help", ("collect", "train-prm", "train-helper", "eval-helper")),
)


def find_stages(run: Path) -> tuple[list[Stage], list[str]]:
    """The finished stages of ``run`` with their typed results, in manifest order; and the notes on
    stages the manifest lists as done whose ``result.json`` is missing.

    A stage is a manifest entry with a ``kind`` (its folder is ``run/NAME``); a run folder that holds
    a ``result.json`` itself is one stage's own folder (its manifest is that stage's), reported as stage ".".
    """
    if (run / RESULT_FILE).is_file():
        result = read_result(run)
        return [Stage(".", kind_of(result), run, result)], []
    stages: list[Stage] = []
    notes: list[str] = []
    manifest = run / "manifest.json"
    entries = read_json(manifest).get("stages", {}) if manifest.is_file() else {}
    order = {name: i for i, name in enumerate(_pipeline_order(run))}
    for name, entry in sorted(entries.items(), key=lambda item: order.get(item[0], len(order))):
        kind = entry.get("kind") if isinstance(entry, dict) else None
        if kind not in KIND_RESULTS or not entry.get("done", True):
            continue  # a step inside a stage's own folder (explore, refine …), not a stage of the run
        folder = run / name
        if not (folder / RESULT_FILE).is_file():
            notes.append(f"{name} ({kind}): finished, but {folder / RESULT_FILE} is missing "
                         "(written by an older agentcritic?); run the stage into a new folder to report it")
            continue
        result = read_result(folder)
        if kind_of(result) != kind:
            raise ReportError(f"{folder / RESULT_FILE}: holds a {kind_of(result)!r} result, but {manifest} "
                              f"records stage {name!r} as {kind!r}; the folder was overwritten: run the stage again")
        seconds = entry.get("seconds")
        stages.append(Stage(name, kind, folder, result,
                            seconds=float(seconds) if isinstance(seconds, (int, float)) else None))
    for stage in stages:
        stage.index = [s for s in stages if s.kind == stage.kind].index(stage)
    return stages, notes


def _pipeline_order(run: Path) -> list[str]:
    """The stage names in the order the run's pipeline lists them (the manifest keeps no order)."""
    import tomllib

    try:
        recorded = tomllib.loads((run / "config.toml").read_text("utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return []
    stages = (recorded.get("pipeline") or {}).get("stages") or []
    return [s["name"] for s in stages if isinstance(s, dict) and isinstance(s.get("name"), str)]


def overview(stages: list[Stage]) -> str:
    """The first screen: one short row per stage (stage, kind, what it made, time, errors)."""
    rows = []
    for s in stages:
        link = f'<a href="#{s.anchor}">{html.escape(s.name)}</a>' if s.kind in SECTIONS else html.escape(s.name)
        pending = getattr(s.result, "pending", 0)
        errors = f"{s.result.errors}" + (f" ({pending} to retry)" if pending else "")
        if getattr(s.result, "llm_calls", 0):
            errors += f"; LLM failures: {s.result.llm_failures} of {s.result.llm_calls} calls"
        cells = [link, html.escape(s.kind), html.escape(_cut(s.result.headline(), 110)),
                 html.escape(_duration(s.seconds)), html.escape(errors)]
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    head = "".join(f"<th>{h}</th>" for h in ("stage", "kind", "made", "time", "errors"))
    return f'<table id="overview"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest:02d} s" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min"


def _cut(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def build_report(run: str | Path, out: str | Path | None = None) -> Report:
    """Write the run's HTML report (default ``RUN/report.html``) and return it with the Markdown table."""
    run = Path(run)
    if not run.is_dir():
        raise ReportError(f"{run}: no such run folder")
    try:
        stages, notes = find_stages(run)
    except ResultError as exc:
        raise ReportError(str(exc)) from None
    shown = [s for s in stages if s.kind in SECTIONS]
    if not shown:
        raise ReportError(
            f"{run}: nothing to report (no finished stage with a {RESULT_FILE} in it or in the stage folders "
            "its manifest.json lists); run `agentcritic run CONFIG.toml` or a stage command into it first"
        )
    evaluated = [rec for s in shown if s.kind == "evaluate" for rec in evaluation_records(s)]
    body = [f"<h1>agentcritic run report: {html.escape(run.resolve().name)}</h1>",
            f'<p class="muted">{html.escape(str(run.resolve()))} · written {time.strftime("%Y-%m-%d %H:%M:%S")}'
            f" · {len(stages)} stage(s) · {len(evaluated)} evaluation records</p>",
            "<h2>Stages</h2>", overview(stages)]
    body += [f'<p class="muted">{html.escape(note)}</p>' for note in notes]
    for heading, kinds in GROUPS:
        sections = [SECTIONS[s.kind](s) for s in shown if s.kind in kinds]
        if sections:
            body += [f"<h2>{html.escape(heading)}</h2>", *sections]
    if evaluated:
        body.append("<h2>Example trajectories</h2>")
        body.append(example_trajectories(evaluated))
    doc = ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
           f"<title>agentcritic report: {html.escape(run.name)}</title><style>{CSS}</style></head>"
           f"<body>{''.join(body)}</body></html>\n")
    path = Path(out) if out else run / "report.html"
    atomic_write(path, doc)
    markdown = to_markdown(results_table(evaluated)) if evaluated else ""
    return Report(path=path, markdown=markdown, records=len(evaluated))


__all__ = ["GROUPS", "SECTIONS", "Report", "ReportError", "build_report", "find_stages", "overview"]
