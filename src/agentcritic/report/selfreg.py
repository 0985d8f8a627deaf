"""The report's self-regulation sections: the PRM (``train-prm``), the helper and the DP it was
distilled from (``train-helper``), and every method × budget on held-out tasks (``eval-helper``)."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from agentcritic.report import plots
from agentcritic.report.parts import details, find_files, img, read_json
from agentcritic.report.tables import dict_table


def _title(run: Path, folder: Path, what: str) -> str:
    rel = folder.relative_to(run)
    return f"<h3>{html.escape(what)}: {html.escape(str(rel) if rel.parts else '.')}</h3>"


def _metrics(folder: Path) -> dict[str, Any]:
    path = folder / "metrics.json"
    return read_json(path) if path.is_file() else {}


def prm_section(run: Path, folder: Path) -> str:
    """One ``train-prm`` run: held-out AUROC, Brier and ECE, the sizes, the reliability plot."""
    metrics = _metrics(folder)
    held = metrics.get("eval") or {}
    sizes = metrics.get("sizes") or {}
    head = {
        "held-out AUROC": held.get("auroc"), "Brier": held.get("brier"),
        "ECE": (held.get("reliability") or {}).get("ece"), "held-out examples": sizes.get("eval_examples"),
        "held-out tasks": sizes.get("held_out_tasks"), "training examples": sizes.get("train_examples"),
    }
    return "".join([
        _title(run, folder, "Process reward model"),
        dict_table([{k: v for k, v in head.items() if v is not None}]),
        img(plots.file_data_uri(folder / "reliability.png"), f"PRM reliability {folder.name}"),
        details(metrics, skip=("eval.reliability.bins",)),
    ])


def helper_section(run: Path, folder: Path) -> str:
    """One ``train-helper`` run: agreement with the DP labels on held-out tasks, and the DP itself."""
    settings = read_json(folder / "helper.json")
    held = _metrics(folder).get("eval") or {}
    head = {"backbone": settings.get("backbone", settings.get("kind")),
            **{k: held.get(k) for k in ("balanced_accuracy", "accuracy", "auroc", "label_ask_rate",
                                        "predicted_ask_rate", "n", "tasks")}}
    parts = [_title(run, folder, "Helper"), dict_table([{k: v for k, v in head.items() if v is not None}])]
    dp_file = folder / "dp.json"
    if dp_file.is_file():
        budgets = read_json(dp_file).get("budgets") or []
        parts.append("<p>The budgeted DP on the training table (the labels' source): predicted success and "
                     "interventions per episode by budget left.</p>")
        parts.append(dict_table([{"budget": b.get("budget"), "predicted success": b.get("predicted_success"),
                                  "interventions": b.get("mean_usage")} for b in budgets]))
    return "".join(parts)


def eval_section(run: Path, path: Path, data: dict[str, Any]) -> str:
    """One ``eval-helper`` run: the method × budget table, the plot, and the DP's predicted vs measured."""
    rows = data.get("results") or []
    about = (f"{data.get('env')} · {data.get('split')} split · {data.get('tasks')} tasks · base policy "
             f"{data.get('policy')} · intervention {data.get('intervention')}")
    parts = [_title(run, path.parent, "Budgets on held-out tasks"), f'<p class="muted">{html.escape(about)}</p>',
             dict_table([{"method": r["method"], "C": r["budget"], "success": r["success_rate"],
                          "interventions (mean)": r["mean_interventions"], "interventions (max)": r["max_interventions"],
                          "episodes": r["episodes"]} for r in rows], table_id="helper-results"),
             img(plots.success_vs_interventions(rows, f"{data.get('env')}: success vs interventions"),
                 "success vs interventions")]
    dp_train = data.get("dp_train") or []
    if dp_train:
        parts.append("<p>The DP policy on its own training tasks: predicted (from the table) vs measured.</p>")
        parts.append(dict_table([{"C": r["budget"], "predicted success": r.get("predicted_success"),
                                  "measured success": r.get("success_rate"),
                                  "predicted interventions": r.get("predicted_interventions"),
                                  "measured interventions": r.get("mean_interventions")} for r in dp_train]))
    return "".join(parts)


def is_eval_helper_results(data: Any) -> bool:
    return isinstance(data, dict) and all(k in data for k in ("budgets", "methods", "results", "dp_train"))


def sections(run: Path) -> list[str]:
    """The HTML of every self-regulation stage found in ``run`` (empty when there is none)."""
    body: list[str] = []
    body += [prm_section(run, p.parent) for p in find_files(run, "reliability.png")]
    body += [helper_section(run, p.parent) for p in find_files(run, "helper.json")]
    for path in find_files(run, "results.json"):
        data = read_json(path)
        if is_eval_helper_results(data):
            body.append(eval_section(run, path, data))
    return ["<h2>When to ask for help</h2>", *body] if body else []
