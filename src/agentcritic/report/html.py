"""One self-contained HTML report per run: ``build_report(RUN)`` writes ``RUN/report.html``.

It gathers what the run's stages left in the folder (or its sub-folders): ``results.jsonl`` from
evaluation, ``synth_stats.json`` from synthesis, ``rm_eval.json`` (and the trainer's
``metrics.json``) from reward-model training, and the self-regulation stages' files
(:mod:`agentcritic.report.selfreg`). Plots are inline PNG data URIs and the style is
inline, so the file opens anywhere, offline, with no external URL.
"""

from __future__ import annotations

import html
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agentcritic.evaluate import load_records, results_table
from agentcritic.report import plots, selfreg
from agentcritic.report.parts import ReportError, details, find_files, img, read_json
from agentcritic.report.tables import dict_table, to_html, to_markdown
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
"""


@dataclass
class Report:
    """Where the report went and the results table as Markdown (printed by the CLI)."""

    path: Path
    markdown: str
    records: int


def synth_section(run: Path, path: Path) -> str:
    """One synthesis run: headline counts, pairs per negative source (table and bars), all fields."""
    data = read_json(path)
    traj = data.get("trajectories") or {}
    head = {
        "env": data.get("env"), "pairs": data.get("pairs"), "explored": traj.get("explored"),
        "positives": traj.get("positives"), "verification rate": (data.get("verification") or {}).get("rate"),
        "seconds": data.get("seconds"),
    }
    parts = [f"<h3>{html.escape(str(path.parent.relative_to(run)))}</h3>",
             dict_table([{k: v for k, v in head.items() if v is not None}])]
    per_source = data.get("per_source")
    if isinstance(per_source, dict) and per_source:
        parts.append(dict_table([{"source": k, "pairs": v} for k, v in per_source.items()], ["source", "pairs"]))
        parts.append(img(plots.named_bars(per_source, f"{data.get('env', '')}: pairs per negative source", "pairs"),
                          f"synthesis pairs per source {path.parent.name}"))
    parts.append(details(data))
    return "".join(parts)


def rm_section(run: Path, path: Path) -> str:
    """One reward-model evaluation: accuracy overall, per source and per env, score histograms."""
    data = read_json(path)
    head = {k: data.get(k) for k in ("n", "accuracy", "mean_margin", "mean_chosen", "mean_rejected")}
    parts = [f"<h3>{html.escape(str(path.relative_to(run)))}</h3>",
             dict_table([{k: v for k, v in head.items() if v is not None}])]
    for key, label in (("per_source", "source"), ("per_env", "env")):
        groups = data.get(key)
        if isinstance(groups, dict) and groups:
            rows = [{label: k, **{f: v.get(f) for f in ("n", "accuracy", "mean_margin")}}
                    for k, v in groups.items() if isinstance(v, dict)]
            parts.append(dict_table(rows, [label, "n", "accuracy", "mean_margin"]))
            if key == "per_source":
                acc = {r["source"]: r["accuracy"] for r in rows if r["accuracy"] is not None}
                parts.append(img(plots.named_bars(acc, "held-out pairwise accuracy per negative source", "accuracy"),
                                  f"RM accuracy per source {path.parent.name}"))
    cross = data.get("cross_domain")
    if isinstance(cross, dict):
        parts.append(f"<p>Cross-domain (envs not trained on: {html.escape(', '.join(cross.get('envs', [])))}): "
                     f"accuracy {cross.get('accuracy', 0):.3f} on {cross.get('n')} pairs</p>")
    parts.append(img(plots.score_histograms(data.get("histogram")), f"RM score histograms {path.parent.name}"))
    parts.append(details(data, skip=("histogram",)))
    return "".join(parts)


def example_trajectories(records: list[dict[str, Any]], tasks: int = 3, max_steps: int = 12) -> str:
    """The same task under different methods, side by side; tasks where methods disagree most first."""
    by_task: dict[tuple[str, str, str, str], dict[str, dict[str, Any]]] = {}
    for r in records:
        by_task.setdefault((r["env"], r["split"], r["policy"], r["task_id"]), {}).setdefault(r["method"], r)
    def spread(item: tuple[Any, dict[str, dict[str, Any]]]) -> tuple[float, int]:
        scores = [float(rec["trajectory"].get("score") or 0.0) for rec in item[1].values()]
        return (max(scores) - min(scores), len(scores))
    chosen = sorted((i for i in by_task.items() if len(i[1]) > 1), key=spread, reverse=True)
    picked: list[Any] = []
    for env in dict.fromkeys(k[0] for k, _ in chosen):  # one task per env first, then the rest
        picked += [i for i in chosen if i[0][0] == env][:1]
    picked += [i for i in chosen if i not in picked]
    out = []
    for (env, split, policy, task), methods in picked[:tasks]:
        first = next(iter(methods.values()))["trajectory"]
        out.append(f'<h3>{html.escape(env)} · {html.escape(split)} · task {html.escape(task)} · {html.escape(policy)}</h3>')
        out.append(f'<p class="muted">{html.escape(first.get("instruction", ""))}</p>')
        cols = []
        for method, rec in methods.items():
            traj = rec["trajectory"]
            steps = traj.get("steps") or []
            items = "".join(
                f'<li><b>{html.escape(s["action"])}</b><div class="obs">{html.escape(_cut(s["observation"], 220))}</div></li>'
                for s in steps[:max_steps]
            )
            more = f'<p class="muted">… {len(steps) - max_steps} more steps</p>' if len(steps) > max_steps else ""
            rm = "–" if rec.get("rm_score") is None else f"{rec['rm_score']:.3f}"
            cols.append(
                f'<div class="method"><h4>{html.escape(method)}</h4>'
                f'<p>env reward {float(traj.get("score") or 0):.3f} · success {bool(traj.get("success"))} · '
                f'target {rm} · {len(steps)} steps</p><ol>{items}</ol>{more}</div>'
            )
        out.append(f'<div class="traj" style="grid-template-columns:repeat({len(cols)},1fr)">{"".join(cols)}</div>')
    return "".join(out) or "<p>(no task was solved by more than one method)</p>"


def _cut(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def build_report(run: str | Path, out: str | Path | None = None) -> Report:
    """Write the run's HTML report (default ``RUN/report.html``) and return it with the Markdown table."""
    run = Path(run)
    if not run.is_dir():
        raise ReportError(f"{run}: no such run folder")
    result_files = find_files(run, "results.jsonl")
    records = [rec for path in result_files for rec in load_records(path)]
    synth = find_files(run, "synth_stats.json")
    rm_eval = find_files(run, "rm_eval.json")
    helping = selfreg.sections(run)
    if not records and not synth and not rm_eval and not helping:
        raise ReportError(
            f"{run}: nothing to report (no results.jsonl, synth_stats.json, rm_eval.json or eval-helper results "
            "in it or its sub-folders); run `agentcritic evaluate` or `agentcritic run CONFIG.toml` first"
        )
    table = results_table(records)
    markdown = to_markdown(table) if records else ""
    body = [f"<h1>agentcritic run report: {html.escape(run.resolve().name)}</h1>",
            f'<p class="muted">{html.escape(str(run.resolve()))} · written {time.strftime("%Y-%m-%d %H:%M:%S")}'
            f' · {len(records)} evaluation records from {len(result_files)} file(s)</p>']
    manifest = run / "manifest.json"
    if manifest.exists():
        stages = read_json(manifest).get("stages", {})
        body.append("<h2>Stages</h2>")
        body.append(dict_table([{"stage": k, **{kk: vv for kk, vv in v.items() if not isinstance(vv, (dict, list))}}
                                for k, v in stages.items()]))
    if records:
        body.append("<h2>Results</h2>")
        body.append('<p class="muted">Rows: policy × method; env columns are means ×100 (success in %); '
                    "cost columns are means per task. Sampling is the mean of its N samples; its oracle line "
                    "(best of N by the env's own reward) is not a method.</p>")
        body.append(to_html(table))
        body.append("<h2>Plots</h2>")
        body.append(img(plots.method_bars(table), "methods per env metric"))
        body.append(img(plots.score_vs_cost(records), "score vs cost"))
        body.append(img(plots.rm_vs_env(records), "reward-model score vs env reward"))
    if synth:
        body.append("<h2>Reward-data synthesis</h2>")
        body.extend(synth_section(run, p) for p in synth)
    if rm_eval:
        body.append("<h2>Reward model accuracy</h2>")
        body.extend(rm_section(run, p) for p in rm_eval)
    body.extend(helping)
    if records:
        body.append("<h2>Example trajectories</h2>")
        body.append(example_trajectories(records))
    doc = ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
           f"<title>agentcritic report: {html.escape(run.name)}</title><style>{CSS}</style></head>"
           f"<body>{''.join(body)}</body></html>\n")
    path = Path(out) if out else run / "report.html"
    atomic_write(path, doc)
    return Report(path=path, markdown=markdown, records=len(records))
